/*-------------------------------------------------------------------------
 *
 * siv.c
 *	  AES-SIV (RFC 5297): S2V over AES-CMAC, then AES-CTR keyed by the
 *	  second half of the key with the synthetic IV as the counter block (bits
 *	  63 and 31 cleared).  One associated-data string and the plaintext are
 *	  S2V's two inputs.  See siv.h.
 *
 *	  Each KmsSiv keeps two keyed OpenSSL contexts (AES-ECB for CMAC, AES-CTR),
 *	  so a message costs no key schedule.  Not thread-safe; backends are
 *	  single-threaded.
 *
 * IDENTIFICATION
 *	  src/tce/siv.c
 *
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tce/siv.h"

struct KmsSiv
{
	EVP_CIPHER_CTX *ecb;		/* AES-ECB under the S2V key, no padding */
	EVP_CIPHER_CTX *ctr;		/* AES-CTR under the CTR key */
	uint8_t		k1[16];			/* CMAC subkeys */
	uint8_t		k2[16];
};

static void
siv_dbl(uint8_t *b)
{
	uint8_t		carry = b[0] & 0x80;

	for (int i = 0; i < 15; i++)
		b[i] = (uint8_t) ((b[i] << 1) | (b[i + 1] >> 7));
	b[15] = (uint8_t) (b[15] << 1);
	if (carry)
		b[15] ^= 0x87;
}

static int
siv_block(KmsSiv *s, const uint8_t *in, uint8_t *out)
{
	int			outl = 0;

	return EVP_EncryptUpdate(s->ecb, out, &outl, in, 16) == 1 && outl == 16 ? 0 : -1;
}

/*
 * AES-CMAC of msg[0..len), with xorend (if not NULL) xored into the last 16
 * bytes of msg on the fly (S2V's "xorend", len >= 16).
 */
static int
siv_cmac(KmsSiv *s, const uint8_t *msg, size_t len, const uint8_t *xorend,
		 uint8_t *out)
{
	uint8_t		x[16] = {0};
	uint8_t		blk[16];
	size_t		nblocks = (len + 15) / 16;
	int			complete;

	if (nblocks == 0)
	{
		nblocks = 1;
		complete = 0;
	}
	else
		complete = (len % 16) == 0;

	for (size_t b = 0; b < nblocks; b++)
	{
		size_t		off = b * 16;
		size_t		n = len - off < 16 ? len - off : 16;

		if (len > 0)
			memcpy(blk, msg + off, n);
		if (xorend != NULL)
			for (size_t i = 0; i < n; i++)
				if (off + i >= len - 16)
					blk[i] ^= xorend[off + i - (len - 16)];
		if (b == nblocks - 1)
		{
			if (complete)
				for (int i = 0; i < 16; i++)
					blk[i] ^= s->k1[i];
			else
			{
				blk[n] = 0x80;
				memset(blk + n + 1, 0, 16 - n - 1);
				for (int i = 0; i < 16; i++)
					blk[i] ^= s->k2[i];
			}
		}
		for (int i = 0; i < 16; i++)
			x[i] ^= blk[i];
		if (siv_block(s, x, x) != 0)
			return -1;
	}
	memcpy(out, x, 16);
	OPENSSL_cleanse(blk, sizeof(blk));
	return 0;
}

/* S2V(aad, pt) into v. */
static int
siv_s2v(KmsSiv *s, const uint8_t *aad, size_t aadlen,
		const uint8_t *pt, size_t ptlen, uint8_t *v)
{
	static const uint8_t zero[16] = {0};
	uint8_t		d[16];
	uint8_t		t[16];
	int			rc = -1;

	if (siv_cmac(s, zero, 16, NULL, d) != 0)
		goto done;
	siv_dbl(d);
	if (siv_cmac(s, aad, aadlen, NULL, t) != 0)
		goto done;
	for (int i = 0; i < 16; i++)
		d[i] ^= t[i];
	if (ptlen >= 16)
		rc = siv_cmac(s, pt, ptlen, d, v);
	else
	{
		siv_dbl(d);
		memset(t, 0, 16);
		if (ptlen > 0)
			memcpy(t, pt, ptlen);
		t[ptlen] = 0x80;
		for (int i = 0; i < 16; i++)
			t[i] ^= d[i];
		rc = siv_cmac(s, t, 16, NULL, v);
	}
done:
	OPENSSL_cleanse(d, sizeof(d));
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

static int
siv_ctr(KmsSiv *s, const uint8_t *v, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t		q[16];

	memcpy(q, v, 16);
	q[8] &= 0x7f;
	q[12] &= 0x7f;
	if (EVP_EncryptInit_ex2(s->ctr, NULL, NULL, q, NULL) != 1)
		return -1;
	while (len > 0)
	{
		int			chunk = len > (size_t) (INT_MAX / 2) ? INT_MAX / 2 : (int) len;
		int			outl = 0;

		if (EVP_EncryptUpdate(s->ctr, out, &outl, in, chunk) != 1 || outl != chunk)
			return -1;
		in += chunk;
		out += chunk;
		len -= chunk;
	}
	return 0;
}

KmsSiv *
kms_siv_new(const uint8_t *key, size_t keylen)
{
	KmsSiv	   *s;
	const EVP_CIPHER *ecb;
	const EVP_CIPHER *ctr;
	size_t		half = keylen / 2;
	static const uint8_t zero[16] = {0};
	uint8_t		l[16];

	if (keylen == 64)
	{
		ecb = EVP_aes_256_ecb();
		ctr = EVP_aes_256_ctr();
	}
	else if (keylen == 32)
	{
		ecb = EVP_aes_128_ecb();
		ctr = EVP_aes_128_ctr();
	}
	else
		return NULL;

	s = calloc(1, sizeof(KmsSiv));
	if (s == NULL)
		return NULL;
	s->ecb = EVP_CIPHER_CTX_new();
	s->ctr = EVP_CIPHER_CTX_new();
	if (s->ecb == NULL || s->ctr == NULL ||
		EVP_EncryptInit_ex2(s->ecb, ecb, key, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_set_padding(s->ecb, 0) != 1 ||
		EVP_EncryptInit_ex2(s->ctr, ctr, key + half, zero, NULL) != 1 ||
		siv_block(s, zero, l) != 0)
	{
		kms_siv_free(s);
		return NULL;
	}
	siv_dbl(l);
	memcpy(s->k1, l, 16);
	siv_dbl(l);
	memcpy(s->k2, l, 16);
	OPENSSL_cleanse(l, sizeof(l));
	return s;
}

void
kms_siv_free(KmsSiv *s)
{
	if (s == NULL)
		return;
	EVP_CIPHER_CTX_free(s->ecb);
	EVP_CIPHER_CTX_free(s->ctr);
	OPENSSL_cleanse(s, sizeof(KmsSiv));
	free(s);
}

int
kms_siv_encrypt(KmsSiv *s, const uint8_t *aad, size_t aadlen,
				const uint8_t *pt, size_t ptlen, uint8_t *siv_out, uint8_t *ct)
{
	if (siv_s2v(s, aad, aadlen, pt, ptlen, siv_out) != 0)
		return -1;
	return siv_ctr(s, siv_out, pt, ptlen, ct);
}

int
kms_siv_decrypt(KmsSiv *s, const uint8_t *aad, size_t aadlen,
				const uint8_t *siv_in, const uint8_t *ct, size_t ctlen,
				uint8_t *pt)
{
	uint8_t		v[16];

	if (siv_ctr(s, siv_in, ct, ctlen, pt) != 0 ||
		siv_s2v(s, aad, aadlen, pt, ctlen, v) != 0 ||
		CRYPTO_memcmp(v, siv_in, 16) != 0)
	{
		if (ctlen > 0)
			OPENSSL_cleanse(pt, ctlen);
		return -1;
	}
	return 0;
}

/* RFC 5297, appendix A.1 (AES-128-SIV, deterministic use, one AD string). */
int
kms_siv_selftest(void)
{
	static const uint8_t key[32] = {
		0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8,
		0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0,
		0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
		0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
	static const uint8_t ad[24] = {
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
		0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
		0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27};
	static const uint8_t pt[14] = {
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
	static const uint8_t want_v[16] = {
		0x85, 0x63, 0x2d, 0x07, 0xc6, 0xe8, 0xf3, 0x7f,
		0x95, 0x0a, 0xcd, 0x32, 0x0a, 0x2e, 0xcc, 0x93};
	static const uint8_t want_c[14] = {
		0x40, 0xc0, 0x2b, 0x96, 0x90, 0xc4, 0xdc, 0x04,
		0xda, 0xef, 0x7f, 0x6a, 0xfe, 0x5c};
	uint8_t		v[16];
	uint8_t		c[14];
	uint8_t		p[14];
	KmsSiv	   *s = kms_siv_new(key, sizeof(key));
	int			rc = -1;

	if (s == NULL)
		return -1;
	if (kms_siv_encrypt(s, ad, sizeof(ad), pt, sizeof(pt), v, c) == 0 &&
		memcmp(v, want_v, 16) == 0 && memcmp(c, want_c, 14) == 0 &&
		kms_siv_decrypt(s, ad, sizeof(ad), v, c, sizeof(c), p) == 0 &&
		memcmp(p, pt, 14) == 0)
	{
		/* a tampered tag must fail */
		v[0] ^= 1;
		if (kms_siv_decrypt(s, ad, sizeof(ad), v, c, sizeof(c), p) != 0)
			rc = 0;
	}
	kms_siv_free(s);
	return rc;
}
