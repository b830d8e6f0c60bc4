package DQBrowser;
# Headless Chromium for page tests, driven through chromedriver's WebDriver
# HTTP API (core Perl: HTTP::Tiny, JSON::PP). Skips the test when chromium
# or chromedriver is missing.
#
#   my $b = DQBrowser->start;                 # chromedriver + a session
#   $b->get($url);
#   my $e = $b->find('#dead button.retry');   # element id or undef
#   $b->click($e); $b->text($e); $b->run('return 1+1');
#   $b->console_errors;                       # SEVERE browser log entries
#   $b->screenshot($png_path);
#   $b->quit;
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Test::More;

my $ELEM = 'element-6066-11e4-a52e-4f735466cecf';

sub start {
    my ($class, %o) = @_;
    for my $tool (qw(chromedriver chromium)) {
        DQTest::need_tool(DQTest::in_path($tool),
                          "$tool (Debian chromium, chromium-driver)");
    }
    my $dir = DQTest::tmpdir();
    my $port = DQTest::free_port();
    my $pid = DQTest::spawn(name => 'chromedriver', log => "$dir/chromedriver.log",
                            cmd => ['chromedriver', "--port=$port"]);
    DQTest::wait_port($port, 20) or die "chromedriver did not start:\n"
        . DQTest::slurp("$dir/chromedriver.log");
    my $self = bless { port => $port, pid => $pid, dir => $dir,
                       http => HTTP::Tiny->new(timeout => 60) }, $class;
    my $res = $self->_call('POST', '/session', {
        capabilities => { alwaysMatch => {
            browserName => 'chrome',
            'goog:chromeOptions' => {
                binary => '/usr/bin/chromium',
                args => ['--headless=new', '--no-sandbox', '--disable-gpu',
                         '--disable-dev-shm-usage',
                         '--disable-background-networking',
                         '--disable-component-update', '--disable-sync',
                         '--no-first-run', '--no-default-browser-check',
                         '--window-size=1280,1000',
                         "--user-data-dir=$dir/profile"] },
            'goog:loggingPrefs' => { browser => 'ALL' } } } });
    $self->{session} = $res->{sessionId}
        or die "no WebDriver session: " . encode_json($res);
    return $self;
}

sub _call {
    my ($self, $method, $path, $body) = @_;
    my $res = $self->{http}->request($method, "http://127.0.0.1:$self->{port}$path",
        { headers => { 'Content-Type' => 'application/json' },
          defined $body ? (content => encode_json($body)) : () });
    my $data = eval { decode_json($res->{content}) } || {};
    die "webdriver $method $path: $res->{status} $res->{content}"
        if $res->{status} >= 500 && !($data->{value} && ref $data->{value} eq 'HASH'
                                      && $data->{value}{error} eq 'no such element');
    return $data->{value} // $data;
}

sub _s { "/session/$_[0]{session}" }

sub get { my ($self, $url) = @_; $self->_call('POST', $self->_s . '/url', { url => $url }) }

sub find {
    my ($self, $css) = @_;
    my $v = $self->_call('POST', $self->_s . '/element',
                         { using => 'css selector', value => $css });
    return ref $v eq 'HASH' ? $v->{$ELEM} : undef;
}

sub click { my ($self, $e) = @_; $self->_call('POST', $self->_s . "/element/$e/click", {}) }
sub text  { my ($self, $e) = @_; $self->_call('GET', $self->_s . "/element/$e/text") }

sub run {
    my ($self, $js, @args) = @_;
    return $self->_call('POST', $self->_s . '/execute/sync',
                        { script => $js, args => \@args });
}

# Browser log entries at SEVERE (console.error, uncaught exceptions,
# failed loads), read (and emptied) from chromedriver.
sub console_errors {
    my ($self) = @_;
    my $v = $self->_call('POST', $self->_s . '/se/log', { type => 'browser' });
    return grep { $_->{level} eq 'SEVERE' } @{ ref $v eq 'ARRAY' ? $v : [] };
}

sub screenshot {
    my ($self, $file) = @_;
    my $png = decode_base64($self->_call('GET', $self->_s . '/screenshot'));
    open my $fh, '>:raw', $file or die "$file: $!";
    print {$fh} $png;
    close $fh;
    return length $png;
}

sub quit {
    my ($self) = @_;
    eval { $self->_call('DELETE', $self->_s) } if $self->{session};
    delete $self->{session};
    DQTest::stop_pid($self->{pid});
}

sub DESTROY { my ($self) = @_; $self->quit if $self->{session} }

1;
