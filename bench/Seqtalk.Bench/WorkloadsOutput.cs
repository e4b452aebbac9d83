using System.Diagnostics;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Bench;

internal static partial class Workloads
{
    /// <summary>`workloads output-ab`: the output layer of one training step (projection, softmax-CE, dW, db, dh)
    /// the unfused way (whole [N, V] logits and dLogits in memory, four passes) against the fused row blocks of
    /// Kernels.Output, on the same data, alternating, one thread. Medians, so the ratio survives a loaded machine.</summary>
    internal static int OutputAb(string[] args)
    {
        int n = 725, h = 50, v = 9455, rb = 64, reps = 15;
        if (args.Length >= 3) { n = int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture); h = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture); v = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture); }
        if (args.Length >= 4) rb = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
        var rng = new Random(1);
        float[] x = Fill(rng, n * h, 1f), w = Fill(rng, v * h, MathF.Sqrt(6f / (h + v))), b = Fill(rng, v, 0.1f);
        int[] targets = Enumerable.Range(0, n).Select(_ => rng.Next(v)).ToArray();
        float scale = 1f / n;
        // Unfused buffers
        float[] logits = new float[n * v], probs = new float[n * v], dw1 = new float[v * h], db1 = new float[v], dx1 = new float[n * h];
        double[] loss1 = new double[n]; int[] pred1 = new int[n];
        // Fused buffers
        float[] z = new float[v * rb], colMax = new float[rb], dw2 = new float[v * h], db2 = new float[v], dx2 = new float[n * h];
        double[] colSum = new double[rb], loss2 = new double[n]; int[] pred2 = new int[n];
        // As the training workspace: dW and db in one padded GEMM ([x | 1 | 0 …]) when Vector512 runs and H + 1 ≤ 64.
        int cols = K.OutputPaddedWeightIsVectorized && h + 1 <= 64 ? K.OutputPaddedWidth(h) : 0;
        float[] xt = new float[64 * h];
        float[] xp = new float[rb * Math.Max(cols, 1)], dwp = new float[v * Math.Max(cols, 1)];

        void Unfused()
        {
            Array.Clear(dw1); Array.Clear(db1); Array.Clear(dx1);
            K.MatMulForward(x, w, b, logits, n, h, v, 0, n);
            for (int r = 0; r < n; r++)
            {
                K.SoftmaxCrossEntropyForward(logits, targets, probs, loss1, pred1, v, r, r + 1);
                K.SoftmaxCrossEntropyBackward(probs, targets, probs, scale, v, r, r + 1);
            }
            K.MatMulBackwardWeight(probs, x, dw1, db1, n, h, v, 0, v);
            K.MatMulBackwardInput(probs, w, dx1, n, h, v, 0, n);
        }
        var parts = new double[4];
        void Fused()
        {
            Array.Clear(dw2); Array.Clear(db2); Array.Clear(dx2); Array.Clear(dwp);
            for (int r0 = 0; r0 < n; r0 += rb)
            {
                int rows = Math.Min(rb, n - r0);
                var xb = x.AsSpan(r0 * h, rows * h);
                long t0 = ThreadCpu.NowNs();
                if (cols > 0) K.OutputBlockForwardMax(xb, w, b, z, colMax, pred2.AsSpan(r0, rows), xt, rows, h, v, rb);
                else K.OutputBlockForward(xb, w, b, z, rows, h, v, rb);
                long t1 = ThreadCpu.NowNs();
                bool fusedBackward = cols > 0;
                K.SoftmaxCrossEntropyColumns(z, targets.AsSpan(r0, rows), loss2.AsSpan(r0, rows), default, pred2.AsSpan(r0, rows), colMax, colSum, v, rb, rows, scale, !fusedBackward, 0f, maxGiven: fusedBackward);
                long t2 = ThreadCpu.NowNs();
                if (!fusedBackward)
                {
                    K.OutputBlockBackwardInput(z, w, dx2.AsSpan(r0 * h, rows * h), rows, h, v, rb);
                }
                long t3 = ThreadCpu.NowNs();
                if (!fusedBackward)
                {
                    K.OutputBlockBackwardWeight(z, xb, dw2, db2, rows, h, v, rb);
                }
                else
                {
                    Array.Clear(xp);
                    for (int r = 0; r < rows; r++) { xb.Slice(r * h, h).CopyTo(xp.AsSpan(r * cols, h)); xp[r * cols + h] = 1f; }
                    K.OutputBlockBackward(z, targets.AsSpan(r0, rows), colSum, w, xp, dx2.AsSpan(r0 * h, rows * h), dwp, rows, h, cols, v, rb, scale, 0f);
                }
                long t4 = ThreadCpu.NowNs();
                parts[0] += t1 - t0; parts[1] += t2 - t1; parts[2] += t3 - t2; parts[3] += t4 - t3;
            }
            if (cols == 0) return;
            for (int o = 0; o < v; o++)
            {
                dwp.AsSpan(o * cols, h).CopyTo(dw2.AsSpan(o * h, h));
                db2[o] = dwp[o * cols + h];
            }
        }

        // The generic path on the same data: the GEMM kernels of Kernels.Gemm (a block stride of rb + 1 keeps
        // OutputBlockBackwardInput off its transposed path), softmax-CE with its own max pass and backward pass,
        // dW and db separately: the output layer before the small-H kernels, except for the float exp.
        int ldg = rb + 1;
        float[] zg = new float[v * ldg], dwg = new float[v * h], dbg = new float[v], dxg = new float[n * h];
        var gparts = new double[4];
        void Generic()
        {
            Array.Clear(dwg); Array.Clear(dbg); Array.Clear(dxg);
            for (int r0 = 0; r0 < n; r0 += rb)
            {
                int rows = Math.Min(rb, n - r0);
                var xb = x.AsSpan(r0 * h, rows * h);
                long t0 = ThreadCpu.NowNs();
                K.OutputBlockForward(xb, w, b, zg, rows, h, v, ldg);
                long t1 = ThreadCpu.NowNs();
                K.SoftmaxCrossEntropyColumns(zg, targets.AsSpan(r0, rows), loss2.AsSpan(r0, rows), pred2.AsSpan(r0, rows), colMax, colSum, v, ldg, rows, scale, true);
                long t2 = ThreadCpu.NowNs();
                K.OutputBlockBackwardInput(zg, w, dxg.AsSpan(r0 * h, rows * h), rows, h, v, ldg);
                long t3 = ThreadCpu.NowNs();
                K.OutputBlockBackwardWeight(zg, xb, dwg, dbg, rows, h, v, ldg);
                long t4 = ThreadCpu.NowNs();
                gparts[0] += t1 - t0; gparts[1] += t2 - t1; gparts[2] += t3 - t2; gparts[3] += t4 - t3;
            }
        }

        Unfused(); Fused(); Generic();
        double maxDiffGeneric = MaxRel(dw1, dwg) + MaxRel(dx1, dxg) + MaxRel(db1, dbg);
        double maxDiff = MaxRel(dw1, dw2) + MaxRel(dx1, dx2) + MaxRel(db1, db2);
        bool same = pred1.SequenceEqual(pred2);
        var t1 = new List<double>(); var t2 = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            long a = Stopwatch.GetTimestamp(); Unfused(); t1.Add(Stopwatch.GetElapsedTime(a).TotalMilliseconds);
            a = Stopwatch.GetTimestamp(); Fused(); t2.Add(Stopwatch.GetElapsedTime(a).TotalMilliseconds);
        }
        t1.Sort(); t2.Sort();
        Array.Clear(parts);
        var partTimes = new List<double[]>();
        var genericTimes = new List<double[]>();
        for (int i = 0; i < reps; i++)
        {
            Fused();
            partTimes.Add((double[])parts.Clone());
            Array.Clear(parts);
            Generic();
            genericTimes.Add((double[])gparts.Clone());
            Array.Clear(gparts);
        }
        double peak = FmaPeak(1);
        double tot = parts.Sum();
        double m1 = t1[reps / 2], m2 = t2[reps / 2], gf = 6.0 * n * h * v / 1e9;
        Console.WriteLine($"output layer N={n} H={h} V={v} rb={rb}, 1 thread, median of {reps} alternating; load {LoadAverage()}");
        Console.WriteLine($"  unfused: {m1,8:F2} ms  {gf / m1 * 1e3,6:F1} GFLOP/s   ([N,V] logits + probs in memory)");
        Console.WriteLine($"  fused:   {m2,8:F2} ms  {gf / m2 * 1e3,6:F1} GFLOP/s   ratio {m1 / m2:F2}x");
        // Each part on its own: median over the repetitions of its time per call of Fused() (all blocks).
        string[] names = cols == 0
            ? ["forward GEMM z = x·Wᵀ + b", "softmax-CE (max, exp, sum, p − y)", "dh GEMM dx += dz·W", "dW GEMM + db sums"]
            : ["forward GEMM + column max/arg-max", "softmax-CE forward (exp, sum; max in fwd)", "-", "backward: p − y, dx, dW+db (fused)"];
        double[] flops = cols == 0 ? [2.0 * n * h * v, 0, 2.0 * n * h * v, 2.0 * n * h * v] : [2.0 * n * h * v, 0, 0, 4.0 * n * h * v];
        double all = 0;
        Console.WriteLine($"  FMA peak {peak:F1} GFLOP/s (wall clock; a loaded machine lowers it); parts, median of {reps}, {(ThreadCpu.IsCpuTime ? "thread CPU time" : "wall clock")}; % of peak against {Peak1:F0} GFLOP/s, the quiet machine's 1-thread peak:");
        for (int p = 0; p < 4; p++)
        {
            if (names[p] == "-") continue;
            var ms = partTimes.Select(t => t[p] / 1e6).Order().ToArray();
            double med = ms[reps / 2];
            all += med;
            string rate = flops[p] > 0 ? $"{flops[p] / med / 1e6,6:F1} GFLOP/s {flops[p] / med / 1e6 / Peak1,4:P0} of peak" : $"{(double)n * v / med / 1e6,6:F2} G elements/s";
            Console.WriteLine($"    {names[p],-36} {med,7:F2} ms  {rate}");
        }
        Console.WriteLine($"    {"sum of parts",-36} {all,7:F2} ms  {gf / all * 1e3,6:F1} GFLOP/s {gf / all * 1e3 / Peak1,4:P0} of peak (needed FLOPs 6·N·H·V)");
        string[] gnames = ["forward GEMM z = x·Wᵀ + b", "softmax-CE (max, exp, sum, p − y)", "dh GEMM dx += dz·W", "dW GEMM + db sums"];
        Console.WriteLine($"  generic GEMM path (ld = rb + 1), same data, interleaved, max rel diff {maxDiffGeneric:E1}:");
        double gall = 0;
        for (int p = 0; p < 4; p++)
        {
            double med = genericTimes.Select(t => t[p] / 1e6).Order().ToArray()[reps / 2];
            gall += med;
            string rate = p != 1 ? $"{2.0 * n * h * v / med / 1e6,6:F1} GFLOP/s {2.0 * n * h * v / med / 1e6 / Peak1,4:P0} of peak" : $"{(double)n * v / med / 1e6,6:F2} G elements/s";
            Console.WriteLine($"    {gnames[p],-36} {med,7:F2} ms  {rate}");
        }
        Console.WriteLine($"    {"sum of parts",-36} {gall,7:F2} ms  {gf / gall * 1e3,6:F1} GFLOP/s {gf / gall * 1e3 / Peak1,4:P0} of peak");
        Console.WriteLine($"  check: max rel diff of dW+dx+db {maxDiff:E1}, same arg-max {same}");
        return maxDiff < 1e-3 && maxDiffGeneric < 1e-3 && same ? 0 : 1;
    }

    /// <summary>The 1-thread FMA peak measured on the quiet machine (docs/benchmarks.md), the yardstick for CPU-time rates.</summary>
    private const double Peak1 = 209.0;

    private static float[] Fill(Random rng, int length, float scale)
    {
        var a = new float[length];
        for (int i = 0; i < length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static double MaxRel(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]) / Math.Max(1e-3, Math.Abs(a[i])));
        return m;
    }
}
