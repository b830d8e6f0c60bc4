# A child whose loop stops running is replaced (review of issue 14, F6):
# children stamp a monotonic time in the table they share with the master
# from their live timer; a child whose stamp is 20 s old (here: SIGSTOP)
# is SIGKILLed with a log line saying why, its tasks handed back, and a
# new child started. (Before: the master went on pinging the systemd
# watchdog and the stopped child held its slot for ever.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $r = DQTest::Redis->start;
my $dir = tmpdir();
my $w = DQWorker::start_worker($r, $dir, name => 'w', master => 1,
                               args => ['-p', '1', '-q', 'ops']);
my ($pid) = slurp($w->{log}) =~ /started child 1 \(pid (\d+)\)/;
ok($pid, "child 1 runs (pid @{[ $pid // '?' ]})") or diag slurp($w->{log});
kill 'STOP', $pid;
ok(wait_for(sub { slurp($w->{log}) =~ /child 1 \(pid $pid\): its loop has not run for \d+ ms: SIGKILL/ }, 40),
   'the stopped child is found stalled and killed, with a log line')
    or diag slurp($w->{log});
ok(wait_for(sub { slurp($w->{log}) =~ /started child 2 \(pid \d+\)/ }, 10),
   'a new child is started');
ok(wait_for(sub { my ($rc, $out) = DQWorker::cli($r, 'workers'); $out =~ /\bops\b/ && $out !~ /\s$pid\s/ }, 15),
   'the new child is live in Redis');
is(DQWorker::stop_worker($w) >> 8, 0, 'the worker stops cleanly');
done_testing;
