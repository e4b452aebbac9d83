using System.Text.Json.Nodes;
using Seqtalk.IO;
using Seqtalk.Nn;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

/// <summary>Training with dropout, tied embeddings, label smoothing and a learning-rate schedule, end to end:
/// reproducible, thread-count independent, recorded, saved and loaded.</summary>
public class RegularizedTrainingTests
{
    private static TrainingOptions Options(int threads = 1) => new()
    {
        Epochs = 4,
        BatchSize = 8,
        EmbeddingDim = 12,
        HiddenDim = 12,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.01f,
        ValidationSize = 0.25,
        Seed = 7,
        Threads = threads,
        Dropout = 0.2f,
        TiedEmbeddings = true,
        LabelSmoothing = 0.1f,
        WarmupSteps = 3,
        LearningRateDecay = 0.5,
        MinLearningRate = 0.002,
    };

    [Fact]
    public void Training_IsBitIdenticalWithOneOrTwoThreads_AndRecordsTheLearningRate()
    {
        var pairs = ChatModelTests.SyntheticPairs(48);
        var one = ChatModel.Train(pairs, Options(1));
        var two = ChatModel.Train(pairs, Options(2));
        Assert.Equal(one.Network.Parameters, two.Network.Parameters);
        Assert.True(one.Config.TiedEmbeddings);
        Assert.False(one.Network.Layout.TryGetSlot(ParameterLayout.Names.OutputWeight, out _));

        // 36 training pairs in batches of 8: 5 steps an epoch, so warmup is over in epoch 1; then ×0.5 per epoch, floor 0.002.
        var rates = one.Training!.Epochs.Select(e => e.LearningRate).ToArray();
        Assert.Equal(new[] { 0.01, 0.005, 0.0025, 0.002 }, rates.Select(r => Math.Round(r, 6)));
        Assert.All(one.Training.Epochs, e => Assert.True(e.ValidationLoss > 0));

        var plain = ChatModel.Train(pairs, Options(1) with { Dropout = 0, LabelSmoothing = 0 });
        Assert.NotEqual(plain.Network.Parameters, one.Network.Parameters);   // the options do something
    }

    [Fact]
    public void TiedModel_SavesWithoutOutW_AndLoadsBitIdentically_AndOldConfigsStillLoad()
    {
        var pairs = ChatModelTests.SyntheticPairs(24);
        var model = ChatModel.Train(pairs, Options() with { Epochs = 1 });
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-tied-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, ModelDirectory.ConfigFile)))!;
            Assert.True(config["architecture"]!["tiedEmbeddings"]!.GetValue<bool>());
            Assert.True(config["training"]!["epochs"]![0]!["learningRate"]!.GetValue<double>() > 0);
            var tensors = Safetensors.Read(Path.Combine(dir, ModelDirectory.WeightsFile)).Tensors.Keys;
            Assert.DoesNotContain("out.w", tensors);
            Assert.Contains("dec.embed", tensors);

            var loaded = ChatModel.Load(dir);
            Assert.Equal(model.Config, loaded.Config);
            Assert.Equal(model.Network.Parameters, loaded.Network.Parameters);
            var questions = pairs.Select(p => p.Question).ToList();
            Assert.Equal(model.ReplyBatch(questions), loaded.ReplyBatch(questions));
            Assert.Equal(model.Training!.Epochs[0].LearningRate, loaded.Training!.Epochs[0].LearningRate, 1e-9);

            // A tied config without its weights' dec.embed is refused by name; an untied model from before the
            // field existed (no "tiedEmbeddings", no "learningRate") still loads.
            var untied = ChatModel.Train(pairs, Options() with { Epochs = 1, TiedEmbeddings = false, Dropout = 0 });
            untied.Save(dir);
            string path = Path.Combine(dir, ModelDirectory.ConfigFile);
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            root["architecture"]!.AsObject().Remove("tiedEmbeddings");
            root["training"]!["epochs"]![0]!.AsObject().Remove("learningRate");
            File.WriteAllText(path, root.ToJsonString());
            var old = ChatModel.Load(dir);
            Assert.False(old.Config.TiedEmbeddings);
            Assert.Equal(untied.Network.Parameters, old.Network.Parameters);
            Assert.True(double.IsNaN(old.Training!.Epochs[0].LearningRate));

            root["architecture"]!["tiedEmbeddings"] = true;   // out.w is now a tensor the config does not know
            File.WriteAllText(path, root.ToJsonString());
            var e = Assert.Throws<ModelFormatException>(() => ChatModel.Load(dir));
            Assert.Contains("out.w", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
