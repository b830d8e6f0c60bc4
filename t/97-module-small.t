# The smaller faults of issue 11, item 8: an empty url= from a variable
# counts as absent; $deferred_task_id and $deferred_task_eta line up when
# some names are taken; a countdown from a variable has an upper bound; a
# msgpack key cannot put a line break into the error log; one location's
# short deferred_timeout does not drop the connection the others' requests
# wait on; while Redis is down each request logs at info, not error.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir, args => ['--enable-debug-command', 'yes']);
my $n = DQNginx->start(redis => $r, workers => 0, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /url {
            deferred_enqueue noop queue=u url=$arg_u;
            deferred_return 200 "$deferred_task_id\n";
        }
        location = /two {
            deferred_enqueue noop queue=t name=$arg_a;
            deferred_enqueue noop queue=t name=$arg_b;
            add_header X-Ids $deferred_task_id always;
            add_header X-Etas $deferred_task_eta always;
            deferred_return 200 "ok\n";
        }
        location = /cd {
            deferred_enqueue noop queue=c countdown=$arg_c;
            deferred_return 200 "ok\n";
        }
        location = /slow {
            deferred_timeout 100ms;
            deferred_enqueue noop queue=slow;
            deferred_return 200 "ok\n";
        }
        location = /normal {
            deferred_timeout 10s;
            deferred_enqueue noop queue=normal;
            deferred_return 200 "ok\n";
        }
    }
});

my $res = $n->request('GET', '/url');
is($res->{status}, 200, 'url= from an empty variable: absent, 200');
is(DQNginx::stored($r, 'u'), 1, 'stored');

$n->request('GET', '/two?a=x1&b=x2');
$res = $n->request('GET', '/two?a=x1&b=x3');
is($res->{status}, 409, 'one name taken: 409');
my @ids = split /,/, $res->{headers}{'x-ids'} // '', -1;
my @etas = split /,/, $res->{headers}{'x-etas'} // '', -1;
is(scalar @ids, 2, 'two id entries') or diag $res->{headers}{'x-ids'};
is(scalar @etas, 2, 'two eta entries');
ok($ids[0] eq '' && $etas[0] eq '', 'the refused task: both entries empty');
ok($ids[1] ne '' && $etas[1] =~ /^\d+$/, 'the stored task: both set');

is($n->request('GET', '/cd?c=315360000')->{status}, 200, 'countdown of ten years: 200');
is($n->request('GET', '/cd?c=99999999999')->{status}, 400, 'countdown over ten years: 400');

# a msgpack key with a line break: the log line stays one line
$res = $n->request('POST', '/_ah/queue/deferred',
                   msgpack => DQNginx::mp({ func => 'f', "evil\nFAKE LOG LINE" => 1 }));
is($res->{status}, 400, 'unknown msgpack key: 400');
my $log = DQTest::slurp($n->error_log);
unlike($log, qr/^FAKE LOG LINE/m, 'no injected log line');
like($log, qr/evil\?FAKE LOG LINE/, 'the control character is shown as ?');

# /slow times out while Redis sleeps; /normal, on the same connection, is
# answered once Redis wakes (before the fix: 503 when /slow timed out)
my $normal = DQNginx::build_request('GET', '/normal');
my $slow = DQNginx::build_request('GET', '/slow');
my $sleeper = fork // die;
if (!$sleeper) { delete $r->{sock}; $r->cmd('DEBUG', 'SLEEP', '1'); POSIX::_exit(0); }
sleep 0.2;
my @res = $n->many([$normal, $slow], conns => 2, timeout => 15);
waitpid($sleeper, 0);
is($res[1]{status}, 503, '/slow (100ms): 503 while Redis sleeps');
is($res[0]{status}, 200, '/normal (10s) on the same connection: stored after the sleep');
is(DQNginx::stored($r, 'normal'), 1, 'stored');
like(DQTest::slurp($n->error_log), qr/slow, the connection is kept/, 'the connection was kept');

# Redis down: per request at info; the outage once at error
my $mark = length DQTest::slurp($n->error_log);
$r->stop;
$n->request('GET', '/url') for 1 .. 5;
$log = substr(DQTest::slurp($n->error_log), $mark);
my @errors = $log =~ /^(.*\[error\].*deferred.*)$/mg;
my $errors = @errors;
ok($errors <= 2, "5 requests while Redis is down: $errors [error] lines (the outage), not one per request");
like($log, qr/\[info\].*503 RedisUnavailable/, 'each 503 logged at info');

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
