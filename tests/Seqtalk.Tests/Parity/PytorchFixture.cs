// Loads the golden files written by tests/reference/make_fixtures.py (format: tests/reference/README.md).
// Floats are JSON numbers that round-trip the double PyTorch wrote; inputs (weights, LSTM inputs) are
// float32 values, so the cast back to float is exact.

using System.Text.Json;
using Seqtalk.Data;
using Seqtalk.Nn;

namespace Seqtalk.Tests.Parity;

/// <summary>One <c>"kind": "seq2seq"</c> fixture: weights, a batch, and what PyTorch computed from them.</summary>
internal sealed record Seq2SeqFixture(
    string Name,
    ModelConfig Config,
    IReadOnlyList<(string Name, int[] Shape, int Offset)> Layout,
    float[] Parameters,                 // flat, layout order
    Batch Batch,
    int[] LogitsShape,                  // [N, Vt]
    double[] Logits,                    // [N, Vt], rows ordered by (b, t) over real target tokens
    double Loss,                        // mean cross-entropy over the N real target tokens
    double[] Gradients,                 // d(Loss)/dθ, layout order
    RmsPropFixture RmsProp);

/// <summary>Keras RMSprop on the same batch: <c>Losses[i]</c> is the loss before update i.</summary>
internal sealed record RmsPropFixture(float LearningRate, float Rho, float Epsilon, int Steps, double[] Losses, double[] FinalParameters);

/// <summary>One <c>"kind": "lstm_layer"</c> fixture. Tensors are batch-major, as PyTorch's <c>batch_first</c>.</summary>
internal sealed record LstmLayerFixture(
    int Batch, int Steps, int InputDim, int HiddenDim,
    IReadOnlyDictionary<string, double[]> Inputs,      // w_ih [4H,in], w_hh [4H,H], b_ih [4H], b_hh [4H], x [B,T,in], h0 [B,H], c0 [B,H]
    IReadOnlyDictionary<string, int[]> Shapes,
    double[] DOutput, double[] DHn, double[] DCn,       // weights of the scalar Σ out·dOut + Σ h_n·dHn + Σ c_n·dCn
    double[] Output, double[] Hn, double[] Cn,          // [B,T,H], [B,H], [B,H]
    IReadOnlyDictionary<string, double[]> Gradients);   // of that scalar w.r.t. every input

internal static class PytorchFixture
{
    public const string Magic = "seqtalk-pytorch-fixture";
    public const int Version = 1;

    /// <summary>The seq2seq cases make_fixtures.py writes.</summary>
    public static readonly string[] Seq2SeqCases = ["seq2seq_l1", "seq2seq_l2", "seq2seq_dot", "seq2seq_general", "seq2seq_bahdanau",
        "seq2seq_bidirectional", "seq2seq_bidirectional_general", "seq2seq_bridge", "seq2seq_bidirectional_bridge_dot",
        "seq2seq_feeding_general", "seq2seq_feeding_bahdanau_bidirectional"];

    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", $"pytorch_{name}.json");

    public static Seq2SeqFixture LoadSeq2Seq(string name)
    {
        using var doc = Open(name, "seq2seq");
        var root = doc.RootElement;

        var c = root.GetProperty("config");
        var config = new ModelConfig
        {
            SourceVocabSize = c.GetProperty("source_vocab_size").GetInt32(),
            TargetVocabSize = c.GetProperty("target_vocab_size").GetInt32(),
            EmbeddingDim = c.GetProperty("embedding_dim").GetInt32(),
            HiddenDim = c.GetProperty("hidden_dim").GetInt32(),
            Layers = c.GetProperty("layers").GetInt32(),
            // Optional, like in config.json: absent means the tutorial model.
            Attention = c.TryGetProperty("attention", out var a) ? Enum.Parse<AttentionKind>(a.GetString()!, ignoreCase: true) : AttentionKind.None,
            TiedEmbeddings = c.TryGetProperty("tied_embeddings", out var tied) && tied.GetBoolean(),
            BidirectionalEncoder = c.TryGetProperty("bidirectional_encoder", out var bi) && bi.GetBoolean(),
            Bridge = c.TryGetProperty("bridge", out var bridge) && bridge.GetBoolean(),
            InputFeeding = c.TryGetProperty("input_feeding", out var feeding) && feeding.GetBoolean(),
        };
        var layout = root.GetProperty("layout").EnumerateArray()
            .Select(e => (e.GetProperty("name").GetString()!, Ints(e.GetProperty("shape")), e.GetProperty("offset").GetInt32()))
            .ToList();

        var b = root.GetProperty("batch");
        var batch = new Batch
        {
            Size = b.GetProperty("size").GetInt32(),
            SourceSteps = b.GetProperty("source_steps").GetInt32(),
            TargetSteps = b.GetProperty("target_steps").GetInt32(),
            Source = Ints(b.GetProperty("source")),
            SourceLengths = Ints(b.GetProperty("source_lengths")),
            DecoderInput = Ints(b.GetProperty("decoder_input")),
            DecoderTarget = Ints(b.GetProperty("decoder_target")),
            TargetLengths = Ints(b.GetProperty("target_lengths")),
            RealTargetTokens = b.GetProperty("real_target_tokens").GetInt32(),
        };

        var r = root.GetProperty("rmsprop");
        var rmsProp = new RmsPropFixture(
            (float)r.GetProperty("lr").GetDouble(), (float)r.GetProperty("rho").GetDouble(), (float)r.GetProperty("eps").GetDouble(),
            r.GetProperty("steps").GetInt32(), Doubles(r.GetProperty("losses")), Doubles(r.GetProperty("final_parameters")));

        return new Seq2SeqFixture(
            name, config, layout,
            Floats(root.GetProperty("parameters")),
            batch,
            Ints(root.GetProperty("logits_shape")),
            Doubles(root.GetProperty("logits")),
            root.GetProperty("loss").GetDouble(),
            Doubles(root.GetProperty("gradients")),
            rmsProp);
    }

    public static LstmLayerFixture LoadLstmLayer(string name)
    {
        using var doc = Open(name, "lstm_layer");
        var root = doc.RootElement;
        var c = root.GetProperty("config");
        return new LstmLayerFixture(
            c.GetProperty("batch").GetInt32(), c.GetProperty("steps").GetInt32(),
            c.GetProperty("input_dim").GetInt32(), c.GetProperty("hidden_dim").GetInt32(),
            root.GetProperty("inputs").EnumerateObject().ToDictionary(p => p.Name, p => Doubles(p.Value)),
            root.GetProperty("shapes").EnumerateObject().ToDictionary(p => p.Name, p => Ints(p.Value)),
            Doubles(root.GetProperty("d_output")), Doubles(root.GetProperty("d_h_n")), Doubles(root.GetProperty("d_c_n")),
            Doubles(root.GetProperty("output")), Doubles(root.GetProperty("h_n")), Doubles(root.GetProperty("c_n")),
            root.GetProperty("gradients").EnumerateObject().ToDictionary(p => p.Name, p => Doubles(p.Value)));
    }

    internal static JsonDocument Open(string name, string kind)
    {
        string path = PathOf(name);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Fixture {path} is missing. ---> HINT: run /usr/bin/python3 tests/reference/make_fixtures.py and commit its output.", path);
        var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        string? magic = root.TryGetProperty("magic", out var m) ? m.GetString() : null;
        int version = root.TryGetProperty("version", out var v) ? v.GetInt32() : -1;
        string? found = root.TryGetProperty("kind", out var k) ? k.GetString() : null;
        if (magic != Magic || version != Version || found != kind)
        {
            doc.Dispose();
            throw new InvalidDataException(
                $"{path}: expected magic '{Magic}', version {Version}, kind '{kind}'; found '{magic}', {version}, '{found}'. " +
                "---> HINT: the fixture and this loader disagree; regenerate with tests/reference/make_fixtures.py or update the loader.");
        }
        return doc;
    }

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();
    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
}
