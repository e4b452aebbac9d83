using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

/// <summary>The int8 screen of the output layer and the packed LSTM and attention weights are derived from the weights
/// and kept per model; after the weights change (a training step, or any write announced with
/// <see cref="Seq2SeqModel.WeightsChanged"/>) greedy replies must be those of the new weights, exactly what a fresh model
/// object with the same weights gives. Packing changes no bits.</summary>
public class WeightCacheTests
{
    private const int Vocab = 300, MaxSteps = 6;

    private static readonly int[][] Sources = [[4, 5, 6], [7], [8, 9, 10, 4], [], [6, 6]];

    private static ModelConfig Config(AttentionKind attention) => new()
    {
        SourceVocabSize = 11,
        TargetVocabSize = Vocab,
        EmbeddingDim = 6,
        HiddenDim = 12,
        Layers = 1,
        Attention = attention,
    };

    /// <summary>Each source decoded alone (one row: the screen's path), by one long-lived session.</summary>
    private static int[][] DecodeOneByOne(InferenceSession session) => [.. Sources.Select(s => session.GreedyDecode([s], MaxSteps)[0])];

    private static int[][] FreshReplies(Seq2SeqModel model)
    {
        var fresh = Seq2SeqModel.FromParameters(model.Config, (float[])model.Parameters.Clone());
        var session = new InferenceSession(fresh, 8);
        var replies = DecodeOneByOne(session);
        Assert.True(session.ScreenedRows > 0, "the fresh model must decode through the screen too");
        return replies;
    }

    [Theory]
    [InlineData(AttentionKind.None)]
    [InlineData(AttentionKind.General)]
    public void AfterAnExplicitWrite_GreedyRepliesAreTheFreshModels(AttentionKind attention)
    {
        var model = Seq2SeqModel.Create(Config(attention), 3);
        var session = new InferenceSession(model, 8);
        var before = DecodeOneByOne(session);
        Assert.True(session.ScreenedRows > 0, "the first decode must build and use the screen");
        var screen = GreedyScreen.For(model);

        // A token that no reply used now wins every step on its bias alone: a stale screen, whose copy of out.b is the
        // old one, would not even keep it as a candidate.
        int token = Enumerable.Range(SpecialTokens.EndId + 1, Vocab - SpecialTokens.EndId - 1).First(t => before.All(r => !r.Contains(t)));
        model.Parameters[model.Layout["out.b"].Offset + token] += 100f;
        model.WeightsChanged();

        var after = DecodeOneByOne(session);
        Assert.Equal(FreshReplies(model), after);
        Assert.All(after, reply => Assert.Equal(Enumerable.Repeat(token, MaxSteps), reply));
        Assert.NotSame(screen, GreedyScreen.For(model));
        Assert.Same(GreedyScreen.For(model), GreedyScreen.For(model));   // rebuilt once, then shared again
    }

    [Theory]
    [InlineData(AttentionKind.None)]
    [InlineData(AttentionKind.General)]
    public void AfterAWriteOfTheLstmAndAttentionWeights_BatchedRepliesAreTheFreshModels(AttentionKind attention)
    {
        var model = Seq2SeqModel.Create(Config(attention), 7);
        var session = new InferenceSession(model, 8);
        int[][] batch = [.. Sources, [5, 4], [9], [10, 10, 10]];   // eight rows: the GEMM path with the packed weights
        var before = session.GreedyDecode(batch, MaxSteps);

        var rng = new Random(4);
        foreach (var name in new[] { "dec.l0.w_ih", "dec.l0.w_hh", "enc.l0.w_hh", "enc.embed", "dec.embed", "enc.l0.b_ih" }.Concat(attention == AttentionKind.None ? [] : ["attn.w_c", "attn.w_a"]))
        {
            var slot = model.Layout[name];
            for (int i = slot.Offset; i < slot.Offset + slot.Length; i++) model.Parameters[i] += (float)(rng.NextDouble() - 0.5);
        }
        model.WeightsChanged();

        var after = session.GreedyDecode(batch, MaxSteps);
        var fresh = Seq2SeqModel.FromParameters(model.Config, (float[])model.Parameters.Clone());
        Assert.Equal(new InferenceSession(fresh, 8).GreedyDecode(batch, MaxSteps), after);
        Assert.Equal(new InferenceSession(fresh, 8) { UsePackedWeights = false }.GreedyDecode(batch, MaxSteps), after);
        Assert.NotEqual(before, after);
    }

    [Theory]
    [InlineData(AttentionKind.None, 2)]
    [InlineData(AttentionKind.General, 1)]
    [InlineData(AttentionKind.Bahdanau, 1)]
    public void PackedWeights_GiveTheSameReplies_AsPackingInEveryCall(AttentionKind attention, int layers)
    {
        var model = Seqtalk.Tests.Nn.TestBatches.RandomDecodingModel(layers, parameterSeed: 29, attention);
        var sources = Seqtalk.Tests.Nn.TestBatches.RandomPairs(new Random(3), 40, 15, 12, 6, 1).Select(p => p.Source).ToArray();
        foreach (int maxBatch in new[] { 5, 16, 40 })
        {
            var packedOnce = new InferenceSession(model, maxBatch).GreedyDecode(sources, 8);
            Assert.Equal(new InferenceSession(model, maxBatch) { UsePackedWeights = false }.GreedyDecode(sources, 8), packedOnce);
        }
    }

    [Theory]
    [InlineData(1, AttentionKind.None, false, false, false)]
    [InlineData(2, AttentionKind.None, false, false, false)]
    [InlineData(1, AttentionKind.General, false, false, false)]
    [InlineData(1, AttentionKind.Bahdanau, false, false, true)]
    [InlineData(2, AttentionKind.General, true, false, false)]   // bidirectional encoder: the decoder's table only
    [InlineData(1, AttentionKind.General, false, true, false)]   // input feeding: the encoder's table only
    public void InputTables_GiveTheFloatsOfMultiplying_GreedyAndStepApi(int layers, AttentionKind attention, bool bidirectional, bool inputFeeding, bool bridge)
    {
        var model = Seqtalk.Tests.Nn.TestBatches.RandomDecodingModel(layers, parameterSeed: 31, attention, bidirectional, bridge, inputFeeding);
        var packed = PackedWeights.For(model);
        if (Seqtalk.Kernels.Kernels.GemmIsVectorized)
        {
            Assert.Equal(!bidirectional, !packed.InputTable(0).IsEmpty);
            Assert.Equal(!inputFeeding, !packed.InputTable(layers).IsEmpty);
        }
        var sources = Seqtalk.Tests.Nn.TestBatches.RandomPairs(new Random(8), 40, 15, 12, 9, 1).Select(p => p.Source).ToArray();
        foreach (int maxBatch in new[] { 1, 3, 16, 40 })   // one to three rows: the packed-rows path; more: the GEMM
        {
            var withTable = Observe(new InferenceSession(model, maxBatch), sources);
            var multiplying = Observe(new InferenceSession(model, maxBatch) { UseInputTable = false }, sources);
            Assert.Equal(multiplying, withTable);
        }
        // The step API (beam search, sampling): the same logits bit for bit.
        var a = new InferenceSession(model, 8);
        var b = new InferenceSession(model, 8) { UseInputTable = false };
        var batch = sources.Take(8).ToArray();
        a.Encode(batch);
        b.Encode(batch);
        int[] inputs = [.. Enumerable.Range(0, 8).Select(i => i == 0 ? SpecialTokens.StartId : 4 + i)];
        var la = new float[8 * 12];
        var lb = new float[8 * 12];
        for (int step = 0; step < 3; step++)
        {
            a.Step(inputs, 8, la);
            b.Step(inputs, 8, lb);
            Assert.Equal(lb.Select(BitConverter.SingleToInt32Bits), la.Select(BitConverter.SingleToInt32Bits));
        }

        static List<(int, int, int, int)> Observe(InferenceSession session, int[][] sources)
        {
            var seen = new List<(int, int, int, int)>();
            session.GreedyObserver = (source, step, token, logit) => seen.Add((source, step, token, BitConverter.SingleToInt32Bits(logit)));
            session.GreedyDecode(sources, 8);
            return seen;
        }
    }

    [Fact]
    public void AfterAnOptimizerStepOnTheOutputLayer_GreedyRepliesAreTheFreshModels()
    {
        var model = Seq2SeqModel.Create(Config(AttentionKind.None), 5);
        var session = new InferenceSession(model, 8);
        var before = DecodeOneByOne(session);

        // One RMSprop step (the trainer's optimizer) with a gradient that pushes every reply's tokens down and the
        // next rows of out.w up, announced as the trainer announces its steps.
        var gradients = new float[model.Parameters.Length];
        var outW = model.Layout.OutputWeight;
        var rng = new Random(9);
        int hidden = model.Config.HiddenDim;
        foreach (int t in before.SelectMany(r => r).Distinct())
        {
            for (int i = 0; i < hidden; i++) gradients[outW.Offset + t * hidden + i] = (float)(rng.NextDouble() - 0.5);
            gradients[model.Layout["out.b"].Offset + t] = 1f;
        }
        var optimizer = new Seqtalk.Training.Optimizer(Seqtalk.Training.OptimizerKind.RmsProp, model.Parameters.Length);
        optimizer.Update(model.Parameters, gradients, 0.5f);
        model.WeightsChanged();

        var after = DecodeOneByOne(session);
        Assert.Equal(FreshReplies(model), after);
        Assert.NotEqual(before, after);
    }
}
