// InferenceSession: per-caller decoding state over a shared, immutable Seq2SeqModel, and the step API that
// every decoding strategy (greedy, beam search, sampling) is built on. The model is never written. Same
// kernels and the same arithmetic order as TrainingWorkspace's forward pass.
//
// Legend: B rows decoded together (≤ Capacity), E embedding, H hidden, G = 4H, L layers, Vt target vocab.
//
// The step API (a decoder "row" is one hypothesis: a question, a beam of it, or one sample of it):
//   Encode(sources)              runs the encoder; decoder row i starts from the final state of sources[i]
//                                (sources.Count ≤ Capacity). An empty source leaves the zero state.
//   Step(inputs, rows, logits)   one decoder step for rows [0, rows): embeds inputs[r], advances the LSTM
//                                stack and writes the logits h_r·out.wᵀ + out.b into logits [rows, Vt].
//                                Each row's logits are the same floats whatever the other rows hold and
//                                however many rows there are (the kernels are told of at least
//                                MatMulDotRows + 1 rows, which keeps them on the GEMM path, where an element's
//                                operations do not depend on the row count; Encode does the same); so a reply
//                                never depends on its batch neighbours.
//   ReorderRows(parents, rows)   new row r = old row parents[r] (beam search: a beam continues from its parent;
//                                a question's encoder row is fanned out into beam or sample rows).
//   MoveRow(from, to)            copies one row (a finished row leaves the batch: the last row moves into its place).
// All per-row decoder state lives in RowState (h and c of every layer, the encoder outputs with attention, the
// previous step's h̃ with input feeding); ReorderRows and MoveRow are its only movers, so per-row state added
// later (a coverage vector) is added there once.
//
// Greedy decoding keeps its fused path (GreedyDecode): encoder sorted longest first so the active rows of
// step t are a prefix; from <s>, each step feeds the arg-max of the previous step (first maximum on ties); a
// row that emits </s> or reaches maxSteps tokens leaves the batch. A row's floats never depend on its batch:
// every matrix product runs the GEMM's per-element order (start from the bias, one FMA per k in order), whatever
// the number of active rows, as the step API does. The LSTM, combine and bridge products tell the kernels of at
// least MinKernelRows rows (the GEMM path); steps with at most MatMulDotRows rows left run that same arithmetic
// row by row over the weights packed once per model (Kernels.MatMulForwardPackedRows). The output projection and
// arg-max of more than LogitRows rows run in blocks of BlockRows rows held transposed (Kernels.OutputBlockArgMax),
// so the [B, Vt] logits never go to memory. Steps of one to LogitRows rows take the arg-max through GreedyScreen,
// row by row: an int8 copy of out.w rules out all but a few tokens, whose logits are then computed in the GEMM's
// order (Kernels.GemmOrderLogits; the same arg-max and the same logit, a quarter of the bytes; the copy stays in
// cache from row to row). Without the screen (weights or h not finite, or UseScreen off) those steps call
// MatMulForward told of at least MinKernelRows rows (its GEMM). GreedyObserver (tests) sees each row's chosen
// token and its logit, so tests compare the floats, not only the tokens.

using System.Numerics.Tensors;
using Seqtalk.Nn;
using Seqtalk.Text;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Decoding;

/// <summary>Per-caller decoding state over a shared, immutable <see cref="Seq2SeqModel"/>. Not thread-safe.</summary>
internal sealed class InferenceSession
{
    /// <summary>Per-row decoder state: everything that must follow a hypothesis when rows are reordered or moved.</summary>
    private sealed class RowState
    {
        public readonly float[][] H, C;   // per layer [B, H]
        // Input feeding only: the row's attentional vector h̃ of the previous step (0 after Encode), fed to layer 0.
        public readonly float[] Feed;     // [B, H] or empty
        // Attention only: the row's encoder outputs (top layer h per source step), their key projection
        // (W_a m or W_k m; unused for Dot) and the source length. Stride MemorySteps per row.
        public float[] Memory = [], Keys = [];   // [B, S, H]
        public int[] Lengths = [];              // [B]
        public int MemorySteps;

        public RowState(int layers, int rows, int hidden, bool feed)
        {
            Feed = feed ? new float[rows * hidden] : [];
            H = new float[layers][]; C = new float[layers][];
            for (int k = 0; k < layers; k++) { H[k] = new float[rows * hidden]; C[k] = new float[rows * hidden]; }
        }

        /// <summary>Makes room for sources of <paramref name="steps"/> tokens (outside the decoding loop; contents are dropped).</summary>
        public void EnsureMemory(int rows, int steps, int hidden, bool keys)
        {
            if (steps <= MemorySteps) return;
            MemorySteps = Math.Max(steps, 2 * MemorySteps);
            Memory = new float[checked(rows * MemorySteps * hidden)];
            Keys = keys ? new float[Memory.Length] : [];
            if (Lengths.Length < rows) Lengths = new int[rows];
        }

        /// <summary>Copies row <paramref name="from"/> of <paramref name="src"/> into row <paramref name="to"/> of <paramref name="dst"/>.</summary>
        public static void CopyRow(RowState src, int from, RowState dst, int to, int hidden)
        {
            for (int k = 0; k < src.H.Length; k++)
            {
                src.H[k].AsSpan(from * hidden, hidden).CopyTo(dst.H[k].AsSpan(to * hidden, hidden));
                src.C[k].AsSpan(from * hidden, hidden).CopyTo(dst.C[k].AsSpan(to * hidden, hidden));
            }
            if (src.Feed.Length > 0) src.Feed.AsSpan(from * hidden, hidden).CopyTo(dst.Feed.AsSpan(to * hidden, hidden));
            if (src.MemorySteps == 0) return;
            int len = src.Lengths[from], stride = src.MemorySteps * hidden;
            dst.Lengths[to] = len;
            src.Memory.AsSpan(from * stride, len * hidden).CopyTo(dst.Memory.AsSpan(to * stride, len * hidden));
            if (src.Keys.Length > 0) src.Keys.AsSpan(from * stride, len * hidden).CopyTo(dst.Keys.AsSpan(to * stride, len * hidden));
        }

        public void ClearRows(int rows, int hidden)
        {
            for (int k = 0; k < H.Length; k++) { H[k].AsSpan(0, rows * hidden).Clear(); C[k].AsSpan(0, rows * hidden).Clear(); }
            if (Feed.Length > 0) Feed.AsSpan(0, rows * hidden).Clear();
        }
    }

    private readonly Seq2SeqModel _model;
    private readonly int _maxBatch, _rows, _e, _h, _g, _layers, _vs, _vt;
    private readonly int _decIn;                     // decoder layer 0's input width: E, or E + H with input feeding
    private readonly float[] _feedEmb = [];          // [B, E] (input feeding: the embeddings before [emb; h̃] is built)
    private RowState _state, _spare;                 // _spare: the target of ReorderRows, then swapped in
    private readonly float[][] _bias;                // enc layers then dec layers, [G]
    private const int BlockRows = 64;
    private const int LogitRows = 16;   // greedy steps of at most this many rows take MatMulForward's layout (see ProjectArgMax)
    private const int MinKernelRows = K.MatMulDotRows + 1;
    private readonly float[] _x, _pre, _logits;      // [B, max(E, H)], [B, G], [max(MinKernelRows, min(B, LogitRows)), Vt]
    private readonly float[] _decX;                  // [B, decIn]: the decoder's layer-0 input (embedding, or [emb; h̃])
    private readonly float[] _zT, _colMax;           // [Vt, BlockRows], [BlockRows] (allocated when maxBatch > MatMulDotRows)
    private readonly int[] _ids, _rowOf, _order, _next;   // [B]
    private readonly float[] _nextLogit;                    // [B]: the logit of _next[r] as computed (GreedyObserver)
    private List<int>[] _output = [];                       // GreedyDecode's reply buffers, one per row used so far (emptied after use)
    private GreedyScreen? _screen;                          // built on the first screened greedy step; replaced when the weights change
    private float[] _approx = [], _candidateValues = [];    // [blocks·16], [Vt]
    private int[] _candidates = [];                         // [Vt]
    private readonly ParameterSlot _encEmbed, _decEmbed, _outW, _outB;
    private readonly ParameterSlot[] _wIh, _wHh, _bIh, _bHh;   // enc layers then dec layers

    // Attention (null slots without it): see Attend.
    private readonly AttentionKind _attention;
    private readonly ParameterSlot? _attnWa, _attnWq, _attnWk, _attnV, _attnWc;
    private readonly float[] _attnCtx = [], _attnQuery = [], _attnCat = [], _attnScratch = [];   // [B, H], [B, H], [B, 2H], [H]
    private float[] _attnWeights = [], _attnU = [];                                            // [B, S], [B, S, H] (Bahdanau)
    private readonly int[] _identity = [];                                                     // [B]: row r reads its own memory

    // Bidirectional encoder (see EncodeBidirectional): reverse-direction slots and per-source scratch, grown with the source length.
    private readonly bool _bidirectional;
    private readonly ParameterSlot[] _wIhRev = [], _wHhRev = [], _bIhRev = [], _bHhRev = [];
    private readonly float[][] _biasRev = [];
    private float[] _biA = [], _biB = [], _biXr = [], _biGates = [], _biC = [], _biHF = [], _biHR = [], _biHPrev = [];
    private int[] _biOffset = [], _biCount = [];
    private readonly float[] _biZeros = [];

    // Learned bridge (see ApplyBridge): per layer W_h, b_h, W_c, b_c; scratch [rows, H].
    private readonly ParameterSlot[] _bridge = [];
    private readonly float[] _bridgeIn = [];

    /// <summary>Creates scratch for decoding up to <paramref name="maxBatch"/> rows at once (greedy does more in chunks).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBatch"/> is below 1.</exception>
    public InferenceSession(Seq2SeqModel model, int maxBatch = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        _model = model;
        _maxBatch = maxBatch;
        _rows = Math.Max(maxBatch, MinKernelRows);
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
        _decIn = cfg.InputFeeding ? _e + _h : _e;
        if (cfg.InputFeeding) _feedEmb = new float[_rows * _e];
        _state = new RowState(_layers, _rows, _h, cfg.InputFeeding);
        _spare = new RowState(_layers, _rows, _h, cfg.InputFeeding);
        _x = new float[_rows * Math.Max(_e, _h)];
        _decX = new float[_rows * _decIn];
        _pre = new float[_rows * _g];
        _logits = new float[Math.Max(MinKernelRows, Math.Min(maxBatch, LogitRows)) * _vt];
        _zT = maxBatch > K.MatMulDotRows ? new float[_vt * BlockRows] : [];
        _colMax = new float[BlockRows];
        _ids = new int[_rows]; _rowOf = new int[_rows]; _order = new int[_rows]; _next = new int[_rows];
        _nextLogit = new float[_rows];
        _bidirectional = cfg.BidirectionalEncoder;
        if (_bidirectional)
        {
            _wIhRev = new ParameterSlot[_layers]; _wHhRev = new ParameterSlot[_layers];
            _bIhRev = new ParameterSlot[_layers]; _bHhRev = new ParameterSlot[_layers];
            _biasRev = new float[_layers][];
            for (int k = 0; k < _layers; k++)
            {
                _wIhRev[k] = layout[ParameterLayout.Names.LstmReverseWeightIh(ParameterLayout.Names.Encoder, k)];
                _wHhRev[k] = layout[ParameterLayout.Names.LstmReverseWeightHh(ParameterLayout.Names.Encoder, k)];
                _bIhRev[k] = layout[ParameterLayout.Names.LstmReverseBiasIh(ParameterLayout.Names.Encoder, k)];
                _bHhRev[k] = layout[ParameterLayout.Names.LstmReverseBiasHh(ParameterLayout.Names.Encoder, k)];
                _biasRev[k] = new float[2 * _h];
            }
            _biZeros = new float[_h / 2];
        }
        if (cfg.Bridge)
        {
            _bridge = new ParameterSlot[4 * _layers];
            for (int k = 0; k < _layers; k++)
            {
                _bridge[4 * k] = layout[ParameterLayout.Names.BridgeWeightH(k)];
                _bridge[4 * k + 1] = layout[ParameterLayout.Names.BridgeBiasH(k)];
                _bridge[4 * k + 2] = layout[ParameterLayout.Names.BridgeWeightC(k)];
                _bridge[4 * k + 3] = layout[ParameterLayout.Names.BridgeBiasC(k)];
            }
            _bridgeIn = new float[_rows * _h];
        }
        _attention = cfg.Attention;
        if (_attention != AttentionKind.None)
        {
            _attnWc = layout[ParameterLayout.Names.AttentionCombine];
            if (_attention == AttentionKind.General) _attnWa = layout[ParameterLayout.Names.AttentionGeneral];
            if (_attention == AttentionKind.Bahdanau)
            {
                _attnWq = layout[ParameterLayout.Names.AttentionQuery];
                _attnWk = layout[ParameterLayout.Names.AttentionKey];
                _attnV = layout[ParameterLayout.Names.AttentionScore];
                _attnQuery = new float[_rows * _h];
                _attnScratch = new float[_h];
            }
            _attnCtx = new float[_rows * _h];
            _attnCat = new float[_rows * 2 * _h];
            _identity = new int[_rows];
            for (int r = 0; r < _rows; r++) _identity[r] = r;
        }
    }

    /// <summary>Greedy steps of one to <see cref="ScreenRows"/> rows take the arg-max through the int8 screen of the output
    /// projection (<see cref="GreedyScreen"/>; the same tokens). False computes every logit in fp32 (tests, A/B).</summary>
    internal bool UseScreen { get; set; } = true;

    /// <summary>Most rows of a greedy step whose arg-max goes through the screen, one row at a time (up to LogitRows = 16;
    /// more rows always take the fused block path; between this and 16, MatMulForward). Measurements set it.</summary>
    internal int ScreenRows { get; set; } = DefaultScreenRows;

    /// <summary>The default of <see cref="ScreenRows"/>: all 16. Row by row the screen beat the GEMM at 4, 8 and 16 rows on
    /// both the tutorial model and the quality preset's (CPU per question 1.2 to 2.3 times lower, serve --profile;
    /// docs/benchmarks.md), since the int8 copy stays in cache from one row to the next.</summary>
    internal const int DefaultScreenRows = LogitRows;

    /// <summary>On machines with AVX-VNNI, greedy steps of any number of rows take the arg-max through the VNNI screen
    /// (<see cref="GreedyScreen.ArgMaxRows"/>; the same tokens). False keeps the paths below (A/B measurements).</summary>
    internal bool UseVnniScreen { get; set; } = true;

    /// <summary>Greedy decoding of four or more rows runs the projection fused with the arg-max (<see cref="K.OutputBlockArgMax"/>;
    /// the same tokens). False writes the logits block and scans it (A/B measurements).</summary>
    internal bool UseFusedArgMax { get; set; } = true;

    /// <summary>Steps of more than MatMulDotRows rows multiply by the model's LSTM and attention-combine weights packed
    /// once (<see cref="PackedWeights"/>; the same bits). False packs them in every call, as before (A/B measurements).</summary>
    internal bool UsePackedWeights { get; set; } = true;

    /// <summary>Layer 0 of the encoder and (without input feeding) of the decoder copies each token's input product from
    /// the model's input table (<see cref="PackedWeights.InputTable"/>; the same bits) instead of multiplying its
    /// embedding by W_ih. False multiplies (A/B measurements, tests).</summary>
    internal bool UseInputTable { get; set; } = true;

    /// <summary>Called by <see cref="GreedyDecode"/> for every row at every step with (source index, step, chosen token, its
    /// logit as computed by whichever path decided it). Tests use it to check that a row's floats, not only its tokens,
    /// do not depend on the batch or the order.</summary>
    internal Action<int, int, int, float>? GreedyObserver { get; set; }

    /// <summary>Rows decided by the screen, and the fp32 logits it computed for them (measurements).</summary>
    internal long ScreenedRows { get; private set; }

    /// <inheritdoc cref="ScreenedRows"/>
    internal long ScreenedLogits { get; private set; }

    /// <summary>Rows that can be decoded at once (the maxBatch given to the constructor).</summary>
    public int Capacity => _maxBatch;

    /// <summary>Size of the answer vocabulary: the width of a logits row.</summary>
    public int TargetVocabSize => _vt;

    /// <summary>Greedy decoding: from &lt;s&gt; until &lt;/s&gt; or <paramref name="maxSteps"/> tokens.
    /// Returns, per source, the produced ids without &lt;s&gt; and &lt;/s&gt;.</summary>
    /// <param name="sources">Source ids; more than <see cref="Capacity"/> are decoded in chunks.</param>
    /// <param name="maxSteps">Most tokens per reply.</param>
    /// <param name="banUnknown">Never emit &lt;unk&gt;: the arg-max is taken over the other tokens (the
    /// reply is the same whenever &lt;unk&gt; is not the arg-max).</param>
    /// <param name="ended">Called with (source index, ids) as soon as a reply ends, at the step it ends (a server hands
    /// it out while the rest of the batch decodes); the ids are the array returned for that source.</param>
    public int[][] GreedyDecode(IReadOnlyList<int[]> sources, int maxSteps, bool banUnknown = false, Action<int, int[]>? ended = null)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfNegative(maxSteps);
        CheckSources(sources);

        var results = new int[sources.Count][];
        // The reply buffers are the session's, made as needed (a single reply used to allocate one per row of capacity).
        int rowsUsed = Math.Min(_maxBatch, sources.Count);
        if (_output.Length < rowsUsed)
        {
            int old = _output.Length;
            Array.Resize(ref _output, rowsUsed);
            for (int i = old; i < rowsUsed; i++) _output[i] = [];
        }
        var output = _output;
        for (int start = 0; start < sources.Count; start += _maxBatch)
        {
            int count = Math.Min(_maxBatch, sources.Count - start);
            EncodeRange(sources, start, count);
            DecodeChunk(start, count, maxSteps, banUnknown && _vt > 1, output, results, ended);
        }
        return results;
    }

    /// <summary>Runs the encoder; afterwards decoder row i holds the initial state for <paramref name="sources"/>[i].</summary>
    /// <exception cref="ArgumentOutOfRangeException">More sources than <see cref="Capacity"/>.</exception>
    /// <exception cref="SeqtalkException">A source id is outside the source vocabulary.</exception>
    public void Encode(IReadOnlyList<int[]> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sources.Count, _maxBatch, nameof(sources));
        CheckSources(sources);
        EncodeRange(sources, 0, sources.Count);
    }

    /// <summary>One decoder step for rows [0, <paramref name="rows"/>): feeds <paramref name="inputTokens"/>[r]
    /// to row r, advances its state and writes its logits into <paramref name="logits"/>[r·Vt .. (r+1)·Vt).
    /// A row's logits do not depend on the other rows or on <paramref name="rows"/>.</summary>
    public void Step(ReadOnlySpan<int> inputTokens, int rows, Span<float> logits)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, _maxBatch);
        if (inputTokens.Length < rows) throw new ArgumentException($"{inputTokens.Length} input tokens for {rows} rows.", nameof(inputTokens));
        if (logits.Length < rows * _vt) throw new ArgumentException($"logits has {logits.Length} floats, expected {rows * _vt}.", nameof(logits));
        if (rows == 0) return;
        for (int r = 0; r < rows; r++)
        {
            int id = inputTokens[r];
            if ((uint)id >= (uint)_vt) throw new ArgumentOutOfRangeException(nameof(inputTokens), id, $"Outside the target vocabulary of {_vt}.");
            _ids[r] = id;
        }
        int pathRows = Math.Max(rows, MinKernelRows);
        DecoderLayers(rows, pathRows);
        int h = _h, vt = _vt;
        if (pathRows == rows)
        {
            K.MatMulForward(_x.AsSpan(0, rows * h), Param(_outW), Param(_outB), logits[..(rows * vt)], rows, h, vt, 0, rows);
            return;
        }
        K.MatMulForward(_x.AsSpan(0, pathRows * h), Param(_outW), Param(_outB), _logits, pathRows, h, vt, 0, rows);
        _logits.AsSpan(0, rows * vt).CopyTo(logits);
    }

    /// <summary>Reorders rows: new row r = old row <paramref name="parentRows"/>[r], for r in [0, <paramref name="rows"/>).
    /// A parent may appear many times (fan-out) or not at all (a pruned hypothesis).</summary>
    public void ReorderRows(ReadOnlySpan<int> parentRows, int rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, _maxBatch);
        if (parentRows.Length < rows) throw new ArgumentException($"{parentRows.Length} parents for {rows} rows.", nameof(parentRows));
        for (int r = 0; r < rows; r++)
        {
            if ((uint)parentRows[r] >= (uint)_maxBatch) throw new ArgumentOutOfRangeException(nameof(parentRows), parentRows[r], $"Outside the {_maxBatch} rows.");
            RowState.CopyRow(_state, parentRows[r], _spare, r, _h);
        }
        (_state, _spare) = (_spare, _state);
    }

    /// <summary>Copies row <paramref name="from"/>'s decoder state into row <paramref name="to"/>.</summary>
    public void MoveRow(int from, int to)
    {
        if ((uint)from >= (uint)_maxBatch) throw new ArgumentOutOfRangeException(nameof(from));
        if ((uint)to >= (uint)_maxBatch) throw new ArgumentOutOfRangeException(nameof(to));
        RowState.CopyRow(_state, from, _state, to, _h);
    }

    private void CheckSources(IReadOnlyList<int[]> sources)
    {
        foreach (var src in sources)
        {
            ArgumentNullException.ThrowIfNull(src, nameof(sources));
            foreach (int id in src)
            {
                if ((uint)id >= (uint)_vs)
                    throw new SeqtalkException($"A source token id {id} is outside the model's vocabulary of {_vs}; the tokenizer and the model do not match.");
            }
        }
    }

    /// <summary>Runs the encoder over sources[start .. start+count); leaves the final states at row i for source start+i.</summary>
    /// <remarks>A row's state does not depend on the other sources: the kernels are told of at least MinKernelRows rows
    /// (the GEMM path, whose per-element arithmetic does not depend on the row count), for greedy decoding and the step API alike.</remarks>
    private void EncodeRange(IReadOnlyList<int[]> sources, int start, int count)
    {
        for (int i = 0; i < 2 * _layers; i++)
            TensorPrimitives.Add(Param(_bIh[i]), Param(_bHh[i]), _bias[i]);
        if (_bidirectional)
        {
            EncodeBidirectional(sources, start, count);
            ApplyBridge(count);
            return;
        }
        // Rows sorted by source length, longest first (stable), so active rows are a prefix.
        for (int i = 0; i < count; i++) _order[i] = i;
        Array.Sort(_order, 0, count, Comparer<int>.Create((a, b) =>
        {
            int c = sources[start + b].Length.CompareTo(sources[start + a].Length);
            return c != 0 ? c : a.CompareTo(b);
        }));
        _state.ClearRows(count, _h);
        int steps = count == 0 ? 0 : sources[start + _order[0]].Length;
        if (_attention != AttentionKind.None) PrepareMemory(sources, start, count, steps);
        for (int t = 0; t < steps; t++)
        {
            int active = 0;
            while (active < count && sources[start + _order[active]].Length > t) active++;
            for (int r = 0; r < active; r++) _ids[r] = sources[start + _order[r]][t];
            EncoderStep(t, active, Math.Max(active, MinKernelRows));
        }
        // Undo the sort: state row r belongs to source _order[r]; row i must hold source i.
        for (int r = 0; r < count; r++) _next[_order[r]] = r;
        ReorderRows(_next.AsSpan(0, count), count);
        if (_attention != AttentionKind.None) ProjectKeys(count);
        ApplyBridge(count);
    }

    /// <summary>Encoder step <paramref name="t"/> for rows [0, rows) of pathRows: embeds _ids, runs the LSTM stack and,
    /// with attention, keeps the top layer's h as the rows' memory at step t.</summary>
    private void EncoderStep(int t, int rows, int pathRows)
    {
        // With an input table, layer 0 reads the tokens' rows of it, not their embeddings (LstmStep).
        if (InputTable(0).IsEmpty) K.EmbeddingForward(Param(_encEmbed), _ids.AsSpan(0, rows), _x, _e, 0, rows);
        for (int k = 0; k < _layers; k++) LstmStep(k, k, k == 0 ? _x : _state.H[k - 1], rows, pathRows);
        if (_attention != AttentionKind.None) KeepEncoderOutputs(t, rows);
    }

    /// <summary>Learned bridge (TrainingWorkspace.Bridge): the encoder's final states of rows [0, count) become the
    /// decoder's initial ones, h0 = tanh(h·W_hᵀ + b_h), c0 = c·W_cᵀ + b_c per layer (an empty source: tanh(b_h), b_c).
    /// The kernels are told of at least MinKernelRows rows, so a row's state does not depend on the others.</summary>
    private void ApplyBridge(int count)
    {
        if (_bridge.Length == 0 || count == 0) return;
        int h = _h, pathRows = Math.Max(count, MinKernelRows);
        Span<float> input = _bridgeIn.AsSpan(0, pathRows * h);
        for (int k = 0; k < _layers; k++)
        {
            Span<float> hs = _state.H[k].AsSpan(0, pathRows * h), cs = _state.C[k].AsSpan(0, pathRows * h);
            hs.CopyTo(input);
            K.MatMulForward(input, Param(_bridge[4 * k]), Param(_bridge[4 * k + 1]), hs, pathRows, h, h, 0, count);
            for (int r = 0; r < count; r++) TensorPrimitives.Tanh(hs.Slice(r * h, h), hs.Slice(r * h, h));   // per row (see Attend)
            cs.CopyTo(input);
            K.MatMulForward(input, Param(_bridge[4 * k + 2]), Param(_bridge[4 * k + 3]), cs, pathRows, h, h, 0, count);
        }
    }

    /// <summary>Greedy decoding of sources [start, start + count), encoded into rows [0, count): each reply goes to
    /// results[start + i] (and to <paramref name="ended"/>) at the step it ends.</summary>
    private void DecodeChunk(int start, int count, int maxSteps, bool banUnknown, List<int>[] output, int[][] results, Action<int, int[]>? ended)
    {
        int active = count;
        // The buffers start empty even after a call that threw part way.
        for (int r = 0; r < count; r++) { _rowOf[r] = r; _ids[r] = SpecialTokens.StartId; output[r].Clear(); }
        ReadOnlySpan<float> outW = Param(_outW), outB = Param(_outB);
        var observer = GreedyObserver;
        for (int step = 0; step < maxSteps && active > 0; step++)
        {
            // At least MinKernelRows path rows: the GEMM's arithmetic, the same floats for a row in any batch.
            DecoderLayers(active, Math.Max(active, MinKernelRows));
            ProjectArgMax(active, outW, outB, banUnknown);
            if (observer is not null)
            {
                for (int r = 0; r < active; r++) observer(start + _rowOf[r], step, _next[r], _nextLogit[r]);
            }
            for (int r = 0; r < active;)
            {
                int next = _next[r];
                if (next == SpecialTokens.EndId)
                {
                    EndReply(start + _rowOf[r], output[_rowOf[r]], results, ended);
                    active--;
                    if (r != active) MoveGreedyRow(active, r);   // r now holds a row not yet handled this step
                    else break;
                    continue;
                }
                output[_rowOf[r]].Add(next);
                _ids[r] = next;
                r++;
            }
        }
        // Rows still decoding after maxSteps tokens end there.
        for (int r = 0; r < active; r++) EndReply(start + _rowOf[r], output[_rowOf[r]], results, ended);
    }

    private static void EndReply(int source, List<int> output, int[][] results, Action<int, int[]>? ended)
    {
        int[] ids = [.. output];
        output.Clear();
        results[source] = ids;
        ended?.Invoke(source, ids);
    }

    /// <summary>Embeds _ids[0, rows) and runs the decoder LSTM stack (and attention) with the kernels told of pathRows
    /// rows; the top layer's h (h̃) ends in _x.</summary>
    private void DecoderLayers(int rows, int pathRows)
    {
        int h = _h, e = _e;
        // With an input table (never with input feeding), layer 0 reads the tokens' rows of it, not their embeddings (LstmStep).
        if (_feedEmb.Length == 0)
        {
            if (InputTable(_layers).IsEmpty) K.EmbeddingForward(Param(_decEmbed), _ids.AsSpan(0, rows), _decX, e, 0, rows);
        }
        else
        {
            // Input feeding: layer 0 reads [emb; h̃ of the row's previous step] (TrainingWorkspace.InputFeeding).
            K.EmbeddingForward(Param(_decEmbed), _ids.AsSpan(0, rows), _feedEmb, e, 0, rows);
            for (int r = 0; r < rows; r++)
            {
                _feedEmb.AsSpan(r * e, e).CopyTo(_decX.AsSpan(r * _decIn, e));
                _state.Feed.AsSpan(r * h, h).CopyTo(_decX.AsSpan(r * _decIn + e, h));
            }
        }
        for (int k = 0; k < _layers; k++) LstmStep(_layers + k, k, k == 0 ? _decX : _state.H[k - 1], rows, pathRows);
        _state.H[_layers - 1].AsSpan(0, rows * h).CopyTo(_x);
        if (_attention != AttentionKind.None) Attend(rows, pathRows);
        if (_feedEmb.Length > 0) _x.AsSpan(0, rows * h).CopyTo(_state.Feed);   // h̃ feeds the next step
    }

    /// <summary>_next[r] = arg-max of the logits h_r·out.wᵀ + out.b (first maximum), for r in [0, active);
    /// with <paramref name="banUnknown"/> the &lt;unk&gt; logit is taken as −∞.</summary>
    private void ProjectArgMax(int active, ReadOnlySpan<float> outW, ReadOnlySpan<float> outB, bool banUnknown, bool screen = true)
    {
        int h = _h, vt = _vt;
        // With AVX-VNNI, every row goes through the int8 screen with quantized activations, four rows per pass over the
        // copy (GreedyScreen.ArgMaxRows): the same tokens and logits, at any batch size.
        if (screen && UseScreen && UseVnniScreen && ScreenRowsVnni(active, outW, outB, banUnknown)) return;
        if (active <= LogitRows)
        {
            // Up to ScreenRows (all 16) rows: the int8 screen and an fp32 re-score of its candidates, row by row (the same
            // arg-max; see GreedyScreen).
            if (screen && active <= ScreenRows && UseScreen && ScreenArgMax(active, outW, outB, banUnknown)) return;
            // Otherwise whole logits rows, then each row's arg-max: MatMulForward's GEMM (told of at least MinKernelRows
            // rows, so one to three rows get the floats they would get in any batch), whose tiles are full here, where the
            // transposed blocks below would be mostly empty columns (measured 1.6 to 2.7 times the cost at 4 to 16 rows).
            int pathRows = Math.Max(active, MinKernelRows);
            K.MatMulForward(_x.AsSpan(0, pathRows * h), outW, outB, _logits.AsSpan(0, pathRows * vt), pathRows, h, vt, 0, active);
            for (int r = 0; r < active; r++)
            {
                var row = _logits.AsSpan(r * vt, vt);
                if (banUnknown) row[SpecialTokens.UnknownId] = float.NegativeInfinity;
                _next[r] = TensorPrimitives.IndexOfMax(row);
                _nextLogit[r] = row[_next[r]];
            }
            return;
        }
        for (int r0 = 0; r0 < active; r0 += BlockRows)
        {
            int rows = Math.Min(BlockRows, active - r0);
            if (UseFusedArgMax && K.OutputBlockArgMaxIsVectorized)
            {
                if (_packed.Length != K.OutputBlockArgMaxScratch(h)) _packed = new float[K.OutputBlockArgMaxScratch(h)];
                // The projection fused with the arg-max: the same tokens, no [Vt, rows] block in memory.
                K.OutputBlockArgMax(_x.AsSpan(r0 * h, rows * h), outW, outB, _packed, _colMax, _next.AsSpan(r0, rows), rows, h, vt,
                    banUnknown ? SpecialTokens.UnknownId : -1);
                _colMax.AsSpan(0, rows).CopyTo(_nextLogit.AsSpan(r0));
                continue;
            }
            K.OutputBlockForward(_x.AsSpan(r0 * h, rows * h), outW, outB, _zT, rows, h, vt, BlockRows);
            if (banUnknown) _zT.AsSpan(SpecialTokens.UnknownId * BlockRows, rows).Fill(float.NegativeInfinity);
            K.ArgMaxColumns(_zT, _colMax, _next.AsSpan(r0, rows), vt, BlockRows, rows);
            _colMax.AsSpan(0, rows).CopyTo(_nextLogit.AsSpan(r0));
        }
    }

    private float[] _packed = [];   // OutputBlockArgMax's scratch: OutputBlockArgMaxScratch(H) floats

    /// <summary>_next[r] for r in [0, active) through the int8 screen; false (nothing decided) when the model's weights
    /// or a row's h are not finite.</summary>
    private bool ScreenArgMax(int active, ReadOnlySpan<float> outW, ReadOnlySpan<float> outB, bool banUnknown)
    {
        var screen = CurrentScreen();
        if (!screen.Usable) return false;
        if (_approx.Length < screen.ApproxLength)
        {
            _approx = new float[screen.ApproxLength];
            _candidates = new int[_vt];
            _candidateValues = new float[_vt];
        }
        int h = _h;
        long logits = 0;
        for (int r = 0; r < active; r++)
        {
            int next = screen.ArgMax(_x.AsSpan(r * h, h), outW, outB, banUnknown ? SpecialTokens.UnknownId : -1,
                _approx, _candidates, _candidateValues, out int count, out float logit);
            if (next < 0) return false;
            _next[r] = next;
            _nextLogit[r] = logit;
            logits += count;
        }
        ScreenedLogits += logits;
        ScreenedRows += active;
        return true;
    }

    private GreedyScreen.Scratch? _screenScratch;

    /// <summary>_next[r] for r in [0, active) through the VNNI screen; false when the machine or the
    /// model's width has no VNNI screen, or the weights or a row's h are not finite.</summary>
    private bool ScreenRowsVnni(int active, ReadOnlySpan<float> outW, ReadOnlySpan<float> outB, bool banUnknown)
    {
        var screen = CurrentScreen();
        if (!screen.Usable || !screen.Vnni) return false;
        if (_screenScratch is null || !_screenScratch.Fits(screen)) _screenScratch = new GreedyScreen.Scratch(screen);
        if (!screen.ArgMaxRows(_x.AsSpan(0, active * _h), active, outW, outB, banUnknown ? SpecialTokens.UnknownId : -1, _screenScratch,
            _next, _nextLogit, out long logits)) return false;
        ScreenedLogits += logits;
        ScreenedRows += active;
        return true;
    }

    private GreedyScreen CurrentScreen() => _screen is { } kept && kept.IsCurrentFor(_model) ? kept : (_screen = GreedyScreen.For(_model));

    /// <summary>Moves greedy row <paramref name="from"/> (decoder state, next token, next input, owner) into row <paramref name="to"/>.</summary>
    private void MoveGreedyRow(int from, int to)
    {
        RowState.CopyRow(_state, from, _state, to, _h);
        _next[to] = _next[from];
        _nextLogit[to] = _nextLogit[from];
        _rowOf[to] = _rowOf[from];
        _ids[to] = _ids[from];
    }

    /// <summary>One LSTM step of layer <paramref name="lstm"/> (state layer <paramref name="k"/>) for rows [0, rows):
    /// input rows in <paramref name="input"/>, output h written to the state (layer k's H).
    /// The kernels are told there are <paramref name="pathRows"/> ≥ rows rows (only [0, rows) are computed):
    /// that picks MatMulForward's path, so with pathRows > MatMulDotRows a row's floats do not depend on the others.</summary>
    private void LstmStep(int lstm, int k, float[] input, int rows, int pathRows)
    {
        int h = _h, g4 = _g, inDim = k == 0 ? (lstm >= _layers ? _decIn : _e) : h;
        Span<float> pre = _pre.AsSpan(0, pathRows * g4);
        Span<float> hs = _state.H[k].AsSpan(0, pathRows * h), cs = _state.C[k].AsSpan(0, pathRows * h);
        // pre = x·W_ihᵀ + (b_ih + b_hh); pre += h·W_hhᵀ  (the training order). On the GEMM path (more than MatMulDotRows
        // rows) the weights come packed once per model, not per call: the same bits (Kernels.MatMulForwardColumns).
        var packed = pathRows > K.MatMulDotRows && UsePackedWeights ? Packed() : null;
        // A few rows: the GEMM's arithmetic row by row, without its 6-row tile of repeated rows (the same bits).
        bool fewRows = packed is not null && rows <= K.MatMulDotRows && !packed.InputWeights(lstm).IsEmpty;
        var table = k == 0 ? InputTable(lstm) : default;
        if (!table.IsEmpty)
        {
            // Layer 0 reading a token's embedding: its input product is the token's row of the table (the same bits;
            // the caller left the embeddings out).
            for (int r = 0; r < rows; r++) table.Slice(_ids[r] * g4, g4).CopyTo(pre.Slice(r * g4, g4));
        }
        else if (fewRows)
            K.MatMulForwardPackedRows(input.AsSpan(0, pathRows * inDim), packed!.InputWeights(lstm), _bias[lstm], pre, pathRows, inDim, g4, 0, rows, accumulate: false);
        else
            K.MatMulForwardColumns(input.AsSpan(0, pathRows * inDim), Param(_wIh[lstm]), packed is null ? default : packed.InputWeights(lstm), _bias[lstm], pre,
                pathRows, inDim, g4, 0, rows, 0, g4, accumulate: false);
        if (fewRows)
            K.MatMulForwardPackedRows(hs, packed!.RecurrentWeights(lstm), default, pre, pathRows, h, g4, 0, rows, accumulate: true);
        else
            K.MatMulForwardColumns(hs, Param(_wHh[lstm]), packed is null ? default : packed.RecurrentWeights(lstm), default, pre,
                pathRows, h, g4, 0, rows, 0, g4, accumulate: true);
        K.LstmCellForward(pre, cs, pre, cs, hs, h, 0, rows);
    }

    /// <summary>The input table of LSTM <paramref name="lstm"/> (PackedWeights.InputTable), or empty when it has none or
    /// <see cref="UseInputTable"/> or <see cref="UsePackedWeights"/> is off.</summary>
    private ReadOnlySpan<float> InputTable(int lstm) => UseInputTable && UsePackedWeights ? Packed().InputTable(lstm) : default;

    private ReadOnlySpan<float> Param(ParameterSlot s) => _model.Parameters.AsSpan(s.Offset, s.Length);

    /// <summary>The model's packed weights for batched steps (<see cref="PackedWeights"/>), fetched again when the weights changed.</summary>
    private PackedWeights Packed() => _packedWeights is { } kept && kept.IsCurrentFor(_model) ? kept : (_packedWeights = PackedWeights.For(_model));

    private PackedWeights? _packedWeights;

    // ---- Bidirectional encoder (the computation of TrainingWorkspace.Bidirectional, one source at a time) ----

    /// <summary>Encodes each source on its own (so a row never depends on the others): per layer a forward and a
    /// backward LSTM of H/2 over the source's tokens (an empty source leaves the zero state); decoder row i starts
    /// from [fwd after the last token; bwd after the first] of each layer; with attention, the top layer's
    /// [fwd; bwd] outputs become row i's memory.</summary>
    private void EncodeBidirectional(IReadOnlyList<int[]> sources, int start, int count)
    {
        int h = _h, d = h / 2, wide = Math.Max(_e, h), maxLen = 0;
        for (int i = 0; i < count; i++) maxLen = Math.Max(maxLen, sources[start + i].Length);
        if (_biOffset.Length < maxLen)
        {
            int n = Math.Max(maxLen, 2 * _biOffset.Length);
            _biOffset = new int[n]; _biCount = new int[n];
            for (int t = 0; t < n; t++) { _biOffset[t] = t; _biCount[t] = 1; }
            _biA = new float[n * wide]; _biB = new float[n * wide]; _biXr = new float[n * wide];
            _biGates = new float[n * 4 * d]; _biC = new float[n * d]; _biHF = new float[n * d]; _biHR = new float[n * d]; _biHPrev = new float[n * d];
        }
        for (int k = 0; k < _layers; k++) TensorPrimitives.Add(Param(_bIhRev[k]), Param(_bHhRev[k]), _biasRev[k]);
        _state.ClearRows(count, h);
        if (_attention != AttentionKind.None)
        {
            for (int i = 0; i < count; i++) _order[i] = i;
            PrepareMemory(sources, start, count, maxLen);
        }
        for (int i = 0; i < count; i++)
        {
            int[] src = sources[start + i];
            int len = src.Length;
            if (len == 0) continue;
            ReadOnlySpan<int> offset = _biOffset.AsSpan(0, len), steps = _biCount.AsSpan(0, len);
            K.EmbeddingForward(Param(_encEmbed), src, _biA, _e, 0, len);
            float[] x = _biA, output = _biB;
            int inDim = _e;
            for (int k = 0; k < _layers; k++)
            {
                int last = (len - 1) * d, row = i * h;
                Lstm.Forward(x, inDim, len, offset, steps, _biZeros, _biZeros, new LstmWeights(Param(_wIh[k]), Param(_wHh[k]), _bias[k]), d,
                    _biGates, _biC, _biHF, _biHPrev);
                _biHF.AsSpan(last, d).CopyTo(_state.H[k].AsSpan(row, d));
                _biC.AsSpan(last, d).CopyTo(_state.C[k].AsSpan(row, d));
                for (int t = 0; t < len; t++) x.AsSpan((len - 1 - t) * inDim, inDim).CopyTo(_biXr.AsSpan(t * inDim, inDim));
                Lstm.Forward(_biXr, inDim, len, offset, steps, _biZeros, _biZeros, new LstmWeights(Param(_wIhRev[k]), Param(_wHhRev[k]), _biasRev[k]), d,
                    _biGates, _biC, _biHR, _biHPrev);
                _biHR.AsSpan(last, d).CopyTo(_state.H[k].AsSpan(row + d, d));
                _biC.AsSpan(last, d).CopyTo(_state.C[k].AsSpan(row + d, d));
                for (int t = 0; t < len; t++)
                {
                    _biHF.AsSpan(t * d, d).CopyTo(output.AsSpan(t * h, d));
                    _biHR.AsSpan((len - 1 - t) * d, d).CopyTo(output.AsSpan(t * h + d, d));
                }
                (x, output) = (output, x);
                inDim = h;
            }
            if (_attention != AttentionKind.None) x.AsSpan(0, len * h).CopyTo(_state.Memory.AsSpan(i * _state.MemorySteps * h, len * h));
        }
        if (_attention != AttentionKind.None) ProjectKeys(count);
    }

    // ---- Attention (Luong dot / general, Bahdanau; the same computation as TrainingWorkspace.Attention) ----

    /// <summary>Attention weights of row <paramref name="row"/> at the last <see cref="Step"/> (or greedy step):
    /// one weight per source token of that row. Empty for a model without attention.</summary>
    public ReadOnlySpan<float> LastAttention(int row)
    {
        if (_attention == AttentionKind.None) return default;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)_maxBatch, nameof(row));
        return _attnWeights.AsSpan(row * _state.MemorySteps, _state.Lengths[row]);
    }

    /// <summary>Greedy reply to one source with the attention weights of every step: row i of the weights belongs to
    /// reply token i, the last row to the step that produced &lt;/s&gt; (absent when the reply stopped at
    /// <paramref name="maxSteps"/>); one column per source token. Decoded through the step API (<see cref="Step"/>),
    /// whose logits are the floats the fused greedy path chooses from (both run the GEMM's order), so the same reply.</summary>
    /// <exception cref="SeqtalkException">A source id is outside the source vocabulary.</exception>
    public (int[] Ids, float[][] Attention) GreedyDecodeWithAttention(int[] source, int maxSteps, bool banUnknown = false)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfNegative(maxSteps);
        Encode([source]);
        var ids = new List<int>();
        var weights = new List<float[]>();
        var logits = new float[_vt];
        int input = SpecialTokens.StartId;
        for (int step = 0; step < maxSteps; step++)
        {
            // The step API's path (the one ReplyDetailed and AttentionOf use), arg-max with the first maximum.
            Step([input], 1, logits);
            if (banUnknown && _vt > 1) logits[SpecialTokens.UnknownId] = float.NegativeInfinity;
            weights.Add(LastAttention(0).ToArray());
            input = TensorPrimitives.IndexOfMax(logits);
            if (input == SpecialTokens.EndId) break;
            ids.Add(input);
        }
        return ([.. ids], [.. weights]);
    }

    /// <summary>The attention weights of a given reply to <paramref name="source"/>, teacher-forced through the step API
    /// (rows are independent, so they are the weights the reply was decoded with): one row per reply token, plus the
    /// &lt;/s&gt; step when <paramref name="ended"/>; one column per source token. Null without attention.</summary>
    public float[][]? AttentionOf(int[] source, IReadOnlyList<int> reply, bool ended)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(reply);
        if (_attention == AttentionKind.None) return null;
        Encode([source]);
        var logits = new float[_vt];
        var rows = new float[reply.Count + (ended ? 1 : 0)][];
        int input = SpecialTokens.StartId;
        for (int t = 0; t < rows.Length; t++)
        {
            Step([input], 1, logits);
            rows[t] = LastAttention(0).ToArray();
            if (t < reply.Count) input = reply[t];
        }
        return rows;
    }

    /// <summary>Sizes the per-row memory for sources of up to <paramref name="steps"/> tokens and records their lengths
    /// (in the encoder's sorted row order, like the state).</summary>
    private void PrepareMemory(IReadOnlyList<int[]> sources, int start, int count, int steps)
    {
        bool keys = _attention != AttentionKind.Dot;
        steps = Math.Max(steps, 1);   // all sources empty: the lengths still need a home
        _state.EnsureMemory(_rows, steps, _h, keys);
        _spare.EnsureMemory(_rows, steps, _h, keys);
        int s = _state.MemorySteps;
        if (_attnWeights.Length < _rows * s)
        {
            _attnWeights = new float[_rows * s];
            if (_attention == AttentionKind.Bahdanau) _attnU = new float[checked(_rows * s * _h)];
        }
        for (int r = 0; r < count; r++) _state.Lengths[r] = sources[start + _order[r]].Length;
    }

    /// <summary>After encoder step t: the top layer's h of rows [0, rows) (sorted order) is their memory slot t.</summary>
    private void KeepEncoderOutputs(int t, int rows)
    {
        int h = _h, stride = _state.MemorySteps * h;
        float[] top = _state.H[_layers - 1];
        for (int r = 0; r < rows; r++) top.AsSpan(r * h, h).CopyTo(_state.Memory.AsSpan(r * stride + t * h, h));
    }

    /// <summary>keys = m·W_aᵀ (general) or m·W_kᵀ (Bahdanau), row by row over its real source steps, so a row's keys
    /// depend on that row alone.</summary>
    private void ProjectKeys(int count)
    {
        if (_attention == AttentionKind.Dot) return;
        int h = _h, stride = _state.MemorySteps * h;
        ReadOnlySpan<float> w = Param(_attention == AttentionKind.General ? _attnWa! : _attnWk!);
        // The weight packed once per model (MatMulForwardColumns: MatMulForward's bits, without packing it per question).
        ReadOnlySpan<float> packed = UsePackedWeights ? Packed().Keys : default;
        for (int r = 0; r < count; r++)
        {
            int len = _state.Lengths[r];
            if (len == 0) continue;
            K.MatMulForwardColumns(_state.Memory.AsSpan(r * stride, len * h), w, packed, default, _state.Keys.AsSpan(r * stride, len * h), len, h, h, 0, len, 0, h,
                accumulate: false);
        }
    }

    /// <summary>Replaces the decoder's top h in _x rows [0, rows) with h̃ = tanh(W_c [c; h]), c the attention context over
    /// the row's encoder outputs (an empty source gives c = 0).</summary>
    private void Attend(int rows, int pathRows)
    {
        int h = _h, steps = _state.MemorySteps;
        Span<float> query = _x.AsSpan(0, pathRows * h), ctx = _attnCtx.AsSpan(0, pathRows * h);
        ReadOnlySpan<int> lengths = _state.Lengths;
        if (_attention == AttentionKind.Bahdanau)
            K.MatMulForwardColumns(query, Param(_attnWq!), UsePackedWeights ? Packed().Query : default, default, _attnQuery.AsSpan(0, pathRows * h),
                pathRows, h, h, 0, rows, 0, h, accumulate: false);
        for (int r = 0; r < rows; r++)
        {
            if (lengths[r] == 0) { ctx.Slice(r * h, h).Clear(); continue; }
            switch (_attention)
            {
                case AttentionKind.None:
                    return;
                case AttentionKind.Dot:
                    K.DotAttentionForward(query, _state.Memory, _state.Memory, _identity, lengths, _attnWeights, ctx, steps, h, r, r + 1);
                    break;
                case AttentionKind.General:
                    K.DotAttentionForward(query, _state.Keys, _state.Memory, _identity, lengths, _attnWeights, ctx, steps, h, r, r + 1);
                    break;
                case AttentionKind.Bahdanau:
                    K.AdditiveAttentionForward(_attnQuery, _state.Keys, Param(_attnV!), _state.Memory, _identity, lengths, _attnU, _attnWeights, ctx,
                        steps, h, r, r + 1);
                    break;
            }
        }
        Span<float> cat = _attnCat.AsSpan(0, pathRows * 2 * h);
        for (int r = 0; r < rows; r++)
        {
            ctx.Slice(r * h, h).CopyTo(cat.Slice(2 * r * h, h));
            query.Slice(r * h, h).CopyTo(cat.Slice((2 * r + 1) * h, h));
        }
        ReadOnlySpan<float> packedWc = pathRows > K.MatMulDotRows && UsePackedWeights ? Packed().Combine : default;
        if (!packedWc.IsEmpty && rows <= K.MatMulDotRows)
            K.MatMulForwardPackedRows(cat, packedWc, default, query, pathRows, 2 * h, h, 0, rows, accumulate: false);   // the same bits
        else
            K.MatMulForwardColumns(cat, Param(_attnWc!), packedWc, default, query, pathRows, 2 * h, h, 0, rows, 0, h, accumulate: false);
        // Row by row: an activation's value may depend on the span length it sees (vector width, tail), so each row's
        // span is its own H floats whatever the rows beside it.
        for (int r = 0; r < rows; r++) TensorPrimitives.Tanh(query.Slice(r * h, h), query.Slice(r * h, h));
    }
}
