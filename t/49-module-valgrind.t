# The module under valgrind (Debian's nginx cannot load an ASan-built
# module): nginx in one process (master_process off) through every path
# that owns memory — stored tasks, batches, a temp-file body, each error,
# the HMAC check, NOSCRIPT -> EVAL, a command timeout, a client that leaves
# while its request waits on Redis, Redis killed and back — then a clean
# exit. Valgrind must report no invalid access and no leak from the module
# or the libraries it drives (nginx's own start-up allocations aside).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();
DQTest::need_tool(-x '/usr/bin/valgrind', 'valgrind');

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $vg = "$dir/valgrind.log";
my $n = DQNginx->start(redis => $r, workers => 0,
    wrapper => ['/usr/bin/valgrind', '--leak-check=full', '--num-callers=30',
                "--log-file=$vg"],
    http => q{
    deferred_redis %%REDIS%%;
    deferred_timeout 5s;   # valgrind on a loaded 2-core machine: a 1 s Redis round trip was seen
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:%%PORT%%;
        deferred_endpoint on;
        location = /enqueue {
            deferred_enqueue noop name=$arg_n args=$arg_k int:$arg_i;
            deferred_enqueue noop queue=q2 countdown=5;
            deferred_return 200 "ok $deferred_task_id\n";
        }
        location = /signed {
            deferred_endpoint on;
            deferred_secret 0123456789abcdef0123 another-secret-0123;
        }
        location = /small {
            deferred_endpoint on;
            deferred_max_body 2k;
        }
        location /idx/ {
            root %%DIR%%;
            deferred_enqueue noop queue=idx;
        }
    }
});
my $EP = '/_ah/queue/deferred';
my $post = sub { $n->request('POST', $EP, json => $_[0] // '{"func":"noop"}')->{status} };

is($n->request('GET', '/enqueue?n=a&k=x&i=1')->{status}, 200, 'enqueue location');
is($n->request('GET', '/enqueue?n=a&k=x&i=1')->{status}, 409, 'duplicate');
is($n->request('GET', '/enqueue?i=z')->{status}, 400, 'bad argument');
is($post->('[{"func":"f","name":"b"},{"func":"f","name":"b","queue":"q3"},{"func":"f","name":"b"}]'),
   207, 'batch over two queues with a duplicate');
is($post->('{"func":"f","args":["' . ('y' x 5000) . '"]}'), 201, 'temp-file body');
is($n->request('POST', $EP, msgpack => DQNginx::mp({ func => 'f', args => [1, \'s', [undef]] }))->{status},
   201, 'msgpack');
is($n->request('POST', $EP, msgpack => "\xdd\xff\xff\xff\xff")->{status}, 400, 'hostile msgpack');
is($post->('{"func":'), 400, 'malformed JSON');
is($post->('{"func":"f","x":1}'), 400, 'unknown field');
is($n->request('POST', $EP, body => 'x', type => 'text/plain')->{status}, 415, 'wrong content type: 415');
is($n->request('POST', '/signed', json => '{"func":"f"}')->{status}, 403, 'unsigned request: 403');
{
    my $t = time;
    my $b = '{"func":"f","args":["' . ('s' x 3000) . '"]}';
    my $sig = "t=$t,v1=" . DQNginx::hmac_sha256_hex('another-secret-0123', "POST\n/signed\n$t\n$b");
    is($n->request('POST', '/signed', json => $b, headers => { 'X-Deferred-Signature' => $sig })->{status},
       201, 'signed (second secret), body in a temp file: 201');
}
is($n->request('POST', $EP, json => '[{"func":"f"},{"func":"g"}]',
               headers => { 'Idempotency-Key' => 'vg-1' })->{status}, 201, 'Idempotency-Key batch');
{
    my $b = '{"func":"f","args":["' . ('c' x 5000) . '"]}';
    my $raw = "POST /small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            . "Transfer-Encoding: chunked\r\n\r\n" . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $b, $b);
    my ($res) = $n->many([$raw], conns => 1);
    is($res->{status}, 413, 'chunked body over deferred_max_body: 413 while reading');
}
mkdir $n->dir . '/idx';
{ open my $fh, '>', $n->dir . '/idx/index.html' or die; print $fh "i\n"; close $fh; }
is($n->request('GET', '/idx/')->{status}, 200, 'enqueue location through an index redirect');
$r->cmd('SCRIPT', 'FLUSH');
is($post->(), 201, 'NOSCRIPT -> EVAL');

kill 'STOP', $r->pid;
is($post->(), 503, 'Redis frozen: 503 at the timeout');
for my $req (DQNginx::build_request('GET', '/enqueue?k=x&i=1'),
             DQNginx::build_request('POST', $EP, json => '{"func":"f","name":"gone"}')) {
    # a client that leaves while its request waits on Redis (the
    # deferred_enqueue location, the endpoint: both end it, 499)
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port);
    print {$s} $req;
    sleep 0.3;
    close $s;
}
sleep 5.5;   # past deferred_timeout: the timed-out request's late reply path
kill 'CONT', $r->pid;
ok(DQTest::wait_for(sub { $post->() == 201 }, 15, 0.2), 'Redis thawed: 201');
kill 'KILL', $r->pid;
sleep 0.3;
is($n->request('GET', '/enqueue?k=x&i=1')->{status}, 503, 'Redis killed: 503');
$r->restart;
ok(DQTest::wait_for(sub { $post->() == 201 }, 15, 0.2), 'Redis back: 201');

is($n->stop, 0, 'nginx exited with status 0');
my $log = slurp($vg);
ok(length $log, 'valgrind wrote its report');
like($log, qr/ERROR SUMMARY/, 'valgrind ran to the end');
unlike($log, qr/Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched free|overlap/,
       'no invalid memory access') or diag $log;

# leak records whose stack goes through our code or the libraries it drives
my @ours = grep { /ngx_http_deferred|dq_|redis|msgpack|json_|HMAC/ }
           grep { /(definitely|indirectly) lost in loss record/ }
           split /\n(?===\d+== \S.*lost in loss record)/, $log;
is(scalar @ours, 0, 'no leak from the module, hiredis, msgpack-c, jansson or OpenSSL')
    or diag join "\n\n", @ours;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
