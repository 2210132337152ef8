
# Copyright (c) pg_kms authors
#
# 021_secrets_standby.pl: on a streaming standby, secrets are read
# (get_secret, get_secret_value, describe_secret, list_secrets) and every
# write fails with a clear error (SQLSTATE 25006).  A session on the standby
# that has a secret in its cache sees a new value, and a scheduled deletion,
# as soon as the primary's change is replayed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 29, 3);

my $primary = PostgreSQL::Test::Cluster->new('sec_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT create_secret('sb/app', 'one');
	CREATE FUNCTION try_get() RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		RETURN get_secret('sb/app');
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
	END $$;
});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('sec_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT get_secret('sb/app')}), 'one', 'standby: get_secret');
is($standby->safe_psql('postgres', q{SELECT get_secret_value('sb/app')->>'SecretString'}), 'one',
	'standby: get_secret_value');
is($standby->safe_psql('postgres', q{SELECT describe_secret('sb/app')->>'Name'}), 'sb/app',
	'standby: describe_secret');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM list_secrets()}), '1',
	'standby: list_secrets');

for my $write (
	q{SELECT put_secret_value('sb/app', 'x')},
	q{SELECT create_secret('sb/new', 'x')},
	q{SELECT update_secret('sb/app', description => 'x')},
	q{SELECT update_secret_version_stage('sb/app', 'L', move_to_version_id => repeat('a', 32))},
	q{SELECT delete_secret('sb/app')},
	q{SELECT restore_secret('sb/app')},
	q{SELECT tag_resource('sb/app', '{"a":"b"}')},
	q{SELECT secret_create_grant('sb/app', 'postgres', '{GetSecretValue}')})
{
	my ($ret, $out, $err) = $standby->psql('postgres', $write, extra_params => ['-v', 'VERBOSITY=verbose']);
	isnt($ret, 0, "standby refuses: $write");
	like($err, qr/25006|read-only|standby/, "standby: clear error for $write");
}

# A long-lived standby session with the secret in its cache.
my $session = $standby->background_psql('postgres');
is($session->query_safe(q{SELECT get_secret('sb/app')}), 'one', 'standby session reads');
is($session->query_safe(q{SELECT get_secret('sb/app')}), 'one', 'standby session reads (cached)');

$primary->safe_psql('postgres', q{SELECT put_secret_value('sb/app', 'two')});
$primary->wait_for_catchup($standby);
is($session->query_safe(q{SELECT get_secret('sb/app')}), 'two',
	'standby session sees the new value once replayed');

$primary->safe_psql('postgres', q{SELECT delete_secret('sb/app', recovery_window_in_days => 7)});
$primary->wait_for_catchup($standby);
is($session->query_safe(q{SELECT try_get()}), 'KM103 InvalidRequestException',
	'standby session sees the scheduled deletion once replayed');

$primary->safe_psql('postgres', q{SELECT restore_secret('sb/app')});
$primary->wait_for_catchup($standby);
is($session->query_safe(q{SELECT try_get()}), 'two', 'and the restore');
$session->quit;

$standby->stop;
$primary->stop;
done_testing();
