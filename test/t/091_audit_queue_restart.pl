# Copyright (c) pg_kms authors
#
# 091_audit_queue_restart.pl: nothing queued for kms.audit is lost by a
# clean shutdown or restart (issue 11, finding 9).  Events queued while
# their database's audit worker cannot drain them (it was stopped with
# SIGTERM and stays stopped) are kept in a file at shutdown and reach that
# database's kms.audit_log after the restart, in order and chained; the
# file holds no plaintext; events of two databases each go to their own
# table.  An immediate stop keeps them too; after a crash (shared memory
# reinitialized) no file is written and the server goes on normally.

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
my $key = master_key_file($keydir, 19, 3);

my $node = PostgreSQL::Test::Cluster->new('auditq');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 8
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

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

my $secret_text = 'tap-plaintext-7f3e9a1c-never-on-disk';
for my $db (qw(qa qb))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION pg_kms;
		CREATE TABLE tap_k AS SELECT kms_create_key() AS k;
		SELECT create_secret('tap/q', '$secret_text');
	});
	ok(poll_for($db, q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}),
		"$db: workers running");
	ok(poll_for($db, q{SELECT count(*) > 0 FROM kms.audit WHERE operation = 'CreateKey'}), "$db: drained");
}

# Stop both audit workers (SIGTERM: they stay stopped), then audited calls.
for my $db (qw(qa qb))
{
	my $pid = $node->safe_psql($db, q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
	$node->safe_psql($db, "SELECT pg_terminate_backend($pid)");
	ok(poll_for($db, q{SELECT state = 'stopped' FROM kms_worker_status() WHERE worker = 'audit'}),
		"$db: audit worker stopped");
}
my %n = (qa => 7, qb => 5);
for my $db (qw(qa qb))
{
	$node->safe_psql($db, qq{DO \$\$ BEGIN FOR i IN 1 .. $n{$db} LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$;
		SELECT get_secret_value('tap/q') IS NOT NULL});
}
is($node->safe_psql('qa', q{SELECT queue_length FROM kms_audit_stats()}), $n{qa} + $n{qb} + 2,
	'the events wait in the queue');
is($node->safe_psql('qa', q{SELECT count(*) FROM kms.audit WHERE operation = 'DescribeKey'}), '0',
	'none is in kms.audit yet');

# A clean stop keeps them in a file, without plaintext.
$node->stop('fast');
my $file = $node->data_dir . '/pg_stat/pg_kms_audit_queue.stat';
ok(-f $file, 'the queue is kept in a file at shutdown');
my $bytes = slurp_file($file);
unlike($bytes, qr/\Q$secret_text\E/, 'the file holds no secret value');
like($bytes, qr/DescribeKey/, 'it holds the events');
is((stat($file))[2] & 0777, 0600, 'mode 0600');
ok($node->log_contains(qr/pg_kms audit: kept \d+ queued audit events for the next start/), 'the shutdown says so');

$node->start;
ok(!-f $file, 'the file is consumed at start');
for my $db (qw(qa qb))
{
	ok(poll_for($db, "SELECT count(*) = $n{$db} FROM kms.audit WHERE operation = 'DescribeKey'"),
		"$db: its $n{$db} DescribeKey events reached its kms.audit after the restart");
	ok(poll_for($db, q{SELECT count(*) = 1 FROM kms.audit WHERE operation = 'GetSecretValue'}),
		"$db: and its GetSecretValue");
	is($node->safe_psql($db, q{SELECT count(*) FROM kms.audit WHERE database <> current_database()}), '0',
		"$db: nothing of the other database");
	is($node->safe_psql($db, 'SELECT kms_audit_verify() IS NULL'), 't', "$db: chain intact");
}
is($node->safe_psql('qa', q{SELECT queue_length FROM kms_audit_stats()}), '0', 'queue empty');

# pg_ctl restart with events queued (worker stopped again): same.
my $pid = $node->safe_psql('qa', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
$node->safe_psql('qa', "SELECT pg_terminate_backend($pid)");
ok(poll_for('qa', q{SELECT state = 'stopped' FROM kms_worker_status() WHERE worker = 'audit'}), 'stopped again');
$node->safe_psql('qa', q{SELECT kms_describe_key(k) FROM tap_k});
$node->restart;
ok(poll_for('qa', "SELECT count(*) = $n{qa} + 1 FROM kms.audit WHERE operation = 'DescribeKey'"),
	'pg_ctl restart: the queued event is in kms.audit');

# An immediate stop keeps the queue too (a record is in the ring only once
# fully copied, under the lock).
$pid = $node->safe_psql('qa', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
$node->safe_psql('qa', "SELECT pg_terminate_backend($pid)");
ok(poll_for('qa', q{SELECT state = 'stopped' FROM kms_worker_status() WHERE worker = 'audit'}), 'stopped before an immediate stop');
$node->safe_psql('qa', q{SELECT kms_describe_key(k) FROM tap_k});
$node->stop('immediate');
$node->start;
ok(poll_for('qa', "SELECT count(*) = $n{qa} + 2 FROM kms.audit WHERE operation = 'DescribeKey'"),
	'immediate stop: the queued event is in kms.audit');

# A crash (a worker killed: shared memory is reinitialized): no file is
# written, the server comes back, later events drain, the chain holds.
ok(poll_for('qa', q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'workers running');
$pid = $node->safe_psql('qa', q{SELECT pid FROM kms_worker_status() WHERE worker = 'rotation'});
my $offset = -s $node->logfile;
ok($pid =~ /^\d+$/, 'the rotation worker\'s pid') or BAIL_OUT('no rotation worker');
kill 'KILL', $pid;
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset), 'crash restart');
ok(poll_for('qa', q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'workers back');
ok(!-f $file, 'a crash writes no file');
unlike(slurp_file($node->logfile, $offset), qr/pg_kms audit: kept/, 'and says nothing of keeping events');
$node->safe_psql('qa', q{SELECT kms_describe_key(k) FROM tap_k});
ok(poll_for('qa', "SELECT count(*) = $n{qa} + 3 FROM kms.audit WHERE operation = 'DescribeKey'"),
	'after the crash, new events drain');
is($node->safe_psql('qa', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain intact');

$node->stop;
done_testing();
