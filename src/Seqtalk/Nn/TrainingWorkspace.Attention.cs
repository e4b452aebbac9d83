// TrainingWorkspace.Attention: Luong attention (dot, general) and Bahdanau attention after the decoder,
// without input feeding, for all real target positions of a batch at once (not step by step). With input feeding
// (TrainingWorkspace.InputFeeding.cs) the same memory and kernels run inside the decoder loop instead.
//
// Legend: B batch, Ts source steps, H hidden, N real target positions (rows ordered by (b, t) as the output).
// Forward (Luong et al. 2015, §3.1, "global attention"; the score placed on the decoder output h_t):
//   memory m[b, s] = the top encoder layer's h after source token s of row b, s < len_b   [B, Ts, H]
//   dot:      score = h_t·m_s                      general: score = h_t·(W_a m_s)
//   bahdanau: score = vᵀ tanh(W_q h_t + W_k m_s)   (no biases; attention width H)
//   a = softmax over the row's real source tokens (padding masked); c_t = Σ_s a_s m_s
//   h̃_t = tanh(W_c [c_t; h_t])  (no bias, as in Luong's paper) → the output projection reads h̃_t.
// Backward: the same in reverse; d h̃ arrives from the output layer in _dHOut and is turned into dh_t there
// (so the decoder backward is unchanged), and d m is added to the top encoder layer's dh.
// Runs on one thread: results do not depend on the thread count.

using System.Numerics.Tensors;
using Seqtalk.Data;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

internal sealed partial class TrainingWorkspace
{
    private AttentionKind _attention;
    private ParameterSlot? _attnWa, _attnWq, _attnWk, _attnV, _attnWc;
    private float[] _mem = [], _keys = [], _dMem = [], _dKeys = [];                 // [B, Ts, H]
    private float[] _attnDecH = [], _attnQuery = [], _attnCtx = [];                // [N, H]
    private float[] _attnDQuery = [], _attnDCtx = [], _attnDPre = [];              // [N, H]
    private float[] _attnCat = [], _attnDCat = [];                                  // [N, 2H]  [c_t; h_t]
    private float[] _attnWeights = [], _attnDScores = [];                          // [N, Ts]
    private float[] _attnU = [], _attnScratch = [];                                 // [N, Ts, H] (Bahdanau), [H]
    private int[] _attnRowBatch = [];                                               // [N]

    /// <summary>Attention weights [N, Ts] of the last call (row n: real target position n in (b, t) order; 0 past
    /// the row's source length). Empty without attention.</summary>
    public ReadOnlySpan<float> LastAttentionWeights => (_inputFeeding ? _feedWeights : _attnWeights).AsSpan(0, _attention == AttentionKind.None ? 0 : _tokens * _lastSourceSteps);

    private int _lastSourceSteps;

    private void InitAttention(int maxBatch, int maxSourceSteps, int maxRows)
    {
        _attention = _model.Config.Attention;
        if (_attention == AttentionKind.None) return;
        var layout = _model.Layout;
        int h = _h, mem = checked(maxBatch * maxSourceSteps * h), rowsH = checked(maxRows * h);
        _attnWc = layout[ParameterLayout.Names.AttentionCombine];
        if (_attention == AttentionKind.General) _attnWa = layout[ParameterLayout.Names.AttentionGeneral];
        if (_attention == AttentionKind.Bahdanau)
        {
            _attnWq = layout[ParameterLayout.Names.AttentionQuery];
            _attnWk = layout[ParameterLayout.Names.AttentionKey];
            _attnV = layout[ParameterLayout.Names.AttentionScore];
            _attnQuery = new float[rowsH];
            _attnDQuery = new float[rowsH];
            _attnU = new float[checked(maxRows * maxSourceSteps * h)];
            _attnScratch = new float[h];
        }
        _mem = new float[mem]; _dMem = new float[mem];
        if (_attention != AttentionKind.Dot) { _keys = new float[mem]; _dKeys = new float[mem]; }
        _attnDecH = new float[rowsH]; _attnCtx = new float[rowsH]; _attnDCtx = new float[rowsH]; _attnDPre = new float[rowsH];
        _attnCat = new float[2 * rowsH]; _attnDCat = new float[2 * rowsH];
        _attnWeights = new float[checked(maxRows * maxSourceSteps)]; _attnDScores = new float[maxRows * maxSourceSteps];
        _attnRowBatch = new int[maxRows];
    }

    /// <summary>Reads the decoder's top h of the N real positions from _hOut and replaces them with h̃.</summary>
    private void AttentionForward(Batch batch, int n)
    {
        int bsz = batch.Size, ts = batch.SourceSteps, h = _h, slots = bsz * ts;
        BuildMemory(batch);
        ReadOnlySpan<float> mem = _mem.AsSpan(0, slots * h);
        int i = 0;
        for (int b = 0; b < bsz; b++)
        {
            for (int t = 0; t < batch.TargetLengths[b]; t++) _attnRowBatch[i++] = b;
        }
        ReadOnlySpan<int> rowBatch = _attnRowBatch.AsSpan(0, n), lengths = batch.SourceLengths.AsSpan(0, bsz);
        Span<float> decH = _attnDecH.AsSpan(0, n * h), ctx = _attnCtx.AsSpan(0, n * h), weights = _attnWeights.AsSpan(0, n * ts);
        _hOut.AsSpan(0, n * h).CopyTo(decH);
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionForward(decH, mem, mem, rowBatch, lengths, weights, ctx, ts, h, 0, n);
                break;
            case AttentionKind.General:
                // keys = m·W_aᵀ (BuildMemory), so score = h·(W_a m)
                K.DotAttentionForward(decH, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, ctx, ts, h, 0, n);
                break;
            case AttentionKind.Bahdanau:
                K.MatMulForward(decH, Param(_attnWq!), default, _attnQuery.AsSpan(0, n * h), n, h, h, 0, n);
                K.AdditiveAttentionForward(_attnQuery.AsSpan(0, n * h), _keys.AsSpan(0, slots * h), Param(_attnV!), mem, rowBatch, lengths,
                    _attnU.AsSpan(0, n * ts * h), weights, ctx, ts, h, 0, n);
                break;
        }
        // h̃ = tanh([c; h]·W_cᵀ), written where the output layer reads its rows.
        Span<float> cat = _attnCat.AsSpan(0, 2 * n * h);
        for (int r = 0; r < n; r++)
        {
            ctx.Slice(r * h, h).CopyTo(cat.Slice(2 * r * h, h));
            decH.Slice(r * h, h).CopyTo(cat.Slice((2 * r + 1) * h, h));
        }
        Span<float> hTilde = _hOut.AsSpan(0, n * h);
        K.MatMulForward(cat, Param(_attnWc!), default, hTilde, n, 2 * h, h, 0, n);
        TensorPrimitives.Tanh(hTilde, hTilde);
    }

    /// <summary>Memory [B, Ts, H] = the top encoder layer's h (row b at step s is packed row encOffset[s] + b; padding 0),
    /// and its key projection: keys = m·W_aᵀ (general) or m·W_kᵀ (Bahdanau).</summary>
    private void BuildMemory(Batch batch)
    {
        int bsz = batch.Size, ts = batch.SourceSteps, h = _h, slots = bsz * ts;
        _lastSourceSteps = ts;
        Span<float> mem = _mem.AsSpan(0, slots * h);
        mem.Clear();
        float[] top = _encH[_layers - 1];
        for (int b = 0; b < bsz; b++)
        {
            for (int s = 0; s < batch.SourceLengths[b]; s++)
                top.AsSpan((_encOffset[s] + b) * h, h).CopyTo(mem.Slice((b * ts + s) * h, h));
        }
        if (_attention is AttentionKind.General or AttentionKind.Bahdanau)
            K.MatMulForward(mem, Param(_attention == AttentionKind.General ? _attnWa! : _attnWk!), default, _keys.AsSpan(0, slots * h), slots, h, h, 0, slots);
    }

    /// <summary>Backward of the key projection of <see cref="BuildMemory"/>: dW_a (or dW_k) += dKeysᵀ·m, d m += dKeys·W.</summary>
    private void MemoryKeysBackward(Batch batch, Span<float> gradients)
    {
        if (_attention is not (AttentionKind.General or AttentionKind.Bahdanau)) return;
        int slots = batch.Size * batch.SourceSteps, h = _h;
        var w = _attention == AttentionKind.General ? _attnWa! : _attnWk!;
        ReadOnlySpan<float> dKeys = _dKeys.AsSpan(0, slots * h);
        K.MatMulBackwardWeight(dKeys, _mem.AsSpan(0, slots * h), Grad(gradients, w), default, slots, h, h, 0, h);
        K.MatMulBackwardInput(dKeys, Param(w), _dMem.AsSpan(0, slots * h), slots, h, h, 0, slots);
    }

    /// <summary>Turns d h̃ in _dHOut into dh of the decoder's top layer (in place) and leaves d m in _dMem.</summary>
    private void AttentionBackward(Batch batch, int n, Span<float> gradients)
    {
        int bsz = batch.Size, ts = batch.SourceSteps, h = _h, slots = bsz * ts;
        ReadOnlySpan<int> rowBatch = _attnRowBatch.AsSpan(0, n), lengths = batch.SourceLengths.AsSpan(0, bsz);
        ReadOnlySpan<float> mem = _mem.AsSpan(0, slots * h), decH = _attnDecH.AsSpan(0, n * h), weights = _attnWeights.AsSpan(0, n * ts);
        Span<float> dOut = _dHOut.AsSpan(0, n * h);
        // Forward was h̃ = tanh(pre): dPre = dh̃ ⊙ (1 − h̃²).
        Span<float> dPre = _attnDPre.AsSpan(0, n * h);
        ReadOnlySpan<float> hTilde = _hOut.AsSpan(0, n * h);
        TensorPrimitives.Multiply(hTilde, hTilde, dPre);
        TensorPrimitives.Subtract(1f, dPre, dPre);
        TensorPrimitives.Multiply(dPre, dOut, dPre);
        // Forward was pre = cat·W_cᵀ: dW_c += dPreᵀ·cat; dCat = dPre·W_c.
        Span<float> cat = _attnCat.AsSpan(0, 2 * n * h), dCat = _attnDCat.AsSpan(0, 2 * n * h);
        K.MatMulBackwardWeight(dPre, cat, Grad(gradients, _attnWc!), default, n, 2 * h, h, 0, h);
        dCat.Clear();
        K.MatMulBackwardInput(dPre, Param(_attnWc!), dCat, n, 2 * h, h, 0, n);
        // cat = [c; h]: split dCat into dContext and the direct part of dh (dOut now holds dh, no longer dh̃).
        Span<float> dCtx = _attnDCtx.AsSpan(0, n * h);
        for (int r = 0; r < n; r++)
        {
            dCat.Slice(2 * r * h, h).CopyTo(dCtx.Slice(r * h, h));
            dCat.Slice((2 * r + 1) * h, h).CopyTo(dOut.Slice(r * h, h));
        }
        Span<float> dMem = _dMem.AsSpan(0, slots * h), dScores = _attnDScores.AsSpan(0, n * ts);
        dMem.Clear();
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionBackward(decH, mem, mem, rowBatch, lengths, weights, dCtx, dScores, dOut, dMem, dMem, ts, h, 0, n);
                break;
            case AttentionKind.General:
                {
                    Span<float> dKeys = _dKeys.AsSpan(0, slots * h);
                    dKeys.Clear();
                    K.DotAttentionBackward(decH, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, dCtx, dScores, dOut, dKeys, dMem, ts, h, 0, n);
                    // Forward was keys = m·W_aᵀ.
                    K.MatMulBackwardWeight(dKeys, mem, Grad(gradients, _attnWa!), default, slots, h, h, 0, h);
                    K.MatMulBackwardInput(dKeys, Param(_attnWa!), dMem, slots, h, h, 0, slots);
                    break;
                }
            case AttentionKind.Bahdanau:
                {
                    Span<float> dKeys = _dKeys.AsSpan(0, slots * h), dQuery = _attnDQuery.AsSpan(0, n * h);
                    dKeys.Clear();
                    dQuery.Clear();
                    K.AdditiveAttentionBackward(Param(_attnV!), mem, rowBatch, lengths, _attnU.AsSpan(0, n * ts * h), weights, dCtx, dScores,
                        _attnScratch, Grad(gradients, _attnV!), dQuery, dKeys, dMem, ts, h, 0, n);
                    // Forward was qp = h·W_qᵀ and kp = m·W_kᵀ.
                    K.MatMulBackwardWeight(dQuery, decH, Grad(gradients, _attnWq!), default, n, h, h, 0, h);
                    K.MatMulBackwardInput(dQuery, Param(_attnWq!), dOut, n, h, h, 0, n);
                    K.MatMulBackwardWeight(dKeys, mem, Grad(gradients, _attnWk!), default, slots, h, h, 0, h);
                    K.MatMulBackwardInput(dKeys, Param(_attnWk!), dMem, slots, h, h, 0, slots);
                    break;
                }
        }
    }

    /// <summary>Adds d m (from <see cref="AttentionBackward"/>) into the top encoder layer's packed dh.</summary>
    private void AddMemoryGradient(Batch batch, Span<float> dH)
    {
        int ts = batch.SourceSteps, h = _h;
        for (int b = 0; b < batch.Size; b++)
        {
            for (int s = 0; s < batch.SourceLengths[b]; s++)
            {
                Span<float> dst = dH.Slice((_encOffset[s] + b) * h, h);
                TensorPrimitives.Add(dst, _dMem.AsSpan((b * ts + s) * h, h), dst);
            }
        }
    }
}
