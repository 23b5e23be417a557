#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   installs the dependencies, builds, runs the unit tests, starts a lab
#   (throwaway Ceph + libvirtd with our module), runs the integration tests,
#   runs the parity cases once more against libvirt's stock rbd module, boots
#   TCG guests from disks our module made (a lab whose libvirtd also runs the
#   qemu driver: tests/integration/test_vm.cpp), builds and tests the Debian
#   package (install, clone through the system libvirtd, remove), and stops
#   every lab even on failure.  Ends with "N passed, N failed".
#
# RBDCLONE_SUITES (default "scripts unit ours stock guests package"): the parts to run,
# for development (e.g. RBDCLONE_SUITES=guests). RBDCLONE_FILTER (default "*"): the
# gtest filter of the integration tests against our module, for development too.
#
# Nothing vanishes from the count: a test program that crashes, is killed,
# hangs past its limit or writes no result counts as a failed test named
# after it (tests/results.py), and after each suite the lab's libvirtd must
# still be the very process it was (a check of its own, failed with the
# daemon's last log lines and a backtrace of its core when it died).
set -uo pipefail
. "$(dirname "$0")/common.sh"

RESULTS=$BUILD/test-results
trap stop_labs EXIT
trap 'exit 130' INT TERM

say "dependencies"
"$REPO/tools/install-deps.sh" || exit 1
say "build"
build_all || exit 1
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# run_program NAME LIMIT CMD...: one test program (GoogleTest) with a time
# limit; its result is $RESULTS/NAME.xml whatever becomes of it.
run_program() {
    local name=$1 limit=$2 rc
    shift 2
    rm -f "$RESULTS/$name.xml" "$RESULTS/$name.progress"
    RBDCLONE_TEST_PROGRESS=$RESULTS/$name.progress \
        timeout --kill-after=30 "$limit" "$@" --gtest_output="xml:$RESULTS/$name.xml"
    rc=$?
    python3 "$REPO/tests/results.py" settle "$name" "$rc" "$RESULTS/$name.xml" \
        "$RESULTS/$name.progress" "$limit"
}

# When PID started (field 22 of /proc/PID/stat), empty once it is gone.
process_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# The lines of a libvirtd's stderr (FILE) that are not Ceph's: librados
# prints its own errors (e.g. a refused key while hunting for a monitor) to
# the process's stderr whatever its settings say ("2026-11-25T18:02:11.123+0000
# 7f... -1 ...", then an empty line); anything else there would be ours.
stray_stderr() {
    awk 'length($0) == 0 { next }
         !(length($0) >= 30 && substr($0, 5, 1) == "-" && substr($0, 11, 1) == "T" && index($0, " -1 ") &&
           !index($0, "is using msgr V1 protocol"))' "$1"
}

# daemon_check NAME LAB_DIR PID START: the lab's libvirtd is still the
# process that started the suite; if not, its last words and its core.
# With our module (NAME ours), also: its stderr holds nothing of ours (a
# module inside libvirtd must never write there).
daemon_check() {
    local name=$1 dir=$2 pid=$3 start=$4 lvd core stray
    lvd=$dir/libvirtd
    if [ "$name" = ours ]; then
        if [ ! -r "$lvd/libvirtd.stderr" ]; then
            stray="(no $lvd/libvirtd.stderr to read)"
        else
            stray=$(stray_stderr "$lvd/libvirtd.stderr")
        fi
        python3 "$REPO/tests/results.py" check "stderr-$name" "$([ -z "$stray" ] && echo 1 || echo 0)" \
            "the stderr of the $name lab's libvirtd holds nothing of ours" "$RESULTS/stderr-$name.xml"
        if [ -n "$stray" ]; then
            echo "FAILED: the stderr of the $name lab's libvirtd holds lines that are not Ceph's:"
            printf '%s\n' "$stray" | head -n 20
        fi
    fi
    if [ -n "$start" ] && [ "$(process_start "$pid")" = "$start" ]; then
        python3 "$REPO/tests/results.py" check "daemon-$name" 1 \
            "libvirtd of the $name lab (pid $pid) lived through the suite" "$RESULTS/daemon-$name.xml"
        return
    fi
    python3 "$REPO/tests/results.py" check "daemon-$name" 0 \
        "libvirtd of the $name lab (pid $pid) died during the suite" "$RESULTS/daemon-$name.xml"
    echo "FAILED: libvirtd of the $name lab (pid $pid) died during the suite"
    echo "--- last lines of its log ($lvd/libvirtd.log)"
    tail -n 30 "$lvd/libvirtd.log" 2>/dev/null
    echo "--- its stderr ($lvd/libvirtd.stderr)"
    tail -n 30 "$lvd/libvirtd.stderr" 2>/dev/null
    for core in "$lvd"/core*; do
        [ -f "$core" ] || continue
        echo "--- backtrace of the thread that crashed ($core)"
        if command -v gdb >/dev/null; then
            timeout 120 gdb -batch -ex bt "$(command -v libvirtd)" "$core" 2>/dev/null | grep '^#' | head -40
        else
            echo "(gdb is not installed)"
        fi
        mkdir -p "$RESULTS/cores"
        mv "$core" "$RESULTS/cores/libvirtd-$name.core" && echo "core kept as $RESULTS/cores/libvirtd-$name.core"
    done
}

SUITES=" ${RBDCLONE_SUITES:-scripts unit ours stock guests package} "
wanted() { [[ $SUITES == *" $1 "* ]]; }

# The shell helpers themselves (a host without gcc and dpkg-dev).
if wanted scripts; then
    timeout --kill-after=10 120 "$REPO/tests/scripts/test-minimal-host.sh" "$RESULTS/scripts.xml"
    python3 "$REPO/tests/results.py" settle scripts $? "$RESULTS/scripts.xml" "" 120
fi

if wanted unit; then
    say "unit tests"
    run_program unit 600 "$BUILD/tests/unit/unit-tests"
fi

# run_lab NAME BACKEND_DIR GTEST_FILTER [PROGRAM [--qemu]]: one lab, one run of PROGRAM
# (default integration-tests; its result is PROGRAM-minus-"-tests"-NAME); --qemu: the lab's
# libvirtd also runs guests.
run_lab() {
    local name=$1 backends=$2 filter=$3 program=${4:-integration-tests} qemu=${5:-} dir
    say "$program against the $name module"
    if ! start_lab "lab-$name" "$backends" $qemu; then
        echo "lab failed to start" >&2
        echo '<testsuites tests="1" failures="1" errors="0" skipped="0"/>' >"$RESULTS/lab-$name.xml"
        return
    fi
    dir=$LAB
    local pid start
    pid=$(. "$dir/lab.env" && echo "$LIBVIRTD_PID")
    start=$(process_start "$pid")
    (
        set -a
        . "$dir/lab.env"
        set +a
        LAB_BACKEND=$name run_program "${program%-tests}-$name" "$INTEGRATION_LIMIT" \
            "$BUILD/tests/integration/$program" --gtest_filter="$filter"
    ) || (
        echo "--- last lines of $name libvirtd log"
        . "$dir/lab.env" && tail -40 "$LIBVIRTD_LOG" 2>/dev/null | grep -v '^$' | tail -25
    ) # a subshell: the lab's environment must not leak into the next lab
    daemon_check "$name" "$dir" "$pid" "$start"
    stop_lab "$dir" || echo "warning: lab $dir did not stop cleanly" >&2
}

# Generous limits: a hang is caught, a slow shared machine is not failed.
INTEGRATION_LIMIT=${RBDCLONE_INTEGRATION_LIMIT:-1200}
wanted ours && run_lab ours "$(ours_backend_dir)" "${RBDCLONE_FILTER:-*}"
wanted stock && run_lab stock "$STOCK_BACKENDS" 'Parity.*'
# Guests (libvirt's qemu driver, TCG) booted from disks our module made.
wanted guests && run_lab guests "$(ours_backend_dir)" '*' vm-tests --qemu
# Last: it replaces the system's stock module while it runs (and restores it).
if wanted package; then
    rm -f "$RESULTS/package.xml"
    timeout --kill-after=30 1200 "$REPO/tests/package/package-test.sh" "$RESULTS/package.xml"
    python3 "$REPO/tests/results.py" settle package $? "$RESULTS/package.xml" "" 1200
fi

say "summary"
python3 "$REPO/tests/results.py" summary "$RESULTS"
