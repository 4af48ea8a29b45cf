/* sqlite_codes.c - code sets and edit tables on SQLite (store_codes.h).
 *
 * A load is one transaction on the admin connection: the version row, its
 * concepts, the full-text rows and the edit rows are replaced together, so
 * a reader sees either the old version or the new one.  Concepts are
 * inserted billable first (then headers), each group in the file's order:
 * cid order is then the order type-ahead answers in, and FTS5 (which
 * returns matches in rowid order) needs no sort to put billable codes first
 * and can stop after one page. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "store/store_codes.h"
#include "base/banned.h"

#define CONCEPT_COLS "c.code, c.display, c.short, c.parent, c.billable, c.added, c.terminated"

static int run(sqlite3 *db, const char *sql, int64_t vkey, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "code set load");
		goto out;
	}
	if (vkey)
		sqlite3_bind_int64(st, 1, vkey);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, db, "code set load");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* The version's row: its vkey and sha256 if it is there (vkey 0 if not). */
static int version_find(sqlite3 *db, const struct store_code_version *v, int64_t *vkey,
			char sha[65], struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	*vkey = 0;
	sha[0] = '\0';
	if (sqlite3_prepare_v2(db, "SELECT vkey, sha256 FROM code_version WHERE system = ?1 AND "
				   "version = ?2", -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "code version lookup");
		goto out;
	}
	sqlite3_bind_text(st, 1, v->system, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v->version, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*vkey = sqlite3_column_int64(st, 0);
		sqlite_set_name(sha, 65, (const char *)sqlite3_column_text(st, 1));
	} else if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "code version lookup");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int version_write(sqlite3 *db, struct store_code_version *v, int64_t vkey, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, vkey ? "UPDATE code_version SET eff_from = ?3, eff_to = ?4, source = ?5, "
					  "sha256 = ?6, loaded = ?7, n_codes = ?8, n_billable = ?9 "
					  "WHERE vkey = ?10"
					: "INSERT INTO code_version (system, version, eff_from, eff_to, source, "
					  "sha256, loaded, n_codes, n_billable) VALUES "
					  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "code version write");
		goto out;
	}
	if (!vkey) {
		sqlite3_bind_text(st, 1, v->system, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, v->version, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 3, v->eff_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, v->eff_to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, v->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, v->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, v->loaded_ms);
	sqlite3_bind_int64(st, 8, v->n_codes);
	sqlite3_bind_int64(st, 9, v->n_billable);
	if (vkey)
		sqlite3_bind_int64(st, 10, vkey);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, db, "code version write");
		goto out;
	}
	v->vkey = vkey ? vkey : sqlite3_last_insert_rowid(db);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int concepts_insert(sqlite3 *db, int64_t vkey, const struct store_concept *c, size_t n,
			   struct err *e)
{
	sqlite3_stmt *st = NULL;
	char tag[32];
	int rc = -1;

	snprintf(tag, sizeof(tag), "k%lld", (long long)vkey);
	if (sqlite3_prepare_v2(db, "INSERT INTO code_concept (vkey, code, billable, display, short, "
				   "parent, added, terminated, tag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
				   "?8, ?9)", -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "code insert");
		goto out;
	}
	sqlite3_bind_int64(st, 1, vkey);
	sqlite3_bind_text(st, 9, tag, -1, SQLITE_STATIC);
	/* billable first, then headers: see the file comment */
	for (int pass = 1; pass >= 0; pass--) {
		for (size_t i = 0; i < n; i++) {
			if ((int)c[i].billable != pass)
				continue;
			sqlite3_bind_text(st, 2, c[i].code, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 3, c[i].billable);
			sqlite3_bind_text(st, 4, c[i].display, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 5, c[i].short_desc ? c[i].short_desc : "", -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 6, c[i].parent ? c[i].parent : "", -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 7, c[i].added);
			sqlite3_bind_int(st, 8, c[i].terminated);
			if (sqlite3_step(st) != SQLITE_DONE) {
				if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT)
					err_set(e, ERR_INVALID, "code %s appears twice in the file", c[i].code);
				else
					sqlite_db_fail(e, db, "code insert");
				goto out;
			}
			sqlite3_reset(st);
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int edits_insert(sqlite3 *db, int64_t vkey, const struct store_code_edit *ed, size_t m,
			struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	char t[2] = { 0, 0 };

	if (!m)
		return 0;
	/* OR IGNORE: a list may name a code twice for one edit (it means once) */
	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO code_edit (vkey, kind, code_type, code) "
				   "VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "code edit insert");
		goto out;
	}
	sqlite3_bind_int64(st, 1, vkey);
	for (size_t i = 0; i < m; i++) {
		t[0] = ed[i].code_type;
		sqlite3_bind_text(st, 2, ed[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, t, 1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, ed[i].code, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite_db_fail(e, db, "code edit insert");
			goto out;
		}
		sqlite3_reset(st);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int store_codes_load(struct store *s, struct store_code_version *v, const struct store_concept *c,
		     size_t n, const struct store_code_edit *ed, size_t m, bool *unchanged,
		     struct err *e)
{
	struct conn *cn = sqlite_admin_get(s, e);
	sqlite3 *db;
	int64_t vkey = 0;
	char sha[65];
	int rc = -1;
	bool in_txn = false;

	*unchanged = false;
	if (!cn)
		return -1;
	db = sqlite_conn_db(cn);
	if (run(db, "BEGIN IMMEDIATE", 0, e) < 0)
		goto out;
	in_txn = true;
	if (version_find(db, v, &vkey, sha, e) < 0)
		goto out;
	if (vkey && strcmp(sha, v->sha256) == 0) {
		*unchanged = true;
		v->vkey = vkey;
		rc = 0;
		goto out;
	}
	if (vkey) {
		/* external-content FTS: its rows go with the values they were made of */
		if (run(db, "INSERT INTO code_fts (code_fts, rowid, display, code, tag) SELECT 'delete', "
			    "cid, display, code, tag FROM code_concept WHERE vkey = ?1", vkey, e) < 0 ||
		    run(db, "DELETE FROM code_concept WHERE vkey = ?1", vkey, e) < 0 ||
		    run(db, "DELETE FROM code_edit WHERE vkey = ?1", vkey, e) < 0)
			goto out;
	}
	v->loaded_ms = time_now_ms();
	if (version_write(db, v, vkey, e) < 0)
		goto out;
	if (concepts_insert(db, v->vkey, c, n, e) < 0 || edits_insert(db, v->vkey, ed, m, e) < 0)
		goto out;
	if (n && run(db, "INSERT INTO code_fts (rowid, display, code, tag) SELECT cid, display, code, "
			 "tag FROM code_concept WHERE vkey = ?1", v->vkey, e) < 0)
		goto out;
	if (run(db, "COMMIT", 0, e) < 0)
		goto out;
	in_txn = false;
	rc = 0;
out:
	if (in_txn) {
		struct err ignore = ERR_INIT;
		run(db, "ROLLBACK", 0, &ignore);
	}
	sqlite_admin_put(s);
	return rc;
}

int store_code_versions(struct store *s, const char *system, store_code_version_fn fn, void *ctx,
			struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	struct store_code_version v;
	sqlite3_stmt *st;
	int rc = -1, step = SQLITE_DONE;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT vkey, system, version, eff_from, eff_to, source, sha256, "
				      "loaded, n_codes, n_billable FROM code_version WHERE "
				      "(?1 IS NULL OR system = ?1) ORDER BY system, eff_from DESC, vkey DESC", e);
	if (!st)
		goto out;
	if (system)
		sqlite3_bind_text(st, 1, system, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int r;

		memset(&v, 0, sizeof(v));
		v.vkey = sqlite3_column_int64(st, 0);
		sqlite_set_name(v.system, sizeof(v.system), (const char *)sqlite3_column_text(st, 1));
		sqlite_set_name(v.version, sizeof(v.version), (const char *)sqlite3_column_text(st, 2));
		sqlite_set_name(v.eff_from, sizeof(v.eff_from), (const char *)sqlite3_column_text(st, 3));
		sqlite_set_name(v.eff_to, sizeof(v.eff_to), (const char *)sqlite3_column_text(st, 4));
		sqlite_set_name(v.source, sizeof(v.source), (const char *)sqlite3_column_text(st, 5));
		sqlite_set_name(v.sha256, sizeof(v.sha256), (const char *)sqlite3_column_text(st, 6));
		v.loaded_ms = sqlite3_column_int64(st, 7);
		v.n_codes = sqlite3_column_int64(st, 8);
		v.n_billable = sqlite3_column_int64(st, 9);
		r = fn(ctx, &v);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "code version listing failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "code versions");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

static void concept_of(sqlite3_stmt *st, struct store_concept *k)
{
	k->code = (const char *)sqlite3_column_text(st, 0);
	k->display = (const char *)sqlite3_column_text(st, 1);
	k->short_desc = (const char *)sqlite3_column_text(st, 2);
	k->parent = (const char *)sqlite3_column_text(st, 3);
	k->billable = sqlite3_column_int(st, 4) != 0;
	k->added = sqlite3_column_int(st, 5);
	k->terminated = sqlite3_column_int(st, 6);
}

/* Deliver the rows of st (already bound) to fn; up to max rows, *more when
 * there is another. */
static int deliver(sqlite3_stmt *st, sqlite3 *db, size_t skip, size_t max, bool fts,
		   store_concept_keep_fn keep, store_concept_fn fn, void *ctx, bool *more, size_t *got,
		   struct err *e)
{
	struct store_concept k;
	int step;

	*got = 0;
	if (more)
		*more = false;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int r;

		concept_of(st, &k);
		if (keep && !keep(ctx, &k))
			continue;
		if (skip) {
			skip--;
			continue;
		}
		if (*got == max) {
			if (more)
				*more = true;
			return 0;
		}
		r = fn(ctx, &k);
		(*got)++;
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "code listing failed");
			return -1;
		}
		if (r > 0)
			return 0;
	}
	if (step != SQLITE_DONE) {
		/* a malformed full-text query is the caller's input (SQLITE_ERROR);
		 * anything else (I/O, corruption) is the database's */
		if (fts && (sqlite3_extended_errcode(db) & 0xff) == SQLITE_ERROR)
			return err_set(e, ERR_INVALID, "filter: not a valid search");
		return sqlite_db_fail(e, db, "code search");
	}
	return 0;
}

int store_code_get(struct store *s, int64_t vkey, const char *code, store_concept_fn fn, void *ctx,
		   bool *found, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	size_t got = 0;
	int rc = -1;

	*found = false;
	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " CONCEPT_COLS " FROM code_concept c WHERE c.vkey = ?1 "
				      "AND c.code = ?2", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, vkey);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	if (deliver(st, sqlite_conn_db(c), 0, 1, false, NULL, fn, ctx, NULL, &got, e) < 0)
		goto out;
	*found = got > 0;
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_code_search(struct store *s, int64_t vkey, const char *fts, const char *prefix,
		      size_t offset, size_t count, store_concept_keep_fn keep, store_concept_fn fn,
		      void *ctx, bool *more, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	size_t got;
	int rc = -1;

	if (!c)
		return -1;
	if (prefix)
		st = sqlite_prepare_cached(c, "SELECT " CONCEPT_COLS " FROM code_concept c WHERE "
					      "c.vkey = ?1 AND c.code >= ?2 AND c.code < ?2 || char(127) "
					      "ORDER BY c.cid", e);
	else
		st = sqlite_prepare_cached(c, "SELECT " CONCEPT_COLS " FROM code_fts f CROSS JOIN code_concept c "
					      "ON c.cid = f.rowid WHERE code_fts MATCH ?2 AND "
					      "c.vkey = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, vkey);
	sqlite3_bind_text(st, 2, prefix ? prefix : fts, -1, SQLITE_STATIC);
	/* no LIMIT/OFFSET: rows come in cid order without a sort, and keep()
	 * decides which count; the loop stops one row past the page */
	if (deliver(st, sqlite_conn_db(c), offset, count, !prefix, keep, fn, ctx, more, &got, e) < 0)
		goto out;
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

/* codes[0..n) as a JSON array, for json_each(): one statement, whatever n. */
static int codes_json(const char *const *codes, size_t n, struct buf *b, struct err *e)
{
	buf_addch(b, '[');
	for (size_t i = 0; i < n; i++) {
		buf_addstr(b, i ? ",\"" : "\"");
		buf_add_json_str(b, codes[i], strlen(codes[i]));
		buf_addch(b, '"');
	}
	buf_addch(b, ']');
	if (b->failed)
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

int store_code_get_many(struct store *s, int64_t vkey, const char *const *codes, size_t n,
			store_concept_fn fn, void *ctx, struct err *e)
{
	struct buf j = BUF_INIT(0);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	size_t got;
	int rc = -1;

	if (n == 0)
		return 0;
	if (codes_json(codes, n, &j, e) < 0) {
		buf_release(&j);
		return -1;
	}
	c = sqlite_reader_get(s, e);
	if (!c)
		goto out;
	st = sqlite_prepare_cached(c, "SELECT " CONCEPT_COLS " FROM code_concept c WHERE c.vkey = ?1 AND "
				      "c.code IN (SELECT value FROM json_each(?2))", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, vkey);
	sqlite3_bind_text(st, 2, buf_cstr(&j), (int)j.len, SQLITE_STATIC);
	if (deliver(st, sqlite_conn_db(c), 0, SIZE_MAX, false, NULL, fn, ctx, NULL, &got, e) < 0)
		goto out;
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	if (c)
		sqlite_reader_put(s, c);
	buf_release(&j);
	return rc;
}

int store_code_edit_kinds_many(struct store *s, int64_t vkey, char code_type, const char *const *codes,
			       size_t n, store_code_edit_fn fn, void *ctx, struct err *e)
{
	struct buf j = BUF_INIT(0);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	char t[2] = { code_type, 0 };
	int rc = -1, step = SQLITE_DONE;

	if (n == 0)
		return 0;
	if (codes_json(codes, n, &j, e) < 0) {
		buf_release(&j);
		return -1;
	}
	c = sqlite_reader_get(s, e);
	if (!c)
		goto out;
	st = sqlite_prepare_cached(c, "SELECT code, kind FROM code_edit WHERE vkey = ?1 AND code_type = ?2 "
				      "AND code IN (SELECT value FROM json_each(?3))", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, vkey);
	sqlite3_bind_text(st, 2, t, 1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, buf_cstr(&j), (int)j.len, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1)) < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "code edit listing failed");
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "code edits");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	if (c)
		sqlite_reader_put(s, c);
	buf_release(&j);
	return rc;
}
