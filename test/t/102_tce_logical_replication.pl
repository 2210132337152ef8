# Copyright (c) pg_kms authors
#
# 102_tce_logical_replication.pl: logical replication of encrypted columns
# (issue 13: "logical replication in text mode never shows plaintext").
#
# The publisher's walsender outputs values in the ciphertext form
# (pg_kms.column_output 'auto'), in the initial table copy and in the
# change stream, in text mode and in binary mode.  A subscriber whose
# pg_kms catalog was restored from the publisher's (same keys, same master
# key) loads them as they are: the same bytes, readable, found by
# deterministic equality.  A subscriber column of another key refuses them
# (IncorrectKeyException in its log): importing never re-encrypts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 47, 13);
my $tmp = PostgreSQL::Test::Utils::tempdir;

my ($pub, $sub);
for my $name (qw(tce_pub tce_sub))
{
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
log_statement = 'none'
});
	$node->start;
	if ($name eq 'tce_pub') { $pub = $node } else { $sub = $node }
}

$pub->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT kms_create_alias('alias/tap/lr', kms_create_key());
	SELECT kms_create_alias('alias/tap/other', kms_create_key());
	CREATE TABLE t_text (id int PRIMARY KEY, v encrypted_text('alias/tap/lr'),
		d encrypted_text('alias/tap/lr', 'deterministic'), b encrypted_bytea('alias/tap/lr'));
	CREATE TABLE t_bin (LIKE t_text INCLUDING ALL);
	CREATE TABLE t_other (id int PRIMARY KEY, v encrypted_text('alias/tap/lr'));
	INSERT INTO t_text VALUES (1, 'lrMARKcopy', 'lrMARKcopy-d', '\x01');
	INSERT INTO t_bin VALUES (1, 'lrMARKbincopy', 'lrMARKbincopy-d', '\x01');
});
# the subscriber gets the publisher's catalog (keys included) and schema
# from a dump; the tables are emptied for the subscription's initial copy
$pub->command_ok(['pg_dump', '-d', $pub->connstr('postgres'), '-f', "$tmp/pub.sql"], 'dump of the publisher');
$sub->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $sub->connstr('postgres'), '-f', "$tmp/pub.sql"],
	'restored on the subscriber');
$sub->safe_psql('postgres', 'TRUNCATE t_text, t_bin, t_other');
# a subscriber column of another key
$sub->safe_psql('postgres', q{ALTER TABLE t_other ALTER COLUMN v TYPE encrypted_text('alias/tap/other')});

$pub->safe_psql('postgres', q{
	CREATE PUBLICATION p_text FOR TABLE t_text;
	CREATE PUBLICATION p_bin FOR TABLE t_bin;
	CREATE PUBLICATION p_other FOR TABLE t_other;
});
my $conn = $pub->connstr('postgres') =~ s/'/''/gr;
$sub->safe_psql('postgres', qq{
	CREATE SUBSCRIPTION s_text CONNECTION '$conn' PUBLICATION p_text;
	CREATE SUBSCRIPTION s_bin CONNECTION '$conn' PUBLICATION p_bin WITH (binary = true);
});
$sub->wait_for_subscription_sync($pub, 's_text');
$sub->wait_for_subscription_sync($pub, 's_bin');

$pub->safe_psql('postgres', q{
	INSERT INTO t_text VALUES (2, 'lrMARKstream', 'lrMARKstream-d', '\x02');
	UPDATE t_text SET v = 'lrMARKupdate' WHERE id = 1;
	INSERT INTO t_bin VALUES (2, 'lrMARKbinstream', 'lrMARKbinstream-d', '\x02');
});
$pub->wait_for_catchup('s_text');
$pub->wait_for_catchup('s_bin');

my $fp = q{SELECT md5(string_agg(encode(kms_column_ciphertext(v), 'hex') || encode(kms_column_ciphertext(d), 'hex')
	|| encode(kms_column_ciphertext(b), 'hex'), ',' ORDER BY id)) FROM };
for my $t (qw(t_text t_bin))
{
	is($sub->safe_psql('postgres', $fp . $t), $pub->safe_psql('postgres', $fp . $t),
		"$t: the subscriber holds the publisher's bytes (no re-encryption)");
}
is($sub->safe_psql('postgres', q{SELECT string_agg(v::text, ',' ORDER BY id) FROM t_text}),
	'lrMARKupdate,lrMARKstream', 'text mode: copy, insert and update arrive and read back');
is($sub->safe_psql('postgres', q{SELECT string_agg(v::text, ',' ORDER BY id) FROM t_bin}),
	'lrMARKbincopy,lrMARKbinstream', 'binary mode: the same');
is($sub->safe_psql('postgres', q{SELECT id FROM t_text WHERE d = 'lrMARKstream-d'}), '2',
	'deterministic lookups on the subscriber');

# a column of another key on the subscriber: refused, not re-encrypted
my $offset = -s $sub->logfile;
$pub->safe_psql('postgres', q{INSERT INTO t_other VALUES (1, 'lrMARKother')});
$sub->safe_psql('postgres', qq{CREATE SUBSCRIPTION s_other CONNECTION '$conn' PUBLICATION p_other});
ok($sub->wait_for_log(qr/IncorrectKeyException/, $offset), 'a subscriber column of another key refuses the value');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM t_other'), '0', 'and stores nothing');
$sub->safe_psql('postgres', 'ALTER SUBSCRIPTION s_other DISABLE');

# no plaintext in either server's log (the walsender's included; statement
# logging is off: a literal in a logged statement is the client's own text)
for my $node ($pub, $sub)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/lrMARK/, 'no plaintext in the log of ' . $node->name);
}

$sub->stop;
$pub->stop;
done_testing();
