#!/usr/bin/perl
# Redis CPU per task of the worker's success path (claim + ack), measured
# straight over the scripts, without a worker: a private redis-server,
# N tasks enqueued, then claim batches of B and their acks until the queue
# is empty; Redis CPU = used_cpu_user + used_cpu_sys delta over the
# claim/ack phase, divided by N (the client's own CPU is not counted).
#
#   perl bench/contract_cpu.pl [--n 100000] [--batch 32]
#        [--mode v1|v2|cycle] [--lua DIR] [--split]
# v1: the scripts of contract v1 (t/data/lua-v1): claim, then ack;
# v2: lib/lua (or --lua DIR): claim, then ack, separate calls;
# cycle: lib/lua, one call a batch: the acks of the last batch + the next
#        claim (dq_cmd_cycle).
# Prints one line: mode n batch calls redis_cpu_s us_per_task us_per_call
# script_us_per_task (INFO commandstats: time inside EVALSHA only).
# DQ_BENCH_STATS=1: every command's calls and usec on stderr.
# --split (v1, v2): also the time inside each script alone, from INFO
#   commandstats read before and after every ack call (claim = the rest):
#   claim_us_per_task= ack_us_per_task=; the INFO calls add to redis_cpu_s,
#   so take that figure from a run without --split (bench/run.sh capacity).
# --callgrind: Redis runs under valgrind's callgrind, counting instructions
# inside EVALSHA only (enqueue + cycles; the load of the machine does not
# move the count); prints "callgrind_ir=N" (slow: use --n 5000).
# --enqueue-only: stop after the enqueue (its count, to subtract).
# --enq-batch N: tasks per enqueue call (500).
# --fresh: enqueue calls as the module and the C client send tasks due now
#   with ids they made up: ARGV[2] -n (every plain id new: no HMGET of
#   the ids) and no when_i (every task due now).
# --no-list: scripts with the due list (issue #12) get no claim before the
#   enqueue, so producers write the ETA set (no worker yet); by default one
#   due_until written as a claim that wants tasks writes it turns the list
#   on, as a running worker keeps it.
# --rdb FILE: Redis starts from this dump (e.g. a queue "bench" with a deep
#   cold tier: bench/deep_rdb.sh), the run's tasks beside what it holds.
# --cg-server PATH: the redis-server run under callgrind (default: the one
#   in PATH; a build with symbols splits the count by function);
#   --cg-out FILE: keep callgrind's output there (callgrind_annotate).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use DQTest;
use Getopt::Long;

my ($n, $batch, $mode, $lua, $split, $cg, $enq_only, $cg_server, $cg_out) =
    (100000, 32, 'v2', undef, 0, 0, 0, undef, undef);
my $eb = 500;              # tasks per enqueue call (--enq-batch)
my $no_list = 0;           # --no-list: no claim before the enqueue
my $fresh = 0;             # --fresh: -n and no when_i (as our callers send)
my $rdb;                   # --rdb FILE: start from this dump
GetOptions('n=i' => \$n, 'batch=i' => \$batch, 'mode=s' => \$mode,
           'lua=s' => \$lua, 'split' => \$split, 'callgrind' => \$cg,
           'enqueue-only' => \$enq_only, 'cg-server=s' => \$cg_server,
           'cg-out=s' => \$cg_out, 'enq-batch=i' => \$eb,
           'no-list' => \$no_list, 'rdb=s' => \$rdb,
           'fresh' => \$fresh) or die "usage\n";
die "--split needs --mode v1 or v2 (cycle is one call)\n"
    if $split && $mode eq 'cycle';
my $root = DQTest::root();
my $dir = $lua // ($mode eq 'v1' ? "$root/t/data/lua-v1" : "$root/lib/lua");
my $pfx = $mode eq 'v1' ? 'dq' : 'dq2';

# a v2 script as the callers send it (lib/gen_scripts.sh --emit: only the
# prelude functions it reaches); v1, or a directory without cold.lua: the
# whole prelude in front
sub script {
    my ($name) = @_;
    if ($mode ne 'v1' && -f "$dir/cold.lua") {
        my $t = `sh '$root/lib/gen_scripts.sh' --emit '$name' '$dir'`;
        die "gen_scripts.sh --emit $name failed\n" if $? || $t eq '';
        return $t;
    }
    open my $h, '<', "$dir/$name.lua" or die "$dir/$name.lua: $!";
    my $body = do { local $/; <$h> };
    open $h, '<', "$dir/prelude.lua" or die "$dir/prelude.lua: $!";
    my $pre = do { local $/; <$h> };
    if (open $h, '<', "$dir/cold.lua") {      # the cold tier's (v2)
        $pre .= do { local $/; <$h> };
    }
    return $body =~ s/\A(#!lua[^\n]*\n)// ? $1 . $pre . $body : $pre . $body;
}
my $cgdir;
if ($cg) {
    $cgdir = DQTest::tmpdir();
    my $server = $cg_server // (DQTest::in_path('redis-server')
                                ? 'redis-server' : die "no redis-server\n");
    open my $w, '>', "$cgdir/redis-cg" or die "$cgdir/redis-cg: $!";
    print $w "#!/bin/sh\nexec valgrind --tool=callgrind"
           . " --callgrind-out-file=$cgdir/cg.out --collect-atstart=no"
           . " --toggle-collect=evalShaCommand $server \"\$@\"\n";
    close $w;
    chmod 0755, "$cgdir/redis-cg";
    $ENV{REDIS_SERVER} = "$cgdir/redis-cg";
}
sub cg_total {
    return unless $cg;
    for (1 .. 100) { last if -s "$cgdir/cg.out"; select(undef, undef, undef, 0.1) }
    my ($ir) = `callgrind_annotate $cgdir/cg.out 2>/dev/null`
               =~ /^\s*([\d,]+)\s.*PROGRAM TOTALS/m;
    $ir //= 'n/a';
    $ir =~ tr/,//d;
    print "callgrind_ir=$ir\n";
    system('cp', "$cgdir/cg.out", $cg_out) if defined $cg_out;
}
my %ro;
if (defined $rdb) {
    my $d = DQTest::tmpdir();
    system('cp', $rdb, "$d/dump.rdb") == 0 or die "cp $rdb: $?\n";
    %ro = (dir => $d, args => ['--dbfilename', 'dump.rdb']);
}
my $r = DQTest::Redis->start(%ro);
my %sha = map { $_ => $r->cmd('SCRIPT', 'LOAD', script($_)) } qw(enqueue claim ack);
my $q = 'bench';
sub k { map { "$pfx:{$q}:$_" } @_ }
my %keys = $mode eq 'v1' ? (
    enqueue => [k(qw(tasks eta names stats wake))],
    claim   => [k(qw(tasks eta leases state stats wake errors conf bucket lease))],
    ack     => [k(qw(tasks leases state names stats errors conf wake eta))],
) : (
    enqueue => [k(qw(tasks eta names stats wake)), "dq:{$q}:names", k('cold'),
                k('due')],
    claim   => [k(qw(tasks eta leases stats wake errors conf bucket names cold
                     due))],
    ack     => [k(qw(tasks eta leases stats wake errors conf names))],
);
my %src = map { $_ => script($_) } qw(ack);
# the acks' arguments: 5 values per task (id, claim, first_run_ms,
# history, name) before the prelude had dq_ack_args_ok; since, n pairs
# "+inf" and lease member, the ids, the flags (lib/dq_cmd.c dq__arg_acks)
my $layout4 = $src{ack} =~ /dq_ack_args_ok/;
# the claim reply: 4 values a task since its state went into one value
my $reply4 = script('claim') =~ /retries:first_run_ms:runs:failed_ms/;
sub ack_args {
    my @a = @_;
    return (@a / 5, @a) unless $layout4;
    my (@p, @i, @f);
    while (@a) {
        my ($id, $c, $first, $h, $name) = splice(@a, 0, 5);
        push @p, '+inf', "$id|$c|$first";
        push @i, $id;
        push @f, ($h ? '1' : '0') . $name;
    }
    return (scalar(@i), @p, @i, @f);
}
sub ev {
    my ($s, @a) = @_;
    # DQ_BENCH_SPLIT=1: ack by EVAL (its own commandstats line)
    my $rep = $ENV{DQ_BENCH_SPLIT} && $s eq 'ack'
        ? $r->cmd('EVAL', $src{ack}, scalar @{ $keys{$s} }, @{ $keys{$s} }, @a)
        : $r->cmd('EVALSHA', $sha{$s}, scalar @{ $keys{$s} }, @{ $keys{$s} }, @a);
    die "$s: $rep->{err}\n" if ref $rep eq 'HASH';
    return $rep;
}

# an envelope of the usual size (~70 bytes)
my $env = "\x9a\x02\xa9bench.nop\x91\xd9\x30" . ('x' x 48) . "\xc0\xc0\xc0\x00\x00\xc0\xc0";
# the enqueue arguments of issue #12 (3 per plain task) or before (6)
my $enq3 = script('enqueue') =~ /T0 = 3 \+ 2 \* n/;
pop @{ $keys{enqueue} } if $mode ne 'v1' && script('enqueue') !~ /KEYS\[8\]/;
pop @{ $keys{enqueue} } if $mode ne 'v1' && script('enqueue') !~ /KEYS\[7\]/;
# scripts with the due list (issue #12): producers write it only while a
# worker that reads it claims the queue, as in production; one claim of
# nothing first turns it on (--no-list: the ETA set, no worker yet)
# (and again every 20 s, as a worker's claims keep it on: a slow run, one
# task a call under callgrind, outlasts the 60 s a claim keeps it on for).
# Stats due_until is written as a claim that wants tasks writes it (now +
# 59 s: within the 60 s window enqueue accepts): a claim of nothing
# (max_n 0) no longer renews it (review RR2, finding 8), and a claim of one
# would lease a task of the run.
die "--fresh: the enqueue script loaded has no short forms (an older --lua?)\n"
    if $fresh && script('enqueue') !~ /\bfresh\b/;
my $list_on = $mode ne 'v1' && !$no_list && script('claim') =~ /due_until/;
my $on_at = 0;
sub list_on {
    return unless $list_on && time - $on_at >= 20;
    my $sec = $r->cmd('TIME')->[0];
    $r->cmd('HSET', (k('stats'))[0], 'due_until', ($sec + 59) * 1000);
    $on_at = time;
}
for (my $i = 0; $i < $n; $i += $eb) {
    my (@a, @w);
    for my $j ($i .. ($i + $eb - 1 < $n ? $i + $eb - 1 : $n - 1)) {
        if ($enq3) { push @a, sprintf('t%07d', $j), $env; push @w, '' }
        else { push @a, sprintf('t%07d', $j), $env, '', -1, -1, 0 }
    }
    list_on();
    if ($enq3 && $fresh) { ev('enqueue', 60000, -@w, 0, @a) }
    elsif ($enq3) { ev('enqueue', 60000, scalar @w, 0, @a, @w) }
    else { ev('enqueue', 60000, @a / 6, @a) }
}
my ($cpu_u, $cpu_s) = (0, 0);     # the last INFO cpu read: user, sys
sub cpu {
    my $info = $r->cmd('INFO', 'cpu');
    ($cpu_u) = $info =~ /used_cpu_user:([\d.]+)/;
    ($cpu_s) = $info =~ /used_cpu_sys:([\d.]+)/;
    return $cpu_u + $cpu_s;
}
if ($enq_only) {
    $r->stop;
    cg_total();
    exit 0;
}
$r->cmd('CONFIG', 'RESETSTAT');
my $c0 = cpu();
my $s0 = $cpu_s;
my ($done, $calls, $k, $ack_usec) = (0, 0, 0, 0);
sub evalsha_usec {
    my ($u) = $r->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=\d+,usec=(\d+)/;
    return $u // 0;
}
my @acks;                  # v2: per task id, claim, first_run_ms, history, name
my @claim_args = ($batch, 600000, 0, 0, 1, 0);
while (1) {
    my $cid = sprintf('c%06d', $k++);
    my $rep;
    if ($mode eq 'v1') {
        $rep = ev('claim', @claim_args, $cid, 0, 0, 0);
    } elsif ($mode eq 'cycle') {
        $rep = ev('claim', @claim_args, $cid, 0, 0, 0, 60000, ack_args(@acks));
        $done += @acks / 5;
        @acks = ();
    } else {
        $rep = ev('claim', @claim_args, $cid, 0, 0, 0, 60000, 0);
    }
    $calls++;
    my $first = $mode eq 'v1' ? 3 : 4;
    my @t = @$rep[$first .. $#$rep];
    my @a;
    while (@t) {
        if ($reply4 && $mode ne 'v1') {
            # 4 values a task: id, envelope, eta, state (0: first run now)
            my @x = splice(@t, 0, 4);
            push @a, $x[0], $cid, $x[3] eq '0' ? $rep->[0]
                                               : (split /:/, $x[3])[1], 0, '';
            next;
        }
        my @x = splice(@t, 0, 7);
        push @a, $mode eq 'v1' ? ($x[0], $cid, '') : ($x[0], $cid, $x[4], 0, '');
    }
    last if !@a && !@acks;
    next unless @a;
    if ($mode eq 'cycle') {
        @acks = @a;
        next;
    }
    my $per = $mode eq 'v1' ? 3 : 5;
    my $u0 = $split ? evalsha_usec() : 0;
    ev('ack', 60000, $mode eq 'v1' ? (@a / $per, @a) : ack_args(@a));
    $ack_usec += evalsha_usec() - $u0 if $split;
    $calls++;
    $done += @a / $per;
}
my $c1 = cpu();
my $sys_us = ($cpu_s - $s0) * 1e6 / $n;
die "done $done of $n\n" unless $done == $n;
my $cs = $r->cmd('INFO', 'commandstats');
my ($ev) = $cs =~ /cmdstat_evalsha:calls=\d+,usec=(\d+)/;
if ($ENV{DQ_BENCH_STATS}) {
    print STDERR "$1 calls=$2 usec=$3\n"
        while $cs =~ /cmdstat_(\w+):calls=(\d+),usec=(\d+)/g;
}
printf "%s n=%d batch=%d calls=%d redis_cpu_s=%.3f us_per_task=%.2f "
       . "us_per_call=%.1f script_us_per_task=%.2f sys_us_per_task=%.2f\n",
       $mode, $n, $batch, $calls, $c1 - $c0, ($c1 - $c0) * 1e6 / $n,
       ($c1 - $c0) * 1e6 / $calls, ($ev // 0) / $n, $sys_us;
printf "split claim_us_per_task=%.2f ack_us_per_task=%.2f\n",
       (($ev // 0) - $ack_usec) / $n, $ack_usec / $n if $split;
$r->stop;
cg_total();
