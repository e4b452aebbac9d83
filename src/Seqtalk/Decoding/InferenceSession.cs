// InferenceSession: batched greedy decoding with the caller's own scratch; the model is shared and
// never written. Same kernels and the same arithmetic order as TrainingWorkspace's forward pass.
//
// Legend: B rows decoded together (≤ maxBatch), E embedding, H hidden, G = 4H, L layers, Vt target vocab.
// Encoder: sources sorted longest first so the active rows of step t are a prefix; a row's state stops
// changing after its last real token (an empty source leaves the zero state). Decoder: from <s>, each
// step feeds the arg-max of the previous step (first maximum on ties); a row that emits </s> or reaches
// maxSteps tokens leaves the batch (the last active row moves into its place), so finished rows cost nothing.
// The output projection and arg-max of more than MatMulDotRows rows run in blocks of BlockRows rows held
// transposed (Kernels.Output), so the [B, Vt] logits never go to memory; the logits are the same floats as
// MatMulForward's (same per-element operations), so the replies are too.

using System.Numerics.Tensors;
using Seqtalk.Nn;
using Seqtalk.Text;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Decoding;

/// <summary>Per-caller decoding state over a shared, immutable <see cref="Seq2SeqModel"/>. Not thread-safe.</summary>
internal sealed class InferenceSession
{
    private readonly Seq2SeqModel _model;
    private readonly int _maxBatch, _e, _h, _g, _layers, _vs, _vt;
    private readonly float[][] _hState, _cState;     // per layer [B, H]
    private readonly float[][] _bias;                // enc layers then dec layers, [G]
    private const int BlockRows = 64;
    private readonly float[] _x, _pre, _logits;      // [B, max(E, H)], [B, G], [MatMulDotRows, Vt]
    private readonly float[] _zT, _colMax;           // [Vt, BlockRows], [BlockRows] (allocated when maxBatch > MatMulDotRows)
    private readonly int[] _ids, _rowOf, _order, _next;   // [B]
    private readonly ParameterSlot _encEmbed, _decEmbed, _outW, _outB;
    private readonly ParameterSlot[] _wIh, _wHh, _bIh, _bHh;   // enc layers then dec layers

    /// <summary>Creates scratch for decoding up to <paramref name="maxBatch"/> sources at once (more are done in chunks).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBatch"/> is below 1.</exception>
    public InferenceSession(Seq2SeqModel model, int maxBatch = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        _model = model;
        _maxBatch = maxBatch;
        var cfg = model.Config;
        _e = cfg.EmbeddingDim; _h = cfg.HiddenDim; _g = 4 * _h; _layers = cfg.Layers;
        _vs = cfg.SourceVocabSize; _vt = cfg.TargetVocabSize;
        var layout = model.Layout;
        _encEmbed = layout[ParameterLayout.Names.EncoderEmbedding];
        _decEmbed = layout[ParameterLayout.Names.DecoderEmbedding];
        _outW = layout.OutputWeight;   // dec.embed when the embeddings are tied
        _outB = layout[ParameterLayout.Names.OutputBias];
        _wIh = new ParameterSlot[2 * _layers]; _wHh = new ParameterSlot[2 * _layers];
        _bIh = new ParameterSlot[2 * _layers]; _bHh = new ParameterSlot[2 * _layers];
        _bias = new float[2 * _layers][];
        for (int i = 0; i < 2 * _layers; i++)
        {
            string prefix = i < _layers ? ParameterLayout.Names.Encoder : ParameterLayout.Names.Decoder;
            int k = i % _layers;
            _wIh[i] = layout[ParameterLayout.Names.LstmWeightIh(prefix, k)];
            _wHh[i] = layout[ParameterLayout.Names.LstmWeightHh(prefix, k)];
            _bIh[i] = layout[ParameterLayout.Names.LstmBiasIh(prefix, k)];
            _bHh[i] = layout[ParameterLayout.Names.LstmBiasHh(prefix, k)];
            _bias[i] = new float[_g];
        }
        _hState = new float[_layers][]; _cState = new float[_layers][];
        for (int k = 0; k < _layers; k++) { _hState[k] = new float[maxBatch * _h]; _cState[k] = new float[maxBatch * _h]; }
        _x = new float[maxBatch * Math.Max(_e, _h)];
        _pre = new float[maxBatch * _g];
        _logits = new float[Math.Min(maxBatch, K.MatMulDotRows) * _vt];
        _zT = maxBatch > K.MatMulDotRows ? new float[_vt * BlockRows] : [];
        _colMax = new float[BlockRows];
        _ids = new int[maxBatch]; _rowOf = new int[maxBatch]; _order = new int[maxBatch]; _next = new int[maxBatch];
    }

    /// <summary>Greedy decoding: from &lt;s&gt; until &lt;/s&gt; or <paramref name="maxSteps"/> tokens.
    /// Returns, per source, the produced ids without &lt;s&gt; and &lt;/s&gt;.</summary>
    /// <exception cref="SeqtalkException">A source id is outside the source vocabulary.</exception>
    public int[][] GreedyDecode(IReadOnlyList<int[]> sources, int maxSteps)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfNegative(maxSteps);
        foreach (var src in sources)
        {
            ArgumentNullException.ThrowIfNull(src, nameof(sources));
            foreach (int id in src)
            {
                if ((uint)id >= (uint)_vs)
                    throw new SeqtalkException($"A source token id {id} is outside the model's vocabulary of {_vs}; the tokenizer and the model do not match.");
            }
        }
        for (int i = 0; i < 2 * _layers; i++)
            TensorPrimitives.Add(Param(_bIh[i]), Param(_bHh[i]), _bias[i]);

        var results = new int[sources.Count][];
        var output = new List<int>[_maxBatch];
        for (int i = 0; i < _maxBatch; i++) output[i] = [];
        for (int start = 0; start < sources.Count; start += _maxBatch)
        {
            int count = Math.Min(_maxBatch, sources.Count - start);
            Encode(sources, start, count);
            DecodeChunk(count, maxSteps, output);
            for (int i = 0; i < count; i++) { results[start + i] = [.. output[i]]; output[i].Clear(); }
        }
        return results;
    }

    /// <summary>Runs the encoder over sources[start .. start+count); leaves the final states in
    /// _hState/_cState at row i for source start+i.</summary>
    private void Encode(IReadOnlyList<int[]> sources, int start, int count)
    {
        int h = _h;
        // Rows sorted by source length, longest first (stable), so active rows are a prefix.
        for (int i = 0; i < count; i++) _order[i] = i;
        Array.Sort(_order, 0, count, Comparer<int>.Create((a, b) =>
        {
            int c = sources[start + b].Length.CompareTo(sources[start + a].Length);
            return c != 0 ? c : a.CompareTo(b);
        }));
        for (int k = 0; k < _layers; k++) { _hState[k].AsSpan(0, count * h).Clear(); _cState[k].AsSpan(0, count * h).Clear(); }
        int steps = count == 0 ? 0 : sources[start + _order[0]].Length;
        for (int t = 0; t < steps; t++)
        {
            int active = 0;
            while (active < count && sources[start + _order[active]].Length > t) active++;
            for (int r = 0; r < active; r++) _ids[r] = sources[start + _order[r]][t];
            K.EmbeddingForward(Param(_encEmbed), _ids.AsSpan(0, active), _x, _e, 0, active);
            for (int k = 0; k < _layers; k++) Step(k, k, active);
        }
        // Undo the sort: state row r belongs to source _order[r]; move it to row _order[r].
        for (int k = 0; k < _layers; k++)
        {
            Permute(_hState[k], count);
            Permute(_cState[k], count);
        }
    }

    private void Permute(float[] state, int count)
    {
        int h = _h;
        Span<float> tmp = _pre.AsSpan(0, count * h); // free at this point; [B, H] fits in [B, 4H]
        for (int r = 0; r < count; r++) state.AsSpan(r * h, h).CopyTo(tmp.Slice(_order[r] * h, h));
        tmp.CopyTo(state.AsSpan(0, count * h));
    }

    private void DecodeChunk(int count, int maxSteps, List<int>[] output)
    {
        int active = count;
        for (int r = 0; r < count; r++) { _rowOf[r] = r; _ids[r] = SpecialTokens.StartId; }
        ReadOnlySpan<float> outW = Param(_outW), outB = Param(_outB);
        for (int step = 0; step < maxSteps && active > 0; step++)
        {
            K.EmbeddingForward(Param(_decEmbed), _ids.AsSpan(0, active), _x, _e, 0, active);
            for (int k = 0; k < _layers; k++) Step(_layers + k, k, active);
            ProjectArgMax(active, outW, outB);
            for (int r = 0; r < active;)
            {
                int next = _next[r];
                if (next == SpecialTokens.EndId)
                {
                    active--;
                    if (r != active) MoveRow(active, r);   // r now holds a row not yet handled this step
                    else break;
                    continue;
                }
                output[_rowOf[r]].Add(next);
                _ids[r] = next;
                r++;
            }
        }
    }

    /// <summary>_next[r] = arg-max of the logits h_r·out.wᵀ + out.b (first maximum), for r in [0, active).</summary>
    private void ProjectArgMax(int active, ReadOnlySpan<float> outW, ReadOnlySpan<float> outB)
    {
        int h = _h, vt = _vt;
        if (active <= K.MatMulDotRows)
        {
            // One to three rows: stream the weights once with dot products (the decode path of MatMulForward).
            K.MatMulForward(_x.AsSpan(0, active * h), outW, outB, _logits.AsSpan(0, active * vt), active, h, vt, 0, active);
            for (int r = 0; r < active; r++) _next[r] = TensorPrimitives.IndexOfMax(_logits.AsSpan(r * vt, vt));
            return;
        }
        for (int r0 = 0; r0 < active; r0 += BlockRows)
        {
            int rows = Math.Min(BlockRows, active - r0);
            K.OutputBlockForward(_x.AsSpan(r0 * h, rows * h), outW, outB, _zT, rows, h, vt, BlockRows);
            K.ArgMaxColumns(_zT, _colMax, _next.AsSpan(r0, rows), vt, BlockRows, rows);
        }
    }

    /// <summary>Moves decoder row <paramref name="from"/> (state, next token, next input, owner) into row <paramref name="to"/>.</summary>
    private void MoveRow(int from, int to)
    {
        int h = _h;
        for (int k = 0; k < _layers; k++)
        {
            _hState[k].AsSpan(from * h, h).CopyTo(_hState[k].AsSpan(to * h, h));
            _cState[k].AsSpan(from * h, h).CopyTo(_cState[k].AsSpan(to * h, h));
        }
        _next[to] = _next[from];
        _rowOf[to] = _rowOf[from];
        _ids[to] = _ids[from];
    }

    /// <summary>One LSTM step of layer <paramref name="lstm"/> (state layer <paramref name="k"/>) for
    /// rows [0, active): input in _x, output h written to the state and copied into _x for the next layer.</summary>
    private void Step(int lstm, int k, int active)
    {
        int h = _h, g4 = _g, inDim = k == 0 ? _e : h;
        Span<float> pre = _pre.AsSpan(0, active * g4);
        Span<float> hs = _hState[k].AsSpan(0, active * h), cs = _cState[k].AsSpan(0, active * h);
        // pre = x·W_ihᵀ + (b_ih + b_hh); pre += h·W_hhᵀ  (the training order)
        K.MatMulForward(_x.AsSpan(0, active * inDim), Param(_wIh[lstm]), _bias[lstm], pre, active, inDim, g4, 0, active);
        K.MatMulForward(hs, Param(_wHh[lstm]), default, pre, active, h, g4, 0, active, accumulate: true);
        K.LstmCellForward(pre, cs, pre, cs, hs, h, 0, active);
        hs.CopyTo(_x.AsSpan(0, active * h));
    }

    private ReadOnlySpan<float> Param(ParameterSlot s) => _model.Parameters.AsSpan(s.Offset, s.Length);
}
