# deferred_redis over a unix socket, with a password and a database: tasks
# land in that database; a wrong password gives 503 (never a hang) and an
# error-log line saying AUTH failed.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
my $sock = "$dir/redis.sock";
my $r = DQTest::Redis->start(dir => $dir,
    args => ['--unixsocket', $sock, '--unixsocketperm', '700',
             '--requirepass', 'sesame']);
$r->cmd('AUTH', 'sesame');

my $n = DQNginx->start(redis => $r, vars => { SOCK => $sock }, http => q{
    deferred_timeout 2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /good {
            deferred_redis unix:%%SOCK%% password=sesame db=3;
            deferred_endpoint on;
        }
        location = /bad {
            deferred_redis unix:%%SOCK%% password=wrong;
            deferred_endpoint on;
        }
        location = /tcp {
            deferred_redis %%REDIS%% password=sesame db=3;
            deferred_endpoint on;
        }
    }
});

my $res = $n->request('POST', '/good', json => '{"func":"noop"}');
is($res->{status}, 201, 'unix socket + password + db: 201');
my ($id) = $res->{body} =~ /"id":"([^"]+)"/;
$r->cmd('SELECT', 3);
ok(defined $r->cmd('HGET', 'dq2:{default}:tasks', $id), 'stored in database 3');
$r->cmd('SELECT', 0);
is_deeply([DQNginx::redis_keys($r)], [], 'nothing in database 0');

$res = $n->request('POST', '/tcp', json => '{"func":"noop"}');
is($res->{status}, 201, 'TCP + password + db: 201');

$res = $n->request('POST', '/bad', json => '{"func":"noop"}');
is($res->{status}, 503, 'wrong password: 503');
is($res->{headers}{'retry-after'}, '1', '... with Retry-After');
like(slurp($n->error_log), qr/\[error\].*deferred: redis unix:\S+: AUTH failed/,
     'AUTH failure logged at error');

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
