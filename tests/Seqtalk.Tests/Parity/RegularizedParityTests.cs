// PyTorch parity of the regularised model (tests/reference/make_fixtures.py, case seq2seq_reg): tied decoder
// embeddings, fixed dropout masks fed to both sides, and CrossEntropyLoss(label_smoothing=ε). The masks enter the
// engine through TrainingWorkspace.MaskSource in the same logical layout PyTorch used ([B, T, W] per tensor id).

using System.Text.Json;
using Seqtalk.Nn;
using Xunit.Abstractions;
using KernelOps = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Parity;

public class RegularizedParityTests
{
    public const string CaseName = "seq2seq_reg";
    /// <summary>The same with a two-layer bidirectional encoder: the mask between its layers covers [fwd; bwd].</summary>
    public const string BidirectionalCaseName = "seq2seq_reg_bidirectional";

    public static TheoryData<string> Cases => new(CaseName, BidirectionalCaseName);
    private readonly ITestOutputHelper _output;

    public RegularizedParityTests(ITestOutputHelper output) => _output = output;

    private sealed record Extras(double Nll, float Smoothing, float Rate, Dictionary<int, (int[] Shape, float[] Values)> Masks);

    private static Extras LoadExtras(string name)
    {
        using var doc = PytorchFixture.Open(name, "seq2seq");
        var root = doc.RootElement;
        var dropout = root.GetProperty("dropout");
        var masks = dropout.GetProperty("masks").EnumerateArray().ToDictionary(
            m => m.GetProperty("tensor").GetInt32(),
            m => (m.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                  m.GetProperty("values").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray()));
        return new Extras(root.GetProperty("nll").GetDouble(), (float)root.GetProperty("label_smoothing").GetDouble(),
            (float)dropout.GetProperty("rate").GetDouble(), masks);
    }

    private static (Seq2SeqModel Model, TrainingWorkspace Workspace) Build(Seq2SeqFixture f, Extras x, int threads = 1)
    {
        var model = Seq2SeqModel.FromParameters(f.Config, (float[])f.Parameters.Clone());
        var ws = new TrainingWorkspace(model, f.Batch.Size, f.Batch.SourceSteps, f.Batch.TargetSteps, threads)
        {
            Dropout = x.Rate,
            LabelSmoothing = x.Smoothing,
            MaskSource = (tensor, rowKeys, batchSize, width, mask) =>
            {
                var (shape, values) = x.Masks[tensor];   // [B, T, W]
                Assert.Equal(batchSize, shape[0]);
                Assert.Equal(width, shape[2]);
                for (int r = 0; r < rowKeys.Length; r++)
                {
                    int t = rowKeys[r] / batchSize, b = rowKeys[r] % batchSize;
                    values.AsSpan((b * shape[1] + t) * width, width).CopyTo(mask.Slice(r * width, width));
                }
            },
        };
        return (model, ws);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Layout_HasNoOutputWeight_AndMatchesFixture(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        Assert.Equal(name == BidirectionalCaseName, f.Config.BidirectionalEncoder);
        Assert.True(f.Config.TiedEmbeddings);
        var layout = ParameterLayout.ForSeq2Seq(f.Config);
        Assert.Equal(f.Layout.Select(e => $"{e.Name}[{string.Join(',', e.Shape)}]@{e.Offset}"),
            layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]@{s.Offset}"));
        Assert.False(layout.TryGetSlot(ParameterLayout.Names.OutputWeight, out _));
        Assert.Same(layout[ParameterLayout.Names.DecoderEmbedding], layout.OutputWeight);
    }

    [Theory]
    [InlineData(CaseName, 1)]
    [InlineData(CaseName, 2)]
    [InlineData(BidirectionalCaseName, 1)]
    [InlineData(BidirectionalCaseName, 2)]
    public void ForwardBackward_LossesLogitsAndEveryGradient_MatchPytorch(string name, int threads)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var x = LoadExtras(name);
        Assert.Equal(2 * f.Config.Layers + 1, x.Masks.Count);   // embeddings, between layers, top output
        var (model, ws) = Build(f, x, threads);
        int n = f.Batch.RealTargetTokens;
        var gradients = new float[f.Parameters.Length];
        var stats = ws.ForwardBackward(f.Batch, gradients, 1f / n);

        var log = new ParityLog($"{name}: tied embeddings, fixed dropout masks, label smoothing {x.Smoothing} vs PyTorch");
        log.CheckScalar("smoothed loss (what PyTorch's criterion returns)", stats.SmoothedLossSum / n, f.Loss, 1e-5);
        log.CheckScalar("true NLL (what we report)", stats.LossSum / n, x.Nll, 1e-5);
        log.Check("logits", ws.LastLogits.ToArray(), f.Logits, f.LogitsShape, 1e-4);
        foreach (var slot in model.Layout.Slots)
            log.Check(slot.Name, gradients.AsSpan(slot.Offset, slot.Length).ToArray(), f.Gradients.AsSpan(slot.Offset, slot.Length), slot.Shape, 1e-4);
        log.AssertPassed(_output);
        Assert.NotEqual(f.Loss, x.Nll, 3);   // the smoothing is not vacuous
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RmsProp_TenSteps_LossesAndFinalWeightsMatchPytorch(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var (model, ws) = Build(f, LoadExtras(name));
        var r = f.RmsProp;
        int n = f.Batch.RealTargetTokens;
        var gradients = new float[f.Parameters.Length];
        var meanSquare = new float[f.Parameters.Length];
        var log = new ParityLog($"{name}: {r.Steps} RMSprop steps vs PyTorch");
        for (int step = 0; step < r.Steps; step++)
        {
            Array.Clear(gradients);
            var stats = ws.ForwardBackward(f.Batch, gradients, 1f / n);
            log.CheckScalar($"step {step} smoothed loss", stats.SmoothedLossSum / n, r.Losses[step], 1e-4);
            KernelOps.RmsPropUpdate(model.Parameters, gradients, meanSquare, r.LearningRate, r.Rho, r.Epsilon);
        }
        foreach (var slot in model.Layout.Slots)
            log.Check("final " + slot.Name, model.Parameters.AsSpan(slot.Offset, slot.Length), r.FinalParameters.AsSpan(slot.Offset, slot.Length), slot.Shape, 1e-4);
        log.AssertPassed(_output);
    }
}
