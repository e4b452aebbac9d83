using Seqtalk.Data;
using Seqtalk.Nn;

namespace Seqtalk.Tests.Nn;

public class Seq2SeqModelTests
{
    private static readonly ModelConfig SmallConfig = new() { SourceVocabSize = 13, TargetVocabSize = 11, EmbeddingDim = 6, HiddenDim = 8, Layers = 2 };

    [Fact]
    public void Create_IsReproducibleAndFollowsKerasInitialisation()
    {
        var a = Seq2SeqModel.Create(SmallConfig, seed: 5);
        var b = Seq2SeqModel.Create(SmallConfig, seed: 5);
        var c = Seq2SeqModel.Create(SmallConfig, seed: 6);
        Assert.Equal(a.Parameters, b.Parameters);
        Assert.NotEqual(a.Parameters, c.Parameters);
        int h = SmallConfig.HiddenDim, e = SmallConfig.EmbeddingDim, vt = SmallConfig.TargetVocabSize;
        foreach (var slot in a.Layout.Slots)
        {
            var s = a.Parameters.AsSpan(slot.Offset, slot.Length).ToArray();
            switch (slot.Name)
            {
                case "enc.embed" or "dec.embed":
                    Assert.All(s, v => Assert.InRange(v, -0.05f, 0.05f));
                    Assert.Contains(s, v => Math.Abs(v) > 0.03f);
                    break;
                case "out.w":
                    float lim = MathF.Sqrt(6f / (h + vt));
                    Assert.All(s, v => Assert.InRange(v, -lim, lim));
                    Assert.Contains(s, v => Math.Abs(v) > lim / 2);
                    break;
                case "out.b":
                    Assert.All(s, v => Assert.Equal(0f, v));
                    break;
                default:
                    if (slot.Name.EndsWith(".w_ih"))
                    {
                        int inDim = slot.Shape[1];
                        Assert.Equal(slot.Name.Contains(".l0.") ? e : h, inDim);
                        float l = MathF.Sqrt(6f / (inDim + 4 * h));
                        Assert.All(s, v => Assert.InRange(v, -l, l));
                    }
                    else if (slot.Name.EndsWith(".w_hh"))
                    {
                        // Orthonormal columns: WᵀW = I for W [4H, H] (Keras Orthogonal on the [H, 4H] kernel).
                        for (int i = 0; i < h; i++)
                            for (int j = 0; j < h; j++)
                            {
                                double dot = 0;
                                for (int r = 0; r < 4 * h; r++) dot += (double)s[r * h + i] * s[r * h + j];
                                Assert.Equal(i == j ? 1.0 : 0.0, dot, 1e-5);
                            }
                    }
                    else if (slot.Name.EndsWith(".b_ih"))
                        for (int q = 0; q < 4 * h; q++) Assert.Equal(q >= h && q < 2 * h ? 1f : 0f, s[q]);
                    else
                        Assert.All(s, v => Assert.Equal(0f, v));
                    break;
            }
        }
    }

    [Fact]
    public void FromParameters_RejectsWrongLength()
    {
        var ex = Assert.Throws<SeqtalkException>(() => Seq2SeqModel.FromParameters(SmallConfig, new float[10]));
        Assert.Contains("10", ex.Message);
        var m = Seq2SeqModel.Create(SmallConfig, 1);
        Assert.Same(m.Parameters, Seq2SeqModel.FromParameters(SmallConfig, m.Parameters).Parameters);
    }

    [Fact]
    public void Workspace_BatchBeyondCapacity_ThrowsNamingTheLimit()
    {
        var model = Seq2SeqModel.Create(SmallConfig, 1);
        var ws = new TrainingWorkspace(model, maxBatch: 2, maxSourceSteps: 3, maxTargetSteps: 3, threads: 1);
        var tooMany = TestBatches.Make([([4], [5]), ([4], [5]), ([4], [5])]);
        var tooLongSource = TestBatches.Make([([4, 5, 6, 7], [5])]);
        var tooLongTarget = TestBatches.Make([([4], [5, 6, 7])]);
        Assert.Contains("maxBatch = 2", Assert.Throws<SeqtalkException>(() => ws.Forward(tooMany)).Message);
        Assert.Contains("maxSourceSteps = 3", Assert.Throws<SeqtalkException>(() => ws.Forward(tooLongSource)).Message);
        Assert.Contains("maxTargetSteps = 3", Assert.Throws<SeqtalkException>(() => ws.Forward(tooLongTarget)).Message);
        var badId = TestBatches.Make([([40], [5])]);
        Assert.Contains("vocabulary", Assert.Throws<SeqtalkException>(() => ws.Forward(badId)).Message);
    }

    [Theory]
    [InlineData(AttentionKind.None, false)]
    [InlineData(AttentionKind.Dot, false)]
    [InlineData(AttentionKind.General, false)]
    [InlineData(AttentionKind.Bahdanau, false)]
    [InlineData(AttentionKind.None, true)]
    [InlineData(AttentionKind.Bahdanau, true)]
    [InlineData(AttentionKind.Dot, false, true)]
    [InlineData(AttentionKind.General, true, true)]
    public void Padding_NeverLeaks_BatchLossIsTheSumOfSingleRowLosses(AttentionKind attention, bool bidirectional, bool inputFeeding = false)
    {
        var model = Seq2SeqModel.Create(SmallConfig with { Attention = attention, BidirectionalEncoder = bidirectional, InputFeeding = inputFeeding }, 2);
        var rng = new Random(99);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)((rng.NextDouble() - 0.5) * 0.4);
        var pairs = TestBatches.RandomPairs(rng, 5, 13, 11, 6, 5);
        pairs[0] = (new int[6].Select(_ => 7).ToArray(), [5]);   // one long source so the others are padded
        var ws = new TrainingWorkspace(model, 5, 6, 6, threads: 1);
        double batchLoss = ws.Forward(TestBatches.Make(pairs)).LossSum;
        var gBatch = new float[model.Layout.TotalLength];
        ws.ForwardBackward(TestBatches.Make(pairs), gBatch, 1f);
        double sum = 0;
        var gSum = new float[model.Layout.TotalLength];
        foreach (var p in pairs)
        {
            sum += ws.Forward(TestBatches.Make([p])).LossSum;
            ws.ForwardBackward(TestBatches.Make([p]), gSum, 1f);
        }
        Assert.Equal(sum, batchLoss, 1e-5);
        for (int i = 0; i < gSum.Length; i++) Assert.Equal(gSum[i], gBatch[i], 1e-5f);
    }

    [Theory]
    [InlineData(AttentionKind.None, false)]
    [InlineData(AttentionKind.Dot, false)]
    [InlineData(AttentionKind.General, false)]
    [InlineData(AttentionKind.Bahdanau, false)]
    [InlineData(AttentionKind.None, true)]
    [InlineData(AttentionKind.Bahdanau, true)]
    [InlineData(AttentionKind.General, false, true)]
    public void ThreadCount_DoesNotChangeAnyBit(AttentionKind attention, bool bidirectional, bool inputFeeding = false)
    {
        var cfg = new ModelConfig { SourceVocabSize = 50, TargetVocabSize = 211, EmbeddingDim = 8, HiddenDim = 12, Layers = 2, Attention = attention, BidirectionalEncoder = bidirectional, InputFeeding = inputFeeding };
        var model = Seq2SeqModel.Create(cfg, 11);
        var batch = TestBatches.Make(TestBatches.RandomPairs(new Random(3), 32, 50, 211, 7, 9));
        Assert.True(batch.RealTargetTokens > 2 * 64, "the batch must span several output strands (blocks of 64 rows) to be split across threads");
        var results = new List<(double Loss, float[] Logits, float[] Grads)>();
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var ws = new TrainingWorkspace(model, 32, batch.SourceSteps, batch.TargetSteps, threads);
            var g = new float[model.Layout.TotalLength];
            var stats = ws.ForwardBackward(batch, g, 1f / batch.RealTargetTokens);
            results.Add((stats.LossSum, ws.LastLogits.ToArray(), g));
        }
        foreach (var r in results.Skip(1))
        {
            Assert.Equal(results[0].Loss, r.Loss);
            Assert.Equal(results[0].Logits, r.Logits);
            Assert.Equal(results[0].Grads, r.Grads);
        }
    }

    [Theory]
    [InlineData(AttentionKind.None, false)]
    [InlineData(AttentionKind.Dot, false)]
    [InlineData(AttentionKind.General, false)]
    [InlineData(AttentionKind.Bahdanau, false)]
    [InlineData(AttentionKind.None, true)]
    [InlineData(AttentionKind.Bahdanau, true)]
    [InlineData(AttentionKind.General, true, true)]
    [InlineData(AttentionKind.Bahdanau, false, false, true)]
    public void FloatModel_GradientsMatchFiniteDifferences_Smoke(AttentionKind attention, bool bidirectional, bool bridge = false, bool inputFeeding = false)
    {
        var cfg = new ModelConfig { SourceVocabSize = 9, TargetVocabSize = 8, EmbeddingDim = 4, HiddenDim = bidirectional ? 6 : 5, Layers = 2, Attention = attention, BidirectionalEncoder = bidirectional, Bridge = bridge, InputFeeding = inputFeeding };
        var model = Seq2SeqModel.Create(cfg, 4);
        var rng = new Random(8);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)((rng.NextDouble() - 0.5) * 0.6);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, 3, 9, 8, 4, 3));
        var ws = new TrainingWorkspace(model, 3, batch.SourceSteps, batch.TargetSteps, 1);
        var g = new float[model.Layout.TotalLength];
        ws.ForwardBackward(batch, g, 1f);
        const float eps = 1e-2f;
        double errSum = 0;
        int count = 0;
        foreach (var slot in model.Layout.Slots)
        {
            for (int k = 0; k < 4; k++)
            {
                int i = slot.Offset + rng.Next(slot.Length);
                float keep = model.Parameters[i];
                model.Parameters[i] = keep + eps; double plus = ws.Forward(batch).LossSum;
                model.Parameters[i] = keep - eps; double minus = ws.Forward(batch).LossSum;
                model.Parameters[i] = keep;
                errSum += Math.Abs((plus - minus) / (2 * eps) - g[i]);
                count++;
            }
        }
        Assert.True(errSum / count < 1e-2, $"mean abs error {errSum / count:E3}");
        Assert.Contains(g, v => Math.Abs(v) > 0.1f);
    }

    [Theory]
    [InlineData(AttentionKind.None, false)]
    [InlineData(AttentionKind.Dot, false)]
    [InlineData(AttentionKind.General, false)]
    [InlineData(AttentionKind.Bahdanau, false)]
    [InlineData(AttentionKind.None, true)]
    [InlineData(AttentionKind.Bahdanau, true)]
    [InlineData(AttentionKind.General, false, true)]
    [InlineData(AttentionKind.Bahdanau, false, false, true)]
    [InlineData(AttentionKind.General, true, true, true)]
    public void ForwardBackward_AllocatesNothingAfterTheFirstCall(AttentionKind attention, bool bidirectional, bool bridge = false, bool inputFeeding = false)
    {
        var model = Seq2SeqModel.Create(SmallConfig with { Attention = attention, BidirectionalEncoder = bidirectional, Bridge = bridge, InputFeeding = inputFeeding }, 3);
        var batch = TestBatches.Make(TestBatches.RandomPairs(new Random(4), 6, 13, 11, 5, 4));
        var ws = new TrainingWorkspace(model, 6, batch.SourceSteps, batch.TargetSteps, threads: 1);
        var g = new float[model.Layout.TotalLength];
        ws.ForwardBackward(batch, g, 1f);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) ws.ForwardBackward(batch, g, 1f);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
