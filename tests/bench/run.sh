#!/bin/sh
# make bench: every ratio is measured side by side in this one run, on the
# same binaries. Results go to stdout; docs/benchmarks.md records them with
# this command.
set -eu
B=${FAULTD_BUILD:-build}/tests/bench
N=${BENCH_PAIRS:-1000000}

nsper() { awk '/ns\/pair/ { for (i = 1; i <= NF; i++) if ($i == "ns/pair") print $(i-1) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0fx", a / b }'; }
# BENCH_ONLY="heap leak fixed setup kept fds flaps lwip queues dpdk" picks sections; empty: all.
want() { [ -z "${BENCH_ONLY:-}" ] || case " $BENCH_ONLY " in *" $1 "*) true ;; *) false ;; esac; }
ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

if want heap; then
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
# The floor moves with the machine's kernel entry cost (page-table isolation,
# a hypervisor): printed in the same run, so tables from two machines compare.
"$B/kernel_entry" 1000000
echo
fi
if want leak; then
echo "== no_leak: the check at exit for 100 MB of live heap (1 KiB blocks, 1 in 10 leaked)"
T=$(mktemp -d)
# The same source, built with ASan: LeakSanitizer's own check at exit.
${CC:-cc} -O2 -g -fsanitize=address tests/bench/leak_heap.c -o "$T/leak_heap_asan"
MB=${BENCH_LEAK_MB:-100}
printf '%-34s %14s\n' "" "exit check ms"
for i in 1 2 3; do
	fd=$("$B/leak_bench" "$B/leak_heap" "$MB" 1024 10 | awk '{print $2}')
	ls=$(LSAN_OPTIONS=exitcode=0 "$B/leak_bench" --plain "$T/leak_heap_asan" "$MB" 1024 10 \
		2>/dev/null | awk '{print $2}')
	un=$("$B/leak_bench" --plain "$B/leak_heap" "$MB" 1024 10 | awk '{print $2}')
	printf '%-34s %14s\n' "faultd no_leak scan (run $i)" "$fd" "LeakSanitizer, -fsanitize=address" \
		"$ls" "unprobed exit (no check)" "$un"
	printf '%-34s %14s\n' "faultd / LeakSanitizer" "$(ratio2 "$fd" "$ls")"
done
echo "(faultd: the held process's writable memory read with process_vm_readv and scanned;"
echo " LeakSanitizer: from the program's exit() to its end, report included)"
rm -rf "$T"
fi

if want fixed; then
echo "== a run's fixed cost: a program that exits at once"
/usr/bin/python3 tests/bench/fixed_cost.py "${FAULTD_BUILD:-build}" "${BENCH_FIXED_RUNS:-10}"
echo
fi
if want setup; then
echo "== other runs' set-ups beside a run's faults: run threads niced for set-up or not"
/usr/bin/python3 tests/bench/setup_nice.py "${FAULTD_BUILD:-build}" "${BENCH_SETUP_ROUNDS:-5}"
echo
fi
if want kept; then
echo "== what faultd keeps between runs: its malloc tuning or glibc's thresholds, side by side"
/usr/bin/python3 tests/bench/kept_memory.py "${FAULTD_BUILD:-build}" "${BENCH_KEPT_ROUNDS:-3}"
echo
fi
if want fds; then
echo "== fd snapshot"
"$B/fd_snapshot" 10000
echo
fi
if want flaps; then
echo "== link flaps (faultd's topology code; veth in two namespaces)"
"$B/flap_bench" "${BENCH_FLAP_SECONDS:-60}"
fi
F=${FAULTD_BUILD:-build}/faultctl
if want lwip; then
echo
echo "== incident 2: detection of the lwIP socket-slot leak (scenarios/lwip-flap-vendor-bug.json)"
R=$(mktemp -d)
"$F" --runs-dir "$R" run --local --quiet --json "$R/out.json" scenarios/lwip-flap-vendor-bug.json \
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
fi
if want queues; then
echo
echo "== queue workloads: throughput unprobed, under faultd with every probe, under valgrind"
H=${FAULTD_BUILD:-build}/harness
S=${BENCH_QUEUE_SECONDS:-10}
T=$(mktemp -d)
# field NAME from the summary line a workload prints at exit
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | tail -1; }
under_faultd() {	# kind, field, args...: the figure with heap, fds, lifecycle probes on
	kind=$1; fld=$2; shift 2
	args=""
	for a in "$@"; do args="$args\"$a\", "; done
	cat > "$T/s.json" <<JSON
{"name": "bench-$kind", "duration_s": $((S + 2)),
 "workloads": [{"name": "w", "kind": "$kind", "args": [$args"--duration-s", "$S"],
                "probes": ["heap", "fds", "lifecycle"]}],
 "invariants": [{"name": "no_crash"}]}
JSON
	"$F" --runs-dir "$T/runs" run --local --quiet "$T/s.json" >/dev/null 2>&1 || true
	cat "$T"/runs/*/w.stdout | field "$fld"
	rm -rf "$T/runs"
}
printf '%-30s %12s %12s %12s %14s %14s\n' workload unprobed faultd valgrind faultd/unpr valgrind/unpr
for mode in "default rate" "flat out"; do
	if [ "$mode" = "flat out" ]; then mr="--rate 0"; qr="--iops 0"; else mr=""; qr=""; fi
	# shellcheck disable=SC2086
	un=$("$H/msgq" $mr --duration-s "$S" | field msgs_per_s)
	# shellcheck disable=SC2086
	fd=$(under_faultd msgq msgs_per_s $mr)
	# shellcheck disable=SC2086
	vg=$(valgrind -q "$H/msgq" $mr --duration-s "$S" 2>/dev/null | field msgs_per_s)
	printf '%-30s %12s %12s %12s %14s %14s\n' "msgq msgs/s, $mode" "$un" "$fd" "$vg" \
		"$(ratio2 "$un" "$fd")" "$(ratio2 "$un" "$vg")"
	# shellcheck disable=SC2086
	un=$("$H/qpair" $qr --duration-s "$S" | field iops)
	# shellcheck disable=SC2086
	fd=$(under_faultd qpair iops $qr)
	# shellcheck disable=SC2086
	vg=$(valgrind -q "$H/qpair" $qr --duration-s "$S" 2>/dev/null | field iops)
	printf '%-30s %12s %12s %12s %14s %14s\n' "qpair IOPS, $mode" "$un" "$fd" "$vg" \
		"$(ratio2 "$un" "$fd")" "$(ratio2 "$un" "$vg")"
done
echo "(ratios: unprobed throughput / throughput under it; 1.00x is no slowdown)"
rm -rf "$T"
fi
if want dpdk; then
echo
echo "== incident 1's client: WebSocket messages/s over TLS, lwIP and DPDK, probes off vs on"
T=$(mktemp -d)
S=${BENCH_DPDK_SECONDS:-10}
dpdk_run() {	# rate, probes (JSON list): verified messages/s
	/usr/bin/python3 - "$1" "$2" "$S" "$T/s.json" <<'PY'
import json, sys
rate, probes, secs, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = json.load(open("scenarios/dpdk-ws-flap.json"))
d["duration_s"] = secs + 4
d["faults"] = []
d["invariants"] = [{"name": "no_crash"}]
d["workloads"][0]["args"] = ["--bind", "198.18.0.2", "--port", "8443"]
d["workloads"][1]["args"] += ["--rate", rate, "--duration-s", str(secs)]
d["workloads"][1]["probes"] = probes
json.dump(d, open(out, "w"))
PY
	"$F" --runs-dir "$T/runs" run --local --quiet "$T/s.json" >/dev/null 2>&1 || true
	sed -n 's/.*stopping:.* messages=\([0-9]*\).*/\1/p' "$T"/runs/*/client.stdout | \
		awk -v s="$S" '{ printf "%.0f", $1 / s }'
	rm -rf "$T/runs"
}
printf '%-28s %12s %12s %12s\n' "offered rate" "probes off" "probes on" "off/on"
for rate in 200 1000 0; do
	off=$(dpdk_run "$rate" '[]')
	on=$(dpdk_run "$rate" '["heap", "fds", "lifecycle"]')
	label="$rate msgs/s"
	[ "$rate" = 0 ] && label="flat out (--rate 0)"
	printf '%-28s %12s %12s %12s\n' "$label" "$off" "$on" "$(ratio2 "$off" "$on")"
done
echo "(verified echoes per second over ${S} s; probes on: heap, fds, lifecycle)"
rm -rf "$T"
fi
