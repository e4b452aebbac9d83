// LearningRateSchedule: the learning rate of every training step, from the options and an explicit state.
//
//   lr(step, epoch) = warmup(step) · max(base · decay(epoch) · plateau, minLr)
//   warmup(s) = min(1, s / W) for the s-th step (1-based), W = WarmupSteps; 1 when W = 0
//             (torch.optim.lr_scheduler.LinearLR(start_factor = 1/W, total_iters = W − 1), stepped per batch)
//   decay(e)  = F^max(0, e − S) for the e-th epoch (1-based), F = LearningRateDecay, S = LearningRateDecayStart
//             (with S = 1: ExponentialLR(gamma = F), stepped per epoch)
//   plateau   = product of PlateauFactor over every reduction: after an epoch whose criterion (validation loss)
//             is not below best·(1 − 1e-4), the bad-epoch count grows; when it exceeds PlateauPatience the factor
//             is applied and the count restarts (ReduceLROnPlateau(mode="min", threshold=1e-4, threshold_mode="rel",
//             cooldown=0, min_lr=minLr)).
// Every number that decides the next rate is in LearningRateScheduleState, so a checkpoint that stores the state
// resumes the schedule exactly. With the defaults every factor is 1 and lr is the base rate, bit for bit.

namespace Seqtalk.Training;

/// <summary>Everything a learning-rate schedule needs to continue where it stopped (a checkpoint stores it).</summary>
/// <param name="Step">Training steps (batches) taken so far, all epochs.</param>
/// <param name="Epoch">Epochs finished so far.</param>
/// <param name="PlateauScale">Product of the reduce-on-plateau factors applied so far (1 before any).</param>
/// <param name="PlateauBest">Best criterion seen by reduce-on-plateau (+∞ before the first epoch).</param>
/// <param name="BadEpochs">Epochs since the criterion last improved on <paramref name="PlateauBest"/>.</param>
public sealed record LearningRateScheduleState(long Step, int Epoch, double PlateauScale, double PlateauBest, int BadEpochs)
{
    /// <summary>The state of a run that has not started.</summary>
    public static LearningRateScheduleState Initial { get; } = new(0, 0, 1.0, double.PositiveInfinity, 0);
}

/// <summary>Computes the learning rate step by step; see the file header for the formula.</summary>
internal sealed class LearningRateSchedule
{
    /// <summary>ReduceLROnPlateau's default relative threshold: an epoch counts as better when below best·(1 − 1e-4).</summary>
    public const double PlateauThreshold = 1e-4;

    private readonly double _base, _decay, _plateauFactor, _minimum;
    private readonly int _warmup, _decayStart;
    private readonly int? _patience;

    /// <summary>A schedule for <paramref name="options"/>, resumed from <paramref name="state"/> (null: from the start).</summary>
    public LearningRateSchedule(TrainingOptions options, LearningRateScheduleState? state = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _base = options.LearningRate;
        _warmup = options.WarmupSteps;
        _decay = options.LearningRateDecay;
        _decayStart = options.LearningRateDecayStart;
        _plateauFactor = options.PlateauFactor ?? 1.0;
        _patience = options.PlateauFactor is null ? null : options.PlateauPatience;
        _minimum = options.MinLearningRate;
        State = state ?? LearningRateScheduleState.Initial;
    }

    /// <summary>The current state: store it to resume.</summary>
    public LearningRateScheduleState State { get; private set; }

    /// <summary>The rate of the step after the last one taken (what <see cref="NextStep"/> will return).</summary>
    public float Current => RateAt(State.Step + 1, State.Epoch + 1);

    /// <summary>Counts one step and returns its learning rate.</summary>
    public float NextStep()
    {
        State = State with { Step = State.Step + 1 };
        return RateAt(State.Step, State.Epoch + 1);
    }

    /// <summary>Ends an epoch: counts it and lets reduce-on-plateau see its criterion (validation loss; null or
    /// non-finite is ignored by the plateau rule).</summary>
    public void EndEpoch(double? criterion)
    {
        var s = State with { Epoch = State.Epoch + 1 };
        if (_patience is { } patience && criterion is { } c && double.IsFinite(c))
        {
            if (c < s.PlateauBest * (1 - PlateauThreshold) || double.IsPositiveInfinity(s.PlateauBest))
            {
                s = s with { PlateauBest = c, BadEpochs = 0 };
            }
            else
            {
                s = s with { BadEpochs = s.BadEpochs + 1 };
                if (s.BadEpochs > patience)
                {
                    // ReduceLROnPlateau does not go below min_lr: stop shrinking once the floor is reached.
                    if (_base * DecayAt(s.Epoch) * s.PlateauScale > _minimum)
                        s = s with { PlateauScale = s.PlateauScale * _plateauFactor };
                    s = s with { BadEpochs = 0 };
                }
            }
        }
        State = s;
    }

    /// <summary>The learning rate of the step-th step (1-based) in the epoch-th epoch (1-based).</summary>
    public float RateAt(long step, int epoch)
    {
        double rate = _base * DecayAt(epoch) * State.PlateauScale;
        if (rate < _minimum) rate = _minimum;
        if (_warmup > 0 && step < _warmup) rate *= (double)step / _warmup;
        return (float)rate;
    }

    private double DecayAt(int epoch) => _decay == 1.0 || epoch <= _decayStart ? 1.0 : Math.Pow(_decay, epoch - _decayStart);
}
