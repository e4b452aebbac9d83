using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

public class InferenceSessionTests
{
    private static Seq2SeqModel RandomModel(int layers, float endBias = 0f)
    {
        var cfg = new ModelConfig { SourceVocabSize = 15, TargetVocabSize = 12, EmbeddingDim = 6, HiddenDim = 7, Layers = layers };
        var model = Seq2SeqModel.Create(cfg, 9);
        var rng = new Random(17);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.8);
        model.Parameters[model.Layout["out.b"].Offset + SpecialTokens.EndId] += endBias;  // some replies end early
        return model;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Greedy_AgreesWithTeacherForcedArgmaxOfTheTrainingForward(int layers)
    {
        const int maxSteps = 6;
        int ended = 0, truncated = 0;
        // Random weights make every source fall into the same kind of reply, so two </s> biases are
        // used: one where replies stop early and one where they run to maxSteps.
        foreach (float endBias in new[] { 0f, 1.5f })
        {
            var model = RandomModel(layers, endBias);
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

    [Fact]
    public void BatchSizeAndOrder_DoNotChangeReplies_AndEmptySourcesWork()
    {
        var model = RandomModel(2);
        var sources = TestBatches.RandomPairs(new Random(6), 7, 15, 12, 5, 1).Select(p => p.Source).Append([]).ToArray();
        var one = new InferenceSession(model, 1).GreedyDecode(sources, 8);
        var many = new InferenceSession(model, 16).GreedyDecode(sources, 8);
        Assert.Equal(one, many);
        Assert.Equal(sources.Length, many.Length);
        Assert.Empty(new InferenceSession(model).GreedyDecode(sources, 0).SelectMany(r => r));
        Assert.Throws<SeqtalkException>(() => new InferenceSession(model).GreedyDecode([[99]], 3));
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
