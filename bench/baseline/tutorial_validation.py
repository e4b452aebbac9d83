#!/usr/bin/python3
"""The acceptance measurement in PyTorch: the Keras tutorial's seq2seq on ChatbotData.csv.

Embedding(50) -> LSTM(50) encoder whose final (h, c) seed an LSTM(50) decoder -> Dense(vocab),
RMSprop lr 1e-3 rho 0.9 eps 1e-7 (tf.keras semantics), batch 128, Keras initialisation, a seeded
random 10% validation split, 20 epochs. Prints per-epoch train and validation loss over real target
tokens only (mean cross-entropy per token, padding never counted) and the best validation loss:
the figure our engine's training must reach on the same data.

Also prints the BLAS configuration and a quick SGEMM rate, so a slow reference BLAS is visible.

Run by hand from the repository root (CI has no Python):
    /usr/bin/python3 bench/baseline/tutorial_validation.py            # 20 epochs, 2 threads
"""

import argparse
import csv
import math
import os
import random
import sys
import time
import unicodedata
from collections import Counter

from dotnet_random import seqtalk_split

# On a shared machine (2 cores, other jobs running), OpenMP's default spin-waiting made one epoch
# take 350 s instead of 9 s. Passive waiting costs little when the machine is idle. An explicit
# OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the OpenMP setting, which is read when the runtime loads)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

PAD, UNK, START, END = 0, 1, 2, 3                    # src/Seqtalk/Text/SpecialTokens.cs
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


# ---------------------------------------------------------------------------------------------
# Tokenization. Keep in step with Seqtalk.Text (TextNormalizer.SplitWords + WordTokenizer.Train);
# these two functions are the only places to change when aligning.
# ---------------------------------------------------------------------------------------------

def seqtalk_split_words(text):
    """TextNormalizer.SplitWords in default mode: NFC, control characters become spaces, every
    punctuation character except the connector "_" (P* but Pc) and every symbol (S*) a token of its
    own, except an apostrophe between two Latin letters (don't); whitespace collapsed; no lowercasing."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)

    def latin(ch):
        return ch < "\u0250" and ch.isalpha()

    out = []
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        split = (cat.startswith("P") and cat != "Pc") or cat.startswith("S")
        if split and ch in "'\u2019" and 0 < i < len(text) - 1 and latin(text[i - 1]) and latin(text[i + 1]):
            split = False
        out.append(f" {ch} " if split else ch)
    return "".join(out).split()


def seqtalk_build_vocab(token_lists):
    """<pad> <unk> <s> </s> at 0..3, then words by descending frequency, ties by first occurrence."""
    counts, first = Counter(), {}
    for tokens in token_lists:
        for t in tokens:
            counts[t] += 1
            first.setdefault(t, len(first))
    words = sorted(counts, key=lambda w: (-counts[w], first[w]))
    return {w: i for i, w in enumerate(SPECIALS + [w for w in words if w not in SPECIALS])}


# ---------------------------------------------------------------------------------------------
# Model: the same computation as tests/reference/make_fixtures.py, Keras initialisation
# ---------------------------------------------------------------------------------------------

class Seq2Seq(nn.Module):
    def __init__(self, vs, vt, e, h):
        super().__init__()
        self.enc_embed = nn.Embedding(vs, e)
        self.enc = nn.LSTM(e, h, 1, batch_first=True)
        self.dec_embed = nn.Embedding(vt, e)
        self.dec = nn.LSTM(e, h, 1, batch_first=True)
        self.out = nn.Linear(h, vt)
        self.keras_init()

    def keras_init(self):
        with torch.no_grad():
            for emb in (self.enc_embed, self.dec_embed):
                nn.init.uniform_(emb.weight, -0.05, 0.05)          # Embedding: uniform(-0.05, 0.05)
            for lstm in (self.enc, self.dec):
                w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0  # [4H, in], [4H, H]
                four_h, fan_in = w_ih.shape
                limit = math.sqrt(6.0 / (fan_in + four_h))       # glorot_uniform on Keras's [in, 4H]
                nn.init.uniform_(w_ih, -limit, limit)
                nn.init.orthogonal_(w_hh)                        # Keras orthogonal [H, 4H], transposed
                h = four_h // 4
                lstm.bias_ih_l0.zero_()
                lstm.bias_ih_l0[h:2 * h] = 1.0                   # unit_forget_bias (Keras has one bias)
                lstm.bias_hh_l0.zero_()
            vt, h = self.out.weight.shape
            limit = math.sqrt(6.0 / (h + vt))
            nn.init.uniform_(self.out.weight, -limit, limit)
            self.out.bias.zero_()

    def forward(self, b):
        """Sum of cross-entropy over the real target tokens, their count and correct predictions."""
        x = self.enc_embed(b["source"])
        _, state = self.enc(pack_padded_sequence(x, b["source_lengths"], batch_first=True, enforce_sorted=True))
        y, _ = self.dec(self.dec_embed(b["decoder_input"]), state)
        real = y[b["mask"]]                                      # [N, H]: project real tokens only
        logits = self.out(real)
        target = b["decoder_target"][b["mask"]]
        loss_sum = F.cross_entropy(logits, target, reduction="sum")
        correct = (logits.argmax(dim=1) == target).sum().item()
        return loss_sum, target.numel(), correct


def keras_rmsprop_step(params, states, lr, rho, eps):
    """tf.keras RMSprop (momentum 0, not centred): ms = rho*ms + (1-rho)*g^2; p -= lr*g/sqrt(ms+eps).
    Dense over every tensor, as our engine does. (torch.optim.RMSprop puts eps outside the root.)"""
    with torch.no_grad():
        for p, ms in zip(params, states):
            g = p.grad
            ms.mul_(rho).addcmul_(g, g, value=1 - rho)
            p.addcdiv_(g, torch.sqrt(ms + eps), value=-lr)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def read_pairs(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [(row["Q"], row["A"]) for row in csv.DictReader(f)]


def encode(tokens, vocab):
    return [vocab.get(t, UNK) for t in tokens]


def make_batch(rows):
    """Batch.cs layout: rows sorted by source length (longest first), post-padded with <pad>."""
    rows = sorted(rows, key=lambda r: -len(r[0]))
    bsz = len(rows)
    ts = max(len(s) for s, _ in rows)
    tt = max(len(t) + 1 for _, t in rows)
    source = torch.zeros(bsz, ts, dtype=torch.long)
    dec_in = torch.zeros(bsz, tt, dtype=torch.long)
    dec_tg = torch.zeros(bsz, tt, dtype=torch.long)
    for i, (s, t) in enumerate(rows):
        source[i, :len(s)] = torch.tensor(s)
        dec_in[i, :len(t) + 1] = torch.tensor([START] + t)
        dec_tg[i, :len(t) + 1] = torch.tensor(t + [END])
    lengths = torch.tensor([len(t) + 1 for _, t in rows])
    return {"source": source, "source_lengths": torch.tensor([len(s) for s, _ in rows]),
            "decoder_input": dec_in, "decoder_target": dec_tg,
            "mask": torch.arange(tt)[None, :] < lengths[:, None]}


def batches(rows, size, rng):
    order = list(range(len(rows)))
    if rng is not None:
        rng.shuffle(order)
    for i in range(0, len(order), size):
        yield make_batch([rows[j] for j in order[i:i + size]])


# ---------------------------------------------------------------------------------------------
# Environment report
# ---------------------------------------------------------------------------------------------

def report_blas():
    print("== torch", torch.__version__, "threads", torch.get_num_threads(),
          "OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY"), "load average", os.getloadavg())
    print(torch.__config__.show().rstrip())
    print(torch.__config__.parallel_info().rstrip())
    # Debian's torch says BLAS_INFO=generic: the real library is whatever libblas.so.3 resolves to
    # (update-alternatives). Show what is actually mapped into this process.
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() or "lapack" in line.lower()})
        for lib in libs:
            print("BLAS library mapped:", lib, "->", os.path.realpath(lib))
    except OSError:
        pass
    for m, k, n in ((512, 512, 512), (1024, 1024, 1024), (800, 50, 20000)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            torch.mm(a, b)
            reps += 1
        dt = (time.perf_counter() - t0) / reps
        print(f"SGEMM [{m}x{k}]·[{k}x{n}]: {2 * m * k * n / dt / 1e9:.1f} GFLOP/s")
    sys.stdout.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data", "ChatbotData.csv"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--embedding", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--eps", type=float, default=1e-7)
    ap.add_argument("--validation", type=float, default=0.1, help="fraction held out (seeded random)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    report_blas()
    torch.manual_seed(args.seed)

    pairs = read_pairs(args.data)
    tokenized = [(seqtalk_split_words(q), seqtalk_split_words(a)) for q, a in pairs]
    # Exactly the rows Seqtalk holds out for the same --seed (see dotnet_random.py).
    train_idx, val_idx = seqtalk_split(len(tokenized), args.validation, args.seed)
    usable = [p for p in tokenized if p[0] and p[1]]
    val_raw = [tokenized[i] for i in val_idx if tokenized[i][0] and tokenized[i][1]]
    train_raw = [tokenized[i] for i in train_idx if tokenized[i][0] and tokenized[i][1]]
    src_vocab = seqtalk_build_vocab(q for q, _ in train_raw)
    tgt_vocab = seqtalk_build_vocab(a for _, a in train_raw)
    train = [(encode(q, src_vocab), encode(a, tgt_vocab)) for q, a in train_raw]
    val = [(encode(q, src_vocab), encode(a, tgt_vocab)) for q, a in val_raw]
    val_batches = list(batches(val, args.batch, None))
    val_unk = sum(t.count(UNK) + 0 for _, t in val) / max(1, sum(len(t) + 1 for _, t in val))
    print(f"== data {args.data}: {len(pairs)} rows, {len(pairs) - len(usable)} with an empty side skipped, "
          f"{len(train)} train / {len(val)} validation (seed {args.seed})")
    print(f"== vocab: source {len(src_vocab)}, target {len(tgt_vocab)} (specials included, train rows only); "
          f"validation target tokens that are <unk>: {val_unk:.1%}")
    print(f"== model: E={args.embedding} H={args.hidden}, batch {args.batch}, RMSprop lr {args.lr} rho {args.rho} "
          f"eps {args.eps} (Keras), {args.epochs} epochs, threads {args.threads}")

    model = Seq2Seq(len(src_vocab), len(tgt_vocab), args.embedding, args.hidden)
    params = list(model.parameters())
    print(f"== parameters: {sum(p.numel() for p in params)}")
    states = [torch.zeros_like(p) for p in params]
    shuffle = random.Random(args.seed + 1)
    best = (math.inf, 0)
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum, tokens, correct = 0.0, 0, 0
        for b in batches(train, args.batch, shuffle):
            model.zero_grad(set_to_none=False)
            s, n, c = model(b)
            (s / n).backward()                                   # mean over the batch's real tokens
            keras_rmsprop_step(params, states, args.lr, args.rho, args.eps)
            loss_sum, tokens, correct = loss_sum + s.item(), tokens + n, correct + c
        train_loss, train_acc = loss_sum / tokens, correct / tokens
        model.eval()
        v_sum, v_tokens, v_correct = 0.0, 0, 0
        with torch.no_grad():
            for b in val_batches:
                s, n, c = model(b)
                v_sum, v_tokens, v_correct = v_sum + s.item(), v_tokens + n, v_correct + c
        val_loss = v_sum / v_tokens
        if val_loss < best[0]:
            best = (val_loss, epoch)
        print(f"epoch {epoch:2d}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
              f"validation loss {val_loss:.4f} acc {v_correct / v_tokens:.3f}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"best validation loss {best[0]:.4f} at epoch {best[1]}  "
          f"(total {time.perf_counter() - t_start:.0f} s, {args.threads} threads)")


if __name__ == "__main__":
    main()
