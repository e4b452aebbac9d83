using Seqtalk.Nn;

namespace Seqtalk.Tests;

public class ParameterLayoutTests
{
    [Fact]
    public void Seq2SeqLayout_PinsNamesShapesAndOrder()
    {
        var layout = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5 });
        var actual = layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]@{s.Offset}").ToArray();
        string[] expected =
        [
            "enc.embed[11,4]@0", "enc.l0.w_ih[20,4]@44", "enc.l0.w_hh[20,5]@124", "enc.l0.b_ih[20]@224", "enc.l0.b_hh[20]@244",
            "dec.embed[7,4]@264", "dec.l0.w_ih[20,4]@292", "dec.l0.w_hh[20,5]@372", "dec.l0.b_ih[20]@472", "dec.l0.b_hh[20]@492",
            "out.w[7,5]@512", "out.b[7]@547",
        ];
        Assert.Equal(expected, actual);
        Assert.Equal(554, layout.TotalLength);
    }
}
