using Seqtalk.Nn;
using Seqtalk.Tests.Reference;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Nn;

/// <summary>Dropout (with fixed masks), tied embeddings and label smoothing: the double reference against finite
/// differences, then the float engine against the reference; and the hashed masks' determinism.</summary>
public class RegularizationTests
{
    private const float Rate = 0.3f;
    private static readonly float Keep = 1f / (1f - Rate);

    /// <summary>A fixed mask: a function of (tensor, logical row key, element), about 30% zeros.</summary>
    private static float FixedMask(int tensor, int key, int j) => K.Mix32((uint)(tensor * 7919 + key * 131 + j)) % 10 < 3 ? 0f : Keep;

    private static ReferenceRegularization Reg(bool dropout, double smoothing) => new(dropout ? (t, k, j) => FixedMask(t, k, j) : null, smoothing);

    private static void FixedMasks(int tensor, ReadOnlySpan<int> rowKeys, int batchSize, int width, Span<float> mask)
    {
        for (int r = 0; r < rowKeys.Length; r++)
            for (int j = 0; j < width; j++) mask[r * width + j] = FixedMask(tensor, rowKeys[r], j);
    }

    // (layers, tied, dropout, smoothing, bidirectional encoder, attention with input feeding)
    public static TheoryData<int, bool, bool, double, bool, AttentionKind> Cases => new()
    {
        { 1, true, false, 0.0, false, AttentionKind.None },
        { 2, false, true, 0.0, false, AttentionKind.None },
        { 1, false, false, 0.1, false, AttentionKind.None },
        { 2, true, true, 0.2, false, AttentionKind.None },
        { 2, false, true, 0.0, true, AttentionKind.None },
        { 3, true, true, 0.1, true, AttentionKind.None },
        { 2, false, true, 0.0, false, AttentionKind.General },
        { 3, false, true, 0.1, true, AttentionKind.Bahdanau },
        { 1, true, true, 0.0, false, AttentionKind.Dot },
    };

    /// <summary>E = H = 5, or 6 with a bidirectional encoder (H/2 per direction); attention other than None comes with input feeding.</summary>
    private static ModelConfig Config(int layers, bool tied, bool bidirectional = false, AttentionKind feeding = AttentionKind.None) => new()
    {
        Attention = feeding,
        InputFeeding = feeding != AttentionKind.None,
        SourceVocabSize = 7,
        TargetVocabSize = 7,
        EmbeddingDim = bidirectional ? 6 : 5,
        HiddenDim = bidirectional ? 6 : 5,
        Layers = layers,
        TiedEmbeddings = tied,
        BidirectionalEncoder = bidirectional,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reference_AllParameters_MatchFiniteDifferences(int layers, bool tied, bool dropout, double smoothing, bool bidirectional, AttentionKind feeding)
    {
        var cfg = Config(layers, tied, bidirectional, feeding);
        var rng = new Random(100 + layers);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 3, 7, 7, 3, 2));
        var layout = ParameterLayout.ForSeq2Seq(cfg);
        var p = new double[layout.TotalLength];
        for (int i = 0; i < p.Length; i++) p[i] = (rng.NextDouble() * 2 - 1) * 0.5;
        var reg = Reg(dropout, smoothing);
        var analytic = ScalarReference.Seq2Seq(cfg, p, batch, gradients: true, reg).Gradients;
        var numeric = new double[p.Length];
        const double eps = 1e-5;
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + eps; double plus = ScalarReference.Seq2Seq(cfg, p, batch, false, reg).LossSum;
            p[i] = keep - eps; double minus = ScalarReference.Seq2Seq(cfg, p, batch, false, reg).LossSum;
            p[i] = keep;
            numeric[i] = (plus - minus) / (2 * eps);
        }
        Assert.Contains(analytic, v => Math.Abs(v) > 1e-3);
        Compare.Close("all parameters", numeric, analytic, 1e-6, 1e-3);
        Assert.Equal(tied, !layout.TryGetSlot(ParameterLayout.Names.OutputWeight, out _));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Engine_MatchesReference(int layers, bool tied, bool dropout, double smoothing, bool bidirectional, AttentionKind feeding)
    {
        var cfg = Config(layers, tied, bidirectional, feeding);
        var rng = new Random(200 + layers);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 4, 7, 7, 4, 3));
        var model = Seq2SeqModel.Create(cfg, seed: 5);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.5);
        var pd = model.Parameters.Select(v => (double)v).ToArray();
        var reference = ScalarReference.Seq2Seq(cfg, pd, batch, gradients: true, Reg(dropout, smoothing));

        foreach (int threads in new[] { 1, 2 })
        {
            var ws = new TrainingWorkspace(model, batch.Size, batch.SourceSteps, batch.TargetSteps, threads)
            {
                Dropout = dropout ? Rate : 0f,
                LabelSmoothing = (float)smoothing,
                MaskSource = FixedMasks,
            };
            var grads = new float[model.Layout.TotalLength];
            var stats = ws.ForwardBackward(batch, grads, 1f);
            Assert.Equal(reference.NllSum, stats.LossSum, 1e-5);
            Assert.Equal(reference.LossSum, stats.SmoothedLossSum, 1e-5);
            Compare.Close("logits", reference.Logits.SelectMany(r => r).ToArray(), ws.LastLogits, 1e-5);
            foreach (var slot in model.Layout.Slots)
                Compare.Close(slot.Name, reference.Gradients.AsSpan(slot.Offset, slot.Length), grads.AsSpan(slot.Offset, slot.Length), 1e-4);

            // Evaluation never drops and reports the true NLL: the reference without masks.
            var plain = ScalarReference.Seq2Seq(cfg, pd, batch, gradients: false);
            Assert.Equal(plain.NllSum, ws.Forward(batch).LossSum, 1e-5);
        }
    }

    [Fact]
    public void TiedGradient_IsTheSumOfBothUses()
    {
        var tiedCfg = Config(1, tied: true);
        var rng = new Random(9);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 3, 7, 7, 3, 3));
        var layout = ParameterLayout.ForSeq2Seq(tiedCfg);
        var p = new double[layout.TotalLength];
        for (int i = 0; i < p.Length; i++) p[i] = (rng.NextDouble() * 2 - 1) * 0.5;
        var tiedGrad = ScalarReference.Seq2Seq(tiedCfg, p, batch, true).Gradients;

        // The untied model with out.w = dec.embed: its dec.embed and out.w gradients must add up to the tied one.
        var untiedCfg = tiedCfg with { TiedEmbeddings = false };
        var untied = ParameterLayout.ForSeq2Seq(untiedCfg);
        var q = new double[untied.TotalLength];
        foreach (var slot in layout.Slots) p.AsSpan(slot.Offset, slot.Length).CopyTo(q.AsSpan(untied[slot.Name].Offset));
        var dec = layout[ParameterLayout.Names.DecoderEmbedding];
        p.AsSpan(dec.Offset, dec.Length).CopyTo(q.AsSpan(untied[ParameterLayout.Names.OutputWeight].Offset));
        var untiedGrad = ScalarReference.Seq2Seq(untiedCfg, q, batch, true).Gradients;
        var sum = new double[dec.Length];
        for (int i = 0; i < sum.Length; i++)
            sum[i] = untiedGrad[untied[ParameterLayout.Names.DecoderEmbedding].Offset + i] + untiedGrad[untied[ParameterLayout.Names.OutputWeight].Offset + i];
        Compare.Close("dec.embed", sum, tiedGrad.AsSpan(dec.Offset, dec.Length), 1e-9, 1e-6);
        Assert.Equal(layout.TotalLength + 7 * 5, untied.TotalLength);
    }

    [Fact]
    public void TiedEmbeddings_WithDifferentWidths_IsAClearError()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 7, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, TiedEmbeddings = true }));
        Assert.Equal(nameof(ModelConfig.TiedEmbeddings), e.ParamName);
        Assert.Contains("embedding width (4)", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void HashedDropout_IsAFunctionOfSeedAndStep_NotOfTheThreadCount(bool bidirectional, bool inputFeeding)
    {
        var cfg = new ModelConfig
        {
            SourceVocabSize = 30,
            TargetVocabSize = 40,
            EmbeddingDim = 8,
            HiddenDim = 8,
            Layers = 2,
            BidirectionalEncoder = bidirectional,
            Attention = inputFeeding ? AttentionKind.General : AttentionKind.None,
            InputFeeding = inputFeeding,
        };
        var rng = new Random(4);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 24, 30, 40, 7, 9));
        var model = Seq2SeqModel.Create(cfg, seed: 1);
        (double Loss, float[] Grads) Run(int threads, long step, ulong seed, float rate)
        {
            var ws = new TrainingWorkspace(model, batch.Size, batch.SourceSteps, batch.TargetSteps, threads) { Dropout = rate, DropoutSeed = seed, Step = step };
            var g = new float[model.Layout.TotalLength];
            return (ws.ForwardBackward(batch, g, 1f / batch.RealTargetTokens).LossSum, g);
        }
        var a = Run(1, 5, 42, 0.3f);
        var b = Run(2, 5, 42, 0.3f);
        Assert.Equal(a.Loss, b.Loss);
        Assert.Equal(a.Grads, b.Grads);                    // bit for bit: a resumed run at step 5 makes the same masks
        Assert.NotEqual(a.Loss, Run(1, 6, 42, 0.3f).Loss);  // the next step draws other masks
        Assert.NotEqual(a.Loss, Run(1, 5, 43, 0.3f).Loss);  // so does another seed
        var off = Run(1, 5, 42, 0f);
        var none = new TrainingWorkspace(model, batch.Size, batch.SourceSteps, batch.TargetSteps, 1);
        var g0 = new float[model.Layout.TotalLength];
        Assert.Equal(none.ForwardBackward(batch, g0, 1f / batch.RealTargetTokens).LossSum, off.Loss);
        Assert.Equal(g0, off.Grads);                       // rate 0 is the plain model, bit for bit
    }

    [Fact]
    public void BidirectionalEncoder_DropsBetweenLayers_InBothDirections()
    {
        // Zero the between-layer mask over the forward half of layer 0's output, or over the backward half: the loss
        // changes either way (and differently), so the mask covers both directions' outputs.
        var cfg = Config(2, tied: false, bidirectional: true);
        var rng = new Random(31);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 3, 7, 7, 4, 3));
        var model = Seq2SeqModel.Create(cfg, 6);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.5);
        double Loss(Func<int, bool> zero)
        {
            var ws = new TrainingWorkspace(model, batch.Size, batch.SourceSteps, batch.TargetSteps, 1)
            {
                Dropout = Rate,
                MaskSource = (tensor, keys, bsz, width, mask) =>
                {
                    for (int r = 0; r < keys.Length; r++)
                        for (int j = 0; j < width; j++) mask[r * width + j] = tensor == TrainingWorkspace.DropoutTensor.EncoderLayer(0) && zero(j) ? 0f : 1f;
                },
            };
            return ws.ForwardBackward(batch, new float[model.Layout.TotalLength], 1f).LossSum;
        }
        double none = Loss(_ => false), forwardHalf = Loss(j => j < 3), backwardHalf = Loss(j => j >= 3);
        Assert.Equal(ScalarReference.Seq2Seq(cfg, model.Parameters.Select(v => (double)v).ToArray(), batch, false).LossSum, none, 1e-5);
        Assert.NotEqual(none, forwardHalf, 4);
        Assert.NotEqual(none, backwardHalf, 4);
        Assert.NotEqual(forwardHalf, backwardHalf, 4);
        // The options accept the combination (they refused it before both directions were masked).
        new Seqtalk.Training.TrainingOptions { Dropout = 0.2f, BidirectionalEncoder = true }.Validate();
    }
}
