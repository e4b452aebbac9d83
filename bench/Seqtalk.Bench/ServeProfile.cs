using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Seqtalk.Decoding;
using Seqtalk.Server;

namespace Seqtalk.Bench;

/// <summary>
/// `serve --profile`: where a served reply's time goes, stage by stage, each measured on its own for a
/// fixed time: the library's greedy decode at several batch sizes, the question's tokenization, the
/// reply's re-tokenization, the batcher's queue and hand-off with no HTTP (64 callers), and the HTTP floor
/// (64 clients on <c>GET /healthz</c>, no model). Each line gives wall and process CPU time per item, so
/// it stays readable on a loaded machine (CPU time is what the other processes do not steal).
/// </summary>
internal static class ServeProfile
{
    public static void Run(ChatModel model, string[] questions, double seconds)
    {
        Console.WriteLine($"{"stage",-44} {"items/s",10} {"wall µs",9} {"cpu µs",8}");
        foreach (int batch in new[] { 1, 2, 4, 8, 16, 32, 64 })
        {
            int next = 0;
            Row($"library ReplyBatch, {batch} per call", seconds, () =>
            {
                var chunk = new string[batch];
                for (int i = 0; i < batch; i++) chunk[i] = questions[next++ % questions.Length];
                model.ReplyBatch(chunk);
                return batch;
            });
        }
        // The greedy output step of 4 to 16 rows: MatMulForward's GEMM over whole logits rows against the int8 screen
        // row by row (InferenceSession.ScreenRows), alternated, on the same encoded questions; the replies must agree.
        var sources = questions.Select(q => model.SourceTokenizer.EncodeToIds(q).ToArray()).ToArray();
        foreach (int batch in new[] { 2, 4, 8, 16 })
        {
            foreach (int screenRows in new[] { InferenceSession.DefaultScreenRows, 16 })
            {
                var session = new InferenceSession(model.Network, 128) { ScreenRows = screenRows };
                int next = 0;
                Row($"session greedy, {batch} rows, screen ≤ {screenRows} rows", seconds, () =>
                {
                    var chunk = new int[batch][];
                    for (int i = 0; i < batch; i++) chunk[i] = sources[next++ % sources.Length];
                    session.GreedyDecode(chunk, model.DefaultMaxReplyLength, banUnknown: true);
                    return batch;
                });
            }
        }
        // Batched steps with the LSTM and attention weights packed once per model against packing them in every call.
        foreach (int batch in new[] { 8, 32, 64 })
        {
            foreach (bool packedOnce in new[] { false, true })
            {
                var session = new InferenceSession(model.Network, 128) { UsePackedWeights = packedOnce };
                int next = 0;
                Row($"session greedy, {batch} rows, packed {(packedOnce ? "once" : "per call")}", seconds, () =>
                {
                    var chunk = new int[batch][];
                    for (int i = 0; i < batch; i++) chunk[i] = sources[next++ % sources.Length];
                    session.GreedyDecode(chunk, model.DefaultMaxReplyLength, banUnknown: true);
                    return batch;
                });
            }
        }
        var replies = model.ReplyBatch(questions);
        int q = 0;
        Row("question tokenization (CountQuestionTokens)", seconds, () => { model.CountQuestionTokens(questions[q++ % questions.Length]); return 1; });
        int r = 0;
        Row("reply re-tokenization (CountReplyTokens)", seconds, () => { model.CountReplyTokens(replies[r++ % replies.Count]); return 1; });
        var greedy = new DecodeOptions { MaxLength = model.DefaultMaxReplyLength };
        foreach (int maxBatch in new[] { 1, 64 })
        {
            var options = new ServerOptions { MaxBatchSize = maxBatch, QueueCapacity = 4096 };
            var batcher = new ReplyBatcher(model, options, new ServerMetrics(), NullLogger<ReplyBatcher>.Instance);
            try
            {
                Concurrent($"batcher, no HTTP, 64 callers, batch ≤ {maxBatch}", seconds, 64, async i =>
                {
                    var pending = batcher.TryEnqueue(questions[i % questions.Length], greedy, CancellationToken.None) ?? throw new InvalidOperationException("queue full");
                    await pending;
                });
            }
            finally
            {
                batcher.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        var app = SeqtalkServer.Build(model, new ServerOptions { Urls = "http://127.0.0.1:0", ApiKey = "" }, "bench");
        app.StartAsync().GetAwaiter().GetResult();
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = new Uri(app.Urls.First()) };
            Concurrent("HTTP floor: GET /healthz, 64 HttpClients", seconds, 64, async _ => (await http.GetAsync("/healthz")).EnsureSuccessStatusCode());
            var address = new Uri(app.Urls.First());
            var lean = Enumerable.Range(0, 64).Select(_ => LeanHttpClient.ConnectAsync(address).GetAwaiter().GetResult()).ToArray();
            byte[] health = LeanHttpClient.Request("GET", "/healthz", address);
            try
            {
                // RunCallers gives caller c the indices c, c + 64, …: each caller keeps its own connection.
                Concurrent("HTTP floor: GET /healthz, 64 lean clients", seconds, 64, async i =>
                {
                    if ((await lean[i % 64].SendAsync(health)).Status != 200) throw new InvalidOperationException("/healthz failed");
                });
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

    private static void Row(string stage, double seconds, Func<int> work)
    {
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < Math.Min(0.5, seconds / 4);) work();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        long items = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds) items += work();
        Print(stage, items, clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
    }

    private static void Concurrent(string stage, double seconds, int callers, Func<int, Task> call)
    {
        RunCallers(Math.Min(0.5, seconds / 4), callers, call);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        long items = RunCallers(seconds, callers, call);
        Print(stage, items, clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
    }

    /// <summary>Runs <paramref name="callers"/> loops for <paramref name="seconds"/>: caller c calls <paramref name="call"/>
    /// with c, c + callers, c + 2·callers, …; returns the calls completed.</summary>
    internal static long RunCallers(double seconds, int callers, Func<int, Task> call)
    {
        long done = 0;
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            for (int i = c; clock.Elapsed.TotalSeconds < seconds; i += callers)
            {
                await call(i);
                Interlocked.Increment(ref done);
            }
        })).ToArray();
        Task.WaitAll(tasks);
        return done;
    }

    private static void Print(string stage, long items, TimeSpan wall, TimeSpan cpu)
        => Console.WriteLine($"{stage,-44} {items / wall.TotalSeconds,10:F0} {wall.TotalMicroseconds / items,9:F1} {cpu.TotalMicroseconds / items,8:F1}");
}
