# ngx_http_deferred_module loads into Debian's nginx (load_module), the
# example config passes nginx -t, and every bad directive value is refused
# by nginx -t with a message naming it.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
mkdir "$dir/$_" for qw(logs tmp data);
my $n = bless { dir => $dir, port => free_port() }, 'DQNginx';

sub conf_with {
    my ($http) = @_;
    my $user = $> == 0 ? 'user root;' : '';
    my $mod = DQNginx::module_path();
    return "load_module $mod;\n$user\nerror_log $dir/logs/error.log;\n"
         . "pid $dir/nginx.pid;\nevents { }\nhttp {\n"
         . "    client_body_temp_path $dir/tmp/body;\n"
         . "    proxy_temp_path $dir/tmp/proxy;\n"
         . "    fastcgi_temp_path $dir/tmp/fastcgi;\n"
         . "    uwsgi_temp_path $dir/tmp/uwsgi;\n"
         . "    scgi_temp_path $dir/tmp/scgi;\n"
         . "$http\n}\n";
}

sub nginx_t {
    my ($http) = @_;
    my $f = "$dir/t.conf";
    open my $fh, '>', $f or die;
    print {$fh} conf_with($http);
    close $fh;
    return $n->test_conf($f);
}

# the Counter example's config, as run.sh writes it
{
    my $t = DQTest::slurp("$DQTest::ROOT/examples/counter/nginx.conf.in");
    my %v = (PREFIX => $dir, MODULE => DQNginx::module_path(),
             USER => $> == 0 ? 'user root;' : '', PORT => free_port(),
             REDIS => '127.0.0.1:6379', DATA => "$dir/data",
             COUNTDOWN1 => 60, COUNTDOWN2 => 120);
    $t =~ s/@(\w+)@/$v{$1}/g;
    open my $fh, '>', "$dir/counter.conf" or die;
    print {$fh} $t;
    close $fh;
    my ($ok, $out) = $n->test_conf("$dir/counter.conf");
    ok($ok, 'nginx -t passes on examples/counter/nginx.conf.in') or diag $out;

    $t = DQTest::slurp("$DQTest::ROOT/examples/appengine/nginx.conf.in");
    $v{APP_PORT} = free_port();
    $v{ENQUEUE_PORT} = free_port();
    $v{SECRET} = 'a-secret-of-at-least-16-characters';
    $t =~ s/@(\w+)@/$v{$1}/g;
    open $fh, '>', "$dir/appengine.conf" or die;
    print {$fh} $t;
    close $fh;
    ($ok, $out) = $n->test_conf("$dir/appengine.conf");
    ok($ok, 'nginx -t passes on examples/appengine/nginx.conf.in') or diag $out;
}

my ($ok, $out) = nginx_t(q{
    deferred_redis 127.0.0.1:6379 db=2 password=secret connect_timeout=500ms;
    deferred_queues default mail;
    deferred_timeout 2s;
    deferred_tombstone 1d;
    deferred_max_body 64k;
    deferred_max_batch 50;
    server {
        listen 127.0.0.1:1;
        deferred_endpoint on;
        deferred_secret 0123456789abcdef0123 header=X-Sig;
        location /a { deferred_endpoint on; }
        location /b {
            deferred_enqueue f.g queue=mail countdown=1.5 name=$arg_n
                             url=/x args=$arg_k 10 1.5 str:10 int:$arg_i
                             bool:true null;
            deferred_enqueue f.h eta=$arg_eta;
            return 200 "$deferred_task_id $deferred_task_eta";
        }
    }
    server {
        listen 127.0.0.1:2;
        deferred_redis unix:/tmp/none.sock;
        location / { deferred_endpoint on; }
    }
});
ok($ok, 'nginx -t passes with every directive') or diag $out;

# every address form dq_addr_parse takes; names resolved here, once
for my $addr ('127.0.0.1', 'localhost', 'localhost:6380', '[::1]:6379',
              '::1', 'sentinel:dqm@127.0.0.1:26379,localhost,[::1]:26380') {
    ($ok, $out) = nginx_t("deferred_redis $addr; server { listen "
                          . "127.0.0.1:1; deferred_endpoint on; }");
    ok($ok, "nginx -t passes with deferred_redis $addr") or diag $out;
}

my $R = 'deferred_redis 127.0.0.1:6379;';
my $S = 'server { listen 127.0.0.1:1; ';
my @bad = (
    [ "deferred_redis 127.0.0.1:6379 dbx=1; $S }",
      qr/invalid parameter "dbx=1"/, 'unknown deferred_redis parameter' ],
    [ "deferred_redis 127.0.0.1:6379 db=-1; $S }",
      qr/invalid parameter "db=-1"/, 'bad db' ],
    [ "deferred_redis 127.0.0.1:99999; $S }",
      qr/invalid Redis address "127.0.0.1:99999"/, 'bad port' ],
    [ "deferred_redis [::1; $S }",
      qr/invalid Redis address/, 'unclosed IPv6 bracket' ],
    [ "deferred_redis sentinel:dqm; $S }",
      qr/invalid Redis address "sentinel:dqm" \(expected sentinel:MASTER\@/,
      'sentinel address without sentinels' ],
    [ "deferred_redis sentinel:dqm\@127.0.0.1:26379,no-such-host.invalid; $S }",
      qr/host not found in "deferred_redis" address "sentinel:dqm\@127.0.0.1:26379,no-such-host.invalid"/,
      'a sentinel name that does not resolve: refused at config time' ],
    [ "deferred_redis no-such-host.invalid:6379; $S }",
      qr/host not found in "deferred_redis" address "no-such-host.invalid:6379"/,
      'a name that does not resolve: refused at '
      . 'config time' ],
    [ "$S location / { deferred_endpoint on; } }",
      qr/without "deferred_redis"/, 'endpoint without redis' ],
    [ "$S deferred_endpoint on; }",
      qr/without "deferred_redis"/, 'server endpoint without redis' ],
    [ "$R $S location / { deferred_endpoint maybe; } }",
      qr/invalid value "maybe"/, 'endpoint neither on nor off' ],
    [ "$R $S location / { deferred_enqueue bad/func; } }",
      qr/invalid function name "bad\/func"/, 'bad function name' ],
    [ "$R $S location / { deferred_enqueue f queue=bad.queue; } }",
      qr/invalid value in "queue=bad.queue"/, 'bad constant queue' ],
    [ "$R $S location / { deferred_enqueue f countdown=soon; } }",
      qr/invalid value in "countdown=soon"/, 'bad constant countdown' ],
    [ "$R $S location / { deferred_enqueue f url=nope; } }",
      qr/invalid value in "url=nope"/, 'bad constant url' ],
    [ "$R $S location / { deferred_enqueue f countdown=1 eta=2; } }",
      qr/countdown= or eta=, not both/, 'countdown and eta' ],
    [ "$R $S location / { deferred_enqueue f priority=1; } }",
      qr/invalid parameter "priority=1"/, 'unknown enqueue option' ],
    [ "$R $S location / { deferred_enqueue f args=int:ten; } }",
      qr/invalid argument "int:ten"/, 'bad typed argument' ],
    [ "deferred_queues default bad!name; $S }",
      qr/invalid queue name "bad!name"/, 'bad queue in deferred_queues' ],
    [ "deferred_secret short; $S }",
      qr/"deferred_secret" is too short/, 'short secret' ],
    [ "deferred_timeout 0; $S }",
      qr/"deferred_timeout" must be more than 0/, 'zero timeout' ],
    [ "deferred_max_batch 0; $S }",
      qr/value must be between 1 and/, 'zero max batch' ],
);
for my $b (@bad) {
    my ($ok, $out) = nginx_t($b->[0]);
    ok(!$ok && $out =~ $b->[1], "nginx -t refuses: $b->[2]")
        or diag $out;
}

done_testing;
