#!/bin/bash
# The floor table (issue 19): every benchmark that measures one of its rows, one
# after the other (each in its own throwaway lab, stopped even on failure), then
# one table with each row's target and MET/MISSED, and the load average of the
# machine during the run (sampled every 5 s, and at the start and the end):
#   build/bench-results/floor.txt  (each benchmark's own table beside it, their
#   output in build/bench-results/logs/)
#
#   row  benchmark                          row  benchmark
#   1-3  run-bench.sh (clone-bench)         6    cache-bench.sh
#   4-5  copy-bench.sh (+ write probe)      7-9  stream-bench.sh (+ write probe)
#
# About 10 minutes on 2 cores.  The repetitions are scaled down from each
# benchmark's own defaults (and the memory cases, not rows of this table, left
# out); set BENCH_REPS, BENCH_COPY_REPS, BENCH_CACHE_ROUNDS, BENCH_STREAM_REPS,
# BENCH_COPY_BIG_MIB, BENCH_STREAM_BIG_MIB to change that.  BENCH_ONLY="copy
# stream" runs only those benchmarks (clone copy cache stream).
# Exits non-zero when a benchmark failed (not when a target is missed).
set -uo pipefail
. "$(dirname "$0")/../tests/common.sh"
. "$REPO/bench/steal.sh"

RESULTS=$BUILD/bench-results
LOGS=$RESULTS/logs
ROWS=$RESULTS/floor-rows
T0=$SECONDS
SAMPLER='' CHILD=''

cleanup() {
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null   # the benchmark stops its own lab
        wait "$CHILD" 2>/dev/null
    fi
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    stop_labs
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BENCH_REPS=${BENCH_REPS:-11} BENCH_WARMUP=${BENCH_WARMUP:-2}
export BENCH_COPY_REPS=${BENCH_COPY_REPS:-5} BENCH_COPY_BIG_MIB=${BENCH_COPY_BIG_MIB:-0}
export BENCH_CACHE_ROUNDS=${BENCH_CACHE_ROUNDS:-5}
export BENCH_STREAM_REPS=${BENCH_STREAM_REPS:-5} BENCH_STREAM_BIG_MIB=${BENCH_STREAM_BIG_MIB:-0}
ONLY=${BENCH_ONLY:-clone copy cache stream}

say "build"
build_all || exit 1
mkdir -p "$LOGS"
rm -rf "$ROWS"
mkdir -p "$ROWS"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL0=$(cpu_steal_now)
: >"$RESULTS/load.samples"
(while :; do cut -d' ' -f1 /proc/loadavg >>"$RESULTS/load.samples"; sleep 5; done) &
SAMPLER=$!

# The rows each benchmark measures.
rows_of() { case $1 in clone) echo 1 2 3 ;; copy) echo 4 5 ;; cache) echo 6 ;; stream) echo 7 8 9 ;; esac; }
failed=() durations=()
for b in clone copy cache stream; do
    case " $ONLY " in *" $b "*) ;; *) continue ;; esac
    script=$b-bench.sh
    [ "$b" = clone ] && script=run-bench.sh
    say "$script (output in $LOGS/$b.log)"
    t=$SECONDS
    bash "$REPO/bench/$script" >"$LOGS/$b.log" 2>&1 &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=''
    durations+=("$b $((SECONDS - t)) s")
    for n in $(rows_of "$b"); do
        [ -f "$ROWS/$n.row" ] && cut -d'|' -f1-7 "$ROWS/$n.row" | tr '|' '\t'
    done
    if [ $rc != 0 ]; then
        failed+=("$b")
        echo "$script FAILED (exit $rc); the end of its output:"
        tail -15 "$LOGS/$b.log"
    fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=''
LOAD_MEAN=$(awk '{s += $1; n++; if ($1 > m) m = $1} END {printf "%.2f (max %.2f, %d samples)", n ? s / n : 0, m, n}' "$RESULTS/load.samples")

# Which benchmark measures a row (for a row that is missing).
bench_of() { case $1 in 1|2|3) echo run-bench.sh ;; 4|5) echo copy-bench.sh ;; 6) echo cache-bench.sh ;; *) echo stream-bench.sh ;; esac; }
{
    echo "floor table (issue 19, \"Down to the floor\"), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
    echo "machine: $(nproc) CPUs, shared; load average at the start $LOAD_START, at the end $LOAD_END; mean of the 1-min load $LOAD_MEAN"
    echo "every ratio is ours / its baseline, both measured interleaved in the same benchmark run (medians); throughputs"
    echo "are fractions of the librbd write probe (bench/write_probe.cpp) in the same lab: the median of one warm trial per"
    echo "round at the best settings its search found (the same statistic as ours), and of the best it wrote there"
    echo "benchmarks: ${durations[*]}; total $((SECONDS - T0)) s"
    # shellcheck disable=SC2086  # STEAL0: two numbers
    echo "CPU stolen by the hypervisor over the whole run: $(steal_pct $STEAL0) %"
    for f in "$ROWS"/*.steal; do
        [ -f "$f" ] && echo "  $(basename "$f" .steal): $(cat "$f")"
    done
    echo
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' '#' work ours baseline ratio target result
    printf '|---|---|---|---|---|---|---|\n'
    for n in 1 2 3 4 5 6 7 8 9; do
        if [ -f "$ROWS/$n.row" ]; then
            IFS='|' read -r nn work ours base ratio target result _ <"$ROWS/$n.row"
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$nn" "$work" "$ours" "$base" "$ratio" "$target" "$result"
        else
            printf '| %s | (not measured: %s did not run or failed) | | | | | MISSED |\n' "$n" "$(bench_of "$n")"
        fi
    done
    echo
    for n in 1 2 3 4 5 6 7 8 9; do
        [ -f "$ROWS/$n.row" ] || continue
        IFS='|' read -r nn _ _ _ _ _ _ note <"$ROWS/$n.row"
        [ -n "$note" ] && echo "row $nn: $note"
    done
    echo "met: $(cat "$ROWS"/*.row 2>/dev/null | cut -d'|' -f7 | grep -c '^MET$') of 8 rows with a target"
    [ ${#failed[@]} -gt 0 ] && echo "FAILED benchmarks: ${failed[*]} (see $LOGS/)"
} >"$RESULTS/floor.txt"
echo
cat "$RESULTS/floor.txt"
echo "written to $RESULTS/floor.txt"
[ ${#failed[@]} = 0 ]
