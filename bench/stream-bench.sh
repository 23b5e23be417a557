#!/bin/bash
# Stream benchmark (issue 6: vol-upload / vol-download): our stream driver
# against the rbd tool an operator would otherwise use, side by side in one
# throwaway lab (one Ceph cluster, one libvirtd with our module).  Variants of
# a case run interleaved, BENCH_STREAM_REPS times each, in alternating order;
# the table gives medians and ratios.
#
#   upload dense     vol-upload of a dense raw file           vs  `rbd import` of it
#   upload sparse    vol-upload --sparse, 20 GiB with 200 MiB  vs  vol-upload of the dense 200 MiB
#   download dense   vol-download into a local file           vs  `rbd export` of the image
#   download sparse  vol-download --sparse of that 20 GiB      vs  vol-download of the dense 200 MiB
#   memory           libvirtd's RSS growth during one upload and one download of BENCH_STREAM_BIG_MIB
#
# Environment: BENCH_STREAM_MIB (1024), BENCH_STREAM_BIG_MIB (4096), BENCH_STREAM_REPS (5),
# BUILD_DIR (see tests/common.sh).  Writes build/bench-results/stream.txt.  Stops the lab and
# removes its files even on failure.
set -uo pipefail
PROG=stream-bench
SIZE_MIB=${BENCH_STREAM_MIB:-1024}
BIG_MIB=${BENCH_STREAM_BIG_MIB:-4096}
REPS=${BENCH_STREAM_REPS:-5}
. "$(dirname "$0")/bench-lab.sh"
bench_lab streambench $(( (2 * BIG_MIB + 3 * SIZE_MIB + 2048) * 1024 * 1024 ))

lab_pool_xml bench rbd >"$WORK/pool.xml"
$V pool-create "$WORK/pool.xml" >/dev/null || exit 1

say "files: dense $SIZE_MIB MiB, dense 200 MiB, 20 GiB sparse with 200 MiB of data"
raw_files "$WORK" "$SIZE_MIB"

drop() { $V vol-delete "$1" --pool bench >/dev/null 2>&1 || $RBD rm "rbd/$1" >/dev/null 2>&1; true; }
# upload NAME FILE [FLAGS]: a new volume the size of FILE; only the upload is timed.
upload() {
    $V vol-create-as bench up "$(stat -c %s "$WORK/$2")b" >/dev/null || exit 1
    timed "$1" $V vol-upload ${3:-} up "$WORK/$2" --pool bench
    drop up
}
rbd_import() { timed import $RBD import --no-progress "$WORK/dense.raw" rbd/up; drop up; }
download() { timed "$1" $V vol-download ${3:-} "$2" "$WORK/out.raw" --pool bench; rm -f "$WORK/out.raw"; }
rbd_export() { timed export $RBD export --no-progress rbd/src-dense "$WORK/out.raw"; rm -f "$WORK/out.raw"; }

say "volumes to download: the three files, by vol-upload"
for f in dense dense200 sparse20g; do
    $V vol-create-as bench "src-$f" "$(stat -c %s "$WORK/$f.raw")b" >/dev/null &&
        $V vol-upload --sparse "src-$f" "$WORK/$f.raw" --pool bench || exit 1
done
$V pool-refresh bench >/dev/null

round() {
    upload up_dense dense.raw;                rbd_import
    upload up_sparse sparse20g.raw --sparse;  upload up_dense200 dense200.raw
    download down_dense src-dense;            rbd_export
    download down_sparse src-sparse20g --sparse; download down_dense200 src-dense200
}
round_reversed() {
    download down_dense200 src-dense200;      download down_sparse src-sparse20g --sparse
    rbd_export;                               download down_dense src-dense
    upload up_dense200 dense200.raw;          upload up_sparse sparse20g.raw --sparse
    rbd_import;                               upload up_dense dense.raw
}

timing_rounds
SPARSE_FILE_KIB=$(
    $V vol-download --sparse src-sparse20g "$WORK/out.raw" --pool bench >/dev/null && du -k "$WORK/out.raw" | cut -f1
    rm -f "$WORK/out.raw"
)
SPARSE_STORED=$($RBD du rbd/src-sparse20g 2>/dev/null | awk 'NR==2 {print $4 " " $5}')

say "memory: libvirtd RSS while uploading and downloading $BIG_MIB MiB"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$WORK/big.raw"
$V vol-create-as bench big "${BIG_MIB}M" >/dev/null || exit 1
RSS0=$(rss)
peak_rss $V vol-upload big "$WORK/big.raw" --pool bench
PEAK_UP=$PEAK
peak_rss $V vol-download big "$WORK/out.raw" --pool bench
PEAK_DOWN=$PEAK
cmp -s "$WORK/big.raw" "$WORK/out.raw" || { echo "stream-bench: the $BIG_MIB MiB round trip differs" >&2; exit 1; }
rm -f "$WORK/out.raw" "$WORK/big.raw"
drop big

{
    ud=$(median_of up_dense); im=$(median_of import)
    us=$(median_of up_sparse); u200=$(median_of up_dense200)
    dd_=$(median_of down_dense); ex=$(median_of export)
    ds=$(median_of down_sparse); d200=$(median_of down_dense200)
    printf 'stream benchmark, %s rounds, medians (ms); one lab, memstore OSD, %s\n' "$REPS" "$(date -u +%F)"
    printf '%-60s %9s %9s %8s %s\n' case ours baseline ratio goal
    printf '%-60s %9d %9d %8s %s\n' "vol-upload dense ${SIZE_MIB} MiB vs rbd import" "$ud" "$im" "$(ratio "$ud" "$im")" "<= 1 (time)"
    printf '%-60s %9d %9d %8s %s\n' "vol-upload --sparse 20 GiB (200 MiB data) vs dense 200 MiB" "$us" "$u200" "$(ratio "$us" "$u200")" "<= 2"
    printf '%-60s %9d %9d %8s %s\n' "vol-download ${SIZE_MIB} MiB vs rbd export" "$dd_" "$ex" "$(ratio "$dd_" "$ex")" "<= 1 (time)"
    printf '%-60s %9d %9d %8s %s\n' "vol-download --sparse 20 GiB (200 MiB data) vs dense 200 MiB" "$ds" "$d200" "$(ratio "$ds" "$d200")" "<= 2"
    printf '%-60s %9d %9s %8s %s\n' "libvirtd RSS growth uploading ${BIG_MIB} MiB (MiB)" $(( (PEAK_UP - RSS0) / 1024 )) "-" "-" "<= 64"
    printf '%-60s %9d %9s %8s %s\n' "libvirtd RSS growth downloading ${BIG_MIB} MiB (MiB)" $(( (PEAK_DOWN - RSS0) / 1024 )) "-" "-" "<= 64"
    printf 'the 20 GiB sparse volume: stored in Ceph %s, downloaded with --sparse into a %s KiB file\n' \
        "${SPARSE_STORED:-?}" "${SPARSE_FILE_KIB:-?}"
    printf 'samples (ms):'
    for t in up_dense import up_sparse up_dense200 down_dense export down_sparse down_dense200; do
        printf ' %s %s;' "$t" "$(tr '\n' ' ' <"$WORK/t.$t" | sed 's/ $//')"
    done
    echo
} | tee "$RESULTS/stream.txt"
