using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Seqtalk.Training;

namespace Seqtalk.IO;

/// <summary>
/// The checkpoint directory (docs/model-format.md, "Checkpoints"): one <c>step-00000123/</c> directory per
/// checkpoint, each a loadable model directory plus <c>training-state.safetensors</c> and
/// <c>checkpoint.json</c>, and two pointer files, <c>latest</c> and <c>best</c>. A checkpoint is built
/// in a <c>.tmp-…</c> directory, every file written to a temporary name, flushed to disk and renamed,
/// <c>checkpoint.json</c> last; then the directory is renamed into place and the pointers are rewritten
/// the same way. A process killed at any moment leaves the previous checkpoints intact.
/// </summary>
internal static class CheckpointStore
{
    public const string StateFile = "checkpoint.json";
    public const string TrainingStateFile = "training-state.safetensors";
    public const string LatestFile = "latest";
    public const string BestFile = "best";
    public const string Format = "seqtalk-checkpoint";
    public const int FormatVersion = 1;
    /// <summary>Where <c>seqtalk train</c> puts checkpoints inside the model output directory.</summary>
    public const string DefaultSubdirectory = "checkpoints";
    private const string StepPrefix = "step-";
    private const string TempPrefix = ".tmp-";
    private const string State1 = "optimizer.state1";
    private const string State2 = "optimizer.state2";
    private const string BestWeights = "best";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string Name(long step) => StepPrefix + step.ToString("D8", CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="root"/> holds a finished checkpoint.</summary>
    public static bool HasCheckpoints(string root) => Directory.Exists(root) && Steps(root).Count > 0;

    /// <summary>Writes <paramref name="checkpoint"/> under <paramref name="root"/>, points <c>latest</c> (and
    /// <c>best</c> when <paramref name="isBest"/>) at it, and deletes old ones beyond <paramref name="keep"/>.</summary>
    /// <param name="root">The checkpoint root (the directory of the <c>step-…</c> directories).</param>
    /// <param name="checkpoint">What to write.</param>
    /// <param name="isBest">Also point <c>best</c> at it.</param>
    /// <param name="keep">How many of the newest checkpoints to keep.</param>
    /// <param name="afterEachStage">Tests only (no option or variable reaches it): called after every file or
    /// rename that changes the disk, with the stage's name, so a test can copy the directory as a killed process
    /// would leave it there, or throw to stand for a failed write. Null in training.</param>
    /// <returns>The checkpoint directory.</returns>
    public static string Write(string root, Checkpoint checkpoint, bool isBest, int keep, Action<string>? afterEachStage = null)
    {
        string name = Name(checkpoint.State.GlobalStep);
        string final = Path.Combine(root, name);
        var layout = checkpoint.Model.Network.Layout;
        if ((ModelDirectory.FirstNonFinite(layout, checkpoint.Model.Network.Parameters)
            ?? (checkpoint.Best is { } b ? ModelDirectory.FirstNonFinite(layout, b) : null)) is { } bad)
        {
            throw new SeqtalkException(string.Create(CultureInfo.InvariantCulture,
                $"Training diverged: tensor '{bad}' holds a non-finite value at epoch {checkpoint.State.Epoch}, step {checkpoint.State.StepInEpoch}; no checkpoint written. Try a lower --learning-rate or --clip-norm 5."));
        }
        try
        {
            Directory.CreateDirectory(root);
            // The same step always holds the same state (training is deterministic), so a checkpoint that is
            // already there is kept rather than replaced.
            if (!File.Exists(Path.Combine(final, StateFile)))
            {
                string temp = Path.Combine(root, TempPrefix + name + "-" + Guid.NewGuid().ToString("N")[..8]);
                Directory.CreateDirectory(temp);
                try
                {
                    afterEachStage?.Invoke("temporary directory");
                    string weightsSha = ModelDirectory.SaveReturningChecksum(checkpoint.Model, temp);
                    afterEachStage?.Invoke("model files");
                    var tensors = new List<TensorEntry> { new(State1, [checkpoint.OptimizerState1.Length], checkpoint.OptimizerState1) };
                    if (checkpoint.OptimizerState2.Length > 0) tensors.Add(new(State2, [checkpoint.OptimizerState2.Length], checkpoint.OptimizerState2));
                    if (checkpoint.Best is { } best) tensors.Add(new(BestWeights, [best.Length], best));
                    string statePath = Path.Combine(temp, TrainingStateFile);
                    string stateSha = Safetensors.WriteAtomic(statePath, tensors, new Dictionary<string, string> { ["format"] = Format });
                    afterEachStage?.Invoke(TrainingStateFile);
                    var json = BuildJson(checkpoint, weightsSha, stateSha, temp);
                    ModelDirectory.WriteAtomic(Path.Combine(temp, StateFile), w => w.Write(json.ToJsonString(Json)));
                    afterEachStage?.Invoke(StateFile);
                    if (Directory.Exists(final)) Directory.Delete(final, recursive: true);   // an unfinished one
                    Directory.Move(temp, final);
                }
                catch
                {
                    TryDelete(temp);
                    throw;
                }
                afterEachStage?.Invoke("renamed into place");
            }
            ModelDirectory.WriteAtomic(Path.Combine(root, LatestFile), w => w.Write(name + "\n"));
            afterEachStage?.Invoke(LatestFile);
            if (isBest)
            {
                ModelDirectory.WriteAtomic(Path.Combine(root, BestFile), w => w.Write(name + "\n"));
                afterEachStage?.Invoke(BestFile);
            }
            Prune(root, keep, afterEachStage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot write the checkpoint '{final}': {e.Message}", e);
        }
        return final;
    }

    /// <summary>Finds the checkpoint to resume from: <paramref name="path"/> itself when it is a checkpoint
    /// directory, else the one named by <c>latest</c> in <paramref name="path"/> or in its <c>checkpoints/</c>
    /// (the newest finished one when the pointer is missing or stale).</summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        if (!Directory.Exists(path)) throw new SeqtalkException($"Cannot resume: '{path}' does not exist.");
        string root = Directory.Exists(Path.Combine(path, DefaultSubdirectory)) ? Path.Combine(path, DefaultSubdirectory) : path;
        string pointer = Path.Combine(root, LatestFile);
        if (File.Exists(pointer))
        {
            string name = File.ReadAllText(pointer).Trim();
            if (name.StartsWith(StepPrefix, StringComparison.Ordinal) && name.IndexOfAny(['/', '\\']) < 0
                && File.Exists(Path.Combine(root, name, StateFile)))
            {
                return Path.Combine(root, name);
            }
        }
        var steps = Steps(root);
        if (steps.Count == 0)
            throw new SeqtalkException($"Cannot resume: '{path}' holds no checkpoint (expected {StateFile} in it, or a {DefaultSubdirectory}/ directory written by 'seqtalk train').");
        return steps[^1].Path;
    }

    /// <summary>Reads only <c>checkpoint.json</c>: the run's options, loop state, data fingerprint and the
    /// checksums of the tensor files.</summary>
    public static (TrainingOptions Options, TrainerState State, DataFingerprint Data, string WeightsSha, string StateSha) ReadJson(string directory)
    {
        string statePath = Path.Combine(directory, StateFile);
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(statePath, new UTF8Encoding(false, true)))?.AsObject()
                ?? throw new SeqtalkException($"{statePath}: the file is empty JSON (null).");
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or InvalidOperationException)
        {
            throw new SeqtalkException($"{statePath}: not valid JSON ({e.Message.Split('\n')[0].Trim()}).", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"{statePath}: cannot read it: {e.Message}", e);
        }
        if (root["format"]?.GetValueKind() != JsonValueKind.String || (string?)root["format"] != Format)
            throw new SeqtalkException($"{statePath}: \"format\" must be '{Format}'.");
        if (root["formatVersion"]?.GetValueKind() != JsonValueKind.Number || (int)root["formatVersion"]! is not (>= 1 and <= FormatVersion))
            throw new SeqtalkException($"{statePath}: \"formatVersion\" must be between 1 and {FormatVersion}; a newer Seqtalk wrote it, or it is damaged.");
        try
        {
            var state = root["trainer"].Deserialize<TrainerState>(Json) ?? throw new JsonException("\"trainer\" is null");
            var options = root["options"].Deserialize<TrainingOptions>(Json) ?? throw new JsonException("\"options\" is null");
            options = options with { CheckpointDirectory = ModelDirectory.ResolveCheckpointDirectory(options.CheckpointDirectory, directory) };
            var data = root["data"].Deserialize<DataFingerprint>(Json) ?? throw new JsonException("\"data\" is null");
            string weightsSha = (string?)root["sha256"]?[ModelDirectory.WeightsFile] ?? throw new JsonException($"\"sha256.{ModelDirectory.WeightsFile}\" is missing");
            string stateSha = (string?)root["sha256"]?[TrainingStateFile] ?? throw new JsonException($"\"sha256.{TrainingStateFile}\" is missing");
            return (options, state, data, weightsSha, stateSha);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException or ArgumentException)
        {
            throw new SeqtalkException($"{statePath}: {e.Message.Split('\n')[0].Trim()}", e);
        }
    }

    /// <summary>Reads and checks a checkpoint directory: the model files (checksums included), the training
    /// state and <c>checkpoint.json</c>, whose recorded checksums must match the files.</summary>
    public static Checkpoint Read(string directory)
    {
        var (options, state, data, weightsSha, stateSha) = ReadJson(directory);
        var model = ModelDirectory.Load(directory);
        string weightsPath = Path.Combine(directory, ModelDirectory.WeightsFile);
        Check(weightsPath, Safetensors.Read(weightsPath), weightsSha);
        string tensorsPath = Path.Combine(directory, TrainingStateFile);
        var tensors = Safetensors.Read(tensorsPath);
        Check(tensorsPath, tensors, stateSha);

        int n = model.ParameterCount;
        float[] state1 = Tensor(tensors, tensorsPath, State1, n, required: true)!;
        float[] state2 = Tensor(tensors, tensorsPath, State2, n, required: options.Optimizer == OptimizerKind.Adam) ?? [];
        float[]? best = Tensor(tensors, tensorsPath, BestWeights, n, required: state.BestEpoch > 0);
        if (best is not null && ModelDirectory.FirstNonFinite(model.Network.Layout, best) is { } bad)
            throw new SeqtalkException($"{tensorsPath}: the best weights hold a non-finite value in '{bad}'.");
        return new Checkpoint(model, state1, state2, best, state, options, data) { Directory = directory };
    }

    /// <summary>The root (the directory of the <c>step-…</c> directories) a checkpoint directory sits in.</summary>
    public static string RootOf(string checkpointDirectory) =>
        Path.GetDirectoryName(Path.GetFullPath(checkpointDirectory).TrimEnd(Path.DirectorySeparatorChar)) ?? checkpointDirectory;

    private static void Check(string path, SafetensorsContent content, string expected)
    {
        if (!content.Metadata.TryGetValue(Safetensors.ChecksumKey, out var actual) || actual != expected)
            throw new SeqtalkException($"{path}: its checksum does not match the one {StateFile} records; the checkpoint mixes files of different steps.");
    }

    private static float[]? Tensor(SafetensorsContent content, string path, string name, int length, bool required)
    {
        if (!content.Tensors.TryGetValue(name, out var tensor))
            return required ? throw new SeqtalkException($"{path}: tensor '{name}' is missing.") : null;
        if (tensor.Data.Length != length)
            throw new SeqtalkException($"{path}: tensor '{name}' has {tensor.Data.Length} values but the model has {length} weights.");
        return tensor.Data;
    }

    private static JsonObject BuildJson(Checkpoint checkpoint, string weightsSha, string stateSha, string directory) => new()
    {
        ["format"] = Format,
        ["formatVersion"] = FormatVersion,
        ["step"] = checkpoint.State.GlobalStep,
        ["epoch"] = checkpoint.State.Epoch,
        ["stepInEpoch"] = checkpoint.State.StepInEpoch,
        ["createdUtc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        ["sha256"] = new JsonObject { [ModelDirectory.WeightsFile] = weightsSha, [TrainingStateFile] = stateSha },
        ["data"] = JsonSerializer.SerializeToNode(checkpoint.Data, Json),
        // The root is the checkpoint directory's parent, so this is "..": right wherever the directory is moved.
        ["options"] = JsonSerializer.SerializeToNode(
            checkpoint.Options with { CheckpointDirectory = ModelDirectory.PortableCheckpointDirectory(checkpoint.Options.CheckpointDirectory, directory) }, Json),
        ["trainer"] = JsonSerializer.SerializeToNode(checkpoint.State, Json),
    };

    /// <summary>Finished checkpoints (those with <c>checkpoint.json</c>), oldest first.</summary>
    private static List<(long Step, string Path)> Steps(string root)
    {
        var steps = new List<(long, string)>();
        foreach (var dir in Directory.EnumerateDirectories(root, StepPrefix + "*"))
        {
            string name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(StepPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step)
                && File.Exists(Path.Combine(dir, StateFile)))
            {
                steps.Add((step, dir));
            }
        }
        steps.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return steps;
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints, never the ones <c>latest</c>
    /// and <c>best</c> name, and the leftovers of writes that a killed process did not finish.</summary>
    private static void Prune(string root, int keep, Action<string>? afterEachStage)
    {
        var pinned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pointer in new[] { LatestFile, BestFile })
        {
            string path = Path.Combine(root, pointer);
            if (File.Exists(path)) pinned.Add(File.ReadAllText(path).Trim());
        }
        var steps = Steps(root);
        for (int i = 0; i < steps.Count - keep; i++)
        {
            string name = Path.GetFileName(steps[i].Path);
            if (pinned.Contains(name)) continue;
            // Rename first, so a crash halfway through the delete leaves no half checkpoint under a step name.
            string doomed = Path.Combine(root, TempPrefix + "old-" + name);
            Directory.Move(steps[i].Path, doomed);
            afterEachStage?.Invoke("pruning " + name);
            TryDelete(doomed);
        }
        foreach (var dir in Directory.EnumerateDirectories(root, TempPrefix + "*")) TryDelete(dir);
        afterEachStage?.Invoke("pruned");
    }

    private static void TryDelete(string directory)
    {
        try { Directory.Delete(directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
