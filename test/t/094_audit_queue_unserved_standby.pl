# Copyright (c) pg_kms authors
#
# 094_audit_queue_unserved_standby.pl: on a hot standby the launcher
# discards nothing from the audit queue (as before: no worker writes
# there, and the queue keeps the latest events until a promotion), even
# when a database that is not served fills it; after promotion the
# launcher discards that database's events as on any primary
# (094_audit_queue_unserved.pl), and the served database's events drain.

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
my $key = master_key_file($keydir, 29, 7);
my $qsize = 64;

my $primary = PostgreSQL::Test::Cluster->new('uprimary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 2
max_worker_processes = 8
pg_kms.audit_queue_size = $qsize
});
$primary->start;
my $both = q{SELECT count(*) = 2 AND bool_and(state = '%s' AND pid IS NOT NULL) FROM kms_worker_status()};
$primary->safe_psql('postgres', 'CREATE DATABASE kms_a');
$primary->safe_psql('kms_a', q{CREATE EXTENSION pg_kms; CREATE TABLE tap_k AS SELECT kms_create_key() AS k});
ok($primary->poll_query_until('kms_a', sprintf($both, 'running')), 'primary: kms_a served');
$primary->safe_psql('postgres', 'CREATE DATABASE kms_b');
$primary->safe_psql('kms_b', q{CREATE EXTENSION pg_kms; CREATE TABLE tap_k AS SELECT kms_create_key() AS k});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('ustandby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
# The standby's launcher finds both databases at once: which one gets the
# two slots depends on the order it lists them in, so the test asks.
my ($served, $unserved);
for (my $i = 0; $i < 600 && !defined $served; $i++)
{
	for my $db ('kms_a', 'kms_b')
	{
		next unless $standby->safe_psql($db, sprintf($both, 'standby')) eq 't';
		$served = $db;
		$unserved = $db eq 'kms_a' ? 'kms_b' : 'kms_a';
		last;
	}
	usleep(100_000) unless defined $served;
}
ok(defined $served, 'standby: one database\'s workers up, in state standby');
$served //= 'kms_a';
$unserved //= 'kms_b';
ok($standby->wait_for_log(qr/pg_kms launcher: database "$unserved" is not served/), "standby: $unserved is not served");

# The unserved database fills the standby's queue; past the launcher's grace for a
# database without a slot (5 s), the events stay queued.
my $offset = -s $standby->logfile;
$standby->safe_psql($unserved, qq{DO \$\$ BEGIN FOR i IN 1 .. 3 * $qsize LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END \$\$});
sleep(7);
is($standby->safe_psql($served, 'SELECT queue_length FROM kms_audit_stats()'), $qsize,
	'standby: the queue stays full (nothing discarded)');
unlike(slurp_file($standby->logfile, $offset), qr/audit events of database "$unserved" are only in the server log/,
	'standby: no WARNING of discarded events');

# After promotion the launcher discards the unserved database's events;
# the served one's drain.
$standby->promote;
ok($standby->poll_query_until($served, sprintf($both, 'running')), "promoted: ${served}'s workers run");
ok($standby->wait_for_log(qr/WARNING:  pg_kms launcher: \d+ audit events of database "$unserved" are only in the server log: its audit worker is not running/, $offset),
	"promoted: the launcher discards ${unserved}'s events, with a WARNING");
$standby->safe_psql($served, q{DO $$ BEGIN FOR i IN 1 .. 20 LOOP PERFORM kms_describe_key(k) FROM tap_k; END LOOP; END $$});
ok($standby->poll_query_until($served, q{SELECT count(*) = 20 FROM kms.audit WHERE operation = 'DescribeKey'}),
	"promoted: ${served}'s events reach its kms.audit");
ok($standby->poll_query_until($served, "SELECT queue_length < $qsize / 2 FROM kms_audit_stats()"),
	'promoted: the queue is below half full');

$standby->stop;
$primary->stop;
done_testing();
