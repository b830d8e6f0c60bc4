# Queue limits in the claim script (rate, max_concurrent, pause/resume)
# against a real redis-server: runs the C unit test build/t/claim_limits.
use strict;
use warnings;
use lib 't/lib';
use DQTest;

my $bin = DQTest::build_dir() . '/t/claim_limits';
unless (-x $bin) {
    print "1..0 # SKIP $bin not built (./build.sh test builds it)\n";
    exit 0;
}
my $r = DQTest::Redis->start;
$ENV{DQ_REDIS_PORT} = $r->port;
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
system($bin);
my $rc = $? >> 8;
$r->stop;
exit($rc || ($? & 127 ? 1 : 0));
