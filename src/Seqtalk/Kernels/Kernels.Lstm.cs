// Kernels.Lstm: the pointwise part of one LSTM step (PyTorch torch.nn.LSTM, gate order i, f, g, o).
//
// Legend: B batch rows, H hidden width; every gate row is [i | f | g | o], each H wide.
// Forward:  i, f, o = σ(pre); g = tanh(pre); c = f⊙cPrev + i⊙g; h = o⊙tanh(c).
// The matrix products (x·W_ihᵀ for all steps at once, h·W_hhᵀ per step) are done by the caller with
// MatMul; this kernel sees only the summed pre-activations.
// Accumulation rule: dCPrev is ADDED to (it also receives nothing else, but the rule is uniform);
// dPreGates is WRITTEN, because it has exactly one producer (see docs/conventions.md).
// Reference: https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html; derivation in docs/kernels.md.

using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>LSTM pointwise step for rows [rowStart, rowEnd).</summary>
    /// <remarks>Effectively: i,f,o = σ(pre), g = tanh(pre); c = f⊙cPrev + i⊙g; h = o⊙tanh(c).
    /// <paramref name="gates"/> may be the same memory as <paramref name="preGates"/>, and
    /// <paramref name="c"/> the same memory as <paramref name="cPrev"/> (in-place update).</remarks>
    public static void LstmCellForward(
        ReadOnlySpan<float> preGates,   // [B, 4H]  x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh
        ReadOnlySpan<float> cPrev,      // [B, H]
        Span<float> gates,              // [B, 4H]  post-activation, cached for backward
        Span<float> c,                  // [B, H]   cached for backward
        Span<float> h,                  // [B, H]
        int hidden, int rowStart, int rowEnd)
        => LstmCellForward(preGates, cPrev, gates, c, h, hidden, rowStart, rowEnd, 0, hidden);

    /// <summary>Hidden units [unitStart, unitEnd) of <see cref="LstmCellForward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, int, int, int)"/>
    /// (their four gate columns, their c and h), for rows [rowStart, rowEnd).</summary>
    /// <remarks>Threads split a step by units; a unit's values may depend on the span lengths the activations see
    /// (vector width, tails), so callers keep the unit blocks fixed by the shape, whatever the thread count.</remarks>
    public static void LstmCellForward(
        ReadOnlySpan<float> preGates,   // [B, 4H]
        ReadOnlySpan<float> cPrev,      // [B, H]
        Span<float> gates,              // [B, 4H]
        Span<float> c,                  // [B, H]
        Span<float> h,                  // [B, H]
        int hidden, int rowStart, int rowEnd, int unitStart, int unitEnd)
    {
        int g4 = 4 * hidden, u = unitEnd - unitStart;
        Debug.Assert(preGates.Length >= rowEnd * g4 && gates.Length >= rowEnd * g4);
        Debug.Assert(cPrev.Length >= rowEnd * hidden && c.Length >= rowEnd * hidden && h.Length >= rowEnd * hidden);
        Debug.Assert(0 <= unitStart && unitStart <= unitEnd && unitEnd <= hidden);
        if (u == 0) return;
        if (Vector512.IsHardwareAccelerated)
        {
            LstmCellForward512(preGates, cPrev, gates, c, h, hidden, rowStart, rowEnd, unitStart, unitEnd);
            return;
        }
        for (int r = rowStart; r < rowEnd; r++)
        {
            int b = r * g4 + unitStart, s = r * hidden + unitStart;
            ReadOnlySpan<float> preI = preGates.Slice(b, u), preF = preGates.Slice(b + hidden, u);
            ReadOnlySpan<float> preG = preGates.Slice(b + 2 * hidden, u), preO = preGates.Slice(b + 3 * hidden, u);
            Span<float> i = gates.Slice(b, u), f = gates.Slice(b + hidden, u), g = gates.Slice(b + 2 * hidden, u), o = gates.Slice(b + 3 * hidden, u);
            TensorPrimitives.Sigmoid(preI, i);
            TensorPrimitives.Sigmoid(preF, f);
            TensorPrimitives.Tanh(preG, g);
            TensorPrimitives.Sigmoid(preO, o);
            Span<float> cr = c.Slice(s, u), hr = h.Slice(s, u);
            TensorPrimitives.Multiply(f, cPrev.Slice(s, u), cr);   // c = f⊙cPrev
            TensorPrimitives.MultiplyAdd(i, g, cr, cr);            // c += i⊙g
            TensorPrimitives.Tanh(cr, hr);                         // h = tanh(c)
            TensorPrimitives.Multiply(hr, o, hr);                  // h = o⊙tanh(c)
        }
    }

    /// <summary>Backward of <see cref="LstmCellForward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, int, int, int)"/> for rows [rowStart, rowEnd).</summary>
    /// <remarks>Forward was c = f⊙cPrev + i⊙g, h = o⊙tanh(c). With dc = dC + dH⊙o⊙(1 − tanh²c):
    /// dPre_i = dc⊙g⊙i(1−i); dPre_f = dc⊙cPrev⊙f(1−f); dPre_g = dc⊙i⊙(1−g²); dPre_o = dH⊙tanh(c)⊙o(1−o);
    /// dCPrev += dc⊙f. dPreGates is written, not accumulated; it must not alias an input.</remarks>
    public static void LstmCellBackward(
        ReadOnlySpan<float> gates,      // [B, 4H]  post-activation i, f, g, o from forward
        ReadOnlySpan<float> cPrev,      // [B, H]
        ReadOnlySpan<float> c,          // [B, H]
        ReadOnlySpan<float> dH,         // [B, H]   total gradient reaching h (from above and from step t+1)
        ReadOnlySpan<float> dC,         // [B, H]   gradient reaching c from step t+1
        Span<float> dPreGates,          // [B, 4H]  written
        Span<float> dCPrev,             // [B, H]   accumulated (+=)
        int hidden, int rowStart, int rowEnd)
        => LstmCellBackward(gates, cPrev, c, dH, dC, dPreGates, dCPrev, hidden, rowStart, rowEnd, 0, hidden);

    /// <summary>Hidden units [unitStart, unitEnd) of <see cref="LstmCellBackward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, int, int)"/>
    /// (their four dPre columns and their dCPrev), for rows [rowStart, rowEnd); callers keep the unit blocks fixed by the shape.</summary>
    public static void LstmCellBackward(
        ReadOnlySpan<float> gates,      // [B, 4H]
        ReadOnlySpan<float> cPrev,      // [B, H]
        ReadOnlySpan<float> c,          // [B, H]
        ReadOnlySpan<float> dH,         // [B, H]
        ReadOnlySpan<float> dC,         // [B, H]
        Span<float> dPreGates,          // [B, 4H]  written
        Span<float> dCPrev,             // [B, H]   accumulated (+=)
        int hidden, int rowStart, int rowEnd, int unitStart, int unitEnd)
    {
        int g4 = 4 * hidden, u = unitEnd - unitStart;
        Debug.Assert(gates.Length >= rowEnd * g4 && dPreGates.Length >= rowEnd * g4);
        Debug.Assert(0 <= unitStart && unitStart <= unitEnd && unitEnd <= hidden);
        for (int r = rowStart; r < rowEnd; r++)
        {
            int b = r * g4 + unitStart, s = r * hidden + unitStart;
            ReadOnlySpan<float> i = gates.Slice(b, u), f = gates.Slice(b + hidden, u), g = gates.Slice(b + 2 * hidden, u), o = gates.Slice(b + 3 * hidden, u);
            ReadOnlySpan<float> cp = cPrev.Slice(s, u), cr = c.Slice(s, u);
            ReadOnlySpan<float> dh = dH.Slice(s, u), dc = dC.Slice(s, u);
            Span<float> di = dPreGates.Slice(b, u), df = dPreGates.Slice(b + hidden, u), dg = dPreGates.Slice(b + 2 * hidden, u), dout = dPreGates.Slice(b + 3 * hidden, u);
            Span<float> dcp = dCPrev.Slice(s, u);
            TanhCell(cr, dout);   // tanh(c) parked in the o slot, read before it is overwritten (the forward's tanh)
            int j = 0;
            if (Vector.IsHardwareAccelerated)
            {
                int n = Vector<float>.Count;
                var one = Vector<float>.One;
                for (; j <= u - n; j += n)
                {
                    var vi = new Vector<float>(i[j..]); var vf = new Vector<float>(f[j..]);
                    var vg = new Vector<float>(g[j..]); var vo = new Vector<float>(o[j..]);
                    var tc = new Vector<float>(dout[j..]);
                    var vdh = new Vector<float>(dh[j..]);
                    var dct = new Vector<float>(dc[j..]) + vdh * vo * (one - tc * tc);
                    (dct * vg * vi * (one - vi)).CopyTo(di[j..]);
                    (dct * new Vector<float>(cp[j..]) * vf * (one - vf)).CopyTo(df[j..]);
                    (dct * vi * (one - vg * vg)).CopyTo(dg[j..]);
                    (vdh * tc * vo * (one - vo)).CopyTo(dout[j..]);
                    (new Vector<float>(dcp[j..]) + dct * vf).CopyTo(dcp[j..]);
                }
            }
            for (; j < u; j++)
            {
                float tc = dout[j];
                float dct = dc[j] + dh[j] * o[j] * (1f - tc * tc);
                di[j] = dct * g[j] * i[j] * (1f - i[j]);
                df[j] = dct * cp[j] * f[j] * (1f - f[j]);
                dg[j] = dct * i[j] * (1f - g[j] * g[j]);
                dout[j] = dh[j] * tc * o[j] * (1f - o[j]);
                dcp[j] += dct * f[j];
            }
        }
    }

    // The forward on Vector512, 16 units at a time with every activation and product in registers (one pass instead of
    // eight TensorPrimitives calls per row, whose float Sigmoid and Tanh are several times slower than the step's GEMM):
    // σ and tanh from the softmax's float exp (SigmoidFast, TanhFast below). A row's last u mod 16 units run the same
    // vector code on a zero-padded copy, so a unit's value does not depend on where it falls, and in-place calls stay
    // correct (each vector reads its inputs before it writes).
    [SkipLocalsInit]
    private static void LstmCellForward512(ReadOnlySpan<float> preGates, ReadOnlySpan<float> cPrev, Span<float> gates, Span<float> c, Span<float> h,
        int hidden, int rowStart, int rowEnd, int unitStart, int unitEnd)
    {
        int g4 = 4 * hidden, u = unitEnd - unitStart;
        Span<float> pad = stackalloc float[7 * 16];   // 4 gates, cPrev→c, h, (spare) × 16
        ref float pre = ref MemoryMarshal.GetReference(preGates);
        ref float cp = ref MemoryMarshal.GetReference(cPrev);
        ref float gt = ref MemoryMarshal.GetReference(gates);
        ref float cc = ref MemoryMarshal.GetReference(c);
        ref float hh = ref MemoryMarshal.GetReference(h);
        ref float pd = ref MemoryMarshal.GetReference(pad);
        for (int r = rowStart; r < rowEnd; r++)
        {
            nint b = (nint)r * g4 + unitStart, s = (nint)r * hidden + unitStart;
            int j = 0;
            for (; j <= u - 16; j += 16)
                Cell16(ref Unsafe.Add(ref pre, b + j), hidden, ref Unsafe.Add(ref cp, s + j), ref Unsafe.Add(ref gt, b + j), ref Unsafe.Add(ref cc, s + j), ref Unsafe.Add(ref hh, s + j));
            int rest = u - j;
            if (rest == 0) continue;
            pad.Clear();
            for (int q = 0; q < 4; q++) preGates.Slice((int)b + q * hidden + j, rest).CopyTo(pad.Slice(q * 16, rest));
            cPrev.Slice((int)s + j, rest).CopyTo(pad.Slice(64, rest));
            Cell16(ref pd, 16, ref Unsafe.Add(ref pd, 64), ref pd, ref Unsafe.Add(ref pd, 64), ref Unsafe.Add(ref pd, 80));
            for (int q = 0; q < 4; q++) pad.Slice(q * 16, rest).CopyTo(gates.Slice((int)b + q * hidden + j, rest));
            pad.Slice(64, rest).CopyTo(c.Slice((int)s + j, rest));
            pad.Slice(80, rest).CopyTo(h.Slice((int)s + j, rest));
        }
    }

    // Units [0, 16) of one row: i, f, o = σ(pre), g = tanh(pre) (gate q at pre[q·hidden]); c = f⊙cPrev + i⊙g; h = o⊙tanh(c).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Cell16(ref float pre, nint hidden, ref float cPrev, ref float gates, ref float c, ref float h)
    {
        Vector512<float> i = SigmoidFast(Vector512.LoadUnsafe(ref pre));
        Vector512<float> f = SigmoidFast(Vector512.LoadUnsafe(ref Unsafe.Add(ref pre, hidden)));
        Vector512<float> g = TanhFast(Vector512.LoadUnsafe(ref Unsafe.Add(ref pre, 2 * hidden)));
        Vector512<float> o = SigmoidFast(Vector512.LoadUnsafe(ref Unsafe.Add(ref pre, 3 * hidden)));
        Vector512<float> vc = f * Vector512.LoadUnsafe(ref cPrev) + i * g;
        Vector512<float> vh = TanhFast(vc) * o;
        i.StoreUnsafe(ref gates);
        f.StoreUnsafe(ref Unsafe.Add(ref gates, hidden));
        g.StoreUnsafe(ref Unsafe.Add(ref gates, 2 * hidden));
        o.StoreUnsafe(ref Unsafe.Add(ref gates, 3 * hidden));
        vc.StoreUnsafe(ref c);
        vh.StoreUnsafe(ref h);
    }

    // y = tanh(x): TanhFast on Vector512 (the forward's tanh, so backward sees the same tanh(c)), else TensorPrimitives.
    [SkipLocalsInit]
    private static void TanhCell(ReadOnlySpan<float> x, Span<float> y)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            TensorPrimitives.Tanh(x, y);
            return;
        }
        int j = 0, n = x.Length;
        for (; j <= n - 16; j += 16) TanhFast(Vector512.Create(x.Slice(j, 16))).CopyTo(y.Slice(j, 16));
        if (j == n) return;
        Span<float> pad = stackalloc float[16];
        pad.Clear();
        x[j..].CopyTo(pad);
        TanhFast(Vector512.Create(pad)).CopyTo(pad);
        pad[..(n - j)].CopyTo(y[j..]);
    }

    /// <summary>σ(x) = 1 / (1 + e^−x) from e = exp(−|x|) ≤ 1: 1/(1 + e) for x ≥ 0, e/(1 + e) below (no overflow, no NaN
    /// for large |x|).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> SigmoidFast(Vector512<float> x)
    {
        Vector512<float> e = ExpNonPositive(-Vector512.Abs(x));
        Vector512<float> r = Vector512<float>.One / (Vector512<float>.One + e);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), r, e * r);
    }

    /// <summary>tanh(x) = −m / (2 + m)·sign(x), m = e^−2|x| − 1 ∈ (−1, 0] from <see cref="ExpM1NonPositive"/>, accurate
    /// near 0 too (no 1 − e cancellation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> TanhFast(Vector512<float> x)
    {
        Vector512<float> m = ExpM1NonPositive(Vector512.Create(-2f) * Vector512.Abs(x));
        Vector512<float> t = -m / (Vector512.Create(2f) + m);
        return (t.AsUInt32() | (x.AsUInt32() & Vector512.Create(0x80000000u))).AsSingle();
    }

    // ---- Scalar twins ----

    internal static void LstmCellForwardScalar(ReadOnlySpan<float> preGates, ReadOnlySpan<float> cPrev,
        Span<float> gates, Span<float> c, Span<float> h, int hidden, int rowStart, int rowEnd)
    {
        int g4 = 4 * hidden;
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int j = 0; j < hidden; j++)
            {
                int b = r * g4 + j;
                float i = SigmoidScalar(preGates[b]);
                float f = SigmoidScalar(preGates[b + hidden]);
                float g = MathF.Tanh(preGates[b + 2 * hidden]);
                float o = SigmoidScalar(preGates[b + 3 * hidden]);
                float cv = f * cPrev[r * hidden + j] + i * g;
                gates[b] = i; gates[b + hidden] = f; gates[b + 2 * hidden] = g; gates[b + 3 * hidden] = o;
                c[r * hidden + j] = cv;
                h[r * hidden + j] = o * MathF.Tanh(cv);
            }
        }
    }

    internal static void LstmCellBackwardScalar(ReadOnlySpan<float> gates, ReadOnlySpan<float> cPrev, ReadOnlySpan<float> c,
        ReadOnlySpan<float> dH, ReadOnlySpan<float> dC, Span<float> dPreGates, Span<float> dCPrev, int hidden, int rowStart, int rowEnd)
    {
        int g4 = 4 * hidden;
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int j = 0; j < hidden; j++)
            {
                int b = r * g4 + j, s = r * hidden + j;
                float i = gates[b], f = gates[b + hidden], g = gates[b + 2 * hidden], o = gates[b + 3 * hidden];
                float tc = MathF.Tanh(c[s]);
                float dct = dC[s] + dH[s] * o * (1f - tc * tc);
                dPreGates[b] = dct * g * i * (1f - i);
                dPreGates[b + hidden] = dct * cPrev[s] * f * (1f - f);
                dPreGates[b + 2 * hidden] = dct * i * (1f - g * g);
                dPreGates[b + 3 * hidden] = dH[s] * tc * o * (1f - o);
                dCPrev[s] += dct * f;
            }
        }
    }

    private static float SigmoidScalar(float x) => 1f / (1f + MathF.Exp(-x));
}
