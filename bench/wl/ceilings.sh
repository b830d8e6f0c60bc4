# bench/wl/ceilings.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_ceilings, run by run.sh when the workload is selected.
# shellcheck shell=bash

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
    rb_ceiling ceiling.redis_zadd_p16 -n 1000000 -P 16 \
        -r 1000000 --csv zadd bench:z __rand_int__ m:__rand_int__

    # the enqueue script's core: ZADD + HSET of a small envelope
    local script="redis.call('ZADD',KEYS[1],ARGV[1],ARGV[2]) redis.call('HSET',KEYS[2],ARGV[2],ARGV[3]) return 1"
    local envelope ev
    envelope=$(printf 'x%.0s' $(seq 1 60))
    ev=(-r 1000000 --csv eval "$script" 2 'bench:{b}:eta' 'bench:{b}:tasks' __rand_int__ id:__rand_int__ "$envelope")
    log "ceiling: redis-benchmark EVAL ZADD+HSET, unpipelined and -P 16"
    rb_ceiling ceiling.redis_eval_zadd_hset -n 200000 "${ev[@]}"
    rb_ceiling ceiling.redis_eval_zadd_hset_p16 -n 500000 -P 16 "${ev[@]}"
}

# rb_ceiling NAME ARGS...: the median ops/s of REPEAT runs of
# redis-benchmark (50 clients) with ARGS, Redis flushed after each
rb_ceiling() {
    local name=$1 i v vals=()
    shift
    for i in $(seq 1 "$REPEAT"); do
        v=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 50 "$@" |
            awk -F'","' 'NR == 2 { print $2 + 0 }')
        vals+=("${v%.*}")
        flush
    done
    figure "$name" "$(median "${vals[@]}")" ops/s
}
