# The C client end to end against a real redis-server (t/unit/test_client.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
my $bin = DQTest::build_dir() . '/t/test_client';
unless (-x $bin) { print "1..0 # SKIP $bin not built\n"; exit 0; }
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir,
                             args => ['--unixsocket', "$dir/redis.sock"]);
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
system($bin, $r->port, "$dir/redis.sock");
exit($? == 0 ? 0 : 1);
