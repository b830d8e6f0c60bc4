# Futures and tasklets (include/deferred/tasklet.h; tasklet_host.h is what an
# embedding program such as the worker calls besides): archived as
# $(B)/libdqtasklet.a for the unit tests, the example and the
# microbenchmark, and linked whole into deferred-worker (so task libraries
# find every dq_* entry point through -rdynamic). Needs libuv, hiredis and
# $(B)/libdq.a (dq_strerror); knows nothing of the worker.

TASKLET_SRCS := tasklet/coro.c tasklet/future.c tasklet/future_value.c \
                tasklet/future_multi.c tasklet/future_wait.c tasklet/tasklet.c \
                tasklet/tasklet_io.c
TASKLET_OBJS := $(TASKLET_SRCS:%.c=$(B)/%.o) $(B)/tasklet/coro_x86_64.o

$(B)/libdqtasklet.a: $(TASKLET_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

all: $(B)/libdqtasklet.a
