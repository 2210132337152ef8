# Copyright (c) pg_kms authors
#
# 061_master_keyring.pl: old backups need old master keys (issue 11,
# finding 6).  pg_kms.master_keyring_directory holds any number of earlier
# master keys (up to 32), each known by its key check value: a dump and a
# base backup taken under a master key two rotations ago restore and read
# on a server whose current key is the newest one, and
# kms_rotate_master_key() brings the restored database under the current
# key, after which the keyring is no longer needed for it.
# pg_kms.previous_master_key_file keeps working (one more keyring entry).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;

sub write_key
{
	my ($path, $seed) = @_;
	my $hex = join('', map { sprintf('%02x', ($_ * $seed + 11) % 256) } 0 .. 31);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod(0600, $path) or die "chmod $path: $!";
	return $path;
}

my $k1 = write_key("$keydir/k1.key", 37);
my $k2 = write_key("$keydir/k2.key", 53);
my $k3 = write_key("$keydir/k3.key", 91);
my $ring = "$keydir/keyring";
mkdir($ring, 0700) or die;

my $node = PostgreSQL::Test::Cluster->new('ring');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.rotation_jobs = off\ninclude_if_exists = 'pg_kms_key.conf'\n");

sub set_keys
{
	my ($n, $settings) = @_;
	my $conf = $n->data_dir . '/pg_kms_key.conf';
	open(my $fh, '>', $conf) or die;
	print $fh $settings;
	close($fh);
}

sub decrypts
{
	my ($n, $db) = @_;
	my ($ret, $out, $err) = $n->psql($db,
		q{SELECT string_agg(convert_from(kms_decrypt(c), 'UTF8'), ',' ORDER BY id) FROM t});
	return $ret == 0 ? $out : "error: $err";
}

# Under K1: data, a dump and a base backup.
set_keys($node, "pg_kms.master_key_file = '$k1'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE keys AS SELECT kms_create_key(description => 'ring') AS k;
	SELECT kms_create_alias('alias/ring', k) FROM keys;
	SELECT kms_rotate_key_on_demand('alias/ring');
	CREATE TABLE t (id int, c bytea);
	INSERT INTO t SELECT 1, kms_encrypt('alias/ring', 'one');
});
my $dump = "$keydir/app_k1.sql";
$node->command_ok(['pg_dump', '-d', $node->connstr('app'), '-f', $dump], 'dump taken under K1');
$node->backup('under_k1');

# Two master key rotations: K1 -> K2 -> K3, each finished (no previous key left).
$node->safe_psql('app', "SELECT kms_rotate_master_key('$k2')");
set_keys($node, "pg_kms.master_key_file = '$k2'\n");
$node->restart;
$node->safe_psql('app', q{INSERT INTO t SELECT 2, kms_encrypt('alias/ring', 'two')});
$node->safe_psql('app', "SELECT kms_rotate_master_key('$k3')");
set_keys($node, "pg_kms.master_key_file = '$k3'\n");
$node->restart;
is(decrypts($node, 'app'), 'one,two', 'the live database follows the rotations');

# The K1 dump restored on K3 alone: a clear mismatch, not garbage.
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump],
	'the K1 dump restores');
like(decrypts($node, 'restored'), qr/master key does not match/, 'without the keyring: named as a master key mismatch');
like(decrypts($node, 'restored'), qr/pg_kms\.master_keyring_directory/, 'the hint names the keyring');

# With K1 and K2 in the keyring it reads, in every session.
system("cp $k1 $ring/2019.key") == 0 or die;
system("cp $k2 $ring/2020.key") == 0 or die;
chmod(0600, "$ring/2019.key", "$ring/2020.key");
# a file with loose permissions is left out with a warning, the rest load
write_key("$ring/zz-loose.key", 5);
chmod(0644, "$ring/zz-loose.key");
set_keys($node, "pg_kms.master_key_file = '$k3'\npg_kms.master_keyring_directory = '$ring'\n");
$node->restart;
is(decrypts($node, 'restored'), 'one', 'the K1 dump reads through the keyring');
is(decrypts($node, 'app'), 'one,two', 'the live database still reads');
my $log = slurp_file($node->logfile);
like($log, qr/2 earlier master key\(s\) loaded from pg_kms\.master_keyring_directory/, 'the keyring is loaded and counted');
like($log, qr/keyring file "[^"]*zz-loose\.key" has group or world access permissions/, 'a loose key file is refused by name');
unlike($log, qr/[0-9a-f]{64}/, 'no key in the log');

# New keys in the restored database are wrapped under K3; the rotation
# without argument rewraps what the keyring unwrapped.
$node->safe_psql('restored', q{INSERT INTO t SELECT 2, kms_encrypt('alias/ring', 'two after restore')});
is($node->safe_psql('restored', 'SELECT kms_rotate_master_key()'), '2',
	'kms_rotate_master_key() rewraps the restored versions under the current key');
set_keys($node, "pg_kms.master_key_file = '$k3'\n");
$node->restart;
is(decrypts($node, 'restored'), 'one,two after restore', 'rotated: reads without the keyring');

# The base backup taken under K1 starts on K3 with the keyring and reads.
my $old = PostgreSQL::Test::Cluster->new('from_k1_backup');
$old->init_from_backup($node, 'under_k1');
set_keys($old, "pg_kms.master_key_file = '$k3'\npg_kms.master_keyring_directory = '$ring'\n");
$old->start;
is(decrypts($old, 'app'), 'one', 'a base backup from two rotations ago reads through the keyring');
is($old->safe_psql('app', 'SELECT kms_rotate_master_key()'), '2', 'and is rewrapped under the current key');
set_keys($old, "pg_kms.master_key_file = '$k3'\n");
$old->restart;
is(decrypts($old, 'app'), 'one', 'after which it reads on the current key alone');
# the backup's cluster record named K1; after the rotation it names K3
$old->safe_psql('postgres', 'CREATE DATABASE fresh');
is($old->safe_psql('fresh', q{CREATE EXTENSION pg_kms; SELECT kms_decrypt_text(kms_encrypt(kms_create_key(), 'new'))}),
	'new', 'new databases initialise under the current key');
$old->stop;

# pg_kms.previous_master_key_file is one more entry: a K1 dump reads with it.
$node->safe_psql('postgres', 'CREATE DATABASE restored2');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored2'), '-f', $dump],
	'the K1 dump restores again');
set_keys($node, "pg_kms.master_key_file = '$k3'\npg_kms.previous_master_key_file = '$k1'\n");
$node->restart;
is(decrypts($node, 'restored2'), 'one', 'previous_master_key_file still serves as an earlier key');

$node->stop;
done_testing();
