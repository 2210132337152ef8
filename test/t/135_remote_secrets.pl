
# Copyright (c) pg_kms authors
#
# 135_remote_secrets.pl: get_secret() on an AWS Secrets Manager ARN, against
# the loopback emulator (test/aws/emulator.py + emu_secretsmanager.py, TLS
# verified, SigV4 checked by botocore).  Read through the shared cache: many
# reads in several backends make one GetSecretValue, also when they start
# together on a cold cache; the TTL (pg_kms.remote_secret_cache_ttl) makes
# the next read fetch again; a failed refresh serves the old value with a
# WARNING naming the error and never the value, without a new call inside
# the backoff; kms_refresh_remote_secret() fetches now.  Without a link, or
# without GetSecretValue on it, the read is refused and AWS is not called.
# AWS errors map to our names with the AWS code and request id in DETAIL.
# A restart empties the cache (one call again); a hot standby reads too.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $py = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $awsdir = "$FindBin::RealBin/../aws";
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $state = "$tmp/emu";
mkdir $state;
system('bash', "$awsdir/make_ca.sh", "$tmp/ca") == 0 or die "make_ca.sh failed";

# ---------------------------------------------------------------- emulator
my ($emu_out, $emu_err) = ('', '');
my $emu;
my $port = 0;
# stop the emulator also when the test dies
END { $emu->kill_kill if $emu; }

sub emu_start
{
	($emu_out, $emu_err) = ('', '');
	$emu = IPC::Run::start(
		[ $py, "$awsdir/emulator.py", '--port', $port, '--cert', "$tmp/ca/server.pem",
		  '--key', "$tmp/ca/server.key", '--state', $state ],
		'>', \$emu_out, '2>', \$emu_err);
	my $t = IPC::Run::timer(30);
	$t->start;
	$emu->pump until $emu_out =~ /READY (\d+)/ || $t->is_expired;
	$emu_out =~ /READY (\d+)/ or die "emulator did not start: $emu_err";
	$port = $1;
	return;
}

# A control request (or GET path) to the emulator; the JSON answer.
sub emu
{
	my ($path, $body) = @_;
	my $code = q{
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
r = urllib.request.urlopen(urllib.request.Request(sys.argv[2], data=data), context=ctx, timeout=30)
sys.stdout.write(r.read().decode())
};
	my @cmd = ($py, '-c', $code, "$tmp/ca/ca.pem", "https://127.0.0.1:$port$path");
	push @cmd, $body if defined $body;
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or die "emulator request $path failed: $err";
	return $out;
}

sub calls
{
	my $c = emu('/__calls');
	return $c =~ /"secretsmanager\.GetSecretValue":\s*(\d+)/ ? $1 : 0;
}

sub reset_calls { emu('/__control', '{"op":"reset_calls"}'); return; }

# Seed the secrets (the module reads the file again when it changes).
my $acct = '444455556666';
my $arn_db = "arn:aws:secretsmanager:us-east-1:$acct:secret:prod/db-AbCdEf";
my $arn_bin = "arn:aws:secretsmanager:us-east-1:$acct:secret:prod/blob-Gh12Ij";
my $arn_gone = "arn:aws:secretsmanager:us-east-1:$acct:secret:prod/gone-Zz99Yy";
my $arn_bad = "arn:aws:secretsmanager:us-east-1:$acct:secret:prod/bad-Kk11Ll";
my $arn_unlinked = "arn:aws:secretsmanager:us-east-1:$acct:secret:prod/other-Mm22Nn";
my $v1 = 'a' x 32;
my $v2 = 'b' x 32;
my $v3 = 'c' x 32;
my $seeds = 0;

sub seed
{
	my (%db) = @_;    # version id => [value, stages]
	my @v = map {
		sprintf('"%s": {"SecretString": "%s", "CreatedDate": 1700000000.5, "VersionStages": [%s]}',
			$_, $db{$_}[0], join(',', map { "\"$_\"" } @{ $db{$_}[1] }))
	} sort keys %db;
	my $json = sprintf(
		'{"secrets": {"prod/db": {"arn": "%s", "versions": {%s}},'
		  . ' "prod/blob": {"arn": "%s", "versions": {"%s": {"SecretBinary": "AAECAw==", "CreatedDate": 1700000001, "VersionStages": ["AWSCURRENT"]}}},'
		  . ' "prod/bad": {"arn": "%s", "decryption_failure": true, "versions": {}},'
		  . ' "prod/other": {"arn": "%s", "versions": {"%s": {"SecretString": "other-value", "CreatedDate": 1700000000, "VersionStages": ["AWSCURRENT"]}}}}}',
		$arn_db, join(', ', @v), $arn_bin, $v1, $arn_bad, $arn_unlinked, $v1);
	open(my $fh, '>', "$state/secretsmanager.json.new") or die;
	print $fh $json;
	close $fh;
	rename("$state/secretsmanager.json.new", "$state/secretsmanager.json") or die;
	# the module notices a change by mtime: make sure it moves
	my $t = time + (++$seeds);
	utime($t, $t, "$state/secretsmanager.json");
	return;
}

emu_start();
emu('/__control',
	'{"op":"credentials","access_key_id":"AKIDREMOTE135","secret_access_key":"remote-135-secret-key"}');
seed($v1 => [ 'value-one', ['AWSCURRENT'] ]);

# ---------------------------------------------------------------- cluster
$ENV{AWS_ACCESS_KEY_ID} = 'AKIDREMOTE135';
$ENV{AWS_SECRET_ACCESS_KEY} = 'remote-135-secret-key';
delete $ENV{AWS_SESSION_TOKEN};
delete $ENV{AWS_PROFILE};
$ENV{AWS_SHARED_CREDENTIALS_FILE} = "$tmp/none";
$ENV{AWS_CONFIG_FILE} = "$tmp/none";
$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
delete $ENV{$_} for grep { /^AWS_ENDPOINT_URL|^AWS_CONTAINER|^AWS_ROLE_ARN|^AWS_WEB_IDENTITY/ } keys %ENV;

my $key = master_key_file($tmp, 37, 11);
my $node = PostgreSQL::Test::Cluster->new('remote135');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.aws_region = 'us-east-1'
pg_kms.aws_endpoint_url = 'https://127.0.0.1:$port'
pg_kms.aws_ca_file = '$tmp/ca/ca.pem'
pg_kms.worker_naptime = 1
});
$node->start;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_kms;
	CREATE ROLE app LOGIN;
	CREATE ROLE nobody LOGIN;
	SELECT kms_link_remote_secret('$arn_db');
	SELECT kms_link_remote_secret('$arn_bin');
	SELECT kms_link_remote_secret('$arn_gone');
	SELECT kms_link_remote_secret('$arn_bad');
	SELECT secret_create_grant(name, 'app', '{GetSecretValue}') FROM kms_remote_secrets();
	CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN
		EXECUTE q;
		RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
	END \$\$;
});

sub read_as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

# ---------------------------------------------------------------- reads
reset_calls();
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-one', 'get_secret reads the remote value');
is(calls(), 1, 'one GetSecretValue for the first read');
my $j = read_as('app', qq{SELECT v->>'ARN', v->>'Name', v->>'VersionId', v->>'SecretString',
	v->'VersionStages', (v->>'CreatedDate')::timestamptz = to_timestamp(1700000000.5),
	v ? 'SecretBinary' FROM get_secret_value('$arn_db') v});
is($j, "$arn_db|prod/db|$v1|value-one|[\"AWSCURRENT\"]|t|f",
	'get_secret_value: the shape of a local read');
is(read_as('app', "SELECT get_secret('$arn_bin') IS NULL, get_secret_value('$arn_bin')->>'SecretBinary'"),
	't|AAECAw==', 'a SecretBinary: NULL from get_secret, base64 from get_secret_value');
reset_calls();
for my $i (1 .. 5)
{
	read_as('app', "SELECT get_secret('$arn_db') FROM generate_series(1, 20)");
}
is(calls(), 0, 'a hundred reads in five backends: no call (cached in shared memory)');

# many backends on a cold entry at once: one call, the others wait for it
reset_calls();
emu('/__control', '{"op":"fault","kind":"slow","seconds":2,"count":1,"target":"secretsmanager.GetSecretValue"}');
my @h;
for my $i (1 .. 4)
{
	my ($o, $e) = ('', '');
	push @h, [ IPC::Run::start(
		[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-U', 'app', '-d', 'postgres',
		  '-c', "SELECT get_secret('$arn_db', version_id => '$v1')" ],
		'>', \$o, '2>', \$e), \$o, \$e ];
}
for my $x (@h)
{
	$x->[0]->finish;
	is(${ $x->[1] }, "value-one\n", 'concurrent cold read');
}
is(calls(), 1, 'four backends starting together on a cold entry: one GetSecretValue');

# version_id and version_stage are passed through (their own cache entries)
seed($v1 => [ 'value-one', ['AWSPREVIOUS'] ], $v2 => [ 'value-two', ['AWSCURRENT'] ]);
reset_calls();
is(read_as('app', "SELECT get_secret('$arn_db', version_id => '$v2')"), 'value-two', 'by version_id');
is(read_as('app', "SELECT get_secret('$arn_db', version_stage => 'AWSPREVIOUS')"), 'value-one', 'by version_stage');
is(calls(), 2, 'one call per new (version, stage)');
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-one', 'AWSCURRENT stays cached within the TTL');

# ---------------------------------------------------------------- TTL
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_kms.remote_secret_cache_ttl = '2s'; SELECT pg_reload_conf()});
sleep 3;
reset_calls();
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-two', 'after the TTL the next read fetches again');
is(calls(), 1, 'one call after expiry');
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-two', 'then cached again');
is(calls(), 1, 'no second call');

# ---------------------------------------------------------------- stale on failure
sleep 3;
reset_calls();
emu('/__control', '{"op":"fault","kind":"503","count":50,"target":"secretsmanager.GetSecretValue"}');
# two reads in one session: the second comes well within the backoff (1 s)
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT get_secret('$arn_db'); SELECT pg_sleep(0.1); SELECT get_secret('$arn_db');",
	extra_params => [ '-U', 'app' ]);
is($out, "value-two\n\nvalue-two", 'a failed refresh serves the old value, also within the backoff');
my @w = ($err =~ /WARNING:  pg_kms: serving the cached value of remote secret "\Q$arn_db\E" fetched at .*?: its refresh failed with ServiceUnavailableException/g);
is(scalar(@w), 2, 'each with a WARNING naming the error code');
unlike($err, qr/value-two/, 'the WARNING does not hold the value');
my $n = calls();
ok($n >= 1 && $n <= 3, "the refresh was tried once (the client's standard retries: $n attempts), not again within the backoff");
is($node->safe_psql('postgres', "SELECT failures > 0, last_error FROM kms_remote_secret_cache() WHERE secret_arn = '$arn_db' AND version_stage = 'AWSCURRENT'"),
	't|ServiceUnavailableException', 'kms_remote_secret_cache() shows the failure, not the value');

# refresh now: a failure is raised (the old value stays), then it works
($ret, $out, $err) = $node->psql('postgres', "SELECT kms_refresh_remote_secret('$arn_db')",
	extra_params => [ '-U', 'app' ]);
isnt($ret, 0, 'kms_refresh_remote_secret raises while AWS fails');
emu('/__control', '{"op":"clear_faults"}');
$node->safe_psql('postgres', q{ALTER SYSTEM SET pg_kms.remote_secret_cache_ttl = '1h'; SELECT pg_reload_conf()});
seed($v1 => [ 'value-one', [] ], $v2 => [ 'value-two', ['AWSPREVIOUS'] ], $v3 => [ 'value-three', ['AWSCURRENT'] ]);
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-two', 'cached value within the TTL (rotation not seen yet)');
reset_calls();
is(read_as('app', "SELECT kms_refresh_remote_secret('prod/db')"), '4',
	'kms_refresh_remote_secret (by the link name) refreshes the four cached (version, stage) entries');
is(calls(), 4, 'one call per cached entry');
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-three', 'the new AWSCURRENT at once');

# a link read by its own name (or local ARN) reads AWS too, and
# batch_get_secret_value reads remote ARNs and link names
is(read_as('app', "SELECT get_secret('prod/db')"), 'value-three', 'get_secret by the link name reads the remote value');
is(read_as('app', "SELECT get_secret_value('prod/db')->>'ARN'"), $arn_db,
	'get_secret_value by the link name: the remote secret\'s answer');
is(read_as('app', qq{SELECT jsonb_array_length(v->'SecretValues') || '|' || (v->'SecretValues'->0->>'SecretString')
	|| '|' || (v->'SecretValues'->1->>'ARN') || '|' || jsonb_array_length(v->'Errors')
	FROM batch_get_secret_value(ARRAY['$arn_db', 'prod/db']) v}),
	"2|value-three|$arn_db|0", 'batch_get_secret_value reads a remote ARN and a link name');

# ---------------------------------------------------------------- access
reset_calls();
is(read_as('app', "SELECT try(\$\$SELECT get_secret('$arn_unlinked')\$\$)"), '42501 AccessDeniedException',
	'no link: AccessDeniedException');
is(read_as('nobody', "SELECT try(\$\$SELECT get_secret('$arn_db')\$\$)"), '42501 AccessDeniedException',
	'a link without a grant: AccessDeniedException');
is(read_as('nobody', "SELECT try(\$\$SELECT kms_refresh_remote_secret('$arn_db')\$\$)"),
	'42501 AccessDeniedException', 'refresh needs the grant too');
is($node->safe_psql('postgres', "SELECT try(\$\$SELECT get_secret('$arn_unlinked')\$\$)"),
	'42704 ResourceNotFoundException', 'no link, as superuser: ResourceNotFoundException');
is(calls(), 0, 'refused reads make no call to AWS');
is(emu('/__calls') =~ /secretsmanager/ ? 'called' : 'none', 'none', 'no Secrets Manager request at all');

# a long session keeps the link per backend: a revoke, and a new link, are
# seen at its next read
my $ss = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
is($ss->query_safe("SELECT get_secret('$arn_db')"), 'value-three', 'a long session reads');
is($ss->query_safe("SELECT try(\$\$SELECT get_secret('$arn_unlinked')\$\$)"), '42501 AccessDeniedException',
	'and is refused an unlinked ARN');
$node->safe_psql('postgres', q{SELECT secret_revoke_grant('prod/db', grant_id) FROM secret_list_grants('prod/db')});
is($ss->query_safe("SELECT try(\$\$SELECT get_secret('$arn_db')\$\$)"), '42501 AccessDeniedException',
	'a revoked grant holds at once in a session that read before');
$node->safe_psql('postgres', qq{SELECT kms_link_remote_secret('$arn_unlinked');
	SELECT secret_create_grant('prod/other', 'app', '{GetSecretValue}');
	SELECT secret_create_grant('prod/db', 'app', '{GetSecretValue}');});
is($ss->query_safe("SELECT get_secret('$arn_unlinked')"), 'other-value', 'a new link is seen at once');
is($ss->query_safe("SELECT get_secret('$arn_db')"), 'value-three', 'and a new grant');
$ss->quit;

# ---------------------------------------------------------------- errors
($ret, $out, $err) = $node->psql('postgres', "SELECT get_secret('$arn_gone')",
	extra_params => [ '-U', 'app', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42704: ResourceNotFoundException: /, 'a secret AWS does not have: ResourceNotFoundException');
like($err, qr/DETAIL:  AWS error code: ResourceNotFoundException; request id: [0-9a-f-]{36}/,
	'AWS code and request id in DETAIL');
($ret, $out, $err) = $node->psql('postgres', "SELECT get_secret('$arn_bad')",
	extra_params => [ '-U', 'app', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  KM101: DecryptionFailure: .*\n.*DETAIL:  AWS error code: DecryptionFailure; request id: [0-9a-f-]{36}/,
	'DecryptionFailure mapped');
emu('/__control', '{"op":"fault","kind":"throttle","count":1,"target":"secretsmanager.GetSecretValue"}');
is(read_as('app', "SELECT get_secret('$arn_db', version_id => '$v3')"), 'value-three',
	'a throttled call is retried by the client');
emu('/__control', '{"op":"clear_faults"}');

# every read is audited like a local read (by the audit worker)
ok($node->poll_query_until('postgres', qq{SELECT count(*) > 0 FROM kms.audit
	WHERE operation = 'GetSecretValue' AND outcome = 'success' AND db_user = 'app'
	  AND resource_arn = '$arn_db' AND parameters->>'Cache' = 'hit' AND parameters->>'Link' = 'prod/db'}),
	'reads audited with the link and how the cache served them');
ok($node->poll_query_until('postgres', qq{SELECT count(*) > 0 FROM kms.audit
	WHERE operation = 'GetSecretValue' AND outcome = 'ResourceNotFoundException' AND resource_arn = '$arn_gone'}),
	'an AWS refusal audited with its exception');
my $log = slurp_file($node->logfile);
unlike($log, qr/value-one|value-two|value-three|other-value|remote-135-secret-key/,
	'no value and no credential in the server log');

# ---------------------------------------------------------------- interrupts
# A statement cancelled while its backend fetches: the entry is not left
# "being fetched" by a live backend (the next read would wait for ever).
emu('/__control', '{"op":"fault","kind":"slow","seconds":4,"count":1,"target":"secretsmanager.GetSecretValue"}');
reset_calls();
my $sa = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'app' ]);
$sa->query("SET statement_timeout = '1s'; SELECT get_secret('$arn_bin', version_id => '$v1') IS NULL");
like($sa->{stderr}, qr/statement timeout|canceling statement/, 'a fetch in flight is cancelled by statement_timeout');
# the cancelled session stays connected: a stale "being fetched" mark by its
# live backend would make the next read wait (here until its timeout)
is($node->safe_psql('postgres', "SET statement_timeout = '20s'; SELECT get_secret_value('$arn_bin', version_id => '$v1')->>'SecretBinary'",
	extra_params => [ '-U', 'app' ]), 'AAECAw==', 'the next read fetches (it does not wait for the cancelled one)');
$sa->quit;
is(calls(), 2, 'one call each');

# A backend terminated while it fetches: a backend waiting for it takes over.
emu('/__control', '{"op":"fault","kind":"slow","seconds":6,"count":1,"target":"secretsmanager.GetSecretValue"}');
reset_calls();
my ($co, $ce, $do, $de) = ('', '', '', '');
my $c = IPC::Run::start(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-U', 'app', '-d', 'postgres',
	  '-c', "SELECT get_secret('$arn_db', version_id => '$v2', version_stage => 'AWSPREVIOUS')" ],
	'>', \$co, '2>', \$ce);
my $tries = 0;
select(undef, undef, undef, 0.2) while calls() < 1 && $tries++ < 100;
my $d = IPC::Run::start(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-U', 'app', '-d', 'postgres',
	  '-c', "SET statement_timeout = '30s'; SELECT get_secret('$arn_db', version_id => '$v2', version_stage => 'AWSPREVIOUS')" ],
	'>', \$do, '2>', \$de);
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity
	WHERE usename = 'app' AND query LIKE '%AWSPREVIOUS%' AND state = 'active'}), 'fetcher and waiter both running');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE usename = 'app' AND query LIKE '%AWSPREVIOUS%' AND query NOT LIKE '%statement_timeout%'});
$c->finish;
$d->finish;
like($ce, qr/terminat/, 'the fetching backend was terminated');
is($do, "value-two\n", 'the waiting backend took the fetch over and read the value');
is(calls(), 2, 'the dead fetch and the one that took over');
emu('/__control', '{"op":"clear_faults"}');

# ---------------------------------------------------------------- restart
$node->restart;
reset_calls();
is(read_as('app', "SELECT get_secret('$arn_db')"), 'value-three', 'after a restart: read again');
is(calls(), 1, 'the cache was empty: one call');

# ---------------------------------------------------------------- standby
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('remote135_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
reset_calls();
is($standby->safe_psql('postgres', "SELECT get_secret('$arn_db')", extra_params => [ '-U', 'app' ]),
	'value-three', 'a hot standby reads a remote secret');
is($standby->safe_psql('postgres', "SELECT get_secret('$arn_db')", extra_params => [ '-U', 'app' ]),
	'value-three', 'and caches it');
is(calls(), 1, 'one call on the standby (its own cache)');
is($standby->safe_psql('postgres', "SELECT try(\$\$SELECT get_secret('$arn_db')\$\$)", extra_params => [ '-U', 'nobody' ]),
	'42501 AccessDeniedException', 'the link grants hold on the standby');

$standby->stop;
$node->stop;
$emu->kill_kill;
undef $emu;
done_testing();
