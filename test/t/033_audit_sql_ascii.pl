# Copyright (c) pg_kms authors
#
# 033_audit_sql_ascii.pl: audit log lines are valid UTF-8 whatever the
# caller's database encoding (issue 9, finding 12).  In a SQL_ASCII
# database a key description, a secret name and a role name can hold any
# bytes; the "pg_kms audit:" line of each event must still decode as UTF-8
# and parse as JSON, with the same '?' replacement the kms.audit row gets
# (one sanitiser for both).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use Encode qw(decode FB_CROAK);
use JSON::PP;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 31, 3);

my $node = PostgreSQL::Test::Cluster->new('sqlascii');
$node->init(extra => ['--encoding=UTF8', '--locale=C']);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
pg_kms.audit_aggregate_interval = 0
});
$node->start;

# The calls come from a SQL_ASCII database, whose own trail gets them
# (pg_kms 1.2: every database has its own; strings are made valid UTF-8 there).
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');
$node->safe_psql('postgres',
	q{CREATE DATABASE tap_ascii ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'});
is($node->safe_psql('tap_ascii', 'SHOW server_encoding'), 'SQL_ASCII', 'a SQL_ASCII database');
$node->safe_psql('tap_ascii', 'CREATE EXTENSION pg_kms');

my $offset = -s $node->logfile;
# Bytes that are not UTF-8: a key description, a secret name (a denied
# read names it as the caller gave it), and a role name.
$node->safe_psql('tap_ascii', q{
	SELECT kms_create_key(description => E'tap caf\xe9 \xff\xfe end') IS NOT NULL;
	DO $$ BEGIN EXECUTE format('CREATE ROLE %I', E'tap_r\xff'); END $$;
});
my ($ret, $out, $err) = $node->psql('tap_ascii', q{
	DO $$ BEGIN EXECUTE format('SET ROLE %I', E'tap_r\xff'); END $$;
	SELECT get_secret(E'tap/\xff\xfe/secret');
});
like($err, qr/AccessDeniedException|ResourceNotFoundException/, 'the read is refused');

ok($node->poll_query_until('tap_ascii', q{SELECT count(*) = 2 FROM kms.audit
	WHERE database = 'tap_ascii' AND operation IN ('CreateKey', 'GetSecretValue')}),
	'both events reach kms.audit');

# Every audit line of the log decodes as UTF-8 and parses as JSON.
my $raw;
{
	open(my $fh, '<:raw', $node->logfile) or die "could not read log: $!";
	local $/;
	$raw = <$fh>;
	close $fh;
}
$raw = substr($raw, $offset);
my @lines = grep { /pg_kms audit: / } split /\n/, $raw;
my (%ev, $bad_utf8, $bad_json);
$bad_utf8 = $bad_json = 0;
for my $line (@lines)
{
	my ($json) = $line =~ /pg_kms audit: (\{.*\})$/;
	my $text = eval { decode('UTF-8', $json, FB_CROAK) };
	if (!defined $text)
	{
		$bad_utf8++;
		next;
	}
	my $e = eval { JSON::PP->new->decode($text) };
	if (!defined $e)
	{
		$bad_json++;
		next;
	}
	$ev{ $e->{operation} } = $e if $e->{database} eq 'tap_ascii';
}
ok(@lines >= 2, 'audit lines were logged (' . scalar(@lines) . ')');
is($bad_utf8, 0, 'every audit log line is valid UTF-8');
is($bad_json, 0, 'every audit log line parses as JSON');

ok(defined $ev{CreateKey}, 'the CreateKey line is there');
is($ev{CreateKey}{params}{description}, 'tap caf? ?? end', 'the description: non-UTF-8 bytes became ?');
ok(defined $ev{GetSecretValue}, 'the GetSecretValue line is there');
is($ev{GetSecretValue}{resource}, 'tap/??/secret', 'the secret name as given, sanitised');
is($ev{GetSecretValue}{db_user}, 'tap_r?', 'the role name, sanitised');

# The row got the same text as the log line: one sanitiser for both.
is($node->safe_psql('tap_ascii', q{SELECT parameters ->> 'description' FROM kms.audit
	WHERE database = 'tap_ascii' AND operation = 'CreateKey'}),
	$ev{CreateKey}{params}{description}, 'kms.audit row and log line agree (description)');
is($node->safe_psql('tap_ascii', q{SELECT resource_id || ' ' || db_user FROM kms.audit
	WHERE database = 'tap_ascii' AND operation = 'GetSecretValue'}),
	"$ev{GetSecretValue}{resource} $ev{GetSecretValue}{db_user}",
	'kms.audit row and log line agree (secret name, role)');
is($node->safe_psql('tap_ascii', 'SELECT kms_audit_verify() IS NULL'), 't', 'chain intact');

$node->stop;
done_testing();
