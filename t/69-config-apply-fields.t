# What `deferred-cli config apply` promises an operator about a queue's
# fields, on a real Redis (lib/lua/configure.lua's "set" writes the fields
# it is given and leaves the others; its header said it replaced them):
#   - a field removed from the file stops applying: the file applied
#     again without it stores that field's default (a queue listed in the
#     file gets every field, docs/OPERATIONS.md), the same as a queue
#     applied with an empty block, and the claim script stops obeying the
#     old value (max_concurrent 1: the queue's other tasks are claimed);
#   - fields written on their own leave the applied ones in place: the
#     shard count written by `deferred-cli queue --shards` (and by a
#     worker healing shard 0's copy: "set shards N") keeps every applied
#     field of every shard; `config clear` removes them all, keeping
#     `shards` and `paused`, and with them the `split` the CLI writes
#     beside them: before, it was left, the conf hash with it, and
#     `deferred-cli forget` refused a cleared queue ("stored settings").
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQScripts;
use Test::More;

DQTest::require_built(DQWorker::bin('deferred-cli'), 'deferred-cli (./build.sh build)');
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
sub cli { DQWorker::cli($r, @_) }
sub key { DQTest::dq_key(@_) }
sub wfile { my ($f, $t) = @_; open my $fh, '>', $f or die; print {$fh} $t; close $fh; $f }
# the applied fields, less the two that say when and from where
sub fields {
    my %h = @{ $r->cmd('HGETALL', $_[0]) };
    delete @h{qw(applied_ms source waiting)};
    return \%h;
}

my $full = wfile("$dir/full.conf", <<'EOF2');
queue mail {
    rate 50/s;
    bucket_size 7;
    max_concurrent 1;
    retry_limit 2;
    age_limit 1d;
    min_backoff 3s;
    max_backoff 1m;
    max_doublings 4;
    timeout 9s;
}
queue fresh;
EOF2
my ($rc, $out, $err) = cli('config', 'apply', $full);
is($rc, 0, 'config apply: every field of mail') or diag $err;
my $defaults = fields(key('fresh', 'conf'));
my $applied = fields(key('mail', 'conf'));
for my $f (qw(rate bucket_size max_concurrent retry_limit age_limit_ms min_backoff_ms
              max_backoff_ms max_doublings timeout_ms)) {
    isnt($applied->{$f}, $defaults->{$f}, "mail's $f is not the default ($applied->{$f})");
}

# three tasks; the claim script obeys max_concurrent 1
my $s = DQScripts->new($r);
my $cycle = $s->cycle('mail');
DQWorker::defer($r, '-q', 'mail', 'f') for 1 .. 3;
my @got = DQScripts::claimed($cycle->('c1', 3));
is(scalar @got, 1, 'max_concurrent 1 applied: one of three claimed');

# the file edited: every field of mail removed
wfile($full, "queue mail;\nqueue fresh;\n");
($rc, $out, $err) = cli('config', 'apply', $full);
is($rc, 0, 'config apply: the same file, mail\'s fields removed') or diag $err;
is_deeply(fields(key('mail', 'conf')), $defaults,
          'every removed field back to its default (as a queue applied with none)');
@got = DQScripts::claimed($cycle->('c2', 3));
is(scalar @got, 2, 'max_concurrent no longer applies: the other two claimed');
($rc, $out) = cli('--json', 'config', 'show', 'mail');
like($out, qr/"max_concurrent":\s*0/, 'config show: max_concurrent 0 (unlimited)') or diag $out;

# fields written on their own leave the applied ones
wfile($full, "queue mail { retry_limit 5; max_concurrent 4; }\n");
($rc, $out, $err) = cli('config', 'apply', $full);
is($rc, 0, 'mail: retry_limit 5, max_concurrent 4') or diag $err;
($rc, $out, $err) = cli('queue', 'mail', '--shards', '2');
is($rc, 0, 'queue mail --shards 2') or diag $err;
for my $i (0, 1) {
    my $k = $i ? 'dq2:{mail#1}:conf' : key('mail', 'conf');
    is($r->cmd('HGET', $k, 'retry_limit'), 5, "shard $i: retry_limit kept");
    is($r->cmd('HGET', $k, 'max_concurrent'), 2, "shard $i: its share of max_concurrent 4");
    is($r->cmd('HGET', $k, 'shards'), 2, "shard $i: shards 2");
}
# as a worker heals shard 0's count: one field given, the others kept
my $configure = DQScripts::_load($ENV{DQ_T_LUA} || 'lib/lua', 'configure', 'prelude');
is($s->_eval($configure, [key('mail', 'conf'), key('mail', 'wake')], 'set', 'shards', 2), 1,
   'configure set shards 2 alone');
is($r->cmd('HGET', key('mail', 'conf'), 'retry_limit'), 5, '... retry_limit still applied');
is($r->cmd('HGET', key('mail', 'conf'), 'cfg'), 1, '... and the queue still applied');

$r->cmd('HSET', key('mail', 'conf'), 'paused', 1);
($rc, $out, $err) = cli('config', 'clear', 'mail');
is($rc, 0, 'config clear mail') or diag $err;
my %left = @{ $r->cmd('HGETALL', key('mail', 'conf')) };
delete $left{waiting};
is_deeply(\%left, { shards => 2, paused => 1 },
          'cleared: no applied field left; shards and paused kept')
    or diag explain \%left;
# a queue applied then cleared holds no settings: forget takes it
wfile($full, "queue gone { max_concurrent 3; }\n");
($rc, $out, $err) = cli('config', 'apply', $full);
is($rc, 0, 'gone: max_concurrent 3 applied') or diag $err;
($rc, $out, $err) = cli('config', 'clear', 'gone');
is($rc, 0, 'config clear gone') or diag $err;
is($r->cmd('EXISTS', key('gone', 'conf')), 0, 'gone: no conf hash left');
($rc, $out, $err) = cli('forget', 'gone');
is($rc, 0, 'forget gone: taken (it has no tasks and no settings)') or diag $err;
done_testing;
