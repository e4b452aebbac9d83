namespace Seqtalk.Nn;

/// <summary>How the decoder attends to the encoder outputs (none, or the score function).</summary>
public enum AttentionKind
{
    /// <summary>No attention: the Keras tutorial's model, where the encoder's final state is all the decoder sees.</summary>
    None,
    /// <summary>Luong dot score <c>h_t·s</c>.</summary>
    Dot,
    /// <summary>Luong general score <c>h_t·(W_a s)</c>.</summary>
    General,
    /// <summary>Bahdanau additive score <c>vᵀ tanh(W_q h_t + W_k s)</c>, on the decoder output h_t like Luong's.</summary>
    Bahdanau,
}

/// <summary>
/// The architecture of a seq2seq model: sizes only, no weights. Defaults are the Keras tutorial's
/// (embedding 50, hidden 50, one LSTM layer in the encoder and one in the decoder).
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Default embedding width (the tutorial's <c>Embedding(…, 50)</c>).</summary>
    public const int DefaultEmbeddingDim = 50;
    /// <summary>Default LSTM width (the tutorial's <c>LSTM(50)</c>).</summary>
    public const int DefaultHiddenDim = 50;
    /// <summary>Default number of stacked LSTM layers in the encoder and in the decoder.</summary>
    public const int DefaultLayers = 1;

    /// <summary>Source (question) vocabulary size, special tokens included.</summary>
    public required int SourceVocabSize { get; init; }
    /// <summary>Target (answer) vocabulary size, special tokens included.</summary>
    public required int TargetVocabSize { get; init; }
    /// <summary>Embedding width E.</summary>
    public int EmbeddingDim { get; init; } = DefaultEmbeddingDim;
    /// <summary>LSTM width H.</summary>
    public int HiddenDim { get; init; } = DefaultHiddenDim;
    /// <summary>Stacked LSTM layers in the encoder and in the decoder (the same number).</summary>
    public int Layers { get; init; } = DefaultLayers;
    /// <summary>Attention over the encoder outputs after the decoder LSTM; <see cref="AttentionKind.None"/> (the default)
    /// is the tutorial's model, whose parameters and results do not change.</summary>
    public AttentionKind Attention { get; init; } = AttentionKind.None;
    /// <summary>Luong input feeding: the decoder's first layer also reads the previous step's attentional state h̃
    /// (<c>dec.l0.w_ih</c> is then [4H, E + H], embedding columns first). Needs attention.</summary>
    public bool InputFeeding { get; init; }
    /// <summary>Every encoder layer runs a forward and a backward LSTM of H/2 each, concatenated to H (needs an even H).</summary>
    public bool BidirectionalEncoder { get; init; }
    /// <summary>Tie the decoder's input and output embeddings: the projection before the softmax uses
    /// <c>dec.embed</c> as its weight (no separate <c>out.w</c>; Press &amp; Wolf 2017). Needs
    /// <see cref="EmbeddingDim"/> equal to <see cref="HiddenDim"/>, the width the projection reads. Off by default.</summary>
    public bool TiedEmbeddings { get; init; }
    /// <summary>A learned bridge between the encoder and the decoder (OpenNMT's <c>bridge</c>): decoder layer k starts from
    /// <c>h = tanh(W_h h_enc + b_h)</c> and <c>c = W_c c_enc + b_c</c> over encoder layer k's final states (both directions'
    /// concatenated with a bidirectional encoder) instead of copying them. Tensors <c>bridge.l{k}.*</c>. Off by default.</summary>
    public bool Bridge { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is out of range.</exception>
    public void Validate()
    {
        if (SourceVocabSize < 5) throw new ArgumentOutOfRangeException(nameof(SourceVocabSize), SourceVocabSize, "The source vocabulary needs the 4 special tokens and at least one word.");
        if (TargetVocabSize < 5) throw new ArgumentOutOfRangeException(nameof(TargetVocabSize), TargetVocabSize, "The target vocabulary needs the 4 special tokens and at least one word.");
        if (EmbeddingDim is < 1 or > 8192) throw new ArgumentOutOfRangeException(nameof(EmbeddingDim), EmbeddingDim, "Must be between 1 and 8192.");
        if (HiddenDim is < 1 or > 8192) throw new ArgumentOutOfRangeException(nameof(HiddenDim), HiddenDim, "Must be between 1 and 8192.");
        if (Layers is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "Must be between 1 and 8.");
        if (!Enum.IsDefined(Attention)) throw new ArgumentOutOfRangeException(nameof(Attention), Attention, "Must be None, Dot, General or Bahdanau.");
        if (InputFeeding && Attention == AttentionKind.None) throw new ArgumentOutOfRangeException(nameof(InputFeeding), InputFeeding, "Input feeding needs attention (Dot, General or Bahdanau).");
        if (BidirectionalEncoder && HiddenDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(BidirectionalEncoder), BidirectionalEncoder, $"A bidirectional encoder needs an even hidden size (H/2 per direction); HiddenDim is {HiddenDim}.");
        if (TiedEmbeddings && EmbeddingDim != HiddenDim) throw new ArgumentOutOfRangeException(nameof(TiedEmbeddings), TiedEmbeddings, TiedEmbeddingsWidthMessage(EmbeddingDim, HiddenDim));
    }

    /// <summary>Why tied embeddings cannot be used with these widths (one message for the config and the training options).</summary>
    internal static string TiedEmbeddingsWidthMessage(int embeddingDim, int hiddenDim) =>
        $"Tied embeddings need the embedding width ({embeddingDim}) to equal the width the output projection reads, the LSTM width ({hiddenDim}); set both to the same value.";
}
