package DQNginx;
# nginx with ngx_http_deferred_module for tests: Debian's /usr/sbin/nginx on
# a free loopback port in a temp prefix (absolute -p/-c, -e error log, every
# *_temp_path set, `user` when root), the module loaded from build/, the
# master in the foreground as our child, stopped by pid, reloaded by SIGHUP.
# Plus the HTTP helpers the module tests need: one request, many concurrent
# keep-alive requests (raw sockets), a tiny msgpack encoder, HMAC.
#
#   my $n = DQNginx->start(redis => $r, http => <<'EOF');
#       server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
#   EOF
#   my $n = DQNginx->start_status($r, ops => 1);      # operator locations
#   my $res = $n->request('POST', '/_ah/queue/deferred',
#                         json => '{"func":"f"}');    # {status, headers, body}
#   my @res = $n->many(\@requests, conns => 50);      # keep-alive, concurrent
#   $n->reload; $n->stop; DQTest::log_clean_ok($n->error_log);
#
# In the http text: %%PORT%%, %%REDIS%% (the DQTest::Redis address),
# %%DIR%% (the prefix), and any name given in `vars => {NAME => value}`.
# A full config (with load_module...) may be given as `conf` instead, with
# the same %%...%% names plus %%MODULE%%, %%USER%%. `workers => 0` runs
# nginx in one process (master_process off); `wrapper => [cmd...]` runs it
# under another program (valgrind).
#
#   DQNginx::mp($data)            msgpack bytes (hand-made encoder)
#   DQNginx::hmac_sha256_hex($key, $body)
#   DQNginx::stored($redis, $queue), DQNginx::redis_keys($redis)
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);
use Test::More;

our $NGINX = $ENV{NGINX_BIN} || '/usr/sbin/nginx';

# The module: DQ_MODULE (make check sets it to the one it built), else
# build/'s (./build.sh build).
sub module_path {
    $ENV{DQ_MODULE} || "$DQTest::ROOT/build/ngx_http_deferred_module.so"
}

# Skips the whole test file when nginx or the module is missing.
sub require_nginx {
    DQTest::need_tool(-x $NGINX, "$NGINX (nginx)");
    DQTest::require_built(module_path(), 'nginx module (./build.sh build)');
}

sub _subst {
    my ($self, $text) = @_;
    my %v = (PORT => $self->{port}, DIR => $self->{dir},
             REDIS => $self->{redis} ? $self->{redis}->address : '127.0.0.1:1',
             MODULE => module_path(),
             USER => $> == 0 ? 'user root;' : '',
             %{ $self->{vars} || {} });
    $text =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : die "no value for %%$1%%"/ge;
    return $text;
}

sub start {
    my ($class, %o) = @_;
    require_nginx();
    my $self = bless { dir => $o{dir} || DQTest::tmpdir(),
                       port => $o{port} || DQTest::free_port(),
                       redis => $o{redis}, vars => $o{vars},
                       workers => $o{workers} // 2,
                       wrapped => $o{wrapper} ? 1 : 0 }, $class;
    my $d = $self->{dir};
    mkdir "$d/$_" for qw(logs tmp);
    $self->{conf_file} = "$d/nginx.conf";
    $self->write_conf(%o);
    my ($ok, $out) = $self->test_conf;
    die "nginx -t failed:\n$out" unless $ok;
    $self->{pid} = DQTest::spawn(
        name => 'nginx', log => "$d/logs/stderr.log",
        cmd  => [@{ $o{wrapper} || [] },
                 $NGINX, '-p', "$d/", '-c', $self->{conf_file},
                 '-e', $self->error_log, '-g', 'daemon off;']);
    DQTest::wait_port($self->{port}, $o{wrapper} ? 60 : 10)
        or die "nginx did not start:\n" . DQTest::slurp($self->error_log);
    DQTest::wait_for(sub { scalar($self->worker_pids) >= $self->{workers} }, 5);
    return $self;
}

# The status tests' nginx (t/114, t/140, t/143, t/145, t/166): one server
# on $redis (deferred_timeout 2s, or `timeout => '10s'`) with
# /deferred/status and /deferred/metrics; `ops => 1` adds /deferred/admin,
# the dashboard at /deferred/ and /ready; `locations => TEXT` more of the
# server block (`deferred_endpoint on;` too). Other options as start()'s.
#   my $n = DQNginx->start_status($r, ops => 1, locations => q{...});
sub start_status {
    my ($class, $redis, %o) = @_;
    my $more = delete $o{locations} // '';
    my $timeout = delete $o{timeout} // '2s';
    my $ops = delete $o{ops} ? q{
        location = /deferred/admin   { deferred_admin; }
        location /deferred/          { deferred_dashboard; }
        location = /ready            { deferred_ready; }} : '';
    return $class->start(%o, redis => $redis, http => <<"NGX");
    deferred_redis %%REDIS%%;
    deferred_timeout $timeout;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /deferred/status  { deferred_status; }
        location = /deferred/metrics { deferred_metrics; }$ops
$more
    }
NGX
}

sub write_conf {
    my ($self, %o) = @_;
    my $d = $self->{dir};
    my $text;
    if (defined $o{conf}) {
        $text = $o{conf};
    } else {
        my $user = $> == 0 ? 'user root;' : '';
        my $procs = $self->{workers} ? "worker_processes $self->{workers};"
                                     : "master_process off;";
        $text = <<"EOF";
load_module %%MODULE%;
$user
$procs
error_log $d/logs/error.log info;
pid $d/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
$o{http}
}
EOF
        $text =~ s/%%MODULE%;/%%MODULE%%;/;
    }
    open my $fh, '>', $self->{conf_file} or die "$self->{conf_file}: $!";
    print {$fh} $self->_subst($text);
    close $fh;
}

# (ok, output) of nginx -t on the current config file (or another one).
sub test_conf {
    my ($self, $file) = @_;
    $file //= $self->{conf_file};
    my $d = $self->{dir};
    unlink "$d/logs/test.log";
    my $out = `$NGINX -t -p $d/ -c $file -e $d/logs/test.log 2>&1`;
    return ($? == 0, $out . DQTest::slurp("$d/logs/test.log"));
}

sub port      { $_[0]{port} }
sub dir       { $_[0]{dir} }
sub pid       { $_[0]{pid} }
sub error_log { "$_[0]{dir}/logs/error.log" }

sub worker_pids {
    my ($self) = @_;
    my @p;
    opendir my $dh, '/proc' or return ();
    for my $e (readdir $dh) {
        next unless $e =~ /^\d+$/;
        my $stat = DQTest::slurp("/proc/$e/stat");
        next unless $stat =~ /^\d+ \((.*)\) \S (\d+)/s;
        push @p, $e if $2 == ($self->{pid} // -1) && $1 =~ /nginx/;
    }
    @p = sort { $a <=> $b } @p;
    return @p;
}

# SIGHUP to the master; waits until the old workers are replaced.
sub reload {
    my ($self, %o) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    $self->write_conf(%o) if $o{http} || defined $o{conf};
    kill 'HUP', $self->{pid};
    return DQTest::wait_for(sub {
        my @now = $self->worker_pids;
        scalar(grep { !$old{$_} } @now) >= $self->{workers};
    }, 10);
}

# stop(timeout => s): QUIT, then KILL after 15 s (or s: nginx under
# valgrind checks for leaks as it exits, slow on a loaded machine)
sub stop {
    my ($self, %o) = @_;
    # under a wrapper (valgrind's leak check at exit) 60 s: 15 s was
    # missed on a loaded 2-core CI machine (t/142, t/190)
    my $st = DQTest::stop_pid($self->{pid}, 'QUIT',
                              $o{timeout} // ($self->{wrapped} ? 60 : 15))
        if $self->{pid};
    $self->{pid} = undef;
    return $st;
}

sub alive { my ($self) = @_; $self->{pid} && kill(0, $self->{pid}) }

# ------------------------------------------------------------------ HTTP

# request(METHOD, PATH, json => TEXT | msgpack => BYTES | body => BYTES,
#         type => CONTENT-TYPE, headers => {...}) -> {status, headers, body}
sub request {
    my ($self, $method, $path, %o) = @_;
    my ($res) = $self->many([ build_request($method, $path, %o) ],
                            conns => 1);
    return $res;
}

sub build_request {
    my ($method, $path, %o) = @_;
    my $body = $o{body};
    my $type = $o{type};
    if (defined $o{json})    { $body = $o{json};    $type //= 'application/json'; }
    if (defined $o{msgpack}) { $body = $o{msgpack}; $type //= 'application/x-msgpack'; }
    my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    $req .= "Content-Type: $type\r\n" if defined $type;
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    my %h = %{ $o{headers} || {} };
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    $req .= "Connection: close\r\n" if $o{close};
    $req .= "\r\n";
    $req .= $body if defined $body;
    return $req;
}

# many(\@raw_requests, conns => N, timeout => s): sends the requests over N
# keep-alive connections at once (each connection one request at a time)
# and returns the parsed responses in request order. A response that did
# not come is {status => 0, error => '...'}.
sub many {
    my ($self, $reqs, %o) = @_;
    my $conns = $o{conns} || 10;
    my $deadline = time + ($o{timeout} || 30);
    my @res;
    my @queue = (0 .. $#$reqs);
    my %c;    # fileno => {sock, idx, out, in}
    my $sel = IO::Select->new;
    my $open = sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port},
                                      Proto => 'tcp', Timeout => 5);
        return undef unless $s;
        $s->blocking(0);
        $sel->add($s);
        return $c{fileno $s} = { sock => $s, idx => undef, in => '' };
    };
    my $next = sub {
        my ($st) = @_;
        return 0 unless @queue;
        my $i = shift @queue;
        $st->{idx} = $i;
        $st->{out} = $reqs->[$i];
        $st->{in} = '';
        return 1;
    };
    for (1 .. ($conns < @queue ? $conns : scalar @queue)) {
        my $st = $open->() or last;
        $next->($st);
    }
    while ($sel->count && time < $deadline) {
        my ($r, $w) = IO::Select->select($sel,
            IO::Select->new(map { $_->{sock} } grep { length($_->{out} // '') } values %c),
            undef, 0.5);
        for my $s (@{ $w || [] }) {
            my $st = $c{fileno $s} or next;
            my $n = syswrite($s, $st->{out});
            substr($st->{out}, 0, $n, '') if $n;
        }
        for my $s (@{ $r || [] }) {
            my $st = $c{fileno $s} or next;
            my $n = sysread($s, my $buf, 65536);
            next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
            if (!$n) {
                # closed: the pending request fails; others move on
                $sel->remove($s);
                delete $c{fileno $s};
                close $s;
                if (defined $st->{idx}) {
                    my $p = parse_response($st->{in});
                    $res[$st->{idx}] = $p || { status => 0,
                                               error => 'connection closed' };
                    if (!$p && $o{retry_closed} && $st->{in} eq '') {
                        unshift @queue, $st->{idx};    # never answered
                        $res[$st->{idx}] = undef;
                    }
                }
                if (@queue) { my $ns = $open->(); $next->($ns) if $ns; }
                next;
            }
            $st->{in} .= $buf;
            my $p = parse_response($st->{in}) or next;
            $res[$st->{idx}] = $p;
            $st->{idx} = undef;
            my $close = ($p->{headers}{connection} // '') =~ /close/i;
            if ($close || !@queue) {
                $sel->remove($s);
                delete $c{fileno $s};
                close $s;
                if ($close && @queue) { my $ns = $open->(); $next->($ns) if $ns; }
                next;
            }
            $next->($st);
        }
    }
    for my $st (values %c) {
        $res[$st->{idx}] //= { status => 0, error => 'timeout' } if defined $st->{idx};
        close $st->{sock};
    }
    $res[$_] //= { status => 0, error => 'not sent' } for 0 .. $#$reqs;
    return @res;
}

# A complete response in $buf (Content-Length or no body), else undef.
sub parse_response {
    my ($buf) = @_;
    my $end = index($buf, "\r\n\r\n");
    return undef if $end < 0;
    my $head = substr($buf, 0, $end);
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($status) = $status_line =~ m{^HTTP/1\.\d (\d{3})} or return undef;
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $len = $h{'content-length'} // 0;
    return undef if length($buf) < $end + 4 + $len;
    return { status => $status, headers => \%h,
             body => substr($buf, $end + 4, $len) };
}

# ------------------------------------------------------------- msgpack

# mp(DATA): msgpack bytes. Hash refs -> maps (sorted keys), array refs ->
# arrays, undef -> nil, \'text' -> str always, \1/\0 -> true/false,
# integers -> int, other numbers -> float64, anything else -> str.
sub mp {
    my ($d) = @_;
    return "\xc0" unless defined $d;
    my $r = ref $d;
    if ($r eq 'HASH') {
        my @k = sort keys %$d;
        return _mp_len(scalar @k, 0x80, "\xde", "\xdf")
               . join('', map { _mp_str($_) . mp($d->{$_}) } @k);
    }
    if ($r eq 'ARRAY') {
        return _mp_len(scalar @$d, 0x90, "\xdc", "\xdd") . join('', map { mp($_) } @$d);
    }
    if ($r eq 'SCALAR') {
        my $v = $$d;
        return $v eq '1' ? "\xc3" : $v eq '0' ? "\xc2" : _mp_str($v);
    }
    if ($d =~ /^-?\d{1,18}\z/) {
        return pack('C', $d) if $d >= 0 && $d < 128;
        return pack('C', $d & 0xff) if $d < 0 && $d >= -32;
        return "\xd3" . pack('q>', $d);
    }
    if ($d =~ /^-?\d+\.\d+\z/) { return "\xcb" . pack('d>', $d); }
    return _mp_str($d);
}

sub _mp_str {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    my $n = length $s;
    return pack('C', 0xa0 | $n) . $s if $n < 32;
    return "\xd9" . pack('C', $n) . $s if $n < 256;
    return "\xda" . pack('n', $n) . $s if $n < 65536;
    return "\xdb" . pack('N', $n) . $s;
}

sub _mp_len {
    my ($n, $fix, $b16, $b32) = @_;
    return pack('C', $fix | $n) if $n < 16;
    return $b16 . pack('n', $n) if $n < 65536;
    return $b32 . pack('N', $n);
}

# ---------------------------------------------------------------- HMAC

# hex HMAC-SHA256 by openssl(1)... not in core Perl: computed here.
sub hmac_sha256_hex {
    my ($key, $data) = @_;
    require Digest::SHA;
    return Digest::SHA::hmac_sha256_hex($data, $key);
}

# ---------------------------------------------------------------- Redis

# Every key our queues left behind, sorted (for "Redis left clean").
sub redis_keys {
    my ($r) = @_;
    my $k = $r->cmd('KEYS', '*');
    return sort @{ ref $k eq 'ARRAY' ? $k : [] };
}

# Number of tasks stored in a queue (the tasks hash).
sub stored {
    my ($r, $queue) = @_;
    return $r->cmd('HLEN', "dq2:{" . ($queue // 'default') . "}:tasks");
}


# nginx under valgrind (Debian's nginx cannot load an ASan-built module):
# the wrapper for start(wrapper => ...), writing its report to $log ...
sub valgrind {
    my ($log) = @_;
    return ['/usr/bin/valgrind', '--leak-check=full', '--num-callers=30',
            "--log-file=$log"];
}

# ... and the report checked once nginx exited: ran to the end, no
# invalid access, no leak from the module or hiredis
sub valgrind_ok {
    my ($log_file) = @_;
    my $log = DQTest::slurp($log_file);
    Test::More::like($log, qr/ERROR SUMMARY/, 'valgrind ran to the end');
    Test::More::unlike($log, qr/Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched free|overlap/,
                       'no invalid memory access') or Test::More::diag($log);
    my @ours = grep { /ngx_http_deferred|dq_|redis/ }
               grep { /(definitely|indirectly) lost in loss record/ }
               split /\n(?===\d+== \S.*lost in loss record)/, $log;
    Test::More::is(scalar @ours, 0, 'no leak from the module or hiredis')
        or Test::More::diag(join "\n\n", @ours);
}

1;

