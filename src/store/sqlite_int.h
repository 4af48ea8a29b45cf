/* sqlite_int.h - shared by the files of the SQLite backend. */
#ifndef CK_SQLITE_INT_H
#define CK_SQLITE_INT_H

#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/store.h"

#define SQLITE_CACHED_MAX 64

/* A prepared search statement kept by its SQL text. */
struct sqlite_cached {
	char *sql;
	sqlite3_stmt *st;
	unsigned used;
};

struct conn;

/* A reader connection from the pool, and back. */
struct conn *sqlite_reader_get(struct store *s, struct err *e);
void sqlite_reader_put(struct store *s, struct conn *c);
sqlite3 *sqlite_conn_db(struct conn *c);
/* sql prepared once per connection and kept (least recently used goes):
 * search plans are cached by their shape, values are bound. */
sqlite3_stmt *sqlite_prepare_cached(struct conn *c, const char *sql, struct err *e);
int sqlite_db_fail(struct err *e, sqlite3 *db, const char *what);
/* Step st for one row: 0 at a row; -1 with ERR_NOT_FOUND (none) when there
 * is none, or the database's error (what) when the step failed. */
int sqlite_step_row(sqlite3_stmt *st, sqlite3 *db, const char *none, const char *what, struct err *e);
int sqlite_copy_json(sqlite3_stmt *st, int col, struct store_version *out, struct err *e);
void sqlite_set_name(char *dst, size_t cap, const char *src);
/* The admin connection (users, tokens, export jobs: the rare writes outside
 * the resource path), held under its lock until sqlite_admin_put. */
struct conn *sqlite_admin_get(struct store *s, struct err *e);
void sqlite_admin_put(struct store *s);

/* The writer's connection: only on the writer thread (store_txn.hook). */
struct conn *sqlite_writer_conn(struct store *s);

/* The audit chain as the writer sees it (sqlite_audit.c). */
struct sqlite_audit {
	int64_t seq;                 /* the newest entry's seq (0: none) */
	unsigned char hash[32];      /* and its hash */
	bool loaded;
	int64_t cp_seq;              /* the newest checkpoint's seq; -1: not read yet */
	unsigned every;              /* entries between checkpoints */
	unsigned char *sk;           /* Ed25519 secret key (sodium_malloc), or NULL */
	unsigned char pk[32];
	sqlite3_stmt *st[7];
	struct buf entry;            /* the entry being built */
	int64_t ix_upto;             /* audit_indexed.upto as of the last load */
	int64_t ix_last_ms;          /* when the patient index last took a batch */
};

/* Where the chain was before a transaction, to go back on its rollback. */
struct sqlite_audit_mark {
	int64_t seq, cp_seq;
	unsigned char hash[32];
};

int sqlite_audit_open(struct sqlite_audit *a, const struct store_opts *o, struct err *e);
void sqlite_audit_close(struct sqlite_audit *a);
/* The chain head from the table; at the start of each group. */
int sqlite_audit_load(struct sqlite_audit *a, sqlite3 *db, struct err *e);
int sqlite_audit_append(struct sqlite_audit *a, sqlite3 *db, int64_t ts, const char *entry, size_t len,
			int64_t *seq_out, struct err *e);
/* Add the patient rows of the entries above audit_indexed.upto to
 * audit_patient when there are SQLITE_AUDIT_IX_BATCH of them, or when
 * SQLITE_AUDIT_IX_MS have passed since the last batch, or when force; in
 * the caller's transaction, under a savepoint: a failure is logged and
 * leaves the rows for the next batch (the index is derived data). */
#define SQLITE_AUDIT_IX_BATCH 512
#define SQLITE_AUDIT_IX_MS 1000
void sqlite_audit_index(struct sqlite_audit *a, sqlite3 *db, int64_t now_ms, bool force);
/* Sign the head if it is past the last checkpoint (and there is a key). */
int sqlite_audit_checkpoint(struct sqlite_audit *a, sqlite3 *db, int64_t ts, struct err *e);
void sqlite_audit_mark(const struct sqlite_audit *a, struct sqlite_audit_mark *m);
void sqlite_audit_restore(struct sqlite_audit *a, const struct sqlite_audit_mark *m);

#endif
