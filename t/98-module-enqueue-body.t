# deferred_enqueue and request bodies, subrequests (issue 11 review):
# the body is read before the task is stored, so a chunked body over
# client_max_body_size (413) or a client gone mid-upload stores nothing,
# and the location's proxy_pass still sends the body on; a subrequest (SSI
# include, mirror) never stores: once per client request.
# (Before the fix the chunked 413 and the abort each stored a task, and an
# SSI page including an enqueue location twice stored two.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;

DQNginx::require_nginx();

my $dir = tmpdir();
mkdir "$dir/html";
open my $fh, '>', "$dir/html/ssi.html" or die;
print $fh qq{a<!--# include virtual="/t1" -->b<!--# include virtual="/t1" -->c\n};
close $fh;

my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    client_body_timeout 2s;
    server {
        listen 127.0.0.1:%%PORT%%;
        root $dir/html;
        location = /up {
            client_max_body_size 1k;
            deferred_enqueue noop queue=up;
            proxy_pass http://127.0.0.1:%%PORT%%/echo;
        }
        location = /big {
            client_max_body_size 1m;
            deferred_enqueue noop queue=big;
            deferred_return 200 "big\\n";
        }
        location = /echo {
            deferred_enqueue noop queue=echo args=\$request_body;
            deferred_return 200 "echo\\n";
        }
        location = /t1 { deferred_enqueue noop queue=sub; deferred_return 200 "t1\\n"; }
        location = /ssi.html { ssi on; ssi_types *; }
        location = /mep { deferred_endpoint on; mirror /m; }
        location = /mepf {
            deferred_endpoint on;
            mirror /m;
            client_body_buffer_size 1k;
        }
        location = /m { internal; return 204; }
        location = /mir {
            mirror /t1;
            deferred_enqueue noop queue=mir;
            deferred_return 200 "mir\\n";
        }
    }
});

sub raw {
    my ($text, $close_early) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port,
                                  Proto => 'tcp') or die "connect: $@";
    print {$s} $text;
    if ($close_early) { close $s; return 0 }
    local $/;
    my $res = <$s> // '';
    my ($status) = $res =~ m{^HTTP/1\.1 (\d+)};
    return $status // 0;
}

my $res = $n->request('POST', '/up', json => '{"hello":"body"}');
is($res->{status}, 200, 'POST with a body through deferred_enqueue + proxy_pass: 200');
is(DQNginx::stored($r, 'up'), 1, '... one task');
is(DQNginx::stored($r, 'echo'), 1, '... and the backend got the request');
my ($env) = values %{ { @{ $r->cmd('HGETALL', 'dq2:{echo}:tasks') } } };
like($env // '', qr/hello.*body/, '... with its body (proxy_pass still had it)');

my $chunk = 'x' x 2000;
my $st = raw("POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           . "Transfer-Encoding: chunked\r\n\r\n"
           . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $chunk, $chunk));
is($st, 413, 'a chunked body over client_max_body_size: 413');
is(DQNginx::stored($r, 'up'), 1, '... and no task stored');

raw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" . ('y' x 100), 1);
ok(wait_for(sub { DQTest::slurp($n->error_log) =~ /client prematurely closed|closed connection/ }, 5),
   'a client gone mid-upload: nginx saw it');
raw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" . ('y' x 100));
is(DQNginx::stored($r, 'big'), 0, '... a client gone or a body timeout mid-upload stores nothing');
is(raw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
   200, 'the whole body: 200');
is(DQNginx::stored($r, 'big'), 1, '... one task');

$res = $n->request('GET', '/ssi.html');
is($res->{status}, 200, 'an SSI page including an enqueue location twice');
is(DQNginx::stored($r, 'sub'), 0, '... stores nothing from its subrequests');
is($n->request('GET', '/mir')->{status}, 200, 'a location mirroring to an enqueue location');
is(DQNginx::stored($r, 'mir'), 1, '... stores its own task');
select(undef, undef, undef, 0.3);
is(DQNginx::stored($r, 'sub'), 0, '... not the mirror subrequest\'s');
is($n->request('GET', '/t1')->{status}, 200, 'the enqueue location asked directly');
is(DQNginx::stored($r, 'sub'), 1, '... stores');

# a location endpoint after a module that read the body first (mirror,
# mirror_request_body on): the endpoint uses nginx's buffers (before the
# fix it saw an empty body: 400)
$res = $n->request('POST', '/mep', json => '{"func":"noop","queue":"mep"}');
is($res->{status}, 201, 'endpoint after mirror_request_body: 201');
is(DQNginx::stored($r, 'mep'), 1, '... the task stored');
$res = $n->request('POST', '/mepf', json => '{"func":"noop","queue":"mep","args":["' . ('z' x 3000) . '"]}');
is($res->{status}, 500, '... the body in a temp file (no blocking read): 500');
like(DQTest::slurp($n->error_log), qr/\[error\].*the request body was read before the deferred endpoint/,
     '... with a log line saying why');
is(DQNginx::stored($r, 'mep'), 1, '... nothing stored');

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
