using System.Runtime.Intrinsics;
using Seqtalk.Kernels;
using KernelMath = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>The three GEMM kernels against their scalar twins (STYLE rules 11, 18, 19).</summary>
/// <remarks>Run under every SIMD width: <c>DOTNET_EnableAVX512=0</c>, <c>DOTNET_EnableAVX2=0</c>,
/// <c>DOTNET_EnableHWIntrinsic=0</c> with <c>--filter Category=Kernels</c>.</remarks>
[Trait("Category", "Kernels")]
public class MatMulTests
{
    private const float Sentinel = -12345.678f;
    private const int Guard = 16;

    public enum Op { Forward, BackwardInput, BackwardWeight }

    /// <summary>Sizes 0..(2·Vector512&lt;float&gt;.Count + 3), sampled around the vector and tile edges.</summary>
    private static readonly int[] SmallSizes = [0, 1, 2, 3, 5, 6, 7, 8, 9, 13, 15, 16, 17, 23, 31, 32, 33, 2 * Vector512<float>.Count + 3];

    public static TheoryData<Op> Ops => new() { Op.Forward, Op.BackwardInput, Op.BackwardWeight };

    [Theory]
    [MemberData(nameof(Ops))]
    public void SmallShapes_MatchNaive(Op op)
    {
        var rng = new Random(1234);
        int cases = 0;
        foreach (int rows in SmallSizes)
            foreach (int inDim in SmallSizes)
                foreach (int outDim in SmallSizes)
                {
                    // Alternate flags so every combination of shape parity meets both settings.
                    bool accumulate = ((rows + inDim + outDim) & 1) == 0;
                    bool withBias = ((rows * 3 + inDim + outDim * 7) & 2) == 0;
                    int extent = op == Op.BackwardWeight ? outDim : rows;
                    int start = extent == 0 ? 0 : rng.Next(0, Math.Min(extent, 3));
                    int end = extent == 0 ? 0 : rng.Next(start, extent + 1);
                    if (cases++ % 3 == 0) (start, end) = (0, extent);   // the full range often
                    CheckAgainstNaive(op, rows, inDim, outDim, start, end, accumulate, withBias, rng);
                }
    }

    /// <summary>The issue-3 shapes with fewer rows: tutorial model (E = H = 50, V = 9848) and the larger one.</summary>
    public static TheoryData<Op, int, int, int, bool, bool> RealShapes
    {
        get
        {
            var data = new TheoryData<Op, int, int, int, bool, bool>();
            (int Rows, int In, int Out)[] shapes =
            [
                (37, 50, 9848),   // output projection, N real tokens
                (1, 50, 9848),    // batch-1 decode
                (2, 50, 200),     // decode recurrent step
                (70, 50, 200),    // input projections [T·B, E] / recurrent step [B, H]
                (21, 256, 2048),  // larger model input projection
                (13, 512, 2048),  // larger model recurrent step
                (9, 512, 8000),   // larger model output projection
            ];
            foreach (var (rows, inDim, outDim) in shapes)
                foreach (Op op in new[] { Op.Forward, Op.BackwardInput, Op.BackwardWeight })
                {
                    data.Add(op, rows, inDim, outDim, false, true);
                    data.Add(op, rows, inDim, outDim, true, false);
                }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(RealShapes))]
    public void RealShapes_MatchNaive(Op op, int rows, int inDim, int outDim, bool accumulate, bool withBias)
    {
        var rng = new Random(rows * 31 + inDim);
        int extent = op == Op.BackwardWeight ? outDim : rows;
        CheckAgainstNaive(op, rows, inDim, outDim, 0, extent, accumulate, withBias, rng, modelScale: true);
        // An arbitrary inner range: only it is written, the rest stays as it was.
        int start = extent / 3, end = Math.Max(start, extent - extent / 4 - 1);
        CheckAgainstNaive(op, rows, inDim, outDim, start, end, accumulate, withBias, rng, modelScale: true);
    }

    public static TheoryData<Op, int, int, int> SplitShapes
    {
        get
        {
            var data = new TheoryData<Op, int, int, int>();
            (int Rows, int In, int Out)[] shapes = [(2, 50, 200), (3, 50, 97), (29, 50, 200), (64, 50, 300), (23, 300, 70), (11, 35, 35)];
            foreach (var (rows, inDim, outDim) in shapes)
                foreach (Op op in new[] { Op.Forward, Op.BackwardInput, Op.BackwardWeight })
                    data.Add(op, rows, inDim, outDim);
            return data;
        }
    }

    /// <summary>Training must be bit-identical with 1 and 2 threads: splitting the range changes no bit.</summary>
    [Theory]
    [MemberData(nameof(SplitShapes))]
    public void SplitRange_IsBitIdentical(Op op, int rows, int inDim, int outDim)
    {
        var rng = new Random(99);
        int extent = op == Op.BackwardWeight ? outDim : rows;
        var (inputs, outputs) = MakeBuffers(op, rows, inDim, outDim, withBias: true, rng);
        float[][] whole = outputs.Select(o => (float[])o.Clone()).ToArray();
        Run(op, inputs, whole, rows, inDim, outDim, 0, extent, accumulate: true, naive: false);
        foreach (int split in new[] { 1, 2, 5, 6, 7, extent / 2, extent - 1 }.Where(s => s > 0 && s < extent).Distinct())
        {
            float[][] parts = outputs.Select(o => (float[])o.Clone()).ToArray();
            Run(op, inputs, parts, rows, inDim, outDim, split, extent, accumulate: true, naive: false);
            Run(op, inputs, parts, rows, inDim, outDim, 0, split, accumulate: true, naive: false);
            for (int b = 0; b < whole.Length; b++)
            {
                for (int i = 0; i < whole[b].Length; i++)
                {
                    if (BitConverter.SingleToInt32Bits(whole[b][i]) != BitConverter.SingleToInt32Bits(parts[b][i]))
                        Assert.Fail($"{op} [{rows},{inDim}]x[{outDim}] split at {split}: output {b}[{i}] = {parts[b][i]:R}, one call gave {whole[b][i]:R}");
                }
            }
        }
    }

    /// <summary>The column-range kernels (threads split the LSTM's products by columns): each column block, run
    /// alone, writes exactly the whole call's bits into its columns and nothing outside them.</summary>
    [Theory]
    [InlineData(2, 50, 200)]     // the dot path (at most MatMulDotRows rows)
    [InlineData(29, 50, 200)]
    [InlineData(13, 130, 520)]   // an LSTM step with H = 130 cut into gate blocks
    [InlineData(9, 192, 768)]    // H = 192: blocks at panel boundaries, W packed once
    [InlineData(7, 35, 97)]
    public void ColumnBlocks_AreBitIdenticalToTheWholeCall(int rows, int inDim, int outDim)
    {
        var rng = new Random(rows + inDim + outDim);
        float[] x = Random(rng, rows * inDim), w = Random(rng, outDim * inDim), bias = Random(rng, outDim), y0 = Random(rng, rows * outDim);
        float[] dy = Random(rng, rows * outDim), dx0 = Random(rng, rows * inDim);
        foreach (bool accumulate in new[] { false, true })
        {
            var whole = (float[])y0.Clone();
            KernelMath.MatMulForward(x, w, bias, whole, rows, inDim, outDim, 0, rows, accumulate);
            var wholeDx = (float[])dx0.Clone();
            KernelMath.MatMulBackwardInput(dy, w, wholeDx, rows, inDim, outDim, 0, rows);
            foreach (int block in new[] { 1, 5, 16, 32, 33, 64 })
            {
                for (int c0 = 0; c0 < outDim; c0 += block)
                {
                    var alone = (float[])y0.Clone();
                    int c1 = Math.Min(outDim, c0 + block);
                    KernelMath.MatMulForwardColumns(x, w, bias, alone, rows, inDim, outDim, 0, rows, c0, c1, accumulate);
                    for (int r = 0; r < rows; r++)
                        for (int o = 0; o < outDim; o++)
                        {
                            bool inside = o >= c0 && o < c1;
                            float expected = inside ? whole[r * outDim + o] : y0[r * outDim + o];
                            AssertSameBits(expected, alone[r * outDim + o], $"forward block [{c0},{c1}) of {outDim}, accumulate {accumulate}, [{r},{o}]");
                        }
                }

                var partsDx = (float[])dx0.Clone();
                for (int c0 = 0; c0 < inDim; c0 += block)
                    KernelMath.MatMulBackwardInputColumns(dy, w, partsDx, rows, inDim, outDim, 0, rows, c0, Math.Min(inDim, c0 + block));
                for (int i = 0; i < wholeDx.Length; i++) AssertSameBits(wholeDx[i], partsDx[i], $"backward-input blocks of {block}, [{i}]");

                // W packed once (as the LSTM steps share W_hh): blocks at panel boundaries give the same bits again.
                if (block % KernelMath.GemmPanelWidth != 0) continue;
                var packedWt = new float[KernelMath.GemmPackedLength(outDim, inDim)];
                KernelMath.PackMatMulForwardWeights(w, inDim, outDim, packedWt, 0, KernelMath.MatMulPackedPanels(outDim));
                var packedParts = (float[])y0.Clone();
                for (int c0 = 0; c0 < outDim; c0 += block)
                    KernelMath.MatMulForwardColumns(x, w, packedWt, bias, packedParts, rows, inDim, outDim, 0, rows, c0, Math.Min(outDim, c0 + block), accumulate);
                for (int i = 0; i < whole.Length; i++) AssertSameBits(whole[i], packedParts[i], $"packed forward blocks of {block}, [{i}]");
                var packedW = new float[KernelMath.GemmPackedLength(inDim, outDim)];
                KernelMath.PackMatMulBackwardInputWeights(w, inDim, outDim, packedW, 0, KernelMath.MatMulPackedPanels(inDim));
                var packedDx = (float[])dx0.Clone();
                for (int c0 = 0; c0 < inDim; c0 += block)
                    KernelMath.MatMulBackwardInputColumns(dy, w, packedW, packedDx, rows, inDim, outDim, 0, rows, c0, Math.Min(inDim, c0 + block));
                for (int i = 0; i < wholeDx.Length; i++) AssertSameBits(wholeDx[i], packedDx[i], $"packed backward-input blocks of {block}, [{i}]");
            }
        }
    }

    private static void AssertSameBits(float expected, float actual, string what)
    {
        if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(actual))
            Assert.Fail($"{what}: {actual:R}, the whole call gave {expected:R}");
    }

    [Fact]
    public void ForwardWithoutAccumulate_IgnoresOldOutput()
    {
        var rng = new Random(7);
        float[] x = Random(rng, 5 * 9), w = Random(rng, 40 * 9), bias = Random(rng, 40);
        float[] y1 = Enumerable.Repeat(float.NaN, 5 * 40).ToArray(), y2 = new float[5 * 40];
        KernelMath.MatMulForward(x, w, bias, y1, 5, 9, 40, 0, 5);
        KernelMath.MatMulForwardNaive(x, w, bias, y2, 5, 9, 40, 0, 5);
        AssertClose(y2, y1, "forward over NaN");
    }

    [Fact]
    public void ShortBuffers_Throw()
    {
        float[] x = new float[6], w = new float[6], y = new float[3];
        Assert.Throws<ArgumentException>(() => KernelMath.MatMulForward(x, w, default, y, 2, 3, 2, 0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelMath.MatMulBackwardInput(new float[4], w, x, 2, 3, 2, 1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelMath.MatMulBackwardWeight(new float[4], x, w, default, 2, 3, 2, 0, 3));
    }

    // ---- helpers ----

    private static void CheckAgainstNaive(Op op, int rows, int inDim, int outDim, int start, int end, bool accumulate, bool withBias, Random rng, bool modelScale = false)
    {
        var (inputs, outputs) = MakeBuffers(op, rows, inDim, outDim, withBias, rng, modelScale);
        float[][] expected = outputs.Select(o => (float[])o.Clone()).ToArray();
        float[][] actual = outputs.Select(o => (float[])o.Clone()).ToArray();
        Run(op, inputs, expected, rows, inDim, outDim, start, end, accumulate, naive: true);
        Run(op, inputs, actual, rows, inDim, outDim, start, end, accumulate, naive: false);
        string what = $"{op} rows={rows} in={inDim} out={outDim} range=[{start},{end}) acc={accumulate} bias={withBias}";
        for (int b = 0; b < actual.Length; b++)
        {
            int length = actual[b].Length - Guard;
            for (int i = length; i < actual[b].Length; i++)
            {
                if (BitConverter.SingleToInt32Bits(actual[b][i]) != BitConverter.SingleToInt32Bits(Sentinel))
                    Assert.Fail($"{what}: wrote past the end of output {b} at {i - length}");
            }

            AssertClose(expected[b], actual[b], $"{what}, output {b}");
        }
    }

    // Inputs: the read-only operands. Outputs: each with a Guard-float sentinel tail (the span passed is shorter).
    // Values are U(-1, 1). With modelScale, W is Glorot-uniform and dy is U(-1, 1)/out, the magnitudes of the
    // real model (h in (-1, 1), dLogits = (p - onehot)/N): with U(-1, 1) everywhere an 8000-long sum is O(30)
    // and the naive float sum alone is off by ~3e-5, so the 1e-5 bound would test the reference, not the kernel.
    private static (float[][] Inputs, float[][] Outputs) MakeBuffers(Op op, int rows, int inDim, int outDim, bool withBias, Random rng, bool modelScale = false)
    {
        float wScale = modelScale ? MathF.Sqrt(6f / Math.Max(1, inDim + outDim)) : 1f;
        float dyScale = modelScale ? 1f / Math.Max(1, outDim) : 1f;
        float[] Out(int length)
        {
            float[] buffer = Random(rng, length + Guard);
            buffer.AsSpan(length).Fill(Sentinel);
            return buffer;
        }

        return op switch
        {
            Op.Forward => ([Random(rng, rows * inDim), Random(rng, outDim * inDim, wScale), withBias ? Random(rng, outDim) : []], [Out(rows * outDim)]),
            Op.BackwardInput => ([Random(rng, rows * outDim, dyScale), Random(rng, outDim * inDim, wScale)], [Out(rows * inDim)]),
            Op.BackwardWeight => ([Random(rng, rows * outDim, dyScale), Random(rng, rows * inDim)], withBias ? [Out(outDim * inDim), Out(outDim)] : [Out(outDim * inDim)]),
        };
    }

    private static void Run(Op op, float[][] inputs, float[][] outputs, int rows, int inDim, int outDim, int start, int end, bool accumulate, bool naive)
    {
        Span<float> Trim(float[] buffer) => buffer.AsSpan(0, buffer.Length - Guard);
        switch (op)
        {
            case Op.Forward:
                if (naive) KernelMath.MatMulForwardNaive(inputs[0], inputs[1], inputs[2], Trim(outputs[0]), rows, inDim, outDim, start, end, accumulate);
                else KernelMath.MatMulForward(inputs[0], inputs[1], inputs[2], Trim(outputs[0]), rows, inDim, outDim, start, end, accumulate);
                break;
            case Op.BackwardInput:
                if (naive) KernelMath.MatMulBackwardInputNaive(inputs[0], inputs[1], Trim(outputs[0]), rows, inDim, outDim, start, end);
                else KernelMath.MatMulBackwardInput(inputs[0], inputs[1], Trim(outputs[0]), rows, inDim, outDim, start, end);
                break;
            case Op.BackwardWeight:
                Span<float> dbias = outputs.Length > 1 ? Trim(outputs[1]) : default;
                if (naive) KernelMath.MatMulBackwardWeightNaive(inputs[0], inputs[1], Trim(outputs[0]), dbias, rows, inDim, outDim, start, end);
                else KernelMath.MatMulBackwardWeight(inputs[0], inputs[1], Trim(outputs[0]), dbias, rows, inDim, outDim, start, end);
                break;
        }
    }

    private static float[] Random(Random rng, int length, float scale = 1f)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return values;
    }

    /// <summary>Per element: abs 1e-5 or rel 1e-5 (STYLE: blocked matmul vs naive). Prints the first mismatches.</summary>
    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        var failures = new List<string>();
        double maxAbs = 0, maxRel = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double abs = Math.Abs(a - e), rel = abs / Math.Max(Math.Abs(e), 1e-30);
            if (double.IsNaN(a) != double.IsNaN(e) || (abs > 1e-5 && rel > 1e-5))
            {
                maxAbs = Math.Max(maxAbs, abs);
                maxRel = Math.Max(maxRel, rel);
                if (failures.Count < 5) failures.Add($"[{i}] expected {e:R} got {a:R}");
            }
        }

        if (failures.Count > 0)
            Assert.Fail($"{what}: max abs {maxAbs:G3} max rel {maxRel:G3}; first mismatches: {string.Join("; ", failures)}");
    }
}
