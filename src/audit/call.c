/*-------------------------------------------------------------------------
 *
 * call.c
 *	  Failed calls as audit events (issue 15, item 8): every SQL entry point
 *	  of KMS and Secrets Manager runs through KmsAuditCall() (the
 *	  KMS_AUDITED_ENTRY macro of audit.h), which records a call that ends
 *	  in an error as an event of its own, outcome the AWS exception name
 *	  that starts the error message (or the SQLSTATE when the error is not
 *	  one of ours, e.g. a cancelled statement).  Denials, and the other
 *	  failures an entry point records itself, are not recorded twice.  The
 *	  event is queued and logged before the error leaves the function, so
 *	  the rollback that follows does not erase it, as with denials.
 *
 *	  The cost on success is one PG_TRY (a sigsetjmp without the signal
 *	  mask): nothing is looked up or allocated unless the call fails.
 *
 * Locking: none here; see event.c.
 *
 * IDENTIFICATION
 *	  src/audit/call.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "audit/audit.h"

/*
 * True once the failure of the innermost call in progress was recorded (by
 * the entry point itself, e.g. a denial, or by KmsAuditCall for a nested
 * call), so that it is recorded once.  Set by KmsAuditEx for every outcome
 * but success.
 */
bool		kms_audit_failure_recorded = false;

/* The AWS exception name that starts message, or NULL. */
static char *
KmsAuditExceptionName(const char *message)
{
	const char *p = message;

	if (message == NULL)
		return NULL;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		   (*p >= '0' && *p <= '9'))
		p++;
	if (p == message || p[0] != ':' || p[1] != ' ' ||
		!(message[0] >= 'A' && message[0] <= 'Z'))
		return NULL;
	return pnstrdup(message, p - message);
}

/* The resource of a failed call, from its arguments (see audit.h). */
static char *
KmsAuditCallResource(FunctionCallInfo fcinfo, int resource_arg)
{
	if (resource_arg >= 0)
	{
		if (resource_arg >= fcinfo->nargs || PG_ARGISNULL(resource_arg))
			return NULL;
		return text_to_cstring(PG_GETARG_TEXT_PP(resource_arg));
	}
	if (resource_arg <= KMS_AUDIT_BLOB_RESOURCE(0))
	{
		int			n = KMS_AUDIT_BLOB_RESOURCE(0) - resource_arg;
		bytea	   *blob;
		KmsBlobHeader hdr;
		char	   *kid;

		if (n >= fcinfo->nargs || PG_ARGISNULL(n))
			return NULL;
		blob = PG_GETARG_BYTEA_PP(n);
		/* the key the blob names, if it is a blob at all */
		if (kms_blob_parse((const uint8 *) VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &hdr) != 0)
			return NULL;
		kid = palloc(37);
		KmsUuidToString(hdr.key_id, kid);
		return kid;
	}
	return NULL;
}

Datum
KmsAuditCall(FunctionCallInfo fcinfo, const char *operation, int resource_arg,
			 PGFunction impl)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		outer_recorded = kms_audit_failure_recorded;
	Datum		result;

	kms_audit_failure_recorded = false;
	PG_TRY();
	{
		result = impl(fcinfo);
	}
	PG_CATCH();
	{
		if (!kms_audit_failure_recorded && kms_audit_enabled)
		{
			ErrorData  *edata;
			char	   *name;
			char	   *resource;

			/* PG_CATCH runs in ErrorContext: copy the error out of it */
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			name = KmsAuditExceptionName(edata->message);
			resource = KmsAuditCallResource(fcinfo, resource_arg);
			KmsAuditEx(operation, resource, NULL,
					   name ? name : unpack_sql_state(edata->sqlerrcode), NULL);
		}
		/* an outer call that fails with this error does not record it again */
		kms_audit_failure_recorded = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	kms_audit_failure_recorded = outer_recorded;
	return result;
}
