# Copyright (c) pg_kms authors
#
# 036_audit_batch_drain.pl: the audit worker writes its events in batches
# (issue 16), and the chain stays whole whatever happens to a batch.  With
# pg_kms.audit_secret_reads = 'each', one statement queues 20,000 events;
# a fast restart right after it keeps what is still queued (the queue
# file) and every event reaches kms.audit_log exactly once.  Then 50,000
# more, and a kill -9 of the audit worker while it drains them: its batch
# in progress rolls back and shared memory is reinitialized (what was
# still queued is in the server log only), and events after the crash are
# chained on.  Throughout: ids without a gap, no event twice,
# kms_audit_verify() holds.

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
my $key = master_key_file($keydir, 36, 7);

my $node = PostgreSQL::Test::Cluster->new('auditbatch');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.audit_queue_size = 65536
pg_kms.audit_secret_reads = 'each'
restart_after_crash = on
});
$node->start;

sub poll_for
{
	my ($sql, $secs) = @_;
	my $deadline = time() + ($secs // 60);
	while (time() < $deadline)
	{
		my ($ret, $out) = $node->psql('postgres', $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# The chain: ids from the first to the last without a gap, each row's
# prev_hash the row_hash of the row before, every hash right.
sub chain_whole
{
	my ($what) = @_;
	is($node->safe_psql('postgres', q{SELECT count(*) = max(id) - min(id) + 1 FROM kms.audit_log}),
		't', "$what: ids without a gap");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit_log a JOIN kms.audit_log b
		ON b.id = a.id + 1 WHERE b.prev_hash IS DISTINCT FROM a.row_hash}), '0', "$what: links hold");
	is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', "$what: kms_audit_verify()");
}

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT create_secret('tap/batch', 'tap-batch-value');
});
ok(poll_for(q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'workers running');
is($node->safe_psql('postgres', 'SHOW pg_kms.audit_secret_reads'), 'each', "'each' from postgresql.conf");

# 20,000 events in one statement, then a fast restart at once.
my $n1 = 20000;
$node->safe_psql('postgres', qq{SET application_name = 'tap_restart';
	SELECT count(get_secret('tap/batch')) FROM generate_series(1, $n1)});
my $offset = -s $node->logfile;
$node->restart;
ok(poll_for(qq{SELECT count(*) = $n1 FROM kms.audit WHERE application_name = 'tap_restart'}),
	"restart: all $n1 events in kms.audit");
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT backend_pid, event_time
	FROM kms.audit_log WHERE application_name = 'tap_restart' GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'restart: no event twice');
is($node->safe_psql('postgres', q{SELECT bool_and(event_type = 'call' AND event_count = 1 AND outcome = 'success')
	FROM kms.audit_log WHERE application_name = 'tap_restart'}), 't', 'restart: one call event per read');
chain_whole('after a restart');

# 50,000 more; kill -9 the audit worker while it drains them.
ok(poll_for(q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'workers back');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
ok($pid =~ /^\d+$/, "the audit worker's pid") or BAIL_OUT('no audit worker');
my $n2 = 50000;
$node->safe_psql('postgres', qq{SET application_name = 'tap_crash';
	SELECT count(get_secret('tap/batch')) FROM generate_series(1, $n2)});
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit_log WHERE application_name = 'tap_crash'});
note("written before the kill: $before of $n2");
$offset = -s $node->logfile;
kill 'KILL', $pid;
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset), 'crash restart');
ok(poll_for(q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'workers back after the crash');
$node->safe_psql('postgres', q{SET application_name = 'tap_after';
	SELECT count(get_secret('tap/batch')) FROM generate_series(1, 1000)});
ok(poll_for(q{SELECT count(*) = 1000 FROM kms.audit WHERE application_name = 'tap_after'}),
	'after the crash, new events drain');
my $crash = $node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit_log WHERE application_name = 'tap_crash'});
ok($crash >= $before && $crash <= $n2, "crash: $crash of $n2 written (at least the $before before the kill)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT backend_pid, event_time
	FROM kms.audit_log WHERE application_name IN ('tap_crash', 'tap_after') GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'crash: no event twice');
is($node->safe_psql('postgres', q{SELECT min(id) > (SELECT max(id) FROM kms.audit_log WHERE application_name = 'tap_crash')
	FROM kms.audit_log WHERE application_name = 'tap_after'}), 't', 'the events after the crash come after');
chain_whole('after a crash');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit_log a WHERE a::text LIKE '%tap-batch-value%'}),
	'0', 'never a value in the trail');

$node->stop;
done_testing();
