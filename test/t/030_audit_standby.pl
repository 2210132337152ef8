# Copyright (c) pg_kms authors
#
# 030_audit_standby.pl: on a hot standby both workers (audit, rotation) run
# but write nothing (state "standby"); the standby's events are in its
# server log; after promotion both run, and the audit worker writes the
# events still queued to kms.audit.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 5, 9);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE ROLE app LOGIN;
	CREATE TABLE t AS SELECT kms_create_key(description => 'replicated') AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k, 'on the primary');
	GRANT SELECT ON t TO app;
});
ok($primary->poll_query_until('postgres', q{SELECT count(*) > 0 FROM kms.audit WHERE operation = 'CreateKey'}),
	'primary writes its events');
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

ok($standby->poll_query_until('postgres',
		q{SELECT count(*) = 2 AND bool_and(state = 'standby' AND pid IS NOT NULL) FROM kms_worker_status()}),
	'both workers are up on the standby, in state standby');
my $offset = -s $standby->logfile;
$standby->safe_psql('postgres', q{SELECT count(kms_decrypt(c)) FROM t, generate_series(1, 10)});
my ($ret, $out, $err) = $standby->psql('postgres', q{SET ROLE app; SELECT kms_decrypt(c) FROM t});
like($err, qr/AccessDeniedException/, 'denied on the standby');
ok($standby->wait_for_log(qr/pg_kms audit: \{[^\n]*"type":"aggregate"[^\n]*"count":10,[^\n]*"operation":"Decrypt"/, $offset),
	'standby: aggregated decrypts in the log');
ok($standby->wait_for_log(qr/pg_kms audit: \{[^\n]*"db_user":"app"[^\n]*"operation":"Decrypt"[^\n]*"outcome":"AccessDeniedException"/, $offset),
	'standby: denied call in the log');
is($standby->safe_psql('postgres', q{SELECT queue_length >= 2 AND NOT worker_draining FROM kms_audit_stats()}), 't',
	'standby: events wait in the queue, the worker does not drain');

$standby->promote;
ok($standby->poll_query_until('postgres',
		q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}),
	'after promotion both workers run');
ok($standby->poll_query_until('postgres', q{SELECT count(*) = 1 FROM kms.audit WHERE db_user = 'app'
	AND operation = 'Decrypt' AND outcome = 'AccessDeniedException'}),
	'after promotion the standby-time events reach kms.audit');
is($standby->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain continues after promotion');

$standby->stop;
$primary->stop;
done_testing();
