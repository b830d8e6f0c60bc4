# deferred-worker's task accessors: positional arguments of every type,
# keyword arguments, and the accessors' own error messages when a type is
# wrong or an argument is missing (the task goes dead with that message).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir);
my $f = "$dir/typed";

DQWorker::defer($r, qw(-k n=42 -k s=kw typed), $f, -7, 's:123', 'd:2.5', 'b:true');
my @rec = DQWorker::wait_records($f, 1, 10);
is($rec[0]{tag}, 'i=-7 s=123 d=2.5 b=1 n=42 ks=kw', 'int, str, double, bool, kwargs int and str');

DQWorker::defer($r, 'typed', $f, 9_000_000_000, 'x', 3);
@rec = DQWorker::wait_records($f, 2, 10);
is($rec[1]{tag}, 'i=9000000000 s=x d=3 b=-1 n=-1 ks=-', '64-bit int; an int read as double; absent kwargs');

my %bad = (
    'argument 1: expected an integer'       => [ 'typed', $f, 'abc', 'x' ],
    'argument 2: expected a string'         => [ 'typed', $f, 1, 2 ],
    'argument 2: missing (the task has 2)'  => [ 'typed', $f, 1 ],
    'argument 4: expected a boolean'        => [ 'typed', $f, 1, 'x', 'd:1', 7 ],
    'keyword argument "n": expected an integer' => [ '-k', 'n=s:1', 'typed', $f, 1, 'x' ],
    'argument 3: expected a number'         => [ 'typed', $f, 1, 'x', 'nil' ],
);
my %ids;
for my $msg (sort keys %bad) {
    $ids{ DQWorker::defer($r, @{ $bad{$msg} }) } = $msg;
}
DQTest::wait_for(sub { my $d = DQWorker::dead($r); !grep { !exists $d->{$_} } keys %ids }, 10);
my $dead = DQWorker::dead($r);
for my $id (sort { $ids{$a} cmp $ids{$b} } keys %ids) {
    is($dead->{$id}, $ids{$id}, "dead with \"$ids{$id}\"");
}
is(scalar DQWorker::records($f), 2, 'only the good ones recorded');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
