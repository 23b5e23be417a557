#!/bin/bash
# The Debian package, as an operator uses it: builds it with
# dpkg-buildpackage (a copy of the .deb is kept in BUILD/package/, for the
# upgrade tests), checks that it carries a module for each libvirt version of
# the release and its backports and depends on no one libvirt version,
# installs it, starts the system's own libvirtd binary with libvirt's default
# module directory (no LIBVIRT_STORAGE_BACKEND_DIR) against a throwaway Ceph,
# clones an image through it (the loader picked the module of the running
# libvirt), then removes the package and checks that the stock module is
# back, byte for byte.
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
# shellcheck source=checks.sh
. "$REPO/tests/package/checks.sh"   # check finish_checks packaged_md5

MODULE=$STOCK_BACKENDS/libvirt_storage_backend_rbd.so
RESULT_XML=${1:-}
WORK=$(mktemp -d /tmp/rbdclone-pkg.XXXXXX) || exit 1
INSTALLED=0

cleanup() {
    stop_labs
    if ((INSTALLED)); then
        dpkg --purge rbdclone >/dev/null 2>&1 || echo "warning: could not remove the rbdclone package" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
    (cd "$WORK/src" && RBDCLONE_LIBVIRT_SOURCE=$cache dpkg-buildpackage -us -uc -b) || return 1
    rm -rf "$BUILD/package"
    mkdir -p "$BUILD/package"
    cp "$WORK"/rbdclone_*.deb "$BUILD/package/"
    ls "$BUILD"/package/rbdclone_*.deb
}

# The libvirt versions the package must carry a module for: those of the release and of its
# backports whose source the archive serves (on the archive here, trixie-backports' 12.9 has
# none, see README, Platforms).
expected_versions() {
    case $(. /etc/os-release && echo "${VERSION_CODENAME:-}") in
    bookworm) echo "9.0.0 11.3.0" ;;
    trixie) echo "11.3.0" ;;
    *) dpkg-query -W -f='${Version}' libvirt-daemon | sed 's/^[0-9]*://; s/-[^-]*$//' ;;
    esac
}

carries_the_modules() {
    local want got contents
    want=$(expected_versions)
    contents=$(dpkg-deb -c "$DEB") || return 1
    got=$(dpkg-deb -f "$DEB" Rbdclone-Libvirt-Versions)
    echo "Rbdclone-Libvirt-Versions: $got (expected: $want)"
    [ "$got" = "$want" ] || return 1
    for v in $want; do
        grep -q "/libvirt/storage-backend/rbdclone/rbdclone-libvirt-$v.so\$" <<<"$contents" || return 1
    done
}

# No exact version of libvirt in its dependencies: a point or security release of libvirt, or
# its backports, installs without holding this package back or removing it.
depends_on_no_libvirt_version() {
    local deps
    deps=$(dpkg-deb -f "$DEB" Depends)
    echo "Depends: $deps"
    ! grep -qE 'libvirt[a-z0-9-]* \(' <<<"$deps"
}

stock_md5() { packaged_md5 libvirt-daemon-driver-storage-rbd "$MODULE"; }

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
        # The loader ran the module of the running libvirt.
        v=$(libvirtd --version | awk '{print $NF}')
        grep "rbdclone: loaded" "$LIBVIRTD_LOG"
        grep -q "rbdclone: loaded $STOCK_BACKENDS/rbdclone/rbdclone-libvirt-$v.so for libvirt $v" "$LIBVIRTD_LOG"
        grep -q "$STOCK_BACKENDS/rbdclone/rbdclone-libvirt-$v.so" "/proc/$LIBVIRTD_PID/maps"
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
DEB=$(ls "$BUILD"/package/rbdclone_*.deb 2>/dev/null | head -1)
check "the package carries a module for each libvirt of the release and its backports" carries_the_modules
check "the package depends on no one libvirt version" depends_on_no_libvirt_version
check "the package installs" sh -c "dpkg -i '$DEB'"
dpkg -s rbdclone >/dev/null 2>&1 && INSTALLED=1
check "the stock module is diverted aside, intact" diverted_to_stock
check "libvirt's module directory now holds our module" module_is_ours
check "the system libvirtd (default module dir) clones through our module" clone_through_system_libvirtd
check "the package removes" remove_package
check "the stock module is back, byte for byte" stock_is_back

finish_checks package "$RESULT_XML"
