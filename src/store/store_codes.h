/* store_codes.h - code sets and edit tables in the store (part of the store
 * API, kept in its own header; sqlite_codes.c, migrate_sqlite_0009_codes.sql).
 *
 * A loaded version of a code system is one code_version row with its
 * concepts (and, for edit tables, code_edit rows).  A load replaces all of
 * a version's rows in one transaction on the admin connection: a failed load
 * leaves the previous rows as they were.  Reads run on reader connections
 * with cached statements; every row handed to a callback is borrowed (valid
 * during the call). */
#ifndef CK_STORE_CODES_H
#define CK_STORE_CODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

#define STORE_CODE_SYSTEM_MAX 16
#define STORE_CODE_VERSION_MAX 32
#define STORE_CODE_MAX 16          /* longest code kept (ICD-10-PCS: 7) */

struct store_code_version {
	int64_t vkey;                  /* set by the store */
	char system[STORE_CODE_SYSTEM_MAX];
	char version[STORE_CODE_VERSION_MAX];
	char eff_from[11], eff_to[11]; /* YYYY-MM-DD, both inclusive */
	char source[256];              /* the file's name (not its path) */
	char sha256[65];               /* of the file's bytes, lower-case hex */
	int64_t loaded_ms;
	int64_t n_codes, n_billable;   /* concepts, or edit rows for edit tables */
};

struct store_concept {
	const char *code;       /* no dot, upper case */
	const char *display;    /* the long description */
	const char *short_desc; /* "" when the file has none */
	const char *parent;     /* "" for a top-level code */
	bool billable;          /* valid for HIPAA transactions (not a header) */
	int32_t added;          /* YYYYMMDD, 0: not given */
	int32_t terminated;     /* YYYYMMDD, 0: not terminated */
};

struct store_code_edit {
	const char *kind;       /* "Female_Only", "POA_Exempt", ... */
	char code_type;         /* 'D' or 'P' */
	const char *code;       /* no dot, upper case */
};

/* Load (or replace) the version v->system/v->version: concepts c[0..n) and
 * edit rows ed[0..m), in one transaction.  If that version is already
 * loaded from a file with the same sha256, nothing is written and
 * *unchanged is set.  v->vkey and v->loaded_ms are set. */
int store_codes_load(struct store *s, struct store_code_version *v, const struct store_concept *c,
		     size_t n, const struct store_code_edit *ed, size_t m, bool *unchanged,
		     struct err *e);

/* Loaded versions (system NULL: all), by system, then newest eff_from first.
 * fn: 0 go on, 1 stop, -1 fail (the error is the caller's). */
typedef int (*store_code_version_fn)(void *ctx, const struct store_code_version *v);
int store_code_versions(struct store *s, const char *system, store_code_version_fn fn, void *ctx,
			struct err *e);

/* One code of version vkey: fn is called once when it is there; *found
 * says whether it was. */
typedef int (*store_concept_fn)(void *ctx, const struct store_concept *c);
int store_code_get(struct store *s, int64_t vkey, const char *code, store_concept_fn fn, void *ctx,
		   bool *found, struct err *e);

/* Several codes of version vkey at once (one statement, not one a code):
 * fn is called for each that is there, in no particular order. */
int store_code_get_many(struct store *s, int64_t vkey, const char *const *codes, size_t n,
			store_concept_fn fn, void *ctx, struct err *e);

/* Type-ahead: concepts of vkey whose display or code match fts (an FTS5
 * query over the display and code columns, built by the caller), billable
 * ones first, each group in the file's order; skip offset, at most count.
 * With prefix (not NULL): codes starting with prefix instead of a text
 * match.  keep (NULL: every row) decides whether a matched row counts: rows
 * it refuses are neither delivered nor counted for offset and count (the
 * caller's exact check after a broader index lookup).  *more: there are
 * further matches. */
typedef bool (*store_concept_keep_fn)(void *ctx, const struct store_concept *c);
int store_code_search(struct store *s, int64_t vkey, const char *fts, const char *prefix,
		      size_t offset, size_t count, store_concept_keep_fn keep, store_concept_fn fn,
		      void *ctx, bool *more, struct err *e);

/* The edit kinds version vkey lists for codes[0..n) of code_type ('D' or
 * 'P'), in one statement: fn(ctx, code, kind) for each row. */
typedef int (*store_code_edit_fn)(void *ctx, const char *code, const char *kind);
int store_code_edit_kinds_many(struct store *s, int64_t vkey, char code_type, const char *const *codes,
			       size_t n, store_code_edit_fn fn, void *ctx, struct err *e);

#endif
