using Seqtalk.Text;

namespace Seqtalk.Data;

/// <summary>
/// Cuts encoded pairs into padded <see cref="Batch"/>es laid out as <see cref="Batch"/> documents.
/// </summary>
/// <remarks>
/// With a <see cref="Random"/>: shuffle all pairs (Fisher–Yates), then take chunks of
/// <see cref="ChunkBatches"/> batches, sort each chunk by source length then target length (longest
/// first, ties keep the shuffled order), cut it into batches, and finally shuffle the order of all
/// batches with the same <see cref="Random"/>. Pairs of similar length share a batch, so little
/// padding is computed, while every epoch still sees different batches in a different order. Only the
/// very last batch can be smaller than <c>batchSize</c>; it is kept. Without a <see cref="Random"/>
/// the pairs are cut into batches in their given order (for evaluation).
/// Within each batch rows are ordered by source length, longest first (stable). The pairs come either as
/// a list of arrays or from an <see cref="IEncodedPairStore"/> (batches built one at a time); both give the
/// same batches for the same <see cref="Random"/>.
/// A pair whose source has no tokens gets the single source token <c>&lt;unk&gt;</c>, because the
/// engine needs every source length ≥ 1. An empty target is fine: it becomes <c>&lt;s&gt;</c> →
/// <c>&lt;/s&gt;</c>.
/// </remarks>
internal static class Batcher
{
    /// <summary>How many batches' worth of shuffled pairs are sorted by length together.</summary>
    public const int ChunkBatches = 50;

    public static List<Batch> MakeBatches(IReadOnlyList<EncodedPair> pairs, int batchSize, Random? shuffle)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        for (int i = 0; i < pairs.Count; i++)
        {
            if (pairs[i].Source is null || pairs[i].Target is null)
                throw new ArgumentException($"Pair {i} has a null source or target.", nameof(pairs));
        }

        var groups = MakeGroups(pairs.Count, i => SourceLength(pairs[i]), i => pairs[i].Target.Length, batchSize, shuffle);
        var batches = new List<Batch>(groups.Count);
        foreach (var rows in groups) batches.Add(Build(pairs, rows));
        return batches;
    }

    /// <summary>
    /// The same batches as <see cref="MakeBatches(IReadOnlyList{EncodedPair}, int, Random?)"/> gives for the
    /// same pairs and <see cref="Random"/>, built one at a time when indexed or enumerated: only the order
    /// (one int per pair) is held, and each batch reads its pairs from <paramref name="pairs"/> when it is
    /// asked for (a new <see cref="Batch"/> every time).
    /// </summary>
    public static IReadOnlyList<Batch> MakeBatches(IEncodedPairStore pairs, int batchSize, Random? shuffle)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var groups = MakeGroups(pairs.Count, i => Math.Max(1, pairs.SourceLength(i)), pairs.TargetLength, batchSize, shuffle);
        return new StoredBatches(pairs, groups);
    }

    /// <summary>Which pairs go into which batch, in batch order (see the class remarks).</summary>
    private static List<int[]> MakeGroups(int n, Func<int, int> sourceLength, Func<int, int> targetLength, int batchSize, Random? shuffle)
    {
        var order = Enumerable.Range(0, n).ToArray();
        var groups = new List<int[]>((n + batchSize - 1) / batchSize);
        if (shuffle is null)
        {
            for (int s = 0; s < n; s += batchSize)
                groups.Add(order[s..Math.Min(n, s + batchSize)]);
        }
        else
        {
            Shuffle(order.AsSpan(), shuffle);
            int chunk = batchSize * ChunkBatches;
            for (int s = 0; s < n; s += chunk)
            {
                // OrderBy is stable: equal lengths keep their shuffled order.
                var sorted = order.Skip(s).Take(Math.Min(chunk, n - s))
                    .OrderByDescending(sourceLength)
                    .ThenByDescending(targetLength)
                    .ToArray();
                for (int b = 0; b < sorted.Length; b += batchSize)
                    groups.Add(sorted[b..Math.Min(sorted.Length, b + batchSize)]);
            }
            Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(groups), shuffle);
        }
        return groups;
    }

    /// <summary>Draws from <paramref name="shuffle"/> exactly what <c>MakeBatches</c> (either overload) draws for
    /// <paramref name="pairCount"/> pairs, without building batches: resuming a run replays the shuffles of
    /// the epochs already done, so the generator is where an unbroken run would have it.</summary>
    internal static void AdvanceShuffle(int pairCount, int batchSize, Random shuffle)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        for (int i = pairCount - 1; i > 0; i--) shuffle.Next(i + 1);
        int chunk = batchSize * ChunkBatches, groups = 0;
        for (int s = 0; s < pairCount; s += chunk) groups += (Math.Min(chunk, pairCount - s) + batchSize - 1) / batchSize;
        for (int i = groups - 1; i > 0; i--) shuffle.Next(i + 1);
    }

    /// <summary>Fisher–Yates, written out so the order for a seed never depends on the runtime's
    /// <c>Random.Shuffle</c> implementation.</summary>
    internal static void Shuffle<T>(Span<T> items, Random random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static int SourceLength(EncodedPair pair) => Math.Max(1, pair.Source.Length);

    private static Batch Build(IReadOnlyList<EncodedPair> pairs, int[] members)
    {
        // Rows longest source first; stable so bucketed order (already sorted) is kept.
        var rows = members.OrderByDescending(i => SourceLength(pairs[i])).ToArray();
        int size = rows.Length;
        int sourceSteps = rows.Max(i => SourceLength(pairs[i]));
        int targetSteps = rows.Max(i => pairs[i].Target.Length) + 1;

        var source = new int[size * sourceSteps];                // [B, Ts], 0 = <pad>
        var sourceLengths = new int[size];
        var decoderInput = new int[size * targetSteps];          // [B, Tt]
        var decoderTarget = new int[size * targetSteps];         // [B, Tt]
        var targetLengths = new int[size];
        int real = 0;
        for (int b = 0; b < size; b++)
        {
            var pair = pairs[rows[b]];
            int[] src = pair.Source.Length == 0 ? [SpecialTokens.UnknownId] : pair.Source;
            src.CopyTo(source, b * sourceSteps);
            sourceLengths[b] = src.Length;

            // input: <s> y1 … yn; target: y1 … yn </s>
            int t0 = b * targetSteps;
            int len = pair.Target.Length;
            decoderInput[t0] = SpecialTokens.StartId;
            pair.Target.CopyTo(decoderInput, t0 + 1);
            pair.Target.CopyTo(decoderTarget, t0);
            decoderTarget[t0 + len] = SpecialTokens.EndId;
            targetLengths[b] = len + 1;
            real += len + 1;
        }

        return new Batch
        {
            Size = size,
            SourceSteps = sourceSteps,
            TargetSteps = targetSteps,
            Source = source,
            SourceLengths = sourceLengths,
            DecoderInput = decoderInput,
            DecoderTarget = decoderTarget,
            TargetLengths = targetLengths,
            RealTargetTokens = real,
        };
    }

    /// <summary>Batches built on demand from a store: batch i reads the pairs of group i.</summary>
    private sealed class StoredBatches(IEncodedPairStore pairs, List<int[]> groups) : IReadOnlyList<Batch>
    {
        public int Count => groups.Count;

        public Batch this[int index]
        {
            get
            {
                // Read the members in group order and build from local indices 0..k−1: Build's stable sort
                // then orders them exactly as it orders the members themselves.
                int[] members = groups[index];
                var local = new EncodedPair[members.Length];
                var rows = new int[members.Length];
                for (int i = 0; i < members.Length; i++)
                {
                    local[i] = pairs.Read(members[i]);
                    rows[i] = i;
                }
                return Build(local, rows);
            }
        }

        public IEnumerator<Batch> GetEnumerator()
        {
            for (int i = 0; i < groups.Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
