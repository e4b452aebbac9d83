using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>Kernels.GemmRows: the row-by-row GEMM over a packed weight and the candidates' logits in the GEMM's order,
/// both bit for bit against the GEMM itself (so a greedy row's floats do not depend on how many rows it shares a step with).</summary>
[Trait("Category", "Kernels")]
public class GemmRowsKernelTests
{
    // (in, out): depths across the 256-step depth blocks, widths around the 16/32-column panels and the 4-panel groups.
    public static TheoryData<int, int> Shapes => new()
    {
        { 1, 1 }, { 3, 5 }, { 7, 16 }, { 8, 17 }, { 16, 31 }, { 17, 32 }, { 33, 33 }, { 50, 64 }, { 50, 200 }, { 64, 127 },
        { 128, 129 }, { 256, 256 }, { 257, 130 }, { 300, 1024 }, { 512, 96 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void PackedRows_GiveTheBitsOfTheGemm(int inDim, int outDim)
    {
        const int rows = 6;   // more than MatMulDotRows: MatMulForwardColumns takes its GEMM
        if (!K.GemmIsVectorized)
        {
            Assert.Throws<InvalidOperationException>(() => K.MatMulForwardPackedRows(new float[rows * inDim], new float[1], default, new float[rows * outDim],
                rows, inDim, outDim, 0, 1, accumulate: false));
            return;
        }
        var rng = new Random(inDim * 1000 + outDim);
        var x = Random(rng, rows * inDim, 2f);
        var w = Random(rng, outDim * inDim, 0.7f);
        var bias = Random(rng, outDim, 0.3f);
        var y0 = Random(rng, rows * outDim, 1f);
        var packed = new float[K.GemmPackedLength(outDim, inDim)];
        K.PackMatMulForwardWeights(w, inDim, outDim, packed, 0, K.MatMulPackedPanels(outDim));
        foreach (bool accumulate in new[] { false, true })
        {
            foreach (bool withBias in new[] { true, false })
            {
                ReadOnlySpan<float> b = withBias ? bias.AsSpan(0, outDim) : default;
                var gemm = (float[])y0.Clone();
                K.MatMulForwardColumns(x, w, packed, b, gemm, rows, inDim, outDim, 0, rows, 0, outDim, accumulate);
                // Every row alone, and a run of three rows, give the GEMM's bits; the other rows and the tail stay untouched.
                foreach (var (r0, r1) in new[] { (0, 1), (2, 5), (5, 6) })
                {
                    var y = (float[])y0.Clone();
                    K.MatMulForwardPackedRows(x, packed, b, y, rows, inDim, outDim, r0, r1, accumulate);
                    for (int r = 0; r < rows; r++)
                    {
                        for (int o = 0; o < outDim; o++)
                        {
                            float expected = r >= r0 && r < r1 ? gemm[r * outDim + o] : y0[r * outDim + o];
                            if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(y[r * outDim + o]))
                                Assert.Fail($"in {inDim}, out {outDim}, rows [{r0},{r1}), accumulate {accumulate}, bias {withBias}: y[{r},{o}] = {y[r * outDim + o]:R}, the GEMM gave {expected:R}");
                        }
                    }
                    AssertTail(y, rows * outDim, "y");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void CandidateLogits_AreTheFloatsOfTheGemmAndOfTheOutputBlock(int inDim, int outDim)
    {
        var rng = new Random(inDim * 7 + outDim);
        const int rows = 4;   // MatMulForward's GEMM (more than MatMulDotRows rows)
        var x = Random(rng, rows * inDim, 2f);
        var w = Random(rng, outDim * inDim, 0.7f);
        var bias = Random(rng, outDim, 0.3f);
        var y = new float[rows * outDim];
        K.MatMulForward(x, w, bias.AsSpan(0, outDim), y, rows, inDim, outDim, 0, rows);
        var zT = new float[outDim * rows];
        K.OutputBlockForward(x.AsSpan(0, rows * inDim), w, bias.AsSpan(0, outDim), zT, rows, inDim, outDim, rows);
        // Candidates in any order, some repeated, an odd count (the 4-wide interleave and its remainder).
        int[] candidates = [.. Enumerable.Range(0, 2 * outDim + 1).Select(_ => rng.Next(outDim))];
        var values = new float[candidates.Length];
        for (int r = 0; r < rows; r++)
        {
            K.GemmOrderLogits(x.AsSpan(r * inDim, inDim), w, bias.AsSpan(0, outDim), candidates, values, inDim);
            for (int j = 0; j < candidates.Length; j++)
            {
                int o = candidates[j];
                Assert.Equal(BitConverter.SingleToInt32Bits(y[r * outDim + o]), BitConverter.SingleToInt32Bits(values[j]));
                Assert.Equal(BitConverter.SingleToInt32Bits(zT[o * rows + r]), BitConverter.SingleToInt32Bits(values[j]));
            }
        }
        var noBias = new float[rows * outDim];
        K.MatMulForward(x, w, default, noBias, rows, inDim, outDim, 0, rows);
        K.GemmOrderLogits(x.AsSpan(0, inDim), w, default, candidates, values, inDim);
        for (int j = 0; j < candidates.Length; j++) Assert.Equal(BitConverter.SingleToInt32Bits(noBias[candidates[j]]), BitConverter.SingleToInt32Bits(values[j]));
    }
}
