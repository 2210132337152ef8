# Copyright (c) pg_kms authors
#
# 063_standby_master_key_rotation.pl: a streaming standby keeps decrypting
# through a master key rotation on the primary (issue 11, finding 7), in
# the documented order: give the standby the new master key (with the old
# one in its keyring) and restart it, then rotate on the primary.  A
# session loop on the standby decrypts throughout, with a one-second key
# cache so the replayed, rewrapped material is really unwrapped: zero
# failures.  A standby left on the old key alone fails with a clear error
# once the rotation is replayed.  Promoted, the standby initialises new
# databases under the new key (its copy of pg_kms_master_kcv, not
# replicated, still named the old one).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();

my $keydir = PostgreSQL::Test::Utils::tempdir;

sub write_key
{
	my ($path, $seed) = @_;
	my $hex = join('', map { sprintf('%02x', ($_ * $seed + 3) % 256) } 0 .. 31);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$hex\n";
	close($fh);
	chmod(0600, $path) or die "chmod $path: $!";
	return $path;
}

my $old = write_key("$keydir/old.key", 59);
my $new = write_key("$keydir/new.key", 97);
my $ring = "$keydir/standby_keyring";
mkdir($ring, 0700) or die;

sub set_keys
{
	my ($n, $settings) = @_;
	my $conf = $n->data_dir . '/pg_kms_key.conf';
	open(my $fh, '>', $conf) or die;
	print $fh $settings;
	close($fh);
}

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.rotation_jobs = off\ninclude_if_exists = 'pg_kms_key.conf'\n");
set_keys($primary, "pg_kms.master_key_file = '$old'\n");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE keys AS SELECT kms_create_key() AS k;
	SELECT kms_create_alias('alias/standby', k) FROM keys;
	SELECT kms_rotate_key_on_demand('alias/standby');
	CREATE TABLE t (id int, c bytea);
	INSERT INTO t SELECT i, kms_encrypt('alias/standby', 'row ' || i) FROM generate_series(1, 20) i;
});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "pg_kms.key_cache_ttl = 1\n");
$standby->start;
my $lagging = PostgreSQL::Test::Cluster->new('lagging');
$lagging->init_from_backup($primary, 'b', has_streaming => 1);
$lagging->append_conf('postgresql.conf', "pg_kms.key_cache_ttl = 1\n");
$lagging->start;
$primary->wait_for_catchup($standby);
$primary->wait_for_catchup($lagging);

my $q = q{SELECT count(*) FROM t WHERE convert_from(kms_decrypt(c), 'UTF8') = 'row ' || id};
is($standby->safe_psql('postgres', $q), '20', 'standby decrypts before');

# Step 1: the standby gets the new key, the old one in its keyring; restart.
system("cp $old $ring/old.key") == 0 or die;
chmod(0600, "$ring/old.key");
set_keys($standby, "pg_kms.master_key_file = '$new'\npg_kms.master_keyring_directory = '$ring'\n");
$standby->restart;
is($standby->safe_psql('postgres', $q), '20', 'standby on the new key decrypts through its keyring');

# The loop: one new session per query, each result logged.
my $results = "$keydir/loop.out";
my $stop = "$keydir/loop.stop";
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	open(my $out, '>>', $results) or POSIX::_exit(1);
	$out->autoflush(1);
	while (!-e $stop)
	{
		my ($ret, $o, $e) = $standby->psql('postgres', $q);
		print $out (($ret == 0 && $o eq '20') ? "ok\n" : "FAIL $ret $o $e\n");
		sleep(0.05);
	}
	close($out);
	POSIX::_exit(0);
}

sub loop_lines
{
	open(my $in, '<', $results) or return ();
	my @l = <$in>;
	close($in);
	return @l;
}

sub wait_for_more_ok
{
	my ($n) = @_;
	my $start = grep { /^ok/ } loop_lines();
	my $deadline = time + 60;
	sleep(0.1) while ((grep { /^ok/ } loop_lines()) < $start + $n && time < $deadline);
}

wait_for_more_ok(10);

# Step 2: rotate on the primary; the standby replays the rewrapped material.
is($primary->safe_psql('postgres', "SELECT kms_rotate_master_key('$new')"), '2',
	'primary rotates its master key');
$primary->wait_for_catchup($standby);
wait_for_more_ok(30);		# well past the standby's one-second cache
# material made after the rotation, under the new key
$primary->safe_psql('postgres', q{
	SELECT kms_rotate_key_on_demand('alias/standby');
	UPDATE t SET c = kms_encrypt('alias/standby', 'row ' || id) WHERE id % 2 = 0;
});
$primary->wait_for_catchup($standby);
wait_for_more_ok(30);

{ open(my $sf, '>', $stop) or die; close($sf); }
waitpid($pid, 0);
my @lines = loop_lines();
my @fails = grep { !/^ok/ } @lines;
cmp_ok(scalar(@lines), '>=', 70, 'the loop ran throughout (' . scalar(@lines) . ' queries)');
is(scalar(@fails), 0, 'zero failed decryptions on the standby through the rotation')
  or diag(join('', @fails[0 .. ($#fails < 4 ? $#fails : 4)]));

# A standby that did not get the new key: a clear error once replayed.
$primary->wait_for_catchup($lagging);
sleep(1.5);
my ($ret, $out, $err) = $lagging->psql('postgres', $q);
like($err, qr/KeyUnavailableException: the master key does not match the one that wrapped the stored key material/,
	'reverse order: the standby without the new key names the mismatch');

# Promoted, the standby initialises new databases under the new key.
my $kcvfile = $standby->data_dir . '/pg_kms_master_kcv';
my $before = -e $kcvfile ? slurp_file($kcvfile) : '';
$standby->promote;
$standby->safe_psql('postgres', 'CREATE DATABASE after_promotion');
is($standby->safe_psql('after_promotion',
		q{CREATE EXTENSION pg_kms; SELECT kms_decrypt_text(kms_encrypt(kms_create_key(), 'new db'))}),
	'new db', 'promoted standby initialises a new database');
isnt(slurp_file($kcvfile), $before, 'its cluster record now names the new key');
is($standby->safe_psql('postgres', $q), '20', 'and still decrypts the replicated data');

$lagging->stop;
$standby->stop;
$primary->stop;
done_testing();
