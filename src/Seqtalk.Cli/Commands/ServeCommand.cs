using System.CommandLine;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Seqtalk.Server;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk serve --model DIR [--urls …]</c>: the HTTP chat service and web page (docs/server.md).</summary>
internal static class ServeCommand
{
    private static readonly Dictionary<string, string> s_optionNames = new()
    {
        [nameof(ServerOptions.Urls)] = "--urls",
        [nameof(ServerOptions.MaxInputChars)] = "--max-input-chars",
        [nameof(ServerOptions.MaxOutputTokens)] = "--max-output-tokens",
        [nameof(ServerOptions.MaxBatchSize)] = "--max-batch-size",
        [nameof(ServerOptions.MaxBatchWaitMs)] = "--max-batch-wait-ms",
        [nameof(ServerOptions.QueueCapacity)] = "--queue-capacity",
        [nameof(ServerOptions.RequestTimeoutSeconds)] = "--request-timeout",
    };

    public static Command Create()
    {
        var model = SharedOptions.Model();
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on, separated by ';'.", DefaultValueFactory = _ => ServerOptions.DefaultUrls };
        var maxInput = new Option<int>("--max-input-chars") { Description = "Longest question accepted (longer: HTTP 413).", DefaultValueFactory = _ => ServerOptions.DefaultMaxInputChars };
        var maxOutput = new Option<int>("--max-output-tokens") { Description = "Longest reply a request may ask for.", DefaultValueFactory = _ => ServerOptions.DefaultMaxOutputTokens };
        var maxBatch = new Option<int>("--max-batch-size") { Description = "Most requests decoded at once (1: one at a time).", DefaultValueFactory = _ => ServerOptions.DefaultMaxBatchSize };
        var maxWait = new Option<int>("--max-batch-wait-ms") { Description = "How long a request that finds the batcher idle waits for more (requests queued during a decode never wait).", DefaultValueFactory = _ => ServerOptions.DefaultMaxBatchWaitMs };
        var queue = new Option<int>("--queue-capacity") { Description = "Requests waiting at most (more: HTTP 429).", DefaultValueFactory = _ => ServerOptions.DefaultQueueCapacity };
        var timeout = new Option<int>("--request-timeout") { Description = "Seconds before a request gets HTTP 504.", DefaultValueFactory = _ => ServerOptions.DefaultRequestTimeoutSeconds };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' (default: the SEQTALK_API_KEY environment variable, if set)." };
        var logText = new Option<bool>("--log-user-text") { Description = "Log questions and replies (off by default)." };

        var command = new Command("serve", "Serve the model over HTTP: a chat page at /, POST /v1/reply and an OpenAI-compatible /v1/chat/completions.")
        {
            model, urls, maxInput, maxOutput, maxBatch, maxWait, queue, timeout, apiKey, logText,
        };
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var options = new ServerOptions
            {
                Urls = parse.GetValue(urls)!,
                MaxInputChars = parse.GetValue(maxInput),
                MaxOutputTokens = parse.GetValue(maxOutput),
                MaxBatchSize = parse.GetValue(maxBatch),
                MaxBatchWaitMs = parse.GetValue(maxWait),
                QueueCapacity = parse.GetValue(queue),
                RequestTimeoutSeconds = parse.GetValue(timeout),
                ApiKey = parse.GetValue(apiKey),
                LogUserText = parse.GetValue(logText),
            };
            CommandRunner.Validate(options.Validate, s_optionNames);
            string directory = parse.GetValue(model)!;
            var chat = ChatModel.Load(directory);

            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            try
            {
                Console.WriteLine($"serving {name} on {options.Urls} (Ctrl-C stops)");
                SeqtalkServer.RunAsync(chat, options, string.IsNullOrEmpty(name) ? "seqtalk" : name, stop.Token).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is IOException or SocketException || e.InnerException is SocketException)
            {
                throw new SeqtalkException($"cannot listen on {options.Urls}: {e.Message}", e);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }
}
