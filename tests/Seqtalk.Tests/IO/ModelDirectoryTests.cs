using System.Text.Json.Nodes;
using Seqtalk.IO;
using Seqtalk.Tests.EndToEnd;
using Seqtalk.Training;

namespace Seqtalk.Tests.IO;

/// <summary>config.json that describes a model the weights file cannot hold is refused before any large allocation.</summary>
public sealed class ModelDirectoryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "seqtalk-md-" + Guid.NewGuid().ToString("N"));

    public ModelDirectoryTests()
    {
        var model = ChatModel.Train(ChatModelTests.SyntheticPairs(16), new TrainingOptions
        {
            Epochs = 1,
            BatchSize = 8,
            EmbeddingDim = 4,
            HiddenDim = 6,
            ValidationSize = 0,
            Threads = 1,
        });
        model.Save(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void EditArchitecture(Action<JsonObject> edit)
    {
        string path = Path.Combine(_dir, ModelDirectory.ConfigFile);
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root["architecture"]!.AsObject());
        File.WriteAllText(path, root.ToJsonString());
    }

    [Fact]
    public void ArchitectureLargerThanTheWeightsFile_IsRefusedBeforeAllocating()
    {
        EditArchitecture(a => { a["hiddenDim"] = 8192; a["embeddingDim"] = 8192; });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ModelFormatException>(() => ChatModel.Load(_dir));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("weights.safetensors", e.Message);
        Assert.Contains("describes", e.Message);
        Assert.True(allocated < 16 << 20, $"allocated {allocated:N0} bytes while refusing the model");
    }

    [Fact]
    public void ArchitectureOverTwoBillionWeights_IsAClearError()
    {
        EditArchitecture(a => { a["hiddenDim"] = 8192; a["embeddingDim"] = 8192; a["layers"] = 8; });
        var e = Assert.Throws<ModelFormatException>(() => ChatModel.Load(_dir));
        Assert.Contains("too large", e.Message);
    }
}
