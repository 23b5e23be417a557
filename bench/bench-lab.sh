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
BENCH_TMP_DIRS=()   # more directories a benchmark made, removed on exit

bench_cleanup() {
    stop_labs
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ ${#BENCH_TMP_DIRS[@]} -gt 0 ] && rm -rf "${BENCH_TMP_DIRS[@]}"
    echo "total run time: $((SECONDS - BENCH_T0)) s"
}

# The memstore OSD's count of used bytes drifts under a benchmark's load (tens of GiB written and
# removed): once it fell 4 MiB below zero with the pools empty, the OSD took itself for full
# ("full status failsafe engaged ... now -2147483648% full"), and every write after it waited
# forever (a copy-bench hung 25 minutes in rbd_create).  BALLAST_MIB of RADOS objects in pool rbd2,
# never removed, keep the count above zero through such a drift; RBD sees none of them.
BALLAST_MIB=256
put_ballast() {
    local f i
    f=$(mktemp) || exit 1
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$f"
    for i in $(seq 1 $((BALLAST_MIB / 4))); do
        rados -c "$CEPH_CONF" --id admin -p rbd2 put "lab-ballast.$i" "$f" || { rm -f "$f"; exit 1; }
    done
    rm -f "$f"
}

bench_lab() {
    local name=$1 mem=$2
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    say "build"
    build_all || exit 1
    say "lab: Ceph (memstore sized for the images) + libvirtd with our module"
    CEPH_LAB_MEM_BYTES=$((mem + BALLAST_MIB * 1024 * 1024)) start_lab "$name" "$(ours_backend_dir)" || exit 1
    # shellcheck source=/dev/null  # written by lab.sh
    . "$LAB/lab.env"
    put_ballast
    # Files on disk, not in /tmp (often a tmpfs): the sources are read as a host would.
    WORK=$(mktemp -d "/var/tmp/rbdclone-$name-files.XXXXXX") || exit 1
    # shellcheck disable=SC2034  # for the benchmarks that source this file
    V="virsh -q -c $LIBVIRT_STORAGE_URI" RBD="rbd -c $CEPH_CONF --id admin"
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

# ---- Where the CPU goes: what a command costs libvirtd, the OSD and the command itself.
# cpu_ms PID: the CPU time (user + system) the process has used so far, in ms.
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz}' "/proc/$1/stat"
}
# timed_cpu NAME CMD...: as timed, and appends "WALL LIBVIRTD OSD CMD" (ms; CMD: the command and
# its children, from bash's times) to $WORK/c.NAME.
timed_cpu() {
    local name=$1 t0 rc l0 o0 osd; shift
    osd=$(<"$CEPH_LAB_DIR/osd.pid")
    l0=$(cpu_ms "$LIBVIRTD_PID") o0=$(cpu_ms "$osd") t0=$(now_ms)
    ( "$@" >"$WORK/last.out" 2>&1; rc=$?; times >"$WORK/times.out"; exit $rc ); rc=$?
    if [ $rc != 0 ]; then echo "$PROG: '$name' failed:" >&2; cat "$WORK/last.out" >&2; exit 1; fi
    local wall=$(( $(now_ms) - t0 ))
    echo "$wall" >>"$WORK/t.$name"
    echo "$wall $(( $(cpu_ms "$LIBVIRTD_PID") - l0 )) $(( $(cpu_ms "$osd") - o0 )) $(awk 'NR == 2 {
        n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60000 + a[2] * 1000 }; printf "%d", n }' "$WORK/times.out")" \
        >>"$WORK/c.$name"
}
# cpu_total_of NAME: the median over the samples of libvirtd + OSD + client CPU, ms.
cpu_total_of() { awk '{print $2 + $3 + $4}' "$WORK/c.$1" | median; }
# cpu_line NAME: "wall W ms; CPU: libvirtd L, OSD O, client C, total T ms = T/W cores": the
# medians of each column of $WORK/c.NAME; T is cpu_total_of's (the figure row 8's note uses).
cpu_line() {
    local w l o c t
    w=$(cut -d' ' -f1 "$WORK/c.$1" | median) l=$(cut -d' ' -f2 "$WORK/c.$1" | median)
    o=$(cut -d' ' -f3 "$WORK/c.$1" | median) c=$(cut -d' ' -f4 "$WORK/c.$1" | median)
    t=$(cpu_total_of "$1")
    echo "wall $w ms; CPU: libvirtd $l, OSD $o, client $c, total $t ms = $(ratio "$t" "$w") cores"
}

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

# ---- The CPU the hypervisor takes (bench/steal.sh).
. "$REPO/bench/steal.sh"
STEAL_MAX=${BENCH_STEAL_MAX:-15} STEAL_RETAKES=${BENCH_STEAL_RETAKES:-3}
ROUND_STEAL=() RETAKEN_STEAL=()

# steal_rounds N BODY [PREPARE]: runs `BODY R` for R = 1..N, each after `PREPARE R` (untimed set-up,
# outside the steal's window).  A round during which the hypervisor took more than STEAL_MAX % of
# the CPU is thrown away whole (what it appended to $WORK/t.* and $WORK/c.*: every variant's
# samples, ours and the baselines alike) and run again, at most STEAL_RETAKES times; steal_note
# says which.
steal_rounds() {
    # (its locals are visible to BODY and PREPARE, bash's scoping: names they will not use)
    local _rounds=$1 _body=$2 _prepare=${3:-} _r=1 _snap
    mkdir -p "$WORK/before-round"
    while [ "$_r" -le "$_rounds" ]; do
        rm -f "$WORK"/before-round/*
        cp "$WORK"/t.* "$WORK"/c.* "$WORK/before-round/" 2>/dev/null
        [ -n "$_prepare" ] && "$_prepare" "$_r"
        _snap=$(cpu_steal_now)
        "$_body" "$_r"
        # shellcheck disable=SC2086  # _snap: two numbers
        if round_stolen "$_r" $_snap; then
            rm -f "$WORK"/t.* "$WORK"/c.*
            cp "$WORK"/before-round/* "$WORK/" 2>/dev/null
            continue
        fi
        _r=$((_r + 1))
    done
}
# timing_rounds: one untimed warm-up round (memstore grows its memory the first time), then
# $REPS timed rounds (steal_rounds), alternating the benchmark's `round` and `round_reversed`, so
# that neither variant of a pair always runs right after the other's delete (the OSD reuses
# freed memory).
alternating_round() { if [ $(($1 % 2)) = 1 ]; then round; else round_reversed; fi; }
timing_rounds() {
    say "warm-up round (untimed)"
    round
    rm -f "$WORK"/t.* "$WORK"/c.*
    # shellcheck disable=SC2153  # REPS: set by the benchmark
    say "timing ($REPS rounds, variants interleaved, order alternating; a round with more than $STEAL_MAX % of the CPU stolen is run again)"
    steal_rounds "$REPS" alternating_round
}
# round_stolen ROUND STOLEN TOTAL (cpu_steal_now at the round's start): true when the round is to
# be thrown away and run again (more than STEAL_MAX % stolen, fewer than STEAL_RETAKES so far);
# records the round's steal either way.
round_stolen() {
    local pct
    pct=$(steal_pct "$2" "$3")
    if [ "$pct" -gt "$STEAL_MAX" ] && [ ${#RETAKEN_STEAL[@]} -lt "$STEAL_RETAKES" ]; then
        RETAKEN_STEAL+=("$pct")
        echo "round $1: the hypervisor took $pct % of the CPU: thrown away, run again" >&2
        return 0
    fi
    ROUND_STEAL+=("$pct")
    echo "round $1 done ($pct % of the CPU stolen)" >&2
    return 1
}
# steal_note: which rounds were kept, and how much CPU the hypervisor took in each; also written
# to $FLOOR_ROWS/$PROG.steal for the floor table.
steal_note() {
    mkdir -p "$FLOOR_ROWS"
    steal_line | tee "$FLOOR_ROWS/$PROG.steal"
}
steal_line() {
    printf 'CPU stolen by the hypervisor per round kept: %s %%' "${ROUND_STEAL[*]}"
    if [ ${#RETAKEN_STEAL[@]} -gt 0 ]; then
        printf '; %s round(s) thrown away and run again (stolen: %s %%; limit %s %%)' \
            "${#RETAKEN_STEAL[@]}" "${RETAKEN_STEAL[*]}" "$STEAL_MAX"
    else
        printf ' (none over the limit of %s %%)' "$STEAL_MAX"
    fi
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

# ---- The floor table (issue 19): bench/run-all.sh gathers the rows every benchmark writes.
# FLOOR_ROWS: one file per row, NN.row, "NN|work|ours|baseline|ratio|target|result|note"
# (the C++ clone benchmark writes the same format).
FLOOR_ROWS=$RESULTS/floor-rows
# verdict RATIO LIMIT [min]: MET when RATIO <= LIMIT (or >= LIMIT with "min"), else MISSED.
verdict() { awk -v x="$1" -v l="$2" -v m="${3:-max}" 'BEGIN {print ((m == "min") ? x >= l : x <= l) ? "MET" : "MISSED"}'; }
# both V1 V2: MET when both are.
both() { [ "$1" = MET ] && [ "$2" = MET ] && echo MET || echo MISSED; }
# floor_row NN WORK OURS BASELINE RATIO TARGET RESULT [NOTE]: records the row and prints it.
floor_row() {
    mkdir -p "$FLOOR_ROWS"
    local IFS='|'
    echo "$*" >"$FLOOR_ROWS/$1.row"
    printf '%-3s %-58s %-30s %-30s %-7s %-26s %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7"
    [ -n "${8:-}" ] && printf '    %s\n' "$8"
    return 0
}
floor_header() { printf '%-3s %-58s %-30s %-30s %-7s %-26s %s\n' '#' work ours baseline ratio target result; }
# MiB/s of SIZE_MIB copied in MS milliseconds.
mibs() { awk -v s="$1" -v ms="$2" 'BEGIN {printf "%.0f", (ms > 0) ? s * 1000 / ms : 0}'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- The librbd write probe (bench/write_probe.cpp), on the same file the copy benchmark copies.
# The probe's figure is its throughput in this run: the median of one trial per round (each in a
# new process after an untimed warm-up trial, interleaved with the benchmark's variants), the same
# statistic as every variant's.  The best it wrote (over its search of settings and the rounds) is
# printed beside it: a maximum over some 25 noisy trials, above what any median reaches.
# probe_search FILE: the search for the best settings (its output in $RESULTS/$PROG-probe.txt);
# sets PROBE_SEARCH_MIBS and PROBE_ARGS (those settings).
probe_search() {
    local out=$RESULTS/$PROG-probe.txt
    say "librbd write probe: the best settings for $(basename "$1")"
    "$BUILD/bench/write-probe" "$1" rbd --search | tee "$out" || exit 1
    PROBE_SEARCH_MIBS=$(sed -n 's/^PROBE MIBS=\([0-9.]*\) .*/\1/p' "$out")
    PROBE_ARGS=$(sed -n 's/^PROBE MIBS=[0-9.]* CHUNK=\([0-9]*\) DEPTH=\([0-9]*\) HANDLES=\([0-9]*\) ZEROCOPY=\([01]\) .*/--chunk \1 --depth \2 --handles \3 Z\4/p' "$out")
    PROBE_ARGS=${PROBE_ARGS% Z0}
    PROBE_ARGS=${PROBE_ARGS/% Z1/ --zero-copy}
    [ -n "$PROBE_ARGS" ] || { echo "$PROG: the write probe printed no result" >&2; exit 1; }
}
# probe_once FILE [NAME [ARGS...]]: one warm trial at the best settings (plus ARGS), its write time
# in ms appended to $WORK/t.NAME (default probe).
probe_once() {
    local file=$1 name=${2:-probe} ms
    shift $(( $# < 2 ? $# : 2 ))
    # shellcheck disable=SC2086  # PROBE_ARGS is a list of options
    ms=$("$BUILD/bench/write-probe" "$file" rbd $PROBE_ARGS --warm-up "$@" | sed -n 's/^PROBE .* MS=\([0-9]*\)$/\1/p')
    [ -n "$ms" ] || { echo "$PROG: the write probe failed" >&2; exit 1; }
    echo "$ms" >>"$WORK/t.$name"
}
# probe_note SIZE_MIB: sets PROBE_MIBS (the median of the rounds) and PROBE_BEST_MIBS (the best of
# the search and the rounds), and prints the probe's line for a table.
probe_note() {
    local fastest median
    fastest=$(sort -n "$WORK/t.probe" | head -1)
    median=$(median_of probe)
    PROBE_MIBS=$(mibs "$1" "$median")
    PROBE_BEST_MIBS=$(awk -v a="$PROBE_SEARCH_MIBS" -v b="$(mibs "$1" "$fastest")" 'BEGIN {printf "%.0f", (a > b) ? a : b}')
    echo "librbd write probe ($PROBE_ARGS): $PROBE_MIBS MiB/s, the median of one warm trial per round ($(tr '\n' ' ' <"$WORK/t.probe")ms for $1 MiB); best $PROBE_BEST_MIBS MiB/s (search best $PROBE_SEARCH_MIBS)"
}
# of_probe SIZE_MIB MS: "N MiB/s = F x probe, G x its best" (probe_note first).
of_probe() {
    local t; t=$(mibs "$1" "$2")
    echo "$t MiB/s = $(ratio "$t" "$PROBE_MIBS")x probe, $(ratio "$t" "$PROBE_BEST_MIBS")x its best"
}
