using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Seqtalk.Cli.Tests;

/// <summary>Nothing lost: SIGKILL at random moments (many inside checkpoint writes) always leaves a latest
/// checkpoint that loads and whose checksums verify, and resuming after every kill ends with the very
/// weights of an uninterrupted run. SIGTERM writes a checkpoint and exits 143.</summary>
public sealed class CheckpointTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>60 training pairs in batches of 4: 15 steps per epoch.</summary>
    private static string[] Training(int epochs, int checkpointEvery) =>
    [
        "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--embedding-dim", "8", "--hidden-dim", "16",
        "--batch-size", "4", "--optimizer", "adam", "--learning-rate", "0.01", "--validation-size", "4", "--threads", "1", "--seed", "3",
        "--checkpoint-every", checkpointEvery.ToString(System.Globalization.CultureInfo.InvariantCulture), "--keep-checkpoints", "2",
    ];

    /// <summary>6 epochs of 15 steps with a checkpoint after every step: more steps than 20 kills get through.</summary>
    private static readonly string[] s_training = Training(6, 1);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void KilledAtTwentyRandomMoments_TheLatestCheckpointAlwaysLoads_AndResumingEndsWithTheUninterruptedWeights()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SEQTALK_KILL_SEED"), out int s) ? s : 20261127;
        output.WriteLine($"kill test seed {seed} (set SEQTALK_KILL_SEED to replay)");
        var random = new Random(seed);
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));

        // Checkpoints do not change the run, so the reference writes few.
        var total = Stopwatch.StartNew();
        var straight = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "straight", .. Training(6, 1000)], timeout: TimeSpan.FromMinutes(2));
        Assert.True(straight.ExitCode == 0, straight.ToString());

        string checkpoints = _dir.File(Path.Combine("m", "checkpoints"));
        string latest = Path.Combine(checkpoints, "latest");
        int midWrite = 0, resumedToEnd = 0;
        for (int kill = 1; kill <= 20; kill++)
        {
            string? before = File.Exists(latest) ? File.ReadAllText(latest) : null;
            string[] args = before is null
                ? ["train", "--data", "pairs.csv", "--out", "m", .. s_training]
                : ["train", "--data", "pairs.csv", "--resume", "m"];
            using var process = Start(_dir.Path, args, slowCheckpoints: true);
            // Wait for this run's first new checkpoint, then kill a random moment later: a step takes a few
            // milliseconds and its checkpoint about 40 (4 pauses of 10 ms), so most kills land in a write.
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && (File.Exists(latest) ? File.ReadAllText(latest) : null) == before && clock.Elapsed < TimeSpan.FromSeconds(30))
                Thread.Sleep(5);
            Thread.Sleep(random.Next(0, 100));
            Assert.False(process.HasExited, $"kill {kill}: the run ended before the kill (exit {(process.HasExited ? process.ExitCode : 0)}); give it more steps");
            process.Kill();   // SIGKILL
            process.WaitForExit();

            if (Directory.EnumerateDirectories(checkpoints, ".tmp-*").Any()) midWrite++;
            string current = Path.Combine(checkpoints, File.ReadAllText(latest).Trim());
            VerifyCheckpoint(current);
            foreach (var step in Directory.GetDirectories(checkpoints, "step-*"))
                Assert.True(File.Exists(Path.Combine(step, "checkpoint.json")), $"kill {kill}: {step} is a half-written checkpoint under a step name");
            output.WriteLine($"kill {kill}: latest {Path.GetFileName(current)}");

            if (kill % 7 == 0)
            {
                // A copy resumed to the end of its epoch: --resume continues and finishes cleanly.
                string copy = _dir.File($"copy{kill}");
                CopyDirectory(_dir.File("m"), copy);
                int epoch = JsonDocument.Parse(File.ReadAllText(Path.Combine(current, "checkpoint.json"))).RootElement.GetProperty("epoch").GetInt32();
                var finish = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", $"copy{kill}", "--epochs", epoch.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout: TimeSpan.FromMinutes(1));
                Assert.True(finish.ExitCode == 0, finish.ToString());
                Assert.StartsWith($"saved copy{kill} ", finish.StdoutLines[^1], StringComparison.Ordinal);
                ChatModel.Load(copy);
                resumedToEnd++;
            }
        }
        output.WriteLine($"{midWrite} of 20 kills left an unfinished checkpoint write behind; {total.Elapsed.TotalSeconds:F1} s so far");

        var end = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", "m", "--checkpoint-every", "1000"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(end.ExitCode == 0, end.ToString());
        Assert.Empty(Directory.EnumerateDirectories(checkpoints, ".tmp-*"));
        Assert.True(File.ReadAllBytes(_dir.File(Path.Combine("m", "weights.safetensors"))).AsSpan()
            .SequenceEqual(File.ReadAllBytes(_dir.File(Path.Combine("straight", "weights.safetensors")))),
            "after 20 kills and resumes the weights differ from the uninterrupted run's");
        Assert.Equal(
            EpochLines(straight.Stdout)[^1],
            EpochLines(end.Stdout)[^1]);
        Assert.Equal(2, resumedToEnd);
        output.WriteLine($"{total.Elapsed.TotalSeconds:F1} s in all");
    }

    [Fact]
    public void Sigterm_WritesACheckpointAndExits143_AndResumeMatchesAnUninterruptedRun()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));
        string[] training = Training(4, 5);
        var straight = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "straight", .. training]);
        Assert.True(straight.ExitCode == 0, straight.ToString());

        // Slow checkpoint writes keep a fast machine from finishing the run before the signal lands.
        var stopped = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "m", .. training], timeout: TimeSpan.FromMinutes(1),
            onStdoutLine: (process, line) =>
            {
                if (line.StartsWith("epoch 2/", StringComparison.Ordinal)) Signal(process.Id, "TERM");
            },
            environment: new Dictionary<string, string> { ["SEQTALK_TEST_CHECKPOINT_DELAY_MS"] = "200" });
        Assert.True(stopped.ExitCode == 143, stopped.ToString());
        Assert.Contains("writing a checkpoint", stopped.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"^checkpoint m/checkpoints/step-\d{8} written; continue with: seqtalk train --resume m --data pairs.csv$", stopped.StdoutLines[^1]);
        string written = stopped.StdoutLines[^1].Split(' ')[1];
        Assert.Equal(Path.GetFileName(written), File.ReadAllText(_dir.File("m/checkpoints/latest")).Trim());
        VerifyCheckpoint(_dir.File(written));

        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp", SearchOption.AllDirectories));   // no token file left behind

        var resumed = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", "m"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains(resumed.StdoutLines, l => l.StartsWith("resuming from m/checkpoints/step-", StringComparison.Ordinal));
        Assert.True(File.ReadAllBytes(_dir.File("m/weights.safetensors")).AsSpan().SequenceEqual(File.ReadAllBytes(_dir.File("straight/weights.safetensors"))),
            "the resumed weights differ from the uninterrupted run's");
    }

    [Fact]
    public void Resume_RefusesChangedOptionsOrData_WithOneLine()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));
        var first = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "m", .. Training(1, 100)]);
        Assert.True(first.ExitCode == 0, first.ToString());

        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--resume", "m", "--learning-rate", "0.1"),
            2, "--learning-rate 0.1 differs from the checkpoint's 0.01", "--epochs");
        TinyModel.WriteCsv(_dir.File("other.csv"), TinyModel.Pairs(63));
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "train", "--data", "other.csv", "--resume", "m", "--epochs", "2"),
            1, "data differs", "64 pairs", "given 63 pairs");
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--resume", "nowhere"), 1, "nowhere", "does not exist");
        CliAssert.OneLineError(CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--out", "x", "--checkpoint-every", "5 minutes"), 2, "--checkpoint-every", "10m");
        var timed = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "timed", .. Training(1, 100)[..^4], "--checkpoint-every", "10m"]);
        Assert.True(timed.ExitCode == 0, timed.ToString());
        Assert.Equal("step-00000015", File.ReadAllText(_dir.File("timed/checkpoints/latest")).Trim());

        // Extending a finished run is allowed; a new run into its directory replaces the finished run's checkpoints.
        var more = CliRunner.Run(_dir.Path, "train", "--data", "pairs.csv", "--resume", "m", "--epochs", "2");
        Assert.True(more.ExitCode == 0, more.ToString());
        Assert.Equal(["epoch 2/2"], EpochLines(more.Stdout).Select(l => l.Split("  ")[0]));
        var again = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "m", .. Training(1, 100)]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(["step-00000015"], Directory.GetDirectories(_dir.File("m/checkpoints")).Select(Path.GetFileName));
    }

    [Fact]
    public void Diverging_StopsWithOneLineAndAHint_AndLeavesNoNonFiniteWeightsOnDisk()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));
        // SGD at 3e38 (near float.MaxValue): the steps soon have non-finite losses and are skipped.
        string[] args = ["train", "--data", "pairs.csv", "--out", "m", .. Training(2, 1)];
        args[Array.IndexOf(args, "--optimizer") + 1] = "sgd";
        args[Array.IndexOf(args, "--learning-rate") + 1] = "3e38";
        var r = CliRunner.Run(_dir.Path, args);
        CliAssert.OneLineError(r, 1, "diverged", "5 steps in a row", "--learning-rate", "--clip-norm");
        Assert.False(File.Exists(_dir.File("m/config.json")));
        foreach (var step in Directory.GetDirectories(_dir.File("m/checkpoints"), "step-*")) VerifyCheckpoint(step);
    }

    /// <summary>The checkpoint loads as a model, and each tensor file's SHA-256, computed here from the
    /// bytes, equals the one in its header and the one checkpoint.json records.</summary>
    private static void VerifyCheckpoint(string directory)
    {
        ChatModel.Load(directory);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "checkpoint.json")));
        var recorded = json.RootElement.GetProperty("sha256");
        foreach (var file in new[] { "weights.safetensors", "training-state.safetensors" })
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(directory, file));
            int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
            using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
            string inHeader = header.RootElement.GetProperty("__metadata__").GetProperty("seqtalk.sha256").GetString()!;
            string actual = Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(8 + headerLength)));
            Assert.Equal(inHeader, actual);
            Assert.Equal(recorded.GetProperty(file).GetString(), actual);
        }
    }

    private static string[] EpochLines(string stdout) =>
        stdout.Split('\n').Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).Select(l => string.Join("  ", l.Split("  ").Where(f => !f.EndsWith("tok/s", StringComparison.Ordinal) && !f.EndsWith('s')))).ToArray();

    /// <summary>Starts the CLI without waiting (its output is drained and dropped).</summary>
    private static Process Start(string workingDirectory, string[] args, bool slowCheckpoints)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Seqtalk.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        if (slowCheckpoints) info.Environment["SEQTALK_TEST_CHECKPOINT_DELAY_MS"] = "10";
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.GetDirectories(from)) CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }
}
