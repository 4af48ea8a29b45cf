/* mpi.h - the master patient index: merge and unmerge of Patient records,
 * and probabilistic matching (Fellegi-Sunter) of Patients.
 *
 * Merge and unmerge are domain operations: the REST edge ($merge,
 * $unmerge), the HL7 feed (ADT A40) and the CLI all call these functions,
 * which never speak HTTP.  Each writes every change - the two Patients,
 * every resource whose references move, and a Provenance recording what
 * was done - in one atomic store transaction that also carries its audit
 * entry.  Nothing is overwritten: each change is a new version.
 *
 * How a merge is recorded (docs/internals/mpi.md):
 *   - the source Patient: active = false, link {other: target, type: replaced-by}
 *   - the target Patient (or result-patient, when given): link {other: source,
 *     type: replaces}
 *   - every current resource that referred to Patient/<source> (found through
 *     the reference index) refers to Patient/<target> instead
 *   - a Provenance (activity iso-21089-lifecycle#merge) whose target lists
 *     the version of each resource the merge wrote and whose entity is the
 *     source Patient: what unmerge reads to put things back. */
#ifndef CK_MPI_H
#define CK_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "privacy/audit.h"
#include "store/store.h"

#define MPI_LIFECYCLE_SYSTEM "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"

/* What a merge or unmerge did (or, with preview, would do). */
struct mpi_merge_out {
	size_t moved;            /* resources whose references moved */
	char provenance[ID_MAX + 1]; /* the Provenance written ("" for a preview) */
	bool audited;            /* the audit entry was written with the changes (or the
				    failed commit): the caller must not audit again */
};

/* Merge Patient/source_id into Patient/target_id.
 *
 * cfg: the store and the search parameters (needed: the references that
 * move are found through the reference index, and rewritten resources get
 * their index rows).  who: the person or system merging (Provenance.agent
 * and the audit entry).  ai: the caller's audit entry for this request, or
 * NULL: an entry is made from who (interaction "$merge").  result_json
 * (may be NULL): the Patient the target must become (its id must be
 * target_id); a replaces link to the source is added if it lacks one.
 * preview: nothing is written; out_result gets what would be.
 *
 * out_result (appended): a Parameters resource with "outcome" (an
 * OperationOutcome saying what was done) and "result" (the target Patient
 * as stored, or as it would be).  out may be NULL.
 *
 * Errors: ERR_INVALID (ids malformed, the same patient twice, a bad
 * result-patient), ERR_NOT_FOUND / ERR_GONE (a patient missing or deleted),
 * ERR_CONFLICT (the source is already merged, the target is itself merged
 * into another, or the records kept changing while the merge was tried),
 * ERR_DB and friends from the store.  On error nothing is written. */
int mpi_merge(const struct fhir_config *cfg, const struct store_principal *who,
	      struct audit_info *ai, const char *source_id, const char *target_id,
	      const char *result_json, bool preview, struct buf *out_result,
	      struct mpi_merge_out *out, struct err *e);

/* Undo the latest merge of Patient/source_id into Patient/target_id: every
 * resource that merge moved refers to the source again (a resource left as
 * the merge wrote it gets back its version from before the merge; one
 * changed since has its references to the target moved back), the source
 * is active again without its replaced-by link, the target loses its
 * replaces link (or, if unchanged since, gets back its version from before
 * the merge).  A Provenance (activity unmerge) records it.  Same arguments
 * and output as mpi_merge; ERR_CONFLICT if the source is not merged into
 * the target. */
int mpi_unmerge(const struct fhir_config *cfg, const struct store_principal *who,
		struct audit_info *ai, const char *source_id, const char *target_id,
		bool preview, struct buf *out_result, struct mpi_merge_out *out, struct err *e);

/* The Patient a merged Patient was merged into: *merged is set when json
 * (a Patient) carries link.type = replaced-by, and into (cap bytes) gets
 * the other patient's id. */
void mpi_replaced_by(const char *json, size_t len, bool *merged, char *into, size_t cap);

/* ---- blocking keys as search index rows (feature.c) ---- */

#define MPI_KEYS_MAX 7
#define MPI_KEY_TEXT 17
#define MPI_KEY_SYSTEM "mpi"
/* The blocking keys of a Patient (none for one merged into another), as
 * text: the search index keeps them (token rows, pid STORE_PID_MPI) so
 * that $match and incremental matching find candidates with one indexed
 * look-up.  Returns how many. */
size_t mpi_patient_keys(json_object *patient, char keys[MPI_KEYS_MAX][MPI_KEY_TEXT]);

/* ---- matching one Patient (match.c) ---- */

/* $match: the Patients that may be the same person as patient (a parsed,
 * validated Patient), best first, at most count (onlyCertainMatches: the
 * ones the model would link), as a searchset Bundle with search.score
 * and the match-grade extension (certain, probable, possible) appended to
 * out.  visible (may be NULL) leaves out those the requester may not see. */
int mpi_match(const struct fhir_config *cfg, json_object *patient, size_t count, bool only_certain,
	      const char *base, bool (*visible)(void *, const char *, const char *, const char *, size_t),
	      void *vctx, struct buf *out, struct err *e);

/* Auto-link (a setting of the process, on by default; serve and import
 * --mpi-auto-link on|off): a pair above the upper threshold that passes
 * the twin guards is linked - Patient.link type seealso on both, new
 * versions written as the system principal, audited, with a Provenance -
 * and gets its review Task at once; never merged.  Off: only the Task. */
void mpi_auto_link_set(bool on);
bool mpi_auto_link_on(void);

/* Incremental matching of Patient/id against the index: every new pair at
 * or above the review threshold becomes a review Task (above the upper
 * threshold: urgent, and linked when auto-link is on), unless the pair is
 * queued already, linked already, or was decided "not a duplicate".
 * *queued (may be NULL) counts the Tasks made, *linked (may be NULL) the
 * pairs linked. */
int mpi_incremental_one(const struct fhir_config *cfg, const char *id, size_t *queued, size_t *linked,
			struct err *e);

/* Task/task_id was written: if it is the review Task of an auto-linked
 * pair decided "not a duplicate", the pair's seealso links are removed
 * (*unlinked set).  Anything else: nothing. */
int mpi_review_decided(const struct fhir_config *cfg, const char *task_id, bool *unlinked, struct err *e);

/* The worker that runs mpi_incremental_one for every Patient written:
 * fhir_after_commit pushes each committed transaction's Patient writes
 * (cfg->mpi_incr).  stop drains the queue first; wait only drains it. */
struct mpi_incr;
struct mpi_incr *mpi_incr_start(const struct fhir_config *cfg, struct err *e);
void mpi_incr_push(struct mpi_incr *q, const struct store_txn *t);
void mpi_incr_wait(struct mpi_incr *q);
/* Items waiting, one being handled, Patients matched so far, Tasks made,
 * pairs linked and unlinked (q may be NULL: all zero). */
void mpi_incr_status(struct mpi_incr *q, size_t *queued, bool *busy, uint64_t *done, uint64_t *tasks,
		     uint64_t *linked, uint64_t *unlinked);
void mpi_incr_stop(struct mpi_incr *q);

/* GET /mpi/report (report.c): patients and merged ones, the estimated
 * duplicate rate (from a random sample of sample patients matched against
 * the index), review items open and decided, possible overlays (updates
 * that changed the birth date together with the sex or given name).  JSON
 * appended to out; patients are named by id only. */
int mpi_report(const struct fhir_config *cfg, size_t sample, struct buf *out, struct err *e);

/* ---- the operations, as the server hands them over (op.c) ---- */

enum mpi_op { MPI_OP_MERGE = 1, MPI_OP_UNMERGE, MPI_OP_MATCH, MPI_OP_REPORT };

/* The parameters of $merge, $unmerge and $match (a Parameters resource). */
struct mpi_params {
	char source[ID_MAX + 1], target[ID_MAX + 1];  /* source-/target-patient ids, or "" */
	struct buf source_ident, target_ident;        /* "system|value", or empty */
	char *result_json;        /* result-patient (malloc'd), or NULL */
	bool preview;
	json_object *resource;    /* $match: the Patient to match, or NULL */
	bool only_certain;        /* $match: onlyCertainMatches */
	int count;                /* $match: count (0: not given) */
};

/* Parse a Parameters body.  ERR_INVALID naming the parameter (expr
 * Parameters.parameter[i]) for anything malformed or unknown.  On success
 * release p with mpi_params_release. */
int mpi_params_parse(const char *body, size_t len, int max_depth, struct mpi_params *p,
		     struct err *e);
void mpi_params_release(struct mpi_params *p);

struct mpi_op_req {
	int op;                    /* enum mpi_op */
	const char *body;
	size_t body_len;
	const char *base;          /* for fullUrl */
	const struct store_principal *who;
	struct audit_info *ai;     /* the request's audit entry */
	/* $match: may the requester see this Patient?  NULL: yes */
	bool (*visible)(void *ctx, const char *type, const char *id, const char *json, size_t len);
	void *visible_ctx;
	const struct fhir_param *params;  /* query parameters (GET /mpi/report) */
	size_t n_params;
};

/* Answer one operation into resp (status and body; an OperationOutcome on
 * error).  Returns 1 if the request's audit entry was written with the
 * changes (merge, unmerge: the caller must not audit again), 0 if the
 * caller audits the answer. */
int mpi_operation(const struct fhir_config *cfg, const struct mpi_op_req *rq, struct fhir_resp *resp);

#endif
