/* search_int.h - shared by params.c, index.c and search.c. */
#ifndef CK_FHIR_SEARCH_INT_H
#define CK_FHIR_SEARCH_INT_H

#include <pthread.h>

#include "fhir/fhirpath.h"
#include "fhir/search.h"

struct sp_comp {
	char *def_url;
	char *expr;
	const struct fhir_sp *def;  /* resolved by url */
	struct fp_expr *x;          /* relative to the composite's node */
};

struct fhir_sp {
	char *url, *code, *expression;
	int type;                   /* enum fhir_sp_type */
	char **bases;
	size_t nbases;
	const char **targets;       /* NULL-terminated model names */
	struct sp_comp *comps;
	size_t ncomps;
	uint32_t pid;
	bool custom;
	struct fp_expr *shared_x;   /* compiled for Resource / DomainResource */
	char unsupported[160];      /* a problem of the definition itself */
};

#define SP_MAX_ALIAS 4

/* A definition compiled for one resource type. */
struct binding {
	const struct fhir_sp *sp;
	struct fp_expr *x;          /* NULL: nothing to evaluate (see why) */
	bool owns;
	char why[120];              /* why x is NULL for this type, or "" */
	/* A union of other parameters of the type (R4's combo-code is
	 * code | component-code): it has no rows; a search ORs those. */
	const struct fhir_sp *alias[SP_MAX_ALIAS];
	size_t nalias;
};

struct type_params {
	struct binding *v;          /* sorted by code */
	size_t n, cap;
};

struct fhir_params {
	pthread_rwlock_t lock;
	struct fhir_sp **defs;
	size_t ndefs, cap;
	struct type_params *per_type; /* indexed like fhir_types */
};

const struct type_params *fhir_params_type(const struct fhir_params *p, const char *type);
/* The binding of code on type (custom definitions win), or NULL. */
const struct binding *fhir_params_binding(const struct fhir_params *p, const char *type,
					  const char *code);

#endif
