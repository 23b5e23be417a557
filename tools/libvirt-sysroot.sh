#!/bin/bash
# Prints a directory holding the libvirt0 and libvirt-dev packages of the Debian VERSION given,
# unpacked (not installed), downloading them with `apt-get download` into CACHE_DIR when
# missing. A module for a libvirt other than the installed one compiles against that
# version's public headers (usr/include/libvirt, whose libvirt-common.h is generated) and links
# against its libvirt.so, whose private symbols carry that version (LIBVIRT_PRIVATE_11.3.0): so
# the module it makes loads into exactly that libvirt, as one built on a host running it would.
#
#   tools/libvirt-sysroot.sh CACHE_DIR VERSION
set -euo pipefail

cache=${1:?usage: libvirt-sysroot.sh CACHE_DIR VERSION}
version=${2:?usage: libvirt-sysroot.sh CACHE_DIR VERSION}
die() { echo "libvirt-sysroot: $*" >&2; exit 1; }

upstream=${version#*:}
upstream=${upstream%-*}
root=$cache/$version/root

if [ ! -f "$root/.complete" ]; then
    mkdir -p "$cache/$version"
    work=$(mktemp -d "$cache/.sysroot.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work"   # apt's download sandbox (user _apt) writes there
    (cd "$work" && apt-get download -q "libvirt0=$version" "libvirt-dev=$version") >"$work/apt.log" 2>&1 || {
        tail -5 "$work/apt.log" | sed 's/^/libvirt-sysroot: apt-get: /' >&2
        die "apt-get download libvirt0=$version libvirt-dev=$version failed (is the suite that has it in apt's sources?)"
    }
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$work/root" || die "cannot unpack $deb"
    done
    lib=$(find "$work/root" -name libvirt.so -print -quit)
    [ -n "$lib" ] || die "libvirt-dev $version holds no libvirt.so"
    # The symbol versions a module linked against it will ask for.
    grep -q "LIBVIRT_PRIVATE_$upstream" "$(readlink -f "$lib")" ||
        die "$(readlink -f "$lib") has no LIBVIRT_PRIVATE_$upstream symbol version"
    rm -rf "$root"
    mv "$work/root" "$root"
    touch "$root/.complete"
    echo "libvirt-sysroot: libvirt0 and libvirt-dev $version unpacked in $root" >&2
fi
echo "$root"
