#!/bin/bash
# The Debian package, as an operator uses it: builds it with
# dpkg-buildpackage, installs it, starts the system's own libvirtd binary with
# libvirt's default module directory (no LIBVIRT_STORAGE_BACKEND_DIR) against
# a throwaway Ceph, clones an image through it, then removes the package and
# checks that the stock module is back, byte for byte.
#
#   tests/package/package-test.sh [RESULT_XML]
#
# Needs root.  Changes the machine's packages while it runs (the stock module
# is diverted, not removed) and undoes that on exit, also on failure.
# Prints "N passed, N failed"; writes a JUnit file for run-all.sh's summary.
set -uo pipefail
. "$(dirname "$0")/../common.sh"
PROG=package-test
# shellcheck source=../lab/lab-common.sh
. "$REPO/tests/lab/lab-common.sh"   # lab_pool_xml

MODULE=$STOCK_BACKENDS/libvirt_storage_backend_rbd.so
RESULT_XML=${1:-}
WORK=$(mktemp -d /tmp/rbdclone-pkg.XXXXXX) || exit 1
INSTALLED=0
CASES=() FAILS=()

cleanup() {
    stop_labs
    if ((INSTALLED)); then
        dpkg --purge rbdclone >/dev/null 2>&1 || echo "warning: could not remove the rbdclone package" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME COMMAND...: one named check; its output goes to the log.
check() {
    local name=$1; shift
    if "$@" >>"$WORK/log" 2>&1; then
        echo "ok   $name"; CASES+=("$name"); FAILS+=("")
    else
        echo "FAIL $name (see below)"; CASES+=("$name"); FAILS+=("failed: $*")
        tail -15 "$WORK/log" | sed 's/^/     /'
    fi
}

source_cache() {
    meson introspect "$BUILD" --buildoptions 2>/dev/null | python3 -c '
import json, sys
v = [o["value"] for o in json.load(sys.stdin) if o["name"] == "libvirt_source_cache"]
print(v[0] if v and v[0] else "")'
}

build_package() {
    mkdir -p "$WORK/src"
    if git -C "$REPO" rev-parse >/dev/null 2>&1; then
        git -C "$REPO" ls-files -z --cached --others --exclude-standard |
            (cd "$REPO" && tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
    else
        tar -C "$REPO" --exclude=./build -cf - . | tar -xf - -C "$WORK/src"
    fi
    local cache
    cache=$(source_cache)
    [ -n "$cache" ] || cache=$BUILD/libvirt-source
    (cd "$WORK/src" && RBDCLONE_LIBVIRT_SOURCE=$cache dpkg-buildpackage -us -uc -b)
    ls "$WORK"/rbdclone_*.deb
}

stock_md5() {
    # What dpkg recorded for the stock package's file.
    awk -v f="${MODULE#/}" '$2 == f {print $1}' /var/lib/dpkg/info/libvirt-daemon-driver-storage-rbd.md5sums
}

diverted_to_stock() {
    dpkg-divert --list "$MODULE" | grep -q 'by rbdclone' &&
        [ "$(md5sum <"$MODULE.stock" | cut -d' ' -f1)" = "$(stock_md5)" ]
}

module_is_ours() { grep -q 'rbdclone' "$MODULE"; }

clone_through_system_libvirtd() {
    start_lab pkg-lab - || return 1
    (
        set -e
        . "$LAB/lab.env"
        V="virsh -q -c $LIBVIRT_STORAGE_URI"
        lab_pool_xml pkg rbd >"$WORK/pool.xml"
        $V pool-create "$WORK/pool.xml"
        $V vol-create-as pkg golden 64M
        $V vol-clone golden disk1 --pool pkg
        rbd -c "$CEPH_CONF" info rbd/disk1 | grep -q 'parent: rbd/golden@rbdclone-'
        grep -q "decision for RBD image 'rbd/disk1'" "$LIBVIRTD_LOG"
        # The daemon found the module where libvirt looks by default.
        ! tr '\0' '\n' <"/proc/$LIBVIRTD_PID/environ" | grep -q '^LIBVIRT_STORAGE_BACKEND_DIR='
        grep -q "$MODULE" "/proc/$LIBVIRTD_PID/maps"
        # The operators' image cache tool is installed and talks to the cluster.
        /usr/sbin/rbdclone-cache -c "$CEPH_CONF" list rbd | head -n1 | grep -q '^ENTRY'
    )
    local rc=$?
    stop_lab "$LAB" >/dev/null 2>&1
    return $rc
}

remove_package() {
    dpkg --purge rbdclone && INSTALLED=0
}

stock_is_back() {
    ! dpkg-divert --list "$MODULE" | grep -q rbdclone &&
        [ ! -e "$MODULE.stock" ] &&
        [ "$(md5sum <"$MODULE" | cut -d' ' -f1)" = "$(stock_md5)" ]
}

say "package: build, install, clone through the system libvirtd, remove"
[ "$(id -u)" = 0 ] || { echo "package-test: run as root" >&2; exit 1; }
check "dpkg-buildpackage builds the package" build_package
DEB=$(ls "$WORK"/rbdclone_*.deb 2>/dev/null | head -1)
check "the package declares the exact libvirt version it was built for" \
    sh -c "dpkg-deb -f '$DEB' Depends | grep -q 'libvirt-daemon (= $(dpkg-query -W -f='${Version}' libvirt-daemon))'"
check "the package installs" sh -c "dpkg -i '$DEB'"
dpkg -s rbdclone >/dev/null 2>&1 && INSTALLED=1
check "the stock module is diverted aside, intact" diverted_to_stock
check "libvirt's module directory now holds our module" module_is_ours
check "the system libvirtd (default module dir) clones through our module" clone_through_system_libvirtd
check "the package removes" remove_package
check "the stock module is back, byte for byte" stock_is_back

failed=0
for f in "${FAILS[@]}"; do [ -n "$f" ] && failed=$((failed + 1)); done
if [ -n "$RESULT_XML" ]; then
    {
        echo "<testsuites tests=\"${#CASES[@]}\" failures=\"$failed\" errors=\"0\"><testsuite name=\"package\">"
        for i in "${!CASES[@]}"; do
            printf '<testcase name="%s">' "${CASES[$i]}"
            [ -n "${FAILS[$i]}" ] && printf '<failure message="%s"/>' "$(printf '%s' "${FAILS[$i]}" | tr -d '"<>&')"
            echo '</testcase>'
        done
        echo "</testsuite></testsuites>"
    } >"$RESULT_XML"
fi
echo "$(( ${#CASES[@]} - failed )) passed, $failed failed"
[ "$failed" = 0 ]
