# Copyright (c) pg_kms authors
#
# 032_audit_worker_split.pl: the audit drain never waits behind rotation
# work (issue 9, finding 2).  A custom rotation strategy that sleeps for an
# hour blocks the rotation worker; audited calls made meanwhile still reach
# kms.audit within seconds and no caller waits on a full queue.  SIGTERM of
# the rotation worker in that step stops it cleanly (exit code 0) without
# touching the audit worker; a strategy that swallows the cancel is ended
# a few seconds later (exit code 1) and the postmaster starts the worker
# again; SIGTERM of the audit worker leaves the rotation worker alone; a
# fast shutdown with such a step running completes.

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
my $key = master_key_file($keydir, 13, 5);

my $node = PostgreSQL::Test::Cluster->new('split');
$node->init;
# A small queue, and a long wait for room in it, so that a stalled drain
# shows at once as waiting callers.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.audit_queue_size = 64
pg_kms.audit_queue_wait = 1000
});
$node->start;

# Poll $sql until it returns 't', for at most $secs seconds.
sub poll_for
{
	my ($sql, $secs) = @_;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		my ($ret, $out) = $node->psql('postgres', $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# The log from $offset on matches $re within $secs seconds.
sub log_within
{
	my ($re, $offset, $secs) = @_;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		usleep(100_000);
	}
	return 0;
}

sub worker_pid
{
	my ($which) = @_;
	return $node->safe_psql('postgres', "SELECT pid FROM kms_worker_status() WHERE worker = '$which'");
}

# The worker sleeping in the strategy, whatever its name.
my $sleeping = q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type LIKE 'pg_kms%worker' AND wait_event = 'PgSleep'};

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE k AS SELECT kms_create_key() AS k;
	CREATE TABLE tap_mode (stubborn boolean);
	INSERT INTO tap_mode VALUES (false);
	-- a rotation step that never ends; "stubborn" also swallows cancels
	CREATE FUNCTION tap_sleeper(secret_id text, token text, step text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT stubborn FROM public.tap_mode) THEN
			LOOP
				BEGIN
					PERFORM pg_sleep(3600);
				EXCEPTION WHEN query_canceled THEN
					NULL;
				END;
			END LOOP;
		END IF;
		PERFORM pg_sleep(3600);
	END
	$$;
});

ok(poll_for(q{SELECT count(*) = 2 AND bool_and(state = 'running' AND pid IS NOT NULL) FROM kms_worker_status()}, 30),
	'two workers, both running');
is($node->safe_psql('postgres',
		q{SELECT string_agg(backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity WHERE backend_type LIKE 'pg_kms%worker'}),
	'pg_kms audit worker,pg_kms rotation worker', 'both are in pg_stat_activity');

# Block the rotation work.
$node->safe_psql('postgres', q{
	SELECT create_secret('tap/sleepy', 'first value');
	SELECT rotate_secret('tap/sleepy', 'public.tap_sleeper(text,text,text)', '{"AutomaticallyAfterDays": 1}');
});
ok(poll_for($sleeping, 30), 'a rotation step is blocked in pg_sleep');

# Audited calls, 200 in all (the queue holds 64), in rounds of 20: each
# round reaches kms.audit within seconds although rotation is blocked.
my $stalled_round = 0;
for my $round (1 .. 10)
{
	$node->safe_psql('postgres',
		q{DO $$ BEGIN FOR i IN 1 .. 20 LOOP PERFORM kms_describe_key(k) FROM k; END LOOP; END $$});
	my $want = 20 * $round;
	if (!poll_for("SELECT count(*) = $want FROM kms.audit WHERE operation = 'DescribeKey'", 10))
	{
		$stalled_round = $round;
		last;
	}
}
is($stalled_round, 0, 'every round of audited calls reached kms.audit within 10 s while rotation was blocked');
is($node->safe_psql('postgres', q{SELECT producer_waits || ' ' || events_only_logged FROM kms_audit_stats()}),
	'0 0', 'no caller waited on a full queue, nothing was only logged');
ok($node->safe_psql('postgres', $sleeping) eq 't', 'the rotation step is still blocked meanwhile');
is($node->safe_psql('postgres',
		q{SELECT job || ' ' || (job_started IS NOT NULL)::int FROM kms_worker_status() WHERE worker = 'rotation'}),
	'secret rotation 1', 'kms_worker_status() shows the rotation worker in its job');
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain intact');

# SIGTERM of the blocked rotation worker: the step is cancelled, the worker
# stops cleanly; the audit worker is untouched and keeps draining.
my $apid = worker_pid('audit');
my $rpid = worker_pid('rotation');
my $offset = -s $node->logfile;
my $t0 = time();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($rpid)");
ok(poll_for(q{SELECT state = 'stopped' AND pid IS NULL FROM kms_worker_status() WHERE worker = 'rotation'}, 10),
	'SIGTERM stops the rotation worker in a blocked step');
ok(time() - $t0 < 10, 'within seconds');
ok(log_within(qr/pg_kms rotation worker stopping/, $offset, 10), 'it logged its clean stop');
sleep(7);
is($node->safe_psql('postgres', q{SELECT state FROM kms_worker_status() WHERE worker = 'rotation'}), 'stopped',
	'exit code 0: not started again after bgw_restart_time');
is(worker_pid('audit'), $apid, 'the audit worker is the same process');
$node->safe_psql('postgres', q{SELECT kms_describe_key(k) FROM k});
ok(poll_for(q{SELECT count(*) = 201 FROM kms.audit WHERE operation = 'DescribeKey'}, 10),
	'and it still drains');

# A strategy that swallows the cancel: after a restart the step blocks
# again; one SIGTERM is not obeyed, so the worker is ended a few seconds
# later (exit code 1) and the postmaster starts it again.
$node->safe_psql('postgres', q{
	UPDATE tap_mode SET stubborn = true;
	UPDATE kms.secret SET rotation_next_attempt = NULL WHERE name = 'tap/sleepy';
});
$node->restart;
ok(poll_for($sleeping, 30), 'after a restart the step blocks again');
ok(poll_for(q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}, 10),
	'both workers running');
$apid = worker_pid('audit');
$rpid = worker_pid('rotation');
$offset = -s $node->logfile;
$t0 = time();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($rpid)");
ok(log_within(qr/background worker "pg_kms rotation worker" \(PID $rpid\) exited with exit code 1/, $offset, 20),
	'a step that ignores the cancel: the worker is ended anyway (exit code 1)');
my $took = time() - $t0;
ok($took >= 3 && $took < 20, sprintf('after the grace period (%.1f s)', $took));
ok(poll_for("SELECT pid IS NOT NULL AND pid <> $rpid AND state = 'running' FROM kms_worker_status() WHERE worker = 'rotation'", 30),
	'the postmaster started the rotation worker again');
is(worker_pid('audit'), $apid, 'the audit worker is the same process');

# SIGTERM of the audit worker: it stops (exit code 0); the rotation worker
# is untouched; callers then do not wait for a drain that will not come.
$offset = -s $node->logfile;
$rpid = worker_pid('rotation');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($apid)");
ok(poll_for(q{SELECT state = 'stopped' AND pid IS NULL FROM kms_worker_status() WHERE worker = 'audit'}, 10),
	'SIGTERM stops the audit worker');
ok(log_within(qr/pg_kms audit worker stopping/, $offset, 10), 'it logged its clean stop');
is(worker_pid('rotation'), $rpid, 'the rotation worker is the same process');
is($node->safe_psql('postgres', 'SELECT worker_draining FROM kms_audit_stats()'), 'f', 'nobody drains');
$t0 = time();
$node->safe_psql('postgres',
	q{DO $$ BEGIN FOR i IN 1 .. 100 LOOP PERFORM kms_describe_key(k) FROM k; END LOOP; END $$});
ok(time() - $t0 < 10, 'callers do not wait on the full queue');

# A fast shutdown while the stubborn step runs completes.
ok(poll_for($sleeping, 30), 'the restarted rotation worker is in the step again');
$t0 = time();
$node->stop('fast');
ok(time() - $t0 < 30, sprintf('fast shutdown with a blocked step took %.1f s', time() - $t0));

done_testing();
