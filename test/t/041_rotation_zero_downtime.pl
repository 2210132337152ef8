
# Copyright (c) pg_kms authors
#
# 041_rotation_zero_downtime.pl: a client that reads get_secret before every
# connection and logs in over TCP every few milliseconds, while the
# background worker runs rotations (rotate_secret wakes it; one transaction
# per step).
#  - postgres_alternating_users: 20 rotations, zero failed logins;
#  - postgres_single_user: failures are counted and reported (AWS has the
#    same window between setSecret and finishSecret);
#  - with log_statement = 'all', no password that was ever current appears
#    in the server log or in pg_stat_activity: ALTER ROLE carries only a
#    SCRAM verifier computed by pg_kms.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

system('python3 -c "import psycopg2" 2>/dev/null') == 0
  or plan skip_all => 'python3 with psycopg2 is needed for the client loop';

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 37, 11);

my $node = PostgreSQL::Test::Cluster->new('rot_zd');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
log_statement = 'all'
log_min_messages = info
pg_kms.worker_naptime = 1
});
# TCP logins use SCRAM; the local socket stays trusted for the test harness
scram_only_hba($node);
$node->start;
my $port = $node->port;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_kms;
	CREATE ROLE app_grp;
	CREATE TABLE app_data (x int);
	GRANT SELECT ON app_data TO app_grp;
	CREATE ROLE zd_alt LOGIN PASSWORD 'zd-initial-alt-Pw1';
	GRANT app_grp TO zd_alt;
	CREATE ROLE zd_single LOGIN PASSWORD 'zd-initial-single-Pw1';
	GRANT app_grp TO zd_single;
	SELECT create_secret('zd/alt', '{"engine":"postgres","host":"127.0.0.1","port":$port,"username":"zd_alt","password":"zd-initial-alt-Pw1","dbname":"postgres"}');
	SELECT create_secret('zd/single', '{"engine":"postgres","host":"127.0.0.1","port":$port,"username":"zd_single","password":"zd-initial-single-Pw1","dbname":"postgres"}');
});

# the setup above logged its own passwords; check the log from here on
my $log_offset = -s $node->logfile;

my $client = "$tmp/client.py";
open(my $fh, '>', $client) or die;
print $fh <<'PY';
import json, sys, os, time, psycopg2
sock, port, secret, stopfile, pwfile = sys.argv[1:6]
admin = psycopg2.connect(host=sock, port=port, dbname='postgres')
admin.autocommit = True
cur = admin.cursor()
ok = fail = 0
seen = set()
errors = {}
while not os.path.exists(stopfile):
    cur.execute("SELECT get_secret(%s)", (secret,))
    s = json.loads(cur.fetchone()[0])
    seen.add(s['password'])
    try:
        c = psycopg2.connect(host=s['host'], port=s['port'], dbname=s['dbname'],
                             user=s['username'], password=s['password'], connect_timeout=5)
        c.cursor().execute("SELECT 1 FROM app_data LIMIT 1")
        c.close()
        ok += 1
        with open(stopfile + '.n', 'w') as f:
            f.write(str(ok))
    except Exception as e:
        fail += 1
        m = str(e).strip().splitlines()[0]
        errors[m] = errors.get(m, 0) + 1
    time.sleep(0.003)
with open(pwfile, 'w') as f:
    f.write("\n".join(sorted(seen)) + "\n")
print(json.dumps({"ok": ok, "fail": fail, "errors": errors}))
PY
close($fh);

my %pw_seen;
my @activity;

# Run n rotations of secret with strategy, step by step, while the client loops.
sub rotate_under_load
{
	my ($secret, $strategy, $n) = @_;
	my $stop = "$tmp/stop.$secret"; $stop =~ s{/}{_}g; $stop = "$tmp/$stop";
	my $pwf = "$stop.pw";
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(['python3', $client, $node->host, $port, $secret, $stop, $pwf],
		'>', \$out, '2>', \$err);
	sleep 1;
	my $first = 1;
	my $logins = sub { open(my $c, '<', "$stop.n") or return 0; my $v = <$c> // 0; close($c); return $v + 0; };
	for my $i (1 .. $n)
	{
		# at least 5 logins between two rotations, however fast they run
		# here, so that each one overlaps the client's logins
		my $before = $logins->();
		for (1 .. 3000) { last if $logins->() >= $before + 5 || $out ne ''; select(undef, undef, undef, 0.01); }
		my $arg = $first ? ", '$strategy', '{\"AutomaticallyAfterDays\": 30}'" : '';
		$first = 0;
		$node->safe_psql('postgres', "SELECT rotate_secret('$secret'$arg)");
		# the worker runs the four steps; watch pg_stat_activity meanwhile
		my $done = 0;
		for my $poll (1 .. 400)
		{
			push @activity, $node->safe_psql('postgres',
				"SELECT string_agg(query, ' ') FROM pg_stat_activity WHERE pid <> pg_backend_pid()");
			if ($node->safe_psql('postgres',
					"SELECT rotation_token IS NULL FROM kms.secret WHERE name = '$secret'") eq 't')
			{
				$done = 1;
				last;
			}
			select(undef, undef, undef, 0.025);
		}
		die "rotation $i of $secret did not complete: "
		  . $node->safe_psql('postgres', "SELECT describe_secret('$secret')->>'LastRotationError'")
		  unless $done;
	}
	open(my $s, '>', $stop) or die; close($s);
	$h->finish;
	open(my $p, '<', $pwf) or die "no password file: $err";
	while (<$p>) { chomp; $pw_seen{$_} = 1 if $_ ne ''; }
	close($p);
	my ($ok) = $out =~ /"ok": (\d+)/;
	my ($fail) = $out =~ /"fail": (\d+)/;
	note "$secret ($strategy): $out";
	return ($ok, $fail, $out);
}

my ($ok, $fail, $out) = rotate_under_load('zd/alt', 'postgres_alternating_users', 20);
ok($ok > 100, "alternating users: the client logged in many times during 20 rotations ($ok)");
is($fail, 0, 'alternating users: zero failed logins during 20 rotations');
diag("alternating users, 20 rotations: $ok logins, $fail failed");

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM kms.secret_stage s JOIN kms.secret k USING (secret_id)
	 WHERE k.name = 'zd/alt' AND stage = 'AWSCURRENT'}), '1', 'exactly one AWSCURRENT');
is($node->safe_psql('postgres', q{
	SELECT describe_secret('zd/alt') ? 'LastRotationError'}), 'f', 'no rotation error');
is($node->safe_psql('postgres', q{
	SELECT string_agg(r.rolname || ':' || r.rolcanlogin || ':' ||
	       (SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid),
	       ' ' ORDER BY r.rolname)
	  FROM pg_roles r WHERE r.rolname LIKE 'zd\_alt%'}),
	'zd_alt:true:app_grp zd_alt_clone:true:app_grp,zd_alt', 'the clone logs in with the same memberships, plus the original');
like($node->safe_psql('postgres', q{SELECT rolpassword FROM pg_authid WHERE rolname = 'zd_alt_clone'}),
	qr/^SCRAM-SHA-256\$4096:[A-Za-z0-9+\/=]{24}\$[A-Za-z0-9+\/=]{44}:[A-Za-z0-9+\/=]{44}$/,
	'the password is stored as a SCRAM-SHA-256 verifier');
is($node->safe_psql('postgres', q{SELECT count(*) FROM list_secret_version_ids('zd/alt', true)}), '21',
	'every version committed is kept (20 rotations + the first)');

($ok, $fail, $out) = rotate_under_load('zd/single', 'postgres_single_user', 10);
ok($ok > 50, "single user: the client logged in many times during 10 rotations ($ok)");
diag("single user, 10 rotations: $ok logins, $fail failed (the window between setSecret and finishSecret, as in AWS)");
ok(defined $fail, 'single user: failed logins are counted and reported');

# the final credentials of both secrets log in
for my $s ('zd/alt', 'zd/single')
{
	my $j = $node->safe_psql('postgres', "SELECT get_secret('$s')");
	my ($u) = $j =~ /"username":\s*"([^"]+)"/;
	my ($p) = $j =~ /"password":\s*"((?:[^"\\]|\\.)*)"/;
	$p =~ s/\\(.)/$1/g;
	$pw_seen{$p} = 1;
	my $ret = $node->psql('postgres', 'SELECT 1', connstr => "host=127.0.0.1 port=$port dbname=postgres user=$u password='"
		  . ($p =~ s/(['\\])/\\$1/gr) . "'");
	is($ret, 0, "$s: AWSCURRENT logs in");
}

# no password in the log or in pg_stat_activity
my $log = slurp_file($node->logfile, $log_offset);
delete $pw_seen{$_} for ('zd-initial-alt-Pw1', 'zd-initial-single-Pw1');
like($log, qr/statement: SELECT rotate_secret/, 'log_statement = all was on');
my @leaks = grep { index($log, $_) >= 0 } keys %pw_seen;
is(scalar(@leaks), 0, 'no password (of ' . scalar(keys %pw_seen) . ' seen) appears in the server log');
my $act = join("\n", @activity);
@leaks = grep { index($act, $_) >= 0 } keys %pw_seen;
is(scalar(@leaks), 0, 'no password appears in pg_stat_activity');
unlike($log, qr/PASSWORD '(?!SCRAM-SHA-256\$)/, 'no ALTER ROLE with a plaintext password was logged');

$node->stop;
done_testing();
