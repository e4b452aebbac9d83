#!/usr/bin/python3
"""Write the PyTorch parity fixtures that tests/Seqtalk.Tests/Parity/PytorchParityTests.cs checks.

Builds the Seq2Seq model exactly as the Seqtalk engine defines it (src/Seqtalk/Nn/ParameterLayout.cs,
src/Seqtalk/Data/Batch.cs), with fixed seeded weights and one tiny batch, and writes one JSON file
per case to tests/Seqtalk.Tests/Fixtures/:

  encoder: enc.embed -> nn.LSTM stack (batch_first), packed by source length, so each row's final
           (h, c) of layer k is taken after its last real token
  decoder: final (h, c) of encoder layer k seeds decoder layer k; dec.embed -> nn.LSTM stack over
           the decoder input (<s> y1..yn, post-padded)
  bidirectional encoder (optional, "bidirectional_encoder"): nn.LSTM(bidirectional=True) with H/2 per
           direction; decoder layer k starts from [fwd; bwd] final states of encoder layer k
  input feeding (optional, "input_feeding", with attention): the decoder runs step by step on
           x_t = [emb_t; h~_{t-1}] (h~_{-1} = 0), so dec.l0.w_ih is [4H, E + H]; h~_t = attention on the top h_t
  bridge (optional, "bridge"): decoder layer k starts from tanh(Linear_h(h_k)), Linear_c(c_k) of encoder
           layer k's final states (bridge.l{k}.w_h/b_h/w_c/b_c, between the encoder and dec.embed)
  attention (optional, "attention" in the config): memory = the top encoder layer's outputs at the real
           source steps (pad_packed_sequence); score dot h.m, general h.(W_a m) or Bahdanau
           v.tanh(W_q h + W_k m); padded source steps masked; a = softmax; c = sum a m;
           h~ = tanh(W_c [c; h]) (no bias) replaces h before the output layer
  output:  out.w/out.b applied to the real target positions only, gathered in (b, t) order
  loss:    cross-entropy over the real target tokens (y1..yn </s>), mean over those tokens

Then 10 steps of Keras RMSprop written by hand on the same batch (ms = rho*ms + (1-rho)*g^2;
p -= lr*g/sqrt(ms + eps)), and a standalone single-layer LSTM case.

The weights are drawn in float32 (so the C# engine holds them exactly), the computation runs in
float64: the fixture is the exact answer for those float32 weights, free of PyTorch's own float32
rounding. The script also re-runs every case in float32 and prints how far that lands from the
float64 answer, as evidence that a float32 engine can meet the tolerances in STYLE.md.

Run by hand (CI has no Python): /usr/bin/python3 tests/reference/make_fixtures.py
"""

import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

MAGIC = "seqtalk-pytorch-fixture"
VERSION = 1

PAD, UNK, START, END = 0, 1, 2, 3   # src/Seqtalk/Text/SpecialTokens.cs
FIRST_WORD = 4

RMSPROP = {"lr": 1e-2, "rho": 0.9, "eps": 1e-7, "steps": 10}


# ---------------------------------------------------------------------------------------------
# The model, in our layout
# ---------------------------------------------------------------------------------------------

class Seq2Seq(nn.Module):
    def __init__(self, vs, vt, e, h, layers, attention="none", bidirectional=False, bridge=False, input_feeding=False):
        super().__init__()
        self.hidden = h
        self.input_feeding = input_feeding
        # Learned bridge: per layer one Linear(H, H) for h (then tanh) and one for c (ParameterLayout.AddBridge).
        self.bridge_h = nn.ModuleList([nn.Linear(h, h) for _ in range(layers)]) if bridge else None
        self.bridge_c = nn.ModuleList([nn.Linear(h, h) for _ in range(layers)]) if bridge else None
        self.enc_embed = nn.Embedding(vs, e)
        # Bidirectional: H/2 per direction, outputs [fwd; bwd] = H wide, as ParameterLayout.AddBidirectionalLstm.
        self.bidirectional = bidirectional
        self.enc = nn.LSTM(e, h // 2 if bidirectional else h, layers, batch_first=True, bidirectional=bidirectional)
        self.dec_embed = nn.Embedding(vt, e)
        self.dec = nn.LSTM(e + h if input_feeding else e, h, layers, batch_first=True)
        self.out = nn.Linear(h, vt)
        self.layers = layers
        self.attention = attention
        # Attention tensors in ParameterLayout order (names in ParameterLayout.Names); none has a bias.
        self.attn = []
        if attention == "general":
            self.attn.append(("attn.w_a", nn.Parameter(torch.empty(h, h))))
        elif attention == "bahdanau":
            self.attn += [("attn.w_q", nn.Parameter(torch.empty(h, h))), ("attn.w_k", nn.Parameter(torch.empty(h, h))),
                          ("attn.v", nn.Parameter(torch.empty(h)))]
        if attention != "none":
            self.attn.append(("attn.w_c", nn.Parameter(torch.empty(h, 2 * h))))
        for i, (_, p) in enumerate(self.attn):
            self.register_parameter(f"attn_{i}", p)

    def layout(self):
        """(our name, tensor) in ParameterLayout.ForSeq2Seq order. PyTorch's own layouts already
        match ours (W_ih [4H, in], W_hh [4H, H], gate order i, f, g, o; Linear [out, in])."""
        entries = [("enc.embed", self.enc_embed.weight)]
        entries += lstm_entries("enc", self.enc, self.layers, self.bidirectional)
        if self.bridge_h is not None:
            for k in range(self.layers):
                entries += [(f"bridge.l{k}.w_h", self.bridge_h[k].weight), (f"bridge.l{k}.b_h", self.bridge_h[k].bias),
                            (f"bridge.l{k}.w_c", self.bridge_c[k].weight), (f"bridge.l{k}.b_c", self.bridge_c[k].bias)]
        entries.append(("dec.embed", self.dec_embed.weight))
        entries += lstm_entries("dec", self.dec, self.layers)
        entries += self.attn
        entries.append(("out.w", self.out.weight))
        entries.append(("out.b", self.out.bias))
        return entries

    def forward(self, b):
        # Encoder: packed, so padding is never fed and h_n/c_n are each row's state after its
        # last real token. Rows are sorted by source length, longest first (Batch.cs).
        x = self.enc_embed(b["source"])                                   # [B, Ts, E]
        packed = pack_padded_sequence(x, b["source_lengths"], batch_first=True, enforce_sorted=True)
        packed_out, (h_n, c_n) = self.enc(packed)                         # [L, B, H] each ([2L, B, H/2] bidirectional)
        h_n, c_n = self.init_state(h_n, c_n)
        # Decoder: padding comes after the real positions, so it cannot change them; no packing needed.
        emb = self.dec_embed(b["decoder_input"])
        if self.input_feeding:
            memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=b["source"].shape[1])
            y = self.decode_feeding(emb, (h_n, c_n), memory, b["source_mask"])
        else:
            y, _ = self.dec(emb, (h_n, c_n))                              # [B, Tt, H]
            if self.attention != "none":
                memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=b["source"].shape[1])
                y = self.attend(y, memory, b["source_mask"])
        mask = b["mask"]                                                  # [B, Tt], True = real
        real = y[mask]                                                    # [N, H], rows in (b, t) order
        logits = self.out(real)                                           # [N, Vt]
        loss = F.cross_entropy(logits, b["decoder_target"][mask], reduction="mean")
        return logits, loss


    def concat_directions(self, state):
        """Bidirectional: decoder layer k starts from [fwd; bwd] of encoder layer k (PyTorch orders h_n as
        l0 fwd, l0 bwd, l1 fwd, ...). Unidirectional: unchanged."""
        if not self.bidirectional:
            return state
        return torch.cat([state[0::2], state[1::2]], dim=-1)

    def init_state(self, h_n, c_n):
        """The decoder's initial (h, c) [L, B, H] from the encoder's final states: copied, or through the bridge."""
        h_n, c_n = self.concat_directions(h_n), self.concat_directions(c_n)
        if self.bridge_h is None:
            return h_n, c_n
        h0 = torch.stack([torch.tanh(self.bridge_h[k](h_n[k])) for k in range(self.layers)])
        c0 = torch.stack([self.bridge_c[k](c_n[k]) for k in range(self.layers)])
        return h0, c0

    def decode_feeding(self, emb, state, memory, source_mask):
        """Luong input feeding: one step at a time, x_t = [emb_t; h~_{t-1}] with h~_{-1} = 0; returns h~ [B, Tt, H]."""
        feed = emb.new_zeros(emb.shape[0], self.hidden)
        outs = []
        for t in range(emb.shape[1]):
            y, state = self.dec(torch.cat([emb[:, t], feed], dim=-1)[:, None, :], state)
            feed = self.attend(y, memory, source_mask)[:, 0]
            outs.append(feed)
        return torch.stack(outs, dim=1)

    def attend(self, y, memory, source_mask):
        """h~ = tanh(W_c [c; h]) with c = sum_s softmax(score)_s m_s over the real source steps.
        y [B, Tt, H], memory [B, Ts, H], source_mask [B, Ts] (True = real)."""
        p = dict(self.attn)
        if self.attention == "dot":
            scores = y @ memory.transpose(1, 2)                                        # [B, Tt, Ts]
        elif self.attention == "general":
            scores = y @ F.linear(memory, p["attn.w_a"]).transpose(1, 2)
        elif self.attention == "bahdanau":
            u = torch.tanh(F.linear(y, p["attn.w_q"])[:, :, None, :] + F.linear(memory, p["attn.w_k"])[:, None, :, :])
            scores = u @ p["attn.v"]                                                   # [B, Tt, Ts]
        else:
            raise ValueError(self.attention)
        scores = scores.masked_fill(~source_mask[:, None, :], float("-inf"))
        context = torch.softmax(scores, dim=-1) @ memory                               # [B, Tt, H]
        return torch.tanh(F.linear(torch.cat([context, y], dim=-1), p["attn.w_c"]))


def lstm_entries(prefix, lstm, layers, bidirectional=False):
    out = []
    for k in range(layers):
        for suffix in (["", "_reverse"] if bidirectional else [""]):
            out.append((f"{prefix}.l{k}{suffix}.w_ih", getattr(lstm, f"weight_ih_l{k}{suffix}")))
            out.append((f"{prefix}.l{k}{suffix}.w_hh", getattr(lstm, f"weight_hh_l{k}{suffix}")))
            out.append((f"{prefix}.l{k}{suffix}.b_ih", getattr(lstm, f"bias_ih_l{k}{suffix}")))
            out.append((f"{prefix}.l{k}{suffix}.b_hh", getattr(lstm, f"bias_hh_l{k}{suffix}")))
    return out


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def load_flat(model, vector):
    offset = 0
    with torch.no_grad():
        for _, p in model.layout():
            n = p.numel()
            p.copy_(vector[offset:offset + n].view_as(p))
            offset += n
    assert offset == vector.numel()


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def seeded_weights(model, seed):
    """Any fixed numbers will do; these are big enough that gates are neither linear nor saturated."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for name, p in model.layout():
        scale = 0.8 if name.endswith("embed") or name.startswith("attn.") else 0.45
        parts.append((torch.rand(p.shape, generator=g, dtype=torch.float32) * 2 - 1) * scale)
    return torch.cat([t.reshape(-1) for t in parts])   # float32


def make_batch(source_rows, target_rows):
    """Batch.cs layout from unpadded rows: sorted by source length (longest first), post-padded with
    <pad>; decoder input <s> y..., target y... </s>, TargetLengths = n + 1."""
    order = sorted(range(len(source_rows)), key=lambda i: -len(source_rows[i]))   # stable
    src = [source_rows[i] for i in order]
    tgt = [target_rows[i] for i in order]
    bsz = len(src)
    ts = max(len(s) for s in src)
    tt = max(len(t) + 1 for t in tgt)
    source = [s + [PAD] * (ts - len(s)) for s in src]
    dec_in = [[START] + t + [PAD] * (tt - len(t) - 1) for t in tgt]
    dec_tg = [t + [END] + [PAD] * (tt - len(t) - 1) for t in tgt]
    return {
        "size": bsz, "source_steps": ts, "target_steps": tt,
        "source": [v for row in source for v in row],
        "source_lengths": [len(s) for s in src],
        "decoder_input": [v for row in dec_in for v in row],
        "decoder_target": [v for row in dec_tg for v in row],
        "target_lengths": [len(t) + 1 for t in tgt],
        "real_target_tokens": sum(len(t) + 1 for t in tgt),
    }


def batch_tensors(b):
    bsz, ts, tt = b["size"], b["source_steps"], b["target_steps"]
    lengths = torch.tensor(b["target_lengths"])
    source_lengths = torch.tensor(b["source_lengths"])
    return {
        "source_mask": torch.arange(ts)[None, :] < source_lengths[:, None],
        "source": torch.tensor(b["source"]).view(bsz, ts),
        "source_lengths": torch.tensor(b["source_lengths"]),
        "decoder_input": torch.tensor(b["decoder_input"]).view(bsz, tt),
        "decoder_target": torch.tensor(b["decoder_target"]).view(bsz, tt),
        "mask": torch.arange(tt)[None, :] < lengths[:, None],
    }


def run_seq2seq(config, params32, batch, dtype):
    """Logits, loss and gradient at params32, then the RMSprop trajectory; all in `dtype`."""
    model = Seq2Seq(config["source_vocab_size"], config["target_vocab_size"], config["embedding_dim"],
                    config["hidden_dim"], config["layers"], config.get("attention", "none"),
                    config.get("bidirectional_encoder", False),
                    config.get("bridge", False), config.get("input_feeding", False)).to(dtype)
    load_flat(model, params32.to(dtype))
    bt = batch_tensors(batch)
    names = [n for n, _ in model.layout()]
    tensors = [p for _, p in model.layout()]

    model.zero_grad()
    logits, loss = model(bt)
    loss.backward()
    result = {
        "logits": logits.detach().clone(),
        "loss": loss.item(),
        "gradients": flat([p.grad for p in tensors]),
    }

    # Keras RMSprop (tf.keras optimizer_v2 / ResourceApplyRMSProp, momentum 0, not centered),
    # dense over the flat buffer as our engine does it. losses[i] is the loss *before* update i.
    lr, rho, eps = RMSPROP["lr"], RMSPROP["rho"], RMSPROP["eps"]
    ms = [torch.zeros_like(p) for p in tensors]
    losses = []
    for _ in range(RMSPROP["steps"]):
        model.zero_grad()
        _, loss = model(bt)
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for p, m in zip(tensors, ms):
                m.mul_(rho).add_((1 - rho) * p.grad * p.grad)
                p.sub_(lr * p.grad / torch.sqrt(m + eps))
    result["rmsprop_losses"] = losses
    result["row_by_row_logits"] = row_by_row_logits(config, params32, batch, dtype)
    result["rmsprop_final"] = flat(tensors)
    result["names"] = names
    result["shapes"] = [list(p.shape) for p in tensors]
    return result


def row_by_row_logits(config, params32, batch, dtype):
    """The same logits with no padding at all: each row alone, unpadded. Proves that packing and
    post-padding really leave each row's computation untouched."""
    model = Seq2Seq(config["source_vocab_size"], config["target_vocab_size"], config["embedding_dim"],
                    config["hidden_dim"], config["layers"], config.get("attention", "none"),
                    config.get("bidirectional_encoder", False),
                    config.get("bridge", False), config.get("input_feeding", False)).to(dtype)
    load_flat(model, params32.to(dtype))
    ts, tt, rows = batch["source_steps"], batch["target_steps"], []
    with torch.no_grad():
        for b in range(batch["size"]):
            ns, nt = batch["source_lengths"][b], batch["target_lengths"][b]
            src = torch.tensor(batch["source"][b * ts:b * ts + ns])[None]
            dec = torch.tensor(batch["decoder_input"][b * tt:b * tt + nt])[None]
            memory, (h_n, c_n) = model.enc(model.enc_embed(src))
            ones = torch.ones(1, ns, dtype=torch.bool)
            if model.input_feeding:
                y = model.decode_feeding(model.dec_embed(dec), model.init_state(h_n, c_n), memory, ones)
            else:
                y, _ = model.dec(model.dec_embed(dec), model.init_state(h_n, c_n))
                if model.attention != "none":
                    y = model.attend(y, memory, ones)
            rows.append(model.out(y[0]))
    return torch.cat(rows)


def random_rows(g, count, lengths, first, vocab):
    rows = []
    for n in lengths[:count]:
        rows.append(torch.randint(first, vocab, (n,), generator=g).tolist())
    return rows


def seq2seq_case(name, seed, layers, vs=13, vt=11, e=6, h=5, source_lengths=(3, 5, 1, 4),
                 answer_lengths=(2, 0, 3, 1), attention="none", bidirectional=False, bridge=False, input_feeding=False):
    """answer_lengths are before </s>; 0 means the target is just </s>. Rows start unsorted on purpose."""
    config = {"source_vocab_size": vs, "target_vocab_size": vt, "embedding_dim": e, "hidden_dim": h,
              "layers": layers}
    if attention != "none":
        config["attention"] = attention
    if bidirectional:
        config["bidirectional_encoder"] = True
    if bridge:
        config["bridge"] = True
    if input_feeding:
        config["input_feeding"] = True
    g = torch.Generator().manual_seed(seed + 1000)
    src = random_rows(g, len(source_lengths), source_lengths, FIRST_WORD, vs)
    src[0][0] = UNK                                                         # an <unk> is an ordinary input
    tgt = random_rows(g, len(answer_lengths), answer_lengths, FIRST_WORD, vt)
    batch = make_batch(src, tgt)
    probe = Seq2Seq(vs, vt, e, h, layers, attention, bidirectional, bridge, input_feeding)
    params32 = seeded_weights(probe, seed)

    r64 = run_seq2seq(config, params32, batch, torch.float64)
    r32 = run_seq2seq(config, params32, batch, torch.float32)
    assert max_abs(r64["logits"], r64["row_by_row_logits"]) < 1e-12, "packing changed a row"
    spread = {
        "logits": max_abs(r64["logits"], r32["logits"]),
        "loss": abs(r64["loss"] - r32["loss"]),
        "gradients": max_abs(r64["gradients"], r32["gradients"]),
        "rmsprop_losses": max(abs(a - b) for a, b in zip(r64["rmsprop_losses"], r32["rmsprop_losses"])),
        "rmsprop_final": max_abs(r64["rmsprop_final"], r32["rmsprop_final"]),
    }

    layout, offset = [], 0
    for n, s in zip(r64["names"], r64["shapes"]):
        layout.append({"name": n, "shape": s, "offset": offset})
        offset += prod(s)
    n_real = batch["real_target_tokens"]
    doc = {
        "magic": MAGIC,
        "version": VERSION,
        "kind": "seq2seq",
        "name": name,
        "description": "Seq2Seq forward/backward and 10 Keras-RMSprop steps on one batch; "
                       "weights are float32 values, computed in float64 by torch " + torch.__version__,
        "config": config,
        "layout": layout,
        "parameter_count": offset,
        "parameters": floats(params32),
        "batch": batch,
        "logits_shape": [n_real, vt],
        "logits": floats(r64["logits"]),
        "loss": r64["loss"],
        "loss_reduction": "mean over real target tokens",
        "gradients": floats(r64["gradients"]),
        "rmsprop": dict(RMSPROP, rule="ms = rho*ms + (1-rho)*g^2; p -= lr*g/sqrt(ms+eps); ms starts at 0",
                        losses=r64["rmsprop_losses"], final_parameters=floats(r64["rmsprop_final"])),
        "float32_spread": spread,
    }
    return doc


def lstm_case(name, seed, bsz=3, steps=4, inp=6, h=5):
    """One nn.LSTM layer on a full-length batch with given (h0, c0). The gradients are those of
    fake_loss = sum(output*d_output) + sum(h_n*d_h_n) + sum(c_n*d_c_n), llm.c's trick for reducing
    every output to a scalar with fixed random weights."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * scale

    w_ih, w_hh, b_ih, b_hh = r(4 * h, inp, scale=0.6), r(4 * h, h, scale=0.6), r(4 * h, scale=0.4), r(4 * h, scale=0.4)
    x, h0, c0 = r(bsz, steps, inp), r(bsz, h), r(bsz, h)
    d_out, d_hn, d_cn = r(bsz, steps, h), r(bsz, h), r(bsz, h)

    def run(dtype):
        lstm = nn.LSTM(inp, h, 1, batch_first=True).to(dtype)
        with torch.no_grad():
            for p, v in zip((lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0),
                            (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(v.to(dtype))
        xs, hs, cs = (t.to(dtype).clone().requires_grad_(True) for t in (x, h0, c0))
        out, (h_n, c_n) = lstm(xs, (hs[None], cs[None]))
        fake = (out * d_out.to(dtype)).sum() + (h_n[0] * d_hn.to(dtype)).sum() + (c_n[0] * d_cn.to(dtype)).sum()
        fake.backward()
        return {
            "output": out.detach(), "h_n": h_n[0].detach(), "c_n": c_n[0].detach(),
            "grads": {"w_ih": lstm.weight_ih_l0.grad, "w_hh": lstm.weight_hh_l0.grad,
                      "b_ih": lstm.bias_ih_l0.grad, "b_hh": lstm.bias_hh_l0.grad,
                      "x": xs.grad, "h0": hs.grad, "c0": cs.grad},
        }

    r64, r32 = run(torch.float64), run(torch.float32)
    spread = max(max_abs(r64[k], r32[k]) for k in ("output", "h_n", "c_n"))
    spread_grads = max(max_abs(r64["grads"][k], r32["grads"][k]) for k in r64["grads"])
    return {
        "magic": MAGIC,
        "version": VERSION,
        "kind": "lstm_layer",
        "name": name,
        "description": "One LSTM layer (gate order i,f,g,o; two biases), all rows full length; gradients of "
                       "sum(output*d_output)+sum(h_n*d_h_n)+sum(c_n*d_c_n); float32 inputs computed in float64",
        "config": {"batch": bsz, "steps": steps, "input_dim": inp, "hidden_dim": h},
        "inputs": {"w_ih": floats(w_ih), "w_hh": floats(w_hh), "b_ih": floats(b_ih), "b_hh": floats(b_hh),
                   "x": floats(x), "h0": floats(h0), "c0": floats(c0)},
        "shapes": {"w_ih": [4 * h, inp], "w_hh": [4 * h, h], "b_ih": [4 * h], "b_hh": [4 * h],
                   "x": [bsz, steps, inp], "h0": [bsz, h], "c0": [bsz, h],
                   "output": [bsz, steps, h], "h_n": [bsz, h], "c_n": [bsz, h]},
        "d_output": floats(d_out), "d_h_n": floats(d_hn), "d_c_n": floats(d_cn),
        "output": floats(r64["output"]), "h_n": floats(r64["h_n"]), "c_n": floats(r64["c_n"]),
        "gradients": {k: floats(v) for k, v in r64["grads"].items()},
        "float32_spread": {"outputs": spread, "gradients": spread_grads},
    }


# ---------------------------------------------------------------------------------------------
# Regularised seq2seq: fixed dropout masks, tied decoder embeddings, label smoothing
# ---------------------------------------------------------------------------------------------

# Dropout tensor ids (src/Seqtalk/Nn/TrainingWorkspace.Regularization.cs, DropoutTensor).
ENC_EMBED, DEC_EMBED, DEC_OUT = 0, 1, 2


def enc_layer_id(k):
    return 16 + k


def dec_layer_id(k):
    return 32 + k


class RegSeq2Seq(nn.Module):
    """Seq2Seq with one nn.LSTM per layer, so a dropout mask can sit between layers, and optionally no out.w
    (the projection reads dec.embed). Masks are given, [B, T, W] per tensor id, already scaled by 1/(1-p)."""

    def __init__(self, vs, vt, e, h, layers, tied, bidirectional=False):
        super().__init__()
        self.enc_embed = nn.Embedding(vs, e)
        # Bidirectional: each layer nn.LSTM(bidirectional=True) with H/2 per direction; its [fwd; bwd] output (H wide)
        # is what the mask between layers covers, as nn.LSTM(bidirectional=True, dropout=p) drops it.
        self.bidirectional = bidirectional
        self.enc = nn.ModuleList([nn.LSTM(e if k == 0 else h, h // 2 if bidirectional else h, 1, batch_first=True,
                                          bidirectional=bidirectional) for k in range(layers)])
        self.dec_embed = nn.Embedding(vt, e)
        self.dec = nn.ModuleList([nn.LSTM(e if k == 0 else h, h, 1, batch_first=True) for k in range(layers)])
        self.out_w = None if tied else nn.Parameter(torch.zeros(vt, h))
        self.out_b = nn.Parameter(torch.zeros(vt))
        self.layers = layers

    def layout(self):
        entries = [("enc.embed", self.enc_embed.weight)]
        for k in range(self.layers):
            entries += lstm_entries_single(f"enc.l{k}", self.enc[k])
            if self.bidirectional:
                entries += lstm_entries_single(f"enc.l{k}", self.enc[k], "_reverse")
        entries.append(("dec.embed", self.dec_embed.weight))
        for k in range(self.layers):
            entries += lstm_entries_single(f"dec.l{k}", self.dec[k])
        if self.out_w is not None:
            entries.append(("out.w", self.out_w))
        entries.append(("out.b", self.out_b))
        return entries

    def forward(self, b, masks, smoothing):
        lengths = b["source_lengths"]
        x = self.enc_embed(b["source"]) * masks[ENC_EMBED]
        states = []
        for k, lstm in enumerate(self.enc):
            if k > 0:
                x = x * masks[enc_layer_id(k - 1)]     # PyTorch nn.LSTM's between-layer dropout, with our mask
            out, (h_n, c_n) = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=True))
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=b["source"].shape[1])
            if self.bidirectional:                       # [2, B, H/2] -> [1, B, H] as [fwd; bwd]
                h_n, c_n = torch.cat([h_n[0], h_n[1]], -1)[None], torch.cat([c_n[0], c_n[1]], -1)[None]
            states.append((h_n, c_n))                    # final states are not dropped
        y = self.dec_embed(b["decoder_input"]) * masks[DEC_EMBED]
        for k, lstm in enumerate(self.dec):
            if k > 0:
                y = y * masks[dec_layer_id(k - 1)]
            y, _ = lstm(y, states[k])
        y = y * masks[DEC_OUT]
        mask = b["mask"]
        real = y[mask]
        weight = self.dec_embed.weight if self.out_w is None else self.out_w
        logits = F.linear(real, weight, self.out_b)
        target = b["decoder_target"][mask]
        loss = F.cross_entropy(logits, target, reduction="mean", label_smoothing=smoothing)
        nll = F.cross_entropy(logits, target, reduction="mean")
        return logits, loss, nll


def lstm_entries_single(prefix, lstm, suffix=""):
    return [(f"{prefix}{suffix}.w_ih", getattr(lstm, f"weight_ih_l0{suffix}")), (f"{prefix}{suffix}.w_hh", getattr(lstm, f"weight_hh_l0{suffix}")),
            (f"{prefix}{suffix}.b_ih", getattr(lstm, f"bias_ih_l0{suffix}")), (f"{prefix}{suffix}.b_hh", getattr(lstm, f"bias_hh_l0{suffix}"))]


def regularized_case(name, seed, layers=2, vs=13, vt=11, e=5, h=5, rate=0.25, smoothing=0.1,
                     source_lengths=(3, 5, 1, 4), answer_lengths=(2, 0, 3, 1), bidirectional=False):
    config = {"source_vocab_size": vs, "target_vocab_size": vt, "embedding_dim": e, "hidden_dim": h,
              "layers": layers, "tied_embeddings": True}
    if bidirectional:
        config["bidirectional_encoder"] = True
    g = torch.Generator().manual_seed(seed + 1000)
    src = random_rows(g, len(source_lengths), source_lengths, FIRST_WORD, vs)
    tgt = random_rows(g, len(answer_lengths), answer_lengths, FIRST_WORD, vt)
    batch = make_batch(src, tgt)
    bsz, ts, tt = batch["size"], batch["source_steps"], batch["target_steps"]
    probe = RegSeq2Seq(vs, vt, e, h, layers, tied=True, bidirectional=bidirectional)
    params32 = seeded_weights(probe, seed)
    # Fixed masks, values 0 or float32(1/(1-p)), so both sides multiply by the same floats.
    keep = torch.tensor(1.0 / (1.0 - rate), dtype=torch.float32)
    shapes = {ENC_EMBED: (bsz, ts, e), DEC_EMBED: (bsz, tt, e), DEC_OUT: (bsz, tt, h)}
    for k in range(layers - 1):
        shapes[enc_layer_id(k)] = (bsz, ts, h)
        shapes[dec_layer_id(k)] = (bsz, tt, h)
    mg = torch.Generator().manual_seed(seed + 2000)
    masks32 = {t: (torch.rand(shape, generator=mg) >= rate).to(torch.float32) * keep for t, shape in shapes.items()}

    def run(dtype):
        model = RegSeq2Seq(vs, vt, e, h, layers, tied=True, bidirectional=bidirectional).to(dtype)
        load_flat(model, params32.to(dtype))
        bt = batch_tensors(batch)
        masks = {t: m.to(dtype) for t, m in masks32.items()}
        tensors = [p for _, p in model.layout()]
        model.zero_grad()
        logits, loss, nll = model(bt, masks, smoothing)
        loss.backward()
        result = {"logits": logits.detach().clone(), "loss": loss.item(), "nll": nll.item(),
                  "gradients": flat([p.grad for p in tensors]),
                  "names": [n for n, _ in model.layout()], "shapes": [list(p.shape) for p in tensors]}
        lr, rho, eps = RMSPROP["lr"], RMSPROP["rho"], RMSPROP["eps"]
        ms = [torch.zeros_like(p) for p in tensors]
        losses = []
        for _ in range(RMSPROP["steps"]):
            model.zero_grad()
            _, loss, _ = model(bt, masks, smoothing)
            loss.backward()
            losses.append(loss.item())
            with torch.no_grad():
                for p, m in zip(tensors, ms):
                    m.mul_(rho).add_((1 - rho) * p.grad * p.grad)
                    p.sub_(lr * p.grad / torch.sqrt(m + eps))
        result["rmsprop_losses"] = losses
        result["rmsprop_final"] = flat(tensors)
        return result

    r64, r32 = run(torch.float64), run(torch.float32)
    layout, offset = [], 0
    for n, s_ in zip(r64["names"], r64["shapes"]):
        layout.append({"name": n, "shape": s_, "offset": offset})
        offset += prod(s_)
    assert "out.w" not in r64["names"]
    n_real = batch["real_target_tokens"]
    return {
        "magic": MAGIC,
        "version": VERSION,
        "kind": "seq2seq",
        "name": name,
        "description": "Seq2Seq with tied decoder embeddings, fixed dropout masks and label smoothing: forward/backward "
                       "and 10 Keras-RMSprop steps (the same masks every step); float32 weights computed in float64 by torch "
                       + torch.__version__,
        "config": config,
        "layout": layout,
        "parameter_count": offset,
        "parameters": floats(params32),
        "batch": batch,
        "logits_shape": [n_real, vt],
        "logits": floats(r64["logits"]),
        "loss": r64["loss"],
        "loss_reduction": "mean over real target tokens of CrossEntropyLoss(label_smoothing)",
        "nll": r64["nll"],
        "label_smoothing": smoothing,
        "dropout": {"rate": rate, "masks": [{"tensor": t, "shape": list(shapes[t]), "values": floats(m)}
                                            for t, m in sorted(masks32.items())]},
        "gradients": floats(r64["gradients"]),
        "rmsprop": dict(RMSPROP, rule="ms = rho*ms + (1-rho)*g^2; p -= lr*g/sqrt(ms+eps); ms starts at 0",
                        losses=r64["rmsprop_losses"], final_parameters=floats(r64["rmsprop_final"])),
        "float32_spread": {
            "logits": max_abs(r64["logits"], r32["logits"]),
            "loss": abs(r64["loss"] - r32["loss"]),
            "gradients": max_abs(r64["gradients"], r32["gradients"]),
        },
    }


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules: torch.optim.lr_scheduler's values
# ---------------------------------------------------------------------------------------------

def schedule_case(name):
    """The learning rates torch.optim.lr_scheduler produces for the schedules LearningRateSchedule implements:
    LinearLR warmup stepped per batch, ExponentialLR stepped per epoch, ReduceLROnPlateau on given losses."""
    base = 1e-3

    def optimizer():
        return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)

    warmup_steps, steps = 5, 12
    opt = optimizer()
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup_steps, end_factor=1.0,
                                              total_iters=warmup_steps - 1)
    warmup = []
    for _ in range(steps):
        warmup.append(opt.param_groups[0]["lr"])   # the rate of this step
        opt.step()
        sched.step()

    gamma, epochs = 0.8, 6
    opt = optimizer()
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    decay = []
    for _ in range(epochs):
        decay.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()

    factor, patience, min_lr = 0.5, 1, 2e-4
    losses = [3.0, 2.5, 2.6, 2.7, 2.4, 2.4, 2.4, 2.3999, 2.2, 2.3, 2.3, 2.3, 2.3, 2.3]
    opt = optimizer()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=factor, patience=patience,
                                                       threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=min_lr)
    plateau = []
    for v in losses:
        plateau.append(opt.param_groups[0]["lr"])   # the rate used during the epoch that produced v
        opt.step()
        sched.step(v)
    return {
        "magic": MAGIC,
        "version": VERSION,
        "kind": "lr_schedule",
        "name": name,
        "description": "learning rates per step (warmup) or per epoch (decay, plateau) from torch.optim.lr_scheduler "
                       + torch.__version__,
        "base_lr": base,
        "warmup": {"scheduler": "LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1), stepped per batch",
                   "warmup_steps": warmup_steps, "rates": warmup},
        "decay": {"scheduler": "ExponentialLR(gamma), stepped per epoch", "gamma": gamma, "rates": decay},
        "plateau": {"scheduler": "ReduceLROnPlateau(mode=min, threshold=1e-4 rel, cooldown=0)", "factor": factor,
                    "patience": patience, "min_lr": min_lr, "validation_losses": losses, "rates": plateau},
        "float32_spread": 0.0,
    }


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def floats(t):
    # json writes Python floats with repr(): the shortest string that round-trips the double.
    return [float(v) for v in t.detach().reshape(-1).to(torch.float64).tolist()]


def max_abs(a, b):
    return (a.to(torch.float64) - b.to(torch.float64)).abs().max().item()


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.normpath(os.path.join(here, "..", "Seqtalk.Tests", "Fixtures"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out, help="fixture directory (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    cases = [
        seq2seq_case("seq2seq_l1", seed=11, layers=1),
        seq2seq_case("seq2seq_l2", seed=22, layers=2, source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2)),
        lstm_case("lstm_layer", seed=33),
        seq2seq_case("seq2seq_dot", seed=44, layers=1, attention="dot"),
        seq2seq_case("seq2seq_general", seed=55, layers=2, attention="general",
                     source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2)),
        seq2seq_case("seq2seq_bahdanau", seed=66, layers=1, attention="bahdanau"),
        regularized_case("seq2seq_reg", seed=44),
        regularized_case("seq2seq_reg_bidirectional", seed=122, layers=2, e=6, h=6, bidirectional=True,
                         source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2)),
        schedule_case("lr_schedule"),
        seq2seq_case("seq2seq_bidirectional", seed=77, layers=2, h=6, bidirectional=True,
                     source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2)),
        seq2seq_case("seq2seq_bidirectional_general", seed=88, layers=1, h=6, attention="general", bidirectional=True),
        seq2seq_case("seq2seq_bridge", seed=99, layers=2, source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2), bridge=True),
        seq2seq_case("seq2seq_bidirectional_bridge_dot", seed=111, layers=1, h=6, attention="dot", bidirectional=True, bridge=True),
        seq2seq_case("seq2seq_feeding_general", seed=133, layers=2, attention="general", input_feeding=True,
                     source_lengths=(2, 5, 5, 1), answer_lengths=(3, 1, 0, 2)),
        seq2seq_case("seq2seq_feeding_bahdanau_bidirectional", seed=144, layers=1, h=6, attention="bahdanau", bidirectional=True,
                     input_feeding=True),
    ]
    total = 0
    for doc in cases:
        path = os.path.join(args.out, f"pytorch_{doc['name']}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=None, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(path)
        total += size
        extra = f"  loss {doc['loss']:.6f}" if doc["kind"] == "seq2seq" else ""
        spread = doc["float32_spread"]
        print(f"{path}  {size / 1024:.1f} KiB{extra}  float32-vs-float64 spread {spread}")
    print(f"total {total / 1024:.1f} KiB, torch {torch.__version__}")
    if total > 1024 * 1024:
        sys.exit("fixtures exceed 1 MiB; shrink the cases")


if __name__ == "__main__":
    main()
