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
}

/// <summary>The decoding options of <c>reply</c> and <c>chat</c> (--beam-size … --allow-unk), mapped onto <see cref="DecodeOptions"/>.
/// Each also has a name for the chat prompt's <c>/set NAME VALUE</c> (the option without its dashes).</summary>
internal sealed class DecodeFlags
{
    public Option<int?> MaxLength { get; } = SharedOptions.MaxLength();
    public Option<int?> MinLength { get; } = new("--min-length") { Description = "Shortest reply in tokens: </s> is not chosen before [default: 0].", HelpName = "N" };
    public Option<int?> BeamSize { get; } = new("--beam-size") { Description = "Beam search with this many hypotheses; 1 is greedy [default: 1].", HelpName = "N" };
    public Option<double?> LengthPenalty { get; } = new("--length-penalty") { Description = "Beam ranking: log p / length^ALPHA; 0 favours short replies [default: 1].", HelpName = "ALPHA" };
    public Option<int?> NBest { get; } = new("--nbest") { Description = "Print this many candidates with their scores (beam: at most --beam-size; sampling: samples) [default: 1].", HelpName = "N" };
    public Option<double?> Temperature { get; } = new("--temperature") { Description = "Sample at this temperature; 0 does not sample [default: 0].", HelpName = "T" };
    public Option<int?> TopK { get; } = new("--top-k") { Description = "Sampling: only the K most likely tokens; 0 is off [default: 0].", HelpName = "K" };
    public Option<double?> TopP { get; } = new("--top-p") { Description = "Sampling: only the most likely tokens whose probabilities add up to P [default: 1, off].", HelpName = "P" };
    public Option<int?> Seed { get; } = new("--seed") { Description = "Sampling seed: the same seed gives the same replies [default: a fresh one].", HelpName = "N" };
    public Option<int?> NoRepeatNgram { get; } = new("--no-repeat-ngram") { Description = "Never repeat an n-gram of this size in a reply; 0 is off [default: 0].", HelpName = "N" };
    public Option<double?> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalise tokens already in the reply (CTRL); 1 is off [default: 1].", HelpName = "THETA" };
    public Option<bool> AllowUnknown { get; } = new("--allow-unk") { Description = "Let replies contain <unk> (by default the next most likely token is taken)." };

    private static readonly Dictionary<string, string> s_optionNames = new()
    {
        [nameof(DecodeOptions.MaxLength)] = "--max-length",
        [nameof(DecodeOptions.MinLength)] = "--min-length",
        [nameof(DecodeOptions.BeamSize)] = "--beam-size",
        [nameof(DecodeOptions.LengthPenalty)] = "--length-penalty",
        [nameof(DecodeOptions.NBest)] = "--nbest",
        [nameof(DecodeOptions.Temperature)] = "--temperature",
        [nameof(DecodeOptions.TopK)] = "--top-k",
        [nameof(DecodeOptions.TopP)] = "--top-p",
        [nameof(DecodeOptions.Seed)] = "--seed",
        [nameof(DecodeOptions.NoRepeatNgramSize)] = "--no-repeat-ngram",
        [nameof(DecodeOptions.RepetitionPenalty)] = "--repetition-penalty",
        [nameof(DecodeOptions.AllowUnknown)] = "--allow-unk",
    };

    /// <summary>Adds the options to <paramref name="command"/>; without <paramref name="nbest"/>, all but --nbest (for
    /// commands that use one reply per question, such as eval).</summary>
    public void AddTo(Command command, bool nbest = true)
    {
        foreach (Option option in new Option[] { MaxLength, MinLength, BeamSize, LengthPenalty, NBest, Temperature, TopK, TopP, Seed, NoRepeatNgram, RepetitionPenalty, AllowUnknown })
        {
            if (nbest || option != NBest) command.Options.Add(option);
        }
    }

    /// <summary>The options given on the command line, validated (a bad value is a usage error naming the option).</summary>
    public DecodeOptions Read(ParseResult parse)
    {
        var defaults = new DecodeOptions();
        var options = new DecodeOptions
        {
            MaxLength = parse.GetValue(MaxLength),
            MinLength = parse.GetValue(MinLength) ?? defaults.MinLength,
            BeamSize = parse.GetValue(BeamSize) ?? defaults.BeamSize,
            LengthPenalty = parse.GetValue(LengthPenalty) ?? defaults.LengthPenalty,
            NBest = parse.GetValue(NBest) ?? defaults.NBest,
            Temperature = parse.GetValue(Temperature) ?? defaults.Temperature,
            TopK = parse.GetValue(TopK) ?? defaults.TopK,
            TopP = parse.GetValue(TopP) ?? defaults.TopP,
            Seed = parse.GetValue(Seed),
            NoRepeatNgramSize = parse.GetValue(NoRepeatNgram) ?? defaults.NoRepeatNgramSize,
            RepetitionPenalty = parse.GetValue(RepetitionPenalty) ?? defaults.RepetitionPenalty,
            AllowUnknown = parse.GetValue(AllowUnknown),
        };
        Check(options);
        if (!options.Samples)
        {
            string? flag = parse.GetValue(TopK) is not null ? "--top-k" : parse.GetValue(TopP) is not null ? "--top-p" : parse.GetValue(Seed) is not null ? "--seed" : null;
            if (flag is not null) throw new UsageException($"{flag} only applies when sampling: add --temperature T (above 0).");
        }
        return options;
    }

    /// <summary>Validates <paramref name="options"/>, naming command-line options in the message.</summary>
    public static void Check(DecodeOptions options) => CommandRunner.Validate(options.Validate, s_optionNames);

    /// <summary>The chat prompt's <c>/set NAME VALUE</c>: the options with one setting changed (not yet validated).</summary>
    /// <exception cref="UsageException">Unknown name or a value that does not parse.</exception>
    public static DecodeOptions Set(DecodeOptions options, string name, string value)
    {
        string key = name.TrimStart('-').ToLowerInvariant();
        return key switch
        {
            "greedy" => new DecodeOptions { MaxLength = options.MaxLength, AllowUnknown = options.AllowUnknown },
            "max-length" => options with { MaxLength = value is "default" or "" ? null : Int(name, value) },
            "min-length" => options with { MinLength = Int(name, value) },
            "beam" or "beam-size" => options with { BeamSize = Int(name, value) },
            "length-penalty" => options with { LengthPenalty = Number(name, value) },
            "nbest" => options with { NBest = Int(name, value) },
            "temperature" => options with { Temperature = Number(name, value) },
            "top-k" => options with { TopK = Int(name, value) },
            "top-p" => options with { TopP = Number(name, value) },
            "seed" => options with { Seed = value is "none" or "" ? null : Int(name, value) },
            "no-repeat-ngram" => options with { NoRepeatNgramSize = Int(name, value) },
            "repetition-penalty" => options with { RepetitionPenalty = Number(name, value) },
            "allow-unk" => options with { AllowUnknown = value.ToLowerInvariant() is "on" or "true" or "yes" or "1" || (value.ToLowerInvariant() is "off" or "false" or "no" or "0" ? false : throw new UsageException($"'{name}' takes on or off, not '{value}'.")) },
            _ => throw new UsageException($"unknown setting '{name}'; try greedy, beam, length-penalty, nbest, temperature, top-k, top-p, seed, min-length, max-length, no-repeat-ngram, repetition-penalty or allow-unk."),
        };
    }

    /// <summary>The settings as the chat prompt shows them.</summary>
    public static string Describe(DecodeOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        string strategy = o.Samples
            ? string.Create(inv, $"sampling: temperature {o.Temperature}, top-k {o.TopK}, top-p {o.TopP}, seed {(o.Seed is { } s ? s.ToString(inv) : "none")}, nbest {o.NBest}")
            : o.BeamSize > 1 ? string.Create(inv, $"beam: beam-size {o.BeamSize}, length-penalty {o.LengthPenalty}, nbest {o.NBest}") : "greedy";
        return string.Create(inv, $"{strategy}; max-length {(o.MaxLength is { } m ? m.ToString(inv) : "default")}, min-length {o.MinLength}, no-repeat-ngram {o.NoRepeatNgramSize}, repetition-penalty {o.RepetitionPenalty}, allow-unk {(o.AllowUnknown ? "on" : "off")}");
    }

    /// <summary>Prints the replies: one line each, or with nbest above 1 one line per candidate, "question rank score log-p text", tab-separated.</summary>
    public static void Print(ChatModel chat, IReadOnlyList<string> questions, DecodeOptions options, TextWriter output)
    {
        if (options.NBest == 1)
        {
            foreach (var reply in chat.ReplyBatch(questions, options)) output.WriteLine(CommandRunner.OneLine(reply));
            return;
        }
        var results = chat.ReplyDetailedBatch(questions, options);
        for (int i = 0; i < results.Count; i++)
        {
            for (int j = 0; j < results[i].NBest.Count; j++)
            {
                var c = results[i].NBest[j];
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i + 1}\t{j + 1}\t{c.Score:F4}\t{c.LogProbability:F4}\t{CommandRunner.OneLine(c.Text)}"));
            }
        }
    }

    private static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : throw new UsageException($"'{name}' takes a whole number, not '{value}'.");

    private static double Number(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) ? x : throw new UsageException($"'{name}' takes a number, not '{value}'.");
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
    /// reported on stderr as <see cref="ReadPairs"/> reports them. Throws <see cref="OperationCanceledException"/>
    /// between rows once <paramref name="cancellationToken"/> fires.</summary>
    public PairFile CountPairs(ParseResult parse, string? temporaryDirectory, CancellationToken cancellationToken)
    {
        string path = parse.GetValue(Data)!;
        var file = new PairFile(path, ReaderOptions(parse)) { TemporaryDirectory = temporaryDirectory };
        file.CountPairs(cancellationToken);
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
