# The module's Redis Cluster code under valgrind (Debian's nginx cannot
# load an ASan-built module): nginx in one process, given a dead seed
# first (refused), asks the map of the next one, opens a connection per
# master (201 on each), follows MOVED (a slot without keys given to
# another master) and ASK (a slot migrating: ASKING + the command, which
# the importing node answers TRYAGAIN: 503), loses a master (killed -9,
# its replica promoted: the map asked again) and exits cleanly. Valgrind
# must report no invalid access and no leak from the module or hiredis.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQCluster;
use Test::More;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
DQTest::need_tool(-x '/usr/bin/valgrind', 'valgrind');

my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir);
my @m = $c->masters;
my $first = ($c->nodes)[0];
# a replica that never synced cannot be promoted (its data is too old)
ok(DQTest::wait_for(sub {
    !grep { (eval { $_->cmd('INFO', 'replication') } // '') !~ /slave0:.*state=online/ } @m
}, 30, 0.2), 'every master has its replica online');
my %qof;
for my $i (1 .. 500) {
    $qof{ $c->owner("vq$i")->port } //= "vq$i";
    last if keys %qof == 3;
}
my @queues = map { $qof{ $_->port } } @m;
my $dead = DQTest::free_port();
my $vg = "$dir/valgrind.log";
mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", workers => 0,
    vars => { SEEDS => "cluster:127.0.0.1:$dead," . $first->address },
    wrapper => DQNginx::valgrind($vg),
    http => q{
    deferred_timeout 5s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /q { deferred_redis %%SEEDS%% connect_timeout=1s; deferred_endpoint on; }
    }
});
my $post = sub {
    $n->request('POST', '/q', json => qq({"func":"noop","queue":"$_[0]"}))->{status}
};

ok(DQTest::wait_for(sub { $post->($queues[0]) == 201 }, 30, 0.2),
   "through a refused seed, then one that answers: 201 ($queues[0])");
is($post->($_), 201, "201 for $_ (its own master)") for @queues;

# MOVED: a fresh queue's slot (no keys) given to another master
my ($fresh) = grep { $c->owner($_)->port == $m[0]->port } map { "vm$_" } 1 .. 500;
my $slot = $m[0]->cmd('CLUSTER', 'KEYSLOT', "{$fresh}");
my $toid = $m[1]->cmd('CLUSTER', 'MYID');
$_->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $toid) for $m[1], $m[0], $m[2];
ok(DQTest::wait_for(sub { $c->owner_port($fresh) == $m[1]->port }, 10, 0.1), "slot $slot moved");
is($post->($fresh), 201, 'MOVED followed: 201');

# ASK: a fresh slot migrating from m[1] to m[2]
my ($ask) = grep { $c->owner($_)->port == $m[1]->port && $_ ne $fresh } map { "va$_" } 1 .. 500;
my $aslot = $m[1]->cmd('CLUSTER', 'KEYSLOT', "{$ask}");
$m[2]->cmd('CLUSTER', 'SETSLOT', $aslot, 'IMPORTING', $m[1]->cmd('CLUSTER', 'MYID'));
$m[1]->cmd('CLUSTER', 'SETSLOT', $aslot, 'MIGRATING', $m[2]->cmd('CLUSTER', 'MYID'));
is($post->($ask), 503, 'ASK followed, TRYAGAIN from the importing node: 503');
$m[1]->cmd('CLUSTER', 'SETSLOT', $aslot, 'STABLE');
$m[2]->cmd('CLUSTER', 'SETSLOT', $aslot, 'STABLE');

# a master lost: m[2] (not the node the test asks for owners)
my ($victim) = grep { $_->port != $first->port } @m;
my ($q) = grep { $c->owner($_)->port == $victim->port } @queues;
kill 'KILL', $victim->pid;
ok(DQTest::wait_for(sub { my $p = $c->owner_port($q); $p && $p != $victim->port }, 30, 0.2),
   'a replica took over');
ok(DQTest::wait_for(sub { $post->($q) == 201 }, 30, 0.2),
   "after the master was killed: 201 for $q through the new one");

my $t_stop = time;
is($n->stop(timeout => 90), 0, 'nginx exited with status 0');
diag(sprintf('nginx under valgrind took %.1f s to exit', time - $t_stop));
DQNginx::valgrind_ok($vg);
my $el = DQTest::slurp($n->error_log);
like($el, qr/CLUSTER SLOTS on [\d.]+:\d+: .*refused/i, 'the refused seed logged');
like($el, qr/MOVED $slot: to/, 'MOVED logged');
like($el, qr/ASK $aslot: to/, 'ASK logged');
DQTest::log_clean_ok($n->error_log, 'nginx error log');
done_testing;
