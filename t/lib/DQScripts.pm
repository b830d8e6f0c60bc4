package DQScripts;
# The contract's Lua scripts by EVAL, as Redis runs them, for tests that
# drive one script call at a time: contract v2 from lib/lua (prelude +
# cold tier + script: lib/gen_scripts.sh) and contract v1 as 5dc6679 had
# them (t/data/lua-v1, keys "dq:{q}:*"). KEYS lists as lib/dq_cmd.c builds
# them (v1: as 5dc6679 did).
#   my $s = DQScripts->new($redis);
#   $s->v1($q, 'enqueue', @argv); $s->v2($q, 'claim', @argv);
#   DQScripts::env1($id, $q, $name)   a v1 envelope (msgpack)
#   my ($A, $B, $s, $k) = DQScripts::at_owner($cluster, $q)
#   my $cycle = $s->cycle($q, %o);    a v2 claim call (acks + claim) builder
#   DQScripts::keys_exist($node, $q, @names)   v2 keys made to exist
#   DQScripts::cold_due($node, $q, $id)        a cold bucket due now
#   DQScripts::stall_ok($rep, $err, $prefix, $ack)  a cycle that stalled
#   $s->two_leases($cycle, $q, $lease_y)      X expired and taken back, Y held
#   $s->cold_soon($q, $id)           a cold task whose bucket is due soon
#   DQScripts::now_ms($node)          the node's clock (TIME) in ms
#   my $old = DQScripts->at_rev($redis, $rev)   lib/lua of commit $rev
#       (DQScripts::PRELIST: the last build before the due list)
# DQ_T_LUA (a directory, or git:REV for lib/lua of commit REV) replaces
# lib/lua: run a test against other scripts (an older commit's, to watch
# it fail there).
use strict;
use warnings;
use DQTest;
use DQNginx ();
use Time::HiRes ();

my %KEYS1 = (
    enqueue => [qw(tasks eta names stats wake)],
    claim   => [qw(tasks eta leases state stats wake errors conf bucket lease)],
    ack     => [qw(tasks leases state names stats errors conf wake eta)],
    retry   => [qw(eta leases state stats errors wake conf)],
    bury    => [qw(tasks leases state dead errors names stats conf wake)],
    requeue => [qw(tasks eta dead state names stats wake errors)],
    pause   => [qw(conf wake)],
);
my @MIG2 = qw(tasks eta leases dead errors names stats wake conf unrunnable);
my @MIG1 = qw(tasks eta leases state dead errors names stats conf unrunnable
              lease wake bucket);
my %KEYS2 = (
    enqueue => [(map { [2, $_] } qw(tasks eta names stats wake)), [1, 'names'],
                [2, 'cold'], [2, 'due']],
    claim   => [map { [2, $_] }
                qw(tasks eta leases stats wake errors conf bucket names cold
                   due)],
    ack     => [map { [2, $_] }
                qw(tasks eta leases stats wake errors conf names)],
    pause   => [map { [2, $_] } qw(conf wake)],
    requeue => [map { [2, $_] } qw(tasks eta dead names stats wake errors)],
    migrate => [(map { [2, $_] } @MIG2), (map { [1, $_] } @MIG1)],
    remove  => [map { [2, $_] }
                qw(tasks eta leases dead errors names stats conf wake cold
                   due)],
    status  => [(map { [2, $_] } qw(eta leases dead conf stats errors tasks
                                    due)),
                (map { [1, $_] } qw(eta leases lease dead))],
    forget  => [map { [2, $_] }
                qw(tasks eta leases dead errors names conf stats wake bucket
                   unrunnable cold due)],
    unlist  => [map { [2, $_] } qw(eta due stats wake tasks)],
);

sub _slurp { my $f = shift; open my $h, '<', $f or die "$f: $!"; local $/; <$h> }

# lib/lua/$name.lua of commit $rev from the checkout's git history, or
# undef if that commit has no such file (or git, or the commit, is not
# there)
# why the last _git_lua found nothing (git's own words)
our $GIT_WHY = '';

sub _git_lua {
    my ($rev, $name) = @_;
    die "bad revision '$rev'\n" unless $rev =~ /\A[\w.^~\/-]{1,100}\z/;
    die "bad script name '$name'\n" unless $name =~ /\A\w+\z/;
    (my $root = DQTest::root()) =~ s/'/'\\''/g;    # for the shell
    # a revision as git reads it (c883358^, main, a hex id)
    my $id = `git -C '$root' rev-parse --verify --quiet '$rev^{commit}' 2>&1`;
    chomp $id;
    if ($? != 0 || $id !~ /\A[0-9a-f]{40}\z/) {
        $GIT_WHY = "git rev-parse $rev: " . ($id ne '' ? $id
            : 'no such commit here (not a git clone, or a shallow one: '
              . 'git fetch --unshallow)');
        return undef;
    }
    my $path = "$id:lib/lua/$name.lua";
    my $err = `git -C '$root' cat-file -e '$path' 2>&1`;
    if ($? != 0) {
        chomp $err;
        $GIT_WHY = "git cat-file $path: $err";
        return undef;
    }
    my $src = `git -C '$root' show '$path'`;
    die "git show $path failed\n" if $? != 0;
    return $src;
}

# a script of $dir ("git:REV": lib/lua of commit REV), undef if absent
sub _read {
    my ($dir, $name) = @_;
    return _git_lua($1, $name) if $dir =~ /\Agit:(.+)\z/;
    return -f "$dir/$name.lua" ? _slurp("$dir/$name.lua") : undef;
}

sub _load {
    my ($dir, $name, @pre) = @_;
    my $pre = join '', map { _read($dir, $_) // '' } @pre;
    my $body = _read($dir, $name) // die "$dir: no $name.lua\n";
    return $body =~ s/\A(#!lua[^\n]*\n)// ? $1 . $pre . $body : $pre . $body;
}

sub new {
    my ($class, $r) = @_;
    my $root = DQTest::root();
    return bless { r => $r, v1dir => "$root/t/data/lua-v1",
                   v2dir => $ENV{DQ_T_LUA} || "$root/lib/lua", src => {} },
                 $class;
}

# main before the due list (issue #12): the old build of the due list's
# mixed-fleet tests (an old worker's claim, an old admin tool's remove
# and forget)
use constant PRELIST => '38667f0b7b4f7026c1b32e6d6838c236d23517e5';

# '' when commit $rev's lib/lua can be read, else why not
sub rev_missing {
    my ($rev) = @_;
    return '' if defined _git_lua($rev, 'claim');
    return "needs commit $rev (lib/lua of an older build) in the "
        . "checkout's git history: $GIT_WHY";
}

# Under CI (DQTest::strict) a missing history is a failure, unless the run
# says it has none (DQ_NO_GIT_HISTORY=1: tests run from a tarball).
sub history_required { DQTest::strict() && !$ENV{DQ_NO_GIT_HISTORY} }

# An older build's scripts, read from the checkout's git history
# (lib/lua of commit $rev): the "old" worker, producer or admin tool of a
# mixed-fleet test. Without that history (a tarball, a shallow clone) the
# whole test fails under CI (history_required) and is skipped otherwise,
# saying why: call it before the first check.
sub at_rev {
    my ($class, $r, $rev) = @_;
    if (my $why = rev_missing($rev)) {
        if (history_required()) {
            Test::More::plan(tests => 1);
            Test::More::fail("$why (set DQ_NO_GIT_HISTORY=1 to skip the "
                . 'tests that run an older build)');
            exit 1;
        }
        Test::More::plan(skip_all => $why);
    }
    my $self = $class->new($r);
    $self->{v2dir} = "git:$rev";
    return $self;
}

sub _eval {
    my ($self, $src, $keys, @a) = @_;
    my $rep = $self->{r}->cmd('EVAL', $src, scalar @$keys, @$keys, @a);
    die "script: $rep->{err}\n" if ref $rep eq 'HASH';
    return $rep;
}

sub v1 {
    my ($self, $q, $s, @a) = @_;
    my $src = $self->{src}{"1$s"} //= _load($self->{v1dir}, $s, 'prelude');
    return $self->_eval($src, [map { "dq:{$q}:$_" } @{ $KEYS1{$s} }], @a);
}

sub v2 {
    my ($self, $q, $s, @a) = @_;
    my $src = $self->{src}{"2$s"} //= _load($self->{v2dir}, $s, 'prelude', 'cold');
    my @k = map { $_->[0] == 1 ? "dq:{$q}:$_->[1]" : DQTest::dq_key($q, $_->[1]) }
            @{ $KEYS2{$s} };
    # the enqueue of scripts before the due list in KEYS had 7 KEYS,
    # before the cold index 6, before the v1 names key 5
    pop @k if $s eq 'enqueue' && $self->{src}{"2$s"} !~ /KEYS\[8\]/;
    pop @k if $s eq 'enqueue' && $self->{src}{"2$s"} !~ /KEYS\[7\]/;
    pop @k if $s eq 'enqueue' && $self->{src}{"2$s"} !~ /KEYS\[6\]/;
    return $self->_eval($src, \@k, @a);
}

# A v2 enqueue of one task: its status (and the reply), the arguments in
# the layout of the scripts loaded (3 per task and 3 per named or keyed
# one since issue #12, 6 per task before). %o: name, keyed (window ms),
# eta (ms), countdown (ms).
sub enqueue2 {
    my ($self, $q, $tomb, $id, $env, %o) = @_;
    my $src = $self->{src}{'2enqueue'}
        //= _load($self->{v2dir}, 'enqueue', 'prelude', 'cold');
    my $name = $o{name} // '';
    my $kw = $o{keyed} // 0;
    my @a;
    if ($src =~ /T0 = 3 \+ 2 \* n/) {
        my $when = defined $o{eta} ? $o{eta}
                 : ($o{countdown} // 0) > 0 ? "+$o{countdown}" : '';
        my $m = $name ne '' || $kw ? 1 : 0;
        @a = ($tomb, 1, $m, $id, $env, $when, $m ? (1, $name, $kw) : ());
    } else {
        @a = ($tomb, 1, $id, $env, $name, $o{eta} // -1, $o{countdown} // -1,
              $kw);
    }
    my $rep = $self->v2($q, 'enqueue', @a);
    return wantarray ? (@$rep == 1 ? 0 : $rep->[1], $rep) : (@$rep == 1 ? 0 : $rep->[1]);
}

# a v1 envelope: [1, id, func, args, kwargs, queue, name, url, created_ms,
# eta_ms, headers, retry]; func "f" and no args unless given (args: an
# array of strings)
sub env1 {
    my ($id, $q, $name, $func, $args) = @_;
    $func //= 'f';
    return DQNginx::mp([1, \$id, \$func, [map { \"$_" } @{ $args || [] }],
                        undef, \$q,
                        defined $name ? \$name : undef, undef, 1, 0, undef,
                        undef]);
}

# The acks' arguments of ack.lua and claim.lua (lib/dq_cmd.c
# dq__arg_acks) from 5-value groups id, claim id, first_run_ms, history
# (0/1), name: n, then n pairs "+inf" and lease member
# "id|claim|first_run_ms", the n ids, n flags (the history digit followed
# by the name).
sub acks {
    my @a = @_;
    my (@p, @i, @f);
    while (@a) {
        my ($id, $c, $first, $h, $name) = splice(@a, 0, 5);
        push @p, '+inf', "$id|$c|$first";
        push @i, $id;
        push @f, ($h ? '1' : '0') . ($name // '');
    }
    return (scalar(@i), @p, @i, @f);
}

# The tasks of a v2 claim reply { now, next, claim id, {acks}, then 4
# values a task: id, envelope, eta, state (0: no history, first run now;
# else "retries:first_run_ms:runs:failed_ms") }: a list of { id, env, eta,
# retries, first, runs, failed }.
sub claimed {
    my ($rep) = @_;
    my @out;
    for (my $i = 4; $i + 3 <= $#$rep; $i += 4) {
        my ($r, $f, $e, $x) = $rep->[$i + 3] eq '0' ? (0, $rep->[0], 0, 0)
                              : split /:/, $rep->[$i + 3];
        push @out, { id => $rep->[$i], env => $rep->[$i + 1],
                     eta => $rep->[$i + 2], retries => $r, first => $f,
                     runs => $e, failed => $x };
    }
    return @out;
}

# On a DQCluster $c: the master serving queue $q ($A), another master
# ($B), a DQScripts on $A, and a sub naming the queue's v2 keys.
sub at_owner {
    my ($c, $q) = @_;
    my $A = $c->owner($q);
    return ($A, $c->other($q), DQScripts->new($A),
            sub { DQTest::dq_key($q, $_[0]) });
}

# A v2 claim call as the worker's cycle makes it (acks + claim, history
# on, no limits): returns sub ($cid, $n, @acks) (the acks as for acks()),
# or with per_call => 1 sub ($cid, $n, $lease_ms, $reclaim_delay_ms,
# @acks). %o: lease (ms, 30000), rd (reclaim delay ms, 0), tomb (tombstone
# window ms, 60000).
sub cycle {
    my ($self, $q, %o) = @_;
    my $tomb = $o{tomb} // 60000;
    return sub {
        my ($cid, $n, @a) = @_;
        my ($lease, $rd) = $o{per_call} ? splice(@a, 0, 2)
                                        : ($o{lease} // 30000, $o{rd} // 0);
        return $self->v2($q, 'claim', $n, $lease, $rd, 0, 1, 0, $cid, 0, 0, 0,
                         $tomb, acks(@a));
    };
}

# Each named v2 key of queue $q made to exist on $node (as in a slot
# MIGRATING whose every declared key is still on the source): a filler
# member no script reads as a task (hashes: field "zz"; sorted sets: "zz"
# at 9e15, the cold index "x" at 9e15; the wake list: "x").
my %FILL = (
    errors => ['HSET', 'zz', 'x'], bucket => ['HSET', 'zz', 'x'],
    conf   => ['HSET', 'zz', 'x'],
    names  => ['ZADD', 9e15, 'zz'], eta => ['ZADD', 9e15, 'zz'],
    leases => ['ZADD', 9e15, 'zz'], dead => ['ZADD', 9e15, 'zz'],
    cold   => ['ZADD', 9e15, 'x'],  wake => ['RPUSH', 'x'],
    # a marker alone (no task): readers skip it
    due    => ['RPUSH', '@0'],
);
sub keys_exist {
    my ($node, $q, @names) = @_;
    for my $n (@names) {
        my ($cmd, @a) = @{ $FILL{$n} or die "keys_exist: no filler for $n" };
        $node->cmd($cmd, DQTest::dq_key($q, $n), @a);
    }
}

sub now_ms {
    my ($node) = @_;
    my $tm = $node->cmd('TIME');
    return $tm->[0] * 1000 + int($tm->[1] / 1000);
}

# A cold bucket of the window now (due for promotion) holding task $id on
# $node, in the cold index and counted (stats cold); returns its key.
sub cold_due {
    my ($node, $q, $id) = @_;
    my $now = now_ms($node);
    my $ws = $now - $now % 10000;
    my $bucket = DQTest::dq_key($q, 'cold') . ":$ws";
    $node->cmd('HSET', $bucket, $id, '0000' . env2());
    $node->cmd('ZADD', DQTest::dq_key($q, 'cold'), $ws, $ws);
    $node->cmd('HINCRBY', DQTest::dq_key($q, 'stats'), 'cold', 1);
    return $bucket;
}

# With $cycle from cycle($q, per_call => 1): task X enqueued and claimed
# (c0, lease 200 ms), then Y (c1, lease $lease_y ms); 0.4 s later a cycle
# (c2, claiming nothing, reclaim delay 10 min) takes X's expired lease
# back (X waits in eta, late-ackable), Y's held. Returns the two claimed
# tasks (as claimed() gives them).
sub two_leases {
    my ($self, $cycle, $q, $lease_y) = @_;
    $self->enqueue2($q, 60000, 'X', env2());
    my ($cx) = claimed($cycle->('c0', 1, 200, 0));
    $self->enqueue2($q, 60000, 'Y', env2());
    my ($cy) = claimed($cycle->('c1', 1, $lease_y, 0));
    Time::HiRes::sleep(0.4);
    $cycle->('c2', 0, 30000, 600000);
    return ($cx, $cy);
}

# Three checks (skipped if the call failed: $err) of a claim reply $rep
# to a cycle that acked one task and stalled: the ack acked, nothing
# claimed, look again in >= 1 s. Names begin with $prefix; $ack names
# the ack ("the ack of X").
sub stall_ok {
    my ($rep, $err, $prefix, $ack) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;  # the caller's line
    SKIP: {
        Test::More::skip('the cycle failed', 3) if $err;
        Test::More::is_deeply($rep->[3], [1], "$prefix$ack is acked");
        Test::More::is(scalar claimed($rep), 0, "${prefix}a stall: nothing claimed");
        Test::More::cmp_ok($rep->[1], '>=', 1000,
                           "${prefix}look again in a second or more");
    }
}

# Task $id enqueued cold, its window 25-35 s ahead now, then the queue
# clock (stats clock) moved 20 s on: its bucket due for promotion at the
# next claim; returns the bucket's key (undef if none was made).
sub cold_soon {
    my ($self, $q, $id) = @_;
    my $now = now_ms($self->{r});
    my $eta = $now - $now % 10000 + 40000;
    $self->enqueue2($q, 60000, $id, env2(), eta => $eta);
    my ($bucket) = grep { /cold:/ } @{ $self->{r}->cmd('KEYS', "*{$q}*") };
    $self->{r}->cmd('HSET', DQTest::dq_key($q, 'stats'), 'clock', $eta - 20000);
    return $bucket;
}

# a v2 envelope: [2, func, args, kwargs, name]
# A plain enqueue of ids to queue $q (no name, no client id, due now; the
# envelope of env2; tombstone 60 s), in the layout of the scripts loaded
# since issue #12 (3 values a task): the reply. A call of two or more goes
# to the due list while it is on.
sub enqueue_plain {
    my ($self, $q, @ids) = @_;
    my $env = env2();
    return $self->v2($q, 'enqueue', 60000, scalar(@ids), 0,
                     (map { ($_, $env) } @ids), ('') x @ids);
}

sub env2 {
    my ($name) = @_;
    return DQNginx::mp([2, \'f', [], undef, defined $name ? \$name : undef]);
}

1;
