
# Copyright (c) pg_kms authors
#
# 040_rotation_crash.pl: the worker is killed with SIGKILL at each of the
# four steps in turn, before and after the step's transaction commits
# (pg_kms.rotation_test_crash_at, a test-only setting).  After the restart
# every secret has exactly one AWSCURRENT, no committed version is lost,
# the rotation completes on its own, and its credentials log in.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 41, 7);

my $node = PostgreSQL::Test::Cluster->new('rot_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
restart_after_crash = on
});
scram_only_hba($node);
$node->start;
my $port = $node->port;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');

my $n = 0;
for my $strategy ('postgres_single_user', 'postgres_alternating_users')
{
	for my $step ('createSecret', 'setSecret', 'testSecret', 'finishSecret')
	{
		for my $side ('before', 'after')
		{
			$n++;
			my $role = "crash_r$n";
			my $secret = "crash/s$n";
			$node->safe_psql('postgres', qq{
				CREATE ROLE $role LOGIN PASSWORD 'crash-initial-$n';
				SELECT create_secret('$secret', '{"engine":"postgres","host":"127.0.0.1","port":$port,"username":"$role","password":"crash-initial-$n","dbname":"postgres"}');
				ALTER SYSTEM SET pg_kms.rotation_test_crash_at = '$step:$side';
				SELECT pg_reload_conf();
			});
			my $versions_before = $node->safe_psql('postgres', "SELECT count(*) FROM list_secret_version_ids('$secret', true)");
			my $log_offset = -s $node->logfile;
			# The worker is woken at commit and may crash (and with it every
			# backend) before this session has read its result: a connection
			# lost after the commit is fine here.
			my ($rret, $rout, $rerr) = $node->psql('postgres', "SELECT rotate_secret('$secret', '$strategy')");
			ok($rret == 0
				  || $rerr =~ /server closed the connection unexpectedly|terminating connection because of crash|connection to server .* lost|no connection to the server/,
				"$strategy $step:$side: rotate_secret accepted (or its session ended by the crash)")
			  or diag($rerr);

			# the worker kills itself; the postmaster restarts everything
			ok($node->wait_for_log(qr/was terminated by signal 9/, $log_offset),
				"$strategy $step:$side: the worker was killed");
			$node->poll_query_until('postgres', 'SELECT true') or die;
			$node->safe_psql('postgres', q{ALTER SYSTEM RESET pg_kms.rotation_test_crash_at; SELECT pg_reload_conf();});

			ok($node->poll_query_until('postgres',
					"SELECT rotation_token IS NULL AND last_rotated_date IS NOT NULL FROM kms.secret WHERE name = '$secret'"),
				"$strategy $step:$side: the rotation completed on its own after the restart");
			is($node->safe_psql('postgres', qq{
				SELECT count(*) FROM kms.secret_stage s JOIN kms.secret k USING (secret_id)
				 WHERE k.name = '$secret' AND stage = 'AWSCURRENT'}), '1',
				"$strategy $step:$side: exactly one AWSCURRENT");
			is($node->safe_psql('postgres', "SELECT count(*) FROM list_secret_version_ids('$secret', true)"),
				$versions_before + 1, "$strategy $step:$side: one new version, none lost");
			my $j = $node->safe_psql('postgres', "SELECT get_secret('$secret')");
			my ($u) = $j =~ /"username":\s*"([^"]+)"/;
			my ($p) = $j =~ /"password":\s*"((?:[^"\\]|\\.)*)"/;
			$p =~ s/\\(.)/$1/g;
			$p =~ s/(['\\])/\\$1/g;
			is($node->psql('postgres', 'SELECT 1',
					connstr => "host=127.0.0.1 port=$port dbname=postgres user=$u password='$p'"),
				0, "$strategy $step:$side: AWSCURRENT logs in");
		}
	}
}

$node->stop;
done_testing();
