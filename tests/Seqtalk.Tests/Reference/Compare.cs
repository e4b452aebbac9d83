using System.Globalization;
using System.Text;

namespace Seqtalk.Tests.Reference;

/// <summary>llm.c-style tensor comparison: max abs/rel difference and the first mismatches on failure.</summary>
internal static class Compare
{
    public static void Close(string name, ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double absTol)
    {
        var a = new double[actual.Length];
        for (int i = 0; i < a.Length; i++) a[i] = actual[i];
        Close(name, expected, a, absTol, relFloor: double.PositiveInfinity);
    }

    /// <summary>Passes when every element has |e − a| ≤ absTol, or (when relFloor is finite)
    /// |e − a| / max(|e|, |a|, relFloor) ≤ absTol, i.e. absTol is then a relative bound.</summary>
    public static void Close(string name, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double absTol, double relFloor)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxAbs = 0, maxRel = 0;
        var bad = new StringBuilder();
        int mismatches = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            double scale = Math.Max(Math.Max(Math.Abs(expected[i]), Math.Abs(actual[i])), double.IsPositiveInfinity(relFloor) ? 1e-12 : relFloor);
            double rel = d / scale;
            maxAbs = Math.Max(maxAbs, d);
            maxRel = Math.Max(maxRel, rel);
            bool ok = double.IsPositiveInfinity(relFloor) ? d <= absTol : rel <= absTol;
            if (!ok || double.IsNaN(actual[i]))
            {
                if (mismatches++ < 5)
                    bad.Append(CultureInfo.InvariantCulture, $"\n  [{i}] expected {expected[i]:G9} actual {actual[i]:G9} (abs {d:E2}, rel {rel:E2})");
            }
        }
        Assert.True(mismatches == 0,
            $"{name}: {mismatches} of {expected.Length} elements out of tolerance {absTol:E1}; max abs {maxAbs:E3}, max rel {maxRel:E3}; first mismatches:{bad}");
    }
}
