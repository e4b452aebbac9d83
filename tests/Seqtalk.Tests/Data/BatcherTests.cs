using Seqtalk.Data;
using Seqtalk.Text;

namespace Seqtalk.Tests.Data;

public class BatcherTests
{
    private const int IdBase = 5000;

    /// <summary>
    /// The ranged-token corpus: question tokens lie in [10, 100); the answer is the pair's own id
    /// (IdBase + index) followed by the question reversed with 100 added to each token, so every row of
    /// every batch can be traced back to its pair and checked against it exactly. Some questions are
    /// empty (they must become a lone &lt;unk&gt;).
    /// </summary>
    private static List<EncodedPair> Corpus(int count, int seed, int maxLength = 14)
    {
        var random = new Random(seed);
        var pairs = new List<EncodedPair>(count);
        for (int i = 0; i < count; i++)
        {
            int length = i % 37 == 5 ? 0 : random.Next(1, maxLength + 1);
            var source = Enumerable.Range(0, length).Select(_ => random.Next(10, 100)).ToArray();
            pairs.Add(new EncodedPair(source, [IdBase + i, .. source.Reverse().Select(t => t + 100)]));
        }
        return pairs;
    }

    /// <summary>Checks one batch completely against the pairs it came from; returns the pair indices by row.</summary>
    private static int[] CheckBatch(Batch batch, IReadOnlyList<EncodedPair> pairs)
    {
        int size = batch.Size, ts = batch.SourceSteps, tt = batch.TargetSteps;
        Assert.Equal(size * ts, batch.Source.Length);
        Assert.Equal(size * tt, batch.DecoderInput.Length);
        Assert.Equal(size * tt, batch.DecoderTarget.Length);
        Assert.Equal(ts, batch.SourceLengths.Max());
        Assert.Equal(tt, batch.TargetLengths.Max());
        Assert.Equal(batch.TargetLengths.Sum(), batch.RealTargetTokens);

        var ids = new int[size];
        for (int b = 0; b < size; b++)
        {
            if (b > 0) Assert.True(batch.SourceLengths[b] <= batch.SourceLengths[b - 1], "rows sorted by source length, longest first");
            var target = batch.DecoderTarget.AsSpan(b * tt, tt);
            int id = target[0] - IdBase;
            Assert.InRange(id, 0, pairs.Count - 1);
            ids[b] = id;
            var pair = pairs[id];

            int[] expectedSource = pair.Source.Length == 0 ? [SpecialTokens.UnknownId] : pair.Source;
            Assert.Equal(expectedSource.Length, batch.SourceLengths[b]);
            Assert.Equal(expectedSource, batch.Source.AsSpan(b * ts, expectedSource.Length).ToArray());
            Assert.All(batch.Source.AsSpan(b * ts + expectedSource.Length, ts - expectedSource.Length).ToArray(), t => Assert.Equal(0, t));

            int n = pair.Target.Length;
            Assert.Equal(n + 1, batch.TargetLengths[b]);
            Assert.Equal([.. pair.Target, SpecialTokens.EndId], target[..(n + 1)].ToArray());
            Assert.Equal([SpecialTokens.StartId, .. pair.Target], batch.DecoderInput.AsSpan(b * tt, n + 1).ToArray());
            Assert.All(target[(n + 1)..].ToArray(), t => Assert.Equal(0, t));
            Assert.All(batch.DecoderInput.AsSpan(b * tt + n + 1, tt - n - 1).ToArray(), t => Assert.Equal(0, t));

            // The answer is a function of the question: source and target of a row belong together.
            Assert.Equal(pair.Source.Reverse().Select(t => t + 100), target[1..n].ToArray());
        }
        return ids;
    }

    [Theory]
    [InlineData(1000, 32)]
    [InlineData(1000, 7)]
    [InlineData(5, 128)]
    [InlineData(128, 128)]
    public void EveryPairExactlyOncePerEpoch_LayoutExact(int count, int batchSize)
    {
        var pairs = Corpus(count, seed: 1);
        var random = new Random(42);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var batches = Batcher.MakeBatches(pairs, batchSize, random);
            var seen = batches.SelectMany(b => CheckBatch(b, pairs)).Order().ToArray();
            Assert.Equal(Enumerable.Range(0, count), seen);
            Assert.Equal((count + batchSize - 1) / batchSize, batches.Count);
            Assert.True(batches.Count(b => b.Size != batchSize) <= 1, "only the last partial batch may be smaller");
            Assert.Equal(count % batchSize == 0 ? batchSize : count % batchSize, batches.Min(b => b.Size));
        }
    }

    [Fact]
    public void SameSeed_SameBatches_DifferentSeedOrEpoch_Different()
    {
        var pairs = Corpus(600, seed: 2);
        static string Fingerprint(List<Batch> batches) =>
            string.Join("|", batches.Select(b => string.Join(",", b.Source) + ";" + string.Join(",", b.DecoderTarget)));

        var random = new Random(7);
        string first = Fingerprint(Batcher.MakeBatches(pairs, 16, random));
        string second = Fingerprint(Batcher.MakeBatches(pairs, 16, random));
        Assert.Equal(first, Fingerprint(Batcher.MakeBatches(pairs, 16, new Random(7))));
        Assert.NotEqual(first, second);
        Assert.NotEqual(first, Fingerprint(Batcher.MakeBatches(pairs, 16, new Random(8))));
    }

    [Fact]
    public void NoRandom_KeepsOrderInConsecutiveBatches()
    {
        var pairs = Corpus(50, seed: 3);
        var batches = Batcher.MakeBatches(pairs, 16, null);
        Assert.Equal([16, 16, 16, 2], batches.Select(b => b.Size));
        for (int i = 0; i < batches.Count; i++)
        {
            var ids = CheckBatch(batches[i], pairs).Order();
            Assert.Equal(Enumerable.Range(i * 16, batches[i].Size), ids);
        }
    }

    [Fact]
    public void EmptySourceBecomesUnk_EmptyTargetBecomesStartEnd()
    {
        var batch = Assert.Single(Batcher.MakeBatches([new EncodedPair([], []), new EncodedPair([7, 8], [9])], 4, null));
        Assert.Equal([2, 1], batch.SourceLengths);
        Assert.Equal([7, 8, SpecialTokens.UnknownId, 0], batch.Source);
        Assert.Equal([2, 1], batch.TargetLengths);           // the [9] row moved first with its longer source
        Assert.Equal([SpecialTokens.StartId, 9, SpecialTokens.StartId, 0], batch.DecoderInput);
        Assert.Equal([9, SpecialTokens.EndId, SpecialTokens.EndId, 0], batch.DecoderTarget);
        Assert.Equal(3, batch.RealTargetTokens);
    }

    [Fact]
    public void Arguments()
    {
        Assert.Empty(Batcher.MakeBatches([], 8, new Random(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Batcher.MakeBatches(Corpus(3, 1), 0, null));
    }

    /// <summary>Padding with bucketing against plain shuffled batches, on the real data's length
    /// distribution (whitespace words of ChatbotData.csv; the word tokenizer is close to that).</summary>
    [Fact]
    public void Bucketing_KeepsPaddingSmallOnChatbotDataLengths()
    {
        var rows = PairReader.ReadAll(DataFiles.ChatbotDataPath, null, out _);
        var pairs = rows.Select(p => new EncodedPair(
            Enumerable.Repeat(10, p.Question.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length).ToArray(),
            Enumerable.Repeat(11, p.Answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length).ToArray())).ToList();

        static double PaddingFraction(List<Batch> batches)
        {
            long cells = batches.Sum(b => (long)b.Size * (b.SourceSteps + b.TargetSteps));
            long real = batches.Sum(b => (long)b.SourceLengths.Sum() + b.RealTargetTokens);
            return 1 - (double)real / cells;
        }

        var random = new Random(123);
        double bucketed = PaddingFraction(Batcher.MakeBatches(pairs, 128, random));
        var shuffled = pairs.ToArray();
        Batcher.Shuffle(shuffled.AsSpan(), new Random(123));
        double plain = PaddingFraction(Batcher.MakeBatches(shuffled, 128, null));

        // Measured with batch 128: plain 0.620, bucketed 0.213 (see docs/data.md). The sequences are
        // short (3.6 and 4.7 words on average) and vary in two lengths, so some padding remains.
        Assert.True(plain > 0.5, $"plain padding {plain:F3}");
        Assert.True(bucketed < 0.25 && bucketed < plain / 2.5, $"bucketed padding {bucketed:F3} (plain {plain:F3})");
    }
}
