using System.Text;
using Seqtalk.Data;
using Seqtalk.IO;
using Seqtalk.Tests.Data;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

/// <summary>Training on a <see cref="PairFile"/> (passes over the file, ids in a temporary file) gives the
/// same model as training on the same pairs in memory, resumes from its checkpoints exactly, refuses other
/// data on resume, and closes its token files however it ends.</summary>
public sealed class StreamingTrainingTests : IDisposable
{
    private readonly DataFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static string Csv(string field) =>
        field.Contains(',', StringComparison.Ordinal) || field.Contains('"', StringComparison.Ordinal) || field.Contains('\n', StringComparison.Ordinal)
            ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
            : field;

    private string WriteCsv(IEnumerable<QaPair> pairs, string name = "pairs.csv")
    {
        var text = new StringBuilder("Q,A,label\n");
        int i = 0;
        foreach (var pair in pairs)
        {
            text.Append(Csv(pair.Question)).Append(',').Append(Csv(pair.Answer)).Append(",0\n");
            if (++i == 7) text.Append("빈 답,,0\n");   // a skipped row: row numbers must not count it
        }
        return _files.Write(name, text.ToString());
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
        public IEnumerable<QaPair> Read(CancellationToken cancellationToken) => ++_passes >= growOnPass ? pairs.Take(pairs.Count + Math.Min(0, delta)).Concat(pairs.Take(Math.Max(0, delta))) : pairs;
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

    /// <summary>4 epochs straight against 2 epochs with checkpoints then a resume to 4, the two halves each
    /// trained on the file or on the same pairs in memory: the fingerprint, the batches and the updates are
    /// the same whichever way the pairs arrive, so the weights are bit-identical.</summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]    // a run trained in memory continued from the file
    [InlineData(true, false)]    // and the other way round
    public void FourEpochsStraight_EqualTwoThenAResumeForTwo_OverAFile(bool trainFromFile, bool resumeFromFile)
    {
        var pairs = ChatModelTests.SyntheticPairs(45);
        string path = WriteCsv(pairs);
        string checkpoints = Path.Combine(_files.Folder, "checkpoints");
        var options = Options(SplitMode.Random) with { Epochs = 4 };
        PairFile File() => new(path) { TemporaryDirectory = _files.Folder };

        var straight = ChatModel.Train(File(), options);
        var first = trainFromFile
            ? ChatModel.Train(File(), options with { Epochs = 2, CheckpointDirectory = checkpoints })
            : ChatModel.Train(PairReader.ReadAll(path, null, out _), options with { Epochs = 2, CheckpointDirectory = checkpoints });
        Assert.Equal(2, first.Training!.Epochs.Count);
        var resumed = resumeFromFile
            ? ChatModel.ResumeTraining(checkpoints, File(), options with { CheckpointDirectory = checkpoints })
            : ChatModel.ResumeTraining(checkpoints, PairReader.ReadAll(path, null, out _), options with { CheckpointDirectory = checkpoints });

        Assert.True(straight.Network.Parameters.AsSpan().SequenceEqual(resumed.Network.Parameters), "the resumed weights differ from the straight run's");
        Assert.Equal(straight.Training!.BestEpoch, resumed.Training!.BestEpoch);
        Assert.Equal(straight.Training.Epochs.Select(e => (e.Epoch, e.TrainLoss, e.ValidationLoss, e.IsBest)),
            resumed.Training.Epochs.Select(e => (e.Epoch, e.TrainLoss, e.ValidationLoss, e.IsBest)));
        Assert.Empty(Directory.GetFiles(_files.Folder, "*.tmp"));
        Assert.Empty(OpenTokenFiles());
    }

    [Fact]
    public void TheFingerprintComputedWhileStreaming_IsTheInMemoryOne()
    {
        var pairs = ChatModelTests.SyntheticPairs(45);
        pairs[3] = pairs[3] with { Answer = "쉼표, 그리고 \"따옴표\"" };
        string path = WriteCsv(pairs);
        using var data = TrainingData.Prepare(new PairFile(path) { TemporaryDirectory = _files.Folder }, Options(SplitMode.Random), fingerprint: true);
        Assert.Equal(DataFingerprint.Of(PairReader.ReadAll(path, null, out _)), data.Fingerprint);
        Assert.Equal(45, data.Fingerprint!.Rows);
        using var without = TrainingData.Prepare(new PairFile(path) { TemporaryDirectory = _files.Folder }, Options(SplitMode.Random));
        Assert.Null(without.Fingerprint);
    }

    [Fact]
    public void ResumeOverADifferentFile_IsRefusedBeforeTheFirstStep()
    {
        var pairs = ChatModelTests.SyntheticPairs(45);
        string path = WriteCsv(pairs);
        string checkpoints = Path.Combine(_files.Folder, "checkpoints");
        var options = Options(SplitMode.Random) with { Epochs = 1, CheckpointDirectory = checkpoints };
        ChatModel.Train(new PairFile(path) { TemporaryDirectory = _files.Folder }, options);
        var checkpoint = CheckpointStore.Read(CheckpointStore.Resolve(checkpoints));
        int steps = 0;
        var counting = new Progress(() => steps++);

        // The same number of pairs, one answer changed: refused once the encoding pass has hashed them all.
        string changed = _files.Write("changed.csv", System.IO.File.ReadAllText(path).Replace("푹 쉬세요.", "푹 쉬세요!", StringComparison.Ordinal));
        var ex = Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(checkpoints, new PairFile(changed) { TemporaryDirectory = _files.Folder },
            options with { Epochs = 2 }, counting));
        Assert.StartsWith($"Cannot resume from '{checkpoint.Directory}': the data differs from the run's (45 pairs, sha256 {checkpoint.Data.Sha256[..12]}…; given 45 pairs, sha256 ", ex.Message);
        Assert.DoesNotContain(checkpoint.Data.Sha256[..12], ex.Message[(ex.Message.IndexOf("given", StringComparison.Ordinal))..]);

        // Fewer pairs: refused right after the counting pass.
        string fewer = WriteCsv(pairs.Take(44), "fewer.csv");
        ex = Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(checkpoints, new PairFile(fewer) { TemporaryDirectory = _files.Folder },
            options with { Epochs = 2 }, counting));
        Assert.Equal($"Cannot resume from '{checkpoint.Directory}': the data differs from the run's (45 pairs, sha256 {checkpoint.Data.Sha256[..12]}…; given 44 pairs). Resume with the same data file and reading options.", ex.Message);

        Assert.Equal(0, steps);
        Assert.Single(Directory.GetDirectories(checkpoints, "step-*"));   // nothing was written
        Assert.Empty(Directory.GetFiles(_files.Folder, "*.tmp"));
        Assert.Empty(OpenTokenFiles());
    }

    [Fact]
    public void Cancelled_WhileTheFileIsRead_ThrowsAndClosesItsTokenFiles()
    {
        string path = WriteCsv(ChatModelTests.SyntheticPairs(45));
        string checkpoints = Path.Combine(_files.Folder, "checkpoints");
        var options = Options(SplitMode.Random) with { CheckpointDirectory = checkpoints };
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        // A new run stops in the questions' pass; nothing is trained, no checkpoint is written.
        Assert.ThrowsAny<OperationCanceledException>(() => ChatModel.Train(new PairFile(path) { TemporaryDirectory = _files.Folder }, options, null, cancel.Token));
        Assert.False(Directory.Exists(checkpoints) && Directory.EnumerateFileSystemEntries(checkpoints).Any());

        // Cancelled between steps (the first step of epoch 2): the model so far comes back with a checkpoint, as from a list.
        using var later = new CancellationTokenSource();
        int steps = 0, openDuringTraining = -1;
        var model = ChatModel.Train(new PairFile(path) { TemporaryDirectory = _files.Folder }, options, new Progress(() =>
        {
            if (++steps == 1) openDuringTraining = OpenTokenFiles().Length;
            if (steps == 5) later.Cancel();
        }), later.Token);
        Assert.True(model.Training!.Cancelled);
        if (OperatingSystem.IsLinux()) Assert.Equal(2, openDuringTraining);   // the training and validation stores: what OpenTokenFiles sees
        Assert.NotNull(model.Training.LastCheckpoint);

        // A resume skips the tokenizers' passes: it stops in the encoding pass, with both token files open.
        string latest = System.IO.File.ReadAllText(Path.Combine(checkpoints, "latest"));
        Assert.ThrowsAny<OperationCanceledException>(() => ChatModel.ResumeTraining(checkpoints, new PairFile(path) { TemporaryDirectory = _files.Folder }, options, null, cancel.Token));
        Assert.Equal(latest, System.IO.File.ReadAllText(Path.Combine(checkpoints, "latest")));
        Assert.Empty(Directory.GetFiles(_files.Folder, "*.tmp"));
        Assert.Empty(OpenTokenFiles());
    }

    [Fact]
    public void Diverging_OverAFile_ClosesItsTokenFiles()
    {
        string path = WriteCsv(ChatModelTests.SyntheticPairs(45));
        var options = Options(SplitMode.Random) with { Optimizer = OptimizerKind.Sgd, LearningRate = 3e38f };
        var ex = Assert.Throws<SeqtalkException>(() => ChatModel.Train(new PairFile(path) { TemporaryDirectory = _files.Folder }, options));
        Assert.Contains("diverged", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_files.Folder, "*.tmp"));
        Assert.Empty(OpenTokenFiles());
    }

    /// <summary>Token files of this test's folder this process still holds open (on Linux they are unlinked at
    /// once, so only /proc shows them: "…/.seqtalk-tokens-….tmp (deleted)").</summary>
    private string[] OpenTokenFiles()
    {
        if (!OperatingSystem.IsLinux()) return [];
        var open = new List<string>();
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            string? target;
            try { target = new FileInfo(fd).LinkTarget; }
            catch (IOException) { continue; }   // closed meanwhile
            if (target is not null && target.StartsWith(Path.Combine(_files.Folder, ".seqtalk-tokens-"), StringComparison.Ordinal)) open.Add(target);
        }
        return [.. open];
    }

    /// <summary>Calls back on the training thread.</summary>
    private sealed class Progress(Action onStep) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.EpochEnd is null) onStep();
        }
    }
}
