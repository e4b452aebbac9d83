using System.Diagnostics;
using System.Text;

namespace Seqtalk.Cli.Tests;

/// <summary>`train` streams the pairs file: it leaves no temporary token file, reports its peak memory,
/// and a 10 MB line is a one-line error naming its line.</summary>
public sealed class LargeInputTests : IClassFixture<TinyModel>, IDisposable
{
    private readonly TinyModel _model;
    private readonly TempDirectory _dir = new();

    public LargeInputTests(TinyModel model) => _model = model;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Train_ReportsPeakMemory_AndLeavesNoTokenFile()
    {
        var r = _model.TrainResult;
        Assert.True(r.ExitCode == 0, r.ToString());
        string memory = Assert.Single(r.StdoutLines, l => l.StartsWith("memory: peak working set ", StringComparison.Ordinal));
        Assert.Matches(@"^memory: peak working set [0-9,]+ MB$", memory);
        Assert.Empty(Directory.GetFiles(_model.ModelDirectory, "*.tmp"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(_model.ModelDirectory)!, "*.tmp"));
    }

    [Fact]
    public void TenMegabyteLine_IsAOneLineErrorWithItsLineNumber()
    {
        using (var w = new StreamWriter(_dir.File("big.csv"), false, new UTF8Encoding(false)))
        {
            w.Write("Q,A\n안녕,반가워\n뭐 해,그냥 있어\n");
            w.Write(new string('x', 10 * 1024 * 1024));
            w.Write(",y\n");
        }
        var r = CliRunner.Run(_dir.Path, ["train", "--data", "big.csv", "--out", "model", .. TinyModel.SmallTraining]);
        CliAssert.OneLineError(r, 1, "big.csv, line 4: row longer than 1000000 characters (MaxRowChars).");
        Assert.False(Directory.Exists(_dir.File("model")));
    }
    /// <summary>SIGTERM while the file is still being read, before the first step: nothing trained, nothing saved,
    /// exit 143. The data file is a FIFO, so the test decides when each pass gets its rows: the counting pass
    /// gets them at once, the next pass only once the CLI has said it is stopping.</summary>
    [Fact]
    public async Task Sigterm_WhileTheFileIsRead_StopsAndSavesNothing()
    {
        Assert.True(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "the test needs mkfifo");
        string fifo = _dir.File("pairs.csv");
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }
        string csv = _dir.File("content.csv");
        TinyModel.WriteCsv(csv, TinyModel.Pairs(64));
        byte[] content = File.ReadAllBytes(csv);

        using var stopping = new ManualResetEventSlim();
        var writer = Task.Run(() =>
        {
            File.WriteAllBytes(fifo, content);   // the counting pass
            if (!stopping.Wait(TimeSpan.FromMinutes(1))) return;
            try { File.WriteAllBytes(fifo, content); }   // the questions' pass, which stops at its first row
            catch (IOException) { }                       // the reader closed its end early
        });
        var r = CliRunner.Run(_dir.Path, ["train", "--data", "pairs.csv", "--out", "model", .. TinyModel.SmallTraining], timeout: TimeSpan.FromMinutes(1),
            onStdoutLine: (process, line) =>
            {
                if (line.StartsWith("data: 64 pairs", StringComparison.Ordinal)) Signal(process.Id, "TERM");
            },
            onStderrLine: (_, line) =>
            {
                if (line.StartsWith("interrupt:", StringComparison.Ordinal)) stopping.Set();
            });
        await writer.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(r.ExitCode == 143, r.ToString());
        Assert.Equal("training interrupted while reading pairs.csv, before the first step: nothing was trained or saved", r.StdoutLines[^1]);
        Assert.DoesNotContain(r.StdoutLines, l => l.StartsWith("epoch ", StringComparison.Ordinal));
        Assert.False(Directory.Exists(_dir.File("model")));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp", SearchOption.AllDirectories));
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }
}
