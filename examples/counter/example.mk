# The Counter example's task library: $(B)/examples/counter/libcounter.so
# (dlopen()ed by deferred-worker; keeps its own hiredis connection per
# pool thread).

$(B)/examples/counter/libcounter.so: $(B)/examples/counter/counter.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^ -lhiredis -lpthread

all: $(B)/examples/counter/libcounter.so
