namespace Seqtalk.Text;

/// <summary>Settings for <see cref="WordTokenizer.Train"/>.</summary>
public sealed record WordTokenizerOptions
{
    /// <summary>Keep at most this many ids, the 4 special tokens included (like Keras <c>num_words</c>,
    /// which also counts its reserved id 0). Rarer words map to <c>&lt;unk&gt;</c>. <see langword="null"/> keeps all.</summary>
    public int? MaxVocabulary { get; init; }

    /// <summary>Keep only words seen at least this many times in the training texts. Default 1 (all).</summary>
    public int MinFrequency { get; init; } = 1;

    /// <summary>How texts are normalized before they are split.</summary>
    public TextNormalizerOptions Normalizer { get; init; } = new();
}

/// <summary>
/// Splits text into words and punctuation marks (<see cref="TextNormalizer.SplitWords"/>) and maps
/// them to ids with Keras <c>Tokenizer</c> semantics: ids by descending frequency, ties by first
/// occurrence, <c>num_words</c> and a minimum frequency, and unknown words as <c>&lt;unk&gt;</c>.
/// </summary>
public sealed class WordTokenizer : Tokenizer
{
    private WordTokenizer(Vocabulary vocabulary, TextNormalizer normalizer) : base(vocabulary, normalizer) { }

    /// <inheritdoc/>
    public override TokenizerKind Kind => TokenizerKind.Word;

    /// <summary>Builds the vocabulary from <paramref name="texts"/>.</summary>
    /// <param name="texts">The training texts (for example every answer).</param>
    /// <param name="options">The settings; <see langword="null"/> means the defaults.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="texts"/> or one of its items is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException"><see cref="WordTokenizerOptions.MaxVocabulary"/> is below 4 or
    /// <see cref="WordTokenizerOptions.MinFrequency"/> below 1.</exception>
    public static WordTokenizer Train(IEnumerable<string> texts, WordTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new WordTokenizerOptions();
        TokenCounter.CheckOptions(options.MaxVocabulary, options.MinFrequency);
        var normalizer = new TextNormalizer(options.Normalizer);
        var counter = new TokenCounter();
        foreach (string text in texts)
        {
            foreach (string word in normalizer.SplitWords(text)) counter.Add(word);
        }
        return new WordTokenizer(counter.Build(options.MaxVocabulary, options.MinFrequency), normalizer);
    }

    /// <summary>Makes a tokenizer from a saved vocabulary and the normalizer settings it was trained with.</summary>
    /// <param name="vocabulary">The vocabulary, for example from <see cref="Vocabulary.Load"/>.</param>
    /// <param name="normalizer">The normalizer settings used in training.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public static WordTokenizer Create(Vocabulary vocabulary, TextNormalizerOptions normalizer)
    {
        ArgumentNullException.ThrowIfNull(normalizer);
        return new WordTokenizer(vocabulary, new TextNormalizer(normalizer));
    }

    private protected override int Encode(string text, List<int>? ids, List<string>? pieces = null)
    {
        IReadOnlyList<string> words = Normalizer.SplitWords(text);
        if (ids is not null)
        {
            foreach (string word in words) ids.Add(Vocabulary.GetOrdinaryId(word));
        }
        pieces?.AddRange(words);
        return words.Count;
    }
}
