# Copyright (c) pg_kms authors
#
# 120_aws_provider.pl: pg_kms.provider = 'aws' against the loopback emulator
# (SigV4 checked by botocore there, TLS verified here): a key version's
# material is a GenerateDataKey data key, only its wrapped form is stored,
# and a cache miss costs exactly one Decrypt, never one per row: 1,000
# kms_decrypt calls on one version, through a restart with the cache cold,
# make one Decrypt per backend at most.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsAws;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $emu = aws_emulator_start("$dir/emu");
aws_env();

my $node = PostgreSQL::Test::Cluster->new('aws');
$node->init;
$node->append_conf('postgresql.conf', aws_conf($emu));
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE t AS SELECT kms_create_key(description => 'under aws') AS k;
	SELECT kms_create_alias('alias/aws', k) FROM t;
});
is(aws_calls($emu, 'TrentService.GenerateDataKey'), 1, 'CreateKey: one GenerateDataKey');
is($node->safe_psql('postgres',
	q{SELECT provider, get_byte(material, 0) FROM kms.key_version}),
	'aws|161', 'the version is marked aws; its wrapped form starts with 0xA1');

$node->safe_psql('postgres', q{
	CREATE TABLE d AS SELECT i, kms_encrypt('alias/aws', 'row ' || i) AS c
	FROM generate_series(1, 1000) i;
});
my $dec = aws_calls($emu, 'TrentService.Decrypt');
cmp_ok($dec, '<=', 1, "1,000 encryptions: at most one Decrypt ($dec)");

is($node->safe_psql('postgres',
	q{SELECT count(*) FROM d WHERE convert_from(kms_decrypt(c), 'UTF8') = 'row ' || i}),
	'1000', '1,000 rows decrypt');
is(aws_calls($emu, 'TrentService.Decrypt'), $dec, '1,000 decryptions in the same cache: no further Decrypt');

# restart: the cache is cold; each backend at most one Decrypt
$node->restart;
aws_ctl($emu, { op => 'reset_calls' });
for my $b (1 .. 3)
{
	is($node->safe_psql('postgres',
		q{SELECT count(*) FROM d WHERE convert_from(kms_decrypt(c), 'UTF8') = 'row ' || i}),
		'1000', "after restart, backend $b decrypts 1,000 rows");
}
my $after = aws_calls($emu, 'TrentService.Decrypt');
ok($after >= 1 && $after <= 3, "after restart: $after Decrypt call(s) for 3 backends x 1,000 rows");
is(aws_calls($emu, 'TrentService.GenerateDataKey'), 0, 'no GenerateDataKey for decryption');

# what we send: signed as botocore expects (the emulator verified it)
my @ok = grep { $_->{target} eq 'TrentService.Decrypt' && $_->{status} == 200 } @{ aws_requests($emu) };
ok(@ok, 'Decrypt answered 200 after botocore recomputed the signature');
is($ok[0]{signed_headers}, 'content-type;host;x-amz-date;x-amz-target',
	'signed headers as botocore signs them');

# a new version (rotation) is another GenerateDataKey
$node->safe_psql('postgres', q{SELECT kms_rotate_key_on_demand(k) FROM t});
is(aws_calls($emu, 'TrentService.GenerateDataKey'), 1, 'RotateKeyOnDemand: one GenerateDataKey');
is($node->safe_psql('postgres', q{SELECT kms_decrypt_text(kms_encrypt('alias/aws', 'v2'))}),
	'v2', 'the new version encrypts and decrypts');

$node->stop;
aws_emulator_stop($emu);
done_testing();
