#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/bench.sh — build rook-perf (Release) and the peers of perf/peers/,
# run the workloads of shared/bench/WORKLOADS.md on rook (1 worker and every
# power of two up to the cores), on the single-threaded model (Python asyncio
# and uvloop from perf/asyncio/, libuv in C) and on every peer that builds
# (Go, Tokio, Boost.Fiber, oneTBB), N runs per cell, then summarise.
#
#   tools/bench.sh [--workloads a,b] [--threads 1,2] [--runs N] [--quick]
#                  [--no-peers] [--peers DIR] [--timeout S] [--max-wait S]
#                  [--out DIR]
#   tools/bench.sh --compare A.md B.md
#
#   --workloads   default: every workload rook-perf implements (rook-perf --list)
#   --threads     default: 1 and every power of two up to nproc; a count above
#                 nproc runs oversubscribed and is marked '*' in the table
#   --runs N      runs per (workload, impl, threads) (default 5; 1 with --quick)
#   --quick       smoke-test sizes for rook-perf and perf/asyncio (peers always
#                 run full size, so only the rates are comparable)
#   --no-peers    rook and asyncio/uvloop only
#   --peers DIR   peer tree to use instead of perf/peers (needs cpu/run-one.sh)
#   --timeout S   per run (default 120)
#   --max-wait S  total seconds the whole run may spend waiting for a busy
#                 machine to go quiet before a run (default 120, 10 with
#                 --quick); past that, runs on a busy machine are only marked
#   --out DIR     where the table and charts go (default perf/results for
#                 a full run; perf/results/partial when --workloads,
#                 --threads or --quick narrow it, so a partial run does not
#                 replace the full one)
#   --compare A.md B.md
#                 per (workload, impl, threads) row of two latest.md files:
#                 the ratio B/A of the medians, its spread (B.min/A.max ..
#                 B.max/A.min) and FASTER/SLOWER when the ranges do not overlap
#
# Statistics: every cell is N runs: median, min-max, and a '~' noise mark
# when max/min > 1.3. Before each run the CPU use of the machine is sampled
# over 0.2 s (/proc/stat); when more than a quarter of a core is busy the run
# waits (bounded by --max-wait) and, if still busy, is counted as busy in the
# table's 'busy' column.
#
# Run as root on a fresh Debian 12 machine it installs what is missing with
# apt-get: the base packages are required, the peers' toolchains are tried
# and a peer whose toolchain is missing or does not build is skipped with
# one line. Output: every raw BENCH line on stdout, progress on stderr, the
# summary table on stdout and in perf/results/latest.md (with the machine:
# CPU, cores, kernel, governor, rook commit, peers' versions), a bar chart
# in perf/results/latest.svg and one scaling chart (ops/s against workers)
# per workload in perf/results/scaling-WORKLOAD.svg (with gnuplot). A rook
# run that fails shows as FAIL/TIMEOUT and makes the script exit 1 after
# writing the table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-release"
PERF="$BUILD/perf/rook-perf"
RESULTS="$ROOT/perf/results"
ASYNCIO="$ROOT/perf/asyncio"
PYTHON=/usr/bin/python3
# Multi-threaded peers run at every thread count; the single-threaded ones
# (libuv, like asyncio) once per workload at threads=1.
MT_PEERS=(go tokio boost_fiber tbb)
ST_PEERS=(libuv)
declare -A PEER_BIN=([go]=bench-go [tokio]=bench-tokio [boost_fiber]=bench-fiber [tbb]=bench-tbb
	[libuv]=bench-uv)
PEER_IMPLS=() # the multi-threaded peers that built
ST_IMPLS=()   # the single-threaded peers that built
BASE_PKGS=(cmake gcc g++ make pkg-config liburing-dev libhwloc-dev libcriterion-dev gnuplot-nox
	python3)
OPTIONAL_PKGS=(python3-uvloop wrk) # installed when running as root, else skipped (wrk: http_hello)
PEER_PKGS=(golang-go librust-tokio-dev librust-async-channel-dev libboost-fiber-dev
	libboost-context-dev libtbb-dev libuv1-dev python3-uvloop)
export BUILD_DIR="${BUILD_DIR:-$BUILD/peers}"

declare -A UNSUPPORTED=() # "impl/workload" -> 1 once it exited 2
opt_workloads="" opt_threads="" opt_runs="" opt_quick=0 opt_peers="$ROOT/perf/peers" opt_timeout=120
opt_maxwait="" opt_compare=() opt_out=""

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

usage() { awk 'NR > 3 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--workloads) [ $# -ge 2 ] || die "--workloads needs a value"; opt_workloads=$2; shift ;;
		--threads) [ $# -ge 2 ] || die "--threads needs a value"; opt_threads=$2; shift ;;
		--runs) [ $# -ge 2 ] || die "--runs needs a value"; opt_runs=$2; shift ;;
		--peers) [ $# -ge 2 ] || die "--peers needs a value"; opt_peers=$2; shift ;;
		--timeout) [ $# -ge 2 ] || die "--timeout needs a value"; opt_timeout=$2; shift ;;
		--max-wait) [ $# -ge 2 ] || die "--max-wait needs a value"; opt_maxwait=$2; shift ;;
		--no-peers) opt_peers="" ;;
		--compare) [ $# -ge 3 ] || die "--compare needs A.md B.md"; opt_compare=("$2" "$3"); shift 2 ;;
		--quick) opt_quick=1 ;;
		--out) [ $# -ge 2 ] || die "--out needs a directory"; opt_out=$2; shift ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	if [ -n "$opt_out" ]; then
		RESULTS=$opt_out
	elif [ -n "$opt_workloads" ] || [ -n "$opt_threads" ] || [ $opt_quick = 1 ]; then
		RESULTS=$ROOT/perf/results/partial
	fi
	[ -n "$opt_runs" ] || opt_runs=$([ $opt_quick = 1 ] && echo 1 || echo 5)
	[ -n "$opt_maxwait" ] || opt_maxwait=$([ $opt_quick = 1 ] && echo 10 || echo 120)
	[[ $opt_maxwait =~ ^[0-9]+$ ]] || die "--max-wait must be a number of seconds"
	[[ $opt_runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
	[[ $opt_timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
	[[ -z $opt_threads || $opt_threads =~ ^[0-9]+(,[0-9]+)*$ ]] ||
		die "--threads must look like 1,2,4"
	if [ -n "$opt_peers" ]; then
		[ -x "$opt_peers/cpu/run-one.sh" ] || die "--peers $opt_peers: no cpu/run-one.sh there"
		opt_peers="$(cd "$opt_peers" && pwd)"
	fi
}

# ---- packages -----------------------------------------------------------

# Multiarch: a package may be listed for several architectures; any installed one counts.
pkg_installed() { dpkg-query -W -f='${db:Status-Abbrev}\n' "$1" 2>/dev/null | grep -q '^ii'; }

peers_built() {
	local i
	for i in "${MT_PEERS[@]}" "${ST_PEERS[@]}"; do [ -x "$BUILD_DIR/${PEER_BIN[$i]}" ] || return 1; done
}

ensure_packages() {
	local missing=() opt=() p
	for p in "${BASE_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	# Peer toolchains are optional: a missing one skips that peer.
	if [ "$(id -u)" = 0 ]; then
		for p in "${OPTIONAL_PKGS[@]}"; do pkg_installed "$p" || opt+=("$p"); done
		if [ -n "$opt_peers" ] && ! peers_built; then
			for p in "${PEER_PKGS[@]}"; do pkg_installed "$p" || opt+=("$p"); done
			command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] ||
				pkg_installed cargo || opt+=(cargo)
		fi
	fi
	if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" != 0 ]; then
		die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	fi
	[ ${#missing[@]} -eq 0 ] && [ ${#opt[@]} -eq 0 ] && return 0
	export DEBIAN_FRONTEND=noninteractive
	say "apt-get update"
	apt-get update >"$BUILD_LOG_DIR/apt.log" 2>&1 || say "apt-get update failed (see $BUILD_LOG_DIR/apt.log)"
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing: ${missing[*]}"
		apt-get install -y --no-install-recommends "${missing[@]}" >>"$BUILD_LOG_DIR/apt.log" 2>&1 ||
			die "apt-get install ${missing[*]} failed (see $BUILD_LOG_DIR/apt.log)"
	fi
	if [ ${#opt[@]} -gt 0 ]; then
		say "installing the peers' toolchains: ${opt[*]}"
		if ! apt-get install -y --no-install-recommends "${opt[@]}" >>"$BUILD_LOG_DIR/apt.log" 2>&1; then
			# One package that does not exist must not cost the others.
			for p in "${opt[@]}"; do
				apt-get install -y --no-install-recommends "$p" >>"$BUILD_LOG_DIR/apt.log" 2>&1 ||
					say "package $p cannot be installed: the peers that need it are skipped"
			done
		fi
	fi
}

# ---- build --------------------------------------------------------------

# Build output goes to a log, shown only when a step fails.
build_rook() {
	local log=$BUILD/bench-build.log
	mkdir -p "$BUILD"
	say "configuring Release build in $BUILD (log: $log)"
	if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DROOK_BUILD_TESTS=OFF \
		-DROOK_BUILD_PERF=ON >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "cmake configure failed (full log: $log)"
	fi
	say "building rook-perf"
	if ! cmake --build "$BUILD" --target rook-perf -j "$(nproc)" >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "build of rook-perf failed (full log: $log)"
	fi
	[ -x "$PERF" ] || die "build finished but $PERF is missing"
}

build_peers() {
	[ -n "$opt_peers" ] || { say "peers: none (--no-peers)"; return 0; }
	local i log=$BUILD_LOG_DIR/peers-build.log
	[ -d "$HOME/.cargo/bin" ] && export PATH="$PATH:$HOME/.cargo/bin"
	if ! peers_built; then
		say "peers: building $opt_peers/cpu into $BUILD_DIR (log: $log)"
		"$opt_peers/cpu/build.sh" >"$log" 2>&1 || true
	fi
	for i in "${MT_PEERS[@]}" "${ST_PEERS[@]}"; do
		if [ ! -x "$BUILD_DIR/${PEER_BIN[$i]}" ]; then
			say "peer $i: skipped (did not build; toolchain missing? see $log)"
		elif [[ " ${ST_PEERS[*]} " = *" $i "* ]]; then
			ST_IMPLS+=("$i")
		else
			PEER_IMPLS+=("$i")
		fi
	done
}

# ---- what to run --------------------------------------------------------

# The event loops perf/asyncio runs on: asyncio, and uvloop if importable.
ASYNC_IMPLS=()
detect_asyncio() {
	if [ ! -x "$PYTHON" ]; then
		say "no $PYTHON: no asyncio rows"
		return 0
	fi
	ASYNC_IMPLS=(asyncio)
	if "$PYTHON" -c 'import uvloop' 2>/dev/null; then
		ASYNC_IMPLS+=(uvloop)
	else
		say "uvloop is not importable (python3-uvloop): asyncio rows only"
	fi
}

# Whether perf/asyncio has workload $1.
has_asyncio() { [ ${#ASYNC_IMPLS[@]} -gt 0 ] && [ -f "$ASYNCIO/$1.py" ]; }

default_threads() {
	local n t=1 list=""
	n=$(nproc)
	while [ $t -le "$n" ]; do list+="$t,"; t=$((t * 2)); done
	echo "${list%,}"
}

resolve_plan() {
	local all w
	all=$("$PERF" --list) || die "rook-perf --list failed"
	if [ -z "$opt_workloads" ]; then
		opt_workloads=$(awk '$1 == "yes" { printf "%s%s", sep, $2; sep = "," }' <<<"$all")
	fi
	for w in ${opt_workloads//,/ }; do
		awk -v w="$w" '$2 == w { f = 1 } END { exit !f }' <<<"$all" ||
			die "unknown workload '$w' (known: $(awk '{ printf "%s ", $2 }' <<<"$all"))"
	done
	[ -n "$opt_threads" ] || opt_threads=$(default_threads)
}

# ---- running ------------------------------------------------------------

# busy_cores: how many cores' worth of CPU the machine used over 0.2 s.
busy_cores() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat)
	sleep 0.2
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat)
	awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
		split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; all = busy + y[2] - x[2]
		printf "%.2f", (all > 0 ? n * busy / all : 0) }'
}

# quiet_check: sets BUSY to 1 when the machine stayed busy (more than a
# quarter of a core used by others) after waiting within the --max-wait budget.
WAITED=0
quiet_check() {
	local b
	BUSY=0
	while :; do
		b=$(busy_cores)
		awk -v b="$b" 'BEGIN { exit !(b > 0.25) }' || return 0
		if awk -v w="$WAITED" -v m="$opt_maxwait" 'BEGIN { exit !(w >= m) }'; then
			BUSY=1
			return 0
		fi
		sleep 0.3
		WAITED=$(awk -v w="$WAITED" 'BEGIN { print w + 0.5 }')
	done
}

# run_one IMPL WORKLOAD THREADS RUN: append one row to $RAW:
# workload impl threads run status ops_per_s busy extras (tab-separated).
run_one() {
	local impl=$1 w=$2 t=$3 r=$4 out rc=0 line status rate extras
	local cmd=("$opt_peers/cpu/run-one.sh" "$impl" "$w" "$t")
	case $impl in
	rook)
		cmd=("$PERF" --workload "$w" --threads "$t")
		[ $opt_quick = 1 ] && cmd+=(--quick)
		;;
	asyncio | uvloop)
		cmd=("$PYTHON" "$ASYNCIO/$w.py" --loop "$impl")
		[ $opt_quick = 1 ] && cmd+=(--quick)
		;;
	esac
	quiet_check
	out=$(timeout -k 5 "$opt_timeout" "${cmd[@]}" 2>"$TMP/stderr") || rc=$?
	line=$(grep -m1 '^BENCH ' <<<"$out" || true)
	if [ $rc -eq 0 ] && [ -n "$line" ]; then
		printf '%s\n' "$line"
		status=ok
		rate=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops_per_s=/) print substr($i, 11) }' <<<"$line")
		extras=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops_per_s=/) break
			for (i++; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "") }' <<<"$line")
	else
		case $rc in
		124 | 137) status=TIMEOUT ;;
		2) status=UNSUPPORTED UNSUPPORTED[$impl/$w]=1 ;;
		*) status=FAIL ;;
		esac
		rate=- extras=-
		[ $rc = 2 ] && [ "$impl" != rook ] ||
			say "  $impl $w t=$t run $r: $status (exit $rc): $(tail -n 2 "$TMP/stderr" | tr '\n' ' ')"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$impl" "$t" "$r" "$status" "$rate" "$BUSY" \
		"${extras:--}" >>"$RAW"
}

# The impls of one (workload, thread count) cell; the single-threaded ones
# only in the first thread count's cell, where they run with threads=1.
cell_impls() {
	local w=$1 t=$2
	CELL=(rook "${PEER_IMPLS[@]}")
	if [ "$t" = "${opt_threads%%,*}" ]; then
		CELL+=("${ST_IMPLS[@]}")
		if has_asyncio "$w"; then CELL+=("${ASYNC_IMPLS[@]}"); fi
	fi
	return 0
}

# Runs alternate between impls (run 1 of every impl, then run 2, ...), so a
# noisy stretch of time hits them all rather than one.
run_all() {
	local w t r impl ti total=0 step=0
	for w in ${opt_workloads//,/ }; do
		for t in ${opt_threads//,/ }; do
			cell_impls "$w" "$t"
			total=$((total + opt_runs * ${#CELL[@]}))
		done
	done
	for w in ${opt_workloads//,/ }; do
		for t in ${opt_threads//,/ }; do
			cell_impls "$w" "$t"
			for r in $(seq 1 "$opt_runs"); do
				for impl in "${CELL[@]}"; do
					step=$((step + 1))
					# A workload an impl lacks is not retried.
					[ -z "${UNSUPPORTED[$impl/$w]:-}" ] || continue
					ti=$t
					case " ${ST_IMPLS[*]} asyncio uvloop " in *" $impl "*) ti=1 ;; esac
					say "[$step/$total] $w threads=$ti run $r/$opt_runs: $impl"
					run_one "$impl" "$w" "$ti" "$r"
				done
			done
		done
	done
}

# ---- summary ------------------------------------------------------------

# $RAW -> $SUMMARY: workload impl threads median min max ok/total busy
# extras_of_median_run, in run order.
summarise() {
	awk -F'\t' -v OFS='\t' '
	{
		k = $1 SUBSEP $2 SUBSEP $3
		if (!(k in total)) { order[++nk] = k }
		total[k]++
		if ($5 == "ok") { n[k]++; v[k, n[k]] = $6 + 0; x[k, n[k]] = $8; busy[k] += $7 }
		else if ($2 == "rook" && $5 != "UNSUPPORTED") bad[k] = $5
	}
	END {
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, p, SUBSEP); m = n[k] + 0
			if (m == 0) {
				if (!(k in bad)) continue   # unsupported: no row
				print p[1], p[2], p[3], bad[k], "-", "-", "0/" total[k], 0, "-"
				continue
			}
			for (a = 1; a <= m; a++) { s[a] = v[k, a]; e[a] = x[k, a] }
			for (a = 2; a <= m; a++)   # insertion sort, m is small
				for (b = a; b > 1 && s[b - 1] > s[b]; b--) {
					t = s[b]; s[b] = s[b - 1]; s[b - 1] = t
					t = e[b]; e[b] = e[b - 1]; e[b - 1] = t
				}
			mid = int((m + 1) / 2)
			med = (m % 2) ? s[mid] : (s[mid] + s[mid + 1]) / 2
			print p[1], p[2], p[3], sprintf("%.1f", med), sprintf("%.1f", s[1]), sprintf("%.1f", s[m]), m "/" total[k], busy[k] + 0, e[mid]
		}
	}' "$RAW" >"$SUMMARY"
}

# $SUMMARY -> Markdown table on stdout. The number columns are what
# --compare parses back: keep their format.
markdown_table() {
	awk -F'\t' -v peers="${PEER_IMPLS[*]}" -v ncpu="$(nproc)" '
	BEGIN { np = split(peers, pl, " "); for (i = 1; i <= np; i++) is_peer[pl[i]] = 1 }
	function human(r) {
		if (r !~ /^[0-9.]+$/) return r
		if (r >= 1e9) return sprintf("%.3gG", r / 1e9)
		if (r >= 1e6) return sprintf("%.3gM", r / 1e6)
		if (r >= 1e3) return sprintf("%.3gk", r / 1e3)
		return sprintf("%.3g", r)
	}
	function num(r) { return r ~ /^[0-9.]+$/ }
	NR == FNR {
		if ($3 == 1 && num($4)) base[$1, $2] = $4
		if ($2 == "asyncio" && num($4)) aio[$1] = $4
		if (($2 in is_peer) && num($4) && $4 > best[$1, $3]) best[$1, $3] = $4
		next
	}
	FNR == 1 {
		print "| workload | impl | threads | ops/s median | min–max | noise | speed-up vs t1 | vs asyncio | vs best peer | ok runs | busy | extras (median run) |"
		print "|---|---|---|---|---|---|---|---|---|---|---|---|"
	}
	{
		ok = num($4)
		sp = (ok && base[$1, $2] > 0 && $3 != 1) ? sprintf("%.2fx", $4 / base[$1, $2]) : "-"
		ap = (ok && aio[$1] > 0) ? sprintf("%.2fx", $4 / aio[$1]) : "-"
		bp = (ok && best[$1, $3] > 0) ? sprintf("%.2fx", $4 / best[$1, $3]) : "-"
		rg = ok ? human($5) "–" human($6) : "-"
		nz = (ok && $5 > 0 && $6 / $5 > 1.3) ? "~" : ""
		th = $3 ($3 > ncpu ? "*" : "")
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, th, human($4), rg, nz, sp, ap, bp, $7, $8, $9
	}' "$SUMMARY" "$SUMMARY"
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }

machine_info() {
	local cpu gov v=""
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
	gov=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo 'n/a')
	echo "- CPU: ${cpu:-unknown}; cores: $(nproc); kernel: $(uname -sr); governor: $gov"
	echo "- rook: $ROOK_REV"
	case " ${PEER_IMPLS[*]} ${ST_IMPLS[*]} " in *" go "*) v+="go: $(go version 2>/dev/null | awk '{ print $3 }'); " ;; esac
	case " ${PEER_IMPLS[*]} " in *" tokio "*) v+="tokio: $(pkg_version librust-tokio-dev) ($(rustc --version 2>/dev/null | awk '{ print $1, $2 }')); " ;; esac
	case " ${PEER_IMPLS[*]} " in *" boost_fiber "*) v+="boost.fiber: $(pkg_version libboost-fiber-dev); " ;; esac
	case " ${PEER_IMPLS[*]} " in *" tbb "*) v+="onetbb: $(pkg_version libtbb-dev); " ;; esac
	case " ${ST_IMPLS[*]} " in *" libuv "*) v+="libuv: $(pkg_version libuv1-dev); " ;; esac
	[ ${#ASYNC_IMPLS[@]} -gt 0 ] && v+="python: $("$PYTHON" -c 'import platform; print(platform.python_version())')"
	case " ${ASYNC_IMPLS[*]} " in *" uvloop "*) v+=", uvloop: $(pkg_version python3-uvloop)" ;; esac
	echo "- peers: ${v:-none}"
	echo "- waited for a quiet machine: ${WAITED}s (budget ${opt_maxwait}s)"
}

write_markdown() {
	local md=$RESULTS/latest.md w
	{
		echo "# rook benchmark results"
		echo
		echo "Generated by \`tools/bench.sh$ARGS_STR\` on $(date -u '+%Y-%m-%d %H:%M UTC')," \
			"$opt_runs run(s) per cell."
		echo
		machine_info
		[ $opt_quick = 1 ] && echo && echo "**--quick**: rook and asyncio ran the smoke-test sizes (peers full size); only rates are comparable, and barely."
		echo
		markdown_table
		echo
		echo "median and min–max over the ok runs; noise \`~\`: max/min > 1.3;" \
			"threads \`*\`: more workers than the $(nproc) cores (oversubscribed);" \
			"busy: runs that started while more than a quarter of a core was used by something else;" \
			"speed-up vs t1 = ops/s ÷ the same impl's median at 1 worker;" \
			"vs asyncio = ops/s ÷ Python asyncio's (one event loop, threads=1; perf/asyncio/);" \
			"vs best peer = ops/s ÷ the fastest of ${PEER_IMPLS[*]:-(no peer)} at the same threads" \
			"(>1: faster than every peer). \`-\`: not run or failed; a workload an impl lacks has no row." \
			"asyncio/uvloop rows that say reduced=1 ran a smaller N than WORKLOADS.md (size= gives it);" \
			"ops counts the work done, so the rates compare."
		echo "Workload definitions: shared/bench/WORKLOADS.md; how the peers map them: perf/peers/cpu/NOTES.md."
		echo
		echo "Charts: [bars](latest.svg)$(for w in ${opt_workloads//,/ }; do [ -f "$RESULTS/scaling-$w.svg" ] && printf ', [%s scaling](scaling-%s.svg)' "$w" "$w"; done)."
	} >"$md"
	say "wrote $md"
}

# Grouped bars per workload@threads, one bar per impl, log-scale ops/s.
write_svg() {
	command -v gnuplot >/dev/null || { say "gnuplot not found: no SVG"; return 0; }
	awk -F'\t' '$4 ~ /^[0-9.]+$/ { f = 1 } END { exit !f }' "$SUMMARY" ||
		{ say "no successful runs: no SVG"; return 0; }
	local dat=$TMP/chart.dat svg=$RESULTS/latest.svg impls
	impls=$(awk -F'\t' '!seen[$2]++ { printf "%s ", $2 }' "$SUMMARY")
	awk -F'\t' -v impls="$impls" '
	BEGIN { ni = split(impls, im, " ") }
	{ c = "\"" $1 "\\nt" $3 "\""; if (!(c in seen)) { seen[c] = 1; col[++nc] = c }
	  v[c, $2] = ($4 ~ /^[0-9.]+$/) ? $4 : "-" }
	END {
		printf "cell"; for (i = 1; i <= ni; i++) printf " %s", im[i]; print ""
		for (j = 1; j <= nc; j++) {
			printf "%s", col[j]
			for (i = 1; i <= ni; i++) printf " %s", ((col[j], im[i]) in v) ? v[col[j], im[i]] : "-"
			print ""
		}
	}' "$SUMMARY" >"$dat"
	local ncol width
	ncol=$(awk 'NR == 1 { print NF; exit }' "$dat")
	width=$(awk 'END { w = 100 * (NR - 1) + 250; print (w < 1000 ? 1000 : w) }' "$dat")
	gnuplot <<-EOF || { say "gnuplot failed: no SVG"; return 0; }
		set terminal svg size $width,600 dynamic background rgb 'white'
		set output '$svg'
		set title 'rook vs the single-threaded model and peers: ops/s (median of $opt_runs), log scale'
		set datafile missing '-'
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set termoption noenhanced
		set logscale y
		set format y '%.0s%c'
		set grid ytics
		set xtics nomirror
		set bmargin 4
		set key outside right top
		plot for [i=2:$ncol] '$dat' using i:xtic(1) title columnheader(i)
	EOF
	say "wrote $svg"
}

# One chart per workload: median ops/s (with min-max bars) against workers
# for rook and each multi-threaded peer. Workloads run at one thread count
# only get none.
write_scaling() {
	command -v gnuplot >/dev/null || return 0
	local w svg dat impls plot i ncpu
	ncpu=$(nproc)
	rm -f "$RESULTS"/scaling-*.svg
	for w in ${opt_workloads//,/ }; do
		impls=$(awk -F'\t' -v w="$w" '$1 == w && $4 ~ /^[0-9.]+$/ { n[$2]++ }
			END { for (i in n) if (n[i] > 1) printf "%s ", i }' "$SUMMARY")
		[ -n "$impls" ] || continue
		svg=$RESULTS/scaling-$w.svg plot=""
		for i in $impls; do
			dat=$TMP/scaling-$w-$i.dat
			awk -F'\t' -v w="$w" -v i="$i" '$1 == w && $2 == i && $4 ~ /^[0-9.]+$/ {
				print $3, $4, $5, $6 }' "$SUMMARY" | sort -n >"$dat"
			plot+="${plot:+, }'$dat' using 1:2:3:4 with yerrorlines title '$i'"
		done
		gnuplot <<-EOF || { say "gnuplot failed on $w scaling"; continue; }
			set terminal svg size 800,500 dynamic background rgb 'white'
			set output '$svg'
			set title '$w: ops/s against workers (median, min-max bars; $ncpu cores, beyond = oversubscribed)'
			set termoption noenhanced
			set xlabel 'workers'
			set ylabel 'ops/s'
			set format y '%.0s%c'
			set xtics 1
			set grid
			set yrange [0:*]
			set arrow from $ncpu + 0.5, graph 0 to $ncpu + 0.5, graph 1 nohead dashtype 2
			set key outside right top
			plot $plot
		EOF
	done
	say "wrote $(ls "$RESULTS"/scaling-*.svg 2>/dev/null | wc -l) scaling chart(s)"
}

# ---- compare ------------------------------------------------------------

# Reads the table rows of a latest.md: key (workload impl threads) median min max.
md_rows() {
	awk -F'|' '
	function val(s,   m) {
		gsub(/ /, "", s); m = 1
		if (s ~ /G$/) m = 1e9; else if (s ~ /M$/) m = 1e6; else if (s ~ /k$/) m = 1e3
		sub(/[kMG]$/, "", s)
		return (s ~ /^[0-9.]+$/) ? s * m : -1
	}
	NF >= 12 && $2 !~ /workload|---/ {
		w = $2; i = $3; t = $4; gsub(/[ *]/, "", w); gsub(/ /, "", i); gsub(/[ *]/, "", t)
		split($6, r, "–"); med = val($5); lo = val(r[1]); hi = val(r[2])
		if (med > 0 && lo > 0 && hi > 0) print w, i, t, med, lo, hi
	}' "$1"
}

compare() {
	local a=$1 b=$2
	[ -f "$a" ] || die "--compare: no file $a"
	[ -f "$b" ] || die "--compare: no file $b"
	echo "B/A: B = $b, A = $a. spread = B.min/A.max .. B.max/A.min;" \
		"FASTER/SLOWER: the min-max ranges do not overlap."
	echo
	echo "| workload | impl | threads | A median | B median | B/A | spread | verdict |"
	echo "|---|---|---|---|---|---|---|---|"
	awk 'NR == FNR { k = $1 " " $2 " " $3; m[k] = $4; lo[k] = $5; hi[k] = $6; next }
	{
		k = $1 " " $2 " " $3
		if (!(k in m)) next
		v = "within noise"
		if ($5 == $6 || lo[k] == hi[k]) v = "no spread (1 run)"
		else if ($5 > hi[k]) v = "**FASTER**"; else if ($6 < lo[k]) v = "**SLOWER**"
		printf "| %s | %s | %s | %.4g | %.4g | %.3f | %.3f–%.3f | %s |\n", $1, $2, $3, m[k], $4,
			$4 / m[k], $5 / hi[k], $6 / lo[k], v
		n++
	}
	END { if (!n) print "(no row in common)" }' <(md_rows "$a") <(md_rows "$b")
}

main() {
	ARGS_STR=""
	[ $# -gt 0 ] && ARGS_STR=" $*"
	parse_args "$@"
	if [ ${#opt_compare[@]} -eq 2 ]; then
		compare "${opt_compare[@]}"
		return 0
	fi
	# Taken before the run, which rewrites perf/results: only edits to the
	# code make the tree dirty.
	if ROOK_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
		git -C "$ROOT" diff --quiet HEAD -- . ':(exclude)perf/results' || ROOK_REV+=" (dirty tree)"
	else
		ROOK_REV="no commit" # a tarball: nothing to call dirty
	fi
	mkdir -p "$BUILD"
	BUILD_LOG_DIR=$BUILD
	ensure_packages
	build_rook
	build_peers
	resolve_plan
	detect_asyncio
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	RAW=$TMP/raw.tsv SUMMARY=$TMP/summary.tsv
	: >"$RAW"
	mkdir -p "$RESULTS"
	say "workloads: $opt_workloads; threads: $opt_threads; runs: $opt_runs" \
		"$([ $opt_quick = 1 ] && echo '(quick)'); peers: ${PEER_IMPLS[*]:-none} ${ST_IMPLS[*]:-}" \
		"${ASYNC_IMPLS[*]:+; event loops: ${ASYNC_IMPLS[*]}}"
	run_all
	summarise
	echo
	markdown_table
	write_svg
	write_scaling
	write_markdown
	if awk -F'\t' '$2 == "rook" && ($5 == "FAIL" || $5 == "TIMEOUT") { f = 1 } END { exit !f }' "$RAW"; then
		say "some rook runs failed (see FAIL/TIMEOUT above)"
		exit 1
	fi
}

main "$@"
