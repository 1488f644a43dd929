#!/bin/sh
# make soak-smoke (not in CI): faultd as a daemon, the clean scenarios run
# over and over through it for SOAK_MINUTES (30), faultd's RSS sampled every
# minute: as it is (mid-run: the run's working set, which depends on which
# scenario is running) and as it was when the last run had finished and
# none was running (rss_idle_bytes: what faultd keeps between runs), with
# that figure's anonymous part (rss_anon_idle_bytes: faultd's own heap and
# stacks, without its libraries' file pages).
# Passes when the kept memory's least-squares trend from minute 10 (a third
# of the soak if shorter than 30 minutes) to the end is at most 1 MiB/h and the runs directory stayed bounded. Prints the
# samples and the trends; docs/benchmarks.md records them.
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
echo "minute rss_kb idle_rss_kb runs_dirs idle_anon_kb idle_heap_kb"
m=0
while kill -0 "$SOAK" 2>/dev/null; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$FD/status")
	st=$("$B/faultctl" --socket "$W/s.sock" status 2>/dev/null || true)
	idle=$(echo "$st" | sed -n 's/.*"rss_idle_bytes": *\([0-9]*\).*/\1/p')
	anon=$(echo "$st" | sed -n 's/.*"rss_anon_idle_bytes": *\([0-9]*\).*/\1/p')
	heap=$(echo "$st" | sed -n 's/.*"heap_in_use_idle_bytes": *\([0-9]*\).*/\1/p')
	heap=$(( ${heap:-0} / 1024 ))
	idle=$(( ${idle:-0} / 1024 ))
	anon=$(( ${anon:-0} / 1024 ))
	dirs=$(find "$W/runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
	echo "$m $rss $idle $dirs $anon $heap" | tee -a "$W/rss"
	sleep 60
	m=$((m + 1))
done
wait "$SOAK" || true
tail -n 12 "$W/soak.out"
# Trends are least-squares slopes over minutes 10 to the end, in kB/h.
awk -v min="$MIN" 'BEGIN { from = min >= 30 ? 10 : int(min / 3) }
	function slope(n, sx, sy, sxx, sxy) {
		return n > 1 && n * sxx != sx * sx ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60 : 0 }
	$1 == (min > 20 ? min - 20 : 0) { base = $2; ibase = $3; abase = $5 }
	$1 >= min - 20 { lo = lo == "" || $2 < lo ? $2 : lo; hi = $2 > hi ? $2 : hi }
	$1 >= from && $3 > 0 { n++; sx += $1; sy += $3; sa += $5; sxx += $1 * $1
			     sxy += $1 * $3; sxa += $1 * $5; sh += $6; sxh += $1 * $6
			     ilo = ilo == "" || $3 < ilo ? $3 : ilo; ihi = $3 > ihi ? $3 : ihi
			     alo = alo == "" || $5 < alo ? $5 : alo; ahi = $5 > ahi ? $5 : ahi }
	{ last = $2; ilast = $3; alast = $5; maxd = $4 > maxd ? $4 : maxd }
	END { printf "rss over the last 20 minutes: %+d kB sample to sample (range %d..%d kB, mid-run)\n", last - base, lo, hi
	      printf "kept between runs over the last 20 minutes, sample to sample: %+d kB (anonymous %+d kB)\n", ilast - ibase, alast - abase
	      t = slope(n, sx, sy, sxx, sxy); a = slope(n, sx, sa, sxx, sxa); h = slope(n, sx, sh, sxx, sxh)
	      printf "kept between runs from minute %d (%d samples): trend %+.0f kB/h (limit 1024), range %d..%d kB; anonymous trend %+.0f kB/h, range %d..%d kB; malloc in use, trend %+.0f kB/h; run dirs at most %d\n", from, n, t, ilo, ihi, a, alo, ahi, h, maxd
	      exit n < 2 || t > 1024 || maxd > 11 }' "$W/rss"
