#!/bin/bash
# shellcheck disable=SC2086  # $V and $RBD are command lines, ${3:-} a list of flags: split on purpose
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
#   libvirt's limit  vol-upload / vol-download of the dense file into a volume of a dir pool on
#                    tmpfs: libvirt's own stream path (RPC, its fdstream), no RBD at all, what
#                    bounds rows 7 and 8 from below; and its --sparse download of the 20 GiB file
#                    against the dense 200 MiB, the same for row 9
#   probe            bench/write_probe.cpp on the dense file: librbd's best write throughput
#                    into a new image, one trial per round; each row prints its throughput as
#                    a fraction of it (downloads too, though they read)
#   read probe       bench/read_probe.cpp: librbd reading the downloaded image at the module's
#                    settings, into memory and into a file, one trial each per round
#   CPU              for every dense upload and download, the CPU time of libvirtd, the OSD and
#                    the client (virsh or rbd): row 8's floor is their sum over the cores
#   kept memory      ours and libvirt's own dense download again, virsh run with glibc's malloc
#                    keeping the memory it frees (GLIBC_TUNABLES): row 8 without the page faults
#                    of libvirt's client
#   steal            the CPU the hypervisor took in each round; a round over BENCH_STEAL_MAX %
#                    (15) is thrown away and run again (bench-lab.sh, timing_rounds)
#
# Rows 7, 8 and 9 of the floor table (bench/run-all.sh): vol-upload dense <= 0.60 x rbd import,
# vol-download dense <= 0.70 x rbd export, vol-download --sparse <= 1.10 x the dense 200 MiB.
#
# Environment: BENCH_STREAM_MIB (1024), BENCH_STREAM_BIG_MIB (4096; 0: no memory case), BENCH_STREAM_REPS (5),
# BUILD_DIR (see tests/common.sh).  Writes build/bench-results/stream.txt.  Stops the lab and
# removes its files even on failure.
set -uo pipefail
PROG=stream-bench
SIZE_MIB=${BENCH_STREAM_MIB:-1024}
BIG_MIB=${BENCH_STREAM_BIG_MIB:-4096}
REPS=${BENCH_STREAM_REPS:-5}
. "$(dirname "$0")/bench-lab.sh"
bench_lab streambench $(( (2 * BIG_MIB + 3 * SIZE_MIB + 2048) * 1024 * 1024 ))
LOAD0=$(loadavg)

lab_pool_xml bench rbd >"$WORK/pool.xml"
$V pool-create "$WORK/pool.xml" >/dev/null || exit 1

say "files: dense $SIZE_MIB MiB, dense 200 MiB, 20 GiB sparse with 200 MiB of data"
raw_files "$WORK" "$SIZE_MIB"

drop() { $V vol-delete "$1" --pool bench >/dev/null 2>&1 || $RBD rm "rbd/$1" >/dev/null 2>&1; true; }
# upload NAME FILE [FLAGS]: a new volume the size of FILE; only the upload is timed.
upload() {
    $V vol-create-as bench up "$(stat -c %s "$WORK/$2")b" >/dev/null || exit 1
    timed_cpu "$1" $V vol-upload ${3:-} up "$WORK/$2" --pool bench
    drop up
}
rbd_import() { timed_cpu import $RBD import --no-progress "$WORK/dense.raw" rbd/up; drop up; }
download() { timed_cpu "$1" $V vol-download ${3:-} "$2" "$WORK/out.raw" --pool bench; rm -f "$WORK/out.raw"; }
rbd_export() { timed_cpu export $RBD export --no-progress rbd/src-dense "$WORK/out.raw"; rm -f "$WORK/out.raw"; }

say "libvirt's own stream path: a dir pool on tmpfs"
SHM_DIR=$(mktemp -d /dev/shm/rbdclone-streambench.XXXXXX) || exit 1
BENCH_TMP_DIRS+=("$SHM_DIR")
$V pool-create-as shm dir --target "$SHM_DIR" >/dev/null || exit 1
$V vol-create-as shm dense "$(stat -c %s "$WORK/dense.raw")b" --format raw >/dev/null || exit 1
shm_upload() { timed_cpu shm_up $V vol-upload dense "$WORK/dense.raw" --pool shm; }
shm_download() { timed_cpu shm_down $V vol-download dense "$WORK/out.raw" --pool shm; rm -f "$WORK/out.raw"; }
# Row 9's bound: libvirt's own sparse download of the same 20 GiB file against the dense 200 MiB.
cp --sparse=always "$WORK/sparse20g.raw" "$SHM_DIR/sparse20g" && cp "$WORK/dense200.raw" "$SHM_DIR/dense200" || exit 1
$V pool-refresh shm >/dev/null || exit 1
shm_sparse_downloads() {
    timed shm_down_sparse $V vol-download --sparse sparse20g "$WORK/out.raw" --pool shm; rm -f "$WORK/out.raw"
    timed shm_down_dense200 $V vol-download dense200 "$WORK/out.raw" --pool shm; rm -f "$WORK/out.raw"
}

say "volumes to download: the three files, by vol-upload"
for f in dense dense200 sparse20g; do
    $V vol-create-as bench "src-$f" "$(stat -c %s "$WORK/$f.raw")b" >/dev/null &&
        $V vol-upload --sparse "src-$f" "$WORK/$f.raw" --pool bench || exit 1
done
$V pool-refresh bench >/dev/null
probe_search "$WORK/dense.raw"
# Row 8's bound on the RBD side: librbd reading the image the download reads, at the module's
# settings (2 MiB, 8 in flight), into memory and into a file (what rbd export does, at that depth).
read_probe() { # NAME [--to-file PATH]
    local name=$1 ms; shift
    ms=$("$BUILD/bench/read-probe" rbd src-dense --chunk 2 --depth 8 "$@" | sed -n 's/^READPROBE .* MS=\([0-9]*\)$/\1/p')
    [ -n "$ms" ] || { echo "$PROG: the read probe failed" >&2; exit 1; }
    echo "$ms" >>"$WORK/t.$name"
    rm -f "$WORK/out.raw"
}
read_probes() { read_probe readprobe; read_probe readprobe_file --to-file "$WORK/out.raw"; }
# Row 8 beside a virsh whose malloc keeps the memory it frees.  libvirt's client copies every
# stream message (262120 bytes) into a buffer of its own, queued until virsh writes it; with
# glibc's defaults the freed buffers go back to the kernel and the next ones fault in again (one
# perf stat: 1,600-94,000 page faults per 1 GiB download, virsh's CPU 0.98-5.7 s for the same
# bytes).  Kept, the faults are 1,600-9,000: what is left is the stream itself.
KEEP_MEMORY=GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432
kept_downloads() {
    timed_cpu down_dense_kept env "$KEEP_MEMORY" $V vol-download src-dense "$WORK/out.raw" --pool bench
    rm -f "$WORK/out.raw"
    timed_cpu shm_down_kept env "$KEEP_MEMORY" $V vol-download dense "$WORK/out.raw" --pool shm
    rm -f "$WORK/out.raw"
}

round() {
    probe_once "$WORK/dense.raw"
    upload up_dense dense.raw;                rbd_import;  shm_upload
    upload up_sparse sparse20g.raw --sparse;  upload up_dense200 dense200.raw
    download down_dense src-dense;            rbd_export;  shm_download;  read_probes; kept_downloads
    download down_sparse src-sparse20g --sparse; download down_dense200 src-dense200
    shm_sparse_downloads
}
round_reversed() {
    shm_sparse_downloads
    download down_dense200 src-dense200;      download down_sparse src-sparse20g --sparse
    kept_downloads; read_probes; shm_download; rbd_export; download down_dense src-dense
    upload up_dense200 dense200.raw;          upload up_sparse sparse20g.raw --sparse
    shm_upload; rbd_import;                   upload up_dense dense.raw
    probe_once "$WORK/dense.raw"
}

timing_rounds
SPARSE_FILE_KIB=$(
    $V vol-download --sparse src-sparse20g "$WORK/out.raw" --pool bench >/dev/null && du -k "$WORK/out.raw" | cut -f1
    rm -f "$WORK/out.raw"
)
SPARSE_STORED=$($RBD du rbd/src-sparse20g 2>/dev/null | awk 'NR==2 {print $4 " " $5}')

PEAK_UP=0 PEAK_DOWN=0 RSS0=0
if [ "$BIG_MIB" -gt 0 ]; then
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
fi

{
    ud=$(median_of up_dense); im=$(median_of import)
    us=$(median_of up_sparse); u200=$(median_of up_dense200)
    dd_=$(median_of down_dense); ex=$(median_of export)
    ds=$(median_of down_sparse); d200=$(median_of down_dense200)
    su=$(median_of shm_up); sd=$(median_of shm_down)
    sds=$(median_of shm_down_sparse); sd200=$(median_of shm_down_dense200)
    printf 'stream benchmark, %s rounds, medians (ms); one lab, memstore OSD, %s; load average %s at the start, %s at the end\n' \
        "$REPS" "$(date -u +%F)" "$LOAD0" "$(loadavg)"
    probe_note "$SIZE_MIB"
    steal_note; echo
    row() { # a target of "-": a limit shown, nothing to meet
        printf '%-60s %9s %9s %8s %-8s %s\n' "$1" "$2" "$3" "$4" "$5" "$(if [ "$5" = - ]; then echo -; else verdict "$4" "${5#<= }"; fi)"
    }
    printf '%-60s %9s %9s %8s %-8s %s\n' case ours baseline ratio target result
    row "vol-upload dense ${SIZE_MIB} MiB vs rbd import" "$ud" "$im" "$(ratio "$ud" "$im")" "<= 0.60"
    row "vol-upload --sparse 20 GiB (200 MiB data) vs dense 200 MiB" "$us" "$u200" "$(ratio "$us" "$u200")" "<= 2"
    row "vol-download ${SIZE_MIB} MiB vs rbd export" "$dd_" "$ex" "$(ratio "$dd_" "$ex")" "<= 0.70"
    row "vol-download --sparse 20 GiB (200 MiB data) vs dense 200 MiB" "$ds" "$d200" "$(ratio "$ds" "$d200")" "<= 1.10"
    row "vol-upload dense vs libvirt's own (dir pool on tmpfs)" "$ud" "$su" "$(ratio "$ud" "$su")" "-"
    row "vol-download dense vs libvirt's own (dir pool on tmpfs)" "$dd_" "$sd" "$(ratio "$dd_" "$sd")" "-"
    row "libvirt's own: --sparse 20 GiB vs dense 200 MiB (tmpfs)" "$sds" "$sd200" "$(ratio "$sds" "$sd200")" "-"
    rp=$(median_of readprobe); rpf=$(median_of readprobe_file)
    row "librbd read probe (2 MiB, 8 in flight) into memory vs rbd export" "$rp" "$ex" "$(ratio "$rp" "$ex")" "-"
    row "librbd read probe (2 MiB, 8 in flight) into a file vs rbd export" "$rpf" "$ex" "$(ratio "$rpf" "$ex")" "-"
    dk=$(median_of down_dense_kept); sdk=$(median_of shm_down_kept)
    row "vol-download dense, virsh's malloc keeping its memory, vs rbd export" "$dk" "$ex" "$(ratio "$dk" "$ex")" "-"
    row "libvirt's own (tmpfs), virsh's malloc keeping its memory, vs rbd export" "$sdk" "$ex" "$(ratio "$sdk" "$ex")" "-"
    echo "where the CPU goes (medians; client: virsh or rbd; $(nproc) cores):"
    for t in up_dense import shm_up down_dense export shm_down down_dense_kept shm_down_kept; do
        printf '  %-12s %s\n' "$t" "$(cpu_line "$t")"
    done
    if [ "$BIG_MIB" -gt 0 ]; then
        g=$(( (PEAK_UP - RSS0) / 1024 )); row "libvirtd RSS growth uploading ${BIG_MIB} MiB (MiB)" "$g" "-" "$g" "<= 64"
        g=$(( (PEAK_DOWN - RSS0) / 1024 )); row "libvirtd RSS growth downloading ${BIG_MIB} MiB (MiB)" "$g" "-" "$g" "<= 64"
    fi
    printf 'the 20 GiB sparse volume: stored in Ceph %s, downloaded with --sparse into a %s KiB file\n' \
        "${SPARSE_STORED:-?}" "${SPARSE_FILE_KIB:-?}"
    printf 'samples (ms):'
    for t in probe up_dense import shm_up up_sparse up_dense200 down_dense export shm_down readprobe readprobe_file \
        down_dense_kept shm_down_kept down_sparse down_dense200 shm_down_sparse shm_down_dense200; do
        printf ' %s %s;' "$t" "$(tr '\n' ' ' <"$WORK/t.$t" | sed 's/ $//')"
    done
    echo
    echo
    echo "floor rows:"
    floor_header
    r=$(ratio "$ud" "$im")
    floor_row 7 "vol-upload dense ${SIZE_MIB} MiB vs rbd import" "$ud ms ($(of_probe "$SIZE_MIB" "$ud"))" \
        "rbd import $im ms ($(of_probe "$SIZE_MIB" "$im"))" "$r" "<= 0.60" "$(verdict "$r" 0.60)" \
        "$(probe_note "$SIZE_MIB"); libvirt's own stream (dir pool on tmpfs, no RBD) $su ms: the bound"
    r=$(ratio "$dd_" "$ex")
    floor_row 8 "vol-download dense ${SIZE_MIB} MiB vs rbd export" "$dd_ ms ($(of_probe "$SIZE_MIB" "$dd_"))" \
        "rbd export $ex ms ($(of_probe "$SIZE_MIB" "$ex"))" "$r" "<= 0.70" "$(verdict "$r" 0.70)" \
        "(a download reads: its fraction of the write probe is for scale only); the bounds: librbd alone reads the image in $rp ms (read probe, into memory; $rpf ms into a file), libvirt's own stream (dir pool on tmpfs, no RBD) takes $sd ms; ours uses $(cpu_total_of down_dense) ms of CPU (libvirtd, OSD, virsh) on $(nproc) cores: no faster than $(( $(cpu_total_of down_dense) / $(nproc) )) ms; the target is $(awk -v e="$ex" 'BEGIN {printf "%d", e * 0.70}') ms; with virsh's malloc keeping the memory it frees ($KEEP_MEMORY): ours $dk ms = $(ratio "$dk" "$ex") x rbd export (virsh's CPU $(cut -d' ' -f4 "$WORK/c.down_dense_kept" | median) ms against $(cut -d' ' -f4 "$WORK/c.down_dense" | median)), libvirt's own $sdk ms = $(ratio "$sdk" "$ex") x"
    r=$(ratio "$ds" "$d200")
    floor_row 9 "vol-download --sparse 20 GiB holding 200 MiB vs dense 200 MiB" "$ds ms" "dense 200 MiB $d200 ms" \
        "$r" "<= 1.10" "$(verdict "$r" 1.10)" \
        "libvirt's own stream (dir pool on tmpfs, no RBD): --sparse 20 GiB $sds ms vs dense 200 MiB $sd200 ms = $(ratio "$sds" "$sd200"): the bound"
} | tee "$RESULTS/stream.txt"
