# A rolling upgrade: workers of 64e5f06 (before claim ids: lease members are
# bare ids, states "execs:retries:first_run_ms:claims") and current workers
# on one queue at once, both directions, driven by their own scripts
# (t/data/lua-64e5f06 and lib/lua) over EVAL:
# - an old claim must never take a current lease (before: it read the
#   member "id|claim" as a task id, leased it without envelope, and the
#   real task was stranded in `tasks` forever);
# - a current claim takes back the expired lease of an old worker that
#   died, and leaves a live old worker's lease alone.
# Then every script with nan/inf in each numeric argument: refused, and
# nothing written (before: several wrote and then failed).
# DQ_T_LUA / DQ_T_LEASE point the "current" side at other scripts / another
# lease key (to show the old behaviour: the scripts of eb8bb34 and "lease").
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use Time::HiRes qw(sleep);

my $root = DQTest::root();
my $new_dir = $ENV{DQ_T_LUA} || "$root/lib/lua";
my $old_dir = "$root/t/data/lua-64e5f06";
my $lease = $ENV{DQ_T_LEASE} || 'leases';

sub slurp_f { my $f = shift; open my $h, '<', $f or die "$f: $!"; local $/; <$h> }
my %new;
for my $n (qw(enqueue claim ack retry bury extend release release_claim requeue remove status)) {
    my $body = slurp_f("$new_dir/$n.lua");
    my $pre = slurp_f("$new_dir/prelude.lua") . slurp_f("$new_dir/cold.lua");
    if ($body =~ s/\A(#!lua[^\n]*\n)//) { $new{$n} = $1 . $pre . $body }
    else { $new{$n} = $pre . $body }
}
my %old = map { $_ => slurp_f("$old_dir/$_.lua") } qw(claim ack retry bury release);

my %keys_new = (
    enqueue => [qw(tasks eta names stats wake)],
    claim   => [qw(tasks eta), $lease, qw(state stats wake errors conf bucket lease)],
    ack     => [qw(tasks), $lease, qw(state names stats errors conf wake eta)],
    retry   => [qw(eta), $lease, qw(state stats errors wake conf)],
    bury    => [qw(tasks), $lease, qw(state dead errors names stats conf wake)],
    extend  => [$lease, qw(state stats)],
    release => [qw(eta), $lease, qw(state stats wake conf unrunnable)],
    release_claim => [qw(eta), $lease, qw(state stats wake conf unrunnable)],
    requeue => [qw(tasks eta dead state names stats wake errors)],
    remove  => [qw(tasks eta), $lease, qw(state dead errors names stats conf wake)],
    status  => [qw(eta), $lease, qw(dead conf stats errors tasks)],
);
my %keys_old = (
    claim => [qw(tasks eta lease state stats wake errors conf bucket)],
    ack   => [qw(tasks lease state names stats errors conf wake)],
);

my $r = DQTest::Redis->start;
our $Q = 'up';
sub ev {
    my ($src, $keys, $q, @args) = @_;
    return $r->cmd('EVAL', $src, scalar(@$keys),
                   (map { "dq:{$q}:$_" } @$keys), @args);
}
sub nw { my ($s, @a) = @_; ev($new{$s}, $keys_new{$s}, $Q, @a) }
sub ol { my ($s, @a) = @_; ev($old{$s}, $keys_old{$s}, $Q, @a) }
sub enq { my ($id) = @_; nw('enqueue', 60000, 1, $id, "env-$id", '', -1, -1, 0) }
# new claim: { now, next, cid, (id env eta retries first runs failed)* }
sub nclaim {
    my ($cid, $lease_ms, $n) = @_;
    my $rep = nw('claim', $n // 10, $lease_ms, 0, 0, 1, 0, $cid, 0, 0, 0);
    die "claim: $rep->{err}" if ref $rep eq 'HASH';
    my @t = @$rep[3 .. $#$rep];
    my @out;
    while (@t) { my @x = splice(@t, 0, 7); push @out, { id => $x[0], env => $x[1], retries => $x[3] } }
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
sub nack { my ($id, $cid) = @_; nw('ack', 60000, 1, $id, $cid, '')->[0] }
sub oack { my ($id, $tok) = @_; ol('ack', 60000, 1, $id, $tok, '')->[0] }

# A. a current worker's lease expires (its holder is slow or dead) while an
# old worker claims
enq('a1');
my @c = nclaim('cidA', 200);
is(scalar(@c), 1, 'A: a current worker claims a1 (lease 200 ms)');
sleep 0.3;
my @o = oclaim(60000);
is(scalar(@o), 0, 'A: an old claim takes nothing (the expired current lease is not its to take)')
    or diag explain \@o;
is($r->cmd('ZSCORE', "dq:{$Q}:eta", 'a1|cidA'), undef, 'A: no lease member in the ETA set');
@c = nclaim('cidB', 60000);
is_deeply([map { [$_->{id}, $_->{env}] } @c], [['a1', 'env-a1']],
          'A: a current claim takes it back and leases it with its envelope');
is(nack('a1', 'cidB'), 1, 'A: acked');

# B. an old worker dies holding a lease: a current claim takes it back
enq('b1');
@o = oclaim(200);
is_deeply([map { $_->{id} } @o], ['b1'], 'B: an old worker claims b1 (lease 200 ms) and dies');
sleep 0.3;
@c = nclaim('cidC', 60000);
is_deeply([map { [$_->{id}, $_->{env}, $_->{retries}] } @c], [['b1', 'env-b1', 1]],
          'B: a current claim takes the expired old lease back (one attempt charged) and leases it');
is($r->cmd('ZCARD', "dq:{$Q}:lease"), 0, 'B: the old lease set is empty');
is(oack('b1', $o[0]{token}), 0, "B: the dead old worker's late ack is refused");
is(nack('b1', 'cidC'), 1, 'B: the current holder acks');

# C. a live old worker and a live current worker side by side
enq('c1');
@o = oclaim(60000);
is_deeply([map { $_->{id} } @o], ['c1'], 'C: an old worker claims c1');
enq('c2');
@c = nclaim('cidD', 60000);
is_deeply([map { $_->{id} } @c], ['c2'], "C: a current claim takes c2, not the old worker's c1");
enq('c3');
is(scalar(oclaim(60000)), 1, 'C: the old worker claims c3');
is(oack('c1', $o[0]{token}), 1, 'C: the old worker acks c1');
is(nack('c2', 'cidD'), 1, 'C: the current worker acks c2');

# every task of A to C done once, except c3 (held by the live old worker)
is_deeply([sort keys %{ { @{ $r->cmd('HGETALL', "dq:{$Q}:tasks") } } }], ['c3'],
          'no task stranded: only c3 (leased by the old worker) is left');
is($r->cmd('ZCARD', "dq:{$Q}:eta"), 0, 'nothing in the ETA set');

# requeue of a dead task whose envelope is gone: refused, and nothing of
# it left (before: its last error stayed in `errors` forever)
enq('e1');
@c = nclaim('cidE', 60000);
is(nw('bury', 'e1', 'cidE', 'boom', 0, 0, 60000, '', '1'), 1, 'e1 buried');
$r->cmd('HDEL', "dq:{$Q}:tasks", 'e1');
is(nw('requeue', 'e1'), 0, 'requeue of e1 without envelope: 0');
is($r->cmd('HEXISTS', "dq:{$Q}:errors", 'e1'), 0, 'its error is gone too');
is($r->cmd('HEXISTS', "dq:{$Q}:state", 'e1'), 0, 'and its state');

# F5. nan/inf/1e999 in every numeric argument of every script: refused
# before the first write
my $N = 'nn';
sub snapshot {
    my $ks = $r->cmd('KEYS', "dq:{$N}:*");
    return join "\n", map { "$_=" . unpack('H*', $r->cmd('DUMP', $_)) } sort @$ks;
}
{
    local $Q = $N;
    enq('t1');
    my @x = nclaim('cidN', 60000);
    is(scalar(@x), 1, 'F5: t1 leased under cidN');
    $r->cmd('HSET', "dq:{$N}:stats", 'clock', '1');   # any call would move it
}
my %calls = (   # script => [ good args, numeric positions (0-based) ]
    enqueue => [[60000, 1, 'x1', 'env', '', -1, -1, 0], [0, 1, 5, 6, 7]],
    claim   => [[10, 60000, 0, 0, 1, 0, 'cidZ', 0, 0, 0], [0, 1, 2, 3, 4, 5, 7, 8, 9]],
    ack     => [[60000, 1, 't1', 'cidN', ''], [0, 1]],
    retry   => [['t1', 'cidN', 100, 'boom', '1'], [2]],
    bury    => [['t1', 'cidN', 'boom', 0, 0, 60000, '', '1'], [3, 4, 5]],
    extend  => [[60000, 1, 't1', 'cidN'], [0, 1]],
    release => [[1, 0, 'stop', 't1', 'cidN'], [0, 1]],
    requeue => [['', '', 0, 10], [2, 3]],
    remove  => [['dead', '', 10, 60000], [2, 3]],
    status  => [[10], [0]],
);
my $before = snapshot();
for my $s (sort keys %calls) {
    my ($args, $pos) = @{ $calls{$s} };
    for my $p (@$pos) {
        for my $bad (qw(nan inf -inf 1e999)) {
            my @a = @$args;
            $a[$p] = $bad;
            my $rep = ev($new{$s}, $keys_new{$s}, $N, @a);
            ok(ref $rep eq 'HASH' && $rep->{err} =~ /bad/,
               "F5: $s argument " . ($p + 1) . " = $bad refused")
                or diag explain $rep;
        }
    }
}
my $after = snapshot();
ok($before eq $after, 'F5: nothing written by any refused call (not even the clock)');
is(ev($new{release_claim}, $keys_new{release_claim}, $N, 'cidN', 'nan')->{err} // '',
   'ERR release_claim: bad cursor', 'F5: release_claim refuses a bad cursor');
done_testing();
