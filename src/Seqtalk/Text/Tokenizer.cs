using System.Buffers;
using System.Text;

namespace Seqtalk.Text;

/// <summary>Which unit a <see cref="Tokenizer"/> splits text into.</summary>
public enum TokenizerKind
{
    /// <summary>Words and punctuation marks (<see cref="WordTokenizer"/>).</summary>
    Word,
    /// <summary>Unicode characters (code points), the space included (<see cref="CharTokenizer"/>).</summary>
    Character,
    /// <summary>Subwords learnt by byte-pair encoding inside words, with UTF-8 byte fallback (<see cref="BpeTokenizer"/>).</summary>
    Bpe,
}

/// <summary>
/// Turns text into token ids and ids back into text. A tokenizer is a <see cref="TextNormalizer"/>
/// plus a <see cref="Text.Vocabulary"/>; it is immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// Encoding never adds <c>&lt;s&gt;</c> or <c>&lt;/s&gt;</c> and never produces a special id other
/// than <c>&lt;unk&gt;</c>: text that spells a special token (<c>"&lt;s&gt;"</c>) is ordinary text.
/// For text whose tokens are all known, <c>Decode(EncodeToIds(x))</c> equals
/// <c>Normalizer.JoinWords(Normalizer.SplitWords(x))</c> for words and subwords (for subwords every
/// text is known) and <c>Normalizer.Normalize(x)</c> for characters; for ordinary text both are
/// <c>Normalize(x)</c>.
/// </remarks>
public abstract class Tokenizer
{
    private protected Tokenizer(Vocabulary vocabulary, TextNormalizer normalizer)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(normalizer);
        Vocabulary = vocabulary;
        Normalizer = normalizer;
    }

    /// <summary>Whether this tokenizer splits into words, characters or subwords.</summary>
    public abstract TokenizerKind Kind { get; }

    /// <summary>The token ↔ id map.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>The normalizer applied to every text before it is split.</summary>
    public TextNormalizer Normalizer { get; }

    /// <summary>Normalizes and splits <paramref name="text"/> and maps each token to its id; unknown tokens map to <see cref="SpecialTokens.UnknownId"/>.</summary>
    /// <param name="text">Any text; empty or whitespace-only text gives no ids.</param>
    /// <returns>The ids, without <c>&lt;s&gt;</c> or <c>&lt;/s&gt;</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public IReadOnlyList<int> EncodeToIds(string text)
    {
        var ids = new List<int>();
        Encode(text, ids);
        return ids;
    }

    /// <summary>The number of ids <see cref="EncodeToIds"/> returns for <paramref name="text"/>.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>The token count.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public int CountTokens(string text) => Encode(text, null);

    /// <summary>
    /// Turns ids into text: skips <c>&lt;pad&gt;</c> and <c>&lt;s&gt;</c>, stops at the first
    /// <c>&lt;/s&gt;</c>, and shows <c>&lt;unk&gt;</c> as the text <c>"&lt;unk&gt;"</c>. Words are
    /// joined as <see cref="TextNormalizer.JoinWords"/> does; characters are concatenated.
    /// </summary>
    /// <param name="ids">Token ids of this tokenizer's vocabulary.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="ids"/> is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException">An id is outside the vocabulary (the model and the vocabulary do not belong together).</exception>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return DecodeCore(ids);
    }

    /// <summary>The work of <see cref="Decode(IEnumerable{int})"/>; <paramref name="ids"/> is not null.</summary>
    private protected virtual string DecodeCore(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var joiner = new TokenJoiner(DecodeRule);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Vocabulary.Count)
                throw new SeqtalkException($"Token id {id} is outside the vocabulary of {Vocabulary.Count} tokens; the model and the vocabulary do not belong together.");
            if (id == SpecialTokens.EndId) break;
            if (id is SpecialTokens.PadId or SpecialTokens.StartId) continue;
            string token = Vocabulary.GetToken(id);
            if (joiner.SpaceBefore(token)) text.Append(' ');
            text.Append(token);
            joiner.Commit(token);
        }
        return text.ToString();
    }

    /// <summary>
    /// Writes the text of <paramref name="ids"/> into <paramref name="destination"/> with the rules of
    /// <see cref="Decode(IEnumerable{int})"/>, whole tokens only (a token's leading space goes with it).
    /// </summary>
    /// <param name="ids">Token ids of this tokenizer's vocabulary.</param>
    /// <param name="destination">Where to write the text.</param>
    /// <param name="idsConsumed">How many ids were used: written, skipped, and the <c>&lt;/s&gt;</c> that ended decoding.</param>
    /// <param name="charsWritten">How many characters were written; they are a prefix of the full text.</param>
    /// <returns><see cref="OperationStatus.Done"/> when all the text was written;
    /// <see cref="OperationStatus.DestinationTooSmall"/> when the next token did not fit (call again with a larger
    /// buffer, or with the remaining ids after a fresh start of text); <see cref="OperationStatus.InvalidData"/>
    /// when the next id is outside the vocabulary.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="ids"/> is <see langword="null"/>.</exception>
    public OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return DecodeCore(ids, destination, out idsConsumed, out charsWritten);
    }

    /// <summary>The work of <see cref="Decode(IEnumerable{int}, Span{char}, out int, out int)"/>; <paramref name="ids"/> is not null.</summary>
    private protected virtual OperationStatus DecodeCore(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        idsConsumed = 0;
        charsWritten = 0;
        var joiner = new TokenJoiner(DecodeRule);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Vocabulary.Count) return OperationStatus.InvalidData;
            if (id == SpecialTokens.EndId)
            {
                idsConsumed++;
                return OperationStatus.Done;
            }
            if (id is not (SpecialTokens.PadId or SpecialTokens.StartId))
            {
                string token = Vocabulary.GetToken(id);
                bool space = joiner.SpaceBefore(token);
                int needed = token.Length + (space ? 1 : 0);
                if (needed > destination.Length - charsWritten) return OperationStatus.DestinationTooSmall;
                if (space) destination[charsWritten++] = ' ';
                token.AsSpan().CopyTo(destination[charsWritten..]);
                charsWritten += token.Length;
                joiner.Commit(token);
            }
            idsConsumed++;
        }
        return OperationStatus.Done;
    }

    /// <summary>Writes the vocabulary to <c>{directory}/{prefix}.vocab.txt</c> (UTF-8, no BOM), replacing the file atomically;
    /// a <see cref="BpeTokenizer"/> also writes its merges to <c>{directory}/{prefix}.merges.txt</c>.
    /// The normalizer settings and the kind are not in those files; the caller keeps them in the model's config.</summary>
    /// <param name="directory">An existing or new directory.</param>
    /// <param name="prefix">The file name prefix, such as <c>source</c> or <c>target</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="prefix"/> is empty or holds a path separator.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="directory"/> or <paramref name="prefix"/> is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException">The file cannot be written; the message names it.</exception>
    public void Save(string directory, string prefix)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (prefix.AsSpan().IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || prefix.Contains('/', StringComparison.Ordinal))
            throw new ArgumentException($"The prefix '{prefix}' must be a plain file name.", nameof(prefix));

        string path = Path.Combine(directory, prefix + ".vocab.txt");
        string temp = path + ".tmp";
        try
        {
            Directory.CreateDirectory(directory);
            using (var writer = new StreamWriter(temp, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                Vocabulary.Save(writer);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot write the vocabulary file {path}: {e.Message}", e);
        }
        SaveExtraFiles(directory, prefix);
    }

    /// <summary>Writes the files a tokenizer needs beside its vocabulary (the BPE merges); none by default.</summary>
    /// <exception cref="SeqtalkException">A file cannot be written; the message names it.</exception>
    private protected virtual void SaveExtraFiles(string directory, string prefix) { }

    /// <summary>How words are joined: one space in tutorial mode, <see cref="TextNormalizer.JoinWords"/>'s punctuation rule otherwise.</summary>
    private protected JoinRule WordJoinRule => Normalizer.Options.Mode == NormalizationMode.Tutorial ? JoinRule.Spaces : JoinRule.Punctuation;

    /// <summary>How decoded tokens are joined: spaces between words as <see cref="TextNormalizer.JoinWords"/> puts them, none between characters.</summary>
    private JoinRule DecodeRule => Kind == TokenizerKind.Character ? JoinRule.None : WordJoinRule;

    /// <summary>Normalizes and splits <paramref name="text"/>, appends the ids to <paramref name="ids"/> when it is not null
    /// (and, aligned with them, the pieces to <paramref name="pieces"/> when it is not null: see <see cref="EncodeToPieces"/>),
    /// and returns how many there are.</summary>
    private protected abstract int Encode(string text, List<int>? ids, List<string>? pieces = null);

    /// <summary>
    /// Encodes <paramref name="text"/> as <see cref="EncodeToIds"/> does (the same ids, appended to <paramref name="ids"/>) and
    /// appends, aligned with them, the piece of normalized text each id was looked up from: the word (word tokenizer) or the
    /// character (character tokenizer) that the vocabulary knew or turned into <c>&lt;unk&gt;</c>. A BPE tokenizer never
    /// produces <c>&lt;unk&gt;</c>; its pieces are the vocabulary tokens themselves (marker and byte tokens as written).
    /// Evaluation uses the pieces to charge the spelling of the text behind each <c>&lt;unk&gt;</c>.
    /// </summary>
    internal void EncodeToPieces(string text, List<int> ids, List<string> pieces) => Encode(text, ids, pieces);
}
