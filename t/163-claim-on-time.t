# deferred-worker: an idle child wakes for a delayed task when it is due,
# not before. The claim reply's next_ms counts from the script's clock
# (now_ms); the child used to count it from the moment it sent the claim,
# up to a round trip and a ms early: that claim found nothing due ("claimed
# 0", next in a ms or two) and the task waited for another round trip.
# 25 tasks 120 ms apart, one child, nothing else to do: every claim that
# finds nothing says a wait close to the gap to the next task (or the
# idle look), never one of a few ms.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir,
                               args => [qw(--log_level debug)]);
sleep 0.3;    # idle: the first claim found nothing

my $rec = "$dir/eta";
my %eta;
my $n = 25;
for my $i (0 .. $n - 1) {
    my ($id, $eta) = DQWorker::defer($r, '--countdown', 500 + 120 * $i,
                                     'record', $rec, $i);
    $eta{$id} = $eta;
}
my @rec = DQWorker::wait_records($rec, $n, 20);
is(scalar @rec, $n, "the $n countdown tasks ran");
my @late = sort { $a <=> $b } map { $_->{ms} - $eta{ $_->{id} } } @rec;
cmp_ok($late[0], '>=', 0, 'none ran early');
diag("lateness ms: min $late[0], median $late[$n / 2], max $late[-1]");

my @early = grep { /claimed 0 of \d+ on queue default, next in (\d+) ms/
                   && $1 < 20 } split /\n/, DQWorker::log_text($w);
is(scalar @early, 0, 'no claim came before its task was due')
    or diag(join("\n", @early));

is(DQWorker::stop_worker($w), 0, 'SIGTERM: worker exits 0');
done_testing();
