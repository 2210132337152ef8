# Copyright (c) pg_kms authors
#
# 030_audit_worker.pl: the pg_kms audit worker restarts after an error and
# then drains what was queued; SIGHUP reloads pg_kms.worker_naptime; a full
# queue makes callers wait a bounded time and then log only, counted in
# kms_audit_stats(); SIGTERM stops the worker cleanly (exit code 0).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use Time::HiRes qw(time);

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 11, 1);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.audit_queue_size = 64
pg_kms.audit_queue_wait = 50
log_min_messages = debug1
});
$node->start;

# Not installed yet: the launcher's probe of "postgres" says so and exits
# (pg_kms 1.2: no worker waits in a database without the extension).
ok($node->wait_for_log(qr/pg_kms audit worker: pg_kms is not installed in database "postgres"; exiting/),
	'the worker probing "postgres" finds no extension');
$node->safe_psql('postgres', q{CREATE EXTENSION pg_kms; CREATE TABLE k AS SELECT kms_create_key() AS k});
ok($node->poll_query_until('postgres', q{SELECT state = 'running' FROM kms_worker_status() WHERE worker = 'audit'}), 'worker running');
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM kms.audit WHERE operation = 'CreateKey'}),
	'worker drains into kms.audit');

# An error in the worker: it records it, exits 1, is restarted, drains.
$node->safe_psql('postgres', q{ALTER TABLE kms.audit_log ADD CONSTRAINT tap_block CHECK (operation <> 'DescribeKey') NOT VALID});
$node->safe_psql('postgres', q{SELECT kms_describe_key(k) FROM k});
ok($node->poll_query_until('postgres', q{SELECT last_error LIKE 'audit drain: %tap_block%' FROM kms_worker_status() WHERE worker = 'audit'}),
	'the worker error is shown by kms_worker_status()');
ok($node->wait_for_log(qr/background worker "pg_kms audit worker" \(PID \d+\) exited with exit code 1/),
	'worker exits with code 1 on error');
my $old_pid = $node->safe_psql('postgres', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
$node->safe_psql('postgres', q{ALTER TABLE kms.audit_log DROP CONSTRAINT tap_block});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM kms.audit WHERE operation = 'DescribeKey'}),
	'restarted worker writes the event that made it fail, once');
ok($node->poll_query_until('postgres', q{SELECT state = 'running' FROM kms_worker_status() WHERE worker = 'audit'}), 'running again');
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain intact across the restart');

# SIGHUP: a new naptime takes effect.
$node->append_conf('postgresql.conf', "pg_kms.worker_naptime = 7\n");
$node->reload;
ok($node->poll_query_until('postgres',
		q{SELECT bool_and(next_wake - last_wake > interval '5 s') FROM kms_worker_status()}),
	'SIGHUP reloads pg_kms.worker_naptime (both workers)');
$node->append_conf('postgresql.conf', "pg_kms.worker_naptime = 1\n");
$node->reload;
ok($node->poll_query_until('postgres',
		q{SELECT bool_and(next_wake - last_wake < interval '2 s') FROM kms_worker_status()}),
	'and back');

# A full queue: block the worker behind a lock, flood the queue; callers
# wait about pg_kms.audit_queue_wait, then the event goes to the log only.
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE kms.audit_log IN ACCESS EXCLUSIVE MODE;');
my $t0 = time();
$node->safe_psql('postgres', q{DO $$ BEGIN FOR i IN 1 .. 100 LOOP PERFORM kms_describe_key(k) FROM k; END LOOP; END $$});
my $elapsed = time() - $t0;
my $only = $node->safe_psql('postgres', 'SELECT events_only_logged FROM kms_audit_stats()');
ok($only > 0, "events only logged when the queue is full: $only");
ok($elapsed < 30, "callers waited a bounded time (${elapsed}s for 100 calls)");
my $log = slurp_file($node->logfile);
my $notq = () = $log =~ /pg_kms audit: \{[^\n]*"operation":"DescribeKey"[^\n]*"queued":false\}/g;
is($notq, $only, 'each of them has a log line with "queued":false');
$locker->query_safe('COMMIT');
$locker->quit;
ok($node->poll_query_until('postgres', q{SELECT queue_length = 0 FROM kms_audit_stats()}), 'queue drained after the lock');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit WHERE operation = 'DescribeKey'}) + $only,
	101, 'every DescribeKey is either in kms.audit or only in the log');

# SIGTERM: clean stop, exit code 0, not restarted.
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', q{SELECT state = 'stopped' AND pid IS NULL FROM kms_worker_status() WHERE worker = 'audit'}),
	'SIGTERM: worker stopped');
ok($node->wait_for_log(qr/pg_kms audit worker stopping/), 'worker logged its clean stop');
ok($node->wait_for_log(qr/background worker "pg_kms audit worker" \(PID $pid\) exited with exit code 0/),
	'exit code 0');

$node->stop;
done_testing();
