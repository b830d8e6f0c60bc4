# The example task library: $(B)/examples/tasks/libdq_example_tasks.so
# (shared object, dlopen()ed by deferred-worker; used by the t/3N tests).

$(B)/examples/tasks/libdq_example_tasks.so: $(B)/examples/tasks/tasks.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^

all: $(B)/examples/tasks/libdq_example_tasks.so
