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
