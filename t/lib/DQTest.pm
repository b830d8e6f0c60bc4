package DQTest;
# Test harness for ngx_deferred: real daemons on free loopback ports in temp
# dirs, stopped by pid. Core Perl only.
#
#   use lib 't/lib'; use DQTest;
#   my $r = DQTest::Redis->start;           # skips the test if no redis-server
#   $r->cmd(qw(SET k v));                    # RESP client: scalars, arrays, {err}
#   my $pid = DQTest::spawn(log => "$dir/w.log", cmd => [bin('deferred-worker'), ...]);
#   DQTest::stop_pid($pid);
#   DQTest::log_clean_ok("$dir/w.log");      # no [alert]/[crit]/[emerg]/sanitizer
#
# Every process started through spawn() is stopped at exit (TERM, then KILL).
use strict;
use warnings;
use Exporter 'import';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Test::More;

# A server that answers early and closes (413 while a body is still being
# sent) makes the next write fail with EPIPE: a test must see that as an
# error of that write, not die of SIGPIPE with no plan printed.
$SIG{PIPE} = 'IGNORE';

our @EXPORT = qw(bin build_dir tmpdir free_port spawn stop_pid wait_for
                 log_clean_ok slurp root need_built capture dq_key);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
my %children;        # pid => name

sub root { $ROOT }

# A queue's Redis key as lib/dq_util.c's dq_key_format names it (contract
# v2): dq_key('default', 'tasks') is "dq2:{default}:tasks". Tests that look
# at Redis directly use this, never a name of their own.
sub dq_key {
    my ($q, $kind) = @_;
    return "dq2:{$q}:$kind";
}

# The shard of n a task named $name goes to, as lib/dq_shard.c's
# dq_shard_of picks it (FNV-1a 32 of the name, mod n).
sub shard_of {
    my ($name, $n) = @_;
    return 0 if $n <= 1;
    my $h = 2166136261;
    $h = (($h ^ $_) * 16777619) % 4294967296 for unpack 'C*', $name;
    return $h % $n;
}

# The build a test uses: DQ_BUILD, else the sanitizer build when present.
sub build_dir {
    return $ENV{DQ_BUILD} if $ENV{DQ_BUILD};
    return -d "$ROOT/build/san" ? "$ROOT/build/san" : "$ROOT/build";
}

# A built binary (worker, unit test, example library...) by relative path,
# in build_dir(); outside strict() also in build/ when build_dir() lacks it
# (a partial sanitizer build on a laptop). Under strict() never another
# build's file: the build under test has it or the test fails.
sub bin {
    my ($name) = @_;
    my @dirs = (build_dir());
    push @dirs, "$ROOT/build" unless strict();
    for my $d (@dirs) {
        for my $p ("$d/$name", "$d/worker/$name", "$d/client/$name", "$d/t/$name") {
            return $p if -e $p;
        }
    }
    return build_dir() . "/$name";
}

# Whether a missing binary is a failure (CI=true, or ./build.sh test, which
# sets DQ_STRICT=1) rather than a skip (a partial build on a laptop).
sub strict { ($ENV{CI} // '') eq 'true' || $ENV{DQ_STRICT} }

# Skip (or, under strict(), fail) this .t when a built file is missing.
sub need_built {
    my ($path, $what) = @_;
    return $path if -e $path;
    $what //= $path;
    if (strict()) {
        print "1..1\nnot ok 1 - $what is built ($path missing; "
            . "make all builds it)\n";
        exit 1;
    }
    print "1..0 # SKIP $what not built ($path; ./build.sh test builds it)\n";
    exit 0;
}

# For Test::More tests: the path if it exists; else skip the whole test, or
# under strict() die (a failure: CI must not pass on a partial build).
sub require_built {
    my ($path, $what) = @_;
    return $path if -e $path;
    die "$what not built ($path missing; make all builds it)\n" if strict();
    plan skip_all => "$what not built ($path)";
}

# A prerequisite that is not built here (redis-server, nginx, valgrind,
# flask, dpkg-buildflags...): skip the whole test when $ok is false, or
# under strict() die (./build.sh deps installs every one of them).
#   DQTest::need_tool(-x '/usr/bin/valgrind', 'valgrind');
sub need_tool {
    my ($ok, $what) = @_;
    return 1 if $ok;
    die "$what not available (a failure under DQ_STRICT=1 / CI=true; "
        . "./build.sh deps installs it)\n" if strict();
    plan skip_all => "$what not available";
}

# Inside a SKIP block: skip the rest of it when $ok is false, after a
# failing test under strict() (the prerequisite is in build.sh's PACKAGES
# or the build).
#   SKIP: { DQTest::skip_unless(-x $cli, 'deferred-cli not built', 3); ... }
sub skip_unless {
    my ($ok, $why, $n) = @_;
    return 1 if $ok;
    Test::More::fail("$why (a failure under DQ_STRICT=1 / CI=true)")
        if strict();
    no warnings 'exiting';
    Test::More::skip($why, $n // 1);
}

# Whether a program is on PATH.
sub in_path {
    my ($prog) = @_;
    return scalar grep { -x "$_/$prog" } split /:/, $ENV{PATH} // '';
}

# Run the C unit test t/unit/<name>.c (TAP on stdout) as this .t script.
#   exec_unit('test_names');                  no Redis
#   exec_unit('test_scripts_claim', redis => 1);  a fresh redis-server: its port
#       is argv[1] and $DQ_REDIS_PORT, its unix socket argv[2] and
#       $DQ_REDIS_SOCK (t/unit/redis_helper.h reads them)
sub exec_unit {
    my ($name, %o) = @_;
    my $b = need_built(build_dir() . "/t/$name", "unit test $name");
    $ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
    $ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
    unless ($o{redis}) {
        exec $b, @{ $o{args} || [] } or die "exec $b: $!";
    }
    my $dir = tmpdir();
    my $r = DQTest::Redis->start(dir => $dir,
                                 args => ['--unixsocket', "$dir/redis.sock"]);
    $ENV{DQ_REDIS_PORT} = $r->port;
    $ENV{DQ_REDIS_SOCK} = "$dir/redis.sock";
    $| = 1;
    system($b, $r->port, "$dir/redis.sock", @{ $o{args} || [] });
    my $st = $?;
    $r->stop;
    exit($st == 0 ? 0 : ($st >> 8) || 1);
}

# capture(@cmd) -> ($exit, $stdout, $stderr) of a command run to its end.
sub capture {
    my (@cmd) = @_;
    my ($fh, $errf) = File::Temp::tempfile();
    close $fh;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', $errf or die;
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    my $stdout = <$out> // '';
    close $out;
    my $rc = $? >> 8;
    my $stderr = slurp($errf);
    unlink $errf;
    return ($rc, $stdout, $stderr);
}

sub tmpdir {
    return tempdir('dqtest-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{DQ_KEEP});
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "free_port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh>;
}

# spawn(cmd => [...], log => file, env => {...}, name => 'x', dir => cwd)
sub spawn {
    my %o = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        if ($o{log}) {
            open STDOUT, '>>', $o{log} or die "open $o{log}: $!";
            open STDERR, '>&', \*STDOUT or die;
        }
        open STDIN, '<', '/dev/null';
        chdir $o{dir} if $o{dir};
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        # sanitizer defaults: fail loudly, keep going in CI logs
        $ENV{ASAN_OPTIONS} //= 'abort_on_error=0:detect_leaks=1';
        $ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';
        exec @{ $o{cmd} } or POSIX::_exit(127);
    }
    $children{$pid} = $o{name} || $o{cmd}[0];
    return $pid;
}

# Stop a child by pid: sig (TERM), wait up to timeout s, then KILL.
# Returns the wait status ($?) or undef if it was not ours / already gone.
sub stop_pid {
    my ($pid, $sig, $timeout) = @_;
    return undef unless $pid && exists $children{$pid};
    $sig //= 'TERM';
    $timeout //= 10;
    kill $sig, $pid;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { delete $children{$pid}; return $?; }
        if ($r < 0)     { delete $children{$pid}; return undef; }
        sleep 0.01;
    }
    # missed its time: say where it stood, for the next flake's reader
    # (t/190 and t/142's nginx under valgrind, seen once under load)
    my $st = slurp_quiet("/proc/$pid/status");
    my ($state) = $st =~ /^State:\s*(.*)$/m;
    my $wchan = slurp_quiet("/proc/$pid/wchan");
    Test::More::diag("pid $pid still running $timeout s after SIG$sig "
                     . "(state " . ($state // '?') . ", wchan "
                     . ($wchan || '?') . "): killed");
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $children{$pid};
    return $?;
}

sub slurp_quiet {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh> // '';
}

# Reap without signalling: status if it has exited, undef if running.
sub reaped {
    my ($pid) = @_;
    my $r = waitpid($pid, WNOHANG);
    if ($r == $pid) { delete $children{$pid}; return $?; }
    return undef;
}

sub wait_for {
    my ($cond, $timeout, $step) = @_;
    $timeout //= 10;
    $step //= 0.005;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $v = $cond->();
        return $v if $v;
        sleep $step;
    }
    return $cond->();
}

sub wait_port {
    my ($port, $timeout) = @_;
    return wait_for(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        return 0 unless $s;
        close $s;
        1;
    }, $timeout // 10);
}

# Fails the test if a log holds nginx alerts or sanitizer reports.
sub log_clean_ok {
    my ($file, $what) = @_;
    my $text = slurp($file);
    my @bad = grep { /\[(alert|crit|emerg)\]|AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer/ }
              split /\n/, $text;
    ok(!@bad, ($what // $file) . ' has no alert, crit, emerg or sanitizer report')
        or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 20)]);
}

END {
    my $status = $?;
    for my $pid (keys %children) {
        kill 'TERM', $pid;
    }
    my $deadline = time + 5;
    while (%children && time < $deadline) {
        for my $pid (keys %children) {
            delete $children{$pid} if waitpid($pid, WNOHANG) != 0;
        }
        sleep 0.01 if %children;
    }
    for my $pid (keys %children) { kill 'KILL', $pid; waitpid($pid, 0); }
    $? = $status;
}

# ----------------------------------------------------------------- Redis

package DQTest::Redis;
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;

# start(dir => ..., port => ..., args => [...]); skips the test when
# redis-server is not installed.
sub start {
    my ($class, %o) = @_;
    my $server = $ENV{REDIS_SERVER} || 'redis-server';
    DQTest::need_tool(-x $server || DQTest::in_path($server), $server);
    my $self = bless { dir => $o{dir} || DQTest::tmpdir(),
                       port => $o{port} || DQTest::free_port(),
                       args => $o{args} || [], server => $server }, $class;
    $self->_launch;
    return $self;
}

# Start this server (its port, dir and args) and wait until it is ready:
# its child is alive, this try's part of the log (redis.log is appended to
# by every start in the dir) says "Ready to accept connections" (redis
# binds the client port before the cluster bus port and aborts only then:
# a PING can be answered in between), and the port answers PING (PONG, or
# NOAUTH with requirepass), by our pid when INFO says (another test's
# server on the port is not ours). Dies with a DQTest::LaunchError at once
# if the child exits (exited: its status, log: this try's lines), or after
# 10 s (the child stopped).
sub _launch {
    my ($self) = @_;
    $self->{log} = "$self->{dir}/redis.log";
    my $from = -s $self->{log} // 0;
    my $pid = $self->{pid} = DQTest::spawn(
        name => 'redis-server', log => $self->{log},
        cmd  => [$self->{server}, '--port', $self->{port}, '--bind', '127.0.0.1',
                 '--save', '', '--appendonly', 'no', '--dir', $self->{dir},
                 '--daemonize', 'no', '--protected-mode', 'no',
                 @{ $self->{args} }]);
    delete $self->{sock};
    my $exited;
    my $ready = DQTest::wait_for(sub {
        return 1 if defined($exited = DQTest::reaped($pid));
        return 0 unless $self->_log_since($from) =~ /Ready to accept connections/;
        my $p = eval { $self->cmd('PING') } // { err => 'no answer' };
        my $ok = !ref $p || ($p->{err} // '') =~ /^NOAUTH/;
        if ($ok && !ref $p) {
            my $info = eval { $self->cmd('INFO', 'server') } // '';
            my ($who) = ref $info ? () : $info =~ /^process_id:(\d+)/m;
            $ok = defined $who && $who == $pid;
        }
        delete $self->{sock};
        $ok;
    }, 10, 0.01);
    return if $ready && !defined $exited;
    DQTest::stop_pid($pid, 'KILL') unless defined $exited;
    $self->{pid} = undef;
    die DQTest::LaunchError->new(
        port => $self->{port}, exited => $exited,
        log => $self->_log_since($from),
        msg => "redis-server on port $self->{port} "
               . (defined $exited ? "exited (status $exited) before it was ready"
                                  : "not ready after 10 s (killed)"));
}

# the log's text from byte $from on
sub _log_since {
    my ($self, $from) = @_;
    open my $fh, '<', $self->{log} or return '';
    seek $fh, $from, 0;
    local $/;
    return <$fh> // '';
}

sub port    { $_[0]{port} }
sub pid     { $_[0]{pid} }
sub address { "127.0.0.1:$_[0]{port}" }

sub stop {
    my ($self) = @_;
    delete $self->{sock};
    DQTest::stop_pid($self->{pid}) if $self->{pid};
    $self->{pid} = undef;
}

# Same port, fresh (empty) data set.
sub restart { my ($self) = @_; $self->stop; $self->_launch; }

sub _sock {
    my ($self) = @_;
    return $self->{sock} if $self->{sock};
    $self->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $self->{port},
                                          Proto => 'tcp', Timeout => 5)
        or die "connect to redis :$self->{port}: $!";
    return $self->{sock};
}

# cmd(@args): one command; returns a scalar, an array ref, undef (nil) or
# { err => 'text' } for an error reply.
sub cmd {
    my ($self, @args) = @_;
    my $s = $self->_sock;
    my $req = '*' . scalar(@args) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for map { defined $_ ? $_ : '' } @args;
    print {$s} $req or die "redis write: $!";
    return _read($s);
}

sub _line {
    my ($s) = @_;
    my $l = <$s>;
    die "redis: connection closed" unless defined $l;
    $l =~ s/\r\n\z//;
    return $l;
}

sub _read {
    my ($s) = @_;
    my $l = _line($s);
    my ($t, $rest) = (substr($l, 0, 1), substr($l, 1));
    return $rest                  if $t eq '+';
    return { err => $rest }       if $t eq '-';
    return 0 + $rest              if $t eq ':';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length($buf));
            die "redis: short read" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { _read($s) } 1 .. $rest ];
    }
    die "redis: bad reply line '$l'";
}

# ------------------------------------------------------- a failed start

# What DQTest::Redis->start or _launch dies with: port, exited (the wait
# status, undef if it was killed when it never got ready), log (that try's
# lines); as a string, the message and the log.
package DQTest::LaunchError;
use overload '""' => sub { "$_[0]{msg}:\n$_[0]{log}" }, fallback => 1;

sub new { my ($class, %o) = @_; return bless {%o}, $class }

1;
