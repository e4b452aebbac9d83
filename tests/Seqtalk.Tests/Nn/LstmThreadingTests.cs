// The LSTM layer cut into unit blocks and column blocks (Nn/Lstm.cs): with H above Lstm.UnitBlock a step runs
// as several blocks, and the GEMMs over all rows as several column blocks. Checked here: any thread count
// (none, 1, 2, 3) gives the same bits for every output and gradient, and the blocked layer agrees with the
// double-precision reference (outputs 1e-5, gradients 1e-4, STYLE "How close is close").

using Seqtalk.Nn;
using Seqtalk.Tests.Reference;

namespace Seqtalk.Tests.Nn;

public class LstmThreadingTests
{
    // H = 130: unit blocks 64, 64, 2 (a tail block); 4H = 520: three column blocks of 256, 256, 8; in = 300: dX in
    // two column blocks (256, 44). H = 192: three whole blocks at panel boundaries, so W_hh is packed once per call.
    private const int InDim = 300;

    private sealed record Run(float[] Gates, float[] C, float[] H, float[] HPrev, float[] DX, float[] DH0, float[] DC0,
        float[] DWIh, float[] DWHh, float[] DBIh, float[] DBHh);

    private static (float[] X, float[] WIh, float[] WHh, float[] Bias, float[] H0, float[] C0, float[] DHOut, float[] DCOut) Data(int rows, int batch, int hidden)
    {
        var rng = new Random(2024);
        float[] R(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
        int g4 = 4 * hidden;
        return (R(rows * InDim, 1), R(g4 * InDim, 0.08), R(g4 * hidden, 0.1), R(g4, 0.5), R(batch * hidden, 0.5), R(batch * hidden, 0.5),
            R(rows * hidden, 1), R(rows * hidden, 0.5));
    }

    private static Run Layer(int[] offset, int[] count, int rows, int batch, int hidden, LstmParallel? parallel)
    {
        var (_, _, _, _, _, _, dHOut, dCOut) = Data(rows, batch, hidden);
        return LayerWith(offset, count, rows, batch, hidden, dHOut, dCOut, parallel);
    }

    [Theory]
    [InlineData(130)]
    [InlineData(192)]
    public void AnyThreadCount_GivesTheSameBits(int hidden)
    {
        // A packed plan: 6 rows, then fewer as rows end (each step a prefix of the one before).
        int[] count = [6, 6, 5, 3, 1];
        int[] offset = new int[count.Length];
        for (int t = 1; t < count.Length; t++) offset[t] = offset[t - 1] + count[t - 1];
        int rows = count.Sum();
        Assert.True(Lstm.UnitBlocks(hidden) > 2, "the test needs several unit blocks");

        var serial = Layer(offset, count, rows, 6, hidden, parallel: null);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var run = Layer(offset, count, rows, 6, hidden, new LstmParallel(new WorkerPool(threads)));
            foreach (var (name, expected, actual) in Pairs(serial, run))
            {
                for (int i = 0; i < expected.Length; i++)
                {
                    if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                        Assert.Fail($"{threads} thread(s): {name}[{i}] = {actual[i]:R}, without threads {expected[i]:R}");
                }
            }
        }
        Assert.Contains(serial.DWHh, v => v != 0f);   // the backward pass did run
    }

    [Theory]
    [InlineData(130)]
    [InlineData(192)]
    public void BlockedLayer_MatchesTheDoubleReference(int hidden)
    {
        const int batch = 3, steps = 4;
        int rows = batch * steps, g4 = 4 * hidden;
        int[] count = Enumerable.Repeat(batch, steps).ToArray();
        int[] offset = Enumerable.Range(0, steps).Select(t => t * batch).ToArray();
        var run = Layer(offset, count, rows, batch, hidden, new LstmParallel(new WorkerPool(2)));

        var (x, wIh, wHh, bias, h0, c0, dHOut, dCOut) = Data(rows, batch, hidden);
        double[] D(float[] a) => a.Select(v => (double)v).ToArray();
        double[][] xs = Enumerable.Range(0, steps).Select(t => D(x.AsSpan(t * batch * InDim, batch * InDim).ToArray())).ToArray();
        bool[][] mask = Enumerable.Range(0, steps).Select(_ => Enumerable.Repeat(true, batch).ToArray()).ToArray();
        var cache = ScalarReference.LstmForward(D(wIh), D(wHh), D(bias), new double[g4], InDim, hidden, xs, mask, D(h0), D(c0), batch);
        for (int t = 0; t < steps; t++)
        {
            AssertClose(cache.H[t], run.H.AsSpan(t * batch * hidden, batch * hidden), 1e-5, $"h[{t}]");
            AssertClose(cache.C[t], run.C.AsSpan(t * batch * hidden, batch * hidden), 1e-5, $"c[{t}]");
        }

        // dC from outside enters only at the last step in the reference; the engine's dC buffer is added to at
        // every step, so give the reference the same: zero dC everywhere but the last step.
        var (_, _, _, _, _, _, dHAll, dCAll) = Data(rows, batch, hidden);
        Array.Clear(dCAll, 0, (steps - 1) * batch * hidden);
        var rerun = LayerWith(offset, count, rows, batch, hidden, dHAll, dCAll, new LstmParallel(new WorkerPool(2)));
        double[]?[] dHOutT = Enumerable.Range(0, steps).Select(t => D(dHAll.AsSpan(t * batch * hidden, batch * hidden).ToArray())).ToArray();
        var grads = ScalarReference.LstmBackward(cache, dHOutT, new double[batch * hidden], D(dCAll.AsSpan((steps - 1) * batch * hidden).ToArray()));
        AssertClose(grads.DWIh, rerun.DWIh, 1e-4, "dW_ih");
        AssertClose(grads.DWHh, rerun.DWHh, 1e-4, "dW_hh");
        AssertClose(grads.DBIh, rerun.DBIh, 1e-4, "db");
        AssertClose(grads.DH0, rerun.DH0, 1e-4, "dh0");
        AssertClose(grads.DC0, rerun.DC0, 1e-4, "dc0");
        for (int t = 0; t < steps; t++) AssertClose(grads.DX[t], rerun.DX.AsSpan(t * batch * InDim, batch * InDim), 1e-4, $"dx[{t}]");
    }

    private static Run LayerWith(int[] offset, int[] count, int rows, int batch, int hidden, float[] dHOut, float[] dCOut, LstmParallel? parallel)
    {
        var (x, wIh, wHh, bias, h0, c0, _, _) = Data(rows, batch, hidden);
        int g4 = 4 * hidden;
        float[] gates = new float[rows * g4], c = new float[rows * hidden], h = new float[rows * hidden], hPrev = new float[rows * hidden];
        var w = new LstmWeights(wIh, wHh, bias);
        Lstm.Forward(x, InDim, rows, offset, count, h0, c0, w, hidden, gates, c, h, hPrev, parallel);
        float[] dH = (float[])dHOut.Clone(), dC = (float[])dCOut.Clone(), dPre = new float[rows * g4], dX = new float[rows * InDim];
        float[] dH0 = new float[batch * hidden], dC0 = new float[batch * hidden], discard = new float[batch * hidden];
        float[] dWIh = new float[wIh.Length], dWHh = new float[wHh.Length], dBIh = new float[g4], dBHh = new float[g4];
        Lstm.Backward(x, InDim, rows, offset, count, c0, w, hidden, gates, c, hPrev, dH, dC, dPre, dX, dH0, dC0, discard,
            new LstmGradients(dWIh, dWHh, dBIh, dBHh), parallel);
        return new Run(gates, c, h, hPrev, dX, dH0, dC0, dWIh, dWHh, dBIh, dBHh);
    }

    private static IEnumerable<(string, float[], float[])> Pairs(Run a, Run b) =>
    [
        ("gates", a.Gates, b.Gates), ("c", a.C, b.C), ("h", a.H, b.H), ("hPrev", a.HPrev, b.HPrev), ("dX", a.DX, b.DX),
        ("dH0", a.DH0, b.DH0), ("dC0", a.DC0, b.DC0), ("dW_ih", a.DWIh, b.DWIh), ("dW_hh", a.DWHh, b.DWHh),
        ("db_ih", a.DBIh, b.DBIh), ("db_hh", a.DBHh, b.DBHh),
    ];

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(expected[i] - actual[i]);
            if (diff > tolerance * Math.Max(1, Math.Abs(expected[i])))
                Assert.Fail($"{what}[{i}]: engine {actual[i]:R}, reference {expected[i]:R} (diff {diff:E2})");
        }
    }
}
