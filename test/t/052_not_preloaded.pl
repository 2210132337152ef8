
# Copyright (c) pg_kms authors
#
# 052_not_preloaded.pl: pg_kms installed in a database of a server that does
# not preload it (issue 10).  Every call fails with one message, "pg_kms is
# not loaded through shared_preload_libraries" and one hint, whichever part
# notices; and the failing statement is not logged, so a secret value or a
# plaintext passed as a literal does not reach the server log through the
# STATEMENT line of the error.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->append_conf('postgresql.conf',
	"log_statement = 'none'\n" . "log_min_error_statement = error\n");

# The extension is created while the server preloads pg_kms, then the server
# runs without it (a configuration change, or a copy of the cluster).
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_kms'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'the server runs without pg_kms preloaded');

my $run = sprintf('%08x%04x', time(), $$ & 0xffff);
my $secret = "pgkmsNOTPRELOADEDsecret$run";
my $plain = "pgkmsNOTPRELOADEDplain$run";

my @calls = (
	[ 'CreateSecret', "SELECT create_secret('np/test', '$secret')" ],
	[ 'Encrypt', "SELECT kms_encrypt('alias/np', convert_to('$plain', 'UTF8'))" ],
	[ 'kms_audit_stats', 'SELECT * FROM kms_audit_stats()' ],
	[ 'kms_worker_status', 'SELECT * FROM kms_worker_status()' ],
	[ 'kms_cache_stats', 'SELECT * FROM kms_cache_stats()' ],);

my $log_start = -s $node->logfile;
foreach my $c (@calls)
{
	my ($name, $sql) = @$c;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	isnt($ret, 0, "$name fails without shared_preload_libraries");
	like(
		$err,
		qr/ERROR:  KMSInternalException: pg_kms is not loaded through shared_preload_libraries\nHINT:  Add pg_kms to shared_preload_libraries in postgresql.conf and restart the server\./,
		"$name: the one message and hint");
}

my $log = slurp_file($node->logfile, $log_start);
like($log, qr/pg_kms is not loaded through shared_preload_libraries/,
	'the errors are in the server log');
unlike($log, qr/\Q$secret\E/, 'the secret value is not in the server log');
unlike($log, qr/\Q$plain\E/, 'the plaintext is not in the server log');
unlike($log, qr/STATEMENT:.*(create_secret|kms_encrypt)/,
	'no STATEMENT line for the failed calls');

$node->stop;
done_testing();
