#!/usr/bin/python3
"""Issue 3's five workloads in PyTorch, the baseline bench/Seqtalk.Bench is compared against.

Same data, split, vocabularies, batches, masks and stopping rules as our engine (seqtalk_data.py
reproduces them), with PyTorch given its best honest shot: output projection over real target tokens
only, packed encoder sequences, one flat parameter buffer for the optimizer, OpenBLAS,
torch.set_num_threads equal to ours, inference_mode and finished rows leaving the batch when decoding.
What each choice is and why: docs/benchmarks-baseline.md.

    /usr/bin/python3 bench/baseline/workloads.py [--threads N] [--json FILE] [--quick] [--data PATH]

Workloads: train_tutorial (E=H=50, 1 layer, batch 128, Keras RMSprop, one epoch; real target
tokens/s), train_large (E=256, H=512, 2 layers, vocabularies capped at 8,000; tokens/s), reply_latency
(200 validation questions one at a time, greedy until </s> or 22 steps; median ms), reply_batch (all
validation questions in batches of 128; replies/s), reply_concurrent (the same from 16 threads).
--quick: 20 training steps per model, 20 latency questions, 256 questions for the batch workloads.
"""

import os

# On a shared machine OpenMP's default spin-waiting made an epoch take 350 s instead of 50 s
# (bench/baseline/README.md). An explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402  (after the OpenMP setting, which is read when the runtime loads)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seqtalk_data as sd  # noqa: E402

SEED = 1                    # the validation split's seed and the batch shuffle's, as Seqtalk.Bench
VALIDATION = 0.1
BATCH = 128
REPLY_MAX_STEPS = 22
LATENCY_QUESTIONS = 200
CONCURRENT_CALLERS = 16
QUICK_TRAIN_STEPS = 20      # --quick trains this many batches of each model (the C# side: the same)
QUICK_LATENCY_QUESTIONS = 20
QUICK_QUESTIONS = 256


# ---------------------------------------------------------------------------------------------
# Model: Seq2SeqModel's computation with Keras initialisation (as tutorial_validation.py), L layers
# ---------------------------------------------------------------------------------------------

class Seq2Seq(nn.Module):
    def __init__(self, vs, vt, e, h, layers):
        super().__init__()
        self.enc_embed = nn.Embedding(vs, e)
        self.enc = nn.LSTM(e, h, layers, batch_first=True)
        self.dec_embed = nn.Embedding(vt, e)
        self.dec = nn.LSTM(e, h, layers, batch_first=True)
        self.out = nn.Linear(h, vt)
        self.layers, self.h = layers, h
        with torch.no_grad():
            for emb in (self.enc_embed, self.dec_embed):
                nn.init.uniform_(emb.weight, -0.05, 0.05)
            for lstm in (self.enc, self.dec):
                for k in range(layers):
                    w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
                    four_h, fan_in = w_ih.shape
                    limit = math.sqrt(6.0 / (fan_in + four_h))
                    nn.init.uniform_(w_ih, -limit, limit)
                    nn.init.orthogonal_(w_hh)
                    b_ih, b_hh = getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}")
                    b_ih.zero_()
                    b_ih[h:2 * h] = 1.0
                    b_hh.zero_()
            limit = math.sqrt(6.0 / (h + vt))
            nn.init.uniform_(self.out.weight, -limit, limit)
            self.out.bias.zero_()

    def loss(self, b):
        """Mean cross-entropy over the batch's real target tokens. Encoder and decoder run on packed
        sequences (no padded step is computed); the packed decoder output is exactly the real target
        positions, so the projection and the softmax see real tokens only."""
        x = self.enc_embed(b["src_data"])
        _, state = self.enc(PackedSequence(x, b["src_batch_sizes"], None, None))
        y = self.dec_embed(b["dec_data"])
        out, _ = self.dec(PackedSequence(y, b["dec_batch_sizes"], b["dec_sorted"], b["dec_unsorted"]), state)
        return F.cross_entropy(self.out(out.data), b["target"])


def prepare(batch):
    """Tensors for one batch (not timed, as on the C# side): packed source ids (rows are already
    longest source first), packed decoder inputs and targets (<s> y1..yn / y1..yn </s>)."""
    src = [s for s, _ in batch]
    n, ts = len(batch), max(len(s) for s in src)
    tt = max(len(t) for _, t in batch) + 1
    source = torch.zeros(n, ts, dtype=torch.long)
    dec_in = torch.zeros(n, tt, dtype=torch.long)
    dec_tg = torch.zeros(n, tt, dtype=torch.long)
    for i, (s, t) in enumerate(batch):
        source[i, :len(s)] = torch.tensor(s)
        dec_in[i, :len(t) + 1] = torch.tensor([sd.START] + t)
        dec_tg[i, :len(t) + 1] = torch.tensor(t + [sd.END])
    src_packed = pack_padded_sequence(source, torch.tensor([len(s) for s in src]), batch_first=True)
    tgt_lengths = torch.tensor([len(t) + 1 for _, t in batch])
    dec_packed = pack_padded_sequence(dec_in, tgt_lengths, batch_first=True, enforce_sorted=False)
    tgt_packed = pack_padded_sequence(dec_tg, tgt_lengths, batch_first=True, enforce_sorted=False)
    return {"src_data": src_packed.data, "src_batch_sizes": src_packed.batch_sizes,
            "dec_data": dec_packed.data, "dec_batch_sizes": dec_packed.batch_sizes,
            "dec_sorted": dec_packed.sorted_indices, "dec_unsorted": dec_packed.unsorted_indices,
            "target": tgt_packed.data, "tokens": int(tgt_lengths.sum()),
            "src_tokens": sum(len(s) for s in src)}


def flatten_parameters(model):
    """Every parameter and gradient a view into one flat buffer, so the optimizer is four dense
    operations over one tensor (our engine's layout) instead of four per tensor."""
    params = list(model.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        p.grad = grad[offset:offset + n].view_as(p)
        offset += n
    return flat, grad


class KerasRmsProp:
    """tf.keras RMSprop (momentum 0, not centred): ms = rho*ms + (1-rho)*g^2; p -= lr*g/sqrt(ms+eps),
    in place over the flat buffers (torch.optim.RMSprop puts eps outside the root)."""

    def __init__(self, flat, grad, lr=1e-3, rho=0.9, eps=1e-7):
        self.flat, self.grad, self.lr, self.rho, self.eps = flat, grad, lr, rho, eps
        self.ms = torch.zeros_like(flat)
        self.denom = torch.empty_like(flat)

    @torch.no_grad()
    def step(self):
        self.ms.mul_(self.rho).addcmul_(self.grad, self.grad, value=1 - self.rho)
        torch.add(self.ms, self.eps, out=self.denom).sqrt_()
        self.flat.addcdiv_(self.grad, self.denom, value=-self.lr)


def batch_flops(b, e, h, layers, vt):
    """GEMM FLOPs of one forward+backward over real rows, counted as Seqtalk.Bench counts them: per
    LSTM layer and real row 3 x 2*4H*(in + H), per real target token 3 x 2*H*Vt."""
    lstm = sum(3 * 2 * 4 * h * ((e if k == 0 else h) + h) for k in range(layers))
    return lstm * (b["src_tokens"] + b["tokens"]) + 3 * 2 * h * vt * b["tokens"]


# ---------------------------------------------------------------------------------------------
# Greedy decoding: the InferenceSession's rules with PyTorch operations
# ---------------------------------------------------------------------------------------------

class Replier:
    """Text in, text out, like ChatModel.ReplyBatch: tokenize, encode (packed), decode greedily from
    <s> until </s> or max_steps tokens, each finished row leaving the batch, join the words."""

    def __init__(self, model, src_vocab, tgt_itos):
        self.model, self.src_vocab, self.itos = model, src_vocab, tgt_itos
        d = model.dec
        self.cells = [(getattr(d, f"weight_ih_l{k}"), getattr(d, f"weight_hh_l{k}"),
                       getattr(d, f"bias_ih_l{k}"), getattr(d, f"bias_hh_l{k}")) for k in range(model.layers)]

    def reply_batch(self, questions, max_steps=REPLY_MAX_STEPS, chunk=BATCH):
        sources = [sd.encode(q, self.src_vocab) or [sd.UNK] for q in questions]
        replies = []
        with torch.inference_mode():
            for start in range(0, len(sources), chunk):
                replies += self._decode(sources[start:start + chunk], max_steps)
        return [" ".join(self.itos[i] for i in ids) for ids in replies]

    def _decode(self, sources, max_steps):
        m, n = self.model, len(sources)
        if n == 1:
            x = m.enc_embed(torch.tensor(sources))
            _, (h, c) = m.enc(x)
        else:
            lengths = torch.tensor([len(s) for s in sources])
            padded = torch.zeros(n, int(lengths.max()), dtype=torch.long)
            for i, s in enumerate(sources):
                padded[i, :len(s)] = torch.tensor(s)
            packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
            x = m.enc_embed(packed.data)
            _, (h, c) = m.enc(PackedSequence(x, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices))
        hs, cs = list(h.unbind(0)), list(c.unbind(0))
        w_out, b_out, emb = m.out.weight, m.out.bias, m.dec_embed.weight
        ids = torch.full((n,), sd.START, dtype=torch.long)
        rows = torch.arange(n)
        steps = []                                           # (rows, ids) per step
        for _ in range(max_steps):
            x = F.embedding(ids, emb)
            for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.cells):
                hs[k], cs[k] = torch.lstm_cell(x, (hs[k], cs[k]), w_ih, w_hh, b_ih, b_hh)
                x = hs[k]
            ids = torch.addmm(b_out, x, w_out.t()).argmax(1)
            steps.append((rows, ids))
            done = ids == sd.END
            if bool(done.any()):
                keep = (~done).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                rows, ids = rows[keep], ids[keep]
                hs = [t[keep] for t in hs]
                cs = [t[keep] for t in cs]
        out = [[] for _ in range(n)]
        for r, i in steps:
            for row, tok in zip(r.tolist(), i.tolist()):
                if tok != sd.END:
                    out[row].append(tok)
        return out


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------

def result(workload, metric, value, detail, seconds=None, gflops=None):
    r = {"workload": workload, "metric": metric, "value": round(value, 4)}
    if seconds is not None:
        r["seconds"] = round(seconds, 4)
    if gflops is not None:
        r["gflops"] = round(gflops, 2)
    r["detail"] = detail
    return r


def train_workload(name, rows, train_idx, e, h, layers, max_vocab, max_steps, extra_epochs=0):
    src_vocab, _ = sd.build_vocab((rows[i][0] for i in train_idx), max_vocab)
    tgt_vocab, tgt_itos = sd.build_vocab((rows[i][1] for i in train_idx), max_vocab)
    train = [(sd.encode(rows[i][0], src_vocab), sd.encode(rows[i][1], tgt_vocab)) for i in train_idx]
    batches = sd.make_batches(train, BATCH, sd.DotNetRandom(SEED))
    if max_steps:
        batches = batches[:max_steps]
    prepared = [prepare(b) for b in batches]
    vs, vt = len(src_vocab), len(tgt_vocab)
    torch.manual_seed(SEED)
    model = Seq2Seq(vs, vt, e, h, layers)
    flat, grad = flatten_parameters(model)
    opt = KerasRmsProp(flat, grad)

    # Warm-up: one forward and backward (no update), so allocator and thread-pool start-up are not timed.
    model.loss(prepared[0]).backward()
    if not bool(grad.abs().sum() > 0):
        raise RuntimeError("gradients did not reach the flat buffer")
    grad.zero_()

    tokens = sum(b["tokens"] for b in prepared)
    flops = sum(batch_flops(b, e, h, layers, vt) for b in prepared)
    losses = []
    t0 = time.perf_counter()
    for b in prepared:
        grad.zero_()
        loss = model.loss(b)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    seconds = time.perf_counter() - t0
    mean_loss = float(torch.stack(losses).mean())
    if not math.isfinite(mean_loss):
        raise RuntimeError(f"{name}: non-finite loss")
    gflops = flops / seconds / 1e9
    # Untimed: more epochs for the model the reply workloads decode (reply speed depends on reply length,
    # so both sides must decode a model of the same age; the C# side's --reply-epochs does the same).
    shuffle = sd.DotNetRandom(SEED + 1)
    for _ in range(extra_epochs):
        for b in [prepare(x) for x in sd.make_batches(train, BATCH, shuffle)]:
            grad.zero_()
            model.loss(b).backward()
            opt.step()
    detail = (f"{len(prepared)} steps, {tokens} real target tokens in {seconds:.2f} s; E={e} H={h} L={layers} "
              f"Vs={vs} Vt={vt}; {flops / tokens / 1e6:.2f} MFLOP/token; mean loss {mean_loss:.3f}")
    return result(name, "tokens_per_s", tokens / seconds, detail, seconds, gflops), Replier(model, src_vocab, tgt_itos)


def reply_latency(replier, questions):
    for q in questions[:10]:
        replier.reply_batch([q])                              # warm-up
    ms, words = [], 0
    for q in questions:
        t0 = time.perf_counter()
        reply = replier.reply_batch([q])[0]
        ms.append((time.perf_counter() - t0) * 1e3)
        words += len(reply.split())
    ms.sort()
    return result("reply_latency", "median_ms", ms[len(ms) // 2],
                  f"{len(questions)} questions one at a time; p90 {ms[len(ms) * 9 // 10]:.3f} ms; "
                  f"{words / len(questions):.1f} tokens per reply")


def reply_batch(replier, questions):
    replier.reply_batch(questions[:BATCH])                     # warm-up
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        replier.reply_batch(questions)
        runs.append(time.perf_counter() - t0)
    s = sorted(runs)[1]
    return result("reply_batch", "replies_per_s", len(questions) / s,
                  f"{len(questions)} questions in batches of {BATCH}, max {REPLY_MAX_STEPS} steps; "
                  f"median of 3 runs {s * 1e3:.1f} ms")


def reply_concurrent(replier, questions, threads):
    """16 Python threads, each replying to its share. Each caller's torch operations get their own
    OpenMP team, so with N > 1 intra-op threads 16 callers start 16N threads on N cores; PyTorch's
    best shot here may be one intra-op thread per caller. Both are timed; the faster one is reported."""
    slices = [questions[c::CONCURRENT_CALLERS] for c in range(CONCURRENT_CALLERS)]
    best = None
    for intra in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(intra)
        runs = []
        for _ in range(3):
            ready = threading.Barrier(CONCURRENT_CALLERS + 1)
            errors = []

            def caller(qs):
                ready.wait()
                try:
                    replier.reply_batch(qs)
                except Exception as ex:                      # reported below, not swallowed
                    errors.append(ex)

            workers = [threading.Thread(target=caller, args=(s,)) for s in slices]
            for t in workers:
                t.start()
            ready.wait()
            t0 = time.perf_counter()
            for t in workers:
                t.join()
            runs.append(time.perf_counter() - t0)
            if errors:
                raise errors[0]
        s = sorted(runs)[1]
        if best is None or s < best[0]:
            best = (s, intra)
    torch.set_num_threads(threads)
    s, intra = best
    return result("reply_concurrent", "replies_per_s", len(questions) / s,
                  f"{len(questions)} questions split over {CONCURRENT_CALLERS} concurrent Python threads; "
                  f"median of 3 runs {s * 1e3:.1f} ms with {intra} intra-op thread(s) per caller "
                  f"(the faster of {' and '.join(str(i) for i in sorted({threads, 1}, reverse=True))})")


# ---------------------------------------------------------------------------------------------
# Machine, BLAS, output
# ---------------------------------------------------------------------------------------------

def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def blas_libraries():
    """The BLAS/LAPACK libraries mapped into this process. Debian's torch says BLAS_INFO=generic and
    uses whatever libblas.so.3 the alternatives system points at: the reference BLAS is 5-7x slower."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() or "lapack" in line.lower()})
        return [os.path.realpath(lib) for lib in libs]
    except OSError:
        return []


def sgemm_rates(quick):
    rates = {}
    for m, k, n in ((1024, 1024, 1024), (128, 512, 8000), (128, 50, 9848)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < (0.2 if quick else 0.5):
            torch.mm(a, b)
            reps += 1
        rates[f"{m}x{k}x{n}"] = round(2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9, 2)
    return rates


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--quick", action="store_true", help="tiny slices to prove it runs (< 60 s), not a measurement")
    ap.add_argument("--reply-epochs", type=int, default=0,
                    help="untimed epochs after train_tutorial's, before the reply workloads (as the C# bench's --reply-epochs)")
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data", "ChatbotData.csv"))
    ap.add_argument("--only", choices=["reply"],
                    help="reply: skip train_large (the tutorial model is still trained: the replies decode it); for iterating on decoding")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if not os.path.exists(args.data):
        ap.error(f"the data file {args.data} does not exist; pass --data PATH")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    blas = blas_libraries()
    rates = sgemm_rates(args.quick)
    sgemm = rates["1024x1024x1024"]
    print(f"PyTorch workloads: {args.threads} thread(s){', quick' if args.quick else ''}; data {args.data}")
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}; torch {torch.__version__} "
          
          f"Python {platform.python_version()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; load {load_average()}")
    print("BLAS mapped: " + (", ".join(blas) if blas else "none found (torch's own kernels?)"))
    print("SGEMM GFLOP/s: " + ", ".join(f"[{k}] {v:.1f}" for k, v in rates.items()))
    print()

    rows = sd.read_pairs(args.data)
    train_idx, val_idx = sd.split(len(rows), VALIDATION, SEED)
    steps = QUICK_TRAIN_STEPS if args.quick else 0
    results = []

    def show(r):
        extra = f"  {r['gflops']:6.1f} GFLOP/s" if "gflops" in r else ""
        print(f"{r['workload']:<17} {r['value']:12.2f} {r['metric']:<14}{extra}   {r['detail']}", flush=True)
        results.append(r)

    r1, replier = train_workload("train_tutorial", rows, train_idx, 50, 50, 1, None, steps, args.reply_epochs)
    show(r1)
    if args.only != "reply":
        r2, _ = train_workload("train_large", rows, train_idx, 256, 512, 2, 8000, steps)
        show(r2)

    questions = [rows[i][0] for i in val_idx]
    if args.quick:
        questions = questions[:QUICK_QUESTIONS]
    show(reply_latency(replier, questions[:QUICK_LATENCY_QUESTIONS if args.quick else LATENCY_QUESTIONS]))
    show(reply_batch(replier, questions))
    show(reply_concurrent(replier, questions, args.threads))
    print(f"\nload at the end {load_average()}")

    if args.json:
        doc = {
            "engine": "pytorch",
            "threads": args.threads,
            "quick": args.quick,
            "machine": {
                "cores": os.cpu_count(), "cpu": cpu_name(), "os": platform.platform(),
                "runtime": f"torch {torch.__version__}, Python {platform.python_version()}",
                "blas": blas, "sgemm_gflops_by_shape": rates,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": load_average(),
            },
            "results": results,
            "sgemm_gflops": sgemm,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
