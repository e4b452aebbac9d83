// TrainingWorkspace.Regularization: dropout and label smoothing for the training pass.
//
// Dropout (inverted, rate p, training only: ForwardBackward, never Forward) is applied at five kinds of site:
//   the encoder and decoder embedding outputs (tensor ids 0, 1), the outputs of every encoder and decoder
//   LSTM layer that feeds another layer (ids 16 + k, 32 + k; PyTorch nn.LSTM's `dropout`, so the final
//   states handed to the decoder are not dropped), and the top decoder output gathered for the projection (id 2).
// Each site is masked in place right after it is computed; its gradient is masked in place at the mirror
// point of the backward pass. Masks come from Kernels.DropoutMask: a pure function of (seed, Step, tensor id,
// logical element index), the logical index of packed row (t, b) being (t·B + b)·W + j, so a mask does not
// depend on the thread count or on packing, and a run that knows its step reproduces it (no RNG state).
// Threads: a site's rows are cut into items of DropoutRows rows (fixed); masks and products are per element,
// so any split gives the same bits.
// Label smoothing ε changes the gradient of the output kernel only; BatchStats.LossSum stays the true NLL and
// BatchStats.SmoothedLossSum holds the smoothed loss that was differentiated.

using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

internal sealed partial class TrainingWorkspace
{
    /// <summary>Dropout mask tensor ids (part of the mask key: changing one changes every mask).</summary>
    internal static class DropoutTensor
    {
        public const int EncoderEmbedding = 0;
        public const int DecoderEmbedding = 1;
        public const int DecoderOutput = 2;
        public static int EncoderLayer(int k) => 16 + k;
        public static int DecoderLayer(int k) => 32 + k;
    }

    /// <summary>Fills a dropout mask [rows, width] for a tensor id, given each row's logical key t·B + b; replaces
    /// the hash (tests feed fixed masks, as a PyTorch fixture does).</summary>
    internal delegate void DropoutMaskSource(int tensor, ReadOnlySpan<int> rowKeys, int batchSize, int width, Span<float> mask);

    private float _dropout, _labelSmoothing;
    private ulong _dropoutSeed;
    private bool _dropping;
    private int[]? _encKeys, _decKeys, _outKeys;                       // [R], [Rdec], [N]: logical row keys t·B + b
    private float[]? _maskEncX, _maskDecX, _maskOut;                   // [R, E], [Rdec, E], [N, H]
    private float[][]? _maskEncH, _maskDecH;                           // per layer below the top, [R, H] / [Rdec, H]
    private double[]? _smoothedLosses;                                 // [N]

    /// <summary>Dropout rate p in [0, 1) for ForwardBackward; 0 (the default) turns it off.</summary>
    public float Dropout
    {
        get => _dropout;
        set
        {
            if (!(value is >= 0f and < 1f)) throw new ArgumentOutOfRangeException(nameof(value), value, "The dropout rate must be in [0, 1).");
            _dropout = value;
            if (value > 0f && _maskOut is null) AllocateDropout();
        }
    }

    /// <summary>Seed of the dropout masks.</summary>
    public ulong DropoutSeed { get => _dropoutSeed; set => _dropoutSeed = value; }

    /// <summary>Global training step of the next ForwardBackward: part of every dropout mask's key.</summary>
    public long Step { get; set; }

    /// <summary>Replaces the hashed masks (tests only); null for the hash.</summary>
    internal DropoutMaskSource? MaskSource { get; set; }

    /// <summary>Label smoothing ε in [0, 1) of the training gradient; 0 (the default) is plain cross-entropy.</summary>
    public float LabelSmoothing
    {
        get => _labelSmoothing;
        set
        {
            if (!(value is >= 0f and < 1f)) throw new ArgumentOutOfRangeException(nameof(value), value, "Label smoothing must be in [0, 1).");
            _labelSmoothing = value;
            _smoothedLosses ??= value > 0f ? new double[_losses.Length] : null;
        }
    }

    private void AllocateDropout()
    {
        int rEnc = _maxBatch * _maxSourceSteps, rDec = _maxBatch * _maxTargetSteps;
        _encKeys = new int[rEnc]; _decKeys = new int[rDec]; _outKeys = new int[rDec];
        _maskEncX = new float[checked(rEnc * _e)]; _maskDecX = new float[checked(rDec * _e)];
        _maskOut = new float[checked(rDec * _h)];
        _maskEncH = Jagged(_layers - 1, checked(rEnc * _h));
        _maskDecH = Jagged(_layers - 1, checked(rDec * _h));
    }

    /// <summary>Decides whether this call drops and, if so, writes every packed row's logical key t·B + b.</summary>
    private void PrepareDropout(int batchSize, int sourceSteps, int targetSteps, bool backward)
    {
        _dropping = backward && _dropout > 0f;
        if (!_dropping) return;
        for (int t = 0; t < sourceSteps; t++)
        {
            for (int j = 0; j < _encCount[t]; j++) _encKeys![_encOffset[t] + j] = t * batchSize + j;
        }
        for (int t = 0; t < targetSteps; t++)
        {
            for (int j = 0; j < _decCount[t]; j++) _decKeys![_decOffset[t] + j] = t * batchSize + _decOrder[j];
        }
    }

    /// <summary>Output row n holds decoder row _outRows[n]: its key is that row's key.</summary>
    private void PrepareOutputKeys(int n)
    {
        if (!_dropping) return;
        for (int i = 0; i < n; i++) _outKeys![i] = _decKeys![_outRows[i]];
    }

    /// <summary>Rows per item of a dropout pass over a site.</summary>
    internal const int DropoutRows = 64;

    private Action<int>? _dropBody;
    private float[]? _dropX;
    private int _dropTensor, _dropRows, _dropWidth;
    private bool _dropGradient;

    /// <summary>x ← x ⊙ mask for a site, the mask made from its tensor id and the step; no-op when not dropping.</summary>
    private void DropForward(int tensor, float[] x, int rows, int width, int batchSize)
    {
        if (!_dropping) return;
        if (MaskSource is { } source)
        {
            var (mask, keys) = Site(tensor);
            Span<float> m = mask.AsSpan(0, rows * width);
            source(tensor, keys.AsSpan(0, rows), batchSize, width, m);
            K.DropoutForward(x.AsSpan(0, rows * width), m, x);
            return;
        }
        RunDrop(tensor, x, rows, width, gradient: false);
    }

    /// <summary>Runs a site's mask and product (or, for a gradient, the product only) by items of rows on the pool.</summary>
    private void RunDrop(int tensor, float[] x, int rows, int width, bool gradient)
    {
        (_dropTensor, _dropX, _dropRows, _dropWidth, _dropGradient) = (tensor, x, rows, width, gradient);
        _dropBody ??= DropItem;
        _pool.Run((rows + DropoutRows - 1) / DropoutRows, _dropBody);
        _dropX = null;
    }

    private void DropItem(int item)
    {
        int r0 = item * DropoutRows, r1 = Math.Min(_dropRows, r0 + DropoutRows), w = _dropWidth;
        var (mask, keys) = Site(_dropTensor);
        Span<float> x = _dropX.AsSpan(r0 * w, (r1 - r0) * w);
        ReadOnlySpan<float> m = mask.AsSpan(r0 * w, (r1 - r0) * w);
        if (_dropGradient)
        {
            K.DropoutBackward(x, m, x);
            return;
        }
        K.DropoutMask(K.DropoutKey(_dropoutSeed, Step, _dropTensor), keys, mask, _dropout, w, r0, r1);
        K.DropoutForward(x, m, x);
    }

    /// <summary>Fills the mask of a site for rows with the given logical keys, without applying it.</summary>
    private void FillMask(int tensor, float[] mask, int[] keys, int rows, int width, int batchSize)
    {
        Span<float> m = mask.AsSpan(0, rows * width);
        if (MaskSource is { } source) source(tensor, keys.AsSpan(0, rows), batchSize, width, m);
        else K.DropoutMask(K.DropoutKey(_dropoutSeed, Step, tensor), keys, m, _dropout, width, 0, rows);
    }

    /// <summary>dx ← dx ⊙ mask, the mirror of <see cref="DropForward"/>; no-op when not dropping.</summary>
    private void DropBackward(int tensor, float[] dx, int rows, int width)
    {
        if (!_dropping) return;
        RunDrop(tensor, dx, rows, width, gradient: true);
    }

    /// <summary>The smoothed-loss slice of output rows [r0, r0 + rows), empty without smoothing (the kernel then skips it).</summary>
    private Span<double> SmoothedLosses(int r0, int rows) => _labelSmoothing > 0f ? _smoothedLosses.AsSpan(r0, rows) : default;

    private double SmoothedLossSum(int n, double lossSum)
    {
        if (_labelSmoothing == 0f) return lossSum;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += _smoothedLosses![i];
        return sum;
    }

    private (float[] Mask, int[] Keys) Site(int tensor) => tensor switch
    {
        DropoutTensor.EncoderEmbedding => (_maskEncX!, _encKeys!),
        DropoutTensor.DecoderEmbedding => (_maskDecX!, _decKeys!),
        DropoutTensor.DecoderOutput => (_maskOut!, _outKeys!),
        >= 32 => (_maskDecH![tensor - 32], _decKeys!),
        _ => (_maskEncH![tensor - 16], _encKeys!),
    };
}
