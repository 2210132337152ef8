# Copyright (c) pg_kms authors
#
# 100_tce_byte_scan.pl: values of encrypted_text / encrypted_bytea columns
# never reach the disk, the WAL, a streaming standby, the server log or a
# pg_dump file in plaintext (issue 13, "Proof").
#
# A marked value is written through every write path (literals, INSERT ...
# SELECT, UPDATE, COPY text/csv/binary, PREPARE/EXECUTE typed and untyped,
# ON CONFLICT, MERGE, a trigger, PL/pgSQL, CTAS, restore of a plaintext
# dump), and an error path (a unique violation on a deterministic column, a
# NOT NULL violation, a COPY error) is taken with marked values.  Then
# CHECKPOINT and a WAL switch; every file of the primary's and the standby's
# data directories and both server logs are searched byte for byte, and so
# are pg_dump files (plain, --inserts, directory format without
# compression): no marker.  A positive control (a marker in a text column)
# shows the search finds what is there.

use strict;
use warnings;

use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 41, 3);
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $bindir = PostgreSQL::Test::Utils::tempdir;

my $primary = PostgreSQL::Test::Cluster->new('tce_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
log_statement = 'none'
log_min_messages = debug1
log_min_error_statement = error
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION pg_kms');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('tce_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "log_min_messages = debug1\n");
$standby->start;

my $run = sprintf('%08x%04x', time(), $$ & 0xffff);
my @paths = qw(literal insselect update copytext copycsv copybin prepuntyped preptyped
  preptext onconflict merge trigger plpgsql ctas restore dupkey notnull copyerr
  bytea detlit);
my %m = map { $_ => "tceMARK${_}x$run" } @paths, 'control';

sub sql
{
	my ($q, $db) = @_;
	my ($ret, $out, $err) = $primary->psql($db // 'postgres', $q);
	is($ret, 0, "runs: " . substr($q =~ s/\s+/ /gr, 0, 70)) or diag($err);
	return $out;
}

sub hits_in_dir
{
	my ($dir, $needle) = @_;
	my @found;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return unless -f $File::Find::name;
				open(my $fh, '<:raw', $File::Find::name) or return;
				local $/;
				my $bytes = <$fh>;
				close($fh);
				push @found, $File::Find::name
				  if defined $bytes && index($bytes, $needle) >= 0;
			}
		},
		$dir);
	return @found;
}

sql(q{
	SELECT kms_create_alias('alias/tap/pii', kms_create_key());
	CREATE TABLE t (id int PRIMARY KEY, v encrypted_text('alias/tap/pii'),
					d encrypted_text('alias/tap/pii', 'deterministic'),
					b encrypted_bytea('alias/tap/pii'), n int);
	CREATE UNIQUE INDEX t_d ON t (d);
	CREATE TABLE tap_control (t text);
});
sql("INSERT INTO tap_control VALUES ('$m{control}')");

# the write paths
sql("INSERT INTO t VALUES (1, '$m{literal}', '$m{detlit}', convert_to('$m{bytea}', 'UTF8'), 0)");
sql("INSERT INTO t (id, v) SELECT 2, '$m{insselect}'::text");
sql("INSERT INTO t (id) VALUES (3); UPDATE t SET v = '$m{update}' WHERE id = 3");
sql("COPY t (id, v) FROM STDIN;\n4\t$m{copytext}\n\\.\n");
sql("COPY t (id, v) FROM STDIN WITH (FORMAT csv);\n5,$m{copycsv}\n\\.\n");
# binary COPY: a file written in plaintext mode by another (plain) table
sql("CREATE TEMP TABLE bsrc (id int, v text); INSERT INTO bsrc VALUES (6, '$m{copybin}');"
	  . "COPY bsrc TO '$bindir/bin.copy' WITH (FORMAT binary);"
	  . "COPY t (id, v) FROM '$bindir/bin.copy' WITH (FORMAT binary)");
unlink("$bindir/bin.copy");
sql("PREPARE pu AS INSERT INTO t (id, v) VALUES (\$1, \$2); EXECUTE pu(7, '$m{prepuntyped}')");
sql("PREPARE pt(int, encrypted_text) AS INSERT INTO t (id, v) VALUES (\$1, \$2); EXECUTE pt(8, '$m{preptyped}')");
sql("PREPARE px(int, text) AS INSERT INTO t (id, v) VALUES (\$1, \$2); EXECUTE px(9, '$m{preptext}')");
sql("INSERT INTO t (id, v) VALUES (1, '$m{onconflict}') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v");
sql("MERGE INTO t USING (VALUES (10, '$m{merge}')) s(id, x) ON t.id = s.id "
	  . "WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.x)");
# (the trigger takes the value from a setting: a literal in its body would
# be stored in pg_proc, in plain text, by CREATE FUNCTION)
sql(qq{CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN IF NEW.id = 11 THEN NEW.v := current_setting('tap.mark'); END IF; RETURN NEW; END \$\$;
	CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg();
	SET tap.mark = '$m{trigger}';
	INSERT INTO t (id) VALUES (11)});
sql(qq{DO \$\$ DECLARE x encrypted_text('alias/tap/pii') := '$m{plpgsql}';
	BEGIN INSERT INTO t (id, v) VALUES (12, x); END \$\$});
sql("CREATE TABLE t_ctas AS SELECT id, v FROM t WHERE id = 1");
sql("INSERT INTO t (id, v) VALUES (13, '$m{ctas}'); INSERT INTO t_ctas SELECT id, v FROM t WHERE id = 13");

# restore: a dump made in plaintext mode (written here as pg_dump writes
# one, so that the plaintext never enters this cluster), loaded with psql
{
	open(my $fh, '>', "$tmp/mig.sql") or die;
	print $fh "SET client_encoding = 'UTF8';\nCOPY public.r (v) FROM stdin;\n$m{restore}\n\\.\n";
	close($fh);
}
sql("CREATE TABLE r (v encrypted_text('alias/tap/pii'))");
$primary->command_ok(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('postgres'),
	'-f', "$tmp/mig.sql"], 'restore a plaintext dump into an encrypted column');
unlink("$tmp/mig.sql");

# error paths with marked values: DETAIL, CONTEXT and the statement stay out
my ($ret, $out, $err) = $primary->psql('postgres', "INSERT INTO t (id, d) VALUES (20, '$m{detlit}')");
like($err, qr/duplicate key value/, 'unique violation on ciphertext');
unlike($err, qr/tceMARK/, 'its DETAIL does not show the value');
sql("CREATE TABLE tn (id int, v encrypted_text('alias/tap/pii'), n int NOT NULL)");
($ret, $out, $err) = $primary->psql('postgres', "INSERT INTO tn VALUES (22, '$m{notnull}', NULL)");
like($err, qr/not-null constraint/, 'NOT NULL violation');
unlike($err, qr/tceMARK/, 'its "failing row" DETAIL does not show the value');
($ret, $out, $err) = $primary->psql('postgres', "COPY t (id, v, n) FROM STDIN;\n23\t$m{copyerr}\tx\n\\.\n");
like($err, qr/invalid input syntax/, 'COPY error');
unlike($err, qr/tceMARK/, 'its CONTEXT does not show the line');

is(sql("SELECT count(*) FROM t WHERE v IS NOT NULL AND NOT (kms_column_value_info(v)).sealed"), '0',
	'no unsealed value stored');
is(sql("SELECT string_agg(v::text, ',' ORDER BY id) FROM t WHERE id IN (2, 6, 11)"),
	"$m{insselect},$m{copybin},$m{trigger}", 'values read back');
is(sql("SELECT count(*) FROM r WHERE v::text = '$m{restore}'"), '1', 'the restored value reads back');

sql('CHECKPOINT; SELECT pg_switch_wal()');
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
is($standby->safe_psql('postgres', "SELECT count(*) FROM t WHERE d = '$m{detlit}'"), '1',
	'the standby finds a deterministic value by equality');
is($standby->safe_psql('postgres', "SELECT v FROM t WHERE id = 12"), $m{plpgsql},
	'the standby decrypts');
is($standby->safe_psql('postgres', "SELECT (kms_column_value_info('x'::encrypted_text('alias/tap/pii'))).sealed"),
	't', 'the standby seals for a known column key');
($ret, $out, $err) = $standby->psql('postgres', "SELECT 'x'::encrypted_text('alias/tap/never-declared')");
like($err, qr/cannot run on a standby server/, 'a new column key reference needs the primary');

# dumps: plain (COPY), --inserts, directory format uncompressed (the
# harness sets PGAPPNAME; pg_dump --inserts is recognised by its cursor)
$primary->command_ok(['pg_dump', '-d', $primary->connstr('postgres'), '-f', "$tmp/plain.sql"], 'pg_dump');
$primary->command_ok(['pg_dump', '-d', $primary->connstr('postgres'), '--inserts', '-f', "$tmp/inserts.sql"],
	'pg_dump --inserts');
$primary->command_ok(['pg_dump', '-d', $primary->connstr('postgres'), '--column-inserts', '-f', "$tmp/colinserts.sql"],
	'pg_dump --column-inserts');
$primary->command_ok(['pg_dump', '-d', $primary->connstr('postgres'), '-Fd', '-Z0', '-f', "$tmp/dir"],
	'pg_dump -Fd -Z0');

my @found = hits_in_dir($primary->data_dir, $m{control});
ok(@found > 0, 'positive control: the plain marker is found in the data directory');
ok(scalar(hits_in_dir($tmp, $m{control})) >= 4, 'positive control: and in every dump');
for my $p (@paths)
{
	my @in_primary = hits_in_dir($primary->data_dir, $m{$p});
	is(scalar(@in_primary), 0, "$p: not in the primary's data directory or WAL")
	  or diag(join("\n", @in_primary));
	my @in_standby = hits_in_dir($standby->data_dir, $m{$p});
	is(scalar(@in_standby), 0, "$p: not on the standby") or diag(join("\n", @in_standby));
	my @in_dump = hits_in_dir($tmp, $m{$p});
	is(scalar(@in_dump), 0, "$p: not in a dump") or diag(join("\n", @in_dump));
	for my $node ($primary, $standby)
	{
		my $log = slurp_file($node->logfile);
		is(index($log, $m{$p}), -1, "$p: not in the log of " . $node->name);
	}
}
my $plain = slurp_file("$tmp/plain.sql");
like($plain, qr/pg_kms:v1:/, 'the dump holds the ciphertext form');

$standby->stop;
$primary->stop;
done_testing();
