# Shared by the shell benchmarks (copy-bench.sh, cache-bench.sh, stream-bench.sh):
# one throwaway lab (Ceph + libvirtd with our module) stopped and removed even
# on failure, a work directory for files, and the timing helpers.
#   . bench/bench-lab.sh; bench_lab NAME OSD_MEMORY_BYTES
# sets LAB, WORK, V (virsh on the lab's libvirtd), RBD (rbd as the lab's admin)
# and sources the lab's environment.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/../tests/common.sh"
# shellcheck source=../tests/lab/lab-common.sh
. "$REPO/tests/lab/lab-common.sh"   # lab_pool_xml

RESULTS=$BUILD/bench-results
BENCH_T0=$SECONDS
LAB='' WORK=''

bench_cleanup() {
    stop_labs
    [ -n "$WORK" ] && rm -rf "$WORK"
    echo "total run time: $((SECONDS - BENCH_T0)) s"
}

bench_lab() {
    local name=$1 mem=$2
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    say "build"
    build_all || exit 1
    say "lab: Ceph (memstore sized for the images) + libvirtd with our module"
    CEPH_LAB_MEM_BYTES=$mem start_lab "$name" "$(ours_backend_dir)" || exit 1
    . "$LAB/lab.env"
    # Files on disk, not in /tmp (often a tmpfs): the sources are read as a host would.
    WORK=$(mktemp -d "/var/tmp/rbdclone-$name-files.XXXXXX") || exit 1
    V="virsh -q -c $LIBVIRT_STORAGE_URI"
    RBD="rbd -c $CEPH_CONF --id admin"
    mkdir -p "$RESULTS"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# ratio A B: A / B with three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'; }
# The median of the numbers on stdin (one per line or space-separated).
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
# libvirtd's resident memory, KiB.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$LIBVIRTD_PID/status"; }
# timed NAME CMD...: runs CMD, appends its time in ms to $WORK/t.NAME; a failure ends the run.
timed() {
    local name=$1 t0 rc; shift
    t0=$(now_ms)
    "$@" >"$WORK/last.out" 2>&1; rc=$?
    if [ $rc != 0 ]; then echo "$PROG: '$name' failed:" >&2; cat "$WORK/last.out" >&2; exit 1; fi
    echo $(( $(now_ms) - t0 )) >>"$WORK/t.$name"
}
# The median of what timed NAME measured.
median_of() { median <"$WORK/t.$1"; }

# raw_files DIR SIZE_MIB: DIR/dense.raw (SIZE_MIB of random data: what a real OS image costs at
# worst, it neither compresses nor dedupes), DIR/dense200.raw (200 MiB) and DIR/sparse20g.raw
# (20 GiB holding those 200 MiB as 10 x 20 MiB spread over it).
raw_files() {
    local dir=$1 size=$2 i
    head -c $((size * 1024 * 1024)) /dev/urandom >"$dir/dense.raw"
    head -c $((200 * 1024 * 1024)) /dev/urandom >"$dir/dense200.raw"
    truncate -s 20G "$dir/sparse20g.raw"
    for i in $(seq 0 9); do
        dd if="$dir/dense200.raw" of="$dir/sparse20g.raw" bs=1M count=20 skip=$((i * 20)) \
           seek=$((i * 2048)) conv=notrunc status=none
    done
}

# timing_rounds: one untimed warm-up round (memstore grows its memory the first time), then
# $REPS timed rounds, alternating the benchmark's `round` and `round_reversed`, so that neither
# variant of a pair always runs right after the other's delete (the OSD reuses freed memory).
timing_rounds() {
    local r
    say "warm-up round (untimed)"
    round
    rm -f "$WORK"/t.*
    say "timing ($REPS rounds, variants interleaved, order alternating)"
    for r in $(seq 1 "$REPS"); do
        if [ $((r % 2)) = 1 ]; then round; else round_reversed; fi
        echo "round $r done" >&2
    done
}

# peak_rss CMD...: runs CMD while sampling libvirtd's RSS every 0.1 s; sets PEAK (KiB) to the
# highest sample.  A failure of CMD ends the run.
peak_rss() {
    local pid r
    PEAK=$(rss)
    "$@" >"$WORK/peak.out" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
        r=$(rss); [ "$r" -gt "$PEAK" ] && PEAK=$r
        sleep 0.1
    done
    wait $pid || { echo "$PROG: '$*' failed:" >&2; cat "$WORK/peak.out" >&2; exit 1; }
}
