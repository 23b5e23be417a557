#!/usr/bin/env bash
# A private libvirtd (storage + secret drivers, and with --qemu the qemu driver) living in DIR,
# in its own mount namespace.
#
#   libvirtd-lab.sh start DIR BACKEND_DIR [--qemu]
#                                           start it with LIBVIRT_STORAGE_BACKEND_DIR=BACKEND_DIR
#                                          ("-": none, libvirt's own module directory),
#                                           write DIR/libvirtd.env; --qemu: also libvirt's qemu
#                                           driver, for TCG guests run as root (see QEMU_CONF)
#   libvirtd-lab.sh restart DIR [--kill]    stop the daemon (SIGTERM, or SIGKILL as a crash would)
#                                           and start it again on the same state: persistent
#                                           pools and secrets, and the state of active pools,
#                                           survive as they do across a host's libvirtd restart
#   libvirtd-lab.sh stop DIR                SIGTERM (SIGKILL after 10 s), remove DIR
#
# DIR/libvirtd.env exports LIBVIRT_STORAGE_URI LIBVIRT_SECRET_URI LIBVIRTD_PID LIBVIRTD_LOG
# LIBVIRTD_SOCKET LIBVIRTD_BACKEND_DIR LIBVIRTD_LAB_DIR, and with --qemu LIBVIRT_QEMU_URI
# (qemu:///system on the lab's socket; it reaches the storage and secret drivers too) and
# LIBVIRTD_QEMU_LOG_DIR (the guests' qemu logs, /var/log/libvirt/qemu inside the namespace).
#
# Isolation: the daemon runs under `unshare -m` with DIR/state/* bind-mounted over /run/libvirt,
# /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt (so they outlive a restart), its sockets in DIR/sock and its pid file in DIR/run
# (libvirtd's default pid file is /run/libvirtd.pid, outside /run/libvirt), so several of these
# (e.g. ours and the stock rbd module) run side by side and none touches the host's libvirt
# state. No TCP listener (libvirtd listens on TCP only with --listen).
set -euo pipefail

PROG=libvirtd-lab
MARKER=.libvirtd-lab
MASKED_DIRS=(/run/libvirt /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt)
READY_TIMEOUT=30
TERM_GRACE=10

usage() { echo "usage: $0 start DIR BACKEND_DIR [--qemu] | restart DIR [--kill] | stop DIR" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab-common.sh
. "$HERE/lab-common.sh"
DRIVER_SRC=$LIBVIRT_LIB_DIR/connection-driver

# The qemu driver's configuration (/etc/libvirt/qemu.conf inside the namespace) on a host
# without libvirt-daemon-system (no libvirt-qemu user, no systemd, no virtlogd): guests run as
# root, unconfined, in the daemon's own cgroup and mount namespace, their console and stdio
# written to files by the daemon itself.
QEMU_CONF='user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"'

# What the daemon's command line contains (the config path is unique to the lab).
daemon_needle() { echo "libvirtd -f $1/libvirtd.conf "; }

# stop_daemon DIR: its guests, the daemon, and any libvirtd of this lab left over.
stop_daemon() {
    local dir=$1 rc=0 needle left
    needle=$(daemon_needle "$dir")
    stop_guests_through_daemon "$dir"
    stop_pidfile "$TERM_GRACE" "$needle" "$dir/libvirtd.pid" || rc=1
    stop_guest_processes "$dir" || rc=1
    left=$(pids_matching "$needle" "$dir/libvirtd.conf")
    if [[ -n $left ]]; then
        log "stopping leftover libvirtd of this lab: ${left//$'\n'/ }"
        # shellcheck disable=SC2086
        stop_pids "$TERM_GRACE" "$needle" $left || rc=1
    fi
    return $rc
}
cmd_stop() { stop_lab_dir "$1" "$MARKER" "libvirtd lab" libvirtd-lab.sh "libvirtd did not exit" stop_daemon; }

# libvirt's qemu driver (9.0 and 11.3) looks up its build-time default user and group,
# libvirt-qemu, before it reads qemu.conf, and fails to start without them whatever qemu.conf
# says (Debian 13's libvirt-daemon-driver-qemu creates them; on Debian 12 only
# libvirt-daemon-system does, which a lab host need not have). On a host without them, DIR/etc/passwd and
# DIR/etc/group are the host's files plus that user and group, mounted over the host's inside
# the namespace only (the guests still run as root: QEMU_CONF).
qemu_user_files() {
    local dir=$1 id=64055
    getent passwd libvirt-qemu >/dev/null && getent group libvirt-qemu >/dev/null && return 0
    while getent passwd "$id" >/dev/null || getent group "$id" >/dev/null; do id=$((id + 1)); done
    mkdir -p "$dir/etc"
    cp /etc/passwd "$dir/etc/passwd"
    cp /etc/group "$dir/etc/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo "libvirt-qemu:x:$id:$id:libvirt qemu (lab):/nonexistent:/usr/sbin/nologin" >>"$dir/etc/passwd"
    getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:$id:" >>"$dir/etc/group"
}

# The index of a masked directory: its state lives in DIR/state/INDEX.
masked_index() {
    local i
    for i in "${!MASKED_DIRS[@]}"; do [[ ${MASKED_DIRS[$i]} == "$1" ]] && { echo "$i"; return; }; done
    die "$1 is not a masked directory"
}

# Guests outlive their libvirtd (as on any host): a lab with the qemu driver destroys them
# while its daemon still answers, then kills what is left by the pid files the driver keeps
# (/run/libvirt/qemu/NAME.pid inside the namespace).
stop_guests_through_daemon() {
    local dir=$1 uri name
    [[ -e $dir/drivers/libvirt_driver_qemu.so && -S $dir/sock/libvirt-sock ]] || return 0
    uri="qemu:///system?socket=$dir/sock/libvirt-sock"
    for name in $(timeout 30 virsh -q -c "$uri" list --name 2>/dev/null); do
        timeout 30 virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || log "could not destroy guest $name"
    done
}
stop_guest_processes() {
    local dir=$1 f name rc=0
    for f in "$dir/state/$(masked_index /run/libvirt)"/qemu/*.pid; do
        [[ -f $f ]] || continue
        name=${f##*/}
        name=${name%.pid}
        if pid_is_ours "$(<"$f")" "guest=$name,"; then
            log "stopping guest $name (pid $(<"$f")) left running"
            stop_pids 5 "guest=$name," "$(<"$f")" || rc=1
        fi
    done
    return $rc
}

# Is PATH equal to or below one of the directories hidden inside the namespace?
under_masked() {
    local m
    for m in "${MASKED_DIRS[@]}"; do
        [[ $1 == "$m" || $1 == "$m"/* ]] && return 0
    done
    return 1
}

cmd_start() {
    local dir backend t0=$SECONDS m drivers=(storage secret)
    dir=$(realpath -m -- "$1")
    [[ ${3:-} == --qemu ]] && drivers+=(qemu)
    # "-": libvirt's own module directory (what an installed package provides).
    local arg=-
    if [[ $2 == - ]]; then
        backend=$STOCK_BACKENDS
    else
        [[ -d $2 ]] || die "backend dir $2 does not exist"
        backend=$(realpath -- "$2")
        arg=$backend
    fi
    for m in libvirtd virsh unshare mount timeout; do
        command -v "$m" >/dev/null || die "missing $m"
    done
    for m in "${drivers[@]}"; do
        [[ -e $DRIVER_SRC/libvirt_driver_$m.so ]] || die "missing $DRIVER_SRC/libvirt_driver_$m.so"
    done
    if [[ ${3:-} == --qemu ]]; then
        command -v qemu-system-x86_64 >/dev/null || die "missing qemu-system-x86_64 (qemu-system-x86)"
    fi
    [[ -e $backend/libvirt_storage_backend_rbd.so ]] ||
        log "warning: $backend has no libvirt_storage_backend_rbd.so (rbd pools will not work)"
    # Paths under the masked dirs would be hidden from the daemon by the state mounts.
    under_masked "$dir" && die "$dir lies under a directory the namespace hides (${MASKED_DIRS[*]})"
    under_masked "$backend" && die "$backend lies under a directory the namespace hides"
    # sun_path holds 107 bytes; "sock/libvirt-admin-sock" is the longest name libvirtd makes.
    ((${#dir} + 24 <= 107)) || die "$dir is too long for a unix socket path (max 83 chars)"
    check_empty_dir "$dir"

    mkdir -p "$dir"
    : >"$dir/$MARKER"
    mkdir -p "$dir/drivers" "$dir/sock" "$dir/run"
    # Only these connection drivers (libvirtd skips the missing ones silently).
    for m in "${drivers[@]}"; do
        ln -s "$DRIVER_SRC/libvirt_driver_$m.so" "$dir/drivers/"
    done
    if [[ ${3:-} == --qemu ]]; then
        qemu_user_files "$dir"
        mkdir -p "$dir/state/$(masked_index /etc/libvirt)"
        printf '# Generated by %s.\n%s\n' "$PROG" "$QEMU_CONF" >"$dir/state/$(masked_index /etc/libvirt)/qemu.conf"
    fi
    cat >"$dir/libvirtd.conf" <<EOF
# Generated by $PROG.
unix_sock_dir = "$dir/sock"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "1:file:$dir/libvirtd.log"
log_filters = "1:storage 3:util 3:rpc 3:event 3:object 3:conf"
EOF

    echo "$arg" >"$dir/backend.arg"
    launch "$dir" "$t0"
}

# launch DIR T0: starts the daemon of a prepared lab directory and waits until it answers.
launch() {
    local dir=$1 t0=$2 backend m i=0
    local arg backend_env=(-u LIBVIRT_STORAGE_BACKEND_DIR)
    arg=$(<"$dir/backend.arg")
    if [[ $arg == - ]]; then
        backend=$STOCK_BACKENDS
    else
        backend=$arg
        backend_env=(LIBVIRT_STORAGE_BACKEND_DIR="$backend")
    fi
    local states=()
    for m in "${MASKED_DIRS[@]}"; do
        states+=("$dir/state/$i" "$m")
        mkdir -p "$dir/state/$i"
        i=$((i + 1))
    done
    # The qemu driver's own user and group, when the host lacks them (qemu_user_files).
    for m in passwd group; do
        [[ -e $dir/etc/$m ]] && states+=("$dir/etc/$m" "/etc/$m")
    done
    echo $$ >"$dir/start.pid"   # lets "stop" abort an unfinished start

    # unshare (no --fork) execs sh, which bind-mounts the state dirs and execs libvirtd: $! is
    # the daemon's pid. Mount points missing on the host are created (empty dirs) first.
    # LIBVIRT_LOG_* / LIBVIRT_DEBUG from the caller would override the config file.
    # shellcheck disable=SC2016  # the script is expanded by the inner sh
    env -u LIBVIRT_LOG_OUTPUTS -u LIBVIRT_LOG_FILTERS -u LIBVIRT_DEBUG "${backend_env[@]}" \
        LIBVIRT_DRIVER_DIR="$dir/drivers" \
        unshare -m --propagation private sh -c '
            set -e
            dir=$1; shift
            while [ $# -gt 0 ]; do
                [ -e "$2" ] || mkdir -p "$2"
                mount --bind "$1" "$2"
                shift 2
            done
            # A crash leaves its core in DIR (core_pattern "core" is relative to the cwd).
            ulimit -c unlimited 2>/dev/null || true
            cd "$dir"
            # LIBVIRTD_LAB_PRELOAD (debugging, e.g. libasan): preloaded into the daemon only.
            if [ -n "${LIBVIRTD_LAB_PRELOAD:-}" ]; then
                export LD_PRELOAD="$LIBVIRTD_LAB_PRELOAD"
                export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:disable_coredump=0:log_path=$dir/asan"
            fi
            exec libvirtd -f "$dir/libvirtd.conf" -p "$dir/run/libvirtd.pid"
        ' sh "$dir" "${states[@]}" </dev/null >>"$dir/libvirtd.stderr" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/libvirtd.pid"

    # Ready when the drivers answer on the socket.
    local sock=$dir/sock/libvirt-sock needle qemu_uri=''
    local uri="storage:///system?socket=$sock" secret_uri="secret:///system?socket=$sock"
    [[ -e $dir/drivers/libvirt_driver_qemu.so ]] && qemu_uri="qemu:///system?socket=$sock"
    local deadline=$((SECONDS + READY_TIMEOUT)) ok=0
    needle=$(daemon_needle "$dir")
    while ((SECONDS < deadline)); do
        if [[ -S $sock ]] && timeout 10 virsh -q -c "$uri" pool-list --all >/dev/null 2>&1 &&
            timeout 10 virsh -q -c "$secret_uri" secret-list >/dev/null 2>&1 &&
            { [[ -z $qemu_uri ]] || timeout 10 virsh -q -c "$qemu_uri" list --all >/dev/null 2>&1; }; then
            ok=1
            break
        fi
        # Gone (it is our child: a dead one is a zombie until we exit)? Give up now.
        pid_is_ours "$pid" "" || break
        sleep 0.1
    done
    if ((!ok)) || ! pid_is_ours "$pid" "$needle"; then
        if pid_is_ours "$pid" "$needle"; then
            log "ERROR: libvirtd did not answer on $sock within ${READY_TIMEOUT}s"
        else
            log "ERROR: libvirtd exited during startup"
        fi
        local f
        for f in "$dir/libvirtd.stderr" "$dir/libvirtd.log"; do
            [[ -s $f ]] && { echo "----- tail of $f -----" >&2; tail -n 25 "$f" >&2; }
        done
        stop_pidfile "$TERM_GRACE" "$needle" "$dir/libvirtd.pid" || true
        rm -f "$dir/start.pid"
        log "run '$0 stop $dir' to clean up"
        exit 1
    fi

    {
        echo "# Generated by $PROG; source it."
        env_line LIBVIRTD_LAB_DIR "$dir"
        env_line LIBVIRT_STORAGE_URI "$uri"
        env_line LIBVIRT_SECRET_URI "$secret_uri"
        env_line LIBVIRTD_SOCKET "$sock"
        env_line LIBVIRTD_PID "$pid"
        env_line LIBVIRTD_LOG "$dir/libvirtd.log"
        env_line LIBVIRTD_BACKEND_DIR "$backend"
        if [[ -n $qemu_uri ]]; then
            env_line LIBVIRT_QEMU_URI "$qemu_uri"
            env_line LIBVIRTD_QEMU_LOG_DIR "$dir/state/$(masked_index /var/log/libvirt)/qemu"
        fi
    } >"$dir/libvirtd.env.tmp"
    mv "$dir/libvirtd.env.tmp" "$dir/libvirtd.env"
    rm -f "$dir/start.pid"
    log "libvirtd $pid ready in $((SECONDS - t0)) s (backends: $backend): source $dir/libvirtd.env"
}

cmd_restart() {
    local dir t0=$SECONDS needle pid
    dir=$(realpath -m -- "$1")
    [[ -e $dir/$MARKER && -e $dir/backend.arg ]] || die "$dir is not a running libvirtd lab"
    needle=$(daemon_needle "$dir")
    if [[ ${2:-} == --kill && -f $dir/libvirtd.pid ]]; then
        pid=$(<"$dir/libvirtd.pid")
        pid_is_ours "$pid" "$needle" && kill -KILL "$pid" 2>/dev/null
        wait_gone 10 "$needle" "$pid" || die "libvirtd $pid survived SIGKILL"
        # Its leader is a zombie before its other threads are done exiting, and
        # until the last one is, its files (the pid file's lock) stay open.
        local i
        for ((i = 0; i < 300; i++)); do
            [[ $(ls "/proc/$pid/task" 2>/dev/null | wc -l) -le 1 ]] && break
            sleep 0.1
        done
        rm -f "$dir/libvirtd.pid"
        log "killed libvirtd $pid"
    fi
    stop_pidfile "$TERM_GRACE" "$needle" "$dir/libvirtd.pid" || die "libvirtd did not exit"
    rm -f "$dir/sock/"*
    launch "$dir" "$t0"
}

case ${1:-} in
    start) [[ $# -eq 3 || ( $# -eq 4 && $4 == --qemu ) ]] || usage; cmd_start "$2" "$3" "${4:-}" ;;
    restart) [[ $# -eq 2 || ( $# -eq 3 && $3 == --kill ) ]] || usage; cmd_restart "$2" "${3:-}" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    *) usage ;;
esac
