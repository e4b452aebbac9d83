// PackedWeights: the decoder's and (unidirectional) encoder's LSTM weights and the attention's W_c, key (W_a or W_k) and
// query (W_q) weights, packed once per model into the GEMM's panel layout (Kernels.PackMatMulForwardWeights), so that a
// batched decoding step does not pack [4H, in] and [4H, H] again on every step of every call, nor the key weight for every
// question's encoder outputs. MatMulForwardColumns with a packing gives the same bits as
// MatMulForward without one (Kernels.MatMul), so replies do not change. Rebuilt when the weights change (the model's
// WeightsVersion), like GreedyScreen.
//
// It also holds the input tables: where an LSTM reads nothing but a token's embedding (layer 0 of a unidirectional
// encoder, and of the decoder without input feeding), the step's input product (b_ih + b_hh) + emb[v]·W_ihᵀ is a
// function of the token alone, so it is computed once for every token v of the vocabulary, by the same GEMM (each
// element: the bias, then one FMA per k in order; the GEMM path, whose per-element arithmetic does not depend on the
// rows, as the decoding steps use it), and a step copies the row of each of its tokens instead of multiplying:
// the same bits, a third fewer products per step on the quality preset's model (E 128, H 256). Tables larger than
// MaxInputTableFloats are not built (the steps multiply as before).

using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Seqtalk.Nn;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Decoding;

/// <summary>Packed copies (Wᵀ in GEMM panels) of the weights an inference step multiplies by many rows.</summary>
internal sealed class PackedWeights
{
    private static readonly ConditionalWeakTable<Seq2SeqModel, PackedWeights> Cache = [];

    private readonly float[][] _wIh, _wHh;   // per LSTM (encoder layers, then decoder layers); empty when not packed
    private readonly float[] _wc;            // attention combine [H, 2H], or empty
    private readonly float[] _keys, _query;  // attention key W_a / W_k and query W_q [H, H], or empty
    private readonly float[][] _inputTable;  // per LSTM: [V, 4H] input products of every token (see above), or empty

    /// <summary>Largest input table built, in floats (64 MB).</summary>
    internal const int MaxInputTableFloats = 16 << 20;

    /// <summary>The packing of <paramref name="model"/>'s weights as they are now: built on first use, shared by its
    /// sessions, and built again after the weights changed (<see cref="Seq2SeqModel.WeightsVersion"/>).</summary>
    public static PackedWeights For(Seq2SeqModel model)
    {
        int version = model.WeightsVersion;
        if (Cache.TryGetValue(model, out var packed) && packed.Version == version) return packed;
        packed = new PackedWeights(model, version);
        Cache.AddOrUpdate(model, packed);
        return packed;
    }

    private PackedWeights(Seq2SeqModel model, int version)
    {
        Version = version;
        var cfg = model.Config;
        int layers = cfg.Layers;
        _wIh = new float[2 * layers][];
        _wHh = new float[2 * layers][];
        for (int i = 0; i < 2 * layers; i++)
        {
            bool decoder = i >= layers;
            _wIh[i] = _wHh[i] = [];
            // A bidirectional encoder runs its own per-source path (H/2 per direction): nothing to pack there.
            if (!K.GemmIsVectorized || (!decoder && cfg.BidirectionalEncoder)) continue;
            string prefix = decoder ? ParameterLayout.Names.Decoder : ParameterLayout.Names.Encoder;
            _wIh[i] = Pack(model, model.Layout[ParameterLayout.Names.LstmWeightIh(prefix, i % layers)]);
            _wHh[i] = Pack(model, model.Layout[ParameterLayout.Names.LstmWeightHh(prefix, i % layers)]);
        }
        bool attention = K.GemmIsVectorized && cfg.Attention != AttentionKind.None;
        _wc = attention ? Pack(model, model.Layout[ParameterLayout.Names.AttentionCombine]) : [];
        _keys = attention && cfg.Attention != AttentionKind.Dot
            ? Pack(model, model.Layout[cfg.Attention == AttentionKind.General ? ParameterLayout.Names.AttentionGeneral : ParameterLayout.Names.AttentionKey])
            : [];
        _query = attention && cfg.Attention == AttentionKind.Bahdanau ? Pack(model, model.Layout[ParameterLayout.Names.AttentionQuery]) : [];
        _inputTable = new float[2 * layers][];
        for (int i = 0; i < 2 * layers; i++) _inputTable[i] = [];
        if (!cfg.BidirectionalEncoder) _inputTable[0] = BuildInputTable(model, ParameterLayout.Names.EncoderEmbedding, ParameterLayout.Names.Encoder, _wIh[0]);
        if (!cfg.InputFeeding) _inputTable[layers] = BuildInputTable(model, ParameterLayout.Names.DecoderEmbedding, ParameterLayout.Names.Decoder, _wIh[layers]);
    }

    /// <summary>(b_ih + b_hh) + emb[v]·W_ihᵀ of layer 0 for every token v, by the GEMM; empty without a packing, for a
    /// vocabulary of at most MatMulDotRows tokens (the dot-product path would compute it) or above MaxInputTableFloats.</summary>
    private static float[] BuildInputTable(Seq2SeqModel model, string embedding, string prefix, float[] packedWIh)
    {
        var layout = model.Layout;
        ParameterSlot embed = layout[embedding], wIh = layout[ParameterLayout.Names.LstmWeightIh(prefix, 0)];
        int vocab = embed.Shape[0], e = embed.Shape[1], g = wIh.Shape[0];
        if (packedWIh.Length == 0 || vocab <= K.MatMulDotRows || (long)vocab * g > MaxInputTableFloats) return [];
        var bias = new float[g];
        TensorPrimitives.Add(Slice(model, layout[ParameterLayout.Names.LstmBiasIh(prefix, 0)]), Slice(model, layout[ParameterLayout.Names.LstmBiasHh(prefix, 0)]), bias);
        var table = new float[vocab * g];
        K.MatMulForwardColumns(Slice(model, embed), Slice(model, wIh), packedWIh, bias, table, vocab, e, g, 0, vocab, 0, g, accumulate: false);
        return table;
    }

    private static ReadOnlySpan<float> Slice(Seq2SeqModel model, ParameterSlot slot) => model.Parameters.AsSpan(slot.Offset, slot.Length);

    /// <summary>Wᵀ of a [out, in] weight in the GEMM's panels.</summary>
    private static float[] Pack(Seq2SeqModel model, ParameterSlot slot)
    {
        int outDim = slot.Shape[0], inDim = slot.Shape[1];
        var packed = new float[K.GemmPackedLength(outDim, inDim)];
        K.PackMatMulForwardWeights(Slice(model, slot), inDim, outDim, packed, 0, K.MatMulPackedPanels(outDim));
        return packed;
    }

    /// <summary>The <see cref="Seq2SeqModel.WeightsVersion"/> of the weights packed here.</summary>
    public int Version { get; }

    /// <summary>True while the model's weights are the ones packed here.</summary>
    public bool IsCurrentFor(Seq2SeqModel model) => Version == model.WeightsVersion;

    /// <summary>Packed W_ih of LSTM <paramref name="lstm"/> (encoder layers first), or empty.</summary>
    public ReadOnlySpan<float> InputWeights(int lstm) => _wIh[lstm];

    /// <summary>Packed W_hh of LSTM <paramref name="lstm"/>, or empty.</summary>
    public ReadOnlySpan<float> RecurrentWeights(int lstm) => _wHh[lstm];

    /// <summary>Packed attention combine W_c, or empty.</summary>
    public ReadOnlySpan<float> Combine => _wc;

    /// <summary>Packed attention key weight (general W_a, Bahdanau W_k), or empty.</summary>
    public ReadOnlySpan<float> Keys => _keys;

    /// <summary>Packed Bahdanau query weight W_q, or empty.</summary>
    public ReadOnlySpan<float> Query => _query;

    /// <summary>The input table [V, 4H] of LSTM <paramref name="lstm"/> (encoder layers first), or empty.</summary>
    public ReadOnlySpan<float> InputTable(int lstm) => _inputTable[lstm];
}
