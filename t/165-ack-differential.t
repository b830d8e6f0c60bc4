# Issue 12 (P1): the acks' new lease check (one ZADD XX GT CH +inf and one
# ZREMRANGEBYSCORE for all of a call's acks, instead of one ZREM each) and
# the claim's conf "waiting" kept instead of deleted and written again
# must not change what a call does. Random queue states (tasks, some
# named, leased by one claim, some of those leases expired and taken
# again by a second claim, or given back) are built once, copied to a
# second queue key by key, and the same ack or cycle call (acks: held,
# late, fenced, a wrong first_run_ms, duplicates, unknown ids; cycles with
# max_concurrent) runs on one copy with the scripts of 70e31b6 (read
# from the git history: DQScripts->at_rev) and on the other with lib/lua, both seeing the same
# time (the queue's stored clock, a few seconds ahead). The replies and
# every key's content must be the same. DQ_FUZZ_ROUNDS (default 400)
# sets the rounds; DQ_FUZZ_SEED the seed.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQScripts;
use Time::HiRes qw(sleep);

my $r = DQTest::Redis->start;
# each EVAL sends a whole script: without this, delayed ACKs cost ~40 ms
# a call
use Socket qw(IPPROTO_TCP TCP_NODELAY);
setsockopt($r->_sock, IPPROTO_TCP, TCP_NODELAY, 1);
my $new = DQScripts->new($r);
my $old = DQScripts->at_rev($r, '70e31b61cea6fc1219109697fc1d59d26fdadb01');
my $rounds = $ENV{DQ_FUZZ_ROUNDS} || 400;
my $seed = $ENV{DQ_FUZZ_SEED} || time;
srand($seed);
diag("seed $seed, $rounds rounds");
my @KINDS = qw(tasks eta leases stats wake errors conf bucket names cold due);
sub key { DQTest::dq_key($_[0], $_[1]) }

sub enq {
    my ($q, $id, $name) = @_;
    $new->enqueue2($q, 3600000, $id, DQScripts::env2($name), name => $name);
}
# claim: max_n, lease_ms, reclaim 0, rate 0, bucket 1, max_concurrent,
# claim id, backoff 0 0 0, tombstone, acks
# (the scripts of 70e31b6 take 5 values per ack, lib/lua's the layout
# of DQScripts::acks)
sub cyc {
    my ($s, $q, $cid, $n, $lease, $conc, $tomb, @acks) = @_;
    return $s->v2($q, 'claim', $n, $lease, 0, 0, 1, $conc, $cid, 0, 0, 0,
                  $tomb, $s == $old ? (@acks / 5, @acks)
                                    : DQScripts::acks(@acks));
}
sub tasks_of {                       # { id => first_run_ms } of a reply
    my ($rep) = @_;
    return map { $_->{id} => $_->{first} } DQScripts::claimed($rep);
}
# a reply of lib/lua's claim in the 7 values a task of 70e31b6's (id,
# envelope, eta, retries, first_run_ms, runs, failed_ms)
sub as7 {
    my ($rep) = @_;
    return $rep unless ref $rep eq 'ARRAY';
    return [@$rep[0 .. 3], map { ($_->{id}, $_->{env}, $_->{eta},
                                   $_->{retries}, $_->{first}, $_->{runs},
                                   $_->{failed}) } DQScripts::claimed($rep)];
}
# every key of queue q as text, the queue's name taken out
sub dump_q {
    my ($q) = @_;
    my @out;
    for my $k (@KINDS) {
        my $key = key($q, $k);
        my $t = $r->cmd('TYPE', $key);
        my $v;
        if ($t eq 'zset') {
            $v = join ',', @{ $r->cmd('ZRANGE', $key, 0, -1, 'WITHSCORES') };
        } elsif ($t eq 'hash') {
            my %h = @{ $r->cmd('HGETALL', $key) };
            delete $h{clock} if $k eq 'stats';
            $v = join ',', map { "$_=" . unpack('H*', $h{$_}) } sort keys %h;
        } elsif ($t eq 'list' && $k eq 'wake') {
            # tokens, counted up to 8: the old build cut the list to 8 at
            # every push past 8, this one past 16 (t/227)
            my $n = $r->cmd('LLEN', $key);
            $v = 'tokens ' . ($n > 8 ? 8 : $n);
        } elsif ($t eq 'list') {
            $v = join ',', @{ $r->cmd('LRANGE', $key, 0, -1) };
        } else {
            $v = $t;
        }
        push @out, "$k: $v";
    }
    return join "\n", @out;
}
sub flat { ref $_[0] eq 'ARRAY' ? '[' . join(' ', map { flat($_) } @{ $_[0] }) . ']'
           : ref $_[0] eq 'HASH' ? "err:$_[0]{err}" : $_[0] // 'nil' }

my ($same, $calls, $late, $fenced, $held) = (0, 0, 0, 0, 0);
for my $round (1 .. $rounds) {
    my ($qa, $qb) = ("fa$round", "fb$round");
    my $n = 2 + int(rand(10));
    my @ids = map { "t$_" } 1 .. $n;
    enq($qa, $_, rand() < 0.3 ? "n$_" : undef) for @ids;
    # c1 takes some; with a short lease some expire and c2 takes them back
    my $short = rand() < 0.5;
    my %c1 = tasks_of(cyc($new, $qa, 'c1', 1 + int(rand($n)),
                          $short ? 1 : 60000, 0, 0));
    my %c2;
    if ($short) {
        sleep 0.003;
        %c2 = tasks_of(cyc($new, $qa, 'c2', int(rand($n + 1)), 60000, 0, 0));
    }
    # copy qa's keys to qb (same content, other hash tag)
    for my $k (@KINDS) {
        my $d = $r->cmd('DUMP', key($qa, $k));
        $r->cmd('RESTORE', key($qb, $k), 0, $d) if defined $d && !ref $d;
    }
    # both see the same now: the stored clock, ahead of the host's
    my $clock = $r->cmd('HGET', key($qa, 'stats'), 'clock') + 5000;
    $r->cmd('HSET', key($_, 'stats'), 'clock', $clock) for $qa, $qb;
    # conf "waiting" set sometimes (a claim held back by max_concurrent)
    if (rand() < 0.5) { $r->cmd('HSET', key($_, 'conf'), 'waiting', 1) for $qa, $qb }
    my @acks;
    my @pool = ((map { [$_, 'c1', $c1{$_}] } keys %c1),
                (map { [$_, 'c2', $c2{$_}] } keys %c2));
    for (1 .. int(rand(@pool + 3))) {
        my $x = rand();
        my ($id, $cid, $f) = @{ $pool[int(rand(@pool))] // ["t1", 'c1', 1] };
        if ($x < 0.1) { $cid = 'cx' }                    # another claim id
        elsif ($x < 0.15) { $f = $f + 1 }                # wrong first_run
        elsif ($x < 0.2) { $id = 'nosuch' }              # unknown id
        my $nm = $r->cmd('HGET', key($qa, 'tasks'), $id) // '';
        my $name = rand() < 0.8 && $id =~ /^t(\d+)$/ ? "n$1" : '';
        push @acks, $id, $cid, $f, (rand() < 0.3 ? 1 : 0), $name;
    }
    next unless @acks || rand() < 0.5;
    my $tomb = rand() < 0.5 ? 60000 : 0;
    my ($ra, $rb);
    if (@acks && rand() < 0.5) {
        $ra = eval { $old->v2($qa, 'ack', $tomb, @acks / 5, @acks) } // "die:$@";
        $rb = eval { $new->v2($qb, 'ack', $tomb, DQScripts::acks(@acks)) } // "die:$@";
    } else {
        my ($max_n, $conc) = (int(rand(4)), rand() < 0.5 ? 1 + int(rand(4)) : 0);
        $ra = eval { cyc($old, $qa, 'c3', $max_n, 60000, $conc, $tomb, @acks) } // "die:$@";
        $rb = eval { as7(cyc($new, $qb, 'c3', $max_n, 60000, $conc, $tomb, @acks)) } // "die:$@";
    }
    $calls++;
    my ($da, $db) = (dump_q($qa), dump_q($qb));
    (my $fa = flat($ra)) =~ s/die:.*//s;
    (my $fb = flat($rb)) =~ s/die:.*//s;
    if ($fa eq $fb && $da eq $db) {
        $same++;
        my $st = ref $rb eq 'ARRAY' ? (ref $rb->[3] eq 'ARRAY' ? $rb->[3] : $rb) : [];
        $held += grep { $_ eq '1' } @$st;
        $fenced += grep { $_ eq '0' } @$st;
        $late += $r->cmd('HGET', key($qb, 'stats'), 'acked_late') // 0;
    } else {
        diag("round $round differs\nacks: @acks\nold: $fa\nnew: $fb\n--- old\n$da\n--- new\n$db");
        last;
    }
    $r->cmd('DEL', map { (key($qa, $_), key($qb, $_)) } @KINDS);
}
diag("$calls calls: $held acks accepted ($late late), $fenced fenced");
ok($calls > $rounds / 3, "$calls calls compared");
ok($late > 0 && $fenced > 0 && $held > $late, 'held, late and fenced acks seen');
is($same, $calls, 'the old and the new scripts: same replies, same keys');
done_testing();
