#!/bin/sh
# tools/rook-gdb.py in gdb -batch on a live process, on the core gdb saves
# from it, and on the kernel's core dump of the same program: `rook tasks`
# lists the blocked task and `rook bt` names the function that blocked.
# Usage: run.sh SRCDIR PROGRAM
set -eu
src=$1 prog=$2
if ! command -v gdb >/dev/null; then
	echo "SKIP: gdb not installed (tools/deps.sh installs it)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmds="-ex 'source $src/tools/rook-gdb.py' -ex 'rook tasks' -ex 'rook bt gdb-sleeper'"
check() {
	cat "$1"
	grep -q '"gdb-sleeper".*suspended in rook_sleep' "$1" ||
		{ echo "FAIL($2): no suspended gdb-sleeper in rook tasks"; exit 1; }
	grep -q '#[0-9]* gdb_blocked_fn' "$1" ||
		{ echo "FAIL($2): no gdb_blocked_fn in rook bt"; exit 1; }
}
export ROOK_GDB_MPROTECT_GUARDS=1 # see blocked.c
eval gdb -nx -batch -ex "'handle SIGTRAP stop'" -ex run $cmds \
	-ex "'generate-core-file $tmp/gcore'" -ex kill --args "$prog" >"$tmp/live" 2>&1 || true
check "$tmp/live" live
[ -s "$tmp/gcore" ] || { echo "FAIL: gdb saved no core"; exit 1; }
eval gdb -nx -batch $cmds "$prog" "$tmp/gcore" >"$tmp/gcore.out" 2>&1 || true
check "$tmp/gcore.out" gcore
unset ROOK_GDB_MPROTECT_GUARDS
# The kernel's core dump, with the default guards, where core_pattern
# writes a plain file (a piped pattern hands cores to another program).
case $(cat /proc/sys/kernel/core_pattern) in
"|"*) echo "kernel core: skipped, core_pattern is a pipe" ;;
*)
	mkdir "$tmp/k"
	(cd "$tmp/k" && ulimit -c unlimited && "$prog") >/dev/null 2>&1 || true
	core=$(ls "$tmp"/k/core* 2>/dev/null | head -1)
	[ -n "$core" ] || { echo "FAIL: no kernel core in $tmp/k"; exit 1; }
	eval gdb -nx -batch $cmds "$prog" "$core" >"$tmp/kcore.out" 2>&1 || true
	check "$tmp/kcore.out" "kernel core"
	;;
esac
echo PASS
