// TrainingWorkspace.InputFeeding: Luong input feeding (ModelConfig.InputFeeding; Luong et al. 2015, §3.3).
//
// Legend: B batch, Ts source steps, E embedding, H hidden, G = 4H, L layers, F = E + H (layer 0's input width),
// Rdec real target positions packed by step (the decoder plan of TrainingWorkspace.cs: step t holds rows
// [offset[t], offset[t] + count[t]), slot j ↔ batch row _decOrder[j], and step t's slots are a prefix of step t−1's).
// Forward: the attentional vector of the previous step is part of the decoder's input,
//   x_t = [emb(y_{t−1}); h̃_{t−1}]   (h̃_{−1} = 0; dec.l0.w_ih is [4H, E + H], embedding columns first, as OpenNMT)
//   h_t = LSTM stack(x_t, state);  h̃_t = tanh(W_c [c_t; h_t]) with c_t the attention context over the encoder outputs,
// so attention runs inside the decoder loop, step by step (step-major: every layer, then attention, then the next
// step), instead of once after the decoder. The same kernels as the batched path: one MatMul per step and layer for
// x·W_ihᵀ and h·W_hhᵀ, LstmCellForward, the attention kernels on the step's rows (query row j reads batch row
// _decOrder[j]'s memory), one MatMul for W_c. Everything backward needs is kept per packed row.
// Backward, steps in exact reverse order: dh̃_t = (from the output layer) + (from x_{t+1}'s h̃ columns); attention
// backward gives dh of the top layer at step t; the layers' cell backward runs top to bottom; layer 0's dx splits into
// the embedding's gradient and dh̃_{t−1}. The weight gradients (W_ih, W_hh, biases, W_c, W_q) are one GEMM each over
// all rows after the loop, as in Lstm.Backward. Accumulation rules as everywhere: parameter gradients are ADDED.
// Runs on one thread, so results do not depend on the thread count.
// Dropout: the same sites and masks as without input feeding (TrainingWorkspace.Regularization.cs), applied step by
// step to copies, never to the recurrent h: the decoder embedding (before it enters x_t), the input of layer k > 0
// (mask 32 + k − 1 on layer k − 1's h) and the attention query (mask 2 on the top h, so h̃ is not dropped). Each mask
// is made once per call over the packed rows, keyed by (t·B + b) like every other mask.

using System.Numerics.Tensors;
using Seqtalk.Data;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

internal sealed partial class TrainingWorkspace
{
    private bool _inputFeeding;
    private int _feedIn;                                         // F = E + H
    private float[] _feedX = [];                                 // [Rdec, F]  layer 0's input [emb; h̃_{t−1}]
    private float[] _feedHt = [], _feedDHt = [];                 // [Rdec, H]  h̃ and its gradient, per packed row
    private float[][] _feedDH = [], _feedDC = [];                // per layer [Rdec, H]
    private float[][] _feedDPre = [];                            // per layer [Rdec, G]
    private float[] _feedDX = [];                                // [B, F]  one step's d x of layer 0
    private float[] _feedWeights = [];                           // [N, Ts]  attention weights in (b, t) order
    private float[][] _feedDropped = [];                         // dropout only: per layer [Rdec, H], layer k's dropped input (k ≥ 1)
    private float[] _feedQuery = [];                             // dropout only: [Rdec, H] the dropped attention query
    private float[] _feedDQ = [];                                // [B, H] scratch: d of a dropped copy, before its mask

    private void InitInputFeeding(int maxRows)
    {
        _inputFeeding = _model.Config.InputFeeding;
        if (!_inputFeeding) return;
        _feedIn = _e + _h;
        _feedX = new float[checked(maxRows * _feedIn)];
        _feedHt = new float[maxRows * _h]; _feedDHt = new float[maxRows * _h];
        _feedDH = Jagged(_layers, maxRows * _h); _feedDC = Jagged(_layers, maxRows * _h);
        _feedDPre = Jagged(_layers, checked(maxRows * _g));
        _feedDX = new float[_maxBatch * _feedIn];
        _feedWeights = new float[checked(maxRows * _maxSourceSteps)];
        _feedDQ = new float[_maxBatch * _h];
    }

    /// <summary>The input of decoder layer k at packed rows [o, o + n): layer k − 1's h, or its dropped copy.</summary>
    private Span<float> FeedInput(int k, int o, int n) => (_dropping ? _feedDropped[k] : _decH[k - 1]).AsSpan(o * _h, n * _h);

    /// <summary>The attention query at packed rows [o, o + n): the top layer's h, or its dropped copy.</summary>
    private Span<float> FeedQuery(int o, int n) => (_dropping ? _feedQuery : _decH[_layers - 1]).AsSpan(o * _h, n * _h);

    /// <summary>Makes the decoder's dropout masks over all packed rows (keys t·B + b), for the step loop to apply.</summary>
    private void PrepareFeedMasks(int rowsDec, int batchSize)
    {
        if (!_dropping) return;
        if (_feedQuery.Length == 0)
        {
            _feedQuery = new float[_decH[0].Length];
            _feedDropped = Jagged(_layers, _decH[0].Length);
        }
        FillMask(DropoutTensor.DecoderOutput, _maskOut!, _decKeys!, rowsDec, _h, batchSize);
        for (int k = 1; k < _layers; k++) FillMask(DropoutTensor.DecoderLayer(k - 1), _maskDecH![k - 1], _decKeys!, rowsDec, _h, batchSize);
    }

    /// <summary>dst += d ⊙ mask (rows [o, o + n) of the mask): the gradient through a dropped copy.</summary>
    private void AddMasked(Span<float> dst, ReadOnlySpan<float> d, float[] mask, int o, int n)
    {
        Span<float> scratch = _feedDQ.AsSpan(0, n * _h);
        TensorPrimitives.Multiply(d, mask.AsSpan(o * _h, n * _h), scratch);
        TensorPrimitives.Add(dst, scratch, dst);
    }

    /// <summary>The decoder with input feeding over the packed plan: reads _decX [Rdec, E] (embeddings), fills every
    /// layer's gates/c/h/hPrev and _feedHt (h̃ per packed row).</summary>
    private void InputFeedingForward(Batch batch, int rowsDec, ReadOnlySpan<int> offset, ReadOnlySpan<int> count)
    {
        int h = _h, e = _e, f = _feedIn, ts = batch.SourceSteps;
        BuildMemory(batch);
        PrepareFeedMasks(rowsDec, batch.Size);
        for (int r = 0; r < rowsDec; r++) _decX.AsSpan(r * e, e).CopyTo(_feedX.AsSpan(r * f, e));
        for (int t = 0; t < offset.Length; t++)
        {
            int o = offset[t], n = count[t];
            if (n == 0) break;
            // x_t = [emb; h̃_{t−1}]: slot j at step t was slot j at step t−1 (a prefix).
            for (int j = 0; j < n; j++)
            {
                Span<float> fed = _feedX.AsSpan((o + j) * f + e, h);
                if (t == 0) fed.Clear();
                else _feedHt.AsSpan((offset[t - 1] + j) * h, h).CopyTo(fed);
            }
            for (int k = 0; k < _layers; k++)
            {
                var w = Weights(_decSlots[k], _bias[_layers + k]);
                int inDim = k == 0 ? f : h, g4 = _g;
                if (k > 0 && _dropping)
                    TensorPrimitives.Multiply(_decH[k - 1].AsSpan(o * h, n * h), _maskDecH![k - 1].AsSpan(o * h, n * h), FeedInput(k, o, n));
                ReadOnlySpan<float> x = k == 0 ? _feedX.AsSpan(o * f, n * f) : FeedInput(k, o, n);
                Span<float> gt = _decGates[k].AsSpan(o * g4, n * g4), hp = _decHPrev[k].AsSpan(o * h, n * h);
                ReadOnlySpan<float> cp;
                if (t == 0) { _h0[k].AsSpan(0, n * h).CopyTo(hp); cp = _c0[k].AsSpan(0, n * h); }
                else { _decH[k].AsSpan(offset[t - 1] * h, n * h).CopyTo(hp); cp = _decC[k].AsSpan(offset[t - 1] * h, n * h); }
                // pre = x·W_ihᵀ + (b_ih + b_hh) + hPrev·W_hhᵀ
                K.MatMulForward(x, w.WIh, w.Bias, gt, n, inDim, g4, 0, n);
                K.MatMulForward(hp, w.WHh, default, gt, n, h, g4, 0, n, accumulate: true);
                K.LstmCellForward(gt, cp, gt, _decC[k].AsSpan(o * h, n * h), _decH[k].AsSpan(o * h, n * h), h, 0, n);
            }
            if (_dropping) TensorPrimitives.Multiply(_decH[_layers - 1].AsSpan(o * h, n * h), _maskOut!.AsSpan(o * h, n * h), FeedQuery(o, n));
            AttendRows(batch, o, n, ts);
        }
    }

    /// <summary>Attention for the n rows of one step starting at packed row o: query = the top layer's h; writes the
    /// weights, context, [c; h] and h̃ = tanh(W_c [c; h]) of those rows.</summary>
    private void AttendRows(Batch batch, int o, int n, int ts)
    {
        int h = _h, slots = batch.Size * ts;
        ReadOnlySpan<int> rowBatch = _decOrder.AsSpan(0, batch.Size), lengths = batch.SourceLengths.AsSpan(0, batch.Size);
        ReadOnlySpan<float> q = FeedQuery(o, n), mem = _mem.AsSpan(0, slots * h);
        Span<float> ctx = _attnCtx.AsSpan(o * h, n * h), weights = _attnWeights.AsSpan(o * ts, n * ts);
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionForward(q, mem, mem, rowBatch, lengths, weights, ctx, ts, h, 0, n);
                break;
            case AttentionKind.General:
                K.DotAttentionForward(q, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, ctx, ts, h, 0, n);
                break;
            case AttentionKind.Bahdanau:
                K.MatMulForward(q, Param(_attnWq!), default, _attnQuery.AsSpan(o * h, n * h), n, h, h, 0, n);
                K.AdditiveAttentionForward(_attnQuery.AsSpan(o * h, n * h), _keys.AsSpan(0, slots * h), Param(_attnV!), mem, rowBatch, lengths,
                    _attnU.AsSpan(o * ts * h, n * ts * h), weights, ctx, ts, h, 0, n);
                break;
        }
        Span<float> cat = _attnCat.AsSpan(2 * o * h, 2 * n * h);
        for (int j = 0; j < n; j++)
        {
            ctx.Slice(j * h, h).CopyTo(cat.Slice(2 * j * h, h));
            q.Slice(j * h, h).CopyTo(cat.Slice((2 * j + 1) * h, h));
        }
        Span<float> hTilde = _feedHt.AsSpan(o * h, n * h);
        K.MatMulForward(cat, Param(_attnWc!), default, hTilde, n, 2 * h, h, 0, n);
        TensorPrimitives.Tanh(hTilde, hTilde);
    }

    /// <summary>Backward of <see cref="InputFeedingForward"/> and of the attention in it: reads d h̃ of the N real
    /// positions from _dHOut; leaves d embedding in _dA [Rdec, E], the initial-state gradients in _dH0/_dC0 and
    /// d memory in _dMem.</summary>
    private void InputFeedingBackward(Batch batch, int n, int rowsDec, ReadOnlySpan<int> offset, ReadOnlySpan<int> count, Span<float> gradients)
    {
        int h = _h, e = _e, f = _feedIn, g4 = _g, ts = batch.SourceSteps, slots = batch.Size * ts;
        Span<float> dHt = _feedDHt.AsSpan(0, rowsDec * h);
        dHt.Clear();
        for (int i = 0; i < n; i++)
        {
            Span<float> dst = dHt.Slice(_outRows[i] * h, h);
            TensorPrimitives.Add(dst, _dHOut.AsSpan(i * h, h), dst);
        }
        for (int k = 0; k < _layers; k++)
        {
            _feedDH[k].AsSpan(0, rowsDec * h).Clear();
            _feedDC[k].AsSpan(0, rowsDec * h).Clear();
            Array.Clear(_dH0[k]); Array.Clear(_dC0[k]);
        }
        _dMem.AsSpan(0, slots * h).Clear();
        if (_attention != AttentionKind.Dot) _dKeys.AsSpan(0, slots * h).Clear();
        if (_attention == AttentionKind.Bahdanau) _attnDQuery.AsSpan(0, rowsDec * h).Clear();

        for (int t = offset.Length - 1; t >= 0; t--)
        {
            int o = offset[t], rows = count[t];
            if (rows == 0) continue;
            AttendRowsBackward(batch, o, rows, ts, gradients);   // d h̃_t → dh of the top layer at step t, d memory
            for (int k = _layers - 1; k >= 0; k--)
            {
                var w = Weights(_decSlots[k], _bias[_layers + k]);
                ReadOnlySpan<float> cp;
                Span<float> dcp, dhp;
                if (t == 0)
                {
                    cp = _c0[k].AsSpan(0, rows * h);
                    dcp = _dC0[k].AsSpan(0, rows * h);
                    dhp = _dH0[k].AsSpan(0, rows * h);
                }
                else
                {
                    int p = offset[t - 1] * h;
                    cp = _decC[k].AsSpan(p, rows * h);
                    dcp = _feedDC[k].AsSpan(p, rows * h);
                    dhp = _feedDH[k].AsSpan(p, rows * h);
                }
                Span<float> dpre = _feedDPre[k].AsSpan(o * g4, rows * g4);
                // Forward was c = f⊙cPrev + i⊙g, h = o⊙tanh(c): dPre written, dcPrev accumulated.
                K.LstmCellBackward(_decGates[k].AsSpan(o * g4, rows * g4), cp, _decC[k].AsSpan(o * h, rows * h),
                    _feedDH[k].AsSpan(o * h, rows * h), _feedDC[k].AsSpan(o * h, rows * h), dpre, dcp, h, 0, rows);
                // Forward was pre = x·W_ihᵀ + hPrev·W_hhᵀ + b: dhPrev += dPre·W_hh; dx = dPre·W_ih.
                K.MatMulBackwardInput(dpre, w.WHh, dhp, rows, h, g4, 0, rows);
                if (k > 0)
                {
                    if (!_dropping) K.MatMulBackwardInput(dpre, w.WIh, _feedDH[k - 1].AsSpan(o * h, rows * h), rows, h, g4, 0, rows);
                    else
                    {
                        // The layer read a dropped copy of layer k − 1's h: d copy, then through its mask.
                        Span<float> dCopy = _feedDX.AsSpan(0, rows * h);
                        dCopy.Clear();
                        K.MatMulBackwardInput(dpre, w.WIh, dCopy, rows, h, g4, 0, rows);
                        AddMasked(_feedDH[k - 1].AsSpan(o * h, rows * h), dCopy, _maskDecH![k - 1], o, rows);
                    }
                    continue;
                }
                Span<float> dx = _feedDX.AsSpan(0, rows * f);
                dx.Clear();
                K.MatMulBackwardInput(dpre, w.WIh, dx, rows, f, g4, 0, rows);
                // x = [emb; h̃_{t−1}]: the embedding part goes to the embedding, the rest to h̃ of step t−1 (h̃_{−1} = 0).
                for (int j = 0; j < rows; j++)
                {
                    dx.Slice(j * f, e).CopyTo(_dA.AsSpan((o + j) * e, e));
                    if (t == 0) continue;
                    Span<float> dst = dHt.Slice((offset[t - 1] + j) * h, h);
                    TensorPrimitives.Add(dst, dx.Slice(j * f + e, h), dst);
                }
            }
        }

        // Weight gradients over all rows at once (the forward's per-step products, summed).
        for (int k = 0; k < _layers; k++)
        {
            int inDim = k == 0 ? f : h;
            ReadOnlySpan<float> dPreAll = _feedDPre[k].AsSpan(0, rowsDec * g4);
            ReadOnlySpan<float> x = k == 0 ? _feedX.AsSpan(0, rowsDec * f) : FeedInput(k, 0, rowsDec);
            var grads = Grads(gradients, _decSlots[k]);
            K.MatMulBackwardWeight(dPreAll, x, grads.DWIh, grads.DBIh, rowsDec, inDim, g4, 0, g4);
            K.MatMulBackwardWeight(dPreAll, _decHPrev[k].AsSpan(0, rowsDec * h), grads.DWHh, grads.DBHh, rowsDec, h, g4, 0, g4);
        }
        // Forward was pre = [c; h]·W_cᵀ per row.
        K.MatMulBackwardWeight(_attnDPre.AsSpan(0, rowsDec * h), _attnCat.AsSpan(0, 2 * rowsDec * h), Grad(gradients, _attnWc!), default, rowsDec, 2 * h, h, 0, h);
        MemoryKeysBackward(batch, gradients);
        if (_attention == AttentionKind.Bahdanau)
        {
            // Forward was qp = h·W_qᵀ per row (its input gradient went into the top layer's dh step by step).
            K.MatMulBackwardWeight(_attnDQuery.AsSpan(0, rowsDec * h), FeedQuery(0, rowsDec), Grad(gradients, _attnWq!), default,
                rowsDec, h, h, 0, h);
        }
    }

    /// <summary>Backward of <see cref="AttendRows"/> for one step's rows: d h̃ in _feedDHt → dh added into the top
    /// layer's _feedDH; d memory / d keys accumulated; dPre of W_c (and d qp for Bahdanau) kept per row.</summary>
    private void AttendRowsBackward(Batch batch, int o, int n, int ts, Span<float> gradients)
    {
        int h = _h, slots = batch.Size * ts;
        ReadOnlySpan<int> rowBatch = _decOrder.AsSpan(0, batch.Size), lengths = batch.SourceLengths.AsSpan(0, batch.Size);
        ReadOnlySpan<float> q = FeedQuery(o, n), mem = _mem.AsSpan(0, slots * h), weights = _attnWeights.AsSpan(o * ts, n * ts);
        // d query: straight into the top layer's dh, or (dropout) into a scratch that then goes through the mask.
        Span<float> dTop = _dropping ? _feedDX.AsSpan(0, n * h) : _feedDH[_layers - 1].AsSpan(o * h, n * h);
        if (_dropping) dTop.Clear();
        // Forward was h̃ = tanh(pre): dPre = dh̃ ⊙ (1 − h̃²).
        Span<float> dPre = _attnDPre.AsSpan(o * h, n * h);
        ReadOnlySpan<float> hTilde = _feedHt.AsSpan(o * h, n * h);
        TensorPrimitives.Multiply(hTilde, hTilde, dPre);
        TensorPrimitives.Subtract(1f, dPre, dPre);
        TensorPrimitives.Multiply(dPre, _feedDHt.AsSpan(o * h, n * h), dPre);
        // Forward was pre = cat·W_cᵀ: dCat = dPre·W_c, split into dContext and the direct part of dh.
        Span<float> dCat = _attnDCat.AsSpan(2 * o * h, 2 * n * h), dCtx = _attnDCtx.AsSpan(o * h, n * h);
        dCat.Clear();
        K.MatMulBackwardInput(dPre, Param(_attnWc!), dCat, n, 2 * h, h, 0, n);
        for (int j = 0; j < n; j++)
        {
            dCat.Slice(2 * j * h, h).CopyTo(dCtx.Slice(j * h, h));
            Span<float> dst = dTop.Slice(j * h, h);
            TensorPrimitives.Add(dst, dCat.Slice((2 * j + 1) * h, h), dst);
        }
        Span<float> dMem = _dMem.AsSpan(0, slots * h), dScores = _attnDScores.AsSpan(o * ts, n * ts);
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionBackward(q, mem, mem, rowBatch, lengths, weights, dCtx, dScores, dTop, dMem, dMem, ts, h, 0, n);
                break;
            case AttentionKind.General:
                K.DotAttentionBackward(q, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, dCtx, dScores, dTop, _dKeys.AsSpan(0, slots * h), dMem, ts, h, 0, n);
                break;
            case AttentionKind.Bahdanau:
                {
                    Span<float> dQuery = _attnDQuery.AsSpan(o * h, n * h);
                    K.AdditiveAttentionBackward(Param(_attnV!), mem, rowBatch, lengths, _attnU.AsSpan(o * ts * h, n * ts * h), weights, dCtx, dScores,
                        _attnScratch, Grad(gradients, _attnV!), dQuery, _dKeys.AsSpan(0, slots * h), dMem, ts, h, 0, n);
                    // Forward was qp = h·W_qᵀ: dh += dqp·W_q.
                    K.MatMulBackwardInput(dQuery, Param(_attnWq!), dTop, n, h, h, 0, n);
                    break;
                }
        }
        if (_dropping) AddMasked(_feedDH[_layers - 1].AsSpan(o * h, n * h), dTop, _maskOut!, o, n);
    }
}
