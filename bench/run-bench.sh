#!/bin/bash
# Clone benchmark: libvirt's stock rbd module and ours side by side in one lab
# (one throwaway Ceph cluster, two private libvirtds: ours from tests/lab/lab.sh,
# the stock one from tests/lab/libvirtd-lab.sh against the same cluster).
# Builds if needed, runs build/bench/clone-bench, prints the table and writes
# it to build/bench-results/clone.txt, and rows 1-3 of the floor table into
# build/bench-results/floor-rows/ (bench/run-all.sh); stops both daemons and Ceph even on failure.
#
# Environment: BENCH_REPS (15), BENCH_WARMUP (2), BENCH_VERBOSE (1: every sample),
# BENCH_TIMEOUT (seconds for the benchmark binary itself, 240), BUILD_DIR (see tests/common.sh).
set -uo pipefail
. "$(dirname "$0")/../tests/common.sh"

RESULTS=$BUILD/bench-results
T0=$SECONDS
STOCK='' BENCH_PID=''

cleanup() {
    # The benchmark first (it runs in the background so that a signal is handled at once).
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null
        wait "$BENCH_PID" 2>/dev/null
    fi
    # Then the stock libvirtd (a client of the lab's Ceph), then the lab.
    stop_labs
    echo "total run time: $((SECONDS - T0)) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


say "build"
build_all || exit 1
[ -x "$BUILD/bench/clone-bench" ] || { echo "no $BUILD/bench/clone-bench (is subdir('bench') in meson.build?)" >&2; exit 1; }

say "lab: Ceph + libvirtd with our module"
start_lab bench "$(ours_backend_dir)" || exit 1

say "second libvirtd with the stock module, same Ceph"
start_stock_daemon bench || exit 1

say "benchmark"
mkdir -p "$RESULTS/floor-rows"
rm -f "$RESULTS/clone.txt" "$RESULTS"/floor-rows/[123].row
(
    set -a
    # shellcheck source=/dev/null  # written by lab.sh
    . "$LAB/lab.env"
    # shellcheck disable=SC2034,SC1091  # exported (set -a) for clone-bench
    BENCH_STOCK_URI=$(. "$STOCK/libvirtd.env" && echo "$LIBVIRT_STORAGE_URI") \
        BENCH_MON_ASOK=$CEPH_LAB_DIR/run/ceph-mon.a.asok
    set +a
    exec timeout -k 10 "${BENCH_TIMEOUT:-240}" "$BUILD/bench/clone-bench" "$RESULTS/clone.txt" "$RESULTS/floor-rows"
) &
BENCH_PID=$!
wait "$BENCH_PID"
rc=$?
BENCH_PID=''
if [ $rc != 0 ]; then
    echo "clone-bench failed (exit $rc)" >&2
    for env in "$LAB/lab.env" "$STOCK/libvirtd.env"; do
        # shellcheck source=/dev/null  # written by lab.sh / libvirtd-lab.sh
        log=$(. "$env" && echo "$LIBVIRTD_LOG")
        echo "--- last errors in $log" >&2
        grep -E ': (error|warning) : ' "$log" 2>/dev/null | tail -10 >&2
    done
    exit $rc
fi
echo "table written to $RESULTS/clone.txt"
