#!/usr/bin/env bash
# bench/run.sh — the ngx_deferred benchmarks (also: ./build.sh bench).
#
# Starts its own redis-server, nginx (with the module when it is built) and
# deferred-worker processes on 127.0.0.1 in a temp dir, runs every workload
# of docs/BENCHMARKS.md bounded in time and task count, stops everything it
# started by pid (trap on exit), and prints one line per figure
#     figure: <name> <value> <unit>
# (a figure with a same-run ceiling is followed by its ratio line
#     figure: <name>/ceiling <ratio> ratio:<ceiling name>)
# then a readable table. A workload whose part is not built prints
#     figure: <name> n/a (<reason>)
#
#   bench/run.sh [--record] [--repeat R] [--only LIST] [--n N] [--keep]
#     --record     also write the table, machine, date and settings into
#                  docs/BENCHMARKS.md (between its "recorded run" markers)
#     --repeat R   runs per throughput figure, the median is reported (3)
#     --only LIST  comma-separated workloads: ceilings,http1,httpbatch,
#                  client,worker,tasklet,lateness,memory,deep,mix90,idle,
#                  push; and, only when named here: capacity, cluster
#     --n N        tasks per bounded workload (100000)
#     --keep       keep the temp dir (logs, configs) for inspection
#
# Environment: DQ_BUILD (default build/, the optimised build; the sanitizer
# build is never used here), BENCH_HTTP_SECONDS (10), BENCH_NGINX_WORKERS (2),
# BENCH_DEEP_N (1000000: the deep workload's delayed tasks),
# BENCH_WORKER_PROCS (one per core), BENCH_CLUSTER_N (60000: the cluster
# workload's tasks), BENCH_CAP_HEADROOM (0.5: the share of a core the
# capacity model lets a master use), BENCH_DUE_LIST (1: the client and
# worker workloads enqueue as while a worker claims the queue, the due list
# on; 0: as with no worker yet, the ETA set), BENCH_STAMP_DIR (where the
# lateness recorder appends: default a temp dir on /dev/shm).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DQ_BUILD:-$ROOT/build}
BENCH=$ROOT/bench

RECORD=0
REPEAT=3
ONLY=
N=100000
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --record) RECORD=1 ;;
        --repeat) REPEAT=$2; shift ;;
        --only)   ONLY=$2; shift ;;
        --n)      N=$2; shift ;;
        --keep)   KEEP=1 ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

CORES=$(nproc)
HTTP_SECONDS=${BENCH_HTTP_SECONDS:-10}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-2}
WORKER_PROCS=${BENCH_WORKER_PROCS:-$CORES}
WORKER_OPTS=${BENCH_WORKER_OPTS:-}   # e.g. "--claim-size 64 --concurrency 32"
WRK_THREADS=2
WRK_CONNS=50
LATENESS_N=2000
LATENESS_SPREAD_MS=10000
IDLE_WORKERS=4
IDLE_SECONDS=30     # one lease (the default 30 s): each child's idle look falls inside

TMP=$(mktemp -d /tmp/dqbench-XXXXXX)
# where bench.stamp appends its lines (lateness, deep): BENCH_STAMP_DIR, else
# a directory on tmpfs (/dev/shm) when there is one, else $TMP. On the disk
# a line's write took up to 6 ms while the disk wrote back (a dd loop beside
# the run; 0.15 ms without), holding the task's pool thread, and with the
# file's lock every thread appending to it: the recorder's own stall, not
# the worker's (results.py lateness prints write_max_ms).
STAMP_DIR=${BENCH_STAMP_DIR:-}
if [ -z "$STAMP_DIR" ]; then
    STAMP_DIR=$TMP
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        STAMP_DIR=$(mktemp -d /dev/shm/dqbench-XXXXXX) || STAMP_DIR=$TMP
    fi
fi
FIGS=$TMP/figures.tsv
META=$TMP/meta.txt
: >"$FIGS"
: >"$META"

PIDS=()
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------ processes

# Stop one process we started: TERM, wait up to 10 s, then KILL.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        log "temp dir kept: $TMP"
        [ "$STAMP_DIR" = "$TMP" ] || log "stamps kept: $STAMP_DIR"
    else
        rm -rf "$TMP"
        [ -z "${BENCH_STAMP_DIR:-}" ] && [ "$STAMP_DIR" != "$TMP" ] && rm -rf "$STAMP_DIR"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# spawn LOG CMD...: start in the background, remember the pid in $SPAWNED
spawn() {
    local logf=$1; shift
    "$@" </dev/null >>"$logf" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# forget a pid after stopping it
stop_spawned() {
    local pid=$1 i
    stop_pid "$pid"
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[$i]}" = "$pid" ] && unset 'PIDS[i]'
    done
    PIDS=("${PIDS[@]}")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# direct children of a pid (the worker master's children)
# (from /proc: procps' ps is not in every minimal Debian)
children_of() {
    local f l rest
    for f in /proc/[0-9]*/stat; do
        read -r l <"$f" 2>/dev/null || continue
        rest=${l##*) }          # "state ppid ...": comm may hold spaces
        rest=${rest#* }
        if [ "${rest%% *}" = "$1" ]; then f=${f#/proc/}; echo "${f%/stat}"; fi
    done
}

# ns on CPU of a pid (all its threads), from the scheduler
# (summed over its live threads: the pool threads live as long as the process)
cpu_ns() { cat /proc/$1/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# peak RSS (VmHWM) of a pid in KiB
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- figures

declare -A FIG

# figure NAME VALUE UNIT [CEILING_NAME]
figure() {
    local name=$1 value=$2 unit=$3 ceil=${4:-} ratio=
    FIG[$name]=$value
    printf 'figure: %s %s %s\n' "$name" "$value" "$unit"
    if [ -n "$ceil" ] && [ -n "${FIG[$ceil]:-}" ] && [ "${FIG[$ceil]}" != n/a ]; then
        ratio=$(awk -v a="$value" -v b="${FIG[$ceil]}" \
                'BEGIN { if (b > 0) printf "%.3f", a / b }')
        [ -n "$ratio" ] &&
            printf 'figure: %s/ceiling %s ratio:%s\n' "$name" "$ratio" "$ceil"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$value" "$unit" "$ceil" "$ratio" >>"$FIGS"
}

# na NAME REASON: a figure that cannot be measured in this tree
na() {
    FIG[$1]=n/a
    printf 'figure: %s n/a (%s)\n' "$1" "$2"
    printf '%s\tn/a\t\t\t\t%s\n' "$1" "$2" >>"$FIGS"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# key=value field from a line
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1" | head -1; }

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ------------------------------------------------------------------ redis

REDIS_PORT=
REDIS_PID=
start_redis() {
    REDIS_PORT=$(free_port)
    mkdir -p "$TMP/redis"
    spawn "$TMP/redis/redis.log" redis-server --port "$REDIS_PORT" \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
        --daemonize no --protected-mode no --maxclients 10000
    REDIS_PID=$SPAWNED
    wait_port "$REDIS_PORT" || die "redis-server did not start: $(tail -5 "$TMP/redis/redis.log")"
}

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# the due list (issue #12) on for queue "default", as a running worker's
# claims keep it (stats due_until, docs/CONTRACT.md "The due list"):
# producers put due-now plain tasks there. now + 59 s: enqueue takes a
# due_until more than 60 s ahead for one written on a clock since stepped
# back, and lists nothing (review RR2, finding 4). BENCH_DUE_LIST=0: off.
due_list_on() {
    local t
    [ "${BENCH_DUE_LIST:-1}" = 1 ] || return 0
    t=$(rcli TIME | head -1)
    rcli HSET "$STATS_KEY" due_until "$(( (t + 59) * 1000 ))" >/dev/null
}

# a field of INFO
rinfo() { rcli INFO "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

redis_cpu_s() {
    rcli INFO cpu | tr -d '\r' |
        awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'
}

flush() { rcli FLUSHALL >/dev/null; }

# Evidence about a measured window that other load on the machine does not
# change: Redis' latency events (latency-monitor-threshold 1 ms: fork,
# expire-cycle, command...), its calls over 0.5 ms (SLOWLOG, wall time:
# read with the next line), and its process' CPU time, time waiting for a
# core (schedstat) and page faults over the window.
redis_sched() {
    local s f
    read -r -a s <"/proc/$REDIS_PID/schedstat"
    read -r f <"/proc/$REDIS_PID/stat"
    f=${f##*) }
    read -r -a f <<<"$f"
    # run ns, runqueue wait ns, minor faults, major faults
    echo "${s[0]} ${s[1]} ${f[7]} ${f[9]}"
}
REDIS_WIN0=
redis_window_begin() {
    rcli CONFIG SET latency-monitor-threshold 1 >/dev/null
    rcli CONFIG SET slowlog-log-slower-than 500 slowlog-max-len 1024 >/dev/null
    rcli LATENCY RESET >/dev/null
    rcli SLOWLOG RESET >/dev/null
    REDIS_WIN0=$(redis_sched)
}
redis_window_end() {
    local name=$1 a b
    read -r -a a <<<"$REDIS_WIN0"
    read -r -a b <<<"$(redis_sched)"
    log "$name: redis process over the window: cpu $(( (b[0] - a[0]) / 1000000 )) ms, waited for a core $(( (b[1] - a[1]) / 1000000 )) ms, faults minor $(( b[2] - a[2] )) major $(( b[3] - a[3] ))"
    log "$name: latency events (event, at, latest ms, max ms): $(rcli LATENCY LATEST | tr '\n' ' ')"
    rcli --json SLOWLOG GET 1024 >"$TMP/slowlog-$name.json"
    log "$name: redis calls over 0.5 ms: $(python3 "$BENCH/results.py" slowlog "$TMP/slowlog-$name.json")"
    rcli CONFIG SET latency-monitor-threshold 0 >/dev/null
    rcli CONFIG SET slowlog-log-slower-than 10000 >/dev/null
}

# ------------------------------------------------------------------ nginx

MODULE_SO=$BUILD/ngx_http_deferred_module.so
NGINX_PORT=
NGINX_PID=
HAVE_MODULE=0

# The deferred endpoint's location block, in the module's directives
# (docs/MODULE.md); empty when the module is not built.
module_location() {
    [ "$HAVE_MODULE" = 1 ] || return 0
    cat <<EOF
        location = /_ah/queue/deferred {
            deferred_redis 127.0.0.1:$REDIS_PORT;
            deferred_endpoint on;
        }
EOF
}

start_nginx() {
    local d=$TMP/nginx load=
    mkdir -p "$d/logs" "$d/tmp"
    NGINX_PORT=$(free_port)
    if [ -f "$MODULE_SO" ]; then
        HAVE_MODULE=1
        load="load_module $MODULE_SO;"
    fi
    cat >"$d/nginx.conf" <<EOF
$load
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
user $(id -un) $(id -gn);
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 2m;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /ceiling { return 202; }
$(module_location)
    }
}
EOF
    if ! nginx -t -q -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>"$d/t.log"; then
        if [ "$HAVE_MODULE" = 1 ]; then
            log "nginx -t failed with the module; benchmarking without it: $(tail -3 "$d/t.log")"
            MODULE_FAIL=$(tail -1 "$d/t.log")
            HAVE_MODULE=0
            start_nginx_plain
            return
        fi
        die "nginx -t failed: $(cat "$d/t.log")"
    fi
    spawn "$d/logs/stderr.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
    NGINX_PID=$SPAWNED
    wait_port "$NGINX_PORT" || die "nginx did not start: $(tail -5 "$d/logs/error.log")"
}

# ns on CPU of the nginx master and its workers
nginx_cpu_ns() {
    local p t=0
    for p in $NGINX_PID $(children_of "$NGINX_PID"); do t=$((t + $(cpu_ns "$p"))); done
    echo "$t"
}

start_nginx_plain() { MODULE_SO=/nonexistent; start_nginx; }

# wrk_run NAME PATH BODY_FILE CTYPE MAX_REQ SECONDS: prints the wrk_result line
wrk_run() {
    local name=$1 path=$2 body=$3 ctype=$4 max=$5 secs=$6 out=$TMP/wrk-$1.log
    BENCH_BODY=$body BENCH_CTYPE=$ctype BENCH_MAX_REQ=$max BENCH_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${secs}s" --timeout 5s \
        -s "$BENCH/post.lua" "http://127.0.0.1:$NGINX_PORT$path" >>"$out" 2>&1 ||
        { log "wrk failed: $(tail -3 "$out")"; echo; return 0; }
    grep '^wrk_result' "$out" | tail -1
}

# ----------------------------------------------------------------- worker

WORKER_BIN=$BUILD/worker/deferred-worker
TASKS_SO=$BUILD/bench/libdq_bench_tasks.so
ENQ=$BUILD/bench/dq-bench-enqueue
WAITER=$BUILD/bench/dq-bench-wait
STATS_KEY='dq2:{default}:stats'

# start_worker PROCS LIBRARY...: one master with PROCS children (pid in
# $WORKER_PID); docs/WORKER.md has the command line
WORKER_PID=
RUN_FAIL=
start_worker() {
    local procs=$1; shift
    local args=(-r "127.0.0.1:$REDIS_PORT" -q default --processes "$procs" $WORKER_OPTS) lib
    for lib in "$@"; do args+=(-l "$lib"); done
    spawn "$TMP/worker.log" "$WORKER_BIN" "${args[@]}"
    WORKER_PID=$SPAWNED
}

# the worker master and its children
worker_pids() { echo "$WORKER_PID"; children_of "$WORKER_PID"; }

worker_missing() {
    [ -x "$WORKER_BIN" ] || { echo "deferred-worker not built"; return 0; }
    [ -f "$TASKS_SO" ] || { echo "bench task library not built"; return 0; }
    [ -x "$ENQ" ] || { echo "C client (client/client.c) not built"; return 0; }
    return 1
}

# ================================================================ machine

machine_info() {
    local model
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
        echo "cpu: $CORES cores, $model"
        echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "kernel: $(uname -sr)"
        echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
        echo "redis: $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
        echo "nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///')"
        echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
        echo "due list: ${BENCH_DUE_LIST:-1} (client and worker workloads, http1_listed; http1 runs with it off)"
    echo "settings: N=$N repeat=$REPEAT (median) http=${HTTP_SECONDS}s wrk=${WRK_THREADS}t/${WRK_CONNS}c nginx_workers=$NGINX_WORKERS worker_procs=$WORKER_PROCS worker_opts=\"${WORKER_OPTS:-defaults}\" (and \"$WORKER_TUNED\" for worker_b256) lateness=${LATENESS_N}/${LATENESS_SPREAD_MS}ms idle=${IDLE_WORKERS}x${IDLE_SECONDS}s"
    } >>"$META"
}

# run N queued tasks of FUNC through one master with WORKER_PROCS children;
# sets RUN_RATE RUN_WCPU_US RUN_RCPU_US RUN_RSS_CHILD RUN_RSS_MASTER
drain_run() {
    local func=$1 lib=$2 out t0 w rc0 rc1 cpu=0 p hwm maxc=0 master=0
    flush
    due_list_on
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -f "$func" -t 60 \
        >/dev/null 2>>"$TMP/enqueue.log" || { log "$func: filling the queue failed"; return 1; }
    rcli CONFIG RESETSTAT >/dev/null
    rc0=$(redis_cpu_s)
    t0=$EPOCHREALTIME
    start_worker "$WORKER_PROCS" "$lib"
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$N" -i 5 -t 120 \
          -x dead -x retried) ||
        { RUN_FAIL="$func: worker did not finish ($out): $(grep -m1 -o 'reason=.*' "$TMP/worker.log" | cut -c1-300)"
          log "$RUN_FAIL"
          stop_spawned "$WORKER_PID"; return 1; }
    rc1=$(redis_cpu_s)
    # a master with children: the children run tasks; a single process
    # (no children) runs them itself and counts as the task-running one
    local kids
    kids=$(children_of "$WORKER_PID")
    for p in $(worker_pids); do
        cpu=$((cpu + $(cpu_ns "$p")))
        hwm=$(hwm_kib "$p")
        if [ "$p" = "$WORKER_PID" ] && [ -n "$kids" ]; then master=$hwm
        elif [ "$hwm" -gt "$maxc" ]; then maxc=$hwm; fi
    done
    RUN_PROCS=$(( $(wc -w <<<"$kids") ))
    stop_spawned "$WORKER_PID"
    RUN_RATE=$(awk -v n="$N" -v a="$t0" -v b="$(kv "$out" done_s)" 'BEGIN { printf "%.0f", n / (b - a) }')
    RUN_WCPU_US=$(awk -v c="$cpu" -v n="$N" 'BEGIN { printf "%.2f", c / 1000 / n }')
    RUN_RCPU_US=$(awk -v a="$rc0" -v b="$rc1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
    RUN_RSS_CHILD=$(awk -v k="$maxc" 'BEGIN { printf "%.1f", k / 1024 }')
    if [ "$RUN_PROCS" -gt 0 ]; then
        RUN_RSS_MASTER=$(awk -v k="$master" 'BEGIN { printf "%.1f", k / 1024 }')
    else
        RUN_RSS_MASTER=n/a
    fi
    log "$func: $N tasks at $RUN_RATE/s, worker ${RUN_WCPU_US} us/task, redis ${RUN_RCPU_US} us/task, rss child ${RUN_RSS_CHILD} MiB"
    # script calls and their time inside Redis (commandstats: robust to
    # other load on the machine, unlike the CPU delta)
    log "$func: $(rcli INFO commandstats | tr -d '\r' | awk -F'[=,:]' -v n="$N" \
        '/^cmdstat_evalsha:/ { printf "EVALSHA %d calls, %.1f tasks per call, %.2f us of script per task", $3, n / $3, $5 / n }')"
}

# the large-batch worker settings (worker_b256 figures; machine_info)
WORKER_TUNED="--claim-size 256 --concurrency 256"

# ============================================================== workloads

# one file per workload, bench/wl/NAME.sh, each defining wl_NAME; the
# order here is the order they run in
WORKLOADS="ceilings http1 httpbatch client worker tasklet lateness memory deep mix90 idle push capacity cluster"
for w in $WORKLOADS; do
    # shellcheck source=/dev/null
    . "$BENCH/wl/$w.sh"
done

# ================================================================== main

command -v redis-server >/dev/null || die "redis-server not installed (./build.sh deps)"
command -v redis-benchmark >/dev/null || die "redis-benchmark not installed"
command -v nginx >/dev/null || die "nginx not installed"
command -v wrk >/dev/null || die "wrk not installed"
command -v python3 >/dev/null || die "python3 not installed"

machine_info
# what else runs on this machine during each workload (the other helpers'
# builds and tests): CPU of every process that is not ours, sampled
spawn "$TMP/sampler.log" python3 "$BENCH/results.py" sample $$ "$TMP/load.txt"
SAMPLER_PID=$SPAWNED
START_S=$EPOCHREALTIME

# request bodies: one task, and arrays of 100 and 1,000 (small args)
python3 "$BENCH/results.py" bodies "$TMP"

start_redis
start_nginx
log "redis :$REDIS_PORT, nginx :$NGINX_PORT (module: $([ "$HAVE_MODULE" = 1 ] && echo yes || echo no)), temp $TMP"

for w in $WORKLOADS; do
    # capacity (and cluster) only when asked for by --only
    case $w in capacity|cluster) [ -n "$ONLY" ] || continue ;; esac
    if want "$w"; then
        t0=$EPOCHREALTIME
        "wl_$w"
        echo "$w $t0 $EPOCHREALTIME" >>"$TMP/windows.txt"
    fi
done
echo "whole_run $START_S $EPOCHREALTIME" >>"$TMP/windows.txt"
echo "duration: $(awk -v a="$START_S" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f s", b - a }')" >>"$META"
stop_spawned "$SAMPLER_PID"
python3 "$BENCH/results.py" load "$TMP/load.txt" "$TMP/windows.txt" |
    sed 's/^\([^:]*\): /other load during \1: /' >>"$META"

echo
python3 "$BENCH/results.py" table "$FIGS" "$META"
if [ "$RECORD" = 1 ]; then
    python3 "$BENCH/results.py" record "$FIGS" "$META" "$ROOT/docs/BENCHMARKS.md"
    log "recorded in docs/BENCHMARKS.md"
fi
