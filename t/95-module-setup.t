# A Redis connection is used only once its setup answered OK (issue 11,
# item 6) and the server is one ngx_deferred can trust (issue 10, items 8
# and 9): a wrong db= or a password sent to a Redis without one stores
# nothing anywhere (before the fix the pipelined enqueue ran unauthenticated
# or in database 0 while the client got 503); a Redis older than 7.0 is
# refused with a clear error line and never gets an enqueue; an evicting
# maxmemory-policy is warned about; "replicas=" answers only after WAIT saw
# the replicas (503 when they are missing: stored, not replicated).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir, args => ['--databases', '4',
                                                   '--maxmemory-policy', 'allkeys-lru']);
mkdir "$dir/rep";
my $rep = DQTest::Redis->start(dir => "$dir/rep",
                               args => ['--replicaof', '127.0.0.1', $r->port]);

# a fake "Redis 6.0.16": answers the setup, records any other command
my $fport = DQTest::free_port();
my $fake = fork // die;
if (!$fake) {
    my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$fport", Listen => 16,
                                  ReuseAddr => 1) or die "fake: $@";
    $SIG{TERM} = sub { exit 0 };
    while (my $c = $l->accept) {
        my $buf = '';
        while (sysread($c, my $b, 65536)) {
            $buf .= $b;
            while ($buf =~ s/^\*(\d+)\r\n//) {
                my @a;
                for (1 .. $1) {
                    $buf =~ s/^\$(\d+)\r\n// or last;
                    push @a, substr($buf, 0, $1, '');
                    substr($buf, 0, 2, '');
                }
                my $cmd = uc($a[0] // '');
                if ($cmd eq 'INFO') {
                    my $t = "# Server\r\nredis_version:6.0.16\r\n";
                    print {$c} '$' . length($t) . "\r\n$t\r\n";
                } elsif ($cmd eq 'SCRIPT') {
                    print {$c} "\$40\r\n" . ('0' x 40) . "\r\n";
                } elsif ($cmd eq 'AUTH' || $cmd eq 'SELECT') {
                    print {$c} "+OK\r\n";
                } else {
                    open my $fh, '>>', "$dir/fake.cmds"; print $fh "$cmd\n"; close $fh;
                    print {$c} "-ERR fake\r\n";
                }
            }
        }
    }
    exit 0;
}
DQTest::wait_port($fport);

my $n = DQNginx->start(redis => $r, vars => { FAKE => $fport, REP => $r->port }, http => q{
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /baddb { deferred_endpoint on; deferred_redis %%REDIS%% db=9; }
        location = /badpw { deferred_endpoint on;
                            deferred_redis %%REDIS%% password=nosuchpassword; }
        location = /old { deferred_endpoint on; deferred_redis 127.0.0.1:%%FAKE%%; }
        location = /good { deferred_endpoint on; deferred_redis %%REDIS%% db=2; }
        location = /rep1 { deferred_endpoint on;
                           deferred_redis %%REDIS%% replicas=1 replicas_timeout=2s; }
        location = /rep2 { deferred_endpoint on;
                           deferred_redis %%REDIS%% db=1 replicas=2 replicas_timeout=300ms; }
    }
});

my $keys = sub {
    my $n = 0;
    for my $db (0 .. 3) { $r->cmd('SELECT', $db); $n += $r->cmd('DBSIZE'); }
    $r->cmd('SELECT', 0);
    return $n;
};

for my $try (1 .. 3) {
    my $res = $n->request('POST', '/baddb', json => '{"func":"noop","name":"db-' . $try . '"}');
    is($res->{status}, 503, "db=9 on a Redis with 4 databases: 503 (try $try)");
    $res = $n->request('POST', '/badpw', json => '{"func":"noop","name":"pw-' . $try . '"}');
    is($res->{status}, 503, "password against a Redis without one: 503 (try $try)");
    sleep 0.2;
}
is($keys->(), 0, 'nothing stored in any database: the enqueues never ran');
my $log = DQTest::slurp($n->error_log);
like($log, qr/\[error\].*SELECT failed: .*the connection is not used/, 'SELECT failure logged');
like($log, qr/\[error\].*AUTH failed: .*the connection is not used/, 'AUTH failure logged');

my $res = $n->request('POST', '/old', json => '{"func":"noop"}');
is($res->{status}, 503, 'Redis 6.0.16: 503');
sleep 0.3;
$log = DQTest::slurp($n->error_log);
like($log, qr/\[error\].*Redis 6\.0\.16 is too old: 7\.0\.0 or later is needed.*the connection is not used/,
     'old Redis refused with a clear error line');
ok(!-e "$dir/fake.cmds", 'the old Redis never got an enqueue')
    or diag DQTest::slurp("$dir/fake.cmds");

like($log, qr/\[warn\].*maxmemory-policy allkeys-lru may evict keys/,
     'an evicting maxmemory-policy is warned about');

$res = $n->request('POST', '/good', json => '{"func":"noop"}');
is($res->{status}, 201, 'a good setup (db=2): 201');
$r->cmd('SELECT', 2);
is($r->cmd('HLEN', 'dq2:{default}:tasks'), 1, 'stored in database 2');
$r->cmd('SELECT', 0);

# WAIT: one replica attached, two asked for
my $end = time + 10;
sleep 0.1 until time > $end
    || (($r->cmd('INFO', 'replication') // '') =~ /connected_slaves:1/
        && ($rep->cmd('INFO', 'replication') // '') =~ /master_link_status:up/);
$res = $n->request('POST', '/rep1', json => '{"func":"noop","queue":"r1"}');
is($res->{status}, 201, 'replicas=1 with one replica: 201');
is($rep->cmd('HLEN', 'dq2:{r1}:tasks'), 1, 'the replica has the task when the 201 comes');
$res = $n->request('POST', '/rep2', json => '{"func":"noop","queue":"r2"}');
is($res->{status}, 503, 'replicas=2 with one replica: 503 after replicas_timeout');
like($res->{body}, qr/not replicated in time/, 'says why');
like(DQTest::slurp($n->error_log), qr/\[error\].*stored but not acknowledged by 2 replicas within 300 ms/,
     'logged');

$n->stop;
kill 'TERM', $fake; waitpid($fake, 0);
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
