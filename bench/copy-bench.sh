#!/bin/bash
# Copy benchmark (issue 6): the fallback copy path of our module against the
# tools an operator would otherwise use, side by side in one throwaway lab
# (one Ceph cluster, one libvirtd with our module).  Variants of a case run
# interleaved, BENCH_COPY_REPS times each; the table gives medians and ratios.
#
#   dense raw      vol-create-from of a dense raw file  vs  `rbd import` of it
#   sparse raw     20 GiB file holding 200 MiB of data  vs  the dense 200 MiB file
#   qcow2          vol-create-from of a qcow2           vs  (a) qemu-img convert into rbd:
#                                                           (b) qemu-img convert to a local raw + rbd import
#                                                           (c) the bound: what the module itself runs, bare
#                                                               (rbd create, then qemu-img convert -n
#                                                               --target-is-zero -W -m 8 into it)
#   memory         libvirtd's RSS growth during one copy of a dense BENCH_COPY_BIG_MIB file
#   probe          bench/write_probe.cpp on the dense file: librbd's best write throughput into
#                  a new image (settings searched once, then one warm trial per round,
#                  interleaved); each copy prints its throughput as a fraction of it
#   file probe     the same settings with the bytes read from the file inside the timed part
#                  (--from-file), one warm trial per round: what the probe does not pay and a
#                  copy must, the bound of row 4's probe target
#
# Rows 4 and 5 of the floor table (bench/run-all.sh): dense raw <= 0.60 x rbd import and
# >= 0.9 x the probe's throughput; qcow2 <= 0.70 x the best of (a) and (b).
#
# Environment: BENCH_COPY_MIB (1024: size of the dense and qcow2 images),
# BENCH_COPY_BIG_MIB (4096; 0: no memory case), BENCH_COPY_REPS (5), BUILD_DIR (see tests/common.sh).
# Writes build/bench-results/copy.txt.  Stops the lab and removes its files even on failure.
set -uo pipefail
PROG=copy-bench
SIZE_MIB=${BENCH_COPY_MIB:-1024}
BIG_MIB=${BENCH_COPY_BIG_MIB:-4096}
REPS=${BENCH_COPY_REPS:-5}
. "$(dirname "$0")/bench-lab.sh"
bench_lab copybench $(( (BIG_MIB + 3 * SIZE_MIB + 2048) * 1024 * 1024 ))
LOAD0=$(loadavg)

lab_pool_xml bench rbd >"$WORK/pool.xml"
mkdir -p "$WORK/files"
$V pool-create "$WORK/pool.xml" >/dev/null || exit 1
$V pool-create-as files dir --target "$WORK/files" >/dev/null || exit 1

say "images: dense $SIZE_MIB MiB raw, 200 MiB dense, 20 GiB sparse with 200 MiB, qcow2 of $SIZE_MIB MiB, dense $BIG_MIB MiB"
raw_files "$WORK/files" "$SIZE_MIB"
qemu-img convert -f raw -O qcow2 "$WORK/files/dense.raw" "$WORK/files/image.qcow2" || exit 1
$V pool-refresh files >/dev/null
probe_search "$WORK/files/dense.raw"
RSS0=$(rss)   # before any copy: the growth below includes everything the copies kept

vol_xml() { echo "<volume><name>$1</name><capacity unit='bytes'>1</capacity><target><format type='raw'/></target></volume>" >"$WORK/vol.xml"; echo "$WORK/vol.xml"; }
ours() { $V vol-create-from bench "$(vol_xml "$1")" "$2" --inputpool files; }
# engine_sample FILE: the copy engine's own time for the last copy of FILE, from the daemon's log
# (the rest is libvirt, RPC, virsh), appended to $WORK/t.engine_FILE (a round run again drops it).
engine_sample() {
    local ms
    ms=$(grep -F "copied '$WORK/files/$1' into" "$LIBVIRTD_LOG" | tail -1 | sed -n 's/.* in \([0-9]*\) ms$/\1/p')
    [ -n "$ms" ] && echo "$ms" >>"$WORK/t.engine_$1"
}
drop() { $V vol-delete "$1" --pool bench >/dev/null 2>&1 || $RBD rm "rbd/$1" >/dev/null 2>&1; true; }
rbd_import() { $RBD import --no-progress "$WORK/files/$2" "rbd/$1"; }
qemu_into_rbd() { qemu-img convert -f qcow2 -O raw "$WORK/files/image.qcow2" "rbd:rbd/$1:conf=$CEPH_CONF:id=admin"; }
SIZE_BYTES=$(qemu-img info --output=json "$WORK/files/image.qcow2" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
qemu_tuned() {
    $RBD create --size "${SIZE_BYTES}B" "rbd/$1" &&
        qemu-img convert -n --target-is-zero -W -m 8 -f qcow2 -O raw "$WORK/files/image.qcow2" "rbd:rbd/$1:conf=$CEPH_CONF:id=admin"
}
qemu_local_then_import() {
    qemu-img convert -f qcow2 -O raw "$WORK/files/image.qcow2" "$WORK/converted.raw" &&
        $RBD import --no-progress "$WORK/converted.raw" "rbd/$1"; local rc=$?
    rm -f "$WORK/converted.raw"; return $rc
}

round() {
    probe_once "$WORK/files/dense.raw"
    probe_once "$WORK/files/dense.raw" probe_file --from-file
    timed ours_dense ours d1 dense.raw;              engine_sample dense.raw; drop d1
    timed import_dense rbd_import d2 dense.raw;      drop d2
    timed ours_dense200 ours d3 dense200.raw;        drop d3
    timed ours_sparse ours d4 sparse20g.raw;         drop d4
    timed ours_qcow2 ours d5 image.qcow2;            engine_sample image.qcow2; drop d5
    timed qemu_rbd qemu_into_rbd d6;                 drop d6
    timed qemu_local_import qemu_local_then_import d7; drop d7
    timed qemu_bound qemu_tuned d8;                  drop d8
}
round_reversed() {
    timed qemu_bound qemu_tuned d8;                  drop d8
    timed qemu_local_import qemu_local_then_import d7; drop d7
    timed qemu_rbd qemu_into_rbd d6;                 drop d6
    timed ours_qcow2 ours d5 image.qcow2;            engine_sample image.qcow2; drop d5
    timed ours_sparse ours d4 sparse20g.raw;         drop d4
    timed ours_dense200 ours d3 dense200.raw;        drop d3
    timed import_dense rbd_import d2 dense.raw;      drop d2
    timed ours_dense ours d1 dense.raw;              engine_sample dense.raw; drop d1
    probe_once "$WORK/files/dense.raw" probe_file --from-file
    probe_once "$WORK/files/dense.raw"
}

timing_rounds

ENGINE_DENSE=$(median_of engine_dense.raw)
ENGINE_QCOW2=$(median_of engine_image.qcow2)

PEAK=$RSS0 ALLOC=''
if [ "$BIG_MIB" -gt 0 ]; then
    say "memory: libvirtd RSS while copying $BIG_MIB MiB"
    head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$WORK/files/big.raw"
    $V pool-refresh files >/dev/null
    peak_rss ours big big.raw
    ALLOC=$($RBD du rbd/big 2>/dev/null | awk 'NR==2 {print $4 " " $5}')
    drop big
fi

{
    d=$(median_of ours_dense); i=$(median_of import_dense)
    d200=$(median_of ours_dense200); s=$(median_of ours_sparse)
    q=$(median_of ours_qcow2); qa=$(median_of qemu_rbd); qb=$(median_of qemu_local_import); qc=$(median_of qemu_bound)
    best=$(( qa < qb ? qa : qb ))
    pf=$(median_of probe_file)
    growth=$(( (PEAK - RSS0) / 1024 ))
    printf 'copy benchmark, %s rounds, medians (ms); one lab, memstore OSD, %s; load average %s at the start, %s at the end\n' \
        "$REPS" "$(date -u +%F)" "$LOAD0" "$(loadavg)"
    probe_note "$SIZE_MIB"
    steal_note; echo
    printf '%-58s %9s %9s %8s %-16s %s\n' case ours baseline ratio target result
    row() { printf '%-58s %9s %9s %8s %-16s %s\n' "$1" "$2" "$3" "$4" "$5" "$6"; }
    r=$(ratio "$d" "$i"); rp=$(ratio "$(mibs "$SIZE_MIB" "$d")" "$PROBE_MIBS")
    row "dense raw ${SIZE_MIB} MiB: vol-create-from vs rbd import" "$d" "$i" "$r" "<= 0.60" "$(verdict "$r" 0.60)"
    row "  its throughput vs the write probe's ($(mibs "$SIZE_MIB" "$d") MiB/s)" "-" "-" "$rp" ">= 0.90" "$(verdict "$rp" 0.90 min)"
    row "  its throughput vs the file probe's ($(mibs "$SIZE_MIB" "$pf") MiB/s)" "-" "-" "$(ratio "$(mibs "$SIZE_MIB" "$d")" "$(mibs "$SIZE_MIB" "$pf")")" "-" ""
    r=$(ratio "$s" "$d200")
    row "sparse 20 GiB (200 MiB data) vs dense 200 MiB" "$s" "$d200" "$r" "<= 2.00" "$(verdict "$r" 2.00)"
    r=$(ratio "$q" "$best")
    row "qcow2 ${SIZE_MIB} MiB vs best of (a) $qa ms (b) $qb ms" "$q" "$best" "$r" "<= 0.70" "$(verdict "$r" 0.70)"
    row "  its throughput vs the write probe's ($(mibs "$SIZE_MIB" "$q") MiB/s)" "-" "-" "$(ratio "$(mibs "$SIZE_MIB" "$q")" "$PROBE_MIBS")" "-" ""
    if [ "$BIG_MIB" -gt 0 ]; then
        row "libvirtd RSS growth copying ${BIG_MIB} MiB (MiB)" "$growth" "-" "-" "<= 64" "$(verdict "$growth" 64)"
    fi
    printf '(a) qemu-img convert -O raw into rbd:  (b) qemu-img convert to a local raw file, then rbd import\n'
    printf '(c) the bound of the qcow2 row, the conversion the module runs, bare (rbd create + qemu-img convert -n --target-is-zero -W -m 8): %s ms; ours is %s x it; 0.70 x the best baseline is %s ms\n' \
        "$qc" "$(ratio "$q" "$qc")" "$(( best * 70 / 100 ))"
    pm=$(median_of probe)
    printf 'the probe in memory: %s ms per copy (median) = %s x rbd import, the bound of "<= 0.60 x rbd import" from below\n' "$pm" "$(ratio "$pm" "$i")"
    printf 'the file probe (the bytes read from the file as they are written): %s ms (median of %s) = %s MiB/s\n' \
        "$pf" "$(tr '\n' ' ' <"$WORK/t.probe_file" | sed 's/ $//')" "$(mibs "$SIZE_MIB" "$pf")"
    printf 'inside the daemon (copy engine only, median): dense raw %s ms (%s), qcow2 %s ms\n' \
        "$ENGINE_DENSE" "$(of_probe "$SIZE_MIB" "$ENGINE_DENSE")" "$ENGINE_QCOW2"
    [ -n "$ALLOC" ] && printf 'allocated in Ceph after the %s MiB copy: %s\n' "$BIG_MIB" "$ALLOC"
    echo
    echo "floor rows:"
    floor_header
    r=$(ratio "$d" "$i")
    floor_row 4 "dense raw ${SIZE_MIB} MiB file -> RBD (vol-create-from) vs rbd import" "$d ms ($(of_probe "$SIZE_MIB" "$d"))" \
        "rbd import $i ms ($(of_probe "$SIZE_MIB" "$i"))" "$r" "<= 0.60 and >= 0.90x probe" \
        "$(both "$(verdict "$r" 0.60)" "$(verdict "$rp" 0.90 min)")" \
        "$(probe_note "$SIZE_MIB"); bounds: the probe itself $pm ms = $(ratio "$pm" "$i") x rbd import; the file probe (reading the file as it writes) $pf ms, ours = $(ratio "$(mibs "$SIZE_MIB" "$d")" "$(mibs "$SIZE_MIB" "$pf")") x its throughput"
    r=$(ratio "$q" "$best")
    floor_row 5 "qcow2 ${SIZE_MIB} MiB -> RBD vs best of (a) convert -> rbd:, (b) local raw + import" \
        "$q ms ($(of_probe "$SIZE_MIB" "$q"))" "$( ((qa < qb)) && echo "(a)" || echo "(b)") $best ms ((a) $qa, (b) $qb)" \
        "$r" "<= 0.70" "$(verdict "$r" 0.70)" \
        "bound: the module's own conversion, bare (c) $qc ms = $(ratio "$qc" "$best") x the best baseline; ours = $(ratio "$q" "$qc") x (c)"
} | tee "$RESULTS/copy.txt"
