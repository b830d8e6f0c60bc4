# The log line of an ack a Redis Cluster node refused unrun while the
# child stops (review RFLO finding 2). A stopping child's commands get no
# TRYAGAIN retry in the cluster layer (dq_conn_stop_retries): an ack that
# meets TRYAGAIN then is "not run" at once, with the connection kept (no
# "lost", no map asked), so no "Redis is back" ever comes: only the redo
# back-off sends it again. The line used to say "sent again when Redis
# is back (or in N ms)"; it now says "sent again within N ms". The ack
# still lands once the slot settles, and the worker exits 0.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my $q = 'rq1';
my $conf = "log_level debug;\nredis cluster:" . $m[0]->address
    . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 1;\nconcurrency 1;\n"
    . "lease 30s;\ngrace 20s;\nqueue $q;\n";
my $w = DQWorker::start_master(undef, $dir, name => "w", wait => 0,
                               conf => $conf);
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /cluster map from/ }, 20);
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
my $id = DQWorker::defer($src, '-q', $q, 'ops.span', $rec, 1500);
DQWorker::wait_lines($rec, 'S', 1, 20);
# every key of the slot on the importing node, the slot MIGRATING: a
# command on the queue's keys meets TRYAGAIN
$c->migrating($slot, $src, $dst);
while (1) {
    my $keys = $src->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, 100);
    last unless @$keys;
    $src->cmd('MIGRATE', '127.0.0.1', $dst->port, '', 0, 5000, 'KEYS', @$keys);
}
kill 'TERM', $w->{pid};
my $refused = qr/ack of 1 tasks [^\n]*TRYAGAIN[^\n]*/;
ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ $refused }, 20),
   'the stopping child\'s ack meets TRYAGAIN and is kept');
my ($line) = DQTest::slurp($w->{log}) =~ /($refused)/;
diag("log: $line");
unlike($line, qr/when Redis is back/,
       'the line does not promise a "Redis is back" that never comes');
like($line, qr/sent again within \d+ ms/,
     'it says the back-off sends it again');
# the slot settles: the next resend lands
$_->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $c->id($dst)) for ($dst, @m);
my $t = time;
my $rc = DQTest::stop_pid($w->{pid}, 'TERM', 30);
diag(sprintf("exited %.1f s after the slot settled", time - $t));
is($rc, 0, 'the worker exits 0 once the ack landed');
is(DQWorker::stats($dst, $q)->{done}, 1, 'the task is done, acked once');
my $log = DQTest::slurp($w->{log});
unlike($log, qr/ack failed for task|lease lost/, 'no result dropped');
unlike($log, qr/AddressSanitizer|LeakSanitizer|runtime error|killed by signal/,
       'no sanitizer report');
done_testing();
