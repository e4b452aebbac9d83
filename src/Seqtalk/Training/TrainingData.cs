using Seqtalk.Data;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>
/// The data side of a training run, before the first epoch: the split, the two tokenizers and the encoded
/// training and validation pairs. It streams: the pairs are read in passes and never held as text.
/// </summary>
/// <remarks>
/// Passes over the source: (1) count the pairs, for the split; (2) train the question tokenizer on the
/// training rows; (3) train the answer tokenizer on them; (4) encode every pair into the training or the
/// validation store. A list in memory goes through the same passes (they cost nothing there), so both give
/// the same tokenizers, the same encoded pairs and therefore the same batches. What stays in memory:
/// the validation row numbers (4 bytes each) while encoding, the tokenizers' counts (bounded by the
/// distinct words), and what the stores keep (see <see cref="TokenStore"/>).
/// <para>A resumed run (a <see cref="Checkpoint"/>) skips passes 2 and 3 (it keeps the checkpoint's tokenizers)
/// and has its data checked against the checkpoint's <see cref="DataFingerprint"/>: the count right after
/// pass 1, the SHA-256 during pass 4, so other data is refused before the first step and without ever holding
/// the pairs. A new run that writes checkpoints computes its fingerprint during pass 4 the same way.</para>
/// <para>Reading a <see cref="PairFile"/> stops between rows when the cancellation token fires
/// (<see cref="OperationCanceledException"/>: nothing was trained yet); a list is read at once.</para>
/// </remarks>
internal sealed class TrainingData : IDisposable
{
    private TrainingData(int rows, Tokenizer source, Tokenizer target, IEncodedPairStore train, IEncodedPairStore validation, DataFingerprint? fingerprint)
    {
        Rows = rows;
        Fingerprint = fingerprint;
        SourceTokenizer = source;
        TargetTokenizer = target;
        Train = train;
        Validation = validation;
    }

    /// <summary>Pairs in the source.</summary>
    public int Rows { get; }
    public Tokenizer SourceTokenizer { get; }
    public Tokenizer TargetTokenizer { get; }
    public IEncodedPairStore Train { get; }
    public IEncodedPairStore Validation { get; }

    /// <summary>The source's fingerprint, when it was asked for or a checkpoint was resumed; else null.</summary>
    public DataFingerprint? Fingerprint { get; }

    /// <param name="source">The pairs.</param>
    /// <param name="options">The run's options (split, tokenizers, cut).</param>
    /// <param name="resume">The checkpoint a resumed run continues: its tokenizers are used and its data
    /// fingerprint must match; null for a new run.</param>
    /// <param name="fingerprint">Compute the source's <see cref="DataFingerprint"/> (always done when resuming).</param>
    /// <param name="cancellationToken">Stops reading a file between rows.</param>
    /// <exception cref="SeqtalkException">There are no pairs, the split is not possible, the file changed between
    /// passes, or the data differs from the resumed checkpoint's.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while a file was read.</exception>
    public static TrainingData Prepare(IPairSource source, TrainingOptions options, Checkpoint? resume = null, bool fingerprint = false,
        CancellationToken cancellationToken = default)
    {
        int rows = source.CountPairs();
        if (rows == 0) throw new SeqtalkException("There are no question/answer pairs to train on.");
        if (resume is not null && rows != resume.Data.Rows) throw Trainer.DataDiffers(resume, rows, null);

        var (trainIndices, validationIndices) = DataSplit.Split(rows, options.ValidationSize, options.Split, options.Seed);
        int trainCount = trainIndices.Count;
        int[] validationRows = [.. validationIndices];   // ascending
        trainIndices.Clear();
        trainIndices.TrimExcess();

        var normalizer = new TextNormalizerOptions { Mode = options.Normalization, Lowercase = options.Lowercase };
        var sourceTokenizer = resume?.Model.SourceTokenizer
            ?? Trainer.TrainTokenizer(options, normalizer, TrainingRows(source, rows, validationRows, cancellationToken).Select(p => p.Question));
        var targetTokenizer = resume?.Model.TargetTokenizer
            ?? Trainer.TrainTokenizer(options, Trainer.AnswerNormalizer(normalizer), TrainingRows(source, rows, validationRows, cancellationToken).Select(p => p.Answer));

        int largestId = Math.Max(sourceTokenizer.Vocabulary.Count, targetTokenizer.Vocabulary.Count) - 1;
        using var hash = fingerprint || resume is not null ? new DataFingerprint.Builder() : null;
        var train = source.CreateStore(trainCount, largestId);
        IEncodedPairStore? validation = null;
        try
        {
            validation = source.CreateStore(validationRows.Length, largestId);
            int next = 0;   // the next validation row
            foreach (var (pair, row) in Checked(source, rows, cancellationToken))
            {
                bool isValidation = next < validationRows.Length && validationRows[next] == row;
                if (isValidation) next++;
                var encoded = new EncodedPair(
                    Trainer.Cut(sourceTokenizer.EncodeToIds(pair.Question), options.MaxSequenceLength),
                    Trainer.Cut(targetTokenizer.EncodeToIds(pair.Answer), options.MaxSequenceLength));
                (isValidation ? validation : train).Add(encoded);
                hash?.Add(pair);
            }
            var data = hash?.Finish();
            if (resume is not null && data != resume.Data) throw Trainer.DataDiffers(resume, data!.Rows, data.Sha256);
            return new TrainingData(rows, sourceTokenizer, targetTokenizer, train, validation, data);
        }
        catch
        {
            train.Dispose();
            validation?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
    }

    /// <summary>The training rows (those not in <paramref name="validationRows"/>, ascending), in order.</summary>
    private static IEnumerable<QaPair> TrainingRows(IPairSource source, int rows, int[] validationRows, CancellationToken cancellationToken)
    {
        int next = 0;
        foreach (var (pair, row) in Checked(source, rows, cancellationToken))
        {
            if (next < validationRows.Length && validationRows[next] == row) next++;
            else yield return pair;
        }
    }

    /// <summary>One pass with row numbers, checking that it has exactly the <paramref name="rows"/> pairs the first pass counted.</summary>
    private static IEnumerable<(QaPair Pair, int Row)> Checked(IPairSource source, int rows, CancellationToken cancellationToken)
    {
        int row = 0;
        foreach (var pair in source.Read(cancellationToken))
        {
            if (row == rows) throw Changed(source, rows, "more");
            yield return (pair, row++);
        }
        if (row != rows) throw Changed(source, rows, $"only {row:N0}");
    }

    private static DataFormatException Changed(IPairSource source, int rows, string now) =>
        new(source.Name, 0, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"changed while training read it: the first pass found {rows:N0} pairs, a later one {now}; do not write to the file during training."));
}
