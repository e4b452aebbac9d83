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

    [Fact]
    public void FastSigmoidTanhAndExpM1_MatchDoublePrecision_NearZeroAndSaturated()
    {
        // The Vector512 cell's activations (the fallbacks use TensorPrimitives, covered by the scalar-twin tests).
        var xs = new List<float> { 0f, -0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 1e-3f, -1e-3f, 0.1f, -0.1f, 0.17f, -0.35f, 0.5f, -1f, 2f, -5f,
            9f, -15f, 20f, -44f, 45f, 88f, -88f, 100f, -1000f, float.MaxValue, -float.MaxValue };
        var rng = new Random(3);
        for (int k = 0; k < 3000; k++) xs.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-6, 2))));
        while (xs.Count % 16 != 0) xs.Add(0.25f);
        var x = xs.ToArray();
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            Assert.False(K.GemmUses512);   // the cell runs TensorPrimitives there
            return;
        }
        var lanes = new float[16];
        for (int b = 0; b < x.Length; b += 16)
        {
            var v = System.Runtime.Intrinsics.Vector512.Create(x.AsSpan(b, 16));
            System.Runtime.Intrinsics.Vector512.CopyTo(K.SigmoidFast(v), lanes);
            for (int k = 0; k < 16; k++)
            {
                double e = 1 / (1 + Math.Exp(-(double)x[b + k]));
                Assert.True(Math.Abs(lanes[k] - e) <= 1e-6 * e + 1e-38, $"sigmoid({x[b + k]:G9}) = {lanes[k]:G9}, expected {e:G9}");
            }
            System.Runtime.Intrinsics.Vector512.CopyTo(K.TanhFast(v), lanes);
            for (int k = 0; k < 16; k++)
            {
                double e = Math.Tanh(x[b + k]);
                Assert.True(Math.Abs(lanes[k] - e) <= 1e-6 * Math.Abs(e) + 1e-38, $"tanh({x[b + k]:G9}) = {lanes[k]:G9}, expected {e:G9}");
                Assert.Equal(float.IsNegative(x[b + k]) && x[b + k] != 0f, lanes[k] < 0f);
            }
            System.Runtime.Intrinsics.Vector512.CopyTo(K.ExpM1NonPositive(-System.Runtime.Intrinsics.Vector512.Abs(v)), lanes);
            for (int k = 0; k < 16; k++)
            {
                double a = -Math.Abs((double)x[b + k]), e = a < K.ExpLowest ? -1 : Math.Exp(a) - 1;
                if (Math.Abs(a) < 1e-5) e = a + a * a / 2;   // exp(a) − 1 in double cancels there
                Assert.True(Math.Abs(lanes[k] - e) <= 1e-6 * Math.Abs(e) + 1e-38, $"expm1({a:G9}) = {lanes[k]:G9}, expected {e:G9}");
            }
        }
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

    /// <summary>A block of hidden units (as threads run them): its gate columns, c, h, dPre and dCPrev match the
    /// scalar twin, and no other unit's values are touched.</summary>
    [Theory]
    [InlineData(3, 130, 0, 64)]
    [InlineData(3, 130, 64, 128)]
    [InlineData(2, 130, 128, 130)]
    [InlineData(5, 37, 5, 22)]
    public void CellByUnits_WritesOnlyItsUnits_AndMatchesTheScalarTwin(int rows, int hidden, int u0, int u1)
    {
        var rng = new Random(rows * 1000 + hidden + u0);
        int g4 = 4 * hidden, n = rows * hidden;
        const float Mark = -777f;
        var pre = Random(rng, rows * g4, 3f);
        var cPrev = Random(rng, n, 2f);
        float[] gates = Filled(rows * g4, Mark), c = Filled(n, Mark), h = Filled(n, Mark);
        K.LstmCellForward(pre.AsSpan(0, rows * g4), cPrev.AsSpan(0, n), gates, c, h, hidden, 0, rows, u0, u1);
        float[] gates2 = new float[rows * g4], c2 = new float[n], h2 = new float[n];
        K.LstmCellForwardScalar(pre, cPrev, gates2, c2, h2, hidden, 0, rows);
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < hidden; j++)
            {
                bool inside = j >= u0 && j < u1;
                for (int q = 0; q < 4; q++)
                {
                    int i = r * g4 + q * hidden + j;
                    if (inside) Assert.True(Math.Abs(gates2[i] - gates[i]) <= 1e-5f, $"gate {q} [{r},{j}]: {gates[i]} vs {gates2[i]}");
                    else Assert.Equal(Mark, gates[i]);
                }
                int s = r * hidden + j;
                if (inside)
                {
                    Assert.True(Math.Abs(c2[s] - c[s]) <= 1e-5f && Math.Abs(h2[s] - h[s]) <= 1e-5f, $"c, h [{r},{j}]");
                }
                else
                {
                    Assert.Equal(Mark, c[s]);
                    Assert.Equal(Mark, h[s]);
                }
            }
        }

        var dH = Random(rng, n); var dC = Random(rng, n);
        float[] dPre = Filled(rows * g4, Mark), dPre2 = new float[rows * g4];
        var dCPrev = Random(rng, n); var dCPrev2 = (float[])dCPrev.Clone(); var before = (float[])dCPrev.Clone();
        K.LstmCellBackward(gates2, cPrev.AsSpan(0, n), c2, dH.AsSpan(0, n), dC.AsSpan(0, n), dPre, dCPrev.AsSpan(0, n), hidden, 0, rows, u0, u1);
        K.LstmCellBackwardScalar(gates2, cPrev, c2, dH, dC, dPre2, dCPrev2, hidden, 0, rows);
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < hidden; j++)
            {
                bool inside = j >= u0 && j < u1;
                for (int q = 0; q < 4; q++)
                {
                    int i = r * g4 + q * hidden + j;
                    if (inside) Assert.True(Math.Abs(dPre2[i] - dPre[i]) <= 1e-5f, $"dPre {q} [{r},{j}]: {dPre[i]} vs {dPre2[i]}");
                    else Assert.Equal(Mark, dPre[i]);
                }
                int s = r * hidden + j;
                if (inside) Assert.True(Math.Abs(dCPrev2[s] - dCPrev[s]) <= 1e-5f, $"dCPrev [{r},{j}]");
                else Assert.Equal(before[s], dCPrev[s]);
            }
        }
    }

    private static float[] Filled(int length, float value) => Enumerable.Repeat(value, length).ToArray();

    private static void Clear(float[] a, int length) => a.AsSpan(0, length).Clear();
}
