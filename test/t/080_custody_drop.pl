# Copyright (c) pg_kms authors
#
# 080_custody_drop.pl: DROP EXTENSION pg_kms (issue 11, finding 2).  With a
# live key it is refused, by a superuser owner too, and nothing is lost;
# pg_kms.allow_unsafe_drop (superuser) lets it through, with a warning.  A
# database whose keys are all destroyed by the deletion job, or that never
# had one, drops it as before.  DROP OWNED BY the extension's owner is
# refused the same way.  scripts/quickstart.sh never drops the extension.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 41, 7);

my $node = PostgreSQL::Test::Cluster->new('custody_drop');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;

# --- a database with a live key: refused, nothing lost
$node->safe_psql('postgres', 'CREATE DATABASE live');
$node->safe_psql('live', 'CREATE EXTENSION pg_kms');
my $key = $node->safe_psql('live', q{SELECT kms_create_key(description => 'live')});
$node->safe_psql('live', qq{CREATE TABLE t AS SELECT kms_encrypt('$key', convert_to('row one', 'UTF8')) AS c});

foreach my $stmt ('DROP EXTENSION pg_kms', 'DROP EXTENSION pg_kms CASCADE', 'DROP SCHEMA kms CASCADE',
	'TRUNCATE kms.key CASCADE', 'DELETE FROM kms.key_version')
{
	my ($ret, $out, $err) = $node->psql('live', $stmt);
	isnt($ret, 0, "$stmt: refused with a live key");
	like($err, qr/ERROR:  KMSInvalidStateException: .* would destroy keys that are not deleted/, "$stmt: the message");
}
my ($ret, $out, $err) = $node->psql('live', 'DROP EXTENSION pg_kms');
like($err, qr/HINT:  Schedule the deletion of every key \(kms_schedule_key_deletion, 7 to 30 days\).*pg_kms\.allow_unsafe_drop/s,
	'the hint names the deletion window and the override');
is($node->safe_psql('live', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}), 'row one',
	'after the refusals the data still decrypts');

# the owner of the extension: a superuser other than the bootstrap one
$node->safe_psql('postgres', 'CREATE ROLE kms_owner SUPERUSER LOGIN; CREATE DATABASE owned');
$node->safe_psql('owned', 'SET ROLE kms_owner; CREATE EXTENSION pg_kms; SELECT kms_create_key()');
($ret, $out, $err) = $node->psql('owned', 'DROP OWNED BY kms_owner');
isnt($ret, 0, 'DROP OWNED BY the extension owner: refused with a live key');
like($err, qr/KMSInvalidStateException: DROP OWNED BY the owner of pg_kms would destroy keys/, 'DROP OWNED: the message');
is($node->safe_psql('owned', q{SELECT count(*) FROM kms.key}), '1', 'DROP OWNED: the key is still there');

# the override: superuser only, then the drop goes through with a warning
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
($ret, $out, $err) = $node->psql('live', 'SET pg_kms.allow_unsafe_drop = on', extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied to set parameter "pg_kms\.allow_unsafe_drop"/, 'the override is superuser-only');
($ret, $out, $err) = $node->psql('live', 'SET pg_kms.allow_unsafe_drop = on; DROP EXTENSION pg_kms');
is($ret, 0, 'DROP EXTENSION with pg_kms.allow_unsafe_drop: done');
like($err, qr/WARNING:  pg_kms: DROP EXTENSION pg_kms destroys keys not yet deleted/, 'with a warning');
is($node->safe_psql('live', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'kms'}), '0', 'schema kms is gone');

# --- never a key: as before
$node->safe_psql('postgres', 'CREATE DATABASE empty');
$node->safe_psql('empty', 'CREATE EXTENSION pg_kms');
($ret, $out, $err) = $node->psql('empty', 'DROP EXTENSION pg_kms');
is($ret, 0, 'a database that never had a key drops pg_kms as before');
is($err, '', 'without a warning');

# --- every key destroyed by the deletion job: as before
$node->safe_psql('postgres', 'CREATE DATABASE destroyed');
$node->safe_psql('destroyed', 'CREATE EXTENSION pg_kms');
foreach my $days (7, 30)
{
	my $k = $node->safe_psql('destroyed', q{SELECT kms_create_key()});
	$node->safe_psql('destroyed', "SELECT kms_schedule_key_deletion('$k', $days)");
}
($ret, $out, $err) = $node->psql('destroyed', 'DROP EXTENSION pg_kms');
isnt($ret, 0, 'keys pending deletion are not destroyed yet: refused');
# the windows pass (moved into the past here), the deletion job destroys them
$node->safe_psql('destroyed', q{UPDATE kms.key SET deletion_date = now() - interval '1 second'});
$node->safe_psql('destroyed', q{SELECT kms_rotation_run_job('deletion')}) for 1 .. 2;
is($node->safe_psql('destroyed',
		q{SELECT count(*) FROM kms.key k WHERE key_state <> 'Deleted' OR EXISTS (SELECT 1 FROM kms.key_version v WHERE v.key_id = k.key_id AND material IS NOT NULL)}),
	'0', 'the deletion job destroyed both keys');
($ret, $out, $err) = $node->psql('destroyed', 'DROP EXTENSION pg_kms');
is($ret, 0, 'once every key is destroyed, DROP EXTENSION works without the override');
is($err, '', 'and without a warning');

# --- the quick start never drops the extension
my $qs = slurp_file("$FindBin::RealBin/../../scripts/quickstart.sh");
unlike($qs, qr/DROP\s+(EXTENSION|SCHEMA\s+kms)/i, 'scripts/quickstart.sh never drops pg_kms');

$node->stop;
done_testing();
