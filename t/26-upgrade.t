# A rolling upgrade from workers of 64e5f06 (before claim ids: lease
# members are bare ids in the v1 key "lease", states
# "execs:retries:first_run_ms:claims") straight to contract v2, driven by
# their own scripts (t/data/lua-64e5f06, t/data/lua-v1's enqueue for the v1
# keys, and lib/lua) over EVAL:
# - the migration (migrate.lua) takes back the expired lease of an old
#   worker that died (one attempt charged) and leaves a live old worker's
#   lease alone; the old worker's ack of it still works on v1, and the next
#   migration step leaves no v1 key behind (before contract v2 the current
#   claim script read the old lease set itself);
# - v2 scripts never read a v1 key: a v2 claim does not see the v1 queue.
# Then every script with nan/inf in each numeric argument: refused, and
# nothing written (before: several wrote and then failed).
# DQ_T_LUA points the "current" side at other scripts.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use Time::HiRes qw(sleep);

my $root = DQTest::root();
my $new_dir = $ENV{DQ_T_LUA} || "$root/lib/lua";
my $old_dir = "$root/t/data/lua-64e5f06";
my $v1_dir = "$root/t/data/lua-v1";

sub slurp_f { my $f = shift; open my $h, '<', $f or die "$f: $!"; local $/; <$h> }
sub with_prelude {
    my ($dir, $n) = @_;
    my $body = slurp_f("$dir/$n.lua");
    my $pre = slurp_f("$dir/prelude.lua");
    $pre .= slurp_f("$dir/cold.lua") if -e "$dir/cold.lua";
    return $body =~ s/\A(#!lua[^\n]*\n)// ? $1 . $pre . $body : $pre . $body;
}
my %new = map { $_ => with_prelude($new_dir, $_) }
    qw(enqueue claim ack retry bury extend release release_claim requeue remove status migrate);
my %old = map { $_ => slurp_f("$old_dir/$_.lua") } qw(claim ack retry bury release);
$old{enqueue} = with_prelude($v1_dir, 'enqueue');

# v2 keys "dq2:{q}:*" (lib/dq_cmd.c); v1 keys "dq:{q}:*" (v1: prefix)
my %keys_new = (
    enqueue => [qw(tasks eta names stats wake v1:names cold due)],
    claim   => [qw(tasks eta leases stats wake errors conf bucket names cold due)],
    ack     => [qw(tasks eta leases stats wake errors conf names)],
    retry   => [qw(tasks eta leases stats errors wake conf)],
    bury    => [qw(tasks leases dead errors names stats conf wake)],
    extend  => [qw(leases stats)],
    release => [qw(tasks eta leases stats wake conf unrunnable)],
    release_claim => [qw(tasks eta leases stats wake conf unrunnable)],
    requeue => [qw(tasks eta dead names stats wake errors)],
    remove  => [qw(tasks eta leases dead errors names stats conf wake cold due)],
    status  => [qw(eta leases dead conf stats errors tasks due)],
    migrate => [qw(tasks eta leases dead errors names stats wake conf unrunnable),
                map { "v1:$_" } qw(tasks eta leases state dead errors names stats
                                   conf unrunnable lease wake bucket)],
);
my %keys_old = (
    enqueue => [qw(tasks eta names stats wake)],
    claim => [qw(tasks eta lease state stats wake errors conf bucket)],
    ack   => [qw(tasks lease state names stats errors conf wake)],
);

my $r = DQTest::Redis->start;
our $Q = 'up';
sub key_of {
    my ($k, $q, $v1) = @_;
    return $k =~ s/^v1:// || $v1 ? "dq:{$q}:$k" : dq_key($q, $k);
}
sub ev {
    my ($src, $keys, $v1, $q, @args) = @_;
    return $r->cmd('EVAL', $src, scalar(@$keys),
                   (map { key_of($_, $q, $v1) } @$keys), @args);
}
sub nw { my ($s, @a) = @_; ev($new{$s}, $keys_new{$s}, 0, $Q, @a) }
sub ol { my ($s, @a) = @_; ev($old{$s}, $keys_old{$s}, 1, $Q, @a) }
sub enq { my ($id) = @_; nw('enqueue', 60000, 1, 0, $id, "env-$id", '') }
sub oenq { my ($id) = @_; ol('enqueue', 60000, 1, $id, "env-$id", '', -1, -1, 0) }
# new claim: { now, next, cid, {acks}, (id env eta state)* }, state 0 (no
# history, first run now) or "retries:first_run_ms:runs:failed_ms"
sub nclaim {
    my ($cid, $lease_ms, $n) = @_;
    my $rep = nw('claim', $n // 10, $lease_ms, 0, 0, 1, 0, $cid, 0, 0, 0, 0, 0);
    die "claim: $rep->{err}" if ref $rep eq 'HASH';
    my @t = @$rep[4 .. $#$rep];
    my @out;
    while (@t) {
        my @x = splice(@t, 0, 4);
        my ($r, $f) = $x[3] eq '0' ? (0, $rep->[0]) : split /:/, $x[3];
        push @out, { id => $x[0], env => $x[1], retries => $r, first => $f };
    }
    return @out;
}
# old claim: { now, next, (id env eta token retries first execs)* }
sub oclaim {
    my ($lease_ms) = @_;
    my $rep = ol('claim', 10, $lease_ms, 0, 0, 1, 0);
    die "old claim: $rep->{err}" if ref $rep eq 'HASH';
    my @t = @$rep[2 .. $#$rep];
    my @out;
    while (@t) { my @x = splice(@t, 0, 7); push @out, { id => $x[0], env => $x[1], token => $x[3] } }
    return @out;
}
# the acks' layout of lib/dq_cmd.c dq__arg_acks: "+inf", member, id, flags
sub nack { my ($id, $cid, $first) = @_; nw('ack', 60000, 1, '+inf', "$id|$cid|$first", $id, '0')->[0] }
sub oack { my ($id, $tok) = @_; ol('ack', 60000, 1, $id, $tok, '')->[0] }
sub migrate { my $rep = nw('migrate', '0', 1000); die "migrate: $rep->{err}" if ref $rep eq 'HASH'; $rep }

# B. an old worker dies holding a lease, another one lives
oenq('b1');
my @o = oclaim(200);
is_deeply([map { $_->{id} } @o], ['b1'], 'B: an old worker claims b1 (lease 200 ms) and dies');
my $btok = $o[0]{token};
oenq('c1');
@o = oclaim(60000);
is_deeply([map { $_->{id} } @o], ['c1'], 'C: another old worker claims c1 and lives');
my @c = nclaim('cidA', 60000);
is(scalar(@c), 0, 'a v2 claim does not see the v1 queue');
sleep 0.3;
my $m = migrate();
is_deeply($m, ['0', 1, 1], 'migrate: b1 moved (its lease expired), c1 left (leased)');
@c = nclaim('cidC', 60000);
is_deeply([map { [$_->{id}, $_->{env}, $_->{retries}] } @c], [['b1', 'env-b1', 1]],
          'B: a v2 claim leases b1, one attempt charged for the dead worker');
is($r->cmd('ZCARD', "dq:{$Q}:lease"), 1, 'C: the old lease set holds only c1');
is(oack('b1', $btok), 0, "B: the dead old worker's late ack is refused");
is(nack('b1', 'cidC', $c[0]{first}), 1, 'B: the v2 holder acks');
is(oack('c1', $o[0]{token}), 1, 'C: the live old worker acks c1 on v1');
is_deeply(migrate(), ['0', 0, 0], 'migrate again: nothing to move, nothing left');
is_deeply($r->cmd('KEYS', "dq:{$Q}:*"), [], 'no v1 key left');
is($r->cmd('HGET', dq_key($Q, 'stats'), 'done'), 2,
   "both acks counted on v2 (the v1 worker's moved with the counters)");
is($r->cmd('HLEN', dq_key($Q, 'tasks')), 0, 'no task stranded');

# requeue of a dead task whose envelope is gone: refused, and nothing of
# it left (before: its last error stayed in `errors` forever)
enq('e1');
@c = nclaim('cidE', 60000);
is(nw('bury', 'e1', 'cidE', $c[0]{first}, 'boom', 0, 0, 60000, '', '1'), 1, 'e1 buried');
$r->cmd('HDEL', dq_key($Q, 'tasks'), 'e1');
is(nw('requeue', 'e1'), 0, 'requeue of e1 without envelope: 0');
is($r->cmd('HEXISTS', dq_key($Q, 'errors'), 'e1'), 0, 'its error is gone too');
is($r->cmd('ZSCORE', dq_key($Q, 'dead'), 'e1'), undef, 'and its dead entry');

# F5. nan/inf/1e999 in every numeric argument of every script: refused
# before the first write
my $N = 'nn';
my $first;
sub snapshot {
    my $ks = $r->cmd('KEYS', "dq*{$N}:*");
    return join "\n", map { "$_=" . unpack('H*', $r->cmd('DUMP', $_)) } sort @$ks;
}
{
    local $Q = $N;
    enq('t1');
    my @x = nclaim('cidN', 60000);
    is(scalar(@x), 1, 'F5: t1 leased under cidN');
    $first = $x[0]{first};
    $r->cmd('HSET', dq_key($N, 'stats'), 'clock', '1');   # any call would move it
    $r->cmd('HSET', "dq:{$N}:stats", 'done', '1');        # v1 data to migrate
}
my %calls = (   # script => [ good args, numeric positions (0-based) ]
    enqueue => [[60000, 1, 1, 'x1', 'env', '5', 1, 'nm', 0], [0, 1, 2, 5, 6, 8]],
    claim   => [[10, 60000, 0, 0, 1, 0, 'cidZ', 0, 0, 0, 60000, 1, 't1', 'cidN', $first, 0, ''],
                [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11]],
    ack     => [[60000, 1, 't1', 'cidN', $first, 0, ''], [0, 1]],
    retry   => [['t1', 'cidN', $first, 100, 'boom', '1'], [2, 3]],
    bury    => [['t1', 'cidN', $first, 'boom', 0, 0, 60000, '', '1'], [2, 4, 5, 6]],
    extend  => [[60000, 1, 't1', 'cidN', $first], [0, 1]],
    release => [[1, 0, 'stop', 't1', 'cidN', $first], [0, 1]],
    requeue => [['', '', 0, 10], [2, 3]],
    remove  => [['dead', '', 10, 60000], [2, 3]],
    status  => [[10], [0]],
    migrate => [['0', 10], [0, 1]],
);
my $before = snapshot();
for my $s (sort keys %calls) {
    my ($args, $pos) = @{ $calls{$s} };
    for my $p (@$pos) {
        for my $bad (qw(nan inf -inf 1e999)) {
            my @a = @$args;
            $a[$p] = $bad;
            my $rep = ev($new{$s}, $keys_new{$s}, 0, $N, @a);
            ok(ref $rep eq 'HASH' && $rep->{err} =~ /bad/,
               "F5: $s argument " . ($p + 1) . " = $bad refused")
                or diag explain $rep;
        }
    }
}
my $after = snapshot();
ok($before eq $after, 'F5: nothing written by any refused call (not even the clock)');
is(ev($new{release_claim}, $keys_new{release_claim}, 0, $N, 'cidN', 'nan')->{err} // '',
   'ERR release_claim: bad cursor', 'F5: release_claim refuses a bad cursor');
done_testing();
