# The contract library: lib/dq_*.c and the embedded Lua scripts
# ($(GEN)/dq_scripts.c) as $(B)/libdq.a. Non-blocking and safe inside nginx:
# the module compiles the same sources through ./config. Nothing here may
# block, sleep or own a connection.

LIB_SRCS := $(wildcard lib/dq_*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(B)/gen/dq_scripts.o

$(GEN)/dq_scripts.c: lib/gen_scripts.sh $(wildcard lib/lua/*.lua)
	sh lib/gen_scripts.sh $@ lib/lua

$(LIB_OBJS): $(GEN)/dq_scripts.c

$(B)/libdq.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

all: $(B)/libdq.a
