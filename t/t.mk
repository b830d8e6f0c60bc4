# C unit tests: every t/unit/<name>.c becomes $(B)/t/<name>, printing TAP;
# t/*.t wrappers run them under prove (DQTest::exec_unit). Each links all
# of the project's static libraries: the linker takes only what it uses,
# so a new test needs no naming rule or fragment of its own.

UNIT_SRCS := $(wildcard t/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:t/unit/%.c=$(B)/t/%)
UNIT_LIBS := $(B)/libdqtasklet.a $(B)/libdqclient.a $(B)/libdq.a

$(UNIT_SRCS:t/unit/%.c=$(B)/t/unit/%.o): $(GEN)/dq_scripts.c

$(B)/t/%: $(B)/t/unit/%.o $(UNIT_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

all: $(UNIT_BINS)
