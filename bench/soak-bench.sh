#!/bin/bash
# The soak test, longer: RUNS runs (default 10) of Soak.* with ROUNDS rounds
# each (default 8) and HOGS CPU-spinning processes (default 4), against one
# lab; prints each run's outcome and the count.  Not part of the suite (the
# suite runs one 4-round soak).
#   bash bench/soak-bench.sh [RUNS] [ROUNDS] [HOGS]
set -uo pipefail
PROG=soak-bench
. "$(dirname "$0")/bench-lab.sh"
RUNS=${1:-10} ROUNDS=${2:-8} HOGS=${3:-4}
bench_lab soak $((6 * 1024 * 1024 * 1024))
OUT=$RESULTS/soak.txt
passed=0
: >"$OUT"
for r in $(seq 1 "$RUNS"); do
    if RBDCLONE_SOAK_ROUNDS=$ROUNDS RBDCLONE_SOAK_HOGS=$HOGS LAB_BACKEND=ours \
        timeout 1800 "$BUILD/tests/integration/integration-tests" --gtest_filter='Soak.*' >"$WORK/run$r.log" 2>&1; then
        passed=$((passed + 1))
        echo "run $r: passed ($(grep -o '[0-9]* requests, [0-9]* failed' "$WORK/run$r.log"))" | tee -a "$OUT"
    else
        echo "run $r: FAILED" | tee -a "$OUT"
        grep -E 'Failure|failed \(code|hung|died' "$WORK/run$r.log" | head -10 | tee -a "$OUT"
    fi
done
echo "$passed of $RUNS soak runs passed ($ROUNDS rounds, $HOGS CPU hogs each)" | tee -a "$OUT"
