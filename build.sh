#!/usr/bin/env bash
# ngx_deferred — the one entry point.
#
#   ./build.sh run      set up, build, and run the example system
#                       (Redis, nginx with the module, workers, on loopback)
#   ./build.sh run flask|django|wsgi
#                       the same with App Engine's Python sample under
#                       gunicorn, the worker pushing tasks back to it
#   ./build.sh test     set up, build (plus an ASan/UBSan build), run all tests
#   ./build.sh build    set up and build
#   ./build.sh module   only the nginx module, into $B (default build/)
#   ./build.sh bench    set up, build, run the benchmarks (bench/run.sh)
#   ./build.sh capacity set up, build, measure the capacity model's inputs
#                       (bench/run.sh --only capacity; docs/SCALING.md)
#   ./build.sh packages build the Debian packages (debian/) into build/packages
#   ./build.sh soak [S] set up, build, run the fault soak (t/82-fault-soak.t)
#                       for S seconds of faults (default 600)
#   ./build.sh fuzz [S] set up, run every libFuzzer harness S seconds
#                       (default 600; fuzz/run.sh, docs/SECURITY.md)
#   ./build.sh deps     only install the Debian packages that are missing
#   ./build.sh clean
#
# Environment: NGINX_SRC=/path/to/nginx-source builds the module against
# your own nginx tree instead of Debian's nginx-dev; JOBS=n for make -j;
# B=dir, CPPFLAGS, CFLAGS, LDFLAGS for `module` (default build/ and
# dpkg-buildflags).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

PACKAGES=(gcc make pkg-config perl dpkg-dev
          libhiredis-dev libmsgpack-dev libuv1-dev libjansson-dev libssl-dev
          redis-server redis-tools nginx nginx-dev wrk python3 python3-flask
          curl valgrind clang libclang-rt-14-dev debhelper prometheus
          chromium chromium-driver libsystemd-dev libcurl4-openssl-dev gunicorn
          python3-django python3-redis python3-setuptools python3-wheel
          python3-pip python3-venv faketime redis-sentinel iproute2 strace git
          util-linux)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
        sudo=sudo
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# The module, built by nginx's own build system against Debian's nginx-dev
# (or NGINX_SRC) into $B/nginx, copied to $B/ngx_http_deferred_module.so
# (B: the build directory, default build/). The builder's CPPFLAGS, CFLAGS
# and LDFLAGS when given, else dpkg-buildflags' (what Debian's nginx was
# built with); -fPIC is always added.
build_module() {
    [ -f config ] && compgen -G 'ngx_module/*.c' >/dev/null || return 0
    local src=${NGINX_SRC:-/usr/share/nginx/src} out=${B:-build} obj sig
    case $out in /*) ;; *) out=$ROOT/$out ;; esac
    obj=$out/nginx
    [ -d "$src" ] || die "no nginx source tree at $src (install nginx-dev or set NGINX_SRC)"
    local cc_opt ld_opt
    cc_opt="${CPPFLAGS-$(dpkg-buildflags --get CPPFLAGS 2>/dev/null)} ${CFLAGS-$(dpkg-buildflags --get CFLAGS 2>/dev/null)} -fPIC"
    ld_opt="${LDFLAGS-$(dpkg-buildflags --get LDFLAGS 2>/dev/null)} -fPIC"
    local stamp=$obj/.configured
    # reconfigure when config, the flags or the set of sources change
    sig=$(cat config "$src"/conf_flags 2>/dev/null | cksum
          ls ngx_module/*.c lib/dq_*.c; echo "$src $cc_opt $ld_opt")
    if [ ! -f "$obj/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sig" ]; then
        log "configuring the module against $src into $obj"
        mkdir -p "$obj"
        if [ -f "$src/conf_flags" ]; then
            # Debian's nginx-dev: the exact flags of /usr/sbin/nginx
            (cd "$src" && . ./conf_flags &&
             ./configure --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
                 "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$ROOT" \
                 --builddir="$obj") >"$obj/configure.log" 2>&1 ||
                die "nginx configure failed, see $obj/configure.log"
        else
            # a release tarball has ./configure, a git checkout auto/configure
            local configure=./configure
            [ -x "$src/configure" ] || configure=auto/configure
            (cd "$src" && $configure --with-compat --add-dynamic-module="$ROOT" \
                 --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
                 --builddir="$obj" ${NGINX_CONFIGURE_ARGS:-}) \
                >"$obj/configure.log" 2>&1 ||
                die "nginx configure failed, see $obj/configure.log"
        fi
        echo "$sig" >"$stamp"
    fi
    # the embedded Lua scripts follow lib/lua/ between configures (the
    # rule ./config adds to objs/Makefile does it too; an unchanged file
    # keeps its time stamp)
    sh lib/gen_scripts.sh "$obj/ngx_deferred_gen/dq_scripts.c" lib/lua
    sh ngx_module/gen_dashboard.sh \
        "$obj/ngx_deferred_gen/ngx_http_deferred_dashboard.h" \
        ngx_module/dashboard.html
    make -s -f "$obj/Makefile" -C "$src" modules
    # a new inode: an nginx running the old module keeps its mapping intact
    cp "$obj/ngx_http_deferred_module.so" "$out/ngx_http_deferred_module.so.tmp"
    mv -f "$out/ngx_http_deferred_module.so.tmp" "$out/ngx_http_deferred_module.so"
}

build() {
    log "building"
    make -s -j"$JOBS" WERROR=1 all
    build_module
}

build_san() {
    log "building with AddressSanitizer + UndefinedBehaviorSanitizer"
    make -s -j"$JOBS" WERROR=1 SAN=1 all
}

run_tests() {
    command -v prove >/dev/null || die "prove not found (perl)"
    log "running tests"
    # DQ_STRICT: a test whose binary is missing fails instead of skipping;
    # a tree that is no git checkout at all (a tarball, a zip) has no
    # older builds' scripts for the mixed-fleet tests: they skip, saying so
    # (a shallow clone still fails them: git fetch --unshallow), t/README
    if [ -z "${DQ_NO_GIT_HISTORY:-}" ] &&
       [ "$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null)" != \
         "$(cd "$ROOT" && pwd -P)" ]; then
        log "no git checkout here: the tests that run an older build's" \
            "scripts from the git history are skipped (DQ_NO_GIT_HISTORY=1)"
        export DQ_NO_GIT_HISTORY=1
    fi
    DQ_STRICT=1 prove -j"$JOBS" t/
}

# dpkg-buildpackage on a copy of the tree (it writes into debian/ and puts
# the .debs beside the tree), results in build/packages
packages() {
    local out=$ROOT/build/packages src
    rm -rf "$out" && mkdir -p "$out/src/ngx-deferred"
    src=$out/src/ngx-deferred
    tar --exclude=./build --exclude=./.git --exclude=./debian/tmp \
        --exclude=./debian/build-nginx --exclude=./debian/build-make \
        -cf - . | tar -C "$src" -xf -
    log "dpkg-buildpackage -us -uc -b (log: $out/build.log)"
    (cd "$src" && DEB_BUILD_OPTIONS="parallel=$JOBS" \
        dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 ||
        die "dpkg-buildpackage failed, see $out/build.log"
    mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
    rm -rf "$out/src"
    ls -1 "$out"/*.deb
}

cmd=${1:-}
case "$cmd" in
    deps)  deps ;;
    build) deps; build ;;
    module) build_module ;;
    test)  deps; build; build_san; run_tests ;;
    run)   deps; build; shift
           case ${1:-} in
               flask|django|wsgi) exec "$ROOT/examples/appengine/run.sh" "$@" ;;
           esac
           exec "$ROOT/examples/run.sh" "$@" ;;
    bench) deps; build; shift; exec "$ROOT/bench/run.sh" "$@" ;;
    capacity) deps; build; shift
           exec "$ROOT/bench/run.sh" --only capacity --repeat 1 "$@" ;;
    packages) deps; packages ;;
    soak)  deps; build; build_san
           DQ_SOAK_S=${2:-600} exec prove -v t/82-fault-soak.t ;;
    fuzz)  deps; shift; exec "$ROOT/fuzz/run.sh" "${1:-600}" ;;
    clean) make -s clean ;;
    *) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; [ -z "$cmd" ] || exit 2 ;;
esac
