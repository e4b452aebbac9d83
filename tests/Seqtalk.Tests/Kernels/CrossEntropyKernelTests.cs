using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

[Trait("Category", "Kernels")]
public class CrossEntropyKernelTests
{
    public static TheoryData<int, int> VocabShapes => Shapes(minWidth: 1);

    [Theory]
    [MemberData(nameof(VocabShapes))]
    public void Forward_MatchesScalarTwinAndDoubleMath_InPlaceToo(int rows, int vocab)
    {
        var rng = new Random(77 + rows * 100 + vocab);
        int len = rows * vocab;
        var logits = Random(rng, len, 5f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        var probs = Random(rng, len); var probs2 = Random(rng, len);
        var losses = new double[rows]; var losses2 = new double[rows];
        var pred = new int[rows]; var pred2 = new int[rows];
        K.SoftmaxCrossEntropyForward(logits.AsSpan(0, len), targets, probs.AsSpan(0, len), losses, pred, vocab, 0, rows);
        K.SoftmaxCrossEntropyForwardScalar(logits, targets, probs2, losses2, pred2, vocab, 0, rows);
        AssertClose(probs2, probs, len, 1e-6f, "probs");
        AssertTail(probs, len, "probs");
        Assert.Equal(pred2, pred);
        for (int r = 0; r < rows; r++)
        {
            var z = logits.AsSpan(r * vocab, vocab).ToArray();
            double max = z.Max(), lse = max + Math.Log(z.Sum(v => Math.Exp(v - max)));
            Assert.Equal(lse - z[targets[r]], losses[r], 1e-5);
            Assert.Equal(losses2[r], losses[r], 1e-5);
            Assert.Equal(Array.IndexOf(z, z.Max()), pred[r]);
        }
        var inPlace = (float[])logits.Clone();
        K.SoftmaxCrossEntropyForward(inPlace.AsSpan(0, len), targets, inPlace.AsSpan(0, len), losses2, pred2, vocab, 0, rows);
        Assert.Equal(probs.AsSpan(0, len).ToArray(), inPlace.AsSpan(0, len).ToArray());
    }

    [Theory]
    [InlineData(100f)]
    [InlineData(1000f)]
    [InlineData(-1000f)]
    public void Forward_LargeLogits_NoNaN(float big)
    {
        const int vocab = 37;
        var logits = new float[2 * vocab];
        for (int i = 0; i < logits.Length; i++) logits[i] = big + i % 3;
        logits[5] = big + 30; logits[vocab + 5] = big - 10;
        int[] targets = [5, 5];
        var probs = new float[logits.Length];
        var losses = new double[2]; var pred = new int[2];
        K.SoftmaxCrossEntropyForward(logits, targets, probs, losses, pred, vocab, 0, 2);
        Assert.All(probs, p => Assert.True(float.IsFinite(p) && p >= 0 && p <= 1));
        Assert.Equal(1.0, probs.AsSpan(0, vocab).ToArray().Sum(p => (double)p), 1e-5);
        Assert.Equal(5, pred[0]);
        Assert.InRange(losses[0], -1e-6, 1e-6);        // the target dominates row 0
        for (int r = 0; r < 2; r++)
        {
            var z = logits.AsSpan(r * vocab, vocab).ToArray().Select(v => (double)v).ToArray();
            double lse = z.Max() + Math.Log(z.Sum(v => Math.Exp(v - z.Max())));
            Assert.Equal(lse - z[5], losses[r], 1e-5);
        }
        Assert.True(losses[1] > 12.0);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
    }

    [Theory]
    [MemberData(nameof(VocabShapes))]
    public void Backward_MatchesScalarTwin_InPlaceToo(int rows, int vocab)
    {
        var rng = new Random(99 + rows * 100 + vocab);
        int len = rows * vocab;
        var logits = Random(rng, len, 3f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        var probs = Random(rng, len);
        K.SoftmaxCrossEntropyForwardScalar(logits, targets, probs, new double[rows], new int[rows], vocab, 0, rows);
        var d = Random(rng, len); var d2 = Random(rng, len);
        K.SoftmaxCrossEntropyBackward(probs.AsSpan(0, len), targets, d.AsSpan(0, len), 0.25f, vocab, 0, rows);
        K.SoftmaxCrossEntropyBackwardScalar(probs, targets, d2, 0.25f, vocab, 0, rows);
        AssertClose(d2, d, len, 1e-7f, "dLogits");
        AssertTail(d, len, "dLogits");
        for (int r = 0; r < rows; r++)   // each row of (p − onehot) sums to zero
            Assert.Equal(0.0, d.AsSpan(r * vocab, vocab).ToArray().Sum(v => (double)v), 1e-6);
        var inPlace = (float[])probs.Clone();
        K.SoftmaxCrossEntropyBackward(inPlace.AsSpan(0, len), targets, inPlace.AsSpan(0, len), 0.25f, vocab, 0, rows);
        Assert.Equal(d.AsSpan(0, len).ToArray(), inPlace.AsSpan(0, len).ToArray());
    }
}
