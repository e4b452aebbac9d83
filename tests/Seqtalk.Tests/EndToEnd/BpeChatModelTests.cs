using System.Text.Json.Nodes;
using Seqtalk.Data;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

/// <summary>A model with BPE tokens: trains, saves its merges beside the vocabularies, loads back and replies the same, never with &lt;unk&gt;.</summary>
public class BpeChatModelTests
{
    private static TrainingOptions Small(int epochs) => new()
    {
        Epochs = epochs,
        BatchSize = 8,
        EmbeddingDim = 16,
        HiddenDim = 32,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.02f,
        ClipNorm = 1f,
        ValidationSize = 0,
        Seed = 8,
        Threads = 1,
        Tokenizer = TokenizerKind.Bpe,
        BpeVocabularySize = 400,
    };

    /// <summary>Eight pairs whose answers share words and particles, so merges happen and pieces must be reassembled.</summary>
    private static List<QaPair> Pairs() =>
    [
        new("오늘 날씨 어때?", "오늘은 맑아요. 산책하기 좋겠어요!", 2),
        new("비 올까?", "내일은 비가 와요. 우산 챙기세요.", 3),
        new("배고파", "맛있는 거 드세요.", 4),
        new("심심해", "같이 놀아요!", 5),
        new("피곤해", "푹 쉬세요.", 6),
        new("C# 좋아해?", "네, C# 좋아해요 (정말로)!", 7),
        new("hello there", "Hello! 반가워요.", 8),
        new("잘 자", "좋은 꿈 꾸세요~", 9),
    ];

    [Fact]
    public void Train_Save_Load_GivesIdenticalReplies_WithoutUnknown()
    {
        var pairs = Pairs();
        var words = new Seqtalk.Text.TextNormalizer();
        Assert.All(pairs, p => Assert.Equal(p.Answer, words.JoinWords(words.SplitWords(p.Answer))));   // the answers survive word splitting
        var model = ChatModel.Train(pairs, Small(400));
        Assert.IsType<BpeTokenizer>(model.SourceTokenizer);
        Assert.IsType<BpeTokenizer>(model.TargetTokenizer);
        Assert.True(model.AnswerVocabularySize > BpeTokenizer.FirstCharacterId);   // characters and some merges
        Assert.True(model.AnswerVocabularySize <= 400);

        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-model-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            Assert.True(File.Exists(Path.Combine(dir, "source.merges.txt")));
            Assert.True(File.Exists(Path.Combine(dir, "target.merges.txt")));
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            Assert.Equal("Bpe", (string?)config["tokenizer"]!["kind"]);
            Assert.Equal("target.merges.txt", (string?)config["tokenizer"]!["targetMerges"]);

            var loaded = ChatModel.Load(dir);
            var questions = pairs.Select(p => p.Question).Concat(["처음 보는 말이에요 <s> </s>", "😊 漢字 ภาษา", "민수는 오늘 행복해"]).ToList();
            var replies = model.ReplyBatch(questions);
            Assert.Equal(replies, loaded.ReplyBatch(questions));
            Assert.All(replies, r => Assert.DoesNotContain("<unk>", r, StringComparison.Ordinal));
            Assert.All(questions, q => Assert.DoesNotContain(SpecialTokens.UnknownId, loaded.SourceTokenizer.EncodeToIds(q)));

            // The model memorised the pairs, so its pieces reassemble into the trained answers, punctuation in place
            // (8 of 8 with this seed here; a margin of 2 for other SIMD widths, where the run differs slightly).
            var trained = loaded.ReplyBatch([.. pairs.Select(p => p.Question)]);
            int exact = pairs.Select((p, i) => p.Answer == trained[i]).Count(x => x);
            Assert.True(exact >= pairs.Count - 2, $"only {exact} of {pairs.Count} answers reproduced: {string.Join(" | ", trained)}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Load_WithMissingOrCorruptMerges_ThrowsNamingTheFile()
    {
        var model = ChatModel.Train(ChatModelTests.SyntheticPairs(16), Small(1));
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-bpe-model-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            string merges = Path.Combine(dir, "target.merges.txt");
            string[] lines = File.ReadAllLines(merges);
            Assert.NotEmpty(lines);
            File.WriteAllText(merges, string.Join('\n', lines.Append("없는 토큰")) + "\n");
            var e = Assert.Throws<SeqtalkException>(() => ChatModel.Load(dir));
            Assert.Contains(merges, e.Message, StringComparison.Ordinal);
            Assert.Contains($"line {lines.Length + 1}", e.Message, StringComparison.Ordinal);

            File.Delete(merges);
            e = Assert.Throws<SeqtalkException>(() => ChatModel.Load(dir));
            Assert.Contains(merges, e.Message, StringComparison.Ordinal);
            Assert.Contains("missing", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BpeVocabularySize_IsValidated()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingOptions { BpeVocabularySize = 100 }.Validate());
        Assert.Equal(nameof(TrainingOptions.BpeVocabularySize), e.ParamName);
        new TrainingOptions { BpeVocabularySize = BpeTokenizerOptions.MinimumVocabularySize }.Validate();
    }
}
