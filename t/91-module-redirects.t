# Internal redirects and deferred_enqueue (issue 11, item 2). The rule: a
# location's deferred_enqueue runs at most once per request, when the
# request reaches that location's content (after access control and
# try_files); a redirect back to the same location does not run it again,
# a redirect to another location runs that location's own. Every redirect
# kind: index, try_files, error_page (to the same and to another location),
# a named location, X-Accel-Redirect, rewrite ... last.
# (Before the fix: an index file stored two tasks, error_page to the same
# location two, try_files stored the first location's task as well.)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use Test::More;

DQNginx::require_nginx();

my $dir = tmpdir();
for my $d (qw(html html/idx html/same)) { mkdir "$dir/$d" }
for my $f (qw(idx/index.html same/ok.html final.html)) {
    open my $fh, '>', "$dir/html/$f" or die; print $fh "$f\n"; close $fh;
}

my $r = DQTest::Redis->start(dir => $dir);
my $n = DQNginx->start(redis => $r, http => qq{
    deferred_redis %%REDIS%%;
    server {
        listen 127.0.0.1:%%PORT%%;
        root $dir/html;
        location /idx/ {
            deferred_enqueue noop queue=idx;
        }
        location /tf {
            deferred_enqueue noop queue=tf;
            try_files /nope \@named;
        }
        location \@named {
            deferred_enqueue noop queue=named;
            try_files /final.html =404;
        }
        location /same/ {
            deferred_enqueue noop queue=same;
            error_page 404 /same/ok.html;
        }
        location /ep {
            deferred_enqueue noop queue=ep;
            error_page 404 = /ep-target;
        }
        location = /ep-target {
            deferred_enqueue noop queue=eptarget;
            try_files /final.html =404;
        }
        location = /xa {
            deferred_enqueue noop queue=xa;
            proxy_pass http://127.0.0.1:%%PORT%%/xa-backend;
        }
        location = /xa-backend {
            add_header X-Accel-Redirect /xa-final;
            return 200 "";
        }
        location = /xa-final {
            internal;
            deferred_enqueue noop queue=xafinal;
            try_files /final.html =404;
        }
        location /rw {
            deferred_enqueue noop queue=rw;
            rewrite ^/rw(.*)\$ /rwt\$1 last;
        }
        location /rwt {
            deferred_enqueue noop queue=rwt;
            try_files /final.html =404;
        }
    }
});

my $count = sub { DQNginx::stored($r, $_[0]) };
my $res;

$res = $n->request('GET', '/idx/');
is($res->{status}, 200, 'index: 200');
is($count->('idx'), 1, 'index: the location stored once (not again after the index redirect)');

$res = $n->request('GET', '/tf');
is($res->{status}, 200, 'try_files to a named location: 200');
is($count->('tf'), 0, 'try_files: the location that did not serve stores nothing');
is($count->('named'), 1, 'try_files: the named location that served stored once');

$res = $n->request('GET', '/same/missing');
is($res->{status}, 404, 'error_page to the same location: 404');
is($count->('same'), 1, 'error_page back to the same location: stored once');

$res = $n->request('GET', '/ep/missing');
is($res->{status}, 200, 'error_page = to another location: 200');
is($count->('ep'), 1, 'error_page: the first location stored once');
is($count->('eptarget'), 1, 'error_page: the target location stored once');

$res = $n->request('GET', '/xa');
is($res->{status}, 200, 'X-Accel-Redirect: 200');
is($count->('xa'), 1, 'X-Accel-Redirect: the proxying location stored once');
is($count->('xafinal'), 1, 'X-Accel-Redirect: the target stored once');

$res = $n->request('GET', '/rw/x');
is($res->{status}, 200, 'rewrite ... last: 200');
is($count->('rw'), 0, 'rewrite ... last: the location left in the rewrite phase stores nothing');
is($count->('rwt'), 1, 'rewrite ... last: the target location stored once');

# twice more each: still once per request
$n->request('GET', '/idx/') for 1 .. 2;
is($count->('idx'), 3, 'index: three requests, three tasks');

$n->stop;
log_clean_ok($n->error_log, 'nginx error log');
done_testing;
