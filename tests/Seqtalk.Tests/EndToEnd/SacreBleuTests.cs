using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

/// <summary>
/// BLEU and chrF against figures sacreBLEU itself prints (its README and test suite, github.com/mjpost/sacrebleu
/// test/test_bleu.py and test/test_chrf.py; the Hugging Face chrF metric card, which runs sacreBLEU with its
/// defaults), and against small cases worked out by hand from the definitions in SacreBleu.cs.
/// </summary>
public class SacreBleuTests
{
    private static double CorpusBleu(IReadOnlyList<string> hypotheses, params IReadOnlyList<string>[] referenceStreams)
    {
        var s = new BleuStatistics();
        for (int i = 0; i < hypotheses.Count; i++)
            s.Add(SacreBleuTokenizer.Tokenize13a(hypotheses[i]), referenceStreams.Select(r => SacreBleuTokenizer.Tokenize13a(r[i])).ToList());
        return s.Score();
    }

    private static double CorpusChrf(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references, double beta = 2)
    {
        var s = new ChrfStatistics();
        for (int i = 0; i < hypotheses.Count; i++) s.Add(hypotheses[i], references[i]);
        return s.Score(beta);
    }

    [Theory]
    [InlineData("The dog bit the man.", "The dog bit the man .")]
    [InlineData("It wasn't surprising.", "It wasn't surprising .")]
    [InlineData("3.5 - 4,000 km.", "3.5 - 4,000 km .")]          // . and , stay between digits
    [InlineData("pages 2-3, not a-b", "pages 2 - 3 , not a-b")]   // a dash is split only after a digit
    [InlineData("&quot;hi&quot; (x+y)/2=z?", "\" hi \" ( x + y ) / 2 = z ?")]
    [InlineData("  하루가   또 가네요! ", "하루가 또 가네요 !")]
    [InlineData("", "")]
    public void Tokenize13a_SplitsAsMtevalDoes(string line, string expected)
    {
        Assert.Equal(expected, string.Join(' ', SacreBleuTokenizer.Tokenize13a(line)));
    }

    [Fact]
    public void TokenizeCharacters_IsEveryNonSpaceCodePoint()
    {
        Assert.Equal(["하", "루", "가", "또", "!", "😀"], SacreBleuTokenizer.TokenizeCharacters(" 하루가 또!\t😀 "));
    }

    [Fact]
    public void CorpusBleu_MatchesSacreBleuReadmeExample()
    {
        // sacreBLEU README / test_bleu.py test_corpus_bleu_cases: default settings give 48.530827, and three
        // empty hypotheses give 0 (they are not removed).
        string[] hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
        string[] refs1 = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."];
        string[] refs2 = ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."];
        Assert.Equal(48.530827, CorpusBleu(hyps, refs1, refs2), 6);
        Assert.Equal(0, CorpusBleu(["", "", ""], refs1, refs2));
    }

    [Fact]
    public void BleuStatistics_MatchSacreBleuCounts()
    {
        // test_bleu.py test_case_statistics: counts [4, 2, 1, 0], totals [6, 5, 4, 3].
        var s = new BleuStatistics();
        s.Add(SacreBleuTokenizer.Tokenize13a("am I am a character sequence"), [SacreBleuTokenizer.Tokenize13a("I am a symbol string sequence a a")]);
        Assert.Equal([4L, 2, 1, 0], s.Matches);
        Assert.Equal([6L, 5, 4, 3], s.Totals);
        // By hand: c = 6 < r = 8 → BP = exp(1 − 8/6); p4 = 0 is the first zero → 1/(2·3).
        double expected = 100 * Math.Exp(1 - 8.0 / 6) * Math.Exp((Math.Log(4.0 / 6) + Math.Log(2.0 / 5) + Math.Log(1.0 / 4) + Math.Log(1.0 / 6)) / 4);
        Assert.Equal(expected, s.Score(), 10);
    }

    [Fact]
    public void CorpusBleu_SumsStatisticsOverSentencesRatherThanAveragingScores()
    {
        // Sentence 1 "a b c d" = its reference (4/4, 3/3, 2/2, 1/1); sentence 2 "x y z w" vs "a b c d" matches
        // nothing (0/4, 0/3, 0/2, 0/1). Corpus: p = 4/8, 3/6, 2/4, 1/2, BP = 1 → exactly 50. The mean of the two
        // sentence scores would be (100 + smoothed ≈ 3.6) / 2.
        var s = new BleuStatistics();
        s.Add(["a", "b", "c", "d"], [["a", "b", "c", "d"]]);
        s.Add(["x", "y", "z", "w"], [["a", "b", "c", "d"]]);
        Assert.Equal(50, s.Score(), 10);
    }

    [Fact]
    public void CharacterBleu_OnKorean_MatchesAHandComputedValue()
    {
        // hyp "좋은 하루" → 좋 은 하 루 ; ref "좋은 하루 되세요" → 좋 은 하 루 되 세 요.
        // 1-grams 4/4, 2-grams 3/3 (좋은, 은하, 하루), 3-grams 2/2, 4-grams 1/1; c = 4 < r = 7.
        var s = new BleuStatistics();
        s.Add(SacreBleuTokenizer.TokenizeCharacters("좋은 하루"), [SacreBleuTokenizer.TokenizeCharacters("좋은 하루 되세요")]);
        Assert.Equal(100 * Math.Exp(1 - 7.0 / 4), s.Score(), 10);
    }

    [Fact]
    public void Chrf_MatchesSacreBleuOutputs()
    {
        // Hugging Face chrF metric card (sacreBLEU defaults: char order 6, β = 2, spaces removed).
        Assert.Equal(61.576379378113785, CorpusChrf(
            ["The relationship between Obama and Netanyahu is not exactly friendly."],
            ["The ties between Obama and Netanyahu are not particularly friendly."]), 9);
        Assert.Equal(84.64214891738334, CorpusChrf(
            ["The relationship between cats and dogs is not exactly friendly.", "a good bookshop is just a genteel black hole that knows how to read."],
            ["The relationship between dogs and cats is not exactly friendly.", "A good bookshop is just a genteel Black Hole that knows how to read."]), 9);
    }

    [Theory]   // test_chrf.py test_cases_effective_order: β = 3, no eps smoothing (our mode).
    [InlineData(new[] { "a" }, new[] { "a" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "reference" }, 0.0)]
    [InlineData(new[] { "a b c" }, new[] { "a b c" }, 100.0)]
    [InlineData(new[] { "a b c" }, new[] { "abc" }, 100.0)]
    [InlineData(new[] { "" }, new[] { "c" }, 0.0)]
    [InlineData(new[] { "a", "b" }, new[] { "a", "c" }, 50.0)]
    [InlineData(new[] { "aa" }, new[] { "ab" }, 25.0)]
    public void Chrf_MatchesSacreBleuEffectiveOrderCases(string[] hypotheses, string[] references, double expected)
    {
        Assert.Equal(expected, CorpusChrf(hypotheses, references, beta: 3), 4);
    }

    [Fact]
    public void Chrf_IsCorpusLevel_SummedStatistics()
    {
        // "ab" vs "ab": order 1 2/2 (P = R = 1), order 2 1/1; orders 3–6 have no n-grams.
        // "ab" vs "cd": order 1 0 of 2 and 2, order 2 0 of 1 and 1.
        // Summed: order 1 match 2, hyp 4, ref 4 (P = R = 1/2); order 2 match 1 of 2 (1/2) → P = R = 1/2 → chrF 50.
        // The mean of the sentence scores would also be (100 + 0)/2 = 50, so a third pair makes them differ:
        // "abc" vs "abcabc": 1-grams 3/3 hyp, 3/6 ref; 2-grams 2/2, 2/5; 3-grams 1/1, 1/4.
        Assert.Equal(50, CorpusChrf(["ab", "ab"], ["ab", "cd"]), 10);
        // Summed over all three: order 1: match 5, hyp 7, ref 10; order 2: match 3, hyp 4, ref 7;
        // order 3: match 1, hyp 1, ref 4 (orders 4–6: the hypotheses have none).
        double p = (5.0 / 7 + 3.0 / 4 + 1.0 / 1) / 3, r = (5.0 / 10 + 3.0 / 7 + 1.0 / 4) / 3;
        double expected = 100 * 5 * p * r / (4 * p + r);
        Assert.Equal(expected, CorpusChrf(["ab", "ab", "abc"], ["ab", "cd", "abcabc"]), 10);
        double meanOfSentences = (ChrfStatistics.Sentence("ab", "ab") + ChrfStatistics.Sentence("ab", "cd") + ChrfStatistics.Sentence("abc", "abcabc")) / 3;
        Assert.NotEqual(Math.Round(expected, 6), Math.Round(meanOfSentences, 6));
    }

    [Fact]
    public void Distinct_AndTopRepliesShare()
    {
        IReadOnlyList<string>[] replies = [["a", "b"], ["a", "b"], ["a", "c"]];
        Assert.Equal(3.0 / 6, TextMetrics.Distinct(replies, 1), 12);   // a b c of 6 tokens
        Assert.Equal(2.0 / 3, TextMetrics.Distinct(replies, 2), 12);   // "a b", "a c" of 3 bigrams
        Assert.Equal(0, TextMetrics.Distinct([["a"]], 2));
        Assert.Equal(3.0 / 4, TextMetrics.TopRepliesShare(["x", "x", "y", "z"], top: 2), 12);
        Assert.Equal(1, TextMetrics.TopRepliesShare(["x", "x", "y", "z"], top: 10), 12);
    }
}
