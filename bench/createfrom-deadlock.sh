#!/bin/bash
# How often libvirt's storage driver hangs on concurrent cross-pool
# vol-create-from, and that the safe form (vol-create with <backingStore>)
# never does.  Not a test: a measurement of libvirt's own locking
# (storageVolCreateXMLFrom locks the source pool then the destination before
# calling the backend, and the destination then the source after it: two
# requests in opposite phases wait for each other forever, whatever the
# backend).  For each form and concurrency: TRIALS rounds of N simultaneous
# `virsh` requests from pool src (Ceph pool rbd) into pool dst (rbd2); a
# round with a request still running after LIMIT s is a hang, after which
# libvirtd is killed and restarted (its storage driver is stuck for good).
#
#   bash bench/createfrom-deadlock.sh [TRIALS] [N...]      (default: 5 rounds of 16 and of 32)
# Results: build/bench-results/deadlock.txt
set -uo pipefail
PROG=createfrom-deadlock
. "$(dirname "$0")/bench-lab.sh"
TRIALS=${1:-5}
shift || true
CONCURRENCY=("${@:-16 32}")
# shellcheck disable=SC2206
CONCURRENCY=(${CONCURRENCY[*]})
LIMIT=${DEADLOCK_LIMIT:-60}

bench_lab deadlock $((4 * 1024 * 1024 * 1024))
OUT=$RESULTS/deadlock.txt

# Persistent pools, so that they come back with a restarted daemon.
define_pools() {
    local p cp
    for p in src:rbd dst:rbd2; do
        cp=${p#*:}
        p=${p%%:*}
        lab_pool_xml "$p" "$cp" >"$WORK/$p.xml"
        $V pool-define "$WORK/$p.xml" >/dev/null && $V pool-start "$p" >/dev/null || return 1
    done
}
define_pools || { echo "$PROG: could not define the pools" >&2; exit 1; }
$V vol-create-as src golden 64M >/dev/null || exit 1
echo "<volume><name>NAME</name><target><format type='raw'/></target></volume>" >"$WORK/vol.tmpl"

clean_dst() {
    local v
    $V pool-refresh dst >/dev/null 2>&1
    for v in $($V vol-list dst 2>/dev/null | awk '{print $1}'); do
        $V vol-delete "$v" --pool dst >/dev/null 2>&1
    done
}

# one_round FORM N: N simultaneous requests; prints "hung" or the round's ms.
one_round() {
    local form=$1 n=$2 i t0 pids=() hung=0
    t0=$(now_ms)
    for i in $(seq 1 "$n"); do
        if [ "$form" = create-from ]; then
            sed "s/NAME/d$i/" "$WORK/vol.tmpl" >"$WORK/v$i.xml"
            # shellcheck disable=SC2086  # $V is a command line
            timeout -s KILL "$LIMIT" $V vol-create-from dst "$WORK/v$i.xml" golden --inputpool src \
                >"$WORK/r$i.out" 2>&1 &
        else
            echo "<volume><name>d$i</name><target><format type='raw'/></target><backingStore><path>rbd/golden</path><format type='raw'/></backingStore></volume>" >"$WORK/v$i.xml"
            # shellcheck disable=SC2086  # $V is a command line
            timeout -s KILL "$LIMIT" $V vol-create dst "$WORK/v$i.xml" >"$WORK/r$i.out" 2>&1 &
        fi
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}"
        [ $? = 137 ] && hung=1
    done
    if [ $hung = 1 ]; then
        echo hung
    else
        echo $(($(now_ms) - t0))
    fi
}

printf '%-22s %5s %7s %6s %10s\n' form n rounds hung median_ms | tee "$OUT"
for form in create-from backingstore; do
    for n in "${CONCURRENCY[@]}"; do
        hangs=0 times=()
        for t in $(seq 1 "$TRIALS"); do
            r=$(one_round "$form" "$n")
            if [ "$r" = hung ]; then
                hangs=$((hangs + 1))
                echo "  $form x$n round $t: hung; restarting libvirtd" >&2
                "$REPO/tests/lab/libvirtd-lab.sh" restart "$LAB/libvirtd" --kill >/dev/null 2>&1 ||
                    { echo "$PROG: libvirtd did not come back" >&2; exit 1; }
                # shellcheck source=/dev/null  # written by libvirtd-lab.sh
                . "$LAB/libvirtd/libvirtd.env"
            else
                times+=("$r")
                echo "  $form x$n round $t: $r ms" >&2
            fi
            clean_dst
        done
        med=$(printf '%s\n' "${times[@]:-}" | median)
        printf '%-22s %5s %7s %6s %10s\n' "$form" "$n" "$TRIALS" "$hangs" "${med:--}" | tee -a "$OUT"
    done
done
echo "results: $OUT"
