using System.Text.Json;

namespace Seqtalk.Cli.Tests;

/// <summary><c>seqtalk eval</c>: every metric in --json, the --examples file, --validation-only, the decoding options.</summary>
public sealed class EvalCommandTests : IClassFixture<TinyModel>, IDisposable
{
    private readonly TinyModel _model;
    private readonly TempDirectory _dir = new();

    public EvalCommandTests(TinyModel model) => _model = model;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Json_HoldsEveryMetric_AndExamplesHoldOneLinePerPair()
    {
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--json", "--examples", "ex.jsonl");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Single(r.StdoutLines);
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.Equal(20, root.GetProperty("pairs").GetInt32());
        foreach (var name in new[] { "tokenAccuracy", "tokenF1", "exactMatch", "unknownShare", "questionUnknownShare", "distinct1", "distinct2", "top10ReplyShare" })
            Assert.InRange(root.GetProperty(name).GetDouble(), 0, 1);
        foreach (var name in new[] { "bleu", "charBleu", "chrf" })
            Assert.InRange(root.GetProperty(name).GetDouble(), 0, 100);
        foreach (var name in new[] { "bitsPerCharacter", "meanReplyLength", "meanReplyCharacters", "meanReferenceLength", "perplexity" })
            Assert.True(root.GetProperty(name).GetDouble() >= 0, name);
        long characters = root.GetProperty("referenceCharacters").GetInt64();
        Assert.True(characters > 100);

        var lines = File.ReadAllLines(_dir.File("ex.jsonl"));
        Assert.Equal(20, lines.Length);
        double bits = 0, spellingBits = 0;
        var pairs = TinyModel.Pairs(20);
        for (int i = 0; i < lines.Length; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            var e = line.RootElement;
            Assert.Equal(pairs[i].Question, e.GetProperty("question").GetString());
            Assert.Equal(pairs[i].Answer, e.GetProperty("reference").GetString());
            Assert.NotNull(e.GetProperty("reply").GetString());
            Assert.InRange(e.GetProperty("chrf").GetDouble(), 0, 100);
            Assert.True(e.GetProperty("bitsPerCharacter").GetDouble() > 0);
            bits += e.GetProperty("bits").GetDouble();
            spellingBits += e.GetProperty("unknownSpellingBits").GetDouble();
        }
        Assert.Contains("님", lines[0]);   // written as UTF-8, not \u escapes
        // The examples' bits add up to the corpus figure.
        Assert.Equal(root.GetProperty("bitsPerCharacter").GetDouble(), bits / characters, 9);
        Assert.Equal(root.GetProperty("unknownSpellingBits").GetDouble(), spellingBits, 9);
        AssertFairBitsAddUp(root);
    }

    [Fact]
    public void Json_ChargesTheSpellingOfUnknownAnswerWords()
    {
        var pairs = TinyModel.Pairs(20);
        pairs.Add(("민수는 오늘 행복해", "민수님, 처음보는말 모르는말"));
        TinyModel.WriteCsv(_dir.File("unknown.csv"), pairs);
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", "unknown.csv", "--json", "--examples", "ex.jsonl");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.True(root.GetProperty("unknownTokens").GetInt64() >= 2);
        // Each unknown word costs its five characters and the end symbol, far more than a bit each.
        Assert.True(root.GetProperty("unknownSpellingBits").GetDouble() > 12);
        Assert.True(root.GetProperty("bitsPerCharacter").GetDouble() > root.GetProperty("modelBitsPerCharacter").GetDouble());
        AssertFairBitsAddUp(root);
        using var last = JsonDocument.Parse(File.ReadAllLines(_dir.File("ex.jsonl"))[^1]);
        Assert.True(last.RootElement.GetProperty("unknownSpellingBits").GetDouble() > 12);
    }

    /// <summary>Fair bits/char = the model's + the spelling of the <c>&lt;unk&gt;</c> answer words, over the same characters;
    /// the unknown share is the unknown tokens over the answer tokens without <c>&lt;/s&gt;</c>.</summary>
    private static void AssertFairBitsAddUp(JsonElement root)
    {
        double characters = root.GetProperty("referenceCharacters").GetInt64();
        double unknownSpelling = root.GetProperty("unknownSpellingBits").GetDouble();
        long unknownTokens = root.GetProperty("unknownTokens").GetInt64();
        Assert.Equal(root.GetProperty("modelBitsPerCharacter").GetDouble() + unknownSpelling / characters,
            root.GetProperty("bitsPerCharacter").GetDouble(), 9);
        Assert.Equal((double)unknownTokens / (root.GetProperty("tokens").GetInt32() - root.GetProperty("pairs").GetInt32()),
            root.GetProperty("unknownShare").GetDouble(), 12);
        Assert.Equal(unknownTokens == 0, unknownSpelling == 0);
    }

    [Fact]
    public void ValidationOnly_EvaluatesTheHeldOutRows()
    {
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--json", "--validation-only");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.Equal(4, json.RootElement.GetProperty("pairs").GetInt32());   // --validation-size 4
    }

    [Fact]
    public void ValidationOnly_OnAnotherFile_FailsInOneLine()
    {
        TinyModel.WriteCsv(_dir.File("other.csv"), TinyModel.Pairs(12));
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", "other.csv", "--validation-only");
        CliAssert.OneLineError(r, 1, "12 usable rows", "20", "--validation-only");
    }

    [Fact]
    public void Table_ShowsTheNewMetrics()
    {
        var r = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile);
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var word in new[] { "bits/char", "model bits/char", "char BLEU", "chrF", "distinct-1/2", "reply length", "top-10 replies", "question tokens", "<unk> replies", "decoding" })
            Assert.Contains(r.StdoutLines, l => l.StartsWith(word, StringComparison.Ordinal));
    }

    /// <summary>The replies of the --examples file, decoded with <paramref name="decoding"/>.</summary>
    private string[] EvalReplies(string file, params string[] decoding)
    {
        var r = CliRunner.Run(_dir.Path, ["eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--json", "--examples", file, .. decoding]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return [.. File.ReadAllLines(_dir.File(file)).Select(l =>
        {
            using var line = JsonDocument.Parse(l);
            return line.RootElement.GetProperty("reply").GetString()!;
        })];
    }

    [Fact]
    public void DecodingOptions_ReachTheReplies_AsReplyDecodesThem()
    {
        var questions = TinyModel.Pairs(20).Select(p => p.Question).ToArray();
        string[][] settings =
        [
            ["--beam-size", "3", "--length-penalty", "0.5"],
            ["--min-length", "6", "--max-length", "9", "--no-repeat-ngram", "1", "--repetition-penalty", "1.3"],
            ["--temperature", "1.5", "--top-k", "5", "--top-p", "0.95", "--seed", "7"],
        ];
        var greedy = EvalReplies("greedy.jsonl");
        Assert.Equal(greedy, EvalReplies("beam1.jsonl", "--beam-size", "1"));
        foreach (var decoding in settings)
        {
            var replies = EvalReplies("decoded.jsonl", decoding);
            var reply = CliRunner.Run(_dir.Path, ["reply", "--model", _model.ModelDirectory, .. decoding, .. questions]);
            Assert.True(reply.ExitCode == 0, reply.ToString());
            Assert.Equal(reply.StdoutLines, replies);
            if (decoding[0] != "--beam-size") Assert.NotEqual(greedy, replies);   // the options changed what eval decoded
        }
    }

    [Fact]
    public void DecodingOptions_BadValuesAndNBest_FailInOneLine()
    {
        var beam = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--beam-size", "0");
        CliAssert.OneLineError(beam, 2, "--beam-size");
        var topK = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--top-k", "3");
        CliAssert.OneLineError(topK, 2, "--top-k", "--temperature");
        var nbest = CliRunner.Run(_dir.Path, "eval", "--model", _model.ModelDirectory, "--data", _model.DataFile, "--nbest", "2");
        CliAssert.OneLineError(nbest, 2, "--nbest");
    }

    [Fact]
    public void ReplyShowAttention_OnAModelWithoutAttention_FailsInOneLine()
    {
        var r = CliRunner.Run(_dir.Path, "reply", "--model", _model.ModelDirectory, "--show-attention", "민수는 오늘 행복해");
        CliAssert.OneLineError(r, 1, "this model has no attention", "--attention");
        var image = CliRunner.Run(_dir.Path, "reply", "--model", _model.ModelDirectory, "--attention-image", "a.svg", "민수는 오늘 행복해");
        CliAssert.OneLineError(image, 1, "no attention");
        Assert.False(File.Exists(_dir.File("a.svg")));
    }

    [Fact]
    public void ReplyAttentionImage_TakesOneQuestion()
    {
        var r = CliRunner.Run(_dir.Path, "reply", "--model", _model.ModelDirectory, "--attention-image", "a.svg", "하나", "둘");
        CliAssert.OneLineError(r, 2, "--attention-image", "one reply", "2 questions");
    }
}
