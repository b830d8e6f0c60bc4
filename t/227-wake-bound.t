# The wake list stays bounded and cheap when nobody pops it (producers
# running before any worker, or a busy fleet with no worker sleeping):
# lib/lua/prelude.lua dq_wake cuts it back to 8 tokens only past 16, so
# such a list costs one LTRIM every 8 pushes, not one a push (issue #12:
# ~5.5k Redis instructions an enqueue call). A real redis-server, the
# scripts of lib/lua:
#   1. 100 enqueue calls of due tasks, no worker: the list never holds more
#      than 16 tokens, never fewer than 1, and at most 100/8 + 1 LTRIMs ran;
#   2. a worker's BLPOP still gets a token at once after those calls.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;

my $r = DQTest::Redis->start(dir => DQTest::tmpdir());
my $s = DQScripts->new($r);
my $q = 'wb';
my $wake = dq_key($q, 'wake');

$r->cmd('CONFIG', 'RESETSTAT');
my ($lo, $hi) = (1e9, 0);
for my $i (1 .. 100) {
    $s->enqueue_plain($q, "w$i");
    my $n = $r->cmd('LLEN', $wake);
    $lo = $n if $n < $lo;
    $hi = $n if $n > $hi;
}
cmp_ok($hi, '<=', 16, "1: the list never holds more than 16 tokens ($hi)");
cmp_ok($lo, '>=', 1, "1: ... and always one at least ($lo)");
my ($ltrim) = ($r->cmd('INFO', 'commandstats') =~ /cmdstat_ltrim:calls=(\d+)/);
$ltrim //= 0;
cmp_ok($ltrim, '<=', 100 / 8 + 1, "1: $ltrim LTRIM calls for 100 pushes");
cmp_ok($ltrim, '>=', 1, '1: ... but the list was cut');

my $got = $r->cmd('BLPOP', $wake, 1);
is(ref $got eq 'ARRAY' ? $got->[1] : undef, '1', '2: a BLPOP gets a token at once');

done_testing();
