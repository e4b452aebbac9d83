using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Seqtalk.Text;

/// <summary>Settings for <see cref="BpeTokenizer.Train"/>.</summary>
public sealed record BpeTokenizerOptions
{
    /// <summary>Default <see cref="VocabularySize"/>.</summary>
    public const int DefaultVocabularySize = 8000;
    /// <summary>The smallest <see cref="VocabularySize"/>: the 4 special tokens, the 256 byte tokens and the word-start marker.</summary>
    public const int MinimumVocabularySize = BpeTokenizer.FirstCharacterId;
    /// <summary>The largest <see cref="VocabularySize"/>.</summary>
    public const int MaximumVocabularySize = 1_000_000;
    /// <summary>Default <see cref="MinPairFrequency"/>.</summary>
    public const int DefaultMinPairFrequency = 2;

    /// <summary>Ids in all, the 4 special tokens, the 256 byte tokens and the word-start marker included. Training
    /// stops merging when the vocabulary is this large (or when no pair is frequent enough). Default 8000.</summary>
    public int VocabularySize { get; init; } = DefaultVocabularySize;

    /// <summary>Merge only pairs seen at least this many times in the training words. Default 2, so no merge
    /// only spells out a word seen once.</summary>
    public int MinPairFrequency { get; init; } = DefaultMinPairFrequency;

    /// <summary>How texts are normalized before they are split into words.</summary>
    public TextNormalizerOptions Normalizer { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (VocabularySize is < MinimumVocabularySize or > MaximumVocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(VocabularySize), VocabularySize,
                $"Must be between {MinimumVocabularySize} (4 special tokens, 256 byte tokens and the word-start marker) and {MaximumVocabularySize}.");
        }
        if (MinPairFrequency < 1) throw new ArgumentOutOfRangeException(nameof(MinPairFrequency), MinPairFrequency, "Must be at least 1.");
        ArgumentNullException.ThrowIfNull(Normalizer);
    }
}

/// <summary>One BPE merge: the adjacent tokens <see cref="Left"/> and <see cref="Right"/> become the token <c>Left + Right</c>.</summary>
/// <param name="Left">The left token; it starts with <see cref="BpeTokenizer.WordStart"/> when it begins a word.</param>
/// <param name="Right">The right token; it never starts with <see cref="BpeTokenizer.WordStart"/>.</param>
public readonly record struct BpeMerge(string Left, string Right);

/// <summary>
/// Byte-pair encoding inside words (Sennrich et al. 2016, with SentencePiece's word-start marker and
/// byte fallback). Text is normalized and split by <see cref="TextNormalizer.SplitWords"/>, so merges
/// never cross a word or take in punctuation; each word starts with the marker <c>▁</c> (U+2581) and
/// then its characters, which merges learnt on the training words join into subwords.
/// </summary>
/// <remarks>
/// <para>Vocabulary layout: ids 0–3 the special tokens, 4–259 the byte tokens <c>&lt;0x00&gt;</c>…<c>&lt;0xFF&gt;</c>,
/// 260 the marker <c>▁</c>, then every character of the training words (most frequent first), then the
/// merged tokens in merge order. A character not in the vocabulary is written as the byte tokens of its
/// UTF-8 form, so encoding never produces <c>&lt;unk&gt;</c> and <c>Decode(EncodeToIds(x))</c> is
/// <c>Normalizer.JoinWords(Normalizer.SplitWords(x))</c> for every text.</para>
/// <para>Encoding applies the merges in rank order (lowest rank first, leftmost first among equal ranks)
/// and caches the pieces of each word. Decoding joins pieces into words at each marker, turns runs of
/// byte tokens back into UTF-8 (an invalid sequence becomes U+FFFD) and joins the words as
/// <see cref="TextNormalizer.JoinWords"/> does.</para>
/// </remarks>
public sealed class BpeTokenizer : Tokenizer
{
    /// <summary>The word-start marker, U+2581 (SentencePiece's <c>▁</c>). The character itself in text is always byte-encoded, so the marker is never ambiguous.</summary>
    public const string WordStart = "\u2581";
    /// <summary>The id of byte token <c>&lt;0x00&gt;</c>; byte b has id <c>FirstByteId + b</c>.</summary>
    public const int FirstByteId = SpecialTokens.Count;
    /// <summary>The id of <see cref="WordStart"/>, right after the 256 byte tokens.</summary>
    public const int WordStartId = FirstByteId + 256;
    /// <summary>The first id after the reserved ones: characters, then merged tokens.</summary>
    public const int FirstCharacterId = WordStartId + 1;

    private const char WordStartChar = '\u2581';
    private const int CacheCapacity = 100_000;
    private const int MaxCachedWordLength = 64;

    private readonly BpeMerge[] _merges;
    private readonly Dictionary<long, (int Rank, int Result)> _mergeByPair;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private BpeTokenizer(Vocabulary vocabulary, TextNormalizer normalizer, BpeMerge[] merges, Dictionary<long, (int Rank, int Result)> mergeByPair)
        : base(vocabulary, normalizer)
    {
        _merges = merges;
        _mergeByPair = mergeByPair;
    }

    /// <inheritdoc/>
    public override TokenizerKind Kind => TokenizerKind.Bpe;

    /// <summary>The merges in rank order (rank 0 first), as learnt in training.</summary>
    public IReadOnlyList<BpeMerge> Merges => _merges;

    /// <summary>The text of the byte token for <paramref name="value"/>, such as <c>&lt;0xE3&gt;</c>.</summary>
    /// <param name="value">A byte.</param>
    /// <returns>The token.</returns>
    public static string ByteToken(byte value) => string.Create(CultureInfo.InvariantCulture, $"<0x{value:X2}>");

    /// <summary>Learns merges from the words of <paramref name="texts"/>: repeatedly merges the most frequent adjacent pair,
    /// ties broken by the ordinal (UTF-16) order of the left token, then of the right token.</summary>
    /// <param name="texts">The training texts (for example every answer).</param>
    /// <param name="options">The settings; <see langword="null"/> means the defaults.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="texts"/> or one of its items is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="BpeTokenizerOptions.Validate"/>).</exception>
    public static BpeTokenizer Train(IEnumerable<string> texts, BpeTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new BpeTokenizerOptions();
        options.Validate();
        var (tokens, merges) = BpeTrainer.Learn(texts, options);
        return FromMerges(Vocabulary.FromTokens(tokens), merges, options.Normalizer, "Vocabulary", "Merges", i => i + 1);
    }

    /// <summary>Makes a tokenizer from a saved vocabulary, its merges file and the normalizer settings it was trained with.</summary>
    /// <param name="vocabulary">The vocabulary, for example from <see cref="Vocabulary.Load"/>.</param>
    /// <param name="merges">The merges text written by <see cref="SaveMerges"/>: one merge per line, <c>left right</c>.</param>
    /// <param name="normalizer">The normalizer settings used in training.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException">The vocabulary is not a BPE vocabulary or the merges do not fit it; the message names the line.</exception>
    /// <exception cref="IOException">The reader fails.</exception>
    public static BpeTokenizer Create(Vocabulary vocabulary, TextReader merges, TextNormalizerOptions normalizer) =>
        Create(vocabulary, merges, normalizer, "Vocabulary", "Merges");

    /// <summary>Loads a tokenizer from a vocabulary file and a merges file (as <see cref="Tokenizer.Save"/> writes them).</summary>
    /// <param name="vocabularyPath">The vocabulary file, such as <c>target.vocab.txt</c>.</param>
    /// <param name="mergesPath">The merges file, such as <c>target.merges.txt</c>.</param>
    /// <param name="normalizer">The normalizer settings used in training.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="SeqtalkException">A file is missing, unreadable, not UTF-8 or invalid; the message names the file and the line.</exception>
    public static BpeTokenizer Create(string vocabularyPath, string mergesPath, TextNormalizerOptions normalizer)
    {
        ArgumentNullException.ThrowIfNull(vocabularyPath);
        ArgumentNullException.ThrowIfNull(mergesPath);
        ArgumentNullException.ThrowIfNull(normalizer);
        Vocabulary vocabulary = ReadFile(vocabularyPath, reader =>
        {
            try { return Vocabulary.Load(reader); }
            catch (SeqtalkException e) { throw new SeqtalkException($"{vocabularyPath}: {e.Message}", e); }
        });
        return ReadFile(mergesPath, reader => Create(vocabulary, reader, normalizer, $"{vocabularyPath}: BPE vocabulary", $"{mergesPath}: merges"));
    }

    /// <summary>Writes the merges in rank order: one per line, <c>left right</c>, each line ended by <c>\n</c>.</summary>
    /// <param name="writer">Where to write; use UTF-8 (no BOM) when it is a file.</param>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is <see langword="null"/>.</exception>
    /// <exception cref="IOException">The writer fails.</exception>
    public void SaveMerges(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var merge in _merges)
        {
            writer.Write(merge.Left);
            writer.Write(' ');
            writer.Write(merge.Right);
            writer.Write('\n');
        }
    }

    /// <summary><see cref="Create(Vocabulary, TextReader, TextNormalizerOptions)"/> with the names errors start with
    /// (for example the file paths).</summary>
    internal static BpeTokenizer Create(Vocabulary vocabulary, TextReader merges, TextNormalizerOptions normalizer, string vocabularyName, string mergesName)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(normalizer);
        var list = new List<BpeMerge>();
        int lineNumber = 0;
        while (merges.ReadLine() is { } line)
        {
            lineNumber++;
            if (lineNumber == 1 && line.StartsWith('\uFEFF')) line = line[1..];
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new SeqtalkException($"{mergesName} line {lineNumber}: expected two tokens separated by one space, found '{Shorten(line)}'.");
            list.Add(new BpeMerge(line[..space], line[(space + 1)..]));
        }
        return FromMerges(vocabulary, list, normalizer, vocabularyName, mergesName, i => i + 1);
    }

    /// <summary>Checks that <paramref name="vocabulary"/> has the BPE layout and that every merge fits it, and builds the tokenizer.
    /// Messages start with <paramref name="vocabularyName"/> or <paramref name="mergesName"/> and name the line;
    /// <paramref name="lineOf"/> gives the line number of merge i.</summary>
    private static BpeTokenizer FromMerges(Vocabulary vocabulary, List<BpeMerge> merges, TextNormalizerOptions normalizer,
        string vocabularyName, string mergesName, Func<int, int> lineOf)
    {
        if (vocabulary.Count < FirstCharacterId)
        {
            throw new SeqtalkException($"{vocabularyName} has {vocabulary.Count} tokens; a BPE vocabulary holds at least the " +
                $"{SpecialTokens.Count} special tokens, the 256 byte tokens and {WordStart} ({FirstCharacterId} tokens). Was it written by another tokenizer kind?");
        }
        for (int id = FirstByteId; id < FirstCharacterId; id++)
        {
            string expected = id == WordStartId ? WordStart : ByteToken((byte)(id - FirstByteId));
            if (vocabulary.GetToken(id) != expected)
            {
                throw new SeqtalkException($"{vocabularyName} line {id + 1}: expected '{expected}' but found '{Shorten(vocabulary.GetToken(id))}'; " +
                    $"a BPE vocabulary holds the byte tokens <0x00>..<0xFF> right after the special tokens, then {WordStart}. Was it written by another tokenizer kind?");
            }
        }

        var mergeByPair = new Dictionary<long, (int Rank, int Result)>(merges.Count);
        var results = new HashSet<int>();
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            string where = $"{mergesName} line {lineOf(rank)}";
            int leftId = MergeableId(vocabulary, left, where, "left");
            int rightId = MergeableId(vocabulary, right, where, "right");
            if (right.StartsWith(WordStartChar))
                throw new SeqtalkException($"{where}: the right token '{Shorten(right)}' starts with {WordStart}; only the left token of a merge can begin a word.");
            if (!vocabulary.TryGetId(left + right, out int result) || result < FirstCharacterId)
                throw new SeqtalkException($"{where}: the merged token '{Shorten(left + right)}' is not in the vocabulary; the merges and the vocabulary do not belong together.");
            if (!mergeByPair.TryAdd(PairKey(leftId, rightId), (rank, result)))
                throw new SeqtalkException($"{where}: duplicate merge '{Shorten(left)} {Shorten(right)}' (first on line {lineOf(mergeByPair[PairKey(leftId, rightId)].Rank)}).");
            results.Add(result);
        }

        for (int id = FirstCharacterId; id < vocabulary.Count; id++)
        {
            string token = vocabulary.GetToken(id);
            bool character = token.Length == 1 || (token.Length == 2 && char.IsSurrogatePair(token[0], token[1]));
            if (character && token == WordStart)
                throw new SeqtalkException($"{vocabularyName} line {id + 1}: {WordStart} may only be on line {WordStartId + 1}.");
            if (!character && !results.Contains(id))
                throw new SeqtalkException($"{vocabularyName} line {id + 1}: the token '{Shorten(token)}' is neither one character nor the result of a merge.");
            if (token.IndexOf(WordStartChar, 1) >= 0)
                throw new SeqtalkException($"{vocabularyName} line {id + 1}: the token '{Shorten(token)}' holds {WordStart} after its start.");
        }
        return new BpeTokenizer(vocabulary, new TextNormalizer(normalizer), [.. merges], mergeByPair);
    }

    private static int MergeableId(Vocabulary vocabulary, string token, string where, string side)
    {
        if (!vocabulary.TryGetId(token, out int id))
            throw new SeqtalkException($"{where}: the {side} token '{Shorten(token)}' is not in the vocabulary; the merges and the vocabulary do not belong together.");
        if (id < WordStartId)
            throw new SeqtalkException($"{where}: the {side} token '{Shorten(token)}' is a special or byte token, which never merges.");
        return id;
    }

    internal static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    private protected override int Encode(string text, List<int>? ids, List<string>? pieces = null)
    {
        int count = 0;
        foreach (string word in Normalizer.SplitWords(text))
        {
            int[] wordIds = EncodeWord(word);
            ids?.AddRange(wordIds);
            if (pieces is not null)
            {
                foreach (int id in wordIds) pieces.Add(Vocabulary.GetToken(id));
            }
            count += wordIds.Length;
        }
        return count;
    }

    /// <summary>The ids of one word from <see cref="TextNormalizer.SplitWords"/>: its first piece starts with <see cref="WordStart"/>.</summary>
    internal int[] EncodeWord(string word)
    {
        if (_cache.TryGetValue(word, out int[]? cached)) return cached;
        int[] pieces = Segment(word);
        if (word.Length <= MaxCachedWordLength && _cache.Count < CacheCapacity) _cache.TryAdd(word, pieces);
        return pieces;
    }

    /// <summary>
    /// The marker, then each character's id (or its UTF-8 byte tokens when it is not in the vocabulary),
    /// then the merges applied lowest rank first, leftmost first among equal ranks, as a linked list
    /// with a heap of candidate pairs, so a word of n characters takes O(n log n).
    /// </summary>
    private int[] Segment(string word)
    {
        var symbols = new List<int>(word.Length + 1) { WordStartId };
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int n = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            int id = Vocabulary.GetOrdinaryId(word.AsSpan(i, n));
            if (id >= FirstCharacterId)
            {
                symbols.Add(id);
            }
            else
            {
                // Not a known character (or the marker character itself): its UTF-8 bytes. The normalizer never leaves an
                // unpaired surrogate; should one arrive it is written as U+FFFD's bytes.
                Rune rune = Rune.DecodeFromUtf16(word.AsSpan(i, n), out Rune r, out _) == OperationStatus.Done ? r : Rune.ReplacementChar;
                int written = rune.EncodeToUtf8(utf8);
                for (int b = 0; b < written; b++) symbols.Add(FirstByteId + utf8[b]);
            }
            i += n;
        }
        if (symbols.Count == 1 || _mergeByPair.Count == 0) return [.. symbols];

        int count = symbols.Count;
        int[] sym = [.. symbols];
        int[] next = new int[count];
        int[] prev = new int[count];
        for (int i = 0; i < count; i++)
        {
            next[i] = i + 1 < count ? i + 1 : -1;
            prev[i] = i - 1;
        }
        var heap = new PriorityQueue<int, long>();
        for (int i = 0; i + 1 < count; i++) Push(i);
        while (heap.TryDequeue(out int i, out long priority))
        {
            int j = next[i];
            if (sym[i] < 0 || j < 0) continue;
            if (!_mergeByPair.TryGetValue(PairKey(sym[i], sym[j]), out var merge) || merge.Rank != (int)(priority >> 32)) continue;   // stale
            sym[i] = merge.Result;
            sym[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            if (prev[i] >= 0) Push(prev[i]);
            Push(i);
        }

        var result = new List<int>(count);
        for (int i = 0; i >= 0; i = next[i]) result.Add(sym[i]);
        return [.. result];

        void Push(int i)
        {
            int j = next[i];
            if (j >= 0 && _mergeByPair.TryGetValue(PairKey(sym[i], sym[j]), out var merge))
                heap.Enqueue(i, ((long)merge.Rank << 32) | (uint)i);
        }
    }

    private protected override string DecodeCore(IEnumerable<int> ids)
    {
        var sink = new StringSink(WordJoinRule);
        if (Walk(ids, ref sink, out _, out int badId) == OperationStatus.InvalidData)
            throw new SeqtalkException($"Token id {badId} is outside the vocabulary of {Vocabulary.Count} tokens; the model and the vocabulary do not belong together.");
        return sink.Text.ToString();
    }

    private protected override OperationStatus DecodeCore(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        var sink = new SpanSink(destination, WordJoinRule);
        var status = Walk(ids, ref sink, out idsConsumed, out _);
        charsWritten = sink.Written;
        return status;
    }

    private protected override void SaveExtraFiles(string directory, string prefix)
    {
        string path = Path.Combine(directory, prefix + ".merges.txt");
        string temp = path + ".tmp";
        try
        {
            using (var writer = new StreamWriter(temp, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                SaveMerges(writer);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot write the merges file {path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Assembles pieces into words and hands each finished word to <paramref name="sink"/>: a piece starting
    /// with <see cref="WordStart"/> (or <c>&lt;unk&gt;</c>) begins a word, other pieces continue it, byte tokens
    /// collect until the next text piece or the end of the word and then become UTF-8 text. A word is written
    /// whole or not at all, so <paramref name="idsConsumed"/> stops before the first id of a word that did not fit.
    /// </summary>
    private OperationStatus Walk<TSink>(IEnumerable<int> ids, ref TSink sink, out int idsConsumed, out int badId)
        where TSink : IWordSink, allows ref struct
    {
        var word = new StringBuilder();
        var bytes = new List<byte>();
        bool open = false;   // a word has begun and is not written yet
        int wordStart = 0;   // every id before this index is consumed
        int index = 0;
        badId = 0;
        foreach (int id in ids)
        {
            bool invalid = (uint)id >= (uint)Vocabulary.Count;
            if (invalid || id == SpecialTokens.EndId)
            {
                if (open && !Flush(ref sink, word, bytes))
                {
                    idsConsumed = wordStart;
                    return OperationStatus.DestinationTooSmall;
                }
                badId = id;
                idsConsumed = invalid ? index : index + 1;
                return invalid ? OperationStatus.InvalidData : OperationStatus.Done;
            }
            if (id is SpecialTokens.PadId or SpecialTokens.StartId)
            {
                if (!open) wordStart = index + 1;
                index++;
                continue;
            }

            string token = Vocabulary.GetToken(id);
            if (id == SpecialTokens.UnknownId || (id >= WordStartId && token[0] == WordStartChar))
            {
                if (open && !Flush(ref sink, word, bytes))
                {
                    idsConsumed = wordStart;
                    return OperationStatus.DestinationTooSmall;
                }
                open = true;
                wordStart = index;
                word.Append(id == SpecialTokens.UnknownId ? token.AsSpan() : token.AsSpan(1));
            }
            else
            {
                if (!open)
                {
                    open = true;
                    wordStart = index;
                }
                if (id < WordStartId)
                {
                    bytes.Add((byte)(id - FirstByteId));
                }
                else
                {
                    AppendBytes(word, bytes);
                    word.Append(token);
                }
            }
            index++;
        }
        if (open && !Flush(ref sink, word, bytes))
        {
            idsConsumed = wordStart;
            return OperationStatus.DestinationTooSmall;
        }
        idsConsumed = index;
        return OperationStatus.Done;
    }

    /// <summary>Writes the pending word (if it has any text) and clears it; false when the sink has no room.</summary>
    private static bool Flush<TSink>(ref TSink sink, StringBuilder word, List<byte> bytes) where TSink : IWordSink, allows ref struct
    {
        AppendBytes(word, bytes);
        if (word.Length > 0 && !sink.TryWrite(word.ToString())) return false;
        word.Clear();
        return true;
    }

    /// <summary>Decodes the collected bytes as UTF-8 (each invalid sequence becomes U+FFFD) onto <paramref name="word"/>.
    /// Whitespace and control characters also become U+FFFD, so a reply never gains a line break or a space inside a word.</summary>
    private static void AppendBytes(StringBuilder word, List<byte> bytes)
    {
        if (bytes.Count == 0) return;
        foreach (char c in Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes)))
            word.Append(char.IsControl(c) || char.IsWhiteSpace(c) ? '\uFFFD' : c);
        bytes.Clear();
    }

    private static T ReadFile<T>(string path, Func<TextReader, T> read)
    {
        try
        {
            using var reader = new StreamReader(path, new UTF8Encoding(false, true));
            return read(reader);
        }
        catch (DecoderFallbackException e)
        {
            throw new SeqtalkException($"{path}: invalid UTF-8.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot read {path}: {e.Message}", e);
        }
    }

    private static string Shorten(string token)
    {
        string shown = token.Length > 40 ? token[..40] + "…" : token;
        return shown.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
    }

    /// <summary>Receives finished words.</summary>
    private interface IWordSink
    {
        /// <summary>Writes <paramref name="word"/> (with the space before it); false when there is no room.</summary>
        bool TryWrite(string word);
    }

    private sealed class StringSink(JoinRule rule) : IWordSink
    {
        private TokenJoiner _joiner = new(rule);

        public StringBuilder Text { get; } = new();

        public bool TryWrite(string word)
        {
            if (_joiner.SpaceBefore(word)) Text.Append(' ');
            Text.Append(word);
            _joiner.Commit(word);
            return true;
        }
    }

    private ref struct SpanSink : IWordSink
    {
        private readonly Span<char> _destination;
        private TokenJoiner _joiner;

        public SpanSink(Span<char> destination, JoinRule rule)
        {
            _destination = destination;
            _joiner = new TokenJoiner(rule);
        }

        public int Written { get; private set; }

        public bool TryWrite(string word)
        {
            bool space = _joiner.SpaceBefore(word);
            if (word.Length + (space ? 1 : 0) > _destination.Length - Written) return false;
            if (space) _destination[Written++] = ' ';
            word.AsSpan().CopyTo(_destination[Written..]);
            Written += word.Length;
            _joiner.Commit(word);
            return true;
        }
    }
}
