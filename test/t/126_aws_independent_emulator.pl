# Copyright (c) pg_kms authors
#
# 126_aws_independent_emulator.pl: the aws provider and a remote secret
# (GetSecretValue through a link) against an AWS-compatible
# emulator none of us wrote, with signature verification on: moto's server
# (moto_server) with IAM authentication enabled after the setup calls
# (INITIAL_NO_AUTH_ACTION_COUNT), which recomputes every SigV4 signature and
# refuses a wrong secret.  Only documented AWS behaviour is relied on.
#
# moto is not packaged in Debian 12 nor on npm, so this test SKIPs unless
# moto_server is on PATH, or PG_KMS_MOTO_URL names a fresh moto server
# (scripts/test.sh starts one when this machine has moto installed)
# started with INITIAL_NO_AUTH_ACTION_COUNT=4 (e.g. one run by root).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsAws;

my $url = $ENV{PG_KMS_MOTO_URL};
my $moto_pid;
if (!$url)
{
	my ($server) = grep { -x "$_/moto_server" } split(/:/, $ENV{PATH} // '');
	plan skip_all => 'SKIP: no independent AWS emulator (moto_server not on PATH, PG_KMS_MOTO_URL not set; moto is not in Debian 12 or on npm)'
	  unless $server;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	$moto_pid = fork();
	if ($moto_pid == 0)
	{
		$ENV{INITIAL_NO_AUTH_ACTION_COUNT} = '4';
		open(STDOUT, '>', '/dev/null');
		open(STDERR, '>', '/dev/null');
		exec("$server/moto_server", '-p', $port) or die;
	}
	$url = "http://127.0.0.1:$port";
	usleep(2_000_000);
}

my $dir = PostgreSQL::Test::Utils::tempdir;
# setup (the 4 unauthenticated calls): an IAM user with a key and a KMS key
my $setup = <<'PY';
import sys, botocore.session
url = sys.argv[1]
s = botocore.session.get_session()
kw = dict(region_name='us-east-1', endpoint_url=url, aws_access_key_id='setup', aws_secret_access_key='setup')
iam = s.create_client('iam', **kw)
iam.create_user(UserName='pgkms')
k = iam.create_access_key(UserName='pgkms')['AccessKey']
iam.put_user_policy(UserName='pgkms', PolicyName='kms', PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","secretsmanager:*"],"Resource":"*"}]}')
arn = s.create_client('kms', **kw).create_key(Description='pg_kms')['KeyMetadata']['Arn']
# a secret in moto, made with the new user's (checked) credentials
kw.update(aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey'])
sarn = s.create_client('secretsmanager', **kw).create_secret(Name='pgkms/remote', SecretString='from moto')['ARN']
print(k['AccessKeyId']); print(k['SecretAccessKey']); print(arn); print(sarn)
PY
my ($stdout, $stderr) = run_command([ 'python3', '-c', $setup, $url ]);
diag $stderr if $stderr;
my ($akid, $secret, $arn, $sarn) = split /\n/, $stdout;
ok($arn && $arn =~ /^arn:aws:kms:/, 'moto: IAM user, access key and KMS key made');

aws_env(no_keys => 1);
$ENV{AWS_ACCESS_KEY_ID} = $akid;
$ENV{AWS_SECRET_ACCESS_KEY} = $secret;
my $node = PostgreSQL::Test::Cluster->new('moto');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.provider = 'aws'\npg_kms.aws_kms_key_id = '$arn'\n"
	  . "pg_kms.aws_region = 'us-east-1'\npg_kms.aws_endpoint_url = '$url'\n"
	  . "pg_kms.key_cache_ttl = 1\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key() AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k::text, 'through moto');
});
is($node->safe_psql('postgres', q{SELECT provider FROM kms.key_version}), 'aws', 'GenerateDataKey through moto');
usleep(1_200_000);
is($node->safe_psql('postgres', q{SELECT kms_decrypt_text(c) FROM t}), 'through moto',
	'Decrypt through moto after the cache expired');
is($node->safe_psql('postgres', q{SELECT kms_rotate_master_key()}), '0',
	'DescribeKey through moto: nothing to rewrap');

# a remote secret (issue 14): GetSecretValue through a link
like($sarn // '', qr/^arn:aws:secretsmanager:us-east-1:\d{12}:secret:pgkms\/remote-[A-Za-z0-9]{6}$/, 'moto: a secret made');
$node->safe_psql('postgres', qq{SELECT kms_link_remote_secret('$sarn', 'moto/remote')});
is($node->safe_psql('postgres', qq{SELECT get_secret('$sarn')}), 'from moto',
	'GetSecretValue through moto: a linked remote secret reads');

# a wrong secret: moto's signature check refuses it
$ENV{AWS_SECRET_ACCESS_KEY} = 'not-the-secret';
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT kms_decrypt_text(c) FROM t});
like($err, qr/AccessDeniedException: AWS call TrentService.Decrypt failed/,
	'a wrong secret: refused by moto, AccessDeniedException');

$node->stop;
if ($moto_pid) { kill 'TERM', $moto_pid; waitpid($moto_pid, 0); }
done_testing();
