using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.Training;

public class UnknownSpellingModelTests
{
    [Fact]
    public void Bits_AreTheSmoothedUnigramCostsOfTheCharactersAndTheEndSymbol()
    {
        // Vocabulary entries 가나 and 나 (special tokens excluded): n(가) = 1, n(나) = 2, N = 3 characters,
        // E = 2 entries, K = 2 distinct characters, Z = N + E + K + 2 = 9.
        // P(가) = 2/9, P(나) = 3/9, P(end) = 3/9, P(unseen) = 1/9.
        var model = UnknownSpellingModel.Fit(Vocabulary.FromOrdinaryTokens(["가나", "나"]));
        Assert.Equal(2, model.SeenCharacters);
        Assert.Equal(Math.Log2(3), model.EndBits, 12);
        Assert.Equal(Math.Log2(9), model.UnseenCharacterBits, 12);
        // 가나: log2(9/2) + log2(3) + log2(3) = log2(40.5).
        Assert.Equal(Math.Log2(40.5), model.Bits("가나"), 12);
        Assert.Equal(Math.Log2(40.5), model.Bits("나가"), 12);
        // 나다: 다 is unseen: log2(3) + log2(9) + log2(3) = log2(81).
        Assert.Equal(Math.Log2(81), model.Bits("나다"), 12);
        // The empty piece is the end symbol alone.
        Assert.Equal(Math.Log2(3), model.Bits(""), 12);
    }

    [Fact]
    public void Characters_AreTextElements()
    {
        // x with a combining acute (no precomposed form, so it stays two code points in NFC) is one character, distinct
        // from x; the vocabulary holds "x\u0301y" once: n(x́) = 1, n(y) = 1, N = 2, E = 1, K = 2, Z = 7.
        var model = UnknownSpellingModel.Fit(Vocabulary.FromOrdinaryTokens(["x\u0301y"]));
        Assert.Equal(2, model.SeenCharacters);
        Assert.Equal(Math.Log2(7.0 / 2) + Math.Log2(7.0 / 2), model.Bits("x\u0301"), 12);
        // A bare x is unseen: log2(7) for it, log2(7/2) for the end.
        Assert.Equal(Math.Log2(7) + Math.Log2(7.0 / 2), model.Bits("x"), 12);
    }

    [Fact]
    public void AnEmptyVocabulary_GivesEvenOddsToEndAndUnseen()
    {
        var model = UnknownSpellingModel.Fit(Vocabulary.FromOrdinaryTokens([]));
        Assert.Equal(1, model.EndBits, 12);
        Assert.Equal(2, model.Bits("x"), 12);
    }
}
