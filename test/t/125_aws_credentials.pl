# Copyright (c) pg_kms authors
#
# 125_aws_credentials.pl: each source of the credentials chain, in the
# server's environment as the AWS SDKs read it: environment (with a session
# token, signed), shared credentials file with AWS_PROFILE, config file
# profile, web identity (STS AssumeRoleWithWebIdentity), container
# credentials (full URI + authorization token file) refreshed before they
# expire, IMDSv2; and none at all (a clear error).  The emulator serves STS,
# the container endpoint and IMDS, and accepts only the credentials it
# handed out or was told about.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsAws;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $emu = aws_emulator_start("$dir/emu");
my $url = "https://127.0.0.1:$emu->{port}";
aws_env();

my $node = PostgreSQL::Test::Cluster->new('creds');
$node->init;
$node->append_conf('postgresql.conf', aws_conf($emu));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');

sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $text;
	close $fh;
	chmod 0600, $path;
	return;
}

# restart under an environment; create a key; (ok, stderr, last GenerateDataKey request)
sub with_env
{
	my (%env) = @_;
	aws_env(no_keys => 1);
	$ENV{$_} = $env{$_} for keys %env;
	delete $ENV{AWS_EC2_METADATA_DISABLED} if $env{AWS_EC2_METADATA_SERVICE_ENDPOINT};
	$node->restart;
	aws_ctl($emu, { op => 'reset_calls' });
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT kms_create_key()');
	my ($req) = grep { $_->{target} eq 'TrentService.GenerateDataKey' } @{ aws_requests($emu) };
	return ($ret == 0, $err, $req);
}

my ($ok, $err, $req);

# environment with a session token
aws_ctl($emu, { op => 'credentials', access_key_id => 'ASIAENVSESSION',
	secret_access_key => 'env/session/secret', session_token => 'env-session-token', expires_in => 3600 });
($ok, $err, $req) = with_env(AWS_ACCESS_KEY_ID => 'ASIAENVSESSION',
	AWS_SECRET_ACCESS_KEY => 'env/session/secret', AWS_SESSION_TOKEN => 'env-session-token');
ok($ok, 'environment credentials with a session token') or diag $err;
is($req->{access_key_id}, 'ASIAENVSESSION', 'signed with the environment key');
ok($req->{token}, 'X-Amz-Security-Token sent');
is($req->{signed_headers}, 'content-type;host;x-amz-date;x-amz-security-token;x-amz-target',
	'and signed, as botocore signs it');

# shared credentials file, AWS_PROFILE
aws_ctl($emu, { op => 'credentials', access_key_id => 'AKIDPROFILE', secret_access_key => 'profile/secret' });
write_file("$dir/credentials",
	"[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n"
	  . "# the profile used\n[pgkms]\naws_access_key_id = AKIDPROFILE\n  aws_secret_access_key = profile/secret  \n");
($ok, $err, $req) = with_env(AWS_SHARED_CREDENTIALS_FILE => "$dir/credentials", AWS_PROFILE => 'pgkms');
ok($ok, 'shared credentials file, profile from AWS_PROFILE') or diag $err;
is($req->{access_key_id}, 'AKIDPROFILE', "the profile's key");

# config file, [profile name]
aws_ctl($emu, { op => 'credentials', access_key_id => 'AKIDCONFIG', secret_access_key => 'config/secret' });
write_file("$dir/config",
	"[default]\nregion = us-east-1\n[profile cfg]\naws_access_key_id=AKIDCONFIG\naws_secret_access_key=config/secret\n");
($ok, $err, $req) = with_env(AWS_CONFIG_FILE => "$dir/config", AWS_PROFILE => 'cfg');
ok($ok, 'config file [profile cfg]') or diag $err;
is($req->{access_key_id}, 'AKIDCONFIG', "the config profile's key");

# web identity through STS
my $role = 'arn:aws:iam::111122223333:role/pg_kms';
aws_ctl($emu, { op => 'web_identity', role_arn => $role, token => 'jwt.header.payload' });
write_file("$dir/token", "jwt.header.payload\n");
($ok, $err, $req) = with_env(AWS_ROLE_ARN => $role, AWS_WEB_IDENTITY_TOKEN_FILE => "$dir/token");
ok($ok, 'web identity') or diag $err;
like($req->{access_key_id}, qr/^ASIA/, 'signed with the temporary key STS handed out');
ok($req->{token}, 'with its session token');
is(aws_calls($emu, 'STS.AssumeRoleWithWebIdentity'), 1, 'one AssumeRoleWithWebIdentity');
write_file("$dir/token", "not.the.token\n");
($ok, $err, $req) = with_env(AWS_ROLE_ARN => $role, AWS_WEB_IDENTITY_TOKEN_FILE => "$dir/token");
ok(!$ok, 'web identity with a refused token: fails');
like($err, qr/KeyUnavailableException: .*web identity: STS AssumeRoleWithWebIdentity answered HTTP 400: InvalidIdentityToken/,
	'and says why');
unlike($err, qr/not\.the\.token/, 'without the token');

# container credentials, refreshed 5 minutes before they expire
aws_ctl($emu, { op => 'container', token => 'container-auth-token' });
aws_ctl($emu, { op => 'temp_ttl', seconds => 302 });
write_file("$dir/ctoken", "container-auth-token\n");
($ok, $err, $req) = with_env(AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/container-credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE => "$dir/ctoken");
ok($ok, 'container credentials') or diag $err;
like($req->{access_key_id}, qr/^ASIA/, 'signed with the container credentials');
is(aws_calls($emu, 'Container.Credentials'), 1, 'fetched once');
aws_ctl($emu, { op => 'reset_calls' });
$node->safe_psql('postgres', q{SELECT kms_create_key(); SELECT kms_create_key();
	SELECT pg_sleep(3); SELECT kms_create_key();});
is(aws_calls($emu, 'Container.Credentials'), 2,
	'one backend: credentials reused while valid, fetched again when within 5 minutes of expiry');
is(aws_calls($emu, 'TrentService.GenerateDataKey'), 3, 'three keys made');
aws_ctl($emu, { op => 'temp_ttl', seconds => 3600 });
write_file("$dir/ctoken", "wrong\n");
($ok, $err, $req) = with_env(AWS_CONTAINER_CREDENTIALS_FULL_URI => "$url/container-credentials",
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE => "$dir/ctoken");
like($err, qr/container credentials: .* answered HTTP 401/, 'a refused container token: says so');

# IMDSv2
($ok, $err, $req) = with_env(AWS_EC2_METADATA_SERVICE_ENDPOINT => $url);
ok($ok, 'IMDSv2') or diag $err;
like($req->{access_key_id}, qr/^ASIA/, 'signed with the instance role credentials');
cmp_ok(aws_calls($emu, 'IMDS.Token'), '>=', 1, 'a session token was PUT first');
is(aws_calls($emu, 'IMDS.Credentials'), 1, 'then the role credentials fetched');

# nothing
($ok, $err, $req) = with_env();
ok(!$ok, 'no credentials anywhere: fails');
like($err, qr/KeyUnavailableException: AWS call TrentService.GenerateDataKey failed: no AWS credentials found/,
	'with a clear error');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr{profile/secret|config/secret|env/session/secret|container-auth-token|jwt\.header}, 'no credential in the log');
aws_emulator_stop($emu);
done_testing();
