# deferred-cli's commands that take QUEUE... (pause, resume, forget,
# config clear), as an operator mistypes them: no queue, or an invalid name
# after a valid one. Each is a usage error (exit 2, a line on stderr
# saying why, nothing on stdout, --json or not) found before anything is
# written: the valid queue named first is left exactly as it was. Under
# the sanitizer build a leak on these paths fails the exit code too.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $r = DQTest::Redis->start;

sub cli { DQWorker::cli($r, @_) }

sub state {
    my $conf = $r->cmd('HGETALL', DQTest::dq_key('ok', 'conf'));
    my $queues = $r->cmd('SMEMBERS', 'dq:queues');
    my %c = @$conf;
    return join(' ', map { "$_=$c{$_}" } sort keys %c)
         . ' | ' . join(' ', sort @$queues);
}

# the queue "ok": registered, a stored rate, paused
my ($rc, $out, $err) = cli(qw(queue ok --rate 5));
is($rc, 0, 'queue ok --rate 5: exit 0') or diag $err;
($rc, $out, $err) = cli(qw(pause ok));
is($rc, 0, 'pause ok: exit 0') or diag $err;
$r->cmd('SADD', 'dq:queues', 'ok');
my $before = state();
like($before, qr/paused=1/, 'ok is paused');
like($before, qr/\| .*\bok\b/, 'ok is registered');

for my $cmd (['pause'], ['resume'], ['forget'], ['config', 'clear']) {
    my $name = "@$cmd";
    for my $json ([], ['--json']) {
        my $how = @$json ? "$name --json" : $name;

        ($rc, $out, $err) = cli(@$json, @$cmd);
        is($rc, 2, "$how without a queue: exit 2");
        like($err, qr/\Q$name\E QUEUE\.\.\./, "... says what it takes");
        is($out, '', '... nothing on stdout');

        ($rc, $out, $err) = cli(@$json, @$cmd, 'ok', 'no such!');
        is($rc, 2, "$how ok 'no such!': exit 2");
        like($err, qr/invalid queue name "no such!"/, '... names the bad one');
        is($out, '', '... nothing on stdout');
        is(state(), $before, '... ok left as it was');
    }
}

done_testing();
