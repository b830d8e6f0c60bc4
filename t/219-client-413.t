# The C client's size refusals name the task as nginx's 413 does
# (t/unit/test_client_413.c; review RLO finding 3).
use strict; use warnings; use lib 't/lib'; use DQTest;
my $p = DQTest::Redis->start;
my $bin = DQTest::need_built(DQTest::build_dir() . '/t/test_client_413',
                            'unit test test_client_413');
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
system($bin, $p->port);
exit($? == 0 ? 0 : 1);
