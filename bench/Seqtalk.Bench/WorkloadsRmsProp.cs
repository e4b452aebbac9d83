using System.Diagnostics;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Bench;

internal static partial class Workloads
{
    /// <summary>`workloads rmsprop-ab`: one RMSprop step over the tutorial's parameter count with the gradient of a training
    /// step (embedding rows a batch does not use are zero) against the same step with every gradient nonzero (as many
    /// bytes as the update moved before it skipped zero vectors), alternating, one thread, medians.</summary>
    internal static int RmsPropAb()
    {
        // Tutorial sizes: enc.embed [12532, 50], dec.embed [9455, 50], two LSTMs of 40,400, out.w [9455, 50] + out.b.
        const int e = 50, vs = 12532, vt = 9455, lstm = 2 * (4 * 50 * 50 * 2 + 2 * 4 * 50), used = 700, reps = 31;
        int n = vs * e + vt * e + lstm + vt * e + vt;
        var rng = new Random(1);
        float[] p = new float[n], ms = new float[n], sparse = new float[n], dense = new float[n];
        for (int i = 0; i < n; i++) { p[i] = (float)rng.NextDouble() - 0.5f; ms[i] = (float)rng.NextDouble() * 1e-4f; dense[i] = (float)rng.NextDouble() * 1e-3f + 1e-6f; }
        // Embedding rows: ~700 used of each table; everything after the embeddings is dense.
        Array.Copy(dense, sparse, n);
        for (int r = 0; r < vs + vt; r++)
        {
            if (rng.Next(vs) >= used) Array.Clear(sparse, r * e, e);
        }
        var ts = new List<double>(); var td = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            long a = Stopwatch.GetTimestamp(); K.RmsPropUpdate(p, sparse, ms, 1e-9f, 0.9f, 1e-7f); ts.Add(Stopwatch.GetElapsedTime(a).TotalMilliseconds);
            a = Stopwatch.GetTimestamp(); K.RmsPropUpdate(p, dense, ms, 1e-9f, 0.9f, 1e-7f); td.Add(Stopwatch.GetElapsedTime(a).TotalMilliseconds);
        }
        ts.Sort(); td.Sort();
        double zero = sparse.Count(x => x == 0f) / (double)n;
        Console.WriteLine($"RMSprop step over {n} parameters ({zero:P0} zero gradients), 1 thread, median of {reps} alternating; load {LoadAverage()}");
        Console.WriteLine($"  training-step gradient (zero vectors skipped): {ts[reps / 2],6:F3} ms");
        Console.WriteLine($"  all gradients nonzero (the dense pass):        {td[reps / 2],6:F3} ms   ratio {td[reps / 2] / ts[reps / 2]:F2}x");
        return 0;
    }
}
