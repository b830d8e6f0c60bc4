# The Counter sample for real: nginx loads the module with
# examples/counter/nginx.conf.in (countdowns shortened to 2 s and 4 s),
# deferred-worker runs examples/counter's library. GET /counter/increment
# answers "Deferred counter increment." and the count goes 10 (right away),
# 20 (after the first countdown), 30 (after the custom-URL one), with the
# custom handler's "Executing deferred task." in the worker log.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use Test::More;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $lib = DQTest::require_built(bin('examples/counter/libcounter.so'),
                                'counter library');

my $dir = tmpdir();
mkdir "$dir/data";
my $r = DQTest::Redis->start(dir => $dir);

my $conf = DQTest::slurp("$DQTest::ROOT/examples/counter/nginx.conf.in");
$conf =~ s/\@(PREFIX|DATA|COUNTDOWN1|COUNTDOWN2)\@/
    { PREFIX => '%%DIR%%', DATA => "$dir\/data",
      COUNTDOWN1 => 2, COUNTDOWN2 => 4 }->{$1}/ge;
$conf =~ s/\@(\w+)\@/%%$1%%/g;

my $n = DQNginx->start(redis => $r, conf => $conf);

$ENV{DQ_COUNTER_DIR} = "$dir/data";
my $w = DQWorker::start_worker($r, $dir, name => 'worker', libs => [$lib]);

my $get = sub { $n->request('GET', '/counter/get')->{body} };
is($get->(), '0', '/counter/get is 0 before any increment');

my $t0 = time;
my $res = $n->request('GET', '/counter/increment');
is($res->{status}, 200, '/counter/increment: 200');
is($res->{body}, 'Deferred counter increment.', 'with the sample\'s text');
my @ids = split /,/, $res->{headers}{'x-deferred-task-ids'} // '';
is(scalar @ids, 3, 'three task ids in $deferred_task_id');
like($_, qr/^[A-Za-z0-9_-]{22}$/, "task id $_") for @ids;

ok(DQTest::wait_for(sub { $get->() eq '10' }, 10, 0.05), 'count 10 right away');
my $t10 = time - $t0;
ok($t10 < 1.9, sprintf('... before the first countdown (%.2fs)', $t10));

ok(DQTest::wait_for(sub { $get->() eq '20' }, 10, 0.05), 'count 20 after countdown 2 s');
my $t20 = time - $t0;
ok($t20 >= 1.9, sprintf('... not before it (%.2fs)', $t20));

ok(DQTest::wait_for(sub { $get->() eq '30' }, 10, 0.05), 'count 30 after countdown 4 s');
my $t30 = time - $t0;
ok($t30 >= 3.9, sprintf('... not before it (%.2fs)', $t30));

my $log = DQWorker::log_text($w);
my @exec = $log =~ /Executing deferred task\./g;
is(scalar @exec, 1, 'the /custom/path handler logged "Executing deferred task." once');
like($log, qr/\Q$ids[2]\E.*Executing deferred task\.|Executing deferred task\..*\Q$ids[2]\E/,
     '... for the custom-URL task');

sleep 0.3;
is($get->(), '30', 'count stays 30');
is($r->cmd('GET', 'counter:my_key'), '30', 'Redis holds 30');

is(DQWorker::stop_worker($w), 0, 'worker stops cleanly (exit status 0)');
is($n->stop, 0, 'nginx stops cleanly (exit status 0)');
log_clean_ok($n->error_log, 'nginx error log');
log_clean_ok($w->{log}, 'worker log');

done_testing;
