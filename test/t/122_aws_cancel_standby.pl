# Copyright (c) pg_kms authors
#
# 122_aws_cancel_standby.pl: a request in flight to AWS is interrupted by a
# query cancel (pg_cancel_backend) and by statement_timeout, at once, not
# when the answer comes; the backend waits in wait event "Extension"
# meanwhile and stays usable.  On a hot standby the aws provider unwraps
# (Decrypt) the replicated material.

use strict;
use warnings;

use IPC::Run;
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

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', aws_conf($emu)
	  . "pg_kms.key_cache_ttl = 1\n"
	  . "pg_kms.aws_request_timeout = '60s'\n");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key() AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k::text, 'replicated');
});

# --- cancel while the emulator sleeps
usleep(1_200_000);
aws_ctl($emu, { op => 'fault', target => 'TrentService.Decrypt', kind => 'slow', seconds => 30, count => 1 });
my ($out, $err) = ('', '');
my $t0 = time;
my $h = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $primary->connstr('postgres'), '-c',
		q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t} ],
	'>', \$out, '2>', \$err);
my $pid = '';
for (1 .. 100)
{
	$pid = $primary->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT convert_from(kms_decrypt%' AND wait_event = 'Extension'});
	last if $pid ne '';
	usleep(100_000);
}
isnt($pid, '', 'the backend waits on AWS in wait event Extension');
usleep(500_000);
$primary->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$h->finish;
my $secs = time - $t0;
like($err, qr/canceling statement due to user request/, 'pg_cancel_backend interrupts the AWS request');
cmp_ok($secs, '<', 10, "the cancel took effect at once ($secs s, the emulator sleeps 30 s)");
is($primary->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'replicated', 'the next statement works');

# --- statement_timeout
usleep(1_200_000);
aws_ctl($emu, { op => 'fault', target => 'TrentService.Decrypt', kind => 'slow', seconds => 30, count => 1 });
$t0 = time;
my ($ret, $o, $e) = $primary->psql('postgres',
	q{SET statement_timeout = '1s'; SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t});
$secs = time - $t0;
like($e, qr/canceling statement due to statement timeout/, 'statement_timeout interrupts the AWS request');
cmp_ok($secs, '<', 8, "within the statement timeout ($secs s)");
aws_ctl($emu, { op => 'clear_faults' });

# --- hot standby
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
aws_ctl($emu, { op => 'reset_calls' });
is($standby->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'replicated', 'the standby decrypts material wrapped by AWS KMS');
is(aws_calls($emu, 'TrentService.Decrypt'), 1, 'the standby unwrapped it with one Decrypt');
is($standby->safe_psql('postgres', q{SELECT kms_decrypt_text(kms_encrypt(k::text, 'on the standby')) FROM t}),
	'on the standby', 'the standby encrypts too');
($ret, $o, $e) = $standby->psql('postgres', q{SELECT kms_create_key()});
like($e, qr/cannot run on a standby server/, 'CreateKey on a standby: the usual clear error, no AWS call');
is(aws_calls($emu, 'TrentService.GenerateDataKey'), 0, 'no GenerateDataKey from the standby');

$standby->stop;
$primary->stop;
aws_emulator_stop($emu);
done_testing();
