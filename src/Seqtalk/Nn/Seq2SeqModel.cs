// Seq2SeqModel: the weights of the encoder-decoder and their Keras-style initialisation. The model is
// only data (config, layout, one flat float buffer); forward and backward live in TrainingWorkspace
// (training) and Decoding.InferenceSession (replies), which keep all activations to themselves.

namespace Seqtalk.Nn;

/// <summary>An LSTM encoder-decoder's weights in one flat buffer laid out by <see cref="ParameterLayout.ForSeq2Seq"/>.</summary>
internal sealed class Seq2SeqModel
{
    private Seq2SeqModel(ModelConfig config, ParameterLayout layout, float[] parameters)
    {
        Config = config;
        Layout = layout;
        Parameters = parameters;
    }

    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }

    /// <summary>Flat parameters in <see cref="Layout"/> order. Whoever writes them after the model has decoded (the
    /// trainer's optimizer step, a test) calls <see cref="WeightsChanged"/> afterwards.</summary>
    public float[] Parameters { get; }

    private int _weightsVersion;

    /// <summary>Counts the announced writes of <see cref="Parameters"/>. What decoding derives from the weights and keeps
    /// (the int8 copy of the output layer, Decoding.GreedyScreen) records the version it was built from and
    /// is rebuilt when this differs: one integer compare per use.</summary>
    public int WeightsVersion => Volatile.Read(ref _weightsVersion);

    /// <summary>Announces that <see cref="Parameters"/> changed, so caches built from the old weights are not used again.</summary>
    public void WeightsChanged() => Interlocked.Increment(ref _weightsVersion);

    /// <summary>A new model with the Keras tutorial's initialisation, reproducible from <paramref name="seed"/>.</summary>
    /// <remarks>Embeddings uniform(−0.05, 0.05); W_ih Glorot-uniform (limit sqrt(6/(in+4H))); W_hh orthogonal
    /// (Keras Orthogonal on the [H, 4H] recurrent kernel, stored transposed as [4H, H]); b_ih forget slice 1
    /// (unit_forget_bias), the rest 0; b_hh 0; attention matrices Glorot-uniform (limit sqrt(6/(out+in))), attn.v as a
    /// [1, H] matrix (limit sqrt(6/(1+H))); bridge weights Glorot-uniform, bridge biases 0; out.w Glorot-uniform (limit sqrt(6/(H+Vt))); out.b 0.</remarks>
    public static Seq2SeqModel Create(ModelConfig config, int seed)
    {
        var layout = ParameterLayout.ForSeq2Seq(config);
        var p = new float[layout.TotalLength];
        var rng = new Random(seed);
        int h = config.HiddenDim;
        foreach (var slot in layout.Slots)
        {
            Span<float> s = p.AsSpan(slot.Offset, slot.Length);
            string name = slot.Name;
            if (name is ParameterLayout.Names.EncoderEmbedding or ParameterLayout.Names.DecoderEmbedding)
                FillUniform(s, rng, 0.05);
            else if (name == ParameterLayout.Names.OutputWeight)
                FillUniform(s, rng, Math.Sqrt(6.0 / (h + config.TargetVocabSize)));
            else if (name == ParameterLayout.Names.OutputBias)
                s.Clear();
            else if (name.StartsWith("bridge.", StringComparison.Ordinal))
            {
                if (slot.Shape.Length == 1) s.Clear();   // b_h, b_c
                else FillUniform(s, rng, Math.Sqrt(6.0 / (slot.Shape[0] + slot.Shape[1])));
            }
            else if (name.StartsWith("attn.", StringComparison.Ordinal))
                FillUniform(s, rng, slot.Shape.Length == 1 ? Math.Sqrt(6.0 / (1 + slot.Shape[0])) : Math.Sqrt(6.0 / (slot.Shape[0] + slot.Shape[1])));
            else if (name.EndsWith(".w_ih", StringComparison.Ordinal))
                FillUniform(s, rng, Math.Sqrt(6.0 / (slot.Shape[1] + slot.Shape[0])));
            else if (name.EndsWith(".w_hh", StringComparison.Ordinal))
                FillOrthogonal(s, rng, slot.Shape[0], slot.Shape[1]);
            else if (name.EndsWith(".b_ih", StringComparison.Ordinal))
            {
                s.Clear();
                int width = slot.Shape[0] / 4;   // H, or H/2 for a bidirectional encoder's directions
                s.Slice(width, width).Fill(1f); // unit_forget_bias: gate order i, f, g, o
            }
            else if (name.EndsWith(".b_hh", StringComparison.Ordinal))
                s.Clear();
            else
                throw new InvalidOperationException($"No initialiser for parameter '{name}'.");
        }
        return new Seq2SeqModel(config, layout, p);
    }

    /// <summary>Wraps existing weights (takes ownership of the array).</summary>
    /// <exception cref="SeqtalkException">The array length does not match the layout of <paramref name="config"/>.</exception>
    public static Seq2SeqModel FromParameters(ModelConfig config, float[] parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var layout = ParameterLayout.ForSeq2Seq(config);
        if (parameters.Length != layout.TotalLength)
            throw new SeqtalkException($"The model has {parameters.Length} parameters but its configuration needs {layout.TotalLength}; the weights do not belong to this configuration.");
        return new Seq2SeqModel(config, layout, parameters);
    }

    private static void FillUniform(Span<float> s, Random rng, double limit)
    {
        for (int i = 0; i < s.Length; i++) s[i] = (float)((rng.NextDouble() * 2.0 - 1.0) * limit);
    }

    /// <summary>Keras Orthogonal for the recurrent kernel [cols, rows] stored transposed as [rows, cols]
    /// (rows = 4H ≥ cols = H): Q of the QR decomposition of a standard normal [rows, cols] matrix, with
    /// the signs fixed so that diag(R) &gt; 0 (Keras multiplies q by sign(diag r)). Modified Gram-Schmidt in double.</summary>
    private static void FillOrthogonal(Span<float> s, Random rng, int rows, int cols)
    {
        var a = new double[rows * cols];
        for (int i = 0; i < a.Length; i++) a[i] = NextGaussian(rng);
        for (int j = 0; j < cols; j++)
        {
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int r = 0; r < rows; r++) dot += a[r * cols + j] * a[r * cols + k];
                for (int r = 0; r < rows; r++) a[r * cols + j] -= dot * a[r * cols + k];
            }
            double norm = 0;
            for (int r = 0; r < rows; r++) norm += a[r * cols + j] * a[r * cols + j];
            norm = Math.Sqrt(norm);
            for (int r = 0; r < rows; r++) a[r * cols + j] /= norm;
        }
        for (int i = 0; i < a.Length; i++) s[i] = (float)a[i];
    }

    private static double NextGaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
