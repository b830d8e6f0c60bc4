# Microbenchmarks run by hand (not by ./build.sh bench):
#   make build/bench/micro/tasklet_bench && build/bench/micro/tasklet_bench
$(B)/bench/micro/tasklet_bench: $(B)/bench/micro/tasklet_bench.o \
                                $(B)/libdqtasklet.a $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

all: $(B)/bench/micro/tasklet_bench
