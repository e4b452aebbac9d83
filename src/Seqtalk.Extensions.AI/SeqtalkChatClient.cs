using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Seqtalk.Decoding;

namespace Seqtalk.Extensions.AI;

/// <summary>
/// A <see cref="IChatClient"/> over a <see cref="ChatModel"/>, so .NET code written against
/// Microsoft.Extensions.AI can use a Seqtalk model in process. The model answers one question at a time:
/// the text of the last user message is the question and earlier messages are ignored. Decoding is greedy.
/// </summary>
/// <remarks>
/// Thread-safe: the model is immutable and each call decodes with its own state. Streaming sends the finished
/// reply in word pieces (the library has no token-by-token API yet); the pieces concatenate to exactly the
/// non-streamed reply. <see cref="UsageDetails"/> counts words (see <see cref="ChatModel"/>: the façade does not
/// expose token ids).
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
    /// <param name="options">Only <see cref="ChatOptions.MaxOutputTokens"/> and <see cref="ChatOptions.Temperature"/> (0 or unset) are used.</param>
    /// <param name="cancellationToken">Cancels the call before decoding starts.</param>
    /// <exception cref="ArgumentException">There is no user message.</exception>
    /// <exception cref="NotSupportedException">A positive temperature asks for sampling, which is not available yet.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ChatOptions.MaxOutputTokens"/> is out of range.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (question, decode) = Prepare(messages, options);
        string reply = await Task.Run(() => _model.Reply(question, decode), cancellationToken);
        var message = new ChatMessage(ChatRole.Assistant, reply) { MessageId = NewId("msg") };
        return new ChatResponse(message)
        {
            ResponseId = NewId("chatcmpl"),
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = ChatFinishReason.Stop,
            Usage = Usage(question, reply),
        };
    }

    /// <summary>Replies to the last user message, in pieces that concatenate to the reply of <see cref="GetResponseAsync"/>.</summary>
    /// <param name="messages">The conversation; its last user message is the question.</param>
    /// <param name="options">As for <see cref="GetResponseAsync"/>.</param>
    /// <param name="cancellationToken">Cancels the call before decoding starts, or between pieces.</param>
    /// <exception cref="ArgumentException">There is no user message.</exception>
    /// <exception cref="NotSupportedException">A positive temperature asks for sampling, which is not available yet.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ChatOptions.MaxOutputTokens"/> is out of range.</exception>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (question, decode) = Prepare(messages, options);
        string reply = await Task.Run(() => _model.Reply(question, decode), cancellationToken);
        string responseId = NewId("chatcmpl"), messageId = NewId("msg");
        var created = DateTimeOffset.UtcNow;
        foreach (string piece in ReplyPieces.Split(reply))
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
            FinishReason = ChatFinishReason.Stop,
            Contents = [new UsageContent(Usage(question, reply))],
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

    private static (string Question, DecodeOptions? Options) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var question = messages.LastOrDefault(m => m.Role == ChatRole.User)
            ?? throw new ArgumentException("The conversation has no user message; the model replies to the last one.", nameof(messages));
        if (options?.Temperature is > 0)
            throw new NotSupportedException("Sampling (a temperature above 0) is not available yet; Seqtalk decodes greedily. Leave Temperature unset or 0.");
        DecodeOptions? decode = null;
        if (options?.MaxOutputTokens is { } max)
        {
            decode = new DecodeOptions { MaxLength = max };
            decode.Validate();
        }
        return (question.Text, decode);
    }

    private static UsageDetails Usage(string question, string reply)
    {
        int input = ReplyPieces.CountTokens(question), output = ReplyPieces.CountTokens(reply);
        return new UsageDetails { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";
}
