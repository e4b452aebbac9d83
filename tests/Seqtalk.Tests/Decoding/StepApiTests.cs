using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

public class StepApiTests
{
    private static Seq2SeqModel RandomModel(int layers, AttentionKind attention = AttentionKind.None, bool bidirectional = false, bool bridge = false, bool inputFeeding = false) =>
        TestBatches.RandomDecodingModel(layers, parameterSeed: 23, attention, bidirectional, bridge, inputFeeding);

    private static int[][] Sources(int seed, int count) =>
        TestBatches.RandomPairs(new Random(seed), count, 15, 12, 6, 1).Select(p => p.Source).Append([]).ToArray();

    [Theory]
    [InlineData(1, AttentionKind.None)]
    [InlineData(2, AttentionKind.None)]
    [InlineData(1, AttentionKind.Dot)]
    [InlineData(2, AttentionKind.General)]
    [InlineData(1, AttentionKind.Bahdanau)]
    [InlineData(2, AttentionKind.None, true)]
    [InlineData(1, AttentionKind.General, true)]
    [InlineData(2, AttentionKind.None, false, true)]
    [InlineData(1, AttentionKind.Dot, true, true)]
    [InlineData(2, AttentionKind.General, false, false, true)]
    [InlineData(1, AttentionKind.Bahdanau, true, true, true)]
    public void StepLogits_AreTheTeacherForcedLogitsOfTheTrainingForward(int layers, AttentionKind attention, bool bidirectional = false, bool bridge = false, bool inputFeeding = false)
    {
        var model = RandomModel(layers, attention, bidirectional, bridge, inputFeeding);
        var sources = Sources(3, 5);
        int v = model.Config.TargetVocabSize;
        var targets = sources.Select((_, i) => new[] { 4 + i % 8, 5 + i % 7, 6 }).ToArray();
        var session = new InferenceSession(model, sources.Length);
        session.Encode(sources);
        var logits = new float[sources.Length * v];
        var inputs = new int[sources.Length];
        var ws = new TrainingWorkspace(model, 1, 6, 4, 1);
        var expected = new float[sources.Length][];
        for (int i = 0; i < sources.Length; i++)
        {
            ws.Forward(TestBatches.Make([(sources[i].Length == 0 ? [0] : sources[i], targets[i])]));
            expected[i] = ws.LastLogits.ToArray();
        }
        for (int t = 0; t <= 3; t++)
        {
            for (int i = 0; i < inputs.Length; i++) inputs[i] = t == 0 ? SpecialTokens.StartId : targets[i][t - 1];
            session.Step(inputs, sources.Length, logits);
            for (int i = 0; i < sources.Length; i++)
            {
                if (sources[i].Length == 0) continue;   // the training forward cannot take an empty source
                for (int o = 0; o < v; o++) Assert.Equal(expected[i][t * v + o], logits[i * v + o], 1e-5f);
            }
        }
    }

    [Theory]
    [InlineData(AttentionKind.None)]
    [InlineData(AttentionKind.Dot)]
    [InlineData(AttentionKind.General)]
    [InlineData(AttentionKind.Bahdanau)]
    [InlineData(AttentionKind.Dot, true)]
    [InlineData(AttentionKind.None, false, true)]
    [InlineData(AttentionKind.General, true, true)]
    [InlineData(AttentionKind.Dot, false, false, true)]
    [InlineData(AttentionKind.Bahdanau, true, false, true)]
    public void RowsAreIndependentOfTheirNeighboursAndOfTheRowCount_AndReorderFollowsParents(AttentionKind attention, bool bidirectional = false, bool bridge = false, bool inputFeeding = false)
    {
        var model = RandomModel(2, attention, bidirectional, bridge, inputFeeding);
        var sources = Sources(4, 7);
        int v = model.Config.TargetVocabSize, n = sources.Length;
        var all = new InferenceSession(model, n);
        all.Encode(sources);
        var allLogits = new float[n * v];
        all.Step(Enumerable.Repeat(SpecialTokens.StartId, n).ToArray(), n, allLogits);
        for (int i = 0; i < n; i++)
        {
            var one = new InferenceSession(model, 1);
            one.Encode([sources[i]]);
            var oneLogits = new float[v];
            one.Step([SpecialTokens.StartId], 1, oneLogits);
            Assert.Equal(allLogits.AsSpan(i * v, v).ToArray(), oneLogits);   // bit-identical
        }

        // Reverse the rows and fan row 0 out: each row then continues exactly as its parent would.
        int[] parents = [.. Enumerable.Range(0, n).Reverse()];
        parents[1] = n - 1;
        all.ReorderRows(parents, n);
        var next = new int[n];
        for (int r = 0; r < n; r++) next[r] = 4 + parents[r] % 5;
        var reordered = new float[n * v];
        all.Step(next, n, reordered);
        for (int r = 0; r < n; r++)
        {
            var one = new InferenceSession(model, 1);
            one.Encode([sources[parents[r]]]);
            var tmp = new float[v];
            one.Step([SpecialTokens.StartId], 1, tmp);
            one.Step([next[r]], 1, tmp);
            Assert.Equal(tmp, reordered.AsSpan(r * v, v).ToArray());
        }
    }

    [Fact]
    public void StepDrivenArgMax_GivesTheGreedyReplies_AndBanningUnknownOnlyChangesRowsWhereItWins()
    {
        var model = RandomModel(1);
        model.Parameters[model.Layout["out.b"].Offset + SpecialTokens.UnknownId] += 1.2f;   // <unk> wins sometimes
        var sources = Sources(8, 12);
        int v = model.Config.TargetVocabSize;
        foreach (bool ban in new[] { false, true })
        {
            var greedy = new InferenceSession(model, 16).GreedyDecode(sources, 6, ban);
            var session = new InferenceSession(model, 1);
            for (int i = 0; i < sources.Length; i++)
            {
                session.Encode([sources[i]]);
                var logits = new float[v];
                var reply = new List<int>();
                int input = SpecialTokens.StartId;
                for (int t = 0; t < 6; t++)
                {
                    session.Step([input], 1, logits);
                    if (ban) logits[SpecialTokens.UnknownId] = float.NegativeInfinity;
                    input = Array.IndexOf(logits, logits.Max());
                    if (input == SpecialTokens.EndId) break;
                    reply.Add(input);
                }
                Assert.Equal(reply, greedy[i]);
                if (ban) Assert.DoesNotContain(SpecialTokens.UnknownId, greedy[i]);
            }
        }
        var unbanned = new InferenceSession(model, 16).GreedyDecode(sources, 6);
        Assert.Contains(unbanned, r => r.Contains(SpecialTokens.UnknownId));
    }
}
