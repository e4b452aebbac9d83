using System.Xml.Linq;
using Seqtalk.Reporting;
using Seqtalk.Training;

namespace Seqtalk.Tests.Reporting;

public class LearningCurvesTests
{
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    private static EpochMetrics Epoch(int n, double train, double? validation, bool best) =>
        new(n, train, 0.1 * n, validation, validation is { } v ? Math.Exp(v) : null, validation is null ? null : 0.05 * n,
            TimeSpan.FromSeconds(1.5 * n), 1000 * n, best);

    [Fact]
    public void Csv_HasOneRowPerEpoch_InvariantNumbers_AndEmptyCellsForMissingValues()
    {
        var epochs = new[] { Epoch(1, 2.5, 3.0, true), Epoch(2, 1.25, null, false), Epoch(3, double.NaN, 2.0, true) };
        var writer = new StringWriter();
        LearningCurves.WriteCsv(writer, epochs);
        var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("epoch,train_loss,train_accuracy,validation_loss,validation_perplexity,validation_accuracy,seconds,tokens_per_second,best", lines[0]);
        Assert.Equal(4, lines.Length);
        Assert.Equal("1,2.5,0.1,3,20.085536923187668,0.05,1.5,1000,1", lines[1]);
        Assert.Equal("2,1.25,0.2,,,,3,2000,0", lines[2]);
        Assert.StartsWith("3,,", lines[3]);
        Assert.All(lines, l => Assert.Equal(LearningCurves.Columns.Length, l.Split(',').Length));
    }

    [Fact]
    public void Svg_IsWellFormed_WithAxesLegendAndOneLinePerSeries()
    {
        var epochs = Enumerable.Range(1, 12).Select(n => Epoch(n, 3.0 / n, 3.5 / Math.Sqrt(n), n == 9)).ToList();
        var doc = XDocument.Parse(LearningCurves.RenderSvg(epochs, bestEpoch: 9));
        var texts = doc.Descendants(s_svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("Learning curves — 12 epochs, best epoch 9", texts);
        Assert.Contains("training", texts);
        Assert.Contains("validation", texts);
        Assert.Contains("best epoch", texts);
        Assert.Equal(2, texts.Count(t => t == "epoch"));   // one x-axis title per panel
        Assert.Contains("12", texts);                      // last epoch tick
        Assert.Contains(texts, t => t.EndsWith('%'));      // accuracy ticks
        // Two panels × (training, validation) polylines of 12 points, plus the two axis polylines.
        var series = doc.Descendants(s_svg + "polyline").Where(p => (string?)p.Attribute("stroke") != "#444").ToList();
        Assert.Equal(4, series.Count);
        Assert.All(series, p => Assert.Equal(12, p.Attribute("points")!.Value.Split(' ').Length));
    }

    [Fact]
    public void Svg_BreaksTheLineAtMissingValues_AndDrawsASingleEpoch()
    {
        var epochs = new[] { Epoch(1, 2, 2.5, true), Epoch(2, double.NaN, 2.4, true), Epoch(3, 1.5, 2.3, true), Epoch(4, 1.4, 2.2, true) };
        var doc = XDocument.Parse(LearningCurves.RenderSvg(epochs, 4));
        var trainLines = doc.Descendants(s_svg + "polyline").Where(p => (string?)p.Attribute("stroke") == "#1f77b4").ToList();
        // Loss: epoch 1 alone (a dot, no line), then epochs 3–4; accuracy: all four epochs.
        Assert.Equal([2, 4], trainLines.Select(p => p.Attribute("points")!.Value.Split(' ').Length));
        Assert.Equal(3 + 4, doc.Descendants(s_svg + "circle").Count(c => (string?)c.Attribute("fill") == "#1f77b4"));

        var one = XDocument.Parse(LearningCurves.RenderSvg([Epoch(1, 2, null, true)], 1));
        Assert.NotEmpty(one.Descendants(s_svg + "circle"));
    }

    [Theory]
    [InlineData(0.0, 1.0, new[] { 0.0, 0.2, 0.4, 0.6, 0.8, 1.0 })]
    [InlineData(2.13, 6.87, new[] { 2.0, 3.0, 4.0, 5.0, 6.0, 7.0 })]
    [InlineData(1.0, 20.0, new[] { 0.0, 5.0, 10.0, 15.0, 20.0 })]
    public void Ticks_AreNiceAndCoverTheRange(double min, double max, double[] expected)
    {
        Assert.Equal(expected, Svg.Ticks(min, max));
    }
}
