# Shared by tests/run-all.sh, demo.sh and bench/: paths, build, backend dirs (and the lab
# helpers of tests/lab/lab-common.sh).
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$REPO/build}
# shellcheck source=lab/lab-common.sh
. "$REPO/tests/lab/lab-common.sh"   # RBDCLONE_MULTIARCH, LIBVIRT_LIB_DIR
STOCK_BACKENDS=$LIBVIRT_LIB_DIR/storage-backend

say() { printf '\n=== %s\n' "$*"; }

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

# A backend directory for libvirtd: our rbd module plus the stock fs module
# (dir pools), as LIBVIRT_STORAGE_BACKEND_DIR replaces the directory for
# every backend.  Prints its path.
ours_backend_dir() {
    local d=$BUILD/backends-ours
    mkdir -p "$d"
    ln -sf "$BUILD/plugin/libvirt_storage_backend_rbd.so" "$d/libvirt_storage_backend_rbd.so"
    ln -sf "$STOCK_BACKENDS/libvirt_storage_backend_fs.so" "$d/libvirt_storage_backend_fs.so"
    echo "$d"
}
