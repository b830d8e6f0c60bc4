# The module's operator locations against a real Redis, a real worker and
# tasks in every state: deferred_status (JSON) and deferred_metrics
# (Prometheus text; `promtool check metrics` when installed) report what
# Redis holds; deferred_admin retries (the task runs), deletes, pauses and
# resumes, only with X-Deferred-Admin: 1 and only by POST; deferred_ready
# is 200 while Redis is up and 503 when it is not; metrics then answer 200
# with deferred_redis_up 0.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use Encode qw(decode_utf8);
use JSON::PP;
use Test::More;

my $dir = tmpdir();
my $r = DQTest::Redis->start;
my $ndir = tmpdir();
{ open my $fh, '>', "$ndir/htpasswd" or die; print {$fh} "ops:{PLAIN}s3cret\n"; close $fh; }
my $n = DQNginx->start_status($r, dir => $ndir, ops => 1, locations => q{
        location = /locked/admin {
            deferred_admin;
            auth_basic "queue admin";
            auth_basic_user_file %%DIR%%/htpasswd;
        }
        location = /denied/status {
            deny all;
            deferred_status;
        }
});
sub key { DQTest::dq_key(@_) }
sub cli { my @r = DQWorker::cli($r, @_); die "cli @_: $r[2]" if $r[0]; $r[1] }
sub defer { (split ' ', cli('defer', @_))[0] }
sub status {
    my $res = $n->request('GET', '/deferred/status');
    return ($res, eval { decode_json($res->{body}) });
}
sub admin {
    my ($q, %o) = @_;
    return $n->request('POST', "/deferred/admin?$q", body => '',
                       headers => $o{bare} ? {} : { 'X-Deferred-Admin' => '1' });
}

my $w = DQWorker::start_worker($r, $dir, name => 'w',
    args => ['-q', 'ops', '--grace', '2s']);
defer(qw(-q ops noop)) for 1 .. 5;
my $fa = "$dir/a.rec";
my $ida = defer(qw(-q ops --retry-limit 0 fail_then_ok), $fa, 1);
my $idb = defer(qw(-q ops permanent), 'boom "quoted" é');
defer(qw(-q ops sleep_ms 60000));
ok(DQTest::wait_for(sub { $r->cmd('ZCARD', key('ops', 'dead')) == 2
                          && $r->cmd('ZCARD', key('ops', 'leases')) == 1 }, 20),
   'ops: 5 done, 2 dead, 1 running');
cli(qw(pause mail));
defer(qw(-q mail noop)) for 1 .. 3;
defer(qw(-q ops --countdown 600000 noop)) for 1 .. 2;
ok(DQTest::wait_for(sub { ($r->cmd('HGET', key('ops', 'stats'), 'late_count') // 0) == 7 }, 25),
   'the worker added 7 lateness samples with its heartbeat (every 10 s)');

# the heartbeat that carried the samples may predate the sleeper's start
# (running 0: seen under load): wait for one that shows it running
DQTest::wait_for(sub { my (undef, $x) = status();
                       $x && $x->{workers} && @{ $x->{workers} }
                       && ($x->{workers}[0]{running} // 0) == 1 }, 25, 0.2);
my ($res, $s) = status();
is($res->{status}, 200, 'status: 200');
like($res->{headers}{'content-type'}, qr{^application/json}, 'status: JSON');
my %q = map { $_->{queue} => $_ } @{ $s->{queues} };
is_deeply([@{ $q{ops} }{qw(waiting due delayed running dead)}], [2, 0, 2, 1, 2],
          'ops: 2 waiting (2 delayed), 1 running, 2 dead');
is_deeply([@{ $q{mail} }{qw(waiting due delayed running dead)}], [3, 3, 0, 0, 0],
          'mail: 3 due');
ok($q{mail}{paused} && !$q{ops}{paused}, 'mail paused, ops not');
ok($q{mail}{oldest_due_age_ms} >= 0, 'mail: oldest due age');
is($q{ops}{oldest_due_age_ms}, undef, 'ops: none due');
is($q{ops}{counters}{done}, 5, 'ops: 5 done');
is($q{ops}{counters}{enqueued}, 10, 'ops: 10 enqueued');
is($q{ops}{counters}{dead}, 2, 'ops: 2 dead');
is($q{ops}{lateness_ms}{count}, 7, 'ops: lateness count 7');
is($q{ops}{lateness_ms}{buckets}[-1][1], 7, 'ops: +Inf bucket holds all 7');
my %dead = map { $_->{id} => $_ } @{ $q{ops}{dead_tasks} };
is($dead{$idb}{error}, decode_utf8('boom "quoted" é'), 'a dead task with its error, quotes and UTF-8 intact');
is($dead{$idb}{function}, 'permanent', '... and its function');
is(scalar @{ $s->{workers} }, 1, 'one live worker');
is($s->{workers}[0]{running}, 1, 'it runs one task');
is($s->{workers}[0]{queues}, 'ops', 'it serves ops');

# metrics
$res = $n->request('GET', '/deferred/metrics');
is($res->{status}, 200, 'metrics: 200');
like($res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'metrics: exposition format 0.0.4');
my $m = $res->{body};
my %v;
for (split /\n/, $m) {
    next if /^#/;
    my ($k, $val) = /^(\S+) (\S+)$/ or next;
    $v{$k} = $val;
}
is($v{'deferred_tasks{queue="ops",state="dead"}'}, 2, 'metric: ops dead 2');
is($v{'deferred_tasks{queue="ops",state="running"}'}, 1, 'metric: ops running 1');
is($v{'deferred_tasks{queue="ops",state="delayed"}'}, 2, 'metric: ops delayed 2');
is($v{'deferred_tasks{queue="mail",state="due"}'}, 3, 'metric: mail due 3');
is($v{'deferred_queue_paused{queue="mail"}'}, 1, 'metric: mail paused');
is($v{'deferred_tasks_done_total{queue="ops"}'}, 5, 'metric: ops done_total 5');
is($v{'deferred_tasks_enqueued_total{queue="ops"}'}, 10, 'metric: ops enqueued_total 10');
is($v{'deferred_task_lateness_seconds_count{queue="ops"}'}, 7, 'metric: lateness count 7');
is($v{'deferred_task_lateness_seconds_bucket{queue="ops",le="+Inf"}'}, 7, 'metric: +Inf bucket 7');
is($v{deferred_workers}, 1, 'metric: 1 live worker');
is($v{deferred_redis_up}, 1, 'metric: redis up');
SKIP: {
    DQTest::skip_unless(DQTest::in_path('promtool'),
                        'promtool not installed (Debian package prometheus)', 1);
    open my $fh, '>', "$dir/metrics.txt" or die; print {$fh} $m; close $fh;
    my $out = `promtool check metrics < $dir/metrics.txt 2>&1`;
    is($?, 0, 'promtool check metrics accepts it') or diag $out;
}

# admin: POST only, with the header; retry runs the task, delete, pause
$res = $n->request('GET', "/deferred/admin?action=retry&queue=ops&id=$ida");
is($res->{status}, 405, 'admin: GET is 405');
$res = admin("action=retry&queue=ops&id=$ida", bare => 1);
is($res->{status}, 403, 'admin: no X-Deferred-Admin header is 403');
$res = admin("action=frob&queue=ops");
is($res->{status}, 400, 'admin: unknown action is 400');
$res = admin("action=retry&queue=ops&id=$ida");
is($res->{status}, 200, 'admin retry: 200');
is(eval { decode_json($res->{body})->{done} }, JSON::PP::true, 'admin retry: done') or diag $res->{body};
ok(DQTest::wait_for(sub { my @l = split /\n/, slurp($fa); @l == 2 }, 10), 'the retried task ran again');
$res = admin("action=retry&queue=ops&id=$ida");
is($res->{status}, 404, 'admin retry of a task that is not dead: 404');
$res = admin("action=delete&queue=ops&id=$idb");
is($res->{status}, 200, 'admin delete: 200');
ok(!$r->cmd('HEXISTS', key('ops', 'tasks'), $idb), 'the deleted task is gone');
$res = admin("action=resume&queue=mail");
is($res->{status}, 200, 'admin resume: 200');
ok(!defined $r->cmd('HGET', key('mail', 'conf'), 'paused'), 'mail resumed in Redis');
admin("action=pause&queue=mail");
is($r->cmd('HGET', key('mail', 'conf'), 'paused'), '1', 'admin pause: paused in Redis');
$res = admin("action=pause&queue=no/such");
is($res->{status}, 400, 'admin: invalid queue name is 400');

# restricted like any location: deny, auth_basic
is($n->request('GET', '/denied/status')->{status}, 403, 'deny all: 403 before Redis is asked');
$res = $n->request('POST', '/locked/admin?action=pause&queue=mail', body => '',
                   headers => { 'X-Deferred-Admin' => '1' });
is($res->{status}, 401, 'auth_basic: 401 without credentials');
require MIME::Base64;
$res = $n->request('POST', '/locked/admin?action=resume&queue=mail', body => '',
                   headers => { 'X-Deferred-Admin' => '1',
                                Authorization => 'Basic ' . MIME::Base64::encode_base64('ops:s3cret', '') });
is($res->{status}, 200, 'auth_basic: 200 with them');
ok(!defined $r->cmd('HGET', key('mail', 'conf'), 'paused'), '... and the action was done');
admin("action=pause&queue=mail");

# dashboard page
$res = $n->request('GET', '/deferred/');
is($res->{status}, 200, 'dashboard: 200');
like($res->{headers}{'content-type'}, qr{^text/html}, 'dashboard: HTML');
like($res->{body}, qr/var DQ_STATUS="status",DQ_ADMIN="admin"/, 'dashboard: its URLs');
unlike($res->{body}, qr{(?:src|href)=["']?(?:https?:)?//}, 'dashboard: nothing loaded from elsewhere');

# readiness, Redis down
$res = $n->request('GET', '/ready');
is($res->{status}, 200, 'ready: 200');
is_deeply(eval { decode_json($res->{body}) }, { ready => JSON::PP::true, redis => 'up', writable => JSON::PP::true }, 'ready: body');
DQWorker::stop_worker($w, 'KILL');
$r->stop;
ok(DQTest::wait_for(sub { $n->request('GET', '/ready')->{status} == 503 }, 5), 'ready: 503 once Redis is down');
is($n->request('GET', '/deferred/status')->{status}, 503, 'status: 503 without Redis');
$res = $n->request('GET', '/deferred/metrics');
is($res->{status}, 200, 'metrics without Redis: 200 (the scrape works) ...');
like($res->{body}, qr/^deferred_redis_up 0$/m, '... with deferred_redis_up 0');
$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
