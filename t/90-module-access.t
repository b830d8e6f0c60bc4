# deferred_enqueue stores a task only for a request that nginx's access and
# limit phases let through (issue 11, item 1): allow/deny, auth_basic,
# auth_request and limit_req in front of deferred_enqueue store nothing for
# the refused requests, and values made by "set" and "map" reach the task.
# (Before the fix the enqueue ran in the rewrite phase: every refused
# request stored a task and "set" values were still empty.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
mkdir "$dir/html";
open my $fh, '>', "$dir/html/index.html" or die; print $fh "page\n"; close $fh;
open $fh, '>', "$dir/htpasswd" or die; print $fh "alice:{PLAIN}wonderland\n"; close $fh;

my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    limit_req_zone \$binary_remote_addr zone=one:1m rate=1r/m;
    map \$arg_m \$mapped { default none; a alpha; }
    server {
        listen 127.0.0.1:%%PORT%%;
        root $dir/html;
        location = /deny {
            deny all;
            deferred_enqueue noop queue=deny;
            try_files /index.html =404;
        }
        location = /basic {
            auth_basic "tasks";
            auth_basic_user_file $dir/htpasswd;
            deferred_enqueue noop queue=basic;
            try_files /index.html =404;
        }
        location = /authreq {
            auth_request /auth;
            deferred_enqueue noop queue=authreq;
            try_files /index.html =404;
        }
        location = /auth {
            internal;
            if (\$http_x_pass = yes) { return 204; }
            return 403;
        }
        location = /limited {
            limit_req zone=one burst=1 nodelay;
            deferred_enqueue noop queue=limited;
            try_files /index.html =404;
        }
        location = /vars {
            set \$who "user-\$arg_u";
            deferred_enqueue noop queue=vars name=\$who args=\$mapped;
            try_files /index.html =404;
        }
    }
});

my $count = sub { DQNginx::stored($r, $_[0]) };

my $res = $n->request('GET', '/deny');
is($res->{status}, 403, 'deny all: 403');
is($count->('deny'), 0, 'deny all: no task stored');

$res = $n->request('GET', '/basic');
is($res->{status}, 401, 'auth_basic without credentials: 401');
$res = $n->request('GET', '/basic', headers => { Authorization => 'Basic YWxpY2U6d3Jvbmc=' });
is($res->{status}, 401, 'auth_basic with a wrong password: 401');
is($count->('basic'), 0, 'auth_basic: nothing stored for refused requests');
$res = $n->request('GET', '/basic', headers => { Authorization => 'Basic YWxpY2U6d29uZGVybGFuZA==' });
is($res->{status}, 200, 'auth_basic with the password: 200');
is($count->('basic'), 1, 'auth_basic: one task for the one accepted request');

$res = $n->request('GET', '/authreq');
is($res->{status}, 403, 'auth_request refusing: 403');
is($count->('authreq'), 0, 'auth_request: nothing stored when refused');
$res = $n->request('GET', '/authreq', headers => { 'X-Pass' => 'yes' });
is($res->{status}, 200, 'auth_request accepting: 200');
is($count->('authreq'), 1, 'auth_request: one task when accepted');

my @st = map { $n->request('GET', '/limited')->{status} } 1 .. 5;
is(scalar(grep { $_ == 200 } @st), 2, 'limit_req: rate + burst let 2 of 5 through')
    or diag "@st";
is(scalar(grep { $_ == 503 } @st), 3, 'limit_req: 3 refused with 503');
is($count->('limited'), 2, 'limit_req: a task only for the 2 let through');

$res = $n->request('GET', '/vars?u=bob&m=a');
is($res->{status}, 200, 'set/map location: 200');
is($r->cmd('ZSCORE', 'dq2:{vars}:names', 'user-bob'), 'inf',
   '"set" value reached the task name (user-bob)');
my ($env) = values %{ { @{ $r->cmd('HGETALL', 'dq2:{vars}:tasks') } } };
like($env // '', qr/alpha/, '"map" value reached the arguments (alpha)');

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
