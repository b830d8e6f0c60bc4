# Queue limits in the claim script (rate, max_concurrent, pause/resume)
# against a real redis-server: runs the C unit test build/t/claim_limits.
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('claim_limits', redis => 1);
