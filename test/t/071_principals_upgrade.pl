# Copyright (c) pg_kms authors
#
# 071_principals_upgrade.pl: principals on a 1.1 catalog and through
# ALTER EXTENSION pg_kms UPDATE (issue 11, findings 3 and 4).
#
# The .so of 1.2 runs against a 1.1 catalog (regrole columns, no names)
# until the update: DROP ROLE of an owner is refused there too, REASSIGN
# OWNED and DROP OWNED carry over, grants list their principals.  A role
# dropped under 1.1 from another database left a dangling oid; the update
# keeps it, unresolved, with the old oid as its name, so it matches no
# later role; resolved principals get their names.  After the update
# everything reads as before.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 41, 3);

my $node = PostgreSQL::Test::Cluster->new('prup');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE kms_admin NOLOGIN;
CREATE ROLE up_owner IN ROLE kms_admin;
CREATE ROLE up_user;
CREATE ROLE up_gone;
CREATE ROLE up_new;
CREATE DATABASE old11;
});
$node->safe_psql('old11', q{
CREATE EXTENSION pg_kms VERSION '1.1';
CREATE TABLE t (blob bytea);
GRANT SELECT ON t TO PUBLIC;
SET ROLE up_owner;
SELECT kms_create_key() AS k \gset
SELECT kms_create_alias('alias/up', :'k');
SELECT kms_create_grant(:'k', 'up_user', ARRAY['Decrypt']);
SELECT kms_create_grant(:'k', 'up_gone', ARRAY['Decrypt']);
SELECT create_secret('up/secret', 'value', kms_key_id => 'alias/up');
SELECT secret_create_grant('up/secret', 'up_user', ARRAY['GetSecretValue']);
RESET ROLE;
INSERT INTO t SELECT kms_encrypt('alias/up', 'data'::bytea);
});
is($node->safe_psql('old11', q{SELECT format_type(atttypid, NULL) FROM pg_attribute
	WHERE attrelid = 'kms.key'::regclass AND attname = 'owner'}), 'regrole', 'a 1.1 catalog: regrole columns');

# The 1.2 .so against the 1.1 catalog.
my ($ret, $out, $err) = $node->psql('old11', 'DROP ROLE up_owner');
like($err, qr/role "up_owner" cannot be dropped because some pg_kms objects depend on it/,
	'1.1 catalog: DROP ROLE of a key owner is refused');
is($node->safe_psql('old11', q{SELECT string_agg(grantee_principal, ',' ORDER BY grantee_principal) FROM kms_list_grants('alias/up')}),
	'up_gone,up_user', '1.1 catalog: grants list their principals by name');
is($node->safe_psql('old11', q{SELECT grantee_principal FROM secret_list_grants('up/secret')}),
	'up_user', '1.1 catalog: secret grants too');
$node->safe_psql('old11', 'REASSIGN OWNED BY up_owner TO up_new');
is($node->safe_psql('old11', q{SELECT owner::text FROM kms.key}), 'up_new',
	'1.1 catalog: REASSIGN OWNED moves the key');
is($node->safe_psql('old11', q{SELECT owner::text FROM kms.secret}), 'up_new',
	'1.1 catalog: and the secret');
is($node->safe_psql('old11', q{SET ROLE up_new; SELECT convert_from(kms_decrypt(blob), 'UTF8') FROM t}), 'data',
	'1.1 catalog: the new owner decrypts');
$node->safe_psql('old11', 'DROP OWNED BY up_owner');
$node->safe_psql('old11', 'DROP ROLE up_owner');
pass('1.1 catalog: DROP ROLE after REASSIGN OWNED and DROP OWNED');

# A grantee dropped from another database under 1.1: a dangling oid.
my $gone_oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_roles WHERE rolname = 'up_gone'});
$node->safe_psql('postgres', 'DROP ROLE up_gone');
is($node->safe_psql('old11', q{SELECT grantee::oid FROM kms.grants g
	WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.grantee)}),
	$gone_oid, '1.1 catalog: the dropped role left a dangling oid (1.1 kept no name)');

$node->safe_psql('old11', 'ALTER EXTENSION pg_kms UPDATE');
is($node->safe_psql('old11', q{SELECT format_type(atttypid, NULL) FROM pg_attribute
	WHERE attrelid = 'kms.key'::regclass AND attname = 'owner'}), 'oid', 'updated: oid columns');
is($node->safe_psql('old11', q{SELECT owner_name FROM kms.key}), 'up_new', 'updated: the owner has its name');
is($node->safe_psql('old11', q{SELECT string_agg(grantee_name || ':' || (grantee IS NULL), ',' ORDER BY grantee_name) FROM kms.grants}),
	"$gone_oid:true,up_user:false", 'updated: the dangling grantee is unresolved, its old oid as its name');
is($node->safe_psql('old11', q{SELECT string_agg(role_column || ' ' || role_name, ',') FROM kms_unresolved_principals()}),
	"grantee $gone_oid", 'updated: listed as unresolved');
is($node->safe_psql('old11', q{SET ROLE up_user; SELECT convert_from(kms_decrypt(blob), 'UTF8') FROM t}), 'data',
	'updated: a grantee decrypts');
is($node->safe_psql('old11', q{SET ROLE up_user; SELECT get_secret('up/secret')}), 'value',
	'updated: a secret grantee reads');
is($node->safe_psql('old11', q{SELECT owner FROM kms.keys}), 'up_new', 'updated: kms.keys shows the owner');
$node->safe_psql('old11', "SELECT kms_drop_owned('$gone_oid')");
is($node->safe_psql('old11', 'SELECT count(*) FROM kms_unresolved_principals()'), '0',
	'updated: kms_drop_owned removes the unresolved grant');

$node->stop;
done_testing();
