using System.Buffers.Binary;
using System.Text;
using Seqtalk.IO;

namespace Seqtalk.Tests.IO;

/// <summary>A model file may be any bytes: each kind of damage gets its own one-line message.</summary>
public sealed class SafetensorsReadTests : IDisposable
{
    private const string FileName = "weights.safetensors";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    // The tiny valid file: header 224 bytes (8..232), then 12 data bytes: 'a' [0, 8], 'b' [8, 12].
    private static byte[] Valid() => SafetensorsWriteTests.ToBytes(SafetensorsWriteTests.Tiny(), new Dictionary<string, string> { ["k"] = "v" });

    private static byte[] Build(string json, int dataBytes) => Build(Encoding.UTF8.GetBytes(json), new byte[dataBytes]);

    private static byte[] Build(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static string Entry(string name, string shape, long begin, long end, string dtype = "F32") =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private string Fails(byte[] bytes)
    {
        string path = _dir.File(FileName);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<ModelFormatException>(() => Safetensors.Read(path));
        Assert.StartsWith(FileName + ": ", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\r', ex.Message);
        return ex.Message;
    }

    [Fact]
    public void ValidFile_Reads()
    {
        string path = _dir.File(FileName);
        File.WriteAllBytes(path, Valid());
        var content = Safetensors.Read(path);
        Assert.Equal([1f, -2f], content.Tensors["a"].Data);
        Assert.Equal([1, 1], content.Tensors["b"].Shape);
        Assert.Equal("v", content.Metadata["k"]);
    }

    [Fact]
    public void FileWithoutChecksumOrMetadata_Reads()
    {
        // As another safetensors writer would produce it.
        byte[] data = new byte[8];
        BinaryPrimitives.WriteSingleLittleEndian(data, 3f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -4f);
        string path = _dir.File(FileName);
        File.WriteAllBytes(path, Build(Encoding.UTF8.GetBytes("{" + Entry("t", "[2]", 0, 8) + "}  "), data));
        var content = Safetensors.Read(path);
        Assert.Equal([3f, -4f], content.Tensors["t"].Data);
        Assert.Empty(content.Metadata);
    }

    [Fact]
    public void MissingFile()
    {
        var ex = Assert.Throws<ModelFormatException>(() => Safetensors.Read(_dir.File(FileName)));
        Assert.StartsWith(FileName + ": file not found at '", ex.Message);
    }

    [Theory]
    [InlineData(0, "the file is 0 bytes, too short for the 8-byte header length")]
    [InlineData(7, "the file is 7 bytes, too short for the 8-byte header length")]
    [InlineData(8, "the header length 224 bytes is larger than the rest of the file (0 bytes)")]
    [InlineData(120, "the header length 224 bytes is larger than the rest of the file (112 bytes)")]
    [InlineData(231, "the header length 224 bytes is larger than the rest of the file (223 bytes)")]
    [InlineData(232, "tensor 'a' has data_offsets [0, 8] beyond the end of the 0-byte data section")]
    [InlineData(239, "tensor 'a' has data_offsets [0, 8] beyond the end of the 7-byte data section")]
    [InlineData(242, "tensor 'b' has data_offsets [8, 12] beyond the end of the 10-byte data section")]
    [InlineData(243, "tensor 'b' has data_offsets [8, 12] beyond the end of the 11-byte data section")]
    public void Truncated(int length, string expected)
    {
        Assert.Contains(expected, Fails(Valid()[..length]));
    }

    [Fact]
    public void TrailingBytes()
    {
        Assert.Contains("the data section is 13 bytes but the tensors end at byte 12; 1 trailing bytes belong to no tensor", Fails([.. Valid(), 0]));
    }

    [Fact]
    public void HeaderLengthAboveTheBound_IsRefusedBeforeAllocating()
    {
        byte[] bytes = Valid();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 40);
        Assert.Contains("the header length 1099511627776 bytes is above the 100 MB limit", Fails(bytes));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        Assert.Contains("above the 100 MB limit", Fails(bytes));
    }

    [Fact]
    public void HeaderNotUtf8() => Assert.Contains("the header is not valid UTF-8", Fails(Build([(byte)'{', 0xFF, 0xFE, (byte)'}'], [])));

    [Fact]
    public void HeaderNotJson() => Assert.Contains("the header is not valid JSON: ", Fails(Build("{\"a\": nope}", 0)));

    [Theory]
    [InlineData("[1, 2]", "array")]
    [InlineData("\"text\"", "string")]
    [InlineData("3", "number")]
    public void HeaderNotAnObject(string json, string kind) => Assert.Contains($"the header is a JSON {kind}, not an object.", Fails(Build(json, 0)));

    [Fact]
    public void FlippedByteInHeader_BreaksTheUtf8OrTheJson()
    {
        Assert.Contains("the header is not valid UTF-8", Fails(Flip(Valid(), 9, 0xFF)));
    }

    [Fact]
    public void FlippedByteInHeaderStructure() =>
        Assert.Contains("the header is not valid JSON", Fails(Flip(Valid(), Array.IndexOf(Valid(), (byte)':'), 0x01))); // ':' -> ';'

    [Fact]
    public void FlippedByteInData_FailsTheChecksum()
    {
        string message = Fails(Flip(Valid(), 240, 0xFF));
        Assert.Contains("data checksum mismatch: seqtalk.sha256 in the header is 2ce4bdb6b34a50ac7092eb9fee94337a27498e9eb9bae44192f15b88831b2422 but the data hashes to ", message);
    }

    [Fact]
    public void AlteredChecksumInHeader_FailsTheChecksum()
    {
        byte[] bytes = Valid();
        int at = Encoding.ASCII.GetString(bytes).IndexOf("2ce4bd", StringComparison.Ordinal);
        bytes[at] = (byte)'3';
        Assert.Contains("data checksum mismatch: seqtalk.sha256 in the header is 3ce4bd", Fails(bytes));
    }

    [Theory]
    [InlineData("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 't' has no dtype string.")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "tensor 't' has no shape array.")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 't' has data_offsets nothing; expected two non-negative whole numbers [begin, end].")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "tensor 't' has data_offsets [0]; expected two")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "tensor 't' has data_offsets [-4,0]; expected two")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", "tensor 't' has data_offsets [0,\"4\"]; expected two")]
    [InlineData("{\"t\":[1,2]}", "tensor 't' is described by a JSON array, not an object.")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "tensor 't' has shape [1.5], which is not a list of whole numbers.")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "tensor 't' has a negative dimension in shape [-1].")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,4]}}", "tensor 't' has shape [4294967296], which is too large")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[65536,65536,65536],\"data_offsets\":[0,4]}}", "tensor 't' has shape [65536, 65536, 65536], which is too large")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", "tensor 't' has shape [99999999999999999999], which is not a list of whole numbers.")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", "tensor 't' has data_offsets [4, 0], which are not in order (begin after end).")]
    [InlineData("{\"__metadata__\":[],\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "__metadata__ is a JSON array; it must be an object of strings.")]
    [InlineData("{\"__metadata__\":{\"n\":1},\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "__metadata__ value for 'n' is a JSON number; metadata values must be strings.")]
    public void MalformedEntry(string json, string expected) => Assert.Contains(expected, Fails(Build(json, 4)));

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    [InlineData("F64")]
    [InlineData("I64")]
    public void WrongDtype(string dtype) =>
        Assert.Equal($"{FileName}: tensor 't' has dtype {dtype}; only F32 is supported.", Fails(Build("{" + Entry("t", "[1]", 0, 4, dtype) + "}", 4)));

    [Fact]
    public void OffsetsNotMatchingTheShape() =>
        Assert.Equal($"{FileName}: tensor 'out.w' has data_offsets [0, 100] but shape [7, 5] needs 140 bytes.", Fails(Build("{" + Entry("out.w", "[7,5]", 0, 100) + "}", 140)));

    [Fact]
    public void OverlappingOffsets() =>
        Assert.Equal($"{FileName}: tensors 'a' [0, 8] and 'b' [4, 12] have overlapping data_offsets.",
            Fails(Build("{" + Entry("b", "[2]", 4, 12) + "," + Entry("a", "[2]", 0, 8) + "}", 12)));

    [Fact]
    public void GapBetweenTensors() =>
        Assert.Equal($"{FileName}: 4 bytes after tensor 'a' belong to no tensor (tensor 'b' starts at 12); the data must be contiguous.",
            Fails(Build("{" + Entry("a", "[2]", 0, 8) + "," + Entry("b", "[1]", 12, 16) + "}", 16)));

    [Fact]
    public void GapAtTheStart() =>
        Assert.Contains("4 bytes at the start of the data section belong to no tensor (tensor 'a' starts at 4)",
            Fails(Build("{" + Entry("a", "[1]", 4, 8) + "}", 8)));

    [Fact]
    public void DuplicateNames()
    {
        Assert.Equal($"{FileName}: tensor 'a' appears twice in the header.", Fails(Build("{" + Entry("a", "[1]", 0, 4) + "," + Entry("a", "[1]", 4, 8) + "}", 8)));
        Assert.Contains("__metadata__ appears twice in the header.", Fails(Build("{\"__metadata__\":{},\"__metadata__\":{}}", 0)));
    }

    [Fact]
    public void HostileNames_StayOnOneShortLine()
    {
        string name = "evil\\nname" + new string('z', 500);
        string message = Fails(Build("{" + Entry(name, "[1]", 0, 4, "F16") + "}", 4));
        Assert.Contains("tensor 'evil\\u000aname", message);
        Assert.True(message.Length < 200, message);
    }

    [Fact]
    public void EverySingleBitFlip_EitherReadsOrFailsCleanly()
    {
        byte[] valid = Valid();
        int headerEnd = 8 + 224, failures = 0;
        for (int i = 0; i < valid.Length; i++)
        {
            foreach (byte bit in new byte[] { 0x01, 0x20, 0x80 })
            {
                byte[] bytes = (byte[])valid.Clone();
                bytes[i] ^= bit;
                string path = _dir.File(FileName);
                File.WriteAllBytes(path, bytes);
                try
                {
                    Safetensors.Read(path);
                    Assert.True(i >= 8 && i < headerEnd, $"a flip at data byte {i} must not go unnoticed");
                }
                catch (ModelFormatException ex)
                {
                    failures++;
                    if (i >= headerEnd) Assert.Contains("data checksum mismatch", ex.Message);
                }
            }
        }
        Assert.True(failures > valid.Length, $"most flips must be caught, only {failures} were");
    }

    [Fact]
    public void RandomBytes_FailCleanly()
    {
        var rng = new Random(1234);
        for (int trial = 0; trial < 200; trial++)
        {
            byte[] bytes = new byte[rng.Next(0, 64)];
            rng.NextBytes(bytes);
            if (bytes.Length >= 8 && trial % 2 == 0)
            {
                // Make the header length plausible so the JSON parser sees the garbage too.
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)rng.Next(0, bytes.Length - 7));
            }
            Fails(bytes);
        }
    }

    private static byte[] Flip(byte[] bytes, int at, byte mask)
    {
        bytes[at] ^= mask;
        return bytes;
    }
}
