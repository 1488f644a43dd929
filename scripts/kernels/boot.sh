#!/bin/bash
# boot.sh KDIR GUEST_SCRIPT OUTDIR [TIMEOUT_S] -- run a script as root inside
# a Debian kernel under qemu (TCG) and bring back its output and exit code.
# Owns: KDIR/initrd.img + KDIR/initrd.key (a cached initramfs: busybox and the
# 9p/overlay modules), and OUTDIR (console.log, out.log, rc, dmesg.log, times,
# qemu.log, share/).
# KDIR is what fetch.sh made (vmlinuz, version, modules/<version>/).
# The guest's / is this machine's / over 9p (read-only) under a tmpfs overlay,
# so the repo, build/ and the installed tools are at the same paths; writes in
# the guest vanish. The guest script runs from the directory boot.sh was
# called in; OUTDIR/share is /kshare in the guest (read-write) for artifacts.
# Exit: the guest script's rc, 124 on timeout, 125 if it never ran (or the
# guest died before it finished). Env: BOOT_APPEND (extra kernel cmdline;
# kroot.cache=none|loose|mmap picks the host root's 9p cache, default loose),
# BOOT_ENV ("NAME NAME...": variables exported into the guest script),
# BOOT_TMPFS ("DIR DIR...": host directories the guest sees empty),
# BOOT_MEM (MiB, 4096), BOOT_SMP (2).
set -eu

usage() { echo "usage: $0 KDIR GUEST_SCRIPT OUTDIR [TIMEOUT_S]" >&2; exit 2; }
if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage; fi
KDIR=$(cd "$1" && pwd -P)
GUEST=$2
mkdir -p "$3"
OUT=$(cd "$3" && pwd -P)
TIMEOUT=${4:-1200}
CWD=$(pwd -P)
[ -s "$KDIR/version" ] || { echo "boot: $KDIR/version missing (run fetch.sh)" >&2; exit 2; }
[ -r "$GUEST" ] || { echo "boot: cannot read $GUEST" >&2; exit 2; }
VER=$(cat "$KDIR/version")
MODDIR=$KDIR/modules/$VER
log() { echo "boot[$VER]: $*" >&2; }

# --- initramfs ------------------------------------------------------------------
# Wanted modules, in load order; each is loaded only where it is a module
# (built-in ones are skipped), after its own dependencies from modules.dep.
WANT="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
netfs fscache 9pnet 9pnet_virtio 9p overlay"
# hard requirements: each must be a module or built in
NEED="virtio_pci 9pnet_virtio 9p overlay"

modpath() { # NAME -> path relative to MODDIR from modules.dep, or nothing
	awk -F: -v n="$1" '{ f = $1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f)
		if (f == n) { print $1; exit } }' "$MODDIR/modules.dep"
}
builtin() {
	grep -Eq "/$1\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null
}
ORDER=""
add_mod() { # PATH (relative): add its deps first, then itself, once
	case " $ORDER " in *" $1 "*) return 0 ;; esac
	local d
	for d in $(awk -F: -v p="$1" '$1 == p { print $2; exit }' "$MODDIR/modules.dep"); do
		add_mod "$d"
	done
	ORDER="$ORDER $1"
}
for m in $WANT; do
	p=$(modpath "$m")
	if [ -n "$p" ]; then
		add_mod "$p"
	elif ! builtin "$m"; then
		case " $NEED " in
		*" $m "*) log "module $m is neither built in nor in $MODDIR"; exit 2 ;;
		esac
	fi
done

# /init: load modules, mount host root (ro) + tmpfs overlay + modules + share,
# then switch_root into /kshare/stage2.sh (written per run below).
INIT='#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
fail() { echo "init: FAILED: $*"; echo o > /proc/sysrq-trigger; sleep 60; }
for m in $(cat /modules.order); do
	insmod "/modules/$m" || echo "init: insmod $m failed"
done
O=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /lower /rw /newroot
C=loose
for a in $(cat /proc/cmdline); do case "$a" in kroot.cache=*) C=${a#kroot.cache=} ;; esac; done
mount -t 9p -o "$O,ro,cache=$C" hostroot /lower || fail "mount 9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "mount overlay"
mkdir -p /newroot/lib/modules /newroot/kshare
mount -t 9p -o "$O,ro" kmods /newroot/lib/modules || fail "mount 9p kmods"
mount -t 9p -o "$O" kshare /newroot/kshare || fail "mount 9p kshare"
[ -r /newroot/kshare/stage2.sh ] || fail "no /kshare/stage2.sh"
# static nodes that load their module on open (/dev/net/tun, /dev/fuse...),
# as systemd'"'"'s kmod-static-nodes makes them from modules.devname
while read -r mod name dev; do
	case "$mod" in ""|\#*) continue ;; esac
	[ -e "/dev/$name" ] && continue
	case "$name" in */*) mkdir -p "/dev/${name%/*}" ;; esac
	mode=0600
	case "$name" in net/tun|fuse) mode=0666 ;; esac
	mm=${dev#?}
	mknod -m "$mode" "/dev/$name" "${dev%"$mm"}" "${mm%:*}" "${mm#*:}" 2>/dev/null
done < "/newroot/lib/modules/$(uname -r)/modules.devname"
echo "init: up $(cut -d" " -f1 /proc/uptime)s, switch_root"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh /kshare/stage2.sh
fail "switch_root"
'

KEY=$( { echo "$VER"; echo "$ORDER"; echo "$INIT"; sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
INITRD=$KDIR/initrd.img
if [ ! -s "$INITRD" ] || [ "$(cat "$KDIR/initrd.key" 2>/dev/null)" != "$KEY" ]; then
	[ -x /bin/busybox ] || { log "need busybox-static (fetch.sh installs it)"; exit 2; }
	log "building initramfs:$ORDER"
	T=$(mktemp -d "$KDIR/.initrd.XXXXXX")
	mkdir -p "$T/bin" "$T/dev" "$T/proc" "$T/sys" "$T/modules"
	cp /bin/busybox "$T/bin/busybox"
	mknod "$T/dev/console" c 5 1 2>/dev/null || true
	: > "$T/modules.order"
	for p in $ORDER; do
		b=${p##*/}
		case "$b" in
		*.ko.xz)  xz -dc "$MODDIR/$p" > "$T/modules/${b%.xz}"; b=${b%.xz} ;;
		*.ko.zst) zstd -qdc "$MODDIR/$p" > "$T/modules/${b%.zst}"; b=${b%.zst} ;;
		*.ko.gz)  gzip -dc "$MODDIR/$p" > "$T/modules/${b%.gz}"; b=${b%.gz} ;;
		*)        cp "$MODDIR/$p" "$T/modules/$b" ;;
		esac
		echo "$b" >> "$T/modules.order"
	done
	printf '%s' "$INIT" > "$T/init"
	chmod 755 "$T/init"
	(cd "$T" && find . | cpio -o -H newc --quiet | gzip -1) > "$T.img"
	rm -rf "$T"
	mv "$T.img" "$INITRD"
	echo "$KEY" > "$KDIR/initrd.key"
fi

# --- the share: guest script, its cwd and env, stage 2 ------------------------
SHARE=$OUT/share
rm -rf "$SHARE" "$OUT/out.log" "$OUT/rc" "$OUT/console.log" "$OUT/times" "$OUT/dmesg.log"
mkdir -p "$SHARE"
cp "$GUEST" "$SHARE/guest.sh"
printf '%s\n' "$CWD" > "$SHARE/cwd"
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
: > "$SHARE/env"
for v in ${BOOT_ENV:-}; do
	if [ -n "${!v+x}" ]; then
		echo "export $v=$(sq "${!v}")" >> "$SHARE/env"
	fi
done
cat > "$SHARE/stage2.sh" <<EOF
#!/bin/sh
# stage 2 (PID 1 after switch_root): mounts, then the guest script, poweroff.
BOOT_TMPFS=$(sq "${BOOT_TMPFS:-}")
EOF
cat >> "$SHARE/stage2.sh" <<'EOF'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
# busybox-static for the set-up: one static exec is far cheaper under TCG
B=/bin/busybox
up() { read -r u _ < /proc/uptime; echo "$u"; }
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mountpoint -q /dev || $B mount -t devtmpfs devtmpfs /dev
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
$B mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
$B mkdir -p /run/lock /run/netns /run/user
$B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
$B mount -t bpf bpf /sys/fs/bpf
$B mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup 2>/dev/null ||
	$B mount -t cgroup2 cgroup2 /sys/fs/cgroup
# enable every controller for children, as systemd does
read -r ctrls < /sys/fs/cgroup/cgroup.controllers
for c in $ctrls; do
	echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
done
$B mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
$B mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
# BOOT_TMPFS: host directories the guest should see empty (e.g. state dirs)
for d in $BOOT_TMPFS; do $B mkdir -p "$d" && $B mount -t tmpfs -o mode=0755 tmpfs "$d"; done
$B ip link set lo up
$B hostname kguest
ulimit -Hn 524288 2>/dev/null || true
[ -r /kshare/env ] && . /kshare/env
read -r cwd < /kshare/cwd
echo "stage2: $($B uname -r) up $(up)s, running guest script"
up > /kshare/started
( cd "$cwd" || cd /; exec sh /kshare/guest.sh ) > /kshare/out.log 2>&1 </dev/null
rc=$?
echo "$rc" > /kshare/rc.tmp
up > /kshare/finished
$B dmesg > /kshare/dmesg.log 2>&1
$B mv /kshare/rc.tmp /kshare/rc
echo "stage2: guest script rc=$rc up $(up)s, powering off"
$B sync
echo o > /proc/sysrq-trigger
$B sleep 60
EOF

# --- qemu -------------------------------------------------------------------------
# shellcheck disable=SC2054  # commas are qemu's
QEMU=(qemu-system-x86_64 -machine q35 -cpu max -smp "${BOOT_SMP:-2}" -m "${BOOT_MEM:-4096}"
	-kernel "$KDIR/vmlinuz" -initrd "$INITRD"
	-append "console=ttyS0 quiet panic=-1 ${BOOT_APPEND:-}"
	-display none -vga none -monitor none -serial "file:$OUT/console.log"
	-no-reboot -nic none
	-fsdev "local,id=r,path=/,security_model=none,readonly=on,multidevs=remap"
	-device virtio-9p-pci,fsdev=r,mount_tag=hostroot
	-fsdev "local,id=m,path=$KDIR/modules,security_model=none,readonly=on"
	-device virtio-9p-pci,fsdev=m,mount_tag=kmods
	-fsdev "local,id=k,path=$SHARE,security_model=none"
	-device virtio-9p-pci,fsdev=k,mount_tag=kshare
	-pidfile "$OUT/qemu.pid")

log "booting (timeout ${TIMEOUT}s), console: $OUT/console.log"
T0=$(date +%s.%N)
rm -f "$OUT/qemu.pid"
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$OUT/qemu.log" 2>&1 &
TPID=$!
# shellcheck disable=SC2317  # called by the trap
stop() { # kill only the qemu we started (via its pidfile), else our timeout
	local q
	q=$(cat "$OUT/qemu.pid" 2>/dev/null || true)
	if [ -n "$q" ] && [ "$(cat /proc/"$q"/comm 2>/dev/null)" = qemu-system-x86 ]; then
		kill "$q" 2>/dev/null || true
	else
		kill "$TPID" 2>/dev/null || true
	fi
	wait "$TPID" 2>/dev/null || true
	exit 130
}
trap stop INT TERM HUP
QRC=0
wait "$TPID" || QRC=$?
trap - INT TERM HUP
T1=$(date +%s.%N)
rm -f "$OUT/qemu.pid"

[ -f "$SHARE/out.log" ] && cp "$SHARE/out.log" "$OUT/out.log"
[ -f "$SHARE/rc" ] && cp "$SHARE/rc" "$OUT/rc"
[ -f "$SHARE/dmesg.log" ] && cp "$SHARE/dmesg.log" "$OUT/dmesg.log"
total=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
boot=$(cat "$SHARE/started" 2>/dev/null || echo -)
fin=$(cat "$SHARE/finished" 2>/dev/null || echo -)
script=-
[ "$boot" != - ] && [ "$fin" != - ] && script=$(awk -v a="$boot" -v b="$fin" 'BEGIN { printf "%.1f", b - a }')
printf 'version=%s boot_to_script=%s script=%s total=%s qemu_rc=%s\n' \
	"$VER" "$boot" "$script" "$total" "$QRC" > "$OUT/times"

if [ -s "$OUT/rc" ]; then
	RC=$(cat "$OUT/rc")
	log "guest script rc=$RC (boot ${boot}s, script ${script}s, total ${total}s)"
elif [ "$QRC" -eq 124 ] || [ "$QRC" -eq 137 ]; then
	RC=124
	log "timed out after ${TIMEOUT}s (total ${total}s); see $OUT/console.log"
else
	RC=125
	if [ -f "$SHARE/started" ]; then
		log "guest died while running the script (qemu rc=$QRC); see $OUT/console.log"
	else
		log "guest never ran the script (qemu rc=$QRC); see $OUT/console.log $OUT/qemu.log"
	fi
fi
exit "$RC"
