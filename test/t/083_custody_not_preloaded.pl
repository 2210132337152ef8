# Copyright (c) pg_kms authors
#
# 083_custody_not_preloaded.pl: the custody guards (issue 11, finding 2) on
# a server that does not preload pg_kms.  Every call of pg_kms fails there
# (052_not_preloaded.pl), which is exactly when an operator may reach for
# DROP EXTENSION; without the utility hook, an event trigger and TRUNCATE
# triggers refuse what would destroy live keys, and the override works for
# a superuser only.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 53, 1);

my $node = PostgreSQL::Test::Cluster->new('custody_np');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms; SELECT kms_create_key()');
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;

foreach my $stmt ('DROP EXTENSION pg_kms CASCADE', 'DROP SCHEMA kms CASCADE', 'TRUNCATE kms.key CASCADE',
	'TRUNCATE kms.key_version', 'DELETE FROM kms.key', 'ALTER TABLE kms.key DISABLE TRIGGER ALL')
{
	my ($ret, $out, $err) = $node->psql('postgres', $stmt);
	isnt($ret, 0, "not preloaded: $stmt refused");
	like($err, qr/KMSInvalidStateException: .* keys that are not deleted/, "not preloaded: $stmt, the message");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM kms.key_version WHERE material IS NOT NULL'), '1',
	'not preloaded: the key material is still there');

# the override: the setting is only a placeholder here, so it counts for superusers only
my ($ret, $out, $err) = $node->psql('postgres', 'SET pg_kms.allow_unsafe_drop = on; DROP EXTENSION pg_kms');
is($ret, 0, 'not preloaded: DROP EXTENSION with the override, as a superuser');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'kms'}), '0', 'schema kms is gone');

$node->stop;
done_testing();
