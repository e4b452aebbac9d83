// Kernels.MatMul: the three matrix products of a linear map y = x·Wᵀ + b and its backward.
//
// Legend: rows = number of input rows (B, B·T or N real tokens), in = input width, out = output width.
// Layout: row-major everywhere; W is [out, in] (PyTorch nn.Linear).
// Accumulation rule (STYLE rule 8): backward kernels ADD into their outputs; the caller zeros once.
// Threading: a kernel works on a row range (forward, backward-input) or an output-row range
// (backward-weight); the caller splits ranges across threads, so no two threads write one float.

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>y[r, o] = (accumulate ? y[r, o] : 0) + Σ_i x[r, i]·w[o, i] + bias[o], for r in [rowStart, rowEnd).</summary>
    public static void MatMulForward(
        ReadOnlySpan<float> x,      // [rows, in]
        ReadOnlySpan<float> w,      // [out, in]
        ReadOnlySpan<float> bias,   // [out], or empty for no bias
        Span<float> y,              // [rows, out]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, bool accumulate = false)
        => MatMulForwardNaive(x, w, bias, y, rows, inDim, outDim, rowStart, rowEnd, accumulate);

    /// <summary>dx[r, i] += Σ_o dy[r, o]·w[o, i], for r in [rowStart, rowEnd).</summary>
    public static void MatMulBackwardInput(
        ReadOnlySpan<float> dy,     // [rows, out]
        ReadOnlySpan<float> w,      // [out, in]
        Span<float> dx,             // [rows, in]
        int rows, int inDim, int outDim, int rowStart, int rowEnd)
        => MatMulBackwardInputNaive(dy, w, dx, rows, inDim, outDim, rowStart, rowEnd);

    /// <summary>dw[o, i] += Σ_r dy[r, o]·x[r, i]; dbias[o] += Σ_r dy[r, o], for o in [outStart, outEnd).</summary>
    public static void MatMulBackwardWeight(
        ReadOnlySpan<float> dy,     // [rows, out]
        ReadOnlySpan<float> x,      // [rows, in]
        Span<float> dw,             // [out, in]
        Span<float> dbias,          // [out], or empty for no bias
        int rows, int inDim, int outDim, int outStart, int outEnd)
        => MatMulBackwardWeightNaive(dy, x, dw, dbias, rows, inDim, outDim, outStart, outEnd);

    // ---- Scalar twins: obviously correct, used by tests and as the reference in benchmarks. ----

    internal static void MatMulForwardNaive(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int rows, int inDim, int outDim, int rowStart, int rowEnd, bool accumulate = false)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int o = 0; o < outDim; o++)
            {
                float sum = bias.IsEmpty ? 0f : bias[o];
                for (int i = 0; i < inDim; i++) sum += x[r * inDim + i] * w[o * inDim + i];
                y[r * outDim + o] = accumulate ? y[r * outDim + o] + sum : sum;
            }
        }
    }

    internal static void MatMulBackwardInputNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx,
        int rows, int inDim, int outDim, int rowStart, int rowEnd)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int i = 0; i < inDim; i++)
            {
                float sum = 0f;
                for (int o = 0; o < outDim; o++) sum += dy[r * outDim + o] * w[o * inDim + i];
                dx[r * inDim + i] += sum;
            }
        }
    }

    internal static void MatMulBackwardWeightNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias,
        int rows, int inDim, int outDim, int outStart, int outEnd)
    {
        for (int o = outStart; o < outEnd; o++)
        {
            float db = 0f;
            for (int r = 0; r < rows; r++) db += dy[r * outDim + o];
            if (!dbias.IsEmpty) dbias[o] += db;
            for (int i = 0; i < inDim; i++)
            {
                float sum = 0f;
                for (int r = 0; r < rows; r++) sum += dy[r * outDim + o] * x[r * inDim + i];
                dw[o * inDim + i] += sum;
            }
        }
    }
}
