namespace Seqtalk.Data;

/// <summary>One question/answer pair as token ids. <see cref="Target"/> holds the answer's ids
/// without <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>; the batcher adds them.</summary>
internal readonly record struct EncodedPair(int[] Source, int[] Target);

/// <summary>
/// A padded training batch. All id arrays are row-major <c>[B, T]</c> and post-padded with
/// <c>&lt;pad&gt;</c> = 0. Rows are sorted by source length, longest first, so that at encoder step t
/// the active rows are a prefix (0 .. count of rows with length &gt; t).
/// </summary>
/// <remarks>
/// Decoder input of row b: <c>&lt;s&gt; y1 … yn</c> then padding; decoder target: <c>y1 … yn &lt;/s&gt;</c>
/// then padding; <see cref="TargetLengths"/>[b] = n + 1. Only the first TargetLengths[b] positions of a
/// row are real; only they are counted in the loss and the accuracy.
/// </remarks>
internal sealed class Batch
{
    public required int Size { get; init; }                // B
    public required int SourceSteps { get; init; }         // Ts = max source length (≥ 1)
    public required int TargetSteps { get; init; }         // Tt = max target length incl. </s>
    public required int[] Source { get; init; }            // [B, Ts]
    public required int[] SourceLengths { get; init; }     // [B], each ≥ 1, non-increasing
    public required int[] DecoderInput { get; init; }      // [B, Tt]
    public required int[] DecoderTarget { get; init; }     // [B, Tt]
    public required int[] TargetLengths { get; init; }     // [B], each ≥ 1
    /// <summary>Σ TargetLengths: the number of real target tokens.</summary>
    public required int RealTargetTokens { get; init; }
}
