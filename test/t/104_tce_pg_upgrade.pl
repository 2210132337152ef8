# Copyright (c) pg_kms authors
#
# 104_tce_pg_upgrade.pl: encrypted columns through pg_upgrade (issue 13:
# "the alias->typmod mapping is dumped so restore and pg_upgrade keep it"),
# with kms_pg_upgrade_prepare() / kms_pg_upgrade_finish() around it (the
# pinned custom rotation functions: pg_upgrade refuses reg* columns).
# pg_upgrade restores the schema with pg_dump --binary-upgrade (the column
# types with their type modifiers) and then moves the data files, those of
# kms.column_key and the keys included.  After it the values read, a
# deterministic equality still finds its row by the unique index, new
# writes seal with the same keys, and the type modifier map is the old one.
# Same major version on both sides (the machine has one); the same master
# key file.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 44, 12);
my $conf = qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
};

my $old = PostgreSQL::Test::Cluster->new('tce_upg_old');
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT kms_create_alias('alias/tap/pii', kms_create_key());
	CREATE TABLE customers (
		id    bigint PRIMARY KEY,
		email encrypted_text('alias/tap/pii', 'deterministic'),
		ssn   encrypted_text('alias/tap/pii'),
		scan  encrypted_bytea('alias/tap/pii'));
	CREATE UNIQUE INDEX ON customers (email);
	INSERT INTO customers
		SELECT g, 'user' || g || '@example.com', 'ssn-' || g, int4send(g) FROM generate_series(1, 200) g;
});
# a custom rotation strategy, pinned by OID (kms.secret.rotation_function)
$old->safe_psql('postgres', q{
	CREATE FUNCTION public.tap_rot(secret_id text, token text, step text) RETURNS void
		LANGUAGE sql AS 'SELECT NULL';
	SELECT create_secret('tap/rot', 'v1');
	SELECT rotate_secret('tap/rot', 'public.tap_rot(text,text,text)', '{"AutomaticallyAfterDays": 30}',
						 rotate_immediately => false);
});
my $map_before = $old->safe_psql('postgres', q{SELECT string_agg(typmod || ':' || key_ref || ':' || deterministic, ',' ORDER BY typmod) FROM kms.column_key});
my $cols_before = $old->safe_psql('postgres', q{SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attnum > 0});
my $bytes_before = $old->safe_psql('postgres', q{SELECT md5(string_agg(kms_column_ciphertext(ssn)::text, ',' ORDER BY id)) FROM customers});
# pg_upgrade refuses reg* columns: the pinned rotation functions become text
$old->safe_psql('postgres', q{SELECT kms_pg_upgrade_prepare()});
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('tce_upg_new');
$new->init;
$new->append_conf('postgresql.conf', $conf);

my $bindir = $new->config_data('--bindir');
my $workdir = PostgreSQL::Test::Utils::tempdir;
chdir $workdir;
command_ok(
	[
		"$bindir/pg_upgrade", '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port
	],
	'pg_upgrade of a cluster with encrypted columns');

$new->start;
$new->safe_psql('postgres', q{SELECT kms_pg_upgrade_finish()});
is($new->safe_psql('postgres', q{SELECT pg_typeof(rotation_function)::text || '|' || (rotation_function = 'public.tap_rot(text,text,text)'::regprocedure) FROM kms.secret WHERE name = 'tap/rot'}),
	'regprocedure|true', 'the custom rotation function is pinned again, to the function of the new cluster');
is($new->safe_psql('postgres', q{SELECT string_agg(typmod || ':' || key_ref || ':' || deterministic, ',' ORDER BY typmod) FROM kms.column_key}),
	$map_before, 'the type modifier map is the old one');
is($new->safe_psql('postgres', q{SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attnum > 0}),
	$cols_before, 'the columns keep their keys');
is($new->safe_psql('postgres', q{SELECT md5(string_agg(kms_column_ciphertext(ssn)::text, ',' ORDER BY id)) FROM customers}),
	$bytes_before, 'the stored values are the same bytes');
is($new->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE ssn::text = 'ssn-' || id AND email::text = 'user' || id || '@example.com' AND scan::bytea = int4send(id::int)) FROM customers}),
	'200', 'every value reads');
is($new->safe_psql('postgres', q{SET enable_seqscan = off; SELECT id FROM customers WHERE email = 'user42@example.com'}),
	'42', 'a deterministic lookup finds its row');
like($new->safe_psql('postgres', q{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM customers WHERE email = 'user42@example.com'}),
	qr/Index/, '... by the unique index');
$new->safe_psql('postgres', q{INSERT INTO customers VALUES (201, 'new@example.com', 'ssn-new', '\x01')});
is($new->safe_psql('postgres', q{SELECT ssn::text || '|' || ((kms_column_value_info(ssn)).key_id::text = (SELECT target_key_id FROM kms_list_aliases() WHERE alias_name = 'alias/tap/pii')) FROM customers WHERE email = 'new@example.com'}),
	'ssn-new|true', 'a new write seals with the same key');
my ($ret, $out, $err) = $new->psql('postgres', q{INSERT INTO customers VALUES (202, 'user42@example.com', NULL, NULL)});
like($err, qr/duplicate key value violates unique constraint/, 'the unique index still refuses a duplicate plaintext');

$new->stop;
done_testing();
