using System.Runtime.Intrinsics;

namespace Seqtalk.Tests.Kernels;

/// <summary>Shared inputs for the kernel tables: every length up to 2·Vector512&lt;float&gt;.Count + 3,
/// awkward matrix shapes, seeded random data and sentinel tails that catch out-of-bounds writes.</summary>
internal static class KernelTestData
{
    public const float Sentinel = -12345.678f;
    public const int Tail = 16;
    public static readonly int MaxLength = 2 * Vector512<float>.Count + 3;

    /// <summary>(rows, width): width 0..MaxLength with 3 rows, then {1,1}, {5,7}, {7,13}, {2,17}. Every row must
    /// differ from the others: xunit skips a row equal to an earlier one (test.sh fails the run when it does).</summary>
    public static TheoryData<int, int> Shapes(int minWidth = 0)
    {
        var data = new TheoryData<int, int>();
        for (int w = minWidth; w <= MaxLength; w++) data.Add(3, w);
        data.Add(1, 1); data.Add(5, 7); data.Add(7, 13); data.Add(2, 17);
        return data;
    }

    public static TheoryData<int> Lengths()
    {
        var data = new TheoryData<int>();
        for (int n = 0; n <= MaxLength; n++) data.Add(n);
        data.Add(1000);
        return data;
    }

    /// <summary>length + Tail floats: random in [-scale, scale) then the sentinel tail.</summary>
    public static float[] Random(Random rng, int length, float scale = 1f)
    {
        var a = new float[length + Tail];
        for (int i = 0; i < length; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        a.AsSpan(length).Fill(Sentinel);
        return a;
    }

    public static void AssertTail(float[] a, int length, string name)
    {
        for (int i = length; i < a.Length; i++)
            Assert.True(a[i] == Sentinel, $"{name}: out-of-bounds write at {i} (length {length})");
    }

    public static void AssertClose(float[] expected, float[] actual, int length, float tol, string name)
    {
        for (int i = 0; i < length; i++)
        {
            float e = expected[i], a = actual[i];
            Assert.False(float.IsNaN(a), $"{name}[{i}] is NaN");
            float err = MathF.Abs(e - a) / MathF.Max(1f, MathF.Abs(e));
            Assert.True(err <= tol, $"{name}[{i}]: expected {e:G9}, actual {a:G9} (length {length})");
        }
    }
}
