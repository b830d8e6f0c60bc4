# Issue #12, the due list (dq2:{q}:due) on a MIGRATING slot (Redis 7.0
# stops a script at its first touch of a key missing on the node, its
# writes kept; a declared key missing is answered TRYAGAIN/ASK before the
# script runs). Every script that writes the list, with every declared key
# on the source: the call runs to its end and leaves each task in exactly
# one place (eta, the list, leases, dead), the list's count right:
# - a claim that takes the list's last ids (the list deleted, last);
# - a cycle whose acks empty the lease set (a stall: the list untouched);
# - an enqueue onto the list; an enqueue that finds the list off and moves
#   it back to eta (and deletes it);
# - remove waiting (the list's head, then eta; the list deleted);
# - deferred-cli unlist's script;
# and with the list already moved to the target (MIGRATE of the due key
# alone): claim and enqueue are refused before they run, nothing written.
# On 38667f0 (DQ_T_LUA=git:38667f0) the scripts never write the list.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQCluster; use DQScripts;
my $c = DQCluster->start(plain => 1);
my $n = 0;

# every id of tasks in exactly one of eta, the due list, leases, dead;
# no listed id without a task; due_n = the listed ids
sub one_place {
    my ($A, $q, $what) = @_;
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    my %at;
    $at{$_}++ for @{ $A->cmd('ZRANGE', $k->('eta'), 0, -1) };
    my @listed = grep { !/^@/ } @{ $A->cmd('LRANGE', $k->('due'), 0, -1) };
    $at{$_}++ for @listed;
    $at{ (split /\|/)[0] }++ for @{ $A->cmd('ZRANGE', $k->('leases'), 0, -1) };
    $at{$_}++ for @{ $A->cmd('ZRANGE', $k->('dead'), 0, -1) };
    delete $at{zz};         # the fillers of DQScripts::keys_exist
    my @tasks = grep { $_ ne 'zz' } @{ $A->cmd('HKEYS', $k->('tasks')) };
    my @bad = grep { ($at{$_} // 0) != 1 } @tasks;
    my %t = map { $_ => 1 } @tasks;
    push @bad, grep { !$t{$_} } keys %at;
    is("@bad", '', "$what: every task in exactly one place");
    is($A->cmd('HGET', $k->('stats'), 'due_n') // 0, scalar(@listed),
       "$what: due_n = the listed ids (" . scalar(@listed) . ")");
}

# a queue on its own slot owner A, the list on (a claim ran), $ids listed
sub setup {
    my (@ids) = @_;
    my $q = 'dm' . $n++;
    my ($A, $B, $s, $k) = DQScripts::at_owner($c, $q);
    my $cycle = $s->cycle($q);
    $cycle->('c0', 1);                           # a worker: the list on
    $s->v2($q, 'enqueue', 60000, scalar(@ids), 0,
           (map { ($_, DQScripts::env2()) } @ids), ('') x @ids) if @ids;
    # every declared key exists on A (the list: its marker stays)
    $A->cmd('RPUSH', $k->('due'), '@0') unless @ids;
    $A->cmd('HSET', $k->('tasks'), 'zz', 'x') unless @ids;
    DQScripts::keys_exist($A, $q, qw(eta leases dead errors bucket conf names
                                     wake cold));
    $A->cmd('ZADD', "dq:{$q}:names", 9e15, 'zz');    # contract v1's names
    return ($q, $A, $B, $s, $k, $cycle);
}

{
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(a1 a2 a3));
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $cycle->('c1', 10) });
    is($err, '', 'claim of the last listed ids: answered');
    is(join(' ', map { $_->{id} } DQScripts::claimed($rep)), 'a1 a2 a3',
       '... took them');
    is($A->cmd('EXISTS', $k->('due')), 0, '... the list deleted');
    one_place($A, $q, 'claim');
}
{
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(b1 b2));
    my ($t) = DQScripts::claimed($cycle->('c1', 1));        # b1 leased
    $A->cmd('ZREM', $k->('leases'), 'zz');                  # b1's lease alone
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $cycle->('c2', 5, 'b1', 'c1', $t->{first}, 0, '') });
    is($err, '', 'a cycle whose acks empty the leases and whose claim empties the list: answered');
    is_deeply($rep && $rep->[3], [1], '... acked b1');
    # the acks deleted the lease set: a stall (claim.lua), b2 stays listed
    is(join(' ', map { $_->{id} } DQScripts::claimed($rep)), '',
       '... a stall: nothing claimed');
    is_deeply([grep { !/^@/ } @{ $A->cmd('LRANGE', $k->('due'), 0, -1) }],
              ['b2'], '... b2 still listed');
    one_place($A, $q, 'cycle');
}
{
    my ($q, $A, $B, $s, $k, $cycle) = setup();
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $s->v2($q, 'enqueue', 60000, 3, 0,
               (map { ($_, DQScripts::env2()) } qw(e1 e2 e3)), '', '', '') });
    is($err, '', 'an enqueue onto the list: answered');
    is_deeply([grep { !/^@/ } @{ $A->cmd('LRANGE', $k->('due'), 0, -1) }],
              [qw(e1 e2 e3)], '... listed');
    one_place($A, $q, 'enqueue');
}
{
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(f1 f2));
    $A->cmd('HSET', $k->('stats'), 'due_until', 1);         # lapsed
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $s->v2($q, 'enqueue', 60000, 1, 0, 'f3', DQScripts::env2(), '') });
    is($err, '', 'an enqueue that moves the list back: answered');
    is($A->cmd('EXISTS', $k->('due')), 0, '... the list deleted');
    is($A->cmd('ZCARD', $k->('eta')), 4, '... f1 f2 f3 in eta (and the filler)');
    one_place($A, $q, 'move back');
}
{
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(g1 g2));
    $A->cmd('ZADD', $k->('eta'), 5, 'g0');
    $A->cmd('HSET', $k->('tasks'), 'g0', DQScripts::env2());
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $s->v2($q, 'remove', 'waiting', '', 3, 0) });
    is($err, '', 'remove waiting across the list and eta: answered');
    is_deeply($rep, [3, 1], '... removed 3 (max: more may be left)');
    is($A->cmd('EXISTS', $k->('due')), 0, '... the list deleted');
    is($A->cmd('HGET', $k->('stats'), 'deleted'), 3, '... counted');
    one_place($A, $q, 'remove');
}
{
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(h1 h2));
    my ($rep, $err) = $c->while_migrating($c->slot($k->('tasks')), $A, $B, sub {
        $s->v2($q, 'unlist') });
    is($err, '', 'unlist: answered');
    is_deeply($rep, [2, 0], '... moved 2, none left');
    one_place($A, $q, 'unlist');
}
{
    # the list moved to the target first: refused before running
    my ($q, $A, $B, $s, $k, $cycle) = setup(qw(i1 i2));
    my $slot = $c->migrating($c->slot($k->('tasks')), $A, $B);
    is($A->cmd('MIGRATE', '127.0.0.1', $B->{port}, $k->('due'), 0, 5000), 'OK',
       'the list moved to the target');
    my $before = $A->cmd('HGETALL', $k->('stats'));
    my $rep = eval { $cycle->('c1', 5) };
    like($@, qr/TRYAGAIN|ASK/, 'claim: refused before it runs');
    $rep = eval { $s->v2($q, 'enqueue', 60000, 1, 0, 'i3', DQScripts::env2(), '') };
    like($@, qr/TRYAGAIN|ASK/, 'enqueue: refused before it runs');
    is_deeply($A->cmd('HGETALL', $k->('stats')), $before, '... nothing written (stats as before)');
    is($A->cmd('ZCARD', $k->('leases')), 1, '... no lease (the filler alone)');
    is($A->cmd('HEXISTS', $k->('tasks'), 'i3'), 0, '... no task stored');
    $B->cmd('ASKING');
    my $kv = $B->cmd('LRANGE', $k->('due'), 0, -1);
    $c->stable($slot, $A, $B);
    $A->cmd('RPUSH', $k->('due'), @$kv);
    one_place($A, $q, 'moved back by hand');
}
done_testing;
