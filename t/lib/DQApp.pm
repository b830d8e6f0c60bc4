package DQApp;
# Python App Engine tests (t/53-58): a whole stack on loopback — Redis,
# nginx with the module (examples/appengine/nginx.conf.in: the public
# server proxying to the app, the enqueue endpoint on its own port), a WSGI
# app under Debian's gunicorn (Debian's /usr/bin/python3, the package from
# clients/python on PYTHONPATH) and deferred-worker with the push library.
#
#   DQApp::require_python();                       # skips without gunicorn
#   my $s = DQApp->start(dir => $dir, redis => $r, app_dir => ..., app => 'main:app',
#                        worker_conf => "queue default { ... }");
#   $s->get('/counter/get');  $s->app_stop;  $s->app_start;
#   $s->python('from ngx_deferred import deferred; ...');
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQNginx;
use DQWorker;
use HTTP::Tiny;
use JSON::PP ();
use Test::More;

our $PY = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
our $SECRET = 'test-secret-0123456789abcdef';

sub require_python {
    DQNginx::require_nginx();
    DQTest::need_tool(-x '/usr/bin/gunicorn', 'gunicorn');
    DQTest::require_built(DQTest::bin('push/libdq_push.so'), 'the push library');
}

sub push_lib { DQTest::bin('push/libdq_push.so') }

# The stack with t/python/pushapp.py as the app (skips without
# python3-redis, which pushapp's neighbours import): ($stack, $redis, $dir)
sub start_pushapp {
    my (%o) = @_;
    DQTest::need_tool(system($PY, '-c', 'import redis') == 0, 'python3-redis');
    my $dir = DQTest::tmpdir();
    my $r = DQTest::Redis->start(dir => $dir);
    my $s = DQApp->start(dir => $dir, redis => $r, app => 'pushapp:app',
                         app_dir => "$DQTest::ROOT/t/python", %o);
    return ($s, $r, $dir);
}

# pushapp's attempts (t/python/attempts.log rows), of one tag or all
sub attempts {
    my ($self, $tag) = @_;
    my $f = "$self->{dir}/attempts.log";
    return grep { !defined $tag || $_->{tag} eq $tag }
           map { JSON::PP::decode_json($_) } grep { /\S/ }
           split /\n/, (-e $f ? DQTest::slurp($f) : '');
}

sub start {
    my ($class, %o) = @_;
    my $dir = $o{dir};
    my $self = bless { %o, app_port => DQTest::free_port(),
                       enqueue_port => DQTest::free_port() }, $class;
    my $conf = DQTest::slurp("$DQTest::ROOT/examples/appengine/nginx.conf.in");
    $conf =~ s/\@PREFIX\@/%%DIR%%/g;
    $conf =~ s/\@APP_PORT\@/$self->{app_port}/g;
    $conf =~ s/\@ENQUEUE_PORT\@/$self->{enqueue_port}/g;
    $conf =~ s/\@SECRET\@/$SECRET/g;
    $conf =~ s/\@(\w+)\@/%%$1%%/g;
    mkdir "$dir/nginx";
    $self->{nginx} = DQNginx->start(redis => $o{redis}, conf => $conf,
                                    dir => "$dir/nginx");
    $self->app_start;
    $self->worker_start;
    return $self;
}

sub env {
    my ($self) = @_;
    my $r = $self->{redis};
    return {
        PYTHONPATH => "$DQTest::ROOT/clients/python:$DQTest::ROOT/examples/appengine:$DQTest::ROOT/t/python",
        NGX_DEFERRED_URL => "http://127.0.0.1:$self->{enqueue_port}/_ngx_deferred/enqueue",
        NGX_DEFERRED_SECRET => $SECRET,
        COUNTER_REDIS_URL => 'redis://' . $r->address . '/0',
        APP_LOG_DIR => $self->{dir},
        PYTHONUNBUFFERED => 1,
        %{ $self->{env} || {} },
    };
}

sub app_start {
    my ($self) = @_;
    if ($self->{app_cmd}) {           # another server in the app's place
        $self->{app_pid} = DQTest::spawn(
            name => 'app', log => "$self->{dir}/app.log", env => $self->env,
            cmd => [map { s/%PORT%/$self->{app_port}/r } @{ $self->{app_cmd} }]);
        DQTest::wait_port($self->{app_port}, 30)
            or diag("the app did not start:\n" . DQTest::slurp("$self->{dir}/app.log"));
        return;
    }
    $self->{app_pid} = DQTest::spawn(
        name => 'gunicorn', log => "$self->{dir}/app.log",
        dir => $self->{app_dir}, env => $self->env,
        cmd => [$PY, '/usr/bin/gunicorn', '--bind', "127.0.0.1:$self->{app_port}",
                '--workers', $self->{app_workers} // 2,
                '--threads', $self->{app_threads} // 4,
                @{ $self->{gunicorn_args} || [] },
                '--access-logfile', '-', $self->{app} // 'main:app']);
    DQTest::wait_port($self->{app_port}, 30)
        or diag("the app did not start:\n" . DQTest::slurp("$self->{dir}/app.log"));
}

sub app_stop {
    my ($self) = @_;
    DQTest::stop_pid($self->{app_pid}, 'TERM', 20);
    delete $self->{app_pid};
}

sub worker_start {
    my ($self) = @_;
    my $file = "$self->{dir}/deferred-worker.conf";
    my $conf = $self->{worker_conf} // "queue default {
    push_target http://127.0.0.1:\@APP_PORT\@; push_deadline 20s;
    min_backoff 100ms; max_backoff 1s;
}\n";
    $conf =~ s/\@APP_PORT\@/$self->{app_port}/g;
    open my $fh, '>', $file or die "$file: $!";
    print {$fh} "push_secret $SECRET;\n$conf";
    close $fh;
    $self->{worker} = DQWorker::start_worker(
        $self->{redis}, $self->{dir}, name => 'worker', libs => [push_lib()],
        args => ['-c', $file, @{ $self->{worker_args} || [] }]);
    $self->{worker_conf_file} = $file;
}

sub worker { $_[0]{worker} }
sub nginx { $_[0]{nginx} }
sub app_port { $_[0]{app_port} }
sub app_log { DQTest::slurp("$_[0]{dir}/app.log") }

# GET through nginx's public server: body (undef on error)
sub get {
    my ($self, $path) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)
        ->get('http://127.0.0.1:' . $self->{nginx}->port . $path);
    return $res->{success} ? $res->{content} : undef;
}

# Run Python with the stack's environment: (exit status, output)
sub python {
    my ($self, $code) = @_;
    my $env = $self->env;
    my $file = "$self->{dir}/snippet.py";
    open my $fh, '>', $file or die "$file: $!";
    print {$fh} $code;
    close $fh;
    local @ENV{keys %$env} = values %$env;
    my $out = `$PY $file 2>&1`;
    return ($? >> 8, $out);
}

# stop everything; returns the worker's exit status
sub stop {
    my ($self) = @_;
    my $st = $self->{worker} ? DQWorker::stop_worker($self->{worker}) : undef;
    $self->app_stop if $self->{app_pid};
    $self->{nginx}->stop;
    return defined $st ? $st >> 8 : undef;
}

1;
