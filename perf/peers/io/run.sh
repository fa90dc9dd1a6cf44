#!/bin/bash
# IO peer benchmarks: tcp_echo, http_hello, file_io (see shared/bench/WORKLOADS.md).
#
# usage: ./run.sh [all|echo|http|file]...      (default: all)
# env:   RUNS=3              measured runs per configuration (table = median)
#        ECHO_CONNS=100      tcp_echo connections C
#        ECHO_ROUNDS=10000   tcp_echo round trips per connection R (upper bound, see below)
#        ECHO_MSG=64         tcp_echo message size in bytes
#        ECHO_TARGET_S=25    R is scaled down (per server, from a 1,000-round calibration run)
#                            so that one run stays under ~this many seconds (brief: >30 s -> scale R)
#        WRK_DURATION=5s     wrk -d
#        QUIET_WAIT_S=90     before every run, wait up to this long for the box to be idle
#                            (other benchmarks share this 2-core VM); busy_pct is recorded
#        CLIENT_CPU=0 SERVER_CPU=1   cores for load generator / server (taskset)
#        ONLY="impl[:threads] ..."    run only these rows, e.g. ONLY="libuv tokio_mt:2 nginx:1"
#        APPEND=1            add to the existing raw log (summarize.py keeps the last 3 clean runs
#                            per row) instead of starting a new one; results.md is then rewritten
#
# Everything it starts is tracked by PID and killed by PID; every process runs
# under `timeout`, every load run is bounded in count and time. Only 127.0.0.1.
# Writes: BENCH lines to stdout and /tmp/peers-io-run/bench_lines.txt, the table
# to ./results.md; file_io data under /tmp/peers-io-run/fileio (deleted after).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN="${BIN_DIR:-/tmp/peers-io-bin}"
PY=/usr/bin/python3
RUNS=${RUNS:-3}
ECHO_CONNS=${ECHO_CONNS:-100}
ECHO_ROUNDS=${ECHO_ROUNDS:-10000}
ECHO_MSG=${ECHO_MSG:-64}
ECHO_TARGET_S=${ECHO_TARGET_S:-25}
WRK_DURATION=${WRK_DURATION:-5s}
QUIET_WAIT_S=${QUIET_WAIT_S:-90}
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
SERVER_MAX_S=600            # hard lifetime of any server we start
OUT=/tmp/peers-io-run
RAW=$OUT/bench_lines.txt
mkdir -p "$OUT"
[ "${APPEND:-0}" = 1 ] || : > "$RAW"
ONLY=${ONLY:-}
want() { # impl threads -> should this row run?
  [ -z "$ONLY" ] && return 0
  local w; for w in $ONLY; do [ "$w" = "$1" ] || [ "$w" = "$1:$2" ] && return 0; done; return 1
}

STARTED=()                  # PIDs of everything we started (the `timeout` wrappers)
cleanup() {
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$OUT/fileio"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $*" >&2; }

# CPU ticks (utime+stime) of a process and all its descendants.
tree_ticks() {
  local pid=$1 t=0 c
  [ -r /proc/$pid/stat ] && t=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null || echo 0)
  for c in $(pgrep -P "$pid" 2>/dev/null); do t=$((t + $(tree_ticks "$c"))); done
  echo "$t"
}

wait_port() { # port pid
  local i
  for i in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

SPID=""
start_server() { # port logname cmd...
  local port=$1 name=$2; shift 2
  taskset -c "$SERVER_CPU" timeout -s TERM -k 5 "$SERVER_MAX_S" "$@" >"$OUT/$name.log" 2>&1 &
  SPID=$!
  STARTED+=("$SPID")
  if ! wait_port "$port" "$SPID"; then
    log "server $name did not come up on port $port:"; cat "$OUT/$name.log" >&2
    stop_server; return 1
  fi
}
stop_server() {
  [ -n "$SPID" ] || return 0
  kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" != "$SPID" ] && keep+=("$p"); done
  STARTED=("${keep[@]}")
  SPID=""
}

BUSY=0
quiet() { BUSY=$("$HERE/quiet.sh" "$QUIET_WAIT_S" 15) || log "machine still busy (${BUSY}%) after ${QUIET_WAIT_S}s; measuring anyway"; }

emit() { echo "$1"; echo "$1" >> "$RAW"; }

# ---------------------------------------------------------------- tcp_echo
echo_one() { # impl threads port cmd...
  local impl=$1 th=$2 port=$3; shift 3
  want "$impl" "$th" || return 0
  log "tcp_echo $impl threads=$th"
  start_server "$port" "echo_$impl$th" "$@" || return 1
  local cal rate rounds line t0 t1 i
  cal=$(timeout 120 taskset -c "$CLIENT_CPU" "$BIN/echo_client" -p "$port" -c "$ECHO_CONNS" -r 1000 \
        -s "$ECHO_MSG" -t 100 -i "$impl" -T "$th") || { log "calibration failed"; stop_server; return 1; }
  rate=$(sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p' <<<"$cal")
  rounds=$(awk -v r="$rate" -v c="$ECHO_CONNS" -v t="$ECHO_TARGET_S" -v max="$ECHO_ROUNDS" \
           'BEGIN{n=int(r*t/c/100)*100; if(n>max)n=max; if(n<100)n=100; print n}')
  [ "$rounds" -lt "$ECHO_ROUNDS" ] && log "R scaled down to $rounds (calibration: $rate rt/s)"
  for i in $(seq "$RUNS"); do
    quiet
    t0=$(tree_ticks "$SPID")
    line=$(timeout 60 taskset -c "$CLIENT_CPU" "$BIN/echo_client" -p "$port" -c "$ECHO_CONNS" -r "$rounds" \
           -s "$ECHO_MSG" -t 55 -i "$impl" -T "$th") || { log "run $i FAILED"; continue; }
    t1=$(tree_ticks "$SPID")
    local wall; wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$line")
    emit "$line server_cpu=$(awk -v d=$((t1-t0)) -v w="$wall" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", d/hz/w}') busy_pct=$BUSY"
  done
  stop_server
}

run_echo() {
  echo_one asyncio       1 19101 "$PY" "$HERE/servers/py_echo.py" 19101
  echo_one asyncio_uvloop 1 19102 "$PY" "$HERE/servers/py_echo.py" 19102 --uvloop
  echo_one go_net        1 19103 "$BIN/go_echo" 19103 1
  echo_one go_net        2 19104 "$BIN/go_echo" 19104 2
  echo_one tokio_ct      1 19105 "$BIN/tokio_echo" 19105 0
  echo_one tokio_mt      1 19106 "$BIN/tokio_echo" 19106 1
  echo_one tokio_mt      2 19107 "$BIN/tokio_echo" 19107 2
  echo_one libuv         1 19108 "$BIN/uv_echo" 19108
  echo_one liburing_raw  1 19109 "$BIN/uring_echo" 19109
}

# ---------------------------------------------------------------- http_hello
to_us() { # "1.23ms" -> 1230
  awk -v v="$1" 'BEGIN{u=v; sub(/[0-9.]+/,"",u); n=v+0; m=(u=="us")?1:(u=="ms")?1000:(u=="s")?1e6:(u=="m")?6e7:0; printf "%.0f", n*m}'
}

http_one() { # impl threads port cmd...
  local impl=$1 th=$2 port=$3; shift 3
  want "$impl" "$th" || return 0
  log "http_hello $impl threads=$th"
  start_server "$port" "http_$impl$th" "$@" || return 1
  if ! "$PY" "$HERE/http/http_check.py" "$port" >/dev/null; then log "$impl: response check FAILED"; stop_server; return 1; fi
  # short warm-up so lazily-started workers / JITs are running
  timeout 20 taskset -c "$CLIENT_CPU" wrk -t1 -c100 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1
  local i out t0 t1 reqs secs rps p50 p99 errs
  for i in $(seq "$RUNS"); do
    quiet
    t0=$(tree_ticks "$SPID")
    out=$(timeout 60 /usr/bin/time -f "%U %S" -o "$OUT/wrk.time" taskset -c "$CLIENT_CPU" wrk -t1 -c100 -d"$WRK_DURATION" --latency "http://127.0.0.1:$port/" 2>&1)
    t1=$(tree_ticks "$SPID")
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1/p' <<<"$out")
    secs=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\2/p' <<<"$out")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    p50=$(to_us "$(awk '$1=="50%"{print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1=="99%"{print $2}' <<<"$out")")
    errs=$(awk '/Socket errors/{gsub(/,/,""); s+=$4+$6+$8+$10} /Non-2xx/{s+=$NF} END{print s+0}' <<<"$out")
    if [ -z "$reqs" ] || [ -z "$rps" ] || [ "$errs" != 0 ]; then log "run $i FAILED:"; echo "$out" >&2; continue; fi
    emit "BENCH workload=http_hello impl=$impl threads=$th ops=$reqs wall_s=$secs ops_per_s=$rps p50_us=$p50 p99_us=$p99 errors=$errs server_cpu=$(awk -v d=$((t1-t0)) -v w="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", d/hz/w}') client_cpu=$(awk -v w="$secs" '{printf "%.2f", ($1+$2)/w}' "$OUT/wrk.time") busy_pct=$BUSY"
  done
  stop_server
}

nginx_conf() { # workers port -> path of conf
  local d="$OUT/nginx$1"
  mkdir -p "$d"
  cat > "$d/nginx.conf" <<EOF
worker_processes $1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$2;
        location / {
            default_type text/plain;
            return 200 "Hello, World!";
        }
    }
}
EOF
  echo "$d/nginx.conf"
}

run_http() {
  http_one go_nethttp      1 19201 "$BIN/go_http" 19201 1
  http_one go_nethttp      2 19202 "$BIN/go_http" 19202 2
  http_one tokio_raw_ct    1 19203 "$BIN/tokio_http" 19203 0
  http_one tokio_raw_mt    2 19204 "$BIN/tokio_http" 19204 2
  http_one hyper_ct        1 19205 "$BIN/hyper_http" 19205 0
  http_one hyper_mt        2 19206 "$BIN/hyper_http" 19206 2
  http_one asyncio         1 19207 "$PY" "$HERE/servers/py_http.py" 19207
  http_one asyncio_uvloop  1 19208 "$PY" "$HERE/servers/py_http.py" 19208 --uvloop
  local c
  c=$(nginx_conf 1 19209); http_one nginx 1 19209 /usr/sbin/nginx -e "$OUT/nginx1/error.log" -p "$OUT/nginx1" -c "$c"
  c=$(nginx_conf 2 19210); http_one nginx 2 19210 /usr/sbin/nginx -e "$OUT/nginx2/error.log" -p "$OUT/nginx2" -c "$c"
}

# ---------------------------------------------------------------- file_io
# No client/server split here: each implementation runs unpinned on both cores.
file_one() { # impl cmd...   (the command prints its own BENCH line)
  local impl=$1; shift
  want "$impl" "" || return 0
  log "file_io $impl"
  local i line
  for i in $(seq "$RUNS"); do
    rm -rf "$OUT/fileio"; mkdir -p "$OUT/fileio"
    quiet
    if declare -F "$1" >/dev/null; then line=$("$@" | grep '^BENCH')   # shell function (bounds itself)
    else line=$(timeout 300 "$@" | grep '^BENCH'); fi || { log "run $i FAILED"; continue; }
    emit "$line busy_pct=$BUSY"
  done
  rm -rf "$OUT/fileio"
}

fio_bench() { # wraps fio so it prints a BENCH line like the others
  local json="$OUT/fio.json" t0 t1
  t0=$(date +%s.%N)
  FIO_DIR="$OUT/fileio" timeout 300 fio --output-format=json --output="$json" "$HERE/fileio/file_io.fio" || return 1
  t1=$(date +%s.%N)
  "$PY" - "$json" "$t0" "$t1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); j = d["jobs"][0]
if j["error"] or j["write"]["io_bytes"] != 1 << 30 or j["read"]["io_bytes"] != 1 << 30:
    sys.exit("fio: error or short io")
wall = j["job_runtime"] / 1000.0      # write phase + verify-read phase, ms resolution
mib = (j["write"]["io_bytes"] + j["read"]["io_bytes"]) / (1 << 20)
print(f"BENCH workload=file_io impl=fio_io_uring threads=1 ops={mib:.0f} wall_s={wall:.3f} ops_per_s={mib / wall:.1f} "
      f"write_s={j['write']['runtime'] / 1000:.3f} read_s={j['read']['runtime'] / 1000:.3f} "
      f"ext_wall_s={float(sys.argv[3]) - float(sys.argv[2]):.3f}")
EOF
}

run_file() {
  file_one py_asyncio_threadpool "$PY" "$HERE/fileio/py_fileio.py" "$OUT/fileio"
  file_one go      "$BIN/go_fileio" "$OUT/fileio" 2
  file_one tokio   "$BIN/tokio_fileio" "$OUT/fileio" 2
  file_one fio     fio_bench
}

# ---------------------------------------------------------------- main
what=("$@"); [ ${#what[@]} -eq 0 ] && what=(all)
for w in "${what[@]}"; do
  case $w in
    all) run_echo; run_http; run_file ;;
    echo) run_echo ;;
    http) run_http ;;
    file) run_file ;;
    *) echo "unknown: $w" >&2; exit 2 ;;
  esac
done

cat > "$OUT/results.meta" <<EOF
Generated by \`run.sh ${what[*]}\` on $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), Linux $(uname -r), Debian $(cat /etc/debian_version).
Median of $RUNS runs per row ("min-max" = range of the runs). Client/load generator pinned to CPU $CLIENT_CPU, server to CPU $SERVER_CPU
(taskset); **client and server share this 2-core VM**, and on loopback the kernel TCP work of one side partly runs on the other
side's core, so these are same-box numbers, not network numbers. threads>1 on a server pinned to one core = oversubscription.
server_cpu / client_cpu = CPU seconds per wall second of that process tree (1.00 = one core saturated).
busy_pct = whole-machine CPU busy % in the 1 s before the run (our own processes idle): other jobs share this VM.
tcp_echo: C=$ECHO_CONNS connections, ${ECHO_MSG}-byte messages, R per connection in the "rounds" column
(R=$ECHO_ROUNDS unless a run would take > ${ECHO_TARGET_S} s, then scaled from a calibration run).
http_hello: wrk -t1 -c100 -d$WRK_DURATION --latency; p50/p99 from wrk's latency distribution.
file_io: 256 files x 4 MiB, 64 KiB writes, fsync, read back, checksum; ops = 2048 MiB (written + read); unpinned, files in /tmp (ext4 on virtio disk),
read-back is served from the page cache (no cache drop). fio wall = fio job_runtime (write + verify-read).
EOF
if [ "${what[*]}" = all ] || [ "${APPEND:-0}" = 1 ]; then
  "$PY" "$HERE/summarize.py" "$RAW" "$HERE/results.md" "$OUT/results.meta" > /dev/null && log "wrote $HERE/results.md"
else
  cp "$RAW" "$OUT/bench_lines_${what[*]// /_}.txt"
  log "partial run: lines kept in $OUT/bench_lines_${what[*]// /_}.txt; results.md not rewritten (use ./run.sh all)"
fi
