#!/bin/bash
# The demo, from a fresh Debian 12 or 13 machine (as root):  bash demo.sh [--keep]
#
# Installs the dependencies, builds the module, starts ONE throwaway Ceph
# cluster and TWO private libvirtds side by side against it -- one with
# libvirt's stock rbd module, one with this module -- and then does what a
# user does: define RBD pools, create a "golden image", and make VM disks from
# it three ways, against both daemons.  Every request is timed and checked in
# Ceph (clone or copy? bytes written? same data as the golden image?), and a
# table compares the two at the end.  Before it, a VM (TCG, libvirt's qemu driver in
# our libvirtd) boots from one of the cloned disks; the checksum it prints of what it
# read ends the output, under the table (one row is an encrypted disk, each disk its own key).
# Everything started here is stopped on exit, also on failure or Ctrl-C;
# with --keep the lab is left running (its virsh URIs and how to stop it are
# printed at the end; Ctrl-C still stops it).  Takes a minute or two.
#
# Environment: BUILD_DIR (default: ./build, see tests/common.sh).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tests/common.sh"   # REPO BUILD STOCK_BACKENDS say build_all ours_backend_dir
PROG=demo
# shellcheck source=tests/lab/lab-common.sh
. "$REPO/tests/lab/lab-common.sh"   # define_secret

KEEP=0
case ${1:-} in
    --keep) KEEP=1 ;;
    '') ;;
    *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
esac

LAB_SH=$REPO/tests/lab/lab.sh
LIBVIRTD_LAB_SH=$REPO/tests/lab/libvirtd-lab.sh
IMAGE_MIB=64      # size of the golden image and of every VM disk
DATA_MIB=32       # how much of it holds data (the rest stays sparse)
T_START=$SECONDS

# The trap may fire inside a redirected command: it writes to the demo's own stdout/stderr.
exec {OUT}>&1 {ERR}>&2
WORK=
cleanup() {
    local rc=$? ok=1
    trap '' INT TERM     # let the cleanup finish (children inherit "ignore")
    exec 1>&"$OUT" 2>&"$ERR"
    [ -n "$WORK" ] || exit "$rc"
    if ((KEEP)) && [ -z "$INTERRUPTED" ] && [ -e "$WORK/lab/lab.env" ]; then
        keep_message
        echo "demo took $((SECONDS - T_START)) s"
        exit "$rc"
    fi
    say "stopping everything"
    cd / || true
    if [ -d "$WORK/stock-libvirtd" ]; then
        "$LIBVIRTD_LAB_SH" stop "$WORK/stock-libvirtd" || ok=0
    fi
    if [ -d "$WORK/lab" ]; then
        "$LAB_SH" stop "$WORK/lab" || ok=0
    fi
    if ((ok)); then
        rm -rf -- "$WORK"
        echo "all stopped, $WORK removed"
    else
        echo "WARNING: something did not stop; see the messages above ($WORK left in place)" >&2
    fi
    echo "demo took $((SECONDS - T_START)) s"
    exit "$rc"
}
INTERRUPTED=
# --keep: what is left running, and how to stop it.
keep_message() {
    say "left running (--keep)"
    cat <<EOF
Ceph:                    rbd -c $CEPH_CONF ls rbd2
our libvirtd (+ qemu):   virsh -c '$OURS_QEMU' list --all
                         virsh -c '$OURS' pool-list --all
stock libvirtd:          virsh -c '${STOCK:-}' pool-list --all
the guest's console:     $WORK/vm-console.log
stop it all:             $LIBVIRTD_LAB_SH stop $WORK/stock-libvirtd && $LAB_SH stop $WORK/lab && rm -rf $WORK
EOF
    [ -n "${STOCK:-}" ] || echo "(the stock libvirtd did not start: stopping it is a no-op)"
}
trap cleanup EXIT
trap 'echo; echo "interrupted" >&2; INTERRUPTED=1; exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and runs daemons)" >&2; exit 1; }

say "1/7  dependencies (tools/install-deps.sh)"
"$REPO/tools/install-deps.sh" || exit 1

say "2/7  build ($BUILD)"
build_log=$(mktemp /tmp/rbdclone-demo-build.XXXXXX.log)
if ! build_all >"$build_log" 2>&1; then
    tail -30 "$build_log"
    echo "demo: the build failed (full log: $build_log)" >&2
    exit 1
fi
rm -f "$build_log"
echo "built $BUILD/plugin/: the loader libvirt_storage_backend_rbd.so and $(cd "$BUILD/plugin" && echo rbdclone-libvirt-*.so)"
OURS_BACKENDS=$(ours_backend_dir)
STOCK_VERSION=$(libvirtd --version | awk '{print $NF}')

# ---------------------------------------------------------------------------------------------
say "3/7  one Ceph cluster, two libvirtds (stock libvirt $STOCK_VERSION and this module)"
WORK=$(mktemp -d /tmp/rbdclone-demo.XXXXXX)
echo "--- Ceph + libvirtd with OUR rbd module ($OURS_BACKENDS)"
# setsid: the daemons get their own session, so a Ctrl-C reaches the demo (which then stops them
# in order) rather than killing them in the middle of a request.
# --qemu: this libvirtd also runs guests (libvirt's qemu driver), for the VM at the end.
setsid -w "$LAB_SH" start "$WORK/lab" "$OURS_BACKENDS" --qemu {OUT}>&- {ERR}>&- || { echo "demo: the lab did not start" >&2; exit 1; }
# shellcheck source=/dev/null
. "$WORK/lab/lab.env"     # CEPH_CONF CEPH_MON_PORT CEPH_LIBVIRT_KEY LAB_SECRET_LIBVIRT_UUID ...
OURS=$LIBVIRT_STORAGE_URI
OURS_QEMU=$LIBVIRT_QEMU_URI

echo "--- a second libvirtd with the STOCK rbd module ($STOCK_BACKENDS), same Ceph"
setsid -w "$LIBVIRTD_LAB_SH" start "$WORK/stock-libvirtd" "$STOCK_BACKENDS" {OUT}>&- {ERR}>&- ||
    { echo "demo: the stock libvirtd did not start" >&2; exit 1; }
STOCK=$(. "$WORK/stock-libvirtd/libvirtd.env" && echo "$LIBVIRT_STORAGE_URI")
STOCK_SECRETS=$(. "$WORK/stock-libvirtd/libvirtd.env" && echo "$LIBVIRT_SECRET_URI")

# The ceph secret in the stock daemon, as lab.sh defines it in ours: same UUID, so one pool XML
# serves both.  The key goes through a 0600 file, never a command line.
define_secret "$STOCK_SECRETS" "$LAB_SECRET_LIBVIRT_UUID" "client.libvirt secret" "$CEPH_LIBVIRT_KEY" ||
    { echo "demo: defining the ceph secret in the stock libvirtd failed" >&2; exit 1; }

cat <<EOF

Ceph:   $CEPH_CONF  (pools rbd, rbd2; user client.libvirt)
STOCK=$STOCK
OURS=$OURS
Both daemons hold the ceph secret $LAB_SECRET_LIBVIRT_UUID (key of client.libvirt).
They share the Ceph pools, so each one's volumes carry its name: golden-stock, disk1-ours, ...
EOF

# ---------------------------------------------------------------------------------------------
# Helpers.  virsh commands are shown as a user would type them, with $STOCK / $OURS for the URIs.
DAEMONS=(stock ours)
uri_of() { if [ "$1" = stock ]; then echo "$STOCK"; else echo "$OURS"; fi; }
# shellcheck disable=SC2016  # shown literally, as the user types it
uri_label() { if [ "$1" = stock ]; then echo '$STOCK'; else echo '$OURS'; fi; }
indent() { sed 's/^/      /'; }

# vsh DAEMON ARGS...: echo and run one virsh command; output indented; sets VSH_MS, VSH_ERR.
vsh() {
    local d=$1 t0 t1 out rc
    shift
    printf '  [%-5s] $ virsh -c %s %s\n' "$d" "$(uri_label "$d")" "$*"
    t0=$(date +%s%N)
    out=$(timeout --foreground 120 virsh -c "$(uri_of "$d")" "$@" 2>&1)
    rc=$?
    t1=$(date +%s%N)
    VSH_MS=$(((t1 - t0) / 1000000))
    VSH_ERR=
    [ -n "$out" ] && printf '%s\n' "$out" | grep -v '^$' | indent
    if ((rc)); then
        ((rc == 124)) && out="error: timed out after 120 s"
        # virsh prints "error: Failed to <do X>" then libvirt's message: the cause is the last one.
        VSH_ERR=$(printf '%s\n' "$out" | sed -n 's/^error: //p' | tail -1)
        [ -n "$VSH_ERR" ] || VSH_ERR="virsh exit status $rc"
    fi
    return $rc
}

ceph_rbd() { timeout --foreground 60 rbd -c "$CEPH_CONF" "$@"; }

# Parent of POOL/IMAGE ("" if none); fails if the image does not exist.
rbd_parent() {
    local info
    info=$(ceph_rbd info "$1" 2>/dev/null) || return 1
    printf '%s\n' "$info" | sed -n 's/^[[:space:]]*parent: //p'
}

# Bytes stored in POOL/IMAGE itself (not in its parent), from the image's changed extents.
rbd_written() {
    ceph_rbd du --format json "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(sum(i["used_size"] for i in json.load(sys.stdin)["images"] if "@" not in i["name"] and i.get("snapshot") is None))' 2>/dev/null ||
        echo "?"
}

human() {
    local b=$1
    case $b in
        '' | *[!0-9]*) echo "$b" ;;
        *) if ((b >= 1048576)); then echo "$((b / 1048576)) MiB"; elif ((b >= 1024)); then echo "$((b / 1024)) KiB"; else echo "$b B"; fi ;;
    esac
}

# The md5 of what a guest reads from an encrypted POOL/IMAGE: vol-download through our module
# (which decrypts it with the volume's key).
guest_md5() {
    local pool=images
    [ "${1%%/*}" = rbd2 ] && pool=vms
    timeout --foreground 120 virsh -c "$OURS" vol-download --pool "$pool" "${1#*/}" "$WORK/guest.raw" >/dev/null 2>&1 &&
        md5sum <"$WORK/guest.raw" | cut -d' ' -f1
    rm -f "$WORK/guest.raw"
}

# check POOL/IMAGE: what happened in Ceph; sets CHECK (table cell, without the time).
check() {
    local img=$1 parent written sum encrypted=''
    if ! parent=$(rbd_parent "$img"); then
        printf '      check: $ rbd info %s -> no such image\n' "$img"
        CHECK=
        return 1
    fi
    written=$(rbd_written "$img")
    if encrypted=$(ceph_rbd image-meta get "$img" rbdclone.encryption 2>/dev/null); then
        printf '      check: $ rbd image-meta get %s rbdclone.encryption -> %s (format, secret, header bytes)\n' "$img" "$encrypted"
        printf '             $ rbd export %s - | head -c 4 -> %s (a LUKS header: what Ceph stores is ciphertext)\n' "$img" \
            "$(ceph_rbd export --no-progress "$img" - 2>/dev/null | head -c 4 | tr -dc 'A-Z')"
        sum=$(guest_md5 "$img")
    else
        sum=$(ceph_rbd export --no-progress "$img" - 2>/dev/null | md5sum | cut -d' ' -f1)
    fi
    if [ -n "$parent" ] && [[ $parent == */rbdclone-cache-* ]]; then
        CHECK="clone of the cache entry"
        printf '      check: $ rbd info %s -> parent: %s (the image cache entry: %s written into it)\n' \
            "$img" "$parent" "$(human "$(rbd_written "${parent%@*}")")"
    elif [ -n "$parent" ]; then
        CHECK="clone"
        printf '      check: $ rbd info %s -> parent: %s\n' "$img" "$parent"
    else
        CHECK="copy $(human "$written")"
        printf '      check: $ rbd info %s -> no parent (a full image)\n' "$img"
    fi
    printf '             $ rbd du %s -> %s written into it\n' "$img" "$(human "$written")"
    if [ -z "$encrypted" ] && ((WANT_ENCRYPTED)); then
        CHECK="$CHECK, NOT ENCRYPTED"
        printf '             $ rbd image-meta list %s -> no encryption: the disk was asked for with <encryption> but is plain\n' "$img"
    fi
    if [ -n "$encrypted" ]; then
        CHECK="encrypted $CHECK"
        if [ "$sum" = "$GOLDEN_MD5" ]; then
            printf '             $ virsh vol-download (the guest'"'"'s bytes, decrypted by the module) | md5sum -> same data as the golden image\n'
        else
            printf '             $ virsh vol-download (the guest'"'"'s bytes) | md5sum -> DIFFERENT data from the golden image\n'
            CHECK="$CHECK, WRONG DATA"
        fi
    elif [ "$sum" = "$GOLDEN_MD5" ]; then
        printf '             $ rbd export %s - | md5sum -> same data as the golden image\n' "$img"
    else
        printf '             $ rbd export %s - | md5sum -> DIFFERENT data from the golden image\n' "$img"
        CHECK="$CHECK, WRONG DATA"
    fi
}

# short_reason POOL/IMAGE: the reason our module logged for its decision on that image, short
# enough for the table: its first clause (and, through the image cache, the cache's), without
# fsids and directories.
short_reason() {
    local line reason first last
    line=$(grep -h "decision for RBD image '$1' from " "$LIBVIRTD_LOG" 2>/dev/null | tail -1)
    [ -n "$line" ] || { echo "-"; return; }
    reason=$(printf '%s\n' "$line" | sed -n "s/.*decision for RBD image '[^']*' from [^(]*: [a-z+ -]* (\(.*\))$/\1/p")
    first=${reason%%;*} last=${reason##*; }
    case $last in *"image cache"*) [ "$last" != "$reason" ] && first="$first; $last" ;; esac
    printf '%s\n' "$first" | sed -E "s/ [0-9a-f]{8}-[0-9a-f-]{27}//g; s#'/[^']*/([^/']*)'#'\1'#g; s/ entry RBD image '[^']*'/ entry/"
}

declare -A RESULT
REQUESTS=()
WANT_ENCRYPTED=0   # the request asks for an encrypted disk (check says when it is not)
NOTES=()
# request ID LABEL CEPH_IMAGE_PATTERN VIRSH_ARGS... (%s in the args/pattern = stock|ours)
request() {
    local id=$1 label=$2 pattern=$3 d args a img short
    shift 3
    REQUESTS+=("$id")
    RESULT[$id,label]=$label
    echo
    echo "-- $label"
    for d in "${DAEMONS[@]}"; do
        args=()
        for a in "$@"; do args+=("${a//%s/$d}"); done
        img=${pattern//%s/$d}
        # The monitor batches map changes for 1 s: a snapshot made right after the other
        # daemon's one would wait for it.  Let it settle, so neither pays for the other.
        sleep 1.2
        if vsh "$d" "${args[@]}"; then
            if check "$img"; then
                RESULT[$id,$d]="ok, $CHECK, $VSH_MS ms"
                # Our module says which path it took (clone, copy, cache-hit clone, ...).
                local method
                method=$(grep -h "decision for RBD image '$img' from " "$LIBVIRTD_LOG" 2>/dev/null | tail -1 |
                    sed -n "s/.*decision for RBD image '[^']*' from [^(]*: \([a-z+ -]*\) (.*/\1/p")
                # (what it says is checked above in Ceph: parent, bytes written, data)
                local checked=${CHECK#encrypted } prefix=''
                [ "$checked" != "$CHECK" ] && prefix='encrypted '
                [ "$d" = ours ] && [ -n "$method" ] && [ "$method" != "${checked%% *}" ] &&
                    RESULT[$id,$d]="ok, $prefix$method, $VSH_MS ms"
                [ "$d" = ours ] && RESULT[$id,why]=$(short_reason "$img")
            else
                RESULT[$id,$d]="virsh ok but no image in Ceph!"
            fi
        else
            check "$img" >/dev/null && echo "      (an image $img exists anyway)"
            if ((${#VSH_ERR} > 60)); then
                # Too long for the table: its cause (libvirt's messages end with ": <cause>"),
                # trimmed, and a footnote below the table gives the whole message.
                NOTES+=("$VSH_ERR")
                short=${VSH_ERR##*: }
                ((${#short} >= 10)) || short=$VSH_ERR
                ((${#short} > 60)) && short="${short:0:57}..."
                RESULT[$id,$d]="FAILS: $short [${#NOTES[@]}]"
            else
                RESULT[$id,$d]="FAILS: $VSH_ERR"
            fi
            printf '      -> FAILS after %s ms\n' "$VSH_MS"
        fi
    done
}

# setup DAEMON ARGS...: a setup step; a failure is shown (the requests below will show it too).
setup() {
    vsh "$@" || echo "      (this step failed: the requests below will fail for $1 too)"
}

# ---------------------------------------------------------------------------------------------
say "4/7  what a user does first: pools and a golden image"
for p in images:rbd vms:rbd2; do
    # vms: our image cache on (the stock module ignores the element).
    cache=''
    [ "${p%%:*}" = vms ] && cache="
  <rbd:image_cache enabled='yes'/>"
    cat >"$WORK/${p%%:*}.xml" <<EOF
<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>
  <name>${p%%:*}</name>
  <source>
    <host name='127.0.0.1' port='$CEPH_MON_PORT'/>
    <name>${p#*:}</name>
    <auth type='ceph' username='libvirt'><secret uuid='$LAB_SECRET_LIBVIRT_UUID'/></auth>
  </source>$cache
</pool>
EOF
done
mkdir -p "$WORK/files"
echo "pool XML ($WORK/images.xml, $WORK/vms.xml):"
indent <"$WORK/images.xml"
indent <"$WORK/vms.xml"
cd "$WORK" || exit 1
echo
for d in "${DAEMONS[@]}"; do
    for p in images vms; do
        setup "$d" pool-define "$p.xml"
        setup "$d" pool-start "$p"
    done
    setup "$d" pool-define-as files dir --target "$WORK/files"
    setup "$d" pool-start files
done

echo
echo "The golden image: ${DATA_MIB} MiB of data in a ${IMAGE_MIB} MiB disk (a stand-in for an OS image)."
{ printf 'GOLDEN IMAGE of the rbd clone demo\n'; head -c $((DATA_MIB * 1048576 - 35)) /dev/urandom; } >"$WORK/golden.raw"
truncate -s "${IMAGE_MIB}M" "$WORK/golden.raw"
GOLDEN_MD5=$(md5sum <"$WORK/golden.raw" | cut -d' ' -f1)
for d in "${DAEMONS[@]}"; do
    setup "$d" vol-create-as images "golden-$d" "${IMAGE_MIB}M" --format raw
    # Neither backend supports vol-upload: write the data straight into Ceph.
    printf '  [%-5s] $ qemu-img convert -n -O raw golden.raw rbd:rbd/golden-%s:conf=$CEPH_CONF\n' "$d" "$d"
    timeout --foreground 60 qemu-img convert -n -f raw -O raw "$WORK/golden.raw" "rbd:rbd/golden-$d:conf=$CEPH_CONF" 2>&1 | indent
    setup "$d" pool-refresh images
done
echo
echo "The same image as a qcow2 file, in the dir pool 'files' ($WORK/files):"
echo '  $ qemu-img convert -O qcow2 golden.raw files/golden.qcow2'
qemu-img convert -f raw -O qcow2 "$WORK/golden.raw" "$WORK/files/golden.qcow2" 2>&1 | indent
for d in "${DAEMONS[@]}"; do setup "$d" pool-refresh files; done
echo
echo "An image that cannot be layered (made without the 'layering' feature, as old tools do):"
for d in "${DAEMONS[@]}"; do
    printf '  $ rbd create --size %sM --image-feature exclusive-lock rbd/oldstyle-%s; qemu-img convert -n ... rbd:rbd/oldstyle-%s\n' "$IMAGE_MIB" "$d" "$d"
    ceph_rbd create --size "${IMAGE_MIB}M" --image-feature exclusive-lock "rbd/oldstyle-$d" 2>&1 | indent
    timeout --foreground 60 qemu-img convert -n -f raw -O raw "$WORK/golden.raw" "rbd:rbd/oldstyle-$d:conf=$CEPH_CONF" 2>&1 | indent
    setup "$d" pool-refresh images
    setup "$d" vol-create-as images "uploaded-$d" "${IMAGE_MIB}M" --format raw
done
for t in 2 3 4 5; do
    cat >"$WORK/disk$t-template.xml" <<EOF
<volume>
  <name>disk$t-%s</name>
  <capacity unit='MiB'>$IMAGE_MIB</capacity>
  <target><format type='raw'/></target>
</volume>
EOF
    for d in "${DAEMONS[@]}"; do sed "s/%s/$d/" "$WORK/disk$t-template.xml" >"$WORK/disk$t-$d.xml"; done
done
echo
echo "disk2-ours.xml (the new volume for vol-create-from; the others differ only in the name):"
indent <"$WORK/disk2-ours.xml"
echo
echo "An encrypted disk: a passphrase in libvirt's secret driver (usage type volume; the same UUID"
echo "in both daemons, its value from a 0600 file, never a command line), and <encryption> in the"
echo "new volume's target (librbd's LUKS2: each disk its own key):"
DISK_KEY_UUID=d15c0e2c-7e57-4a5e-9f00-00000000de70
cat >"$WORK/disk-key.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$DISK_KEY_UUID</uuid>
  <usage type='volume'><volume>/demo/disk6</volume></usage>
</secret>
EOF
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$WORK/disk-key.pass")
indent <"$WORK/disk-key.xml"
for d in "${DAEMONS[@]}"; do
    secrets=$LIBVIRT_SECRET_URI
    [ "$d" = stock ] && secrets=$STOCK_SECRETS
    printf '  [%-5s] $ virsh secret-define disk-key.xml; virsh secret-set-value %s --file disk-key.pass --plain\n' "$d" "$DISK_KEY_UUID"
    { timeout --foreground 60 virsh -c "$secrets" secret-define "$WORK/disk-key.xml" &&
        timeout --foreground 60 virsh -c "$secrets" secret-set-value "$DISK_KEY_UUID" --file "$WORK/disk-key.pass" --plain; } 2>&1 |
        grep -v '^$' | indent
    cat >"$WORK/disk6-$d.xml" <<EOF
<volume>
  <name>disk6-$d</name>
  <capacity unit='MiB'>$IMAGE_MIB</capacity>
  <target>
    <format type='raw'/>
    <encryption format='luks2' engine='librbd'><secret type='passphrase' uuid='$DISK_KEY_UUID'/></encryption>
  </target>
</volume>
EOF
done
echo "disk6-ours.xml:"
indent <"$WORK/disk6-ours.xml"

# ---------------------------------------------------------------------------------------------
say "5/7  making VM disks from the golden image, against both daemons"
request clone "vol-clone golden -> disk1 (same pool)" "rbd/disk1-%s" \
    vol-clone golden-%s disk1-%s --pool images
request xpool "vol-create-from images/golden -> vms" "rbd2/disk2-%s" \
    vol-create-from vms disk2-%s.xml golden-%s --inputpool images
request qcow2 "vol-create-from dir qcow2 -> vms" "rbd2/disk3-%s" \
    vol-create-from vms disk3-%s.xml golden.qcow2 --inputpool files
request qcow2again "the same qcow2 again -> vms (image cache)" "rbd2/disk5-%s" \
    vol-create-from vms disk5-%s.xml golden.qcow2 --inputpool files
request nolayer "vol-create-from image without layering -> vms" "rbd2/disk4-%s" \
    vol-create-from vms disk4-%s.xml oldstyle-%s --inputpool images
request upload "vol-upload --sparse golden.raw -> images" "rbd/uploaded-%s" \
    vol-upload --sparse uploaded-%s golden.raw --pool images
WANT_ENCRYPTED=1
request encrypted "vol-create-from golden -> disk6 (same pool), encrypted" "rbd/disk6-%s" \
    vol-create-from images disk6-%s.xml golden-%s --inputpool images
WANT_ENCRYPTED=0

# ---------------------------------------------------------------------------------------------
say "6/7  a VM boots from disk2-ours (the clone in pool vms) and reads it"
VM_DISK=rbd2/disk2-ours
VM_CONSOLE=$WORK/vm-console.log
if ! kit=$("$REPO/tests/lab/guest-kit.sh" "$BUILD/guest-kit"); then
    echo "demo: could not make the guest's kernel and initramfs (tests/lab/guest-kit.sh)" >&2
    exit 1
fi
KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$kit") INITRD=$(sed -n 's/^INITRD=//p' <<<"$kit")
GOLDEN_SHA=$(sha256sum <"$WORK/golden.raw" | cut -d' ' -f1)
# A Debian kernel and a busybox initramfs whose /init prints the sha256 of the first
# vmtest.mib MiB of each disk on the serial console (a file), then powers off.
# libvirt's qemu driver takes an RBD disk as <disk type='network'> with the cephx secret
# (it refuses <disk type='volume'> for rbd pools).
cat >"$WORK/vm.xml" <<EOF
<domain type='qemu'>
  <name>demo-vm</name>
  <memory unit='MiB'>256</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$KERNEL</kernel>
    <initrd>$INITRD</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 vmtest.mib=$IMAGE_MIB</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <auth username='libvirt'><secret type='ceph' uuid='$LAB_SECRET_LIBVIRT_UUID'/></auth>
      <source protocol='rbd' name='$VM_DISK'><host name='127.0.0.1' port='$CEPH_MON_V2_PORT'/></source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='$VM_CONSOLE'/><target port='0'/></serial>
  </devices>
</domain>
EOF
echo "vm.xml ($WORK/vm.xml):"
indent <"$WORK/vm.xml"
# shellcheck disable=SC2016  # shown literally, as the user types it
printf '  [ours ] $ virsh -c $OURS_QEMU create vm.xml\n'
VM_LINE='' VM_OK=0
if timeout --foreground 120 virsh -c "$OURS_QEMU" create "$WORK/vm.xml" 2>&1 | grep -v '^$' | indent; then
    for ((i = 0; i < 600; i++)); do
        grep -q 'VMTEST done' "$VM_CONSOLE" 2>/dev/null && break
        timeout 10 virsh -c "$OURS_QEMU" domstate demo-vm >/dev/null 2>&1 || break   # powered off
        sleep 0.2
    done
    VM_LINE=$(grep -a -m1 'VMTEST vda read 1 ' "$VM_CONSOLE" 2>/dev/null | tr -d '\r')
    timeout 30 virsh -c "$OURS_QEMU" destroy demo-vm >/dev/null 2>&1   # if it is still running
fi

# ---------------------------------------------------------------------------------------------
say "7/7  result"
echo "clone = the new disk is a copy-on-write child of the golden image in Ceph (nothing copied);"
echo "copy = a full image with the data written into it (holes and zero blocks are not written);"
echo "encrypted = librbd's LUKS2 with the disk's own key (Ceph 18: a clone of the plain golden image;"
echo "Ceph 16 has no layered encryption: a copy), checked through the module's decrypting vol-download;"
echo "FAILS = virsh's error message.  Our module's decisions, from its log:"
grep -hoE "(decision for|copied) .*" "$LIBVIRTD_LOG" 2>/dev/null | sed 's/^/  /'
echo
echo
# Column widths from the longest cell, so the columns line up whatever the messages are.
head_stock="stock libvirt $STOCK_VERSION" head_ours="this module"
w1=7 w2=${#head_stock} w3=${#head_ours}
for id in "${REQUESTS[@]}"; do
    ((${#RESULT[$id,label]} > w1)) && w1=${#RESULT[$id,label]}
    ((${#RESULT[$id,stock]} > w2)) && w2=${#RESULT[$id,stock]}
    ((${#RESULT[$id,ours]} > w3)) && w3=${#RESULT[$id,ours]}
done
printf "%-$((w1 + 3))s%-$((w2 + 3))s%-$((w3 + 3))s%s\n" request "$head_stock" "$head_ours" "why (this module's log)"
for id in "${REQUESTS[@]}"; do
    printf "%-$((w1 + 3))s%-$((w2 + 3))s%-$((w3 + 3))s%s\n" "${RESULT[$id,label]}" "${RESULT[$id,stock]}" \
        "${RESULT[$id,ours]}" "${RESULT[$id,why]:--}"
done
for i in "${!NOTES[@]}"; do
    ((i)) || echo
    printf '[%d] %s\n' $((i + 1)) "${NOTES[$i]}"
done
echo
echo "and the VM on disk2-ours (vol-create-from images/golden-ours -> vms: a clone), in its own words:"
if [ -n "$VM_LINE" ]; then
    printf '  %s\n' "$VM_LINE"
    if [ "${VM_LINE##*sha256=}" = "$GOLDEN_SHA" ]; then
        echo "  = sha256 of golden.raw: the VM read the golden image's bytes through the clone"
        VM_OK=1
    else
        echo "  DIFFERENT from golden.raw's sha256 ($GOLDEN_SHA)"
    fi
else
    echo "  the guest printed no checksum within 2 minutes; its console ($VM_CONSOLE):"
    indent <"$VM_CONSOLE" 2>/dev/null
fi
echo
((VM_OK)) || { echo "demo: the VM did not read the golden image's bytes" >&2; exit 1; }
exit 0
