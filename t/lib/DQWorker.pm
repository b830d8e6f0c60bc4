package DQWorker;
# Worker test helpers on top of DQTest: start deferred-worker (the
# sanitizer build when present) against a DQTest::Redis, run deferred-cli,
# read the example task library's record files.
#
#   my $w = DQWorker::start_worker($r, $dir, name => 'w1',
#                                  args => [qw(--lease 1s)]);
#   my ($rc, $out, $err) = DQWorker::cli($r, qw(defer record), "$dir/rec");
#   my @rec = DQWorker::records("$dir/rec");   # hashes: id ms eta execs ...
#   DQWorker::stop_worker($w);                 # TERM; returns exit status
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use File::Temp qw(tempfile);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Test::More;

sub example_lib {
    my $p = bin('examples/tasks/libdq_example_tasks.so');
    plan skip_all => "example task library not built ($p)" unless -e $p;
    return $p;
}

sub worker_bin {
    my $p = bin('deferred-worker');
    plan skip_all => "deferred-worker not built ($p)" unless -x $p;
    return $p;
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
    my $bin = bin('deferred-cli');
    my ($fh, $errf) = tempfile();
    close $fh;
    my $pid = open(my $out, '-|');
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>', $errf or die;
        exec $bin, '-r', $r->address, @args or POSIX::_exit(127);
    }
    local $/;
    my $stdout = <$out> // '';
    close $out;
    my $rc = $? >> 8;
    my $stderr = DQTest::slurp($errf);
    unlink $errf;
    return ($rc, $stdout, $stderr);
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

1;
