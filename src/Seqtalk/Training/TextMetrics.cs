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
        const int maxOrder = 4;
        var matches = new long[maxOrder];
        var totals = new long[maxOrder];
        long hypLength = 0, refLength = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hyp = hypotheses[s];
            var reference = references[s];
            hypLength += hyp.Count;
            refLength += reference.Count;
            for (int n = 1; n <= maxOrder; n++)
            {
                var refCounts = NGrams(reference, n);
                foreach (var (gram, count) in NGrams(hyp, n))
                    matches[n - 1] += Math.Min(count, refCounts.GetValueOrDefault(gram));
                totals[n - 1] += Math.Max(0, hyp.Count - n + 1);
            }
        }
        if (hypLength == 0) return 0;
        double logSum = 0;
        int zeros = 0;
        for (int n = 0; n < maxOrder; n++)
        {
            if (totals[n] == 0) return 0;
            double precision;
            if (matches[n] == 0)
            {
                zeros++;
                precision = 1.0 / (Math.Pow(2, zeros) * totals[n]);
            }
            else
            {
                precision = (double)matches[n] / totals[n];
            }
            logSum += Math.Log(precision);
        }
        double brevity = hypLength >= refLength ? 1 : Math.Exp(1 - (double)refLength / hypLength);
        return 100 * brevity * Math.Exp(logSum / maxOrder);
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

    private static Dictionary<string, int> NGrams(IReadOnlyList<string> tokens, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            string gram = string.Join('\u0001', tokens.Skip(i).Take(n));
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }
}
