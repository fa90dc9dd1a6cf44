#!/usr/bin/env bash
# Install what rook's build needs on Debian 12, if missing. Sourced by
# tools/test.sh and tools/bench.sh; usage: rook_deps PKG...
rook_deps() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "rook: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
			return
		fi
		echo "rook: missing packages (${missing[*]}); run as root or install them" >&2
		return 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}
# gdb: tests/diag/gdb/run.sh (tools/rook-gdb.py; skipped without it);
# python3: test_trace parses the ROOK_TRACE file with it.
ROOK_BUILD_DEPS=(cmake gcc g++ make pkg-config libudev-dev liburing-dev libhwloc-dev libcriterion-dev gdb python3)
