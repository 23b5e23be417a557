# Shared by tests/run-all.sh, demo.sh and bench/: paths, build, backend dirs (and the lab
# helpers of tests/lab/lab-common.sh).
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$REPO/build}
# shellcheck source=lab/lab-common.sh
. "$REPO/tests/lab/lab-common.sh"   # RBDCLONE_MULTIARCH, LIBVIRT_LIB_DIR, STOCK_BACKENDS

say() { printf '\n=== %s\n' "$*"; }

# Labs (tests/lab/lab.sh) started by this script.  A script that starts one
# calls stop_labs from its EXIT trap (with whatever else it cleans up), so
# every lab is stopped on exit, also on failure or a signal.
LABS=()
# start_lab NAME [BACKEND_DIR [--qemu]]: a new lab in a fresh /tmp/rbdclone-NAME.XXXXXX
# (its path in LAB), recorded before it starts, so that a start cut short is
# stopped too.  BACKEND_DIR as for lab.sh ("-": libvirt's own directory).
start_lab() {
    local name=$1 backends=${2:-}
    LAB=$(mktemp -d "/tmp/rbdclone-$name.XXXXXX") && rmdir "$LAB" || return 1
    LABS+=("$LAB")
    "$REPO/tests/lab/lab.sh" start "$LAB" ${backends:+"$backends"} "${@:3}"
}
# stop_lab DIR: stops that lab now (stop_labs forgets it).
stop_lab() {
    local dir=$1 l keep=()
    for l in "${LABS[@]}"; do [ "$l" = "$dir" ] || keep+=("$l"); done
    LABS=(${keep[@]+"${keep[@]}"})
    "$REPO/tests/lab/lab.sh" stop "$dir"
}
# start_stock_daemon NAME: a second libvirtd, with libvirt's stock rbd module, on the cluster
# of the lab in $LAB, with the lab's client.admin and client.libvirt secrets defined; its
# directory in STOCK.  stop_labs stops it (before the labs).
STOCK_DAEMONS=()
start_stock_daemon() {
    STOCK=$(mktemp -d "/tmp/rbdclone-$1-stock.XXXXXX") && rmdir "$STOCK" || return 1
    STOCK_DAEMONS+=("$STOCK")
    "$REPO/tests/lab/libvirtd-lab.sh" start "$STOCK" "$STOCK_BACKENDS" || return 1
    (
        set -e
        . "$LAB/lab.env"
        . "$STOCK/libvirtd.env"     # its LIBVIRT_SECRET_URI is the stock daemon's
        define_secret "$LIBVIRT_SECRET_URI" "$LAB_SECRET_ADMIN_UUID" "client.admin secret" "$CEPH_ADMIN_KEY"
        define_secret "$LIBVIRT_SECRET_URI" "$LAB_SECRET_LIBVIRT_UUID" "client.libvirt secret" "$CEPH_LIBVIRT_KEY"
    ) || { echo "defining the ceph secrets in the stock libvirtd $STOCK failed" >&2; return 1; }
}
# stop_labs: every stock daemon and lab still running, quietly; a warning for each that does
# not stop.
stop_labs() {
    local l
    for l in "${STOCK_DAEMONS[@]}"; do
        "$REPO/tests/lab/libvirtd-lab.sh" stop "$l" >/dev/null 2>&1 || echo "warning: could not stop libvirtd $l" >&2
    done
    STOCK_DAEMONS=()
    for l in "${LABS[@]}"; do
        "$REPO/tests/lab/lab.sh" stop "$l" >/dev/null 2>&1 || echo "warning: could not stop lab $l" >&2
    done
    LABS=()
}

# Configures (once) and builds the module and the tests.
build_all() {
    if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$REPO" >"$BUILD.setup.log" 2>&1 || {
            cat "$BUILD.setup.log" >&2
            return 1
        }
        rm -f "$BUILD.setup.log"
    fi
    meson compile -C "$BUILD"
}

# A backend directory for libvirtd laid out as the Debian package lays out libvirt's: our
# loader as the rbd module, the modules it picks from in rbdclone/ (the build's), libvirt's
# stock rbd module beside it as ….so.stock (where the package diverts it: what the loader falls
# back to), and the stock fs module (dir pools), as LIBVIRT_STORAGE_BACKEND_DIR replaces the
# directory for every backend.  Prints its path.
ours_backend_dir() {
    local d=$BUILD/backends-ours
    mkdir -p "$d"
    ln -sf "$BUILD/plugin/libvirt_storage_backend_rbd.so" "$d/libvirt_storage_backend_rbd.so"
    ln -sfn "$BUILD/plugin" "$d/rbdclone"
    ln -sf "$(stock_rbd_module)" "$d/libvirt_storage_backend_rbd.so.stock"
    ln -sf "$STOCK_BACKENDS/libvirt_storage_backend_fs.so" "$d/libvirt_storage_backend_fs.so"
    echo "$d"
}

# libvirt's own rbd module: where the Debian package diverted it while it is installed.
stock_rbd_module() {
    local m=$STOCK_BACKENDS/libvirt_storage_backend_rbd.so
    if [ -e "$m.stock" ]; then echo "$m.stock"; else echo "$m"; fi
}
