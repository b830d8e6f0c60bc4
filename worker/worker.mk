# deferred-worker ($(B)/worker/deferred-worker) and deferred-cli
# ($(B)/worker/deferred-cli). The worker exports the dq_task_* / dq_log /
# dq_worker_redis_* symbols (DQ_EXPORT, -rdynamic) to the task libraries
# it dlopen()s; everything else stays hidden (-fvisibility=hidden).

WORKER_SRCS := worker/main.c worker/config.c worker/config_file.c \
               worker/master.c worker/child.c \
               worker/dispatch.c worker/heartbeat.c worker/redis_uv.c worker/loader.c \
               worker/task.c worker/log.c worker/timeout.c
WORKER_OBJS := $(WORKER_SRCS:%.c=$(B)/%.o)

$(B)/worker/deferred-worker: $(WORKER_OBJS) $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

$(B)/worker/deferred-cli: $(B)/worker/cli.o $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

all: $(B)/worker/deferred-worker $(B)/worker/deferred-cli
