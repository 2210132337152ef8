# Copyright (c) pg_kms authors
#
# 045_rotation_login_refusals.pl (issue 9, findings 1 and 2): the rotation
# worker's login client (kms.rotation_login_selftest runs it) against tiny
# fake servers written here, which record every byte they receive after
# their authentication request:
#  - a cleartext-password request, an MD5 request, SASL without
#    SCRAM-SHA-256, and an AuthenticationOk without any SCRAM exchange:
#    the client refuses and sends nothing (it cannot leak the password);
#  - a server that accepts the connection and never answers: the client
#    gives up at its deadline;
#  - a server that speaks no PostgreSQL: a clear error.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($tmp, 61, 17);

my $node = PostgreSQL::Test::Cluster->new('rot_refusals');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$key'
pg_kms.rotation_jobs = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_kms');

sub read_n
{
	my ($c, $n) = @_;
	my $buf = '';
	while (length($buf) < $n)
	{
		my $r = sysread($c, $buf, $n - length($buf), length($buf));
		return undef unless $r;
	}
	return $buf;
}

# A fake server in a child process: reads the startup packet, answers with
# $reply, then records what arrives until EOF (at most 8 s).
sub fake_server
{
	my ($name, $reply) = @_;
	my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1,
		Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
	my $port = $srv->sockport;
	my $out = "$tmp/fake.$name";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $status = 'no connection';
		my $after = '';
		if (my $c = $srv->accept)
		{
			my $len = read_n($c, 4);
			my $startup = defined $len ? read_n($c, unpack('N', $len) - 4) : undef;
			$status = defined $startup && $startup =~ /user\0victim\0/ ? 'startup ok' : 'bad startup';
			syswrite($c, $reply) if length $reply;
			my $sel = IO::Select->new($c);
			my $deadline = time + 8;
			while (time < $deadline)
			{
				next unless $sel->can_read(0.1);
				my $n = sysread($c, my $buf, 4096);
				last unless $n;
				$after .= $buf;
			}
		}
		open(my $fh, '>', $out) or POSIX::_exit(1);
		print $fh "$status\n" . length($after) . "\n" . unpack('H*', $after) . "\n";
		close($fh);
		POSIX::_exit(0);	# not exit: the test's END blocks belong to the parent
	}
	close($srv);
	return ($pid, $port, $out);
}

sub try_login
{
	my ($name, $reply) = @_;
	my ($pid, $port, $out) = fake_server($name, $reply);
	my $t0 = time;
	my $res = $node->safe_psql('postgres',
		"SELECT coalesce(kms.rotation_login_selftest('127.0.0.1', $port, 'victim', 'the-Secret-Pw1', 'postgres', 1500), 'LOGGED IN')");
	my $elapsed = time - $t0;
	waitpid($pid, 0);
	open(my $fh, '<', $out) or die "no record from the fake server $name";
	my ($status, $nbytes, $hex) = map { chomp; $_ } <$fh>;
	close($fh);
	return ($res, $status, $nbytes, $hex // '', $elapsed);
}

my $R = sub { my ($code, $extra) = @_; $extra //= ''; return 'R' . pack('NN', 8 + length($extra), $code) . $extra; };

for my $case (
	['cleartext', $R->(3), qr/asked for the password in clear text/],
	['md5', $R->(5, 'salt'), qr/asked for MD5 password authentication/],
	['sasl-plus-only', $R->(10, "SCRAM-SHA-256-PLUS\0\0"), qr/offered no SCRAM-SHA-256/],
	['trust', $R->(0) . 'Z' . pack('N', 5) . 'I', qr/let the login in without SCRAM-SHA-256/],
	['gss', $R->(7), qr/authentication method 7/])
{
	my ($name, $reply, $want) = @$case;
	my ($res, $status, $nbytes, $hex) = try_login($name, $reply);
	is($status, 'startup ok', "$name: the client connected and sent its startup packet");
	like($res, $want, "$name: the client refuses ($res)");
	is($nbytes, 0, "$name: nothing at all was sent after the request (got: $hex)");
	unlike(pack('H*', $hex), qr/the-Secret-Pw1/, "$name: the password never went out");
}

# accepts, reads the startup packet, never answers
my ($res, $status, $nbytes, $hex, $elapsed) = try_login('silent', '');
like($res, qr/timed out/, "silent server: the client gives up ($res)");
ok($elapsed < 5, sprintf('silent server: at its deadline (%.1f s)', $elapsed));
is($nbytes, 0, 'silent server: nothing but the startup packet was sent');

# not PostgreSQL
($res) = try_login('http', "HTTP/1.1 400 Bad Request\r\n\r\n");
like($res, qr/invalid length|unexpected message/, "not PostgreSQL: a clear error ($res)");

# nobody listening
my $free = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
my $fport = $free->sockport;
close($free);
like($node->safe_psql('postgres',
		"SELECT kms.rotation_login_selftest('127.0.0.1', $fport, 'victim', 'the-Secret-Pw1', 'postgres', 1500)"),
	qr/could not connect/, 'nobody listening: could not connect');

# only a superuser runs the self-test
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my ($ret, $o, $e) = $node->psql('postgres',
	"SET ROLE plain; SELECT kms.rotation_login_selftest('127.0.0.1', 1, 'victim', 'x', 'postgres')");
like($e, qr/permission denied for function rotation_login_selftest/, 'the self-test is not for everyone');

$node->stop;
done_testing();
