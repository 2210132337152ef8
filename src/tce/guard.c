/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  What keeps plaintext of encrypted columns where it belongs:
 *	  pg_kms.column_output (plaintext or ciphertext form out of output and
 *	  send), the error-report scrub (an ERROR in a transaction that handled
 *	  encrypted values loses DETAIL, CONTEXT and the statement: a unique
 *	  violation's DETAIL or a COPY line would quote plaintext), and the
 *	  type's ANALYZE function, which keeps no statistics (pg_stats would
 *	  show values and their order).  The DDL guard that refuses columns
 *	  without a key is the event trigger of src/sql/070_tce.sql.
 *
 * Locking: none; backend-local state only.
 *
 * IDENTIFICATION
 *	  src/tce/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "tce/tce_internal.h"

int			kms_column_output = KMS_COLUMN_OUTPUT_AUTO;

static const struct config_enum_entry column_output_options[] = {
	{"auto", KMS_COLUMN_OUTPUT_AUTO, false},
	{"plaintext", KMS_COLUMN_OUTPUT_PLAINTEXT, false},
	{"ciphertext", KMS_COLUMN_OUTPUT_CIPHERTEXT, false},
	{NULL, 0, false}
};

/* The top-level transaction (local id) that last handled an encrypted value. */
static LocalTransactionId touched_lxid = InvalidLocalTransactionId;

void
KmsTceDefineGucs(void)
{
	DefineCustomEnumVariable("pg_kms.column_output",
							 "How encrypted_text and encrypted_bytea values are output: plaintext, or the ciphertext form that input accepts back.",
							 "auto: the ciphertext form in COPY ... TO, in pg_dump and pg_dumpall sessions and to logical replication; plaintext otherwise.",
							 &kms_column_output,
							 KMS_COLUMN_OUTPUT_AUTO,
							 column_output_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

void
TceTouched(void)
{
	if (MyProc != NULL)
		touched_lxid = MyProc->lxid;
}

/*
 * Ciphertext form out?  'auto' errs towards ciphertext, which is never a
 * leak: a dump (COPY ... TO; pg_dump --inserts, recognised by its cursor
 * "_pg_dump_cursor" and by application_name pg_dump or pg_dumpall), a
 * logical replication stream (walsender).
 */
bool
TceOutputCiphertext(void)
{
	switch (kms_column_output)
	{
		case KMS_COLUMN_OUTPUT_PLAINTEXT:
			return false;
		case KMS_COLUMN_OUTPUT_CIPHERTEXT:
			return true;
		default:
			break;
	}
	if (am_walsender)
		return true;
	if (ActivePortal != NULL &&
		(ActivePortal->commandTag == CMDTAG_COPY ||
	/* pg_dump --inserts / --column-inserts: FETCH from this cursor */
		 (ActivePortal->commandTag == CMDTAG_FETCH &&
		  GetPortalByName("_pg_dump_cursor") != NULL)))
		return true;
	if (application_name != NULL &&
		(strcmp(application_name, "pg_dump") == 0 ||
		 strcmp(application_name, "pg_dumpall") == 0))
		return true;
	return false;
}

/*
 * The statement (top-level transaction and command id) that last wrote an
 * encrypted value: sealed or imported one for a column.
 */
static LocalTransactionId write_lxid = InvalidLocalTransactionId;
static CommandId write_cid = InvalidCommandId;

void
TceWriting(void)
{
	if (MyProc != NULL)
	{
		write_lxid = MyProc->lxid;
		write_cid = GetCurrentCommandId(false);
	}
}

/*
 * Is the output function called to describe a value in an error of the
 * statement that is writing it?  PostgreSQL builds the DETAIL of a unique,
 * NOT NULL, check or foreign-key violation before it raises the error,
 * with a one-off call (OidOutputFunctionCall: a fresh FmgrInfo in the
 * current context).  A writer without Decrypt then gets the ciphertext
 * form there, so that the error stays the violation (23505, ...) instead
 * of becoming AccessDeniedException; the DETAIL is hidden anyway
 * (KmsTceEmitLog).
 */
bool
TceDescribingWrite(FunctionCallInfo fcinfo)
{
	return fcinfo->flinfo != NULL &&
		fcinfo->flinfo->fn_extra == NULL &&
		fcinfo->flinfo->fn_mcxt == CurrentMemoryContext &&
		MyProc != NULL && write_lxid == MyProc->lxid &&
		write_cid == GetCurrentCommandId(false);
}

void
KmsTceEmitLog(ErrorData *edata)
{
	if (edata->elevel < ERROR || MyProc == NULL ||
		touched_lxid == InvalidLocalTransactionId ||
		touched_lxid != MyProc->lxid)
		return;
	if (edata->detail != NULL || edata->context != NULL ||
		edata->detail_log != NULL || edata->internalquery != NULL)
		edata->detail = MemoryContextStrdup(ErrorContext,
											"pg_kms hid the detail and context of this error: the transaction handled encrypted column values.");
	edata->detail_log = NULL;
	edata->context = NULL;
	edata->internalquery = NULL;
	edata->internalpos = 0;
	edata->hide_stmt = true;
	edata->hide_ctx = true;
}

/* ANALYZE: no statistics for encrypted columns (they would be plaintext). */
PG_FUNCTION_INFO_V1(encrypted_column_typanalyze);
Datum
encrypted_column_typanalyze(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(false);
}
