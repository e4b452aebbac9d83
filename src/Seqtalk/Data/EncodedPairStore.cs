namespace Seqtalk.Data;

/// <summary>
/// Encoded pairs, appended once and then read by index, as the batcher needs them: the two lengths of
/// every pair (to sort a chunk by length) and the ids of the pairs of one batch at a time.
/// </summary>
/// <remarks>
/// Two implementations: <see cref="EncodedPairList"/> keeps the pairs as arrays in memory (training on an
/// <c>IReadOnlyList&lt;QaPair&gt;</c>); <see cref="TokenStore"/> keeps only the lengths and the offsets in
/// memory and the ids in a temporary file (training on a <see cref="PairFile"/>). The batcher gives the
/// same batches for both (<see cref="Batcher.MakeBatches(IEncodedPairStore, int, Random?)"/>).
/// </remarks>
internal interface IEncodedPairStore : IDisposable
{
    /// <summary>Pairs appended so far.</summary>
    int Count { get; }

    /// <summary>The longest source (question) in tokens, 0 when there is none.</summary>
    int MaxSourceLength { get; }

    /// <summary>The longest target (answer) in tokens, without <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>; 0 when there is none.</summary>
    int MaxTargetLength { get; }

    /// <summary>Appends a pair; its arrays may be reused by the caller afterwards.</summary>
    void Add(EncodedPair pair);

    /// <summary>The source length of pair <paramref name="index"/>, in tokens (0 for an empty question).</summary>
    int SourceLength(int index);

    /// <summary>The target length of pair <paramref name="index"/>, in tokens.</summary>
    int TargetLength(int index);

    /// <summary>The ids of pair <paramref name="index"/>; callers must not change the arrays.</summary>
    EncodedPair Read(int index);
}

/// <summary>Encoded pairs in memory, one pair of arrays each.</summary>
internal sealed class EncodedPairList(int capacity = 0) : IEncodedPairStore
{
    private readonly List<EncodedPair> _pairs = new(capacity);

    public int Count => _pairs.Count;
    public int MaxSourceLength { get; private set; }
    public int MaxTargetLength { get; private set; }

    public void Add(EncodedPair pair)
    {
        ArgumentNullException.ThrowIfNull(pair.Source);
        ArgumentNullException.ThrowIfNull(pair.Target);
        _pairs.Add(new EncodedPair([.. pair.Source], [.. pair.Target]));
        MaxSourceLength = Math.Max(MaxSourceLength, pair.Source.Length);
        MaxTargetLength = Math.Max(MaxTargetLength, pair.Target.Length);
    }

    public int SourceLength(int index) => _pairs[index].Source.Length;
    public int TargetLength(int index) => _pairs[index].Target.Length;
    public EncodedPair Read(int index) => _pairs[index];

    public void Dispose() { }
}
