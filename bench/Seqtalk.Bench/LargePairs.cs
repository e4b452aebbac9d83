using System.Diagnostics;
using System.Globalization;
using System.Text;
using Seqtalk.Data;

namespace Seqtalk.Bench;

/// <summary>
/// `large-pairs` mode: writes an N-row pairs file (default 1,000,000) for the large-input procedure of
/// docs/benchmarks.md. Korean-like text: the words of ChatbotData.csv recombined, seeded. Each row takes
/// the question and answer lengths (in words) of a random real pair and fills them with words drawn from
/// all the questions' (answers') words, so word frequencies and lengths follow the real data while the
/// vocabulary stays that of ChatbotData (14,284 distinct space-separated question words, 10,005 answer words).
/// </summary>
internal static class LargePairs
{
    public const int DefaultRows = 1_000_000;
    public const int DefaultSeed = 1;

    public static int Run(string[] args)
    {
        int rows = DefaultRows, seed = DefaultSeed;
        string? output = null, data = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--rows": rows = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": output = Next(); break;
                case "--data": data = Next(); break;
                default:
                    Console.Error.WriteLine("usage: large-pairs [--rows N (1000000)] [--seed S (1)] [--out FILE] [--data ChatbotData.csv]");
                    return 2;
            }
        }
        if (rows < 1)
        {
            Console.Error.WriteLine("--rows must be at least 1");
            return 2;
        }
        data ??= Workloads.DefaultDataPath();
        output ??= Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"seqtalk-large-{rows}.csv"));

        var clock = Stopwatch.StartNew();
        var source = PairReader.ReadAll(data, null, out _);
        var questions = source.Select(p => Words(p.Question)).ToArray();
        var answers = source.Select(p => Words(p.Answer)).ToArray();
        string[] questionWords = [.. questions.SelectMany(w => w)];   // with repeats: frequent words are drawn more often
        string[] answerWords = [.. answers.SelectMany(w => w)];

        var random = new Random(seed);
        var line = new StringBuilder();
        using (var writer = new StreamWriter(output, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 16))
        {
            writer.Write("Q,A,label\n");
            for (int r = 0; r < rows; r++)
            {
                int shape = random.Next(source.Count);
                line.Clear();
                AppendField(line, questions[shape].Length, questionWords, random);
                line.Append(',');
                AppendField(line, answers[shape].Length, answerWords, random);
                line.Append(",0\n");
                writer.Write(line);
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {rows:N0} pairs ({new FileInfo(output).Length / 1e6:F1} MB) to {output} in {clock.Elapsed.TotalSeconds:F1} s (seed {seed}; words of {data})"));
        return 0;
    }

    private static string[] Words(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Appends <paramref name="count"/> (at least 1) random words as one CSV field, quoted when needed.</summary>
    private static void AppendField(StringBuilder line, int count, string[] words, Random random)
    {
        var text = new StringBuilder();
        for (int i = 0; i < Math.Max(1, count); i++)
        {
            if (i > 0) text.Append(' ');
            text.Append(words[random.Next(words.Length)]);
        }
        string field = text.ToString();
        if (field.AsSpan().IndexOfAny(",\"\n\r") >= 0) line.Append('"').Append(field.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
        else line.Append(field);
    }
}
