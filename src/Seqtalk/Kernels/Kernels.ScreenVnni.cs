// Kernels.ScreenVnni: the int8 screen of Kernels.Screen with the activations quantized too, so the screen's products
// are whole numbers summed exactly by the CPU's int8 dot-product instruction (AVX-VNNI vpdpbusd: 32 u8·s8 products
// per 256-bit instruction, against 16 float FMAs per 512-bit one after widening the weights), and several rows share
// each load of the weights. This is what makes the screen pay at batch sizes where the fp32 GEMM is already at peak.
//
// Legend: V vocabulary, H hidden, Hq = ⌈H/4⌉ groups of four hidden units, S = ScreenBlock (16) outputs per block.
// Weights: the same per-row scales s_o and codes q[o, i] as QuantizeRowsInt8 (so the same residuals r_o), laid out
//   qv[(o/S)·Hq·64 + (i/4)·64 + (o%S)·4 + i%4] = q[o, i]   (zero past H and past V)
// so that one 64-byte load holds four hidden units of 16 outputs, each output's four bytes in one int32 lane.
// Activations of a row x: s_x = max_i |x_i| / 127 (0 for a zero row), x_q,i = round(x_i / s_x) ∈ [−127, 127],
// stored as u_i = x_q,i + 128 ∈ [1, 255] (vpdpbusd multiplies unsigned by signed bytes); c_o = 128·Σ_i q[o, i].
//   acc_o = Σ_i u_i·q[o, i] (int32, exact: |acc_o| ≤ 255·127·4·Hq)
//   approx_o = fma(float(acc_o − c_o)·s_o, s_x, b_o)
// acc_o − c_o = Σ_i x_q,i·q[o, i] exactly, and |Σ x_q·q| ≤ 127²·H < 2²⁴ for H ≤ MaxVnniHidden, so float() is exact;
// the two roundings that remain are fewer than the 2H + 4 the bound of Kernels.Screen allows for the approximate sum.
// The quantized row x̂_i = s_x·x_q,i differs from x_i by at most 0.51·s_x (half a step, plus the rounding of x_i/s_x),
// so with A_o = L1_o + H·r_o ≥ Σ_i |s_o·q[o, i]|:
//   |approx_o − z_o| ≤ E_o + 0.51·s_x·A_o   (E_o the bound of Kernels.Screen)
// Decoding.GreedyScreen adds that term; the candidates and their exact logits are computed as before.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Widest hidden size the VNNI screen takes: 127²·H must stay below 2²⁴ so that the integer sum converts to
    /// float exactly.</summary>
    internal const int MaxVnniHidden = 1024;

    /// <summary>Rows the VNNI screen computes together: each 64-byte load of weights feeds this many rows.</summary>
    internal const int VnniRows = 4;

    /// <summary>True when this machine runs the VNNI screen (AVX-VNNI) and <paramref name="hidden"/> is small enough.</summary>
    internal static bool ScreenVnniIsSupported(int hidden) => AvxVnni.IsSupported && hidden <= MaxVnniHidden;

    /// <summary>Groups of four hidden units: ⌈H/4⌉.</summary>
    internal static int VnniGroups(int hidden) => (hidden + 3) / 4;

    /// <summary>Bytes of the VNNI copy of a [<paramref name="vocab"/>, <paramref name="hidden"/>] weight.</summary>
    internal static int ScreenVnniBytes(int vocab, int hidden) => checked(ScreenBlocks(vocab) * ScreenBlock * 4 * VnniGroups(hidden));

    /// <summary>Lays the codes of <see cref="QuantizeRowsInt8"/> (its blocked layout) out for the VNNI screen and
    /// computes c_o = 128·Σ_i q[o, i] (see the header). Not a hot path (once per model).</summary>
    internal static void LayoutVnni(ReadOnlySpan<sbyte> q, Span<sbyte> qv, Span<int> offset, int vocab, int hidden)
    {
        int blocks = ScreenBlocks(vocab), groups = VnniGroups(hidden);
        if (q.Length < ScreenBytes(vocab, hidden) || qv.Length < ScreenVnniBytes(vocab, hidden) || offset.Length < blocks * ScreenBlock)
            throw new ArgumentException($"LayoutVnni: buffers too small for V {vocab}, H {hidden}.");
        qv.Clear();
        offset[..(blocks * ScreenBlock)].Clear();
        for (int o = 0; o < blocks * ScreenBlock; o++)
        {
            int from = o / ScreenBlock * hidden * ScreenBlock + o % ScreenBlock;
            int to = o / ScreenBlock * groups * 64 + o % ScreenBlock * 4;
            int sum = 0;
            for (int i = 0; i < hidden; i++)
            {
                sbyte v = q[from + i * ScreenBlock];
                qv[to + i / 4 * 64 + i % 4] = v;
                sum += v;
            }
            offset[o] = 128 * sum;
        }
    }

    /// <summary>Quantizes one row x to u = round(x/s_x) + 128 (see the header) in <paramref name="u"/>[0, 4·Hq) (128 past
    /// H: a zero code); returns s_x. A zero row gives s_x = 0 and all codes 128. The row must be finite.</summary>
    internal static float QuantizeActivationsVnni(ReadOnlySpan<float> x, Span<byte> u, int hidden) =>
        QuantizeActivationsVnni(x, u, hidden, hidden == 0 ? 0f : MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(x[..hidden])));

    /// <summary><see cref="QuantizeActivationsVnni(ReadOnlySpan{float}, Span{byte}, int)"/> given max_i |x_i| (the caller has it).</summary>
    internal static float QuantizeActivationsVnni(ReadOnlySpan<float> x, Span<byte> u, int hidden, float max)
    {
        int padded = 4 * VnniGroups(hidden);
        if (x.Length < hidden || u.Length < padded) throw new ArgumentException($"QuantizeActivationsVnni: buffers too small for H {hidden}.");
        float s = max / 127f;
        if (s == 0f)
        {
            u[..padded].Fill(128);
            return 0f;
        }
        float inv = 1f / s;
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // 32 at a time: the same rounding (to nearest, ties to even) and clamp as the scalar loop, then + 128 and
            // narrowed to bytes in order.
            var vInv = Vector256.Create(inv);
            var lo = Vector256.Create(-127f);
            var hi = Vector256.Create(127f);
            var bias = Vector256.Create(128);
            ref float xr = ref MemoryMarshal.GetReference(x);
            for (; j + 32 <= hidden; j += 32)
            {
                var c0 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)j) * vInv), lo, hi)) + bias;
                var c1 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(j + 8)) * vInv), lo, hi)) + bias;
                var c2 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(j + 16)) * vInv), lo, hi)) + bias;
                var c3 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(j + 24)) * vInv), lo, hi)) + bias;
                Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256.Narrow(c2, c3)).AsByte().StoreUnsafe(ref MemoryMarshal.GetReference(u), (nuint)j);
            }
        }
        for (; j < hidden; j++) u[j] = (byte)(Math.Clamp((int)MathF.Round(x[j] * inv), -127, 127) + 128);
        u[hidden..padded].Fill(128);
        return s;
    }

    /// <summary>approx[r·P + o] for the <paramref name="rows"/> quantized rows (u: row r at r·4·Hq; their scales sx) and o in
    /// [0, P = blocks·16); max[r] = the row's largest approx. Exactly <see cref="ScreenLogitsVnniScalar"/>: the sums are
    /// integers and the finish is the same float operations.</summary>
    public static void ScreenLogitsVnni(
        ReadOnlySpan<sbyte> qv,      // [ScreenVnniBytes(V, H)]
        ReadOnlySpan<float> scale,   // [P]
        ReadOnlySpan<int> offset,    // [P]
        ReadOnlySpan<float> bias,    // [P]  (−∞ on padded rows)
        ReadOnlySpan<byte> u,        // [rows, 4·Hq]
        ReadOnlySpan<float> sx,      // [rows]
        Span<float> approx,          // [rows, P]
        Span<float> max,             // [rows]
        int rows, int blocks, int hidden)
    {
        int groups = VnniGroups(hidden), padded = blocks * ScreenBlock;
        if (qv.Length < blocks * ScreenBlock * 4 * groups || scale.Length < padded || offset.Length < padded || bias.Length < padded
            || u.Length < rows * 4 * groups || sx.Length < rows || approx.Length < rows * padded || max.Length < rows)
            throw new ArgumentException($"ScreenLogitsVnni: buffers too small for {rows} rows, {blocks} blocks, H {hidden}.");
        if (!ScreenVnniIsSupported(hidden)) throw new PlatformNotSupportedException("ScreenLogitsVnni needs AVX-VNNI and H ≤ 1024.");
        int r = 0;
        for (; r + VnniRows <= rows; r += VnniRows) Vnni4(qv, scale, offset, bias, u[(r * 4 * groups)..], sx[r..], approx[(r * padded)..], max[r..], VnniRows, blocks, groups);
        // Two or three rows left: one more pass of the four-row kernel (the missing rows repeat the last one and are not
        // stored), not two or three passes of the one-row kernel.
        if (rows - r >= 2) Vnni4(qv, scale, offset, bias, u[(r * 4 * groups)..], sx[r..], approx[(r * padded)..], max[r..], rows - r, blocks, groups);
        else if (rows - r == 1) max[r] = Vnni1(qv, scale, offset, bias, u[(r * 4 * groups)..], sx[r], approx[(r * padded)..], blocks, groups);
    }

    /// <summary>Two to four rows (<paramref name="n"/>): per block, 2 × 4 accumulators of 8 int32 lanes; each 64-byte load
    /// of weights meets four rows. With fewer than four, the last row stands in for the missing ones, which are not stored.</summary>
    private static void Vnni4(ReadOnlySpan<sbyte> qv, ReadOnlySpan<float> scale, ReadOnlySpan<int> offset, ReadOnlySpan<float> bias,
        ReadOnlySpan<byte> u, ReadOnlySpan<float> sx, Span<float> approx, Span<float> max, int n, int blocks, int groups)
    {
        ref sbyte qr = ref MemoryMarshal.GetReference(qv);
        int stride = 4 * groups, padded = blocks * ScreenBlock;
        ref byte u0 = ref MemoryMarshal.GetReference(u);
        ref byte u1 = ref Unsafe.Add(ref u0, stride);
        ref byte u2 = ref Unsafe.Add(ref u0, Math.Min(2, n - 1) * stride);
        ref byte u3 = ref Unsafe.Add(ref u0, (n - 1) * stride);
        ref float ar = ref MemoryMarshal.GetReference(approx);
        var m0 = Vector256.Create(float.NegativeInfinity);
        var m1 = m0;
        var m2 = m0;
        var m3 = m0;
        for (int blk = 0; blk < blocks; blk++)
        {
            ref sbyte p = ref Unsafe.Add(ref qr, blk * groups * 64);
            Vector256<int> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
            for (int g = 0; g < groups; g++)
            {
                var wLo = Vector256.LoadUnsafe(ref p, (nuint)(g * 64));
                var wHi = Vector256.LoadUnsafe(ref p, (nuint)(g * 64 + 32));
                var x0 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref u0, g * 4))).AsByte();
                var x1 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref u1, g * 4))).AsByte();
                var x2 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref u2, g * 4))).AsByte();
                var x3 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref u3, g * 4))).AsByte();
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, x0, wLo);
                b0 = AvxVnni.MultiplyWideningAndAdd(b0, x0, wHi);
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, x1, wLo);
                b1 = AvxVnni.MultiplyWideningAndAdd(b1, x1, wHi);
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, x2, wLo);
                b2 = AvxVnni.MultiplyWideningAndAdd(b2, x2, wHi);
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, x3, wLo);
                b3 = AvxVnni.MultiplyWideningAndAdd(b3, x3, wHi);
            }
            int o = blk * ScreenBlock;
            m0 = FinishVnni(a0, b0, scale, offset, bias, sx[0], ref Unsafe.Add(ref ar, o), o, m0);
            m1 = FinishVnni(a1, b1, scale, offset, bias, sx[1], ref Unsafe.Add(ref ar, padded + o), o, m1);
            if (n > 2) m2 = FinishVnni(a2, b2, scale, offset, bias, sx[2], ref Unsafe.Add(ref ar, 2 * padded + o), o, m2);
            if (n > 3) m3 = FinishVnni(a3, b3, scale, offset, bias, sx[3], ref Unsafe.Add(ref ar, 3 * padded + o), o, m3);
        }
        max[0] = HorizontalMax(m0);
        max[1] = HorizontalMax(m1);
        if (n > 2) max[2] = HorizontalMax(m2);
        if (n > 3) max[3] = HorizontalMax(m3);
    }

    /// <summary>One row: four accumulators per block (even and odd groups of the low and high 8 outputs) so the
    /// dot-product latency overlaps; integer sums, so the split does not change them.</summary>
    private static float Vnni1(ReadOnlySpan<sbyte> qv, ReadOnlySpan<float> scale, ReadOnlySpan<int> offset, ReadOnlySpan<float> bias,
        ReadOnlySpan<byte> u, float sx, Span<float> approx, int blocks, int groups)
    {
        ref sbyte qr = ref MemoryMarshal.GetReference(qv);
        ref byte ur = ref MemoryMarshal.GetReference(u);
        ref float ar = ref MemoryMarshal.GetReference(approx);
        var m = Vector256.Create(float.NegativeInfinity);
        for (int blk = 0; blk < blocks; blk++)
        {
            ref sbyte p = ref Unsafe.Add(ref qr, blk * groups * 64);
            Vector256<int> a0 = default, b0 = default, a1 = default, b1 = default;
            int g = 0;
            for (; g + 2 <= groups; g += 2)
            {
                var x0 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ur, g * 4))).AsByte();
                var x1 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ur, g * 4 + 4))).AsByte();
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.LoadUnsafe(ref p, (nuint)(g * 64)));
                b0 = AvxVnni.MultiplyWideningAndAdd(b0, x0, Vector256.LoadUnsafe(ref p, (nuint)(g * 64 + 32)));
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, x1, Vector256.LoadUnsafe(ref p, (nuint)(g * 64 + 64)));
                b1 = AvxVnni.MultiplyWideningAndAdd(b1, x1, Vector256.LoadUnsafe(ref p, (nuint)(g * 64 + 96)));
            }
            if (g < groups)
            {
                var x0 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ur, g * 4))).AsByte();
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.LoadUnsafe(ref p, (nuint)(g * 64)));
                b0 = AvxVnni.MultiplyWideningAndAdd(b0, x0, Vector256.LoadUnsafe(ref p, (nuint)(g * 64 + 32)));
            }
            int o = blk * ScreenBlock;
            m = FinishVnni(a0 + a1, b0 + b1, scale, offset, bias, sx, ref Unsafe.Add(ref ar, o), o, m);
        }
        return HorizontalMax(m);
    }

    /// <summary>approx for outputs [o, o+16) of one row from its two accumulators: fma(float(acc − c)·s_o, s_x, b_o).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FinishVnni(Vector256<int> lo, Vector256<int> hi, ReadOnlySpan<float> scale, ReadOnlySpan<int> offset,
        ReadOnlySpan<float> bias, float sx, ref float approx, int o, Vector256<float> max)
    {
        var s = Vector256.Create(sx);
        var vLo = Fma.MultiplyAdd(Vector256.ConvertToSingle(lo - Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(offset), (nuint)o))
            * Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(scale), (nuint)o), s, Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(bias), (nuint)o));
        var vHi = Fma.MultiplyAdd(Vector256.ConvertToSingle(hi - Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(offset), (nuint)(o + 8)))
            * Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(scale), (nuint)(o + 8)), s, Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(bias), (nuint)(o + 8)));
        vLo.StoreUnsafe(ref approx);
        vHi.StoreUnsafe(ref approx, 8);
        return Vector256.Max(max, Vector256.Max(vLo, vHi));
    }

    /// <summary>The scalar twin of <see cref="ScreenLogitsVnni"/> (tests): the same integers, the same float finish.</summary>
    internal static void ScreenLogitsVnniScalar(ReadOnlySpan<sbyte> qv, ReadOnlySpan<float> scale, ReadOnlySpan<int> offset, ReadOnlySpan<float> bias,
        ReadOnlySpan<byte> u, ReadOnlySpan<float> sx, Span<float> approx, Span<float> max, int rows, int blocks, int hidden)
    {
        int groups = VnniGroups(hidden), padded = blocks * ScreenBlock;
        for (int r = 0; r < rows; r++)
        {
            float m = float.NegativeInfinity;
            for (int o = 0; o < padded; o++)
            {
                int acc = 0;
                int at = o / ScreenBlock * groups * 64 + o % ScreenBlock * 4;
                for (int i = 0; i < 4 * groups; i++) acc += u[r * 4 * groups + i] * qv[at + i / 4 * 64 + i % 4];
                float v = MathF.FusedMultiplyAdd((float)(acc - offset[o]) * scale[o], sx[r], bias[o]);
                approx[r * padded + o] = v;
                m = MathF.Max(m, v);
            }
            max[r] = m;
        }
    }
}
