using System.Text;

namespace Seqtalk.Cli.Tests;

/// <summary>Every failure is one line on stderr with a meaningful exit code and no stack trace.</summary>
public sealed class ErrorTests : IClassFixture<TinyModel>, IDisposable
{
    private readonly TinyModel _model;
    private readonly TempDirectory _dir = new();

    public ErrorTests(TinyModel model) => _model = model;

    public void Dispose() => _dir.Dispose();

    private CliResult Train(params string[] extra) =>
        CliRunner.Run(_dir.Path, ["train", .. extra, .. TinyModel.SmallTraining]);

    private CliResult TrainOn(string fileName, byte[] content)
    {
        File.WriteAllBytes(_dir.File(fileName), content);
        return Train("--data", fileName, "--out", "model");
    }

    [Fact]
    public void MissingDataFile()
    {
        CliAssert.OneLineError(Train("--data", "nope.csv", "--out", "model"), 1, "nope.csv", "not found");
        Assert.False(Directory.Exists(_dir.File("model")));
    }

    [Fact]
    public void EmptyFile() => CliAssert.OneLineError(TrainOn("empty.csv", []), 1, "empty.csv", "empty");

    [Fact]
    public void HeaderOnly() => CliAssert.OneLineError(TrainOn("header.csv", "Q,A\n"u8.ToArray()), 1, "header.csv", "no rows");

    [Fact]
    public void NoQuestionColumn() =>
        CliAssert.OneLineError(TrainOn("cols.csv", "text,reply\nhi,hello\n"u8.ToArray()), 1, "cols.csv", "column", "--question-column");

    [Fact]
    public void NamedAnswerColumnMissing()
    {
        File.WriteAllText(_dir.File("named.csv"), "Q,A\nhi,hello\n");
        CliAssert.OneLineError(Train("--data", "named.csv", "--out", "model", "--answer-column", "reply"), 1, "named.csv", "'reply'");
    }

    [Fact]
    public void InvalidUtf8()
    {
        var bytes = "Q,A\nhi,hello\nbad,"u8.ToArray().Concat(new byte[] { 0xFF, 0xFE, (byte)'x', (byte)'\n' }).ToArray();
        CliAssert.OneLineError(TrainOn("bad.csv", bytes), 1, "bad.csv", "line 3", "UTF-8");
    }

    [Fact]
    public void FiveMegabyteLine()
    {
        var text = new StringBuilder("Q,A\nhi,hello\nlong,");
        text.Append('x', 5 * 1024 * 1024).Append('\n');
        CliAssert.OneLineError(TrainOn("long.csv", Encoding.UTF8.GetBytes(text.ToString())), 1, "long.csv", "line 3", "longer than");
    }

    [Fact]
    public void UnknownOption()
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        CliAssert.OneLineError(Train("--data", "ok.csv", "--out", "model", "--bogus"), 2, "--bogus", "--help");
    }

    [Fact]
    public void MissingRequiredOption() => CliAssert.OneLineError(CliRunner.Run(_dir.Path, "train", "--data", "x.csv"), 2, "--out", "required");

    [Fact]
    public void NoCommand() => CliAssert.OneLineError(CliRunner.Run(_dir.Path), 2, "--help");

    [Theory]
    [InlineData("--epochs", "0")]
    [InlineData("--epochs", "many")]
    [InlineData("--optimizer", "foo")]
    [InlineData("--tokenizer", "bpe2")]
    [InlineData("--learning-rate", "-1")]
    [InlineData("--validation-size", "2.5")]
    [InlineData("--layers", "9")]
    [InlineData("--max-vocab", "3")]
    [InlineData("--attention", "luong")]
    [InlineData("--dropout", "1")]
    [InlineData("--label-smoothing", "-0.1")]
    [InlineData("--warmup-steps", "-1")]
    [InlineData("--lr-decay", "0")]
    [InlineData("--lr-decay-start", "-1")]
    [InlineData("--lr-plateau-factor", "2")]
    [InlineData("--lr-plateau-patience", "-1")]
    [InlineData("--min-learning-rate", "1")]
    public void BadOptionValue(string option, string value)
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        var result = CliRunner.Run(_dir.Path, ["train", "--data", "ok.csv", "--out", "model", .. TinyModel.SmallTrainingWithout(option), option, value]);
        CliAssert.OneLineError(result, 2, option, value);
        Assert.False(Directory.Exists(_dir.File("model")));
    }

    [Theory]
    [InlineData("none", "needs attention")]
    public void InputFeeding_IsRefused(string attention, string message)
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        var result = CliRunner.Run(_dir.Path, ["train", "--data", "ok.csv", "--out", "model", .. TinyModel.SmallTraining, "--attention", attention, "--input-feeding"]);
        CliAssert.OneLineError(result, 2, "--input-feeding", message);
        Assert.False(Directory.Exists(_dir.File("model")));
    }

    [Fact]
    public void BidirectionalWithOddHiddenSize()
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        var result = CliRunner.Run(_dir.Path, ["train", "--data", "ok.csv", "--out", "model", .. TinyModel.SmallTrainingWithout("--hidden-dim"), "--hidden-dim", "15", "--bidirectional"]);
        CliAssert.OneLineError(result, 2, "--bidirectional", "even");
        Assert.False(Directory.Exists(_dir.File("model")));
    }

    [Fact]
    public void TiedEmbeddingsWithDifferentWidths()
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        var result = CliRunner.Run(_dir.Path, ["train", "--data", "ok.csv", "--out", "model", .. TinyModel.SmallTraining, "--tied-embeddings"]);
        CliAssert.OneLineError(result, 2, "--tied-embeddings", "embedding width (8)", "LSTM width (16)");
        Assert.False(Directory.Exists(_dir.File("model")));
    }

    [Fact]
    public void BadMaxLength() =>
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "reply", "--model", _model.ModelDirectory, "--max-length", "0", "hi"), 2, "--max-length");

    [Fact]
    public void ModelDirectoryMissing() =>
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "reply", "--model", "no-model", "hi"), 1, "no-model", "does not exist");

    [Fact]
    public void ModelWeightsMissing()
    {
        string model = _dir.File("m");
        _model.CopyTo(model);
        File.Delete(Path.Combine(model, "weights.safetensors"));
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "reply", "--model", "m", "hi"), 1, "weights.safetensors", "missing");
    }

    [Fact]
    public void ModelWeightsTruncated()
    {
        string model = _dir.File("m");
        _model.CopyTo(model);
        string weights = Path.Combine(model, "weights.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length * 2 / 3)]);
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "info", "--model", "m"), 1, "weights.safetensors");
    }

    [Fact]
    public void ModelConfigCorrupt()
    {
        string model = _dir.File("m");
        _model.CopyTo(model);
        File.WriteAllText(Path.Combine(model, "config.json"), "{ \"format\": \"seqtalk-model\", ");
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "chat", "--model", "m"), 1, "config.json");
    }

    [Fact]
    public void EvalOnMissingData() =>
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", "nope.jsonl"), 1, "nope.jsonl", "not found");

    [Fact]
    public void OutIsAFile()
    {
        File.WriteAllText(_dir.File("ok.csv"), "Q,A\nhi,hello\n");
        File.WriteAllText(_dir.File("taken"), "");
        CliAssert.OneLineError(Train("--data", "ok.csv", "--out", "taken"), 2, "--out", "taken");
    }
}
