# The push settings of deferred-worker's configuration: -t refuses a
# push_target that is not an http(s) URL (naming the queue and value), -T
# prints push_target, push_deadline and push_secret; a push queue whose
# worker did not load the push library leaves its tasks to a worker that
# has it (released, as any function a worker lacks), saying so, instead of
# running their own function.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $bin = DQWorker::worker_bin();
my $dir = $ENV{DQ_KEEP} || tmpdir();

sub conf {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die;
    print {$fh} $text;
    close $fh;
    return "$dir/$name";
}

for my $bad ('127.0.0.1:8000', 'http://', 'http:///path', 'ftp://h/x', 'http://h/a b', 'http://h/?q') {
    my $f = conf('bad.conf', qq{queue q1 { push_target "$bad"; }\n});
    my ($rc, $out, $err) = DQTest::capture($bin, '-c', $f, '-t');
    isnt($rc, 0, "-t refuses push_target \"$bad\"");
    like($out . $err, qr/queue q1: invalid push_target/, '... naming the queue');
}
my $f = conf('good.conf', <<'EOF');
push_secret "0123456789abcdef-secret";
queue q1 { push_target http://127.0.0.1:8000/base; push_deadline 30s; }
queue q2;
EOF
my ($rc, $out, $err) = DQTest::capture($bin, '-c', $f, '-T');
is($rc, 0, '-T on a push configuration') or diag $err;
like($out, qr/push_secret "0123456789abcdef-secret";/, '-T prints push_secret');
like($out, qr/push_target "http:\/\/127\.0\.0\.1:8000\/base";\s*push_deadline 30s;/, '-T prints the push settings');
like($out, qr/queue q2 \{[^}]*push_target off;/s, 'a queue without push_target: off');

# a push queue without the push library
my $r = DQTest::Redis->start(dir => $dir);
my $lib = DQWorker::example_lib();
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
    args => ['-c', conf('w.conf', "queue default { push_target http://127.0.0.1:9; }\n")]);
my $id = DQWorker::defer($r, qw(noop));
ok(wait_for(sub { DQWorker::log_text($w) =~ /function "dq\.push \(queue with push_target: load the push library, libdq_push\.so\)" \(queue default\) is not registered here/ }, 10),
   'a push queue, no push library loaded: the worker says which library is missing');
ok($r->cmd('HEXISTS', 'dq2:{default}:tasks', $id), '... the task waits for a worker that has it');
is($r->cmd('HGET', 'dq2:{default}:stats', 'done') // 0, 0, '... its own function "noop" did not run');
is(DQWorker::stop_worker($w) >> 8, 0, 'the worker exits 0');
log_clean_ok("$dir/worker.log", 'worker log');
done_testing();
