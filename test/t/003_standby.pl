# Copyright (c) pg_kms authors
#
# 003_standby.pl: on a streaming standby, reads and decryption work from the
# replicated (wrapped) key material, and every change fails with a clear
# error.  A key disabled on the primary is refused on the standby as soon as
# the change is replayed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 13, 5);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key(description => 'replicated') AS k;
	SELECT kms_create_alias('alias/replicated', k) FROM t;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt('alias/replicated', 'on the primary');
	CREATE FUNCTION try_decrypt() RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		RETURN (SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t);
	EXCEPTION WHEN OTHERS THEN
		RETURN split_part(SQLERRM, ':', 1);
	END $$;
});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'on the primary', 'standby decrypts');
is($standby->safe_psql('postgres', q{SELECT kms_describe_key('alias/replicated')->>'KeyState'}),
	'Enabled', 'standby describes keys');
is($standby->safe_psql('postgres',
		q{SELECT kms_decrypt_text(kms_encrypt('alias/replicated', 'on the standby'))}),
	'on the standby', 'standby encrypts (no catalog write needed)');

my ($ret, $out, $err) = $standby->psql('postgres', q{SELECT kms_create_key()});
like($err, qr/cannot run on a standby server/, 'CreateKey on a standby: clear error');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT kms_disable_key(k) FROM t});
like($err, qr/DisableKey cannot run on a standby server/, 'DisableKey on a standby: clear error');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT kms_rotate_key_on_demand(k) FROM t});
like($err, qr/cannot run on a standby server/, 'RotateKeyOnDemand on a standby: clear error');

# A disable on the primary reaches the standby's sessions after replay,
# including a session that has the key cached (the commit record carries an
# invalidation; the primary's shared counter does not reach a standby).
my $session = $standby->background_psql('postgres');
is($session->query_safe('SELECT try_decrypt()'), 'on the primary', 'long-lived standby session decrypts');
$primary->safe_psql('postgres', q{SELECT kms_disable_key(k) FROM t});
$primary->wait_for_catchup($standby);
is($session->query_safe('SELECT try_decrypt()'), 'DisabledException',
	'the same standby session refuses the key disabled on the primary');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT kms_decrypt(c) FROM t});
like($err, qr/DisabledException/, 'a new standby session refuses it too');
$primary->safe_psql('postgres', q{SELECT kms_enable_key(k) FROM t});
$primary->wait_for_catchup($standby);
is($session->query_safe('SELECT try_decrypt()'), 'on the primary', 're-enabled on the primary: decrypts again');
$session->quit;

$standby->stop;
$primary->stop;
done_testing();
