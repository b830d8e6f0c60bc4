# Futures and tasklets (include/deferred/tasklet.h): the objects are linked
# whole into deferred-worker (so task libraries find every dq_* entry point
# through -rdynamic) and archived as $(B)/libdqtasklet.a for the unit tests,
# the example and the microbenchmark. They need libuv and hiredis only.

TASKLET_SRCS := worker/coro.c worker/future.c worker/future_value.c \
                worker/future_multi.c worker/future_wait.c worker/tasklet.c \
                worker/tasklet_io.c
TASKLET_OBJS := $(TASKLET_SRCS:%.c=$(B)/%.o) $(B)/worker/coro_x86_64.o

$(B)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(OPTFLAGS) -c -o $@ $<

# the worker links them whole, plus its glue (DQ_FN_TASKLET tasks)
$(B)/worker/deferred-worker: $(TASKLET_OBJS) $(B)/worker/tasklet_task.o

$(B)/libdqtasklet.a: $(TASKLET_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# C unit tests of this part link the tasklet objects too.
TASKLET_TESTS := $(patsubst t/unit/%.c,$(B)/t/%,\
                   $(wildcard t/unit/test_future*.c t/unit/test_tasklet*.c))
$(TASKLET_TESTS): $(B)/t/%: $(B)/t/unit/%.o $(B)/libdqtasklet.a $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

all: $(B)/libdqtasklet.a $(TASKLET_TESTS)
