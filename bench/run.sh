#!/usr/bin/env bash
# Issue 3's side-by-side benchmark: our engine (bench/Seqtalk.Bench) and PyTorch (bench/baseline/workloads.py)
# on the same workloads, the same machine, alternating, then a table of medians and ratios.
#
#   bench/run.sh [--repeat R] [--threads "1 2"] [--quick] [--data PATH] [--only reply]
#   bench/run.sh --table DIR        print the table again from the JSON files in DIR
#
# For each thread count: C#, PyTorch, C#, PyTorch, … (R times each, default 2; --quick: once, tiny slices).
# JSON and logs go to bench/results/<date-time>/. Ratios: >1 always means Seqtalk is faster.
# --only reply: both sides skip train_large (the tutorial model is still trained for the replies).
# Installs python3-torch and libopenblas0-openmp with apt when missing (never pip).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
REPEAT=2
REPLY_EPOCHS=19              # untimed epochs before the reply workloads, on both sides (--reply-epochs)
THREADS="1 2"
QUICK=""
DATA=""
TABLE_ONLY=""
ONLY=""

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) REPEAT=${2:?--repeat needs a number}; shift 2 ;;
        --reply-epochs) REPLY_EPOCHS=${2:?--reply-epochs needs a number}; shift 2 ;;
        --threads) THREADS=${2:?--threads needs a list such as \"1 2\"}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --data) DATA=${2:?--data needs a path}; shift 2 ;;
        --only) ONLY=${2:?--only needs a value (reply)}; shift 2 ;;
        --table) TABLE_ONLY=${2:?--table needs a directory}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$REPEAT" in ''|*[!0-9]*|0) echo "error: --repeat must be a positive whole number, not '$REPEAT'" >&2; exit 2 ;; esac
[ -n "$QUICK" ] && REPEAT=1 && REPLY_EPOCHS=0

PY=/usr/bin/python3          # Debian's python3 with python3-torch; a pyenv python3 on PATH has no torch

print_table() {
    # Any python3 will do here: only json and statistics.
    local py=python3
    command -v "$py" >/dev/null 2>&1 || py=$PY
    "$py" - "$1" <<'EOF'
import json, os, statistics, sys

d = sys.argv[1]
runs = {}                                   # (engine, threads) -> list of documents
for name in sorted(os.listdir(d)):
    if name.endswith(".json"):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            doc = json.load(f)
        runs.setdefault((doc["engine"], int(doc["threads"])), []).append(doc)
if not runs:
    sys.exit(f"error: no JSON results in {d}")

order = ["train_tutorial", "train_large", "reply_latency", "reply_batch", "reply_concurrent"]
quick = any(doc.get("quick") for docs in runs.values() for doc in docs)
print(f"\nResults in {d}" + ("  (QUICK MODE: proves it runs, not a measurement)" if quick else ""))
for threads in sorted({t for _, t in runs}):
    ours, theirs = runs.get(("seqtalk", threads), []), runs.get(("pytorch", threads), [])
    print(f"\n{threads} thread(s): {len(ours)} Seqtalk run(s), {len(theirs)} PyTorch run(s)")
    peaks = [doc["fma_peak_gflops"] for doc in ours if "fma_peak_gflops" in doc]
    sgemm = [doc["sgemm_gflops"] for doc in theirs if "sgemm_gflops" in doc]
    if peaks:
        print(f"  FMA peak (Seqtalk, measured in its runs): {statistics.median(peaks):.1f} GFLOP/s")
    if sgemm:
        print(f"  PyTorch SGEMM 1024^3 (in its runs): {statistics.median(sgemm):.1f} GFLOP/s")
    print(f"  {'workload':<17} {'metric':<14} {'seqtalk':>12} {'pytorch':>12} {'ratio':>7}  {'seqtalk GFLOP/s':>15} {'of FMA peak':>11} {'pytorch GFLOP/s':>15}")
    names = order + sorted({r["workload"] for docs in (ours, theirs) for doc in docs for r in doc["results"]} - set(order))
    for w in names:
        def values(docs, key="value"):
            return [r[key] for doc in docs for r in doc["results"] if r["workload"] == w and key in r]
        a, b = values(ours), values(theirs)
        metric = next((r["metric"] for doc in ours + theirs for r in doc["results"] if r["workload"] == w), "?")
        ma = statistics.median(a) if a else None
        mb = statistics.median(b) if b else None
        ratio = ""
        if ma and mb:
            # >1 means Seqtalk is faster: throughput ours/theirs, latency theirs/ours.
            ratio = f"{(mb / ma if metric.endswith('_ms') else ma / mb):6.2f}x"
        g, f, pg = values(ours, "gflops"), values(ours, "fraction_of_fma_peak"), values(theirs, "gflops")
        if g and not f and peaks:
            f = [statistics.median(g) / statistics.median(peaks)]
        fmt = lambda v: f"{v:12.2f}" if v is not None else f"{'-':>12}"
        print(f"  {w:<17} {metric:<14} {fmt(ma)} {fmt(mb)} {ratio:>7}  "
              f"{(f'{statistics.median(g):.1f}' if g else '-'):>15} {(f'{statistics.median(f):.0%}' if f else '-'):>11} "
              f"{(f'{statistics.median(pg):.1f}' if pg else '-'):>15}")
print("\nratio: tokens/s and replies/s Seqtalk/PyTorch, median_ms PyTorch/Seqtalk; >1 means Seqtalk is faster.")
EOF
}

if [ -n "$TABLE_ONLY" ]; then
    print_table "$TABLE_ONLY"
    exit 0
fi

# ---- PyTorch with OpenBLAS, installed with apt when missing ----
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi; }
missing=()
if [ ! -x "$PY" ] || ! "$PY" -c "import torch" >/dev/null 2>&1; then missing+=(python3-torch); fi
if ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then missing+=(libopenblas0-openmp); fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]} with apt"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y "${missing[@]}" || { as_root apt-get update && as_root apt-get install -y "${missing[@]}"; }
fi

# OpenMP threads that spin while waiting steal the other engine's core on a busy machine (see
# bench/baseline/README.md); an explicit setting in the environment wins.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

OUT="$REPO/bench/results/$(date +%Y-%m-%dT%H%M%S)"
mkdir -p "$OUT"
echo "== results in $OUT"

echo "== building bench/Seqtalk.Bench (Release)"
dotnet build -c Release bench/Seqtalk.Bench -v quiet -nologo > "$OUT/build.log" 2>&1 || {
    tail -30 "$OUT/build.log" >&2
    echo "error: building bench/Seqtalk.Bench failed (full log: $OUT/build.log)" >&2; exit 1; }

extra=()
[ -n "$QUICK" ] && extra+=(--quick)
[ -n "$DATA" ] && extra+=(--data "$DATA")
case "$ONLY" in ''|reply) ;; *) echo "error: --only takes 'reply', not '$ONLY'" >&2; exit 2 ;; esac
[ -n "$ONLY" ] && extra+=(--only "$ONLY")

for t in $THREADS; do
    for r in $(seq 1 "$REPEAT"); do
        json="$OUT/seqtalk-t$t-r$r.json"
        echo "== Seqtalk, $t thread(s), run $r of $REPEAT (load $(cut -d' ' -f1-3 /proc/loadavg))"
        set +e
        # Both sides decode the tutorial model after 1 + REPLY_EPOCHS epochs (reply speed depends on reply
        # length, so the models must be of the same age; a 1-epoch model's replies are degenerate).
        dotnet run -c Release --no-build --project bench/Seqtalk.Bench -- workloads --threads "$t" --json "$json" --reply-epochs "$REPLY_EPOCHS" ${extra[@]+"${extra[@]}"} \
            2>&1 | tee "$OUT/seqtalk-t$t-r$r.log"
        rc=${PIPESTATUS[0]}
        set -e
        if [ "$rc" != 0 ] || [ ! -s "$json" ]; then
            echo "error: the C# bench (dotnet run --project bench/Seqtalk.Bench -- workloads --json …) exited with $rc" \
                 "and did not write $json; log: $OUT/seqtalk-t$t-r$r.log" >&2
            exit 1
        fi

        json="$OUT/pytorch-t$t-r$r.json"
        echo "== PyTorch, $t thread(s), run $r of $REPEAT (load $(cut -d' ' -f1-3 /proc/loadavg))"
        set +e
        "$PY" bench/baseline/workloads.py --threads "$t" --json "$json" --reply-epochs "$REPLY_EPOCHS" ${extra[@]+"${extra[@]}"} 2>&1 | tee "$OUT/pytorch-t$t-r$r.log"
        rc=${PIPESTATUS[0]}
        set -e
        if [ "$rc" != 0 ] || [ ! -s "$json" ]; then
            echo "error: the PyTorch baseline exited with $rc and did not write $json; log: $OUT/pytorch-t$t-r$r.log" >&2
            exit 1
        fi
    done
done

print_table "$OUT" | tee "$OUT/table.txt"
