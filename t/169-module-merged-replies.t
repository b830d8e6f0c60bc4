# Concurrent one-task POSTs merged into shared enqueue calls (issue #12:
# the enqueue script answers { now_ms } alone when every task of a call was
# stored, and the module derives each task's ETA from what it sent): 600
# POSTs over 100 keep-alive connections, plain due now, countdowns in ms,
# absolute ETAs, pairs of requests with one name (one stored, one 409, in
# the same merged call or not) and pairs with one client id (one created,
# one "existed" with the same ETA). Each answer's eta_ms must be the score
# Redis holds for the id it names, and every task is stored once.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use POSIX qw(strftime);

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000;
        deferred_endpoint on;
    }
});

my $t = $r->cmd('TIME');
my $now = $t->[0] * 1000 + int($t->[1] / 1000);
my $N = 600;
my (@reqs, @kind);
for my $i (1 .. $N) {
    my $k = $i % 6;
    my $body;
    if ($k == 0) {
        $body = qq({"func":"noop","args":[$i]});
    } elsif ($k == 1) {
        my $cd = sprintf('%.3f', 1 + ($i % 13) * 0.777);
        $body = qq({"func":"noop","args":[$i],"countdown":$cd});
    } elsif ($k == 2) {
        my $eta = $now + 5000 + $i * 7;
        my $s = strftime('%Y-%m-%dT%H:%M:%S', gmtime(int($eta / 1000)))
                . sprintf('.%03dZ', $eta % 1000);
        $body = qq({"func":"noop","args":[$i],"eta":"$s"});
    } elsif ($k == 3 || $k == 4) {
        my $p = int($i / 6);     # requests 6p+3 and 6p+4 share a name
        $body = qq({"func":"noop","args":[$i],"name":"nm$p","countdown":2});
    } else {
        my $p = int($i / 12);    # pairs of requests share a client id
        $body = qq({"func":"noop","args":[$i],"id":"cid$p"});
    }
    push @kind, $k;
    push @reqs, DQNginx::build_request('POST', '/_ah/queue/deferred',
                                       json => $body);
}
my @res = $n->many(\@reqs, conns => 100, timeout => 60);

my (%st, %by_name, %by_cid, @bad, %ids);
for my $i (1 .. $N) {
    my $x = $res[$i - 1];
    my $k = $kind[$i - 1];
    my $body = $x->{body} // '';
    $st{$x->{status} // 'none'}++;
    if (($x->{status} // 0) == 409) {
        my ($nm) = $body =~ /"nm(\d+)"/;
        $by_name{int($i / 6)}{409}++;
        next;
    }
    my ($id) = $body =~ /"id":"([^"]+)"/;
    my ($eta) = $body =~ /"eta_ms":(\d+)/;
    my ($status) = $body =~ /"status":"(\w+)"/;
    unless (defined $id && defined $eta) {
        push @bad, "POST $i: $x->{status} $body";
        next;
    }
    my $score = $r->cmd('ZSCORE', dq_key('default', 'eta'), $id);
    push @bad, "POST $i ($k): eta_ms $eta, Redis holds " . ($score // 'nothing')
        unless defined $score && $score == $eta;
    if ($k == 0) {
        push @bad, "POST $i: due now answered $eta (call's now is later than "
                   . "the test's start $now)" if $eta < $now;
    }
    $by_name{int($i / 6)}{201}++ if $k == 3 || $k == 4;
    push @{ $by_cid{int($i / 12)} }, [$status, $eta] if $k == 5;
    $ids{$id}++ if ($status // '') eq 'created';
}
is_deeply(\@bad, [], 'every answer names the ETA Redis holds for its id')
    or diag explain [@bad[0 .. ($#bad < 9 ? $#bad : 9)]];
my @names_bad = grep { ($by_name{$_}{201} // 0) != 1
                       || ($by_name{$_}{409} // 0) != 1 } keys %by_name;
is_deeply(\@names_bad, [], 'each name: one 201, one 409')
    or diag explain { map { $_ => $by_name{$_} } @names_bad[0 .. 4] };
my @cid_bad = grep {
    my @a = @{ $by_cid{$_} };
    !(@a == 2 && join(',', sort map { $_->[0] } @a) eq 'created,existed'
      && $a[0][1] == $a[1][1])
} keys %by_cid;
is_deeply(\@cid_bad, [], 'each client id: created once, then existed with the same ETA')
    or diag explain { map { $_ => $by_cid{$_} } @cid_bad[0 .. 4] };
my $created = scalar keys %ids;
is($r->cmd('HLEN', dq_key('default', 'tasks')), $created,
   "$created tasks stored, one per created answer");
is($r->cmd('HGET', dq_key('default', 'stats'), 'enqueued'), $created,
   'enqueued counted once each');

ok(1, 'answered: ' . join(', ', map { "$_ x $st{$_}" } sort keys %st));
is($n->stop, 0, "nginx stops cleanly");
log_clean_ok($n->error_log, "nginx error log");
done_testing();
