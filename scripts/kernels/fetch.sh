#!/bin/sh
# fetch.sh SUITE OUTDIR -- download a Debian kernel for `make test-kernels`.
# Owns: OUTDIR (vmlinuz, version, package, config, modules/<version>/, root/,
# and a private apt state under OUTDIR/apt that is removed after success).
# SUITE is bullseye | bookworm | trixie. Picks the newest
# linux-image-<abi>-amd64-unsigned package of that suite, never installs it:
# it is only unpacked with `dpkg -x`. Idempotent: OUTDIR/version is written
# last, and if it exists nothing is done. The archive URI and keyring come from
# this machine's /etc/apt/sources.list.d/debian.sources (no host name here).
# Also installs the host packages the kernel runner needs (qemu, busybox...).
set -eu

usage() { echo "usage: $0 bullseye|bookworm|trixie OUTDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
SUITE=$1
case "$SUITE" in bullseye|bookworm|trixie) ;; *) usage ;; esac
mkdir -p "$2"
OUT=$(cd "$2" && pwd)

if [ -s "$OUT/version" ]; then
	exit 0
fi

log() { echo "fetch[$SUITE]: $*" >&2; }

# --- host packages needed by fetch.sh and boot.sh ----------------------------
HOST_PKGS="qemu-system-x86 busybox-static cpio kmod xz-utils"
missing=""
for p in $HOST_PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "missing packages:$missing (run as root to install them)"
		exit 1
	fi
	log "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- private apt state --------------------------------------------------------
SRC=/etc/apt/sources.list.d/debian.sources
[ -r "$SRC" ] || { log "cannot read $SRC"; exit 1; }
# First enabled deb stanza that is not the security archive: its first URI and
# its Signed-By keyring file.
# shellcheck disable=SC2046  # two words wanted
set -- $(awk 'BEGIN { RS = ""; FS = "\n" }
{
	uri = ""; sb = ""; su = ""; ty = ""; en = "yes"
	for (i = 1; i <= NF; i++) {
		l = $i
		if (l ~ /^#/) continue
		if (l ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", l); split(l, a, /[ \t]+/); uri = a[1] }
		else if (l ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", l); sb = l }
		else if (l ~ /^Suites:/)    { su = l }
		else if (l ~ /^Types:/)     { ty = l }
		else if (l ~ /^Enabled:/)   { en = tolower(l) }
	}
	if (uri != "" && uri !~ /security/ && su !~ /-security/ &&
	    ty ~ /[ \t]deb([ \t]|$)/ && en !~ /no/) { print uri, sb; exit }
}' "$SRC")
URI=${1:-}
KEYRING=${2:-}
[ -n "$URI" ] || { log "no main archive URIs: line in $SRC"; exit 1; }
signed=""
if [ -n "$KEYRING" ] && [ -r "$KEYRING" ]; then
	signed=" signed-by=$KEYRING"
fi

rm -rf "$OUT/apt" "$OUT/root" "$OUT/modules"
A=$OUT/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
echo "deb [arch=amd64$signed] $URI $SUITE main" > "$A/sources.list"
# A private config file (read after /etc/apt/apt.conf.d, so it wins): private
# lists and cache, no translations, and no update hooks (the system's
# appstream refresh must not run against our private lists).
cat > "$A/apt.conf" <<EOF
Dir::Etc::sourcelist "$A/sources.list";
Dir::Etc::sourceparts "/nonexistent";
Dir::State::Lists "$A/lists";
Dir::Cache "$A/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Sandbox::User "root";
#clear APT::Update::Post-Invoke-Success;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Pre-Invoke;
EOF
export APT_CONFIG="$A/apt.conf"
papt() {
	# the -o options repeat the config file, so either alone would do
	apt-get -o Dir::Etc::sourcelist="$A/sources.list" \
		-o Dir::Etc::sourceparts=/nonexistent \
		-o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" "$@"
}

log "apt-get update ($SUITE main)"
papt -qq update >&2

# Newest <version>-<abi>-amd64-unsigned (bullseye/bookworm: 6.1.0-NN;
# trixie: 6.12.NN+deb13). Excludes -rt-, -cloud-, and the dbg packages.
PKG=$(apt-cache pkgnames linux-image- |
	grep -E '^linux-image-[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9]+|\+deb[0-9]+)?-amd64-unsigned$' |
	while read -r p; do
		# keep only real packages (with a candidate version)
		if apt-cache show "$p" >/dev/null 2>&1; then echo "$p"; fi
	done | sort -V | tail -n 1)
[ -n "$PKG" ] || { log "no linux-image-*-amd64-unsigned in $SUITE"; exit 1; }
log "downloading $PKG"
(cd "$A/debs" && papt -qq download "$PKG" >&2)
DEB=$(ls "$A/debs"/*.deb | head -n 1)

log "unpacking $(basename "$DEB")"
dpkg -x "$DEB" "$OUT/root"

VMLINUZ=$(ls "$OUT/root/boot"/vmlinuz-* | head -n 1)
VER=${VMLINUZ##*/vmlinuz-}
cp "$VMLINUZ" "$OUT/vmlinuz"
[ -f "$OUT/root/boot/config-$VER" ] && cp "$OUT/root/boot/config-$VER" "$OUT/config"

# Modules: lib/modules (<= bookworm) or usr/lib/modules (trixie). depmod -b
# wants BASE/lib/modules/VER with the host's kmod, so put them there first.
if [ ! -d "$OUT/root/lib/modules/$VER" ] && [ -d "$OUT/root/usr/lib/modules/$VER" ]; then
	mkdir -p "$OUT/root/lib/modules"
	mv "$OUT/root/usr/lib/modules/$VER" "$OUT/root/lib/modules/$VER"
fi
[ -d "$OUT/root/lib/modules/$VER" ] || { log "no modules for $VER in $PKG"; exit 1; }
if [ -f "$OUT/root/boot/System.map-$VER" ]; then
	depmod -b "$OUT/root" -F "$OUT/root/boot/System.map-$VER" "$VER"
else
	depmod -b "$OUT/root" "$VER"
fi
mkdir -p "$OUT/modules"
mv "$OUT/root/lib/modules/$VER" "$OUT/modules/$VER"

dpkg-deb -f "$DEB" Package Version > "$OUT/package"
rm -rf "$A"
echo "$VER" > "$OUT/version"
log "kernel $VER ready in $OUT"
