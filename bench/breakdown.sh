#!/bin/bash
# Where the time of one vol-create-from (same pool, clone) goes in our module:
# bench/breakdown.py on one lab (Ceph + libvirtd with our module), with the Ceph
# client's debug log of the module's connection (the pool's <rbd:config_opts>)
# and libvirtd's RPC and storage debug log (virt-admin).  Writes
# build/bench-results/breakdown/{requests,summary,timeline}.txt and the raw logs.
# Analysis, not a benchmark: debug logging slows every step down a little.
# Environment: BENCH_BD_REPS (10), BENCH_BD_SNAPS (0: user snapshots on the source; 50 for row 3).
set -uo pipefail
PROG=breakdown
. "$(dirname "$0")/bench-lab.sh"
bench_lab breakdown $((3 * 1024 * 1024 * 1024))
OUT=$RESULTS/breakdown
rm -rf "$OUT"
mkdir -p "$OUT"
ADMIN="virt-admin -c libvirtd:///system?socket=$(dirname "$LIBVIRTD_SOCKET")/libvirt-admin-sock"
$ADMIN daemon-log-filters "1:storage 1:rpc.virnetserverprogram 1:rpc.virnetserverclient 3:rpc 3:util 3:event 3:object 3:conf" || exit 1
/usr/bin/python3 "$REPO/bench/breakdown.py" "$OUT" || exit 1
cp "$LIBVIRTD_LOG" "$OUT/libvirtd.log"
echo "written to $OUT"
