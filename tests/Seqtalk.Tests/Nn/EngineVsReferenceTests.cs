using Seqtalk.Nn;
using Seqtalk.Tests.Reference;

namespace Seqtalk.Tests.Nn;

/// <summary>The float engine (loss, logits, every parameter gradient) against the double reference.</summary>
public class EngineVsReferenceTests
{
    [Theory]
    [InlineData(1, 3, 1, AttentionKind.None)]
    [InlineData(2, 3, 1, AttentionKind.None)]
    [InlineData(2, 4, 2, AttentionKind.None)]
    [InlineData(1, 3, 1, AttentionKind.Dot)]
    [InlineData(1, 4, 1, AttentionKind.General)]
    [InlineData(1, 4, 1, AttentionKind.Bahdanau)]
    [InlineData(2, 5, 2, AttentionKind.General)]
    [InlineData(2, 5, 2, AttentionKind.Bahdanau)]
    [InlineData(1, 4, 1, AttentionKind.None, true)]
    [InlineData(2, 5, 1, AttentionKind.None, true)]
    [InlineData(2, 5, 2, AttentionKind.General, true)]
    [InlineData(1, 5, 1, AttentionKind.Dot, true)]
    [InlineData(2, 4, 2, AttentionKind.None, false, true)]
    [InlineData(2, 5, 1, AttentionKind.Bahdanau, true, true)]
    [InlineData(1, 3, 1, AttentionKind.General, false, true)]
    [InlineData(1, 4, 1, AttentionKind.Dot, false, false, true)]
    [InlineData(2, 5, 2, AttentionKind.General, false, false, true)]
    [InlineData(2, 5, 1, AttentionKind.Bahdanau, false, false, true)]
    [InlineData(1, 5, 1, AttentionKind.Bahdanau, true, true, true)]
    public void ForwardBackward_MatchesDoubleReference(int layers, int batchSize, int threads, AttentionKind attention, bool bidirectional = false, bool bridge = false, bool inputFeeding = false)
    {
        var cfg = new ModelConfig
        {
            SourceVocabSize = 9,
            TargetVocabSize = 7,
            EmbeddingDim = 4,
            HiddenDim = bidirectional ? 6 : 5,
            Layers = layers,
            Attention = attention,
            BidirectionalEncoder = bidirectional,
            Bridge = bridge,
            InputFeeding = inputFeeding,
        };
        var rng = new Random(7 + layers + batchSize);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, batchSize, 9, 7, 4, 3));
        var model = Seq2SeqModel.Create(cfg, seed: 3);
        // Larger weights than the Keras init so that every nonlinearity is exercised.
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.5);
        var pd = model.Parameters.Select(v => (double)v).ToArray();

        var reference = ScalarReference.Seq2Seq(cfg, pd, batch, gradients: true);
        var ws = new TrainingWorkspace(model, batchSize, batch.SourceSteps, batch.TargetSteps, threads);
        var grads = new float[model.Layout.TotalLength];
        var stats = ws.ForwardBackward(batch, grads, 1f);

        Assert.Equal(batch.RealTargetTokens, stats.Tokens);
        Assert.Equal(reference.LossSum, stats.LossSum, 1e-5);
        Compare.Close("logits", reference.Logits.SelectMany(r => r).ToArray(), ws.LastLogits, 1e-5);
        foreach (var slot in model.Layout.Slots)
            Compare.Close(slot.Name, reference.Gradients.AsSpan(slot.Offset, slot.Length), grads.AsSpan(slot.Offset, slot.Length), 1e-4);
        Assert.Contains(grads, g => Math.Abs(g) > 1e-2);

        // Forward alone gives the same loss, and the gradients accumulate (+=) with the loss scale.
        Assert.Equal(stats.LossSum, ws.Forward(batch).LossSum);
        var twice = (float[])grads.Clone();
        ws.ForwardBackward(batch, twice, 0.5f);
        for (int i = 0; i < grads.Length; i++) Assert.Equal(1.5f * grads[i], twice[i], 1e-5f);
    }
}
