# Copyright (c) pg_kms authors
#
# 103_tce_independent_format.pl: docs/ciphertext-format.md section 8 is
# enough to read and write encrypted column values independently.
#
# A Python program written from the document (with Debian's
# python3-cryptography: AESGCM, HKDF, AESSIV; test/interop/kms_blob.py for
# sections 1-5) unwraps the key material with the master key, and
#   * decrypts randomized values (format 1) and deterministic values
#     (format 2) the server stored, for encrypted_text and encrypted_bytea;
#   * encrypts a deterministic value itself and gets exactly the server's
#     bytes (equal plaintexts, one key version: equal values);
#   * makes values of both formats that the server, given them in the
#     ciphertext form, stores and decrypts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PgKmsTest;
use MIME::Base64 ();

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = master_key_file($keydir, 53, 17);
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $interop = "$FindBin::RealBin/../interop";

my $node = PostgreSQL::Test::Cluster->new('tce_format');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_kms'\npg_kms.master_key_file = '$key'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_kms;
	SELECT kms_create_alias('alias/tap/fmt', kms_create_key());
	SELECT kms_rotate_key_on_demand('alias/tap/fmt');
	CREATE TABLE t (id int, r encrypted_text('alias/tap/fmt'), d encrypted_text('alias/tap/fmt', 'deterministic'),
		rb encrypted_bytea('alias/tap/fmt'), db encrypted_bytea('alias/tap/fmt', 'deterministic'));
	INSERT INTO t VALUES (1, 'randomized ✓', 'deterministic ✓', '\x00ff', '\xc0ffee'),
		(2, '', 'x', '\x', '\x01');
});

# what the program needs: the key id, the versions' wrapped material, the values
my $key_id = $node->safe_psql('postgres', q{SELECT (kms_column_value_info(d)).key_id FROM t WHERE id = 1});
my $wrapped = $node->safe_psql('postgres', qq{
	SELECT string_agg(version || ':' || encode(material, 'hex'), ',') FROM kms.key_version WHERE key_id = '$key_id'});
my $values = $node->safe_psql('postgres', q{
	SELECT string_agg(id || ':' || encode(kms_column_ciphertext(r), 'hex') || ':' || encode(kms_column_ciphertext(d), 'hex')
		|| ':' || encode(kms_column_ciphertext(rb), 'hex') || ':' || encode(kms_column_ciphertext(db), 'hex'), ',' ORDER BY id) FROM t});

my $prog = "$tmp/tce_format.py";
open(my $fh, '>', $prog) or die;
print $fh <<'PY';
import struct, sys, uuid
sys.path.insert(0, sys.argv[1])
import kms_blob
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

master = kms_blob.read_master_key(sys.argv[2])
key_id = uuid.UUID(sys.argv[3]).bytes
material = {}
for item in sys.argv[4].split(','):
    v, w = item.split(':')
    material[int(v)] = kms_blob.unwrap(master, key_id, int(v), bytes.fromhex(w))

def ctx(type_name):
    return kms_blob.encode_context({"pg_kms:column": type_name})

def siv_key(version):
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=key_id,
                info=b"pg_kms v1 column deterministic").derive(material[version])

def det_decrypt(value, type_name):
    assert value[0] == 2 and value[1:17] == key_id
    version, = struct.unpack(">I", value[17:21])
    return AESSIV(siv_key(version)).decrypt(value[21:], [value[:21] + ctx(type_name)])

def det_encrypt(plaintext, version, type_name):
    header = bytes([2]) + key_id + struct.pack(">I", version)
    return header + AESSIV(siv_key(version)).encrypt(plaintext, [header + ctx(type_name)])

out = []
for row in sys.argv[5].split(','):
    rid, r, d, rb, db = row.split(':')
    r, d, rb, db = (bytes.fromhex(x) for x in (r, d, rb, db))
    out.append(kms_blob.decrypt(material[struct.unpack(">I", r[17:21])[0]], r, {"pg_kms:column": "encrypted_text"}).decode())
    out.append(det_decrypt(d, "encrypted_text").decode())
    out.append(kms_blob.decrypt(material[struct.unpack(">I", rb[17:21])[0]], rb, {"pg_kms:column": "encrypted_bytea"}).hex())
    out.append(det_decrypt(db, "encrypted_bytea").hex())
    # determinism: the program's own encryption is the server's value
    version, = struct.unpack(">I", d[17:21])
    out.append(str(det_encrypt(det_decrypt(d, "encrypted_text"), version, "encrypted_text") == d))
print("|".join(out))
# values made here, for the server to load
v1 = max(material)
print(kms_blob.encrypt(material[v1], key_id, v1, "made in python".encode(), {"pg_kms:column": "encrypted_text"}).hex())
print(det_encrypt("det made in python".encode(), int(sys.argv[6]), "encrypted_text").hex())
PY
close($fh);

my $det_version = $node->safe_psql('postgres', q{SELECT det_version FROM kms.column_key WHERE deterministic AND key_ref = 'alias/tap/fmt'});
my ($stdout, $stderr);
my $ok = IPC::Run::run(['python3', $prog, $interop, $key, $key_id, $wrapped, $values, $det_version],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'the independent program ran') or diag($stderr);
my @lines = split /\n/, $stdout;
is($lines[0], 'randomized ✓|deterministic ✓|00ff|c0ffee|True||x||01|True',
	'it decrypts both formats of both types, and reproduces the deterministic values');

# the server loads what the program made, in the ciphertext form
my $rform = 'pg_kms:v1:' . MIME::Base64::encode_base64(pack('H*', $lines[1]), '');
my $dform = 'pg_kms:v1:' . MIME::Base64::encode_base64(pack('H*', $lines[2]), '');
$node->safe_psql('postgres', qq{INSERT INTO t (id, r, d) VALUES (3, '$rform', '$dform')});
is($node->safe_psql('postgres', q{SELECT r || '|' || d FROM (SELECT r::text, d::text FROM t WHERE id = 3) s}),
	'made in python|det made in python', 'the server decrypts values the program made');
is($node->safe_psql('postgres', q{SELECT id FROM t WHERE d = 'det made in python'}), '3',
	'and finds the program\'s deterministic value by equality');

$node->stop;
done_testing();
