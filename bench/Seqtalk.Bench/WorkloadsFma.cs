using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Bench;

internal static partial class Workloads
{
    /// <summary>The machine's FMA peak for <paramref name="threads"/> threads running at once: each runs a
    /// register-only loop of 12 independent FMA chains (enough to cover the FMA latency on two pipes);
    /// the sum over threads, median of 5 trials.</summary>
    internal static double FmaPeak(int threads)
    {
        const int iterations = 20_000_000;
        FmaLoop(100_000, 1.000001f);   // JIT and warm up
        var trials = new List<double>();
        for (int trial = 0; trial < 5; trial++)
        {
            var rates = new double[threads];
            using var ready = new CountdownEvent(threads);
            using var go = new ManualResetEventSlim();
            var workers = new Thread[threads];
            for (int t = 0; t < threads; t++)
            {
                int id = t;
                workers[t] = new Thread(() =>
                {
                    ready.Signal();
                    go.Wait();
                    long start = Stopwatch.GetTimestamp();
                    float sink = FmaLoop(iterations, 1.000001f);
                    double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    rates[id] = 2.0 * 12 * Lanes * iterations / seconds / 1e9 + (float.IsNaN(sink) ? 1 : 0);
                });
                workers[t].Start();
            }
            ready.Wait();
            go.Set();
            foreach (var w in workers) w.Join();
            trials.Add(rates.Sum());
        }
        trials.Sort();
        return trials[trials.Count / 2];
    }

    /// <summary>The one-thread FMA peak at 256-bit width (the same loop on Vector256), median of 5 trials; null without
    /// Vector512, where it is the peak itself. On cores that split a 512-bit FMA into two halves the two peaks are equal;
    /// on cores with full-width 512-bit FMA pipes this one is about half.</summary>
    internal static double? FmaPeak256()
    {
        if (!Vector512.IsHardwareAccelerated || !Vector256.IsHardwareAccelerated) return null;
        const int iterations = 20_000_000;
        FmaLoop(100_000, 1.000001f, allow512: false);
        var trials = new List<double>();
        for (int trial = 0; trial < 5; trial++)
        {
            long start = Stopwatch.GetTimestamp();
            float sink = FmaLoop(iterations, 1.000001f, allow512: false);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            trials.Add(2.0 * 12 * 8 * iterations / seconds / 1e9 + (float.IsNaN(sink) ? 1 : 0));
        }
        trials.Sort();
        return trials[trials.Count / 2];
    }

    private static int Lanes => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;

    /// <summary>12 independent FMA chains over <paramref name="iterations"/> steps at the widest accelerated width (at most
    /// 256 bits when <paramref name="allow512"/> is false); the one FMA loop of the benchmarks (the gemm mode samples it too).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float FmaLoop(int iterations, float m, bool allow512 = true)
    {
        if (allow512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a = Vector512.Create(m), b = Vector512.Create(1e-7f);
            Vector512<float> c0 = Vector512.Create(0f), c1 = Vector512.Create(1f), c2 = Vector512.Create(2f), c3 = Vector512.Create(3f);
            Vector512<float> c4 = Vector512.Create(4f), c5 = Vector512.Create(5f), c6 = Vector512.Create(6f), c7 = Vector512.Create(7f);
            Vector512<float> c8 = Vector512.Create(8f), c9 = Vector512.Create(9f), c10 = Vector512.Create(10f), c11 = Vector512.Create(11f);
            for (int i = 0; i < iterations; i++)
            {
                c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b);
                c2 = Vector512.FusedMultiplyAdd(c2, a, b); c3 = Vector512.FusedMultiplyAdd(c3, a, b);
                c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
                c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b);
                c8 = Vector512.FusedMultiplyAdd(c8, a, b); c9 = Vector512.FusedMultiplyAdd(c9, a, b);
                c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
            }
            return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        }

        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a = Vector256.Create(m), b = Vector256.Create(1e-7f);
            Vector256<float> c0 = Vector256.Create(0f), c1 = Vector256.Create(1f), c2 = Vector256.Create(2f), c3 = Vector256.Create(3f);
            Vector256<float> c4 = Vector256.Create(4f), c5 = Vector256.Create(5f), c6 = Vector256.Create(6f), c7 = Vector256.Create(7f);
            Vector256<float> c8 = Vector256.Create(8f), c9 = Vector256.Create(9f), c10 = Vector256.Create(10f), c11 = Vector256.Create(11f);
            for (int i = 0; i < iterations; i++)
            {
                c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
                c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
                c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
                c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
                c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
                c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
            }
            return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        }

        float s0 = 0, s1 = 1, s2 = 2, s3 = 3, s4 = 4, s5 = 5, s6 = 6, s7 = 7, s8 = 8, s9 = 9, s10 = 10, s11 = 11;
        for (int i = 0; i < iterations; i++)
        {
            s0 = s0 * m + 1e-7f; s1 = s1 * m + 1e-7f; s2 = s2 * m + 1e-7f; s3 = s3 * m + 1e-7f;
            s4 = s4 * m + 1e-7f; s5 = s5 * m + 1e-7f; s6 = s6 * m + 1e-7f; s7 = s7 * m + 1e-7f;
            s8 = s8 * m + 1e-7f; s9 = s9 * m + 1e-7f; s10 = s10 * m + 1e-7f; s11 = s11 * m + 1e-7f;
        }
        return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11;
    }
}
