# Copyright (c) pg_kms authors
#
# 060_cloned_databases.pl: two databases of one cluster with the same keys
# (CREATE DATABASE b TEMPLATE a) never meet in the key cache (issue 11,
# finding 1).  Both rotate the same key id to version 2, each with its own
# material; each encrypts under its version 2; after a restart (empty
# cache) everything still decrypts in both databases, whichever database
# fills the cache first.  The shared cache used to match entries on key id
# and version only, so the second database encrypted with the first one's
# material and lost those rows at the restart.  The same for one dump
# restored into two databases.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 29, 3);

my $node = PostgreSQL::Test::Cluster->new('clones');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE a');
$node->safe_psql('a', q{
	CREATE EXTENSION pg_kms;
	CREATE TABLE keys AS SELECT kms_create_key(description => 'cloned') AS k;
	SELECT kms_create_alias('alias/clone', k) FROM keys;
	CREATE TABLE t (label text, c bytea);
	INSERT INTO t SELECT 'v1', kms_encrypt('alias/clone', 'v1 made in a');
});
$node->safe_psql('postgres', 'CREATE DATABASE b TEMPLATE a');
is($node->safe_psql('b', q{SELECT convert_from(kms_decrypt(c), 'UTF8') FROM t}),
	'v1 made in a', 'the clone decrypts what it inherited');

# Same key id, version 2 in both, different material.
for my $db ('a', 'b')
{
	$node->safe_psql($db, q{SELECT kms_rotate_key_on_demand('alias/clone')});
}
isnt($node->safe_psql('a', q{SELECT kms_describe_key('alias/clone')->>'CurrentKeyMaterialId'}),
	$node->safe_psql('b', q{SELECT kms_describe_key('alias/clone')->>'CurrentKeyMaterialId'}),
	'version 2 has its own material in each database');

# Encrypt in each (a fills the cache first), several rows from new sessions.
for my $round (1 .. 2)
{
	for my $db ('a', 'b')
	{
		$node->safe_psql($db,
			qq{INSERT INTO t SELECT 'v2', kms_encrypt('alias/clone', 'v2 made in $db round $round')});
	}
}

sub contents
{
	my ($db) = @_;
	my ($ret, $out, $err) = $node->psql($db,
		q{SELECT string_agg(convert_from(kms_decrypt(c), 'UTF8'), ', ' ORDER BY convert_from(kms_decrypt(c), 'UTF8')) FROM t});
	return $ret == 0 ? $out : "error: $err";
}

my %want = (
	a => 'v1 made in a, v2 made in a round 1, v2 made in a round 2',
	b => 'v1 made in a, v2 made in b round 1, v2 made in b round 2');

is(contents('a'), $want{a}, 'a decrypts everything before the restart');
is(contents('b'), $want{b}, 'b decrypts everything before the restart');

# Restart (the cache is empty) and read in both orders.
for my $order (['a', 'b'], ['b', 'a'])
{
	$node->restart;
	for my $db (@$order)
	{
		is(contents($db), $want{$db},
			"after a restart, reading $order->[0] first: $db decrypts everything");
	}
}

# Both databases' versions are cached side by side, not in turn.
$node->restart;
my $a_bg = $node->background_psql('a');
my $b_bg = $node->background_psql('b');
for (1 .. 3)
{
	is($a_bg->query_safe(q{SELECT count(*) FROM t WHERE kms_decrypt(c) IS NOT NULL}), '3',
		'a decrypts while b does');
	is($b_bg->query_safe(q{SELECT count(*) FROM t WHERE kms_decrypt(c) IS NOT NULL}), '3',
		'b decrypts while a does');
	$a_bg->query_safe(q{INSERT INTO t SELECT 'v2', kms_encrypt('alias/clone', 'more in a')});
	$b_bg->query_safe(q{INSERT INTO t SELECT 'v2', kms_encrypt('alias/clone', 'more in b')});
	$a_bg->query_safe(q{DELETE FROM t WHERE label = 'v2' AND convert_from(kms_decrypt(c), 'UTF8') = 'more in a'});
	$b_bg->query_safe(q{DELETE FROM t WHERE label = 'v2' AND convert_from(kms_decrypt(c), 'UTF8') = 'more in b'});
}
$a_bg->quit;
$b_bg->quit;

$node->restart;
is(contents('b'), $want{b}, 'b after the interleaved use and a restart');
is(contents('a'), $want{a}, 'a after the interleaved use and a restart');

# The same dump restored into two databases: the same, without a template.
my $dump = PostgreSQL::Test::Utils::tempdir . '/a.sql';
$node->command_ok(['pg_dump', '-d', $node->connstr('a'), '-f', $dump], 'dump of a');
for my $db ('c', 'd')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', $dump],
		"dump restored into $db");
	$node->safe_psql($db, q{SELECT kms_rotate_key_on_demand('alias/clone')});
}
for my $db ('c', 'd')
{
	$node->safe_psql($db, qq{INSERT INTO t SELECT 'v3', kms_encrypt('alias/clone', 'v3 made in $db')});
}
$want{$_} = $want{a} . ", v3 made in $_" for ('c', 'd');
$node->restart;
is(contents('d'), $want{d}, 'restored twice, after a restart: d (read first) decrypts everything');
is(contents('c'), $want{c}, 'restored twice, after a restart: c decrypts everything');

$node->stop;
done_testing();
