#!/usr/bin/env bash
# Verify the Promela models with spin (exhaustive safety search: assertion
# violations and invalid end states). Each model also runs in its pre-fix
# form, where spin must find the bug. Prints states and time per model.
#   tools/models/check.sh          exit 0 only if every check came out right
#   tools/models/check.sh --w3     only worker_park with 3 workers and IO
#                                  (items queued at the start): ~35 s and
#                                  2.4 GiB, so not in tools/test.sh
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
cflags="-DMEMLIM=4096"
panflags="-m2000000"

# name, expect (ok|bug), spin -D flags...
check() {
	local model=$1 expect=$2; shift 2
	local dir="$work/${model%.pml}$*"
	dir=${dir// /_}
	mkdir -p "$dir"
	cp "$model" "$dir/"
	# A search that must find a bug stops early: building it is the cost.
	local opt=-O2
	[ "$expect" = bug ] && opt=-O0
	(cd "$dir" && spin -a "$@" "$model" >/dev/null &&
		cc $opt -w -DSAFETY $cflags -o pan pan.c) || { echo "models: $model: spin/cc failed" >&2; return 1; }
	local out errors states depth mem secs
	out=$(cd "$dir" && ./pan $panflags 2>&1) || true
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" | head -1)
	depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	mem=$(sed -n 's/^ *\([0-9.]*\)\s*total actual memory usage.*/\1/p' <<<"$out" | head -1)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p' <<<"$out" | head -1)
	if grep -q "Search not completed\|out of memory\|max search depth too small" <<<"$out" && [ "$expect" = ok ]; then
		echo "models: $model $*: search incomplete" >&2
		return 1
	fi
	local verdict=ok
	[ "${errors:-1}" != 0 ] && verdict=bug
	printf 'models: %-18s %-28s %-4s states=%s depth=%s mem=%sM time=%ss\n' \
		"$model" "$*" "$verdict" "$states" "$depth" "$mem" "$secs" >&2
	[ "$verdict" = "$expect" ]
}

if [ "${1:-}" = "--w3" ]; then
	# A hash table sized up front (a resize needs the old and the new
	# table at once). With the publisher too it outgrows 12 GiB; the
	# default run has 3 workers and the publisher, without IO.
	cflags="-DMEMLIM=8192"
	panflags="-m200000 -w26"
	check worker_park.pml ok -DW=3 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=1 -DQUEUED || status=1
	exit $status
fi

check ring_park.pml ok -DWAKERS=2 || status=1
check ring_park.pml ok -DWAKERS=3 || status=1
check ring_park.pml bug -DWAKERS=2 -DOLD || status=1
check wait_claim.pml ok || status=1
check queue_handoff.pml ok -DR=2 -DPUTTERS=2 -DGETTERS=2 || status=1
check worker_park.pml ok -DW=2 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=1 || status=1
check worker_park.pml bug -DW=2 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=1 -DOLD_NOTIFY || status=1
check worker_park.pml bug -DW=2 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=1 -DNO_WATCH_WAKE || status=1
check worker_park.pml bug -DW=2 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=1 -DNO_DEEP_RESCUE || status=1
check worker_park.pml ok -DW=3 -DITEMS=1 -DSPAWNS=1 -DLONGS=1 -DIOS=0 || status=1
exit $status
