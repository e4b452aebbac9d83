namespace Seqtalk.Text;

/// <summary>
/// The token ↔ id map of a tokenizer. Ids 0..3 are <see cref="SpecialTokens.All"/>; ordinary
/// tokens follow from id 4, most frequent first. Immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// File format (<see cref="Save"/>/<see cref="Load"/>): UTF-8 text, one token per line, each line
/// ended by <c>\n</c>; line i (1-based) holds id i − 1. The first four lines are
/// <c>&lt;pad&gt;</c>, <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>. A token never holds a
/// line break, because the normalizer never emits one; the character tokenizer's space token is a
/// line holding a single space.
/// </remarks>
public sealed class Vocabulary
{
    private readonly string[] tokens;
    private readonly Dictionary<string, int> ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> spanIds;

    private Vocabulary(string[] tokens, Dictionary<string, int> ids)
    {
        this.tokens = tokens;
        this.ids = ids;
        spanIds = ids.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Number of tokens, the 4 special tokens included.</summary>
    public int Count => tokens.Length;

    /// <summary>The id of <paramref name="token"/>, or <see cref="SpecialTokens.UnknownId"/> when it is not in the vocabulary.</summary>
    /// <param name="token">A token, compared ordinally. The special tokens map to their ids.</param>
    /// <returns>The id.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="token"/> is <see langword="null"/>.</exception>
    public int GetId(string token) => TryGetId(token, out int id) ? id : SpecialTokens.UnknownId;

    /// <summary>Looks up the id of <paramref name="token"/>.</summary>
    /// <param name="token">A token, compared ordinally. The special tokens map to their ids.</param>
    /// <param name="id">The id, or <see cref="SpecialTokens.UnknownId"/> when absent.</param>
    /// <returns>Whether the token is in the vocabulary.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="token"/> is <see langword="null"/>.</exception>
    public bool TryGetId(string token, out int id)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (ids.TryGetValue(token, out id)) return true;
        id = SpecialTokens.UnknownId;
        return false;
    }

    /// <summary>The token with id <paramref name="id"/>.</summary>
    /// <param name="id">An id in [0, <see cref="Count"/>).</param>
    /// <returns>The token.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside [0, <see cref="Count"/>).</exception>
    public string GetToken(int id)
    {
        if ((uint)id >= (uint)tokens.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"The vocabulary has {tokens.Length} tokens.");
        return tokens[id];
    }

    /// <summary>Writes the vocabulary: one token per line, each ended by <c>\n</c>, line i = id i − 1.</summary>
    /// <param name="writer">Where to write; use UTF-8 when it is a file.</param>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is <see langword="null"/>.</exception>
    /// <exception cref="IOException">The writer fails.</exception>
    public void Save(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (string token in tokens)
        {
            writer.Write(token);
            writer.Write('\n');
        }
    }

    /// <summary>Reads a vocabulary written by <see cref="Save"/> and checks it.</summary>
    /// <param name="reader">The text, one token per line.</param>
    /// <returns>The vocabulary.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException">The text is not a valid vocabulary: the special tokens are missing or
    /// misplaced, a token is duplicated, empty, or could not have come from the normalizer. The message names the line.</exception>
    /// <exception cref="IOException">The reader fails.</exception>
    public static Vocabulary Load(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            if (lines.Count == 0 && line.StartsWith('\uFEFF')) line = line[1..];
            lines.Add(line);
        }
        return FromTokens(lines);
    }

    /// <summary>Builds a vocabulary from the specials followed by <paramref name="ordinaryTokens"/>, in that order.</summary>
    /// <exception cref="SeqtalkException">A token is invalid or duplicated.</exception>
    internal static Vocabulary FromOrdinaryTokens(IEnumerable<string> ordinaryTokens) =>
        FromTokens([.. SpecialTokens.All, .. ordinaryTokens]);

    /// <summary>Builds a vocabulary from all its tokens, specials first, with the checks of <see cref="Load"/>.</summary>
    /// <exception cref="SeqtalkException">The specials are missing or misplaced, or a token is invalid or duplicated.</exception>
    internal static Vocabulary FromTokens(IReadOnlyList<string> allTokens)
    {
        if (allTokens.Count < SpecialTokens.Count)
        {
            throw new SeqtalkException(
                $"Vocabulary has {allTokens.Count} lines; the first {SpecialTokens.Count} must be the special tokens {string.Join(' ', SpecialTokens.All)}.");
        }

        var tokens = new string[allTokens.Count];
        var ids = new Dictionary<string, int>(allTokens.Count, StringComparer.Ordinal);
        for (int id = 0; id < allTokens.Count; id++)
        {
            string token = allTokens[id];
            int line = id + 1;
            if (id < SpecialTokens.Count)
            {
                if (token != SpecialTokens.All[id])
                    throw new SeqtalkException($"Vocabulary line {line}: expected the special token {SpecialTokens.All[id]} (id {id}) but found '{Shorten(token)}'.");
            }
            else if (ids.TryGetValue(token, out int first))
            {
                throw first < SpecialTokens.Count
                    ? new SeqtalkException($"Vocabulary line {line}: the special token {token} may only be on line {first + 1}.")
                    : new SeqtalkException($"Vocabulary line {line}: duplicate token '{Shorten(token)}' (first on line {first + 1}).");
            }
            else if (!TextNormalizer.IsEmittable(token, out string reason))
            {
                throw new SeqtalkException($"Vocabulary line {line}: invalid token '{Shorten(token)}': {reason}.");
            }
            tokens[id] = token;
            ids.Add(token, id);
        }
        return new Vocabulary(tokens, ids);
    }

    /// <summary>The id of an ordinary token; <see cref="SpecialTokens.UnknownId"/> when absent or when the text spells a special token.</summary>
    /// <remarks>Text is never split into a special token; this is a second guard so that text like
    /// <c>&lt;s&gt;</c> can never turn into a special id, whatever the splitting rules become.</remarks>
    internal int GetOrdinaryId(ReadOnlySpan<char> token) =>
        spanIds.TryGetValue(token, out int id) && id >= SpecialTokens.Count ? id : SpecialTokens.UnknownId;

    private static string Shorten(string token)
    {
        string shown = token.Length > 40 ? token[..40] + "…" : token;
        return shown.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
    }
}
