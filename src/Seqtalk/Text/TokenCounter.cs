using System.Runtime.InteropServices;

namespace Seqtalk.Text;

/// <summary>
/// Counts tokens the way Keras' <c>Tokenizer.fit_on_texts</c> does and builds a vocabulary from the
/// counts: ordinary ids by descending frequency, ties broken by first occurrence.
/// </summary>
internal sealed class TokenCounter
{
    private readonly Dictionary<string, int> slots = new(StringComparer.Ordinal);
    private readonly List<(string Token, int Count)> entries = [];

    /// <summary>Counts one occurrence of <paramref name="token"/>. Texts spelling a special token are never split
    /// out by the normalizer; should one ever arrive it is ignored, so it can never take a special id.</summary>
    public void Add(string token)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(slots, token, out bool exists);
        if (!exists)
        {
            if (IsSpecial(token))
            {
                slots.Remove(token);
                return;
            }
            slot = entries.Count;
            entries.Add((token, 0));
        }
        var entry = entries[slot];
        entries[slot] = (entry.Token, entry.Count + 1);
    }

    /// <summary>Builds the vocabulary: tokens seen at least <paramref name="minFrequency"/> times, most frequent first,
    /// at most <paramref name="maxVocabulary"/> ids in all (the 4 specials included).</summary>
    /// <exception cref="SeqtalkException">An option is out of range.</exception>
    public Vocabulary Build(int? maxVocabulary, int minFrequency)
    {
        CheckOptions(maxVocabulary, minFrequency);
        var order = Enumerable.Range(0, entries.Count)
            .Where(i => entries[i].Count >= minFrequency)
            .OrderByDescending(i => entries[i].Count)   // OrderBy is stable: ties keep first-occurrence order
            .Select(i => entries[i].Token);
        if (maxVocabulary is int max) order = order.Take(max - SpecialTokens.Count);
        return Vocabulary.FromOrdinaryTokens(order);
    }

    /// <summary>Rejects options no vocabulary can satisfy.</summary>
    /// <exception cref="SeqtalkException">An option is out of range.</exception>
    public static void CheckOptions(int? maxVocabulary, int minFrequency)
    {
        if (maxVocabulary < SpecialTokens.Count)
            throw new SeqtalkException($"MaxVocabulary is {maxVocabulary}; it counts the {SpecialTokens.Count} special tokens, so it must be at least {SpecialTokens.Count}.");
        if (minFrequency < 1)
            throw new SeqtalkException($"MinFrequency is {minFrequency}; it must be at least 1.");
    }

    private static bool IsSpecial(string token)
    {
        foreach (string special in SpecialTokens.All)
        {
            if (token == special) return true;
        }
        return false;
    }
}
