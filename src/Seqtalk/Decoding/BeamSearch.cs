// BeamSearch: batched beam search over the InferenceSession step API (greedy decoding is width 1).
//
// Rows: each question owns a contiguous block of active hypotheses (rows). Every step:
//   1. session.Step feeds each row its last token and returns its logits; LogitRules bans/penalises them.
//   2. For question q with `slots` = BeamSize − (finished so far) places left, each of its rows proposes its
//      `slots` best tokens; candidates rank by cumulative log-probability (parent + log p), ties to the earlier
//      row, then the lower id; the best `slots` are kept.
//   3. A kept candidate that is </s> finishes (the beam shrinks by one); the others become the next rows:
//      session.ReorderRows(parents) moves each parent's state under its children.
// A question is done when BeamSize hypotheses have finished; at MaxLength the live ones finish truncated.
// Finished hypotheses are ranked by Score = LogProbability / length^LengthPenalty (length counts </s>).
// With BeamSize 1 every step keeps the arg-max token (first maximum), so the reply is the greedy one.
// Greedy backstop: plain beam search can prune the greedy path and end below it (on a small ChatbotData model
// 3–6 of 120 validation questions did, at widths 2–8). So with BeamSize > 1 the greedy reply (same rules) joins
// the finished hypotheses: a wider beam never scores below width 1, at the cost of one more row per question.
// Legend: k beam size, Q questions per chunk (Q·k ≤ session capacity), Vt target vocabulary.

namespace Seqtalk.Decoding;

internal static class BeamSearch
{
    /// <summary>Per source, the finished hypotheses best first (at most <see cref="DecodeOptions.NBest"/>).</summary>
    public static DecodedSequence[][] Run(InferenceSession session, IReadOnlyList<int[]> sources, DecodeOptions options, int maxSteps)
    {
        int k = options.BeamSize;
        int perChunk = Math.Max(1, session.Capacity / k);
        var results = new DecodedSequence[sources.Count][];
        for (int start = 0; start < sources.Count; start += perChunk)
        {
            int count = Math.Min(perChunk, sources.Count - start);
            var chunk = new ArraySegment<int[]>(sources as int[][] ?? [.. sources], start, count);
            var part = RunChunk(session, chunk, options, maxSteps);
            if (k > 1)
            {
                var greedy = RunChunk(session, chunk, options with { BeamSize = 1, NBest = 1 }, maxSteps);
                for (int i = 0; i < count; i++) part[i] = WithBackstop(part[i], greedy[i][0], options.NBest);
            }
            Array.Copy(part, 0, results, start, count);
        }
        return results;
    }

    /// <summary>Adds the greedy hypothesis to the n-best list unless it is there already; best score first.</summary>
    private static DecodedSequence[] WithBackstop(DecodedSequence[] best, DecodedSequence greedy, int nBest)
    {
        foreach (var h in best) if (h.Ids.AsSpan().SequenceEqual(greedy.Ids)) return best;
        return [.. best.Append(greedy).OrderByDescending(h => h.Score).Take(nBest)];
    }

    private readonly record struct Candidate(double LogProbability, int Row, int Token);

    private static DecodedSequence[][] RunChunk(InferenceSession session, ArraySegment<int[]> sources, DecodeOptions options, int maxSteps)
    {
        int q = sources.Count, k = options.BeamSize, vt = session.TargetVocabSize;
        int capacity = q * k;
        session.Encode(sources);
        var finished = new List<DecodedSequence>[q];
        for (int i = 0; i < q; i++) finished[i] = [];

        // Row bookkeeping: owner question, cumulative log-probability, history (row-major [rows, maxSteps]).
        int rows = q;
        var owner = new int[capacity];
        var logProb = new double[capacity];
        var history = new int[capacity * Math.Max(1, maxSteps)];
        var input = new int[capacity];
        var nextOwner = new int[capacity];
        var nextLogProb = new double[capacity];
        var nextHistory = new int[history.Length];
        var parents = new int[capacity];
        var logits = new float[capacity * vt];
        var lse = new double[capacity];
        var scratch = new float[vt];
        var top = new int[k];
        var candidates = new List<Candidate>(k * k);
        for (int i = 0; i < q; i++) { owner[i] = i; input[i] = Text.SpecialTokens.StartId; }
        if (maxSteps == 0)
        {
            for (int i = 0; i < q; i++) finished[i].Add(new DecodedSequence([], 0, 0));
            rows = 0;
        }

        for (int step = 0; step < maxSteps && rows > 0; step++)
        {
            session.Step(input, rows, logits);
            for (int r = 0; r < rows; r++)
            {
                var row = logits.AsSpan(r * vt, vt);
                LogitRules.Apply(row, history.AsSpan(r * maxSteps, step), options);
                lse[r] = LogitRules.LogSumExp(row, scratch);
            }
            int next = 0;
            for (int r0 = 0; r0 < rows;)
            {
                int question = owner[r0], r1 = r0;
                while (r1 < rows && owner[r1] == question) r1++;
                int slots = k - finished[question].Count;
                candidates.Clear();
                for (int r = r0; r < r1; r++)
                {
                    if (double.IsNegativeInfinity(lse[r])) continue;   // every token banned: this hypothesis cannot go on
                    var row = logits.AsSpan(r * vt, vt);
                    int found = LogitRules.TopK(row, slots, top);
                    for (int j = 0; j < found; j++) candidates.Add(new Candidate(logProb[r] + (row[top[j]] - lse[r]), r, top[j]));
                }
                candidates.Sort(static (a, b) => a.LogProbability != b.LogProbability ? b.LogProbability.CompareTo(a.LogProbability)
                    : a.Row != b.Row ? a.Row.CompareTo(b.Row) : a.Token.CompareTo(b.Token));
                int keep = Math.Min(slots, candidates.Count);
                for (int j = 0; j < keep; j++)
                {
                    var c = candidates[j];
                    var past = history.AsSpan(c.Row * maxSteps, step);
                    if (c.Token == Text.SpecialTokens.EndId)
                    {
                        finished[question].Add(new DecodedSequence(past.ToArray(), c.LogProbability, LogitRules.Normalise(c.LogProbability, step + 1, options.LengthPenalty)));
                        continue;
                    }
                    if (step + 1 == maxSteps)
                    {
                        // Truncated at the length limit: finished without </s>.
                        int[] ids = [.. past, c.Token];
                        finished[question].Add(new DecodedSequence(ids, c.LogProbability, LogitRules.Normalise(c.LogProbability, step + 1, options.LengthPenalty)));
                        continue;
                    }
                    parents[next] = c.Row;
                    nextOwner[next] = question;
                    nextLogProb[next] = c.LogProbability;
                    past.CopyTo(nextHistory.AsSpan(next * maxSteps, step));
                    nextHistory[next * maxSteps + step] = c.Token;
                    input[next] = c.Token;
                    next++;
                }
                r0 = r1;
            }
            session.ReorderRows(parents, next);
            rows = next;
            (owner, nextOwner) = (nextOwner, owner);
            (logProb, nextLogProb) = (nextLogProb, logProb);
            (history, nextHistory) = (nextHistory, history);
        }

        var results = new DecodedSequence[q][];
        for (int i = 0; i < q; i++)
        {
            // Best score first; a stable sort keeps the earlier finished first on ties.
            var ranked = finished[i].OrderByDescending(h => h.Score).Take(options.NBest).ToArray();
            results[i] = ranked.Length > 0 ? ranked : [new DecodedSequence([], double.NegativeInfinity, double.NegativeInfinity)];
        }
        return results;
    }
}
