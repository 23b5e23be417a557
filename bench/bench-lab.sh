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

LAB_SH=$REPO/tests/lab/lab.sh
RESULTS=$BUILD/bench-results
BENCH_T0=$SECONDS
LAB='' WORK=''

bench_cleanup() {
    [ -n "$LAB" ] && { "$LAB_SH" stop "$LAB" >/dev/null 2>&1 || echo "warning: could not stop lab $LAB" >&2; }
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
    LAB=$(mktemp -d "/tmp/rbdclone-$name.XXXXXX") && rmdir "$LAB" || exit 1
    CEPH_LAB_MEM_BYTES=$mem "$LAB_SH" start "$LAB" "$(ours_backend_dir)" || exit 1
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
