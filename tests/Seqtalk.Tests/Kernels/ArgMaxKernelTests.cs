using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>The projection fused with the greedy arg-max gives the tokens and maxima of OutputBlockForward followed by
/// ArgMaxColumns bit for bit, with exact ties (the first index wins) and a banned token, under every SIMD width.</summary>
[Trait("Category", "Kernels")]
public class ArgMaxKernelTests
{
    // (rows, hidden, vocab, banned): one and two panels, short panels, vocab not a multiple of the 6-row tile, banned at 0.
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 1, 1, 1, -1 }, { 4, 5, 7, 1 }, { 16, 50, 211, 1 }, { 17, 13, 37, 0 }, { 32, 50, 300, -1 }, { 33, 7, 100, 5 },
        { 64, 50, 301, 1 }, { 45, 16, 6, 0 }, { 64, 3, 13, -1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedArgMax_IsTheBlockProjectionsArgMax(int rows, int hidden, int vocab, int banned)
    {
        var rng = new Random(rows * 7 + hidden * 13 + vocab);
        var x = Random(rng, rows * hidden);
        var w = Random(rng, vocab * hidden, 0.3f);
        var b = Random(rng, vocab, 0.1f);
        // Exact ties: copies of rows (and their biases) later in the vocabulary.
        for (int k = 0; k + 3 < vocab; k += 5)
        {
            w.AsSpan(k * hidden, hidden).CopyTo(w.AsSpan((k + 3) * hidden, hidden));
            b[k + 3] = b[k];
        }
        var zT = new float[vocab * rows];
        K.OutputBlockForward(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), zT, rows, hidden, vocab, rows);
        if (banned >= 0) zT.AsSpan(banned * rows, rows).Fill(float.NegativeInfinity);
        var expectedMax = new float[rows];
        var expected = new int[rows];
        K.ArgMaxColumns(zT, expectedMax, expected, vocab, rows, rows);

        var packed = Random(rng, K.OutputBlockArgMaxScratch(hidden));
        var colMax = Random(rng, rows);
        var predicted = new int[rows + Tail];
        predicted.AsSpan(rows).Fill(-7);
        K.OutputBlockArgMax(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), packed.AsSpan(0, K.OutputBlockArgMaxScratch(hidden)),
            colMax.AsSpan(0, rows), predicted, rows, hidden, vocab, banned);
        Assert.Equal(expected, predicted[..rows]);
        for (int r = 0; r < rows; r++) Assert.Equal(BitConverter.SingleToInt32Bits(expectedMax[r]), BitConverter.SingleToInt32Bits(colMax[r]));
        Assert.All(predicted[rows..], v => Assert.Equal(-7, v));
        AssertTail(colMax, rows, "colMax");
        AssertTail(packed, K.OutputBlockArgMaxScratch(hidden), "packed");

        // The scalar twin gives the same.
        var twinMax = new float[rows];
        var twin = new int[rows];
        K.OutputBlockArgMaxScalar(x, w, b.AsSpan(0, vocab), twinMax, twin, rows, hidden, vocab, banned);
        Assert.Equal(expected, twin);
    }
}
