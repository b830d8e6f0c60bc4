# The contract library (lib/*.c + embedded Lua) and the C client (lib/client.c):
# $(B)/libdq.a, linked into the worker, the tests and C programs. The nginx
# module compiles the contract sources (not the client) through ./config.

LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(B)/gen/dq_scripts.o

$(GEN)/dq_scripts.c: lib/gen_scripts.sh $(wildcard lib/lua/*.lua)
	sh lib/gen_scripts.sh $@ lib/lua

$(LIB_OBJS): $(GEN)/dq_scripts.c

$(B)/libdq.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

all: $(B)/libdq.a
