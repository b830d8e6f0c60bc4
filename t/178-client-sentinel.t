# The C client follows a Sentinel switchover by itself
# (t/unit/test_client_sentinel.c) against a primary, two replicas and
# three sentinels (t/lib/DQSentinel.pm).
use strict; use warnings; use lib 't/lib'; use DQTest; use DQSentinel;
my $bin = DQTest::need_built(DQTest::build_dir() . '/t/test_client_sentinel',
                            'unit test test_client_sentinel');
my $s = DQSentinel->start(master => 'dqm');
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
system($bin, $s->address, $s->sentinel(0)->port, $s->name);
exit($? == 0 ? 0 : 1);
