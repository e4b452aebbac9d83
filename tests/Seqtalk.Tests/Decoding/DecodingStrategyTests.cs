using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

public class DecodingStrategyTests(DecodingModelFixture fixture) : IClassFixture<DecodingModelFixture>
{
    private readonly ChatModel _model = fixture.Model;
    private readonly IReadOnlyList<string> _questions = fixture.Validation;

    [Fact]
    public void BeamOfWidthOne_IsExactlyTheGreedyReply_WithAndWithoutUnknown()
    {
        foreach (bool allowUnknown in new[] { false, true })
        {
            var options = new DecodeOptions { AllowUnknown = allowUnknown };
            var greedy = _model.ReplyBatch(_questions, options);
            var detailed = _model.ReplyDetailedBatch(_questions, options);
            Assert.Equal(greedy, detailed.Select(r => r.Text));
            foreach (var r in detailed)
            {
                var only = Assert.Single(r.NBest);
                Assert.Equal(r.Text, only.Text);
                Assert.Equal(r.Score, only.Score);
                Assert.True(r.Score <= 0 && r.Score >= only.LogProbability, $"score {r.Score}, log p {only.LogProbability}");
                Assert.NotEmpty(r.SourceTokens);
                Assert.Null(r.Attention);
            }
        }
    }

    [Fact]
    public void ReplyBatch_OnSeveralThreads_GivesTheRepliesOfOneThread()
    {
        var model = fixture.Model;
        var questions = fixture.Validation.Concat(fixture.Validation.Take(41)).ToList();   // 161: more than a session's 128 rows on one share
        var one = model.ReplyBatch(questions, new DecodeOptions { Threads = 1 });
        Assert.True(one.Distinct().Count() > 10, "the replies should differ from question to question");
        // Batches are decoded longest source first, in shares and session chunks of that order: each reply is still the
        // question's reply alone.
        Assert.Equal(questions.Select(q => model.Reply(q)), one);
        foreach (int threads in new[] { 2, 3, 8 })
        {
            Assert.Equal(one, model.ReplyBatch(questions, new DecodeOptions { Threads = threads }));
            // 13 and 30: shares of whole GEMM row tiles (30 on two threads: 12 and 18), or an even split when there are
            // fewer tiles than threads.
            foreach (int n in new[] { 1, 2, 3, 5, 13, 30 })
                Assert.Equal(one.Take(n), model.ReplyBatch(questions.Take(n).ToList(), new DecodeOptions { Threads = threads }));
        }
    }

    [Fact]
    public void ReplyBatch_HandsOutEveryReplyOnce_AsItReturnsIt_OnAnyNumberOfThreads()
    {
        var questions = fixture.Validation.Concat(fixture.Validation.Take(41)).ToList();   // 161: two session chunks on one share
        var expected = _model.ReplyBatch(questions);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            foreach (int n in new[] { 1, 5, 30, 161 })
            {
                var handed = new System.Collections.Concurrent.ConcurrentDictionary<int, string>();
                var returned = _model.ReplyBatch(questions.Take(n).ToList(), new DecodeOptions { Threads = threads },
                    (i, reply) => Assert.True(handed.TryAdd(i, reply), $"question {i} was handed out twice"));
                Assert.Equal(expected.Take(n), returned);
                Assert.Equal(n, handed.Count);
                for (int i = 0; i < n; i++) Assert.Equal(returned[i], handed[i]);
            }
        }
        // Beam search and sampling hand their replies out when the batch is done.
        foreach (var options in new[] { new DecodeOptions { BeamSize = 3 }, new DecodeOptions { Temperature = 1, Seed = 5 } })
        {
            var handed = new string[questions.Count];
            var returned = _model.ReplyBatch(questions, options, (i, reply) => handed[i] = reply);
            Assert.Equal(_model.ReplyBatch(questions, options), returned);
            Assert.Equal(returned, handed);
        }
    }

    [Fact]
    public void GreedyDecode_HandsOutAReplyAtTheStepItEnds()
    {
        var network = _model.Network;
        var sources = _questions.Take(20).Select(q => _model.SourceTokenizer.EncodeToIds(q).ToArray()).ToArray();
        const int maxSteps = 12;
        var events = new List<(int Source, int Step, bool End)>();
        var session = new InferenceSession(network, 8)
        {
            GreedyObserver = (source, step, _, _) => events.Add((source, step, false)),
        };
        var handed = new Dictionary<int, int[]>();
        var results = session.GreedyDecode(sources, maxSteps, banUnknown: true, ended: (source, ids) =>
        {
            handed.Add(source, ids);
            events.Add((source, ids.Length, true));
        });
        Assert.Equal(new InferenceSession(network, 8).GreedyDecode(sources, maxSteps, banUnknown: true), results);
        var ends = events.Where(e => e.End).ToList();
        Assert.Equal(Enumerable.Range(0, sources.Length), ends.Select(e => e.Source).Order());
        Assert.True(ends.Select(e => e.Step).Distinct().Count() > 2, "the replies should end at different steps");
        foreach (var end in ends)
        {
            Assert.Same(results[end.Source], handed[end.Source]);
            int at = events.IndexOf(end);
            // A reply that emitted </s> at step k (k tokens) ends right after that step, before any row's step k + 1; one
            // that ran to maxSteps ends after its last step.
            int lastStep = end.Step < maxSteps ? end.Step : maxSteps - 1;
            Assert.Contains((end.Source, lastStep, false), events.Take(at));
            Assert.DoesNotContain(events.Take(at), e => !e.End && e.Step > lastStep && e.Source / 8 == end.Source / 8);
            Assert.DoesNotContain(events.Skip(at), e => !e.End && e.Source == end.Source);
        }
    }

    [Fact]
    public void GreedyDecode_AfterACallThatThrewPartWay_GivesAFreshSessionsReplies()
    {
        var network = _model.Network;
        var sources = _questions.Take(10).Select(q => _model.SourceTokenizer.EncodeToIds(q).ToArray()).ToArray();
        var expected = new InferenceSession(network, 8).GreedyDecode(sources, 12, banUnknown: true);
        var session = new InferenceSession(network, 8) { GreedyObserver = (_, step, _, _) => { if (step == 3) throw new InvalidOperationException("stop"); } };
        Assert.Throws<InvalidOperationException>(() => session.GreedyDecode(sources, 12, banUnknown: true));
        session.GreedyObserver = null;
        Assert.Equal(expected, session.GreedyDecode(sources, 12, banUnknown: true));
    }

    [Fact]
    public void LongestFirst_OrdersSourcesByLength_KeepingTheOrderOfEqualLengths()
    {
        int[][] sources = [[1, 2], [1, 2, 3, 4, 5], [], [5, 4, 3, 2, 1], [7, 7, 7]];
        Assert.Equal([1, 3, 4, 0, 2], ChatModel.LongestFirst(sources));
        Assert.Empty(ChatModel.LongestFirst([]));
    }

    [Fact]
    public void TokenCounts_AreTheModelsTokens()
    {
        var sampled = _model.ReplyDetailedBatch(_questions, new DecodeOptions { Temperature = 1, Seed = 3 });
        Assert.True(sampled.Select(r => r.Text).Distinct().Count() > 20, "the sample should hold varied replies");
        foreach (var r in sampled) Assert.Equal(r.Tokens.Count, _model.CountReplyTokens(r.Text));
        foreach (string q in _questions) Assert.Equal(_model.SourceTokenizer.EncodeToIds(q).Count, _model.CountQuestionTokens(q));
        Assert.Equal(60, _model.CountQuestionTokens(string.Join(' ', Enumerable.Repeat("말", 200))));   // cut at the longest source
    }

    [Fact]
    public void WiderBeams_NeverScoreWorseThanGreedy_AndOftenBetter()
    {
        var greedy = _model.ReplyDetailedBatch(_questions);
        foreach (int width in new[] { 2, 4, 8 })
        {
            var beam = _model.ReplyDetailedBatch(_questions, new DecodeOptions { BeamSize = width });
            int better = 0;
            for (int i = 0; i < _questions.Count; i++)
            {
                Assert.True(beam[i].Score >= greedy[i].Score - 1e-9,
                    $"width {width}, question {i} '{_questions[i]}': beam '{beam[i].Text}' {beam[i].Score} < greedy '{greedy[i].Text}' {greedy[i].Score}");
                if (beam[i].Score > greedy[i].Score + 1e-9) better++;
            }
            Assert.True(better > 0, $"width {width} never found a better reply than greedy");
        }
    }

    [Fact]
    public void NBest_IsSortedByScore_Distinct_AndItsLogProbabilitiesAreTheModels()
    {
        var options = new DecodeOptions { BeamSize = 5, NBest = 5, AllowUnknown = true, LengthPenalty = 0.6 };
        var results = _model.ReplyDetailedBatch(_questions.Take(12).ToList(), options);
        var network = _model.Network;
        var ws = new TrainingWorkspace(network, 1, 60, 80, 1);
        var vocabulary = _model.TargetTokenizer.Vocabulary;
        foreach (var r in results)
        {
            Assert.InRange(r.NBest.Count, 2, 5);
            Assert.Equal(r.NBest[0].Text, r.Text);
            for (int j = 1; j < r.NBest.Count; j++) Assert.True(r.NBest[j - 1].Score >= r.NBest[j].Score);
            Assert.Equal(r.NBest.Count, r.NBest.Select(c => string.Join(' ', c.Tokens)).Distinct().Count());
            var source = r.SourceTokens.Select(t => _model.SourceTokenizer.Vocabulary.GetId(t)).ToArray();
            foreach (var c in r.NBest)
            {
                // Teacher forcing the candidate (with </s>) gives loss = −log p.
                var ids = c.Tokens.Select(vocabulary.GetId).ToArray();
                var stats = ws.Forward(TestBatches.Make([(source, ids)]));
                Assert.Equal(-stats.LossSum, c.LogProbability, 1e-3);
                Assert.Equal(c.LogProbability / Math.Pow(ids.Length + 1, 0.6), c.Score, 1e-9);
            }
        }
    }

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(4, 0.0)]
    [InlineData(1, 0.7)]
    public void BatchedReplies_AreTheRepliesDecodedAlone(int beam, double temperature)
    {
        var options = new DecodeOptions { BeamSize = beam, Temperature = temperature, Seed = 5, TopP = temperature > 0 ? 0.9 : 1, NBest = temperature > 0 ? 3 : 1 };
        var questions = _questions.Take(10).ToList();
        var batched = _model.ReplyDetailedBatch(questions, options);
        for (int i = 0; i < questions.Count; i++)
        {
            var alone = _model.ReplyDetailed(questions[i], options);
            Assert.Equal(alone.NBest.Select(c => (c.Text, c.Score, c.LogProbability)), batched[i].NBest.Select(c => (c.Text, c.Score, c.LogProbability)));
        }
        // Reversed order and a different neighbour set give the same replies.
        var reversed = _model.ReplyDetailedBatch([.. questions.AsEnumerable().Reverse(), .. _questions.Skip(50).Take(7)], options);
        for (int i = 0; i < questions.Count; i++) Assert.Equal(batched[i].NBest.Select(c => c.Text), reversed[questions.Count - 1 - i].NBest.Select(c => c.Text));
    }

    [Fact]
    public void Sampling_SameSeedSameReplies_DifferentSeedsDiffer_TopKOneIsGreedy()
    {
        var questions = _questions.Take(30).ToList();
        var a = _model.ReplyBatch(questions, new DecodeOptions { Temperature = 1.5, Seed = 1 });
        var b = _model.ReplyBatch(questions, new DecodeOptions { Temperature = 1.5, Seed = 1 });
        var c = _model.ReplyBatch(questions, new DecodeOptions { Temperature = 1.5, Seed = 2 });
        Assert.Equal(a, b);
        Assert.True(a.Zip(c).Count(x => x.First != x.Second) >= questions.Count / 3, "different seeds should give different samples");
        var greedy = _model.ReplyBatch(questions);
        Assert.True(a.Zip(greedy).Count(x => x.First != x.Second) >= questions.Count / 3, "sampling at T = 1.5 should differ from greedy");
        Assert.Equal(greedy, _model.ReplyBatch(questions, new DecodeOptions { Temperature = 1.5, TopK = 1, Seed = 3 }));
        Assert.Equal(greedy, _model.ReplyBatch(questions, new DecodeOptions { Temperature = 1.5, TopP = 1e-6, Seed = 4 }));
        // Without a seed each call draws its own.
        var unseeded = _model.ReplyDetailed(questions[0], new DecodeOptions { Temperature = 2, NBest = 16 });
        Assert.True(unseeded.NBest.Select(x => x.Text).Distinct().Count() > 1);
    }

    [Fact]
    public void TopK_LimitsSamplesToTheKMostLikelyFirstTokens()
    {
        var question = _questions[3];
        var first = _model.ReplyDetailed(question, new DecodeOptions { BeamSize = 3, NBest = 3, MaxLength = 1 }).NBest.Select(c => c.Tokens[0]).ToHashSet();
        var samples = _model.ReplyDetailed(question, new DecodeOptions { Temperature = 5, TopK = 3, NBest = 64, MaxLength = 1, Seed = 9 });
        var drawn = samples.NBest.Select(c => c.Tokens.Count == 0 ? SpecialTokens.End : c.Tokens[0]).ToHashSet();
        Assert.Subset(first.Append(SpecialTokens.End).ToHashSet(), drawn);
        Assert.True(drawn.Count >= 2, "a high temperature should draw more than one of the top 3");
    }

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(3, 0.0)]
    [InlineData(1, 1.0)]
    public void Rules_HoldForEveryStrategy(int beam, double temperature)
    {
        var baseOptions = new DecodeOptions { BeamSize = beam, Temperature = temperature, Seed = 1, MaxLength = 12 };
        var questions = _questions.Take(40).ToList();

        foreach (var r in _model.ReplyDetailedBatch(questions, baseOptions with { MinLength = 5 }))
            Assert.True(r.Tokens.Count >= 5, $"'{r.Text}' is shorter than the minimum length");

        var plain = _model.ReplyDetailedBatch(questions, baseOptions with { MinLength = 8, AllowUnknown = true });
        var noRepeat = _model.ReplyDetailedBatch(questions, baseOptions with { MinLength = 8, AllowUnknown = true, NoRepeatNgramSize = 2 });
        Assert.Contains(plain, r => HasRepeatedNgram(r.Tokens, 2));
        Assert.DoesNotContain(noRepeat, r => HasRepeatedNgram(r.Tokens, 2));

        var penalised = _model.ReplyDetailedBatch(questions, baseOptions with { MinLength = 8, AllowUnknown = true, RepetitionPenalty = 5 });
        Assert.True(Repeats(penalised) < Repeats(plain), $"repeated tokens: {Repeats(penalised)} with the penalty, {Repeats(plain)} without");

        Assert.Contains(plain, r => r.Tokens.Contains(SpecialTokens.Unknown));
        Assert.DoesNotContain(_model.ReplyDetailedBatch(questions, baseOptions with { MinLength = 8 }), r => r.Tokens.Contains(SpecialTokens.Unknown));
    }

    [Fact]
    public void BanningUnknown_ChangesOnlyRepliesWhereUnknownWins()
    {
        var allowed = _model.ReplyDetailedBatch(_questions, new DecodeOptions { AllowUnknown = true });
        var banned = _model.ReplyDetailedBatch(_questions, new DecodeOptions());
        for (int i = 0; i < _questions.Count; i++)
        {
            Assert.DoesNotContain(SpecialTokens.Unknown, banned[i].Tokens);
            int at = allowed[i].Tokens.ToList().IndexOf(SpecialTokens.Unknown);
            if (at < 0) Assert.Equal(allowed[i].Text, banned[i].Text);
            else Assert.Equal(allowed[i].Tokens.Take(at), banned[i].Tokens.Take(at));
        }
    }

    [Fact]
    public void LogitRules_PenaliseBanAndKeepTheRest()
    {
        float[] row = [1f, 2f, -2f, 0.5f, 4f, -1f, 3f];
        LogitRules.Apply(row, [4, 5, 4, 6, 4], new DecodeOptions { RepetitionPenalty = 2, NoRepeatNgramSize = 2, MinLength = 6, AllowUnknown = false });
        // 5 and 6 follow a 4 earlier (the last token): banned by the 2-gram rule; 4 penalised once (4/2);
        // </s> (3) banned below the minimum length; <unk> (1) banned.
        Assert.Equal([1f, float.NegativeInfinity, -2f, float.NegativeInfinity, 2f, float.NegativeInfinity, float.NegativeInfinity], row);
        float[] other = [1f, 2f, -2f, 0.5f, 4f, -1f, 3f];
        LogitRules.Apply(other, [4, 5, 4], new DecodeOptions { RepetitionPenalty = 2, AllowUnknown = true });
        Assert.Equal([1f, 2f, -2f, 0.5f, 2f, -2f, 3f], other);
        Span<int> top = stackalloc int[3];
        Assert.Equal(3, LogitRules.TopK([1f, 3f, 3f, float.NegativeInfinity, 2f], 3, top));
        Assert.Equal([1, 2, 4], top.ToArray());
    }

    [Fact]
    public void InvalidOptions_NameTheProperty()
    {
        (DecodeOptions Options, string Name)[] cases =
        [
            (new() { MaxLength = 0 }, nameof(DecodeOptions.MaxLength)),
            (new() { MinLength = -1 }, nameof(DecodeOptions.MinLength)),
            (new() { MinLength = 5, MaxLength = 4 }, nameof(DecodeOptions.MinLength)),
            (new() { BeamSize = 0 }, nameof(DecodeOptions.BeamSize)),
            (new() { BeamSize = 65 }, nameof(DecodeOptions.BeamSize)),
            (new() { LengthPenalty = -0.1 }, nameof(DecodeOptions.LengthPenalty)),
            (new() { LengthPenalty = double.NaN }, nameof(DecodeOptions.LengthPenalty)),
            (new() { Temperature = -1 }, nameof(DecodeOptions.Temperature)),
            (new() { TopK = -1 }, nameof(DecodeOptions.TopK)),
            (new() { TopP = 0 }, nameof(DecodeOptions.TopP)),
            (new() { TopP = 1.5 }, nameof(DecodeOptions.TopP)),
            (new() { NoRepeatNgramSize = -1 }, nameof(DecodeOptions.NoRepeatNgramSize)),
            (new() { RepetitionPenalty = 0 }, nameof(DecodeOptions.RepetitionPenalty)),
            (new() { NBest = 0 }, nameof(DecodeOptions.NBest)),
            (new() { NBest = 2 }, nameof(DecodeOptions.NBest)),
            (new() { BeamSize = 2, Temperature = 1 }, nameof(DecodeOptions.BeamSize)),
        ];
        foreach (var (options, name) in cases)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
            Assert.Equal(name, e.ParamName);
            Assert.Throws<ArgumentOutOfRangeException>(() => _model.ReplyDetailed("안녕", options));
        }
        new DecodeOptions { NBest = 4, Temperature = 1 }.Validate();
        new DecodeOptions { NBest = 4, BeamSize = 4, TopK = 3, Seed = 1 }.Validate();   // sampling settings are ignored without a temperature
    }

    private static bool HasRepeatedNgram(IReadOnlyList<string> tokens, int n)
    {
        var seen = new HashSet<string>();
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            if (!seen.Add(string.Join('\u0001', tokens.Skip(i).Take(n)))) return true;
        }
        return false;
    }

    private static int Repeats(IEnumerable<ReplyResult> results) => results.Sum(r => r.Tokens.Count - r.Tokens.Distinct().Count());
}
