using System.Text.Json;
using Seqtalk.Tests.Parity;
using Seqtalk.Training;

namespace Seqtalk.Tests.Training;

/// <summary>LearningRateSchedule: its values by hand, against torch.optim.lr_scheduler (fixture lr_schedule), and
/// resuming from a stored state.</summary>
public class LearningRateScheduleTests
{
    public const string FixtureName = "lr_schedule";

    private static double[] Rates(JsonElement e) => e.GetProperty("rates").EnumerateArray().Select(x => x.GetDouble()).ToArray();

    [Fact]
    public void Defaults_GiveTheBaseRate_BitForBit()
    {
        var options = new TrainingOptions { LearningRate = 0.0013f };
        var s = new LearningRateSchedule(options);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            for (int i = 0; i < 5; i++) Assert.Equal(0.0013f, s.NextStep());
            s.EndEpoch(1.0 + epoch);   // getting worse: no plateau rule is on, nothing changes
        }
        Assert.Equal(new LearningRateScheduleState(15, 3, 1.0, double.PositiveInfinity, 0), s.State);
    }

    [Fact]
    public void Warmup_MatchesPytorchLinearLR()
    {
        using var doc = PytorchFixture.Open(FixtureName, "lr_schedule");
        var w = doc.RootElement.GetProperty("warmup");
        var s = new LearningRateSchedule(new TrainingOptions { LearningRate = (float)doc.RootElement.GetProperty("base_lr").GetDouble(), WarmupSteps = w.GetProperty("warmup_steps").GetInt32() });
        var expected = Rates(w);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], s.NextStep(), 1e-9);
        Assert.Equal(0.0002, new LearningRateSchedule(new TrainingOptions { WarmupSteps = 5 }).NextStep(), 1e-9);   // step 1 of 5: a fifth
    }

    [Fact]
    public void ExponentialDecay_MatchesPytorchExponentialLR_AndStartsAfterTheGivenEpoch()
    {
        using var doc = PytorchFixture.Open(FixtureName, "lr_schedule");
        var d = doc.RootElement.GetProperty("decay");
        float lr = (float)doc.RootElement.GetProperty("base_lr").GetDouble();
        var s = new LearningRateSchedule(new TrainingOptions { LearningRate = lr, LearningRateDecay = d.GetProperty("gamma").GetDouble() });
        foreach (double expected in Rates(d))
        {
            Assert.Equal(expected, s.NextStep(), 1e-9);
            Assert.Equal(expected, s.NextStep(), 1e-9);   // constant within an epoch
            s.EndEpoch(null);
        }
        // Start 3: epochs 1..3 at the full rate, then ×0.5 per epoch; the minimum holds the floor.
        var late = new LearningRateSchedule(new TrainingOptions { LearningRate = 1f, LearningRateDecay = 0.5, LearningRateDecayStart = 3, MinLearningRate = 0.2 });
        var seen = new List<float>();
        for (int e = 0; e < 6; e++) { seen.Add(late.NextStep()); late.EndEpoch(null); }
        Assert.Equal([1f, 1f, 1f, 0.5f, 0.25f, 0.2f], seen);
    }

    [Fact]
    public void ReduceOnPlateau_MatchesPytorchReduceLROnPlateau()
    {
        using var doc = PytorchFixture.Open(FixtureName, "lr_schedule");
        var p = doc.RootElement.GetProperty("plateau");
        var options = new TrainingOptions
        {
            LearningRate = (float)doc.RootElement.GetProperty("base_lr").GetDouble(),
            PlateauFactor = p.GetProperty("factor").GetDouble(),
            PlateauPatience = p.GetProperty("patience").GetInt32(),
            MinLearningRate = p.GetProperty("min_lr").GetDouble(),
        };
        var losses = p.GetProperty("validation_losses").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var expected = Rates(p);
        var s = new LearningRateSchedule(options);
        for (int e = 0; e < losses.Length; e++)
        {
            Assert.Equal(expected[e], s.NextStep(), 1e-9);
            s.EndEpoch(losses[e]);
        }
        Assert.Contains(expected, r => r < 1e-3);   // the fixture does reduce
    }

    [Fact]
    public void ResumingFromTheState_ContinuesExactly()
    {
        var options = new TrainingOptions { WarmupSteps = 7, LearningRateDecay = 0.9, PlateauFactor = 0.5, PlateauPatience = 0 };
        double[] losses = [2, 1.5, 1.6, 1.4, 1.45, 1.3];
        var full = new LearningRateSchedule(options);
        var rates = new List<float>();
        LearningRateScheduleState? saved = null;
        for (int e = 0; e < losses.Length; e++)
        {
            if (e == 3) saved = full.State;
            for (int i = 0; i < 3; i++) rates.Add(full.NextStep());
            full.EndEpoch(losses[e]);
        }
        var resumed = new LearningRateSchedule(options, saved);
        var tail = new List<float>();
        for (int e = 3; e < losses.Length; e++)
        {
            for (int i = 0; i < 3; i++) tail.Add(resumed.NextStep());
            resumed.EndEpoch(losses[e]);
        }
        Assert.Equal(rates.Skip(9), tail);
        Assert.Equal(full.State, resumed.State);
        Assert.True(full.State.PlateauScale < 1);   // the plateau rule fired along the way
    }

    [Theory]
    [InlineData(nameof(TrainingOptions.Dropout))]
    [InlineData(nameof(TrainingOptions.LabelSmoothing))]
    [InlineData(nameof(TrainingOptions.WarmupSteps))]
    [InlineData(nameof(TrainingOptions.LearningRateDecay))]
    [InlineData(nameof(TrainingOptions.PlateauFactor))]
    [InlineData("PlateauWithoutValidation")]
    [InlineData(nameof(TrainingOptions.MinLearningRate))]
    [InlineData(nameof(TrainingOptions.TiedEmbeddings))]
    public void Validate_NamesTheBadOption(string property)
    {
        var bad = property switch
        {
            nameof(TrainingOptions.Dropout) => new TrainingOptions { Dropout = 1f },
            nameof(TrainingOptions.LabelSmoothing) => new TrainingOptions { LabelSmoothing = -0.1f },
            nameof(TrainingOptions.WarmupSteps) => new TrainingOptions { WarmupSteps = -1 },
            nameof(TrainingOptions.LearningRateDecay) => new TrainingOptions { LearningRateDecay = 1.5 },
            nameof(TrainingOptions.PlateauFactor) => new TrainingOptions { PlateauFactor = 1.0 },
            "PlateauWithoutValidation" => new TrainingOptions { PlateauFactor = 0.5, ValidationSize = 0 },
            nameof(TrainingOptions.MinLearningRate) => new TrainingOptions { MinLearningRate = 1.0 },
            _ => new TrainingOptions { TiedEmbeddings = true, EmbeddingDim = 32, HiddenDim = 64 },
        };
        string expected = property == "PlateauWithoutValidation" ? nameof(TrainingOptions.PlateauFactor) : property;
        Assert.Equal(expected, Assert.Throws<ArgumentOutOfRangeException>(bad.Validate).ParamName);
    }
}
