// Sampler: batched sampling over the InferenceSession step API: temperature, top-k, top-p (nucleus).
//
// Rows: sample j of question i is one row with its own generator, new Random(seed_i + j), so a reply depends
// only on its question, its options and its seed, never on what it is decoded with (the session's Step gives a
// row the same logits whatever the other rows hold). Every step, for each row:
//   1. LogitRules bans/penalises the logits; log p = z − logΣexp(z) is the score of the chosen token.
//   2. Candidates: every token not banned; with TopK > 0 only the TopK largest logits (lower id first on ties).
//   3. Weights w = exp((z − max)/T); with TopP < 1 the candidates, largest first, are cut after the smallest
//      prefix whose probability sum reaches TopP (Holtzman et al. 2020).
//   4. u = NextDouble()·Σw; the token is the first candidate (in candidate order) where the running sum passes u.
// A row that emits </s> or reaches MaxLength leaves the batch; the last row moves into its place (MoveRow).
// Legend: n samples per question, Q questions per chunk (Q·n ≤ session capacity), Vt target vocabulary.

using Seqtalk.Text;

namespace Seqtalk.Decoding;

internal static class Sampler
{
    /// <summary>Per source, <see cref="DecodeOptions.NBest"/> samples in order; <paramref name="seeds"/>[i] seeds source i.</summary>
    public static DecodedSequence[][] Run(InferenceSession session, IReadOnlyList<int[]> sources, DecodeOptions options, int maxSteps, IReadOnlyList<int> seeds)
    {
        int n = options.NBest;
        int perChunk = Math.Max(1, session.Capacity / n);
        var all = sources as int[][] ?? [.. sources];
        var results = new DecodedSequence[sources.Count][];
        for (int start = 0; start < sources.Count; start += perChunk)
        {
            int count = Math.Min(perChunk, sources.Count - start);
            var part = RunChunk(session, new ArraySegment<int[]>(all, start, count), options, maxSteps, seeds, start);
            Array.Copy(part, 0, results, start, count);
        }
        return results;
    }

    private static DecodedSequence[][] RunChunk(InferenceSession session, ArraySegment<int[]> sources, DecodeOptions options, int maxSteps,
        IReadOnlyList<int> seeds, int seedOffset)
    {
        int q = sources.Count, n = options.NBest, vt = session.TargetVocabSize, rows = q * n;
        session.Encode(sources);
        var parents = new int[rows];
        for (int r = 0; r < rows; r++) parents[r] = r / n;
        session.ReorderRows(parents, rows);

        var slot = new int[rows];                 // row → q·n + j (which sample of which question)
        var rngs = new Random[rows];
        var history = new List<int>[rows];
        var logProb = new double[rows];
        var input = new int[rows];
        var results = new DecodedSequence[q][];
        for (int i = 0; i < q; i++) results[i] = new DecodedSequence[n];
        for (int r = 0; r < rows; r++)
        {
            slot[r] = r;
            rngs[r] = new Random(unchecked(seeds[seedOffset + r / n] + r % n));
            history[r] = [];
            input[r] = SpecialTokens.StartId;
        }
        var logits = new float[rows * vt];
        var candidates = new int[vt];
        var weights = new double[vt];
        var sortKeys = new float[vt];

        int active = maxSteps == 0 ? 0 : rows;
        for (int r = active; r < rows; r++) Finish(r, ended: false);
        for (int step = 0; step < maxSteps && active > 0; step++)
        {
            session.Step(input, active, logits);
            for (int r = 0; r < active;)
            {
                var row = logits.AsSpan(r * vt, vt);
                LogitRules.Apply(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history[r]), options);
                double lse = LogitRules.LogSumExp(row, sortKeys);
                int token = double.IsNegativeInfinity(lse) ? SpecialTokens.EndId : Draw(row, options, rngs[r], candidates, weights, sortKeys);
                if (!double.IsNegativeInfinity(lse)) logProb[r] += row[token] - lse;
                bool ended = token == SpecialTokens.EndId;
                if (!ended) { history[r].Add(token); input[r] = token; }
                if (ended || step + 1 == maxSteps)
                {
                    Finish(r, ended);
                    active--;
                    if (r != active) { session.MoveRow(active, r); Move(active, r); continue; }   // r now holds a row not handled this step
                    break;
                }
                r++;
            }
        }
        return results;

        void Finish(int r, bool ended)
        {
            int length = history[r].Count + (ended ? 1 : 0);
            results[slot[r] / n][slot[r] % n] = new DecodedSequence([.. history[r]], logProb[r], LogitRules.Normalise(logProb[r], length, options.LengthPenalty));
        }

        void Move(int from, int to)
        {
            slot[to] = slot[from]; rngs[to] = rngs[from]; history[to] = history[from];
            logProb[to] = logProb[from]; input[to] = input[from];
            Array.Copy(logits, from * vt, logits, to * vt, vt);   // the moved row is handled next, from its own logits
        }
    }

    /// <summary>Draws one token from a processed logits row (see the file header).</summary>
    private static int Draw(ReadOnlySpan<float> row, DecodeOptions options, Random rng, int[] candidates, double[] weights, float[] sortKeys)
    {
        int count = 0;
        int topK = options.TopK;
        if (topK > 0 && topK <= DecodeOptions.MaxBeamSize)
        {
            count = LogitRules.TopK(row, Math.Min(topK, row.Length), candidates);
        }
        else
        {
            for (int o = 0; o < row.Length; o++) if (!float.IsNegativeInfinity(row[o])) candidates[count++] = o;
            if (topK > 0 || options.TopP < 1)
            {
                // Largest first (sorting on negated logits; ties keep a fixed, input-determined order).
                for (int c = 0; c < count; c++) sortKeys[c] = -row[candidates[c]];
                Array.Sort(sortKeys, candidates, 0, count);
                if (topK > 0) count = Math.Min(count, topK);
            }
        }
        if (count == 0) return SpecialTokens.EndId;
        float max = float.NegativeInfinity;
        for (int c = 0; c < count; c++) max = Math.Max(max, row[candidates[c]]);
        double inverseT = 1.0 / options.Temperature, total = 0;
        for (int c = 0; c < count; c++) total += weights[c] = Math.Exp((row[candidates[c]] - max) * inverseT);
        if (options.TopP < 1)
        {
            // Candidates are largest first here (both branches above sort them when TopP < 1 or TopK > 0).
            double target = options.TopP * total, running = 0;
            int keep = 0;
            while (keep < count && running < target) running += weights[keep++];
            count = Math.Max(1, keep);
            total = running > 0 ? running : weights[0];
        }
        double u = rng.NextDouble() * total, sum = 0;
        for (int c = 0; c < count; c++)
        {
            sum += weights[c];
            if (u < sum) return candidates[c];
        }
        return candidates[count - 1];
    }
}
