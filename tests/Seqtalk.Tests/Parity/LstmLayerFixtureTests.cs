// The standalone LSTM-layer fixture (pytorch_lstm_layer.json), checked without the engine: a plain
// double-precision LSTM written here from the PyTorch formulas reproduces PyTorch's outputs (so the
// fixture and our reading of the conventions agree: gate order i, f, g, o, two biases, [4H, in]
// weights), and central finite differences of that LSTM reproduce every fixture gradient. The
// fixture is then a trusted layer-level reference for the engine's LSTM layer (Nn/Lstm.cs), which
// the last test checks: x fed time-major [T, B, in], output [T, B, H] compared transposed back, h_n,
// c_n and the seven gradients, at 1e-5 forward and 1e-4 gradients (STYLE, "How close is close").

using Seqtalk.Nn;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Parity;

public class LstmLayerFixtureTests
{
    public const string CaseName = "lstm_layer";

    private static readonly string[] InputNames = ["w_ih", "w_hh", "b_ih", "b_hh", "x", "h0", "c0"];

    private readonly ITestOutputHelper _output;

    public LstmLayerFixtureTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void DoubleReference_ReproducesPytorchOutputs()
    {
        var f = PytorchFixture.LoadLstmLayer(CaseName);
        var (output, hn, cn) = Forward(f, f.Inputs);

        var log = new ParityLog("lstm_layer: double-precision reference vs PyTorch outputs");
        log.Check("output", output, f.Output, f.Shapes["output"], 1e-10);
        log.Check("h_n", hn, f.Hn, f.Shapes["h_n"], 1e-10);
        log.Check("c_n", cn, f.Cn, f.Shapes["c_n"], 1e-10);
        log.AssertPassed(_output);
    }

    [Fact]
    public void FixtureGradients_MatchFiniteDifferences()
    {
        var f = PytorchFixture.LoadLstmLayer(CaseName);
        const double Step = 1e-6;   // central differences in double: error ~1e-10 here

        var log = new ParityLog("lstm_layer: PyTorch gradients vs central finite differences of the double reference");
        foreach (string name in InputNames)
        {
            var inputs = f.Inputs.ToDictionary(p => p.Key, p => (double[])p.Value.Clone());
            var tensor = inputs[name];
            var numeric = new double[tensor.Length];
            for (int i = 0; i < tensor.Length; i++)
            {
                double keep = tensor[i];
                tensor[i] = keep + Step;
                double plus = FakeLoss(f, inputs);
                tensor[i] = keep - Step;
                double minus = FakeLoss(f, inputs);
                tensor[i] = keep;
                numeric[i] = (plus - minus) / (2 * Step);
            }
            log.Check("d" + name, f.Gradients[name], numeric, f.Shapes[name], 1e-6);
        }
        log.AssertPassed(_output);
    }

    [Fact]
    public void EngineLstmLayer_MatchesPytorch_ForwardAndEveryGradient()
    {
        var f = PytorchFixture.LoadLstmLayer(CaseName);
        int batch = f.Batch, steps = f.Steps, input = f.InputDim, hidden = f.HiddenDim, g4 = 4 * hidden, rows = batch * steps;
        float[] F(string name) => f.Inputs[name].Select(v => (float)v).ToArray();
        float[] wIh = F("w_ih"), wHh = F("w_hh"), bIh = F("b_ih"), bHh = F("b_hh"), h0 = F("h0"), c0 = F("c0");
        float[] bias = bIh.Zip(bHh, (a, b) => a + b).ToArray();

        // batch-first [B, T, ·] <-> time-major [T, B, ·]
        float[] x = new float[rows * input];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < steps; t++)
                for (int k = 0; k < input; k++) x[(t * batch + b) * input + k] = (float)f.Inputs["x"][(b * steps + t) * input + k];
        int[] offset = Enumerable.Range(0, steps).Select(t => t * batch).ToArray();
        int[] count = Enumerable.Repeat(batch, steps).ToArray();

        var gates = new float[rows * g4];
        var c = new float[rows * hidden];
        var h = new float[rows * hidden];
        var hPrev = new float[rows * hidden];
        Lstm.Forward(x, input, rows, offset, count, h0, c0, new LstmWeights(wIh, wHh, bias), hidden, gates, c, h, hPrev);

        var output = new double[rows * hidden];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < steps; t++)
                for (int j = 0; j < hidden; j++) output[(b * steps + t) * hidden + j] = h[(t * batch + b) * hidden + j];
        int last = (steps - 1) * batch * hidden;
        var log = new ParityLog("lstm_layer: engine Nn/Lstm vs PyTorch");
        log.Check("output", output, f.Output, f.Shapes["output"], 1e-5);
        log.Check("h_n", h.AsSpan(last, batch * hidden), f.Hn, f.Shapes["h_n"], 1e-5);
        log.Check("c_n", c.AsSpan(last, batch * hidden), f.Cn, f.Shapes["c_n"], 1e-5);

        // Gradients arriving from outside: dOutput at every step, plus dH_n and dC_n at the last step.
        var dH = new float[rows * hidden];
        var dC = new float[rows * hidden];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < steps; t++)
                for (int j = 0; j < hidden; j++) dH[(t * batch + b) * hidden + j] = (float)f.DOutput[(b * steps + t) * hidden + j];
        for (int i = 0; i < batch * hidden; i++)
        {
            dH[last + i] += (float)f.DHn[i];
            dC[last + i] += (float)f.DCn[i];
        }
        var dPre = new float[rows * g4];
        var dX = new float[rows * input];
        var dH0 = new float[batch * hidden];
        var dC0 = new float[batch * hidden];
        var discard = new float[batch * hidden];
        var dWIh = new float[wIh.Length];
        var dWHh = new float[wHh.Length];
        var dBIh = new float[g4];
        var dBHh = new float[g4];
        Lstm.Backward(x, input, rows, offset, count, c0, new LstmWeights(wIh, wHh, bias), hidden, gates, c, hPrev,
            dH, dC, dPre, dX, dH0, dC0, discard, new LstmGradients(dWIh, dWHh, dBIh, dBHh));

        var dXBatchFirst = new double[rows * input];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < steps; t++)
                for (int k = 0; k < input; k++) dXBatchFirst[(b * steps + t) * input + k] = dX[(t * batch + b) * input + k];
        log.Check("dw_ih", dWIh, f.Gradients["w_ih"], f.Shapes["w_ih"], 1e-4);
        log.Check("dw_hh", dWHh, f.Gradients["w_hh"], f.Shapes["w_hh"], 1e-4);
        log.Check("db_ih", dBIh, f.Gradients["b_ih"], f.Shapes["b_ih"], 1e-4);
        log.Check("db_hh", dBHh, f.Gradients["b_hh"], f.Shapes["b_hh"], 1e-4);
        log.Check("dx", dXBatchFirst, f.Gradients["x"], f.Shapes["x"], 1e-4);
        log.Check("dh0", dH0, f.Gradients["h0"], f.Shapes["h0"], 1e-4);
        log.Check("dc0", dC0, f.Gradients["c0"], f.Shapes["c0"], 1e-4);
        log.AssertPassed(_output);
    }

    /// <summary>Σ output·dOutput + Σ h_n·dH_n + Σ c_n·dC_n, the scalar whose gradients the fixture holds.</summary>
    private static double FakeLoss(LstmLayerFixture f, IReadOnlyDictionary<string, double[]> inputs)
    {
        var (output, hn, cn) = Forward(f, inputs);
        double sum = 0;
        for (int i = 0; i < output.Length; i++) sum += output[i] * f.DOutput[i];
        for (int i = 0; i < hn.Length; i++) sum += hn[i] * f.DHn[i] + cn[i] * f.DCn[i];
        return sum;
    }

    /// <summary>torch.nn.LSTM, one layer, batch_first: per step pre = W_ih·x + b_ih + W_hh·h + b_hh,
    /// split i | f | g | o; c = σ(f)⊙c + σ(i)⊙tanh(g); h = σ(o)⊙tanh(c).</summary>
    private static (double[] Output, double[] Hn, double[] Cn) Forward(LstmLayerFixture f, IReadOnlyDictionary<string, double[]> p)
    {
        int batch = f.Batch, steps = f.Steps, input = f.InputDim, hidden = f.HiddenDim;
        double[] wIh = p["w_ih"], wHh = p["w_hh"], bIh = p["b_ih"], bHh = p["b_hh"], x = p["x"];
        var output = new double[batch * steps * hidden];
        var hn = new double[batch * hidden];
        var cn = new double[batch * hidden];
        var pre = new double[4 * hidden];
        for (int b = 0; b < batch; b++)
        {
            var h = p["h0"].AsSpan(b * hidden, hidden).ToArray();
            var c = p["c0"].AsSpan(b * hidden, hidden).ToArray();
            for (int t = 0; t < steps; t++)
            {
                var xt = x.AsSpan((b * steps + t) * input, input);
                for (int j = 0; j < 4 * hidden; j++)
                {
                    double s = bIh[j] + bHh[j];
                    for (int k = 0; k < input; k++) s += wIh[j * input + k] * xt[k];
                    for (int k = 0; k < hidden; k++) s += wHh[j * hidden + k] * h[k];
                    pre[j] = s;
                }
                for (int j = 0; j < hidden; j++)
                {
                    double i = Sigmoid(pre[j]), fg = Sigmoid(pre[hidden + j]);
                    double g = Math.Tanh(pre[2 * hidden + j]), o = Sigmoid(pre[3 * hidden + j]);
                    c[j] = fg * c[j] + i * g;
                    h[j] = o * Math.Tanh(c[j]);
                    output[(b * steps + t) * hidden + j] = h[j];
                }
            }
            h.CopyTo(hn, b * hidden);
            c.CopyTo(cn, b * hidden);
        }
        return (output, hn, cn);
    }

    private static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));
}
