using System.Text;
using System.Text.Json;

namespace Seqtalk.Data;

/// <summary>
/// Reads question/answer pairs from CSV (RFC 4180), TSV or JSON Lines files, streaming: rows are
/// returned as they are read and the file is never loaded whole. See <c>docs/data.md</c>.
/// </summary>
/// <remarks>
/// The question and answer columns are found by header name (<c>Q</c>/<c>question</c>,
/// <c>A</c>/<c>answer</c>, ignoring case; for JSONL the same names as object keys) or named in
/// <see cref="PairReaderOptions"/>; other columns are ignored. Rows whose question or answer is empty
/// after trimming are skipped and counted in the <see cref="PairReadReport"/>. Text is returned verbatim.
/// </remarks>
public static class PairReader
{
    /// <summary>Reads the pairs of a file lazily. The path is checked at once; the content as it is enumerated.</summary>
    /// <param name="path">The pairs file.</param>
    /// <param name="options">How to read it; <see langword="null"/> for the defaults.</param>
    /// <param name="report">Filled in with row counts and skipped rows while enumerating.</param>
    /// <returns>The usable pairs, in file order.</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="DataFormatException">The file is missing or a directory (at once); or, while
    /// enumerating: the file is empty, has no pairs, lacks a column, is not valid UTF-8, has an
    /// unterminated quote, invalid JSON, or a row longer than <see cref="PairReaderOptions.MaxRowChars"/>.</exception>
    public static IEnumerable<QaPair> Read(string path, PairReaderOptions? options = null, PairReadReport? report = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new PairReaderOptions();
        options.Validate();
        if (Directory.Exists(path))
            throw new DataFormatException(path, 0, "is a directory; give the path of a pairs file (.csv, .tsv or .jsonl).");
        if (!File.Exists(path))
            throw new DataFormatException(path, 0, "file not found.");
        return ReadCore(path, options.Format ?? FormatOf(path), () => Open(path), options, report ?? new PairReadReport());
    }

    /// <summary>Reads the pairs of a stream lazily, exactly as <see cref="Read(string, PairReaderOptions?, PairReadReport?)"/>
    /// reads a file; <paramref name="name"/> stands for the file in messages. The stream is disposed when enumeration ends.</summary>
    internal static IEnumerable<QaPair> Read(Stream stream, string name, PairFileFormat format, PairReaderOptions? options = null, PairReadReport? report = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new PairReaderOptions();
        options.Validate();
        return ReadCore(name, format, () => stream, options, report ?? new PairReadReport());
    }

    /// <summary>Reads all the pairs of a file into a list.</summary>
    /// <param name="path">The pairs file.</param>
    /// <param name="options">How to read it; <see langword="null"/> for the defaults.</param>
    /// <param name="report">Row counts and the first skipped rows.</param>
    /// <returns>The usable pairs, in file order (never empty).</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="DataFormatException">The file cannot be read or has no usable pairs
    /// (see <see cref="Read(string, PairReaderOptions?, PairReadReport?)"/>).</exception>
    public static List<QaPair> ReadAll(string path, PairReaderOptions? options, out PairReadReport report)
    {
        var filled = new PairReadReport();
        var pairs = Read(path, options, filled).ToList();
        report = filled;
        return pairs;
    }

    /// <summary>The format for a path's extension: .tsv/.tab → TSV, .jsonl/.ndjson → JSONL, else CSV.</summary>
    internal static PairFileFormat FormatOf(string path) => Path.GetExtension(path).ToUpperInvariant() switch
    {
        ".TSV" or ".TAB" => PairFileFormat.Tsv,
        ".JSONL" or ".NDJSON" => PairFileFormat.Jsonl,
        _ => PairFileFormat.Csv,
    };

    /// <summary>A data row: null for a field the row does not have.</summary>
    private readonly record struct RawRow(string? Question, string? Answer, long Line);

    private static IEnumerable<QaPair> ReadCore(string path, PairFileFormat format, Func<Stream> open, PairReaderOptions options, PairReadReport report)
    {
        using var lines = new Utf8LineReader(open(), path);
        var rows = format switch
        {
            PairFileFormat.Csv => DelimitedRows(lines, path, options, csv: true),
            PairFileFormat.Tsv => DelimitedRows(lines, path, options, csv: false),
            PairFileFormat.Jsonl => JsonRows(lines, path, options),
        };

        int rowsRead = 0, pairs = 0;
        string? firstSkip = null;
        foreach (var row in rows)
        {
            rowsRead++;
            report.RowsRead++;
            if (Problem(row) is { } problem)
            {
                report.Skipped++;
                string example = $"line {row.Line}: {problem}";
                firstSkip ??= example;
                if (report.SkippedExamples.Count < options.MaxReportedSkips) report.SkippedExamples.Add(example);
                continue;
            }
            pairs++;
            yield return new QaPair(row.Question!, row.Answer!, row.Line);
        }

        if (pairs > 0) yield break;
        if (rowsRead > 0)
            throw new DataFormatException(path, 0, $"no usable pairs: all {rowsRead} rows have an empty question or answer (first: {firstSkip}).");
        if (lines.LineNumber == 0)
            throw new DataFormatException(path, 0, "the file is empty.");
        throw new DataFormatException(path, 0, format == PairFileFormat.Jsonl
            ? "no pairs: the file has only blank lines."
            : "no pairs: the file has a header line but no rows after it.");
    }

    private static string? Problem(RawRow row)
    {
        string? q = row.Question is null ? "no question field" : string.IsNullOrWhiteSpace(row.Question) ? "empty question" : null;
        string? a = row.Answer is null ? "no answer field" : string.IsNullOrWhiteSpace(row.Answer) ? "empty answer" : null;
        return q is null ? a : a is null ? q : $"{q} and {a}";
    }

    private static FileStream Open(string path)
    {
        try
        {
            // Unbuffered: Utf8LineReader reads in its own 64 KiB chunks.
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException(path, 0, "file not found.");
        }
        catch (UnauthorizedAccessException)
        {
            throw new DataFormatException(path, 0, "cannot be read (permission denied).");
        }
        catch (IOException ex)
        {
            throw new DataFormatException(path, 0, $"cannot be read ({OneLine(ex.Message)}).");
        }
    }

    // ---- CSV and TSV ----------------------------------------------------------------------------

    private static IEnumerable<RawRow> DelimitedRows(Utf8LineReader lines, string file, PairReaderOptions options, bool csv)
    {
        var records = csv ? CsvRecords(lines, file, options.MaxRowChars) : TsvRecords(lines, file, options.MaxRowChars);
        using var e = records.GetEnumerator();
        if (!e.MoveNext())
        {
            throw new DataFormatException(file, 0, lines.LineNumber == 0
                ? "the file is empty; expected a header line such as 'Q,A' and then one pair per line."
                : "the file has only blank lines; expected a header line such as 'Q,A' and then one pair per line.");
        }

        var header = e.Current.Fields.Select(h => h.Trim()).ToArray();
        int q = FindColumn(file, 0, header, options.QuestionColumn, "Q", "question", "--question-column", "column");
        int a = FindColumn(file, 0, header, options.AnswerColumn, "A", "answer", "--answer-column", "column");
        if (q == a)
            throw new DataFormatException(file, 0, $"the question and the answer are both column '{header[q]}'; name two different columns.");

        while (e.MoveNext())
        {
            var (fields, line) = e.Current;
            yield return new RawRow(q < fields.Length ? fields[q] : null, a < fields.Length ? fields[a] : null, line);
        }
    }

    private enum CsvState { FieldStart, Unquoted, Quoted, AfterQuote }

    /// <summary>RFC 4180 records. A quoted field may hold commas, doubled quotes and line breaks (kept
    /// as written, CRLF or LF); a record ends at a line break outside quotes, with its CR dropped.
    /// A quote inside an unquoted field is kept as text; text after a closing quote is an error.</summary>
    private static IEnumerable<(string[] Fields, long Line)> CsvRecords(Utf8LineReader lines, string file, int maxRowChars)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        while (true)
        {
            var status = lines.ReadLine(maxRowChars, out string line);
            if (status == LineStatus.EndOfFile) yield break;
            if (status == LineStatus.TooLong) throw RowTooLong(file, lines.LineNumber, maxRowChars, 0, 0);
            if (line.Length == 0 || line == "\r") continue;   // a blank line is not a row

            long start = lines.LineNumber;
            long used = line.Length;
            long quoteLine = 0;
            int quoteColumn = 0;
            var state = CsvState.FieldStart;
            fields.Clear();
            field.Clear();
            while (true)
            {
                int end = line.EndsWith('\r') ? line.Length - 1 : line.Length;
                for (int i = 0; i < end; i++)
                {
                    char c = line[i];
                    switch (state)
                    {
                        case CsvState.FieldStart:
                            if (c == '"') { state = CsvState.Quoted; quoteLine = lines.LineNumber; quoteColumn = i + 1; }
                            else if (c == ',') fields.Add("");
                            else { field.Append(c); state = CsvState.Unquoted; }
                            break;
                        case CsvState.Unquoted:
                            if (c == ',') { fields.Add(field.ToString()); field.Clear(); state = CsvState.FieldStart; }
                            else field.Append(c);
                            break;
                        case CsvState.Quoted:
                            if (c == '"') state = CsvState.AfterQuote;
                            else field.Append(c);
                            break;
                        case CsvState.AfterQuote:
                            if (c == '"') { field.Append('"'); state = CsvState.Quoted; }
                            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); state = CsvState.FieldStart; }
                            else
                            {
                                throw new DataFormatException(file, lines.LineNumber,
                                    $"unexpected {(char.IsControl(c) ? $"U+{(int)c:X4}" : $"'{c}'")} after the closing quote of field {fields.Count + 1} (column {i + 1}); write a quote inside a quoted field twice (\"\").");
                            }
                            break;
                    }
                }

                if (state != CsvState.Quoted) break;
                // The line break is inside a quoted field: it is content. Keep it as written.
                field.Append(line, end, line.Length - end).Append('\n');
                status = lines.ReadLine(maxRowChars - used - 1, out line);
                if (status == LineStatus.EndOfFile)
                    throw new DataFormatException(file, quoteLine, $"unterminated quoted field: the quote at column {quoteColumn} is never closed.");
                if (status == LineStatus.TooLong) throw RowTooLong(file, start, maxRowChars, quoteLine, quoteColumn);
                used += line.Length + 1;
            }

            fields.Add(field.ToString());
            yield return (fields.ToArray(), start);
        }
    }

    /// <summary>TSV records: one per non-blank line, split at tabs, no quoting; a trailing CR is dropped.</summary>
    private static IEnumerable<(string[] Fields, long Line)> TsvRecords(Utf8LineReader lines, string file, int maxRowChars)
    {
        while (true)
        {
            var status = lines.ReadLine(maxRowChars, out string line);
            if (status == LineStatus.EndOfFile) yield break;
            if (status == LineStatus.TooLong) throw RowTooLong(file, lines.LineNumber, maxRowChars, 0, 0);
            if (line.EndsWith('\r')) line = line[..^1];
            if (line.Length == 0) continue;
            yield return (line.Split('\t'), lines.LineNumber);
        }
    }

    private static DataFormatException RowTooLong(string file, long line, int maxRowChars, long quoteLine, int quoteColumn) =>
        new(file, line, quoteLine == 0
            ? $"row longer than {maxRowChars} characters (MaxRowChars)."
            : $"row longer than {maxRowChars} characters (MaxRowChars); is the quote opened at line {quoteLine}, column {quoteColumn} missing its closing quote?");

    /// <summary>The index of the wanted column (or key), or a one-line error listing what there is.</summary>
    private static int FindColumn(string file, long line, string[] names, string? wanted,
        string shortName, string longName, string flag, string noun)
    {
        var matches = new List<int>();
        for (int i = 0; i < names.Length; i++)
        {
            bool match = wanted is not null
                ? string.Equals(names[i], wanted.Trim(), StringComparison.OrdinalIgnoreCase)
                : string.Equals(names[i], shortName, StringComparison.OrdinalIgnoreCase) || string.Equals(names[i], longName, StringComparison.OrdinalIgnoreCase);
            if (match) matches.Add(i);
        }
        if (matches.Count == 1) return matches[0];

        string sought = wanted is not null ? $"'{wanted.Trim()}'" : $"'{shortName}' or '{longName}'";
        string listing = names.Length == 0 ? "none" : string.Join(", ", names.Take(12).Select(n => n.Length == 0 ? "''" : OneLine(n))) + (names.Length > 12 ? ", …" : "");
        if (matches.Count == 0)
        {
            throw new DataFormatException(file, line, wanted is not null
                ? $"no {noun} named {sought} ({noun}s: {listing})."
                : $"no {noun} named {sought} ({noun}s: {listing}); name one with {flag}.");
        }
        throw new DataFormatException(file, line, $"{matches.Count} {noun}s match {sought} ({noun}s: {listing}); name the one to use with {flag}.");
    }

    // ---- JSON Lines -----------------------------------------------------------------------------

    private static IEnumerable<RawRow> JsonRows(Utf8LineReader lines, string file, PairReaderOptions options)
    {
        string? qKey = null, aKey = null;
        while (true)
        {
            var status = lines.ReadLine(options.MaxRowChars, out string line);
            if (status == LineStatus.EndOfFile) yield break;
            if (status == LineStatus.TooLong)
                throw new DataFormatException(file, lines.LineNumber, $"line longer than {options.MaxRowChars} characters (MaxRowChars).");
            if (string.IsNullOrWhiteSpace(line)) continue;

            long n = lines.LineNumber;
            RawRow row;
            using (var doc = ParseJson(file, n, line))
            {
                try
                {
                    var obj = doc.RootElement;
                    if (obj.ValueKind != JsonValueKind.Object)
                        throw new DataFormatException(file, n, $"expected a JSON object, found {KindName(obj.ValueKind)}.");
                    if (qKey is null || aKey is null)
                    {
                        var keys = obj.EnumerateObject().Select(p => p.Name).ToArray();
                        qKey = keys[FindColumn(file, n, keys, options.QuestionColumn, "Q", "question", "--question-column", "key")];
                        aKey = keys[FindColumn(file, n, keys, options.AnswerColumn, "A", "answer", "--answer-column", "key")];
                        if (string.Equals(qKey, aKey, StringComparison.OrdinalIgnoreCase))
                            throw new DataFormatException(file, n, $"the question and the answer are both key '{qKey}'; name two different keys.");
                    }
                    row = new RawRow(Member(file, n, obj, qKey), Member(file, n, obj, aKey), n);
                }
                catch (InvalidOperationException ex)
                {
                    // System.Text.Json checks \u escapes only when a string is read: a lone surrogate lands here.
                    throw new DataFormatException(file, n, $"invalid JSON string: {OneLine(ex.Message).TrimEnd('.', ' ')}.");
                }
            }
            yield return row;
        }
    }

    private static JsonDocument ParseJson(string file, long line, string text)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            string detail = ex.Message;
            foreach (string cut in new[] { " Path:", " LineNumber:" })
            {
                int at = detail.IndexOf(cut, StringComparison.Ordinal);
                if (at >= 0) detail = detail[..at];
            }
            throw new DataFormatException(file, line,
                $"invalid JSON at byte {(ex.BytePositionInLine ?? 0) + 1}: {OneLine(detail).TrimEnd('.', ' ')}.");
        }
    }

    /// <summary>The string value of a member (name ignoring case); "" for null, null when absent.</summary>
    private static string? Member(string file, long line, JsonElement obj, string key)
    {
        foreach (var p in obj.EnumerateObject())
        {
            if (!string.Equals(p.Name, key, StringComparison.OrdinalIgnoreCase)) continue;
            return p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString()!,
                JsonValueKind.Null => "",
                _ => throw new DataFormatException(file, line, $"'{p.Name}' is {KindName(p.Value.ValueKind)}, not a string."),
            };
        }
        return null;
    }

    private static string KindName(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Undefined => "nothing",
    };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
