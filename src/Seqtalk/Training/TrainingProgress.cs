namespace Seqtalk.Training;

/// <summary>What a training run reports while it runs: after every step and at the end of every epoch.</summary>
public sealed record TrainingProgress
{
    /// <summary>1-based epoch.</summary>
    public required int Epoch { get; init; }
    /// <summary>Epochs planned.</summary>
    public required int Epochs { get; init; }
    /// <summary>Steps done in this epoch.</summary>
    public required int Step { get; init; }
    /// <summary>Steps in one epoch.</summary>
    public required int StepsPerEpoch { get; init; }
    /// <summary>Mean loss per real target token so far in this epoch: the true cross-entropy (without label smoothing),
    /// measured with dropout on.</summary>
    public required double TrainLoss { get; init; }
    /// <summary>Real target tokens per second so far in this epoch.</summary>
    public required double TokensPerSecond { get; init; }
    /// <summary>Time since training started.</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>Global gradient norm of the last step (before clipping).</summary>
    public required double GradientNorm { get; init; }
    /// <summary>Learning rate of the last step (after warmup, decay and reduce-on-plateau).</summary>
    public double LearningRate { get; init; }
    /// <summary>Steps of this epoch skipped so far because their loss or gradient norm was not finite.</summary>
    public int SkippedSteps { get; init; }
    /// <summary>Set at the end of an epoch, after validation; null during the epoch.</summary>
    public EpochMetrics? EpochEnd { get; init; }
}

/// <summary>The metrics of one finished epoch. Losses are mean cross-entropy per real target token.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean training loss over the epoch.</param>
/// <param name="TrainAccuracy">Share of real target tokens predicted exactly during training.</param>
/// <param name="ValidationLoss">Validation loss, or null without validation rows.</param>
/// <param name="ValidationPerplexity">exp(ValidationLoss), or null.</param>
/// <param name="ValidationAccuracy">Share of real validation target tokens predicted exactly (teacher forcing), or null.</param>
/// <param name="Duration">Wall time of the epoch, validation included.</param>
/// <param name="TokensPerSecond">Real training target tokens per second.</param>
/// <param name="IsBest">True when this epoch has the lowest validation loss so far (or, without validation, is the last).</param>
/// <param name="LearningRate">Learning rate of the epoch's last step (NaN when unknown, e.g. in models saved before it was recorded).</param>
public sealed record EpochMetrics(
    int Epoch, double TrainLoss, double TrainAccuracy, double? ValidationLoss, double? ValidationPerplexity,
    double? ValidationAccuracy, TimeSpan Duration, double TokensPerSecond, bool IsBest, double LearningRate = double.NaN)
{
    /// <summary>Steps skipped in this epoch because their loss or gradient norm was not finite (their update was not applied).</summary>
    public int SkippedSteps { get; init; }
}

/// <summary>How a training run went.</summary>
public sealed record TrainingSummary
{
    /// <summary>Every finished epoch, in order.</summary>
    public required IReadOnlyList<EpochMetrics> Epochs { get; init; }
    /// <summary>The epoch whose weights the model holds (lowest validation loss; the last one without validation); 0 if none finished.</summary>
    public required int BestEpoch { get; init; }
    /// <summary>True when cancellation stopped the run early.</summary>
    public required bool Cancelled { get; init; }
    /// <summary>True when early stopping ended the run.</summary>
    public required bool StoppedEarly { get; init; }
    /// <summary>Training rows used.</summary>
    public required int TrainingPairs { get; init; }
    /// <summary>Validation rows held out.</summary>
    public required int ValidationPairs { get; init; }
    /// <summary>Steps skipped in the whole run because their loss or gradient norm was not finite.</summary>
    public long SkippedSteps { get; init; }
    /// <summary>The last checkpoint this run wrote (<see cref="TrainingOptions.CheckpointDirectory"/>); null when none.</summary>
    public string? LastCheckpoint { get; init; }
}
