#!/bin/sh
# net-fallbacks.sh -- a guest script for scripts/kernels/boot.sh: on the
# booted kernel, measure ping's RTT under delays made by netem and, with
# FAULTD_NO_NETEM=1, by NFQUEUE; then run the link-fault tests (packet
# faults go through tc clsact where the kernel has no tcx). Run it from the
# repo root, e.g.:
#   scripts/kernels/boot.sh build/kernels/bookworm tests/kernels/net-fallbacks.sh OUT
# Env: FAULTD_BUILD (build), NO_PYTEST (skip the tests), PYTEST_K (their -k).
set -u
B=${FAULTD_BUILD:-build}
T=$(mktemp -d /tmp/fdnet-XXXXXX)
echo "kernel $(uname -r)"
unshare -n tc qdisc add dev lo root netem delay 0ms && echo "netem: yes" || echo "netem: no"
lsmod | grep -E "netem|cls_bpf|ingress" || true

measure() { # NAME DIRECTION DELAY JITTER [ENV...]
	name=$1 dir=$2 delay=$3 jit=$4
	shift 4
	/usr/bin/python3 - "$T/$name.json" "$dir" "$delay" "$jit" <<'PY'
import json, sys
path, d, delay, jit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
doc = {"name": "delay", "seed": 3, "duration_s": 30,
       "topology": {"namespaces": ["c", "s"],
                    "links": [{"name": "l0", "type": "veth", "a": "c", "b": "s"}]},
       "workloads": [{"name": "pinger", "kind": "exec", "netns": "c",
                      "cmd": ["ping", "-D", "-U", "-n", "-c", "40", "-i", "0.05", "198.18.0.2"]}],
       "faults": [{"type": "delay", "link": "l0", "delay_ms": delay, "jitter_ms": jit,
                   "direction": d}],
       "invariants": [{"name": "no_crash"}, {"name": "exit_ok"}]}
open(path, "w").write(json.dumps(doc))
PY
	env "$@" $B/faultctl --runs-dir "$T/runs-$name" --log-level info run --local --quiet "$T/$name.json" \
		> "$T/$name.log" 2>&1
	echo "== $name ($dir $delay±$jit ms, env: $*): exit $?"
	grep -E "netdelay__open|nd_open_mech|nd_netem|error|warn" "$T/$name.log" | head -8
	/usr/bin/python3 - "$T/runs-$name" <<'PY'
import json, re, sys, pathlib
runs = pathlib.Path(sys.argv[1])
rd = next(d for d in runs.iterdir() if d.is_dir())
rep = json.loads((rd / "report.json").read_text())
out = (rd / "pinger.stdout").read_text()
pairs = [(int(s), float(t)) for s, t in re.findall(r"icmp_seq=(\d+) .*time=([\d.]+) ms", out)]
rtts = [t for s, t in pairs]
rest = sorted(t for s, t in pairs if s > 1)
print("verdict", rep["verdict"], "replies", len(rtts), "first %.1f" % pairs[0][1] if pairs else "",
      "rest: avg %.1f median %.1f min %.1f max %.1f" % (sum(rest) / len(rest), rest[len(rest) // 2], rest[0], rest[-1]) if rest else "no replies")
print("packet_stats", json.dumps(rep.get("packet_stats")))
print("capabilities", json.dumps(rep.get("capabilities")))
PY
}

measure base egress 0 0
measure eg50 egress 50 0
measure in50 ingress 50 0
measure both50 both 50 0
measure eg50j10 egress 50 10
measure eg50-nfq egress 50 0 FAULTD_NO_NETEM=1
measure in50-nfq ingress 50 0 FAULTD_NO_NETEM=1
measure both50-nfq both 50 0 FAULTD_NO_NETEM=1
measure eg50j10-nfq egress 50 10 FAULTD_NO_NETEM=1
measure eg200 egress 200 0

[ -n "${NO_PYTEST:-}" ] && exit 0
echo "== pytest"
FAULTD_BUILD=$B timeout 1800 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_faults.py \
	-k "${PYTEST_K:-delay or packet or blackhole or tcx or tc_filters or kill_9 or rate}" \
	> "$T/pytest.log" 2>&1
rc=$?
tail -60 "$T/pytest.log"
echo "== done: pytest rc=$rc"
exit $rc
