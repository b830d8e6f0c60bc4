# Review RDL finding 7 (wip/7DL, failed there): an older build's delete by id of a listed task
# (38667f0's remove.lua: HDEL of the value, stats deleted + 1) is counted
# again when the move back (unlist, a lapsed enqueue) or a claim drops
# the valueless id: one task, "deleted" 2.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQScripts;
my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);
for my $how (qw(unlist claim)) {
    my $q = "dt$how";
    my $k = sub { DQTest::dq_key($q, $_[0]) };
    $new->cycle($q)->('c0', 1);
    $new->enqueue_plain($q, qw(a1 a2 a3));
    is($old->v2($q, 'remove', 'id', 'a2', 1, 60000), 1, "$how: old delete of a2");
    if ($how eq 'unlist') { $new->v2($q, 'unlist') }
    else { $new->cycle($q)->('c1', 10) }
    is($r->cmd('HGET', $k->('stats'), 'deleted'), 1, "$how: one delete counted once");
}
done_testing();
