# Copyright (c) pg_kms authors
#
# 101_tce_dump_restore.pl: encrypted columns through pg_dump and a restore
# into a second cluster with the same master key (issue 13).
#
# * pg_dump writes the ciphertext form by default (COPY ... TO in 'auto'
#   mode), with or without Decrypt on the keys: a dump by a role with no
#   grant works and holds no plaintext.
# * The restore (tables before their keys: the schema "a_app" sorts before
#   "kms", so its data is loaded before kms.key and kms.alias) loads the
#   values without re-encrypting: the same bytes, readable, found by
#   deterministic equality, the same typmod map; a data-only restore by a
#   role without any key grant works too.
# * The plaintext migration mode (PGOPTIONS='-c pg_kms.column_output=
#   plaintext') needs Decrypt; its restore seals with the target column's
#   key.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 43, 11);
my $tmp = PostgreSQL::Test::Utils::tempdir;

my @nodes;
for my $name (qw(tce_src tce_dst))
{
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
});
	$node->start;
	push @nodes, $node;
}
my ($src, $dst) = @nodes;

for my $node (@nodes)
{
	$node->safe_psql('postgres', q{
		CREATE ROLE app_owner LOGIN;
		CREATE ROLE reader LOGIN;
		CREATE ROLE writer LOGIN;
	});
}

$src->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT kms_create_alias('alias/tap/pii', kms_create_key());
	SELECT kms_create_alias('alias/tap/hr', kms_create_key());
	SELECT kms_create_grant('alias/tap/pii', 'reader', ARRAY['Decrypt']);
	SELECT kms_create_grant('alias/tap/hr', 'reader', ARRAY['Decrypt']);
	SELECT kms_rotate_key_on_demand('alias/tap/pii');
	CREATE SCHEMA a_app AUTHORIZATION app_owner;
	CREATE TABLE public.t (id int PRIMARY KEY, r encrypted_text('alias/tap/pii'),
		d encrypted_text('alias/tap/pii', 'deterministic'), b encrypted_bytea('alias/tap/pii'));
	CREATE UNIQUE INDEX t_d ON public.t (d);
	ALTER TABLE public.t OWNER TO app_owner;
	CREATE TABLE a_app.early (id int, h encrypted_text('alias/tap/hr', 'deterministic'));
	ALTER TABLE a_app.early OWNER TO app_owner;
	INSERT INTO public.t VALUES (1, 'dumpMARKr1', 'dumpMARKd1', '\x01'), (2, '', '', '\x'), (3, NULL, NULL, NULL);
	INSERT INTO a_app.early VALUES (1, 'dumpMARKh1');
	GRANT SELECT, INSERT ON public.t, a_app.early TO reader, writer;
	GRANT USAGE ON SCHEMA a_app TO reader, writer;
});
my $fingerprint_sql = q{
	SELECT md5(string_agg(coalesce(encode(kms_column_ciphertext(r), 'hex'), '-') || coalesce(encode(kms_column_ciphertext(d), 'hex'), '-')
		|| coalesce(encode(kms_column_ciphertext(b), 'hex'), '-'), ',' ORDER BY id)) FROM public.t};
my $fp = $src->safe_psql('postgres', $fingerprint_sql);
my $map = $src->safe_psql('postgres', 'SELECT typmod, key_ref, deterministic, key_id, det_version FROM kms.column_key ORDER BY typmod');

# 1. pg_dump by a superuser: ciphertext only
$src->command_ok(['pg_dump', '-d', $src->connstr('postgres'), '-f', "$tmp/full.sql"], 'pg_dump');
my $dump = slurp_file("$tmp/full.sql");
unlike($dump, qr/dumpMARK/, 'the dump holds no plaintext');
like($dump, qr/encrypted_text\('alias\/tap\/pii', 'deterministic'\)/, 'the dump names the column keys');
like($dump, qr/pg_kms:v1:/, 'and holds the ciphertext form');

# 2. pg_dump by a role without any key grant (its own tables only)
$src->command_ok(['pg_dump', '-d', $src->connstr('postgres'), '-U', 'app_owner', '-n', 'public', '-n', 'a_app',
	'--data-only', '-f', "$tmp/owner.sql"], 'pg_dump by a role without Decrypt');
my $owner_dump = slurp_file("$tmp/owner.sql");
unlike($owner_dump, qr/dumpMARK/, 'its dump holds no plaintext');
like($owner_dump, qr/pg_kms:v1:/, 'but the ciphertext form');

# 3. restore into the second cluster (same master key)
$dst->safe_psql('postgres', 'CREATE DATABASE full_restore');
$dst->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $dst->connstr('full_restore'),
	'-f', "$tmp/full.sql"], 'restore');
is($dst->safe_psql('full_restore', $fingerprint_sql), $fp, 'the restored values are the same bytes');
is($dst->safe_psql('full_restore', 'SELECT typmod, key_ref, deterministic, key_id, det_version FROM kms.column_key ORDER BY typmod'),
	$map, 'the same typmod map');
is($dst->safe_psql('full_restore', q{SELECT string_agg(coalesce(r::text, '<null>') || '/' || coalesce(d::text, '<null>'), ',' ORDER BY id) FROM public.t}),
	'dumpMARKr1/dumpMARKd1,/,<null>/<null>', 'and read back');
is($dst->safe_psql('full_restore', q{SELECT id FROM public.t WHERE d = 'dumpMARKd1'}), '1',
	'a deterministic lookup finds the restored value');
is($dst->safe_psql('full_restore', q{SELECT id FROM a_app.early WHERE h = 'dumpMARKh1'}), '1',
	'a table restored before the keys reads and looks up');
is($dst->safe_psql('full_restore', q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attname = 'd'}),
	q{encrypted_text('alias/tap/pii', 'deterministic')}, 'the column type is kept');
# new writes after the restore use the column's key
$dst->safe_psql('full_restore', q{INSERT INTO public.t VALUES (4, 'after', 'after-d', NULL)});
is($dst->safe_psql('full_restore', q{SELECT (kms_column_value_info(r)).key_id = (kms_column_value_info(d)).key_id FROM public.t WHERE id = 4}),
	't', 'a new write after the restore uses the restored key');
my ($ret, $out, $err) = $dst->psql('full_restore', q{INSERT INTO public.t VALUES (5, 'x', 'dumpMARKd1', NULL)});
like($err, qr/duplicate key/, 'the unique index on ciphertext holds across the restore');

# 4. a data-only restore by a role without any key grant: no Decrypt, no Encrypt
$dst->safe_psql('full_restore', 'TRUNCATE public.t, a_app.early');
$dst->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $dst->connstr('full_restore'), '-U', 'app_owner',
	'-f', "$tmp/owner.sql"], 'data-only restore by a role without key grants');
is($dst->safe_psql('full_restore', $fingerprint_sql), $fp, 'again the same bytes');
($ret, $out, $err) = $dst->psql('full_restore', 'SELECT r FROM public.t WHERE id = 1', extra_params => ['-U', 'app_owner']);
like($err, qr/AccessDeniedException/, 'that role still cannot read them');

# 5. plaintext migration mode: needs Decrypt
{
	local $ENV{PGOPTIONS} = '-c pg_kms.column_output=plaintext';
	$src->command_ok(['pg_dump', '-d', $src->connstr('postgres'), '-U', 'reader', '-t', 'public.t', '--data-only',
		'--no-owner', '-f', "$tmp/plain.sql"], 'plaintext dump by a role with Decrypt');
	my ($r, $o, $e);
	$r = $src->run_log(['pg_dump', '-d', $src->connstr('postgres'), '-U', 'app_owner', '-t', 'public.t',
		'--data-only', '-f', "$tmp/refused.sql"]);
	ok(!$r, 'a plaintext dump by a role without Decrypt fails');
}
like(slurp_file("$tmp/plain.sql"), qr/dumpMARKr1/, 'the migration dump holds plaintext');
$dst->safe_psql('full_restore', q{
	TRUNCATE public.t;
	SELECT kms_create_grant('alias/tap/pii', 'writer', ARRAY['Encrypt']);
});
$dst->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $dst->connstr('full_restore'), '-U', 'writer',
	'-f', "$tmp/plain.sql"], 'the plaintext dump restores by a role with Encrypt');
is($dst->safe_psql('full_restore', q{SELECT r FROM public.t WHERE d = 'dumpMARKd1' AND (kms_column_value_info(r)).sealed}),
	'dumpMARKr1', 'and is sealed again');
isnt($dst->safe_psql('full_restore', $fingerprint_sql), $fp, 'with new ciphertext');

$_->stop for @nodes;
done_testing();
