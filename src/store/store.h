/* store.h - the only persistence API.
 *
 * Everything chartkeep keeps goes through these functions; callers never see
 * SQL.  The SQLite backend (sqlite.c) is the default; a PostgreSQL backend
 * will implement the same functions.
 *
 * Resources: every write makes a new version; a delete writes a tombstone
 * version; nothing is overwritten.  Writes are grouped into transactions
 * (struct store_txn) that one writer thread commits in groups: each commit
 * is durable (fsync) before any of its transactions is reported done, and
 * many concurrent transactions share one fsync.  Reads run on a pool of
 * reader connections, so any thread may call them.
 *
 * Stored JSON is exactly what is served: the writer assembles it as
 *   {"resourceType":T,"id":ID,"meta":{"versionId":V,"lastUpdated":TS<,meta_rest>}<,body>}
 * from the fragments the caller prepared (see struct store_op), so that a
 * read is one lookup and one copy. */
#ifndef CK_STORE_H
#define CK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct store;

struct store_opts {
	int reader_cache_kb;   /* page cache per reader connection; 0: default */
	int writer_cache_kb;   /* page cache of the writer; 0: default */
	size_t group_max_ops;  /* most operations committed in one group; 0: default */
	const char *audit_key; /* Ed25519 key file signing audit checkpoints (store_audit_keygen);
				  NULL: no checkpoints are signed */
	unsigned audit_checkpoint_every; /* entries between checkpoints; 0: 1000 */
};

/* Create a new, empty database at path (schema and migrations).  Refuses an
 * existing file (ERR_CONFLICT). */
int store_create(const char *path, struct err *e);
/* Open an existing database; applies pending migrations.  ERR_NOT_FOUND if
 * there is none at path, ERR_INVALID if it is not a chartkeep database. */
int store_open(const char *path, const struct store_opts *opts, struct store **out,
	       struct err *e);
/* Finish queued writes, stop the writer, close every connection. */
void store_close(struct store *s);
/* The schema version the database is at. */
int store_schema_version(struct store *s, struct err *e);

/* ---- resources: reads ---- */

enum store_method { STORE_POST = 1, STORE_PUT, STORE_DELETE, STORE_PATCH };

struct store_version {
	char *json;          /* malloc'd, NUL-terminated; NULL for a deleted version */
	size_t len;
	int64_t vid;
	int64_t ts_ms;       /* meta.lastUpdated */
	int64_t vkey;        /* global write order (system history) */
	int method;          /* enum store_method */
	bool deleted;
	char type[64];
	char id[65];
};

void store_version_release(struct store_version *v);

/* Current version of type/id.  ERR_NOT_FOUND if it never existed; ERR_GONE if
 * the current version is a delete (out->vid and ts_ms are set then). */
int store_read(struct store *s, const char *type, const char *id,
	       struct store_version *out, struct err *e);
/* Version vid of type/id.  ERR_NOT_FOUND if there is no such version;
 * ERR_GONE if that version is a delete. */
int store_vread(struct store *s, const char *type, const char *id, int64_t vid,
		struct store_version *out, struct err *e);

/* A read scope: the reads this thread makes until store_read_scope_end
 * share one connection and one read transaction - one snapshot, and one
 * WAL read lock instead of one per statement (what a run of many small
 * reads, like $code-edits, spends most in).  Reads only: no writes, no
 * nesting, and end it promptly (it holds the WAL back, like a snapshot).
 * ERR_INTERNAL if one is open on this thread already. */
int store_read_scope_begin(struct store *s, struct err *e);
void store_read_scope_end(struct store *s);

/* Versions newest first.  type NULL: the whole system; id NULL: a type. */
struct store_history_q {
	const char *type;
	const char *id;
	int64_t since_ms;    /* only versions with ts >= since; INT64_MIN: all */
	int64_t at_ms;       /* versions current at that instant; INT64_MIN: off (reserved) */
	int64_t before_vkey; /* paging cursor: only vkey < this; 0: from the newest */
	size_t count;        /* page size */
};

/* Called once per version; the version is only valid during the call.
 * Return 0 to go on, 1 to stop, -1 to fail (the error is the caller's). */
typedef int (*store_version_fn)(void *ctx, const struct store_version *v);

/* Deliver up to q->count versions to fn.  *next_cursor is set to the cursor
 * of the following page, or 0 if there is none. */
int store_history(struct store *s, const struct store_history_q *q, store_version_fn fn,
		  void *ctx, int64_t *next_cursor, struct err *e);
/* Number of versions of one resource (instance history total). */
int store_history_count(struct store *s, const char *type, const char *id, int64_t since_ms,
			int64_t *count, struct err *e);

/* Every current, not deleted resource: of one type, in id order; or, when
 * type is NULL, of every type, in the order the resources were first
 * written.  (Orders that follow an index: an export never sorts.) */
int store_scan_current(struct store *s, const char *type, store_version_fn fn, void *ctx,
		       struct err *e);
/* Number of current, not deleted resources of a type (NULL: all). */
int store_count_current(struct store *s, const char *type, int64_t *count, struct err *e);

/* ---- resources: writes ---- */

enum store_op_kind {
	STORE_CREATE = 1,  /* must not exist yet (server-assigned id) */
	STORE_UPDATE,      /* creates or makes a new version */
	STORE_REMOVE,      /* writes a tombstone; nothing if absent or deleted */
	STORE_REINDEX      /* replaces the search index rows of the current version
			      (with if_match: only if that is still the current one,
			      else a no-op) */
};

/* ---- search index rows ----
 *
 * The FHIR layer extracts these from each version it writes (by the search
 * parameter definitions); the store keeps the rows of current versions only,
 * written in the same transaction as the version and removed by a delete. */
enum store_ix_kind {
	SIX_TOKEN = 1,  /* s1 system, s2 code */
	SIX_STRING,     /* s1 folded (case, accents), s2 exact */
	SIX_DATE,       /* t1 lo, t2 hi: [lo, hi) in ms */
	SIX_NUMBER,     /* n1 value, n2 lo, n3 hi */
	SIX_QUANTITY,   /* n1 value, n2 lo, n3 hi, s1 system, s2 code, s3 unit */
	SIX_REFERENCE,  /* s1 target type, s2 target id, s3 url (absolute/canonical) */
	SIX_URI,        /* s1 uri */
	SIX_TEXT,       /* s1 narrative, s2 all text: one row per resource */
	SIX__COUNT
};

struct store_ix_row {
	uint8_t kind;     /* enum store_ix_kind */
	uint32_t pid;     /* search parameter id (store_param_ids) */
	uint32_t grp;     /* composite group, 0 outside composites */
	const char *s1, *s2, *s3;
	double n1, n2, n3;
	int64_t t1, t2;
};

struct store_op {
	/* in */
	int kind;             /* enum store_op_kind */
	int method;           /* enum store_method, recorded for history */
	const char *type;
	const char *id;
	int64_t if_match;     /* > 0: the current version must be this one */
	const char *meta_rest;/* meta members other than versionId/lastUpdated, */
	size_t meta_rest_len; /*   comma-separated, without braces; may be empty */
	const char *body;     /* the members after meta, without braces; may be empty */
	size_t body_len;
	unsigned char chash[16]; /* hash of meta_rest and body: an update with the
				    same hash as the current version is a no-op */
	bool want_json;       /* return the assembled JSON in json */
	const struct store_ix_row *ix; /* the version's search index rows */
	size_t n_ix;
	/* out */
	int status;           /* 201 created, 200 updated or deleted, 0 failed */
	bool noop;            /* update identical to the current version, or
				 delete of an absent/deleted resource */
	int64_t vid;          /* version written (or current, for a no-op) */
	int64_t ts_ms;
	char *json;           /* malloc'd when want_json; caller frees */
	size_t json_len;
	struct err err;       /* why this op failed */
};

struct store_txn {
	struct store_op *ops;
	size_t n;
	bool atomic;          /* all or nothing; otherwise each op stands alone */
	/* out */
	int rc;               /* 0 committed; -1 failed (err says why) */
	size_t failed_op;     /* with atomic: the op that failed */
	struct err err;
	/* audit: called on the writer thread once the outcome is known (rc,
	 * failed_op, each op's status and id); appends the AuditEvent JSON
	 * (no id, no meta) to out.  The entry is written in the same database
	 * transaction as the operations; if it cannot be written, a transaction
	 * that would have succeeded fails instead.  NULL: no entry.  A
	 * transaction with no ops and an audit callback writes only the entry
	 * (how a read is audited before it is answered). */
	int (*audit)(struct store_txn *t, int64_t ts, struct buf *out);
	void *audit_arg;
	int64_t audit_seq;    /* out: the entry's sequence number, 0 if none */
	/* hook: run on the writer inside the transaction once its operations
	 * succeeded, before the audit entry; -1 with e set fails the whole
	 * transaction.  For rows the store keeps beside resources in the same
	 * commit (the HL7 inbox: store_hl7_*_txn).  NULL: none. */
	int (*hook)(struct store *s, struct store_txn *t, struct err *e);
	void *hook_arg;
	/* completion, for store_submit */
	void (*done)(struct store_txn *t, void *arg);
	void *done_arg;
	struct store_txn *next; /* private to the store */
};

/* Commit t and wait until it is durable (or failed).  Returns t->rc. */
int store_commit(struct store *s, struct store_txn *t);
/* Queue t; t->done(t, t->done_arg) runs on the writer thread once t is
 * durable or failed.  t must stay valid until then.  Returns -1 (and does not
 * call done) if the store is closing. */
int store_submit(struct store *s, struct store_txn *t);

/* ---- search ----
 *
 * A query is a tree the FHIR layer builds from search parameters; the store
 * turns it into its own query language.  Values arrive already normalised
 * (folded strings, date ranges, number ranges from their precision). */

/* Row flags stored in the pid of special token rows. */
#define STORE_PID_OFTYPE 0x40000000u  /* Identifier.type|value rows, for :of-type */
#define STORE_PID_IDENT  0x20000000u  /* Reference.identifier rows, for :identifier */
#define STORE_PID_MPI    0x10000000u  /* a Patient's MPI blocking keys (mpi/mpi.h): token rows
					 system "mpi", code the key */

enum sq_kind {
	SQ_AND = 1,     /* all kids */
	SQ_OR,          /* any kid */
	SQ_NOT,         /* not kids[0] */
	SQ_IX,          /* an index condition: ix, pid, op and the value */
	SQ_MISSING,     /* b: no rows for pid (true) / some rows (false) */
	SQ_ID,          /* s1: the resource id */
	SQ_LASTUPDATED, /* op with t1, t2 */
	SQ_CHAIN,       /* pid: a reference parameter; s1: target type or NULL;
			   kids[0]: a condition on the target resource */
	SQ_HAS,         /* s1: the referring type; pid: its reference parameter;
			   kids[0]: a condition on the referring resource */
	SQ_COMPOSITE,   /* kids: SQ_IX of one composite value, matched in one group */
	SQ_TEXT,        /* op SQO_NARRATIVE or SQO_CONTENT; s1: a full-text query */
	SQ_FALSE,       /* matches nothing (e.g. a reference that cannot exist) */
	SQ_TYPE         /* s1: the resource's type (for searches across types) */
};

enum sq_op {
	SQO_EQ = 1, SQO_NE, SQO_GT, SQO_LT, SQO_GE, SQO_LE, SQO_SA, SQO_EB, SQO_AP,
	SQO_STARTS, SQO_EXACT, SQO_CONTAINS, SQO_ABOVE, SQO_BELOW,
	SQO_NARRATIVE, SQO_CONTENT
};

struct sq_node {
	int kind;           /* enum sq_kind */
	int ix;             /* enum store_ix_kind, for SQ_IX */
	int op;             /* enum sq_op */
	uint32_t pid;
	const char *s1, *s2, *s3;  /* token: system (NULL any, "" none), code (NULL any);
				      string: value; reference: type (NULL any), id, url;
				      uri: value; quantity: system, code */
	double n1, n2, n3;  /* number/quantity: value, and the range its precision gives */
	int64_t t1, t2;     /* dates: [t1, t2) */
	bool b;
	struct sq_node **kids;
	size_t nkids;
};

enum sq_sort_kind { SQS_PARAM = 1, SQS_ID, SQS_LASTUPDATED };

struct sq_sort {
	int kind;           /* enum sq_sort_kind */
	int ix;             /* for SQS_PARAM */
	uint32_t pid;
	bool desc;
};

/* A sort key value (for paging cursors). */
struct sq_key {
	int type;           /* 0 null, 1 integer, 2 real, 3 text */
	int64_t i;
	double r;
	const char *s;
};

#define SQ_MAX_SORT 4

struct store_query {
	const char *type;          /* the resource type searched; NULL: every type */
	struct sq_node *where;     /* NULL: every resource of the type */
	struct sq_sort sort[SQ_MAX_SORT];
	size_t nsort;              /* results are ordered by these, then by rkey */
	size_t count;              /* page size */
	/* paging: start after (or, with before, end before) this position */
	bool has_cursor, before;
	struct sq_key cursor[SQ_MAX_SORT];
	int64_t cursor_rkey;
	bool want_total;
};

struct store_hit {
	struct store_version v;    /* json borrowed: valid during the callback */
	int64_t rkey;
	struct sq_key keys[SQ_MAX_SORT];
};

typedef int (*store_hit_fn)(void *ctx, const struct store_hit *h);

/* Run q: up to q->count hits in order (more, one past the page, is reported
 * by *more), *total (when wanted) the number of matches. */
int store_search(struct store *s, const struct store_query *q, store_hit_fn fn, void *ctx,
		 bool *more, int64_t *total, struct err *e);

/* Resources that rkeys[] refer to through reference parameter pid (0: any),
 * of type target (NULL: any) - _include; or, with reverse, resources of type
 * target that refer to rkeys[] through pid - _revinclude. */
int store_search_refs(struct store *s, const int64_t *rkeys, size_t n, uint32_t pid,
		      const char *target, bool reverse, store_hit_fn fn, void *ctx, struct err *e);

/* Ids for search parameter definitions, by canonical url: pids[i] for
 * urls[i], assigned (and kept) the first time a url is seen. */
int store_param_ids(struct store *s, const char *const *urls, const char *const *codes,
		    const char *const *types, size_t n, uint32_t *pids, struct err *e);

/* ---- users and tokens ---- */

#define STORE_NAME_MAX 64
#define STORE_ROLE_MAX 32
#define STORE_HASH_MAX 128  /* crypto_pwhash_STRBYTES */
#define STORE_SCOPES_MAX 1024

struct store_user {
	int64_t uid;
	char username[STORE_NAME_MAX + 1];
	char role[STORE_ROLE_MAX + 1];
	char pw_hash[STORE_HASH_MAX + 1];
	char practitioner[128];  /* "Practitioner/id" or "" */
	bool active;
	int failed_logins;
	int64_t locked_until_ms;
	int64_t created_ms;
};

/* ERR_CONFLICT if the username is taken. */
int store_user_add(struct store *s, struct store_user *u, struct err *e);
/* ERR_NOT_FOUND if there is no such user. */
int store_user_get(struct store *s, const char *username, struct store_user *out,
		   struct err *e);
int store_user_set_password(struct store *s, const char *username, const char *pw_hash,
			    struct err *e);
/* Users in username order. */
typedef int (*store_user_fn)(void *ctx, const struct store_user *u);
int store_user_list(struct store *s, store_user_fn fn, void *ctx, struct err *e);

struct store_token {
	unsigned char hash[32];  /* BLAKE2b of the token; the token itself is never stored */
	int64_t uid;
	char kind[16];           /* "access", "refresh" */
	char scopes[STORE_SCOPES_MAX];
	int64_t issued_ms;
	int64_t expires_ms;
	char client_id[65];      /* issued to this registered client, or ""; uid 0: the client's own */
	char patient[65];        /* launch context (a Patient id), or "" */
	unsigned char family[16];  /* the refresh chain it belongs to (when has_family) */
	bool has_family;
	bool revoked;            /* read by store_token_get; ignored when adding */
};

struct store_principal {
	int64_t uid;
	char username[STORE_NAME_MAX + 1];
	char role[STORE_ROLE_MAX + 1];
	char scopes[STORE_SCOPES_MAX];
	char practitioner[128];
	char patient[65];        /* launch context of patient/ scopes: a Patient id, or "" */
	char client_id[65];      /* the registered client the token was issued to, or "" */
	int64_t expires_ms;
};

int store_token_add(struct store *s, const struct store_token *t, struct err *e);
/* The principal behind a token hash.  ERR_UNAUTHENTICATED if unknown,
 * expired, revoked, not an access token (kind), or its user or client is
 * inactive.  Fills patient and client_id (see "OAuth clients" below). */
int store_token_lookup(struct store *s, const unsigned char hash[32], int64_t now_ms,
		       struct store_principal *out, struct err *e);
/* ERR_NOT_FOUND if no such token. */
int store_token_revoke(struct store *s, const unsigned char hash[32], struct err *e);

/* ---- audit trail ----
 *
 * Entries are written through store_txn.audit (above); these read and
 * check them.  Nothing here, nor anywhere, changes or deletes an entry. */

#define STORE_AUDIT_KEY_BYTES 64   /* crypto_sign_SECRETKEYBYTES */
#define STORE_AUDIT_PUB_BYTES 32   /* crypto_sign_PUBLICKEYBYTES */

/* A new Ed25519 key pair: path (secret, mode 0600) and path.pub.  Refuses
 * to overwrite (ERR_CONFLICT). */
int store_audit_keygen(const char *path, struct err *e);
/* The public key from a key file (secret or .pub). */
int store_audit_pubkey(const char *path, unsigned char pk[STORE_AUDIT_PUB_BYTES], struct err *e);

struct store_audit_report {
	int64_t entries;        /* entries checked */
	int64_t checkpoints;    /* checkpoints checked (signature and hash) */
	int64_t last_seq;
	int64_t bad_seq;        /* the first entry found wrong; 0: none */
	char why[256];          /* what is wrong there */
	bool unsigned_tail;     /* entries after the last checkpoint (not covered by a signature) */
};

/* Walk the chain from the first entry: sequence, hashes, checkpoints (their
 * signatures when pk is given, and that the entry they name still has the
 * hash they signed).  Returns 0 with r->bad_seq == 0 when everything holds;
 * 0 with r->bad_seq and r->why at the first fault; -1 when the database
 * cannot be read. */
int store_audit_verify(struct store *s, const unsigned char *pk, struct store_audit_report *r,
		       struct err *e);

struct store_audit_q {
	const char *patient;    /* entries naming Patient/id; NULL: any */
	const char *agent;      /* the user's name; NULL: any */
	int64_t from_ms, to_ms; /* [from, to); INT64_MIN / INT64_MAX: open */
	int64_t before_seq;     /* paging: entries with seq < this; 0: from the newest */
	size_t count;
};
struct store_audit_entry {
	int64_t seq, ts;
	const char *json;       /* valid during the callback */
	size_t len;
};
typedef int (*store_audit_fn)(void *ctx, const struct store_audit_entry *en);
/* Entries newest first.  *more: there are older ones. */
int store_audit_search(struct store *s, const struct store_audit_q *q, store_audit_fn fn, void *ctx,
		       bool *more, struct err *e);
/* One entry by seq; ERR_NOT_FOUND. */
int store_audit_get(struct store *s, int64_t seq, store_audit_fn fn, void *ctx, struct err *e);

/* ---- maintenance ---- */

/* PRAGMA integrity_check (or the backend's equivalent): ERR_DB with the first
 * problem in the detail if the database is damaged. */
int store_check(struct store *s, struct err *e);

/* ---- bulk data export (sqlite_export.c) ----
 *
 * A job's state and the list of files it wrote are rows (export_job,
 * export_file), written on the admin connection; the files themselves are
 * the FHIR layer's business.  The resources are read through a snapshot: one
 * read transaction on a reader connection of its own, so every type of one
 * export sees the same database, however long it takes. */

/* The path the store was opened with (exports go beside it by default). */
const char *store_path(const struct store *s);

enum store_export_level { SXL_SYSTEM = 1, SXL_PATIENT, SXL_GROUP };
enum store_export_state { SXS_QUEUED = 1, SXS_RUNNING, SXS_DONE, SXS_FAILED };

#define STORE_EXPORT_JOB_LEN 32      /* lower-case hex digits */
#define STORE_EXPORT_TYPES_MAX 4096  /* _type, comma-separated */
#define STORE_EXPORT_REQUEST_MAX 4096
#define STORE_EXPORT_NAME_MAX 96     /* "MedicationKnowledge-12.ndjson" */

struct store_export_job {
	char job[STORE_EXPORT_JOB_LEN + 1];
	int64_t uid;                 /* who started it */
	int level;                   /* enum store_export_level */
	char group_id[65];
	char types[STORE_EXPORT_TYPES_MAX];   /* "" means every type */
	int64_t since_ms;            /* INT64_MIN: no _since */
	char request[STORE_EXPORT_REQUEST_MAX];
	int state;                   /* enum store_export_state */
	int64_t created_ms, finished_ms, tx_time_ms, expires_ms;
	int64_t resources, bytes;
	char error[ERR_MSG_MAX];     /* SXS_FAILED: for the client */
};

struct store_export_file {
	char type[64];
	char name[STORE_EXPORT_NAME_MAX];
	int64_t count, bytes;
};

/* A new job (its state as given).  ERR_CONFLICT if the id is taken. */
int store_export_job_add(struct store *s, const struct store_export_job *j, struct err *e);
/* ERR_NOT_FOUND if there is no such job. */
int store_export_job_get(struct store *s, const char *job, struct store_export_job *out,
			 struct err *e);
/* Record j's state, finished/tx_time/expires times, counts and error, and
 * replace the job's files by files[0..n), in one transaction.  ERR_NOT_FOUND
 * if the job is gone (deleted meanwhile). */
int store_export_job_update(struct store *s, const struct store_export_job *j,
			    const struct store_export_file *files, size_t n, struct err *e);
/* The job and its file rows.  ERR_NOT_FOUND if there is no such job. */
int store_export_job_delete(struct store *s, const char *job, struct err *e);
/* Every job (expires_before_ms <= 0), or only the finished ones that expire
 * at or before expires_before_ms.  fn: 0 go on, 1 stop, -1 fail. */
typedef int (*store_export_job_fn)(void *ctx, const struct store_export_job *j);
int store_export_job_list(struct store *s, int64_t expires_before_ms, store_export_job_fn fn,
			  void *ctx, struct err *e);
/* The files of a job in manifest order. */
typedef int (*store_export_file_fn)(void *ctx, const struct store_export_file *f);
int store_export_files(struct store *s, const char *job, store_export_file_fn fn, void *ctx,
		       struct err *e);
/* One file of a job by name.  ERR_NOT_FOUND if the job has no such file. */
int store_export_file_get(struct store *s, const char *job, const char *name,
			  struct store_export_file *out, struct err *e);

struct store_snapshot;

/* Begin a snapshot.  *last_ts_ms is the newest lastUpdated it holds (0 for
 * an empty database): nothing written later is seen.  A long snapshot keeps
 * the WAL from being checkpointed past it; end it promptly. */
int store_snapshot_begin(struct store *s, struct store_snapshot **out, int64_t *last_ts_ms,
			 struct err *e);
void store_snapshot_end(struct store_snapshot *snap);

/* Which current, not deleted resources an export reads. */
struct store_export_q {
	const char *type;            /* NULL: every type, in the order they were first
					written (ids must be NULL: ids are per type) */
	int64_t since_ms;            /* meta.lastUpdated >= since; INT64_MIN: all */
	const char *const *ids;      /* only these ids; NULL: any */
	size_t nids;
	/* ref_type not NULL: only resources that refer, through one of the
	 * reference parameters pids, to a current resource of ref_type (one of
	 * ref_ids, when not NULL) - a compartment */
	const char *ref_type;
	const uint32_t *pids;
	size_t npids;
	const char *const *ref_ids;
	size_t nref_ids;
};

/* Deliver the resources q selects to fn (json borrowed, valid during the
 * call), in an order that follows an index (no sort).  fn: 0 go on, 1 stop,
 * -1 fail (the error is the caller's). */
int store_export_scan(struct store_snapshot *snap, const struct store_export_q *q,
		      store_version_fn fn, void *ctx, struct err *e);

/* ---- break-the-glass ---- */

/* sqlite_btg.c, migrate_sqlite_0005_privacy.sql.  One row per grant: who
 * broke the glass on which patient, why, and until when.  Rows are written
 * on the admin connection and never changed or removed (the privacy
 * officer's report reads them all). */

#define STORE_BTG_REASON_MAX 500   /* bytes */
#define STORE_BTG_SOURCE_MAX 64

struct store_btg {
	int64_t id;                        /* assigned by store_btg_add */
	int64_t uid;
	char username[STORE_NAME_MAX + 1];
	char role[STORE_ROLE_MAX + 1];
	char patient[65];                  /* Patient id */
	char reason[STORE_BTG_REASON_MAX + 1];
	int64_t granted_ms, until_ms;
	char source[STORE_BTG_SOURCE_MAX]; /* client address, or "" */
};

/* Record a grant; g->id receives its row id. */
int store_btg_add(struct store *s, struct store_btg *g, struct err *e);
/* *until_ms: the latest end of uid's grants on patient that are active at
 * now_ms (granted <= now < until), or 0 if there is none. */
int store_btg_until(struct store *s, int64_t uid, const char *patient, int64_t now_ms,
		    int64_t *until_ms, struct err *e);
/* Grants made at or after since_ms, oldest first.  fn: 0 go on, 1 stop,
 * -1 fail (the error is the caller's). */
typedef int (*store_btg_fn)(void *ctx, const struct store_btg *g);
int store_btg_list(struct store *s, int64_t since_ms, store_btg_fn fn, void *ctx, struct err *e);

/* ---- OAuth clients ---- */

/* sqlite_auth.c, migrate_sqlite_0006_auth.sql.  Registered system clients
 * (grant_type=client_credentials), and what the token endpoint needs beyond
 * store_token_add and store_token_lookup: tokens added together, a token's
 * row by hash, refresh-token rotation and family revocation, users by uid,
 * and the failed-login counter.  All writes go through the admin connection.
 *
 * A token of a client alone has uid 0 and client_id set; store_token_lookup
 * gives its principal uid = -ckey (app_user uids are positive), username and
 * client_id = the client's id, and the client's role.  A disabled client's
 * tokens stop working. */

#define STORE_CLIENT_ID_MAX 64

struct store_client {
	int64_t ckey;
	char client_id[STORE_CLIENT_ID_MAX + 1];
	char role[STORE_ROLE_MAX + 1];
	char secret_hash[STORE_HASH_MAX + 1];
	char scopes[STORE_SCOPES_MAX];  /* the most it may ask for; "" any system/ scope */
	bool active;
	int64_t created_ms;
};

/* c->ckey (and created_ms when 0) are set.  ERR_CONFLICT if the id is taken. */
int store_client_add(struct store *s, struct store_client *c, struct err *e);
/* ERR_NOT_FOUND if there is no such client. */
int store_client_get(struct store *s, const char *client_id, struct store_client *out,
		     struct err *e);
/* Clients in client_id order.  fn: 0 go on, non-zero stop. */
typedef int (*store_client_fn)(void *ctx, const struct store_client *c);
int store_client_list(struct store *s, store_client_fn fn, void *ctx, struct err *e);
/* ERR_NOT_FOUND if there is no such client. */
int store_client_set_active(struct store *s, const char *client_id, bool active,
			    struct err *e);

/* t[0..n) in one transaction: all or none. */
int store_tokens_add(struct store *s, const struct store_token *t, size_t n, struct err *e);
/* A token's row by hash, revoked or expired as it may be (out->revoked).
 * ERR_NOT_FOUND if there is none. */
int store_token_get(struct store *s, const unsigned char hash[32], struct store_token *out,
		    struct err *e);
/* Refresh rotation, in one transaction: revoke old_hash and add t[0..n) -
 * only if old_hash was live.  ERR_CONFLICT if it was already revoked (used
 * twice, or by two requests at once: the caller revokes the family). */
int store_token_rotate(struct store *s, const unsigned char old_hash[32],
		       const struct store_token *t, size_t n, struct err *e);
/* Revoke every token of a family; *n (may be NULL): how many were live. */
int store_token_revoke_family(struct store *s, const unsigned char family[16], int *n,
			      struct err *e);

/* ERR_NOT_FOUND if there is no such user. */
int store_user_get_uid(struct store *s, int64_t uid, struct store_user *out, struct err *e);
/* A wrong password: failed_logins + 1; reaching max_failures (> 0) locks the
 * user until lock_until_ms and starts the count again (*locked: this failure
 * locked it).  max_failures 0 only counts. */
int store_user_login_failed(struct store *s, int64_t uid, int max_failures,
			    int64_t lock_until_ms, bool *locked, struct err *e);
/* A successful login: failed_logins and locked_until back to 0. */
int store_user_login_ok(struct store *s, int64_t uid, struct err *e);

/* ---- HL7 v2 inbox ---- */

/* sqlite_hl7.c, migrate_sqlite_0007_hl7.sql (states and rules there).
 * Receiving and marking run on the writer, inside the group commit, so a
 * message is on disk before its ACK and its processed state commits with
 * its FHIR writes. */

enum store_hl7_state {
	STORE_HL7_PENDING = 0, STORE_HL7_PROCESSED, STORE_HL7_ERROR, STORE_HL7_REJECTED
};

#define STORE_HL7_TEXT_MAX 200     /* bytes kept of MSH-3/4/10 */

struct store_hl7_msg {
	int64_t id;
	int64_t received_ms;
	char peer[64];
	char sending_app[STORE_HL7_TEXT_MAX + 1];
	char sending_fac[STORE_HL7_TEXT_MAX + 1];
	char control_id[STORE_HL7_TEXT_MAX + 1];
	char msg_type[32];
	unsigned char hash[16];
	char *raw;                 /* reads: malloc'd (store_hl7_msg_release);
				      store_hl7_receive_txn: borrowed */
	size_t raw_len;
	int state;                 /* enum store_hl7_state */
	char ack[3];               /* "AA", "AR", ... */
	int64_t collision;         /* the earlier row with this MSH-10, or 0 */
	char reason[ERR_MSG_MAX];
	int attempts;
	int64_t processed_ms;
	bool duplicate;            /* receive: a resend of row id; nothing stored */
};

void store_hl7_msg_release(struct store_hl7_msg *m);
/* Make t (no operations) store m when it commits: m->id is set, or, for a
 * resend of a stored message, m->duplicate with m->id, state and ack of the
 * first.  A pending message with the MSH-10 of another gets m->collision.
 * m must stay valid until t is done. */
void store_hl7_receive_txn(struct store_txn *t, struct store_hl7_msg *m);

struct store_hl7_ack;

struct store_hl7_mark {
	int64_t id;
	int state;                 /* STORE_HL7_PROCESSED or STORE_HL7_ERROR */
	const char *reason;        /* "" or NULL for none */
	/* the application ACK this outcome owes the sender (enhanced mode,
	 * MSH-16), queued in the same transaction as the state; NULL: none.
	 * A second ACK with the same (inbox id, code) is not queued again. */
	const struct store_hl7_ack *ack;
};
/* Make t (a transaction with operations) also set row mk->id's state when it
 * commits; fails t with ERR_CONFLICT if the row was processed meanwhile
 * (so a message is never applied twice).  mk must outlive t. */
void store_hl7_mark_txn(struct store_txn *t, struct store_hl7_mark *mk);
/* Set a row's state alone (an error after a failed transaction, or
 * pending again for a retry); attempts is counted for ERROR. */
int store_hl7_mark(struct store *s, const struct store_hl7_mark *mk, struct err *e);

/* Rows in one state with id > after, oldest first, at most max (0: all);
 * raw is NULL unless with_raw.  fn: 0 go on, 1 stop, -1 fail. */
typedef int (*store_hl7_fn)(void *ctx, const struct store_hl7_msg *m);
int store_hl7_list(struct store *s, int state, int64_t after, size_t max, bool with_raw,
		   store_hl7_fn fn, void *ctx, struct err *e);
/* One row with its raw text.  ERR_NOT_FOUND. */
int store_hl7_get(struct store *s, int64_t id, struct store_hl7_msg *out, struct err *e);
/* Rows per state (counts[4]). */
int store_hl7_counts(struct store *s, int64_t counts[4], struct err *e);

/* ---- HL7 v2 application acknowledgements (enhanced mode, MSH-16) ----
 * sqlite_hl7.c, migrate_sqlite_0011_hl7_app_ack.sql: the outbox of
 * application ACKs, queued by store_hl7_mark(_txn) with the outcome they
 * report and sent by src/hl7v2/appack.c. */

enum store_hl7_ack_state { STORE_HL7_ACK_WAITING = 0, STORE_HL7_ACK_SENT, STORE_HL7_ACK_FAILED };

struct store_hl7_ack {
	int64_t id;
	int64_t inbox_id;
	char code[3];              /* MSA-1: "AA", "AE", "AR" */
	char control_id[64];       /* MSH-10 of the ACK */
	char sending_app[STORE_HL7_TEXT_MAX + 1];
	char sending_fac[STORE_HL7_TEXT_MAX + 1];
	char *text;                /* the ACK (CR-separated segments); reads with
				      text: malloc'd (store_hl7_ack_release);
				      queueing: borrowed */
	size_t text_len;
	int state;                 /* enum store_hl7_ack_state */
	int attempts;
	int64_t created_ms, next_try_ms, sent_ms;
	char destination[96];      /* HOST:PORT of the last try */
	char last_error[ERR_MSG_MAX];
};

void store_hl7_ack_release(struct store_hl7_ack *a);
/* fn: 0 go on, 1 stop, -1 fail; a is valid during the call only. */
typedef int (*store_hl7_ack_fn)(void *ctx, const struct store_hl7_ack *a);
/* Waiting ACKs due at now_ms (next_try <= now_ms), oldest due first, at
 * most max, with their text. */
int store_hl7_ack_due(struct store *s, int64_t now_ms, size_t max, store_hl7_ack_fn fn, void *ctx,
		      struct err *e);
/* ACKs in id order (no text): all of them, or only those not sent
 * (waiting and failed). */
int store_hl7_ack_list(struct store *s, bool all, store_hl7_ack_fn fn, void *ctx, struct err *e);
/* Record a try of ACK a->id: its state, attempts, next_try_ms, destination
 * and last_error as given (sent_ms is set when the state is final).
 * ERR_NOT_FOUND. */
int store_hl7_ack_update(struct store *s, const struct store_hl7_ack *a, struct err *e);

#endif
