using System.Text.Json;

namespace Seqtalk.Cli.Tests;

/// <summary>Issue 4: with BPE no validation question token is <c>&lt;unk&gt;</c> and no reply contains it, even when
/// replies may (--allow-unk); a word model on the same rows shows that eval does count both.</summary>
public sealed class UnknownTokenTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private JsonElement TrainAndEval(string model, params string[] tokenizer)
    {
        var train = CliRunner.Run(_dir.Path,
        [
            "train", "--data", "part.csv", "--out", model, "--validation-size", "60", "--seed", "3", "--epochs", "2",
            "--embedding-dim", "16", "--hidden-dim", "32", "--batch-size", "32", "--optimizer", "adam", "--learning-rate", "0.01",
            "--threads", "1", .. tokenizer,
        ], timeout: TimeSpan.FromMinutes(3));
        Assert.True(train.ExitCode == 0, train.ToString());
        var eval = CliRunner.Run(_dir.Path, ["eval", "--model", model, "--data", "part.csv", "--validation-only", "--allow-unk", "--json"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(eval.ExitCode == 0, eval.ToString());
        using var json = JsonDocument.Parse(eval.Stdout);
        return json.RootElement.Clone();
    }

    [Fact]
    public void Bpe_NoUnknownQuestionTokens_NoUnknownReplies_OnChatbotData()
    {
        TinyModel.WriteCsv(_dir.File("part.csv"), MemorisationTests.FirstDistinct(RepoPaths.ChatbotData, 600));

        var bpe = TrainAndEval("bpe", "--tokenizer", "bpe", "--bpe-vocab-size", "400");
        Assert.Equal(60, bpe.GetProperty("pairs").GetInt32());
        Assert.True(bpe.GetProperty("questionTokens").GetInt64() > 200);
        Assert.Equal(0.0, bpe.GetProperty("questionUnknownShare").GetDouble());
        Assert.Equal(0, bpe.GetProperty("repliesWithUnknown").GetInt32());
        Assert.Equal(0.0, bpe.GetProperty("unknownShare").GetDouble());

        // The same rows with whole words and a 6-token vocabulary: most tokens are <unk>, and so are the replies.
        var word = TrainAndEval("word", "--tokenizer", "word", "--max-vocab", "6");
        Assert.True(word.GetProperty("questionUnknownShare").GetDouble() > 0.5, word.ToString());
        Assert.True(word.GetProperty("repliesWithUnknown").GetInt32() > 0, word.ToString());
    }
}
