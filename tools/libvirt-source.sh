#!/bin/bash
# Prints the path of the unpacked Debian source of *exactly* the installed
# libvirt (or of the Debian VERSION given), fetching it with `apt-get source`
# into CACHE_DIR when missing. Used at configure time (tools/libvirt-targets.sh);
# fails with a clear message when the installed libvirt packages disagree with
# each other or with the source.
#
#   tools/libvirt-source.sh CACHE_DIR [VERSION]
#
# When `apt-get source` fails (the archive may serve the tarballs but not the
# .dsc, as it does for Debian 13's libvirt here), the source is put together
# the way dpkg-source would: the package's stanza in apt's Sources index
# (deb-src must be enabled) names the directory and the sha256 of
# <pkg>_<upstream>.orig.tar.xz and <pkg>_<version>.debian.tar.xz; both are
# downloaded from the mirror that index came from, checked against those
# sums, unpacked, and debian/patches/series is applied in order.
# When the archive serves the .orig tarball but not the .debian one (bookworm-
# backports' libvirt 11.3 here), the tree is the upstream source without
# Debian's patches, and a note says so: Debian's patches of libvirt change
# packaging, defaults and fixes, not the storage driver's structures the glue
# compiles against (checked for 11.3.0-3+deb13u3, whose tarball is served).
# LIBVIRT_SOURCE_FALLBACK=1 skips apt-get source (to test that path).
set -euo pipefail

cache=${1:?usage: libvirt-source.sh CACHE_DIR [VERSION]}
die() { echo "libvirt-source: $*" >&2; exit 1; }
say() { echo "libvirt-source: $*" >&2; }

installed=$(dpkg-query -W -f='${Version}' libvirt-dev 2>/dev/null) || installed=''
dev_version=${2:-$installed}
[ -n "$dev_version" ] || die "libvirt-dev is not installed (apt-get install libvirt-dev)"
# The installed daemon must be the same build as the installed headers.
if [ "$dev_version" = "$installed" ]; then
    for pkg in libvirt-daemon libvirt0; do
        v=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$pkg" 2>/dev/null || true)
        case "$v" in
        ii*) [ "${v#*|}" = "$dev_version" ] ||
            die "version mismatch: $pkg is ${v#*|} but libvirt-dev is $dev_version; the module must be built against the internal headers of exactly the libvirt it is loaded into" ;;
        esac
    done
fi

upstream=${dev_version#*:}
upstream=${upstream%-*}
tree="$cache/$dev_version/libvirt-$upstream"

# fetch_from_index WORK: the fallback described above; unpacks into WORK/libvirt-$upstream.
fetch_from_index() {
    local work=$1 files n=0 p line
    # Which index files are source indexes, and the mirror each came from.
    apt-get indextargets --format '$(FILENAME) $(REPO_URI)' 'Created-By: Sources' \
        >"$work/indexes" 2>/dev/null || : >"$work/indexes"
    [ -s "$work/indexes" ] ||
        die "apt has no source index (Sources): enable deb-src in /etc/apt/sources.list.d/ (add 'deb-src' to 'Types:') and run apt-get update"
    # Find the stanza, download and verify both tarballs; prints their file names.
    files=$(python3 - "$work" libvirt "$dev_version" "$work/indexes" <<'PY'
import hashlib, os, subprocess, sys, urllib.error, urllib.request

work, package, version, indexes = sys.argv[1:5]

def stanzas(text):
    cur, key = {}, None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                yield cur
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, val = line.partition(":")
            cur[key] = val.strip()
    if cur:
        yield cur

found = None
for entry in open(indexes).read().splitlines():
    filename, _, repo_uri = entry.partition(" ")
    if not os.path.exists(filename):
        continue
    # apt-helper reads the index whether apt stored it compressed (lz4, gz...) or not.
    text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", filename],
                          check=True, capture_output=True).stdout.decode("utf-8", "replace")
    for s in stanzas(text):
        if s.get("Package") == package and s.get("Version") == version:
            found = (filename, repo_uri, s)
            break
    if found:
        break
if not found:
    sys.exit(f"no 'Package: {package}' stanza with 'Version: {version}' in apt's Sources indexes "
             "(run apt-get update?)")
filename, repo_uri, s = found
sums = {}
for line in s.get("Checksums-Sha256", "").splitlines():
    f = line.split()
    if len(f) == 3:
        sums[f[2]] = (f[0], int(f[1]))
wanted = [n for n in sums if n.endswith(".debian.tar.xz")] + \
         [n for n in sums if ".orig.tar." in n and not n.endswith(".asc")]
if len(wanted) != 2 or "Directory" not in s:
    sys.exit(f"the stanza of {package} {version} in {filename} does not name one .orig.tar "
             f"and one .debian.tar.xz with a Directory (has: {', '.join(sums) or 'nothing'})")
for name in wanted:
    sha, size = sums[name]
    url = repo_uri.rstrip("/") + "/" + s["Directory"].strip("/") + "/" + name
    dest = os.path.join(work, name)
    if os.path.isfile(dest):   # left by the failed apt-get source: reused if it checks out
        h = hashlib.sha256()
        with open(dest, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        if os.path.getsize(dest) == size and h.hexdigest() == sha:
            print(f"libvirt-source: {name} (downloaded by apt-get source): {size} bytes, "
                  f"sha256 {sha} as in {filename}", file=sys.stderr)
            print(name)
            continue
    h = hashlib.sha256()
    got = 0
    try:
        try:
            r = urllib.request.urlopen(url, timeout=120)
        except urllib.error.HTTPError as e:
            if e.code == 404 and name.endswith(".debian.tar.xz"):
                print(f"libvirt-source: NOTE: {url} is missing from the archive (404): the tree is "
                      "the upstream source without Debian's patches", file=sys.stderr)
                continue
            raise
        with r, open(dest, "wb") as out:
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                h.update(b)
                got += len(b)
                out.write(b)
    except Exception as e:
        sys.exit(f"downloading {url} failed: {e}")
    if got != size or h.hexdigest() != sha:
        sys.exit(f"{url}: {got} bytes, sha256 {h.hexdigest()}; the index {filename} says "
                 f"{size} bytes, sha256 {sha}")
    print(f"libvirt-source: {url}: {size} bytes, sha256 {sha} as in {filename}", file=sys.stderr)
    print(name)
PY
    ) || die "could not fetch the source of libvirt $dev_version from the archive"
    local orig debian
    orig=$(grep '\.orig\.tar\.' <<<"$files")
    debian=$(grep '\.debian\.tar\.xz$' <<<"$files" || true)
    mkdir "$work/orig"
    tar -xf "$work/$orig" -C "$work/orig" || die "cannot unpack $orig"
    # The upstream tarball holds one top directory (libvirt-<upstream>).
    set -- "$work"/orig/*
    [ $# = 1 ] && [ -d "$1" ] || die "$orig does not hold exactly one top directory"
    mv "$1" "$work/libvirt-$upstream"
    if [ -n "$debian" ]; then
        tar -xf "$work/$debian" -C "$work/libvirt-$upstream" || die "cannot unpack $debian"
    fi
    if [ -f "$work/libvirt-$upstream/debian/patches/series" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line=${line%%#*}
            read -r p _ <<<"$line" || true   # "name [-pN]": the name
            [ -n "$p" ] || continue
            (cd "$work/libvirt-$upstream" &&
                patch -s -t -F 0 -N -p1 -u -E --no-backup-if-mismatch -i "debian/patches/$p") \
                >"$work/patch.log" 2>&1 || {
                cat "$work/patch.log" >&2
                die "Debian patch $p does not apply to libvirt $upstream"
            }
            n=$((n + 1))
        done <"$work/libvirt-$upstream/debian/patches/series"
    fi
    say "${why:+apt-get source failed ($why); }fetched ${debian:+the two tarballs ($orig, $debian)}${debian:-$orig alone}, sha256 verified against the Sources index, applied $n Debian patches"
}

why=''
if [ ! -f "$tree/.complete" ]; then
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if [ "${LIBVIRT_SOURCE_FALLBACK:-0}" = 1 ]; then
        say "LIBVIRT_SOURCE_FALLBACK=1: not trying apt-get source"
        fetch_from_index "$work"
    elif (cd "$work" && apt-get source -q "libvirt=$dev_version" >"$work/apt.log" 2>&1); then
        :
    else
        tail -5 "$work/apt.log" | sed 's/^/libvirt-source: apt-get: /' >&2
        why=$(grep -E '^E: ' "$work/apt.log" | head -1 | cut -c1-200)
        why=${why:-exit status != 0}
        say "apt-get source libvirt=$dev_version failed; fetching the tarballs named by the Sources index"
        # Keep what apt-get downloaded (the tarballs are checked again); drop the rest.
        find "$work" -mindepth 1 -maxdepth 1 ! -name '*.tar.*' -exec rm -rf {} +
        for t in python3 patch xz; do
            command -v "$t" >/dev/null || die "apt-get source failed ($why), and the fallback needs $t"
        done
        fetch_from_index "$work"
    fi
    [ -f "$work/libvirt-$upstream/src/storage/storage_backend.h" ] ||
        die "the source of libvirt $dev_version did not unpack into libvirt-$upstream"
    rm -rf "$cache/$dev_version"
    mkdir -p "$cache/$dev_version"
    mv "$work/libvirt-$upstream" "$tree"
    touch "$tree/.complete"
fi

src_version=$(sed -n "s/^ *version: '\([0-9.]*\)'.*/\1/p" "$tree/meson.build" | head -1)
[ "$src_version" = "$upstream" ] ||
    die "the source in $tree is libvirt $src_version, expected $upstream"
echo "$tree"
