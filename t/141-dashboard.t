# The dashboard in headless Chromium (chromedriver): it loads with no
# console error, shows the queues with their counts and event counters
# that are not 0 (stats `clock_jumps`, written with HSET), the dead tasks and
# the live worker; a click on "retry" of a dead task makes it run (checked
# in Redis and in the task's record file), "pause" pauses the queue,
# "delete" asks with confirm() first; a queue Redis refuses the status
# call of is named in the state line. The
# page is written to docs/dashboard.png when DQ_SCREENSHOT=1.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use DQBrowser;
use Test::More;
use Time::HiRes qw(sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start;
my $n = DQNginx->start(redis => $r, http => <<'NGX');
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /deferred/status { deferred_status; }
        location = /deferred/admin  { deferred_admin; }
        location /deferred/         { deferred_dashboard; }
        # the page over a status answer saved and edited by the test
        location = /saved/status    { default_type application/json;
                                      alias %%DIR%%/saved.json; }
        location /saved/            { deferred_dashboard status /deferred/admin; }
    }
NGX
my $b = DQBrowser->start;
sub key { DQTest::dq_key(@_) }
sub cli { my @r = DQWorker::cli($r, @_); die "cli @_: $r[2]" if $r[0]; $r[1] }
sub defer { (split ' ', cli('defer', @_))[0] }

my $w = DQWorker::start_worker($r, $dir, name => 'w', args => ['-q', 'mail', '-q', 'ops']);
defer(qw(-q mail noop)) for 1 .. 12;
my $rec = "$dir/a.rec";
my $id = defer(qw(-q mail --retry-limit 0 fail_then_ok), $rec, 1);
defer(qw(-q mail permanent), 'smtp: 550 no such user');
defer(qw(-q ops --countdown 600000 noop)) for 1 .. 3;
ok(DQTest::wait_for(sub { $r->cmd('ZCARD', key('mail', 'dead')) == 2 }, 20), 'two dead tasks in mail');
# event counters as the scripts leave them: shown only when not 0
$r->cmd('HSET', key('mail', 'stats'), 'clock_jumps', 2, 'acked_late', 0);

$b->get('http://127.0.0.1:' . $n->port . '/deferred/?interval=500');
ok(DQTest::wait_for(sub { $b->find('#queues tr[data-queue="mail"]')
                          && $b->find('#workers tr[data-worker]') }, 15, 0.2),
   'the page shows the queues and the live worker');
my $row = $b->text($b->find('#queues tr[data-queue="ops"]'));
like($row, qr/^ops 3 0 3 0 0 .* 0 - active pause$/, 'ops row: 3 waiting, 0 due, 3 delayed, 0 running, 0 dead, no events') or diag $row;
$row = $b->text($b->find('#queues tr[data-queue="mail"]'));
like($row, qr/^mail 0 0 0 0 2 .* 12 clock_jumps 2 active pause$/, 'mail row: 2 dead, 12 done, event clock_jumps 2, active') or diag $row;
my $dead = $b->find(qq{#dead tr[data-id="$id"]});
ok($dead, 'the dead task is listed');
like($b->text($dead), qr/fail_then_ok .*failing on purpose/, '... with its function and error');

my $retry = $b->find(qq{#dead tr[data-id="$id"] button.retry});
ok($retry, 'it has a retry button');
$b->click($retry);
ok(DQTest::wait_for(sub { my @l = split /\n/, slurp($rec); @l == 2 }, 10),
   'a click on retry made it run again')
    or diag $b->run('return document.getElementById("state").textContent');
ok(DQTest::wait_for(sub { !$r->cmd('HEXISTS', key('mail', 'tasks'), $id) }, 10),
   '... and it succeeded (gone from Redis)');
ok(DQTest::wait_for(sub { !$b->find(qq{#dead tr[data-id="$id"]}) }, 5, 0.2),
   'the page no longer lists it');

$b->click($b->find('#queues tr[data-queue="ops"] button.pause'));
ok(DQTest::wait_for(sub { ($r->cmd('HGET', key('ops', 'conf'), 'paused') // '') eq '1' }, 5),
   'a click on pause paused ops in Redis');
ok(DQTest::wait_for(sub { my $e = $b->find('#queues tr[data-queue="ops"]');
                          $e && $b->text($e) =~ /paused resume$/ }, 5, 0.2),
   'the page shows ops paused');
# delete asks first: a "no" deletes nothing, a "yes" deletes
my ($pid) = grep { $_ ne $id } @{ $r->cmd('ZRANGE', key('mail', 'dead'), 0, -1) };
$b->run('window.dqAsked = 0; window.confirm = function () { window.dqAsked++; return false; };');
$b->click($b->find(qq{#dead tr[data-id="$pid"] button.delete}));
is($b->run('return window.dqAsked'), 1, 'a click on delete asks for confirmation');
sleep 0.5;
ok($r->cmd('HEXISTS', key('mail', 'tasks'), $pid), '... "no" deletes nothing');
$b->run('window.confirm = function () { return true; };');
$b->click($b->find(qq{#dead tr[data-id="$pid"] button.delete}));
ok(DQTest::wait_for(sub { !$r->cmd('HEXISTS', key('mail', 'tasks'), $pid) }, 5),
   '... "yes" deletes the task');

# a queue whose status call Redis refuses (here its stats hash is a
# string: WRONGTYPE; on a cluster, TRYAGAIN while its slot migrates) is
# named in the state line, the others still shown (review R6)
$r->cmd('SADD', 'dq:queues', 'broken');
$r->cmd('SET', key('broken', 'stats'), 'x');
ok(DQTest::wait_for(sub { my $t = $b->run('return document.getElementById("state").textContent');
                          ($t // '') =~ /not read: broken \(.*WRONGTYPE/ }, 5, 0.2),
   'the state line names the queue not read, with Redis\' answer')
    or diag $b->run('return document.getElementById("state").textContent');
ok($b->find('#queues tr[data-queue="mail"]'), '... the other queues still shown');
$r->cmd('DEL', key('broken', 'stats'));
$r->cmd('SREM', 'dq:queues', 'broken');

# queues past the 1,000 shown, and sharded queues shown with shard 0's
# numbers only (past the scrape's shard-call cap): counted in the state
# line (the status JSON's queues_not_shown / queues_not_summed; making
# them for real takes 1,001 queues and 1,000 shard calls: t/144, t/195)
my $saved = $n->request('GET', '/deferred/status')->{body};
$saved =~ s/"queues_not_shown":0,/"queues_not_shown":7,/ or die $saved;
$saved =~ s/"queues_not_summed":0,/"queues_not_summed":2,/ or die $saved;
open my $sf, '>', "$n->{dir}/saved.json" or die;
print {$sf} $saved;
close $sf;
$b->get('http://127.0.0.1:' . $n->port . '/saved/?interval=500');
my $state = '';
DQTest::wait_for(sub {
    $state = $b->run('return document.getElementById("state").textContent') // '';
    $state =~ /^updated/ }, 10, 0.2);
like($state, qr/; 7 more queues not shown; 2 sharded queues with shard 0's numbers only/,
     'the state line counts the queues not shown and not summed') or diag $state;
is($b->run('return document.getElementById("state").className'), 'bad',
   '... in red (numbers not summed)');

sleep 1;    # a few polls: any error they raise shows below
my @errors = $b->console_errors;
is(scalar @errors, 0, 'no console errors') or diag explain \@errors;
if ($ENV{DQ_SCREENSHOT}) {
    ok($b->screenshot("$DQTest::ROOT/docs/dashboard.png") > 1000, 'screenshot in docs/dashboard.png');
}
$b->quit;
DQWorker::stop_worker($w);
$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
