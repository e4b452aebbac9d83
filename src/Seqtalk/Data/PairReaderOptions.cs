namespace Seqtalk.Data;

/// <summary>The layout of a pairs file.</summary>
public enum PairFileFormat
{
    /// <summary>Comma-separated values, RFC 4180: quoted fields may hold commas, doubled quotes and line breaks.</summary>
    Csv,
    /// <summary>Tab-separated values: one row per line, fields split at tabs, no quoting.</summary>
    Tsv,
    /// <summary>JSON Lines: one JSON object per line; the question and answer are string members.</summary>
    Jsonl,
}

/// <summary>How <see cref="PairReader"/> reads a pairs file.</summary>
public sealed record PairReaderOptions
{
    /// <summary>Default for <see cref="MaxRowChars"/>.</summary>
    public const int DefaultMaxRowChars = 1_000_000;
    /// <summary>Default for <see cref="MaxReportedSkips"/>.</summary>
    public const int DefaultMaxReportedSkips = 5;

    /// <summary>Header name (CSV, TSV) or object key (JSONL) of the question, matched ignoring case.
    /// <see langword="null"/> looks for <c>Q</c> or <c>question</c>.</summary>
    public string? QuestionColumn { get; init; }

    /// <summary>Header name (CSV, TSV) or object key (JSONL) of the answer, matched ignoring case.
    /// <see langword="null"/> looks for <c>A</c> or <c>answer</c>.</summary>
    public string? AnswerColumn { get; init; }

    /// <summary>The file layout; <see langword="null"/> picks it from the extension
    /// (<c>.tsv</c>/<c>.tab</c> → TSV, <c>.jsonl</c>/<c>.ndjson</c> → JSONL, anything else → CSV).</summary>
    public PairFileFormat? Format { get; init; }

    /// <summary>The longest row accepted, in UTF-16 characters; a longer row (or line) is an error,
    /// detected without buffering more than this much.</summary>
    public int MaxRowChars { get; init; } = DefaultMaxRowChars;

    /// <summary>How many skipped rows are described in <see cref="PairReadReport.SkippedExamples"/>.</summary>
    public int MaxReportedSkips { get; init; } = DefaultMaxReportedSkips;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A property is out of range.</exception>
    public void Validate()
    {
        if (MaxRowChars < 1) throw new ArgumentOutOfRangeException(nameof(MaxRowChars), MaxRowChars, "Must be at least 1.");
        if (MaxReportedSkips < 0) throw new ArgumentOutOfRangeException(nameof(MaxReportedSkips), MaxReportedSkips, "Must not be negative.");
        if (QuestionColumn is { } q && string.IsNullOrWhiteSpace(q)) throw new ArgumentOutOfRangeException(nameof(QuestionColumn), q, "Must not be blank.");
        if (AnswerColumn is { } a && string.IsNullOrWhiteSpace(a)) throw new ArgumentOutOfRangeException(nameof(AnswerColumn), a, "Must not be blank.");
        if (Format is { } f && !Enum.IsDefined(f)) throw new ArgumentOutOfRangeException(nameof(Format), f, "Unknown format.");
    }
}

/// <summary>What <see cref="PairReader"/> found while reading: filled in as rows are read.</summary>
public sealed class PairReadReport
{
    /// <summary>Data rows read so far (header and blank lines not counted); pairs returned = RowsRead − Skipped.</summary>
    public int RowsRead { get; internal set; }

    /// <summary>Rows skipped because the question or the answer is empty after trimming (or missing).</summary>
    public int Skipped { get; internal set; }

    /// <summary>The first few skipped rows, e.g. <c>"line 12: empty answer"</c>
    /// (at most <see cref="PairReaderOptions.MaxReportedSkips"/>).</summary>
    public List<string> SkippedExamples { get; } = [];
}
