# The queue's event counters in dq2:{q}:stats (acked_late, released,
# unrunnable, dead_over_max, clock_jumps, migrating_stalls: written by the
# scripts, docs/CONTRACT.md) reach the operator: the module's status JSON
# ("events", per queue, a sharded queue's the sum of its shards) and
# deferred_metrics (deferred_<name>_total with HELP and TYPE counter), and
# deferred-cli stats.
# The fields are written with HSET on a real Redis, as the scripts leave
# them; a queue without them shows 0.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use JSON::PP;
use Test::More;

my $r = DQTest::Redis->start;
my $n = DQNginx->start_status($r);
sub cli { my @r = DQWorker::cli($r, @_); die "cli @_: $r[2]" if $r[0]; $r[1] }

my %metric = (acked_late => 'deferred_tasks_acked_late_total',
              released => 'deferred_tasks_released_total',
              unrunnable => 'deferred_tasks_unrunnable_total',
              dead_over_max => 'deferred_dead_over_max_total',
              clock_jumps => 'deferred_clock_jumps_total',
              migrating_stalls => 'deferred_migrating_stalls_total');
my %v = (acked_late => 3, released => 5, unrunnable => 7,
         dead_over_max => 11, clock_jumps => 2, migrating_stalls => 13);

cli(qw(defer -q ev noop));
cli(qw(defer -q calm noop));
$r->cmd('HSET', 'dq2:{ev}:stats', %v);

# a sharded queue: each shard's stats hash its own, the queue their sum
cli(qw(queue sh --shards 3));
cli(qw(defer -q sh noop));
for my $i (0 .. 2) {
    my $tag = $i ? "sh#$i" : 'sh';
    $r->cmd('HSET', "dq2:{$tag}:stats", migrating_stalls => 10 ** $i,
            acked_late => 1);
}

my $res = $n->request('GET', '/deferred/status');
is($res->{status}, 200, 'status 200');
my $j = eval { decode_json($res->{body}) } || {};
my %q = map { $_->{queue} => $_ } @{ $j->{queues} || [] };
is_deeply($q{ev}{events}, \%v, 'status: queue ev shows every event counter');
is_deeply($q{calm}{events}, { map { $_ => 0 } keys %v },
          'status: queue calm shows them all 0');
is($q{sh}{events}{migrating_stalls}, 111,
   'status: sharded queue sh sums migrating_stalls over its 3 shards');
is($q{sh}{events}{acked_late}, 3, 'status: and acked_late');
is($q{ev}{counters}{enqueued}, 1, 'status: the task counters still there');

my $m = $n->request('GET', '/deferred/metrics')->{body};
for my $f (sort keys %v) {
    my $name = $metric{$f};
    like($m, qr/^# HELP \Q$name\E \S.{20,}$/m, "metrics: $name has HELP");
    like($m, qr/^# TYPE \Q$name\E counter$/m, "metrics: $name is a counter");
    like($m, qr/^\Q$name\E\{queue="ev"\} $v{$f}$/m, "metrics: $name ev $v{$f}");
    like($m, qr/^\Q$name\E\{queue="calm"\} 0$/m, "metrics: $name calm 0");
}
like($m, qr/^deferred_migrating_stalls_total\{queue="sh"\} 111$/m,
     'metrics: the sharded queue\'s migrating_stalls summed');
# deferred-cli stats prints every event counter, a sharded queue's summed
my $out = cli(qw(stats ev));
like($out, qr/^$_ $v{$_}$/m, "deferred-cli stats ev: $_ $v{$_}") for sort keys %v;
$out = cli(qw(stats sh));
like($out, qr/^migrating_stalls 111$/m, 'deferred-cli stats sh: migrating_stalls summed');
like($out, qr/^acked_late 3$/m, 'deferred-cli stats sh: acked_late summed');

SKIP: {
    skip 'promtool not installed (Debian package prometheus)', 1
        unless DQTest::in_path('promtool');
    my $f = tmpdir() . '/m.txt';
    open my $fh, '>', $f or die; print {$fh} $m; close $fh;
    my $out = `promtool check metrics < $f 2>&1`;
    is($?, 0, 'promtool check metrics passes') or diag $out;
}
done_testing();
