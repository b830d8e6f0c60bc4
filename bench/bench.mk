# The benchmark programs run by bench/run.sh (./build.sh bench):
#   $(B)/bench/dq-bench-enqueue        C-client enqueue benchmark and queue filler
#   $(B)/bench/libdq_bench_tasks.so    task library: bench.noop, bench.stamp
#   $(B)/bench/dq-bench-wait           waits for a Redis counter, says when
#   $(B)/bench/libdq_bench_tasklets.so task library: bench.tasklet_incr
# bench/micro/ (tasklet microbenchmarks) has its own fragment.

BENCH_BINS := $(B)/bench/libdq_bench_tasks.so $(B)/bench/dq-bench-wait

# the client lands in lib/client.c; until then the enqueue program cannot link
ifneq ($(wildcard lib/client.c),)
BENCH_BINS += $(B)/bench/dq-bench-enqueue
endif

$(B)/bench/dq-bench-enqueue: $(B)/bench/dq_bench_enqueue.o $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/dq-bench-wait: $(B)/bench/dq_bench_wait.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the tasklet API lands in include/deferred/tasklet.h
ifneq ($(wildcard include/deferred/tasklet.h),)
BENCH_BINS += $(B)/bench/libdq_bench_tasklets.so
endif

$(B)/bench/libdq_bench_tasklets.so: $(B)/bench/tasks/bench_tasklets.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^

# dq_task_* come from the worker executable at dlopen time
$(B)/bench/libdq_bench_tasks.so: $(B)/bench/tasks/bench_tasks.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^

all: $(BENCH_BINS)

-include $(wildcard bench/micro/*.mk)
