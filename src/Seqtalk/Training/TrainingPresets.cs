using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>
/// Named sets of <see cref="TrainingOptions"/>: <c>tutorial</c>, the Keras tutorial's model (the defaults), and
/// <c>quality</c>, the configuration measured against it on ChatbotData.csv (bench/quality.sh,
/// bench/results/quality-*.md). A preset is a starting point: change any property with <c>with { … }</c>, as
/// <c>seqtalk train --preset NAME</c> does with every option given beside it.
/// </summary>
public static class TrainingPresets
{
    /// <summary>Name of <see cref="Tutorial"/>.</summary>
    public const string TutorialName = "tutorial";
    /// <summary>Name of <see cref="Quality"/>.</summary>
    public const string QualityName = "quality";

    /// <summary>The Keras tutorial's configuration: word tokens, embedding 50, one LSTM(50) layer on each side, no
    /// attention, RMSprop 1e-3, batch 128, 20 epochs. The same as <c>new TrainingOptions()</c>.</summary>
    public static TrainingOptions Tutorial { get; } = new();

    /// <summary>Better answers than <see cref="Tutorial"/>: BPE subwords (never <c>&lt;unk&gt;</c>), general (Luong)
    /// attention, embedding 128 and hidden 256, dropout, Adam with gradient clipping and reduce-on-plateau, and up to
    /// 100 epochs with early stopping after 3 epochs without a better validation loss. docs/cli.md lists the values.</summary>
    public static TrainingOptions Quality { get; } = new()
    {
        Tokenizer = TokenizerKind.Bpe,
        BpeVocabularySize = 4000,
        Attention = AttentionKind.General,
        EmbeddingDim = 128,
        HiddenDim = 256,
        Dropout = 0.5f,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 1e-3f,
        ClipNorm = 5f,
        PlateauFactor = 0.5,
        PlateauPatience = 1,
        Epochs = 100,
        EarlyStoppingPatience = 3,
    };

    /// <summary>The preset names, in the order help text lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = [TutorialName, QualityName];

    /// <summary>The preset called <paramref name="name"/> (ignoring case).</summary>
    /// <param name="name">A name from <see cref="Names"/>.</param>
    /// <returns>The preset's options.</returns>
    /// <exception cref="ArgumentException">No preset has that name.</exception>
    public static TrainingOptions Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.ToLowerInvariant() switch
        {
            TutorialName => Tutorial,
            QualityName => Quality,
            _ => throw new ArgumentException($"There is no preset '{name}'; the presets are {string.Join(" and ", Names)}.", nameof(name)),
        };
    }
}
