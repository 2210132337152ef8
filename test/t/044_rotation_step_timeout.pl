# Copyright (c) pg_kms authors
#
# 044_rotation_step_timeout.pl (issue 9, finding 2): a custom strategy that
# sleeps cannot wedge the worker.  With pg_kms.rotation_step_timeout = 2s a
# step doing pg_sleep(3600) is cancelled within seconds, recorded as a
# failure (LastRotationError) with back-off, and another secret's rotation
# still completes meanwhile.  (Before: the worker slept for an hour and no
# rotation, key rotation or deletion window ran.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 59, 13);

my $node = PostgreSQL::Test::Cluster->new('rot_timeout');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.rotation_step_timeout = '2s'
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE FUNCTION slow_rotator(secret_id text, token text, step text) RETURNS void
	LANGUAGE sql AS $$ SELECT pg_catalog.pg_sleep(3600) $$;
	CREATE FUNCTION fast_rotator(secret_id text, token text, step text) RETURNS void
	LANGUAGE plpgsql AS $$
	DECLARE
		cur text;
	BEGIN
		IF step = 'createSecret' THEN	-- gives the AWSPENDING version its value; idempotent
			PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'], client_request_token => token);
		ELSIF step = 'finishSecret' THEN
			SELECT version_id INTO cur FROM public.list_secret_version_ids(secret_id) v WHERE 'AWSCURRENT' = ANY (v.version_stages);
			IF cur <> token THEN
				PERFORM public.update_secret_version_stage(secret_id, 'AWSCURRENT', remove_from_version_id => cur, move_to_version_id => token);
			END IF;
		END IF;
	END
	$$;
	-- secret ids are random: start the slow one first so the worker meets it first
	SELECT create_secret('timeout/a-slow', 'slow value');
	SELECT create_secret('timeout/b-fast', 'fast value');
});
my $t0 = time;
$node->safe_psql('postgres', q{SELECT rotate_secret('timeout/a-slow', 'slow_rotator', '{"AutomaticallyAfterDays": 1}')});
ok($node->poll_query_until('postgres', q{
	SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep')}),
	'the worker is asleep in the slow strategy');
$node->safe_psql('postgres', q{SELECT rotate_secret('timeout/b-fast', 'fast_rotator', '{"AutomaticallyAfterDays": 1}')});

ok($node->poll_query_until('postgres', q{
	SELECT rotation_last_error LIKE '%rotation_step_timeout%' FROM kms.secret WHERE name = 'timeout/a-slow'}),
	'the sleeping step was cancelled and recorded');
my $elapsed = time - $t0;
ok($elapsed < 30, sprintf('... within seconds (%.1f s), not an hour', $elapsed));
is($node->safe_psql('postgres', q{
	SELECT describe_secret('timeout/a-slow') ->> 'LastRotationError'}),
	'createSecret: the step was cancelled after 2 s (pg_kms.rotation_step_timeout)',
	'LastRotationError names the setting');
is($node->safe_psql('postgres', q{
	SELECT rotation_step || ' ' || (rotation_attempts >= 1) FROM kms.secret WHERE name = 'timeout/a-slow'}),
	'createSecret true', 'the slow rotation stays at its step, with back-off');

ok($node->poll_query_until('postgres', q{
	SELECT rotation_token IS NULL AND last_rotated_date IS NOT NULL FROM kms.secret WHERE name = 'timeout/b-fast'}),
	'another secret\'s rotation completed meanwhile');
is($node->safe_psql('postgres', q{SELECT get_secret('timeout/b-fast')}), 'rotated', '... and its new value is AWSCURRENT');
is($node->safe_psql('postgres', q{SELECT last_error IS NULL OR last_error NOT LIKE '%cancel%' FROM kms_worker_status() WHERE worker = 'rotation'}), 't',
	'the worker itself did not fail');

$node->safe_psql('postgres', q{SELECT cancel_rotate_secret('timeout/a-slow')});
$node->stop;
done_testing();
