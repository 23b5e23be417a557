#!/bin/bash
# The libvirt versions to build a module for, and what each build needs. Used by meson at
# configure time; prints one line per version:
#
#   UPSTREAM|DEBIAN_VERSION|SOURCE_TREE|ROOT
#
# UPSTREAM (11.3.0) names the module (rbdclone-libvirt-UPSTREAM.so), SOURCE_TREE is the unpacked
# source of that Debian version (internal headers, tools/libvirt-source.sh), ROOT is empty for
# the installed libvirt (its libvirt-dev is what the build uses) and otherwise a directory
# holding that version's libvirt0 and libvirt-dev unpacked (tools/libvirt-sysroot.sh): its
# libvirt.so carries the LIBVIRT_PRIVATE_UPSTREAM symbol versions the module must be linked to.
#
#   tools/libvirt-targets.sh CACHE WHICH
#
# WHICH: "installed"  only the installed libvirt (libvirt-dev);
#        "archive"    that one, plus the newest Debian version of each other upstream version
#                     of libvirt0 that apt can install (the release's own and its backports,
#                     when they are in apt's sources);
#        a comma-separated list of Debian versions (e.g. 9.0.0-4+deb12u2,11.3.0-2~bpo12+1),
#                     and the installed one.
# The installed version must build, and so must every version of an explicit list; with
# "archive", a version whose source or binaries the archive does not serve is left out with a
# note on stderr (on Debian 13, trixie-backports' libvirt 12.9: its source files are missing
# from the archive here).
set -euo pipefail

cache=${1:?usage: libvirt-targets.sh CACHE installed|archive|VERSION[,VERSION...]}
which=${2:-installed}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "libvirt-targets: $*" >&2; }
die() { say "$*"; exit 1; }

upstream_of() { local v=${1#*:}; echo "${v%-*}"; }

installed=$(dpkg-query -W -f='${Version}' libvirt-dev 2>/dev/null) ||
    die "libvirt-dev is not installed (apt-get install libvirt-dev)"

strict=1
case $which in
installed) versions=("$installed") ;;
archive)
    strict=0
    versions=("$installed")
    # apt-cache madison lists every version apt knows, newest first: keep the first of each
    # upstream version.
    declare -A seen=(["$(upstream_of "$installed")"]=1)
    while read -r v; do
        u=$(upstream_of "$v")
        [[ -n ${seen[$u]:-} ]] && continue
        seen[$u]=1
        versions+=("$v")
    done < <(apt-cache madison libvirt0 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')
    ;;
*)
    # The installed libvirt's module is always built (first), unless the list names another
    # Debian version of its upstream version.
    IFS=, read -r -a listed <<<"$which"
    versions=()
    grep -qx -- "$(upstream_of "$installed")" < <(for v in "${listed[@]}"; do upstream_of "$v"; done) ||
        versions=("$installed")
    versions+=("${listed[@]}")
    ;;
esac

declare -A built=()
for v in "${versions[@]}"; do
    u=$(upstream_of "$v")
    [[ -n ${built[$u]:-} ]] && die "two Debian versions of libvirt $u asked for: ${built[$u]} and $v"
    if [[ $v == "$installed" ]]; then
        tree=$("$here/libvirt-source.sh" "$cache") || die "no source for the installed libvirt $v"
        root=''
    else
        why=''
        if ! tree=$("$here/libvirt-source.sh" "$cache" "$v"); then
            why="the archive does not serve the source of libvirt $v"
        elif ! root=$("$here/libvirt-sysroot.sh" "$cache" "$v"); then
            why="the binaries of libvirt0/libvirt-dev $v cannot be downloaded"
        fi
        if [[ -n $why ]]; then
            ((strict)) && die "cannot build for libvirt $v: $why"
            say "NOTE: no module for libvirt $u: $why"
            continue
        fi
    fi
    built[$u]=$v
    echo "$u|$v|$tree|$root"
done
