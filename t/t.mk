# C unit tests: every t/unit/<name>.c becomes $(B)/t/<name>, printing TAP;
# t/*.t wrappers run them under prove (DQTest::exec_unit).

UNIT_SRCS := $(wildcard t/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:t/unit/%.c=$(B)/t/%)

$(B)/t/%: $(B)/t/unit/%.o $(B)/libdq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

all: $(UNIT_BINS)
