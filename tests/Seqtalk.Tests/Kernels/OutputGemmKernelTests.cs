using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>The register-blocked backward kernels of the output block (Kernels.OutputGemm) and the fast float exp of
/// the softmax, against double-precision references on awkward shapes: rows 1, 7, 64, 129; V not a multiple of any
/// tile (6 rows, 64- or 96-row chunks); H and padded widths 1, 50, 64, 256. Under every SIMD width (the fallbacks
/// run the scalar or generic paths).</summary>
[Trait("Category", "Kernels")]
public class OutputGemmKernelTests
{
    // (rows, hidden, vocab, ld): ld a multiple of 64 (the transposed dx path), rows ≤ ld.
    public static TheoryData<int, int, int, int> DxShapes => new()
    {
        { 1, 1, 1, 64 }, { 7, 50, 97, 64 }, { 64, 50, 211, 64 }, { 129, 50, 13, 192 }, { 7, 64, 130, 64 },
        { 1, 256, 67, 64 }, { 33, 3, 200, 128 },
    };

    [Theory]
    [MemberData(nameof(DxShapes))]
    public void BackwardInput_MatchesDoubleReference_AndGenericPathBits(int rows, int hidden, int vocab, int ld)
    {
        var rng = new Random(rows * 131 + hidden * 7 + vocab);
        var dzT = Random(rng, vocab * ld, 0.01f);
        var w = Random(rng, vocab * hidden, 0.3f);
        var dx = Random(rng, rows * hidden);
        var expected = new double[rows * hidden];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < hidden; i++)
            {
                double s = dx[r * hidden + i];
                for (int o = 0; o < vocab; o++) s += (double)dzT[o * ld + r] * w[o * hidden + i];
                expected[r * hidden + i] = s;
            }
        var original = (float[])dx.Clone();
        K.OutputBlockBackwardInput(dzT.AsSpan(0, vocab * ld), w.AsSpan(0, vocab * hidden), dx.AsSpan(0, rows * hidden), rows, hidden, vocab, ld);
        AssertTail(dx, rows * hidden, "dx");
        AssertNear(expected, dx, 1e-5, "dx");

        // The same bits as the generic GEMM path on a stride that is not a multiple of 64 (the block copied there).
        if (!K.GemmIsVectorized) return;
        int ld2 = rows + 1;
        var dzT2 = new float[vocab * ld2];
        for (int o = 0; o < vocab; o++) dzT.AsSpan(o * ld, rows).CopyTo(dzT2.AsSpan(o * ld2, rows));
        var dx2 = original;
        K.OutputBlockBackwardInput(dzT2, w.AsSpan(0, vocab * hidden), dx2.AsSpan(0, rows * hidden), rows, hidden, vocab, ld2);
        Assert.Equal(dx2.AsSpan(0, rows * hidden).ToArray(), dx.AsSpan(0, rows * hidden).ToArray());
    }

    // (rows, cols, vocab, ld): the padded weight GEMM's depth is rows (1, 7, 64, 129); cols 64, 128, 256.
    public static TheoryData<int, int, int, int> DwShapes => new()
    {
        { 1, 64, 1, 1 }, { 7, 64, 97, 7 }, { 64, 64, 211, 64 }, { 129, 64, 13, 130 }, { 5, 128, 7, 8 }, { 3, 256, 29, 64 },
    };

    [Theory]
    [MemberData(nameof(DwShapes))]
    public void BackwardWeightPadded_MatchesDoubleReferenceAndScalarTwin(int rows, int cols, int vocab, int ld)
    {
        var rng = new Random(rows * 17 + cols + vocab * 3);
        var dzT = Random(rng, vocab * ld, 0.01f);
        var xp = Random(rng, rows * cols);
        var dwp = Random(rng, vocab * cols);
        var twin = (float[])dwp.Clone();
        var expected = new double[vocab * cols];
        for (int o = 0; o < vocab; o++)
            for (int j = 0; j < cols; j++)
            {
                double s = dwp[o * cols + j];
                for (int r = 0; r < rows; r++) s += (double)dzT[o * ld + r] * xp[r * cols + j];
                expected[o * cols + j] = s;
            }
        K.OutputBlockBackwardWeightPadded(dzT.AsSpan(0, vocab * ld), xp.AsSpan(0, rows * cols), dwp.AsSpan(0, vocab * cols), rows, cols, vocab, ld);
        AssertTail(dwp, vocab * cols, "dwp");
        AssertNear(expected, dwp, 1e-5, "dwp");
        K.OutputBlockBackwardWeightPaddedNaive(dzT, xp, twin, rows, cols, vocab, ld);
        AssertClose(twin, dwp, vocab * cols, 1e-5f, "dwp vs twin");
    }

    [Fact]
    public void BackwardWeightPadded_RejectsWidthsThatAreNotMultiplesOf64()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => K.OutputBlockBackwardWeightPadded(new float[4], new float[50], new float[50], 1, 50, 1, 4));
        Assert.Throws<ArgumentException>(() => K.OutputBlockBackwardWeightPadded(new float[4], new float[63], new float[64], 1, 64, 1, 4));
    }

    // (rows, hidden, vocab): ld = 64; V cuts the 96-row chunks and the 6-row dW tiles unevenly.
    public static TheoryData<int, int, float> FusedShapes => new()
    {
        { 1, 1, 0f }, { 7, 50, 0f }, { 64, 50, 0f }, { 64, 50, 0.1f }, { 33, 63, 0f }, { 16, 50, 0.2f },
        { 1, 50, 0f }, { 64, 48, 0f }, { 33, 51, 0f }, { 64, 47, 0f },
    };

    [Theory]
    [MemberData(nameof(FusedShapes))]
    public void FusedBackward_IsTheThreeCallsBitForBit_AndMatchesDoubleReference(int rows, int hidden, float smoothing)
    {
        if (!K.OutputBlockBackwardApplies(rows, hidden, K.OutputPaddedWidth(hidden), 64))
        {
            // Without Vector512 the workspace keeps the three calls (tested above and in OutputKernelTests); the fused kernel refuses.
            Assert.False(K.GemmUses512);
            Assert.Throws<ArgumentOutOfRangeException>(() => K.OutputBlockBackward(new float[64], new int[1], new double[1], new float[hidden], new float[64],
                new float[hidden], new float[64], 1, hidden, 64, 1, 64, 1f, smoothing));
            return;
        }
        foreach (int vocab in new[] { 1, 7, 97, 211, 300 })
        {
            const int ld = 64;
            int cols = K.OutputPaddedWidth(hidden);
            var rng = new Random(rows * 1000 + hidden * 10 + vocab);
            var x = Random(rng, rows * hidden); var w = Random(rng, vocab * hidden, 0.3f); var b = Random(rng, vocab, 0.1f);
            var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
            const float scale = 0.37f;
            var zT = new float[vocab * ld];
            K.OutputBlockForward(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), zT, rows, hidden, vocab, ld);
            var logits = (float[])zT.Clone();
            var xp = new float[rows * cols];
            for (int r = 0; r < rows; r++) { x.AsSpan(r * hidden, hidden).CopyTo(xp.AsSpan(r * cols)); xp[r * cols + hidden] = 1f; }
            var dx0 = Random(rng, rows * hidden, 0.1f); var dwp0 = Random(rng, vocab * cols, 0.1f);

            // The three calls: softmax-CE with backward, the dx kernel, the padded dW kernel.
            var z1 = (float[])logits.Clone(); var dx1 = (float[])dx0.Clone(); var dwp1 = (float[])dwp0.Clone();
            K.SoftmaxCrossEntropyColumns(z1, targets, new double[rows], default, new int[rows], new float[rows], new double[rows], vocab, ld, rows, scale, true, smoothing);
            K.OutputBlockBackwardInput(z1, w.AsSpan(0, vocab * hidden), dx1.AsSpan(0, rows * hidden), rows, hidden, vocab, ld);
            K.OutputBlockBackwardWeightPadded(z1, xp, dwp1.AsSpan(0, vocab * cols), rows, cols, vocab, ld);

            // Softmax-CE forward only, then the fused backward.
            var z2 = (float[])logits.Clone(); var dx2 = (float[])dx0.Clone(); var dwp2 = (float[])dwp0.Clone();
            var sum = new double[rows];
            K.SoftmaxCrossEntropyColumns(z2, targets, new double[rows], default, new int[rows], new float[rows], sum, vocab, ld, rows, scale, false, smoothing);
            K.OutputBlockBackward(z2, targets, sum, w.AsSpan(0, vocab * hidden), xp, dx2.AsSpan(0, rows * hidden), dwp2.AsSpan(0, vocab * cols),
                rows, hidden, cols, vocab, ld, scale, smoothing);
            AssertTail(dx2, rows * hidden, "dx");
            AssertTail(dwp2, vocab * cols, "dwp");
            Assert.Equal(dx1, dx2);
            if (K.OutputDwSplitApplies(hidden, cols))
            {
                // H + 1 in (48, 52]: columns [0, 48) keep the padded kernel's FMA chains; the 4-column tail sums over the
                // rows in another order (checked against double precision below); columns from 52 on are untouched.
                Assert.True(hidden is >= 48 and <= 51);
                for (int o = 0; o < vocab; o++)
                {
                    Assert.Equal(dwp1.AsSpan(o * cols, 48).ToArray(), dwp2.AsSpan(o * cols, 48).ToArray());
                    Assert.Equal(dwp0.AsSpan(o * cols + 52, cols - 52).ToArray(), dwp2.AsSpan(o * cols + 52, cols - 52).ToArray());
                }
            }
            else Assert.Equal(dwp1, dwp2);
            for (int o = 0; o < vocab; o++) Assert.Equal(z1.AsSpan(o * ld, rows).ToArray(), z2.AsSpan(o * ld, rows).ToArray());

            // overwriteWeight: the same bits as adding to a cleared dW, whatever the buffer held (columns [0, H] are dW and db).
            var z3 = (float[])logits.Clone(); var zeroed = new float[vocab * cols + 16]; var garbage = Random(rng, vocab * cols, 1e3f);
            K.SoftmaxCrossEntropyColumns(z3, targets, new double[rows], default, new int[rows], new float[rows], sum, vocab, ld, rows, scale, false, smoothing);
            var z4 = (float[])z3.Clone();
            K.OutputBlockBackward(z3, targets, sum, w.AsSpan(0, vocab * hidden), xp, new float[rows * hidden], zeroed.AsSpan(0, vocab * cols),
                rows, hidden, cols, vocab, ld, scale, smoothing);
            K.OutputBlockBackward(z4, targets, sum, w.AsSpan(0, vocab * hidden), xp, new float[rows * hidden], garbage.AsSpan(0, vocab * cols),
                rows, hidden, cols, vocab, ld, scale, smoothing, overwriteWeight: true);
            AssertTail(garbage, vocab * cols, "dwp overwritten");
            for (int o = 0; o < vocab; o++)
                Assert.Equal(zeroed.AsSpan(o * cols, hidden + 1).ToArray(), garbage.AsSpan(o * cols, hidden + 1).ToArray());

            // Against double precision from the logits: dz = (softmax − q)·scale, dx += dz·W, dW += dzᵀ·x, db += Σ dz.
            var dz = new double[rows * vocab];
            for (int r = 0; r < rows; r++)
            {
                double max = double.NegativeInfinity, s = 0;
                for (int o = 0; o < vocab; o++) max = Math.Max(max, logits[o * ld + r]);
                for (int o = 0; o < vocab; o++) s += Math.Exp(logits[o * ld + r] - max);
                for (int o = 0; o < vocab; o++)
                    dz[r * vocab + o] = (Math.Exp(logits[o * ld + r] - max) / s - ((o == targets[r] ? 1 - smoothing : 0) + (double)smoothing / vocab)) * scale;
            }
            var dxRef = new double[rows * hidden];
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < hidden; i++)
                {
                    double s = dx0[r * hidden + i];
                    for (int o = 0; o < vocab; o++) s += dz[r * vocab + o] * w[o * hidden + i];
                    dxRef[r * hidden + i] = s;
                }
            AssertNear(dxRef, dx2, 1e-5, "dx vs double");
            var dwRef = new double[vocab * cols];
            for (int o = 0; o < vocab; o++)
                for (int j = 0; j < cols; j++)
                {
                    double s = dwp0[o * cols + j];
                    for (int r = 0; r < rows; r++) s += dz[r * vocab + o] * xp[r * cols + j];
                    dwRef[o * cols + j] = s;
                }
            AssertNear(dwRef, dwp2, 1e-5, "dW|db vs double");
        }
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 50, 97)]
    [InlineData(64, 50, 211)]
    [InlineData(33, 64, 13)]
    [InlineData(5, 256, 70)]
    public void ForwardMax_IsOutputBlockForwardBitForBit_WithTheColumnMaxima(int rows, int hidden, int vocab)
    {
        const int ld = 64;
        var rng = new Random(rows * 7 + hidden * 3 + vocab);
        var x = Random(rng, rows * hidden); var w = Random(rng, vocab * hidden, 0.3f); var b = Random(rng, vocab, 0.1f);
        var xT = new float[64 * hidden];
        if (!K.OutputBlockForwardMaxApplies(rows, hidden, ld))
        {
            Assert.False(K.GemmUses512);   // the workspace keeps OutputBlockForward + pass 1 there
            Assert.Throws<ArgumentOutOfRangeException>(() => K.OutputBlockForwardMax(x, w, b, new float[vocab * ld], new float[rows], new int[rows], xT, rows, hidden, vocab, ld));
            return;
        }
        // Ties: the first maximum must win.
        if (vocab > 2) { w.AsSpan(0, hidden).CopyTo(w.AsSpan((vocab - 1) * hidden)); b[vocab - 1] = b[0]; }
        var zT = Random(rng, vocab * ld);
        var max = new float[rows]; var arg = new int[rows];
        K.OutputBlockForwardMax(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), zT.AsSpan(0, vocab * ld), max, arg, xT, rows, hidden, vocab, ld);
        AssertTail(zT, vocab * ld, "zT");
        var zRef = new float[vocab * ld];
        K.OutputBlockForward(x.AsSpan(0, rows * hidden), w.AsSpan(0, vocab * hidden), b.AsSpan(0, vocab), zRef, rows, hidden, vocab, ld);
        var maxRef = new float[rows]; var argRef = new int[rows];
        K.ArgMaxColumns(zRef, maxRef, argRef, vocab, ld, rows);
        for (int o = 0; o < vocab; o++) Assert.Equal(zRef.AsSpan(o * ld, rows).ToArray(), zT.AsSpan(o * ld, rows).ToArray());
        Assert.Equal(argRef, arg);
        Assert.Equal(maxRef, max);
        for (int r = 0; r < rows; r++)
        {
            double best = double.NegativeInfinity;
            for (int o = 0; o < vocab; o++)
            {
                double s = b[o];
                for (int i = 0; i < hidden; i++) s += (double)w[o * hidden + i] * x[r * hidden + i];
                Assert.True(Math.Abs(s - zT[o * ld + r]) <= 1e-5 * Math.Max(1, Math.Abs(s)), $"logit ({r}, {o})");
                best = Math.Max(best, s);
            }
            Assert.True(Math.Abs(best - max[r]) <= 1e-5 * Math.Max(1, Math.Abs(best)), $"max of row {r}");
        }
    }

    [Fact]
    public void ExpNonPositive_MatchesDoubleExpToTwoUlpsAndUnderflowsToZero()
    {
        var xs = new List<float> { 0f, -0f, -1e-30f, -1e-7f, -0.5f, -0.34657359f, -0.6931472f, -1f, -10f, -50f, -87f, -87.33654f, -87.4f, -100f, -1e30f, float.NegativeInfinity };
        var rng = new Random(99);
        for (int i = 0; i < 4000; i++) xs.Add((float)(-rng.NextDouble() * 87.3));
        while (xs.Count % 16 != 0) xs.Add(-3f);
        var arr = xs.ToArray();
        for (int i = 0; i < arr.Length; i += 16)
        {
            if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
                Check(K.ExpNonPositive(System.Runtime.Intrinsics.Vector512.Create(arr.AsSpan(i, 16))), arr.AsSpan(i, 16));
            if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
            {
                Check(K.ExpNonPositive(System.Runtime.Intrinsics.Vector256.Create(arr.AsSpan(i, 8))), arr.AsSpan(i, 8));
                Check(K.ExpNonPositive(System.Runtime.Intrinsics.Vector256.Create(arr.AsSpan(i + 8, 8))), arr.AsSpan(i + 8, 8));
            }
        }

        static void Check<TVector>(TVector v, ReadOnlySpan<float> x) where TVector : struct
        {
            var lanes = new float[x.Length];
            System.Runtime.InteropServices.MemoryMarshal.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(lanes.AsSpan()), in v);
            for (int i = 0; i < x.Length; i++)
            {
                double expected = Math.Exp(x[i]);
                if (x[i] < K.ExpLowest) { Assert.Equal(0f, lanes[i]); continue; }
                Assert.True(Math.Abs(lanes[i] - expected) <= 2.5e-7 * expected, $"exp({x[i]:G9}) = {lanes[i]:G9}, expected {expected:G9}");
            }
        }
    }

    private static void AssertNear(double[] expected, float[] actual, double tol, string name)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]) / Math.Max(1.0, Math.Abs(expected[i]));
            Assert.True(err <= tol, $"{name}[{i}]: expected {expected[i]:G9}, actual {actual[i]:G9}");
        }
    }
}
