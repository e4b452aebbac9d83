// llm.c's check_tensor for our tests: compare every tensor, log one line per tensor (max abs and rel
// difference, where, how many outside the tolerance) plus its first mismatches, and fail once at the
// end with the whole log, so a CI failure is diagnosable from the log alone.

using System.Globalization;
using System.Text;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Parity;

internal sealed class ParityLog
{
    private const int MismatchesShown = 5;
    // Relative differences are reported only where |expected| is at least this (a gradient of 1e-12
    // that comes out as 1e-11 is not news). The pass/fail decision is absolute, as STYLE.md says.
    private const double RelativeFloor = 1e-6;

    private readonly StringBuilder _text = new();
    private readonly string _title;

    public ParityLog(string title) => _title = title;

    public bool Failed { get; private set; }

    /// <summary>Per element |actual - expected| ≤ tolerance. NaN or ∞ in actual always fails.</summary>
    public void Check(string name, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, int[] shape, double tolerance)
    {
        var widened = new double[actual.Length];
        for (int i = 0; i < actual.Length; i++)
            widened[i] = actual[i];
        Check(name, (ReadOnlySpan<double>)widened, expected, shape, tolerance);
    }

    /// <inheritdoc cref="Check(string, ReadOnlySpan{float}, ReadOnlySpan{double}, int[], double)"/>
    public void Check(string name, ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, int[] shape, double tolerance)
    {
        string shapeText = "[" + string.Join(',', shape) + "]";
        if (actual.Length != expected.Length)
        {
            Failed = true;
            Line($"FAIL {name} {shapeText}: {actual.Length} values, expected {expected.Length}");
            return;
        }

        double maxAbs = 0, maxRel = 0;
        int maxAbsAt = -1, maxRelAt = -1, outside = 0;
        var first = new List<string>();
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i], d = Math.Abs(a - e);
            if (!(d <= tolerance))      // also true for NaN
            {
                outside++;
                if (first.Count < MismatchesShown)
                    first.Add(Inv($"      {name}{Index(i, shape)}: got {a:R}, expected {e:R}, diff {d:E2}"));
            }
            if (double.IsNaN(d) || d > maxAbs) { maxAbs = double.IsNaN(d) ? double.PositiveInfinity : d; maxAbsAt = i; }
            double rel = double.IsNaN(d) ? double.PositiveInfinity : Math.Abs(e) >= RelativeFloor ? d / Math.Abs(e) : 0;
            if (rel > maxRel) { maxRel = rel; maxRelAt = i; }
        }
        Failed |= outside > 0;
        string absAt = maxAbsAt < 0 ? "" : " at " + Index(maxAbsAt, shape);
        string relAt = maxRelAt < 0 ? "" : " at " + Index(maxRelAt, shape);
        Line(Inv($"{(outside == 0 ? "ok  " : "FAIL")} {name} {shapeText}: max abs {maxAbs:E2}{absAt}, max rel {maxRel:E2}{relAt}, tolerance {tolerance:E0}, {outside}/{actual.Length} outside"));
        foreach (string line in first)
            Line(line);
    }

    public void CheckScalar(string name, double actual, double expected, double tolerance)
    {
        double d = Math.Abs(actual - expected);
        bool ok = d <= tolerance;
        Failed |= !ok;
        Line(Inv($"{(ok ? "ok  " : "FAIL")} {name}: got {actual:R}, expected {expected:R}, diff {d:E2}, tolerance {tolerance:E0}"));
    }

    public void CheckEqual<T>(string name, T actual, T expected)
    {
        bool ok = EqualityComparer<T>.Default.Equals(actual, expected);
        Failed |= !ok;
        Line($"{(ok ? "ok  " : "FAIL")} {name}: got {actual}, expected {expected}");
    }

    /// <summary>Writes the log to the test output and fails with it if any check failed.</summary>
    public void AssertPassed(ITestOutputHelper output)
    {
        string text = _title + Environment.NewLine + _text;
        output.WriteLine(text);
        if (Failed)
            Assert.Fail(text);
    }

    private void Line(string line) => _text.AppendLine(line);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Flat index → "[i,j,k]" for a row-major shape.</summary>
    internal static string Index(int flat, int[] shape)
    {
        var parts = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            parts[d] = flat % shape[d];
            flat /= shape[d];
        }
        return "[" + string.Join(',', parts) + "]";
    }
}
