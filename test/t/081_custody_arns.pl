# Copyright (c) pg_kms authors
#
# 081_custody_arns.pl: ARNs stable across clusters (issue 11, finding 5).
# The account id of ARNs is kept with the data (kms.account): a dump
# restored into a fresh database of the same cluster, or of another cluster
# (another system identifier, the same master key), shows the ARNs saved
# before, resolves them, decrypts everything, and gives new keys the same
# account id.  A fresh CREATE EXTENSION stores the id 1.1 derived.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 43, 9);
my $dumpdir = PostgreSQL::Test::Utils::tempdir;

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'pg_kms'\n"
		  . "pg_kms.master_key_file = '$keyfile'\n"
		  . "pg_kms.rotation_jobs = off\n");
	$node->start;
	return $node;
}

my $a = new_node('custody_a');
my $b = new_node('custody_b');

# --- the source database
$a->safe_psql('postgres', 'CREATE DATABASE app');
$a->safe_psql('app', 'CREATE EXTENSION pg_kms');
my $key = $a->safe_psql('app', q{SELECT kms_create_key(description => 'app key')});
$a->safe_psql('app', qq{
SELECT kms_create_alias('alias/app', '$key');
CREATE TABLE app_data AS SELECT kms_encrypt('alias/app', convert_to('row one', 'UTF8')) AS c;
SELECT create_secret('app/db', 'app-password');
});
my %saved = (
	account => $a->safe_psql('app', qq{SELECT kms_describe_key('$key')->>'AWSAccountId'}),
	key_arn => $a->safe_psql('app', qq{SELECT kms_describe_key('$key')->>'Arn'}),
	secret_arn => $a->safe_psql('app', q{SELECT describe_secret('app/db')->>'ARN'}),);
like($saved{key_arn}, qr/^arn:aws:kms:local:\d{12}:key\/\Q$key\E$/, 'the source key ARN');

my $custom = "$dumpdir/app.dump";
$a->command_ok([ 'pg_dump', '-Fc', '-f', $custom, '-d', $a->connstr('app') ], 'pg_dump -Fc');

# What a restored database must show: the saved ARNs, resolving, and data.
sub check_restored
{
	my ($node, $db, $what) = @_;
	is($node->safe_psql($db, qq{SELECT kms_describe_key('$key')->>'Arn'}), $saved{key_arn},
		"$what: the key ARN is the one saved before");
	is($node->safe_psql($db, qq{SELECT kms_describe_key('$saved{key_arn}')->>'KeyId'}), $key,
		"$what: the saved key ARN resolves");
	is($node->safe_psql($db, q{SELECT describe_secret('app/db')->>'ARN'}), $saved{secret_arn},
		"$what: the secret ARN is the one saved before");
	is($node->safe_psql($db, qq{SELECT get_secret_value('$saved{secret_arn}')->>'SecretString'}), 'app-password',
		"$what: the secret reads by its saved ARN");
	is($node->safe_psql($db, q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM app_data}), 'row one',
		"$what: the data decrypts");
	my $new = $node->safe_psql($db, q{SELECT kms_create_key()});
	is($node->safe_psql($db, qq{SELECT kms_describe_key('$new')->>'AWSAccountId'}), $saved{account},
		"$what: a new key gets the saved account id too");
	return;
}

# --- into a fresh database of the same cluster
$a->safe_psql('postgres', 'CREATE DATABASE copy TEMPLATE template0');
$a->command_ok([ 'pg_restore', '--single-transaction', '-d', $a->connstr('copy'), $custom ],
	'pg_restore into a fresh database of the same cluster');
check_restored($a, 'copy', 'same cluster');

# --- into another cluster: another system identifier
my $derived_b = $b->safe_psql('postgres',
	q{SELECT lpad(((system_identifier::numeric + CASE WHEN system_identifier < 0 THEN 18446744073709551616 ELSE 0 END) % 1000000000000)::text, 12, '0') FROM pg_control_system()});
isnt($derived_b, $saved{account}, 'the other cluster derives another account id');
$b->safe_psql('postgres', 'CREATE DATABASE restored TEMPLATE template0');
$b->command_ok([ 'pg_restore', '--single-transaction', '-d', $b->connstr('restored'), $custom ],
	'pg_restore into another cluster');
check_restored($b, 'restored', 'another cluster');
# and a fresh CREATE EXTENSION there took its own, derived id
$b->safe_psql('postgres', 'CREATE DATABASE fresh_b');
$b->safe_psql('fresh_b', 'CREATE EXTENSION pg_kms');
is($b->safe_psql('fresh_b', q{SELECT account_id FROM kms.account}), $derived_b,
	'CREATE EXTENSION stores the id derived from the system identifier');

$a->stop;
$b->stop;
done_testing();
