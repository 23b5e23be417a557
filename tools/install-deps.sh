#!/bin/bash
# Installs what building and testing need on Debian 12 and 13, from Debian's own
# packages (for the VM tests: libvirt's qemu driver, qemu-system-x86, virt-install and
# busybox-static, the guests' initramfs), enables deb-src (the build fetches
# libvirt's source package for its internal headers) and adds the release's
# backports suite to apt's sources (the build makes a module for each libvirt
# version the release and its backports offer; backports are never installed
# from unless asked, or pinned as on a host running backports' libvirt).
# Idempotent; needs root.
set -euo pipefail

PACKAGES=(
    build-essential meson ninja-build pkg-config dpkg-dev debhelper
    libvirt-dev libvirt-daemon libvirt-daemon-driver-storage-rbd libvirt-clients
    librbd-dev librados-dev libglib2.0-dev libjson-glib-dev libxml2-dev libnbd-dev libgtest-dev
    ceph-mon ceph-osd ceph-common
    qemu-utils qemu-block-extra
    libvirt-daemon-driver-qemu qemu-system-x86 virtinst busybox-static
    python3 util-linux procps iproute2
)

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root (it uses apt-get)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done

need_update=0
# deb-src for `apt-get source libvirt` (deb822 sources of Debian 12, or the
# classic sources.list).
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    if grep -q '^Types: deb$' "$f"; then
        sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        need_update=1
    fi
done
if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list &&
   ! grep -q '^deb-src ' /etc/apt/sources.list; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >> /etc/apt/sources.list
    need_update=1
fi
# The release's backports (deb and deb-src), when no source names them yet.
if added=$("$(dirname "$0")/add-backports.sh") && [ -n "$added" ]; then
    echo "install-deps: $added"
    need_update=1
fi
# The source index must be present for apt-get source.
ls /var/lib/apt/lists/*_Sources* >/dev/null 2>&1 || need_update=1

if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install-deps: installing ${missing[*]}"
        apt-get install -y -q "${missing[@]}"
    fi
fi
echo "install-deps: all build and test dependencies are installed"
