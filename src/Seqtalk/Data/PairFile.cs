namespace Seqtalk.Data;

/// <summary>
/// A pairs file to train on without holding its pairs in memory: training reads it in passes (count,
/// questions, answers, encoding) and keeps the encoded pairs in a temporary file. See <c>docs/data.md</c>.
/// </summary>
/// <remarks>
/// The file must not change while it is read: every pass checks that it finds the pairs the first pass
/// counted. Rows are read by <see cref="PairReader"/>, so its rules, skipped rows and errors hold
/// (a row longer than <see cref="PairReaderOptions.MaxRowChars"/> is an error naming its line).
/// </remarks>
public sealed class PairFile : IPairSource
{
    private int? _count;

    /// <summary>Names a pairs file; the path and the options are checked at once, the content when it is read.</summary>
    /// <param name="path">The pairs file (.csv, .tsv or .jsonl).</param>
    /// <param name="options">How to read it; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="DataFormatException">The file is missing or is a directory.</exception>
    public PairFile(string path, PairReaderOptions? options = null)
    {
        options ??= new PairReaderOptions();
        _ = PairReader.Read(path, options);   // checks the path and the options; reads nothing
        Path = path;
        Options = options;
    }

    /// <summary>The path, as given.</summary>
    public string Path { get; }

    /// <summary>How the file is read.</summary>
    public PairReaderOptions Options { get; }

    /// <summary>Where training puts its temporary token file (about 2 bytes per token); <see langword="null"/>
    /// for the system's temporary folder. The file is removed when training ends.</summary>
    public string? TemporaryDirectory { get; init; }

    /// <summary>What the counting pass found (rows read, skipped rows); <see langword="null"/> before
    /// <see cref="CountPairs"/> has run.</summary>
    public PairReadReport? Report { get; private set; }

    /// <summary>Counts the usable pairs, reading the file once, and stops between rows when
    /// <paramref name="cancellationToken"/> fires; later calls return the same count.</summary>
    /// <param name="cancellationToken">Stops the counting pass (a later call counts afresh).</param>
    /// <returns>The number of pairs (never 0).</returns>
    /// <exception cref="DataFormatException">The file cannot be read or has no usable pairs.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the pass ended.</exception>
    public int CountPairs(CancellationToken cancellationToken = default)
    {
        if (_count is { } count) return count;
        var report = new PairReadReport();
        int n = 0;
        foreach (var _ in PairReader.Read(Path, Options, report))
        {
            cancellationToken.ThrowIfCancellationRequested();
            n++;
        }
        cancellationToken.ThrowIfCancellationRequested();
        Report = report;
        _count = n;
        return n;
    }

    string IPairSource.Name => Path;

    int IPairSource.CountPairs() => CountPairs();

    IEnumerable<QaPair> IPairSource.Read(CancellationToken cancellationToken)
    {
        foreach (var pair in PairReader.Read(Path, Options))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return pair;
        }
    }

    IEncodedPairStore IPairSource.CreateStore(int capacity, int largestId) =>
        new TokenStore(TemporaryDirectory ?? System.IO.Path.GetTempPath(), capacity, largestId);
}

/// <summary>Where training reads its pairs from: a list in memory or a <see cref="PairFile"/> read in passes.</summary>
internal interface IPairSource
{
    /// <summary>The file name for messages.</summary>
    string Name { get; }

    /// <summary>The number of pairs every <see cref="Read"/> yields.</summary>
    int CountPairs();

    /// <summary>One pass over the pairs, in order; a file's pass throws <see cref="OperationCanceledException"/>
    /// between rows once <paramref name="cancellationToken"/> fires (a list ignores it: it is read at once).</summary>
    IEnumerable<QaPair> Read(CancellationToken cancellationToken);

    /// <summary>Somewhere to keep the encoded pairs: in memory for a list, a temporary file for a file.</summary>
    IEncodedPairStore CreateStore(int capacity, int largestId);
}

/// <summary>Pairs already in memory.</summary>
internal sealed class PairList(IReadOnlyList<QaPair> pairs) : IPairSource
{
    public string Name => "the pairs";
    public int CountPairs() => pairs.Count;
    public IEnumerable<QaPair> Read(CancellationToken cancellationToken) => pairs;
    public IEncodedPairStore CreateStore(int capacity, int largestId) => new EncodedPairList(capacity);
}
