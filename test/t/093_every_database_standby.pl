# Copyright (c) pg_kms authors
#
# 093_every_database_standby.pl: on a hot standby the workers of every
# database with pg_kms are up and idle (state "standby", no writes); after
# promotion they run in every database: a rotation with rotate_immediately
# completes and each database's standby-time events reach its own
# kms.audit.

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
my $key = master_key_file($keydir, 29, 11);

my $primary = PostgreSQL::Test::Cluster->new('edb_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 8
max_worker_processes = 16
});
$primary->start;

sub poll_for
{
	my ($node, $db, $sql, $secs) = @_;
	my $deadline = time() + ($secs // 30);
	while (time() < $deadline)
	{
		my ($ret, $out) = $node->psql($db, $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

my @dbs = qw(sa sb);
for my $db (@dbs)
{
	$primary->safe_psql('postgres', "CREATE DATABASE $db");
	$primary->safe_psql($db, q{
		CREATE EXTENSION pg_kms;
		CREATE TABLE t AS SELECT kms_create_key() AS k;
		ALTER TABLE t ADD c bytea;
		UPDATE t SET c = kms_encrypt(k, 'on the primary');
		SELECT create_secret('tap/s', 'first');
		CREATE FUNCTION tap_rot(secret_id text, token text, step text) RETURNS void
		LANGUAGE plpgsql AS $$
		DECLARE
			cur text;
		BEGIN
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
	});
	ok(poll_for($primary, $db, q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}),
		"primary: $db served");
}
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('edb_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

for my $db (@dbs)
{
	ok(poll_for($standby, $db, q{SELECT count(*) = 2 AND bool_and(state = 'standby' AND pid IS NOT NULL) FROM kms_worker_status()}),
		"standby: $db has both workers, idle");
	is($standby->safe_psql($db, q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}), 'on the primary',
		"standby: $db decrypts");
}
is($standby->safe_psql('sa', q{SELECT NOT worker_draining FROM kms_audit_stats()}), 't', 'standby: nothing drains');

$standby->promote;
for my $db (@dbs)
{
	ok(poll_for($standby, $db, q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}),
		"promoted: ${db}'s workers run");
	ok(poll_for($standby, $db, q{SELECT count(*) = 1 FROM kms.audit WHERE operation = 'Decrypt' AND database = current_database()
		AND event_time > (SELECT max(event_time) FROM kms.audit WHERE operation = 'CreateSecret')}),
		"promoted: ${db}'s standby-time Decrypt reached its kms.audit");
	my $before = $standby->safe_psql($db, q{SELECT get_secret_value('tap/s')->>'VersionId'});
	$standby->safe_psql($db, q{SELECT rotate_secret('tap/s', 'public.tap_rot(text,text,text)', '{"AutomaticallyAfterDays": 1}', rotate_immediately => true)});
	ok(poll_for($standby, $db, qq{SELECT get_secret_value('tap/s')->>'VersionId' <> '$before'}, 60),
		"promoted: a rotation in $db completes");
	is($standby->safe_psql($db, 'SELECT kms_audit_verify() IS NULL'), 't', "promoted: ${db}'s chain intact");
}

$standby->stop;
$primary->stop;
done_testing();
