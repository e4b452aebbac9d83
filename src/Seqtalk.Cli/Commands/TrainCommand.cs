using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Seqtalk.Data;
using Seqtalk.IO;
using Seqtalk.Nn;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk train --data F --out DIR</c>: maps the options onto <see cref="TrainingOptions"/>,
/// trains with a progress renderer writing checkpoints to DIR/checkpoints, and saves the model (also when
/// interrupted). <c>--resume DIR</c> continues a run from its latest checkpoint.</summary>
internal static class TrainCommand
{
    private static readonly TrainingOptions s_defaults = new();

    /// <summary>TrainingOptions property → option, for messages from <see cref="TrainingOptions.Validate"/>.</summary>
    private static readonly Dictionary<string, string> s_optionNames = new()
    {
        [nameof(TrainingOptions.Epochs)] = "--epochs",
        [nameof(TrainingOptions.BatchSize)] = "--batch-size",
        [nameof(TrainingOptions.EmbeddingDim)] = "--embedding-dim",
        [nameof(TrainingOptions.HiddenDim)] = "--hidden-dim",
        [nameof(TrainingOptions.Layers)] = "--layers",
        [nameof(TrainingOptions.Attention)] = "--attention",
        [nameof(TrainingOptions.InputFeeding)] = "--input-feeding",
        [nameof(TrainingOptions.BidirectionalEncoder)] = "--bidirectional",
        [nameof(TrainingOptions.Bridge)] = "--bridge",
        [nameof(TrainingOptions.Optimizer)] = "--optimizer",
        [nameof(TrainingOptions.LearningRate)] = "--learning-rate",
        [nameof(TrainingOptions.ClipNorm)] = "--clip-norm",
        [nameof(TrainingOptions.ValidationSize)] = "--validation-size",
        [nameof(TrainingOptions.Split)] = "--split",
        [nameof(TrainingOptions.Seed)] = "--seed",
        [nameof(TrainingOptions.Threads)] = "--threads",
        [nameof(TrainingOptions.EarlyStoppingPatience)] = "--early-stopping",
        [nameof(TrainingOptions.Tokenizer)] = "--tokenizer",
        [nameof(TrainingOptions.Normalization)] = "--normalize",
        [nameof(TrainingOptions.Lowercase)] = "--lowercase",
        [nameof(TrainingOptions.MaxVocabulary)] = "--max-vocab",
        [nameof(TrainingOptions.MinFrequency)] = "--min-frequency",
        [nameof(TrainingOptions.BpeVocabularySize)] = "--bpe-vocab-size",
        [nameof(TrainingOptions.MaxSequenceLength)] = "--max-sequence-length",
        [nameof(TrainingOptions.Dropout)] = "--dropout",
        [nameof(TrainingOptions.TiedEmbeddings)] = "--tied-embeddings",
        [nameof(TrainingOptions.LabelSmoothing)] = "--label-smoothing",
        [nameof(TrainingOptions.WarmupSteps)] = "--warmup-steps",
        [nameof(TrainingOptions.LearningRateDecay)] = "--lr-decay",
        [nameof(TrainingOptions.LearningRateDecayStart)] = "--lr-decay-start",
        [nameof(TrainingOptions.PlateauFactor)] = "--lr-plateau-factor",
        [nameof(TrainingOptions.PlateauPatience)] = "--lr-plateau-patience",
        [nameof(TrainingOptions.MinLearningRate)] = "--min-learning-rate",
        [nameof(TrainingOptions.CheckpointEverySteps)] = "--checkpoint-every",
        [nameof(TrainingOptions.CheckpointEvery)] = "--checkpoint-every",
        [nameof(TrainingOptions.KeepCheckpoints)] = "--keep-checkpoints",
    };

    /// <summary>Exit code of a run stopped by Ctrl-C (SIGINT) after writing a checkpoint: 128 + 2, as shells report it.</summary>
    internal const int InterruptedBySigint = 130;
    /// <summary>Exit code of a run stopped by SIGTERM after writing a checkpoint: 128 + 15.</summary>
    internal const int InterruptedBySigterm = 143;

    public static Command Create()
    {
        var data = new DataOptions();
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Directory to write the model to (created if missing); checkpoints go to DIR/checkpoints. Required unless --resume.",
            HelpName = "DIR",
        };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training pairs.", HelpName = "N", DefaultValueFactory = _ => s_defaults.Epochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per training step.", HelpName = "N", DefaultValueFactory = _ => s_defaults.BatchSize };
        var embeddingDim = new Option<int>("--embedding-dim") { Description = "Embedding width.", HelpName = "N", DefaultValueFactory = _ => s_defaults.EmbeddingDim };
        var hiddenDim = new Option<int>("--hidden-dim") { Description = "LSTM width.", HelpName = "N", DefaultValueFactory = _ => s_defaults.HiddenDim };
        var layers = new Option<int>("--layers") { Description = "Stacked LSTM layers in the encoder and in the decoder.", HelpName = "N", DefaultValueFactory = _ => s_defaults.Layers };
        var attention = new Option<string>("--attention") { Description = "Attention over the question: none (the tutorial's model), dot, general (Luong) or bahdanau.", HelpName = "KIND", DefaultValueFactory = _ => "none" };
        attention.AcceptOnlyFromAmong("none", "dot", "general", "bahdanau");
        var inputFeeding = new Option<bool>("--input-feeding") { Description = "Feed the previous attentional state into the decoder (Luong input feeding; needs --attention)." };
        var bidirectional = new Option<bool>("--bidirectional") { Description = "Bidirectional encoder: H/2 forward and H/2 backward per layer (needs an even --hidden-dim)." };
        var bridge = new Option<bool>("--bridge") { Description = "Learned bridge: the decoder starts from tanh(W_h h + b_h), W_c c + b_c of the encoder's final states (per layer)." };
        var optimizer = new Option<string>("--optimizer") { Description = "rmsprop, adam or sgd (momentum 0.9).", HelpName = "NAME", DefaultValueFactory = _ => "rmsprop" };
        optimizer.AcceptOnlyFromAmong("rmsprop", "adam", "sgd");
        var learningRate = new Option<float>("--learning-rate", "--lr") { Description = "Learning rate.", HelpName = "X", DefaultValueFactory = _ => s_defaults.LearningRate };
        var clipNorm = new Option<float?>("--clip-norm") { Description = "Clip the global gradient norm to X [default: no clipping].", HelpName = "X" };
        var validationSize = new Option<double>("--validation-size")
        {
            Description = "Validation pairs: a fraction below 1 (0.1 = 10%), a count (2500), or 0 for none.",
            HelpName = "N|FRACTION",
            DefaultValueFactory = _ => s_defaults.ValidationSize,
        };
        var split = new Option<string>("--split") { Description = "Validation pairs: random (seeded) or tail (the last rows, as Keras' validation_split).", HelpName = "MODE", DefaultValueFactory = _ => "random" };
        split.AcceptOnlyFromAmong("random", "tail");
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation, the split and shuffling.", HelpName = "N", DefaultValueFactory = _ => s_defaults.Seed };
        var threads = new Option<int>("--threads") { Description = "Worker threads; 0 = one per core.", HelpName = "N", DefaultValueFactory = _ => s_defaults.Threads };
        var earlyStopping = new Option<int?>("--early-stopping") { Description = "Stop after N epochs without a better validation loss [default: off].", HelpName = "N" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "word, char or bpe (subwords with byte fallback: never <unk>).", HelpName = "KIND", DefaultValueFactory = _ => "word" };
        tokenizer.AcceptOnlyFromAmong("word", "char", "bpe");
        var normalize = new Option<string>("--normalize") { Description = "Text normalisation: default or tutorial.", HelpName = "MODE", DefaultValueFactory = _ => "default" };
        normalize.AcceptOnlyFromAmong("default", "tutorial");
        var lowercase = new Option<bool>("--lowercase") { Description = "Lower-case questions before tokenizing (answers keep their case)." };
        var maxVocab = new Option<int?>("--max-vocab") { Description = "Keep at most N tokens per vocabulary, special tokens included [default: all].", HelpName = "N" };
        var minFrequency = new Option<int>("--min-frequency") { Description = "Drop tokens seen fewer than N times.", HelpName = "N", DefaultValueFactory = _ => s_defaults.MinFrequency };
        var bpeVocabSize = new Option<int>("--bpe-vocab-size")
        {
            Description = "Tokens per BPE vocabulary, the special, byte and word-start tokens included (--tokenizer bpe).",
            HelpName = "N",
            DefaultValueFactory = _ => s_defaults.BpeVocabularySize,
        };
        var maxSequence = new Option<int>("--max-sequence-length") { Description = "Cut questions and answers to N tokens.", HelpName = "N", DefaultValueFactory = _ => s_defaults.MaxSequenceLength };
        var checkpointEvery = new Option<string?>("--checkpoint-every")
        {
            Description = "Also write a checkpoint every N steps, or every DURATION (30s, 10m, 2h) [default: at the end of every epoch only].",
            HelpName = "N|DURATION",
        };
        var keepCheckpoints = new Option<int>("--keep-checkpoints")
        {
            Description = "Keep the newest N checkpoints in DIR/checkpoints, plus the best epoch's.",
            HelpName = "N",
            DefaultValueFactory = _ => s_defaults.KeepCheckpoints,
        };
        var preset = new Option<string>("--preset")
        {
            Description = "Start from a named configuration: tutorial (the Keras tutorial's model, the defaults shown here) or quality (BPE, attention, a larger model, dropout, Adam, early stopping; see docs/cli.md). Options given beside it override its values.",
            HelpName = "NAME",
            DefaultValueFactory = _ => TrainingPresets.TutorialName,
        };
        preset.AcceptOnlyFromAmong([.. TrainingPresets.Names]);
        var resume = new Option<string?>("--resume")
        {
            Description = "Continue the run whose checkpoints DIR holds (the model directory, or one checkpoint in it) exactly where it stopped, on the same --data. Only --epochs, --early-stopping, --threads and the checkpoint options may change.",
            HelpName = "DIR",
        };

        var dropout = new Option<float>("--dropout") { Description = "Dropout rate in [0, 1) on embeddings, between LSTM layers and before the projection (training only).", HelpName = "P", DefaultValueFactory = _ => s_defaults.Dropout };
        var tied = new Option<bool>("--tied-embeddings") { Description = "Use the decoder's input embedding as the output projection (needs --embedding-dim = --hidden-dim)." };
        var labelSmoothing = new Option<float>("--label-smoothing") { Description = "Label smoothing ε in [0, 1) of the training loss (reported losses stay the true cross-entropy).", HelpName = "E", DefaultValueFactory = _ => s_defaults.LabelSmoothing };
        var warmup = new Option<int>("--warmup-steps") { Description = "Raise the learning rate linearly over the first N steps.", HelpName = "N", DefaultValueFactory = _ => s_defaults.WarmupSteps };
        var lrDecay = new Option<double>("--lr-decay") { Description = "Multiply the learning rate by F per epoch after --lr-decay-start (1 = none).", HelpName = "F", DefaultValueFactory = _ => s_defaults.LearningRateDecay };
        var lrDecayStart = new Option<int>("--lr-decay-start") { Description = "Last epoch at the full learning rate before --lr-decay applies.", HelpName = "E", DefaultValueFactory = _ => s_defaults.LearningRateDecayStart };
        var plateauFactor = new Option<double?>("--lr-plateau-factor") { Description = "Multiply the learning rate by F when the validation loss stops improving [default: off].", HelpName = "F" };
        var plateauPatience = new Option<int>("--lr-plateau-patience") { Description = "Epochs without a better validation loss before --lr-plateau-factor applies.", HelpName = "N", DefaultValueFactory = _ => s_defaults.PlateauPatience };
        var minLearningRate = new Option<double>("--min-learning-rate") { Description = "Decay and plateau never take the learning rate below X.", HelpName = "X", DefaultValueFactory = _ => s_defaults.MinLearningRate };

        var command = new Command("train", "Train a model on question/answer pairs and save it.");
        data.AddTo(command);
        foreach (Option option in new Option[]
        {
            output, epochs, batchSize, embeddingDim, hiddenDim, layers, attention, inputFeeding, bidirectional, bridge, optimizer, learningRate, clipNorm, validationSize, split, seed,
            threads, earlyStopping, tokenizer, normalize, lowercase, maxVocab, minFrequency, bpeVocabSize, maxSequence,
            dropout, tied, labelSmoothing, warmup, lrDecay, lrDecayStart, plateauFactor, plateauPatience, minLearningRate,
            checkpointEvery, keepCheckpoints, preset, resume,
        })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var options = new TrainingOptions
            {
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                EmbeddingDim = parse.GetValue(embeddingDim),
                HiddenDim = parse.GetValue(hiddenDim),
                Layers = parse.GetValue(layers),
                Attention = parse.GetValue(attention) switch
                {
                    "dot" => AttentionKind.Dot,
                    "general" => AttentionKind.General,
                    "bahdanau" => AttentionKind.Bahdanau,
                    _ => AttentionKind.None,
                },
                InputFeeding = parse.GetValue(inputFeeding),
                BidirectionalEncoder = parse.GetValue(bidirectional),
                Bridge = parse.GetValue(bridge),
                Optimizer = parse.GetValue(optimizer) switch
                {
                    "adam" => OptimizerKind.Adam,
                    "sgd" => OptimizerKind.Sgd,
                    _ => OptimizerKind.RmsProp,
                },
                LearningRate = parse.GetValue(learningRate),
                ClipNorm = parse.GetValue(clipNorm),
                ValidationSize = parse.GetValue(validationSize),
                Split = parse.GetValue(split) == "tail" ? SplitMode.Tail : SplitMode.Random,
                Seed = parse.GetValue(seed),
                Threads = parse.GetValue(threads),
                EarlyStoppingPatience = parse.GetValue(earlyStopping),
                Tokenizer = parse.GetValue(tokenizer) switch
                {
                    "char" => TokenizerKind.Character,
                    "bpe" => TokenizerKind.Bpe,
                    _ => TokenizerKind.Word,
                },
                Normalization = parse.GetValue(normalize) == "tutorial" ? NormalizationMode.Tutorial : NormalizationMode.Default,
                Lowercase = parse.GetValue(lowercase),
                MaxVocabulary = parse.GetValue(maxVocab),
                MinFrequency = parse.GetValue(minFrequency),
                BpeVocabularySize = parse.GetValue(bpeVocabSize),
                MaxSequenceLength = parse.GetValue(maxSequence),
                Dropout = parse.GetValue(dropout),
                TiedEmbeddings = parse.GetValue(tied),
                LabelSmoothing = parse.GetValue(labelSmoothing),
                WarmupSteps = parse.GetValue(warmup),
                LearningRateDecay = parse.GetValue(lrDecay),
                LearningRateDecayStart = parse.GetValue(lrDecayStart),
                PlateauFactor = parse.GetValue(plateauFactor),
                PlateauPatience = parse.GetValue(plateauPatience),
                MinLearningRate = parse.GetValue(minLearningRate),
                KeepCheckpoints = parse.GetValue(keepCheckpoints),
            };
            if (parse.GetValue(checkpointEvery) is { } every)
            {
                var (steps, time) = ParseCheckpointEvery(every);
                options = options with { CheckpointEverySteps = steps, CheckpointEvery = time };
            }
            string? resumeFrom = parse.GetValue(resume);
            bool presetGiven = parse.GetResult(preset) is { Implicit: false };
            if (presetGiven && resumeFrom is not null)
                throw new UsageException("--preset starts a new run; a resumed run keeps the options of its checkpoint (drop --preset)");
            if (presetGiven) options = Overlay(parse, command, options, TrainingPresets.Get(parse.GetValue(preset)!));
            string? outDir = parse.GetValue(output);
            if (resumeFrom is null && outDir is null) throw new UsageException("option '--out' is required (or --resume DIR to continue a run)");
            if (outDir is not null && File.Exists(outDir)) throw new UsageException($"--out '{outDir}' is a file; give a directory for the model.");

            string? checkpoint = null;
            if (resumeFrom is not null)
            {
                checkpoint = CheckpointStore.Resolve(resumeFrom);
                string root = CheckpointStore.RootOf(checkpoint);
                outDir ??= Directory.Exists(Path.Combine(resumeFrom, CheckpointStore.DefaultSubdirectory)) ? resumeFrom
                    : Path.GetFileName(root) == CheckpointStore.DefaultSubdirectory ? Path.GetDirectoryName(root)!
                    : throw new UsageException($"'{resumeFrom}' is not inside a model directory's {CheckpointStore.DefaultSubdirectory}/; give --out DIR for the model");
                options = ResumeOptions(parse, command, options, CheckpointStore.ReadJson(checkpoint).Options with { CheckpointDirectory = root });
            }
            else
            {
                options = options with { CheckpointDirectory = Path.Combine(outDir!, CheckpointStore.DefaultSubdirectory) };
                ClearFinishedRun(outDir!, options.CheckpointDirectory);
            }
            CommandRunner.Validate(options.Validate, s_optionNames);

            // From here on Ctrl-C and SIGTERM stop the run cleanly: while the file is counted and read, and between steps.
            using var cancel = new CancellationTokenSource();
            using var interrupts = new InterruptHandler(cancel);
            // Streaming: the pairs are counted here (one pass), then the library reads the file again to train
            // its tokenizers (not when resuming) and to encode the pairs into a temporary file beside the model directory.
            PairFile pairs;
            try
            {
                pairs = data.CountPairs(parse, NearestExistingDirectory(outDir!), cancel.Token);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                Console.WriteLine(InterruptedWhileReading(parse.GetValue(data.Data)!, outDir!, checkpoint));
                return interrupts.ExitCode;
            }
            interrupts.Counting = false;
            return Train(pairs, options, outDir!, checkpoint, interrupts, cancel.Token);
        }));
        return command;
    }

    /// <summary>", bidirectional encoder, general attention, input feeding" or "" for the tutorial's model.</summary>
    internal static string ArchitectureSuffix(AttentionKind attention, bool inputFeeding, bool bidirectional, bool bridge = false) =>
        (bidirectional ? ", bidirectional encoder" : "")
        + (bridge ? ", learned bridge" : "")
        + (attention == AttentionKind.None ? "" : $", {attention.ToString().ToLowerInvariant()} attention")
        + (inputFeeding ? ", input feeding" : "");

    /// <summary>"500" → every 500 steps; "30s", "10m", "2h" → every that long.</summary>
    private static (int? Steps, TimeSpan? Time) ParseCheckpointEvery(string text)
    {
        var inv = CultureInfo.InvariantCulture;
        string t = text.Trim();
        char unit = t.Length > 0 ? char.ToLowerInvariant(t[^1]) : ' ';
        string number = unit is 's' or 'm' or 'h' ? t[..^1] : t;
        if (!int.TryParse(number, NumberStyles.None, inv, out int n) || n < 1)
            throw new UsageException($"invalid value '{text}' for --checkpoint-every: give a number of steps (500) or a duration (30s, 10m, 2h).");
        return unit switch
        {
            's' => (null, TimeSpan.FromSeconds(n)),
            'm' => (null, TimeSpan.FromMinutes(n)),
            'h' => (null, TimeSpan.FromHours(n)),
            _ => (n, null),
        };
    }

    /// <summary>A copy of <paramref name="start"/> (a preset's or a checkpoint's options) with the value of every option
    /// given on this command line taken from <paramref name="given"/>; options left out keep <paramref name="start"/>'s value.</summary>
    private static TrainingOptions Overlay(ParseResult parse, Command command, TrainingOptions given, TrainingOptions start)
    {
        var options = start with { };
        foreach (var property in typeof(TrainingOptions).GetProperties())
        {
            if (!s_optionNames.TryGetValue(property.Name, out var name) || property.SetMethod is null) continue;
            var option = command.Options.First(o => o.Name == name);
            if (parse.GetResult(option) is { Implicit: false }) property.SetValue(options, property.GetValue(given));
        }
        return options;
    }

    /// <summary>The options of a resumed run: the checkpoint's, with the options given on this command line
    /// put in their place; refused (naming the option) when one of them would change the run's batches or updates.</summary>
    private static TrainingOptions ResumeOptions(ParseResult parse, Command command, TrainingOptions given, TrainingOptions saved)
    {
        var options = Overlay(parse, command, given, saved);
        if (Trainer.NonResumableDifference(saved, options) is { } changed)
        {
            string name = s_optionNames.GetValueOrDefault(changed.Name, changed.Name);
            var resumable = Trainer.ResumableOptions.Select(p => s_optionNames.GetValueOrDefault(p)).OfType<string>().Distinct();
            throw new UsageException(
                $"{name} {Trainer.Show(changed.GetValue(options))} differs from the checkpoint's {Trainer.Show(changed.GetValue(saved))}; a resumed run keeps every option that decides its batches and updates (only {string.Join(", ", resumable)} may change)");
        }
        return options;
    }

    /// <summary>A new run into a directory whose checkpoints belong to a finished run replaces them with its own
    /// (as it replaces the model); the checkpoints of an unfinished run are never thrown away.</summary>
    private static void ClearFinishedRun(string outDir, string root)
    {
        if (!CheckpointStore.HasCheckpoints(root)) return;
        var (saved, state, _, _, _) = CheckpointStore.ReadJson(CheckpointStore.Resolve(root));
        if (state.Epoch <= saved.Epochs && !state.StoppedEarly)
        {
            throw new SeqtalkException(string.Create(CultureInfo.InvariantCulture,
                $"'{outDir}' holds the checkpoints of an unfinished run (epoch {state.Epoch} of {saved.Epochs}); continue it with --resume {outDir}, or remove {root} to start afresh."));
        }
        Directory.Delete(root, recursive: true);
    }

    /// <summary>The line of a run stopped before its first step: nothing was trained, so nothing is saved.</summary>
    private static string InterruptedWhileReading(string path, string outDir, string? checkpoint) => checkpoint is null
        ? $"training interrupted while reading {path}, before the first step: nothing was trained or saved"
        : $"training interrupted while reading {path}, before the first step; continue with: seqtalk train --resume {outDir} --data {path}";

    private static int Train(PairFile pairs, TrainingOptions options, string outDir, string? checkpoint, InterruptHandler interrupts, CancellationToken cancel)
    {
        var inv = CultureInfo.InvariantCulture;
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;
        int count = pairs.CountPairs(cancel);
        string split = ValidationCount(count, options.ValidationSize) is { } v
            ? string.Create(inv, $"; train {count - v:N0}, validation {v:N0}{(v == 0 ? "" : options.Split == SplitMode.Tail ? " (last rows)" : " (random)")}")
            : "";
        Console.WriteLine(string.Create(inv, $"data: {count:N0} pairs from {pairs.Path}{split}"));
        Console.WriteLine(string.Create(inv,
            $"model: {TokenizerName(options)} tokens, embedding {options.EmbeddingDim}, hidden {options.HiddenDim}, {options.Layers} layer(s){ArchitectureSuffix(options.Attention, options.InputFeeding, options.BidirectionalEncoder, options.Bridge)}; " +
            $"{options.Optimizer.ToString().ToLowerInvariant()} lr {options.LearningRate:G4}, batch {options.BatchSize}, {options.Epochs} epochs, {threads} thread(s)"));
        if (Regularization(options) is { Length: > 0 } extras) Console.WriteLine("training: " + extras);

        if (checkpoint is not null)
        {
            var state = CheckpointStore.ReadJson(checkpoint).State;
            Console.WriteLine(string.Create(inv, $"resuming from {checkpoint}: epoch {state.Epoch}, {state.StepInEpoch} step(s) into it ({state.GlobalStep:N0} steps done)"));
        }

        var progress = new ProgressRenderer();
        ChatModel model;
        try
        {
            model = checkpoint is null
                ? ChatModel.Train(pairs, options, progress, cancel)
                : ChatModel.ResumeTraining(checkpoint, pairs, options, progress, cancel);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // Stopped while the file was still being read (before the first step): nothing to save.
            progress.Finish();
            Console.WriteLine(InterruptedWhileReading(pairs.Path, outDir, checkpoint));
            return interrupts.ExitCode;
        }
        finally
        {
            progress.Finish();
        }

        var config = model.Config;
        Console.WriteLine(string.Create(inv,
            $"vocabulary: {config.SourceVocabSize:N0} question tokens, {config.TargetVocabSize:N0} answer tokens; {model.ParameterCount:N0} parameters"));
        model.Save(outDir);
        Console.WriteLine(string.Create(inv, $"memory: peak working set {PeakWorkingSetMegabytes():N0} MB"));

        var summary = model.Training;
        int best = summary?.BestEpoch ?? 0;
        if (summary is { Cancelled: true })
        {
            Console.WriteLine(best > 0
                ? string.Create(inv, $"training interrupted: saved the model of epoch {best} to {outDir}")
                : $"training interrupted before the first epoch finished: saved the partly trained model to {outDir}");
            if (summary.LastCheckpoint is { } written)
                Console.WriteLine($"checkpoint {written} written; continue with: seqtalk train --resume {outDir} --data {pairs.Path}");
            return interrupts.ExitCode;
        }
        var bestMetrics = summary?.Epochs.FirstOrDefault(e => e.Epoch == best);
        string loss = bestMetrics?.ValidationLoss is { } vl
            ? string.Create(inv, $"val loss {vl:F4}")
            : bestMetrics is not null ? string.Create(inv, $"train loss {bestMetrics.TrainLoss:F4}, no validation pairs") : "no epoch finished";
        string early = summary is { StoppedEarly: true } ? string.Create(inv, $"stopped early after epoch {summary.Epochs.Count}; ") : "";
        Console.WriteLine(string.Create(inv, $"saved {outDir} ({early}best epoch {best}, {loss})"));
        return ExitCodes.Ok;
    }

    /// <summary>The process's peak resident memory so far (VmHWM on Linux), in MB.</summary>
    private static long PeakWorkingSetMegabytes()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.PeakWorkingSet64 / (1024 * 1024);
    }

    /// <summary>The model directory if it exists, else its nearest existing parent (the temporary token file
    /// goes there, on the disk the model is written to); null for the system's temporary folder.</summary>
    private static string? NearestExistingDirectory(string outDir)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(outDir)); dir is not null; dir = dir.Parent)
        {
            if (dir.Exists) return dir.FullName;
        }
        return null;
    }

    /// <summary>"dropout 0.2, label smoothing 0.1, ..." for the options that differ from the tutorial; empty when none do.</summary>
    private static string Regularization(TrainingOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        if (o.Dropout > 0) parts.Add(string.Create(inv, $"dropout {o.Dropout:G3}"));
        if (o.TiedEmbeddings) parts.Add("tied embeddings");
        if (o.LabelSmoothing > 0) parts.Add(string.Create(inv, $"label smoothing {o.LabelSmoothing:G3} (losses shown are unsmoothed)"));
        if (o.WarmupSteps > 0) parts.Add(string.Create(inv, $"warmup {o.WarmupSteps} steps"));
        if (o.LearningRateDecay != 1) parts.Add(string.Create(inv, $"lr ×{o.LearningRateDecay:G4} per epoch after epoch {o.LearningRateDecayStart}"));
        if (o.PlateauFactor is { } f) parts.Add(string.Create(inv, $"lr ×{f:G4} after {o.PlateauPatience + 1} epochs without a better validation loss"));
        if (o.MinLearningRate > 0) parts.Add(string.Create(inv, $"min lr {o.MinLearningRate:G4}"));
        return string.Join(", ", parts);
    }

    /// <summary>The number of validation pairs the library will hold out, for the summary; null when the
    /// size is not usable (the library then says why).</summary>
    private static string TokenizerName(TrainingOptions options) => options.Tokenizer switch
    {
        TokenizerKind.Word => "word",
        TokenizerKind.Character => "char",
        TokenizerKind.Bpe => string.Create(CultureInfo.InvariantCulture, $"bpe {options.BpeVocabularySize}"),
    };

    private static int? ValidationCount(int count, double size)
    {
        if (size == 0) return 0;
        int v = size < 1 ? (int)Math.Round(count * size, MidpointRounding.AwayFromZero) : (int)Math.Min(size, int.MaxValue);
        return v >= 1 && v < count ? v : null;
    }

    /// <summary>Ctrl-C and SIGTERM cancel training (the model trained so far is saved); a second Ctrl-C ends the process.</summary>
    private sealed class InterruptHandler : IDisposable
    {
        private readonly CancellationTokenSource _cancel;
        private readonly PosixSignalRegistration? _sigterm;

        /// <summary>The exit code for the signal that stopped the run.</summary>
        public int ExitCode { get; private set; } = InterruptedBySigint;

        /// <summary>True while the data file is first counted: an interrupt then stops before anything is trained.</summary>
        public bool Counting { get; set; } = true;

        public InterruptHandler(CancellationTokenSource cancel)
        {
            _cancel = cancel;
            Console.CancelKeyPress += OnCancelKeyPress;
            if (!OperatingSystem.IsWindows())
            {
                _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
                {
                    context.Cancel = true;
                    Request(InterruptedBySigterm);
                });
            }
        }

        private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
        {
            if (_cancel.IsCancellationRequested) return;   // second Ctrl-C: let the process end
            e.Cancel = true;
            Request(InterruptedBySigint);
        }

        private void Request(int exitCode)
        {
            if (_cancel.IsCancellationRequested) return;
            ExitCode = exitCode;
            // Cancel first: whoever sees the message may rely on the run being cancelled already.
            try { _cancel.Cancel(); } catch (ObjectDisposedException) { }
            if (!Console.IsOutputRedirected) Console.Error.WriteLine();
            Console.Error.WriteLine(Counting
                ? "interrupt: stopping while the data file is counted; nothing has been trained yet"
                : "interrupt: stopping after the current step, writing a checkpoint and saving the model (Ctrl-C again to quit without saving)");
        }

        public void Dispose()
        {
            Console.CancelKeyPress -= OnCancelKeyPress;
            _sigterm?.Dispose();
        }
    }
}
