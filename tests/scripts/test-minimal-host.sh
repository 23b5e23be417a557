#!/bin/bash
# The helpers the README's two commands source before they install anything (tests/common.sh
# and tests/lab/lab-common.sh) on a machine without a compiler and without dpkg-dev, as a
# minimal Debian is (debootstrap --variant=minbase, a cloud or container image): run with a
# PATH that holds every command of this machine but gcc, cc, g++, cpp and dpkg-architecture.
#
#   tests/scripts/test-minimal-host.sh [RESULT_XML]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/rbdclone-minimal.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=../package/checks.sh
. "$REPO/tests/package/checks.sh"   # check finish_checks

# A PATH directory of links to this machine's commands, but the ones a minimal Debian lacks.
BIN=$WORK/bin
mkdir -p "$BIN"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    for f in "$d"/*; do
        n=${f##*/}
        case $n in
        gcc* | cc | c++ | g++* | cpp* | *-gcc* | *-g++* | *-cpp* | dpkg-architecture | clang*) continue ;;
        esac
        [ -x "$f" ] && [ ! -e "$BIN/$n" ] && ln -s "$f" "$BIN/$n"
    done
done

# in_minimal_host SCRIPT: bash -c SCRIPT with only that PATH and no inherited multiarch.
in_minimal_host() { env -i PATH="$BIN" HOME=/root bash -c "$1"; }

nothing_of_the_compiler_answers() {
    in_minimal_host '! command -v gcc && ! command -v cc && ! command -v dpkg-architecture && command -v dpkg'
}

# What both commands source first tells the multiarch directory from dpkg alone, and gets
# it right.
common_sh_tells_the_multiarch() {
    local want got
    want=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    got=$(in_minimal_host "cd '$REPO' && . tests/common.sh && echo \"\$RBDCLONE_MULTIARCH \$STOCK_BACKENDS\"")
    echo "want $want, got: $got"
    [ "$got" = "$want /usr/lib/$want/libvirt/storage-backend" ]
}

# An architecture the table does not know, and no dpkg-architecture: a clear error naming what
# to install, not a guess.
an_unknown_architecture_is_refused_clearly() {
    local out
    mkdir -p "$WORK/odd"
    printf '#!/bin/sh\n[ "$1" = --print-architecture ] && echo sparc64 && exit 0\nexec /usr/bin/dpkg "$@"\n' >"$WORK/odd/dpkg"
    chmod +x "$WORK/odd/dpkg"
    out=$(env -i PATH="$WORK/odd:$BIN" bash -c "cd '$REPO' && . tests/common.sh && echo sourced" 2>&1)
    echo "$out"
    ! grep -q sourced <<<"$out" && grep -q "'sparc64'" <<<"$out" && grep -q 'install dpkg-dev' <<<"$out"
}

echo "=== the helpers on a host without gcc and dpkg-dev"
check "the minimal host's PATH has dpkg, and neither gcc, cc nor dpkg-architecture" nothing_of_the_compiler_answers
check "tests/common.sh (both commands source it first) tells the multiarch directory from dpkg alone" common_sh_tells_the_multiarch
check "an architecture nobody knows, without dpkg-dev: a clear error" an_unknown_architecture_is_refused_clearly
finish_checks minimal-host "${1:-}"
