package DQWorker;
# Worker test helpers on top of DQTest: start deferred-worker (the
# sanitizer build when present) against a DQTest::Redis, either as one
# in-process child (start_worker) or as a master with children from a
# config file (start_master, the production tests t/7N-*.t); run
# deferred-cli; read the record files of the example and ops task
# libraries.
#
#   my $w = DQWorker::start_worker($r, $dir, name => 'w1',
#                                  args => [qw(--lease 1s)]);
#   my $m = DQWorker::start_master($r, $dir, name => 'm', conf => $text,
#                                  args => [...], fast => 1);
#   DQWorker::children($m)                     pids of the children started
#   my ($rc, $out, $err) = DQWorker::cli($r, qw(defer record), "$dir/rec");
#   my @rec = DQWorker::records("$dir/rec");   # hashes: id ms eta execs ...
#   DQWorker::lines($file, 'R')                ops records of one kind
#   DQWorker::stop_worker($w);                 # TERM; returns exit status
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Test::More;

sub example_lib {
    return DQTest::require_built(bin('examples/tasks/libdq_example_tasks.so'),
                                 'example task library');
}

# The build used for long runs: DQ_BUILD, else the normal build when it
# has the file (ASan makes 50,000-task runs too slow), else bin().
sub fast_bin {
    my ($name) = @_;
    return bin($name) if $ENV{DQ_BUILD};
    for my $p ("$DQTest::ROOT/build/worker/$name", "$DQTest::ROOT/build/$name") {
        return $p if -e $p;
    }
    return bin($name);
}

# worker_bin($fast): the sanitizer build's worker, or fast_bin's
sub worker_bin {
    my ($fast) = @_;
    return DQTest::require_built($fast ? fast_bin('deferred-worker')
                                       : bin('deferred-worker'),
                                 'deferred-worker');
}

sub ops_lib {
    my ($v, $fast) = @_;
    my $rel = 'examples/ops-tasks/libdq_ops_v' . ($v || 1) . '.so';
    return DQTest::require_built($fast ? fast_bin($rel) : bin($rel),
                                 'ops task library');
}

# start_worker($redis, $dir, name => 'w', args => [...], libs => [...],
#              master => 0)
sub start_worker {
    my ($r, $dir, %o) = @_;
    my $name = $o{name} || 'worker';
    my $log = "$dir/$name.log";
    my @libs = @{ $o{libs} || [ example_lib() ] };
    my $pid = DQTest::spawn(
        name => $name, log => $log,
        cmd  => [worker_bin(), '-r', $r->address,
                 # one child in this process, unless the test wants the
                 # master (these tests signal and kill "the worker")
                 ($o{master} ? () : qw(--master_process off)),
                 (map { ('-l', $_) } @libs), @{ $o{args} || [] }]);
    my $w = { pid => $pid, log => $log, name => $name };
    # ready when both connections are up
    DQTest::wait_for(sub {
        my $t = DQTest::slurp($log);
        $t =~ /redis \(commands\): connected/ && $t =~ /redis \(wake\): connected/;
    }, 20) or diag("$name did not connect:\n" . DQTest::slurp($log));
    return $w;
}

sub stop_worker {
    my ($w, $sig) = @_;
    return DQTest::stop_pid($w->{pid}, $sig || 'TERM', 20);
}

sub alive {
    my ($w) = @_;
    return !defined DQTest::reaped($w->{pid});
}

sub log_text { DQTest::slurp($_[0]{log}) }

# cli($redis, @args) -> ($exit, $stdout, $stderr)
sub cli {
    my ($r, @args) = @_;
    return DQTest::capture(bin('deferred-cli'), '-r', $r->address, @args);
}

# defer($redis, @args) -> id (dies on failure)
sub defer {
    my ($r, @args) = @_;
    my ($rc, $out, $err) = cli($r, 'defer', @args);
    die "defer @args: exit $rc: $err" if $rc;
    my ($id) = $out =~ /^(\S+)/;
    return wantarray ? split(' ', $out) : $id;
}

# Lines of a record file as hashes.
sub records {
    my ($file) = @_;
    my @r;
    for (split /\n/, DQTest::slurp($file)) {
        my ($id, $ms, $eta, $execs, $retries, $tag) = split / /, $_, 6;
        push @r, { id => $id, ms => $ms, eta => $eta, execs => $execs,
                   retries => $retries, tag => $tag };
    }
    return @r;
}

sub wait_records {
    my ($file, $n, $timeout) = @_;
    DQTest::wait_for(sub { scalar(records($file)) >= $n }, $timeout // 10, 0.002);
    return records($file);
}

# { id => error } of the dead set
# The most of the runs that started at @$starts and ended at @$ends (ms)
# that were running at once; an end and a start on the same ms do not
# overlap, a start without its end runs to the last event.
sub at_once {
    my ($starts, $ends) = @_;
    my @ev = sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
             ((map { [$_, 1] } @$starts), (map { [$_, -1] } @$ends));
    my ($cur, $max) = (0, 0);
    for (@ev) { $cur += $_->[1]; $max = $cur if $cur > $max }
    return $max;
}

# The most of records @R (each ran dur_ms, ending at its ms) that ran at
# once.
sub max_at_once {
    my ($dur_ms, @R) = @_;
    return at_once([map { $_->{ms} - $dur_ms } @R], [map { $_->{ms} } @R]);
}

# The most ops.span tasks of record file $rec that ran at once (its S and
# E lines: "S <id> <ms> <pid>", "E <id> <ms> ...").
sub spans_at_once {
    my ($rec) = @_;
    return at_once([map { $_->[1] } lines($rec, 'S')],
                   [map { $_->[1] } lines($rec, 'E')]);
}

# id -> how many lines of $kind ('R', 'S', 'E', 'V') record file $rec
# holds for it: how often ops.run ran each task, by default.
sub count_by_id {
    my ($rec, $kind) = @_;
    my %n;
    $n{ $_->[0] }++ for lines($rec, $kind // 'R');
    return \%n;
}

sub dead {
    my ($r, $queue) = @_;
    my ($rc, $out) = cli($r, 'dead', $queue // 'default');
    my %d;
    for (split /\n/, $out) {
        my ($id, $err) = split / /, $_, 2;
        $d{$id} = $err;
    }
    return \%d;
}

sub stats {
    my ($r, $queue) = @_;
    my ($rc, $out) = cli($r, 'stats', $queue // 'default');
    my %s = map { split / /, $_, 2 } split /\n/, $out;
    return \%s;
}

# ---- masters started from a config file (the production tests)

# cluster_master($cluster, $dir, name =>, procs => N, conf => text): a
# master of N children (1) on a DQCluster (its first master the seed),
# conf the directives after `redis` and `processes`; returns once each
# child logged its first cluster map.
sub cluster_master {
    my ($c, $dir, %o) = @_;
    my $procs = $o{procs} || 1;
    my $w = start_master(undef, $dir, name => $o{name} || 'w', wait => 0,
                         conf => "redis cluster:" . ($c->masters)[0]->address
                                 . ";\nprocesses $procs;\n"
                                 . ($o{conf} // ''));
    DQTest::wait_for(sub {
        (() = DQTest::slurp($w->{log}) =~ /cluster map from/g) >= $procs
    }, 20);
    return $w;
}

# start_master($redis, $dir, name =>, conf => text, args => [], fast => 0,
#              env => {}, wait => number of children to wait for,
#              prefix => [...] (run under it: DQHosts' `ip netns exec`))
sub start_master {
    my ($r, $dir, %o) = @_;
    my $name = $o{name} || 'w';
    my $log = "$dir/$name.log";
    my $conf = "$dir/$name.conf";
    my $text = $o{conf} // '';
    $text = "redis " . $r->address . ";\n$text" unless $text =~ /^\s*redis\s/m;
    open my $fh, '>', $conf or die "$conf: $!";
    print {$fh} $text;
    close $fh;
    my $pid = DQTest::spawn(
        name => $name, log => $log, env => $o{env},
        cmd  => [@{ $o{prefix} || [] }, worker_bin($o{fast}), '-c', $conf,
                 @{ $o{args} || [] }]);
    my $w = { pid => $pid, log => $log, name => $name, conf => $conf };
    my $want = $o{wait} // 1;
    DQTest::wait_for(sub {
        my $c = () = DQTest::slurp($log) =~ /redis \(wake\): connected/g;
        $c >= $want;
    }, 30) or diag("$name: children did not connect:\n" . DQTest::slurp($log));
    return $w;
}

# pids of every child this master started (from its log), in order
sub children {
    my ($w) = @_;
    my @p = DQTest::slurp($w->{log}) =~ /started child \d+ \(pid (\d+)\)/g;
    return @p;
}

# children whose exit the master has not logged
sub live_children {
    my ($w) = @_;
    my $t = DQTest::slurp($w->{log});
    my %gone = map { $_ => 1 } $t =~ /child \d+ \(pid (\d+)\) (?:exited|killed|asked)/g;
    return grep { !$gone{$_} } children($w);
}

# lines of $kind ('R', 'S', 'E', 'V') as array refs of their fields
sub lines {
    my ($file, $kind) = @_;
    my @l;
    for (split /\n/, DQTest::slurp($file)) {
        my @f = split / /;
        push @l, [@f[1 .. $#f]] if $f[0] eq $kind;
    }
    return @l;
}

sub wait_lines {
    my ($file, $kind, $n, $timeout) = @_;
    DQTest::wait_for(sub { scalar(lines($file, $kind)) >= $n },
                     $timeout // 30, 0.05);
    return lines($file, $kind);
}

# A child killed -9 while its finished task's ack waits in Redis: waits for
# the task's start (S) in rec, pauses writes on node (CLIENT PAUSE 1500
# WRITE) until the task has ended (E), kills child pid kid and waits for
# the master w to log it (t/86-crash-before-ack, t/127).
sub kill_with_ack_held {
    my ($w, $node, $rec, $kid) = @_;
    my @S = wait_lines($rec, 'S', 1, 15);
    is(scalar(@S), 1, 'the task started');
    $node->cmd('CLIENT', 'PAUSE', 1500, 'WRITE');
    my @E = wait_lines($rec, 'E', 1, 5);
    is(scalar(@E), 1, 'the task finished (its ack now paused in Redis)');
    sleep 0.2;
    kill 'KILL', $kid;
    DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /pid $kid\) killed by signal 9/ }, 10);
}

# SIGKILL the first live child of master $w and wait (20 s) for the
# master's account of its leases: its "holding N leased ..." line, or
# undef.
sub kill_child {
    my ($w) = @_;
    my @kids = live_children($w);
    kill 'KILL', $kids[0];
    DQTest::wait_for(sub { log_text($w) =~ /holding \d+ leased/ }, 20);
    my ($line) = log_text($w) =~ /(holding \d+ leased[^\n]*)/;
    return $line;
}

sub key {
    return DQTest::dq_key(@_);
}

# zcard / hlen helpers
sub zcard { my ($r, $q, $k) = @_; return $r->cmd('ZCARD', key($q, $k)) }
# tasks waiting hot: the ETA set and the due list (stats due_n; issue #12:
# due-now tasks enqueued while a worker claims the queue wait there)
sub waiting {
    my ($r, $q) = @_;
    return zcard($r, $q, 'eta') + ($r->cmd('HGET', key($q, 'stats'), 'due_n') // 0);
}


1;
