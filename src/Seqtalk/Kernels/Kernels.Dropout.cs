// Kernels.Dropout: inverted dropout with counter-based masks.
//
// Legend: R rows, W row width, p drop probability.
// Mask: mask[r, j] = keep(r, j) ? 1/(1−p) : 0, where keep is a pure function of (key, rowKeys[r]·W + j):
//   u = Mix32(Mix32(index ^ keyLo) + keyHi);  keep = u ≥ ⌊p·2³²⌋
// Mix32 is Chris Wellons' "lowbias32" integer hash (public domain, github.com/skeeto/hash-prospector);
// the 64-bit key comes from SplitMix64 (Steele, Lea, Flood 2014; public domain reference by Vigna)
// applied to (seed, global step, tensor id), see DropoutKey. No RNG state exists: the mask of any
// element can be recomputed from those four numbers, so it does not depend on the thread count, on the
// order rows are processed in, or on anything a checkpoint would have to store besides the step.
// Forward:  y = x ⊙ mask.   Backward: dx = dy ⊙ mask (the mask is the local derivative).
// Both WRITE their output and may run in place (y = x, dx = dy): the caller overwrites activations with
// their dropped version and activation gradients with the gradients before dropout.
// Reference: Srivastava et al. 2014; torch.nn.functional.dropout (inverted scaling 1/(1−p)).

using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>The 64-bit mask key of one tensor at one training step: SplitMix64 over (seed, step, tensor).</summary>
    public static ulong DropoutKey(ulong seed, long step, int tensor) =>
        SplitMix64(SplitMix64(SplitMix64(seed) ^ (ulong)step) ^ (uint)tensor);

    /// <summary>SplitMix64's output function of <paramref name="z"/> + golden gamma.</summary>
    internal static ulong SplitMix64(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>lowbias32: a 32-bit integer hash with low bias (Wellons).</summary>
    internal static uint Mix32(uint x)
    {
        x ^= x >> 16;
        x *= 0x7FEB352DU;
        x ^= x >> 15;
        x *= 0x846CA68BU;
        x ^= x >> 16;
        return x;
    }

    /// <summary>The keep threshold on a uniform 32-bit value for drop probability p (kept iff u ≥ threshold).</summary>
    internal static uint DropoutThreshold(float p) => p <= 0f ? 0U : p >= 1f ? uint.MaxValue : (uint)Math.Min(uint.MaxValue, Math.Floor(p * 4294967296.0));

    /// <summary>Fills rows [rowStart, rowEnd) of a [R, W] mask: 1/(1−p) where the element is kept, 0 where dropped.</summary>
    /// <remarks>Effectively mask[r·W + j] = Mix32(Mix32((uint)(rowKeys[r]·W + j) ^ keyLo) + keyHi) ≥ ⌊p·2³²⌋ ? 1/(1−p) : 0.
    /// The element index comes from <paramref name="rowKeys"/> (a logical position such as t·B + b), not from
    /// the row's place in the buffer, so masks do not depend on how rows are packed.</remarks>
    public static void DropoutMask(
        ulong key,
        ReadOnlySpan<int> rowKeys,  // [R]
        Span<float> mask,           // [R, W]
        float p, int width, int rowStart, int rowEnd)
    {
        Debug.Assert(p is >= 0f and < 1f && rowKeys.Length >= rowEnd && mask.Length >= (long)rowEnd * width);
        uint keyLo = (uint)key, keyHi = (uint)(key >> 32), threshold = DropoutThreshold(p);
        float scale = 1f / (1f - p);
        for (int r = rowStart; r < rowEnd; r++)
        {
            Span<float> row = mask.Slice(r * width, width);
            uint first = unchecked((uint)rowKeys[r] * (uint)width);
            int j = 0;
            if (Vector.IsHardwareAccelerated && width >= Vector<uint>.Count)
            {
                var lane = Vector<uint>.Indices;
                var vLo = new Vector<uint>(keyLo);
                var vHi = new Vector<uint>(keyHi);
                var vThreshold = new Vector<uint>(threshold);
                var vScale = new Vector<float>(scale);
                for (; j <= width - Vector<uint>.Count; j += Vector<uint>.Count)
                {
                    var index = new Vector<uint>(first + (uint)j) + lane;
                    var u = Mix32(Mix32(index ^ vLo) + vHi);
                    var keep = Vector.GreaterThanOrEqual(u, vThreshold);
                    Vector.ConditionalSelect(Vector.AsVectorSingle(keep), vScale, Vector<float>.Zero).CopyTo(row[j..]);
                }
            }
            for (; j < width; j++)
                row[j] = Mix32(Mix32((first + (uint)j) ^ keyLo) + keyHi) >= threshold ? scale : 0f;
        }
    }

    private static Vector<uint> Mix32(Vector<uint> x)
    {
        x ^= Vector.ShiftRightLogical(x, 16);
        x *= new Vector<uint>(0x7FEB352DU);
        x ^= Vector.ShiftRightLogical(x, 15);
        x *= new Vector<uint>(0x846CA68BU);
        x ^= Vector.ShiftRightLogical(x, 16);
        return x;
    }

    /// <summary>y = x ⊙ mask over the whole span; written, may be the same memory as x.</summary>
    public static void DropoutForward(
        ReadOnlySpan<float> x,      // [R, W]
        ReadOnlySpan<float> mask,   // [R, W]
        Span<float> y)              // [R, W]
    {
        Debug.Assert(mask.Length >= x.Length && y.Length >= x.Length);
        TensorPrimitives.Multiply(x, mask[..x.Length], y[..x.Length]);
    }

    /// <summary>dx = dy ⊙ mask over the whole span (forward was y = x ⊙ mask, so ∂y/∂x = mask); written, may alias dy.</summary>
    public static void DropoutBackward(
        ReadOnlySpan<float> dy,     // [R, W]
        ReadOnlySpan<float> mask,   // [R, W]
        Span<float> dx)             // [R, W]
    {
        Debug.Assert(mask.Length >= dy.Length && dx.Length >= dy.Length);
        TensorPrimitives.Multiply(dy, mask[..dy.Length], dx[..dy.Length]);
    }

    // ---- Scalar twins ----

    internal static void DropoutMaskScalar(ulong key, ReadOnlySpan<int> rowKeys, Span<float> mask, float p, int width, int rowStart, int rowEnd)
    {
        uint keyLo = (uint)key, keyHi = (uint)(key >> 32), threshold = DropoutThreshold(p);
        float scale = 1f / (1f - p);
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int j = 0; j < width; j++)
            {
                uint index = unchecked((uint)rowKeys[r] * (uint)width + (uint)j);
                mask[r * width + j] = Mix32(Mix32(index ^ keyLo) + keyHi) >= threshold ? scale : 0f;
            }
        }
    }

    internal static void DropoutForwardScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * mask[i];
    }

    internal static void DropoutBackwardScalar(ReadOnlySpan<float> dy, ReadOnlySpan<float> mask, Span<float> dx)
    {
        for (int i = 0; i < dy.Length; i++) dx[i] = dy[i] * mask[i];
    }
}
