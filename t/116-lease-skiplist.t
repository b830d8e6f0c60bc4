# The lease set stays a skiplist while a queue is busy, whatever Redis did
# to the key (review R2, finding 1). Claim makes a lease set it creates a
# skiplist (a 65-byte pad member added and removed: DQ_LEASE_PAD), but
# Redis turns a small zset back into a listpack when it loads it: a
# RESTORE (what MIGRATE does to a reshard's target), a replica's full sync
# (then a failover), a restart from RDB. A busy queue's lease set never
# empties, so a listpack (scanned end to end by every ZADD, ZREM and
# lookup) would stay for good: claim re-pads a set it adds leases to when
# it finds it is not a skiplist.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

my $dir = tmpdir();
my $m = DQTest::Redis->start(dir => "$dir");
mkdir "$dir/rep";
my $lk = DQWorker::key('default', 'leases');
my @wargs = qw(--concurrency 40 --lease 60s);

# defer n tasks of ms on r, then wait for `want` leases
sub leased {
    my ($r, $n, $ms, $want, $what) = @_;
    DQWorker::defer($r, 'sleep_ms', $ms) for 1 .. $n;
    DQTest::wait_for(sub { ($r->cmd('ZCARD', $lk) // 0) == $want }, 15);
    is($r->cmd('ZCARD', $lk), $want, $what);
}

my $w = DQWorker::start_worker($m, $dir, name => 'w', args => \@wargs);
leased($m, 20, 15000, 20, '20 leases held on the master');
is($m->cmd('OBJECT', 'ENCODING', $lk), 'skiplist',
   'master: the claim that created the lease set made it a skiplist');

# a reshard: MIGRATE's target gets the key by RESTORE, a listpack
my $d = $m->cmd('DUMP', $lk);
$m->cmd('DEL', $lk);
$m->cmd('RESTORE', $lk, 0, $d);
is($m->cmd('OBJECT', 'ENCODING', $lk), 'listpack',
   'RESTOREd (MIGRATE) lease set: a listpack');
leased($m, 2, 15000, 22, 'restored set: 2 more leases');
is($m->cmd('OBJECT', 'ENCODING', $lk), 'skiplist',
   'the next claim made the restored lease set a skiplist again');

# a replica after a full sync, then promoted (failover)
my $rp = DQTest::Redis->start(dir => "$dir/rep",
                              args => ['--replicaof', '127.0.0.1', $m->port]);
DQTest::wait_for(sub { ($rp->cmd('INFO', 'replication') // '')
                       =~ /master_link_status:up/ }, 20);
DQTest::wait_for(sub { ($rp->cmd('ZCARD', $lk) // 0) == 22 }, 15);
is($rp->cmd('ZCARD', $lk), 22, 'replica: the 22 leases');
is($rp->cmd('OBJECT', 'ENCODING', $lk), 'listpack',
   'replica after a full sync: a listpack');
DQWorker::stop_worker($w, 'KILL');
$rp->cmd('REPLICAOF', 'NO', 'ONE');
my $w2 = DQWorker::start_worker($rp, $dir, name => 'w2', args => \@wargs);
leased($rp, 5, 3000, 27, 'promoted replica: 5 more leases');
is($rp->cmd('OBJECT', 'ENCODING', $lk), 'skiplist',
   'promoted replica: the next claim made the lease set a skiplist');

# nothing lost: the 5 new tasks finish on the promoted replica
DQTest::wait_for(sub { (DQWorker::stats($rp)->{done} // 0) >= 5 }, 20);
cmp_ok(DQWorker::stats($rp)->{done} // 0, '>=', 5,
       'the promoted replica ran the new tasks');
DQWorker::stop_worker($w2);
$rp->stop;
$m->stop;
done_testing();
