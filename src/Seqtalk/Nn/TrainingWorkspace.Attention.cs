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
// Threads: the work is cut into items fixed by the batch's shape, never by the thread count. Row work (memory and
// keys, scores, softmax, context, h̃, and their backward) is cut by chunks of AttentionBatchChunk batch rows: a batch
// row's target rows and source slots belong to one item, so the backward's sums into d keys and d memory (over the
// target rows of a batch row) keep their order. Weight gradients are cut by blocks of AttentionWeightRows output
// rows, each block summing over all rows in order. Every such split gives the bits of the whole call (the GEMM's
// results do not depend on the row or output range), so 1 and N threads agree bit for bit. Bahdanau's dv, a sum
// over all rows, is summed per chunk and the chunks' sums are added in chunk order.

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
    private int[] _attnRowStart = [];                                               // [B + 1]: first row n of batch row b
    private float[] _attnChunkDV = [];                                              // [chunks, H] Bahdanau dv per chunk

    /// <summary>Batch rows per item of the attention's row work (fixed: results do not depend on the thread count).</summary>
    internal const int AttentionBatchChunk = 8;

    /// <summary>Output rows per item of the attention's weight gradients.</summary>
    internal const int AttentionWeightRows = 64;

    private enum AttentionSection { Memory, Forward, Backward, Gradients }

    private AttentionSection _attnSection;
    private Action<int>? _attnBody;
    private Batch? _attnBatch;
    private int _attnN, _attnWeightBlocks, _attnCombineItems, _attnQueryItems, _attnKeyItems;
    private unsafe float* _attnGrad;
    private int _attnGradLength;

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
            int chunks = Chunks(maxBatch);
            _attnScratch = new float[chunks * h];   // one [H] row per chunk
            _attnChunkDV = new float[chunks * h];
        }
        _mem = new float[mem]; _dMem = new float[mem];
        if (_attention != AttentionKind.Dot) { _keys = new float[mem]; _dKeys = new float[mem]; }
        _attnDecH = new float[rowsH]; _attnCtx = new float[rowsH]; _attnDCtx = new float[rowsH]; _attnDPre = new float[rowsH];
        _attnCat = new float[2 * rowsH]; _attnDCat = new float[2 * rowsH];
        _attnWeights = new float[checked(maxRows * maxSourceSteps)]; _attnDScores = new float[maxRows * maxSourceSteps];
        _attnRowBatch = new int[maxRows];
        _attnRowStart = new int[maxBatch + 1];
        _attnBody = AttentionItem;
    }

    private static int Chunks(int batchSize) => (batchSize + AttentionBatchChunk - 1) / AttentionBatchChunk;

    /// <summary>Runs the items of one attention section on the pool.</summary>
    private void RunAttention(AttentionSection section, int items)
    {
        _attnSection = section;
        _pool.Run(items, _attnBody!);
    }

    private void AttentionItem(int item)
    {
        switch (_attnSection)
        {
            case AttentionSection.Memory: MemoryChunk(item); break;
            case AttentionSection.Forward: ForwardChunk(item); break;
            case AttentionSection.Backward: BackwardChunk(item); break;
            case AttentionSection.Gradients: GradientItem(item); break;
        }
    }

    /// <summary>Batch rows [b0, b1) of chunk <paramref name="item"/>.</summary>
    private (int B0, int B1) ChunkRows(int item) => (item * AttentionBatchChunk, Math.Min(_attnBatch!.Size, (item + 1) * AttentionBatchChunk));

    private unsafe Span<float> GradSlice(ParameterSlot s) => new Span<float>(_attnGrad, _attnGradLength).Slice(s.Offset, s.Length);

    /// <summary>Reads the decoder's top h of the N real positions from _hOut and replaces them with h̃.</summary>
    private void AttentionForward(Batch batch, int n)
    {
        if (_attention == AttentionKind.None) return;
        BuildMemory(batch);
        int i = 0;
        for (int b = 0; b < batch.Size; b++)
        {
            _attnRowStart[b] = i;
            for (int t = 0; t < batch.TargetLengths[b]; t++) _attnRowBatch[i++] = b;
        }
        _attnRowStart[batch.Size] = i;
        _attnN = n;
        RunAttention(AttentionSection.Forward, Chunks(batch.Size));
    }

    /// <summary>Forward of the rows of one chunk of batch rows: scores, softmax, context, then h̃ = tanh([c; h]·W_cᵀ),
    /// written where the output layer reads its rows.</summary>
    private void ForwardChunk(int item)
    {
        var batch = _attnBatch!;
        var (b0, b1) = ChunkRows(item);
        int n = _attnN, ts = batch.SourceSteps, h = _h, slots = batch.Size * ts, r0 = _attnRowStart[b0], r1 = _attnRowStart[b1];
        ReadOnlySpan<float> mem = _mem.AsSpan(0, slots * h);
        ReadOnlySpan<int> rowBatch = _attnRowBatch.AsSpan(0, n), lengths = batch.SourceLengths.AsSpan(0, batch.Size);
        Span<float> decH = _attnDecH.AsSpan(0, n * h), ctx = _attnCtx.AsSpan(0, n * h), weights = _attnWeights.AsSpan(0, n * ts);
        _hOut.AsSpan(r0 * h, (r1 - r0) * h).CopyTo(decH.Slice(r0 * h));
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionForward(decH, mem, mem, rowBatch, lengths, weights, ctx, ts, h, r0, r1);
                break;
            case AttentionKind.General:
                // keys = m·W_aᵀ (BuildMemory), so score = h·(W_a m)
                K.DotAttentionForward(decH, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, ctx, ts, h, r0, r1);
                break;
            case AttentionKind.Bahdanau:
                K.MatMulForward(decH, Param(_attnWq!), default, _attnQuery.AsSpan(0, n * h), n, h, h, r0, r1);
                K.AdditiveAttentionForward(_attnQuery.AsSpan(0, n * h), _keys.AsSpan(0, slots * h), Param(_attnV!), mem, rowBatch, lengths,
                    _attnU.AsSpan(0, n * ts * h), weights, ctx, ts, h, r0, r1);
                break;
        }
        // h̃ = tanh([c; h]·W_cᵀ), written where the output layer reads its rows.
        Span<float> cat = _attnCat.AsSpan(0, 2 * n * h);
        for (int r = r0; r < r1; r++)
        {
            ctx.Slice(r * h, h).CopyTo(cat.Slice(2 * r * h, h));
            decH.Slice(r * h, h).CopyTo(cat.Slice((2 * r + 1) * h, h));
        }
        Span<float> hTilde = _hOut.AsSpan(0, n * h);
        K.MatMulForward(cat, Param(_attnWc!), default, hTilde, n, 2 * h, h, r0, r1);
        Span<float> rows = hTilde.Slice(r0 * h, (r1 - r0) * h);
        TensorPrimitives.Tanh(rows, rows);
    }

    /// <summary>Memory [B, Ts, H] = the top encoder layer's h (row b at step s is packed row encOffset[s] + b; padding 0),
    /// and its key projection: keys = m·W_aᵀ (general) or m·W_kᵀ (Bahdanau).</summary>
    private void BuildMemory(Batch batch)
    {
        _lastSourceSteps = batch.SourceSteps;
        _attnBatch = batch;
        RunAttention(AttentionSection.Memory, Chunks(batch.Size));
    }

    /// <summary>The memory slots (and keys) of one chunk of batch rows.</summary>
    private void MemoryChunk(int item)
    {
        var batch = _attnBatch!;
        var (b0, b1) = ChunkRows(item);
        int ts = batch.SourceSteps, h = _h, slots = batch.Size * ts;
        Span<float> mem = _mem.AsSpan(0, slots * h);
        mem.Slice(b0 * ts * h, (b1 - b0) * ts * h).Clear();
        float[] top = _encH[_layers - 1];
        for (int b = b0; b < b1; b++)
        {
            for (int s = 0; s < batch.SourceLengths[b]; s++)
                top.AsSpan((_encOffset[s] + b) * h, h).CopyTo(mem.Slice((b * ts + s) * h, h));
        }
        if (_attention is AttentionKind.General or AttentionKind.Bahdanau)
            K.MatMulForward(mem, Param(_attention == AttentionKind.General ? _attnWa! : _attnWk!), default, _keys.AsSpan(0, slots * h), slots, h, h, b0 * ts, b1 * ts);
    }

    /// <summary>Backward of the key projection of <see cref="BuildMemory"/>: dW_a (or dW_k) += dKeysᵀ·m, d m += dKeys·W.</summary>
    private void MemoryKeysBackward(Batch batch, Span<float> gradients)
    {
        if (_attention is not (AttentionKind.General or AttentionKind.Bahdanau)) return;
        RunGradients(batch, gradients, combine: false);
    }

    /// <summary>Turns d h̃ in _dHOut into dh of the decoder's top layer (in place) and leaves d m in _dMem.</summary>
    private void AttentionBackward(Batch batch, int n, Span<float> gradients)
    {
        if (_attention == AttentionKind.None) return;
        _attnBatch = batch;
        _attnN = n;
        RunAttention(AttentionSection.Backward, Chunks(batch.Size));
        RunGradients(batch, gradients, combine: true);
        if (_attention == AttentionKind.Bahdanau)
        {
            // dv: the chunks' sums, in chunk order.
            Span<float> dV = Grad(gradients, _attnV!);
            for (int c = 0; c < Chunks(batch.Size); c++) TensorPrimitives.Add(dV, _attnChunkDV.AsSpan(c * _h, _h), dV);
        }
    }

    /// <summary>Backward of the rows of one chunk of batch rows; writes their dPre of W_c (and d qp), their dh into
    /// _dHOut, and d keys / d memory of the chunk's slots.</summary>
    private void BackwardChunk(int item)
    {
        var batch = _attnBatch!;
        var (b0, b1) = ChunkRows(item);
        int n = _attnN, ts = batch.SourceSteps, h = _h, slots = batch.Size * ts, r0 = _attnRowStart[b0], r1 = _attnRowStart[b1];
        int rh = (r1 - r0) * h, s0 = b0 * ts * h, sh = (b1 - b0) * ts * h;
        ReadOnlySpan<int> rowBatch = _attnRowBatch.AsSpan(0, n), lengths = batch.SourceLengths.AsSpan(0, batch.Size);
        ReadOnlySpan<float> mem = _mem.AsSpan(0, slots * h), decH = _attnDecH.AsSpan(0, n * h), weights = _attnWeights.AsSpan(0, n * ts);
        Span<float> dOut = _dHOut.AsSpan(0, n * h);
        // Forward was h̃ = tanh(pre): dPre = dh̃ ⊙ (1 − h̃²).
        Span<float> dPre = _attnDPre.AsSpan(r0 * h, rh);
        ReadOnlySpan<float> hTilde = _hOut.AsSpan(r0 * h, rh);
        TensorPrimitives.Multiply(hTilde, hTilde, dPre);
        TensorPrimitives.Subtract(1f, dPre, dPre);
        TensorPrimitives.Multiply(dPre, dOut.Slice(r0 * h, rh), dPre);
        // Forward was pre = cat·W_cᵀ: dCat = dPre·W_c (dW_c: RunGradients).
        Span<float> dCat = _attnDCat.AsSpan(0, 2 * n * h);
        dCat.Slice(2 * r0 * h, 2 * rh).Clear();
        K.MatMulBackwardInput(_attnDPre.AsSpan(0, n * h), Param(_attnWc!), dCat, n, 2 * h, h, r0, r1);
        // cat = [c; h]: split dCat into dContext and the direct part of dh (dOut now holds dh, no longer dh̃).
        Span<float> dCtx = _attnDCtx.AsSpan(0, n * h);
        for (int r = r0; r < r1; r++)
        {
            dCat.Slice(2 * r * h, h).CopyTo(dCtx.Slice(r * h, h));
            dCat.Slice((2 * r + 1) * h, h).CopyTo(dOut.Slice(r * h, h));
        }
        Span<float> dMem = _dMem.AsSpan(0, slots * h), dScores = _attnDScores.AsSpan(0, n * ts);
        dMem.Slice(s0, sh).Clear();
        switch (_attention)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                K.DotAttentionBackward(decH, mem, mem, rowBatch, lengths, weights, dCtx, dScores, dOut, dMem, dMem, ts, h, r0, r1);
                break;
            case AttentionKind.General:
                {
                    Span<float> dKeys = _dKeys.AsSpan(0, slots * h);
                    dKeys.Slice(s0, sh).Clear();
                    K.DotAttentionBackward(decH, _keys.AsSpan(0, slots * h), mem, rowBatch, lengths, weights, dCtx, dScores, dOut, dKeys, dMem, ts, h, r0, r1);
                    break;
                }
            case AttentionKind.Bahdanau:
                {
                    Span<float> dKeys = _dKeys.AsSpan(0, slots * h), dQuery = _attnDQuery.AsSpan(0, n * h), dV = _attnChunkDV.AsSpan(item * h, h);
                    dKeys.Slice(s0, sh).Clear();
                    dQuery.Slice(r0 * h, rh).Clear();
                    dV.Clear();
                    K.AdditiveAttentionBackward(Param(_attnV!), mem, rowBatch, lengths, _attnU.AsSpan(0, n * ts * h), weights, dCtx, dScores,
                        _attnScratch.AsSpan(item * h, h), dV, dQuery, dKeys, dMem, ts, h, r0, r1);
                    // Forward was qp = h·W_qᵀ: dh += dqp·W_q (dW_q: RunGradients).
                    K.MatMulBackwardInput(dQuery, Param(_attnWq!), dOut, n, h, h, r0, r1);
                    break;
                }
        }
    }

    /// <summary>The weight gradients that sum over all rows, cut into blocks of output rows, and d m += dKeys·W
    /// (general, Bahdanau) by chunks of batch rows: with <paramref name="combine"/> dW_c (and dW_q) too, else only
    /// the key projection's (input feeding computes the rest).</summary>
    private unsafe void RunGradients(Batch batch, Span<float> gradients, bool combine)
    {
        bool keys = _attention is AttentionKind.General or AttentionKind.Bahdanau;
        _attnBatch = batch;
        _attnWeightBlocks = (_h + AttentionWeightRows - 1) / AttentionWeightRows;
        _attnCombineItems = combine ? _attnWeightBlocks : 0;
        _attnQueryItems = combine && _attention == AttentionKind.Bahdanau ? _attnWeightBlocks : 0;
        _attnKeyItems = keys ? _attnWeightBlocks : 0;
        int items = _attnCombineItems + _attnQueryItems + _attnKeyItems + (keys ? Chunks(batch.Size) : 0);
        fixed (float* g = gradients)
        {
            _attnGrad = g;
            _attnGradLength = gradients.Length;
            RunAttention(AttentionSection.Gradients, items);
            _attnGrad = null;
        }
    }

    private void GradientItem(int item)
    {
        var batch = _attnBatch!;
        int n = _attnN, h = _h, slots = batch.Size * batch.SourceSteps;
        if (item < _attnCombineItems + _attnQueryItems + _attnKeyItems)
        {
            int o0 = item % _attnWeightBlocks * AttentionWeightRows, o1 = Math.Min(h, o0 + AttentionWeightRows);
            if (item < _attnCombineItems)
            {
                // Forward was pre = cat·W_cᵀ: dW_c += dPreᵀ·cat.
                K.MatMulBackwardWeight(_attnDPre.AsSpan(0, n * h), _attnCat.AsSpan(0, 2 * n * h), GradSlice(_attnWc!), default, n, 2 * h, h, o0, o1);
            }
            else if (item < _attnCombineItems + _attnQueryItems)
            {
                // Forward was qp = h·W_qᵀ: dW_q += dqpᵀ·h.
                K.MatMulBackwardWeight(_attnDQuery.AsSpan(0, n * h), _attnDecH.AsSpan(0, n * h), GradSlice(_attnWq!), default, n, h, h, o0, o1);
            }
            else
            {
                // Forward was keys = m·W_aᵀ (or m·W_kᵀ): dW += dKeysᵀ·m.
                K.MatMulBackwardWeight(_dKeys.AsSpan(0, slots * h), _mem.AsSpan(0, slots * h),
                    GradSlice(_attention == AttentionKind.General ? _attnWa! : _attnWk!), default, slots, h, h, o0, o1);
            }
            return;
        }
        // d m += dKeys·W for the slots of one chunk of batch rows.
        var (b0, b1) = ChunkRows(item - _attnCombineItems - _attnQueryItems - _attnKeyItems);
        int ts = batch.SourceSteps;
        K.MatMulBackwardInput(_dKeys.AsSpan(0, slots * h), Param(_attention == AttentionKind.General ? _attnWa! : _attnWk!), _dMem.AsSpan(0, slots * h),
            slots, h, h, b0 * ts, b1 * ts);
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
