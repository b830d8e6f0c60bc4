# The due list's stale entries, as review RFDL found them (issue #12):
#   A. this build's bulk delete of a list holding an id that a build before
#      the list deleted by id (its value gone, its delete counted): the
#      bulk delete answers and counts only the tasks it removed, as claim
#      and dq_due_back count such an id nowhere (failed before: 3 and 4);
#   B. the documented mixed-fleet bound (CONTRACT.md "Stale entries of
#      older builds, and the mixed-fleet bound"), asserted exactly so a
#      change to it is noticed: the same plain id resent with a countdown
#      after such a delete is leased at once from its stale list entry,
#      before its ETA; the ack leaves its eta entry without a value, which
#      a claim at the ETA leases without an envelope (a worker buries it:
#      "missing envelope").
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);

{
    my $q = 'pa';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $new->cycle($q)->('c0', 1);                 # a claim: the list on
    $new->enqueue_plain($q, qw(a1 a2 a3));
    is($r->cmd('LLEN', $k->('due')), 4, 'A: a1-a3 listed (and a marker)');
    is($old->v2($q, 'remove', 'id', 'a2', 1, 60000), 1,
       'A: a pre-list build deletes a2 by id');
    is($r->cmd('HGET', $k->('stats'), 'deleted'), 1, 'A: counted by it');
    is_deeply($new->v2($q, 'remove', 'waiting', '', 100, 60000), [2, 0],
              'A: the bulk delete answers 2 removed (a1, a3), none left');
    is($r->cmd('HGET', $k->('stats'), 'deleted'), 3,
       'A: deleted 3: a2 counted once');
    is($r->cmd('EXISTS', $k->('due')), 0, 'A: the list gone');
}

{
    my $q = 'pc';
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $new->cycle($q)->('c0', 1);
    $new->enqueue_plain($q, qw(z1 z2));
    $old->v2($q, 'remove', 'id', 'z1', 1, 60000);
    $new->enqueue2($q, 60000, 'z1', DQScripts::env2(), countdown => 1000);
    ok(defined $r->cmd('ZSCORE', $k->('eta'), 'z1'),
       'B: z1 resent with a 1 s countdown: stored on eta');
    my @c = DQScripts::claimed($new->cycle($q)->('c1', 10));
    my ($z) = grep { $_->{id} eq 'z1' } @c;
    ok($z && defined $z->{env},
       'B (bound): z1 leased now from its stale list entry, before its ETA');
    $new->cycle($q)->('c2', 0, 'z1', 'c1', $z->{first}, 0, undef) if $z;
    is($r->cmd('HEXISTS', $k->('tasks'), 'z1'), 0,
       'B (bound): its ack deleted the value');
    ok(defined $r->cmd('ZSCORE', $k->('eta'), 'z1'),
       'B (bound): its eta entry stays');
    select(undef, undef, undef, 1.2);
    my @d = DQScripts::claimed($new->cycle($q)->('c3', 10));
    ok(scalar(grep { $_->{id} eq 'z1' && !defined $_->{env} } @d),
       'B (bound): at its ETA z1 is leased without an envelope');
}
done_testing();
