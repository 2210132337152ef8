
# Copyright (c) pg_kms authors
#
# 001_master_key.pl: the local provider's master key.
#
# A missing or bad master key never stops the server from starting; the
# calls that need the key fail with an error naming the setting.  A key that
# does not match the one the material was wrapped with is detected (key check
# value) and reported, never answered with garbage.  The key can come from a
# file (pg_kms.master_key_file) or a command (pg_kms.master_key_command).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Key files live outside every data directory.
my $keydir = PostgreSQL::Test::Utils::tempdir;

sub write_file_mode
{
	my ($path, $content, $mode) = @_;
	open(my $fh, '>', $path) or die "could not write $path: $!";
	binmode $fh;
	print $fh $content;
	close($fh) or die "could not close $path: $!";
	chmod($mode, $path) or die "could not chmod $path: $!";
	return $path;
}

my $key_a_hex = join('', map { sprintf('%02x', ($_ * 37 + 11) % 256) } 0 .. 31);
my $key_b_raw = join('', map { chr(($_ * 53 + 200) % 256) } 0 .. 31);

my $key_a = write_file_mode("$keydir/a.key", "$key_a_hex\n", 0600);    # hex + newline
my $key_b = write_file_mode("$keydir/b.key", $key_b_raw, 0600);        # 32 raw bytes
my $short = write_file_mode("$keydir/short.key", '0123456789', 0600);  # 10 bytes
my $open  = write_file_mode("$keydir/open.key", "$key_a_hex\n", 0644); # too open
my $absent = "$keydir/does-not-exist.key";

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "include_if_exists = 'pg_kms_key.conf'\n");

# Rewrite the pg_kms settings (PGC_POSTMASTER) and restart.  The start must
# succeed whatever the key is.
sub restart_with
{
	my ($settings, $what) = @_;
	my $conf = $node->data_dir . '/pg_kms_key.conf';
	write_file_mode($conf, $settings, 0600);
	$node->stop('fast', fail_ok => 1);
	my $started = $node->start(fail_ok => 1);
	ok($started, "server starts with $what");
	return $started;
}

# Run SQL; returns (exit code, stdout, stderr).
sub run_sql
{
	my ($sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql);
	return ($ret, $stdout // '', $stderr // '');
}

# The call needing the master key fails, and the error says why.
sub fails_like
{
	my ($sql, $re, $name) = @_;
	my ($ret, $stdout, $stderr) = run_sql($sql);
	isnt($ret, 0, "$name: fails");
	like($stderr, $re, "$name: error message");
	return $stderr;
}

my ($ret, $stdout, $stderr);

# (a) No master key setting at all.
restart_with('', 'no master key setting');
($ret, $stdout, $stderr) = run_sql('CREATE EXTENSION pg_kms');
is($ret, 0, 'CREATE EXTENSION pg_kms works without a master key')
  or diag($stderr);
fails_like('SELECT kms_create_key()', qr/pg_kms\.master_key_file/,
	'no master key: kms_create_key');

# (b) The file does not exist.
restart_with("pg_kms.master_key_file = '$absent'\n", 'a missing key file');
fails_like('SELECT kms_create_key()', qr/pg_kms\.master_key_file/,
	'missing key file: kms_create_key');

# (c) Wrong size (10 bytes).
restart_with("pg_kms.master_key_file = '$short'\n", 'a 10-byte key file');
fails_like('SELECT kms_create_key()', qr/pg_kms\.master_key_file/,
	'10-byte key file: kms_create_key');

# (d) Readable by others (0644).
restart_with("pg_kms.master_key_file = '$open'\n", 'a key file of mode 0644');
$stderr = fails_like('SELECT kms_create_key()', qr/pg_kms\.master_key_file/,
	'key file of mode 0644: kms_create_key');
like($stderr, qr/permission|mode|0600|group or world/i,
	'key file of mode 0644: the error is about its permissions');

# (d2) Inside the data directory.
my $inside = write_file_mode($node->data_dir . '/inside.key', "$key_a_hex\n", 0600);
restart_with("pg_kms.master_key_file = '$inside'\n", 'a key file inside the data directory');
fails_like('SELECT kms_create_key()', qr/pg_kms\.master_key_file/,
	'key file inside the data directory: kms_create_key');
unlink $inside;

# (e) A good key: create a key and encrypt under it.
restart_with("pg_kms.master_key_file = '$key_a'\n", 'key A (hex)');
($ret, $stdout, $stderr) = run_sql(
	"SELECT kms_create_key(description => 'tap master key')");
is($ret, 0, 'key A: kms_create_key works') or diag($stderr);
my $key_id = $stdout;
like($key_id, qr/^[0-9a-f-]{36}$/, 'key A: kms_create_key returns a key id');

($ret, $stdout, $stderr) = run_sql(
	"CREATE TABLE ct AS SELECT kms_encrypt('$key_id', 'x') AS c; "
	  . "SELECT kms_decrypt_text(c) FROM ct");
is($ret, 0, 'key A: encrypt and decrypt work') or diag($stderr);
is($stdout, 'x', 'key A: decrypt returns the plaintext');

# A different, well-formed key (32 raw bytes): the server starts, but the
# material wrapped under key A is not unwrapped with it.
restart_with("pg_kms.master_key_file = '$key_b'\n", 'a different key B (raw)');
($ret, $stdout, $stderr) = run_sql('SELECT kms_decrypt_text(c) FROM ct');
isnt($ret, 0, 'key B: decrypt of data under key A fails');
like($stderr, qr/master key/i, 'key B: the error says the master key does not match');
is($stdout, '', 'key B: decrypt returns nothing');
($ret, $stdout, $stderr) = run_sql('SELECT kms_decrypt(c) FROM ct');
isnt($ret, 0, 'key B: kms_decrypt fails too');
is($stdout, '', 'key B: kms_decrypt returns nothing');

# Back to key A: the data is readable again.
restart_with("pg_kms.master_key_file = '$key_a'\n", 'key A again');
($ret, $stdout, $stderr) = run_sql('SELECT kms_decrypt_text(c) FROM ct');
is($ret, 0, 'key A again: decrypt works') or diag($stderr);
is($stdout, 'x', 'key A again: decrypt returns the plaintext');

# (f) The same key from a command.
restart_with("pg_kms.master_key_command = 'cat $key_a'\n", 'master_key_command');
($ret, $stdout, $stderr) = run_sql('SELECT kms_decrypt_text(c) FROM ct');
is($ret, 0, 'master_key_command: decrypt works') or diag($stderr);
is($stdout, 'x', 'master_key_command: decrypt returns the plaintext');
($ret, $stdout, $stderr) = run_sql(
	"SELECT kms_decrypt_text(kms_encrypt('$key_id', 'y'))");
is($ret, 0, 'master_key_command: encrypt works') or diag($stderr);
is($stdout, 'y', 'master_key_command: round trip');

# A command that fails: the server starts, the error names the setting.
restart_with("pg_kms.master_key_command = 'exit 3'\n", 'a failing master_key_command');
fails_like('SELECT kms_decrypt_text(c) FROM ct', qr/pg_kms\.master_key_command/,
	'failing master_key_command: decrypt');

# Nothing of the key went to the server log.
my $log = slurp_file($node->logfile);
unlike($log, qr/$key_a_hex/i, 'the master key (hex) is not in the server log');

$node->stop;
done_testing();
