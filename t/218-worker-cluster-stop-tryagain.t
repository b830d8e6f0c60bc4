# A graceful stop while a queue's slot migrates (review RLO finding 1,
# from RLO's t/rlo-stop-mid-retry.t): the idle children's claims meet
# TRYAGAIN (slot MIGRATING, every key on the importing node). A claim is
# not tried again inside the cluster layer (it has its own "again in 1 s"
# and leases nothing when refused), and a stopping child sends at once
# what waits out a TRYAGAIN back-off: SIGTERM ends the worker in well
# under a second, not after the ~6.5 s of ten TRYAGAIN tries. The bound
# below is a generous liveness bound for a loaded machine (the bug: 7 s).
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
    . ";\nlibrary \"$lib\";\nprocesses 2;\nlease 2s;\nqueue $q;\n";
my $w = DQWorker::start_master(undef, $dir, name => "w", wait => 0,
                               conf => $conf);
DQTest::wait_for(sub { (() = DQTest::slurp($w->{log}) =~ /cluster map from/g) >= 4 }, 20);
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
DQWorker::defer($src, '-q', $q, 'ops.span', $rec, 10);
DQWorker::wait_lines($rec, 'E', 1, 20);
$c->freeze($slot, $src, $dst);
my $maps = () = DQTest::slurp($w->{log}) =~ /cluster map from/g;
# an idle child's claim is due within 1 s (idle look, wake): refused as
# not run (the old code said so only after its ten tries, ~6.5 s)
ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /claim on queue $q failed: not run: \S+ answered: TRYAGAIN/ }, 40),
   'a claim meeting TRYAGAIN is refused as not run');
# then stop while claims (and other commands, which do wait out a
# back-off) meet TRYAGAIN
my $before = () = DQTest::slurp($w->{log}) =~ /TRYAGAIN/g;
ok(DQTest::wait_for(sub { (() = DQTest::slurp($w->{log}) =~ /TRYAGAIN/g) >= $before + 2 }, 40),
   'commands go on meeting TRYAGAIN');
sleep 0.3;
my $t = time;
my $rc = DQTest::stop_pid($w->{pid}, 'TERM', 20);
my $took = time - $t;
diag(sprintf("stopped in %.2f s", $took));
is($rc, 0, 'SIGTERM mid-migration: exit 0');
cmp_ok($took, '<', 3, 'the stop does not wait out TRYAGAIN back-offs');
my $log = DQTest::slurp($w->{log});
# no map refresh, no "lost" for a claim's TRYAGAIN (t/180 counts CLUSTER
# SLOTS too)
is(scalar(() = $log =~ /cluster map from/g), $maps,
   'no map asked again for a refused claim');
unlike($log, qr/AddressSanitizer|LeakSanitizer|runtime error|exited with status [1-9]|killed by signal/,
       'no sanitizer report, children exit 0')
    or diag $log;
diag($_) for grep { /stopp|exit|TRYAGAIN/ } split /\n/, $log;
done_testing();
