using Seqtalk.Data;
using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>The optimizer that updates the weights.</summary>
public enum OptimizerKind
{
    /// <summary>RMSprop with Keras semantics (the tutorial's): ms = ρ·ms + (1−ρ)·g²; p −= lr·g/√(ms + ε).</summary>
    RmsProp,
    /// <summary>Adam (β1 0.9, β2 0.999, ε 1e-7).</summary>
    Adam,
    /// <summary>Stochastic gradient descent with momentum 0.9.</summary>
    Sgd,
}

/// <summary>
/// Everything that decides a training run. Defaults are the Keras tutorial's (embedding 50, hidden 50,
/// one layer, RMSprop 1e-3, batch 128), except the validation split, which is random (seeded) instead
/// of the last rows.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Default number of passes over the training rows.</summary>
    public const int DefaultEpochs = 20;
    /// <summary>Default batch size (the tutorial's).</summary>
    public const int DefaultBatchSize = 128;
    /// <summary>Default learning rate (Keras RMSprop's).</summary>
    public const float DefaultLearningRate = 1e-3f;
    /// <summary>Default validation share: 10% of the rows.</summary>
    public const double DefaultValidationSize = 0.1;
    /// <summary>Default seed.</summary>
    public const int DefaultSeed = 42;
    /// <summary>Default cap on tokens per question or answer; longer ones are cut.</summary>
    public const int DefaultMaxSequenceLength = 60;
    /// <summary>Default size of each BPE vocabulary.</summary>
    public const int DefaultBpeVocabularySize = BpeTokenizerOptions.DefaultVocabularySize;
    /// <summary>Default first epoch after which the per-epoch learning-rate decay applies.</summary>
    public const int DefaultLearningRateDecayStart = 1;
    /// <summary>Default epochs without improvement that reduce-on-plateau waits for before it lowers the rate.</summary>
    public const int DefaultPlateauPatience = 2;

    /// <summary>Passes over the training rows.</summary>
    public int Epochs { get; init; } = DefaultEpochs;
    /// <summary>Pairs per training step.</summary>
    public int BatchSize { get; init; } = DefaultBatchSize;
    /// <summary>Embedding width.</summary>
    public int EmbeddingDim { get; init; } = ModelConfig.DefaultEmbeddingDim;
    /// <summary>LSTM width.</summary>
    public int HiddenDim { get; init; } = ModelConfig.DefaultHiddenDim;
    /// <summary>Stacked LSTM layers in the encoder and in the decoder.</summary>
    public int Layers { get; init; } = ModelConfig.DefaultLayers;
    /// <summary>Attention over the encoder outputs (<see cref="ModelConfig.Attention"/>); None is the tutorial's model.</summary>
    public AttentionKind Attention { get; init; } = AttentionKind.None;
    /// <summary>Luong input feeding (<see cref="ModelConfig.InputFeeding"/>); needs attention.</summary>
    public bool InputFeeding { get; init; }
    /// <summary>Bidirectional encoder (<see cref="ModelConfig.BidirectionalEncoder"/>); needs an even hidden size.</summary>
    public bool BidirectionalEncoder { get; init; }
    /// <summary>A learned bridge from the encoder's final states to the decoder's initial ones (<see cref="ModelConfig.Bridge"/>).</summary>
    public bool Bridge { get; init; }
    /// <summary>The optimizer.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.RmsProp;
    /// <summary>Learning rate.</summary>
    public float LearningRate { get; init; } = DefaultLearningRate;
    /// <summary>Clip the global gradient norm to this value; null for no clipping (the tutorial's).</summary>
    public float? ClipNorm { get; init; }
    /// <summary>Validation rows: a fraction when below 1 (0.1 = 10%), a count when 1 or more; 0 for none.</summary>
    public double ValidationSize { get; init; } = DefaultValidationSize;
    /// <summary>How validation rows are chosen.</summary>
    public SplitMode Split { get; init; } = SplitMode.Random;
    /// <summary>Seed for initialisation, the split and shuffling.</summary>
    public int Seed { get; init; } = DefaultSeed;
    /// <summary>Worker threads; 0 means one per core.</summary>
    public int Threads { get; init; }
    /// <summary>Stop after this many epochs without a better validation loss; null to run every epoch.</summary>
    public int? EarlyStoppingPatience { get; init; }
    /// <summary>Tokenizer for questions and answers (each side gets its own vocabulary).</summary>
    public TokenizerKind Tokenizer { get; init; } = TokenizerKind.Word;
    /// <summary>Text normalisation.</summary>
    public NormalizationMode Normalization { get; init; } = NormalizationMode.Default;
    /// <summary>Lower-case questions before tokenizing, so "Hello" and "hello" are one word. Answers keep
    /// their case, so replies are written properly.</summary>
    public bool Lowercase { get; init; }
    /// <summary>Keep at most this many tokens per vocabulary (special tokens included); null for all. Word and character tokens only.</summary>
    public int? MaxVocabulary { get; init; }
    /// <summary>Drop tokens seen fewer times than this in the training rows. Word and character tokens only.</summary>
    public int MinFrequency { get; init; } = 1;
    /// <summary>Ids per BPE vocabulary, the 4 special tokens, 256 byte tokens and the word-start marker included
    /// (<see cref="BpeTokenizerOptions.VocabularySize"/>). BPE tokens only.</summary>
    public int BpeVocabularySize { get; init; } = DefaultBpeVocabularySize;
    /// <summary>Questions and answers longer than this many tokens are cut.</summary>
    public int MaxSequenceLength { get; init; } = DefaultMaxSequenceLength;

    /// <summary>Dropout rate p in [0, 1) during training (inverted dropout, kept values scaled by 1/(1−p)) on the encoder
    /// and decoder embedding outputs, between stacked LSTM layers and on the top decoder output before the projection;
    /// 0 (the tutorial's) for none. Masks are a hash of (seed, step, tensor, element), so they need no RNG state.</summary>
    public float Dropout { get; init; }
    /// <summary>Tie the decoder's input and output embeddings (<see cref="ModelConfig.TiedEmbeddings"/>); needs
    /// <see cref="EmbeddingDim"/> = <see cref="HiddenDim"/>.</summary>
    public bool TiedEmbeddings { get; init; }
    /// <summary>Label smoothing ε in [0, 1): the training target is (1−ε)·onehot + ε/V, as PyTorch's
    /// <c>CrossEntropyLoss(label_smoothing=ε)</c>. Reported losses (training and validation) stay the true
    /// cross-entropy; 0 for none.</summary>
    public float LabelSmoothing { get; init; }
    /// <summary>Raise the learning rate linearly over this many first steps (step s uses s/N of it); 0 for none.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Multiply the learning rate by this factor once per epoch after epoch <see cref="LearningRateDecayStart"/>
    /// (epoch e uses F^(e − start)); 1 for no decay.</summary>
    public double LearningRateDecay { get; init; } = 1.0;
    /// <summary>The last epoch at the undecayed learning rate (see <see cref="LearningRateDecay"/>).</summary>
    public int LearningRateDecayStart { get; init; } = DefaultLearningRateDecayStart;
    /// <summary>Reduce on plateau: multiply the learning rate by this factor when the validation loss has not improved
    /// for more than <see cref="PlateauPatience"/> epochs; null for off.</summary>
    public double? PlateauFactor { get; init; }
    /// <summary>Epochs without a better validation loss that reduce-on-plateau tolerates.</summary>
    public int PlateauPatience { get; init; } = DefaultPlateauPatience;
    /// <summary>Decay and reduce-on-plateau never take the learning rate below this (warmup still starts lower).</summary>
    public double MinLearningRate { get; init; }
    /// <summary>Default number of step checkpoints kept (the best one is kept besides).</summary>
    public const int DefaultKeepCheckpoints = 2;

    /// <summary>Directory for resumable checkpoints (<c>step-00000123/</c> subdirectories, a <c>latest</c> and a
    /// <c>best</c> pointer file); null for none. With a directory, a checkpoint is written at the end of every
    /// epoch, every <see cref="CheckpointEverySteps"/> steps or <see cref="CheckpointEvery"/>, and when
    /// cancellation stops the run. It must not hold checkpoints of another run (resume those instead).</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>Also write a checkpoint every this many steps (counted over the whole run); null for epoch ends only.</summary>
    public int? CheckpointEverySteps { get; init; }
    /// <summary>Also write a checkpoint when this much time has passed since the last one; null for no timer.</summary>
    public TimeSpan? CheckpointEvery { get; init; }
    /// <summary>Keep this many newest checkpoints, plus the one at the end of the best epoch.</summary>
    public int KeepCheckpoints { get; init; } = DefaultKeepCheckpoints;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (Epochs is < 1 or > 100_000) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Must be between 1 and 100000.");
        if (BatchSize is < 1 or > 65_536) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Must be between 1 and 65536.");
        if (EmbeddingDim is < 1 or > 8192) throw new ArgumentOutOfRangeException(nameof(EmbeddingDim), EmbeddingDim, "Must be between 1 and 8192.");
        if (HiddenDim is < 1 or > 8192) throw new ArgumentOutOfRangeException(nameof(HiddenDim), HiddenDim, "Must be between 1 and 8192.");
        if (Layers is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "Must be between 1 and 8.");
        if (!Enum.IsDefined(Attention)) throw new ArgumentOutOfRangeException(nameof(Attention), Attention, "Must be None, Dot, General or Bahdanau.");
        if (InputFeeding && Attention == AttentionKind.None) throw new ArgumentOutOfRangeException(nameof(InputFeeding), InputFeeding, "Input feeding needs attention (dot, general or bahdanau).");
        if (BidirectionalEncoder && HiddenDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(BidirectionalEncoder), BidirectionalEncoder, $"A bidirectional encoder needs an even hidden size (H/2 per direction); the hidden size is {HiddenDim}.");
        if (!(LearningRate > 0 && float.IsFinite(LearningRate))) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Must be a positive number.");
        if (ClipNorm is { } clip && !(clip > 0 && float.IsFinite(clip))) throw new ArgumentOutOfRangeException(nameof(ClipNorm), clip, "Must be a positive number.");
        if (!(ValidationSize >= 0 && double.IsFinite(ValidationSize)) || (ValidationSize >= 1 && ValidationSize != Math.Floor(ValidationSize)))
            throw new ArgumentOutOfRangeException(nameof(ValidationSize), ValidationSize, "Must be a fraction below 1 or a whole count.");
        if (Threads is < 0 or > 1024) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Must be between 0 (one per core) and 1024.");
        if (EarlyStoppingPatience is < 1) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "Must be at least 1.");
        if (MaxVocabulary is < 5) throw new ArgumentOutOfRangeException(nameof(MaxVocabulary), MaxVocabulary, "Must be at least 5 (4 special tokens and one word).");
        if (MinFrequency < 1) throw new ArgumentOutOfRangeException(nameof(MinFrequency), MinFrequency, "Must be at least 1.");
        if (BpeVocabularySize is < BpeTokenizerOptions.MinimumVocabularySize or > BpeTokenizerOptions.MaximumVocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(BpeVocabularySize), BpeVocabularySize,
                $"Must be between {BpeTokenizerOptions.MinimumVocabularySize} (4 special tokens, 256 byte tokens and the word-start marker) and {BpeTokenizerOptions.MaximumVocabularySize}.");
        }
        if (CheckpointEverySteps is < 1) throw new ArgumentOutOfRangeException(nameof(CheckpointEverySteps), CheckpointEverySteps, "Must be at least 1.");
        if (CheckpointEvery is { } every && every <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), every, "Must be a positive duration.");
        if (KeepCheckpoints is < 1 or > 1_000_000) throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), KeepCheckpoints, "Must be between 1 and 1000000.");
        if (CheckpointDirectory is { Length: 0 }) throw new ArgumentOutOfRangeException(nameof(CheckpointDirectory), CheckpointDirectory, "Must be a directory path or null.");
        if (MaxSequenceLength is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(MaxSequenceLength), MaxSequenceLength, "Must be between 1 and 10000.");
        if (!(Dropout is >= 0f and < 1f)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "Must be at least 0 and below 1.");
        if (TiedEmbeddings && EmbeddingDim != HiddenDim) throw new ArgumentOutOfRangeException(nameof(TiedEmbeddings), TiedEmbeddings, ModelConfig.TiedEmbeddingsWidthMessage(EmbeddingDim, HiddenDim));
        if (!(LabelSmoothing is >= 0f and < 1f)) throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "Must be at least 0 and below 1.");
        if (WarmupSteps is < 0 or > 100_000_000) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, "Must be between 0 and 100000000.");
        if (!(LearningRateDecay is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(LearningRateDecay), LearningRateDecay, "Must be above 0 and at most 1.");
        if (LearningRateDecayStart is < 0 or > 100_000) throw new ArgumentOutOfRangeException(nameof(LearningRateDecayStart), LearningRateDecayStart, "Must be between 0 and 100000.");
        if (PlateauFactor is { } factor && !(factor is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(PlateauFactor), factor, "Must be above 0 and below 1.");
        if (PlateauFactor is { } watched && ValidationSize == 0) throw new ArgumentOutOfRangeException(nameof(PlateauFactor), watched, "Reduce-on-plateau watches the validation loss, so it needs validation pairs (a validation size above 0).");
        if (PlateauPatience is < 0 or > 100_000) throw new ArgumentOutOfRangeException(nameof(PlateauPatience), PlateauPatience, "Must be between 0 and 100000.");
        if (!(MinLearningRate >= 0 && double.IsFinite(MinLearningRate))) throw new ArgumentOutOfRangeException(nameof(MinLearningRate), MinLearningRate, "Must be 0 or a positive number.");
        if (MinLearningRate > LearningRate) throw new ArgumentOutOfRangeException(nameof(MinLearningRate), MinLearningRate, $"Must not exceed the learning rate ({LearningRate}).");
    }
}
