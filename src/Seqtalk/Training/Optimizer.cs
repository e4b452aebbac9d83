using Seqtalk.Kernels;

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
        switch (_kind)
        {
            case OptimizerKind.RmsProp:
                Kernels.Kernels.RmsPropUpdate(parameters, gradients, _state1, learningRate, RmsPropRho, Epsilon);
                break;
            case OptimizerKind.Adam:
                Kernels.Kernels.AdamUpdate(parameters, gradients, _state1, _state2, learningRate, AdamBeta1, AdamBeta2, Epsilon, _step);
                break;
            case OptimizerKind.Sgd:
                Kernels.Kernels.SgdMomentumUpdate(parameters, gradients, _state1, learningRate, SgdMomentum);
                break;
            default:
                throw new InvalidOperationException($"Unknown optimizer {_kind}.");
        }
    }
}
