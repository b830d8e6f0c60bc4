# The push library: $(B)/push/libdq_push.so (dlopen()ed by deferred-worker
# for queues with push_target; the dq_task_* and tasklet entry points come
# from the worker executable). libcurl (multi socket API on the worker's
# libuv loop) and libcrypto (signing).

DQ_PUSH_OBJS := $(B)/push/push.o $(B)/push/dq_sign.o

$(B)/push/push.o: ALL_CPPFLAGS += -Ipush $(shell $(PKG_CONFIG) --cflags libcurl)

$(B)/push/libdq_push.so: $(DQ_PUSH_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ \
	    $(shell $(PKG_CONFIG) --libs libcurl libcrypto)

all: $(B)/push/libdq_push.so
