/* fhirpath.h - the FHIRPath subset that search-parameter indexing needs.
 *
 * The R4 SearchParameter expressions (and custom ones) are compiled once at
 * start-up, per resource type, and evaluated on every resource written.  The
 * subset, and why it is enough, is described at the top of fhirpath.c:
 *
 *   paths          Patient.name.given   code   value.as(Quantity)   %resource.x
 *   choice         Observation.value    (whichever value[x] is present)
 *   union          a | b                (duplicates removed by node identity)
 *   types          x as T   x is T   x.as(T)   x.is(T)   x.ofType(T)
 *   filters        where(cond)   x[0]   first()   last()   extension('url')
 *   references     where(resolve() is Patient)   (by the reference's text only)
 *   booleans       exists()  exists(cond)  empty()  not()  =  !=  and  or
 *   literals       'string'  true  false  12  1.5  {}  %ucum  %sct  %loinc
 *   variables      $this  %resource (%rootResource)  %context
 *   comments       line (//) and block comments
 *
 * Anything else (arithmetic, comparisons other than = and !=, date and
 * quantity literals, functions not listed) is ERR_NOT_SUPPORTED at compile
 * time, never silently wrong at evaluation time.
 *
 * Ownership: a compiled expression is immutable and may be evaluated by
 * several threads at once.  Result nodes point into the evaluated resource,
 * which must outlive them, or are values the evaluator made (the boolean of
 * exists(), and, !=, ...; a literal such as 'x' that is itself a result):
 * those are owned by the result (owned = true) and freed by
 * fp_result_reset / fp_result_release.  No result points into the
 * expression: it may be freed while its results are in use. */
#ifndef CK_FHIR_FHIRPATH_H
#define CK_FHIR_FHIRPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/json.h"
#include "fhir/model.h"

/* Longer expressions, or ones nested deeper than this, are refused
 * (ERR_INVALID) so that compiling and evaluating stay cheap and bounded. */
#define FP_MAX_EXPR_LEN 8192
#define FP_MAX_DEPTH 64
/* Evaluation steps (nodes produced, conditions evaluated) allowed for one
 * fp_eval call; past it the call fails with ERR_UNPROCESSABLE.  Guards
 * against expressions such as nested where() over %resource whose cost is
 * the product of the collection sizes. */
#define FP_MAX_STEPS ((size_t)1 << 22)

struct fp_expr; /* compiled expression */

struct fp_node {
	json_object *v;               /* the value (a primitive's JSON value, or an object) */
	const struct fhir_type *type; /* its FHIR type (the concrete type for resources) */
	json_object *ext;             /* the primitive's "_x" companion object, or NULL */
	bool owned;                   /* the result holds a reference to v (json_object_put) */
};

/* Invariants the indexer may rely on: a node whose type is FK_PRIMITIVE has
 * a JSON string, number or boolean as v (never an object, array or null);
 * any other node has a JSON object as v. */

struct fp_result {
	struct fp_node *v;
	size_t n, cap;
};

#define FP_RESULT_INIT { NULL, 0, 0 }

/*
 * Compile expr.  context_type, when not NULL, is the resource type the
 * expression will run on: union branches rooted at another resource type are
 * dropped at compile time (so a 30-type union costs one branch), element
 * names along paths are checked against the model (ERR_INVALID "no element
 * ..."), and *out may be NULL when nothing applies to that type (returns 0:
 * not an error).  "Resource" and "DomainResource" are accepted as
 * context_type and keep only the branches rooted at those names.  A relative
 * expression (composite components) is compiled with context_type NULL: no
 * branch is dropped and element names are not checked.
 *
 * Errors (return -1, *out NULL):
 *   ERR_INVALID        syntax errors ("... at offset N"), unknown type names,
 *                      unknown elements (with context_type), an unknown
 *                      context_type, too long or too deeply nested
 *   ERR_NOT_SUPPORTED  a construct outside the subset; the message names it
 *   ERR_NOMEM
 * On success *out is the caller's, freed with fp_free.
 */
int fp_compile(const char *expr, const char *context_type, struct fp_expr **out, struct err *e);
void fp_free(struct fp_expr *x);

/*
 * Evaluate x on resource (a json-c object whose resourceType is a known
 * type).  x may be NULL (fp_compile found nothing for the type): no results.
 * start == NULL: the input is the resource itself; otherwise the input is
 * that node (composite components are evaluated on each node the composite's
 * own expression produced; start may point into out).  Results are appended
 * to out in document order (union branches in the order written).  out's
 * array doubles as the evaluator's working stack and is reused, so once it
 * has grown, evaluating allocates nothing but owned booleans.
 *
 * Errors (return -1; out is left as it was on entry):
 *   ERR_INVALID        resource has no known resourceType
 *   ERR_UNPROCESSABLE  a FHIRPath evaluation error: a boolean operator, not(),
 *                      is or a where() condition given more than one item,
 *                      or more than FP_MAX_STEPS steps
 *   ERR_NOMEM
 */
int fp_eval(const struct fp_expr *x, json_object *resource, const struct fp_node *start,
	    struct fp_result *out, struct err *e);

void fp_result_init(struct fp_result *r);
/* Frees owned values, keeps the array for the next evaluation. */
void fp_result_reset(struct fp_result *r);
/* Frees owned values and the array. */
void fp_result_release(struct fp_result *r);

/*
 * The resource type a Reference points at, from its text alone:
 * "Patient" for {"reference":"Patient/1"} (also Type/id/_history/v and a
 * conditional Type?query), for an absolute URL whose path ends in Type/id
 * (or Type/id/_history/v), the contained resource's type for "#id" (looked up
 * in resource's "contained"), resource's own type for "#"; otherwise, from
 * Reference.type when that names a resource type (or ends in /Type).  NULL
 * if unknown (urn:uuid:, urn:oid:, a missing contained resource, ...).
 * The string returned is the model's type name (static storage).
 */
const char *fp_reference_type(json_object *reference_obj, json_object *resource);

#endif
