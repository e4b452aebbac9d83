// LogitRules: the per-row rules every search applies to a logits row before choosing, and the row's
// log-softmax. A row is one hypothesis; `history` is the tokens it has produced so far (no <s>).
// Order (as in Hugging Face's logits processors): repetition penalty, no-repeat n-gram ban, minimum
// length (</s> banned), <unk> ban. A banned token gets −∞.
// Legend: Vt target vocabulary.

using System.Numerics;
using System.Numerics.Tensors;
using Seqtalk.Text;

namespace Seqtalk.Decoding;

/// <summary>A finished hypothesis: ids without &lt;s&gt; and &lt;/s&gt;, summed log-probability, length-normalised score.</summary>
internal sealed record DecodedSequence(int[] Ids, double LogProbability, double Score);

internal static class LogitRules
{
    /// <summary>Applies the rules of <paramref name="options"/> to one row of logits [Vt] of a hypothesis that has
    /// produced <paramref name="history"/>.</summary>
    public static void Apply(Span<float> logits, ReadOnlySpan<int> history, DecodeOptions options)
    {
        float theta = (float)options.RepetitionPenalty;
        if (options.RepetitionPenalty != DecodeOptions.DefaultRepetitionPenalty)
        {
            // CTRL (Keskar et al. 2019): once per distinct earlier token, logit/θ if positive, logit·θ otherwise.
            for (int j = 0; j < history.Length; j++)
            {
                int id = history[j];
                if (history[..j].Contains(id)) continue;
                float z = logits[id];
                logits[id] = z > 0 ? z / theta : z * theta;
            }
        }
        int n = options.NoRepeatNgramSize;
        if (n > 0 && history.Length >= n - 1)
        {
            // Ban every token that would complete an n-gram already in the history.
            var prefix = history[(history.Length - (n - 1))..];
            for (int i = 0; i + n <= history.Length; i++)
            {
                if (history.Slice(i, n - 1).SequenceEqual(prefix)) logits[history[i + n - 1]] = float.NegativeInfinity;
            }
        }
        if (history.Length < options.MinLength) logits[SpecialTokens.EndId] = float.NegativeInfinity;
        if (!options.AllowUnknown) logits[SpecialTokens.UnknownId] = float.NegativeInfinity;
    }

    /// <summary>log Σ exp(logits): the row max first, exp vectorised (TensorPrimitives, into <paramref name="scratch"/>),
    /// the sum in double. −∞ when every token is banned.</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits, Span<float> scratch)
    {
        if (logits.IsEmpty) return double.NegativeInfinity;
        float max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max)) return double.NegativeInfinity;
        var e = scratch[..logits.Length];
        TensorPrimitives.Subtract(logits, max, e);
        TensorPrimitives.Exp(e, e);
        // Σ in double, vectorised: each float vector widens into two double vectors.
        var acc = Vector<double>.Zero;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= e.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(e[i..]), out var low, out var high);
                acc += low + high;
            }
        }
        double sum = Vector.Sum(acc);
        for (; i < e.Length; i++) sum += e[i];
        return max + Math.Log(sum);
    }

    /// <summary>Score = logProbability / length^alpha (length ≥ 1; an empty hypothesis scores its log-probability).</summary>
    public static double Normalise(double logProbability, int length, double alpha)
        => length <= 0 || alpha == 0 ? logProbability : logProbability / Math.Pow(length, alpha);

    /// <summary>Writes the <paramref name="count"/> largest logits' ids into <paramref name="ids"/>, largest first, the
    /// lower id first on ties; skips −∞. Returns how many were found (≤ count).</summary>
    public static int TopK(ReadOnlySpan<float> logits, int count, Span<int> ids)
    {
        if (count == 1 && !logits.IsEmpty)
        {
            // The arg-max (first maximum), vectorised; the scan below handles NaN.
            int best = TensorPrimitives.IndexOfMax(logits);
            float z = logits[best];
            if (float.IsNegativeInfinity(z)) return 0;
            if (!float.IsNaN(z)) { ids[0] = best; return 1; }
        }
        int found = 0;
        for (int o = 0; o < logits.Length; o++)
        {
            float z = logits[o];
            if (float.IsNegativeInfinity(z) || float.IsNaN(z)) continue;
            if (found == count && z <= logits[ids[found - 1]]) continue;
            int at = found < count ? found++ : found - 1;
            while (at > 0 && logits[ids[at - 1]] < z) { ids[at] = ids[at - 1]; at--; }
            ids[at] = o;
        }
        return found;
    }
}
