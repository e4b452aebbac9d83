using Seqtalk.Text;

namespace Seqtalk.Tests.Text;

public class CharTokenizerTests
{
    [Fact]
    public void GoldenIds_SyllablesAndSpaceAreTokens()
    {
        var tokenizer = CharTokenizer.Train(["하루가 또 가네요.", "Hi 하하"]);
        // 하 3, ' ' 3, 가 2, then 루 또 네 요 . H i once each in order of first occurrence
        string[] expected = ["<pad>", "<unk>", "<s>", "</s>", "하", " ", "가", "루", "또", "네", "요", ".", "H", "i"];
        Assert.Equal(expected, Enumerable.Range(0, tokenizer.Vocabulary.Count).Select(tokenizer.Vocabulary.GetToken));
        Assert.Equal([4, 7, 6, 5, 8, 11], tokenizer.EncodeToIds("하루가 또."));
        Assert.Equal("하루가 또.", tokenizer.Decode([4, 7, 6, 5, 8, 11]));
        Assert.Equal(TokenizerKind.Character, tokenizer.Kind);
    }

    [Fact]
    public void SurrogatePairs_AreOneToken_UnknownCharactersAreUnk()
    {
        var tokenizer = CharTokenizer.Train(["좋아😊"]);
        Assert.Equal(3, tokenizer.CountTokens("좋아😊"));
        Assert.Equal([4, 5, 6], tokenizer.EncodeToIds("좋아😊"));
        Assert.Equal([4, SpecialTokens.UnknownId, 6], tokenizer.EncodeToIds("좋👍😊"));
        Assert.Equal("좋<unk>😊", tokenizer.Decode([4, 1, 6]));
    }

    [Fact]
    public void SpecialLookingText_IsOrdinaryCharacters()
    {
        var tokenizer = CharTokenizer.Train(["<s> </s> <pad>"]);
        Assert.All(tokenizer.EncodeToIds("<s></s><unk><pad>"), id => Assert.True(id >= SpecialTokens.Count || id == SpecialTokens.UnknownId));
        Assert.DoesNotContain(SpecialTokens.StartId, tokenizer.EncodeToIds("<s>"));
        Assert.Equal("<s> </s>", tokenizer.Decode(tokenizer.EncodeToIds("<s> </s>")));
    }

    [Fact]
    public void MaxVocabularyAndMinFrequency_Apply()
    {
        var tokenizer = CharTokenizer.Train(["aaab", "bcd"], new CharTokenizerOptions { MaxVocabulary = 5 });
        Assert.Equal(5, tokenizer.Vocabulary.Count);
        Assert.Equal("a", tokenizer.Vocabulary.GetToken(4));
        var frequent = CharTokenizer.Train(["aaab", "bcd"], new CharTokenizerOptions { MinFrequency = 2 });
        Assert.Equal(["a", "b"], Enumerable.Range(4, 2).Select(frequent.Vocabulary.GetToken));
        Assert.Equal(6, frequent.Vocabulary.Count);
        Assert.Throws<SeqtalkException>(() => CharTokenizer.Train(["a"], new CharTokenizerOptions { MaxVocabulary = 2 }));
    }
}
