using System.Security.Cryptography;
using System.Text;
using Seqtalk.Data;

namespace Seqtalk.Training;

/// <summary>
/// Everything the training loop needs to continue exactly where it stopped, besides the weights, the
/// optimizer buffers and the best weights (which are tensors). Saved as the <c>"trainer"</c> object of
/// <c>checkpoint.json</c> with System.Text.Json: a new field is one property here (a learning-rate
/// schedule's state, say); a checkpoint written before the field existed reads it as its default.
/// </summary>
internal sealed class TrainerState
{
    /// <summary>The 1-based epoch in progress (one past the last finished epoch at an epoch end).</summary>
    public int Epoch { get; set; } = 1;
    /// <summary>Steps of <see cref="Epoch"/> already done, skipped steps included.</summary>
    public int StepInEpoch { get; set; }
    /// <summary>Steps done in the whole run (names the checkpoint directory).</summary>
    public long GlobalStep { get; set; }
    /// <summary>The optimizer's update count (Adam's bias correction needs it).</summary>
    public int OptimizerStep { get; set; }

    /// <summary>Loss sum of the applied steps of the epoch in progress.</summary>
    public double EpochLossSum { get; set; }
    /// <summary>Real target tokens of the applied steps of the epoch in progress.</summary>
    public long EpochTokens { get; set; }
    /// <summary>Correctly predicted tokens of the applied steps of the epoch in progress.</summary>
    public long EpochCorrect { get; set; }
    /// <summary>Skipped (non-finite) steps of the epoch in progress.</summary>
    public int EpochSkipped { get; set; }
    /// <summary>Wall time already spent on the epoch in progress, in seconds.</summary>
    public double EpochSeconds { get; set; }
    /// <summary>Wall time of the run before this process, in seconds.</summary>
    public double ElapsedSeconds { get; set; }

    /// <summary>Lowest selection criterion so far (validation loss, or training loss without validation).</summary>
    public double BestLoss { get; set; } = double.PositiveInfinity;
    /// <summary>The epoch whose weights are the best weights; 0 before the first epoch ends.</summary>
    public int BestEpoch { get; set; }
    /// <summary>Epochs since the last improvement (early stopping).</summary>
    public int EpochsWithoutImprovement { get; set; }
    /// <summary>Non-finite steps in a row just before this point.</summary>
    public int NonFiniteInARow { get; set; }
    /// <summary>Non-finite steps skipped in the whole run.</summary>
    public long SkippedSteps { get; set; }
    /// <summary>Early stopping ended the run.</summary>
    public bool StoppedEarly { get; set; }
    /// <summary>The learning-rate schedule's state (null in checkpoints written before schedules existed: the initial state).</summary>
    public LearningRateScheduleState? Schedule { get; set; }
    /// <summary>Every finished epoch.</summary>
    public List<EpochMetrics> History { get; set; } = [];

    /// <summary>Starts the next epoch: the counters of the finished one go.</summary>
    public void NextEpoch()
    {
        Epoch++;
        StepInEpoch = 0;
        EpochLossSum = 0;
        EpochTokens = 0;
        EpochCorrect = 0;
        EpochSkipped = 0;
        EpochSeconds = 0;
    }
}

/// <summary>Which pairs a run trained on: their count and the SHA-256 of their text (questions and
/// answers, each followed by a zero byte; line numbers are not included). A resumed run must see the same.
/// Computed over a list (<see cref="Of"/>) or pair by pair while a file is read (<see cref="Builder"/>):
/// the same pairs give the same fingerprint either way.</summary>
/// <param name="Rows">Number of pairs.</param>
/// <param name="Sha256">Lowercase hex SHA-256.</param>
internal sealed record DataFingerprint(int Rows, string Sha256)
{
    public static DataFingerprint Of(IReadOnlyList<QaPair> pairs)
    {
        using var builder = new Builder();
        foreach (var pair in pairs) builder.Add(pair);
        return builder.Finish();
    }

    /// <summary>The fingerprint of the pairs added so far, in order.</summary>
    internal sealed class Builder : IDisposable
    {
        private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private byte[] _buffer = new byte[4096];
        private int _rows;

        public void Add(QaPair pair)
        {
            ReadOnlySpan<byte> zero = [0];
            Append(pair.Question);
            _sha.AppendData(zero);
            Append(pair.Answer);
            _sha.AppendData(zero);
            _rows++;
        }

        /// <summary>The fingerprint; the builder starts again from no pairs.</summary>
        public DataFingerprint Finish()
        {
            var fingerprint = new DataFingerprint(_rows, Convert.ToHexStringLower(_sha.GetHashAndReset()));
            _rows = 0;
            return fingerprint;
        }

        public void Dispose() => _sha.Dispose();

        private void Append(string text)
        {
            int needed = Encoding.UTF8.GetMaxByteCount(text.Length);
            if (needed > _buffer.Length) _buffer = new byte[needed];
            int length = Encoding.UTF8.GetBytes(text, _buffer);
            _sha.AppendData(_buffer, 0, length);
        }
    }
}

/// <summary>A checkpoint as written or read: the model at this step (a loadable model directory), the
/// optimizer buffers, the best weights so far, the loop state, the options and the data fingerprint.</summary>
internal sealed record Checkpoint(
    ChatModel Model, float[] OptimizerState1, float[] OptimizerState2, float[]? Best,
    TrainerState State, TrainingOptions Options, DataFingerprint Data)
{
    /// <summary>The checkpoint directory it was read from; null for one being written.</summary>
    public string? Directory { get; init; }
}
