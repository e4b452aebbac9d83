using System.Text;
using Seqtalk.Data;

namespace Seqtalk.Tests.Data;

public class Utf8LineReaderTests
{
    private static byte[] FiveLinesBadByteOnLine3(byte[] bad)
    {
        var bytes = new List<byte>();
        bytes.AddRange(Encoding.UTF8.GetBytes("하나\n둘 😀\n셋"));
        bytes.AddRange(bad);
        bytes.AddRange(Encoding.UTF8.GetBytes("끝\n넷\n다섯\n"));
        return [.. bytes];
    }

    // Every chunk size, so the bad byte and the multi-byte characters fall on every chunk boundary:
    // the line number and column must not depend on how the decoder was fed.
    [Theory]
    [InlineData(new byte[] { 0xFF }, "0xFF", 2)]
    [InlineData(new byte[] { 0xC0, 0x80 }, "0xC0", 2)]         // overlong encoding
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, "0xED", 2)]   // encoded surrogate
    [InlineData(new byte[] { 0xEC, 0x97 }, "0xEC", 2)]         // truncated sequence before more text
    public void InvalidByte_ReportedAtItsLineAndColumn_ForAnyChunkSize(byte[] bad, string shown, int column)
    {
        var bytes = FiveLinesBadByteOnLine3(bad);
        for (int chunk = 1; chunk <= 17; chunk++)
        {
            using var reader = new Utf8LineReader(new MemoryStream(bytes), "f.csv", chunk);
            Assert.Equal(LineStatus.Line, reader.ReadLine(100, out string one));
            Assert.Equal("하나", one);
            Assert.Equal(LineStatus.Line, reader.ReadLine(100, out string two));
            Assert.Equal("둘 😀", two);
            var ex = Assert.Throws<DataFormatException>(() => reader.ReadLine(100, out _));
            Assert.Equal($"f.csv, line 3: invalid UTF-8 (byte {shown} at column {column}); save the file as UTF-8.", ex.Message);
        }
    }

    [Fact]
    public void SequenceCutByALineBreak_IsInvalidOnItsOwnLine()
    {
        byte[] bytes = [(byte)'a', (byte)'\n', 0xEC, 0x97, (byte)'\n', 0x95, (byte)'\n'];
        using var reader = new Utf8LineReader(new MemoryStream(bytes), "f", 3);
        Assert.Equal(LineStatus.Line, reader.ReadLine(10, out _));
        var ex = Assert.Throws<DataFormatException>(() => reader.ReadLine(10, out _));
        Assert.Equal(2, ex.Line);
        Assert.Contains("byte 0xEC at column 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lines_KeepCrDropLfAndCountExactly()
    {
        byte[] bytes = Encoding.UTF8.GetBytes("a\r\n\nb");
        using var reader = new Utf8LineReader(new MemoryStream(bytes), "f", 2);
        Assert.Equal(LineStatus.Line, reader.ReadLine(10, out string l1));
        Assert.Equal(LineStatus.Line, reader.ReadLine(10, out string l2));
        Assert.Equal(LineStatus.Line, reader.ReadLine(10, out string l3));
        Assert.Equal(LineStatus.EndOfFile, reader.ReadLine(10, out _));
        Assert.Equal(["a\r", "", "b"], new[] { l1, l2, l3 });
        Assert.Equal(3, reader.LineNumber);
    }

    [Fact]
    public void MaxChars_CountsUtf16Units()
    {
        // "가😀" is 1 + 2 UTF-16 units from 3 + 4 bytes.
        byte[] bytes = Encoding.UTF8.GetBytes("가😀\n가😀\n");
        using var reader = new Utf8LineReader(new MemoryStream(bytes), "f", 4);
        Assert.Equal(LineStatus.Line, reader.ReadLine(3, out string line));
        Assert.Equal("가😀", line);
        Assert.Equal(LineStatus.TooLong, reader.ReadLine(2, out _));
        Assert.Equal(2, reader.LineNumber);
    }
}
