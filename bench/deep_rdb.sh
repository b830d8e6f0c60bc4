#!/usr/bin/env bash
# bench/deep_rdb.sh OUT [N] — write a Redis dump (OUT) holding queue "bench"
# with N (1000000) delayed tasks in its cold tier, due from 1 h ahead over
# a day, for bench/contract_cpu.pl --rdb OUT: the claim and ack
# instructions beside a deep queue, under callgrind, against a run without
# (docs/BENCHMARKS.md section 6). Needs build/ (DQ_BUILD) and redis-server;
# starts its own redis-server on a free loopback port, stops it by pid.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DQ_BUILD:-$ROOT/build}
OUT=${1:?usage: bench/deep_rdb.sh OUT [N]}
N=${2:-1000000}
D=$(mktemp -d /tmp/dqdeep-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$D" --daemonize no >"$D/redis.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
    sleep 0.05
done
"$BUILD/bench/dq-bench-enqueue" -a "127.0.0.1:$PORT" -q bench -n "$N" -b 1000 \
    -e 3600000:86400000 -t 600 >/dev/null
echo "cold tier: $(redis-cli -p "$PORT" HGET 'dq2:{bench}:stats' cold) tasks, $(redis-cli -p "$PORT" DBSIZE) keys"
redis-cli -p "$PORT" SAVE >/dev/null
cp "$D/dump.rdb" "$OUT"
