# Copyright (c) pg_kms authors
#
# 034_audit_upgrade_chain.pl: the audit trail across ALTER EXTENSION pg_kms
# UPDATE from 1.0 (issue 9, finding 12).  Rows written while the database
# is at 1.0 (no role OID columns: the audit worker writes them without)
# keep NULL OIDs after the update and are shown to kms_admin only; rows
# written after carry the OIDs, which are hashed; kms_audit_verify() holds
# over both, and an edited row of either kind is named.  kms_worker_status()
# works before the update (one row) and after (one row per worker).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 37, 11);

my $node = PostgreSQL::Test::Cluster->new('upchain');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.rotation_jobs = off
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms VERSION '1.0';
	CREATE ROLE app LOGIN;
	CREATE TABLE k AS SELECT kms_create_key(description => 'before the update') AS k;
	GRANT SELECT ON k TO app;
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'}), '1.0',
	'the database is at 1.0');
my ($ret, $out, $err) = $node->psql('postgres', q{SET ROLE app; SELECT kms_describe_key(k) FROM k});
like($err, qr/AccessDeniedException/, 'app is refused under 1.0');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM kms.audit_log
	WHERE db_user = 'app' AND operation = 'DescribeKey'}),
	'rows are written while the database is at 1.0');
is($node->safe_psql('postgres', q{SELECT state FROM kms_worker_status()}), 'running',
	'kms_worker_status() under 1.0: one row, the audit worker');
is($node->safe_psql('postgres', q{SET ROLE app; SELECT count(*) FROM kms.audit WHERE operation = 'DescribeKey'}), '1',
	'under 1.0 app sees its row (matched by name)');
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'the chain holds under 1.0');

$node->safe_psql('postgres', 'ALTER EXTENSION pg_kms UPDATE');
isnt($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'}), '1.0', 'updated');
my $last_old = $node->safe_psql('postgres', 'SELECT max(id) FROM kms.audit_log');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.audit_log
	WHERE db_user_oid IS NOT NULL OR session_user_oid IS NOT NULL}), '0',
	'rows written before the update have no OIDs');
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'the chain holds right after the update');

# Rows after the update.
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE app; SELECT kms_describe_key(k) FROM k});
like($err, qr/AccessDeniedException/, 'app is refused again');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM kms.audit_log
	WHERE db_user = 'app' AND operation = 'DescribeKey'}), 'a row written after the update');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM kms.audit_log
	WHERE id > $last_old AND (db_user_oid IS NULL OR session_user_oid IS NULL)}), '0',
	'rows written after the update have both OIDs');
is($node->safe_psql('postgres', qq{SELECT db_user_oid = 'app'::regrole FROM kms.audit_log
	WHERE id > $last_old AND db_user = 'app'}), 't', 'the OID is the role\'s');
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'the chain holds over old and new rows');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms_worker_status()}), '2',
	'kms_worker_status() after the update: one row per worker');

# Visibility: the old row (no OIDs) is kms_admin's only; the new one is app's.
is($node->safe_psql('postgres', qq{SET ROLE app;
	SELECT count(*) FILTER (WHERE id <= $last_old) || ' ' || count(*) FILTER (WHERE id > $last_old)
	  FROM kms.audit WHERE operation = 'DescribeKey'}),
	'0 1', 'app sees its row written after the update, not the one from before');
$node->safe_psql('postgres', 'CREATE ROLE auditor; GRANT kms_admin TO auditor');
is($node->safe_psql('postgres', q{SET ROLE auditor; SELECT count(*) FROM kms.audit
	WHERE db_user = 'app' AND operation = 'DescribeKey'}), '2', 'kms_admin sees both');

# An edited row of either kind is named; restored, the chain holds.
my $old_id = $node->safe_psql('postgres', qq{SELECT id FROM kms.audit_log
	WHERE id <= $last_old AND db_user = 'app'});
my $new_id = $node->safe_psql('postgres', qq{SELECT id FROM kms.audit_log
	WHERE id > $last_old AND db_user = 'app'});
$node->safe_psql('postgres', "UPDATE kms.audit_log SET outcome = 'success' WHERE id = $old_id");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify()'), $old_id, 'an edited row from before the update is named');
$node->safe_psql('postgres', "UPDATE kms.audit_log SET outcome = 'AccessDeniedException' WHERE id = $old_id");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'restored');
$node->safe_psql('postgres', "UPDATE kms.audit_log SET outcome = 'success' WHERE id = $new_id");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify()'), $new_id, 'an edited row from after the update is named');
$node->safe_psql('postgres', "UPDATE kms.audit_log SET outcome = 'AccessDeniedException' WHERE id = $new_id");
$node->safe_psql('postgres', "UPDATE kms.audit_log SET db_user_oid = 'auditor'::regrole WHERE id = $new_id");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify()'), $new_id, 'an edited role OID is named');
$node->safe_psql('postgres', "UPDATE kms.audit_log SET db_user_oid = 'app'::regrole WHERE id = $new_id");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'restored, the chain holds');

$node->stop;
done_testing();
