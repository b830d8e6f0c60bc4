# With sentinels or cluster seeds one connection attempt is a round of
# them, each up to connect_timeout: nginx warns at start when their
# number x connect_timeout is not below the longest deferred_timeout
# using that Redis (review RM finding 2: Redis down and 3 frozen
# sentinels, the defaults 1 s and 3 s: 503 at 3 s), and not when it is.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $conf = q{
    deferred_redis %%ADDR%% connect_timeout=%%CT%%;
    deferred_timeout 3s;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /ep { deferred_endpoint on; }
    }
};

my @p = map { free_port() } 1 .. 3;
for my $c (
    [ "sentinel:m\@127.0.0.1:$p[0],127.0.0.1:$p[1],127.0.0.1:$p[2]", '1s', 1, 'sentinels' ],
    [ "sentinel:m\@127.0.0.1:$p[0],127.0.0.1:$p[1],127.0.0.1:$p[2]", '900ms', 0, 'sentinels' ],
    [ "cluster:127.0.0.1:$p[0],127.0.0.1:$p[1]", '2s', 1, 'seeds' ],
    [ "cluster:127.0.0.1:$p[0],127.0.0.1:$p[1]", '1s', 0, 'seeds' ],
) {
    my ($addr, $ct, $warn, $what) = @$c;
    my $n = DQNginx->start(workers => 1, vars => { ADDR => $addr, CT => $ct }, http => $conf);
    my $log = slurp($n->error_log);
    my $has = $log =~ /\[warn\].*deferred_redis \S+: \d+ \Q$what\E x connect_timeout \d+ms is not below deferred_timeout 3000ms/;
    ok($warn ? $has : !$has, ($warn ? 'warned' : 'no warning') . ": $what, connect_timeout $ct, deferred_timeout 3s");
    is($n->stop, 0, "nginx exited with status 0 ($what, $ct)");
}

done_testing;
