using Seqtalk.IO;
using Seqtalk.Nn;

namespace Seqtalk.Tests.IO;

public sealed class SafetensorsLayoutTests : IDisposable
{
    private const string FileName = "weights.safetensors";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ParameterLayout Layout(int targetVocab = 7, int hidden = 5) =>
        ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = targetVocab, EmbeddingDim = 4, HiddenDim = hidden });

    private static float[] Parameters(ParameterLayout layout)
    {
        var rng = new Random(1234);
        return Enumerable.Range(0, layout.TotalLength).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
    }

    private SafetensorsContent SaveAndRead(ParameterLayout layout, float[] parameters)
    {
        string path = _dir.File(FileName);
        Safetensors.WriteAtomic(path, Safetensors.FromLayout(layout, parameters));
        return Safetensors.Read(path);
    }

    [Fact]
    public void FromLayout_IsLayoutOrderWithCopiedSlices()
    {
        var layout = Layout();
        float[] parameters = Parameters(layout);
        var tensors = Safetensors.FromLayout(layout, parameters);

        Assert.Equal(layout.Slots.Select(s => s.Name), tensors.Select(t => t.Name));
        var outB = tensors.Single(t => t.Name == "out.b");
        Assert.Equal([7], outB.Shape);
        Assert.Equal(parameters[547..554], outB.Data);
        parameters[547] = 99f;
        Assert.NotEqual(99f, outB.Data[0]);
    }

    [Fact]
    public void FromLayout_RejectsAWrongLength() =>
        Assert.Throws<ArgumentException>(() => Safetensors.FromLayout(Layout(), new float[10]));

    [Fact]
    public void SaveThenToFlat_IsBitIdentical()
    {
        var layout = Layout();
        float[] parameters = Parameters(layout);
        parameters[0] = -0f;
        parameters[1] = float.Epsilon;
        float[] flat = Safetensors.ToFlat(SaveAndRead(layout, parameters), layout, FileName);
        Assert.Equal(parameters.Select(BitConverter.SingleToInt32Bits), flat.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void ToFlat_ShapeMismatch_NamesTheTensorAndBothShapes()
    {
        var saved = Layout(targetVocab: 7);
        var ex = Assert.Throws<ModelFormatException>(() => Safetensors.ToFlat(SaveAndRead(saved, Parameters(saved)), Layout(targetVocab: 8), FileName));
        Assert.Equal($"{FileName}: tensor 'dec.embed' has shape [7, 4] but the model config needs [8, 4]; do config.json and the weights belong together?", ex.Message);
    }

    [Fact]
    public void ToFlat_MissingTensor()
    {
        var layout = Layout();
        var content = SaveAndRead(layout, Parameters(layout));
        var fewer = content.Tensors.Where(kv => kv.Key != "out.b").ToDictionary();
        var ex = Assert.Throws<ModelFormatException>(() => Safetensors.ToFlat(content with { Tensors = fewer }, layout, FileName));
        Assert.Equal($"{FileName}: tensor 'out.b' is missing; the model config needs it with shape [7].", ex.Message);
    }

    [Fact]
    public void ToFlat_ExtraTensor()
    {
        var layout = Layout();
        string path = _dir.File(FileName);
        Safetensors.WriteAtomic(path, [.. Safetensors.FromLayout(layout, Parameters(layout)), new TensorEntry("attn.w", [2], [1f, 2f])]);
        var ex = Assert.Throws<ModelFormatException>(() => Safetensors.ToFlat(Safetensors.Read(path), layout, FileName));
        Assert.Equal($"{FileName}: tensor 'attn.w' is not part of the model config; do config.json and the weights belong together?", ex.Message);
    }
}
