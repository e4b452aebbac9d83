using static Seqtalk.Tests.Kernels.KernelTestData;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Tests.Kernels;

/// <summary>Counter-based dropout masks and the dropout forward/backward against their scalar twins, with sentinel
/// tails; the masks' statistics and their independence from row order.</summary>
[Trait("Category", "Kernels")]
public class DropoutKernelTests
{
    public static TheoryData<int, int> MaskShapes => Shapes();

    [Theory]
    [MemberData(nameof(MaskShapes))]
    public void Mask_MatchesScalarTwin_AndTakesOnlyTwoValues(int rows, int width)
    {
        var keys = Enumerable.Range(0, rows).Select(r => 3 * r + 1).ToArray();
        foreach (float p in new[] { 0f, 0.1f, 0.5f, 0.9f })
        {
            ulong key = K.DropoutKey(42, 7, 3);
            var a = Random(new Random(1), rows * width); var s = Random(new Random(1), rows * width);
            K.DropoutMask(key, keys, a.AsSpan(0, rows * width), p, width, 0, rows);
            K.DropoutMaskScalar(key, keys, s, p, width, 0, rows);
            AssertTail(a, rows * width, "mask");
            Assert.Equal(s, a);
            float scale = 1f / (1f - p);
            Assert.All(a.Take(rows * width), m => Assert.True(m == 0f || m == scale, $"mask value {m}"));
            if (p == 0f) Assert.All(a.Take(rows * width), m => Assert.Equal(1f, m));
        }
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.2f)]
    [InlineData(0.5f)]
    public void Mask_DropsTheRightShare_AndEachStepTensorAndSeedGivesAnotherMask(float p)
    {
        const int rows = 64, width = 100;
        var keys = Enumerable.Range(0, rows).ToArray();
        float[] Mask(ulong seed, long step, int tensor)
        {
            var m = new float[rows * width];
            K.DropoutMask(K.DropoutKey(seed, step, tensor), keys, m, p, width, 0, rows);
            return m;
        }
        var baseline = Mask(1, 1, 0);
        double dropped = baseline.Count(v => v == 0f) / (double)baseline.Length;
        // 6400 Bernoulli(p) draws: the standard deviation of the share is at most 0.00625; allow 4 of them.
        Assert.InRange(dropped, p - 0.025, p + 0.025);
        Assert.Equal(baseline, Mask(1, 1, 0));                  // a pure function of (seed, step, tensor, element)
        foreach (var other in new[] { Mask(1, 2, 0), Mask(1, 1, 1), Mask(2, 1, 0) })
        {
            double agree = baseline.Zip(other, (x, y) => x == y ? 1.0 : 0.0).Average();
            // Independent masks agree on p² + (1−p)² of the elements.
            Assert.InRange(agree, p * p + (1 - p) * (1 - p) - 0.03, p * p + (1 - p) * (1 - p) + 0.03);
        }
    }

    [Fact]
    public void Mask_DependsOnTheRowKeyNotOnTheRowPosition()
    {
        const int width = 21;
        int[] keys = [5, 0, 9, 2], reversed = [2, 9, 0, 5];
        ulong key = K.DropoutKey(9, 3, 16);
        var a = new float[keys.Length * width]; var b = new float[keys.Length * width];
        K.DropoutMask(key, keys, a, 0.4f, width, 0, keys.Length);
        K.DropoutMask(key, reversed, b, 0.4f, width, 0, keys.Length);
        for (int r = 0; r < keys.Length; r++)
            Assert.Equal(a.AsSpan(r * width, width).ToArray(), b.AsSpan((keys.Length - 1 - r) * width, width).ToArray());
        // A row range fills only its rows.
        var part = new float[keys.Length * width];
        K.DropoutMask(key, keys, part, 0.4f, width, 1, 3);
        Assert.All(part.Take(width).Concat(part.Skip(3 * width)), v => Assert.Equal(0f, v));
        Assert.Equal(a.AsSpan(width, 2 * width).ToArray(), part.AsSpan(width, 2 * width).ToArray());
    }

    public static TheoryData<int> AllLengths => Lengths();

    [Theory]
    [MemberData(nameof(AllLengths))]
    public void ForwardAndBackward_MatchScalarTwins_InPlaceToo(int n)
    {
        var rng = new Random(n + 17);
        var x = Random(rng, n);
        var mask = new float[n];
        for (int i = 0; i < n; i++) mask[i] = rng.Next(3) == 0 ? 0f : 1f / 0.7f;
        var y = Random(rng, n); var ys = Random(rng, n);
        K.DropoutForward(x.AsSpan(0, n), mask, y.AsSpan(0, n));
        K.DropoutForwardScalar(x.AsSpan(0, n), mask, ys);
        AssertTail(y, n, "y");
        Assert.Equal(ys.Take(n), y.Take(n));
        var dx = Random(rng, n); var dxs = Random(rng, n);
        K.DropoutBackward(y.AsSpan(0, n), mask, dx.AsSpan(0, n));
        K.DropoutBackwardScalar(y.AsSpan(0, n), mask, dxs);
        AssertTail(dx, n, "dx");
        Assert.Equal(dxs.Take(n), dx.Take(n));
        for (int i = 0; i < n; i++) Assert.Equal(x[i] * mask[i], y[i]);
        var inPlace = (float[])x.Clone();
        K.DropoutForward(inPlace.AsSpan(0, n), mask, inPlace.AsSpan(0, n));
        Assert.Equal(y.Take(n), inPlace.Take(n));
        AssertTail(inPlace, n, "in place");
    }
}
