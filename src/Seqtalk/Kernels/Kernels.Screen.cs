// Kernels.Screen: the exact greedy arg-max of a few logits rows h·Wᵀ + b without reading the fp32 W for every
// token: a first pass over an int8 copy of W (a quarter of the bytes), then the fp32 logits of the few tokens
// that the first pass cannot rule out.
//
// Legend: V vocabulary (rows of W), H hidden, S = ScreenBlock (16) rows of W per block, nb = ⌈V/S⌉ blocks.
// Layout of the int8 copy: q[(o/S)·H·S + i·S + o%S] = round(W[o, i] / s_o), s_o = max_i |W[o, i]| / 127, so the
// S rows of a block are one 16-byte load per i (one vector of 16 logits, no horizontal sums); blocks padded
// with zero rows (scale 0, bias −∞: their approximate logits are −∞).
//   ScreenLogitsInt8      approx[o] = s_o·Σ_i q[o, i]·x[i] + b_o over the padded vocabulary; returns max approx
//   ScreenCandidates      the o < V with approx[o] ≥ threshold, in increasing order
// The candidates' exact logits: GemmOrderLogits (Kernels.GemmRows), the GEMM's per-element order.
// Why the result is exact (the caller, Decoding.GreedyScreen, computes the bound): with r_o = max_i |W[o, i] −
// s_o·q[o, i]|, L1_o = Σ_i |W[o, i]|, γ = n·u/(1 − n·u) (u = 2⁻²⁴, n = 2H + 4 ≥ the operations in either sum),
//   |approx_o − z_o| ≤ E_o = r_o·‖x‖₁ + 2γ·((L1_o + H·r_o)·‖x‖∞ + |b_o|)
// where z_o is the fp32 logit the GEMM gives (both differ from the real-number logit by at most their
// rounding; the int8 copy adds at most r_o·‖x‖₁). The GEMM's order: z = b_o exactly, then H FMAs each rounded once,
// z_k = (z_{k−1} + x_k·w_k)(1 + δ_k), |δ_k| ≤ u; so |z_o − exact| ≤ γ_H·(|b_o| + Σ|x_k·w_k|) ≤ γ_n·(|b_o| + L1_o·‖x‖∞)
// with n = 2H + 4 > H. (n was set for the dot-product order the re-score used before: vector partial sums, a
// horizontal sum, the tail and the bias, fewer than 2H + 4 roundings. The GEMM order needs fewer, and the naive sum
// without SIMD 2H, so the bound covers them unchanged.) With E ≥ every E_o and M = max approx, the exact arg-max m
// has z_m ≥ M − E, and any o with approx_o < M − 2E has z_o < z_m; so re-computing z exactly for the
// candidates approx_o ≥ M − 2E and taking their first maximum gives the first maximum of the whole row.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Rows of W per int8 block: one Vector512 (or two Vector256) of logits.</summary>
    internal const int ScreenBlock = 16;

    /// <summary>Bytes of the int8 copy of a [<paramref name="vocab"/>, <paramref name="hidden"/>] weight: the padded
    /// blocks plus 16 bytes, so the Vector256 path may load 16 bytes at the last 8.</summary>
    internal static int ScreenBytes(int vocab, int hidden) => checked(ScreenBlocks(vocab) * ScreenBlock * hidden + ScreenBlock);

    /// <summary>Blocks of <see cref="ScreenBlock"/> rows covering <paramref name="vocab"/> rows.</summary>
    internal static int ScreenBlocks(int vocab) => (vocab + ScreenBlock - 1) / ScreenBlock;

    /// <summary>Quantizes each row of w to int8 with its own scale, into the blocked layout (see the header).</summary>
    /// <remarks>scale[o] = max_i |w[o, i]| / 127 (0 for a zero row); residual[o] = max_i |w[o, i] − scale[o]·q[o, i]|
    /// measured in double and rounded up to float, so it bounds the real error of the copy.
    /// Padded rows in [vocab, blocks·16) get q = 0 and scale 0. Not a hot path (once per model).</remarks>
    internal static void QuantizeRowsInt8(
        ReadOnlySpan<float> w,      // [V, H]
        Span<sbyte> q,              // [ScreenBytes(V, H)]
        Span<float> scale,          // [blocks·16]
        Span<float> residual,       // [V]
        int vocab, int hidden)
    {
        int blocks = ScreenBlocks(vocab);
        if (w.Length < (long)vocab * hidden || q.Length < ScreenBytes(vocab, hidden) || scale.Length < blocks * ScreenBlock || residual.Length < vocab)
            throw new ArgumentException($"QuantizeRowsInt8: buffers too small for V {vocab}, H {hidden}.");
        q.Clear();
        scale[..(blocks * ScreenBlock)].Clear();
        for (int o = 0; o < vocab; o++)
        {
            ReadOnlySpan<float> row = w.Slice(o * hidden, hidden);
            float max = 0f;
            foreach (float v in row) max = MathF.Max(max, MathF.Abs(v));
            float s = max / 127f;
            scale[o] = s;
            double worst = 0;
            int baseIndex = o / ScreenBlock * hidden * ScreenBlock + o % ScreenBlock;
            for (int i = 0; i < hidden; i++)
            {
                int v = s == 0f ? 0 : Math.Clamp((int)MathF.Round(row[i] / s), -127, 127);
                q[baseIndex + i * ScreenBlock] = (sbyte)v;
                worst = Math.Max(worst, Math.Abs(row[i] - (double)s * v));
            }
            float r = (float)worst;
            residual[o] = r < worst ? MathF.BitIncrement(r) : r;
        }
    }

    /// <summary>approx[o] = scale[o]·Σ_i q[o, i]·x[i] + bias[o] for o in [0, blocks·16); returns the largest approx.</summary>
    /// <remarks>Effectively <see cref="ScreenLogitsInt8Scalar"/>; the order of the sum differs between the SIMD widths,
    /// which the error bound of the header allows (it holds for any order).</remarks>
    public static float ScreenLogitsInt8(
        ReadOnlySpan<sbyte> q,      // [ScreenBytes(V, H)]
        ReadOnlySpan<float> scale,  // [blocks·16]
        ReadOnlySpan<float> bias,   // [blocks·16]  (−∞ on padded rows)
        ReadOnlySpan<float> x,      // [H]
        Span<float> approx,         // [blocks·16]
        int blocks, int hidden)
    {
        int padded = blocks * ScreenBlock;
        if (q.Length < padded * hidden + ScreenBlock || scale.Length < padded || bias.Length < padded || x.Length < hidden || approx.Length < padded)
            throw new ArgumentException($"ScreenLogitsInt8: buffers too small for {blocks} blocks, H {hidden}.");
        if (blocks == 0) return float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) return ScreenLogits512(q, scale, bias, x, approx, blocks, hidden);
        if (Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported) return ScreenLogits256(q, scale, bias, x, approx, blocks, hidden);
        return ScreenLogitsInt8Scalar(q, scale, bias, x, approx, blocks, hidden);
    }

    private static float ScreenLogits512(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, ReadOnlySpan<float> x,
        Span<float> approx, int blocks, int hidden)
    {
        ref sbyte qr = ref MemoryMarshal.GetReference(q);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float sr = ref MemoryMarshal.GetReference(scale);
        ref float br = ref MemoryMarshal.GetReference(bias);
        ref float ar = ref MemoryMarshal.GetReference(approx);
        nint stride = hidden * ScreenBlock;
        var max = Vector512.Create(float.NegativeInfinity);
        int blk = 0;
        // Four blocks at a time: four independent FMA chains; W is read once, in order.
        for (; blk + 4 <= blocks; blk += 4)
        {
            ref sbyte q0 = ref Unsafe.Add(ref qr, blk * stride);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = 0; i < hidden; i++)
            {
                var xi = Vector512.Create(Unsafe.Add(ref xr, i));
                nint o = i * ScreenBlock;
                a0 = Avx512F.FusedMultiplyAdd(Widen512(ref Unsafe.Add(ref q0, o)), xi, a0);
                a1 = Avx512F.FusedMultiplyAdd(Widen512(ref Unsafe.Add(ref q0, o + stride)), xi, a1);
                a2 = Avx512F.FusedMultiplyAdd(Widen512(ref Unsafe.Add(ref q0, o + 2 * stride)), xi, a2);
                a3 = Avx512F.FusedMultiplyAdd(Widen512(ref Unsafe.Add(ref q0, o + 3 * stride)), xi, a3);
            }
            max = Finish512(a0, ref sr, ref br, ref ar, blk * ScreenBlock, max);
            max = Finish512(a1, ref sr, ref br, ref ar, (blk + 1) * ScreenBlock, max);
            max = Finish512(a2, ref sr, ref br, ref ar, (blk + 2) * ScreenBlock, max);
            max = Finish512(a3, ref sr, ref br, ref ar, (blk + 3) * ScreenBlock, max);
        }
        for (; blk < blocks; blk++)
        {
            ref sbyte q0 = ref Unsafe.Add(ref qr, blk * stride);
            Vector512<float> a0 = default;
            for (int i = 0; i < hidden; i++)
                a0 = Avx512F.FusedMultiplyAdd(Widen512(ref Unsafe.Add(ref q0, i * ScreenBlock)), Vector512.Create(Unsafe.Add(ref xr, i)), a0);
            max = Finish512(a0, ref sr, ref br, ref ar, blk * ScreenBlock, max);
        }
        return HorizontalMax(max);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen512(ref sbyte p) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref p)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Finish512(Vector512<float> acc, ref float s, ref float b, ref float a, int o, Vector512<float> max)
    {
        var v = Avx512F.FusedMultiplyAdd(acc, Vector512.LoadUnsafe(ref s, (nuint)o), Vector512.LoadUnsafe(ref b, (nuint)o));
        v.StoreUnsafe(ref a, (nuint)o);
        return Vector512.Max(max, v);
    }

    private static float HorizontalMax(Vector512<float> v)
    {
        float m = float.NegativeInfinity;
        for (int j = 0; j < Vector512<float>.Count; j++) m = MathF.Max(m, v.GetElement(j));
        return m;
    }

    private static float HorizontalMax(Vector256<float> v)
    {
        float m = float.NegativeInfinity;
        for (int j = 0; j < Vector256<float>.Count; j++) m = MathF.Max(m, v.GetElement(j));
        return m;
    }

    private static float ScreenLogits256(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, ReadOnlySpan<float> x,
        Span<float> approx, int blocks, int hidden)
    {
        ref sbyte qr = ref MemoryMarshal.GetReference(q);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float sr = ref MemoryMarshal.GetReference(scale);
        ref float br = ref MemoryMarshal.GetReference(bias);
        ref float ar = ref MemoryMarshal.GetReference(approx);
        nint stride = hidden * ScreenBlock;
        var max = Vector256.Create(float.NegativeInfinity);
        // One block at a time as two halves of 8 rows (two FMA chains). The high half loads 16 bytes at +8
        // (ScreenBytes pads the copy by 16) and widens the low 8 of them.
        int blk = 0;
        for (; blk < blocks; blk++)
        {
            ref sbyte q0 = ref Unsafe.Add(ref qr, blk * stride);
            Vector256<float> lo = default, hi = default;
            for (int i = 0; i < hidden; i++)
            {
                var xi = Vector256.Create(Unsafe.Add(ref xr, i));
                nint o = i * ScreenBlock;
                lo = Fma.MultiplyAdd(Widen256(ref Unsafe.Add(ref q0, o)), xi, lo);
                hi = Fma.MultiplyAdd(Widen256(ref Unsafe.Add(ref q0, o + 8)), xi, hi);
            }
            int at = blk * ScreenBlock;
            var v0 = Fma.MultiplyAdd(lo, Vector256.LoadUnsafe(ref sr, (nuint)at), Vector256.LoadUnsafe(ref br, (nuint)at));
            var v1 = Fma.MultiplyAdd(hi, Vector256.LoadUnsafe(ref sr, (nuint)(at + 8)), Vector256.LoadUnsafe(ref br, (nuint)(at + 8)));
            v0.StoreUnsafe(ref ar, (nuint)at);
            v1.StoreUnsafe(ref ar, (nuint)(at + 8));
            max = Vector256.Max(max, Vector256.Max(v0, v1));
        }
        return HorizontalMax(max);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen256(ref sbyte p) =>
        Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref p)));

    /// <summary>The scalar twin of <see cref="ScreenLogitsInt8"/> (and its path without SIMD).</summary>
    internal static float ScreenLogitsInt8Scalar(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, ReadOnlySpan<float> x,
        Span<float> approx, int blocks, int hidden)
    {
        float max = float.NegativeInfinity;
        for (int o = 0; o < blocks * ScreenBlock; o++)
        {
            int baseIndex = o / ScreenBlock * hidden * ScreenBlock + o % ScreenBlock;
            float acc = 0f;
            for (int i = 0; i < hidden; i++) acc += q[baseIndex + i * ScreenBlock] * x[i];
            float v = scale[o] * acc + bias[o];
            approx[o] = v;
            max = MathF.Max(max, v);
        }
        return max;
    }

    /// <summary>Writes the o in [0, <paramref name="vocab"/>) with approx[o] ≥ <paramref name="threshold"/> into
    /// <paramref name="candidates"/>, in increasing order; returns how many.</summary>
    public static int ScreenCandidates(ReadOnlySpan<float> approx, float threshold, int vocab, Span<int> candidates)
    {
        if (approx.Length < vocab || candidates.Length < vocab) throw new ArgumentException($"ScreenCandidates: buffers too small for V {vocab}.");
        int count = 0, o = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var t = Vector512.Create(threshold);
            ref float a = ref MemoryMarshal.GetReference(approx);
            for (; o + 16 <= vocab; o += 16)
            {
                ulong bits = Vector512.GreaterThanOrEqual(Vector512.LoadUnsafe(ref a, (nuint)o), t).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    candidates[count++] = o + System.Numerics.BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var t = Vector256.Create(threshold);
            ref float a = ref MemoryMarshal.GetReference(approx);
            for (; o + 8 <= vocab; o += 8)
            {
                uint bits = Vector256.GreaterThanOrEqual(Vector256.LoadUnsafe(ref a, (nuint)o), t).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    candidates[count++] = o + System.Numerics.BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
        }
        for (; o < vocab; o++)
        {
            if (approx[o] >= threshold) candidates[count++] = o;
        }
        return count;
    }
}
