/* sqlite_audit.c - the hash-chained audit log (migration 0004).
 *
 * Only the writer thread appends, inside the group transaction that holds
 * the data the entry speaks of.  The chain head is read from the table at
 * the start of each group (under the write lock), so another process that
 * appended in between (the CLI) is simply continued.  A transaction rolled
 * back to its savepoint takes its entry with it; sqlite.c then restores the
 * head it saved (sqlite_audit_mark / sqlite_audit_restore).
 *
 * hash(n) = BLAKE2b-256(hash(n-1) || be64(seq) || be64(ts) || entry), with
 * 32 zero bytes before the first entry.  A checkpoint signs
 * "chartkeep-audit-v1" || be64(seq) || be64(ts) || hash(seq) with Ed25519. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

#define KEY_MAGIC "chartkeep-audit-key-v1 "
#define PUB_MAGIC "chartkeep-audit-pub-v1 "
#define SIG_CONTEXT "chartkeep-audit-v1"
#define HASH_BYTES 32

static void be64(unsigned char out[8], int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
}

static void chain_hash(const unsigned char prev[HASH_BYTES], int64_t seq, int64_t ts,
		       const char *entry, size_t len, unsigned char out[HASH_BYTES])
{
	crypto_generichash_state h;
	unsigned char b[8];

	crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
	crypto_generichash_update(&h, prev, HASH_BYTES);
	be64(b, seq);
	crypto_generichash_update(&h, b, 8);
	be64(b, ts);
	crypto_generichash_update(&h, b, 8);
	crypto_generichash_update(&h, (const unsigned char *)entry, len);
	crypto_generichash_final(&h, out, HASH_BYTES);
}

/* What a checkpoint signs. */
static void sig_message(int64_t seq, int64_t ts, const unsigned char hash[HASH_BYTES],
			unsigned char out[sizeof(SIG_CONTEXT) - 1 + 16 + HASH_BYTES])
{
	memcpy(out, SIG_CONTEXT, sizeof(SIG_CONTEXT) - 1);
	be64(out + sizeof(SIG_CONTEXT) - 1, seq);
	be64(out + sizeof(SIG_CONTEXT) - 1 + 8, ts);
	memcpy(out + sizeof(SIG_CONTEXT) - 1 + 16, hash, HASH_BYTES);
}

#define SIG_MSG_BYTES (sizeof(SIG_CONTEXT) - 1 + 16 + HASH_BYTES)

/* ---- key files ---- */

static int write_new(const char *path, mode_t mode, const char *text, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t len = strlen(text), off = 0;

	if (fd < 0)
		return err_set(e, errno == EEXIST ? ERR_CONFLICT : ERR_IO, "cannot create '%s': %s", path,
			       errno == EEXIST ? "it exists already" : strerror(errno));
	while (off < len) {
		ssize_t k = write(fd, text + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			close(fd);
			unlink(path);
			return err_set(e, ERR_IO, "cannot write '%s': %s", path, strerror(errno));
		}
		off += (size_t)k;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		unlink(path);
		return err_set(e, ERR_IO, "cannot write '%s': %s", path, strerror(errno));
	}
	return 0;
}

int store_audit_keygen(const char *path, struct err *e)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	char hex[2 * crypto_sign_SECRETKEYBYTES + 1], text[sizeof(KEY_MAGIC) + sizeof(hex) + 2];
	char pubpath[4096];
	int rc;

	if (snprintf(pubpath, sizeof(pubpath), "%s.pub", path) >= (int)sizeof(pubpath))
		return err_set(e, ERR_INVALID, "key path too long");
	if (sodium_init() < 0)
		return err_set(e, ERR_INTERNAL, "libsodium did not start");
	crypto_sign_keypair(pk, sk);
	sodium_bin2hex(hex, sizeof(hex), sk, sizeof(sk));
	snprintf(text, sizeof(text), KEY_MAGIC "%s\n", hex);
	rc = write_new(path, 0600, text, e);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(text, sizeof(text));
	if (rc < 0)
		return -1;
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	snprintf(text, sizeof(text), PUB_MAGIC "%s\n", hex);
	if (write_new(pubpath, 0644, text, e) < 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* Read a key file: the secret key (sk != NULL) or, from either kind, the
 * public key. */
static int read_key(const char *path, unsigned char *sk, unsigned char pk[crypto_sign_PUBLICKEYBYTES],
		    struct err *e)
{
	char text[256];
	unsigned char bin[crypto_sign_SECRETKEYBYTES];
	size_t n = 0, binlen = 0;
	FILE *f = fopen(path, "re");
	int rc = -1;

	if (!f)
		return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot read the audit key '%s': %s",
			       path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	if (strncmp(text, KEY_MAGIC, sizeof(KEY_MAGIC) - 1) == 0) {
		if (sodium_hex2bin(bin, sizeof(bin), text + sizeof(KEY_MAGIC) - 1,
				   strlen(text + sizeof(KEY_MAGIC) - 1), NULL, &binlen, NULL) == 0 &&
		    binlen == crypto_sign_SECRETKEYBYTES) {
			if (sk)
				memcpy(sk, bin, binlen);
			crypto_sign_ed25519_sk_to_pk(pk, bin);
			rc = 0;
		}
	} else if (!sk && strncmp(text, PUB_MAGIC, sizeof(PUB_MAGIC) - 1) == 0) {
		if (sodium_hex2bin(bin, sizeof(bin), text + sizeof(PUB_MAGIC) - 1,
				   strlen(text + sizeof(PUB_MAGIC) - 1), NULL, &binlen, NULL) == 0 &&
		    binlen == crypto_sign_PUBLICKEYBYTES) {
			memcpy(pk, bin, binlen);
			rc = 0;
		}
	}
	sodium_memzero(bin, sizeof(bin));
	sodium_memzero(text, sizeof(text));
	if (rc < 0)
		err_set(e, ERR_INVALID, "'%s' is not a chartkeep audit %skey file", path, sk ? "secret " : "");
	return rc;
}

int store_audit_pubkey(const char *path, unsigned char pk[STORE_AUDIT_PUB_BYTES], struct err *e)
{
	return read_key(path, NULL, pk, e);
}

static void key_id(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char out[17])
{
	sodium_bin2hex(out, 17, pk, 8);
}

/* ---- the writer's side ---- */

int sqlite_audit_open(struct sqlite_audit *a, const struct store_opts *o, struct err *e)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->entry, 0);
	a->every = o->audit_checkpoint_every ? o->audit_checkpoint_every : 1000;
	if (!o->audit_key)
		return 0;
	if (sodium_init() < 0)
		return err_set(e, ERR_INTERNAL, "libsodium did not start");
	a->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!a->sk)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (read_key(o->audit_key, a->sk, a->pk, e) < 0) {
		sodium_free(a->sk);
		a->sk = NULL;
		return -1;
	}
	sodium_mprotect_readonly(a->sk);
	return 0;
}

void sqlite_audit_close(struct sqlite_audit *a)
{
	for (size_t i = 0; i < sizeof(a->st) / sizeof(a->st[0]); i++)
		sqlite3_finalize(a->st[i]);
	if (a->sk)
		sodium_free(a->sk);
	buf_release(&a->entry);
	memset(a, 0, sizeof(*a));
}

enum { AS_HEAD, AS_INSERT, AS_CP_LAST, AS_CP_INSERT, AS_IX_UPTO, AS_IX_ADD, AS_IX_SET };

static sqlite3_stmt *ast(struct sqlite_audit *a, sqlite3 *db, int which, struct err *e)
{
	static const char *const sql[] = {
		[AS_HEAD] = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
		[AS_INSERT] = "INSERT INTO audit_log (seq, ts, entry, hash) VALUES (?1, ?2, ?3, ?4)",
		[AS_CP_LAST] = "SELECT coalesce(max(seq), 0) FROM audit_checkpoint",
		[AS_CP_INSERT] = ("INSERT INTO audit_checkpoint (seq, ts, hash, key_id, sig) "
				  "VALUES (?1, ?2, ?3, ?4, ?5)"),
		[AS_IX_UPTO] = "SELECT upto FROM audit_indexed",
		/* sorted, so the batch goes into the newest bucket's pages in order */
		[AS_IX_ADD] = ("INSERT OR IGNORE INTO audit_patient (bucket, patient, seq) "
			       "SELECT a.seq >> 14, substr(j.value ->> '$.what.reference', 9), a.seq "
			       "FROM audit_log a, json_each(a.entry, '$.entity') j "
			       "WHERE a.seq > ?1 AND a.seq <= ?2 "
			       "AND j.value ->> '$.what.reference' LIKE 'Patient/%' "
			       "ORDER BY 1, 2, 3"),
		[AS_IX_SET] = "UPDATE audit_indexed SET upto = ?1 WHERE upto < ?1",
	};

	if (!a->st[which] && sqlite3_prepare_v3(db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
						&a->st[which], NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "prepare audit");
		return NULL;
	}
	return a->st[which];
}

int sqlite_audit_load(struct sqlite_audit *a, sqlite3 *db, struct err *e)
{
	sqlite3_stmt *st = ast(a, db, AS_HEAD, e);
	int rc;

	if (!st)
		return -1;
	a->seq = 0;
	memset(a->hash, 0, sizeof(a->hash));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		a->seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == HASH_BYTES)
			memcpy(a->hash, sqlite3_column_blob(st, 1), HASH_BYTES);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_db_fail(e, db, "read the audit chain head");
	st = ast(a, db, AS_IX_UPTO, e);
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	a->ix_upto = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_db_fail(e, db, "read the audit index mark");
	if (a->sk && a->cp_seq < 0) {
		/* first group: where the last checkpoint is */
		sqlite3_stmt *c = ast(a, db, AS_CP_LAST, e);
		if (!c)
			return -1;
		if (sqlite3_step(c) == SQLITE_ROW)
			a->cp_seq = sqlite3_column_int64(c, 0);
		sqlite3_reset(c);
	}
	a->loaded = true;
	return 0;
}

void sqlite_audit_mark(const struct sqlite_audit *a, struct sqlite_audit_mark *m)
{
	m->seq = a->seq;
	m->cp_seq = a->cp_seq;
	memcpy(m->hash, a->hash, HASH_BYTES);
}

void sqlite_audit_restore(struct sqlite_audit *a, const struct sqlite_audit_mark *m)
{
	a->seq = m->seq;
	a->cp_seq = m->cp_seq;
	memcpy(a->hash, m->hash, HASH_BYTES);
}

int sqlite_audit_checkpoint(struct sqlite_audit *a, sqlite3 *db, int64_t ts, struct err *e)
{
	unsigned char msg[SIG_MSG_BYTES], sig[crypto_sign_BYTES];
	char kid[17];
	sqlite3_stmt *st;
	int rc;

	if (!a->sk || a->seq == 0 || a->seq <= a->cp_seq)
		return 0;
	st = ast(a, db, AS_CP_INSERT, e);
	if (!st)
		return -1;
	sig_message(a->seq, ts, a->hash, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), a->sk);
	key_id(a->pk, kid);
	sqlite3_bind_int64(st, 1, a->seq);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_blob(st, 3, a->hash, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, kid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 5, sig, sizeof(sig), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return sqlite_db_fail(e, db, "write an audit checkpoint");
	a->cp_seq = a->seq;
	return 0;
}

void sqlite_audit_index(struct sqlite_audit *a, sqlite3 *db, int64_t now_ms, bool force)
{
	struct err e = ERR_INIT;
	sqlite3_stmt *add, *set;
	int rc;

	if (!a->loaded || a->seq <= a->ix_upto)
		return;
	if (!force && a->seq - a->ix_upto < SQLITE_AUDIT_IX_BATCH &&
	    now_ms - a->ix_last_ms < SQLITE_AUDIT_IX_MS)
		return;
	a->ix_last_ms = now_ms;
	add = ast(a, db, AS_IX_ADD, &e);
	set = ast(a, db, AS_IX_SET, &e);
	if (!add || !set || sqlite3_exec(db, "SAVEPOINT audit_ix", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(add, 1, a->ix_upto);
	sqlite3_bind_int64(add, 2, a->seq);
	rc = sqlite3_step(add);
	sqlite3_reset(add);
	if (rc == SQLITE_DONE) {
		sqlite3_bind_int64(set, 1, a->seq);
		rc = sqlite3_step(set);
		sqlite3_reset(set);
	}
	if (rc != SQLITE_DONE) {
		sqlite_db_fail(&e, db, "index the audit entries' patients");
		sqlite3_exec(db, "ROLLBACK TO audit_ix; RELEASE audit_ix", NULL, NULL, NULL);
		goto fail;
	}
	sqlite3_exec(db, "RELEASE audit_ix", NULL, NULL, NULL);
	a->ix_upto = a->seq;
	return;
fail:
	if (!e.code)
		sqlite_db_fail(&e, db, "index the audit entries' patients");
	log_warn("event=audit_index_failed detail=\"%s\"", e.detail);
}

int sqlite_audit_append(struct sqlite_audit *a, sqlite3 *db, int64_t ts, const char *entry, size_t len,
			int64_t *seq_out, struct err *e)
{
	unsigned char h[HASH_BYTES];
	sqlite3_stmt *st;
	int64_t seq;
	int rc;

	if (!a->loaded && sqlite_audit_load(a, db, e) < 0)
		return -1;
	st = ast(a, db, AS_INSERT, e);
	if (!st)
		return -1;
	seq = a->seq + 1;
	chain_hash(a->hash, seq, ts, entry, len, h);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, entry, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, h, HASH_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return sqlite_db_fail(e, db, "write the audit entry");
	a->seq = seq;
	memcpy(a->hash, h, HASH_BYTES);
	if (seq_out)
		*seq_out = seq;
	if (a->sk && a->seq - a->cp_seq >= (int64_t)a->every)
		return sqlite_audit_checkpoint(a, db, ts, e);
	return 0;
}

/* ---- reading and checking ---- */

int store_audit_verify(struct store *s, const unsigned char *pk, struct store_audit_report *r,
		       struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3 *db;
	sqlite3_stmt *st = NULL, *cp = NULL;
	unsigned char prev[HASH_BYTES] = { 0 };
	int64_t expect = 1;
	int rc = -1, step;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	db = sqlite_conn_db(c);
	/* one read transaction: entries and checkpoints seen at the same moment */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "begin");
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT seq, ts, entry, hash FROM audit_log ORDER BY seq", -1, &st,
			       NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "read the audit log");
		goto out_end;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0), ts = sqlite3_column_int64(st, 1);
		const char *entry = (const char *)sqlite3_column_text(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		const void *stored = sqlite3_column_blob(st, 3);
		unsigned char h[HASH_BYTES];

		if (seq != expect) {
			r->bad_seq = seq < expect ? seq : expect;
			snprintf(r->why, sizeof(r->why),
				 seq > expect ? "entries %" PRId64 " to %" PRId64 " are missing (deleted)"
					      : "entry %" PRId64 " is out of order (inserted or renumbered)",
				 seq > expect ? expect : seq, seq > expect ? seq - 1 : seq);
			goto done;
		}
		chain_hash(prev, seq, ts, entry ? entry : "", entry ? len : 0, h);
		if (!stored || sqlite3_column_bytes(st, 3) != HASH_BYTES ||
		    sodium_memcmp(h, stored, HASH_BYTES) != 0) {
			r->bad_seq = seq;
			snprintf(r->why, sizeof(r->why),
				 "entry %" PRId64 " does not match its hash: it was edited, or entries before "
				 "it were inserted, deleted or reordered",
				 seq);
			goto done;
		}
		memcpy(prev, h, HASH_BYTES);
		r->entries++;
		r->last_seq = seq;
		expect = seq + 1;
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "read the audit log");
		goto out_end;
	}
	/* Checkpoints: signed by the key, naming an entry that still has the
	 * hash it had when signed.  A chain rewritten from some entry on with
	 * fresh hashes passes the walk above but not this. */
	if (sqlite3_prepare_v2(db,
			       "SELECT c.seq, c.ts, c.hash, c.sig, a.hash FROM audit_checkpoint c "
			       "LEFT JOIN audit_log a ON a.seq = c.seq ORDER BY c.seq",
			       -1, &cp, NULL) != SQLITE_OK) {
		sqlite_db_fail(e, db, "read the audit checkpoints");
		goto out_end;
	}
	r->unsigned_tail = r->last_seq > 0;
	while ((step = sqlite3_step(cp)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(cp, 0), ts = sqlite3_column_int64(cp, 1);
		const void *h = sqlite3_column_blob(cp, 2), *sig = sqlite3_column_blob(cp, 3);
		const void *now = sqlite3_column_blob(cp, 4);
		unsigned char msg[SIG_MSG_BYTES];

		if (!h || sqlite3_column_bytes(cp, 2) != HASH_BYTES) {
			r->bad_seq = seq;
			snprintf(r->why, sizeof(r->why), "the checkpoint at entry %" PRId64 " is damaged", seq);
			goto done;
		}
		if (pk) {
			sig_message(seq, ts, h, msg);
			if (!sig || sqlite3_column_bytes(cp, 3) != crypto_sign_BYTES ||
			    crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0) {
				r->bad_seq = seq;
				snprintf(r->why, sizeof(r->why),
					 "the checkpoint at entry %" PRId64 " is not signed by this key", seq);
				goto done;
			}
		}
		if (!now) {
			r->bad_seq = seq;
			snprintf(r->why, sizeof(r->why),
				 "entry %" PRId64 ", signed at a checkpoint, is gone: the log was cut short", seq);
			goto done;
		}
		if (sqlite3_column_bytes(cp, 4) != HASH_BYTES || sodium_memcmp(now, h, HASH_BYTES) != 0) {
			r->bad_seq = seq;
			snprintf(r->why, sizeof(r->why),
				 "entries up to %" PRId64 " were rewritten since they were signed", seq);
			goto done;
		}
		r->checkpoints++;
		r->unsigned_tail = seq < r->last_seq;
	}
	if (step != SQLITE_DONE) {
		sqlite_db_fail(e, db, "read the audit checkpoints");
		goto out_end;
	}
done:
	rc = 0;
out_end:
	sqlite3_finalize(st);
	sqlite3_finalize(cp);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
out:
	sqlite_reader_put(s, c);
	return rc;
}

static int deliver(sqlite3_stmt *st, store_audit_fn fn, void *ctx)
{
	struct store_audit_entry en;

	en.seq = sqlite3_column_int64(st, 0);
	en.ts = sqlite3_column_int64(st, 1);
	en.json = (const char *)sqlite3_column_text(st, 2);
	en.len = (size_t)sqlite3_column_bytes(st, 2);
	if (!en.json) {
		en.json = "";
		en.len = 0;
	}
	return fn(ctx, &en);
}

int store_audit_search(struct store *s, const struct store_audit_q *q, store_audit_fn fn, void *ctx,
		       bool *more, struct err *e)
{
	struct conn *c;
	sqlite3_stmt *st;
	const char *sql;
	size_t n = 0;
	int step, rc = -1;

	*more = false;
	/* By patient: its rows in each bucket of the index (newest first), and
	 * the entries the index has not taken yet (at most a batch), read
	 * directly.  Otherwise seq order. */
	if (q->patient)
		sql = "WITH RECURSIVE b(k) AS ("
		      "  SELECT (SELECT coalesce(max(seq), 0) FROM audit_log) >> 14"
		      "  UNION ALL SELECT k - 1 FROM b WHERE k > 0),"
		      " hit(seq) AS ("
		      "  SELECT p.seq FROM b CROSS JOIN audit_patient p"
		      "   ON p.bucket = b.k AND p.patient = ?5 AND p.seq < ?1"
		      "  UNION"
		      "  SELECT t.seq FROM audit_log t"
		      "   WHERE t.seq > (SELECT coalesce(max(upto), 0) FROM audit_indexed) AND t.seq < ?1"
		      "   AND EXISTS (SELECT 1 FROM json_each(t.entry, '$.entity') j"
		      "    WHERE j.value ->> '$.what.reference' = 'Patient/' || ?5))"
		      "SELECT a.seq, a.ts, a.entry FROM hit CROSS JOIN audit_log a ON a.seq = hit.seq"
		      " WHERE a.ts >= ?2 AND a.ts < ?3 AND (?4 IS NULL OR a.agent = ?4)"
		      " ORDER BY a.seq DESC LIMIT ?6";
	else
		sql = "SELECT a.seq, a.ts, a.entry FROM audit_log a WHERE a.seq < ?1 AND a.ts >= ?2 "
		      "AND a.ts < ?3 AND (?4 IS NULL OR a.agent = ?4) ORDER BY a.seq DESC LIMIT ?6";
	c = sqlite_reader_get(s, e);
	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, sql, e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, q->before_seq > 0 ? q->before_seq : INT64_MAX);
	sqlite3_bind_int64(st, 2, q->from_ms);
	sqlite3_bind_int64(st, 3, q->to_ms);
	if (q->agent)
		sqlite3_bind_text(st, 4, q->agent, -1, SQLITE_TRANSIENT);
	if (q->patient)
		sqlite3_bind_text(st, 5, q->patient, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, (int64_t)q->count + 1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == q->count) {
			*more = true;
			break;
		}
		n++;
		if (deliver(st, fn, ctx) < 0) {
			sqlite3_reset(st);
			err_set(e, ERR_INTERNAL, "audit search stopped");
			goto out;
		}
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "audit search");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	sqlite_reader_put(s, c);
	return rc;
}

int store_audit_get(struct store *s, int64_t seq, store_audit_fn fn, void *ctx, struct err *e)
{
	struct conn *c = sqlite_reader_get(s, e);
	sqlite3_stmt *st;
	int rc = -1, step;

	if (!c)
		return -1;
	st = sqlite_prepare_cached(c, "SELECT seq, ts, entry FROM audit_log WHERE seq = ?1", e);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = deliver(st, fn, ctx) < 0 ? err_set(e, ERR_INTERNAL, "audit read stopped") : 0;
	else if (step == SQLITE_DONE)
		err_set(e, ERR_NOT_FOUND, "no such AuditEvent");
	else
		sqlite_db_fail(e, sqlite_conn_db(c), "audit read");
	sqlite3_reset(st);
out:
	sqlite_reader_put(s, c);
	return rc;
}
