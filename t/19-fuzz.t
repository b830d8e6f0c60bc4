# A short bounded libFuzzer pass over every decoder an untrusted byte
# reaches (fuzz/run.sh: request bodies in JSON and msgpack, the JSON
# converter against jansson (differential), envelopes, the
# signature header, names and INFO): 3 s each here; ./build.sh fuzz runs
# them long. Skips without clang's libFuzzer.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use Test::More;

my $secs = $ENV{DQ_FUZZ_SECONDS} || 3;
my $out = `cd $DQTest::ROOT && FUZZ_DIR=build/fuzz-test sh fuzz/run.sh $secs 2>&1`;
my $rc = $? >> 8;
DQTest::need_tool($rc != 77, 'clang with libFuzzer (clang, libclang-rt-14-dev)');
my @lines = $out =~ /^(fuzz \S+: .*)$/mg;
is(scalar @lines, 5, 'five harnesses ran') or diag $out;
for (@lines) {
    like($_, qr/: [1-9]\d* execs, \d+ s, ok$/, $_);
}
is($rc, 0, 'no crash') or diag $out;
done_testing;
