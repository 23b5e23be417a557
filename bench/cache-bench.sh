#!/bin/bash
# Image cache benchmark (issue 9), in one throwaway lab (one Ceph cluster, one
# libvirtd with our module), every figure from this run:
#
#   ten in a row   BENCH_CACHE_MIB qcow2 file -> RBD through a pool with
#                  <rbd:image_cache enabled='yes'/>, ten requests one after the
#                  other: the first (miss: convert + clone) against the fallback
#                  copy of the same file through a pool without cache; each later
#                  one (hit) against the first and against a plain RBD clone
#                  (vol-clone of an RBD image whose snapshot is reused)
#   eight at once  8 simultaneous first requests for a new qcow2 file: total time
#                  against one single miss; conversions counted in the cluster
#   probe          bench/write_probe.cpp on the raw bytes of the qcow2 file: librbd's best
#                  write throughput into a new image, one trial per first-request round
#
# Row 6 of the floor table (bench/run-all.sh): the miss <= 1.10 x the plain copy.
#
# Environment: BENCH_CACHE_MIB (1024), BENCH_CACHE_ROUNDS (3: misses and plain copies, each a
# new identity, medians), BUILD_DIR (see tests/common.sh).
# Writes build/bench-results/cache.txt.  Stops the lab and removes its files even on failure.
set -uo pipefail
PROG=cache-bench
SIZE_MIB=${BENCH_CACHE_MIB:-1024}
ROUNDS=${BENCH_CACHE_ROUNDS:-3}
. "$(dirname "$0")/bench-lab.sh"
bench_lab cachebench $(( (8 * SIZE_MIB + 2048) * 1024 * 1024 ))
LOAD0=$(loadavg)

lab_pool_xml plain rbd >"$WORK/plain.xml"
lab_pool_xml cached rbd | sed "s|</pool>|<rbd:image_cache enabled='yes'/></pool>|; s|<pool type='rbd'>|<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>|" >"$WORK/cached.xml"
$V pool-create "$WORK/plain.xml" >/dev/null || exit 1
$V pool-create "$WORK/cached.xml" >/dev/null || exit 1

say "images: two qcow2 files of $SIZE_MIB MiB (random data), an RBD golden image"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/a.raw"
qemu-img convert -f raw -O qcow2 "$WORK/a.raw" "$WORK/a.qcow2" || exit 1
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/b.raw"
qemu-img convert -f raw -O qcow2 "$WORK/b.raw" "$WORK/b.qcow2" || exit 1
rm -f "$WORK/b.raw"
probe_search "$WORK/a.raw"
$V vol-create-as plain golden "${SIZE_MIB}M" >/dev/null || exit 1
$RBD bench --io-type write --io-total 64M --io-pattern seq rbd/golden >/dev/null 2>&1 || exit 1

from_file() { # POOL NAME FILE
    echo "<volume><name>$2</name><target><format type='raw'/></target><backingStore><path>$3</path><format type='qcow2'/></backingStore></volume>" >"$WORK/v-$2.xml"
    $V vol-create "$1" "$WORK/v-$2.xml" >/dev/null
}
# ms_of CMD...: runs CMD, prints its time in ms; a failure fails ms_of (call it as x=$(ms_of ...) || exit 1:
# an exit inside $(...) ends only the subshell).
ms_of() { local t0 rc; t0=$(now_ms); "$@"; rc=$?; [ $rc = 0 ] || { echo "cache-bench: '$*' failed" >&2; exit 1; }; echo $(( $(now_ms) - t0 )); }
# The OSD frees deleted objects and reorganises memory after big writes: let it settle
# before each timed heavy request, so that no variant pays for the previous one.
settle() { sleep "${BENCH_CACHE_SETTLE:-4}"; }

say "warm-up"
$V vol-clone golden warm --pool plain >/dev/null && $V vol-delete warm --pool plain >/dev/null

# A memstore OSD writes faster into memory it just freed than into new memory: every timed
# request starts from the same state, with what the previous one wrote deleted.
CACHE_TOOL="$BUILD/tools/rbdclone-cache -c $CEPH_CONF --id admin"
forget() { # POOL DISK: delete the disk, then the cache entries nothing uses any more
    $V vol-delete "$2" --pool "$1" >/dev/null || exit 1
    $CACHE_TOOL purge rbd >/dev/null || exit 1
}

say "first requests: miss vs plain copy, $ROUNDS rounds, order alternating; a round with more than $STEAL_MAX % of the CPU stolen is run again"
# Each attempt at a round a new file and new names: a source the cache has never seen.
attempt=0
new_source() { attempt=$((attempt + 1)); cp "$WORK/a.qcow2" "$WORK/r$attempt.qcow2"; settle; }
first_requests() { # ROUND: the probe, then a miss and a plain copy of the new source, order alternating
    local v ms
    probe_once "$WORK/a.raw"
    for v in $( (($1 % 2)) && echo "copy miss" || echo "miss copy"); do
        settle
        if [ "$v" = copy ]; then
            ms=$(ms_of from_file plain "copy$attempt" "$WORK/r$attempt.qcow2") || exit 1
            forget plain "copy$attempt"
        else
            ms=$(ms_of from_file cached "miss$attempt" "$WORK/r$attempt.qcow2") || exit 1
            forget cached "miss$attempt"
        fi
        echo "$ms" >>"$WORK/t.$v"
    done
    rm -f "$WORK/r$attempt.qcow2"
}
steal_rounds "$ROUNDS" first_requests new_source
rm -f "$WORK/a.raw"
first_ms=$(median_of miss)
copy_ms=$(median_of copy)

say "ten in a row: one miss, then nine hits, against plain RBD clones"
settle
first_of_ten=$(ms_of from_file cached disk0 "$WORK/a.qcow2") || exit 1
hits=() clones=()
for i in $(seq 1 9); do
    ms=$(ms_of from_file cached "disk$i" "$WORK/a.qcow2") || exit 1
    hits+=("$ms")
    # shellcheck disable=SC2086  # $V is a command line
    ms=$(ms_of $V vol-clone golden "clone$i" --pool plain) || exit 1
    clones+=("$ms")
done
hit_ms=$(echo "${hits[*]}" | median)
hit_max=$(echo "${hits[*]}" | tr ' ' '\n' | sort -n | tail -1)
clone_ms=$(echo "${clones[*]}" | median)
entries=$($RBD ls rbd | grep -c '^rbdclone-cache-' || true)

say "eight at once"
settle
single_ms=$(ms_of from_file cached single "$WORK/b.qcow2") || exit 1
forget cached single
# A new source for the concurrent case: b's bytes under another identity.
cp "$WORK/b.qcow2" "$WORK/c.qcow2"
settle
t0=$(now_ms)
pids=()
for i in $(seq 1 8); do from_file cached "conc$i" "$WORK/c.qcow2" & pids+=($!); done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
conc_ms=$(( $(now_ms) - t0 ))
[ $fail = 0 ] || { echo "cache-bench: a concurrent request failed" >&2; exit 1; }
stored=$(grep -c "image cache: stored .*c.qcow2" "$LIBVIRTD_LOG" || true)
entries_after=$($RBD ls rbd | grep -c '^rbdclone-cache-' || true)

mkdir -p "$RESULTS"
{
    echo "# image cache benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), qcow2 of $SIZE_MIB MiB, memstore OSD; load average $LOAD0 at the start, $(loadavg) at the end"
    probe_note "$SIZE_MIB"
    steal_note; echo
    row() { printf '%-60s %7s ms %7s ms %7s %-8s %s\n' "$1" "$2" "$3" "$4" "$5" "$(verdict "$4" "${5#<= }")"; }
    printf '%-60s %10s %10s %7s %-8s %s\n' case ours baseline ratio target result
    row "first request (miss, median) vs fallback copy (median)" "$first_ms" "$copy_ms" "$(ratio "$first_ms" "$copy_ms")" "<= 1.10"
    row "later requests (hit, median of 9) vs the first of the ten" "$hit_ms" "$first_of_ten" "$(ratio "$hit_ms" "$first_of_ten")" "<= 0.05"
    row "slowest hit vs the first of the ten" "$hit_max" "$first_of_ten" "$(ratio "$hit_max" "$first_of_ten")" "<= 0.05"
    row "hit (median) vs plain RBD clone (vol-clone, median of 9)" "$hit_ms" "$clone_ms" "$(ratio "$hit_ms" "$clone_ms")" "<= 1.5"
    row "8 simultaneous first requests vs one miss" "$conc_ms" "$single_ms" "$(ratio "$conc_ms" "$single_ms")" "<= 1.5"
    echo "misses: $(tr '\n' ' ' <"$WORK/t.miss")ms; plain copies: $(tr '\n' ' ' <"$WORK/t.copy")ms; hits: ${hits[*]} ms; probe: $(tr '\n' ' ' <"$WORK/t.probe")ms"
    echo "entries after the ten: $entries (expected 1); conversions of the concurrent source: $stored (expected 1); entries at the end: $entries_after (expected 2)"
    echo
    echo "floor rows:"
    floor_header
    r=$(ratio "$first_ms" "$copy_ms")
    floor_row 6 "image-cache first request (miss) vs plain copy, qcow2 ${SIZE_MIB} MiB" \
        "$first_ms ms ($(of_probe "$SIZE_MIB" "$first_ms"))" "copy $copy_ms ms ($(of_probe "$SIZE_MIB" "$copy_ms"))" \
        "$r" "<= 1.10" "$(verdict "$r" 1.10)" "$(probe_note "$SIZE_MIB")"
} | tee "$RESULTS/cache.txt"
