package DQScripts;
# The contract's Lua scripts by EVAL, as Redis runs them, for tests that
# drive one script call at a time: contract v2 from lib/lua (prelude +
# cold tier + script: lib/gen_scripts.sh) and contract v1 as 5dc6679 had
# them (t/data/lua-v1, keys "dq:{q}:*"). KEYS lists as lib/dq_cmd.c builds
# them (v1: as 5dc6679 did).
#   my $s = DQScripts->new($redis);
#   $s->v1($q, 'enqueue', @argv); $s->v2($q, 'claim', @argv);
#   DQScripts::env1($id, $q, $name)   a v1 envelope (msgpack)
# DQ_T_LUA (a directory) replaces lib/lua: run a test against other
# scripts (an older commit's, to watch it fail there).
use strict;
use warnings;
use DQTest;
use DQNginx ();

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
                [2, 'cold']],
    claim   => [map { [2, $_] }
                qw(tasks eta leases stats wake errors conf bucket names cold)],
    ack     => [map { [2, $_] }
                qw(tasks eta leases stats wake errors conf names)],
    pause   => [map { [2, $_] } qw(conf wake)],
    requeue => [map { [2, $_] } qw(tasks eta dead names stats wake errors)],
    migrate => [(map { [2, $_] } @MIG2), (map { [1, $_] } @MIG1)],
);

sub _slurp { my $f = shift; open my $h, '<', $f or die "$f: $!"; local $/; <$h> }

sub _load {
    my ($dir, $name, @pre) = @_;
    my $pre = join '', map { -f "$dir/$_.lua" ? _slurp("$dir/$_.lua") : '' } @pre;
    my $body = _slurp("$dir/$name.lua");
    return $body =~ s/\A(#!lua[^\n]*\n)// ? $1 . $pre . $body : $pre . $body;
}

sub new {
    my ($class, $r) = @_;
    my $root = DQTest::root();
    return bless { r => $r, v1dir => "$root/t/data/lua-v1",
                   v2dir => $ENV{DQ_T_LUA} || "$root/lib/lua", src => {} },
                 $class;
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
    # the enqueue of scripts before the cold index in KEYS had 6 KEYS,
    # before the v1 names key 5
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

# a v2 envelope: [2, func, args, kwargs, name]
sub env2 {
    my ($name) = @_;
    return DQNginx::mp([2, \'f', [], undef, defined $name ? \$name : undef]);
}

1;
