using System.Text;
using System.Text.RegularExpressions;

namespace Seqtalk.Cli.Tests;

/// <summary>The issue's acceptance test, through the CLI: train on 100 real pairs, then reply to all of
/// them in one call; at least 95 replies are the trained answer. The only slow test (about 30 s; 30 epochs already gave 100 of 100 for two seeds).</summary>
public sealed partial class MemorisationTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void HundredChatbotPairs_AreMemorised()
    {
        var pairs = FirstDistinct(RepoPaths.ChatbotData, 100);
        Assert.Equal(100, pairs.Count);
        TinyModel.WriteCsv(_dir.File("hundred.csv"), pairs);

        var train = CliRunner.Run(_dir.Path,
        [
            "train", "--data", "hundred.csv", "--out", "model", "--validation-size", "0", "--epochs", "40",
            "--embedding-dim", "64", "--hidden-dim", "128", "--optimizer", "adam", "--learning-rate", "0.01",
            "--batch-size", "16", "--clip-norm", "5", "--seed", "1",
        ], timeout: TimeSpan.FromMinutes(5));
        Assert.True(train.ExitCode == 0, train.ToString());

        var reply = CliRunner.Run(_dir.Path, ["reply", "--model", "model", .. pairs.Select(p => p.Question)], timeout: TimeSpan.FromMinutes(2));
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal(100, reply.StdoutLines.Length);
        var misses = pairs.Zip(reply.StdoutLines)
            .Where(x => Squash(x.First.Answer) != Squash(x.Second))
            .Select(x => $"{x.First.Question} -> '{x.Second}' (trained: '{x.First.Answer}')")
            .ToList();
        Assert.True(misses.Count <= 5, $"{misses.Count} of 100 replies differ from the trained answer:\n{string.Join('\n', misses)}");
    }

    /// <summary>Compares text the way the tokenizer sees it: NFC, without spacing.</summary>
    private static string Squash(string text) => Spaces().Replace(text.Normalize(NormalizationForm.FormC), "");

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    /// <summary>The first rows of ChatbotData.csv (Q,A,label; one line per row) with distinct questions.</summary>
    internal static List<(string Question, string Answer)> FirstDistinct(string path, int count)
    {
        var seen = new HashSet<string>();
        var pairs = new List<(string, string)>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var fields = SplitCsvLine(line);
            if (fields.Count != 3 || !seen.Add(fields[0].Trim())) continue;
            pairs.Add((fields[0], fields[1]));
            if (pairs.Count == count) break;
        }
        return pairs;
    }

    /// <summary>Fields of one CSV line; quoted fields may hold commas and doubled quotes.</summary>
    private static List<string> SplitCsvLine(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
