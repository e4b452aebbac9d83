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
/// the library: <c>Train</c>, <see cref="Save"/>, <see cref="Load"/>, <see cref="Reply"/>.
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

    /// <summary>Trains a model on a pairs file without holding its pairs in memory: the file is read in passes
    /// (count, questions, answers, encoding), the encoded pairs go to a temporary file in
    /// <see cref="PairFile.TemporaryDirectory"/>, and each epoch reads its batches from there. The result is the
    /// same as <see cref="Train(IReadOnlyList{QaPair}, TrainingOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// on the same pairs; memory is bounded by the vocabulary and the batch, plus about 16 bytes per pair
    /// (see <c>docs/data.md</c>).</summary>
    /// <param name="pairs">The pairs file; its <see cref="PairFile.CountPairs"/> pass is reused when it has run.</param>
    /// <param name="options">Training options; null for the defaults (the tutorial's).</param>
    /// <param name="progress">Receives a report after every step and every epoch.</param>
    /// <param name="cancellationToken">Stops training after the current step, as for the list overload.</param>
    /// <returns>The model with the weights of the epoch with the lowest validation loss.</returns>
    /// <exception cref="DataFormatException">The file cannot be read, has a bad row (with its line), or changed during training.</exception>
    /// <exception cref="SeqtalkException">The data cannot be trained on, the temporary file cannot be written, or training diverged.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatModel Train(PairFile pairs, TrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        return Trainer.Run(pairs, options ?? new TrainingOptions(), progress, cancellationToken);
    }

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
    /// <param name="cancellationToken">Stops training after the current step and writes a checkpoint, as in
    /// <see cref="Train(IReadOnlyList{QaPair}, TrainingOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>.</param>
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

    /// <summary>Continues a training run from a checkpoint, streaming its pairs file as
    /// <see cref="Train(PairFile, TrainingOptions?, IProgress{TrainingProgress}?, CancellationToken)"/> does; exactly
    /// as <see cref="ResumeTraining(string, IReadOnlyList{QaPair}, TrainingOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// continues it (the same batches and updates, bit-identical weights), whichever of the two trained the run.</summary>
    /// <param name="checkpointDirectory">A checkpoint, a checkpoint directory (its <c>latest</c> checkpoint is used), or a
    /// model directory written by <c>seqtalk train</c> that holds <c>checkpoints/</c>.</param>
    /// <param name="pairs">The same pairs file the run was trained on. Its pairs are checked against the count and
    /// SHA-256 the checkpoint records while the file is read (the count after the first pass, the hash after the
    /// encoding pass), before any step; the question and answer tokenizers are the checkpoint's.</param>
    /// <param name="overrides">Options for the rest of the run; null keeps the checkpoint's. Only
    /// <see cref="TrainingOptions.Epochs"/>, <see cref="TrainingOptions.EarlyStoppingPatience"/>,
    /// <see cref="TrainingOptions.Threads"/> and the checkpoint options may differ from the checkpoint's.</param>
    /// <param name="progress">Receives a report after every step and every epoch.</param>
    /// <param name="cancellationToken">Stops training after the current step and writes a checkpoint.</param>
    /// <returns>The model with the weights of the epoch with the lowest validation loss.</returns>
    /// <exception cref="DataFormatException">The file cannot be read, has a bad row (with its line), or changed during training.</exception>
    /// <exception cref="SeqtalkException">No checkpoint is there or it is damaged, the data or an option differs
    /// in a way that breaks exactness, the temporary file cannot be written, or training diverged.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatModel ResumeTraining(string checkpointDirectory, PairFile pairs, TrainingOptions? overrides = null,
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
    public IReadOnlyList<string> ReplyBatch(IReadOnlyList<string> questions, DecodeOptions? options = null) => ReplyBatch(questions, options, null);

    /// <summary>Replies to many questions, decoded together in batches, and hands each reply out as soon as it is ready:
    /// with greedy decoding (the default) at the step its decoding ends, while the rest of the batch still decodes (a
    /// server answers its client at once); with beam search or sampling when the batch is done.</summary>
    /// <param name="questions">The questions.</param>
    /// <param name="options">Decoding options; null for the defaults.</param>
    /// <param name="replied">Called once per question with (its index, its reply), on a decoding thread, possibly on
    /// several threads at once (<see cref="DecodeOptions.Threads"/>); null for none.</param>
    /// <returns>One reply per question, in order.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public IReadOnlyList<string> ReplyBatch(IReadOnlyList<string> questions, DecodeOptions? options, Action<int, string>? replied)
    {
        ArgumentNullException.ThrowIfNull(questions);
        options ??= DefaultDecodeOptions;
        if (!options.IsPlainGreedy)
        {
            string[] texts = [.. ReplyDetailedBatch(questions, options).Select(r => r.Text)];
            if (replied is not null)
            {
                for (int i = 0; i < texts.Length; i++) replied(i, texts[i]);
            }
            return texts;
        }
        var replies = new string[questions.Count];
        Action<int, int[]>? ended = replied is null ? null : (i, ids) => replied(i, replies[i] = TargetTokenizer.Decode(ids));
        var decoded = DecodeIds(questions, options, ended);
        for (int i = 0; i < decoded.Length; i++) replies[i] ??= TargetTokenizer.Decode(decoded[i]);
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

    /// <summary>Evaluates the model on pairs: the teacher-forced likelihood of the answers (loss, perplexity, token
    /// accuracy, bits per character) and the replies decoded with <paramref name="options"/> against the answers
    /// (sacreBLEU BLEU and chrF, token F1, distinct-n, lengths, repetition), overall and per pair.</summary>
    /// <param name="pairs">Pairs to evaluate on.</param>
    /// <param name="options">Decoding options for the replies.</param>
    /// <exception cref="SeqtalkException">There are no pairs.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A decoding option is out of range.</exception>
    public EvaluationResult Evaluate(IReadOnlyList<QaPair> pairs, DecodeOptions? options = null) => Evaluator.Run(this, pairs, options);

    /// <summary>The rows of the training file that training held out for validation, found again from the split
    /// the model records (rows, validation size, mode and seed).</summary>
    /// <param name="trainingPairs">The pairs of the file the model was trained on, read the same way.</param>
    /// <returns>The validation pairs, in file order.</returns>
    /// <exception cref="SeqtalkException">The model records no split or no validation rows, or the file has a
    /// different number of pairs than the one it was trained on.</exception>
    public IReadOnlyList<QaPair> ValidationPairs(IReadOnlyList<QaPair> trainingPairs) => Evaluator.ValidationPairs(this, trainingPairs);

    internal int[][] DecodeIds(IReadOnlyList<string> questions, DecodeOptions? options, Action<int, int[]>? ended = null)
    {
        options?.Validate();
        int maxSteps = options?.MaxLength ?? DefaultMaxReplyLength;
        bool banUnknown = !(options?.AllowUnknown ?? false);
        var sources = EncodeQuestions(questions);

        int count = sources.Length, parts = Math.Clamp(count / MinRowsPerThread, 1, options?.Threads ?? 1);
        var result = new int[count][];
        if (parts == 1 && count <= SessionRows)
        {
            DecodeRange(sources, 0, count, maxSteps, banUnknown, result, ended);
            return result;
        }
        // Questions of similar length are decoded together: in source order, longest first, cut into one contiguous
        // share per thread (each decoded by its own session on its own thread: one fork per call, no step waits for
        // another thread) and into chunks of a session's rows. A share's rows then leave the encoder at nearly the same
        // step, where shares of mixed lengths each ended in steps of one or two rows that read all the weights for
        // little work (30 questions on two threads: 10–25 % more replies a second than in arrival order, three runs).
        // A row's floats do not depend on its batch-mates (InferenceSession), so the replies are those of one thread,
        // in any order.
        var order = LongestFirst(sources);
        var sorted = new int[count][];
        for (int i = 0; i < count; i++) sorted[i] = sources[order[i]];
        var sortedResult = new int[count][];
        Action<int, int[]>? sortedEnded = ended is null ? null : (i, ids) => ended(order[i], ids);
        if (parts == 1) DecodeRange(sorted, 0, count, maxSteps, banUnknown, sortedResult, sortedEnded);
        else
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
            {
                DecodeRange(sorted, ShareStart(count, p, parts), ShareStart(count, p + 1, parts), maxSteps, banUnknown, sortedResult, sortedEnded);
            });
        }
        for (int i = 0; i < count; i++) result[order[i]] = sortedResult[i];
        return result;
    }

    /// <summary>Indices of <paramref name="sources"/> by length, longest first; equal lengths in their order.</summary>
    internal static int[] LongestFirst(int[][] sources)
    {
        var order = new int[sources.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) => sources[a].Length != sources[b].Length ? sources[b].Length.CompareTo(sources[a].Length) : a.CompareTo(b));
        return order;
    }

    /// <summary>Fewest questions a thread of a multi-threaded greedy batch takes.</summary>
    private const int MinRowsPerThread = 2;

    /// <summary>Where share <paramref name="p"/> of <paramref name="parts"/> starts among <paramref name="count"/> questions:
    /// whole GEMM row tiles to every share but the last when there are at least as many tiles as shares (30 questions on
    /// two threads: 12 and 18, not 15 and 15, whose first steps would each end in a tile that repeats rows), else an
    /// even split.</summary>
    private static int ShareStart(int count, int p, int parts)
    {
        if (p >= parts) return count;
        int tile = Kernels.Kernels.GemmRowTile, tiles = count / tile;
        return tiles >= parts ? tile * (int)((long)tiles * p / parts) : (int)((long)count * p / parts);
    }

    /// <summary>Greedy replies to sources [start, end) into result, in chunks of a rented session's rows; each reply
    /// also goes to <paramref name="ended"/> (with its index in <paramref name="sources"/>) at the step it ends.</summary>
    private void DecodeRange(int[][] sources, int start, int end, int maxSteps, bool banUnknown, int[][] result, Action<int, int[]>? ended)
    {
        var session = RentSession();
        try
        {
            for (int from = start; from < end; from += SessionRows)
            {
                int count = Math.Min(SessionRows, end - from), first = from;
                var part = session.GreedyDecode(new ArraySegment<int[]>(sources, from, count), maxSteps, banUnknown,
                    ended is null ? null : (i, ids) => ended(first + i, ids));
                Array.Copy(part, 0, result, from, count);
            }
        }
        finally
        {
            _sessions.Add(session);
        }
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

/// <summary>What <see cref="ChatModel.Evaluate"/> measured. Reply metrics compare the decoded replies with the
/// answers as written in the file.</summary>
public sealed record EvaluationResult
{
    /// <summary>Pairs evaluated.</summary>
    public required int Pairs { get; init; }
    /// <summary>Real answer tokens (with the end token) the loss is over.</summary>
    public required int Tokens { get; init; }
    /// <summary>Mean cross-entropy per real answer token (teacher forcing), in nats.</summary>
    public required double Loss { get; init; }
    /// <summary>exp(Loss).</summary>
    public required double Perplexity { get; init; }
    /// <summary>Share of real answer tokens predicted exactly (teacher forcing).</summary>
    public required double TokenAccuracy { get; init; }
    /// <summary>Corpus BLEU (0–100) of the replies against the answers, as sacreBLEU computes it by default
    /// (13a tokenization, exp smoothing).</summary>
    public required double Bleu { get; init; }
    /// <summary>Mean token F1 (0–1) of the replies against the answers, on the model's word split.</summary>
    public required double TokenF1 { get; init; }
    /// <summary>Share of replies that equal the answer word for word (model's word split).</summary>
    public required double ExactMatch { get; init; }
    /// <summary>Bits per character of the answers, a complete code length comparable across tokenizers: the total
    /// negative log2-likelihood of the answer tokens and each <c>&lt;/s&gt;</c>, plus <see cref="UnknownSpellingBits"/>
    /// (the spelling of the text behind each <c>&lt;unk&gt;</c>), divided by <see cref="ReferenceCharacters"/>. Equal to
    /// <see cref="ModelBitsPerCharacter"/> when no answer token is <c>&lt;unk&gt;</c> (always with BPE). NaN when the
    /// answers have no characters.</summary>
    public required double BitsPerCharacter { get; init; }
    /// <summary>The model's part of <see cref="BitsPerCharacter"/>: the negative log2-likelihood of the answer tokens
    /// and each <c>&lt;/s&gt;</c> alone, divided by <see cref="ReferenceCharacters"/>. Not comparable across tokenizers
    /// when answers have <c>&lt;unk&gt;</c> tokens, since a whole unknown word then costs one token. NaN when the
    /// answers have no characters.</summary>
    public double ModelBitsPerCharacter { get; init; }
    /// <summary>Bits added to the model's to spell the text behind every scored <c>&lt;unk&gt;</c> answer token with a
    /// character unigram fit on the target vocabulary (see docs/cli.md); 0 when there is none.</summary>
    public double UnknownSpellingBits { get; init; }
    /// <summary>Scored answer tokens that are <c>&lt;unk&gt;</c> (each answer cut to the maximum sequence length), the
    /// tokens <see cref="UnknownSpellingBits"/> spells.</summary>
    public long UnknownTokens { get; init; }
    /// <summary>Characters of the answers after the model's answer normalization (NFC, one space between words),
    /// counted as Unicode text elements.</summary>
    public required long ReferenceCharacters { get; init; }
    /// <summary>Share of the answers' tokens (without <c>&lt;/s&gt;</c>) that are <c>&lt;unk&gt;</c>.</summary>
    public required double UnknownShare { get; init; }
    /// <summary>Question tokens the model reads (each question cut to the maximum sequence length).</summary>
    public long QuestionTokens { get; init; }
    /// <summary>Share of <see cref="QuestionTokens"/> that are <c>&lt;unk&gt;</c>: question words the model has never
    /// seen. 0 with BPE tokens (character and byte fallback).</summary>
    public double QuestionUnknownShare { get; init; }
    /// <summary>Replies that contain <c>&lt;unk&gt;</c> (possible only with <see cref="Decoding.DecodeOptions.AllowUnknown"/>
    /// and a tokenizer that has unknown tokens; never with BPE).</summary>
    public int RepliesWithUnknown { get; init; }
    /// <summary>Answers longer than the model's maximum sequence length, whose likelihood covers only the
    /// first tokens (their characters are all counted).</summary>
    public required int TruncatedReferences { get; init; }
    /// <summary>Corpus BLEU (0–100) on characters (sacreBLEU's "char" tokenization: every non-space code point
    /// is a token), better suited to Korean than word BLEU.</summary>
    public required double CharacterBleu { get; init; }
    /// <summary>Corpus chrF (0–100) with sacreBLEU's defaults: character n-grams up to 6, β = 2, spaces removed.</summary>
    public required double Chrf { get; init; }
    /// <summary>Distinct 13a tokens over all replies divided by the tokens in them.</summary>
    public required double Distinct1 { get; init; }
    /// <summary>Distinct 13a token bigrams over all replies divided by the bigrams in them.</summary>
    public required double Distinct2 { get; init; }
    /// <summary>Mean reply length in 13a tokens.</summary>
    public required double MeanReplyLength { get; init; }
    /// <summary>Mean reply length in characters (text elements).</summary>
    public required double MeanReplyCharacters { get; init; }
    /// <summary>Mean answer length in 13a tokens, to compare with <see cref="MeanReplyLength"/>.</summary>
    public required double MeanReferenceLength { get; init; }
    /// <summary>Share of the replies that are one of the 10 most frequent replies (exact text): near 1 when the
    /// model says the same few things to everyone.</summary>
    public required double TopRepliesShare { get; init; }
    /// <summary>One entry per pair, in the order given.</summary>
    public required IReadOnlyList<EvaluationExample> Examples { get; init; }
}

/// <summary>One evaluated pair.</summary>
public sealed record EvaluationExample
{
    /// <summary>The question as given.</summary>
    public required string Question { get; init; }
    /// <summary>The reference answer as given.</summary>
    public required string Reference { get; init; }
    /// <summary>The model's reply.</summary>
    public required string Reply { get; init; }
    /// <summary>Answer tokens the likelihood is over, with <c>&lt;/s&gt;</c>.</summary>
    public required int Tokens { get; init; }
    /// <summary>Negative log2-likelihood of the answer tokens and <c>&lt;/s&gt;</c> (teacher forcing), plus
    /// <see cref="UnknownSpellingBits"/>, in bits.</summary>
    public required double Bits { get; init; }
    /// <summary><see cref="Bits"/> divided by the characters of the normalized answer; NaN when it has none.</summary>
    public required double BitsPerCharacter { get; init; }
    /// <summary>The part of <see cref="Bits"/> that spells the text behind the answer's scored <c>&lt;unk&gt;</c> tokens; 0 when it has none.</summary>
    public double UnknownSpellingBits { get; init; }
    /// <summary>chrF (0–100) of the reply against the answer.</summary>
    public required double Chrf { get; init; }
}
