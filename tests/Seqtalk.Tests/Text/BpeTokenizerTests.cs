using System.Buffers;
using System.Diagnostics;
using System.Text;
using Seqtalk.Text;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Text;

/// <summary>Golden ids worked by hand, round trips over the real corpus, byte fallback, files and their errors.</summary>
public class BpeTokenizerTests(ITestOutputHelper output)
{
    private const int Marker = BpeTokenizer.WordStartId;   // 260
    private const int FirstByte = BpeTokenizer.FirstByteId; // 4

    private static readonly Lazy<(BpeTokenizer Tokenizer, TimeSpan Elapsed)> AllTexts = new(() =>
    {
        var watch = Stopwatch.StartNew();
        var tokenizer = BpeTokenizer.Train(ChatbotData.Questions.Concat(ChatbotData.Answers));
        return (tokenizer, watch.Elapsed);
    });

    private static readonly Lazy<BpeTokenizer> FirstHalf = new(() =>
        BpeTokenizer.Train(ChatbotData.Questions.Take(ChatbotData.Questions.Count / 2).Concat(ChatbotData.Answers.Take(ChatbotData.Answers.Count / 2))));

    [Fact]
    public void Golden_LatinCorpus_WorkedByHand()
    {
        // Words: ab ×2, abc ×1, bc ×1. Characters by count: b 4, a 3, c 2 → ids 261, 262, 263.
        // Pairs: (▁,a) 3, (a,b) 3, (b,c) 2, (▁,b) 1. The tie at 3 goes to the smaller left text: "a" (U+0061) < "▁" (U+2581),
        // so merge 1 is a+b = "ab" (264). Then (▁,ab) 3 → "▁ab" (265). Every pair left is seen once: stop.
        var tokenizer = BpeTokenizer.Train(["ab ab abc", "bc"]);
        Assert.Equal([new BpeMerge("a", "b"), new BpeMerge("▁", "ab")], tokenizer.Merges);
        Assert.Equal(266, tokenizer.Vocabulary.Count);
        Assert.Equal(["b", "a", "c", "ab", "▁ab"], Enumerable.Range(261, 5).Select(tokenizer.Vocabulary.GetToken));

        var ids = tokenizer.EncodeToIds("abc bc ab");
        Assert.Equal([265, 263, Marker, 261, 263, 265], ids);
        Assert.Equal("abc bc ab", tokenizer.Decode(ids));
    }

    [Fact]
    public void Golden_KoreanCorpus_WorkedByHand_WithByteFallback()
    {
        // Words: 하루 ×1, 하루가 ×2, 좋아 ×1. Characters: 하 3, 루 3, 가 2, 좋 1, 아 1 → ids 261..265.
        // Pairs: (▁,하) 3, (하,루) 3 → tie, "▁" (U+2581) < "하" (U+D558): "▁하" (266); then (▁하,루) 3 → "▁하루" (267);
        // then (▁하루,가) 2 → "▁하루가" (268); the rest are seen once.
        var tokenizer = BpeTokenizer.Train(["하루 하루가", "하루가 좋아"]);
        Assert.Equal([new BpeMerge("▁", "하"), new BpeMerge("▁하", "루"), new BpeMerge("▁하루", "가")], tokenizer.Merges);
        Assert.Equal(["하", "루", "가", "좋", "아", "▁하", "▁하루", "▁하루가"], Enumerable.Range(261, 8).Select(tokenizer.Vocabulary.GetToken));

        // 밥 was never seen: the marker, then its UTF-8 bytes EB B0 A5. The '?' too: 3F.
        var ids = tokenizer.EncodeToIds("하루가 좋아 하하 밥?");
        Assert.Equal([268, Marker, 264, 265, 266, 261, Marker, FirstByte + 0xEB, FirstByte + 0xB0, FirstByte + 0xA5, Marker, FirstByte + 0x3F], ids);
        Assert.Equal("하루가 좋아 하하 밥?", tokenizer.Decode(ids));
        Assert.Equal("<0xEB>", tokenizer.Vocabulary.GetToken(FirstByte + 0xEB));
    }

    [Fact]
    public void VocabularySize_IsRespected_AndASmallOneStillRoundTrips()
    {
        string[] texts = ["하루 하루가", "하루가 좋아"];
        Assert.Equal(267, BpeTokenizer.Train(texts, new BpeTokenizerOptions { VocabularySize = 267 }).Vocabulary.Count);   // 5 characters + 1 merge
        Assert.Single(BpeTokenizer.Train(texts, new BpeTokenizerOptions { VocabularySize = 267 }).Merges);
        var tiny = BpeTokenizer.Train(texts, new BpeTokenizerOptions { VocabularySize = 263 });   // room for 하 and 루 only
        Assert.Equal(263, tiny.Vocabulary.Count);
        Assert.Equal(["하", "루"], [tiny.Vocabulary.GetToken(261), tiny.Vocabulary.GetToken(262)]);
        Assert.Equal("하루가 좋아", tiny.Decode(tiny.EncodeToIds("하루가 좋아")));

        foreach (int size in new[] { 261, 1000, 3000 })
        {
            var tokenizer = BpeTokenizer.Train(ChatbotData.Answers.Take(3000), new BpeTokenizerOptions { VocabularySize = size });
            Assert.Equal(size, tokenizer.Vocabulary.Count);
            foreach (string answer in ChatbotData.Answers.Take(200))
            {
                var encoded = tokenizer.EncodeToIds(answer);
                Assert.DoesNotContain(SpecialTokens.UnknownId, encoded);
                Assert.Equal(tokenizer.Normalizer.JoinWords(tokenizer.Normalizer.SplitWords(answer)), tokenizer.Decode(encoded));
            }
        }
    }

    [Fact]
    public void Options_OutOfRange_ThrowNamingTheProperty()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => BpeTokenizer.Train(["가"], new BpeTokenizerOptions { VocabularySize = 260 }));
        Assert.Equal(nameof(BpeTokenizerOptions.VocabularySize), e.ParamName);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => BpeTokenizer.Train(["가"], new BpeTokenizerOptions { MinPairFrequency = 0 }));
        Assert.Equal(nameof(BpeTokenizerOptions.MinPairFrequency), e.ParamName);
    }

    [Fact]
    public void AllChatbotData_RoundTrips_WithNoUnknown_AndTrainsInSeconds()
    {
        var (tokenizer, elapsed) = AllTexts.Value;
        var normalizer = tokenizer.Normalizer;
        long tokens = 0;
        foreach (string text in ChatbotData.Questions.Concat(ChatbotData.Answers))
        {
            var ids = tokenizer.EncodeToIds(text);
            Assert.DoesNotContain(SpecialTokens.UnknownId, ids);
            Assert.All(ids, id => Assert.InRange(id, BpeTokenizer.FirstCharacterId - 1, tokenizer.Vocabulary.Count - 1));   // never a byte: every character was seen
            Assert.Equal(ids.Count, tokenizer.CountTokens(text));
            Assert.Equal(normalizer.JoinWords(normalizer.SplitWords(text)), tokenizer.Decode(ids));
            tokens += ids.Count;
        }
        output.WriteLine($"trained on {ChatbotData.Questions.Count * 2:N0} texts in {elapsed.TotalSeconds:F2} s: {tokenizer.Vocabulary.Count} tokens, " +
            $"{tokenizer.Merges.Count} merges; {tokens:N0} tokens over the corpus");
        Assert.Equal(BpeTokenizerOptions.DefaultVocabularySize, tokenizer.Vocabulary.Count);
        Assert.True(elapsed < TimeSpan.FromSeconds(20), $"training took {elapsed}");
    }

    [Fact]
    public void TrainedOnHalf_UnseenWordsAndCharactersStillRoundTrip_WithNoUnknown()
    {
        var tokenizer = FirstHalf.Value;
        var normalizer = tokenizer.Normalizer;
        var seenWords = new HashSet<string>(ChatbotData.Questions.Take(ChatbotData.Questions.Count / 2)
            .Concat(ChatbotData.Answers.Take(ChatbotData.Answers.Count / 2)).SelectMany(normalizer.SplitWords), StringComparer.Ordinal);
        int unseenWords = 0, withBytes = 0;
        foreach (string text in ChatbotData.Questions.Concat(ChatbotData.Answers))
        {
            var ids = tokenizer.EncodeToIds(text);
            Assert.DoesNotContain(SpecialTokens.UnknownId, ids);
            Assert.Equal(ids.Count, tokenizer.CountTokens(text));
            var words = normalizer.SplitWords(text);
            Assert.Equal(normalizer.JoinWords(words), tokenizer.Decode(ids));
            unseenWords += words.Count(w => !seenWords.Contains(w));
            if (ids.Any(id => id < BpeTokenizer.WordStartId)) withBytes++;
        }
        output.WriteLine($"{unseenWords:N0} word occurrences unseen in training; {withBytes:N0} texts needed byte tokens");
        Assert.True(unseenWords > 1000, $"only {unseenWords} unseen words: the test would prove little");
        Assert.True(withBytes > 0, "no text needed byte fallback: the test would prove little");
    }

    [Fact]
    public void Training_IsDeterministic()
    {
        var texts = ChatbotData.Answers.Take(4000).ToList();
        var options = new BpeTokenizerOptions { VocabularySize = 2000 };
        var a = BpeTokenizer.Train(texts, options);
        var b = BpeTokenizer.Train(texts, options);
        Assert.Equal(a.Merges, b.Merges);
        Assert.Equal(Enumerable.Range(0, a.Vocabulary.Count).Select(a.Vocabulary.GetToken), Enumerable.Range(0, b.Vocabulary.Count).Select(b.Vocabulary.GetToken));
        Assert.True(a.Merges.Count > 500);
    }

    [Fact]
    public void UnseenCharacters_FallBackToBytes_AndRoundTrip()
    {
        var tokenizer = BpeTokenizer.Train(["하루가 또 가네요.", "안녕하세요!"]);
        foreach (string text in new[] { "😊 좋아😊요", "漢字 한자", "ภาษาไทย", "▁ 하루▁가", "e\u0301 é", "\uFFFD 깨진 글자" })
        {
            var ids = tokenizer.EncodeToIds(text);
            Assert.DoesNotContain(SpecialTokens.UnknownId, ids);
            Assert.Contains(ids, id => id is >= FirstByte and < Marker);
            Assert.Equal(ids.Count, tokenizer.CountTokens(text));
            Assert.Equal(tokenizer.Normalizer.JoinWords(tokenizer.Normalizer.SplitWords(text)), tokenizer.Decode(ids));
        }
        // 😊 is F0 9F 98 8A.
        Assert.Equal([Marker, FirstByte + 0xF0, FirstByte + 0x9F, FirstByte + 0x98, FirstByte + 0x8A], tokenizer.EncodeToIds("😊"));
    }

    [Fact]
    public void Decode_InvalidBytes_BecomeReplacementCharacters()
    {
        var tokenizer = BpeTokenizer.Train(["가 나"]);
        int ga = tokenizer.Vocabulary.GetId("가");
        Assert.Equal("\uFFFD", tokenizer.Decode([Marker, FirstByte + 0xE3, FirstByte + 0x81]));   // a cut 3-byte sequence
        Assert.Equal("\uFFFD가", tokenizer.Decode([Marker, FirstByte + 0xFF, ga]));
        Assert.Equal("가\uFFFD가", tokenizer.Decode([Marker, ga, FirstByte + 0x0A, ga]));   // no line break inside a reply
        Assert.Equal("A가", tokenizer.Decode([Marker, FirstByte + 0x41, ga]));
        Assert.Equal("가 <unk>가", tokenizer.Decode([SpecialTokens.StartId, ga, SpecialTokens.UnknownId, ga, SpecialTokens.EndId, ga]));
        Assert.Throws<SeqtalkException>(() => tokenizer.Decode([ga, tokenizer.Vocabulary.Count]));
    }

    [Fact]
    public void SpanDecode_GrowingDestinations_MakeMonotoneProgressThenFinish()
    {
        var tokenizer = AllTexts.Value.Tokenizer;
        foreach (string q in new[] { ChatbotData.Questions[0], "(정말?) \"그래\" 라고 했어... 외계어! 😊", ChatbotData.Answers[^1] })
        {
            var ids = new List<int> { SpecialTokens.StartId };
            ids.AddRange(tokenizer.EncodeToIds(q));
            ids.Insert(ids.Count / 2, SpecialTokens.PadId);
            ids.Add(SpecialTokens.EndId);
            ids.Add(tokenizer.Vocabulary.Count - 1);   // after </s>: ignored
            string full = tokenizer.Decode(ids);
            Assert.Equal(tokenizer.Normalizer.JoinWords(tokenizer.Normalizer.SplitWords(q)), full);

            int lastConsumed = 0, lastWritten = 0;
            for (int size = 0; ; size++)
            {
                var destination = new char[size];
                var status = tokenizer.Decode(ids, destination, out int consumed, out int written);
                Assert.True(consumed >= lastConsumed && written >= lastWritten, $"progress went back at size {size}");
                Assert.Equal(full[..written], new string(destination, 0, written));
                lastConsumed = consumed;
                lastWritten = written;
                if (size < full.Length)
                {
                    Assert.Equal(OperationStatus.DestinationTooSmall, status);
                    Assert.True(consumed < ids.Count - 1);
                }
                else
                {
                    Assert.Equal(OperationStatus.Done, status);
                    Assert.Equal(full.Length, written);
                    Assert.Equal(ids.Count - 1, consumed);
                    break;
                }
            }
        }
        var bad = new char[100];
        Assert.Equal(OperationStatus.InvalidData, tokenizer.Decode([Marker, -1], bad, out int c, out int w));
        Assert.Equal((1, 0), (c, w));
    }

    [Fact]
    public void HostileInput_NeverCrashes()
    {
        var tokenizer = BpeTokenizer.Train(ChatbotData.Answers.Take(2000), new BpeTokenizerOptions { VocabularySize = 2000 });
        var inputs = TextNormalizerTests.HostileStrings.ToList();
        inputs.Add(string.Concat(Enumerable.Repeat("오늘 날씨 어때? 😊\n", 60_000)));
        inputs.Add(new string('가', 1 << 20));   // one word of a million characters
        foreach (string input in inputs)
        {
            var ids = tokenizer.EncodeToIds(input);
            Assert.Equal(ids.Count, tokenizer.CountTokens(input));
            Assert.All(ids, id => Assert.InRange(id, BpeTokenizer.FirstByteId, tokenizer.Vocabulary.Count - 1));
            string decoded = tokenizer.Decode(ids);
            TextNormalizerTests.AssertClean(decoded);
            Assert.Equal(tokenizer.Normalizer.JoinWords(tokenizer.Normalizer.SplitWords(input)), decoded);
        }
        Assert.Empty(tokenizer.EncodeToIds(" \t\r\n"));
    }

    [Fact]
    public void SaveThenLoad_GivesIdenticalIds()
    {
        var tokenizer = BpeTokenizer.Train(ChatbotData.Answers.Take(3000), new BpeTokenizerOptions { VocabularySize = 3000 });
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-" + Guid.NewGuid().ToString("N"));
        try
        {
            tokenizer.Save(dir, "target");
            string merges = File.ReadAllText(Path.Combine(dir, "target.merges.txt"), Encoding.UTF8);
            Assert.Equal(tokenizer.Merges.Count, merges.Count(c => c == '\n'));
            Assert.StartsWith($"{tokenizer.Merges[0].Left} {tokenizer.Merges[0].Right}\n", merges, StringComparison.Ordinal);
            Assert.NotEqual(0xEF, File.ReadAllBytes(Path.Combine(dir, "target.merges.txt"))[0]);   // no BOM

            var loaded = BpeTokenizer.Create(Path.Combine(dir, "target.vocab.txt"), Path.Combine(dir, "target.merges.txt"), new TextNormalizerOptions());
            Assert.Equal(tokenizer.Merges, loaded.Merges);
            foreach (string text in ChatbotData.Questions.Take(2000).Append("😊 처음 보는 漢字"))
                Assert.Equal(tokenizer.EncodeToIds(text), loaded.EncodeToIds(text));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<string, string> CorruptMerges() => new()
    {
        { "▁ 하\n하루\n", "line 2: expected two tokens separated by one space" },
        { "▁ 하\n하  루\n", "line 2: expected two tokens separated by one space" },
        { "▁ 하\n 하\n", "line 2: expected two tokens separated by one space" },
        { "▁ 하\n▁하 없\n", "line 2: the right token '없' is not in the vocabulary" },
        { "▁ 하\n▁ 하\n", "line 2: duplicate merge '▁ 하' (first on line 1)" },
        { "▁ 하\n하 루\n", "line 2: the merged token '하루' is not in the vocabulary" },
        { "▁ 하\n<0xEB> 하\n", "line 2: the left token '<0xEB>' is a special or byte token" },
        { "▁ ▁하\n", "line 1: the right token '▁하' starts with ▁" },
        { "", "BPE vocabulary line 267: the token '▁하' is neither one character nor the result of a merge" },
    };

    [Theory]
    [MemberData(nameof(CorruptMerges))]
    public void CorruptMergesFile_ThrowsNamingTheFileAndLine(string mergesText, string expected)
    {
        var tokenizer = BpeTokenizer.Train(["하루 하루가", "하루가 좋아"]);
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-" + Guid.NewGuid().ToString("N"));
        try
        {
            tokenizer.Save(dir, "source");
            string mergesPath = Path.Combine(dir, "source.merges.txt");
            File.WriteAllText(mergesPath, mergesText, new UTF8Encoding(false));
            var e = Assert.Throws<SeqtalkException>(() => BpeTokenizer.Create(Path.Combine(dir, "source.vocab.txt"), mergesPath, new TextNormalizerOptions()));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.Contains(mergesText.Length == 0 ? "source.vocab.txt" : "source.merges.txt", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void NonBpeVocabulary_IsRejected()
    {
        var word = WordTokenizer.Train(["하루가 또 가네요."]);
        var e = Assert.Throws<SeqtalkException>(() => BpeTokenizer.Create(word.Vocabulary, new StringReader(""), new TextNormalizerOptions()));
        Assert.Contains("BPE vocabulary", e.Message, StringComparison.Ordinal);
        var invalidUtf8 = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-" + Guid.NewGuid().ToString("N") + ".txt");
        var tokenizer = BpeTokenizer.Train(["가 나"]);
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-" + Guid.NewGuid().ToString("N"));
        try
        {
            tokenizer.Save(dir, "t");
            File.WriteAllBytes(invalidUtf8, [0xFF, 0x20, 0x41, 0x0A]);
            e = Assert.Throws<SeqtalkException>(() => BpeTokenizer.Create(Path.Combine(dir, "t.vocab.txt"), invalidUtf8, new TextNormalizerOptions()));
            Assert.Contains("invalid UTF-8", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            File.Delete(invalidUtf8);
        }
    }

    [Fact]
    public void AverageTokensPerAnswer_WordBelowBpeBelowCharacter()
    {
        var answers = ChatbotData.Answers;
        var word = WordTokenizer.Train(answers);
        var character = CharTokenizer.Train(answers);
        var watch = Stopwatch.StartNew();
        var bpe = BpeTokenizer.Train(answers);
        var elapsed = watch.Elapsed;
        double Average(Tokenizer t) => answers.Average(a => (double)t.CountTokens(a));
        double w = Average(word), b = Average(bpe), c = Average(character);
        output.WriteLine($"tokens per answer over {answers.Count:N0} answers: word {w:F2} ({word.Vocabulary.Count:N0} ids), " +
            $"BPE {b:F2} ({bpe.Vocabulary.Count:N0} ids, trained in {elapsed.TotalSeconds:F2} s), character {c:F2} ({character.Vocabulary.Count:N0} ids)");
        Assert.True(w < b && b < c, $"word {w}, BPE {b}, character {c}");
    }
}
