using Seqtalk.Data;
using Seqtalk.Text;
using Seqtalk.Training;

namespace Seqtalk.Tests.EndToEnd;

public class EvaluationTests
{
    private static readonly TrainingOptions s_small = new()
    {
        Epochs = 3,
        BatchSize = 8,
        EmbeddingDim = 8,
        HiddenDim = 12,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 0.01f,
        ValidationSize = 0.25,
        Seed = 7,
        Threads = 1,
    };

    private static readonly Lazy<(List<QaPair> Pairs, ChatModel Model)> s_trained = new(() =>
    {
        var pairs = ChatModelTests.SyntheticPairs(24);
        // Questions of different lengths, so evaluation's longest-first batching reorders the rows.
        pairs[3] = pairs[3] with { Question = "tom 은 오늘 정말 정말 많이 배고파" };
        pairs[5] = pairs[5] with { Question = "영희" };
        return (pairs, ChatModel.Train(pairs, s_small));
    });

    [Fact]
    public void Evaluate_PerExampleBitsAddUpAndBelongToTheirPairs()
    {
        var (pairs, model) = s_trained.Value;
        var r = model.Evaluate(pairs);
        Assert.Equal(pairs.Count, r.Examples.Count);
        Assert.Equal(r.Tokens, r.Examples.Sum(e => e.Tokens));
        // Bits are the model's (the per-token loss) plus the spelling of the unknown words, which this set has.
        Assert.True(r.UnknownSpellingBits > 0);
        Assert.Equal(r.UnknownSpellingBits, r.Examples.Sum(e => e.UnknownSpellingBits), 9);
        Assert.Equal(r.Loss * r.Tokens / Math.Log(2) + r.UnknownSpellingBits, r.Examples.Sum(e => e.Bits), 6);
        Assert.Equal(r.Examples.Sum(e => e.Bits) / r.ReferenceCharacters, r.BitsPerCharacter, 9);
        Assert.Equal(r.Loss * r.Tokens / Math.Log(2) / r.ReferenceCharacters, r.ModelBitsPerCharacter, 9);
        Assert.Equal(pairs.Sum(p => p.Answer.Trim().Length), r.ReferenceCharacters);   // one char per Hangul syllable
        // Each pair's bits are those of the pair evaluated alone (the batch rows were credited to the right pair).
        foreach (int i in new[] { 0, 3, 5, 17 })
        {
            var alone = model.Evaluate([pairs[i]]).Examples[0];
            Assert.Equal(pairs[i].Question, r.Examples[i].Question);
            Assert.Equal(alone.Bits, r.Examples[i].Bits, 4);
            Assert.Equal(alone.Bits / Evaluator.CountCharacters(pairs[i].Answer.Trim()), r.Examples[i].BitsPerCharacter, 4);
        }
        Assert.True(r.Examples.Select(e => e.Bits).Distinct().Count() > 1);
    }

    [Fact]
    public void Evaluate_ReplyMetricsAreThoseOfTheReplies()
    {
        var (pairs, model) = s_trained.Value;
        var r = model.Evaluate(pairs);
        var replies = model.ReplyBatch(pairs.Select(p => p.Question).ToList());
        Assert.Equal(replies, r.Examples.Select(e => e.Reply));
        var chrf = new ChrfStatistics();
        var bleu = new BleuStatistics();
        for (int i = 0; i < pairs.Count; i++)
        {
            chrf.Add(replies[i], pairs[i].Answer);
            bleu.Add(SacreBleuTokenizer.Tokenize13a(replies[i]), [SacreBleuTokenizer.Tokenize13a(pairs[i].Answer)]);
            Assert.Equal(ChrfStatistics.Sentence(replies[i], pairs[i].Answer), r.Examples[i].Chrf, 12);
        }
        Assert.Equal(chrf.Score(), r.Chrf, 12);
        Assert.Equal(bleu.Score(), r.Bleu, 12);
        Assert.InRange(r.CharacterBleu, 0, 100);
        Assert.Equal(replies.Average(x => SacreBleuTokenizer.Tokenize13a(x).Count), r.MeanReplyLength, 12);
        Assert.Equal(TextMetrics.TopRepliesShare(replies), r.TopRepliesShare, 12);
        Assert.InRange(r.Distinct1, 0, 1);
        // Names seen only in validation rows are not in the answer vocabulary.
        var ids = pairs.SelectMany(p => model.TargetTokenizer.EncodeToIds(p.Answer)).ToList();
        Assert.Equal((double)ids.Count(id => id == Seqtalk.Text.SpecialTokens.UnknownId) / ids.Count, r.UnknownShare, 12);
        Assert.True(r.UnknownShare > 0);
        Assert.Equal(0, r.TruncatedReferences);
    }

    [Fact]
    public void Evaluate_ReportsTheShareOfUnknownAnswerTokens()
    {
        var (_, model) = s_trained.Value;
        // Word tokens of the answer: 민수님 | , | 처음보는말 → one of three is <unk>.
        var r = model.Evaluate([new QaPair("민수는 오늘 행복해", "민수님, 처음보는말", 2)]);
        Assert.Equal(1.0 / 3, r.UnknownShare, 12);
    }

    [Fact]
    public void Evaluate_ChargesAnUnknownWordItsSpellingOnTopOfTheModelsBits()
    {
        var (_, model) = s_trained.Value;
        var spelling = UnknownSpellingModel.Fit(model.TargetTokenizer.Vocabulary);
        var r = model.Evaluate([new QaPair("민수는 오늘 행복해", "민수님, 처음보는말", 2)]);
        var e = Assert.Single(r.Examples);
        double modelBits = r.Loss * r.Tokens / Math.Log(2);
        double wordBits = spelling.Bits("처음보는말");
        Assert.True(wordBits > 5 * spelling.EndBits);   // five characters and the end symbol, each costing more than the end
        Assert.Equal(1, r.UnknownTokens);
        Assert.Equal(wordBits, r.UnknownSpellingBits, 12);
        Assert.Equal(wordBits, e.UnknownSpellingBits, 12);
        Assert.Equal(modelBits + wordBits, e.Bits, 6);
        Assert.Equal(r.ReferenceCharacters, Evaluator.CountCharacters("민수님, 처음보는말"));
        Assert.Equal((modelBits + wordBits) / r.ReferenceCharacters, r.BitsPerCharacter, 9);
        Assert.Equal(e.BitsPerCharacter, r.BitsPerCharacter, 12);
        Assert.Equal(modelBits / r.ReferenceCharacters, r.ModelBitsPerCharacter, 9);

        // A reference without unknown words costs the model's bits alone.
        var known = model.Evaluate([new QaPair("민수는 오늘 행복해", "민수님, 푹 쉬세요.", 2)]);
        Assert.Equal(0, known.UnknownTokens);
        Assert.Equal(0, known.UnknownSpellingBits);
        Assert.Equal(known.ModelBitsPerCharacter, known.BitsPerCharacter);
    }

    [Fact]
    public void Evaluate_ChargesOnlyTheUnknownWordsOfTheScoredTokens_WhenAnAnswerIsCut()
    {
        var (_, model) = s_trained.Value;
        var spelling = UnknownSpellingModel.Fit(model.TargetTokenizer.Vocabulary);
        // 처음보는말, then 30 × (푹 쉬세요 .) = 90 known tokens, then 모르는단어: the cut at 60 tokens drops the second unknown word.
        string answer = "처음보는말 " + string.Concat(Enumerable.Repeat("푹 쉬세요. ", 30)) + "모르는단어";
        Assert.Equal(2, model.TargetTokenizer.EncodeToIds(answer).Count(id => id == SpecialTokens.UnknownId));
        var r = model.Evaluate([new QaPair("민수는 오늘 행복해", answer, 2)]);
        Assert.Equal(1, r.TruncatedReferences);
        Assert.Equal(TrainingOptions.DefaultMaxSequenceLength + 1, r.Tokens);
        Assert.Equal(1, r.UnknownTokens);
        Assert.Equal(spelling.Bits("처음보는말"), r.UnknownSpellingBits, 12);
        Assert.Equal(r.Loss * r.Tokens / Math.Log(2) + r.UnknownSpellingBits, r.Examples[0].Bits, 6);
    }

    [Fact]
    public void Evaluate_OfABpeModel_HasNoSpellingCost_SoItsFairAndModelFiguresAreEqual()
    {
        var pairs = ChatModelTests.SyntheticPairs(24);
        var model = ChatModel.Train(pairs, s_small with { Tokenizer = TokenizerKind.Bpe, BpeVocabularySize = 300, Epochs = 1 });
        // The second answer has a word no training answer has; BPE spells it from characters and bytes instead of <unk>.
        var r = model.Evaluate([pairs[0], new QaPair("민수는 오늘 행복해", "민수님, 처음보는말 ☃", 2)]);
        Assert.Equal(0, r.UnknownShare);
        Assert.Equal(0, r.UnknownTokens);
        Assert.Equal(0, r.UnknownSpellingBits);
        Assert.Equal(r.ModelBitsPerCharacter, r.BitsPerCharacter);
        Assert.Equal(r.Loss * r.Tokens / Math.Log(2) / r.ReferenceCharacters, r.BitsPerCharacter, 9);
        Assert.All(r.Examples, e => Assert.Equal(0, e.UnknownSpellingBits));
    }

    [Fact]
    public void Evaluate_OfACharacterModel_ChargesAnUnknownCharacterTheUnseenSlotAndTheEnd()
    {
        var pairs = ChatModelTests.SyntheticPairs(24);
        var model = ChatModel.Train(pairs, s_small with { Tokenizer = TokenizerKind.Character, Epochs = 1 });
        var spelling = UnknownSpellingModel.Fit(model.TargetTokenizer.Vocabulary);
        // 햄 and ☃ are in no training answer; every other character is.
        var r = model.Evaluate([new QaPair("민수는 오늘 행복해", "민수님, 햄 ☃", 2)]);
        Assert.Equal(2, r.UnknownTokens);
        Assert.Equal(2 * (spelling.UnseenCharacterBits + spelling.EndBits), r.UnknownSpellingBits, 12);
        Assert.Equal(r.Loss * r.Tokens / Math.Log(2) + r.UnknownSpellingBits, r.Examples[0].Bits, 6);
    }

    [Fact]
    public void ValidationPairs_AreTheRowsTrainingHeldOut_AndTheirLossIsTheBestEpochs()
    {
        var (pairs, model) = s_trained.Value;
        var (_, expected) = DataSplit.Split(pairs.Count, 0.25, SplitMode.Random, 7);
        var validation = model.ValidationPairs(pairs);
        Assert.Equal(expected.Select(i => pairs[i]), validation);

        var summary = model.Training!;
        double bestLoss = summary.Epochs.Single(e => e.Epoch == summary.BestEpoch).ValidationLoss!.Value;
        Assert.Equal(bestLoss, model.Evaluate(validation).Loss, 5);

        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            Assert.Equal(validation, ChatModel.Load(dir).ValidationPairs(pairs));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        var e = Assert.Throws<SeqtalkException>(() => model.ValidationPairs(pairs.Take(20).ToList()));
        Assert.Contains("20 usable rows", e.Message);
        Assert.Contains("24", e.Message);
    }

    [Fact]
    public void Save_WritesTheEpochsAsCsvAndTheLearningCurvesAsSvg()
    {
        var (_, model) = s_trained.Value;
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(dir);
            var lines = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
            var epochs = model.Training!.Epochs;
            Assert.Equal(epochs.Count + 1, lines.Length);
            Assert.StartsWith("epoch,train_loss,", lines[0]);
            for (int i = 0; i < epochs.Count; i++)
            {
                var cells = lines[i + 1].Split(',');
                Assert.Equal(epochs[i].Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture), cells[0]);
                Assert.Equal(epochs[i].ValidationLoss!.Value, double.Parse(cells[3], System.Globalization.CultureInfo.InvariantCulture));
                Assert.Equal(epochs[i].IsBest ? "1" : "0", cells[^1]);
            }
            var svg = System.Xml.Linq.XDocument.Load(Path.Combine(dir, "learning-curves.svg"));
            Assert.Equal("svg", svg.Root!.Name.LocalName);
            Assert.Contains($"best epoch {model.Training.BestEpoch}", svg.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
