#!/bin/bash
# The README's demo command, run as written (`bash demo.sh`, in the repository), judged by its
# last lines: it exits 0, the guest's checksum of what it read through its cloned disk equals
# the golden image's, and everything it started is stopped. CI runs it as the first thing in a
# fresh minbase chroot (tests/platform/debian-chroot.sh, CHROOT_RUN), as a newcomer would.
#
#   tests/demo-test.sh [RESULT_DIR]       (default BUILD/test-results): demo.xml, total
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RESULTS=${1:-${BUILD_DIR:-$REPO/build}/test-results}
WORK=$(mktemp -d /tmp/rbdclone-demo-test.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=package/checks.sh
. "$HERE/package/checks.sh"   # check finish_checks

demo_runs() {
    (cd "$REPO" && bash demo.sh) </dev/null 2>&1 | tee "$WORK/demo.out"
    return "${PIPESTATUS[0]}"
}
the_guest_read_the_golden_bytes() {
    tail -n 12 "$WORK/demo.out" | grep -F "= sha256 of golden.raw: the VM read the golden image's bytes through the clone"
}
everything_stopped() {
    tail -n 3 "$WORK/demo.out" | grep -E '^all stopped, /tmp/.* removed$' &&
        ! pgrep -f '/tmp/rbdclone-demo\.' >/dev/null
}

mkdir -p "$RESULTS"
rm -f "$RESULTS/demo.xml" "$RESULTS/total"
echo "=== demo: bash demo.sh, as the README says"
check "bash demo.sh exits 0" demo_runs
tail -n 25 "$WORK/demo.out"
check "the guest's checksum of its cloned disk equals the golden image's" the_guest_read_the_golden_bytes
check "the demo stopped everything it started" everything_stopped
finish_checks demo "$RESULTS/demo.xml" "$RESULTS/total"
