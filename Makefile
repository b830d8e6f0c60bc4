# ngx_deferred — worker, contract library, C client, tasklet runtime,
# examples and unit tests. The nginx module is built by build.sh (or by
# nginx's own ./configure --add-dynamic-module) through ./config.
#
#   make                 build into build/
#   make SAN=1           ASan + UBSan build into build/san/
#   make module          the nginx module (./build.sh module) into
#                        $(MODULE_B): B, or build/ for SAN=1 (the module
#                        runs in Debian's nginx, never sanitized)
#   make check           build (all + module) and run every test against
#                        that build: DQ_BUILD=$(B) DQ_STRICT=1 prove t/
#   make clean           remove $(B) and nothing else: build/ by default
#                        (with build/san and the module), build/san with
#                        SAN=1, the directory given with B=...
#   make install         install (PREFIX, DESTDIR, BINDIR, LIBDIR, INCLUDEDIR,
#                        MODULEDIR, UNITDIR; the module must have been built
#                        by ./build.sh build or nginx's configure first)
#   make version         print the version
#
# Flags follow the GNU/Debian conventions: CPPFLAGS, CFLAGS and LDFLAGS are
# the builder's (e.g. dpkg-buildflags) and are added to, never replace, the
# flags the project needs (DQ_* below). WERROR=1 (set by build.sh and CI)
# turns warnings into errors; a packager's build does not fail on a new
# compiler's new warning.
#
# Each part adds its targets in its own fragment (lib/lib.mk,
# conf/conf.mk, client/client.mk, tasklet/tasklet.mk, worker/worker.mk,
# t/t.mk,
# examples/*/example.mk, bench/bench.mk).

VERSION := $(shell cat VERSION)
SAN     ?= 0
WERROR  ?= 0
CC      ?= cc
PKG_CONFIG ?= pkg-config
PKGS    := hiredis msgpack libuv jansson libcrypto
# what libdq.a + libdqclient.a need from a program that links them: the
# Requires of the installed ngx-deferred.pc (add a package here when the
# client or lib/ starts using it; libcrypto: request signing)
DQ_CLIENT_PKGS := hiredis msgpack jansson libcrypto

# the builder's flags (defaults when nothing is given)
CFLAGS   ?= -O2 -g
CPPFLAGS ?=
LDFLAGS  ?=

ifeq ($(SAN),1)
B        ?= build/san
DQ_SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
DQ_SANLD    := -fsanitize=address,undefined
else
B        ?= build
DQ_SANFLAGS :=
DQ_SANLD    :=
endif

GEN := $(B)/gen
# where the module is built and installed from (install.mk)
MODULE_B  ?= $(if $(filter 1,$(SAN)),build,$(B))
MODULE_SO ?= $(MODULE_B)/ngx_http_deferred_module.so

# what the project needs whatever the builder says: the task ABI relies on
# -fvisibility=hidden (only DQ_EXPORT symbols leave a library) and -fPIC
DQ_CPPFLAGS := -Iinclude -Ilib -Iconf -Iclient -Itasklet -I$(GEN) \
               -DDQ_VERSION='"$(VERSION)"' \
               $(shell $(PKG_CONFIG) --cflags $(PKGS))
DQ_CFLAGS   := -std=gnu11 -Wall -Wextra -fPIC -fvisibility=hidden \
               $(if $(filter 1,$(WERROR)),-Werror) $(DQ_SANFLAGS)
DQ_LDFLAGS  := $(DQ_SANLD)
DQ_LDLIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread -ldl -lm

ALL_CPPFLAGS = $(DQ_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS   = $(CFLAGS) $(DQ_CFLAGS)
ALL_LDFLAGS  = $(LDFLAGS) $(DQ_LDFLAGS)
ALL_LDLIBS   = $(DQ_LDLIBS) $(LDLIBS)

.PHONY: all clean check install version module
all:

-include lib/lib.mk
-include conf/conf.mk
-include client/client.mk
-include tasklet/tasklet.mk
-include worker/worker.mk
-include push/push.mk
-include $(wildcard examples/*/example.mk)
-include t/t.mk
-include bench/bench.mk
-include install.mk

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(CFLAGS) $(DQ_SANFLAGS) -c -o $@ $<

$(B)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

module:
	B='$(MODULE_B)' ./build.sh module

# the build just made, and a missing piece is a failure, not a skip
check: all module
	DQ_BUILD='$(abspath $(B))' DQ_MODULE='$(abspath $(MODULE_SO))' \
	    DQ_STRICT=1 prove -j$(or $(JOBS),2) t/

version:
	@echo $(VERSION)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
