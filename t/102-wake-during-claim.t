# A wake token that comes while the queue's claim is in flight (seen as a
# flake under load: a fresh worker whose wake connection came up first,
# a task deferred right after it started, nothing run for 20 s).
#
# The race: the child's claim runs in Redis and finds the queue empty; the
# enqueue then adds the task and pushes the wake token; the BLPOP (armed
# since the wake connection came up before the command connection) takes
# the token and its reply is read before the claim's. The claim's reply
# ("empty, nothing due") then set the queue's due time to "never", undoing
# the wake-up: the task waited for the idle look (here the lease, 20 s).
#
# Made deterministic with a proxy: the command connection's INFO answer is
# held 1 s (so the wake connection is up first and its BLPOP armed, as in
# the flake), then the first claim's reply is held 2 s; the task is
# deferred while it is held.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQProxy;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/c.rec";
my $mark = "$dir/claim-held";
my $conns = "$dir/conns";
my $proxy = DQProxy::start($r->port,
    request => sub {
        my ($buf, $st) = @_;
        if ($buf =~ /BLPOP/ && !$st->{wake}) {
            $st->{wake} = 1;
            open(my $f, '>>', $conns) or die; print $f "wake $st->{n}\n";
            close $f;
        }
        $st->{claim} = 1 if !$st->{wake} && $st->{up} && !$st->{held}
                            && $buf =~ /EVALSHA/ && $buf =~ /wdq/;
    },
    reply => sub {
        my ($buf, $st) = @_;
        if ($st->{n} == 1 && !$st->{info} && $buf =~ /redis_version/) {
            $st->{info} = $st->{up} = 1;
            return { delay => 1 };        # command connection up last
        }
        if ($st->{claim} && !$st->{held}) {
            $st->{held} = 1;              # the first claim's answer, late
            open(my $f, '>', $mark) or die; close $f;
            return { delay => 2 };
        }
        return 1;
    });
my $pport = $proxy->{port};

my $w = DQWorker::start_master($r, $dir, name => 'wdc', wait => 0,
                               conf => <<"EOF2");
redis 127.0.0.1:$pport;
library "$lib";
processes 1;
threads 1;
lease 20s;
queue wdq { retry_limit 5; min_backoff 100ms; }
EOF2
ok(DQTest::wait_for(sub { -e $mark }, 15, 0.005),
   'the first claim was sent and its answer is held');
my $t0 = time;
DQWorker::defer($r, '-q', 'wdq', 'ops.run', $rec);
my @R = DQWorker::wait_lines($rec, 'R', 1, 25);
my $took = time - $t0;
is(scalar(@R), 1, 'the task ran');
is(DQTest::slurp($conns), "wake 2\n",
   'the wake connection was the second one (the command one was held)');
like(DQTest::slurp($w->{log}),
     qr/redis \(wake\): connected.*redis \(commands\): connected/s,
     'the wake connection came up first');
diag(sprintf('ran %.1f s after the enqueue (claim answer held 2 s, '
             . 'idle look: 20 s)', $took));
cmp_ok($took, '<', 10, 'the wake-up was not undone by the empty claim');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
DQProxy::stop($proxy);
done_testing();
