using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Tests.Nn;
using Seqtalk.Text;

namespace Seqtalk.Tests.Decoding;

/// <summary>A request's reply never depends on what it was batched with, checked at the float level: every greedy path
/// (the int8 screen and its exact re-score, the exact fallback, the fused block arg-max, the LSTM and combine steps for
/// any number of active rows) gives a row the same chosen logit, bit for bit, at every step, whatever the batch size, the
/// batch-mates and their order. (ChatModel's threads each decode a share of the questions, so this covers them too.)</summary>
public class BatchIndependenceTests
{
    private const int Questions = 40, MaxSteps = 9, Vocab = 3000;

    public static TheoryData<int, AttentionKind, bool, bool, int> Configs => new()
    {
        // layers, attention, input feeding, ban <unk>, hidden: 40 gives 4H = 160, one group of four 32-column panels
        // and one more (ten 16-column panels with Vector256); 6 puts one row's activations below a vector's width.
        { 1, AttentionKind.None, false, false, 40 },
        { 2, AttentionKind.None, false, true, 40 },
        { 1, AttentionKind.General, true, false, 40 },
        { 2, AttentionKind.General, false, true, 40 },
        { 1, AttentionKind.General, false, true, 6 },
        { 1, AttentionKind.Bahdanau, true, false, 12 },
    };

    /// <summary>A random model with a BPE-size answer vocabulary (so batches of more than 16 rows take the fused block
    /// path, fewer the screen) and a &lt;/s&gt; bias raised until replies end at different steps.</summary>
    private static (Seq2SeqModel Model, int[][] Sources) Setup(int layers, AttentionKind attention, bool feeding, int hidden = 40)
    {
        var cfg = new ModelConfig
        {
            SourceVocabSize = 60,
            TargetVocabSize = Vocab,
            EmbeddingDim = 24,
            HiddenDim = hidden,
            Layers = layers,
            Attention = attention,
            InputFeeding = feeding,
        };
        var model = Seq2SeqModel.Create(cfg, 3);
        var rng = new Random(41 + layers);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] = (float)((rng.NextDouble() * 2 - 1) * 0.5);
        var sources = TestBatches.RandomPairs(new Random(7), Questions - 1, 60, 12, 14, 1).Select(p => p.Source).Append([]).ToArray();
        int endAt = model.Layout["out.b"].Offset + SpecialTokens.EndId;
        var tried = new List<string>();
        for (int tries = 0; tries < 40; tries++)
        {
            var replies = new InferenceSession(model, 8).GreedyDecode(sources, MaxSteps);
            int ended = replies.Count(r => r.Length < MaxSteps), distinct = replies.Select(r => string.Join(',', r)).Distinct().Count();
            if (ended >= Questions / 8 && ended <= 7 * Questions / 8 && distinct >= Questions / 4) return (model, sources);
            tried.Add($"{ended}/{distinct}");
            model.Parameters[endAt] += 0.1f;
            model.WeightsChanged();
        }
        throw new InvalidOperationException($"no </s> bias gave replies of varied lengths and content (ended/distinct: {string.Join(' ', tried)})");
    }

    /// <summary>Decodes <paramref name="sources"/> (indices into the question list given by <paramref name="order"/>) and
    /// returns per question and step the chosen token and the bits of its logit.</summary>
    private static Dictionary<(int Question, int Step), (int Token, int Bits)> Decode(InferenceSession session, int[][] sources, int[] order, bool ban,
        out int[][] replies)
    {
        var seen = new Dictionary<(int, int), (int, int)>();
        session.GreedyObserver = (index, step, token, logit) => seen.Add((order[index], step), (token, BitConverter.SingleToInt32Bits(logit)));
        var decoded = session.GreedyDecode([.. order.Select(i => sources[i])], MaxSteps, ban);
        session.GreedyObserver = null;
        replies = new int[sources.Length][];
        for (int i = 0; i < order.Length; i++) replies[order[i]] = decoded[i];
        return seen;
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void EveryBatchSizeAndOrder_GivesEachRowTheSameTokensAndLogitBits(int layers, AttentionKind attention, bool feeding, bool ban, int hidden)
    {
        var (model, sources) = Setup(layers, attention, feeding, hidden);
        int[] identity = [.. Enumerable.Range(0, Questions)];
        // Alone: one question per call.
        var alone = new InferenceSession(model, 1);
        var expected = Decode(alone, sources, identity, ban, out var aloneReplies);
        Assert.Equal(aloneReplies.Sum(r => Math.Min(r.Length + 1, MaxSteps)), expected.Count);   // every step of every row was seen
        Assert.Contains(aloneReplies, r => r.Length == MaxSteps);
        Assert.Contains(aloneReplies, r => r.Length < MaxSteps);
        if (ban) Assert.DoesNotContain(aloneReplies, r => r.Contains(SpecialTokens.UnknownId));

        var rng = new Random(99);
        int[][] orders =
        [
            identity,
            [.. identity.Reverse()],
            [.. identity.OrderBy(_ => rng.Next())],
            [.. identity.OrderBy(i => sources[i].Length).ThenBy(i => i)],   // short questions together: rows leave in waves
        ];
        long screened = 0;
        for (int batch = 1; batch <= Questions; batch++)
        {
            var session = new InferenceSession(model, batch);
            for (int o = 0; o < orders.Length; o++)
            {
                // Each batch size sees two of the orders (all four over consecutive sizes).
                if ((o + batch) % 2 != 0) continue;
                var seen = Decode(session, sources, orders[o], ban, out var replies);
                Assert.Equal(aloneReplies, replies);
                AssertSameFloats(expected, seen, $"batch {batch}, order {o}");
            }
            screened += session.ScreenedRows;
            // Where the machine has AVX-VNNI every step above went through the VNNI screen; the paths it replaced (the fp32
            // screen row by row up to 16 rows, the fused block projection above) must give the same floats too.
            if (batch % 5 == 2)
            {
                var fp32 = new InferenceSession(model, batch) { UseVnniScreen = false };
                AssertSameFloats(expected, Decode(fp32, sources, orders[1], ban, out var replies), $"batch {batch} without the VNNI screen");
                Assert.Equal(aloneReplies, replies);
            }
            // The exact path of the screened sizes (no screen: whole logits rows through MatMulForward's GEMM).
            if (batch <= 16 && batch % 3 == 1)
            {
                var exact = new InferenceSession(model, batch) { UseScreen = false };
                AssertSameFloats(expected, Decode(exact, sources, orders[2], ban, out var replies), $"batch {batch} without the screen");
                Assert.Equal(aloneReplies, replies);
                Assert.Equal(0, exact.ScreenedRows);
            }
        }
        Assert.True(screened > 0, "no step went through the screen");
        Assert.True(alone.ScreenedRows > 0, "decoding alone did not go through the screen");
    }

    [Fact]
    public void StepApi_AndGreedy_GiveTheSameLogitBits()
    {
        // Step's logits of a row (the beam search and sampling path) are the floats greedy decoding chose from.
        var (model, sources) = Setup(1, AttentionKind.General, false);
        var greedy = new InferenceSession(model, 1);
        var session = new InferenceSession(model, 3);
        int[] identity = [.. Enumerable.Range(0, Questions)];
        var expected = Decode(greedy, sources, identity, false, out var replies);
        var logits = new float[3 * Vocab];
        for (int q = 0; q + 3 <= 12; q += 3)
        {
            session.Encode(sources[q..(q + 3)]);
            int[] inputs = [SpecialTokens.StartId, SpecialTokens.StartId, SpecialTokens.StartId];
            for (int step = 0; step < MaxSteps; step++)
            {
                session.Step(inputs, 3, logits);
                for (int r = 0; r < 3; r++)
                {
                    if (!expected.TryGetValue((q + r, step), out var chosen)) continue;   // that reply ended earlier
                    Assert.Equal(chosen.Bits, BitConverter.SingleToInt32Bits(logits[r * Vocab + chosen.Token]));
                    inputs[r] = chosen.Token;
                }
            }
        }
        Assert.NotEmpty(replies);
    }

    private static void AssertSameFloats(Dictionary<(int Question, int Step), (int Token, int Bits)> expected,
        Dictionary<(int Question, int Step), (int Token, int Bits)> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out var got))
                Assert.Fail($"{what}: question {key.Question} has no step {key.Step}");
            if (got != value)
                Assert.Fail($"{what}: question {key.Question}, step {key.Step}: token {got.Token} logit {BitConverter.Int32BitsToSingle(got.Bits):R}, alone token {value.Token} logit {BitConverter.Int32BitsToSingle(value.Bits):R}");
        }
    }
}
