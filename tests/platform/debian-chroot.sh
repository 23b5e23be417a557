#!/bin/bash
# The whole test suite (tests/run-all.sh) on another Debian release, in a fresh chroot made
# on this machine with debootstrap: Debian 13 "trixie" (libvirt 11.3, Ceph 18, qemu 10), or
# Debian 12 with libvirt from bookworm-backports (11.3, qemu 10.0), on a Debian 12 host; or
# another command there (the upgrade tests). As root:
#
#   tests/platform/debian-chroot.sh [SUITE [OUTDIR]]      SUITE: a Debian codename (trixie)
#
# Stages, each timed: debootstrap --variant=minbase SUITE from the host's mirror; the host's
# deb822 sources with the suite names swapped (bookworm -> trixie, bookworm-updates ->
# trixie-updates, bookworm-security -> trixie-security), with CHROOT_BACKPORTS=pin also
# SUITE-backports, and libvirt, qemu and seabios pinned to it (what a host that runs backports'
# libvirt looks like); /etc/resolv.conf copied; mounts (the chroot's root bind-mounted on
# itself, since the lab's libvirtd runs in `unshare -m` mount namespaces, proc, sys, dev,
# dev/pts, a tmpfs on /dev/shm and on /run); the repository (its git-tracked and untracked,
# not ignored files) copied to /src/rbdclone, and CHROOT_INPUT's files to /src/input; then,
# as the first thing run inside (nothing is installed before it, as on a newcomer's fresh
# machine): the README's test command, `bash tests/run-all.sh` ("suite"), or CHROOT_RUN.
# Daemons are never started by package installs (policy-rc.d).
#
# OUTDIR (default: BUILD/platform-SUITE) receives: test-results/ (run-all.sh's: "total" =
# "PASSED FAILED [SKIPPED]", one XML per suite), platform (e.g. "debian13 (libvirt 11.3.0,
# ceph 18.2.7, qemu 10.0.13)", read after the run), package/ (the .deb the package test built),
# timings ("STAGE SECONDS" lines), and one log per stage.
# Exit status: 0 when the command ran and its total shows no failure.
#
# On exit, also on failure or a signal: every process whose root is the chroot is stopped
# (run-all.sh first gets SIGTERM to stop its labs), every mount below the chroot is unmounted
# (reverse order, lazily), and the chroot is removed.
#
# Environment:
#   CHROOT_MIRROR   the Debian mirror (default: the host's deb822 sources' URI of the suite)
#   CHROOT_PARENT   where the chroot is made (default /var/tmp)
#   CHROOT_CACHE    a directory keeping the debootstrap result (SUITE-minbase.tar) and the
#                   downloaded .debs between chroots: .ci/run gives one that lives for its run
#                   (one debootstrap per suite, each package downloaded once); unset,
#                   everything from nothing
#   CHROOT_BACKPORTS  "pin": SUITE-backports in apt's sources, libvirt* qemu* seabios pinned to
#                   it (priority 990)
#   CHROOT_RUN      the command run inside instead of `bash tests/run-all.sh` (bash, in
#                   /src/rbdclone); its results in build/test-results/ too
#   CHROOT_INPUT    files copied into the chroot's /src/input/ (e.g. a package to upgrade)
#   CHROOT_LABEL    what the platform line starts with (default: describe.sh's debianNN)
#   RBDCLONE_SUITES for development only: passed to run-all.sh (the parts of the suite to run)
#   RBDCLONE_FILTER, GTEST_REPEAT  for development only: passed to run-all.sh too
set -euo pipefail

SUITE=${1:-trixie}
BACKPORTS=${CHROOT_BACKPORTS:-}
RUN=${CHROOT_RUN:-bash tests/run-all.sh}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${2:-${BUILD_DIR:-$REPO/build}/platform-$SUITE}
PARENT=${CHROOT_PARENT:-/var/tmp}
CACHE=${CHROOT_CACHE:-}
STOP_GRACE=60       # seconds run-all.sh gets to stop its labs after SIGTERM
CHROOT='' T_ALL=$SECONDS
CHILD='' CHILD_GROUP=0   # the running stage's pid; 1: it leads a process group of its own
MOUNTS=()
TIMINGS=()

log() { echo "debian-chroot[$SUITE]: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $SUITE =~ ^[a-z]+$ ]] || die "SUITE must be a Debian codename (e.g. trixie), not '$SUITE'"
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mount, chroot)"
for t in mount umount chroot findmnt tar python3; do
    command -v "$t" >/dev/null || die "missing $t"
done

# --- cleanup -----------------------------------------------------------------------------------

# Pids of the processes whose root directory is the chroot (whatever their mount namespace).
chroot_pids() {
    local p root
    [ -n "$CHROOT" ] || return 0
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null) || continue
        [[ $root == "$CHROOT" || $root == "$CHROOT"/* ]] && echo "${p#/proc/}"
    done
    return 0
}

stop_chroot_processes() {
    local i pids c
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        if ((CHILD_GROUP)); then
            # debootstrap: its whole process group (it runs dpkg inside the new root).
            log "stopping the running stage (process group $CHILD)"
            kill -TERM -- "-$CHILD" 2>/dev/null || true
            for ((i = 0; i < 20; i++)); do
                kill -0 -- "-$CHILD" 2>/dev/null || break
                sleep 0.5
            done
            kill -KILL -- "-$CHILD" 2>/dev/null || true
        else
            # run-all.sh (and its foreground test) first: its EXIT trap stops the labs it started.
            log "stopping the stage running in the chroot (pid $CHILD)"
            kill -TERM "$CHILD" 2>/dev/null || true
            for c in $(pgrep -P "$CHILD" 2>/dev/null || true); do kill -TERM "$c" 2>/dev/null || true; done
            for ((i = 0; i < STOP_GRACE * 2; i++)); do
                kill -0 "$CHILD" 2>/dev/null || break
                sleep 0.5
            done
        fi
    fi
    # Then whatever is left in the chroot (daemons of a lab that did not stop, ...).
    for ((i = 0; i < 40; i++)); do
        pids=$(chroot_pids)
        [ -n "$pids" ] || return 0
        if ((i == 0)); then
            log "stopping processes left in the chroot: $(echo $pids)"
        fi
        # shellcheck disable=SC2086
        if ((i < 20)); then kill -CONT $pids 2>/dev/null; kill -TERM $pids 2>/dev/null
        else kill -KILL $pids 2>/dev/null; fi
        sleep 0.5
    done
    pids=$(chroot_pids)
    [ -z "$pids" ] || { log "processes still running in the chroot: $(echo $pids)"; return 1; }
}

# Mount points at or below the chroot, most recent first (from this namespace's mountinfo).
chroot_mounts() {
    [ -n "$CHROOT" ] || return 0
    python3 - "$CHROOT" <<'PY'
import re, sys
root = sys.argv[1]
unesc = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
points = [unesc(l.split()[4]) for l in open("/proc/self/mountinfo")]
for p in reversed(points):
    if p == root or p.startswith(root + "/"):
        print(p)
PY
}

unmount_all() {
    local i m left
    # Ours in reverse order, then anything else found below the chroot (deepest first).
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount -l "${MOUNTS[$i]}" 2>/dev/null
    done
    MOUNTS=()
    for ((i = 0; i < 5; i++)); do
        left=$(chroot_mounts)
        [ -n "$left" ] || return 0
        while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done <<<"$left"
    done
    left=$(chroot_mounts)
    [ -z "$left" ] || { log "still mounted: $(echo $left)"; return 1; }
}

cleanup() {
    local rc=$? ok=1
    trap '' INT TERM HUP
    set +e
    [ -n "$CHROOT" ] || exit "$rc"
    stop_chroot_processes || ok=0
    unmount_all || ok=0
    if ((ok)); then
        local t=$SECONDS
        rm -rf --one-file-system -- "$CHROOT" || ok=0
        timing cleanup $((SECONDS - t))
    fi
    if ((ok)); then
        log "chroot $CHROOT unmounted and removed"
    else
        log "ERROR: could not clean up $CHROOT completely (see above); NOT removing it"
        ((rc)) || rc=1
    fi
    timing total $((SECONDS - T_ALL))
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

timing() {   # STAGE SECONDS
    TIMINGS+=("$1 $2")
    [ -d "$OUT" ] && printf '%s\n' "${TIMINGS[@]}" >"$OUT/timings"
    log "stage $1: $2 s"
}

# --- what to install from ----------------------------------------------------------------------

HOST_CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$HOST_CODENAME" ] || die "cannot read the host's codename from /etc/os-release"
SOURCES=()
for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && SOURCES+=("$f"); done
((${#SOURCES[@]})) || die "no deb822 sources in /etc/apt/sources.list.d/ to derive the chroot's from"

# The deb822 sources with the host's suite names swapped for SUITE's (stanza by stanza; only
# the "Suites:" field changes).
swapped_sources() {
    # Stanza by stanza; a stanza naming a backports suite is left out (a fresh Debian has none:
    # the chroot gets backports as a newcomer's machine does, from install-deps.sh, or pinned
    # with CHROOT_BACKPORTS=pin).
    awk -v from="$HOST_CODENAME" -v to="$SUITE" '
        function flush() { if (n && !bp) { for (j = 1; j <= n; j++) print buf[j]; print "" } n = 0; bp = 0 }
        FNR == 1 { flush() }
        /^[[:space:]]*$/ { flush(); next }
        /^Suites:/ {
            line = "Suites:"
            for (i = 2; i <= NF; i++) {
                s = $i
                if (s ~ /-backports$/) bp = 1
                if (s == from || index(s, from "-") == 1) s = to substr(s, length(from) + 1)
                line = line " " s
            }
            buf[++n] = line
            next
        }
        { buf[++n] = $0 }
        END { flush() }' "$@"
}

# The mirror of the stanza whose Suites name the host's release itself.
host_mirror() {
    awk -v c="$HOST_CODENAME" '
        /^[[:space:]]*$/ { if (s && u != "") { print u; exit } s = 0; u = ""; next }
        /^URIs:/ { u = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) s = 1 }
        END { if (s && u != "") print u }' "${SOURCES[@]}" | head -1
}
MIRROR=${CHROOT_MIRROR:-$(host_mirror)}
[ -n "$MIRROR" ] || die "no URIs: for suite $HOST_CODENAME in ${SOURCES[*]}; set CHROOT_MIRROR"

mkdir -p "$OUT"
rm -rf "$OUT/test-results" "$OUT/platform" "$OUT/package" "$OUT/timings" "$OUT"/*.log
log "mirror $MIRROR; results in $OUT"

# --- debootstrap -------------------------------------------------------------------------------

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap on the host"
    host_apt() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" >>"$OUT/host-apt.log" 2>&1; }
    host_apt install -y debootstrap || { host_apt update && host_apt install -y debootstrap; } ||
        { tail -20 "$OUT/host-apt.log" >&2; die "apt-get install debootstrap failed"; }
fi
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] ||
    die "this debootstrap does not know $SUITE (/usr/share/debootstrap/scripts/$SUITE)"

CHROOT=$(mktemp -d "$PARENT/rbdclone-$SUITE.XXXXXX")
chmod 755 "$CHROOT"
log "chroot $CHROOT"
t=$SECONDS
tarball=${CACHE:+$CACHE/$SUITE-minbase.tar}
if [ -n "$tarball" ] && [ -f "$tarball" ]; then
    log "unpacking the cached debootstrap result $tarball (CHROOT_CACHE)"
    tar -C "$CHROOT" -xpf "$tarball"
else
    log "debootstrap --variant=minbase $SUITE (log: $OUT/debootstrap.log)"
    # In the background (its own process group), so that a signal is handled at once.
    setsid debootstrap --variant=minbase "$SUITE" "$CHROOT" "$MIRROR" </dev/null \
        >"$OUT/debootstrap.log" 2>&1 &
    CHILD=$! CHILD_GROUP=1
    rc=0
    wait "$CHILD" || rc=$?
    CHILD='' CHILD_GROUP=0
    if ((rc)); then
        tail -20 "$OUT/debootstrap.log" >&2
        die "debootstrap failed (exit status $rc)"
    fi
    if [ -n "$tarball" ]; then
        mkdir -p "$CACHE"
        tar -C "$CHROOT" -cpf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    fi
fi
timing debootstrap $((SECONDS - t))

# --- configuration -----------------------------------------------------------------------------

rm -f "$CHROOT/etc/apt/sources.list"
mkdir -p "$CHROOT/etc/apt/sources.list.d"
for f in "${SOURCES[@]}"; do
    swapped_sources "$f" >"$CHROOT/etc/apt/sources.list.d/${f##*/}"
done
if [ "$BACKPORTS" = pin ]; then
    # SUITE-backports; libvirt, qemu and seabios (qemu 10 needs backports' seabios) from there.
    "$REPO/tools/add-backports.sh" "$CHROOT" >&2
    mkdir -p "$CHROOT/etc/apt/preferences.d"
    printf 'Package: libvirt* qemu* seabios\nPin: release n=%s-backports\nPin-Priority: 990\n' "$SUITE" \
        >"$CHROOT/etc/apt/preferences.d/rbdclone-libvirt-backports.pref"
fi
grep -h '^Suites:' "$CHROOT"/etc/apt/sources.list.d/*.sources | sed 's/^/    /' >&2
rm -f "$CHROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf"
[ -s "$CHROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$CHROOT/etc/hosts"
# A throwaway root: dpkg need not fsync every file, nor unpack documentation (faster installs,
# and a faster removal at the end).
cat >"$CHROOT/etc/dpkg/dpkg.cfg.d/rbdclone-chroot" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
# Package installs must not start daemons (ceph-mon, libvirtd...) in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
chmod 755 "$CHROOT/usr/sbin/policy-rc.d"

# --- mounts ------------------------------------------------------------------------------------

mnt() {   # TARGET MOUNT-ARGS...: mount, remember (for the reverse unmount), keep private
    local target=$1
    shift
    [ -e "$target" ] || mkdir -p "$target"
    mount "$@" "$target"
    MOUNTS+=("$target")
}
mnt "$CHROOT" --bind "$CHROOT"                 # the root is a mount point (unshare -m --propagation)
mount --make-private "$CHROOT"
mnt "$CHROOT/proc" -t proc proc
mnt "$CHROOT/sys" --rbind /sys
mount --make-rslave "$CHROOT/sys"              # an unmount here never reaches the host's /sys
mnt "$CHROOT/dev" --bind /dev
mount --make-slave "$CHROOT/dev"
mnt "$CHROOT/dev/pts" --bind /dev/pts
mount --make-slave "$CHROOT/dev/pts"
mnt "$CHROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
mnt "$CHROOT/run" -t tmpfs -o mode=755,nosuid tmpfs
mkdir -p "$CHROOT/run/lock" "$CHROOT/run/libvirt"
chmod 1777 "$CHROOT/run/lock"
# The Ceph labs pick their ports under a lock file in /tmp: share the host's, so a lab in the
# chroot and one on the host (same network namespace) never pick the same ports.
: >>/tmp/ceph-lab.ports.lock
: >"$CHROOT/tmp/ceph-lab.ports.lock"
mnt "$CHROOT/tmp/ceph-lab.ports.lock" --bind /tmp/ceph-lab.ports.lock
if [ -n "$CACHE" ]; then
    mkdir -p "$CACHE/apt-archives-$SUITE/partial"
    mnt "$CHROOT/var/cache/apt/archives" --bind "$CACHE/apt-archives-$SUITE"
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$CHROOT/etc/apt/apt.conf.d/99keep-debs"
    rm -f "$CHROOT/etc/apt/apt.conf.d/docker-clean"
fi

# --- the repository ----------------------------------------------------------------------------

mkdir -p "$CHROOT/src/rbdclone"
if git -C "$REPO" rev-parse >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        (cd "$REPO" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$CHROOT/src/rbdclone"
else
    tar -C "$REPO" --exclude=./build -cf - . | tar -xf - -C "$CHROOT/src/rbdclone"
fi
if [ -n "${CHROOT_INPUT:-}" ]; then
    mkdir -p "$CHROOT/src/input"
    # shellcheck disable=SC2086  # a list of files
    cp $CHROOT_INPUT "$CHROOT/src/input/"
fi

# --- stages inside -----------------------------------------------------------------------------

# run_stage NAME SHOW COMMAND: COMMAND (bash) in the chroot's /src/rbdclone; output to
# OUT/NAME.log, and also on stdout (prefixed) when SHOW is 1. Returns its exit status.
run_stage() {
    local name=$1 show=$2 cmd=$3 t=$SECONDS rc=0
    log "stage $name"
    local inner=(chroot "$CHROOT" /usr/bin/env -i
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        HOME=/root LANG=C.UTF-8 TERM=dumb TMPDIR=/tmp CI=true DEBIAN_FRONTEND=noninteractive
        ${RBDCLONE_SUITES:+RBDCLONE_SUITES="$RBDCLONE_SUITES"}
        ${RBDCLONE_FILTER:+RBDCLONE_FILTER="$RBDCLONE_FILTER"}
        ${GTEST_REPEAT:+GTEST_REPEAT="$GTEST_REPEAT"}
        /bin/bash -c "cd /src/rbdclone && $cmd")
    if ((show)); then
        "${inner[@]}" </dev/null > >(tee "$OUT/$name.log" | sed -u "s/^/[$SUITE] /") 2>&1 &
    else
        "${inner[@]}" </dev/null >"$OUT/$name.log" 2>&1 &
    fi
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=''
    sleep 0.2   # let tee drain
    timing "$name" $((SECONDS - t))
    if ((rc)) && ((!show)); then
        tail -25 "$OUT/$name.log" | sed "s/^/[$SUITE] /" >&2
    fi
    return $rc
}

suite_rc=0
run_stage suite 1 "$RUN" || suite_rc=$?
run_stage platform 0 'exec bash tests/platform/describe.sh' || true
{ [ -n "${CHROOT_LABEL:-}" ] && printf '%s ' "$CHROOT_LABEL"; cat "$OUT/platform.log"; } >"$OUT/platform" 2>/dev/null || true
rm -f "$OUT/platform.log"
log "platform: $(cat "$OUT/platform" 2>/dev/null)"
grep -E 'libvirt-source:|libvirt-targets:|WARNING' "$OUT/suite.log" | sed "s/^/[$SUITE] /" >&2 || true
if [ -d "$CHROOT/src/rbdclone/build/package" ]; then
    rm -rf "$OUT/package"
    cp -r "$CHROOT/src/rbdclone/build/package" "$OUT/package"
fi

results=$CHROOT/src/rbdclone/build/test-results
if [ -d "$results" ]; then
    cp -r "$results" "$OUT/test-results"
fi
if [ -r "$OUT/test-results/total" ]; then
    log "total: $(cat "$OUT/test-results/total") (PASSED FAILED [SKIPPED]); run-all.sh exit status $suite_rc"
    read -r _ failed _ <"$OUT/test-results/total" || failed=''
    [[ $failed == 0 ]] && ((suite_rc == 0))
else
    log "no test-results/total from the suite (exit status $suite_rc)"
    exit 1
fi
