using System.Text.Json.Nodes;
using Seqtalk.Data;
using Seqtalk.IO;
using Seqtalk.Tests.Text;
using Seqtalk.Training;
using TempDirectory = Seqtalk.Tests.IO.TempDirectory;

namespace Seqtalk.Tests.Training;

/// <summary>Checkpoints: a resumed run is bit-identical to an unbroken one, checkpoints are loadable model
/// directories with verified checksums, old ones are pruned, and wrong data or options are refused.</summary>
public class CheckpointTests
{
    /// <summary>The first 120 pairs of the shared Korean corpus.</summary>
    private static readonly List<QaPair> s_pairs = ChatbotData.Questions.Take(120)
        .Select((q, i) => new QaPair(q, ChatbotData.Answers[i], i + 2)).ToList();

    /// <summary>102 training pairs in batches of 16: 7 steps per epoch (the last one short).</summary>
    private static TrainingOptions Small(int epochs, string? checkpoints = null) => new()
    {
        Epochs = epochs,
        BatchSize = 16,
        EmbeddingDim = 8,
        HiddenDim = 12,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.01f,
        ValidationSize = 0.15,
        Seed = 11,
        Threads = 1,
        CheckpointDirectory = checkpoints,
        KeepCheckpoints = 100,
    };

    [Fact]
    public void TwoEpochsThenResumeForTwoMore_IsBitIdenticalToFourStraight()
    {
        using var dir = new TempDirectory();
        var straight = ChatModel.Train(s_pairs, Small(4));
        var first = ChatModel.Train(s_pairs, Small(2, dir.Path));
        Assert.Equal(2, first.Training!.Epochs.Count);
        Assert.NotNull(first.Training.LastCheckpoint);

        var resumed = ChatModel.ResumeTraining(dir.Path, s_pairs, Small(4, dir.Path));

        AssertSameRun(straight, resumed);
    }

    [Fact]
    public void EarlyStopping_ContinuesExactlyAcrossAResume()
    {
        // A high learning rate overfits 102 pairs fast, so patience 1 ends the run before epoch 12.
        var options = Small(12) with { LearningRate = 0.05f, EarlyStoppingPatience = 1 };
        var straight = ChatModel.Train(s_pairs, options);
        Assert.True(straight.Training!.StoppedEarly, "the straight run did not stop early; the test needs a run that does");
        int stoppedAfter = straight.Training.Epochs.Count;

        using var dir = new TempDirectory();
        ChatModel.Train(s_pairs, options with { Epochs = stoppedAfter - 1, CheckpointDirectory = dir.Path });
        var resumed = ChatModel.ResumeTraining(dir.Path, s_pairs, options with { CheckpointDirectory = dir.Path });

        AssertSameRun(straight, resumed);
        Assert.True(resumed.Training!.StoppedEarly);
        Assert.Equal(stoppedAfter, resumed.Training.Epochs.Count);
    }

    [Fact]
    public void ResumeFromAMidEpochCheckpoint_IsBitIdenticalToAStraightRun()
    {
        using var dir = new TempDirectory();
        var straight = ChatModel.Train(s_pairs, Small(3));

        // Step checkpoints every 3 steps (7 per epoch, so they fall inside epochs), and a cancellation at
        // step 10 (epoch 2, step 3), which writes a checkpoint there too.
        using var cancel = new CancellationTokenSource();
        var stopAt10 = new SyncProgress(p => { if (p.EpochEnd is null && (p.Epoch - 1) * p.StepsPerEpoch + p.Step == 10) cancel.Cancel(); });
        var interrupted = ChatModel.Train(s_pairs, Small(3, dir.Path) with { CheckpointEverySteps = 3 }, stopAt10, cancel.Token);
        Assert.True(interrupted.Training!.Cancelled);
        Assert.Equal(Path.Combine(dir.Path, "step-00000010"), interrupted.Training.LastCheckpoint);
        Assert.Equal("step-00000010", File.ReadAllText(Path.Combine(dir.Path, "latest")).Trim());
        // Epoch 1 ended at step 7: its checkpoint is there besides the step ones, and it is the best so far.
        Assert.Equal(["step-00000003", "step-00000006", "step-00000007", "step-00000009", "step-00000010"],
            Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("step-00000007", File.ReadAllText(Path.Combine(dir.Path, "best")).Trim());

        // From the cancellation checkpoint (through 'latest'), and from the step-9 one named directly.
        var resumed = ChatModel.ResumeTraining(dir.Path, s_pairs);
        AssertSameRun(straight, resumed);

        using var copy = new TempDirectory();
        CopyDirectory(Path.Combine(dir.Path, "step-00000009"), Path.Combine(copy.Path, "step-00000009"));
        var fromNine = ChatModel.ResumeTraining(Path.Combine(copy.Path, "step-00000009"), s_pairs);
        AssertSameRun(straight, fromNine);
    }

    [Fact]
    public void Checkpoint_IsALoadableModelDirectoryWithVerifiedChecksums_AndOldOnesArePruned()
    {
        using var dir = new TempDirectory();
        var options = Small(3, dir.Path) with { CheckpointEverySteps = 2, KeepCheckpoints = 2 };
        var model = ChatModel.Train(s_pairs, options);

        // 21 steps: kept are the two newest (20 and 21, the end of epoch 3) and the best epoch's end.
        string best = File.ReadAllText(Path.Combine(dir.Path, "best")).Trim();
        int bestEpoch = model.Training!.BestEpoch;
        Assert.Equal(CheckpointStore.Name(bestEpoch * 7), best);
        var expected = new[] { "step-00000020", "step-00000021", best }.Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(expected, Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("step-00000021", File.ReadAllText(Path.Combine(dir.Path, "latest")).Trim());

        foreach (var step in Directory.GetDirectories(dir.Path))
        {
            var loaded = ChatModel.Load(step);
            Assert.Equal(model.Config, loaded.Config);
            var checkpoint = CheckpointStore.Read(step);
            Assert.Equal(checkpoint.State.GlobalStep, long.Parse(Path.GetFileName(step)["step-".Length..], System.Globalization.CultureInfo.InvariantCulture));
        }
        // The best epoch's checkpoint holds the weights the final model has.
        Assert.Equal(model.Network.Parameters, ChatModel.Load(Path.Combine(dir.Path, best)).Network.Parameters);

        // A flipped byte in the weights is caught by the checksum.
        string weights = Path.Combine(dir.Path, "step-00000021", ModelDirectory.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        var e = Assert.ThrowsAny<SeqtalkException>(() => CheckpointStore.Read(Path.Combine(dir.Path, "step-00000021")));
        Assert.Contains("checksum", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void TimedCheckpoints_AreWrittenOnceTheIntervalHasPassed()
    {
        using var dir = new TempDirectory();
        // One tick has always passed by the end of a step: a checkpoint after every step of the epoch.
        ChatModel.Train(s_pairs, Small(1, dir.Path) with { CheckpointEvery = TimeSpan.FromTicks(1) });
        Assert.Equal(Enumerable.Range(1, 7).Select(i => CheckpointStore.Name(i)),
            Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Resume_RefusesOtherDataOrOptionsThatBreakExactness()
    {
        using var dir = new TempDirectory();
        ChatModel.Train(s_pairs, Small(1, dir.Path));

        var fewer = s_pairs.Take(119).ToList();
        var data = Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(dir.Path, fewer, Small(2, dir.Path)));
        Assert.Contains("data differs", data.Message, StringComparison.Ordinal);
        Assert.Contains("120 pairs", data.Message, StringComparison.Ordinal);

        var changed = s_pairs.Select((p, i) => i == 50 ? p with { Answer = p.Answer + "!" } : p).ToList();
        Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(dir.Path, changed, Small(2, dir.Path)));

        var lr = Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(dir.Path, s_pairs, Small(2, dir.Path) with { LearningRate = 0.02f }));
        Assert.Contains("LearningRate is 0.02", lr.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', lr.Message);

        // Training afresh into a directory that holds a run's checkpoints would mix two runs.
        var fresh = Assert.Throws<SeqtalkException>(() => ChatModel.Train(s_pairs, Small(1, dir.Path)));
        Assert.Contains("already holds checkpoints", fresh.Message, StringComparison.Ordinal);

        using var empty = new TempDirectory();
        var none = Assert.Throws<SeqtalkException>(() => ChatModel.ResumeTraining(empty.Path, s_pairs));
        Assert.Contains("holds no checkpoint", none.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonFiniteSteps_AreSkippedCountedAndStopTheRunWithAHint_AndNothingNonFiniteIsSaved()
    {
        using var dir = new TempDirectory();
        // SGD at 1e30 overflows the weights on the first update; every later step has a NaN loss.
        var options = Small(3, dir.Path) with { Optimizer = OptimizerKind.Sgd, LearningRate = 1e30f, CheckpointEverySteps = 100 };
        int skipped = 0;
        var progress = new SyncProgress(p => skipped = Math.Max(skipped, p.SkippedSteps));
        var e = Assert.Throws<SeqtalkException>(() => ChatModel.Train(s_pairs, options, progress));
        Assert.Contains("diverged", e.Message, StringComparison.Ordinal);
        Assert.Contains("5 steps in a row", e.Message, StringComparison.Ordinal);
        Assert.Contains("--learning-rate", e.Message, StringComparison.Ordinal);
        Assert.Equal(5, skipped);
        Assert.Empty(Directory.GetDirectories(dir.Path));

        // With a checkpoint after every step, each one written before the stop holds finite weights.
        using var dir2 = new TempDirectory();
        Assert.Throws<SeqtalkException>(() => ChatModel.Train(s_pairs, options with { CheckpointDirectory = dir2.Path, CheckpointEverySteps = 1 }));
        Assert.NotEmpty(Directory.GetDirectories(dir2.Path));
        foreach (var step in Directory.GetDirectories(dir2.Path)) CheckpointStore.Read(step);   // Load refuses non-finite weights
    }

    [Fact]
    public void NonFiniteWeights_AreNeverSaved()
    {
        using var dir = new TempDirectory();
        var model = ChatModel.Train(s_pairs, Small(1, dir.Path));
        var checkpoint = CheckpointStore.Read(Path.Combine(dir.Path, "step-00000007"));
        model.Network.Parameters[model.Network.Layout.Slots[2].Offset + 1] = float.NaN;

        var save = Assert.Throws<SeqtalkException>(() => model.Save(dir.File("model")));
        Assert.Contains($"tensor '{model.Network.Layout.Slots[2].Name}' holds a non-finite value", save.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("model")));

        var poisoned = checkpoint with { Model = model, State = new TrainerState { GlobalStep = 99 } };
        var write = Assert.Throws<SeqtalkException>(() => CheckpointStore.Write(dir.Path, poisoned, isBest: true, keep: 5));
        Assert.Contains("no checkpoint written", write.Message, StringComparison.Ordinal);
        Assert.Equal(["step-00000007"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName));
        Assert.Equal("step-00000007", File.ReadAllText(dir.File("best")).Trim());
    }

    [Fact]
    public void TheCheckpointDirectoryIsRecordedRelatively_AndFilesWithFullPathsStillLoadAndResume()
    {
        using var dir = new TempDirectory();
        string model = dir.File("model"), root = Path.Combine(model, "checkpoints");
        var straight = ChatModel.Train(s_pairs, Small(2));
        ChatModel.Train(s_pairs, Small(1, root)).Save(model);
        string config = Path.Combine(model, ModelDirectory.ConfigFile), state = Path.Combine(root, "step-00000007", CheckpointStore.StateFile);
        Assert.Equal("checkpoints", (string?)JsonNode.Parse(File.ReadAllText(config))!["training"]!["options"]!["CheckpointDirectory"]);
        Assert.Equal("..", (string?)JsonNode.Parse(File.ReadAllText(state))!["options"]!["checkpointDirectory"]);
        Assert.DoesNotContain(dir.Path, File.ReadAllText(config), StringComparison.Ordinal);
        Assert.Equal(root, CheckpointStore.ReadJson(Path.Combine(root, "step-00000007")).Options.CheckpointDirectory);

        // As older versions wrote them: full paths, here of a machine the directory has since left.
        const string Old = "/home/someone/old-model/checkpoints";
        var configJson = JsonNode.Parse(File.ReadAllText(config))!;
        configJson["training"]!["options"]!["CheckpointDirectory"] = Old;
        File.WriteAllText(config, configJson.ToJsonString());
        var stateJson = JsonNode.Parse(File.ReadAllText(state))!;
        stateJson["options"]!["checkpointDirectory"] = Old;
        File.WriteAllText(state, stateJson.ToJsonString());

        Assert.Single(ChatModel.Load(model).Training!.Epochs);
        Assert.Equal(Old, CheckpointStore.ReadJson(Path.Combine(root, "step-00000007")).Options.CheckpointDirectory);
        var resumed = ChatModel.ResumeTraining(model, s_pairs, Small(2, root));   // continues in the root it was found in
        AssertSameRun(straight, resumed);
        Assert.Equal("step-00000014", File.ReadAllText(Path.Combine(root, "latest")).Trim());
    }

    [Fact]
    public void PortableCheckpointDirectory_IsRelativeOnlyInsideTheDirectoryOrForItsParent()
    {
        Assert.Equal("checkpoints", ModelDirectory.PortableCheckpointDirectory("/a/m/checkpoints", "/a/m"));
        Assert.Equal("checkpoints", ModelDirectory.PortableCheckpointDirectory("/a/m/checkpoints/", "/a/m/"));
        Assert.Equal(Path.Combine("x", "y"), ModelDirectory.PortableCheckpointDirectory("/a/m/x/y", "/a/m"));
        Assert.Equal(".", ModelDirectory.PortableCheckpointDirectory("/a/m", "/a/m"));
        Assert.Equal("..", ModelDirectory.PortableCheckpointDirectory("/a/m/checkpoints", "/a/m/checkpoints/step-00000007"));
        Assert.Equal("/a/m", ModelDirectory.PortableCheckpointDirectory("/a/m", "/a/m/checkpoints/step-00000007"));
        Assert.Equal("/a/mx", ModelDirectory.PortableCheckpointDirectory("/a/mx", "/a/m"));
        Assert.Equal("/elsewhere/checkpoints", ModelDirectory.PortableCheckpointDirectory("/elsewhere/checkpoints", "/a/m"));
        Assert.Equal("checkpoints", ModelDirectory.PortableCheckpointDirectory(Path.Combine("m", "checkpoints"), "m"));
        Assert.Null(ModelDirectory.PortableCheckpointDirectory(null, "/a/m"));

        Assert.Equal("/b/m/checkpoints", ModelDirectory.ResolveCheckpointDirectory("checkpoints", "/b/m"));
        Assert.Equal("/b/m/checkpoints", ModelDirectory.ResolveCheckpointDirectory("..", "/b/m/checkpoints/step-00000007"));
        Assert.Equal("/a/m/checkpoints", ModelDirectory.ResolveCheckpointDirectory("/a/m/checkpoints", "/b/m"));
        Assert.Null(ModelDirectory.ResolveCheckpointDirectory(null, "/b/m"));
    }

    /// <summary>Every stage at which a write can be cut short, in order.</summary>
    private static readonly string[] s_writeStages =
    [
        "temporary directory", "model files", "training-state.safetensors", "checkpoint.json", "renamed into place",
        "latest", "best", "pruning step-00000007", "pruned",
    ];

    [Fact]
    public void AKillAtAnyStageOfAWrite_LeavesTheLatestCheckpointReadable_AndTheNextWriteCleansUp()
    {
        using var dir = new TempDirectory();
        ChatModel.Train(s_pairs, Small(1, dir.Path));   // step-00000007, the end of epoch 1
        var next = CheckpointStore.Read(Path.Combine(dir.Path, "step-00000007"));
        next.State.GlobalStep = 8;

        // A copy of the root at every stage is what a process killed (SIGKILL, power cut) right there leaves on disk.
        using var copies = new TempDirectory();
        var snapshots = new List<(string Stage, string Root)>();
        CheckpointStore.Write(dir.Path, next, isBest: true, keep: 1, afterEachStage: stage =>
        {
            string copy = Path.Combine(copies.Path, snapshots.Count.ToString("D2", System.Globalization.CultureInfo.InvariantCulture));
            CopyTree(dir.Path, copy);
            snapshots.Add((stage, copy));
        });
        Assert.Equal(s_writeStages, snapshots.Select(s => s.Stage));

        for (int i = 0; i < snapshots.Count; i++)
        {
            var (stage, root) = snapshots[i];
            // Until 'latest' is rewritten resuming picks the previous checkpoint; from then on the new one.
            long expected = i < Array.IndexOf(s_writeStages, "latest") ? 7 : 8;
            string resolved = CheckpointStore.Resolve(root);
            Assert.True(Path.Combine(root, CheckpointStore.Name(expected)) == resolved, $"after '{stage}' resume picks {resolved}");
            var read = CheckpointStore.Read(resolved);   // loads, and the checksums match checkpoint.json
            Assert.Equal(expected, read.State.GlobalStep);
            Assert.Equal(root, read.Options.CheckpointDirectory);   // recorded as "..", so right in the copy
            foreach (var step in Directory.GetDirectories(root, "step-*"))
                Assert.True(File.Exists(Path.Combine(step, CheckpointStore.StateFile)), $"after '{stage}': {step} is a half-written checkpoint under a step name");
        }

        // The next write into a root a killed process left mid-write finishes and removes the leftovers.
        string killed = snapshots[Array.IndexOf(s_writeStages, "model files")].Root;
        Assert.NotEmpty(Directory.GetDirectories(killed, ".tmp-*"));
        next.State.GlobalStep = 9;
        CheckpointStore.Write(killed, next, isBest: false, keep: 1);
        Assert.Empty(Directory.GetDirectories(killed, ".tmp-*"));
        Assert.Equal(9, CheckpointStore.Read(CheckpointStore.Resolve(killed)).State.GlobalStep);
    }

    [Fact]
    public void AWriteThatFailsAtAnyStage_IsOneErrorAndKeepsThePreviousCheckpoint()
    {
        using var dir = new TempDirectory();
        ChatModel.Train(s_pairs, Small(1, dir.Path));
        using var copies = new TempDirectory();
        foreach (string failAt in s_writeStages)
        {
            string root = Path.Combine(copies.Path, failAt.Replace(' ', '-'));
            CopyTree(dir.Path, root);
            var next = CheckpointStore.Read(Path.Combine(root, "step-00000007"));
            next.State.GlobalStep = 8;
            var e = Assert.Throws<SeqtalkException>(() => CheckpointStore.Write(root, next, isBest: true, keep: 1, afterEachStage: stage =>
            {
                if (stage == failAt) throw new IOException("No space left on device");
            }));
            Assert.Contains("Cannot write the checkpoint", e.Message, StringComparison.Ordinal);
            Assert.Contains("No space left on device", e.Message, StringComparison.Ordinal);

            // A failure before the rename removes the unfinished directory; the previous checkpoint stays the one
            // resume picks until 'latest' names the new, complete one.
            bool renamed = Array.IndexOf(s_writeStages, failAt) >= Array.IndexOf(s_writeStages, "renamed into place");
            Assert.Equal(renamed, Directory.Exists(Path.Combine(root, "step-00000008")));
            Assert.Empty(Directory.GetDirectories(root, ".tmp-step-*"));
            long expected = Array.IndexOf(s_writeStages, failAt) > Array.IndexOf(s_writeStages, "renamed into place") ? 8 : 7;
            Assert.Equal(expected, CheckpointStore.Read(CheckpointStore.Resolve(root)).State.GlobalStep);
        }
    }

    [Fact]
    public void AdvanceShuffle_DrawsWhatMakeBatchesDraws()
    {
        foreach (var (count, batchSize) in new[] { (0, 4), (1, 4), (7, 3), (102, 16), (1000, 4), (5001, 2) })
        {
            var pairs = Enumerable.Range(0, count).Select(i => new EncodedPair([1 + i % 5], [1 + i % 3])).ToList();
            var a = new Random(5);
            var b = new Random(5);
            Batcher.MakeBatches(pairs, batchSize, a);
            Batcher.AdvanceShuffle(count, batchSize, b);
            Assert.Equal(a.Next(), b.Next());
        }
    }

    private static void AssertSameRun(ChatModel expected, ChatModel actual)
    {
        Assert.True(expected.Network.Parameters.AsSpan().SequenceEqual(actual.Network.Parameters), "weights differ from the straight run");
        var a = expected.Training!;
        var b = actual.Training!;
        Assert.Equal(a.BestEpoch, b.BestEpoch);
        // Everything but the wall-clock fields.
        Assert.Equal(a.Epochs.Select(Exact), b.Epochs.Select(Exact));
    }

    private static object Exact(EpochMetrics m) => (m.Epoch, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss, m.ValidationAccuracy, m.IsBest, m.SkippedSteps);

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var sub in Directory.GetDirectories(from)) CopyTree(sub, Path.Combine(to, Path.GetFileName(sub)));
    }

    /// <summary>Calls back on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
