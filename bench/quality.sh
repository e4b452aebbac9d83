#!/usr/bin/env bash
# Issue 4's measurement: the tutorial's configuration against `seqtalk train --preset quality`.
#
#   bench/quality.sh [--data PATH] [--seed N] [--patience N] [--max-epochs N] [--threads N] [--work DIR] [--reuse]
#
# On the same seeded random 10% validation split (--seed, default 1), trains (a) `--preset tutorial` and
# (b) `--preset quality`, each until early stopping with the same --patience (default 3; at most
# --max-epochs, default 200), then scores both with greedy `seqtalk eval --validation-only`. Prints
# bits/char (with <unk> words spelled out, and the model's part alone) and chrF of each and their ratios,
# writes bench/results/quality-<date-time>.md, and exits 1 unless quality's validation bits/char is at
# least 10% lower AND its chrF higher.
# Models go to --work DIR (default: a new directory under /tmp); --reuse skips training a model whose
# directory already holds one (to score again, e.g. after an interrupted run; the report says so).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
DATA="$REPO/../shared/data/ChatbotData.csv"
SEED=1
PATIENCE=3
MAX_EPOCHS=200
THREADS=2
WORK=""
REUSE=""
ARGS="$*"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=${2:?--data needs a path}; shift 2 ;;
        --seed) SEED=${2:?--seed needs a number}; shift 2 ;;
        --patience) PATIENCE=${2:?--patience needs a number}; shift 2 ;;
        --max-epochs) MAX_EPOCHS=${2:?--max-epochs needs a number}; shift 2 ;;
        --threads) THREADS=${2:?--threads needs a number}; shift 2 ;;
        --work) WORK=${2:?--work needs a directory}; shift 2 ;;
        --reuse) REUSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$SEED" "$PATIENCE" "$MAX_EPOCHS" "$THREADS"; do
    case "$v" in ''|*[!0-9]*) echo "error: --seed, --patience, --max-epochs and --threads take whole numbers, not '$v'" >&2; exit 2 ;; esac
done
[ -f "$DATA" ] || { echo "error: no data file '$DATA' (give --data PATH)" >&2; exit 2; }
[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/seqtalk-quality.XXXXXX)
mkdir -p "$WORK" "$REPO/bench/results"
STAMP=$(date -u +%Y-%m-%dT%H%M%S)
REPORT="$REPO/bench/results/quality-$STAMP.md"

echo "building the CLI (Release)…"
dotnet build "$REPO/src/Seqtalk.Cli" -c Release -v quiet -nologo >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
CLI="$REPO/src/Seqtalk.Cli/bin/Release/net10.0/Seqtalk.Cli"

# train NAME: trains --preset NAME into $WORK/NAME (unless --reuse finds it), logging to $WORK/NAME.train.log;
# sets SECONDS_<NAME> to the wall time (empty when reused).
train() {
    local name=$1 dir="$WORK/$1" start end
    if [ -n "$REUSE" ] && [ -f "$dir/config.json" ]; then
        echo "$name: reusing the model in $dir"
        eval "SECONDS_$name=''"
        return
    fi
    local cmd=("$CLI" train --data "$DATA" --out "$dir" --preset "$name" --seed "$SEED" --validation-size 0.1 --split random
               --epochs "$MAX_EPOCHS" --early-stopping "$PATIENCE" --threads "$THREADS")
    echo "$name: ${cmd[*]#"$REPO/"}"
    start=$(date +%s)
    "${cmd[@]}" >"$WORK/$name.train.log" 2>&1 || { tail -n 20 "$WORK/$name.train.log" >&2; echo "error: training $name failed (log: $WORK/$name.train.log)" >&2; exit 1; }
    end=$(date +%s)
    eval "SECONDS_$name=$((end - start))"
    tail -n 1 "$WORK/$name.train.log"
}

evaluate() {
    local name=$1
    "$CLI" eval --model "$WORK/$name" --data "$DATA" --validation-only --json >"$WORK/$name.eval.json" 2>"$WORK/$name.eval.err" \
        || { cat "$WORK/$name.eval.err" >&2; echo "error: eval of $name failed" >&2; exit 1; }
}

train tutorial
evaluate tutorial
train quality
evaluate quality

export WORK REPORT DATA SEED PATIENCE MAX_EPOCHS THREADS REUSE ARGS SECONDS_tutorial SECONDS_quality
PY=python3
command -v "$PY" >/dev/null 2>&1 || PY=/usr/bin/python3
"$PY" - <<'EOF'
import json, os, platform, subprocess, sys

w = os.environ["WORK"]
def load(name):
    with open(os.path.join(w, name + ".eval.json"), encoding="utf-8") as f:
        e = json.load(f)
    with open(os.path.join(w, name, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    t = c.get("training", {})
    epochs = t.get("epochs", [])
    secs = os.environ.get("SECONDS_" + name, "")
    return {"eval": e, "options": t.get("options", {}), "best": t.get("bestEpoch"), "ran": len(epochs),
            "epoch_seconds": int(round(sum(x.get("seconds", 0) for x in epochs))),
            "stopped": t.get("stoppedEarly"), "seconds": int(secs) if secs else None}

tut, q = load("tutorial"), load("quality")
bpc_ratio = q["eval"]["bitsPerCharacter"] / tut["eval"]["bitsPerCharacter"]
model_bpc_ratio = q["eval"]["modelBitsPerCharacter"] / tut["eval"]["modelBitsPerCharacter"]
chrf_ratio = q["eval"]["chrf"] / tut["eval"]["chrf"] if tut["eval"]["chrf"] else float("inf")
passed = bpc_ratio <= 0.9 and q["eval"]["chrf"] > tut["eval"]["chrf"]

def wall(s):
    return "reused" if s is None else f"{s // 60}m{s % 60:02d}s"

rows = [
    ("validation pairs", lambda r: f'{r["eval"]["pairs"]:,}'),
    ("bits/char (<unk> words spelled out)", lambda r: f'{r["eval"]["bitsPerCharacter"]:.4f}'),
    ("model-only bits/char", lambda r: f'{r["eval"]["modelBitsPerCharacter"]:.4f}'),
    ("<unk> spelling bits (per <unk>)", lambda r: f'{r["eval"]["unknownSpellingBits"]:,.0f}'
        + (f' ({r["eval"]["unknownSpellingBits"] / r["eval"]["unknownTokens"]:.1f})' if r["eval"]["unknownTokens"] else '')),
    ("chrF", lambda r: f'{r["eval"]["chrf"]:.2f}'),
    ("char BLEU", lambda r: f'{r["eval"]["charBleu"]:.2f}'),
    ("BLEU", lambda r: f'{r["eval"]["bleu"]:.2f}'),
    ("token F1", lambda r: f'{r["eval"]["tokenF1"]:.4f}'),
    ("distinct-1 / -2", lambda r: f'{r["eval"]["distinct1"]:.4f} / {r["eval"]["distinct2"]:.4f}'),
    ("top-10 reply share", lambda r: f'{100 * r["eval"]["top10ReplyShare"]:.1f}%'),
    ("answer <unk> share", lambda r: f'{100 * r["eval"]["unknownShare"]:.2f}%'),
    ("question <unk> share", lambda r: f'{100 * r["eval"]["questionUnknownShare"]:.2f}%'),
    ("replies with <unk>", lambda r: f'{r["eval"]["repliesWithUnknown"]}'),
    ("epochs run (best)", lambda r: f'{r["ran"]} ({r["best"]}){" early stop" if r["stopped"] else ""}'),
    ("training wall time", lambda r: wall(r["seconds"])),
    ("sum of epoch times", lambda r: wall(r["epoch_seconds"])),
]
table = ["| | tutorial | quality |", "|---|---:|---:|"] + [f"| {n} | {f(tut)} | {f(q)} |" for n, f in rows]
verdict = (f"bits/char ratio quality/tutorial = {bpc_ratio:.4f} (needs <= 0.9000), "
           f"chrF ratio = {chrf_ratio:.4f} (needs > 1): {'PASS' if passed else 'FAIL'} "
           f"(model-only bits/char ratio {model_bpc_ratio:.4f}, not comparable across tokenizers: <unk> words are free in it)")

print()
print("\n".join(table))
print()
print(verdict)

def cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
except OSError:
    commit = "unknown"
env = os.environ
differs = {k: v for k, v in q["options"].items()
           if k not in ("CheckpointDirectory", "Epochs", "EarlyStoppingPatience", "Seed", "Threads") and tut["options"].get(k) != v}
with open(env["REPORT"], "w", encoding="utf-8") as f:
    f.write("# Tutorial vs `--preset quality` on ChatbotData.csv\n\n")
    f.write(f"Written by `bench/quality.sh` at commit {commit} on {os.cpu_count()} cores ({cpu()}); "
            f"load average at the end {os.getloadavg()[0]:.1f}.\n\n")
    f.write(f"Data `{os.path.basename(env['DATA'])}`, seeded random 10% validation split (seed {env['SEED']}), both trained "
            f"until early stopping with patience {env['PATIENCE']} (at most {env['MAX_EPOCHS']} epochs) on {env['THREADS']} "
            f"thread(s), then `seqtalk eval --validation-only` with greedy decoding."
            + (" Some models were reused from an earlier run (`--reuse`)." if env.get("REUSE") else "") + "\n\n")
    f.write("```sh\nbench/quality.sh " + env["ARGS"] + "\n```\n\n")
    f.write("Quality preset options that differ from the tutorial's: "
            + ", ".join(f"`{k}` {v}" for k, v in differs.items()) + ".\n\n")
    f.write("\n".join(table) + "\n\n" + verdict + "\n")
print(f"\nreport: {os.path.relpath(env['REPORT'])}; models and logs: {w}")
sys.exit(0 if passed else 1)
EOF
