# Copyright (c) pg_kms authors
#
# 092_audit_dump_restore.pl: kms.audit_log is in dumps (issue 11, finding
# 9).  pg_dump of a database with an audit trail, pg_restore into a fresh
# database of the same cluster: every row is back, kms_audit_verify()
# passes there, and the restored database's own worker goes on chaining
# new events after the restored rows.

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
my $key = master_key_file($keydir, 23, 7);
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('auditdump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.max_workers = 8
max_worker_processes = 16
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

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE tap_k AS SELECT kms_create_key() AS k;
	SELECT kms_describe_key(k) FROM tap_k;
	SELECT create_secret('tap/d', 'a value');
	SELECT get_secret_value('tap/d') IS NOT NULL;
});
ok(poll_for('src', q{SELECT count(*) >= 4 AND bool_or(operation = 'GetSecretValue') FROM kms.audit}), 'src has an audit trail');
ok(poll_for('src', q{SELECT queue_length = 0 FROM kms_audit_stats()}), 'and nothing queued');
my $rows = $node->safe_psql('src', 'SELECT count(*) FROM kms.audit_log');
my $last = $node->safe_psql('src', q{SELECT encode(row_hash, 'hex') FROM kms.audit_log ORDER BY id DESC LIMIT 1});
is($node->safe_psql('src', 'SELECT kms_audit_verify() IS NULL'), 't', 'src verifies');

my $dump = "$tmp/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore into a fresh database');

is($node->safe_psql('dst', 'SELECT count(*) FROM kms.audit_log WHERE id <= ' . $rows), $rows,
	"every audit row is restored ($rows)");
is($node->safe_psql('dst', qq{SELECT encode(row_hash, 'hex') FROM kms.audit_log WHERE id = $rows}), $last,
	'the chain\'s last link is the same');
is($node->safe_psql('dst', 'SELECT kms_audit_verify() IS NULL'), 't', 'kms_audit_verify() passes after the restore');

# The restored database is served; new events chain on.
ok(poll_for('dst', q{SELECT count(*) = 2 AND bool_and(state = 'running') FROM kms_worker_status()}), 'dst is served');
$node->safe_psql('dst', q{SELECT kms_describe_key(k) FROM tap_k});
ok(poll_for('dst', "SELECT count(*) > $rows FROM kms.audit_log"), 'a new event after the restored rows');
is($node->safe_psql('dst', 'SELECT kms_audit_verify() IS NULL'), 't', 'still verifies');

$node->stop;
done_testing();
