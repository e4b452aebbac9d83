using System.Runtime.InteropServices;
using System.Text;

namespace Seqtalk.Text;

/// <summary>
/// Learns BPE merges (Sennrich, Haddow and Birch 2016, "Neural Machine Translation of Rare Words with
/// Subword Units", https://arxiv.org/abs/1508.07909) over the distinct words of the training texts,
/// each weighted by its count. Pair counts are kept incrementally, as in Hugging Face <c>tokenizers</c>'
/// BpeTrainer (Apache-2.0; the idea, not the code): every pair remembers the words it occurs in, a merge
/// touches only those words, and a heap with lazily discarded stale entries yields the next best pair.
/// </summary>
/// <remarks>
/// Order, so that the same texts always give the same merges: highest count first, then the ordinal
/// (UTF-16) order of the left token's text, then of the right token's text. Words start with the marker
/// <see cref="BpeTokenizer.WordStart"/>; byte tokens (characters left out of the alphabet) never merge.
/// </remarks>
internal static class BpeTrainer
{
    /// <summary>The vocabulary (all tokens in id order) and the merges in rank order.</summary>
    public static (List<string> Tokens, List<BpeMerge> Merges) Learn(IEnumerable<string> texts, BpeTokenizerOptions options)
    {
        var normalizer = new TextNormalizer(options.Normalizer);

        // Distinct words with their counts, in first-occurrence order.
        var wordSlots = new Dictionary<string, int>(StringComparer.Ordinal);
        var words = new List<string>();
        var wordCounts = new List<long>();
        foreach (string text in texts)
        {
            ArgumentNullException.ThrowIfNull(text, nameof(texts));
            foreach (string word in normalizer.SplitWords(text))
            {
                ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(wordSlots, word, out bool exists);
                if (!exists)
                {
                    slot = words.Count;
                    words.Add(word);
                    wordCounts.Add(0);
                }
                wordCounts[slot]++;
            }
        }

        // The alphabet: every character of the words but the marker itself, most frequent first, ties by first
        // occurrence; when the vocabulary size leaves no room for all, the rarest fall back to byte tokens.
        var charSlots = new Dictionary<string, int>(StringComparer.Ordinal);
        var chars = new List<(string Text, long Count)>();
        for (int w = 0; w < words.Count; w++)
        {
            string word = words[w];
            for (int i = 0; i < word.Length;)
            {
                int n = CharLength(word, i);
                string c = word.Substring(i, n);
                i += n;
                if (c == BpeTokenizer.WordStart) continue;
                ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(charSlots, c, out bool exists);
                if (!exists)
                {
                    slot = chars.Count;
                    chars.Add((c, 0));
                }
                chars[slot] = (c, chars[slot].Count + wordCounts[w]);
            }
        }

        var tokens = new List<string>(options.VocabularySize);
        tokens.AddRange(SpecialTokens.All);
        for (int b = 0; b < 256; b++) tokens.Add(BpeTokenizer.ByteToken((byte)b));
        tokens.Add(BpeTokenizer.WordStart);
        tokens.AddRange(chars.Select((c, i) => (c, i)).OrderByDescending(x => x.c.Count).ThenBy(x => x.i)
            .Take(options.VocabularySize - BpeTokenizer.FirstCharacterId).Select(x => x.c.Text));
        var tokenIds = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Count; id++) tokenIds.Add(tokens[id], id);

        // Each word as symbol ids: the marker, then characters (or their UTF-8 bytes).
        var symbols = new int[words.Count][];
        var lengths = new int[words.Count];
        var buffer = new List<int>();
        Span<byte> utf8 = stackalloc byte[4];
        for (int w = 0; w < words.Count; w++)
        {
            string word = words[w];
            buffer.Clear();
            buffer.Add(BpeTokenizer.WordStartId);
            for (int i = 0; i < word.Length;)
            {
                int n = CharLength(word, i);
                if (tokenIds.TryGetValue(word.Substring(i, n), out int id) && id >= BpeTokenizer.FirstCharacterId)
                {
                    buffer.Add(id);
                }
                else
                {
                    int written = Rune.GetRuneAt(word, i).EncodeToUtf8(utf8);
                    for (int b = 0; b < written; b++) buffer.Add(BpeTokenizer.FirstByteId + utf8[b]);
                }
                i += n;
            }
            symbols[w] = [.. buffer];
            lengths[w] = buffer.Count;
        }

        // Pair counts, where each pair occurs, and the heap of candidates.
        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Count; w++)
        {
            int[] s = symbols[w];
            for (int i = 0; i + 1 < lengths[w]; i++)
            {
                if (!Mergeable(s[i], s[i + 1])) continue;
                long key = BpeTokenizer.PairKey(s[i], s[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, key, out _) += wordCounts[w];
                (CollectionsMarshal.GetValueRefOrAddDefault(pairWords, key, out _) ??= []).Add(w);
            }
        }
        var heap = new PriorityQueue<long, (long Count, long Pair)>(new PairOrder(tokens));
        foreach (var (key, count) in pairCounts) heap.Enqueue(key, (count, key));

        var merges = new List<BpeMerge>();
        var forbidden = new HashSet<long>();
        var deltas = new Dictionary<long, long>();
        while (tokens.Count < options.VocabularySize && heap.TryDequeue(out long pair, out var entry))
        {
            if (!pairCounts.TryGetValue(pair, out long current) || current != entry.Count || forbidden.Contains(pair)) continue;   // stale
            if (current < options.MinPairFrequency) break;   // the best valid pair is too rare, so all are

            int left = (int)(pair >> 32), right = (int)pair;
            string merged = tokens[left] + tokens[right];
            bool exists = tokenIds.TryGetValue(merged, out int result);
            // A merged token must be valid vocabulary text and must not spell a reserved token (it never does for
            // normalizer words, whose '<' and '>' are words of their own; this keeps decoding unambiguous regardless).
            if ((exists && result < BpeTokenizer.FirstCharacterId) || !TextNormalizer.IsEmittable(merged, out _))
            {
                forbidden.Add(pair);
                continue;
            }
            if (!exists)
            {
                result = tokens.Count;
                tokens.Add(merged);
                tokenIds.Add(merged, result);
            }
            merges.Add(new BpeMerge(tokens[left], tokens[right]));

            // Re-count only the words holding the pair: take their pairs out, merge, put the new pairs in.
            deltas.Clear();
            foreach (int w in pairWords[pair])
            {
                int[] s = symbols[w];
                int length = lengths[w];
                if (!Contains(s, length, left, right)) continue;
                long count = wordCounts[w];
                AddPairs(s, length, -count, deltas, null, 0);
                int kept = 0;
                for (int i = 0; i < length;)
                {
                    if (i + 1 < length && s[i] == left && s[i + 1] == right)
                    {
                        s[kept++] = result;
                        i += 2;
                    }
                    else
                    {
                        s[kept++] = s[i++];
                    }
                }
                lengths[w] = kept;
                AddPairs(s, kept, count, deltas, pairWords, w);
            }
            pairWords.Remove(pair);
            foreach (var (key, delta) in deltas)
            {
                if (delta == 0) continue;
                ref long slot = ref CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, key, out _);
                slot += delta;
                if (slot <= 0)
                {
                    pairCounts.Remove(key);
                    pairWords.Remove(key);
                }
                else
                {
                    heap.Enqueue(key, (slot, key));
                }
            }
        }
        return (tokens, merges);
    }

    private static bool Mergeable(int left, int right) => left >= BpeTokenizer.WordStartId && right >= BpeTokenizer.FirstCharacterId;

    private static bool Contains(int[] s, int length, int left, int right)
    {
        for (int i = 0; i + 1 < length; i++)
        {
            if (s[i] == left && s[i + 1] == right) return true;
        }
        return false;
    }

    /// <summary>Adds <paramref name="count"/> for every mergeable pair of the word to <paramref name="deltas"/>,
    /// and records the word under each pair in <paramref name="pairWords"/> when it is given.</summary>
    private static void AddPairs(int[] s, int length, long count, Dictionary<long, long> deltas, Dictionary<long, HashSet<int>>? pairWords, int word)
    {
        for (int i = 0; i + 1 < length; i++)
        {
            if (!Mergeable(s[i], s[i + 1])) continue;
            long key = BpeTokenizer.PairKey(s[i], s[i + 1]);
            CollectionsMarshal.GetValueRefOrAddDefault(deltas, key, out _) += count;
            if (pairWords is not null) (CollectionsMarshal.GetValueRefOrAddDefault(pairWords, key, out _) ??= []).Add(word);
        }
    }

    private static int CharLength(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;

    /// <summary>Heap order: higher count first, then the left token's text, then the right token's text (ordinal).</summary>
    private sealed class PairOrder(List<string> tokens) : IComparer<(long Count, long Pair)>
    {
        public int Compare((long Count, long Pair) x, (long Count, long Pair) y)
        {
            if (x.Count != y.Count) return y.Count.CompareTo(x.Count);
            if (x.Pair == y.Pair) return 0;
            int c = string.CompareOrdinal(tokens[(int)(x.Pair >> 32)], tokens[(int)(y.Pair >> 32)]);
            return c != 0 ? c : string.CompareOrdinal(tokens[(int)x.Pair], tokens[(int)y.Pair]);
        }
    }
}
