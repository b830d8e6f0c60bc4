# nginx does not place a named task by a shard count read long ago
# (review RM finding 5): queue "grow" has 4 shards, nginx reads 4; the
# operator grows it to 8 and another producer stores k0 under N = 8;
# then shard 0's conf becomes unreadable (WRONGTYPE: the re-reads are
# refused). Past DQ_SHARDS_KEEP_MS (4 s) since nginx's last read, k0
# through nginx is refused (503), not stored a second time in its shard
# of 4; an unnamed task still goes. Before the fix: 201, and k0 was live
# in two shards.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
sub conf { $_[0] ? "dq2:{grow#$_[0]}:conf" : 'dq2:{grow}:conf' }
sub tasks { $_[0] ? "dq2:{grow#$_[0]}:tasks" : 'dq2:{grow}:tasks' }
$r->cmd('HSET', conf($_), 'shards', 4) for 0 .. 3;
my $n = DQNginx->start(workers => 1, vars => { ADDR => '127.0.0.1:' . $r->port }, http => q{
    deferred_redis %%ADDR%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /ep { deferred_endpoint on; }
    }
});
my $a = $n->request('POST', '/ep', json => '{"func":"noop","queue":"grow","name":"warm"}');
is($a->{status}, 201, 'N = 4 read: a named task stored');

$r->cmd('HSET', conf($_), 'shards', 8) for 0 .. 7;
my ($st) = DQTest::capture(DQTest::build_dir() . '/client/deferred-cli', '-r',
                           '127.0.0.1:' . $r->port, 'defer', '-q', 'grow', '-n', 'k0', 'f');
is($st, 0, 'k0 stored by a producer that reads N = 8');
my @live = grep { $r->cmd('HEXISTS', tasks($_), 'k0') || 0 } 0 .. 7;
$r->cmd('DEL', conf(0));
$r->cmd('SET', conf(0), 'x');
sleep 4.5;
$a = $n->request('POST', '/ep', json => '{"func":"noop","queue":"grow","name":"k0"}');
is($a->{status}, 503, "shard 0's conf unreadable, N read 4.5 s ago: named k0 refused")
    or diag "$a->{status} $a->{body}";
my $copies = 0;
for my $s (0 .. 7) {
    my $h = $r->cmd('HLEN', tasks($s)) || 0;
    $copies += $h;
}
is($copies, 2, 'two tasks in all (warm and the one k0): k0 not stored a second time')
    or diag "k0 first in shard(s) @live";
$a = $n->request('POST', '/ep', json => '{"func":"noop","queue":"grow"}');
is($a->{status}, 201, 'an unnamed task still goes (shard 0)');
is($n->stop, 0, 'nginx exited with status 0');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
