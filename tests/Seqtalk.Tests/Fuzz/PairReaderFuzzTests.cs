using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using CsCheck;
using Seqtalk.Data;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Fuzz;

/// <summary>
/// The pair readers (CSV, TSV, JSONL) on random bytes, on mutated valid files and on valid files that
/// must round-trip exactly. Whatever the bytes, reading yields pairs or throws a one-line
/// <see cref="SeqtalkException"/>; nothing else escapes.
/// </summary>
public class PairReaderFuzzTests(ITestOutputHelper output)
{
    // 3 formats × (3,000 random + 5,000 mutated + 2,000 round trips) = 30,000 inputs: 10,000 per reader.
    private const int RandomInputs = 3_000;
    private const int MutatedInputs = 5_000;
    private const int RoundTrips = 2_000;

    /// <summary>A generated file: its bytes, and the pairs it must read back as (with their start lines).</summary>
    internal sealed record PairsFile(byte[] Bytes, QaPair[] Expected);

    [Theory]
    [InlineData(PairFileFormat.Csv)]
    [InlineData(PairFileFormat.Tsv)]
    [InlineData(PairFileFormat.Jsonl)]
    public void RandomBytes_GiveSeqtalkExceptionsOnly(PairFileFormat format)
    {
        FuzzRunner.Run(output, $"pairs-{format}-random", Mutations.RandomBytes,
            bytes => CheckAnyInput(bytes, format), RandomInputs, FuzzRunner.ShowBytes);
    }

    [Theory]
    [InlineData(PairFileFormat.Csv)]
    [InlineData(PairFileFormat.Tsv)]
    [InlineData(PairFileFormat.Jsonl)]
    public void MutatedFiles_GiveSeqtalkExceptionsOnly(PairFileFormat format)
    {
        var gen = Mutations.Of(ValidFile(format).Select(f => f.Bytes));
        FuzzRunner.Run(output, $"pairs-{format}-mutated", gen, bytes => CheckAnyInput(bytes, format), MutatedInputs, FuzzRunner.ShowBytes);
    }

    [Theory]
    [InlineData(PairFileFormat.Csv)]
    [InlineData(PairFileFormat.Tsv)]
    [InlineData(PairFileFormat.Jsonl)]
    public void ValidFiles_RoundTripExactly(PairFileFormat format)
    {
        FuzzRunner.Run(output, $"pairs-{format}-roundtrip", ValidFile(format), file =>
        {
            var report = new PairReadReport();
            var pairs = PairReader.Read(new MemoryStream(file.Bytes), "fuzz", format, null, report).ToList();
            Assert.Equal(file.Expected, pairs);
            Assert.Equal(file.Expected.Length, report.RowsRead);
            Assert.Equal(0, report.Skipped);
        }, RoundTrips, f => FuzzRunner.ShowBytes(f.Bytes));
    }

    /// <summary>The property for any bytes: pairs with non-blank text and plausible, increasing lines; or a one-line SeqtalkException.</summary>
    private static void CheckAnyInput(byte[] bytes, PairFileFormat format)
    {
        var report = new PairReadReport();
        var pairs = new List<QaPair>();
        try
        {
            foreach (var pair in PairReader.Read(new MemoryStream(bytes), "fuzz", format, null, report)) pairs.Add(pair);
        }
        catch (SeqtalkException ex)
        {
            Assert.False(string.IsNullOrWhiteSpace(ex.Message));
            Assert.True(ex.Message.IndexOfAny(['\n', '\r']) < 0, $"The message is not one line: {FuzzRunner.ShowText(ex.Message)}");
            Assert.StartsWith("fuzz", ex.Message, StringComparison.Ordinal);
            if (ex is DataFormatException data) Assert.InRange(data.Line, 0, LineCount(bytes));
            return;
        }

        Assert.NotEmpty(pairs);
        long lines = LineCount(bytes);
        long previous = 0;
        foreach (var pair in pairs)
        {
            Assert.False(string.IsNullOrWhiteSpace(pair.Question));
            Assert.False(string.IsNullOrWhiteSpace(pair.Answer));
            Assert.InRange(pair.Line, previous + 1, lines);
            previous = pair.Line;
        }
        Assert.Equal(pairs.Count, report.RowsRead - report.Skipped);
    }

    /// <summary>Lines as a text editor counts them: one per '\n', plus a last one without it.</summary>
    private static long LineCount(byte[] bytes) =>
        bytes.AsSpan().Count((byte)'\n') + (bytes.Length > 0 && bytes[^1] != (byte)'\n' ? 1 : 0);

    // ---- valid files ------------------------------------------------------------------------------

    /// <summary>Field text: Korean, jamo, ASCII, emoji, and (where the format allows) quotes, commas, line breaks, tabs, NUL.</summary>
    private static Gen<string> Field(PairFileFormat format)
    {
        var pieces = new List<(int, Gen<string>)>
        {
            (6, Gen.Char['가', '힣'].Select(c => c.ToString())),
            (4, Gen.Char['a', 'z'].Select(c => c.ToString())),
            (2, Gen.Char[' ', '~'].Select(c => c.ToString())),
            (2, Gen.OneOf(" ", "  ", "?", ".", "!", "😊", "ᄒ", "ᅡ", "e\u0301", "\u00A0", "<s>", "</s>", "'", "\\", "{", "}")),
        };
        if (format != PairFileFormat.Tsv)
        {
            pieces.Add((2, Gen.OneOf("\"", "\"\"", ",", "\n", "\r\n", "\t", "\0", "\u2028", "\u0085")));
        }
        return Gen.Frequency([.. pieces]).Array[1, 12].Select(parts =>
        {
            string s = string.Concat(parts);
            return string.IsNullOrWhiteSpace(s) ? "x" + s : s;
        });
    }

    /// <summary>A valid file of 1–8 pairs: an optional BOM, LF or CRLF line ends, blank lines, extra columns and
    /// column orders; with the pairs it must read back as and the line each starts on.</summary>
    internal static Gen<PairsFile> ValidFile(PairFileFormat format) =>
        Gen.Select(Gen.Select(Field(format), Field(format)).Array[1, 8], Gen.Bool, Gen.Bool, Gen.Int[0, 3], Gen.Int[0, 4].Array[9],
            (pairs, bom, crlf, layout, blanks) => Build(format, pairs, bom, crlf, layout, blanks));

    private static PairsFile Build(PairFileFormat format, (string Q, string A)[] pairs, bool bom, bool crlf, int layout, int[] blanks)
    {
        string eol = crlf ? "\r\n" : "\n";
        var text = new StringBuilder();
        var expected = new List<QaPair>();
        long line = 1;

        void Append(string s)
        {
            text.Append(s);
            line += s.Count(c => c == '\n');
        }
        void Blank(int i)
        {
            for (int k = 0; k < blanks[i] % 3; k++) Append(format == PairFileFormat.Jsonl && k == 1 ? "  " + eol : eol);
        }

        var json = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        Blank(8);
        if (format != PairFileFormat.Jsonl)
        {
            string sep = format == PairFileFormat.Csv ? "," : "\t";
            Append(layout switch { 0 => $"Q{sep}A", 1 => $"A{sep}Q", 2 => $" question {sep}answer{sep}label", _ => $"id{sep}Answer{sep}Q" } + eol);
        }
        for (int i = 0; i < pairs.Length; i++)
        {
            Blank(i);
            var (q, a) = pairs[i];
            expected.Add(new QaPair(q, a, line));
            string row = format switch
            {
                PairFileFormat.Csv => layout switch
                {
                    0 => $"{Csv(q)},{Csv(a)}",
                    1 => $"{Csv(a)},{Csv(q)}",
                    2 => $"{Csv(q)},{Csv(a)},{i}",
                    _ => $"{i},{Csv(a)},{Csv(q)}",
                },
                PairFileFormat.Tsv => layout switch
                {
                    0 => $"{q}\t{a}",
                    1 => $"{a}\t{q}",
                    2 => $"{q}\t{a}\t{i}",
                    _ => $"{i}\t{a}\t{q}",
                },
                PairFileFormat.Jsonl => layout switch
                {
                    0 => JsonSerializer.Serialize(new Dictionary<string, string> { ["Q"] = q, ["A"] = a }, json),
                    1 => JsonSerializer.Serialize(new Dictionary<string, object> { ["answer"] = a, ["id"] = i, ["question"] = q }, json),
                    2 => JsonSerializer.Serialize(new Dictionary<string, object?> { ["q"] = q, ["label"] = null, ["a"] = a }, json),
                    _ => JsonSerializer.Serialize(new Dictionary<string, string> { ["A"] = a, ["Q"] = q }),
                },
            };
            Append(row + (i < pairs.Length - 1 || blanks[i] % 2 == 0 ? eol : ""));
        }
        byte[] body = Encoding.UTF8.GetBytes(text.ToString());
        return new PairsFile(bom ? [0xEF, 0xBB, 0xBF, .. body] : body, [.. expected]);
    }

    /// <summary>RFC 4180 quoting: always quoted, quotes doubled.</summary>
    private static string Csv(string field) => "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
