# Copyright (c) pg_kms authors
#
# 070_restore_without_roles.pl: a dump restores into another cluster that
# lacks its roles (issue 11, finding 3).
#
# Cluster A has roles that own keys and secrets and hold grants.  Its
# database is dumped (custom format and plain format) and restored into a
# second cluster B, same master key file, where none of those roles exist:
# with pg_restore --no-owner, and the plain dump through psql.  Every key,
# version, alias, secret (all versions, staging labels) and grant comes
# back; the principals naming missing roles are unresolved (listed by
# kms_unresolved_principals(), matching nobody, the superuser still reads
# everything); a role created afterwards gets its access: at once when
# created in the restored database (the utility hook), after
# kms_resolve_principals() when created from another database.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 37, 11);
my $dumpdir = PostgreSQL::Test::Utils::tempdir;

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'pg_kms'\n"
		  . "pg_kms.master_key_file = '$keyfile'\n"
		  . "pg_kms.rotation_jobs = off\n");
	$node->start;
	return $node;
}

my $a = new_node('source');
my $b = new_node('target');

# ---------------------------------------------------------------- source
$a->safe_psql('postgres', q{
CREATE ROLE kms_admin NOLOGIN;
CREATE ROLE pr_alice IN ROLE kms_admin;
CREATE ROLE pr_bob;
CREATE ROLE pr_carol;
CREATE DATABASE src;
});
$a->safe_psql('src', q{
CREATE EXTENSION pg_kms;
CREATE TABLE t (id int, blob bytea);
GRANT SELECT ON t TO PUBLIC;
SET ROLE pr_alice;
SELECT kms_create_key(description => 'restored key') AS k \gset
SELECT kms_create_alias('alias/restored', :'k');
SELECT kms_rotate_key_on_demand(:'k');
SELECT kms_create_grant(:'k', 'pr_bob', ARRAY['Decrypt'], retiring_principal => 'pr_carol');
SELECT create_secret('restored/secret', 'v1', kms_key_id => 'alias/restored');
SELECT put_secret_value('restored/secret', 'v2');
SELECT put_secret_value('restored/secret', 'v3', version_stages => ARRAY['MYLABEL']);
SELECT secret_create_grant('restored/secret', 'pr_carol', ARRAY['GetSecretValue', 'DescribeSecret']);
SELECT kms_create_grant(:'k', 'pr_carol', ARRAY['Decrypt']);	-- the secret's key
RESET ROLE;
SET ROLE pr_alice;
CREATE TEMP TABLE ct AS SELECT g, kms_encrypt('alias/restored', convert_to('row ' || g, 'UTF8')) AS c
  FROM generate_series(1, 5) g;
RESET ROLE;
INSERT INTO t SELECT g, c FROM ct;
});

# What must come back, the same in every restore.
my $inventory = q{
SELECT concat_ws(' | ',
  (SELECT string_agg(key_id || ':' || key_state || ':' || owner_name || ':' || current_version, ',' ORDER BY key_id) FROM kms.key),
  (SELECT string_agg(key_id || ':' || version || ':' || (material IS NOT NULL), ',' ORDER BY key_id, version) FROM kms.key_version),
  (SELECT string_agg(alias_name || ':' || key_id, ',' ORDER BY alias_name) FROM kms.alias),
  (SELECT string_agg(grant_id || ':' || grantee_name || ':' || coalesce(retiring_principal_name, '-') || ':' || issuing_role_name || ':' || operations::text, ',' ORDER BY grant_id) FROM kms.grants),
  (SELECT string_agg(name || ':' || owner_name || ':' || kms_key_id, ',' ORDER BY name) FROM kms.secret),
  (SELECT string_agg(version_id || ':' || encode(sha256(ciphertext), 'hex'), ',' ORDER BY version_id) FROM kms.secret_version),
  (SELECT string_agg(stage || ':' || version_id, ',' ORDER BY stage) FROM kms.secret_stage),
  (SELECT string_agg(grantee_name || ':' || issuing_role_name || ':' || operations::text, ',' ORDER BY grant_id) FROM kms.secret_grant))
};
my $want = $a->safe_psql('src', $inventory);
like($want, qr/AWSCURRENT:.*AWSPREVIOUS:.*MYLABEL:/, 'source: a secret with three labelled versions');

my $rows = join(',', map { "row $_" } 1 .. 5);
my $read_rows = q{SELECT string_agg(convert_from(kms_decrypt(blob), 'UTF8'), ',' ORDER BY id) FROM t};
my $stages = q{SELECT string_agg(get_secret('restored/secret', version_stage => s), ',' ORDER BY s)
	FROM unnest(ARRAY['AWSCURRENT', 'AWSPREVIOUS', 'MYLABEL']) s};

command_ok([ 'pg_dump', '-Fc', '-d', $a->connstr('src'), '-f', "$dumpdir/src.dump" ],
	'pg_dump -Fc of the source database');
command_ok([ 'pg_dump', '-Fp', '--no-owner', '-d', $a->connstr('src'), '-f', "$dumpdir/src.sql" ],
	'pg_dump -Fp of the source database');

# ---------------------------------------------------------------- target
is($b->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pr\_%'}), '0',
	'the target cluster has none of the roles');

# 1. pg_restore --no-owner into a database of the other cluster.
$b->safe_psql('postgres', 'CREATE DATABASE r1');
command_ok([ 'pg_restore', '--no-owner', '--exit-on-error', '-d', $b->connstr('r1'), "$dumpdir/src.dump" ],
	'pg_restore --no-owner into a cluster without the roles succeeds');
is($b->safe_psql('r1', $inventory), $want,
	'every key, version, alias, grant, secret, secret version, label and secret grant is back');
is($b->safe_psql('r1', $read_rows), $rows, 'the superuser decrypts every restored row');
is($b->safe_psql('r1', $stages), 'v2,v1,v3', 'every labelled secret version reads');
is($b->safe_psql('r1', q{SELECT string_agg(object_type || ' ' || role_column || ' ' || role_name, ','
	ORDER BY object_type || ' ' || role_column || ' ' || role_name COLLATE "C")
	FROM kms_unresolved_principals()}),
	join(',', 'key grant grantee pr_bob', 'key grant grantee pr_carol',
		'key grant issuing_role pr_alice', 'key grant issuing_role pr_alice',
		'key grant retiring_principal pr_carol', 'key owner pr_alice',
		'secret grant grantee pr_carol', 'secret grant issuing_role pr_alice', 'secret owner pr_alice'),
	'the principals naming missing roles are listed as unresolved');
is($b->safe_psql('r1', q{SELECT count(*) FROM kms.key WHERE owner IS NOT NULL}), '0',
	'no restored oid is kept: the owner is unresolved, not another cluster\'s oid');
is($b->safe_psql('r1', q{SELECT string_agg(grantee_principal, ',' ORDER BY grantee_principal) FROM kms_list_grants('alias/restored')}),
	'pr_bob,pr_carol',
	'grants show their principal by name');

# A role of another name gets nothing (unresolved principals match nobody).
$b->safe_psql('r1', 'CREATE ROLE pr_mallory');
my ($ret, $out, $err) = $b->psql('r1', "SET ROLE pr_mallory; $read_rows");
like($err, qr/AccessDeniedException/, 'an unrelated role is refused');

# 2. The role created afterwards, in the restored database: access at once.
$b->safe_psql('r1', 'CREATE ROLE pr_bob');
is($b->safe_psql('r1', "SET ROLE pr_bob; $read_rows"), $rows,
	'pr_bob, created in the restored database, decrypts through its restored grant');

# 3. Roles created from another database: resolved by kms_resolve_principals().
# r1's workers are stopped first (a stopped worker stays stopped): the audit
# worker resolves principals too, and must not do it between the two checks.
# (They may still be starting: terminate whatever runs until both are stopped.)
ok($b->poll_query_until('r1', q{
	SELECT (SELECT count(pg_terminate_backend(pid)) FROM kms_worker_status() WHERE pid IS NOT NULL) >= 0
	   AND (SELECT count(*) FROM kms_worker_status() WHERE state = 'stopped') = 2}),
	'r1\'s workers are stopped');
$b->safe_psql('postgres', 'CREATE ROLE pr_alice; CREATE ROLE pr_carol');
($ret, $out, $err) = $b->psql('r1', "SET ROLE pr_carol; SELECT get_secret('restored/secret')");
like($err, qr/AccessDeniedException/, 'before resolution, pr_carol (created elsewhere) has no access');
$b->safe_psql('r1', 'SELECT kms_resolve_principals()');
is($b->safe_psql('r1', q{SET ROLE pr_carol; SELECT get_secret('restored/secret')}), 'v2',
	'after kms_resolve_principals(), pr_carol reads through its restored secret grant');
is($b->safe_psql('r1', "SET ROLE pr_alice; $read_rows"), $rows, 'the restored owner decrypts');
is($b->safe_psql('r1', "SET ROLE pr_alice; $stages"), 'v2,v1,v3', 'the restored owner reads every version');
is($b->safe_psql('r1', 'SELECT count(*) FROM kms_unresolved_principals()'), '0', 'nothing left unresolved');
is($b->safe_psql('r1', q{SELECT owner FROM kms.keys}), 'pr_alice', 'kms.keys shows the owner');

# 4. The plain dump through psql, into a second database of the target.
$b->safe_psql('postgres', 'CREATE DATABASE r2');
$b->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $b->connstr('r2'), '-f', "$dumpdir/src.sql" ],
	'the plain dump restores through psql');
is($b->safe_psql('r2', $inventory), $want, 'plain format: everything is back');
is($b->safe_psql('r2', "SET ROLE pr_bob; $read_rows"), $rows,
	'plain format: roles that exist now are resolved at once by name');
is($b->safe_psql('r2', q{SELECT count(*) FROM kms_unresolved_principals()}), '0',
	'plain format: nothing unresolved once the roles exist');

# 5. The role restored under a name whose oid the source used for another
# role never matches: oids in kms.* are the target's own.
is($b->safe_psql('r2', q{SELECT bool_and(owner = 'pr_alice'::regrole) FROM kms.key}), 't',
	'restored owners are the target cluster\'s roles');

# 6. A role dropped from another database (where pg_kms does not refuse
# it): its oid here names no role, so the principal is unresolved, its
# name kept; a new role of that name (a new oid) gets the access only
# through resolution by name, never through the old oid.
$b->safe_psql('r1', 'REASSIGN OWNED BY pr_bob TO pr_alice');	# nothing of pg_kms's: bob holds a grant only
$b->safe_psql('postgres', 'DROP ROLE pr_bob');
is($b->safe_psql('r1', q{SELECT string_agg(role_column || ' ' || role_name, ',') FROM kms_unresolved_principals()}),
	'grantee pr_bob', 'a role dropped from another database: its grant is unresolved, the name kept');
$b->safe_psql('postgres', 'CREATE ROLE pr_bob');
is($b->safe_psql('r1', q{SELECT count(*) FROM kms_unresolved_principals()}), '1',
	'a new role of that name is not matched by the old oid');
$b->safe_psql('r1', 'SELECT kms_resolve_principals()');
is($b->safe_psql('r1', "SET ROLE pr_bob; $read_rows"), $rows,
	'after kms_resolve_principals(), the role of that name gets the grant');
is($b->safe_psql('r1', q{SELECT bool_and(grantee = 'pr_bob'::regrole) FROM kms.grants WHERE grantee_name = 'pr_bob'}), 't',
	'the grant holds the new role\'s oid');

$a->stop;
$b->stop;
done_testing();
