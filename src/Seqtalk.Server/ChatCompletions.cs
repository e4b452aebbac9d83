using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Seqtalk.Extensions.AI;

namespace Seqtalk.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c>, shaped like OpenAI's so that its clients work unchanged. The model replies
/// to one question: the last user message. Decoding is greedy; a positive temperature (or top_p below 1) is
/// refused, because sampling is not in the library yet. Streaming sends the finished reply in word pieces as
/// <c>chat.completion.chunk</c> events, ending with <c>data: [DONE]</c>.
/// </summary>
internal static class ChatCompletions
{
    public const int MaxChoices = 16;

    public static async Task HandleAsync(HttpContext context, ReplyService replies, ServerOptions options, ServerIdentity identity)
    {
        var body = await RequestReader.ReadObjectAsync(context.Request, options.MaxRequestBytes);
        var request = Parse(body, options);
        replies.CheckQuestion(request.Question, "messages");
        int maxLength = replies.ResolveMaxLength(request.MaxTokens);
        string reply = await replies.ReplyAsync(context, request.Question, maxLength);

        int promptTokens = ReplyPieces.CountTokens(request.Question);
        int completionTokens = ReplyPieces.CountTokens(reply);
        string finish = completionTokens >= maxLength ? "length" : "stop";
        var usage = new JsonObject
        {
            ["prompt_tokens"] = promptTokens,
            ["completion_tokens"] = completionTokens * request.N,
            ["total_tokens"] = promptTokens + completionTokens * request.N,
        };
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        if (!request.Stream)
        {
            var choices = new JsonArray();
            for (int i = 0; i < request.N; i++)
            {
                choices.Add(new JsonObject
                {
                    ["index"] = i,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply, ["refusal"] = null },
                    ["logprobs"] = null,
                    ["finish_reason"] = finish,
                });
            }
            await Json.WriteAsync(context.Response, new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = identity.ModelName,
                ["system_fingerprint"] = identity.Fingerprint,
                ["choices"] = choices,
                ["usage"] = usage,
            });
            return;
        }

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var pieces = ReplyPieces.Split(reply);
        for (int i = 0; i < request.N; i++)
        {
            await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, request.IncludeUsage));
            foreach (string piece in pieces)
                await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject { ["content"] = piece }, null, request.IncludeUsage));
            await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject(), finish, request.IncludeUsage));
        }
        if (request.IncludeUsage)
        {
            await WriteChunkAsync(response, new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = identity.ModelName,
                ["system_fingerprint"] = identity.Fingerprint,
                ["choices"] = new JsonArray(),
                ["usage"] = usage,
            });
        }
        await response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
        await response.Body.FlushAsync(context.RequestAborted);
    }

    private static JsonObject Chunk(string id, long created, ServerIdentity identity, int index, JsonObject delta, string? finish, bool includeUsage)
    {
        var chunk = new JsonObject
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = created,
            ["model"] = identity.ModelName,
            ["system_fingerprint"] = identity.Fingerprint,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
        };
        if (includeUsage) chunk["usage"] = null;
        return chunk;
    }

    private static async Task WriteChunkAsync(HttpResponse response, JsonObject chunk)
    {
        await response.WriteAsync("data: " + chunk.ToJsonString(Json.Options) + "\n\n", response.HttpContext.RequestAborted);
        await response.Body.FlushAsync(response.HttpContext.RequestAborted);
    }

    internal sealed record Request(string Question, int? MaxTokens, int N, bool Stream, bool IncludeUsage);

    internal static Request Parse(JsonElement body, ServerOptions options)
    {
        var question = LastUserMessage(body);

        int? maxTokens = RequestReader.OptionalInt(body, "max_completion_tokens", 1, options.MaxOutputTokens)
            ?? RequestReader.OptionalInt(body, "max_tokens", 1, options.MaxOutputTokens);
        int n = RequestReader.OptionalInt(body, "n", 1, MaxChoices) ?? 1;
        bool stream = RequestReader.OptionalBool(body, "stream") ?? false;
        bool includeUsage = false;
        if (RequestReader.Get(body, "stream_options") is { } streamOptions)
        {
            if (streamOptions.ValueKind != JsonValueKind.Object) throw RequestReader.WrongType("stream_options", "an object", streamOptions);
            includeUsage = RequestReader.OptionalBool(streamOptions, "include_usage") ?? false;
        }
        RequestReader.OptionalString(body, "model");   // any id is accepted: this server has one model
        RequestReader.OptionalLong(body, "seed");      // greedy decoding is deterministic; the seed changes nothing

        double temperature = RequestReader.OptionalNumber(body, "temperature") ?? 0;
        if (temperature is < 0 or > 2) throw ApiException.BadRequest($"'temperature' is {temperature}; it must be between 0 and 2.", "temperature");
        if (temperature > 0)
        {
            throw ApiException.BadRequest(
                "Sampling is not available yet: this server decodes greedily. Send temperature 0 or leave it out.", "temperature", "unsupported_value");
        }
        double topP = RequestReader.OptionalNumber(body, "top_p") ?? 1;
        if (topP is <= 0 or > 1) throw ApiException.BadRequest($"'top_p' is {topP}; it must be above 0 and at most 1.", "top_p");
        if (topP < 1)
        {
            throw ApiException.BadRequest(
                "Sampling is not available yet: this server decodes greedily. Send top_p 1 or leave it out.", "top_p", "unsupported_value");
        }
        return new Request(question, maxTokens, n, stream, includeUsage);
    }

    private static string LastUserMessage(JsonElement body)
    {
        var messages = RequestReader.Get(body, "messages")
            ?? throw ApiException.BadRequest("'messages' is required: a list of {\"role\", \"content\"} objects.", "messages", "missing_required_parameter");
        if (messages.ValueKind != JsonValueKind.Array) throw RequestReader.WrongType("messages", "an array", messages);
        if (messages.GetArrayLength() == 0) throw ApiException.BadRequest("'messages' is empty; send at least one user message.", "messages");

        string? question = null;
        int index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string param = $"messages[{index++}]";
            if (message.ValueKind != JsonValueKind.Object) throw RequestReader.WrongType(param, "an object", message);
            string role = RequestReader.RequiredString(message, "role", param + ".role");
            string text = Content(message, param + ".content");
            if (role == "user") question = text;
        }
        return question ?? throw ApiException.BadRequest("'messages' has no user message; the model replies to the last one.", "messages");
    }

    private static string Content(JsonElement message, string param)
    {
        if (RequestReader.Get(message, "content") is not { } content) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw RequestReader.WrongType(param, "a string or an array of text parts", content);

        var text = new System.Text.StringBuilder();
        int index = 0;
        foreach (var part in content.EnumerateArray())
        {
            string partParam = $"{param}[{index++}]";
            if (part.ValueKind != JsonValueKind.Object) throw RequestReader.WrongType(partParam, "an object", part);
            string type = RequestReader.RequiredString(part, "type", partParam + ".type");
            if (type != "text") throw ApiException.BadRequest($"'{partParam}.type' is '{type}'; only text parts are supported.", partParam + ".type", "unsupported_value");
            if (text.Length > 0) text.Append('\n');
            text.Append(RequestReader.RequiredString(part, "text", partParam + ".text"));
        }
        return text.ToString();
    }
}
