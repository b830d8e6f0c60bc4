# ngx_deferred — worker, contract library, C client, examples and unit tests.
# The nginx module is built by build.sh against nginx's own build system.
#
#   make                 normal build into build/
#   make SAN=1           ASan + UBSan build into build/san/
#
# Each part adds its targets in its own fragment (lib/lib.mk,
# worker/worker.mk, t/t.mk, examples/*/example.mk, bench/bench.mk).

SAN   ?= 0
CC    ?= cc
PKGS  := hiredis msgpack libuv jansson

ifeq ($(SAN),1)
B        ?= build/san
OPTFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
SANLD    := -fsanitize=address,undefined
else
B        ?= build
OPTFLAGS := -O2 -g
SANLD    :=
endif

GEN      := build/gen
CPPFLAGS := -Iinclude -Ilib -I$(GEN) $(shell pkg-config --cflags $(PKGS))
CFLAGS   := -std=gnu11 $(OPTFLAGS) -Wall -Wextra -Werror -fPIC \
            -fvisibility=hidden $(EXTRA_CFLAGS)
LDFLAGS  := $(SANLD) $(EXTRA_LDFLAGS)
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -ldl -lm

.PHONY: all clean
all:

-include lib/lib.mk
-include worker/worker.mk
-include worker/tasklet.mk
-include $(wildcard examples/*/example.mk)
-include t/t.mk
-include bench/bench.mk

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
