using Seqtalk.Text;

namespace Seqtalk.Tests.Text;

public class WordTokenizerTests
{
    private static readonly string[] Sample = ["하루가 또 가네요.", "Hello, world! 하루가 좋아요.", "hello 또 만나요?"];

    [Fact]
    public void GoldenIds_KoreanAndEnglishSample()
    {
        var tokenizer = WordTokenizer.Train(Sample);
        // counts: 하루가 2, 또 2, . 2, then the rest once each, in order of first occurrence
        string[] expected = ["<pad>", "<unk>", "<s>", "</s>", "하루가", "또", ".", "가네요", "Hello", ",", "world", "!", "좋아요", "hello", "만나요", "?"];
        Assert.Equal(expected, Enumerable.Range(0, tokenizer.Vocabulary.Count).Select(tokenizer.Vocabulary.GetToken));
        Assert.Equal([8, 9, 4, 5, 14, 11], tokenizer.EncodeToIds("Hello, 하루가 또 만나요!"));
        Assert.Equal("Hello, 하루가 또 만나요!", tokenizer.Decode([8, 9, 4, 5, 14, 11]));
    }

    [Fact]
    public void GoldenIds_Lowercase_MergesCases()
    {
        var tokenizer = WordTokenizer.Train(Sample, new WordTokenizerOptions { Normalizer = new TextNormalizerOptions { Lowercase = true } });
        Assert.Equal(7, tokenizer.Vocabulary.GetId("hello"));     // 2 occurrences, first seen after 하루가, 또, .
        Assert.Equal(SpecialTokens.UnknownId, tokenizer.Vocabulary.GetId("Hello"));
        Assert.Equal([7, 9, 4], tokenizer.EncodeToIds("HELLO, 하루가"));
    }

    [Fact]
    public void Ordering_IsByFrequencyThenFirstOccurrence()
    {
        var tokenizer = WordTokenizer.Train(["b a", "a c", "c b d", "e e e"]);
        // e 3; b, a, c 2 each (b seen first, then a, then c); d 1
        Assert.Equal(["e", "b", "a", "c", "d"], Enumerable.Range(4, 5).Select(tokenizer.Vocabulary.GetToken));
        Assert.Equal(9, tokenizer.Vocabulary.Count);
    }

    [Fact]
    public void MaxVocabulary_CountsTheSpecials_LikeKerasNumWords()
    {
        var tokenizer = WordTokenizer.Train(["b a", "a c", "c b d", "e e e"], new WordTokenizerOptions { MaxVocabulary = 6 });
        Assert.Equal(6, tokenizer.Vocabulary.Count);
        Assert.Equal([4, 5, SpecialTokens.UnknownId, SpecialTokens.UnknownId], tokenizer.EncodeToIds("e b a d"));
        Assert.Equal(4, WordTokenizer.Train(["a b"], new WordTokenizerOptions { MaxVocabulary = 4 }).Vocabulary.Count);
        Assert.Equal(7, WordTokenizer.Train(["a b c"], new WordTokenizerOptions { MaxVocabulary = 100 }).Vocabulary.Count);
    }

    [Fact]
    public void MinFrequency_DropsRareWords()
    {
        var tokenizer = WordTokenizer.Train(["b a", "a c", "c b d", "e e e"], new WordTokenizerOptions { MinFrequency = 3 });
        Assert.Equal(5, tokenizer.Vocabulary.Count);
        Assert.Equal([4, 1], tokenizer.EncodeToIds("e b"));
        var both = WordTokenizer.Train(["b a", "a c", "c b d", "e e e"], new WordTokenizerOptions { MinFrequency = 2, MaxVocabulary = 6 });
        Assert.Equal(["e", "b"], Enumerable.Range(4, 2).Select(both.Vocabulary.GetToken));
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(0, 1)]
    [InlineData(null, 0)]
    public void Options_OutOfRange_Throw(int? max, int min)
    {
        var e = Assert.Throws<SeqtalkException>(() => WordTokenizer.Train(["a"], new WordTokenizerOptions { MaxVocabulary = max, MinFrequency = min }));
        Assert.Contains(max is null ? "MinFrequency" : "MaxVocabulary", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NormalizationMode.Default)]
    [InlineData(NormalizationMode.Tutorial)]
    public void SpecialLookingText_IsOrdinaryText(NormalizationMode mode)
    {
        string tricky = "<s> 안녕 </s> <pad> <unk> <start> 잘가 <end>";
        var tokenizer = WordTokenizer.Train([tricky, "보통 문장"], new WordTokenizerOptions { Normalizer = new TextNormalizerOptions { Mode = mode } });
        var ids = tokenizer.EncodeToIds(tricky);
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.True(id >= SpecialTokens.Count, $"text mapped to special id {id}"));
        Assert.Equal(tokenizer.Normalizer.JoinWords(tokenizer.Normalizer.SplitWords(tricky)), tokenizer.Decode(ids));
        for (int id = SpecialTokens.Count; id < tokenizer.Vocabulary.Count; id++)
            Assert.DoesNotContain(tokenizer.Vocabulary.GetToken(id), SpecialTokens.All);

        // A tokenizer that never saw them maps them to <unk>, never to <s> or </s>.
        var plain = WordTokenizer.Train(["보통 문장"], new WordTokenizerOptions { Normalizer = new TextNormalizerOptions { Mode = mode } });
        Assert.All(plain.EncodeToIds("<s> </s> <pad>"), id => Assert.Equal(SpecialTokens.UnknownId, id));
    }

    [Fact]
    public void UnknownWords_MapToUnk_AndDecodeAsUnkText()
    {
        var tokenizer = WordTokenizer.Train(Sample);
        var ids = tokenizer.EncodeToIds("하루가 외계어 만나요?");
        Assert.Equal([4, SpecialTokens.UnknownId, 14, 15], ids);
        Assert.Equal("하루가 <unk> 만나요?", tokenizer.Decode(ids));
    }

    [Fact]
    public void Decode_SkipsPadAndStart_StopsAtEnd()
    {
        var tokenizer = WordTokenizer.Train(Sample);
        Assert.Equal("하루가 또.", tokenizer.Decode([2, 4, 0, 5, 6, 3, 7, 8]));
        Assert.Equal("", tokenizer.Decode([]));
        Assert.Equal("", tokenizer.Decode([3, 4]));
    }

    [Fact]
    public void Decode_IdOutsideVocabulary_ThrowsNamingIt()
    {
        var tokenizer = WordTokenizer.Train(Sample);
        var e = Assert.Throws<SeqtalkException>(() => tokenizer.Decode([4, 16]));
        Assert.Contains("16", e.Message, StringComparison.Ordinal);
        Assert.Throws<SeqtalkException>(() => tokenizer.Decode([-1]));
        Assert.Equal(System.Buffers.OperationStatus.InvalidData, tokenizer.Decode([4, 99], new char[100], out int consumed, out int written));
        Assert.Equal((1, 3), (consumed, written));
    }

    [Fact]
    public void Create_FromLoadedVocabulary_EncodesLikeTheTrainedOne()
    {
        var options = new TextNormalizerOptions { Lowercase = true };
        var trained = WordTokenizer.Train(Sample, new WordTokenizerOptions { Normalizer = options });
        var writer = new StringWriter();
        trained.Vocabulary.Save(writer);
        var created = WordTokenizer.Create(Vocabulary.Load(new StringReader(writer.ToString())), options);
        Assert.Equal(TokenizerKind.Word, created.Kind);
        Assert.Equal(trained.EncodeToIds("HELLO 하루가, 또?"), created.EncodeToIds("HELLO 하루가, 또?"));
    }
}
