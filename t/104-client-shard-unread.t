# The C client when one queue's shard-count read fails while the others
# succeed: nginx's rule (review R4 finding 9b; t/unit/test_client_shard_unread.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_client_shard_unread', redis => 1);
