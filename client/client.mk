# The blocking C client (include/deferred/client.h, client/client*.c) as
# $(B)/libdqclient.a, and deferred-cli ($(B)/client/deferred-cli) on top of
# it. Blocking hiredis: never linked into nginx.

CLIENT_SRCS := $(wildcard client/client*.c)
CLIENT_OBJS := $(CLIENT_SRCS:%.c=$(B)/%.o)

$(CLIENT_OBJS): $(GEN)/dq_scripts.c

$(B)/libdqclient.a: $(CLIENT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

CLI_OBJS := $(patsubst %.c,$(B)/%.o,$(wildcard client/cli*.c))

$(CLI_OBJS): $(GEN)/dq_scripts.c

# `config apply` reads queue blocks with the settings parser the worker
# uses (conf/, libdqconf.a): one parser, no worker object linked here
$(B)/client/deferred-cli: $(CLI_OBJS) $(B)/libdqconf.a $(B)/libdqclient.a \
                          $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

all: $(B)/libdqclient.a $(B)/client/deferred-cli
