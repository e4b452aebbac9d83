// GreedyScreen: the exact greedy arg-max of one logits row h·out.wᵀ + out.b from an int8 copy of out.w (a quarter
// of the 4·V·H bytes that batch-1 decoding otherwise streams per token) and an fp32 re-score of the few tokens
// the copy cannot rule out. The arithmetic and the proof are in Kernels.Screen; this class holds the copy and the
// per-model constants of the error bound, built on first use and rebuilt when the model's weights change (a training
// step or another write announced through Seq2SeqModel.WeightsChanged bumps its WeightsVersion). On machines with
// AVX-VNNI the copy is laid out for the int8 dot product and the rows are quantized too (Kernels.ScreenVnni), which
// adds one term to the bound; ArgMaxRows then screens several rows per pass over the copy.

using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Seqtalk.Nn;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Decoding;

/// <summary>The int8 copy of a model's output projection and the constants of its error bound.</summary>
internal sealed class GreedyScreen
{
    private static readonly ConditionalWeakTable<Seq2SeqModel, GreedyScreen> Cache = [];

    private readonly sbyte[] _q;              // Kernels.Screen's blocked copy; empty when the VNNI copy is used
    private readonly sbyte[] _qv = [];        // Kernels.ScreenVnni's copy (machines with AVX-VNNI)
    private readonly int[] _offset = [];      // [blocks·16] its c_o
    private readonly float[] _scale, _bias;   // [blocks·16]; bias −∞ on padded rows
    private readonly double _rMax, _aMax, _bMax, _gamma;

    /// <summary>The screen of <paramref name="model"/>'s output projection as its weights are now: built on first use,
    /// shared, and built again after the weights changed (<see cref="Seq2SeqModel.WeightsVersion"/>).</summary>
    public static GreedyScreen For(Seq2SeqModel model)
    {
        int version = model.WeightsVersion;   // read before the weights are: a write during the build makes it stale at once
        if (Cache.TryGetValue(model, out var screen) && screen.Version == version) return screen;
        screen = new GreedyScreen(model, version);
        Cache.AddOrUpdate(model, screen);
        return screen;
    }

    /// <summary>True while the model's weights are the ones this screen was built from.</summary>
    public bool IsCurrentFor(Seq2SeqModel model) => Version == model.WeightsVersion;

    /// <summary>The <see cref="Seq2SeqModel.WeightsVersion"/> of the weights this screen was built from.</summary>
    public int Version { get; }

    private GreedyScreen(Seq2SeqModel model, int version)
    {
        Version = version;
        Vocab = model.Config.TargetVocabSize;
        Hidden = model.Config.HiddenDim;
        Blocks = K.ScreenBlocks(Vocab);
        int padded = Blocks * K.ScreenBlock;
        var w = model.Parameters.AsSpan(model.Layout.OutputWeight.Offset, Vocab * Hidden);
        var b = model.Parameters.AsSpan(model.Layout[ParameterLayout.Names.OutputBias].Offset, Vocab);
        _q = new sbyte[K.ScreenBytes(Vocab, Hidden)];
        _scale = new float[padded];
        _bias = new float[padded];
        var residual = new float[Vocab];
        K.QuantizeRowsInt8(w, _q, _scale, residual, Vocab, Hidden);
        Vnni = K.ScreenVnniIsSupported(Hidden);
        if (Vnni)
        {
            // The same codes, laid out for the int8 dot product; the activations are quantized too (Kernels.ScreenVnni).
            _qv = new sbyte[K.ScreenVnniBytes(Vocab, Hidden)];
            _offset = new int[padded];
            K.LayoutVnni(_q, _qv, _offset, Vocab, Hidden);
            _q = [];
        }
        b.CopyTo(_bias);
        _bias.AsSpan(Vocab).Fill(float.NegativeInfinity);
        // Per-model maxima of the bound's terms (see Kernels.Screen): r_o, L1_o + H·r_o, |b_o|.
        for (int o = 0; o < Vocab; o++)
        {
            double l1 = 0;
            foreach (float v in w.Slice(o * Hidden, Hidden)) l1 += Math.Abs(v);
            _rMax = Math.Max(_rMax, residual[o]);
            _aMax = Math.Max(_aMax, l1 + Hidden * (double)residual[o]);
            _bMax = Math.Max(_bMax, Math.Abs(b[o]));
        }
        double n = 2.0 * Hidden + 4, u = Math.ScaleB(1.0, -24);
        _gamma = n * u / (1 - n * u);
        // A weight that is not finite makes the bound meaningless: such a model keeps the fp32 path.
        Usable = double.IsFinite(_aMax) && double.IsFinite(_bMax) && double.IsFinite(_rMax) && Vocab > 0;
    }

    /// <summary>Answer vocabulary size.</summary>
    public int Vocab { get; }

    /// <summary>Width of h.</summary>
    public int Hidden { get; }

    /// <summary>Int8 blocks of <see cref="K.ScreenBlock"/> rows.</summary>
    public int Blocks { get; }

    /// <summary>False when the weights are not all finite (the caller then computes every logit).</summary>
    public bool Usable { get; }

    /// <summary>Floats of the approx buffer <see cref="ArgMax"/> needs.</summary>
    public int ApproxLength => Blocks * K.ScreenBlock;

    /// <summary>True when the screen quantizes the activations too and sums on the int8 dot-product instruction
    /// (Kernels.ScreenVnni: machines with AVX-VNNI and H ≤ 1024); the bound then has the activations' term.</summary>
    public bool Vnni { get; }

    /// <summary>Scratch for <see cref="ArgMaxRows"/>: one per session (not shared between threads).</summary>
    public sealed class Scratch(GreedyScreen screen)
    {
        internal readonly float[] Approx = new float[K.VnniRows * screen.ApproxLength];
        internal readonly byte[] Codes = new byte[K.VnniRows * 4 * K.VnniGroups(screen.Hidden)];
        internal readonly float[] Steps = new float[K.VnniRows], Max = new float[K.VnniRows];
        internal readonly double[] Bounds = new double[K.VnniRows];
        internal readonly int[] Candidates = new int[screen.Vocab];
        internal readonly float[] Values = new float[screen.Vocab];

        /// <summary>True when this scratch fits <paramref name="other"/> (the same shapes).</summary>
        public bool Fits(GreedyScreen other) => Approx.Length == K.VnniRows * other.ApproxLength && Candidates.Length == other.Vocab
            && Codes.Length == K.VnniRows * 4 * K.VnniGroups(other.Hidden);
    }

    /// <summary>The arg-max of each of <paramref name="rows"/> rows of <paramref name="x"/> ([rows, H]), as <see cref="ArgMax"/>
    /// gives it, through the VNNI screen (<see cref="Vnni"/> must be true): four rows share each pass over the copy.
    /// Returns false when a row is not finite; the rows before it may have been written, and the caller then computes every
    /// row's logits.</summary>
    /// <param name="x">[rows, H] the rows.</param>
    /// <param name="rows">How many rows.</param>
    /// <param name="w">[V, H] the fp32 weight this screen was built from.</param>
    /// <param name="bias">[V] its bias.</param>
    /// <param name="banned">A token that must not win, or −1.</param>
    /// <param name="scratch">This caller's scratch.</param>
    /// <param name="next">[rows] the tokens.</param>
    /// <param name="logits">[rows] their logits as the GEMM computes them.</param>
    /// <param name="logitCount">How many logits were computed in fp32 (for measurements).</param>
    public bool ArgMaxRows(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int banned, Scratch scratch,
        Span<int> next, Span<float> logits, out long logitCount)
    {
        if (!Vnni) throw new InvalidOperationException("ArgMaxRows needs the VNNI screen.");
        logitCount = 0;
        int h = Hidden, stride = 4 * K.VnniGroups(h), padded = ApproxLength;
        for (int r0 = 0; r0 < rows; r0 += K.VnniRows)
        {
            int n = Math.Min(K.VnniRows, rows - r0);
            for (int r = 0; r < n; r++)
            {
                var row = x.Slice((r0 + r) * h, h);
                float max = MathF.Abs(TensorPrimitives.MaxMagnitude(row));
                scratch.Bounds[r] = ErrorBound(row, max);
                if (!double.IsFinite(scratch.Bounds[r])) return false;
                scratch.Steps[r] = K.QuantizeActivationsVnni(row, scratch.Codes.AsSpan(r * stride, stride), h, max);
            }
            K.ScreenLogitsVnni(_qv, _scale, _offset, _bias, scratch.Codes, scratch.Steps, scratch.Approx, scratch.Max, n, Blocks, h);
            for (int r = 0; r < n; r++)
            {
                int token = Decide(x.Slice((r0 + r) * h, h), w, bias, banned, scratch.Bounds[r], scratch.Approx.AsSpan(r * padded, padded), scratch.Max[r],
                    scratch.Candidates, scratch.Values, out int count, out float logit);
                if (token < 0) return false;
                next[r0 + r] = token;
                logits[r0 + r] = logit;
                logitCount += count;
            }
        }
        return true;
    }

    /// <summary>The first index of the maximum of h·wᵀ + bias (with <paramref name="banned"/> ≥ 0 that logit taken as
    /// −∞), the same index as an arg-max over the logits the GEMM computes for the row (<see cref="K.OutputBlockArgMax"/>,
    /// or <see cref="K.MatMulForward"/> with more than MatMulDotRows rows); or −1 when h is not finite (the caller then
    /// computes every logit).</summary>
    /// <param name="h">[H] the row.</param>
    /// <param name="w">[V, H] the fp32 weight this screen was built from.</param>
    /// <param name="bias">[V] its bias.</param>
    /// <param name="banned">A token that must not win, or −1.</param>
    /// <param name="approx">Scratch of <see cref="ApproxLength"/> floats.</param>
    /// <param name="candidates">Scratch of V ints.</param>
    /// <param name="values">Scratch of V floats.</param>
    /// <param name="candidateCount">How many logits were computed in fp32 (for measurements).</param>
    /// <param name="logit">The winner's logit as the GEMM computes it (<see cref="K.GemmOrderLogits"/>); NaN when −1 is returned.</param>
    public int ArgMax(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int banned,
        Span<float> approx, Span<int> candidates, Span<float> values, out int candidateCount, out float logit)
    {
        candidateCount = 0;
        logit = float.NaN;
        double e = ErrorBound(h);
        if (!double.IsFinite(e)) return -1;
        return Decide(h, w, bias, banned, e, approx, Approximate(h, approx), candidates, values, out candidateCount, out logit);
    }

    /// <summary>The rest of <see cref="ArgMax"/> once a row's approx and their maximum are known: the ban, the candidates
    /// within 2E of the maximum and their exact logits.</summary>
    private int Decide(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, int banned, double e, Span<float> approx, float max,
        Span<int> candidates, Span<float> values, out int candidateCount, out float logit)
    {
        candidateCount = 0;
        logit = float.NaN;
        if (banned >= 0 && banned < Vocab)
        {
            bool wasMax = approx[banned] == max;
            approx[banned] = float.NegativeInfinity;
            if (wasMax) max = TensorPrimitives.Max(approx[..Vocab]);
        }
        if (!float.IsFinite(max)) return -1;

        // Candidates: approx ≥ M − 2E, rounded down.
        double t = max - 2 * e;
        float threshold = (float)t;
        if (threshold > t) threshold = MathF.BitDecrement(threshold);

        int count = K.ScreenCandidates(approx, threshold, Vocab, candidates);
        candidateCount = count;
        if (count == 0) return -1;   // cannot happen for finite values (the maximum is a candidate); stay safe
        // The candidates' exact logits in the GEMM's order (bias, then one FMA per hidden unit in order), so the token and
        // its logit are those of the block path that batches of more than 16 rows take: the same whatever the batch.
        K.GemmOrderLogits(h, w, bias, candidates[..count], values, Hidden);
        int best = TensorPrimitives.IndexOfMax(values[..count]);
        logit = values[best];
        return candidates[best];
    }

    /// <summary>approx[o] for o in [0, <see cref="ApproxLength"/>) (−∞ past the vocabulary); returns their maximum.</summary>
    internal float Approximate(ReadOnlySpan<float> h, Span<float> approx)
    {
        if (!Vnni) return K.ScreenLogitsInt8(_q, _scale, _bias, h, approx, Blocks, Hidden);
        int stride = 4 * K.VnniGroups(Hidden);
        Span<byte> codes = stackalloc byte[stride];
        Span<float> step = [K.QuantizeActivationsVnni(h, codes, Hidden)], max = [0f];
        K.ScreenLogitsVnni(_qv, _scale, _offset, _bias, codes, step, approx, max, 1, Blocks, Hidden);
        return max[0];
    }

    /// <summary>E ≥ |approx_o − z_o| for every o (Kernels.Screen's bound, with a margin); not finite when h is not.</summary>
    internal double ErrorBound(ReadOnlySpan<float> h) => Hidden == 0
        ? 2 * _gamma * _bMax * (1 + 1e-3) + 1e-30
        : ErrorBound(h, MathF.Abs(TensorPrimitives.MaxMagnitude(h[..Hidden])));

    /// <summary><see cref="ErrorBound(ReadOnlySpan{float})"/> given ‖h‖∞ = <paramref name="max"/> (H &gt; 0).</summary>
    private double ErrorBound(ReadOnlySpan<float> h, float max)
    {
        // ‖h‖₁ summed in float (vectorized) is within a relative H·u of the real sum; scaled up by 2H·u it is at least it.
        // ‖h‖∞ is exact. A value that is not finite makes the result not finite.
        double h1 = TensorPrimitives.SumOfMagnitudes(h[..Hidden]) * (1 + 2.0 * Hidden * Math.ScaleB(1.0, -24));
        double hMax = max;
        // With the VNNI screen, the quantized activations differ from h by at most 0.51·s_x each (Kernels.ScreenVnni);
        // s_x is the step QuantizeActivationsVnni takes, computed the same way.
        double activations = Vnni ? 0.51 * (max / 127f) * _aMax : 0;
        return (_rMax * h1 + 2 * _gamma * (_aMax * hMax + _bMax) + activations) * (1 + 1e-3) + 1e-30;
    }
}
