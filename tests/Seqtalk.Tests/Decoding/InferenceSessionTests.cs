using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

public class InferenceSessionTests
{
    private static Seq2SeqModel RandomModel(int layers, float endBias = 0f, AttentionKind attention = AttentionKind.None, bool bidirectional = false)
    {
        var model = TestBatches.RandomDecodingModel(layers, parameterSeed: 17, attention, bidirectional);
        model.Parameters[model.Layout["out.b"].Offset + SpecialTokens.EndId] += endBias;  // some replies end early
        return model;
    }

    [Theory]
    [InlineData(1, AttentionKind.None)]
    [InlineData(2, AttentionKind.None)]
    [InlineData(1, AttentionKind.Dot)]
    [InlineData(2, AttentionKind.General)]
    [InlineData(1, AttentionKind.Bahdanau)]
    [InlineData(2, AttentionKind.None, true)]
    [InlineData(1, AttentionKind.General, true)]
    public void Greedy_AgreesWithTeacherForcedArgmaxOfTheTrainingForward(int layers, AttentionKind attention, bool bidirectional = false)
    {
        const int maxSteps = 6;
        int ended = 0, truncated = 0;
        // Random weights make every source fall into the same kind of reply, so two </s> biases are
        // used: one where replies stop early and one where they run to maxSteps.
        foreach (float endBias in new[] { 0f, 1.5f })
        {
            var model = RandomModel(layers, endBias, attention, bidirectional);
            var sources = TestBatches.RandomPairs(new Random(5), 9, 15, 12, 6, 1).Select(p => p.Source).ToArray();
            var replies = new InferenceSession(model, maxBatch: 4).GreedyDecode(sources, maxSteps);
            var ws = new TrainingWorkspace(model, 1, 6, maxSteps + 1, 1);
            for (int i = 0; i < sources.Length; i++)
            {
                var reply = replies[i];
                Assert.InRange(reply.Length, 0, maxSteps);
                Assert.DoesNotContain(SpecialTokens.EndId, reply);
                ws.Forward(TestBatches.Make([(sources[i], reply)]));
                var logits = ws.LastLogits;
                int v = model.Config.TargetVocabSize;
                Assert.Equal((reply.Length + 1) * v, logits.Length);
                for (int t = 0; t < reply.Length; t++) Assert.Equal(reply[t], ArgMax(logits.Slice(t * v, v)));
                if (reply.Length < maxSteps)
                {
                    Assert.Equal(SpecialTokens.EndId, ArgMax(logits.Slice(reply.Length * v, v)));
                    ended++;
                }
                else truncated++;
            }
        }
        Assert.True(ended > 0 && truncated > 0, $"the sample must contain both finished and truncated replies; {ended} finished, {truncated} truncated");
    }

    [Theory]
    [InlineData(AttentionKind.None)]
    [InlineData(AttentionKind.Dot)]
    [InlineData(AttentionKind.General)]
    [InlineData(AttentionKind.Bahdanau)]
    [InlineData(AttentionKind.General, true)]
    public void BatchSizeAndOrder_DoNotChangeReplies_AndEmptySourcesWork(AttentionKind attention, bool bidirectional = false)
    {
        var model = RandomModel(2, attention: attention, bidirectional: bidirectional);
        var sources = TestBatches.RandomPairs(new Random(6), 7, 15, 12, 5, 1).Select(p => p.Source).Append([]).ToArray();
        var one = new InferenceSession(model, 1).GreedyDecode(sources, 8);
        var many = new InferenceSession(model, 16).GreedyDecode(sources, 8);
        Assert.Equal(one, many);
        Assert.Equal(sources.Length, many.Length);
        Assert.Empty(new InferenceSession(model).GreedyDecode(sources, 0).SelectMany(r => r));
        Assert.Throws<SeqtalkException>(() => new InferenceSession(model).GreedyDecode([[99]], 3));
    }

    [Fact]
    public void GreedyOutputPaths_DotRowsGemmRowsAndBlocks_GiveTheSameReplies()
    {
        // A step's arg-max takes the int8 screen row by row (up to 16 rows; MatMulForward without it) or transposed
        // blocks (more), and its LSTM steps dot products (one to three rows) or the GEMM with packed weights; steps of
        // one batch move between them as rows finish. Every batch size must give the replies of one-by-one decoding.
        bool mixed = false;
        foreach (float endBias in new[] { 0f, 0.5f, 1f, 1.5f, 2f })
        {
            var model = RandomModel(1, endBias);
            var sources = TestBatches.RandomPairs(new Random(8), 40, 15, 12, 6, 1).Select(p => p.Source).ToArray();
            var alone = new InferenceSession(model, 1).GreedyDecode(sources, 7);
            mixed |= alone.Select(r => r.Length).Distinct().Count() > 1;   // rows leave the batch at different steps
            foreach (int maxBatch in new[] { 3, 4, 9, 16, 17, 40 })
                Assert.Equal(alone, new InferenceSession(model, maxBatch).GreedyDecode(sources, 7));
        }
        Assert.True(mixed, "with some </s> bias, replies must end at different steps");
    }

    [Theory]
    [InlineData(AttentionKind.Dot)]
    [InlineData(AttentionKind.General)]
    [InlineData(AttentionKind.Bahdanau)]
    [InlineData(AttentionKind.Dot, true)]
    public void GreedyWithAttention_GivesTheGreedyReply_AndTheTrainingForwardsWeights(AttentionKind attention, bool bidirectional = false)
    {
        const int maxSteps = 6;
        var model = RandomModel(1, 2f, attention, bidirectional);   // a </s> bias so that some replies end before maxSteps
        var sources = TestBatches.RandomPairs(new Random(12), 6, 15, 12, 6, 1).Select(p => p.Source).ToArray();
        var greedy = new InferenceSession(model, 4).GreedyDecode(sources, maxSteps);
        var session = new InferenceSession(model);
        var ws = new TrainingWorkspace(model, 1, 6, maxSteps + 1, 1);
        bool sawEnd = false;
        foreach (var (source, i) in sources.Select((s, i) => (s, i)))
        {
            var (ids, weights) = session.GreedyDecodeWithAttention(source, maxSteps);
            Assert.Equal(greedy[i], ids);
            bool ended = ids.Length < maxSteps;
            sawEnd |= ended;
            Assert.Equal(ids.Length + (ended ? 1 : 0), weights.Length);   // one row per reply token, plus the </s> step
            // The training forward on (source, reply) attends with the same weights (rows past the reply: none).
            ws.Forward(TestBatches.Make([(source, ids)]));
            var expected = ws.LastAttentionWeights;
            int ts = source.Length;
            for (int t = 0; t < weights.Length; t++)
            {
                Assert.Equal(ts, weights[t].Length);
                Assert.Equal(1.0, weights[t].Sum(x => (double)x), 5);
                for (int s = 0; s < ts; s++) Assert.Equal(expected[t * ts + s], weights[t][s], 1e-5f);
            }
        }
        Assert.True(sawEnd);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
