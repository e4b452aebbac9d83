using Seqtalk.Decoding;
using Seqtalk.Nn;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Nn;

public class MemorisationTests
{
    [Fact]
    public void EightPairs_RmsProp_LossFallsAndGreedyDecodingReturnsEachAnswer()
    {
        var cfg = new ModelConfig { SourceVocabSize = 20, TargetVocabSize = 18, EmbeddingDim = 12, HiddenDim = 16 };
        var rng = new Random(2024);
        var pairs = TestBatches.RandomPairs(rng, 8, 20, 18, 5, 4);
        var batch = TestBatches.Make(pairs);
        var model = Seq2SeqModel.Create(cfg, seed: 1);
        var ws = new TrainingWorkspace(model, 8, batch.SourceSteps, batch.TargetSteps, threads: 1);
        var grads = new float[model.Layout.TotalLength];
        var ms = new float[model.Layout.TotalLength];
        double first = 0, last = 0;
        for (int step = 0; step < 150; step++)
        {
            Array.Clear(grads);
            var stats = ws.ForwardBackward(batch, grads, 1f / batch.RealTargetTokens);
            if (step == 0) first = stats.LossSum / stats.Tokens;
            last = stats.LossSum / stats.Tokens;
            K.RmsPropUpdate(model.Parameters, grads, ms, lr: 0.02f, rho: 0.9f, eps: 1e-7f);
        }
        Assert.True(first > 2.0, $"initial loss {first}");
        Assert.True(last < 0.05, $"loss after 150 steps {last} (started at {first})");

        var session = new InferenceSession(model, maxBatch: 3);
        var replies = session.GreedyDecode(pairs.Select(p => p.Source).ToArray(), maxSteps: 10);
        for (int i = 0; i < pairs.Length; i++) Assert.Equal(pairs[i].Target, replies[i]);
    }
}
