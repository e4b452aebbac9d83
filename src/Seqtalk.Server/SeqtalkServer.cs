using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;
using Seqtalk.Extensions.AI;

namespace Seqtalk.Server;

/// <summary>
/// The Seqtalk HTTP server: <c>POST /v1/reply</c>, the OpenAI-compatible <c>POST /v1/chat/completions</c> and
/// <c>GET /v1/models</c>, <c>/healthz</c>, <c>/readyz</c>, <c>/metrics</c> and the web chat page at <c>/</c>.
/// Concurrent questions are decoded together in micro-batches. See docs/server.md.
/// </summary>
public static class SeqtalkServer
{
    /// <summary>Builds the server without starting it: call <c>StartAsync</c> or <c>RunAsync</c> on the result, and
    /// dispose it when done. With port 0 in <see cref="ServerOptions.Urls"/>, the bound address is in
    /// <c>app.Urls</c> once started.</summary>
    /// <param name="model">The model; registered as a singleton and shared by every request.</param>
    /// <param name="options">Addresses, limits and batching; validated here.</param>
    /// <param name="modelName">The model id shown by <c>/v1/models</c>, <c>/healthz</c> and in responses (e.g. the model directory's name).</param>
    /// <returns>The configured application.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><paramref name="modelName"/> is empty.</exception>
    public static WebApplication Build(ChatModel model, ServerOptions options, string modelName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelName);
        options.Validate();

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // A failure to start (such as a port in use) reaches the caller as an exception; the host's own
        // log of it is a stack trace, which users should never see.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);

        builder.Services.AddSeqtalkChatClient(model, modelName);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(new ServerIdentity(modelName));
        builder.Services.AddSingleton<ServerState>();
        builder.Services.AddSingleton<ServerMetrics>();
        builder.Services.AddSingleton<ReplyBatcher>();
        builder.Services.AddSingleton<ReplyService>();

        var app = builder.Build();
        string? apiKey = options.ResolveApiKey();
        var batcher = app.Services.GetRequiredService<ReplyBatcher>(); // starts the batching loop now
        var state = app.Services.GetRequiredService<ServerState>();
        app.Lifetime.ApplicationStarted.Register(() => _ = WarmUpAsync(model, batcher, state, app.Logger));
        app.Lifetime.ApplicationStopping.Register(() => state.Ready = false);

        app.UseRouting();
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        var requestLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Seqtalk.Server.Requests");
        app.Use((context, next) => ObserveAsync(context, next, metrics, requestLog));
        app.Use(RefuseAsync);
        app.UseStatusCodePages(async context =>
        {
            var response = context.HttpContext.Response;
            string message = response.StatusCode switch
            {
                StatusCodes.Status404NotFound => $"No such endpoint: {context.HttpContext.Request.Method} {context.HttpContext.Request.Path}.",
                StatusCodes.Status405MethodNotAllowed => $"{context.HttpContext.Request.Method} is not allowed on {context.HttpContext.Request.Path}.",
                _ => $"The request failed with status {response.StatusCode}.",
            };
            await Json.WriteAsync(response, Json.Error(response.StatusCode, message, ApiException.InvalidRequest, null, null), response.StatusCode);
        });
        if (apiKey is not null) app.Use((context, next) => CheckKey(context, next, apiKey));

        MapEndpoints(app);
        return app;
    }

    /// <summary>Builds the server, runs it until <paramref name="cancellationToken"/> fires or the process is asked to stop
    /// (Ctrl+C, SIGTERM), then stops it gracefully. This is what <c>seqtalk serve</c> calls.</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">Addresses, limits and batching.</param>
    /// <param name="modelName">The model id shown to clients.</param>
    /// <param name="cancellationToken">Stops the server.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="IOException">An address cannot be bound (for example, the port is in use).</exception>
    public static async Task RunAsync(ChatModel model, ServerOptions options, string modelName, CancellationToken cancellationToken = default)
    {
        await using var app = Build(model, options, modelName);
        await app.RunAsync(cancellationToken);
    }

    /// <summary>Loads the model directory and runs the server with the directory's name as the model id.</summary>
    /// <param name="modelDirectory">A directory written by <see cref="ChatModel.Save"/>.</param>
    /// <param name="options">Addresses, limits and batching.</param>
    /// <param name="cancellationToken">Stops the server.</param>
    /// <exception cref="SeqtalkException">The model directory is missing or invalid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="IOException">An address cannot be bound (for example, the port is in use).</exception>
    public static Task RunAsync(string modelDirectory, ServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory)));
        return RunAsync(ChatModel.Load(modelDirectory), options, string.IsNullOrEmpty(name) ? SeqtalkChatClient.DefaultModelId : name, cancellationToken);
    }

    private static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/", ChatPage.WriteAsync);
        app.MapGet("/healthz", (ServerIdentity identity) => Results.Text(
            new JsonObject { ["status"] = "ok", ["model"] = identity.ModelName, ["version"] = identity.Version }.ToJsonString(Json.Options), "application/json; charset=utf-8"));
        app.MapGet("/readyz", (ServerState state, ReplyBatcher batcher, ServerIdentity identity) =>
        {
            bool ready = state.Ready && batcher.IsRunning;
            return Results.Text(new JsonObject { ["status"] = ready ? "ready" : "starting", ["model"] = identity.ModelName }.ToJsonString(Json.Options),
                "application/json; charset=utf-8", statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        app.MapGet("/metrics", (ServerMetrics metrics) => Results.Text(metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));

        app.MapGet("/v1/models", (ServerIdentity identity) => Results.Text(
            new JsonObject { ["object"] = "list", ["data"] = new JsonArray(ModelObject(identity)) }.ToJsonString(Json.Options), "application/json; charset=utf-8"));
        app.MapGet("/v1/models/{id}", (string id, ServerIdentity identity) => id == identity.ModelName
            ? Results.Text(ModelObject(identity).ToJsonString(Json.Options), "application/json; charset=utf-8")
            : throw new ApiException(StatusCodes.Status404NotFound, $"The model '{id}' does not exist; this server serves '{identity.ModelName}'.", ApiException.InvalidRequest, "model", "model_not_found"));

        app.MapPost("/v1/reply", ReplyAsync);
        app.MapPost("/v1/chat/completions", ChatCompletions.HandleAsync);
        app.Map("/v1/{**rest}", (HttpContext context) => Task.FromException(new ApiException(StatusCodes.Status404NotFound,
            $"No such endpoint: {context.Request.Method} {context.Request.Path}.", ApiException.InvalidRequest, code: "not_found")));
    }

    private static JsonObject ModelObject(ServerIdentity identity) => new()
    {
        ["id"] = identity.ModelName,
        ["object"] = "model",
        ["created"] = identity.Created,
        ["owned_by"] = "seqtalk",
    };

    /// <summary><c>POST /v1/reply</c>: <c>{"text", "max_length"?, decoding fields?}</c> → <c>{"reply", "tokens", "ms"}</c>, plus
    /// <c>"score"</c>, <c>"nbest"</c> and <c>"scores"</c> when the request asks for beam search, sampling or a decoding rule
    /// (see <see cref="DecodeFields"/>).</summary>
    private static async Task ReplyAsync(HttpContext context, ReplyService replies, ServerOptions options)
    {
        long start = Stopwatch.GetTimestamp();
        string text;
        DecodeOptions decode;
        using (var body = await RequestReader.ReadDocumentAsync(context.Request, options.MaxRequestBytes))
        {
            (text, decode) = ParseReply(body.RootElement, replies, options);
        }
        var reply = await replies.ReplyAsync(context, text, decode);
        // Written straight to UTF-8 (no JSON nodes per request): the same bytes as the nodes gave, fields in this order.
        var buffer = new ArrayBufferWriter<byte>(64 + Encoding.UTF8.GetMaxByteCount(reply.Text.Length));
        using (var writer = new Utf8JsonWriter(buffer, Json.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("reply", reply.Text);
            writer.WriteNumber("tokens", reply.Tokens);
            if (reply.Candidates is { } candidates)
            {
                writer.WriteNumber("score", Math.Round(candidates[0].Score, 6));
                writer.WriteStartArray("nbest");
                foreach (var c in candidates) writer.WriteStringValue(c.Text);
                writer.WriteEndArray();
                writer.WriteStartArray("scores");
                foreach (var c in candidates) writer.WriteNumberValue(Math.Round(c.Score, 6));
                writer.WriteEndArray();
                writer.WriteStartArray("log_probs");
                foreach (var c in candidates) writer.WriteNumberValue(Math.Round(c.LogProbability, 6));
                writer.WriteEndArray();
            }
            writer.WriteNumber("ms", Math.Round(Stopwatch.GetElapsedTime(start).TotalMilliseconds, 1));
            writer.WriteEndObject();
        }
        await Json.WriteAsync(context.Response, buffer);
    }

    /// <summary>A <c>/v1/reply</c> body's question and decoding options, checked (an <see cref="ApiException"/> otherwise);
    /// what the endpoint does with a body before it queues the question (the request fuzz binds through it too).</summary>
    internal static (string Text, DecodeOptions Decode) ParseReply(JsonElement body, ReplyService replies, ServerOptions options)
    {
        string text = RequestReader.RequiredString(body, "text", "text");
        int? maxLength = RequestReader.OptionalInt(body, "max_length", 1, options.MaxOutputTokens);
        var decode = DecodeFields.Read(body, replies.ResolveMaxLength(maxLength));
        replies.CheckQuestion(text, "text");
        return (text, decode);
    }

    /// <summary>Outermost: counts every request by route and status and times it; logs one line per request
    /// (method, route, status, time: never the text).</summary>
    private static async Task ObserveAsync(HttpContext context, RequestDelegate next, ServerMetrics metrics, ILogger requestLog)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            string route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            int status = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 499 : context.Response.StatusCode;
            var elapsed = Stopwatch.GetElapsedTime(start);
            metrics.ObserveRequest(route, status, elapsed.TotalSeconds);
            // Resolved once, not per request; checked first, so a request at the default level formats and boxes nothing.
            if (requestLog.IsEnabled(LogLevel.Debug))
                requestLog.LogDebug("{Method} {Route} {Status} {Ms:F1} ms", context.Request.Method, route, status, elapsed.TotalMilliseconds);
        }
    }

    /// <summary>Turns refusals into JSON errors in OpenAI's shape and swallows the cancellation of a client that went away.</summary>
    private static async Task RefuseAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (ApiException e) when (!context.Response.HasStarted)
        {
            await Json.WriteErrorAsync(context.Response, e);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // the client went away: there is no one to answer
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Seqtalk.Server").LogError(e, "Request failed.");
            await Json.WriteErrorAsync(context.Response, new ApiException(StatusCodes.Status500InternalServerError,
                "The server failed to answer; the error is in its log.", "server_error", code: "internal_error"));
        }
    }

    private static Task CheckKey(HttpContext context, RequestDelegate next, string apiKey)
    {
        if (!context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal)) return next(context);
        string header = context.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(StatusCodes.Status401Unauthorized,
                "Missing API key: send 'Authorization: Bearer <key>'.", ApiException.InvalidRequest, code: "missing_api_key");
        }
        byte[] given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        byte[] expected = Encoding.UTF8.GetBytes(apiKey);
        if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(given), SHA256.HashData(expected)))
            throw new ApiException(StatusCodes.Status401Unauthorized, "Incorrect API key.", ApiException.InvalidRequest, code: "invalid_api_key");
        return next(context);
    }

    private const string WarmUpQuestion = "warm up";
    private const int WarmUpRounds = 8, WarmUpSteps = 4;

    /// <summary>Readiness: one question through the batcher (the loop runs), then a few library calls at 1, 8 and 32
    /// questions per call, so that the decoding kernels of the single-question path and of both batched paths (small
    /// and large batches project the outputs differently) have been called often enough for the JIT to compile them
    /// optimized before traffic comes. Without this, the first
    /// batches after start ran the kernels' unoptimized first-tier code (SIMD calls not inlined: many times slower)
    /// for seconds on a busy machine, and a fresh server answered at a fraction of its rate.</summary>
    private static async Task WarmUpAsync(ChatModel model, ReplyBatcher batcher, ServerState state, ILogger logger)
    {
        try
        {
            var reply = batcher.TryEnqueue("", new Decoding.DecodeOptions { MaxLength = 1 }, CancellationToken.None);
            if (reply is not null) await reply;
            await Task.Run(() =>
            {
                var options = new Decoding.DecodeOptions { MaxLength = WarmUpSteps };
                string[][] batches = [[WarmUpQuestion], [.. Enumerable.Repeat(WarmUpQuestion, 8)], [.. Enumerable.Repeat(WarmUpQuestion, 32)]];
                for (int i = 0; i < WarmUpRounds; i++)
                {
                    foreach (var batch in batches) model.ReplyBatch(batch, options);
                }
            });
            state.Ready = true;
        }
        catch (Exception e)
        {
            logger.LogError(e, "The model failed its first reply; /readyz stays unready.");
        }
    }
}

/// <summary>Who this server is: the model id and the Seqtalk version, for responses and health.</summary>
internal sealed class ServerIdentity(string modelName)
{
    public string ModelName { get; } = modelName;
    public string Version { get; } = typeof(ChatModel).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
    public string Fingerprint => "seqtalk-" + Version;
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}

/// <summary>Readiness: set after the first reply (the warm-up), cleared when the server starts stopping.</summary>
internal sealed class ServerState
{
    private volatile bool _ready;
    public bool Ready { get => _ready; set => _ready = value; }
}
