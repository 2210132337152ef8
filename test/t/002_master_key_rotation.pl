# Copyright (c) pg_kms authors
#
# 002_master_key_rotation.pl: kms_rotate_master_key() across databases and
# restarts.
#
# The master key is one per cluster, but every database that uses pg_kms
# holds its own wrapped key versions.  Rotating in one database switches
# the cluster to the new master key and keeps the old one loaded, so the
# other databases keep working; after a restart with the old key as
# pg_kms.previous_master_key_file, kms_rotate_master_key() without argument
# rewraps what is left.  User data is never touched.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;

sub write_key
{
	my ($path, $seed) = @_;
	my $hex = join('', map { sprintf('%02x', ($_ * $seed + 7) % 256) } 0 .. 31);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod(0600, $path) or die "chmod $path: $!";
	return $path;
}

my $old = write_key("$keydir/old.key", 31);
my $new = write_key("$keydir/new.key", 77);

my $node = PostgreSQL::Test::Cluster->new('rot');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\ninclude_if_exists = 'pg_kms_key.conf'\n");

sub set_keys
{
	my ($settings) = @_;
	my $conf = $node->data_dir . '/pg_kms_key.conf';
	open(my $fh, '>', $conf) or die;
	print $fh $settings;
	close($fh);
}

set_keys("pg_kms.master_key_file = '$old'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE b');
for my $db ('postgres', 'b')
{
	$node->safe_psql($db, q{
		CREATE EXTENSION pg_kms;
		CREATE TABLE t AS SELECT kms_create_key() AS k;
		ALTER TABLE t ADD c bytea;
		UPDATE t SET c = kms_encrypt(k, 'data in ' || current_database());
		SELECT kms_rotate_key_on_demand(k) FROM t;
	});
}

sub decrypts
{
	my ($db) = @_;
	my ($ret, $out, $err) = $node->psql($db,
		q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t});
	return ($ret == 0 && $out eq "data in $db") ? 1 : $err;
}

# Rotate in database postgres: both versions rewrapped, one transaction.
is($node->safe_psql('postgres', "SELECT kms_rotate_master_key('$new')"),
	'2', 'rotation rewraps both key versions of this database');
is($node->safe_psql('postgres', "SELECT kms_rotate_master_key('$new')"),
	'0', 'a second rotation to the same key has nothing to do');

# Fresh sessions, so nothing is served from a backend's own cache.
is(decrypts('postgres'), 1, 'rotated database decrypts');
is(decrypts('b'), 1, 'other database still decrypts through the previous key');

# A third key cannot be started while the previous one is still needed.
my $third = write_key("$keydir/third.key", 101);
my ($ret, $out, $err) = $node->psql('b', "SELECT kms_rotate_master_key('$third')");
like($err, qr/a previous master key is still in use/, 'one rotation at a time');

# Restart on the new key with the old one as previous: both still work.
set_keys("pg_kms.master_key_file = '$new'\npg_kms.previous_master_key_file = '$old'\n");
$node->restart;
is(decrypts('postgres'), 1, 'after restart: rotated database decrypts');
is(decrypts('b'), 1, 'after restart: database b decrypts through the previous key');

# Database b catches up without naming a file.
is($node->safe_psql('b', 'SELECT kms_rotate_master_key()'), '2',
	'rotation without argument rewraps what the previous key wrapped');

# Restart with the new key alone: everything still decrypts.
set_keys("pg_kms.master_key_file = '$new'\n");
$node->restart;
is(decrypts('postgres'), 1, 'new key alone: postgres decrypts');
is(decrypts('b'), 1, 'new key alone: b decrypts');
is($node->safe_psql('b', q{SELECT count(*) FROM t WHERE kms_decrypt(kms_encrypt(k, 'x'::bytea)) = 'x'}),
	'1', 'new keys are wrapped under the new master key');

# Without the previous key, an unrotated database is named as such.
$node->safe_psql('postgres', 'CREATE DATABASE c');
$node->safe_psql('c', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key() AS k;
	ALTER TABLE t ADD c bytea;
	UPDATE t SET c = kms_encrypt(k, 'data in c');
});
$node->safe_psql('postgres', "SELECT kms_rotate_master_key('$third')");
set_keys("pg_kms.master_key_file = '$third'\n");
$node->restart;
is(decrypts('postgres'), 1, 'third key: rotated database decrypts');
($ret, $out, $err) = $node->psql('c', q{SELECT kms_decrypt(c) FROM t});
like($err, qr/master key does not match/, 'unrotated database: a clear master key mismatch, not garbage');
like($err, qr/pg_kms\.previous_master_key_file/, 'the hint names the setting');

# Only a superuser rotates.
$node->safe_psql('postgres', 'CREATE ROLE regress_plain LOGIN');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE regress_plain; SELECT kms_rotate_master_key()");
like($err, qr/permission denied|AccessDeniedException/, 'non-superuser cannot rotate');

$node->stop;
done_testing();
