using System.Numerics.Tensors;
using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Decoding;

/// <summary>The int8 screen gives the same greedy token as an arg-max over the fp32 logits, including on
/// near ties built to within a few ulps, exact ties (the first index wins) and a banned &lt;unk&gt;.</summary>
[Trait("Category", "Kernels")]
public class GreedyScreenTests
{
    private static Seq2SeqModel Model(int vocab, int hidden, int seed)
    {
        var cfg = new ModelConfig { SourceVocabSize = 7, TargetVocabSize = vocab, EmbeddingDim = 4, HiddenDim = hidden, Layers = 1 };
        var model = Seq2SeqModel.Create(cfg, seed);
        var rng = new Random(seed);
        var w = model.Parameters.AsSpan(model.Layout.OutputWeight.Offset, vocab * hidden);
        for (int i = 0; i < w.Length; i++) w[i] = (float)((rng.NextDouble() * 2 - 1) * 0.6);
        return model;
    }

    /// <summary>The fp32 logits of h as every batched greedy path computes them: MatMulForward's GEMM (told of four rows,
    /// more than MatMulDotRows; only the first is computed).</summary>
    private static float[] Logits(Seq2SeqModel model, float[] h)
    {
        int v = model.Config.TargetVocabSize, hd = model.Config.HiddenDim;
        var x = new float[4 * hd];
        h.CopyTo(x, 0);
        var z = new float[4 * v];
        K.MatMulForward(x, W(model), B(model), z, 4, hd, v, 0, 1);
        return z[..v];
    }

    private static Span<float> W(Seq2SeqModel m) => m.Parameters.AsSpan(m.Layout.OutputWeight.Offset, m.Config.TargetVocabSize * m.Config.HiddenDim);

    private static Span<float> B(Seq2SeqModel m) => m.Parameters.AsSpan(m.Layout["out.b"].Offset, m.Config.TargetVocabSize);

    private static float[] RandomH(Random rng, int hidden, float scale)
    {
        var h = new float[hidden];
        for (int i = 0; i < hidden; i++) h[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return h;
    }

    [Theory]
    [InlineData(300, 50)]
    [InlineData(37, 7)]
    [InlineData(1000, 16)]
    public void ErrorBound_HoldsForEveryLogit_AndIsSmall(int vocab, int hidden)
    {
        var model = Model(vocab, hidden, vocab + hidden);
        var screen = GreedyScreen.For(model);
        Assert.True(screen.Usable);
        Assert.Equal(K.ScreenVnniIsSupported(hidden), screen.Vnni);   // the bound below is the VNNI one wherever the machine has it
        var rng = new Random(11);
        var approx = new float[screen.ApproxLength];
        foreach (float scale in new[] { 1f, 0.01f, 3f })
        {
            for (int trial = 0; trial < 20; trial++)
            {
                var h = RandomH(rng, hidden, scale);
                var z = Logits(model, h);
                double e = screen.ErrorBound(h);
                screen.Approximate(h, approx);
                double worst = 0;
                for (int o = 0; o < vocab; o++) worst = Math.Max(worst, Math.Abs(approx[o] - (double)z[o]));
                Assert.True(worst <= e, $"|approx − z| reached {worst:G9}, above the bound {e:G9}");
                // Not vacuous: the bound is a small fraction of the spread of the logits.
                Assert.True(e < 0.05 * (TensorPrimitives.Max(z) - TensorPrimitives.Min(z)), $"bound {e:G6} against a spread {TensorPrimitives.Max(z) - TensorPrimitives.Min(z):G6}");
            }
        }
    }

    [Fact]
    public void ArgMax_IsTheFp32ArgMax_OnNearAndExactTies()
    {
        const int vocab = 300, hidden = 50;
        var rng = new Random(5);
        int trials = 0, logitsComputed = 0, exactTies = 0, nearWins = 0;
        for (int trial = 0; trial < 60; trial++)
        {
            var model = Model(vocab, hidden, 100 + trial);
            var h = RandomH(rng, hidden, 1f);
            var z = Logits(model, h);
            int best = TensorPrimitives.IndexOfMax(z);
            // Pull a few rows to the best logit: within a few ulps above or below, or exactly equal (a copy of the row,
            // before or after it, so the first index must win).
            var w = W(model);
            var b = B(model);
            for (int k = 0; k < 6; k++)
            {
                int j = rng.Next(vocab);
                if (j == best) continue;
                if (k == 0)
                {
                    w.Slice(best * hidden, hidden).CopyTo(w.Slice(j * hidden, hidden));
                    b[j] = b[best];
                    continue;
                }
                b[j] += z[best] - z[j];
                for (int s = rng.Next(-3, 4); s != 0; s -= Math.Sign(s)) b[j] = s > 0 ? MathF.BitIncrement(b[j]) : MathF.BitDecrement(b[j]);
            }
            int banned = trial % 3 == 0 ? SpecialTokens.UnknownId : -1;
            var exact = Logits(model, h);
            if (banned >= 0) exact[banned] = float.NegativeInfinity;
            int expected = TensorPrimitives.IndexOfMax(exact);
            if (exact.Count(v => v == exact[expected]) > 1) exactTies++;
            if (expected != best) nearWins++;

            var screen = GreedyScreen.For(model);   // a new model: its own copy of the adjusted weights
            var approx = new float[screen.ApproxLength];
            var candidates = new int[vocab];
            var values = new float[vocab];
            int actual = screen.ArgMax(h, W(model), B(model), banned, approx, candidates, values, out int count, out float logit);
            Assert.Equal(expected, actual);
            Assert.Equal(BitConverter.SingleToInt32Bits(exact[expected]), BitConverter.SingleToInt32Bits(logit));   // the GEMM's float
            trials++;
            logitsComputed += count;
        }
        Assert.True(exactTies > 5 && nearWins > 5, $"the sample must hold exact ties ({exactTies}) and near rows that win ({nearWins})");
        Assert.True(logitsComputed < trials * 20, $"the screen computed {logitsComputed} fp32 logits in {trials} rows: it should rule out most of {vocab}");
    }

    [Fact]
    public void ArgMaxRows_AreArgMaxRowByRow_ForEveryRowCount()
    {
        const int vocab = 300, hidden = 50;
        var model = Model(vocab, hidden, 77);
        var screen = GreedyScreen.For(model);
        if (!screen.Vnni)
        {
            // Without AVX-VNNI the session never calls it; it refuses rather than answer from another path.
            Assert.Throws<InvalidOperationException>(() => screen.ArgMaxRows(new float[hidden], 1, W(model), B(model), -1, new GreedyScreen.Scratch(screen), new int[1], new float[1], out _));
            return;
        }
        var rng = new Random(3);
        var scratch = new GreedyScreen.Scratch(screen);
        foreach (int rows in new[] { 1, 2, 3, 4, 5, 8, 9, 13 })
        {
            foreach (int banned in new[] { -1, SpecialTokens.UnknownId })
            {
                var x = RandomH(rng, rows * hidden, 1f);
                // Two rows that are copies, and a row of zeros: the screen's answers do not depend on the neighbours.
                if (rows > 2) x.AsSpan(0, hidden).CopyTo(x.AsSpan(2 * hidden));
                if (rows > 3) x.AsSpan(3 * hidden, hidden).Clear();
                var next = new int[rows];
                var logits = new float[rows];
                Assert.True(screen.ArgMaxRows(x, rows, W(model), B(model), banned, scratch, next, logits, out long computed));
                // Few fp32 logits a row, but every one for the zero row: its logits are the biases, all equal here.
                Assert.InRange(computed, rows, rows * 20L + (rows > 3 ? vocab : 0));
                for (int r = 0; r < rows; r++)
                {
                    var h = x.AsSpan(r * hidden, hidden).ToArray();
                    var z = Logits(model, h);
                    if (banned >= 0) z[banned] = float.NegativeInfinity;
                    int expected = TensorPrimitives.IndexOfMax(z);
                    Assert.Equal(expected, next[r]);
                    Assert.Equal(BitConverter.SingleToInt32Bits(z[expected]), BitConverter.SingleToInt32Bits(logits[r]));
                }
            }
        }
        var bad = RandomH(rng, 5 * hidden, 1f);
        bad[4 * hidden + 3] = float.PositiveInfinity;
        Assert.False(screen.ArgMaxRows(bad, 5, W(model), B(model), -1, scratch, new int[5], new float[5], out _));
    }

    [Fact]
    public void ArgMax_GivesUp_OnAnHThatIsNotFinite()
    {
        var model = Model(40, 8, 1);
        var screen = GreedyScreen.For(model);
        var h = new float[8];
        h[3] = float.NaN;
        Assert.Equal(-1, screen.ArgMax(h, W(model), B(model), -1, new float[screen.ApproxLength], new int[40], new float[40], out _, out _));
    }

    [Theory]
    [InlineData(1, AttentionKind.None)]
    [InlineData(2, AttentionKind.General)]
    [InlineData(1, AttentionKind.Bahdanau)]
    public void Session_RepliesAreTheSame_WithAndWithoutTheScreen(int layers, AttentionKind attention)
    {
        var model = TestBatches.RandomDecodingModel(layers, parameterSeed: 23, attention);
        model.Parameters[model.Layout["out.b"].Offset + SpecialTokens.UnknownId] += 1.5f;   // <unk> would win sometimes
        var sources = TestBatches.RandomPairs(new Random(8), 40, 15, 12, 6, 1).Select(p => p.Source).ToArray();
        var fast = new InferenceSession(model, maxBatch: 16);
        var exact = new InferenceSession(model, maxBatch: 16) { UseScreen = false };
        int[] sizes = [1, 2, 3, 4, 7, 12, 16];   // every step of up to 16 rows is screened, row by row
        foreach (bool ban in new[] { true, false })
        {
            for (int k = 0, start = 0; k < 2 * sizes.Length; k++, start = (start + sizes[k % sizes.Length]) % sources.Length)
            {
                var part = sources.Skip(start).Concat(sources).Take(sizes[k % sizes.Length]).ToArray();
                var a = fast.GreedyDecode(part, 8, ban);
                var e = exact.GreedyDecode(part, 8, ban);
                Assert.Equal(e, a);
            }
        }
        Assert.True(fast.ScreenedRows > 0, "the screen was not used");
        Assert.Equal(0, exact.ScreenedRows);
    }

    [Fact]
    public void Session_TwoRowBlocks_GiveTheRepliesDecodedAlone()
    {
        var cfg = new ModelConfig { SourceVocabSize = 15, TargetVocabSize = 203, EmbeddingDim = 8, HiddenDim = 16, Layers = 1 };
        var model = Seq2SeqModel.Create(cfg, 4);
        var rng = new Random(31);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.9);
        model.Parameters[model.Layout["out.b"].Offset + SpecialTokens.EndId] += 1.2f;   // some replies end early
        var sources = TestBatches.RandomPairs(new Random(9), 150, 15, 12, 6, 1).Select(p => p.Source).ToArray();
        var session = new InferenceSession(model, maxBatch: 70);   // two row blocks, the second short
        var alone = new InferenceSession(model, maxBatch: 1);
        foreach (bool ban in new[] { true, false })
        {
            var batched = session.GreedyDecode(sources, 10, ban);
            Assert.Contains(batched, r => r.Length < 10);
            Assert.Contains(batched, r => r.Length == 10);
            Assert.True(batched.Select(r => string.Join(',', r)).Distinct().Count() > 20, "replies should differ from question to question");
            Assert.Equal(batched, sources.Select(src => alone.GreedyDecode([src], 10, ban)[0]));
        }
    }
}
