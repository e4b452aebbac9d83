namespace Seqtalk.Server;

/// <summary>
/// How the HTTP server listens, what it accepts and how it batches. Immutable; <see cref="Validate"/>
/// checks every value in one place. The CLI's <c>seqtalk serve</c> maps its flags onto this record.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>Default listening address: loopback only, port 8080.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8080";
    /// <summary>Default cap on the characters of one question.</summary>
    public const int DefaultMaxInputChars = 1000;
    /// <summary>Default cap on the tokens of one reply.</summary>
    public const int DefaultMaxOutputTokens = 100;
    /// <summary>Default number of questions decoded together in one micro-batch.</summary>
    public const int DefaultMaxBatchSize = 32;
    /// <summary>Default time a question that finds the batcher idle waits for more, in milliseconds.</summary>
    public const int DefaultMaxBatchWaitMs = 0;
    /// <summary>Default number of questions that may wait for the model; more are refused with 429.</summary>
    public const int DefaultQueueCapacity = 256;
    /// <summary>Default time a request may take before it is answered with 504.</summary>
    public const int DefaultRequestTimeoutSeconds = 30;
    /// <summary>Default cap on the bytes of one request body (a chat history can hold many messages).</summary>
    public const int DefaultMaxRequestBytes = 1 << 20;
    /// <summary>The environment variable read when <see cref="ApiKey"/> is not set.</summary>
    public const string ApiKeyEnvironmentVariable = "SEQTALK_API_KEY";

    /// <summary>Addresses to listen on, separated by <c>;</c>. Port 0 picks a free port.</summary>
    public string Urls { get; init; } = DefaultUrls;
    /// <summary>Longest question accepted, in characters; longer ones get 413.</summary>
    public int MaxInputChars { get; init; } = DefaultMaxInputChars;
    /// <summary>Largest reply length a request may ask for, in tokens; also the cap when it asks for none.</summary>
    public int MaxOutputTokens { get; init; } = DefaultMaxOutputTokens;
    /// <summary>Most questions decoding at once: one batch, or the shares of batches still decoding on other cores
    /// (each share is one call to <see cref="ChatModel.ReplyBatch(IReadOnlyList{string}, Seqtalk.Decoding.DecodeOptions?, Action{int, string}?)"/>).
    /// 1 decodes one question at a time.</summary>
    public int MaxBatchSize { get; init; } = DefaultMaxBatchSize;
    /// <summary>Threads that decode greedy batches at once (tests set it; the processor count otherwise).</summary>
    internal int? DecodeThreads { get; init; }
    /// <summary>How long a question that finds the batcher idle waits for more, in milliseconds; questions that queued while a
    /// batch decoded never wait. 0 takes only what is already queued.</summary>
    public int MaxBatchWaitMs { get; init; } = DefaultMaxBatchWaitMs;
    /// <summary>Questions that may wait for the model at once; a request beyond it gets 429 with <c>Retry-After</c>.</summary>
    public int QueueCapacity { get; init; } = DefaultQueueCapacity;
    /// <summary>Seconds a request may wait for its reply before it is answered with 504.</summary>
    public int RequestTimeoutSeconds { get; init; } = DefaultRequestTimeoutSeconds;
    /// <summary>Largest request body accepted, in bytes; larger ones get 413.</summary>
    public int MaxRequestBytes { get; init; } = DefaultMaxRequestBytes;
    /// <summary>When set, every <c>/v1/</c> request must send <c>Authorization: Bearer &lt;key&gt;</c>. Null reads
    /// <see cref="ApiKeyEnvironmentVariable"/>; empty turns the check off even when that variable is set.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Log the text of questions and replies. Off by default: logs carry only sizes, status and timings.</summary>
    public bool LogUserText { get; init; }

    /// <summary>The key requests must send: <see cref="ApiKey"/>, else the environment variable; null when none is required.</summary>
    public string? ResolveApiKey()
    {
        string? key = ApiKey ?? Environment.GetEnvironmentVariable(ApiKeyEnvironmentVariable);
        return string.IsNullOrEmpty(key) ? null : key;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Urls)) throw new ArgumentOutOfRangeException(nameof(Urls), Urls, "Must name at least one address, such as http://127.0.0.1:8080.");
        if (MaxInputChars is < 1 or > 1_000_000) throw new ArgumentOutOfRangeException(nameof(MaxInputChars), MaxInputChars, "Must be between 1 and 1000000.");
        if (MaxOutputTokens is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MaxOutputTokens), MaxOutputTokens, "Must be between 1 and 10000.");
        if (MaxBatchSize is < 1 or > 4096) throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "Must be between 1 and 4096.");
        if (MaxBatchWaitMs is < 0 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MaxBatchWaitMs), MaxBatchWaitMs, "Must be between 0 and 10000.");
        if (QueueCapacity is < 1 or > 1_000_000) throw new ArgumentOutOfRangeException(nameof(QueueCapacity), QueueCapacity, "Must be between 1 and 1000000.");
        if (RequestTimeoutSeconds is < 1 or > 86_400) throw new ArgumentOutOfRangeException(nameof(RequestTimeoutSeconds), RequestTimeoutSeconds, "Must be between 1 and 86400.");
        if (MaxRequestBytes is < 1024 or > 256 << 20) throw new ArgumentOutOfRangeException(nameof(MaxRequestBytes), MaxRequestBytes, "Must be between 1024 and 268435456.");
    }
}
