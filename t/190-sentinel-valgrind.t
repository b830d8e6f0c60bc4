# The module's Sentinel code under valgrind (Debian's nginx cannot load an
# ASan-built module): nginx in one process asks sentinels through every
# path that owns memory -- a sentinel that refuses the connection, one
# that answers (201s), one that names a replica (ROLE refused, asked
# again and again), the primary killed (the connection lost, the
# sentinels asked again until they name the promoted replica), then a
# clean exit. Valgrind must report no invalid access and no leak from the
# module or hiredis.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQSentinel;
use Test::More;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();
DQTest::need_tool(-x '/usr/bin/valgrind', 'valgrind');

my $dir = tmpdir();
my $s = DQSentinel->start(dir => $dir, master => 'dqm');
my $old = $s->primary;
my $repl = (grep { $_->port != $old->port } $s->{servers}->@*)[0];
my $stale = DQSentinel::spawn_sentinel("$dir/s-stale", 'old', $repl->port, 1);
my $dead = DQTest::free_port();
my $good = "sentinel:dqm\@127.0.0.1:$dead," . ($s->address =~ s/^sentinel:dqm\@//r);
my $vg = "$dir/valgrind.log";
mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", workers => 0,
    vars => { GOOD => $good, STALE => "sentinel:old\@127.0.0.1:$stale->{port}" },
    wrapper => DQNginx::valgrind($vg),
    http => q{
    deferred_timeout 3s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /good  { deferred_redis %%GOOD%% connect_timeout=1s; deferred_endpoint on; }
        location = /stale { deferred_redis %%STALE%% connect_timeout=1s; deferred_endpoint on; }
    }
});
my $post = sub {
    $n->request('POST', $_[0], json => '{"func":"noop","queue":"v"}')->{status}
};

ok(DQTest::wait_for(sub { $post->('/good') == 201 }, 30, 0.2),
   'through a refused sentinel, then one that answers: 201');
is($post->('/good'), 201, 'again: 201');
is($post->('/stale'), 503, 'a sentinel naming a replica: 503');
is($post->('/stale'), 503, '... again');
$s->kill_primary;
ok($s->wait_failover($old, 30), 'the sentinels promoted a replica');
ok(DQTest::wait_for(sub { $post->('/good') == 201 }, 30, 0.2),
   'after the primary was killed: 201 through the new one');

is($n->stop, 0, 'nginx exited with status 0');
DQNginx::valgrind_ok($vg);
my $el = slurp($n->error_log);
like($el, qr/sentinel 127\.0\.0\.1:$dead: .*refused/i, 'the refused sentinel logged');
like($el, qr/is not a master; asking them again/, 'the stale answer logged');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
