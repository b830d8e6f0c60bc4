# deferred-worker's configuration: -t on good and bad files (file, line
# and value named, exit 0/1, libraries checked), -T dump, --help from the
# same table, command-line overrides; pause/resume through Redis.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $bin = DQWorker::worker_bin();
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();

sub run {
    my (@args) = @_;
    my $out = "$dir/out.$$";
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $bin, @args or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return ($? >> 8, DQTest::slurp($out));
}

sub conf {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die;
    print {$fh} $text;
    close $fh;
    return "$dir/$name";
}

my $good = conf('good.conf', <<"EOF2");
# a complete configuration
redis 127.0.0.1:6390;
library "$lib";
processes 3;
threads 2;
grace 12s;
lease 45s;
function_timeout ops.span 90s;
function_timeout ops.run 250ms;
log_level debug;

queue mail {
    rate 20/m;
    bucket_size 4;
    max_concurrent 3;
    retry_limit 7;
    min_backoff 250ms;
    timeout 2m;
}
queue default;
EOF2

my ($rc, $out) = run('-c', $good, '-t');
is($rc, 0, '-t on a good file exits 0');
like($out, qr/configuration file \Q$good\E syntax is ok/, '-t says syntax ok');
like($out, qr/configuration file \Q$good\E test is successful/, '-t says successful');

($rc, $out) = run('-c', $good, '-T', '--threads', '5');
is($rc, 0, '-T exits 0');
like($out, qr/^threads 5;$/m, '-T dump shows the command-line override');
like($out, qr/^processes 3;$/m, '-T dump shows the file value');
like($out, qr/^grace 12s;$/m, 'times print in their unit');
like($out, qr/^function_timeout ops\.span 90s;\nfunction_timeout ops\.run 250ms;$/m, 'function timeouts dumped');
like($out, qr/queue mail \{[^}]*rate 0\.333333\/s;[^}]*bucket_size 4;[^}]*max_concurrent 3;[^}]*timeout 2m;[^}]*retry_limit 7;[^}]*min_backoff 250ms;/s,
     'queue block dumped with its settings');
like($out, qr/queue default \{[^}]*rate unlimited;[^}]*retry_limit default;/s,
     'queue without a block has the defaults');

# the dump is itself a valid configuration
my ($dump) = $out =~ /(# deferred-worker effective configuration.*)/s;
my $again = conf('dump.conf', $dump);
($rc, $out) = run('-c', $again, '-t');
is($rc, 0, 'the -T dump passes -t') or diag $out;

my %bad = (
    'bad value'  => ["threads zero;\n",               qr/invalid value "zero" in "threads" directive.* in \S+bad1\.conf:1/],
    'bad rate'   => ["queue q {\n  rate 5/x;\n}\n",   qr/invalid value "5\/x" in "rate" directive.* in \S+bad2\.conf:2/],
    'unknown'    => ["processes 2;\nfrobnicate 1;\n", qr/unknown directive "frobnicate" in \S+bad3\.conf:2/],
    'no semi'    => ["threads 2\n",                   qr/unexpected end of file|not terminated by ";"/],
    'queue ctx'  => ["rate 5/s;\n",                   qr/unknown directive "rate" outside a queue block in \S+bad5\.conf:1/],
    'bad queue'  => ["queue a.b;\n",                  qr/invalid queue name "a\.b" .* in \S+bad6\.conf:1/],
    'open block' => ["queue q {\n rate 1/s;\n",       qr/unexpected end of file, expecting "\}" in \S+bad7\.conf/],
    'dup queue'  => ["queue q;\nqueue q;\n",          qr/duplicate queue "q" in \S+bad8\.conf:2/],
    'bad addr'   => ["redis localhost:0;\n",          qr/invalid value "localhost:0" in "redis" directive/],
    'bad time'   => ["lease 10parsecs;\n",            qr/invalid value "10parsecs" in "lease" directive.*bad10\.conf:1/],
    'fn timeout' => ["function_timeout 'a b' 1s;\n",  qr/invalid value "a b 1s" in "function_timeout" directive.*bad11\.conf:1/],
    'fn args'    => ["function_timeout x.y;\n",      qr/invalid number of arguments in "function_timeout" directive in \S+bad12\.conf:1/],
);
my $n = 0;
for my $k ('bad value', 'bad rate', 'unknown', 'no semi', 'queue ctx', 'bad queue',
           'open block', 'dup queue', 'bad addr', 'bad time', 'fn timeout', 'fn args') {
    $n++;
    my $f = conf("bad$n.conf", $bad{$k}[0]);
    ($rc, $out) = run('-c', $f, '-t');
    is($rc, 1, "-t on a bad file ($k) exits 1");
    like($out, $bad{$k}[1], "-t names the problem ($k)");
    like($out, qr/configuration file \Q$f\E test failed/, "-t says failed ($k)");
}

# the documented example configuration passes -t (its library path
# replaced by a built one)
my $example = DQTest::root() . '/examples/deferred-worker.conf';
($rc, $out) = run('-c', $example, '-l', $lib, '-T');
is($rc, 0, 'examples/deferred-worker.conf passes -t') or diag $out;
like($out, qr/queue mail \{[^}]*weight 2;[^}]*rate 10\/s;[^}]*bucket_size 20;[^}]*max_concurrent 4;[^}]*timeout 2m;[^}]*retry_limit 7;[^}]*age_limit 1d;[^}]*min_backoff 1s;[^}]*max_backoff 1h;[^}]*max_doublings 5;/s,
     'its mail queue is read as documented');
like($out, qr/^library "\Q$lib\E";$/m, 'a command-line library replaces the file\'s');

# a library that does not load fails -t
my $nolib = conf('nolib.conf', "library $dir/missing.so;\n");
($rc, $out) = run('-c', $nolib, '-t');
is($rc, 1, '-t with a missing library exits 1');
like($out, qr/task library failed to load: .*missing\.so/, '-t names the library');

# a bad command-line value
($rc, $out) = run('--processes', 'many', '-t');
is($rc, 1, 'bad command-line value exits 1');
like($out, qr/invalid value "many" in "processes" directive .*command line/, 'and says so');

($rc, $out) = run('--help');
is($rc, 0, '--help exits 0');
for my $d (qw(redis library processes threads concurrency claim_size lease grace
              log_file log_level pid_file rate bucket_size max_concurrent
              timeout retry_limit age_limit min_backoff max_backoff
              max_doublings weight function_timeout)) {
    like($out, qr/^\s+\Q$d\E /m, "--help lists $d");
}

# ---- pause / resume against a running worker
my $r = DQTest::Redis->start;
my $w = DQWorker::start_master($r, $dir, name => 'pw', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
queue pq;
EOF2
($rc, $out) = run('-r', $r->address, 'pause', 'pq');
is($rc, 0, 'pause exits 0');
like($out, qr/queue pq paused/, 'pause says so');
($rc, $out) = run('-r', $r->address, 'pause', 'pq');
like($out, qr/queue pq was already paused/, 'pausing twice says already');
DQWorker::defer($r, '-q', 'pq', 'ops.run', "$dir/p.rec") for 1 .. 5;
sleep 1.0;
is(scalar(DQWorker::lines("$dir/p.rec", 'R')), 0, 'a paused queue runs nothing');
is(DQWorker::waiting($r, 'pq'), 5, 'its tasks wait in the queue');
my $t0 = time;
($rc, $out) = run('-r', $r->address, 'resume', 'pq');
is($rc, 0, 'resume exits 0');
my @l = DQWorker::wait_lines("$dir/p.rec", 'R', 5, 10);
my $dt = time - $t0;
is(scalar(@l), 5, 'after resume all 5 ran');
ok($dt < 2, sprintf('resume woke the sleeping worker (%.0f ms)', $dt * 1000));
($rc, $out) = run('-r', $r->address, 'pause', 'bad.name');
is($rc, 2, 'pause of an invalid queue name exits 2');

is(DQTest::stop_pid($w->{pid}), 0, 'worker exits 0 on SIGTERM');
DQTest::log_clean_ok($w->{log});
# the option's earlier name still works (a file that passed -t before an
# upgrade still does)
my $old = conf('old.conf', "redis 127.0.0.1:6390;\nlibrary \"$lib\";\nbatch 8;\n");
($rc, $out) = run('-c', $old, '-T');
is($rc, 0, 'the earlier name "batch" is accepted') or diag $out;
like($out, qr/^claim_size 8;$/m, '"batch" sets claim_size');

done_testing();
