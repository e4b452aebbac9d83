using Seqtalk.Data;
using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

public class ChatModelTests
{
    /// <summary>A small corpus where each answer is a function of its question.</summary>
    internal static List<QaPair> SyntheticPairs(int count)
    {
        string[] names = ["민수", "지영", "tom", "anna", "철수", "영희", "bob", "lee", "수진", "kim", "현우", "amy"];
        string[] moods = ["행복해", "피곤해", "배고파", "심심해"];
        string[] replies = ["좋은 일이 있었나 봐요!", "푹 쉬세요.", "맛있는 거 드세요.", "같이 놀아요!"];
        var pairs = new List<QaPair>();
        for (int i = 0; i < count; i++)
        {
            int n = i % names.Length, m = (i / names.Length) % moods.Length;
            pairs.Add(new QaPair($"{names[n]}는 오늘 {moods[m]}", $"{names[n]}님, {replies[m]}", i + 2));
        }
        return pairs;
    }

    private static TrainingOptions Small(int epochs = 3) => new()
    {
        Epochs = epochs,
        BatchSize = 8,
        EmbeddingDim = 8,
        HiddenDim = 12,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.01f,
        ValidationSize = 0.25,
        Seed = 7,
        Threads = 1,
    };

    [Theory]
    [InlineData(AttentionKind.None)]
    [InlineData(AttentionKind.General)]
    [InlineData(AttentionKind.Bahdanau)]
    [InlineData(AttentionKind.General, true)]
    [InlineData(AttentionKind.Dot, true, true)]
    [InlineData(AttentionKind.Bahdanau, false, false, true)]
    public void SaveThenLoad_GivesBitIdenticalLogitsAndReplies(AttentionKind attention, bool bidirectional = false, bool bridge = false, bool inputFeeding = false)
    {
        var pairs = SyntheticPairs(32);
        var model = ChatModel.Train(pairs, Small() with { Attention = attention, BidirectionalEncoder = bidirectional, Bridge = bridge, InputFeeding = inputFeeding });
        Assert.Equal(inputFeeding, model.Config.InputFeeding);
        Assert.Equal(bridge, model.Config.Bridge);
        Assert.Equal(attention, model.Config.Attention);
        Assert.Equal(bidirectional, model.Config.BidirectionalEncoder);
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            Assert.True(File.Exists(Path.Combine(dir, "config.json")));
            Assert.True(File.Exists(Path.Combine(dir, "weights.safetensors")));
            var loaded = ChatModel.Load(dir);

            Assert.Equal(model.Config, loaded.Config);
            Assert.Equal(model.Network.Parameters, loaded.Network.Parameters);
            Assert.Equal(model.DefaultMaxReplyLength, loaded.DefaultMaxReplyLength);
            Assert.Equal(model.ParameterCount, loaded.ParameterCount);
            var trained = model.Training!;
            var restored = Assert.IsType<TrainingSummary>(loaded.Training);
            Assert.Equal(trained.BestEpoch, restored.BestEpoch);
            Assert.Equal(trained.TrainingPairs, restored.TrainingPairs);
            Assert.Equal(trained.Epochs.Select(e => (e.Epoch, e.IsBest)), restored.Epochs.Select(e => (e.Epoch, e.IsBest)));
            Assert.Equal(trained.Epochs.Select(e => Math.Round(e.ValidationLoss!.Value, 6)), restored.Epochs.Select(e => e.ValidationLoss!.Value));

            var encoded = Trainer.Encode(pairs, Enumerable.Range(0, pairs.Count), model.SourceTokenizer, model.TargetTokenizer, 60);
            var batch = Batcher.MakeBatches(encoded, 8, shuffle: null)[0];
            var a = new TrainingWorkspace(model.Network, 8, batch.SourceSteps, batch.TargetSteps, 1);
            var b = new TrainingWorkspace(loaded.Network, 8, batch.SourceSteps, batch.TargetSteps, 1);
            var statsA = a.Forward(batch);
            var statsB = b.Forward(batch);
            Assert.Equal(statsA.LossSum, statsB.LossSum);
            Assert.True(a.LastLogits.SequenceEqual(b.LastLogits), "logits differ after save/load");

            var questions = pairs.Select(p => p.Question).Append("처음 보는 말이에요 <s> </s>").ToList();
            Assert.Equal(model.ReplyBatch(questions), loaded.ReplyBatch(questions));

            // ReplyDetailed carries the attention weights: one row per reply token plus the </s> step, one column
            // per source token, each row a distribution; identical after save → load; null without attention.
            int maxLength = model.DefaultMaxReplyLength;
            foreach (string question in questions.Take(4))
            {
                var detailed = model.ReplyDetailed(question);
                if (attention == AttentionKind.None)
                {
                    Assert.Null(detailed.Attention);
                    continue;
                }
                var weights = Assert.IsType<float[][]>(detailed.Attention);
                Assert.Equal(detailed.Tokens.Count + (detailed.Tokens.Count < maxLength ? 1 : 0), weights.Length);
                Assert.All(weights, row => Assert.Equal(detailed.SourceTokens.Count, row.Length));
                Assert.All(weights, row => Assert.Equal(1.0, row.Sum(x => (double)x), 5));
                Assert.Equal(weights, loaded.ReplyDetailed(question).Attention);
                var session = new InferenceSession(model.Network);
                var source = model.SourceTokenizer.EncodeToIds(question);
                Assert.Equal(session.GreedyDecodeWithAttention([.. source], maxLength).Attention, weights);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Lowercase_AppliesToQuestionsOnly_SoRepliesKeepTheirCase()
    {
        var pairs = Enumerable.Range(0, 16).Select(i => new QaPair(i % 2 == 0 ? "Hello there" : "How are you", i % 2 == 0 ? "Hello! Nice to see you." : "I am fine, Thanks.", i + 2)).ToList();
        var model = ChatModel.Train(pairs, Small(40) with { Lowercase = true, ValidationSize = 0 });
        Assert.Equal("Hello! Nice to see you.", model.Reply("HELLO THERE"));
        Assert.Equal("I am fine, Thanks.", model.Reply("how are you"));
    }

    [Fact]
    public void Training_IsReproducibleForASeed()
    {
        var pairs = SyntheticPairs(24);
        var first = ChatModel.Train(pairs, Small(2));
        var second = ChatModel.Train(pairs, Small(2));
        Assert.Equal(first.Network.Parameters, second.Network.Parameters);
        var third = ChatModel.Train(pairs, Small(2) with { Seed = 8 });
        Assert.NotEqual(first.Network.Parameters, third.Network.Parameters);
    }

    [Theory]
    [InlineData(AttentionKind.None, 0f, false)]
    [InlineData(AttentionKind.Dot, 0.3f, false)]
    [InlineData(AttentionKind.General, 0.3f, false)]
    [InlineData(AttentionKind.Bahdanau, 0.3f, false)]
    [InlineData(AttentionKind.General, 0.3f, true)]
    public void Training_WithOneOrTwoThreads_GivesBitIdenticalWeights(AttentionKind attention, float dropout, bool inputFeeding)
    {
        var pairs = SyntheticPairs(64);
        // 24 rows per batch and H = 72: three chunks of batch rows and two blocks of weight rows, so the attention's
        // work is cut into several items the threads share.
        var options = Small(2) with { Attention = attention, Dropout = dropout, InputFeeding = inputFeeding, BatchSize = 24, HiddenDim = 72 };
        var one = ChatModel.Train(pairs, options with { Threads = 1 });
        var two = ChatModel.Train(pairs, options with { Threads = 2 });
        Assert.True(one.Network.Parameters.AsSpan().SequenceEqual(two.Network.Parameters), "1 and 2 threads trained different weights");
        Assert.Equal(one.Training!.Epochs.Select(e => e.ValidationLoss), two.Training!.Epochs.Select(e => e.ValidationLoss));
    }

    [Fact]
    public void Training_KeepsTheEpochWithTheLowestValidationLoss()
    {
        var model = ChatModel.Train(SyntheticPairs(48), Small(6));
        var summary = Assert.IsType<TrainingSummary>(model.Training);
        Assert.Equal(6, summary.Epochs.Count);
        var best = summary.Epochs.MinBy(e => e.ValidationLoss!.Value)!;
        Assert.Equal(best.Epoch, summary.BestEpoch);
        Assert.True(best.IsBest);
        Assert.Equal(36, summary.TrainingPairs);
        Assert.Equal(12, summary.ValidationPairs);
        Assert.All(summary.Epochs, e => Assert.Equal(Math.Exp(e.ValidationLoss!.Value), e.ValidationPerplexity!.Value, 9));
        Assert.True(summary.Epochs[^1].TrainLoss < summary.Epochs[0].TrainLoss, "training loss did not fall");
    }

    [Fact]
    public void EarlyStopping_EndsTheRunAfterPatienceEpochsWithoutImprovement()
    {
        // A learning rate this high makes the validation loss stop improving quickly.
        var model = ChatModel.Train(SyntheticPairs(48), Small(40) with { EarlyStoppingPatience = 2, LearningRate = 0.2f, ClipNorm = 1f });
        var summary = model.Training!;
        Assert.True(summary.StoppedEarly);
        Assert.True(summary.Epochs.Count < 40);
        Assert.Equal(summary.BestEpoch + 2, summary.Epochs.Count);
    }

    [Fact]
    public void Cancellation_ReturnsTheModelTrainedSoFar()
    {
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Epoch == 2 && p.Step == 1) cts.Cancel(); });
        var model = ChatModel.Train(SyntheticPairs(48), Small(10), progress, cts.Token);
        var summary = model.Training!;
        Assert.True(summary.Cancelled);
        Assert.Single(summary.Epochs);
        Assert.Equal(1, summary.BestEpoch);
        Assert.NotNull(model.Reply("민수는 오늘 행복해"));
    }

    [Fact]
    public void Reply_NeverCrashesOnOddInputAndRespectsMaxLength()
    {
        var model = ChatModel.Train(SyntheticPairs(24), Small(1));
        string[] odd = ["", "   ", "<s>", "</s> <pad> <unk>", "😀😀", "\u0000\u0007", new string('가', 10_000)];
        foreach (var q in odd) Assert.NotNull(model.Reply(q));
        var replyIds = model.DecodeIds(["민수는 오늘 행복해"], new DecodeOptions { MaxLength = 2 });
        Assert.True(replyIds[0].Length <= 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Reply("x", new DecodeOptions { MaxLength = 0 }));
    }

    [Fact]
    public void Evaluate_ReportsConsistentMetrics()
    {
        var pairs = SyntheticPairs(24);
        var model = ChatModel.Train(pairs, Small(2));
        var result = model.Evaluate(pairs);
        Assert.Equal(24, result.Pairs);
        Assert.Equal(Math.Exp(result.Loss), result.Perplexity, 9);
        Assert.InRange(result.TokenAccuracy, 0, 1);
        Assert.InRange(result.Bleu, 0, 100);
        Assert.InRange(result.TokenF1, 0, 1);
    }

    /// <summary>IProgress that runs on the reporting thread (Progress&lt;T&gt; posts asynchronously).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
