#!/bin/sh
# make bench: every ratio is measured side by side in this one run, on the
# same binaries. Results go to stdout; docs/benchmarks.md records them with
# this command.
set -eu
B=${FAULTD_BUILD:-build}/tests/bench
N=${BENCH_PAIRS:-1000000}

nsper() { awk '/ns\/pair/ { for (i = 1; i <= NF; i++) if ($i == "ns/pair") print $(i-1) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0fx", a / b }'; }

echo "== heap probe: $N pairs per mode, ns per malloc+free pair (same binary)"
printf '%-10s %10s %10s %10s %10s %10s %12s %12s\n' workload unprobed trap-only faultd valgrind \
	"" faultd/unpr valgrind/unpr
for mode in "" --mixed --compute; do
	name=${mode:-malloc64}; name=${name#--}
	un=$("$B/malloc_loop" "$N" $mode | nsper)
	trap=$("$B/heap_bench" --trap-only "$B/malloc_loop" "$N" $mode 2>/dev/null | nsper)
	fd=$("$B/heap_bench" "$B/malloc_loop" "$N" $mode 2>/dev/null | nsper)
	if command -v valgrind >/dev/null 2>&1; then
		vg=$(valgrind --tool=memcheck -q "$B/malloc_loop" "$N" $mode 2>/dev/null | nsper)
	else
		vg=0
	fi
	printf '%-10s %10s %10s %10s %10s %10s %12s %12s\n' "$name" "$un" "$trap" "$fd" "$vg" "" \
		"$(ratio "$fd" "$un")" "$(ratio "$vg" "$un")"
done
echo "(trap-only: the probes attached, their programs returning at once: the cost of"
echo " three uprobe traps per pair, malloc entry + malloc return + free, that no BPF"
echo " code can go below)"
echo
echo "== fd snapshot"
"$B/fd_snapshot" 10000
echo
echo "== link flaps (faultd's topology code; veth in two namespaces)"
"$B/flap_bench" "${BENCH_FLAP_SECONDS:-60}"
echo
echo "== incident 2: detection of the lwIP socket-slot leak (scenarios/lwip-flap-vendor-bug.json)"
F=${FAULTD_BUILD:-build}/faultctl
R=$(mktemp -d)
"$F" run --local --quiet --runs-dir "$R" --json "$R/out.json" scenarios/lwip-flap-vendor-bug.json \
	>/dev/null 2>&1 || true
/usr/bin/python3 - "$R/out.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
rep = rep[0] if isinstance(rep, list) else rep
flap_start = next(f["t_actual_ms"] for f in rep["faults"] if f["action"] == "link_down")
for inv in rep["invariants"]:
    if inv["name"] == "sockets_stable":
        ev = inv["evidence"][0]
        print(f"{ev['series']:12s} detected at cycle {inv['first_violation_cycle']} "
              f"({(inv['first_violation_ms'] - flap_start) / 1000:.1f} s after the first flap); "
              f"table full at cycle {ev.get('limit_reached_cycle')}; "
              f"slope when found {ev.get('slope_when_found_per_cycle', 0):.2f}/cycle")
    if inv["name"] == "recovers":
        print(f"recovers     {inv['verdict']} from cycle {inv.get('first_violation_cycle')}: "
              f"{inv['summary'][:90]}")
PY
rm -rf "$R"
