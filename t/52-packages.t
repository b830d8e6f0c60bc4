# Debian packages (debian/): dpkg-buildpackage -us -uc -b on a copy of the
# tree, the three packages unpacked into a scratch root (dpkg -x), what
# each ships checked (the module enabled the way Debian's libnginx-mod-*
# are, the worker's unit and user, the -dev headers and .pc), then the
# Counter sample run from the installed files only: nginx loads the
# installed module, the task library is compiled from the installed
# example source against the installed headers (pkg-config), the installed
# worker runs it, the installed CLI reads the queue.
#
# About 30-60 s (a package build compiles the worker and the module once).
# DQ_SKIP_PACKAGES=1 skips it.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

plan skip_all => 'DQ_SKIP_PACKAGES set' if $ENV{DQ_SKIP_PACKAGES};
for my $tool (qw(dpkg-buildpackage dh dh_nginx dpkg-deb pkg-config cc)) {
    DQTest::need_tool(DQTest::in_path($tool),
                      "$tool (dpkg-dev, debhelper, nginx-dev)");
}
DQTest::need_tool(-x $DQNginx::NGINX, 'nginx');
DQTest::need_tool(!system("cd $DQTest::ROOT && dpkg-checkbuilddeps >/dev/null 2>&1"),
                  'the build dependencies of debian/control (dpkg-checkbuilddeps)');

my $dir = tmpdir();
my $src = "$dir/src/ngx-deferred";
my $root = "$dir/root";
mkdir "$dir/src"; mkdir $src; mkdir $root;

# a copy of the working tree as it is (uncommitted changes included),
# without build products
system("tar -C '$DQTest::ROOT' --exclude=./build --exclude=./.git "
       . "--exclude=./debian/build-nginx --exclude=./debian/build-make "
       . "--exclude=./debian/tmp -cf - . | tar -C '$src' -xf -") == 0
    or die 'copying the tree failed';

my $log = "$dir/build.log";
my $rc = system("cd '$src' && DEB_BUILD_OPTIONS='parallel=2' "
                . "dpkg-buildpackage -us -uc -b >'$log' 2>&1");
is($rc, 0, 'dpkg-buildpackage -us -uc -b succeeds')
    or diag substr(slurp($log), -4000);

my %deb;
for my $p (qw(libnginx-mod-http-deferred deferred-worker libdeferred-dev)) {
    my ($f) = glob("$dir/src/${p}_*_*.deb");
    ok($f, "package $p built") or next;
    $deb{$p} = $f;
    is(system('dpkg-deb', '-x', $f, $root), 0, "dpkg -x $p");
}
unless (keys %deb == 3) {
    # a failure of this test only: BAIL_OUT would stop every other test
    diag('packages missing: the rest of this test needs all three');
    done_testing();
    exit 1;
}

my $info = sub { scalar `dpkg-deb -f '$deb{$_[0]}' $_[1]` };
my $ctrl = sub {
    my ($p, $file) = @_;
    return scalar `dpkg-deb --ctrl-tarfile '$deb{$p}' | tar -xOf - ./$file 2>/dev/null`;
};

# the module, as Debian packages libnginx-mod-*
my $so = "$root/usr/lib/nginx/modules/ngx_http_deferred_module.so";
ok(-f $so, 'module in /usr/lib/nginx/modules');
is(slurp("$root/usr/share/nginx/modules-available/mod-http-deferred.conf"),
   "load_module modules/ngx_http_deferred_module.so;\n",
   'modules-available/mod-http-deferred.conf loads it');
like($ctrl->('libnginx-mod-http-deferred', 'postinst'),
     qr{ln -sf /usr/share/nginx/modules-available/\$from\s+\\?\s*/etc/nginx/modules-enabled/\$to}s,
     'postinst enables it in /etc/nginx/modules-enabled (dh_nginx)');
like($ctrl->('libnginx-mod-http-deferred', 'postinst'),
     qr/mod-http-deferred\.conf:50-mod-http-deferred\.conf/, '... as 50-mod-http-deferred.conf');
like($info->('libnginx-mod-http-deferred', 'Depends'), qr/nginx-abi-[\d.]+-\d+/,
     'depends on the nginx ABI it was built against');

# the worker: binaries, unit, user, man pages, config
ok(-x "$root/usr/bin/$_", "/usr/bin/$_") for qw(deferred-worker deferred-cli);
my $unit = slurp("$root/lib/systemd/system/deferred-worker.service");
like($unit, qr{^ExecStart=/usr/bin/deferred-worker -c /etc/deferred-worker\.conf$}m,
     'unit runs /usr/bin/deferred-worker');
like($unit, qr/^User=deferred$/m, 'unit runs as user deferred');
my @docs = $unit =~ m{^Documentation=.*?file://(\S+)}mg;
ok(@docs, 'the unit names its documentation');
ok(-f "$root$_", "Documentation= $_ exists in the package") for @docs;
like(slurp("$root/usr/lib/sysusers.d/deferred-worker.conf"), qr/^u deferred /m,
     'sysusers.d entry for the user');
like($ctrl->('deferred-worker', 'postinst'), qr/adduser --system --group .* deferred/s,
     'postinst creates the system user');
ok(-f "$root/usr/share/man/man8/deferred-worker.8.gz", 'man page deferred-worker(8)');
ok(-f "$root/usr/share/man/man1/deferred-cli.1.gz", 'man page deferred-cli(1)');
like(scalar `dpkg-deb -f '$deb{'deferred-worker'}' Package; dpkg-deb --ctrl-tarfile '$deb{'deferred-worker'}' | tar -xOf - ./conffiles`,
     qr{^/etc/deferred-worker\.conf$}m, '/etc/deferred-worker.conf is a conffile');
my $t = `'$root/usr/bin/deferred-worker' -c '$root/etc/deferred-worker.conf' -t 2>&1`;
is($?, 0, 'the shipped /etc/deferred-worker.conf passes -t') or diag $t;

# the -dev package: headers + pkg-config
ok(-f "$root/usr/include/deferred/$_", "header deferred/$_") for qw(task.h client.h tasklet.h);
$ENV{PKG_CONFIG_PATH} = "$root/usr/lib/pkgconfig";
$ENV{PKG_CONFIG_SYSROOT_DIR} = $root;
my $cflags = `pkg-config --cflags ngx-deferred`;
is($?, 0, 'pkg-config knows ngx-deferred');
like($cflags, qr{-I\Q$root\E/usr/include}, 'its cflags point at the installed headers');
# every package the .pc Requires comes with the -dev package's Depends
my %pcdev = (hiredis => 'libhiredis-dev', msgpack => 'libmsgpack-dev',
             jansson => 'libjansson-dev', libcrypto => 'libssl-dev');
my ($req) = slurp("$root/usr/lib/pkgconfig/ngx-deferred.pc") =~ /^Requires:\s*(.*)$/m;
my $dep = $info->('libdeferred-dev', 'Depends');
for my $pc (split /[\s,]+/, $req // '') {
    like($dep, qr/\b\Q@{[ $pcdev{$pc} \/\/ "?$pc" ]}\E\b/, "libdeferred-dev depends on the package of Requires: $pc");
}

# the Counter sample from the installed files
my $doc = "$root/usr/share/doc/ngx_deferred/examples/counter";
my $lib = "$dir/libcounter.so";
chomp $cflags;
my $out = `cc -shared -fPIC -fvisibility=hidden -O2 $cflags -o '$lib' '$doc/counter.c' -lhiredis -lpthread 2>&1`;
is($?, 0, 'the installed counter.c builds against the installed headers') or diag $out;

my $r = DQTest::Redis->start;
my $run = "$dir/run";
mkdir $run; mkdir "$run/$_" for qw(logs tmp data);
my $port = free_port();
my $conf = slurp("$doc/nginx.conf.in");
my %v = (PREFIX => $run, MODULE => $so, USER => $> == 0 ? 'user root;' : '',
         PORT => $port, REDIS => $r->address, DATA => "$run/data",
         COUNTDOWN1 => 1, COUNTDOWN2 => 2);
$conf =~ s/@(\w+)@/exists $v{$1} ? $v{$1} : die "no value for \@$1\@"/ge;
open my $fh, '>', "$run/nginx.conf" or die; print {$fh} $conf; close $fh;
my $nginx = spawn(name => 'nginx', log => "$run/logs/stderr.log",
                  cmd => [$DQNginx::NGINX, '-p', "$run/", '-c', "$run/nginx.conf",
                          '-e', "$run/logs/error.log", '-g', 'daemon off;']);
ok(DQTest::wait_port($port, 10), 'nginx runs with the installed module')
    or diag slurp("$run/logs/error.log");
my $worker = spawn(name => 'worker', log => "$run/logs/worker.log",
                   env => { DQ_COUNTER_DIR => "$run/data" },
                   cmd => ["$root/usr/bin/deferred-worker", '-r', $r->address,
                           '-l', $lib, '-p', '1']);
my $n = bless { port => $port }, 'DQNginx';
is($n->request('GET', '/counter/increment')->{body}, 'Deferred counter increment.',
   '/counter/increment defers three tasks');
ok(DQTest::wait_for(sub { $n->request('GET', '/counter/get')->{body} eq '30' }, 20, 0.1),
   '/counter/get reaches 30: the installed worker ran them')
    or diag slurp("$run/logs/worker.log");
# the counter shows a task's effect before its ack is in Redis (the last
# one can still be "running" for a moment): wait for the ack
my $stats;
DQTest::wait_for(sub {
    $stats = `'$root/usr/bin/deferred-cli' -r @{[$r->address]} stats default 2>&1`;
    $stats =~ /done\D+3\b/;
}, 10, 0.1);
like($stats, qr/done\D+3\b/, 'the installed deferred-cli reads the queue') or diag $stats;

is(DQTest::stop_pid($worker, 'TERM', 40) >> 8, 0, 'worker stops cleanly');
DQTest::stop_pid($nginx);
log_clean_ok("$run/logs/error.log", 'nginx error log');
log_clean_ok("$run/logs/worker.log", 'worker log');
done_testing;
