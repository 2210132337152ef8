
# Copyright (c) pg_kms authors
#
# 011_master_key_cluster_kcv.pl: a wrong master key never initialises a
# database.
#
# pg_kms_master_kcv in the data directory records the key check value of
# the master key the cluster's databases use: written when the first
# database initialises (its first key material) and when
# kms_rotate_master_key() commits.  A database whose first key would be
# wrapped under a master key with another KCV is refused
# (KMSInvalidStateException) and nothing is written.  Reads never depend on
# the file: a standby made before it existed reads as before (and records
# the key it unwrapped with), as does one with a damaged file.  A cluster
# from before the file existed records it at the first unwrap.  A damaged
# file refuses new databases until an existing database proves the loaded
# key (its next key creation repairs the file).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;

sub write_key
{
	my ($path, $seed) = @_;
	my $hex = join('', map { sprintf('%02x', ($_ * $seed + 1) % 256) } 0 .. 31);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod(0600, $path) or die "chmod $path: $!";
	return $path;
}

my $key_a = write_key("$keydir/a.key", 29);
my $key_b = write_key("$keydir/b.key", 61);     # a wrong key
my $key_n = write_key("$keydir/n.key", 97);     # the key rotated to

my $node = PostgreSQL::Test::Cluster->new('kcv');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\ninclude_if_exists = 'pg_kms_key.conf'\n");

sub set_keys
{
	my ($n, $settings) = @_;
	my $conf = $n->data_dir . '/pg_kms_key.conf';
	open(my $fh, '>', $conf) or die;
	print $fh $settings;
	close($fh);
	return;
}

sub kcv_file
{
	my ($n) = @_;
	my $f = $n->data_dir . '/pg_kms_master_kcv';
	return undef unless -e $f;
	my $c = slurp_file($f);
	chomp $c;
	return $c;
}

sub master_kcv
{
	my ($db) = @_;
	return $node->safe_psql($db, q{SELECT encode(kcv, 'hex') FROM kms.master});
}

# Initialise pg_kms in a new database: (exit code, stderr).
sub init_db
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION pg_kms');
	my ($ret, $out, $err) = $node->psql($db, 'SELECT kms_create_key()');
	return ($ret, $err);
}

set_keys($node, "pg_kms.master_key_file = '$key_a'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t (k text, c bytea);
});
is(kcv_file($node), undef, 'no record before any database is initialised');
$node->backup('before_record');

# 1. The first database's first key records the cluster's KCV.
$node->safe_psql('postgres', q{
	INSERT INTO t (k) SELECT kms_create_key();
	UPDATE t SET c = kms_encrypt(k, 'data');
});
my $kcv_a = master_kcv('postgres');
like($kcv_a, qr/^[0-9a-f]{32}$/, 'database postgres is initialised');
is(kcv_file($node), $kcv_a, 'the record holds the KCV of kms.master');

# 1b. A cluster from before the record existed: the first material
# unwrapped under the loaded key records it.
unlink($node->data_dir . '/pg_kms_master_kcv') or die;
$node->restart;
is($node->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'data', 'no record: existing data decrypts');
is(kcv_file($node), $kcv_a, 'no record: the first unwrap under the loaded key records it');

# 2. Restarted with a wrong key: a new database is refused, nothing written.
set_keys($node, "pg_kms.master_key_file = '$key_b'\n");
$node->restart;
my ($ret, $err) = init_db('d2');
isnt($ret, 0, 'wrong master key: a new database is not initialised');
like($err, qr/KMSInvalidStateException: .*the loaded master key is not the one this cluster's databases use/,
	'wrong master key: KMSInvalidStateException says why');
unlike($err, qr/[0-9a-f]{32}/, 'the error shows no key check value');
is($node->safe_psql('d2', 'SELECT count(*) FROM kms.master'), '0', 'wrong master key: no kms.master row');
is($node->safe_psql('d2', 'SELECT count(*) FROM kms.key'), '0', 'wrong master key: no key');
($ret, my $out, $err) = $node->psql('d2', q{SELECT create_secret('s', 'v')});
like($err, qr/KMSInvalidStateException/, 'wrong master key: create_secret is refused too');
is($node->safe_psql('d2', 'SELECT count(*) FROM kms.secret'), '0', 'wrong master key: no secret');
is(kcv_file($node), $kcv_a, 'wrong master key: the record is unchanged');
($ret, $out, $err) = $node->psql('postgres', 'SELECT kms_decrypt(c) FROM t');
like($err, qr/master key does not match/, 'wrong master key: existing data is refused as before');

# 3. The right key again: the database initialises under it.
set_keys($node, "pg_kms.master_key_file = '$key_a'\n");
$node->restart;
($ret, $out, $err) = $node->psql('d2', 'SELECT kms_create_key()');
is($ret, 0, 'right master key: the database initialises') or diag($err);
is(master_kcv('d2'), $kcv_a, 'right master key: kms.master of d2 holds the cluster KCV');

# 4. A standby made before the record existed reads without it; promoted,
# it records the KCV at its first key creation in an existing database.
my $standby = PostgreSQL::Test::Cluster->new('kcv_standby');
$standby->init_from_backup($node, 'before_record', has_streaming => 1);
set_keys($standby, "pg_kms.master_key_file = '$key_a'\n");
$standby->start;
$node->wait_for_catchup($standby);
is(kcv_file($standby), undef, 'the standby has no record');
is($standby->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'data', 'the standby decrypts without the record');
is(kcv_file($standby), $kcv_a, 'the standby records the key it unwrapped with');
# a stale or damaged record does not stop reads either
my $sf = $standby->data_dir . '/pg_kms_master_kcv';
open(my $sfh, '>', $sf) or die;
print $sfh "damaged\n";
close($sfh);
$standby->restart;
is($standby->safe_psql('postgres', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'data', 'the standby decrypts with a damaged record');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
is($standby->safe_psql('postgres', q{SELECT kms_create_key() IS NOT NULL}), 't',
	'promoted: an existing database creates a key');
is(kcv_file($standby), $kcv_a, 'promoted: the database that proves the key repairs the record');
$standby->stop;

# 5. A rotation records the new KCV at commit, not before.
$node->safe_psql('postgres', "BEGIN; SELECT kms_rotate_master_key('$key_n'); ROLLBACK;");
is(kcv_file($node), $kcv_a, 'a rolled-back rotation leaves the record');
$node->safe_psql('postgres', "SELECT kms_rotate_master_key('$key_n')");
my $kcv_n = master_kcv('postgres');
isnt($kcv_n, $kcv_a, 'rotated: kms.master changed');
is(kcv_file($node), $kcv_n, 'rotated: the record follows at commit');
($ret, $err) = init_db('d3');
is($ret, 0, 'rotated: a new database initialises under the new key') or diag($err);
is(master_kcv('d3'), $kcv_n, 'rotated: d3 is under the new key');

# 6. Restarted with the old key alone (the rotation forgotten): refused.
set_keys($node, "pg_kms.master_key_file = '$key_a'\n");
$node->restart;
($ret, $err) = init_db('d4');
like($err, qr/KMSInvalidStateException/, 'old key after a rotation: a new database is refused');
is($node->safe_psql('d4', 'SELECT count(*) FROM kms.master'), '0', 'old key after a rotation: nothing written');

# 7. A damaged record refuses new databases; an existing database under the
# loaded key repairs it.
set_keys($node, "pg_kms.master_key_file = '$key_n'\npg_kms.previous_master_key_file = '$key_a'\n");
$node->restart;
my $f = $node->data_dir . '/pg_kms_master_kcv';
open(my $fh, '>', $f) or die;
print $fh "not a check value\n";
close($fh);
($ret, $out, $err) = $node->psql('d4', 'SELECT kms_create_key()');
like($err, qr/KMSInvalidStateException: .*unreadable or damaged/, 'damaged record: a new database is refused');
is($node->safe_psql('d3', 'SELECT kms_create_key() IS NOT NULL'), 't',
	'damaged record: an existing database under the loaded key creates a key');
is(kcv_file($node), $kcv_n, 'damaged record: repaired');
($ret, $out, $err) = $node->psql('d4', 'SELECT kms_create_key()');
is($ret, 0, 'repaired record: the new database initialises') or diag($err);

$node->stop;
done_testing();
