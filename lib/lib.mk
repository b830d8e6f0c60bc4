# The contract library (lib/dq_*.c + embedded Lua) and the C client
# (lib/client*.c): $(B)/libdq.a, linked into the worker, the tests and C
# programs. The nginx module compiles only the contract, DQ_CONTRACT_SRCS
# (lib/dq_*.c and the generated build/gen/dq_scripts.c), through ./config:
# the client files use blocking hiredis and must never go into nginx.

DQ_CONTRACT_SRCS := $(wildcard lib/dq_*.c)
DQ_CLIENT_SRCS   := $(wildcard lib/client*.c)
LIB_SRCS := $(DQ_CONTRACT_SRCS) $(DQ_CLIENT_SRCS)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(B)/gen/dq_scripts.o

$(GEN)/dq_scripts.c: lib/gen_scripts.sh $(wildcard lib/lua/*.lua)
	sh lib/gen_scripts.sh $@ lib/lua

$(LIB_OBJS): $(GEN)/dq_scripts.c

$(B)/libdq.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

all: $(B)/libdq.a
