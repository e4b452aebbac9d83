// Kernels.MatMul: the three matrix products of a linear map y = x·Wᵀ + b and its backward.
//
// Legend: rows = number of input rows (B, B·T or N real tokens), in = input width, out = output width.
// Layout: row-major everywhere; W is [out, in] (PyTorch nn.Linear).
// Accumulation rule (STYLE rule 8): backward kernels ADD into their outputs; the caller zeros once.
// Threading: a kernel works on a row range (forward, backward-input) or an output-row range
// (backward-weight); the caller splits ranges across threads, so no two threads write one float.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Forward calls with at most this many rows in total use dot products that stream W (decode).</summary>
    internal const int MatMulDotRows = 3;

    /// <summary>y[r, o] = (accumulate ? y[r, o] : 0) + Σ_i x[r, i]·w[o, i] + bias[o], for r in [rowStart, rowEnd).</summary>
    /// <remarks>GEMM with C = y, A = x, B = wᵀ (packed transposed), k = in. With at most
    /// <see cref="MatMulDotRows"/> rows in total (batch-1 decode) it streams W once with dot products instead.
    /// The path depends on <paramref name="rows"/> only, so a split of the row range gives identical results.</remarks>
    public static void MatMulForward(
        ReadOnlySpan<float> x,      // [rows, in]
        ReadOnlySpan<float> w,      // [out, in]
        ReadOnlySpan<float> bias,   // [out], or empty for no bias
        Span<float> y,              // [rows, out]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, bool accumulate = false)
    {
        CheckMatMul(rows, inDim, outDim, rowStart, rowEnd, x.Length, w.Length, y.Length);
        if (!bias.IsEmpty && bias.Length < outDim) throw new ArgumentException($"bias has {bias.Length} floats, expected {outDim}.", nameof(bias));
        if (!GemmIsVectorized)
        {
            MatMulForwardNaive(x, w, bias, y, rows, inDim, outDim, rowStart, rowEnd, accumulate);
            return;
        }

        if (rows <= MatMulDotRows)
        {
            MatMulForwardDot(x, w, bias, y, inDim, outDim, rowStart, rowEnd, accumulate);
            return;
        }

        Gemm(ref MemoryMarshal.GetReference(x), inDim, 1, rowStart, rowEnd, outDim, inDim,
            w, inDim, bTransposed: true, ref MemoryMarshal.GetReference(y), outDim, bias, loadC: accumulate);
    }

    /// <summary>Columns [colStart, colEnd) of <see cref="MatMulForward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, bool)"/>:
    /// y[r, o] = (accumulate ? y[r, o] : 0) + Σ_i x[r, i]·w[o, i] + bias[o], for r in [rowStart, rowEnd), o in [colStart, colEnd).</summary>
    /// <remarks>The same operations per element as the full call (the GEMM's blocking depends on the depth only, the
    /// dot path on <paramref name="rows"/> only), so any split of the columns gives the full call's bits. Lets threads
    /// split a product by output columns: each packs only its own rows of W.</remarks>
    public static void MatMulForwardColumns(
        ReadOnlySpan<float> x,      // [rows, in]
        ReadOnlySpan<float> w,      // [out, in]
        ReadOnlySpan<float> bias,   // [out], or empty for no bias
        Span<float> y,              // [rows, out]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd, bool accumulate)
        => MatMulForwardColumns(x, w, default, bias, y, rows, inDim, outDim, rowStart, rowEnd, colStart, colEnd, accumulate);

    /// <summary><see cref="MatMulForwardColumns(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int, int, bool)"/>
    /// with Wᵀ packed once beforehand by <see cref="PackMatMulForwardWeights"/> (or empty: pack per call), for a W that
    /// many calls share (the recurrent W_hh, once per batch instead of once per step). The same bits either way.
    /// With a packing, <paramref name="colStart"/> must be a multiple of <see cref="GemmPanelWidth"/>.</summary>
    public static void MatMulForwardColumns(
        ReadOnlySpan<float> x,          // [rows, in]
        ReadOnlySpan<float> w,          // [out, in]
        ReadOnlySpan<float> packedWt,   // PackMatMulForwardWeights(w), or empty
        ReadOnlySpan<float> bias,       // [out], or empty for no bias
        Span<float> y,                  // [rows, out]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd, bool accumulate)
    {
        CheckMatMul(rows, inDim, outDim, rowStart, rowEnd, x.Length, w.Length, y.Length);
        if (colStart < 0 || colStart > colEnd || colEnd > outDim) throw new ArgumentOutOfRangeException(nameof(colStart), $"column range [{colStart}, {colEnd}) is not inside [0, {outDim}).");
        if (!bias.IsEmpty && bias.Length < outDim) throw new ArgumentException($"bias has {bias.Length} floats, expected {outDim}.", nameof(bias));
        int width = colEnd - colStart;
        if (width == 0 || rowStart == rowEnd) return;
        ReadOnlySpan<float> wCols = w.Slice(colStart * inDim, width * inDim);
        ReadOnlySpan<float> biasCols = bias.IsEmpty ? default : bias.Slice(colStart, width);
        if (!GemmIsVectorized)
        {
            MatMulForwardNaiveColumns(x, w, bias, y, inDim, outDim, rowStart, rowEnd, colStart, colEnd, accumulate);
            return;
        }

        if (rows <= MatMulDotRows)
        {
            MatMulForwardDotColumns(x, w, bias, y, inDim, outDim, rowStart, rowEnd, colStart, colEnd, accumulate);
            return;
        }

        Gemm(ref MemoryMarshal.GetReference(x), inDim, 1, rowStart, rowEnd, width, inDim,
            wCols, inDim, bTransposed: true, ref Unsafe.Add(ref MemoryMarshal.GetReference(y), colStart), outDim, biasCols, loadC: accumulate,
            packedB: PackedColumns(packedWt, outDim, inDim, colStart));
    }

    /// <summary>Packs Wᵀ [in, out] for <see cref="MatMulForwardColumns(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int, int, bool)"/>:
    /// panels [panelStart, panelEnd) of <see cref="MatMulPackedPanels"/>(out); <paramref name="packed"/> holds
    /// <see cref="GemmPackedLength"/>(out, in) floats. Does nothing without SIMD (the scalar path reads W).</summary>
    public static void PackMatMulForwardWeights(ReadOnlySpan<float> w, int inDim, int outDim, Span<float> packed, int panelStart, int panelEnd)
    {
        if (!GemmIsVectorized) return;
        GemmPackB(w, inDim, bTransposed: true, outDim, inDim, packed, panelStart, panelEnd);
    }

    /// <summary>Packs W [out, in] for <see cref="MatMulBackwardInputColumns(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int, int)"/>:
    /// panels [panelStart, panelEnd) of <see cref="MatMulPackedPanels"/>(in); <paramref name="packed"/> holds
    /// <see cref="GemmPackedLength"/>(in, out) floats. Does nothing without SIMD.</summary>
    public static void PackMatMulBackwardInputWeights(ReadOnlySpan<float> w, int inDim, int outDim, Span<float> packed, int panelStart, int panelEnd)
    {
        if (!GemmIsVectorized) return;
        GemmPackB(w, inDim, bTransposed: false, inDim, outDim, packed, panelStart, panelEnd);
    }

    /// <summary>Panels of a packed operand with <paramref name="columns"/> columns.</summary>
    public static int MatMulPackedPanels(int columns) => (columns + GemmPanelWidth - 1) / GemmPanelWidth;

    // The packing from column colStart on (a panel boundary), or empty when there is none or no SIMD.
    private static ReadOnlySpan<float> PackedColumns(ReadOnlySpan<float> packed, int columns, int depth, int colStart)
    {
        if (packed.IsEmpty || !GemmIsVectorized) return default;
        if (colStart % GemmPanelWidth != 0) throw new ArgumentException($"column {colStart} is not at a packed panel boundary ({GemmPanelWidth} columns).", nameof(colStart));
        if (packed.Length < GemmPackedLength(columns, depth)) throw new ArgumentException($"the packed operand has {packed.Length} floats, expected {GemmPackedLength(columns, depth)}.", nameof(packed));
        return packed[(colStart / GemmPanelWidth * GemmPanelWidth * depth)..];
    }

    /// <summary>dx[r, i] += Σ_o dy[r, o]·w[o, i], for r in [rowStart, rowEnd).</summary>
    /// <remarks>GEMM with C = dx, A = dy, B = w (packed as is), k = out.</remarks>
    public static void MatMulBackwardInput(
        ReadOnlySpan<float> dy,     // [rows, out]
        ReadOnlySpan<float> w,      // [out, in]
        Span<float> dx,             // [rows, in]
        int rows, int inDim, int outDim, int rowStart, int rowEnd)
    {
        CheckMatMul(rows, inDim, outDim, rowStart, rowEnd, dx.Length, w.Length, dy.Length);
        if (outDim == 0) return;
        if (!GemmIsVectorized)
        {
            MatMulBackwardInputScalar(dy, w, dx, inDim, outDim, rowStart, rowEnd);
            return;
        }

        Gemm(ref MemoryMarshal.GetReference(dy), outDim, 1, rowStart, rowEnd, inDim, outDim,
            w, inDim, bTransposed: false, ref MemoryMarshal.GetReference(dx), inDim, default, loadC: true);
    }

    /// <summary>Columns [colStart, colEnd) of <see cref="MatMulBackwardInput"/>: dx[r, i] += Σ_o dy[r, o]·w[o, i],
    /// for r in [rowStart, rowEnd), i in [colStart, colEnd).</summary>
    /// <remarks>The same operations per element as the full call, so any split of the columns gives its bits.</remarks>
    public static void MatMulBackwardInputColumns(
        ReadOnlySpan<float> dy,     // [rows, out]
        ReadOnlySpan<float> w,      // [out, in]
        Span<float> dx,             // [rows, in]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd)
        => MatMulBackwardInputColumns(dy, w, default, dx, rows, inDim, outDim, rowStart, rowEnd, colStart, colEnd);

    /// <summary><see cref="MatMulBackwardInputColumns(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int, int)"/>
    /// with W packed once beforehand by <see cref="PackMatMulBackwardInputWeights"/> (or empty); the same bits either way.
    /// With a packing, <paramref name="colStart"/> must be a multiple of <see cref="GemmPanelWidth"/>.</summary>
    public static void MatMulBackwardInputColumns(
        ReadOnlySpan<float> dy,         // [rows, out]
        ReadOnlySpan<float> w,          // [out, in]
        ReadOnlySpan<float> packedW,    // PackMatMulBackwardInputWeights(w), or empty
        Span<float> dx,                 // [rows, in]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        CheckMatMul(rows, inDim, outDim, rowStart, rowEnd, dx.Length, w.Length, dy.Length);
        if (colStart < 0 || colStart > colEnd || colEnd > inDim) throw new ArgumentOutOfRangeException(nameof(colStart), $"column range [{colStart}, {colEnd}) is not inside [0, {inDim}).");
        int width = colEnd - colStart;
        if (outDim == 0 || width == 0 || rowStart == rowEnd) return;
        if (!GemmIsVectorized)
        {
            MatMulBackwardInputScalarColumns(dy, w, dx, inDim, outDim, rowStart, rowEnd, colStart, colEnd);
            return;
        }

        // B = w[:, colStart:colEnd]: the copy pack reads `width` floats of each row, ldb = in apart.
        Gemm(ref MemoryMarshal.GetReference(dy), outDim, 1, rowStart, rowEnd, width, outDim,
            w[colStart..], inDim, bTransposed: false, ref Unsafe.Add(ref MemoryMarshal.GetReference(dx), colStart), inDim, default, loadC: true,
            packedB: PackedColumns(packedW, inDim, outDim, colStart));
    }

    /// <summary>dw[o, i] += Σ_r dy[r, o]·x[r, i]; dbias[o] += Σ_r dy[r, o], for o in [outStart, outEnd).</summary>
    /// <remarks>GEMM with C = dw, A = dyᵀ (packed, since its rows are `out` floats apart), B = x (packed as is), k = rows.</remarks>
    public static void MatMulBackwardWeight(
        ReadOnlySpan<float> dy,     // [rows, out]
        ReadOnlySpan<float> x,      // [rows, in]
        Span<float> dw,             // [out, in]
        Span<float> dbias,          // [out], or empty for no bias
        int rows, int inDim, int outDim, int outStart, int outEnd)
    {
        if (outStart < 0 || outStart > outEnd || outEnd > outDim) throw new ArgumentOutOfRangeException(nameof(outStart), $"output range [{outStart}, {outEnd}) is not inside [0, {outDim}).");
        CheckMatMul(rows, inDim, outDim, 0, rows, x.Length, dw.Length, dy.Length);
        if (!dbias.IsEmpty && dbias.Length < outDim) throw new ArgumentException($"dbias has {dbias.Length} floats, expected {outDim}.", nameof(dbias));
        if (rows == 0) return;
        if (!dbias.IsEmpty) BiasGradient(dy, dbias, rows, outDim, outStart, outEnd);
        if (!GemmIsVectorized)
        {
            MatMulBackwardWeightScalar(dy, x, dw, rows, inDim, outDim, outStart, outEnd);
            return;
        }

        Gemm(ref MemoryMarshal.GetReference(dy), 1, outDim, outStart, outEnd, inDim, rows,
            x, inDim, bTransposed: false, ref MemoryMarshal.GetReference(dw), inDim, default, loadC: true, packA: true);
    }

    // Shapes are checked once, in every build: the fast paths index with unchecked refs.
    // For the forward kernel (aLength, wLength, cLength) = (x, w, y); backward-input passes (dx, w, dy),
    // backward-weight (x, dw, dy): the same three sizes [rows, in], [out, in], [rows, out].
    private static void CheckMatMul(int rows, int inDim, int outDim, int rowStart, int rowEnd, int rowsByIn, int outByIn, int rowsByOut)
    {
        if (rows < 0 || inDim < 0 || outDim < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"negative dimension: rows {rows}, in {inDim}, out {outDim}.");
        if (rowStart < 0 || rowStart > rowEnd || rowEnd > rows) throw new ArgumentOutOfRangeException(nameof(rowStart), $"row range [{rowStart}, {rowEnd}) is not inside [0, {rows}).");
        if (rowsByIn < (long)rows * inDim) throw new ArgumentException($"the [rows, in] matrix has {rowsByIn} floats, expected {(long)rows * inDim} ({rows}×{inDim}).");
        if (outByIn < (long)outDim * inDim) throw new ArgumentException($"the [out, in] matrix has {outByIn} floats, expected {(long)outDim * inDim} ({outDim}×{inDim}).");
        if (rowsByOut < (long)rows * outDim) throw new ArgumentException($"the [rows, out] matrix has {rowsByOut} floats, expected {(long)rows * outDim} ({rows}×{outDim}).");
    }

    // dbias[o] += Σ_r dy[r, o], r in increasing order for every o; vectorised along o.
    private static void BiasGradient(ReadOnlySpan<float> dy, Span<float> dbias, int rows, int outDim, int outStart, int outEnd)
    {
        Span<float> db = dbias[outStart..outEnd];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = dy.Slice(r * outDim + outStart, outEnd - outStart);
            System.Numerics.Tensors.TensorPrimitives.Add(db, row, db);
        }
    }

    // Batch-1 decode: each W row is read once from memory and dotted with the (at most MatMulDotRows) x rows.
    // Per element: vector partial sums over whole blocks of i, a horizontal sum, then the scalar tail in order.
    private static void MatMulForwardDot(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int inDim, int outDim, int rowStart, int rowEnd, bool accumulate)
    {
        ref float wRef = ref MemoryMarshal.GetReference(w);
        for (int r = rowStart; r < rowEnd; r++)
        {
            ref float xRow = ref Unsafe.Add(ref MemoryMarshal.GetReference(x), r * inDim);
            Span<float> yRow = y.Slice(r * outDim, outDim);
            for (int o = 0; o < outDim; o++)
            {
                float sum = Dot(ref xRow, ref Unsafe.Add(ref wRef, o * inDim), inDim);
                if (!bias.IsEmpty) sum += bias[o];
                yRow[o] = accumulate ? yRow[o] + sum : sum;
            }
        }
    }

    private static void MatMulForwardDotColumns(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd, bool accumulate)
    {
        ref float wRef = ref MemoryMarshal.GetReference(w);
        for (int r = rowStart; r < rowEnd; r++)
        {
            ref float xRow = ref Unsafe.Add(ref MemoryMarshal.GetReference(x), r * inDim);
            Span<float> yRow = y.Slice(r * outDim, outDim);
            for (int o = colStart; o < colEnd; o++)
            {
                float sum = Dot(ref xRow, ref Unsafe.Add(ref wRef, o * inDim), inDim);
                if (!bias.IsEmpty) sum += bias[o];
                yRow[o] = accumulate ? yRow[o] + sum : sum;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(ref float a, ref float b, int length)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            Vector512<float> acc = Vector512<float>.Zero;
            for (; i <= length - 16; i += 16)
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, (nuint)i), Vector512.LoadUnsafe(ref b, (nuint)i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= length - 8; i += 8)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), acc);
            sum = Vector256.Sum(acc);
        }

        for (; i < length; i++) sum += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        return sum;
    }

    // Scalar fallbacks (no SIMD): the naive sums reordered so the inner loop runs along contiguous memory.
    private static void MatMulBackwardInputScalar(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx,
        int inDim, int outDim, int rowStart, int rowEnd)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            Span<float> dxRow = dx.Slice(r * inDim, inDim);
            for (int o = 0; o < outDim; o++)
            {
                float d = dy[r * outDim + o];
                ReadOnlySpan<float> wRow = w.Slice(o * inDim, inDim);
                for (int i = 0; i < dxRow.Length; i++) dxRow[i] += d * wRow[i];
            }
        }
    }

    private static void MatMulBackwardInputScalarColumns(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx,
        int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        int width = colEnd - colStart;
        for (int r = rowStart; r < rowEnd; r++)
        {
            Span<float> dxRow = dx.Slice(r * inDim + colStart, width);
            for (int o = 0; o < outDim; o++)
            {
                float d = dy[r * outDim + o];
                ReadOnlySpan<float> wRow = w.Slice(o * inDim + colStart, width);
                for (int i = 0; i < dxRow.Length; i++) dxRow[i] += d * wRow[i];
            }
        }
    }

    private static void MatMulForwardNaiveColumns(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int inDim, int outDim, int rowStart, int rowEnd, int colStart, int colEnd, bool accumulate)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int o = colStart; o < colEnd; o++)
            {
                float sum = bias.IsEmpty ? 0f : bias[o];
                for (int i = 0; i < inDim; i++) sum += x[r * inDim + i] * w[o * inDim + i];
                y[r * outDim + o] = accumulate ? y[r * outDim + o] + sum : sum;
            }
        }
    }

    private static void MatMulBackwardWeightScalar(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw,
        int rows, int inDim, int outDim, int outStart, int outEnd)
    {
        for (int o = outStart; o < outEnd; o++)
        {
            Span<float> dwRow = dw.Slice(o * inDim, inDim);
            for (int r = 0; r < rows; r++)
            {
                float d = dy[r * outDim + o];
                ReadOnlySpan<float> xRow = x.Slice(r * inDim, inDim);
                for (int i = 0; i < dwRow.Length; i++) dwRow[i] += d * xRow[i];
            }
        }
    }

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
