using System.Diagnostics;
using System.Text.Json;

namespace Seqtalk.Cli.Tests;

/// <summary>The happy paths on a tiny model: train, reply, chat, eval, info, interrupt.</summary>
public sealed class CommandTests : IClassFixture<TinyModel>, IDisposable
{
    private readonly TinyModel _model;
    private readonly TempDirectory _dir = new();

    public CommandTests(TinyModel model) => _model = model;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Train_PrintsSummaryOneLinePerEpochAndSaves()
    {
        var r = _model.TrainResult;
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Stderr);
        var epochLines = r.StdoutLines.Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["epoch 1/3", "epoch 2/3", "epoch 3/3"], epochLines.Select(l => l.Split("  ")[0]));
        Assert.All(epochLines, l => Assert.Matches(@"^epoch \d/3  train loss \d+\.\d{4}  val loss \d+\.\d{4}  val ppl [\d.]+  val acc [\d.]+%  lr [\d.]+e[+-]\d+  [\d,]+ tok/s  [\d.]+s(  \*best)?$", l));
        Assert.Contains(r.StdoutLines, l => l.StartsWith("data: 20 pairs", StringComparison.Ordinal) && l.Contains("train 16, validation 4"));
        Assert.Contains(r.StdoutLines, l => l.StartsWith("vocabulary: ", StringComparison.Ordinal) && l.Contains("parameters"));
        Assert.Matches(@"^saved model \(best epoch [1-3], val loss \d+\.\d{4}\)$", r.StdoutLines[^1]);
        Assert.True(File.Exists(Path.Combine(_model.ModelDirectory, "config.json")));
        Assert.True(File.Exists(Path.Combine(_model.ModelDirectory, "weights.safetensors")));
    }

    [Fact]
    public void Train_ReportsSkippedRowsWithLineNumbers()
    {
        var pairs = TinyModel.Pairs(10);
        File.WriteAllText(_dir.File("gaps.csv"), "Q,A\n" + string.Join('\n', pairs.Select(p => $"{p.Question},{p.Answer.Replace(",", "", StringComparison.Ordinal)}")) + "\n,no question\nno answer,\n");
        var r = CliRunner.Run(_dir.Path, ["train", "--data", "gaps.csv", "--out", "m", .. TinyModel.SmallTrainingWithout("--epochs"), "--epochs", "1"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("skipped 2 of 12 rows", r.Stderr);
        Assert.Contains("line 12: empty question", r.Stderr);
        Assert.Contains("line 13: empty answer", r.Stderr);
        Assert.Contains(r.StdoutLines, l => l.StartsWith("data: 10 pairs", StringComparison.Ordinal));
    }

    [Fact]
    public void Reply_OneLinePerArgument()
    {
        var r = CliRunner.Run(_dir.Path, "reply", "--model", _model.ModelDirectory, "민수는 오늘 행복해", "tom는 오늘 배고파", "@not-a-response-file");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(3, r.StdoutLines.Length);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Chat_PipedLinesGiveOneReplyLineEach()
    {
        var r = CliRunner.Run(_dir.Path, ["chat", "--model", _model.ModelDirectory], stdin: "민수는 오늘 행복해\n\nanna는 오늘 피곤해\n처음 보는 말\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(4, r.StdoutLines.Length);
        Assert.Equal("", r.StdoutLines[1]);
        Assert.DoesNotContain("> ", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Chat_EmptyInputGivesNoOutput()
    {
        var r = CliRunner.Run(_dir.Path, ["chat", "--model", _model.ModelDirectory], stdin: "");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Eval_JsonHasTheMetrics()
    {
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Single(r.StdoutLines);
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.Equal(20, root.GetProperty("pairs").GetInt32());
        Assert.True(root.GetProperty("tokens").GetInt32() > 20);
        Assert.True(root.GetProperty("loss").GetDouble() > 0);
        Assert.Equal(Math.Exp(root.GetProperty("loss").GetDouble()), root.GetProperty("perplexity").GetDouble(), 6);
        foreach (var name in new[] { "tokenAccuracy", "tokenF1", "exactMatch" })
            Assert.InRange(root.GetProperty(name).GetDouble(), 0, 1);
        Assert.InRange(root.GetProperty("bleu").GetDouble(), 0, 100);
    }

    [Fact]
    public void Eval_TableByDefault()
    {
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile);
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var word in new[] { "pairs", "loss", "perplexity", "token accuracy", "BLEU", "token F1" })
            Assert.Contains(r.StdoutLines, l => l.StartsWith(word, StringComparison.Ordinal));
    }

    [Fact]
    public void Info_ShowsArchitectureAndTraining()
    {
        var r = CliRunner.Run(_dir.Path, "info", "--model", _model.ModelDirectory);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains(r.StdoutLines, l => l.StartsWith("architecture", StringComparison.Ordinal) && l.Contains("embedding 8, hidden 16, 1 layer"));
        Assert.Contains(r.StdoutLines, l => l.StartsWith("parameters", StringComparison.Ordinal));
        Assert.Contains(r.StdoutLines, l => l.StartsWith("training", StringComparison.Ordinal) && l.Contains("3 epoch(s)") && l.Contains("16 training / 4 validation"));
    }

    [Fact]
    public void Train_WithAttentionAndBidirectionalEncoder_InfoShowsThem_AndTheModelReplies()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var train = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "att", .. TinyModel.SmallTraining, "--attention", "general", "--bidirectional"],
            timeout: TimeSpan.FromMinutes(3));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains(train.StdoutLines, l => l.StartsWith("model:", StringComparison.Ordinal) && l.Contains(", bidirectional encoder, general attention;"));
        var info = CliRunner.Run(_dir.Path, "info", "--model", "att");
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains(info.StdoutLines, l => l.StartsWith("architecture", StringComparison.Ordinal) && l.EndsWith("1 layer(s), bidirectional encoder, general attention", StringComparison.Ordinal));
        var reply = CliRunner.Run(_dir.Path, "reply", "--model", "att", "hello");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Single(reply.StdoutLines);
    }

    [Fact]
    public void Train_WithBridgeAndInputFeeding_InfoShowsThem_AndTheModelReplies()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var train = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "br", .. TinyModel.SmallTraining, "--bridge", "--attention", "dot", "--input-feeding"],
            timeout: TimeSpan.FromMinutes(3));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains(train.StdoutLines, l => l.StartsWith("model:", StringComparison.Ordinal) && l.Contains(", learned bridge, dot attention, input feeding;"));
        var info = CliRunner.Run(_dir.Path, "info", "--model", "br");
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains(info.StdoutLines, l => l.StartsWith("architecture", StringComparison.Ordinal) && l.EndsWith("1 layer(s), learned bridge, dot attention, input feeding", StringComparison.Ordinal));
        string config = File.ReadAllText(_dir.File("br/config.json"));
        Assert.Contains("\"bridge\": true", config);
        Assert.Contains("\"inputFeeding\": true", config);
        var reply = CliRunner.Run(_dir.Path, "reply", "--model", "br", "hello");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Single(reply.StdoutLines);
    }

    [Fact]
    public void Version_PrintsTheVersion()
    {
        var r = CliRunner.Run(_dir.Path, "--version");
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", r.Stdout);
    }

    [Fact]
    public void Help_ListsTheCommands()
    {
        var r = CliRunner.Run(_dir.Path, "--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var command in new[] { "train", "reply", "chat", "eval", "info" }) Assert.Contains(command, r.Stdout);
    }

    [Fact]
    public void Train_WithRegularizationAndSchedule_SaysWhatItUses_AndInfoShowsTiedEmbeddings()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var r = CliRunner.Run(_dir.Path,
        [
            "train", "--data", "pairs.csv", "--out", "m", .. TinyModel.SmallTrainingWithout("--hidden-dim"), "--hidden-dim", "8",
            "--dropout", "0.2", "--tied-embeddings", "--label-smoothing", "0.1", "--warmup-steps", "2", "--lr-decay", "0.5",
            "--lr-plateau-factor", "0.5", "--lr-plateau-patience", "1", "--min-learning-rate", "0.001",
        ]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("training: dropout 0.2, tied embeddings, label smoothing 0.1 (losses shown are unsmoothed), warmup 2 steps, " +
            "lr ×0.5 per epoch after epoch 1, lr ×0.5 after 2 epochs without a better validation loss, min lr 0.001", r.StdoutLines);
        var lrs = r.StdoutLines.Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).Select(l => l.Split("  lr ")[1].Split(' ')[0]).ToArray();
        Assert.Equal(["1e-2", "5e-3", "2.5e-3"], lrs);
        var info = CliRunner.Run(_dir.Path, "info", "--model", "m");
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains("tied embeddings", info.Stdout);
    }

    [Fact]
    public void Train_SigtermSavesTheModelSoFarAndACheckpoint()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(20));
        var r = CliRunner.Run(_dir.Path,
            ["train", "--data", "pairs.csv", "--out", "m", .. TinyModel.SmallTrainingWithout("--epochs"), "--epochs", "100000"],
            timeout: TimeSpan.FromMinutes(2),
            onStdoutLine: (process, line) =>
            {
                if (line.StartsWith("epoch 2/", StringComparison.Ordinal)) Signal(process.Id, "TERM");
            });
        Assert.True(r.ExitCode == 143, r.ToString());
        Assert.Matches(@"^training interrupted: saved the model of epoch \d+ to m$", r.StdoutLines[^2]);
        Assert.Matches(@"^checkpoint m/checkpoints/step-\d{8} written; continue with: seqtalk train --resume m --data pairs.csv$", r.StdoutLines[^1]);
        var info = CliRunner.Run(_dir.Path, "info", "--model", "m");
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains("interrupted", info.Stdout);
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }
}
