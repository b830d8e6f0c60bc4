# bench/wl/cluster.sh — sourced by bench/run.sh (its helpers and settings);
# defines wl_cluster, run by run.sh when the workload is selected.
# shellcheck shell=bash

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
