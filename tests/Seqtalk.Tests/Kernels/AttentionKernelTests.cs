using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>Attention kernels (dot-product and additive, forward and backward) against their scalar twins,
/// with a padded memory (two batch rows, lengths 4 and 2 of 4 steps) and sentinel tails.</summary>
[Trait("Category", "Kernels")]
public class AttentionKernelTests
{
    private const int Batch = 2, Steps = 4;
    private static readonly int[] s_lengths = [4, 2];

    public static TheoryData<int, int> AllShapes => Shapes(minWidth: 1);

    private static int[] RowBatch(int rows) => Enumerable.Range(0, rows).Select(r => r % Batch).ToArray();

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void Dot_ForwardAndBackward_MatchScalarTwin(int rows, int hidden)
    {
        var rng = new Random(1234 + rows * 100 + hidden);
        int mem = Batch * Steps * hidden;
        var q = Random(rng, rows * hidden, 2f); var keys = Random(rng, mem, 2f); var values = Random(rng, mem);
        var rowBatch = RowBatch(rows);
        float[] w = Random(rng, rows * Steps), ctx = Random(rng, rows * hidden), w2 = Random(rng, rows * Steps), ctx2 = Random(rng, rows * hidden);
        K.DotAttentionForward(q.AsSpan(0, rows * hidden), keys.AsSpan(0, mem), values.AsSpan(0, mem), rowBatch, s_lengths,
            w.AsSpan(0, rows * Steps), ctx.AsSpan(0, rows * hidden), Steps, hidden, 0, rows);
        K.DotAttentionForwardScalar(q, keys, values, rowBatch, s_lengths, w2, ctx2, Steps, hidden, 0, rows);
        AssertClose(w2, w, rows * Steps, 1e-5f, "weights");
        AssertClose(ctx2, ctx, rows * hidden, 1e-5f, "context");
        AssertTail(w, rows * Steps, "weights"); AssertTail(ctx, rows * hidden, "context");
        for (int r = 0; r < rows; r++)
        {
            Assert.Equal(1.0, w.AsSpan(r * Steps, Steps).ToArray().Sum(x => (double)x), 5);
            for (int s = s_lengths[rowBatch[r]]; s < Steps; s++) Assert.Equal(0f, w[r * Steps + s]);   // padding masked
        }

        var dCtx = Random(rng, rows * hidden);
        float[] dS = Random(rng, rows * Steps), dQ = Random(rng, rows * hidden), dK = Random(rng, mem), dV = Random(rng, mem);
        float[] dS2 = Random(rng, rows * Steps), dQ2 = (float[])dQ.Clone(), dK2 = (float[])dK.Clone(), dV2 = (float[])dV.Clone();
        K.DotAttentionBackward(q.AsSpan(0, rows * hidden), keys.AsSpan(0, mem), values.AsSpan(0, mem), rowBatch, s_lengths, w.AsSpan(0, rows * Steps),
            dCtx.AsSpan(0, rows * hidden), dS.AsSpan(0, rows * Steps), dQ.AsSpan(0, rows * hidden), dK.AsSpan(0, mem), dV.AsSpan(0, mem), Steps, hidden, 0, rows);
        K.DotAttentionBackwardScalar(q, keys, values, rowBatch, s_lengths, w, dCtx, dS2, dQ2, dK2, dV2, Steps, hidden, 0, rows);
        AssertClose(dS2, dS, rows * Steps, 1e-5f, "dScores");
        AssertClose(dQ2, dQ, rows * hidden, 1e-5f, "dQuery (accumulated)");
        AssertClose(dK2, dK, mem, 1e-5f, "dKeys (accumulated)");
        AssertClose(dV2, dV, mem, 1e-5f, "dValues (accumulated)");
        AssertTail(dS, rows * Steps, "dScores"); AssertTail(dQ, rows * hidden, "dQuery"); AssertTail(dK, mem, "dKeys"); AssertTail(dV, mem, "dValues");
    }

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void Additive_ForwardAndBackward_MatchScalarTwin(int rows, int hidden)
    {
        var rng = new Random(4321 + rows * 100 + hidden);
        int mem = Batch * Steps * hidden, un = rows * Steps * hidden;
        var qp = Random(rng, rows * hidden, 2f); var kp = Random(rng, mem, 2f); var v = Random(rng, hidden, 2f); var values = Random(rng, mem);
        var rowBatch = RowBatch(rows);
        float[] u = Random(rng, un), w = Random(rng, rows * Steps), ctx = Random(rng, rows * hidden);
        float[] u2 = Random(rng, un), w2 = Random(rng, rows * Steps), ctx2 = Random(rng, rows * hidden);
        K.AdditiveAttentionForward(qp.AsSpan(0, rows * hidden), kp.AsSpan(0, mem), v.AsSpan(0, hidden), values.AsSpan(0, mem), rowBatch, s_lengths,
            u.AsSpan(0, un), w.AsSpan(0, rows * Steps), ctx.AsSpan(0, rows * hidden), Steps, hidden, 0, rows);
        K.AdditiveAttentionForwardScalar(qp, kp, v, values, rowBatch, s_lengths, u2, w2, ctx2, Steps, hidden, 0, rows);
        AssertClose(w2, w, rows * Steps, 1e-5f, "weights");
        AssertClose(ctx2, ctx, rows * hidden, 1e-5f, "context");
        AssertTail(w, rows * Steps, "weights"); AssertTail(ctx, rows * hidden, "context"); AssertTail(u, un, "u");

        var dCtx = Random(rng, rows * hidden);
        float[] dS = Random(rng, rows * Steps), scratch = Random(rng, hidden), dVec = Random(rng, hidden), dQ = Random(rng, rows * hidden), dK = Random(rng, mem), dVal = Random(rng, mem);
        float[] dS2 = Random(rng, rows * Steps), dVec2 = (float[])dVec.Clone(), dQ2 = (float[])dQ.Clone(), dK2 = (float[])dK.Clone(), dVal2 = (float[])dVal.Clone();
        K.AdditiveAttentionBackward(v.AsSpan(0, hidden), values.AsSpan(0, mem), rowBatch, s_lengths, u.AsSpan(0, un), w.AsSpan(0, rows * Steps), dCtx.AsSpan(0, rows * hidden),
            dS.AsSpan(0, rows * Steps), scratch.AsSpan(0, hidden), dVec.AsSpan(0, hidden), dQ.AsSpan(0, rows * hidden), dK.AsSpan(0, mem), dVal.AsSpan(0, mem), Steps, hidden, 0, rows);
        K.AdditiveAttentionBackwardScalar(v, values, rowBatch, s_lengths, u, w, dCtx, dS2, dVec2, dQ2, dK2, dVal2, Steps, hidden, 0, rows);
        AssertClose(dS2, dS, rows * Steps, 1e-5f, "dScores");
        AssertClose(dVec2, dVec, hidden, 1e-5f, "dV (accumulated)");
        AssertClose(dQ2, dQ, rows * hidden, 1e-5f, "dQueryProj (accumulated)");
        AssertClose(dK2, dK, mem, 1e-5f, "dKeyProj (accumulated)");
        AssertClose(dVal2, dVal, mem, 1e-5f, "dValues (accumulated)");
        AssertTail(dS, rows * Steps, "dScores"); AssertTail(scratch, hidden, "scratch"); AssertTail(dVec, hidden, "dV");
        AssertTail(dQ, rows * hidden, "dQueryProj"); AssertTail(dK, mem, "dKeyProj"); AssertTail(dVal, mem, "dValues");
    }

    [Fact]
    public void Dot_HugeScores_StayFinite()
    {
        const int hidden = 3;
        float[] q = [1e4f, 1e4f, 1e4f], keys = new float[Batch * Steps * hidden], values = new float[Batch * Steps * hidden];
        for (int i = 0; i < keys.Length; i++) { keys[i] = i % 5; values[i] = i; }
        float[] w = new float[Steps], ctx = new float[hidden];
        K.DotAttentionForward(q, keys, values, [0], s_lengths, w, ctx, Steps, hidden, 0, 1);
        Assert.All(w, x => Assert.True(float.IsFinite(x)));
        Assert.Equal(1f, w.Sum(), 5);
        Assert.All(ctx, x => Assert.True(float.IsFinite(x)));
    }
}
