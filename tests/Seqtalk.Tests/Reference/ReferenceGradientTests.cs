using Seqtalk.Nn;
using Seqtalk.Tests.Nn;

namespace Seqtalk.Tests.Reference;

/// <summary>The double-precision reference's analytic gradients against central finite differences.</summary>
public class ReferenceGradientTests
{
    private const double Eps = 1e-5;
    // |analytic − numeric| / max(|analytic|, |numeric|, RelFloor) must stay below MaxRelError.
    private const double RelFloor = 1e-3;
    private const double MaxRelError = 1e-6;

    private static double[] RandomVector(Random rng, int n, double scale)
    {
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (rng.NextDouble() * 2 - 1) * scale;
        return v;
    }

    [Fact]
    public void LstmLayer_WithMasksAndInitialState_MatchesFiniteDifferences()
    {
        var rng = new Random(1234);
        const int B = 3, T = 3, In = 4, H = 5;
        double[] wIh = RandomVector(rng, 4 * H * In, 0.5), wHh = RandomVector(rng, 4 * H * H, 0.5);
        double[] bIh = RandomVector(rng, 4 * H, 0.5), bHh = RandomVector(rng, 4 * H, 0.5);
        double[] h0 = RandomVector(rng, B * H, 0.5), c0 = RandomVector(rng, B * H, 0.5);
        var x = Enumerable.Range(0, T).Select(_ => RandomVector(rng, B * In, 1.0)).ToArray();
        bool[][] mask = [[true, true, true], [true, true, false], [true, false, false]];
        // Random projections turn the vector outputs (every h_t, final h and c) into one scalar.
        var dOut = Enumerable.Range(0, T).Select(_ => RandomVector(rng, B * H, 1.0)).ToArray();
        double[] dHT = RandomVector(rng, B * H, 1.0), dCT = RandomVector(rng, B * H, 1.0);

        double FakeLoss()
        {
            var k = ScalarReference.LstmForward(wIh, wHh, bIh, bHh, In, H, x, mask, h0, c0, B);
            double s = 0;
            for (int t = 0; t < T; t++) for (int i = 0; i < B * H; i++) s += k.H[t][i] * dOut[t][i];
            for (int i = 0; i < B * H; i++) s += k.H[T - 1][i] * dHT[i] + k.C[T - 1][i] * dCT[i];
            return s;
        }

        var cache = ScalarReference.LstmForward(wIh, wHh, bIh, bHh, In, H, x, mask, h0, c0, B);
        var g = ScalarReference.LstmBackward(cache, dOut, dHT, dCT);
        CheckAgainstFd("w_ih", wIh, g.DWIh, FakeLoss);
        CheckAgainstFd("w_hh", wHh, g.DWHh, FakeLoss);
        CheckAgainstFd("b_ih", bIh, g.DBIh, FakeLoss);
        CheckAgainstFd("b_hh", bHh, g.DBHh, FakeLoss);
        CheckAgainstFd("h0", h0, g.DH0, FakeLoss);
        CheckAgainstFd("c0", c0, g.DC0, FakeLoss);
        for (int t = 0; t < T; t++) CheckAgainstFd($"x[{t}]", x[t], g.DX[t], FakeLoss);
        // Masked steps must not see their input at all.
        Assert.All(Enumerable.Range(In, 2 * In), i => Assert.Equal(0.0, g.DX[2][i]));
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    public void Seq2Seq_AllParameters_MatchFiniteDifferences(int layers, int batchSize)
    {
        var cfg = new ModelConfig { SourceVocabSize = 7, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Layers = layers };
        var rng = new Random(42 + layers);
        var batch = TestBatches.Make(TestBatches.RandomPairs(rng, batchSize, 7, 7, 3, 2));
        Assert.True(batch.SourceSteps == 3 || batchSize == 2);
        var p = RandomVector(rng, ParameterLayout.ForSeq2Seq(cfg).TotalLength, 0.5);
        var analytic = ScalarReference.Seq2Seq(cfg, p, batch, gradients: true).Gradients;
        double Loss() => ScalarReference.Seq2Seq(cfg, p, batch, gradients: false).LossSum;
        CheckAgainstFd("all parameters", p, analytic, Loss);
    }

    [Theory]
    [InlineData(AttentionKind.Dot, 1, false)]
    [InlineData(AttentionKind.General, 1, false)]
    [InlineData(AttentionKind.Bahdanau, 1, false)]
    [InlineData(AttentionKind.General, 2, false)]
    [InlineData(AttentionKind.None, 2, true)]
    [InlineData(AttentionKind.General, 1, true)]
    [InlineData(AttentionKind.Bahdanau, 2, true)]
    [InlineData(AttentionKind.None, 2, false, true)]
    [InlineData(AttentionKind.None, 1, true, true)]
    [InlineData(AttentionKind.General, 2, true, true)]
    [InlineData(AttentionKind.Dot, 1, false, false, true)]
    [InlineData(AttentionKind.General, 2, false, false, true)]
    [InlineData(AttentionKind.Bahdanau, 2, false, false, true)]
    [InlineData(AttentionKind.Bahdanau, 1, true, true, true)]
    public void Seq2Seq_WithAttention_AllParameters_MatchFiniteDifferences(AttentionKind attention, int layers, bool bidirectional, bool bridge = false, bool inputFeeding = false)
    {
        // A bidirectional encoder needs an even H (H/2 per direction).
        var cfg = new ModelConfig
        {
            SourceVocabSize = 7,
            TargetVocabSize = 7,
            EmbeddingDim = 4,
            HiddenDim = bidirectional ? 6 : 5,
            Layers = layers,
            Attention = attention,
            BidirectionalEncoder = bidirectional,
            Bridge = bridge,
            InputFeeding = inputFeeding,
        };
        var rng = new Random(42 + layers + (int)attention);
        // Three rows with different source lengths, so the mask over padded source steps matters.
        var batch = TestBatches.Make([([4, 5, 6], [4, 5]), ([6, 4], [5]), ([5], [6, 4])]);
        var layout = ParameterLayout.ForSeq2Seq(cfg);
        var p = RandomVector(rng, layout.TotalLength, 0.5);
        // Larger attention and encoder weights give scores far from uniform, so the score gradients are not tiny.
        foreach (var slot in layout.Slots.Where(s => s.Name.StartsWith("attn.", StringComparison.Ordinal) || s.Name.StartsWith("enc.", StringComparison.Ordinal)))
            RandomVector(rng, slot.Length, 2.0).CopyTo(p, slot.Offset);
        var analytic = ScalarReference.Seq2Seq(cfg, p, batch, gradients: true).Gradients;
        double Loss() => ScalarReference.Seq2Seq(cfg, p, batch, gradients: false).LossSum;
        CheckAgainstFd("all parameters", p, analytic, Loss);
        // Every attention tensor gets a gradient that the relative check above really measures.
        foreach (var slot in layout.Slots.Where(s => s.Name.StartsWith("attn.", StringComparison.Ordinal)))
            Assert.Contains(analytic.AsSpan(slot.Offset, slot.Length).ToArray(), v => Math.Abs(v) > 1e-4);
        foreach (var slot in layout.Slots.Where(s => s.Name.StartsWith("bridge.", StringComparison.Ordinal)))
            Assert.Contains(analytic.AsSpan(slot.Offset, slot.Length).ToArray(), v => Math.Abs(v) > 1e-4);
        Assert.Equal(bridge ? 4 * layers : 0, layout.Slots.Count(s => s.Name.StartsWith("bridge.", StringComparison.Ordinal)));
    }

    private static void CheckAgainstFd(string name, double[] param, double[] analytic, Func<double> loss)
    {
        var numeric = new double[param.Length];
        for (int i = 0; i < param.Length; i++)
        {
            double keep = param[i];
            param[i] = keep + Eps; double plus = loss();
            param[i] = keep - Eps; double minus = loss();
            param[i] = keep;
            numeric[i] = (plus - minus) / (2 * Eps);
        }
        Assert.Contains(analytic, v => Math.Abs(v) > 1e-3);   // the check is not vacuous
        Compare.Close(name, numeric, analytic, MaxRelError, RelFloor);
    }
}
