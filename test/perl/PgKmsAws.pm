# Copyright (c) pg_kms authors
#
# PgKmsAws: the AWS emulator (test/aws/emulator.py) for pg_kms's TAP tests
# of the aws provider and the AWS client: a throwaway CA (test/aws/make_ca.sh,
# so TLS verification stays on), the emulator on a loopback port, its control
# API, and the settings and environment a cluster needs to use it.

package PgKmsAws;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

our @EXPORT = qw(aws_emulator_start aws_emulator_stop aws_ctl aws_calls aws_requests
  aws_conf aws_env);

my $root = "$FindBin::RealBin/../..";
my %started;    # pid => 1: emulators to stop if a test dies

END
{
	kill 'TERM', $_ for keys %started;
}

# Start the emulator (a new CA in $dir unless one is there); port 0 picks a
# free one.  Returns a handle: {port, ca, dir, pid}.
sub aws_emulator_start
{
	my ($dir, $port) = @_;
	$port //= 0;
	mkdir $dir unless -d $dir;
	if (!-f "$dir/ca/ca.pem")
	{
		system('bash', "$root/test/aws/make_ca.sh", "$dir/ca") == 0
		  or die "make_ca.sh failed";
	}
	my $out = "$dir/emulator.out";
	unlink $out;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', $out) or die;
		open(STDERR, '>>', "$dir/emulator.log") or die;
		exec('python3', "$root/test/aws/emulator.py", '--port', $port,
			'--cert', "$dir/ca/server.pem", '--key', "$dir/ca/server.key",
			'--state', "$dir/state")
		  or die "exec: $!";
	}
	for (1 .. 300)
	{
		if (open(my $fh, '<', $out))
		{
			my $l = <$fh>;
			close $fh;
			if (defined $l && $l =~ /^READY (\d+)/)
			{
				$started{$pid} = 1;
				return { port => $1, ca => "$dir/ca/ca.pem", dir => $dir, pid => $pid };
			}
		}
		usleep(100_000);
	}
	die "the emulator did not start (see $dir/emulator.log)";
}

sub aws_emulator_stop
{
	my ($emu) = @_;
	return unless $emu->{pid};
	kill 'TERM', $emu->{pid};
	waitpid($emu->{pid}, 0);
	delete $started{ $emu->{pid} };
	$emu->{pid} = undef;
	return;
}

sub _http
{
	my ($emu) = @_;
	return HTTP::Tiny->new(
		verify_SSL => 1,
		SSL_options => { SSL_ca_file => $emu->{ca} },
		timeout => 30);
}

# POST /__control with a hash; returns the decoded answer
sub aws_ctl
{
	my ($emu, $req) = @_;
	my $r = _http($emu)->post("https://127.0.0.1:$emu->{port}/__control",
		{ content => encode_json($req), headers => { 'Content-Type' => 'application/json' } });
	die "control $req->{op}: $r->{status} $r->{content}" unless $r->{success};
	return decode_json($r->{content});
}

sub aws_calls
{
	my ($emu, $target) = @_;
	my $r = _http($emu)->get("https://127.0.0.1:$emu->{port}/__calls");
	die "calls: $r->{status}" unless $r->{success};
	my $c = decode_json($r->{content});
	return defined $target ? ($c->{$target} // 0) : $c;
}

sub aws_requests
{
	my ($emu) = @_;
	my $r = _http($emu)->get("https://127.0.0.1:$emu->{port}/__requests");
	die "requests: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

# postgresql.conf lines for the aws provider against the emulator
sub aws_conf
{
	my ($emu, %o) = @_;
	my $port = $o{port} // $emu->{port};
	return "shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.provider = 'aws'\n"
	  . "pg_kms.aws_kms_key_id = '" . ($o{key} // 'alias/pg_kms-test') . "'\n"
	  . "pg_kms.aws_region = 'us-east-1'\n"
	  . "pg_kms.aws_endpoint_url = 'https://127.0.0.1:$port'\n"
	  . "pg_kms.aws_ca_file = '$emu->{ca}'\n";
}

# The server's environment: the emulator's static credentials, and no other
# source of the chain (no shared files, no IMDS probe).
sub aws_env
{
	my (%o) = @_;
	delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
	$ENV{AWS_SHARED_CREDENTIALS_FILE} = '/nonexistent/credentials';
	$ENV{AWS_CONFIG_FILE} = '/nonexistent/config';
	$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	unless ($o{no_keys})
	{
		$ENV{AWS_ACCESS_KEY_ID} = 'AKIDPGKMSTEST';
		$ENV{AWS_SECRET_ACCESS_KEY} = 'pgkms/test/secret/key';
	}
	return;
}

1;
