# The operator locations are safe by default and their answers cannot be
# framed, sniffed or cached (review of issue 14, F1-F3, F5, F11):
#  - deferred_status/metrics/dashboard/admin answer only the local host
#    (a client bound to 127.0.0.2 gets 403) unless "open"; deferred_ready
#    answers everyone; nginx -t warns about "deferred_admin open";
#  - every operator answer carries X-Frame-Options: DENY, a CSP with
#    frame-ancestors 'none', nosniff and Cache-Control: no-store;
#  - deleting a named task with tombstone 0 (deferred_tombstone 0 in the
#    admin location, deferred-cli delete --tombstone 0) frees its name at
#    once (before the fix the name stayed at +inf: TaskAlreadyExists for
#    ever); the default keeps it taken for the tombstone window;
#  - deferred_ready is 503 when Redis refuses writes (maxmemory with
#    noeviction, a read-only replica), 200 again once it takes them; an
#    admin action then is 503 "Redis answered an error", done nowhere;
#  - deferred_metrics answers 200 with deferred_redis_up 0 without Redis.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use JSON::PP;
use Test::More;
use IO::Socket::INET;

DQNginx::require_nginx();

my $r = DQTest::Redis->start;
my $n = DQNginx->start_status($r, ops => 1, locations => q{
        location = /open/status      { deferred_status open; }
        location = /open/metrics     { deferred_metrics open; }
        location /open/              { deferred_dashboard status open admin; }
        location = /open/admin {
            deferred_admin open;
            allow 127.0.0.0/8;
            deny all;
        }
        location = /t0/admin { deferred_admin; deferred_tombstone 0; }
});
sub key { DQTest::dq_key(@_) }
sub cli { my @r = DQWorker::cli($r, @_); die "cli @_: $r[2]" if $r[0]; $r[1] }
sub defer { (split ' ', cli('defer', @_))[0] }

# one request from a chosen local address (HTTP::Tiny cannot bind)
sub from {
    my ($addr, $method, $path, %h) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => $addr, PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Proto => 'tcp')
        or die "connect from $addr: $@";
    print {$s} DQNginx::build_request($method, $path, headers => \%h,
                                      close => 1,
                                      $method eq 'POST' ? (body => '') : ());
    local $/;
    my $raw = <$s> // '';
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my %hd = map { /^([^:]+):\s*(.*)$/ ? (lc $1, $2) : () } split /\r\n/, $head;
    return { status => $status // 0, headers => \%hd, body => $body // '' };
}
my @ADM = ('X-Deferred-Admin' => '1');

# F3: local only unless open
cli(qw(defer -q ops --countdown 600000 noop));
for my $p (qw(/deferred/status /deferred/metrics /deferred/)) {
    is(from('127.0.0.2', 'GET', $p)->{status}, 403, "$p from 127.0.0.2: 403");
    is(from('127.0.0.1', 'GET', $p)->{status}, 200, "$p from 127.0.0.1: 200");
}
cli(qw(pause ops));
my $res = from('127.0.0.2', 'POST', '/deferred/admin?action=resume&queue=ops', @ADM);
is($res->{status}, 403, 'admin from 127.0.0.2: 403');
is($r->cmd('HGET', key('ops', 'conf'), 'paused'), '1', '... and nothing was done');
like(DQTest::slurp($n->error_log), qr/\[warn\].*client 127\.0\.0\.2 is not local; this operator location/,
     'the refusal is logged at warn with the address');
is(from('127.0.0.2', 'GET', '/open/status')->{status}, 200, '"deferred_status open": 127.0.0.2 may read');
is(from('127.0.0.2', 'GET', '/open/metrics')->{status}, 200, '"deferred_metrics open": 127.0.0.2 may read');
$res = from('127.0.0.2', 'GET', '/open/');
is($res->{status}, 200, '"deferred_dashboard ... open": 127.0.0.2 may load the page');
like($res->{body}, qr/var DQ_STATUS="status",DQ_ADMIN="admin"/, '... with its URLs ("open" is no URL)');
$res = from('127.0.0.2', 'POST', '/open/admin?action=resume&queue=ops', @ADM);
is($res->{status}, 200, '"deferred_admin open" (allow 127.0.0.0/8): 127.0.0.2 may act');
ok(!defined $r->cmd('HGET', key('ops', 'conf'), 'paused'), '... and it was done');
is(from('127.0.0.2', 'GET', '/ready')->{status}, 200, 'deferred_ready answers every address');
my ($ok, $out) = $n->test_conf;
ok($ok, 'nginx -t passes');
like($out, qr/\[warn\].*"deferred_admin open" lets every address/, 'nginx -t warns about "deferred_admin open"');

# F2: operator answers are not framed, sniffed or cached
for my $p (qw(/deferred/status /deferred/metrics /deferred/ /ready)) {
    my $h = from('127.0.0.1', 'GET', $p)->{headers};
    is($h->{'x-frame-options'}, 'DENY', "$p: X-Frame-Options DENY");
    like($h->{'content-security-policy'} // '', qr/frame-ancestors 'none'/, "$p: CSP frame-ancestors 'none'");
    is($h->{'x-content-type-options'}, 'nosniff', "$p: nosniff");
    is($h->{'cache-control'}, 'no-store', "$p: Cache-Control no-store");
}
$res = from('127.0.0.1', 'POST', '/deferred/admin?action=pause&queue=ops', @ADM);
is($res->{headers}{'x-frame-options'}, 'DENY', 'admin answer: X-Frame-Options DENY');
like($res->{headers}{'content-security-policy'} // '', qr/default-src 'self'/, 'admin answer: CSP');
cli(qw(resume ops));

# F1: delete with tombstone 0 frees the name
my $id = defer(qw(-q ops -n nm1 --countdown 600000 noop));
$res = from('127.0.0.1', 'POST', "/t0/admin?action=delete&queue=ops&id=$id", @ADM);
is($res->{status}, 200, 'admin delete (deferred_tombstone 0): 200');
is($r->cmd('ZSCORE', key('ops', 'names'), 'nm1'), undef, '... the name is free at once');
my ($rc) = DQWorker::cli($r, qw(defer -q ops -n nm1 --countdown 600000 noop));
is($rc, 0, '... and may be used again');
$id = defer(qw(-q ops -n nm2 --countdown 600000 noop));
($rc, $out) = DQWorker::cli($r, 'delete', 'ops', $id, '--tombstone', '0');
is($rc, 0, 'deferred-cli delete --tombstone 0: exit 0');
is($r->cmd('ZSCORE', key('ops', 'names'), 'nm2'), undef, '... the name is free at once');
($rc) = DQWorker::cli($r, qw(defer -q ops -n nm2 --countdown 600000 noop));
is($rc, 0, '... and may be used again');
$id = defer(qw(-q ops -n nm3 --countdown 600000 noop));
cli('delete', 'ops', $id);
my $score = $r->cmd('ZSCORE', key('ops', 'names'), 'nm3');
ok(defined $score && $score ne 'inf' && $score > time * 1000,
   'deferred-cli delete (default): the name is tombstoned for a finite window');
$id = defer(qw(-q ops -n nm4 --countdown 600000 noop));
$res = from('127.0.0.1', 'POST', "/deferred/admin?action=delete&queue=ops&id=$id", @ADM);
$score = $r->cmd('ZSCORE', key('ops', 'names'), 'nm4');
ok(defined $score && $score ne 'inf' && $score > time * 1000,
   'admin delete (default tombstone): the name is tombstoned for a finite window');
($rc, undef, my $err) = DQWorker::cli($r, 'delete', 'ops', $id, '--tombstone', '-1');
is($rc, 2, 'delete --tombstone -1: usage error');

# F4: deferred-cli forget drops only empty queues; status and metrics say
# how many queues they do not show (past 1,000) instead of dropping them
my $fid = defer(qw(-q full --countdown 600000 noop));
defer(qw(-q gone noop));
($rc, $out, $err) = DQWorker::cli($r, qw(forget full));
is($rc, 5, 'forget of a queue holding a task: exit 5');
like($err, qr/queue full is not empty/, '... says why');
ok($r->cmd('SISMEMBER', 'dq:queues', 'full'), '... and it stays listed');
cli('delete', 'full', $fid, '--tombstone', '0');
cli(qw(purge gone --yes --tombstone 0));
ok($r->cmd('EXISTS', key('gone', 'stats')), 'gone: counters exist before');
($rc, $out, $err) = DQWorker::cli($r, qw(forget full gone));
is($rc, 0, 'forget of two empty queues: exit 0') or diag $err;
is($out, "forgot full\nforgot gone\n", '... says so');
ok(!$r->cmd('SISMEMBER', 'dq:queues', 'gone'), '... gone from dq:queues');
ok(!$r->cmd('EXISTS', key('gone', 'stats')), '... and its counters went');
$r->cmd('SADD', 'dq:queues', map { "q$_" } 1 .. 1002);
my $nq = $r->cmd('SCARD', 'dq:queues');
$res = from('127.0.0.1', 'GET', '/deferred/status');
my $st = eval { decode_json($res->{body}) } || {};
is(scalar @{ $st->{queues} || [] }, 1000, 'status: 1000 queues shown');
is($st->{queues_not_shown}, $nq - 1000, '... and says how many more there are');
$res = from('127.0.0.1', 'GET', '/deferred/metrics');
like($res->{body}, qr/^deferred_queues_not_shown @{[ $nq - 1000 ]}$/m, 'metrics: deferred_queues_not_shown');
$r->cmd('SREM', 'dq:queues', map { "q$_" } 1 .. 1002);

# F5: ready says 503 when Redis refuses writes
$res = from('127.0.0.1', 'GET', '/ready');
is($res->{status}, 200, 'ready: 200');
$r->cmd('CONFIG', 'SET', 'maxmemory', '1');
$res = from('127.0.0.1', 'GET', '/ready');
is($res->{status}, 503, 'ready with maxmemory 1 (noeviction): 503');
like($res->{body}, qr/"redis":"refuses writes","error":"OOM/, '... says Redis refuses writes (OOM)') or diag $res->{body};
$res = from('127.0.0.1', 'POST', '/deferred/admin?action=pause&queue=ops', @ADM);
is($res->{status}, 503, 'admin pause with maxmemory 1: 503');
is($res->{body}, qq({"error":"RedisError","message":"Redis answered an error"}\n),
   '... says Redis answered an error');
ok(!defined $r->cmd('HGET', key('ops', 'conf'), 'paused'), '... and nothing was done');
($rc, undef, $err) = DQWorker::cli($r, qw(defer -q ops noop));
isnt($rc, 0, '... as an enqueue is refused then');
$r->cmd('CONFIG', 'SET', 'maxmemory', '0');
is(from('127.0.0.1', 'GET', '/ready')->{status}, 200, 'maxmemory 0 again: 200');
my $r2 = DQTest::Redis->start;
$r->cmd('REPLICAOF', '127.0.0.1', $r2->port);
$res = from('127.0.0.1', 'GET', '/ready');
is($res->{status}, 503, 'ready on a read-only replica: 503');
like($res->{body}, qr/"error":"READONLY/, '... READONLY') or diag $res->{body};
$r->cmd('REPLICAOF', 'NO', 'ONE');
is(from('127.0.0.1', 'GET', '/ready')->{status}, 200, 'REPLICAOF NO ONE: 200');


# F11: metrics without Redis: 200, deferred_redis_up 0
$r2->stop;
$r->stop;
$res = from('127.0.0.1', 'GET', '/deferred/metrics');
is($res->{status}, 200, 'metrics without Redis: 200');
like($res->{body}, qr/^deferred_redis_up 0$/m, '... deferred_redis_up 0');
is(from('127.0.0.1', 'GET', '/ready')->{status}, 503, 'ready without Redis: 503');
$res = from('127.0.0.1', 'POST', '/deferred/admin?action=pause&queue=ops', @ADM);
is($res->{status}, 503, 'admin without Redis: 503');
like($res->{body}, qr/"message":"Redis is not reachable"/, '... Redis is not reachable') or diag $res->{body};

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
