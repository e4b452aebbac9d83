// Kernels.CrossEntropy: fused softmax + cross-entropy over the rows of a logits matrix.
//
// Legend: N rows (real target tokens only, gathered by the caller), V vocabulary.
// Forward:  p = exp(z − max z) / Σ exp(z − max z);  loss = log Σ exp(z − max z) − (z_y − max z).
// The row max is subtracted first (never TensorPrimitives.SoftMax: it does not, and overflows near 89);
// the denominator and the loss are accumulated in double.
// Backward: dLogits = (p − onehot(y))·scale, or with label smoothing ε (PyTorch's label_smoothing: target
// q = (1−ε)·onehot(y) + ε/V) dLogits = (p − q)·scale. dLogits is WRITTEN, not accumulated, and may be the same
// memory as probs (one producer; see docs/conventions.md).
// Reference: llm.c crossentropy_softmax_backward; derivation in docs/kernels.md.

using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Softmax probabilities, per-row loss and arg-max for rows [rowStart, rowEnd).</summary>
    /// <remarks>Effectively: probs = softmax(logits); losses[r] = −log probs[r, targets[r]];
    /// predicted[r] = first index of the row maximum. <paramref name="probs"/> may be the same memory
    /// as <paramref name="logits"/>.</remarks>
    public static void SoftmaxCrossEntropyForward(
        ReadOnlySpan<float> logits,     // [N, V]
        ReadOnlySpan<int> targets,      // [N]
        Span<float> probs,              // [N, V]
        Span<double> losses,            // [N]
        Span<int> predicted,            // [N]
        int vocab, int rowStart, int rowEnd)
    {
        Debug.Assert(logits.Length >= rowEnd * vocab && probs.Length >= rowEnd * vocab && vocab > 0);
        for (int r = rowStart; r < rowEnd; r++)
        {
            ReadOnlySpan<float> z = logits.Slice(r * vocab, vocab);
            Span<float> p = probs.Slice(r * vocab, vocab);
            int arg = TensorPrimitives.IndexOfMax(z);
            float max = z[arg];
            float zy = z[targets[r]];
            TensorPrimitives.Subtract(z, max, p);
            TensorPrimitives.Exp(p, p);
            double sum = SumToDouble(p);
            TensorPrimitives.Multiply(p, (float)(1.0 / sum), p);
            losses[r] = Math.Log(sum) - ((double)zy - max);
            predicted[r] = arg;
        }
    }

    /// <summary>dLogits = (probs − onehot(targets))·scale for rows [rowStart, rowEnd); written, may alias probs.</summary>
    public static void SoftmaxCrossEntropyBackward(
        ReadOnlySpan<float> probs,      // [N, V]
        ReadOnlySpan<int> targets,      // [N]
        Span<float> dLogits,            // [N, V]
        float scale, int vocab, int rowStart, int rowEnd)
    {
        Debug.Assert(probs.Length >= rowEnd * vocab && dLogits.Length >= rowEnd * vocab);
        for (int r = rowStart; r < rowEnd; r++)
        {
            Span<float> d = dLogits.Slice(r * vocab, vocab);
            int y = targets[r];
            float py = probs[r * vocab + y];
            TensorPrimitives.Multiply(probs.Slice(r * vocab, vocab), scale, d);
            d[y] = (py - 1f) * scale;
        }
    }

    /// <summary>dLogits = (probs − (1−ε)·onehot(targets) − ε/V)·scale for rows [rowStart, rowEnd); written, may alias probs.</summary>
    /// <remarks>The gradient of the label-smoothed cross-entropy −Σ_v q_v·log p_v; with ε = 0 it is the overload without ε.</remarks>
    public static void SoftmaxCrossEntropyBackward(
        ReadOnlySpan<float> probs,      // [N, V]
        ReadOnlySpan<int> targets,      // [N]
        Span<float> dLogits,            // [N, V]
        float scale, float smoothing, int vocab, int rowStart, int rowEnd)
    {
        if (smoothing == 0f)
        {
            SoftmaxCrossEntropyBackward(probs, targets, dLogits, scale, vocab, rowStart, rowEnd);
            return;
        }
        Debug.Assert(probs.Length >= rowEnd * vocab && dLogits.Length >= rowEnd * vocab && smoothing is > 0f and < 1f);
        float uniform = smoothing / vocab, onTarget = 1f - smoothing;
        for (int r = rowStart; r < rowEnd; r++)
        {
            Span<float> d = dLogits.Slice(r * vocab, vocab);
            int y = targets[r];
            float py = probs[r * vocab + y];
            TensorPrimitives.Subtract(probs.Slice(r * vocab, vocab), uniform, d);
            TensorPrimitives.Multiply(d, scale, d);
            d[y] = (py - onTarget - uniform) * scale;
        }
    }

    /// <summary>Σ x accumulated in double (vectorised by widening).</summary>
    internal static double SumToDouble(ReadOnlySpan<float> x)
    {
        double s = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var acc = Vector<double>.Zero;
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(x[i..]), out Vector<double> lo, out Vector<double> hi);
                acc += lo + hi;
            }
            s = Vector.Sum(acc);
        }
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    // ---- Scalar twins ----

    internal static void SoftmaxCrossEntropyForwardScalar(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets,
        Span<float> probs, Span<double> losses, Span<int> predicted, int vocab, int rowStart, int rowEnd)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            int o = r * vocab;
            float max = float.NegativeInfinity;
            int arg = 0;
            for (int v = 0; v < vocab; v++) if (logits[o + v] > max) { max = logits[o + v]; arg = v; }
            float zy = logits[o + targets[r]];
            double sum = 0;
            for (int v = 0; v < vocab; v++) { float e = MathF.Exp(logits[o + v] - max); probs[o + v] = e; sum += e; }
            float inv = (float)(1.0 / sum);
            for (int v = 0; v < vocab; v++) probs[o + v] *= inv;
            losses[r] = Math.Log(sum) - ((double)zy - max);
            predicted[r] = arg;
        }
    }

    internal static void SoftmaxCrossEntropyBackwardScalar(ReadOnlySpan<float> probs, ReadOnlySpan<int> targets,
        Span<float> dLogits, float scale, float smoothing, int vocab, int rowStart, int rowEnd)
    {
        float uniform = smoothing / vocab, onTarget = 1f - smoothing;
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int v = 0; v < vocab; v++)
            {
                float p = probs[r * vocab + v];
                dLogits[r * vocab + v] = (v == targets[r] ? p - onTarget - uniform : p - uniform) * scale;
            }
        }
    }

    internal static void SoftmaxCrossEntropyBackwardScalar(ReadOnlySpan<float> probs, ReadOnlySpan<int> targets,
        Span<float> dLogits, float scale, int vocab, int rowStart, int rowEnd)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int v = 0; v < vocab; v++)
            {
                float p = probs[r * vocab + v];
                dLogits[r * vocab + v] = (v == targets[r] ? p - 1f : p) * scale;
            }
        }
    }
}
