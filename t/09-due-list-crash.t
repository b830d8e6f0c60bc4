# Issue #12, the due list (dq2:{q}:due) across a crash: a Redis killed -9
# whose AOF lost its last writes (cut inside each of its last MULTI/EXEC
# blocks: Redis 7.0 writes a script's effects as one, and on a truncated
# AOF drops a block it did not read whole), and a replica promoted after
# its master was killed -9. A workload through every script that writes the
# list (enqueue onto it, claims and cycles that take from it and from eta,
# remove by id, the list lapsing and moved back by enqueue, unlist) runs
# first; on every data set Redis comes back with, each task is in exactly
# one of eta, the list, leases, dead, and every listed id has a marker
# before it. Passes on the scripts before the list too (then nothing is
# listed): it guards that the list and eta are written by one script call.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQScripts;
use File::Copy qw(copy);
use File::Path qw(make_path);

my $dir = DQTest::tmpdir();
my @aof = ('--appendonly', 'yes', '--appendfsync', 'always');
make_path("$dir/m");
my $m = DQTest::Redis->start(dir => "$dir/m", args => \@aof);
my $rdir = "$dir/r";
make_path($rdir);
my $rep = DQTest::Redis->start(dir => $rdir);
$rep->cmd('REPLICAOF', '127.0.0.1', $m->port);
DQTest::wait_for(sub { ($rep->cmd('INFO', 'replication') =~ /master_link_status:(\w+)/)[0] eq 'up' }, 20)
    or BAIL_OUT('the replica did not sync');

my $q = 'dc';
my $s = DQScripts->new($m);
my $cycle = $s->cycle($q, lease => 600000);
my $k = sub { DQTest::dq_key($q, $_[0]) };
my $env = DQScripts::env2();
my $seq = 0;
sub enq {
    my ($n, $when) = @_;
    my @ids = map { 'x' . $seq++ } 1 .. $n;
    $s->v2($q, 'enqueue', 60000, $n, 0, (map { ($_, $env) } @ids),
           ($when // '') x $n);
    return @ids;
}

# the workload
my @held;               # leases to ack: id, claim, first, 0, ''
my $calls = 0;
srand(9);
for my $round (1 .. 60) {
    my $r = rand;
    if ($round % 17 == 0) {
        $m->cmd('HSET', $k->('stats'), 'due_until', 1);     # lapsed
        enq(2);                                              # moves back
        $cycle->('on' . $round, 0);                          # on again
    } elsif ($round == 40) {
        $s->v2($q, 'unlist');
        $cycle->('on' . $round, 0);
    } elsif ($r < 0.4) {
        enq(1 + int(rand 40));
    } elsif ($r < 0.5) {
        enq(1, 0);                                           # eta, old ETA
    } elsif ($r < 0.85) {
        my $rep = $cycle->('c' . $round, 1 + int(rand 30), splice(@held));
        push @held, map { ($_->{id}, 'c' . $round, $_->{first}, 0, '') }
                    DQScripts::claimed($rep);
    } else {
        my @l = grep { !/^@/ } @{ $m->cmd('LRANGE', $k->('due'), 0, 50) };
        $s->v2($q, 'remove', 'id', $l[rand @l], 1, 0) if @l;
    }
    $calls++;
}
# the list on and holding ids at the crash, leases held, eta written
$cycle->('on-last', 0);
enq(25);
enq(3, 0);
my $listed = grep { !/^@/ } @{ $m->cmd('LRANGE', $k->('due'), 0, -1) };
ok($listed > 0, "before the crash: $listed ids listed");
ok($m->cmd('ZCARD', $k->('leases')) > 0, 'leases held');
ok($m->cmd('ZCARD', $k->('eta')) > 0, 'eta written');
DQTest::wait_for(sub { $rep->cmd('DBSIZE') == $m->cmd('DBSIZE')
                       && $rep->cmd('HGET', $k->('stats'), 'enqueued')
                          eq $m->cmd('HGET', $k->('stats'), 'enqueued') }, 10);

# every task in exactly one place; every listed id after a marker
sub one_place {
    my ($r, $what) = @_;
    my %at;
    $at{$_}++ for @{ $r->cmd('ZRANGE', $k->('eta'), 0, -1) };
    my $l = $r->cmd('LRANGE', $k->('due'), 0, -1);
    my @listed = grep { !/^@/ } @$l;
    $at{$_}++ for @listed;
    $at{ (split /\|/)[0] }++ for @{ $r->cmd('ZRANGE', $k->('leases'), 0, -1) };
    $at{$_}++ for @{ $r->cmd('ZRANGE', $k->('dead'), 0, -1) };
    my @tasks = @{ $r->cmd('HKEYS', $k->('tasks')) };
    my %t = map { $_ => 1 } @tasks;
    my @bad = ((grep { ($at{$_} // 0) != 1 } @tasks), grep { !$t{$_} } keys %at);
    is("@bad", '', "$what: every task in exactly one place (" . scalar(@tasks) . ' tasks)');
    ok(!@$l || $l->[0] =~ /^@/, "$what: the list starts with a marker");
    is($r->cmd('HGET', $k->('stats'), 'due_n') // 0, scalar(@listed),
       "$what: due_n = the listed ids");
}
one_place($m, 'before the crash');

# a replica promoted after its master was killed -9
DQTest::stop_pid($m->pid, 'KILL');
$rep->cmd('REPLICAOF', 'NO', 'ONE');
one_place($rep, 'the replica promoted');
$rep->stop;

# the master's AOF cut inside each of its last 8 MULTI blocks
my ($incr) = glob("$dir/m/appendonlydir/*.incr.aof");
my $text = DQTest::slurp($incr);
my @multi;
my $at = -1;
push @multi, $at while ($at = index($text, "*1\r\n\$5\r\nMULTI\r\n", $at + 1)) >= 0;
ok(@multi >= 8, scalar(@multi) . ' script calls in the AOF');
for my $i (1 .. 8) {
    my $start = $multi[-$i];
    my $end = $i == 1 ? length($text) : $multi[-$i + 1];
    my $cut = $start + int(($end - $start) * 0.6);       # inside the block
    my $d = "$dir/cut$i";
    make_path("$d/appendonlydir");
    copy($_, "$d/appendonlydir/") for glob("$dir/m/appendonlydir/*");
    my ($f) = glob("$d/appendonlydir/*.incr.aof");
    open my $h, '>', $f or die "$f: $!";
    binmode $h;
    print {$h} substr($text, 0, $cut);
    close $h;
    my $r = DQTest::Redis->start(dir => $d, args => \@aof);
    one_place($r, "AOF cut inside the last block but " . ($i - 1));
    $r->stop;
}
done_testing();
