using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;

namespace Seqtalk.Server;

/// <summary>
/// A request the server refuses, answered with <see cref="Status"/> and a JSON body in OpenAI's error shape:
/// <c>{"error": {"message", "type", "param", "code"}}</c>. Thrown by request parsing and handlers, written by
/// one middleware, so every refusal looks the same.
/// </summary>
internal sealed class ApiException(int status, string message, string type = ApiException.InvalidRequest, string? param = null, string? code = null)
    : Exception(message)
{
    public const string InvalidRequest = "invalid_request_error";

    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    /// <summary>Seconds to send in <c>Retry-After</c>, or null.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string code = "invalid_value") => new(400, message, InvalidRequest, param, code);
}

/// <summary>JSON writing shared by every endpoint: UTF-8, non-ASCII letters unescaped (Korean stays readable).</summary>
internal static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        Encoder = JavaScriptEncoder.Create(UnicodeRanges.All),
    };

    /// <summary>The writer options of every answer: the encoder of <see cref="Options"/> (all of Unicode as is).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = Options.Encoder };

    public static JsonObject Error(int status, string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject
        {
            ["message"] = message,
            ["type"] = type,
            ["param"] = param,
            ["code"] = code ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
    };

    public static Task WriteAsync(HttpResponse response, JsonNode body, int status = StatusCodes.Status200OK)
    {
        // UTF-8 straight from the node (no string to transcode) and a Content-Length (no chunked framing).
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions)) body.WriteTo(writer, Options);
        return WriteAsync(response, buffer, status);
    }

    /// <summary>Sends JSON already written as UTF-8, with a Content-Length (no chunked framing).</summary>
    public static Task WriteAsync(HttpResponse response, ArrayBufferWriter<byte> json, int status = StatusCodes.Status200OK)
    {
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = json.WrittenCount;
        return response.Body.WriteAsync(json.WrittenMemory, response.HttpContext.RequestAborted).AsTask();
    }

    public static Task WriteErrorAsync(HttpResponse response, ApiException error)
    {
        if (error.RetryAfterSeconds is { } seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (error.Status == StatusCodes.Status401Unauthorized) response.Headers.WWWAuthenticate = "Bearer";
        return WriteAsync(response, Error(error.Status, error.Message, error.Type, error.Param, error.Code), error.Status);
    }
}
