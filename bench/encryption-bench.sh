#!/bin/bash
# Encrypted disks against plain ones, interleaved in one lab (Ceph + libvirtd with our module):
#   clone:  vol-create-from of a golden image (layering): a plain disk (a clone) against an
#           encrypted one (Ceph >= 18: a clone formatted with its own key; Ceph 16: an
#           encrypted copy, the plan says why)
#   copy:   the same from a golden image without layering (both are copies)
#   floor:  `rbd encryption format` of a scratch image alone: librbd's key derivation
#           (libcryptsetup's defaults), which every encrypted create pays whatever we do
# Each round creates the disks and deletes them; the table gives medians, and the ratio
# encrypted / plain. Writes build/bench-results/encryption.txt; stops the lab even on failure.
#
# Environment: BENCH_ENC_REPS (5), BENCH_ENC_GOLDEN_MIB (1024: the golden image's size),
# BENCH_ENC_DATA_MIB (256: random bytes written at its start), BUILD_DIR (tests/common.sh).
set -uo pipefail
. "$(dirname "$0")/../tests/common.sh"

REPS=${BENCH_ENC_REPS:-5}
GOLDEN_MIB=${BENCH_ENC_GOLDEN_MIB:-1024}
DATA_MIB=${BENCH_ENC_DATA_MIB:-256}
RESULTS=$BUILD/bench-results
WORK=''
cleanup() {
    stop_labs
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "build"
build_all || exit 1
say "lab: Ceph + libvirtd with our module"
start_lab encbench "$(ours_backend_dir)" || exit 1
# shellcheck source=/dev/null  # written by lab.sh
. "$LAB/lab.env"
WORK=$(mktemp -d /tmp/rbdclone-encbench-work.XXXXXX) || exit 1
V() { timeout 600 virsh -q -c "$LIBVIRT_STORAGE_URI" "$@"; }
R() { rbd -c "$CEPH_CONF" "$@"; }
now_ms() { date +%s%3N; }

say "setup: pools, golden images ($GOLDEN_MIB MiB, $DATA_MIB MiB of data), a passphrase secret"
lab_pool_xml images rbd >"$WORK/images.xml"
lab_pool_xml vms rbd2 >"$WORK/vms.xml"
V pool-create "$WORK/images.xml" >/dev/null && V pool-create "$WORK/vms.xml" >/dev/null || exit 1
truncate -s "${GOLDEN_MIB}M" "$WORK/golden.raw"
head -c $((DATA_MIB << 20)) /dev/urandom | dd of="$WORK/golden.raw" conv=notrunc bs=4M iflag=fullblock status=none
R import --no-progress "$WORK/golden.raw" rbd/golden >/dev/null || exit 1
R import --no-progress --image-feature exclusive-lock "$WORK/golden.raw" rbd/golden-flat >/dev/null || exit 1
rm -f "$WORK/golden.raw"
V pool-refresh images >/dev/null || exit 1
UUID=5e1ec7ed-0000-4000-8000-00000000e4c1
cat >"$WORK/secret.xml" <<EOF
<secret ephemeral='no' private='yes'><uuid>$UUID</uuid><usage type='volume'><volume>/bench/encrypted</volume></usage></secret>
EOF
(umask 077 && printf '%s' 'bench passphrase' >"$WORK/pass")
S() { timeout 60 virsh -q -c "$LIBVIRT_SECRET_URI" "$@"; }
S secret-define "$WORK/secret.xml" >/dev/null && S secret-set-value "$UUID" --file "$WORK/pass" --plain >/dev/null || exit 1
vol_xml() { # NAME [encrypted]
    local enc=''
    [ -n "${2:-}" ] && enc="<encryption format='luks2' engine='librbd'><secret type='passphrase' uuid='$UUID'/></encryption>"
    echo "<volume><name>$1</name><capacity unit='bytes'>0</capacity><target><format type='raw'/>$enc</target></volume>"
}
# create KIND SOURCE ENCRYPTED: prints the milliseconds of one vol-create-from, then deletes the disk.
create() {
    local name="b-$1-$RANDOM" t0 t1
    vol_xml "$name" "$3" >"$WORK/vol.xml"
    t0=$(now_ms)
    V vol-create-from vms "$WORK/vol.xml" "$2" --inputpool images >/dev/null || { echo "FAILED: $1" >&2; return 1; }
    t1=$(now_ms)
    V vol-delete "$name" --pool vms >/dev/null || return 1
    echo $((t1 - t0))
}
floor() {
    local t0 t1
    R create --size "${GOLDEN_MIB}M" rbd2/floor >/dev/null || return 1
    t0=$(now_ms)
    R encryption format rbd2/floor luks2 "$WORK/pass" >/dev/null || return 1
    t1=$(now_ms)
    R rm --no-progress rbd2/floor >/dev/null
    echo $((t1 - t0))
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

say "rounds ($REPS), interleaved"
declare -A samples
for ((i = 1; i <= REPS; i++)); do
    for case in "clone plain golden" "clone encrypted golden" "copy plain golden-flat" "copy encrypted golden-flat"; do
        set -- $case
        ms=$(create "$1" "$3" "$([ "$2" = encrypted ] && echo yes)") || exit 1
        samples[$1-$2]+="$ms "
    done
    ms=$(floor) || exit 1
    samples[floor]+="$ms "
    echo "round $i: ${samples[*]}" | tail -c 200
done

mkdir -p "$RESULTS"
{
    echo "encrypted disks ($(bash "$REPO/tests/platform/describe.sh")), golden $GOLDEN_MIB MiB with $DATA_MIB MiB of data, $REPS rounds, median ms"
    printf '%-8s %10s %10s %8s\n' work plain encrypted ratio
    for w in clone copy; do
        p=$(tr ' ' '\n' <<<"${samples[$w-plain]}" | grep . | median)
        e=$(tr ' ' '\n' <<<"${samples[$w-encrypted]}" | grep . | median)
        printf '%-8s %10s %10s %8s\n' "$w" "$p" "$e" "$(awk -v a="$e" -v b="$p" 'BEGIN {printf "%.1f", a / (b ? b : 1)}')"
    done
    echo "floor: rbd encryption format (luks2) of a scratch image alone: $(tr ' ' '\n' <<<"${samples[floor]}" | grep . | median) ms"
    echo "decisions: $(grep -o 'decision for [^(]*([^)]*)' "$LIBVIRTD_LOG" | grep -o ': [a-z+-]* (' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
} | tee "$RESULTS/encryption.txt"
