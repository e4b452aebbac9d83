using System.Diagnostics;
using System.Runtime.Intrinsics;
using KernelMath = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Bench;

/// <summary>`gemm` mode: a quick Stopwatch harness for the three MatMul kernels (one thread, full range).</summary>
/// <remarks>Like llm.c's dev/cpu benchmarks, every kernel is first checked against its naive twin (on a slice of
/// the range, so the scalar reference stays quick), then timed: warmup, then the median of short repetitions.
/// The FMA peak comes from a register-only FMA loop in the same process, so ratios are comparable on a busy machine.</remarks>
internal static class GemmBench
{
    private sealed record Shape(string Name, int Rows, int In, int Out);

    private static readonly Shape[] Shapes =
    [
        new("tutorial out-proj  N=640", 640, 50, 9848),
        new("tutorial in-proj   T*B=1280", 1280, 50, 200),
        new("tutorial recurrent B=128", 128, 50, 200),
        new("decode out-proj    B=1", 1, 50, 9848),
        new("decode recurrent   B=1", 1, 50, 200),
        new("large in-proj      T*B=1280", 1280, 256, 2048),
        new("large recurrent    B=128", 128, 512, 2048),
        new("large out-proj     N=640", 640, 512, 8000),
    ];

    public static int Run(string[] args)
    {
        string? filter = args.Length > 0 ? args[0] : null;
        string simd = KernelMath.GemmUses512 ? "Vector512" : KernelMath.GemmUses256 ? "Vector256" : "scalar";
        double peak = MeasureFmaPeak();
        Console.WriteLine($"GEMM path: {simd}; FMA peak (register-only loop, 1 thread, median at start): {peak:F1} GFLOP/s; {Environment.ProcessorCount} cores");
        Console.WriteLine("One thread, full range. ms, GFLOP/s: median sample; peak: the FMA loop sampled between the kernel's samples (median);");
        Console.WriteLine($"frac = GFLOP/s / peak; best = fastest sample (least disturbed), for comparing code on a busy machine. {LoadAverage()}");
        Console.WriteLine($"{"shape",-28} {"rows×in×out",-16} {"kernel",-7} {"check",-16} {"ms",8} {"GFLOP/s",8} {"peak",6} {"frac",6} {"best",6} {"frac",6}");
        bool allPassed = true;
        foreach (Shape shape in Shapes)
        {
            if (filter != null && !shape.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            allPassed &= RunShape(shape);
        }

        Console.WriteLine(LoadAverage());
        Console.WriteLine(allPassed ? "All kernels matched their naive twins." : "SOME KERNELS DID NOT MATCH THEIR NAIVE TWINS.");
        return allPassed ? 0 : 1;
    }

    private static bool RunShape(Shape s)
    {
        var rng = new Random(42);
        float[] x = Fill(rng, s.Rows * s.In, 1f);
        float[] w = Fill(rng, s.Out * s.In, MathF.Sqrt(6f / (s.In + s.Out)));
        float[] bias = Fill(rng, s.Out, 0.1f);
        float[] dy = Fill(rng, s.Rows * s.Out, 1f / s.Out);
        float[] y = new float[s.Rows * s.Out], dx = new float[s.Rows * s.In], dw = new float[s.Out * s.In], db = new float[s.Out];
        double flops = 2.0 * s.Rows * s.In * s.Out;
        string dims = $"{s.Rows}×{s.In}×{s.Out}";
        bool ok = true;

        // Checks on a slice: the first rows (forward, backward-input) or output rows (backward-weight).
        int checkRows = Math.Min(s.Rows, 7), checkOut = Math.Min(s.Out, 37);
        string fwdCheck = Check(() =>
        {
            float[] a = new float[y.Length], b = new float[y.Length];
            KernelMath.MatMulForward(x, w, bias, a, s.Rows, s.In, s.Out, 0, checkRows);
            KernelMath.MatMulForwardNaive(x, w, bias, b, s.Rows, s.In, s.Out, 0, checkRows);
            return (a, b);
        }, ref ok);
        string bwdInCheck = Check(() =>
        {
            float[] a = new float[dx.Length], b = new float[dx.Length];
            KernelMath.MatMulBackwardInput(dy, w, a, s.Rows, s.In, s.Out, 0, checkRows);
            KernelMath.MatMulBackwardInputNaive(dy, w, b, s.Rows, s.In, s.Out, 0, checkRows);
            return (a, b);
        }, ref ok);
        string bwdWCheck = Check(() =>
        {
            float[] a = new float[dw.Length + db.Length], b = new float[dw.Length + db.Length];
            KernelMath.MatMulBackwardWeight(dy, x, a.AsSpan(0, dw.Length), a.AsSpan(dw.Length), s.Rows, s.In, s.Out, 0, checkOut);
            KernelMath.MatMulBackwardWeightNaive(dy, x, b.AsSpan(0, dw.Length), b.AsSpan(dw.Length), s.Rows, s.In, s.Out, 0, checkOut);
            return (a, b);
        }, ref ok);

        Report(s.Name, dims, "fwd", fwdCheck, Time(() => KernelMath.MatMulForward(x, w, bias, y, s.Rows, s.In, s.Out, 0, s.Rows)), flops);
        if (s.Rows > 1)
        {
            Report("", "", "bwd-in", bwdInCheck, Time(() => KernelMath.MatMulBackwardInput(dy, w, dx, s.Rows, s.In, s.Out, 0, s.Rows)), flops);
            Report("", "", "bwd-w", bwdWCheck, Time(() => KernelMath.MatMulBackwardWeight(dy, x, dw, db, s.Rows, s.In, s.Out, 0, s.Out)), flops);
        }

        return ok;
    }

    private static string LoadAverage()
        => File.Exists("/proc/loadavg") ? $"Load average: {string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3))}." : "";

    private static string Check(Func<(float[] Actual, float[] Expected)> run, ref bool ok)
    {
        var (actual, expected) = run();
        double maxRel = 0;
        bool pass = true;
        for (int i = 0; i < actual.Length; i++)
        {
            double abs = Math.Abs(actual[i] - expected[i]), rel = abs / Math.Max(Math.Abs(expected[i]), 1e-30);
            if (abs > 1e-5) maxRel = Math.Max(maxRel, rel);
            if (!(abs <= 1e-5 || rel <= 1e-5)) pass = false;
        }

        ok &= pass;
        return pass ? $"ok (rel {maxRel:0.0e0})" : $"FAIL rel {maxRel:0.0e0}";
    }

    private static void Report(string name, string dims, string kernel, string check, (double Seconds, double Peak, double Best) time, double flops)
    {
        double gflops = flops / time.Seconds / 1e9, best = flops / time.Best / 1e9;
        Console.WriteLine($"{name,-28} {dims,-16} {kernel,-7} {check,-16} {time.Seconds * 1e3,8:F3} {gflops,8:F1} {time.Peak,6:F0} {gflops / time.Peak,6:P0} {best,6:F0} {best / time.Peak,6:P0}");
    }

    /// <summary>Median seconds per call and the median FMA peak sampled between the kernel samples.</summary>
    /// <remarks>Warm up (tiering), then alternate a ~2 ms batch of calls with a ~2 ms register-only FMA sample for about
    /// 0.3 s. On a machine shared with other builds the load drifts; interleaving keeps the ratio meaningful.</remarks>
    private static (double Seconds, double Peak, double Best) Time(Action action)
    {
        var watch = Stopwatch.StartNew();
        int warm = 0;
        while (watch.Elapsed.TotalSeconds < 0.1 || warm < 3) { action(); warm++; }
        double once = watch.Elapsed.TotalSeconds / warm;
        int perSample = (int)Math.Clamp(0.002 / once, 1, 100_000);
        var samples = new List<double>();
        var peaks = new List<double>();
        watch.Restart();
        while (samples.Count < 7 || (watch.Elapsed.TotalSeconds < 0.3 && samples.Count < 200))
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < perSample; i++) action();
            samples.Add(Stopwatch.GetElapsedTime(start).TotalSeconds / perSample);
            peaks.Add(FmaSample(50_000));
        }

        samples.Sort();
        peaks.Sort();
        return (samples[samples.Count / 2], peaks[peaks.Count / 2], samples[0]);
    }

    /// <summary>GFLOP/s of independent FMA chains kept in registers (no memory traffic), at the widest accelerated width.</summary>
    private static double MeasureFmaPeak()
    {
        var trials = new List<double>();
        for (int trial = 0; trial < 12; trial++)
        {
            double gflops = FmaSample(2_000_000);
            if (trial > 1) trials.Add(gflops);   // the first trials warm up; median of the rest, like the kernels
        }

        trials.Sort();
        return trials[trials.Count / 2];
    }

    private static double FmaSample(int iterations)
    {
        long start = Stopwatch.GetTimestamp();
        float sink = Workloads.FmaLoop(iterations, 1.000001f);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (float.IsNaN(sink)) Console.WriteLine();
        int lanes = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;
        return 2.0 * 12 * lanes * iterations / seconds / 1e9;
    }

    private static float[] Fill(Random rng, int length, float scale)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return values;
    }
}
