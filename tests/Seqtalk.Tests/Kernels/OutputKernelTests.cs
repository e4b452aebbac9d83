using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>The fused output-block kernels (transposed [V, ld] blocks) against their scalar twins and against
/// the row-major kernels they replace, over awkward shapes, with sentinel tails.</summary>
[Trait("Category", "Kernels")]
public class OutputKernelTests
{
    // (rows, hidden, vocab, ld): rows ≤ ld; edge tiles in every direction, ld > rows (a short last block).
    public static TheoryData<int, int, int, int> BlockShapes => new()
    {
        { 1, 1, 1, 1 }, { 3, 5, 7, 3 }, { 5, 7, 13, 8 }, { 7, 13, 37, 7 }, { 16, 50, 211, 16 },
        { 33, 12, 100, 64 }, { 64, 50, 300, 64 }, { 37, 17, 513, 48 }, { 64, 3, 70, 64 },
    };

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void ProjectionGemms_MatchScalarTwinsAndRowMajorKernels(int rows, int hidden, int vocab, int ld)
    {
        var rng = new Random(rows * 1000 + hidden * 10 + vocab);
        var x = Random(rng, rows * hidden); var w = Random(rng, vocab * hidden, 0.3f); var b = Random(rng, vocab, 0.1f);
        var zT = Random(rng, vocab * ld); var zT2 = (float[])zT.Clone();
        K.OutputBlockForward(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), zT.AsSpan(0, vocab * ld), rows, hidden, vocab, ld);
        K.OutputBlockForwardNaive(x, w, b.AsSpan(0, vocab), zT2, rows, hidden, vocab, ld);
        AssertTail(zT, vocab * ld, "zT");
        for (int o = 0; o < vocab; o++)
            AssertClose(zT2.AsSpan(o * ld, rows).ToArray(), zT.AsSpan(o * ld, rows).ToArray(), rows, 1e-5f, "zT");
        // The same numbers as the row-major MatMulForward, transposed.
        var y = new float[rows * vocab];
        K.MatMulForward(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), y, rows, hidden, vocab, 0, rows);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < vocab; o++)
                Assert.True(MathF.Abs(y[r * vocab + o] - zT[o * ld + r]) <= 1e-5f * MathF.Max(1f, MathF.Abs(y[r * vocab + o])), $"logit ({r}, {o})");

        var dzT = Random(rng, vocab * ld);
        var dx = Random(rng, rows * hidden); var dx2 = (float[])dx.Clone();
        K.OutputBlockBackwardInput(dzT.AsSpan(0, vocab * ld), w.AsSpan(0, vocab * hidden), dx.AsSpan(0, rows * hidden), rows, hidden, vocab, ld);
        K.OutputBlockBackwardInputNaive(dzT, w, dx2, rows, hidden, vocab, ld);
        AssertClose(dx2, dx, rows * hidden, 1e-5f, "dx");
        AssertTail(dx, rows * hidden, "dx");

        var dw = Random(rng, vocab * hidden); var dw2 = (float[])dw.Clone();
        var db = Random(rng, vocab); var db2 = (float[])db.Clone();
        K.OutputBlockBackwardWeight(dzT.AsSpan(0, vocab * ld), x.AsSpan(0, rows * hidden), dw.AsSpan(0, vocab * hidden), db.AsSpan(0, vocab), rows, hidden, vocab, ld);
        K.OutputBlockBackwardWeightNaive(dzT, x, dw2, db2.AsSpan(0, vocab), rows, hidden, vocab, ld);
        AssertClose(dw2, dw, vocab * hidden, 1e-5f, "dw");
        AssertClose(db2, db, vocab, 1e-5f, "db");
        AssertTail(dw, vocab * hidden, "dw");
        AssertTail(db, vocab, "db");
    }

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void SoftmaxColumns_MatchScalarTwinAndRowKernels(int rows, int hidden, int vocab, int ld)
    {
        _ = hidden;
        var rng = new Random(7 + rows * 31 + vocab);
        var zT = Random(rng, vocab * ld, 6f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        const float scale = 0.37f;
        foreach (bool backward in new[] { false, true })
        {
            var a = (float[])zT.Clone(); var s = (float[])zT.Clone();
            var la = new double[rows]; var ls = new double[rows]; var pa = new int[rows]; var ps = new int[rows];
            K.SoftmaxCrossEntropyColumns(a.AsSpan(0, vocab * ld), targets, la, pa, new float[rows], new double[rows], vocab, ld, rows, scale, backward);
            K.SoftmaxCrossEntropyColumnsScalar(s, targets, ls, ps, vocab, ld, rows, scale, backward);
            AssertTail(a, vocab * ld, "zT");
            Assert.Equal(ps, pa);
            for (int c = 0; c < rows; c++) Assert.Equal(ls[c], la[c], 1e-5);
            if (!backward) continue;
            for (int o = 0; o < vocab; o++)
                AssertClose(s.AsSpan(o * ld, rows).ToArray(), a.AsSpan(o * ld, rows).ToArray(), rows, 1e-6f, "dLogits");
            // Columns past `rows` (a short block) are left alone.
            for (int o = 0; o < vocab; o++)
                for (int c = rows; c < ld; c++) Assert.Equal(zT[o * ld + c], a[o * ld + c]);

            // Row-major kernels on the transposed-back logits give the same losses, arg-max and dLogits.
            var z = new float[rows * vocab];
            for (int r = 0; r < rows; r++) for (int o = 0; o < vocab; o++) z[r * vocab + o] = zT[o * ld + r];
            var probs = new float[z.Length]; var lr = new double[rows]; var pr = new int[rows];
            K.SoftmaxCrossEntropyForward(z, targets, probs, lr, pr, vocab, 0, rows);
            K.SoftmaxCrossEntropyBackward(probs, targets, probs, scale, vocab, 0, rows);
            Assert.Equal(pr, pa);
            for (int r = 0; r < rows; r++)
            {
                Assert.Equal(lr[r], la[r], 1e-5);
                for (int o = 0; o < vocab; o++) Assert.True(MathF.Abs(probs[r * vocab + o] - a[o * ld + r]) <= 1e-6f, $"dLogits ({r}, {o})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void ArgMaxColumns_MatchesScalarTwinAndIndexOfMax_FirstMaximumWins(int rows, int hidden, int vocab, int ld)
    {
        _ = hidden;
        var rng = new Random(3 + rows + vocab * 7);
        var zT = Random(rng, vocab * ld, 4f);
        // Ties: copy the column's value at a later row to an earlier one, so the first maximum must win.
        for (int c = 0; c < rows && vocab > 2; c++) zT[(vocab - 1) * ld + c] = zT[(vocab / 2) * ld + c] = 9f;
        var a = new int[rows]; var s = new int[rows];
        K.ArgMaxColumns(zT.AsSpan(0, vocab * ld), new float[rows], a, vocab, ld, rows);
        K.ArgMaxColumnsScalar(zT, s, vocab, ld, rows);
        Assert.Equal(s, a);
        for (int c = 0; c < rows; c++)
        {
            var column = Enumerable.Range(0, vocab).Select(o => zT[o * ld + c]).ToArray();
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(column), a[c]);
        }
    }

    [Theory]
    [InlineData(100f)]
    [InlineData(1000f)]
    [InlineData(-1000f)]
    public void SoftmaxColumns_LargeLogits_NoNaN(float big)
    {
        const int vocab = 37, ld = 20;
        var zT = new float[vocab * ld];
        for (int i = 0; i < zT.Length; i++) zT[i] = big + i % 3;
        for (int c = 0; c < ld; c++) zT[5 * ld + c] = big + 30;
        var targets = Enumerable.Repeat(5, ld).ToArray();
        var losses = new double[ld]; var pred = new int[ld];
        K.SoftmaxCrossEntropyColumns(zT, targets, losses, pred, new float[ld], new double[ld], vocab, ld, ld, 1f, backward: true);
        Assert.All(zT, d => Assert.True(float.IsFinite(d)));
        Assert.All(pred, p => Assert.Equal(5, p));
        Assert.All(losses, l => Assert.InRange(l, -1e-6, 1e-6));
    }

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void SoftmaxColumns_LabelSmoothing_MatchesScalarTwinAndPytorchFormula(int rows, int hidden, int vocab, int ld)
    {
        _ = hidden;
        var rng = new Random(11 + rows * 7 + vocab);
        var zT = Random(rng, vocab * ld, 5f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        const float scale = 0.61f, eps = 0.1f;
        foreach (bool backward in new[] { false, true })
        {
            var a = (float[])zT.Clone(); var s = (float[])zT.Clone();
            var la = new double[rows]; var ls = new double[rows]; var sa = new double[rows]; var ss = new double[rows];
            var pa = new int[rows]; var ps = new int[rows];
            K.SoftmaxCrossEntropyColumns(a.AsSpan(0, vocab * ld), targets, la, sa, pa, new float[rows], new double[rows], vocab, ld, rows, scale, backward, eps);
            K.SoftmaxCrossEntropyColumnsScalar(s, targets, ls, ss, ps, vocab, ld, rows, scale, backward, eps);
            AssertTail(a, vocab * ld, "zT");
            Assert.Equal(ps, pa);
            for (int c = 0; c < rows; c++)
            {
                Assert.Equal(ls[c], la[c], 1e-5);
                Assert.Equal(ss[c], sa[c], 1e-5);
                // In double from the logits: NLL = lse − z_y; smoothed = −Σ_o q_o·log p_o with q = (1−ε)·onehot + ε/V.
                var z = Enumerable.Range(0, vocab).Select(o => (double)zT[o * ld + c]).ToArray();
                double lse = z.Max() + Math.Log(z.Sum(v => Math.Exp(v - z.Max())));
                Assert.Equal(lse - z[targets[c]], la[c], 1e-5);
                double smoothed = Enumerable.Range(0, vocab).Sum(o => -((o == targets[c] ? 1 - eps : 0) + (double)eps / vocab) * (z[o] - lse));
                Assert.Equal(smoothed, sa[c], 1e-5);
                if (!backward) continue;
                // The row-major kernel (the unfused path) and its scalar twin give the same gradient.
                var zr = z.Select(v => (float)v).ToArray();
                var probs = new float[vocab]; var row = new float[vocab]; var rowScalar = new float[vocab];
                K.SoftmaxCrossEntropyForward(zr, targets.AsSpan(c, 1), probs, new double[1], new int[1], vocab, 0, 1);
                K.SoftmaxCrossEntropyBackward(probs, targets.AsSpan(c, 1), row, scale, eps, vocab, 0, 1);
                K.SoftmaxCrossEntropyBackwardScalar(probs, targets.AsSpan(c, 1), rowScalar, scale, eps, vocab, 0, 1);
                for (int o = 0; o < vocab; o++)
                {
                    Assert.True(MathF.Abs(row[o] - a[o * ld + c]) <= 1e-6f, $"row-major dLogits ({c}, {o})");
                    Assert.True(MathF.Abs(rowScalar[o] - row[o]) <= 1e-7f, $"row-major scalar twin ({c}, {o})");
                }
                for (int o = 0; o < vocab; o++)
                {
                    double d = (Math.Exp(z[o] - lse) - ((o == targets[c] ? 1 - eps : 0) + (double)eps / vocab)) * scale;
                    Assert.True(Math.Abs(d - a[o * ld + c]) <= 1e-6, $"dLogits ({c}, {o}): expected {d}, actual {a[o * ld + c]}");
                    Assert.True(MathF.Abs(s[o * ld + c] - a[o * ld + c]) <= 1e-6f, $"dLogits ({c}, {o}) vs the scalar twin");
                }
            }
        }
    }

    [Fact]
    public void SoftmaxColumns_ZeroSmoothing_IsThePlainKernelBitForBit()
    {
        const int rows = 37, vocab = 300, ld = 40;
        var rng = new Random(5);
        var zT = Random(rng, vocab * ld, 4f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        var a = (float[])zT.Clone(); var b = (float[])zT.Clone();
        var la = new double[rows]; var lb = new double[rows]; var smoothed = new double[rows];
        K.SoftmaxCrossEntropyColumns(a, targets, la, new int[rows], new float[rows], new double[rows], vocab, ld, rows, 0.5f, true);
        K.SoftmaxCrossEntropyColumns(b, targets, lb, smoothed, new int[rows], new float[rows], new double[rows], vocab, ld, rows, 0.5f, true, 0f);
        Assert.Equal(a, b);
        Assert.Equal(la, lb);
        Assert.Equal(la, smoothed);   // ε = 0: the smoothed loss is the NLL
    }
}
