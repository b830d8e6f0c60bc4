# Review RDL finding 4 (wip/7DL: x1 and x2 leased twice each). A build
# before the list (38667f0: DQScripts::PRELIST) deletes the listed
# tasks by id (their values only) and then forgets the queue (its forget
# knows no list: it DELs stats and leaves the list). The producer's
# idempotent resend of the same batch goes to eta (due_until gone). A
# claim that reads an id from the list and from eta in one read leases it
# once (claim's within-one-read check); across claims this is the
# documented mixed-fleet bound (docs/CONTRACT.md "The due list").
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, DQScripts::PRELIST);
my $q = 'of';
sub k { DQTest::dq_key($q, $_[0]) }

$new->cycle($q)->('c0', 1);                          # the list on
$new->enqueue_plain($q, qw(x1 x2));                  # listed
for my $id (qw(x1 x2)) {                             # old delete by id
    is($old->v2($q, 'remove', 'id', $id, 1, 60000), 1, "old delete $id: 'waiting'");
}
is($old->v2($q, 'forget'), 1, 'old forget: done (the list left)');
is($r->cmd('EXISTS', k('due')), 1, '(the stale list is still there)');
$new->enqueue_plain($q, qw(x1 x2));                  # the resend
my %n;
$n{$_->{id}}++ for DQScripts::claimed($new->cycle($q)->('c1', 10));
$n{$_->{id}}++ for DQScripts::claimed($new->cycle($q)->('c2', 10));
is($n{x1}, 1, 'x1 leased once') or diag(explain \%n);
is($n{x2}, 1, 'x2 leased once');
done_testing();
