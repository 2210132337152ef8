# Copyright (c) pg_kms authors
#
# 082_custody_restore_used.pl: a restore into a database that already uses
# pg_kms (issue 11, finding 10) -- here with the default secrets alias and
# key created on first use of secrets, which collided with the dump's in the
# COPY of kms.alias so that every alias was lost.  It fails before it
# changes anything of pg_kms, with a message naming the conflict and the
# fix: with pg_restore --single-transaction (the runbook's way) nothing at
# all changes; without it, or with a plain dump through psql, pg_kms's
# tables are left exactly as they were.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 47, 3);
my $dumpdir = PostgreSQL::Test::Utils::tempdir;

my $b = PostgreSQL::Test::Cluster->new('custody_used');
$b->init;
$b->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$b->start;

# --- the source database
$b->safe_psql('postgres', 'CREATE DATABASE app');
$b->safe_psql('app', 'CREATE EXTENSION pg_kms');
my $key = $b->safe_psql('app', q{SELECT kms_create_key(description => 'app key')});
$b->safe_psql('app', qq{
SELECT kms_create_alias('alias/app', '$key');
CREATE TABLE app_data AS SELECT kms_encrypt('alias/app', convert_to('row one', 'UTF8')) AS c;
SELECT create_secret('app/db', 'app-password');
});
# the dump carries the source's audit trail (kms.audit_log is dumped)
ok($b->poll_query_until('app', q{SELECT count(*) > 0 FROM kms.audit_log WHERE database = 'app'}),
	'the source database has audit rows to dump');
my $custom = "$dumpdir/app.dump";
my $plain = "$dumpdir/app.sql";
$b->command_ok([ 'pg_dump', '-Fc', '-f', $custom, '-d', $b->connstr('app') ], 'pg_dump -Fc');
$b->command_ok([ 'pg_dump', '-f', $plain, '-d', $b->connstr('app') ], 'pg_dump (plain)');

# --- into databases that already use pg_kms
sub kms_state
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
SELECT (SELECT string_agg(key_id::text || key_state, ',' ORDER BY key_id) FROM kms.key) || '|' ||
       (SELECT string_agg(alias_name || key_id::text, ',' ORDER BY alias_name) FROM kms.alias) || '|' ||
       (SELECT string_agg(name, ',' ORDER BY name) FROM kms.secret) || '|' ||
       (SELECT count(*) FROM kms.secret_version) || '|' ||
       (SELECT count(*) FROM kms.key_version) || '|' ||
       (SELECT count(*) FROM kms.grants)}) . '|' . ($node->safe_psql($db, q{SELECT to_regclass('kms.account') IS NOT NULL}) eq 't'
		? $node->safe_psql($db, q{SELECT account_id FROM kms.account}) : '');
}

foreach my $db ('used1', 'used2', 'used3')
{
	$b->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE template0");
	$b->safe_psql($db, q{CREATE EXTENSION pg_kms; SELECT create_secret('own/secret', 'own-value')});
}

my %before = map { $_ => kms_state($b, $_) } ('used1', 'used2', 'used3');
like($before{used1}, qr/^[^|]+\|alias\/pg_kms\/secrets/, 'a used database has the default secrets alias of its own');

$b->command_fails_like([ 'pg_restore', '--single-transaction', '-d', $b->connstr('used1'), $custom ],
	qr/KMSInvalidStateException: cannot restore pg_kms data into a database that already uses pg_kms \(table kms\.account\)/,
	'pg_restore --single-transaction into a used database: refused at kms.account');
is(kms_state($b, 'used1'), $before{used1}, '--single-transaction: pg_kms is as it was');
is($b->safe_psql('used1', q{SELECT count(*) FROM pg_class WHERE relname = 'app_data'}), '0',
	'--single-transaction: nothing else was restored either');
is($b->safe_psql('used1', q{SELECT get_secret_value('own/secret')->>'SecretString'}), 'own-value',
	'the database\'s own secret still reads');

my $stderr;
IPC::Run::run([ 'pg_restore', '-d', $b->connstr('used2'), $custom ], '>', \my $stdout2, '2>', \$stderr);
like($stderr, qr/cannot restore pg_kms data into a database that already uses pg_kms \(table kms\.account\)/,
	'pg_restore without --single-transaction: refused at kms.account');
like($stderr, qr/HINT:  Restore into a new database created from template0/, 'the hint names the fix');
unlike($stderr, qr/duplicate key value/, 'no COPY got as far as a duplicate key');
is(kms_state($b, 'used2'), $before{used2}, 'without --single-transaction: pg_kms\'s tables are as they were');

IPC::Run::run([ 'psql', '-X', '-d', $b->connstr('used3'), '-f', $plain ], '>', \my $stdout3, '2>', \$stderr);
like($stderr, qr/cannot restore pg_kms data into a database that already uses pg_kms/, 'a plain dump through psql: refused');
is(kms_state($b, 'used3'), $before{used3}, 'a plain dump through psql: pg_kms\'s tables are as they were');

# The audit trail too: no row of the dump's trail entered a used database,
# and each database's own chain still verifies.
foreach my $db ('used1', 'used2', 'used3')
{
	is($b->safe_psql($db, q{SELECT count(*) FROM kms.audit_log WHERE database = 'app'}), '0',
		"$db: no audit row of the dump was restored into its trail");
	is($b->safe_psql($db, q{SELECT kms_audit_verify() IS NULL}), 't', "$db: its audit chain verifies");
}
like($stderr, qr/table kms\.audit_log/, 'a plain dump through psql: kms.audit_log refused too');

$b->stop;
done_testing();
