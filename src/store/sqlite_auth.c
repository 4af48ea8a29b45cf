/* sqlite_auth.c - OAuth on SQLite: system clients, token rows by hash,
 * refresh-token rotation and families, the failed-login counter.
 *
 * Tables: oauth_client, and the token and app_user tables of
 * migrate_sqlite_0001_init.sql with the columns 0006 adds.  Writes use the
 * admin connection (as users and tokens do): they are rare and stay out of
 * the resource path's group commits.  Reads use the reader pool.
 *
 * A read and a later write may see different rows (a refresh token read,
 * then rotated); where that matters the write carries the check itself:
 * rotation is "UPDATE ... SET revoked = 1 WHERE hash = ? AND revoked = 0",
 * which changes the row for exactly one of two requests presenting the same
 * refresh token, so only one of them gets new tokens. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

#define CLIENT_COLS "ckey, client_id, role, secret_hash, scopes, active, created"
#define USER_COLS \
	"uid, username, role, pw_hash, practitioner, active, failed_logins, locked_until, created"
#define TOKEN_COLS \
	"hash, uid, kind, scopes, issued, expires, client_id, patient, family, revoked"

/* ---- helpers ---- */

static int exec_sql(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, ERR_DB, "the database failed");
		err_detail(e, "%s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void client_from_row(sqlite3_stmt *st, struct store_client *c)
{
	memset(c, 0, sizeof(*c));
	c->ckey = sqlite3_column_int64(st, 0);
	sqlite_set_name(c->client_id, sizeof(c->client_id), (const char *)sqlite3_column_text(st, 1));
	sqlite_set_name(c->role, sizeof(c->role), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(c->secret_hash, sizeof(c->secret_hash), (const char *)sqlite3_column_text(st, 3));
	sqlite_set_name(c->scopes, sizeof(c->scopes), (const char *)sqlite3_column_text(st, 4));
	c->active = sqlite3_column_int(st, 5) != 0;
	c->created_ms = sqlite3_column_int64(st, 6);
}

static void token_from_row(sqlite3_stmt *st, struct store_token *t)
{
	const void *h = sqlite3_column_blob(st, 0);
	const void *fam = sqlite3_column_blob(st, 8);

	memset(t, 0, sizeof(*t));
	if (h && sqlite3_column_bytes(st, 0) == (int)sizeof(t->hash))
		memcpy(t->hash, h, sizeof(t->hash));
	t->uid = sqlite3_column_int64(st, 1);
	sqlite_set_name(t->kind, sizeof(t->kind), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(t->scopes, sizeof(t->scopes), (const char *)sqlite3_column_text(st, 3));
	t->issued_ms = sqlite3_column_int64(st, 4);
	t->expires_ms = sqlite3_column_int64(st, 5);
	sqlite_set_name(t->client_id, sizeof(t->client_id), (const char *)sqlite3_column_text(st, 6));
	sqlite_set_name(t->patient, sizeof(t->patient), (const char *)sqlite3_column_text(st, 7));
	if (fam && sqlite3_column_bytes(st, 8) == (int)sizeof(t->family)) {
		memcpy(t->family, fam, sizeof(t->family));
		t->has_family = true;
	}
	t->revoked = sqlite3_column_int(st, 9) != 0;
}

/* Insert t[0..n) on db (inside the caller's transaction). */
static int tokens_insert(struct conn *c, const struct store_token *t, size_t n, struct err *e)
{
	sqlite3 *db = sqlite_conn_db(c);
	sqlite3_stmt *st = sqlite_prepare_cached(
		c,
		"INSERT INTO token (hash, uid, kind, scopes, issued, expires, client_id, patient, "
		"family) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		e);

	if (!st)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int step;
		sqlite3_bind_blob(st, 1, t[i].hash, sizeof(t[i].hash), SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, t[i].uid);
		sqlite3_bind_text(st, 3, t[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, t[i].scopes, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, t[i].issued_ms);
		sqlite3_bind_int64(st, 6, t[i].expires_ms);
		sqlite3_bind_text(st, 7, t[i].client_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, t[i].patient, -1, SQLITE_STATIC);
		if (t[i].has_family)
			sqlite3_bind_blob(st, 9, t[i].family, sizeof(t[i].family), SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 9);
		step = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (step != SQLITE_DONE)
			return sqlite_db_fail(e, db, "token add");
	}
	return 0;
}

/* ---- clients ---- */

int store_client_add(struct store *s, struct store_client *c, struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = -1, step;

	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	st = sqlite_prepare_cached(a,
				   "INSERT INTO oauth_client (client_id, role, secret_hash, scopes, "
				   "active, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				   e);
	if (!st)
		goto out;
	if (!c->created_ms)
		c->created_ms = time_now_ms();
	sqlite3_bind_text(st, 1, c->client_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->secret_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->scopes, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, c->active);
	sqlite3_bind_int64(st, 6, c->created_ms);
	step = sqlite3_step(st);
	if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT) {
		err_set(e, ERR_CONFLICT, "client '%s' already exists", c->client_id);
		goto out;
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "client add");
		goto out;
	}
	c->ckey = sqlite3_last_insert_rowid(db);
	rc = 0;
out:
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	sqlite_admin_put(s);
	return rc;
}

int store_client_get(struct store *s, const char *client_id, struct store_client *out,
		     struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " CLIENT_COLS " FROM oauth_client WHERE client_id = ?1",
				   e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		err_set(e, ERR_NOT_FOUND, "no client '%.64s'", client_id);
		goto out;
	}
	if (step != SQLITE_ROW) {
		sqlite_db_fail(e, sqlite_conn_db(c), "client get");
		goto out;
	}
	client_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_client_list(struct store *s, store_client_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " CLIENT_COLS " FROM oauth_client ORDER BY client_id",
				   e);
	if (!st)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_client cl;
		client_from_row(st, &cl);
		if (fn(ctx, &cl) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "client list");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_client_set_active(struct store *s, const char *client_id, bool active,
			    struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = -1;

	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	st = sqlite_prepare_cached(a, "UPDATE oauth_client SET active = ?2 WHERE client_id = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, active);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, db, "client set active");
		goto out;
	}
	if (sqlite3_changes(db) == 0) {
		err_set(e, ERR_NOT_FOUND, "no client '%.64s'", client_id);
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_admin_put(s);
	return rc;
}

/* ---- tokens ---- */

int store_tokens_add(struct store *s, const struct store_token *t, size_t n, struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3 *db;
	int rc = -1;

	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	if (exec_sql(db, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	if (tokens_insert(a, t, n, e) < 0 || exec_sql(db, "COMMIT", e) < 0) {
		exec_sql(db, "ROLLBACK", NULL);
		goto out;
	}
	rc = 0;
out:
	sqlite_admin_put(s);
	return rc;
}

int store_token_get(struct store *s, const unsigned char hash[32], struct store_token *out,
		    struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " TOKEN_COLS " FROM token WHERE hash = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if (sqlite_step_row(st, sqlite_conn_db(c), "no such token", "token get", e) < 0)
		goto out;
	token_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_token_rotate(struct store *s, const unsigned char old_hash[32],
		       const struct store_token *t, size_t n, struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = -1, step, changed;

	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	if (exec_sql(db, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	st = sqlite_prepare_cached(a, "UPDATE token SET revoked = 1 WHERE hash = ?1 AND revoked = 0",
				   e);
	if (!st)
		goto rollback;
	sqlite3_bind_blob(st, 1, old_hash, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "token rotate");
		goto rollback;
	}
	changed = sqlite3_changes(db);
	if (changed == 0) {
		err_set(e, ERR_CONFLICT, "the refresh token was already used");
		goto rollback;
	}
	if (tokens_insert(a, t, n, e) < 0 || exec_sql(db, "COMMIT", e) < 0)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	exec_sql(db, "ROLLBACK", NULL);
out:
	sqlite_admin_put(s);
	return rc;
}

int store_token_revoke_family(struct store *s, const unsigned char family[16], int *n,
			      struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = -1;

	if (n)
		*n = 0;
	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	st = sqlite_prepare_cached(a, "UPDATE token SET revoked = 1 WHERE family = ?1 AND revoked = 0",
				   e);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, family, 16, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, db, "token revoke family");
		goto out;
	}
	if (n)
		*n = sqlite3_changes(db);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_admin_put(s);
	return rc;
}

/* ---- users: by uid, and the failed-login counter ---- */

int store_user_get_uid(struct store *s, int64_t uid, struct store_user *out, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " USER_COLS " FROM app_user WHERE uid = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, uid);
	if (sqlite_step_row(st, sqlite_conn_db(c), "no such user", "user get", e) < 0)
		goto out;
	memset(out, 0, sizeof(*out));
	out->uid = sqlite3_column_int64(st, 0);
	sqlite_set_name(out->username, sizeof(out->username), (const char *)sqlite3_column_text(st, 1));
	sqlite_set_name(out->role, sizeof(out->role), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(out->pw_hash, sizeof(out->pw_hash), (const char *)sqlite3_column_text(st, 3));
	sqlite_set_name(out->practitioner, sizeof(out->practitioner),
			(const char *)sqlite3_column_text(st, 4));
	out->active = sqlite3_column_int(st, 5) != 0;
	out->failed_logins = sqlite3_column_int(st, 6);
	out->locked_until_ms = sqlite3_column_int64(st, 7);
	out->created_ms = sqlite3_column_int64(st, 8);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_user_login_failed(struct store *s, int64_t uid, int max_failures,
			    int64_t lock_until_ms, bool *locked, struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = -1, step;

	*locked = false;
	if (!a)
		return -1;
	db = sqlite_conn_db(a);
	/* One statement: concurrent failures each count, and exactly one of
	 * them reaches the limit and locks. */
	st = sqlite_prepare_cached(
		a,
		"UPDATE app_user SET "
		"failed_logins = CASE WHEN ?2 > 0 AND failed_logins + 1 >= ?2 THEN 0 "
		"ELSE failed_logins + 1 END, "
		"locked_until = CASE WHEN ?2 > 0 AND failed_logins + 1 >= ?2 THEN ?3 "
		"ELSE locked_until END "
		"WHERE uid = ?1 RETURNING failed_logins = 0 AND ?2 > 0",
		e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int(st, 2, max_failures);
	sqlite3_bind_int64(st, 3, lock_until_ms);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*locked = sqlite3_column_int(st, 0) != 0;
		step = sqlite3_step(st);
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "login failed");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_admin_put(s);
	return rc;
}

int store_user_login_ok(struct store *s, int64_t uid, struct err *e)
{
	struct conn *a = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!a)
		return -1;
	st = sqlite_prepare_cached(a,
				   "UPDATE app_user SET failed_logins = 0, locked_until = 0 "
				   "WHERE uid = ?1 AND (failed_logins <> 0 OR locked_until <> 0)",
				   e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, uid);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(a), "login ok");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_admin_put(s);
	return rc;
}
