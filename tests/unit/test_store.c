/* test_store.c - the SQLite store (src/store/sqlite.c) through store.h.
 *
 * Every test gets a fresh database file in its own mkdtemp() directory and
 * removes it afterwards.  Writes go through store_commit(), so the writer
 * thread and the group commit are exercised as the server uses them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

/* The version of the newest migration built in (src/store/migrate_sqlite_NNNN_*.sql):
 * what a new or opened database must be at. */
static int latest_migration(void)
{
	static const char prefix[] = "src/store/migrate_sqlite_";
	int latest = 0;

	for (size_t i = 0; i < embedded_count; i++) {
		if (strncmp(embedded_files[i].name, prefix, sizeof(prefix) - 1) == 0) {
			int v = atoi(embedded_files[i].name + sizeof(prefix) - 1);
			if (v > latest)
				latest = v;
		}
	}
	assert_true(latest >= 2); /* 0001 init, 0002 search at least */
	return latest;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static void path_in(const struct fx *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", f->dir, name);
}

/* Remove everything a test may leave in its directory, then the directory. */
static void remove_dir(const char *dir)
{
	static const char *const names[] = {
		"db", "db-wal", "db-shm", "db-journal", "other.db", "other.db-wal", "other.db-shm",
		"other.db-journal", "garbage", "empty", "x.db", "x.db-wal", "x.db-shm", "x.db-journal",
	};
	char p[192];

	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		if (unlink(p) < 0 && errno == EISDIR)
			rmdir(p);
		rmdir(p);
	}
	assert_int_equal(rmdir(dir), 0);
}

static int fx_new_dir(struct fx *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	f->s = NULL;
	return 0;
}

/* A directory only (for the create/open tests). */
static int setup_dir(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fx_new_dir(f) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* A created and opened store. */
static int setup_store(void **state)
{
	struct fx *f;
	struct err e = ERR_INIT;

	if (setup_dir(state) < 0)
		return -1;
	f = *state;
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "setup: %s (%s)\n", e.msg, e.detail);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

/* An op with body text (and no meta), its hash computed from the body. */
static void op_set(struct store_op *op, int kind, int method, const char *type, const char *id,
		   const char *body)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->method = method;
	op->type = type;
	op->id = id;
	op->meta_rest = "";
	op->meta_rest_len = 0;
	op->body = body ? body : "";
	op->body_len = body ? strlen(body) : 0;
	crypto_generichash(op->chash, sizeof(op->chash), (const unsigned char *)op->body,
			   op->body_len, NULL, 0);
	op->want_json = true;
}

static int commit_ops(struct store *s, struct store_op *ops, size_t n, bool atomic,
		      struct store_txn *t)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->n = n;
	t->atomic = atomic;
	return store_commit(s, t);
}

static void free_ops(struct store_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].json);
		ops[i].json = NULL;
	}
}

/* One op in its own atomic transaction; returns the txn's rc. */
static int commit1(struct store *s, struct store_op *op)
{
	struct store_txn t;

	return commit_ops(s, op, 1, true, &t);
}

/* Write type/id with body (update: creates or makes a version); asserts success. */
static int64_t put(struct store *s, const char *type, const char *id, const char *body,
		   int64_t *ts)
{
	struct store_op op;

	op_set(&op, STORE_UPDATE, STORE_PUT, type, id, body);
	op.want_json = false;
	if (commit1(s, &op) != 0)
		fail_msg("put %s/%s: %s", type, id, op.err.msg);
	if (ts)
		*ts = op.ts_ms;
	return op.vid;
}

static int64_t del(struct store *s, const char *type, const char *id, int64_t *ts)
{
	struct store_op op;

	op_set(&op, STORE_REMOVE, STORE_DELETE, type, id, NULL);
	if (commit1(s, &op) != 0)
		fail_msg("delete %s/%s: %s", type, id, op.err.msg);
	if (ts)
		*ts = op.ts_ms;
	return op.vid;
}

/* ---- create and open ---- */

static void test_create_refuses_existing(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct stat sb;
	int fd;

	assert_int_equal(store_create(f->path, &e), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size > 0);
	err_clear(&e);
	assert_int_equal(store_create(f->path, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	/* the existing database is untouched and still opens */
	assert_int_equal(store_open(f->path, NULL, &f->s, &e), 0);
	assert_int_equal(store_schema_version(f->s, &e), latest_migration());
	assert_int_equal(store_check(f->s, &e), 0);

	/* Any existing file counts, even an empty one, and is left in place. */
	{
		char p[192];
		path_in(f, "empty", p, sizeof(p));
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
		err_clear(&e);
		assert_int_equal(store_create(p, &e), -1);
		assert_int_equal(e.code, ERR_CONFLICT);
		assert_int_equal(stat(p, &sb), 0);
	}
}

static void test_create_cleans_up(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char p[192], wal[200];
	struct stat sb;

	/* A directory where SQLite wants its WAL file makes the schema step
	 * fail after the database file was created: it must be removed again. */
	path_in(f, "x.db", p, sizeof(p));
	snprintf(wal, sizeof(wal), "%s-wal", p);
	assert_int_equal(mkdir(wal, 0700), 0);
	assert_int_equal(store_create(p, &e), -1);
	assert_int_not_equal(e.code, ERR_NONE);
	assert_int_equal(stat(p, &sb), -1);
	assert_int_equal(errno, ENOENT);
	rmdir(wal);

	/* A directory that does not exist: ERR_IO, nothing created. */
	err_clear(&e);
	snprintf(p, sizeof(p), "%s/no/such/dir/db", f->dir);
	assert_int_equal(store_create(p, &e), -1);
	assert_int_equal(e.code, ERR_IO);
}

static void test_open_missing(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store *s = (struct store *)&e; /* must be reset to NULL */
	struct stat sb;

	assert_int_equal(store_open(f->path, NULL, &s, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	assert_null(s);
	/* and opening did not create it */
	assert_int_equal(stat(f->path, &sb), -1);
}

static void test_open_not_chartkeep_sqlite(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store *s = NULL;
	sqlite3 *db = NULL;
	char p[192];

	path_in(f, "other.db", p, sizeof(p));
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE foo (x INTEGER); INSERT INTO foo VALUES (1);",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(p, NULL, &s, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_null(s);
}

static void test_open_empty_file(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store *s = NULL;
	char p[192];
	int fd;

	path_in(f, "empty", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(p, NULL, &s, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_null(s);
}

/* store.h: "ERR_INVALID if it is not a chartkeep database" - a text file is not. */
static void test_open_not_sqlite(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store *s = NULL;
	char p[192];
	FILE *fp;

	path_in(f, "garbage", p, sizeof(p));
	fp = fopen(p, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not a database, just some text\n", fp);
	fclose(fp);
	assert_int_equal(store_open(p, NULL, &s, &e), -1);
	assert_null(s);
	if (e.code != ERR_INVALID)
		fail_msg("a text file gave %s (%s; %s), want invalid", err_code_name(e.code), e.msg,
			 e.detail);
}

/* ---- writes ---- */

static void test_write_semantics(void **state)
{
	struct fx *f = *state;
	struct store_op op;
	struct store_version v;
	struct err e = ERR_INIT;
	int64_t ts1;

	/* create */
	op_set(&op, STORE_CREATE, STORE_POST, "Patient", "a", "\"active\":true");
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 201);
	assert_int_equal(op.vid, 1);
	assert_false(op.noop);
	assert_non_null(op.json);
	assert_true(op.ts_ms > 0);
	ts1 = op.ts_ms;
	free(op.json);

	/* an update with the same content hash is a no-op: same version and time */
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "a", "\"active\":true");
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 200);
	assert_true(op.noop);
	assert_int_equal(op.vid, 1);
	assert_int_equal(op.ts_ms, ts1);
	assert_non_null(op.json); /* want_json: the current version's JSON */
	assert_non_null(strstr(op.json, "\"versionId\":\"1\""));
	free(op.json);

	/* a real update */
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "a", "\"active\":false");
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 200);
	assert_false(op.noop);
	assert_int_equal(op.vid, 2);
	assert_true(op.ts_ms >= ts1);
	free(op.json);

	/* delete */
	op_set(&op, STORE_REMOVE, STORE_DELETE, "Patient", "a", NULL);
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 200);
	assert_false(op.noop);
	assert_int_equal(op.vid, 3);
	assert_null(op.json);

	/* delete of a deleted resource: nothing written */
	op_set(&op, STORE_REMOVE, STORE_DELETE, "Patient", "a", NULL);
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 200);
	assert_true(op.noop);
	assert_int_equal(op.vid, 3);

	assert_int_equal(store_read(f->s, "Patient", "a", &v, &e), -1);
	assert_int_equal(e.code, ERR_GONE);
	assert_int_equal(v.vid, 3);
	assert_true(v.deleted);
	assert_null(v.json);
	store_version_release(&v);

	/* update after delete re-creates: 201, next version */
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "a", "\"active\":false");
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 201);
	assert_false(op.noop);
	assert_int_equal(op.vid, 4);
	free(op.json);

	/* delete of something that never existed: a no-op, nothing created */
	op_set(&op, STORE_REMOVE, STORE_DELETE, "Patient", "never", NULL);
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 200);
	assert_true(op.noop);
	assert_int_equal(op.vid, 0);
	err_clear(&e);
	assert_int_equal(store_read(f->s, "Patient", "never", &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);

	/* If-Match */
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "a", "\"active\":true");
	op.if_match = 2;
	assert_int_equal(commit1(f->s, &op), -1);
	assert_int_equal(op.err.code, ERR_PRECONDITION);
	assert_int_equal(op.status, 0);
	assert_null(op.json);
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "a", "\"active\":true");
	op.if_match = 4;
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.vid, 5);
	free(op.json);
	op_set(&op, STORE_REMOVE, STORE_DELETE, "Patient", "a", NULL);
	op.if_match = 4;
	assert_int_equal(commit1(f->s, &op), -1);
	assert_int_equal(op.err.code, ERR_PRECONDITION);
	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "absent", "\"active\":true");
	op.if_match = 1;
	assert_int_equal(commit1(f->s, &op), -1);
	assert_int_equal(op.err.code, ERR_PRECONDITION);

	/* STORE_CREATE of an existing id */
	op_set(&op, STORE_CREATE, STORE_POST, "Patient", "a", "\"active\":true,\"x\":1");
	assert_int_equal(commit1(f->s, &op), -1);
	assert_int_equal(op.err.code, ERR_CONFLICT);
	assert_int_equal(op.status, 0);
	assert_null(op.json);

	/* the same id under another type is another resource */
	op_set(&op, STORE_CREATE, STORE_POST, "Observation", "a", "\"status\":\"final\"");
	assert_int_equal(commit1(f->s, &op), 0);
	assert_int_equal(op.status, 201);
	assert_int_equal(op.vid, 1);
	free(op.json);

	/* nothing else got written along the way */
	{
		int64_t n = 0;
		assert_int_equal(store_history_count(f->s, "Patient", "a", INT64_MIN, &n, &e), 0);
		assert_int_equal(n, 5);
		assert_int_equal(store_history_count(f->s, "Patient", "absent", INT64_MIN, &n, &e), 0);
		assert_int_equal(n, 0);
	}
}

static void test_atomic_txn_fails_whole(void **state)
{
	struct fx *f = *state;
	struct store_op ops[3];
	struct store_txn t;
	struct store_version v;
	struct err e = ERR_INIT;

	put(f->s, "Patient", "exists", "\"active\":true", NULL);
	op_set(&ops[0], STORE_CREATE, STORE_POST, "Patient", "new1", "\"active\":true");
	op_set(&ops[1], STORE_UPDATE, STORE_PUT, "Patient", "exists", "\"active\":false");
	op_set(&ops[2], STORE_CREATE, STORE_POST, "Patient", "exists", "\"gender\":\"male\"");
	assert_int_equal(commit_ops(f->s, ops, 3, true, &t), -1);
	assert_int_equal(t.rc, -1);
	assert_int_equal(t.failed_op, 2);
	assert_int_equal(t.err.code, ERR_CONFLICT);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ops[i].status, 0);
		assert_null(ops[i].json);
	}
	/* nothing of it was written */
	assert_int_equal(store_read(f->s, "Patient", "new1", &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);
	assert_int_equal(store_read(f->s, "Patient", "exists", &v, &e), 0);
	assert_int_equal(v.vid, 1);
	assert_non_null(strstr(v.json, "\"active\":true"));
	store_version_release(&v);

	/* the failing op in the middle: failed_op points at it */
	op_set(&ops[0], STORE_CREATE, STORE_POST, "Patient", "new2", "\"active\":true");
	op_set(&ops[1], STORE_UPDATE, STORE_PUT, "Patient", "exists", "\"active\":false");
	ops[1].if_match = 7;
	op_set(&ops[2], STORE_UPDATE, STORE_PUT, "Patient", "new3", "\"active\":true");
	assert_int_equal(commit_ops(f->s, ops, 3, true, &t), -1);
	assert_int_equal(t.failed_op, 1);
	assert_int_equal(t.err.code, ERR_PRECONDITION);
	err_clear(&e);
	assert_int_equal(store_read(f->s, "Patient", "new2", &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);
	assert_int_equal(store_read(f->s, "Patient", "new3", &v, &e), -1);
	store_version_release(&v);
	{
		int64_t n = -1;
		assert_int_equal(store_count_current(f->s, NULL, &n, &e), 0);
		assert_int_equal(n, 1);
	}
}

static void test_non_atomic_txn_keeps_good_ops(void **state)
{
	struct fx *f = *state;
	struct store_op ops[4];
	struct store_txn t;
	struct store_version v;
	struct err e = ERR_INIT;

	put(f->s, "Patient", "exists", "\"active\":true", NULL);
	op_set(&ops[0], STORE_CREATE, STORE_POST, "Patient", "good1", "\"active\":true");
	op_set(&ops[1], STORE_CREATE, STORE_POST, "Patient", "exists", "\"active\":false");
	op_set(&ops[2], STORE_UPDATE, STORE_PUT, "Patient", "good2", "\"active\":true");
	op_set(&ops[3], STORE_UPDATE, STORE_PUT, "Patient", "good2", "\"active\":false");
	assert_int_equal(commit_ops(f->s, ops, 4, false, &t), 0);
	assert_int_equal(t.rc, 0);
	assert_int_equal(ops[0].status, 201);
	assert_int_equal(ops[1].status, 0);
	assert_int_equal(ops[1].err.code, ERR_CONFLICT);
	assert_null(ops[1].json);
	assert_int_equal(ops[2].status, 201);
	assert_int_equal(ops[2].vid, 1);
	assert_int_equal(ops[3].status, 200); /* sees the op before it */
	assert_int_equal(ops[3].vid, 2);
	free_ops(ops, 4);
	assert_int_equal(store_read(f->s, "Patient", "good1", &v, &e), 0);
	store_version_release(&v);
	assert_int_equal(store_read(f->s, "Patient", "good2", &v, &e), 0);
	assert_int_equal(v.vid, 2);
	assert_non_null(strstr(v.json, "\"active\":false"));
	store_version_release(&v);
	assert_int_equal(store_read(f->s, "Patient", "exists", &v, &e), 0);
	assert_int_equal(v.vid, 1);
	store_version_release(&v);
}

static void test_assembled_json(void **state)
{
	static const char *const meta = "\"profile\":[\"http://example.org/p\"],\"tag\":[{\"code\":\"t\"}]";
	static const char *const body = "\"active\":true,\"name\":[{\"family\":\"Doe\"}]";
	struct fx *f = *state;
	struct store_op op;
	struct store_version v;
	struct err e = ERR_INIT;
	char ts[TIME_INSTANT_MAX], want[512];
	json_object *o;
	static const char *const order[] = { "resourceType", "id", "meta", "active", "name" };
	size_t k = 0;

	op_set(&op, STORE_UPDATE, STORE_PUT, "Patient", "p-1.x", body);
	op.meta_rest = meta;
	op.meta_rest_len = strlen(meta);
	assert_int_equal(commit1(f->s, &op), 0);
	time_format_instant(op.ts_ms, ts);
	snprintf(want, sizeof(want),
		 "{\"resourceType\":\"Patient\",\"id\":\"p-1.x\",\"meta\":{\"versionId\":\"1\","
		 "\"lastUpdated\":\"%s\",%s},%s}", ts, meta, body);
	assert_string_equal(op.json, want);
	assert_int_equal(op.json_len, strlen(want));
	/* what is read is what was assembled */
	assert_int_equal(store_read(f->s, "Patient", "p-1.x", &v, &e), 0);
	assert_string_equal(v.json, want);
	assert_int_equal(v.len, strlen(want));
	assert_int_equal(v.ts_ms, op.ts_ms);
	assert_int_equal(v.method, STORE_PUT);
	assert_string_equal(v.type, "Patient");
	assert_string_equal(v.id, "p-1.x");
	/* and it is JSON with the members in that order */
	o = json_parse_buf(v.json, v.len, 0, &e);
	assert_non_null(o);
	json_object_object_foreach(o, key, val) {
		(void)val;
		assert_true(k < N_OF(order));
		assert_string_equal(key, order[k]);
		k++;
	}
	assert_int_equal(k, N_OF(order));
	json_object_put(o);
	store_version_release(&v);
	free(op.json);

	/* no meta_rest and no body */
	op_set(&op, STORE_UPDATE, STORE_PUT, "Basic", "b", NULL);
	assert_int_equal(commit1(f->s, &op), 0);
	time_format_instant(op.ts_ms, ts);
	snprintf(want, sizeof(want),
		 "{\"resourceType\":\"Basic\",\"id\":\"b\",\"meta\":{\"versionId\":\"1\","
		 "\"lastUpdated\":\"%s\"}}", ts);
	assert_string_equal(op.json, want);
	free(op.json);
}

static void test_read_vread(void **state)
{
	struct fx *f = *state;
	struct store_op op;
	struct store_version v;
	struct err e = ERR_INIT;

	op_set(&op, STORE_CREATE, STORE_POST, "Patient", "r", "\"gender\":\"female\"");
	assert_int_equal(commit1(f->s, &op), 0);
	free(op.json);
	put(f->s, "Patient", "r", "\"gender\":\"male\"", NULL);
	del(f->s, "Patient", "r", NULL);
	put(f->s, "Patient", "r", "\"gender\":\"other\"", NULL);

	assert_int_equal(store_read(f->s, "Patient", "r", &v, &e), 0);
	assert_int_equal(v.vid, 4);
	assert_false(v.deleted);
	assert_non_null(strstr(v.json, "\"other\""));
	assert_non_null(strstr(v.json, "\"versionId\":\"4\""));
	store_version_release(&v);
	assert_null(v.json);

	assert_int_equal(store_vread(f->s, "Patient", "r", 1, &v, &e), 0);
	assert_int_equal(v.vid, 1);
	assert_int_equal(v.method, STORE_POST);
	assert_non_null(strstr(v.json, "\"female\""));
	store_version_release(&v);
	assert_int_equal(store_vread(f->s, "Patient", "r", 2, &v, &e), 0);
	assert_int_equal(v.method, STORE_PUT);
	assert_non_null(strstr(v.json, "\"male\""));
	store_version_release(&v);

	err_clear(&e);
	assert_int_equal(store_vread(f->s, "Patient", "r", 3, &v, &e), -1);
	assert_int_equal(e.code, ERR_GONE);
	assert_int_equal(v.vid, 3);
	assert_true(v.deleted);
	assert_int_equal(v.method, STORE_DELETE);
	assert_true(v.ts_ms > 0);
	store_version_release(&v);

	err_clear(&e);
	assert_int_equal(store_vread(f->s, "Patient", "r", 99, &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);
	err_clear(&e);
	assert_int_equal(store_vread(f->s, "Patient", "nobody", 1, &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);
	err_clear(&e);
	assert_int_equal(store_read(f->s, "Observation", "r", &v, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	store_version_release(&v);
}

/* ---- history ---- */

struct seen {
	size_t n;
	char key[64][160];     /* "Type/id/vid" */
	int64_t vkey[64];
	int64_t ts[64];
	bool deleted[64];
	int stop_after;        /* > 0: return 1 after that many */
	bool fail;
};

static int collect(void *ctx, const struct store_version *v)
{
	struct seen *s = ctx;

	if (s->fail)
		return -1;
	assert_true(s->n < 64);
	snprintf(s->key[s->n], sizeof(s->key[s->n]), "%s/%s/%" PRId64, v->type, v->id, v->vid);
	s->vkey[s->n] = v->vkey;
	s->ts[s->n] = v->ts_ms;
	s->deleted[s->n] = v->deleted;
	/* a deleted version has no JSON; the others have it, with their version */
	if (v->deleted) {
		assert_null(v->json);
	} else {
		char want[40];
		assert_non_null(v->json);
		assert_int_equal(strlen(v->json), v->len);
		snprintf(want, sizeof(want), "\"versionId\":\"%" PRId64 "\"", v->vid);
		assert_non_null(strstr(v->json, want));
	}
	s->n++;
	return s->stop_after > 0 && (int)s->n >= s->stop_after ? 1 : 0;
}

static void expect_keys(const struct seen *s, const char *const *want, size_t n)
{
	if (s->n != n)
		fail_msg("got %zu versions, want %zu (first: %s)", s->n, n, s->n ? s->key[0] : "-");
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->key[i], want[i]) != 0)
			fail_msg("version %zu is %s, want %s", i, s->key[i], want[i]);
}

static int history(struct store *st, const char *type, const char *id, int64_t since,
		   int64_t before, size_t count, struct seen *out, int64_t *next)
{
	struct store_history_q q = { type, id, since, INT64_MIN, before, count };
	struct err e = ERR_INIT;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_history(st, &q, collect, out, next, &e);
	if (rc < 0)
		fail_msg("history: %s", e.msg);
	return rc;
}

static int scope_count(void *ctx, const struct store_version *v)
{
	(void)v;
	++*(int *)ctx;
	return 0;
}

/* A read scope is one snapshot: a write committed meanwhile is not seen
 * until the scope ends; a second scope on the thread is refused. */
static void test_read_scope(void **state)
{
	struct fx *f = *state;
	struct store_version v;
	struct err e = ERR_INIT;
	int64_t next = 0;
	int seen = 0;
	struct store_history_q q = { "Patient", "sc", INT64_MIN, INT64_MIN, 0, 10 };

	put(f->s, "Patient", "sc", "\"gender\":\"female\"", NULL);
	assert_int_equal(store_read_scope_begin(f->s, &e), 0);
	assert_int_equal(store_read_scope_begin(f->s, &e), -1);
	assert_int_equal(e.code, ERR_INTERNAL);
	err_clear(&e);
	assert_int_equal(store_read(f->s, "Patient", "sc", &v, &e), 0);
	assert_int_equal(v.vid, 1);
	store_version_release(&v);
	put(f->s, "Patient", "sc", "\"gender\":\"male\"", NULL);
	assert_int_equal(store_read(f->s, "Patient", "sc", &v, &e), 0);
	assert_int_equal(v.vid, 1);
	assert_non_null(strstr(v.json, "female"));
	store_version_release(&v);
	/* history too: the same snapshot */
	assert_int_equal(store_history(f->s, &q, scope_count, &seen, &next, &e), 0);
	assert_int_equal(seen, 1);
	store_read_scope_end(f->s);
	assert_int_equal(store_read(f->s, "Patient", "sc", &v, &e), 0);
	assert_int_equal(v.vid, 2);
	store_version_release(&v);
	/* ended: a new scope may begin, and ending twice is harmless */
	assert_int_equal(store_read_scope_begin(f->s, &e), 0);
	store_read_scope_end(f->s);
	store_read_scope_end(f->s);
}

static void test_history(void **state)
{
	struct fx *f = *state;
	struct seen s;
	int64_t next = -1, n = 0, ts[5];
	struct err e = ERR_INIT;

	put(f->s, "Patient", "a", "\"active\":true", &ts[0]);       /* a/1 */
	put(f->s, "Observation", "o", "\"status\":\"final\"", &ts[1]); /* o/1 */
	put(f->s, "Patient", "a", "\"active\":false", &ts[2]);      /* a/2 */
	put(f->s, "Patient", "b", "\"active\":true", &ts[3]);       /* b/1 */
	del(f->s, "Patient", "a", &ts[4]);                          /* a/3 */

	{
		static const char *const want[] = { "Patient/a/3", "Patient/a/2", "Patient/a/1" };
		history(f->s, "Patient", "a", INT64_MIN, 0, 10, &s, &next);
		expect_keys(&s, want, N_OF(want));
		assert_int_equal(next, 0);
		assert_true(s.deleted[0]);
		assert_false(s.deleted[1]);
	}
	{
		static const char *const want[] = { "Patient/a/3", "Patient/b/1", "Patient/a/2",
						    "Patient/a/1" };
		history(f->s, "Patient", NULL, INT64_MIN, 0, 10, &s, &next);
		expect_keys(&s, want, N_OF(want));
		assert_int_equal(next, 0);
	}
	{
		static const char *const want[] = { "Patient/a/3", "Patient/b/1", "Patient/a/2",
						    "Observation/o/1", "Patient/a/1" };
		history(f->s, NULL, NULL, INT64_MIN, 0, 10, &s, &next);
		expect_keys(&s, want, N_OF(want));
		assert_int_equal(next, 0);
		/* newest first: vkey strictly falls, ts never rises */
		for (size_t i = 1; i < s.n; i++) {
			assert_true(s.vkey[i] < s.vkey[i - 1]);
			assert_true(s.ts[i] <= s.ts[i - 1]);
		}
	}
	/* paging through the system history two at a time */
	{
		static const char *const p1[] = { "Patient/a/3", "Patient/b/1" };
		static const char *const p2[] = { "Patient/a/2", "Observation/o/1" };
		static const char *const p3[] = { "Patient/a/1" };
		history(f->s, NULL, NULL, INT64_MIN, 0, 2, &s, &next);
		expect_keys(&s, p1, 2);
		assert_int_equal(next, s.vkey[1]);
		history(f->s, NULL, NULL, INT64_MIN, next, 2, &s, &next);
		expect_keys(&s, p2, 2);
		assert_true(next > 0);
		history(f->s, NULL, NULL, INT64_MIN, next, 2, &s, &next);
		expect_keys(&s, p3, 1);
		assert_int_equal(next, 0);
	}
	/* a page that ends exactly at the last version has no next page */
	{
		static const char *const want[] = { "Patient/a/3", "Patient/a/2", "Patient/a/1" };
		history(f->s, "Patient", "a", INT64_MIN, 0, 3, &s, &next);
		expect_keys(&s, want, 3);
		assert_int_equal(next, 0);
	}
	/* instance history paging */
	{
		static const char *const p1[] = { "Patient/a/3", "Patient/a/2" };
		static const char *const p2[] = { "Patient/a/1" };
		history(f->s, "Patient", "a", INT64_MIN, 0, 2, &s, &next);
		expect_keys(&s, p1, 2);
		assert_true(next > 0);
		history(f->s, "Patient", "a", INT64_MIN, next, 2, &s, &next);
		expect_keys(&s, p2, 1);
		assert_int_equal(next, 0);
	}
	/* _since: exactly the versions with ts >= since (ts may repeat) */
	{
		int64_t since = ts[3];
		size_t want = 0;
		for (int i = 0; i < 5; i++)
			if (ts[i] >= since)
				want++;
		history(f->s, NULL, NULL, since, 0, 10, &s, &next);
		assert_int_equal(s.n, want);
		for (size_t i = 0; i < s.n; i++)
			assert_true(s.ts[i] >= since);
		assert_int_equal(next, 0);
		history(f->s, NULL, NULL, ts[4] + 1, 0, 10, &s, &next);
		assert_int_equal(s.n, 0);
		want = 0;
		for (int i = 0; i < 5; i++)
			if (ts[i] >= ts[2] && i != 1 && i != 3)
				want++;
		assert_int_equal(store_history_count(f->s, "Patient", "a", ts[2], &n, &e), 0);
		assert_int_equal(n, (int64_t)want);
	}
	/* the callback may stop the walk, or fail it */
	{
		struct store_history_q q = { NULL, NULL, INT64_MIN, INT64_MIN, 0, 10 };
		memset(&s, 0, sizeof(s));
		s.stop_after = 2;
		assert_int_equal(store_history(f->s, &q, collect, &s, &next, &e), 0);
		assert_int_equal(s.n, 2);
		memset(&s, 0, sizeof(s));
		s.fail = true;
		err_clear(&e);
		assert_int_equal(store_history(f->s, &q, collect, &s, &next, &e), -1);
		assert_int_not_equal(e.code, ERR_NONE);
	}
	assert_int_equal(store_history_count(f->s, "Patient", "a", INT64_MIN, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_history_count(f->s, "Patient", "b", INT64_MIN, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_history_count(f->s, "Patient", "zzz", INT64_MIN, &n, &e), 0);
	assert_int_equal(n, 0);
}

/* ---- current resources ---- */

/* Patient z, Observation o2, Patient m, Patient a, Observation o1, Patient
 * gone (deleted), then m again: ids chosen so that id order is not write
 * order.  "Write order" is read as the order resources were first written
 * (as ST_SCAN_ALL's ORDER BY rkey has it), so m stays between z and a. */
static void scan_fixture(struct store *s)
{
	put(s, "Patient", "z", "\"active\":true", NULL);
	put(s, "Observation", "o2", "\"status\":\"final\"", NULL);
	put(s, "Patient", "m", "\"active\":true", NULL);
	put(s, "Patient", "a", "\"active\":true", NULL);
	put(s, "Observation", "o1", "\"status\":\"final\"", NULL);
	put(s, "Patient", "gone", "\"active\":true", NULL);
	del(s, "Patient", "gone", NULL);
	put(s, "Patient", "m", "\"active\":false", NULL); /* m is at version 2 */
}

static void test_scan_and_count(void **state)
{
	struct fx *f = *state;
	struct seen s;
	struct err e = ERR_INIT;
	int64_t n = -1;

	scan_fixture(f->s);
	assert_int_equal(store_count_current(f->s, "Patient", &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_count_current(f->s, "Observation", &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_count_current(f->s, NULL, &n, &e), 0);
	assert_int_equal(n, 5);
	assert_int_equal(store_count_current(f->s, "Encounter", &n, &e), 0);
	assert_int_equal(n, 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, "Patient", collect, &s, &e), 0);
	assert_int_equal(s.n, 3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, NULL, collect, &s, &e), 0);
	assert_int_equal(s.n, 5);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, "Encounter", collect, &s, &e), 0);
	assert_int_equal(s.n, 0);
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(store_scan_current(f->s, NULL, collect, &s, &e), 0);
	assert_int_equal(s.n, 1);
}

/* store.h: one type comes in id order. */
static void test_scan_order_type(void **state)
{
	static const char *const want[] = { "Patient/a/1", "Patient/m/2", "Patient/z/1" };
	struct fx *f = *state;
	struct seen s;
	struct err e = ERR_INIT;

	scan_fixture(f->s);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, "Patient", collect, &s, &e), 0);
	expect_keys(&s, want, N_OF(want));
}

/* store.h: every type comes in the order resources were first written. */
static void test_scan_order_all(void **state)
{
	static const char *const want[] = { "Patient/z/1", "Observation/o2/1", "Patient/m/2",
					    "Patient/a/1", "Observation/o1/1" };
	struct fx *f = *state;
	struct seen s;
	struct err e = ERR_INIT;

	scan_fixture(f->s);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, NULL, collect, &s, &e), 0);
	expect_keys(&s, want, N_OF(want));
}

/* The scanned set (whatever its order) is the current, live resources. */
static void test_scan_skips_deleted(void **state)
{
	struct fx *f = *state;
	struct seen s;
	struct err e = ERR_INIT;

	put(f->s, "Patient", "keep", "\"active\":true", NULL);
	put(f->s, "Patient", "drop", "\"active\":true", NULL);
	put(f->s, "Patient", "keep", "\"active\":false", NULL);
	del(f->s, "Patient", "drop", NULL);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, "Patient", collect, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.key[0], "Patient/keep/2");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan_current(f->s, NULL, collect, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.key[0], "Patient/keep/2");
}

static void test_last_updated_monotonic(void **state)
{
	struct fx *f = *state;
	int64_t prev = 0, ts = 0;
	char body[64];

	for (int i = 0; i < 40; i++) {
		snprintf(body, sizeof(body), "\"n\":%d", i);
		put(f->s, "Basic", i % 2 ? "x" : "y", body, &ts);
		assert_true(ts >= prev);
		prev = ts;
	}
	/* the system history agrees */
	{
		struct store_history_q q = { NULL, NULL, INT64_MIN, INT64_MIN, 0, 60 };
		struct seen s;
		struct err e = ERR_INIT;
		int64_t next;

		memset(&s, 0, sizeof(s));
		assert_int_equal(store_history(f->s, &q, collect, &s, &next, &e), 0);
		assert_int_equal(s.n, 40);
		for (size_t i = 1; i < s.n; i++)
			assert_true(s.ts[i] <= s.ts[i - 1]);
	}
}

/* ---- concurrency ---- */

#define THREADS 8
#define PER_THREAD 200

struct worker {
	struct store *s;
	int no;
	int failures;
	int64_t vids[PER_THREAD];
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		struct store_op op;
		struct store_txn t;
		char body[64];

		snprintf(body, sizeof(body), "\"thread\":%d,\"i\":%d", w->no, i);
		op_set(&op, STORE_UPDATE, STORE_PUT, "Basic", "shared", body);
		op.want_json = i % 2 == 0;
		if (commit_ops(w->s, &op, 1, i % 3 != 0, &t) != 0 ||
		    (op.status != 200 && op.status != 201) || op.noop)
			w->failures++;
		w->vids[i] = op.vid;
		free(op.json);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void test_concurrent_commits(void **state)
{
	struct fx *f = *state;
	static struct worker w[THREADS];
	static int64_t all[THREADS * PER_THREAD];
	pthread_t th[THREADS];
	struct store_version v;
	struct err e = ERR_INIT;
	int64_t n = 0;

	for (int i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = f->s;
		w[i].no = i;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].failures, 0);
		memcpy(all + i * PER_THREAD, w[i].vids, sizeof(w[i].vids));
		/* one thread's versions rise in its own order */
		for (int k = 1; k < PER_THREAD; k++)
			assert_true(w[i].vids[k] > w[i].vids[k - 1]);
	}
	/* every commit got its own version: exactly 1..N */
	qsort(all, THREADS * PER_THREAD, sizeof(all[0]), cmp_i64);
	for (int i = 0; i < THREADS * PER_THREAD; i++)
		assert_int_equal(all[i], i + 1);
	assert_int_equal(store_read(f->s, "Basic", "shared", &v, &e), 0);
	assert_int_equal(v.vid, THREADS * PER_THREAD);
	store_version_release(&v);
	assert_int_equal(store_history_count(f->s, "Basic", "shared", INT64_MIN, &n, &e), 0);
	assert_int_equal(n, THREADS * PER_THREAD);
	assert_int_equal(store_check(f->s, &e), 0);
}

/* store_submit: done runs once the txn is durable. */
struct submit_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void submit_done(struct store_txn *t, void *arg)
{
	struct submit_wait *w = arg;

	(void)t;
	pthread_mutex_lock(&w->mu);
	w->done++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void test_submit(void **state)
{
	struct fx *f = *state;
	struct submit_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct store_op ops[5];
	struct store_txn t[5];
	struct store_version v;
	struct err e = ERR_INIT;
	char ids[5][8];

	for (int i = 0; i < 5; i++) {
		snprintf(ids[i], sizeof(ids[i]), "s%d", i);
		op_set(&ops[i], STORE_CREATE, STORE_POST, "Basic", ids[i], "\"x\":1");
		memset(&t[i], 0, sizeof(t[i]));
		t[i].ops = &ops[i];
		t[i].n = 1;
		t[i].atomic = true;
		t[i].done = submit_done;
		t[i].done_arg = &w;
		assert_int_equal(store_submit(f->s, &t[i]), 0);
	}
	pthread_mutex_lock(&w.mu);
	while (w.done < 5)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(t[i].rc, 0);
		assert_int_equal(ops[i].status, 201);
		assert_int_equal(store_read(f->s, "Basic", ids[i], &v, &e), 0);
		store_version_release(&v);
	}
	free_ops(ops, 5);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
}

/* Data written before store_close is there after reopening. */
static void test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct store_version v;
	struct err e = ERR_INIT;

	put(f->s, "Patient", "durable", "\"active\":true", NULL);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->path, NULL, &f->s, &e), 0);
	assert_int_equal(store_read(f->s, "Patient", "durable", &v, &e), 0);
	assert_int_equal(v.vid, 1);
	store_version_release(&v);
	assert_int_equal(store_schema_version(f->s, &e), latest_migration());
}

/* A migration numbered below one the database already has (merged
 * branches bring them) still runs: each version is looked up, not compared
 * with the highest. */
static void test_missing_lower_migration_runs(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	sqlite3 *db;
	sqlite3_stmt *st;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE break_glass; "
					  "DELETE FROM schema_migrations WHERE version = 5",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, NULL, &f->s, &e), 0);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM schema_migrations "
						"WHERE version = 5), (SELECT count(*) FROM break_glass)",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	assert_int_equal(sqlite3_column_int(st, 1), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, NULL, &f->s, &e), 0);
	assert_int_equal(store_schema_version(f->s, &e), latest_migration());
}

/* ---- users and tokens ---- */

static void user_set(struct store_user *u, const char *name, const char *role, bool active)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->username, sizeof(u->username), "%s", name);
	snprintf(u->role, sizeof(u->role), "%s", role);
	snprintf(u->pw_hash, sizeof(u->pw_hash), "hash-of-%s", name);
	u->active = active;
}

struct names {
	size_t n;
	char v[8][STORE_NAME_MAX + 1];
};

static int list_user(void *ctx, const struct store_user *u)
{
	struct names *nm = ctx;

	assert_true(nm->n < 8);
	snprintf(nm->v[nm->n++], sizeof(nm->v[0]), "%s", u->username);
	return 0;
}

static void test_users(void **state)
{
	struct fx *f = *state;
	struct store_user u, got;
	struct err e = ERR_INIT;
	struct names nm;
	int64_t uid;

	user_set(&u, "carol", "coder", true);
	snprintf(u.practitioner, sizeof(u.practitioner), "Practitioner/p1");
	assert_int_equal(store_user_add(f->s, &u, &e), 0);
	assert_true(u.uid > 0);
	assert_true(u.created_ms > 0); /* filled in when 0 */
	uid = u.uid;

	user_set(&u, "carol", "admin", true);
	assert_int_equal(store_user_add(f->s, &u, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);

	user_set(&u, "alice", "him_director", true);
	u.created_ms = 12345;
	assert_int_equal(store_user_add(f->s, &u, &e), 0);
	assert_int_not_equal(u.uid, uid);
	user_set(&u, "bob", "billing", false);
	assert_int_equal(store_user_add(f->s, &u, &e), 0);

	assert_int_equal(store_user_get(f->s, "carol", &got, &e), 0);
	assert_int_equal(got.uid, uid);
	assert_string_equal(got.username, "carol");
	assert_string_equal(got.role, "coder");
	assert_string_equal(got.pw_hash, "hash-of-carol");
	assert_string_equal(got.practitioner, "Practitioner/p1");
	assert_true(got.active);
	assert_int_equal(got.failed_logins, 0);
	assert_int_equal(got.locked_until_ms, 0);
	assert_int_equal(store_user_get(f->s, "alice", &got, &e), 0);
	assert_int_equal(got.created_ms, 12345);
	assert_string_equal(got.practitioner, "");
	assert_int_equal(store_user_get(f->s, "bob", &got, &e), 0);
	assert_false(got.active);
	err_clear(&e);
	assert_int_equal(store_user_get(f->s, "dave", &got, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	err_clear(&e);
	assert_int_equal(store_user_get(f->s, "Carol", &got, &e), -1); /* names are exact */
	assert_int_equal(e.code, ERR_NOT_FOUND);

	memset(&nm, 0, sizeof(nm));
	assert_int_equal(store_user_list(f->s, list_user, &nm, &e), 0);
	assert_int_equal(nm.n, 3);
	assert_string_equal(nm.v[0], "alice");
	assert_string_equal(nm.v[1], "bob");
	assert_string_equal(nm.v[2], "carol");

	assert_int_equal(store_user_set_password(f->s, "carol", "new-hash", &e), 0);
	assert_int_equal(store_user_get(f->s, "carol", &got, &e), 0);
	assert_string_equal(got.pw_hash, "new-hash");
	assert_string_equal(got.role, "coder");
	err_clear(&e);
	assert_int_equal(store_user_set_password(f->s, "nobody", "x", &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

static void token_set(struct store_token *t, unsigned char seed, int64_t uid, int64_t expires)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 32; i++)
		t->hash[i] = (unsigned char)(seed + i);
	t->uid = uid;
	snprintf(t->kind, sizeof(t->kind), "access");
	snprintf(t->scopes, sizeof(t->scopes), "user/*.read");
	t->issued_ms = 1000;
	t->expires_ms = expires;
}

static void test_tokens(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct store_token t;
	struct store_principal p;
	struct err e = ERR_INIT;
	const int64_t now = 1700000000000LL;
	int64_t uid_on, uid_off;

	user_set(&u, "on", "coder", true);
	snprintf(u.practitioner, sizeof(u.practitioner), "Practitioner/x");
	assert_int_equal(store_user_add(f->s, &u, &e), 0);
	uid_on = u.uid;
	user_set(&u, "off", "coder", false);
	assert_int_equal(store_user_add(f->s, &u, &e), 0);
	uid_off = u.uid;

	token_set(&t, 1, uid_on, now + 3600000);
	assert_int_equal(store_token_add(f->s, &t, &e), 0);
	assert_int_equal(store_token_lookup(f->s, t.hash, now, &p, &e), 0);
	assert_int_equal(p.uid, uid_on);
	assert_string_equal(p.username, "on");
	assert_string_equal(p.role, "coder");
	assert_string_equal(p.scopes, "user/*.read");
	assert_string_equal(p.practitioner, "Practitioner/x");
	assert_int_equal(p.expires_ms, now + 3600000);

	/* expired: at and after expires_ms */
	err_clear(&e);
	assert_int_equal(store_token_lookup(f->s, t.hash, now + 3600000, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);
	err_clear(&e);
	assert_int_equal(store_token_lookup(f->s, t.hash, now + 7200000, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);

	/* unknown */
	{
		unsigned char other[32];
		memset(other, 0xee, sizeof(other));
		err_clear(&e);
		assert_int_equal(store_token_lookup(f->s, other, now, &p, &e), -1);
		assert_int_equal(e.code, ERR_UNAUTHENTICATED);
		err_clear(&e);
		assert_int_equal(store_token_revoke(f->s, other, &e), -1);
		assert_int_equal(e.code, ERR_NOT_FOUND);
	}

	/* revoked */
	assert_int_equal(store_token_revoke(f->s, t.hash, &e), 0);
	err_clear(&e);
	assert_int_equal(store_token_lookup(f->s, t.hash, now, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);

	/* a token of an inactive user */
	token_set(&t, 100, uid_off, now + 3600000);
	assert_int_equal(store_token_add(f->s, &t, &e), 0);
	err_clear(&e);
	assert_int_equal(store_token_lookup(f->s, t.hash, now, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);

	/* the same hash twice is refused */
	token_set(&t, 100, uid_on, now + 3600000);
	err_clear(&e);
	assert_int_equal(store_token_add(f->s, &t, &e), -1);
	assert_int_not_equal(e.code, ERR_NONE);
}

static void test_check(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;

	put(f->s, "Patient", "c", "\"active\":true", NULL);
	assert_int_equal(store_check(f->s, &e), 0);
	assert_int_equal(e.code, ERR_NONE);
	assert_int_equal(store_schema_version(f->s, &e), latest_migration());
}

static int group_setup(void **state)
{
	(void)state;
	log_level = LOG_ERROR; /* migrations log at info */
	return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_refuses_existing, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_create_cleans_up, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_not_chartkeep_sqlite, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_empty_file, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_not_sqlite, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_write_semantics, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_txn_fails_whole, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_non_atomic_txn_keeps_good_ops, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_assembled_json, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_read_vread, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_scan_and_count, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_scan_order_type, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_scan_order_all, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_scan_skips_deleted, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_last_updated_monotonic, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commits, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_submit, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_read_scope, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_missing_lower_migration_runs, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup_store, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
