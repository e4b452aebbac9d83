using System.Buffers.Binary;
using System.Collections;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Seqtalk.IO;

namespace Seqtalk.Tests.IO;

public sealed class SafetensorsWriteTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    internal static TensorEntry[] Tiny() =>
    [
        new("a", [2], [1f, -2f]),
        new("b", [1, 1], [0.5f]),
    ];

    internal static byte[] ToBytes(IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var ms = new MemoryStream();
        Safetensors.Write(ms, tensors, metadata);
        return ms.ToArray();
    }

    [Fact]
    public void TinyFile_HasTheHandComputedBytes()
    {
        byte[] actual = ToBytes(Tiny(), new Dictionary<string, string> { ["k"] = "v" });

        // sha256(0000803f 000000c0 0000003f), computed outside .NET.
        const string Sha = "2ce4bdb6b34a50ac7092eb9fee94337a27498e9eb9bae44192f15b88831b2422";
        const string Json = "{\"__metadata__\":{\"k\":\"v\",\"seqtalk.sha256\":\"" + Sha + "\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
        Assert.Equal(219, Json.Length);
        var expected = new List<byte> { 224, 0, 0, 0, 0, 0, 0, 0 };     // 219 rounded up to 8
        expected.AddRange(Encoding.ASCII.GetBytes(Json + "     "));      // 5 spaces of padding
        expected.AddRange(Convert.FromHexString("0000803f" + "000000c0" + "0000003f")); // 1, -2, 0.5 LE
        Assert.Equal(expected.ToArray(), actual);
    }

    [Fact]
    public void RoundTrip_IsBitIdentical_ForSpecialValuesScalarsAndEmptyTensors()
    {
        var rng = new Random(1234);
        float[] special =
        [
            0f, -0f, float.Epsilon, -float.Epsilon, 1e-40f, -3e-39f, BitConverter.Int32BitsToSingle(0x007FFFFF),
            float.MaxValue, float.MinValue, float.PositiveInfinity, float.NegativeInfinity, 1f, -1f, 3.14159265f,
        ];
        TensorEntry[] tensors =
        [
            new("special", [2, 7], special),
            new("random.w", [5, 3], Enumerable.Range(0, 15).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()),
            new("scalar", [], [42.5f]),
            new("empty", [0, 3], []),
            new("이름", [1], [7f]),
        ];
        var metadata = new Dictionary<string, string> { ["note"] = "한국어 metadata \"quoted\"\n" };
        string path = _dir.File("weights.safetensors");
        Safetensors.WriteAtomic(path, tensors, metadata);

        var content = Safetensors.Read(path);

        Assert.Equal(tensors.Select(t => t.Name), content.Tensors.Keys);
        foreach (var t in tensors)
        {
            var read = content.Tensors[t.Name];
            Assert.Equal(t.Shape, read.Shape);
            Assert.Equal(t.Data.Select(BitConverter.SingleToInt32Bits), read.Data.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(metadata["note"], content.Metadata["note"]);
        Assert.Equal(64, content.Metadata[Safetensors.ChecksumKey].Length);
    }

    [Fact]
    public void Header_FollowsTheSpec_WhenParsedIndependently()
    {
        // Names of every length mod 8 so that every amount of padding occurs.
        for (int nameLength = 1; nameLength <= 8; nameLength++)
        {
            var tensors = new[]
            {
                new TensorEntry(new string('x', nameLength), [3], [1f, 2f, 3f]),
                new TensorEntry("y", [2, 2], [-1f, 0.25f, 1e-38f, 8f]),
            };
            byte[] bytes = ToBytes(tensors);

            // The spec, read with nothing of ours: u64 LE header size N, JSON, then the byte buffer.
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            Assert.Equal(0UL, (8 + n) % 8);
            var header = bytes.AsSpan(8, (int)n);
            Assert.Equal((byte)'{', header[0]);
            int lastBrace = header.LastIndexOf((byte)'}');
            Assert.True(header[(lastBrace + 1)..].IndexOfAnyExcept((byte)' ') < 0, "only spaces may follow the JSON");
            Assert.True(n - (ulong)lastBrace - 1 < 8, "padding is less than 8 bytes");

            using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
            var root = doc.RootElement;
            Assert.Equal(JsonValueKind.Object, root.GetProperty("__metadata__").ValueKind);
            int dataStart = 8 + (int)n;
            long covered = 0;
            foreach (var t in tensors)
            {
                var e = root.GetProperty(t.Name);
                Assert.Equal("F32", e.GetProperty("dtype").GetString());
                Assert.Equal(t.Shape, e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));
                long begin = e.GetProperty("data_offsets")[0].GetInt64(), end = e.GetProperty("data_offsets")[1].GetInt64();
                Assert.Equal(covered, begin); // contiguous, in the given order
                Assert.Equal(t.Data.Length * 4L, end - begin);
                for (int i = 0; i < t.Data.Length; i++)
                {
                    Assert.Equal(t.Data[i], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + (int)begin + 4 * i)));
                }
                covered = end;
            }
            Assert.Equal(bytes.Length - dataStart, covered);
            string sha = root.GetProperty("__metadata__").GetProperty("seqtalk.sha256").GetString()!;
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(dataStart))), sha);
        }
    }

    [Fact]
    public void Write_ReplacesAStaleChecksumInTheGivenMetadata()
    {
        var stale = new Dictionary<string, string> { [Safetensors.ChecksumKey] = new string('0', 64) };
        string path = _dir.File("w.safetensors");
        Safetensors.WriteAtomic(path, Tiny(), stale);
        Assert.NotEqual(stale[Safetensors.ChecksumKey], Safetensors.Read(path).Metadata[Safetensors.ChecksumKey]);
    }

    [Fact]
    public void Write_RejectsInconsistentTensors()
    {
        Assert.Throws<ArgumentException>(() => ToBytes([new TensorEntry("a", [2, 2], [1f, 2f, 3f])]));
        Assert.Throws<ArgumentException>(() => ToBytes([new TensorEntry("a", [1], [1f]), new TensorEntry("a", [1], [2f])]));
        Assert.Throws<ArgumentException>(() => ToBytes([new TensorEntry("__metadata__", [1], [1f])]));
        Assert.Throws<ArgumentException>(() => ToBytes([new TensorEntry("a", [-1], [])]));
    }

    [Fact]
    public void WriteAtomic_LeavesOnlyTheTarget_AndOverwritesIt()
    {
        string path = _dir.File("weights.safetensors");
        Safetensors.WriteAtomic(path, Tiny());
        Safetensors.WriteAtomic(path, [new TensorEntry("c", [1], [9f])]);

        Assert.Equal(["weights.safetensors"], _dir.FileNames());
        var content = Safetensors.Read(path);
        Assert.Equal(["c"], content.Tensors.Keys);
        Assert.Equal([9f], content.Tensors["c"].Data);
    }

    [Fact]
    public void WriteAtomic_KeepsTheOldFileAndRemovesTheTemp_WhenWritingThrowsMidway()
    {
        string path = _dir.File("weights.safetensors");
        Safetensors.WriteAtomic(path, Tiny());
        byte[] old = File.ReadAllBytes(path);
        var bigger = new[] { new TensorEntry("x", [4], [1f, 2f, 3f, 4f]), new TensorEntry("y", [2], [5f, 6f]), new TensorEntry("z", [1], [7f]) };

        bool sawTempWhenThrowing = false;
        int throwAt = 1;
        for (; throwAt < 100; throwAt++)
        {
            var list = new ThrowingList(bigger, throwAt, () => sawTempWhenThrowing |= _dir.FileNames().Any(f => f.EndsWith(".tmp", StringComparison.Ordinal)));
            try
            {
                Safetensors.WriteAtomic(path, list);
                break; // every access succeeded: the write went through
            }
            catch (InvalidOperationException ex) when (ex.Message == ThrowingList.Message)
            {
            }
            Assert.Equal(["weights.safetensors"], _dir.FileNames());
            Assert.Equal(old, File.ReadAllBytes(path));
        }

        Assert.True(sawTempWhenThrowing, "some failure must happen after the temporary file was created");
        Assert.True(throwAt > 3, "the failures covered more than validation");
        Assert.Equal(["x", "y", "z"], Safetensors.Read(path).Tensors.Keys);
        Assert.Equal(["weights.safetensors"], _dir.FileNames());
    }

    /// <summary>A tensor list whose n-th element access throws, as a failing producer would.</summary>
    private sealed class ThrowingList(IReadOnlyList<TensorEntry> inner, int throwAt, Action onThrow) : IReadOnlyList<TensorEntry>
    {
        public const string Message = "simulated failure while writing";
        private int _accesses;

        public TensorEntry this[int index]
        {
            get
            {
                if (++_accesses == throwAt)
                {
                    onThrow();
                    throw new InvalidOperationException(Message);
                }
                return inner[index];
            }
        }

        public int Count => inner.Count;

        public IEnumerator<TensorEntry> GetEnumerator()
        {
            for (int i = 0; i < Count; i++) yield return this[i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
