#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/bench.sh — build rook-perf (Release) and run the workloads of
# shared/bench/WORKLOADS.md on rook and on Python asyncio (perf/asyncio/, the
# single-threaded event-loop model; uvloop too when importable), optionally
# side by side with the peer runtimes (Go, Tokio, Boost.Fiber), then
# summarise.
#
#   tools/bench.sh [--workloads a,b] [--threads 1,2] [--runs N] [--quick]
#                  [--peers DIR] [--timeout S]
#
#   --workloads   default: every workload rook-perf implements (rook-perf --list)
#   --threads     default: 1, every power of two up to nproc, and nproc
#   --runs N      runs per (workload, impl, threads); the median is reported
#                 (default 3; 1 with --quick unless --runs is given)
#   --quick       smoke-test sizes for rook-perf and perf/asyncio (peers always
#                 run full size, so only the rates are comparable); with the
#                 default threads it finishes in well under a minute
#   --peers DIR   DIR is shared/peers: builds DIR/cpu once if $BUILD_DIR
#                 (default /tmp/peers-cpu-build) lacks the binaries, then runs
#                 DIR/cpu/run-one.sh IMPL WORKLOAD THREADS for go, tokio and
#                 boost_fiber, alternating with the rook runs
#   --timeout S   per run (default 120)
#
# asyncio and uvloop run once per workload they implement, at threads=1 (an
# event loop is one thread), in the iteration of the first --threads value;
# without --quick some run a reduced N (their BENCH line says reduced=1).
#
# Run as root on a fresh Debian 12 machine it installs what is missing with
# apt-get. Output: every raw BENCH line on stdout, progress on stderr, and
# the summary table on stdout, in perf/results/latest.md and (with gnuplot)
# as a bar chart in perf/results/latest.svg. Peers that fail or lack a
# workload show as "-"; a rook run that fails shows as FAIL/TIMEOUT and
# makes the script exit 1 after writing the table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-release"
PERF="$BUILD/perf/rook-perf"
RESULTS="$ROOT/perf/results"
ASYNCIO="$ROOT/perf/asyncio"
PYTHON=/usr/bin/python3
PEER_IMPLS=(go tokio boost_fiber)
PEER_BINS=(bench-go bench-tokio bench-fiber)
BASE_PKGS=(cmake gcc g++ make pkg-config liburing-dev libhwloc-dev libcriterion-dev gnuplot-nox
	python3)
OPTIONAL_PKGS=(python3-uvloop) # installed when running as root, else skipped
PEER_PKGS=(golang-go librust-tokio-dev librust-async-channel-dev libboost-fiber-dev
	libboost-context-dev libtbb-dev libuv1-dev python3-uvloop)
export BUILD_DIR="${BUILD_DIR:-/tmp/peers-cpu-build}"

declare -A UNSUPPORTED=() # "impl/workload" -> 1 once it exited 2
opt_workloads="" opt_threads="" opt_runs="" opt_quick=0 opt_peers="" opt_timeout=120

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
		--quick) opt_quick=1 ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	[ -n "$opt_runs" ] || opt_runs=$([ $opt_quick = 1 ] && echo 1 || echo 3)
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

pkg_installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

peers_built() {
	local b
	for b in "${PEER_BINS[@]}"; do [ -x "$BUILD_DIR/$b" ] || return 1; done
}

ensure_packages() {
	local want=("${BASE_PKGS[@]}") missing=() p
	# The peer packages are only needed to build the peers.
	if [ -n "$opt_peers" ] && ! peers_built; then
		want+=("${PEER_PKGS[@]}")
		command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || want+=(cargo)
	fi
	for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	if [ "$(id -u)" = 0 ]; then
		for p in "${OPTIONAL_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	fi
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	fi
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 || die "apt-get update failed"
	apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
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
	[ -n "$opt_peers" ] || return 0
	if peers_built; then
		say "peers: using binaries in $BUILD_DIR"
		return 0
	fi
	[ -d "$HOME/.cargo/bin" ] && export PATH="$PATH:$HOME/.cargo/bin"
	say "peers: building with $opt_peers/cpu/build.sh (BUILD_DIR=$BUILD_DIR)"
	"$opt_peers/cpu/build.sh" >&2 || say "peers: some failed to build; they will show as '-'"
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
	case ",$list" in *",$n,"*) ;; *) list+="$n," ;; esac
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

# run_one IMPL WORKLOAD THREADS RUN: append one row to $RAW:
# workload impl threads run status ops_per_s extras (tab-separated).
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
		say "  $impl $w t=$t run $r: $status (exit $rc): $(tail -n 2 "$TMP/stderr" | tr '\n' ' ')"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$impl" "$t" "$r" "$status" "$rate" "${extras:--}" >>"$RAW"
}

# The impls of one (workload, thread count) cell; the event loops only in
# the first thread count's cell, where they run with threads=1.
cell_impls() {
	local w=$1 t=$2
	CELL=(rook)
	[ -n "$opt_peers" ] && CELL+=("${PEER_IMPLS[@]}")
	if [ "$t" = "${opt_threads%%,*}" ] && has_asyncio "$w"; then
		CELL+=("${ASYNC_IMPLS[@]}")
	fi
}

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
					case $impl in asyncio | uvloop) ti=1 ;; esac
					say "[$step/$total] $w threads=$ti run $r/$opt_runs: $impl"
					run_one "$impl" "$w" "$ti" "$r"
				done
			done
		done
	done
}

# ---- summary ------------------------------------------------------------

# $RAW -> $SUMMARY: workload impl threads median ok/total extras_of_median_run,
# in run order (workloads, then threads, then impl as first seen).
summarise() {
	awk -F'\t' -v OFS='\t' '
	{
		k = $1 SUBSEP $2 SUBSEP $3
		if (!(k in total)) { order[++nk] = k }
		total[k]++
		if ($5 == "ok") { n[k]++; v[k, n[k]] = $6 + 0; x[k, n[k]] = $7 }
		else if ($2 == "rook" && $5 != "UNSUPPORTED") bad[k] = $5
	}
	END {
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, p, SUBSEP); m = n[k] + 0
			if (m == 0) {
				print p[1], p[2], p[3], (k in bad ? bad[k] : "-"), "0/" total[k], "-"
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
			print p[1], p[2], p[3], sprintf("%.1f", med), m "/" total[k], e[mid]
		}
	}' "$RAW" >"$SUMMARY"
}

# $SUMMARY -> Markdown table on stdout.
markdown_table() {
	awk -F'\t' -v peers="${PEER_IMPLS[*]}" '
	BEGIN { np = split(peers, pl, " "); for (i = 1; i <= np; i++) is_peer[pl[i]] = 1 }
	function human(r) {
		if (r !~ /^[0-9.]+$/) return r
		if (r >= 1e9) return sprintf("%.2fG", r / 1e9)
		if (r >= 1e6) return sprintf("%.2fM", r / 1e6)
		if (r >= 1e3) return sprintf("%.2fk", r / 1e3)
		return sprintf("%.0f", r)
	}
	function num(r) { return r ~ /^[0-9.]+$/ }
	NR == FNR {
		if ($2 == "rook" && $3 == 1 && num($4)) base[$1] = $4
		if ($2 == "asyncio" && num($4)) aio[$1] = $4
		if (($2 in is_peer) && num($4) && $4 > best[$1, $3]) best[$1, $3] = $4
		next
	}
	FNR == 1 {
		print "| workload | impl | threads | ops/s (median) | vs rook t1 | vs asyncio | vs best peer | ok runs | extras (median run) |"
		print "|---|---|---|---|---|---|---|---|---|"
	}
	{
		sp = (num($4) && base[$1] > 0) ? sprintf("%.2fx", $4 / base[$1]) : "-"
		ap = (num($4) && aio[$1] > 0) ? sprintf("%.2fx", $4 / aio[$1]) : "-"
		bp = (num($4) && best[$1, $3] > 0) ? sprintf("%.2fx", $4 / best[$1, $3]) : "-"
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, human($4), sp, ap, bp, $5, $6
	}' "$SUMMARY" "$SUMMARY"
}

write_markdown() {
	local md=$RESULTS/latest.md cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
	{
		echo "# rook benchmark results"
		echo
		echo "Generated by \`tools/bench.sh$ARGS_STR\` on $(date '+%Y-%m-%d %H:%M')."
		echo "Machine: $(nproc) CPUs (${cpu:-unknown CPU}), $(uname -sr)." \
			"Runs per cell: $opt_runs (median ops/s)." \
			"rook: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')."
		[ $opt_quick = 1 ] && echo && echo "**--quick**: rook and asyncio ran the smoke-test sizes (peers full size); only rates are comparable, and barely."
		echo
		markdown_table
		echo
		echo "vs rook t1 = ops/s ÷ rook's median at 1 worker for the same workload;" \
			"vs asyncio = ops/s ÷ Python asyncio's (one event loop, threads=1; perf/asyncio/);" \
			"vs best peer = ops/s ÷ the fastest of ${PEER_IMPLS[*]} at the same threads" \
			"(>1: faster than every peer). \`-\`: not run, unsupported or failed." \
			"asyncio/uvloop rows that say reduced=1 ran a smaller N than WORKLOADS.md (size= gives it);" \
			"ops counts the work done, so the rates compare."
		echo "Workload definitions: shared/bench/WORKLOADS.md; how the peers map them: shared/peers/cpu/NOTES.md."
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
		set title 'rook vs asyncio and peers: ops/s (median of $opt_runs), log scale'
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

main() {
	ARGS_STR=""
	[ $# -gt 0 ] && ARGS_STR=" $*"
	parse_args "$@"
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
		"$([ $opt_quick = 1 ] && echo '(quick)')${opt_peers:+; peers: ${PEER_IMPLS[*]}}" \
		"${ASYNC_IMPLS[*]:+; event loops: ${ASYNC_IMPLS[*]}}"
	run_all
	summarise
	echo
	markdown_table
	write_markdown
	write_svg
	if awk -F'\t' '$2 == "rook" && ($5 == "FAIL" || $5 == "TIMEOUT") { f = 1 } END { exit !f }' "$RAW"; then
		say "some rook runs failed (see FAIL/TIMEOUT above)"
		exit 1
	fi
}

main "$@"
