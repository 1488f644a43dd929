#!/bin/bash
# test-kernels.sh [GUEST_SCRIPT] -- `make test-kernels`: run a guest script on
# Debian's own kernels under qemu and print a matrix of the results.
# Owns: build/kernels/<suite>/ (fetch.sh: the kernel; boot.sh: initrd and
# out/ with console.log, out.log, rc, times) and build/kernels/summary.txt.
# GUEST_SCRIPT defaults to scripts/kernels/guest-smoke.sh; it runs as root in
# the guest from the repo root. Lines it prints as `MATRIX key=value...` (or
# `MATRIX key value...`) become one row per key, one column per kernel.
# Env: KERNELS (default "bullseye bookworm trixie"), KERNELS_ALLOW_FAIL
# (suites whose failure is reported but does not fail the run),
# KERNELS_TIMEOUT (seconds per boot, default 1200), KERNELS_PARALLEL (set:
# boot the kernels side by side, each's output prefixed by its suite), plus
# boot.sh's BOOT_*.
# Exit 0 only if every kernel not in KERNELS_ALLOW_FAIL returned 0.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
GUEST=${1:-$ROOT/scripts/kernels/guest-smoke.sh}
case "$GUEST" in /*) ;; *) GUEST=$(pwd -P)/$GUEST ;; esac
[ -r "$GUEST" ] || { echo "test-kernels: cannot read $GUEST" >&2; exit 2; }
KERNELS=${KERNELS:-"bullseye bookworm trixie"}
ALLOW=" ${KERNELS_ALLOW_FAIL:-} "
TMO=${KERNELS_TIMEOUT:-1200}
BASE=$ROOT/build/kernels
cd "$ROOT"
mkdir -p "$BASE"
export KERNEL_SUITE=""
export BOOT_ENV="${BOOT_ENV:-} KERNEL_SUITE"
# the host's faultd state (runs, journals) is not the guest's business
export BOOT_TMPFS="${BOOT_TMPFS-/var/lib/faultd}"

now() { date +%s.%N; }
# table: '|'-separated lines -> aligned columns (no dependency on column(1))
table() {
	awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
		if (NF > nf) nf = NF; nr = NR }
		END { for (r = 1; r <= nr; r++) { line = ""
			for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", c[r, i])
			print line } }'
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

fail=0
# shellcheck disable=SC2317  # called by the trap
interrupted() {
	local f
	for f in "$BASE"/*.boot; do	# each boot.sh ends the qemu it started
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	echo "test-kernels: interrupted" >&2
	exit 130
}
trap interrupted INT TERM HUP
SUMMARY=""
MATRIXES=$(mktemp)
trap 'rm -f "$MATRIXES"' EXIT

# One boot of the guest, its boot.sh's pid kept for the trap.
boot() {
	scripts/kernels/boot.sh "$2" "$GUEST" "$2/out" "$TMO" &
	echo $! > "$BASE/$1.boot"
	wait "$!"
}

# One kernel: fetch, boot (again after a guest panic), and its summary row,
# matrix lines and failure in $BASE/SUITE.{row,matrix,fail}.
one_kernel() {
	local s=$1 dir t0 t1 rc ver fsec bsec boot script note
	KERNEL_SUITE=$s
	dir=$BASE/$s
	echo "=== $s" >&2
	t0=$(now)
	rc=0
	ver=-
	fsec=-
	bsec=-
	boot=-
	script=-
	if scripts/kernels/fetch.sh "$s" "$dir"; then
		t1=$(now)
		fsec=$(secs "$t0" "$t1")
		ver=$(cat "$dir/version")
		boot "$s" "$dir" || rc=$?
		[ "$rc" = 130 ] && { echo "test-kernels: interrupted" >&2; exit 130; }
		# A guest kernel that panics before `faultctl check` has told
		# anything, or on an int3 of its own live code patch at any
		# point (6.12, in __schedule while a perf event enabled a static
		# key: qemu's multi-threaded TCG and cross-modifying code, twice
		# so far), is booted once more; the matrix says so. A second
		# panic fails as any boot does.
		if [ "$rc" != 0 ] && grep -q 'Kernel panic' "$dir/out/console.log" 2>/dev/null &&
		   { ! grep -q '^MATRIX check\.' "$dir/out/out.log" 2>/dev/null ||
		     grep -q 'Oops: int3' "$dir/out/console.log"; }; then
			echo "test-kernels: $s: the guest kernel panicked (before faultctl check" \
			     "told anything, or on an int3 of a code patch; console:" \
			     "$dir/console.panic.log); booting it again" >&2
			cp "$dir/out/console.log" "$dir/console.panic.log"
			rc=0
			boot "$s" "$dir" || rc=$?
			[ "$rc" = 130 ] && { echo "test-kernels: interrupted" >&2; exit 130; }
			echo "MATRIX boot.retried_after_guest_panic=1" >> "$dir/out/out.log"
		fi
		bsec=$(secs "$t1" "$(now)")
		boot=$(sed -n 's/.*boot_to_script=\([^ ]*\).*/\1/p' "$dir/out/times" 2>/dev/null || true)
		script=$(sed -n 's/.* script=\([^ ]*\).*/\1/p' "$dir/out/times" 2>/dev/null || true)
		[ -f "$dir/out/out.log" ] && grep '^MATRIX ' "$dir/out/out.log" |
			sed "s/^MATRIX /$s /" > "$BASE/$s.matrix" || true
	else
		rc=$?
		echo "test-kernels: fetch $s failed (rc=$rc)" >&2
		rc="fetch:$rc"
	fi
	note=""
	echo 0 > "$BASE/$s.fail"
	if [ "$rc" != 0 ]; then
		case "$ALLOW" in
		*" $s "*) note="(allowed)" ;;
		*) note="FAIL"; echo 1 > "$BASE/$s.fail" ;;
		esac
	fi
	echo "$s|$ver|$rc $note|${fsec}|${boot:--}|${script:--}|${bsec}" > "$BASE/$s.row"
}

rm -f "$BASE"/*.row "$BASE"/*.matrix "$BASE"/*.fail "$BASE"/*.boot
if [ -n "${KERNELS_PARALLEL:-}" ]; then
	# The guests side by side: most of a guest's time is its scenarios'
	# wall-clock durations, not CPU.
	JOBS=""
	for s in $KERNELS; do
		one_kernel "$s" 2>&1 | sed "s/^/[$s] /" >&2 &
		JOBS="$JOBS $!"
	done
	for j in $JOBS; do wait "$j" || true; done
else
	for s in $KERNELS; do one_kernel "$s"; done
fi
for s in $KERNELS; do
	SUMMARY="$SUMMARY$(cat "$BASE/$s.row" 2>/dev/null || echo "$s|-|no result|-|-|-|-")
"
	cat "$BASE/$s.matrix" >> "$MATRIXES" 2>/dev/null || true
	[ "$(cat "$BASE/$s.fail" 2>/dev/null || echo 1)" = 0 ] || fail=1
done

{
	echo
	echo "Kernels (seconds: fetch, guest boot until the script, the script, all of boot.sh):"
	printf '%s' "suite|kernel|rc|fetch_s|boot_s|script_s|total_s
$SUMMARY" | table
	if [ -s "$MATRIXES" ]; then
		echo
		# rows: keys in order of first appearance; columns: suites
		awk -v suites="$KERNELS" '
		# "SUITE key=value..." or "SUITE key value..."
		{ s = $1; sub(/^[^ ]+ +/, ""); w = $1
		  if (index(w, "=")) { k = substr($0, 1, index($0, "=") - 1); v = substr($0, index($0, "=") + 1) }
		  else { k = w; v = substr($0, length(w) + 1); sub(/^ +/, "", v) }
		  if (v == "") v = "yes"
		  gsub(/\|/, "/", v)
		  if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
		  val[k, s] = v }
		END {
			n = split(suites, S, " ")
			line = "key"; for (i = 1; i <= n; i++) line = line "|" S[i]; print line
			for (j = 1; j <= nk; j++) {
				line = keys[j]
				for (i = 1; i <= n; i++)
					line = line "|" (((keys[j], S[i]) in val) ? val[keys[j], S[i]] : "-")
				print line
			}
		}' "$MATRIXES" | table
	fi
	echo
	[ "$fail" -eq 0 ] && echo "test-kernels: OK" || echo "test-kernels: FAILED"
} | tee "$BASE/summary.txt"
exit "$fail"
