# A v2 worker alone drains what contract v1 left: v1 queues written and
# worked by the v1 scripts (t/data/lua-v1: waiting, delayed, named, keyed
# tasks, a dead v1 worker's expired lease) on two served queues, then ONLY
# a v2 worker starts (no deferred-cli migrate): its child migrates every
# served queue at start (worker/migrate.c), logs "queue q: moved N tasks
# from contract v1", and every task runs, once; no v1 key is left.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQScripts;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $s = DQScripts->new($r);
my $rec = "$dir/rec";

sub enq1 {
    my ($q, $id, %o) = @_;
    my $rep = $s->v1($q, 'enqueue', 60000, 1, $id,
                     DQScripts::env1($id, $q, $o{name}, 'record', [$rec, $id]),
                     $o{name} // '', -1, $o{countdown} // -1,
                     $o{keyed} ? 60000 : 0);
    is($rep->[1], 0, "v1: $q/$id enqueued");
}

enq1('wa', $_) for qw(w1 w2 w3);
enq1('wa', 'n1', name => 'nm1');
enq1('wa', 'k1', keyed => 1);
enq1('wa', 'd1', countdown => 1500);
enq1('wa', 'x1');
enq1('wb', $_) for qw(b1 b2 b3);
# a v1 worker leases w1 for 300 ms and dies: the migration takes the
# expired lease back (a failed attempt)
my $rep = $s->v1('wa', 'claim', 1, 300, 0, 0, 1, 0, 'dead-v1', 0, 0, 0);
is($rep->[3], 'w1', 'v1: a v1 worker that then dies leased w1 for 300 ms');
sleep 0.4;
is($r->cmd('ZCARD', 'dq:{wa}:eta') + $r->cmd('ZCARD', 'dq:{wa}:leases'), 7,
   'v1 holds 7 tasks of wa');

my $w = DQWorker::start_worker($r, $dir, args => ['-q', 'wa', '-q', 'wb']);
my @r = DQWorker::wait_records($rec, 10, 20);
my %ran;
$ran{ $_->{tag} }++ for @r;
is_deeply([sort keys %ran], [qw(b1 b2 b3 d1 k1 n1 w1 w2 w3 x1)],
          'every v1 task of both served queues ran on the v2 worker')
    or diag explain \%ran;
ok(!grep({ $_ != 1 } values %ran), 'each once');
my %by = map { $_->{tag} => $_ } @r;
is($by{w1}{retries}, 1, "w1: the dead v1 worker's expired lease counted");
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /queue wb: moved 3 tasks from contract v1/ }, 5),
   'logged: queue wb: moved 3 tasks from contract v1');
like(DQWorker::log_text($w), qr/queue wa: moved 7 tasks from contract v1/,
     'logged: queue wa: moved 7 tasks from contract v1');
DQTest::wait_for(sub { @{ $r->cmd('KEYS', 'dq:{w*}:*') } == 0 }, 5);
is_deeply($r->cmd('KEYS', 'dq:{w*}:*'), [], 'no v1 key of either queue is left');
sleep 0.3;
is(scalar(DQWorker::records($rec)), 10, 'nothing ran twice');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
DQTest::log_clean_ok($w->{log});
done_testing();
