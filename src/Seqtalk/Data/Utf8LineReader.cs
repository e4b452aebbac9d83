using System.Text;

namespace Seqtalk.Data;

/// <summary>What <see cref="Utf8LineReader.ReadLine"/> found.</summary>
internal enum LineStatus { Line, EndOfFile, TooLong }

/// <summary>
/// Reads a UTF-8 stream one physical line at a time, strictly, keeping the line number exact.
/// </summary>
/// <remarks>
/// Lines are split on the byte 0x0A before decoding. That byte never occurs inside a multi-byte UTF-8
/// sequence, so each line can be decoded on its own with a throwing decoder: an invalid byte is then
/// reported at the line that holds it and its column, with no decoder state carried across chunk or
/// line boundaries (a sequence cut by a line break is invalid in its own line). Lines are returned
/// without the '\n' but with a trailing '\r' if there is one: callers decide what a CR means (inside a
/// quoted CSV field it is content). A line is never buffered past the caller's character limit.
/// A UTF-8 byte-order mark at the start of the stream is dropped.
/// </remarks>
internal sealed class Utf8LineReader : IDisposable
{
    private static readonly UTF8Encoding s_strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _stream;
    private readonly string _file;
    private readonly byte[] _chunk;
    private int _chunkPos;
    private int _chunkLen;
    private bool _endOfStream;
    private byte[] _line = new byte[256];
    private int _lineLen;

    public Utf8LineReader(Stream stream, string file, int chunkSize = 64 * 1024)
    {
        _stream = stream;
        _file = file;
        _chunk = new byte[chunkSize];
    }

    /// <summary>The 1-based number of the line last returned (or being read when TooLong is returned); 0 before the first.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Reads the next line. Returns <see cref="LineStatus.TooLong"/> as soon as the line exceeds
    /// <paramref name="maxChars"/> UTF-16 characters, without reading the rest of it.</summary>
    /// <exception cref="DataFormatException">The line is not valid UTF-8.</exception>
    public LineStatus ReadLine(long maxChars, out string line)
    {
        line = "";
        _lineLen = 0;
        long chars = 0;
        bool any = false;
        while (true)
        {
            if (_chunkPos == _chunkLen)
            {
                if (_endOfStream) break;
                _chunkLen = _stream.Read(_chunk, 0, _chunk.Length);
                _chunkPos = 0;
                if (_chunkLen == 0)
                {
                    _endOfStream = true;
                    break;
                }
            }

            any = true;
            var rest = _chunk.AsSpan(_chunkPos, _chunkLen - _chunkPos);
            int newline = rest.IndexOf((byte)'\n');
            var part = newline >= 0 ? rest[..newline] : rest;
            chars += Utf16Length(part);
            if (chars > maxChars)
            {
                LineNumber++;
                return LineStatus.TooLong;
            }

            Append(part);
            _chunkPos += part.Length;
            if (newline >= 0)
            {
                _chunkPos++;
                break;
            }
        }

        if (!any) return LineStatus.EndOfFile;
        LineNumber++;
        line = Decode();
        return LineStatus.Line;
    }

    /// <summary>UTF-16 length of valid UTF-8 bytes: one per lead byte, two for a 4-byte sequence
    /// (a surrogate pair). For invalid input it is only an estimate; decoding rejects such input.</summary>
    private static int Utf16Length(ReadOnlySpan<byte> bytes)
    {
        int n = 0;
        foreach (byte b in bytes)
        {
            if ((b & 0xC0) != 0x80) n++;
            if (b >= 0xF0) n++;
        }
        return n;
    }

    private void Append(ReadOnlySpan<byte> part)
    {
        if (_lineLen + part.Length > _line.Length)
            Array.Resize(ref _line, Math.Max(_line.Length * 2, _lineLen + part.Length));
        part.CopyTo(_line.AsSpan(_lineLen));
        _lineLen += part.Length;
    }

    private string Decode()
    {
        int start = 0;
        if (LineNumber == 1)
        {
            if (_lineLen >= 3 && _line[0] == 0xEF && _line[1] == 0xBB && _line[2] == 0xBF) start = 3;
            else if (_lineLen >= 2 && ((_line[0] == 0xFF && _line[1] == 0xFE) || (_line[0] == 0xFE && _line[1] == 0xFF)))
                throw new DataFormatException(_file, 0, $"the file is UTF-16 (byte-order mark 0x{_line[0]:X2} 0x{_line[1]:X2}), not UTF-8; save it as UTF-8.");
        }

        var bytes = _line.AsSpan(start, _lineLen - start);
        try
        {
            return s_strict.GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            // Index is the position of the first bad byte in the bytes passed in; everything before it
            // decoded, so its character count gives the column.
            int index = Math.Clamp(ex.Index, 0, bytes.Length - 1);
            int column = Encoding.UTF8.GetCharCount(bytes[..index]) + 1;
            throw new DataFormatException(_file, LineNumber,
                $"invalid UTF-8 (byte 0x{bytes[index]:X2} at column {column}); save the file as UTF-8.");
        }
    }

    public void Dispose() => _stream.Dispose();
}
