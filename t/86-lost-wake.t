# A BLPOP whose reply is lost after Redis popped the wake token (review
# F7): the token is gone, so nothing would wake the child before its idle
# look (here the lease, 20 s). The child must look at every queue when the
# wake connection is back.
#
# How the reply is lost: the worker talks to Redis through a small proxy
# (in this test) that, the first time Redis answers a BLPOP with a token,
# drops that reply and closes the connection, as a network fault would.
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
my $dropped = 0;
my $proxy = DQProxy::start($r->port,
    request => sub { $_[1]{wake} = 1 if $_[0] =~ /BLPOP/ },
    reply   => sub {
        my ($buf, $st) = @_;
        return 1 if $dropped || !$st->{wake} || $buf !~ /^\*2\r\n/;
        $dropped = 1;                   # the token's reply: lost
        return 0;
    });
my $pport = $proxy->{port};

my $w = DQWorker::start_master($r, $dir, name => 'lw', wait => 1, conf => <<"EOF2");
redis 127.0.0.1:$pport;
library "$lib";
processes 1;
threads 1;
lease 20s;
queue c { retry_limit 5; min_backoff 100ms; }
EOF2
sleep 1;                      # idle: its claim found nothing, BLPOP armed
my $t0 = time;
DQWorker::defer($r, '-q', 'c', 'ops.run', $rec);
my @R = DQWorker::wait_lines($rec, 'R', 1, 25);
my $took = time - $t0;
is(scalar(@R), 1, 'the task ran');
like(DQTest::slurp($w->{log}), qr/redis \(wake\): connected.*redis \(wake\): connected/s,
     'the wake connection was dropped with the reply and came back');
diag(sprintf('ran %.1f s after the enqueue (idle look: 20 s)', $took));
cmp_ok($took, '<', 10, 'not left to the idle look');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
DQProxy::stop($proxy);
done_testing();
