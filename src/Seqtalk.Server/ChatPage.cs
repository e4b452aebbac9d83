using Microsoft.AspNetCore.Http;

namespace Seqtalk.Server;

/// <summary>The web chat page: one HTML file with inline CSS and JavaScript, embedded in the assembly, so it works offline.</summary>
internal static class ChatPage
{
    private static readonly Lazy<byte[]> s_page = new(() =>
    {
        using var stream = typeof(ChatPage).Assembly.GetManifestResourceStream("Seqtalk.Server.index.html")
            ?? throw new InvalidOperationException("The chat page resource is missing from the assembly.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static Task WriteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // Nothing may load from elsewhere: the page is self-contained by design.
        response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";
        response.Headers.XContentTypeOptions = "nosniff";
        return response.Body.WriteAsync(s_page.Value, context.RequestAborted).AsTask();
    }
}
