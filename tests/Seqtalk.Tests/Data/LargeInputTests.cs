using System.Text;
using Seqtalk.Data;

namespace Seqtalk.Tests.Data;

/// <summary>A 10 MB line is rejected with its line number, in every format, without being held in memory.</summary>
public sealed class LargeInputTests
{
    private const int TenMegabytes = 10 * 1024 * 1024;

    /// <summary>A stream that makes its bytes as they are read: a head, <paramref name="fillCount"/> copies of
    /// one byte, then a tail. The test itself never holds the 10 MB.</summary>
    private sealed class GeneratedStream(byte[] head, byte fill, long fillCount, byte[] tail) : Stream
    {
        private long _position;
        private long Total => head.Length + fillCount + tail.Length;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = 0;
            while (n < buffer.Length && _position < Total)
            {
                long p = _position;
                buffer[n++] = p < head.Length ? head[p] : p < head.Length + fillCount ? fill : tail[p - head.Length - fillCount];
                _position++;
            }
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => Total;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Theory]
    [InlineData(PairFileFormat.Csv, "Q,A\na,b\n\nc,d\n", ",x\ne,f\n", 5, 2, "row")]
    [InlineData(PairFileFormat.Csv, "Q,A\na,b\nc,\"", "\",x\ne,f\n", 3, 1, "row")]        // inside a quoted field
    [InlineData(PairFileFormat.Tsv, "Q\tA\na\tb\nc\td\n", "\tx\ne\tf\n", 4, 2, "row")]
    [InlineData(PairFileFormat.Jsonl, "{\"Q\":\"a\",\"A\":\"b\"}\n\n{\"Q\":\"", "\",\"A\":\"x\"}\n", 3, 1, "line")]
    public void TenMegabyteLine_RejectedWithItsLineNumber_WithoutBufferingIt(PairFileFormat format, string head, string tail, int line, int rowsBefore, string noun)
    {
        var stream = new GeneratedStream(Encoding.UTF8.GetBytes(head), (byte)'x', TenMegabytes, Encoding.UTF8.GetBytes(tail));
        int rows = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<DataFormatException>(() =>
        {
            foreach (var _ in PairReader.Read(stream, "big", format)) rows++;
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(line, ex.Line);
        Assert.StartsWith($"big, line {line}: {noun} longer than 1000000 characters (MaxRowChars)", ex.Message);
        Assert.Equal(rowsBefore, rows);   // the rows before it were read
        // The reader stops at MaxRowChars (1 MB of these bytes): holding the line would take 10 MB of bytes
        // and 20 MB as a string.
        Assert.True(allocated < 5_000_000, $"allocated {allocated:N0} bytes");
        Assert.True(stream.Position < 2 * 1024 * 1024, $"read {stream.Position:N0} bytes: the reader went on past the limit");
    }

    [Fact]
    public void TenMegabyteLine_StopsStreamingTraining_WithItsLineNumber()
    {
        using var files = new DataFiles();
        string path = Path.Combine(files.Folder, "big.tsv");
        using (var w = new StreamWriter(path, false, new UTF8Encoding(false)))
        {
            w.Write("Q\tA\n안녕\t반가워\n");
            for (int i = 0; i < 5; i++) w.Write("뭐 해\t그냥 있어\n");
            w.Write(new string('가', TenMegabytes / 3));   // 10 MB of UTF-8 on line 8
            w.Write("\t답\n마지막\t줄\n");
        }

        var ex = Assert.Throws<DataFormatException>(() => ChatModel.Train(new PairFile(path), new() { Epochs = 1, Threads = 1 }));
        Assert.Equal($"{path}, line 8: row longer than 1000000 characters (MaxRowChars).", ex.Message);
        Assert.Empty(Directory.GetFiles(files.Folder, "*.tmp"));
    }
}
