# examples/run.sh (what `./build.sh run` execs): PORT picks nginx's port,
# it prints what to curl, the Counter example answers through it, and
# SIGTERM stops Redis, nginx and the worker it started.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();
# run.sh runs build/'s files (what ./build.sh build made)
for (qw(build/worker/deferred-worker build/examples/counter/libcounter.so)) {
    DQTest::require_built("$DQTest::ROOT/$_", $_);
}
DQTest::need_tool(DQTest::in_path('redis-server'), 'redis-server');

my $dir = tmpdir();
my $port = free_port();
my $out = "$dir/run.out";
my $pid = spawn(name => 'run.sh', log => $out,
                env => { PORT => $port, RUN_DIR => "$dir/run",
                         COUNTDOWN1 => 1, COUNTDOWN2 => 2,
                         REDIS_PORT => free_port() },
                cmd => ["$DQTest::ROOT/examples/run.sh"]);

ok(DQTest::wait_for(sub { slurp($out) =~ /Ctrl-C stops everything/ }, 20),
   'run.sh started and printed its instructions') or diag slurp($out);
my $text = slurp($out);
like($text, qr{curl http://127\.0\.0\.1:$port/counter/increment}, 'it says what to curl, on PORT');
my ($redis_port) = $text =~ /Redis 127\.0\.0\.1:(\d+)/;
ok($redis_port, "its own Redis on port $redis_port");

my $n = bless { port => $port }, 'DQNginx';
DQTest::wait_for(sub { slurp($out) =~ /redis \(wake\): connected/ }, 10);
my $res = $n->request('GET', '/counter/increment');
is($res->{body}, 'Deferred counter increment.', '/counter/increment answers');
ok(DQTest::wait_for(sub { $n->request('GET', '/counter/get')->{body} eq '30' }, 15, 0.1),
   '/counter/get reaches 30');
like(slurp($out), qr/Executing deferred task\./, 'the custom handler ran (worker log on the terminal)');

is(DQTest::stop_pid($pid, 'TERM', 40) >> 8, 143, 'SIGTERM: run.sh exits 143');
my $up = sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_[0], Timeout => 1);
    return $s ? 1 : 0;
};
ok(DQTest::wait_for(sub { !$up->($port) }, 5), 'nginx stopped');
ok(DQTest::wait_for(sub { !$up->($redis_port) }, 5), 'Redis stopped');
like(slurp($out), qr/master exits/, 'the worker stopped');
log_clean_ok("$dir/run/logs/error.log", 'nginx error log');
done_testing;
