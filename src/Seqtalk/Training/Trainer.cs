using System.Diagnostics;
using System.Globalization;
using Seqtalk.Data;
using Seqtalk.IO;
using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>
/// The training loop: split, tokenizers, batches, epochs of forward/backward/update, validation,
/// best-model keeping, early stopping and cancellation. It orchestrates; the math lives in Nn and Kernels.
/// </summary>
internal static class Trainer
{
    /// <summary>Stop after this many non-finite steps in a row.</summary>
    private const int MaxNonFiniteStepsInARow = 5;

    public static ChatModel Run(IReadOnlyList<QaPair> pairs, TrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
        => Run(new PairList(pairs), options, resume: null, progress, cancellationToken);

    public static ChatModel Run(IPairSource pairs, TrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
        => Run(pairs, options, resume: null, progress, cancellationToken);

    /// <summary>Continues the run a checkpoint saved, as if it had never stopped.</summary>
    public static ChatModel Resume(string path, IReadOnlyList<QaPair> pairs, TrainingOptions? overrides, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
        => Resume(path, new PairList(pairs), overrides, progress, cancellationToken);

    /// <summary>Continues the run a checkpoint saved, as if it had never stopped.</summary>
    /// <param name="path">A checkpoint directory, a checkpoint root, or a model directory holding <c>checkpoints/</c>.</param>
    /// <param name="pairs">The same pairs the run trained on, in memory or in a file read in passes (checked against
    /// the checkpoint's fingerprint while they are read, before the first step: <see cref="TrainingData"/>).</param>
    /// <param name="overrides">Options for the rest of the run; null to keep the checkpoint's. Only
    /// <see cref="ResumableOptions"/> may differ from the checkpoint's.</param>
    /// <param name="progress">Receives a report after every step and every epoch.</param>
    /// <param name="cancellationToken">Stops after the current step (with a checkpoint).</param>
    public static ChatModel Resume(string path, IPairSource pairs, TrainingOptions? overrides, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        string directory = CheckpointStore.Resolve(path);
        var checkpoint = CheckpointStore.Read(directory);
        var saved = checkpoint.Options with { CheckpointDirectory = CheckpointStore.RootOf(directory) };
        var options = overrides ?? saved;
        if (NonResumableDifference(saved, options) is { } property)
        {
            throw new SeqtalkException(string.Create(CultureInfo.InvariantCulture,
                $"Cannot resume from '{directory}': {property.Name} is {Show(property.GetValue(options))} but the checkpoint was trained with {Show(property.GetValue(saved))}; only {string.Join(", ", ResumableOptions)} may change on resume."));
        }
        return Run(pairs, options, checkpoint, progress, cancellationToken);
    }

    /// <summary>The refusal of a resume over other data: the count given and, once the data has been
    /// read whole, its hash (<paramref name="givenSha256"/> is null when the count alone already differs).</summary>
    internal static SeqtalkException DataDiffers(Checkpoint checkpoint, int givenRows, string? givenSha256) => new(
        $"Cannot resume from '{checkpoint.Directory}': the data differs from the run's ({checkpoint.Data.Rows} pairs, sha256 {checkpoint.Data.Sha256[..12]}…; " +
        $"given {givenRows} pairs{(givenSha256 is null ? "" : $", sha256 {givenSha256[..12]}…")}). Resume with the same data file and reading options.");

    /// <summary>The options a resumed run may change; every other one decides the batches or the updates.</summary>
    public static readonly string[] ResumableOptions =
    [
        nameof(TrainingOptions.Epochs), nameof(TrainingOptions.EarlyStoppingPatience), nameof(TrainingOptions.Threads),
        nameof(TrainingOptions.CheckpointDirectory), nameof(TrainingOptions.CheckpointEverySteps),
        nameof(TrainingOptions.CheckpointEvery), nameof(TrainingOptions.KeepCheckpoints),
    ];

    /// <summary>The first option that differs between a checkpoint's options and a resumed run's and is not one
    /// of <see cref="ResumableOptions"/>; null when the run can continue exactly.</summary>
    internal static System.Reflection.PropertyInfo? NonResumableDifference(TrainingOptions saved, TrainingOptions options) =>
        typeof(TrainingOptions).GetProperties()
            .FirstOrDefault(p => !ResumableOptions.Contains(p.Name) && !Equals(p.GetValue(saved), p.GetValue(options)));

    internal static string Show(object? value) => value switch
    {
        null => "unset",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static ChatModel Run(IPairSource pairs, TrainingOptions options, Checkpoint? resume, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        string? checkpointRoot = options.CheckpointDirectory;
        if (resume is null && checkpointRoot is not null && CheckpointStore.HasCheckpoints(checkpointRoot))
            throw new SeqtalkException($"'{checkpointRoot}' already holds checkpoints of a run; resume it (seqtalk train --resume) or write to another directory.");

        // Split, tokenizers and encoding stream over the source; the encoded pairs live in stores (memory for a
        // list, a temporary file for a PairFile) and batches are built from them one at a time. A resumed run keeps
        // the checkpoint's vocabularies (training them again would give the same ones) and has its data checked
        // against the checkpoint's fingerprint; a new run with checkpoints computes the fingerprint as it reads.
        using var data = TrainingData.Prepare(pairs, options, resume, fingerprint: checkpointRoot is not null, cancellationToken);
        var (sourceTokenizer, targetTokenizer) = (data.SourceTokenizer, data.TargetTokenizer);
        var (train, validation) = (data.Train, data.Validation);
        var fingerprint = resume?.Data ?? data.Fingerprint;

        var config = resume?.Model.Config ?? new ModelConfig
        {
            SourceVocabSize = sourceTokenizer.Vocabulary.Count,
            TargetVocabSize = targetTokenizer.Vocabulary.Count,
            EmbeddingDim = options.EmbeddingDim,
            HiddenDim = options.HiddenDim,
            Layers = options.Layers,
            Attention = options.Attention,
            InputFeeding = options.InputFeeding,
            BidirectionalEncoder = options.BidirectionalEncoder,
            TiedEmbeddings = options.TiedEmbeddings,
            Bridge = options.Bridge,
        };
        var model = resume?.Model.Network ?? Seq2SeqModel.Create(config, options.Seed);
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;

        int maxSource = Math.Max(1, Math.Max(train.MaxSourceLength, validation.MaxSourceLength));
        int maxTarget = Math.Max(train.MaxTargetLength, validation.MaxTargetLength) + 1;
        int maxBatch = Math.Min(options.BatchSize, Math.Max(train.Count, validation.Count));
        var workspace = new TrainingWorkspace(model, maxBatch, maxSource, maxTarget, threads)
        {
            Dropout = options.Dropout,
            DropoutSeed = (ulong)(uint)options.Seed,
            LabelSmoothing = options.LabelSmoothing,
        };
        var schedule = new LearningRateSchedule(options, resume?.State.Schedule);
        float learningRate = schedule.Current;
        int longestAnswer = train.Count > 0 ? train.MaxTargetLength : 1;
        var split = new SplitRecord(data.Rows, options.ValidationSize, options.Split, options.Seed);

        var validationBatches = validation.Count > 0 ? Batcher.MakeBatches(validation, options.BatchSize, shuffle: null) : [];
        var optimizer = new Optimizer(options.Optimizer, model.Parameters.Length);
        var gradients = new float[model.Parameters.Length];
        var state = resume?.State ?? new TrainerState();
        float[]? best = resume?.Best;
        if (resume is not null) optimizer.Restore(resume.OptimizerState1, resume.OptimizerState2, resume.State.OptimizerStep);
        // One generator for the whole run, consumed once per epoch by the batcher; a resumed run replays
        // the draws of the epochs already done, so every epoch gets the batches an unbroken run gets.
        var shuffle = new Random(options.Seed);
        for (int e = 1; e < state.Epoch; e++) Batcher.AdvanceShuffle(train.Count, options.BatchSize, shuffle);
        bool cancelled = false;
        // A run that stopped early stays stopped unless the resumed run's patience lets it go on.
        bool stoppedEarly = state.StoppedEarly && options.EarlyStoppingPatience is { } patienceSoFar && state.EpochsWithoutImprovement >= patienceSoFar;
        state.StoppedEarly = stoppedEarly;
        string? lastCheckpoint = null;
        var clock = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
        double gradNorm = 0;

        // Writes the loop's state as it is now: between two steps, or after an epoch ended.
        void WriteCheckpoint(bool isBest)
        {
            state.OptimizerStep = optimizer.Step;
            state.Schedule = schedule.State;
            var summary = Summary(state, cancelled: false, train.Count, validation.Count);
            state.ElapsedSeconds += clock.Elapsed.TotalSeconds;
            clock.Restart();
            var current = new ChatModel(model, sourceTokenizer, targetTokenizer, DefaultMaxReplyLength(longestAnswer), summary, split, options);
            var checkpoint = new Checkpoint(current, optimizer.State1, optimizer.State2, best, state, options, fingerprint!);
            lastCheckpoint = CheckpointStore.Write(checkpointRoot!, checkpoint, isBest, options.KeepCheckpoints);
            sinceCheckpoint.Restart();
        }

        while (state.Epoch <= options.Epochs && !cancelled && !stoppedEarly)
        {
            int epoch = state.Epoch;
            var epochClock = Stopwatch.StartNew();
            double secondsBefore = state.EpochSeconds;
            var batches = Batcher.MakeBatches(train, options.BatchSize, shuffle);
            while (state.StepInEpoch < batches.Count)
            {
                if (cancellationToken.IsCancellationRequested) { cancelled = true; break; }
                var batch = batches[state.StepInEpoch];
                Array.Clear(gradients);
                learningRate = schedule.NextStep();
                workspace.Step = schedule.State.Step;   // keys the dropout masks
                var stats = workspace.ForwardBackward(batch, gradients, 1f / batch.RealTargetTokens);
                gradNorm = Math.Sqrt(optimizer.SumOfSquares(gradients, workspace.Pool));
                state.StepInEpoch++;
                state.GlobalStep++;
                if (!double.IsFinite(stats.LossSum) || !double.IsFinite(gradNorm))
                {
                    // Skip the update: the weights stay as they were.
                    state.EpochSkipped++;
                    state.SkippedSteps++;
                    state.NonFiniteInARow++;
                }
                else
                {
                    state.NonFiniteInARow = 0;
                    if (options.ClipNorm is { } clip && gradNorm > clip)
                        System.Numerics.Tensors.TensorPrimitives.Multiply(gradients, (float)(clip / gradNorm), gradients);
                    optimizer.Update(model.Parameters, gradients, learningRate, workspace.Pool);
                    model.WeightsChanged();   // a model that decoded before (a resumed checkpoint's) drops its screen
                    state.EpochLossSum += stats.LossSum;
                    state.EpochTokens += stats.Tokens;
                    state.EpochCorrect += stats.Correct;
                }
                progress?.Report(new TrainingProgress
                {
                    Epoch = epoch,
                    Epochs = options.Epochs,
                    Step = state.StepInEpoch,
                    StepsPerEpoch = batches.Count,
                    TrainLoss = state.EpochTokens > 0 ? state.EpochLossSum / state.EpochTokens : double.NaN,
                    TokensPerSecond = state.EpochTokens / Math.Max(1e-9, secondsBefore + epochClock.Elapsed.TotalSeconds),
                    Elapsed = TimeSpan.FromSeconds(state.ElapsedSeconds) + clock.Elapsed,
                    GradientNorm = gradNorm,
                    LearningRate = learningRate,
                    SkippedSteps = state.EpochSkipped,
                });
                if (state.NonFiniteInARow >= MaxNonFiniteStepsInARow)
                    throw new SeqtalkException($"Training diverged: {state.NonFiniteInARow} steps in a row had a non-finite loss or gradient (epoch {epoch}, step {state.StepInEpoch}). Try a lower --learning-rate or --clip-norm 5.");
                // A checkpoint due at the last step of an epoch is the epoch-end one below.
                if (checkpointRoot is not null && state.StepInEpoch < batches.Count
                    && (state.GlobalStep % options.CheckpointEverySteps == 0 || sinceCheckpoint.Elapsed >= options.CheckpointEvery))
                {
                    state.EpochSeconds = secondsBefore + epochClock.Elapsed.TotalSeconds;
                    WriteCheckpoint(isBest: false);
                }
            }
            if (cancelled && state.StepInEpoch < batches.Count)
            {
                // An unfinished epoch is not measured; a checkpoint keeps its place.
                state.EpochSeconds = secondsBefore + epochClock.Elapsed.TotalSeconds;
                break;
            }

            double trainSeconds = secondsBefore + epochClock.Elapsed.TotalSeconds;
            double? validationLoss = null, validationAccuracy = null;
            if (validationBatches.Count > 0)
            {
                var (loss, accuracy) = Measure(workspace, validationBatches);
                validationLoss = loss;
                validationAccuracy = accuracy;
            }
            double lossSum = state.EpochLossSum;
            long tokens = state.EpochTokens;
            double criterion = validationLoss ?? (tokens > 0 ? lossSum / tokens : double.PositiveInfinity);
            bool isBest = validationLoss is null || criterion < state.BestLoss;
            if (isBest)
            {
                state.BestLoss = criterion;
                state.BestEpoch = epoch;
                best = (float[])model.Parameters.Clone();
                state.EpochsWithoutImprovement = 0;
            }
            else
            {
                state.EpochsWithoutImprovement++;
            }
            var metrics = new EpochMetrics(epoch, tokens > 0 ? lossSum / tokens : double.NaN, tokens > 0 ? (double)state.EpochCorrect / tokens : 0,
                validationLoss, validationLoss is { } vl ? Math.Exp(vl) : null, validationAccuracy,
                TimeSpan.FromSeconds(secondsBefore) + epochClock.Elapsed, tokens / Math.Max(1e-9, trainSeconds), isBest, learningRate)
            {
                SkippedSteps = state.EpochSkipped,
            };
            schedule.EndEpoch(validationLoss);
            state.History.Add(metrics);
            progress?.Report(new TrainingProgress
            {
                Epoch = epoch,
                Epochs = options.Epochs,
                Step = state.StepInEpoch,
                StepsPerEpoch = batches.Count,
                TrainLoss = metrics.TrainLoss,
                TokensPerSecond = metrics.TokensPerSecond,
                Elapsed = TimeSpan.FromSeconds(state.ElapsedSeconds) + clock.Elapsed,
                GradientNorm = gradNorm,
                LearningRate = learningRate,
                SkippedSteps = state.EpochSkipped,
                EpochEnd = metrics,
            });
            if (options.EarlyStoppingPatience is { } patience && state.EpochsWithoutImprovement >= patience)
            {
                stoppedEarly = true;
                state.StoppedEarly = true;
            }
            state.NextEpoch();
            if (checkpointRoot is not null) WriteCheckpoint(isBest);
        }
        if (cancelled && checkpointRoot is not null) WriteCheckpoint(isBest: false);

        // Keep the best weights; if no epoch finished (cancelled early), keep what was trained.
        var finalModel = best is null ? model : Seq2SeqModel.FromParameters(config, best);
        var result = Summary(state, cancelled, train.Count, validation.Count) with { StoppedEarly = stoppedEarly, LastCheckpoint = lastCheckpoint };
        return new ChatModel(finalModel, sourceTokenizer, targetTokenizer, DefaultMaxReplyLength(longestAnswer), result, split, options);
    }

    private static TrainingSummary Summary(TrainerState state, bool cancelled, int trainingPairs, int validationPairs) => new()
    {
        Epochs = state.History.ToList(),
        BestEpoch = state.BestEpoch,
        Cancelled = cancelled,
        StoppedEarly = state.StoppedEarly,
        TrainingPairs = trainingPairs,
        ValidationPairs = validationPairs,
        SkippedSteps = state.SkippedSteps,
    };

    /// <summary>The answers' normalizer: the questions' one without lower-casing, so replies are written
    /// properly (the one place this rule lives; training and loading both use it).</summary>
    internal static TextNormalizerOptions AnswerNormalizer(TextNormalizerOptions questions) => questions with { Lowercase = false };

    /// <summary>The default reply length bound: the longest training answer plus a margin.</summary>
    internal static int DefaultMaxReplyLength(int longestAnswer) => longestAnswer + Math.Max(5, longestAnswer / 2);

    /// <summary>Mean loss per real target token and token accuracy over batches, by teacher forcing.</summary>
    internal static (double Loss, double Accuracy) Measure(TrainingWorkspace workspace, IReadOnlyList<Batch> batches)
    {
        double lossSum = 0;
        long tokens = 0, correct = 0;
        foreach (var batch in batches)
        {
            var stats = workspace.Forward(batch);
            lossSum += stats.LossSum;
            tokens += stats.Tokens;
            correct += stats.Correct;
        }
        return tokens == 0 ? (double.NaN, 0) : (lossSum / tokens, (double)correct / tokens);
    }

    internal static Tokenizer TrainTokenizer(TrainingOptions options, TextNormalizerOptions normalizer, IEnumerable<string> texts) =>
        options.Tokenizer switch
        {
            TokenizerKind.Word => WordTokenizer.Train(texts, new WordTokenizerOptions { MaxVocabulary = options.MaxVocabulary, MinFrequency = options.MinFrequency, Normalizer = normalizer }),
            TokenizerKind.Character => CharTokenizer.Train(texts, new CharTokenizerOptions { MaxVocabulary = options.MaxVocabulary, MinFrequency = options.MinFrequency, Normalizer = normalizer }),
            TokenizerKind.Bpe => BpeTokenizer.Train(texts, new BpeTokenizerOptions { VocabularySize = options.BpeVocabularySize, Normalizer = normalizer }),
        };

    internal static List<EncodedPair> Encode(IReadOnlyList<QaPair> pairs, IEnumerable<int> indices, Tokenizer source, Tokenizer target, int maxLength)
    {
        var result = new List<EncodedPair>();
        foreach (int i in indices)
            result.Add(new EncodedPair(Cut(source.EncodeToIds(pairs[i].Question), maxLength), Cut(target.EncodeToIds(pairs[i].Answer), maxLength)));
        return result;
    }

    internal static int[] Cut(IReadOnlyList<int> ids, int maxLength)
    {
        var array = new int[Math.Min(ids.Count, maxLength)];
        for (int i = 0; i < array.Length; i++) array[i] = ids[i];
        return array;
    }
}

/// <summary>How the validation rows were chosen, so evaluation can find them again in the same file.</summary>
/// <param name="Rows">Rows in the training file.</param>
/// <param name="ValidationSize">Fraction or count, as given.</param>
/// <param name="Mode">Random or tail.</param>
/// <param name="Seed">Seed of the random split.</param>
internal sealed record SplitRecord(int Rows, double ValidationSize, SplitMode Mode, int Seed);
