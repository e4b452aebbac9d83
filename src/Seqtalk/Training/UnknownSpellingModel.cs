using System.Globalization;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>
/// The character model that prices the spelling of the text behind an <c>&lt;unk&gt;</c> answer token, so that
/// <see cref="EvaluationResult.BitsPerCharacter"/> is a complete code length of the reference for every tokenizer (the
/// "unknown-word spelling cost" of open-vocabulary language model evaluation): a word or character model that predicts
/// <c>&lt;unk&gt;</c> pays −log₂ p(<c>&lt;unk&gt;</c>) and then these bits to say which word it was, as a BPE model pays
/// to spell every word it does not hold whole.
/// </summary>
/// <remarks>
/// A unigram over characters (Unicode text elements, as <see cref="Evaluator.CountCharacters"/> counts them) with an
/// end-of-piece symbol, fit on the ordinary tokens of the target vocabulary, each token once (the special tokens
/// excluded), add-one smoothed over the characters seen, the end symbol and one slot that all unseen characters share.
/// Effectively, with n(c) the occurrences of character c in the tokens, N = Σ n(c), E the number of tokens and K the
/// number of distinct characters:
/// <code>
///   Z = N + E + K + 2
///   P(c) = (n(c) + 1) / Z      P(end) = (E + 1) / Z      P(any unseen character) = 1 / Z
///   Bits(w) = −Σ over the characters c of w of log₂ P(c) − log₂ P(end)
/// </code>
/// It needs nothing beyond the model directory and works on any evaluation file. <c>&lt;unk&gt;</c> words are rare
/// types, so a type-level character distribution (each vocabulary word once) suits them better than one weighted by
/// token frequency, which the few most frequent short words dominate. A character tokenizer's <c>&lt;unk&gt;</c> is one
/// character missing from its vocabulary, so it costs the unseen slot plus the end symbol, by the same formula. The
/// unseen slot does not say which unseen character it was; such characters are rare enough that this is left out.
/// </remarks>
internal sealed class UnknownSpellingModel
{
    private readonly Dictionary<string, double> _characterBits;
    private readonly Dictionary<string, double>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    private UnknownSpellingModel(Dictionary<string, double> characterBits, double unseenBits, double endBits)
    {
        _characterBits = characterBits;
        _lookup = characterBits.GetAlternateLookup<ReadOnlySpan<char>>();
        UnseenCharacterBits = unseenBits;
        EndBits = endBits;
    }

    /// <summary>−log₂ P(any unseen character).</summary>
    public double UnseenCharacterBits { get; }

    /// <summary>−log₂ P(end of piece).</summary>
    public double EndBits { get; }

    /// <summary>Distinct characters seen in the vocabulary (K).</summary>
    public int SeenCharacters => _characterBits.Count;

    /// <summary>Fits the model on the ordinary tokens (ids from <see cref="SpecialTokens.Count"/> on) of <paramref name="vocabulary"/>.</summary>
    public static UnknownSpellingModel Fit(Vocabulary vocabulary)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        long characters = 0, entries = 0;
        for (int id = SpecialTokens.Count; id < vocabulary.Count; id++)
        {
            ReadOnlySpan<char> token = vocabulary.GetToken(id);
            entries++;
            while (!token.IsEmpty)
            {
                int n = StringInfo.GetNextTextElementLength(token);
                lookup[token[..n]] = lookup.TryGetValue(token[..n], out long count) ? count + 1 : 1;
                characters++;
                token = token[n..];
            }
        }
        double z = characters + entries + counts.Count + 2;
        var bits = new Dictionary<string, double>(counts.Count, StringComparer.Ordinal);
        foreach (var (c, count) in counts) bits[c] = -Math.Log2((count + 1) / z);
        return new UnknownSpellingModel(bits, -Math.Log2(1 / z), -Math.Log2((entries + 1) / z));
    }

    /// <summary>The bits to spell <paramref name="piece"/>: each character's, then the end symbol's.</summary>
    public double Bits(ReadOnlySpan<char> piece)
    {
        double bits = EndBits;
        while (!piece.IsEmpty)
        {
            int n = StringInfo.GetNextTextElementLength(piece);
            bits += _lookup.TryGetValue(piece[..n], out double b) ? b : UnseenCharacterBits;
            piece = piece[n..];
        }
        return bits;
    }
}
