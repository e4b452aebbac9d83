// ScalarReference: the seq2seq model written plainly in double precision, for clarity, not speed.
// It is independent of the engine on purpose: padding is handled with per-step masks (a masked row
// carries its state unchanged) instead of packing, every step is computed row by row, and the
// softmax cross-entropy is a textbook log-sum-exp. Its analytic gradients are checked against central
// finite differences; the float engine is then checked against it.

using Seqtalk.Data;
using Seqtalk.Nn;

namespace Seqtalk.Tests.Reference;

/// <summary>Cache of one LSTM layer's forward pass over T steps (time-major lists of [B, ·] arrays).</summary>
internal sealed class LstmCache
{
    public required int Batch, InDim, Hidden;
    public required double[] WIh, WHh, BIh, BHh;
    public required double[][] X;                // [T][B·in]
    public required bool[][] Mask;              // [T][B]
    public required double[][] Gates, C, H;     // [T][B·4H] post-activation, [T][B·H], [T][B·H]
    public required double[] H0, C0;            // [B·H]
}

internal sealed record LstmGrads(double[][] DX, double[] DH0, double[] DC0, double[] DWIh, double[] DWHh, double[] DBIh, double[] DBHh);

/// <summary>LossSum is the loss that was differentiated (label-smoothed when smoothing is on); NllSum the true cross-entropy.</summary>
internal sealed record ReferenceResult(double LossSum, double[][] Logits, double[] Gradients)
{
    public double NllSum { get; init; } = LossSum;
}

/// <summary>Training-time extras: fixed dropout masks and label smoothing ε (PyTorch semantics: target (1−ε)·onehot + ε/V).</summary>
/// <param name="Mask">Mask value (0 or 1/(1−p), or anything else) of element j of tensor id (TrainingWorkspace.DropoutTensor) at
/// logical row key t·B + b; null for no dropout.</param>
/// <param name="Smoothing">ε.</param>
internal sealed record ReferenceRegularization(Func<int, int, int, double>? Mask, double Smoothing);

internal static class ScalarReference
{
    private static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

    /// <summary>LSTM over T steps with masks and an initial state; a masked row keeps its (h, c).</summary>
    public static LstmCache LstmForward(double[] wIh, double[] wHh, double[] bIh, double[] bHh, int inDim, int hidden,
        double[][] x, bool[][] mask, double[] h0, double[] c0, int batch)
    {
        int steps = x.Length, g4 = 4 * hidden;
        var gates = new double[steps][]; var cs = new double[steps][]; var hs = new double[steps][];
        for (int t = 0; t < steps; t++)
        {
            double[] hp = t == 0 ? h0 : hs[t - 1], cp = t == 0 ? c0 : cs[t - 1];
            gates[t] = new double[batch * g4]; cs[t] = new double[batch * hidden]; hs[t] = new double[batch * hidden];
            for (int b = 0; b < batch; b++)
            {
                if (!mask[t][b])
                {
                    Array.Copy(hp, b * hidden, hs[t], b * hidden, hidden);
                    Array.Copy(cp, b * hidden, cs[t], b * hidden, hidden);
                    continue;
                }
                var pre = new double[g4];
                for (int q = 0; q < g4; q++)
                {
                    double s = bIh[q] + bHh[q];
                    for (int i = 0; i < inDim; i++) s += wIh[q * inDim + i] * x[t][b * inDim + i];
                    for (int j = 0; j < hidden; j++) s += wHh[q * hidden + j] * hp[b * hidden + j];
                    pre[q] = s;
                }
                for (int j = 0; j < hidden; j++)
                {
                    double ig = Sigmoid(pre[j]), fg = Sigmoid(pre[hidden + j]), gg = Math.Tanh(pre[2 * hidden + j]), og = Sigmoid(pre[3 * hidden + j]);
                    double c = fg * cp[b * hidden + j] + ig * gg;
                    gates[t][b * g4 + j] = ig; gates[t][b * g4 + hidden + j] = fg;
                    gates[t][b * g4 + 2 * hidden + j] = gg; gates[t][b * g4 + 3 * hidden + j] = og;
                    cs[t][b * hidden + j] = c;
                    hs[t][b * hidden + j] = og * Math.Tanh(c);
                }
            }
        }
        return new LstmCache
        {
            Batch = batch,
            InDim = inDim,
            Hidden = hidden,
            WIh = wIh,
            WHh = wHh,
            BIh = bIh,
            BHh = bHh,
            X = x,
            Mask = mask,
            Gates = gates,
            C = cs,
            H = hs,
            H0 = h0,
            C0 = c0,
        };
    }

    /// <summary>Backward of <see cref="LstmForward"/>. dHOut[t] (may be null) is the gradient reaching
    /// h_t from outside; dHT, dCT reach the final state.</summary>
    public static LstmGrads LstmBackward(LstmCache k, double[]?[] dHOut, double[] dHT, double[] dCT)
    {
        int steps = k.X.Length, hidden = k.Hidden, inDim = k.InDim, g4 = 4 * hidden, batch = k.Batch;
        var dX = new double[steps][];
        var dWIh = new double[k.WIh.Length]; var dWHh = new double[k.WHh.Length];
        var dBIh = new double[g4]; var dBHh = new double[g4];
        var dh = (double[])dHT.Clone(); var dc = (double[])dCT.Clone();
        for (int t = steps - 1; t >= 0; t--)
        {
            dX[t] = new double[batch * inDim];
            double[] hp = t == 0 ? k.H0 : k.H[t - 1], cp = t == 0 ? k.C0 : k.C[t - 1];
            for (int b = 0; b < batch; b++)
            {
                if (dHOut[t] is { } outside)
                    for (int j = 0; j < hidden; j++) dh[b * hidden + j] += outside[b * hidden + j];
                if (!k.Mask[t][b]) continue;   // h_t = h_{t-1}, c_t = c_{t-1}: gradients pass through unchanged
                var dpre = new double[g4];
                for (int j = 0; j < hidden; j++)
                {
                    int s = b * hidden + j, gi = b * g4 + j;
                    double ig = k.Gates[t][gi], fg = k.Gates[t][gi + hidden], gg = k.Gates[t][gi + 2 * hidden], og = k.Gates[t][gi + 3 * hidden];
                    double tc = Math.Tanh(k.C[t][s]);
                    double dct = dc[s] + dh[s] * og * (1 - tc * tc);
                    dpre[j] = dct * gg * ig * (1 - ig);
                    dpre[hidden + j] = dct * cp[s] * fg * (1 - fg);
                    dpre[2 * hidden + j] = dct * ig * (1 - gg * gg);
                    dpre[3 * hidden + j] = dh[s] * tc * og * (1 - og);
                    dc[s] = dct * fg;
                }
                for (int j = 0; j < hidden; j++) dh[b * hidden + j] = 0;
                for (int q = 0; q < g4; q++)
                {
                    dBIh[q] += dpre[q]; dBHh[q] += dpre[q];
                    for (int i = 0; i < inDim; i++)
                    {
                        dWIh[q * inDim + i] += dpre[q] * k.X[t][b * inDim + i];
                        dX[t][b * inDim + i] += dpre[q] * k.WIh[q * inDim + i];
                    }
                    for (int j = 0; j < hidden; j++)
                    {
                        dWHh[q * hidden + j] += dpre[q] * hp[b * hidden + j];
                        dh[b * hidden + j] += dpre[q] * k.WHh[q * hidden + j];
                    }
                }
            }
        }
        return new LstmGrads(dX, dh, dc, dWIh, dWHh, dBIh, dBHh);
    }

    /// <summary>Loss sum Σ −log softmax(z)[y] over the real target positions, the logits of those positions
    /// ordered by (b, t), and (optionally) d(LossSum)/dθ in the flat layout.</summary>
    public static ReferenceResult Seq2Seq(ModelConfig cfg, double[] p, Batch batch, bool gradients, ReferenceRegularization? reg = null)
    {
        var layout = ParameterLayout.ForSeq2Seq(cfg);
        int bsz = batch.Size, ts = batch.SourceSteps, tt = batch.TargetSteps, e = cfg.EmbeddingDim, h = cfg.HiddenDim, vt = cfg.TargetVocabSize;
        double eps = reg?.Smoothing ?? 0;
        var maskOf = reg?.Mask;
        // x ⊙ mask for a [T][B·W] time-major tensor (a new array: the caches keep the undropped values).
        // The same function scales gradients on the way back (the mask is its own derivative).
        double[][] Drop(int tensor, double[][] x, int width)
        {
            if (maskOf is null) return x;
            var y = new double[x.Length][];
            for (int t = 0; t < x.Length; t++)
            {
                y[t] = new double[x[t].Length];
                for (int b = 0; b < bsz; b++) for (int j = 0; j < width; j++) y[t][b * width + j] = x[t][b * width + j] * maskOf(tensor, t * bsz + b, j);
            }
            return y;
        }
        double[] P(string name) { var s = layout[name]; return p.AsSpan(s.Offset, s.Length).ToArray(); }
        double[][] Embed(double[] table, int[] ids, int steps)
        {
            var xs = new double[steps][];
            for (int t = 0; t < steps; t++)
            {
                xs[t] = new double[bsz * e];
                for (int b = 0; b < bsz; b++) Array.Copy(table, ids[b * steps + t] * e, xs[t], b * e, e);
            }
            return xs;
        }

        // Encoder
        var encMask = new bool[ts][];
        for (int t = 0; t < ts; t++) { encMask[t] = new bool[bsz]; for (int b = 0; b < bsz; b++) encMask[t][b] = t < batch.SourceLengths[b]; }
        var decMask = new bool[tt][];
        for (int t = 0; t < tt; t++) { decMask[t] = new bool[bsz]; Array.Fill(decMask[t], true); }
        var encCaches = new LstmCache[cfg.Layers]; var decCaches = new LstmCache[cfg.Layers];
        double[][] input = Drop(TrainingWorkspace.DropoutTensor.EncoderEmbedding, Embed(P("enc.embed"), batch.Source, ts), e);
        for (int k = 0; k < cfg.Layers; k++)
        {
            if (k > 0) input = Drop(TrainingWorkspace.DropoutTensor.EncoderLayer(k - 1), input, h);
            string n = $"enc.l{k}";
            encCaches[k] = LstmForward(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh"), k == 0 ? e : h, h,
                input, encMask, new double[bsz * h], new double[bsz * h], bsz);
            input = encCaches[k].H;
        }
        input = Drop(TrainingWorkspace.DropoutTensor.DecoderEmbedding, Embed(P("dec.embed"), batch.DecoderInput, tt), e);
        for (int k = 0; k < cfg.Layers; k++)
        {
            if (k > 0) input = Drop(TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1), input, h);
            string n = $"dec.l{k}";
            decCaches[k] = LstmForward(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh"), k == 0 ? e : h, h,
                input, decMask, encCaches[k].H[ts - 1], encCaches[k].C[ts - 1], bsz);
            input = decCaches[k].H;
        }

        // Projection and softmax cross-entropy over real positions, (b, t) order.
        // Tied embeddings: the projection weight is dec.embed itself ([Vt, E] with E = H), and its gradient lands there.
        string outName = cfg.TiedEmbeddings ? "dec.embed" : "out.w";
        double[] outW = P(outName), outB = P("out.b");
        input = Drop(TrainingWorkspace.DropoutTensor.DecoderOutput, input, h);
        var logits = new List<double[]>();
        var grad = new double[layout.TotalLength];
        var dTop = new double[tt][];
        for (int t = 0; t < tt; t++) dTop[t] = new double[bsz * h];
        double loss = 0, nll = 0;
        var gw = layout[outName]; var gb = layout["out.b"];
        var attention = cfg.Attention == AttentionKind.None ? null : new ReferenceAttention(cfg, p, layout, encCaches[cfg.Layers - 1].H, batch.SourceLengths);
        var dMem = new double[ts][];
        for (int t = 0; t < ts; t++) dMem[t] = new double[bsz * h];
        for (int b = 0; b < bsz; b++)
        {
            for (int t = 0; t < batch.TargetLengths[b]; t++)
            {
                double[] hDec = input[t].AsSpan(b * h, h).ToArray();
                var step = attention?.Forward(b, hDec);
                var hv = step?.HTilde ?? hDec;
                var dHv = new double[h];
                var z = new double[vt];
                for (int v = 0; v < vt; v++) { double s = outB[v]; for (int j = 0; j < h; j++) s += outW[v * h + j] * hv[j]; z[v] = s; }
                logits.Add(z);
                int y = batch.DecoderTarget[b * tt + t];
                double max = z.Max(), sum = 0;
                foreach (double zv in z) sum += Math.Exp(zv - max);
                double lse = Math.Log(sum) + max;
                nll += lse - z[y];
                loss += (1 - eps) * (lse - z[y]) + eps * (lse - z.Average());   // −Σ q·log p, q = (1−ε)·onehot + ε/V
                for (int v = 0; v < vt; v++)
                {
                    double dz = Math.Exp(z[v] - max) / sum - ((v == y ? 1 - eps : 0) + eps / vt);
                    grad[gb.Offset + v] += dz;
                    for (int j = 0; j < h; j++) { grad[gw.Offset + v * h + j] += dz * hv[j]; dHv[j] += dz * outW[v * h + j]; }
                }
                if (step is not null) dHv = attention!.Backward(step, dHv, grad, dMem);
                for (int j = 0; j < h; j++) dTop[t][b * h + j] += dHv[j];
            }
        }
        if (!gradients) return new ReferenceResult(loss, [.. logits], grad) { NllSum = nll };
        dTop = Drop(TrainingWorkspace.DropoutTensor.DecoderOutput, dTop, h);

        void AddTo(string name, double[] g) { var s = layout[name]; for (int i = 0; i < g.Length; i++) grad[s.Offset + i] += g[i]; }
        void ScatterEmbed(string name, int[] ids, int steps, double[][] dX)
        {
            var s = layout[name];
            for (int t = 0; t < steps; t++) for (int b = 0; b < bsz; b++) for (int j = 0; j < e; j++)
                grad[s.Offset + ids[b * steps + t] * e + j] += dX[t][b * e + j];
        }

        // Backward, reverse order: decoder layers, decoder embedding, encoder layers, encoder embedding.
        double[]?[] dOut = dTop;
        var dH0 = new double[cfg.Layers][]; var dC0 = new double[cfg.Layers][];
        for (int k = cfg.Layers - 1; k >= 0; k--)
        {
            var g = LstmBackward(decCaches[k], dOut, new double[bsz * h], new double[bsz * h]);
            string n = $"dec.l{k}";
            AddTo(n + ".w_ih", g.DWIh); AddTo(n + ".w_hh", g.DWHh); AddTo(n + ".b_ih", g.DBIh); AddTo(n + ".b_hh", g.DBHh);
            dH0[k] = g.DH0; dC0[k] = g.DC0;
            dOut = Drop(k > 0 ? TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1) : TrainingWorkspace.DropoutTensor.DecoderEmbedding, g.DX, k > 0 ? h : e);
        }
        ScatterEmbed("dec.embed", batch.DecoderInput, tt, dOut.Select(a => a!).ToArray());
        dOut = attention is null ? new double[ts][] : dMem;
        for (int k = cfg.Layers - 1; k >= 0; k--)
        {
            var g = LstmBackward(encCaches[k], dOut, dH0[k], dC0[k]);
            string n = $"enc.l{k}";
            AddTo(n + ".w_ih", g.DWIh); AddTo(n + ".w_hh", g.DWHh); AddTo(n + ".b_ih", g.DBIh); AddTo(n + ".b_hh", g.DBHh);
            dOut = Drop(k > 0 ? TrainingWorkspace.DropoutTensor.EncoderLayer(k - 1) : TrainingWorkspace.DropoutTensor.EncoderEmbedding, g.DX, k > 0 ? h : e);
        }
        ScatterEmbed("enc.embed", batch.Source, ts, dOut.Select(a => a!).ToArray());
        return new ReferenceResult(loss, [.. logits], grad) { NllSum = nll };
    }
}

/// <summary>Attention of one decoder position, plainly: scores over the row's real source steps, softmax, context,
/// h̃ = tanh(W_c [c; h]). Keeps what its backward needs.</summary>
internal sealed class ReferenceAttention(ModelConfig cfg, double[] p, ParameterLayout layout, double[][] memory, int[] sourceLengths)
{
    private readonly int _h = cfg.HiddenDim;
    private double[] P(string name) => layout.TryGetSlot(name, out var s) ? p.AsSpan(s.Offset, s.Length).ToArray() : [];
    private readonly double[] _wc = layout.TryGetSlot(ParameterLayout.Names.AttentionCombine, out var c) ? p.AsSpan(c.Offset, c.Length).ToArray() : [];

    internal sealed record Step(int Row, double[] HDec, double[][] Keys, double[] QueryProj, double[][] U, double[] Weights, double[] Context, double[] HTilde);

    private double[] Mem(int b, int s) => memory[s].AsSpan(b * _h, _h).ToArray();

    private static double[] MatVec(double[] w, double[] x, int rows, int cols)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++) { double sum = 0; for (int i = 0; i < cols; i++) sum += w[r * cols + i] * x[i]; y[r] = sum; }
        return y;
    }

    public Step Forward(int b, double[] hDec)
    {
        int h = _h, len = sourceLengths[b];
        var keys = new double[len][]; var u = new double[len][]; var scores = new double[len];
        double[] qp = [];
        if (cfg.Attention == AttentionKind.Bahdanau) qp = MatVec(P(ParameterLayout.Names.AttentionQuery), hDec, h, h);
        for (int s = 0; s < len; s++)
        {
            double[] m = Mem(b, s);
            switch (cfg.Attention)
            {
                case AttentionKind.Dot: keys[s] = m; break;
                case AttentionKind.General: keys[s] = MatVec(P(ParameterLayout.Names.AttentionGeneral), m, h, h); break;
                case AttentionKind.Bahdanau:
                    keys[s] = MatVec(P(ParameterLayout.Names.AttentionKey), m, h, h);
                    u[s] = new double[h];
                    for (int j = 0; j < h; j++) u[s][j] = Math.Tanh(qp[j] + keys[s][j]);
                    break;
                case AttentionKind.None: throw new InvalidOperationException();
            }
            double[] v = P(ParameterLayout.Names.AttentionScore);
            double sc = 0;
            for (int j = 0; j < h; j++) sc += cfg.Attention == AttentionKind.Bahdanau ? v[j] * u[s][j] : hDec[j] * keys[s][j];
            scores[s] = sc;
        }
        double max = scores.Max(), sum = 0;
        var a = new double[len];
        for (int s = 0; s < len; s++) { a[s] = Math.Exp(scores[s] - max); sum += a[s]; }
        for (int s = 0; s < len; s++) a[s] /= sum;
        var ctx = new double[h];
        for (int s = 0; s < len; s++) { double[] m = Mem(b, s); for (int j = 0; j < h; j++) ctx[j] += a[s] * m[j]; }
        var ht = new double[h];
        for (int r = 0; r < h; r++)
        {
            double pre = 0;
            for (int j = 0; j < h; j++) pre += _wc[r * 2 * h + j] * ctx[j] + _wc[r * 2 * h + h + j] * hDec[j];
            ht[r] = Math.Tanh(pre);
        }
        return new Step(b, hDec, keys, qp, u, a, ctx, ht);
    }

    /// <summary>Adds the attention parameters' gradients into grad and d memory into dMem[s][b·H]; returns dh_t.</summary>
    public double[] Backward(Step st, double[] dHTilde, double[] grad, double[][] dMem)
    {
        int h = _h, b = st.Row, len = st.Weights.Length;
        var wcSlot = layout[ParameterLayout.Names.AttentionCombine];
        var dCtx = new double[h]; var dh = new double[h];
        for (int r = 0; r < h; r++)
        {
            double dPre = dHTilde[r] * (1 - st.HTilde[r] * st.HTilde[r]);
            for (int j = 0; j < h; j++)
            {
                grad[wcSlot.Offset + r * 2 * h + j] += dPre * st.Context[j];
                grad[wcSlot.Offset + r * 2 * h + h + j] += dPre * st.HDec[j];
                dCtx[j] += dPre * _wc[r * 2 * h + j];
                dh[j] += dPre * _wc[r * 2 * h + h + j];
            }
        }
        var dA = new double[len];
        double dot = 0;
        for (int s = 0; s < len; s++)
        {
            double[] m = Mem(b, s);
            for (int j = 0; j < h; j++) { dA[s] += dCtx[j] * m[j]; dMem[s][b * h + j] += st.Weights[s] * dCtx[j]; }
            dot += st.Weights[s] * dA[s];
        }
        var dqp = new double[h];
        for (int s = 0; s < len; s++)
        {
            double dScore = st.Weights[s] * (dA[s] - dot);
            var dKey = new double[h];
            switch (cfg.Attention)
            {
                case AttentionKind.Dot:
                case AttentionKind.General:
                    for (int j = 0; j < h; j++) { dh[j] += dScore * st.Keys[s][j]; dKey[j] = dScore * st.HDec[j]; }
                    break;
                case AttentionKind.Bahdanau:
                    {
                        var vSlot = layout[ParameterLayout.Names.AttentionScore];
                        double[] v = P(ParameterLayout.Names.AttentionScore);
                        for (int j = 0; j < h; j++)
                        {
                            grad[vSlot.Offset + j] += dScore * st.U[s][j];
                            double dPre = dScore * v[j] * (1 - st.U[s][j] * st.U[s][j]);
                            dqp[j] += dPre; dKey[j] = dPre;
                        }
                        break;
                    }
                case AttentionKind.None: throw new InvalidOperationException();
            }
            double[] m = Mem(b, s);
            if (cfg.Attention == AttentionKind.Dot)
            {
                for (int j = 0; j < h; j++) dMem[s][b * h + j] += dKey[j];
                continue;
            }
            // keys = W m (W_a or W_k): dW += dKey ⊗ m; dm += Wᵀ dKey.
            string wName = cfg.Attention == AttentionKind.General ? ParameterLayout.Names.AttentionGeneral : ParameterLayout.Names.AttentionKey;
            var wSlot = layout[wName]; double[] w = P(wName);
            for (int r = 0; r < h; r++)
            {
                for (int j = 0; j < h; j++) { grad[wSlot.Offset + r * h + j] += dKey[r] * m[j]; dMem[s][b * h + j] += w[r * h + j] * dKey[r]; }
            }
        }
        if (cfg.Attention == AttentionKind.Bahdanau)
        {
            var qSlot = layout[ParameterLayout.Names.AttentionQuery]; double[] wq = P(ParameterLayout.Names.AttentionQuery);
            for (int r = 0; r < h; r++)
            {
                for (int j = 0; j < h; j++) { grad[qSlot.Offset + r * h + j] += dqp[r] * st.HDec[j]; dh[j] += wq[r * h + j] * dqp[r]; }
            }
        }
        return dh;
    }
}
