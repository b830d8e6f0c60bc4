# A TCP proxy between the worker and Redis, in a forked process, for tests
# that need a network fault on one connection (a reply lost, replies late).
#
#   my $p = DQProxy::start($redis->port,
#       request => sub { my ($buf, $st) = @_; ... },      # client -> Redis
#       reply   => sub { my ($buf, $st) = @_; ...; 1 });  # Redis -> client
#   ... "redis 127.0.0.1:$p->{port}" ...
#   DQProxy::stop($p);
#
# $st is a hash per connection the callbacks may mark. `reply` returns
# true to pass the bytes on, false to drop them and close the connection.
package DQProxy;
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use DQTest;

sub start {
    my ($target, %o) = @_;
    my $port = DQTest::free_port();
    my $lsn = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 16,
                                    ReuseAddr => 1) or die "listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $sel = IO::Select->new($lsn);
        my (%peer, %srv, %st);
        while (1) {
            for my $h ($sel->can_read(1)) {
                if ($h == $lsn) {
                    my $c = $lsn->accept or next;
                    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                                  PeerPort => $target) or next;
                    $peer{$c} = $s; $peer{$s} = $c; $srv{$s} = 1;
                    $st{$c} = $st{$s} = {};
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
                    delete @st{$h, $o};
                    close $h; close $o;
                    next;
                }
                syswrite($o, $buf);
            }
        }
        POSIX::_exit(0);
    }
    close $lsn;
    return { pid => $pid, port => $port };
}

sub stop {
    my ($p) = @_;
    kill 'KILL', $p->{pid};
    waitpid($p->{pid}, 0);
}

1;
