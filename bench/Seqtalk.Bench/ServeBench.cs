using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Seqtalk.Data;
using Seqtalk.Server;
using Seqtalk.Training;

namespace Seqtalk.Bench;

/// <summary>
/// `serve` mode (issue 5): replies per second from the real HTTP server on loopback, with dynamic
/// batching on (micro-batches of up to 64, --wait-ms, default 0: a batch takes whatever queued while the last one decoded) and off (batch size 1), at 1, 8 and 64
/// concurrent clients, printed as ratios. Model: the tutorial's (embedding 50, hidden 50) trained for
/// one epoch on ChatbotData.csv (or --model DIR); questions: its validation rows.
/// </summary>
internal static class ServeBench
{
    private static int s_waitMs;

    public static int Run(string[] args)
    {
        s_waitMs = (int)ArgValue(args, "--wait-ms", 0);
        double seconds = ArgValue(args, "--seconds", 5);
        string? modelDir = ArgString(args, "--model");
        bool quick = args.Contains("--quick");
        if (quick) seconds = 1;

        var pairs = PairReader.ReadAll(RepoData(), null, out _);
        var (_, validation) = DataSplit.Split(pairs.Count, 0.1, SplitMode.Random, 1);
        var questions = validation.Select(i => pairs[i].Question).ToArray();
        ChatModel model;
        if (modelDir is not null)
        {
            model = ChatModel.Load(modelDir);
        }
        else
        {
            Console.WriteLine("training the tutorial model for one epoch (embedding 50, hidden 50) ...");
            model = ChatModel.Train(quick ? pairs.Take(2000).ToList() : pairs, new TrainingOptions { Epochs = 1, Seed = 1 });
        }
        Console.WriteLine($"batched: up to 64 per micro-batch, wait {s_waitMs} ms; unbatched: batch size 1");
        Console.WriteLine($"model: {model.ParameterCount:N0} parameters; {questions.Length} validation questions; {seconds:F0} s per measurement; {Environment.ProcessorCount} cores");
        Console.WriteLine($"{"clients",8} {"unbatched r/s",14} {"batched r/s",12} {"ratio",7} {"mean batch",11}");
        foreach (int clients in new[] { 1, 8, 64 })
        {
            var (off, _) = Measure(model, questions, clients, seconds, maxBatch: 1);
            var (on, meanBatch) = Measure(model, questions, clients, seconds, maxBatch: 64);
            Console.WriteLine($"{clients,8} {off,14:F0} {on,12:F0} {on / off,6:F2}x {meanBatch,11:F1}");
        }
        return 0;
    }

    private static (double RepliesPerSecond, double MeanBatch) Measure(ChatModel model, string[] questions, int clients, double seconds, int maxBatch)
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
            // Warm up.
            http.PostAsJsonAsync("/v1/reply", new { text = questions[0] }).GetAwaiter().GetResult().EnsureSuccessStatusCode();
            long before = BatchCount(http, out double tokensBefore);
            long done = 0;
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(seconds);
            var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
            {
                int i = c;
                while (clock.Elapsed < deadline)
                {
                    var response = await http.PostAsJsonAsync("/v1/reply", new { text = questions[i % questions.Length] });
                    response.EnsureSuccessStatusCode();
                    Interlocked.Increment(ref done);
                    i += clients;
                }
            })).ToArray();
            Task.WaitAll(tasks);
            double elapsed = clock.Elapsed.TotalSeconds;
            long batches = BatchCount(http, out double requests) - before;
            return (done / elapsed, batches > 0 ? (requests - tokensBefore) / batches : 0);
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            ((IAsyncDisposable)app).DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
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

    private static string? ArgString(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
