#!/usr/bin/env bash
# A tiny guest for TCG test VMs: a Debian kernel and a busybox initramfs whose /init reads its
# disk (virtio-blk, /dev/vda), prints checksums on the serial console and powers off.
#
#   guest-kit.sh CACHE_DIR     make (once) CACHE_DIR/vmlinuz and CACHE_DIR/initrd.img, print
#                              "KERNEL=path" and "INITRD=path" lines
#
# The kernel is that of the linux-image package the archive's linux-image-amd64 depends on
# (`apt-get download`, only /boot/vmlinuz-* and the virtio modules are kept); busybox is
# busybox-static's. Both are rebuilt when their package version changes (CACHE_DIR/kit.id).
#
# What the guest's /init does, from its kernel command line (the domain's <cmdline>): it prints
# "VMTEST disks vda vdb ..." and "VMTEST vda size=BYTES" for each virtio disk, then
#   vmtest.mib=N     reads the first N MiB of each disk (O_DIRECT) and prints
#                    "VMTEST vda read 1 sha256=HEX" (default 16)
#   vmtest.rounds=R  does that R times ("VMTEST vda read 2 sha256=...", ...; default 1)
#   vmtest.write=1   then writes N MiB of fresh random bytes over vda, reads them back and
#                    prints "VMTEST vda wrote sha256=HEX"
# then "VMTEST done", and powers off (ACPI: give the domain <features><acpi/>). "VMTEST error:
# ..." on a failure. Use with: console=ttyS0 quiet panic=-1 (a panic reboots: on_reboot destroy).
set -euo pipefail

PROG=guest-kit
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab-common.sh
. "$HERE/lab-common.sh"

[[ $# -eq 1 ]] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
CACHE=$1
BUSYBOX=/bin/busybox
command -v apt-get dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb"
# The guest runs it with no libraries around: busybox-static's, not busybox's.
dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null | grep -q '^ii' ||
    die "busybox-static is not installed (tools/install-deps.sh installs it)"

# The versioned kernel package of the running release (e.g. linux-image-6.1.0-57-amd64) and
# its version: sets kpkg, kver and id (what the cached kit is made of).
arch=$(dpkg --print-architecture)
bver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
pick_kernel() {
    kpkg=$(apt-cache depends "linux-image-$arch" 2>/dev/null |
        sed -n "s/^ *Depends: \(linux-image-[0-9][^ ]*-$arch\)$/\1/p" | head -1)
    kver=$(apt-cache policy "$kpkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    id="$kpkg $kver busybox $bver $(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)"
    [[ -n $kpkg && -n $kver && $kver != "(none)" ]]
}
pick_kernel || die "apt-cache knows no linux-image-$arch (run apt-get update)"

if [[ -s $CACHE/vmlinuz && -s $CACHE/initrd.img && $(cat "$CACHE/kit.id" 2>/dev/null) == "$id" ]]; then
    echo "KERNEL=$CACHE/vmlinuz"
    echo "INITRD=$CACHE/initrd.img"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
log "downloading $kpkg $kver"
# apt drops privileges to _apt for downloads: the directory must be writable by it.
chmod 777 "$work"
download() { (cd "$work" && timeout 600 apt-get download -q "$kpkg=$kver" >>"$work/apt.log" 2>&1); }
# Stale package lists name a version the archive no longer serves: update them once.
download || { timeout 600 apt-get update -q >>"$work/apt.log" 2>&1 && pick_kernel && download; } ||
    { cat "$work/apt.log" >&2; die "apt-get download $kpkg=$kver failed"; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
shopt -s nullglob
found=("$work"/k/boot/vmlinuz-*)
vmlinuz=${found[0]:-}
[[ -n $vmlinuz ]] || die "$kpkg has no /boot/vmlinuz-*"
found=("$work"/k/lib/modules/* "$work"/k/usr/lib/modules/*)
moddir=${found[0]:-}
[[ -n $moddir ]] || die "$kpkg has no lib/modules/"
shopt -u nullglob

# The modules virtio-blk over PCI needs (those built in are simply absent), in load order.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
declare -A loaded=()
ORDER=()
module_file() { find "$moddir" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -1; }
add_module() {   # NAME: its dependencies first, then itself
    local name=${1//-/_} f plain deps d
    [[ -n ${loaded[$name]:-} ]] && return 0
    loaded[$name]=1
    f=$(module_file "$name")
    if [[ -z $f ]]; then
        f=$(module_file "${name//_/-}")
        [[ -n $f ]] || { grep -qw "$name" "$moddir/modules.builtin" 2>/dev/null && return 0; die "no module $name in $kpkg"; }
    fi
    plain=$root/lib/modules/$name.ko
    case $f in
        *.xz) "$BUSYBOX" unxz -c "$f" >"$plain" ;;
        *.gz) gzip -dc "$f" >"$plain" ;;
        *.zst) zstd -qdc "$f" >"$plain" || die "cannot decompress $f (zstd)" ;;
        *) cp "$f" "$plain" ;;
    esac
    deps=$(tr '\0' '\n' <"$plain" | sed -n 's/^depends=//p' | head -1)
    for d in ${deps//,/ }; do add_module "$d"; done
    ORDER+=("$name")
}
add_module virtio_pci
add_module virtio_blk
printf '%s\n' "${ORDER[@]}" >"$root/lib/modules/order"

cp "$BUSYBOX" "$root/bin/busybox"
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "VMTEST $*"; }
finish() { say done; sync; poweroff -f; sleep 5; echo o >/proc/sysrq-trigger; }
mib=16 rounds=1 write=0
for a in $(cat /proc/cmdline); do
    case $a in
        vmtest.mib=*) mib=${a#*=} ;;
        vmtest.rounds=*) rounds=${a#*=} ;;
        vmtest.write=*) write=${a#*=} ;;
    esac
done
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" || say "error: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || { say "error: no /dev/vda"; finish; }
sleep 0.2   # the other disks' probes
disks=$(cd /dev && ls -d vd[a-z] | tr '\n' ' ')
say "disks $disks"
for d in $disks; do say "$d size=$(blockdev --getsize64 "/dev/$d")"; done
sum() { dd if="/dev/$1" bs=1M count="$mib" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
r=1
while [ $r -le "$rounds" ]; do
    for d in $disks; do say "$d read $r sha256=$(sum "$d")"; done
    r=$((r + 1))
done
if [ "$write" = 1 ]; then
    if dd if=/dev/urandom of=/dev/vda bs=1M count="$mib" oflag=direct conv=fsync 2>/dev/null; then
        say "vda wrote sha256=$(sum vda)"
    else
        say "error: writing /dev/vda failed"
    fi
fi
finish
EOF
chmod 755 "$root/init"
(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) >"$work/initrd.img"

cp "$vmlinuz" "$CACHE/vmlinuz.tmp" && mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
mv "$work/initrd.img" "$CACHE/initrd.img"
echo "$id" >"$CACHE/kit.id"
log "kernel $(basename "$vmlinuz") from $kpkg $kver, initramfs of busybox $bver and ${ORDER[*]:-no modules} ($(du -k "$CACHE/initrd.img" | cut -f1) KiB)"
echo "KERNEL=$CACHE/vmlinuz"
echo "INITRD=$CACHE/initrd.img"
