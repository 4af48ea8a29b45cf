/* params.c - the search parameter registry (see search.h).
 *
 * Definitions come from the embedded R4 Bundle and from the store's
 * SearchParameter resources; a stored one replaces an R4 one with the same
 * url.  Each definition is compiled once per base type (union branches for
 * other types are dropped by fp_compile); Resource and DomainResource
 * parameters are compiled once and shared by every type they apply to.
 * Bindings per type are sorted by code for lookup.  A write of a
 * SearchParameter rebuilds the bindings under the write lock; readers
 * (extraction, planning) hold the read lock while they use definitions. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/embedded.h"
#include "fhir/fhir.h"
#include "fhir/fhirpath.h"
#include "fhir/search.h"
#include "fhir/search_int.h"
#include "base/banned.h"

#define R4_PARAMS "data/fhir/Bundle-searchParams.json"

static const char *const type_names[] = {
	[SPT_NUMBER] = "number", [SPT_DATE] = "date", [SPT_STRING] = "string",
	[SPT_TOKEN] = "token", [SPT_REFERENCE] = "reference", [SPT_COMPOSITE] = "composite",
	[SPT_QUANTITY] = "quantity", [SPT_URI] = "uri", [SPT_SPECIAL] = "special",
};

static int type_of(const char *s)
{
	for (int i = SPT_NUMBER; i <= SPT_SPECIAL; i++)
		if (s && strcmp(type_names[i], s) == 0)
			return i;
	return 0;
}

static void sp_free(struct fhir_sp *sp)
{
	if (!sp)
		return;
	for (size_t i = 0; i < sp->nbases; i++)
		free(sp->bases[i]);
	for (size_t i = 0; i < sp->ncomps; i++) {
		free(sp->comps[i].def_url);
		free(sp->comps[i].expr);
		fp_free(sp->comps[i].x);
	}
	fp_free(sp->shared_x);
	free(sp->comps);
	free(sp->bases);
	free(sp->targets);
	free(sp->url);
	free(sp->code);
	free(sp->expression);
	free(sp);
}

static char *dup_str(json_object *o, const char *key)
{
	const char *s = json_get_str(o, key);

	return s ? strdup(s) : NULL;
}

/* A definition from a SearchParameter resource; NULL with e set if unusable. */
static struct fhir_sp *sp_from_json(json_object *r, bool custom, struct err *e)
{
	struct fhir_sp *sp = calloc(1, sizeof(*sp));
	json_object *bases = json_get_arr(r, "base"), *targets = json_get_arr(r, "target");
	json_object *comps = json_get_arr(r, "component");
	size_t n;

	if (!sp) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	sp->custom = custom;
	sp->url = dup_str(r, "url");
	sp->code = dup_str(r, "code");
	sp->expression = dup_str(r, "expression");
	sp->type = type_of(json_get_str(r, "type"));
	if (!sp->url || !sp->code || !sp->type || !bases) {
		err_set(e, ERR_UNPROCESSABLE, "a SearchParameter needs url, code, type and base");
		goto fail;
	}
	n = json_object_array_length(bases);
	sp->bases = calloc(n ? n : 1, sizeof(char *));
	if (!sp->bases)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const char *b = json_object_get_string(json_object_array_get_idx(bases, i));
		if (!b || !(sp->bases[sp->nbases++] = strdup(b)))
			goto nomem;
	}
	n = targets ? json_object_array_length(targets) : 0;
	sp->targets = calloc(n + 1, sizeof(char *));
	if (!sp->targets)
		goto nomem;
	for (size_t i = 0, k = 0; i < n; i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(targets, i));
		const struct fhir_type *ft = t ? fhir_resource_type(t) : NULL;
		if (ft)
			sp->targets[k++] = ft->name; /* static: the model's name */
	}
	n = comps ? json_object_array_length(comps) : 0;
	if (n) {
		sp->comps = calloc(n, sizeof(*sp->comps));
		if (!sp->comps)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			json_object *c = json_object_array_get_idx(comps, i);
			sp->comps[i].def_url = dup_str(c, "definition");
			sp->comps[i].expr = dup_str(c, "expression");
			sp->ncomps++;
			if (!sp->comps[i].def_url || !sp->comps[i].expr) {
				err_set(e, ERR_UNPROCESSABLE, "a composite component needs definition and expression");
				goto fail;
			}
		}
	}
	if (!sp->expression && strcmp(sp->code, "_text") != 0 && strcmp(sp->code, "_content") != 0)
		snprintf(sp->unsupported, sizeof(sp->unsupported), "no expression");
	if (sp->type == SPT_SPECIAL)
		snprintf(sp->unsupported, sizeof(sp->unsupported), "special parameter");
	return sp;
nomem:
	err_set(e, ERR_NOMEM, "out of memory");
fail:
	sp_free(sp);
	return NULL;
}

/* ---- bindings ---- */

static int binding_cmp(const void *a, const void *b)
{
	const struct binding *x = a, *y = b;
	int c = strcmp(x->sp->code, y->sp->code);

	/* for two definitions of one code, the custom one sorts last and wins */
	return c ? c : (int)x->sp->custom - (int)y->sp->custom;
}

static int bind(struct fhir_params *p, size_t type_index, const struct fhir_sp *sp,
		struct fp_expr *x, bool owns, const char *why)
{
	struct type_params *tp = &p->per_type[type_index];

	if (tp->n == tp->cap) {
		size_t ncap = tp->cap ? tp->cap * 2 : 32;
		struct binding *v = realloc(tp->v, ncap * sizeof(*v));
		if (!v)
			return -1;
		tp->v = v;
		tp->cap = ncap;
	}
	tp->v[tp->n].sp = sp;
	tp->v[tp->n].x = x;
	tp->v[tp->n].owns = owns;
	tp->v[tp->n].nalias = 0;
	snprintf(tp->v[tp->n].why, sizeof(tp->v[tp->n].why), "%.110s", why ? why : "");
	tp->n++;
	return 0;
}

static void unbind_all(struct fhir_params *p)
{
	for (size_t t = 0; t < fhir_n_types; t++) {
		struct type_params *tp = &p->per_type[t];
		for (size_t i = 0; i < tp->n; i++)
			if (tp->v[i].owns)
				fp_free(tp->v[i].x);
		tp->n = 0;
	}
	for (size_t i = 0; i < p->ndefs; i++) {
		fp_free(p->defs[i]->shared_x);
		p->defs[i]->shared_x = NULL;
	}
}

static size_t type_index(const struct fhir_type *t)
{
	return (size_t)(t - fhir_types);
}

static const struct fhir_sp *def_by_url(const struct fhir_params *p, const char *url)
{
	/* the last definition with a url wins (custom ones come after R4) */
	for (size_t i = p->ndefs; i-- > 0;)
		if (strcmp(p->defs[i]->url, url) == 0)
			return p->defs[i];
	return NULL;
}

/* Compile a definition for one base and bind it to the types it covers. */
static int bind_def(struct fhir_params *p, struct fhir_sp *sp, const char *base, struct err *e)
{
	struct fp_expr *x = NULL;
	struct err ce = ERR_INIT;
	bool all = strcmp(base, "Resource") == 0, domain = strcmp(base, "DomainResource") == 0;
	const struct fhir_type *t = all || domain ? NULL : fhir_resource_type(base);
	const char *why = sp->unsupported[0] ? sp->unsupported : NULL;

	if (!all && !domain && !t)
		return 0; /* a base this version of FHIR does not have */
	if (sp->expression && !why) {
		if (fp_compile(sp->expression, base, &x, &ce) < 0) {
			if (ce.code == ERR_NOMEM)
				return err_set(e, ERR_NOMEM, "out of memory");
			why = ce.msg;
			x = NULL;
		}
	}
	if (!all && !domain) {
		if (bind(p, type_index(t), sp, x, true, why) < 0) {
			fp_free(x);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		return 0;
	}
	/* shared by every resource type (DomainResource: all but three) */
	sp->shared_x = x;
	for (size_t i = 0; i < fhir_n_resource_types; i++) {
		const struct fhir_type *rt = &fhir_types[fhir_resource_types[i]];
		if (domain && (strcmp(rt->name, "Bundle") == 0 || strcmp(rt->name, "Binary") == 0 ||
			       strcmp(rt->name, "Parameters") == 0))
			continue;
		if (bind(p, type_index(rt), sp, x, false, why) < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* ---- unions of other parameters ---- */

#define MAX_PARTS 8

/* The top-level '|' alternatives of expr that apply to base, each without
 * surrounding blanks and one enclosing pair of parentheses; 0 when there are
 * more than cap or the expression cannot be split. */
static size_t expr_parts(const char *expr, const char *base, char parts[][160], size_t cap)
{
	size_t n = 0, bl = strlen(base);
	const char *p = expr, *start = expr;
	int depth = 0;
	char quote = 0;

	if (!expr)
		return 0;
	for (;; p++) {
		if (quote) {
			if (*p == '\0')
				return 0;
			if (*p == quote)
				quote = 0;
			continue;
		}
		if (*p == '\'' || *p == '"' || *p == '`') {
			quote = *p;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			depth--;
		} else if ((*p == '|' && depth == 0) || *p == '\0') {
			const char *a = start, *b = p;
			while (a < b && (*a == ' ' || *a == '\t' || *a == '\n'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\n'))
				b--;
			if (b - a >= 2 && *a == '(' && b[-1] == ')') {
				/* one pair around the whole part, not "(a).b(c)" */
				int d = 0;
				bool whole = true;
				for (const char *q = a; q < b - 1; q++) {
					d += *q == '(' ? 1 : *q == ')' ? -1 : 0;
					if (d == 0) {
						whole = false;
						break;
					}
				}
				if (whole) {
					a++;
					b--;
				}
			}
			if ((size_t)(b - a) >= 160)
				return 0;
			if ((size_t)(b - a) >= bl && strncmp(a, base, bl) == 0 &&
			    ((size_t)(b - a) == bl || a[bl] == '.' || a[bl] == ' ')) {
				if (n == cap)
					return 0;
				snprintf(parts[n++], 160, "%.*s", (int)(b - a), a);
			}
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	return n;
}

static bool same_components(const struct fhir_sp *a, const struct fhir_sp *b)
{
	if (a->ncomps != b->ncomps)
		return false;
	for (size_t i = 0; i < a->ncomps; i++) {
		if (strcmp(a->comps[i].expr, b->comps[i].expr) != 0 || !a->comps[i].def ||
		    !b->comps[i].def || a->comps[i].def->type != b->comps[i].def->type)
			return false;
	}
	return true;
}

/* Mark each parameter whose alternatives are exactly those of other
 * parameters of the type, in order: R4's Observation combo-code is
 * code | component-code, combo-value-quantity is value-quantity |
 * component-value-quantity.  Its rows would repeat theirs. */
static void find_aliases(struct type_params *tp, const char *type)
{
	char (*mine)[160] = malloc(MAX_PARTS * 160), (*theirs)[160] = malloc(MAX_PARTS * 160);

	if (!mine || !theirs)
		goto out; /* no aliases: every parameter keeps its own rows */
	for (size_t i = 0; i < tp->n; i++) {
		struct binding *b = &tp->v[i];
		size_t n = b->x ? expr_parts(b->sp->expression, type, mine, MAX_PARTS) : 0, at = 0;

		b->nalias = 0;
		if (n < 2 || b->sp->custom)
			continue;
		while (at < n && b->nalias < SP_MAX_ALIAS) {
			const struct fhir_sp *found = NULL;
			size_t len = 0;
			for (size_t j = 0; j < tp->n && !found; j++) {
				const struct binding *q = &tp->v[j];
				size_t m;
				if (j == i || !q->x || q->sp->type != b->sp->type || q->sp->custom ||
				    q->sp->unsupported[0])
					continue;
				if (b->sp->type == SPT_COMPOSITE && !same_components(b->sp, q->sp))
					continue;
				m = expr_parts(q->sp->expression, type, theirs, MAX_PARTS);
				if (m == 0 || m >= n || at + m > n)
					continue;
				bool same = true;
				for (size_t k = 0; k < m && same; k++)
					same = strcmp(mine[at + k], theirs[k]) == 0;
				if (same) {
					found = q->sp;
					len = m;
				}
			}
			if (!found)
				break;
			b->alias[b->nalias++] = found;
			at += len;
		}
		if (at != n)
			b->nalias = 0;
	}
out:
	free(mine);
	free(theirs);
}

/* Build every binding from the definitions. */
static int rebind(struct fhir_params *p, struct err *e)
{
	unbind_all(p);
	for (size_t i = 0; i < p->ndefs; i++) {
		struct fhir_sp *sp = p->defs[i];
		/* an R4 definition replaced by a custom one with its url is skipped */
		if (def_by_url(p, sp->url) != sp)
			continue;
		if (sp->ncomps && strcmp(sp->unsupported, "component definition not found") == 0)
			sp->unsupported[0] = '\0';
		for (size_t c = 0; c < sp->ncomps; c++) {
			struct err ce = ERR_INIT;
			fp_free(sp->comps[c].x);
			sp->comps[c].x = NULL;
			sp->comps[c].def = def_by_url(p, sp->comps[c].def_url);
			if (!sp->comps[c].def) {
				snprintf(sp->unsupported, sizeof(sp->unsupported),
					 "component definition not found");
			} else if (fp_compile(sp->comps[c].expr, NULL, &sp->comps[c].x, &ce) < 0) {
				snprintf(sp->unsupported, sizeof(sp->unsupported), "%.150s", ce.msg);
			}
		}
		for (size_t b = 0; b < sp->nbases; b++)
			if (bind_def(p, sp, sp->bases[b], e) < 0)
				return -1;
	}
	for (size_t t = 0; t < fhir_n_types; t++) {
		struct type_params *tp = &p->per_type[t];
		if (!tp->n)
			continue;
		qsort(tp->v, tp->n, sizeof(*tp->v), binding_cmp);
		find_aliases(tp, fhir_types[t].name);
	}
	return 0;
}

static int add_def(struct fhir_params *p, struct fhir_sp *sp)
{
	if (p->ndefs == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 1024;
		struct fhir_sp **v = realloc(p->defs, ncap * sizeof(*v));
		if (!v)
			return -1;
		p->defs = v;
		p->cap = ncap;
	}
	p->defs[p->ndefs++] = sp;
	return 0;
}

/* Store ids for every definition that has none yet. */
static int assign_pids(struct fhir_params *p, struct store *s, struct err *e)
{
	const char **urls = calloc(p->ndefs + 1, sizeof(char *));
	const char **codes = calloc(p->ndefs + 1, sizeof(char *));
	const char **types = calloc(p->ndefs + 1, sizeof(char *));
	uint32_t *pids = calloc(p->ndefs + 1, sizeof(uint32_t));
	size_t n = 0;
	int rc = -1;

	if (!urls || !codes || !types || !pids) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->ndefs; i++) {
		if (p->defs[i]->pid)
			continue;
		urls[n] = p->defs[i]->url;
		codes[n] = p->defs[i]->code;
		types[n] = type_names[p->defs[i]->type];
		n++;
	}
	if (n && store_param_ids(s, urls, codes, types, n, pids, e) < 0)
		goto out;
	for (size_t i = 0, k = 0; i < p->ndefs; i++)
		if (!p->defs[i]->pid)
			p->defs[i]->pid = pids[k++];
	rc = 0;
out:
	free(urls);
	free(codes);
	free(types);
	free(pids);
	return rc;
}

struct load_ctx {
	struct fhir_params *p;
	struct err *e;
};

static int load_custom(void *arg, const struct store_version *v)
{
	struct load_ctx *c = arg;
	struct err pe = ERR_INIT;
	json_object *o = json_parse_buf(v->json, v->len, 0, &pe);
	struct fhir_sp *sp;

	if (!o)
		return 0; /* stored JSON always parses; skip rather than fail start-up */
	sp = sp_from_json(o, true, &pe);
	json_object_put(o);
	if (!sp) {
		log_warn("event=search_param_skipped id=%s reason=\"%s\"", v->id, pe.msg);
		return 0;
	}
	if (add_def(c->p, sp) < 0) {
		sp_free(sp);
		err_set(c->e, ERR_NOMEM, "out of memory");
		return -1;
	}
	return 0;
}

int fhir_params_load(struct store *s, struct fhir_params **out, struct err *e)
{
	const struct embedded_file *f = embedded_find(R4_PARAMS);
	struct fhir_params *p = calloc(1, sizeof(*p));
	json_object *b = NULL, *entries;
	struct load_ctx lc = { p, e };
	size_t n;

	*out = NULL;
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	pthread_rwlock_init(&p->lock, NULL);
	p->per_type = calloc(fhir_n_types, sizeof(*p->per_type));
	if (!p->per_type) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (!f) {
		err_set(e, ERR_INTERNAL, "the R4 search parameters are not built in");
		goto fail;
	}
	b = json_parse_buf((const char *)f->data, f->len, 0, e);
	if (!b)
		goto fail;
	entries = json_get_arr(b, "entry");
	n = entries ? json_object_array_length(entries) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_get(json_object_array_get_idx(entries, i), "resource");
		struct err pe = ERR_INIT;
		struct fhir_sp *sp = sp_from_json(r, false, &pe);
		if (!sp) {
			if (pe.code == ERR_NOMEM) {
				*e = pe;
				goto fail;
			}
			continue;
		}
		if (add_def(p, sp) < 0) {
			sp_free(sp);
			err_set(e, ERR_NOMEM, "out of memory");
			goto fail;
		}
	}
	json_object_put(b);
	b = NULL;
	if (store_scan_current(s, "SearchParameter", load_custom, &lc, e) < 0)
		goto fail;
	if (assign_pids(p, s, e) < 0 || rebind(p, e) < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	json_object_put(b);
	fhir_params_free(p);
	return -1;
}

void fhir_params_free(struct fhir_params *p)
{
	if (!p)
		return;
	if (p->per_type) {
		unbind_all(p);
		for (size_t t = 0; t < fhir_n_types; t++)
			free(p->per_type[t].v);
		free(p->per_type);
	}
	for (size_t i = 0; i < p->ndefs; i++)
		sp_free(p->defs[i]);
	free(p->defs);
	pthread_rwlock_destroy(&p->lock);
	free(p);
}

static size_t count_custom(const struct fhir_params *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ndefs; i++)
		n += p->defs[i]->custom;
	return n;
}

int fhir_params_reload(struct fhir_params *p, struct store *s, struct err *e)
{
	struct fhir_params fresh;
	struct load_ctx lc = { &fresh, e };
	int rc = -1;

	/* read the custom definitions first, without the lock */
	memset(&fresh, 0, sizeof(fresh));
	if (store_scan_current(s, "SearchParameter", load_custom, &lc, e) < 0)
		goto out;
	pthread_rwlock_wrlock(&p->lock);
	/* the old custom definitions go (an R4 one replaced by a custom one with
	 * its url wins again when the custom one is deleted) */
	unbind_all(p);
	for (size_t i = 0; i < p->ndefs; i++) {
		if (p->defs[i]->custom) {
			sp_free(p->defs[i]);
			memmove(&p->defs[i], &p->defs[i + 1], (p->ndefs - i - 1) * sizeof(p->defs[0]));
			p->ndefs--;
			i--;
		}
	}
	for (size_t i = 0; i < fresh.ndefs; i++) {
		if (add_def(p, fresh.defs[i]) < 0) {
			for (size_t k = i; k < fresh.ndefs; k++)
				sp_free(fresh.defs[k]);
			fresh.ndefs = 0;
			err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		fresh.defs[i] = NULL;
	}
	fresh.ndefs = 0;
	if (!e->code && assign_pids(p, s, e) == 0 && rebind(p, e) == 0)
		rc = 0;
	else if (e->code != ERR_NOMEM)
		rebind(p, e); /* keep a usable registry whatever happened */
	pthread_rwlock_unlock(&p->lock);
out:
	for (size_t i = 0; i < fresh.ndefs; i++)
		sp_free(fresh.defs[i]);
	free(fresh.defs);
	if (rc == 0)
		log_info("event=search_params_reloaded custom=%zu", count_custom(p));
	return rc;
}

int fhir_sp_check(json_object *res, struct err *e)
{
	struct fhir_sp *sp = sp_from_json(res, true, e);
	int rc = -1;

	if (!sp)
		return -1;
	if (sp->code && sp->code[0] == '_') {
		err_set(e, ERR_UNPROCESSABLE, "codes starting with '_' are reserved for the common parameters; "
					       "choose another code");
		goto out;
	}
	if (sp->type == SPT_SPECIAL) {
		err_set(e, ERR_UNPROCESSABLE, "this server cannot evaluate a parameter of type special");
		goto out;
	}
	if (sp->unsupported[0]) {
		err_set(e, ERR_UNPROCESSABLE, "this server cannot index the parameter: %s", sp->unsupported);
		goto out;
	}
	if (!sp->expression && sp->type != SPT_COMPOSITE) {
		err_set(e, ERR_UNPROCESSABLE, "no expression: there is nothing to index");
		goto out;
	}
	for (size_t b = 0; b < sp->nbases; b++) {
		struct fp_expr *x = NULL;
		const char *base = sp->bases[b];
		if (strcmp(base, "Resource") != 0 && strcmp(base, "DomainResource") != 0 &&
		    !fhir_resource_type(base)) {
			err_set(e, ERR_UNPROCESSABLE, "base '%.64s' is not a resource type", base);
			goto out;
		}
		if (!sp->expression)
			continue;
		if (fp_compile(sp->expression, base, &x, e) < 0) {
			if (e->code != ERR_NOMEM) {
				char why[ERR_MSG_MAX];
				snprintf(why, sizeof(why), "%s", e->msg);
				err_clear(e);
				err_set(e, ERR_UNPROCESSABLE,
					"this server cannot evaluate the expression for %.64s: %s", base, why);
			}
			goto out;
		}
		fp_free(x);
	}
	for (size_t c = 0; c < sp->ncomps; c++) {
		struct fp_expr *x = NULL;
		if (fp_compile(sp->comps[c].expr, NULL, &x, e) < 0) {
			if (e->code != ERR_NOMEM) {
				char why[ERR_MSG_MAX];
				snprintf(why, sizeof(why), "%s", e->msg);
				err_clear(e);
				err_set(e, ERR_UNPROCESSABLE, "component %zu: %s", c + 1, why);
			}
			goto out;
		}
		fp_free(x);
	}
	rc = 0;
out:
	sp_free(sp);
	return rc;
}

void fhir_params_rdlock(struct fhir_params *p)
{
	pthread_rwlock_rdlock(&p->lock);
}

void fhir_params_unlock(struct fhir_params *p)
{
	pthread_rwlock_unlock(&p->lock);
}

const struct type_params *fhir_params_type(const struct fhir_params *p, const char *type)
{
	const struct fhir_type *t = fhir_resource_type(type);

	return t ? &p->per_type[type_index(t)] : NULL;
}

const struct binding *fhir_params_binding(const struct fhir_params *p, const char *type,
					  const char *code)
{
	const struct type_params *tp = fhir_params_type(p, type);
	const struct binding *found = NULL;
	size_t lo = 0, hi;

	if (!tp)
		return NULL;
	hi = tp->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(tp->v[mid].sp->code, code) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* several bindings of one code: the last (custom) one */
	for (size_t i = lo; i < tp->n && strcmp(tp->v[i].sp->code, code) == 0; i++)
		found = &tp->v[i];
	return found;
}

const struct fhir_sp *fhir_params_find(const struct fhir_params *p, const char *type,
				       const char *code)
{
	const struct binding *b = fhir_params_binding(p, type, code);

	return b ? b->sp : NULL;
}

int fhir_sp_type(const struct fhir_sp *sp)
{
	return sp->type;
}

uint32_t fhir_sp_pid(const struct fhir_sp *sp)
{
	return sp->pid;
}

const char *fhir_sp_code(const struct fhir_sp *sp)
{
	return sp->code;
}

const char *const *fhir_sp_targets(const struct fhir_sp *sp)
{
	return sp->targets;
}

size_t fhir_sp_ncomponents(const struct fhir_sp *sp)
{
	return sp->ncomps;
}

const struct fhir_sp *fhir_sp_component(const struct fhir_sp *sp, size_t i)
{
	return i < sp->ncomps ? sp->comps[i].def : NULL;
}

const char *fhir_sp_unsupported(const struct fhir_sp *sp)
{
	return sp->unsupported;
}

size_t fhir_params_of(const struct fhir_params *p, const char *type, const struct fhir_sp **out,
		      size_t cap)
{
	const struct type_params *tp = fhir_params_type(p, type);
	size_t n = 0;

	if (!tp)
		return 0;
	for (size_t i = 0; i < tp->n; i++) {
		/* one per code: the winning definition */
		if (i + 1 < tp->n && strcmp(tp->v[i].sp->code, tp->v[i + 1].sp->code) == 0)
			continue;
		if (n < cap)
			out[n] = tp->v[i].sp;
		n++;
	}
	return n;
}
