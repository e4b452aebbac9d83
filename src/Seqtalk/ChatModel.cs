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
    /// with <see cref="TrainingSummary.Cancelled"/> set (and a checkpoint written when
    /// <see cref="TrainingOptions.CheckpointDirectory"/> is set).</param>
    /// <returns>The model with the weights of the epoch with the lowest validation loss.</returns>
    /// <exception cref="SeqtalkException">The data cannot be trained on, or training diverged.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatModel Train(IReadOnlyList<QaPair> pairs, TrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
        => Trainer.Run(pairs, options ?? new TrainingOptions(), progress, cancellationToken);

    /// <summary>Continues a training run from a checkpoint (<see cref="TrainingOptions.CheckpointDirectory"/>) exactly
    /// as if it had not stopped: same batches, same updates, same early stopping and best-epoch choice, so the
    /// weights are bit-identical to those of an unbroken run.</summary>
    /// <param name="checkpointDirectory">A checkpoint (<c>…/step-00000123</c>), a checkpoint directory (its
    /// <c>latest</c> checkpoint is used), or a model directory written by <c>seqtalk train</c> that holds <c>checkpoints/</c>.</param>
    /// <param name="pairs">The same pairs the run was trained on; checked against the count and SHA-256 the checkpoint records.</param>
    /// <param name="overrides">Options for the rest of the run; null keeps the checkpoint's (new checkpoints go beside
    /// the one resumed from). Only <see cref="TrainingOptions.Epochs"/>, <see cref="TrainingOptions.EarlyStoppingPatience"/>,
    /// <see cref="TrainingOptions.Threads"/> and the checkpoint options may differ from the checkpoint's.</param>
    /// <param name="progress">Receives a report after every step and every epoch.</param>
    /// <param name="cancellationToken">Stops training after the current step and writes a checkpoint, as in <see cref="Train"/>.</param>
    /// <returns>The model with the weights of the epoch with the lowest validation loss.</returns>
    /// <exception cref="SeqtalkException">No checkpoint is there or it is damaged, the data or an option differs
    /// in a way that breaks exactness, or training diverged.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatModel ResumeTraining(string checkpointDirectory, IReadOnlyList<QaPair> pairs, TrainingOptions? overrides = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointDirectory);
        ArgumentNullException.ThrowIfNull(pairs);
        return Trainer.Resume(checkpointDirectory, pairs, overrides, progress, cancellationToken);
    }

    /// <summary>Loads a model directory written by <see cref="Save"/>, checking every file.</summary>
    /// <param name="directory">The model directory.</param>
    /// <exception cref="SeqtalkException">The directory or a file in it is missing or invalid; the message names it.</exception>
    public static ChatModel Load(string directory) => ModelDirectory.Load(directory);

    /// <summary>Writes the model directory: <c>config.json</c>, <c>weights.safetensors</c> and the vocabularies.
    /// Each file is written to a temporary name and renamed into place.</summary>
    /// <param name="directory">The directory; created when missing.</param>
    /// <exception cref="SeqtalkException">The directory cannot be written.</exception>
    public void Save(string directory) => ModelDirectory.Save(this, directory);

    /// <summary>Replies to one question with greedy decoding.</summary>
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
        var ids = DecodeIds(questions, options);
        var replies = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++) replies[i] = TargetTokenizer.Decode(ids[i]);
        return replies;
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
        int maxSource = Options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength;
        var sources = new int[questions.Count][];
        for (int i = 0; i < sources.Length; i++) sources[i] = Trainer.Cut(SourceTokenizer.EncodeToIds(questions[i]), maxSource);

        const int chunk = 128;
        var result = new int[sources.Length][];
        if (!_sessions.TryTake(out var session)) session = new InferenceSession(Network, chunk);
        try
        {
            for (int start = 0; start < sources.Length; start += chunk)
            {
                int count = Math.Min(chunk, sources.Length - start);
                var part = session.GreedyDecode(new ArraySegment<int[]>(sources, start, count), maxSteps);
                Array.Copy(part, 0, result, start, count);
            }
        }
        finally
        {
            _sessions.Add(session);
        }
        return result;
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
