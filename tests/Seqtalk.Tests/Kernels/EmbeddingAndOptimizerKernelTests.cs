using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

[Trait("Category", "Kernels")]
public class EmbeddingAndOptimizerKernelTests
{
    public static TheoryData<int, int> AllShapes => Shapes();
    public static TheoryData<int> AllLengths => Lengths();

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void Embedding_GatherAndScatterAdd_MatchScalarTwins(int rows, int dim)
    {
        var rng = new Random(11 + rows * 100 + dim);
        const int vocab = 6;
        var table = Random(rng, vocab * dim);
        var ids = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        ids[0] = ids[^1];                                  // a repeated id must accumulate
        var outA = Random(rng, rows * dim); var outB = Random(rng, rows * dim);
        K.EmbeddingForward(table, ids, outA.AsSpan(0, rows * dim), dim, 0, rows);
        K.EmbeddingForwardScalar(table, ids, outB, dim, 0, rows);
        Assert.Equal(outB, outA);
        AssertTail(outA, rows * dim, "output");
        var dOut = Random(rng, rows * dim);
        var dA = Random(rng, vocab * dim); var dB = (float[])dA.Clone();
        K.EmbeddingBackward(ids, dOut.AsSpan(0, rows * dim), dA.AsSpan(0, vocab * dim), dim, 0, rows);
        K.EmbeddingBackwardScalar(ids, dOut, dB, dim, 0, rows);
        AssertClose(dB, dA, vocab * dim, 1e-6f, "dTable");
        AssertTail(dA, vocab * dim, "dTable");
    }

    [Theory]
    [MemberData(nameof(AllLengths))]
    public void RmsProp_SkipsZeroGradientVectors_WithTheBitsOfTheDenseFormula(int n)
    {
        // Sparse gradients as an embedding's: runs of +0 (skipped vectors), a −0 (not skipped: p − (−0) turns −0 into +0),
        // and p = −0 and ms = 0 entries under both.
        var rng = new Random(77 + n);
        var g = Random(rng, n, 0.5f);
        var p = Random(rng, n); var ms = Random(rng, n, 1f);
        for (int i = 0; i < n; i++)
        {
            ms[i] = i % 5 == 0 ? 0f : MathF.Abs(ms[i]);
            if (i % 7 == 3) p[i] = -0f;
            if ((i / 32) % 3 != 1) g[i] = 0f;
        }
        if (n > 20) { g[20] = -0f; p[20] = -0f; }   // −0 − (−0) is +0: that vector must not be skipped
        if (n > 70) p[70] = -0f;   // a skipped vector's p = −0 stays −0, as −0 − (+0)
        var p2 = (float[])p.Clone(); var ms2 = (float[])ms.Clone();
        K.RmsPropUpdate(p.AsSpan(0, n), g.AsSpan(0, n), ms.AsSpan(0, n), 1e-3f, 0.9f, 1e-7f);
        K.RmsPropUpdateScalar(p2.AsSpan(0, n), g.AsSpan(0, n), ms2.AsSpan(0, n), 1e-3f, 0.9f, 1e-7f);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(p2[i]), BitConverter.SingleToInt32Bits(p[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(ms2[i]), BitConverter.SingleToInt32Bits(ms[i]));
        }
        AssertTail(p, n, "p"); AssertTail(ms, n, "ms");
    }

    [Theory]
    [MemberData(nameof(AllLengths))]
    public void Optimizers_MatchScalarTwinsAndTheirFormulas(int n)
    {
        var rng = new Random(21 + n);
        var g = Random(rng, n, 0.5f);
        // RMSprop (Keras): ms = ρ ms + (1−ρ) g²; p −= lr g / sqrt(ms + ε)
        {
            var p = Random(rng, n); var ms = Random(rng, n, 1f);
            for (int i = 0; i < n; i++) ms[i] = MathF.Abs(ms[i]);
            var p2 = (float[])p.Clone(); var ms2 = (float[])ms.Clone();
            var pExp = new double[n];
            for (int i = 0; i < n; i++)
            {
                double m = 0.9 * ms[i] + 0.1 * g[i] * (double)g[i];
                pExp[i] = p[i] - 1e-3 * g[i] / Math.Sqrt(m + 1e-7);
            }
            K.RmsPropUpdate(p.AsSpan(0, n), g.AsSpan(0, n), ms.AsSpan(0, n), 1e-3f, 0.9f, 1e-7f);
            K.RmsPropUpdateScalar(p2.AsSpan(0, n), g.AsSpan(0, n), ms2.AsSpan(0, n), 1e-3f, 0.9f, 1e-7f);
            AssertClose(p2, p, n, 1e-6f, "rmsprop p"); AssertClose(ms2, ms, n, 1e-6f, "rmsprop ms");
            for (int i = 0; i < n; i++) Assert.Equal(pExp[i], p[i], 1e-5);
            AssertTail(p, n, "p"); AssertTail(ms, n, "ms");
        }
        // Adam, third step.
        {
            var p = Random(rng, n); var m = Random(rng, n, 0.1f); var v = Random(rng, n, 0.1f);
            for (int i = 0; i < n; i++) v[i] = MathF.Abs(v[i]);
            var p2 = (float[])p.Clone(); var m2 = (float[])m.Clone(); var v2 = (float[])v.Clone();
            var pExp = new double[n];
            for (int i = 0; i < n; i++)
            {
                double mm = 0.9 * m[i] + 0.1 * g[i], vv = 0.999 * v[i] + 0.001 * g[i] * (double)g[i];
                pExp[i] = p[i] - 1e-2 * (mm / (1 - Math.Pow(0.9, 3))) / (Math.Sqrt(vv / (1 - Math.Pow(0.999, 3))) + 1e-8);
            }
            K.AdamUpdate(p.AsSpan(0, n), g.AsSpan(0, n), m.AsSpan(0, n), v.AsSpan(0, n), 1e-2f, 0.9f, 0.999f, 1e-8f, 3);
            K.AdamUpdateScalar(p2.AsSpan(0, n), g.AsSpan(0, n), m2.AsSpan(0, n), v2.AsSpan(0, n), 1e-2f, 0.9f, 0.999f, 1e-8f, 3);
            AssertClose(p2, p, n, 1e-6f, "adam p"); AssertClose(m2, m, n, 1e-6f, "adam m"); AssertClose(v2, v, n, 1e-6f, "adam v");
            for (int i = 0; i < n; i++) Assert.Equal(pExp[i], p[i], 1e-5);
            AssertTail(p, n, "p"); AssertTail(m, n, "m"); AssertTail(v, n, "v");
        }
        // SGD with momentum.
        {
            var p = Random(rng, n); var buf = Random(rng, n, 0.1f);
            var p2 = (float[])p.Clone(); var buf2 = (float[])buf.Clone();
            K.SgdMomentumUpdate(p.AsSpan(0, n), g.AsSpan(0, n), buf.AsSpan(0, n), 0.1f, 0.9f);
            K.SgdMomentumUpdateScalar(p2.AsSpan(0, n), g.AsSpan(0, n), buf2.AsSpan(0, n), 0.1f, 0.9f);
            AssertClose(p2, p, n, 1e-6f, "sgd p"); AssertClose(buf2, buf, n, 1e-6f, "sgd buf");
            for (int i = 0; i < n; i++) Assert.Equal(buf2[i], 0.9f * (buf2[i] - g[i]) / 0.9f + g[i], 1e-5f);
            AssertTail(p, n, "p"); AssertTail(buf, n, "buf");
        }
    }

    [Theory]
    [MemberData(nameof(AllLengths))]
    public void SumOfSquares_AccumulatesInDouble(int n)
    {
        var x = Random(new Random(31 + n), n, 3f);
        double expected = 0;
        for (int i = 0; i < n; i++) expected += (double)x[i] * x[i];
        Assert.Equal(expected, K.SumOfSquares(x.AsSpan(0, n)), 1e-9 * Math.Max(1, expected));
        Assert.Equal(expected, K.SumOfSquaresScalar(x.AsSpan(0, n)), 1e-9 * Math.Max(1, expected));
        Assert.Equal(expected, K.SumToDouble(x.AsSpan(0, n).ToArray().Select(v => v * v).ToArray()), 1e-4 * Math.Max(1, expected));
    }

    [Fact]
    public void SumOfSquares_KeepsPrecisionWhereFloatAccumulationWouldNot()
    {
        var x = new float[1 << 20];
        Array.Fill(x, 1f);
        x[0] = 4096f;   // 2^24 + 2^20 − 1 exceeds float's exact integer range when summed in float
        Assert.Equal(4096.0 * 4096 + (x.Length - 1), K.SumOfSquares(x));
    }
}
