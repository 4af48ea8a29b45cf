/* fhir.h - FHIR R4 resources: validation, OperationOutcome, preparation for
 * the store, and the REST interactions (read, vread, create, update, patch,
 * delete, history, transaction/batch, capabilities).
 *
 * This module never speaks HTTP: the server turns a request into a struct
 * fhir_req, and a struct fhir_resp (status, headers as plain fields, body)
 * back into a response.  Writes happen in two steps so the server can wait
 * for the store's group commit without holding a thread:
 *
 *   fhir_begin(req, resp)  -> FHIR_DONE (resp complete) or FHIR_COMMIT
 *   FHIR_COMMIT: commit resp->txn (store_submit / store_commit), then
 *   fhir_finish(req, resp) -> resp complete
 */
#ifndef CK_FHIR_H
#define CK_FHIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "fhir/model.h"
#include "store/store.h"

/* ---- OperationOutcome ---- */

enum fhir_severity { FHIR_FATAL, FHIR_ERROR, FHIR_WARNING, FHIR_INFORMATION };

#define FHIR_MAX_ISSUES 20

struct fhir_issue {
	int severity;          /* enum fhir_severity */
	const char *code;      /* IssueType: "structure", "value", "required", ... */
	char msg[ERR_MSG_MAX];
	char expr[ERR_EXPR_MAX];
};

struct fhir_issues {
	size_t n;
	size_t dropped;        /* issues past FHIR_MAX_ISSUES */
	size_t errors;         /* fatal + error */
	int status;            /* the HTTP status they stand for, when not 400 (0) */
	struct fhir_issue v[FHIR_MAX_ISSUES];
};

void fhir_issues_init(struct fhir_issues *iss);
void fhir_issue_add(struct fhir_issues *iss, int severity, const char *code, const char *expr,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* One issue from an error (its message and expression). */
void fhir_issues_from_err(struct fhir_issues *iss, const struct err *e);
/* The IssueType code for an error code. */
const char *fhir_issue_code(int err_code);
/* An OperationOutcome resource (appended to out). */
void fhir_outcome_write(const struct fhir_issues *iss, struct buf *out);

/* ---- validation ---- */

/* Check a parsed resource against the R4 StructureDefinitions: resourceType,
 * unknown elements, JSON shapes (array or not), cardinality, required
 * elements, choice types, primitive formats, contained resources, reference
 * formats and target types.  expect_type, when not NULL, is the type the
 * resource must have.  Returns the number of errors added to iss. */
size_t fhir_validate(json_object *res, const char *expect_type, struct fhir_issues *iss);

/* ---- preparation for the store ---- */

struct fhir_params;
struct fhir_config;

struct fhir_prepared {
	char type[64];
	char id[ID_MAX + 1];
	struct buf meta_rest;  /* meta members other than versionId/lastUpdated */
	struct buf body;       /* members after resourceType, id and meta */
	unsigned char chash[16];
	struct store_ix_row *ix; /* search index rows (with params) */
	size_t n_ix;
	void *ixrows;          /* private: struct fhir_ixrows */
};

void fhir_prepared_init(struct fhir_prepared *p);
void fhir_prepared_release(struct fhir_prepared *p);
/* Split a validated resource into the fragments struct store_op takes, with
 * id as its id (the resource's own "id" is ignored), and, when params is not
 * NULL, extract its search index rows. */
int fhir_prepare(struct fhir_params *params, json_object *res, const char *id,
		 struct fhir_prepared *p, struct err *e);
/* After t committed: a SearchParameter written or deleted in it takes effect
 * (fhir_params_reload).  Called by whoever committed t. */
void fhir_after_commit(const struct fhir_config *cfg, const struct store_txn *t);
/* Fill op (kind, method, type, id, fragments, hash) from p; p must outlive op. */
void fhir_prepared_op(const struct fhir_prepared *p, struct store_op *op);

/* ---- REST interactions ---- */

enum fhir_interaction {
	FHIR_CAPABILITIES = 1,
	FHIR_READ,
	FHIR_VREAD,
	FHIR_CREATE,
	FHIR_UPDATE,
	FHIR_PATCH,
	FHIR_DELETE,
	FHIR_HISTORY_INSTANCE,
	FHIR_HISTORY_TYPE,
	FHIR_HISTORY_SYSTEM,
	FHIR_BATCH,            /* POST [base] with a transaction or batch Bundle */
	FHIR_SEARCH,           /* GET [base]/[type]?..., POST [base]/[type]/_search */
	FHIR_SEARCH_COMPARTMENT, /* GET [base]/Patient/[id]/[type]?... */
	FHIR_EVERYTHING,       /* GET [base]/Patient/[id]/$everything */
};

enum fhir_prefer { FHIR_RETURN_DEFAULT = 0, FHIR_RETURN_MINIMAL, FHIR_RETURN_REPRESENTATION,
		   FHIR_RETURN_OUTCOME };

struct fhir_param {
	const char *name;
	const char *value;
};

/* Server-wide settings the interactions need. */
struct fhir_config {
	struct store *store;
	struct fhir_params *params;   /* search parameters (search.h); NULL: no indexing */
	int max_depth;          /* JSON nesting */
	size_t max_bundle_entries;
	const char *software_version;
	bool bulk;              /* bulk load: Bundle responses are not built, so
				   the store need not hand back what it wrote */
	struct mpi_incr *mpi_incr; /* incremental patient matching (mpi/mpi.h): fed
				   every committed Patient write by fhir_after_commit;
				   NULL: none */
};

struct fhir_req {
	int interaction;
	const char *type, *id, *vid;     /* from the path; NULL when absent */
	const char *ctype;               /* compartment search: the type searched */
	const char *body;
	size_t body_len;
	const char *content_type;        /* NULL when absent */
	const char *if_match;            /* raw header */
	int prefer;                      /* enum fhir_prefer */
	bool strict;                     /* Prefer: handling=strict */
	const char *if_none_exist;       /* conditional create: a query */
	bool pretty;
	const char *base;                /* "http://host:port", no trailing slash */
	const struct fhir_param *params; /* query parameters, decoded */
	size_t n_params;
	struct arena *arena;             /* request lifetime */
	/* What the requester may see (sensitivity labels, break-the-glass), or
	 * NULL: everything.  Asked for each search match and include; false: the
	 * resource is left out of the answer and withheld is set. */
	bool (*visible)(void *ctx, const char *type, const char *id, const char *json, size_t len);
	void *visible_ctx;
	bool withheld;                   /* out: something was left out */
	/* Decide each entry of a batch or transaction Bundle on its own
	 * (interaction: FHIR_READ, FHIR_VREAD, FHIR_SEARCH, FHIR_CREATE,
	 * FHIR_UPDATE, FHIR_PATCH, FHIR_DELETE), ctx visible_ctx.  -1 with e
	 * (ERR_FORBIDDEN): the entry fails; in a transaction, the whole Bundle.
	 * NULL: every entry is allowed. */
	int (*decide)(void *ctx, int interaction, const char *type, struct err *e);
	/* May this content be written (create, update, patch: the resource's
	 * members as they will be stored, without resourceType, id and meta;
	 * update, patch, delete: also the current version, whole)?  json is as
	 * the server writes it (fhir_next_patient_ref applies);
	 * NULL when an update or delete finds nothing there.  -1 with e
	 * (ERR_FORBIDDEN): refused.  NULL hook: every write is allowed (the
	 * policy decided by type and action). */
	int (*may_write)(void *ctx, const char *type, const char *id, const char *json, size_t len,
			 struct err *e);
	bool no_total;                   /* the requester may not know how many there are */
};

enum fhir_step { FHIR_DONE = 0, FHIR_COMMIT = 1 };

struct fhir_plan;

struct fhir_resp {
	int status;
	struct buf body;                 /* JSON, or empty */
	char location[512];
	char etag[40];
	char last_modified[TIME_HTTP_MAX];
	char content_location[512];
	struct store_txn *txn;           /* with FHIR_COMMIT: what to commit */
	struct fhir_plan *plan;          /* private to fhir */
};

void fhir_resp_init(struct fhir_resp *r);
void fhir_resp_release(struct fhir_resp *r);
/* Set resp to an error: status from e->code, an OperationOutcome body. */
void fhir_resp_error(struct fhir_resp *r, const struct err *e);
void fhir_resp_issues(struct fhir_resp *r, int status, const struct fhir_issues *iss);
/* HTTP status for an error code. */
int fhir_http_status(int err_code);

/* Step one of an interaction; see the file comment. */
int fhir_begin(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp);
/* Step two, after resp->txn was committed (or failed). */
void fhir_finish(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp);

/* Search (search.c): FHIR_SEARCH, FHIR_SEARCH_COMPARTMENT, FHIR_EVERYTHING. */
int fhir_search(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp);
/* The next "reference":"Patient/<id>" in json[*from..len) (as the server
 * writes JSON: no spaces), for the labels and the audit trail, which need a
 * resource's patient without parsing it.  Returns the id's length (the id
 * is at json + *from - length) and moves *from past it; 0 when there is no
 * more.  Ids are checked as FHIR ids. */
size_t fhir_next_patient_ref(const char *json, size_t len, size_t *from);

/* The audit trail (auditlog.c): GET /AuditEvent?patient=&agent=&date=&_count=
 * (FHIR_SEARCH), GET /AuditEvent/[seq] (FHIR_READ), and
 * GET /Patient/[id]/$access-log (FHIR_EVERYTHING with req->id the patient).
 * Always FHIR_DONE. */
int fhir_auditlog(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp);
/* The ids of type matching query (a query string: "identifier=x|1&active=true"),
 * at most max (more: *n = max + 1).  For conditional create, update, delete
 * and references. */
int fhir_search_ids(const struct fhir_config *cfg, const char *type, const char *query,
		    char (*ids)[ID_MAX + 1], size_t max, size_t *n, struct err *e);

/* The CapabilityStatement (appended to out). */
void fhir_capabilities(const struct fhir_config *cfg, const char *base, struct buf *out);
/* ,"searchParam":[...],"searchInclude":[...],... for type (capability_search.c). */
void fhir_capability_search(const struct fhir_config *cfg, const char *type, struct buf *out);

/* ---- bundles, for import as well as the server ---- */

/* Plan a transaction or batch Bundle, given as text: validate every entry,
 * assign ids, rewrite urn:uuid references (transaction), and fill a txn
 * (owned by the plan).  Returns 0 with *plan and *txn set, or -1 with iss
 * holding the reasons, each naming its entry (Bundle.entry[i]...).  A batch
 * only fails as a whole for a malformed Bundle; a bad entry gets its own
 * error response.  Entries are parsed and prepared one at a time, so memory
 * stays near the size of the prepared resources, not of a parsed tree. */
struct fhir_bundle_plan;
/* fhir_bundle_plan for a request: its decide and visible hooks apply to the
 * entries (req may be NULL: none). */
int fhir_bundle_plan_req(const struct fhir_config *cfg, const struct fhir_req *req, const char *text,
			 size_t len, struct fhir_bundle_plan **plan, struct store_txn **txn,
			 struct fhir_issues *iss);
int fhir_bundle_plan(const struct fhir_config *cfg, const char *text, size_t len,
		     struct fhir_bundle_plan **plan, struct store_txn **txn,
		     struct fhir_issues *iss);
/* Is text a Bundle (1, with Bundle.type in type, "" if none) or another
 * resource (0)?  -1 with e set if its top level is malformed.  Reads only
 * the top-level members other than entry. */
int fhir_bundle_peek(const char *text, size_t len, char *type, size_t cap, struct err *e);
/* Each entry's resource, parsed one at a time: fn gets the resource (its
 * own reference), or NULL and why.  -1 if the Bundle itself is malformed. */
typedef void (*fhir_each_fn)(void *ctx, size_t entry, json_object *res, const struct err *e);
int fhir_bundle_each(const char *text, size_t len, int max_depth, fhir_each_fn fn, void *ctx,
		     struct err *e);
/* After the txn was committed: the transaction-response / batch-response
 * Bundle, or for a failed transaction an OperationOutcome naming the entry
 * (written to out).  Returns the HTTP status. */
int fhir_bundle_response(const struct fhir_config *cfg, struct fhir_bundle_plan *plan,
			 const char *base, int prefer, struct buf *out);
/* Entries of a plan. */
size_t fhir_bundle_entries(const struct fhir_bundle_plan *plan);
/* After the commit: call fn for every entry that failed (in planning or in
 * the store; for a failed transaction, the entry that made it fail) and
 * return the number of entries written. */
typedef void (*fhir_entry_fail_fn)(void *ctx, size_t entry, const struct err *e);
size_t fhir_bundle_report(const struct fhir_bundle_plan *plan, fhir_entry_fail_fn fn, void *ctx);
void fhir_bundle_plan_free(struct fhir_bundle_plan *plan);

#endif
