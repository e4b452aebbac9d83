using System.Diagnostics;
using System.Text;

namespace Seqtalk.Cli.Tests;

/// <summary>What one run of the CLI produced.</summary>
internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StdoutLines => Lines(Stdout);
    public string[] StderrLines => Lines(Stderr);

    private static string[] Lines(string text) => text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n');

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the built CLI as a user does: <c>dotnet Seqtalk.Cli.dll args…</c> in a working directory,
/// with optional stdin, and kills it after a timeout (a guard against hangs, not an assertion).
/// </summary>
internal static class CliRunner
{
    private static readonly string s_dll = FindDll();

    public static CliResult Run(string workingDirectory, IEnumerable<string> args, string? stdin = null,
        TimeSpan? timeout = null, Action<Process, string>? onStdoutLine = null, IReadOnlyDictionary<string, string>? environment = null,
        Action<Process, string>? onStderrLine = null, Action<Process>? onStart = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(s_dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("SEQTALK_DEBUG");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;

        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var stdoutDone = new TaskCompletionSource();
        var stderrDone = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { stdoutDone.TrySetResult(); return; }
            lock (stdout) stdout.Append(e.Data).Append('\n');
            onStdoutLine?.Invoke(process, e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { stderrDone.TrySetResult(); return; }
            lock (stderr) stderr.Append(e.Data).Append('\n');
            onStderrLine?.Invoke(process, e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        onStart?.Invoke(process);
        try
        {
            if (stdin is not null) process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The process exited before reading its input; its output says why.
        }

        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"seqtalk {string.Join(' ', args)} did not finish within {limit}; output so far:\n{stdout}\n{stderr}");
        }
        Task.WaitAll([stdoutDone.Task, stderrDone.Task], TimeSpan.FromSeconds(10));
        lock (stdout) lock (stderr) return new CliResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static CliResult Run(string workingDirectory, params string[] args) => Run(workingDirectory, args, stdin: null);

    /// <summary>The CLI assembly is copied next to the tests by the project reference.</summary>
    private static string FindDll()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Seqtalk.Cli.dll");
        if (!File.Exists(path)) throw new FileNotFoundException("The built CLI is not next to the tests.", path);
        return path;
    }
}

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "seqtalk-cli-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Finds the repository root (the folder holding Seqtalk.slnx) and the shared data beside it.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>../shared/data/ChatbotData.csv relative to the repository root (never copied into it).</summary>
    public static string ChatbotData => System.IO.Path.GetFullPath(System.IO.Path.Combine(Root, "..", "shared", "data", "ChatbotData.csv"));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "Seqtalk.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No Seqtalk.slnx above {AppContext.BaseDirectory}.");
    }
}
