/* sqlite_hl7.c - the HL7 v2 inbox on SQLite (store.h, "HL7 v2 inbox";
 * migrate_sqlite_0007_hl7.sql).
 *
 * Receiving a message and marking it processed are store_txn hooks: they
 * run on the writer thread inside the group commit, so an inbox row costs
 * no fsync of its own (many messages share one, as HTTP writes do), the
 * ACK goes out only once the row is durable, and a message's processed
 * state commits in the same transaction as the FHIR resources made from it.
 * The duplicate check runs there too, under the write lock: two copies of
 * one message arriving at once are still seen as one. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

#define HL7_COLS "id, received, peer, sending_app, sending_fac, control_id, msg_type, hash, state, " \
		 "ack, collision, reason, attempts, processed"

void store_hl7_msg_release(struct store_hl7_msg *m)
{
	free(m->raw);
	m->raw = NULL;
	m->raw_len = 0;
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void from_row(sqlite3_stmt *st, struct store_hl7_msg *m)
{
	const void *h;

	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	m->received_ms = sqlite3_column_int64(st, 1);
	col_text(st, 2, m->peer, sizeof(m->peer));
	col_text(st, 3, m->sending_app, sizeof(m->sending_app));
	col_text(st, 4, m->sending_fac, sizeof(m->sending_fac));
	col_text(st, 5, m->control_id, sizeof(m->control_id));
	col_text(st, 6, m->msg_type, sizeof(m->msg_type));
	h = sqlite3_column_blob(st, 7);
	if (h && sqlite3_column_bytes(st, 7) == 16)
		memcpy(m->hash, h, 16);
	m->state = sqlite3_column_int(st, 8);
	col_text(st, 9, m->ack, sizeof(m->ack));
	m->collision = sqlite3_column_int64(st, 10);
	col_text(st, 11, m->reason, sizeof(m->reason));
	m->attempts = sqlite3_column_int(st, 12);
	m->processed_ms = sqlite3_column_int64(st, 13);
}

/* ---- on the writer ---- */

static int receive_hook(struct store *s, struct store_txn *t, struct err *e)
{
	struct store_hl7_msg *m = t->hook_arg;
	struct conn *w = sqlite_writer_conn(s);
	sqlite3 *db = sqlite_conn_db(w);
	sqlite3_stmt *st;
	int step;

	m->duplicate = false;
	m->collision = 0;
	/* an earlier row with this sender and control id: the same bytes are a
	 * resend; other bytes a collision (the newest such row is named) */
	st = sqlite_prepare_cached(w, "SELECT " HL7_COLS " FROM hl7_inbox WHERE sending_app = ?1 AND "
				      "sending_fac = ?2 AND control_id = ?3 ORDER BY id", e);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, m->sending_app, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->sending_fac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->control_id, -1, SQLITE_STATIC);
	while (m->control_id[0] && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(st, 7);
		if (h && sqlite3_column_bytes(st, 7) == 16 && memcmp(h, m->hash, 16) == 0 &&
		    sqlite3_column_int(st, 8) != STORE_HL7_REJECTED) {
			m->duplicate = true;
			m->id = sqlite3_column_int64(st, 0);
			m->state = sqlite3_column_int(st, 8);
			col_text(st, 9, m->ack, sizeof(m->ack));
			sqlite3_reset(st);
			return 0;
		}
		if (sqlite3_column_int(st, 8) != STORE_HL7_REJECTED)
			m->collision = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	st = sqlite_prepare_cached(w, "INSERT INTO hl7_inbox (received, peer, sending_app, sending_fac, "
				      "control_id, msg_type, hash, raw, state, ack, collision, reason) "
				      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", e);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, m->received_ms);
	sqlite3_bind_text(st, 2, m->peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->sending_app, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->sending_fac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->control_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, m->msg_type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, m->hash, 16, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, m->raw ? m->raw : "", (int)m->raw_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, m->state);
	sqlite3_bind_text(st, 10, m->ack, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, m->collision);
	sqlite3_bind_text(st, 12, m->reason, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE)
		return sqlite_db_fail(e, db, "hl7 inbox insert");
	m->id = sqlite3_last_insert_rowid(db);
	return 0;
}

void store_hl7_receive_txn(struct store_txn *t, struct store_hl7_msg *m)
{
	memset(t, 0, sizeof(*t));
	t->atomic = true;
	t->hook = receive_hook;
	t->hook_arg = m;
}

/* Queue the application ACK an outcome owes (0011): once per (inbox id,
 * code), so a restart or a reprocess that reaches the same outcome again
 * never sends it twice. */
static int ack_queue(struct conn *c, const struct store_hl7_ack *a, struct err *e)
{
	sqlite3 *db = sqlite_conn_db(c);
	sqlite3_stmt *st = sqlite_prepare_cached(
		c, "INSERT INTO hl7_app_ack (inbox_id, code, control_id, sending_app, sending_fac, text, "
		   "state, created, next_try) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7) "
		   "ON CONFLICT (inbox_id, code) DO NOTHING",
		e);
	int step;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, a->inbox_id);
	sqlite3_bind_text(st, 2, a->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->control_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->sending_app, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->sending_fac, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, a->text ? a->text : "", (int)a->text_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, a->created_ms ? a->created_ms : time_now_ms());
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE)
		return sqlite_db_fail(e, db, "hl7 app ack insert");
	return 0;
}

static int mark_on(struct conn *c, const struct store_hl7_mark *mk, bool only_unprocessed,
		   struct err *e)
{
	sqlite3 *db = sqlite_conn_db(c);
	sqlite3_stmt *st = sqlite_prepare_cached(
		c, only_unprocessed ?
			   "UPDATE hl7_inbox SET state = ?2, reason = ?3, processed = ?4, "
			   "attempts = attempts + 1 WHERE id = ?1 AND state <> 1" :
			   "UPDATE hl7_inbox SET state = ?2, reason = ?3, processed = ?4, "
			   "attempts = attempts + (?2 = 2) WHERE id = ?1",
		e);
	int step;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, mk->id);
	sqlite3_bind_int(st, 2, mk->state);
	sqlite3_bind_text(st, 3, mk->reason ? mk->reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, mk->state == STORE_HL7_PENDING ? 0 : time_now_ms());
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE)
		return sqlite_db_fail(e, db, "hl7 inbox update");
	if (sqlite3_changes(db) != 1)
		return err_set(e, only_unprocessed ? ERR_CONFLICT : ERR_NOT_FOUND,
			       only_unprocessed ? "inbox message %lld was already processed" :
						  "no inbox message %lld",
			       (long long)mk->id);
	if (mk->ack && ack_queue(c, mk->ack, e) < 0)
		return -1;
	return 0;
}

static int mark_hook(struct store *s, struct store_txn *t, struct err *e)
{
	return mark_on(sqlite_writer_conn(s), t->hook_arg, true, e);
}

void store_hl7_mark_txn(struct store_txn *t, struct store_hl7_mark *mk)
{
	t->hook = mark_hook;
	t->hook_arg = mk;
}

static int exec_sql(struct conn *c, const char *sql, struct err *e)
{
	if (sqlite3_exec(sqlite_conn_db(c), sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_db_fail(e, sqlite_conn_db(c), sql);
	return 0;
}

int store_hl7_mark(struct store *s, const struct store_hl7_mark *mk, struct err *e)
{
	struct conn *c = sqlite_admin_get(s, e);
	int rc = -1;

	if (!c)
		return -1;
	/* the state and the ACK it owes: both or neither */
	if (exec_sql(c, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	if (mark_on(c, mk, false, e) < 0 || exec_sql(c, "COMMIT", e) < 0) {
		struct err ignore = ERR_INIT;
		exec_sql(c, "ROLLBACK", &ignore);
		goto out;
	}
	rc = 0;
out:
	sqlite_admin_put(s);
	return rc;
}

/* ---- reads ---- */

int store_hl7_list(struct store *s, int state, int64_t after, size_t max, bool with_raw,
		   store_hl7_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, with_raw ? "SELECT " HL7_COLS ", raw FROM hl7_inbox WHERE state = ?1 "
						 "AND id > ?2 ORDER BY id LIMIT ?3" :
						 "SELECT " HL7_COLS " FROM hl7_inbox WHERE state = ?1 "
						 "AND id > ?2 ORDER BY id LIMIT ?3",
				   e);
	if (!st)
		goto out;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, max ? (int64_t)max : -1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_hl7_msg m;
		int r;
		from_row(st, &m);
		if (with_raw) {
			m.raw = (char *)sqlite3_column_blob(st, 14);
			m.raw_len = (size_t)sqlite3_column_bytes(st, 14);
		}
		r = fn(ctx, &m);
		if (r < 0) {
			sqlite3_reset(st);
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "hl7 inbox list");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	sqlite_reader_put(s, c);
	return rc;
}

int store_hl7_get(struct store *s, int64_t id, struct store_hl7_msg *out, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT " HL7_COLS ", raw FROM hl7_inbox WHERE id = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite_step_row(st, sqlite_conn_db(c), "no such inbox message", "hl7 inbox read", e) < 0) {
		sqlite3_reset(st);
		goto out;
	}
	from_row(st, out);
	out->raw_len = (size_t)sqlite3_column_bytes(st, 14);
	out->raw = malloc(out->raw_len + 1);
	if (!out->raw) {
		sqlite3_reset(st);
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (out->raw_len)
		memcpy(out->raw, sqlite3_column_blob(st, 14), out->raw_len);
	out->raw[out->raw_len] = '\0';
	sqlite3_reset(st);
	rc = 0;
out:
	sqlite_reader_put(s, c);
	return rc;
}

int store_hl7_counts(struct store *s, int64_t counts[4], struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	memset(counts, 0, 4 * sizeof(*counts));
	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT state, count(*) FROM hl7_inbox GROUP BY state", e);
	if (!st)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);
		if (k >= 0 && k < 4)
			counts[k] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "hl7 inbox counts");
		goto out;
	}
	rc = 0;
out:
	sqlite_reader_put(s, c);
	return rc;
}

/* ---- application acknowledgements (0011) ---- */

#define ACK_COLS "id, inbox_id, code, control_id, sending_app, sending_fac, state, attempts, created, " \
		 "next_try, sent, destination, last_error"

void store_hl7_ack_release(struct store_hl7_ack *a)
{
	free(a->text);
	a->text = NULL;
	a->text_len = 0;
}

static void ack_from_row(sqlite3_stmt *st, struct store_hl7_ack *a)
{
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->inbox_id = sqlite3_column_int64(st, 1);
	col_text(st, 2, a->code, sizeof(a->code));
	col_text(st, 3, a->control_id, sizeof(a->control_id));
	col_text(st, 4, a->sending_app, sizeof(a->sending_app));
	col_text(st, 5, a->sending_fac, sizeof(a->sending_fac));
	a->state = sqlite3_column_int(st, 6);
	a->attempts = sqlite3_column_int(st, 7);
	a->created_ms = sqlite3_column_int64(st, 8);
	a->next_try_ms = sqlite3_column_int64(st, 9);
	a->sent_ms = sqlite3_column_int64(st, 10);
	col_text(st, 11, a->destination, sizeof(a->destination));
	col_text(st, 12, a->last_error, sizeof(a->last_error));
}

/* Rows of a prepared statement to fn; column 13 is the text when with_text. */
static int ack_rows(struct store *s, const char *sql, int64_t a1, int64_t a2, bool with_text,
		    store_hl7_ack_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, sql, e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, a1);
	sqlite3_bind_int64(st, 2, a2);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_hl7_ack a;
		int r;
		ack_from_row(st, &a);
		if (with_text) {
			/* borrowed from the row: valid during fn */
			a.text = (char *)sqlite3_column_blob(st, 13);
			a.text_len = (size_t)sqlite3_column_bytes(st, 13);
		}
		r = fn(ctx, &a);
		if (r < 0) {
			sqlite3_reset(st);
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "hl7 app ack list");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	sqlite_reader_put(s, c);
	return rc;
}

int store_hl7_ack_due(struct store *s, int64_t now_ms, size_t max, store_hl7_ack_fn fn, void *ctx,
		      struct err *e)
{
	return ack_rows(s, "SELECT " ACK_COLS ", text FROM hl7_app_ack WHERE state = 0 AND next_try <= ?1 "
			   "ORDER BY next_try, id LIMIT ?2",
			now_ms, max ? (int64_t)max : -1, true, fn, ctx, e);
}

int store_hl7_ack_list(struct store *s, bool all, store_hl7_ack_fn fn, void *ctx, struct err *e)
{
	return ack_rows(s, "SELECT " ACK_COLS " FROM hl7_app_ack WHERE (?1 OR state <> 1) AND id > ?2 "
			   "ORDER BY id",
			all ? 1 : 0, 0, false, fn, ctx, e);
}

int store_hl7_ack_update(struct store *s, const struct store_hl7_ack *a, struct err *e)
{
	struct conn *c = sqlite_admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "UPDATE hl7_app_ack SET state = ?2, attempts = ?3, next_try = ?4, "
				      "destination = ?5, last_error = ?6, sent = ?7 WHERE id = ?1",
				   e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_int(st, 2, a->state);
	sqlite3_bind_int(st, 3, a->attempts);
	sqlite3_bind_int64(st, 4, a->next_try_ms);
	sqlite3_bind_text(st, 5, a->destination, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, a->state == STORE_HL7_ACK_WAITING ? 0 : time_now_ms());
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "hl7 app ack update");
		goto out;
	}
	if (sqlite3_changes(sqlite_conn_db(c)) != 1) {
		err_set(e, ERR_NOT_FOUND, "no application ACK %lld", (long long)a->id);
		goto out;
	}
	rc = 0;
out:
	sqlite_admin_put(s);
	return rc;
}
