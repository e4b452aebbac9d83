using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

[Trait("Category", "Kernels")]
public class LstmKernelTests
{
    public static TheoryData<int, int> AllShapes => Shapes();

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void CellForward_MatchesScalarTwin_InPlaceToo(int rows, int hidden)
    {
        var rng = new Random(1234 + rows * 100 + hidden);
        int g4 = 4 * hidden;
        var pre = Random(rng, rows * g4, 3f);
        var cPrev = Random(rng, rows * hidden, 2f);
        float[] gates = Random(rng, rows * g4), c = Random(rng, rows * hidden), h = Random(rng, rows * hidden);
        float[] gates2 = Random(rng, rows * g4), c2 = Random(rng, rows * hidden), h2 = Random(rng, rows * hidden);
        Clear(gates, rows * g4); Clear(c, rows * hidden); Clear(h, rows * hidden);
        K.LstmCellForward(pre.AsSpan(0, rows * g4), cPrev.AsSpan(0, rows * hidden), gates.AsSpan(0, rows * g4), c.AsSpan(0, rows * hidden), h.AsSpan(0, rows * hidden), hidden, 0, rows);
        K.LstmCellForwardScalar(pre, cPrev, gates2, c2, h2, hidden, 0, rows);
        AssertClose(gates2, gates, rows * g4, 1e-5f, "gates");
        AssertClose(c2, c, rows * hidden, 1e-5f, "c");
        AssertClose(h2, h, rows * hidden, 1e-5f, "h");
        AssertTail(gates, rows * g4, "gates"); AssertTail(c, rows * hidden, "c"); AssertTail(h, rows * hidden, "h");

        // In place: gates over preGates, c over cPrev.
        var inPre = (float[])pre.Clone(); var inC = (float[])cPrev.Clone(); var inH = Random(rng, rows * hidden);
        K.LstmCellForward(inPre.AsSpan(0, rows * g4), inC.AsSpan(0, rows * hidden), inPre.AsSpan(0, rows * g4), inC.AsSpan(0, rows * hidden), inH.AsSpan(0, rows * hidden), hidden, 0, rows);
        Assert.Equal(gates, inPre);
        Assert.Equal(c, inC);
        Assert.Equal(h.AsSpan(0, rows * hidden).ToArray(), inH.AsSpan(0, rows * hidden).ToArray());
    }

    [Theory]
    [InlineData(100f)]
    [InlineData(1000f)]
    [InlineData(float.MaxValue)]
    public void CellForward_SaturatesWithoutNaN(float big)
    {
        const int hidden = 19;
        var rng = new Random(5);
        var pre = new float[4 * hidden];
        for (int i = 0; i < pre.Length; i++) pre[i] = rng.Next(2) == 0 ? big : -big;
        var cPrev = Random(rng, hidden, 1f);
        float[] gates = new float[4 * hidden], c = new float[hidden], h = new float[hidden];
        K.LstmCellForward(pre, cPrev.AsSpan(0, hidden), gates, c, h, hidden, 0, 1);
        Assert.All(gates, v => Assert.InRange(v, -1f, 1f));
        Assert.All(h, v => Assert.InRange(v, -1f, 1f));
        Assert.All(c, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void CellBackward_MatchesScalarTwin_AndAccumulatesDCPrev(int rows, int hidden)
    {
        var rng = new Random(4321 + rows * 100 + hidden);
        int g4 = 4 * hidden, n = rows * hidden;
        var pre = Random(rng, rows * g4, 3f);
        var cPrev = Random(rng, n, 2f);
        float[] gates = new float[rows * g4], c = new float[n], h = new float[n];
        K.LstmCellForwardScalar(pre, cPrev, gates, c, h, hidden, 0, rows);
        var dH = Random(rng, n); var dC = Random(rng, n);
        var dPre = Random(rng, rows * g4); var dPre2 = Random(rng, rows * g4);
        var dCPrev = Random(rng, n); var dCPrev2 = (float[])dCPrev.Clone();
        K.LstmCellBackward(gates, cPrev.AsSpan(0, n), c, dH.AsSpan(0, n), dC.AsSpan(0, n), dPre.AsSpan(0, rows * g4), dCPrev.AsSpan(0, n), hidden, 0, rows);
        K.LstmCellBackwardScalar(gates, cPrev, c, dH, dC, dPre2, dCPrev2, hidden, 0, rows);
        AssertClose(dPre2, dPre, rows * g4, 1e-5f, "dPre");
        AssertClose(dCPrev2, dCPrev, n, 1e-5f, "dCPrev");
        AssertTail(dPre, rows * g4, "dPre"); AssertTail(dCPrev, n, "dCPrev");
    }

    private static void Clear(float[] a, int length) => a.AsSpan(0, length).Clear();
}
