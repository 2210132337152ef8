# Copyright (c) pg_kms authors
#
# 030_audit_events.pl: audit events survive the caller's rollback and a
# kill -9 of the caller right after the call (the log line is out before the
# call returns); 100,000 decrypts in one statement are one aggregated row;
# an edited row is named by kms_audit_verify(); every log line parses with
# the regex of docs/audit.md and none carries a secret value.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use JSON::PP;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 7, 3);

my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE ROLE app LOGIN;
	CREATE ROLE admin LOGIN IN ROLE kms_admin;
	GRANT CREATE ON SCHEMA public TO admin;
	SET ROLE admin;
	SELECT create_secret('tap/s1', 'tap-secret-value-do-not-log');
	CREATE TABLE public.k AS SELECT kms_create_key(description => 'tap') AS k;
	CREATE TABLE public.c AS SELECT kms_encrypt(k, 'x') AS c FROM public.k;
	RESET ROLE;
	GRANT SELECT ON public.k, public.c TO PUBLIC;
});

sub wait_for
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until('postgres', $sql), $what);
}

# Rollback: a denied get_secret in a transaction that then rolls back.
my ($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SET ROLE app;
	SELECT get_secret('tap/s1');
	ROLLBACK;
});
like($err, qr/AccessDeniedException/, 'get_secret denied');
wait_for(q{SELECT count(*) = 1 FROM kms.audit WHERE operation = 'GetSecretValue'
	AND db_user = 'app' AND outcome = 'AccessDeniedException'},
	'denied get_secret in a rolled-back transaction is in kms.audit');

# kill -9 of the backend right after a denied call: the event is in the log
# (written before the error was raised) or in the table.
my $log_offset = -s $node->logfile;
my $psql = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $psql->query_safe('SELECT pg_backend_pid()');
$psql->query(q{SET ROLE app; SELECT get_secret('tap/s1', version_stage => 'AWSPREVIOUS')});
kill 'KILL', $pid;
eval { $psql->quit; };
# a query can still succeed before the postmaster notices the crash: wait for
# the crash restart itself, then for the server to take connections again
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
my $log = slurp_file($node->logfile, $log_offset);
my $in_log = $log =~ /pg_kms audit: \{[^\n]*"pid":$pid,[^\n]*"operation":"GetSecretValue"[^\n]*"outcome":"AccessDeniedException"/;
my $in_table = $node->safe_psql('postgres',
	"SELECT count(*) FROM kms.audit WHERE backend_pid = $pid AND outcome = 'AccessDeniedException'");
ok($in_log || $in_table > 0, 'denied call of a backend killed with -9: in the log or the table');
ok($in_log, '... and the log line was written before the kill');

# 100,000 decrypts in one statement: one aggregated row.
$node->safe_psql('postgres', q{SET ROLE admin;
	SELECT count(kms_decrypt(c)) FROM public.c, generate_series(1, 100000)});
wait_for(q{SELECT count(*) = 1 AND min(event_count) = 100000 FROM kms.audit a, public.k
	WHERE a.resource_id = k AND operation = 'Decrypt' AND event_type = 'aggregate'},
	'100,000 decrypts in one statement are one row with event_count 100000');

# Tamper evidence.
is($node->safe_psql('postgres', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain verifies');
my $victim = $node->safe_psql('postgres', q{SELECT min(id) FROM kms.audit_log WHERE operation = 'Decrypt'
	AND event_count = 100000});
$node->safe_psql('postgres', "UPDATE kms.audit_log SET event_count = 1 WHERE id = $victim");
is($node->safe_psql('postgres', 'SELECT kms_audit_verify()'), $victim, 'an edited row is named by kms_audit_verify()');

# Every log line parses; no secret value anywhere in the log.
$log = slurp_file($node->logfile);
my @lines = grep { /pg_kms audit: / } split /\n/, $log;
ok(@lines >= 4, 'audit lines in the server log: ' . scalar(@lines));
my $bad = 0;
for my $l (@lines)
{
	if ($l !~ /pg_kms audit: (\{.*\})$/) { $bad++; next; }
	my $j = eval { decode_json($1) };
	$bad++ unless $j && defined $j->{operation} && defined $j->{outcome} && exists $j->{queued};
}
is($bad, 0, 'every audit line matches the documented regex and is JSON');
# (the test framework logs every statement, so only our lines are checked)
is(scalar(grep { /tap-secret-value-do-not-log/ } @lines), 0, 'no secret value in any audit line');

$node->stop;
done_testing();
