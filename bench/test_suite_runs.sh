#!/usr/bin/env bash
# The figures of issue 18's "./test.sh < 4 min, no flake in 10 runs": a fresh clone, then
# ./test.sh RUNS times in it, one markdown table row per run.
#
# Usage: bench/test_suite_runs.sh [REPO [DIR [RUNS [PYTEST-ARGS...]]]]
#   REPO  what to clone (default: this checkout), at its HEAD
#   DIR   where to clone it (default: a new folder beside this checkout, so that the
#         tests reading ../shared/spec find it when it is there); removed first
#   RUNS  how many runs (default 10)
#   PYTEST-ARGS  passed on to ./test.sh (e.g. tests/specs, to try the script quickly)
#
# Run 1 builds the clone's .venv from the locks (cold bytecode, cold mypy cache); the
# others reuse it. "busy CPU-s" is the whole machine's user+nice+system+irq+softirq time
# during the run (/proc/stat, Linux), so it counts the daemons and servers the tests
# start, which a shell's `time` misses; run nothing else beside it. The logs stay in
# DIR.logs/. Exit status: 0 when every run passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
dir=${2:-$(dirname "$here")/test-suite-runs}
runs=${3:-10}
shift $(($# < 3 ? $# : 3))
logs="$dir.logs"
rm -rf "$dir" "$logs"
mkdir -p "$logs"
git clone --quiet "$repo" "$dir"
busy() { awk '/^cpu /{printf "%.2f\n", ($2+$3+$4+$7+$8)/100}' /proc/stat; }
minsec() { printf "%d min %02d s" $(($1 / 60)) $(($1 % 60)); }
echo "commit $(git -C "$dir" rev-parse --short HEAD), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M') UTC"
echo
echo "| run | result | script wall | pytest wall | busy CPU-s |"
echo "|---|---|---:|---:|---:|"
failed=0
for i in $(seq 1 "$runs"); do
    b0=$(busy)
    t0=$(date +%s)
    rc=0
    (cd "$dir" && ./test.sh "$@") > "$logs/run$i.log" 2>&1 || rc=$?
    t1=$(date +%s)
    b1=$(busy)
    # pytest's last line: "N passed, M skipped, ... in 171.98s (0:02:51)"
    summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*[0-9]+ (passed|failed)' "$logs/run$i.log" | tail -1 || true)
    result=$(sed -E 's/ in [0-9.]+s.*//; s/^=+ //' <<< "$summary")
    pytest_s=$(sed -nE 's/.* in ([0-9]+)\.[0-9]+s.*/\1/p' <<< "$summary")
    [ "$rc" -eq 0 ] || { failed=1; result="exit $rc: ${result:-no pytest summary}"; }
    label=$i
    [ "$i" -eq 1 ] && label="1, fresh clone, new \`.venv\`"
    printf "| %s | %s | %s | %s | %.0f |\n" "$label" "$result" "$(minsec $((t1 - t0)))" \
        "$( [ -n "$pytest_s" ] && minsec "$pytest_s" || echo "-")" \
        "$(awk -v a="$b0" -v b="$b1" 'BEGIN { print b - a }')"
done
exit "$failed"
