// TrainingWorkspace: the activation and activation-gradient arena of one trainer, and the model's
// forward and backward pass written top to bottom (llm.c's gpt2_forward / gpt2_backward).
//
// Legend: B batch, Ts source steps, Tt target steps, E embedding, H hidden, G = 4H, L layers,
// Vs / Vt source / target vocabulary, R real source tokens, N real target tokens.
// Forward:
//   encoder: embed the source packed by step (only real tokens) → L LSTM layers from a zero state;
//   the state after row b's last real token seeds decoder layer k (pack_padded_sequence semantics);
//   decoder: rows sorted by target length (longest first) and packed by step like the encoder, so only
//   real target positions are computed: embed <s> y1..yn → L LSTM layers;
//   gather the top h of the N real target positions, ordered by (b, t), into one [N, H] matrix →
//   logits = h·out.wᵀ + out.b → softmax cross-entropy (LossSum in double) → with backward, dLogits →
//   dh and dW of the projection, all fused per block of rows (Kernels.Output), so [N, Vt] never exists.
// Optional sections in their own files: attention after the decoder (TrainingWorkspace.Attention.cs), the
// bidirectional encoder (TrainingWorkspace.Bidirectional.cs) and the learned bridge between the encoder's final
// states and the decoder's initial ones (TrainingWorkspace.Bridge.cs), and input feeding, which moves attention into
// a step-by-step decoder loop (TrainingWorkspace.InputFeeding.cs); with none, the model is the tutorial's.
// Backward: the same calls in exact reverse order. Parameter gradients are ADDED (lossScale·dLossSum/dθ)
// into the caller's buffer; the arena is cleared here, once per call, where the rule needs zeros.
// The output rows are cut into blocks and the blocks into at most MaxStrands strands, both fixed by N
// alone; each strand accumulates its own dW, and the strands' dW are added in strand order. Threads take
// whole strands, so results do not depend on the thread count.

using System.Numerics;
using System.Numerics.Tensors;
using Seqtalk.Data;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

/// <summary>Loss sum, real target tokens and arg-max hits of one batch.</summary>
internal readonly record struct BatchStats(double LossSum, int Tokens, int Correct)
{
    /// <summary>The label-smoothed loss sum that was differentiated; equals <see cref="LossSum"/> without smoothing.</summary>
    public double SmoothedLossSum { get; init; } = LossSum;
}

/// <summary>Activation arena for training; not thread-safe; reused across batches.</summary>
internal sealed partial class TrainingWorkspace
{
    /// <summary>Most strands the output rows are cut into (each has its own dW, [Vt, H]).</summary>
    internal const int MaxStrands = 4;

    private readonly Seq2SeqModel _model;
    private readonly int _maxBatch, _maxSourceSteps, _maxTargetSteps;
    private readonly int _e, _h, _g, _layers, _vs, _vt;
    private readonly LayerSlots[] _encSlots, _decSlots;
    private readonly ParameterSlot _encEmbed, _decEmbed, _outW, _outB;

    private readonly int[] _encOffset, _encCount, _decOffset, _decCount;   // [Ts], [Tt]
    private readonly int[] _encIds, _decIds;                               // [R], [N]
    private readonly int[] _decOrder, _decPos;                             // [B]: packed slot → batch row, batch row → slot
    private readonly float[] _encX, _decX;                                 // [R, E], [Tt·B, E]
    private readonly float[][] _encGates, _encC, _encH, _encHPrev;         // per layer, packed
    private readonly float[][] _decGates, _decC, _decH, _decHPrev;         // per layer, packed
    private readonly float[][] _bias;                                      // per LSTM (enc layers, then dec), [G]
    private readonly float[][] _h0, _c0, _dH0, _dC0;                       // per layer, [B, H]
    private readonly float[] _zeros, _discard;                             // [B, H]
    private readonly int[] _outRows, _targets, _predicted;                 // [N]
    private readonly double[] _losses;                                     // [N]
    private readonly float[] _hOut, _dHOut;                                // [N, H]
    private readonly int _blockRows;                                       // rows per output block (rb)
    private readonly float[][] _blockZ, _blockMax, _strandDW, _strandDB;   // per strand [Vt, rb], [rb], [Vt, H], [Vt]
    private readonly double[][] _blockSum;                                 // per strand [rb]
    private readonly int _dwCols;                                          // 0, or the padded width of the strands' dW (H + 1 → 64)
    private readonly float[][] _blockXp;                                   // per strand [rb, _dwCols]: [x | 1 | 0 …] when padded
    private readonly float[][] _blockXt;                                   // per strand [H, 64]: xᵀ for OutputBlockForwardMax
    private float[]? _lastLogits;                                          // [N, Vt], only when LastLogits is read
    private readonly float[] _dPre;                                        // [R, G]
    private float[] _dA, _dB;                                              // [R, max(E, H)]
    private readonly float[] _dC;                                          // [R, H]

    private readonly Action<int> _strandBody;
    private readonly int[] _strandOrder = new int[MaxStrands];
    private readonly WorkerPool _pool;
    private readonly LstmParallel _lstmParallel;
    private int _strands, _blocks;
    private bool _backward;
    private int _tokens;
    private float _lossScale;

    private readonly record struct LayerSlots(ParameterSlot WIh, ParameterSlot WHh, ParameterSlot BIh, ParameterSlot BHh);

    /// <summary>Sizes the arena once for the largest batch it will see.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A capacity or the thread count is below 1.</exception>
    public TrainingWorkspace(Seq2SeqModel model, int maxBatch, int maxSourceSteps, int maxTargetSteps, int threads)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSourceSteps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTargetSteps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _model = model;
        _maxBatch = maxBatch; _maxSourceSteps = maxSourceSteps; _maxTargetSteps = maxTargetSteps;
        var cfg = model.Config;
        _e = cfg.EmbeddingDim; _h = cfg.HiddenDim; _g = 4 * _h; _layers = cfg.Layers;
        _vs = cfg.SourceVocabSize; _vt = cfg.TargetVocabSize;
        var layout = model.Layout;
        _encEmbed = layout[ParameterLayout.Names.EncoderEmbedding];
        _decEmbed = layout[ParameterLayout.Names.DecoderEmbedding];
        _outW = layout.OutputWeight;   // dec.embed when the embeddings are tied
        _outB = layout[ParameterLayout.Names.OutputBias];
        _encSlots = new LayerSlots[_layers];
        _decSlots = new LayerSlots[_layers];
        for (int k = 0; k < _layers; k++)
        {
            _encSlots[k] = Slots(layout, ParameterLayout.Names.Encoder, k);
            _decSlots[k] = Slots(layout, ParameterLayout.Names.Decoder, k);
        }

        int rEnc = checked(maxBatch * maxSourceSteps), rDec = checked(maxBatch * maxTargetSteps);
        int rMax = Math.Max(rEnc, rDec), wide = Math.Max(_e, _h), bh = maxBatch * _h;
        _encOffset = new int[maxSourceSteps]; _encCount = new int[maxSourceSteps];
        _decOffset = new int[maxTargetSteps]; _decCount = new int[maxTargetSteps];
        _encIds = new int[rEnc]; _decIds = new int[rDec];
        _decOrder = new int[maxBatch]; _decPos = new int[maxBatch];
        _encX = new float[rEnc * _e]; _decX = new float[rDec * _e];
        _encGates = Jagged(_layers, checked(rEnc * _g)); _encC = Jagged(_layers, rEnc * _h);
        _encH = Jagged(_layers, rEnc * _h); _encHPrev = Jagged(_layers, rEnc * _h);
        _decGates = Jagged(_layers, checked(rDec * _g)); _decC = Jagged(_layers, rDec * _h);
        _decH = Jagged(_layers, rDec * _h); _decHPrev = Jagged(_layers, rDec * _h);
        _bias = Jagged(2 * _layers, _g);
        _h0 = Jagged(_layers, bh); _c0 = Jagged(_layers, bh);
        _dH0 = Jagged(_layers, bh); _dC0 = Jagged(_layers, bh);
        _zeros = new float[bh]; _discard = new float[bh];
        _outRows = new int[rDec]; _targets = new int[rDec]; _predicted = new int[rDec];
        _losses = new double[rDec];
        _hOut = new float[rDec * _h]; _dHOut = new float[rDec * _h];
        // Blocks of 64 rows keep a [Vt, rb] block in L2 for small H; larger H has more GEMM work per dW pass.
        _blockRows = _h <= 128 ? 64 : 128;
        _blockZ = Jagged(MaxStrands, checked(_vt * _blockRows)); _blockMax = Jagged(MaxStrands, _blockRows);
        _blockSum = new double[MaxStrands][];
        for (int s = 0; s < MaxStrands; s++) _blockSum[s] = new double[_blockRows];
        // Small H on Vector512: the strands keep dW and db together as [Vt, 64] (columns H and up: db, then zeros), filled by
        // one register-blocked GEMM per block (Kernels.OutputGemm) instead of a GEMM with a 32 + 18 column edge plus row sums.
        _dwCols = K.OutputPaddedWeightIsVectorized && _h + 1 <= 64 ? K.OutputPaddedWidth(_h) : 0;
        _blockXp = Jagged(_dwCols > 0 ? MaxStrands : 0, _blockRows * _dwCols);
        _blockXt = Jagged(_dwCols > 0 ? MaxStrands : 0, 64 * _h);
        _strandDW = Jagged(MaxStrands, checked(_vt * Math.Max(_h, _dwCols))); _strandDB = Jagged(MaxStrands, _dwCols > 0 ? 0 : _vt);
        _dPre = new float[checked(rMax * _g)];
        _dA = new float[rMax * wide]; _dB = new float[rMax * wide];
        _dC = new float[rMax * _h];
        _strandBody = item => RunStrand(_strandOrder[item]);
        _pool = new WorkerPool(threads);
        _lstmParallel = new LstmParallel(_pool);
        InitAttention(maxBatch, maxSourceSteps, rDec);
        InitBidirectional(rEnc);
        InitBridge();
        InitInputFeeding(rDec);
    }

    /// <summary>The workspace's threads (the caller and threads − 1 workers), for the optimizer's sections too.</summary>
    internal WorkerPool Pool => _pool;

    /// <summary>When set, each call adds its time per phase here (the benchmark's --profile).</summary>
    internal PhaseProfile? Profile
    {
        get => _lstmParallel.Profile;
        set => _lstmParallel.Profile = value;
    }

    /// <summary>Logits [N, Vt] of the real target tokens of the last call, rows ordered by (b, t).</summary>
    /// <remarks>The fused pass never stores them: they are recomputed on first access after a call (one GEMM, the
    /// same arithmetic as MatMulForward) from that call's top-layer states and the current weights, so read them
    /// before the weights change. For tests and tools; training never touches this buffer.</remarks>
    public ReadOnlySpan<float> LastLogits
    {
        get
        {
            int len = _tokens * _vt;
            if (_lastLogits is null || _lastLogits.Length < len) _lastLogits = new float[len];
            ReadOnlySpan<float> p = _model.Parameters;
            K.MatMulForward(_hOut.AsSpan(0, _tokens * _h), p.Slice(_outW.Offset, _outW.Length), p.Slice(_outB.Offset, _outB.Length),
                _lastLogits.AsSpan(0, len), _tokens, _h, _vt, 0, _tokens);
            return _lastLogits.AsSpan(0, len);
        }
    }

    /// <summary>Cross-entropy (nats) of each real target token of the last call, rows ordered by (b, t).</summary>
    public ReadOnlySpan<double> LastTokenLosses => _losses.AsSpan(0, _tokens);

    /// <summary>Forward only (evaluation).</summary>
    /// <exception cref="SeqtalkException">The batch exceeds the capacity of this workspace.</exception>
    public BatchStats Forward(Batch batch) => Run(batch, default, 0f, backward: false);

    /// <summary>Forward and backward: ADDS lossScale·d(LossSum)/dθ into <paramref name="gradients"/> (the caller zeros it).</summary>
    /// <exception cref="SeqtalkException">The batch exceeds the capacity of this workspace.</exception>
    public BatchStats ForwardBackward(Batch batch, Span<float> gradients, float lossScale)
    {
        if (gradients.Length != _model.Layout.TotalLength)
            throw new ArgumentException($"The gradient buffer has {gradients.Length} floats; the model has {_model.Layout.TotalLength} parameters.", nameof(gradients));
        return Run(batch, gradients, lossScale, backward: true);
    }

    private BatchStats Run(Batch batch, Span<float> gradients, float lossScale, bool backward)
    {
        if (Profile is not { } profile) return RunPasses(batch, gradients, lossScale, backward);
        long start = PhaseProfile.Now;
        var stats = RunPasses(batch, gradients, lossScale, backward);
        profile.AddWorkspaceCall(start);   // Other = the whole call less the phases timed inside it
        return stats;
    }

    private BatchStats RunPasses(Batch batch, Span<float> gradients, float lossScale, bool backward)
    {
        Validate(batch);
        int bsz = batch.Size, ts = batch.SourceSteps, tt = batch.TargetSteps, h = _h, e = _e;

        // ---- Encoder plan: step t holds the rows whose source is longer than t (a prefix). ----
        int rows = 0;
        for (int t = 0; t < ts; t++)
        {
            int cnt = 0;
            while (cnt < bsz && batch.SourceLengths[cnt] > t) cnt++;
            _encOffset[t] = rows; _encCount[t] = cnt;
            for (int b = 0; b < cnt; b++) _encIds[rows + b] = batch.Source[b * ts + t];
            rows += cnt;
        }
        // ---- Decoder plan: slots sorted by target length, longest first (stable), then packed the same way,
        // so step t holds exactly the real positions t of the rows still running: no padding is computed. ----
        int slot = 0;
        for (int len = tt; len >= 1; len--)
        {
            for (int b = 0; b < bsz; b++)
            {
                if (batch.TargetLengths[b] != len) continue;
                _decOrder[slot] = b; _decPos[b] = slot; slot++;
            }
        }
        int rowsDec = 0;
        for (int t = 0; t < tt; t++)
        {
            int cnt = 0;
            while (cnt < bsz && batch.TargetLengths[_decOrder[cnt]] > t) cnt++;
            _decOffset[t] = rowsDec; _decCount[t] = cnt;
            for (int j = 0; j < cnt; j++) _decIds[rowsDec + j] = batch.DecoderInput[_decOrder[j] * tt + t];
            rowsDec += cnt;
        }
        for (int k = 0; k < _layers; k++)
        {
            TensorPrimitives.Add(Param(_encSlots[k].BIh), Param(_encSlots[k].BHh), _bias[k]);
            TensorPrimitives.Add(Param(_decSlots[k].BIh), Param(_decSlots[k].BHh), _bias[_layers + k]);
        }
        PrepareDropout(bsz, ts, tt, backward);
        ReadOnlySpan<int> encOffset = _encOffset.AsSpan(0, ts), encCount = _encCount.AsSpan(0, ts);
        ReadOnlySpan<int> decOffset = _decOffset.AsSpan(0, tt), decCount = _decCount.AsSpan(0, tt);

        // ---- Encoder forward ----
        K.EmbeddingForward(Param(_encEmbed), _encIds.AsSpan(0, rows), _encX, e, 0, rows);
        DropForward(DropoutTensor.EncoderEmbedding, _encX, rows, e, bsz);   // a no-op unless dropping
        if (_bidirectional) BidirectionalEncoderForward(batch, rows, encOffset, encCount);   // TrainingWorkspace.Bidirectional.cs
        for (int k = 0; k < _layers && !_bidirectional; k++)
        {
            if (k > 0) DropForward(DropoutTensor.EncoderLayer(k - 1), _encH[k - 1], rows, h, bsz);   // after its state seeded the decoder
            Lstm.Forward(k == 0 ? _encX : _encH[k - 1], k == 0 ? e : h, rows, encOffset, encCount, _zeros, _zeros,
                Weights(_encSlots[k], _bias[k]), h, _encGates[k], _encC[k], _encH[k], _encHPrev[k], _lstmParallel);
            // The state after row b's last real token seeds decoder layer k (in b's decoder slot).
            for (int b = 0; b < bsz; b++)
            {
                int pos = (_encOffset[batch.SourceLengths[b] - 1] + b) * h;
                _encH[k].AsSpan(pos, h).CopyTo(_h0[k].AsSpan(_decPos[b] * h, h));
                _encC[k].AsSpan(pos, h).CopyTo(_c0[k].AsSpan(_decPos[b] * h, h));
            }
        }

        if (_bridge) BridgeForward(bsz);   // _h0/_c0: encoder final states → decoder initial states (TrainingWorkspace.Bridge.cs)

        // ---- Decoder forward ----
        K.EmbeddingForward(Param(_decEmbed), _decIds.AsSpan(0, rowsDec), _decX, e, 0, rowsDec);
        DropForward(DropoutTensor.DecoderEmbedding, _decX, rowsDec, e, bsz);
        if (_inputFeeding) InputFeedingForward(batch, rowsDec, decOffset, decCount);   // step by step, attention inside (TrainingWorkspace.InputFeeding.cs)
        for (int k = 0; k < _layers && !_inputFeeding; k++)
        {
            if (k > 0) DropForward(DropoutTensor.DecoderLayer(k - 1), _decH[k - 1], rowsDec, h, bsz);
            Lstm.Forward(k == 0 ? _decX : _decH[k - 1], k == 0 ? e : h, rowsDec, decOffset, decCount, _h0[k], _c0[k],
                Weights(_decSlots[k], _bias[_layers + k]), h, _decGates[k], _decC[k], _decH[k], _decHPrev[k], _lstmParallel);
        }

        // ---- Output: gather the real target positions, project, softmax cross-entropy ----
        int n = 0;
        float[] top = _inputFeeding ? _feedHt : _decH[_layers - 1];   // input feeding: h̃, already computed
        for (int b = 0; b < bsz; b++)
        {
            for (int t = 0; t < batch.TargetLengths[b]; t++, n++)
            {
                int row = _decOffset[t] + _decPos[b];
                _outRows[n] = row;
                _targets[n] = batch.DecoderTarget[b * tt + t];
                top.AsSpan(row * h, h).CopyTo(_hOut.AsSpan(n * h, h));
                if (_inputFeeding) _attnWeights.AsSpan(row * ts, ts).CopyTo(_feedWeights.AsSpan(n * ts, ts));
            }
        }
        _tokens = n;
        PrepareOutputKeys(n);
        if (!_inputFeeding) DropForward(DropoutTensor.DecoderOutput, _hOut, n, h, bsz);   // dropout on the top h, before attention reads it (input feeding: in its loop)
        if (_attention != AttentionKind.None && !_inputFeeding) AttentionForward(batch, n);   // _hOut: h → h̃ (TrainingWorkspace.Attention.cs)
        _lossScale = lossScale;
        _backward = backward;
        // Projection, softmax-CE and (with backward) dh and the strands' dW, block by block.
        if (backward) _dHOut.AsSpan(0, n * h).Clear();
        long clock = PhaseProfile.Now;
        RunOutput(n);
        Profile?.Add(TrainingPhase.Output, clock);
        double lossSum = 0;
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            lossSum += _losses[i];
            if (_predicted[i] == _targets[i]) correct++;
        }
        var stats = new BatchStats(lossSum, n, correct) { SmoothedLossSum = SmoothedLossSum(n, lossSum) };
        if (!backward) return stats;

        // ==== Backward: the forward calls in exact reverse order ====
        // (the projection and softmax-CE backward ran block by block above; add the strands' dW in strand order)
        AddStrandGradients(Grad(gradients, _outW), Grad(gradients, _outB));

        if (_inputFeeding) InputFeedingBackward(batch, n, rowsDec, decOffset, decCount, gradients);   // leaves d embedding in _dA
        else DecoderBackward(batch, n, rowsDec, decOffset, decCount, gradients);
        DropBackward(DropoutTensor.DecoderEmbedding, _dA, rowsDec, e);
        K.EmbeddingBackward(_decIds.AsSpan(0, rowsDec), _dA, Grad(gradients, _decEmbed), e, 0, rowsDec);

        if (_bridge) BridgeBackward(bsz, gradients);   // _dH0/_dC0: d decoder initial states → d encoder final states

        // Encoder: the decoder's initial-state gradients enter at each row's last real step.
        _dA.AsSpan(0, rows * h).Clear();
        if (_attention != AttentionKind.None) AddMemoryGradient(batch, _dA);   // attention read the top layer's every h
        if (_bidirectional) BidirectionalEncoderBackward(batch, rows, encOffset, encCount, gradients);
        for (int k = _layers - 1; k >= 0 && !_bidirectional; k--)
        {
            int inDim = k == 0 ? e : h;
            _dC.AsSpan(0, rows * h).Clear();
            for (int b = 0; b < bsz; b++)
            {
                int pos = (_encOffset[batch.SourceLengths[b] - 1] + b) * h;
                Span<float> dh = _dA.AsSpan(pos, h), dc = _dC.AsSpan(pos, h);
                TensorPrimitives.Add(dh, _dH0[k].AsSpan(_decPos[b] * h, h), dh);
                TensorPrimitives.Add(dc, _dC0[k].AsSpan(_decPos[b] * h, h), dc);
            }
            _dB.AsSpan(0, rows * inDim).Clear();
            Lstm.Backward(k == 0 ? _encX : _encH[k - 1], inDim, rows, encOffset, encCount, _zeros,
                Weights(_encSlots[k], _bias[k]), h, _encGates[k], _encC[k], _encHPrev[k],
                _dA, _dC, _dPre, _dB, default, default, _discard, Grads(gradients, _encSlots[k]), _lstmParallel);
            (_dA, _dB) = (_dB, _dA);
            if (k > 0) DropBackward(DropoutTensor.EncoderLayer(k - 1), _dA, rows, h);
        }
        DropBackward(DropoutTensor.EncoderEmbedding, _dA, rows, e);
        K.EmbeddingBackward(_encIds.AsSpan(0, rows), _dA, Grad(gradients, _encEmbed), e, 0, rows);
        return stats;
    }

    /// <summary>Backward of the decoder without input feeding: attention (if any), the output dropout, then the LSTM
    /// layers in reverse over the packed rows; leaves d embedding in _dA and the initial-state gradients in _dH0/_dC0.</summary>
    private void DecoderBackward(Batch batch, int n, int rowsDec, ReadOnlySpan<int> decOffset, ReadOnlySpan<int> decCount, Span<float> gradients)
    {
        int h = _h, e = _e;
        if (_attention != AttentionKind.None) AttentionBackward(batch, n, gradients);   // _dHOut: dh̃ → dh; d memory kept
        DropBackward(DropoutTensor.DecoderOutput, _dHOut, n, h);

        // Decoder: scatter dh of the real positions back into the top layer's packed gradient.
        Span<float> dH = _dA.AsSpan(0, rowsDec * h);
        dH.Clear();
        for (int i = 0; i < n; i++)
        {
            Span<float> dst = dH.Slice(_outRows[i] * h, h);
            TensorPrimitives.Add(dst, _dHOut.AsSpan(i * h, h), dst);
        }
        for (int k = 0; k < _layers; k++) { Array.Clear(_dH0[k]); Array.Clear(_dC0[k]); }
        for (int k = _layers - 1; k >= 0; k--)
        {
            int inDim = k == 0 ? e : h;
            _dC.AsSpan(0, rowsDec * h).Clear();
            _dB.AsSpan(0, rowsDec * inDim).Clear();
            Lstm.Backward(k == 0 ? _decX : _decH[k - 1], inDim, rowsDec, decOffset, decCount, _c0[k],
                Weights(_decSlots[k], _bias[_layers + k]), h, _decGates[k], _decC[k], _decHPrev[k],
                _dA, _dC, _dPre, _dB, _dH0[k], _dC0[k], _discard, Grads(gradients, _decSlots[k]), _lstmParallel);
            (_dA, _dB) = (_dB, _dA);
            if (k > 0) DropBackward(DropoutTensor.DecoderLayer(k - 1), _dA, rowsDec, h);
        }
    }

    private void RunOutput(int n)
    {
        _blocks = (n + _blockRows - 1) / _blockRows;
        _strands = Math.Min(MaxStrands, _blocks);
        // Longest strands first (threads take items in order), so that e.g. strands of 1, 2, 1, 2 blocks on two
        // threads end after 3 blocks, not 4. Which thread runs a strand changes no result.
        for (int s = 0; s < _strands; s++)
        {
            // Insertion by length, descending; equal lengths keep strand order.
            int length = StrandLength(s), at = s;
            while (at > 0 && StrandLength(_strandOrder[at - 1]) < length) { _strandOrder[at] = _strandOrder[at - 1]; at--; }
            _strandOrder[at] = s;
        }
        _pool.Run(_strands, _strandBody);
    }

    /// <summary>Output rows (of Vt) per item when threads add the strands' dW: each element still gets the strands in order.</summary>
    private const int StrandSumRows = 256;

    private unsafe float* _sumDW, _sumDB;
    private Action<int>? _strandSumBody;

    // dW += Σ_s strandDW[s] and db += Σ_s strandDB[s], strands in order for every element, rows split across threads.
    private unsafe void AddStrandGradients(Span<float> dW, Span<float> dB)
    {
        fixed (float* pW = dW, pB = dB)
        {
            _sumDW = pW;
            _sumDB = pB;
            _strandSumBody ??= AddStrandRows;
            _pool.Run((_vt + StrandSumRows - 1) / StrandSumRows, _strandSumBody);
            _sumDW = _sumDB = null;
        }
    }

    private unsafe void AddStrandRows(int item)
    {
        int o0 = item * StrandSumRows, rows = Math.Min(StrandSumRows, _vt - o0), h = _h;
        var dW = new Span<float>(_sumDW + (nint)o0 * h, rows * h);
        var dB = new Span<float>(_sumDB + o0, rows);
        if (_dwCols > 0)
        {
            // Padded strands: row o is dW[o, 0..H), then db[o] at column H. Row by row, all strands into registers and one
            // store: each element is ((dW + s0) + s1) + … as before, with dW read and written once instead of once per strand.
            int cols = _dwCols, strands = _strands, n = Vector<float>.Count;
            for (int o = 0; o < rows; o++)
            {
                Span<float> dst = dW.Slice(o * h, h);
                int at = (o0 + o) * cols, i = 0;
                for (; i <= h - n; i += n)
                {
                    var v = new Vector<float>(dst[i..]);
                    for (int s = 0; s < strands; s++) v += new Vector<float>(_strandDW[s], at + i);
                    v.CopyTo(dst[i..]);
                }
                for (; i <= h; i++)
                {
                    // The last columns of dW, then (i = H) db.
                    float v = i < h ? dst[i] : dB[o];
                    for (int s = 0; s < strands; s++) v += _strandDW[s][at + i];
                    if (i < h) dst[i] = v;
                    else dB[o] = v;
                }
            }
            return;
        }
        for (int s = 0; s < _strands; s++)
        {
            TensorPrimitives.Add(dW, _strandDW[s].AsSpan(o0 * h, rows * h), dW);
            TensorPrimitives.Add(dB, _strandDB[s].AsSpan(o0, rows), dB);
        }
    }

    private int StrandLength(int strand)
    {
        var (start, end) = StrandBlocks(_blocks, _strands, strand);
        return end - start;
    }

    /// <summary>Strand s of S covers blocks [blocks·s/S, blocks·(s+1)/S): fixed by N, not by the thread count.</summary>
    internal static (int Start, int End) StrandBlocks(int blocks, int strands, int strand) =>
        ((int)((long)blocks * strand / strands), (int)((long)blocks * (strand + 1) / strands));

    private void RunStrand(int strand)
    {
        var (first, last) = StrandBlocks(_blocks, _strands, strand);
        int n = _tokens, h = _h, vt = _vt, rb = _blockRows;
        ReadOnlySpan<float> p = _model.Parameters;
        ReadOnlySpan<float> w = p.Slice(_outW.Offset, _outW.Length), bias = p.Slice(_outB.Offset, _outB.Length);
        float[] z = _blockZ[strand];
        // Every block of a strand takes the fused backward when the padded dW applies (rows ≤ rb = 64): its first block then
        // writes the strand's dW instead of adding to a cleared buffer (the same bits, 4 × [Vt, 64] floats fewer to clear).
        bool cleared = !(_dwCols > 0 && K.OutputBlockForwardMaxApplies(rb, h, rb));
        if (_backward && cleared) { Array.Clear(_strandDW[strand]); Array.Clear(_strandDB[strand]); }   // (no _strandDB when padded)
        for (int blk = first; blk < last; blk++)
        {
            int r0 = blk * rb, rows = Math.Min(rb, n - r0);
            ReadOnlySpan<float> x = _hOut.AsSpan(r0 * h, rows * h);
            // Small H on Vector512: the projection computes the softmax's column maxima as it goes (its pass 1 is skipped),
            // and the softmax's last pass runs inside OutputBlockBackward, chunk by chunk.
            bool small = _dwCols > 0 && K.OutputBlockForwardMaxApplies(rows, h, rb);
            if (small) K.OutputBlockForwardMax(x, w, bias, z, _blockMax[strand], _predicted.AsSpan(r0, rows), _blockXt[strand], rows, h, vt, rb);
            else K.OutputBlockForward(x, w, bias, z, rows, h, vt, rb);
            bool fused = _backward && small;
            K.SoftmaxCrossEntropyColumns(z, _targets.AsSpan(r0, rows), _losses.AsSpan(r0, rows), SmoothedLosses(r0, rows), _predicted.AsSpan(r0, rows),
                _blockMax[strand], _blockSum[strand], vt, rb, rows, _lossScale, _backward && !fused, _labelSmoothing, maxGiven: small);
            if (!_backward) continue;
            if (!fused)
            {
                K.OutputBlockBackwardInput(z, w, _dHOut.AsSpan(r0 * h, rows * h), rows, h, vt, rb);
                K.OutputBlockBackwardWeight(z, x, _strandDW[strand], _strandDB[strand], rows, h, vt, rb);
                continue;
            }
            // xp = [x | 1 | 0 …]: column H of the padded dW accumulates db.
            int cols = _dwCols;
            Span<float> xp = _blockXp[strand].AsSpan(0, rows * cols);
            xp.Clear();
            for (int r = 0; r < rows; r++)
            {
                x.Slice(r * h, h).CopyTo(xp.Slice(r * cols, h));
                xp[r * cols + h] = 1f;
            }
            // z holds e = exp(z − max) and _blockSum Σe: dLogits, dh and the padded dW (+ db) in one sweep over Vt.
            K.OutputBlockBackward(z, _targets.AsSpan(r0, rows), _blockSum[strand], w, xp, _dHOut.AsSpan(r0 * h, rows * h), _strandDW[strand],
                rows, h, cols, vt, rb, _lossScale, _labelSmoothing, overwriteWeight: !cleared && blk == first);
        }
    }

    private void Validate(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Size > _maxBatch)
            throw new SeqtalkException($"The batch has {batch.Size} rows but the training workspace holds at most maxBatch = {_maxBatch}; raise the batch capacity or lower the batch size.");
        if (batch.SourceSteps > _maxSourceSteps)
            throw new SeqtalkException($"The batch has a source of {batch.SourceSteps} tokens but the training workspace holds at most maxSourceSteps = {_maxSourceSteps}; raise the maximum source length.");
        if (batch.TargetSteps > _maxTargetSteps)
            throw new SeqtalkException($"The batch has a target of {batch.TargetSteps} tokens (with </s>) but the training workspace holds at most maxTargetSteps = {_maxTargetSteps}; raise the maximum target length.");
        int bsz = batch.Size, ts = batch.SourceSteps, tt = batch.TargetSteps;
        if (bsz < 1 || ts < 1 || tt < 1 || batch.Source.Length < bsz * ts || batch.DecoderInput.Length < bsz * tt
            || batch.DecoderTarget.Length < bsz * tt || batch.SourceLengths.Length < bsz || batch.TargetLengths.Length < bsz)
            throw new ArgumentException("The batch arrays do not match its Size, SourceSteps and TargetSteps.", nameof(batch));
        int real = 0;
        for (int b = 0; b < bsz; b++)
        {
            int ls = batch.SourceLengths[b], lt = batch.TargetLengths[b];
            if (ls < 1 || ls > ts || (b > 0 && ls > batch.SourceLengths[b - 1]))
                throw new ArgumentException($"Source length {ls} of row {b} is not in 1..{ts} or the rows are not sorted longest first.", nameof(batch));
            if (lt < 1 || lt > tt)
                throw new ArgumentException($"Target length {lt} of row {b} is not in 1..{tt}.", nameof(batch));
            real += lt;
        }
        if (real != batch.RealTargetTokens)
            throw new ArgumentException($"RealTargetTokens is {batch.RealTargetTokens} but the target lengths add up to {real}.", nameof(batch));
        CheckIds(batch.Source.AsSpan(0, bsz * ts), _vs, "source");
        CheckIds(batch.DecoderInput.AsSpan(0, bsz * tt), _vt, "decoder input");
        CheckIds(batch.DecoderTarget.AsSpan(0, bsz * tt), _vt, "decoder target");
    }

    private static void CheckIds(ReadOnlySpan<int> ids, int vocab, string what)
    {
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocab)
                throw new SeqtalkException($"A {what} token id {id} is outside the model's vocabulary of {vocab}; the tokenizer and the model do not match.");
        }
    }

    private ReadOnlySpan<float> Param(ParameterSlot s) => _model.Parameters.AsSpan(s.Offset, s.Length);
    private static Span<float> Grad(Span<float> g, ParameterSlot s) => g.Slice(s.Offset, s.Length);
    private LstmWeights Weights(LayerSlots s, float[] bias) => new(Param(s.WIh), Param(s.WHh), bias);
    private static LstmGradients Grads(Span<float> g, LayerSlots s) => new(Grad(g, s.WIh), Grad(g, s.WHh), Grad(g, s.BIh), Grad(g, s.BHh));

    private static LayerSlots Slots(ParameterLayout layout, string prefix, int k) => new(
        layout[ParameterLayout.Names.LstmWeightIh(prefix, k)], layout[ParameterLayout.Names.LstmWeightHh(prefix, k)],
        layout[ParameterLayout.Names.LstmBiasIh(prefix, k)], layout[ParameterLayout.Names.LstmBiasHh(prefix, k)]);

    private static float[][] Jagged(int count, int length)
    {
        var a = new float[count][];
        for (int i = 0; i < count; i++) a[i] = new float[length];
        return a;
    }
}
