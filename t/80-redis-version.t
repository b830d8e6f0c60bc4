# Versions and settings checked on connect (issue 10, items 8 and 9).
#
# A Redis older than 7.0 lacks script flags (and 6.0 ZMSCORE): every ack
# would fail and every task
# run until dead. No redis-server older than 7.0 is packaged here, so the
# old server is a small fake speaking RESP (this file) that answers INFO
# with redis_version:6.0.16 and records every command it gets; it is used
# ONLY for the version refusal. The worker must refuse it with a clear
# message and never send a script call; the C client (deferred-cli) must
# refuse it too. Then a real Redis with maxmemory-policy allkeys-lru: the
# worker warns that an evicting Redis can delete task data.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $seen = "$dir/fake.cmds";

# ---- the fake old server
my $port = DQTest::free_port();
my $fake = fork;
die "fork: $!" unless defined $fake;
if ($fake == 0) {
    $SIG{PIPE} = 'IGNORE';    # a client that hangs up must not end us
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Listen => 16, ReuseAddr => 1) or POSIX::_exit(1);
    $l->blocking(0);          # a connection reset before accept: no wait
    my $sel = IO::Select->new($l);
    my %buf;
    my $info = "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n"
             . "# Memory\r\nmaxmemory_policy:noeviction\r\n";
    while (1) {
        for my $s ($sel->can_read(1)) {
            if ($s == $l) { my $c = $l->accept or next; $sel->add($c); next; }
            my $n = sysread($s, my $chunk, 65536);
            # a closed connection's unparsed bytes go with it: the worker
            # closes with SCRIPT LOADs in flight (reset: their tail lost),
            # and the next socket may get the same GLOB address, hence the
            # same key; its INFO then completed the stale SCRIPT LOAD and
            # got no reply (deferred-cli: EAGAIN after 5 s, t/80 test 7
            # under load; 11 of 30 such connections hung in a repro)
            if (!$n) { $sel->remove($s); delete $buf{$s}; close $s; next; }
            $buf{$s} .= $chunk;
            while ($buf{$s} =~ /\A\*(\d+)\r\n/) {
                my ($argc, $pos, @argv) = ($1, length("*$1\r\n"));
                my $ok = 1;
                for (1 .. $argc) {
                    if (substr($buf{$s}, $pos) =~ /\A\$(\d+)\r\n/) {
                        my $len = $1;
                        my $start = $pos + length("\$$len\r\n");
                        if (length($buf{$s}) < $start + $len + 2) { $ok = 0; last }
                        push @argv, substr($buf{$s}, $start, $len);
                        $pos = $start + $len + 2;
                    } else { $ok = 0; last }
                }
                last unless $ok;
                substr($buf{$s}, 0, $pos) = '';
                my $cmd = uc $argv[0];
                open my $fh, '>>', $seen; print {$fh} "$cmd\n"; close $fh;
                my $rep = $cmd eq 'INFO' ? '$' . length($info) . "\r\n$info\r\n"
                        : $cmd eq 'SCRIPT' ? "\$40\r\n" . ('0' x 40) . "\r\n"
                        : $cmd =~ /^(AUTH|SELECT|PING)$/ ? "+OK\r\n"
                        : "-ERR fake server: $cmd not implemented\r\n";
                syswrite($s, $rep);
            }
        }
    }
}
DQTest::wait_port($port, 10) or die "fake server did not start";

my $old = bless { port => $port }, 'DQTest::Redis';
my $w = DQTest::spawn(name => 'old', log => "$dir/old.log",
                      cmd => [DQWorker::worker_bin(), '--redis', "127.0.0.1:$port",
                              '--library', $lib, '--processes', 1, '--queue', 'q']);
DQTest::wait_for(sub { DQTest::slurp("$dir/old.log") =~ /too old/ }, 15);
my $log = DQTest::slurp("$dir/old.log");
like($log, qr/\[error\].*Redis 6\.0\.16 is too old: 7\.0\.0 or later is needed \(script flags, ZMSCORE\); not using it/,
     'the worker refuses Redis 6.0.16 with a clear message');
sleep 1;
my $cmds = DQTest::slurp($seen);
like($cmds, qr/^INFO$/m, 'it asked INFO');
unlike($cmds, qr/^(EVALSHA|EVAL|BLPOP)$/m, 'it never sent a script call or a BLPOP to it');
unlike(DQTest::slurp("$dir/old.log"), qr/redis \(commands\): connected/, 'it never says connected');
is(DQTest::stop_pid($w), 0, 'the worker still stops cleanly');

# what the worker does under load: connections closed in the middle of a
# command (its tail never sent), just before the C client's (whether the
# client's socket then reuses a stale key is up to Perl's allocator; a
# standalone repro of the old loop hung 11 of 30 times)
for (1 .. 3) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die;
    print {$s} "*3\r\n\$6\r\nSCRIPT\r\n\$4\r\nLOAD\r\n\$100000\r\nreturn";
    sleep 0.05;
    close $s;
}
sleep 0.05;
my ($rc, $o1, $o2) = DQWorker::cli($old, "defer", "ops.run", "/dev/null"); my $out = "$o1$o2";
isnt($rc, 0, 'deferred-cli (the C client) refuses it');
like($out, qr/Redis 6\.0\.16 is too old: 7\.0\.0 or later is needed/, '... saying why') or diag("rc $rc: $out");
unlike(DQTest::slurp($seen), qr/^(EVALSHA|EVAL)$/m, '... before any script call');
kill 'KILL', $fake;
waitpid($fake, 0);

# ---- a real, recent Redis that evicts
my $r = DQTest::Redis->start(args => ['--maxmemory-policy', 'allkeys-lru']);
my $w2 = DQWorker::start_master($r, $dir, name => 'lru', wait => 1, conf => <<"EOF");
library "$lib";
processes 1;
queue q;
EOF
# start_master waited for the wake connection; the commands one may
# answer a moment later on a loaded machine
DQTest::wait_for(sub { DQTest::slurp($w2->{log}) =~ /redis \(commands\): connected/ }, 10);
my $l2 = DQTest::slurp($w2->{log});
like($l2, qr/\[warn\].*maxmemory-policy is allkeys-lru: under memory pressure Redis may delete task data/,
     'an evicting maxmemory-policy is warned about at start');
like($l2, qr/redis \(commands\): connected \(Redis \d+\.\d+\.\d+\)/, 'the version is logged');
is(DQTest::stop_pid($w2->{pid}), 0, 'stops cleanly');
my $r2 = DQTest::Redis->start;
my $w3 = DQWorker::start_master($r2, $dir, name => 'noev', wait => 1, conf => "library \"$lib\";\nprocesses 1;\nqueue q;\n");
unlike(DQTest::slurp($w3->{log}), qr/maxmemory-policy/, 'no warning with noeviction');
is(DQTest::stop_pid($w3->{pid}), 0, 'stops cleanly');
done_testing();
