using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Seqtalk.Server;

/// <summary>
/// Reads request bodies by hand instead of model binding, so that every malformed body gets a 400 that names
/// the field and the type it should have. Unknown fields are ignored.
/// </summary>
internal static class RequestReader
{
    /// <summary>The body's JSON object, copied out of the parser's pooled buffers (<see cref="ReadDocumentAsync"/> avoids the copy).</summary>
    public static async Task<JsonElement> ReadObjectAsync(HttpRequest request, int maxBytes)
    {
        using var document = await ReadDocumentAsync(request, maxBytes);
        return document.RootElement.Clone();
    }

    /// <summary>The body parsed and checked to be a JSON object whose property names are text; the caller disposes the
    /// document (returning its pooled buffers) once done with its elements.</summary>
    public static async Task<JsonDocument> ReadDocumentAsync(HttpRequest request, int maxBytes)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, new JsonDocumentOptions { MaxDepth = 32 }, request.HttpContext.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"The request body is not valid JSON: {FirstLine(e.Message)}", code: "invalid_json");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than {maxBytes} bytes.", code: "request_too_large");
        }
        try
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest($"The request body must be a JSON object, not {Describe(document.RootElement.ValueKind)}.", code: "invalid_json");
            CheckPropertyNames(document.RootElement);
            return document;
        }
        catch
        {
            document.Dispose();
            throw;
        }
    }

    /// <summary>A property name holding bytes that are not UTF-8 or an unpaired surrogate escape (such as <c>"\ud800"</c>)
    /// passes the parser, but System.Text.Json throws <see cref="InvalidOperationException"/> for it from any property
    /// lookup on its object.
    /// Checked once here (nesting is bounded by the reader's MaxDepth), so lookups never throw.</summary>
    private static void CheckPropertyNames(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                try
                {
                    _ = property.Name;
                }
                catch (InvalidOperationException)
                {
                    throw ApiException.BadRequest("The request body has a property name that is not valid text: bytes that are not UTF-8, or an unpaired surrogate escape (such as \\ud800).", code: "invalid_json");
                }
                CheckPropertyNames(property.Value);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray()) CheckPropertyNames(item);
        }
    }

    /// <summary>The property, or null when it is absent or JSON null.</summary>
    public static JsonElement? Get(JsonElement obj, string name)
        => obj.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public static string RequiredString(JsonElement obj, string name, string param)
    {
        var value = Get(obj, name) ?? throw ApiException.BadRequest($"'{param}' is required.", param, "missing_required_parameter");
        return value.ValueKind == JsonValueKind.String ? Text(value, param) : throw WrongType(param, "a string", value);
    }

    public static string? OptionalString(JsonElement obj, string name)
    {
        if (Get(obj, name) is not { } value) return null;
        return value.ValueKind == JsonValueKind.String ? Text(value, name) : throw WrongType(name, "a string", value);
    }

    /// <summary>The text of a JSON string. Bytes that are not UTF-8 and lone surrogate escapes such as <c>"\ud800"</c> pass
    /// the parser, but System.Text.Json throws <see cref="InvalidOperationException"/> when the string is read: a 400
    /// naming the field, not a 500.</summary>
    public static string Text(JsonElement value, string param)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw ApiException.BadRequest($"'{param}' is not valid text: it holds bytes that are not UTF-8, or an unpaired surrogate escape (such as \\ud800).", param);
        }
    }

    public static int? OptionalInt(JsonElement obj, string name, int min, int max)
    {
        if (Get(obj, name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number)) throw WrongType(name, "an integer", value);
        if (number < min || number > max) throw ApiException.BadRequest($"'{name}' is {number}; it must be between {min} and {max}.", name);
        return (int)number;
    }

    public static long? OptionalLong(JsonElement obj, string name)
    {
        if (Get(obj, name) is not { } value) return null;
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long number) ? number : throw WrongType(name, "an integer", value);
    }

    public static double? OptionalNumber(JsonElement obj, string name)
    {
        if (Get(obj, name) is not { } value) return null;
        return value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw WrongType(name, "a number", value);
    }

    public static bool? OptionalBool(JsonElement obj, string name)
    {
        if (Get(obj, name) is not { } value) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, "a boolean", value),
        };
    }

    public static ApiException WrongType(string param, string expected, JsonElement value)
        => ApiException.BadRequest($"'{param}' must be {expected}, not {Describe(value.ValueKind)}.", param, "invalid_type");

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Undefined => "nothing",
    };

    private static string FirstLine(string message)
    {
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
