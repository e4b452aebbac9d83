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

    [Theory]
    [InlineData(AttentionKind.Dot, new[] { "attn.w_c[5,10]@512", "out.w[7,5]@562", "out.b[7]@597" }, 604)]
    [InlineData(AttentionKind.General, new[] { "attn.w_a[5,5]@512", "attn.w_c[5,10]@537", "out.w[7,5]@587", "out.b[7]@622" }, 629)]
    [InlineData(AttentionKind.Bahdanau, new[] { "attn.w_q[5,5]@512", "attn.w_k[5,5]@537", "attn.v[5]@562", "attn.w_c[5,10]@567", "out.w[7,5]@617", "out.b[7]@652" }, 659)]
    public void AttentionLayout_AddsItsTensorsBeforeTheOutput(AttentionKind attention, string[] tail, int total)
    {
        var layout = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Attention = attention });
        var actual = layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]@{s.Offset}").ToArray();
        string[] head =
        [
            "enc.embed[11,4]@0", "enc.l0.w_ih[20,4]@44", "enc.l0.w_hh[20,5]@124", "enc.l0.b_ih[20]@224", "enc.l0.b_hh[20]@244",
            "dec.embed[7,4]@264", "dec.l0.w_ih[20,4]@292", "dec.l0.w_hh[20,5]@372", "dec.l0.b_ih[20]@472", "dec.l0.b_hh[20]@492",
        ];
        Assert.Equal([.. head, .. tail], actual);
        Assert.Equal(total, layout.TotalLength);
    }

    [Fact]
    public void BidirectionalLayout_HasBothDirectionsPerLayer_HalfWide()
    {
        var layout = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 6, BidirectionalEncoder = true });
        var actual = layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]@{s.Offset}").ToArray();
        string[] expected =
        [
            "enc.embed[11,4]@0", "enc.l0.w_ih[12,4]@44", "enc.l0.w_hh[12,3]@92", "enc.l0.b_ih[12]@128", "enc.l0.b_hh[12]@140",
            "enc.l0_reverse.w_ih[12,4]@152", "enc.l0_reverse.w_hh[12,3]@200", "enc.l0_reverse.b_ih[12]@236", "enc.l0_reverse.b_hh[12]@248",
            "dec.embed[7,4]@260", "dec.l0.w_ih[24,4]@288", "dec.l0.w_hh[24,6]@384", "dec.l0.b_ih[24]@528", "dec.l0.b_hh[24]@552",
            "out.w[7,6]@576", "out.b[7]@618",
        ];
        Assert.Equal(expected, actual);
        Assert.Equal(625, layout.TotalLength);
        Assert.Throws<ArgumentOutOfRangeException>(() => ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, HiddenDim = 5, BidirectionalEncoder = true }));
    }

    [Fact]
    public void BridgeLayout_AddsTwoLinearsPerLayerBetweenEncoderAndDecoder()
    {
        var layout = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Layers = 2, Bridge = true });
        var names = layout.Slots.Select(s => $"{s.Name}[{string.Join(',', s.Shape)}]").ToArray();
        int first = Array.IndexOf(names, "bridge.l0.w_h[5,5]");
        Assert.Equal("enc.l1.b_hh[20]", names[first - 1]);
        Assert.Equal(
            ["bridge.l0.w_h[5,5]", "bridge.l0.b_h[5]", "bridge.l0.w_c[5,5]", "bridge.l0.b_c[5]",
             "bridge.l1.w_h[5,5]", "bridge.l1.b_h[5]", "bridge.l1.w_c[5,5]", "bridge.l1.b_c[5]", "dec.embed[7,4]"],
            names[first..(first + 9)]);
        var plain = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Layers = 2 });
        Assert.Equal(plain.TotalLength + 2 * (2 * 25 + 2 * 5), layout.TotalLength);
    }

    [Fact]
    public void InputFeedingLayout_WidensOnlyTheFirstDecoderLayersInput()
    {
        var layout = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Layers = 2, Attention = AttentionKind.Dot, InputFeeding = true });
        Assert.Equal([20, 9], layout["dec.l0.w_ih"].Shape);   // [4H, E + H]: embedding columns, then h̃
        Assert.Equal([20, 5], layout["dec.l1.w_ih"].Shape);
        Assert.Equal([20, 4], layout["enc.l0.w_ih"].Shape);
        var plain = ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, EmbeddingDim = 4, HiddenDim = 5, Layers = 2, Attention = AttentionKind.Dot });
        Assert.Equal(plain.TotalLength + 20 * 5, layout.TotalLength);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ParameterLayout.ForSeq2Seq(new ModelConfig { SourceVocabSize = 11, TargetVocabSize = 7, InputFeeding = true }));
        Assert.Equal(nameof(ModelConfig.InputFeeding), e.ParamName);
    }
}
