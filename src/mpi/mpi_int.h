/* mpi_int.h - shared between the files of src/mpi/, not for other modules. */
#ifndef CK_MPI_INT_H
#define CK_MPI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "mpi/mpi.h"

#define MPI_PHON_MAX 8
#define MPI_MAX_LEVELS 4
#define MPI_MISSING 255          /* a comparison level: a value is missing */

/* ---- text (text.c) ---- */

/* Lower case, accents and punctuation gone (one space between words),
 * with abbrev: common address abbreviations spelt out.  Appended to out. */
void mpi_normalise(const char *s, size_t n, bool abbrev, struct buf *out);
/* Jaro-Winkler similarity of two strings (bytes), 0..1. */
double mpi_jaro_winkler(const char *a, const char *b);
/* Damerau-Levenshtein (optimal string alignment) distance, or max + 1 if it
 * is more than max. */
int mpi_damerau(const char *a, const char *b, int max);
/* NYSIIS code of a name (letters only; "" for none). */
void mpi_nysiis(const char *s, char out[MPI_PHON_MAX + 1]);

/* ---- nicknames (nick.c) ---- */

/* The canonical given name of a (normalised) name: "bill" -> "william"
 * (a variant of several: the first in data/mpi/nicknames.csv); the name
 * itself when it is none of the variants.  For blocking keys. */
const char *mpi_nick_canon(const char *name);
/* Are a and b variants of one name (the same canonical name among all the
 * ones each may stand for)? */
bool mpi_nick_same(const char *a, const char *b);

/* ---- features (feature.c) ---- */

enum mpi_field {
	MF_GIVEN, MF_FAMILY, MF_MIDDLE, MF_SEX, MF_BIRTH, MF_LINE, MF_LINE2, MF_CITY, MF_POSTAL,
	MF_STATE, MF_PHONE, MF_EMAIL, MF_IDENT, MF__N
};

/* A Patient as the matcher sees it: normalised strings (NULL when
 * missing), in an arena. */
struct mpi_rec {
	const char *id;
	const char *f[MF__N];     /* MF_IDENT: "system|value" lines, '\n' between */
	const char *given_canon;  /* nickname canonical form of f[MF_GIVEN] */
	char given_ph[MPI_PHON_MAX + 1], family_ph[MPI_PHON_MAX + 1];
	int32_t birth;            /* yyyymmdd, 0 when missing */
	bool merged;              /* replaced-by another: not matched */
	bool inactive;
};

/* Fill r from a Patient (parsed); strings go to a. */
void mpi_rec_from_json(json_object *pat, const char *id, struct arena *a, struct mpi_rec *r);
/* The same from the stored JSON text.  -1 if it does not parse. */
int mpi_rec_from_text(const char *json, size_t len, const char *id, struct arena *a,
		      struct mpi_rec *r);

/* ---- blocking keys (feature.c) ---- */

#define MPI_NKEYS 7
/* The blocking keys of r (0: none for that kind), as 64-bit hashes:
 * 0 phonetic family + birth year + given initial, 1 birth date + the first
 * initial of the two names, 2 phone, 3 postal code + phonetic given, 4-5
 * identifiers, 6 the two phonetic names in either order + birth decade. */
void mpi_keys(const struct mpi_rec *r, uint64_t k[MPI_NKEYS]);
/* The key's text form (for index rows), "" for none. */
void mpi_key_text(uint64_t k, char out[17]);

/* ---- the comparison table and the model (model.c) ---- */

enum mpi_cmp_kind { MC_NAME = 1, MC_STRING, MC_DATE, MC_EXACT, MC_CODE, MC_IDENT };

struct mpi_cmp_def {
	const char *name;
	int kind;                 /* enum mpi_cmp_kind */
	int field;                /* enum mpi_field */
	int nlevels;              /* the last level is "disagree" */
	const char *levels[MPI_MAX_LEVELS];
	double m[MPI_MAX_LEVELS]; /* defaults before training */
	double u[MPI_MAX_LEVELS];
};

extern const struct mpi_cmp_def mpi_cmps[];
extern const size_t mpi_ncmps;
#define MPI_NCMP 13           /* rows of mpi_cmps (checked at start-up) */

struct mpi_model {
	double m[MPI_NCMP][MPI_MAX_LEVELS];
	double u[MPI_NCMP][MPI_MAX_LEVELS];
	double w[MPI_NCMP][MPI_MAX_LEVELS];   /* log2(m/u), from m and u */
	double lambda;            /* prior share of matches among candidate pairs */
	double upper, lower;      /* thresholds on the match probability */
	bool trained;
	int64_t trained_ms;
	size_t trained_pairs;
};

/* The defaults (the m/u of the table, lambda and thresholds). */
void mpi_model_default(struct mpi_model *m);
/* w from m and u. */
void mpi_model_weights(struct mpi_model *m);

/* Compare two records: one level per comparison (MPI_MISSING when a side
 * lacks the value). */
void mpi_compare(const struct mpi_rec *a, const struct mpi_rec *b, uint8_t lv[MPI_NCMP]);
/* The match weight (sum of log2 m/u, missing ones add nothing) and the
 * match probability (with the model's prior). */
double mpi_weight(const struct mpi_model *m, const uint8_t lv[MPI_NCMP]);
double mpi_probability(const struct mpi_model *m, double weight);
/* The match weight of a and b (levels into lv), or -INFINITY as soon as it
 * cannot reach min_weight (lv is then incomplete): cheap comparisons go
 * first.  mpi_min_weight: the weight a probability needs. */
double mpi_score_bounded(const struct mpi_model *m, const struct mpi_rec *a, const struct mpi_rec *b,
			 double min_weight, uint8_t lv[MPI_NCMP]);
double mpi_min_weight(const struct mpi_model *m, double prob);
/* What to do with a pair: below the lower threshold nothing, between the
 * two review, above the upper link - except a pair whose given names or
 * sexes disagree (twins), which only an exact identifier may link. */
enum mpi_decision { MPI_NONE = 0, MPI_REVIEW, MPI_LINK };
int mpi_decide(const struct mpi_model *m, double prob, const uint8_t lv[MPI_NCMP]);

/* Expectation-maximisation of m, u and lambda from comparison vectors
 * (n of them, MPI_NCMP levels each).  fix_u: keep u (estimated from random
 * pairs) and estimate m and lambda only.  Returns the iterations run. */
int mpi_em(struct mpi_model *m, const uint8_t *lv, size_t n, bool fix_u, int max_iter);
/* u estimated from pairs of random records. */
void mpi_estimate_u(struct mpi_model *m, const struct mpi_rec *recs, size_t n, size_t samples,
		    uint64_t seed);

/* The model as a Basic resource (its JSON) and back. */
void mpi_model_json(const struct mpi_model *m, struct buf *out);
int mpi_model_from_json(json_object *basic, struct mpi_model *m, struct err *e);
#define MPI_MODEL_ID "mpi-model"
/* The model stored in the database (Basic/mpi-model), or the defaults. */
int mpi_model_load(struct store *s, struct mpi_model *m, struct err *e);
/* Store m as Basic/mpi-model (a new version), audited with ai (may be NULL). */
int mpi_model_save(struct store *s, struct fhir_params *params, struct audit_info *ai,
		   const struct mpi_model *m, struct err *e);

/* ---- the review queue (review.c) ---- */

#define MPI_CODE_SYSTEM "http://chartkeep.org/fhir/CodeSystem/mpi"
#define MPI_REVIEW_CODE "mpi-review"

/* The pairs never to propose again: review Tasks completed with
 * businessStatus not-duplicate (with _queued: also the open ones). */
struct mpi_skip;
int mpi_skip_load(struct store *s, struct mpi_skip **out, struct err *e);
int mpi_skip_load_queued(struct store *s, struct mpi_skip **out, struct err *e);
bool mpi_skip_has(void *ctx, const char *a, const char *b);
void mpi_skip_free(struct mpi_skip *k);
/* Is this stored JSON a review Task (a quick look, no parse)? */
bool mpi_is_review_task(const char *json, size_t len);
/* The two Patient ids of a review Task.  -1 if it does not name two. */
int mpi_review_pair(json_object *task, char *a, char *b, size_t cap);
/* A new review Task for a and b (no id).  kind: MPI_TASK_REVIEW (priority
 * routine), MPI_TASK_URGENT (the model would link; auto-link is off) or
 * MPI_TASK_LINKED (the pair was linked automatically: urgent, businessStatus
 * auto-linked, and an input "auto-link" that stays whatever is decided). */
enum mpi_task_kind { MPI_TASK_REVIEW = 0, MPI_TASK_URGENT, MPI_TASK_LINKED };
void mpi_review_task_json(const char *a, const char *b, double prob, const uint8_t lv[MPI_NCMP],
			  int kind, struct buf *out);
/* Was the review Task's pair linked automatically (its "auto-link" input)?
 * Decided not a duplicate (businessStatus not-duplicate)? */
bool mpi_review_auto_linked(json_object *task);
bool mpi_review_not_duplicate(json_object *task);

/* ---- auto-link (merge.c) ---- */

/* Link Patient a and b (Patient.link type seealso on both, new versions)
 * and create the review Task task_json (may be NULL) in one transaction, as
 * the system principal (chartkeep-mpi), with a Provenance (activity link)
 * and its audit entry.  Nothing is done (*done false, 0 returned) when
 * either is merged into another or deleted, or the two are linked both
 * ways already (then the Task is not written either). */
int mpi_link(const struct fhir_config *cfg, const char *a, const char *b, const char *task_json, bool *done,
	     struct err *e);
/* Remove the seealso links between a and b (Provenance activity unlink). */
int mpi_unlink(const struct fhir_config *cfg, const char *a, const char *b, bool *done, struct err *e);
/* Does the stored Patient JSON carry link {other: Patient/other, type seealso}? */
bool mpi_linked(const char *json, size_t len, const char *other);

/* ---- candidates of one Patient (match.c) ---- */

struct mpi_match_hit {
	char id[ID_MAX + 1];
	double prob;
	int decision;             /* enum mpi_decision */
	uint8_t lv[MPI_NCMP];
	const char *json;         /* the candidate as stored (arena) */
	size_t len;
};

/* The Patients sharing a blocking key with q (but self) at or above the
 * review threshold, best first (*out malloc'd).  visible (may be NULL)
 * drops those the requester may not see. */
int mpi_candidates(const struct fhir_config *cfg, const struct mpi_model *m, const struct mpi_rec *q,
		   const char *self, struct arena *a,
		   bool (*visible)(void *, const char *, const char *, const char *, size_t), void *vctx,
		   struct mpi_match_hit **out, size_t *n, struct err *e);

/* ---- batch scan (scan.c) ---- */

struct mpi_scan_pair {
	uint32_t a, b;            /* record indexes, recs[a].id < recs[b].id */
	float prob;
	float weight;
	uint8_t decision;         /* enum mpi_decision */
};

struct mpi_scan_opts {
	const struct mpi_model *model;
	int threads;              /* 0: 2 */
	bool progress;            /* lines on stderr */
	size_t max_block;         /* larger blocks are skipped (counted); 0: 5000 */
	size_t keep_levels;       /* keep up to this many comparison vectors (training) */
	double min_prob;          /* pairs kept: prob >= this (default: model->lower) */
	/* pairs never to return (not duplicates), or NULL */
	bool (*skip)(void *ctx, const char *id_a, const char *id_b);
	void *skip_ctx;
};

struct mpi_scan {
	struct mpi_rec *recs;
	size_t n;
	struct mpi_scan_pair *pairs;  /* sorted by ids */
	size_t npairs;
	uint8_t *levels;          /* keep_levels vectors of MPI_NCMP (training) */
	size_t nlevels;
	uint64_t compared;        /* candidate pairs compared */
	size_t skipped_blocks, skipped_records;
	void *priv;
};

/* Load every current Patient and compare the candidate pairs blocking
 * finds.  On success release sc with mpi_scan_release. */
int mpi_scan_run(struct store *s, const struct mpi_scan_opts *o, struct mpi_scan *sc, struct err *e);
void mpi_scan_release(struct mpi_scan *sc);

#endif
