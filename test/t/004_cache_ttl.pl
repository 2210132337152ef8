# Copyright (c) pg_kms authors
#
# 004_cache_ttl.pl: unwrapped key material expires from the shared cache
# after pg_kms.key_cache_ttl and is unwrapped again on the next use, by a
# long-lived session (whose own AES contexts expire with it) and by new
# sessions alike; an expired entry never shadows the fresh one.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use Time::HiRes qw(sleep);

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 29, 3);

my $node = PostgreSQL::Test::Cluster->new('ttl');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\npg_kms.key_cache_ttl = 1\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key() AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k, 'ttl');
	CREATE FUNCTION try_decrypt() RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		RETURN (SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t);
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLERRM;
	END $$;
});

my $stats = sub {
	return $node->safe_psql('postgres',
		'SELECT provider_calls, evictions, entries FROM kms_cache_stats()');
};

my $session = $node->background_psql('postgres');
is($session->query_safe('SELECT try_decrypt()'), 'ttl', 'decrypts while cached');
my ($calls0) = split /\|/, $stats->();

for my $round (1 .. 3)
{
	sleep(1.5);
	is($session->query_safe('SELECT try_decrypt()'), 'ttl',
		"round $round: the same session decrypts after the material expired");
	is($node->safe_psql('postgres', 'SELECT try_decrypt()'), 'ttl',
		"round $round: a new session decrypts too");
}
my ($calls, $evictions, $entries) = split /\|/, $stats->();
cmp_ok($calls - $calls0, '>=', 3, 'expired material was unwrapped again');
cmp_ok($evictions, '>=', 1, 'expired entries were evicted');
is($entries, '1', 'one live entry for the one key version, never an expired shadow');
$session->quit;

$node->stop;
done_testing();
