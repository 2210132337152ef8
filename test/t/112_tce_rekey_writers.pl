
# Copyright (c) pg_kms authors
#
# 112_tce_rekey_writers.pl: CALL kms_reencrypt_column while other sessions
# keep writing the table: updates of another column (which copy the old
# ciphertext into a new row version, possibly into blocks already done),
# updates of the encrypted column, inserts and deletes.  Nobody waits for
# long or deadlocks, and at the end every value is on the key's current
# version and reads back as its writer wrote it.  Then a long transaction
# holding one row: the rekey pauses between its sweeps and ends after it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 61, 17);

my $node = PostgreSQL::Test::Cluster->new('tce_rekey_writers');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.worker_naptime = 1
deadlock_timeout = '100ms'
});
$node->start;

my $rows = 6000;
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_kms;
SELECT kms_create_alias('alias/pii', kms_create_key());
CREATE TABLE people (id int PRIMARY KEY, ssn encrypted_text('alias/pii'), note text, gen int NOT NULL DEFAULT 0);
INSERT INTO people SELECT g, 'ssn-' || g || '-0', 'n' FROM generate_series(1, $rows) g;
CREATE TABLE stop_writers (x int);
SELECT kms_rotate_key_on_demand('alias/pii');
});

# each writer: its own kind of change, one row per transaction, until told to stop
my %loop = (
	'note' => "UPDATE people SET note = 'w' || i WHERE id = 1 + (random() * ($rows - 1))::int",
	'ssn' => "UPDATE people SET gen = gen + 1, ssn = 'ssn-' || id || '-' || (gen + 1) WHERE id = 1 + (random() * ($rows - 1))::int",
	'insert' => "INSERT INTO people VALUES ($rows + 1000 + i, 'ssn-' || ($rows + 1000 + i) || '-0', 'i')",
	'delete' => "DELETE FROM people WHERE id = 1 + (random() * ($rows - 1))::int AND id % 7 = 0",
);
my %writers;
$node->safe_psql('postgres', join(';', map { "CREATE TABLE writes_$_ (i int PRIMARY KEY)" } sort keys %loop));
for my $w (sort keys %loop)
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->query_until(qr/started/, qq{\\echo started
DO \$\$
DECLARE i int := 0;
BEGIN
	WHILE NOT EXISTS (SELECT 1 FROM stop_writers) LOOP
		i := i + 1;
		$loop{$w};
		INSERT INTO writes_$w VALUES (i) ON CONFLICT DO NOTHING;
		COMMIT;
	END LOOP;
END \$\$;
\\echo done
});
	$writers{$w} = $s;
}
ok($node->poll_query_until('postgres',
	'SELECT ' . join(' AND ', map { "(SELECT count(*) FROM writes_$_) > 20" } sort keys %loop)),
	'the writers are writing');

my ($ret, $out, $err) = $node->psql('postgres', "CALL kms_reencrypt_column('people', 'ssn', 200)", timeout => 600);
is($ret, 0, 'the rekey completes while the writers write') or diag($err);
my $during = $node->safe_psql('postgres', 'SELECT ' . join(' + ', map { "(SELECT count(*) FROM writes_$_)" } sort keys %loop));

$node->safe_psql('postgres', 'INSERT INTO stop_writers VALUES (1)');
for my $w (sort keys %writers)
{
	my $res = $writers{$w}->query_until(qr/done/, "\\echo done\n");
	unlike($writers{$w}->{stderr}, qr/ERROR/, "writer $w had no error")
		or diag($writers{$w}->{stderr});
	$writers{$w}->quit;
}
ok($during > 100, "the writers wrote during the rekey ($during transactions)");

is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT (kms_column_value_info(ssn)).key_version::text, ',') FROM people"),
	'2', 'every value is on version 2');
is($node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE ssn::text <> 'ssn-' || id || '-' || gen) FROM people"),
	'0', 'every value reads back as its last writer wrote it');
is($node->safe_psql('postgres',
	"SELECT state, pass >= 2 FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	'done|t', 'progress: done after at least one sweep pass');

# A long transaction holds a row whose value is on the old version: the
# rekey skips it (no waiting), sweeps again with growing pauses instead of
# spinning, and finishes once the transaction commits.
$node->safe_psql('postgres', "SELECT kms_rotate_key_on_demand('alias/pii')");
my $long = $node->background_psql('postgres');
$long->query_safe("BEGIN; UPDATE people SET note = 'long' WHERE id = (SELECT min(id) FROM people)");
my $rk = $node->background_psql('postgres', on_error_stop => 0);
$rk->query_until(qr/started/, "\\echo started\nCALL kms_reencrypt_column('people', 'ssn', 500);\n\\echo finished\n");
ok($node->poll_query_until('postgres',
	"SELECT pass >= 3 FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	'the rekey sweeps again for the held row');
sleep(4);
my $passes = $node->safe_psql('postgres',
	"SELECT pass FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass");
ok($passes <= 6, "it pauses between sweeps instead of spinning ($passes passes after 4 s)");
is($node->safe_psql('postgres',
	"SELECT state FROM kms.column_rekey_progress WHERE table_name = 'people'::regclass"),
	'running', 'still running while the row is held');
$long->query_safe('COMMIT');
$rk->query_until(qr/finished/, '');
unlike($rk->{stderr}, qr/ERROR/, 'the rekey ends after the long transaction') or diag($rk->{stderr});
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT (kms_column_value_info(ssn)).key_version::text, ',') FROM people"),
	'3', 'every value is on version 3, the held row too');
$long->quit;
$rk->quit;

$node->stop;
done_testing();
