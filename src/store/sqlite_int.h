/* sqlite_int.h - shared by the files of the SQLite backend. */
#ifndef CK_SQLITE_INT_H
#define CK_SQLITE_INT_H

#include <sqlite3.h>

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
int sqlite_copy_json(sqlite3_stmt *st, int col, struct store_version *out, struct err *e);
void sqlite_set_name(char *dst, size_t cap, const char *src);
/* The admin connection (users, tokens, export jobs: the rare writes outside
 * the resource path), held under its lock until sqlite_admin_put. */
struct conn *sqlite_admin_get(struct store *s, struct err *e);
void sqlite_admin_put(struct store *s);

#endif
