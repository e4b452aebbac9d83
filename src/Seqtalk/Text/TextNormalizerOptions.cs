namespace Seqtalk.Text;

/// <summary>How <see cref="TextNormalizer"/> treats characters that are not letters or digits.</summary>
public enum NormalizationMode
{
    /// <summary>
    /// Punctuation and symbols are kept. <see cref="TextNormalizer.SplitWords"/> makes each of them
    /// a token of its own, and <see cref="TextNormalizer.JoinWords"/> puts them back in place, so
    /// replies keep their <c>?</c>, <c>.</c> and <c>!</c>.
    /// </summary>
    Default,

    /// <summary>
    /// The Keras tutorial's cleaning: every character that is not a letter, a combining mark, a digit
    /// or <c>_</c> becomes a space (Unicode-aware, so Hangul stays).
    /// </summary>
    Tutorial,
}

/// <summary>Settings of a <see cref="TextNormalizer"/>.</summary>
public sealed record TextNormalizerOptions
{
    /// <summary>What happens to punctuation and symbols. Default: <see cref="NormalizationMode.Default"/>.</summary>
    public NormalizationMode Mode { get; init; } = NormalizationMode.Default;

    /// <summary>Lower-case the text (invariant culture) before anything else. Default: <see langword="false"/>.</summary>
    public bool Lowercase { get; init; }
}
