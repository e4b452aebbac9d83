// BLEU and chrF as sacreBLEU computes them with its defaults, so our figures can be compared with
// papers and tools that report sacreBLEU scores.
//
// Sources (sacreBLEU, Apache-2.0, https://github.com/mjpost/sacrebleu; Post 2018, "A Call for Clarity
// in Reporting BLEU Scores"):
// - sacrebleu/tokenizers/tokenizer_13a.py and tokenizer_re.py: the "13a" tokenizer (mteval-v13a.pl).
// - sacrebleu/tokenizers/tokenizer_char.py: the "char" tokenizer (" ".join(line), so every non-space
//   code point is a token).
// - sacrebleu/metrics/bleu.py: corpus BLEU. n-gram matches (clipped by the reference counts; with several
//   references, by the maximum count over them) and n-gram totals are SUMMED over the corpus, as are the
//   hypothesis length and the reference length (the length of the reference closest to the hypothesis,
//   the shorter one on ties); then BP = exp(1 − r/c) when c < r (0 when c = 0), p_n = matches/totals,
//   a zero p_n under the default "exp" smoothing becomes 1 / (2^k · total_n) for the k-th zero, a zero
//   total_n makes the score 0, and BLEU = 100 · BP · exp(Σ log p_n / 4).
// - sacrebleu/metrics/chrf.py: chrF with the defaults char_order = 6, word_order = 0, β = 2,
//   whitespace removed, eps_smoothing = False. For each order n the counts of hypothesis n-grams,
//   reference n-grams and matches (multiset intersection) are SUMMED over the corpus; the precisions
//   and recalls of the orders where both counts are non-zero are averaged (the "effective order"),
//   and chrF = 100 · (1 + β²)·P·R / (β²·P + R) (0 when P + R = 0).
// Characters are Unicode code points, as Python's str indexes them.

using System.Text;
using System.Text.RegularExpressions;

namespace Seqtalk.Training;

/// <summary>Tokenizers of sacreBLEU: "13a" (its default) and "char".</summary>
internal static partial class SacreBleuTokenizer
{
    // tokenizer_re.py, in order. The first class is {-~ [-` space-& (-+ :-@ and /: ASCII punctuation
    // except ' - . , (and, through the range " -&", the space itself, which the final split removes).
    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])", RegexOptions.CultureInvariant)]
    private static partial Regex Punctuation();

    [GeneratedRegex(@"([^0-9])([\.,])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaAfterNonDigit();

    [GeneratedRegex(@"([\.,])([^0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaBeforeNonDigit();

    [GeneratedRegex(@"([0-9])(-)", RegexOptions.CultureInvariant)]
    private static partial Regex DashAfterDigit();

    /// <summary>sacreBLEU's "13a" tokenization (its default): the tokens of <paramref name="line"/>.</summary>
    public static IReadOnlyList<string> Tokenize13a(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        // tokenizer_13a.py: the language-independent part.
        line = line.Replace("<skipped>", "", StringComparison.Ordinal)
            .Replace("-\n", "", StringComparison.Ordinal)
            .Replace("\n", " ", StringComparison.Ordinal);
        if (line.Contains('&', StringComparison.Ordinal))
        {
            line = line.Replace("&quot;", "\"", StringComparison.Ordinal)
                .Replace("&amp;", "&", StringComparison.Ordinal)
                .Replace("&lt;", "<", StringComparison.Ordinal)
                .Replace("&gt;", ">", StringComparison.Ordinal);
        }
        line = " " + line + " ";
        // tokenizer_re.py
        line = Punctuation().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return SplitOnWhitespace(line);
    }

    /// <summary>sacreBLEU's "char" tokenization: every code point that is not whitespace.</summary>
    public static IReadOnlyList<string> TokenizeCharacters(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var tokens = new List<string>(line.Length);
        foreach (var rune in line.EnumerateRunes())
        {
            if (!IsPythonWhitespace(rune)) tokens.Add(rune.ToString());
        }
        return tokens;
    }

    /// <summary>Python's <c>str.split()</c>: runs of whitespace separate tokens; none is empty.</summary>
    internal static List<string> SplitOnWhitespace(string line)
    {
        var tokens = new List<string>();
        int start = -1;
        for (int i = 0; i < line.Length; i++)
        {
            if (IsPythonWhitespace(line[i]))
            {
                if (start >= 0) tokens.Add(line[start..i]);
                start = -1;
            }
            else if (start < 0)
            {
                start = i;
            }
        }
        if (start >= 0) tokens.Add(line[start..]);
        return tokens;
    }

    /// <summary>Python's <c>str.isspace</c>: .NET's white space plus the separators U+001C–U+001F.
    /// (Every such character is in the BMP.)</summary>
    internal static bool IsPythonWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    private static bool IsPythonWhitespace(Rune r) => r.IsBmp && IsPythonWhitespace((char)r.Value);
}

/// <summary>Corpus BLEU-4 statistics, summed sentence by sentence as sacreBLEU does (see the file header).</summary>
internal sealed class BleuStatistics
{
    public const int MaxOrder = 4;
    private readonly long[] _matches = new long[MaxOrder], _totals = new long[MaxOrder];
    private long _hypothesisLength, _referenceLength;

    /// <summary>Clipped n-gram matches, n = 1..4, summed so far.</summary>
    public IReadOnlyList<long> Matches => _matches;
    /// <summary>Hypothesis n-grams, n = 1..4, summed so far.</summary>
    public IReadOnlyList<long> Totals => _totals;

    /// <summary>Adds one hypothesis and its references (all already tokenized).</summary>
    public void Add(IReadOnlyList<string> hypothesis, IReadOnlyList<IReadOnlyList<string>> references)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        if (references.Count == 0) throw new ArgumentException("A hypothesis needs at least one reference.", nameof(references));
        _hypothesisLength += hypothesis.Count;
        // The closest reference length; on a tie the shorter one (bleu.py _extract_reference_info).
        int closest = references[0].Count;
        foreach (var reference in references)
        {
            int diff = Math.Abs(reference.Count - hypothesis.Count), best = Math.Abs(closest - hypothesis.Count);
            if (diff < best || (diff == best && reference.Count < closest)) closest = reference.Count;
        }
        _referenceLength += closest;
        for (int n = 1; n <= MaxOrder; n++)
        {
            var maxReferenceCounts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var reference in references)
            {
                foreach (var (gram, count) in NGrams.Count(reference, n))
                    maxReferenceCounts[gram] = Math.Max(count, maxReferenceCounts.GetValueOrDefault(gram));
            }
            foreach (var (gram, count) in NGrams.Count(hypothesis, n))
                _matches[n - 1] += Math.Min(count, maxReferenceCounts.GetValueOrDefault(gram));
            _totals[n - 1] += Math.Max(0, hypothesis.Count - n + 1);
        }
    }

    /// <summary>BLEU in 0–100 with sacreBLEU's default "exp" smoothing.</summary>
    public double Score()
    {
        if (_hypothesisLength == 0) return 0;   // BP = 0
        double logSum = 0, smooth = 1;
        for (int n = 0; n < MaxOrder; n++)
        {
            if (_totals[n] == 0) return 0;       // bleu.py breaks, leaving p_n = 0: log 0 sends the score to 0
            double precision;
            if (_matches[n] == 0)
            {
                smooth *= 2;
                precision = 1 / (smooth * _totals[n]);
            }
            else
            {
                precision = (double)_matches[n] / _totals[n];
            }
            logSum += Math.Log(precision);
        }
        double brevity = _hypothesisLength >= _referenceLength ? 1 : Math.Exp(1 - (double)_referenceLength / _hypothesisLength);
        return 100 * brevity * Math.Exp(logSum / MaxOrder);
    }
}

/// <summary>Corpus chrF statistics (character n-grams, orders 1..6, whitespace removed), summed sentence
/// by sentence as sacreBLEU does (see the file header).</summary>
internal sealed class ChrfStatistics
{
    public const int Order = 6;
    public const double DefaultBeta = 2;
    private readonly long[] _hypothesis = new long[Order], _reference = new long[Order], _matches = new long[Order];

    /// <summary>Adds one hypothesis and its reference (plain text).</summary>
    public void Add(string hypothesis, string reference)
    {
        var hyp = SacreBleuTokenizer.TokenizeCharacters(hypothesis);
        var refChars = SacreBleuTokenizer.TokenizeCharacters(reference);
        for (int n = 1; n <= Order; n++)
        {
            var h = NGrams.Count(hyp, n);
            var r = NGrams.Count(refChars, n);
            foreach (var (gram, count) in h) _matches[n - 1] += Math.Min(count, r.GetValueOrDefault(gram));
            _hypothesis[n - 1] += Math.Max(0, hyp.Count - n + 1);
            _reference[n - 1] += Math.Max(0, refChars.Count - n + 1);
        }
    }

    /// <summary>chrF in 0–100.</summary>
    /// <param name="beta">Weight of recall against precision; sacreBLEU's default is 2.</param>
    public double Score(double beta = DefaultBeta)
    {
        double precision = 0, recall = 0;
        int effective = 0;
        for (int n = 0; n < Order; n++)
        {
            if (_hypothesis[n] == 0 || _reference[n] == 0) continue;
            precision += (double)_matches[n] / _hypothesis[n];
            recall += (double)_matches[n] / _reference[n];
            effective++;
        }
        if (effective == 0) return 0;
        precision /= effective;
        recall /= effective;
        if (precision + recall == 0) return 0;
        double b2 = beta * beta;
        return 100 * (1 + b2) * precision * recall / (b2 * precision + recall);
    }

    /// <summary>chrF of one hypothesis against one reference.</summary>
    public static double Sentence(string hypothesis, string reference)
    {
        var s = new ChrfStatistics();
        s.Add(hypothesis, reference);
        return s.Score();
    }
}

/// <summary>n-gram counting over token lists.</summary>
internal static class NGrams
{
    /// <summary>Counts of the n-grams of <paramref name="tokens"/>, keyed by the tokens joined with U+0001 (a control
    /// character: our normalizer turns those into spaces, so replies and normalized answers never hold it).</summary>
    public static Dictionary<string, int> Count(IReadOnlyList<string> tokens, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var gram = new StringBuilder();
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            gram.Clear();
            for (int k = 0; k < n; k++)
            {
                if (k > 0) gram.Append('\u0001');
                gram.Append(tokens[i + k]);
            }
            string key = gram.ToString();
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        return counts;
    }
}
