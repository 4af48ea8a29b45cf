/* search.h - FHIR search: parameter definitions, index extraction, queries.
 *
 * The definitions are the 1,375 SearchParameters of R4 (embedded from
 * data/fhir/Bundle-searchParams.json) plus the SearchParameter resources
 * stored in the database (custom ones, which replace an R4 one with the same
 * url).  Each is compiled once per resource type it applies to (FHIRPath,
 * fhirpath.h); every version written is run through them and its index rows
 * go to the store in the same transaction (store.h, struct store_ix_row). */
#ifndef CK_FHIR_SEARCH_H
#define CK_FHIR_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "store/store.h"

enum fhir_sp_type {
	SPT_NUMBER = 1, SPT_DATE, SPT_STRING, SPT_TOKEN, SPT_REFERENCE, SPT_COMPOSITE,
	SPT_QUANTITY, SPT_URI, SPT_SPECIAL
};

struct fhir_sp;          /* one definition */
struct fhir_params;      /* the registry */

/* Definitions from R4 and from the store's SearchParameter resources, with
 * their ids (store_param_ids).  Compiles every expression. */
int fhir_params_load(struct store *s, struct fhir_params **out, struct err *e);
void fhir_params_free(struct fhir_params *p);
/* Read the store's SearchParameter resources again (after one was written
 * or deleted): they take effect for the writes and searches that follow;
 * resources written before keep their rows until `chartkeep reindex`. */
int fhir_params_reload(struct fhir_params *p, struct store *s, struct err *e);
/* Can this server use the SearchParameter res (ERR_UNPROCESSABLE saying why
 * not)?  Checked before one is written. */
int fhir_sp_check(json_object *res, struct err *e);

/* Lock the registry for reading while definitions are used (extraction,
 * planning); definitions stay valid until the matching unlock. */
void fhir_params_rdlock(struct fhir_params *p);
void fhir_params_unlock(struct fhir_params *p);

/* The definition of parameter code on type (its own or Resource's). */
const struct fhir_sp *fhir_params_find(const struct fhir_params *p, const char *type,
				       const char *code);
int fhir_sp_type(const struct fhir_sp *sp);
uint32_t fhir_sp_pid(const struct fhir_sp *sp);
const char *fhir_sp_code(const struct fhir_sp *sp);
/* Target types of a reference parameter (NULL-terminated; empty: any). */
const char *const *fhir_sp_targets(const struct fhir_sp *sp);
size_t fhir_sp_ncomponents(const struct fhir_sp *sp);
/* Component i of a composite: its definition (for its type). */
const struct fhir_sp *fhir_sp_component(const struct fhir_sp *sp, size_t i);
/* Every parameter of type (for the CapabilityStatement and _include=*). */
size_t fhir_params_of(const struct fhir_params *p, const char *type, const struct fhir_sp **out,
		      size_t cap);
/* Why a parameter cannot be used ("" if it can): e.g. its expression is
 * outside the FHIRPath subset. */
const char *fhir_sp_unsupported(const struct fhir_sp *sp);

/* ---- index rows ---- */

/* Rows for one resource; strings live in the arena. */
struct fhir_ixrows {
	struct store_ix_row *v;
	size_t n, cap;
	struct arena arena;
	bool failed;
};

void fhir_ixrows_init(struct fhir_ixrows *r);
void fhir_ixrows_reset(struct fhir_ixrows *r);
void fhir_ixrows_release(struct fhir_ixrows *r);
/* Evaluate every parameter of res's type on res (a validated resource). */
int fhir_index(const struct fhir_params *p, json_object *res, struct fhir_ixrows *out,
	       struct err *e);

/* Case and accent folding for string search (the same for rows and queries):
 * lower case, Latin diacritics removed, punctuation kept. */
void fhir_fold(const char *s, size_t n, struct buf *out);

#endif
