# Copyright (c) pg_kms authors
#
# 031_audit_aggregate_interval.pl: data-plane calls by one role on one key
# with one operation in one statement add up across executions of that
# statement for pg_kms.audit_aggregate_interval, so a client issuing one
# kms_decrypt per statement produces one event per interval, not one per
# call; different statements stay apart; counts pending when the session
# ends are written then; with the interval at 0 every execution is an event.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 17, 9);

my $node = PostgreSQL::Test::Cluster->new('agg');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n"
	  . "pg_kms.worker_naptime = 1\npg_kms.audit_aggregate_interval = '1h'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key(description => 'agg') AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k, 'x');
});
my $k = $node->safe_psql('postgres', 'SELECT k FROM t');

# "rows total" of the Decrypt aggregates on the key
my $events_query = qq{
	SELECT count(*) || ' ' || coalesce(sum(event_count), 0) FROM kms.audit
	 WHERE operation = 'Decrypt' AND resource_id = '$k' AND event_type = 'aggregate'};

# wait until the trail shows what is expected (a session's exit flush and the
# worker's drain are asynchronous), then report what it shows
sub decrypt_events
{
	my ($expected) = @_;
	$node->poll_query_until('postgres', $events_query, $expected);
	return $node->safe_psql('postgres', $events_query);
}

my $session = $node->background_psql('postgres');
$session->query_safe('SELECT kms_decrypt(c) FROM t') for 1 .. 200;
$session->query_safe('SELECT kms_decrypt(c) AS other_statement FROM t') for 1 .. 50;
sleep(2);	# two worker rounds
is($node->safe_psql('postgres', $events_query), '0 0', 'within the interval nothing is written yet');
$session->quit;
is(decrypt_events('2 250'), '2 250',
	'at session end: one event per statement text, with all 250 calls counted');

# interval 0: one event per statement execution
$session = $node->background_psql('postgres');
$session->query_safe('SET pg_kms.audit_aggregate_interval = 0');
$session->query_safe('SELECT kms_decrypt(c) FROM t') for 1 .. 20;
is(decrypt_events('22 270'), '22 270', 'interval 0: each execution is its own event');
$session->quit;

# a rolled-back transaction's calls are still counted
$session = $node->background_psql('postgres');
$session->query_safe('BEGIN');
$session->query_safe('SELECT kms_decrypt(c) FROM t') for 1 .. 5;
$session->query_safe('ROLLBACK');
$session->quit;
is(decrypt_events('23 275'), '23 275', 'calls inside a rolled-back transaction are counted');

$node->stop;
done_testing();
