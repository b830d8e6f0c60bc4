# The benchmark programs run by bench/run.sh (./build.sh bench):
#   $(B)/bench/dq-bench-enqueue        C-client enqueue benchmark and queue filler
#   $(B)/bench/libdq_bench_tasks.so    task library: bench.noop, bench.stamp
#   $(B)/bench/dq-bench-wait           waits for a Redis counter, says when
#   $(B)/bench/libdq_bench_tasklets.so task library: bench.tasklet_incr
#   $(B)/bench/dq-bench-promote        the cold tier's promotion, timed
# bench/micro/ (tasklet microbenchmarks) has its own fragment.

BENCH_BINS := $(B)/bench/libdq_bench_tasks.so $(B)/bench/dq-bench-wait \
              $(B)/bench/dq-bench-enqueue $(B)/bench/libdq_bench_tasklets.so \
              $(B)/bench/dq-bench-promote

$(B)/bench/dq-bench-enqueue: $(B)/bench/dq_bench_enqueue.o \
                             $(B)/libdqclient.a $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(B)/bench/dq-bench-promote: $(B)/bench/dq_bench_promote.o $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(B)/bench/dq-bench-wait: $(B)/bench/dq_bench_wait.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(B)/bench/libdq_bench_tasklets.so: $(B)/bench/tasks/bench_tasklets.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^

# dq_task_* come from the worker executable at dlopen time
$(B)/bench/libdq_bench_tasks.so: $(B)/bench/tasks/bench_tasks.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^

all: $(BENCH_BINS)

-include $(wildcard bench/micro/*.mk)
