# deferred-worker and bad tasks: a corrupt envelope and a missing envelope
# placed in Redis by hand go to the dead set with their reason and a log
# line; a function this worker cannot run (unknown here, its library failed
# to load) is never buried: released for another worker without charge,
# logged once (t/85-unrunnable.t has the whole story); the worker keeps
# running and the other tasks run.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);

# by hand, before the worker starts: garbage bytes, and an id with no
# envelope at all, both due now
$r->cmd('HSET', 'dq2:{default}:tasks', 'corrupt-1', "\xc1\x93\x01garbage");
$r->cmd('ZADD', 'dq2:{default}:eta', 0, 'corrupt-1');
$r->cmd('ZADD', 'dq2:{default}:eta', 0, 'missing-1');
my $good0 = DQWorker::defer($r, 'record', "$dir/good", 'before');

my $missing_lib = "$dir/libnot-there.so";
my $w = DQWorker::start_worker($r, $dir,
    libs => [ DQWorker::example_lib(), $missing_lib ]);
like(DQWorker::log_text($w), qr/\[error\].*task library "\Q$missing_lib\E" not loaded: .*No such file/,
     'the missing library is logged');

my $unknown = DQWorker::defer($r, 'no.such.function', 1, 2);
my $good1 = DQWorker::defer($r, 'record', "$dir/good", 'after');

DQTest::wait_for(sub { keys %{ DQWorker::dead($r) } >= 2 }, 10);
DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{default}:stats', 'unrunnable') // 0) >= 1 }, 10);
my $dead = DQWorker::dead($r);
like($dead->{'corrupt-1'} // '', qr/^undecodable envelope: /, 'corrupt envelope: dead, undecodable');
like($dead->{'missing-1'} // '', qr/^missing envelope/, 'missing envelope: dead');
ok(!exists $dead->{$unknown}, 'unknown function: not dead');
ok(defined $r->cmd('ZSCORE', 'dq2:{default}:eta', $unknown),
   'unknown function: released, waiting for a worker that has it');
unlike($r->cmd('HGET', 'dq2:{default}:tasks', $unknown) // 'S', qr/^S/,
     'no attempt charged, no run counted, no first run kept (no state prefix)');
like(DQWorker::log_text($w), qr/\[warn\].*function "no\.such\.function" \(queue default\) is not registered here \(task libraries that failed to load: \Q$missing_lib\E: /,
     'logged, naming the library that failed to load');
diag("$_: $dead->{$_}") for sort keys %$dead;

my @rec = DQWorker::wait_records("$dir/good", 2, 10);
is_deeply([ sort map { $_->{id} } @rec ], [ sort $good0, $good1 ], 'the good tasks ran');

my $log = DQWorker::log_text($w);
for my $id ('corrupt-1', 'missing-1') {
    like($log, qr/\[error\].*task dead: queue=default id=\Q$id\E .*reason="/,
         "a log line for $id");
}

ok(DQWorker::alive($w), 'worker alive');
my $good2 = DQWorker::defer($r, 'record', "$dir/good", 'later');
@rec = DQWorker::wait_records("$dir/good", 3, 10);
is(scalar @rec, 3, 'and still runs tasks');

# a dead task can be re-run
my ($rc) = DQWorker::cli($r, 'requeue', 'default', 'corrupt-1');
is($rc, 0, 'requeue of a dead task accepted');
my $deaths = sub { scalar grep { /task dead: queue=default id=corrupt-1 / }
                    split /\n/, DQWorker::log_text($w) };
DQTest::wait_for(sub { $deaths->() >= 2 }, 10);
is($deaths->(), 2, 'it ran again (and died again: the envelope is still corrupt)');
is(scalar(grep { /is not registered here/ } split /\n/, DQWorker::log_text($w)), 1,
   'the unknown function was logged once');

# bulk requeue by error text: only the undecodable one runs again
my ($rc2, $out2) = DQWorker::cli($r, 'requeue-all', 'default', 'undecodable');
is($rc2, 0, 'requeue-all by error text accepted');
like($out2, qr/^1 requeued, 0 left dead/, 'one dead task matched');
DQTest::wait_for(sub { $deaths->() >= 3 }, 10);
is($deaths->(), 3, 'it ran (and died) again');
ok(exists DQWorker::dead($r)->{'missing-1'}, 'the other dead task was left alone');

is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');

# ---- loader: a library without the table, and the same functions twice
# (a copy of the library at another path): the first registration wins
my $copy = "$dir/libcopy.so";
system('cp', DQWorker::example_lib(), $copy) == 0 or die "cp: $?";
my $w2 = DQWorker::start_worker($r, $dir, name => 'loader',
    libs => [ DQWorker::example_lib(), 'libm.so.6', $copy ]);
my $l = DQWorker::log_text($w2);
like($l, qr/\[error\].*task library "libm\.so\.6" not loaded: no "dq_library" symbol/,
     'a library without dq_library is refused');
like($l, qr/\[warn\].*function "record" of "example-tasks" ignored: already registered by "example-tasks"/,
     'duplicate function names are logged');
like($l, qr/\[warn\].*handler for "\/example\/handler" ignored: already registered/,
     'duplicate handlers are logged');
DQWorker::defer($r, 'record', "$dir/good", 'dup');
is(scalar DQWorker::wait_records("$dir/good", 4, 10), 4, 'tasks run with the first registration');
is(DQWorker::stop_worker($w2), 0, 'worker exits 0');
log_clean_ok($w2->{log}, 'loader worker log');
done_testing();
