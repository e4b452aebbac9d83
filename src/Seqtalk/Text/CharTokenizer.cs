using System.Text;

namespace Seqtalk.Text;

/// <summary>Settings for <see cref="CharTokenizer.Train"/>.</summary>
public sealed record CharTokenizerOptions
{
    /// <summary>Keep at most this many ids, the 4 special tokens included; rarer characters map to
    /// <c>&lt;unk&gt;</c>. <see langword="null"/> keeps all.</summary>
    public int? MaxVocabulary { get; init; }

    /// <summary>Keep only characters seen at least this many times in the training texts. Default 1 (all).</summary>
    public int MinFrequency { get; init; } = 1;

    /// <summary>How texts are normalized before they are split.</summary>
    public TextNormalizerOptions Normalizer { get; init; } = new();
}

/// <summary>
/// Splits normalized text into Unicode characters (code points, so a surrogate pair is one token and
/// a Hangul syllable is one token). The space is a token of its own, so <see cref="Tokenizer.Decode(IEnumerable{int})"/>
/// reproduces the normalized text exactly when every character is known. Ids by descending frequency,
/// ties by first occurrence.
/// </summary>
public sealed class CharTokenizer : Tokenizer
{
    private CharTokenizer(Vocabulary vocabulary, TextNormalizer normalizer) : base(vocabulary, normalizer) { }

    /// <inheritdoc/>
    public override TokenizerKind Kind => TokenizerKind.Character;

    /// <summary>Builds the vocabulary from <paramref name="texts"/>.</summary>
    /// <param name="texts">The training texts.</param>
    /// <param name="options">The settings; <see langword="null"/> means the defaults.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="texts"/> or one of its items is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException"><see cref="CharTokenizerOptions.MaxVocabulary"/> is below 4 or
    /// <see cref="CharTokenizerOptions.MinFrequency"/> below 1.</exception>
    public static CharTokenizer Train(IEnumerable<string> texts, CharTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new CharTokenizerOptions();
        TokenCounter.CheckOptions(options.MaxVocabulary, options.MinFrequency);
        var normalizer = new TextNormalizer(options.Normalizer);
        var counter = new TokenCounter();
        foreach (string text in texts)
        {
            string s = normalizer.Normalize(text);
            for (int i = 0; i < s.Length;)
            {
                int n = Rune.GetRuneAt(s, i).Utf16SequenceLength;
                counter.Add(s.Substring(i, n));
                i += n;
            }
        }
        return new CharTokenizer(counter.Build(options.MaxVocabulary, options.MinFrequency), normalizer);
    }

    /// <summary>Makes a tokenizer from a saved vocabulary and the normalizer settings it was trained with.</summary>
    /// <param name="vocabulary">The vocabulary, for example from <see cref="Vocabulary.Load"/>.</param>
    /// <param name="normalizer">The normalizer settings used in training.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public static CharTokenizer Create(Vocabulary vocabulary, TextNormalizerOptions normalizer)
    {
        ArgumentNullException.ThrowIfNull(normalizer);
        return new CharTokenizer(vocabulary, new TextNormalizer(normalizer));
    }

    private protected override int Encode(string text, List<int>? ids, List<string>? pieces = null)
    {
        string s = Normalizer.Normalize(text);
        int count = 0;
        for (int i = 0; i < s.Length; count++)
        {
            int n = Rune.GetRuneAt(s, i).Utf16SequenceLength;
            ids?.Add(Vocabulary.GetOrdinaryId(s.AsSpan(i, n)));
            pieces?.Add(s.Substring(i, n));
            i += n;
        }
        return count;
    }
}
