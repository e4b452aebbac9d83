using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// What every reply endpoint shares: the input limit, the reply length rule, the queue (429), the timeout
/// (504) and the client going away (the request is dropped before its batch is decoded).
/// </summary>
internal sealed class ReplyService(ChatModel model, ReplyBatcher batcher, ServerOptions options, ServerMetrics metrics, ILogger<ReplyService> logger)
{
    /// <summary>The reply length: what the request asked for, else the model's default capped at <see cref="ServerOptions.MaxOutputTokens"/>.
    /// With the default and a model whose default is below the cap, the reply equals <see cref="ChatModel.Reply"/>.</summary>
    public int ResolveMaxLength(int? requested) => requested ?? Math.Min(model.DefaultMaxReplyLength, options.MaxOutputTokens);

    public void CheckQuestion(string question, string param)
    {
        if (question.Length > options.MaxInputChars)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge,
                $"The question has {question.Length} characters; this server accepts at most {options.MaxInputChars}.", ApiException.InvalidRequest, param, "input_too_long");
        }
    }

    public async Task<ServedReply> ReplyAsync(HttpContext context, string question, DecodeOptions decode)
    {
        var aborted = context.RequestAborted;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        deadline.CancelAfter(TimeSpan.FromSeconds(options.RequestTimeoutSeconds));

        var pending = batcher.TryEnqueue(question, decode, deadline.Token)
            ?? throw new ApiException(StatusCodes.Status429TooManyRequests,
                $"The server is busy: {options.QueueCapacity} questions are already waiting for the model. Retry shortly.", "rate_limit_error", code: "queue_full")
            { RetryAfterSeconds = 1 };

        ServedReply reply;
        try
        {
            reply = await pending.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            throw; // the client went away; nothing to answer
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new ApiException(StatusCodes.Status504GatewayTimeout,
                $"No reply within {options.RequestTimeoutSeconds} s; the server is overloaded. Retry later.", "timeout", code: "request_timeout");
        }
        catch (OperationCanceledException)
        {
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "The server is shutting down.", "server_error", code: "shutting_down");
        }

        metrics.AddTokens(reply.Tokens);
        if (options.LogUserText) logger.LogInformation("Question {Question} -> reply {Reply}", question, reply.Text);
        return reply;
    }
}
