# The push library: $(B)/push/libdq_push.so (dlopen()ed by deferred-worker
# for queues with push_target; the dq_task_* and tasklet entry points come
# from the worker executable); libcurl (multi socket API on the worker's
# libuv loop); the signature from lib/ (dq_sign.c, linked in from libdq.a,
# hidden) with libcrypto.

$(B)/push/push.o: ALL_CPPFLAGS += $(shell $(PKG_CONFIG) --cflags libcurl)

$(B)/push/libdq_push.so: $(B)/push/push.o $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,--exclude-libs,ALL -o $@ \
	    $(B)/push/push.o $(B)/libdq.a \
	    $(shell $(PKG_CONFIG) --libs libcurl libcrypto msgpack jansson)

all: $(B)/push/libdq_push.so
