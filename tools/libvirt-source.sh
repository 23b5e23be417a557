#!/bin/bash
# Prints the path of the unpacked Debian source of *exactly* the installed
# libvirt, fetching it with `apt-get source` into CACHE_DIR when missing.
# Used by meson at configure time; fails with a clear message when the
# installed libvirt packages disagree with each other or with the source.
#
#   tools/libvirt-source.sh CACHE_DIR
set -euo pipefail

cache=${1:?usage: libvirt-source.sh CACHE_DIR}
die() { echo "libvirt-source: $*" >&2; exit 1; }

dev_version=$(dpkg-query -W -f='${Version}' libvirt-dev 2>/dev/null) ||
    die "libvirt-dev is not installed (apt-get install libvirt-dev)"
# The daemon we plug into must be the same build as the headers.
for pkg in libvirt-daemon libvirt0; do
    v=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$pkg" 2>/dev/null || true)
    case "$v" in
    ii*) [ "${v#*|}" = "$dev_version" ] ||
        die "version mismatch: $pkg is ${v#*|} but libvirt-dev is $dev_version; the module must be built against the internal headers of exactly the libvirt it is loaded into" ;;
    esac
done

upstream=${dev_version#*:}
upstream=${upstream%-*}
tree="$cache/$dev_version/libvirt-$upstream"

if [ ! -f "$tree/.complete" ]; then
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get source -q "libvirt=$dev_version" >"$work/apt.log" 2>&1) || {
        tail -5 "$work/apt.log" >&2
        die "could not fetch the source of libvirt $dev_version: enable deb-src in /etc/apt/sources.list.d/ (add 'deb-src' to 'Types:') and run apt-get update; dpkg-dev must be installed"
    }
    [ -f "$work/libvirt-$upstream/src/storage/storage_backend.h" ] ||
        die "apt-get source libvirt=$dev_version did not unpack libvirt-$upstream"
    rm -rf "$cache/$dev_version"
    mkdir -p "$cache/$dev_version"
    mv "$work/libvirt-$upstream" "$tree"
    touch "$tree/.complete"
fi

src_version=$(sed -n "s/^ *version: '\([0-9.]*\)'.*/\1/p" "$tree/meson.build" | head -1)
[ "$src_version" = "$upstream" ] ||
    die "the source in $tree is libvirt $src_version, expected $upstream"
echo "$tree"
