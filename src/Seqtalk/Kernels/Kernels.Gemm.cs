// Kernels.Gemm: the blocked, register-tiled SIMD GEMM behind the three MatMul kernels.
//
// Effectively computes C[m, n] (= C[m, n] if loadC, else 0) + bias[n] + Σ_k A(m, k)·B(k, n)
// for m in [mStart, mEnd), all n in [0, n), all k in [0, k).
//   A(m, k) = a[m·aM + k·aK]     strided; read in place (one broadcast per row and k step), or with
//                                packA copied per chunk of 8 row tiles into [tile][k][MR] (for dyᵀ)
//   B(k, n) = b[k·ldb + n]       (copy layout) or b[n·ldb + k] (transposed layout); packed
//   C(m, n) = c[m·ldc + n]       row-major
// Scheme (GotoBLAS/BLIS; A packed only when asked): for each column block of nc columns and each depth
// block of kc steps, B[kc, nc] is packed into NR-wide panels in a 64 KB stack buffer (zero padded);
// then for each tile of MR rows and each panel a micro-kernel keeps an MR×NR block of C in
// registers and runs kc rank-1 updates: NR/W vector loads of B, MR broadcasts of A, MR·NR/W FMAs.
//   Vector512: MR = 6, NR = 32 (12 zmm accumulators).  Vector256: MR = 4, NR = 16 (8 ymm).
// Determinism: one C element always gets the same sequence of operations: the init (C or 0, then
// + bias), then one FMA per k in increasing k, stored and reloaded at depth-block boundaries that
// depend only on (n, k). Row tiles that run past mEnd repeat a valid row and are not stored, so a
// row is computed the same way whichever tile it falls in: results do not depend on the row range.
// Details and measurements: docs/kernels-gemm.md.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Floats in the stack buffer that holds one packed B block (64 KB).</summary>
    internal const int GemmPackFloats = 16384;

    /// <summary>Row tiles per packed A chunk (packA only): 8 × (6 × 256 + 8) floats ≈ 48 KB of stack.</summary>
    private const int GemmPackATiles = 8;

    /// <summary>Floats after each packed A tile: room for the 8-wide store of a 6-row step (fast path in PackA).</summary>
    private const int GemmPackAPad = 8;

    /// <summary>Largest depth block: C is reloaded every this many k steps at most.</summary>
    private const int GemmKcMax = 256;

    /// <summary>True when the Vector512 micro-kernel runs; false selects Vector256 or scalar.</summary>
    internal static bool GemmUses512 => Vector512.IsHardwareAccelerated;

    /// <summary>True when the Vector256 micro-kernel runs (AVX2 with FMA and no Vector512).</summary>
    internal static bool GemmUses256 => !Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>True when one of the SIMD GEMM paths is available; otherwise the kernels run scalar loops.</summary>
    internal static bool GemmIsVectorized => GemmUses512 || GemmUses256;

    /// <summary>Rows of C per register tile (MR): a row range that is not a multiple of it ends in a tile that repeats a row.</summary>
    internal static int GemmRowTile => GemmUses512 ? 6 : GemmUses256 ? 4 : 1;

    [SkipLocalsInit]
    private static void Gemm(
        ref float a, nint aM, nint aK,
        int mStart, int mEnd, int n, int k,
        ReadOnlySpan<float> b, int ldb, bool bTransposed,
        ref float c, nint ldc,
        ReadOnlySpan<float> bias,
        bool loadC, bool packA = false, ReadOnlySpan<float> packedB = default)
    {
        if (mStart >= mEnd || n == 0) return;
        bool wide = GemmUses512;
        int nr = wide ? 32 : 16;
        int mr = wide ? 6 : 4;
        // Block sizes depend only on (n, k), never on the row range (see the header).
        int kcMax = Math.Clamp(k, 1, GemmKcMax);
        int ncMax = Math.Max(nr, GemmPackFloats / kcMax / nr * nr);

        Span<float> pack = stackalloc float[GemmPackFloats];
        ref float packRef = ref MemoryMarshal.GetReference(pack);
        ref float biasRef = ref MemoryMarshal.GetReference(bias);
        // With packA, A is copied per chunk of GemmPackATiles row tiles into [tile][k][MR] (zero rows past mEnd):
        // for A read across rows (dyᵀ in backward-weight, stride = out) this turns one page per k step into
        // sequential reads. The packed values are the same floats, so the sums do not change.
        Span<float> aPack = packA ? stackalloc float[GemmPackATiles * (6 * GemmKcMax + GemmPackAPad)] : default;
        // Edge tiles (fewer than MR rows or NR columns) run on a full stack tile, copied in and out.
        Span<float> edgeTile = stackalloc float[6 * 32];
        Span<float> edgeBias = stackalloc float[32];

        for (int jc = 0; jc < n; jc += ncMax)
        {
            int nc = Math.Min(ncMax, n - jc);
            int pc = 0;
            do
            {
                int kc = Math.Min(kcMax, k - pc);
                // B's panels: packed here for this block, or read from the caller's full-depth packing (the same floats).
                nint panelStride = kc * nr;
                ref float blockB = ref packRef;
                if (!packedB.IsEmpty)
                {
                    panelStride = (nint)k * nr;
                    blockB = ref Unsafe.Add(ref MemoryMarshal.GetReference(packedB), jc / nr * panelStride + pc * nr);
                }
                else
                {
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int width = Math.Min(nr, nc - jr);
                        Span<float> panel = pack.Slice(jr * kc, kc * nr);
                        if (bTransposed) PackTransposed(b, ldb, pc, kc, jc + jr, width, nr, panel);
                        else PackCopy(b, ldb, pc, kc, jc + jr, width, nr, panel);
                    }
                }

                bool load = loadC || pc > 0;
                bool addBias = pc == 0 && !bias.IsEmpty;
                int chunkRows = packA ? GemmPackATiles * mr : mEnd - mStart;
                for (int chunk = mStart; chunk < mEnd; chunk += chunkRows)
                {
                    int chunkEnd = Math.Min(mEnd, chunk + chunkRows);
                    if (packA) PackA(ref a, aM, aK, chunk, chunkEnd, pc, kc, mr, aPack);
                    for (int ic = chunk; ic < chunkEnd; ic += mr)
                    {
                        int rowsInTile = Math.Min(mr, chunkEnd - ic);
                        ref float aTile = ref packA
                            ? ref Unsafe.Add(ref MemoryMarshal.GetReference(aPack), (ic - chunk) / mr * (kc * mr + GemmPackAPad))
                            : ref Unsafe.Add(ref a, ic * aM + pc * aK);
                        nint tileM = packA ? 1 : aM, tileK = packA ? mr : aK;
                        int kernelRows = packA ? mr : rowsInTile;   // packed tiles have zero rows, not missing ones
                        Tile(ref aTile, tileM, tileK, kernelRows, rowsInTile, kc, ref blockB, panelStride, ref Unsafe.Add(ref c, ic * ldc + jc), ldc,
                            nc, nr, mr, wide, load, addBias, ref bias.IsEmpty ? ref biasRef : ref Unsafe.Add(ref biasRef, jc), bias.IsEmpty ? default : bias.Slice(jc, nc), edgeTile, edgeBias);
                    }
                }

                pc += kcMax;
            }
            while (pc < k);
        }
    }

    // One row tile against all panels of the packed B block.
    private static void Tile(
        ref float aTile, nint aM, nint aK, int kernelRows, int rowsInTile, int kc,
        ref float packRef, nint panelStride, ref float cTile, nint ldc, int nc, int nr, int mr, bool wide, bool load, bool addBias,
        ref float biasRef, ReadOnlySpan<float> bias, Span<float> edgeTile, Span<float> edgeBias)
    {
        ref float edgeRef = ref MemoryMarshal.GetReference(edgeTile);
        for (int jr = 0; jr < nc; jr += nr)
        {
            int width = Math.Min(nr, nc - jr);
            ref float bPanel = ref Unsafe.Add(ref packRef, jr / nr * panelStride);
            ref float cBlock = ref Unsafe.Add(ref cTile, jr);
            ref float biasBlock = ref packRef;   // unused unless addBias
            if (addBias)
            {
                if (width == nr)
                {
                    biasBlock = ref Unsafe.Add(ref biasRef, jr);
                }
                else
                {
                    edgeBias.Clear();
                    bias.Slice(jr, width).CopyTo(edgeBias);
                    biasBlock = ref MemoryMarshal.GetReference(edgeBias);
                }
            }

            if (rowsInTile == mr && width == nr)
            {
                if (wide) Micro512(ref aTile, aM, aK, kernelRows, ref bPanel, kc, ref cBlock, ldc, load, addBias, ref biasBlock);
                else Micro256(ref aTile, aM, aK, kernelRows, ref bPanel, kc, ref cBlock, ldc, load, addBias, ref biasBlock);
                continue;
            }

            if (load)
            {
                for (int row = 0; row < rowsInTile; row++)
                    MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref cBlock, row * ldc), width).CopyTo(edgeTile.Slice(row * nr, nr));
            }

            if (wide) Micro512(ref aTile, aM, aK, kernelRows, ref bPanel, kc, ref edgeRef, nr, load, addBias, ref biasBlock);
            else Micro256(ref aTile, aM, aK, kernelRows, ref bPanel, kc, ref edgeRef, nr, load, addBias, ref biasBlock);
            for (int row = 0; row < rowsInTile; row++)
                edgeTile.Slice(row * nr, width).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref cBlock, row * ldc), width));
        }
    }

    /// <summary>Columns per packed B panel: 32 with the Vector512 micro-kernel, 16 with Vector256.</summary>
    internal static int GemmPanelWidth => GemmUses512 ? 32 : 16;

    /// <summary>Floats of a full-depth packing of a [k, n] B operand (see <see cref="GemmPackB"/>).</summary>
    internal static int GemmPackedLength(int n, int k) => checked((n + GemmPanelWidth - 1) / GemmPanelWidth * GemmPanelWidth * k);

    /// <summary>Packs B (copy layout b[kk·ldb + j], or transposed b[j·ldb + kk]) for all k at once into panels
    /// [n/NR][k][NR], zero-padded: panel p, depth kk is what the GEMM would pack for that block itself, so a call
    /// given this packing computes the same bits. Packs panels [panelStart, panelEnd) (threads split panels).</summary>
    internal static void GemmPackB(ReadOnlySpan<float> b, int ldb, bool bTransposed, int n, int k, Span<float> packed, int panelStart, int panelEnd)
    {
        int nr = GemmPanelWidth;
        for (int p = panelStart; p < panelEnd; p++)
        {
            int width = Math.Min(nr, n - p * nr);
            Span<float> panel = packed.Slice(p * nr * k, k * nr);
            if (bTransposed) PackTransposed(b, ldb, 0, k, p * nr, width, nr, panel);
            else PackCopy(b, ldb, 0, k, p * nr, width, nr, panel);
        }
    }

    // ---- Packing A: pack[t·(kc·mr + pad) + kk·mr + m] = A(m0 + t·mr + m, pc + kk), zero for rows ≥ m1. ----

    private static void PackA(ref float a, nint aM, nint aK, int m0, int m1, int pc, int kc, int mr, Span<float> pack)
    {
        ref float dst = ref MemoryMarshal.GetReference(pack);
        int tiles = (m1 - m0 + mr - 1) / mr;
        int fullTiles = (m1 - m0) / mr;
        int tileStride = kc * mr + GemmPackAPad;
        for (int kk = 0; kk < kc; kk++)
        {
            ref float src = ref Unsafe.Add(ref a, m0 * aM + (pc + kk) * aK);   // row m0 of this k step
            int t = 0;
            if (aM == 1 && Vector256.IsHardwareAccelerated)
            {
                // Rows of one k step are contiguous (dyᵀ): one 8-wide copy per tile. For MR = 6 it spills 2 floats into
                // the next k step's slot, which that step overwrites, or into the tile's padding after the last step.
                // Stop one tile early where the 8 floats would run past the last real row.
                int vectorTiles = mr <= 8 && m1 - m0 >= 8 ? Math.Min(fullTiles, (m1 - m0 - 8) / mr + 1) : 0;
                for (; t < vectorTiles; t++)
                    Vector256.LoadUnsafe(ref src, (nuint)(t * mr)).StoreUnsafe(ref Unsafe.Add(ref dst, t * tileStride + kk * mr));
            }

            for (; t < tiles; t++)
            {
                ref float d = ref Unsafe.Add(ref dst, t * tileStride + kk * mr);
                int rows = Math.Min(mr, m1 - m0 - t * mr);
                for (int m = 0; m < rows; m++) Unsafe.Add(ref d, m) = Unsafe.Add(ref src, (t * mr + m) * aM);
                for (int m = rows; m < mr; m++) Unsafe.Add(ref d, m) = 0f;
            }
        }
    }

    // ---- Packing B into panels: panel[kk·nr + j] = B(pc + kk, n0 + j), zero for j ≥ width. ----

    private static void PackCopy(ReadOnlySpan<float> b, int ldb, int pc, int kc, int n0, int width, int nr, Span<float> panel)
    {
        if (width == nr && Vector256.IsHardwareAccelerated)
        {
            // Full panels: straight vector copies (a memmove call per 32-float row costs more than the copy).
            ref float src = ref Unsafe.Add(ref MemoryMarshal.GetReference(b), pc * ldb + n0);
            ref float dst = ref MemoryMarshal.GetReference(panel);
            for (int kk = 0; kk < kc; kk++)
            {
                ref float s = ref Unsafe.Add(ref src, kk * ldb);
                ref float d = ref Unsafe.Add(ref dst, kk * nr);
                for (int j = 0; j < nr; j += 8) Vector256.LoadUnsafe(ref s, (nuint)j).StoreUnsafe(ref d, (nuint)j);
            }

            return;
        }

        for (int kk = 0; kk < kc; kk++)
        {
            ReadOnlySpan<float> src = b.Slice((pc + kk) * ldb + n0, width);
            Span<float> dst = panel.Slice(kk * nr, nr);
            src.CopyTo(dst);
            if (width < nr) dst[width..].Clear();
        }
    }

    private static void PackTransposed(ReadOnlySpan<float> b, int ldb, int pc, int kc, int n0, int width, int nr, Span<float> panel)
    {
        ref float dst = ref MemoryMarshal.GetReference(panel);
        ref float src = ref Unsafe.Add(ref MemoryMarshal.GetReference(b), n0 * ldb + pc);   // B(pc, n0)
        int j = 0;
        int kcBlocks = kc & ~7;
        if (Avx.IsSupported && Vector256.IsHardwareAccelerated)
        {
            // 8 columns of the panel (8 rows of W) at a time: 8×8 register transposes, then the k tail by scalars.
            for (; j + 8 <= width; j += 8)
            {
                ref float rows = ref Unsafe.Add(ref src, j * ldb);
                for (int kk = 0; kk < kcBlocks; kk += 8)
                    Transpose8x8(ref Unsafe.Add(ref rows, kk), ldb, ref Unsafe.Add(ref dst, kk * nr + j), nr);
                for (int jj = j; jj < j + 8; jj++)
                {
                    for (int kk = kcBlocks; kk < kc; kk++) Unsafe.Add(ref dst, kk * nr + jj) = Unsafe.Add(ref src, jj * ldb + kk);
                }
            }
        }

        for (; j < width; j++)
        {
            for (int kk = 0; kk < kc; kk++) Unsafe.Add(ref dst, kk * nr + j) = Unsafe.Add(ref src, j * ldb + kk);
        }

        if (width < nr)
        {
            for (int kk = 0; kk < kc; kk++) panel.Slice(kk * nr + width, nr - width).Clear();
        }
    }

    // dst[k·ldd + r] = src[r·lds + k] for r, k in 0..8: the classic AVX unpack / shuffle / permute2f128 transpose.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref float src, nint lds, ref float dst, nint ldd)
    {
        Vector256<float> r0 = Vector256.LoadUnsafe(ref src), r1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        Vector256<float> r2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds)), r3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        Vector256<float> r4 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds)), r5 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));
        Vector256<float> r6 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 6 * lds)), r7 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 7 * lds));
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(s0, s4, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(s1, s5, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, ldd));
        Avx.Permute2x128(s2, s6, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ldd));
        Avx.Permute2x128(s3, s7, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ldd));
        Avx.Permute2x128(s0, s4, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 4 * ldd));
        Avx.Permute2x128(s1, s5, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 5 * ldd));
        Avx.Permute2x128(s2, s6, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 6 * ldd));
        Avx.Permute2x128(s3, s7, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 7 * ldd));
    }

    // ---- Micro-kernels: a full MR×NR tile of C (ldc apart), no calls, so the JIT keeps the accumulators in
    // registers. Rows of A past m repeat row 0: computed the same way and never copied out by the driver. ----

    private static void Micro512(
        ref float a, nint aM, nint aK, int m,
        ref float bp, int kc,
        ref float c, nint ldc, bool loadC, bool addBias, ref float bias)
    {
        ref float a0 = ref a;
        ref float a1 = ref m > 1 ? ref Unsafe.Add(ref a, aM) : ref a;
        ref float a2 = ref m > 2 ? ref Unsafe.Add(ref a, 2 * aM) : ref a;
        ref float a3 = ref m > 3 ? ref Unsafe.Add(ref a, 3 * aM) : ref a;
        ref float a4 = ref m > 4 ? ref Unsafe.Add(ref a, 4 * aM) : ref a;
        ref float a5 = ref m > 5 ? ref Unsafe.Add(ref a, 5 * aM) : ref a;
        ref float c1 = ref Unsafe.Add(ref c, ldc);
        ref float c2 = ref Unsafe.Add(ref c, 2 * ldc);
        ref float c3 = ref Unsafe.Add(ref c, 3 * ldc);
        ref float c4 = ref Unsafe.Add(ref c, 4 * ldc);
        ref float c5 = ref Unsafe.Add(ref c, 5 * ldc);

        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (loadC)
        {
            c00 = Vector512.LoadUnsafe(ref c); c01 = Vector512.LoadUnsafe(ref c, 16);
            c10 = Vector512.LoadUnsafe(ref c1); c11 = Vector512.LoadUnsafe(ref c1, 16);
            c20 = Vector512.LoadUnsafe(ref c2); c21 = Vector512.LoadUnsafe(ref c2, 16);
            c30 = Vector512.LoadUnsafe(ref c3); c31 = Vector512.LoadUnsafe(ref c3, 16);
            c40 = Vector512.LoadUnsafe(ref c4); c41 = Vector512.LoadUnsafe(ref c4, 16);
            c50 = Vector512.LoadUnsafe(ref c5); c51 = Vector512.LoadUnsafe(ref c5, 16);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector512<float>.Zero;
        }

        if (addBias)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref bias), b1 = Vector512.LoadUnsafe(ref bias, 16);
            c00 += b0; c01 += b1; c10 += b0; c11 += b1; c20 += b0; c21 += b1;
            c30 += b0; c31 += b1; c40 += b0; c41 += b1; c50 += b0; c51 += b1;
        }

        nint off = 0;
        for (int kk = kc; kk > 0; kk--)
        {
            Vector512<float> b0 = Vector512.LoadUnsafe(ref bp);
            Vector512<float> b1 = Vector512.LoadUnsafe(ref bp, 16);
            Vector512<float> x = Vector512.Create(Unsafe.Add(ref a0, off));
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(Unsafe.Add(ref a1, off));
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(Unsafe.Add(ref a2, off));
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(Unsafe.Add(ref a3, off));
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(Unsafe.Add(ref a4, off));
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(Unsafe.Add(ref a5, off));
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            off += aK;
            bp = ref Unsafe.Add(ref bp, 32);
        }

        c00.StoreUnsafe(ref c); c01.StoreUnsafe(ref c, 16);
        c10.StoreUnsafe(ref c1); c11.StoreUnsafe(ref c1, 16);
        c20.StoreUnsafe(ref c2); c21.StoreUnsafe(ref c2, 16);
        c30.StoreUnsafe(ref c3); c31.StoreUnsafe(ref c3, 16);
        c40.StoreUnsafe(ref c4); c41.StoreUnsafe(ref c4, 16);
        c50.StoreUnsafe(ref c5); c51.StoreUnsafe(ref c5, 16);
    }

    private static void Micro256(
        ref float a, nint aM, nint aK, int m,
        ref float bp, int kc,
        ref float c, nint ldc, bool loadC, bool addBias, ref float bias)
    {
        ref float a0 = ref a;
        ref float a1 = ref m > 1 ? ref Unsafe.Add(ref a, aM) : ref a;
        ref float a2 = ref m > 2 ? ref Unsafe.Add(ref a, 2 * aM) : ref a;
        ref float a3 = ref m > 3 ? ref Unsafe.Add(ref a, 3 * aM) : ref a;
        ref float c1 = ref Unsafe.Add(ref c, ldc);
        ref float c2 = ref Unsafe.Add(ref c, 2 * ldc);
        ref float c3 = ref Unsafe.Add(ref c, 3 * ldc);

        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31;
        if (loadC)
        {
            c00 = Vector256.LoadUnsafe(ref c); c01 = Vector256.LoadUnsafe(ref c, 8);
            c10 = Vector256.LoadUnsafe(ref c1); c11 = Vector256.LoadUnsafe(ref c1, 8);
            c20 = Vector256.LoadUnsafe(ref c2); c21 = Vector256.LoadUnsafe(ref c2, 8);
            c30 = Vector256.LoadUnsafe(ref c3); c31 = Vector256.LoadUnsafe(ref c3, 8);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector256<float>.Zero;
        }

        if (addBias)
        {
            Vector256<float> b0 = Vector256.LoadUnsafe(ref bias), b1 = Vector256.LoadUnsafe(ref bias, 8);
            c00 += b0; c01 += b1; c10 += b0; c11 += b1; c20 += b0; c21 += b1; c30 += b0; c31 += b1;
        }

        nint off = 0;
        for (int kk = kc; kk > 0; kk--)
        {
            Vector256<float> b0 = Vector256.LoadUnsafe(ref bp);
            Vector256<float> b1 = Vector256.LoadUnsafe(ref bp, 8);
            Vector256<float> x = Vector256.Create(Unsafe.Add(ref a0, off));
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(Unsafe.Add(ref a1, off));
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(Unsafe.Add(ref a2, off));
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(Unsafe.Add(ref a3, off));
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            off += aK;
            bp = ref Unsafe.Add(ref bp, 16);
        }

        c00.StoreUnsafe(ref c); c01.StoreUnsafe(ref c, 8);
        c10.StoreUnsafe(ref c1); c11.StoreUnsafe(ref c1, 8);
        c20.StoreUnsafe(ref c2); c21.StoreUnsafe(ref c2, 8);
        c30.StoreUnsafe(ref c3); c31.StoreUnsafe(ref c3, 8);
    }
}
