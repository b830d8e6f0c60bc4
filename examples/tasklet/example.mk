# The tasklet example's task library: $(B)/examples/tasklet/libdq_tasklet_example.so
# (dlopen()ed by deferred-worker; the dq_task_* and tasklet entry points come
# from the worker executable; the plain version links hiredis itself).

$(B)/examples/tasklet/libdq_tasklet_example.so: $(B)/examples/tasklet/tasklet.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ -lhiredis -lpthread

all: $(B)/examples/tasklet/libdq_tasklet_example.so
