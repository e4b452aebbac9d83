namespace Seqtalk.Training;

/// <summary>Reply quality metrics over token sequences.</summary>
internal static class TextMetrics
{
    /// <summary>
    /// Corpus BLEU-4 in 0–100 (Papineni et al. 2002): geometric mean of clipped n-gram precisions for
    /// n = 1..4 summed over the corpus, times the brevity penalty. Zero n-gram counts use sacreBLEU's
    /// default "exp" smoothing (the k-th zero precision becomes 1 / (2^k · total)).
    /// </summary>
    public static double CorpusBleu(IReadOnlyList<IReadOnlyList<string>> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        var statistics = new BleuStatistics();
        for (int s = 0; s < hypotheses.Count; s++) statistics.Add(hypotheses[s], [references[s]]);
        return statistics.Score();
    }

    /// <summary>Mean over pairs of the token-level F1 (bag of tokens, as in SQuAD); two empty sequences score 1.</summary>
    public static double MeanTokenF1(IReadOnlyList<IReadOnlyList<string>> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        if (hypotheses.Count == 0) return 0;
        double sum = 0;
        for (int s = 0; s < hypotheses.Count; s++) sum += TokenF1(hypotheses[s], references[s]);
        return sum / hypotheses.Count;
    }

    public static double TokenF1(IReadOnlyList<string> hypothesis, IReadOnlyList<string> reference)
    {
        if (hypothesis.Count == 0 && reference.Count == 0) return 1;
        if (hypothesis.Count == 0 || reference.Count == 0) return 0;
        var refCounts = reference.GroupBy(t => t, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        int common = 0;
        foreach (var token in hypothesis)
        {
            if (refCounts.TryGetValue(token, out int c) && c > 0)
            {
                common++;
                refCounts[token] = c - 1;
            }
        }
        if (common == 0) return 0;
        double precision = (double)common / hypothesis.Count, recall = (double)common / reference.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>Distinct-n (Li et al. 2016): distinct n-grams over all replies divided by the n-grams in them
    /// (0 when there are none).</summary>
    public static double Distinct(IReadOnlyList<IReadOnlyList<string>> replies, int n)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var reply in replies)
        {
            foreach (var (gram, count) in NGrams.Count(reply, n))
            {
                seen.Add(gram);
                total += count;
            }
        }
        return total == 0 ? 0 : (double)seen.Count / total;
    }

    /// <summary>Share of the replies that equal one of the <paramref name="top"/> most frequent distinct replies
    /// (exact text): the sum of their counts divided by the number of replies. Which of several equally frequent
    /// replies fill the last places does not change the sum.</summary>
    public static double TopRepliesShare(IReadOnlyList<string> replies, int top = 10)
    {
        if (replies.Count == 0) return 0;
        long covered = replies.GroupBy(r => r, StringComparer.Ordinal)
            .Select(g => g.Count())
            .OrderByDescending(c => c)
            .Take(top)
            .Sum();
        return (double)covered / replies.Count;
    }
}
