# Copyright (c) pg_kms authors
#
# 090_every_database.pl: every database where pg_kms is installed is served
# (issue 12).  Three databases: in each a rotate_secret with
# rotate_immediately completes (AWSCURRENT moves, the new password logs
# in), audit events reach that database's kms.audit (and no other's), and
# kms_rotation_next_due() is a real time; a key scheduled for deletion with
# a shortened window is destroyed in a database that is not "postgres";
# kms_worker_status() shows the caller's database, kms_worker_status_all()
# every database (superusers only).  CREATE DATABASE ... TEMPLATE of a
# served database works and the copy is served; DROP and re-CREATE of the
# extension and of a database are followed by the launcher; two databases
# rotating at once, one dropped mid-rotation.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use Time::HiRes qw(time usleep);

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 17, 9);

my $node = PostgreSQL::Test::Cluster->new('everydb');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 12
max_worker_processes = 20
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
});
scram_only_hba($node);
$node->start;
my $port = $node->port;

sub poll_for
{
	my ($db, $sql, $secs) = @_;
	my $deadline = time() + ($secs // 30);
	while (time() < $deadline)
	{
		my ($ret, $out) = $node->psql($db, $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

my $both_running = q{SELECT count(*) = 2 AND bool_and(state = 'running' AND pid IS NOT NULL) FROM kms_worker_status()};
my @dbs = qw(db_one db_two db_three);

# Three databases with pg_kms; each gets its own two workers within seconds.
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my $t0 = time();
	$node->safe_psql($db, 'CREATE EXTENSION pg_kms');
	ok(poll_for($db, $both_running, 20), "$db: audit and rotation workers running");
	ok(time() - $t0 < 10, sprintf("$db: picked up %.1f s after CREATE EXTENSION", time() - $t0));
}
is($node->safe_psql('db_one', q{SELECT count(*) FROM kms_worker_status_all() WHERE database IS NULL AND worker = 'launcher' AND state = 'running'}),
	'1', 'kms_worker_status_all(): the launcher');
is($node->safe_psql('db_one', q{SELECT string_agg(database || ':' || worker, ',' ORDER BY database, worker)
	FROM kms_worker_status_all() WHERE state = 'running' AND database LIKE 'db\_%'}),
	'db_one:audit,db_one:rotation,db_three:audit,db_three:rotation,db_two:audit,db_two:rotation',
	'kms_worker_status_all(): two workers per database');
ok(poll_for('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type LIKE 'pg_kms%worker' AND datname = 'postgres'}),
	'no worker stays in a database without pg_kms');
$node->safe_psql('db_two', 'CREATE ROLE tap_admin LOGIN IN ROLE kms_admin');
my ($ret, $out, $err) = $node->psql('db_two', 'SET ROLE tap_admin; SELECT * FROM kms_worker_status_all()');
like($err, qr/permission denied for function kms_worker_status_all/, 'kms_worker_status_all() is for superusers (not granted)');
$node->safe_psql('db_two', 'GRANT EXECUTE ON FUNCTION kms_worker_status_all() TO tap_admin');
($ret, $out, $err) = $node->psql('db_two', 'SET ROLE tap_admin; SELECT * FROM kms_worker_status_all()');
like($err, qr/AccessDeniedException: only superusers/, 'and refused in C even when granted');
is($node->safe_psql('db_two', q{SET ROLE tap_admin; SELECT count(*) FROM kms_worker_status() WHERE state = 'running'}),
	'2', 'kms_worker_status(): the caller\'s database, for kms_admin');

# A rotation with rotate_immediately in each database: AWSCURRENT moves and
# the new password logs in.
my %before;
for my $db (@dbs)
{
	$node->safe_psql($db, qq{
		CREATE ROLE ${db}_app LOGIN PASSWORD '${db}-initial-Pw1';
		SELECT create_secret('tap/$db', '{"engine":"postgres","host":"127.0.0.1","port":$port,"username":"${db}_app","password":"${db}-initial-Pw1","dbname":"$db"}');
	});
	$before{$db} = $node->safe_psql($db, qq{SELECT get_secret_value('tap/$db')->>'VersionId'});
}
for my $db (@dbs)
{
	$node->safe_psql($db, qq{SELECT rotate_secret('tap/$db', 'postgres_single_user', '{"AutomaticallyAfterDays": 30}', rotate_immediately => true)});
}
for my $db (@dbs)
{
	ok(poll_for($db, qq{SELECT get_secret_value('tap/$db')->>'VersionId' <> '$before{$db}'}, 60),
		"$db: AWSCURRENT moved");
	my $pw = $node->safe_psql($db, qq{SELECT (get_secret_value('tap/$db')->>'SecretString')::jsonb->>'password'});
	isnt($pw, "${db}-initial-Pw1", "$db: a new password");
	local $ENV{PGPASSWORD} = $pw;
	my ($r, $o, $e) = $node->psql($db, 'SELECT current_user',
		connstr => "host=127.0.0.1 port=$port dbname=$db user=${db}_app");
	is($o, "${db}_app", "$db: the rotated password logs in") or diag($e);
	isnt($node->safe_psql($db, q{SELECT kms_rotation_next_due()}), '-infinity', "$db: kms_rotation_next_due() is a real time");
}

# Audit events reach each database's own kms.audit.
for my $db (@dbs)
{
	$node->safe_psql($db, q{CREATE TABLE tap_k AS SELECT kms_create_key() AS k; SELECT kms_describe_key(k) FROM tap_k});
}
for my $db (@dbs)
{
	ok(poll_for($db, q{SELECT count(*) = 1 FROM kms.audit a, tap_k WHERE a.operation = 'DescribeKey' AND a.resource_id = tap_k.k}),
		"$db: its DescribeKey is in its kms.audit");
	is($node->safe_psql($db, q{SELECT count(*) FROM kms.audit WHERE database IS DISTINCT FROM current_database()}),
		'0', "$db: and no event of another database");
	ok(poll_for($db, q{SELECT count(*) >= 1 FROM kms.audit WHERE operation = 'RotateSecret' AND db_user IS NOT NULL}),
		"$db: the rotation's events too");
	is($node->safe_psql($db, 'SELECT kms_audit_verify() IS NULL'), 't', "$db: chain intact");
}

# A key scheduled for deletion, window shortened, is destroyed by the
# worker of db_three.
$node->safe_psql('db_three', q{
	CREATE TABLE tap_del AS SELECT kms_create_key() AS k;
	SELECT kms_schedule_key_deletion(k, 7) FROM tap_del;
	UPDATE kms.key SET deletion_date = now() - interval '1 second' WHERE key_id::text = (SELECT k FROM tap_del);
	SELECT rotate_secret('tap/db_three', rotate_immediately => false);
});
ok(poll_for('db_three', q{SELECT key_state = 'Deleted' FROM kms.key WHERE key_id::text = (SELECT k FROM tap_del)}, 30),
	'db_three: the key past its deletion window is Deleted');
is($node->safe_psql('db_three', q{SELECT count(*) FROM kms.key_version WHERE key_id::text = (SELECT k FROM tap_del) AND material IS NOT NULL}),
	'0', 'db_three: its material is destroyed');

# CREATE DATABASE ... TEMPLATE of a served database works while its workers
# run; the copy is served, and the template's workers come back.
my $old_pids = $node->safe_psql('db_one', q{SELECT string_agg(pid::text, ',' ORDER BY worker) FROM kms_worker_status()});
($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE db_copy TEMPLATE db_one');
is($ret, 0, 'CREATE DATABASE db_copy TEMPLATE db_one works') or diag($err);
ok(poll_for('db_copy', $both_running, 20), 'db_copy is served');
ok(poll_for('db_one', $both_running, 20), 'db_one is served again');
isnt($node->safe_psql('db_one', q{SELECT string_agg(pid::text, ',' ORDER BY worker) FROM kms_worker_status()}),
	$old_pids, 'by new workers');
is($node->safe_psql('db_copy', q{SELECT count(*) FROM kms.secret WHERE name = 'tap/db_one'}), '1', 'the copy has the secret');

# DROP DATABASE of a served database works; its workers are gone.
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db_copy');
is($ret, 0, 'DROP DATABASE of a served database works') or diag($err);
ok(poll_for('db_one', q{SELECT count(*) = 0 FROM kms_worker_status_all() WHERE database = 'db_copy'}, 20),
	'its workers are gone from kms_worker_status_all()');

# Re-create a database of that name with pg_kms: served again.
$node->safe_psql('postgres', 'CREATE DATABASE db_copy');
$node->safe_psql('db_copy', 'CREATE EXTENSION pg_kms');
ok(poll_for('db_copy', $both_running, 20), 'a re-created database is served');

# DROP EXTENSION ends the database's workers; CREATE EXTENSION brings them back.
$node->safe_psql('db_copy', 'DROP EXTENSION pg_kms');
ok(poll_for('db_one', q{SELECT count(*) = 0 FROM kms_worker_status_all() WHERE database = 'db_copy' AND pid IS NOT NULL}, 20),
	'DROP EXTENSION ends the workers');
my $t0 = time();
$node->safe_psql('db_copy', 'CREATE EXTENSION pg_kms');
ok(poll_for('db_copy', $both_running, 20), 'CREATE EXTENSION again: workers again');
ok(time() - $t0 < 10, sprintf('within %.1f s', time() - $t0));

# Two databases rotating at once; one is dropped mid-rotation.
for my $db (qw(db_one db_two))
{
	$node->safe_psql($db, q{
		CREATE FUNCTION tap_slow(secret_id text, token text, step text) RETURNS void
		LANGUAGE plpgsql AS $$
		DECLARE
			cur text;
		BEGIN
			PERFORM pg_sleep(2);
			IF step = 'createSecret' THEN
				-- RotateSecret made the AWSPENDING version; this gives it its value (idempotent)
				PERFORM public.put_secret_value(secret_id, 'rotated-' || token,
												version_stages => ARRAY['AWSPENDING'], client_request_token => token);
			ELSIF step = 'finishSecret' THEN
				SELECT version_id INTO cur FROM public.list_secret_version_ids(secret_id) v WHERE 'AWSCURRENT' = ANY (v.version_stages);
				IF cur <> token THEN
					PERFORM public.update_secret_version_stage(secret_id, 'AWSCURRENT', remove_from_version_id => cur, move_to_version_id => token);
				END IF;
			END IF;
		END
		$$;
		SELECT create_secret('tap/slow', 'first');
	});
}
$node->safe_psql('db_one', q{SELECT rotate_secret('tap/slow', 'public.tap_slow(text,text,text)', '{"AutomaticallyAfterDays": 1}')});
$node->safe_psql('db_two', q{SELECT rotate_secret('tap/slow', 'public.tap_slow(text,text,text)', '{"AutomaticallyAfterDays": 1}')});
ok(poll_for('db_one', q{SELECT count(*) = 2 FROM kms_worker_status_all() WHERE job = 'secret rotation' AND database IN ('db_one', 'db_two')}, 20),
	'both databases are rotating');
$t0 = time();
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db_two');
is($ret, 0, 'DROP DATABASE db_two mid-rotation works') or diag($err);
ok(time() - $t0 < 15, sprintf('in %.1f s', time() - $t0));
ok(poll_for('db_one', q{SELECT get_secret_value('tap/slow')->>'SecretString' LIKE 'rotated-%'}, 60),
	'db_one\'s rotation completes');
ok(poll_for('db_one', q{SELECT count(*) = 0 FROM kms_worker_status_all() WHERE database = 'db_two'}, 20),
	'db_two\'s workers are gone');
is($node->safe_psql('db_one', q{SELECT count(*) FROM kms.secret_stage s JOIN kms.secret k USING (secret_id) WHERE k.name = 'tap/slow' AND stage = 'AWSCURRENT'}),
	'1', 'db_one: exactly one AWSCURRENT');

unlike(slurp_file($node->logfile), qr/PANIC|server process .* was terminated by signal/, 'no crash');
$node->stop;
done_testing();
