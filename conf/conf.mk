# The worker's settings parser (conf/config.c, conf/config_file.c) as
# $(B)/libdqconf.a: deferred-worker reads its file with it, deferred-cli's
# `config apply` reads queue blocks with it. It depends on lib/ only, so
# neither program links the other's objects.

CONF_SRCS := conf/config.c conf/config_file.c
CONF_OBJS := $(CONF_SRCS:%.c=$(B)/%.o)

$(CONF_OBJS): $(GEN)/dq_scripts.c

$(B)/libdqconf.a: $(CONF_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

all: $(B)/libdqconf.a
