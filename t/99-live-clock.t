# Live worker state on Redis' clock with ids that cannot collide (review of
# issue 14, F7): a worker whose host clock is an hour behind (faketime)
# stays in the live list and its beat_ms is Redis' time (before: its
# expiry was an hour in the past, trimmed by the others' beats and hidden
# from `deferred-cli workers`); two workers in their own pid namespaces
# (pid 1 each, same host name: containers) are two entries (before: one
# key "host:1" both wrote).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQScripts;
use JSON::PP;
use Test::More;

my $r = DQTest::Redis->start;
my $dir = tmpdir();
my @base = (DQWorker::worker_bin(), '-r', $r->address, '--master_process', 'off',
            '-l', DQWorker::example_lib(), '-q', 'ops');
local $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '',
                                                   'verify_asan_link_order=0';
sub workers {
    my ($rc, $out) = DQWorker::cli($r, '--json', 'workers');
    return $rc ? [] : (eval { decode_json($out) } || []);
}

my ($fake) = glob '/usr/lib/*/faketime/libfaketimeMT.so.1';
SKIP: {
    DQTest::skip_unless($fake, 'libfaketime not installed (Debian package faketime)', 4);
    my $ok = spawn(name => 'ok', log => "$dir/ok.log", cmd => [@base]);
    my $late = spawn(name => 'late', log => "$dir/late.log",
                     cmd => ['env', "LD_PRELOAD=$fake", 'FAKETIME=-1h', @base]);
    ok(wait_for(sub { @{ workers() } == 2 }, 15),
       'a worker whose clock is an hour behind is listed beside a right one')
        or diag explain workers(), slurp("$dir/late.log");
    # a right-clock child's trim (once per TTL, lib/lua/beat.lua with trim
    # 1), done here at once rather than waited for: it keeps the late one
    my $beat = DQScripts::_load(DQTest::root() . '/lib/lua', 'beat', 'prelude');
    $r->cmd('EVAL', $beat, 1, 'dq:workers', 'test:trim', 15000, 1);
    $r->cmd('ZREM', 'dq:workers', 'test:trim');
    sleep 11;   # and a beat of each
    is(scalar @{ workers() }, 2, '... and stays listed after a trim and a beat of each');
    my ($t) = @{ $r->cmd('TIME') };
    my ($lw) = grep { $_->{pid} == $late } @{ workers() };
    ok($lw && abs($lw->{beat_ms} - $t * 1000) < 60_000, "... its beat_ms is Redis' time")
        or diag explain $lw;
    stop_pid($_, 'TERM', 20) for $ok, $late;
    ok(wait_for(sub { !@{ workers() } }, 5), 'both leave the list when stopped');
}

SKIP: {
    DQTest::skip_unless(!system('unshare -p -f true >/dev/null 2>&1'),
                        'unshare cannot make a pid namespace here', 2);
    my @w = map { spawn(name => "ns$_", log => "$dir/ns$_.log",
                        cmd => ['unshare', '-p', '-f', '--kill-child', @base]) } 1, 2;
    ok(wait_for(sub { @{ workers() } == 2 }, 15),
       'two workers, pid 1 each in their own pid namespace, same host name: two entries')
        or diag explain workers();
    my %pids = map { $_->{pid} => 1 } @{ workers() };
    is_deeply([keys %pids], [1], '... both pid 1 (the case that collided)');
    # unshare --fork passes no signal on: it blocks SIGTERM while it waits
    # for its child, and stop_pid's SIGTERM to it sat out the 20 s before
    # SIGKILL; the worker (unshare's child) is told itself
    for my $u (@w) {
        my $kids = DQTest::slurp_quiet("/proc/$u/task/$u/children");
        kill 'TERM', split ' ', $kids;
    }
    stop_pid($_, 'TERM', 20) for @w;
}
done_testing;
