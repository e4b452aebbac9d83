using Seqtalk.Data;

namespace Seqtalk.Tests.Data;

public sealed class TokenStoreTests : IDisposable
{
    private readonly DataFiles _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>Pairs of random lengths 0..maxLength (some empty) with ids up to <paramref name="largestId"/>.</summary>
    private static List<EncodedPair> RandomPairs(int count, int maxLength, int largestId, int seed)
    {
        var random = new Random(seed);
        var pairs = new List<EncodedPair>(count);
        for (int i = 0; i < count; i++)
        {
            int[] Ids(int length) => Enumerable.Range(0, length).Select(_ => random.Next(largestId + 1)).ToArray();
            pairs.Add(new EncodedPair(Ids(i % 11 == 3 ? 0 : random.Next(maxLength + 1)), Ids(i % 13 == 4 ? 0 : random.Next(maxLength + 1))));
        }
        pairs.Add(new EncodedPair([largestId, 0], [largestId]));
        return pairs;
    }

    [Theory]
    [InlineData(65_535, 2)]   // the largest id that fits 16 bits
    [InlineData(65_536, 4)]
    [InlineData(9, 2)]
    public void RoundTrips_InAnyOrder_WithTheNarrowestIdWidth(int largestId, int idBytes)
    {
        // 3,000 pairs of up to 120 ids each: several 64 KiB write buffers.
        var pairs = RandomPairs(3_000, 120, largestId, seed: largestId);
        using var store = new TokenStore(_files.Folder, capacity: 10, largestId);   // grows past its capacity
        foreach (var pair in pairs) store.Add(pair);

        Assert.Equal(idBytes, store.IdBytes);
        Assert.Equal(pairs.Count, store.Count);
        Assert.Equal((long)pairs.Sum(p => p.Source.Length + p.Target.Length) * idBytes, store.Length);
        Assert.Equal(pairs.Max(p => p.Source.Length), store.MaxSourceLength);
        Assert.Equal(pairs.Max(p => p.Target.Length), store.MaxTargetLength);
        var order = Enumerable.Range(0, pairs.Count).ToArray();
        new Random(5).Shuffle(order);
        foreach (int i in order)
        {
            Assert.Equal(pairs[i].Source.Length, store.SourceLength(i));
            Assert.Equal(pairs[i].Target.Length, store.TargetLength(i));
            var read = store.Read(i);
            Assert.Equal(pairs[i].Source, read.Source);
            Assert.Equal(pairs[i].Target, read.Target);
        }
    }

    [Fact]
    public void AddingAfterReading_Works()
    {
        using var store = new TokenStore(_files.Folder, 4, 100);
        store.Add(new EncodedPair([1, 2, 3], [4]));
        Assert.Equal([1, 2, 3], store.Read(0).Source);
        store.Add(new EncodedPair([], [5, 6]));
        Assert.Equal([5, 6], store.Read(1).Target);
        Assert.Equal([4], store.Read(0).Target);
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Read(2));
    }

    [Fact]
    public void TheFileLeavesNoTrace()
    {
        var store = new TokenStore(_files.Folder, 4, 100);
        store.Add(new EncodedPair([1, 2, 3], [4]));
        if (!OperatingSystem.IsWindows()) Assert.Empty(Directory.GetFiles(_files.Folder));   // unlinked at once
        store.Dispose();
        Assert.Empty(Directory.GetFiles(_files.Folder));
    }

    [Fact]
    public void MissingDirectory_IsAOneLineError()
    {
        string missing = Path.Combine(_files.Folder, "no", "such");
        var ex = Assert.Throws<SeqtalkException>(() => new TokenStore(missing, 4, 100));
        Assert.StartsWith($"Cannot create a temporary token file in {missing}: ", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    /// <summary>The batch fingerprint: every array of every batch, in order.</summary>
    private static string Fingerprint(IEnumerable<Batch> batches) => string.Join('|', batches.Select(b =>
        $"{b.Size},{b.SourceSteps},{b.TargetSteps},{b.RealTargetTokens}:{string.Join(',', b.Source)};{string.Join(',', b.SourceLengths)};" +
        $"{string.Join(',', b.DecoderInput)};{string.Join(',', b.DecoderTarget)};{string.Join(',', b.TargetLengths)}"));

    [Theory]
    [InlineData(16, 1)]
    [InlineData(7, 2)]
    [InlineData(128, 3)]   // one partial chunk
    public void StoreAndList_GiveTheSameBatches(int batchSize, int seed)
    {
        // Many equal lengths, so the stable-sort tie order matters.
        var pairs = RandomPairs(2_000, 6, 300, seed);
        using var stored = new TokenStore(_files.Folder, pairs.Count, 300);
        using var listed = new EncodedPairList();
        foreach (var pair in pairs)
        {
            stored.Add(pair);
            listed.Add(pair);
        }

        var a = new Random(seed);
        var b = new Random(seed);
        var c = new Random(seed);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            string expected = Fingerprint(Batcher.MakeBatches(pairs, batchSize, a));
            var fromStore = Batcher.MakeBatches(stored, batchSize, b);
            Assert.Equal(expected, Fingerprint(fromStore));
            Assert.Equal(expected, Fingerprint(Batcher.MakeBatches(listed, batchSize, c)));
            Assert.Equal(Fingerprint([fromStore[fromStore.Count - 1]]), Fingerprint(fromStore.Skip(fromStore.Count - 1)));   // indexing = enumerating
        }
        Assert.Equal(Fingerprint(Batcher.MakeBatches(pairs, batchSize, null)), Fingerprint(Batcher.MakeBatches(stored, batchSize, null)));
    }
}
