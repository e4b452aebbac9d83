using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

public class TextMetricsTests
{
    private static IReadOnlyList<string> T(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Bleu_IsHundredForIdenticalAndSmoothedForDisjoint()
    {
        var refs = new[] { T("the cat sat on the mat"), T("a b c d e") };
        Assert.Equal(100, TextMetrics.CorpusBleu(refs, refs), 9);
        // Disjoint: every precision is zero and gets sacreBLEU's "exp" smoothing, 1 / (2^k · total_n).
        double smoothed = 100 * Math.Exp((Math.Log(1.0 / (2 * 11)) + Math.Log(1.0 / (4 * 9)) + Math.Log(1.0 / (8 * 7)) + Math.Log(1.0 / (16 * 5))) / 4);
        Assert.Equal(smoothed, TextMetrics.CorpusBleu(new[] { T("x y z w v u"), T("p q r s t") }, refs), 9);
    }

    [Fact]
    public void Bleu_MatchesAHandComputedValue()
    {
        // hyp "the cat sat on mat" vs ref "the cat sat on the mat":
        // p1 = 5/5, p2 = 3/4, p3 = 2/3, p4 = 1/2; BP = exp(1 - 6/5).
        double expected = 100 * Math.Exp(1 - 6.0 / 5) * Math.Exp((Math.Log(1) + Math.Log(0.75) + Math.Log(2.0 / 3) + Math.Log(0.5)) / 4);
        Assert.Equal(expected, TextMetrics.CorpusBleu(new[] { T("the cat sat on mat") }, new[] { T("the cat sat on the mat") }), 9);
    }

    [Fact]
    public void TokenF1_CountsTheBagOverlap()
    {
        Assert.Equal(1, TextMetrics.TokenF1(T("a b"), T("b a")), 9);
        Assert.Equal(0, TextMetrics.TokenF1(T("a"), T("b")), 9);
        // common 1 ("a" once): precision 1/2, recall 1/3 -> F1 0.4
        Assert.Equal(0.4, TextMetrics.TokenF1(T("a a"), T("a b c")), 9);
        Assert.Equal(1, TextMetrics.TokenF1(T(""), T("")), 9);
    }
}
