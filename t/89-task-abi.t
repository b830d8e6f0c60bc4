# The task ABI seen from a library built elsewhere (issue 9 review):
# - a library built for another DQ_TASK_ABI_VERSION (here: version 1, which
#   still calls dq_sleep_at, renamed dq_sleep_loc in version 2) is refused
#   with "built for task ABI 1 ... rebuild it", not with the dynamic
#   linker's bare "undefined symbol" (RTLD_NOW failed before the version
#   could be read);
# - dq_worker_redis_address() is normalized (HOST:PORT, [IPV6]:PORT,
#   unix:PATH) whatever form the operator configured.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $dir = tmpdir();
my $root = DQTest::root();
my $wbin = DQWorker::worker_bin();
my $cli = DQTest::require_built(bin('deferred-cli'), 'deferred-cli');
my $r = DQTest::Redis->start(dir => $dir,
                             args => ['--unixsocket', "$dir/r.sock"]);
my $msgpack = `pkg-config --cflags msgpack 2>/dev/null || pkg-config --cflags msgpack-c`;
chomp $msgpack;

sub cc_so {
    my ($name, $src) = @_;
    open my $fh, '>', "$dir/$name.c" or die;
    print {$fh} $src;
    close $fh;
    my ($rc, $out, $err) = DQTest::capture('sh', '-c',
        "cc -shared -fPIC -fvisibility=hidden -I'$root/include' $msgpack "
        . "-o '$dir/$name.so' '$dir/$name.c'");
    is($rc, 0, "$name.so builds") or diag($err);
    return "$dir/$name.so";
}

# ---- a version-1 library: its DQ_LIBRARY says 1 and it calls the
# entry point version 1 exported (what the old tasklet.h macros expanded to)
my $old = cc_so('old', <<'C');
#include <deferred/task.h>
#undef DQ_TASK_ABI_VERSION
#define DQ_TASK_ABI_VERSION 1
extern void *dq_sleep_at(int64_t ms, const char *file, int line,
                         const char *func);
static dq_task_result_t
nap(dq_task_t *t, void *u)
{
    (void) t; (void) u;
    return dq_sleep_at(1, __FILE__, __LINE__, __func__) ? DQ_TASK_OK
                                                        : DQ_TASK_FAIL;
}
static const dq_function_t fns[] = { { "old.nap", nap, 0, NULL },
                                     { NULL, NULL, 0, NULL } };
DQ_LIBRARY("old", fns, NULL, NULL, NULL);
C
my ($rc, $out, $err) = DQTest::capture($wbin, '-t', '-r', $r->address,
                                       '-l', $old);
isnt($rc, 0, 'worker -t refuses the version-1 library');
like($err, qr/built for task ABI 1, this worker speaks \d+: rebuild it against include\/deferred\//,
     'and says which ABI it was built for and what to do') or diag($err);
unlike($err, qr/undefined symbol/, 'not the dynamic linker\'s bare error')
    or diag($err);

# ---- dq_worker_redis_address(), normalized
my $addr = cc_so('addr', <<'C');
#include <stdio.h>
#include <deferred/task.h>
static dq_task_result_t
addr(dq_task_t *t, void *u)
{
    const char *out = dq_task_header(t, "X-Out");
    FILE       *f = out ? fopen(out, "w") : NULL;

    (void) u;
    if (f == NULL) return DQ_TASK_FAIL;
    fprintf(f, "%s\n", dq_worker_redis_address());
    fclose(f);
    return DQ_TASK_OK;
}
static const dq_function_t fns[] = { { "abi.addr", addr, 0, NULL },
                                     { NULL, NULL, 0, NULL } };
DQ_LIBRARY("addr", fns, NULL, NULL, NULL);
C
my $port = $r->port;
my $n = 0;
for my $case (["[127.0.0.1]:$port", "127.0.0.1:$port"],
              ["localhost:$port", "localhost:$port"],
              ["unix:$dir/r.sock", "unix:$dir/r.sock"]) {
    my ($given, $want) = @$case;
    $n++;
    my $log = "$dir/w$n.log";
    my $pid = DQTest::spawn(name => "w$n", log => $log,
        cmd => [$wbin, '-r', $given, '--master_process', 'off',
                '-q', "q$n", '-l', $addr]);
    ($rc, $out, $err) = DQTest::capture($cli, '-r', $r->address, 'defer',
        '-q', "q$n", '-H', "X-Out:$dir/a$n", 'abi.addr');
    is($rc, 0, "deferred abi.addr to a worker given -r $given") or diag($err);
    ok(DQTest::wait_for(sub { -s "$dir/a$n" }, 20), 'the task ran')
        or diag(DQTest::slurp($log));
    is(DQTest::slurp("$dir/a$n"), "$want\n",
       "-r $given: dq_worker_redis_address() is $want");
    is(DQTest::stop_pid($pid), 0, 'worker stops cleanly');
    log_clean_ok($log);
}

done_testing();
