#!/bin/bash
# Adds the Debian release's backports suite (deb and deb-src) to apt's sources, from the mirror
# and keyring of the release's own deb822 stanza (or its sources.list line), unless a source
# names it already. Nothing is installed from backports unless asked (-t, or a pin).
#
#   tools/add-backports.sh [ROOT]      ROOT: the root of another system (a chroot), default /
#
# Prints what it added; exit status 0 when the suite is in the sources (added or there
# before), 1 when the release's mirror could not be told.
set -euo pipefail
root=${1:-}
codename=$(. "$root/etc/os-release" && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || { echo "add-backports: no VERSION_CODENAME in $root/etc/os-release" >&2; exit 1; }
suite=$codename-backports
dir=$root/etc/apt/sources.list.d
mkdir -p "$dir"
if grep -rqsE "^[^#]*[[:space:]]$suite([[:space:]]|\$)" "$root/etc/apt/sources.list" "$dir"/; then
    exit 0
fi
# The stanza whose Suites name the release itself: its URI and keyring.
read -r mirror keyring < <(awk -v c="$codename" '
    FNR == 1 { if (s && u != "") { print u, k; exit } s = 0; u = ""; k = "" }
    /^[[:space:]]*$/ { if (s && u != "") { print u, k; exit } s = 0; u = ""; k = ""; next }
    /^URIs:/ { u = $2 }
    /^Signed-By:/ { k = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) s = 1 }
    END { if (s && u != "") print u, k }' /dev/null "$dir"/*.sources 2>/dev/null) || true
if [ -n "${mirror:-}" ]; then
    {
        echo "Types: deb deb-src"
        echo "URIs: $mirror"
        echo "Suites: $suite"
        echo "Components: main"
        [ -z "${keyring:-}" ] || echo "Signed-By: $keyring"
    } >"$dir/$suite.sources"
else
    mirror=$(sed -n "s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) $codename .*/\2/p" "$root/etc/apt/sources.list" 2>/dev/null | head -1)
    [ -n "$mirror" ] || { echo "add-backports: no source of $codename to take the mirror from" >&2; exit 1; }
    printf 'deb %s %s main\ndeb-src %s %s main\n' "$mirror" "$suite" "$mirror" "$suite" >"$dir/$suite.list"
fi
echo "add-backports: added $suite ($mirror) to apt's sources"
