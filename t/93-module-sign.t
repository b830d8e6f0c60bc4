# Request signatures (issue 11, item 4; lib/dq_sign.h): method, URI, a
# timestamp and the body are signed, so a captured request cannot be
# replayed to another endpoint location (another task URL) or after the
# window; two secrets at once let keys rotate without a flag day; a body
# nginx spooled to a temp file is checked without reading the file back.
# (Before the fix the signature covered the body only: every replay here
# was accepted.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Digest::SHA ();

DQNginx::require_nginx();

my $OLD = 'the old secret, 16+ chars';
my $NEW = 'the new secret, 16+ chars';
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /a/ { deferred_endpoint on; deferred_secret "$OLD"; }
        location /b/ { deferred_endpoint on; deferred_secret "$OLD"; }
        location /rot/ { deferred_endpoint on; deferred_secret "$NEW" "$OLD"; }
        location /short/ { deferred_endpoint on; deferred_secret "$OLD" window=5s; }
    }
});

sub sig {
    my ($secret, $method, $uri, $t, $body) = @_;
    return DQNginx::hmac_sha256_hex($secret, "$method\n$uri\n$t\n$body");
}
sub post {
    my ($uri, $body, $hdr) = @_;
    return $n->request('POST', $uri, json => $body,
                       $hdr ? (headers => { 'X-Deferred-Signature' => $hdr }) : ());
}

my $now = time;
my $body = '{"func":"noop","queue":"s1"}';
my $h = "t=$now,v1=" . sig($OLD, 'POST', '/a/x', $now, $body);
is(post('/a/x', $body, $h)->{status}, 201, 'signed request: 201');
is(post('/a/y', $body, $h)->{status}, 403, 'replayed to another URI of the same location: 403');
is(post('/b/x', $body, $h)->{status}, 403, 'replayed to another endpoint location: 403');
is(post('/a/x?u=1', $body, $h)->{status}, 403, 'query string added: 403');
is(post('/a/x', $body . ' ', $h)->{status}, 403, 'body changed: 403');
is(DQNginx::stored($r, 's1'), 1, 'only the genuine request stored');

# replayed as is within the window (or with a v1= added): the task's id is
# derived from the signature, so the replay stores nothing
my $res0 = post('/a/x', $body, $h);
is($res0->{status}, 201, 'replay within the window: 201');
like($res0->{body}, qr/"id":"sig-[0-9a-f]{40}".*"status":"existed"/, 'existed, id from the signature');
is(post('/a/x', $body, $h . ',v1=' . ('0' x 64))->{status}, 201, 'replay with a v1 added: 201');
is(DQNginx::stored($r, 's1'), 1, 'replays stored nothing');
# an Idempotency-Key is not signed: added to a captured request it would
# name a new id and store the task again (before the fix: 201 created)
my $resk = $n->request('POST', '/a/x', json => $body,
    headers => { 'X-Deferred-Signature' => $h, 'Idempotency-Key' => 'fresh-1' });
is($resk->{status}, 400, 'replay with an Idempotency-Key added: 400');
like($resk->{body}, qr/not covered by the signature/, '... says why');
is(DQNginx::stored($r, 's1'), 1, 'replays stored nothing');
my ($sid) = $res0->{body} =~ /"id":"(sig-[0-9a-f]{40})"/;
is($sid, 'sig-' . substr(Digest::SHA::sha256_hex("POST\n/a/x\n$now\n$body"), 0, 40),
   'the id is the SHA-256 of the signed content, not a MAC');
my $until = $r->cmd('ZSCORE', 'dq2:{s1}:names', "#$sid") // 0;
ok($until > time * 1000 + 590_000 && $until < time * 1000 + 610_000,
   'the signature id is remembered for twice the window (600 s), not the tombstone window');

# times taken fresh: $now was read earlier, and a loaded machine may have
# moved on by seconds since (a "301 s ahead" from then is 299 s ahead now)
my $old = int(time) - 301;
my $hs = "t=$old,v1=" . sig($OLD, 'POST', '/a/x', $old, $body);
my $res = post('/a/x', $body, $hs);
is($res->{status}, 403, 'stale signature (301 s old): 403');
like($res->{body}, qr/outside the 300 s window/, 'says the window');
my $fut = int(time) + 305;
is(post('/a/x', $body, "t=$fut,v1=" . sig($OLD, 'POST', '/a/x', $fut, $body))->{status},
   403, 'signature from 305 s in the future: 403');
my $t10 = $now - 10;
is(post('/short/x', $body, "t=$t10,v1=" . sig($OLD, 'POST', '/short/x', $t10, $body))->{status},
   403, 'window=5s: 10 s old refused');
is(post('/a/x', $body, "t=$t10,v1=" . sig($OLD, 'POST', '/a/x', $t10, $body))->{status},
   201, 'default window: 10 s old accepted');

# rotation: the location holds both; callers sign with either, or both
my $b2 = '{"func":"noop","queue":"s2"}';
is(post('/rot/x', $b2, "t=$now,v1=" . sig($OLD, 'POST', '/rot/x', $now, $b2))->{status},
   201, 'rotation: signed with the old secret 201');
is(post('/rot/x', $b2, "t=$now,v1=" . sig($NEW, 'POST', '/rot/x', $now, $b2))->{status},
   201, 'rotation: signed with the new secret 201');
is(post('/rot/x', $b2, "t=$now,v1=" . sig($NEW, 'POST', '/rot/x', $now, $b2)
        . ",v1=" . sig($OLD, 'POST', '/rot/x', $now, $b2))->{status},
   201, 'rotation: a signer holding both sends two v1');
# signed with both secrets, replayed with one v1= dropped (either one):
# the id does not depend on which secret matched (before the fix the
# second and third stored again)
my $b5 = '{"func":"noop","queue":"s5"}';
my ($vn, $vo) = (sig($NEW, 'POST', '/rot/x', $now, $b5), sig($OLD, 'POST', '/rot/x', $now, $b5));
like(post('/rot/x', $b5, "t=$now,v1=$vn,v1=$vo")->{body}, qr/"created"/, 'signed with both: created');
like(post('/rot/x', $b5, "t=$now,v1=$vn")->{body}, qr/"existed"/, 'replayed with the old v1 dropped: existed');
like(post('/rot/x', $b5, "t=$now,v1=$vo")->{body}, qr/"existed"/, 'replayed with the new v1 dropped: existed');
is(DQNginx::stored($r, 's5'), 1, 'stored once');
is(post('/rot/x', $b2, "t=$now,v1=" . sig('an unrelated secret!!', 'POST', '/rot/x', $now, $b2))->{status},
   403, 'rotation: a third secret refused');
is(post('/a/x', $b2, "t=$now,v1=" . sig($NEW, 'POST', '/a/x', $now, $b2))->{status},
   403, 'the new secret is not accepted where only the old is configured');

# malformed headers and the old body-only form
for my $bad ('sha256=' . DQNginx::hmac_sha256_hex($OLD, $body), "t=$now", 'v1=00',
             "t=$now,v1=xyz", "t=abc,v1=" . sig($OLD, 'POST', '/a/x', $now, $body)) {
    is(post('/a/x', $body, $bad)->{status}, 403, "malformed header refused: $bad");
}

# an unsigned (or stale) request announcing a large body is refused before
# nginx reads or buffers any of it (before the fix nginx waited for the
# whole body, 403 only after it: here, no answer until the timeout)
use IO::Socket::INET;
for my $case (['no signature', ''], ['a stale signature', "X-Deferred-Signature: t=" . ($now - 1000) . ",v1=" . ('0' x 64) . "\r\n"],
              ['a malformed signature', "X-Deferred-Signature: t=1\r\n"]) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port, Proto => 'tcp')
        or die "connect: $@";
    print {$s} "POST /a/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             . "Content-Length: 900000\r\n$case->[1]\r\n";
    my $got = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 5;
        sysread($s, $got, 4096);
        alarm 0;
    };
    like($got, qr{^HTTP/1\.1 403}, "$case->[0], a 900 kB body announced, none sent: 403 at once");
}
like(DQTest::slurp($n->error_log), qr/\[warn\].*403 X-Deferred-Signature from .*missing X-Deferred-Signature header \(before the body\)/,
     'logged at warn, before the body');

# a body of many buffers, spooled to a temp file (client_body_buffer_size 1k)
my $big = '{"func":"noop","queue":"s3","args":["' . ('x' x 20000) . '"]}';
is(post('/a/x', $big, "t=$now,v1=" . sig($OLD, 'POST', '/a/x', $now, $big))->{status},
   201, 'a 20 kB body spooled by nginx: signature checked, 201');

# --- the signers shipped for callers: deferred-cli sign (the C client's
# dq_sign_request) and the openssl/curl recipe of docs/MODULE.md
my $cli = DQTest::build_dir() . '/client/deferred-cli';
SKIP: {
    DQTest::skip_unless(-x $cli, 'deferred-cli not built', 3);
    open my $fh, '>', "$dir/old.key" or die; print $fh "$OLD\n"; close $fh;
    open $fh, '>', "$dir/new.key" or die; print $fh "$NEW\n"; close $fh;
    my $b3 = '{"func":"noop","queue":"s4"}';
    open $fh, '>', "$dir/body.json" or die; print $fh $b3; close $fh;
    my $h3 = `$cli sign -s $dir/old.key /a/cli $dir/body.json`;
    chomp $h3;
    like($h3, qr/^t=\d+,v1=[0-9a-f]{64}$/, "deferred-cli sign: $h3");
    is(post('/a/cli', $b3, $h3)->{status}, 201, 'signed by deferred-cli: 201');
    my $h4 = `$cli sign -s $dir/new.key -s $dir/old.key /rot/cli < $dir/body.json`;
    chomp $h4;
    is(post('/rot/cli', $b3, $h4)->{status}, 201,
       'deferred-cli sign with two secrets (rotation), body from stdin: 201');
}
SKIP: {
    DQTest::skip_unless(DQTest::in_path('openssl') && DQTest::in_path('curl'),
                        'no openssl/curl', 1);
    my $port = $n->port;
    my $code = `cd $dir && SECRET='$OLD' URI=/a/recipe sh -c '
t=\$(date +%s)
sig=\$( { printf "POST\\n%s\\n%s\\n" "\$URI" "\$t"; cat body.json; } |
       openssl dgst -sha256 -hmac "\$SECRET" -r | cut -d" " -f1)
curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" \\
     -H "X-Deferred-Signature: t=\$t,v1=\$sig" --data-binary \@body.json \\
     http://127.0.0.1:$port\$URI'`;
    is($code, '201', 'the openssl + curl recipe: 201');
}

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
