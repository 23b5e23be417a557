#!/usr/bin/env bash
# Throwaway single-node Ceph cluster (1 mon + 1 memstore OSD) living entirely in DIR.
#
#   ceph-lab.sh start DIR   create DIR (must be missing or empty), start the cluster, write DIR/ceph.env
#   ceph-lab.sh stop DIR    kill the daemons (SIGCONT, SIGTERM, SIGKILL) and remove DIR
#
# Environment: CEPH_LAB_MEM_BYTES  memstore device size (default 6 GiB).
# DIR/ceph.env exports CEPH_CONF CEPH_FSID CEPH_MON_HOST CEPH_MON_PORT CEPH_MON_V2_PORT
# CEPH_MON_V1_PORT CEPH_ADMIN_KEY CEPH_LIBVIRT_KEY CEPH_RO_KEY CEPH_LAB_DIR.
# Pools: rbd, rbd2 (size 1, 8 PGs, application rbd). Users: client.admin, client.libvirt
# (profile rbd), client.ro (profile rbd-read-only); all their keys are in DIR/client.keyring,
# which ceph.conf names in [client], so `ceph -c $CEPH_CONF`, `rbd -c $CEPH_CONF [--id libvirt|ro]` work.
set -euo pipefail

PROG=ceph-lab
MARKER=.ceph-lab            # marks a directory this script owns (stop refuses to delete others)
MEM_BYTES=${CEPH_LAB_MEM_BYTES:-$((6 * 1024 * 1024 * 1024))}
[[ $MEM_BYTES =~ ^[0-9]+$ ]] || { echo "$PROG: CEPH_LAB_MEM_BYTES must be a number of bytes" >&2; exit 2; }
READY_TIMEOUT=60            # seconds for the whole "rbd ls works" wait
# The monitor batches map changes proposed within paxos_propose_interval (default 1 s) into one
# round, so setup (a dozen map changes) would take ~8 s. The monitor starts with a short interval
# and gets Ceph's default back before "start" returns: product tests see normal batching
# (it is what makes back-to-back snapshot creation cost ~1 s).
SETUP_PAXOS_INTERVAL=0.05

usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab-common.sh
. "$HERE/lab-common.sh"

# ---------------------------------------------------------------------------------------------
cmd_stop() {
    local dir rc=0
    dir=$(realpath -m -- "$1")
    [[ -d $dir ]] || { log "$dir does not exist; nothing to stop"; return 0; }
    if [[ ! -e $dir/$MARKER ]]; then
        # Not ours (or start died before writing the marker into an empty dir).
        rmdir -- "$dir" 2>/dev/null && return 0
        die "$dir is not a ceph lab directory (no $MARKER); refusing to delete it"
    fi
    # A start still running (e.g. its caller was killed) would start daemons after us.
    abort_start "$dir" ceph-lab.sh
    # OSD first (it would otherwise keep trying to reach the monitor), then the monitor.
    stop_pidfile 5 "-c $dir/ceph.conf " "$dir/osd.pid" || rc=1
    stop_pidfile 5 "-c $dir/ceph.conf " "$dir/mon.pid" || rc=1
    # Anything else of this cluster: a daemon whose pid was never recorded, setup CLIs.
    local left
    left=$(pids_matching "-c $dir/ceph.conf " "$dir/ceph.conf")
    if [[ -n $left ]]; then
        log "stopping leftover processes of this lab: ${left//$'\n'/ }"
        # shellcheck disable=SC2086
        stop_pids 5 "-c $dir/ceph.conf " $left || rc=1
    fi
    if ((rc)); then
        log "ERROR: some processes did not exit; leaving $dir in place"
        return 1
    fi
    rm -rf -- "$dir"
    log "stopped, removed $dir"
}

# ---------------------------------------------------------------------------------------------
# Bounded wrappers around the CLIs (the ceph CLI would otherwise wait forever for a monitor).
cephc() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@"; }
rbdc() { timeout 30 rbd -c "$CONF" "$@"; }

register_osd() { # UUID SECRET_JSON
    cephc osd new "$1" 0 -i "$2" && cephc osd crush add osd.0 1.0 root=default host=lab
}
create_rbd_pool() { # NAME
    cephc osd pool create "$1" 8 8 replicated && cephc osd pool application enable "$1" rbd
}

# Background setup commands: bg_run NAME CMD... (output in log/setup-NAME.out); bg_wait fails
# the start if any of them failed.
BG_PIDS=() BG_NAMES=()
bg_run() {
    local name=$1
    shift
    "$@" </dev/null >"$DIR/log/setup-$name.out" 2>&1 &
    BG_PIDS+=($!)
    BG_NAMES+=("$name")
}
bg_wait() {
    local i bad=()
    for i in "${!BG_PIDS[@]}"; do
        wait "${BG_PIDS[$i]}" || bad+=("${BG_NAMES[$i]}")
    done
    BG_PIDS=() BG_NAMES=()
    ((${#bad[@]} == 0)) || fail "setup step(s) failed: ${bad[*]}"
}

# Print a few lines of each log so a failure explains itself.
dump_logs() {
    local f
    for f in "$DIR"/log/*; do
        [[ -s $f ]] || continue
        echo "----- tail of $f -----" >&2
        tail -n 25 "$f" >&2
    done
}

fail() {
    log "ERROR: $*"
    dump_logs
    log "start failed; run '$0 stop $DIR' to clean up (it is safe after a partial start)"
    exit 1
}

# Two random free TCP ports on 127.0.0.1 below the kernel's ephemeral range (so an outgoing
# connection cannot take them between now and the monitor's bind).
pick_ports() {
    python3 - <<'EOF'
import random, socket
lo_eph = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[0])
hi = max(lo_eph - 1, 12000)
ports = []
while len(ports) < 2:
    p = random.randint(10000, hi)
    if p in ports:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
EOF
}

port_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_conf() {
    cat >"$CONF" <<EOF
# Generated by $PROG for a throwaway cluster; everything lives under $DIR.
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$V2_PORT,v1:127.0.0.1:$V1_PORT]
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $DIR/run
crash dir = $DIR/crash
ms bind ipv6 = false
osd objectstore = memstore
memstore device bytes = $MEM_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/mon/\$cluster-\$id
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/\$cluster.log
pid file = $DIR/run/\$name.pid

[osd]
# The OSD's own keyring: a global keyring= makes "ceph-osd --mkfs --mkkey" fail.
keyring = $DIR/osd/\$cluster-\$id/keyring
osd data = $DIR/osd/\$cluster-\$id
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
osd class update on start = false
# Ceph 18's built-in class dir is relative (lib/<multiarch>/rados-classes, resolved from the
# OSD's working directory): without an absolute one every "rbd create" fails with EOPNOTSUPP.
osd class dir = $RADOS_CLASS_DIR
osd crush update on start = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1

[client]
# client.admin, client.libvirt and client.ro keys.
keyring = $DIR/client.keyring
EOF
}

# Create keyrings, monmap and mon store, start the monitor; returns 1 if it did not come up
# (e.g. somebody took a port), so the caller can retry with other ports.
start_mon() {
    rm -rf "$DIR/mon" "$DIR/monmap" "$DIR/mon.pid"
    mkdir -p "$DIR/mon/ceph-a"
    write_conf
    monmaptool --create --clobber --fsid "$FSID" \
        --addv a "[v2:127.0.0.1:$V2_PORT,v1:127.0.0.1:$V1_PORT]" "$DIR/monmap" >/dev/null ||
        fail "monmaptool failed"
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
        >>"$DIR/log/mon.a.out" 2>&1 || fail "ceph-mon --mkfs failed"
    # Fast paxos rounds while we set up; cmd_start restores the default once ready.
    ceph-mon -c "$CONF" -i a -f --paxos-propose-interval "$SETUP_PAXOS_INTERVAL" \
        </dev/null >>"$DIR/log/mon.a.out" 2>&1 &
    echo $! >"$DIR/mon.pid"
    local i pid=$!
    for ((i = 0; i < 150; i++)); do
        # Our child: gone (a zombie until we reap it) means it exited. Its command line is not
        # checked: right after the fork it is still this script's, until ceph-mon is exec'd
        # (seen on a loaded machine: a false "exited early", and a second monitor started
        # while the first one ran).
        if ! pid_is_ours "$pid" ""; then
            log "ceph-mon exited early (ports $V2_PORT/$V1_PORT taken?); its last words:"
            { tail -n 3 "$DIR/log/mon.a.out"; grep -E 'rror|unable' "$DIR/log/mon.a.log" | tail -n 3; } 2>/dev/null |
                sed 's/^/    /' >&2 || true
            rm -f "$DIR/mon.pid"
            return 1
        fi
        port_listening "$V2_PORT" && port_listening "$V1_PORT" && return 0
        sleep 0.1
    done
    log "ceph-mon did not listen on $V2_PORT/$V1_PORT within 15 s"
    stop_pidfile 3 "-c $CONF " "$DIR/mon.pid" || true
    return 1
}

cmd_start() {
    DIR=$(realpath -m -- "$1")
    CONF=$DIR/ceph.conf
    local t0=$SECONDS attempt lockfd
    for tool in ceph ceph-mon ceph-osd ceph-authtool monmaptool rbd python3 timeout flock; do
        command -v "$tool" >/dev/null || die "missing $tool"
    done
    [[ -d $RADOS_CLASS_DIR ]] || die "missing $RADOS_CLASS_DIR (the OSD's object classes, from ceph-osd)"
    check_empty_dir "$DIR"
    mkdir -p "$DIR"
    : >"$DIR/$MARKER"
    echo $$ >"$DIR/start.pid"   # lets "stop" abort an unfinished start
    mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/osd"
    (( ${#DIR} <= 80 )) || log "warning: $DIR is long; admin socket paths may exceed 107 bytes"

    FSID=$(cat /proc/sys/kernel/random/uuid)

    # Keys: mon., client.admin (the rest are created through the monitor later).
    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$DIR/client.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.keyring" >/dev/null
    chmod 600 "$DIR/mon.keyring" "$DIR/client.keyring"

    # Ports: pick and bind under a machine-wide lock so two labs starting together cannot
    # pick the same ports; retry if something else grabbed them anyway.
    exec {lockfd}>"${TMPDIR:-/tmp}/ceph-lab.ports.lock"
    flock -w 120 "$lockfd" || fail "could not take the port lock"
    for attempt in 1 2 3 4 5; do
        V2_PORT='' V1_PORT=''
        read -r V2_PORT V1_PORT < <(pick_ports) || true
        [[ -n $V1_PORT ]] || fail "could not pick free ports"
        start_mon && break
        ((attempt < 5)) || fail "monitor did not start after $attempt attempts"
    done
    flock -u "$lockfd"
    exec {lockfd}>&-
    log "mon.a up on 127.0.0.1 v2:$V2_PORT v1:$V1_PORT ($((SECONDS - t0)) s)"

    # Independent monitor commands run in parallel.
    local osd_uuid osd_key osd_data=$DIR/osd/ceph-0 pool
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    mkdir -p "$osd_data"
    ceph-authtool --create-keyring "$osd_data/keyring" -n osd.0 --gen-key >/dev/null
    osd_key=$(ceph-authtool -p -n osd.0 "$osd_data/keyring")
    printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$DIR/osd-secret.json"
    chmod 600 "$DIR/osd-secret.json"
    # "osd new" registers osd.0 with its key; then place it in CRUSH ourselves (the OSD's own
    # update-on-start costs two extra map rounds during boot).
    bg_run osd-new register_osd "$osd_uuid" "$DIR/osd-secret.json"
    bg_run user-libvirt cephc auth get-or-create client.libvirt mon 'profile rbd' osd 'profile rbd' \
        -o "$DIR/libvirt.keyring"
    bg_run user-ro cephc auth get-or-create client.ro mon 'profile rbd' osd 'profile rbd-read-only' \
        -o "$DIR/ro.keyring"
    for pool in rbd rbd2; do
        bg_run "pool-$pool" create_rbd_pool "$pool"
    done
    # memstore mkfs needs no monitor (the OSD's key is the one registered by "osd new").
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config \
        >>"$DIR/log/osd.0.out" 2>&1 || fail "ceph-osd --mkfs failed"
    bg_wait
    rm -f "$DIR/osd-secret.json"
    cat "$DIR/libvirt.keyring" "$DIR/ro.keyring" >>"$DIR/client.keyring"
    rm -f "$DIR/libvirt.keyring" "$DIR/ro.keyring"

    ceph-osd -c "$CONF" -i 0 -f </dev/null >>"$DIR/log/osd.0.out" 2>&1 &
    echo $! >"$DIR/osd.pid"

    # Ready when RBD works in both pools (needs the OSD up and the PGs active).
    local deadline=$((SECONDS + READY_TIMEOUT)) ok=0
    while ((SECONDS < deadline)); do
        # Our children (see start_mon: the OSD may not be exec'd yet on the first round).
        pid_is_ours "$(<"$DIR/osd.pid")" "" || fail "ceph-osd died"
        pid_is_ours "$(<"$DIR/mon.pid")" "" || fail "ceph-mon died"
        if rbdc ls rbd >/dev/null 2>&1 && rbdc ls rbd2 >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.2
    done
    ((ok)) || fail "rbd not usable after ${READY_TIMEOUT}s"
    # "rbd pool init" validates the pool (a self-managed snapshot round trip, and the
    # rbd_info object); otherwise the first image created in each pool pays for it (~2 s).
    for pool in rbd rbd2; do
        bg_run "init-$pool" rbdc pool init "$pool"
    done
    bg_wait
    local default_interval
    default_interval=$(ceph-conf -c /dev/null --show-config-value paxos_propose_interval)
    timeout 30 ceph --admin-daemon "$DIR/run/ceph-mon.a.asok" \
        config set paxos_propose_interval "$default_interval" >/dev/null ||
        fail "could not restore paxos_propose_interval"

    local admin_key libvirt_key ro_key
    admin_key=$(cephc auth get-key client.admin) || fail "get-key admin"
    libvirt_key=$(cephc auth get-key client.libvirt) || fail "get-key libvirt"
    ro_key=$(cephc auth get-key client.ro) || fail "get-key ro"

    {
        echo "# Generated by $PROG; source it."
        env_line CEPH_LAB_DIR "$DIR"
        env_line CEPH_CONF "$CONF"
        env_line CEPH_FSID "$FSID"
        env_line CEPH_MON_HOST 127.0.0.1
        env_line CEPH_MON_PORT "$V1_PORT"
        env_line CEPH_MON_V1_PORT "$V1_PORT"
        env_line CEPH_MON_V2_PORT "$V2_PORT"
        env_line CEPH_ADMIN_KEY "$admin_key"
        env_line CEPH_LIBVIRT_KEY "$libvirt_key"
        env_line CEPH_RO_KEY "$ro_key"
    } >"$DIR/ceph.env.tmp"
    chmod 600 "$DIR/ceph.env.tmp"
    mv "$DIR/ceph.env.tmp" "$DIR/ceph.env"
    rm -f "$DIR/start.pid"
    log "ready in $((SECONDS - t0)) s: source $DIR/ceph.env"
}

[[ $# -eq 2 ]] || usage
case $1 in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    *) usage ;;
esac
