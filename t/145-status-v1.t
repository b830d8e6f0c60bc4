# The module's status and metrics show what contract v1 still holds: a
# queue with v1 data (written by the v1 scripts, t/data/lua-v1) reports
# "v1_left" (JSON) and deferred_v1_tasks (Prometheus) until the migration
# moved it; 0 for a queue without v1 data.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use DQScripts;
use JSON::PP;
use Test::More;

my $r = DQTest::Redis->start;
my $n = DQNginx->start_status($r);
my $s = DQScripts->new($r);
for my $id (qw(a b c)) {
    $s->v1('old', 'enqueue', 60000, 1, $id, DQScripts::env1($id, 'old'), '',
           -1, -1, 0);
}
$s->v1('old', 'claim', 1, 600000, 0, 0, 1, 0, 'v1w', 0, 0, 0);   # a lives
$r->cmd('SADD', 'dq:queues', 'old', 'new');
my ($rc) = DQWorker::cli($r, qw(defer -q new noop));
is($rc, 0, 'a v2 task on queue new');

sub queues {
    my $res = $n->request('GET', '/deferred/status');
    my $j = eval { decode_json($res->{body}) } or return {};
    return { map { $_->{queue} => $_ } @{ $j->{queues} || [] } };
}
my $q = queues();
is($q->{old}{v1_left}, 3, 'status: queue old has 3 tasks in contract v1');
is($q->{new}{v1_left}, 0, 'status: queue new none');
my $m = $n->request('GET', '/deferred/metrics')->{body};
like($m, qr/^deferred_v1_tasks\{queue="old"\} 3$/m, 'metrics: deferred_v1_tasks 3 for old');
like($m, qr/^deferred_v1_tasks\{queue="new"\} 0$/m, 'metrics: 0 for new');

($rc) = DQWorker::cli($r, 'migrate', 'old');
is($rc, 0, 'deferred-cli migrate old');
is(queues()->{old}{v1_left}, 1, 'status: 1 left (the v1 worker still runs it)');
done_testing();
