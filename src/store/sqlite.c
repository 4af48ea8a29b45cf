/* sqlite.c - the SQLite backend of store.h.
 *
 * Connections: one writer connection owned by the writer thread, a pool of
 * reader connections handed to whichever thread reads, and one "admin"
 * connection for the rare writes outside the resource path (users, tokens).
 * Every connection caches its prepared statements (enum stmt).
 *
 * Group commit: store_submit() queues a transaction; the writer thread takes
 * everything queued, runs it inside one BEGIN IMMEDIATE ... COMMIT (each
 * transaction in a savepoint, so one failing transaction does not undo the
 * others), and only after COMMIT returns - the WAL is fsync'd there, with
 * synchronous=FULL - reports each transaction done.  Under load many
 * transactions share one fsync; alone, a transaction pays one.
 *
 * Timestamps (meta.lastUpdated) never go backwards in write order: each
 * group starts from max(now, newest stored ts), read under the write lock,
 * so history can stop scanning at the first version older than _since. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/embedded.h"
#include "store/store.h"
#include "base/banned.h"

enum stmt {
	ST_READ,
	ST_VREAD,
	ST_HIST_INSTANCE,
	ST_HIST_TYPE,
	ST_HIST_SYSTEM,
	ST_HIST_COUNT,
	ST_SCAN_TYPE,
	ST_SCAN_ALL,
	ST_COUNT_TYPE,
	ST_COUNT_ALL,
	ST_TOKEN_LOOKUP,
	ST_USER_GET,
	ST_USER_LIST,
	ST_W_BEGIN,
	ST_W_COMMIT,
	ST_W_ROLLBACK,
	ST_W_SAVEPOINT,
	ST_W_RELEASE,
	ST_W_ROLLBACK_TO,
	ST_W_CURRENT,
	ST_W_CURRENT_JSON,
	ST_W_INS_RESOURCE,
	ST_W_UPD_RESOURCE,
	ST_W_INS_VERSION,
	ST_W_LAST_TS,
	ST_A_USER_ADD,
	ST_A_USER_PASSWORD,
	ST_A_TOKEN_ADD,
	ST_A_TOKEN_REVOKE,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_READ] =
		"SELECT r.vid, r.deleted, v.ts, v.json, v.vkey, v.method FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid WHERE r.type = ?1 AND r.id = ?2",
	[ST_VREAD] =
		"SELECT v.vid, v.json IS NULL, v.ts, v.json, v.vkey, v.method FROM resource r "
		"JOIN version v ON v.rkey = r.rkey WHERE r.type = ?1 AND r.id = ?2 AND v.vid = ?3",
	[ST_HIST_INSTANCE] =
		"SELECT v.vkey, v.vid, v.ts, v.method, v.json, r.type, r.id FROM resource r "
		"JOIN version v ON v.rkey = r.rkey WHERE r.type = ?1 AND r.id = ?2 AND v.vkey < ?3 "
		"ORDER BY v.vid DESC LIMIT ?4",
	[ST_HIST_TYPE] =
		"SELECT v.vkey, v.vid, v.ts, v.method, v.json, v.type, r.id FROM version v "
		"JOIN resource r ON r.rkey = v.rkey WHERE v.type = ?1 AND v.vkey < ?3 "
		"ORDER BY v.vkey DESC LIMIT ?4",
	[ST_HIST_SYSTEM] =
		"SELECT v.vkey, v.vid, v.ts, v.method, v.json, v.type, r.id FROM version v "
		"JOIN resource r ON r.rkey = v.rkey WHERE v.vkey < ?3 "
		"ORDER BY v.vkey DESC LIMIT ?4",
	[ST_HIST_COUNT] =
		"SELECT count(*) FROM resource r JOIN version v ON v.rkey = r.rkey "
		"WHERE r.type = ?1 AND r.id = ?2 AND v.ts >= ?3",
	[ST_SCAN_TYPE] =
		"SELECT r.type, r.id, v.vid, v.ts, v.json, v.vkey FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid "
		"WHERE r.type = ?1 AND r.deleted = 0",
	[ST_SCAN_ALL] =
		"SELECT r.type, r.id, v.vid, v.ts, v.json, v.vkey FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid WHERE r.deleted = 0 "
		"ORDER BY r.rkey",
	[ST_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type = ?1 AND deleted = 0",
	[ST_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted = 0",
	[ST_TOKEN_LOOKUP] =
		"SELECT u.uid, u.username, u.role, t.scopes, t.expires, t.revoked, u.active, "
		"u.practitioner FROM token t JOIN app_user u ON u.uid = t.uid WHERE t.hash = ?1",
	[ST_USER_GET] =
		"SELECT uid, username, role, pw_hash, practitioner, active, failed_logins, "
		"locked_until, created FROM app_user WHERE username = ?1",
	[ST_USER_LIST] =
		"SELECT uid, username, role, pw_hash, practitioner, active, failed_logins, "
		"locked_until, created FROM app_user ORDER BY username",
	[ST_W_BEGIN] = "BEGIN IMMEDIATE",
	[ST_W_COMMIT] = "COMMIT",
	[ST_W_ROLLBACK] = "ROLLBACK",
	[ST_W_SAVEPOINT] = "SAVEPOINT op",
	[ST_W_RELEASE] = "RELEASE op",
	[ST_W_ROLLBACK_TO] = "ROLLBACK TO op",
	[ST_W_CURRENT] =
		"SELECT r.rkey, r.vid, r.deleted, v.chash, v.ts FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid WHERE r.type = ?1 AND r.id = ?2",
	[ST_W_CURRENT_JSON] = "SELECT json FROM version WHERE rkey = ?1 AND vid = ?2",
	[ST_W_INS_RESOURCE] = "INSERT INTO resource (type, id, vid, deleted) VALUES (?1, ?2, ?3, ?4)",
	[ST_W_UPD_RESOURCE] = "UPDATE resource SET vid = ?2, deleted = ?3 WHERE rkey = ?1",
	[ST_W_INS_VERSION] =
		"INSERT INTO version (rkey, vid, type, ts, method, chash, json) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_W_LAST_TS] = "SELECT ts FROM version ORDER BY vkey DESC LIMIT 1",
	[ST_A_USER_ADD] =
		"INSERT INTO app_user (username, role, pw_hash, practitioner, active, created) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_A_USER_PASSWORD] =
		"UPDATE app_user SET pw_hash = ?2, failed_logins = 0, locked_until = 0 "
		"WHERE username = ?1",
	[ST_A_TOKEN_ADD] =
		"INSERT INTO token (hash, uid, kind, scopes, issued, expires) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_A_TOKEN_REVOKE] = "UPDATE token SET revoked = 1 WHERE hash = ?1",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct conn *next;
};

struct store {
	char *path;
	struct store_opts opts;

	pthread_mutex_t pool_mu;
	struct conn *pool;          /* idle reader connections */

	pthread_mutex_t admin_mu;
	struct conn *admin;         /* opened on first use */

	struct conn *writer;
	pthread_t writer_thread;
	bool writer_started;
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct store_txn *q_head, *q_tail;
	bool closing;
	struct buf json;            /* writer's assembly buffer */
};

#define MIGRATION_PREFIX "src/store/migrate_sqlite_"

static int db_fail(struct err *e, sqlite3 *db, const char *what)
{
	int rc = sqlite3_extended_errcode(db);
	int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
			   ? ERR_UNAVAILABLE : ERR_DB;

	if ((rc & 0xff) == SQLITE_NOTADB) {
		err_set(e, ERR_INVALID, "not a chartkeep database");
		err_detail(e, "%s: %s", what, sqlite3_errmsg(db));
		return -1;
	}
	err_set(e, code, code == ERR_UNAVAILABLE ? "the database is busy, try again"
						 : "the database failed");
	err_detail(e, "%s: %s (%d)", what, sqlite3_errmsg(db), rc);
	return -1;
}

static sqlite3_stmt *stmt(struct conn *c, enum stmt which, struct err *e)
{
	sqlite3_stmt *st = c->st[which];

	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(c->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
			       &st, NULL) != SQLITE_OK) {
		db_fail(e, c->db, "prepare");
		return NULL;
	}
	c->st[which] = st;
	return st;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static int exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_NOTADB)
			err_set(e, ERR_INVALID, "not a chartkeep database");
		else
			err_set(e, ERR_DB, "the database failed");
		err_detail(e, "%s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static struct conn *conn_open(const char *path, bool readonly, int cache_kb, struct err *e)
{
	struct conn *c = calloc(1, sizeof(*c));
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		    SQLITE_OPEN_NOMUTEX;
	char pragmas[256];

	if (!c) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
		db_fail(e, c->db, "open");
		conn_close(c);
		return NULL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	/* synchronous=FULL: a COMMIT returns after the WAL is on disk, which is
	 * what "2xx means durable" needs. */
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA synchronous=FULL; PRAGMA cache_size=-%d; PRAGMA temp_store=MEMORY;",
		 cache_kb);
	if (exec(c->db, pragmas, e) < 0) {
		conn_close(c);
		return NULL;
	}
	return c;
}

/* ---- migrations ---- */

static int migration_version(const char *name)
{
	return atoi(name + strlen(MIGRATION_PREFIX));
}

/* Apply the embedded migrations newer than the database; quiet says whether
 * to keep it out of the log (a new database is not news). */
static int migrate(sqlite3 *db, bool quiet, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int current = 0, rc = -1, applied = 0;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
			       -1, &st, NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "not a chartkeep database");
		err_detail(e, "schema_migrations: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		current = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;

	/* Embedded files are in name order, so migrations run in version order. */
	for (size_t i = 0; i < embedded_count; i++) {
		const struct embedded_file *f = &embedded_files[i];
		int v;

		if (strncmp(f->name, MIGRATION_PREFIX, strlen(MIGRATION_PREFIX)) != 0)
			continue;
		v = migration_version(f->name);
		if (v <= current)
			continue;
		if (exec(db, "BEGIN IMMEDIATE", e) < 0)
			goto out;
		if (exec(db, (const char *)f->data, e) < 0) {
			exec(db, "ROLLBACK", NULL);
			goto out;
		}
		if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations (version, name, applied) "
					   "VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK) {
			db_fail(e, db, "migration record");
			exec(db, "ROLLBACK", NULL);
			goto out;
		}
		sqlite3_bind_int(st, 1, v);
		sqlite3_bind_text(st, 2, f->name + strlen(MIGRATION_PREFIX), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, time_now_ms());
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_fail(e, db, "migration record");
			sqlite3_finalize(st);
			st = NULL;
			exec(db, "ROLLBACK", NULL);
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
		if (exec(db, "COMMIT", e) < 0)
			goto out;
		applied++;
		if (!quiet)
			log_info("event=migration version=%d", v);
	}
	(void)applied;
	rc = 0;
out:
	return rc;
}

int store_create(const char *path, struct err *e)
{
	sqlite3 *db = NULL;
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return err_set(e, ERR_CONFLICT, "'%s' already exists; refusing to overwrite it", path);
		return err_set(e, ERR_IO, "cannot create '%s': %s", path, strerror(errno));
	}
	close(fd);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		db_fail(e, db, "open");
		goto out;
	}
	if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", e) < 0)
		goto out;
	if (exec(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
		     "name TEXT NOT NULL, applied INTEGER NOT NULL)", e) < 0)
		goto out;
	if (migrate(db, true, e) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_close(db);
	if (rc < 0)
		unlink(path);
	return rc;
}

/* ---- readers ---- */

static struct conn *reader_get(struct store *s, struct err *e)
{
	struct conn *c;

	pthread_mutex_lock(&s->pool_mu);
	c = s->pool;
	if (c)
		s->pool = c->next;
	pthread_mutex_unlock(&s->pool_mu);
	if (c)
		return c;
	return conn_open(s->path, true, s->opts.reader_cache_kb, e);
}

static void reader_put(struct store *s, struct conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&s->pool_mu);
	c->next = s->pool;
	s->pool = c;
	pthread_mutex_unlock(&s->pool_mu);
}

void store_version_release(struct store_version *v)
{
	free(v->json);
	v->json = NULL;
	v->len = 0;
}

static int copy_json(sqlite3_stmt *st, int col, struct store_version *out, struct err *e)
{
	const unsigned char *j = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	out->json = NULL;
	out->len = 0;
	if (!j)
		return 0;
	out->json = malloc((size_t)n + 1);
	if (!out->json)
		return err_set(e, ERR_NOMEM, "out of memory");
	memcpy(out->json, j, (size_t)n);
	out->json[n] = '\0';
	out->len = (size_t)n;
	return 0;
}

static void set_name(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* The current version (vid 0) or version vid of type/id. */
static int read_version(struct store *s, const char *type, const char *id, int64_t vid,
			struct store_version *out, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	memset(out, 0, sizeof(*out));
	if (!c)
		return -1;
	st = stmt(c, vid ? ST_VREAD : ST_READ, e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (vid)
		sqlite3_bind_int64(st, 3, vid);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		if (vid)
			err_set(e, ERR_NOT_FOUND, "%s/%s has no version %lld", type, id, (long long)vid);
		else
			err_set(e, ERR_NOT_FOUND, "%s/%s is not known", type, id);
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_fail(e, c->db, "read");
		goto out;
	}
	out->vid = sqlite3_column_int64(st, 0);
	out->deleted = sqlite3_column_int(st, 1) != 0;
	out->ts_ms = sqlite3_column_int64(st, 2);
	out->vkey = sqlite3_column_int64(st, 4);
	out->method = sqlite3_column_int(st, 5);
	set_name(out->type, sizeof(out->type), type);
	set_name(out->id, sizeof(out->id), id);
	if (out->deleted) {
		if (vid)
			err_set(e, ERR_GONE, "version %lld of %s/%s is a deletion", (long long)vid, type, id);
		else
			err_set(e, ERR_GONE, "%s/%s has been deleted", type, id);
		goto out;
	}
	rc = copy_json(st, 3, out, e);
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

int store_read(struct store *s, const char *type, const char *id,
	       struct store_version *out, struct err *e)
{
	return read_version(s, type, id, 0, out, e);
}

int store_vread(struct store *s, const char *type, const char *id, int64_t vid,
		struct store_version *out, struct err *e)
{
	if (vid <= 0) {
		memset(out, 0, sizeof(*out));
		return err_set(e, ERR_NOT_FOUND, "%s/%s has no version %lld", type, id, (long long)vid);
	}
	return read_version(s, type, id, vid, out, e);
}

int store_history(struct store *s, const struct store_history_q *q, store_version_fn fn,
		  void *ctx, int64_t *next_cursor, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	enum stmt which = q->id ? ST_HIST_INSTANCE : q->type ? ST_HIST_TYPE : ST_HIST_SYSTEM;
	int rc = -1, step;
	size_t delivered = 0;
	int64_t last_vkey = 0;
	bool more = false;

	*next_cursor = 0;
	if (!c)
		return -1;
	st = stmt(c, which, e);
	if (!st)
		goto out;
	if (q->type)
		sqlite3_bind_text(st, 1, q->type, -1, SQLITE_STATIC);
	if (q->id)
		sqlite3_bind_text(st, 2, q->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, q->before_vkey > 0 ? q->before_vkey : INT64_MAX);
	/* One row more than the page, to know whether there is a next page. */
	sqlite3_bind_int64(st, 4, (int64_t)q->count + 1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_version v;
		const unsigned char *j;
		int r;

		memset(&v, 0, sizeof(v));
		v.vkey = sqlite3_column_int64(st, 0);
		v.vid = sqlite3_column_int64(st, 1);
		v.ts_ms = sqlite3_column_int64(st, 2);
		v.method = sqlite3_column_int(st, 3);
		/* Timestamps never decrease in write order (see the file comment). */
		if (q->since_ms != INT64_MIN && v.ts_ms < q->since_ms)
			break;
		if (delivered == q->count) {
			more = true;
			break;
		}
		j = sqlite3_column_text(st, 4);
		v.json = (char *)j;
		v.len = j ? (size_t)sqlite3_column_bytes(st, 4) : 0;
		v.deleted = j == NULL;
		set_name(v.type, sizeof(v.type), (const char *)sqlite3_column_text(st, 5));
		set_name(v.id, sizeof(v.id), (const char *)sqlite3_column_text(st, 6));
		r = fn(ctx, &v);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "history delivery failed");
			goto out;
		}
		delivered++;
		last_vkey = v.vkey;
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_fail(e, c->db, "history");
		goto out;
	}
	if (more)
		*next_cursor = last_vkey;
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

static int count_query(struct store *s, enum stmt which, const char *a, const char *b,
		       int64_t n3, int64_t *count, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = stmt(c, which, e);
	if (!st)
		goto out;
	if (a)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (which == ST_HIST_COUNT)
		sqlite3_bind_int64(st, 3, n3);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(e, c->db, "count");
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

int store_history_count(struct store *s, const char *type, const char *id, int64_t since_ms,
			int64_t *count, struct err *e)
{
	return count_query(s, ST_HIST_COUNT, type, id, since_ms, count, e);
}

int store_count_current(struct store *s, const char *type, int64_t *count, struct err *e)
{
	return count_query(s, type ? ST_COUNT_TYPE : ST_COUNT_ALL, type, NULL, 0, count, e);
}

int store_scan_current(struct store *s, const char *type, store_version_fn fn, void *ctx,
		       struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = stmt(c, type ? ST_SCAN_TYPE : ST_SCAN_ALL, e);
	if (!st)
		goto out;
	if (type)
		sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_version v;
		int r;

		memset(&v, 0, sizeof(v));
		set_name(v.type, sizeof(v.type), (const char *)sqlite3_column_text(st, 0));
		set_name(v.id, sizeof(v.id), (const char *)sqlite3_column_text(st, 1));
		v.vid = sqlite3_column_int64(st, 2);
		v.ts_ms = sqlite3_column_int64(st, 3);
		v.json = (char *)sqlite3_column_text(st, 4);
		v.len = (size_t)sqlite3_column_bytes(st, 4);
		v.vkey = sqlite3_column_int64(st, 5);
		r = fn(ctx, &v);
		if (r < 0) {
			if (!e->code)
				err_set(e, ERR_INTERNAL, "scan delivery failed");
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_fail(e, c->db, "scan");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

/* ---- the writer ---- */

struct current {
	bool exists, deleted;
	int64_t rkey, vid, ts;
	unsigned char chash[16];
	bool has_hash;
};

static int load_current(struct conn *w, struct store_op *op, struct current *cur)
{
	sqlite3_stmt *st = stmt(w, ST_W_CURRENT, &op->err);
	int step;

	memset(cur, 0, sizeof(*cur));
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, op->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(st, 3);
		cur->exists = true;
		cur->rkey = sqlite3_column_int64(st, 0);
		cur->vid = sqlite3_column_int64(st, 1);
		cur->deleted = sqlite3_column_int(st, 2) != 0;
		cur->ts = sqlite3_column_int64(st, 4);
		if (h && sqlite3_column_bytes(st, 3) == 16) {
			memcpy(cur->chash, h, 16);
			cur->has_hash = true;
		}
	} else if (step != SQLITE_DONE) {
		db_fail(&op->err, w->db, "current");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

static void assemble(struct buf *b, const struct store_op *op, int64_t vid, int64_t ts)
{
	char tsbuf[TIME_INSTANT_MAX];

	time_format_instant(ts, tsbuf);
	buf_reset(b);
	buf_addstr(b, "{\"resourceType\":\"");
	buf_add_json_str(b, op->type, strlen(op->type));
	buf_addstr(b, "\",\"id\":\"");
	buf_add_json_str(b, op->id, strlen(op->id));
	buf_addf(b, "\",\"meta\":{\"versionId\":\"%lld\",\"lastUpdated\":\"%s\"",
		 (long long)vid, tsbuf);
	if (op->meta_rest_len) {
		buf_addch(b, ',');
		buf_add(b, op->meta_rest, op->meta_rest_len);
	}
	buf_addch(b, '}');
	if (op->body_len) {
		buf_addch(b, ',');
		buf_add(b, op->body, op->body_len);
	}
	buf_addch(b, '}');
}

static int give_json(struct store_op *op, const char *j, size_t n)
{
	op->json = malloc(n + 1);
	if (!op->json)
		return err_set(&op->err, ERR_NOMEM, "out of memory");
	memcpy(op->json, j, n);
	op->json[n] = '\0';
	op->json_len = n;
	return 0;
}

static int noop_json(struct conn *w, struct store_op *op, const struct current *cur)
{
	sqlite3_stmt *st = stmt(w, ST_W_CURRENT_JSON, &op->err);
	int rc = -1;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, cur->rkey);
	sqlite3_bind_int64(st, 2, cur->vid);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		rc = give_json(op, (const char *)sqlite3_column_text(st, 0),
			       (size_t)sqlite3_column_bytes(st, 0));
	else
		db_fail(&op->err, w->db, "current json");
	sqlite3_reset(st);
	return rc;
}

static int write_version(struct store *s, struct store_op *op, const struct current *cur,
			 int64_t vid, int64_t ts, bool deleted)
{
	struct conn *w = s->writer;
	sqlite3_stmt *st;
	int64_t rkey = cur->rkey;

	if (!cur->exists) {
		st = stmt(w, ST_W_INS_RESOURCE, &op->err);
		if (!st)
			return -1;
		sqlite3_bind_text(st, 1, op->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, vid);
		sqlite3_bind_int(st, 4, deleted);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return db_fail(&op->err, w->db, "insert resource");
		}
		sqlite3_reset(st);
		rkey = sqlite3_last_insert_rowid(w->db);
	} else {
		st = stmt(w, ST_W_UPD_RESOURCE, &op->err);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, rkey);
		sqlite3_bind_int64(st, 2, vid);
		sqlite3_bind_int(st, 3, deleted);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return db_fail(&op->err, w->db, "update resource");
		}
		sqlite3_reset(st);
	}
	st = stmt(w, ST_W_INS_VERSION, &op->err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, rkey);
	sqlite3_bind_int64(st, 2, vid);
	sqlite3_bind_text(st, 3, op->type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, ts);
	sqlite3_bind_int(st, 5, op->method);
	if (deleted) {
		sqlite3_bind_null(st, 6);
		sqlite3_bind_null(st, 7);
	} else {
		if (s->json.failed) {
			sqlite3_reset(st);
			return err_set(&op->err, ERR_NOMEM, "out of memory");
		}
		sqlite3_bind_blob(st, 6, op->chash, 16, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, s->json.data, (int)s->json.len, SQLITE_STATIC);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return db_fail(&op->err, w->db, "insert version");
	}
	sqlite3_reset(st);
	return 0;
}

/* Apply one operation inside the open transaction. */
static int apply_op(struct store *s, struct store_op *op, int64_t ts)
{
	struct conn *w = s->writer;
	struct current cur;
	int64_t vid;

	op->status = 0;
	op->noop = false;
	op->json = NULL;
	op->json_len = 0;
	err_clear(&op->err);
	if (load_current(w, op, &cur) < 0)
		return -1;
	if (op->if_match > 0) {
		if (!cur.exists || cur.deleted)
			return err_set(&op->err, ERR_PRECONDITION,
				       "If-Match given, but %s/%s does not exist", op->type, op->id);
		if (cur.vid != op->if_match)
			return err_set(&op->err, ERR_PRECONDITION,
				       "version conflict: If-Match names version %lld, current is %lld",
				       (long long)op->if_match, (long long)cur.vid);
	}
	switch (op->kind) {
	case STORE_CREATE:
		if (cur.exists)
			return err_set(&op->err, ERR_CONFLICT, "%s/%s already exists", op->type, op->id);
		/* fall through */
	case STORE_UPDATE:
		if (cur.exists && !cur.deleted && cur.has_hash &&
		    sodium_memcmp(cur.chash, op->chash, 16) == 0) {
			op->noop = true;
			op->status = 200;
			op->vid = cur.vid;
			op->ts_ms = cur.ts;
			return op->want_json ? noop_json(w, op, &cur) : 0;
		}
		vid = cur.exists ? cur.vid + 1 : 1;
		assemble(&s->json, op, vid, ts);
		if (write_version(s, op, &cur, vid, ts, false) < 0)
			return -1;
		op->status = cur.exists && !cur.deleted ? 200 : 201;
		op->vid = vid;
		op->ts_ms = ts;
		if (op->want_json && give_json(op, s->json.data, s->json.len) < 0)
			return -1;
		return 0;
	case STORE_REMOVE:
		if (!cur.exists || cur.deleted) {
			op->noop = true;
			op->status = 200;
			op->vid = cur.vid;
			op->ts_ms = cur.ts;
			return 0;
		}
		vid = cur.vid + 1;
		if (write_version(s, op, &cur, vid, ts, true) < 0)
			return -1;
		op->status = 200;
		op->vid = vid;
		op->ts_ms = ts;
		return 0;
	default:
		return err_set(&op->err, ERR_INTERNAL, "unknown store operation");
	}
}

static int step_simple(struct conn *w, enum stmt which, struct err *e)
{
	sqlite3_stmt *st = stmt(w, which, e);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(e, w->db, stmt_sql[which]);
	return 0;
}

static void free_op_json(struct store_txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->ops[i].json);
		t->ops[i].json = NULL;
		t->ops[i].json_len = 0;
	}
}

/* Run one transaction inside the group's BEGIN; a failure is the
 * transaction's own and rolls back only its savepoint. */
static void apply_txn(struct store *s, struct store_txn *t, int64_t ts)
{
	struct conn *w = s->writer;

	t->rc = 0;
	err_clear(&t->err);
	if (step_simple(w, ST_W_SAVEPOINT, &t->err) < 0) {
		t->rc = -1;
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		struct store_op *op = &t->ops[i];

		if (!t->atomic && step_simple(w, ST_W_SAVEPOINT, &op->err) < 0) {
			op->status = 0;
			continue;
		}
		if (apply_op(s, op, ts) == 0) {
			if (!t->atomic)
				step_simple(w, ST_W_RELEASE, &op->err);
			continue;
		}
		op->status = 0;
		free(op->json);
		op->json = NULL;
		if (!t->atomic) {
			step_simple(w, ST_W_ROLLBACK_TO, NULL);
			step_simple(w, ST_W_RELEASE, NULL);
			continue;
		}
		t->rc = -1;
		t->failed_op = i;
		t->err = op->err;
		step_simple(w, ST_W_ROLLBACK_TO, NULL);
		step_simple(w, ST_W_RELEASE, NULL);
		free_op_json(t);
		for (size_t k = 0; k < t->n; k++)
			if (k != i)
				t->ops[k].status = 0;
		return;
	}
	step_simple(w, ST_W_RELEASE, &t->err);
}

static int64_t last_ts(struct store *s)
{
	sqlite3_stmt *st = stmt(s->writer, ST_W_LAST_TS, NULL);
	int64_t ts = 0;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		ts = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	return ts;
}

static void fail_group(struct store_txn *head, const struct err *why)
{
	for (struct store_txn *t = head; t; t = t->next) {
		free_op_json(t);
		for (size_t i = 0; i < t->n; i++) {
			t->ops[i].status = 0;
			t->ops[i].err = *why;
		}
		t->rc = -1;
		t->failed_op = 0;
		t->err = *why;
	}
}

static void commit_group(struct store *s, struct store_txn *head)
{
	struct err e = ERR_INIT;
	int64_t ts, now;

	if (step_simple(s->writer, ST_W_BEGIN, &e) < 0) {
		log_error("event=store_begin_failed detail=\"%s\"", e.detail);
		fail_group(head, &e);
		return;
	}
	now = time_now_ms();
	ts = last_ts(s);
	if (now > ts)
		ts = now;
	for (struct store_txn *t = head; t; t = t->next)
		apply_txn(s, t, ts);
	if (step_simple(s->writer, ST_W_COMMIT, &e) < 0) {
		/* Nothing of this group is on disk: say so to everyone in it. */
		log_error("event=store_commit_failed detail=\"%s\"", e.detail);
		step_simple(s->writer, ST_W_ROLLBACK, NULL);
		err_set(&e, ERR_DB, "the database could not commit the change");
		fail_group(head, &e);
	}
}

static void *writer_main(void *arg)
{
	struct store *s = arg;

	for (;;) {
		struct store_txn *head, *tail, *rest, *t, *next;
		size_t ops = 0;

		pthread_mutex_lock(&s->q_mu);
		while (!s->q_head && !s->closing)
			pthread_cond_wait(&s->q_cv, &s->q_mu);
		if (!s->q_head) {
			pthread_mutex_unlock(&s->q_mu);
			break;
		}
		/* Take as many queued transactions as fit in one group. */
		head = tail = s->q_head;
		ops = head->n;
		while (tail->next && ops + tail->next->n <= s->opts.group_max_ops) {
			tail = tail->next;
			ops += tail->n;
		}
		rest = tail->next;
		tail->next = NULL;
		s->q_head = rest;
		if (!rest)
			s->q_tail = NULL;
		pthread_mutex_unlock(&s->q_mu);

		commit_group(s, head);
		for (t = head; t; t = next) {
			next = t->next;
			t->next = NULL;
			t->done(t, t->done_arg);
		}
	}
	return NULL;
}

int store_submit(struct store *s, struct store_txn *t)
{
	t->next = NULL;
	t->rc = 0;
	err_clear(&t->err);
	pthread_mutex_lock(&s->q_mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->q_mu);
		return err_set(&t->err, ERR_UNAVAILABLE, "the server is shutting down");
	}
	if (s->q_tail)
		s->q_tail->next = t;
	else
		s->q_head = t;
	s->q_tail = t;
	pthread_cond_signal(&s->q_cv);
	pthread_mutex_unlock(&s->q_mu);
	return 0;
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void wake(struct store_txn *t, void *arg)
{
	struct waiter *w = arg;

	(void)t;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int store_commit(struct store *s, struct store_txn *t)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };

	t->done = wake;
	t->done_arg = &w;
	if (store_submit(s, t) < 0) {
		t->rc = -1;
		return -1;
	}
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return t->rc;
}

/* ---- open / close ---- */

int store_open(const char *path, const struct store_opts *opts, struct store **out,
	       struct err *e)
{
	struct store *s;
	struct stat sb;

	*out = NULL;
	if (stat(path, &sb) < 0)
		return err_set(e, ERR_NOT_FOUND, "no database at '%s' (create one with 'chartkeep init')",
			       path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory");
	s->path = strdup(path);
	if (opts)
		s->opts = *opts;
	if (s->opts.reader_cache_kb <= 0)
		s->opts.reader_cache_kb = 8192;
	if (s->opts.writer_cache_kb <= 0)
		s->opts.writer_cache_kb = 32768;
	if (s->opts.group_max_ops == 0)
		s->opts.group_max_ops = 20000;
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_mutex_init(&s->admin_mu, NULL);
	pthread_mutex_init(&s->q_mu, NULL);
	pthread_cond_init(&s->q_cv, NULL);
	buf_init(&s->json, 0);
	if (!s->path) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	s->writer = conn_open(path, false, s->opts.writer_cache_kb, e);
	if (!s->writer)
		goto fail;
	if (exec(s->writer->db, "PRAGMA journal_mode=WAL", e) < 0)
		goto fail;
	if (migrate(s->writer->db, false, e) < 0)
		goto fail;
	if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the writer thread");
		goto fail;
	}
	s->writer_started = true;
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

void store_close(struct store *s)
{
	struct conn *c, *next;

	if (!s)
		return;
	if (s->writer_started) {
		pthread_mutex_lock(&s->q_mu);
		s->closing = true;
		pthread_cond_broadcast(&s->q_cv);
		pthread_mutex_unlock(&s->q_mu);
		pthread_join(s->writer_thread, NULL);
	}
	for (c = s->pool; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	conn_close(s->admin);
	if (s->writer) {
		/* Fold the WAL back into the database file on a clean shutdown. */
		sqlite3_wal_checkpoint_v2(s->writer->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		conn_close(s->writer);
	}
	buf_release(&s->json);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_mutex_destroy(&s->admin_mu);
	pthread_mutex_destroy(&s->q_mu);
	pthread_cond_destroy(&s->q_cv);
	free(s->path);
	free(s);
}

int store_schema_version(struct store *s, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (!c)
		return -1;
	if (sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_migrations", -1, &st,
			       NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else
		db_fail(e, c->db, "schema version");
	sqlite3_finalize(st);
	reader_put(s, c);
	return v;
}

int store_check(struct store *s, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (!c)
		return -1;
	if (sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		db_fail(e, c->db, "integrity_check");
		goto out;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(e, c->db, "integrity_check");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		err_set(e, ERR_DB, "the database is damaged");
		err_detail(e, "integrity_check: %s", sqlite3_column_text(st, 0));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	reader_put(s, c);
	return rc;
}

/* ---- users and tokens (the admin connection) ---- */

static struct conn *admin_get(struct store *s, struct err *e)
{
	pthread_mutex_lock(&s->admin_mu);
	if (!s->admin)
		s->admin = conn_open(s->path, false, 2048, e);
	if (!s->admin) {
		pthread_mutex_unlock(&s->admin_mu);
		return NULL;
	}
	return s->admin;
}

static void admin_put(struct store *s)
{
	pthread_mutex_unlock(&s->admin_mu);
}

int store_user_add(struct store *s, struct store_user *u, struct err *e)
{
	struct conn *c = admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = stmt(c, ST_A_USER_ADD, e);
	if (!st)
		goto out;
	if (!u->created_ms)
		u->created_ms = time_now_ms();
	sqlite3_bind_text(st, 1, u->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, u->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, u->pw_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, u->practitioner, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, u->active);
	sqlite3_bind_int64(st, 6, u->created_ms);
	step = sqlite3_step(st);
	if (step == SQLITE_CONSTRAINT || (sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT) {
		err_set(e, ERR_CONFLICT, "user '%s' already exists", u->username);
		goto out;
	}
	if (step != SQLITE_DONE) {
		db_fail(e, c->db, "user add");
		goto out;
	}
	u->uid = sqlite3_last_insert_rowid(c->db);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	admin_put(s);
	return rc;
}

static void user_from_row(sqlite3_stmt *st, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	u->uid = sqlite3_column_int64(st, 0);
	set_name(u->username, sizeof(u->username), (const char *)sqlite3_column_text(st, 1));
	set_name(u->role, sizeof(u->role), (const char *)sqlite3_column_text(st, 2));
	set_name(u->pw_hash, sizeof(u->pw_hash), (const char *)sqlite3_column_text(st, 3));
	set_name(u->practitioner, sizeof(u->practitioner), (const char *)sqlite3_column_text(st, 4));
	u->active = sqlite3_column_int(st, 5) != 0;
	u->failed_logins = sqlite3_column_int(st, 6);
	u->locked_until_ms = sqlite3_column_int64(st, 7);
	u->created_ms = sqlite3_column_int64(st, 8);
}

int store_user_get(struct store *s, const char *username, struct store_user *out, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = stmt(c, ST_USER_GET, e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		err_set(e, ERR_NOT_FOUND, "no user '%s'", username);
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_fail(e, c->db, "user get");
		goto out;
	}
	user_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

int store_user_list(struct store *s, store_user_fn fn, void *ctx, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = stmt(c, ST_USER_LIST, e);
	if (!st)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_user u;
		user_from_row(st, &u);
		if (fn(ctx, &u) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_fail(e, c->db, "user list");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}

int store_user_set_password(struct store *s, const char *username, const char *pw_hash,
			    struct err *e)
{
	struct conn *c = admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = stmt(c, ST_A_USER_PASSWORD, e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pw_hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(e, c->db, "set password");
		goto out;
	}
	if (sqlite3_changes(c->db) == 0) {
		err_set(e, ERR_NOT_FOUND, "no user '%s'", username);
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	admin_put(s);
	return rc;
}

int store_token_add(struct store *s, const struct store_token *t, struct err *e)
{
	struct conn *c = admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = stmt(c, ST_A_TOKEN_ADD, e);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, t->hash, sizeof(t->hash), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t->uid);
	sqlite3_bind_text(st, 3, t->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, t->scopes, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, t->issued_ms);
	sqlite3_bind_int64(st, 6, t->expires_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(e, c->db, "token add");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	admin_put(s);
	return rc;
}

int store_token_revoke(struct store *s, const unsigned char hash[32], struct err *e)
{
	struct conn *c = admin_get(s, e);
	sqlite3_stmt *st;
	int rc = -1;

	if (!c)
		return -1;
	st = stmt(c, ST_A_TOKEN_REVOKE, e);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(e, c->db, "token revoke");
		goto out;
	}
	if (sqlite3_changes(c->db) == 0) {
		err_set(e, ERR_NOT_FOUND, "no such token");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	admin_put(s);
	return rc;
}

int store_token_lookup(struct store *s, const unsigned char hash[32], int64_t now_ms,
		       struct store_principal *out, struct err *e)
{
	struct conn *c = reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	memset(out, 0, sizeof(*out));
	if (!c)
		return -1;
	st = stmt(c, ST_TOKEN_LOOKUP, e);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		err_set(e, ERR_UNAUTHENTICATED, "the access token is not valid");
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_fail(e, c->db, "token lookup");
		goto out;
	}
	out->uid = sqlite3_column_int64(st, 0);
	set_name(out->username, sizeof(out->username), (const char *)sqlite3_column_text(st, 1));
	set_name(out->role, sizeof(out->role), (const char *)sqlite3_column_text(st, 2));
	set_name(out->scopes, sizeof(out->scopes), (const char *)sqlite3_column_text(st, 3));
	out->expires_ms = sqlite3_column_int64(st, 4);
	set_name(out->practitioner, sizeof(out->practitioner), (const char *)sqlite3_column_text(st, 7));
	if (sqlite3_column_int(st, 5)) {
		err_set(e, ERR_UNAUTHENTICATED, "the access token has been revoked");
		goto out;
	}
	if (out->expires_ms <= now_ms) {
		err_set(e, ERR_UNAUTHENTICATED, "the access token has expired");
		goto out;
	}
	if (!sqlite3_column_int(st, 6)) {
		err_set(e, ERR_UNAUTHENTICATED, "the user is not active");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	reader_put(s, c);
	return rc;
}
