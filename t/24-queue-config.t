# Queue configuration applied to Redis is the fleet's one source of truth:
# two workers whose files disagree (one says max_concurrent 10 and rate
# 100/s, the other nothing) obey the applied queue.yaml: max_concurrent 2
# across both, its retry limit, its rate; the same queue without applied
# settings runs by the files (more than 2 at once: the control). Then:
# the project's own queue blocks apply too, `config show` gives the
# effective settings, `config clear` hands the queue back to the files,
# and what queue.yaml says that cannot be honoured (target, pull, acl) is
# refused with nothing written.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
my $bin = DQWorker::worker_bin();
my $lib = DQWorker::example_lib();
sub key { DQTest::dq_key(@_) }
sub cli { DQWorker::cli($r, @_) }
sub defer { my @o = cli('defer', @_); die $o[2] if $o[0]; (split ' ', $o[1])[0] }
sub wfile { my ($f, $t) = @_; open my $fh, '>', $f or die; print {$fh} $t; close $fh; $f }

my %w;
for my $name (qw(w1 w2)) {
    my $q = $name eq 'w1' ? "queue mail { rate 100/s; max_concurrent 10; }"
                          : "queue mail;";
    my $conf = wfile("$dir/$name.conf", "redis " . $r->address . ";\nlibrary $lib;\n"
                     . "processes 1;\nthreads 4;\nconcurrency 4;\n$q\n");
    $w{$name} = { log => "$dir/$name.log",
                  pid => spawn(name => $name, log => "$dir/$name.log",
                               cmd => [$bin, '-c', $conf]) };
}
ok(DQTest::wait_for(sub { (grep { slurp($_->{log}) =~ /redis \(wake\): connected/ } values %w) == 2 }, 20),
   'two workers up, their files disagree about mail');

# the most tasks running at once, from "end time" records of 300 ms sleeps
sub overlap { DQWorker::max_at_once(300, DQWorker::records($_[0])) }

# control: nothing applied, the files rule (w2 has no limit at all)
my $ctl = "$dir/control.rec";
defer('-q', 'mail', 'sleep_ms', 300, $ctl) for 1 .. 8;
DQWorker::wait_records($ctl, 8, 20);
my $o = overlap($ctl);
ok($o > 2, "control, nothing applied: $o ran at once (the files allow it)");

# apply App Engine's queue.yaml
my $yaml = wfile("$dir/queue.yaml", <<'YAML');
# App Engine's queue.yaml, as deployed there
queue:
- name: mail
  rate: 20/s
  bucket_size: 2
  max_concurrent_requests: 2
  retry_parameters:
    task_retry_limit: 0
    min_backoff_seconds: 0.2
    max_backoff_seconds: 10
- name: reports       # another queue
  rate: 1/m
YAML
my ($rc, $out, $err) = cli('config', 'apply', $yaml);
is($rc, 0, 'config apply queue.yaml: exit 0') or diag $err;
like($out, qr/^applied 2 queues from .*queue\.yaml$/m, 'it says what it applied');
is($r->cmd('HGET', key('mail', 'conf'), 'max_concurrent'), '2', 'mail: max_concurrent 2 in Redis');
is($r->cmd('HGET', key('mail', 'conf'), 'retry_limit'), '0', 'mail: retry_limit 0');
is($r->cmd('HGET', key('mail', 'conf'), 'min_backoff_ms'), '200', 'mail: min_backoff 200 ms');
is($r->cmd('HGET', key('reports', 'conf'), 'rate'), '0.0166667', 'reports: 1/m = 0.0166667/s');
ok(DQTest::wait_for(sub { (grep { slurp($_->{log}) =~ /queue mail: applied configuration from queue\.yaml: rate=20 bucket_size=2 max_concurrent=2 retry_limit=0/ } values %w) == 2 }, 10),
   'both workers read it (their log says so)');

my $lim = "$dir/limited.rec";
defer('-q', 'mail', 'sleep_ms', 300, $lim) for 1 .. 10;
DQWorker::wait_records($lim, 10, 30);
$o = overlap($lim);
ok($o <= 2, "applied max_concurrent 2: at most $o ran at once across both workers");
my %by = map { my $n = $_; ($n => scalar(() = slurp($w{$n}{log}) =~ /task finished: queue=mail .*function=sleep_ms/g)) } keys %w;
ok($by{w1} > 0 && $by{w2} > 0, "both workers ran some (w1 $by{w1}, w2 $by{w2} sleeps in all)");

# the applied retry limit (0: one run, then dead), though the files say 5
my $af = "$dir/fail.rec";
my $id = defer('-q', 'mail', 'always_fail', $af);
ok(DQTest::wait_for(sub { defined $r->cmd('ZSCORE', key('mail', 'dead'), $id) }, 10),
   'applied retry_limit 0: a failing task is dead after its first run');
is(scalar(DQWorker::records($af)), 1, '... which ran once');

# the applied rate: 20/s with a bucket of 2
my $rr = "$dir/rate.rec";
defer('-q', 'mail', 'record', $rr) for 1 .. 12;
my @rec = DQWorker::wait_records($rr, 12, 20);
my @ms = sort { $a <=> $b } map { $_->{ms} } @rec;
ok($ms[-1] - $ms[0] >= 350, 'applied rate 20/s, bucket 2: 12 tasks took ' . ($ms[-1] - $ms[0]) . ' ms (>= 500 - the bucket)');

# config show
my $show;
($rc, $out) = cli('--json', 'config', 'show', 'mail');
$show = decode_json($out)->[0];
is($show->{applied}, JSON::PP::true, 'config show: mail applied');
is($show->{source}, 'queue.yaml', '... from queue.yaml');
is($show->{max_concurrent}, 2, '... max_concurrent 2');
($rc, $out) = cli('config', 'show');
like($out, qr/^mail\s+applied \S+\s+20\s+2\s+2\s+0\s/m, 'config show: a table') or diag $out;

# refused: what cannot be honoured; nothing written
for my $bad (["target: backend\n", qr/target "backend" cannot be honoured/],
             ["mode: pull\n", qr/mode pull cannot be honoured/],
             ["acl:\n", qr/acl cannot be honoured/],
             ["frobs: 3\n", qr/unknown queue key "frobs"/]) {
    my $f = wfile("$dir/bad.yaml", "queue:\n- name: other\n  rate: 1/s\n  $bad->[0]");
    ($rc, $out, $err) = cli('config', 'apply', $f);
    is($rc, 2, "queue.yaml with $bad->[0]" =~ s/\n//r . ': exit 2');
    like($err, $bad->[1], '... says why');
}
# refused rather than mistranslated: rate 0 is paused in App Engine (here
# it would be unlimited), counts <= 0, a line that is not "key: value";
# the error names the yaml file and line
for my $bad (["rate: 0/s\n", qr/rate 0\/s pauses the queue in App Engine/],
             ["bucket_size: 0\n", qr/bucket_size: an integer >= 1/],
             ["max_concurrent_requests: 0\n", qr/max_concurrent_requests: an integer >= 1/],
             ["max_concurrent_requests: -1\n", qr/max_concurrent_requests: an integer >= 1/],
             ["retry_parameters:\n    task_retry_limit: -2\n", qr/task_retry_limit: a count >= 0/],
             # a line without its colon, in an entry and in retry_parameters
             ["bucket_size 5\n", qr/expected key: value, not "bucket_size 5"/],
             ["retry_parameters:\n    task_retry_limit 2\n", qr/expected key: value, not "task_retry_limit 2"/]) {
    my $f = wfile("$dir/bad2.yaml", "queue:\n- name: other\n  mode: push\n  $bad->[0]");
    ($rc, $out, $err) = cli('config', 'apply', $f);
    is($rc, 2, "queue.yaml with $bad->[0]" =~ s/\n//gr . ': exit 2');
    like($err, qr/\Q$f\E: line [45]: /, '... the error names the yaml file and its line') or diag $err;
    like($err, $bad->[1], '... says why');
    unlike($err, qr{/tmp/dq-queue}, '... not a temporary file');
}
ok(!$r->cmd('EXISTS', key('other', 'conf')), 'nothing of a refused file was written');
# a backoff below 1 ms is 1 ms, not 0 (a retry loop)
($rc, $out, $err) = cli('config', 'apply', wfile("$dir/tiny.yaml",
    "queue:\n- name: tiny\n  rate: 1/s\n  retry_parameters:\n    min_backoff_seconds: 0.0001\n"));
is($rc, 0, 'min_backoff_seconds 0.0001: applied') or diag $err;
is($r->cmd('HGET', key('tiny', 'conf'), 'min_backoff_ms'), '1', '... as 1 ms');
cli('config', 'clear', 'tiny');

# the project's own syntax; dry run; clear
my $blocks = wfile("$dir/queues.conf", "queue mail { max_concurrent 1; retry_limit 3; }\n");
($rc, $out) = cli('config', 'apply', $blocks, '--dry-run');
like($out, qr/would apply 1 queues .*dry run/, '--dry-run says what it would do');
is($r->cmd('HGET', key('mail', 'conf'), 'max_concurrent'), '2', '... and writes nothing');
($rc, $out, $err) = cli('config', 'apply', $blocks);
is($rc, 0, 'queue blocks apply') or diag $err;
is($r->cmd('HGET', key('mail', 'conf'), 'max_concurrent'), '1', 'mail: now max_concurrent 1');
($rc, $out, $err) = cli('config', 'apply', wfile("$dir/broken.conf", "queue mail { rate 5/x; }\n"));
is($rc, 2, 'a bad value: exit 2');
like($err, qr/invalid value "5\/x" in "rate" directive .* in .*broken\.conf:1/, '... in the worker parser\'s words');
($rc, $out) = cli('config', 'clear', 'mail');
is($rc, 0, 'config clear: exit 0');
ok(!defined $r->cmd('HGET', key('mail', 'conf'), 'cfg'), 'mail has no applied settings');
ok(DQTest::wait_for(sub { (grep { slurp($_->{log}) =~ /queue mail: applied configuration cleared/ } values %w) == 2 }, 10),
   'both workers went back to their files');
($rc, $out) = cli('config', 'show', 'mail');
like($out, qr/^mail\s+worker files/m, 'config show: worker files');

for (values %w) {
    is(DQTest::stop_pid($_->{pid}, 'TERM', 20) >> 8, 0, 'worker stops with status 0');
    log_clean_ok($_->{log});
}
done_testing;
