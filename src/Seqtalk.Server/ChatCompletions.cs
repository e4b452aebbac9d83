using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Seqtalk.Decoding;
using Seqtalk.Extensions.AI;

namespace Seqtalk.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c>, shaped like OpenAI's so that its clients work unchanged. The model replies
/// to one question: the last user message. No temperature or 0 decodes the model's default way (greedy: the reply of
/// <c>seqtalk reply</c>, the same in every choice); a positive temperature samples, with <c>top_p</c>, <c>top_k</c>
/// and <c>seed</c>, and the <c>n</c> choices are n samples (choice j uses seed + j). Usage counts the model's tokens.
/// Streaming sends each finished reply in word pieces as <c>chat.completion.chunk</c> events, ending with
/// <c>data: [DONE]</c>.
/// </summary>
internal static class ChatCompletions
{
    public const int MaxChoices = 16;

    public static async Task HandleAsync(HttpContext context, ReplyService replies, ServerOptions options, ServerIdentity identity, ChatModel model)
    {
        var body = await RequestReader.ReadObjectAsync(context.Request, options.MaxRequestBytes);
        var request = Parse(body, options);
        replies.CheckQuestion(request.Question, "messages");
        int maxLength = replies.ResolveMaxLength(request.MaxTokens);
        var decode = request.Decode with { MaxLength = maxLength };
        var reply = await replies.ReplyAsync(context, request.Question, decode);

        // Greedy: every choice is the one reply. Sampling: choice j is sample j.
        var texts = new string[request.N];
        var tokens = new int[request.N];
        for (int i = 0; i < request.N; i++)
        {
            texts[i] = reply.Candidates is { } c ? c[i].Text : reply.Text;
            tokens[i] = reply.Candidates is { } d ? d[i].Tokens.Count : reply.Tokens;
        }
        int promptTokens = model.CountQuestionTokens(request.Question);
        int completionTokens = tokens.Sum();
        var usage = new JsonObject
        {
            ["prompt_tokens"] = promptTokens,
            ["completion_tokens"] = completionTokens,
            ["total_tokens"] = promptTokens + completionTokens,
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
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = texts[i], ["refusal"] = null },
                    ["logprobs"] = null,
                    ["finish_reason"] = Finish(tokens[i], maxLength),
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
        for (int i = 0; i < request.N; i++)
        {
            var pieces = ReplyPieces.Split(texts[i]);
            await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, request.IncludeUsage));
            foreach (string piece in pieces)
                await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject { ["content"] = piece }, null, request.IncludeUsage));
            await WriteChunkAsync(response, Chunk(id, created, identity, i, new JsonObject(), Finish(tokens[i], maxLength), request.IncludeUsage));
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

    private static string Finish(int tokens, int maxLength) => tokens >= maxLength ? "length" : "stop";

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

    internal sealed record Request(string Question, int? MaxTokens, int N, bool Stream, bool IncludeUsage, DecodeOptions Decode);

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
        long? seed = RequestReader.OptionalLong(body, "seed");

        double temperature = RequestReader.OptionalNumber(body, "temperature") ?? 0;
        if (temperature is < 0 or > 2) throw ApiException.BadRequest($"'temperature' is {temperature}; it must be between 0 and 2.", "temperature");
        double topP = RequestReader.OptionalNumber(body, "top_p") ?? 1;
        if (topP is <= 0 or > 1) throw ApiException.BadRequest($"'top_p' is {topP}; it must be above 0 and at most 1.", "top_p");
        int topK = RequestReader.OptionalInt(body, "top_k", 0, int.MaxValue) ?? 0;
        // No temperature or 0: the model's default decoding (greedy), where top_p, top_k and seed change nothing.
        var decode = new DecodeOptions();
        if (temperature > 0)
        {
            decode = new DecodeOptions
            {
                Temperature = temperature,
                TopP = topP,
                TopK = topK,
                NBest = n,
                // A long seed is folded into an int; equal seeds still give equal replies.
                Seed = seed is { } s ? unchecked((int)(s ^ (s >> 32))) : null,
            };
            DecodeFields.Validate(decode);
        }
        return new Request(question, maxTokens, n, stream, includeUsage, decode);
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
        if (content.ValueKind == JsonValueKind.String) return RequestReader.Text(content, param);
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
