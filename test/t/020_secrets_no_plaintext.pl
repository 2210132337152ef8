
# Copyright (c) pg_kms authors
#
# 020_secrets_no_plaintext.pl: no secret value reaches the disk, the WAL or
# the server log.
#
# Secrets holding unique markers are created, updated, relabelled (a version
# becomes deprecated and is pruned), read, refused (an error path), and one
# is deleted for good; then CHECKPOINT and a WAL switch.  Every file under
# the data directory (heap, indexes, WAL segments, pg_xact, ...) and the
# server log are searched byte for byte: no marker may appear.  A positive
# control (a marker in an ordinary table) shows the search finds what is
# there.
#
# Then log_statement = 'all' shows what a literal in a statement leaks (the
# statement text is logged, so the marker is in the log), and that a value
# passed as a bind parameter is not logged once log_parameter_max_length = 0
# (with the default, -1, the parameter is logged in a DETAIL line, which is
# shown too).  docs/secrets.md says how to pass values as parameters.

use strict;
use warnings;

use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = "$keydir/master.key";
{
	open(my $fh, '>', $keyfile) or die "could not write $keyfile: $!";
	print $fh join('', map { sprintf('%02x', ($_ * 59 + 7) % 256) } 0 .. 31), "\n";
	close($fh);
	chmod(0600, $keyfile) or die "could not chmod $keyfile: $!";
}

my $node = PostgreSQL::Test::Cluster->new('secrets');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "log_statement = 'none'\n"
	  . "log_min_messages = debug1\n"
	  . "log_min_error_statement = error\n");
$node->start;

# Markers: unique per run, so no earlier run can leave one behind.
my $run = sprintf('%08x%04x', time(), $$ & 0xffff);
my %marker = map { $_ => "pgkmsMARK${_}x$run" } qw(create put update pending deleted refused control literal param paramdefault);

sub sql
{
	my ($query) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $query);
	is($ret, 0, "runs: " . substr($query =~ s/\s+/ /gr, 0, 70)) or diag($err);
	return $out;
}

# Count occurrences of $needle in every regular file under $dir.
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

sub hits_in_log
{
	my ($needle) = @_;
	my $log = slurp_file($node->logfile);
	my $n = () = $log =~ /\Q$needle\E/g;
	return $n;
}

sql('CREATE EXTENSION pg_kms');

# Write, update, relabel, read, fail, delete.
sql("SELECT create_secret('tap/app', '{\"password\":\"$marker{create}\"}')");
sql("SELECT put_secret_value('tap/app', '$marker{put}', client_request_token => 'tap-put-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')");
sql("SELECT update_secret('tap/app', '$marker{update}')");
sql("SELECT put_secret_value('tap/app', '$marker{pending}', version_stages => '{AWSPENDING}', "
	  . "client_request_token => 'tap-pending-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa')");
is(sql("SELECT get_secret('tap/app')"), $marker{update}, 'get_secret returns the current value');
is(sql("SELECT get_secret('tap/app', version_stage => 'AWSPENDING')"), $marker{pending},
	'get_secret returns the pending value');
# an error path: the statement holding the value is not logged with the error
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT put_secret_value('tap/app', '$marker{refused}', client_request_token => 'tap-put-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')");
isnt($ret, 0, 'a refused put fails');
like($err, qr/ResourceExistsException/, 'with ResourceExistsException');
unlike($err, qr/\Q$marker{refused}\E/, 'the error message does not hold the value');
# the pending version loses its label, is aged past 24 hours and pruned
sql("SELECT update_secret_version_stage('tap/app', 'AWSPENDING', "
	  . "remove_from_version_id => 'tap-pending-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa')");
sql("UPDATE kms.secret_version SET created_date = created_date - interval '2 days'");
sql("DO \$\$ BEGIN FOR i IN 1..100 LOOP PERFORM put_secret_value('tap/app', 'filler-' || i); END LOOP; END \$\$");
is(sql("SELECT count(*) FROM list_secret_version_ids('tap/app', include_deprecated => true) "
	  . "WHERE version_id = 'tap-pending-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"), '0',
	'the deprecated version was pruned');
# a secret deleted for good
sql("SELECT create_secret('tap/gone', '$marker{deleted}')");
sql("SELECT delete_secret('tap/gone', force_delete_without_recovery => true)");

# Positive control: an ordinary table holds its marker in plain text.
sql("CREATE TABLE tap_control (t text); INSERT INTO tap_control VALUES ('$marker{control}')");

sql('CHECKPOINT');
sql('SELECT pg_switch_wal()');
sql('CHECKPOINT');

my $datadir = $node->data_dir;
ok(scalar(hits_in_dir($datadir, $marker{control})) > 0,
	'control: the search finds a marker stored in an ordinary table');
for my $k (qw(create put update pending deleted refused))
{
	my @files = hits_in_dir($datadir, $marker{$k});
	is(scalar(@files), 0, "no file of the data directory holds the '$k' value")
	  or diag(join("\n", @files));
	is(hits_in_log($marker{$k}), 0, "the server log does not hold the '$k' value");
}
# the ciphertext is there instead
is(sql("SELECT count(*) > 0 FROM kms.secret_version v JOIN kms.secret s USING (secret_id) WHERE s.name = 'tap/app'"),
	't', 'the versions are stored (as ciphertext)');

# log_statement = 'all': a literal leaks through the statement text.
$node->append_conf('postgresql.conf', "log_statement = 'all'\n");
$node->reload;
sql("SELECT put_secret_value('tap/app', '$marker{literal}')");
ok(hits_in_log($marker{literal}) > 0,
	"log_statement = 'all' logs a value written as a literal (documented)");

# A bind parameter (extended protocol; pgbench -M extended sends :value as
# \$1): with log_parameter_max_length = 0 the value is not logged.
my $script = "$keydir/put.sql";
{
	open(my $fh, '>', $script) or die;
	print $fh "SELECT put_secret_value('tap/app', :value);\n";
	close($fh);
}
sub put_with_parameter
{
	my ($value) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-t', '1', '-M', 'extended', '-D', "value=$value",
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, 'pgbench put with a bind parameter') or diag($stderr);
}
$node->append_conf('postgresql.conf', "log_parameter_max_length = 0\n");
$node->reload;
put_with_parameter($marker{param});
is(sql("SELECT get_secret('tap/app')"), $marker{param}, 'the parameter was stored');
is(hits_in_log($marker{param}), 0,
	'a bind parameter is not logged with log_parameter_max_length = 0');
like(slurp_file($node->logfile), qr/put_secret_value\('tap\/app', \$1\)/,
	'the statement is logged with $1 in place of the value');

# With the default log_parameter_max_length (-1) the DETAIL line holds it.
$node->append_conf('postgresql.conf', "log_parameter_max_length = -1\n");
$node->reload;
put_with_parameter($marker{paramdefault});
ok(hits_in_log($marker{paramdefault}) > 0,
	'with log_parameter_max_length = -1 a bind parameter is logged (documented)');

# Nothing of the values written with log_statement off reached the log later.
sql('CHECKPOINT');
for my $k (qw(create put update pending deleted refused param))
{
	is(scalar(hits_in_dir($datadir, $marker{$k})), 0,
		"still no file of the data directory holds the '$k' value");
}

$node->stop;
done_testing();
