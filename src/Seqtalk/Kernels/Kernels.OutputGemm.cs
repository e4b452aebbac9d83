// Kernels.OutputGemm: register-blocked Vector512 micro-kernels for the two backward GEMMs of the output block
// when the hidden size H is small (the tutorial's H = 50), where the generic GEMM (Kernels.Gemm) puts H on the
// vector axis and wastes lanes on a 32 + 18 column edge, repacks W for every block and copies edge tiles.
//
// Legend: rb rows in the block, ld the block's row stride (a multiple of 64 here), H hidden, V vocabulary,
// cols the padded width of the weight-gradient accumulator (a multiple of 64).
//   dx (OutputBlockBackwardInput's fast path):  dxT[i, r] = dx[r, i] + Σ_o w[o, i]·dzT[o, r]
//       64 rows r on the vector axis (4 zmm, read straight from the dzT block, no packing), 5 columns i broadcast
//       from W in place: 20 accumulators. V is walked in chunks of 64 so that the chunk of dzT (16 KB) and of W
//       stays in L1 while all H/5 column tiles run over it; dxT lives in a stack buffer between chunks. Every
//       element gets dx, then one FMA per o in increasing o: the bits of the generic GEMM path.
//   dW (OutputBlockBackwardWeightPadded):        dwp[o, j] += Σ_r dzT[o, r]·xp[r, j]
//       xp = [x | 1 | 0 …] padded to cols, so column H of dwp accumulates db for free; 6 vocabulary rows × 64
//       columns (24 accumulators), rows r as the depth, dzT broadcast in place, xp (≤ 64 × cols floats) in L1.
//       Each dwp row is loaded and stored once per block. Lanes past H + 1 carry zeros.
//   dW split (OutputBlockBackward when H + 1 is in (48, 52], the tutorial's H = 50): 64 lanes for H + 1 = 51 columns
//       leave 13 lanes idle in every FMA, so columns [0, 48) run as 8 vocabulary rows × 3 vectors (24 accumulators,
//       the same FMA chain per element as above) and the last four columns (x's last ones and the bias's 1) as dot
//       products with the rows on the lanes (DwTail: 16 FMAs per vocabulary row, reduced by halves and horizontal adds),
//       about 3/4 of the padded kernel's FMAs. The tail's sums run in another order than the padded kernel's.
// Rows past the last real row (the lanes r ≥ rows of a short block in dx) are computed from whatever the block
// holds there and never stored (the block must hold finite values there, as OutputBlockForwardMax leaves it: DwTail
// multiplies them by zero); vocabulary tiles past V repeat a valid row and are not stored.
// Accumulation rule: dx and dwp are ADDED to.

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Vocabulary rows per chunk of the dx kernel (the chunk of dzT and W kept in L1).</summary>
    private const int OutputDxChunk = 64;

    /// <summary>Largest H for the dx fast path (its stack buffer is ⌈H/5⌉·5 × 64 floats).</summary>
    private const int OutputDxMaxHidden = 256;

    /// <summary>True when <see cref="OutputBlockBackwardInput"/> runs the transposed Vector512 kernel for this shape.</summary>
    internal static bool OutputDxTransposedApplies(int hidden, int ld) => GemmUses512 && hidden <= OutputDxMaxHidden && ld % 64 == 0;

    /// <summary>True when <see cref="OutputBlockBackwardWeightPadded"/> runs vectorised (Vector512); the training
    /// workspace uses the padded weight gradient only then, and for H + 1 ≤ 64 (one 64-wide column group).</summary>
    internal static bool OutputPaddedWeightIsVectorized => GemmUses512;

    /// <summary>Width of the padded weight-gradient accumulator for <paramref name="hidden"/>: H + 1 (the bias
    /// column) rounded up to 64.</summary>
    internal static int OutputPaddedWidth(int hidden) => (hidden + 1 + 63) / 64 * 64;

    // dx[r, i] += Σ_o dzT[o·ld + r]·w[o, i] via dxT, 64 rows at a time (see the header). Requires ld % 64 == 0.
    [SkipLocalsInit]
    private static void OutputBackwardInputTransposed(ReadOnlySpan<float> dzT, ReadOnlySpan<float> w, Span<float> dx, int rows, int hidden, int vocab, int ld)
    {
        Debug.Assert(ld % 64 == 0 && rows <= ld && hidden <= OutputDxMaxHidden);
        int hp = (hidden + 4) / 5 * 5;
        Span<float> acc = stackalloc float[hp * 64];
        ref float dzRef = ref MemoryMarshal.GetReference(dzT);
        ref float wRef = ref MemoryMarshal.GetReference(w);
        ref float accRef = ref MemoryMarshal.GetReference(acc);
        for (int r0 = 0; r0 < rows; r0 += 64)
        {
            int rr = Math.Min(64, rows - r0);
            acc.Clear();
            for (int r = 0; r < rr; r++)
            {
                ReadOnlySpan<float> src = dx.Slice((r0 + r) * hidden, hidden);
                for (int i = 0; i < hidden; i++) acc[i * 64 + r] = src[i];
            }

            for (int o0 = 0; o0 < vocab; o0 += OutputDxChunk)
            {
                int count = Math.Min(OutputDxChunk, vocab - o0);
                ref float dzChunk = ref Unsafe.Add(ref dzRef, (nint)o0 * ld + r0);
                ref float wChunk = ref Unsafe.Add(ref wRef, (nint)o0 * hidden);
                for (int i0 = 0; i0 < hidden; i0 += 5)
                    MicroDxT(ref dzChunk, ld, ref Unsafe.Add(ref wChunk, i0), hidden, Math.Min(5, hidden - i0), count, ref Unsafe.Add(ref accRef, i0 * 64));
            }

            for (int r = 0; r < rr; r++)
            {
                Span<float> dst = dx.Slice((r0 + r) * hidden, hidden);
                for (int i = 0; i < hidden; i++) dst[i] = acc[i * 64 + r];
            }
        }
    }

    // acc[j·64 + r] += Σ_{k < count} w[k·hidden + j]·dz[k·ld + r] for j < 5 (columns j ≥ m repeat column m − 1 and
    // land in the buffer's padding rows), r < 64.
    private static void MicroDxT(ref float dz, nint ld, ref float w, nint hidden, int m, int count, ref float acc)
    {
        nint j1 = m > 1 ? 1 : 0, j2 = m > 2 ? 2 : m - 1, j3 = m > 3 ? 3 : m - 1, j4 = m > 4 ? 4 : m - 1;
        ref float a1 = ref Unsafe.Add(ref acc, 64);
        ref float a2 = ref Unsafe.Add(ref acc, 128);
        ref float a3 = ref Unsafe.Add(ref acc, 192);
        ref float a4 = ref Unsafe.Add(ref acc, 256);
        Vector512<float> c00 = Vector512.LoadUnsafe(ref acc), c01 = Vector512.LoadUnsafe(ref acc, 16), c02 = Vector512.LoadUnsafe(ref acc, 32), c03 = Vector512.LoadUnsafe(ref acc, 48);
        Vector512<float> c10 = Vector512.LoadUnsafe(ref a1), c11 = Vector512.LoadUnsafe(ref a1, 16), c12 = Vector512.LoadUnsafe(ref a1, 32), c13 = Vector512.LoadUnsafe(ref a1, 48);
        Vector512<float> c20 = Vector512.LoadUnsafe(ref a2), c21 = Vector512.LoadUnsafe(ref a2, 16), c22 = Vector512.LoadUnsafe(ref a2, 32), c23 = Vector512.LoadUnsafe(ref a2, 48);
        Vector512<float> c30 = Vector512.LoadUnsafe(ref a3), c31 = Vector512.LoadUnsafe(ref a3, 16), c32 = Vector512.LoadUnsafe(ref a3, 32), c33 = Vector512.LoadUnsafe(ref a3, 48);
        Vector512<float> c40 = Vector512.LoadUnsafe(ref a4), c41 = Vector512.LoadUnsafe(ref a4, 16), c42 = Vector512.LoadUnsafe(ref a4, 32), c43 = Vector512.LoadUnsafe(ref a4, 48);
        for (int k = count; k > 0; k--)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref dz), b1 = Vector512.LoadUnsafe(ref dz, 16);
            Vector512<float> b2 = Vector512.LoadUnsafe(ref dz, 32), b3 = Vector512.LoadUnsafe(ref dz, 48);
            Vector512<float> x = Vector512.Create(w);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(x, b2, c02); c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(Unsafe.Add(ref w, j1));
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(x, b2, c12); c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(Unsafe.Add(ref w, j2));
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(x, b2, c22); c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(Unsafe.Add(ref w, j3));
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(x, b2, c32); c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
            x = Vector512.Create(Unsafe.Add(ref w, j4));
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(x, b2, c42); c43 = Vector512.FusedMultiplyAdd(x, b3, c43);
            dz = ref Unsafe.Add(ref dz, ld);
            w = ref Unsafe.Add(ref w, hidden);
        }

        c00.StoreUnsafe(ref acc); c01.StoreUnsafe(ref acc, 16); c02.StoreUnsafe(ref acc, 32); c03.StoreUnsafe(ref acc, 48);
        c10.StoreUnsafe(ref a1); c11.StoreUnsafe(ref a1, 16); c12.StoreUnsafe(ref a1, 32); c13.StoreUnsafe(ref a1, 48);
        c20.StoreUnsafe(ref a2); c21.StoreUnsafe(ref a2, 16); c22.StoreUnsafe(ref a2, 32); c23.StoreUnsafe(ref a2, 48);
        c30.StoreUnsafe(ref a3); c31.StoreUnsafe(ref a3, 16); c32.StoreUnsafe(ref a3, 32); c33.StoreUnsafe(ref a3, 48);
        c40.StoreUnsafe(ref a4); c41.StoreUnsafe(ref a4, 16); c42.StoreUnsafe(ref a4, 32); c43.StoreUnsafe(ref a4, 48);
    }

    /// <summary>dwp[o·cols + j] += Σ_r dzT[o·ld + r]·xp[r·cols + j] for o in [0, vocab), j in [0, cols), r in [0, rows).</summary>
    /// <remarks>The weight and bias gradients of the output block in one GEMM: with xp = [x | 1 | 0 …] (row r is
    /// x[r, 0..H), then 1, then zeros up to cols), columns [0, H) of dwp receive dW and column H receives db.
    /// <paramref name="cols"/> must be a multiple of 64.</remarks>
    public static void OutputBlockBackwardWeightPadded(
        ReadOnlySpan<float> dzT,    // [V, ld]
        ReadOnlySpan<float> xp,     // [rows, cols]
        Span<float> dwp,            // [V, cols]
        int rows, int cols, int vocab, int ld)
    {
        if (rows < 0 || vocab < 0 || cols < 0 || cols % 64 != 0 || ld < rows)
            throw new ArgumentOutOfRangeException(nameof(cols), $"rows {rows}, cols {cols}, vocab {vocab}, ld {ld}: need non-negative sizes, cols a multiple of 64 and ld ≥ rows.");
        if (xp.Length < (long)rows * cols || dwp.Length < (long)vocab * cols || dzT.Length < (long)vocab * ld)
            throw new ArgumentException($"OutputBlockBackwardWeightPadded: buffers too small for rows {rows}, cols {cols}, V {vocab}, ld {ld}.");
        if (rows == 0 || vocab == 0 || cols == 0) return;
        if (!OutputPaddedWeightIsVectorized)
        {
            OutputBlockBackwardWeightPaddedNaive(dzT, xp, dwp, rows, cols, vocab, ld);
            return;
        }

        ref float dzRef = ref MemoryMarshal.GetReference(dzT);
        ref float xRef = ref MemoryMarshal.GetReference(xp);
        ref float dwRef = ref MemoryMarshal.GetReference(dwp);
        for (int c0 = 0; c0 < cols; c0 += 64)
        {
            for (int o0 = 0; o0 < vocab; o0 += 6)
                MicroDw(ref Unsafe.Add(ref dzRef, (nint)o0 * ld), ld, Math.Min(6, vocab - o0), ref Unsafe.Add(ref xRef, c0), cols, rows,
                    ref Unsafe.Add(ref dwRef, (nint)o0 * cols + c0), false);
        }
    }

    // dw[m·cols + j] += Σ_{r < rows} dz[m·ld + r]·x[r·cols + j] for m < 6 (rows m ≥ valid repeat row 0, not stored), j < 64.
    private static void MicroDw(ref float dz, nint ld, int valid, ref float x, nint cols, int rows, ref float dw, bool overwrite)
    {
        ref float z0 = ref dz;
        ref float z1 = ref valid > 1 ? ref Unsafe.Add(ref dz, ld) : ref dz;
        ref float z2 = ref valid > 2 ? ref Unsafe.Add(ref dz, 2 * ld) : ref dz;
        ref float z3 = ref valid > 3 ? ref Unsafe.Add(ref dz, 3 * ld) : ref dz;
        ref float z4 = ref valid > 4 ? ref Unsafe.Add(ref dz, 4 * ld) : ref dz;
        ref float z5 = ref valid > 5 ? ref Unsafe.Add(ref dz, 5 * ld) : ref dz;
        ref float d1 = ref valid > 1 ? ref Unsafe.Add(ref dw, cols) : ref dw;
        ref float d2 = ref valid > 2 ? ref Unsafe.Add(ref dw, 2 * cols) : ref dw;
        ref float d3 = ref valid > 3 ? ref Unsafe.Add(ref dw, 3 * cols) : ref dw;
        ref float d4 = ref valid > 4 ? ref Unsafe.Add(ref dw, 4 * cols) : ref dw;
        ref float d5 = ref valid > 5 ? ref Unsafe.Add(ref dw, 5 * cols) : ref dw;
        Vector512<float> c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        if (overwrite)
        {
            // The strand's first block: the accumulators start at +0, the bits of loading a cleared buffer.
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = Vector512<float>.Zero;
        }
        else
        {
            c00 = Vector512.LoadUnsafe(ref dw); c01 = Vector512.LoadUnsafe(ref dw, 16); c02 = Vector512.LoadUnsafe(ref dw, 32); c03 = Vector512.LoadUnsafe(ref dw, 48);
            c10 = Vector512.LoadUnsafe(ref d1); c11 = Vector512.LoadUnsafe(ref d1, 16); c12 = Vector512.LoadUnsafe(ref d1, 32); c13 = Vector512.LoadUnsafe(ref d1, 48);
            c20 = Vector512.LoadUnsafe(ref d2); c21 = Vector512.LoadUnsafe(ref d2, 16); c22 = Vector512.LoadUnsafe(ref d2, 32); c23 = Vector512.LoadUnsafe(ref d2, 48);
            c30 = Vector512.LoadUnsafe(ref d3); c31 = Vector512.LoadUnsafe(ref d3, 16); c32 = Vector512.LoadUnsafe(ref d3, 32); c33 = Vector512.LoadUnsafe(ref d3, 48);
            c40 = Vector512.LoadUnsafe(ref d4); c41 = Vector512.LoadUnsafe(ref d4, 16); c42 = Vector512.LoadUnsafe(ref d4, 32); c43 = Vector512.LoadUnsafe(ref d4, 48);
            c50 = Vector512.LoadUnsafe(ref d5); c51 = Vector512.LoadUnsafe(ref d5, 16); c52 = Vector512.LoadUnsafe(ref d5, 32); c53 = Vector512.LoadUnsafe(ref d5, 48);
        }
        nint off = 0;
        for (int k = rows; k > 0; k--)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref x), b1 = Vector512.LoadUnsafe(ref x, 16);
            Vector512<float> b2 = Vector512.LoadUnsafe(ref x, 32), b3 = Vector512.LoadUnsafe(ref x, 48);
            Vector512<float> a = Vector512.Create(Unsafe.Add(ref z0, off));
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
            a = Vector512.Create(Unsafe.Add(ref z1, off));
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
            a = Vector512.Create(Unsafe.Add(ref z2, off));
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
            a = Vector512.Create(Unsafe.Add(ref z3, off));
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
            a = Vector512.Create(Unsafe.Add(ref z4, off));
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a, b2, c42); c43 = Vector512.FusedMultiplyAdd(a, b3, c43);
            a = Vector512.Create(Unsafe.Add(ref z5, off));
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a, b2, c52); c53 = Vector512.FusedMultiplyAdd(a, b3, c53);
            off++;
            x = ref Unsafe.Add(ref x, cols);
        }

        // Rows past `valid` alias row 0 and are not stored.
        if (valid > 5) { c50.StoreUnsafe(ref d5); c51.StoreUnsafe(ref d5, 16); c52.StoreUnsafe(ref d5, 32); c53.StoreUnsafe(ref d5, 48); }
        if (valid > 4) { c40.StoreUnsafe(ref d4); c41.StoreUnsafe(ref d4, 16); c42.StoreUnsafe(ref d4, 32); c43.StoreUnsafe(ref d4, 48); }
        if (valid > 3) { c30.StoreUnsafe(ref d3); c31.StoreUnsafe(ref d3, 16); c32.StoreUnsafe(ref d3, 32); c33.StoreUnsafe(ref d3, 48); }
        if (valid > 2) { c20.StoreUnsafe(ref d2); c21.StoreUnsafe(ref d2, 16); c22.StoreUnsafe(ref d2, 32); c23.StoreUnsafe(ref d2, 48); }
        if (valid > 1) { c10.StoreUnsafe(ref d1); c11.StoreUnsafe(ref d1, 16); c12.StoreUnsafe(ref d1, 32); c13.StoreUnsafe(ref d1, 48); }
        c00.StoreUnsafe(ref dw); c01.StoreUnsafe(ref dw, 16); c02.StoreUnsafe(ref dw, 32); c03.StoreUnsafe(ref dw, 48);
    }

    /// <summary>True when <see cref="OutputBlockForwardMax"/> can run for this shape (Vector512, ld a multiple of 64, rows ≤ 64, H ≤ 256).</summary>
    internal static bool OutputBlockForwardMaxApplies(int rows, int hidden, int ld) => GemmUses512 && ld % 64 == 0 && rows <= 64 && hidden <= GemmKcMax;

    /// <summary><see cref="OutputBlockForward"/> with the column maxima and first arg-max computed while each tile is in
    /// registers: zT[o·ld + r] = b[o] + Σ_i w[o, i]·x[r, i]; colMax[r] = max_o zT[o, r], predicted[r] = its first o.</summary>
    /// <remarks>The logits have the bits of <see cref="OutputBlockForward"/> (the bias, then one FMA per i in order) and the
    /// maxima those of pass 1 of <c>SoftmaxCrossEntropyColumns</c>, which then skips that pass (its maxGiven overload).
    /// All 64 lanes of each zT row are written (lanes r ≥ rows hold b[o]: x is zero there). Only where
    /// <see cref="OutputBlockForwardMaxApplies"/> holds; <paramref name="xT"/> is scratch of 64·H floats.</remarks>
    public static void OutputBlockForwardMax(
        ReadOnlySpan<float> x,      // [rows, H]
        ReadOnlySpan<float> w,      // [V, H]
        ReadOnlySpan<float> bias,   // [V]
        Span<float> zT,             // [V, ld]
        Span<float> colMax,         // [rows]
        Span<int> predicted,        // [rows]
        Span<float> xT,             // [H, 64] scratch
        int rows, int hidden, int vocab, int ld)
    {
        if (!OutputBlockForwardMaxApplies(rows, hidden, ld))
            throw new ArgumentOutOfRangeException(nameof(rows), $"OutputBlockForwardMax needs Vector512, ld a multiple of 64, rows ≤ 64 and H ≤ {GemmKcMax} (rows {rows}, H {hidden}, ld {ld}).");
        CheckBlock(x.Length, w.Length, zT.Length, rows, hidden, vocab, ld);
        if (bias.Length < vocab || colMax.Length < rows || predicted.Length < rows || xT.Length < 64 * hidden)
            throw new ArgumentException($"OutputBlockForwardMax: buffers too small for rows {rows}, H {hidden}, V {vocab}.");
        if (rows == 0 || vocab == 0) return;
        // xT[i, r] = x[r, i], zero for r ≥ rows.
        Span<float> xt = xT[..(64 * hidden)];
        xt.Clear();
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < hidden; i++) xt[i * 64 + r] = x[r * hidden + i];
        }

        Span<float> max = stackalloc float[64];
        Span<int> arg = stackalloc int[64];
        max.Fill(float.NegativeInfinity);
        arg.Clear();
        ref float wRef = ref MemoryMarshal.GetReference(w);
        ref float bRef = ref MemoryMarshal.GetReference(bias);
        ref float zRef = ref MemoryMarshal.GetReference(zT);
        for (int o0 = 0; o0 < vocab; o0 += 6)
        {
            int valid = Math.Min(6, vocab - o0);
            MicroForwardMax(ref Unsafe.Add(ref wRef, (nint)o0 * hidden), hidden, ref Unsafe.Add(ref bRef, o0), valid, ref MemoryMarshal.GetReference(xt),
                ref Unsafe.Add(ref zRef, (nint)o0 * ld), ld, o0, ref MemoryMarshal.GetReference(max), ref MemoryMarshal.GetReference(arg));
        }

        max[..rows].CopyTo(colMax);
        arg[..rows].CopyTo(predicted);
    }

    // Rows o0 + m (m < 6; m ≥ valid repeat row 0 and are not stored) of zT over 64 lanes: bias, then FMAs over i; then
    // max/arg-max per lane with strict >, rows in order (a repeated row equals row 0 and never replaces it).
    private static void MicroForwardMax(ref float w, nint hidden, ref float bias, int valid, ref float xT, ref float z, nint ld, int o0, ref float max, ref int arg)
    {
        nint h1 = valid > 1 ? hidden : 0, h2 = valid > 2 ? 2 * hidden : 0, h3 = valid > 3 ? 3 * hidden : 0, h4 = valid > 4 ? 4 * hidden : 0, h5 = valid > 5 ? 5 * hidden : 0;
        Vector512<float> c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        c00 = c01 = c02 = c03 = Vector512.Create(bias);
        c10 = c11 = c12 = c13 = Vector512.Create(Unsafe.Add(ref bias, valid > 1 ? 1 : 0));
        c20 = c21 = c22 = c23 = Vector512.Create(Unsafe.Add(ref bias, valid > 2 ? 2 : 0));
        c30 = c31 = c32 = c33 = Vector512.Create(Unsafe.Add(ref bias, valid > 3 ? 3 : 0));
        c40 = c41 = c42 = c43 = Vector512.Create(Unsafe.Add(ref bias, valid > 4 ? 4 : 0));
        c50 = c51 = c52 = c53 = Vector512.Create(Unsafe.Add(ref bias, valid > 5 ? 5 : 0));
        ref float b = ref xT;
        for (nint i = 0; i < hidden; i++)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref b), b1 = Vector512.LoadUnsafe(ref b, 16);
            Vector512<float> b2 = Vector512.LoadUnsafe(ref b, 32), b3 = Vector512.LoadUnsafe(ref b, 48);
            Vector512<float> a = Vector512.Create(Unsafe.Add(ref w, i));
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
            a = Vector512.Create(Unsafe.Add(ref w, h1 + i));
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
            a = Vector512.Create(Unsafe.Add(ref w, h2 + i));
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
            a = Vector512.Create(Unsafe.Add(ref w, h3 + i));
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
            a = Vector512.Create(Unsafe.Add(ref w, h4 + i));
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a, b2, c42); c43 = Vector512.FusedMultiplyAdd(a, b3, c43);
            a = Vector512.Create(Unsafe.Add(ref w, h5 + i));
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a, b2, c52); c53 = Vector512.FusedMultiplyAdd(a, b3, c53);
            b = ref Unsafe.Add(ref b, 64);
        }

        StoreRow(ref z, c00, c01, c02, c03);
        if (valid > 1) StoreRow(ref Unsafe.Add(ref z, ld), c10, c11, c12, c13);
        if (valid > 2) StoreRow(ref Unsafe.Add(ref z, 2 * ld), c20, c21, c22, c23);
        if (valid > 3) StoreRow(ref Unsafe.Add(ref z, 3 * ld), c30, c31, c32, c33);
        if (valid > 4) StoreRow(ref Unsafe.Add(ref z, 4 * ld), c40, c41, c42, c43);
        if (valid > 5) StoreRow(ref Unsafe.Add(ref z, 5 * ld), c50, c51, c52, c53);
        MaxLanes(ref max, ref arg, 0, o0, c00, c10, c20, c30, c40, c50);
        MaxLanes(ref max, ref arg, 16, o0, c01, c11, c21, c31, c41, c51);
        MaxLanes(ref max, ref arg, 32, o0, c02, c12, c22, c32, c42, c52);
        MaxLanes(ref max, ref arg, 48, o0, c03, c13, c23, c33, c43, c53);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(ref float z, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        a.StoreUnsafe(ref z); b.StoreUnsafe(ref z, 16); c.StoreUnsafe(ref z, 32); d.StoreUnsafe(ref z, 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaxLanes(ref float max, ref int arg, nuint lane, int o0,
        Vector512<float> z0, Vector512<float> z1, Vector512<float> z2, Vector512<float> z3, Vector512<float> z4, Vector512<float> z5)
    {
        Vector512<float> m = Vector512.LoadUnsafe(ref max, lane);
        Vector512<int> a = Vector512.LoadUnsafe(ref arg, lane);
        Vector512<float> gt = Vector512.GreaterThan(z0, m); m = Vector512.ConditionalSelect(gt, z0, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0), a);
        gt = Vector512.GreaterThan(z1, m); m = Vector512.ConditionalSelect(gt, z1, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0 + 1), a);
        gt = Vector512.GreaterThan(z2, m); m = Vector512.ConditionalSelect(gt, z2, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0 + 2), a);
        gt = Vector512.GreaterThan(z3, m); m = Vector512.ConditionalSelect(gt, z3, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0 + 3), a);
        gt = Vector512.GreaterThan(z4, m); m = Vector512.ConditionalSelect(gt, z4, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0 + 4), a);
        gt = Vector512.GreaterThan(z5, m); m = Vector512.ConditionalSelect(gt, z5, m); a = Vector512.ConditionalSelect(gt.AsInt32(), Vector512.Create(o0 + 5), a);
        m.StoreUnsafe(ref max, lane);
        a.StoreUnsafe(ref arg, lane);
    }

    /// <summary>Vocabulary rows per chunk of <see cref="OutputBlockBackward"/>: a multiple of 6 (the dW tile), small
    /// enough that the chunk of dzT, W and dwp stays in L1/L2 between its three uses.</summary>
    private const int OutputBackwardChunk = 96;

    /// <summary>True when <see cref="OutputBlockBackward"/> can run for this shape (Vector512, ld a multiple of 64,
    /// rows ≤ 64, H ≤ 256, H + 1 ≤ cols).</summary>
    internal static bool OutputBlockBackwardApplies(int rows, int hidden, int cols, int ld) =>
        GemmUses512 && ld % 64 == 0 && rows <= 64 && hidden <= OutputDxMaxHidden && hidden + 1 <= cols && cols % 64 == 0;

    /// <summary>The backward of the output block in one sweep over the vocabulary: softmax-CE's last pass, dx and
    /// the padded dW, chunk by chunk while each chunk is in cache.</summary>
    /// <remarks>Effectively the backward pass of <c>SoftmaxCrossEntropyColumns</c> (zT holds e = exp(z − max) on entry, as that kernel leaves it without backward, and
    /// <paramref name="colSum"/>[c] = Σ_o e[o, c], as it leaves its colSum scratch), then
    /// <see cref="OutputBlockBackwardInput"/> and <see cref="OutputBlockBackwardWeightPadded"/> on the result, with
    /// the same bits as those three calls. On return zT holds dLogits = (p − q)·scale in columns [0, rows) (columns
    /// up to the next multiple of 16 are overwritten with values of no meaning). Only where
    /// <see cref="OutputBlockBackwardApplies"/> holds.</remarks>
    public static void OutputBlockBackward(
        Span<float> zT,                 // [V, ld]   e in, dLogits out
        ReadOnlySpan<int> targets,      // [rows]
        ReadOnlySpan<double> colSum,    // [rows]    Σ_o e
        ReadOnlySpan<float> w,          // [V, H]
        ReadOnlySpan<float> xp,         // [rows, cols]  [x | 1 | 0 …]
        Span<float> dx,                 // [rows, H]     added to
        Span<float> dwp,                // [V, cols]     added to (column H: db), or written
        int rows, int hidden, int cols, int vocab, int ld, float scale, float smoothing, bool overwriteWeight = false)
    {
        if (!OutputBlockBackwardApplies(rows, hidden, cols, ld))
            throw new ArgumentOutOfRangeException(nameof(rows), $"OutputBlockBackward needs Vector512, ld a multiple of 64, rows ≤ 64, H ≤ {OutputDxMaxHidden} and cols a multiple of 64 above H (rows {rows}, H {hidden}, cols {cols}, ld {ld}).");
        if (targets.Length < rows || colSum.Length < rows || w.Length < (long)vocab * hidden || xp.Length < (long)rows * cols
            || dx.Length < (long)rows * hidden || dwp.Length < (long)vocab * cols || zT.Length < (long)vocab * ld)
            throw new ArgumentException($"OutputBlockBackward: buffers too small for rows {rows}, H {hidden}, cols {cols}, V {vocab}, ld {ld}.");
        if (rows == 0 || vocab == 0) return;
        for (int c = 0; c < rows; c++)
        {
            if ((uint)targets[c] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(targets), $"target {targets[c]} outside the vocabulary of {vocab}.");
        }
        OutputBlockBackwardCore(zT, targets, colSum, w, xp, dx, dwp, rows, hidden, cols, vocab, ld, scale, smoothing, overwriteWeight);
    }

    [SkipLocalsInit]
    private static void OutputBlockBackwardCore(Span<float> zT, ReadOnlySpan<int> targets, ReadOnlySpan<double> colSum, ReadOnlySpan<float> w,
        ReadOnlySpan<float> xp, Span<float> dx, Span<float> dwp, int rows, int hidden, int cols, int vocab, int ld, float scale, float smoothing,
        bool overwriteWeight)
    {
        int hp = (hidden + 4) / 5 * 5, vectors = (rows + 15) / 16;
        Span<float> acc = stackalloc float[hp * 64];
        Span<float> inv = stackalloc float[64];
        Span<float> py = stackalloc float[64];
        inv.Clear();
        // As SoftmaxCrossEntropyColumns' pass 3: 1/S, then p_y = e_y·(1/S) before the target's e is overwritten.
        for (int c = 0; c < rows; c++) inv[c] = (float)(1.0 / colSum[c]);
        for (int c = 0; c < rows; c++) py[c] = zT[targets[c] * ld + c] * inv[c];
        float uniform = smoothing / vocab, onTarget = 1f - smoothing;

        acc.Clear();
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> src = dx.Slice(r * hidden, hidden);
            for (int i = 0; i < hidden; i++) acc[i * 64 + r] = src[i];
        }

        // The split dW layout (H = 50: 48 + 3 columns instead of 64 lanes of which 51 are used): xp's columns [48, 52)
        // transposed, tailT[j·64 + r] = xp[r, 48 + j], zero for r ≥ rows.
        bool split = OutputDwSplitApplies(hidden, cols);
        Span<float> tailT = stackalloc float[split ? 4 * 64 : 0];
        if (split)
        {
            tailT.Clear();
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < 4; j++) tailT[j * 64 + r] = xp[r * cols + 48 + j];
            }
        }

        ref float zRef = ref MemoryMarshal.GetReference(zT);
        ref float wRef = ref MemoryMarshal.GetReference(w);
        ref float accRef = ref MemoryMarshal.GetReference(acc);
        ref float xRef = ref MemoryMarshal.GetReference(xp);
        ref float dwRef = ref MemoryMarshal.GetReference(dwp);
        ref float invRef = ref MemoryMarshal.GetReference(inv);
        var vs = Vector512.Create(scale);
        var vu = Vector512.Create(uniform);
        for (int o0 = 0; o0 < vocab; o0 += OutputBackwardChunk)
        {
            int count = Math.Min(OutputBackwardChunk, vocab - o0);
            ref float zChunk = ref Unsafe.Add(ref zRef, (nint)o0 * ld);

            // dLogits for the chunk: (e·(1/S))·scale, or (e·(1/S) − ε/V)·scale; then the targets in the chunk.
            for (int o = 0; o < count; o++)
            {
                ref float row = ref Unsafe.Add(ref zChunk, (nint)o * ld);
                for (int v = 0; v < vectors; v++)
                {
                    var p = Vector512.LoadUnsafe(ref row, (nuint)(v * 16)) * Vector512.LoadUnsafe(ref invRef, (nuint)(v * 16));
                    (smoothing == 0f ? p * vs : (p - vu) * vs).StoreUnsafe(ref row, (nuint)(v * 16));
                }
            }
            for (int c = 0; c < rows; c++)
            {
                int t = targets[c] - o0;
                if ((uint)t < (uint)count)
                    zT[targets[c] * ld + c] = smoothing == 0f ? (py[c] - 1f) * scale : (py[c] - onTarget - uniform) * scale;
            }

            // dx: all column tiles over the chunk.
            ref float wChunk = ref Unsafe.Add(ref wRef, (nint)o0 * hidden);
            for (int i0 = 0; i0 < hidden; i0 += 5)
                MicroDxT(ref zChunk, ld, ref Unsafe.Add(ref wChunk, i0), hidden, Math.Min(5, hidden - i0), count, ref Unsafe.Add(ref accRef, i0 * 64));

            if (split)
            {
                // H + 1 in (48, 52]: columns [0, 48) as 8 vocabulary rows × 3 vectors (no idle lanes), the last four
                // (x's last columns and the bias's ones) as dot products over the rows (see DwTail).
                for (int o = 0; o < count; o += 8)
                    MicroDw48(ref Unsafe.Add(ref zChunk, (nint)o * ld), ld, Math.Min(8, count - o), ref xRef, cols, rows,
                        ref Unsafe.Add(ref dwRef, (nint)(o0 + o) * cols), overwriteWeight);
                DwTail(ref zChunk, ld, count, ref MemoryMarshal.GetReference(tailT), ref Unsafe.Add(ref dwRef, (nint)o0 * cols + 48), cols, overwriteWeight);
                continue;
            }

            // dW and db: the chunk's vocabulary rows, 6 at a time.
            for (int c0 = 0; c0 < cols; c0 += 64)
            {
                for (int o = 0; o < count; o += 6)
                    MicroDw(ref Unsafe.Add(ref zChunk, (nint)o * ld), ld, Math.Min(6, count - o), ref Unsafe.Add(ref xRef, c0), cols, rows,
                        ref Unsafe.Add(ref dwRef, (nint)(o0 + o) * cols + c0), overwriteWeight);
            }
        }

        for (int r = 0; r < rows; r++)
        {
            Span<float> dst = dx.Slice(r * hidden, hidden);
            for (int i = 0; i < hidden; i++) dst[i] = acc[i * 64 + r];
        }
    }

    /// <summary>True when <c>OutputBlockBackward</c> splits the padded dW into 48 columns of full vectors and a 4-column
    /// tail: one 64-wide column group holding H + 1 in (48, 52] (the tutorial's H = 50), and AVX for the tail's sums.</summary>
    internal static bool OutputDwSplitApplies(int hidden, int cols) => cols == 64 && hidden + 1 > 48 && hidden + 1 <= 52 && Avx.IsSupported;

    // dw[m·cols + j] += Σ_{r < rows} dz[m·ld + r]·x[r·cols + j] for m < 8 (rows m ≥ valid repeat row 0, not stored), j < 48:
    // MicroDw with 8 vocabulary rows × 3 vectors, the same FMA chain per element (r in order from the stored value).
    private static void MicroDw48(ref float dz, nint ld, int valid, ref float x, nint cols, int rows, ref float dw, bool overwrite)
    {
        ref float z0 = ref dz;
        ref float z1 = ref valid > 1 ? ref Unsafe.Add(ref dz, ld) : ref dz;
        ref float z2 = ref valid > 2 ? ref Unsafe.Add(ref dz, 2 * ld) : ref dz;
        ref float z3 = ref valid > 3 ? ref Unsafe.Add(ref dz, 3 * ld) : ref dz;
        ref float z4 = ref valid > 4 ? ref Unsafe.Add(ref dz, 4 * ld) : ref dz;
        ref float z5 = ref valid > 5 ? ref Unsafe.Add(ref dz, 5 * ld) : ref dz;
        ref float z6 = ref valid > 6 ? ref Unsafe.Add(ref dz, 6 * ld) : ref dz;
        ref float z7 = ref valid > 7 ? ref Unsafe.Add(ref dz, 7 * ld) : ref dz;
        ref float d1 = ref valid > 1 ? ref Unsafe.Add(ref dw, cols) : ref dw;
        ref float d2 = ref valid > 2 ? ref Unsafe.Add(ref dw, 2 * cols) : ref dw;
        ref float d3 = ref valid > 3 ? ref Unsafe.Add(ref dw, 3 * cols) : ref dw;
        ref float d4 = ref valid > 4 ? ref Unsafe.Add(ref dw, 4 * cols) : ref dw;
        ref float d5 = ref valid > 5 ? ref Unsafe.Add(ref dw, 5 * cols) : ref dw;
        ref float d6 = ref valid > 6 ? ref Unsafe.Add(ref dw, 6 * cols) : ref dw;
        ref float d7 = ref valid > 7 ? ref Unsafe.Add(ref dw, 7 * cols) : ref dw;
        Vector512<float> c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32, c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
        if (overwrite)
        {
            // The strand's first block: the accumulators start at +0, the bits of loading a cleared buffer.
            c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = c40 = c41 = c42 = c50 = c51 = c52 = c60 = c61 = c62 = c70 = c71 = c72 = Vector512<float>.Zero;
        }
        else
        {
            c00 = Vector512.LoadUnsafe(ref dw); c01 = Vector512.LoadUnsafe(ref dw, 16); c02 = Vector512.LoadUnsafe(ref dw, 32);
            c10 = Vector512.LoadUnsafe(ref d1); c11 = Vector512.LoadUnsafe(ref d1, 16); c12 = Vector512.LoadUnsafe(ref d1, 32);
            c20 = Vector512.LoadUnsafe(ref d2); c21 = Vector512.LoadUnsafe(ref d2, 16); c22 = Vector512.LoadUnsafe(ref d2, 32);
            c30 = Vector512.LoadUnsafe(ref d3); c31 = Vector512.LoadUnsafe(ref d3, 16); c32 = Vector512.LoadUnsafe(ref d3, 32);
            c40 = Vector512.LoadUnsafe(ref d4); c41 = Vector512.LoadUnsafe(ref d4, 16); c42 = Vector512.LoadUnsafe(ref d4, 32);
            c50 = Vector512.LoadUnsafe(ref d5); c51 = Vector512.LoadUnsafe(ref d5, 16); c52 = Vector512.LoadUnsafe(ref d5, 32);
            c60 = Vector512.LoadUnsafe(ref d6); c61 = Vector512.LoadUnsafe(ref d6, 16); c62 = Vector512.LoadUnsafe(ref d6, 32);
            c70 = Vector512.LoadUnsafe(ref d7); c71 = Vector512.LoadUnsafe(ref d7, 16); c72 = Vector512.LoadUnsafe(ref d7, 32);
        }
        nint off = 0;
        for (int k = rows; k > 0; k--)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref x), b1 = Vector512.LoadUnsafe(ref x, 16), b2 = Vector512.LoadUnsafe(ref x, 32);
            Vector512<float> a = Vector512.Create(Unsafe.Add(ref z0, off));
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01); c02 = Vector512.FusedMultiplyAdd(a, b2, c02);
            a = Vector512.Create(Unsafe.Add(ref z1, off));
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11); c12 = Vector512.FusedMultiplyAdd(a, b2, c12);
            a = Vector512.Create(Unsafe.Add(ref z2, off));
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21); c22 = Vector512.FusedMultiplyAdd(a, b2, c22);
            a = Vector512.Create(Unsafe.Add(ref z3, off));
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31); c32 = Vector512.FusedMultiplyAdd(a, b2, c32);
            a = Vector512.Create(Unsafe.Add(ref z4, off));
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41); c42 = Vector512.FusedMultiplyAdd(a, b2, c42);
            a = Vector512.Create(Unsafe.Add(ref z5, off));
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51); c52 = Vector512.FusedMultiplyAdd(a, b2, c52);
            a = Vector512.Create(Unsafe.Add(ref z6, off));
            c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61); c62 = Vector512.FusedMultiplyAdd(a, b2, c62);
            a = Vector512.Create(Unsafe.Add(ref z7, off));
            c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71); c72 = Vector512.FusedMultiplyAdd(a, b2, c72);
            off++;
            x = ref Unsafe.Add(ref x, cols);
        }

        // Rows past `valid` alias row 0 and are not stored.
        if (valid > 7) { c70.StoreUnsafe(ref d7); c71.StoreUnsafe(ref d7, 16); c72.StoreUnsafe(ref d7, 32); }
        if (valid > 6) { c60.StoreUnsafe(ref d6); c61.StoreUnsafe(ref d6, 16); c62.StoreUnsafe(ref d6, 32); }
        if (valid > 5) { c50.StoreUnsafe(ref d5); c51.StoreUnsafe(ref d5, 16); c52.StoreUnsafe(ref d5, 32); }
        if (valid > 4) { c40.StoreUnsafe(ref d4); c41.StoreUnsafe(ref d4, 16); c42.StoreUnsafe(ref d4, 32); }
        if (valid > 3) { c30.StoreUnsafe(ref d3); c31.StoreUnsafe(ref d3, 16); c32.StoreUnsafe(ref d3, 32); }
        if (valid > 2) { c20.StoreUnsafe(ref d2); c21.StoreUnsafe(ref d2, 16); c22.StoreUnsafe(ref d2, 32); }
        if (valid > 1) { c10.StoreUnsafe(ref d1); c11.StoreUnsafe(ref d1, 16); c12.StoreUnsafe(ref d1, 32); }
        c00.StoreUnsafe(ref dw); c01.StoreUnsafe(ref dw, 16); c02.StoreUnsafe(ref dw, 32);
    }

    // dw[o·cols + j] += Σ_r dz[o·ld + r]·tT[j·64 + r] for o < count, j < 4, r < 64 (tT is zero past the block's rows):
    // per o, four dot products with the rows on the lanes (the dz row is read once for all four), each reduced to a
    // scalar by adding halves and horizontal adds, and the four sums added to dw[o, 0..4) as one 128-bit vector.
    private static void DwTail(ref float dz, nint ld, int count, ref float tT, ref float dw, nint cols, bool overwrite)
    {
        Vector512<float> t00 = Vector512.LoadUnsafe(ref tT), t01 = Vector512.LoadUnsafe(ref tT, 16), t02 = Vector512.LoadUnsafe(ref tT, 32), t03 = Vector512.LoadUnsafe(ref tT, 48);
        Vector512<float> t10 = Vector512.LoadUnsafe(ref tT, 64), t11 = Vector512.LoadUnsafe(ref tT, 80), t12 = Vector512.LoadUnsafe(ref tT, 96), t13 = Vector512.LoadUnsafe(ref tT, 112);
        Vector512<float> t20 = Vector512.LoadUnsafe(ref tT, 128), t21 = Vector512.LoadUnsafe(ref tT, 144), t22 = Vector512.LoadUnsafe(ref tT, 160), t23 = Vector512.LoadUnsafe(ref tT, 176);
        Vector512<float> t30 = Vector512.LoadUnsafe(ref tT, 192), t31 = Vector512.LoadUnsafe(ref tT, 208), t32 = Vector512.LoadUnsafe(ref tT, 224), t33 = Vector512.LoadUnsafe(ref tT, 240);
        for (int o = 0; o < count; o++)
        {
            Vector512<float> z0 = Vector512.LoadUnsafe(ref dz), z1 = Vector512.LoadUnsafe(ref dz, 16), z2 = Vector512.LoadUnsafe(ref dz, 32), z3 = Vector512.LoadUnsafe(ref dz, 48);
            Vector512<float> a0 = Vector512.FusedMultiplyAdd(z3, t03, Vector512.FusedMultiplyAdd(z2, t02, Vector512.FusedMultiplyAdd(z1, t01, z0 * t00)));
            Vector512<float> a1 = Vector512.FusedMultiplyAdd(z3, t13, Vector512.FusedMultiplyAdd(z2, t12, Vector512.FusedMultiplyAdd(z1, t11, z0 * t10)));
            Vector512<float> a2 = Vector512.FusedMultiplyAdd(z3, t23, Vector512.FusedMultiplyAdd(z2, t22, Vector512.FusedMultiplyAdd(z1, t21, z0 * t20)));
            Vector512<float> a3 = Vector512.FusedMultiplyAdd(z3, t33, Vector512.FusedMultiplyAdd(z2, t32, Vector512.FusedMultiplyAdd(z1, t31, z0 * t30)));
            Vector256<float> h01 = Avx.HorizontalAdd(a0.GetLower() + a0.GetUpper(), a1.GetLower() + a1.GetUpper());
            Vector256<float> h23 = Avx.HorizontalAdd(a2.GetLower() + a2.GetUpper(), a3.GetLower() + a3.GetUpper());
            Vector256<float> h = Avx.HorizontalAdd(h01, h23);   // lane j: half of sum j; lane 4 + j: the other half
            ((overwrite ? Vector128<float>.Zero : Vector128.LoadUnsafe(ref dw)) + (h.GetLower() + h.GetUpper())).StoreUnsafe(ref dw);
            dz = ref Unsafe.Add(ref dz, ld);
            dw = ref Unsafe.Add(ref dw, cols);
        }
    }

    internal static void OutputBlockBackwardWeightPaddedNaive(ReadOnlySpan<float> dzT, ReadOnlySpan<float> xp, Span<float> dwp,
        int rows, int cols, int vocab, int ld)
    {
        for (int o = 0; o < vocab; o++)
        {
            for (int j = 0; j < cols; j++)
            {
                float s = dwp[o * cols + j];
                for (int r = 0; r < rows; r++) s += dzT[o * ld + r] * xp[r * cols + j];
                dwp[o * cols + j] = s;
            }
        }
    }
}
