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

    // (vocab, hidden, rows): H not a multiple of 4 and an odd number of groups of four (the one-row kernel's tail), one
    // to nine rows (the four-row kernel and the rows left over), the quality preset's H = 256.
    public static TheoryData<int, int, int> VnniShapes => new()
    {
        { 1, 1, 1 }, { 5, 3, 2 }, { 16, 7, 3 }, { 17, 8, 4 }, { 33, 13, 5 }, { 64, 17, 9 }, { 100, 50, 7 }, { 211, 256, 6 }, { 40, 1024, 4 },
    };

    [Theory]
    [MemberData(nameof(VnniShapes))]
    public void Vnni_LayoutQuantizationAndSums_AreExact(int vocab, int hidden, int rows)
    {
        var rng = new Random(vocab * 1000 + hidden * 10 + rows);
        var w = Random(rng, vocab * hidden, 0.5f);
        if (vocab > 2) w.AsSpan(hidden, hidden).Clear();   // a zero row: scale 0
        int blocks = K.ScreenBlocks(vocab), padded = blocks * K.ScreenBlock, groups = K.VnniGroups(hidden), stride = 4 * groups;
        var q = new sbyte[K.ScreenBytes(vocab, hidden)];
        var scale = new float[padded];
        K.QuantizeRowsInt8(w, q, scale, new float[vocab], vocab, hidden);
        var qv = new sbyte[K.ScreenVnniBytes(vocab, hidden)];
        var offset = new int[padded];
        K.LayoutVnni(q, qv, offset, vocab, hidden);
        for (int o = 0; o < padded; o++)
        {
            int sum = 0;
            for (int i = 0; i < stride; i++)
            {
                int code = qv[o / K.ScreenBlock * groups * 64 + i / 4 * 64 + o % K.ScreenBlock * 4 + i % 4];
                int expected = i < hidden ? q[o / K.ScreenBlock * hidden * K.ScreenBlock + i * K.ScreenBlock + o % K.ScreenBlock] : 0;
                Assert.Equal(expected, code);
                sum += code;
            }
            Assert.Equal(128 * sum, offset[o]);
        }

        // Activations: each within 0.51 steps of its code, the codes past H a zero code (128), a zero row all 128.
        var x = Random(rng, rows * hidden, 1.3f);
        if (rows > 1) x.AsSpan(hidden, hidden).Clear();
        var u = new byte[rows * stride];
        var sx = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            sx[r] = K.QuantizeActivationsVnni(x.AsSpan(r * hidden, hidden), u.AsSpan(r * stride, stride), hidden);
            float max = 0f;
            for (int i = 0; i < hidden; i++) max = MathF.Max(max, MathF.Abs(x[r * hidden + i]));
            Assert.Equal(max / 127f, sx[r]);
            for (int i = 0; i < stride; i++)
            {
                int code = u[r * stride + i] - 128;
                Assert.InRange(code, -127, 127);
                if (i >= hidden || sx[r] == 0f) Assert.Equal(0, code);
                else Assert.True(Math.Abs(x[r * hidden + i] - (double)sx[r] * code) <= 0.51 * sx[r], $"row {r}, i {i}: {x[r * hidden + i]} vs {sx[r]}·{code}");
            }
        }

        // The screen: its scalar twin against the sum in double (the integers are exact; the finish rounds twice), and
        // the SIMD kernel bit for bit against the twin where the machine has AVX-VNNI.
        var bias = Random(rng, padded, 0.2f);
        bias.AsSpan(vocab, padded - vocab).Fill(float.NegativeInfinity);
        var twin = new float[rows * padded];
        var twinMax = new float[rows];
        K.ScreenLogitsVnniScalar(qv, scale, offset, bias, u, sx, twin, twinMax, rows, blocks, hidden);
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < vocab; o++)
            {
                double dot = 0;
                for (int i = 0; i < hidden; i++) dot += (double)q[o / K.ScreenBlock * hidden * K.ScreenBlock + i * K.ScreenBlock + o % K.ScreenBlock] * (u[r * stride + i] - 128);
                double expected = dot * scale[o] * sx[r] + bias[o];
                Assert.True(Math.Abs(twin[r * padded + o] - expected) <= 1e-6 * (Math.Abs(dot * scale[o] * sx[r]) + Math.Abs(bias[o])) + 1e-30,
                    $"row {r}, o {o}: {twin[r * padded + o]} vs {expected}");
            }
            for (int o = vocab; o < padded; o++) Assert.Equal(float.NegativeInfinity, twin[r * padded + o]);
            Assert.Equal(TensorPrimitives.Max(twin.AsSpan(r * padded, vocab)), twinMax[r]);
        }
        if (!K.ScreenVnniIsSupported(hidden))
        {
            Assert.Throws<PlatformNotSupportedException>(() => K.ScreenLogitsVnni(qv, scale, offset, bias, u, sx, new float[rows * padded], new float[rows], rows, blocks, hidden));
            return;
        }
        var approx = Random(rng, rows * padded);
        var max2 = new float[rows];
        K.ScreenLogitsVnni(qv, scale, offset, bias, u, sx, approx, max2, rows, blocks, hidden);
        for (int j = 0; j < rows * padded; j++) Assert.Equal(BitConverter.SingleToInt32Bits(twin[j]), BitConverter.SingleToInt32Bits(approx[j]));
        Assert.Equal(twinMax, max2);
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
