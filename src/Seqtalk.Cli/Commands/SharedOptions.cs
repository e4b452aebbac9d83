using System.CommandLine;
using System.Globalization;
using Seqtalk.Data;
using Seqtalk.Decoding;

namespace Seqtalk.Cli.Commands;

/// <summary>Options that several commands share, and their mapping onto library records.</summary>
internal static class SharedOptions
{
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "The model directory that 'seqtalk train --out' wrote.",
        HelpName = "DIR",
        Required = true,
    };

    public static Option<int?> MaxLength() => new("--max-length")
    {
        Description = "Longest reply in tokens [default: the model's, longest training answer plus a margin].",
        HelpName = "N",
    };

    public static DecodeOptions ToDecodeOptions(int? maxLength)
    {
        var options = new DecodeOptions { MaxLength = maxLength };
        CommandRunner.Validate(options.Validate, new Dictionary<string, string> { [nameof(DecodeOptions.MaxLength)] = "--max-length" });
        return options;
    }
}

/// <summary>The options that say how to read a pairs file: --data, --question-column, --answer-column, --format.</summary>
internal sealed class DataOptions
{
    public Option<string> Data { get; } = new("--data", "-d")
    {
        Description = "The question/answer pairs file (.csv, .tsv or .jsonl; UTF-8 with a header row or JSON keys).",
        HelpName = "FILE",
        Required = true,
    };

    public Option<string?> QuestionColumn { get; } = new("--question-column")
    {
        Description = "Column (or JSON key) of the questions, ignoring case [default: Q or question].",
        HelpName = "NAME",
    };

    public Option<string?> AnswerColumn { get; } = new("--answer-column")
    {
        Description = "Column (or JSON key) of the answers, ignoring case [default: A or answer].",
        HelpName = "NAME",
    };

    public Option<string?> Format { get; } = new("--format")
    {
        Description = "File format: csv, tsv or jsonl [default: by extension, .tsv/.tab → tsv, .jsonl/.ndjson → jsonl, else csv].",
        HelpName = "FORMAT",
    };

    public DataOptions()
    {
        Format.AcceptOnlyFromAmong("csv", "tsv", "jsonl");
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(QuestionColumn);
        command.Options.Add(AnswerColumn);
        command.Options.Add(Format);
    }

    /// <summary>Reads every usable pair; skipped rows are reported on stderr (count and the first few).</summary>
    public List<QaPair> ReadPairs(ParseResult parse, out string path)
    {
        path = parse.GetValue(Data)!;
        var pairs = PairReader.ReadAll(path, ReaderOptions(parse), out var report);
        WarnAboutSkips(report, path);
        return pairs;
    }

    /// <summary>Names the pairs file for streaming training and counts its pairs (one pass); skipped rows are
    /// reported on stderr as <see cref="ReadPairs"/> reports them.</summary>
    public PairFile CountPairs(ParseResult parse, string? temporaryDirectory)
    {
        string path = parse.GetValue(Data)!;
        var file = new PairFile(path, ReaderOptions(parse)) { TemporaryDirectory = temporaryDirectory };
        file.CountPairs();
        WarnAboutSkips(file.Report!, path);
        return file;
    }

    private PairReaderOptions ReaderOptions(ParseResult parse)
    {
        var options = new PairReaderOptions
        {
            QuestionColumn = parse.GetValue(QuestionColumn),
            AnswerColumn = parse.GetValue(AnswerColumn),
            Format = parse.GetValue(Format) switch
            {
                "csv" => PairFileFormat.Csv,
                "tsv" => PairFileFormat.Tsv,
                "jsonl" => PairFileFormat.Jsonl,
                _ => null,
            },
        };
        CommandRunner.Validate(options.Validate, new Dictionary<string, string>
        {
            [nameof(PairReaderOptions.QuestionColumn)] = "--question-column",
            [nameof(PairReaderOptions.AnswerColumn)] = "--answer-column",
            [nameof(PairReaderOptions.Format)] = "--format",
        });
        return options;
    }

    private static void WarnAboutSkips(PairReadReport report, string path)
    {
        if (report.Skipped == 0) return;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"warning: skipped {report.Skipped:N0} of {report.RowsRead:N0} rows in {path} (empty question or answer):"));
        foreach (var example in report.SkippedExamples) Console.Error.WriteLine("  " + example);
        if (report.Skipped > report.SkippedExamples.Count)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  … and {report.Skipped - report.SkippedExamples.Count:N0} more"));
    }
}
