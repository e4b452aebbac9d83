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
/// </remarks>
internal sealed class TrainingData : IDisposable
{
    private TrainingData(int rows, Tokenizer source, Tokenizer target, IEncodedPairStore train, IEncodedPairStore validation)
    {
        Rows = rows;
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

    /// <exception cref="SeqtalkException">There are no pairs, the split is not possible, or the file changed between passes.</exception>
    public static TrainingData Prepare(IPairSource source, TrainingOptions options)
    {
        int rows = source.CountPairs();
        if (rows == 0) throw new SeqtalkException("There are no question/answer pairs to train on.");

        var (trainIndices, validationIndices) = DataSplit.Split(rows, options.ValidationSize, options.Split, options.Seed);
        int trainCount = trainIndices.Count;
        int[] validationRows = [.. validationIndices];   // ascending
        trainIndices.Clear();
        trainIndices.TrimExcess();

        var normalizer = new TextNormalizerOptions { Mode = options.Normalization, Lowercase = options.Lowercase };
        var sourceTokenizer = Trainer.TrainTokenizer(options, normalizer, TrainingRows(source, rows, validationRows).Select(p => p.Question));
        var targetTokenizer = Trainer.TrainTokenizer(options, Trainer.AnswerNormalizer(normalizer), TrainingRows(source, rows, validationRows).Select(p => p.Answer));

        int largestId = Math.Max(sourceTokenizer.Vocabulary.Count, targetTokenizer.Vocabulary.Count) - 1;
        var train = source.CreateStore(trainCount, largestId);
        IEncodedPairStore? validation = null;
        try
        {
            validation = source.CreateStore(validationRows.Length, largestId);
            int next = 0;   // the next validation row
            foreach (var (pair, row) in Checked(source, rows))
            {
                bool isValidation = next < validationRows.Length && validationRows[next] == row;
                if (isValidation) next++;
                var encoded = new EncodedPair(
                    Trainer.Cut(sourceTokenizer.EncodeToIds(pair.Question), options.MaxSequenceLength),
                    Trainer.Cut(targetTokenizer.EncodeToIds(pair.Answer), options.MaxSequenceLength));
                (isValidation ? validation : train).Add(encoded);
            }
            return new TrainingData(rows, sourceTokenizer, targetTokenizer, train, validation);
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
    private static IEnumerable<QaPair> TrainingRows(IPairSource source, int rows, int[] validationRows)
    {
        int next = 0;
        foreach (var (pair, row) in Checked(source, rows))
        {
            if (next < validationRows.Length && validationRows[next] == row) next++;
            else yield return pair;
        }
    }

    /// <summary>One pass with row numbers, checking that it has exactly the <paramref name="rows"/> pairs the first pass counted.</summary>
    private static IEnumerable<(QaPair Pair, int Row)> Checked(IPairSource source, int rows)
    {
        int row = 0;
        foreach (var pair in source.Read())
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
