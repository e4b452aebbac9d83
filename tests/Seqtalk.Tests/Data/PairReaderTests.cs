using System.Text;
using Seqtalk.Data;

namespace Seqtalk.Tests.Data;

public sealed class PairReaderTests : IDisposable
{
    private readonly DataFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static DataFormatException Fails(string path, PairReaderOptions? options = null) =>
        Assert.Throws<DataFormatException>(() => PairReader.ReadAll(path, options, out _));

    // ---- CSV ---------------------------------------------------------------------------------

    [Fact]
    public void Csv_QuotedFieldsHoldCommasDoubledQuotesAndLineBreaks()
    {
        string path = _files.Write("quoted.csv",
            "Q,A\n\"hello, world\",\"She said \"\"hi\"\"\nand left\"\nplain,\"x\"\n\"\",\"\"\"\"\n");
        var pairs = PairReader.ReadAll(path, null, out var report);

        Assert.Equal(
            [new QaPair("hello, world", "She said \"hi\"\nand left", 2), new QaPair("plain", "x", 4)],
            pairs);
        Assert.Equal(3, report.RowsRead);
        Assert.Equal(1, report.Skipped);
        Assert.Equal(["line 5: empty question"], report.SkippedExamples);
    }

    [Theory]
    [InlineData("\n", false)]
    [InlineData("\r\n", false)]
    [InlineData("\n", true)]
    [InlineData("\r\n", true)]
    public void Csv_LineEndingsAndBom(string eol, bool bom)
    {
        string text = $"Q,A,label{eol}a,b,0{eol}\"multi{eol}line\",last{eol}c,d,1";   // no final line break
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bom) bytes = [0xEF, 0xBB, 0xBF, .. bytes];
        string path = _files.WriteBytes("eol.csv", bytes);

        var pairs = PairReader.ReadAll(path, null, out _);

        Assert.Equal([new QaPair("a", "b", 2), new QaPair($"multi{eol}line", "last", 3), new QaPair("c", "d", 5)], pairs);
    }

    [Fact]
    public void Csv_BomDoesNotStickToTheFirstHeaderName()
    {
        string path = _files.WriteBytes("bom.csv", [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("Q,A\r\nx,y\r\n")]);
        var pairs = PairReader.ReadAll(path, null, out _);
        Assert.Equal([new QaPair("x", "y", 2)], pairs);
    }

    [Fact]
    public void Csv_KoreanAndTokenLikeTextKeptVerbatim()
    {
        string path = _files.Write("ko.csv", "Q,A\n<start> 안녕하세요 <end>,  <s>반가워요 😀</s>  \n");
        var pair = Assert.Single(PairReader.ReadAll(path, null, out _));
        Assert.Equal("<start> 안녕하세요 <end>", pair.Question);
        Assert.Equal("  <s>반가워요 😀</s>  ", pair.Answer);
    }

    [Fact]
    public void Csv_QuoteInsideAnUnquotedFieldIsText()
    {
        string path = _files.Write("q.csv", "Q,A\nhe said \"no\",ok\n");
        Assert.Equal("he said \"no\"", Assert.Single(PairReader.ReadAll(path, null, out _)).Question);
    }

    [Fact]
    public void Csv_BlankLinesAreNotRows()
    {
        string path = _files.Write("blank.csv", "\nQ,A\n\n\r\na,b\n\n");
        var pairs = PairReader.ReadAll(path, null, out var report);
        Assert.Equal([new QaPair("a", "b", 5)], pairs);
        Assert.Equal(1, report.RowsRead);
    }

    // ---- Column detection ----------------------------------------------------------------------

    [Theory]
    [InlineData("Q,A")]
    [InlineData("q,a")]
    [InlineData("question,answer")]
    [InlineData("QUESTION,Answer")]
    [InlineData(" Q , A ")]
    public void Columns_FoundByHeaderIgnoringCase(string header)
    {
        string path = _files.Write("h.csv", $"{header}\nwho,me\n");
        Assert.Equal([new QaPair("who", "me", 2)], PairReader.ReadAll(path, null, out _));
    }

    [Fact]
    public void Columns_AnyOrderAndExtraColumnsIgnored()
    {
        string path = _files.Write("order.csv", "label,A,id,Q\n0,answer one,7,question one\n");
        Assert.Equal([new QaPair("question one", "answer one", 2)], PairReader.ReadAll(path, null, out _));
    }

    [Fact]
    public void Columns_NamedExplicitly()
    {
        string path = _files.Write("named.csv", "Q,A,prompt,Reply\nq,a,p,r\n");
        var options = new PairReaderOptions { QuestionColumn = "PROMPT", AnswerColumn = "reply" };
        Assert.Equal([new QaPair("p", "r", 2)], PairReader.ReadAll(path, options, out _));
    }

    [Fact]
    public void Columns_MissingQuestion()
    {
        string path = _files.Write("data.csv", "foo,bar\n1,2\n");
        Assert.Equal($"{path}: no column named 'Q' or 'question' (columns: foo, bar); name one with --question-column.", Fails(path).Message);
    }

    [Fact]
    public void Columns_MissingAnswer()
    {
        string path = _files.Write("data.csv", "Q,reply\n1,2\n");
        var ex = Fails(path);
        Assert.Equal($"{path}: no column named 'A' or 'answer' (columns: Q, reply); name one with --answer-column.", ex.Message);
        Assert.Equal(path, ex.File);
        Assert.Equal(0, ex.Line);
    }

    [Fact]
    public void Columns_ExplicitNameMissing()
    {
        string path = _files.Write("data.csv", "Q,A\n1,2\n");
        Assert.Equal($"{path}: no column named 'Frage' (columns: Q, A).", Fails(path, new PairReaderOptions { QuestionColumn = "Frage" }).Message);
    }

    [Fact]
    public void Columns_Ambiguous()
    {
        string path = _files.Write("data.csv", "Q,question,A\n1,2,3\n");
        Assert.Equal($"{path}: 2 columns match 'Q' or 'question' (columns: Q, question, A); name the one to use with --question-column.", Fails(path).Message);
    }

    [Fact]
    public void Columns_SameForQuestionAndAnswer()
    {
        string path = _files.Write("data.csv", "Q,A\n1,2\n");
        var options = new PairReaderOptions { QuestionColumn = "Q", AnswerColumn = "q" };
        Assert.Equal($"{path}: the question and the answer are both column 'Q'; name two different columns.", Fails(path, options).Message);
    }

    // ---- Skipped rows --------------------------------------------------------------------------

    [Fact]
    public void SkippedRows_CountedWithLineNumbers()
    {
        string path = _files.Write("skip.csv", "Q,A\nok,fine\n,no question\nno answer,   \nlonely\n\"\n\",\t\nok2,fine2\n");
        var pairs = PairReader.ReadAll(path, new PairReaderOptions { MaxReportedSkips = 3 }, out var report);

        Assert.Equal([new QaPair("ok", "fine", 2), new QaPair("ok2", "fine2", 8)], pairs);
        Assert.Equal(6, report.RowsRead);
        Assert.Equal(4, report.Skipped);
        Assert.Equal(["line 3: empty question", "line 4: empty answer", "line 5: no answer field"], report.SkippedExamples);
    }

    [Fact]
    public void SkippedRows_ReportFilledWhileStreaming()
    {
        string path = _files.Write("skip.csv", "Q,A\n,x\na,b\n");
        var report = new PairReadReport();
        var pairs = PairReader.Read(path, null, report).ToList();
        Assert.Single(pairs);
        Assert.Equal(2, report.RowsRead);
        Assert.Equal(["line 2: empty question"], report.SkippedExamples);
    }

    // ---- Whole-file errors ---------------------------------------------------------------------

    [Fact]
    public void Error_NoUsableRows()
    {
        string path = _files.Write("data.csv", "Q,A\n,x\ny, \n");
        Assert.Equal($"{path}: no usable pairs: all 2 rows have an empty question or answer (first: line 2: empty question).", Fails(path).Message);
    }

    [Fact]
    public void Error_HeaderOnly()
    {
        string path = _files.Write("data.csv", "Q,A\r\n");
        Assert.Equal($"{path}: no pairs: the file has a header line but no rows after it.", Fails(path).Message);
    }

    [Fact]
    public void Error_EmptyFile()
    {
        string path = _files.Write("data.csv", "");
        Assert.Equal($"{path}: the file is empty; expected a header line such as 'Q,A' and then one pair per line.", Fails(path).Message);
        string jsonl = _files.Write("data.jsonl", "");
        Assert.Equal($"{jsonl}: the file is empty.", Fails(jsonl).Message);
    }

    [Fact]
    public void Error_MissingFileIsReportedAtOnce()
    {
        string path = Path.Combine(_files.Folder, "nope.csv");
        var ex = Assert.Throws<DataFormatException>(() => PairReader.Read(path));   // not enumerated
        Assert.Equal($"{path}: file not found.", ex.Message);
    }

    [Fact]
    public void Error_DirectoryGiven()
    {
        var ex = Assert.Throws<DataFormatException>(() => PairReader.Read(_files.Folder));
        Assert.Equal($"{_files.Folder}: is a directory; give the path of a pairs file (.csv, .tsv or .jsonl).", ex.Message);
    }

    [Fact]
    public void Error_UnterminatedQuoteNamesTheLineWhereItOpened()
    {
        string path = _files.Write("data.csv", "Q,A\na,b\nc,\"never\nclosed\nat all\n");
        var ex = Fails(path);
        Assert.Equal($"{path}, line 3: unterminated quoted field: the quote at column 3 is never closed.", ex.Message);
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void Error_TextAfterClosingQuote()
    {
        string path = _files.Write("data.csv", "Q,A\na,b\n\"x\"y,b\n");
        Assert.Equal($"{path}, line 3: unexpected 'y' after the closing quote of field 1 (column 4); write a quote inside a quoted field twice (\"\").", Fails(path).Message);
    }

    [Fact]
    public void Error_InvalidUtf8OnLine3Of5()
    {
        var bytes = new List<byte>();
        bytes.AddRange(Encoding.UTF8.GetBytes("Q,A\n안녕,반가워\n"));
        bytes.AddRange(Encoding.UTF8.GetBytes("좋"));
        bytes.Add((byte)'a');
        bytes.Add(0xFF);
        bytes.AddRange(Encoding.UTF8.GetBytes(",b\nc,d\ne,f\n"));
        string path = _files.WriteBytes("data.csv", [.. bytes]);

        var ex = Fails(path);
        Assert.Equal($"{path}, line 3: invalid UTF-8 (byte 0xFF at column 3); save the file as UTF-8.", ex.Message);
        Assert.Equal(3, ex.Line);
        // Streaming: the good pair before the bad line is still delivered.
        Assert.Equal("안녕", PairReader.Read(path).First().Question);
    }

    [Fact]
    public void Error_Utf16File()
    {
        string path = _files.WriteBytes("data.csv", [0xFF, 0xFE, .. Encoding.Unicode.GetBytes("Q,A\na,b\n")]);
        Assert.Equal($"{path}: the file is UTF-16 (byte-order mark 0xFF 0xFE), not UTF-8; save it as UTF-8.", Fails(path).Message);
    }

    [Fact]
    public void Error_FiveMegabyteLineRejectedWithoutBufferingIt()
    {
        string path = Path.Combine(_files.Folder, "big.csv");
        using (var w = new StreamWriter(path, false, new UTF8Encoding(false)))
        {
            w.Write("Q,A\na,b\n");
            w.Write(new string('x', 5_000_000));
            w.Write(",y\nc,d\n");
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Fails(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal($"{path}, line 3: row longer than 1000000 characters (MaxRowChars).", ex.Message);
        // Holding the line (5 MB of bytes, 10 MB as a string) would allocate far more than this.
        Assert.True(allocated < 6_000_000, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Error_RunawayQuoteHitsMaxRowCharsWithAHint()
    {
        var text = new StringBuilder("Q,A\na,\"open\n");
        for (int i = 0; i < 50; i++) text.Append("more text\n");
        string path = _files.Write("data.csv", text.ToString());
        var ex = Fails(path, new PairReaderOptions { MaxRowChars = 100 });
        Assert.Equal($"{path}, line 2: row longer than 100 characters (MaxRowChars); is the quote opened at line 2, column 3 missing its closing quote?", ex.Message);
    }

    [Fact]
    public void MaxRowChars_CountsTheWholeRow()
    {
        string path = _files.Write("data.csv", "Q,A\n\"12345\n67890\",x\n");   // the row is 15 characters, its line break included
        Assert.Single(PairReader.ReadAll(path, new PairReaderOptions { MaxRowChars = 15 }, out _));
        Assert.Equal(2, Fails(path, new PairReaderOptions { MaxRowChars = 14 }).Line);
    }

    [Fact]
    public void Options_Validated()
    {
        string path = _files.Write("data.csv", "Q,A\na,b\n");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => PairReader.Read(path, new PairReaderOptions { MaxRowChars = 0 }));
        Assert.Equal("MaxRowChars", ex.ParamName);
    }

    // ---- TSV -----------------------------------------------------------------------------------

    [Fact]
    public void Tsv_SplitsAtTabsWithoutQuoting()
    {
        string path = _files.Write("data.tsv", "id\tquestion\tanswer\r\n1\t\"quoted\", kept\t안녕, 친구\r\n\r\n2\tx\ty\r\n");
        var pairs = PairReader.ReadAll(path, null, out _);
        Assert.Equal([new QaPair("\"quoted\", kept", "안녕, 친구", 2), new QaPair("x", "y", 4)], pairs);
    }

    [Fact]
    public void Format_FromExtensionOrOption()
    {
        Assert.Equal(PairFileFormat.Tsv, PairReader.FormatOf("a/b.TSV"));
        Assert.Equal(PairFileFormat.Jsonl, PairReader.FormatOf("b.ndjson"));
        Assert.Equal(PairFileFormat.Csv, PairReader.FormatOf("b.txt"));
        string path = _files.Write("data.txt", "Q\tA\na,b\tc\n");
        var pair = Assert.Single(PairReader.ReadAll(path, new PairReaderOptions { Format = PairFileFormat.Tsv }, out _));
        Assert.Equal(new QaPair("a,b", "c", 2), pair);
    }

    // ---- JSONL ---------------------------------------------------------------------------------

    [Fact]
    public void Jsonl_KeysFoundIgnoringCaseExtraKeysIgnored()
    {
        string path = _files.Write("data.jsonl",
            "{\"Question\":\"안녕\",\"Answer\":\"반가워\\n요\",\"label\":0}\n\n{\"answer\":\"b\",\"question\":\"<s>a\"}\r\n{\"question\":\"c\",\"answer\":null}\n{\"question\":\"d\"}\n");
        var pairs = PairReader.ReadAll(path, null, out var report);
        Assert.Equal([new QaPair("안녕", "반가워\n요", 1), new QaPair("<s>a", "b", 3)], pairs);
        Assert.Equal(["line 4: empty answer", "line 5: no answer field"], report.SkippedExamples);
    }

    [Fact]
    public void Jsonl_ExplicitKeys()
    {
        string path = _files.Write("data.jsonl", "{\"prompt\":\"p\",\"completion\":\"c\",\"q\":\"x\"}\n");
        var options = new PairReaderOptions { QuestionColumn = "prompt", AnswerColumn = "completion" };
        Assert.Equal([new QaPair("p", "c", 1)], PairReader.ReadAll(path, options, out _));
    }

    [Fact]
    public void Jsonl_Errors()
    {
        string missing = _files.Write("m.jsonl", "\n{\"foo\":\"1\",\"A\":\"2\"}\n");
        Assert.Equal($"{missing}, line 2: no key named 'Q' or 'question' (keys: foo, A); name one with --question-column.", Fails(missing).Message);

        string invalid = _files.Write("i.jsonl", "{\"q\":\"1\",\"a\":\"2\"}\n{\"q\":\"1\",\n");
        var ex = Fails(invalid);
        Assert.StartsWith($"{invalid}, line 2: invalid JSON at byte ", ex.Message);
        Assert.Equal(2, ex.Line);

        string array = _files.Write("arr.jsonl", "[\"q\",\"a\"]\n");
        Assert.Equal($"{array}, line 1: expected a JSON object, found an array.", Fails(array).Message);

        string number = _files.Write("n.jsonl", "{\"q\":\"1\",\"a\":\"2\"}\n{\"q\":\"1\",\"a\":2}\n");
        Assert.Equal($"{number}, line 2: 'a' is a number, not a string.", Fails(number).Message);
    }

    // ---- The real data -------------------------------------------------------------------------

    [Fact]
    public void ChatbotData_Reads11823Pairs()
    {
        var pairs = PairReader.ReadAll(DataFiles.ChatbotDataPath, null, out var report);

        Assert.Equal(11_823, pairs.Count);
        Assert.Equal(11_823, report.RowsRead);
        Assert.Equal(0, report.Skipped);
        Assert.Equal(new QaPair("12시 땡!", "하루가 또 가네요.", 2), pairs[0]);
        Assert.Equal(new QaPair("가족 있어?", "저를 만들어 준 사람을 부모님, 저랑 이야기해 주는 사람을 친구로 생각하고 있어요", 28), pairs[26]);
        Assert.Equal(11_824, pairs[^1].Line);
        Assert.All(pairs, p => Assert.False(p.Answer.EndsWith('\r') || p.Question.Contains('\n')));
    }
}
