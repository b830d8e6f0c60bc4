# Review R6 (MX): the status page and the metrics while one queue's slot
# is MIGRATING (every reshard moves slots one by one; a slot left open
# stays so). status.lua names keys that rarely all exist (contract v1's,
# errors, ...), so Redis Cluster refuses that queue's call with TRYAGAIN
# before it runs. The module failed the whole op on it: deferred_status
# answered 503 "Redis did not answer" and deferred_metrics only
# deferred_redis_up 0: every queue gone from the scrape, including
# deferred_migrating_stalls_total (what the docs tell to alert on), and
# no log line. Wanted: that queue alone is left out, said so (status
# "queues_not_read" and "queues_unread" with Redis' answer, metrics
# deferred_queues_not_read, a warn line); a sharded queue one of whose
# shards is refused is left out whole (a partial sum would make its
# counters fall: a false reset). Redis down is still a failure.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQNginx;
use DQCluster;
use DQWorker;
use JSON::PP;

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx",
                       vars => { SEEDS => 'cluster:' . $m[0]->address },
                       http => q{
    deferred_redis %%SEEDS%%;
    deferred_timeout 3s;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /status  { deferred_status; }
        location = /metrics { deferred_metrics; }
    }
});

# mig: its slot will migrate; calm: on another master; sq: sharded, its
# shard 1 on a master of its own
my ($sq, $S1) = $c->queue_shard1_apart;
my ($rc, undef, $err) = DQWorker::cli($c, 'queue', $sq, '--shards', 2);
is($rc, 0, "queue $sq --shards 2") or diag $err;
my $calm;
for my $i (1 .. 500) {
    $calm = "calm$i";
    last if $c->owner($calm)->port != $c->owner('mig')->port
            && $c->owner($calm)->port != $S1->port;
}
for my $q ('mig', $calm, $sq, "$sq#1") {
    my $qq = $q =~ /#/ ? $sq : $q;
    my $res = $n->request('POST', '/_ah/queue/deferred',
                          json => qq({"func":"f","queue":"$qq","args":[]}));
    is($res->{status}, 201, "a task for $qq");
}

sub scrape {
    my ($what) = @_;
    my $st = $n->request('GET', '/status');
    my $j = eval { decode_json($st->{body}) } || {};
    my %q = map { $_->{queue} => $_ } @{ $j->{queues} || [] };
    my $me = $n->request('GET', '/metrics');
    return ($st, $j, \%q, $me);
}

sub check_left_out {
    my ($label, $gone, $slot, $from, $to) = @_;
    $c->migrating($slot, $from, $to);
    my ($st, $j, $q, $me) = scrape();
    $c->stable($slot, $from, $to);
    is($st->{status}, 200, "$label: status 200");
    ok($q->{$calm}, "$label: status lists $calm");
    ok(!$q->{$gone}, "$label: status leaves $gone out");
    is($j->{queues_not_read}, 1, "$label: status queues_not_read 1");
    my ($u) = grep { $_->{queue} eq $gone } @{ $j->{queues_unread} || [] };
    like($u && $u->{error}, qr/TRYAGAIN/, "$label: queues_unread names $gone with Redis' answer");
    is($me->{status}, 200, "$label: metrics 200");
    like($me->{body}, qr/^deferred_redis_up 1$/m, "$label: deferred_redis_up 1");
    like($me->{body}, qr/^deferred_migrating_stalls_total\{queue="\Q$calm\E"\} 0$/m,
         "$label: ${calm}'s counters scraped");
    unlike($me->{body}, qr/queue="\Q$gone\E"/, "$label: no series of $gone");
    like($me->{body}, qr/^deferred_queues_not_read 1$/m,
         "$label: deferred_queues_not_read 1");
    SKIP: {
        skip 'promtool not installed (Debian package prometheus)', 1
            unless DQTest::in_path('promtool');
        my $f = "$dir/metrics.txt";
        open my $fh, '>', $f or die; print {$fh} $me->{body}; close $fh;
        my $out = `promtool check metrics < $f 2>&1`;
        is($?, 0, "$label: promtool check metrics passes") or diag $out;
    }
}

check_left_out('mig migrating', 'mig', $c->slot(DQTest::dq_key('mig', 'tasks')),
               $c->owner('mig'), $c->other('mig'));
check_left_out("$sq#1 migrating", $sq, $c->slot(DQTest::dq_key("$sq#1", 'tasks')),
               $S1, $c->owner($calm));

my $log = DQTest::slurp($n->error_log);
like($log, qr/\[warn\].*queue "mig".*TRYAGAIN/, 'a warn line names the queue and the answer');

# the slots stable again: every queue back, nothing left out
my ($st, $j, $q, $me) = scrape();
is($st->{status}, 200, 'stable: status 200');
ok($q->{mig} && $q->{$sq} && $q->{$calm}, 'stable: every queue listed');
is($j->{queues_not_read}, 0, 'stable: queues_not_read 0');
like($me->{body}, qr/^deferred_queues_not_read 0$/m, 'stable: deferred_queues_not_read 0');
DQTest::log_clean_ok($n->error_log);
done_testing;
