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
# capacity model lets a master use).
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
IDLE_SECONDS=10

TMP=$(mktemp -d /tmp/dqbench-XXXXXX)
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
    else
        rm -rf "$TMP"
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

# a field of INFO
rinfo() { rcli INFO "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

redis_cpu_s() {
    rcli INFO cpu | tr -d '\r' |
        awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'
}

flush() { rcli FLUSHALL >/dev/null; }

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
        echo "settings: N=$N repeat=$REPEAT (median) http=${HTTP_SECONDS}s wrk=${WRK_THREADS}t/${WRK_CONNS}c nginx_workers=$NGINX_WORKERS worker_procs=$WORKER_PROCS worker_opts=\"${WORKER_OPTS:-defaults}\" (and \"$WORKER_TUNED\" for worker_b256) lateness=${LATENESS_N}/${LATENESS_SPREAD_MS}ms idle=${IDLE_WORKERS}x${IDLE_SECONDS}s"
    } >>"$META"
}

# ============================================================== workloads

wl_ceilings() {
    local i out v vals

    log "ceiling: nginx return 202 (wrk ${WRK_THREADS}t ${WRK_CONNS}c ${HTTP_SECONDS}s, same POST body)"
    vals=()
    for i in $(seq 1 "$REPEAT"); do
        out=$(wrk_run ceiling /ceiling "$TMP/body1.json" application/json 0 "$HTTP_SECONDS")
        v=$(kv "$out" requests); d=$(kv "$out" duration_us)
        [ -n "$v" ] && vals+=("$(awk -v r="$v" -v d="$d" 'BEGIN { printf "%.0f", r / (d / 1e6) }')")
    done
    if [ ${#vals[@]} -gt 0 ]; then figure ceiling.nginx_return_202 "$(median "${vals[@]}")" req/s
    else na ceiling.nginx_return_202 "wrk failed"; fi

    log "ceiling: redis-benchmark ZADD -P 16"
    vals=()
    for i in $(seq 1 "$REPEAT"); do
        v=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 50 -n 1000000 -P 16 \
                -r 1000000 --csv zadd bench:z __rand_int__ m:__rand_int__ |
            awk -F'","' 'NR == 2 { print $2 + 0 }')
        vals+=("${v%.*}")
        flush
    done
    figure ceiling.redis_zadd_p16 "$(median "${vals[@]}")" ops/s

    # the enqueue script's core: ZADD + HSET of a small envelope
    local script="redis.call('ZADD',KEYS[1],ARGV[1],ARGV[2]) redis.call('HSET',KEYS[2],ARGV[2],ARGV[3]) return 1"
    local envelope
    envelope=$(printf 'x%.0s' $(seq 1 60))
    log "ceiling: redis-benchmark EVAL ZADD+HSET, unpipelined and -P 16"
    vals=()
    for i in $(seq 1 "$REPEAT"); do
        v=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 50 -n 200000 -r 1000000 --csv \
                eval "$script" 2 'bench:{b}:eta' 'bench:{b}:tasks' __rand_int__ id:__rand_int__ "$envelope" |
            awk -F'","' 'NR == 2 { print $2 + 0 }')
        vals+=("${v%.*}")
        flush
    done
    figure ceiling.redis_eval_zadd_hset "$(median "${vals[@]}")" ops/s
    vals=()
    for i in $(seq 1 "$REPEAT"); do
        v=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 50 -n 500000 -P 16 -r 1000000 --csv \
                eval "$script" 2 'bench:{b}:eta' 'bench:{b}:tasks' __rand_int__ id:__rand_int__ "$envelope" |
            awk -F'","' 'NR == 2 { print $2 + 0 }')
        vals+=("${v%.*}")
        flush
    done
    figure ceiling.redis_eval_zadd_hset_p16 "$(median "${vals[@]}")" ops/s
}

# 1. one task per POST
wl_http1() {
    local i out vals=() p50s=() p99s=() errs=0 e
    if [ "$HAVE_MODULE" != 1 ]; then
        local why=${MODULE_FAIL:-"nginx module not built"}
        na http1.tasks_per_s "$why"; na http1.p50_ms "$why"; na http1.p99_ms "$why"
        na http1.errors "$why"
        return
    fi
    log "http1: one task per POST (wrk ${WRK_THREADS}t ${WRK_CONNS}c ${HTTP_SECONDS}s)"
    local rcpu=() ncpu=() r0 r1 n0 n1 tasks
    for i in $(seq 1 "$REPEAT"); do
        flush
        rcli CONFIG RESETSTAT >/dev/null
        r0=$(redis_cpu_s); n0=$(nginx_cpu_ns)
        out=$(wrk_run http1 /_ah/queue/deferred "$TMP/body1.json" application/json 0 "$HTTP_SECONDS")
        r1=$(redis_cpu_s); n1=$(nginx_cpu_ns)
        [ -n "$out" ] || continue
        tasks=$(rcli HGET "$STATS_KEY" enqueued)
        rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) / 1000 / n }')")
        log "http1 run $i: redis commandstats: $(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat' | sed 's/,rejected_calls.*//;s/cmdstat_//' | tr '\n' ' ')"
        vals+=("$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" \
                  'BEGIN { printf "%.0f", r / (d / 1e6) }')")
        p50s+=("$(kv "$out" p50_us)"); p99s+=("$(kv "$out" p99_us)")
        for e in connect read write status timeout; do errs=$((errs + $(kv "$out" $e))); done
        # every 2xx stored a task: the count in Redis must match the requests
        log "http1 run $i: $(kv "$out" requests) requests, $(rcli HGET "$STATS_KEY" enqueued) tasks counted in Redis"
    done
    [ ${#vals[@]} -gt 0 ] || { na http1.tasks_per_s "wrk failed"; return; }
    figure http1.tasks_per_s "$(median "${vals[@]}")" tasks/s ceiling.nginx_return_202
    figure http1.p50_ms "$(awk -v v="$(median "${p50s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.p99_ms "$(awk -v v="$(median "${p99s[@]}")" 'BEGIN { printf "%.2f", v / 1000 }')" ms
    figure http1.errors "$errs" errors
    figure http1.redis_cpu_us_per_task "$(median "${rcpu[@]}")" us/task
    figure http1.nginx_cpu_us_per_task "$(median "${ncpu[@]}")" us/task
    flush
}

# 2. batches of 100 and 1,000 tasks per POST (JSON; and 1,000 as msgpack,
#    to show what the JSON decoding costs)
wl_httpbatch() {
    local v b fmt name ctype i out vals reqs errs e
    for v in 100:json 1000:json 1000:msgpack; do
        b=${v%%:*}; fmt=${v#*:}
        name=http_batch$b; [ "$fmt" = json ] || name=${name}_$fmt
        ctype=application/json; [ "$fmt" = json ] || ctype=application/x-msgpack
        if [ "$HAVE_MODULE" != 1 ]; then
            na "$name.tasks_per_s" "${MODULE_FAIL:-nginx module not built}"
            continue
        fi
        reqs=$(( (N * 5 + b - 1) / b ))   # bounded: 5 N tasks per run
        log "$name: up to $reqs POSTs of $b tasks ($ctype), ${HTTP_SECONDS}s max"
        vals=(); local rcpu=() ncpu=() r0 r1 n0 n1 tasks
        for i in $(seq 1 "$REPEAT"); do
            flush
            r0=$(redis_cpu_s); n0=$(nginx_cpu_ns)
            out=$(wrk_run "$name" /_ah/queue/deferred "$TMP/body$b.$fmt" "$ctype" \
                  "$reqs" "$HTTP_SECONDS")
            r1=$(redis_cpu_s); n1=$(nginx_cpu_ns)
            [ -n "$out" ] || continue
            tasks=$(rcli HGET "$STATS_KEY" enqueued)
            rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
            ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$tasks" 'BEGIN { printf "%.2f", (b - a) / 1000 / n }')")
            errs=0
            for e in connect read write status timeout; do errs=$((errs + $(kv "$out" $e))); done
            [ "$errs" -eq 0 ] || log "$name: $errs errors"
            vals+=("$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" -v b="$b" \
                      'BEGIN { printf "%.0f", r * b / (d / 1e6) }')")
        done
        if [ ${#vals[@]} -gt 0 ]; then
            figure "$name.tasks_per_s" "$(median "${vals[@]}")" tasks/s ceiling.redis_zadd_p16
            figure "$name.redis_cpu_us_per_task" "$(median "${rcpu[@]}")" us/task
            figure "$name.nginx_cpu_us_per_task" "$(median "${ncpu[@]}")" us/task
        else
            na "$name.tasks_per_s" "wrk failed"
        fi
    done
    flush
}

# 3. the C client: one dq_defer per task, and dq_defer_many in batches
wl_client() {
    local mode b label i out vals ccpu rcpu r0 r1 ceil
    if [ ! -x "$ENQ" ]; then
        for label in client_single client_many; do
            na "$label.tasks_per_s" "C client (client/client.c) not built"
        done
        return
    fi
    for mode in single:0 many:1000; do
        label=client_${mode%%:*}; b=${mode#*:}
        if [ "$b" = 0 ]; then
            log "$label: $N x dq_defer, one call per task (10 s max)"
            ceil=ceiling.redis_eval_zadd_hset
        else
            log "$label: $N tasks by dq_defer_many, batches of $b"
            ceil=ceiling.redis_eval_zadd_hset_p16
        fi
        vals=(); ccpu=(); rcpu=()
        for i in $(seq 1 "$REPEAT"); do
            flush
            r0=$(redis_cpu_s)
            out=$("$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b "$b" -t 10 2>>"$TMP/enqueue.log") || true
            r1=$(redis_cpu_s)
            [ -n "$(kv "$out" tasks_per_s)" ] || continue
            vals+=("$(kv "$out" tasks_per_s)"); ccpu+=("$(kv "$out" cpu_us_per_task)")
            rcpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$(kv "$out" tasks)" \
                      'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        done
        if [ ${#vals[@]} -gt 0 ]; then
            figure "$label.tasks_per_s" "$(median "${vals[@]}")" tasks/s "$ceil"
            figure "$label.client_cpu_us_per_task" "$(median "${ccpu[@]}")" us/task
            figure "$label.redis_cpu_us_per_task" "$(median "${rcpu[@]}")" us/task
        else
            na "$label.tasks_per_s" "dq-bench-enqueue failed: $(tail -1 "$TMP/enqueue.log")"
        fi
    done
    flush
}

# run N queued tasks of FUNC through one master with WORKER_PROCS children;
# sets RUN_RATE RUN_WCPU_US RUN_RCPU_US RUN_RSS_CHILD RUN_RSS_MASTER
drain_run() {
    local func=$1 lib=$2 out t0 w rc0 rc1 cpu=0 p hwm maxc=0 master=0
    flush
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

# 4. worker throughput on N queued no-op tasks: with the worker's default
#    settings, and with large claim batches (what batching buys)
WORKER_TUNED="--claim-size 256 --concurrency 256"
wl_worker() {
    local why i f rates w r rc rm variant prefix opts saved=$WORKER_OPTS
    if why=$(worker_missing); then
        for f in tasks_per_s cpu_us_per_task redis_cpu_us_per_task rss_child_mib rss_master_mib; do
            na "worker.$f" "$why"
        done
        return
    fi
    for variant in default tuned; do
        if [ "$variant" = default ]; then prefix=worker; opts=$saved
        else prefix=worker_b256; opts="$saved $WORKER_TUNED"; fi
        WORKER_OPTS=$opts
        rates=(); w=(); r=(); rc=(); rm=()
        log "$prefix: $N queued bench.noop tasks, $WORKER_PROCS children, options: ${opts:-defaults}"
        for i in $(seq 1 "$REPEAT"); do
            drain_run bench.noop "$TASKS_SO" || continue
            rates+=("$RUN_RATE"); w+=("$RUN_WCPU_US"); r+=("$RUN_RCPU_US")
            rc+=("$RUN_RSS_CHILD"); rm+=("$RUN_RSS_MASTER")
        done
        WORKER_OPTS=$saved
        if [ ${#rates[@]} -eq 0 ]; then
            na "$prefix.tasks_per_s" "$RUN_FAIL"
            continue
        fi
        figure "$prefix.tasks_per_s" "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
        figure "$prefix.cpu_us_per_task" "$(median "${w[@]}")" us/task
        figure "$prefix.redis_cpu_us_per_task" "$(median "${r[@]}")" us/task
        [ "$variant" = default ] || continue
        figure worker.rss_child_mib "$(printf '%s\n' "${rc[@]}" | sort -g | tail -1)" MiB
        if [ "${rm[0]}" = n/a ]; then
            na worker.rss_master_mib "deferred-worker ran as one process (no master/children)"
        else
            figure worker.rss_master_mib "$(printf '%s\n' "${rm[@]}" | sort -g | tail -1)" MiB
        fi
        figure worker.processes "$RUN_PROCS" children
    done
    flush
}

# 5. tasklet tasks that each do one async Redis command
TASKLET_SO=$BUILD/bench/libdq_bench_tasklets.so
wl_tasklet() {
    local why i rates=() w=()
    if why=$(worker_missing); then
        na tasklet.tasks_per_s "$why"; na tasklet.cpu_us_per_task "$why"; return
    fi
    if [ ! -f "$TASKLET_SO" ]; then
        why="tasklet API (include/deferred/tasklet.h) not built"
        na tasklet.tasks_per_s "$why"; na tasklet.cpu_us_per_task "$why"; return
    fi
    for i in $(seq 1 "$REPEAT"); do
        drain_run bench.tasklet_incr "$TASKLET_SO" || continue
        # each task did its one Redis command (the counter survives the
        # drain: drain_run flushes before filling, not after)
        local incr
        incr=$(rcli GET bench:tasklet)
        [ "$incr" = "$N" ] || log "tasklet: bench:tasklet is $incr, expected $N"
        rates+=("$RUN_RATE"); w+=("$RUN_WCPU_US")
    done
    if [ ${#rates[@]} -eq 0 ]; then
        na tasklet.tasks_per_s "$RUN_FAIL"; na tasklet.cpu_us_per_task "$RUN_FAIL"; return
    fi
    figure tasklet.tasks_per_s "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
    figure tasklet.cpu_us_per_task "$(median "${w[@]}")" us/task
    flush
}

# 6. ETA lateness: start - ETA of 2,000 tasks spread over 10 s
wl_lateness() {
    local why out stamps=$TMP/stamps.txt
    if why=$(worker_missing); then
        na lateness.p50_ms "$why"; na lateness.p99_ms "$why"; na lateness.max_ms "$why"
        return
    fi
    flush
    : >"$stamps"
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    sleep 1   # the worker is up and asleep on an empty queue
    log "lateness: $LATENESS_N tasks with ETAs over ${LATENESS_SPREAD_MS} ms, worker idle before"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$LATENESS_N" -b 1000 -f bench.stamp -s "$stamps" \
        -e "1000:$LATENESS_SPREAD_MS" -t 30 >/dev/null 2>>"$TMP/enqueue.log" ||
        { na lateness.p50_ms "enqueue failed"; stop_spawned "$WORKER_PID"; return; }
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$LATENESS_N" -i 50 \
          -t $((LATENESS_SPREAD_MS / 1000 + 20))) ||
        log "lateness: not all tasks ran ($out)"
    stop_spawned "$WORKER_PID"
    out=$(python3 "$BENCH/results.py" lateness "$stamps")
    log "lateness: $out"
    figure lateness.p50_ms "$(kv "$out" p50_ms)" ms
    figure lateness.p99_ms "$(kv "$out" p99_ms)" ms
    figure lateness.max_ms "$(kv "$out" max_ms)" ms
    figure lateness.ran "$(kv "$out" n)" tasks
    flush
}

# 7. Redis memory per delayed task
wl_memory() {
    local m0 m1
    if [ ! -x "$ENQ" ]; then na memory.bytes_per_task "C client (client/client.c) not built"; return; fi
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -c 86400000 -t 60 >/dev/null \
        2>>"$TMP/enqueue.log" || { na memory.bytes_per_task "enqueue failed"; return; }
    m1=$(rinfo memory used_memory)
    log "memory: used_memory $m0 -> $m1 for $N tasks delayed 1 day; $(rcli DBSIZE) keys"
    figure memory.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush
}

# 7b. a deep queue: DEEP_N delayed tasks spread over a day (the cold tier
#     holds them), then what it costs: memory per task, enqueue, the
#     promotion of a window's buckets (dq-bench-promote: 10,000 tasks on
#     another queue, its clock moved 40 s ahead), and a stream of due tasks
#     through the worker while the deep queue exists (lateness, EVALSHA
#     usec per call: claims and acks)
DEEP_N=${BENCH_DEEP_N:-1000000}
PROMOTE=$BUILD/bench/dq-bench-promote
wl_deep() {
    local why m0 m1 r0 r1 out stamps=$TMP/stamps-deep.txt
    if why=$(worker_missing); then na deep.bytes_per_task "$why"; return; fi
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    r0=$(redis_cpu_s)
    log "deep: $DEEP_N tasks with ETAs from now + 2 min over a day"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$DEEP_N" -b 1000 -e 120000:86400000 -t 600 \
        >/dev/null 2>>"$TMP/enqueue.log" || { na deep.bytes_per_task "enqueue failed"; return; }
    r1=$(redis_cpu_s)
    m1=$(rinfo memory used_memory)
    log "deep: used_memory $m0 -> $m1; $(rcli DBSIZE) keys; cold $(rcli HGET "$STATS_KEY" cold)"
    figure deep.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$DEEP_N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    figure deep.enqueue_redis_cpu_us_per_task "$(awk -v a="$r0" -v b="$r1" -v n="$DEEP_N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')" us/task
    if [ -x "$PROMOTE" ]; then
        "$ENQ" -a "127.0.0.1:$REDIS_PORT" -q deepp -n 10000 -b 1000 -e 45000:10000 \
            >/dev/null 2>>"$TMP/enqueue.log" || log "deep: filling deepp failed"
        r0=$(redis_cpu_s)
        out=$("$PROMOTE" -p "$REDIS_PORT" -q deepp -A 40000 2>>"$TMP/enqueue.log") || true
        r1=$(redis_cpu_s)
        log "deep: promotion: $out"
        if [ "$(kv "$out" promoted)" = 10000 ]; then
            figure deep.promote_redis_cpu_us_per_task "$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", (b - a) * 1e6 / 10000 }')" us/task
            figure deep.promote_max_call_ms "$(kv "$out" max_call_ms)" ms
        else
            na deep.promote_redis_cpu_us_per_task "promoted $(kv "$out" promoted) of 10000"
        fi
    else
        na deep.promote_redis_cpu_us_per_task "dq-bench-promote not built"
    fi
    : >"$stamps"
    rcli CONFIG RESETSTAT >/dev/null
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    sleep 1
    log "deep: $LATENESS_N tasks with ETAs over ${LATENESS_SPREAD_MS} ms beside the deep queue"
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$LATENESS_N" -b 1000 -f bench.stamp -s "$stamps" \
        -e "1000:$LATENESS_SPREAD_MS" -t 30 >/dev/null 2>>"$TMP/enqueue.log" ||
        { na deep.lateness_p99_ms "enqueue failed"; stop_spawned "$WORKER_PID"; flush; return; }
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$LATENESS_N" -i 50 \
          -t $((LATENESS_SPREAD_MS / 1000 + 20))) ||
        log "deep: not all tasks ran ($out)"
    stop_spawned "$WORKER_PID"
    figure deep.evalsha_us_per_call "$(rcli INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')" us/call
    out=$(python3 "$BENCH/results.py" lateness "$stamps")
    log "deep: lateness $out"
    figure deep.lateness_p50_ms "$(kv "$out" p50_ms)" ms
    figure deep.lateness_p99_ms "$(kv "$out" p99_ms)" ms
    figure deep.lateness_max_ms "$(kv "$out" max_ms)" ms
    flush
}

# 7c. a 90/10 mix through the worker: N tasks, every tenth delayed by an
#     hour (cold), the rest due now; the worker drains the due ones
wl_mix90() {
    local why i due out r0 r1 rc0 rc1 t0 rates=() rcpu=() ecpu=()
    if why=$(worker_missing); then na mix90.tasks_per_s "$why"; return; fi
    due=$((N - N / 10))
    for i in $(seq 1 "$REPEAT"); do
        flush
        r0=$(redis_cpu_s)
        "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -d 10:3600000 -t 60 \
            >/dev/null 2>>"$TMP/enqueue.log" || { log "mix90: enqueue failed"; continue; }
        r1=$(redis_cpu_s)
        rc0=$r1
        t0=$EPOCHREALTIME
        start_worker "$WORKER_PROCS" "$TASKS_SO"
        out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$due" -i 5 -t 120) ||
            { log "mix90: worker did not finish ($out)"; stop_spawned "$WORKER_PID"; continue; }
        rc1=$(redis_cpu_s)
        stop_spawned "$WORKER_PID"
        log "mix90 run $i: cold $(rcli HGET "$STATS_KEY" cold), done $(rcli HGET "$STATS_KEY" done)"
        rates+=("$(awk -v n="$due" -v a="$t0" -v b="$(kv "$out" done_s)" 'BEGIN { printf "%.0f", n / (b - a) }')")
        rcpu+=("$(awk -v a="$rc0" -v b="$rc1" -v n="$due" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
        ecpu+=("$(awk -v a="$r0" -v b="$r1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
    done
    if [ ${#rates[@]} -eq 0 ]; then na mix90.tasks_per_s "no run finished"; return; fi
    figure mix90.tasks_per_s "$(median "${rates[@]}")" tasks/s ceiling.redis_eval_zadd_hset_p16
    figure mix90.redis_cpu_us_per_task "$(median "${rcpu[@]}")" us/task
    figure mix90.enqueue_redis_cpu_us_per_task "$(median "${ecpu[@]}")" us/task
    flush
}

# 8. idle cost: 4 worker processes on an empty queue
wl_idle() {
    local why c0 c1 r0 r1 w0=0 w1=0 p pids
    if why=$(worker_missing); then
        na idle.redis_cmds_per_s "$why"; na idle.worker_cpu_pct "$why"; return
    fi
    flush
    start_worker "$IDLE_WORKERS" "$TASKS_SO"
    sleep 2
    pids=$(worker_pids)
    rcli CONFIG RESETSTAT >/dev/null
    c0=$(rinfo stats total_commands_processed); r0=$(redis_cpu_s)
    for p in $pids; do w0=$((w0 + $(cpu_ns "$p"))); done
    sleep "$IDLE_SECONDS"
    c1=$(rinfo stats total_commands_processed); r1=$(redis_cpu_s)
    for p in $pids; do w1=$((w1 + $(cpu_ns "$p"))); done
    log "idle: commandstats: $(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat' | sed 's/,usec_per_call.*//' | tr '\n' ' ')"
    stop_spawned "$WORKER_PID"
    # the INFO calls of this measurement are not the worker's: 2 INFO (c0, r0)
    figure idle.redis_cmds_per_s "$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_SECONDS" \
        'BEGIN { v = (b - a - 2) / s; if (v < 0) v = 0; printf "%.1f", v }')" cmds/s
    figure idle.worker_cpu_pct "$(awk -v a="$w0" -v b="$w1" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.3f", (b - a) / 1e9 / s * 100 }')" "%cpu(all $IDLE_WORKERS+1)"
    figure idle.redis_cpu_pct "$(awk -v a="$r0" -v b="$r1" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.3f", (b - a) / s * 100 }')" %cpu
}

# 9. push delivery (push/libdq_push.so): PUSH_N tasks deferred by the
#    Python package, POSTed by ONE worker child to a minimal app
#    (t/python/barrier.py: stdlib asyncio, answers 200 at once), whose own
#    requests/s under wrk (the same body, 50 connections) is the ceiling
PUSH_SO=$BUILD/push/libdq_push.so
PUSH_N=${BENCH_PUSH_N:-20000}
wl_push() {
    local why= i rates=() w=() app_port app_pid out body t0 cpu p
    [ -f "$PUSH_SO" ] || why="push library not built"
    [ -z "$why" ] && [ "$HAVE_MODULE" != 1 ] && why="nginx module not built"
    [ -z "$why" ] && { [ -x "$WORKER_BIN" ] || why="deferred-worker not built"; }
    if [ -n "$why" ]; then
        na push.app_ceiling_rps "$why"; na push.tasks_per_s "$why"
        na push.cpu_us_per_push "$why"; return
    fi
    app_port=$(free_port)
    spawn "$TMP/pushapp.log" /usr/bin/python3 "$ROOT/t/python/barrier.py" \
        "$app_port" 0 "$TMP/pushapp.json"
    app_pid=$SPAWNED
    wait_port "$app_port" || { na push.tasks_per_s "the app did not start"; return; }
    # the ceiling: the app's own requests/s for a push-sized POST
    body=$TMP/push-body.bin
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
from ngx_deferred import deferred
open(sys.argv[2], "wb").write(deferred.serialize(len, [1, 2, 3]))' \
        "$ROOT/clients/python" "$body"
    BENCH_BODY=$body BENCH_CTYPE=application/octet-stream BENCH_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${HTTP_SECONDS}s" --timeout 5s \
        -s "$BENCH/post.lua" "http://127.0.0.1:$app_port/_ah/queue/deferred" \
        >"$TMP/wrk-pushapp.log" 2>&1
    out=$(grep '^wrk_result' "$TMP/wrk-pushapp.log" | tail -1)
    figure push.app_ceiling_rps "$(awk -v r="$(kv "$out" requests)" -v d="$(kv "$out" duration_us)" \
        'BEGIN { if (d > 0) printf "%.0f", r / (d / 1e6) }')" req/s
    {
        echo "redis 127.0.0.1:$REDIS_PORT;"
        echo "library $PUSH_SO;"
        echo "processes 1;"
        echo "tasklet_concurrency 256;"
        echo "push_secret bench-secret-0123456789;"
        echo "queue default { push_target http://127.0.0.1:$app_port; push_deadline 60s; }"
    } >"$TMP/push-worker.conf"
    for i in $(seq 1 "$REPEAT"); do
        flush
        NGX_DEFERRED_URL="http://127.0.0.1:$NGINX_PORT/_ah/queue/deferred" \
            /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
from ngx_deferred import deferred
for k in range(0, int(sys.argv[2]), 1000):
    with deferred.batch():
        for j in range(1000):
            deferred.defer(len, [1, 2, 3])' "$ROOT/clients/python" "$PUSH_N" \
            2>>"$TMP/enqueue.log" || { log "push: enqueue failed"; continue; }
        t0=$EPOCHREALTIME
        spawn "$TMP/push-worker.log" "$WORKER_BIN" -c "$TMP/push-worker.conf"
        WORKER_PID=$SPAWNED
        out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$PUSH_N" -i 5 -t 120 \
              -x dead -x retried) ||
            { log "push: the worker did not finish ($out)"; stop_spawned "$WORKER_PID"; continue; }
        cpu=0
        for p in $(worker_pids); do cpu=$((cpu + $(cpu_ns "$p"))); done
        stop_spawned "$WORKER_PID"
        rates+=("$(awk -v n="$PUSH_N" -v a="$t0" -v b="$(kv "$out" done_s)" \
                   'BEGIN { printf "%.0f", n / (b - a) }')")
        w+=("$(awk -v c="$cpu" -v n="$PUSH_N" 'BEGIN { printf "%.2f", c / 1000 / n }')")
        log "push: $PUSH_N pushes at ${rates[-1]}/s, worker ${w[-1]} us/push"
    done
    stop_spawned "$app_pid"
    if [ ${#rates[@]} -eq 0 ]; then
        na push.tasks_per_s "no run finished"; na push.cpu_us_per_push "no run finished"
        return
    fi
    figure push.tasks_per_s "$(median "${rates[@]}")" tasks/s push.app_ceiling_rps
    figure push.cpu_us_per_push "$(median "${w[@]}")" us/push
    flush
}

# 10. the capacity model's inputs (docs/SCALING.md, "Capacity model"): each
#     phase alone on a flushed Redis, at the worker's and the clients'
#     defaults: Redis CPU (used_cpu delta) per task, the scripts' own time
#     (INFO commandstats EVALSHA usec) and calls per task, network bytes
#     (in + out, INFO stats) per task; claim and ack alone over the scripts
#     (bench/contract_cpu.pl, batch 32 = the worker's claim size); memory
#     per delayed task in the hot and the cold tier; then the model:
#     tasks/s per Redis core and masters for 1M tasks/s at 50 % CPU.
#     --only capacity (not in the default set); ./build.sh capacity
CAP_HEADROOM=${BENCH_CAP_HEADROOM:-0.5}   # the CPU share a master may use
CAP_C0= CAP_NI0= CAP_NO0=
cap_begin() {
    flush
    rcli CONFIG RESETSTAT >/dev/null
    CAP_C0=$(redis_cpu_s)
    CAP_NI0=$(rinfo stats total_net_input_bytes)
    CAP_NO0=$(rinfo stats total_net_output_bytes)
}
# cap_end NAME TASKS: the phase's figures (TASKS: the tasks it handled)
cap_end() {
    local name=$1 n=$2 c1 ni1 no1 cs calls usec
    c1=$(redis_cpu_s)
    ni1=$(rinfo stats total_net_input_bytes)
    no1=$(rinfo stats total_net_output_bytes)
    cs=$(rcli INFO commandstats | tr -d '\r')
    calls=$(sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' <<<"$cs")
    usec=$(sed -n 's/^cmdstat_evalsha:calls=[0-9]*,usec=\([0-9]*\),.*/\1/p' <<<"$cs")
    log "capacity $name: $n tasks; commandstats: $(grep '^cmdstat' <<<"$cs" | sed 's/,usec_per_call.*//;s/cmdstat_//' | tr '\n' ' ')"
    if [ -z "$n" ] || [ "$n" -le 0 ]; then na "capacity.$name.redis_cpu_us_per_task" "no task"; return; fi
    figure "capacity.$name.redis_cpu_us_per_task" \
        "$(awk -v a="$CAP_C0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')" us/task
    figure "capacity.$name.script_us_per_task" \
        "$(awk -v u="${usec:-0}" -v n="$n" 'BEGIN { printf "%.2f", u / n }')" us/task
    figure "capacity.$name.evalsha_per_task" \
        "$(awk -v c="${calls:-0}" -v n="$n" 'BEGIN { printf "%.4f", c / n }')" calls/task
    figure "capacity.$name.net_bytes_per_task" \
        "$(awk -v a="$CAP_NI0" -v b="$ni1" -v c="$CAP_NO0" -v d="$no1" -v n="$n" \
           'BEGIN { printf "%.0f", (b - a + d - c) / n }')" B/task
}

wl_capacity() {
    local why out n reqs m0 m1 spread
    if why=$(worker_missing); then na capacity.per_core_tasks_per_s "$why"; return; fi

    log "capacity: enqueue_one: $N x dq_defer (one call per task)"
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 0 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_one did not store every task"
    cap_end enqueue_one "$(rcli HGET "$STATS_KEY" enqueued)"

    log "capacity: enqueue_many: $N tasks by dq_defer_many, calls of 100"
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 100 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_many did not store every task"
    cap_end enqueue_many "$(rcli HGET "$STATS_KEY" enqueued)"

    if [ "$HAVE_MODULE" = 1 ]; then
        log "capacity: http1: $N POSTs of one task (wrk ${WRK_THREADS}t ${WRK_CONNS}c)"
        cap_begin
        wrk_run cap_http1 /_ah/queue/deferred "$TMP/body1.json" application/json "$N" "$HTTP_SECONDS" >/dev/null
        cap_end http1 "$(rcli HGET "$STATS_KEY" enqueued)"
        reqs=$(( (N + 99) / 100 ))
        log "capacity: http100: $reqs POSTs of 100 tasks"
        cap_begin
        wrk_run cap_http100 /_ah/queue/deferred "$TMP/body100.json" application/json "$reqs" "$HTTP_SECONDS" >/dev/null
        cap_end http100 "$(rcli HGET "$STATS_KEY" enqueued)"
    else
        na capacity.http1.redis_cpu_us_per_task "${MODULE_FAIL:-nginx module not built}"
        na capacity.http100.redis_cpu_us_per_task "${MODULE_FAIL:-nginx module not built}"
    fi

    # the worker's part: claims with acks riding them (dq_cmd_cycle), acks
    # alone, wake-ups; the queue filled before the phase starts
    log "capacity: drain: $N queued no-op tasks through the worker ($WORKER_PROCS processes, defaults)"
    flush
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: filling the queue failed"
    rcli CONFIG RESETSTAT >/dev/null
    CAP_C0=$(redis_cpu_s)
    CAP_NI0=$(rinfo stats total_net_input_bytes)
    CAP_NO0=$(rinfo stats total_net_output_bytes)
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$N" -i 20 -t 180 \
          -x dead -x retried) || log "capacity: drain: the worker did not finish ($out)"
    n=$(rcli HGET "$STATS_KEY" done)
    cap_end drain "$n"
    stop_spawned "$WORKER_PID"

    # the same enqueue + drain with the durability docs/OPERATIONS.md
    # documents (appendonly yes, appendfsync always): what the fsyncs cost
    log "capacity: enqueue_many + drain again with appendonly yes, appendfsync always"
    rcli CONFIG SET appendonly yes >/dev/null
    rcli CONFIG SET appendfsync always >/dev/null
    local i
    for i in $(seq 1 100); do
        [ "$(rinfo persistence aof_rewrite_in_progress)" = 0 ] &&
            [ "$(rinfo persistence aof_rewrite_scheduled)" = 0 ] && break
        sleep 0.1
    done
    cap_begin
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 100 -t 120 >/dev/null 2>>"$TMP/enqueue.log" ||
        log "capacity: enqueue_many_aof did not store every task"
    cap_end enqueue_many_aof "$(rcli HGET "$STATS_KEY" enqueued)"
    rcli CONFIG RESETSTAT >/dev/null
    CAP_C0=$(redis_cpu_s)
    CAP_NI0=$(rinfo stats total_net_input_bytes)
    CAP_NO0=$(rinfo stats total_net_output_bytes)
    start_worker "$WORKER_PROCS" "$TASKS_SO"
    out=$("$WAITER" -p "$REDIS_PORT" -k "$STATS_KEY" -f done -n "$N" -i 20 -t 180 \
          -x dead -x retried) || log "capacity: drain_aof: the worker did not finish ($out)"
    cap_end drain_aof "$(rcli HGET "$STATS_KEY" done)"
    stop_spawned "$WORKER_PID"
    rcli CONFIG SET appendonly no >/dev/null
    rcli CONFIG SET appendfsync everysec >/dev/null

    # claim and ack alone (the worker sends them as one call)
    log "capacity: claim and ack alone over the scripts (contract_cpu.pl, batch 32)"
    out=$(perl "$BENCH/contract_cpu.pl" --n "$N" --batch 32 --mode v2 --split 2>>"$TMP/enqueue.log" |
          sed -n 's/^split //p')
    figure capacity.claim.script_us_per_task "$(kv "$out" claim_us_per_task)" us/task
    figure capacity.ack.script_us_per_task "$(kv "$out" ack_us_per_task)" us/task
    out=$(perl "$BENCH/contract_cpu.pl" --n "$N" --batch 32 --mode cycle 2>>"$TMP/enqueue.log")
    figure capacity.cycle_scripts.redis_cpu_us_per_task "$(kv "$out" us_per_task)" us/task

    # memory: N tasks due in 10 s (hot sets), N tasks spread at the density
    # of a million a day from 2 min ahead (the cold tier's buckets)
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -c 10000 -t 120 >/dev/null 2>>"$TMP/enqueue.log"
    m1=$(rinfo memory used_memory)
    figure capacity.memory_hot.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush
    rcli MEMORY PURGE >/dev/null 2>&1 || true
    m0=$(rinfo memory used_memory)
    spread=$(( 864 * N / 10 ))
    [ "$spread" -gt 0 ] || spread=86400
    "$ENQ" -a "127.0.0.1:$REDIS_PORT" -n "$N" -b 1000 -e "120000:$spread" -t 120 >/dev/null 2>>"$TMP/enqueue.log"
    m1=$(rinfo memory used_memory)
    log "capacity: cold: $N tasks over $spread ms: $(rcli DBSIZE) keys, cold $(rcli HGET "$STATS_KEY" cold)"
    figure capacity.memory_cold.bytes_per_task "$(awk -v a="$m0" -v b="$m1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')" B/task
    flush

    # the model: a task = one enqueue (batched: dq_defer_many or HTTP
    # batches) + its share of the worker's drain, on one Redis core
    local e=${FIG[capacity.enqueue_many.redis_cpu_us_per_task]:-} d=${FIG[capacity.drain.redis_cpu_us_per_task]:-}
    local e1=${FIG[capacity.enqueue_one.redis_cpu_us_per_task]:-}
    if [ -n "$e" ] && [ -n "$d" ] && [ "$e" != n/a ] && [ "$d" != n/a ]; then
        figure capacity.task_batched.redis_cpu_us_per_task "$(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.2f", a + b }')" us/task
        figure capacity.per_core_tasks_per_s "$(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.0f", 1e6 / (a + b) }')" tasks/s
        figure capacity.masters_for_1M "$(awk -v a="$e" -v b="$d" -v h="$CAP_HEADROOM" \
            'BEGIN { x = 1e6 * (a + b) / 1e6 / h; printf "%d", (x == int(x)) ? x : int(x) + 1 }')" masters
    fi
    if [ -n "$e1" ] && [ -n "$d" ] && [ "$e1" != n/a ] && [ "$d" != n/a ]; then
        figure capacity.task_single.redis_cpu_us_per_task "$(awk -v a="$e1" -v b="$d" 'BEGIN { printf "%.2f", a + b }')" us/task
        figure capacity.masters_for_1M_single "$(awk -v a="$e1" -v b="$d" -v h="$CAP_HEADROOM" \
            'BEGIN { x = 1e6 * (a + b) / 1e6 / h; printf "%d", (x == int(x)) ? x : int(x) + 1 }')" masters
    fi
}

# 11. 1 shard vs 3 shards (issue 15): the same CLUSTER_N queued no-op
#     tasks over six queues, drained by one worker master given the
#     cluster's address (`cluster:HOST:PORT,...`), on a 1-master cluster
#     and on a 3-master cluster (two queues on each master; no replicas, no
#     persistence, like the other workloads). Queues are filled on their
#     own master (dq-bench-enqueue at the node's address). Per run:
#     tasks/s, Redis CPU per task summed over the nodes (less what the
#     nodes use idle, measured for 2 s before: serverCron and the cluster
#     bus cost each node the same with or without work; less the
#     children's SCRIPT LOADs, a fixed cost per node), tasks per EVALSHA,
#     and each node's EVALSHA and BLPOP calls. Then the same with one
#     queue of three shards (`deferred-cli queue Q --shards 3`, a name
#     whose shards fall in the three thirds of the slots), filled through
#     the cluster address: cluster_sharded.* Two cores cannot show tasks/s growing with
#     masters (they share the cores with the worker): the row shows Redis
#     CPU per task staying flat and the work spreading over the nodes.
#     --only cluster (not in the default set)
CLUSTER_N=${BENCH_CLUSTER_N:-60000}
CL_PORTS=() CL_PIDS=()

# a free port whose cluster bus port (+10000) is free too
cluster_port() {
    python3 -c 'import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p > 55000: s.close(); continue
    b = socket.socket()
    try: b.bind(("127.0.0.1", p + 10000))
    except OSError: s.close(); b.close(); continue
    s.close(); b.close(); print(p); break'
}

ccli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# cluster_start M: M masters, every slot served, cluster_state:ok everywhere
cluster_start() {
    local m=$1 i p d
    CL_PORTS=() CL_PIDS=()
    rm -rf "$TMP/cluster$m"       # a fresh cluster: no nodes.conf of the last run
    for i in $(seq 1 "$m"); do
        p=$(cluster_port)
        d=$TMP/cluster$m/n$i
        mkdir -p "$d"
        spawn "$d/redis.log" redis-server --port "$p" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$d" --daemonize no --protected-mode no \
            --cluster-enabled yes --cluster-config-file "$d/nodes.conf" \
            --cluster-node-timeout 2000 --maxclients 10000
        CL_PIDS+=("$SPAWNED"); CL_PORTS+=("$p")
        wait_port "$p" || die "cluster node $p did not start: $(tail -3 "$d/redis.log")"
    done
    if [ "$m" = 1 ]; then
        ccli "${CL_PORTS[0]}" CLUSTER ADDSLOTSRANGE 0 16383 >/dev/null
    else
        redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CL_PORTS[@]}") \
            --cluster-replicas 0 --cluster-yes >"$TMP/cluster$m/create.log" 2>&1 ||
            die "redis-cli --cluster create failed: $(tail -3 "$TMP/cluster$m/create.log")"
    fi
    for i in $(seq 1 300); do
        local ok=1
        for p in "${CL_PORTS[@]}"; do
            ccli "$p" CLUSTER INFO | tr -d '\r' | grep -q "^cluster_state:ok" || ok=0
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    die "the $m-master cluster never became ok"
}

cluster_stop() {
    local p
    for p in "${CL_PIDS[@]}"; do stop_spawned "$p"; done
    CL_PIDS=() CL_PORTS=()
}

# the port of the master serving a queue's slot (CLUSTER NODES: a master's
# line ends with its slot ranges "A-B" or "A")
cluster_owner() {
    local slot
    slot=$(ccli "${CL_PORTS[0]}" CLUSTER KEYSLOT "{$1}")
    ccli "${CL_PORTS[0]}" CLUSTER NODES | tr -d '\r' | awk -v s="$slot" '
        $3 ~ /master/ {
            for (i = 9; i <= NF; i++) {
                n = split($i, r, "-"); if (n == 1) r[2] = r[1]
                if ($i !~ /^\[/ && s >= r[1] + 0 && s <= r[2] + 0) {
                    split($2, a, "[:@]"); print a[2]; exit
                }
            }
        }'
}

cluster_cpu_s() {
    local p t=0 v
    for p in "${CL_PORTS[@]}"; do
        v=$(ccli "$p" INFO cpu | tr -d '\r' |
            awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }')
        t=$(awk -v a="$t" -v b="$v" 'BEGIN { printf "%.6f", a + b }')
    done
    echo "$t"
}

# the sum of the queues' done counters, each asked of its own master
cluster_done() {
    local q t=0 v
    for q in "${CL_QUEUES[@]}"; do
        v=$(ccli "${CL_OWNER[$q]}" HGET "dq2:{$q}:stats" done)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

declare -A CL_OWNER
CL_QUEUES=()
CL_SHARDED=     # a sharded queue's name: CL_QUEUES are its shards
# cluster_run M: fill, drain, figures cluster.Mm.*
cluster_run() {
    local m=$1 q per c0 c1 t0 t1 done=0 i addr p args
    cluster_start "$m"
    addr=cluster:$(printf '127.0.0.1:%s,' "${CL_PORTS[@]}"); addr=${addr%,}
    per=$((CLUSTER_N / ${#CL_QUEUES[@]}))
    for q in "${CL_QUEUES[@]}"; do CL_OWNER[$q]=$(cluster_owner "$q"); done
    if [ -n "$CL_SHARDED" ]; then
        # one queue, a shard per entry of CL_QUEUES, filled through the
        # cluster address (the C client spreads unnamed tasks over them)
        "$BUILD/client/deferred-cli" -r "$addr" queue "$CL_SHARDED" \
            --shards "${#CL_QUEUES[@]}" >/dev/null 2>>"$TMP/enqueue.log" ||
            log "cluster: deferred-cli queue $CL_SHARDED --shards failed"
        "$ENQ" -a "$addr" -q "$CL_SHARDED" -n "$((per * ${#CL_QUEUES[@]}))" -b 1000 -t 60 \
            >/dev/null 2>>"$TMP/enqueue.log" || log "cluster: filling $CL_SHARDED failed"
        args=(-q "$CL_SHARDED")
    else
        args=()
        for q in "${CL_QUEUES[@]}"; do
            "$ENQ" -a "127.0.0.1:${CL_OWNER[$q]}" -q "$q" -n "$per" -b 1000 -t 60 \
                >/dev/null 2>>"$TMP/enqueue.log" || log "cluster: filling $q failed"
            args+=(-q "$q")
        done
    fi
    log "cluster ${m}m: queues on ports: $(for q in "${CL_QUEUES[@]}"; do printf '%s:%s=%s ' "$q" "${CL_OWNER[$q]}" "$(ccli "${CL_OWNER[$q]}" ZCARD "dq2:{$q}:eta")"; done)"
    for p in "${CL_PORTS[@]}"; do ccli "$p" CONFIG RESETSTAT >/dev/null; done
    args+=(-r "$addr" --processes "$WORKER_PROCS" -l "$TASKS_SO" $WORKER_OPTS)
    # what the nodes use idle (serverCron, the cluster bus): subtracted
    local i0 i1 ti0 ti1 idle
    i0=$(cluster_cpu_s); ti0=$EPOCHREALTIME
    sleep 2
    i1=$(cluster_cpu_s); ti1=$EPOCHREALTIME
    idle=$(awk -v a="$i0" -v b="$i1" -v x="$ti0" -v y="$ti1" 'BEGIN { printf "%.6f", (b - a) / (y - x) }')
    c0=$(cluster_cpu_s)
    t0=$EPOCHREALTIME
    spawn "$TMP/worker-cluster$m.log" "$WORKER_BIN" "${args[@]}"
    WORKER_PID=$SPAWNED
    # until every task ran; give up after 20 s without progress
    local last=-1 t_last=$EPOCHREALTIME
    while :; do
        done=$(cluster_done)
        [ "$done" -ge $((per * ${#CL_QUEUES[@]})) ] && break
        if [ "$done" != "$last" ]; then last=$done; t_last=$EPOCHREALTIME
        elif awk -v a="$t_last" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 20) }'; then break; fi
        sleep 0.05
    done
    t1=$EPOCHREALTIME
    c1=$(cluster_cpu_s)
    stop_spawned "$WORKER_PID"
    if [ "$done" -lt $((per * ${#CL_QUEUES[@]})) ]; then
        log "cluster ${m}m: the worker ran $done of $((per * ${#CL_QUEUES[@]})), none more for 20 s: $(grep -m3 -iE 'error|MOVED|CROSSSLOT|refus' "$TMP/worker-cluster$m.log" | cut -c1-200 | tr '\n' ' ')"
        na "cluster.${m}m.tasks_per_s" "the worker did not drain the cluster ($done of $((per * ${#CL_QUEUES[@]})) ran)"
        na "cluster.${m}m.redis_cpu_us_per_task" "the worker did not drain the cluster"
        cluster_stop
        return
    fi
    local rate cpu evs=0 nodes= loads=0
    rate=$(awk -v n="$done" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    i=0
    for p in "${CL_PORTS[@]}"; do
        i=$((i + 1))
        local cs ev bl tot
        cs=$(ccli "$p" INFO commandstats | tr -d '\r')
        # the children's SCRIPT LOADs when they connect: a fixed cost per
        # node and child, not per task (subtracted, with the idle CPU)
        loads=$((loads + $(sed -n 's/^cmdstat_script|load:calls=[0-9]*,usec=\([0-9]*\),.*/\1/p' <<<"$cs" | head -1 | sed 's/^$/0/')))
        ev=$(sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' <<<"$cs")
        bl=$(sed -n 's/^cmdstat_blpop:calls=\([0-9]*\),.*/\1/p' <<<"$cs")
        tot=$(ccli "$p" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }')
        log "cluster ${m}m node $i (:$p): $(grep '^cmdstat' <<<"$cs" | sed 's/,usec_per_call.*//;s/cmdstat_//' | tr '\n' ' ')"
        evs=$((evs + ${ev:-0}))
        nodes+="${ev:-0}/${bl:-0}/${tot:-0} "
    done
    cpu=$(awk -v a="$c0" -v b="$c1" -v r="$idle" -v x="$t0" -v y="$t1" -v l="$loads" \
          'BEGIN { printf "%.6f", b - a - r * (y - x) - l / 1e6 }')
    CR_RATE+=("$rate")
    CR_CPU+=("$(awk -v c="$cpu" -v n="$done" 'BEGIN { printf "%.2f", c * 1e6 / n }')")
    CR_CALL+=("$(awk -v c="$cpu" -v e="$evs" 'BEGIN { if (e > 0) printf "%.1f", c * 1e6 / e }')")
    CR_TPC+=("$(awk -v e="$evs" -v n="$done" 'BEGIN { if (e > 0) printf "%.2f", n / e }')")
    CR_IDLE+=("$(awk -v r="$idle" 'BEGIN { printf "%.2f", r * 1e3 }')")
    CR_NODES=$nodes
    log "cluster ${m}m: $done tasks at $rate/s, Redis ${CR_CPU[-1]} us/task (${CR_CALL[-1]} us per EVALSHA, ${CR_TPC[-1]} tasks per EVALSHA; idle ${CR_IDLE[-1]} ms/s subtracted); per node EVALSHA/BLPOP/commands: $nodes"
    cluster_stop
}

wl_cluster() {
    local why q i p
    if why=$(worker_missing); then na cluster.1m.tasks_per_s "$why"; return; fi
    # six queues, two on each master of a 3-master cluster (redis-cli
    # --cluster create splits the slots 0-5460, 5461-10922, 10923-16383)
    CL_QUEUES=()
    local n0=0 n1=0 n2=0 slot
    cluster_start 1
    for i in $(seq 1 500); do
        slot=$(ccli "${CL_PORTS[0]}" CLUSTER KEYSLOT "{cq$i}")
        if [ "$slot" -le 5460 ] && [ $n0 -lt 2 ]; then n0=$((n0 + 1)); CL_QUEUES+=("cq$i")
        elif [ "$slot" -gt 5460 ] && [ "$slot" -le 10922 ] && [ $n1 -lt 2 ]; then n1=$((n1 + 1)); CL_QUEUES+=("cq$i")
        elif [ "$slot" -gt 10922 ] && [ $n2 -lt 2 ]; then n2=$((n2 + 1)); CL_QUEUES+=("cq$i"); fi
        [ ${#CL_QUEUES[@]} = 6 ] && break
    done
    cluster_stop
    log "cluster: $CLUSTER_N tasks over ${CL_QUEUES[*]}, worker $WORKER_PROCS processes"
    cluster_series cluster
    # one hot queue with three shards, one in each third of the slots
    CL_QUEUES=()
    cluster_start 1
    for i in $(seq 1 2000); do
        local s0 s1 s2
        s0=$(ccli "${CL_PORTS[0]}" CLUSTER KEYSLOT "{sq$i}")
        s1=$(ccli "${CL_PORTS[0]}" CLUSTER KEYSLOT "{sq$i#1}")
        s2=$(ccli "${CL_PORTS[0]}" CLUSTER KEYSLOT "{sq$i#2}")
        if [ $((s0 * 3 / 16384)) != $((s1 * 3 / 16384)) ] && [ $((s0 * 3 / 16384)) != $((s2 * 3 / 16384)) ] &&
           [ $((s1 * 3 / 16384)) != $((s2 * 3 / 16384)) ]; then
            CL_SHARDED=sq$i; CL_QUEUES=("sq$i" "sq$i#1" "sq$i#2"); break
        fi
    done
    cluster_stop
    if [ -n "$CL_SHARDED" ]; then
        log "cluster_sharded: $CLUSTER_N tasks into $CL_SHARDED (shards ${CL_QUEUES[*]})"
        cluster_series cluster_sharded
    else
        na cluster_sharded.1m.tasks_per_s "no queue name with its 3 shards on 3 masters"
    fi
    CL_SHARDED=
}

# cluster_series PREFIX: REPEAT runs of 1 and 3 masters, alternated so both
# see the same co-load; medians as PREFIX.{1m,3m}.*
cluster_series() {
    local pfx=$1 i m j x r1=() r3=() c1=() c3=() k1=() k3=() t1=() t3=() d1=() d3=() n1= n3=
    for i in $(seq 1 "$REPEAT"); do
        for m in 1 3; do
            CR_RATE=() CR_CPU=() CR_CALL=() CR_TPC=() CR_IDLE=() CR_NODES=
            cluster_run "$m"
            [ ${#CR_RATE[@]} -gt 0 ] || continue
            if [ "$m" = 1 ]; then
                r1+=("${CR_RATE[0]}"); c1+=("${CR_CPU[0]}"); k1+=("${CR_CALL[0]}"); t1+=("${CR_TPC[0]}"); d1+=("${CR_IDLE[0]}"); n1=$CR_NODES
            else
                r3+=("${CR_RATE[0]}"); c3+=("${CR_CPU[0]}"); k3+=("${CR_CALL[0]}"); t3+=("${CR_TPC[0]}"); d3+=("${CR_IDLE[0]}"); n3=$CR_NODES
            fi
        done
    done
    for m in 1 3; do
        local -n R=r$m C=c$m K=k$m T=t$m D=d$m N=n$m
        if [ ${#R[@]} -eq 0 ]; then
            na "$pfx.${m}m.tasks_per_s" "the worker did not drain the ${m}-master cluster"
            continue
        fi
        log "$pfx ${m}m runs: tasks/s ${R[*]}; us/task ${C[*]}; us/EVALSHA ${K[*]}; tasks/EVALSHA ${T[*]}"
        figure "$pfx.${m}m.tasks_per_s" "$(median "${R[@]}")" tasks/s
        figure "$pfx.${m}m.redis_cpu_us_per_task" "$(median "${C[@]}")" us/task
        figure "$pfx.${m}m.redis_cpu_us_per_evalsha" "$(median "${K[@]}")" us/call
        figure "$pfx.${m}m.tasks_per_evalsha" "$(median "${T[@]}")" tasks/call
        figure "$pfx.${m}m.idle_cpu_ms_per_s" "$(median "${D[@]}")" ms/s
        j=0
        for x in $N; do
            j=$((j + 1))
            figure "$pfx.${m}m.node$j.evalsha_blpop_commands" "$x" "calls(last run)"
        done
    done
    local a=${FIG[$pfx.1m.redis_cpu_us_per_task]:-n/a} b=${FIG[$pfx.3m.redis_cpu_us_per_task]:-n/a}
    if [ "$a" != n/a ] && [ "$b" != n/a ]; then
        figure "$pfx.3m_over_1m.redis_cpu_per_task" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')" ratio
        a=${FIG[$pfx.1m.redis_cpu_us_per_evalsha]}; b=${FIG[$pfx.3m.redis_cpu_us_per_evalsha]}
        figure "$pfx.3m_over_1m.redis_cpu_per_evalsha" "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a }')" ratio
    fi
}

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

for w in ceilings http1 httpbatch client worker tasklet lateness memory deep mix90 idle push capacity cluster; do
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
