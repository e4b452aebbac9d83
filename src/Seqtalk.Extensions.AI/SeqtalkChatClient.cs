using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Seqtalk.Decoding;

namespace Seqtalk.Extensions.AI;

/// <summary>
/// A <see cref="IChatClient"/> over a <see cref="ChatModel"/>, so .NET code written against
/// Microsoft.Extensions.AI can use a Seqtalk model in process. The model answers one question at a time:
/// the text of the last user message is the question and earlier messages are ignored. Decoding is greedy unless
/// <see cref="ChatOptions.Temperature"/> is above 0, which samples (with <see cref="ChatOptions.TopP"/>,
/// <see cref="ChatOptions.TopK"/> and <see cref="ChatOptions.Seed"/>).
/// </summary>
/// <remarks>
/// Thread-safe: the model is immutable and each call decodes with its own state. Streaming sends the finished
/// reply in word pieces (the library has no token-by-token API yet); the pieces concatenate to exactly the
/// non-streamed reply. <see cref="UsageDetails"/> counts the model's tokens.
/// </remarks>
public sealed class SeqtalkChatClient : IChatClient
{
    /// <summary>The model id reported when none is given.</summary>
    public const string DefaultModelId = "seqtalk";

    private readonly ChatModel _model;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates a client over <paramref name="model"/>.</summary>
    /// <param name="model">The model; shared, never changed.</param>
    /// <param name="modelId">The id reported in responses and metadata.</param>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is empty.</exception>
    public SeqtalkChatClient(ChatModel model, string modelId = DefaultModelId)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelId);
        _model = model;
        ModelId = modelId;
        _metadata = new ChatClientMetadata("seqtalk", providerUri: null, defaultModelId: modelId);
    }

    /// <summary>The id reported in responses and metadata.</summary>
    public string ModelId { get; }

    /// <summary>Replies to the last user message.</summary>
    /// <param name="messages">The conversation; its last user message is the question.</param>
    /// <param name="options">Used: <see cref="ChatOptions.MaxOutputTokens"/> (the reply length), <see cref="ChatOptions.Temperature"/>
    /// (unset or 0: greedy; above 0: sampling), and when sampling <see cref="ChatOptions.TopP"/>, <see cref="ChatOptions.TopK"/> and
    /// <see cref="ChatOptions.Seed"/> (the same seed gives the same reply).</param>
    /// <param name="cancellationToken">Cancels the call before decoding starts.</param>
    /// <exception cref="ArgumentException">There is no user message.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names it.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (question, decode) = Prepare(messages, options);
        var result = await Task.Run(() => _model.ReplyDetailed(question, decode), cancellationToken);
        var message = new ChatMessage(ChatRole.Assistant, result.Text) { MessageId = NewId("msg") };
        return new ChatResponse(message)
        {
            ResponseId = NewId("chatcmpl"),
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(result, decode),
            Usage = Usage(question, result),
        };
    }

    /// <summary>Replies to the last user message, in pieces that concatenate to the reply of <see cref="GetResponseAsync"/>.</summary>
    /// <param name="messages">The conversation; its last user message is the question.</param>
    /// <param name="options">As for <see cref="GetResponseAsync"/>.</param>
    /// <param name="cancellationToken">Cancels the call before decoding starts, or between pieces.</param>
    /// <exception cref="ArgumentException">There is no user message.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names it.</exception>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (question, decode) = Prepare(messages, options);
        var result = await Task.Run(() => _model.ReplyDetailed(question, decode), cancellationToken);
        string responseId = NewId("chatcmpl"), messageId = NewId("msg");
        var created = DateTimeOffset.UtcNow;
        foreach (string piece in ReplyPieces.Split(result.Text))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, piece)
            {
                ResponseId = responseId,
                MessageId = messageId,
                ModelId = ModelId,
                CreatedAt = created,
            };
        }
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = responseId,
            MessageId = messageId,
            ModelId = ModelId,
            CreatedAt = created,
            FinishReason = Finish(result, decode),
            Contents = [new UsageContent(Usage(question, result))],
        };
    }

    /// <summary>Returns this client, the <see cref="ChatModel"/>, or the <see cref="ChatClientMetadata"/> when asked for them without a key.</summary>
    /// <param name="serviceType">The type asked for.</param>
    /// <param name="serviceKey">A key; this client offers no keyed services.</param>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(ChatModel)) return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Nothing to release: the model is shared and owned by the caller.</summary>
    public void Dispose()
    {
    }

    private static (string Question, DecodeOptions Options) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var question = messages.LastOrDefault(m => m.Role == ChatRole.User)
            ?? throw new ArgumentException("The conversation has no user message; the model replies to the last one.", nameof(messages));
        var decode = new DecodeOptions { MaxLength = options?.MaxOutputTokens };
        if (options?.Temperature is > 0 and var temperature)
        {
            decode = decode with
            {
                Temperature = temperature,
                TopP = options.TopP ?? decode.TopP,
                TopK = options.TopK ?? decode.TopK,
                // A long seed is folded into an int; equal seeds still give equal replies.
                Seed = options.Seed is { } s ? unchecked((int)(s ^ (s >> 32))) : null,
            };
        }
        decode.Validate();
        return (question.Text, decode);
    }

    private ChatFinishReason Finish(ReplyResult result, DecodeOptions decode)
        => result.Tokens.Count >= (decode.MaxLength ?? _model.DefaultMaxReplyLength) ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private UsageDetails Usage(string question, ReplyResult result)
    {
        int input = _model.CountQuestionTokens(question), output = result.Tokens.Count;
        return new UsageDetails { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";
}
