using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Seqtalk.Data;
using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Bench;

/// <summary>`workloads` mode: the five workloads of issue 3 on ChatbotData.csv, timed in one process,
/// with the machine's FMA peak measured in the same run. The PyTorch side (bench/baseline) writes the
/// same JSON schema. What each workload is and how FLOPs are counted: docs/benchmarks.md.</summary>
internal static partial class Workloads
{
    private const int ValidationSeed = 1;          // the PyTorch baseline's split
    private const int ReplyMaxSteps = 22;
    private const int LatencyQuestions = 200;
    private const int ConcurrentCallers = 16;
    private const int BatchSize = 128;
    private const int DefaultReplyEpochs = 19;     // after workload 1's epoch: 20 in all

    private sealed record Settings(int Threads, string? JsonPath, bool Quick, string DataPath, string? Only, int ReplyEpochs, bool Profile = false);

    private sealed record Result(string Workload, string Metric, double Value, string Unit, string Detail,
        double? GflopsPerSecond = null, double? PeakFraction = null, double? Seconds = null);

    private static bool s_profile;

    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "output-ab") return OutputAb(args[1..]);
        if (args.Length > 0 && args[0] == "rmsprop-ab") return RmsPropAb();
        Settings? settings = Parse(args);
        if (settings is null) return 2;
        if (!File.Exists(settings.DataPath))
        {
            Console.Error.WriteLine($"error: the data file {settings.DataPath} does not exist; pass --data PATH.");
            return 2;
        }

        int threads = settings.Threads;
        Console.WriteLine($"Seqtalk workloads: {threads} thread(s){(settings.Quick ? ", quick" : "")}; data {settings.DataPath}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {CpuName()}, SIMD {SimdName()}, {RuntimeInformation.FrameworkDescription}; load {LoadAverage()}");

        var pairs = PairReader.ReadAll(settings.DataPath, null, out _);
        double peak = FmaPeak(threads);
        double peak1 = threads == 1 ? peak : FmaPeak(1);
        Console.WriteLine($"FMA peak (register-only loop, {threads} thread(s) at once): {peak:F1} GFLOP/s ({peak1:F1} on one thread)");
        // The % of peak below is of the widest vectors' peak; the 256-bit figure shows how wide the FMA pipes are.
        s_peak256 = FmaPeak256();
        if (s_peak256 is { } p256)
            Console.WriteLine($"  the same loop on 256-bit vectors: {p256:F1} GFLOP/s on one thread ({peak1 / p256:F2}x less than 512-bit: {(peak1 / p256 > 1.5 ? "full-width 512-bit FMA pipes" : "512-bit FMA split into halves")})");
        Console.WriteLine();

        var results = new List<Result>();
        var tutorial = new TrainingOptions { Seed = ValidationSeed, Threads = threads, BatchSize = BatchSize };
        // --only train: the two training workloads; tutorial: the first only; reply: the tutorial model and the reply workloads
        // (the tutorial model is trained either way: the replies use it). For iterating, not for reports.
        s_profile = settings.Profile;
        if (settings.Only == "large")
        {
            var (rl, _) = TrainWorkload("train_large", pairs, tutorial with { EmbeddingDim = 256, HiddenDim = 512, Layers = 2, MaxVocabulary = 8000 },
                settings.Quick ? 2 : 0, peak, 0);
            Print(rl);
            return 0;
        }
        var (r1, chat) = TrainWorkload("train_tutorial", pairs, tutorial, settings.Quick ? 6 : 0, peak, settings.ReplyEpochs);
        results.Add(r1);
        Print(r1);

        if (settings.Only is not ("reply" or "tutorial"))
        {
            var large = tutorial with { EmbeddingDim = 256, HiddenDim = 512, Layers = 2, MaxVocabulary = 8000 };
            var (r2, _) = TrainWorkload("train_large", pairs, large, settings.Quick ? 2 : 0, peak, 0);
            results.Add(r2);
            Print(r2);
        }
        if (settings.Only is "train" or "tutorial")
        {
            Console.WriteLine($"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0):F0} MB; load at the end {LoadAverage()}");
            return 0;
        }

        var (_, validation) = DataSplit.Split(pairs.Count, tutorial.ValidationSize, tutorial.Split, ValidationSeed);
        var questions = validation.Select(i => pairs[i].Question).ToList();
        if (settings.Quick) questions = questions.Take(256).ToList();
        var decode = new DecodeOptions { MaxLength = ReplyMaxSteps };

        var r3 = ReplyLatency(chat, questions.Take(settings.Quick ? 20 : LatencyQuestions).ToList(), decode);
        results.Add(r3);
        Print(r3);
        // Batch greedy decoding shares the output projection over --threads threads; the 16 concurrent callers of
        // workload 5 already fill the cores, so they decode on their own threads.
        var r4 = ReplyBatch(chat, questions, decode with { Threads = threads });
        results.Add(r4);
        Print(r4);
        var r5 = ReplyConcurrent(chat, questions, decode);
        results.Add(r5);
        Print(r5);

        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
        Console.WriteLine();
        Console.WriteLine($"peak working set: {peakMb:F0} MB; load at the end {LoadAverage()}");
        if (settings.JsonPath is { } json) WriteJson(json, settings, peak, peak1, peakMb, results);
        return 0;
    }

    private static double? s_peak256;

    private static void Print(Result r)
    {
        string extra = r.GflopsPerSecond is { } g ? $"  {g,6:F1} GFLOP/s = {r.PeakFraction,4:P0} of peak" : "";
        Console.WriteLine($"{r.Workload,-17} {r.Value,12:F2} {r.Unit,-10}{extra}   {r.Detail}");
    }

    // ---- Training: the trainer's own steps (forward + backward + clip check + optimizer), data prepared beforehand ----

    private static (Result Result, ChatModel Model) TrainWorkload(string name, List<QaPair> pairs, TrainingOptions options, int maxSteps, double peak, int extraEpochs)
    {
        // Tokenization, encoding and batching are not timed (the same preparation as Trainer.Run).
        var (trainIdx, validIdx) = DataSplit.Split(pairs.Count, options.ValidationSize, options.Split, options.Seed);
        var normalizer = new TextNormalizerOptions { Mode = options.Normalization, Lowercase = options.Lowercase };
        var srcTok = Trainer.TrainTokenizer(options, normalizer, trainIdx.Select(i => pairs[i].Question));
        var tgtTok = Trainer.TrainTokenizer(options, normalizer, trainIdx.Select(i => pairs[i].Answer));
        var train = Trainer.Encode(pairs, trainIdx, srcTok, tgtTok, options.MaxSequenceLength);
        var valid = Trainer.Encode(pairs, validIdx, srcTok, tgtTok, options.MaxSequenceLength);
        var config = new ModelConfig
        {
            SourceVocabSize = srcTok.Vocabulary.Count,
            TargetVocabSize = tgtTok.Vocabulary.Count,
            EmbeddingDim = options.EmbeddingDim,
            HiddenDim = options.HiddenDim,
            Layers = options.Layers,
        };
        var model = Seq2SeqModel.Create(config, options.Seed);
        var all = train.Concat(valid).ToList();
        int maxSource = Math.Max(1, all.Max(p => p.Source.Length));
        int maxTarget = all.Max(p => p.Target.Length) + 1;
        var workspace = new TrainingWorkspace(model, Math.Min(options.BatchSize, train.Count), maxSource, maxTarget, options.Threads);
        var shuffle = new Random(options.Seed);
        var batches = Batcher.MakeBatches(train, options.BatchSize, shuffle);
        if (maxSteps > 0) batches = batches.Take(maxSteps).ToList();
        var optimizer = new Optimizer(options.Optimizer, model.Parameters.Length);
        var gradients = new float[model.Parameters.Length];

        // Warm up (JIT tiering) with the same workspace and a throwaway optimizer, then put the seed's weights
        // back: untimed, and no second workspace to inflate the peak working set.
        var initial = (float[])model.Parameters.Clone();
        var warmOptimizer = new Optimizer(options.Optimizer, model.Parameters.Length);
        foreach (var batch in batches.Take(3))
        {
            Array.Clear(gradients);
            workspace.ForwardBackward(batch, gradients, 1f / batch.RealTargetTokens);
            warmOptimizer.Update(model.Parameters, gradients, options.LearningRate);
        }
        initial.CopyTo(model.Parameters, 0);

        var profile = s_profile ? new PhaseProfile() : null;
        workspace.Profile = profile;
        long tokens = 0;
        double flops = 0;
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        foreach (var batch in batches)
        {
            Array.Clear(gradients);
            var stats = workspace.ForwardBackward(batch, gradients, 1f / batch.RealTargetTokens);
            long optimizerStart = PhaseProfile.Now;
            double norm = Math.Sqrt(optimizer.SumOfSquares(gradients, workspace.Pool));
            if (!double.IsFinite(stats.LossSum) || !double.IsFinite(norm)) throw new InvalidOperationException($"{name}: non-finite loss or gradient.");
            optimizer.Update(model.Parameters, gradients, options.LearningRate, workspace.Pool);
            profile?.Add(TrainingPhase.Optimizer, optimizerStart);
            tokens += stats.Tokens;
            flops += BatchFlops(batch, config);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds;
        double gflops = flops / seconds / 1e9;
        // CPU seconds (all threads of the process) next to the wall clock: on a shared machine the wall clock
        // also counts the time other jobs held our core; tokens per CPU-second is steadier from run to run.
        string detail = $"{batches.Count} steps, {tokens} real target tokens in {seconds:F2} s (CPU {cpuSeconds:F2} s, {tokens / cpuSeconds:F0} tokens per CPU-s); E={config.EmbeddingDim} H={config.HiddenDim} L={config.Layers} " +
            $"Vs={config.SourceVocabSize} Vt={config.TargetVocabSize}; {flops / tokens / 1e6:F2} MFLOP/token";
        var result = new Result(name, "tokens_per_s", tokens / seconds, "tokens/s", detail, gflops, gflops / peak, seconds);
        workspace.Profile = null;
        if (profile is not null)
        {
            Console.WriteLine($"{name}: wall-clock seconds per phase over the epoch ({seconds:F2} s in all, {options.Threads} thread(s))");
            foreach (var phase in Enum.GetValues<TrainingPhase>())
                Console.WriteLine($"  {phase,-18} {profile.Seconds(phase),8:F3} s  {profile.Seconds(phase) / seconds,6:P1}");
        }
        // More epochs for the reply workloads (untimed), so replies have the length a trained model gives.
        for (int epoch = 0; epoch < extraEpochs; epoch++)
        {
            foreach (var batch in Batcher.MakeBatches(train, options.BatchSize, shuffle))
            {
                Array.Clear(gradients);
                workspace.ForwardBackward(batch, gradients, 1f / batch.RealTargetTokens);
                optimizer.Update(model.Parameters, gradients, options.LearningRate);
            }
        }
        int longest = train.Max(p => p.Target.Length);
        var chat = new ChatModel(model, srcTok, tgtTok, Trainer.DefaultMaxReplyLength(longest), null, null, options);
        return (result, chat);
    }

    /// <summary>GEMM FLOPs of one forward+backward over the real (unpadded) rows: per LSTM layer and real
    /// row 3 × 2·4H·(in + H) (forward, dW, dInput), per real target token 3 × 2·H·Vt (projection).</summary>
    internal static double BatchFlops(Batch batch, ModelConfig config)
    {
        double sourceRows = 0;
        for (int b = 0; b < batch.Size; b++) sourceRows += batch.SourceLengths[b];
        double targetRows = batch.RealTargetTokens;
        double h = config.HiddenDim, lstm = 0;
        for (int k = 0; k < config.Layers; k++) lstm += 3 * 2 * 4 * h * ((k == 0 ? config.EmbeddingDim : h) + h);
        return lstm * (sourceRows + targetRows) + 3 * 2 * h * config.TargetVocabSize * targetRows;
    }

    // ---- Replies: through the public ChatModel API ----

    private static Result ReplyLatency(ChatModel chat, List<string> questions, DecodeOptions decode)
    {
        for (int i = 0; i < Math.Min(10, questions.Count); i++) chat.Reply(questions[i], decode);   // warm up
        var ms = new double[questions.Count];
        long words = 0;
        for (int i = 0; i < questions.Count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            string reply = chat.Reply(questions[i], decode);
            ms[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            words += chat.TargetTokenizer.EncodeToIds(reply).Count;
        }
        Array.Sort(ms);
        double median = ms[ms.Length / 2];
        return new Result("reply_latency", "median_ms", median, "ms", $"{questions.Count} questions one at a time; p90 {ms[ms.Length * 9 / 10]:F3} ms; {(double)words / questions.Count:F1} tokens per reply");
    }

    private static Result ReplyBatch(ChatModel chat, List<string> questions, DecodeOptions decode)
    {
        chat.ReplyBatch(questions.Take(BatchSize).ToList(), decode);   // warm up
        var seconds = new List<double>();
        for (int run = 0; run < 3; run++)
        {
            long start = Stopwatch.GetTimestamp();
            chat.ReplyBatch(questions, decode);
            seconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        seconds.Sort();
        double s = seconds[1];
        return new Result("reply_batch", "replies_per_s", questions.Count / s, "replies/s", $"{questions.Count} questions in batches of {BatchSize}, max {ReplyMaxSteps} steps; median of 3 runs {s * 1e3:F1} ms");
    }

    private static Result ReplyConcurrent(ChatModel chat, List<string> questions, DecodeOptions decode)
    {
        var slices = new List<string>[ConcurrentCallers];
        for (int c = 0; c < ConcurrentCallers; c++) slices[c] = [];
        for (int i = 0; i < questions.Count; i++) slices[i % ConcurrentCallers].Add(questions[i]);
        var seconds = new List<double>();
        for (int run = 0; run < 3; run++)
        {
            using var ready = new CountdownEvent(ConcurrentCallers);
            using var go = new ManualResetEventSlim();
            var callers = new Thread[ConcurrentCallers];
            for (int c = 0; c < ConcurrentCallers; c++)
            {
                var slice = slices[c];
                callers[c] = new Thread(() => { ready.Signal(); go.Wait(); chat.ReplyBatch(slice, decode); });
                callers[c].Start();
            }
            ready.Wait();
            long start = Stopwatch.GetTimestamp();
            go.Set();
            foreach (var t in callers) t.Join();
            seconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        seconds.Sort();
        double s = seconds[1];
        return new Result("reply_concurrent", "replies_per_s", questions.Count / s, "replies/s", $"{questions.Count} questions split over {ConcurrentCallers} concurrent ReplyBatch callers; median of 3 runs {s * 1e3:F1} ms");
    }

    // ---- Command line, machine, JSON ----

    private static Settings? Parse(string[] args)
    {
        int threads = 1;
        string? json = null, data = null, only = null;
        bool quick = false, profile = false;
        int? replyEpochs = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads" when i + 1 < args.Length && int.TryParse(args[i + 1], out int t) && t >= 1: threads = t; i++; break;
                case "--json" when i + 1 < args.Length: json = args[++i]; break;
                case "--data" when i + 1 < args.Length: data = args[++i]; break;
                case "--quick": quick = true; break;
                case "--reply-epochs" when i + 1 < args.Length && int.TryParse(args[i + 1], out int re) && re >= 0: replyEpochs = re; i++; break;
                case "--only" when i + 1 < args.Length: only = args[++i]; break;
                case "--profile": profile = true; break;
                default:
                    Console.Error.WriteLine($"error: unknown or incomplete option '{args[i]}'.");
                    Console.Error.WriteLine("usage: workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--only train|tutorial|large|reply] [--reply-epochs N] [--profile]");
                    return null;
            }
        }
        data ??= DefaultDataPath();
        // The reply workloads use the tutorial model after 20 epochs by default (the tutorial's run, whose replies
        // average about 4 tokens, as the issue's PyTorch figures do); --quick keeps the 1-epoch model.
        return new Settings(threads, json, quick, Path.GetFullPath(data), only, replyEpochs ?? (quick ? 0 : DefaultReplyEpochs), profile);
    }

    internal static string DefaultDataPath()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Seqtalk.slnx")))
                    return Path.Combine(dir.FullName, "..", "shared", "data", "ChatbotData.csv");
            }
        }
        return Path.Combine("..", "shared", "data", "ChatbotData.csv");
    }

    private static string SimdName() =>
        Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : Vector128.IsHardwareAccelerated ? "Vector128" : "scalar";

    private static string CpuName()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
        catch (UnauthorizedAccessException) { return "n/a"; }
    }

    private static void WriteJson(string path, Settings settings, double peak, double peak1, double peakMb, List<Result> results)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("engine", "seqtalk");
        w.WriteNumber("threads", settings.Threads);
        w.WriteBoolean("quick", settings.Quick);
        w.WriteNumber("reply_model_epochs", 1 + settings.ReplyEpochs);
        w.WriteStartObject("machine");
        w.WriteNumber("cores", Environment.ProcessorCount);
        w.WriteString("cpu", CpuName());
        w.WriteString("simd", SimdName());
        w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
        w.WriteString("os", RuntimeInformation.OSDescription);
        w.WriteString("load_average", LoadAverage());
        w.WriteNumber("fma_peak_1_thread_gflops", Math.Round(peak1, 2));
        if (s_peak256 is { } p256) w.WriteNumber("fma_peak_256bit_1_thread_gflops", Math.Round(p256, 2));
        w.WriteEndObject();
        w.WriteStartArray("results");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("workload", r.Workload);
            w.WriteString("metric", r.Metric);
            w.WriteNumber("value", Math.Round(r.Value, 4));
            if (r.Seconds is { } s) w.WriteNumber("seconds", Math.Round(s, 4));
            if (r.GflopsPerSecond is { } g) w.WriteNumber("gflops", Math.Round(g, 2));
            if (r.PeakFraction is { } f) w.WriteNumber("fraction_of_fma_peak", Math.Round(f, 4));
            w.WriteString("detail", r.Detail);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("fma_peak_gflops", Math.Round(peak, 2));
        w.WriteNumber("peak_working_set_mb", Math.Round(peakMb, 1));
        w.WriteEndObject();
        Console.WriteLine($"wrote {path}");
    }
}
