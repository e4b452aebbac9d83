using Seqtalk.Data;
using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Nn;

/// <summary>Builds engine batches the way the batcher does (rows sorted by source length, longest
/// first, post-padded with 0, &lt;s&gt; y / y &lt;/s&gt;), independent of the Data folder.</summary>
internal static class TestBatches
{
    public static Batch Make(IReadOnlyList<(int[] Source, int[] Target)> pairs)
    {
        var rows = pairs.Select((p, i) => (p, i)).OrderByDescending(x => x.p.Source.Length).ThenBy(x => x.i).Select(x => x.p).ToArray();
        int b = rows.Length, ts = rows.Max(r => r.Source.Length), tt = rows.Max(r => r.Target.Length) + 1;
        var src = new int[b * ts]; var din = new int[b * tt]; var dtg = new int[b * tt];
        for (int r = 0; r < b; r++)
        {
            rows[r].Source.CopyTo(src, r * ts);
            din[r * tt] = SpecialTokens.StartId;
            rows[r].Target.CopyTo(din, r * tt + 1);
            rows[r].Target.CopyTo(dtg, r * tt);
            dtg[r * tt + rows[r].Target.Length] = SpecialTokens.EndId;
        }
        return new Batch
        {
            Size = b,
            SourceSteps = ts,
            TargetSteps = tt,
            Source = src,
            DecoderInput = din,
            DecoderTarget = dtg,
            SourceLengths = rows.Select(r => r.Source.Length).ToArray(),
            TargetLengths = rows.Select(r => r.Target.Length + 1).ToArray(),
            RealTargetTokens = rows.Sum(r => r.Target.Length + 1),
        };
    }

    /// <summary>Random pairs with ids in [4, vocab) and lengths in [1, maxLen].</summary>
    public static (int[] Source, int[] Target)[] RandomPairs(Random rng, int count, int sourceVocab, int targetVocab, int maxSource, int maxTarget)
    {
        var pairs = new (int[], int[])[count];
        for (int i = 0; i < count; i++)
        {
            var s = new int[rng.Next(1, maxSource + 1)];
            var t = new int[rng.Next(1, maxTarget + 1)];
            for (int j = 0; j < s.Length; j++) s[j] = rng.Next(SpecialTokens.Count, sourceVocab);
            for (int j = 0; j < t.Length; j++) t[j] = rng.Next(SpecialTokens.Count, targetVocab);
            pairs[i] = (s, t);
        }
        return pairs;
    }

    /// <summary>A small model (Vs 15, Vt 12, E 6, H 7 or 8 when bidirectional) with weights uniform in ±0.8 from
    /// <paramref name="parameterSeed"/>: large enough to give varied replies, small enough for exact checks.</summary>
    public static Seq2SeqModel RandomDecodingModel(int layers, int parameterSeed, AttentionKind attention = AttentionKind.None, bool bidirectional = false, bool bridge = false, bool inputFeeding = false)
    {
        var cfg = new ModelConfig
        {
            SourceVocabSize = 15,
            TargetVocabSize = 12,
            EmbeddingDim = 6,
            HiddenDim = bidirectional ? 8 : 7,
            Layers = layers,
            Attention = attention,
            BidirectionalEncoder = bidirectional,
            Bridge = bridge,
            InputFeeding = inputFeeding,
        };
        var model = Seq2SeqModel.Create(cfg, 9);
        var rng = new Random(parameterSeed);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.8);
        return model;
    }
}
