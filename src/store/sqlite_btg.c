/* sqlite_btg.c - break-the-glass grants on SQLite (store.h, "break-the-glass").
 *
 * Grants (break_glass, migrate_sqlite_0005_privacy.sql) are written on the
 * admin connection, as users, tokens and export jobs are: they are rare, and
 * keeping them off the writer thread keeps them out of the resource path's
 * group commits.  The admin connection commits with synchronous=FULL, so a
 * grant is on disk before the request that made it reads anything.
 *
 * Lookups run on reader connections with cached statements: "is there an
 * active grant" is one seek in break_glass_active (uid, patient, until). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

#define BTG_COLS "id, uid, username, role, patient, reason, granted, until, source"

int store_btg_add(struct store *s, struct store_btg *g, struct err *e)
{
	struct conn *c = sqlite_admin_get(s, e);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = -1;

	if (!c)
		return -1;
	db = sqlite_conn_db(c);
	if (sqlite3_prepare_v2(db, "INSERT INTO break_glass (uid, username, role, patient, reason, "
				   "granted, until, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "break-glass add");
		goto out;
	}
	sqlite3_bind_int64(st, 1, g->uid);
	sqlite3_bind_text(st, 2, g->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, g->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, g->patient, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, g->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, g->granted_ms);
	sqlite3_bind_int64(st, 7, g->until_ms);
	sqlite3_bind_text(st, 8, g->source, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, db, "break-glass add");
		goto out;
	}
	g->id = sqlite3_last_insert_rowid(db);
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite_admin_put(s);
	return rc;
}

int store_btg_until(struct store *s, int64_t uid, const char *patient, int64_t now_ms,
		    int64_t *until_ms, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	*until_ms = 0;
	if (!c)
		return -1;
	/* max(until) over the index's (uid, patient) run: one seek to its end */
	st = sqlite_prepare_cached(c, "SELECT max(until) FROM break_glass WHERE uid = ?1 AND "
				      "patient = ?2 AND until > ?3 AND granted <= ?3", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_text(st, 2, patient, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		sqlite_db_fail(e, sqlite_conn_db(c), "break-glass lookup");
		goto out;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		*until_ms = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

static void btg_from_row(sqlite3_stmt *st, struct store_btg *g)
{
	memset(g, 0, sizeof(*g));
	g->id = sqlite3_column_int64(st, 0);
	g->uid = sqlite3_column_int64(st, 1);
	sqlite_set_name(g->username, sizeof(g->username), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(g->role, sizeof(g->role), (const char *)sqlite3_column_text(st, 3));
	sqlite_set_name(g->patient, sizeof(g->patient), (const char *)sqlite3_column_text(st, 4));
	sqlite_set_name(g->reason, sizeof(g->reason), (const char *)sqlite3_column_text(st, 5));
	g->granted_ms = sqlite3_column_int64(st, 6);
	g->until_ms = sqlite3_column_int64(st, 7);
	sqlite_set_name(g->source, sizeof(g->source), (const char *)sqlite3_column_text(st, 8));
}

int store_btg_list(struct store *s, int64_t since_ms, store_btg_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	struct store_btg *g = NULL;
	sqlite3_stmt *st;
	int rc = -1, step = SQLITE_DONE;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " BTG_COLS " FROM break_glass WHERE granted >= ?1 "
				      "ORDER BY granted, id", e);
	if (!st)
		goto out;
	g = malloc(sizeof(*g));
	if (!g) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	sqlite3_bind_int64(st, 1, since_ms);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int r;

		btg_from_row(st, g);
		r = fn(ctx, g);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "break-glass listing failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "break-glass list");
		goto out;
	}
	rc = 0;
out:
	free(g);
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}
