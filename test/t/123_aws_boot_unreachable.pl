# Copyright (c) pg_kms authors
#
# 123_aws_boot_unreachable.pl: the aws provider never blocks postmaster
# start.  With the endpoint unreachable at boot the server starts at once,
# calls that need AWS fail with a clear KeyUnavailableException within the
# connect timeout, and they work by themselves as soon as the endpoint
# answers (no restart, no reload).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsAws;

my $dir = PostgreSQL::Test::Utils::tempdir;
# a port nothing listens on yet; the emulator comes up there later
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $emu = { ca => "$dir/emu/ca/ca.pem", port => $port };
mkdir "$dir/emu";
system('bash', "$FindBin::RealBin/../aws/make_ca.sh", "$dir/emu/ca") == 0 or die;
aws_env();

my $node = PostgreSQL::Test::Cluster->new('boot');
$node->init;
$node->append_conf('postgresql.conf', aws_conf($emu)
	  . "pg_kms.aws_connect_timeout = '1s'\n");
my $t0 = time;
$node->start;
cmp_ok(time - $t0, '<', 30, 'the server starts with the AWS endpoint unreachable');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');

$t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT kms_create_key()});
my $secs = time - $t0;
like($err, qr/ERROR:  KeyUnavailableException: AWS call TrentService.GenerateDataKey failed: .*(connect|Connection refused)/i,
	'unreachable endpoint: KeyUnavailableException naming the connection failure');
like($err, qr/Attempts: 3\./, 'connection failures are retried');
cmp_ok($secs, '<', 15, "fails within the timeouts ($secs s)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM kms.key}), '0', 'nothing was created');

# the endpoint comes up: the next call works, nothing restarted
$emu = aws_emulator_start("$dir/emu", $port);
my $k = $node->safe_psql('postgres', q{SELECT kms_create_key()});
like($k, qr/^[0-9a-f-]{36}$/, 'recovers by itself once the endpoint answers');
is($node->safe_psql('postgres', qq{SELECT kms_decrypt_text(kms_encrypt('$k', 'back'))}),
	'back', 'encrypts and decrypts');

# it goes away again while the server runs, and comes back
aws_emulator_stop($emu);
$node->restart;    # a cold cache: the next decryption needs AWS
($ret, $out, $err) = $node->psql('postgres', qq{SELECT kms_describe_key('$k')->>'KeyState'});
is($out, 'Enabled', 'describing a key needs no AWS call');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT kms_generate_data_key('$k', key_spec => 'AES_256')});
like($err, qr/KeyUnavailableException: AWS call TrentService.Decrypt failed/,
	'a cold cache with AWS gone: KeyUnavailableException');
$emu = aws_emulator_start("$dir/emu", $port);
($ret, $out, $err) = $node->psql('postgres', qq{SELECT kms_generate_data_key('$k', key_spec => 'AES_256') IS NOT NULL});
is($out, 't', 'and works again when AWS is back');

$node->stop;
aws_emulator_stop($emu);
done_testing();
