using System.Buffers;
using System.Text;
using CsCheck;
using Seqtalk.Tests.EndToEnd;
using Seqtalk.Text;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Fuzz;

/// <summary>
/// The normalizer and the three tokenizers (word, character, BPE), in both normalization modes, with and without lower-casing, on
/// random Unicode (every plane, lone surrogates, noncharacters, combining marks, controls, very long
/// strings); and <see cref="Vocabulary.Load"/> on random and mutated vocabulary files.
/// </summary>
public class TokenizerFuzzTests(ITestOutputHelper output)
{
    // 10,000 strings, each through 12 tokenizers; 10,000 vocabulary files (4,000 random, 6,000 mutated).
    private const int Strings = 10_000;
    private const int RandomVocabularies = 4_000;
    private const int MutatedVocabularies = 6_000;

    private static readonly Lazy<Tokenizer[]> Tokenizers = new(() =>
    {
        var texts = ChatModelTests.SyntheticPairs(48).SelectMany(p => new[] { p.Question, p.Answer })
            .Concat(["Hello, World! It's 3:30pm.", "C# 와 F# 은 달라요 :)", "e\u0301 ᄒ ᅡ 😊 <s> </s> <unk>"]).ToList();
        var result = new List<Tokenizer>();
        foreach (var mode in new[] { NormalizationMode.Default, NormalizationMode.Tutorial })
        {
            foreach (bool lower in new[] { false, true })
            {
                var normalizer = new TextNormalizerOptions { Mode = mode, Lowercase = lower };
                result.Add(WordTokenizer.Train(texts, new WordTokenizerOptions { Normalizer = normalizer }));
                result.Add(CharTokenizer.Train(texts, new CharTokenizerOptions { Normalizer = normalizer }));
                result.Add(BpeTokenizer.Train(texts, new BpeTokenizerOptions { Normalizer = normalizer, VocabularySize = 400 }));
            }
        }
        return [.. result];
    });

    /// <summary>Random text: a mix of runs drawn from every plane, lone surrogates, noncharacters, marks,
    /// jamo, controls, separators, Korean, ASCII and the special-token spellings; sometimes very long.</summary>
    internal static readonly Gen<string> Text = BuildText();

    private static Gen<string> BuildText()
    {
        var codePoint = Gen.Int[0, 0x10FFFF].Select(cp => cp is >= 0xD800 and <= 0xDFFF ? ((char)cp).ToString() : char.ConvertFromUtf32(cp));
        var piece = Gen.Frequency(
            (4, codePoint),
            (2, Gen.Char.Select(c => c.ToString())),                                  // any UTF-16 unit, lone surrogates included
            (3, Gen.Char['가', '힣'].Select(c => c.ToString())),
            (2, Gen.Char['\u1100', '\u11FF'].Select(c => c.ToString())),            // conjoining jamo
            (2, Gen.Char['\u0300', '\u036F'].Select(c => c.ToString())),            // combining marks
            (2, Gen.Char['\0', '\x1F'].Select(c => c.ToString())),                  // C0 controls
            (3, Gen.Char[' ', '~'].Select(c => c.ToString())),
            (2, Gen.OneOf("\uFFFE", "\uFFFF", "\uFDD0", "\U0001FFFE", "\U0010FFFF", "\u0085", "\u2028", "\u2029", "\u3000", "\u00A0",
                "\u200B", "\uFEFF", "\u0130", "\u03A3", "\u1E9E", "ﬁ", "\u0345", "İ", "ǅ", "<s>", "</s>", "<pad>", "<unk>", "don't", "C#", "'", "\"")));
        return Gen.Frequency(
            (60, piece.Array[0, 40].Select(string.Concat)),
            (1, piece.Array[2_000, 8_000].Select(string.Concat)));
    }

    [Fact]
    public void RandomText_EncodesToOrdinaryIdsAndDecodes()
    {
        var tokenizers = Tokenizers.Value;
        FuzzRunner.Run(output, "tokenizers-text", Text, text =>
        {
            foreach (var tokenizer in tokenizers) CheckText(tokenizer, text);
        }, Strings, FuzzRunner.ShowText);
    }

    [Fact]
    public void RandomIds_DecodeWithoutThrowing()
    {
        var tokenizers = Tokenizers.Value;
        var gen = Gen.Select(Gen.Int[0, tokenizers.Length - 1], Gen.Int[0, int.MaxValue].Array[0, 60], Gen.Int[0, 40]);
        FuzzRunner.Run(output, "tokenizers-ids", gen, input =>
        {
            var (which, raw, room) = input;
            var tokenizer = tokenizers[which];
            int[] ids = [.. raw.Select(r => r % tokenizer.Vocabulary.Count)];
            string text = tokenizer.Decode(ids);
            int end = Array.IndexOf(ids, SpecialTokens.EndId);

            // The span overload writes a prefix of the same text, never more than the room it has.
            var destination = new char[room];
            var status = tokenizer.Decode(ids, destination, out int consumed, out int written);
            Assert.True(status is OperationStatus.Done or OperationStatus.DestinationTooSmall, $"status {status}");
            Assert.InRange(written, 0, room);
            Assert.InRange(consumed, 0, ids.Length);
            Assert.StartsWith(new string(destination, 0, written), text, StringComparison.Ordinal);
            if (status == OperationStatus.Done)
            {
                Assert.Equal(text, new string(destination, 0, written));
                Assert.Equal(end < 0 ? ids.Length : end + 1, consumed);
            }
        }, 3_000, input => $"tokenizer {input.Item1}, ids [{string.Join(", ", input.Item2)}], room {input.Item3}");
    }

    private static void CheckText(Tokenizer tokenizer, string text)
    {
        string where = $"{tokenizer.Kind} {tokenizer.Normalizer.Options}";
        var normalizer = tokenizer.Normalizer;
        string normalized = normalizer.Normalize(text);
        Assert.True(normalizer.Normalize(normalized) == normalized,
            $"{where}: Normalize is not idempotent: {FuzzRunner.ShowText(normalized)} → {FuzzRunner.ShowText(normalizer.Normalize(normalized))}");
        Assert.False(normalized.StartsWith(' ') || normalized.EndsWith(' ') || normalized.Contains("  ", StringComparison.Ordinal),
            $"{where}: spaces not collapsed: {FuzzRunner.ShowText(normalized)}");
        // Messages are built only on failure: these strings can be 20,000 characters long.
        foreach (var rune in normalized.EnumerateRunes())
        {
            if (Rune.IsControl(rune) || (Rune.IsWhiteSpace(rune) && rune.Value != ' '))
                Assert.Fail($"{where}: U+{rune.Value:X4} survived normalization: {FuzzRunner.ShowText(normalized)}");
        }
        Assert.True(normalized.IsNormalized(NormalizationForm.FormC), $"{where}: not NFC: {FuzzRunner.ShowText(normalized)}");

        var words = normalizer.SplitWords(text);
        foreach (string w in words)
        {
            if (w.Length == 0 || w.Contains(' ', StringComparison.Ordinal)) Assert.Fail($"{where}: bad word {FuzzRunner.ShowText(w)}");
        }

        var ids = tokenizer.EncodeToIds(text);
        Assert.Equal(ids.Count, tokenizer.CountTokens(text));
        foreach (int id in ids)
        {
            if (id < 0 || id >= tokenizer.Vocabulary.Count || id is SpecialTokens.PadId or SpecialTokens.StartId or SpecialTokens.EndId)
                Assert.Fail($"{where}: id {id} from text (vocabulary of {tokenizer.Vocabulary.Count})");
        }
        string decoded = tokenizer.Decode(ids);
        if (tokenizer is BpeTokenizer bpe)
        {
            // BPE falls back to byte tokens for characters it never saw: never <unk>, and every text round-trips.
            if (ids.Contains(SpecialTokens.UnknownId)) Assert.Fail($"{where}: BPE produced <unk>");
            CheckBpePieces(bpe, ids, words.Count);
        }
        if (!ids.Contains(SpecialTokens.UnknownId))
        {
            string expected = tokenizer.Kind == TokenizerKind.Character ? normalized : normalizer.JoinWords(words);
            Assert.Equal(expected, decoded);
        }
    }

    /// <summary>Every word from <see cref="TextNormalizer.SplitWords"/> becomes pieces of which exactly the first starts
    /// with the word-start marker.</summary>
    private static void CheckBpePieces(BpeTokenizer bpe, IReadOnlyList<int> ids, int words)
    {
        int starts = 0;
        for (int k = 0; k < ids.Count; k++)
        {
            bool start = bpe.Vocabulary.GetToken(ids[k]).StartsWith(BpeTokenizer.WordStart, StringComparison.Ordinal);
            if (k == 0 && !start) Assert.Fail($"BPE: the first piece '{bpe.Vocabulary.GetToken(ids[0])}' does not start a word");
            if (start) starts++;
        }
        Assert.True(starts == words, $"BPE: {starts} pieces start a word, but the text has {words} words");
    }

    // ---- vocabulary files -------------------------------------------------------------------------

    private static readonly Lazy<byte[][]> ValidVocabularies = new(() => Tokenizers.Value.Select(t =>
    {
        var writer = new StringWriter();
        t.Vocabulary.Save(writer);
        return Encoding.UTF8.GetBytes(writer.ToString());
    }).ToArray());

    [Fact]
    public void RandomVocabularyFiles_GiveSeqtalkExceptionsOnly()
    {
        FuzzRunner.Run(output, "vocabulary-random", Mutations.RandomBytes, CheckVocabulary, RandomVocabularies, FuzzRunner.ShowBytes);
    }

    [Fact]
    public void MutatedVocabularyFiles_GiveSeqtalkExceptionsOnly()
    {
        var valid = ValidVocabularies.Value;
        var gen = Mutations.Of(Gen.Int[0, valid.Length - 1].Select(i => valid[i]));
        FuzzRunner.Run(output, "vocabulary-mutated", gen, CheckVocabulary, MutatedVocabularies, FuzzRunner.ShowBytes);
    }

    /// <summary>Loading either gives a consistent vocabulary that saves back to an equal one, or throws a one-line SeqtalkException.</summary>
    private static void CheckVocabulary(byte[] bytes)
    {
        Vocabulary vocabulary;
        try
        {
            vocabulary = Vocabulary.Load(new StreamReader(new MemoryStream(bytes), new UTF8Encoding(false, false)));
        }
        catch (SeqtalkException ex)
        {
            Assert.True(ex.Message.Length > 0 && ex.Message.IndexOfAny(['\n', '\r']) < 0, $"Not a one-line message: {FuzzRunner.ShowText(ex.Message)}");
            return;
        }

        Assert.True(vocabulary.Count >= SpecialTokens.Count);
        for (int id = 0; id < vocabulary.Count; id++)
        {
            string token = vocabulary.GetToken(id);
            Assert.Equal(id, vocabulary.GetId(token));
            if (id < SpecialTokens.Count) Assert.Equal(SpecialTokens.All[id], token);
        }
        var writer = new StringWriter();
        vocabulary.Save(writer);
        var again = Vocabulary.Load(new StringReader(writer.ToString()));
        Assert.Equal(Enumerable.Range(0, vocabulary.Count).Select(vocabulary.GetToken), Enumerable.Range(0, again.Count).Select(again.GetToken));
    }
}
