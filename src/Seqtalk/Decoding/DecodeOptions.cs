namespace Seqtalk.Decoding;

/// <summary>How a reply is generated. Greedy decoding from <c>&lt;s&gt;</c> until <c>&lt;/s&gt;</c>.</summary>
public sealed record DecodeOptions
{
    /// <summary>Maximum reply length in tokens; null uses the model's default (longest training answer plus a margin).</summary>
    public int? MaxLength { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (MaxLength is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "Must be between 1 and 10000.");
    }
}
