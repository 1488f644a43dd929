#!/bin/sh
# Install the Debian packages faultd needs to build and test, and nothing when
# they are all present already. Idempotent; quiet on the fast path.
set -eu

PKGS="gcc make pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
libevent-dev libjansson-dev libssl-dev liburing-dev systemtap-sdt-dev
libdw-dev libnl-3-dev libnl-route-3-dev iproute2 procps liblwip-dev
iptables libnetfilter-queue-dev libmnl-dev iputils-ping chromium libdpdk-dev
iperf3 curl python3-pytest python3-jsonschema python3-pytest-timeout python3-pytest-xdist
libsystemd-dev scdoc debhelper dpkg-dev man-db bash-completion prometheus libxml2-utils
libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev libfuzzer-14-dev libclang-rt-14-dev"
# npm installs the schemas the tests use (scripts/ext-schemas.sh). Debian's
# npm unless one is on PATH already: NodeSource's nodejs ships its own npm
# and conflicts with Debian's.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The tests need promtool only: Debian's prometheus package also enables a
# Prometheus server (listening on every address); faultd does not want it.
case "$missing" in
*prometheus*)
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	fi ;;
esac
