# 1,000 concurrent enqueues over keep-alive connections (250 connections
# at once, 4 requests each; half deferred POSTs, half deferred_enqueue
# requests), pipelined by each nginx worker on its one Redis connection:
# every one answered, every task stored exactly once under the id nginx
# returned, every name taken once.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;
use IO::Socket::INET;

DQNginx::require_nginx();

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => q{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 1000;
        deferred_endpoint on;
        location = /enqueue {
            deferred_enqueue noop name=$arg_n args=$arg_n;
            add_header X-Task-Id $deferred_task_id;
            deferred_return 200 "ok\n";
        }
    }
});

my $N = 1000;
my @reqs;
for my $i (1 .. $N) {
    push @reqs, $i % 2
        ? DQNginx::build_request('POST', '/_ah/queue/deferred',
              json => qq({"func":"noop","name":"p$i","args":[$i]}))
        : DQNginx::build_request('GET', "/enqueue?n=g$i");
}
my @res = $n->many(\@reqs, conns => 250, timeout => 60);

my %status;
$status{$_->{status}}++ for @res;
is_deeply(\%status, { 201 => $N / 2, 200 => $N / 2 }, "all $N answered: 500 x 201, 500 x 200")
    or diag explain \%status;

my @ids;
for my $i (1 .. $N) {
    my $x = $res[$i - 1];
    if ($i % 2) {
        my ($id) = ($x->{body} // '') =~ /"id":"([^"]+)"/;
        like($x->{body} // '', qr/"name":"p$i"/, "POST $i answered for its own task") unless $id;
        push @ids, $id;
    } else {
        push @ids, $x->{headers}{'x-task-id'};
    }
}
my %seen;
$seen{$_ // ''}++ for @ids;
is(scalar(grep { length } keys %seen), $N, "$N distinct task ids returned");

is(DQNginx::stored($r), $N, "Redis holds exactly $N tasks");
my $missing = grep { !$r->cmd('HEXISTS', 'dq2:{default}:tasks', $_) } grep { defined } @ids;
is($missing, 0, 'every returned id is stored');
is($r->cmd('ZCARD', 'dq2:{default}:eta'), $N, "$N scheduled in the ETA set");
is($r->cmd('ZCARD', 'dq2:{default}:names'), $N, "$N names taken, each once");

# concurrent requests are merged into fewer script calls (each request's
# tasks stay whole in one call, each gets its own answer)
my $calls = 0;
for (split /\r?\n/, $r->cmd('INFO', 'commandstats')) {
    $calls += $1 if /^cmdstat_eval(?:sha)?:calls=(\d+)/;
}
ok($calls > 0 && $calls < $N, "$N enqueues in $calls script calls");

# the same 1,000 again: every one a duplicate, nothing more stored
@res = $n->many(\@reqs, conns => 250, timeout => 60);
is(scalar(grep { $_->{status} == 409 } @res), $N, "replayed: $N x 409");
is(DQNginx::stored($r), $N, "still exactly $N tasks");

# HTTP pipelining: 20 requests in one write on one connection, answered
# in order
{
    my $before = DQNginx::stored($r);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $n->port)
        or die "connect: $!";
    print {$s} join '', map {
        $_ % 2 ? DQNginx::build_request('POST', '/_ah/queue/deferred',
                                        json => qq({"func":"noop","args":[$_]}))
               : DQNginx::build_request('GET', "/enqueue?n=pipe$_")
    } 1 .. 20;
    my ($buf, @got) = ('');
    while (@got < 20) {
        my $p = DQNginx::parse_response($buf);
        if ($p) {
            push @got, $p;
            my $end = index($buf, "\r\n\r\n") + 4 + length $p->{body};
            substr($buf, 0, $end, '');
            next;
        }
        my $k = sysread($s, $buf, 65536, length $buf);
        last unless $k;
    }
    is(scalar @got, 20, 'pipelined: 20 answers on one connection');
    is(join(',', map { $_->{status} } @got), join(',', map { $_ % 2 ? 201 : 200 } 1 .. 20),
       'pipelined: in request order');
    is(DQNginx::stored($r) - $before, 20, 'pipelined: 20 stored');
}

# one name, 50 requests at once: exactly one wins
@res = $n->many([ map { DQNginx::build_request('POST', '/_ah/queue/deferred',
                            json => '{"func":"noop","name":"same"}') } 1 .. 50 ],
                conns => 50);
my %st;
$st{$_->{status}}++ for @res;
is_deeply(\%st, { 201 => 1, 409 => 49 }, 'same name from 50 concurrent requests: one 201, 49 x 409')
    or diag explain \%st;

is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
