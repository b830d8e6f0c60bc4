# Review RP, finding 3: a cycle (acks + claim) on a MIGRATING slot whose
# every declared key is still on the source, while a cold bucket due for
# promotion was already moved to the target (a reshard moves keys one by
# one). Before the fix the promotion's HGETALL of that bucket (not a
# declared key) stopped the script after the acks and the expired leases
# were written: the worker was answered an error and its acks sent again
# came back fenced. Now the due buckets are read before the first write,
# and a bucket not on the node is left for later: the cycle acks, claims,
# and says to look again in a second (not 0: no busy loop). The bucket back
# on the node, the next cycle promotes it.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQCluster; use DQMigrating;
my $c = DQCluster->start(plain => 1);
DQMigrating::cold_bucket_moved($c, 'pq');
done_testing;
