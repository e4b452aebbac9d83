using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Seqtalk.Data;
using Seqtalk.Nn;
using Seqtalk.Reporting;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.IO;

/// <summary>
/// The model directory: <c>config.json</c> (format version, architecture, tokenizer settings, decoding
/// defaults, training metadata), <c>weights.safetensors</c> and one vocabulary file per side.
/// Every file is written to a temporary name, flushed and renamed, so a crash never leaves half a file
/// under the real name. Loading checks everything and names the file and the problem.
/// </summary>
internal static class ModelDirectory
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "weights.safetensors";
    public const string SourceVocabularyFile = "source.vocab.txt";
    public const string TargetVocabularyFile = "target.vocab.txt";
    public const string SourceMergesFile = "source.merges.txt";
    public const string TargetMergesFile = "target.merges.txt";
    public const string MetricsFile = "metrics.csv";
    public const string LearningCurvesFile = "learning-curves.svg";
    public const string Format = "seqtalk-model";
    public const int FormatVersion = 1;

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    public static void Save(ChatModel model, string directory) => SaveReturningChecksum(model, directory);

    /// <summary><see cref="Save"/>, returning the SHA-256 written into <c>weights.safetensors</c>.</summary>
    internal static string SaveReturningChecksum(ChatModel model, string directory)
    {
        if (FirstNonFinite(model.Network.Layout, model.Network.Parameters) is { } bad)
            throw new SeqtalkException($"Not saving the model to '{directory}': tensor '{bad}' holds a non-finite value (training diverged). Try a lower --learning-rate or --clip-norm 5.");
        try
        {
            Directory.CreateDirectory(directory);
            WriteAtomic(Path.Combine(directory, SourceVocabularyFile), w => model.SourceTokenizer.Vocabulary.Save(w));
            WriteAtomic(Path.Combine(directory, TargetVocabularyFile), w => model.TargetTokenizer.Vocabulary.Save(w));
            if (model.SourceTokenizer is BpeTokenizer sourceBpe) WriteAtomic(Path.Combine(directory, SourceMergesFile), sourceBpe.SaveMerges);
            if (model.TargetTokenizer is BpeTokenizer targetBpe) WriteAtomic(Path.Combine(directory, TargetMergesFile), targetBpe.SaveMerges);
            var tensors = Safetensors.FromLayout(model.Network.Layout, model.Network.Parameters);
            string checksum = Safetensors.WriteAtomic(Path.Combine(directory, WeightsFile), tensors,
                new Dictionary<string, string> { ["format"] = Format, ["seqtalk.format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture) });
            if (model.Training is { Epochs.Count: > 0 } summary)
            {
                // For people and plotting tools; Load reads the history from config.json, not from these.
                WriteAtomic(Path.Combine(directory, MetricsFile), w => LearningCurves.WriteCsv(w, summary.Epochs));
                WriteAtomic(Path.Combine(directory, LearningCurvesFile), w => w.Write(LearningCurves.RenderSvg(summary.Epochs, summary.BestEpoch)));
            }
            // config.json last: a directory with a config has all its files.
            WriteAtomic(Path.Combine(directory, ConfigFile), w => w.Write(BuildConfig(model, directory).ToJsonString(s_json)));
            return checksum;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot write the model to '{directory}': {e.Message}", e);
        }
    }

    public static ChatModel Load(string directory)
    {
        if (File.Exists(directory))
            throw new SeqtalkException($"'{directory}' is a file; --model expects the model directory that 'seqtalk train --out' wrote.");
        if (!Directory.Exists(directory))
            throw new SeqtalkException($"Model directory '{directory}' does not exist.");
        string configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath))
            throw new SeqtalkException($"'{directory}' is not a Seqtalk model directory: {ConfigFile} is missing.");

        JsonNode root;
        try
        {
            var info = new FileInfo(configPath);
            if (info.Length > 1 << 20) throw new SeqtalkException($"{configPath}: the file is {info.Length} bytes; a model config is a few kilobytes.");
            root = JsonNode.Parse(File.ReadAllText(configPath, new UTF8Encoding(false, true)), documentOptions: s_configParse)
                ?? throw new SeqtalkException($"{configPath}: the file is empty JSON (null).");
            ReadEveryString(root);
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or InvalidOperationException)
        {
            throw new SeqtalkException($"{configPath}: not valid JSON ({FirstLine(e.Message)}).", e);
        }

        var c = new ConfigReader(configPath, root);
        string format = c.String("format");
        if (format != Format) throw new SeqtalkException($"{configPath}: \"format\" is '{format}', expected '{Format}'.");
        int version = c.Int("formatVersion");
        if (version > FormatVersion)
            throw new SeqtalkException($"{configPath}: model format version {version} is newer than this Seqtalk understands ({FormatVersion}); upgrade Seqtalk.");
        if (version < 1) throw new SeqtalkException($"{configPath}: \"formatVersion\" {version} is not valid.");

        var config = new ModelConfig
        {
            SourceVocabSize = c.Int("architecture.sourceVocabSize"),
            TargetVocabSize = c.Int("architecture.targetVocabSize"),
            EmbeddingDim = c.Int("architecture.embeddingDim"),
            HiddenDim = c.Int("architecture.hiddenDim"),
            Layers = c.Int("architecture.layers"),
            // Added with attention; absent in older models, which are the tutorial architecture.
            Attention = c.Node("architecture.attention") is null ? AttentionKind.None : c.Enum<AttentionKind>("architecture.attention"),
            InputFeeding = c.OptionalBool("architecture.inputFeeding") ?? false,
            BidirectionalEncoder = c.OptionalBool("architecture.bidirectionalEncoder") ?? false,
            TiedEmbeddings = c.OptionalBool("architecture.tiedEmbeddings") ?? false,   // absent in models saved before it existed
            Bridge = c.OptionalBool("architecture.bridge") ?? false,
        };
        try { config.Validate(); }
        catch (ArgumentOutOfRangeException e) { throw new SeqtalkException($"{configPath}: architecture.{e.ParamName} is out of range: {FirstLine(e.Message)}", e); }

        var kind = c.Enum<TokenizerKind>("tokenizer.kind");
        var normalizer = new TextNormalizerOptions { Mode = c.Enum<NormalizationMode>("tokenizer.normalization"), Lowercase = c.Bool("tokenizer.lowercase") };
        var source = LoadTokenizer(Path.Combine(directory, SourceVocabularyFile), Path.Combine(directory, SourceMergesFile), kind, normalizer, config.SourceVocabSize);
        var target = LoadTokenizer(Path.Combine(directory, TargetVocabularyFile), Path.Combine(directory, TargetMergesFile), kind, Trainer.AnswerNormalizer(normalizer), config.TargetVocabSize);

        int maxReply = c.Int("decoding.maxReplyLength");
        if (maxReply is < 1 or > 10_000) throw new SeqtalkException($"{configPath}: decoding.maxReplyLength {maxReply} is out of range (1..10000).");
        int maxSequence = c.OptionalInt("decoding.maxSequenceLength") ?? TrainingOptions.DefaultMaxSequenceLength;
        if (maxSequence is < 1 or > 10_000) throw new SeqtalkException($"{configPath}: decoding.maxSequenceLength {maxSequence} is out of range (1..10000).");

        string weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weightsPath)) throw new SeqtalkException($"{weightsPath} is missing; the model directory is incomplete.");
        ParameterLayout layout;
        try { layout = ParameterLayout.ForSeq2Seq(config); }
        catch (OverflowException e) { throw new ModelFormatException($"{configPath}: the architecture is too large (over 2^31 weights).", e); }
        // Check the size before reading: a config can describe far more weights than the file holds, and
        // the flat buffer must not be allocated for a model that cannot be there.
        long needed = (long)layout.TotalLength * sizeof(float), have = new FileInfo(weightsPath).Length;
        if (have < needed)
            throw new ModelFormatException($"{weightsPath}: the file is {have:N0} bytes but {ConfigFile} describes {layout.TotalLength:N0} weights ({needed:N0} bytes).");
        var content = Safetensors.Read(weightsPath);
        var flat = Safetensors.ToFlat(content, layout, weightsPath);
        for (int i = 0; i < flat.Length; i++)
        {
            if (!float.IsFinite(flat[i]))
            {
                var slot = layout.Slots.Last(s => s.Offset <= i);
                throw new SeqtalkException($"{weightsPath}: tensor '{slot.Name}' holds a non-finite value ({flat[i]}) at element {i - slot.Offset}.");
            }
        }
        var network = Seq2SeqModel.FromParameters(config, flat);
        var options = new TrainingOptions { MaxSequenceLength = maxSequence };
        return new ChatModel(network, source, target, maxReply, ReadTraining(c), ReadSplit(c), options);
    }

    private static readonly JsonDocumentOptions s_configParse = new() { AllowDuplicateProperties = false };

    /// <summary>Reads every name and string value once. JsonNode decodes them lazily, so a \u escape that is a
    /// lone surrogate would otherwise throw InvalidOperationException later, from wherever the config is read.</summary>
    private static void ReadEveryString(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, child) in obj) ReadEveryString(child);
                break;
            case JsonArray array:
                foreach (var child in array) ReadEveryString(child);
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                value.GetValue<string>();
                break;
        }
    }

    private static TrainingSummary? ReadTraining(ConfigReader c)
    {
        if (c.OptionalInt("training.bestEpoch") is not { } bestEpoch) return null;
        var epochs = new List<EpochMetrics>();
        if (c.Node("training.epochs") is JsonArray array)
        {
            for (int i = 0; i < array.Count; i++)
            {
                string k = $"training.epochs.{i}";
                double? validationLoss = c.OptionalDouble(k + ".validationLoss");
                epochs.Add(new EpochMetrics(
                    c.Int(k + ".epoch"), c.OptionalDouble(k + ".trainLoss") ?? double.NaN, c.OptionalDouble(k + ".trainAccuracy") ?? double.NaN,
                    validationLoss, validationLoss is { } v ? Math.Exp(v) : null, c.OptionalDouble(k + ".validationAccuracy"),
                    c.OptionalSeconds(k + ".seconds"), c.OptionalDouble(k + ".tokensPerSecond") ?? 0,
                    c.OptionalBool(k + ".isBest") ?? false, c.OptionalDouble(k + ".learningRate") ?? double.NaN));
            }
        }
        return new TrainingSummary
        {
            Epochs = epochs,
            BestEpoch = bestEpoch,
            Cancelled = c.OptionalBool("training.cancelled") ?? false,
            StoppedEarly = c.OptionalBool("training.stoppedEarly") ?? false,
            TrainingPairs = c.OptionalInt("training.trainingPairs") ?? 0,
            ValidationPairs = c.OptionalInt("training.validationPairs") ?? 0,
        };
    }

    private static SplitRecord? ReadSplit(ConfigReader c)
    {
        if (c.OptionalInt("training.split.rows") is not { } rows) return null;
        return new SplitRecord(rows, c.Double("training.split.validationSize"), c.Enum<SplitMode>("training.split.mode"), c.Int("training.split.seed"));
    }

    private static Tokenizer LoadTokenizer(string path, string mergesPath, TokenizerKind kind, TextNormalizerOptions normalizer, int expectedCount)
    {
        if (!File.Exists(path)) throw new SeqtalkException($"{path} is missing; the model directory is incomplete.");
        Vocabulary vocabulary;
        using (var reader = new StreamReader(path, new UTF8Encoding(false, true)))
        {
            try { vocabulary = Vocabulary.Load(reader); }
            catch (DecoderFallbackException e) { throw new SeqtalkException($"{path}: invalid UTF-8.", e); }
            catch (SeqtalkException e) { throw new SeqtalkException($"{path}: {e.Message}", e); }
        }
        if (vocabulary.Count != expectedCount)
            throw new SeqtalkException($"{path}: holds {vocabulary.Count} tokens but {ConfigFile} says the vocabulary has {expectedCount}.");
        return kind switch
        {
            TokenizerKind.Word => WordTokenizer.Create(vocabulary, normalizer),
            TokenizerKind.Character => CharTokenizer.Create(vocabulary, normalizer),
            TokenizerKind.Bpe => LoadBpe(vocabulary, path, mergesPath, normalizer),
        };
    }

    private static BpeTokenizer LoadBpe(Vocabulary vocabulary, string vocabularyPath, string mergesPath, TextNormalizerOptions normalizer)
    {
        if (!File.Exists(mergesPath)) throw new SeqtalkException($"{mergesPath} is missing; a model with BPE tokens needs it beside {Path.GetFileName(vocabularyPath)}.");
        using var reader = new StreamReader(mergesPath, new UTF8Encoding(false, true));
        try { return BpeTokenizer.Create(vocabulary, reader, normalizer, $"{vocabularyPath}: BPE vocabulary", $"{mergesPath}: merges"); }
        catch (DecoderFallbackException e) { throw new SeqtalkException($"{mergesPath}: invalid UTF-8.", e); }
    }

    private static JsonObject BuildConfig(ChatModel model, string directory)
    {
        var config = model.Config;
        var options = model.Options is { } o ? o with { CheckpointDirectory = PortableCheckpointDirectory(o.CheckpointDirectory, directory) } : null;
        var root = new JsonObject
        {
            ["format"] = Format,
            ["formatVersion"] = FormatVersion,
            ["seqtalkVersion"] = typeof(ModelDirectory).Assembly.GetName().Version?.ToString(3),
            ["architecture"] = new JsonObject
            {
                ["type"] = "lstm-seq2seq",
                ["sourceVocabSize"] = config.SourceVocabSize,
                ["targetVocabSize"] = config.TargetVocabSize,
                ["embeddingDim"] = config.EmbeddingDim,
                ["hiddenDim"] = config.HiddenDim,
                ["layers"] = config.Layers,
                ["attention"] = config.Attention.ToString(),
                ["inputFeeding"] = config.InputFeeding,
                ["bidirectionalEncoder"] = config.BidirectionalEncoder,
                ["tiedEmbeddings"] = config.TiedEmbeddings,
                ["bridge"] = config.Bridge,
            },
            ["tokenizer"] = new JsonObject
            {
                ["kind"] = model.SourceTokenizer.Kind.ToString(),
                ["normalization"] = model.SourceTokenizer.Normalizer.Options.Mode.ToString(),
                ["lowercase"] = model.SourceTokenizer.Normalizer.Options.Lowercase,   // questions only
                ["sourceVocabulary"] = SourceVocabularyFile,
                ["targetVocabulary"] = TargetVocabularyFile,
            },
            ["decoding"] = new JsonObject
            {
                ["maxReplyLength"] = model.DefaultMaxReplyLength,
                ["maxSequenceLength"] = options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength,
            },
        };
        if (model.SourceTokenizer.Kind == TokenizerKind.Bpe)
        {
            var tokenizer = root["tokenizer"]!.AsObject();
            tokenizer["sourceMerges"] = SourceMergesFile;
            tokenizer["targetMerges"] = TargetMergesFile;
        }
        var training = new JsonObject();
        if (model.Split is { } split)
        {
            training["split"] = new JsonObject
            {
                ["rows"] = split.Rows,
                ["validationSize"] = split.ValidationSize,
                ["mode"] = split.Mode.ToString(),
                ["seed"] = split.Seed,
            };
        }
        if (options is not null && model.Training is not null)
        {
            training["options"] = JsonSerializer.SerializeToNode(options, s_json);
        }
        if (model.Training is { } summary)
        {
            training["bestEpoch"] = summary.BestEpoch;
            training["cancelled"] = summary.Cancelled;
            training["stoppedEarly"] = summary.StoppedEarly;
            training["trainingPairs"] = summary.TrainingPairs;
            training["validationPairs"] = summary.ValidationPairs;
            var epochs = new JsonArray();
            foreach (var e in summary.Epochs)
            {
                epochs.Add(new JsonObject
                {
                    ["epoch"] = e.Epoch,
                    ["trainLoss"] = Finite(e.TrainLoss),
                    ["trainAccuracy"] = Finite(e.TrainAccuracy),
                    ["validationLoss"] = e.ValidationLoss is { } v ? Finite(v) : null,
                    ["validationAccuracy"] = e.ValidationAccuracy is { } a ? Finite(a) : null,
                    ["seconds"] = Math.Round(e.Duration.TotalSeconds, 3),
                    ["tokensPerSecond"] = Math.Round(e.TokensPerSecond),
                    ["isBest"] = e.IsBest,
                    ["learningRate"] = double.IsFinite(e.LearningRate) ? JsonValue.Create(e.LearningRate) : null,
                });
            }
            training["epochs"] = epochs;
        }
        root["training"] = training;
        return root;
    }

    /// <summary>How a file in <paramref name="directory"/> records <see cref="TrainingOptions.CheckpointDirectory"/>:
    /// relative to <paramref name="directory"/> when it is that directory, inside it (a model's <c>checkpoints</c>) or
    /// its parent (a checkpoint's own root, <c>..</c>), so a model directory moved or copied whole stays right and no
    /// machine-local path is shared; otherwise the full path. Read back with <see cref="ResolveCheckpointDirectory"/>.</summary>
    internal static string? PortableCheckpointDirectory(string? checkpointDirectory, string directory)
    {
        if (checkpointDirectory is null) return null;
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpointDirectory));
        string here = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (string.Equals(full, Path.GetDirectoryName(here), StringComparison.Ordinal)) return "..";
        string relative = Path.GetRelativePath(here, full);
        bool inside = !Path.IsPathRooted(relative) && relative != ".." && !relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        return inside ? relative : full;
    }

    /// <summary>The full path of a <see cref="TrainingOptions.CheckpointDirectory"/> recorded by a file in
    /// <paramref name="directory"/>: a relative one is relative to that directory; a full one (older files) is kept.</summary>
    internal static string? ResolveCheckpointDirectory(string? recorded, string directory) =>
        recorded is null || Path.IsPathRooted(recorded) ? recorded : Path.GetFullPath(Path.Combine(directory, recorded));

    private static JsonValue? Finite(double x) => double.IsFinite(x) ? JsonValue.Create(Math.Round(x, 6)) : null;

    /// <summary>The name of the first tensor holding NaN or ±∞, or null when every value is finite.</summary>
    internal static string? FirstNonFinite(Nn.ParameterLayout layout, ReadOnlySpan<float> parameters)
    {
        foreach (var slot in layout.Slots)
        {
            var values = parameters.Slice(slot.Offset, slot.Length);
            // x − x is 0 for every finite x and NaN for NaN and ±∞, so one sum finds them all.
            float sum = 0;
            for (int i = 0; i < values.Length; i++) sum += values[i] - values[i];
            if (!float.IsFinite(sum)) return slot.Name;
        }
        return null;
    }

    /// <summary>Writes a text file to a temporary name, flushes it to disk and renames it over <paramref name="path"/>.</summary>
    internal static void WriteAtomic(string path, Action<TextWriter> write)
    {
        string temp = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                using (var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true))
                {
                    writer.NewLine = "\n";
                    write(writer);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    /// <summary>Reads dotted paths from config.json with errors that name the file and the key.</summary>
    private sealed class ConfigReader(string path, JsonNode root)
    {
        private JsonNode? Find(string key)
        {
            JsonNode? node = root;
            foreach (var part in key.Split('.'))
            {
                node = node switch
                {
                    JsonObject obj => obj.TryGetPropertyValue(part, out var child) ? child : null,
                    JsonArray arr => int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < arr.Count ? arr[i] : null,
                    _ => null,
                };
                if (node is null) return null;
            }
            return node;
        }

        public JsonNode? Node(string key) => Find(key);

        private JsonNode Get(string key) => Find(key) ?? throw new SeqtalkException($"{path}: \"{key}\" is missing.");

        private T Value<T>(string key, string what)
        {
            try { return Get(key).GetValue<T>(); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw new SeqtalkException($"{path}: \"{key}\" must be {what}.", e);
            }
        }

        public string String(string key) => Value<string>(key, "a string");
        public int Int(string key) => Value<int>(key, "a whole number");
        public double Double(string key) => Value<double>(key, "a number");
        public bool Bool(string key) => Value<bool>(key, "true or false");
        public int? OptionalInt(string key) => Find(key) is null ? null : Int(key);
        public double? OptionalDouble(string key) => Find(key) is null ? null : Double(key);
        public bool? OptionalBool(string key) => Find(key) is null ? null : Bool(key);

        /// <summary>A duration in seconds (0 when absent); TimeSpan.FromSeconds would overflow on values like 1e300.</summary>
        public TimeSpan OptionalSeconds(string key) => OptionalDouble(key) switch
        {
            null => TimeSpan.Zero,
            >= 0 and <= 1e9 and var seconds => TimeSpan.FromSeconds(seconds),
            var seconds => throw new SeqtalkException($"{path}: \"{key}\" {seconds} is out of range (0..1e9 seconds)."),
        };

        public TEnum Enum<TEnum>(string key) where TEnum : struct, System.Enum =>
            System.Enum.TryParse<TEnum>(String(key), ignoreCase: true, out var value) && System.Enum.IsDefined(value)
                ? value
                : throw new SeqtalkException($"{path}: \"{key}\" must be one of {string.Join(", ", System.Enum.GetNames<TEnum>())}.");
    }
}
