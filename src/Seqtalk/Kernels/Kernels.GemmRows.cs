// Kernels.GemmRows: MatMulForward's GEMM arithmetic for one row at a time over a weight packed once
// (PackMatMulForwardWeights), for decoding steps with only a few rows left.
//
// Legend: rows = input rows, in = input width (k), out = output width, NR = GemmPanelWidth (32 with Vector512, 16 with
// Vector256): the packing is Wᵀ in panels [out/NR][in][NR], zero-padded past out.
// Why: the GEMM computes every element y[r, o] as (accumulate ? y : 0), + bias[o], then one FMA x[r, i]·w[o, i] per i
// in increasing i (its depth blocks only store and reload the partial sum, which is exact); that sequence does not
// depend on the number of rows, so a row's floats are the same alone or in any batch. For one row the GEMM runs a
// 6-row tile with five repeated rows; this kernel runs the same per-element sequence with the row broadcast
// against the panels: vector lanes over o (no horizontal sums), four panels at once so eight FMA chains hide the
// latency. The same bits as MatMulForwardColumns with more than MatMulDotRows rows, at about the dot path's cost.
// Accumulation: with accumulate, y is added to (the GEMM's loadC); otherwise written.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>y[r, o] = (accumulate ? y[r, o] : 0) + bias[o] + Σ_i x[r, i]·w[o, i] for r in [rowStart, rowEnd), all o,
    /// from <paramref name="packedWt"/> = <see cref="PackMatMulForwardWeights"/>(w): per element the operations of
    /// <see cref="MatMulForwardColumns(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int, int, int, int, bool)"/>
    /// on its GEMM path (more than <see cref="MatMulDotRows"/> rows), so the same bits, row by row.</summary>
    /// <exception cref="InvalidOperationException">The GEMM is not vectorized (there is no packing then).</exception>
    public static void MatMulForwardPackedRows(
        ReadOnlySpan<float> x,          // [rows, in]
        ReadOnlySpan<float> packedWt,   // [GemmPackedLength(out, in)]
        ReadOnlySpan<float> bias,       // [out], or empty for no bias
        Span<float> y,                  // [rows, out]
        int rows, int inDim, int outDim, int rowStart, int rowEnd, bool accumulate)
    {
        if (!GemmIsVectorized) throw new InvalidOperationException("MatMulForwardPackedRows needs the vectorized GEMM's packing.");
        if (rows < 0 || inDim < 0 || outDim < 0 || rowStart < 0 || rowStart > rowEnd || rowEnd > rows)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"row range [{rowStart}, {rowEnd}) of {rows} rows, in {inDim}, out {outDim}.");
        if (x.Length < (long)rows * inDim || y.Length < (long)rows * outDim || packedWt.Length < GemmPackedLength(outDim, inDim)
            || (!bias.IsEmpty && bias.Length < outDim))
            throw new ArgumentException($"MatMulForwardPackedRows: buffers too small for rows {rows}, in {inDim}, out {outDim}.");
        if (outDim == 0) return;
        int nr = GemmPanelWidth, full = outDim / nr, panels = MatMulPackedPanels(outDim);
        bool wide = GemmUses512, hasBias = !bias.IsEmpty;
        ref float pr = ref MemoryMarshal.GetReference(packedWt);
        ref float br = ref MemoryMarshal.GetReference(bias);
        Span<float> edgeY = stackalloc float[32];
        Span<float> edgeBias = stackalloc float[32];
        for (int r = rowStart; r < rowEnd; r++)
        {
            ref float xr = ref Unsafe.Add(ref MemoryMarshal.GetReference(x), r * inDim);
            ref float yr = ref Unsafe.Add(ref MemoryMarshal.GetReference(y), r * outDim);
            int p = 0;
            for (; p + 4 <= full; p += 4)
            {
                ref float b = ref Unsafe.Add(ref pr, (nint)p * nr * inDim);
                if (wide) Row4x512(ref xr, ref b, inDim, ref Unsafe.Add(ref yr, p * nr), accumulate, hasBias, ref Unsafe.Add(ref br, hasBias ? p * nr : 0));
                else Row4x256(ref xr, ref b, inDim, ref Unsafe.Add(ref yr, p * nr), accumulate, hasBias, ref Unsafe.Add(ref br, hasBias ? p * nr : 0));
            }
            for (; p < panels; p++)
            {
                ref float b = ref Unsafe.Add(ref pr, (nint)p * nr * inDim);
                int width = Math.Min(nr, outDim - p * nr);
                // A panel runs on a full stack copy of its y and bias columns (the padded columns are computed, not kept).
                Span<float> yCols = MemoryMarshal.CreateSpan(ref Unsafe.Add(ref yr, p * nr), width);
                edgeY.Clear();
                if (accumulate) yCols.CopyTo(edgeY);
                edgeBias.Clear();
                if (hasBias) bias.Slice(p * nr, width).CopyTo(edgeBias);
                if (wide) Row1x512(ref xr, ref b, inDim, ref MemoryMarshal.GetReference(edgeY), accumulate, hasBias, ref MemoryMarshal.GetReference(edgeBias));
                else Row1x256(ref xr, ref b, inDim, ref MemoryMarshal.GetReference(edgeY), accumulate, hasBias, ref MemoryMarshal.GetReference(edgeBias));
                edgeY[..width].CopyTo(yCols);
            }
        }
    }

    // Four 32-wide panels (stride 32·k floats apart): eight accumulators, each the GEMM's per-element sequence.
    private static void Row4x512(ref float x, ref float b, int k, ref float y, bool load, bool addBias, ref float bias)
    {
        nint ps = (nint)32 * k;
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7;
        if (load)
        {
            a0 = Vector512.LoadUnsafe(ref y); a1 = Vector512.LoadUnsafe(ref y, 16);
            a2 = Vector512.LoadUnsafe(ref y, 32); a3 = Vector512.LoadUnsafe(ref y, 48);
            a4 = Vector512.LoadUnsafe(ref y, 64); a5 = Vector512.LoadUnsafe(ref y, 80);
            a6 = Vector512.LoadUnsafe(ref y, 96); a7 = Vector512.LoadUnsafe(ref y, 112);
        }
        else a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
        if (addBias)
        {
            a0 += Vector512.LoadUnsafe(ref bias); a1 += Vector512.LoadUnsafe(ref bias, 16);
            a2 += Vector512.LoadUnsafe(ref bias, 32); a3 += Vector512.LoadUnsafe(ref bias, 48);
            a4 += Vector512.LoadUnsafe(ref bias, 64); a5 += Vector512.LoadUnsafe(ref bias, 80);
            a6 += Vector512.LoadUnsafe(ref bias, 96); a7 += Vector512.LoadUnsafe(ref bias, 112);
        }
        ref float b0 = ref b;
        ref float b1 = ref Unsafe.Add(ref b, ps);
        ref float b2 = ref Unsafe.Add(ref b, 2 * ps);
        ref float b3 = ref Unsafe.Add(ref b, 3 * ps);
        for (nint i = 0; i < k; i++)
        {
            var xi = Vector512.Create(Unsafe.Add(ref x, i));
            nint o = i * 32;
            a0 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b0, (nuint)o), a0);
            a1 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b0, (nuint)(o + 16)), a1);
            a2 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b1, (nuint)o), a2);
            a3 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b1, (nuint)(o + 16)), a3);
            a4 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b2, (nuint)o), a4);
            a5 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b2, (nuint)(o + 16)), a5);
            a6 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b3, (nuint)o), a6);
            a7 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b3, (nuint)(o + 16)), a7);
        }
        a0.StoreUnsafe(ref y); a1.StoreUnsafe(ref y, 16);
        a2.StoreUnsafe(ref y, 32); a3.StoreUnsafe(ref y, 48);
        a4.StoreUnsafe(ref y, 64); a5.StoreUnsafe(ref y, 80);
        a6.StoreUnsafe(ref y, 96); a7.StoreUnsafe(ref y, 112);
    }

    private static void Row1x512(ref float x, ref float b, int k, ref float y, bool load, bool addBias, ref float bias)
    {
        Vector512<float> a0 = load ? Vector512.LoadUnsafe(ref y) : Vector512<float>.Zero;
        Vector512<float> a1 = load ? Vector512.LoadUnsafe(ref y, 16) : Vector512<float>.Zero;
        if (addBias) { a0 += Vector512.LoadUnsafe(ref bias); a1 += Vector512.LoadUnsafe(ref bias, 16); }
        for (nint i = 0; i < k; i++)
        {
            var xi = Vector512.Create(Unsafe.Add(ref x, i));
            a0 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b, (nuint)(i * 32)), a0);
            a1 = Vector512.FusedMultiplyAdd(xi, Vector512.LoadUnsafe(ref b, (nuint)(i * 32 + 16)), a1);
        }
        a0.StoreUnsafe(ref y); a1.StoreUnsafe(ref y, 16);
    }

    // The Vector256 twins: 16-wide panels, two 8-float vectors each.
    private static void Row4x256(ref float x, ref float b, int k, ref float y, bool load, bool addBias, ref float bias)
    {
        nint ps = (nint)16 * k;
        Vector256<float> a0, a1, a2, a3, a4, a5, a6, a7;
        if (load)
        {
            a0 = Vector256.LoadUnsafe(ref y); a1 = Vector256.LoadUnsafe(ref y, 8);
            a2 = Vector256.LoadUnsafe(ref y, 16); a3 = Vector256.LoadUnsafe(ref y, 24);
            a4 = Vector256.LoadUnsafe(ref y, 32); a5 = Vector256.LoadUnsafe(ref y, 40);
            a6 = Vector256.LoadUnsafe(ref y, 48); a7 = Vector256.LoadUnsafe(ref y, 56);
        }
        else a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector256<float>.Zero;
        if (addBias)
        {
            a0 += Vector256.LoadUnsafe(ref bias); a1 += Vector256.LoadUnsafe(ref bias, 8);
            a2 += Vector256.LoadUnsafe(ref bias, 16); a3 += Vector256.LoadUnsafe(ref bias, 24);
            a4 += Vector256.LoadUnsafe(ref bias, 32); a5 += Vector256.LoadUnsafe(ref bias, 40);
            a6 += Vector256.LoadUnsafe(ref bias, 48); a7 += Vector256.LoadUnsafe(ref bias, 56);
        }
        ref float b0 = ref b;
        ref float b1 = ref Unsafe.Add(ref b, ps);
        ref float b2 = ref Unsafe.Add(ref b, 2 * ps);
        ref float b3 = ref Unsafe.Add(ref b, 3 * ps);
        for (nint i = 0; i < k; i++)
        {
            var xi = Vector256.Create(Unsafe.Add(ref x, i));
            nint o = i * 16;
            a0 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b0, (nuint)o), a0);
            a1 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b0, (nuint)(o + 8)), a1);
            a2 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b1, (nuint)o), a2);
            a3 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b1, (nuint)(o + 8)), a3);
            a4 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b2, (nuint)o), a4);
            a5 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b2, (nuint)(o + 8)), a5);
            a6 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b3, (nuint)o), a6);
            a7 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b3, (nuint)(o + 8)), a7);
        }
        a0.StoreUnsafe(ref y); a1.StoreUnsafe(ref y, 8);
        a2.StoreUnsafe(ref y, 16); a3.StoreUnsafe(ref y, 24);
        a4.StoreUnsafe(ref y, 32); a5.StoreUnsafe(ref y, 40);
        a6.StoreUnsafe(ref y, 48); a7.StoreUnsafe(ref y, 56);
    }

    private static void Row1x256(ref float x, ref float b, int k, ref float y, bool load, bool addBias, ref float bias)
    {
        Vector256<float> a0 = load ? Vector256.LoadUnsafe(ref y) : Vector256<float>.Zero;
        Vector256<float> a1 = load ? Vector256.LoadUnsafe(ref y, 8) : Vector256<float>.Zero;
        if (addBias) { a0 += Vector256.LoadUnsafe(ref bias); a1 += Vector256.LoadUnsafe(ref bias, 8); }
        for (nint i = 0; i < k; i++)
        {
            var xi = Vector256.Create(Unsafe.Add(ref x, i));
            a0 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b, (nuint)(i * 16)), a0);
            a1 = Vector256.FusedMultiplyAdd(xi, Vector256.LoadUnsafe(ref b, (nuint)(i * 16 + 8)), a1);
        }
        a0.StoreUnsafe(ref y); a1.StoreUnsafe(ref y, 8);
    }

    /// <summary>values[j] = the logit bias[o] + Σ_i x[i]·w[o, i] of o = rows[j], with the per-element operations of the
    /// GEMM (<see cref="OutputBlockArgMax"/>, <see cref="OutputBlockForward"/>, MatMulForward with more than
    /// <see cref="MatMulDotRows"/> rows): start at the bias, then one FMA per i in increasing i; without SIMD the naive
    /// sum those kernels then run. So the same floats as any batched greedy path gives that row.</summary>
    /// <remarks>The GEMM of MatMulForward starts at 0 + bias, the block kernels at the bias: the same float except for a
    /// bias of −0, where a logit whose products are all zero could come out +0 instead of −0 (equal in every comparison).
    /// Four rows at a time as independent scalar FMA chains (a row has H dependent FMAs).</remarks>
    public static void GemmOrderLogits(
        ReadOnlySpan<float> x,      // [in]
        ReadOnlySpan<float> w,      // [out, in]
        ReadOnlySpan<float> bias,   // [out], or empty
        ReadOnlySpan<int> rows,     // [n] indices into w
        Span<float> values,         // [n]
        int inDim)
    {
        int n = rows.Length;
        if (x.Length < inDim || values.Length < n) throw new ArgumentException($"GemmOrderLogits: buffers too small for {n} rows, in {inDim}.");
        foreach (int o in rows)
        {
            if (o < 0 || w.Length < (long)(o + 1) * inDim || (!bias.IsEmpty && bias.Length <= o))
                throw new ArgumentException($"GemmOrderLogits: row {o} is outside the buffers (in {inDim}).");
        }
        if (!GemmIsVectorized)
        {
            for (int j = 0; j < n; j++)
            {
                int o = rows[j];
                float s = bias.IsEmpty ? 0f : bias[o];
                for (int i = 0; i < inDim; i++) s += x[i] * w[o * inDim + i];
                values[j] = s;
            }
            return;
        }
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float wr = ref MemoryMarshal.GetReference(w);
        int k = 0;
        for (; k + 4 <= n; k += 4)
        {
            int o0 = rows[k], o1 = rows[k + 1], o2 = rows[k + 2], o3 = rows[k + 3];
            ref float w0 = ref Unsafe.Add(ref wr, (nint)o0 * inDim);
            ref float w1 = ref Unsafe.Add(ref wr, (nint)o1 * inDim);
            ref float w2 = ref Unsafe.Add(ref wr, (nint)o2 * inDim);
            ref float w3 = ref Unsafe.Add(ref wr, (nint)o3 * inDim);
            float s0 = bias.IsEmpty ? 0f : bias[o0], s1 = bias.IsEmpty ? 0f : bias[o1];
            float s2 = bias.IsEmpty ? 0f : bias[o2], s3 = bias.IsEmpty ? 0f : bias[o3];
            for (nint i = 0; i < inDim; i++)
            {
                float xi = Unsafe.Add(ref xr, i);
                s0 = MathF.FusedMultiplyAdd(xi, Unsafe.Add(ref w0, i), s0);
                s1 = MathF.FusedMultiplyAdd(xi, Unsafe.Add(ref w1, i), s1);
                s2 = MathF.FusedMultiplyAdd(xi, Unsafe.Add(ref w2, i), s2);
                s3 = MathF.FusedMultiplyAdd(xi, Unsafe.Add(ref w3, i), s3);
            }
            values[k] = s0; values[k + 1] = s1; values[k + 2] = s2; values[k + 3] = s3;
        }
        for (; k < n; k++)
        {
            int o = rows[k];
            ref float wo = ref Unsafe.Add(ref wr, (nint)o * inDim);
            float s = bias.IsEmpty ? 0f : bias[o];
            for (nint i = 0; i < inDim; i++) s = MathF.FusedMultiplyAdd(Unsafe.Add(ref xr, i), Unsafe.Add(ref wo, i), s);
            values[k] = s;
        }
    }
}
