
# Copyright (c) pg_kms authors
#
# 042_rotation_standby.pl: a streaming standby serves get_secret and
# kms_decrypt while rotation writes are refused there (the worker idles);
# after promotion a requested rotation runs.  The rotation is driven with
# kms_rotation_run_job, the worker's unit of work; with the worker in place
# the last part also waits for it to rotate on its own.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 43, 5);

my $conf = qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
};
my $primary = PostgreSQL::Test::Cluster->new('rot_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
scram_only_hba($primary);
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE ROLE sb_app LOGIN PASSWORD 'sb-initial-pw';
});
my $kid = $primary->safe_psql('postgres', q{SELECT kms_create_key()});
$primary->safe_psql('postgres', qq{CREATE TABLE blobs AS SELECT kms_encrypt('$kid', 'sb plaintext'::bytea) AS b});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('rot_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
my $sport = $standby->port;
$primary->safe_psql('postgres', qq{
	SELECT create_secret('sb/rot', '{"engine":"postgres","host":"127.0.0.1","port":$sport,"username":"sb_app","password":"sb-initial-pw","dbname":"postgres"}');
	SELECT rotate_secret('sb/rot', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', rotate_immediately => false);
});
$primary->wait_for_catchup($standby);

like($standby->safe_psql('postgres', q{SELECT get_secret('sb/rot')}), qr/"username":\s*"sb_app"/,
	'standby: get_secret');
is($standby->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(b), 'UTF8') FROM blobs}), 'sb plaintext',
	'standby: kms_decrypt');
is($standby->safe_psql('postgres', q{SELECT describe_secret('sb/rot') -> 'RotationEnabled'}), 'true',
	'standby: describe_secret shows the rotation configuration');
my ($ret, $out, $err) = $standby->psql('postgres', q{SELECT rotate_secret('sb/rot')});
like($err, qr/cannot run on a standby/, 'standby: rotate_secret is refused');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT kms_rotation_run_job('secret rotation')});
like($err, qr/cannot run on a standby/, 'standby: no rotation step runs there');

ok($standby->poll_query_until('postgres', q{SELECT state = 'standby' FROM kms_worker_status() WHERE worker = 'rotation'}),
	'standby: the worker is up and idle');

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
$standby->safe_psql('postgres', q{SELECT rotate_secret('sb/rot')});
ok($standby->poll_query_until('postgres',
		q{SELECT rotation_token IS NULL AND last_rotated_date IS NOT NULL FROM kms.secret WHERE name = 'sb/rot'}),
	'promoted: the worker ran the rotation');
like($standby->safe_psql('postgres', q{SELECT get_secret('sb/rot')}), qr/"username":\s*"sb_app_clone"/,
	'promoted: AWSCURRENT is the clone');
is($standby->safe_psql('postgres', q{SELECT describe_secret('sb/rot') ? 'LastRotationError'}), 'f',
	'promoted: no rotation error');

$standby->stop;
$primary->stop;
done_testing();
