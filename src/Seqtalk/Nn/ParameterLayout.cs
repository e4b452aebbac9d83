namespace Seqtalk.Nn;

/// <summary>One named tensor inside the flat parameter buffer.</summary>
/// <param name="Name">Serialized name, e.g. <c>"dec.l0.w_ih"</c> (a string constant, never derived from code).</param>
/// <param name="Offset">Start of the tensor in the flat buffer, in floats.</param>
/// <param name="Shape">Row-major shape, PyTorch layout.</param>
internal sealed record ParameterSlot(string Name, int Offset, int[] Shape)
{
    /// <summary>Number of floats.</summary>
    public int Length { get; } = Shape.Aggregate(1, (n, d) => n * d);
}

/// <summary>
/// The single declared list of (name, shape) that drives the flat parameter, gradient and optimizer
/// buffers, clipping and the safetensors names. PyTorch layout: Linear <c>[out, in]</c>; LSTM
/// <c>W_ih [4H, in]</c>, <c>W_hh [4H, H]</c>, biases <c>b_ih [4H]</c>, <c>b_hh [4H]</c>, gate order i, f, g, o.
/// </summary>
internal sealed class ParameterLayout
{
    private readonly Dictionary<string, ParameterSlot> _byName;

    public IReadOnlyList<ParameterSlot> Slots { get; }
    public int TotalLength { get; }

    private ParameterLayout(IReadOnlyList<(string Name, int[] Shape)> entries)
    {
        var slots = new List<ParameterSlot>(entries.Count);
        int offset = 0;
        foreach (var (name, shape) in entries)
        {
            var slot = new ParameterSlot(name, offset, shape);
            slots.Add(slot);
            offset = checked(offset + slot.Length);
        }
        Slots = slots;
        TotalLength = offset;
        _byName = slots.ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    public ParameterSlot this[string name] => _byName.TryGetValue(name, out var s)
        ? s : throw new KeyNotFoundException($"No parameter named '{name}'.");

    public bool TryGetSlot(string name, out ParameterSlot slot) => _byName.TryGetValue(name, out slot!);

    /// <summary>The seq2seq layout, in this order:
    /// <c>enc.embed [Vs, E]</c>; per encoder layer k: <c>enc.l{k}.w_ih [4H, in]</c>, <c>enc.l{k}.w_hh [4H, H]</c>,
    /// <c>enc.l{k}.b_ih [4H]</c>, <c>enc.l{k}.b_hh [4H]</c> (in = E for k = 0, else H);
    /// (bidirectional encoder: see <see cref="AddBidirectionalLstm"/>); with <see cref="ModelConfig.Bridge"/> only, per layer k:
    /// <c>bridge.l{k}.w_h [H, H]</c>, <c>bridge.l{k}.b_h [H]</c>, <c>bridge.l{k}.w_c [H, H]</c>, <c>bridge.l{k}.b_c [H]</c>;
    /// <c>dec.embed [Vt, E]</c>; the same four per decoder layer under <c>dec.l{k}</c> (with input feeding layer 0's
    /// <c>w_ih</c> is [4H, E + H]: it reads [emb; h̃ of the previous step]);
    /// then, with attention only: <c>attn.w_a [H, H]</c> (General) or <c>attn.w_q [H, H]</c>, <c>attn.w_k [H, H]</c>,
    /// <c>attn.v [H]</c> (Bahdanau), then <c>attn.w_c [H, 2H]</c> (columns: context, then decoder h; no bias);
    /// <c>out.w [Vt, H]</c>, <c>out.b [Vt]</c>. Without attention the layout is the tutorial model's, unchanged.
    /// With <see cref="ModelConfig.TiedEmbeddings"/> there is no <c>out.w</c>:
    /// the projection reads <c>dec.embed</c> (see <see cref="OutputWeight"/>).</summary>
    public static ParameterLayout ForSeq2Seq(ModelConfig config)
    {
        config.Validate();
        int e = config.EmbeddingDim, h = config.HiddenDim;
        var entries = new List<(string, int[])> { (Names.EncoderEmbedding, [config.SourceVocabSize, e]) };
        if (config.BidirectionalEncoder) AddBidirectionalLstm(entries, config.Layers, e, h);
        else AddLstm(entries, "enc", config.Layers, e, h);
        if (config.Bridge) AddBridge(entries, config.Layers, h);
        entries.Add((Names.DecoderEmbedding, [config.TargetVocabSize, e]));
        AddLstm(entries, "dec", config.Layers, config.InputFeeding ? e + h : e, h);   // input feeding: layer 0 reads [emb; h̃]
        AddAttention(entries, config.Attention, h);
        if (!config.TiedEmbeddings) entries.Add((Names.OutputWeight, [config.TargetVocabSize, h]));
        entries.Add((Names.OutputBias, [config.TargetVocabSize]));
        return new ParameterLayout(entries);
    }

    /// <summary>The weight of the output projection, [Vt, H]: <c>out.w</c>, or <c>dec.embed</c> when the embeddings are
    /// tied. Gradients of both uses of a tied weight add up in its one gradient slice.</summary>
    public ParameterSlot OutputWeight => _byName.TryGetValue(Names.OutputWeight, out var w) ? w : this[Names.DecoderEmbedding];

    private static void AddLstm(List<(string, int[])> entries, string prefix, int layers, int input, int hidden)
    {
        for (int k = 0; k < layers; k++)
        {
            int inDim = k == 0 ? input : hidden;
            entries.Add((Names.LstmWeightIh(prefix, k), [4 * hidden, inDim]));
            entries.Add((Names.LstmWeightHh(prefix, k), [4 * hidden, hidden]));
            entries.Add((Names.LstmBiasIh(prefix, k), [4 * hidden]));
            entries.Add((Names.LstmBiasHh(prefix, k), [4 * hidden]));
        }
    }

    /// <summary>Bidirectional encoder: per layer k the forward LSTM (<c>enc.l{k}.*</c>) then the backward one
    /// (<c>enc.l{k}_reverse.*</c>, PyTorch's suffix), each H/2 wide; layer k &gt; 0 reads both directions' outputs (H).</summary>
    private static void AddBidirectionalLstm(List<(string, int[])> entries, int layers, int input, int hidden)
    {
        int half = hidden / 2;
        for (int k = 0; k < layers; k++)
        {
            int inDim = k == 0 ? input : hidden;
            entries.Add((Names.LstmWeightIh(Names.Encoder, k), [4 * half, inDim]));
            entries.Add((Names.LstmWeightHh(Names.Encoder, k), [4 * half, half]));
            entries.Add((Names.LstmBiasIh(Names.Encoder, k), [4 * half]));
            entries.Add((Names.LstmBiasHh(Names.Encoder, k), [4 * half]));
            entries.Add((Names.LstmReverseWeightIh(Names.Encoder, k), [4 * half, inDim]));
            entries.Add((Names.LstmReverseWeightHh(Names.Encoder, k), [4 * half, half]));
            entries.Add((Names.LstmReverseBiasIh(Names.Encoder, k), [4 * half]));
            entries.Add((Names.LstmReverseBiasHh(Names.Encoder, k), [4 * half]));
        }
    }

    /// <summary>The learned bridge: per layer k a Linear for h (followed by tanh) and one for c, each [H, H] with a bias
    /// (PyTorch <c>nn.Linear</c> layout, [out, in]).</summary>
    private static void AddBridge(List<(string, int[])> entries, int layers, int hidden)
    {
        for (int k = 0; k < layers; k++)
        {
            entries.Add((Names.BridgeWeightH(k), [hidden, hidden]));
            entries.Add((Names.BridgeBiasH(k), [hidden]));
            entries.Add((Names.BridgeWeightC(k), [hidden, hidden]));
            entries.Add((Names.BridgeBiasC(k), [hidden]));
        }
    }

    private static void AddAttention(List<(string, int[])> entries, AttentionKind kind, int hidden)
    {
        switch (kind)
        {
            case AttentionKind.None:
                return;
            case AttentionKind.Dot:
                break;
            case AttentionKind.General:
                entries.Add((Names.AttentionGeneral, [hidden, hidden]));
                break;
            case AttentionKind.Bahdanau:
                entries.Add((Names.AttentionQuery, [hidden, hidden]));
                entries.Add((Names.AttentionKey, [hidden, hidden]));
                entries.Add((Names.AttentionScore, [hidden]));
                break;
        }
        entries.Add((Names.AttentionCombine, [hidden, 2 * hidden]));
    }

    /// <summary>Serialized tensor names. Changing one breaks every saved model: a golden test pins them.</summary>
    internal static class Names
    {
        public const string EncoderEmbedding = "enc.embed";
        public const string DecoderEmbedding = "dec.embed";
        public const string OutputWeight = "out.w";
        public const string OutputBias = "out.b";
        /// <summary>Luong general: keys = W_a s.</summary>
        public const string AttentionGeneral = "attn.w_a";
        /// <summary>Bahdanau: query projection W_q (applied to the decoder output h_t).</summary>
        public const string AttentionQuery = "attn.w_q";
        /// <summary>Bahdanau: key projection W_k (applied to every encoder output s).</summary>
        public const string AttentionKey = "attn.w_k";
        /// <summary>Bahdanau: score vector v.</summary>
        public const string AttentionScore = "attn.v";
        /// <summary>Attentional state h̃ = tanh(W_c [c; h]).</summary>
        public const string AttentionCombine = "attn.w_c";
        public const string Encoder = "enc";
        public const string Decoder = "dec";
        public static string LstmWeightIh(string prefix, int layer) => $"{prefix}.l{layer}.w_ih";
        public static string LstmWeightHh(string prefix, int layer) => $"{prefix}.l{layer}.w_hh";
        public static string LstmBiasIh(string prefix, int layer) => $"{prefix}.l{layer}.b_ih";
        public static string LstmBiasHh(string prefix, int layer) => $"{prefix}.l{layer}.b_hh";
        /// <summary>Bridge of layer k: decoder h0 = tanh(W_h h_enc + b_h).</summary>
        public static string BridgeWeightH(int layer) => $"bridge.l{layer}.w_h";
        public static string BridgeBiasH(int layer) => $"bridge.l{layer}.b_h";
        /// <summary>Bridge of layer k: decoder c0 = W_c c_enc + b_c.</summary>
        public static string BridgeWeightC(int layer) => $"bridge.l{layer}.w_c";
        public static string BridgeBiasC(int layer) => $"bridge.l{layer}.b_c";
        public static string LstmReverseWeightIh(string prefix, int layer) => $"{prefix}.l{layer}_reverse.w_ih";
        public static string LstmReverseWeightHh(string prefix, int layer) => $"{prefix}.l{layer}_reverse.w_hh";
        public static string LstmReverseBiasIh(string prefix, int layer) => $"{prefix}.l{layer}_reverse.b_ih";
        public static string LstmReverseBiasHh(string prefix, int layer) => $"{prefix}.l{layer}_reverse.b_hh";
    }
}
