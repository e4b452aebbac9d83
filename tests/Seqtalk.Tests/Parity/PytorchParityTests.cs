// PyTorch parity (STYLE.md rule 21): our engine against golden data written by
// tests/reference/make_fixtures.py: the same model, weights and batch in PyTorch (computed in
// float64 from float32 weights). Tolerances from STYLE.md, "How close is close".
//
// Engine API used (docs/conventions.md): Seq2SeqModel.FromParameters, TrainingWorkspace
// (ForwardBackward, Forward, LastLogits), BatchStats, Kernels.RmsPropUpdate.

using Seqtalk.Nn;
using Xunit.Abstractions;
using KernelOps = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Parity;

public class PytorchParityTests
{
    private const double LogitsTolerance = 1e-4;
    private const double LossTolerance = 1e-5;
    private const double GradientTolerance = 1e-4;
    private const double StepLossTolerance = 1e-4;
    // Not in STYLE.md's table: parameters after 10 RMSprop steps. A float32 PyTorch run lands within
    // 1.3e-7 of the fixture (its float32_spread), so 1e-4 leaves ample room.
    private const double StepParameterTolerance = 1e-4;

    private readonly ITestOutputHelper _output;

    public PytorchParityTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string> Seq2SeqCases => new(PytorchFixture.Seq2SeqCases);

    [Theory]
    [MemberData(nameof(Seq2SeqCases))]
    public void Layout_MatchesFixture(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var layout = ParameterLayout.ForSeq2Seq(f.Config);
        var expected = f.Layout.Select(e => $"{e.Name}[{string.Join(',', e.Shape)}]@{e.Offset}").ToArray();
        var actual = layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]@{s.Offset}").ToArray();
        Assert.Equal(expected, actual);
        Assert.Equal(f.Parameters.Length, layout.TotalLength);
    }

    [Theory]
    [MemberData(nameof(Seq2SeqCases))]
    public void ForwardBackward_LogitsAndLoss_MatchPytorch(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var (_, workspace) = Build(f);
        var gradients = new float[f.Parameters.Length];
        int n = f.Batch.RealTargetTokens;

        var stats = workspace.ForwardBackward(f.Batch, gradients, lossScale: 1f / n);
        float[] logits = workspace.LastLogits.ToArray();

        var log = new ParityLog($"{name}: ForwardBackward vs PyTorch");
        log.CheckEqual("tokens", stats.Tokens, n);
        log.CheckScalar("loss (LossSum / N)", stats.LossSum / n, f.Loss, LossTolerance);
        log.CheckScalar("LossSum", stats.LossSum, f.Loss * n, LossTolerance * n);
        log.Check("logits", logits, f.Logits, f.LogitsShape, LogitsTolerance);
        log.CheckEqual("correct (argmax == target)", stats.Correct, ExpectedCorrect(f));
        log.AssertPassed(_output);
    }

    [Theory]
    [MemberData(nameof(Seq2SeqCases))]
    public void Forward_EvaluationPath_MatchesPytorch(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var (_, workspace) = Build(f);

        var stats = workspace.Forward(f.Batch);
        float[] logits = workspace.LastLogits.ToArray();

        var log = new ParityLog($"{name}: Forward (evaluation) vs PyTorch");
        log.CheckEqual("tokens", stats.Tokens, f.Batch.RealTargetTokens);
        log.CheckScalar("loss (LossSum / N)", stats.LossSum / f.Batch.RealTargetTokens, f.Loss, LossTolerance);
        log.Check("logits", logits, f.Logits, f.LogitsShape, LogitsTolerance);
        log.CheckEqual("correct (argmax == target)", stats.Correct, ExpectedCorrect(f));
        log.AssertPassed(_output);
    }

    [Theory]
    [MemberData(nameof(Seq2SeqCases))]
    public void ForwardBackward_EveryGradient_MatchesPytorch(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var (model, workspace) = Build(f);
        // Not zero: the contract says ForwardBackward ADDS into the gradients, so start from a known
        // value and subtract it again; this also catches an engine that overwrites instead of adding.
        const float Preset = 0.25f;
        var gradients = new float[f.Parameters.Length];
        Array.Fill(gradients, Preset);

        workspace.ForwardBackward(f.Batch, gradients, lossScale: 1f / f.Batch.RealTargetTokens);

        var log = new ParityLog($"{name}: gradients of the mean loss vs PyTorch (engine value minus the preset {Preset})");
        foreach (var slot in model.Layout.Slots)
        {
            var actual = gradients.AsSpan(slot.Offset, slot.Length).ToArray();
            for (int i = 0; i < actual.Length; i++)
                actual[i] -= Preset;
            log.Check(slot.Name, actual, f.Gradients.AsSpan(slot.Offset, slot.Length), slot.Shape, GradientTolerance);
        }
        log.AssertPassed(_output);
    }

    [Theory]
    [MemberData(nameof(Seq2SeqCases))]
    public void RmsProp_TenSteps_LossesMatchPytorch(string name)
    {
        var f = PytorchFixture.LoadSeq2Seq(name);
        var (model, workspace) = Build(f);
        var r = f.RmsProp;
        int n = f.Batch.RealTargetTokens;
        var gradients = new float[f.Parameters.Length];
        var meanSquare = new float[f.Parameters.Length];

        var log = new ParityLog($"{name}: {r.Steps} Keras RMSprop steps (lr {r.LearningRate}, rho {r.Rho}, eps {r.Epsilon}) vs PyTorch");
        for (int step = 0; step < r.Steps; step++)
        {
            Array.Clear(gradients);
            var stats = workspace.ForwardBackward(f.Batch, gradients, lossScale: 1f / n);
            log.CheckScalar($"step {step} loss", stats.LossSum / n, r.Losses[step], StepLossTolerance);
            KernelOps.RmsPropUpdate(model.Parameters, gradients, meanSquare, r.LearningRate, r.Rho, r.Epsilon);
        }
        foreach (var slot in model.Layout.Slots)
        {
            log.Check("final " + slot.Name, model.Parameters.AsSpan(slot.Offset, slot.Length),
                r.FinalParameters.AsSpan(slot.Offset, slot.Length), slot.Shape, StepParameterTolerance);
        }
        log.AssertPassed(_output);
    }

    [Fact]
    public void EveryFixtureFile_IsCoveredByATest()
    {
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures"), "pytorch_*.json")
            .Select(p => Path.GetFileNameWithoutExtension(p)["pytorch_".Length..])
            .Order(StringComparer.Ordinal)
            .ToArray();
        var covered = PytorchFixture.Seq2SeqCases.Append(LstmLayerFixtureTests.CaseName)
            .Append(RegularizedParityTests.CaseName).Append(RegularizedParityTests.BidirectionalCaseName).Append(Training.LearningRateScheduleTests.FixtureName).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(covered, files);
    }

    private static (Seq2SeqModel Model, TrainingWorkspace Workspace) Build(Seq2SeqFixture f)
    {
        // FromParameters takes ownership of the array: give it a copy so the fixture stays intact.
        var model = Seq2SeqModel.FromParameters(f.Config, (float[])f.Parameters.Clone());
        var workspace = new TrainingWorkspace(model, f.Batch.Size, f.Batch.SourceSteps, f.Batch.TargetSteps, threads: 1);
        return (model, workspace);
    }

    /// <summary>How many real target tokens PyTorch's logits predict correctly (argmax == target).</summary>
    private static int ExpectedCorrect(Seq2SeqFixture f)
    {
        int vocab = f.LogitsShape[1], row = 0, correct = 0;
        var batch = f.Batch;
        for (int b = 0; b < batch.Size; b++)
        {
            for (int t = 0; t < batch.TargetLengths[b]; t++, row++)
            {
                var logits = f.Logits.AsSpan(row * vocab, vocab);
                int best = 0;
                for (int v = 1; v < vocab; v++)
                {
                    if (logits[v] > logits[best])
                        best = v;
                }
                if (best == batch.DecoderTarget[b * batch.TargetSteps + t])
                    correct++;
            }
        }
        Assert.Equal(f.LogitsShape[0], row);
        return correct;
    }
}
