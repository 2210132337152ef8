# Copyright (c) pg_kms authors
#
# 121_aws_faults.pl: every fault the emulator injects gives the documented
# behaviour within the timeout (docs/providers.md, "Failure behaviour"):
# throttling and 5xx are retried with backoff (3 attempts, AWS's standard
# mode), other 4xx are not; a slow answer is DependencyTimeoutException; a
# malformed answer, an expired token, a wrong signature map to their errors
# with the AWS error code and request id in DETAIL; no credential in any
# message or log line.  The cache TTL is 1 s so each check is a cache miss,
# i.e. one Decrypt (plus its retries).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsAws;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $emu = aws_emulator_start("$dir/emu");
aws_env();

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
$node->append_conf('postgresql.conf', aws_conf($emu)
	  . "pg_kms.key_cache_ttl = 1\n"
	  . "pg_kms.aws_connect_timeout = '1s'\n"
	  . "pg_kms.aws_request_timeout = '2s'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key() AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k::text, convert_to(reverse('wor terces'), 'UTF8'));
});

my $D = 'TrentService.Decrypt';

# one decryption after the cache entry expired: (ok, stderr, seconds, Decrypt calls)
sub miss
{
	usleep(1_200_000);
	aws_ctl($emu, { op => 'reset_calls' });
	my $t0 = time;
	my ($ret, $out, $err) = $node->psql('postgres',
		q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t});
	my $secs = time - $t0;
	return ($ret == 0 && $out eq 'secret row', $err, $secs, aws_calls($emu, $D));
}

sub fault
{
	my (%f) = @_;
	aws_ctl($emu, { op => 'clear_faults' });
	aws_ctl($emu, { op => 'fault', target => $D, %f });
	return;
}

my ($ok, $err, $secs, $n);

($ok, $err, $secs, $n) = miss();
ok($ok, 'baseline: a cache miss decrypts');
is($n, 1, 'baseline: one Decrypt');

fault(kind => 'throttle', count => 2);
($ok, $err, $secs, $n) = miss();
ok($ok, 'throttled twice: the third attempt succeeds');
is($n, 3, 'throttling: 3 attempts');

fault(kind => '500', count => 2);
($ok, $err, $secs, $n) = miss();
ok($ok, '500 twice: the third attempt succeeds');
is($n, 3, '500: 3 attempts');

fault(kind => 'disconnect', count => 1);
($ok, $err, $secs, $n) = miss();
ok($ok, 'connection closed without an answer: retried');
is($n, 2, 'disconnect: 2 attempts');

fault(kind => 'throttle', count => 10);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'throttled every time: fails');
is($n, 3, 'throttled every time: 3 attempts, no more');
like($err, qr/ERROR:  KeyUnavailableException: AWS call TrentService.Decrypt failed: Rate exceeded/,
	'throttling exhausted: KeyUnavailableException');
like($err, qr/DETAIL:  AWS error code: ThrottlingException\. AWS request id: [0-9a-f-]{36}\. HTTP status: 400\. Attempts: 3\./,
	'DETAIL: AWS error code, request id, status, attempts');
cmp_ok($secs, '<', 8, "backoff stays within AWS's bounds ($secs s)");

fault(kind => 'access_denied', count => 10);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'AccessDenied: fails');
is($n, 1, '4xx: not retried');
like($err, qr/ERROR:  AccessDeniedException: AWS call TrentService.Decrypt failed/,
	'AccessDeniedException');
like($err, qr/AWS error code: AccessDeniedException\./, 'AWS code in DETAIL');

fault(kind => 'slow', seconds => 5, count => 10);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'slow answers: fail');
like($err, qr/ERROR:  DependencyTimeoutException: AWS call TrentService.Decrypt failed/,
	'slow: DependencyTimeoutException');
cmp_ok($secs, '<', 14, "slow: within 3 x pg_kms.aws_request_timeout plus backoff ($secs s)");
is($n, 3, 'timeouts are retried (3 attempts)');
my ($code) = $node->psql('postgres', q{SELECT 1});
aws_ctl($emu, { op => 'clear_faults' });
usleep(5_000_000);    # let the emulator's sleeping threads finish

fault(kind => 'malformed', count => 1);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'malformed answer: fails');
like($err, qr/ERROR:  KeyUnavailableException: AWS call TrentService.Decrypt failed: the answer is not a JSON object/,
	'malformed: KeyUnavailableException naming it');
is($n, 1, 'malformed: not retried');

fault(kind => 'expired_token', count => 1);
($ok, $err, $secs, $n) = miss();
ok($ok, 'expired token once: the credentials are read again and the call retried');
is($n, 2, 'expired token: 2 attempts');

fault(kind => 'expired_token', count => 10);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'expired token every time: fails');
like($err, qr/ERROR:  AccessDeniedException: .*\n.*AWS error code: ExpiredTokenException/,
	'expired token: AccessDeniedException, ExpiredTokenException in DETAIL');

fault(kind => 'bad_signature', count => 1);
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'signature refused: fails');
like($err, qr/ERROR:  AccessDeniedException: .*\n.*AWS error code: InvalidSignatureException/,
	'signature refused: AccessDeniedException');
is($n, 1, 'signature refused: not retried');

# a real mismatch: the emulator's secret for our key id changes, botocore's
# recomputed signature differs
aws_ctl($emu, { op => 'clear_faults' });
aws_ctl($emu, { op => 'credentials', access_key_id => 'AKIDPGKMSTEST',
	secret_access_key => 'another/secret' });
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'wrong secret: fails');
like($err, qr/AccessDeniedException: AWS call TrentService.Decrypt failed: The request signature we calculated does not match/,
	'wrong secret: the signature mismatch is reported');
aws_ctl($emu, { op => 'credentials', access_key_id => 'AKIDPGKMSTEST',
	secret_access_key => 'pgkms/test/secret/key' });
($ok, $err, $secs, $n) = miss();
ok($ok, 'recovers as soon as the credentials are right again');

# an AWS KMS key that is disabled: the key is unavailable
aws_ctl($emu, { op => 'set_key', key_id => 'alias/pg_kms-test', enabled => JSON::PP::false });
($ok, $err, $secs, $n) = miss();
ok(!$ok, 'disabled AWS KMS key: fails');
like($err, qr/ERROR:  KeyUnavailableException: .*\n.*AWS error code: DisabledException/,
	'disabled AWS KMS key: KeyUnavailableException, DisabledException in DETAIL');
aws_ctl($emu, { op => 'set_key', key_id => 'alias/pg_kms-test', enabled => JSON::PP::true });

# GenerateDataKey faults surface at key creation the same way
aws_ctl($emu, { op => 'fault', target => 'TrentService.GenerateDataKey', kind => 'access_denied', count => 1 });
my ($r2, $o2, $e2) = $node->psql('postgres', q{SELECT kms_create_key()});
like($e2, qr/ERROR:  AccessDeniedException: AWS call TrentService.GenerateDataKey failed/,
	'CreateKey refused by AWS: AccessDeniedException, nothing created');

# nothing secret in messages or in the server log
$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr{pgkms/test/secret/key}, 'the secret access key is in no log line');
unlike($log, qr{secret row}, 'no plaintext in the log');
like($log, qr/DependencyTimeoutException/, 'the errors are logged (the log was read)');

aws_emulator_stop($emu);
done_testing();
