# Copyright (c) pg_kms authors
#
# 150_secrets_fidelity_old_catalog.pl: the 1.2 library serves a 1.1 catalog
# until ALTER EXTENSION pg_kms UPDATE runs (issue 15, Secrets Manager half).
#
# 1.2 adds kms.secret.secret_type and tagged, kms.secret_stage.attached, and
# new arguments and a next_page_token column to five functions.  Before the
# update every secrets call, and a custom rotation (whose AWSPENDING version
# is made before createSecret), works on the 1.1 tables and signatures; after
# it, labels made before keep name order, new ones come back in request
# order, and a secret with tags has Tags.

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

my $node = PostgreSQL::Test::Cluster->new('fid_old_catalog');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_kms'\n"
	  . "pg_kms.master_key_file = '$keyfile'\n"
	  . "pg_kms.rotation_jobs = off\n");
$node->start;

$node->safe_psql('postgres', q{CREATE EXTENSION pg_kms VERSION '1.1'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'}),
	'1.1', 'the catalog is 1.1');

sub q1 { return $node->safe_psql('postgres', shift); }

# Every secrets call on the 1.1 catalog.
q1(q{SELECT create_secret('old/a', 'v1', tags => '{"team":"blue"}', client_request_token => 'old-a-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')});
is(q1(q{SELECT put_secret_value('old/a', 'v2', version_stages => '{ZETA,ALPHA}',
		client_request_token => 'old-a-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') -> 'VersionStages'}),
	'["ALPHA", "ZETA"]', '1.1 catalog: labels by name (no attached column yet)');
is(q1(q{SELECT get_secret('old/a', version_stage => 'ZETA')}), 'v2', '1.1 catalog: get_secret');
is(q1(q{SELECT count(*) FROM list_secrets('[{"Key":"tag-value","Values":["blue"]}]')}), '1',
	'1.1 catalog: list_secrets (its 1.1 row type), word filters');
is(q1(q{SELECT count(*) FROM list_secret_version_ids('old/a', true)}), '2',
	'1.1 catalog: list_secret_version_ids');
is(q1(q{SELECT describe_secret('old/a') ? 'Type'}), 'f', '1.1 catalog: describe_secret, no Type');
q1(q{SELECT untag_resource('old/a', '{team}')});
is(q1(q{SELECT describe_secret('old/a') ? 'Tags'}), 'f', '1.1 catalog: untag (no tagged column: no Tags)');
q1(q{SELECT tag_resource('old/a', '{"team":"red"}')});
is(q1(q{SELECT describe_secret('old/a') -> 'Tags' -> 0 ->> 'Value'}), 'red', '1.1 catalog: tag_resource');
is(q1(q{SELECT update_secret('old/a', description => 'd', client_request_token => 'old-u-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN'}),
	't', '1.1 catalog: update_secret with a token and no value');
is(q1(q{SELECT jsonb_array_length(batch_get_secret_value(ARRAY['old/a', 'old/none']) -> 'Errors')}), '1',
	'1.1 catalog: batch_get_secret_value');

# A custom rotation on the 1.1 catalog: the AWSPENDING version is there
# before createSecret, which fills it.
q1(q{
CREATE FUNCTION old_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	cur text;
BEGIN
	IF step = 'createSecret' THEN
		PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'],
										client_request_token => token);
	ELSIF step = 'finishSecret' THEN
		SELECT version_id INTO cur FROM public.list_secret_version_ids(secret_id) v WHERE 'AWSCURRENT' = ANY (v.version_stages);
		PERFORM public.update_secret_version_stage(secret_id, 'AWSCURRENT', remove_from_version_id => cur, move_to_version_id => token);
	END IF;
END
$$;
SELECT rotate_secret('old/a', 'old_rotator', '{"AutomaticallyAfterDays": 7}', client_request_token => 'old-r-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
});
is(q1(q{SELECT describe_secret('old/a') -> 'VersionIdsToStages' -> 'old-r-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}),
	'["AWSPENDING"]', '1.1 catalog: the AWSPENDING version exists before createSecret');
q1(q{SELECT kms_rotation_run_job('secret rotation') FROM generate_series(1, 4)});
is(q1(q{SELECT get_secret('old/a')}), 'rotated', '1.1 catalog: the custom rotation completed');

# The update: old labels keep name order, new ones come in request order.
q1(q{ALTER EXTENSION pg_kms UPDATE});
is(q1(q{SELECT version_stages FROM list_secret_version_ids('old/a') WHERE version_id = 'old-a-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}),
	'{ALPHA,ZETA}', 'after the update: labels made before keep name order');
is(q1(q{SELECT put_secret_value('old/a', 'v3', version_stages => '{ZETA2,ALPHA2}') -> 'VersionStages'}),
	'["ZETA2", "ALPHA2"]', 'after the update: labels in request order');
is(q1(q{SELECT describe_secret('old/a') -> 'Tags' -> 0 ->> 'Key'}), 'team', 'after the update: a tagged secret has Tags');
q1(q{SELECT untag_resource('old/a', '{team}')});
is(q1(q{SELECT describe_secret('old/a') -> 'Tags'}), '[]', 'after the update: Tags [] once the last tag is gone');
is(q1(q{SELECT update_secret('old/a', type => 't1') ? 'ARN'}), 't', 'after the update: type');
is(q1(q{SELECT describe_secret('old/a') ->> 'Type'}), 't1', 'after the update: describe_secret has Type');
is(q1(q{SELECT count(next_page_token) FROM list_secret_version_ids('old/a', true, 1)}), '1',
	'after the update: paging');

$node->stop;
done_testing();
