# Copyright (c) pg_kms authors
#
# 062_master_key_command_retry.pl: a master key command that fails at
# server start (its key service is down) no longer leaves the server
# keyless until a restart (issue 11, finding 8).  Calls that need the key
# fail with a clear error; the first call after the backoff runs the
# command again, for at most pg_kms.master_key_command_timeout, and can be
# cancelled; once an attempt succeeds every session uses the key.  No key
# in any log line.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 43, 17);
my $flag = "$keydir/service_up";
my $slow = "$keydir/service_slow";

# The "key service": answers only when the flag file exists, hangs while
# the slow file exists.
my $runs = "$keydir/runs";
my $cmd = "echo run >> $runs; if [ -f $slow ]; then sleep 60; fi; test -f $flag && cat $key";
sub runs { return -f $runs ? scalar(() = slurp_file($runs) =~ /run/g) : 0; }

my $node = PostgreSQL::Test::Cluster->new('retry');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_command = '$cmd'
pg_kms.master_key_command_timeout = 2
pg_kms.rotation_jobs = off
});

# Down and hanging at start: the start is delayed by the timeout, not more.
open(my $fh, '>', $slow) or die;
close($fh);
my $t0 = time;
$node->start;
cmp_ok(time - $t0, '<', 30, 'a hanging command does not hold up the start beyond its timeout');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');

sub try_call
{
	my ($sql) = @_;
	my $t = time;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return ($ret, $out, $err, time - $t);
}

# The first call runs the command again: killed after 2 s, clear error.
my ($ret, $out, $err, $took) = try_call('SELECT kms_create_key()');
isnt($ret, 0, 'no key: the call fails');
like($err, qr/KeyUnavailableException: the master key is not available: pg_kms\.master_key_command did not finish within pg_kms\.master_key_command_timeout \(2 s\)/,
	'the error says the command timed out');
cmp_ok($took, '>=', 1.5, 'the attempt ran the command');
cmp_ok($took, '<', 20, 'bounded by the timeout');

# Right after a failure: no new attempt until the backoff has passed.
my $runs_before = runs();
($ret, $out, $err, $took) = try_call('SELECT kms_create_key()');
like($err, qr/next attempt in \d+ s/, 'within the backoff: fails at once, saying when the next attempt is');
is(runs(), $runs_before, 'without running the command');

# A cancelled call stops waiting for the command (and kills it): with a
# 30 s command timeout, a cancel after 300 ms returns long before it.
$node->safe_psql('postgres', 'ALTER SYSTEM SET pg_kms.master_key_command_timeout = 30; SELECT pg_reload_conf()');
sleep(2.2);
($ret, $out, $err, $took) = try_call("SET statement_timeout = '300ms'; SELECT kms_create_key()");
like($err, qr/canceling statement due to statement timeout/, 'an attempt is interruptible');
cmp_ok($took, '<', 15, 'the cancel does not wait for the command');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET pg_kms.master_key_command_timeout; SELECT pg_reload_conf()');

# Service up but refusing: a failure with its exit status.
unlink($slow);
my $deadline = time + 30;
do { sleep(0.5); ($ret, $out, $err) = $node->psql('postgres', 'SELECT kms_create_key()'); }
  while ($err =~ /next attempt in/ && time < $deadline);
like($err, qr/pg_kms\.master_key_command failed with exit status 1/, 'a failing command: its exit status');

# The key service comes back: a later call works, without restart.
open($fh, '>', $flag) or die;
close($fh);
$deadline = time + 90;
do { sleep(0.5); ($ret, $out, $err) = $node->psql('postgres', 'SELECT kms_create_key()'); }
  while ($ret != 0 && time < $deadline);
is($ret, 0, 'once the service answers, the next due call loads the key and works');
like($out, qr/^[0-9a-f-]{36}$/, 'a key was created');

# Every session uses it now; the command is not run again.
unlink($flag);
is($node->safe_psql('postgres',
		q{SELECT kms_decrypt_text(kms_encrypt(kms_create_key(), 'after the outage'))}),
	'after the outage', 'another session uses the loaded key');
my $log = slurp_file($node->logfile);
my @loaded = ($log =~ /master key loaded on demand from pg_kms\.master_key_command/g);
is(scalar(@loaded), 1, 'loaded once, logged once');
unlike($log, qr/[0-9a-f]{64}/, 'no key in the log');

$node->stop;
done_testing();
