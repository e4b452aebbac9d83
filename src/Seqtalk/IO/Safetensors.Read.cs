using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Seqtalk.IO;

// Reading defends itself: a model file may be any bytes. Every check happens before the allocation
// it guards, and every failure is one ModelFormatException line naming the file, the problem and
// the tensor where there is one.
internal static partial class Safetensors
{
    /// <summary>Largest header we accept before allocating for it (the Rust reader uses the same bound).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly JsonDocumentOptions ReaderOptions = new() { MaxDepth = 8 };

    /// <summary>Reads and validates a safetensors file holding only F32 tensors.</summary>
    /// <returns>The tensors in header order and the <c>__metadata__</c> strings.</returns>
    /// <exception cref="ModelFormatException">The file is missing, unreadable, malformed, uses another dtype, or its data checksum does not match.</exception>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian.</exception>
    public static SafetensorsContent Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        EnsureLittleEndian();
        string file = Path.GetFileName(path);
        FileStream stream;
        try
        {
            // No FileStream buffer: we read the header and each tensor in one call each.
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ModelFormatException($"{file}: file not found at '{Path.GetFullPath(path)}'.", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"{file}: cannot open the file: {OneLine(ex.Message)}", ex);
        }

        using (stream)
        {
            try
            {
                return ReadCore(stream, file);
            }
            catch (EndOfStreamException ex)
            {
                // Only if the file shrinks while we read it: its length was checked up front.
                throw new ModelFormatException($"{file}: the file ended early while reading; was it being written?", ex);
            }
        }
    }

    private static SafetensorsContent ReadCore(FileStream stream, string file)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
        {
            throw Fail(file, $"the file is {fileLength} bytes, too short for the 8-byte header length; it is empty, truncated or not a safetensors file.");
        }
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
        {
            throw Fail(file, $"the header length {headerLength} bytes is above the {MaxHeaderBytes / 1_000_000} MB limit; this is not a safetensors file or it is damaged.");
        }
        if ((long)headerLength > fileLength - 8)
        {
            throw Fail(file, $"the header length {headerLength} bytes is larger than the rest of the file ({fileLength - 8} bytes); the file is truncated or not a safetensors file.");
        }
        long dataLength = fileLength - 8 - (long)headerLength;

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        List<TensorSpec> specs;
        Dictionary<string, string> metadata;
        try
        {
            (specs, metadata) = ParseHeader(header, file, dataLength);
        }
        catch (InvalidOperationException ex)
        {
            // System.Text.Json checks \u escapes only when a string is read: a lone surrogate lands here.
            throw new ModelFormatException($"{file}: the header holds a JSON string that is not valid text: {OneLine(ex.Message)}", ex);
        }
        CheckCoverage(specs, file, dataLength);

        // The data section is exactly the tensors, in offset order, so one sequential pass reads them
        // straight into their arrays and hashes the same bytes.
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var data = new Dictionary<string, float[]>(specs.Count, StringComparer.Ordinal);
        foreach (var spec in specs.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            var values = new float[(spec.End - spec.Begin) / sizeof(float)];
            var bytes = MemoryMarshal.AsBytes(values.AsSpan());
            stream.ReadExactly(bytes);
            sha.AppendData(bytes);
            data[spec.Name] = values;
        }

        if (metadata.TryGetValue(ChecksumKey, out string? expected))
        {
            string actual = Convert.ToHexStringLower(sha.GetHashAndReset());
            if (!string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase))
            {
                throw Fail(file, $"data checksum mismatch: {ChecksumKey} in the header is {Clip(expected)} but the data hashes to {actual}; the file is damaged.");
            }
        }

        var tensors = new Dictionary<string, TensorEntry>(specs.Count, StringComparer.Ordinal);
        foreach (var spec in specs) tensors.Add(spec.Name, new TensorEntry(spec.Name, spec.Shape, data[spec.Name]));
        return new SafetensorsContent(tensors, metadata);
    }

    private readonly record struct TensorSpec(string Name, int[] Shape, long Begin, long End);

    private static (List<TensorSpec> Specs, Dictionary<string, string> Metadata) ParseHeader(byte[] header, string file, long dataLength)
    {
        if (!Utf8.IsValid(header))
        {
            throw Fail(file, "the header is not valid UTF-8; this is not a safetensors file or it is damaged.");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, ReaderOptions);
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"{file}: the header is not valid JSON: {OneLine(ex.Message)}", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Fail(file, $"the header is a JSON {Kind(root)}, not an object.");
            }
            var specs = new List<TensorSpec>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                string name = property.Name;
                if (!seen.Add(name))
                {
                    throw Fail(file, name == MetadataKey
                        ? $"{MetadataKey} appears twice in the header."
                        : $"tensor {Quote(name)} appears twice in the header.");
                }
                if (name == MetadataKey)
                {
                    ReadMetadata(property.Value, file, metadata);
                }
                else
                {
                    specs.Add(ParseEntry(property.Value, name, file, dataLength));
                }
            }
            return (specs, metadata);
        }
    }

    private static void ReadMetadata(JsonElement element, string file, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Fail(file, $"{MetadataKey} is a JSON {Kind(element)}; it must be an object of strings.");
        }
        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw Fail(file, $"{MetadataKey} value for {Quote(entry.Name)} is a JSON {Kind(entry.Value)}; metadata values must be strings.");
            }
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorSpec ParseEntry(JsonElement entry, string name, string file, long dataLength)
    {
        string tensor = $"tensor {Quote(name)}";
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw Fail(file, $"{tensor} is described by a JSON {Kind(entry)}, not an object.");
        }

        if (!entry.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String)
        {
            throw Fail(file, $"{tensor} has no dtype string.");
        }
        if (dtype.GetString() != F32)
        {
            throw Fail(file, $"{tensor} has dtype {Clip(dtype.GetString()!)}; only F32 is supported.");
        }

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Fail(file, $"{tensor} has no shape array.");
        }
        var dims = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
            {
                throw Fail(file, $"{tensor} has shape {Clip(shapeElement.GetRawText())}, which is not a list of whole numbers.");
            }
            dims.Add(dim);
        }
        string shapeText = FormatShape(dims);
        if (dims.Any(d => d < 0))
        {
            throw Fail(file, $"{tensor} has a negative dimension in shape {shapeText}.");
        }
        long count = 1;
        if (dims.Any(d => d > int.MaxValue))
        {
            count = long.MaxValue;
        }
        else if (!dims.Contains(0))
        {
            foreach (long d in dims)
            {
                count *= d; // both factors <= int.MaxValue and count <= Array.MaxLength: no overflow
                if (count > Array.MaxLength) break;
            }
        }
        else
        {
            count = 0;
        }
        if (count > Array.MaxLength)
        {
            throw Fail(file, $"{tensor} has shape {shapeText}, which is too large (more than {Array.MaxLength} values).");
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || !TryGetOffset(offsets[0], out long begin) || !TryGetOffset(offsets[1], out long end))
        {
            string found = entry.TryGetProperty("data_offsets", out var raw) ? Clip(raw.GetRawText()) : "nothing";
            throw Fail(file, $"{tensor} has data_offsets {found}; expected two non-negative whole numbers [begin, end].");
        }
        string offsetText = $"[{begin}, {end}]";
        if (begin > end)
        {
            throw Fail(file, $"{tensor} has data_offsets {offsetText}, which are not in order (begin after end).");
        }
        long needed = count * sizeof(float);
        if (end - begin != needed)
        {
            throw Fail(file, $"{tensor} has data_offsets {offsetText} but shape {shapeText} needs {needed} bytes.");
        }
        if (end > dataLength)
        {
            throw Fail(file, $"{tensor} has data_offsets {offsetText} beyond the end of the {dataLength}-byte data section; the file is truncated or the header is wrong.");
        }
        return new TensorSpec(name, dims.Select(d => (int)d).ToArray(), begin, end);
    }

    private static bool TryGetOffset(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    // The tensors must tile the data section exactly: sorted by offset, each starts where the previous
    // one ends, and the last ends at the end of the file (the spec forbids holes, which also rules out
    // polyglot files).
    private static void CheckCoverage(List<TensorSpec> specs, string file, long dataLength)
    {
        long previousEnd = 0;
        TensorSpec? previous = null;
        foreach (var spec in specs.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            if (spec.Begin < previousEnd)
            {
                var p = previous!.Value;
                throw Fail(file, $"tensors {Quote(p.Name)} [{p.Begin}, {p.End}] and {Quote(spec.Name)} [{spec.Begin}, {spec.End}] have overlapping data_offsets.");
            }
            if (spec.Begin > previousEnd)
            {
                string after = previous is { } q ? $"after tensor {Quote(q.Name)}" : "at the start of the data section";
                throw Fail(file, $"{spec.Begin - previousEnd} bytes {after} belong to no tensor (tensor {Quote(spec.Name)} starts at {spec.Begin}); the data must be contiguous.");
            }
            previousEnd = spec.End;
            previous = spec;
        }
        if (previousEnd != dataLength)
        {
            throw Fail(file, $"the data section is {dataLength} bytes but the tensors end at byte {previousEnd}; {dataLength - previousEnd} trailing bytes belong to no tensor.");
        }
    }

    private static ModelFormatException Fail(string file, string problem) => new($"{file}: {problem}");

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Undefined => "nothing",
    };

    /// <summary>A name from the file, quoted, cut short and with control characters escaped, so that
    /// the message stays one readable line whatever the file holds.</summary>
    private static string Quote(string name) => "'" + Clip(name) + "'";

    private static string Clip(string text, int max = 80)
    {
        var sb = new StringBuilder();
        foreach (char c in text.Length > max ? text[..max] : text)
        {
            if (char.IsControl(c)) sb.Append(@"\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        if (text.Length > max) sb.Append('…');
        return sb.ToString();
    }

    private static string OneLine(string text) => Clip(text.ReplaceLineEndings(" "), 300);
}
