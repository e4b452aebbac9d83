namespace Seqtalk.Decoding;

/// <summary>One candidate reply of <see cref="ChatModel.ReplyDetailed"/>.</summary>
/// <param name="Text">The reply text.</param>
/// <param name="Tokens">The reply's tokens, without <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>.</param>
/// <param name="Score">LogProbability / length^<see cref="DecodeOptions.LengthPenalty"/> (length counts the final
/// <c>&lt;/s&gt;</c> when it was emitted); higher is better.</param>
/// <param name="LogProbability">Sum of the log-probabilities of the tokens, the final <c>&lt;/s&gt;</c> included when it was emitted.</param>
public sealed record ReplyCandidate(string Text, IReadOnlyList<string> Tokens, double Score, double LogProbability);

/// <summary>A reply with its tokens, score, alternatives and (for attention models) attention weights.</summary>
public sealed record ReplyResult
{
    /// <summary>The reply text: the best candidate's (with sampling, the first sample's).</summary>
    public required string Text { get; init; }

    /// <summary>The reply's tokens, without <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>.</summary>
    public required IReadOnlyList<string> Tokens { get; init; }

    /// <summary>The reply's length-normalised log-probability (see <see cref="ReplyCandidate.Score"/>).</summary>
    public required double Score { get; init; }

    /// <summary>The candidates, the reply first: beam search's best finished hypotheses, best first, or the samples in order;
    /// <see cref="DecodeOptions.NBest"/> of them (fewer when the beam found fewer).</summary>
    public required IReadOnlyList<ReplyCandidate> NBest { get; init; }

    /// <summary>The question's tokens as the encoder saw them (after normalisation and truncation).</summary>
    public required IReadOnlyList<string> SourceTokens { get; init; }

    /// <summary>Attention weights: one row per reply token including the final <c>&lt;/s&gt;</c> step, one column per
    /// source token; null for models without attention.</summary>
    public float[][]? Attention { get; init; }
}
