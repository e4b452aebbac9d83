using System.Globalization;
using System.Text;
using Seqtalk.Training;

namespace Seqtalk.Reporting;

/// <summary>
/// The per-epoch history of a training run as files a person opens: <c>metrics.csv</c> (one row per epoch) and
/// <c>learning-curves.svg</c> (loss and token accuracy against the epoch, training and validation, the best
/// epoch marked). Pure functions of <see cref="TrainingSummary.Epochs"/>; the model directory writes them.
/// </summary>
internal static class LearningCurves
{
    /// <summary>The CSV header; the columns in order.</summary>
    public static readonly string[] Columns =
    [
        "epoch", "train_loss", "train_accuracy", "validation_loss", "validation_perplexity", "validation_accuracy",
        "seconds", "tokens_per_second", "best",
    ];

    /// <summary>Writes one header row and one row per epoch: RFC 4180 CSV, invariant numbers, empty cells for
    /// values that are missing (no validation set) or not finite, <c>best</c> = 1 on the epochs that set a new best.</summary>
    public static void WriteCsv(TextWriter writer, IReadOnlyList<EpochMetrics> epochs)
    {
        writer.Write(string.Join(',', Columns));
        writer.Write('\n');
        foreach (var e in epochs)
        {
            string[] cells =
            [
                e.Epoch.ToString(CultureInfo.InvariantCulture),
                Cell(e.TrainLoss), Cell(e.TrainAccuracy), Cell(e.ValidationLoss), Cell(e.ValidationPerplexity), Cell(e.ValidationAccuracy),
                Cell(Math.Round(e.Duration.TotalSeconds, 3)), Cell(Math.Round(e.TokensPerSecond)), e.IsBest ? "1" : "0",
            ];
            writer.Write(string.Join(',', cells));
            writer.Write('\n');
        }
    }

    private static string Cell(double? x) => x is { } v && double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private const double Width = 960, Height = 420;
    private const double Top = 64, Bottom = 340;
    private static readonly (double Left, double Right)[] s_panels = [(72, 452), (552, 932)];
    private const string TrainColor = "#1f77b4", ValidationColor = "#d62728", BestColor = "#2ca02c";

    /// <summary>Renders the loss and token-accuracy curves as a standalone SVG document.</summary>
    /// <param name="epochs">The finished epochs, in order (may be empty: the axes are drawn with a note).</param>
    /// <param name="bestEpoch">The epoch whose weights were kept (0 for none); a vertical line marks it.</param>
    public static string RenderSvg(IReadOnlyList<EpochMetrics> epochs, int bestEpoch)
    {
        var sb = new StringBuilder();
        Svg.Begin(sb, Width, Height, "Learning curves");
        string title = bestEpoch > 0 ? $"Learning curves — {epochs.Count} epochs, best epoch {bestEpoch}" : $"Learning curves — {epochs.Count} epochs";
        Svg.Text(sb, Width / 2, 28, title, "middle", "font-size=\"16\" font-weight=\"600\"");

        int lastEpoch = epochs.Count == 0 ? 1 : epochs.Max(e => e.Epoch);
        Panel(sb, s_panels[0], "Loss (cross-entropy per token, nats)", epochs, lastEpoch, bestEpoch,
            e => e.TrainLoss, e => e.ValidationLoss, percent: false);
        Panel(sb, s_panels[1], "Token accuracy (teacher forcing)", epochs, lastEpoch, bestEpoch,
            e => e.TrainAccuracy, e => e.ValidationAccuracy, percent: true);

        // Legend, centred under both panels.
        double y = Height - 22, x = Width / 2 - 190;
        LegendLine(sb, x, y, TrainColor, dashed: false, "training");
        LegendLine(sb, x + 130, y, ValidationColor, dashed: true, "validation");
        LegendLine(sb, x + 270, y, BestColor, dashed: true, "best epoch", thin: true);
        Svg.End(sb);
        return sb.ToString();
    }

    private static void Panel(StringBuilder sb, (double Left, double Right) panel, string title, IReadOnlyList<EpochMetrics> epochs,
        int lastEpoch, int bestEpoch, Func<EpochMetrics, double?> train, Func<EpochMetrics, double?> validation, bool percent)
    {
        var (left, right) = panel;
        var values = epochs.SelectMany(e => new[] { train(e), validation(e) }).Where(v => v is { } x && double.IsFinite(x)).Select(v => v!.Value).ToList();
        double lo = values.Count > 0 ? values.Min() : 0, hi = values.Count > 0 ? values.Max() : 1;
        var yTicks = Svg.Ticks(lo, hi);
        double yMin = yTicks[0], yMax = yTicks[^1], yStep = yTicks.Length > 1 ? yTicks[1] - yTicks[0] : 1;
        // Epochs: integer ticks, at most about 10 of them.
        double xMin = lastEpoch == 1 ? 0.5 : 1, xMax = lastEpoch == 1 ? 1.5 : lastEpoch;
        var nice = Svg.Ticks(1, Math.Max(2, lastEpoch), 8);
        int xStep = Math.Max(1, (int)Math.Round(nice[1] - nice[0]));
        double X(double epoch) => left + (epoch - xMin) / (xMax - xMin) * (right - left);
        double Y(double v) => Bottom - (v - yMin) / (yMax - yMin) * (Bottom - Top);

        Svg.Text(sb, (left + right) / 2, Top - 14, title, "middle", "font-size=\"13\" font-weight=\"600\"");
        // Grid and y ticks.
        foreach (double t in yTicks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Svg.N(left)}\" y1=\"{Svg.N(Y(t))}\" x2=\"{Svg.N(right)}\" y2=\"{Svg.N(Y(t))}\" stroke=\"#e6e6e6\"/>\n");
            string label = percent ? Svg.TickLabel(t * 100, yStep * 100) + "%" : Svg.TickLabel(t, yStep);
            Svg.Text(sb, left - 8, Y(t) + 4, label, "end", "fill=\"#444\"");
        }
        // x ticks: epoch 1, then the multiples of the step.
        for (int epoch = 1; epoch <= lastEpoch; epoch = epoch == 1 && xStep > 1 ? xStep : epoch + xStep)
        {
            double x = X(epoch);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Svg.N(x)}\" y1=\"{Svg.N(Bottom)}\" x2=\"{Svg.N(x)}\" y2=\"{Svg.N(Bottom + 5)}\" stroke=\"#444\"/>\n");
            Svg.Text(sb, x, Bottom + 19, epoch.ToString(CultureInfo.InvariantCulture), "middle", "fill=\"#444\"");
        }
        Svg.Text(sb, (left + right) / 2, Bottom + 40, "epoch", "middle", "fill=\"#444\"");
        // Axes.
        sb.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{Svg.N(left)},{Svg.N(Top)} {Svg.N(left)},{Svg.N(Bottom)} {Svg.N(right)},{Svg.N(Bottom)}\" fill=\"none\" stroke=\"#444\"/>\n");

        if (bestEpoch >= 1 && bestEpoch <= lastEpoch)
        {
            double x = X(bestEpoch);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Svg.N(x)}\" y1=\"{Svg.N(Top)}\" x2=\"{Svg.N(x)}\" y2=\"{Svg.N(Bottom)}\" stroke=\"{BestColor}\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"/>\n");
        }
        if (values.Count == 0)
        {
            Svg.Text(sb, (left + right) / 2, (Top + Bottom) / 2, "no finished epoch", "middle", "fill=\"#888\"");
            return;
        }
        Series(sb, epochs, train, X, Y, TrainColor, dashed: false);
        Series(sb, epochs, validation, X, Y, ValidationColor, dashed: true);
    }

    /// <summary>A polyline per run of finite values, and a dot on every point (so one epoch still shows).</summary>
    private static void Series(StringBuilder sb, IReadOnlyList<EpochMetrics> epochs, Func<EpochMetrics, double?> value,
        Func<double, double> x, Func<double, double> y, string color, bool dashed)
    {
        var run = new List<string>();
        void Flush()
        {
            if (run.Count > 1)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{string.Join(' ', run)}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{(dashed ? " stroke-dasharray=\"6 4\"" : "")}/>\n");
            }
            run.Clear();
        }
        foreach (var e in epochs)
        {
            if (value(e) is { } v && double.IsFinite(v)) run.Add($"{Svg.N(x(e.Epoch))},{Svg.N(y(v))}");
            else Flush();
        }
        Flush();
        if (epochs.Count > 60) return;
        foreach (var e in epochs)
        {
            if (value(e) is { } v && double.IsFinite(v))
                sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{Svg.N(x(e.Epoch))}\" cy=\"{Svg.N(y(v))}\" r=\"2.5\" fill=\"{color}\"/>\n");
        }
    }

    private static void LegendLine(StringBuilder sb, double x, double y, string color, bool dashed, string label, bool thin = false)
    {
        sb.Append(CultureInfo.InvariantCulture,
            $"<line x1=\"{Svg.N(x)}\" y1=\"{Svg.N(y - 4)}\" x2=\"{Svg.N(x + 28)}\" y2=\"{Svg.N(y - 4)}\" stroke=\"{color}\" stroke-width=\"{(thin ? "1.5" : "2")}\"{(dashed ? (thin ? " stroke-dasharray=\"2 3\"" : " stroke-dasharray=\"6 4\"") : "")}/>\n");
        Svg.Text(sb, x + 34, y, label);
    }
}
