
# Copyright (c) pg_kms authors
#
# 010_master_key_crash_restart.pl: the master key survives crash restarts.
#
# After a backend dies (kill -9) the postmaster re-initialises shared
# memory.  The master keys in use before (current and previous, also after
# a kms_rotate_master_key() since start) stay loaded from the postmaster's
# own copy: a key file removed or re-permissioned since start does not make
# keys unavailable until a full restart.  When nothing was loaded at start,
# a crash restart reads the settings again.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;

# Key files of 64 hex digits, mode 0600 (or as asked).
sub write_key
{
	my ($path, $seed, $mode) = @_;
	my $hex = join('', map { sprintf('%02x', ($_ * $seed + 3) % 256) } 0 .. 31);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod($mode // 0600, $path) or die "chmod $path: $!";
	return ($path, $hex);
}

my ($old, $old_hex) = write_key("$keydir/old.key", 19);
my ($new, $new_hex) = write_key("$keydir/new.key", 83);

my $node = PostgreSQL::Test::Cluster->new('crash_key');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
restart_after_crash = on
include_if_exists = 'pg_kms_key.conf'
});

sub set_keys
{
	my ($settings) = @_;
	my $conf = $node->data_dir . '/pg_kms_key.conf';
	open(my $fh, '>', $conf) or die;
	print $fh $settings;
	close($fh);
	return;
}

# kill -9 one backend and wait until the server accepts connections again
my $crashes = 0;
sub crash_restart
{
	my ($what) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset),
		"$what: the server re-initialises after a backend was killed");
	$node->poll_query_until('postgres', 'SELECT true') or die "no restart";
	eval { $bg->quit; };
	$crashes++;
	return $offset;
}

# Fresh sessions, so nothing is served from a backend's own cache.
sub decrypts
{
	my ($db, $what) = @_;
	my ($ret, $out, $err) = $node->psql($db,
		q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t});
	is($out, "data in $db", "$what: $db decrypts") or diag($err);
	return;
}

sub new_key_round_trip
{
	my ($db, $what) = @_;
	my ($ret, $out, $err) = $node->psql($db,
		q{CREATE TEMP TABLE nk AS SELECT kms_create_key() AS k;
		  SELECT kms_decrypt_text(kms_encrypt(k, 'fresh')) FROM nk});
	is($out, 'fresh', "$what: $db creates a key and uses it") or diag($err);
	return;
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
	});
}
$node->safe_psql('postgres', q{SELECT create_secret('crash/s', 'secret value')});

# 1. The key file is removed after start.
unlink $old or die;
my $offset = crash_restart('key file removed');
decrypts('postgres', 'key file removed, after crash restart');
decrypts('b', 'key file removed, after crash restart');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT get_secret('crash/s')});
is($out, 'secret value', 'key file removed, after crash restart: a secret reads') or diag($err);
new_key_round_trip('postgres', 'key file removed, after crash restart');
ok($node->log_contains(qr/master key in use before the crash restart stays loaded/, $offset),
	'the server log says the master key was kept');

# 2. The key file comes back readable by others (re-permissioned): the
# kept key is used, the file is not read.
write_key("$keydir/old.key", 19, 0644);
crash_restart('key file mode 0644');
decrypts('postgres', 'key file mode 0644, after crash restart');
new_key_round_trip('b', 'key file mode 0644, after crash restart');
chmod(0600, $old) or die;

# 3. kms_rotate_master_key() since start, then a crash: database postgres
# is under the new key, b still under the old one (now the previous key),
# while the settings still name the old key alone.
$node->restart;
decrypts('postgres', 'full restart, key file 0600 again');
is($node->safe_psql('postgres', "SELECT kms_rotate_master_key('$new')") > 0, 1,
	'rotation rewraps the versions of database postgres');
$offset = crash_restart('rotation, settings unchanged');
ok($node->log_contains(qr/master keys \(current and previous\) in use before the crash restart stay loaded/, $offset),
	'the server log says both keys were kept');
decrypts('postgres', 'rotated, after crash restart');
decrypts('b', 'not yet rotated, after crash restart');
new_key_round_trip('postgres', 'rotated, after crash restart');
($ret, $out, $err) = $node->psql('postgres', q{SELECT get_secret('crash/s')});
is($out, 'secret value', 'rotated, after crash restart: a secret reads') or diag($err);
# and again with neither key file left
unlink $old or die;
unlink $new or die;
crash_restart('rotation, then both key files removed');
decrypts('postgres', 'rotated, key files removed, after crash restart');
decrypts('b', 'not yet rotated, key files removed, after crash restart');
# the rotation can be finished in b with the kept previous key
($ret, $out, $err) = $node->psql('b', 'SELECT kms_rotate_master_key() > 0');
is($out, 't', 'rotated, after crash restart: database b rewraps from the kept previous key')
  or diag($err);
crash_restart('second crash after the rotation');
decrypts('b', 'second crash after the rotation');

# 4. A full restart reads the settings: with the files back, as configured.
write_key("$keydir/old.key", 19);
write_key("$keydir/new.key", 83);
set_keys("pg_kms.master_key_file = '$new'\npg_kms.previous_master_key_file = '$old'\n");
$node->restart;
decrypts('postgres', 'full restart on the new key');
decrypts('b', 'full restart on the new key');

# 5. Nothing loaded at start (no file yet): a crash restart reads the
# settings again and picks up the file written since.
unlink $new or die;
$node->restart;
($ret, $out, $err) = $node->psql('postgres', q{SELECT kms_decrypt(c) FROM t});
like($err, qr/master key is not available/, 'no key file at start: keys unavailable');
write_key("$keydir/new.key", 83);
crash_restart('key file written after a start without it');
decrypts('postgres', 'key file written after start, after crash restart');

# No key material in the server log.
my $log = slurp_file($node->logfile);
unlike($log, qr/$old_hex|$new_hex/i, 'no master key in the server log');

$node->stop;
done_testing();
