#!/bin/bash
# One line naming this machine's platform as the test suite sees it, e.g.
#   debian12 (libvirt 9.0.0, ceph 16.2.15, qemu 7.2)
#   debian12+backports (libvirt 11.3.0, ceph 16.2.15, qemu 10.0.2)
# from /etc/os-release and the installed libvirt-daemon, ceph-osd and qemu-utils ("+backports"
# when libvirt-daemon comes from the release's backports).
set -uo pipefail

upstream() {   # PACKAGE: its installed upstream version (no epoch, revision or +dfsg/+ds), or "?"
    local v
    v=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null) || v=''
    [[ $v == ii* ]] || { echo '?'; return; }
    v=${v#*|}
    v=${v#*:}
    v=${v%-*}
    v=${v%%+*}
    v=${v%%~*}
    echo "$v"
}

id=linux version=''
if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    id=$(. /etc/os-release && echo "${ID:-linux}")
    version=$(. /etc/os-release && echo "${VERSION_ID:-}")
    [ -n "$version" ] || version=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
fi
case $(dpkg-query -W -f='${Version}' libvirt-daemon 2>/dev/null) in
*~bpo*) version="$version+backports" ;;
esac
echo "$id$version (libvirt $(upstream libvirt-daemon), ceph $(upstream ceph-osd), qemu $(upstream qemu-utils))"
