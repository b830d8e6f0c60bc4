# The C client's opt-in replication wait (t/unit/test_client_wait.c)
# against a real master with a replica, and a master without one.
use strict; use warnings; use lib 't/lib'; use DQTest;
my $p = DQTest::Redis->start;
my $q = DQTest::Redis->start(args => ['--replicaof', '127.0.0.1', $p->port]);
my $alone = DQTest::Redis->start;
DQTest::wait_for(sub { ($q->cmd('INFO', 'replication') // '') =~ /master_link_status:up/ }, 10);
my $bin = DQTest::need_built(DQTest::build_dir() . '/t/test_client_wait',
                            'unit test test_client_wait');
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
system($bin, $p->port, $alone->port);
exit($? == 0 ? 0 : 1);
