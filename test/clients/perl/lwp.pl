use strict;
use warnings;
use JSON::PP;
use LWP::UserAgent;

my $ua = LWP::UserAgent->new(timeout => 30);
$ua->env_proxy;
my $res = $ua->get('https://api.openai.com/v1/models', Authorization => "Bearer $ENV{OPENAI_API_KEY}");
# LWP answers a failed connection with its own 500; its message says why (CA, proxy).
print STDERR $res->status_line, "\n" unless $res->is_success;
my ($echo) = $res->decoded_content =~ /"received_key":"([^"]*)"/;
print encode_json({ status => $res->code + 0, echo => $echo }), "\n";
