#!/usr/bin/env bash
# The shared library's ABI against the releases in tools/abi/baselines:
#   tools/abi/check.sh LIB [CACHE]
# LIB: a freshly built librook.so (debug, with DWARF). Each baseline is
# built once from git (git archive of its commit, the library target only,
# a few seconds) into CACHE (default build-abi/) and compared with abidiff
# over the public headers. Added functions and variables pass; a removed
# symbol, or a changed one (a parameter, a return type, the layout of a
# public struct a baseline function uses), fails. A reviewed change goes
# into tools/abi/suppressions (README, "ABI"). Exit 0 also when the check
# cannot run (no abidiff, no git history): it says so on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib=$(readlink -f "${1:?usage: tools/abi/check.sh LIB [CACHE]}")
cache=${2:-$root/build-abi}
skip() {
	echo "abi: skipped: $*" >&2
	exit 0
}
command -v abidiff >/dev/null || skip "abidiff is not installed (Debian: abigail-tools)"
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout (baselines are built from git)"

# Build the library of commit $1 into $cache/$1 (once).
baseline() {
	local c=$1 d=$cache/$1
	[ -f "$d/ok" ] && return 0
	git -C "$root" cat-file -e "$c^{commit}" 2>/dev/null || return 1
	rm -rf "$d" && mkdir -p "$d/src"
	git -C "$root" archive "$c" | tar -x -C "$d/src"
	cmake -S "$d/src" -B "$d/build" -DCMAKE_BUILD_TYPE=Debug -DROOK_BUILD_TESTS=OFF \
		-DROOK_BUILD_PERF=OFF >"$d/log" 2>&1 &&
		cmake --build "$d/build" -j"$(nproc)" --target rook >>"$d/log" 2>&1 || {
		echo "abi: building baseline $c failed (log: $d/log)" >&2
		return 2
	}
	touch "$d/ok"
}

status=0
while read -r commit name; do
	case $commit in '' | '#'*) continue ;; esac
	rc=0
	baseline "$commit" || rc=$?
	if [ $rc -eq 1 ]; then
		echo "abi: skipped $name: commit $commit not in this clone (shallow?)" >&2
		continue
	elif [ $rc -ne 0 ]; then
		status=1
		continue
	fi
	d=$cache/$commit
	rc=0
	report=$(abidiff --suppressions "$here/suppressions" \
		--headers-dir1 "$d/src/include" --headers-dir2 "$root/include" \
		--drop-private-types "$(readlink -f "$d/build/librook.so")" "$lib") || rc=$?
	# abidiff's status is a bit set: 1 error, 2 usage, 4 a change, 8 an
	# incompatible change (a removed symbol). Bit 4 alone also means a
	# changed type, so the summary decides: anything removed or changed.
	if [ $((rc & 3)) -ne 0 ]; then
		echo "abi: abidiff failed against $name (status $rc)" >&2
		echo "$report" >&2
		status=1
	elif [ $((rc & 12)) -ne 0 ] && echo "$report" | grep -Eq '[1-9][0-9]* (Removed|Changed)'; then
		echo "abi: $lib breaks binaries built against $name:" >&2
		echo "$report" >&2
		status=1
	else
		added=$(echo "$report" | sed -n 's/.* \([0-9]*\) Added function.*/\1/p' | head -1)
		echo "abi: compatible with $name ($added functions added)" >&2
	fi
done <"$here/baselines"
exit $status
