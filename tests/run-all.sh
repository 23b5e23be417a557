#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   installs the dependencies, builds, runs the unit tests, starts a lab
#   (throwaway Ceph + libvirtd with our module), runs the integration tests,
#   runs the parity cases once more against libvirt's stock rbd module, builds
#   and tests the Debian package (install, clone through the system libvirtd,
#   remove), and stops every lab even on failure.  Ends with "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/common.sh"

RESULTS=$BUILD/test-results
LABS=()
cleanup() {
    for l in "${LABS[@]}"; do
        "$REPO/tests/lab/lab.sh" stop "$l" >/dev/null 2>&1 || echo "warning: could not stop lab $l" >&2
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "dependencies"
"$REPO/tools/install-deps.sh" || exit 1
say "build"
build_all || exit 1
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

say "unit tests"
"$BUILD/tests/unit/unit-tests" --gtest_output="xml:$RESULTS/unit.xml"

# run_lab NAME BACKEND_DIR GTEST_FILTER: one lab, one run of the integration tests.
run_lab() {
    local name=$1 backends=$2 filter=$3 dir
    dir=$(mktemp -d "/tmp/rbdclone-lab-$name.XXXXXX")
    rmdir "$dir"
    LABS+=("$dir")
    say "integration tests against the $name module (lab $dir)"
    if ! "$REPO/tests/lab/lab.sh" start "$dir" "$backends"; then
        echo "lab failed to start" >&2
        echo '<testsuites tests="1" failures="1" errors="0" skipped="0"/>' >"$RESULTS/lab-$name.xml"
        return
    fi
    (
        set -a
        . "$dir/lab.env"
        set +a
        LAB_BACKEND=$name "$BUILD/tests/integration/integration-tests" \
            --gtest_filter="$filter" --gtest_output="xml:$RESULTS/integration-$name.xml"
    ) || {
        echo "--- last lines of $name libvirtd log"
        . "$dir/lab.env" && tail -40 "$LIBVIRTD_LOG" 2>/dev/null | grep -v '^$' | tail -25
    }
    "$REPO/tests/lab/lab.sh" stop "$dir" || echo "warning: lab $dir did not stop cleanly" >&2
}

run_lab ours "$(ours_backend_dir)" '*'
run_lab stock "$STOCK_BACKENDS" 'Parity.*'
# Last: it replaces the system's stock module while it runs (and restores it).
"$REPO/tests/package/package-test.sh" "$RESULTS/package.xml"

say "summary"
python3 - "$RESULTS" <<'PY'
import glob, os, sys, xml.etree.ElementTree as ET
total = {"passed": 0, "failed": 0, "skipped": 0}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.xml"))):
    r = ET.parse(f).getroot()
    t, fl, er = (int(r.get(k, 0)) for k in ("tests", "failures", "errors"))
    sk = int(r.get("skipped", 0)) + int(r.get("disabled", 0))
    # gtest counts skipped tests in "tests"; count them from the cases too
    sk = max(sk, sum(1 for c in r.iter("testcase") if c.find("skipped") is not None))
    p = t - fl - er - sk
    print(f"{os.path.basename(f)[:-4]:>20}: {p} passed, {fl + er} failed, {sk} skipped")
    total["passed"] += p; total["failed"] += fl + er; total["skipped"] += sk
with open(os.path.join(sys.argv[1], "total"), "w") as out:
    out.write(f"{total['passed']} {total['failed']}\n")
print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
PY
read -r _ failed <"$RESULTS/total"
[ "$failed" = 0 ]
