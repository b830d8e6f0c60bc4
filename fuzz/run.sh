#!/bin/sh
# libFuzzer harnesses for every decoder an untrusted byte reaches:
#   fuzz_request   JSON / msgpack request bodies -> requests -> envelopes
#   fuzz_json      the JSON -> msgpack converter against jansson's DOM
#                  (differential: same verdict, same bytes)
#   fuzz_envelope  stored envelopes (Redis is not trusted either)
#   fuzz_sign      the X-Deferred-Signature parser and verifier
#   fuzz_names     queue/task/function/URL/client-id validators, INFO check
#
#   fuzz/run.sh SECONDS [HARNESS...]   build with clang (ASan + UBSan +
#                                      libFuzzer) into build/fuzz, run each
#                                      for SECONDS from fuzz/corpus/<name>
#
# ./build.sh fuzz runs it long; t/19-fuzz.t runs a short bounded pass.
# Prints one "fuzz <name>: <execs> execs, <secs> s, ok|CRASH" line each;
# exits 1 on a crash (the input is kept in build/fuzz/crash-<name>-*).
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-60}
[ $# -gt 0 ] && shift
NAMES=${*:-fuzz_request fuzz_json fuzz_envelope fuzz_sign fuzz_names}
CC=${FUZZ_CC:-clang}
B=${FUZZ_DIR:-build/fuzz}   # t/19-fuzz.t uses its own: runs may overlap
mkdir -p "$B/obj" "$B/gen"

command -v "$CC" >/dev/null || { echo "fuzz: no $CC (apt-get install clang libclang-rt-14-dev)"; exit 77; }

PKGS="hiredis msgpack jansson libcrypto"
pkg-config --exists msgpack 2>/dev/null || PKGS="hiredis msgpack-c jansson libcrypto"
FLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
INC="-Iinclude -Ilib -I$B/gen $(pkg-config --cflags $PKGS)"

sh lib/gen_scripts.sh "$B/gen/dq_scripts.c" lib/lua
OBJS=
for f in lib/dq_*.c "$B/gen/dq_scripts.c"; do
    o="$B/obj/$(basename "$f" .c).o"
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ lib/dq_contract.h -nt "$o" ]; then
        $CC $FLAGS $INC -c -o "$o" "$f"
    fi
    OBJS="$OBJS $o"
done

status=0
for n in $NAMES; do
    $CC $FLAGS -fsanitize=fuzzer $INC -o "$B/$n" "fuzz/$n.c" $OBJS \
        $(pkg-config --libs $PKGS) -lm
    mkdir -p "$B/corpus/$n"
    [ -d "fuzz/corpus/$n" ] && cp -n fuzz/corpus/$n/* "$B/corpus/$n/" 2>/dev/null || true
    log="$B/$n.log"
    if ASAN_OPTIONS=detect_leaks=1 "$B/$n" -max_total_time="$SECS" \
           -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
           -artifact_prefix="$B/crash-$n-" "$B/corpus/$n" >"$log" 2>&1; then
        res=ok
    else
        res=CRASH
        status=1
    fi
    execs=$(grep -ao 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || true)
    [ -n "$execs" ] || execs=$(grep -ao '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    echo "fuzz $n: ${execs:-0} execs, $SECS s, $res"
    [ "$res" = ok ] || tail -40 "$log"
done
exit $status
