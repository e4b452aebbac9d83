// Lstm: one LSTM layer run over a whole sequence, forward and backward side by side.
//
// Legend: B batch, T steps, H hidden, G = 4H, in = input width, R = rows of the sequence.
// The sequence is "packed" like torch.nn.utils.rnn.pack_padded_sequence: step t occupies rows
// [offset[t], offset[t] + count[t]) of every [R, ·] buffer, and the active rows of step t are a prefix
// of those of step t−1 (count is non-increasing). The encoder passes only real tokens this way, so a
// padded step never touches the state; the decoder passes offset[t] = t·B, count[t] = B.
// All input projections x·W_ihᵀ + b_ih + b_hh are one GEMM over R rows; only h·W_hhᵀ runs per step.
// hPrev (the h that fed each row) is stored so that dW_hh is one GEMM over R rows as well.
// Accumulation rule: parameter gradients, dX, dH, dC and the initial-state gradients are ADDED to;
// dPre is written. Backward runs the steps in exact reverse order.

using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

/// <summary>Weights of one LSTM layer (slices of the flat parameter buffer).</summary>
internal readonly ref struct LstmWeights(ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bias)
{
    public ReadOnlySpan<float> WIh { get; } = wIh;      // [G, in]
    public ReadOnlySpan<float> WHh { get; } = wHh;      // [G, H]
    public ReadOnlySpan<float> Bias { get; } = bias;    // [G]  b_ih + b_hh
}

/// <summary>Gradient slices of one LSTM layer.</summary>
internal readonly ref struct LstmGradients(Span<float> dWIh, Span<float> dWHh, Span<float> dBIh, Span<float> dBHh)
{
    public Span<float> DWIh { get; } = dWIh;
    public Span<float> DWHh { get; } = dWHh;
    public Span<float> DBIh { get; } = dBIh;
    public Span<float> DBHh { get; } = dBHh;
}

internal static class Lstm
{
    /// <summary>Runs the layer over all steps. h0, c0: [count[0], H] initial state.</summary>
    public static void Forward(
        ReadOnlySpan<float> x, int inDim, int rows,         // x [R, in]
        ReadOnlySpan<int> offset, ReadOnlySpan<int> count,  // [T]
        ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,     // [B, H]
        LstmWeights w, int hidden,
        Span<float> gates,                                  // [R, G]  pre-activations, then post-activations
        Span<float> c,                                      // [R, H]
        Span<float> h,                                      // [R, H]
        Span<float> hPrev)                                  // [R, H]  the h each row started from
    {
        int g4 = 4 * hidden;
        // pre = x·W_ihᵀ + (b_ih + b_hh) for every step at once.
        K.MatMulForward(x[..(rows * inDim)], w.WIh, w.Bias, gates[..(rows * g4)], rows, inDim, g4, 0, rows);
        for (int t = 0; t < offset.Length; t++)
        {
            int o = offset[t], n = count[t];
            if (n == 0) break;
            Span<float> hp = hPrev.Slice(o * hidden, n * hidden);
            ReadOnlySpan<float> cp;
            if (t == 0) { h0[..(n * hidden)].CopyTo(hp); cp = c0[..(n * hidden)]; }
            else { h.Slice(offset[t - 1] * hidden, n * hidden).CopyTo(hp); cp = c.Slice(offset[t - 1] * hidden, n * hidden); }
            Span<float> gt = gates.Slice(o * g4, n * g4);
            // pre += hPrev·W_hhᵀ
            K.MatMulForward(hp, w.WHh, default, gt, n, hidden, g4, 0, n, accumulate: true);
            K.LstmCellForward(gt, cp, gt, c.Slice(o * hidden, n * hidden), h.Slice(o * hidden, n * hidden), hidden, 0, n);
        }
    }

    /// <summary>Backward of <see cref="Forward"/>, in reverse step order. dH and dC hold the gradients
    /// arriving from outside (the layer above, the loss, the final state) and are consumed in place;
    /// dX, dH0, dC0 (any may be empty) and the parameter gradients are accumulated.</summary>
    public static void Backward(
        ReadOnlySpan<float> x, int inDim, int rows,
        ReadOnlySpan<int> offset, ReadOnlySpan<int> count,
        ReadOnlySpan<float> c0,                             // [B, H]
        LstmWeights w, int hidden,
        ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> hPrev,
        Span<float> dH,                                     // [R, H]
        Span<float> dC,                                     // [R, H]
        Span<float> dPre,                                   // [R, G]  scratch, written
        Span<float> dX,                                     // [R, in] or empty
        Span<float> dH0, Span<float> dC0,                   // [B, H] or empty
        Span<float> discard,                                // [B, H] scratch for a dropped dC0
        LstmGradients grads)
    {
        int g4 = 4 * hidden;
        for (int t = offset.Length - 1; t >= 0; t--)
        {
            int o = offset[t], n = count[t];
            if (n == 0) continue;
            ReadOnlySpan<float> cp;
            Span<float> dcp, dhp;
            if (t == 0)
            {
                cp = c0[..(n * hidden)];
                dcp = dC0.IsEmpty ? discard[..(n * hidden)] : dC0[..(n * hidden)];
                dhp = dH0.IsEmpty ? default : dH0[..(n * hidden)];
            }
            else
            {
                int p = offset[t - 1] * hidden;
                cp = c.Slice(p, n * hidden);
                dcp = dC.Slice(p, n * hidden);
                dhp = dH.Slice(p, n * hidden);
            }
            Span<float> dpre = dPre.Slice(o * g4, n * g4);
            // Forward was c = f⊙cPrev + i⊙g, h = o⊙tanh(c): dPre written, dcPrev accumulated.
            K.LstmCellBackward(gates.Slice(o * g4, n * g4), cp, c.Slice(o * hidden, n * hidden),
                dH.Slice(o * hidden, n * hidden), dC.Slice(o * hidden, n * hidden), dpre, dcp, hidden, 0, n);
            // Forward was pre += hPrev·W_hhᵀ: dhPrev += dPre·W_hh.
            if (!dhp.IsEmpty) K.MatMulBackwardInput(dpre, w.WHh, dhp, n, hidden, g4, 0, n);
        }
        // Forward was pre = x·W_ihᵀ + hPrev·W_hhᵀ + b_ih + b_hh, over all rows at once.
        ReadOnlySpan<float> dPreAll = dPre[..(rows * g4)];
        K.MatMulBackwardWeight(dPreAll, x[..(rows * inDim)], grads.DWIh, grads.DBIh, rows, inDim, g4, 0, g4);
        K.MatMulBackwardWeight(dPreAll, hPrev[..(rows * hidden)], grads.DWHh, grads.DBHh, rows, hidden, g4, 0, g4);
        if (!dX.IsEmpty) K.MatMulBackwardInput(dPreAll, w.WIh, dX[..(rows * inDim)], rows, inDim, g4, 0, rows);
    }
}
