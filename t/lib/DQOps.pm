package DQOps;
# Helpers for the production tests (t/7N-*.t): deferred-worker masters
# started from a config file, the ops-tasks library, record files, child
# pids read from the master's log.
#
#   my $w = DQOps::start_master($r, $dir, name => 'w1', conf => $text,
#                               args => [...], fast => 1);
#   DQOps::children($w)            pids of the children started so far
#   DQOps::defer($r, @args)        deferred-cli defer ... (dies on failure)
#   DQOps::lines($file, 'R')       record lines of one kind, as arrays
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);
use Test::More;

# The build used for long runs: DQ_BUILD, else the normal build when it
# has the worker (ASan makes 50,000-task runs too slow), else bin().
sub fast_bin {
    my ($name) = @_;
    return bin($name) if $ENV{DQ_BUILD};
    for my $p ("$DQTest::ROOT/build/worker/$name", "$DQTest::ROOT/build/$name") {
        return $p if -e $p;
    }
    return bin($name);
}

sub ops_lib {
    my ($v, $fast) = @_;
    my $rel = 'examples/ops-tasks/libdq_ops_v' . ($v || 1) . '.so';
    my $p = $fast ? fast_bin($rel) : bin($rel);
    plan skip_all => "ops task library not built ($p)" unless -e $p;
    return $p;
}

sub worker_bin {
    my ($fast) = @_;
    my $p = $fast ? fast_bin('deferred-worker') : bin('deferred-worker');
    plan skip_all => "deferred-worker not built ($p)" unless -x $p;
    return $p;
}

# start_master($redis, $dir, name =>, conf => text, args => [], fast => 0,
#              env => {}, wait => number of children to wait for)
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
        cmd  => [worker_bin($o{fast}), '-c', $conf, @{ $o{args} || [] }]);
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

sub defer {
    my ($r, @args) = @_;
    return DQWorker::defer($r, @args);
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

sub key {
    my ($q, $kind) = @_;
    return "dq:{$q}:$kind";
}

# zcard / hlen helpers
sub zcard { my ($r, $q, $k) = @_; return $r->cmd('ZCARD', key($q, $k)) }

1;
