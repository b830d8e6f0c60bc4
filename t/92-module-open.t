# The deferred endpoint is safe by default (issue 11, item 3): with no
# deferred_secret and no "deferred_endpoint on open" it answers only the
# local host's own address (a client bound to 127.0.0.2 gets 403, nothing
# stored); "open" is deliberate and nginx -t warns when it has no secret;
# deferred_functions limits what may be called; deferred_retry_bounds keeps
# clients' retry options within bounds (min_backoff 0, a billion retries:
# 400). Also: "deferred_endpoint off" in a location turns the server-level
# endpoint off there, and try_files does not take the endpoint's URL away.
# (Before the fix every one of these stored the task.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;

DQNginx::require_nginx();

my $SECRET = 'sixteen+ characters secret';
my $dir = tmpdir();
mkdir "$dir/html";
my $r = DQTest::Redis->start(dir => $dir);
my ($FRONT, $BARE, $PP) = (free_port(), free_port(), free_port());
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    # same-host proxies in front of the default endpoint
    server {
        listen 127.0.0.1:$FRONT;
        location / {
            proxy_pass http://127.0.0.1:%%PORT%%;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
    server {
        listen 127.0.0.1:$BARE;
        location / { proxy_pass http://127.0.0.1:%%PORT%%; }
    }
    server {
        listen 127.0.0.1:$PP proxy_protocol;
        deferred_endpoint on;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        root $dir/html;
        deferred_endpoint on;
        location / { try_files \$uri /index.php; }
        location = /index.php { return 418; }
        location = /open { deferred_endpoint on open; }
        location = /signed { deferred_endpoint on; deferred_secret "$SECRET"; }
        location = /fns {
            deferred_endpoint on;
            deferred_functions mail.* report.daily;
        }
        location = /bounded {
            deferred_endpoint on;
            deferred_retry_bounds max_retries=10 min_backoff=1s max_age=1h;
        }
        location = /off/_ah/queue/deferred { deferred_endpoint off; return 404; }
    }
});

# one request from a chosen local address (raw socket: HTTP::Tiny cannot bind)
sub from {
    my ($addr, $path, $body, %h) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => $addr, PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Proto => 'tcp')
        or die "connect from $addr: $@";
    my $req = DQNginx::build_request('POST', $path, json => $body, headers => \%h,
                                      close => 1);
    print {$s} $req;
    local $/;
    my $raw = <$s> // '';
    my ($status) = $raw =~ m{^HTTP/1\.1 (\d+)};
    return { status => $status // 0, body => $raw };
}

my $EP = '/_ah/queue/deferred';
my $res = from('127.0.0.1', $EP, '{"func":"noop","queue":"q1"}');
is($res->{status}, 201, 'default endpoint, client 127.0.0.1: 201');
$res = from('127.0.0.2', $EP, '{"func":"noop","queue":"q2"}');
is($res->{status}, 403, 'default endpoint, client 127.0.0.2: 403');
like($res->{body}, qr/"error":"Forbidden"/, '403 says Forbidden');
is(DQNginx::stored($r, 'q2'), 0, 'nothing stored for the remote client');
like(DQTest::slurp($n->error_log), qr/\[warn\].*client 127\.0\.0\.2 is not local/,
     'the refusal is logged at warn with the address');

# a same-host reverse proxy: nginx sees 127.0.0.1 for every client; a
# request that says it was forwarded is not local (before the fix: 201)
sub via {
    my ($port, $path, $body, %h) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp') or die "connect: $@";
    my $pp = delete $h{PROXY};
    print {$s} $pp if $pp;
    print {$s} DQNginx::build_request('POST', $path, json => $body, headers => \%h, close => 1);
    local $/;
    my $raw = <$s> // '';
    my ($status) = $raw =~ m{^HTTP/1\.1 (\d+)};
    return $status // 0;
}
is(via($FRONT, $EP, '{"func":"noop","queue":"p1"}'), 403,
   'through a same-host proxy adding X-Forwarded-For: 403');
for my $h ('X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Via') {
    is(from('127.0.0.1', $EP, '{"func":"noop","queue":"p1"}', $h => 'for=192.0.2.7')->{status},
       403, "from 127.0.0.1 with $h: 403 (forwarded, not local)");
}
is(DQNginx::stored($r, 'p1'), 0, 'nothing stored for forwarded requests');
like(DQTest::slurp($n->error_log), qr/\[warn\].*client 127\.0\.0\.1 is not local \(or came through a proxy\)/,
     'the refusal says a proxy may be why');
is(via($PP, $EP, '{"func":"noop","queue":"p2"}', PROXY => "PROXY TCP4 192.0.2.7 127.0.0.1 4000 80\r\n"),
   403, 'proxy_protocol naming 192.0.2.7 on a loopback connection: 403');
is(via($PP, $EP, '{"func":"noop","queue":"p2"}', PROXY => "PROXY TCP4 127.0.0.1 127.0.0.1 4000 80\r\n"),
   201, 'proxy_protocol naming 127.0.0.1: 201');
is(DQNginx::stored($r, 'p2'), 1, 'only the local one stored');
# the documented limit (docs/SECURITY.md): a proxy that adds no header
# makes every client local; allow/deny or a secret are the real controls
is(via($BARE, $EP, '{"func":"noop","queue":"p3"}'), 201,
   'a same-host proxy adding no header: 201 (documented limit)');

$res = from('127.0.0.2', '/open', '{"func":"noop","queue":"q3"}');
is($res->{status}, 201, '"deferred_endpoint on open": 127.0.0.2 may call');

my $t = time;
my $body = '{"func":"noop","queue":"q4"}';
my $sig = "t=$t,v1=" . DQNginx::hmac_sha256_hex($SECRET, "POST\n/signed\n$t\n$body");
$res = from('127.0.0.2', '/signed', $body);
is($res->{status}, 403, 'secret, unsigned from 127.0.0.2: 403');
$res = from('127.0.0.2', '/signed', $body, 'X-Deferred-Signature' => $sig);
is($res->{status}, 201, 'secret, signed from 127.0.0.2: 201');

# nginx -t: open without a secret is said
my ($ok, $out) = $n->test_conf;
ok($ok, 'nginx -t passes');
like($out, qr/\[warn\].*open to every address without "deferred_secret"/,
     'nginx -t warns: open without a secret');

# deferred_functions
$res = from('127.0.0.1', '/fns', '{"func":"mail.welcome"}');
is($res->{status}, 201, 'deferred_functions: prefix mail.* allowed');
$res = from('127.0.0.1', '/fns', '{"func":"report.daily"}');
is($res->{status}, 201, 'deferred_functions: exact name allowed');
$res = from('127.0.0.1', '/fns', '{"func":"os.system","queue":"q5"}');
is($res->{status}, 400, 'deferred_functions: other function 400');
like($res->{body}, qr/"field":"func".*not allowed here/, 'names the field');
$res = from('127.0.0.1', '/fns', '[{"func":"mail.x","queue":"q5"},{"func":"report.dailyx","queue":"q5"}]');
is($res->{status}, 400, 'deferred_functions: batch with one bad function 400');
like($res->{body}, qr/"field":"tasks\[1\]\.func"/, 'names the task');
is(DQNginx::stored($r, 'q5'), 0, 'nothing stored');

# retry bounds: defaults at the server endpoint, explicit at /bounded
$res = from('127.0.0.1', $EP, '{"func":"noop","queue":"q6","retry_options":{"min_backoff_seconds":0}}');
is($res->{status}, 400, 'default bounds: min_backoff_seconds 0 refused');
$res = from('127.0.0.1', $EP, '{"func":"noop","queue":"q6","retry_options":{"task_retry_limit":1000000000}}');
is($res->{status}, 400, 'default bounds: a billion retries refused');
like($res->{body}, qr/task_retry_limit: at most 100/, 'says the bound');
$res = from('127.0.0.1', $EP, '{"func":"noop","queue":"q6","retry_options":{"task_retry_limit":7,"min_backoff_seconds":0.5}}');
is($res->{status}, 201, 'default bounds: ordinary options pass');
$res = from('127.0.0.1', '/bounded', '{"func":"noop","queue":"q7","retry_options":{"task_retry_limit":11}}');
is($res->{status}, 400, 'max_retries=10: 11 refused');
$res = from('127.0.0.1', '/bounded', '{"func":"noop","queue":"q7","retry_options":{"min_backoff_seconds":0.5}}');
is($res->{status}, 400, 'min_backoff=1s: 0.5 refused');
$res = from('127.0.0.1', '/bounded', '{"func":"noop","queue":"q7","retry_options":{"task_age_limit":7200}}');
is($res->{status}, 400, 'max_age=1h: 7200 s refused');
$res = from('127.0.0.1', '/bounded', '{"func":"noop","queue":"q7","retry_options":{"task_retry_limit":10,"min_backoff_seconds":2}}');
is($res->{status}, 201, 'within the bounds: 201');
is(DQNginx::stored($r, 'q6') + DQNginx::stored($r, 'q7'), 2, 'only the two in bounds stored');

# the server-level endpoint: off per location, ahead of try_files
$res = from('127.0.0.1', '/off/_ah/queue/deferred', '{"func":"noop"}');
is($res->{status}, 404, 'deferred_endpoint off in a location: not an endpoint');
$res = from('127.0.0.1', $EP, '{"func":"noop","queue":"q8"}');
is($res->{status}, 201, 'try_files in "location /" does not take the endpoint away');

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
