# A TCP proxy between the worker and Redis, in a forked process, for tests
# that need a network fault on one connection (a reply lost, replies late).
#
#   my $p = DQProxy::start($redis->port,
#       request => sub { my ($buf, $st) = @_; ... },      # client -> Redis
#       reply   => sub { my ($buf, $st) = @_; ...; 1 });  # Redis -> client
#   ... "redis 127.0.0.1:$p->{port}" ...
#   DQProxy::stop($p);
#
# $st is a hash per connection the callbacks may mark ($st->{n}: the
# connection's number, 1 for the first accepted). `reply` returns true to
# pass the bytes on, false to drop them and close the connection, or
# { delay => SECONDS } to pass them on that much later (what follows on
# that connection waits behind them; the other connections do not).
# port => P listens on P (a port that refused connections until now: the
# proxy is a gate that opens the moment start returns).
package DQProxy;
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes ();
use DQTest;

sub start {
    my ($target, %o) = @_;
    my $port = $o{port} || DQTest::free_port();
    my $lsn = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 128,
                                    ReuseAddr => 1) or die "listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $sel = IO::Select->new($lsn);
        my (%peer, %srv, %st, %held, %sock);
        my $nconn = 0;
        while (1) {
            my $tmo = %held ? 0.01 : 1;
            for my $h ($sel->can_read($tmo)) {
                if ($h == $lsn) {
                    my $c = $lsn->accept or next;
                    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                                  PeerPort => $target) or next;
                    $peer{$c} = $s; $peer{$s} = $c; $srv{$s} = 1;
                    $st{$c} = $st{$s} = { n => ++$nconn };
                    $sel->add($c, $s);
                    next;
                }
                my $o = $peer{$h} or next;
                my $buf = '';
                my $n = sysread($h, $buf, 65536);
                my $pass = $n ? 1 : 0;
                if ($pass && $srv{$h}) {
                    $pass = $o{reply} ? $o{reply}->($buf, $st{$h}) : 1;
                } elsif ($pass && $o{request}) {
                    $o{request}->($buf, $st{$h});
                }
                if (!$pass) {
                    $sel->remove($h, $o);
                    delete @peer{$h, $o}; delete @srv{$h, $o};
                    delete @st{$h, $o}; delete @held{$h, $o};
                    close $h; close $o;
                    next;
                }
                my $delay = ref $pass ? $pass->{delay} : 0;
                if ($delay || $held{$o}) {
                    my $q = $held{$o} ||= [];
                    my $due = Time::HiRes::time() + ($delay || 0);
                    $due = $q->[-1][0] if @$q && $q->[-1][0] > $due;
                    push @$q, [$due, $buf];
                    $sock{$o} = $o;
                    next;
                }
                syswrite($o, $buf);
            }
            for my $k (keys %held) {
                my $q = $held{$k};
                while (@$q && $q->[0][0] <= Time::HiRes::time()) {
                    syswrite($sock{$k}, (shift @$q)->[1]);
                }
                delete $held{$k} unless @$q;
            }
        }
        POSIX::_exit(0);
    }
    close $lsn;
    return { pid => $pid, port => $port };
}

# hold_evalsha($target, $arm, delay => S, once => 1, other => sub {...}):
# a proxy that, while the file $arm exists, holds the first reply after an
# EVALSHA on a connection (one sent while armed) for S seconds (1.5);
# once: $arm is removed as that reply is held (one reply per arming). Any
# other reply passes, or other->($buf, $st) decides as `reply` would
# (t/28, t/29, t/209).
sub hold_evalsha {
    my ($target, $arm, %o) = @_;
    my $delay = $o{delay} // 1.5;
    return start($target, ($o{port} ? (port => $o{port}) : ()),
        request => sub {
            my ($buf, $st) = @_;
            $st->{eval} = 1 if $buf =~ /EVALSHA/i && -e $arm;
        },
        reply => sub {
            my ($buf, $st) = @_;
            if ($st->{eval} && -e $arm) {
                unlink $arm if $o{once};
                $st->{eval} = 0;
                return { delay => $delay };
            }
            return $o{other} ? $o{other}->($buf, $st) : 1;
        });
}

sub stop {
    my ($p) = @_;
    kill 'KILL', $p->{pid};
    waitpid($p->{pid}, 0);
}

1;
