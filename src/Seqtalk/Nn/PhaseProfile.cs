// PhaseProfile: wall-clock time per phase of a training step, for the benchmark's --profile breakdown.
// Off unless a caller sets TrainingWorkspace.Profile; then each phase adds Stopwatch ticks (a few hundred
// timestamps per batch, far below the noise of a step).

using System.Diagnostics;

namespace Seqtalk.Nn;

/// <summary>The phases a training step is cut into by <see cref="PhaseProfile"/>.</summary>
internal enum TrainingPhase
{
    /// <summary>x·W_ihᵀ + b for all steps of an LSTM layer (one GEMM).</summary>
    InputProjection,

    /// <summary>Per time step: h·W_hhᵀ and the fused gates (forward).</summary>
    RecurrentForward,

    /// <summary>Output projection, fused softmax cross-entropy, its dh and dW.</summary>
    Output,

    /// <summary>Per time step: the gates' backward and dh·W_hh.</summary>
    RecurrentBackward,

    /// <summary>dW_ih, dW_hh, the biases and dX of an LSTM layer (GEMMs over all rows after the loop).</summary>
    WeightGradients,

    /// <summary>Everything else inside the workspace: plans, embeddings, gathers, clears, dropout, attention.</summary>
    Other,

    /// <summary>Gradient norm, clipping and the optimizer update (timed by the caller).</summary>
    Optimizer,
}

/// <summary>Accumulated wall-clock seconds per <see cref="TrainingPhase"/>.</summary>
internal sealed class PhaseProfile
{
    private readonly long[] _ticks = new long[Enum.GetValues<TrainingPhase>().Length];
    private long _workspaceCalls;

    /// <summary>Now, in Stopwatch ticks.</summary>
    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="phase"/> and returns now.</summary>
    public long Add(TrainingPhase phase, long start)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)phase] += now - start;
        return now;
    }

    /// <summary>Adds the time of a whole workspace call since <paramref name="start"/>; what its timed phases do not
    /// cover is <see cref="TrainingPhase.Other"/>.</summary>
    public void AddWorkspaceCall(long start) => _workspaceCalls += Stopwatch.GetTimestamp() - start;

    /// <summary>Seconds spent in <paramref name="phase"/> so far.</summary>
    public double Seconds(TrainingPhase phase)
    {
        long ticks = _ticks[(int)phase];
        if (phase == TrainingPhase.Other)
        {
            ticks = _workspaceCalls;
            foreach (var inner in (ReadOnlySpan<TrainingPhase>)[TrainingPhase.InputProjection, TrainingPhase.RecurrentForward, TrainingPhase.Output,
                TrainingPhase.RecurrentBackward, TrainingPhase.WeightGradients])
                ticks -= _ticks[(int)inner];
        }
        return (double)ticks / Stopwatch.Frequency;
    }

    /// <summary>Starts again from zero.</summary>
    public void Clear()
    {
        Array.Clear(_ticks);
        _workspaceCalls = 0;
    }
}
