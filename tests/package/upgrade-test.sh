#!/bin/bash
# A host's libvirt moves on under the installed package, as an operator moves it (README,
# "Upgrading libvirt"): on a fresh Debian with nothing but this repository and a package built
# for its release,
#
#   1. installs the package as the README says (apt-get install ./rbdclone_*.deb), with
#      Ceph's daemons for a throwaway cluster;
#   2. starts the system's own libvirtd (libvirt's module directory) on that cluster, defines
#      two persistent rbd pools, and makes a VM disk in one from an image in the other
#      (vol-create-from): a clone, by the module of the running libvirt;
#   3. adds the release's backports to apt's sources and installs backports' libvirt
#      (apt-get install -t SUITE-backports libvirt-daemon libvirt-daemon-driver-storage-rbd
#      libvirt-clients): apt neither removes nor holds back the package;
#   4. restarts libvirtd: the pools are still active; when the package carries a module for the
#      new libvirt, a cross-pool vol-create-from is a clone again; when it does not, libvirt's
#      stock backend serves (a volume is created), and the daemon's log says so once, at
#      WARNING;
#   5. removes the package: the new libvirt's stock module is back, byte for byte.
#
#   tests/package/upgrade-test.sh DEB BACKPORTS_SUITE [RESULT_DIR]
#
# As root, on a machine whose libvirt may change for good (CI runs it in a fresh chroot:
# tests/platform/debian-chroot.sh). RESULT_DIR (default BUILD/test-results) gets upgrade.xml
# and total ("PASSED FAILED SKIPPED").
set -uo pipefail
DEB=$(realpath -- "${1:?usage: upgrade-test.sh DEB BACKPORTS_SUITE [RESULT_DIR]}")
TARGET=${2:?usage: upgrade-test.sh DEB BACKPORTS_SUITE [RESULT_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../common.sh"
PROG=upgrade-test
# shellcheck source=checks.sh
. "$REPO/tests/package/checks.sh"   # check finish_checks packaged_md5
RESULTS=${3:-$BUILD/test-results}
MODULE=$STOCK_BACKENDS/libvirt_storage_backend_rbd.so
WORK=$(mktemp -d /tmp/rbdclone-upgrade.XXXXXX) || exit 1
export DEBIAN_FRONTEND=noninteractive

cleanup() {
    stop_labs
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_get() { apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"; }
libvirt_version() { libvirtd --version | awk '{print $NF}'; }
virsh_lab() { (. "$LAB/lab.env" && timeout 120 virsh -q -c "$LIBVIRT_STORAGE_URI" "$@"); }

install_package() {
    apt_get update &&
        apt_get install "$DEB" ceph-mon ceph-osd ceph-common libvirt-clients python3 procps util-linux
}

# The lab's libvirtd is the system's binary with libvirt's module directory; two persistent
# pools, one per Ceph pool, and a golden image in the first.
start_lab_with_pools() {
    start_lab upgrade - || return 1
    (
        set -e
        . "$LAB/lab.env"
        lab_pool_xml images rbd >"$WORK/images.xml"
        lab_pool_xml vms rbd2 >"$WORK/vms.xml"
        for p in images vms; do
            virsh_lab pool-define "$WORK/$p.xml"
            virsh_lab pool-start "$p"
        done
        virsh_lab vol-create-as images golden 64M
        echo "<volume><name>x</name><capacity unit='M'>64</capacity><target><format type='raw'/></target></volume>" >"$WORK/vol.xml"
    )
}

# A cross-pool vol-create-from of DISK is a copy-on-write clone of the golden image, made by
# the module of the running libvirt.
cross_pool_clone() {
    local disk=$1 v
    v=$(libvirt_version)
    sed "s/<name>x</<name>$disk</" "$WORK/vol.xml" >"$WORK/$disk.xml"
    (
        set -e
        . "$LAB/lab.env"
        virsh_lab vol-create-from vms "$WORK/$disk.xml" golden --inputpool images
        rbd -c "$CEPH_CONF" info "rbd2/$disk" | grep 'parent: rbd/golden@rbdclone-'
        grep "rbdclone: loaded" "$LIBVIRTD_LOG"
        grep -q "rbdclone: loaded $STOCK_BACKENDS/rbdclone/rbdclone-libvirt-$v.so for libvirt $v" "$LIBVIRTD_LOG"
    )
}

upgrade_libvirt() {
    local codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    [ "$TARGET" = "$codename-backports" ] || { echo "$TARGET is not $codename's backports"; return 1; }
    "$REPO/tools/add-backports.sh" || return 1
    grep -rh -A3 "^Suites:.* $TARGET" /etc/apt/sources.list.d/
    apt_get update || return 1
    apt_get install -t "$TARGET" libvirt-daemon libvirt-daemon-driver-storage-rbd libvirt-clients \
        >"$WORK/apt.out" 2>&1
    local rc=$?
    cat "$WORK/apt.out"
    return $rc
}

# apt's answer lists no package of ours as removed or kept back, and it is still installed.
package_kept() {
    awk '/^The following packages will be REMOVED:/ { r = 1; next }
         /^The following packages have been kept back:/ { r = 1; next }
         /^[^ ]/ { r = 0 }
         r && /(^| )rbdclone( |$)/ { found = 1 }
         END { exit found }' "$WORK/apt.out" &&
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' rbdclone)" = "ii " ] &&
        dpkg-divert --list "$MODULE" | grep -q 'by rbdclone' &&
        [ "$(md5sum <"$MODULE.stock" | cut -d' ' -f1)" = "$(packaged_md5 libvirt-daemon-driver-storage-rbd "$MODULE")" ]
}

restart_daemon() {
    "$REPO/tests/lab/libvirtd-lab.sh" restart "$LAB/libvirtd" &&
        for p in images vms; do
            info=$(virsh_lab pool-info "$p") && echo "$info" && grep -q "^State: *running" <<<"$info" || return 1
        done
}

# The package carries a module for the new libvirt (Rbdclone-Libvirt-Versions).
has_module_for_new_libvirt() {
    local v
    v=$(libvirt_version)
    grep -qw -- "$v" <<<" $(dpkg-query -W -f='${Rbdclone-Libvirt-Versions}' rbdclone) "
}

stock_serves_with_one_warning() {
    local v
    v=$(libvirt_version)
    (
        set -e
        . "$LAB/lab.env"
        grep "rbdclone:" "$LIBVIRTD_LOG"
        [ "$(grep -c "warning : .*rbdclone: no rbdclone module matches libvirt $v " "$LIBVIRTD_LOG")" = 1 ]
        virsh_lab vol-create-as vms plain 16M
        rbd -c "$CEPH_CONF" info rbd2/plain
    )
}

stock_is_back() {
    ! dpkg-divert --list "$MODULE" | grep -q rbdclone &&
        [ ! -e "$MODULE.stock" ] &&
        [ "$(md5sum <"$MODULE" | cut -d' ' -f1)" = "$(packaged_md5 libvirt-daemon-driver-storage-rbd "$MODULE")" ]
}

say "upgrade: $(basename "$DEB") on $(. /etc/os-release && echo "$PRETTY_NAME"), libvirt moving to $TARGET"
[ "$(id -u)" = 0 ] || { echo "upgrade-test: run as root" >&2; exit 1; }
mkdir -p "$RESULTS"
rm -f "$RESULTS/upgrade.xml" "$RESULTS/total"
check "the package installs as the README says (apt-get install ./rbdclone_*.deb)" install_package
OLD=$(libvirt_version)
check "the system libvirtd starts on our module with two persistent rbd pools" start_lab_with_pools
check "a cross-pool vol-create-from on libvirt $OLD is a clone" cross_pool_clone disk-before
check "apt-get install -t $TARGET libvirt-daemon ... upgrades libvirt" upgrade_libvirt
NEW=$(libvirt_version)
echo "libvirt $OLD -> $NEW"
check "libvirt moved to another upstream version ($OLD -> $NEW)" test "$OLD" != "$NEW"
check "apt neither removed nor held back the package; the stock module stays diverted" package_kept
check "after a restart on libvirt $NEW the pools are still active" restart_daemon
if has_module_for_new_libvirt; then
    check "a cross-pool vol-create-from on libvirt $NEW is a clone again" cross_pool_clone disk-after
else
    check "no module for libvirt $NEW: the stock backend serves, and the log says so once" stock_serves_with_one_warning
fi
stop_lab "$LAB" >/dev/null 2>&1
check "the package removes" dpkg -r rbdclone
check "libvirt $NEW's stock module is back, byte for byte" stock_is_back

finish_checks upgrade "$RESULTS/upgrade.xml" "$RESULTS/total"
