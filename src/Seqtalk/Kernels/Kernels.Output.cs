// Kernels.Output: the output projection and softmax cross-entropy fused over a block of rows held
// TRANSPOSED, so that the [N, V] logits never go to memory.
//
// Legend: rb rows in the block (real target tokens), ld ≥ rb the block's row stride, H hidden, V vocabulary.
// The block zT is [V, ld]: column r is logits row r (zT[o·ld + r] = z[r, o]). In this layout all three
// GEMMs read their big operand in place (W rows, zT rows) and pack only the small x block, and the
// softmax runs down the columns with one vector lane per row:
//   OutputBlockForward          zT[o, r]  = b[o] + Σ_i W[o, i]·x[r, i]
//   SoftmaxCrossEntropyColumns  loss[r]   = log Σ_o exp(z[o, r] − m_r) − (z[y_r, r] − m_r);  zT ← (p − q)·scale,
//                               q = onehot(y), or (1−ε)·onehot(y) + ε/V with label smoothing ε
//   OutputBlockBackwardInput    dx[r, i] += Σ_o dzT[o, r]·W[o, i]
//   OutputBlockBackwardWeight   dW[o, i] += Σ_r dzT[o, r]·x[r, i];   db[o] += Σ_r dzT[o, r]
// The caller walks the N rows block by block; each block stays in cache from its GEMM to its gradients.
// Math as in Kernels.CrossEntropy (row max first, sums and losses in double). Every element of a GEMM gets
// the same operations whatever the block's position (see Kernels.Gemm), so results depend only on the
// block boundaries, which the caller fixes independently of the thread count.
// Accumulation rule: dx, dW, db are ADDED to; zT is written.

using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>zT[o·ld + r] = bias[o] + Σ_i w[o, i]·x[r, i] for r in [0, rows), o in [0, vocab).</summary>
    public static void OutputBlockForward(
        ReadOnlySpan<float> x,      // [rows, H]
        ReadOnlySpan<float> w,      // [V, H]
        ReadOnlySpan<float> bias,   // [V] or empty
        Span<float> zT,             // [V, ld]
        int rows, int hidden, int vocab, int ld)
    {
        CheckBlock(x.Length, w.Length, zT.Length, rows, hidden, vocab, ld);
        if (!bias.IsEmpty && bias.Length < vocab) throw new ArgumentException($"bias has {bias.Length} floats, expected {vocab}.", nameof(bias));
        if (rows == 0 || vocab == 0) return;
        if (!GemmIsVectorized || hidden == 0)
        {
            OutputBlockForwardNaive(x, w, bias, zT, rows, hidden, vocab, ld);
            return;
        }
        // C = zT (rows o, columns r), A = W read in place, B(i, r) = x[r, i] (transposed layout, packed).
        // C starts at the bias, as MatMulForward's does (0 + bias, then one FMA per i in order).
        for (int o = 0; o < vocab; o++) zT.Slice(o * ld, rows).Fill(bias.IsEmpty ? 0f : bias[o]);
        Gemm(ref MemoryMarshal.GetReference(w), hidden, 1, 0, vocab, rows, hidden,
            x[..(rows * hidden)], hidden, bTransposed: true, ref MemoryMarshal.GetReference(zT), ld, default, loadC: true);
    }

    /// <summary>dx[r, i] += Σ_o dzT[o·ld + r]·w[o, i] for r in [0, rows).</summary>
    public static void OutputBlockBackwardInput(
        ReadOnlySpan<float> dzT,    // [V, ld]
        ReadOnlySpan<float> w,      // [V, H]
        Span<float> dx,             // [rows, H]
        int rows, int hidden, int vocab, int ld)
    {
        CheckBlock(dx.Length, w.Length, dzT.Length, rows, hidden, vocab, ld);
        if (rows == 0 || vocab == 0 || hidden == 0) return;
        if (!GemmIsVectorized)
        {
            OutputBlockBackwardInputNaive(dzT, w, dx, rows, hidden, vocab, ld);
            return;
        }
        if (OutputDxTransposedApplies(hidden, ld))
        {
            // Rows on the vector axis, W broadcast in place, no packing (Kernels.OutputGemm): the same bits as below.
            OutputBackwardInputTransposed(dzT, w, dx, rows, hidden, vocab, ld);
            return;
        }
        // C = dx, A(r, o) = dzT[o·ld + r] in place, B = W as is (packed).
        Gemm(ref MemoryMarshal.GetReference(dzT), 1, ld, 0, rows, hidden, vocab,
            w, hidden, bTransposed: false, ref MemoryMarshal.GetReference(dx), hidden, default, loadC: true);
    }

    /// <summary>dw[o, i] += Σ_r dzT[o·ld + r]·x[r, i]; dbias[o] += Σ_r dzT[o·ld + r], r in [0, rows).</summary>
    public static void OutputBlockBackwardWeight(
        ReadOnlySpan<float> dzT,    // [V, ld]
        ReadOnlySpan<float> x,      // [rows, H]
        Span<float> dw,             // [V, H]
        Span<float> dbias,          // [V] or empty
        int rows, int hidden, int vocab, int ld)
    {
        CheckBlock(x.Length, dw.Length, dzT.Length, rows, hidden, vocab, ld);
        if (!dbias.IsEmpty && dbias.Length < vocab) throw new ArgumentException($"dbias has {dbias.Length} floats, expected {vocab}.", nameof(dbias));
        if (rows == 0 || vocab == 0) return;
        if (!GemmIsVectorized)
        {
            OutputBlockBackwardWeightNaive(dzT, x, dw, dbias, rows, hidden, vocab, ld);
            return;
        }
        if (!dbias.IsEmpty)
        {
            for (int o = 0; o < vocab; o++) dbias[o] += TensorPrimitives.Sum(dzT.Slice(o * ld, rows));
        }
        if (hidden == 0) return;
        // C = dW, A(o, r) = dzT[o·ld + r] in place, B = x as is (packed).
        Gemm(ref MemoryMarshal.GetReference(dzT), ld, 1, 0, vocab, hidden, rows,
            x[..(rows * hidden)], hidden, bTransposed: false, ref MemoryMarshal.GetReference(dw), hidden, default, loadC: true);
    }

    /// <summary>Softmax cross-entropy down the columns c in [0, cols) of a transposed logits block.</summary>
    /// <remarks>Effectively, for each column (one logits row z): losses[c] = −log softmax(z)[targets[c]],
    /// predicted[c] = first index of max z; with <paramref name="backward"/> the column is overwritten with
    /// dLogits = (softmax(z) − onehot(targets[c]))·scale (the forward and backward of Kernels.CrossEntropy
    /// in one pass over the block). Without it the block is left holding exp(z − max).
    /// <paramref name="colMax"/> and <paramref name="colSum"/> are scratch of at least cols elements; without
    /// <paramref name="backward"/>, colSum[c] holds Σ_o exp(z − max) on return (what <see cref="OutputBlockBackward"/> takes).</remarks>
    public static void SoftmaxCrossEntropyColumns(
        Span<float> zT,                 // [V, ld]
        ReadOnlySpan<int> targets,      // [cols]
        Span<double> losses,            // [cols]
        Span<int> predicted,            // [cols]
        Span<float> colMax,             // [cols] scratch
        Span<double> colSum,            // [cols] scratch
        int vocab, int ld, int cols, float scale, bool backward) =>
        SoftmaxCrossEntropyColumns(zT, targets, losses, default, predicted, colMax, colSum, vocab, ld, cols, scale, backward, 0f);

    /// <summary>Softmax cross-entropy with label smoothing ε down the columns of a transposed logits block.</summary>
    /// <remarks>As the overload without ε for <paramref name="losses"/> (the true NLL, −log p_y) and
    /// <paramref name="predicted"/>. The target distribution is q = (1−ε)·onehot(y) + ε/V (PyTorch's
    /// <c>CrossEntropyLoss(label_smoothing=ε)</c>), so with <paramref name="backward"/> the column becomes
    /// dLogits = (p − q)·scale, and <paramref name="smoothedLosses"/> (optional; empty to skip) receives
    /// −Σ_o q_o·log p_o = (1−ε)·NLL + ε·(lse − Σ_o z_o / V), lse = log Σ_o exp z_o. With ε = 0 it is the
    /// overload without ε, operation for operation.</remarks>
    public static void SoftmaxCrossEntropyColumns(
        Span<float> zT,                 // [V, ld]
        ReadOnlySpan<int> targets,      // [cols]
        Span<double> losses,            // [cols]  true NLL
        Span<double> smoothedLosses,    // [cols] or empty
        Span<int> predicted,            // [cols]
        Span<float> colMax,             // [cols] scratch
        Span<double> colSum,            // [cols] scratch
        int vocab, int ld, int cols, float scale, bool backward, float smoothing) =>
        SoftmaxCrossEntropyColumns(zT, targets, losses, smoothedLosses, predicted, colMax, colSum, vocab, ld, cols, scale, backward, smoothing, maxGiven: false);

    /// <summary>As the overload without <paramref name="maxGiven"/>; with it, <paramref name="colMax"/> and
    /// <paramref name="predicted"/> already hold the column maxima and first arg-max (<see cref="OutputBlockForwardMax"/>)
    /// and pass 1 is skipped.</summary>
    internal static void SoftmaxCrossEntropyColumns(
        Span<float> zT, ReadOnlySpan<int> targets, Span<double> losses, Span<double> smoothedLosses, Span<int> predicted,
        Span<float> colMax, Span<double> colSum, int vocab, int ld, int cols, float scale, bool backward, float smoothing, bool maxGiven)
    {
        Debug.Assert(smoothing is >= 0f and < 1f && (smoothedLosses.IsEmpty || smoothedLosses.Length >= cols));
        Debug.Assert(cols <= ld && zT.Length >= (long)vocab * ld && targets.Length >= cols && losses.Length >= cols && predicted.Length >= cols);
        Debug.Assert(colMax.Length >= cols && colSum.Length >= cols && vocab > 0);
        if (cols == 0) return;
        Span<float> max = colMax[..cols];
        Span<double> sum = colSum[..cols];
        Span<int> arg = predicted[..cols];

        // Pass 1: column max and first arg-max (strictly greater replaces, so the first maximum wins).
        if (!maxGiven)
        {
            zT[..cols].CopyTo(max);
            arg.Clear();
            for (int o = 1; o < vocab; o++) MaxStep(zT.Slice(o * ld, cols), max, arg, o);
        }
        for (int c = 0; c < cols; c++) losses[c] = zT[targets[c] * ld + c];   // z_y, before exp overwrites it

        // With smoothing: Σ_o z per column in double, before exp overwrites z (smoothedLosses is the accumulator).
        bool smoothed = !smoothedLosses.IsEmpty;
        if (smoothed)
        {
            Span<double> zsum = smoothedLosses[..cols];
            zsum.Clear();
            for (int o = 0; o < vocab; o++) AddToDouble(zT.Slice(o * ld, cols), zsum);
        }

        // Pass 2: e = exp(z − m) in place, Σ e per column in double, in one sweep.
        sum.Clear();
        if (Vector512.IsHardwareAccelerated && cols == 64) ExpShiftedBlock64(zT, max, sum, vocab, ld);
        else
        {
            for (int o = 0; o < vocab; o++) ExpShiftedAddToDouble(zT.Slice(o * ld, cols), max, sum);
        }

        for (int c = 0; c < cols; c++) losses[c] = Math.Log(sum[c]) - (losses[c] - max[c]);
        if (smoothed)
        {
            // lse − mean z = log S + m − Σz/V; then (1−ε)·NLL + ε·that.
            for (int c = 0; c < cols; c++)
                smoothedLosses[c] = (1.0 - smoothing) * losses[c] + smoothing * (Math.Log(sum[c]) + max[c] - smoothedLosses[c] / vocab);
        }
        if (!backward) return;

        // Pass 3: p = e·(1/S), then dLogits = p·scale, and (p_y − 1)·scale at the target (Kernels.CrossEntropy's order).
        // With smoothing, u = ε/V: (p − u)·scale, and (p_y − (1−ε) − u)·scale at the target.
        for (int c = 0; c < cols; c++) max[c] = (float)(1.0 / sum[c]);   // colMax now holds 1/S
        for (int c = 0; c < cols; c++) sum[c] = zT[targets[c] * ld + c] * max[c];   // colSum now holds p_y
        if (smoothing == 0f)
        {
            for (int o = 0; o < vocab; o++) ScaleRow(zT.Slice(o * ld, cols), max, scale);
            for (int c = 0; c < cols; c++) zT[targets[c] * ld + c] = ((float)sum[c] - 1f) * scale;
            return;
        }
        float uniform = smoothing / vocab, onTarget = 1f - smoothing;
        for (int o = 0; o < vocab; o++) ScaleRowSmoothed(zT.Slice(o * ld, cols), max, uniform, scale);
        for (int c = 0; c < cols; c++) zT[targets[c] * ld + c] = ((float)sum[c] - onTarget - uniform) * scale;
    }

    // row[c] = (row[c]·inv[c] − uniform)·scale: p = e·(1/S), then (p − ε/V)·scale.
    private static void ScaleRowSmoothed(Span<float> row, ReadOnlySpan<float> inv, float uniform, float scale)
    {
        int c = 0;
        if (Vector.IsHardwareAccelerated && row.Length >= Vector<float>.Count)
        {
            var vs = new Vector<float>(scale);
            var vu = new Vector<float>(uniform);
            for (; c <= row.Length - Vector<float>.Count; c += Vector<float>.Count)
                ((new Vector<float>(row[c..]) * new Vector<float>(inv[c..]) - vu) * vs).CopyTo(row[c..]);
        }
        for (; c < row.Length; c++) row[c] = (row[c] * inv[c] - uniform) * scale;
    }

    // sum[c] += row[c] in double (widening).
    private static void AddToDouble(ReadOnlySpan<float> row, Span<double> sum)
    {
        int c = 0;
        if (Vector.IsHardwareAccelerated && row.Length >= Vector<float>.Count)
        {
            for (; c <= row.Length - Vector<float>.Count; c += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(row[c..]), out Vector<double> lo, out Vector<double> hi);
                (new Vector<double>(sum[c..]) + lo).CopyTo(sum[c..]);
                (new Vector<double>(sum[(c + Vector<double>.Count)..]) + hi).CopyTo(sum[(c + Vector<double>.Count)..]);
            }
        }
        for (; c < row.Length; c++) sum[c] += row[c];
    }

    // row[c] = (row[c]·inv[c])·scale: two roundings, as p = e·(1/S) then dLogits = p·scale.
    private static void ScaleRow(Span<float> row, ReadOnlySpan<float> inv, float scale)
    {
        int c = 0;
        if (Vector.IsHardwareAccelerated && row.Length >= Vector<float>.Count)
        {
            var vs = new Vector<float>(scale);
            for (; c <= row.Length - Vector<float>.Count; c += Vector<float>.Count)
                (new Vector<float>(row[c..]) * new Vector<float>(inv[c..]) * vs).CopyTo(row[c..]);
        }
        for (; c < row.Length; c++) row[c] = row[c] * inv[c] * scale;
    }

    /// <summary>predicted[c] = first index of the maximum of column c of zT, for c in [0, cols) (greedy decoding).</summary>
    /// <remarks>Effectively the arg-max of each logits row without a softmax; <paramref name="colMax"/> is scratch.</remarks>
    public static void ArgMaxColumns(
        ReadOnlySpan<float> zT,         // [V, ld]
        Span<float> colMax,             // [cols] scratch
        Span<int> predicted,            // [cols]
        int vocab, int ld, int cols)
    {
        Debug.Assert(cols <= ld && zT.Length >= (long)vocab * ld && colMax.Length >= cols && predicted.Length >= cols && vocab > 0);
        if (cols == 0) return;
        zT[..cols].CopyTo(colMax);
        predicted[..cols].Clear();
        for (int o = 1; o < vocab; o++) MaxStep(zT.Slice(o * ld, cols), colMax[..cols], predicted[..cols], o);
    }

    internal static void ArgMaxColumnsScalar(ReadOnlySpan<float> zT, Span<int> predicted, int vocab, int ld, int cols)
    {
        for (int c = 0; c < cols; c++)
        {
            int arg = 0;
            for (int o = 1; o < vocab; o++) if (zT[o * ld + c] > zT[arg * ld + c]) arg = o;
            predicted[c] = arg;
        }
    }

    // max = where(row > max, row, max); arg = where(row > max, o, arg); vectorised along the columns.
    private static void MaxStep(ReadOnlySpan<float> row, Span<float> max, Span<int> arg, int o)
    {
        int c = 0;
        if (Vector.IsHardwareAccelerated && row.Length >= Vector<float>.Count)
        {
            var vo = new Vector<int>(o);
            for (; c <= row.Length - Vector<float>.Count; c += Vector<float>.Count)
            {
                var v = new Vector<float>(row[c..]);
                var m = new Vector<float>(max[c..]);
                var gt = Vector.GreaterThan(v, m);
                Vector.ConditionalSelect(gt, v, m).CopyTo(max[c..]);
                Vector.ConditionalSelect(gt, vo, new Vector<int>(arg[c..])).CopyTo(arg[c..]);
            }
        }
        for (; c < row.Length; c++)
        {
            if (row[c] > max[c]) { max[c] = row[c]; arg[c] = o; }
        }
    }

    // row[c] = exp(row[c] − max[c]); sum[c] += row[c] in double, in one sweep (shift, exp, store and sum while the
    // row is in registers) with ExpNonPositive below; MathF.Exp for the tail. The runtime's Vector512.Exp(float)
    // computes in double (two widened halves), which made this pass a fifth of the output layer's time.
    private static void ExpShiftedAddToDouble(Span<float> row, ReadOnlySpan<float> max, Span<double> sum)
    {
        ref float r = ref MemoryMarshal.GetReference(row);
        ref float m = ref MemoryMarshal.GetReference(max);
        ref double s = ref MemoryMarshal.GetReference(sum);
        int c = 0, n = row.Length;
        if (Vector512.IsHardwareAccelerated)
        {
            // Four independent exps at a time: one exp is a long dependent chain, and the core overlaps several only
            // when they sit side by side (twice the rate of the loop below on the tutorial's 64-column block).
            for (; c <= n - 64; c += 64)
            {
                var e0 = ExpNonPositive(Vector512.LoadUnsafe(ref r, (nuint)c) - Vector512.LoadUnsafe(ref m, (nuint)c));
                var e1 = ExpNonPositive(Vector512.LoadUnsafe(ref r, (nuint)c + 16) - Vector512.LoadUnsafe(ref m, (nuint)c + 16));
                var e2 = ExpNonPositive(Vector512.LoadUnsafe(ref r, (nuint)c + 32) - Vector512.LoadUnsafe(ref m, (nuint)c + 32));
                var e3 = ExpNonPositive(Vector512.LoadUnsafe(ref r, (nuint)c + 48) - Vector512.LoadUnsafe(ref m, (nuint)c + 48));
                e0.StoreUnsafe(ref r, (nuint)c); e1.StoreUnsafe(ref r, (nuint)c + 16); e2.StoreUnsafe(ref r, (nuint)c + 32); e3.StoreUnsafe(ref r, (nuint)c + 48);
                AddWidened(ref Unsafe.Add(ref s, c), e0);
                AddWidened(ref Unsafe.Add(ref s, c + 16), e1);
                AddWidened(ref Unsafe.Add(ref s, c + 32), e2);
                AddWidened(ref Unsafe.Add(ref s, c + 48), e3);
            }
            for (; c <= n - 16; c += 16)
            {
                var e = ExpNonPositive(Vector512.LoadUnsafe(ref r, (nuint)c) - Vector512.LoadUnsafe(ref m, (nuint)c));
                e.StoreUnsafe(ref r, (nuint)c);
                var (lo, hi) = Vector512.Widen(e);
                (Vector512.LoadUnsafe(ref s, (nuint)c) + lo).StoreUnsafe(ref s, (nuint)c);
                (Vector512.LoadUnsafe(ref s, (nuint)(c + 8)) + hi).StoreUnsafe(ref s, (nuint)(c + 8));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; c <= n - 8; c += 8)
            {
                var e = ExpNonPositive(Vector256.LoadUnsafe(ref r, (nuint)c) - Vector256.LoadUnsafe(ref m, (nuint)c));
                e.StoreUnsafe(ref r, (nuint)c);
                var (lo, hi) = Vector256.Widen(e);
                (Vector256.LoadUnsafe(ref s, (nuint)c) + lo).StoreUnsafe(ref s, (nuint)c);
                (Vector256.LoadUnsafe(ref s, (nuint)(c + 4)) + hi).StoreUnsafe(ref s, (nuint)(c + 4));
            }
        }
        for (; c < n; c++)
        {
            float e = MathF.Exp(row[c] - max[c]);
            row[c] = e;
            sum[c] += e;
        }
    }

    // ExpShiftedAddToDouble over rows [0, vocab) of a 64-column block in one call: the 64 column sums stay in eight
    // double registers and the exp's constants are loaded once, not once per row; the same operations in the same order.
    private static void ExpShiftedBlock64(Span<float> zT, ReadOnlySpan<float> max, Span<double> sum, int vocab, int ld)
    {
        Debug.Assert(zT.Length >= (long)(vocab - 1) * ld + 64 && max.Length >= 64 && sum.Length >= 64);
        ref float row = ref MemoryMarshal.GetReference(zT);
        ref float m = ref MemoryMarshal.GetReference(max);
        ref double s = ref MemoryMarshal.GetReference(sum);
        Vector512<float> m0 = Vector512.LoadUnsafe(ref m), m1 = Vector512.LoadUnsafe(ref m, 16), m2 = Vector512.LoadUnsafe(ref m, 32), m3 = Vector512.LoadUnsafe(ref m, 48);
        Vector512<double> s0 = Vector512.LoadUnsafe(ref s), s1 = Vector512.LoadUnsafe(ref s, 8), s2 = Vector512.LoadUnsafe(ref s, 16), s3 = Vector512.LoadUnsafe(ref s, 24);
        Vector512<double> s4 = Vector512.LoadUnsafe(ref s, 32), s5 = Vector512.LoadUnsafe(ref s, 40), s6 = Vector512.LoadUnsafe(ref s, 48), s7 = Vector512.LoadUnsafe(ref s, 56);
        for (int o = 0; o < vocab; o++)
        {
            var e0 = ExpNonPositive(Vector512.LoadUnsafe(ref row) - m0);
            var e1 = ExpNonPositive(Vector512.LoadUnsafe(ref row, 16) - m1);
            var e2 = ExpNonPositive(Vector512.LoadUnsafe(ref row, 32) - m2);
            var e3 = ExpNonPositive(Vector512.LoadUnsafe(ref row, 48) - m3);
            e0.StoreUnsafe(ref row); e1.StoreUnsafe(ref row, 16); e2.StoreUnsafe(ref row, 32); e3.StoreUnsafe(ref row, 48);
            var (lo, hi) = Vector512.Widen(e0); s0 += lo; s1 += hi;
            (lo, hi) = Vector512.Widen(e1); s2 += lo; s3 += hi;
            (lo, hi) = Vector512.Widen(e2); s4 += lo; s5 += hi;
            (lo, hi) = Vector512.Widen(e3); s6 += lo; s7 += hi;
            row = ref Unsafe.Add(ref row, ld);
        }
        s0.StoreUnsafe(ref s); s1.StoreUnsafe(ref s, 8); s2.StoreUnsafe(ref s, 16); s3.StoreUnsafe(ref s, 24);
        s4.StoreUnsafe(ref s, 32); s5.StoreUnsafe(ref s, 40); s6.StoreUnsafe(ref s, 48); s7.StoreUnsafe(ref s, 56);
    }

    // s[0..16) += e in double.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddWidened(ref double s, Vector512<float> e)
    {
        var (lo, hi) = Vector512.Widen(e);
        (Vector512.LoadUnsafe(ref s) + lo).StoreUnsafe(ref s);
        (Vector512.LoadUnsafe(ref s, 8) + hi).StoreUnsafe(ref s, 8);
    }

    // exp(x) for the softmax's x = z − max ≤ 0, in float: the Cephes expf scheme (Stephen L. Moshier, Cephes Math
    // Library, BSD licence as redistributed by scipy/netlib): n = round(x·log2 e); r = x − n·ln 2 with ln 2 in two parts
    // (0.693359375 − 2.12194440e-4); e^r = 1 + r + r²·P(r), P of degree 5; times 2^n built in the exponent bits.
    // Relative error below 2e-7 on [−87.3, 0]; x below −87.3 (where e^x leaves the normal floats) gives 0. x must be ≤ 0.
    // n and 2^n come from one FMA: t = x·log2 e + (1.5·2^23 + 127) rounds x·log2 e to the nearest integer n (ties to even)
    // in t's low mantissa bits, as n + 127; t − magic is n, and the int bits of t shifted left by 23 are 2^n (the bits
    // above n + 127 leave the word), instead of a round, a saturating float-to-int conversion and an add.
    internal const float ExpLowest = -87.33654f;
    private const float ExpMagic = 12582912f + 127f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpNonPositive(Vector512<float> x)
    {
        Vector512<float> q = ExpReduced(x, out Vector512<float> pow2n) + Vector512<float>.One;
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpLowest)), Vector512<float>.Zero, q * pow2n);
    }

    /// <summary>e^x − 1 for x ≤ 0 with ExpNonPositive's reduction: q = e^r − 1 = r + r²·P(r) before the + 1, then
    /// 2^n·q + (2^n − 1) (exact for n = 0, so accurate near 0, where e^x − 1 would cancel); −1 below ExpLowest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpM1NonPositive(Vector512<float> x)
    {
        Vector512<float> q = ExpReduced(x, out Vector512<float> pow2n);
        return Vector512.FusedMultiplyAdd(pow2n, q, pow2n - Vector512<float>.One);
    }

    // The shared part of ExpNonPositive and ExpM1NonPositive: 2^n and q = e^r − 1 = r + r²·P(r) for x clamped at ExpLowest.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ExpReduced(Vector512<float> x, out Vector512<float> pow2n)
    {
        Vector512<float> xc = Vector512.Max(x, Vector512.Create(ExpLowest));
        Vector512<float> t = Vector512.FusedMultiplyAdd(xc, Vector512.Create(1.44269504088896341f), Vector512.Create(ExpMagic));
        Vector512<float> n = t - Vector512.Create(ExpMagic);
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(1.9875691500e-4f), r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        pow2n = (t.AsInt32() << 23).AsSingle();
        return Vector512.FusedMultiplyAdd(p, r * r, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> ExpNonPositive(Vector256<float> x)
    {
        Vector256<float> xc = Vector256.Max(x, Vector256.Create(ExpLowest));
        Vector256<float> t = Vector256.FusedMultiplyAdd(xc, Vector256.Create(1.44269504088896341f), Vector256.Create(ExpMagic));
        Vector256<float> n = t - Vector256.Create(ExpMagic);
        Vector256<float> r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693359375f), xc);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(2.12194440e-4f), r);
        Vector256<float> p = Vector256.FusedMultiplyAdd(Vector256.Create(1.9875691500e-4f), r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        Vector256<float> pow2n = (t.AsInt32() << 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpLowest)), Vector256<float>.Zero, p * pow2n);
    }

    private static void CheckBlock(int rowsByHidden, int vocabByHidden, int vocabByLd, int rows, int hidden, int vocab, int ld)
    {
        if (rows < 0 || hidden < 0 || vocab < 0 || ld < rows) throw new ArgumentOutOfRangeException(nameof(rows), $"rows {rows}, hidden {hidden}, vocab {vocab}, ld {ld}: need non-negative sizes and ld ≥ rows.");
        if (rowsByHidden < (long)rows * hidden) throw new ArgumentException($"the [rows, H] matrix has {rowsByHidden} floats, expected {(long)rows * hidden}.");
        if (vocabByHidden < (long)vocab * hidden) throw new ArgumentException($"the [V, H] matrix has {vocabByHidden} floats, expected {(long)vocab * hidden}.");
        if (vocabByLd < (long)vocab * ld) throw new ArgumentException($"the [V, ld] block has {vocabByLd} floats, expected {(long)vocab * ld}.");
    }

    // ---- Scalar twins ----

    internal static void OutputBlockForwardNaive(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> zT,
        int rows, int hidden, int vocab, int ld)
    {
        for (int o = 0; o < vocab; o++)
        {
            for (int r = 0; r < rows; r++)
            {
                float s = bias.IsEmpty ? 0f : bias[o];
                for (int i = 0; i < hidden; i++) s += w[o * hidden + i] * x[r * hidden + i];
                zT[o * ld + r] = s;
            }
        }
    }

    internal static void OutputBlockBackwardInputNaive(ReadOnlySpan<float> dzT, ReadOnlySpan<float> w, Span<float> dx,
        int rows, int hidden, int vocab, int ld)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < hidden; i++)
            {
                float s = dx[r * hidden + i];
                for (int o = 0; o < vocab; o++) s += dzT[o * ld + r] * w[o * hidden + i];
                dx[r * hidden + i] = s;
            }
        }
    }

    internal static void OutputBlockBackwardWeightNaive(ReadOnlySpan<float> dzT, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias,
        int rows, int hidden, int vocab, int ld)
    {
        for (int o = 0; o < vocab; o++)
        {
            float db = 0f;
            for (int r = 0; r < rows; r++) db += dzT[o * ld + r];
            if (!dbias.IsEmpty) dbias[o] += db;
            for (int i = 0; i < hidden; i++)
            {
                float s = dw[o * hidden + i];
                for (int r = 0; r < rows; r++) s += dzT[o * ld + r] * x[r * hidden + i];
                dw[o * hidden + i] = s;
            }
        }
    }

    internal static void SoftmaxCrossEntropyColumnsScalar(Span<float> zT, ReadOnlySpan<int> targets, Span<double> losses, Span<int> predicted,
        int vocab, int ld, int cols, float scale, bool backward) =>
        SoftmaxCrossEntropyColumnsScalar(zT, targets, losses, default, predicted, vocab, ld, cols, scale, backward, 0f);

    internal static void SoftmaxCrossEntropyColumnsScalar(Span<float> zT, ReadOnlySpan<int> targets, Span<double> losses, Span<double> smoothedLosses,
        Span<int> predicted, int vocab, int ld, int cols, float scale, bool backward, float smoothing)
    {
        float uniform = smoothing / vocab, onTarget = 1f - smoothing;
        for (int c = 0; c < cols; c++)
        {
            float max = float.NegativeInfinity;
            int arg = 0;
            double zsum = 0;
            for (int o = 0; o < vocab; o++) { if (zT[o * ld + c] > max) { max = zT[o * ld + c]; arg = o; } zsum += zT[o * ld + c]; }
            float zy = zT[targets[c] * ld + c];
            double sum = 0;
            for (int o = 0; o < vocab; o++) { float e = MathF.Exp(zT[o * ld + c] - max); zT[o * ld + c] = e; sum += e; }
            losses[c] = Math.Log(sum) - ((double)zy - max);
            if (!smoothedLosses.IsEmpty) smoothedLosses[c] = (1.0 - smoothing) * losses[c] + smoothing * (Math.Log(sum) + max - zsum / vocab);
            predicted[c] = arg;
            if (!backward) continue;
            float inv = (float)(1.0 / sum);
            for (int o = 0; o < vocab; o++)
            {
                float p = zT[o * ld + c] * inv;
                zT[o * ld + c] = smoothing == 0f
                    ? (o == targets[c] ? p - 1f : p) * scale
                    : (o == targets[c] ? p - onTarget - uniform : p - uniform) * scale;
            }
        }
    }
}
