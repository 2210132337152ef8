# Copyright (c) pg_kms authors
#
# 005_key_manager.pl: the secrets store's default key is a key pg_kms
# manages (KeyManager AWS), also in a database made with 1.0 and updated:
# ALTER EXTENSION ... UPDATE marks the keys named under alias/pg_kms/, and
# from then on a kms_admin member cannot disable it, schedule its deletion
# or move its alias, while a superuser can, with a warning.  And
# kms_decrypt_text of non-text plaintext leaves none of its bytes in the
# server log.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 31, 5);

my $node = PostgreSQL::Test::Cluster->new('key_manager');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.database = 'old'\n"
	  . "pg_kms.rotation_jobs = off\n"
	  . "log_min_error_statement = error\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', "CREATE EXTENSION pg_kms VERSION '1.0'");
$node->safe_psql('old', q{
CREATE ROLE admin1 LOGIN;
GRANT kms_admin TO admin1;
SELECT create_secret('km/secret', 'before update');
SELECT kms_create_key(description => 'customer key');
});
# before the update (a 1.0 catalog, this library) it is known by its alias
is($node->safe_psql('old', "SELECT kms_describe_key('alias/pg_kms/secrets')->>'KeyManager'"),
	'AWS', 'before the update the default key already reads AWS');
my ($rc, $out, $err) = $node->psql('old', "SET ROLE admin1; SELECT kms_disable_key('alias/pg_kms/secrets')");
like($err, qr/AccessDeniedException: .*managed by pg_kms/, 'and a kms_admin member cannot disable it');

$node->safe_psql('old', 'ALTER EXTENSION pg_kms UPDATE');

my $dk = $node->safe_psql('old',
	"SELECT key_id FROM kms.alias WHERE alias_name = 'alias/pg_kms/secrets'");
is($node->safe_psql('old', "SELECT key_manager FROM kms.key WHERE key_id = '$dk'"),
	'AWS', 'the update marks the default key in the new column');
is($node->safe_psql('old', "SELECT kms_describe_key('$dk')->>'KeyManager'"),
	'AWS', 'after the update the default key is managed by pg_kms');
is($node->safe_psql('old',
		"SELECT string_agg(key_manager, ',') FROM kms.key WHERE description = 'customer key'"),
	'CUSTOMER', 'a customer key stays CUSTOMER');

for my $call ("kms_disable_key('$dk')", "kms_schedule_key_deletion('$dk', 7)",
	"kms_delete_alias('alias/pg_kms/secrets')")
{
	($rc, $out, $err) = $node->psql('old', "SET ROLE admin1; SELECT $call");
	isnt($rc, 0, "kms_admin member: $call fails");
	like($err, qr/AccessDeniedException: .*managed by pg_kms/, "kms_admin member: $call is AccessDenied");
}
is($node->safe_psql('old', "SELECT key_state FROM kms.key WHERE key_id = '$dk'"),
	'Enabled', 'the default key is still enabled');
is($node->safe_psql('old', "SELECT get_secret('km/secret')"),
	'before update', 'the secret still reads');

($rc, $out, $err) = $node->psql('old', "SELECT kms_disable_key('$dk'); SELECT kms_enable_key('$dk')");
is($rc, 0, 'a superuser may disable the managed key');
like($err, qr/WARNING:  DisableKey on a key that pg_kms manages/, 'and is warned');

# kms_decrypt_text: the error names no byte of the plaintext, in the client
# message nor in the server log.
my $log_offset = -s $node->logfile;
($rc, $out, $err) = $node->psql('old',
	q{SELECT kms_decrypt_text(kms_encrypt(k, '\x4a4bd7ff4c'::bytea)) FROM (SELECT key_id::text AS k FROM kms.key WHERE description = 'customer key') s});
isnt($rc, 0, 'kms_decrypt_text of invalid UTF-8 fails');
like($err, qr/22021|not valid text in the database encoding/, 'with our own error');
unlike($err, qr/0xd7|0xff/i, 'the client message names no plaintext byte');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/not valid text in the database encoding/, 'the error is logged');
unlike($log, qr/0xd7|0xff/i, 'the server log names no plaintext byte');

$node->stop;
done_testing();
