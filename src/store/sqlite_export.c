/* sqlite_export.c - bulk data export on SQLite: job rows and the snapshot scan.
 *
 * Job rows (export_job, export_file; migrate_sqlite_0003_export.sql) are
 * written on the admin connection, as users and tokens are: they are few,
 * and keeping them off the writer thread keeps them out of the resource
 * path's group commits.  They are read on reader connections, so polling a
 * job never waits for the admin lock.
 *
 * The scan runs inside a snapshot: a reader connection of the pool with an
 * open read transaction (BEGIN; the first SELECT fixes what it sees).  Each
 * export query is one statement whose shape depends on which filters are
 * set; values, including the lists (ids, parameter ids), are bound as JSON
 * arrays and unpacked with json_each(), so equal shapes give equal SQL and
 * the prepared statement is reused (sqlite_prepare_cached).  Rows are read
 * in the order of the index that drives them (resource_type_live gives rkey
 * order, which for imported data is also the order of the version rows on
 * disk), never sorted: a sort would have to see every row first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

/* ---- job rows ---- */

#define JOB_COLS \
	"job, uid, level, group_id, types, since, request, state, created, finished, tx_time, " \
	"resources, bytes, expires, error"

static void job_from_row(sqlite3_stmt *st, struct store_export_job *j)
{
	memset(j, 0, sizeof(*j));
	sqlite_set_name(j->job, sizeof(j->job), (const char *)sqlite3_column_text(st, 0));
	j->uid = sqlite3_column_int64(st, 1);
	j->level = sqlite3_column_int(st, 2);
	sqlite_set_name(j->group_id, sizeof(j->group_id), (const char *)sqlite3_column_text(st, 3));
	sqlite_set_name(j->types, sizeof(j->types), (const char *)sqlite3_column_text(st, 4));
	j->since_ms = sqlite3_column_type(st, 5) == SQLITE_NULL ? INT64_MIN
								 : sqlite3_column_int64(st, 5);
	sqlite_set_name(j->request, sizeof(j->request), (const char *)sqlite3_column_text(st, 6));
	j->state = sqlite3_column_int(st, 7);
	j->created_ms = sqlite3_column_int64(st, 8);
	j->finished_ms = sqlite3_column_int64(st, 9);
	j->tx_time_ms = sqlite3_column_int64(st, 10);
	j->resources = sqlite3_column_int64(st, 11);
	j->bytes = sqlite3_column_int64(st, 12);
	j->expires_ms = sqlite3_column_int64(st, 13);
	sqlite_set_name(j->error, sizeof(j->error), (const char *)sqlite3_column_text(st, 14));
}

/* Run one statement to completion on db; 0, or -1 with e set. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct err *e)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sqlite_db_fail(e, db, what);
	return 0;
}

static int exec_simple(sqlite3 *db, const char *sql, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, sql);
		goto out;
	}
	rc = step_done(db, st, sql, e);
out:
	sqlite3_finalize(st);
	return rc;
}

int store_export_job_add(struct store *s, const struct store_export_job *j, struct err *e)
{
	struct conn *c = sqlite_admin_get(s, e);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = -1, step;

	if (!c)
		return -1;
	db = sqlite_conn_db(c);
	if (sqlite3_prepare_v2(db, "INSERT INTO export_job (" JOB_COLS ") VALUES "
				   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "export job add");
		goto out;
	}
	sqlite3_bind_text(st, 1, j->job, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, j->uid);
	sqlite3_bind_int(st, 3, j->level);
	sqlite3_bind_text(st, 4, j->group_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, j->types, -1, SQLITE_STATIC);
	if (j->since_ms != INT64_MIN)
		sqlite3_bind_int64(st, 6, j->since_ms);
	sqlite3_bind_text(st, 7, j->request, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, j->state);
	sqlite3_bind_int64(st, 9, j->created_ms);
	sqlite3_bind_int64(st, 10, j->finished_ms);
	sqlite3_bind_int64(st, 11, j->tx_time_ms);
	sqlite3_bind_int64(st, 12, j->resources);
	sqlite3_bind_int64(st, 13, j->bytes);
	sqlite3_bind_int64(st, 14, j->expires_ms);
	sqlite3_bind_text(st, 15, j->error, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT) {
		err_set(e, ERR_CONFLICT, "export job %s already exists", j->job);
		goto out;
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "export job add");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite_admin_put(s);
	return rc;
}

int store_export_job_get(struct store *s, const char *job, struct store_export_job *out,
			 struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " JOB_COLS " FROM export_job WHERE job = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	if (sqlite_step_row(st, sqlite_conn_db(c), "no such export job", "export job get", e) < 0)
		goto out;
	job_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_export_job_update(struct store *s, const struct store_export_job *j,
			    const struct store_export_file *files, size_t n, struct err *e)
{
	struct conn *c = sqlite_admin_get(s, e);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = -1;

	if (!c)
		return -1;
	db = sqlite_conn_db(c);
	if (exec_simple(db, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	if (sqlite3_prepare_v2(db, "UPDATE export_job SET state = ?2, finished = ?3, tx_time = ?4, "
				   "resources = ?5, bytes = ?6, expires = ?7, error = ?8 WHERE job = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "export job update");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, j->job, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, j->state);
	sqlite3_bind_int64(st, 3, j->finished_ms);
	sqlite3_bind_int64(st, 4, j->tx_time_ms);
	sqlite3_bind_int64(st, 5, j->resources);
	sqlite3_bind_int64(st, 6, j->bytes);
	sqlite3_bind_int64(st, 7, j->expires_ms);
	sqlite3_bind_text(st, 8, j->error, -1, SQLITE_STATIC);
	if (step_done(db, st, "export job update", e) < 0)
		goto rollback;
	if (sqlite3_changes(db) == 0) {
		err_set(e, ERR_NOT_FOUND, "no such export job");
		goto rollback;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "DELETE FROM export_file WHERE job = ?1", -1, &st, NULL) !=
	    SQLITE_OK) {
		sqlite_db_fail(e, db, "export files delete");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, j->job, -1, SQLITE_STATIC);
	if (step_done(db, st, "export files delete", e) < 0)
		goto rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (n) {
		if (sqlite3_prepare_v2(db, "INSERT INTO export_file (job, seq, type, name, count, bytes) "
					   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st, NULL) != SQLITE_OK) {
			sqlite_db_fail(e, db, "export file add");
			goto rollback;
		}
		for (size_t i = 0; i < n; i++) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, j->job, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)i + 1);
			sqlite3_bind_text(st, 3, files[i].type, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, files[i].name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 5, files[i].count);
			sqlite3_bind_int64(st, 6, files[i].bytes);
			if (step_done(db, st, "export file add", e) < 0)
				goto rollback;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (exec_simple(db, "COMMIT", e) < 0)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	sqlite3_finalize(st);
	st = NULL;
	exec_simple(db, "ROLLBACK", NULL);
out:
	sqlite3_finalize(st);
	sqlite_admin_put(s);
	return rc;
}

int store_export_job_delete(struct store *s, const char *job, struct err *e)
{
	static const char *const sql[] = {
		"DELETE FROM export_file WHERE job = ?1",
		"DELETE FROM export_job WHERE job = ?1",
	};
	struct conn *c = sqlite_admin_get(s, e);
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = -1;

	if (!c)
		return -1;
	db = sqlite_conn_db(c);
	if (exec_simple(db, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK) {
			sqlite_db_fail(e, db, "export job delete");
			goto rollback;
		}
		sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
		if (step_done(db, st, "export job delete", e) < 0)
			goto rollback;
		sqlite3_finalize(st);
		st = NULL;
	}
	if (sqlite3_changes(db) == 0) {
		err_set(e, ERR_NOT_FOUND, "no such export job");
		goto rollback;
	}
	if (exec_simple(db, "COMMIT", e) < 0)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	sqlite3_finalize(st);
	st = NULL;
	exec_simple(db, "ROLLBACK", NULL);
out:
	sqlite_admin_put(s);
	return rc;
}

int store_export_job_list(struct store *s, int64_t expires_before_ms, store_export_job_fn fn,
			  void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step = SQLITE_DONE;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, expires_before_ms > 0
		? "SELECT " JOB_COLS " FROM export_job WHERE expires > 0 AND expires <= ?1"
		: "SELECT " JOB_COLS " FROM export_job ORDER BY created", e);
	if (!st)
		goto out;
	if (expires_before_ms > 0)
		sqlite3_bind_int64(st, 1, expires_before_ms);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_export_job *j = malloc(sizeof(*j));
		int r;
		if (!j) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		job_from_row(st, j);
		r = fn(ctx, j);
		free(j);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "export job listing failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "export job list");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

static void file_from_row(sqlite3_stmt *st, struct store_export_file *f)
{
	memset(f, 0, sizeof(*f));
	sqlite_set_name(f->type, sizeof(f->type), (const char *)sqlite3_column_text(st, 0));
	sqlite_set_name(f->name, sizeof(f->name), (const char *)sqlite3_column_text(st, 1));
	f->count = sqlite3_column_int64(st, 2);
	f->bytes = sqlite3_column_int64(st, 3);
}

int store_export_files(struct store *s, const char *job, store_export_file_fn fn, void *ctx,
		       struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step = SQLITE_DONE;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT type, name, count, bytes FROM export_file "
				      "WHERE job = ?1 ORDER BY seq", e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_export_file f;
		int r;
		file_from_row(st, &f);
		r = fn(ctx, &f);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "export file listing failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "export files");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_export_file_get(struct store *s, const char *job, const char *name,
			  struct store_export_file *out, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT type, name, count, bytes FROM export_file "
				      "WHERE job = ?1 AND name = ?2", e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (sqlite_step_row(st, sqlite_conn_db(c), "no such export file", "export file get", e) < 0)
		goto out;
	file_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

/* ---- the snapshot scan ---- */

struct store_snapshot {
	struct store *s;
	struct conn *c;
};

int store_snapshot_begin(struct store *s, struct store_snapshot **out, int64_t *last_ts_ms,
			 struct err *e)
{
	struct store_snapshot *snap = calloc(1, sizeof(*snap));
	sqlite3_stmt *st;
	sqlite3 *db;
	int step;

	*out = NULL;
	*last_ts_ms = 0;
	if (!snap)
		return err_set(e, ERR_NOMEM, "out of memory");
	snap->s = s;
	snap->c = sqlite_reader_get(s, e);
	if (!snap->c)
		goto fail;
	db = sqlite_conn_db(snap->c);
	exec_simple(db, "PRAGMA mmap_size=1099511627776", NULL);
	if (exec_simple(db, "BEGIN", e) < 0)
		goto fail;
	/* The first read fixes the snapshot; it is also the newest timestamp in it
	 * (timestamps never decrease in write order, see sqlite.c). */
	st = sqlite_prepare_cached(snap->c, "SELECT ts FROM version ORDER BY vkey DESC LIMIT 1", e);
	if (!st)
		goto fail_txn;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*last_ts_ms = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "snapshot");
		goto fail_txn;
	}
	*out = snap;
	return 0;
fail_txn:
	exec_simple(db, "ROLLBACK", NULL);
fail:
	sqlite_reader_put(s, snap->c);
	free(snap);
	return -1;
}

void store_snapshot_end(struct store_snapshot *snap)
{
	if (!snap)
		return;
	/* A read transaction has nothing to commit; ending it lets the WAL be
	 * checkpointed past it again. */
	exec_simple(sqlite_conn_db(snap->c), "COMMIT", NULL);
	exec_simple(sqlite_conn_db(snap->c), "PRAGMA mmap_size=0", NULL);
	sqlite_reader_put(snap->s, snap->c);
	free(snap);
}

/* Column col's text into dst (cut to cap - 1 bytes). */
static void copy_name(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

/* A JSON array of strings, for json_each(). */
static void json_str_array(struct buf *b, const char *const *v, size_t n)
{
	buf_addch(b, '[');
	for (size_t i = 0; i < n; i++) {
		buf_addstr(b, i ? ",\"" : "\"");
		buf_add_json_str(b, v[i], strlen(v[i]));
		buf_addch(b, '"');
	}
	buf_addch(b, ']');
}

static void json_int_array(struct buf *b, const uint32_t *v, size_t n)
{
	buf_addch(b, '[');
	for (size_t i = 0; i < n; i++)
		buf_addf(b, "%s%" PRIu32, i ? "," : "", v[i]);
	buf_addch(b, ']');
}

/* The statement for q's shape; parameters: ?1 type, ?2 since, ?3 ids, ?4
 * pids, ?5 ref_type, ?6 ref_ids. */
static void export_sql(const struct store_export_q *q, struct buf *sql)
{
	buf_addstr(sql, "SELECT r.type, r.id, v.vid, v.ts, v.json, v.vkey FROM resource r "
			"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid "
			"WHERE r.deleted = 0");
	if (q->type)
		buf_addstr(sql, " AND r.type = ?1");
	if (q->since_ms != INT64_MIN)
		buf_addstr(sql, " AND r.ts >= ?2");
	/* CROSS JOIN fixes the join order where the planner, without
	 * statistics on json_each, would start from the big tables. */
	if (q->ids)
		buf_addstr(sql, " AND r.rkey IN (SELECT i.rkey FROM json_each(?3) m "
				"CROSS JOIN resource i WHERE i.type = ?1 AND i.id = m.value)");
	if (q->ref_type && q->ref_ids) {
		/* Few targets (a Group's members): drive from them, through the
		 * reference index, to the referring resources. */
		buf_addstr(sql, " AND r.rkey IN (SELECT x.rkey FROM json_each(?6) m "
				"CROSS JOIN ix_dict d CROSS JOIN ix_reference x "
				"WHERE d.code = m.value AND d.sys = ?5 AND x.tok = d.id "
				"AND x.pid IN (SELECT value FROM json_each(?4)) "
				"AND EXISTS (SELECT 1 FROM resource p WHERE p.type = ?5 AND p.id = m.value "
				"AND p.deleted = 0))");
	} else if (q->ref_type) {
		/* Any target: test each resource's own reference rows. */
		buf_addstr(sql, " AND EXISTS (SELECT 1 FROM ix_reference x "
				"JOIN ix_dict d ON d.id = x.tok "
				"JOIN resource p ON p.type = d.sys AND p.id = d.code AND p.deleted = 0 "
				"WHERE x.rkey = r.rkey AND x.pid IN (SELECT value FROM json_each(?4)) "
				"AND d.sys = ?5)");
	}
	if (!q->type)
		buf_addstr(sql, " ORDER BY r.rkey"); /* the resource table in order: no sort */
}

int store_export_scan(struct store_snapshot *snap, const struct store_export_q *q,
		      store_version_fn fn, void *ctx, struct err *e)
{
	struct buf sql = BUF_INIT(0), ids = BUF_INIT(0), pids = BUF_INIT(0), refs = BUF_INIT(0);
	sqlite3_stmt *st = NULL;
	int rc = -1, step = SQLITE_DONE;

	if (q->ref_type && q->npids == 0)
		return 0; /* no link to the compartment: nothing is in it */
	export_sql(q, &sql);
	if (q->ids)
		json_str_array(&ids, q->ids, q->nids);
	if (q->ref_type) {
		json_int_array(&pids, q->pids, q->npids);
		if (q->ref_ids)
			json_str_array(&refs, q->ref_ids, q->nref_ids);
	}
	if (sql.failed || ids.failed || pids.failed || refs.failed) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	st = sqlite_prepare_cached(snap->c, buf_cstr(&sql), e);
	if (!st)
		goto out;
	if (q->type)
		sqlite3_bind_text(st, 1, q->type, -1, SQLITE_STATIC);
	if (q->since_ms != INT64_MIN)
		sqlite3_bind_int64(st, 2, q->since_ms);
	if (q->ids)
		sqlite3_bind_text(st, 3, buf_cstr(&ids), (int)ids.len, SQLITE_STATIC);
	if (q->ref_type) {
		sqlite3_bind_text(st, 4, buf_cstr(&pids), (int)pids.len, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, q->ref_type, -1, SQLITE_STATIC);
		if (q->ref_ids)
			sqlite3_bind_text(st, 6, buf_cstr(&refs), (int)refs.len, SQLITE_STATIC);
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_version v;
		int r;

		/* no memset, no snprintf: this runs a million times an export */
		copy_name(v.type, sizeof(v.type), st, 0);
		copy_name(v.id, sizeof(v.id), st, 1);
		v.method = 0;
		v.deleted = false;
		v.vid = sqlite3_column_int64(st, 2);
		v.ts_ms = sqlite3_column_int64(st, 3);
		v.json = (char *)sqlite3_column_text(st, 4);
		v.len = (size_t)sqlite3_column_bytes(st, 4);
		v.vkey = sqlite3_column_int64(st, 5);
		r = fn(ctx, &v);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "export delivery failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(snap->c), "export scan");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	buf_release(&sql);
	buf_release(&ids);
	buf_release(&pids);
	buf_release(&refs);
	return rc;
}
