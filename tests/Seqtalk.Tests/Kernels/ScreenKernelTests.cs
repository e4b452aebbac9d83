using System.Numerics.Tensors;
using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>The int8 screen of the output projection (Kernels.Screen): the blocked copy, the screen against its
/// scalar twin and the candidate scan (the candidates' exact logits: GemmRowsKernelTests).</summary>
[Trait("Category", "Kernels")]
public class ScreenKernelTests
{
    // (vocab, hidden): partial last blocks, fewer than four blocks (the Vector512 remainder loop), H around the
    // Dot kernel's vector widths, and the tutorial's H = 50.
    public static TheoryData<int, int> ScreenShapes => new()
    {
        { 1, 1 }, { 5, 3 }, { 16, 7 }, { 17, 8 }, { 33, 16 }, { 64, 17 }, { 65, 31 }, { 100, 33 }, { 211, 50 }, { 1000, 50 },
    };

    [Theory]
    [MemberData(nameof(ScreenShapes))]
    public void Quantize_ResidualBoundsTheCopy_AndScreenMatchesScalarTwin(int vocab, int hidden)
    {
        var rng = new Random(vocab * 100 + hidden);
        var w = Random(rng, vocab * hidden, 0.5f);
        if (vocab > 2)
        {
            w.AsSpan(hidden, hidden).Clear();              // a zero row: scale 0
            w[2 * hidden] = 3f;                            // a row with one large weight
        }
        int blocks = K.ScreenBlocks(vocab), padded = blocks * K.ScreenBlock;
        var q = new sbyte[K.ScreenBytes(vocab, hidden)];
        var scale = new float[padded];
        var residual = new float[vocab];
        K.QuantizeRowsInt8(w, q, scale, residual, vocab, hidden);
        for (int o = 0; o < vocab; o++)
        {
            for (int i = 0; i < hidden; i++)
            {
                int qi = q[o / K.ScreenBlock * hidden * K.ScreenBlock + i * K.ScreenBlock + o % K.ScreenBlock];
                double err = Math.Abs(w[o * hidden + i] - (double)scale[o] * qi);
                Assert.True(err <= residual[o], $"row {o}, i {i}: |w − s·q| = {err:G9} above the residual {residual[o]:G9}");
            }
            Assert.True(residual[o] <= scale[o] * 0.5f * (1 + 1e-5f), $"row {o}: residual {residual[o]:G9} above half a step {scale[o] / 2:G9}");
        }
        Assert.All(q[(padded * hidden)..], b => Assert.Equal(0, b));   // the 16-byte pad

        var bias = Random(rng, padded, 0.2f);
        bias.AsSpan(vocab, padded - vocab).Fill(float.NegativeInfinity);
        var x = Random(rng, hidden);
        var approx = Random(rng, padded);
        var approx2 = new float[padded];
        float max = K.ScreenLogitsInt8(q, scale, bias, x, approx, blocks, hidden);
        float max2 = K.ScreenLogitsInt8Scalar(q, scale, bias, x, approx2, blocks, hidden);
        AssertTail(approx, padded, "approx");
        AssertClose(approx2, approx, vocab, 1e-5f, "approx");
        for (int o = vocab; o < padded; o++) Assert.Equal(float.NegativeInfinity, approx[o]);
        Assert.True(MathF.Abs(max - max2) <= 1e-5f * MathF.Max(1f, MathF.Abs(max2)), $"max {max} vs {max2}");
        Assert.Equal(TensorPrimitives.Max(approx.AsSpan(0, vocab)), max);
    }

    [Theory]
    [MemberData(nameof(ScreenShapes))]
    public void Candidates_AreTheIndicesAtOrAboveTheThreshold_InOrder(int vocab, int hidden)
    {
        var rng = new Random(vocab + 7 * hidden);
        var approx = Random(rng, vocab);
        approx[rng.Next(vocab)] = 0.25f;   // one value exactly at the threshold is kept
        var candidates = new int[vocab];
        int count = K.ScreenCandidates(approx, 0.25f, vocab, candidates);
        var expected = Enumerable.Range(0, vocab).Where(o => approx[o] >= 0.25f).ToArray();
        Assert.Equal(expected, candidates[..count]);
    }
}
