# Redis addresses, passwords and databases the same way in every part
# (issue 9): the CLI takes a password and a database (env or -a, --db) and
# uses them for every command, dead listing included; the worker takes the
# bare HOST form its docs show, resolves a name, and its pause command goes
# through the same client connect; one error text for a bad address.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $lib = DQWorker::example_lib();
my $tlib = DQTest::require_built(bin('examples/tasklet/libdq_tasklet_example.so'),
                                 'tasklet example library');
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir,
    args => ['--requirepass', 's3cret', '--unixsocket', "$dir/r.sock"]);
is($r->cmd('AUTH', 's3cret'), 'OK', 'test connection authenticated');
$r->cmd('SELECT', 2);
my $port = $r->port;
my $wbin = DQWorker::worker_bin();
my $cli = bin('deferred-cli');

sub run { DQTest::capture(@_) }

# ---- the CLI: a name, a password, a database
my ($rc, $out, $err) = run($cli, '-r', "localhost:$port", '-a', 's3cret',
                           '--db', '2', 'defer', '-q', 'aq', 'record',
                           "$dir/rec");
is($rc, 0, 'cli defer with -a and --db to a host name') or diag($err);
is($r->cmd('ZCARD', 'dq2:{aq}:eta'), 1, 'the task is in database 2');

($rc, $out, $err) = run($cli, '-r', "localhost:$port", 'stats', 'aq');
is($rc, 1, 'without the password: exit 1');
like($err, qr/NOAUTH|AUTH/i, 'and Redis says why') or diag($err);

{
    local $ENV{DEFERRED_REDIS_PASSWORD} = 's3cret';
    ($rc, $out, $err) = run($cli, '-r', "unix:$dir/r.sock", '--db', '2',
                            'stats', 'aq');
    is($rc, 0, 'stats over unix:PATH, password from the environment')
        or diag($err);
    like($out, qr/^waiting 1$/m, 'and sees the task in database 2');

    $r->cmd('ZADD', 'dq2:{aq}:dead', 1, 'deadid');
    ($rc, $out, $err) = run($cli, '-r', "127.0.0.1:$port", '--db', '2',
                            'dead', 'aq');
    is($rc, 0, 'dead listing authenticates and selects like the rest')
        or diag($err);
    like($out, qr/^deadid /m, 'and lists database 2');
    $r->cmd('DEL', 'dq2:{aq}:dead');
}

# an empty password is none: -a '' or an exported empty variable must not
# send AUTH "" (which a Redis without a password refuses)
{
    my $d2 = tmpdir();
    my $open = DQTest::Redis->start(dir => $d2);
    ($rc, $out, $err) = run($cli, '-r', $open->address, '-a', '', 'stats');
    is($rc, 0, "cli -a '' to a Redis without a password: no AUTH")
        or diag($err);
    local $ENV{DEFERRED_REDIS_PASSWORD} = '';
    ($rc, $out, $err) = run($cli, '-r', $open->address, 'stats');
    is($rc, 0, 'DEFERRED_REDIS_PASSWORD= (empty): no AUTH') or diag($err);
    ($rc, $out, $err) = run($wbin, '-r', $open->address, 'pause', 'eq');
    is($rc, 0, 'worker pause with no password configured') or diag($err);
    $open->stop;
}

for my $bad ("127.0.0.1:0", "127.0.0.1:", "[::1", "unix:") {
    ($rc, $out, $err) = run($cli, '-r', $bad, '-a', 's3cret', 'stats');
    is($rc, 2, "cli -r '$bad': exit 2");
    like($err, qr/invalid Redis address/, '... with the one parser\'s text');
}
($rc, $out, $err) = run($cli, '--db', 'two', 'stats');
is($rc, 2, 'cli --db two: exit 2');

# ---- the worker: the bare HOST form and a name are valid addresses
($rc, $out, $err) = run($wbin, '-t', '-r', '127.0.0.1', '-l', $lib);
is($rc, 0, 'worker -t -r 127.0.0.1 (bare HOST, port 6379)') or diag($err);
($rc, $out, $err) = run($wbin, '-t', '-r', 'localhost', '-l', $lib);
is($rc, 0, 'worker -t -r localhost (a name)') or diag($err);
($rc, $out, $err) = run($wbin, '-t', '-r', '127.0.0.1:0', '-l', $lib);
is($rc, 1, 'worker -t -r 127.0.0.1:0 refused');

# pause goes through the client: name, password, database
($rc, $out, $err) = run($wbin, '-r', "localhost:$port", '--redis_password',
                        's3cret', '--redis_db', '2', 'pause', 'aq');
is($rc, 0, 'worker pause with a password and a database') or diag($err);
like($out, qr/queue aq paused/, 'says so');
is($r->cmd('HGET', 'dq2:{aq}:conf', 'paused'), '1', 'flag set in database 2');
($rc, $out, $err) = run($wbin, '-r', "localhost:$port", '--redis_password',
                        's3cret', '--redis_db', '2', 'resume', 'aq');
is($rc, 0, 'worker resume') or diag($err);
($rc, $out, $err) = run($wbin, '-r', "localhost:$port", 'pause', 'aq');
is($rc, 1, 'pause without the password fails');
like($err, qr/NOAUTH|AUTH/i, 'and says why') or diag($err);

# the worker runs the task: a name resolved once, AUTH and SELECT
my $log = "$dir/w.log";
my $pid = DQTest::spawn(name => 'w', log => $log,
    cmd => [$wbin, '-r', "localhost:$port", '--redis_password', 's3cret',
            '--redis_db', '2', '--master_process', 'off', '-q', 'aq',
            '-l', $lib]);
my @rec = DQWorker::wait_records("$dir/rec", 1, 20);
is(scalar(@rec), 1, 'the worker ran the task from database 2')
    or diag(DQTest::slurp($log));
is(DQTest::stop_pid($pid), 0, 'worker stops cleanly');
log_clean_ok($log);

# a task library's own blocking connection (dq_worker_redis_connect): the
# worker's address, password and database, both for a plain function and
# for a tasklet's runtime connection
{
    $log = "$dir/w2.log";
    $pid = DQTest::spawn(name => 'w2', log => $log,
        cmd => [$wbin, '-r', "localhost:$port", '--redis_password', 's3cret',
                '--redis_db', '2', '--master_process', 'off', '-l', $tlib]);
    ($rc, $out, $err) = run($cli, '-r', "127.0.0.1:$port", '-a', 's3cret',
                            '--db', '2', 'defer', 'example.sum_plain', 'pw',
                            5);
    is($rc, 0, 'deferred example.sum_plain') or diag($err);
    DQTest::wait_for(sub { ($r->cmd(qw(LLEN ex:pw:results)) // 0) >= 1 }, 20);
    like($r->cmd(qw(LINDEX ex:pw:results 0)) // '', qr/^10:/,
         'a plain function\'s own connection authenticated and selected '
         . 'database 2') or diag(DQTest::slurp($log));
    is(DQTest::stop_pid($pid), 0, 'worker stops cleanly');
}

done_testing();
