#!/bin/bash
# Big pools: pool-start and pool-refresh of 100, 1,000 and 10,000 images with
# libvirt's stock rbd module and ours side by side on one throwaway cluster
# (the lab's libvirtd runs ours, a second libvirtd the stock module), in both
# allocation modes; libvirtd's RSS; and single-volume operations in the big
# pool vs an empty one.  The driver is bench/refresh_bench.py (libvirt and
# librbd Python bindings); the table goes to build/bench-results/refresh.txt.
# Takes about 10 minutes (the stock module alone spends ~4 on 10,000 images).
#   bash bench/refresh-bench.sh
# Environment: BENCH_SIZES ("100 1000 10000"), BENCH_REPS (5: refreshes with
# ours per size and mode; the stock module: 3, 1 at 10,000), BENCH_OPS_REPS (25).
set -uo pipefail
PROG=refresh-bench
. "$(dirname "$0")/bench-lab.sh"
bench_lab refreshbench $((4 * 1024 * 1024 * 1024))

say "second libvirtd with the stock module, same Ceph"
start_stock_daemon refresh || exit 1
# shellcheck source=/dev/null  # written by libvirtd-lab.sh
STOCK_URI=$(. "$STOCK/libvirtd.env" && echo "$LIBVIRT_STORAGE_URI")
# shellcheck source=/dev/null
STOCK_PID=$(. "$STOCK/libvirtd.env" && echo "$LIBVIRTD_PID")

say "benchmark"
BENCH_STOCK_URI=$STOCK_URI BENCH_STOCK_PID=$STOCK_PID \
    timeout 3600 /usr/bin/python3 "$REPO/bench/refresh_bench.py" "$RESULTS/refresh.txt"
rc=$?
echo "table written to $RESULTS/refresh.txt"
exit $rc
