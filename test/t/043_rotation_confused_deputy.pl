# Copyright (c) pg_kms authors
#
# 043_rotation_confused_deputy.pl (issue 9, finding 1): the built-in
# strategies check credentials against this cluster only, and only with
# SCRAM-SHA-256.
#  - A role with PutSecretValue + RotateSecret on a secret a superuser
#    configured points it at a server of its own where "victim" has a
#    password it knows: refused, nothing is sent there, the local victim
#    keeps its password (before: the worker logged in there, then ALTER
#    ROLE victim here).
#  - The "current credentials log in" guard holds, against this cluster.
#  - pg_hba methods password (clear text), md5 and trust: the login client
#    refuses, and the password never reaches the server (no failed or
#    successful password login is logged); the role is not changed.  (A
#    trust line lets the connection in unasked: that proves nothing, so
#    it is refused as well.)
#  - The login client itself: right password, wrong password, a Unix
#    socket the server trusts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 53, 3);

my $node = PostgreSQL::Test::Cluster->new('rot_deputy');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
log_connections = on
});
open(my $fh, '>', $node->data_dir . '/pg_hba.conf') or die;
print $fh <<'HBA';
local all all trust
local replication all trust
host all pw_user 127.0.0.1/32 password
host all md5_user 127.0.0.1/32 md5
host all trust_user 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA
close($fh);
$node->start;
my $port = $node->port;

# the attacker's own server, where "victim" has a password it chose
my $evil = PostgreSQL::Test::Cluster->new('rot_evil');
$evil->init;
$evil->append_conf('postgresql.conf', qq{
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
log_connections = on
});
scram_only_hba($evil);
$evil->start;
my $eport = $evil->port;
$evil->safe_psql('postgres', q{CREATE ROLE victim LOGIN PASSWORD 'attacker-knows-Pw1'});

sub cred
{
	my ($user, $pw, $p) = @_;
	$p //= $port;
	return qq{{"engine":"postgres","host":"127.0.0.1","port":$p,"username":"$user","password":"$pw","dbname":"postgres"}};
}

sub logs_in
{
	my ($user, $pw) = @_;
	return $node->psql('postgres', 'SELECT 1',
		connstr => "host=127.0.0.1 port=$port dbname=postgres user=$user password=$pw") == 0;
}

# run the rotation steps by hand until it completes or a step fails
sub run_steps
{
	my ($secret) = @_;
	for (1 .. 4)
	{
		$node->safe_psql('postgres', q{SELECT kms_rotation_run_job('secret rotation')});
		my $st = $node->safe_psql('postgres',
			"SELECT coalesce(rotation_step, 'done') || '|' || coalesce(rotation_last_error, '') FROM kms.secret WHERE name = '$secret'");
		my ($step, $err) = split /\|/, $st, 2;
		return ($step, $err) if $step eq 'done' || $err ne '';
	}
	return ('stuck', '');
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_kms;
	CREATE ROLE victim LOGIN PASSWORD 'victim-real-Pw1';
	CREATE ROLE mallory LOGIN PASSWORD 'mallory-Pw1';
	CREATE ROLE app LOGIN PASSWORD 'app-initial-Pw1';
	SELECT create_secret('deputy/app', '@{[cred('app', 'app-initial-Pw1')]}');
	SELECT rotate_secret('deputy/app', 'postgres_single_user', '{"AutomaticallyAfterDays": 30}', rotate_immediately => false);
	SELECT secret_create_grant('deputy/app', 'mallory', '{GetSecretValue,PutSecretValue,RotateSecret}');
});

# 1. the secret points at the attacker's server
my $elog = -s $evil->logfile;
$node->safe_psql('postgres', qq{
	SET ROLE mallory;
	SELECT put_secret_value('deputy/app', '@{[cred('victim', 'attacker-knows-Pw1', $eport)]}');
	SELECT rotate_secret('deputy/app');
});
my ($step, $err) = run_steps('deputy/app');
isnt($step, 'done', 'another server: the rotation does not complete');
like($err, qr/port $eport is not this server's/, 'another server: refused, naming the port');
ok(logs_in('victim', 'victim-real-Pw1'), 'another server: the local victim keeps its password');
my $elogtext = slurp_file($evil->logfile, $elog);
unlike($elogtext, qr/connection received: host=127\.0\.0\.1/, 'another server: the worker never connected to it');
$node->safe_psql('postgres', q{SELECT cancel_rotate_secret('deputy/app')});
$node->safe_psql('postgres', q{
	SELECT update_secret_version_stage('deputy/app', 'AWSPENDING', remove_from_version_id => version_id)
	  FROM list_secret_version_ids('deputy/app') WHERE 'AWSPENDING' = ANY (version_stages)});

# 2. this server, a password the attacker does not know: AWS's guard
$node->safe_psql('postgres', qq{
	SET ROLE mallory;
	SELECT put_secret_value('deputy/app', '@{[cred('victim', 'a-guess-Pw1')]}');
	SELECT rotate_secret('deputy/app');
});
($step, $err) = run_steps('deputy/app');
is($step, 'setSecret', 'guard: setSecret is refused');
like($err, qr/unable to log into the database with the previous, current, or pending secret: password authentication failed for user "victim"/,
	'guard: the current credentials must log in to this server');
ok(logs_in('victim', 'victim-real-Pw1'), 'guard: the victim keeps its password');
$node->safe_psql('postgres', q{SELECT cancel_rotate_secret('deputy/app')});
$node->safe_psql('postgres', q{
	SELECT update_secret_version_stage('deputy/app', 'AWSPENDING', remove_from_version_id => version_id)
	  FROM list_secret_version_ids('deputy/app') WHERE 'AWSPENDING' = ANY (version_stages)});

# 3. the legitimate rotation still works (host "localhost" is this server)
$node->safe_psql('postgres', qq{
	SELECT put_secret_value('deputy/app', '{"engine":"postgres","host":"localhost","port":$port,"username":"app","password":"app-initial-Pw1","dbname":"postgres"}');
	SELECT rotate_secret('deputy/app');
});
($step, $err) = run_steps('deputy/app');
is($step, 'done', "a legitimate rotation completes ($err)");
my $j = $node->safe_psql('postgres', q{SELECT get_secret('deputy/app')});
my ($newpw) = $j =~ /"password":\s*"((?:[^"\\]|\\.)*)"/;
$newpw =~ s/\\(.)/$1/g;
ok($newpw ne 'app-initial-Pw1' && logs_in('app', "'" . ($newpw =~ s/(['\\])/\\$1/gr) . "'"),
	'the new password logs in');

# 3b. configurers that are not superusers: the statements run as them
#  - a plain role rotates its own password (PostgreSQL lets it);
#  - a CREATEROLE role runs alternating users for another role: the clone
#    is created and granted by it, remembered, and used again.
$node->safe_psql('postgres', qq{
	CREATE ROLE selfie LOGIN PASSWORD 'selfie-initial-Pw1';
	CREATE ROLE maker LOGIN CREATEROLE;
	CREATE ROLE app2_grp;
	CREATE ROLE app2 LOGIN PASSWORD 'app2-initial-Pw1' IN ROLE app2_grp;
	SELECT create_secret('deputy/selfie', '@{[cred('selfie', 'selfie-initial-Pw1')]}');
	SELECT secret_create_grant('deputy/selfie', 'selfie', '{GetSecretValue,RotateSecret}');
	SELECT create_secret('deputy/app2', '@{[cred('app2', 'app2-initial-Pw1')]}');
	SELECT secret_create_grant('deputy/app2', 'maker', '{GetSecretValue,RotateSecret}');
});
$node->safe_psql('postgres', q{SET ROLE selfie; SELECT rotate_secret('deputy/selfie', 'postgres_single_user')});
($step, $err) = run_steps('deputy/selfie');
is($step, 'done', "a plain role rotates its own password ($err)");
$j = $node->safe_psql('postgres', q{SELECT get_secret('deputy/selfie')});
($newpw) = $j =~ /"password":\s*"((?:[^"\\]|\\.)*)"/;
$newpw =~ s/\\(.)/$1/g;
ok(logs_in('selfie', "'" . ($newpw =~ s/(['\\])/\\$1/gr) . "'"), '... and the new password logs in');
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', $round == 1
		? q{SET ROLE maker; SELECT rotate_secret('deputy/app2', 'postgres_alternating_users')}
		: q{SET ROLE maker; SELECT rotate_secret('deputy/app2')});
	($step, $err) = run_steps('deputy/app2');
	is($step, 'done', "CREATEROLE configurer, alternating users, round $round ($err)");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m
	  JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles c ON c.oid = m.member WHERE c.rolname = 'app2_clone'}),
	'app2,app2_grp', 'the clone has the original and its memberships');
is($node->safe_psql('postgres', q{
	SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = 'app2_clone'}), 'f', 'the clone has no privileged attribute');
is($node->safe_psql('postgres', q{
	SELECT rotation_clone::regrole::text FROM kms.secret WHERE name = 'deputy/app2'}), 'app2_clone', 'pg_kms remembers the clone it made');
like($node->safe_psql('postgres', q{SELECT get_secret('deputy/app2')}), qr/"username":\s*"app2_clone"/,
	'after three rounds AWSCURRENT is the clone');

# 4. pg_hba methods other than scram-sha-256: the password is never sent
$node->safe_psql('postgres', q{
	CREATE ROLE pw_user LOGIN PASSWORD 'pw-user-Pw1';
	CREATE ROLE trust_user LOGIN PASSWORD 'trust-user-Pw1';
	SET password_encryption = 'md5';
	CREATE ROLE md5_user LOGIN PASSWORD 'md5-user-Pw1';
});
for my $case (['pw_user', qr/asked for the password in clear text/],
	['md5_user', qr/asked for MD5 password authentication/],
	['trust_user', qr/let the login in without SCRAM-SHA-256/])
{
	my ($user, $want) = @$case;
	my $before = $node->safe_psql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = '$user'");
	my $off = -s $node->logfile;
	$node->safe_psql('postgres', qq{
		SELECT create_secret('deputy/$user', '@{[cred($user, "$user-secret-Pw1")]}');
		SELECT rotate_secret('deputy/$user', 'postgres_single_user');
	});
	($step, $err) = run_steps("deputy/$user");
	isnt($step, 'done', "$user: the rotation does not complete");
	like($err, $want, "$user: the login client refuses ($err)");
	my $log = slurp_file($node->logfile, $off);
	unlike($log, qr/password authentication failed for user "$user"/, "$user: no password reached the server");
	# (trust lets the connection in before any password is asked for)
	unlike($log, qr/connection authorized: user=$user/, "$user: no login happened")
	  unless $user eq 'trust_user';
	is($node->safe_psql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = '$user'"), $before,
		"$user: the role is unchanged");
	$node->safe_psql('postgres', qq{SELECT cancel_rotate_secret('deputy/$user')});
}

# 5. the login client against the real server
my $sock = $node->host;
is($node->safe_psql('postgres', q{SELECT kms.rotation_login_selftest('127.0.0.1', } . $port . q{, 'victim', 'victim-real-Pw1', 'postgres') IS NULL}),
	't', 'client: the right password logs in over TCP');
like($node->safe_psql('postgres', q{SELECT kms.rotation_login_selftest('127.0.0.1', } . $port . q{, 'victim', 'wrong-Pw1', 'postgres')}),
	qr/password authentication failed for user "victim"/, 'client: a wrong password fails');
like($node->safe_psql('postgres', qq{SELECT kms.rotation_login_selftest('$sock', $port, 'victim', 'victim-real-Pw1', 'postgres')}),
	qr/without SCRAM-SHA-256/, 'client: a socket the server trusts proves nothing and is refused');
like($node->safe_psql('postgres', q{SELECT kms.rotation_login_selftest('127.0.0.1', } . $port . q{, 'victim', '', 'postgres')}),
	qr/password is empty/, 'client: never an empty password');
like($node->safe_psql('postgres', q{SELECT kms.rotation_login_selftest('127.0.0.1', } . $port . q{, 'victim', 'victim-real-Pw1', 'no_such_db')}),
	qr/database "no_such_db" does not exist/, 'client: errors after authentication are reported');

$evil->stop;
$node->stop;
done_testing();
