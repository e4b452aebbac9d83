using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Seqtalk.IO;

/// <summary>
/// Reads and writes the safetensors format (https://huggingface.co/docs/safetensors), float32 only.
/// Layout: an 8-byte little-endian header length N; N bytes of UTF-8 JSON
/// <c>{"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}</c>
/// padded with spaces so that the data starts at a multiple of 8; then the raw little-endian data,
/// tensors contiguous in the order given, offsets relative to the start of the data section.
/// Writing adds the SHA-256 of the data section under <see cref="ChecksumKey"/>; reading verifies it
/// when present. The file format is described in docs/model-format.md.
/// </summary>
internal static partial class Safetensors
{
    /// <summary>Metadata key holding the lowercase hex SHA-256 of the data section.</summary>
    public const string ChecksumKey = "seqtalk.sha256";

    /// <summary>The reserved header key for the string-to-string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The only dtype we read or write.</summary>
    public const string F32 = "F32";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // The header is a file, not HTML: keep non-ASCII names and metadata readable as UTF-8.
        // Quotes, backslashes and control characters are still escaped.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Writes <paramref name="tensors"/> in the given order to <paramref name="stream"/>.</summary>
    /// <remarks>The tensor list is enumerated twice: once to hash the data, once to write it.</remarks>
    /// <exception cref="ArgumentException">A name is empty, reserved or repeated, or a shape does not match its data.</exception>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian.</exception>
    /// <returns>The checksum written under <see cref="ChecksumKey"/>.</returns>
    public static string Write(Stream stream, IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        EnsureLittleEndian();
        ValidateForWrite(tensors);

        string checksum = DataChecksum(tensors);

        byte[] header = BuildHeader(tensors, metadata, checksum);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        for (int i = 0; i < tensors.Count; i++)
        {
            stream.Write(MemoryMarshal.AsBytes(tensors[i].Data.AsSpan()));
        }
        return checksum;
    }

    /// <summary>The value <see cref="Write"/> stores under <see cref="ChecksumKey"/>: the lowercase hex SHA-256
    /// of the tensors' data back to back, in the given order.</summary>
    private static string DataChecksum(IReadOnlyList<TensorEntry> tensors)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < tensors.Count; i++)
        {
            sha.AppendData(MemoryMarshal.AsBytes(tensors[i].Data.AsSpan()));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// Writes the file so that <paramref name="path"/> holds either the old file or the complete new
    /// one, never a partial file: writes a temporary file in the same directory, flushes it to disk,
    /// then renames it over the target. The temporary file is deleted if anything fails.
    /// </summary>
    /// <exception cref="ArgumentException">A name is empty, reserved or repeated, or a shape does not match its data.</exception>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian.</exception>
    /// <exception cref="IOException">The file could not be written or renamed.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or the target is not writable.</exception>
    /// <returns>The checksum written under <see cref="ChecksumKey"/>.</returns>
    public static string WriteAtomic(string path, IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            string checksum;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                checksum = Write(file, tensors, metadata);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
            return checksum;
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original failure is the one worth reporting.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Safetensors data is little-endian; reading and writing it on a big-endian machine is not supported.");
        }
    }

    private static void ValidateForWrite(IReadOnlyList<TensorEntry> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (string.IsNullOrEmpty(t.Name) || t.Name == MetadataKey)
            {
                throw new ArgumentException($"Tensor {i} has the empty or reserved name '{t.Name}'.", nameof(tensors));
            }
            if (!names.Add(t.Name))
            {
                throw new ArgumentException($"Tensor '{t.Name}' appears twice.", nameof(tensors));
            }
            long count = 1;
            foreach (int d in t.Shape)
            {
                if (d < 0) throw new ArgumentException($"Tensor '{t.Name}' has a negative dimension in shape {FormatShape(t.Shape)}.", nameof(tensors));
                count *= d;
                if (count > Array.MaxLength) throw new ArgumentException($"Tensor '{t.Name}' shape {FormatShape(t.Shape)} is too large.", nameof(tensors));
            }
            if (count != t.Data.Length)
            {
                throw new ArgumentException($"Tensor '{t.Name}' has shape {FormatShape(t.Shape)} ({count} values) but {t.Data.Length} values of data.", nameof(tensors));
            }
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata, string checksum)
    {
        // Metadata keys are sorted so that the same content always gives the same bytes.
        var meta = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata) meta[key] = value;
        }
        meta[ChecksumKey] = checksum; // ours wins over a stale value copied from a file that was read

        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            foreach (var (key, value) in meta) json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            for (int i = 0; i < tensors.Count; i++)
            {
                var t = tensors[i];
                long end = offset + (long)t.Data.Length * sizeof(float);
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", F32);
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }

        // Pad with spaces (valid trailing JSON whitespace) so that 8 + N is a multiple of 8.
        int padded = (buffer.WrittenCount + 7) & ~7;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>Formats a shape the way messages show it: <c>[7, 5]</c>.</summary>
    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    /// <inheritdoc cref="FormatShape(IEnumerable{long})"/>
    internal static string FormatShape(IEnumerable<int> shape) => FormatShape(shape.Select(d => (long)d));
}
