using Seqtalk.Kernels;
using Seqtalk.Nn;

namespace Seqtalk.Training;

/// <summary>
/// One optimizer over the whole flat parameter buffer: the state buffers share the parameter layout,
/// so an update is one kernel call over one span (llm.c style).
/// </summary>
internal sealed class Optimizer
{
    // Keras defaults: RMSprop rho 0.9, eps 1e-7; Adam beta1 0.9, beta2 0.999, eps 1e-7; SGD momentum 0.9.
    public const float RmsPropRho = 0.9f;
    public const float Epsilon = 1e-7f;
    public const float AdamBeta1 = 0.9f;
    public const float AdamBeta2 = 0.999f;
    public const float SgdMomentum = 0.9f;

    /// <summary>Floats per item when threads split an update or a norm: fixed, so the result does not depend on the
    /// thread count (the update is elementwise; the norm adds the chunks' sums in chunk order).</summary>
    internal const int Chunk = 1 << 16;

    private readonly OptimizerKind _kind;
    private readonly float[] _state1;
    private readonly float[] _state2;
    private int _step;

    public Optimizer(OptimizerKind kind, int parameterCount)
    {
        _kind = kind;
        _state1 = new float[parameterCount];
        _state2 = kind == OptimizerKind.Adam ? new float[parameterCount] : [];
    }

    public int Step => _step;

    /// <summary>The first state buffer (RMSprop mean square, Adam first moment, SGD velocity), for checkpoints.</summary>
    public float[] State1 => _state1;

    /// <summary>The second state buffer (Adam second moment; empty for the others), for checkpoints.</summary>
    public float[] State2 => _state2;

    /// <summary>Puts back the state a checkpoint saved, so the next update is the one an unbroken run makes.</summary>
    public void Restore(ReadOnlySpan<float> state1, ReadOnlySpan<float> state2, int step)
    {
        if (state1.Length != _state1.Length || state2.Length != _state2.Length)
            throw new SeqtalkException($"The optimizer state has {state1.Length} + {state2.Length} values but {_kind} needs {_state1.Length} + {_state2.Length}.");
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        state1.CopyTo(_state1);
        state2.CopyTo(_state2);
        _step = step;
    }

    public void Update(Span<float> parameters, ReadOnlySpan<float> gradients, float learningRate)
    {
        _step++;
        UpdateRange(parameters, gradients, learningRate, 0, parameters.Length);
    }

    /// <summary><see cref="Update(Span{float}, ReadOnlySpan{float}, float)"/> with the parameters cut into
    /// <see cref="Chunk"/>-float items run on <paramref name="pool"/>'s threads; the same result bit for bit.</summary>
    public void Update(float[] parameters, float[] gradients, float learningRate, WorkerPool pool)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(pool);
        if (pool.Threads == 1 || parameters.Length <= Chunk)
        {
            Update(parameters, gradients, learningRate);
            return;
        }
        _step++;
        _parameters = parameters;
        _gradients = gradients;
        _learningRate = learningRate;
        _updateBody ??= i =>
        {
            int start = i * Chunk, length = Math.Min(Chunk, _parameters!.Length - start);
            UpdateRange(_parameters, _gradients, _learningRate, start, length);
        };
        pool.Run((parameters.Length + Chunk - 1) / Chunk, _updateBody);
        _parameters = _gradients = null;
    }

    /// <summary>Σ x² in double: <see cref="Chunk"/>-float chunks summed on <paramref name="pool"/>'s threads, then
    /// added in chunk order, so any thread count gives the same bits.</summary>
    public double SumOfSquares(float[] x, WorkerPool pool)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(pool);
        int chunks = (x.Length + Chunk - 1) / Chunk;
        if (chunks <= 1) return Kernels.Kernels.SumOfSquares(x);
        if (_partial.Length < chunks) _partial = new double[chunks];
        _norms = x;
        _normBody ??= i => _partial[i] = Kernels.Kernels.SumOfSquares(_norms.AsSpan(i * Chunk, Math.Min(Chunk, _norms!.Length - i * Chunk)));
        pool.Run(chunks, _normBody);
        _norms = null;
        double sum = 0;
        for (int i = 0; i < chunks; i++) sum += _partial[i];
        return sum;
    }

    private double[] _partial = [];
    private float[]? _norms;
    private Action<int>? _normBody;
    private float[]? _parameters, _gradients;
    private float _learningRate;
    private Action<int>? _updateBody;

    private void UpdateRange(Span<float> all, ReadOnlySpan<float> allGradients, float learningRate, int start, int length)
    {
        Span<float> parameters = all.Slice(start, length);
        ReadOnlySpan<float> gradients = allGradients.Slice(start, length);
        switch (_kind)
        {
            case OptimizerKind.RmsProp:
                Kernels.Kernels.RmsPropUpdate(parameters, gradients, _state1.AsSpan(start, length), learningRate, RmsPropRho, Epsilon);
                break;
            case OptimizerKind.Adam:
                Kernels.Kernels.AdamUpdate(parameters, gradients, _state1.AsSpan(start, length), _state2.AsSpan(start, length), learningRate, AdamBeta1, AdamBeta2, Epsilon, _step);
                break;
            case OptimizerKind.Sgd:
                Kernels.Kernels.SgdMomentumUpdate(parameters, gradients, _state1.AsSpan(start, length), learningRate, SgdMomentum);
                break;
            default:
                throw new InvalidOperationException($"Unknown optimizer {_kind}.");
        }
    }
}
