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

    /// <summary>The four weights of one LSTM direction, for <see cref="ReferenceBiLayer"/>.</summary>
    public static (double[] WIh, double[] WHh, double[] BIh, double[] BHh) LstmForwardWith(double[] wIh, double[] wHh, double[] bIh, double[] bHh) => (wIh, wHh, bIh, bHh);

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
        var encBi = new ReferenceBiLayer[cfg.Layers];
        var encOut = new double[cfg.Layers][][]; var encH = new double[cfg.Layers][]; var encC = new double[cfg.Layers][];
        double[][] input = Drop(TrainingWorkspace.DropoutTensor.EncoderEmbedding, Embed(P("enc.embed"), batch.Source, ts), e);
        for (int k = 0; k < cfg.Layers; k++)
        {
            string n = $"enc.l{k}", r = $"enc.l{k}_reverse";
            if (k > 0) input = Drop(TrainingWorkspace.DropoutTensor.EncoderLayer(k - 1), input, h);   // both directions read it
            if (cfg.BidirectionalEncoder)
            {
                encBi[k] = ReferenceBiLayer.Forward(
                    LstmForwardWith(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh")),
                    LstmForwardWith(P(r + ".w_ih"), P(r + ".w_hh"), P(r + ".b_ih"), P(r + ".b_hh")),
                    k == 0 ? e : h, h / 2, input, batch.SourceLengths, bsz);
                (encOut[k], encH[k], encC[k]) = (encBi[k].Out, encBi[k].FinalH, encBi[k].FinalC);
            }
            else
            {
                encCaches[k] = LstmForward(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh"), k == 0 ? e : h, h,
                    input, encMask, new double[bsz * h], new double[bsz * h], bsz);
                (encOut[k], encH[k], encC[k]) = (encCaches[k].H, encCaches[k].H[ts - 1], encCaches[k].C[ts - 1]);
            }
            input = encOut[k];
        }
        // Learned bridge: decoder layer k starts from h0 = tanh(W_h h_enc + b_h), c0 = W_c c_enc + b_c.
        var bridgeInH = (double[][])encH.Clone(); var bridgeInC = (double[][])encC.Clone();
        double[] Affine(string w, string bias, double[] x)
        {
            double[] wv = P(w), bv = P(bias);
            var y = new double[bsz * h];
            for (int b = 0; b < bsz; b++)
                for (int o = 0; o < h; o++) { double s = bv[o]; for (int i = 0; i < h; i++) s += wv[o * h + i] * x[b * h + i]; y[b * h + o] = s; }
            return y;
        }
        for (int k = 0; k < cfg.Layers && cfg.Bridge; k++)
        {
            encH[k] = Affine($"bridge.l{k}.w_h", $"bridge.l{k}.b_h", bridgeInH[k]).Select(Math.Tanh).ToArray();
            encC[k] = Affine($"bridge.l{k}.w_c", $"bridge.l{k}.b_c", bridgeInC[k]);
        }
        input = Drop(TrainingWorkspace.DropoutTensor.DecoderEmbedding, Embed(P("dec.embed"), batch.DecoderInput, tt), e);
        // One step's x ⊙ mask ([B·W], logical rows t·B + b); the mask is its own derivative.
        double[] DropStep(int tensor, int t, double[] x, int width)
        {
            if (maskOf is null) return x;
            var y = new double[x.Length];
            for (int b = 0; b < bsz; b++) for (int j = 0; j < width; j++) y[b * width + j] = x[b * width + j] * maskOf(tensor, t * bsz + b, j);
            return y;
        }
        ReferenceAttention? feedAttention = null;
        LstmCache[,]? feedCaches = null;
        ReferenceAttention.Step[,]? feedSteps = null;
        if (cfg.InputFeeding)
        {
            // Input feeding, step by step: x_t = [emb_t; h̃_{t−1}] (h̃_{−1} = 0), every layer one step, then attention on
            // the top h gives h̃_t, which the output layer reads and the next step is fed.
            feedAttention = new ReferenceAttention(cfg, p, layout, encOut[cfg.Layers - 1], batch.SourceLengths);
            feedCaches = new LstmCache[tt, cfg.Layers]; feedSteps = new ReferenceAttention.Step[tt, bsz];
            var hs = (double[][])encH.Clone(); var cs = (double[][])encC.Clone();
            var feed = new double[bsz * h];
            var tilde = new double[tt][];
            var all = Enumerable.Repeat(true, bsz).ToArray();
            for (int t = 0; t < tt; t++)
            {
                var x = new double[bsz * (e + h)];
                for (int b = 0; b < bsz; b++) { Array.Copy(input[t], b * e, x, b * (e + h), e); Array.Copy(feed, b * h, x, b * (e + h) + e, h); }
                for (int k = 0; k < cfg.Layers; k++)
                {
                    string n = $"dec.l{k}";
                    if (k > 0) x = DropStep(TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1), t, x, h);
                    var c = LstmForward(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh"), k == 0 ? e + h : h, h, [x], [all], hs[k], cs[k], bsz);
                    feedCaches[t, k] = c; hs[k] = c.H[0]; cs[k] = c.C[0]; x = c.H[0];
                }
                tilde[t] = new double[bsz * h];
                x = DropStep(TrainingWorkspace.DropoutTensor.DecoderOutput, t, x, h);   // the attention query, not h̃
                for (int b = 0; b < bsz; b++)
                {
                    feedSteps[t, b] = feedAttention.Forward(b, x.AsSpan(b * h, h).ToArray());
                    Array.Copy(feedSteps[t, b].HTilde, 0, tilde[t], b * h, h);
                }
                feed = tilde[t];
            }
            input = tilde;
        }
        for (int k = 0; k < cfg.Layers && !cfg.InputFeeding; k++)
        {
            if (k > 0) input = Drop(TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1), input, h);
            string n = $"dec.l{k}";
            decCaches[k] = LstmForward(P(n + ".w_ih"), P(n + ".w_hh"), P(n + ".b_ih"), P(n + ".b_hh"), k == 0 ? e : h, h,
                input, decMask, encH[k], encC[k], bsz);
            input = decCaches[k].H;
        }

        // Projection and softmax cross-entropy over real positions, (b, t) order.
        // Tied embeddings: the projection weight is dec.embed itself ([Vt, E] with E = H), and its gradient lands there.
        string outName = cfg.TiedEmbeddings ? "dec.embed" : "out.w";
        double[] outW = P(outName), outB = P("out.b");
        if (!cfg.InputFeeding) input = Drop(TrainingWorkspace.DropoutTensor.DecoderOutput, input, h);
        var logits = new List<double[]>();
        var grad = new double[layout.TotalLength];
        var dTop = new double[tt][];
        for (int t = 0; t < tt; t++) dTop[t] = new double[bsz * h];
        double loss = 0, nll = 0;
        var gw = layout[outName]; var gb = layout["out.b"];
        var attention = cfg.Attention == AttentionKind.None || cfg.InputFeeding ? null : new ReferenceAttention(cfg, p, layout, encOut[cfg.Layers - 1], batch.SourceLengths);
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
        if (!cfg.InputFeeding) dTop = Drop(TrainingWorkspace.DropoutTensor.DecoderOutput, dTop, h);

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
        if (cfg.InputFeeding)
        {
            // Steps in reverse: dh̃_t = (from the output) + (from x_{t+1}); attention → dh of the top layer; layers top to
            // bottom; layer 0's dx splits into d emb_t and dh̃_{t−1}.
            for (int k = 0; k < cfg.Layers; k++) { dH0[k] = new double[bsz * h]; dC0[k] = new double[bsz * h]; }
            var dFeed = new double[bsz * h];
            var dEmb = new double[tt][];
            for (int t = tt - 1; t >= 0; t--)
            {
                var dOutside = new double[bsz * h];
                for (int b = 0; b < bsz; b++)
                {
                    var dHt = new double[h];
                    for (int j = 0; j < h; j++) dHt[j] = dTop[t][b * h + j] + dFeed[b * h + j];
                    Array.Copy(feedAttention!.Backward(feedSteps![t, b], dHt, grad, dMem), 0, dOutside, b * h, h);
                }
                dOutside = DropStep(TrainingWorkspace.DropoutTensor.DecoderOutput, t, dOutside, h);
                for (int k = cfg.Layers - 1; k >= 0; k--)
                {
                    var g = LstmBackward(feedCaches![t, k], [dOutside], dH0[k], dC0[k]);
                    string n = $"dec.l{k}";
                    AddTo(n + ".w_ih", g.DWIh); AddTo(n + ".w_hh", g.DWHh); AddTo(n + ".b_ih", g.DBIh); AddTo(n + ".b_hh", g.DBHh);
                    dH0[k] = g.DH0; dC0[k] = g.DC0;
                    dOutside = k > 0 ? DropStep(TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1), t, g.DX[0], h) : g.DX[0];
                }
                dEmb[t] = new double[bsz * e]; dFeed = new double[bsz * h];
                for (int b = 0; b < bsz; b++)
                {
                    Array.Copy(dOutside, b * (e + h), dEmb[t], b * e, e);
                    Array.Copy(dOutside, b * (e + h) + e, dFeed, b * h, h);
                }
            }
            dOut = Drop(TrainingWorkspace.DropoutTensor.DecoderEmbedding, dEmb, e);
        }
        for (int k = cfg.Layers - 1; k >= 0 && !cfg.InputFeeding; k--)
        {
            var g = LstmBackward(decCaches[k], dOut, new double[bsz * h], new double[bsz * h]);
            string n = $"dec.l{k}";
            AddTo(n + ".w_ih", g.DWIh); AddTo(n + ".w_hh", g.DWHh); AddTo(n + ".b_ih", g.DBIh); AddTo(n + ".b_hh", g.DBHh);
            dH0[k] = g.DH0; dC0[k] = g.DC0;
            dOut = Drop(k > 0 ? TrainingWorkspace.DropoutTensor.DecoderLayer(k - 1) : TrainingWorkspace.DropoutTensor.DecoderEmbedding, g.DX, k > 0 ? h : e);
        }
        ScatterEmbed("dec.embed", batch.DecoderInput, tt, dOut.Select(a => a!).ToArray());
        for (int k = 0; k < cfg.Layers && cfg.Bridge; k++)
        {
            // Backward of the bridge: dPre = dh0 ⊙ (1 − h0²) for h; c is linear.
            (string W, string B, double[] X, double[] DY)[] parts =
            [
                ($"bridge.l{k}.w_h", $"bridge.l{k}.b_h", bridgeInH[k], dH0[k].Select((d, i) => d * (1 - encH[k][i] * encH[k][i])).ToArray()),
                ($"bridge.l{k}.w_c", $"bridge.l{k}.b_c", bridgeInC[k], dC0[k]),
            ];
            var dIn = new double[2][];
            for (int q = 0; q < 2; q++)
            {
                var (wName, bName, x, dy) = parts[q];
                double[] wv = P(wName);
                var dw = new double[h * h]; var db = new double[h]; dIn[q] = new double[bsz * h];
                for (int b = 0; b < bsz; b++)
                {
                    for (int o = 0; o < h; o++)
                    {
                        db[o] += dy[b * h + o];
                        for (int i = 0; i < h; i++) { dw[o * h + i] += dy[b * h + o] * x[b * h + i]; dIn[q][b * h + i] += dy[b * h + o] * wv[o * h + i]; }
                    }
                }
                AddTo(wName, dw); AddTo(bName, db);
            }
            dH0[k] = dIn[0]; dC0[k] = dIn[1];
        }
        dOut = cfg.Attention == AttentionKind.None ? new double[ts][] : dMem;
        for (int k = cfg.Layers - 1; k >= 0; k--)
        {
            string n = $"enc.l{k}";
            if (cfg.BidirectionalEncoder)
            {
                var (dx, gf, gr) = encBi[k].Backward(dOut, dH0[k], dC0[k]);
                string r = $"enc.l{k}_reverse";
                AddTo(n + ".w_ih", gf.DWIh); AddTo(n + ".w_hh", gf.DWHh); AddTo(n + ".b_ih", gf.DBIh); AddTo(n + ".b_hh", gf.DBHh);
                AddTo(r + ".w_ih", gr.DWIh); AddTo(r + ".w_hh", gr.DWHh); AddTo(r + ".b_ih", gr.DBIh); AddTo(r + ".b_hh", gr.DBHh);
                dOut = Drop(k > 0 ? TrainingWorkspace.DropoutTensor.EncoderLayer(k - 1) : TrainingWorkspace.DropoutTensor.EncoderEmbedding, dx, k > 0 ? h : e);
                continue;
            }
            var g = LstmBackward(encCaches[k], dOut, dH0[k], dC0[k]);
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

/// <summary>One bidirectional encoder layer, plainly: the forward LSTM over each row's real tokens, the backward
/// LSTM over them in reverse (its own masked sequence, so padding is never seen), outputs [fwd; bwd] per real
/// position (0 at padding), final states [fwd after the last token; bwd after the first].</summary>
internal sealed class ReferenceBiLayer
{
    private LstmCache _fwd = null!, _rev = null!;
    private int[] _lengths = [];
    private int _d, _batch, _steps, _inDim;
    public double[][] Out { get; private set; } = [];
    public double[] FinalH { get; private set; } = [];
    public double[] FinalC { get; private set; } = [];

    public static ReferenceBiLayer Forward((double[] WIh, double[] WHh, double[] BIh, double[] BHh) f, (double[] WIh, double[] WHh, double[] BIh, double[] BHh) r,
        int inDim, int d, double[][] x, int[] lengths, int batch)
    {
        int steps = x.Length;
        var mask = new bool[steps][];
        var xr = new double[steps][];
        for (int t = 0; t < steps; t++)
        {
            mask[t] = new bool[batch]; xr[t] = new double[batch * inDim];
            for (int b = 0; b < batch; b++)
            {
                mask[t][b] = t < lengths[b];
                if (t < lengths[b]) Array.Copy(x[lengths[b] - 1 - t], b * inDim, xr[t], b * inDim, inDim);
            }
        }
        var layer = new ReferenceBiLayer { _lengths = lengths, _d = d, _batch = batch, _steps = steps, _inDim = inDim };
        layer._fwd = ScalarReference.LstmForward(f.WIh, f.WHh, f.BIh, f.BHh, inDim, d, x, mask, new double[batch * d], new double[batch * d], batch);
        layer._rev = ScalarReference.LstmForward(r.WIh, r.WHh, r.BIh, r.BHh, inDim, d, xr, mask, new double[batch * d], new double[batch * d], batch);
        layer.Out = new double[steps][];
        for (int s = 0; s < steps; s++)
        {
            layer.Out[s] = new double[batch * 2 * d];
            for (int b = 0; b < batch; b++)
            {
                if (s >= lengths[b]) continue;
                Array.Copy(layer._fwd.H[s], b * d, layer.Out[s], b * 2 * d, d);
                Array.Copy(layer._rev.H[lengths[b] - 1 - s], b * d, layer.Out[s], b * 2 * d + d, d);
            }
        }
        layer.FinalH = new double[batch * 2 * d]; layer.FinalC = new double[batch * 2 * d];
        for (int b = 0; b < batch; b++)
        {
            Array.Copy(layer._fwd.H[steps - 1], b * d, layer.FinalH, b * 2 * d, d);
            Array.Copy(layer._rev.H[steps - 1], b * d, layer.FinalH, b * 2 * d + d, d);
            Array.Copy(layer._fwd.C[steps - 1], b * d, layer.FinalC, b * 2 * d, d);
            Array.Copy(layer._rev.C[steps - 1], b * d, layer.FinalC, b * 2 * d + d, d);
        }
        return layer;
    }

    /// <summary>dOut [T][B·2D] (entries may be null), dH/dC of the final states [B·2D]; returns dX and both directions' gradients.</summary>
    public (double[][] DX, LstmGrads Forward, LstmGrads Reverse) Backward(double[]?[] dOut, double[] dFinalH, double[] dFinalC)
    {
        int d = _d, batch = _batch, steps = _steps, inDim = _inDim;
        var dF = new double[steps][]; var dR = new double[steps][];
        for (int t = 0; t < steps; t++) { dF[t] = new double[batch * d]; dR[t] = new double[batch * d]; }
        for (int s = 0; s < steps; s++)
        {
            if (dOut[s] is not { } g) continue;
            for (int b = 0; b < batch; b++)
            {
                if (s >= _lengths[b]) continue;
                Array.Copy(g, b * 2 * d, dF[s], b * d, d);
                Array.Copy(g, b * 2 * d + d, dR[_lengths[b] - 1 - s], b * d, d);
            }
        }
        double[] Half(double[] v, int offset)
        {
            var o = new double[batch * d];
            for (int b = 0; b < batch; b++) Array.Copy(v, b * 2 * d + offset, o, b * d, d);
            return o;
        }
        var gf = ScalarReference.LstmBackward(_fwd, dF, Half(dFinalH, 0), Half(dFinalC, 0));
        var gr = ScalarReference.LstmBackward(_rev, dR, Half(dFinalH, d), Half(dFinalC, d));
        var dx = new double[steps][];
        for (int s = 0; s < steps; s++)
        {
            dx[s] = (double[])gf.DX[s].Clone();
            for (int b = 0; b < batch; b++)
            {
                if (s >= _lengths[b]) continue;
                for (int i = 0; i < inDim; i++) dx[s][b * inDim + i] += gr.DX[_lengths[b] - 1 - s][b * inDim + i];
            }
        }
        return (dx, gf, gr);
    }
}
