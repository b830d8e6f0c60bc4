# Redis futures (t/unit/test_tasklet_redis.c) against a real redis-server.
use strict; use warnings; use lib 't/lib'; use DQTest;
use Test::More ();
my $bin = DQTest::build_dir() . '/t/test_tasklet_redis';
unless (-x $bin) {
    print "1..0 # SKIP $bin not built (./build.sh test builds it)\n";
    exit 0;
}
my $r = DQTest::Redis->start;
$ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
$| = 1;
system($bin, $r->port);
my $rc = $? >> 8;
$r->stop;
exit $rc;
