using System.Text;
using Seqtalk.Data;
using Seqtalk.Tests.Data;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

/// <summary>Training on a <see cref="PairFile"/> (passes over the file, ids in a temporary file) gives the
/// same model as training on the same pairs in memory.</summary>
public sealed class StreamingTrainingTests : IDisposable
{
    private readonly DataFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static string Csv(string field) =>
        field.Contains(',', StringComparison.Ordinal) || field.Contains('"', StringComparison.Ordinal) || field.Contains('\n', StringComparison.Ordinal)
            ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
            : field;

    private string WriteCsv(IEnumerable<QaPair> pairs)
    {
        var text = new StringBuilder("Q,A,label\n");
        int i = 0;
        foreach (var pair in pairs)
        {
            text.Append(Csv(pair.Question)).Append(',').Append(Csv(pair.Answer)).Append(",0\n");
            if (++i == 7) text.Append("빈 답,,0\n");   // a skipped row: row numbers must not count it
        }
        return _files.Write("pairs.csv", text.ToString());
    }

    private static TrainingOptions Options(SplitMode split) => new()
    {
        Epochs = 3,
        BatchSize = 8,
        EmbeddingDim = 8,
        HiddenDim = 12,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.01f,
        ValidationSize = 0.25,
        Split = split,
        Seed = 11,
        Threads = 1,
        MaxSequenceLength = 5,   // some answers are cut
    };

    [Theory]
    [InlineData(SplitMode.Random, TokenizerKind.Word)]
    [InlineData(SplitMode.Tail, TokenizerKind.Word)]
    [InlineData(SplitMode.Random, TokenizerKind.Bpe)]
    public void FileAndList_TrainTheSameModel(SplitMode split, TokenizerKind tokenizer)
    {
        var pairs = ChatModelTests.SyntheticPairs(45);
        pairs[3] = pairs[3] with { Answer = "쉼표, 그리고 \"따옴표\"" };
        string path = WriteCsv(pairs);
        var options = Options(split) with { Tokenizer = tokenizer, BpeVocabularySize = 300 };

        var inMemory = ChatModel.Train(PairReader.ReadAll(path, null, out _), options);
        var file = new PairFile(path) { TemporaryDirectory = _files.Folder };
        var streamed = ChatModel.Train(file, options);

        Assert.Equal(45, file.CountPairs());
        Assert.Equal(1, file.Report!.Skipped);
        Assert.Equal(inMemory.Network.Parameters, streamed.Network.Parameters);
        Assert.Equal(Tokens(inMemory.SourceTokenizer), Tokens(streamed.SourceTokenizer));
        Assert.Equal(Tokens(inMemory.TargetTokenizer), Tokens(streamed.TargetTokenizer));
        Assert.Equal(inMemory.DefaultMaxReplyLength, streamed.DefaultMaxReplyLength);
        Assert.Equal(inMemory.Split, streamed.Split);
        var (a, b) = (inMemory.Training!, streamed.Training!);
        Assert.Equal((a.TrainingPairs, a.ValidationPairs, a.BestEpoch), (b.TrainingPairs, b.ValidationPairs, b.BestEpoch));
        Assert.Equal(a.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss)), b.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss)));
        Assert.Empty(Directory.GetFiles(_files.Folder, "*.tmp"));   // the token files are gone
    }

    private static string[] Tokens(Tokenizer tokenizer) =>
        Enumerable.Range(0, tokenizer.Vocabulary.Count).Select(tokenizer.Vocabulary.GetToken).ToArray();

    /// <summary>A source whose later passes find a different number of pairs, as a file being written would.</summary>
    private sealed class GrowingSource(List<QaPair> pairs, int growOnPass, int delta) : IPairSource
    {
        private int _passes;
        public string Name => "growing.csv";
        public int CountPairs() => pairs.Count;
        public IEnumerable<QaPair> Read() => ++_passes >= growOnPass ? pairs.Take(pairs.Count + Math.Min(0, delta)).Concat(pairs.Take(Math.Max(0, delta))) : pairs;
        public IEncodedPairStore CreateStore(int capacity, int largestId) => new EncodedPairList(capacity);
    }

    [Theory]
    [InlineData(1, 3, "a later one more")]
    [InlineData(3, -2, "a later one only 38")]
    public void AFileThatChangesBetweenPasses_IsAnError(int growOnPass, int delta, string expected)
    {
        var source = new GrowingSource(ChatModelTests.SyntheticPairs(40), growOnPass, delta);
        var ex = Assert.Throws<DataFormatException>(() => Trainer.Run(source, Options(SplitMode.Random), null, default));
        Assert.Equal($"growing.csv: changed while training read it: the first pass found 40 pairs, {expected}; do not write to the file during training.", ex.Message);
    }
}
