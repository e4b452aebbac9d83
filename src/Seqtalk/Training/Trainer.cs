using System.Diagnostics;
using Seqtalk.Data;
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
    {
        options.Validate();
        if (pairs.Count == 0) throw new SeqtalkException("There are no question/answer pairs to train on.");

        var (trainIndices, validationIndices) = DataSplit.Split(pairs.Count, options.ValidationSize, options.Split, options.Seed);
        var normalizer = new TextNormalizerOptions { Mode = options.Normalization, Lowercase = options.Lowercase };
        var sourceTokenizer = TrainTokenizer(options, normalizer, trainIndices.Select(i => pairs[i].Question));
        var targetTokenizer = TrainTokenizer(options, AnswerNormalizer(normalizer), trainIndices.Select(i => pairs[i].Answer));

        var train = Encode(pairs, trainIndices, sourceTokenizer, targetTokenizer, options.MaxSequenceLength);
        var validation = Encode(pairs, validationIndices, sourceTokenizer, targetTokenizer, options.MaxSequenceLength);

        var config = new ModelConfig
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
        };
        var model = Seq2SeqModel.Create(config, options.Seed);
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;

        var all = train.Concat(validation).ToList();
        int maxSource = Math.Max(1, all.Max(p => p.Source.Length));
        int maxTarget = all.Max(p => p.Target.Length) + 1;
        int maxBatch = Math.Min(options.BatchSize, Math.Max(train.Count, validation.Count));
        var workspace = new TrainingWorkspace(model, maxBatch, maxSource, maxTarget, threads)
        {
            Dropout = options.Dropout,
            DropoutSeed = (ulong)(uint)options.Seed,
            LabelSmoothing = options.LabelSmoothing,
        };
        var schedule = new LearningRateSchedule(options);
        float learningRate = schedule.Current;

        var validationBatches = validation.Count > 0 ? Batcher.MakeBatches(validation, options.BatchSize, shuffle: null) : [];
        var shuffle = new Random(options.Seed);
        var optimizer = new Optimizer(options.Optimizer, model.Parameters.Length);
        var gradients = new float[model.Parameters.Length];
        float[]? best = null;
        double bestLoss = double.PositiveInfinity;
        int bestEpoch = 0, epochsWithoutImprovement = 0, nonFiniteInARow = 0;
        bool cancelled = false, stoppedEarly = false;
        var history = new List<EpochMetrics>();
        var clock = Stopwatch.StartNew();

        for (int epoch = 1; epoch <= options.Epochs && !cancelled; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var batches = Batcher.MakeBatches(train, options.BatchSize, shuffle);
            double lossSum = 0, gradNorm = 0;
            long tokens = 0, correct = 0;
            int step = 0;
            foreach (var batch in batches)
            {
                if (cancellationToken.IsCancellationRequested) { cancelled = true; break; }
                Array.Clear(gradients);
                learningRate = schedule.NextStep();
                workspace.Step = schedule.State.Step;   // keys the dropout masks
                var stats = workspace.ForwardBackward(batch, gradients, 1f / batch.RealTargetTokens);
                gradNorm = Math.Sqrt(Kernels.Kernels.SumOfSquares(gradients));
                if (!double.IsFinite(stats.LossSum) || !double.IsFinite(gradNorm))
                {
                    if (++nonFiniteInARow >= MaxNonFiniteStepsInARow)
                        throw new SeqtalkException($"Training diverged: {nonFiniteInARow} steps in a row had a non-finite loss or gradient (epoch {epoch}, step {step + 1}). Try a lower --learning-rate or --clip-norm 5.");
                    step++;
                    continue;
                }
                nonFiniteInARow = 0;
                if (options.ClipNorm is { } clip && gradNorm > clip)
                    System.Numerics.Tensors.TensorPrimitives.Multiply(gradients, (float)(clip / gradNorm), gradients);
                optimizer.Update(model.Parameters, gradients, learningRate);
                lossSum += stats.LossSum;
                tokens += stats.Tokens;
                correct += stats.Correct;
                step++;
                progress?.Report(new TrainingProgress
                {
                    Epoch = epoch,
                    Epochs = options.Epochs,
                    Step = step,
                    StepsPerEpoch = batches.Count,
                    TrainLoss = tokens > 0 ? lossSum / tokens : double.NaN,
                    TokensPerSecond = tokens / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds),
                    Elapsed = clock.Elapsed,
                    GradientNorm = gradNorm,
                    LearningRate = learningRate,
                });
            }
            if (cancelled && step < batches.Count) break;   // an unfinished epoch is not measured

            double trainSeconds = epochClock.Elapsed.TotalSeconds;
            double? validationLoss = null, validationAccuracy = null;
            if (validationBatches.Count > 0)
            {
                var (loss, accuracy) = Measure(workspace, validationBatches);
                validationLoss = loss;
                validationAccuracy = accuracy;
            }
            double criterion = validationLoss ?? (tokens > 0 ? lossSum / tokens : double.PositiveInfinity);
            bool isBest = validationLoss is null || criterion < bestLoss;
            if (isBest)
            {
                bestLoss = criterion;
                bestEpoch = epoch;
                best = (float[])model.Parameters.Clone();
                epochsWithoutImprovement = 0;
            }
            else
            {
                epochsWithoutImprovement++;
            }
            var metrics = new EpochMetrics(epoch, tokens > 0 ? lossSum / tokens : double.NaN, tokens > 0 ? (double)correct / tokens : 0,
                validationLoss, validationLoss is { } vl ? Math.Exp(vl) : null, validationAccuracy,
                epochClock.Elapsed, tokens / Math.Max(1e-9, trainSeconds), isBest, learningRate);
            schedule.EndEpoch(validationLoss);
            history.Add(metrics);
            progress?.Report(new TrainingProgress
            {
                Epoch = epoch,
                Epochs = options.Epochs,
                Step = step,
                StepsPerEpoch = batches.Count,
                TrainLoss = metrics.TrainLoss,
                TokensPerSecond = metrics.TokensPerSecond,
                Elapsed = clock.Elapsed,
                GradientNorm = gradNorm,
                LearningRate = learningRate,
                EpochEnd = metrics,
            });
            if (options.EarlyStoppingPatience is { } patience && epochsWithoutImprovement >= patience)
            {
                stoppedEarly = true;
                break;
            }
        }

        // Keep the best weights; if no epoch finished (cancelled early), keep what was trained.
        var finalModel = best is null ? model : Seq2SeqModel.FromParameters(config, best);
        var summary = new TrainingSummary
        {
            Epochs = history,
            BestEpoch = bestEpoch,
            Cancelled = cancelled,
            StoppedEarly = stoppedEarly,
            TrainingPairs = train.Count,
            ValidationPairs = validation.Count,
        };
        int longestAnswer = train.Count > 0 ? train.Max(p => p.Target.Length) : 1;
        var split = new SplitRecord(pairs.Count, options.ValidationSize, options.Split, options.Seed);
        return new ChatModel(finalModel, sourceTokenizer, targetTokenizer, DefaultMaxReplyLength(longestAnswer), summary, split, options);
    }

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
