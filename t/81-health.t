# Health and logs of the worker as systemd and log shippers see them:
# sd_notify READY=1 (children started), WATCHDOG=1 at half of
# $WATCHDOG_USEC, RELOADING=1 + READY=1 around SIGHUP, STOPPING=1 on
# SIGTERM, exit status 0 with a last line saying why; one info line per
# finished task (queue, id, function, attempt, duration, result); with
# log_format json every line is one JSON object with the same fields;
# a bad log_format is refused by -t.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use IO::Select;
use IO::Socket::UNIX;
use JSON::PP;
use Socket qw(SOCK_DGRAM);
use Test::More;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
my $bin = DQWorker::worker_bin();
my $lib = DQWorker::example_lib();
my $sockpath = "$dir/notify.sock";
my $sock = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $sockpath)
    or plan skip_all => "unix datagram socket: $!";
my $sel = IO::Select->new($sock);
my @got;
sub drain {
    my ($secs) = @_;
    my $end = time + $secs;
    while ((my $left = $end - time) > 0) {
        last unless $sel->can_read($left);
        my $buf;
        $sock->recv($buf, 4096);
        push @got, $buf;
    }
}
sub saw { my ($re) = @_; return scalar grep { /$re/ } @got }
sub defer { my @o = DQWorker::cli($r, 'defer', @_); die $o[2] if $o[0]; (split ' ', $o[1])[0] }

my $log = "$dir/w.log";
my $pid = spawn(name => 'worker', log => $log,
                env => { NOTIFY_SOCKET => $sockpath, WATCHDOG_USEC => 300000 },
                cmd => [$bin, '-r', $r->address, '-p', '1', '-l', $lib]);
drain(1.2);
ok(saw(qr/^READY=1\nSTATUS=1 children$/), 'READY=1 with a STATUS once the children are started')
    or diag explain \@got;
ok(saw(qr/^WATCHDOG=1$/) >= 4, 'WATCHDOG=1 every 150 ms (half of WATCHDOG_USEC): ' . saw(qr/^WATCHDOG=1$/) . ' in 1.2 s');
like(slurp($log), qr/systemd watchdog: pinging every 150 ms/, 'the log says so');

my $ok = defer('noop');
my $bad = defer('permanent', 'no such user');
ok(DQTest::wait_for(sub { slurp($log) =~ /result=permanent/ }, 10), 'both tasks ran');
like(slurp($log), qr/\[info\] child 1: task finished: queue=default id=\Q$ok\E function=noop attempt=1 duration_ms=\d+ result=ok$/m,
     'one info line for the task that succeeded');
like(slurp($log), qr/\[info\] child 1: task finished: queue=default id=\Q$bad\E function=permanent attempt=1 duration_ms=\d+ result=permanent$/m,
     'one for the one that failed (its error line follows)');

@got = ();
kill 'HUP', $pid;
drain(1);
ok(saw(qr/^RELOADING=1$/) && saw(qr/^READY=1$/), 'SIGHUP: RELOADING=1 then READY=1');
@got = ();
kill 'TERM', $pid;
drain(0.5);
ok(saw(qr/^STOPPING=1/), 'SIGTERM: STOPPING=1');
is(DQTest::stop_pid($pid, 'TERM', 20) >> 8, 0, 'exit status 0');
like((split /\n/, slurp($log))[-1],
     qr/master exits with status 0: stopped by SIGTERM \(graceful\) after \d+ ms$/,
     'the last line says why it stopped');
log_clean_ok($log, 'worker log');

# log_format json
my $jlog = "$dir/j.log";
$pid = spawn(name => 'worker-json', log => $jlog,
             cmd => [$bin, '-r', $r->address, '-p', '1', '-l', $lib,
                     '--log_format', 'json']);
my $id = defer('permanent', 'smtp: 550 "no" such user');
my $evil = "x\" queue=\"evil\" attempt=99 y=\"\nforged line\\";
my $ide = defer('permanent', $evil);
ok(DQTest::wait_for(sub { my $l = slurp($jlog); $l =~ /task dead.*\Q$id\E/ && $l =~ /task dead.*\Q$ide\E/ }, 10),
   'the json worker ran the tasks');
is(DQTest::stop_pid($pid, 'TERM', 20) >> 8, 0, 'json worker: exit status 0');
my @lines = split /\n/, slurp($jlog);
my @objs = grep { defined } map { eval { decode_json($_) } } @lines;
is(scalar @objs, scalar @lines, 'log_format json: every line is a JSON object (' . scalar(@lines) . ' lines)');
my ($fin) = grep { ($_->{msg} // '') eq 'task finished' && $_->{id} eq $id } @objs;
is_deeply({ map { $_ => $fin->{$_} } qw(level process queue function attempt result) },
          { level => 'info', process => 'child 1', queue => 'default', function => 'permanent',
            attempt => 1, result => 'permanent' },
          'task finished: the same fields as the text line, attempt a number');
ok(defined $fin->{duration_ms} && $fin->{duration_ms} =~ /^\d+$/, '... and duration_ms');
my ($dead) = grep { ($_->{msg} // '') eq 'task dead' && $_->{id} eq $id } @objs;
is($dead->{reason}, 'smtp: 550 "no" such user', 'task dead: the reason with its quotes intact');
# an error text cannot forge fields or lines (before: queue "evil", attempt 99)
my ($ev) = grep { ($_->{msg} // '') eq 'task dead' && $_->{id} eq $ide } @objs;
is($ev->{reason}, $evil, 'an error text with " queue="evil, a newline and a backslash: one field, intact');
is($ev->{queue}, 'default', '... the queue field is not forged');
is($ev->{attempt}, 1, '... nor the attempt');
ok(!exists $ev->{y}, '... nor any other field');
ok(!grep({ /^forged line/ } @lines), '... and no line starts with its text');
like($objs[-1]{msg}, qr/master exits with status 0/, 'the last object says why it stopped');
ok($objs[0]{time} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time in UTC with ms');

my $t = `$bin --log_format xml -t 2>&1`;
is($? >> 8, 1, 'log_format xml: -t fails');
like($t, qr/invalid value "xml" in "log_format" directive/, '... naming the value');

my $unit = slurp("$DQTest::ROOT/examples/systemd/deferred-worker.service");
like($unit, qr/^Type=notify$/m, 'the unit is Type=notify');
like($unit, qr/^WatchdogSec=\d+s$/m, 'with a watchdog');
done_testing;
