using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Seqtalk.IO;
using Seqtalk.Tests.EndToEnd;
using Seqtalk.Tests.IO;
using Seqtalk.Training;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Fuzz;

/// <summary>
/// The model loader on a saved tiny model whose files are mutated or truncated: <see cref="Safetensors.Read"/>
/// on its own, and <see cref="ChatModel.Load"/> on the whole directory. Only <see cref="SeqtalkException"/>
/// (<see cref="ModelFormatException"/>) may escape; no load allocates more than <see cref="AllocationBound"/>;
/// a load that succeeds gives a model that replies.
/// </summary>
public sealed class ModelLoaderFuzzTests(ITestOutputHelper output) : IDisposable
{
    // 2,000 random + 5,000 mutated safetensors files, 3,000 mutated model directories: 10,000 inputs.
    private const int RandomWeights = 2_000;
    private const int MutatedWeightFiles = 5_000;
    private const int MutatedDirectories = 3_000;

    /// <summary>The most one load of these kilobyte-sized files may allocate.</summary>
    private const long AllocationBound = 64L << 20;

    private static readonly string[] FileNames =
        [ModelDirectory.ConfigFile, ModelDirectory.WeightsFile, ModelDirectory.SourceVocabularyFile, ModelDirectory.TargetVocabularyFile];

    /// <summary>The saved tiny model's files, by name, in <see cref="FileNames"/> order.</summary>
    private static readonly Lazy<byte[][]> Saved = new(() =>
    {
        var model = ChatModel.Train(ChatModelTests.SyntheticPairs(24), new TrainingOptions
        {
            Epochs = 1,
            BatchSize = 8,
            EmbeddingDim = 4,
            HiddenDim = 5,
            ValidationSize = 0.25,
            Seed = 3,
            Threads = 1,
        });
        using var dir = new TempDirectory();
        model.Save(dir.Path);
        return FileNames.Select(name => File.ReadAllBytes(dir.File(name))).ToArray();
    });

    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [Fact]
    public void SavedModel_LoadsAndReplies()
    {
        // The unmutated files must load: otherwise every mutated case would pass for the wrong reason.
        WriteModel(Saved.Value);
        var model = ChatModel.Load(_work.Path);
        Assert.NotNull(model.Reply("민수는 오늘 행복해"));
    }

    [Fact]
    public void RandomWeightFiles_GiveModelFormatExceptionsOnly()
    {
        FuzzRunner.Run(output, "safetensors-random", Mutations.RandomBytes, CheckWeights, RandomWeights, FuzzRunner.ShowBytes);
    }

    [Fact]
    public void MutatedWeightFiles_GiveModelFormatExceptionsOnly()
    {
        FuzzRunner.Run(output, "safetensors-mutated", MutatedWeights(Saved.Value[1]), CheckWeights, MutatedWeightFiles, FuzzRunner.ShowBytes);
    }

    [Fact]
    public void MutatedModelDirectories_GiveSeqtalkExceptionsOnly()
    {
        var saved = Saved.Value;
        var oneFile = Gen.Frequency(
            (4, Gen.Const(0)), (4, Gen.Const(1)), (1, Gen.Const(2)), (1, Gen.Const(3)));
        var gen = Gen.Select(oneFile, oneFile, Gen.Int[0, 3]).SelectMany(choice =>
        {
            var (first, second, both) = choice;
            var files = new Gen<byte[]>[FileNames.Length];
            for (int i = 0; i < files.Length; i++) files[i] = Gen.Const(saved[i]);
            files[first] = MutatedFile(first, saved[first]);
            if (both == 0) files[second] = MutatedFile(second, saved[second]);
            return Gen.Select(files[0], files[1], files[2], files[3], (a, b, c, d) => new[] { a, b, c, d });
        });
        FuzzRunner.Run(output, "model-directory-mutated", gen, CheckDirectory, MutatedDirectories, ShowFiles);
    }

    private static Gen<byte[]> MutatedFile(int index, byte[] original) => index switch
    {
        0 => Gen.Frequency((1, Mutations.Of(Gen.Const(original))), (1, Mutations.NumbersOf(Gen.Const(original)))),
        1 => MutatedWeights(original),
        _ => Mutations.Of(Gen.Const(original)),
    };

    /// <summary>Mutations of a safetensors file: anywhere in the file; or only in its JSON header, with the
    /// length prefix kept or fixed up; or in the header without its checksum, so data edits get through.</summary>
    private static Gen<byte[]> MutatedWeights(byte[] original)
    {
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        byte[] header = original[8..(8 + headerLength)];
        byte[] data = original[(8 + headerLength)..];
        string json = Encoding.UTF8.GetString(header);
        int meta = json.IndexOf("\"seqtalk.sha256\"", StringComparison.Ordinal);
        int metaEnd = json.IndexOf('"', json.IndexOf(':', meta) + 2) + 1;
        byte[] unchecked_ = Encoding.UTF8.GetBytes(json[..meta] + "\"x\":\"y\"" + json[metaEnd..]);

        return Gen.Frequency(
            (3, Mutations.Of(Gen.Const(original))),
            (3, Gen.Select(Mutations.Of(Gen.Const(header)), Gen.Bool, (h, fix) => Assemble(fix ? h.Length : headerLength, h, data))),
            (2, Gen.Select(Mutations.Of(Gen.Const(unchecked_)), Mutations.Of(Gen.Const(data)), Gen.Bool,
                (h, d, mutateData) => Assemble(h.Length, h, mutateData ? d : data))),
            (1, Mutations.Of(Gen.Const(data)).Select(d => Assemble(unchecked_.Length, unchecked_, d))));
    }

    private static byte[] Assemble(long lengthPrefix, byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)lengthPrefix);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private void CheckWeights(byte[] bytes)
    {
        string path = _work.File(ModelDirectory.WeightsFile);
        File.WriteAllBytes(path, bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        SafetensorsContent content;
        try
        {
            content = Safetensors.Read(path);
        }
        catch (ModelFormatException ex)
        {
            CheckAllocation(before);
            CheckMessage(ex);
            return;
        }
        CheckAllocation(before);
        long values = 0;
        foreach (var tensor in content.Tensors.Values)
        {
            Assert.All(tensor.Shape, d => Assert.True(d >= 0));
            Assert.Equal(tensor.Shape.Aggregate(1L, (n, d) => n * d), tensor.Data.Length);
            values += tensor.Data.Length;
        }
        Assert.True(8 + values * sizeof(float) <= bytes.Length, "The tensors hold more values than the file has bytes.");
    }

    private void CheckDirectory(byte[][] files)
    {
        WriteModel(files);
        long before = GC.GetAllocatedBytesForCurrentThread();
        ChatModel model;
        try
        {
            model = ChatModel.Load(_work.Path);
        }
        catch (SeqtalkException ex)
        {
            CheckAllocation(before);
            CheckMessage(ex);
            return;
        }
        CheckAllocation(before);
        Assert.NotNull(model.Reply("민수는 오늘 행복해"));
        Assert.Equal(2, model.ReplyBatch(["", "tom는 오늘 <s> 피곤해 😊"]).Count);
    }

    private void WriteModel(byte[][] files)
    {
        for (int i = 0; i < FileNames.Length; i++) File.WriteAllBytes(_work.File(FileNames[i]), files[i]);
    }

    private static void CheckAllocation(long before)
    {
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < AllocationBound, $"One load allocated {allocated:N0} bytes (bound {AllocationBound:N0}).");
    }

    private static void CheckMessage(Exception ex) =>
        Assert.True(ex.Message.Length > 0 && ex.Message.IndexOfAny(['\n', '\r']) < 0, $"Not a one-line message: {FuzzRunner.ShowText(ex.Message)}");

    private static string ShowFiles(byte[][] files)
    {
        var saved = Saved.Value;
        var sb = new StringBuilder();
        for (int i = 0; i < files.Length; i++)
        {
            if (files[i].AsSpan().SequenceEqual(saved[i])) continue;
            sb.Append(FileNames[i]).Append(": ").Append(FuzzRunner.ShowBytes(files[i])).Append("; ");
        }
        return sb.Length == 0 ? "(no file changed)" : sb.ToString();
    }
}
