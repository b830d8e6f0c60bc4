# enqueue.lua of issue #12 (3 arguments per plain task, a { now_ms } reply
# when every task was stored, the fast path with its put-right of the same
# id twice in a call) against the enqueue it replaced (t/data/lua-enq6:
# 6 arguments per task, always the full reply), differentially: the same
# random batches (plain, named, keyed, the same id again in and across
# calls, ids stored before, due now, countdowns, absolute ETAs past and
# future, cold, calls of 1,500 tasks, contract v1's names) go to two
# queues, one through each script, and after every call both answers
# (the compact one expanded as dq_reply_enqueue does) and both queues'
# whole contents (every key, the wake list included) must be the same.
# Tasks "run" between calls (deleted from tasks/eta on both sides) so that
# keyed ids that already ran are hit too. Both queues share one fixed
# clock (stats `clock` a minute ahead, which every script takes as now).
# DQ_T_LUA=DIR: the new side's enqueue.lua from DIR (to watch it fail).
# DQ_T_SEED: the random seed (printed).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;

my $root = DQTest::root();
my $pre = DQTest::slurp("$root/lib/lua/prelude.lua")
        . DQTest::slurp("$root/lib/lua/cold.lua");
my $OLD = $pre . DQTest::slurp("$root/t/data/lua-enq6/enqueue.lua");
my $NEW = $pre . DQTest::slurp(($ENV{DQ_T_LUA} || "$root/lib/lua")
                               . '/enqueue.lua');
my $seed = $ENV{DQ_T_SEED} // time;
srand($seed);
diag("seed $seed");

my $r = DQTest::Redis->start;
my ($QA, $QB) = ('eo', 'en');       # old, new
sub keys_of {
    my ($q) = @_;
    return ((map { dq_key($q, $_) } qw(tasks eta names stats wake)),
            "dq:{$q}:names", dq_key($q, 'cold'), dq_key($q, 'due'));
}
my @t = $r->cmd('TIME');
my $tm = $r->cmd('TIME');
my $NOW = $tm->[0] * 1000 + int($tm->[1] / 1000) + 59000;
for my $q ($QA, $QB) {
    $r->cmd('HSET', dq_key($q, 'stats'), 'clock', $NOW);
}
my $TOMB = 60000;

# a task: { id, env, name, eta, countdown, kw } as dq_enqueue_item_t
my @IDS = map { "i$_" } 0 .. 11;
my @NAMES = map { "n$_" } 0 .. 3;
my $fresh = 0;
sub rnd_task {
    my %o = @_;
    my $id = $o{unique} || rand() < 0.3 ? 'u' . $fresh++ : $IDS[int rand @IDS];
    my $name = !$o{plain} && rand() < 0.3 ? $NAMES[int rand @NAMES] : '';
    my $kw = !$o{plain} && rand() < 0.2 ? (-1, 5000)[int rand 2] : 0;
    my ($eta, $cd) = (-1, -1);
    my $p = rand;
    if ($p < 0.35) { }
    elsif ($p < 0.45) { $cd = 0 }
    elsif ($p < 0.60) { $cd = 1 + int rand 15000 }
    elsif ($p < 0.75) { $cd = 30000 + int rand 3600000 }
    elsif ($p < 0.85) { $eta = $NOW - int rand 5000 }
    else { $eta = $NOW + int rand 3600000 }
    return { id => $id, env => "env-$id-" . int(rand 1000), name => $name,
             eta => $eta, cd => $cd, kw => $kw };
}
sub args_old {
    my @a = ($TOMB, scalar @_);
    push @a, $_->{id}, $_->{env}, $_->{name}, $_->{eta}, $_->{cd}, $_->{kw}
        for @_;
    return @a;
}
sub args_new {
    my (@ids, @w, @s);
    my $i = 0;
    for my $t (@_) {
        $i++;
        push @ids, $t->{id}, $t->{env};
        push @w, $t->{eta} >= 0 ? $t->{eta} : $t->{cd} > 0 ? "+$t->{cd}" : '';
        push @s, $i, $t->{name}, $t->{kw} if $t->{name} ne '' || $t->{kw};
    }
    return ($TOMB, scalar @_, @s / 3, @ids, @w, @s);
}
# the answers as dq_reply_enqueue gives them: [status, eta] per task
sub answers {
    my ($rep, @tasks) = @_;
    return "error: $rep->{err}" if ref $rep eq 'HASH';
    my @out;
    if (@$rep == 1) {
        for my $t (@tasks) {
            push @out, '0:' . ($t->{eta} >= 0 ? $t->{eta}
                               : $t->{cd} > 0 ? $rep->[0] + $t->{cd}
                               : $rep->[0]);
        }
    } else {
        push @out, "$rep->[2*$_+1]:$rep->[2*$_+2]" for 0 .. $#tasks;
    }
    return join ' ', $rep->[0], @out;
}
# a queue's contents, its name replaced by Q
sub snapshot {
    my ($q) = @_;
    my @out;
    for my $k (sort @{ $r->cmd('KEYS', "*{$q}*") }) {
        my $type = $r->cmd('TYPE', $k);
        my $v;
        if ($type eq 'hash') {
            my %h = @{ $r->cmd('HGETALL', $k) };
            $v = join ',', map { "$_=$h{$_}" } sort keys %h;
        } elsif ($type eq 'zset') {
            $v = join ',', @{ $r->cmd('ZRANGE', $k, 0, -1, 'WITHSCORES') };
        } elsif ($type eq 'list') {
            $v = join ',', @{ $r->cmd('LRANGE', $k, 0, -1) };
        } else {
            $v = "type $type";
        }
        (my $kk = $k) =~ s/\{\Q$q\E\}/{Q}/;
        push @out, "$kk [$type] $v";
    }
    return join "\n", @out;
}
sub call_both {
    my ($what, @tasks) = @_;
    my @k = ([keys_of($QA)], [keys_of($QB)]);
    my $a = $r->cmd('EVAL', $OLD, 7, @{ $k[0] }[0 .. 6], args_old(@tasks));
    my $b = $r->cmd('EVAL', $NEW, 8, @{ $k[1] }, args_new(@tasks));
    my ($aa, $bb) = (answers($a, @tasks), answers($b, @tasks));
    my $ok = is($bb, $aa, "$what: the same answers");
    my ($sa, $sb) = (snapshot($QA), snapshot($QB));
    $ok = is($sb, $sa, "$what: the same queue contents") && $ok;
    return $ok;
}
# a task "runs": gone from tasks and eta on both sides
sub run_some {
    my $ids = $r->cmd('ZRANGE', dq_key($QA, 'eta'), 0, -1);
    for my $id (grep { rand() < 0.3 } @$ids) {
        for my $q ($QA, $QB) {
            $r->cmd('HDEL', dq_key($q, 'tasks'), $id);
            $r->cmd('ZREM', dq_key($q, 'eta'), $id);
        }
    }
}

# contract v1's names hold a name and a keyed id on both sides
for my $q ($QA, $QB) {
    $r->cmd('ZADD', "dq:{$q}:names", 'inf', 'n3', 'inf', '#i11');
}

my $bad = 0;
for my $op (1 .. 200) {
    my $n = 1 + int rand(rand() < 0.8 ? 4 : 12);
    my %o = (plain => rand() < 0.5);
    my @tasks = map { rnd_task(%o) } 1 .. $n;
    # the same id again in the call, with its own envelope and time
    if ($n > 1 && rand() < 0.3) {
        my $dup = rnd_task(%o);
        $dup->{id} = $tasks[int rand($n - 1)]{id};
        $tasks[-1] = $dup;
    }
    call_both("call $op ($n tasks" . ($o{plain} ? ', plain' : '') . ')',
              @tasks) or $bad++;
    run_some() if rand() < 0.2;
    $r->cmd('DEL', "dq:{$_}:names") for $op == 150 ? ($QA, $QB) : ();
    last if $bad > 3;
}
# big calls: over DQ_CHUNK values per redis.call, due now and delayed
# (cold), every id new, then the same ids again with new ones, then the
# same id twice in one big call
for my $big (1 .. 3) {
    my @tasks = map { rnd_task(plain => 1, unique => 1) } 1 .. 1500;
    call_both("big call $big", @tasks);
    my @again = ((map { { %$_, env => 'again' } } @tasks[0 .. 99]),
                 map { rnd_task(plain => 1, unique => 1) } 1 .. 1400);
    call_both("big call $big again", @again);
    my @twice = map { rnd_task(plain => 1, unique => 1) } 1 .. 1200;
    push @twice, { %{ $twice[$_] }, env => 'second' } for 0 .. 599;
    $_->{eta} = -1, $_->{cd} = $_->{cd} > 20000 ? 5 : $_->{cd} for @twice;
    call_both("big call $big, 600 ids twice", @twice);
}
# the same new id twice, the second due earlier than the first and than
# every task waiting: the first one is stored, and it alone decides the
# wake (none: a task waits earlier than it)
for my $q ($QA, $QB) {
    $r->cmd('ZADD', dq_key($q, 'eta'), $NOW - 100000, 'early');
    $r->cmd('DEL', dq_key($q, 'wake'));
}
my %x = (name => '', eta => -1, kw => 0);
call_both('one id twice, the second earlier',
          { %x, id => 'tw1', env => 'a', cd => 5000 },
          { %x, id => 'tw1', env => 'b', cd => 0 });
is($r->cmd('LLEN', dq_key($QB, 'wake')), 0, '... and no wake token');
call_both('one id twice, the first due now',
          { %x, id => 'tw2', env => 'a', cd => 0 },
          { %x, id => 'tw2', env => 'b', cd => 5000 });
is($r->cmd('HGET', dq_key($QB, 'tasks'), 'tw2'), 'a', '... the first kept');
ok($r->cmd('HLEN', dq_key($QB, 'tasks')) > 1000, 'the new queue holds tasks');
ok($r->cmd('ZCARD', dq_key($QB, 'cold')) > 0, 'and cold buckets');
done_testing();
