#!/usr/bin/env bash
# rook's whole test suite: installs what is missing (Debian 12, as root),
# checks the format (.clang-format) and the spin models (tools/models),
# then builds and runs the Criterion suite through ctest for three builds:
# a debug build with -Werror (plus the ABI check, tools/abi), a
# ThreadSanitizer build and an AddressSanitizer+UndefinedBehaviorSanitizer
# build, each run twice: io_uring, then ROOK_IO=epoll. Exit status: 0
# only if every run passed.
#   tools/test.sh [--fast]     --fast: the debug build only
#   tools/test.sh --soak SECONDS   only the soak (tools/soak.sh), not the suite
#   tools/test.sh --aarch64    only the debug suite cross-built for aarch64
#                              and run under qemu-user (slow; not in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--soak" ]; then
	exec tools/soak.sh "${2:?--soak needs SECONDS}"
fi
. tools/deps.sh

# The debug suite cross-built with gcc-aarch64-linux-gnu against the :arm64
# liburing and hwloc (cmake/aarch64-linux-gnu.cmake), each test run by
# qemu-aarch64. qemu-user has no io_uring, so rook picks epoll by itself;
# ROOK_QEMU=1 lets the few cases that meet a documented qemu-user gap skip,
# each naming it. About 7 minutes on 2 cores.
run_aarch64() {
	local dir=build-aarch64
	local jobs=${ROOK_JOBS:-$(nproc)}
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		if [ "$(id -u)" -ne 0 ] || ! dpkg --add-architecture arm64; then
			echo "== aarch64: skipped: cannot add the arm64 architecture (run as root)" >&2
			return 0
		fi
		apt-get update -qq || true
	fi
	if ! rook_deps cmake make pkg-config python3 gcc-aarch64-linux-gnu \
		libc6-dev-arm64-cross qemu-user liburing-dev:arm64 libhwloc-dev:arm64; then
		echo "== aarch64: skipped: the cross toolchain or qemu-user could not be installed" >&2
		return 0
	fi
	# Tests that exec an aarch64 child (the demos, the RESP server, perf
	# --quick) need the kernel to hand it to qemu. qemu-user-binfmt ships
	# the registration, but a container without systemd-binfmt never loads
	# it; its .conf line is the register string.
	local bm=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
	if [ ! -e "$bm/qemu-aarch64" ] && [ -r "$conf" ] && [ "$(id -u)" -eq 0 ]; then
		[ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null || true
		grep -v '^#' "$conf" >"$bm/register" 2>/dev/null || true
	fi
	if [ ! -e "$bm/qemu-aarch64" ]; then
		echo "== aarch64: warning: no binfmt_misc entry for qemu-aarch64;" \
			"tests that exec a child binary will fail with 127" >&2
	fi
	echo "== aarch64: configure and build (gcc-aarch64-linux-gnu)" >&2
	cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
		-DCMAKE_BUILD_TYPE=Debug -DROOK_BUILD_TESTS=ON -DROOK_WERROR=ON >/dev/null || return 1
	cmake --build "$dir" -j"$jobs" >/dev/null || return 1
	echo "== aarch64: ctest under qemu-aarch64" >&2
	(cd "$dir" && ROOK_QEMU=1 ctest --output-on-failure --no-tests=error --timeout 900)
}
if [ "${1:-}" = "--aarch64" ]; then
	start=$(date +%s)
	if run_aarch64; then r=0; else r=1; fi
	echo "== aarch64: $([ $r -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - start)) s" >&2
	exit $r
fi

rook_deps "${ROOK_BUILD_DEPS[@]}" clang-format git

fast=0
[ "${1:-}" = "--fast" ] && fast=1
jobs=$(nproc)

run_suite() { # name, cmake args...
	local name=$1; shift
	local dir=build-test-$name
	echo "== $name: configure and build" >&2
	# Called as "run_suite ... || status=1", where set -e is off: every
	# step must fail the suite itself, or a configure error runs no test.
	cmake -S . -B "$dir" -DROOK_BUILD_TESTS=ON -DROOK_BUILD_PERF=ON -DROOK_WERROR=ON "$@" >/dev/null ||
		return 1
	cmake --build "$dir" -j"$jobs" >/dev/null || return 1
	echo "== $name: ctest" >&2
	(cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 900) || return 1
	# The second IO backend: the same suite on epoll (io/epoll.c).
	echo "== $name: ctest, ROOK_IO=epoll" >&2
	(cd "$dir" && ROOK_IO=epoll ctest --output-on-failure --no-tests=error --timeout 900)
}

# The tree is formatted by .clang-format; a diff fails the suite before any build.
check_format() {
	local bad
	bad=$(git ls-files '*.c' '*.h' | grep -v '^tests/shim/criterion/' |
		xargs clang-format --dry-run 2>&1 | grep -o '^[^:]*:[0-9]*:[0-9]*: warning' | cut -d: -f1 | sort -u)
	if [ -n "$bad" ]; then
		echo "== format: these files differ from .clang-format (run clang-format -i):" >&2
		echo "$bad" >&2
		return 1
	fi
}

# What ran it, for reading a CI log (io_uring's behaviour is the kernel's).
echo "== machine: $(uname -srm), $(nproc) CPUs, liburing $(dpkg-query -W -f='${Version}' "liburing-dev:$(dpkg --print-architecture)" 2>/dev/null || echo '?')" >&2
status=0
if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1; then
	check_format || status=1
fi
# The Promela models of the wake-up and claim protocols (seconds).
if command -v spin >/dev/null || rook_deps spin >/dev/null 2>&1; then
	echo "== models: spin" >&2
	tools/models/check.sh || status=1
else
	echo "== models: skipped: spin is not installed and could not be installed" >&2
fi
run_suite debug -DCMAKE_BUILD_TYPE=Debug || status=1
# The shared library's ABI against the releases in tools/abi/baselines.
if [ -f build-test-debug/librook.so ]; then
	if command -v abidiff >/dev/null || rook_deps abigail-tools >/dev/null 2>&1; then
		echo "== abi: abidiff" >&2
		tools/abi/check.sh build-test-debug/librook.so build-test-abi || status=1
	else
		echo "== abi: skipped: abigail-tools is not installed and could not be installed" >&2
	fi
fi
if [ $fast -eq 0 ]; then
	# TSan needs a 47-bit-friendly mmap layout on newer kernels.
	export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tools/tsan.supp ${TSAN_OPTIONS:-}"
	export ASAN_OPTIONS="detect_leaks=1 detect_stack_use_after_return=0 ${ASAN_OPTIONS:-}"
	export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
	run_suite tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROOK_SANITIZE=thread || status=1
	run_suite asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROOK_SANITIZE=address,undefined || status=1
fi
if [ $status -eq 0 ]; then echo "rook: all suites passed" >&2; else echo "rook: FAILED" >&2; fi
exit $status
