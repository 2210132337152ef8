# Copyright (c) pg_kms authors
#
# 094_audit_queue_unserved.pl: one database's audit events never hold up
# another's (follow-up to issue 12).  The shared audit queue frees space in
# order, so the events of a database that has pg_kms but no draining audit
# worker used to stay queued forever and, once the queue was full, every
# other database's events went to the server log only.  Now the launcher
# discards those events (they are in the server log) when the queue passes
# half full, counts them in events_only_logged and says so in a WARNING.
#
# Case 1: pg_kms.max_workers = 2, so only one database (kms_a) is served;
# kms_b has pg_kms but is not served.  kms_b fills the queue, then every
# audited call of kms_a reaches kms_a's kms.audit_log.
# Case 2 (after a restart with room for both): kms_b's audit worker is
# stopped with pg_terminate_backend (it stays stopped); the same holds.

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
my $key = master_key_file($keydir, 23, 5);

# 64 events is the smallest queue pg_kms.audit_queue_size allows.
my $qsize = 64;
my $node = PostgreSQL::Test::Cluster->new('auditunserved');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 2
max_worker_processes = 8
pg_kms.audit_queue_size = $qsize
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

sub poll_log
{
	my ($re, $offset, $secs) = @_;
	my $deadline = time() + ($secs // 30);
	while (time() < $deadline)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		usleep(100_000);
	}
	return 0;
}

# The audit log lines of one database ("pg_kms audit: {json}").
sub log_lines
{
	my ($db, $offset) = @_;
	return grep { /pg_kms audit: \{.*"database":"$db"/ }
	  split /\n/, slurp_file($node->logfile, $offset // 0);
}

my $both_running = q{SELECT count(*) = 2 AND bool_and(state = 'running' AND pid IS NOT NULL) FROM kms_worker_status()};

# kms_a takes both worker slots.
$node->safe_psql('postgres', 'CREATE DATABASE kms_a');
$node->safe_psql('kms_a', q{CREATE EXTENSION pg_kms; CREATE TABLE tap_k AS SELECT kms_create_key() AS k});
ok(poll_for('kms_a', $both_running), 'kms_a: served (audit and rotation workers running)');
ok(poll_for('kms_a', q{SELECT count(*) = 1 FROM kms.audit WHERE operation = 'CreateKey'}), 'kms_a: its events drain');

# kms_b has pg_kms too, but no slot is left for it.
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE kms_b');
$node->safe_psql('kms_b', q{CREATE EXTENSION pg_kms; CREATE TABLE tap_k AS SELECT kms_create_key() AS k});
ok(poll_log(qr/pg_kms launcher: database "kms_b" is not served/, $offset), 'kms_b: not served (the launcher says so)');
is($node->safe_psql('kms_b', q{SELECT count(*) FROM kms_worker_status() WHERE pid IS NOT NULL}), '0',
	'kms_b: no worker runs');

# kms_b fills the queue: three times its size in audited calls.
my $nb = 3 * $qsize;
$node->safe_psql('kms_b', qq{DO \$\$ BEGIN FOR i IN 1 .. $nb LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
ok(poll_log(qr/WARNING:  pg_kms launcher: \d+ audit events of database "kms_b" are only in the server log: its audit worker is not running/, $offset, 30),
	'the launcher discards kms_b\'s events from the queue, with a WARNING');
ok(poll_for('kms_a', "SELECT queue_length < $qsize / 2 FROM kms_audit_stats()", 10),
	'the queue is below half full again');

# Every audited call of kms_a reaches kms_a's kms.audit_log, though kms_b
# keeps calling (its events fill the queue again meanwhile).
my $na = 40;
for my $round (1 .. 4)
{
	$node->safe_psql('kms_a', qq{DO \$\$ BEGIN FOR i IN 1 .. 10 LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
	$node->safe_psql('kms_b', qq{DO \$\$ BEGIN FOR i IN 1 .. 20 LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
	ok(poll_for('kms_a', "SELECT queue_length < $qsize / 2 FROM kms_audit_stats()", 10),
		"round $round: the queue is below half full again");
}
ok(poll_for('kms_a', "SELECT count(*) = $na FROM kms.audit WHERE operation = 'DescribeKey'"),
	"kms_a: all $na DescribeKey events are in its kms.audit");
my @a_lines = log_lines('kms_a');
is(scalar(grep { /"queued":false/ } @a_lines), 0, 'kms_a: none of its events was only logged');
is($node->safe_psql('kms_a', 'SELECT count(*) FROM kms.audit'), scalar(@a_lines),
	'kms_a: every event it logged is a row of its kms.audit');
is($node->safe_psql('kms_a', 'SELECT kms_audit_verify() IS NULL'), 't', 'kms_a: chain intact');

# events_only_logged accounts for kms_b's events: each is either still
# queued (kms_a's worker drained the rest) or counted.
my @b_lines = log_lines('kms_b');
ok(scalar(@b_lines) >= $nb + 80, 'kms_b: its calls are in the server log');
is($node->safe_psql('kms_a', q{SELECT events_only_logged + queue_length FROM kms_audit_stats()}),
	scalar(@b_lines), 'events_only_logged (and what is still queued) accounts for every kms_b event');
is($node->safe_psql('kms_a', q{SELECT events_written FROM kms_audit_stats()}),
	$node->safe_psql('kms_a', 'SELECT count(*) FROM kms.audit'), 'events_written: kms_a\'s rows');

# ---- Case 2: kms_b served, then its audit worker stopped (stays stopped).
$node->append_conf('postgresql.conf', "pg_kms.max_workers = 4\n");
$node->restart;
ok(poll_for($_, $both_running), "$_: served after the restart") for qw(kms_a kms_b);
my $pid = $node->safe_psql('kms_b', q{SELECT pid FROM kms_worker_status() WHERE worker = 'audit'});
$node->safe_psql('kms_b', "SELECT pg_terminate_backend($pid)");
ok(poll_for('kms_b', q{SELECT state = 'stopped' FROM kms_worker_status() WHERE worker = 'audit'}),
	'kms_b: audit worker stopped');
$offset = -s $node->logfile;
my $a_rows = $node->safe_psql('kms_a', q{SELECT count(*) FROM kms.audit WHERE operation = 'DescribeKey'});
$node->safe_psql('kms_b', qq{DO \$\$ BEGIN FOR i IN 1 .. $nb LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
ok(poll_log(qr/WARNING:  pg_kms launcher: \d+ audit events of database "kms_b" are only in the server log: its audit worker is not running/, $offset, 30),
	'stopped worker: the launcher discards kms_b\'s events, with a WARNING');
ok(poll_for('kms_a', "SELECT queue_length < $qsize / 2 FROM kms_audit_stats()", 10),
	'stopped worker: the queue is below half full again');
for my $round (1 .. 4)
{
	$node->safe_psql('kms_a', qq{DO \$\$ BEGIN FOR i IN 1 .. 10 LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
	$node->safe_psql('kms_b', qq{DO \$\$ BEGIN FOR i IN 1 .. 20 LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
	ok(poll_for('kms_a', "SELECT queue_length < $qsize / 2 FROM kms_audit_stats()", 10),
		"stopped worker, round $round: the queue is below half full again");
}
ok(poll_for('kms_a', sprintf("SELECT count(*) = %d FROM kms.audit WHERE operation = 'DescribeKey'", $a_rows + $na)),
	"stopped worker: all $na new DescribeKey events of kms_a are in its kms.audit");
is(scalar(grep { /"queued":false/ } log_lines('kms_a', $offset)), 0,
	'stopped worker: none of kms_a\'s events was only logged');
is($node->safe_psql('kms_a', 'SELECT kms_audit_verify() IS NULL'), 't', 'kms_a: chain intact');
is($node->safe_psql('kms_b', q{SELECT state FROM kms_worker_status() WHERE worker = 'audit'}), 'stopped',
	'kms_b: its audit worker is still stopped');

$node->stop;
done_testing();
