/*-------------------------------------------------------------------------
 *
 * kat_gcm.c
 *	  Known-answer tests for src/crypto/crypto.c: AES-256-GCM (McGrew-Viega GCM
 *	  spec test cases 13-16), HKDF-SHA256 (RFC 5869 A.1-A.3), HMAC-SHA2
 *	  (RFC 4231 cases 1-2), the context encoding, wrapping and blob parsing.
 *
 * Stand-alone: links crypto.c and libcrypto, no server.  Prints one line
 * per check and "N passed, M failed"; exits 1 on any failure.
 *
 * IDENTIFICATION
 *	  test/kat/kat_gcm.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static int	npassed = 0;
static int	nfailed = 0;

static void
check(const char *name, int ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", name);
	if (ok)
		npassed++;
	else
		nfailed++;
}

/* Decode hex into a static-lifetime buffer; the vectors are short. */
static size_t
unhex(const char *hex, uint8_t *out)
{
	size_t		n = strlen(hex) / 2;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		unsigned int b;

		sscanf(hex + 2 * i, "%2x", &b);
		out[i] = (uint8_t) b;
	}
	return n;
}

static int
eqhex(const uint8_t *got, size_t len, const char *hex)
{
	uint8_t		want[512];

	if (strlen(hex) != 2 * len)
		return 0;
	unhex(hex, want);
	return memcmp(got, want, len) == 0;
}

/* ---------------------------------------------------------------------
 * AES-256-GCM
 * ---------------------------------------------------------------------
 */

typedef struct GcmVector
{
	const char *name;
	const char *key;
	const char *iv;
	const char *pt;
	const char *aad;
	const char *ct;
	const char *tag;
} GcmVector;

#define TC15_KEY "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define TC15_PT60 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
	"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define TC15_CT60 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
	"8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"

static const GcmVector gcm_vectors[] = {
	{"gcm tc13 (empty plaintext, no AAD)",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"000000000000000000000000", "", "", "",
	"530f8afbc74536b9a963b4f1c4cb738b"},
	{"gcm tc14 (16-byte plaintext, no AAD)",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"000000000000000000000000",
		"00000000000000000000000000000000", "",
		"cea7403d4d606b6e074ec5d3baf39d18",
	"d0d1c8a799996bf0265b98b5d48ab919"},
	{"gcm tc15 (64-byte plaintext, no AAD)",
		TC15_KEY, "cafebabefacedbaddecaf888",
		TC15_PT60 "1aafd255", "",
		TC15_CT60 "898015ad",
	"b094dac5d93471bdec1a502270e3cc6c"},
	{"gcm tc16 (60-byte plaintext, 20-byte AAD)",
		TC15_KEY, "cafebabefacedbaddecaf888",
		TC15_PT60, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
		TC15_CT60,
	"76fc6ece0f4e1768cddf8853bb2d551b"},
	/* Same key and nonce, AAD only: exercises the empty-data path. */
	{"gcm empty plaintext with AAD (tc16 key)",
		TC15_KEY, "cafebabefacedbaddecaf888",
		"", "feedfacedeadbeeffeedfacedeadbeefabaddad2", "",
	NULL},
};

static void
test_gcm_vector(KmsAead *aead, const GcmVector *v, size_t split)
{
	uint8_t		iv[12],
				pt[64],
				aad[32],
				ct[64],
				tag[16],
				out[64],
				tag2[16];
	size_t		ptlen = unhex(v->pt, pt);
	size_t		aadlen = unhex(v->aad, aad);
	char		name[160];
	int			rc;

	unhex(v->iv, iv);
	if (split > aadlen)
		split = aadlen;

	/* AAD given as aad1 || aad2 split at "split". */
	rc = kms_aead_encrypt(aead, iv, aad, split, aad + split, aadlen - split,
						  pt, ptlen, ct, tag);
	snprintf(name, sizeof(name), "%s: encrypt (aad split %zu)", v->name, split);
	check(name, rc == 0 && eqhex(ct, ptlen, v->ct) &&
		  (v->tag == NULL || eqhex(tag, 16, v->tag)));

	memset(out, 0xAA, sizeof(out));
	rc = kms_aead_decrypt(aead, iv, aad, split, aad + split, aadlen - split,
						  ct, ptlen, tag, out);
	snprintf(name, sizeof(name), "%s: decrypt", v->name);
	check(name, rc == 0 && memcmp(out, pt, ptlen) == 0);

	/* Any single flipped bit must fail: tag, ciphertext, AAD, nonce. */
	memcpy(tag2, tag, 16);
	tag2[15] ^= 0x01;
	rc = kms_aead_decrypt(aead, iv, aad, split, aad + split, aadlen - split,
						  ct, ptlen, tag2, out);
	snprintf(name, sizeof(name), "%s: tampered tag rejected", v->name);
	check(name, rc == -1);

	if (ptlen > 0)
	{
		ct[ptlen / 2] ^= 0x80;
		rc = kms_aead_decrypt(aead, iv, aad, split, aad + split, aadlen - split,
							  ct, ptlen, tag, out);
		ct[ptlen / 2] ^= 0x80;
		snprintf(name, sizeof(name), "%s: tampered ciphertext rejected", v->name);
		check(name, rc == -1);
	}
	if (aadlen > 0)
	{
		aad[0] ^= 0x01;
		rc = kms_aead_decrypt(aead, iv, aad, split, aad + split, aadlen - split,
							  ct, ptlen, tag, out);
		aad[0] ^= 0x01;
		snprintf(name, sizeof(name), "%s: tampered AAD rejected", v->name);
		check(name, rc == -1);
	}
	iv[11] ^= 0x01;
	rc = kms_aead_decrypt(aead, iv, aad, split, aad + split, aadlen - split,
						  ct, ptlen, tag, out);
	snprintf(name, sizeof(name), "%s: wrong nonce rejected", v->name);
	check(name, rc == -1);
}

static void
test_gcm(void)
{
	size_t		i;
	KmsAead    *kept;
	uint8_t		key[32];

	for (i = 0; i < sizeof(gcm_vectors) / sizeof(gcm_vectors[0]); i++)
	{
		KmsAead    *aead;

		unhex(gcm_vectors[i].key, key);
		aead = kms_aead_new(key);
		check("kms_aead_new", aead != NULL);
		if (aead == NULL)
			continue;
		test_gcm_vector(aead, &gcm_vectors[i], 0);
		test_gcm_vector(aead, &gcm_vectors[i], 7);	/* AAD across both parts */
		kms_aead_free(aead);
	}

	/*
	 * One kept context alternating between messages: each call must reset
	 * the whole GCM state, not only the nonce.
	 */
	unhex(TC15_KEY, key);
	kept = kms_aead_new(key);
	for (i = 0; i < 3; i++)
	{
		test_gcm_vector(kept, &gcm_vectors[3], 20);
		test_gcm_vector(kept, &gcm_vectors[2], 0);
	}
	kms_aead_free(kept);
	kms_aead_free(NULL);
	check("kms_aead_free(NULL) is a no-op", 1);
	check("kms_aead_new(NULL) fails", kms_aead_new(NULL) == NULL);
}

/* ---------------------------------------------------------------------
 * HKDF-SHA256, RFC 5869 appendix A.1-A.3
 * ---------------------------------------------------------------------
 */

static void
test_hkdf(void)
{
	uint8_t		ikm[80],
				salt[80],
				info[80],
				okm[82];
	int			i,
				rc;

	memset(ikm, 0x0b, 22);
	unhex("000102030405060708090a0b0c", salt);
	unhex("f0f1f2f3f4f5f6f7f8f9", info);
	rc = kms_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42);
	check("hkdf rfc5869 test case 1", rc == 0 &&
		  eqhex(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db0"
				"2d56ecc4c5bf34007208d5b887185865"));

	for (i = 0; i < 80; i++)
	{
		ikm[i] = (uint8_t) i;
		salt[i] = (uint8_t) (0x60 + i);
		info[i] = (uint8_t) (0xb0 + i);
	}
	rc = kms_hkdf_sha256(ikm, 80, salt, 80, info, 80, okm, 82);
	check("hkdf rfc5869 test case 2", rc == 0 &&
		  eqhex(okm, 82, "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050"
				"cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b836"
				"7793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"));

	memset(ikm, 0x0b, 22);
	rc = kms_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 42);
	check("hkdf rfc5869 test case 3 (empty salt and info)", rc == 0 &&
		  eqhex(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec345"
				"4e5f3c738d2d9d201395faa4b61a96c8"));

	check("hkdf rejects L = 0", kms_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 0) == -1);
	check("hkdf rejects NULL out", kms_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, NULL, 32) == -1);

	/* The data key: HKDF(material, D, "pg_kms v1 data key"), value from Python. */
	for (i = 0; i < 32; i++)
		ikm[i] = (uint8_t) i;
	for (i = 0; i < 12; i++)
		salt[i] = (uint8_t) (0x40 + i);
	rc = kms_derive_data_key(ikm, 32, salt, okm);
	check("kms_derive_data_key known answer", rc == 0 &&
		  eqhex(okm, 32, "a3ae345ac4e881eeb3a6015038cfde29bfd9e19b85d3fccbc05f"
				"cbe29b5c19d3"));
}

/* ---------------------------------------------------------------------
 * HMAC, RFC 4231 test cases 1 and 2
 * ---------------------------------------------------------------------
 */

static void
test_hmac(void)
{
	static const struct
	{
		const char *name;
		const char *digest;
		int			tc;
		const char *mac;
	}			v[] = {
		{"hmac-sha256 rfc4231 tc1", "SHA256", 1,
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"hmac-sha256 rfc4231 tc2", "SHA256", 2,
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"hmac-sha384 rfc4231 tc1", "SHA384", 1,
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
		"faea9ea9076ede7f4af152e8b2fa9cb6"},
		{"hmac-sha384 rfc4231 tc2", "SHA384", 2,
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
		"8e2240ca5e69e2c78b3239ecfab21649"},
		{"hmac-sha512 rfc4231 tc1", "SHA512", 1,
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
		"daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{"hmac-sha512 rfc4231 tc2", "SHA512", 2,
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
		"9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	};
	uint8_t		key1[20],
				out[64],
				kcv[16],
				master[32];
	size_t		outlen,
				i;

	memset(key1, 0x0b, sizeof(key1));
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		int			rc;

		if (v[i].tc == 1)
			rc = kms_hmac(v[i].digest, key1, 20, (const uint8_t *) "Hi There", 8,
						  out, &outlen);
		else
			rc = kms_hmac(v[i].digest, (const uint8_t *) "Jefe", 4,
						  (const uint8_t *) "what do ya want for nothing?", 28,
						  out, &outlen);
		check(v[i].name, rc == 0 && outlen * 2 == strlen(v[i].mac) &&
			  eqhex(out, outlen, v[i].mac));
	}
	check("hmac rejects unknown digest",
		  kms_hmac("MD5", key1, 20, key1, 20, out, &outlen) == -1 && outlen == 0);
	check("hmac rejects NULL digest",
		  kms_hmac(NULL, key1, 20, key1, 20, out, &outlen) == -1);
	check("hmac accepts empty key and message",
		  kms_hmac("SHA256", NULL, 0, NULL, 0, out, &outlen) == 0 &&
		  eqhex(out, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));

	/* KCV of master 00..1f, value computed with Python's hmac module. */
	for (i = 0; i < 32; i++)
		master[i] = (uint8_t) i;
	check("kms_master_kcv known answer", kms_master_kcv(master, kcv) == 0 &&
		  eqhex(kcv, 16, "6a010a5925b51300e039bfa844eb39a6"));
}

/* ---------------------------------------------------------------------
 * Canonical encryption context
 * ---------------------------------------------------------------------
 */

static void
test_context(void)
{
	KmsContextPair p[4];
	uint8_t		out[128];
	size_t		outlen;
	int			rc;
	static char big[65536];

	rc = kms_context_encode(NULL, 0, out, sizeof(out), &outlen);
	check("context: empty encodes as 00 00",
		  rc == 0 && outlen == 2 && out[0] == 0 && out[1] == 0 &&
		  kms_context_encoded_len(NULL, 0) == 2);

	/* "b", "aa", "a", "" must sort to "", "a", "aa", "b". */
	p[0] = (KmsContextPair) {"b", 1, "2", 1};
	p[1] = (KmsContextPair) {"aa", 2, "3", 1};
	p[2] = (KmsContextPair) {"a", 1, "1", 1};
	p[3] = (KmsContextPair) {"", 0, "", 0};
	check("context: encoded_len", kms_context_encoded_len(p, 4) == 25);
	rc = kms_context_encode(p, 4, out, sizeof(out), &outlen);
	check("context: sorted, shorter key first",
		  rc == 0 && outlen == 25 &&
		  eqhex(out, outlen, "0004" "0000" "0000"
				"000161" "000131"
				"00026161" "000133"
				"000162" "000132"));
	check("context: pairs sorted in place",
		  p[0].keylen == 0 && p[1].keylen == 1 && p[1].key[0] == 'a' &&
		  p[2].keylen == 2 && p[3].key[0] == 'b');

	rc = kms_context_encode(p, 4, out, 24, &outlen);
	check("context: outcap one short rejected", rc == -1);

	/* Byte order, not signed char order: 0x80 sorts after 0x7f. */
	p[0] = (KmsContextPair) {"\x80", 1, "x", 1};
	p[1] = (KmsContextPair) {"\x7f", 1, "y", 1};
	rc = kms_context_encode(p, 2, out, sizeof(out), &outlen);
	check("context: unsigned byte order",
		  rc == 0 && eqhex(out, outlen, "0002" "00017f" "000179" "000180" "000178"));

	p[0] = (KmsContextPair) {"k", 1, "1", 1};
	p[1] = (KmsContextPair) {"j", 1, "2", 1};
	p[2] = (KmsContextPair) {"k", 1, "3", 1};
	check("context: duplicate key rejected",
		  kms_context_encode(p, 3, out, sizeof(out), &outlen) == -1);

	p[0] = (KmsContextPair) {big, 65536, "v", 1};
	check("context: key of 65536 bytes rejected",
		  kms_context_encode(p, 1, out, sizeof(out), &outlen) == -1 &&
		  kms_context_encoded_len(p, 1) == 0);
	p[0] = (KmsContextPair) {"k", 1, big, 65536};
	check("context: value of 65536 bytes rejected",
		  kms_context_encode(p, 1, out, sizeof(out), &outlen) == -1);
	check("context: negative count rejected",
		  kms_context_encode(p, -1, out, sizeof(out), &outlen) == -1);
	check("context: more than 65535 pairs rejected",
		  kms_context_encode(p, 65536, out, sizeof(out), &outlen) == -1);
	p[0] = (KmsContextPair) {NULL, 3, "v", 1};
	check("context: NULL key with length rejected",
		  kms_context_encode(p, 1, out, sizeof(out), &outlen) == -1);
}

/* ---------------------------------------------------------------------
 * Wrapping
 * ---------------------------------------------------------------------
 */

static void
test_wrap(void)
{
	uint8_t		master[32],
				key_id[16],
				material[64],
				wrapped[64 + KMS_WRAP_OVERHEAD],
				out[64];
	size_t		outlen,
				i;
	int			rc,
				allzero;

	kms_random_bytes(master, 32);
	kms_random_bytes(key_id, 16);
	kms_random_bytes(material, 64);

	rc = kms_wrap(master, key_id, 7, material, 32, wrapped);
	check("wrap: format byte", rc == 0 && wrapped[0] == KMS_WRAP_FORMAT_V1);
	rc = kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
					out, sizeof(out), &outlen);
	check("wrap: round trip 32 bytes",
		  rc == 0 && outlen == 32 && memcmp(out, material, 32) == 0);

	rc = kms_wrap(master, key_id, 7, material, 64, wrapped);
	rc |= kms_unwrap(master, key_id, 7, wrapped, 64 + KMS_WRAP_OVERHEAD,
					 out, 64, &outlen);
	check("wrap: round trip 64 bytes (HMAC_512 material)",
		  rc == 0 && outlen == 64 && memcmp(out, material, 64) == 0);

	rc = kms_wrap(master, key_id, 7, material, 32, wrapped);
	check("wrap: wrong version rejected",
		  kms_unwrap(master, key_id, 8, wrapped, 32 + KMS_WRAP_OVERHEAD,
					 out, sizeof(out), &outlen) == -1 && outlen == 0);
	key_id[0] ^= 1;
	check("wrap: wrong key id rejected",
		  kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
					 out, sizeof(out), &outlen) == -1);
	key_id[0] ^= 1;
	master[31] ^= 1;
	check("wrap: wrong master key rejected",
		  kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
					 out, sizeof(out), &outlen) == -1);
	master[31] ^= 1;

	for (i = 0; i < 32 + KMS_WRAP_OVERHEAD; i += 5)
	{
		memset(out, 0x55, sizeof(out));
		wrapped[i] ^= 0x10;
		rc = kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
						out, sizeof(out), &outlen);
		wrapped[i] ^= 0x10;
		allzero = 1;
		for (size_t j = 0; j < sizeof(out); j++)
			allzero &= out[j] == 0;
		if (rc != -1 || !allzero)
			break;
	}
	check("wrap: every tampered byte rejected and out zeroed",
		  i >= 32 + KMS_WRAP_OVERHEAD);

	check("wrap: outcap too small rejected",
		  kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
					 out, 31, &outlen) == -1);
	check("wrap: truncated input rejected",
		  kms_unwrap(master, key_id, 7, wrapped, KMS_WRAP_OVERHEAD - 1,
					 out, sizeof(out), &outlen) == -1);
	check("wrap: truncated by one byte rejected",
		  kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD - 1,
					 out, sizeof(out), &outlen) == -1);
	wrapped[0] = 0x02;
	check("wrap: bad format byte rejected",
		  kms_unwrap(master, key_id, 7, wrapped, 32 + KMS_WRAP_OVERHEAD,
					 out, sizeof(out), &outlen) == -1);
}

/* ---------------------------------------------------------------------
 * Blob layout
 * ---------------------------------------------------------------------
 */

static void
test_blob(void)
{
	uint8_t		blob[KMS_BLOB_OVERHEAD + 32],
				key_id[16],
				salt[12],
				nonce[12],
				material[32],
				kd[32],
				ctx[64],
				pt[32],
				out[32];
	KmsBlobHeader hdr;
	KmsContextPair pairs[2] = {{"tenant", 6, "42", 2}, {"purpose", 7, "ssn", 3}};
	size_t		ctxlen;
	KmsAead    *aead;
	int			rc;

	memset(blob, 0, sizeof(blob));
	blob[0] = 1;
	blob[20] = 1;				/* version 1 */
	check("blob: 60 bytes rejected", kms_blob_parse(blob, 60, &hdr) == -1);
	check("blob: 61 bytes accepted (empty plaintext)",
		  kms_blob_parse(blob, 61, &hdr) == 0 && hdr.ciphertext_len == 0 &&
		  hdr.tag == blob + 45 && hdr.ciphertext == blob + 45);
	check("blob: NULL rejected", kms_blob_parse(NULL, 61, &hdr) == -1);
	blob[0] = 2;
	check("blob: format 2 rejected", kms_blob_parse(blob, 61, &hdr) == -1);
	blob[0] = 1;
	blob[20] = 0;
	check("blob: version 0 rejected", kms_blob_parse(blob, 61, &hdr) == -1);

	/* A full blob: header || ct || tag, AAD = header || context. */
	kms_random_bytes(key_id, 16);
	kms_random_bytes(salt, 12);
	kms_random_bytes(nonce, 12);
	kms_random_bytes(material, 32);
	kms_random_bytes(pt, 32);
	kms_blob_write_header(blob, key_id, 0x01020304, salt, nonce);
	check("blob: header layout",
		  blob[0] == 1 && memcmp(blob + 1, key_id, 16) == 0 &&
		  blob[17] == 1 && blob[18] == 2 && blob[19] == 3 && blob[20] == 4 &&
		  memcmp(blob + 21, salt, 12) == 0 && memcmp(blob + 33, nonce, 12) == 0);
	kms_context_encode(pairs, 2, ctx, sizeof(ctx), &ctxlen);
	kms_derive_data_key(material, 32, salt, kd);
	aead = kms_aead_new(kd);
	rc = kms_aead_encrypt(aead, nonce, blob, KMS_HEADER_LEN, ctx, ctxlen,
						  pt, 32, blob + KMS_HEADER_LEN, blob + KMS_HEADER_LEN + 32);
	rc |= kms_blob_parse(blob, sizeof(blob), &hdr);
	check("blob: parse fields",
		  rc == 0 && hdr.format == 1 && hdr.version == 0x01020304 &&
		  memcmp(hdr.key_id, key_id, 16) == 0 && hdr.salt == blob + 21 &&
		  hdr.nonce == blob + 33 && hdr.ciphertext_len == 32 &&
		  hdr.tag == blob + 77);
	rc = kms_aead_decrypt(aead, hdr.nonce, blob, KMS_HEADER_LEN, ctx, ctxlen,
						  hdr.ciphertext, hdr.ciphertext_len, hdr.tag, out);
	check("blob: round trip", rc == 0 && memcmp(out, pt, 32) == 0);
	rc = kms_aead_decrypt(aead, hdr.nonce, blob, KMS_HEADER_LEN, ctx, ctxlen - 1,
						  hdr.ciphertext, hdr.ciphertext_len, hdr.tag, out);
	check("blob: different context rejected", rc == -1);
	blob[5] ^= 1;
	rc = kms_aead_decrypt(aead, hdr.nonce, blob, KMS_HEADER_LEN, ctx, ctxlen,
						  hdr.ciphertext, hdr.ciphertext_len, hdr.tag, out);
	check("blob: tampered key id rejected", rc == -1);
	kms_aead_free(aead);
}

/* ---------------------------------------------------------------------
 * The worked example of docs/ciphertext-format.md, produced by the
 * independent Python implementation (test/interop/kms_blob.py).
 * ---------------------------------------------------------------------
 */

#define DOC_WRAPPED "01101112131415161718191a1bdd5f3ab5ed6c9c1462dca2b6a3d4c7fc67e1fc" \
	"bdaf77e1065f4058dce2e9ea643bec8e87b284eff1204d5fcca8a5e61b"
#define DOC_BLOB "018f7e5d3c2b1a4c9d8e7f0123456789ab00000001404142434445464748494a4b" \
	"505152535455565758595a5b6542db6ba15fbdb00d4c5fdddfb33d35d0f72837cdeb95072272ca5d6ba1"

static void
test_docs_vector(void)
{
	uint8_t		master[32],
				key_id[16],
				wrapped[64],
				blob[128],
				material[64],
				kd[32],
				ctx[64],
				pt[64],
				reenc[128];
	KmsContextPair pairs[2] = {{"tenant", 6, "42", 2}, {"purpose", 7, "ssn", 3}};
	size_t		wlen = unhex(DOC_WRAPPED, wrapped),
				blen = unhex(DOC_BLOB, blob),
				mlen,
				ctxlen;
	KmsBlobHeader hdr;
	KmsAead    *aead;
	int			i,
				rc;

	for (i = 0; i < 32; i++)
		master[i] = (uint8_t) i;
	unhex("8f7e5d3c2b1a4c9d8e7f0123456789ab", key_id);

	rc = kms_unwrap(master, key_id, 1, wrapped, wlen, material, sizeof(material), &mlen);
	check("docs vector: unwrap", rc == 0 && mlen == 32 &&
		  eqhex(material, 32, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"));
	rc = kms_context_encode(pairs, 2, ctx, sizeof(ctx), &ctxlen);
	check("docs vector: context encoding", rc == 0 &&
		  eqhex(ctx, ctxlen, "00020007707572706f7365000373736e000674656e616e7400023432"));
	rc = kms_blob_parse(blob, blen, &hdr);
	check("docs vector: parse", rc == 0 && hdr.version == 1 &&
		  memcmp(hdr.key_id, key_id, 16) == 0 && hdr.ciphertext_len == 14);
	rc = kms_derive_data_key(material, 32, hdr.salt, kd);
	check("docs vector: K_D", rc == 0 &&
		  eqhex(kd, 32, "cf4ad5ecf736cb90bb49743eda9a655df7944b1296541adfac4af028a02314fb"));
	aead = kms_aead_new(kd);
	rc = kms_aead_decrypt(aead, hdr.nonce, blob, KMS_HEADER_LEN, ctx, ctxlen,
						  hdr.ciphertext, hdr.ciphertext_len, hdr.tag, pt);
	check("docs vector: decrypt", rc == 0 && memcmp(pt, "Hello, pg_kms!", 14) == 0);

	/* Same salt and nonce: C must reproduce the Python bytes exactly. */
	kms_blob_write_header(reenc, key_id, 1, hdr.salt, hdr.nonce);
	rc = kms_aead_encrypt(aead, hdr.nonce, reenc, KMS_HEADER_LEN, ctx, ctxlen,
						  (const uint8_t *) "Hello, pg_kms!", 14,
						  reenc + KMS_HEADER_LEN, reenc + KMS_HEADER_LEN + 14);
	check("docs vector: re-encryption identical", rc == 0 &&
		  memcmp(reenc, blob, blen) == 0);
	kms_aead_free(aead);
}

static void
test_misc(void)
{
	uint8_t		a[16] = {1, 2, 3},
				b[16] = {1, 2, 3},
				r1[32] = {0},
				r2[32] = {0};

	check("const_time_eq equal", kms_const_time_eq(a, b, 16) == 1);
	b[15] = 9;
	check("const_time_eq different", kms_const_time_eq(a, b, 16) == 0);
	check("const_time_eq empty", kms_const_time_eq(a, b, 0) == 1);
	check("random_bytes", kms_random_bytes(r1, 32) == 0 &&
		  kms_random_bytes(r2, 32) == 0 && memcmp(r1, r2, 32) != 0);
	kms_cleanse(r1, 32);
	check("cleanse", r1[0] == 0 && r1[31] == 0);
	check("overhead is 61 bytes", KMS_BLOB_OVERHEAD == 61);
}

int
main(void)
{
	test_gcm();
	test_hkdf();
	test_hmac();
	test_context();
	test_wrap();
	test_blob();
	test_docs_vector();
	test_misc();
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed == 0 ? 0 : 1;
}
