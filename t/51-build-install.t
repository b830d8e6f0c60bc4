# Building for people outside the team (issue 9): a packager's flags are
# added to the project's, never replace them. Two builds into temporary
# build directories (B=..., so build/ is untouched) -- `make CFLAGS=-O1`
# and dpkg-buildflags' CPPFLAGS/CFLAGS/LDFLAGS with hardening=+all -- each
# give a worker that loads a task library and runs a task, and a module
# (./build.sh module with the same flags) that nginx -t loads; then
# `make install DESTDIR=...` lays out the binaries, headers, static
# libraries, pkg-config file, module and systemd unit, and a task library
# and a client program built only from the installed tree (pkg-config with
# a sysroot; the client linked with plain `pkg-config --libs`) work against
# the installed worker.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

DQTest::need_tool(DQTest::in_path('dpkg-buildflags'),
                  'dpkg-buildflags (dpkg-dev)');
my $nginx = $ENV{NGINX_BIN} || '/usr/sbin/nginx';
my $nginx_src = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
DQTest::need_tool(-x $nginx && -d $nginx_src, "nginx and $nginx_src (nginx-dev)");
my $root = DQTest::root();
my $tmp = tmpdir();
my $r = DQTest::Redis->start(dir => $tmp);
my $jobs = $ENV{JOBS} || 2;

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

sub bf { my $v = `DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get $_[0]`; chomp $v; $v }

# run one task through a worker and a task library; 1 if it ran
sub runs {
    my ($worker, $lib, $cli, $tag) = @_;
    my $rec = "$tmp/$tag.rec";
    my $pid = DQTest::spawn(name => "w-$tag", log => "$tmp/$tag.log",
        cmd => [$worker, '-r', $r->address, '--master_process', 'off',
                '-q', $tag, '-l', $lib]);
    my ($rc, $out) = sh(join ' ', map { "'$_'" } $cli, '-r', $r->address,
                        'defer', '-q', $tag, 'record', $rec, $tag);
    diag($out) if $rc;
    my @rec = DQWorker::wait_records($rec, 1, 20);
    my $st = DQTest::stop_pid($pid);
    diag(DQTest::slurp("$tmp/$tag.log")) unless @rec == 1 && $st == 0;
    return @rec == 1 && $rec[0]{tag} eq $tag && $st == 0;
}

my @targets = qw(worker/deferred-worker client/deferred-cli
                 libdqclient.a libdq.a examples/tasks/libdq_example_tasks.so);
my %builds = (
    o1   => "CFLAGS=-O1",
    dpkg => sprintf("CPPFLAGS='%s' CFLAGS='%s' LDFLAGS='%s'",
                    bf('CPPFLAGS'), bf('CFLAGS'), bf('LDFLAGS')),
);
# the same flags for the module (./build.sh module: nginx's configure
# against nginx-dev into $b/nginx, as ./build.sh build does into build/)
my %module_env = (
    o1   => "CPPFLAGS= CFLAGS=-O1 LDFLAGS=",
    dpkg => $builds{dpkg},
);

# nginx -t with the module loaded and configured: 1 if it passes
sub nginx_loads {
    my ($so, $tag) = @_;
    my $d = "$tmp/ngx-$tag";
    mkdir $d;
    mkdir "$d/logs";
    open my $fh, '>', "$d/nginx.conf" or die;
    print {$fh} <<"CONF";
load_module $so;
error_log $d/logs/error.log info;
pid $d/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    deferred_redis ${\ $r->address};
    deferred_queues default;
    server {
        listen 127.0.0.1:${\ DQTest::free_port()};
        location /_ah/queue/deferred { deferred_endpoint on; }
    }
}
CONF
    close $fh;
    my ($rc, $out) = sh("'$nginx' -t -p '$d/' -c '$d/nginx.conf' -e '$d/logs/test.log'");
    diag($out, DQTest::slurp("$d/logs/test.log")) if $rc;
    return $rc == 0;
}
for my $name (sort keys %builds) {
    my $b = "$tmp/b-$name";
    my ($rc, $out) = sh("make -C '$root' -s -j$jobs B='$b' $builds{$name} "
                        . join(' ', map { "'$b/$_'" } @targets));
    is($rc, 0, "make B=... $builds{$name}") or diag($out);
    unlike($out, qr/warning:/, "$name: no compiler warning") or diag($out);
    # the project's flags survived the builder's: the task ABI needs
    # -fvisibility=hidden (only DQ_EXPORT symbols leave the library)
    my $syms = `nm -D --defined-only '$b/examples/tasks/libdq_example_tasks.so'`;
    my @own = grep { !/^dq_library$/ && !/^_/ }
              map { (split ' ')[-1] } grep { /\s[TDBR]\s/ } split /\n/, $syms;
    like($syms, qr/\bdq_library\b/, "$name: the library exports dq_library");
    is("@own", '', "$name: and no other symbol of its own (-fvisibility=hidden kept)");
    ok(runs("$b/worker/deferred-worker", "$b/examples/tasks/libdq_example_tasks.so",
            "$b/client/deferred-cli", $name),
       "$name: the worker loads the task library and runs a task");

    # o1 builds a copy of the module's sources: its Lua is edited below
    my $msrc = $root;
    if ($name eq 'o1') {
        $msrc = "$tmp/src";
        mkdir $msrc;
        ($rc, $out) = sh("cp -r '$root/build.sh' '$root/config' '$root/lib' "
                         . "'$root/ngx_module' '$root/include' '$msrc/'");
        is($rc, 0, 'copied the module sources') or diag($out);
    }
    ($rc, $out) = sh("cd '$msrc' && B='$b' NGINX_SRC='$nginx_src' "
                     . "$module_env{$name} ./build.sh module");
    is($rc, 0, "$name: the module builds ($module_env{$name})") or diag($out);
    unlike($out, qr/warning:/, "$name: no compiler warning in the module")
        or diag($out);
    my ($cf) = DQTest::slurp("$b/nginx/Makefile") =~ /^CFLAGS = (.*)$/m;
    my $want = $name eq 'o1' ? qr/(^|\s)-O1(\s|$)/ : qr/\Q${\ bf('CFLAGS')}\E/;
    like($cf // '', $want, "$name: the module is compiled with the builder's CFLAGS");
    ok(nginx_loads("$b/ngx_http_deferred_module.so", $name),
       "$name: nginx -t loads and configures that module");
    next unless $name eq 'o1';
    # a configured tree rebuilt by hand (`make modules`, no configure)
    # embeds an edited script: dq_scripts.c is regenerated by objs/Makefile
    my $mark = "-- edited after configure $$";
    open my $lua, '>>', "$msrc/lib/lua/ack.lua" or die;
    print {$lua} "$mark\n";
    close $lua;
    ($rc, $out) = sh("make -s -f '$b/nginx/Makefile' -C '$nginx_src' modules");
    is($rc, 0, 'make modules after editing lib/lua/ack.lua') or diag($out);
    like(DQTest::slurp("$b/nginx/ngx_deferred_gen/dq_scripts.c"),
         qr/\Q$mark\E/, 'dq_scripts.c was regenerated from the edited script');
    like(`strings '$b/nginx/ngx_http_deferred_module.so'`, qr/\Q$mark\E/,
         'and the rebuilt module embeds it');
}

# ---- make install DESTDIR=...
my $dest = "$tmp/dest";
my $b = "$tmp/b-dpkg";
my ($rc, $out) = sh("make -C '$root' -s B='$b' " . $builds{dpkg}
                    . " PREFIX=/usr DESTDIR='$dest' install");
is($rc, 0, 'make install DESTDIR=... PREFIX=/usr') or diag($out);
for my $f (qw(usr/bin/deferred-worker usr/bin/deferred-cli
              usr/include/deferred/task.h usr/include/deferred/client.h
              usr/include/deferred/tasklet.h usr/include/deferred/common.h
              usr/lib/libdqclient.a usr/lib/libdq.a usr/lib/ngx_deferred/libdq_push.so
              usr/lib/pkgconfig/ngx-deferred.pc
              usr/lib/systemd/system/deferred-worker.service
              usr/share/doc/ngx_deferred/README.md
              usr/share/doc/ngx_deferred/APPENGINE.md)) {
    ok(-e "$dest/$f", "installed $f");
}
ok(-x "$dest/usr/bin/deferred-worker", 'the worker is executable');
ok(-e "$dest/usr/lib/nginx/modules/ngx_http_deferred_module.so",
   'installed the nginx module of that build (B=..., not build/)');
my $unit = DQTest::slurp("$dest/usr/lib/systemd/system/deferred-worker.service");
like($unit, qr{^ExecStart=/usr/bin/deferred-worker }m, 'the unit runs the installed worker');
unlike($unit, qr{/usr/local/}, 'no /usr/local path left in the unit');
my @stray = grep { !m{^\Q$dest\E/usr(/|$)} } split /\n/, `find '$dest' -mindepth 1`;
is(scalar(@stray), 0, 'nothing installed outside PREFIX') or diag("@stray");

# ---- a task library and a client program from the installed tree only
$ENV{PKG_CONFIG_PATH} = "$dest/usr/lib/pkgconfig";
$ENV{PKG_CONFIG_SYSROOT_DIR} = $dest;
my $cflags = `pkg-config --cflags ngx-deferred`;
is($?, 0, 'pkg-config finds ngx-deferred') or diag($cflags);
chomp $cflags;
my $libs = `pkg-config --libs ngx-deferred`;
chomp $libs;
open my $fh, '>', "$tmp/mylib.c" or die;
print {$fh} <<'C';
#include <stdio.h>
#include <deferred/task.h>
static dq_task_result_t
hello(dq_task_t *t, void *u)
{
    FILE *f = fopen(dq_task_header(t, "X-Out") ? dq_task_header(t, "X-Out")
                                               : "/dev/null", "a");
    (void) u;
    if (f == NULL) return DQ_TASK_FAIL;
    fprintf(f, "%s\n", dq_task_id(t));
    fclose(f);
    return DQ_TASK_OK;
}
static const dq_function_t fns[] = { { "my.hello", hello, 0, NULL },
                                     { NULL, NULL, 0, NULL } };
DQ_LIBRARY("mylib", fns, NULL, NULL, NULL);
C
close $fh;
($rc, $out) = sh("cc -shared -fPIC -fvisibility=hidden $cflags -o '$tmp/mylib.so' '$tmp/mylib.c'");
is($rc, 0, 'a task library builds from the installed headers alone') or diag($out);
open $fh, '>', "$tmp/myclient.c" or die;
print {$fh} <<'C';
#include <stdio.h>
#include <deferred/client.h>
int
main(int argc, char **argv)
{
    dq_client_t       *c = dq_client_new(argv[1], NULL);
    dq_defer_opts_t    o = DQ_DEFER_OPTS_INIT;
    const dq_header_t  h = { "X-Out", argv[2] };
    char               id[DQ_ID_SIZE];
    int64_t            eta;
    int                rc;

    (void) argc;
    o.headers = &h;
    o.nheaders = 1;
    rc = dq_defer(c, "my.hello", NULL, &o, id, &eta);
    if (rc != DQ_OK) {
        fprintf(stderr, "%s: %s\n", dq_strerror(rc), dq_client_errstr(c));
        return 1;
    }
    printf("%s\n", id);
    dq_client_free(c);
    return 0;
}
C
close $fh;
($rc, $out) = sh("cc $cflags -o '$tmp/myclient' '$tmp/myclient.c' $libs");
is($rc, 0, 'a client program links with plain pkg-config --libs') or diag($out);

my $pid = DQTest::spawn(name => 'w-installed', log => "$tmp/inst.log",
    cmd => ["$dest/usr/bin/deferred-worker", '-r', $r->address,
            '--master_process', 'off', '-l', "$tmp/mylib.so"]);
($rc, $out) = sh("'$tmp/myclient' " . $r->address . " '$tmp/hello.out'");
is($rc, 0, 'the client program defers a task') or diag($out);
chomp(my $id = $out);
ok(DQTest::wait_for(sub { DQTest::slurp("$tmp/hello.out") eq "$id\n" }, 20),
   'the installed worker ran it with the library built outside the tree')
    or diag(DQTest::slurp("$tmp/inst.log"));
is(DQTest::stop_pid($pid), 0, 'installed worker stops cleanly');
log_clean_ok("$tmp/inst.log");

done_testing();
