// Kernels.Attention: the score → masked softmax → context part of Luong (dot / general) and Bahdanau
// (additive) attention, forward and backward side by side.
//
// Legend: N query rows (real decoder positions), B batch rows, S source steps, H width.
// Memory: keys and values are [B, S, H]; query row n belongs to batch row b = rowBatch[n] and reads only
// the first lengths[b] slots of b (the source's real tokens); slots past the length are padding and are
// never read (their weights are written as 0).
//   dot-product: score[n, s] = q_n·k_{b,s}                (Luong dot: k = s; Luong general: k = W_a s)
//   additive:    u[n, s] = tanh(qp_n + kp_{b,s}); score[n, s] = v·u[n, s]   (Bahdanau; qp = W_q h, kp = W_k s)
//   a[n, ·] = softmax(score[n, ·]) over s < lengths[b] (row max subtracted, sum in double);
//   context_n = Σ_s a[n, s]·v_{b,s}.
// The matrix products around it (W_a, W_q, W_k, W_c) are MatMul calls made by the caller.
// Accumulation rule: backward ADDS into dQuery, dKeys, dValues and dV; weights, u and dScores are WRITTEN.
// Threading: rows of one batch row b write the same dKeys/dValues slots, so the backward kernels must see
// all rows of a batch row in one call; the training workspace splits the rows by chunks of whole batch rows.
// Reference: Luong et al. 2015 (arXiv:1508.04025) §3.1; Bahdanau et al. 2014 (arXiv:1409.0473) §A.1.2;
// the derivation is in docs/kernels.md.

using System.Diagnostics;
using System.Numerics.Tensors;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Dot-product attention for rows [rowStart, rowEnd).</summary>
    /// <remarks>Effectively: score[n, s] = q_n·k_{b,s}; a = softmax over the real slots; context_n = Σ_s a[n, s]·v_{b,s}.</remarks>
    public static void DotAttentionForward(
        ReadOnlySpan<float> query,      // [N, H]
        ReadOnlySpan<float> keys,       // [B, S, H]
        ReadOnlySpan<float> values,     // [B, S, H]
        ReadOnlySpan<int> rowBatch,     // [N]  batch row of each query row
        ReadOnlySpan<int> lengths,      // [B]  real source slots per batch row (≥ 1)
        Span<float> weights,            // [N, S]  written; 0 past the length
        Span<float> context,            // [N, H]  written
        int steps, int hidden, int rowStart, int rowEnd)
    {
        Debug.Assert(query.Length >= rowEnd * hidden && context.Length >= rowEnd * hidden && weights.Length >= rowEnd * steps);
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            Debug.Assert(len >= 1 && len <= steps);
            ReadOnlySpan<float> q = query.Slice(n * hidden, hidden);
            Span<float> a = weights.Slice(n * steps, steps);
            for (int s = 0; s < len; s++) a[s] = TensorPrimitives.Dot(q, keys.Slice((b * steps + s) * hidden, hidden));
            SoftmaxContext(a, values, context.Slice(n * hidden, hidden), b, len, steps, hidden);
        }
    }

    /// <summary>Backward of <see cref="DotAttentionForward"/> for rows [rowStart, rowEnd).</summary>
    /// <remarks>Forward was context = Σ_s a_s v_s: dA_s = dContext·v_s, dV_s += a_s·dContext.
    /// Forward was a = softmax(score): dScore_s = a_s (dA_s − Σ_j a_j dA_j).
    /// Forward was score_s = q·k_s: dQ += Σ_s dScore_s k_s, dK_s += dScore_s q.
    /// dKeys and dValues may be the same memory (Luong dot, where keys = values).</remarks>
    public static void DotAttentionBackward(
        ReadOnlySpan<float> query,      // [N, H]
        ReadOnlySpan<float> keys,       // [B, S, H]
        ReadOnlySpan<float> values,     // [B, S, H]
        ReadOnlySpan<int> rowBatch,     // [N]
        ReadOnlySpan<int> lengths,      // [B]
        ReadOnlySpan<float> weights,    // [N, S]  from forward
        ReadOnlySpan<float> dContext,   // [N, H]
        Span<float> dScores,            // [N, S]  written
        Span<float> dQuery,             // [N, H]  accumulated
        Span<float> dKeys,              // [B, S, H]  accumulated
        Span<float> dValues,            // [B, S, H]  accumulated
        int steps, int hidden, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            Span<float> ds = dScores.Slice(n * steps, steps);
            SoftmaxContextBackward(weights.Slice(n * steps, steps), values, dContext.Slice(n * hidden, hidden), ds, dValues, b, len, steps, hidden);
            ReadOnlySpan<float> q = query.Slice(n * hidden, hidden);
            Span<float> dq = dQuery.Slice(n * hidden, hidden);
            for (int s = 0; s < len; s++)
            {
                int slot = (b * steps + s) * hidden;
                TensorPrimitives.MultiplyAdd(keys.Slice(slot, hidden), ds[s], dq, dq);
                Span<float> dk = dKeys.Slice(slot, hidden);
                TensorPrimitives.MultiplyAdd(q, ds[s], dk, dk);
            }
        }
    }

    /// <summary>Additive (Bahdanau) attention for rows [rowStart, rowEnd).</summary>
    /// <remarks>Effectively: u[n, s] = tanh(qp_n + kp_{b,s}); score[n, s] = v·u[n, s]; a = softmax over the real slots;
    /// context_n = Σ_s a[n, s]·values_{b,s}.</remarks>
    public static void AdditiveAttentionForward(
        ReadOnlySpan<float> queryProj,  // [N, H]  W_q h
        ReadOnlySpan<float> keyProj,    // [B, S, H]  W_k s
        ReadOnlySpan<float> v,          // [H]
        ReadOnlySpan<float> values,     // [B, S, H]
        ReadOnlySpan<int> rowBatch,     // [N]
        ReadOnlySpan<int> lengths,      // [B]
        Span<float> u,                  // [N, S, H]  written (tanh cached for backward)
        Span<float> weights,            // [N, S]  written
        Span<float> context,            // [N, H]  written
        int steps, int hidden, int rowStart, int rowEnd)
    {
        Debug.Assert(v.Length >= hidden && u.Length >= rowEnd * steps * hidden);
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            ReadOnlySpan<float> qp = queryProj.Slice(n * hidden, hidden);
            Span<float> a = weights.Slice(n * steps, steps);
            for (int s = 0; s < len; s++)
            {
                Span<float> us = u.Slice((n * steps + s) * hidden, hidden);
                TensorPrimitives.Add(qp, keyProj.Slice((b * steps + s) * hidden, hidden), us);
                TensorPrimitives.Tanh(us, us);
                a[s] = TensorPrimitives.Dot(v[..hidden], us);
            }
            SoftmaxContext(a, values, context.Slice(n * hidden, hidden), b, len, steps, hidden);
        }
    }

    /// <summary>Backward of <see cref="AdditiveAttentionForward"/> for rows [rowStart, rowEnd).</summary>
    /// <remarks>After the softmax/context backward (see <see cref="DotAttentionBackward"/>):
    /// forward was score_s = v·u_s: dV += dScore_s u_s, dU_s = dScore_s v;
    /// forward was u_s = tanh(qp + kp_s): dPre_s = dU_s ⊙ (1 − u_s²); dQueryProj += Σ_s dPre_s; dKeyProj_s += dPre_s.
    /// <paramref name="scratch"/> holds one [H] row.</remarks>
    public static void AdditiveAttentionBackward(
        ReadOnlySpan<float> v,          // [H]
        ReadOnlySpan<float> values,     // [B, S, H]
        ReadOnlySpan<int> rowBatch,     // [N]
        ReadOnlySpan<int> lengths,      // [B]
        ReadOnlySpan<float> u,          // [N, S, H]  from forward
        ReadOnlySpan<float> weights,    // [N, S]  from forward
        ReadOnlySpan<float> dContext,   // [N, H]
        Span<float> dScores,            // [N, S]  written
        Span<float> scratch,            // [H]
        Span<float> dV,                 // [H]  accumulated
        Span<float> dQueryProj,         // [N, H]  accumulated
        Span<float> dKeyProj,           // [B, S, H]  accumulated
        Span<float> dValues,            // [B, S, H]  accumulated
        int steps, int hidden, int rowStart, int rowEnd)
    {
        Span<float> dpre = scratch[..hidden];
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            Span<float> ds = dScores.Slice(n * steps, steps);
            SoftmaxContextBackward(weights.Slice(n * steps, steps), values, dContext.Slice(n * hidden, hidden), ds, dValues, b, len, steps, hidden);
            Span<float> dqp = dQueryProj.Slice(n * hidden, hidden);
            for (int s = 0; s < len; s++)
            {
                ReadOnlySpan<float> us = u.Slice((n * steps + s) * hidden, hidden);
                TensorPrimitives.MultiplyAdd(us, ds[s], dV[..hidden], dV[..hidden]);
                // dPre = dScore·v ⊙ (1 − u²) = dScore·(v − v⊙u⊙u)
                TensorPrimitives.Multiply(us, us, dpre);
                TensorPrimitives.Subtract(1f, dpre, dpre);
                TensorPrimitives.Multiply(dpre, v[..hidden], dpre);
                TensorPrimitives.MultiplyAdd(dpre, ds[s], dqp, dqp);
                Span<float> dk = dKeyProj.Slice((b * steps + s) * hidden, hidden);
                TensorPrimitives.MultiplyAdd(dpre, ds[s], dk, dk);
            }
        }
    }

    // a[0..len) holds the scores on entry and the weights on exit (a[len..steps) = 0); context = Σ a_s v_{b,s}.
    private static void SoftmaxContext(Span<float> a, ReadOnlySpan<float> values, Span<float> context, int b, int len, int steps, int hidden)
    {
        Span<float> real = a[..len];
        float max = TensorPrimitives.Max(real);
        TensorPrimitives.Subtract(real, max, real);
        TensorPrimitives.Exp(real, real);
        double sum = 0;
        foreach (float e in real) sum += e;
        TensorPrimitives.Multiply(real, (float)(1.0 / sum), real);
        a[len..].Clear();
        context.Clear();
        for (int s = 0; s < len; s++)
            TensorPrimitives.MultiplyAdd(values.Slice((b * steps + s) * hidden, hidden), a[s], context, context);
    }

    // ds[s] = a_s (dA_s − Σ_j a_j dA_j) with dA_s = dContext·v_s; dValues_s += a_s dContext; ds past len = 0.
    private static void SoftmaxContextBackward(ReadOnlySpan<float> a, ReadOnlySpan<float> values, ReadOnlySpan<float> dContext,
        Span<float> ds, Span<float> dValues, int b, int len, int steps, int hidden)
    {
        double dot = 0;
        for (int s = 0; s < len; s++)
        {
            int slot = (b * steps + s) * hidden;
            ds[s] = TensorPrimitives.Dot(dContext, values.Slice(slot, hidden));
            dot += (double)a[s] * ds[s];
            Span<float> dv = dValues.Slice(slot, hidden);
            TensorPrimitives.MultiplyAdd(dContext, a[s], dv, dv);
        }
        for (int s = 0; s < len; s++) ds[s] = a[s] * (ds[s] - (float)dot);
        ds[len..steps].Clear();
    }

    // ---- Scalar twins: the same computation written plainly, checked against the kernels above. ----

    /// <summary>Scalar twin of <see cref="DotAttentionForward"/>.</summary>
    internal static void DotAttentionForwardScalar(ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        ReadOnlySpan<int> rowBatch, ReadOnlySpan<int> lengths, Span<float> weights, Span<float> context, int steps, int hidden, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            for (int s = 0; s < len; s++)
            {
                float sum = 0;
                for (int j = 0; j < hidden; j++) sum += query[n * hidden + j] * keys[(b * steps + s) * hidden + j];
                weights[n * steps + s] = sum;
            }
            SoftmaxContextScalar(weights.Slice(n * steps, steps), values, context.Slice(n * hidden, hidden), b, len, steps, hidden);
        }
    }

    /// <summary>Scalar twin of <see cref="DotAttentionBackward"/>.</summary>
    internal static void DotAttentionBackwardScalar(ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        ReadOnlySpan<int> rowBatch, ReadOnlySpan<int> lengths, ReadOnlySpan<float> weights, ReadOnlySpan<float> dContext,
        Span<float> dScores, Span<float> dQuery, Span<float> dKeys, Span<float> dValues, int steps, int hidden, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            SoftmaxContextBackwardScalar(weights.Slice(n * steps, steps), values, dContext.Slice(n * hidden, hidden), dScores.Slice(n * steps, steps), dValues, b, len, steps, hidden);
            for (int s = 0; s < len; s++)
            {
                float ds = dScores[n * steps + s];
                for (int j = 0; j < hidden; j++)
                {
                    int k = (b * steps + s) * hidden + j;
                    dQuery[n * hidden + j] += ds * keys[k];
                    dKeys[k] += ds * query[n * hidden + j];
                }
            }
        }
    }

    /// <summary>Scalar twin of <see cref="AdditiveAttentionForward"/>.</summary>
    internal static void AdditiveAttentionForwardScalar(ReadOnlySpan<float> queryProj, ReadOnlySpan<float> keyProj, ReadOnlySpan<float> v,
        ReadOnlySpan<float> values, ReadOnlySpan<int> rowBatch, ReadOnlySpan<int> lengths, Span<float> u, Span<float> weights, Span<float> context,
        int steps, int hidden, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            for (int s = 0; s < len; s++)
            {
                float sum = 0;
                for (int j = 0; j < hidden; j++)
                {
                    float x = MathF.Tanh(queryProj[n * hidden + j] + keyProj[(b * steps + s) * hidden + j]);
                    u[(n * steps + s) * hidden + j] = x;
                    sum += v[j] * x;
                }
                weights[n * steps + s] = sum;
            }
            SoftmaxContextScalar(weights.Slice(n * steps, steps), values, context.Slice(n * hidden, hidden), b, len, steps, hidden);
        }
    }

    /// <summary>Scalar twin of <see cref="AdditiveAttentionBackward"/>.</summary>
    internal static void AdditiveAttentionBackwardScalar(ReadOnlySpan<float> v, ReadOnlySpan<float> values, ReadOnlySpan<int> rowBatch,
        ReadOnlySpan<int> lengths, ReadOnlySpan<float> u, ReadOnlySpan<float> weights, ReadOnlySpan<float> dContext, Span<float> dScores,
        Span<float> dV, Span<float> dQueryProj, Span<float> dKeyProj, Span<float> dValues, int steps, int hidden, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
        {
            int b = rowBatch[n], len = lengths[b];
            SoftmaxContextBackwardScalar(weights.Slice(n * steps, steps), values, dContext.Slice(n * hidden, hidden), dScores.Slice(n * steps, steps), dValues, b, len, steps, hidden);
            for (int s = 0; s < len; s++)
            {
                float ds = dScores[n * steps + s];
                for (int j = 0; j < hidden; j++)
                {
                    float x = u[(n * steps + s) * hidden + j];
                    dV[j] += ds * x;
                    float dpre = ds * v[j] * (1 - x * x);
                    dQueryProj[n * hidden + j] += dpre;
                    dKeyProj[(b * steps + s) * hidden + j] += dpre;
                }
            }
        }
    }

    private static void SoftmaxContextScalar(Span<float> a, ReadOnlySpan<float> values, Span<float> context, int b, int len, int steps, int hidden)
    {
        float max = float.NegativeInfinity;
        for (int s = 0; s < len; s++) max = MathF.Max(max, a[s]);
        double sum = 0;
        for (int s = 0; s < len; s++) { a[s] = MathF.Exp(a[s] - max); sum += a[s]; }
        for (int s = 0; s < len; s++) a[s] = (float)(a[s] / sum);
        for (int s = len; s < steps; s++) a[s] = 0;
        for (int j = 0; j < hidden; j++)
        {
            float c = 0;
            for (int s = 0; s < len; s++) c += a[s] * values[(b * steps + s) * hidden + j];
            context[j] = c;
        }
    }

    private static void SoftmaxContextBackwardScalar(ReadOnlySpan<float> a, ReadOnlySpan<float> values, ReadOnlySpan<float> dContext,
        Span<float> ds, Span<float> dValues, int b, int len, int steps, int hidden)
    {
        double dot = 0;
        for (int s = 0; s < len; s++)
        {
            float da = 0;
            for (int j = 0; j < hidden; j++)
            {
                int k = (b * steps + s) * hidden + j;
                da += dContext[j] * values[k];
                dValues[k] += a[s] * dContext[j];
            }
            ds[s] = da;
            dot += (double)a[s] * da;
        }
        for (int s = 0; s < len; s++) ds[s] = a[s] * (ds[s] - (float)dot);
        for (int s = len; s < steps; s++) ds[s] = 0;
    }
}
