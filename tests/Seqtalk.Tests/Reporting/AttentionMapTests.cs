using System.Xml.Linq;
using Seqtalk.Reporting;

namespace Seqtalk.Tests.Reporting;

public class AttentionMapTests
{
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    private static readonly float[][] s_weights =
    [
        [0.60f, 0.25f, 0.15f, 0.00f],
        [0.04f, 0.04f, 0.80f, 0.12f],
        [0.25f, 0.25f, 0.25f, 0.25f],
    ];
    private static readonly string[] s_rows = ["날씨가", "좋네요", "</s>"];
    private static readonly string[] s_columns = ["오늘", "날씨", "어때", "?"];

    [Theory]
    [InlineData("abc", 3)]
    [InlineData("안녕", 4)]
    [InlineData("e\u0301", 1)]      // e + combining acute
    [InlineData("😀", 2)]
    [InlineData("ｱＡ", 3)]          // halfwidth katakana 1, fullwidth A 2
    [InlineData("日本", 4)]
    [InlineData("", 0)]
    public void DisplayWidth_FollowsEastAsianWidth(string text, int expected)
    {
        Assert.Equal(expected, AttentionMap.DisplayWidth(text));
    }

    [Fact]
    public void Text_AlignsKoreanLabelsAndShadesRelativeToTheLargestWeight()
    {
        var lines = AttentionMap.RenderText(s_weights, s_rows, s_columns).TrimEnd('\n').Split('\n');
        Assert.Equal(1 + 3 + 1, lines.Length);
        // Row labels padded to 6 columns ("날씨가"); columns 4, 4, 4 and 2 wide, one space between.
        Assert.Equal("       오늘 날씨 어때 ?", lines[0]);
        // Level = round(4 · w / 0.8): 0.6 → 3 ▓, 0.25 → 1.25 → ░, 0.15 → 0.75 → ░, 0.04 → 0.2 → blank, 0.12 → 0.6 → ░.
        Assert.Equal("날씨가 ▓▓▓▓ ░░░░ ░░░░", lines[1]);
        Assert.Equal("좋네요" + new string(' ', 11) + "████ ░░", lines[2]);
        Assert.Equal("</s>   ░░░░ ░░░░ ░░░░ ░░", lines[3]);
        Assert.Contains("█ = 0.8", lines[4]);
        // A full grid line is 6 + (1 + 4) · 3 + 1 + 2 = 24 columns; the header's last label "?" is one column
        // narrower than its cells (trailing spaces are trimmed).
        Assert.Equal(24, AttentionMap.DisplayWidth(lines[3]));
        Assert.Equal(23, AttentionMap.DisplayWidth(lines[0]));
        // The column of the cell with weight 0.8 (the third) starts at the same display column as "어때".
        int headerColumn = AttentionMap.DisplayWidth(lines[0][..lines[0].IndexOf("어때", StringComparison.Ordinal)]);
        int cellColumn = AttentionMap.DisplayWidth(lines[2][..lines[2].IndexOf('█')]);
        Assert.Equal(headerColumn, cellColumn);
    }

    [Fact]
    public void Text_CutsLongLabelsAndHidesControlCharacters()
    {
        var text = AttentionMap.RenderText([[1f]], ["아주아주아주아주긴단어"], ["a\u0007b"]);
        Assert.Contains("아주아주아…", text);
        Assert.DoesNotContain('\u0007', text);
        Assert.Contains("a\uFFFDb", text);
    }

    [Fact]
    public void Shapes_MustMatchTheLabels()
    {
        Assert.Throws<ArgumentException>(() => AttentionMap.RenderText(s_weights, ["a", "b"], s_columns));
        Assert.Throws<ArgumentException>(() => AttentionMap.RenderSvg(s_weights, s_rows, ["a", "b"]));
    }

    [Fact]
    public void Svg_HasACellPerWeightAndEscapedLabels()
    {
        var doc = XDocument.Parse(AttentionMap.RenderSvg(s_weights, ["<unk>", "좋네요", "</s>"], s_columns, "질문: 오늘 날씨 어때?"));
        var cells = doc.Descendants(s_svg + "rect").Where(r => r.Element(s_svg + "title") is not null).ToList();
        Assert.Equal(12, cells.Count);
        string Fill(int i) => cells[i].Attribute("fill")!.Value;
        Assert.True(string.CompareOrdinal(Fill(6), Fill(8)) < 0, "the 0.8 cell is darker than a 0.25 cell");   // row 1 col 2 vs row 2 col 0
        Assert.Equal("#ffffff", cells[3].Attribute("fill")!.Value);     // weight 0 is white
        var texts = doc.Descendants(s_svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("<unk>", texts);                                  // escaped in the file, parsed back
        Assert.Contains("오늘", texts);
        Assert.Contains("0.80", texts);
        Assert.Contains("질문: 오늘 날씨 어때?", texts);
    }

    [Fact]
    public void RowLabels_AddTheEndStepOnlyWhenTheReplyEndedThere()
    {
        Assert.Equal(["좋아요", "!", "</s>"], AttentionMap.RowLabels(["좋아요", "!"], 3));
        Assert.Equal(["좋아요", "!"], AttentionMap.RowLabels(["좋아요", "!"], 2));   // cut at the length limit
        Assert.Throws<ArgumentException>(() => AttentionMap.RowLabels(["좋아요"], 4));
    }
}
