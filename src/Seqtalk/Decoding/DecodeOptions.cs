namespace Seqtalk.Decoding;

/// <summary>How a reply is generated: greedy decoding (the default), beam search or sampling, from
/// <c>&lt;s&gt;</c> until <c>&lt;/s&gt;</c>, with optional length, repetition and vocabulary rules. See docs/decoding.md.</summary>
/// <remarks>
/// <para>Strategy: <see cref="Temperature"/> above 0 samples; otherwise <see cref="BeamSize"/> above 1 runs beam search;
/// otherwise the reply is greedy (beam search of width 1 gives exactly the greedy reply).</para>
/// <para>Scores: a candidate's <see cref="ReplyCandidate.LogProbability"/> is the sum of the log-probabilities of its
/// tokens (the final <c>&lt;/s&gt;</c> included when it was emitted) under the distribution the rules below leave
/// (repetition penalty and bans applied; temperature, top-k and top-p not); its
/// <see cref="ReplyCandidate.Score"/> is LogProbability / length^<see cref="LengthPenalty"/>, length counting the
/// same tokens (fairseq's normalisation; with the default 1 it is the mean log-probability per token).</para>
/// </remarks>
public sealed record DecodeOptions
{
    /// <summary>Default <see cref="BeamSize"/>: 1, greedy.</summary>
    public const int DefaultBeamSize = 1;
    /// <summary>Default <see cref="LengthPenalty"/>: 1, the mean log-probability per token.</summary>
    public const double DefaultLengthPenalty = 1.0;
    /// <summary>Default <see cref="RepetitionPenalty"/>: 1, no penalty.</summary>
    public const double DefaultRepetitionPenalty = 1.0;
    /// <summary>Largest <see cref="BeamSize"/> and <see cref="NBest"/>.</summary>
    public const int MaxBeamSize = 64;

    /// <summary>Maximum reply length in tokens; null uses the model's default (longest training answer plus a margin).</summary>
    public int? MaxLength { get; init; }

    /// <summary>Minimum reply length in tokens: <c>&lt;/s&gt;</c> cannot be chosen before this many tokens. Default 0.</summary>
    public int MinLength { get; init; }

    /// <summary>Beam width; 1 (the default) is greedy decoding. Hypotheses that emit <c>&lt;/s&gt;</c> leave the beam,
    /// which then shrinks, until <see cref="BeamSize"/> hypotheses have finished.</summary>
    public int BeamSize { get; init; } = DefaultBeamSize;

    /// <summary>Exponent α of the length normalisation Score = LogProbability / length^α, used to rank finished beam
    /// hypotheses. 0 ranks by raw log-probability (favours short replies); 1 (the default) by mean log-probability per token.</summary>
    public double LengthPenalty { get; init; } = DefaultLengthPenalty;

    /// <summary>Candidates to return: with beam search the best <see cref="NBest"/> finished hypotheses (at most
    /// <see cref="BeamSize"/>), with sampling <see cref="NBest"/> independent samples. Default 1.</summary>
    public int NBest { get; init; } = 1;

    /// <summary>Sampling temperature: 0 (the default) does not sample; above 0 samples from softmax(logits / T).</summary>
    public double Temperature { get; init; }

    /// <summary>Sampling: keep only the <see cref="TopK"/> most likely tokens; 0 (the default) keeps all. Ignored
    /// when not sampling, as are <see cref="TopP"/> and <see cref="Seed"/>.</summary>
    public int TopK { get; init; }

    /// <summary>Sampling (nucleus): keep the most likely tokens whose probabilities sum to at least <see cref="TopP"/>;
    /// 1 (the default) keeps all.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Sampling seed: the same seed gives the same reply whatever else is decoded with it (sample j of a
    /// question uses a generator seeded with Seed + j). Null (the default) draws a fresh seed per question.</summary>
    public int? Seed { get; init; }

    /// <summary>Forbids a token that would repeat an n-gram of this size already in the reply; 0 (the default) is off.</summary>
    public int NoRepeatNgramSize { get; init; }

    /// <summary>CTRL's repetition penalty θ for tokens already in the reply: a positive logit is divided by θ, a
    /// negative one multiplied. 1 (the default) is off; above 1 discourages repeats.</summary>
    public double RepetitionPenalty { get; init; } = DefaultRepetitionPenalty;

    /// <summary>Allows the reply to contain <c>&lt;unk&gt;</c>. Default false: <c>&lt;unk&gt;</c> is never emitted (the
    /// next most likely token is taken instead, so replies where <c>&lt;unk&gt;</c> never wins are unchanged).</summary>
    public bool AllowUnknown { get; init; }

    /// <summary>Threads that share plain greedy decoding of several questions at once: each takes a contiguous share of
    /// the questions (two at least) and decodes it on its own (the replies do not depend on it: a row's arithmetic never
    /// depends on its batch-mates). Default 1: the calling thread only. Beam search, sampling and single replies ignore it.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>True when the reply is sampled (<see cref="Temperature"/> above 0).</summary>
    internal bool Samples => Temperature > 0;

    /// <summary>True when greedy decoding needs no rule but the &lt;unk&gt; ban, so the fused greedy path applies.</summary>
    internal bool IsPlainGreedy => !Samples && BeamSize == 1 && NBest == 1 && MinLength == 0 && NoRepeatNgramSize == 0
        && RepetitionPenalty == DefaultRepetitionPenalty;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range, or two options do not go together.</exception>
    public void Validate()
    {
        if (MaxLength is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, "Must be between 1 and 10000.");
        if (MinLength is < 0 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MinLength), MinLength, "Must be between 0 and 10000.");
        if (MaxLength is { } max && MinLength > max)
            throw new ArgumentOutOfRangeException(nameof(MinLength), MinLength, $"Must not exceed MaxLength ({max}).");
        if (BeamSize is < 1 or > MaxBeamSize) throw new ArgumentOutOfRangeException(nameof(BeamSize), BeamSize, $"Must be between 1 and {MaxBeamSize}.");
        if (!double.IsFinite(LengthPenalty) || LengthPenalty is < 0 or > 10)
            throw new ArgumentOutOfRangeException(nameof(LengthPenalty), LengthPenalty, "Must be between 0 and 10.");
        if (!double.IsFinite(Temperature) || Temperature is < 0 or > 100)
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Must be between 0 (no sampling) and 100.");
        if (TopK is < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "Must be 0 (off) or more.");
        if (!double.IsFinite(TopP) || TopP is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "Must be above 0 and at most 1.");
        if (NoRepeatNgramSize is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(NoRepeatNgramSize), NoRepeatNgramSize, "Must be between 0 (off) and 100.");
        if (!double.IsFinite(RepetitionPenalty) || RepetitionPenalty is <= 0 or > 100)
            throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "Must be above 0 and at most 100 (1 is off).");
        if (Threads is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Must be between 1 and 256.");
        if (NBest is < 1 or > MaxBeamSize) throw new ArgumentOutOfRangeException(nameof(NBest), NBest, $"Must be between 1 and {MaxBeamSize}.");
        if (Samples && BeamSize > 1)
            throw new ArgumentOutOfRangeException(nameof(BeamSize), BeamSize, "Beam search and sampling do not go together: use BeamSize 1 with a Temperature above 0, or Temperature 0.");
        if (!Samples && NBest > BeamSize)
            throw new ArgumentOutOfRangeException(nameof(NBest), NBest, $"Must not exceed BeamSize ({BeamSize}) unless sampling: beam search returns at most BeamSize replies.");
    }
}
