# The operations test library, built twice (OPS_VERSION 1 and 2) so the
# reload test can tell old code from new: $(B)/examples/ops-tasks/
# libdq_ops_v1.so and libdq_ops_v2.so (used by the t/7N tests).

$(B)/examples/ops-tasks/v%/ops.o: examples/ops-tasks/ops.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -DOPS_VERSION=$* -MMD -MP -c -o $@ $<

$(B)/examples/ops-tasks/libdq_ops_v%.so: $(B)/examples/ops-tasks/v%/ops.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -o $@ $^

.PRECIOUS: $(B)/examples/ops-tasks/v%/ops.o

all: $(B)/examples/ops-tasks/libdq_ops_v1.so \
     $(B)/examples/ops-tasks/libdq_ops_v2.so
