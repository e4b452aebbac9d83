#!/usr/bin/env bash
# Runs every test: the whole suite once (`dotnet test`), then the kernel tests again under each
# narrower SIMD width (STYLE rule 19), so the Vector256, Vector128 and scalar paths are proved too.
# Usage: ./test.sh [extra dotnet test arguments, e.g. --no-build]
set -uo pipefail
cd "$(dirname "$0")"

config=(-c Release)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() {  # run <label> [ENV=VALUE ...] -- <dotnet test args>
  local label=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $label"
  env "${envs[@]}" dotnet test "$@" "${config[@]}" 2>&1 | tee -a "$log" || status=1
}

run "all tests" -- Seqtalk.slnx "$@"
run "kernels, Vector512 off" DOTNET_EnableAVX512=0 -- tests/Seqtalk.Tests "$@" --filter Category=Kernels
run "kernels, Vector256 off" DOTNET_EnableAVX2=0 -- tests/Seqtalk.Tests "$@" --filter Category=Kernels
run "kernels, scalar" DOTNET_EnableHWIntrinsic=0 -- tests/Seqtalk.Tests "$@" --filter Category=Kernels

# xunit runs only the first of theory rows whose data are equal and says so in one line per skipped row; a
# skipped row must not pass for a run one, so any such line fails the run.
if grep -F "Skipping test case with duplicate ID" "$log"; then
  echo "error: xunit skipped the theory rows above (duplicate IDs); make every row of each theory differ"
  status=1
fi

# One closing line over all runs, summed from dotnet test's per-assembly summaries.
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || { echo "no test ran"; status=1; }
echo
echo "tests: $passed passed, $failed failed"
exit $status
