using Seqtalk.Data;
using Seqtalk.Tests.Support;
using Seqtalk.Training;

namespace Seqtalk.Tests.Decoding;

/// <summary>A small model trained once on the first pairs of ChatbotData.csv (a few seconds), with a capped answer
/// vocabulary so that &lt;unk&gt; is a likely token; the questions after the training pairs are the validation set.</summary>
public sealed class DecodingModelFixture
{
    public const int TrainingPairs = 1200;

    public DecodingModelFixture()
    {
        var pairs = PairReader.ReadAll(RepoPaths.ChatbotData, null, out _);
        Model = ChatModel.Train(pairs.Take(TrainingPairs).ToList(), new TrainingOptions
        {
            Epochs = 6,
            BatchSize = 32,
            EmbeddingDim = 32,
            HiddenDim = 48,
            Optimizer = OptimizerKind.Adam,
            LearningRate = 0.01f,
            ValidationSize = 0.1,
            MaxVocabulary = 600,
            Seed = 11,
            Threads = 1,
        });
        Validation = [.. pairs.Skip(TrainingPairs).Take(120).Select(p => p.Question)];
    }

    public ChatModel Model { get; }

    /// <summary>Questions the model was not trained on.</summary>
    public IReadOnlyList<string> Validation { get; }
}
