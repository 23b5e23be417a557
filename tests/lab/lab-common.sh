# shellcheck shell=bash
# Helpers shared by ceph-lab.sh, libvirtd-lab.sh and lab.sh (sourced, not run; also by
# tests/common.sh). PROG names the caller in messages.
# Processes are only ever signalled by pid, after checking that their command line names the
# lab's own directory.

log() { echo "${PROG:-${0##*/}}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Debian's multiarch name of this machine (x86_64-linux-gnu, aarch64-linux-gnu, ...): libvirt's
# modules live in /usr/lib/<multiarch>/libvirt, Ceph's object classes in
# /usr/lib/<multiarch>/rados-classes. Derived once and exported (RBDCLONE_MULTIARCH), so the
# scripts a test runs inherit it. dpkg-architecture (dpkg-dev) knows every architecture; on a
# minimal Debian, before anything is installed, only dpkg is there: its architecture name is
# mapped through Debian's table (dpkg's /usr/share/dpkg/tupletable, by hand for the release
# architectures).
host_multiarch() {
    local m
    m=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null) && [[ -n $m ]] && { echo "$m"; return 0; }
    m=$(dpkg --print-architecture 2>/dev/null) || return 1
    case $m in
    amd64) echo x86_64-linux-gnu ;;
    arm64) echo aarch64-linux-gnu ;;
    armel) echo arm-linux-gnueabi ;;
    armhf) echo arm-linux-gnueabihf ;;
    i386) echo i386-linux-gnu ;;
    loong64) echo loongarch64-linux-gnu ;;
    mips64el) echo mips64el-linux-gnuabi64 ;;
    ppc64el) echo powerpc64le-linux-gnu ;;
    riscv64) echo riscv64-linux-gnu ;;
    s390x) echo s390x-linux-gnu ;;
    *) return 1 ;;
    esac
}
if [[ -z ${RBDCLONE_MULTIARCH:-} ]]; then
    RBDCLONE_MULTIARCH=$(host_multiarch) || {
        echo "${0##*/}: cannot tell the multiarch directory (/usr/lib/<multiarch>): dpkg-architecture is not installed and dpkg's architecture '$(dpkg --print-architecture 2>/dev/null)' is not one this script knows; install dpkg-dev" >&2
        exit 1
    }
fi
export RBDCLONE_MULTIARCH
LIBVIRT_LIB_DIR=/usr/lib/$RBDCLONE_MULTIARCH/libvirt          # connection-driver/, storage-backend/
STOCK_BACKENDS=$LIBVIRT_LIB_DIR/storage-backend                # libvirt's own storage backend modules
RADOS_CLASS_DIR=/usr/lib/$RBDCLONE_MULTIARCH/rados-classes

# One "export NAME='value'" line, single-quoted so any reader (shell or not) gets it verbatim.
env_line() { local v=${2//\'/\'\\\'\'}; printf "export %s='%s'\n" "$1" "$v"; }

# Command line of PID with NULs turned into spaces (empty if gone).
pid_cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# True if PID is a live (non-zombie) process whose command line contains NEEDLE.
# (Killed daemons are reparented to PID 1 and may linger as zombies for a moment.)
pid_is_ours() {
    local pid=$1 needle=$2 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z ]] || return 1
    [[ $(pid_cmdline "$pid") == *"$needle"* ]]
}

# wait_gone SECONDS NEEDLE PID...: true once none of the PIDs is ours any more.
wait_gone() {
    local secs=$1 needle=$2 i p alive
    shift 2
    for ((i = 0; i <= secs * 10; i++)); do
        alive=0
        for p in "$@"; do pid_is_ours "$p" "$needle" && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    return 1
}

# stop_pids GRACE NEEDLE PID...: SIGCONT (a test may have SIGSTOPped it), SIGTERM, and SIGKILL
# after GRACE seconds; waits until they are gone.
stop_pids() {
    local grace=$1 needle=$2 p live=()
    shift 2
    for p in "$@"; do pid_is_ours "$p" "$needle" && live+=("$p"); done
    ((${#live[@]})) || return 0
    kill -CONT "${live[@]}" 2>/dev/null || true
    kill -TERM "${live[@]}" 2>/dev/null || true
    wait_gone "$grace" "$needle" "${live[@]}" && return 0
    log "pid(s) ${live[*]} still running ${grace}s after SIGTERM; sending SIGKILL"
    for p in "${live[@]}"; do
        pid_is_ours "$p" "$needle" && kill -KILL "$p" 2>/dev/null
    done
    wait_gone 10 "$needle" "${live[@]}" && return 0
    log "pid(s) ${live[*]} still alive after SIGKILL"
    return 1
}

# stop_pidfile GRACE NEEDLE PIDFILE
stop_pidfile() {
    local grace=$1 needle=$2 pidfile=$3
    [[ -f $pidfile ]] || return 0
    stop_pids "$grace" "$needle" "$(<"$pidfile")" || return 1
    rm -f "$pidfile"
}

# pids_matching NEEDLE KEY: pids (other than this shell and its parent) whose command line
# contains NEEDLE; KEY, a part of NEEDLE without spaces, pre-filters /proc cheaply.
pids_matching() {
    local needle=$1 key=$2 f p
    while IFS= read -r f; do
        p=${f#/proc/}
        p=${p%/cmdline}
        [[ $p == "$$" || $p == "$BASHPID" || $p == "$PPID" ]] && continue
        pid_is_ours "$p" "$needle" && echo "$p"
    done < <(grep -lsF -- "$key" /proc/[0-9]*/cmdline)
    return 0
}

# abort_start DIR SCRIPT: SIGKILL a "SCRIPT start" still running for this DIR (recorded in
# DIR/start.pid), so it cannot start daemons behind the back of "stop".
abort_start() {
    local pidfile=$1/start.pid script=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if pid_is_ours "$pid" "$script start "; then
        log "killing unfinished '$script start' (pid $pid)"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone 5 "$script start " "$pid" || true
    fi
    rm -f "$pidfile"
}

# stop_lab_dir DIR MARKER WHAT SCRIPT WHY STOP_PROCESSES: the stop of a lab directory
# (ceph-lab.sh, libvirtd-lab.sh, lab.sh).  Nothing to stop when DIR is missing, or is an empty
# directory a start left before writing MARKER (removed); dies when DIR is not a WHAT directory
# (no MARKER), which is never deleted.  Otherwise kills a "SCRIPT start" still running for DIR
# (it would start daemons behind our back), runs STOP_PROCESSES DIR (the script's function that
# stops what runs there; it fails when something did not stop, and runs on past a failure),
# and removes DIR, or says WHY it stays in place and fails.  DIR is made absolute first.
stop_lab_dir() {
    local dir marker=$2 what=$3 script=$4 why=$5 stop_processes=$6
    dir=$(realpath -m -- "$1")
    [[ -d $dir ]] || { log "$dir does not exist; nothing to stop"; return 0; }
    if [[ ! -e $dir/$marker ]]; then
        rmdir -- "$dir" 2>/dev/null && return 0
        die "$dir is not a $what directory (no $marker); refusing to delete it"
    fi
    abort_start "$dir" "$script"
    if ! "$stop_processes" "$dir"; then
        log "ERROR: $why; leaving $dir in place"
        return 1
    fi
    rm -rf -- "$dir"
    log "stopped, removed $dir"
}

# check_empty_dir DIR: DIR must be missing or an empty directory.
check_empty_dir() {
    if [[ -e $1 ]]; then
        [[ -d $1 ]] || die "$1 exists and is not a directory"
        [[ -z $(ls -A -- "$1") ]] || die "$1 is not empty (already a lab? stop it first)"
    fi
}

# define_secret URI UUID USAGE KEY: a private ceph secret in the libvirtd at URI. The key goes
# through a 0600 file, never a command line.
define_secret() {
    local uri=$1 uuid=$2 usage=$3 key=$4 tmp rc=0
    tmp=$(mktemp -d) || return 1
    cat >"$tmp/secret.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$uuid</uuid>
  <usage type='ceph'><name>$usage</name></usage>
</secret>
EOF
    (umask 077 && printf '%s' "$key" >"$tmp/key")
    # A ceph key is already base64 (of the raw secret), which is what --file expects.
    timeout 30 virsh -q -c "$uri" secret-define "$tmp/secret.xml" >/dev/null &&
        timeout 30 virsh -q -c "$uri" secret-set-value "$uuid" --file "$tmp/key" >/dev/null || rc=1
    rm -rf "$tmp"
    return $rc
}

# lab_pool_xml NAME CEPH_POOL: XML of an RBD pool on the lab cluster (lab.env sourced), used
# through client.admin and the lab's secret for it.
lab_pool_xml() {
    cat <<EOF
<pool type='rbd'><name>$1</name><source><name>$2</name>
<host name='127.0.0.1' port='$CEPH_MON_V2_PORT'/>
<auth username='admin' type='ceph'><secret uuid='$LAB_SECRET_ADMIN_UUID'/></auth></source></pool>
EOF
}
