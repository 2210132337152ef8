# Copyright (c) pg_kms authors
#
# 050_upgrade.pl: ALTER EXTENSION pg_kms UPDATE from the previous version.
#
# A database made with each released version (1.0, 1.1, 1.2: keys, aliases,
# grants, secrets, ciphertext) is updated to the current version: everything stays readable, and the
# updated schema is the one a fresh install of the current version makes
# (the two pg_dump --schema-only outputs are compared line by line, so an
# upgrade script that forgets a change fails here).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 29, 7);

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.database = 'fresh'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;

my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'pg_kms'");
my @versions = split /\n/, $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = 'pg_kms' ORDER BY version");
isnt($current, '1.0', "the current version ($current) is newer than 1.0");

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_kms');
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');

# Each released version is updated to the current one.
foreach my $from ('1.0', '1.1', '1.2')
{
	(my $db = "old$from") =~ s/\.//;
	ok((grep { $_ eq $from } @versions), "version $from is still installable");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION pg_kms VERSION '$from'");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'"),
		$from, "$db starts at $from");

	# Data made under the old version.
	$node->safe_psql($db, q{
CREATE TABLE t (id int, blob bytea);
SELECT kms_create_key(description => 'before upgrade') AS k \gset
SELECT kms_create_alias('alias/upgrade', :'k');
INSERT INTO t SELECT g, kms_encrypt('alias/upgrade', convert_to('row ' || g, 'UTF8')) FROM generate_series(1, 10) g;
SELECT kms_create_grant(:'k', 'app', ARRAY['Decrypt']);
SELECT create_secret('upgrade/secret', '{"username":"app","password":"s3cret"}');
});
	my $ct = $node->safe_psql($db, "SELECT encode(blob, 'base64') FROM t WHERE id = 1");

	# Between installing the new library and ALTER EXTENSION UPDATE, the
	# new library serves the old catalog (docs/operations.md says it does).
	is($node->safe_psql($db,
			"SELECT string_agg(convert_from(kms_decrypt(blob), 'UTF8'), ',' ORDER BY id) FROM t"),
		join(',', map { "row $_" } 1 .. 10), "the new library decrypts in a $from catalog");
	is($node->safe_psql($db, "SELECT get_secret('upgrade/secret')::jsonb ->> 'password'"),
		's3cret', "the new library reads a secret in a $from catalog");
	if ($from eq '1.2')
	{
		# 1.3 adds the index behind name filters; without it the filter still works
		is($node->safe_psql($db, q{SELECT count(*) FROM list_secrets(jsonb_build_array(
			jsonb_build_object('Key', 'name', 'Values', jsonb_build_array('upgrade/secret'))))}),
			'1', 'list_secrets with a name filter works in a 1.2 catalog');
		is($node->safe_psql($db, q{SET pg_kms.audit_secret_reads = 'each';
			SELECT count(get_secret('upgrade/secret')) FROM generate_series(1, 3)}),
			'3', 'secret reads with audit_secret_reads = each in a 1.2 catalog');
	}

	$node->safe_psql($db, 'ALTER EXTENSION pg_kms UPDATE');
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'"),
		$current, "ALTER EXTENSION pg_kms UPDATE reaches $current from $from");

	# Readable after the update, in a new session (no cache from before).
	is($node->safe_psql($db,
			"SELECT string_agg(convert_from(kms_decrypt(blob), 'UTF8'), ',' ORDER BY id) FROM t"),
		join(',', map { "row $_" } 1 .. 10), "ciphertext made under $from decrypts after the update");
	is($node->safe_psql($db, "SELECT get_secret('upgrade/secret')::jsonb ->> 'password'"),
		's3cret', "secret made under $from reads after the update");
	is($node->safe_psql($db,
			"SET ROLE app; SELECT convert_from(kms_decrypt(decode('$ct', 'base64')), 'UTF8')"),
		'row 1', "a grant made under $from still works after the update");
	is($node->safe_psql($db,
			"SELECT convert_from(kms_decrypt(kms_encrypt('alias/upgrade', 'new')), 'UTF8')"),
		'new', "the key encrypts after the update from $from");
	$node->safe_psql($db, 'DROP TABLE t');
}

# The updated schema is the fresh install's.  pg_dump leaves extension
# members out, so the catalogs are described here: every column, function,
# view, index, constraint, trigger, policy and privilege in the schemas the
# extension uses, one line each, compared between the two databases.
my $describe = q{
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname IN ('kms', 'public'))
SELECT line FROM (
  SELECT format('column %s.%s %s %s default %s %s', c.relnamespace::regnamespace, c.relname, a.attname,
                format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid),
                CASE WHEN a.attnotnull THEN 'not null' ELSE '' END) AS line, c.relname::text AS k, a.attnum AS n
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'v', 'p', 'S')
  UNION ALL
  SELECT format('relation %s.%s kind %s acl %s rls %s', c.relnamespace::regnamespace, c.relname, c.relkind,
                c.relacl, c.relrowsecurity), c.relname, 0
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'v', 'p', 'S')
  UNION ALL
  SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid), c.relname, 0
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind = 'v'
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text, 0
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid)), co.conname, 0
    FROM pg_constraint co WHERE co.connamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('trigger %s %s', tg.tgrelid::regclass, pg_get_triggerdef(tg.oid)), tg.tgname, 0
    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
   WHERE c.relnamespace IN (SELECT oid FROM ns) AND NOT tg.tgisinternal
  UNION ALL
  SELECT format('policy %s %s %s %s %s', po.polrelid::regclass, po.polname, po.polcmd,
                pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid)), po.polname, 0
    FROM pg_policy po
  UNION ALL
  SELECT format('function %s acl %s %s', p.oid::regprocedure, p.proacl, pg_get_functiondef(p.oid)), p.proname, 0
    FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns) AND p.prokind IN ('f', 'p')
  UNION ALL
  SELECT format('type %s', t.oid::regtype), t.typname, 0
    FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns) AND t.typtype <> 'c' AND t.typelem = 0
) x ORDER BY k, line COLLATE "C", n
};
foreach my $from ('1.0', '1.1', '1.2')
{
	(my $db = "old$from") =~ s/\.//;
	my $old_schema = $node->safe_psql($db, $describe);
	my $fresh_schema = $node->safe_psql('fresh', $describe);
	my @o = split /\n/, $old_schema;
	my @f = split /\n/, $fresh_schema;
	my %in_f = map { $_ => 1 } @f;
	my %in_o = map { $_ => 1 } @o;
	my @only_old = grep { !$in_f{$_} } @o;
	my @only_fresh = grep { !$in_o{$_} } @f;
	ok(@o > 100, "the schema description covers the extension (" . scalar(@o) . ' lines)');
	is(scalar(@only_old) + scalar(@only_fresh), 0,
		"a database updated from $from has the same schema as a fresh install")
	  or diag("only after update:\n  " . join("\n  ", grep { defined } @only_old[0 .. 30])
		  . "\nonly in a fresh install:\n  " . join("\n  ", grep { defined } @only_fresh[0 .. 30]));
	# Column order matters to INSERTs without a column list, and to dumps.
	my $cols = q{SELECT string_agg(c.relname || '.' || a.attname, ',' ORDER BY c.relname, a.attnum)
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relnamespace = 'kms'::regnamespace AND c.relkind IN ('r', 'v')};
	is($node->safe_psql($db, $cols), $node->safe_psql('fresh', $cols),
		"columns are in the same order (from $from)");

	# Extension members: the same set of objects belongs to the extension.
	my $members = q{SELECT pg_describe_object(classid, objid, 0) FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_kms') ORDER BY 1};
	is($node->safe_psql($db, $members), $node->safe_psql('fresh', $members),
		"the same objects are members of the extension (from $from)");
}

$node->stop;
done_testing();
