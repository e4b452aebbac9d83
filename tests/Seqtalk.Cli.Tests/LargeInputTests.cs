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
}
