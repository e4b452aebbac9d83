// Kernels.ArgMax: the output projection of a block of rows fused with the greedy arg-max, so the [V, rows] logits
// never go to memory (batched greedy decoding).
//
// Legend: rows ≤ 64 in the block, H hidden, V vocabulary (or a slice of it), P = 32 rows per panel.
// Effectively, for each row r: predicted[r] = first o maximising z[o, r] = bias[o] + Σ_i w[o, i]·x[r, i], with
// z[banned, r] = −∞; colMax[r] = that maximum. The same floats and the same comparisons as OutputBlockForward
// followed by ArgMaxColumns: each z starts at the bias and takes one FMA per i in increasing i (the GEMM's
// per-element operations), and the scan starts from o = 0 and replaces only on strictly greater, in increasing o.
// Vector512 scheme: x is packed per panel to [H][32] (zero rows past `rows`); for each tile of 6 rows of W and
// each panel, 12 accumulators (6 o × 2 vectors of 16 rows) take H rank-1 updates, then the tile's 6 logits per
// row are compared into the panel's running maximum and arg-max (kept in colMax / a scratch beside it).
// Without Vector512 the scalar twin runs (the same floats when the GEMM is vectorized; callers without Vector512
// keep OutputBlockForward + ArgMaxColumns, which is faster there).

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    private const int ArgMaxPanel = 32, ArgMaxTile = 6;

    /// <summary>True when <see cref="OutputBlockArgMax"/> runs its Vector512 kernel (otherwise its scalar twin).</summary>
    internal static bool OutputBlockArgMaxIsVectorized => GemmUses512;

    /// <summary>Floats of the <c>packed</c> scratch <see cref="OutputBlockArgMax"/> needs for <paramref name="hidden"/>.</summary>
    internal static int OutputBlockArgMaxScratch(int hidden) => 2 * hidden * ArgMaxPanel;

    /// <summary>predicted[r] = the first arg-max over o of bias[o] + Σ_i w[o, i]·x[r, i] (−∞ at <paramref name="banned"/>),
    /// colMax[r] its value, for r in [0, rows); the tokens and floats OutputBlockForward + ArgMaxColumns give.</summary>
    public static void OutputBlockArgMax(
        ReadOnlySpan<float> x,      // [rows, H]
        ReadOnlySpan<float> w,      // [V, H]
        ReadOnlySpan<float> bias,   // [V] or empty
        Span<float> packed,         // [OutputBlockArgMaxScratch(H)] scratch
        Span<float> colMax,         // [rows]
        Span<int> predicted,        // [rows]
        int rows, int hidden, int vocab, int banned)
    {
        if (rows < 0 || rows > 2 * ArgMaxPanel || hidden < 0 || vocab < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"rows {rows} (at most {2 * ArgMaxPanel}), hidden {hidden}, vocab {vocab} (at least 1).");
        if (x.Length < rows * hidden || w.Length < (long)vocab * hidden || (!bias.IsEmpty && bias.Length < vocab) || colMax.Length < rows || predicted.Length < rows
            || packed.Length < OutputBlockArgMaxScratch(hidden))
            throw new ArgumentException($"OutputBlockArgMax: buffers too small for rows {rows}, H {hidden}, V {vocab}.");
        if (rows == 0) return;
        if (!OutputBlockArgMaxIsVectorized || hidden == 0)
        {
            OutputBlockArgMaxScalar(x, w, bias, colMax, predicted, rows, hidden, vocab, banned);
            return;
        }

        int panels = (rows + ArgMaxPanel - 1) / ArgMaxPanel;
        packed.Clear();
        for (int r = 0; r < rows; r++)
        {
            int p = r / ArgMaxPanel, c = r % ArgMaxPanel;
            for (int i = 0; i < hidden; i++) packed[(p * hidden + i) * ArgMaxPanel + c] = x[r * hidden + i];
        }
        Span<float> max = stackalloc float[2 * ArgMaxPanel];
        Span<int> arg = stackalloc int[2 * ArgMaxPanel];
        ref float wr = ref MemoryMarshal.GetReference(w);
        ref float pr = ref MemoryMarshal.GetReference(packed);
        ref float mr = ref MemoryMarshal.GetReference(max);
        ref int ar = ref MemoryMarshal.GetReference(arg);
        bool hasBias = !bias.IsEmpty;
        int o0 = 0;
        for (; o0 + ArgMaxTile <= vocab; o0 += ArgMaxTile)
        {
            ref float w0 = ref Unsafe.Add(ref wr, o0 * hidden);
            for (int p = 0; p < panels; p++)
            {
                ref float b = ref Unsafe.Add(ref pr, p * hidden * ArgMaxPanel);
                Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
                c00 = c01 = Vector512.Create(hasBias ? bias[o0] : 0f);
                c10 = c11 = Vector512.Create(hasBias ? bias[o0 + 1] : 0f);
                c20 = c21 = Vector512.Create(hasBias ? bias[o0 + 2] : 0f);
                c30 = c31 = Vector512.Create(hasBias ? bias[o0 + 3] : 0f);
                c40 = c41 = Vector512.Create(hasBias ? bias[o0 + 4] : 0f);
                c50 = c51 = Vector512.Create(hasBias ? bias[o0 + 5] : 0f);
                // A panel of at most 16 rows (the rows left at the end of a batch) needs only the first vector.
                if (rows - p * ArgMaxPanel <= 16)
                {
                    for (int i = 0; i < hidden; i++)
                    {
                        var b0 = Vector512.LoadUnsafe(ref b, (nuint)(i * ArgMaxPanel));
                        c00 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, i)), b0, c00);
                        c10 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, hidden + i)), b0, c10);
                        c20 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, 2 * hidden + i)), b0, c20);
                        c30 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, 3 * hidden + i)), b0, c30);
                        c40 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, 4 * hidden + i)), b0, c40);
                        c50 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref w0, 5 * hidden + i)), b0, c50);
                    }
                }
                else
                {
                    for (int i = 0; i < hidden; i++)
                    {
                        var b0 = Vector512.LoadUnsafe(ref b, (nuint)(i * ArgMaxPanel));
                        var b1 = Vector512.LoadUnsafe(ref b, (nuint)(i * ArgMaxPanel + 16));
                        var a = Vector512.Create(Unsafe.Add(ref w0, i));
                        c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
                        a = Vector512.Create(Unsafe.Add(ref w0, hidden + i));
                        c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
                        a = Vector512.Create(Unsafe.Add(ref w0, 2 * hidden + i));
                        c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
                        a = Vector512.Create(Unsafe.Add(ref w0, 3 * hidden + i));
                        c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
                        a = Vector512.Create(Unsafe.Add(ref w0, 4 * hidden + i));
                        c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
                        a = Vector512.Create(Unsafe.Add(ref w0, 5 * hidden + i));
                        c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
                    }
                }
                ref float m = ref Unsafe.Add(ref mr, p * ArgMaxPanel);
                ref int g = ref Unsafe.Add(ref ar, p * ArgMaxPanel);
                var m0 = Vector512.LoadUnsafe(ref m); var m1 = Vector512.LoadUnsafe(ref m, 16);
                var g0 = Vector512.LoadUnsafe(ref g); var g1 = Vector512.LoadUnsafe(ref g, 16);
                ArgMaxUpdate(c00, c01, o0, banned, ref m0, ref m1, ref g0, ref g1);
                ArgMaxUpdate(c10, c11, o0 + 1, banned, ref m0, ref m1, ref g0, ref g1);
                ArgMaxUpdate(c20, c21, o0 + 2, banned, ref m0, ref m1, ref g0, ref g1);
                ArgMaxUpdate(c30, c31, o0 + 3, banned, ref m0, ref m1, ref g0, ref g1);
                ArgMaxUpdate(c40, c41, o0 + 4, banned, ref m0, ref m1, ref g0, ref g1);
                ArgMaxUpdate(c50, c51, o0 + 5, banned, ref m0, ref m1, ref g0, ref g1);
                m0.StoreUnsafe(ref m); m1.StoreUnsafe(ref m, 16);
                g0.StoreUnsafe(ref g); g1.StoreUnsafe(ref g, 16);
            }
        }
        for (; o0 < vocab; o0++)
        {
            ref float w0 = ref Unsafe.Add(ref wr, o0 * hidden);
            for (int p = 0; p < panels; p++)
            {
                ref float b = ref Unsafe.Add(ref pr, p * hidden * ArgMaxPanel);
                var c0 = Vector512.Create(hasBias ? bias[o0] : 0f);
                var c1 = c0;
                for (int i = 0; i < hidden; i++)
                {
                    var a = Vector512.Create(Unsafe.Add(ref w0, i));
                    c0 = Vector512.FusedMultiplyAdd(a, Vector512.LoadUnsafe(ref b, (nuint)(i * ArgMaxPanel)), c0);
                    c1 = Vector512.FusedMultiplyAdd(a, Vector512.LoadUnsafe(ref b, (nuint)(i * ArgMaxPanel + 16)), c1);
                }
                ref float m = ref Unsafe.Add(ref mr, p * ArgMaxPanel);
                ref int g = ref Unsafe.Add(ref ar, p * ArgMaxPanel);
                var m0 = Vector512.LoadUnsafe(ref m); var m1 = Vector512.LoadUnsafe(ref m, 16);
                var g0 = Vector512.LoadUnsafe(ref g); var g1 = Vector512.LoadUnsafe(ref g, 16);
                ArgMaxUpdate(c0, c1, o0, banned, ref m0, ref m1, ref g0, ref g1);
                m0.StoreUnsafe(ref m); m1.StoreUnsafe(ref m, 16);
                g0.StoreUnsafe(ref g); g1.StoreUnsafe(ref g, 16);
            }
        }
        max[..rows].CopyTo(colMax);
        arg[..rows].CopyTo(predicted);
    }

    // The scan of ArgMaxColumns for one o: o = 0 starts the maximum; later o replace it only where strictly greater.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ArgMaxUpdate(Vector512<float> v0, Vector512<float> v1, int o, int banned,
        ref Vector512<float> m0, ref Vector512<float> m1, ref Vector512<int> g0, ref Vector512<int> g1)
    {
        if (o == banned) v0 = v1 = Vector512.Create(float.NegativeInfinity);
        if (o == 0)
        {
            m0 = v0; m1 = v1;
            g0 = g1 = Vector512<int>.Zero;
            return;
        }
        var vo = Vector512.Create(o);
        var gt0 = Vector512.GreaterThan(v0, m0);
        var gt1 = Vector512.GreaterThan(v1, m1);
        m0 = Vector512.ConditionalSelect(gt0, v0, m0);
        m1 = Vector512.ConditionalSelect(gt1, v1, m1);
        g0 = Vector512.ConditionalSelect(gt0.AsInt32(), vo, g0);
        g1 = Vector512.ConditionalSelect(gt1.AsInt32(), vo, g1);
    }

    /// <summary>The scalar twin of <see cref="OutputBlockArgMax"/>: each logit with the operations of OutputBlockForward's
    /// path (bias, then one FMA per i when the GEMM is vectorized; the naive sum otherwise), scanned as ArgMaxColumns.</summary>
    internal static void OutputBlockArgMaxScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias,
        Span<float> colMax, Span<int> predicted, int rows, int hidden, int vocab, int banned)
    {
        bool fused = GemmIsVectorized;
        for (int r = 0; r < rows; r++)
        {
            float best = 0f;
            int arg = 0;
            for (int o = 0; o < vocab; o++)
            {
                float s = bias.IsEmpty ? 0f : bias[o];
                for (int i = 0; i < hidden; i++)
                    s = fused ? MathF.FusedMultiplyAdd(w[o * hidden + i], x[r * hidden + i], s) : s + w[o * hidden + i] * x[r * hidden + i];
                if (o == banned) s = float.NegativeInfinity;
                if (o == 0) best = s;
                else if (s > best) { best = s; arg = o; }
            }
            colMax[r] = best;
            predicted[r] = arg;
        }
    }
}
