using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Seqtalk.Cli.Tests;

/// <summary>Nothing lost: SIGKILL or SIGTERM at random moments (many inside checkpoint writes) always leaves a
/// latest checkpoint that loads and whose checksums verify, and resuming after every stop ends with the very
/// weights of an uninterrupted run, also in a moved model directory. SIGTERM writes a checkpoint and exits 143;
/// during the counting pass it stops with one line. (tests/Seqtalk.Tests' CheckpointTests stop a write at each of
/// its stages; the CLI has no hook for that.)</summary>
public sealed class CheckpointTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>60 training pairs in batches of 4: 15 steps per epoch.</summary>
    private static string[] Training(int epochs, int checkpointEvery) =>
    [
        "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--embedding-dim", "8", "--hidden-dim", "16",
        "--batch-size", "4", "--optimizer", "adam", "--learning-rate", "0.01", "--validation-size", "4", "--threads", "1", "--seed", "3",
        "--checkpoint-every", checkpointEvery.ToString(CultureInfo.InvariantCulture), "--keep-checkpoints", "2",
    ];

    /// <summary>30 epochs of 15 steps with a checkpoint after every step: far more steps than 20 stops get through.</summary>
    private static readonly string[] s_training = Training(30, 1);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void StoppedAtTwentyRandomMoments_TheLatestCheckpointAlwaysLoads_AndResumingEndsWithTheUninterruptedWeights()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SEQTALK_KILL_SEED"), out int s) ? s : 20261127;
        output.WriteLine($"kill test seed {seed} (set SEQTALK_KILL_SEED to replay)");
        var random = new Random(seed);
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));

        // Checkpoints do not change the run, so the reference writes few.
        var total = Stopwatch.StartNew();
        var straight = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "straight", .. Training(30, 1000)], timeout: TimeSpan.FromMinutes(2));
        Assert.True(straight.ExitCode == 0, straight.ToString());

        string checkpoints = _dir.File(Path.Combine("m", "checkpoints"));
        string latest = Path.Combine(checkpoints, "latest");
        int midWrite = 0, terms = 0, resumedToEnd = 0;
        for (int kill = 1; kill <= 20; kill++)
        {
            string? before = File.Exists(latest) ? File.ReadAllText(latest) : null;
            string[] args = before is null
                ? ["train", "--data", "pairs.csv", "--out", "m", .. s_training]
                : ["train", "--data", "pairs.csv", "--resume", "m"];
            using var process = Start(_dir.Path, args);
            // Wait for this run's first new checkpoint, then stop it a random moment later: with a checkpoint after
            // every step, most of the run's time goes into writing them, so many stops land inside a write.
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && (File.Exists(latest) ? File.ReadAllText(latest) : null) == before && clock.Elapsed < TimeSpan.FromSeconds(30))
                Thread.Sleep(5);
            Thread.Sleep(random.Next(0, 40));
            Assert.False(process.HasExited, $"kill {kill}: the run ended before the signal (exit {(process.HasExited ? process.ExitCode : 0)}); give it more steps");
            bool term = random.Next(3) == 0;
            if (term) Signal(process.Id, "TERM");   // a clean stop: a checkpoint after the current step
            else process.Kill();                    // SIGKILL: whatever was being written is cut short
            process.WaitForExit();
            if (term)
            {
                Assert.True(process.ExitCode == 143, $"kill {kill}: SIGTERM ended the run with exit {process.ExitCode}");
                terms++;
            }

            if (Directory.EnumerateDirectories(checkpoints, ".tmp-*").Any()) midWrite++;
            string current = Path.Combine(checkpoints, File.ReadAllText(latest).Trim());
            VerifyCheckpoint(current);
            foreach (var step in Directory.GetDirectories(checkpoints, "step-*"))
                Assert.True(File.Exists(Path.Combine(step, "checkpoint.json")), $"kill {kill}: {step} is a half-written checkpoint under a step name");
            output.WriteLine($"kill {kill}: {(term ? "SIGTERM" : "SIGKILL")}, latest {Path.GetFileName(current)}");

            if (kill % 7 == 0)
            {
                // A copy resumed to the end of its epoch: --resume continues and finishes cleanly.
                string copy = _dir.File($"copy{kill}");
                CopyDirectory(_dir.File("m"), copy);
                int epoch = JsonDocument.Parse(File.ReadAllText(Path.Combine(current, "checkpoint.json"))).RootElement.GetProperty("epoch").GetInt32();
                var finish = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", $"copy{kill}", "--epochs", epoch.ToString(CultureInfo.InvariantCulture)], timeout: TimeSpan.FromMinutes(1));
                Assert.True(finish.ExitCode == 0, finish.ToString());
                Assert.StartsWith($"saved copy{kill} ", finish.StdoutLines[^1], StringComparison.Ordinal);
                ChatModel.Load(copy);
                resumedToEnd++;
            }
        }
        output.WriteLine($"{midWrite} of 20 stops ({terms} SIGTERM) left an unfinished checkpoint write behind; {total.Elapsed.TotalSeconds:F1} s so far");

        var end = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", "m", "--checkpoint-every", "1000"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(end.ExitCode == 0, end.ToString());
        Assert.Empty(Directory.EnumerateDirectories(checkpoints, ".tmp-*"));
        Assert.True(File.ReadAllBytes(_dir.File(Path.Combine("m", "weights.safetensors"))).AsSpan()
            .SequenceEqual(File.ReadAllBytes(_dir.File(Path.Combine("straight", "weights.safetensors")))),
            "after 20 stops and resumes the weights differ from the uninterrupted run's");
        Assert.Equal(
            EpochLines(straight.Stdout)[^1],
            EpochLines(end.Stdout)[^1]);
        Assert.Equal(2, resumedToEnd);
        output.WriteLine($"{total.Elapsed.TotalSeconds:F1} s in all");
    }

    [Fact]
    public void Sigterm_WritesACheckpointAndExits143_AndTheMovedModelDirectoryResumesToTheUninterruptedWeights()
    {
        TinyModel.WriteCsv(_dir.File("pairs.csv"), TinyModel.Pairs(64));

        // 500 epochs: the run is still in its first few when the signal sent after epoch 1 lands.
        var stopped = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "m", .. Training(500, 5)], timeout: TimeSpan.FromMinutes(1),
            onStdoutLine: (process, line) =>
            {
                if (line.StartsWith("epoch 1/", StringComparison.Ordinal)) Signal(process.Id, "TERM");
            });
        Assert.True(stopped.ExitCode == 143, stopped.ToString());
        Assert.Contains("writing a checkpoint", stopped.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"^checkpoint m/checkpoints/step-\d{8} written; continue with: seqtalk train --resume m --data pairs.csv$", stopped.StdoutLines[^1]);
        string written = stopped.StdoutLines[^1].Split(' ')[1];
        Assert.Equal(Path.GetFileName(written), File.ReadAllText(_dir.File("m/checkpoints/latest")).Trim());
        VerifyCheckpoint(_dir.File(written));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp", SearchOption.AllDirectories));   // no token file left behind

        // The files record where the checkpoints are relative to themselves, never this machine's path.
        AssertCheckpointDirectory(_dir.File("m/config.json"), "CheckpointDirectory", "checkpoints");
        AssertCheckpointDirectory(_dir.File(Path.Combine(written, "config.json")), "CheckpointDirectory", "..");
        AssertCheckpointDirectory(_dir.File(Path.Combine(written, "checkpoint.json")), "checkpointDirectory", "..");

        // The whole model directory moves elsewhere; resuming it there finishes the epoch in progress.
        Directory.CreateDirectory(_dir.File("elsewhere"));
        Directory.Move(_dir.File("m"), _dir.File("elsewhere/moved"));
        int epoch = JsonDocument.Parse(File.ReadAllText(_dir.File(Path.Combine("elsewhere/moved/checkpoints", Path.GetFileName(written), "checkpoint.json"))))
            .RootElement.GetProperty("epoch").GetInt32();
        string epochs = epoch.ToString(CultureInfo.InvariantCulture);
        var resumed = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--resume", "elsewhere/moved", "--epochs", epochs]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains(resumed.StdoutLines, l => l.StartsWith("resuming from elsewhere/moved/checkpoints/step-", StringComparison.Ordinal));
        Assert.StartsWith("saved elsewhere/moved ", resumed.StdoutLines[^1], StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.File("m")), "the resumed run wrote into the directory it was moved from");
        AssertCheckpointDirectory(_dir.File("elsewhere/moved/config.json"), "CheckpointDirectory", "checkpoints");

        var straight = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "straight", .. Training(epoch, 5)]);
        Assert.True(straight.ExitCode == 0, straight.ToString());
        Assert.True(File.ReadAllBytes(_dir.File("elsewhere/moved/weights.safetensors")).AsSpan().SequenceEqual(File.ReadAllBytes(_dir.File("straight/weights.safetensors"))),
            "the weights resumed in the moved directory differ from the uninterrupted run's");
        Assert.Equal(EpochLines(straight.Stdout)[^1], EpochLines(resumed.Stdout)[^1]);
    }

    [Fact]
    public async Task SigtermWhileTheDataIsCounted_StopsWithOneLineAndExits143()
    {
        // A named pipe as the data file: the CLI's counting pass reads what this test writes, and cannot finish
        // before the pipe is closed, so the signal lands inside the pass without any timing.
        string fifo = _dir.File("pairs.csv");
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        var interrupted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = Task.Run(() => CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "m", .. TinyModel.SmallTraining], timeout: TimeSpan.FromMinutes(1),
            onStart: process => started.TrySetResult(process),
            onStderrLine: (_, line) => { if (line.StartsWith("interrupt:", StringComparison.Ordinal)) interrupted.TrySetResult(); }));

        // Opening the pipe for writing waits until the CLI opens it to count the pairs.
        var writer = new StreamWriter(fifo, append: false, new UTF8Encoding(false));
        try
        {
            writer.Write("question,answer\n안녕,반가워\n");
            writer.Flush();
            Signal((await started.Task).Id, "TERM");
            await interrupted.Task.WaitAsync(TimeSpan.FromSeconds(30));   // the CLI has seen the signal
            writer.Write("잘 자,좋은 꿈 꿔\n");
            writer.Flush();
        }
        catch (IOException)
        {
            // Broken pipe: the CLI stopped reading and closed its end before this write, which is what it should do.
        }
        finally
        {
            try { writer.Dispose(); }
            catch (IOException) { }   // the same, seen when the buffer is flushed on close
        }
        var r = await run;
        Assert.True(r.ExitCode == 143, r.ToString());
        Assert.Equal(["training interrupted while reading pairs.csv, before the first step: nothing was trained or saved"], r.StdoutLines);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("interrupt: stopping while the data file is counted; nothing has been trained yet", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("writing a checkpoint", r.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.File("m/checkpoints")));
        Assert.False(File.Exists(_dir.File("m/config.json")));
    }

    private static void AssertCheckpointDirectory(string file, string name, string expected)
    {
        string text = File.ReadAllText(file);
        using var json = JsonDocument.Parse(text);
        var root = json.RootElement;
        var options = root.TryGetProperty("training", out var training) ? training.GetProperty("options") : root.GetProperty("options");
        Assert.Equal(expected, options.GetProperty(name).GetString());
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), text, StringComparison.Ordinal);
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
    private static Process Start(string workingDirectory, string[] args)
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
