#!/bin/sh
# Install the Debian packages faultd needs to build and test, and nothing when
# they are all present already. Idempotent; quiet on the fast path.
set -eu

PKGS="gcc make pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
libevent-dev libjansson-dev libssl-dev liburing-dev systemtap-sdt-dev
libdw-dev libnl-3-dev libnl-route-3-dev iproute2 procps liblwip-dev
iptables libnetfilter-queue-dev libmnl-dev iputils-ping chromium libdpdk-dev
python3-pytest python3-jsonschema python3-pytest-timeout libfuzzer-14-dev libclang-rt-14-dev"

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
