
# Copyright (c) pg_kms authors
#
# 111_tce_rekey_cancel.pl: CALL kms_reencrypt_column cancelled mid-run
# (pg_cancel_backend) keeps the batches committed before the cancel; the
# progress view says "interrupted"; another session resumes while the first
# is still connected; a second concurrent CALL is refused (ConflictException,
# KM014) while one runs.  While a batch is in flight, readers are not
# blocked and a writer of a row outside the batch is not blocked either;
# the rekey runs as the caller: a role without Decrypt on the key, or
# without UPDATE on the table, is refused (42501).  With key => another key,
# the column moves to that key online: new writes use it at once, old values
# stay readable until their batch moves them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 59, 13);

my $node = PostgreSQL::Test::Cluster->new('tce_rekey_cancel');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
});
$node->start;

my $rows = 8000;
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_kms;
SELECT kms_create_alias('alias/pii', kms_create_key());
CREATE TABLE people (id int PRIMARY KEY, ssn encrypted_text('alias/pii'), note text);
INSERT INTO people SELECT g, 'ssn-' || g, 'n' FROM generate_series(1, $rows) g;
CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.id = 5000 AND NEW.note = 'n' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
	RETURN NEW;
END \$\$;
CREATE TRIGGER hold BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION hold();
SELECT kms_rotate_key_on_demand('alias/pii');
CREATE ROLE app LOGIN;
GRANT SELECT, UPDATE ON people TO app;
});

sub versions
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(v || ':' || n, ',' ORDER BY v) FROM (SELECT (kms_column_value_info(ssn)).key_version AS v, count(*) n FROM people GROUP BY 1) s");
}

sub state
{
	return $node->safe_psql('postgres',
		"SELECT state FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");
}

# 1. privileges: app has UPDATE but no grant on the key; a role without UPDATE
my ($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE app; CALL kms_reencrypt_column('people', 'ssn')");
like($err, qr/ERROR:  AccessDeniedException: role "app" is not authorized to perform (Encrypt|Decrypt) on key/,
	'a role with UPDATE on the table but no grant on the key is refused');
$node->safe_psql('postgres', q{CREATE ROLE nobody; SELECT kms_create_grant('alias/pii', 'nobody', ARRAY['Encrypt', 'Decrypt'])});
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE nobody; CALL kms_reencrypt_column('people', 'ssn')");
like($err, qr/ERROR:  AccessDeniedException: role "nobody" is not authorized to rekey column "ssn" of table "people"/,
	'a role with Encrypt and Decrypt but not UPDATE on the table is refused');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kms.column_rekey_progress'), '0', 'no job was recorded by the refused calls');

# 2. a run held at the batch of row 5000, then cancelled
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(4242)');
my $first = $node->background_psql('postgres', on_error_stop => 0);
my $first_pid = $first->query_safe('SELECT pg_backend_pid()');
$first->query_until(qr/started/, "\\echo started\nCALL kms_reencrypt_column('people', 'ssn', 400);\n");
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted AND pid = $first_pid)"),
	'the rekey waits at the batch of row 5000');
is(state(), 'running', 'progress: running');

# readers and a writer of a row outside the batch go on
is($node->safe_psql('postgres', "SELECT count(*) FROM people WHERE ssn IS NOT NULL"), $rows, 'a reader is not blocked');
$node->safe_psql('postgres', "UPDATE people SET note = 'w' WHERE id = 1", timeout => 30);
pass('a writer of a row outside the batch is not blocked');
$node->safe_psql('postgres', "INSERT INTO people VALUES ($rows + 1, 'ssn-' || $rows + 1, 'n')", timeout => 30);
pass('an insert is not blocked');

# a second CALL while the first runs
($ret, $out, $err) = $node->psql('postgres', "CALL kms_reencrypt_column('people', 'ssn', 400)");
like($err, qr/ERROR:  ConflictException: a rekey of column "ssn" of table "people" is running/,
	'a second CALL while one runs: ConflictException');
like($node->safe_psql('postgres', q{SELECT 1}), qr/1/, 'still up');

my $done_before = $node->safe_psql('postgres',
	"SELECT rows_rekeyed FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");
ok($done_before > 0 && $done_before < $rows, "committed batches before the cancel ($done_before rows)");
$node->safe_psql('postgres', "SELECT pg_cancel_backend($first_pid)");
ok($node->poll_query_until('postgres',
	"SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $first_pid"), 'the CALL was cancelled');
like($first->query('SELECT 1'), qr/1/, 'the cancelled session is still connected');
like($first->{stderr}, qr/canceling statement due to user request/, 'the CALL ended with the cancel');
is(state(), 'interrupted', 'progress: interrupted');
is($node->safe_psql('postgres',
	"SELECT rows_rekeyed FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	$done_before, 'the batches committed before the cancel are kept');

# 3. resume from another session (the first is idle, still connected)
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
($ret, $out, $err) = $node->psql('postgres', "CALL kms_reencrypt_column('people', 'ssn', 400)");
is($ret, 0, 'another session resumes') or diag($err);
like($err, qr/NOTICE:  resuming the rekey of column "ssn" of table "people" at block [1-9]/, 'it resumes after the last committed batch');
is(versions(), '2:' . ($rows + 1), 'every value on version 2');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM people WHERE ssn::text = 'ssn-' || id"), $rows + 1, 'every value reads back');
is(state(), 'done', 'progress: done');

# 4. the online move to another key: the column's type modifier changes at
# once (new writes use the new key), the batches move the old values
my $new = $node->safe_psql('postgres', "SELECT kms_create_key()");
$node->safe_psql('postgres', "SELECT kms_create_alias('alias/new', '$new')");
$holder->query_safe('SELECT pg_advisory_lock(4242)');
$first->{stderr} = '';    # the cancel's error of part 2
$first->query_until(qr/started2/, "\\echo started2\nCALL kms_reencrypt_column('people', 'ssn', 400, key => 'alias/new');\n");
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted AND pid = $first_pid)"),
	'the move waits at the batch of row 5000');
is($node->safe_psql('postgres', "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'ssn'"),
	"encrypted_text('alias/new')", 'the column names the new key while its values move');
$node->safe_psql('postgres', "INSERT INTO people VALUES ($rows + 2, 'ssn-' || $rows + 2, 'n')", timeout => 30);
is($node->safe_psql('postgres', "SELECT (kms_column_value_info(ssn)).key_id FROM people WHERE id = $rows + 2"),
	$new, 'a write during the move is sealed with the new key');
is($node->safe_psql('postgres',
	"SELECT count(DISTINCT (kms_column_value_info(ssn)).key_id), count(*) FILTER (WHERE ssn::text = 'ssn-' || id) FROM people"),
	'2|' . ($rows + 2), 'during the move: values under both keys, every one readable');
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
$first->query_until(qr/moved/, "\\echo moved\n");
unlike($first->{stderr}, qr/ERROR/, 'the move completes') or diag($first->{stderr});
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT (kms_column_value_info(ssn)).key_id::text, ',') FROM people"),
	$new, 'every value is under the new key');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM people WHERE ssn::text = 'ssn-' || id"), $rows + 2, 'every value reads back');
is($node->safe_psql('postgres',
	"SELECT key_id, state FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	"$new|done", 'progress: the new key, done');

$first->quit;
$holder->quit;
$node->stop;
done_testing();
