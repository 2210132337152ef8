/*-------------------------------------------------------------------------
 *
 * fuzz_ciphertext.c
 *	  Fuzz driver for src/crypto/crypto.c: mutated ciphertext blobs must never
 *	  decrypt, and no input to kms_blob_parse, kms_aead_decrypt,
 *	  kms_unwrap or kms_context_encode may crash or read out of bounds.
 *
 * Stand-alone: "fuzz_ciphertext [iterations [seed]]", deterministic for a
 * given seed, built with -fsanitize=address,undefined.  Every mutated
 * input is copied into a heap buffer of exactly its length so that the
 * sanitizer sees any read past its end.  With -DPG_KMS_LIBFUZZER the same
 * checks run from LLVMFuzzerTestOneInput instead of main.
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_ciphertext.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define MAX_PT		300
#define MAX_PAIRS	5
#define MAX_BLOB	(KMS_BLOB_OVERHEAD + MAX_PT + 64)

static long npassed = 0;
static long nfailed = 0;

static void
check(int ok, const char *what, unsigned long iter)
{
	if (ok)
		npassed++;
	else
	{
		/* Report the first few only; the count tells the rest. */
		if (nfailed < 20)
			printf("FAIL %s (iteration %lu)\n", what, iter);
		nfailed++;
	}
}

static int
all_zero(const uint8_t *p, size_t n)
{
	size_t		i;
	uint8_t		acc = 0;

	for (i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * Parse and decrypt a candidate blob as the server would: derive K_D from
 * the version material and the blob's own salt, reusing the context of the
 * genuine salt when it matches (the server caches one per (version, D)).
 * Returns the decrypt status, or -1 when parsing already refused the blob.
 * On failure the plaintext buffer must come back zeroed.
 */
static int
try_decrypt(const uint8_t *material, const uint8_t *salt, KmsAead *cached,
			const uint8_t *cand, size_t len,
			const uint8_t *ctx, size_t ctxlen, unsigned long iter)
{
	KmsBlobHeader hdr;
	uint8_t		kd[32];
	uint8_t    *pt;
	KmsAead    *aead = cached;
	int			rc;

	if (kms_blob_parse(cand, len, &hdr) != 0)
		return -1;
	check(hdr.ciphertext_len == len - KMS_BLOB_OVERHEAD &&
		  hdr.tag + KMS_TAG_LEN == cand + len, "parse bounds", iter);
	if (aead == NULL || salt == NULL || memcmp(salt, hdr.salt, KMS_SALT_LEN) != 0)
	{
		if (kms_derive_data_key(material, 32, hdr.salt, kd) != 0 ||
			(aead = kms_aead_new(kd)) == NULL)
		{
			check(0, "derive/new", iter);
			return -1;
		}
		kms_cleanse(kd, sizeof(kd));
	}
	pt = malloc(hdr.ciphertext_len > 0 ? hdr.ciphertext_len : 1);
	memset(pt, 0xA5, hdr.ciphertext_len);
	rc = kms_aead_decrypt(aead, hdr.nonce, cand, KMS_HEADER_LEN, ctx, ctxlen,
						  hdr.ciphertext, hdr.ciphertext_len, hdr.tag, pt);
	if (rc != 0)
		check(all_zero(pt, hdr.ciphertext_len), "failed decrypt zeroes output", iter);
	free(pt);
	if (aead != cached)
		kms_aead_free(aead);
	return rc;
}

#ifdef PG_KMS_LIBFUZZER

/*
 * libFuzzer entry: the input is used as a blob, as a wrapped key and as a
 * context.  None of them can authenticate, so every decrypt must fail.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t material[32] = {1, 2, 3};
	static const uint8_t key_id[16] = {4, 5, 6};
	uint8_t		out[512];
	size_t		outlen;
	KmsContextPair pairs[4];
	int			i;

	if (try_decrypt(material, NULL, NULL, data, size, NULL, 0, 0) == 0)
		abort();
	if (kms_unwrap(material, key_id, 1, data, size, out, sizeof(out),
				   &outlen) == 0)
		abort();
	for (i = 0; i < 4; i++)
	{
		size_t		a = size > 0 ? data[i % size] % (size + 1) : 0;

		pairs[i].key = (const char *) data;
		pairs[i].keylen = a;
		pairs[i].val = (const char *) data + (size - a);
		pairs[i].vallen = a;
	}
	(void) kms_context_encode(pairs, size > 0 ? data[0] % 5 : 0, out,
							  sizeof(out), &outlen);
	return 0;
}

#else							/* stand-alone driver */

/* splitmix64: deterministic, seedable, good enough to drive mutations. */
static uint64_t rng_state;

static uint64_t
rng64(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t
rng_below(size_t n)
{
	return n == 0 ? 0 : (size_t) (rng64() % n);
}

static void
rng_fill(uint8_t *p, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t) rng64();
}

/* A heap copy of exactly len bytes (at least one allocated byte). */
static uint8_t *
exact_copy(const uint8_t *p, size_t len)
{
	uint8_t    *c = malloc(len > 0 ? len : 1);

	if (c == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	if (len > 0)
		memcpy(c, p, len);
	return c;
}

/* Random context pairs over a small alphabet, so duplicates happen too. */
static int
random_pairs(KmsContextPair *pairs, char (*buf)[2][16])
{
	int			n = (int) rng_below(MAX_PAIRS + 1);
	int			i;

	for (i = 0; i < n; i++)
	{
		size_t		kl = rng_below(6),
					vl = rng_below(16);
		size_t		j;

		for (j = 0; j < kl; j++)
			buf[i][0][j] = "abcdef\x80\xff"[rng_below(8)];
		rng_fill((uint8_t *) buf[i][1], vl);
		pairs[i].key = buf[i][0];
		pairs[i].keylen = kl;
		pairs[i].val = buf[i][1];
		pairs[i].vallen = vl;
	}
	return n;
}

/* Mutate blob[0..len) into out; returns the new length. */
static size_t
mutate(const uint8_t *blob, size_t len, uint8_t *out, size_t cap)
{
	size_t		n = len,
				i,
				k;

	memcpy(out, blob, len);
	switch (rng_below(9))
	{
		case 0:					/* one bit anywhere */
			out[rng_below(len)] ^= (uint8_t) (1u << rng_below(8));
			break;
		case 1:					/* a few bits */
			k = 1 + rng_below(8);
			for (i = 0; i < k; i++)
				out[rng_below(len)] ^= (uint8_t) (1u << rng_below(8));
			break;
		case 2:					/* truncation */
			n = rng_below(len);
			break;
		case 3:					/* appended bytes */
			k = 1 + rng_below(32);
			rng_fill(out + len, k);
			n = len + k;
			break;
		case 4:					/* random garbage of random length */
			n = rng_below(cap);
			rng_fill(out, n);
			if (n > 0 && rng_below(2))
				out[0] = KMS_FORMAT_V1;	/* get past the format check */
			break;
		case 5:					/* zero length */
			n = 0;
			break;
		case 6:					/* one header field byte replaced */
			out[rng_below(KMS_HEADER_LEN)] = (uint8_t) rng64();
			break;
		case 7:					/* a byte of the tag */
			out[len - 1 - rng_below(KMS_TAG_LEN)] ^= (uint8_t) (1 + rng_below(255));
			break;
		default:				/* drop one byte in the middle */
			k = rng_below(len);
			memmove(out + k, out + k + 1, len - k - 1);
			n = len - 1;
			break;
	}
	return n;
}

static void
fuzz_blob_iteration(unsigned long iter)
{
	uint8_t		material[32],
				key_id[16],
				salt[12],
				nonce[12],
				kd[32],
				pt[MAX_PT],
				blob[MAX_BLOB],
				mut[MAX_BLOB],
				ctx[MAX_PAIRS * 40 + 2],
				ctx2[MAX_PAIRS * 40 + 2];
	char		kvbuf[MAX_PAIRS][2][16];
	KmsContextPair pairs[MAX_PAIRS];
	size_t		ptlen = rng_below(MAX_PT + 1),
				len,
				mlen,
				ctxlen,
				ctx2len;
	uint32_t	version = (uint32_t) rng64() | 1;
	int			npairs,
				rc;
	uint8_t    *copy;
	KmsAead    *aead;

	rng_fill(material, 32);
	rng_fill(key_id, 16);
	rng_fill(salt, 12);
	rng_fill(nonce, 12);
	rng_fill(pt, ptlen);

	npairs = random_pairs(pairs, kvbuf);
	if (kms_context_encode(pairs, npairs, ctx, sizeof(ctx), &ctxlen) != 0)
		kms_context_encode(NULL, 0, ctx, sizeof(ctx), &ctxlen);	/* dup key */

	/* Build the genuine blob. */
	kms_blob_write_header(blob, key_id, version, salt, nonce);
	if (kms_derive_data_key(material, 32, salt, kd) != 0 ||
		(aead = kms_aead_new(kd)) == NULL)
	{
		check(0, "derive/new", iter);
		return;
	}
	rc = kms_aead_encrypt(aead, nonce, blob, KMS_HEADER_LEN, ctx, ctxlen,
						  pt, ptlen, blob + KMS_HEADER_LEN,
						  blob + KMS_HEADER_LEN + ptlen);
	len = KMS_BLOB_OVERHEAD + ptlen;
	check(rc == 0, "encrypt", iter);

	/* The genuine blob decrypts (exact-length copy). */
	copy = exact_copy(blob, len);
	check(try_decrypt(material, NULL, NULL, copy, len, ctx, ctxlen, iter) == 0,
		  "genuine blob decrypts", iter);
	free(copy);

	/* A mutated blob decrypts only if it is byte-identical. */
	mlen = mutate(blob, len, mut, sizeof(mut));
	copy = exact_copy(mut, mlen);
	rc = try_decrypt(material, salt, aead, copy, mlen, ctx, ctxlen, iter);
	if (mlen == len && memcmp(mut, blob, len) == 0)
		check(rc == 0, "unchanged mutant decrypts", iter);
	else
		check(rc != 0, "mutated blob rejected", iter);
	free(copy);

	/* The genuine blob under another context decrypts only if equal. */
	npairs = random_pairs(pairs, kvbuf);
	if (kms_context_encode(pairs, npairs, ctx2, sizeof(ctx2), &ctx2len) == 0)
	{
		copy = exact_copy(blob, len);
		rc = try_decrypt(material, salt, aead, copy, len, ctx2, ctx2len, iter);
		if (ctx2len == ctxlen && memcmp(ctx, ctx2, ctxlen) == 0)
			check(rc == 0, "same context decrypts", iter);
		else
			check(rc != 0, "other context rejected", iter);
		free(copy);
	}
	kms_aead_free(aead);
}

static void
fuzz_unwrap_iteration(unsigned long iter)
{
	uint8_t		master[32],
				key_id[16],
				material[64],
				wrapped[64 + KMS_WRAP_OVERHEAD + 16],
				out[128];
	size_t		mlen = rng_below(65),
				wlen = mlen + KMS_WRAP_OVERHEAD,
				n,
				outcap,
				outlen;
	uint32_t	version = (uint32_t) rng64();
	uint8_t    *copy;
	int			rc,
				identical;

	rng_fill(master, 32);
	rng_fill(key_id, 16);
	rng_fill(material, mlen);
	if (kms_wrap(master, key_id, version, material, mlen, wrapped) != 0)
	{
		check(0, "wrap", iter);
		return;
	}

	/* Mutate like a blob, within the buffer. */
	n = mutate(wrapped, wlen, out, sizeof(wrapped));
	identical = (n == wlen && memcmp(out, wrapped, wlen) == 0);
	copy = exact_copy(out, n);
	outcap = rng_below(4) == 0 ? rng_below(80) : sizeof(out);
	memset(out, 0x5A, sizeof(out));
	rc = kms_unwrap(master, key_id, version, copy, n, out, outcap, &outlen);
	if (identical && outcap >= mlen)
		check(rc == 0 && outlen == mlen && memcmp(out, material, mlen) == 0,
			  "unmodified wrap unwraps", iter);
	else
		check(rc == -1 && outlen == 0 && all_zero(out, outcap),
			  "bad wrap rejected, output zeroed", iter);
	free(copy);
}

/* Garbage pairs, counts and capacities: check the encoding when accepted. */
static void
fuzz_context_iteration(unsigned long iter)
{
	static char big[70000];
	KmsContextPair pairs[8];
	uint8_t		out[512];
	size_t		outlen,
				outcap,
				need,
				off;
	int			npairs = (int) rng_below(9) - 1;	/* -1 .. 7 */
	int			i,
				rc,
				ok;

	for (i = 0; i < 8; i++)
	{
		pairs[i].key = big + rng_below(16);
		pairs[i].keylen = rng_below(6);
		pairs[i].val = big;
		pairs[i].vallen = rng_below(20);
		if (rng_below(50) == 0)
			pairs[i].keylen = 65535 + rng_below(3);	/* around the limit */
		if (rng_below(50) == 0)
			pairs[i].vallen = 65535 + rng_below(3);
	}
	for (i = 0; i < 32; i++)
		big[i] = "ab\x80"[rng_below(3)];

	need = kms_context_encoded_len(npairs >= 0 ? pairs : NULL, npairs);
	outcap = rng_below(sizeof(out) + 1);
	rc = kms_context_encode(pairs, npairs, out, outcap, &outlen);
	if (rc != 0)
	{
		check(outlen == 0, "rejected context leaves outlen 0", iter);
		return;
	}
	/* Accepted: exact length, in bounds, count right, keys strictly sorted. */
	ok = outlen == need && outlen <= outcap && npairs >= 0 &&
		out[0] == (npairs >> 8) && out[1] == (npairs & 0xff);
	off = 2;
	for (i = 0; ok && i < npairs && off + 2 <= outlen; i++)
	{
		size_t		kl = ((size_t) out[off] << 8) | out[off + 1];

		ok = kl == pairs[i].keylen &&
			(kl == 0 || memcmp(out + off + 2, pairs[i].key, kl) == 0);
		off += 2 + kl;
		if (off + 2 > outlen)
			break;
		off += 2 + (((size_t) out[off] << 8) | out[off + 1]);
		if (ok && i > 0)
		{
			size_t		pl = pairs[i - 1].keylen;
			size_t		m = pl < kl ? pl : kl;
			int			c = m ? memcmp(pairs[i - 1].key, pairs[i].key, m) : 0;

			ok = c < 0 || (c == 0 && pl < kl);
		}
	}
	check(ok && off == outlen, "accepted context well-formed and sorted", iter);
}

/* Parsing garbage of every short length must stay in bounds. */
static void
fuzz_parse_lengths(void)
{
	uint8_t		buf[KMS_BLOB_OVERHEAD + 2];
	KmsBlobHeader hdr;
	size_t		n;

	for (n = 0; n <= sizeof(buf); n++)
	{
		uint8_t    *copy;

		rng_fill(buf, sizeof(buf));
		buf[0] = KMS_FORMAT_V1;
		buf[20] |= 1;
		copy = exact_copy(buf, n);
		check((kms_blob_parse(copy, n, &hdr) == 0) == (n >= KMS_BLOB_OVERHEAD),
			  "parse accepts exactly len >= 61", (unsigned long) n);
		free(copy);
	}
}

int
main(int argc, char **argv)
{
	unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x706b6d73ULL;
	unsigned long i;

	rng_state = seed;
	printf("fuzz_ciphertext: %lu iterations, seed %llu\n", iterations, seed);
	fuzz_parse_lengths();
	for (i = 0; i < iterations; i++)
	{
		fuzz_blob_iteration(i);
		if (i % 4 == 0)
			fuzz_unwrap_iteration(i);
		fuzz_context_iteration(i);
	}
	printf("%ld passed, %ld failed\n", npassed, nfailed);
	return nfailed == 0 ? 0 : 1;
}

#endif							/* PG_KMS_LIBFUZZER */
