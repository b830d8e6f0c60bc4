# Sentinel addresses that cannot give a primary (issue 15, item 2): every
# part (deferred-cli, the worker, nginx) answers with a clear error and a
# log line, and nothing crashes or writes:
#   down     no sentinel listens at the addresses given
#   unknown  a real sentinel that does not know the master name asked
#   stale    a real sentinel that names a replica (it watches one as its
#            "master": what a sentinel that has not yet seen a failover
#            answers): ROLE says slave, so nothing is sent there
# Then the worker, left running against a dead sentinel address, connects
# once a sentinel answers there (asked again on every reconnect). Last,
# nginx's open connection to the primary meets -READONLY (the primary
# demoted by hand, behind the sentinels' back): it drops the connection,
# asks again, refuses the (now stale) answer by ROLE, and stores again
# once the primary is a master again.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQNginx;
use DQSentinel;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
DQTest::need_tool(DQTest::in_path('redis-sentinel'), 'redis-sentinel');
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();

my $p = DQTest::Redis->start(dir => do { mkdir "$dir/p"; "$dir/p" });
my $q = DQTest::Redis->start(dir => do { mkdir "$dir/q"; "$dir/q" },
                             args => ['--replicaof', '127.0.0.1', $p->port]);
DQSentinel::link_up($q) or BAIL_OUT('replica not synced');
my $good = DQSentinel::spawn_sentinel("$dir/s1", 'dqm', $p->port, 1);
my $stale = DQSentinel::spawn_sentinel("$dir/s2", 'old', $q->port, 1);
my $dead_port = DQTest::free_port();

my %case = (
    down    => ["sentinel:dqm\@127.0.0.1:$dead_port", qr/sentinel 127\.0\.0\.1:$dead_port.*(refused|Connection)/],
    unknown => ["sentinel:nope\@127.0.0.1:$good->{port}", qr/does not know this master name/],
    stale   => ["sentinel:old\@127.0.0.1:$stale->{port}", qr/127\.0\.0\.1:@{[ $q->port ]}.*is not a master/],
);

for my $c (qw(down unknown stale)) {
    my ($addr, $why) = @{ $case{$c} };
    # deferred-cli
    my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $addr,
                                           'defer', '-q', 'f', 'ops.run', "$dir/$c.rec");
    isnt($rc, 0, "$c: deferred-cli defer fails");
    like($err, $why, "$c: deferred-cli says why") or diag($err);

    # the worker
    my $w = DQWorker::start_master(undef, $dir, name => "w-$c", wait => 0, conf => <<"EOF");
redis "$addr";
library "$lib";
processes 1;
queue f { retry_limit 3; }
EOF
    ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ $why }, 10),
       "$c: the worker logs why");
    like(DQTest::slurp($w->{log}), qr/no sentinel named a usable primary|is not a master/,
         "$c: ... and that it has no primary");
    sleep 0.5;
    ok(!defined DQTest::reaped($w->{pid}), "$c: the worker master is still running");
    ok(scalar(DQWorker::live_children($w)) == 1, "$c: its child is still running");
    unlike(DQTest::slurp($w->{log}), qr/redis \(commands\): connected/, "$c: the worker never used a connection");
    is(DQTest::stop_pid($w->{pid}), 0, "$c: the worker stops cleanly");
    DQTest::log_clean_ok($w->{log}, "$c: worker log");

    # nginx
    mkdir "$dir/n-$c";
    my $n = DQNginx->start(dir => "$dir/n-$c", vars => { A => $addr }, http => q{
        deferred_redis %%A%% connect_timeout=500ms;
        server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
    });
    my @res = map {
        $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"ops.run","queue":"f","args":["x"]}))
    } 1 .. 3;
    is(join(',', map { $_->{status} } @res), '503,503,503', "$c: nginx answers 503");
    ok(DQTest::wait_for(sub { DQTest::slurp($n->error_log) =~ $why }, 5), "$c: nginx logs why");
    $n->stop;
    DQTest::log_clean_ok($n->error_log, "$c: nginx error log");
}
is($p->cmd('DBSIZE'), 0, 'the primary holds no key');

# a worker asking a dead sentinel address connects once one answers there
{
    my $w = DQWorker::start_master(undef, $dir, name => 'w-late', wait => 0, conf => <<"EOF");
redis "sentinel:dqm\@127.0.0.1:$dead_port";
library "$lib";
processes 1;
queue f { retry_limit 3; }
EOF
    DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /no sentinel named/ }, 10);
    # a sentinel on the dead port, watching the real primary
    my $sd = "$dir/s3";
    mkdir $sd;
    open my $fh, '>', "$sd/sentinel.conf" or die;
    print {$fh} "port $dead_port\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir $sd\n"
              . "sentinel monitor dqm 127.0.0.1 " . $p->port . " 1\n";
    close $fh;
    DQTest::spawn(name => 'sentinel', log => "$sd/sentinel.log",
                  cmd => ['redis-sentinel', "$sd/sentinel.conf"]);
    ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /redis \(wake\): connected/ }, 20),
       'late: the worker connects once a sentinel answers');
    like(DQTest::slurp($w->{log}), qr/names 127\.0\.0\.1:@{[ $p->port ]} the primary "dqm"/,
         'late: to the primary it names');
    my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', "sentinel:dqm\@127.0.0.1:$dead_port",
                                           'defer', '-q', 'f', 'ops.run', "$dir/late.rec");
    is($rc, 0, 'late: deferred-cli enqueues through the sentinel') or diag($err);
    ok(DQTest::wait_for(sub { -s "$dir/late.rec" }, 10), 'late: and the worker runs it');
    is(DQTest::stop_pid($w->{pid}), 0, 'late: the worker stops cleanly');
    DQTest::log_clean_ok($w->{log}, 'late: worker log');
}
# nginx: -READONLY on an open connection
{
    mkdir "$dir/n-ro";
    my $n = DQNginx->start(dir => "$dir/n-ro", vars => { A => "sentinel:dqm\@127.0.0.1:$good->{port}" },
                           http => q{
        deferred_redis %%A%% connect_timeout=500ms;
        server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
    });
    my $post = sub {
        $n->request('POST', '/_ah/queue/deferred', json => '{"func":"ops.run","queue":"ro","args":["x"]}')->{status}
    };
    ok(DQTest::wait_for(sub { $post->() == 201 }, 10, 0.1), 'readonly: 201 through the sentinel');
    # demote the primary without the sentinels: its open connections stay
    $q->cmd('REPLICAOF', 'NO', 'ONE');
    $p->cmd('REPLICAOF', '127.0.0.1', $q->port);
    is($post->(), 503, 'readonly: the demoted primary refuses the enqueue: 503');
    ok(DQTest::wait_for(sub { DQTest::slurp($n->error_log) =~ /READONLY.*asking the sentinels again/ }, 5),
       'readonly: nginx drops the connection and asks the sentinels again');
    $post->();
    ok(DQTest::wait_for(sub { DQTest::slurp($n->error_log) =~ /127\.0\.0\.1:@{[ $p->port ]}, named by the sentinels for "dqm", is not a master/ }, 5),
       'readonly: their answer (still the demoted server) refused by ROLE');
    $p->cmd('REPLICAOF', 'NO', 'ONE');
    $q->cmd('REPLICAOF', '127.0.0.1', $p->port);
    ok(DQTest::wait_for(sub { $post->() == 201 }, 10, 0.1), 'readonly: 201 again once it is a master');
    $n->stop;
    DQTest::log_clean_ok($n->error_log, 'readonly: nginx error log');
}
done_testing();
