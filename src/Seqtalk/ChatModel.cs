using System.Collections.Concurrent;
using Seqtalk.Data;
using Seqtalk.Decoding;
using Seqtalk.IO;
using Seqtalk.Nn;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk;

/// <summary>
/// A trained chatbot: tokenizers for questions and answers and an LSTM encoder-decoder. The façade of
/// the library: <see cref="Train"/>, <see cref="Save"/>, <see cref="Load"/>, <see cref="Reply"/>.
/// </summary>
/// <remarks>
/// A <see cref="ChatModel"/> is immutable once created and safe to share between threads: every call
/// that decodes uses its own scratch state.
/// </remarks>
public sealed class ChatModel
{
    private readonly ConcurrentBag<InferenceSession> _sessions = [];

    internal ChatModel(Seq2SeqModel network, Tokenizer sourceTokenizer, Tokenizer targetTokenizer, int defaultMaxReplyLength,
        TrainingSummary? training, SplitRecord? split, TrainingOptions? options)
    {
        Network = network;
        SourceTokenizer = sourceTokenizer;
        TargetTokenizer = targetTokenizer;
        DefaultMaxReplyLength = defaultMaxReplyLength;
        Training = training;
        Split = split;
        Options = options;
    }

    internal Seq2SeqModel Network { get; }
    internal Tokenizer SourceTokenizer { get; }
    internal Tokenizer TargetTokenizer { get; }
    internal SplitRecord? Split { get; }
    internal TrainingOptions? Options { get; }

    /// <summary>The architecture.</summary>
    public ModelConfig Config => Network.Config;

    /// <summary>Number of trained weights (floats in <c>weights.safetensors</c>).</summary>
    public int ParameterCount => Network.Layout.TotalLength;

    /// <summary>Size of the question vocabulary, special tokens included.</summary>
    public int QuestionVocabularySize => SourceTokenizer.Vocabulary.Count;

    /// <summary>Size of the answer vocabulary, special tokens included.</summary>
    public int AnswerVocabularySize => TargetTokenizer.Vocabulary.Count;

    /// <summary>The reply length bound used when <see cref="DecodeOptions.MaxLength"/> is not set.</summary>
    public int DefaultMaxReplyLength { get; }

    /// <summary>How training went (also after <see cref="Load"/>); null when the directory does not record it.</summary>
    public TrainingSummary? Training { get; }

    /// <summary>Trains a model on question/answer pairs.</summary>
    /// <param name="pairs">The pairs; validation rows are held out of them as <paramref name="options"/> say.</param>
    /// <param name="options">Training options; null for the defaults (the tutorial's).</param>
    /// <param name="progress">Receives a report after every step and every epoch.</param>
    /// <param name="cancellationToken">Stops training after the current step; the model trained so far is returned,
    /// with <see cref="TrainingSummary.Cancelled"/> set.</param>
    /// <returns>The model with the weights of the epoch with the lowest validation loss.</returns>
    /// <exception cref="SeqtalkException">The data cannot be trained on, or training diverged.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatModel Train(IReadOnlyList<QaPair> pairs, TrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
        => Trainer.Run(pairs, options ?? new TrainingOptions(), progress, cancellationToken);

    /// <summary>Loads a model directory written by <see cref="Save"/>, checking every file.</summary>
    /// <param name="directory">The model directory.</param>
    /// <exception cref="SeqtalkException">The directory or a file in it is missing or invalid; the message names it.</exception>
    public static ChatModel Load(string directory) => ModelDirectory.Load(directory);

    /// <summary>Writes the model directory: <c>config.json</c>, <c>weights.safetensors</c> and the vocabularies.
    /// Each file is written to a temporary name and renamed into place.</summary>
    /// <param name="directory">The directory; created when missing.</param>
    /// <exception cref="SeqtalkException">The directory cannot be written.</exception>
    public void Save(string directory) => ModelDirectory.Save(this, directory);

    /// <summary>Replies to one question (greedy decoding unless <paramref name="options"/> ask for beam search or sampling).</summary>
    /// <param name="question">Any text; unknown words become <c>&lt;unk&gt;</c>.</param>
    /// <param name="options">Decoding options; null for the defaults.</param>
    /// <returns>The reply text (may be empty if the model ends at once).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public string Reply(string question, DecodeOptions? options = null) => ReplyBatch([question], options)[0];

    /// <summary>Replies to many questions, decoded together in batches.</summary>
    /// <param name="questions">The questions.</param>
    /// <param name="options">Decoding options; null for the defaults.</param>
    /// <returns>One reply per question, in order.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public IReadOnlyList<string> ReplyBatch(IReadOnlyList<string> questions, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(questions);
        options ??= DefaultDecodeOptions;
        if (!options.IsPlainGreedy) return [.. ReplyDetailedBatch(questions, options).Select(r => r.Text)];
        var ids = DecodeIds(questions, options);
        var replies = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++) replies[i] = TargetTokenizer.Decode(ids[i]);
        return replies;
    }

    /// <summary>Replies to one question with the reply's tokens, score, n-best candidates and source tokens.</summary>
    /// <param name="question">Any text; unknown words become <c>&lt;unk&gt;</c>.</param>
    /// <param name="options">Decoding options; null for the defaults (greedy).</param>
    /// <returns>The reply; its <see cref="ReplyResult.Text"/> equals what <see cref="Reply"/> returns for the same options
    /// (and, when sampling, the same <see cref="DecodeOptions.Seed"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public ReplyResult ReplyDetailed(string question, DecodeOptions? options = null) => ReplyDetailedBatch([question], options)[0];

    /// <summary>Replies to many questions with details, decoded together in batches; each reply is the same as when
    /// decoded alone.</summary>
    /// <param name="questions">The questions.</param>
    /// <param name="options">Decoding options; null for the defaults (greedy).</param>
    /// <returns>One result per question, in order.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public IReadOnlyList<ReplyResult> ReplyDetailedBatch(IReadOnlyList<string> questions, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(questions);
        options ??= DefaultDecodeOptions;
        options.Validate();
        var sources = EncodeQuestions(questions);
        int maxSteps = options.MaxLength ?? DefaultMaxReplyLength;
        DecodedSequence[][] decoded;
        float[][]?[]? attention = null;
        var session = RentSession();
        try
        {
            if (options.Samples)
            {
                var seeds = new int[sources.Length];
                for (int i = 0; i < seeds.Length; i++) seeds[i] = options.Seed ?? Random.Shared.Next();
                decoded = Sampler.Run(session, sources, options, maxSteps, seeds);
            }
            else
            {
                decoded = BeamSearch.Run(session, sources, options, maxSteps);
            }
            // Attention models: the weights of each reply (a reply shorter than maxSteps ended with </s>).
            if (Network.Config.Attention != AttentionKind.None)
            {
                attention = new float[sources.Length][][];
                for (int i = 0; i < sources.Length; i++)
                    attention[i] = session.AttentionOf(sources[i], decoded[i][0].Ids, decoded[i][0].Ids.Length < maxSteps);
            }
        }
        finally
        {
            _sessions.Add(session);
        }

        var sourceVocabulary = SourceTokenizer.Vocabulary;
        var results = new ReplyResult[sources.Length];
        for (int i = 0; i < results.Length; i++)
        {
            var candidates = decoded[i].Select(d => new ReplyCandidate(TargetTokenizer.Decode(d.Ids), TokenStrings(d.Ids), d.Score, d.LogProbability)).ToArray();
            results[i] = new ReplyResult
            {
                Text = candidates[0].Text,
                Tokens = candidates[0].Tokens,
                Score = candidates[0].Score,
                NBest = candidates,
                SourceTokens = [.. sources[i].Select(sourceVocabulary.GetToken)],
                Attention = attention?[i],
            };
        }
        return results;
    }

    /// <summary>Tokens the model reads for <paramref name="question"/>: the question tokenizer's count, capped at the
    /// longest source the model was trained with (longer questions are cut).</summary>
    /// <param name="question">Any text.</param>
    public int CountQuestionTokens(string question)
        => Math.Min(SourceTokenizer.CountTokens(question), Options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength);

    /// <summary>Answer tokens in <paramref name="reply"/> by the answer tokenizer; for a reply of this model without
    /// <c>&lt;unk&gt;</c> (the default), the number of tokens it generated (<see cref="ReplyResult.Tokens"/>).</summary>
    /// <param name="reply">A reply text.</param>
    public int CountReplyTokens(string reply) => TargetTokenizer.CountTokens(reply);

    private static readonly DecodeOptions DefaultDecodeOptions = new();

    private string[] TokenStrings(int[] ids)
    {
        var vocabulary = TargetTokenizer.Vocabulary;
        var tokens = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++) tokens[i] = vocabulary.GetToken(ids[i]);
        return tokens;
    }

    /// <summary>Evaluates the model on pairs: teacher-forced loss, perplexity and token accuracy over real
    /// answer tokens, and BLEU and token F1 of greedy replies against the answers.</summary>
    /// <param name="pairs">Pairs to evaluate on.</param>
    /// <param name="options">Decoding options for the replies.</param>
    /// <exception cref="SeqtalkException">There are no pairs.</exception>
    public EvaluationResult Evaluate(IReadOnlyList<QaPair> pairs, DecodeOptions? options = null)
    {
        if (pairs.Count == 0) throw new SeqtalkException("There are no pairs to evaluate.");
        int maxLength = Options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength;
        var encoded = Trainer.Encode(pairs, Enumerable.Range(0, pairs.Count), SourceTokenizer, TargetTokenizer, maxLength);
        var batches = Batcher.MakeBatches(encoded, TrainingOptions.DefaultBatchSize, shuffle: null);
        var workspace = new TrainingWorkspace(Network, batches.Max(b => b.Size), batches.Max(b => b.SourceSteps), batches.Max(b => b.TargetSteps), Environment.ProcessorCount);
        var (loss, accuracy) = Trainer.Measure(workspace, batches);

        var replies = ReplyBatch(pairs.Select(p => p.Question).ToList(), options);
        var hypotheses = replies.Select(r => TargetTokenizer.Normalizer.SplitWords(r)).ToList();
        var references = pairs.Select(p => TargetTokenizer.Normalizer.SplitWords(p.Answer)).ToList();
        return new EvaluationResult
        {
            Pairs = pairs.Count,
            Tokens = encoded.Sum(p => p.Target.Length + 1),
            Loss = loss,
            Perplexity = Math.Exp(loss),
            TokenAccuracy = accuracy,
            Bleu = TextMetrics.CorpusBleu(hypotheses, references),
            TokenF1 = TextMetrics.MeanTokenF1(hypotheses, references),
            ExactMatch = (double)hypotheses.Zip(references).Count(x => x.First.SequenceEqual(x.Second)) / pairs.Count,
        };
    }

    internal int[][] DecodeIds(IReadOnlyList<string> questions, DecodeOptions? options)
    {
        options?.Validate();
        int maxSteps = options?.MaxLength ?? DefaultMaxReplyLength;
        bool banUnknown = !(options?.AllowUnknown ?? false);
        var sources = EncodeQuestions(questions);

        var result = new int[sources.Length][];
        var session = RentSession();
        try
        {
            for (int start = 0; start < sources.Length; start += SessionRows)
            {
                int count = Math.Min(SessionRows, sources.Length - start);
                var part = session.GreedyDecode(new ArraySegment<int[]>(sources, start, count), maxSteps, banUnknown);
                Array.Copy(part, 0, result, start, count);
            }
        }
        finally
        {
            _sessions.Add(session);
        }
        return result;
    }

    /// <summary>Rows of a pooled session: questions decoded at once (greedy), or questions × beam / samples.</summary>
    private const int SessionRows = 128;

    private InferenceSession RentSession() => _sessions.TryTake(out var session) ? session : new InferenceSession(Network, SessionRows);

    private int[][] EncodeQuestions(IReadOnlyList<string> questions)
    {
        int maxSource = Options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength;
        var sources = new int[questions.Count][];
        for (int i = 0; i < sources.Length; i++) sources[i] = Trainer.Cut(SourceTokenizer.EncodeToIds(questions[i]), maxSource);
        return sources;
    }
}

/// <summary>What <see cref="ChatModel.Evaluate"/> measured.</summary>
public sealed record EvaluationResult
{
    /// <summary>Pairs evaluated.</summary>
    public required int Pairs { get; init; }
    /// <summary>Real answer tokens (with the end token) the loss is over.</summary>
    public required int Tokens { get; init; }
    /// <summary>Mean cross-entropy per real answer token (teacher forcing).</summary>
    public required double Loss { get; init; }
    /// <summary>exp(Loss).</summary>
    public required double Perplexity { get; init; }
    /// <summary>Share of real answer tokens predicted exactly (teacher forcing).</summary>
    public required double TokenAccuracy { get; init; }
    /// <summary>Corpus BLEU-4 (0–100) of greedy replies against the answers, on word tokens.</summary>
    public required double Bleu { get; init; }
    /// <summary>Mean token F1 (0–1) of greedy replies against the answers.</summary>
    public required double TokenF1 { get; init; }
    /// <summary>Share of replies that equal the answer token for token.</summary>
    public required double ExactMatch { get; init; }
}
