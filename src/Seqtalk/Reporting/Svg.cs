using System.Globalization;
using System.Text;

namespace Seqtalk.Reporting;

/// <summary>Small helpers for writing SVG by hand: invariant numbers, escaped text, axis ticks.</summary>
internal static class Svg
{
    /// <summary>The font every rendering uses; the CJK fallbacks make Hangul labels render in any browser.</summary>
    public const string FontFamily = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans', 'Noto Sans CJK KR', 'Malgun Gothic', 'Apple SD Gothic Neo', 'NanumGothic', sans-serif";

    /// <summary>A number for an attribute: invariant culture, at most 2 decimals.</summary>
    public static string N(double x) => Math.Round(x, 2).ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>Escapes text for element content and attribute values.</summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&apos;"); break;
                // XML 1.0 forbids most control characters even as references: show a replacement character.
                case < ' ' when c is not ('\t' or '\n' or '\r'): sb.Append('\uFFFD'); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Opens an SVG document of the given size with a white background.</summary>
    public static void Begin(StringBuilder sb, double width, double height, string title)
    {
        sb.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{N(width)}\" height=\"{N(height)}\" viewBox=\"0 0 {N(width)} {N(height)}\" font-family=\"{FontFamily}\" font-size=\"12\">\n");
        sb.Append("<title>").Append(Escape(title)).Append("</title>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{N(width)}\" height=\"{N(height)}\" fill=\"#ffffff\"/>\n");
    }

    public static void End(StringBuilder sb) => sb.Append("</svg>\n");

    public static void Text(StringBuilder sb, double x, double y, string text, string anchor = "start", string extra = "")
    {
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(x)}\" y=\"{N(y)}\" text-anchor=\"{anchor}\"{(extra.Length > 0 ? " " + extra : "")}>")
            .Append(Escape(text)).Append("</text>\n");
    }

    /// <summary>"Nice" tick values covering [min, max]: steps of 1, 2 or 5 times a power of ten, about
    /// <paramref name="target"/> of them (Heckbert, "Nice numbers for graph labels", Graphics Gems 1990).</summary>
    public static double[] Ticks(double min, double max, int target = 5)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max)) return [];
        if (max < min) (min, max) = (max, min);
        if (max - min < 1e-12)
        {
            double pad = Math.Abs(min) > 1e-12 ? Math.Abs(min) * 0.1 : 1;
            min -= pad;
            max += pad;
        }
        double raw = (max - min) / Math.Max(1, target);
        double power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double fraction = raw / power;
        double step = fraction switch
        {
            <= 1 => power,
            <= 2 => 2 * power,
            <= 5 => 5 * power,
            _ => 10 * power,
        };
        double first = Math.Floor(min / step) * step, last = Math.Ceiling(max / step) * step;
        int count = (int)Math.Round((last - first) / step) + 1;
        var ticks = new double[count];
        for (int i = 0; i < count; i++) ticks[i] = Math.Round(first + i * step, 12);
        return ticks;
    }

    /// <summary>A tick label with as few decimals as the step needs.</summary>
    public static string TickLabel(double value, double step)
    {
        int decimals = step >= 1 ? 0 : (int)Math.Ceiling(-Math.Log10(step) - 1e-9);
        return value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }
}
