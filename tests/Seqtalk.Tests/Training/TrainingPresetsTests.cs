using Seqtalk.Nn;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.Training;

/// <summary>TrainingPresets: the tutorial preset is the defaults, the quality preset is valid and is the configuration
/// bench/quality.sh measures, and names resolve (or fail) as the CLI needs.</summary>
public class TrainingPresetsTests
{
    [Fact]
    public void Tutorial_IsTheDefaults()
    {
        Assert.Equal(new TrainingOptions(), TrainingPresets.Tutorial);
        Assert.Same(TrainingPresets.Tutorial, TrainingPresets.Get("tutorial"));
    }

    [Fact]
    public void Quality_IsValid_AndIsTheMeasuredConfiguration()
    {
        var q = TrainingPresets.Quality;
        q.Validate();
        Assert.Same(q, TrainingPresets.Get("Quality"));
        Assert.Equal(TokenizerKind.Bpe, q.Tokenizer);
        Assert.NotEqual(AttentionKind.None, q.Attention);
        Assert.NotNull(q.EarlyStoppingPatience);
        // The split is the tutorial's, so both are measured on the same validation rows.
        Assert.Equal(TrainingPresets.Tutorial.ValidationSize, q.ValidationSize);
        Assert.Equal(TrainingPresets.Tutorial.Split, q.Split);
        Assert.Equal(TrainingPresets.Tutorial.Seed, q.Seed);
        Assert.Equal(["tutorial", "quality"], TrainingPresets.Names);
    }

    [Fact]
    public void UnknownName_NamesThePresets()
    {
        var e = Assert.Throws<ArgumentException>(() => TrainingPresets.Get("fast"));
        Assert.Contains("'fast'", e.Message, StringComparison.Ordinal);
        Assert.Contains("tutorial and quality", e.Message, StringComparison.Ordinal);
    }
}
