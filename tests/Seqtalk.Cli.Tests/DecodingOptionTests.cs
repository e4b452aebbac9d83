using System.Globalization;

namespace Seqtalk.Cli.Tests;

/// <summary>reply and chat with the decoding options: beam, n-best, sampling, rules, /set, and bad values.</summary>
public sealed class DecodingOptionTests : IClassFixture<TinyModel>, IDisposable
{
    private readonly TinyModel _model;
    private readonly TempDirectory _dir = new();

    public DecodingOptionTests(TinyModel model) => _model = model;

    public void Dispose() => _dir.Dispose();

    private CliResult Reply(params string[] args) => CliRunner.Run(_dir.Path, ["reply", "--model", _model.ModelDirectory, .. args]);

    [Fact]
    public void BeamOfOne_IsGreedy_AndNBestPrintsRankedCandidatesWithScores()
    {
        string[] questions = ["민수는 오늘 행복해", "anna는 오늘 피곤해"];
        var greedy = Reply(questions);
        var beamOne = Reply(["--beam-size", "1", .. questions]);
        Assert.True(greedy.ExitCode == 0, greedy.ToString());
        Assert.Equal(greedy.Stdout, beamOne.Stdout);

        var nbest = Reply(["--beam-size", "3", "--nbest", "3", "--length-penalty", "0.5", .. questions]);
        Assert.True(nbest.ExitCode == 0, nbest.ToString());
        var rows = nbest.StdoutLines.Select(l => l.Split('\t')).ToArray();
        Assert.All(rows, r => Assert.Equal(5, r.Length));
        Assert.Equal(6, rows.Length);
        for (int q = 1; q <= 2; q++)
        {
            var mine = rows.Where(r => r[0] == q.ToString(CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(["1", "2", "3"], mine.Select(r => r[1]));
            var scores = mine.Select(r => double.Parse(r[2], CultureInfo.InvariantCulture)).ToArray();
            Assert.True(scores.Zip(scores.Skip(1)).All(p => p.First >= p.Second), string.Join(", ", scores));
            Assert.All(mine, r => Assert.True(double.Parse(r[3], CultureInfo.InvariantCulture) <= double.Parse(r[2], CultureInfo.InvariantCulture) + 1e-4));
        }
    }

    [Fact]
    public void Sampling_SameSeedSameReplies()
    {
        string[] args = ["--temperature", "1.5", "--top-k", "5", "--top-p", "0.95", "--seed", "7", "--nbest", "4", "민수는 오늘 행복해"];
        var a = Reply(args);
        var b = Reply(args);
        Assert.True(a.ExitCode == 0, a.ToString());
        Assert.Equal(4, a.StdoutLines.Length);
        Assert.Equal(a.Stdout, b.Stdout);
    }

    [Fact]
    public void Rules_MinLengthAndNoRepeat()
    {
        var r = Reply("--min-length", "6", "--max-length", "9", "--no-repeat-ngram", "1", "--repetition-penalty", "1.3", "--allow-unk", "민수는 오늘 행복해", "처음 보는 말");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.All(r.StdoutLines, line =>
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(words.Length, words.Distinct().Count());
        });
    }

    [Theory]
    [InlineData("--beam-size", "0")]
    [InlineData("--beam-size", "100")]
    [InlineData("--nbest", "2")]
    [InlineData("--temperature", "-1")]
    [InlineData("--top-p", "0")]
    [InlineData("--top-k", "-3")]
    [InlineData("--min-length", "-1")]
    [InlineData("--no-repeat-ngram", "-2")]
    [InlineData("--repetition-penalty", "0")]
    [InlineData("--length-penalty", "-1")]
    public void BadValues_OneLineErrorExit2(string option, string value) =>
        CliAssert.OneLineError(Reply(option, value, "hi"), 2, option);

    [Theory]
    [InlineData("--top-k", "5")]
    [InlineData("--seed", "1")]
    public void SamplingOptionsWithoutTemperature_AreAUsageError(string option, string value) =>
        CliAssert.OneLineError(Reply(option, value, "hi"), 2, option, "--temperature");

    [Fact]
    public void BeamAndSamplingTogether_AreAUsageError() =>
        CliAssert.OneLineError(Reply("--beam-size", "2", "--temperature", "1", "hi"), 2, "--beam-size");

    [Fact]
    public void Chat_SetChangesSettingsBetweenLines_OneLineEach()
    {
        string input = "민수는 오늘 행복해\n/set beam 3\n/set nbest 2\n민수는 오늘 행복해\n/set beam zero\n/set temperature -1\n/set greedy\n/settings\n민수는 오늘 행복해\n";
        var r = CliRunner.Run(_dir.Path, ["chat", "--model", _model.ModelDirectory], stdin: input);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.StdoutLines;
        Assert.Equal(10, lines.Length);   // reply, settings, settings, 2 candidates, error, error, settings, settings, reply
        Assert.StartsWith("beam: beam-size 3", lines[1]);
        Assert.Contains("nbest 2", lines[2]);
        Assert.Equal(2, lines[3..5].Count(l => l.Split('\t').Length == 5));
        Assert.StartsWith("error: ", lines[5]);
        Assert.StartsWith("error: ", lines[6]);
        Assert.Contains("--temperature", lines[6]);
        Assert.StartsWith("greedy", lines[7]);
        Assert.Equal(lines[7], lines[8]);
        Assert.Equal(lines[0], lines[9]);
        Assert.Equal("", r.Stderr);
    }
}
