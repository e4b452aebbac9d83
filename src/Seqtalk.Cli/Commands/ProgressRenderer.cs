using System.Diagnostics;
using System.Globalization;
using System.Text;
using Seqtalk.Training;

namespace Seqtalk.Cli.Commands;

/// <summary>
/// Renders <see cref="TrainingProgress"/> on stdout. On a terminal: a one-line bar redrawn in place
/// (epoch, step/steps, ETA, loss, tokens/s) and a kept line per epoch. Redirected: exactly one plain
/// line per epoch. Reports arrive on the training thread, so rendering is synchronous and cheap.
/// </summary>
internal sealed class ProgressRenderer : IProgress<TrainingProgress>
{
    private const int BarWidth = 24;
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;
    private readonly bool _interactive = !Console.IsOutputRedirected;
    private readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    private int _drawnLength;

    public void Report(TrainingProgress value)
    {
        if (value.EpochEnd is { } metrics)
        {
            Clear();
            Console.WriteLine(FormatEpoch(value.Epochs, metrics));
            return;
        }
        if (!_interactive) return;
        if (_drawnLength > 0 && _sinceDraw.ElapsedMilliseconds < 100 && value.Step < value.StepsPerEpoch) return;
        _sinceDraw.Restart();
        string line = FormatBar(value);
        int width = TerminalWidth();
        if (width > 1 && line.Length >= width) line = line[..(width - 1)];   // a wrapped line cannot be redrawn
        var text = new StringBuilder("\r").Append(line);
        if (line.Length < _drawnLength) text.Append(' ', _drawnLength - line.Length);
        Console.Write(text.ToString());
        _drawnLength = line.Length;
    }

    private static int TerminalWidth()
    {
        try { return Console.WindowWidth; }
        catch (IOException) { return 0; }
        catch (PlatformNotSupportedException) { return 0; }
    }

    /// <summary>Ends a bar that is still drawn (for instance after an interrupt or an error).</summary>
    public void Finish() => Clear();

    private void Clear()
    {
        if (_drawnLength == 0) return;
        Console.Write("\r" + new string(' ', _drawnLength) + "\r");
        _drawnLength = 0;
    }

    /// <summary>"epoch 3/20  train loss 4.1234  val loss 4.3210  val ppl 75.2  val acc 21.3%  lr 1e-3  12,345 tok/s  2.1s  *best"</summary>
    internal static string FormatEpoch(int epochs, EpochMetrics m)
    {
        var s = new StringBuilder();
        s.Append(s_inv, $"epoch {m.Epoch}/{epochs}  train loss {m.TrainLoss:F4}");
        if (m.ValidationLoss is { } loss) s.Append(s_inv, $"  val loss {loss:F4}");
        if (m.ValidationPerplexity is { } ppl) s.Append(s_inv, $"  val ppl {ppl:F1}");
        if (m.ValidationAccuracy is { } acc) s.Append(s_inv, $"  val acc {acc * 100:F1}%");
        if (double.IsFinite(m.LearningRate)) s.Append(s_inv, $"  lr {m.LearningRate:0.###e+0}");
        s.Append(s_inv, $"  {m.TokensPerSecond:N0} tok/s  {m.Duration.TotalSeconds:F1}s");
        if (m.SkippedSteps > 0) s.Append(s_inv, $"  skipped {m.SkippedSteps} non-finite step(s)");
        if (m.IsBest && m.ValidationLoss is not null) s.Append("  *best");
        return s.ToString();
    }

    /// <summary>"epoch 3/20 [#########.......] 41/120  ETA 1m05s  loss 4.1234  12,345 tok/s"</summary>
    internal static string FormatBar(TrainingProgress p)
    {
        int steps = Math.Max(1, p.StepsPerEpoch);
        int filled = (int)Math.Round((double)BarWidth * Math.Min(p.Step, steps) / steps);
        long done = (long)(p.Epoch - 1) * steps + p.Step;
        long total = (long)p.Epochs * steps;
        string eta = done > 0 ? Duration(p.Elapsed.TotalSeconds / done * (total - done)) : "?";
        return string.Create(s_inv,
            $"epoch {p.Epoch}/{p.Epochs} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {p.Step}/{steps}  ETA {eta}  loss {p.TrainLoss:F4}  {p.TokensPerSecond:N0} tok/s");
    }

    internal static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? string.Create(s_inv, $"{(int)t.TotalHours}h{t.Minutes:D2}m")
            : t.TotalMinutes >= 1 ? string.Create(s_inv, $"{t.Minutes}m{t.Seconds:D2}s")
            : string.Create(s_inv, $"{t.Seconds}s");
    }
}
