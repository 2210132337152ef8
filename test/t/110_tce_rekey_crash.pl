
# Copyright (c) pg_kms authors
#
# 110_tce_rekey_crash.pl: CALL kms_reencrypt_column is killed mid-run with
# the postmaster (kill -9 of both, no clean shutdown).  After the restart the
# progress view says "interrupted" at the last committed batch, a second
# CALL resumes there (NOTICE), and in the end every value is on the key's
# new version and reads back as written.
#
# The run is held at a known batch by a test trigger that waits for an
# advisory lock the test holds (BEFORE UPDATE of row 6000): the batches
# before it are committed, that one is not.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 53, 11);

my $node = PostgreSQL::Test::Cluster->new('tce_rekey_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
restart_after_crash = on
});
$node->start;

my $rows = 10000;
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_kms;
SELECT kms_create_alias('alias/pii', kms_create_key());
CREATE TABLE people (id int PRIMARY KEY, ssn encrypted_text('alias/pii'));
INSERT INTO people SELECT g, 'ssn-' || g FROM generate_series(1, $rows) g;
UPDATE people SET ssn = NULL WHERE id % 1000 = 7;
CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.id = 6000 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
	RETURN NEW;
END \$\$;
CREATE TRIGGER hold BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION hold();
SELECT kms_rotate_key_on_demand('alias/pii');
});
my $version = $node->safe_psql('postgres',
	"SELECT current_version FROM kms.keys WHERE key_id::text = (SELECT target_key_id FROM kms_list_aliases() WHERE alias_name = 'alias/pii')");
is($version, '2', 'the key was rotated to version 2');

# versions of the column's values, as "version:count" lines
sub versions
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(v || ':' || n, ',' ORDER BY v) FROM (SELECT (kms_column_value_info(ssn)).key_version AS v, count(*) n FROM people WHERE ssn IS NOT NULL GROUP BY 1) s");
}
is(versions(), '1:' . ($rows - 10), 'before: every value on version 1');

my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(4242)');

my $rekey = $node->background_psql('postgres', on_error_stop => 0);
my $rekey_pid = $rekey->query_safe('SELECT pg_backend_pid()');
$rekey->query_until(qr/started/, "\\echo started\nCALL kms_reencrypt_column('people', 'ssn', 500);\n");

ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted AND pid = $rekey_pid)"),
	'the rekey waits at the batch of row 6000');
my $progress = $node->safe_psql('postgres',
	"SELECT state, pass, rows_rekeyed > 0, rows_rekeyed < $rows - 10, rows_total FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");
is($progress, "running|1|t|t|$rows", 'progress while it runs: running, pass 1, some rows done');
my $done_before = $node->safe_psql('postgres',
	"SELECT rows_rekeyed FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");

# readers are not blocked by the batch in flight
is($node->safe_psql('postgres', 'SELECT count(*) FROM people'), $rows, 'a reader is not blocked');

# kill -9 the postmaster and the backend running the CALL
my $postmaster = do { open(my $fh, '<', $node->data_dir . '/postmaster.pid') or die; my $l = <$fh>; chomp $l; $l };
my @children;
opendir(my $dh, '/proc') or die;
for my $p (grep { /^\d+$/ } readdir($dh))
{
	open(my $fh, '<', "/proc/$p/stat") or next;
	my $stat = <$fh>;
	close($fh);
	push @children, $p if $stat =~ /^\d+ \(.*\) \S (\d+)/ && $1 == $postmaster;
}
closedir($dh);
kill 'KILL', $postmaster, $rekey_pid;
for my $i (1 .. 300)
{
	last unless grep { kill(0, $_) } @children, $postmaster;
	usleep(100_000);
}
ok(!(grep { kill(0, $_) } @children, $postmaster), 'postmaster and its children are gone');
eval { $rekey->quit; };
eval { $holder->quit; };
# the stale postmaster.pid would stop the harness (PostgreSQL itself copes)
unlink($node->data_dir . '/postmaster.pid');
$node->_update_pid(0);
$node->start;

$progress = $node->safe_psql('postgres',
	"SELECT state, rows_rekeyed = $done_before FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");
is($progress, 'interrupted|t', 'after the crash: interrupted, the committed batches kept');
my $v = versions();
like($v, qr/^1:\d+,$version:\d+$/, "after the crash: values on versions 1 and $version ($v)");

# resume: from the block after the last committed batch
my ($ret, $out, $err) = $node->psql('postgres', "CALL kms_reencrypt_column('people', 'ssn', 500)");
is($ret, 0, 'the second CALL succeeds') or diag($err);
like($err, qr/NOTICE:  resuming the rekey of column "ssn" of table "people" at block [1-9]\d* of \d+ \(pass 1\)/,
	'the second CALL resumes where the first stopped');
is(versions(), "$version:" . ($rows - 10), "after the resume: every value on version $version");
is($node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE ssn::text = 'ssn-' || id), count(*) FILTER (WHERE ssn IS NULL) FROM people"),
	($rows - 10) . '|10', 'every value reads back as written, NULLs kept');
is($node->safe_psql('postgres',
	"SELECT state, percent_done, rows_rekeyed FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	'done|100|' . ($rows - 10), 'progress: done, each value moved once');

$node->stop;
done_testing();
