using System.Globalization;
using System.Text;

namespace Seqtalk.Reporting;

/// <summary>
/// Draws an attention matrix — one row per reply token (the final <c>&lt;/s&gt;</c> step included), one column
/// per source token — as a shaded-block heatmap for the terminal or as an SVG image. Pure functions of the
/// weights and the labels.
/// </summary>
/// <remarks>
/// Terminal widths follow Unicode East Asian Width (UAX #11, as wcwidth does): Wide and Fullwidth characters
/// such as Hangul syllables take two columns, combining marks none, everything else one. The shade characters
/// ░▒▓█ are "ambiguous" width and are counted as one column, as terminals outside CJK locales draw them.
/// </remarks>
internal static class AttentionMap
{
    /// <summary>The shades from empty to full; a weight maps to round(4 · w / max) of them.</summary>
    internal const string Shades = " ░▒▓█";

    /// <summary>Labels wider than this many columns are cut with an ellipsis.</summary>
    internal const int MaxLabelWidth = 12;

    /// <summary>The heatmap as text lines: a header of source tokens, then one line per reply token. Each
    /// column is as wide as its label (at least 2), shaded relative to the largest weight, which a last line states.</summary>
    /// <exception cref="ArgumentException">The weights are not rowLabels.Count rows of columnLabels.Count values.</exception>
    public static string RenderText(float[][] weights, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels)
    {
        CheckShape(weights, rowLabels, columnLabels);
        var rows = rowLabels.Select(Label).ToArray();
        var cols = columnLabels.Select(Label).ToArray();
        int rowWidth = rows.Length == 0 ? 0 : rows.Max(DisplayWidth);
        var widths = cols.Select(c => Math.Max(2, DisplayWidth(c))).ToArray();
        float max = MaxWeight(weights);

        var sb = new StringBuilder();
        var line = new StringBuilder();
        line.Append(' ', rowWidth);
        for (int j = 0; j < cols.Length; j++) line.Append(' ').Append(Pad(cols[j], widths[j]));
        sb.Append(line.ToString().TrimEnd()).Append('\n');
        for (int i = 0; i < rows.Length; i++)
        {
            line.Clear().Append(Pad(rows[i], rowWidth));
            for (int j = 0; j < cols.Length; j++) line.Append(' ').Append(Shade(weights[i][j], max), widths[j]);
            sb.Append(line.ToString().TrimEnd()).Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"(rows: reply tokens, columns: question tokens; █ = {max:0.###}, the largest weight)\n");
        return sb.ToString();
    }

    private const double CellWidth = 44, CellHeight = 26, CharWidth = 7.5, Margin = 16;

    /// <summary>The heatmap as a standalone SVG document: a cell per weight, white (0) to dark blue (1) on an
    /// absolute scale, the weight written in every cell, source tokens over the columns (slanted), reply tokens
    /// before the rows, and a colour scale.</summary>
    /// <exception cref="ArgumentException">The weights are not rowLabels.Count rows of columnLabels.Count values.</exception>
    public static string RenderSvg(float[][] weights, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, string? title = null)
    {
        CheckShape(weights, rowLabels, columnLabels);
        var rows = rowLabels.Select(Label).ToArray();
        var cols = columnLabels.Select(Label).ToArray();
        double rowLabelWidth = (rows.Length == 0 ? 0 : rows.Max(DisplayWidth)) * CharWidth + 12;
        double colLabelHeight = (cols.Length == 0 ? 0 : cols.Max(DisplayWidth)) * CharWidth * 0.72 + 20;   // slanted 45°
        double titleHeight = title is null ? 0 : 28;
        double left = Margin + rowLabelWidth, top = Margin + titleHeight + colLabelHeight;
        double gridWidth = cols.Length * CellWidth, gridHeight = rows.Length * CellHeight;
        double width = Math.Max(left + gridWidth + Margin + colLabelHeight * 0.8, left + 360);
        double height = top + gridHeight + 72;

        var sb = new StringBuilder();
        Svg.Begin(sb, width, height, title ?? "Attention");
        if (title is not null) Svg.Text(sb, Margin, Margin + 14, title, "start", "font-size=\"14\" font-weight=\"600\"");
        for (int j = 0; j < cols.Length; j++)
        {
            double x = left + (j + 0.5) * CellWidth, y = top - 8;
            Svg.Text(sb, x, y, cols[j], "start", $"transform=\"rotate(-45 {Svg.N(x)} {Svg.N(y)})\"");
        }
        for (int i = 0; i < rows.Length; i++)
        {
            double y = top + i * CellHeight;
            Svg.Text(sb, left - 8, y + CellHeight / 2 + 4, rows[i], "end");
            for (int j = 0; j < cols.Length; j++)
            {
                float w = weights[i][j];
                double x = left + j * CellWidth;
                sb.Append(CultureInfo.InvariantCulture,
                    $"<rect x=\"{Svg.N(x)}\" y=\"{Svg.N(y)}\" width=\"{Svg.N(CellWidth)}\" height=\"{Svg.N(CellHeight)}\" fill=\"{Color(w)}\" stroke=\"#ffffff\"><title>{Svg.Escape(rows[i])} → {Svg.Escape(cols[j])}: {w:0.###}</title></rect>\n");
                Svg.Text(sb, x + CellWidth / 2, y + CellHeight / 2 + 4, float.IsFinite(w) ? w.ToString("0.00", CultureInfo.InvariantCulture) : "?", "middle",
                    $"font-size=\"10\" fill=\"{(w > 0.55f ? "#ffffff" : "#333333")}\"");
            }
        }
        // Colour scale under the grid.
        double scaleY = top + gridHeight + 18, scaleX = left;
        for (int k = 0; k <= 10; k++)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{Svg.N(scaleX + k * 14)}\" y=\"{Svg.N(scaleY)}\" width=\"14\" height=\"10\" fill=\"{Color(k / 10f)}\"/>\n");
        }
        Svg.Text(sb, scaleX, scaleY + 24, "0", "middle", "font-size=\"10\" fill=\"#444\"");
        Svg.Text(sb, scaleX + 154, scaleY + 24, "1", "middle", "font-size=\"10\" fill=\"#444\"");
        Svg.Text(sb, scaleX + 170, scaleY + 9, "attention weight", "start", "font-size=\"10\" fill=\"#444\"");
        Svg.Text(sb, scaleX, scaleY + 42, "rows: reply tokens · columns: question tokens", "start", "font-size=\"10\" fill=\"#444\"");
        Svg.End(sb);
        return sb.ToString();
    }

    /// <summary>Row labels for an attention matrix of <paramref name="rows"/> rows over a reply's tokens: the tokens,
    /// then <c>&lt;/s&gt;</c> for the final step when the reply ended there (one row more than tokens). A reply cut
    /// at the length limit has no such step.</summary>
    /// <exception cref="ArgumentException"><paramref name="rows"/> is neither the token count nor one more.</exception>
    public static IReadOnlyList<string> RowLabels(IReadOnlyList<string> tokens, int rows)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (rows == tokens.Count) return tokens;
        if (rows == tokens.Count + 1) return [.. tokens, "</s>"];
        throw new ArgumentException($"The attention matrix has {rows} rows for a reply of {tokens.Count} tokens.", nameof(rows));
    }

    /// <summary>Columns a terminal gives <paramref name="text"/> (UAX #11: Wide/Fullwidth 2, combining 0, other 1).</summary>
    public static int DisplayWidth(string text)
    {
        int width = 0;
        foreach (var rune in text.EnumerateRunes()) width += RuneWidth(rune);
        return width;
    }

    internal static int RuneWidth(Rune rune)
    {
        int c = rune.Value;
        var category = Rune.GetUnicodeCategory(rune);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format) return 0;
        if (c is >= 0x1160 and <= 0x11FF) return 0;   // Hangul medial vowels and final consonants join the initial
        return IsWide(c) ? 2 : 1;
    }

    // East Asian Width W and F ranges (Unicode 15 EastAsianWidth.txt, condensed as wcwidth condenses them).
    private static bool IsWide(int c) =>
        c is >= 0x1100 and <= 0x115F          // Hangul Jamo initial consonants
        or >= 0x231A and <= 0x231B or >= 0x2329 and <= 0x232A or >= 0x23E9 and <= 0x23EC or 0x23F0 or 0x23F3
        or >= 0x25FD and <= 0x25FE or >= 0x2614 and <= 0x2615 or >= 0x2648 and <= 0x2653 or 0x267F or 0x2693
        or 0x26A1 or >= 0x26AA and <= 0x26AB or >= 0x26BD and <= 0x26BE or >= 0x26C4 and <= 0x26C5 or 0x26CE
        or 0x26D4 or 0x26EA or >= 0x26F2 and <= 0x26F3 or 0x26F5 or 0x26FA or 0x26FD or 0x2705
        or >= 0x270A and <= 0x270B or 0x2728 or 0x274C or 0x274E or >= 0x2753 and <= 0x2755 or 0x2757
        or >= 0x2795 and <= 0x2797 or 0x27B0 or 0x27BF or >= 0x2B1B and <= 0x2B1C or 0x2B50 or 0x2B55
        or >= 0x2E80 and <= 0x303E            // CJK radicals, Kangxi, CJK symbols and punctuation
        or >= 0x3041 and <= 0x33FF            // Hiragana … CJK compatibility (Hangul compatibility jamo included)
        or >= 0x3400 and <= 0x4DBF            // CJK extension A
        or >= 0x4E00 and <= 0x9FFF            // CJK unified ideographs
        or >= 0xA000 and <= 0xA4CF            // Yi
        or >= 0xA960 and <= 0xA97F            // Hangul Jamo extended A
        or >= 0xAC00 and <= 0xD7A3            // Hangul syllables
        or >= 0xF900 and <= 0xFAFF            // CJK compatibility ideographs
        or >= 0xFE10 and <= 0xFE19 or >= 0xFE30 and <= 0xFE6F
        or >= 0xFF00 and <= 0xFF60 or >= 0xFFE0 and <= 0xFFE6   // fullwidth forms
        or >= 0x16FE0 and <= 0x18CFF or >= 0x1B000 and <= 0x1B2FF
        or >= 0x1F004 and <= 0x1F004 or 0x1F0CF or 0x1F18E or >= 0x1F191 and <= 0x1F19A
        or >= 0x1F200 and <= 0x1F251 or >= 0x1F300 and <= 0x1F64F   // emoji and pictographs
        or >= 0x1F680 and <= 0x1F6FF or >= 0x1F7E0 and <= 0x1F7EB or >= 0x1F90C and <= 0x1F9FF or >= 0x1FA70 and <= 0x1FAFF
        or >= 0x20000 and <= 0x2FFFD or >= 0x30000 and <= 0x3FFFD;

    private static char Shade(float w, float max)
    {
        if (!float.IsFinite(w) || max <= 0) return Shades[0];
        int level = (int)Math.Round(Math.Clamp(w / max, 0, 1) * (Shades.Length - 1), MidpointRounding.AwayFromZero);
        return Shades[level];
    }

    private static float MaxWeight(float[][] weights)
    {
        float max = 0;
        foreach (var row in weights)
        {
            foreach (float w in row)
            {
                if (float.IsFinite(w) && w > max) max = w;
            }
        }
        return max;
    }

    /// <summary>White → dark blue (#08306b) on an absolute 0–1 scale.</summary>
    private static string Color(float w)
    {
        float t = float.IsFinite(w) ? Math.Clamp(w, 0, 1) : 0;
        int r = (int)Math.Round(255 + (8 - 255) * t), g = (int)Math.Round(255 + (48 - 255) * t), b = (int)Math.Round(255 + (107 - 255) * t);
        return string.Create(CultureInfo.InvariantCulture, $"#{r:x2}{g:x2}{b:x2}");
    }

    /// <summary>A label safe to print: control characters become U+FFFD, spaces show as ·, and it is cut to
    /// <see cref="MaxLabelWidth"/> columns.</summary>
    private static string Label(string text)
    {
        var sb = new StringBuilder();
        int width = 0;
        bool cut = DisplayWidth(text) > MaxLabelWidth;
        foreach (var rune in text.EnumerateRunes())
        {
            var r = Rune.IsControl(rune) ? new Rune('\uFFFD') : rune.Value == ' ' ? new Rune('·') : rune;
            int w = RuneWidth(r);
            if (cut && width + w > MaxLabelWidth - 1)
            {
                sb.Append('…');
                break;
            }
            sb.Append(r.ToString());
            width += w;
        }
        return sb.ToString();
    }

    private static string Pad(string label, int width) => label + new string(' ', Math.Max(0, width - DisplayWidth(label)));

    private static void CheckShape(float[][] weights, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        if (weights.Length != rowLabels.Count)
            throw new ArgumentException($"The attention matrix has {weights.Length} rows but there are {rowLabels.Count} reply tokens.", nameof(weights));
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] is null || weights[i].Length != columnLabels.Count)
                throw new ArgumentException($"Row {i} of the attention matrix has {weights[i]?.Length ?? 0} weights but there are {columnLabels.Count} question tokens.", nameof(weights));
        }
    }
}
