using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Seqtalk.Data;

/// <summary>
/// Encoded pairs in a temporary file: the ids on disk, only two lengths and an offset per pair in memory.
/// Training on a <see cref="PairFile"/> writes each pair here once and reads the pairs of one batch at a
/// time, so the memory it takes is bounded by the batch, not by the file. See <c>docs/data.md</c>.
/// </summary>
/// <remarks>
/// File layout: for each pair, its source ids then its target ids, little-endian, as <c>uint16</c> when
/// both vocabularies have at most 65,536 ids and as <c>int32</c> otherwise; no header (the file lives only
/// as long as this object). Memory: 12 bytes per pair (an 8-byte offset and two 2-byte lengths, since
/// lengths are cut to <c>MaxSequenceLength</c> ≤ 10,000) plus a 64 KiB write buffer and a read buffer the
/// size of the longest pair. Reads use positioned reads (<see cref="RandomAccess"/>), not a memory map, so
/// the file's pages stay in the operating system's cache and are not counted in the process's working set.
/// The file is created with a random name in the given directory and, on Linux and macOS, unlinked at
/// once (it lives on while the handle is open, and vanishes even if the process is killed); on Windows it
/// is deleted when the handle closes.
/// </remarks>
internal sealed class TokenStore : IEncodedPairStore
{
    private const int WriteBufferSize = 64 * 1024;

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly int _idBytes;            // 2 or 4
    private long[] _offsets;                  // [pairs] byte offset of the pair's first id
    private ushort[] _sourceLengths;          // [pairs]
    private ushort[] _targetLengths;          // [pairs]
    private readonly byte[] _writeBuffer = new byte[WriteBufferSize];
    private int _buffered;
    private long _fileLength;                 // bytes written to the file (not counting the buffer)
    private byte[] _readBuffer = new byte[1024];

    /// <summary>Creates the temporary file in <paramref name="directory"/>.</summary>
    /// <param name="directory">An existing directory with room for the ids.</param>
    /// <param name="capacity">The number of pairs expected (the arrays grow past it if needed).</param>
    /// <param name="largestId">The largest id that will be stored (vocabulary size − 1).</param>
    /// <exception cref="SeqtalkException">The file cannot be created.</exception>
    public TokenStore(string directory, int capacity, int largestId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        ArgumentOutOfRangeException.ThrowIfNegative(largestId);
        _idBytes = largestId <= ushort.MaxValue ? 2 : 4;
        _offsets = new long[capacity];
        _sourceLengths = new ushort[capacity];
        _targetLengths = new ushort[capacity];
        _path = Path.Combine(directory, $".seqtalk-tokens-{Guid.NewGuid():N}.tmp");
        try
        {
            _file = File.OpenHandle(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
                OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
            if (!OperatingSystem.IsWindows()) File.Delete(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot create a temporary token file in {directory}: {OneLine(e.Message)}");
        }
    }

    /// <summary>Bytes per stored id: 2 (<c>uint16</c>) or 4 (<c>int32</c>).</summary>
    public int IdBytes => _idBytes;

    /// <summary>Bytes of ids in the file, the buffered ones included.</summary>
    public long Length => _fileLength + _buffered;

    public int Count { get; private set; }
    public int MaxSourceLength { get; private set; }
    public int MaxTargetLength { get; private set; }

    public void Add(EncodedPair pair)
    {
        ArgumentNullException.ThrowIfNull(pair.Source);
        ArgumentNullException.ThrowIfNull(pair.Target);
        if (pair.Source.Length > ushort.MaxValue || pair.Target.Length > ushort.MaxValue)
            throw new ArgumentException("A stored sequence can hold at most 65,535 tokens.", nameof(pair));
        if (Count == _offsets.Length)
        {
            int grown = Math.Max(16, Count * 2);
            Array.Resize(ref _offsets, grown);
            Array.Resize(ref _sourceLengths, grown);
            Array.Resize(ref _targetLengths, grown);
        }
        _offsets[Count] = Length;
        _sourceLengths[Count] = (ushort)pair.Source.Length;
        _targetLengths[Count] = (ushort)pair.Target.Length;
        Count++;
        Append(pair.Source);
        Append(pair.Target);
        MaxSourceLength = Math.Max(MaxSourceLength, pair.Source.Length);
        MaxTargetLength = Math.Max(MaxTargetLength, pair.Target.Length);
    }

    public int SourceLength(int index) => _sourceLengths[Check(index)];
    public int TargetLength(int index) => _targetLengths[Check(index)];

    public EncodedPair Read(int index)
    {
        Check(index);
        Flush();
        int sourceLength = _sourceLengths[index], targetLength = _targetLengths[index];
        int bytes = (sourceLength + targetLength) * _idBytes;
        if (bytes > _readBuffer.Length) _readBuffer = new byte[Math.Max(bytes, _readBuffer.Length * 2)];
        var span = _readBuffer.AsSpan(0, bytes);
        long offset = _offsets[index];
        for (int done = 0; done < bytes;)
        {
            int n = RandomAccess.Read(_file, span[done..], offset + done);
            if (n == 0) throw new SeqtalkException($"The temporary token file {_path} ended early; was it truncated?");
            done += n;
        }
        var source = new int[sourceLength];
        var target = new int[targetLength];
        Decode(span[..(sourceLength * _idBytes)], source);
        Decode(span[(sourceLength * _idBytes)..], target);
        return new EncodedPair(source, target);
    }

    public void Dispose() => _file.Dispose();

    private int Check(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"The store holds {Count} pairs.");
        return index;
    }

    private void Append(int[] ids)
    {
        foreach (int id in ids)
        {
            if (_buffered + 4 > WriteBufferSize) Flush();
            var to = _writeBuffer.AsSpan(_buffered);
            if (_idBytes == 2)
            {
                if ((uint)id > ushort.MaxValue) throw new ArgumentException($"Id {id} does not fit the store's 16-bit ids.", nameof(ids));
                BinaryPrimitives.WriteUInt16LittleEndian(to, (ushort)id);
            }
            else
            {
                BinaryPrimitives.WriteInt32LittleEndian(to, id);
            }
            _buffered += _idBytes;
        }
    }

    private void Flush()
    {
        if (_buffered == 0) return;
        try
        {
            RandomAccess.Write(_file, _writeBuffer.AsSpan(0, _buffered), _fileLength);
        }
        catch (IOException e)
        {
            throw new SeqtalkException($"Cannot write the temporary token file {_path}: {OneLine(e.Message)} (is the disk full?)");
        }
        _fileLength += _buffered;
        _buffered = 0;
    }

    private void Decode(ReadOnlySpan<byte> bytes, Span<int> ids)
    {
        if (_idBytes == 2)
        {
            for (int i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]);
        }
        else
        {
            for (int i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
