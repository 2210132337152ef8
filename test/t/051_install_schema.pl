# Copyright (c) pg_kms authors
#
# 051_install_schema.pl: CREATE EXTENSION pg_kms WITH SCHEMA ...
#
# The API can live in a schema of its own: everything works there (keys,
# encryption, secrets, the key store's internal calls) for callers that put
# it on their search_path or qualify the calls.  Installing where every role
# may create objects warns (an overload there could capture plaintext), and
# so does a function of the same name as one of ours outside the extension
# (a user's public.get_secret): the clash is named, never silent.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $keyfile = master_key_file($keydir, 31, 5);

my $node = PostgreSQL::Test::Cluster->new('schema');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;

sub create_ext
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, $sql, stdout => \$out, stderr => \$err, on_error_die => 1);
	return $err;
}

# A schema of its own.
$node->safe_psql('postgres', 'CREATE DATABASE own');
my $err = create_ext('own', 'CREATE SCHEMA kms_api; CREATE EXTENSION pg_kms WITH SCHEMA kms_api');
unlike($err, qr/WARNING/, 'CREATE EXTENSION pg_kms WITH SCHEMA kms_api: no warning');
is($node->safe_psql('own', q{SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_kms'}),
	'kms_api', 'the extension lives in kms_api');
is($node->safe_psql('own', q{SELECT count(*) FROM pg_proc WHERE proname = 'kms_encrypt' AND pronamespace = 'public'::regnamespace}),
	'0', 'nothing is installed into public');
is($node->safe_psql('own', q{SELECT count(*) FROM pg_class WHERE relnamespace = 'kms'::regnamespace AND relname = 'key'}),
	'1', 'the internal schema is kms whatever the API schema is');

# Qualified calls, without kms_api on the search_path.
is($node->safe_psql('own', q{
SELECT kms_api.kms_create_key(description => 'qualified') AS k \gset
SELECT kms_api.kms_create_alias('alias/q', :'k') \gset
SELECT convert_from(kms_api.kms_decrypt(kms_api.kms_encrypt('alias/q', 'qualified call')), 'UTF8');
}), 'qualified call', 'schema-qualified calls work with kms_api off the search_path');
is($node->safe_psql('own', q{
SELECT kms_api.create_secret('s/qualified', '{"password":"pw"}') IS NOT NULL;
SELECT kms_api.get_secret('s/qualified')::jsonb ->> 'password';
}), "t\npw", 'secrets (with the default key created on first use) work qualified');
is($node->safe_psql('own', q{
SELECT count(*) FROM kms.keys;
SELECT count(*) FROM kms.secrets;
}), "2\n1", 'the views in kms find their helper functions in kms_api');

# On the search_path.
is($node->safe_psql('own', q{
SET search_path = kms_api, public;
SELECT length(get_random_password(password_length => 20));
SELECT kms_describe_key('alias/q') ->> 'Description';
}), "20\nqualified", 'unqualified calls with kms_api on the search_path');

# Installing where every role may create objects warns.
$node->safe_psql('postgres', 'CREATE DATABASE open_schema');
$node->safe_psql('open_schema', 'CREATE SCHEMA shared_api; GRANT CREATE ON SCHEMA shared_api TO PUBLIC');
$err = create_ext('open_schema', 'CREATE EXTENSION pg_kms WITH SCHEMA shared_api');
like($err, qr/WARNING:  pg_kms: every role may create objects in schema "shared_api"/,
	'CREATE EXTENSION into a schema PUBLIC may create in warns');

# A user's function of the same name, elsewhere or beside ours, is named.
$node->safe_psql('postgres', 'CREATE DATABASE clash');
$node->safe_psql('clash', q{
CREATE FUNCTION public.get_secret(name text) RETURNS text LANGUAGE sql AS $$ SELECT 'the user''s own' $$;
CREATE SCHEMA kms_api;
CREATE FUNCTION kms_api.kms_encrypt(key text, plaintext text) RETURNS text LANGUAGE sql AS $$ SELECT 'captured' $$;
});
$err = create_ext('clash', 'CREATE EXTENSION pg_kms WITH SCHEMA kms_api');
like($err, qr/WARNING:  pg_kms: functions of the same names as pg_kms's exist outside the extension: .*public\.get_secret\(name text\)/,
	'a pre-existing public.get_secret is named at CREATE EXTENSION');
like($err, qr/kms_api\.kms_encrypt\(key text, plaintext text\)/,
	'an overload beside ours in the API schema is named');
is($node->safe_psql('clash', q{SELECT public.get_secret('x')}), "the user's own",
	"the user's function is left as it was");
is($node->safe_psql('clash', q{
SELECT kms_api.create_secret('c', 'v') IS NOT NULL;
SELECT kms_api.get_secret('c');
}), "t\nv", "pg_kms's get_secret works qualified beside it");

# The same check runs at ALTER EXTENSION pg_kms UPDATE from 1.0.
$node->safe_psql('postgres', 'CREATE DATABASE clash_upgrade');
$node->safe_psql('clash_upgrade', q{
CREATE FUNCTION public.create_secret(name text) RETURNS text LANGUAGE sql AS $$ SELECT 'mine' $$;
CREATE SCHEMA kms_api;
});
create_ext('clash_upgrade', "CREATE EXTENSION pg_kms WITH SCHEMA kms_api VERSION '1.0'");
$err = create_ext('clash_upgrade', 'ALTER EXTENSION pg_kms UPDATE');
like($err, qr/WARNING:  pg_kms: functions of the same names .*public\.create_secret\(name text\)/,
	'ALTER EXTENSION pg_kms UPDATE names the clash too');

$node->stop;
done_testing();
