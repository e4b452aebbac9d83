using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Seqtalk.Data;
using Seqtalk.Server;
using Seqtalk.Training;

namespace Seqtalk.Bench;

/// <summary>
/// `serve` mode (issue 5): replies per second from the real HTTP server on loopback, with dynamic
/// batching on (up to 64 questions decoding at once, --wait-ms, default 0: a thread that is free takes whatever
/// queued meanwhile; the mean batch is the questions each start took) and off (batch size 1: one question at a time),
/// at 1, 8 and 64 concurrent clients (--clients), printed as
/// ratios. Each measurement starts a fresh server, runs the clients for a warm-up (a third of --seconds and at
/// least 3 s, so the JIT has tiered up the hot paths) and then measures for --seconds; with --repeat N each pair
/// is measured N times, alternating which of the two goes first, and the median ratio is printed too.
/// Besides replies/s it prints the process CPU time per reply (and, with --only, the bytes allocated per reply) (server and clients: they share the
/// process), which other load on the machine disturbs less than the rate. Clients send pre-encoded
/// JSON bodies on kept-alive connections and read every reply: by default lean load-generator clients
/// (LeanHttpClient: they take less of the two cores the server needs than HttpClient does), with
/// --client httpclient the framework's HttpClient. Models: the tutorial's (embedding 50, hidden 50) trained for one
/// epoch on ChatbotData.csv and the quality preset's trained for ten (or each --model DIR); questions: the validation rows. --profile times the
/// stages of a served reply instead (ServeProfile).
/// </summary>
internal static class ServeBench
{
    private static int s_waitMs;
    private static bool s_httpClient;
    private static double s_warmUp;

    public static int Run(string[] args)
    {
        s_waitMs = (int)ArgValue(args, "--wait-ms", 0);
        s_httpClient = ArgString(args, "--client") == "httpclient";
        double seconds = ArgValue(args, "--seconds", 5);
        int repeat = (int)ArgValue(args, "--repeat", 1);
        var modelDirs = ArgStrings(args, "--model");
        bool quick = args.Contains("--quick");
        if (quick) seconds = 1;
        s_warmUp = WarmUpSeconds(seconds, quick);
        // The host's startup lines would interleave with the table.
        Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Warning");

        var pairs = PairReader.ReadAll(RepoData(), null, out _);
        var (_, validation) = DataSplit.Split(pairs.Count, 0.1, SplitMode.Random, 1);
        var questions = validation.Select(i => pairs[i].Question).ToArray();
        var models = new List<(string Name, ChatModel Model)>();
        foreach (var dir in modelDirs) models.Add((Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))), ChatModel.Load(dir)));
        if (models.Count == 0)
        {
            // Two models: the tutorial's, whose decoding costs little next to the HTTP work, and the quality preset's
            // (embedding 128, hidden 256, BPE, attention), whose decoding is the server's bottleneck, as batching is for.
            var trainOn = quick ? pairs.Take(2000).ToList() : pairs;
            Console.WriteLine("training the tutorial model for one epoch (embedding 50, hidden 50) ...");
            models.Add(("tutorial-1-epoch", ChatModel.Train(trainOn, new TrainingOptions { Epochs = 1, Seed = 1 })));
            int epochs = quick ? 1 : 10;
            Console.WriteLine($"training the quality preset's model for {epochs} epoch(s) (embedding 128, hidden 256, BPE, attention; about a minute) ...");
            models.Add(($"quality-{epochs}-epoch{(epochs == 1 ? "" : "s")}", ChatModel.Train(trainOn, TrainingPresets.Quality with { Epochs = epochs, Seed = 1 })));
        }
        if (args.Contains("--profile"))
        {
            foreach (var (name, model) in models)
            {
                Console.WriteLine($"model {name}: {Describe(model)}");
                ServeProfile.Run(model, questions, seconds);
            }
            return 0;
        }
        var clientCounts = (ArgString(args, "--clients") ?? "1,8,64").Split(',').Select(int.Parse).ToArray();
        // The same request mix for both sides and every model: the validation questions in order, client c taking
        // every clients-th one from its own offset.
        var bodies = questions.Select(q => JsonSerializer.SerializeToUtf8Bytes(new { text = q })).ToArray();
        string? only = ArgString(args, "--only");   // "on" or "off": measure one side alone (for profiling)
        Console.WriteLine($"batched: up to 64 questions decoding at once, wait {s_waitMs} ms; unbatched: one at a time (batch size 1); {questions.Length} validation questions; "
            + $"{seconds:F0} s per measurement after {WarmUpSeconds(seconds, quick):F1} s of warm-up; {(s_httpClient ? "HttpClient" : "lean")} clients; {Environment.ProcessorCount} cores; load average {LoadAverage()}");
        var summary = new List<string>();
        foreach (var (name, model) in models)
        {
            double meanTokens = questions.Take(256).Average(q => model.CountReplyTokens(model.Reply(q)));
            Console.WriteLine();
            Console.WriteLine($"model {name}: {Describe(model)}; replies of {meanTokens:F1} tokens on average");
            // Batching must not change a reply: every question decoded alone and in batches of 64 (the server's largest).
            var batched = questions.Chunk(64).SelectMany(chunk => model.ReplyBatch(chunk)).ToArray();
            int differ = questions.Where((q, i) => model.Reply(q) != batched[i]).Count();
            Console.WriteLine($"replies in batches of 64 that differ from the reply decoded alone: {differ} of {questions.Length}");
            Console.WriteLine($"{"clients",8} {"unbatched r/s",14} {"batched r/s",12} {"ratio",7} {"mean batch",11} {"cpu µs/reply off",17} {"on",6}");
            var runs = clientCounts.ToDictionary(c => c, _ => new List<(Measurement Off, Measurement On)>());
            for (int run = 0; run < repeat; run++)
            {
                foreach (int clients in clientCounts)
                {
                    // Alternate which goes first, so neither always meets a machine the other has just warmed or heated.
                    bool offFirst = run % 2 == 0;
                    if (only is not null)
                    {
                        var alone = Measure(model, bodies, clients, seconds, maxBatch: only == "on" ? 64 : 1);
                        Console.WriteLine($"{clients,8} batching {only}: {alone.RepliesPerSecond:F0} replies/s, mean batch {alone.MeanBatch:F1}, {alone.CpuMicros:F0} cpu µs/reply, "
                            + $"{alone.AllocatedBytes:F0} bytes allocated/reply");
                        continue;
                    }
                    var first = Measure(model, bodies, clients, seconds, maxBatch: offFirst ? 1 : 64);
                    var second = Measure(model, bodies, clients, seconds, maxBatch: offFirst ? 64 : 1);
                    var (off, on) = offFirst ? (first, second) : (second, first);
                    runs[clients].Add((off, on));
                    Console.WriteLine($"{clients,8} {off.RepliesPerSecond,14:F0} {on.RepliesPerSecond,12:F0} {on.RepliesPerSecond / off.RepliesPerSecond,6:F2}x {on.MeanBatch,11:F1} {off.CpuMicros,17:F0} {on.CpuMicros,6:F0}");
                }
            }
            if (only is not null) continue;
            foreach (int clients in clientCounts)
            {
                var r = runs[clients];
                summary.Add($"{name,-18} {clients,8} {Median(r.Select(x => x.Off.RepliesPerSecond)),14:F0} {Median(r.Select(x => x.On.RepliesPerSecond)),12:F0} "
                    + $"{Median(r.Select(x => x.On.RepliesPerSecond / x.Off.RepliesPerSecond)),6:F2}x {Median(r.Select(x => x.On.MeanBatch)),11:F1} "
                    + $"{Median(r.Select(x => x.Off.CpuMicros)),17:F0} {Median(r.Select(x => x.On.CpuMicros)),6:F0}");
            }
        }
        if (summary.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"medians over {repeat} run(s) per model (the ratio is the median of each run's on/off ratio); load average {LoadAverage()}");
            Console.WriteLine($"{"model",-18} {"clients",8} {"unbatched r/s",14} {"batched r/s",12} {"ratio",7} {"mean batch",11} {"cpu µs/reply off",17} {"on",6}");
            foreach (var line in summary) Console.WriteLine(line);
        }
        return 0;
    }

    /// <summary>The warm-up before each measurement: a third of it, and at least 3 s (the JIT tiers the server's request
    /// path and the decoder up for about that long under load: measured after a 1 s warm-up, the batched rate of the
    /// quality model came out 20–30 % lower than after 2.7 s); --quick keeps a third of its 1 s.</summary>
    private static double WarmUpSeconds(double seconds, bool quick) => quick ? seconds / 3 : Math.Max(3, seconds / 3);

    /// <summary>Parameters, widths, attention and tokenizer of <paramref name="model"/>, for the table's heading.</summary>
    private static string Describe(ChatModel model)
    {
        var c = model.Config;
        return $"{model.ParameterCount:N0} parameters, embedding {c.EmbeddingDim}, hidden {c.HiddenDim}, {c.Layers} layer(s), attention {c.Attention}, "
            + $"vocabularies {model.QuestionVocabularySize:N0}/{model.AnswerVocabularySize:N0} ({model.SourceTokenizer.GetType().Name.Replace("Tokenizer", "", StringComparison.Ordinal)})";
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private readonly record struct Measurement(double RepliesPerSecond, double MeanBatch, double CpuMicros, double AllocatedBytes);

    private static Measurement Measure(ChatModel model, byte[][] bodies, int clients, double seconds, int maxBatch)
    {
        var options = new ServerOptions
        {
            Urls = "http://127.0.0.1:0",
            MaxBatchSize = maxBatch,
            MaxBatchWaitMs = maxBatch == 1 ? 0 : s_waitMs,
            QueueCapacity = 4096,
            ApiKey = "",
        };
        var app = SeqtalkServer.Build(model, options, "bench");
        app.StartAsync().GetAwaiter().GetResult();
        try
        {
            var address = new Uri(app.Urls.First());
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = address };
            var lean = s_httpClient ? [] : Enumerable.Range(0, clients).Select(_ => LeanHttpClient.ConnectAsync(address).GetAwaiter().GetResult()).ToArray();
            var requests = bodies.Select(b => LeanHttpClient.Request("POST", "/v1/reply", address, b)).ToArray();
            try
            {
                // Caller c sends the bodies c, c + clients, …, on its own connection (lean) or the shared HttpClient.
                Func<int, Task> post = s_httpClient ? i => PostAsync(http, bodies[i % bodies.Length]) : i => PostAsync(lean[i % clients], requests[i % requests.Length]);
                Func<double, long> run = s => ServeProfile.RunCallers(s, clients, post);
                run(s_warmUp);
                long before = BatchCount(http, out double requestsBefore);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                long allocated = GC.GetTotalAllocatedBytes(precise: true);
                var clock = Stopwatch.StartNew();
                long done = run(seconds);
                double elapsed = clock.Elapsed.TotalSeconds;
                var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
                allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
                long batches = BatchCount(http, out double requestCount) - before;
                return new Measurement(done / elapsed, batches > 0 ? (requestCount - requestsBefore) / batches : 0, cpuUsed.TotalMicroseconds / done, (double)allocated / done);
            }
            finally
            {
                foreach (var client in lean) client.Dispose();
            }
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            ((IAsyncDisposable)app).DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>One POST /v1/reply through <see cref="HttpClient"/>; throws unless it succeeds.</summary>
    private static async Task PostAsync(HttpClient http, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync("/v1/reply", content);
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>One prepared POST /v1/reply through a lean client; throws unless it is answered 200 with a JSON object.</summary>
    private static async Task PostAsync(LeanHttpClient client, byte[] request)
    {
        var (status, body) = await client.SendAsync(request);
        if (status != 200 || body.Count == 0 || body[0] != (byte)'{') throw new InvalidOperationException($"POST /v1/reply answered {status}.");
    }

    /// <summary>Reads the batch-size histogram's count and sum from /metrics.</summary>
    private static long BatchCount(HttpClient http, out double batchedRequests)
    {
        string metrics = http.GetStringAsync("/metrics").GetAwaiter().GetResult();
        long count = 0;
        batchedRequests = 0;
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith("seqtalk_batch_size_count", StringComparison.Ordinal)) count = (long)double.Parse(line.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
            if (line.StartsWith("seqtalk_batch_size_sum", StringComparison.Ordinal)) batchedRequests = double.Parse(line.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        }
        return count;
    }

    private static string RepoData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Seqtalk.slnx")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "ChatbotData.csv"));
        }
        throw new InvalidOperationException("No Seqtalk.slnx above the benchmark.");
    }

    private static double ArgValue(string[] args, string name, double fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>Every value given for <paramref name="name"/> (the option may repeat).</summary>
    private static List<string> ArgStrings(string[] args, string name)
    {
        var values = new List<string>();
        for (int i = 0; i + 1 < args.Length; i++)
        {
            if (args[i] == name) values.Add(args[i + 1]);
        }
        return values;
    }

    private static string? ArgString(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
