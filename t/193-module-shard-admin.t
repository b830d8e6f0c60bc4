# Review R3 finding 3 (regression test; R3-shard-admin.t): deferred_admin
# on a sharded queue: pause reaches every shard (nothing runs), retry of a
# dead task in shard >= 1 finds it. Failed on main at 549a658 (shard 0
# only); passes since wip/S.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQNginx;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
sub cli { DQWorker::cli($r, @_) }
cli('queue', 'adm', '--shards', '4');
my $n = DQNginx->start(redis => $r, workers => 1, http => q{
    deferred_redis %%REDIS%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on;
        location = /deferred/status { deferred_status; }
        location = /deferred/admin  { deferred_admin; } }
});
sub admin { my ($q) = @_;
    my $res = $n->request('POST', "/deferred/admin?$q", headers => { 'X-Deferred-Admin' => '1' }, body => '');
    return $res }
# the first request may come while the worker process's Redis connection
# is in its setup: it waits for it (t/150), no need to wait here
my $res = admin('action=pause&queue=adm');
diag("pause: $res->{status} $res->{body}");
my @p = map { $r->cmd('HGET', $_ ? "dq2:{adm#$_}:conf" : DQTest::dq_key('adm', 'conf'), 'paused') // 0 } 0 .. 3;
is("@p", '1 1 1 1', "admin pause: every shard paused (got @p)");
my $st = JSON::PP::decode_json($n->request('GET', '/deferred/status')->{body});
my ($q) = grep { $_->{queue} eq 'adm' } @{ $st->{queues} };
diag("status says paused: " . ($q && $q->{paused} ? 'true' : 'false'));
my $rec = "$dir/adm.rec";
cli('defer', '-q', 'adm', '--count', '40', 'record', $rec);
my $w = DQWorker::start_worker($r, $dir, name => 'w1', args => ['-q', 'adm']);
sleep 4;
my @R = DQWorker::records($rec);
is(scalar(@R), 0, 'queue paused through deferred_admin: nothing runs (ran ' . scalar(@R) . ' of 40)');
{ my $st2 = JSON::PP::decode_json($n->request('GET', '/deferred/status')->{body});
  my ($q2) = grep { $_->{queue} eq 'adm' } @{ $st2->{queues} };
  diag('status while 30 of 40 ran: paused ' . ($q2->{paused} ? 'true' : 'false') . ', done ' . ($q2->{counters}{done} // '?')); }
DQWorker::stop_worker($w);

# retry of a dead task in shard >= 1 through deferred_admin
cli('queue', 'dd', '--shards', '3');
my $f = "$dir/fail.rec";
cli('defer', '-q', 'dd', '--retry-limit', '0', '--count', '6', 'always_fail', $f);
my $w2 = DQWorker::start_worker($r, $dir, name => 'w2', args => ['-q', 'dd']);
DQTest::wait_for(sub { (DQWorker::stats($r, 'dd')->{dead} // 0) == 6 }, 30);
DQWorker::stop_worker($w2);
my ($far) = grep { $r->cmd('ZSCORE', "dq2:{dd#2}:dead", $_) } keys %{ DQWorker::dead($r, 'dd') };
my $rt = admin("action=retry&queue=dd&id=$far");
diag("admin retry of $far (dead in shard 2): $rt->{status} $rt->{body}");
ok(!defined $r->cmd('ZSCORE', "dq2:{dd#2}:dead", $far), 'admin retry moved it out of dead');
$n->stop;
done_testing;
