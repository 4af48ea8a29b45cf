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
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/embedded.h"
#include "store/store.h"
#include "store/sqlite_int.h"
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
	ST_W_SAVEPOINT_TXN,
	ST_W_RELEASE_TXN,
	ST_W_ROLLBACK_TO_TXN,
	ST_W_CURRENT,
	ST_W_CURRENT_JSON,
	ST_W_INS_RESOURCE,
	ST_W_UPD_RESOURCE,
	ST_W_INS_VERSION,
	ST_W_LAST_TS,
	ST_W_IX_TOKEN,
	ST_W_IX_STRING,
	ST_W_IX_DATE,
	ST_W_IX_NUMBER,
	ST_W_IX_QUANTITY,
	ST_W_IX_REFERENCE,
	ST_W_IX_URI,
	ST_W_IX_TEXT,
	ST_W_DX_TOKEN,
	ST_W_DX_STRING,
	ST_W_DX_DATE,
	ST_W_DX_NUMBER,
	ST_W_DX_QUANTITY,
	ST_W_DX_REFERENCE,
	ST_W_DX_URI,
	ST_W_DX_TEXT,
	ST_W_DICT_GET,
	ST_W_DICT_ADD,
	ST_A_PARAM_GET,
	ST_A_PARAM_ADD,
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
		"WHERE r.type = ?1 AND r.deleted = 0 ORDER BY r.id",
	[ST_SCAN_ALL] =
		"SELECT r.type, r.id, v.vid, v.ts, v.json, v.vkey FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid WHERE r.deleted = 0 "
		"ORDER BY r.rkey",
	[ST_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type = ?1 AND deleted = 0",
	[ST_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted = 0",
	/* A token belongs to a user (uid > 0), to a registered client alone
	 * (uid 0, client_id set), or to a user through a client: both must be
	 * active.  Only access tokens are bearer tokens (kind, column 11). */
	[ST_TOKEN_LOOKUP] =
		"SELECT t.uid, coalesce(u.username, c.client_id), coalesce(u.role, c.role), t.scopes, "
		"t.expires, t.revoked, "
		"(CASE WHEN t.uid > 0 THEN coalesce(u.active, 0) ELSE t.client_id <> '' END) "
		"AND (t.client_id = '' OR coalesce(c.active, 0)), "
		"coalesce(u.practitioner, ''), t.patient, t.client_id, coalesce(c.ckey, 0), t.kind "
		"FROM token t LEFT JOIN app_user u ON u.uid = t.uid "
		"LEFT JOIN oauth_client c ON c.client_id = t.client_id AND t.client_id <> '' "
		"WHERE t.hash = ?1",
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
	[ST_W_SAVEPOINT_TXN] = "SAVEPOINT txn",
	[ST_W_RELEASE_TXN] = "RELEASE txn",
	[ST_W_ROLLBACK_TO_TXN] = "ROLLBACK TO txn",
	[ST_W_CURRENT] =
		"SELECT r.rkey, r.vid, r.deleted, v.chash, v.ts FROM resource r "
		"JOIN version v ON v.rkey = r.rkey AND v.vid = r.vid WHERE r.type = ?1 AND r.id = ?2",
	[ST_W_CURRENT_JSON] = "SELECT json FROM version WHERE rkey = ?1 AND vid = ?2",
	[ST_W_INS_RESOURCE] = "INSERT INTO resource (type, id, vid, deleted, ts) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_W_UPD_RESOURCE] = "UPDATE resource SET vid = ?2, deleted = ?3, ts = ?4 WHERE rkey = ?1",
	[ST_W_INS_VERSION] =
		"INSERT INTO version (rkey, vid, type, ts, method, chash, json) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_W_LAST_TS] = "SELECT ts FROM version ORDER BY vkey DESC LIMIT 1",
	/* OR IGNORE: a resource may hold the same value twice.  ?12 is the
	 * ix_dict id of the row's text (dict_id). */
	[ST_W_IX_TOKEN] = "INSERT OR IGNORE INTO ix_token (pid, tok, rkey, grp) VALUES (?1, ?12, ?4, ?5)",
	[ST_W_IX_STRING] = "INSERT OR IGNORE INTO ix_string (pid, norm, exact, rkey, grp) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_W_IX_DATE] = "INSERT OR IGNORE INTO ix_date (pid, lo, hi, rkey, grp) VALUES (?1, ?6, ?7, ?4, ?5)",
	[ST_W_IX_NUMBER] =
		"INSERT OR IGNORE INTO ix_number (pid, val, lo, hi, rkey, grp) VALUES (?1, ?8, ?9, ?10, ?4, ?5)",
	[ST_W_IX_QUANTITY] =
		"INSERT OR IGNORE INTO ix_quantity (pid, val, tok, lo, hi, rkey, grp) "
		"VALUES (?1, ?8, ?12, ?9, ?10, ?4, ?5)",
	[ST_W_IX_REFERENCE] =
		"INSERT OR IGNORE INTO ix_reference (pid, tok, rkey, grp) VALUES (?1, ?12, ?4, ?5)",
	[ST_W_IX_URI] = "INSERT OR IGNORE INTO ix_uri (pid, uri, rkey, grp) VALUES (?1, ?2, ?4, ?5)",
	[ST_W_IX_TEXT] = "INSERT INTO ix_fts (rowid, narrative, content) VALUES (?4, ?2, ?3)",
	[ST_W_DX_TOKEN] = "DELETE FROM ix_token WHERE rkey = ?1",
	[ST_W_DX_STRING] = "DELETE FROM ix_string WHERE rkey = ?1",
	[ST_W_DX_DATE] = "DELETE FROM ix_date WHERE rkey = ?1",
	[ST_W_DX_NUMBER] = "DELETE FROM ix_number WHERE rkey = ?1",
	[ST_W_DX_QUANTITY] = "DELETE FROM ix_quantity WHERE rkey = ?1",
	[ST_W_DX_REFERENCE] = "DELETE FROM ix_reference WHERE rkey = ?1",
	[ST_W_DX_URI] = "DELETE FROM ix_uri WHERE rkey = ?1",
	[ST_W_DX_TEXT] = "DELETE FROM ix_fts WHERE rowid = ?1",
	[ST_W_DICT_GET] = "SELECT id FROM ix_dict WHERE code = ?1 AND sys = ?2",
	[ST_W_DICT_ADD] = "INSERT INTO ix_dict (sys, code, text) VALUES (?1, ?2, ?3)",
	[ST_A_PARAM_GET] = "SELECT pid FROM search_param WHERE url = ?1",
	[ST_A_PARAM_ADD] = "INSERT INTO search_param (url, code, type) VALUES (?1, ?2, ?3)",
	[ST_A_USER_ADD] =
		"INSERT INTO app_user (username, role, pw_hash, practitioner, active, created) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_A_USER_PASSWORD] =
		"UPDATE app_user SET pw_hash = ?2, failed_logins = 0, locked_until = 0 "
		"WHERE username = ?1",
	[ST_A_TOKEN_ADD] =
		"INSERT INTO token (hash, uid, kind, scopes, issued, expires, client_id, patient, family) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_A_TOKEN_REVOKE] = "UPDATE token SET revoked = 1 WHERE hash = ?1",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct sqlite_cached cache[SQLITE_CACHED_MAX];  /* search SQL, by text */
	unsigned cache_clock;
	struct conn *next;
};

/* The writer's cache of ix_dict: (system, code) -> id. */
struct dict_ent {
	char *key;      /* sys '\0' code */
	size_t klen;
	int64_t id;
};

struct dict {
	struct dict_ent *v;
	size_t n, cap;  /* cap: a power of two */
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
	struct dict dict;           /* writer's cache of ix_dict ids */
	struct sqlite_audit audit;  /* writer's view of the audit chain */

	/* WAL checkpoints run on their own thread and connection, so that no
	 * commit waits for one (SQLite's automatic checkpoint would run inside
	 * the COMMIT of whichever group crossed the threshold). */
	struct conn *ckpt;
	pthread_t ckpt_thread;
	bool ckpt_started, ckpt_stop;
	int wal_pages;              /* pages in the WAL after the last commit (wal hook) */
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
};

/* Checkpoint when the WAL holds this many pages (what SQLite's automatic
 * checkpoint would do at wal_autocheckpoint=8192: index pages written many
 * times in a row are copied to the database once). */
#define CKPT_PAGES 8192

/* SQLite calls this after each commit of the writer with the WAL's size. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *s = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&s->ckpt_mu);
	s->wal_pages = pages;
	if (pages >= CKPT_PAGES)
		pthread_cond_signal(&s->ckpt_cv);
	pthread_mutex_unlock(&s->ckpt_mu);
	return SQLITE_OK;
}

#define MIGRATION_PREFIX "src/store/migrate_sqlite_"

int sqlite_db_fail(struct err *e, sqlite3 *db, const char *what)
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
		sqlite_db_fail(e, c->db, "prepare");
		return NULL;
	}
	c->st[which] = st;
	return st;
}

int sqlite_step_row(sqlite3_stmt *st, sqlite3 *db, const char *none, const char *what, struct err *e)
{
	int step = sqlite3_step(st);

	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(e, ERR_NOT_FOUND, "%s", none);
	return sqlite_db_fail(e, db, what);
}

sqlite3_stmt *sqlite_prepare_cached(struct conn *c, const char *sql, struct err *e)
{
	struct sqlite_cached *victim = &c->cache[0];

	c->cache_clock++;
	for (int i = 0; i < SQLITE_CACHED_MAX; i++) {
		struct sqlite_cached *k = &c->cache[i];
		if (k->sql && strcmp(k->sql, sql) == 0) {
			k->used = c->cache_clock;
			sqlite3_reset(k->st);
			sqlite3_clear_bindings(k->st);
			return k->st;
		}
		if (!k->sql || k->used < victim->used)
			victim = k;
	}
	sqlite3_finalize(victim->st);
	free(victim->sql);
	victim->st = NULL;
	victim->sql = NULL;
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &victim->st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, c->db, "prepare search");
		sqlite3_finalize(victim->st);
		victim->st = NULL;
		return NULL;
	}
	victim->sql = strdup(sql);
	if (!victim->sql) {
		sqlite3_finalize(victim->st);
		victim->st = NULL;
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	victim->used = c->cache_clock;
	return victim->st;
}

sqlite3 *sqlite_conn_db(struct conn *c)
{
	return c->db;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	for (int i = 0; i < SQLITE_CACHED_MAX; i++) {
		sqlite3_finalize(c->cache[i].st);
		free(c->cache[i].sql);
	}
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
		sqlite_db_fail(e, c->db, "open");
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

/* Is migration v recorded in db?  1 yes, 0 no, -1 with e. */
static int migration_applied(sqlite3 *db, int v, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?1", -1, &st,
			       NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "not a chartkeep database");
		err_detail(e, "schema_migrations: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int(st, 1, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sqlite_db_fail(e, db, "schema_migrations");
}

/* Apply the embedded migrations the database has not had (each one whose
 * version is not recorded, so a migration numbered below one already
 * applied, as merged branches bring, still runs); quiet says whether to
 * keep it out of the log (a new database is not news). */
static int migrate(sqlite3 *db, bool quiet, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, applied = 0;

	/* Embedded files are in name order, so migrations run in version order. */
	for (size_t i = 0; i < embedded_count; i++) {
		const struct embedded_file *f = &embedded_files[i];
		int v;

		if (strncmp(f->name, MIGRATION_PREFIX, strlen(MIGRATION_PREFIX)) != 0)
			continue;
		v = migration_version(f->name);
		switch (migration_applied(db, v, e)) {
		case 1: continue;
		case 0: break;
		default: goto out;
		}
		if (exec(db, "BEGIN IMMEDIATE", e) < 0)
			goto out;
		if (exec(db, (const char *)f->data, e) < 0) {
			exec(db, "ROLLBACK", NULL);
			goto out;
		}
		if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations (version, name, applied) "
					   "VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK) {
			sqlite_db_fail(e, db, "migration record");
			exec(db, "ROLLBACK", NULL);
			goto out;
		}
		sqlite3_bind_int(st, 1, v);
		sqlite3_bind_text(st, 2, f->name + strlen(MIGRATION_PREFIX), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, time_now_ms());
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite_db_fail(e, db, "migration record");
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
		sqlite_db_fail(e, db, "open");
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

/* The reader a thread holds between store_read_scope_begin and _end (one
 * store at a time): every read in between goes through it, in one read
 * transaction. */
static _Thread_local struct {
	struct store *s;
	struct conn *c;
} read_scope;

struct conn *sqlite_reader_get(struct store *s, struct err *e)
{
	struct conn *c;

	if (read_scope.s == s && read_scope.c)
		return read_scope.c;
	pthread_mutex_lock(&s->pool_mu);
	c = s->pool;
	if (c)
		s->pool = c->next;
	pthread_mutex_unlock(&s->pool_mu);
	if (c)
		return c;
	return conn_open(s->path, true, s->opts.reader_cache_kb, e);
}

void sqlite_reader_put(struct store *s, struct conn *c)
{
	if (!c || c == read_scope.c)
		return;
	pthread_mutex_lock(&s->pool_mu);
	c->next = s->pool;
	s->pool = c;
	pthread_mutex_unlock(&s->pool_mu);
}

int store_read_scope_begin(struct store *s, struct err *e)
{
	struct conn *c;

	if (read_scope.c)
		return err_set(e, ERR_INTERNAL, "a read scope is already open on this thread");
	c = sqlite_reader_get(s, e);
	if (!c)
		return -1;
	/* deferred: the WAL read lock is taken by the first read and kept */
	if (exec(c->db, "BEGIN", e) < 0) {
		sqlite_reader_put(s, c);
		return -1;
	}
	read_scope.s = s;
	read_scope.c = c;
	return 0;
}

void store_read_scope_end(struct store *s)
{
	struct conn *c = read_scope.c;
	struct err e = ERR_INIT;

	if (!c || read_scope.s != s)
		return;
	read_scope.s = NULL;
	read_scope.c = NULL;
	/* a read transaction has nothing to keep: COMMIT only ends it */
	if (exec(c->db, "COMMIT", &e) < 0) {
		log_warn("event=read_scope_end_failed detail=\"%s\"", e.detail);
		(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite_reader_put(s, c);
}

void store_version_release(struct store_version *v)
{
	free(v->json);
	v->json = NULL;
	v->len = 0;
}

int sqlite_copy_json(sqlite3_stmt *st, int col, struct store_version *out, struct err *e)
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

void sqlite_set_name(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* The current version (vid 0) or version vid of type/id. */
static int read_version(struct store *s, const char *type, const char *id, int64_t vid,
			struct store_version *out, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_db_fail(e, c->db, "read");
		goto out;
	}
	out->vid = sqlite3_column_int64(st, 0);
	out->deleted = sqlite3_column_int(st, 1) != 0;
	out->ts_ms = sqlite3_column_int64(st, 2);
	out->vkey = sqlite3_column_int64(st, 4);
	out->method = sqlite3_column_int(st, 5);
	sqlite_set_name(out->type, sizeof(out->type), type);
	sqlite_set_name(out->id, sizeof(out->id), id);
	if (out->deleted) {
		if (vid)
			err_set(e, ERR_GONE, "version %lld of %s/%s is a deletion", (long long)vid, type, id);
		else
			err_set(e, ERR_GONE, "%s/%s has been deleted", type, id);
		goto out;
	}
	rc = sqlite_copy_json(st, 3, out, e);
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
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
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_set_name(v.type, sizeof(v.type), (const char *)sqlite3_column_text(st, 5));
		sqlite_set_name(v.id, sizeof(v.id), (const char *)sqlite3_column_text(st, 6));
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
		sqlite_db_fail(e, c->db, "history");
		goto out;
	}
	if (more)
		*next_cursor = last_vkey;
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

static int count_query(struct store *s, enum stmt which, const char *a, const char *b,
		       int64_t n3, int64_t *count, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_db_fail(e, c->db, "count");
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
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
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_set_name(v.type, sizeof(v.type), (const char *)sqlite3_column_text(st, 0));
		sqlite_set_name(v.id, sizeof(v.id), (const char *)sqlite3_column_text(st, 1));
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
		sqlite_db_fail(e, c->db, "scan");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
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
		sqlite_db_fail(&op->err, w->db, "current");
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
		sqlite_db_fail(&op->err, w->db, "current json");
	sqlite3_reset(st);
	return rc;
}

static int write_version(struct store *s, struct store_op *op, const struct current *cur,
			 int64_t vid, int64_t ts, bool deleted, int64_t *rkey_out)
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
		sqlite3_bind_int64(st, 5, ts);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return sqlite_db_fail(&op->err, w->db, "insert resource");
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
		sqlite3_bind_int64(st, 4, ts);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return sqlite_db_fail(&op->err, w->db, "update resource");
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
		return sqlite_db_fail(&op->err, w->db, "insert version");
	}
	sqlite3_reset(st);
	*rkey_out = rkey;
	return 0;
}

/* ---- search index rows ---- */

#define DICT_MAX (1u << 20)

static void dict_clear(struct dict *d)
{
	for (size_t i = 0; i < d->cap; i++)
		free(d->v[i].key);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

static uint64_t dict_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static int dict_put(struct dict *d, char *key, size_t klen, int64_t id)
{
	size_t mask, i;

	if (d->n >= DICT_MAX)
		dict_clear(d); /* a bounded cache: start again */
	if (2 * (d->n + 1) > d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 4096;
		struct dict_ent *nv = calloc(ncap, sizeof(*nv));
		if (!nv)
			return -1;
		for (size_t k = 0; k < d->cap; k++) {
			if (!d->v[k].key)
				continue;
			for (i = dict_hash(d->v[k].key, d->v[k].klen) & (ncap - 1); nv[i].key;
			     i = (i + 1) & (ncap - 1))
				;
			nv[i] = d->v[k];
		}
		free(d->v);
		d->v = nv;
		d->cap = ncap;
	}
	mask = d->cap - 1;
	for (i = dict_hash(key, klen) & mask; d->v[i].key; i = (i + 1) & mask)
		;
	d->v[i].key = key;
	d->v[i].klen = klen;
	d->v[i].id = id;
	d->n++;
	return 0;
}

/* The ix_dict id of (sys, code), added with text the first time. */
static int64_t dict_id(struct store *s, const char *sys, const char *code, const char *text,
		       struct err *e)
{
	struct dict *d = &s->dict;
	size_t sl = strlen(sys), cl = strlen(code), klen = sl + 1 + cl;
	char small[256], *key = klen < sizeof(small) ? small : malloc(klen + 1);
	sqlite3_stmt *st;
	int64_t id = -1;
	int step;

	if (!key)
		return err_set(e, ERR_NOMEM, "out of memory");
	memcpy(key, sys, sl);
	key[sl] = '\0';
	memcpy(key + sl + 1, code, cl);
	if (d->cap) {
		size_t mask = d->cap - 1;
		for (size_t i = dict_hash(key, klen) & mask; d->v[i].key; i = (i + 1) & mask) {
			if (d->v[i].klen == klen && memcmp(d->v[i].key, key, klen) == 0) {
				id = d->v[i].id;
				goto out;
			}
		}
	}
	st = stmt(s->writer, ST_W_DICT_GET, e);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, code, (int)cl, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sys, (int)sl, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, s->writer->db, "dict get");
		goto out;
	}
	if (id < 0) {
		st = stmt(s->writer, ST_W_DICT_ADD, e);
		if (!st)
			goto out;
		sqlite3_bind_text(st, 1, sys, (int)sl, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, code, (int)cl, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, text ? text : "", -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		sqlite3_reset(st);
		if (step != SQLITE_DONE) {
			sqlite_db_fail(e, s->writer->db, "dict add");
			goto out;
		}
		id = sqlite3_last_insert_rowid(s->writer->db);
	}
	{
		char *k = malloc(klen + 1);
		if (k) {
			memcpy(k, key, klen);
			if (dict_put(d, k, klen, id) < 0)
				free(k);
		}
	}
out:
	if (key != small)
		free(key);
	return id;
}

/* Remove every index row of rkey (the version they described is no longer
 * current). */
static int unindex(struct conn *w, int64_t rkey, struct err *e)
{
	for (int k = ST_W_DX_TOKEN; k <= ST_W_DX_TEXT; k++) {
		sqlite3_stmt *st = stmt(w, (enum stmt)k, e);
		if (!st)
			return -1;
		sqlite3_bind_int64(st, 1, rkey);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return sqlite_db_fail(e, w->db, "unindex");
		}
		sqlite3_reset(st);
	}
	return 0;
}

/* Key columns cannot be NULL: an absent text is ''. */
static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

/* Parameters: ?1 pid ?2 s1 ?3 s2 ?4 rkey ?5 grp ?6 t1 ?7 t2 ?8 n1 ?9 n2 ?10 n3 ?11 s3
 * (each statement uses the ones its table has). */
static int index_rows(struct store *s, int64_t rkey, const struct store_ix_row *rows, size_t n,
		      struct err *e)
{
	struct conn *w = s->writer;

	for (size_t i = 0; i < n; i++) {
		const struct store_ix_row *r = &rows[i];
		sqlite3_stmt *st;

		if (r->kind < SIX_TOKEN || r->kind >= SIX__COUNT)
			return err_set(e, ERR_INTERNAL, "bad index row kind %d", r->kind);
		st = stmt(w, (enum stmt)(ST_W_IX_TOKEN + r->kind - SIX_TOKEN), e);
		if (!st)
			return -1;
		if (r->kind != SIX_TEXT) {
			sqlite3_bind_int64(st, 1, r->pid);
			sqlite3_bind_int64(st, 5, r->grp);
		}
		switch (r->kind) {
		case SIX_TOKEN:
		case SIX_REFERENCE: {
			/* token: system, code, folded display; reference: type, id */
			int64_t tok = dict_id(s, r->s1 ? r->s1 : "", r->s2 ? r->s2 : "",
					      r->kind == SIX_TOKEN ? r->s3 : NULL, e);
			if (tok < 0) {
				sqlite3_reset(st);
				return -1;
			}
			sqlite3_bind_int64(st, 12, tok);
			break;
		}
		case SIX_STRING:
		case SIX_TEXT:
			bind_text_or_null(st, 2, r->s1);
			bind_text_or_null(st, 3, r->s2);
			break;
		case SIX_DATE:
			sqlite3_bind_int64(st, 6, r->t1);
			sqlite3_bind_int64(st, 7, r->t2);
			break;
		case SIX_QUANTITY: {
			/* (system, code or else unit), text: the unit */
			const char *code = r->s2 ? r->s2 : r->s3 ? r->s3 : "";
			int64_t tok = dict_id(s, r->s1 ? r->s1 : "", code, r->s3, e);
			if (tok < 0) {
				sqlite3_reset(st);
				return -1;
			}
			sqlite3_bind_int64(st, 12, tok);
		}
			/* fall through */
		case SIX_NUMBER:
			sqlite3_bind_double(st, 8, r->n1);
			sqlite3_bind_double(st, 9, r->n2);
			sqlite3_bind_double(st, 10, r->n3);
			break;
		case SIX_URI:
			bind_text_or_null(st, 2, r->s1);
			break;
		}
		sqlite3_bind_int64(st, 4, rkey);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return sqlite_db_fail(e, w->db, "index");
		}
		sqlite3_reset(st);
	}
	return 0;
}

/* Apply one operation inside the open transaction; *wrote says whether it
 * changed anything before failing. */
static int apply_op(struct store *s, struct store_op *op, int64_t ts, bool *wrote)
{
	struct conn *w = s->writer;
	struct current cur;
	int64_t vid, rkey = 0;

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
		*wrote = true;
		if (write_version(s, op, &cur, vid, ts, false, &rkey) < 0)
			return -1;
		if (cur.exists && !cur.deleted && unindex(w, rkey, &op->err) < 0)
			return -1;
		if (index_rows(s, rkey, op->ix, op->n_ix, &op->err) < 0)
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
		*wrote = true;
		if (write_version(s, op, &cur, vid, ts, true, &rkey) < 0)
			return -1;
		if (unindex(w, rkey, &op->err) < 0)
			return -1;
		op->status = 200;
		op->vid = vid;
		op->ts_ms = ts;
		return 0;
	case STORE_REINDEX:
		if (!cur.exists || cur.deleted)
			return err_set(&op->err, ERR_NOT_FOUND, "%s/%s is not current", op->type, op->id);
		if (op->if_match > 0 && cur.vid != op->if_match) {
			/* written again since its rows were made: that write indexed it */
			op->status = 200;
			op->noop = true;
			op->vid = cur.vid;
			op->ts_ms = cur.ts;
			return 0;
		}
		*wrote = true;
		if (unindex(w, cur.rkey, &op->err) < 0 ||
		    index_rows(s, cur.rkey, op->ix, op->n_ix, &op->err) < 0)
			return -1;
		op->status = 200;
		op->noop = false; /* no new version, but new rows */
		op->vid = cur.vid;
		op->ts_ms = cur.ts;
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
		return sqlite_db_fail(e, w->db, stmt_sql[which]);
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

/* t's audit entry, built now that its outcome is known, appended to the
 * chain.  -1 with e set if it could not be written. */
static int audit_txn(struct store *s, struct store_txn *t, int64_t ts, struct err *e)
{
	struct sqlite_audit *a = &s->audit;

	t->audit_seq = 0;
	if (!t->audit)
		return 0;
	buf_reset(&a->entry);
	if (t->audit(t, ts, &a->entry) < 0 || a->entry.failed)
		return err_set(e, ERR_INTERNAL, "the audit entry could not be made");
	return sqlite_audit_append(a, s->writer->db, ts, buf_cstr(&a->entry), a->entry.len, &t->audit_seq,
				   e);
}

/* Run one transaction inside the group's BEGIN; a failure is the
 * transaction's own and rolls back only its savepoint.
 *
 * The operations of a non-atomic transaction (an import batch) must stand
 * alone, yet a savepoint per operation is costly in a large transaction
 * (SQLite's pager work for each grows with the pages the transaction has
 * touched).  So they run without one; an operation that fails before writing
 * anything (a precondition) simply fails; if one fails half way, the whole
 * transaction is rolled back and run again with a savepoint per operation. */
static void apply_txn(struct store *s, struct store_txn *t, int64_t ts)
{
	struct conn *w = s->writer;
	bool careful = false;
	struct sqlite_audit_mark mark;
	struct err ae = ERR_INIT;

	t->rc = 0;
	t->audit_seq = 0;
	err_clear(&t->err);
	sqlite_audit_mark(&s->audit, &mark);
	if (step_simple(w, ST_W_SAVEPOINT_TXN, &t->err) < 0) {
		t->rc = -1;
		return;
	}
again:
	for (size_t i = 0; i < t->n; i++) {
		struct store_op *op = &t->ops[i];
		bool wrote = false;

		if (careful && step_simple(w, ST_W_SAVEPOINT, &op->err) < 0) {
			op->status = 0;
			continue;
		}
		if (apply_op(s, op, ts, &wrote) == 0) {
			if (careful)
				step_simple(w, ST_W_RELEASE, &op->err);
			continue;
		}
		op->status = 0;
		free(op->json);
		op->json = NULL;
		if (t->atomic) {
			t->rc = -1;
			t->failed_op = i;
			t->err = op->err;
			step_simple(w, ST_W_ROLLBACK_TO_TXN, NULL);
			dict_clear(&s->dict); /* ids it added are gone */
			step_simple(w, ST_W_RELEASE_TXN, NULL);
			sqlite_audit_restore(&s->audit, &mark);
			free_op_json(t);
			for (size_t k = 0; k < t->n; k++)
				if (k != i)
					t->ops[k].status = 0;
			/* the failed attempt is audited all the same */
			if (audit_txn(s, t, ts, &ae) < 0)
				log_error("event=audit_write_failed detail=\"%s\"", ae.detail);
			return;
		}
		if (careful) {
			step_simple(w, ST_W_ROLLBACK_TO, NULL);
			step_simple(w, ST_W_RELEASE, NULL);
			dict_clear(&s->dict);
			continue;
		}
		if (wrote) {
			/* half an operation is in the transaction: start again, carefully */
			step_simple(w, ST_W_ROLLBACK_TO_TXN, NULL);
			dict_clear(&s->dict);
			free_op_json(t);
			for (size_t k = 0; k < t->n; k++)
				t->ops[k].status = 0;
			careful = true;
			goto again;
		}
	}
	if (t->hook && t->hook(s, t, &ae) < 0) {
		/* the rows beside the resources failed: nothing of it stays */
		step_simple(w, ST_W_ROLLBACK_TO_TXN, NULL);
		dict_clear(&s->dict);
		step_simple(w, ST_W_RELEASE_TXN, NULL);
		sqlite_audit_restore(&s->audit, &mark);
		free_op_json(t);
		for (size_t k = 0; k < t->n; k++) {
			t->ops[k].status = 0;
			t->ops[k].err = ae;
		}
		t->rc = -1;
		t->failed_op = 0;
		t->err = ae;
		if (audit_txn(s, t, ts, &ae) < 0)
			log_error("event=audit_write_failed detail=\"%s\"", ae.detail);
		return;
	}
	if (audit_txn(s, t, ts, &ae) < 0) {
		/* no entry, no change: the whole transaction goes */
		log_error("event=audit_write_failed detail=\"%s\"", ae.detail);
		step_simple(w, ST_W_ROLLBACK_TO_TXN, NULL);
		dict_clear(&s->dict);
		step_simple(w, ST_W_RELEASE_TXN, NULL);
		sqlite_audit_restore(&s->audit, &mark);
		free_op_json(t);
		for (size_t k = 0; k < t->n; k++) {
			t->ops[k].status = 0;
			err_set(&t->ops[k].err, ERR_INTERNAL, "the audit trail could not be written");
		}
		t->rc = -1;
		t->failed_op = 0;
		err_set(&t->err, ERR_INTERNAL, "the audit trail could not be written");
		return;
	}
	step_simple(w, ST_W_RELEASE_TXN, &t->err);
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
	/* the chain head as stored: another process may have appended */
	if (sqlite_audit_load(&s->audit, s->writer->db, &e) < 0) {
		log_error("event=audit_head_failed detail=\"%s\"", e.detail);
		step_simple(s->writer, ST_W_ROLLBACK, NULL);
		fail_group(head, &e);
		return;
	}
	for (struct store_txn *t = head; t; t = t->next)
		apply_txn(s, t, ts);
	/* every so often, the patients of the entries so far, in this commit */
	sqlite_audit_index(&s->audit, s->writer->db, now, false);
	if (step_simple(s->writer, ST_W_COMMIT, &e) < 0) {
		/* Nothing of this group is on disk: say so to everyone in it. */
		log_error("event=store_commit_failed detail=\"%s\"", e.detail);
		step_simple(s->writer, ST_W_ROLLBACK, NULL);
		dict_clear(&s->dict);
		err_set(&e, ERR_DB, "the database could not commit the change");
		fail_group(head, &e);
	}
}

static void *ckpt_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->ckpt_mu);
	while (!s->ckpt_stop) {
		int log = 0, done = 0;
		if (s->wal_pages < CKPT_PAGES)
			pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
		if (s->ckpt_stop)
			break;
		if (s->wal_pages < CKPT_PAGES)
			continue;
		s->wal_pages = 0;
		pthread_mutex_unlock(&s->ckpt_mu);
		/* PASSIVE: copies what no reader still needs, never blocks the
		 * writer or a reader */
		if (sqlite3_wal_checkpoint_v2(s->ckpt->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
		    SQLITE_OK)
			log_warn("event=checkpoint_failed detail=\"%s\"", sqlite3_errmsg(s->ckpt->db));
		pthread_mutex_lock(&s->ckpt_mu);
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	return NULL;
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
	pthread_mutex_init(&s->ckpt_mu, NULL);
	pthread_cond_init(&s->ckpt_cv, NULL);
	buf_init(&s->json, 0);
	if (!s->path) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	s->writer = conn_open(path, false, s->opts.writer_cache_kb, e);
	if (!s->writer)
		goto fail;
	/* A bigger WAL between checkpoints: index pages written many times in
	 * a row are copied to the database once, not each time (measured: an
	 * import with search indexes runs about 20% faster). */
	if (exec(s->writer->db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0", e) < 0)
		goto fail;
	if (migrate(s->writer->db, false, e) < 0)
		goto fail;
	if (sqlite_audit_open(&s->audit, &s->opts, e) < 0)
		goto fail;
	s->audit.cp_seq = -1;
	sqlite3_wal_hook(s->writer->db, wal_hook, s);
	s->ckpt = conn_open(path, false, 2048, e);
	if (!s->ckpt || exec(s->ckpt->db, "PRAGMA wal_autocheckpoint=0", e) < 0)
		goto fail;
	if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the checkpoint thread");
		goto fail;
	}
	s->ckpt_started = true;
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
	if (s->ckpt_started) {
		pthread_mutex_lock(&s->ckpt_mu);
		s->ckpt_stop = true;
		pthread_cond_signal(&s->ckpt_cv);
		pthread_mutex_unlock(&s->ckpt_mu);
		pthread_join(s->ckpt_thread, NULL);
	}
	conn_close(s->ckpt);
	for (c = s->pool; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	conn_close(s->admin);
	if (s->writer) {
		/* index the patients of the last entries and sign the tail of the
		 * chain on the way out */
		struct err e = ERR_INIT;
		if (exec(s->writer->db, "BEGIN IMMEDIATE", &e) == 0) {
			if (sqlite_audit_load(&s->audit, s->writer->db, &e) == 0) {
				sqlite_audit_index(&s->audit, s->writer->db, time_now_ms(), true);
				if (s->audit.sk)
					sqlite_audit_checkpoint(&s->audit, s->writer->db, time_now_ms(), &e);
			}
			if (e.code == 0)
				exec(s->writer->db, "COMMIT", &e);
			else
				exec(s->writer->db, "ROLLBACK", NULL);
		}
		if (e.code)
			log_error("event=audit_checkpoint_failed detail=\"%s\"", e.detail);
	}
	sqlite_audit_close(&s->audit);
	if (s->writer) {
		/* Fold the WAL back into the database file on a clean shutdown. */
		sqlite3_wal_checkpoint_v2(s->writer->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		conn_close(s->writer);
	}
	buf_release(&s->json);
	dict_clear(&s->dict);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_mutex_destroy(&s->admin_mu);
	pthread_mutex_destroy(&s->q_mu);
	pthread_cond_destroy(&s->q_cv);
	pthread_mutex_destroy(&s->ckpt_mu);
	pthread_cond_destroy(&s->ckpt_cv);
	free(s->path);
	free(s);
}

int store_schema_version(struct store *s, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (!c)
		return -1;
	if (sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_migrations", -1, &st,
			       NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else
		sqlite_db_fail(e, c->db, "schema version");
	sqlite3_finalize(st);
	sqlite_reader_put(s, c);
	return v;
}

int store_check(struct store *s, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (!c)
		return -1;
	if (sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, c->db, "integrity_check");
		goto out;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite_db_fail(e, c->db, "integrity_check");
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
	sqlite_reader_put(s, c);
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

/* For the other files of the backend (sqlite_int.h). */
struct conn *sqlite_admin_get(struct store *s, struct err *e)
{
	return admin_get(s, e);
}

void sqlite_admin_put(struct store *s)
{
	admin_put(s);
}

struct conn *sqlite_writer_conn(struct store *s)
{
	return s->writer;
}

const char *store_path(const struct store *s)
{
	return s->path;
}

int store_param_ids(struct store *s, const char *const *urls, const char *const *codes,
		    const char *const *types, size_t n, uint32_t *pids, struct err *e)
{
	struct conn *c = admin_get(s, e);
	int rc = -1;

	if (!c)
		return -1;
	if (exec(c->db, "BEGIN IMMEDIATE", e) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = stmt(c, ST_A_PARAM_GET, e);
		int step;
		if (!st)
			goto rollback;
		sqlite3_bind_text(st, 1, urls[i], -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			pids[i] = (uint32_t)sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			continue;
		}
		sqlite3_reset(st);
		if (step != SQLITE_DONE) {
			sqlite_db_fail(e, c->db, "param get");
			goto rollback;
		}
		st = stmt(c, ST_A_PARAM_ADD, e);
		if (!st)
			goto rollback;
		sqlite3_bind_text(st, 1, urls[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, codes[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, types[i], -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		sqlite3_reset(st);
		if (step != SQLITE_DONE) {
			sqlite_db_fail(e, c->db, "param add");
			goto rollback;
		}
		pids[i] = (uint32_t)sqlite3_last_insert_rowid(c->db);
	}
	if (exec(c->db, "COMMIT", e) < 0)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	exec(c->db, "ROLLBACK", NULL);
out:
	admin_put(s);
	return rc;
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
		sqlite_db_fail(e, c->db, "user add");
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
	sqlite_set_name(u->username, sizeof(u->username), (const char *)sqlite3_column_text(st, 1));
	sqlite_set_name(u->role, sizeof(u->role), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(u->pw_hash, sizeof(u->pw_hash), (const char *)sqlite3_column_text(st, 3));
	sqlite_set_name(u->practitioner, sizeof(u->practitioner), (const char *)sqlite3_column_text(st, 4));
	u->active = sqlite3_column_int(st, 5) != 0;
	u->failed_logins = sqlite3_column_int(st, 6);
	u->locked_until_ms = sqlite3_column_int64(st, 7);
	u->created_ms = sqlite3_column_int64(st, 8);
}

int store_user_get(struct store *s, const char *username, struct store_user *out, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_db_fail(e, c->db, "user get");
		goto out;
	}
	user_from_row(st, out);
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
	return rc;
}

int store_user_list(struct store *s, store_user_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_db_fail(e, c->db, "user list");
		goto out;
	}
	rc = 0;
out:
	if (st)
		sqlite3_reset(st);
	sqlite_reader_put(s, c);
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
		sqlite_db_fail(e, c->db, "set password");
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
	sqlite3_bind_text(st, 7, t->client_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, t->patient, -1, SQLITE_STATIC);
	if (t->has_family)
		sqlite3_bind_blob(st, 9, t->family, sizeof(t->family), SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite_db_fail(e, c->db, "token add");
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
		sqlite_db_fail(e, c->db, "token revoke");
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
	struct conn *c = sqlite_reader_get(s, e);
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
		sqlite_db_fail(e, c->db, "token lookup");
		goto out;
	}
	out->uid = sqlite3_column_int64(st, 0);
	sqlite_set_name(out->username, sizeof(out->username), (const char *)sqlite3_column_text(st, 1));
	sqlite_set_name(out->role, sizeof(out->role), (const char *)sqlite3_column_text(st, 2));
	sqlite_set_name(out->scopes, sizeof(out->scopes), (const char *)sqlite3_column_text(st, 3));
	out->expires_ms = sqlite3_column_int64(st, 4);
	sqlite_set_name(out->practitioner, sizeof(out->practitioner), (const char *)sqlite3_column_text(st, 7));
	sqlite_set_name(out->patient, sizeof(out->patient), (const char *)sqlite3_column_text(st, 8));
	sqlite_set_name(out->client_id, sizeof(out->client_id), (const char *)sqlite3_column_text(st, 9));
	if (out->uid == 0)
		out->uid = -sqlite3_column_int64(st, 10); /* a client's own token (store.h) */
	if (strcmp((const char *)sqlite3_column_text(st, 11), "access") != 0) {
		err_set(e, ERR_UNAUTHENTICATED, "the access token is not valid");
		goto out;
	}
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
	sqlite_reader_put(s, c);
	return rc;
}
