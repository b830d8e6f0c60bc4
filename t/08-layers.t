# The layers issue 9 set up hold: client/ (the C client and deferred-cli)
# and conf/ (the settings parser both programs link) never include or link
# worker/ code, lib/ includes nothing of the other parts. (deferred-cli
# used to link worker/config.o and worker/config_file.o.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use Test::More;

my $root = $DQTest::ROOT;
for my $dir (qw(client conf lib)) {
    for my $f (glob("$root/$dir/*.[ch]"), glob("$root/$dir/*.mk")) {
        my $t = slurp($f);
        my @bad = $t =~ m{^\s*(#\s*include\s*"[^"]*(?:worker|tasklet)/[^"]*")}mg;
        push @bad, $t =~ m{(\$\(B\)/worker/\S+)}g;
        (my $rel = $f) =~ s{^\Q$root\E/}{};
        ok(!@bad, "$rel: nothing of worker/ or tasklet/") or diag "@bad";
    }
}
my ($link) = grep { m{-o \S*/client/deferred-cli } }
             split /\n/, `cd $root && make -s -n -B B=build/layers build/layers/client/deferred-cli 2>/dev/null`;
ok($link, 'make -n shows the link of deferred-cli');
unlike($link // '', qr{/worker/}, '... with no worker/ object in it') or diag $link;
like($link // '', qr{libdqconf\.a}, '... and the shared settings parser');
done_testing;
