# deferred-worker ($(B)/worker/deferred-worker). The worker exports the
# dq_task_* / dq_log / dq_worker_redis_* symbols and the whole tasklet
# runtime (DQ_EXPORT, -rdynamic) to the task libraries it dlopen()s;
# everything else stays hidden (-fvisibility=hidden).

WORKER_SRCS := worker/main.c \
               worker/master.c worker/held.c worker/child.c \
               worker/dispatch.c worker/claim.c worker/report.c \
               worker/heartbeat.c worker/redis_uv.c worker/sentinel_uv.c \
               worker/loader.c worker/task.c worker/log.c worker/timeout.c \
               worker/tasklet_task.c worker/live.c worker/live_conf.c worker/notify.c \
               worker/pool.c worker/migrate.c worker/unlist.c \
               worker/cluster_uv.c worker/cluster_tryagain.c
WORKER_OBJS := $(WORKER_SRCS:%.c=$(B)/%.o)

$(WORKER_OBJS): $(GEN)/dq_scripts.c

$(B)/worker/deferred-worker: $(WORKER_OBJS) $(TASKLET_OBJS) $(B)/libdqconf.a \
                            $(B)/libdqclient.a $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -rdynamic -o $@ $^ $(ALL_LDLIBS) \
	    $(shell $(PKG_CONFIG) --libs libsystemd)

all: $(B)/worker/deferred-worker
