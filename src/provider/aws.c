/*-------------------------------------------------------------------------
 *
 * aws.c
 *	  The `aws` key provider (pg_kms.provider = 'aws'): every new key
 *	  version's material is a data key from AWS KMS GenerateDataKey under
 *	  pg_kms.aws_kms_key_id, and only its CiphertextBlob is stored; a cache
 *	  miss unwraps it with one Decrypt.  Both calls carry an encryption
 *	  context binding the pg_kms key id, the version and the database's
 *	  account id (kms.account), so a blob copied to another key, version or
 *	  database does not decrypt, and IAM can require the context
 *	  (kms:EncryptionContext:pg_kms_account).
 *
 *	  The stored (wrapped) form is marked, so local and aws wraps coexist
 *	  while a database migrates (kms_rotate_master_key() after the setting
 *	  changed; see KmsProviderRewrap*): byte 0xA1, the ARN of the AWS KMS
 *	  key (2-byte length, then the ARN, as GenerateDataKey/Encrypt returned
 *	  it), then AWS's CiphertextBlob, opaque.  The local form starts with
 *	  KMS_WRAP_FORMAT_V1.  Whichever provider runs, each unwraps both.
 *
 *	  Nothing happens at server start: an unreachable endpoint fails the
 *	  calls that need AWS, with the mapped error, and they work again as
 *	  soon as it answers.  No LWLock is held across a call (the key cache
 *	  releases its lock before a miss unwraps).
 *
 * IDENTIFICATION
 *	  src/provider/aws.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "aws/aws_client.h"
#include "catalog/guard.h"
#include "provider/aws_internal.h"

/* the account id bound into the context: kms.account's, else the setting's */
static const char *
context_account(void)
{
	const char *a = KmsGuardStoredAccountId();

	return (a != NULL && a[0] != '\0') ? a : KmsAccountId();
}

/* ,"EncryptionContext":{...} for (key_id, version) */
static void
append_context(StringInfo b, const uint8 *key_id, uint32 version)
{
	char		kid[37];
	char		ver[16];

	KmsUuidToString(key_id, kid);
	snprintf(ver, sizeof(ver), "%u", version);
	appendStringInfoString(b, ",\"EncryptionContext\":{\"pg_kms_account\":");
	KmsAwsJsonAppendString(b, context_account());
	appendStringInfoString(b, ",\"pg_kms_key_id\":");
	KmsAwsJsonAppendString(b, kid);
	appendStringInfoString(b, ",\"pg_kms_key_version\":");
	KmsAwsJsonAppendString(b, ver);
	appendStringInfoChar(b, '}');
}

static const char *
configured_key(void)
{
	if (kms_aws_kms_key_id == NULL || kms_aws_kms_key_id[0] == '\0')
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE), errhidestmt(true),
				 errmsg("KeyUnavailableException: pg_kms.aws_kms_key_id is not set"),
				 errhint("Set pg_kms.aws_kms_key_id to the AWS KMS key (id, ARN or alias) that wraps new key material, and reload.")));
	return kms_aws_kms_key_id;
}

bool
KmsAwsIsWrapped(const bytea *w)
{
	return VARSIZE_ANY_EXHDR(w) > 3 && ((const uint8 *) VARDATA_ANY(w))[0] == KMS_AWS_WRAP_FORMAT;
}

/* the ARN in an aws-wrapped form (palloc'd) and where the blob starts */
static char *
parse_wrapped(const bytea *w, const uint8 **blob, size_t *bloblen)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(w);
	size_t		n = VARSIZE_ANY_EXHDR(w);
	size_t		alen;

	if (n < 3 || p[0] != KMS_AWS_WRAP_FORMAT)
		return NULL;
	alen = ((size_t) p[1] << 8) | p[2];
	if (alen == 0 || 3 + alen >= n)
		return NULL;
	*blob = p + 3 + alen;
	*bloblen = n - 3 - alen;
	return pnstrdup((const char *) p + 3, alen);
}

static bytea *
make_wrapped(const char *arn, const bytea *blob)
{
	size_t		alen = strlen(arn);
	size_t		blen = VARSIZE_ANY_EXHDR(blob);
	bytea	   *w;
	uint8	   *p;

	if (alen == 0 || alen > 2048)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "AWS KMS answered with a key id of %zu bytes", alen);
	w = palloc(VARHDRSZ + 3 + alen + blen);
	SET_VARSIZE(w, VARHDRSZ + 3 + alen + blen);
	p = (uint8 *) VARDATA(w);
	p[0] = KMS_AWS_WRAP_FORMAT;
	p[1] = (uint8) (alen >> 8);
	p[2] = (uint8) (alen & 0xff);
	memcpy(p + 3, arn, alen);
	memcpy(p + 3 + alen, VARDATA_ANY(blob), blen);
	return w;
}

/*
 * Failures of the provider's calls: what AWS says about the key or the blob
 * (not found, disabled, wrong context...) makes our key unavailable; the
 * rest keeps the client's mapping (access denied, timeouts).
 */
static void
report(const KmsAwsResponse *resp, const char *what)
{
	static const char *const key_codes[] = {
		"NotFoundException", "DisabledException", "KMSInvalidStateException",
		"InvalidCiphertextException", "IncorrectKeyException",
		"InvalidKeyUsageException", "InvalidArnException", "ValidationException",
		NULL
	};

	if (resp->kind == KMS_AWS_ERR_HTTP)
		for (int i = 0; key_codes[i]; i++)
			if (strcmp(resp->aws_code, key_codes[i]) == 0)
				KmsAwsReportErrorAs(resp, what, "KeyUnavailableException",
									KMS_SQLSTATE_KEY_UNAVAILABLE);
	KmsAwsReportError(resp, what);
}

/* Plaintext of an answer into out (exactly len bytes), wiped from the body */
static void
take_plaintext(KmsAwsResponse *resp, const char *what, uint8 *out, size_t outcap,
			   size_t *outlen, size_t want)
{
	bytea	   *pt = KmsAwsJsonGetBlob(resp->body.data, "Plaintext");
	size_t		n;

	if (pt == NULL || (n = VARSIZE_ANY_EXHDR(pt)) > outcap || (want && n != want))
	{
		if (pt)
		{
			explicit_bzero(VARDATA(pt), VARSIZE_ANY_EXHDR(pt));
			pfree(pt);
		}
		KmsAwsResponseFree(resp);
		resp->kind = KMS_AWS_ERR_MALFORMED;
		snprintf(resp->aws_message, sizeof(resp->aws_message),
				 "the answer has no plaintext of the expected length");
		KmsAwsReportError(resp, what);
	}
	memcpy(out, VARDATA(pt), n);
	*outlen = n;
	explicit_bzero(VARDATA(pt), n);
	pfree(pt);
}

static bytea *
KmsAwsGenerate(const uint8 *key_id, uint32 version, uint8 *out, size_t len)
{
	StringInfoData req;
	KmsAwsResponse resp;
	const char *what = "TrentService.GenerateDataKey";
	char	   *arn;
	bytea	   *blob;
	bytea	   *w;
	size_t		got;

	initStringInfo(&req);
	appendStringInfoString(&req, "{\"KeyId\":");
	KmsAwsJsonAppendString(&req, configured_key());
	if (len == 32)
		appendStringInfoString(&req, ",\"KeySpec\":\"AES_256\"");
	else
		appendStringInfo(&req, ",\"NumberOfBytes\":%zu", len);
	append_context(&req, key_id, version);
	appendStringInfoChar(&req, '}');

	if (!KmsAwsJsonCall("kms", what, req.data, &resp, 0))
		report(&resp, what);
	take_plaintext(&resp, what, out, len, &got, len);
	arn = KmsAwsJsonGetString(resp.body.data, "KeyId");
	blob = KmsAwsJsonGetBlob(resp.body.data, "CiphertextBlob");
	KmsAwsResponseFree(&resp);
	if (arn == NULL || blob == NULL || VARSIZE_ANY_EXHDR(blob) == 0)
	{
		explicit_bzero(out, len);
		resp.kind = KMS_AWS_ERR_MALFORMED;
		snprintf(resp.aws_message, sizeof(resp.aws_message),
				 "the answer has no KeyId or CiphertextBlob");
		KmsAwsReportError(&resp, what);
	}
	w = make_wrapped(arn, blob);
	return w;
}

/* Decrypt an aws-wrapped form: one call. */
void
KmsAwsUnwrapMaterial(const uint8 *key_id, uint32 version, const bytea *wrapped,
					 uint8 *out, size_t outcap, size_t *outlen)
{
	StringInfoData req;
	KmsAwsResponse resp;
	const char *what = "TrentService.Decrypt";
	const uint8 *blob;
	size_t		bloblen;
	char	   *arn = parse_wrapped(wrapped, &blob, &bloblen);

	if (arn == NULL)
	{
		char		kid[37];

		KmsUuidToString(key_id, kid);
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE), errhidestmt(true),
				 errmsg("KeyUnavailableException: the key material of key \"%s\" version %u could not be unwrapped", kid, version),
				 errdetail("The AWS-wrapped material in kms.key_version is damaged.")));
	}
	initStringInfo(&req);
	appendStringInfoString(&req, "{\"CiphertextBlob\":");
	KmsAwsJsonAppendString(&req, KmsAwsBase64(blob, bloblen));
	appendStringInfoString(&req, ",\"KeyId\":");
	KmsAwsJsonAppendString(&req, arn);
	append_context(&req, key_id, version);
	appendStringInfoChar(&req, '}');

	if (!KmsAwsJsonCall("kms", what, req.data, &resp, 0))
		report(&resp, what);
	take_plaintext(&resp, what, out, outcap, outlen, 0);
	KmsAwsResponseFree(&resp);
}

/*
 * Wrap existing material under the configured AWS KMS key (Encrypt, same
 * context): the migration from local, or from another AWS KMS key.
 */
bytea *
KmsAwsWrapMaterial(const uint8 *key_id, uint32 version, const uint8 *material, size_t len)
{
	StringInfoData req;
	KmsAwsResponse resp;
	const char *what = "TrentService.Encrypt";
	char	   *b64 = KmsAwsBase64(material, len);
	char	   *arn;
	bytea	   *blob;

	initStringInfo(&req);
	appendStringInfoString(&req, "{\"KeyId\":");
	KmsAwsJsonAppendString(&req, configured_key());
	appendStringInfoString(&req, ",\"Plaintext\":");
	KmsAwsJsonAppendString(&req, b64);
	explicit_bzero(b64, strlen(b64));
	append_context(&req, key_id, version);
	appendStringInfoChar(&req, '}');

	if (!KmsAwsJsonCall("kms", what, req.data, &resp, 0))
	{
		explicit_bzero(req.data, req.len);
		report(&resp, what);
	}
	explicit_bzero(req.data, req.len);
	arn = KmsAwsJsonGetString(resp.body.data, "KeyId");
	blob = KmsAwsJsonGetBlob(resp.body.data, "CiphertextBlob");
	KmsAwsResponseFree(&resp);
	if (arn == NULL || blob == NULL || VARSIZE_ANY_EXHDR(blob) == 0)
	{
		resp.kind = KMS_AWS_ERR_MALFORMED;
		snprintf(resp.aws_message, sizeof(resp.aws_message),
				 "the answer has no KeyId or CiphertextBlob");
		KmsAwsReportError(&resp, what);
	}
	return make_wrapped(arn, blob);
}

/* The ARN of pg_kms.aws_kms_key_id (DescribeKey: one call). */
char *
KmsAwsConfiguredKeyArn(void)
{
	StringInfoData req;
	KmsAwsResponse resp;
	const char *what = "TrentService.DescribeKey";
	char	   *arn = NULL;

	initStringInfo(&req);
	appendStringInfoString(&req, "{\"KeyId\":");
	KmsAwsJsonAppendString(&req, configured_key());
	appendStringInfoChar(&req, '}');
	if (!KmsAwsJsonCall("kms", what, req.data, &resp, 0))
		report(&resp, what);
	{
		/* KeyMetadata.Arn */
		char	   *md = NULL;
		Jsonb	   *jb;
		JsonbValue	k;
		JsonbValue *v;

		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(resp.body.data)));
		k.type = jbvString;
		k.val.string.val = "KeyMetadata";
		k.val.string.len = strlen("KeyMetadata");
		v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
		if (v != NULL && v->type == jbvBinary)
		{
			k.val.string.val = "Arn";
			k.val.string.len = 3;
			v = findJsonbValueFromContainer(v->val.binary.data, JB_FOBJECT, &k);
			if (v != NULL && v->type == jbvString)
				md = pnstrdup(v->val.string.val, v->val.string.len);
		}
		arn = md;
	}
	if (arn == NULL)
	{
		resp.kind = KMS_AWS_ERR_MALFORMED;
		snprintf(resp.aws_message, sizeof(resp.aws_message), "the answer has no KeyMetadata.Arn");
		KmsAwsReportError(&resp, what);
	}
	KmsAwsResponseFree(&resp);
	return arn;
}

/* The ARN an aws-wrapped form is under (palloc'd), NULL if not aws */
char *
KmsAwsWrappedArn(const bytea *w)
{
	const uint8 *blob;
	size_t		bloblen;

	return parse_wrapped(w, &blob, &bloblen);
}

static void
KmsAwsUnwrap(const uint8 *key_id, uint32 version, const bytea *wrapped,
			 uint8 *out, size_t outcap, size_t *outlen)
{
	if (KmsAwsIsWrapped(wrapped))
		KmsAwsUnwrapMaterial(key_id, version, wrapped, out, outcap, outlen);
	else
		KmsLocalUnwrapMaterial(key_id, version, wrapped, out, outcap, outlen);
}

const KmsProvider KmsAwsProvider = {
	"aws",
	KmsAwsGenerate,
	KmsAwsUnwrap
};
