#!/bin/sh
# make soak-smoke (not in CI): faultd as a daemon, the clean scenarios run
# over and over through it for SOAK_MINUTES (30), faultd's RSS sampled every
# minute twice: as it is (mid-run: the run's working set, which depends on
# which scenario is running) and as it was when the last run had finished
# and none was running (rss_idle_bytes: what faultd keeps between runs).
# Passes when that kept memory grew at most 1 MiB over the last 20 minutes
# and the runs directory stayed bounded. Prints the samples;
# docs/benchmarks.md records them.
set -eu
B=${FAULTD_BUILD:-build}
MIN=${SOAK_MINUTES:-30}
W=$(mktemp -d /tmp/faultd-soak.XXXXXX)
# SOAK_SCENARIOS: the files or directories to soak (default: the clean set).
SCEN=${SOAK_SCENARIOS:-"scenarios/exec-pass.json scenarios/echo-loopback.json scenarios/flap-recovers.json
scenarios/lwip-flap.json scenarios/msgq.json scenarios/qpair.json"}

"$B/faultd" --socket "$W/s.sock" --runs-dir "$W/runs" --log-level warn \
	--http 127.0.0.1:0 >"$W/faultd.log" 2>&1 &
FD=$!
trap 'kill "$FD" 2>/dev/null || true; wait "$FD" 2>/dev/null || true' EXIT
i=0
while [ ! -S "$W/s.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# shellcheck disable=SC2086
"$B/faultctl" --socket "$W/s.sock" soak --duration "${MIN}m" --keep 10 \
	--summary "$W/summary.json" --junit "$W/soak.xml" $SCEN >"$W/soak.out" 2>&1 &
SOAK=$!
echo "minute rss_kb idle_rss_kb runs_dirs"
m=0
while kill -0 "$SOAK" 2>/dev/null; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$FD/status")
	idle=$("$B/faultctl" --socket "$W/s.sock" status 2>/dev/null |
		sed -n 's/.*"rss_idle_bytes": *\([0-9]*\).*/\1/p')
	idle=$(( ${idle:-0} / 1024 ))
	dirs=$(find "$W/runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
	echo "$m $rss $idle $dirs" | tee -a "$W/rss"
	sleep 60
	m=$((m + 1))
done
wait "$SOAK" || true
tail -n 12 "$W/soak.out"
awk -v min="$MIN" '$1 == min - 20 { base = $2; ibase = $3 }
	$1 >= min - 20 { lo = lo == "" || $2 < lo ? $2 : lo; hi = $2 > hi ? $2 : hi
			 n++; sx += $1; sy += $3; sxx += $1 * $1; sxy += $1 * $3 }
	{ last = $2; ilast = $3; maxd = $4 > maxd ? $4 : maxd }
	END { growth = ilast - ibase
	      printf "rss over the last 20 minutes: %+d kB sample to sample (range %d..%d kB, mid-run)\n", last - base, lo, hi
	      slope = n > 1 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
	      printf "kept between runs, over the last 20 minutes: %+d kB (limit 1024 kB; least-squares trend %+.0f kB); run dirs at most %d\n", growth, slope * 20, maxd
	      exit growth > 1024 || maxd > 11 }' "$W/rss"
