# Copyright (c) pg_kms authors
#
# 124_aws_migration.pl: local -> aws -> local with data.  Under
# pg_kms.provider = 'aws' with the old master key still configured, old
# versions keep decrypting (local unwrap) and kms_rotate_master_key()
# rewraps every local version under AWS KMS (Encrypt, same encryption
# context); after a restart without any master key everything decrypts
# through AWS.  Back: pg_kms.provider = 'local' with a master key,
# kms_rotate_master_key() rewraps every AWS version under it; with the
# emulator gone everything still decrypts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use PgKmsAws;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($dir, 7, 3);
my $emu = aws_emulator_start("$dir/emu");
aws_env();

my $node = PostgreSQL::Test::Cluster->new('migrate');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE k AS SELECT i, kms_create_key(description => 'k' || i) AS id FROM generate_series(1, 3) i;
	SELECT kms_rotate_key_on_demand(id) FROM k WHERE i = 1;
	CREATE TABLE d AS SELECT k.i, j, kms_encrypt(k.id, 'row ' || k.i || '/' || j) AS c
	  FROM k, generate_series(1, 20) j;
	CREATE FUNCTION check_all() RETURNS bigint LANGUAGE sql AS
	  $$ SELECT count(*) FROM d WHERE kms_decrypt_text(c) = 'row ' || i || '/' || j $$;
});
is($node->safe_psql('postgres', 'SELECT check_all()'), '60', 'local: 60 rows decrypt');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT provider, ',') FROM kms.key_version}),
	'local', 'local: 4 versions, all local');

# --- local -> aws
sub reconf
{
	my ($conf) = @_;
	$node->stop;
	my $pg = $node->data_dir . '/postgresql.conf';
	my $text = slurp_file($pg);
	$text =~ s/^(shared_preload_libraries|pg_kms\.)[^\n]*\n//mg;
	open(my $fh, '>', $pg) or die;
	print $fh $text, $conf;
	close $fh;
	$node->start;
	return;
}

reconf(aws_conf($emu) . "pg_kms.master_key_file = '$key'\n");
aws_ctl($emu, { op => 'reset_calls' });
is($node->safe_psql('postgres', 'SELECT check_all()'), '60',
	'aws with the master key still configured: local versions decrypt');
is(aws_calls($emu, 'TrentService.Decrypt'), 0, 'without any AWS call');
$node->safe_psql('postgres', q{CREATE TABLE k2 AS SELECT kms_create_key(description => 'new') AS id});
is($node->safe_psql('postgres', q{SELECT provider FROM kms.key_version v JOIN k2 ON v.key_id = k2.id::uuid}),
	'aws', 'a key created now is under AWS KMS');

is($node->safe_psql('postgres', 'SELECT kms_rotate_master_key()'), '4',
	'kms_rotate_master_key() under aws rewraps the 4 local versions');
is(aws_calls($emu, 'TrentService.Encrypt'), 4, 'with one Encrypt each');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT provider, ',') FROM kms.key_version}),
	'aws', 'every version is under AWS KMS');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.key_version WHERE get_byte(material, 0) <> 161}),
	'0', 'every stored form is the aws one');
is($node->safe_psql('postgres', 'SELECT kms_rotate_master_key()'), '0', 'a second run rewraps nothing');
is($node->safe_psql('postgres', q{SELECT provider FROM kms.master}), 'aws', 'kms.master says aws');

reconf(aws_conf($emu));    # no master key at all
aws_ctl($emu, { op => 'reset_calls' });
is($node->safe_psql('postgres', 'SELECT check_all()'), '60',
	'after a restart without a master key, all 60 rows decrypt through AWS');
cmp_ok(aws_calls($emu, 'TrentService.Decrypt'), '<=', 4, 'at most one Decrypt per version');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT kms_rotate_master_key('/nonexistent')});
like($err, qr/ValidationException: a master key file applies to the local provider only/,
	'a master key file under aws: refused');

# --- aws -> local
reconf("shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n"
	  . "pg_kms.aws_region = 'us-east-1'\n"
	  . "pg_kms.aws_endpoint_url = 'https://127.0.0.1:$emu->{port}'\n"
	  . "pg_kms.aws_ca_file = '$emu->{ca}'\n");
aws_ctl($emu, { op => 'reset_calls' });
is($node->safe_psql('postgres', 'SELECT check_all()'), '60',
	'local with AWS reachable: AWS-wrapped versions still decrypt');
is($node->safe_psql('postgres', 'SELECT kms_rotate_master_key()'), '5',
	'kms_rotate_master_key() under local rewraps the 5 AWS versions');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT provider, ',') FROM kms.key_version}),
	'local', 'every version is local again');
is($node->safe_psql('postgres', q{SELECT provider FROM kms.master}), 'local', 'kms.master says local');

aws_emulator_stop($emu);
$node->restart;
is($node->safe_psql('postgres', 'SELECT check_all()'), '60',
	'with AWS gone and a restart, all 60 rows decrypt under the master key');
is($node->safe_psql('postgres', q{SELECT kms_decrypt_text(kms_encrypt(id, 'x')) FROM k2}),
	'x', 'the key created under aws works under local');

$node->stop;
done_testing();
