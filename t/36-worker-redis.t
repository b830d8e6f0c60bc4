# deferred-worker and its Redis connections: a worker started before Redis
# keeps retrying and connects when Redis comes (the connect error reaches
# the adapter's callback); SCRIPT FLUSH -> NOSCRIPT is answered by EVAL; a
# Redis restart is survived (reconnect, scripts loaded again).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $port = free_port();

# a worker with no Redis yet: a "Redis" object that only knows its address
my $fake = bless { port => $port }, 'DQTest::Redis';
my $log = "$dir/w.log";
my $pid = DQTest::spawn(name => 'worker', log => $log,
    cmd => [DQWorker::worker_bin(), '-r', "127.0.0.1:$port", '--master_process', 'off',
            '-l', DQWorker::example_lib()]);
my $w = { pid => $pid, log => $log, name => 'worker' };
DQTest::wait_for(sub { DQTest::slurp($log) =~ /cannot connect/ }, 10);
like(DQTest::slurp($log), qr/\[warn\].*redis \(commands\): cannot connect: .*refused/i,
     'refused connect reported');
sleep 0.5;
ok(DQWorker::alive($w), 'worker keeps running without Redis');

my $r = DQTest::Redis->start(dir => $dir, port => $port);
DQTest::wait_for(sub { DQTest::slurp($log) =~ /redis \(wake\): connected/
                       && DQTest::slurp($log) =~ /redis \(commands\): connected/ }, 15);
like(DQTest::slurp($log), qr/redis \(commands\): connected/, 'connected once Redis is up');
DQWorker::defer($r, 'record', "$dir/rec", 'first');
is(scalar DQWorker::wait_records("$dir/rec", 1, 10), 1, 'a task runs');

# scripts flushed behind the worker's back
is($r->cmd('SCRIPT', 'FLUSH'), 'OK', 'SCRIPT FLUSH');
DQWorker::defer($r, 'record', "$dir/rec", 'after-flush');
is(scalar DQWorker::wait_records("$dir/rec", 2, 10), 2, 'a task runs after SCRIPT FLUSH');
like(DQTest::slurp($log), qr/NOSCRIPT for "\w+", sending it as EVAL/, 'NOSCRIPT answered with EVAL');

# Redis restarts (same port, empty)
$r->restart;
DQTest::wait_for(sub { DQTest::slurp($log) =~ /connection lost/ }, 10);
like(DQTest::slurp($log), qr/\[warn\].*connection lost/, 'lost connection reported');
my $c = () = DQTest::slurp($log) =~ /redis \(commands\): connected/g;
DQTest::wait_for(sub { my $n = () = DQTest::slurp($log) =~ /redis \(commands\): connected/g;
                       $n >= 2 }, 15);
DQWorker::defer($r, 'record', "$dir/rec", 'after-restart');
is(scalar DQWorker::wait_records("$dir/rec", 3, 15), 3, 'a task runs after the restart');

# Redis goes away while a task runs (and comes back with its data, from
# its append-only file): the result is reported when Redis is back, so the
# task is neither lost nor run twice
my $pd = "$dir/aof";
mkdir $pd;
my $ra = DQTest::Redis->start(dir => $pd, args => [qw(--appendonly yes --appendfsync always)]);
my $wa = DQWorker::start_worker($ra, $dir, name => 'aof');
my $aid = DQWorker::defer($ra, 'sleep_ms', 1000, "$dir/aof.rec");
DQTest::wait_for(sub { DQWorker::stats($ra)->{running} == 1 }, 10);
$ra->stop;
is(scalar(DQWorker::wait_records("$dir/aof.rec", 1, 10)), 1,
   'the task finished while Redis was down');
ok(DQTest::wait_for(sub { DQWorker::log_text($wa) =~ /ack of 1 tasks not delivered/ }, 10),
   'the worker noticed the ack could not go out');
like(DQWorker::log_text($wa), qr/\[warn\].*ack of 1 tasks not delivered: .*sent again when Redis is back/,
     'the ack could not be delivered: kept');
$ra->_launch;
DQTest::wait_for(sub { DQWorker::stats($ra)->{done} == 1 }, 15);
is(DQWorker::stats($ra)->{done}, 1, 'acked once Redis is back');
is(DQWorker::stats($ra)->{running}, 0, 'no lease left');
is(scalar DQWorker::records("$dir/aof.rec"), 1, 'ran once');
unlike(DQWorker::log_text($wa), qr/lease lost/, 'the resent ack was accepted');
is(DQWorker::stop_worker($wa), 0, 'aof worker exits 0');
log_clean_ok($wa->{log}, 'aof worker log');

is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($log, 'worker log');

# over a unix socket
my $sock = "$dir/redis.sock";
my $ru = DQTest::Redis->start(dir => "$dir", args => ['--unixsocket', $sock]);
{
    no warnings 'once';
    *DQTest::RedisUnix::address = sub { "unix:$sock" };
    @DQTest::RedisUnix::ISA = ('DQTest::Redis');
}
bless $ru, 'DQTest::RedisUnix';
my $wu = DQWorker::start_worker($ru, $dir, name => 'unix');
DQWorker::defer($ru, 'record', "$dir/unix", 'unix');
is(scalar DQWorker::wait_records("$dir/unix", 1, 10), 1, 'a task runs over a unix socket');
is(DQWorker::stop_worker($wu), 0, 'unix worker exits 0');
log_clean_ok($wu->{log}, 'unix worker log');
done_testing();
