using System.Text;

namespace Seqtalk.Cli.Tests;

/// <summary>Small generated pair files and one tiny model trained once for the whole test class.</summary>
public sealed class TinyModel : IDisposable
{
    /// <summary>Options that make training take about a second.</summary>
    internal static readonly string[] SmallTraining =
    [
        "--epochs", "3", "--embedding-dim", "8", "--hidden-dim", "16", "--batch-size", "8", "--optimizer", "adam",
        "--learning-rate", "0.01", "--validation-size", "4", "--threads", "1", "--seed", "7",
    ];

    private readonly TempDirectory _dir = new();

    /// <summary><see cref="SmallTraining"/> without one option (so a test can give it another value).</summary>
    internal static string[] SmallTrainingWithout(string option)
    {
        var args = new List<string>();
        for (int i = 0; i < SmallTraining.Length; i += 2)
        {
            if (SmallTraining[i] != option) args.AddRange([SmallTraining[i], SmallTraining[i + 1]]);
        }
        return [.. args];
    }

    public TinyModel()
    {
        DataFile = _dir.File("pairs.csv");
        WriteCsv(DataFile, Pairs(20));
        ModelDirectory = _dir.File("model");
        TrainResult = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "model", .. SmallTraining], timeout: TimeSpan.FromMinutes(3));
    }

    public string DataFile { get; }
    public string ModelDirectory { get; }
    internal CliResult TrainResult { get; }

    /// <summary>Pairs where the answer is a function of the question (Korean and English).</summary>
    internal static List<(string Question, string Answer)> Pairs(int count)
    {
        string[] names = ["민수", "지영", "tom", "anna", "철수", "영희", "bob", "lee", "수진", "kim"];
        string[] moods = ["행복해", "피곤해", "배고파", "심심해"];
        string[] replies = ["좋은 일이 있었나 봐요!", "푹 쉬세요.", "맛있는 거 드세요.", "같이 놀아요!"];
        var pairs = new List<(string, string)>();
        for (int i = 0; i < count; i++)
        {
            int n = i % names.Length, m = i / names.Length % moods.Length;
            pairs.Add(($"{names[n]}는 오늘 {moods[m]}", $"{names[n]}님, {replies[m]}"));
        }
        return pairs;
    }

    internal static void WriteCsv(string path, IEnumerable<(string Question, string Answer)> pairs)
    {
        var text = new StringBuilder("question,answer\n");
        foreach (var (q, a) in pairs) text.Append(Quote(q)).Append(',').Append(Quote(a)).Append('\n');
        File.WriteAllText(path, text.ToString(), new UTF8Encoding(false));
    }

    private static string Quote(string field) => "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Copies the trained model to a new directory (for tests that damage it).</summary>
    internal void CopyTo(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var file in Directory.GetFiles(ModelDirectory)) File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
    }

    public void Dispose() => _dir.Dispose();
}

internal static class CliAssert
{
    /// <summary>The run failed with <paramref name="exitCode"/> and exactly one stderr line, "error: …",
    /// with no stack frame, holding every key word (ignoring case).</summary>
    public static void OneLineError(CliResult result, int exitCode, params string[] keywords)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}\n{result}");
        Assert.True(result.StderrLines.Length == 1, $"expected one stderr line\n{result}");
        string line = result.StderrLines[0];
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.DoesNotContain("internal error", line);
        foreach (var word in keywords) Assert.True(line.Contains(word, StringComparison.OrdinalIgnoreCase), $"'{word}' missing from: {line}");
    }
}
