using System.Text.Json;
using System.Text.Json.Serialization;
using Seqtalk.Training;

namespace Seqtalk.Cli.Tests;

/// <summary><c>seqtalk train --preset NAME</c>: the preset's options, with every option given beside it in their place.</summary>
public sealed class PresetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly JsonSerializerOptions s_json = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>The options the run recorded in DIR/config.json (training.options).</summary>
    private TrainingOptions Recorded(string model)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir.File(model), "config.json")));
        return config.RootElement.GetProperty("training").GetProperty("options").Deserialize<TrainingOptions>(s_json)!;
    }

    [Theory]
    [InlineData("tutorial")]
    [InlineData("quality")]
    public void Preset_GivesItsOptions_AndOptionsBesideItOverride(string name)
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var r = CliRunner.Run(_dir.Path,
        [
            "train", "--data", "pairs.csv", "--out", "model", "--preset", name, "--epochs", "1", "--embedding-dim", "8",
            "--hidden-dim", "16", "--bpe-vocab-size", "300", "--batch-size", "8", "--validation-size", "4", "--seed", "5", "--threads", "1",
        ], timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.ToString());

        var recorded = Recorded("model");
        var expected = TrainingPresets.Get(name) with
        {
            Epochs = 1,
            EmbeddingDim = 8,
            HiddenDim = 16,
            BpeVocabularySize = 300,
            BatchSize = 8,
            ValidationSize = 4,
            Seed = 5,
            Threads = 1,
            CheckpointDirectory = recorded.CheckpointDirectory,
        };
        Assert.Equal(expected, recorded);
        Assert.Contains(r.StdoutLines, l => l.StartsWith("epoch 1/1 ", StringComparison.Ordinal));
    }

    [Fact]
    public void QualityPreset_DiffersFromTheDefaults_WhereNoOptionOverrides()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var r = CliRunner.Run(_dir.Path,
        [
            "train", "--data", "pairs.csv", "--out", "model", "--preset", "quality", "--epochs", "1", "--embedding-dim", "8",
            "--hidden-dim", "16", "--bpe-vocab-size", "300", "--attention", "none", "--optimizer", "rmsprop", "--threads", "1",
        ], timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.ToString());
        var recorded = Recorded("model");
        Assert.Equal(Seqtalk.Nn.AttentionKind.None, recorded.Attention);       // given: the preset's attention is replaced
        Assert.Equal(OptimizerKind.RmsProp, recorded.Optimizer);              // given, although it is the default's value
        Assert.Equal(TrainingPresets.Quality.Tokenizer, recorded.Tokenizer);  // not given: the preset's
        Assert.Equal(TrainingPresets.Quality.Dropout, recorded.Dropout);
        Assert.Contains(r.StdoutLines, l => l.StartsWith("model: bpe 300 tokens, embedding 8, hidden 16", StringComparison.Ordinal));
    }

    [Fact]
    public void PresetWithResume_OrAnUnknownPreset_FailsInOneLine()
    {
        var unknown = CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--out", "model", "--preset", "fast");
        CliAssert.OneLineError(unknown, 2, "--preset", "fast");
        var resume = CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--resume", "model", "--preset", "quality");
        CliAssert.OneLineError(resume, 2, "--preset", "resume");
    }
}
