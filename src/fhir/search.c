/* search.c - FHIR search: parameters to a query tree, results to a Bundle.
 *
 * A request's parameters are parsed into struct sq_node trees (store.h), one
 * per parameter occurrence, ANDed; comma-separated values are ORed.  Values
 * are normalised here, the same way the indexer normalised the resources:
 * strings folded (fhir_fold), dates to the range their precision denotes,
 * numbers with the range their precision gives, references to Type/id.
 * The store turns the tree into SQL.  Then the page is wrapped in a
 * searchset Bundle with _include/_revinclude entries, _summary/_elements
 * applied, and absolute paging links of the form [base]/[type]?...&_cursor=
 * that stay correct while data changes (the cursor is a position in the sort
 * order, not an offset).
 *
 * Errors name the parameter: "search parameter 'birthdate': not a valid
 * date".  Unknown parameters are ignored with a warning in the Bundle
 * (Prefer: handling=lenient, the default) or refused (handling=strict). */
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/embedded.h"
#include "base/url.h"
#include "fhir/fhir_int.h"
#include "fhir/search.h"
#include "fhir/search_int.h"
#include "base/banned.h"

#define SEARCH_DEFAULT_COUNT 50
#define SEARCH_MAX_COUNT 1000
#define MAX_INCLUDES 8
#define INCLUDE_ROUNDS 3
#define MAX_INCLUDED 5000

enum summary_mode { SUM_NONE, SUM_TRUE, SUM_TEXT, SUM_DATA, SUM_COUNT };
/* _total: estimate (the default) costs nothing: exact when the first page
 * holds every match, absent otherwise; accurate counts every match. */
enum total_mode { TOTAL_NONE, TOTAL_ESTIMATE, TOTAL_ACCURATE };

struct include_spec {
	const char *source;   /* Type, or NULL for any */
	uint32_t pid;         /* 0: any reference parameter */
	const char *target;   /* NULL: any */
	bool reverse, iterate;
};

struct sctx {
	const struct fhir_config *cfg;
	struct fhir_req *req;
	struct arena *a;
	const char *type;
	struct store_query q;
	struct sq_node *and;
	struct fhir_issues warn;
	struct include_spec inc[MAX_INCLUDES];
	size_t ninc;
	int summary;
	const char *elements;
	int total;            /* TOTAL_* */
	struct buf self;      /* the parameters as understood, for links */
	const char *cursor;   /* this page's _cursor, as given */
	const char *path;     /* of the links: "/Patient", "/Patient/1/$everything" */
	const char *as_name;  /* the parameter errors name, while expanding a union */
	size_t chains;        /* chain alternatives made so far (MAX_CHAIN_NODES) */
	struct err *e;
};

/* A chain through references that may point to many types (Basic.subject
 * allows 145) multiplies at each link; past this many alternatives in one
 * search the client is asked to name the target types. */
#define MAX_CHAIN_NODES 256

/* ---- small helpers ---- */

static struct sq_node *node(struct sctx *c, int kind)
{
	struct sq_node *n = arena_alloc(c->a, sizeof(*n));

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	return n;
}

static int add_kid(struct sctx *c, struct sq_node *parent, struct sq_node *kid)
{
	struct sq_node **v;

	if (!parent || !kid)
		return -1;
	/* the array is full when nkids is 0 or a power of two: double it */
	if ((parent->nkids & (parent->nkids - 1)) == 0) {
		v = arena_alloc(c->a, (parent->nkids ? parent->nkids * 2 : 1) * sizeof(*v));
		if (!v)
			return -1;
		if (parent->nkids)
			memcpy(v, parent->kids, parent->nkids * sizeof(*v));
		parent->kids = v;
	}
	parent->kids[parent->nkids++] = kid;
	return 0;
}

static int bad(struct sctx *c, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct sctx *c, const char *name, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(c->e, ERR_INVALID, "search parameter '%.60s': %s", c->as_name ? c->as_name : name,
		       msg);
}

/* Messages quote what the client sent (parameter names, types, values),
 * cut to a length: a byte that is not part of valid UTF-8 (sent so, or a
 * character cut in two) becomes '?', so the OperationOutcome stays JSON. */
static void scrub_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
			     : (*p & 0xF8) == 0xF0 ? 4 : 0;
		uint32_t cp = len == 1 ? *p : len ? (uint32_t)(*p & (0x7F >> len)) : 0;
		bool ok = len > 0;

		for (size_t k = 1; ok && k < len; k++) {
			ok = (p[k] & 0xC0) == 0x80;
			cp = (cp << 6) | (p[k] & 0x3F);
		}
		/* no overlong forms, surrogates or code points past U+10FFFF */
		if (ok && len > 1)
			ok = !((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
			       (len == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF);
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += len;
	}
}

static void scrub_issues(struct fhir_issues *iss)
{
	for (size_t i = 0; i < iss->n; i++) {
		scrub_utf8(iss->v[i].msg);
		scrub_utf8(iss->v[i].expr);
	}
}

static const char *fold(struct sctx *c, const char *s)
{
	struct buf b = BUF_INIT(0);
	const char *r;

	fhir_fold(s, strlen(s), &b);
	r = arena_strdup(c->a, buf_cstr(&b));
	buf_release(&b);
	return r;
}

/* Search values escape the separators with a backslash: \, \| \$ and \\
 * stand for themselves (R4 3.1.1.6).  A value is split at its unescaped
 * commas first, then each part at its unescaped | or $, and the pieces are
 * unescaped last, so that \| survives the split at commas. */
static bool escaped_char(char ch)
{
	return ch == ',' || ch == '|' || ch == '$' || ch == '\\';
}

/* s without its escapes (arena), or NULL. */
static char *unescape(struct sctx *c, const char *s, size_t n)
{
	char *out = arena_alloc(c->a, n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && escaped_char(s[i + 1]))
			i++;
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* Split v at its unescaped sep characters.  keep: the parts keep their
 * escapes (to be split again); otherwise they are unescaped.  Returns the
 * number of parts (0 only when out of memory). */
static size_t split_esc(struct sctx *c, const char *v, char sep, bool keep, char ***out)
{
	size_t cap = 1, k = 0, start = 0, len = strlen(v);
	char **parts;

	for (size_t i = 0; i < len; i++)
		cap += v[i] == sep; /* an upper bound: some may be escaped */
	parts = arena_alloc(c->a, cap * sizeof(char *));
	if (!parts)
		return 0;
	for (size_t i = 0;; i++) {
		if (i < len && v[i] == '\\' && i + 1 < len && escaped_char(v[i + 1])) {
			i++;
			continue;
		}
		if (i == len || v[i] == sep) {
			parts[k] = keep ? arena_strndup(c->a, v + start, i - start)
					: unescape(c, v + start, i - start);
			if (!parts[k])
				return 0;
			k++;
			start = i + 1;
			if (i == len)
				break;
		}
	}
	*out = parts;
	return k;
}

/* Values of control parameters and lists of names: split and unescaped. */
static size_t split_values(struct sctx *c, const char *v, char sep, char ***out)
{
	return split_esc(c, v, sep, false, out);
}

static const struct { const char *name; int op; } prefixes[] = {
	{ "eq", SQO_EQ }, { "ne", SQO_NE }, { "gt", SQO_GT }, { "lt", SQO_LT }, { "ge", SQO_GE },
	{ "le", SQO_LE }, { "sa", SQO_SA }, { "eb", SQO_EB }, { "ap", SQO_AP },
};

/* An ordered value's prefix (eq when there is none). */
static const char *prefix_of(const char *v, int *op)
{
	*op = SQO_EQ;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(v, prefixes[i].name, 2) == 0 && (v[2] == '-' || (v[2] >= '0' && v[2] <= '9'))) {
			*op = prefixes[i].op;
			return v + 2;
		}
	}
	return v;
}

/* Is s a decimal as FHIR writes one: [+-]digits[.digits][e[+-]digits], or
 * .digits?  (strtod alone would take "0x10", "inf", "nan" and blanks.) */
static bool number_syntax(const char *s)
{
	size_t digits = 0;

	if (*s == '+' || *s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		size_t exp = 0;
		s++;
		if (*s == '+' || *s == '-')
			s++;
		for (; *s >= '0' && *s <= '9'; s++)
			exp++;
		if (!exp)
			return false;
	}
	return *s == '\0';
}

/* A number and the range its precision gives: 100 is [99.5, 100.5), 1.50 is
 * [1.495, 1.505), 1e2 is [50, 150) (R4's table says [95, 105) for 1e2, which
 * does not follow from its own rule: one significant figure is +-50). */
static bool parse_number(const char *s, double *v, double *lo, double *hi)
{
	const char *dot, *ex;
	int decimals = 0, exp10 = 0;
	double half;

	if (!number_syntax(s))
		return false;
	*v = strtod(s, NULL);
	if (!isfinite(*v))
		return false;
	dot = strchr(s, '.');
	ex = strpbrk(s, "eE");
	if (dot)
		decimals = (int)((ex ? ex : s + strlen(s)) - dot - 1);
	if (ex) {
		long e = strtol(ex + 1, NULL, 10);
		exp10 = e > 400 ? 400 : e < -400 ? -400 : (int)e;
	}
	half = 0.5 * pow(10.0, (double)(exp10 - decimals));
	*lo = *v - half;
	*hi = *v + half;
	return true;
}

/* ---- one value of one parameter ---- */

static bool icd10_system(const char *s)
{
	return s && (strcmp(s, "http://hl7.org/fhir/sid/icd-10-cm") == 0 ||
		     strcmp(s, "http://www.cms.gov/Medicare/Coding/ICD10") == 0 ||
		     strcmp(s, "http://hl7.org/fhir/sid/icd-10") == 0);
}

/* The value of a reference parameter: Type/id, id, or an absolute url (which
 * becomes Type/id when it is ours). */
static int ref_value(struct sctx *c, const char *name, const char *v, const char *type_mod,
		     const char *const *targets, struct sq_node *n)
{
	const char *base = c->req->base;
	size_t bl = base ? strlen(base) : 0;
	const char *slash;

	n->ix = SIX_REFERENCE;
	n->op = SQO_EQ;
	if (bl && strncmp(v, base, bl) == 0 && v[bl] == '/')
		v += bl + 1;
	if (strstr(v, "://") || strncmp(v, "urn:", 4) == 0) {
		/* absolute and canonical references are indexed as uri rows */
		n->ix = SIX_URI;
		n->s1 = arena_strndup(c->a, v, strcspn(v, "|"));
		return 0;
	}
	slash = strchr(v, '/');
	if (slash) {
		const struct fhir_type *t = fhir_resource_type_n(v, (size_t)(slash - v));
		const char *id = slash + 1, *hist = strstr(id, "/_history/");
		size_t idn = hist ? (size_t)(hist - id) : strlen(id);
		if (!t || !id_valid(id, idn))
			return bad(c, name, "a reference must be Type/id, id or an absolute URL");
		if (type_mod && strcmp(type_mod, t->name) != 0) {
			n->kind = SQ_FALSE;
			return 0;
		}
		n->s1 = t->name;
		n->s2 = arena_strndup(c->a, id, idn);
		return 0;
	}
	if (!id_valid(v, strlen(v)))
		return bad(c, name, "a reference must be Type/id, id or an absolute URL");
	n->s1 = type_mod;
	/* a parameter with one target type (Observation's patient) names it */
	if (!n->s1 && targets && targets[0] && !targets[1])
		n->s1 = targets[0];
	n->s2 = v;
	return 0;
}

/* One comma-free value of a parameter of definition sp, as a node. */
static struct sq_node *value_node(struct sctx *c, const struct fhir_sp *sp, uint32_t pid,
				  const char *name, const char *mod, const char *v)
{
	struct sq_node *n = node(c, SQ_IX);
	int type = fhir_sp_type(sp);
	const char *rest, *raw = v;
	char **bars = NULL;
	size_t nbars = 0;
	struct time_val tv;

	/* v keeps its escapes: tokens and quantities split it at |, the others
	 * take it whole */
	v = unescape(c, raw, strlen(raw));
	if (!n || !v)
		return NULL;
	n->pid = pid;
	if (mod && (type == SPT_NUMBER || type == SPT_DATE || type == SPT_QUANTITY)) {
		/* ordered values take prefixes, not modifiers (:missing is handled before) */
		bad(c, name, "modifier ':%s' does not apply to a %s", mod,
		    type == SPT_NUMBER ? "number" : type == SPT_DATE ? "date" : "quantity");
		return NULL;
	}
	switch (type) {
	case SPT_NUMBER:
		n->ix = SIX_NUMBER;
		rest = prefix_of(v, &n->op);
		if (!parse_number(rest, &n->n1, &n->n2, &n->n3)) {
			bad(c, name, "not a number");
			return NULL;
		}
		return n;
	case SPT_QUANTITY:
		n->ix = SIX_QUANTITY;
		nbars = split_esc(c, prefix_of(raw, &n->op), '|', false, &bars);
		if (nbars == 0)
			return NULL;
		if (nbars != 1 && nbars != 3) {
			bad(c, name, "a quantity is number, number|system|code, number||code "
				     "or number|system|");
			return NULL;
		}
		if (nbars == 3) {
			n->s1 = *bars[1] ? bars[1] : NULL;
			n->s2 = *bars[2] ? bars[2] : NULL;
		}
		if (!parse_number(bars[0], &n->n1, &n->n2, &n->n3)) {
			bad(c, name, "not a number");
			return NULL;
		}
		return n;
	case SPT_DATE:
		n->ix = SIX_DATE;
		rest = prefix_of(v, &n->op);
		if (time_parse(rest, strlen(rest), TIME_DATETIME, &tv) < 0 &&
		    time_parse(rest, strlen(rest), TIME_INSTANT, &tv) < 0) {
			bad(c, name, "not a valid date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a zone)");
			return NULL;
		}
		n->t1 = tv.lo_ms;
		n->t2 = tv.hi_ms;
		return n;
	case SPT_STRING:
		n->ix = SIX_STRING;
		n->op = SQO_STARTS;
		if (mod && strcmp(mod, "exact") == 0) {
			n->op = SQO_EXACT;
			n->s2 = v;
		} else if (mod && strcmp(mod, "contains") == 0) {
			n->op = SQO_CONTAINS;
		} else if (mod) {
			bad(c, name, "modifier ':%s' does not apply to a string", mod);
			return NULL;
		}
		n->s1 = fold(c, v);
		return n;
	case SPT_URI:
		n->ix = SIX_URI;
		n->op = SQO_EQ;
		if (mod && strcmp(mod, "above") == 0)
			n->op = SQO_ABOVE;
		else if (mod && strcmp(mod, "below") == 0)
			n->op = SQO_BELOW;
		else if (mod) {
			bad(c, name, "modifier ':%s' does not apply to a uri", mod);
			return NULL;
		}
		n->s1 = v;
		return n;
	case SPT_REFERENCE:
		if (mod && strcmp(mod, "identifier") == 0) {
			/* [system|]value, as a token search of the Reference.identifier rows */
			nbars = split_esc(c, raw, '|', false, &bars);
			if (nbars == 0)
				return NULL;
			if (nbars > 2) {
				bad(c, name, ":identifier takes system|value or value");
				return NULL;
			}
			n->ix = SIX_TOKEN;
			n->op = SQO_EQ;
			n->pid = pid | STORE_PID_IDENT;
			n->s1 = nbars == 2 ? bars[0] : NULL;
			n->s2 = *bars[nbars - 1] ? bars[nbars - 1] : NULL;
			return n;
		}
		if (mod && !fhir_resource_type(mod)) {
			bad(c, name, "modifier ':%s' does not apply to a reference", mod);
			return NULL;
		}
		if (ref_value(c, name, v, mod ? fhir_resource_type(mod)->name : NULL,
			      fhir_sp_targets(sp), n) < 0)
			return NULL;
		return n;
	case SPT_TOKEN:
		n->ix = SIX_TOKEN;
		n->op = SQO_EQ;
		if (mod && strcmp(mod, "text") == 0) {
			/* the display or the CodeableConcept's text contains the words */
			n->op = SQO_CONTAINS;
			n->s1 = fold(c, v);
			return n;
		}
		nbars = split_esc(c, raw, '|', false, &bars);
		if (nbars == 0)
			return NULL;
		if (mod && strcmp(mod, "of-type") == 0) {
			/* system|code|value: the identifier's type, then its value
			 * (indexed as the token "system|code" / value) */
			if (nbars != 3 || !*bars[1] || !*bars[2]) {
				bad(c, name, ":of-type takes system|code|value");
				return NULL;
			}
			n->pid = pid | STORE_PID_OFTYPE;
			n->s1 = arena_printf(c->a, "%s|%s", bars[0], bars[1]);
			n->s2 = bars[2];
			return n->s1 ? n : NULL;
		}
		if (nbars > 2) {
			bad(c, name, "a token is system|code, |code, system| or code "
				     "(a | in a code is written \\|)");
			return NULL;
		}
		if (nbars == 2) {
			n->s1 = bars[0];              /* "" : no system */
			n->s2 = *bars[1] ? bars[1] : NULL;
		} else {
			n->s2 = bars[0];
		}
		if (mod && (strcmp(mod, "above") == 0 || strcmp(mod, "below") == 0)) {
			if (!icd10_system(n->s1) || !n->s2) {
				bad(c, name, ":%s needs a code system with a hierarchy this server knows "
					     "(ICD-10-CM, ICD-10-PCS): give system|code", mod);
				return NULL;
			}
			n->op = strcmp(mod, "above") == 0 ? SQO_ABOVE : SQO_BELOW;
			return n;
		}
		if (mod && strcmp(mod, "not") != 0) {
			bad(c, name, "modifier ':%s' is not supported on a token", mod);
			return NULL;
		}
		return n;
	default:
		bad(c, name, "this parameter cannot be searched");
		return NULL;
	}
}

/* A composite value: component values joined by $.  A composite of the
 * whole resource (expression: the type itself) has no rows: it is the AND of
 * its components' own parameters. */
static struct sq_node *composite_node(struct sctx *c, const struct fhir_sp *sp, const char *name,
				      const char *v)
{
	char **parts;
	size_t n = split_esc(c, v, '$', true, &parts);
	bool whole = sp->expression && strcmp(sp->expression, c->type) == 0;
	struct sq_node *comp = node(c, whole ? SQ_AND : SQ_COMPOSITE);

	if (!comp)
		return NULL;
	if (n != fhir_sp_ncomponents(sp)) {
		bad(c, name, "a value of this composite has %zu parts joined by $",
		    fhir_sp_ncomponents(sp));
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fhir_sp *def = fhir_sp_component(sp, i);
		struct sq_node *k;
		if (!def) {
			bad(c, name, "this composite cannot be searched");
			return NULL;
		}
		k = value_node(c, def, whole ? fhir_sp_pid(def) : fhir_sp_pid(sp), name, NULL, parts[i]);
		if (!k || k->kind != SQ_IX || add_kid(c, comp, k) < 0)
			return k ? (bad(c, name, "unsupported composite part"), NULL) : NULL;
	}
	return comp;
}

static int parse_param(struct sctx *c, const char *type, const char *name, const char *value,
		       struct sq_node **out);

/* _has:Type:refparam:rest = value */
static int has_param(struct sctx *c, const char *type, const char *name, const char *value,
		     struct sq_node **out)
{
	const char *p = name + 5, *c1 = strchr(p, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	char src[64], ref[64];
	const struct fhir_sp *sp;
	struct sq_node *n, *kid = NULL;
	int rc;

	if (!c1 || !c2 || (size_t)(c1 - p) >= sizeof(src) || (size_t)(c2 - c1 - 1) >= sizeof(ref))
		return bad(c, name, "_has takes _has:Type:reference-parameter:parameter");
	snprintf(src, sizeof(src), "%.*s", (int)(c1 - p), p);
	snprintf(ref, sizeof(ref), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	if (!fhir_resource_type(src))
		return bad(c, name, "unknown resource type '%s'", src);
	sp = fhir_params_find(c->cfg->params, src, ref);
	if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
		return bad(c, name, "'%s' is not a reference parameter of %s", ref, src);
	rc = parse_param(c, src, c2 + 1, value, &kid);
	if (rc != 0)
		return rc; /* an error, or unknown on src: the caller decides */
	n = node(c, SQ_HAS);
	if (!n || !kid)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	n->s1 = fhir_resource_type(src)->name;
	n->pid = fhir_sp_pid(sp);
	(void)type;
	add_kid(c, n, kid);
	*out = n;
	return 0;
}

/* subject:Patient.name=x, patient.organization.name=x */
static int chain_param(struct sctx *c, const char *type, const char *name, const char *dot,
		       const char *value, struct sq_node **out)
{
	char head[128];
	const char *colon, *target = NULL;
	const struct fhir_sp *sp;
	struct sq_node *any;
	const char *const *targets;
	size_t tried = 0;

	if ((size_t)(dot - name) >= sizeof(head))
		return bad(c, name, "name too long");
	snprintf(head, sizeof(head), "%.*s", (int)(dot - name), name);
	colon = strchr(head, ':');
	if (colon) {
		head[colon - head] = '\0';
		target = colon + 1;
		if (!fhir_resource_type(target))
			return bad(c, name, "unknown resource type '%s'", target);
	}
	sp = fhir_params_find(c->cfg->params, type, head);
	if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
		return bad(c, name, "'%s' is not a reference parameter of %s, so it cannot be chained",
			   head, type);
	targets = fhir_sp_targets(sp);
	any = node(c, SQ_OR);
	if (!any)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	/* the named target, or each allowed target that has the chained parameter */
	for (size_t i = 0; target ? i < 1 : targets[i] != NULL; i++) {
		const char *t = target ? fhir_resource_type(target)->name : targets[i];
		char chained[64];
		struct sq_node *kid = NULL, *n;
		snprintf(chained, sizeof(chained), "%.*s", (int)strcspn(dot + 1, ".:"), dot + 1);
		int rc;
		if (!target && !fhir_params_find(c->cfg->params, t, chained) &&
		    strncmp(chained, "_", 1) != 0)
			continue;
		if (++c->chains > MAX_CHAIN_NODES)
			return bad(c, name, "'%s' may point to too many types for this chain (more than %d "
					    "alternatives): name the target type (param:Type.chained)",
				   head, MAX_CHAIN_NODES);
		rc = parse_param(c, t, dot + 1, value, &kid);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue; /* t has no such parameter */
		n = node(c, SQ_CHAIN);
		if (!n || !kid)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		n->pid = fhir_sp_pid(sp);
		n->s1 = t;
		add_kid(c, n, kid);
		add_kid(c, any, n);
		tried++;
	}
	if (!tried && !target && !targets[0])
		return bad(c, name, "'%s' may point anywhere: name the target type "
				    "(param:Type.chained)", head);
	if (!tried)
		return 1; /* no target has the chained parameter: unknown, as any other */
	*out = any->nkids == 1 ? any->kids[0] : any;
	return 0;
}

/* _list=id: the resources of this type that the List names. */
static int list_param(struct sctx *c, const char *type, const char *value, struct sq_node **out)
{
	struct store_version v;
	struct err e = ERR_INIT;
	json_object *list = NULL, *entries;
	struct sq_node *any = node(c, SQ_OR);

	if (!any)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	if (!id_valid(value, strlen(value)))
		return bad(c, "_list", "not a valid List id");
	if (store_read(c->cfg->store, "List", value, &v, &e) == 0)
		list = json_parse_buf(v.json, v.len, 0, &e);
	store_version_release(&v);
	entries = json_get_arr(list, "entry");
	for (size_t i = 0; entries && i < json_object_array_length(entries); i++) {
		const char *ref = json_get_str(json_get_obj(json_object_array_get_idx(entries, i), "item"),
					       "reference");
		size_t tl = strlen(type);
		if (ref && strncmp(ref, type, tl) == 0 && ref[tl] == '/') {
			struct sq_node *n = node(c, SQ_ID);
			if (!n)
				break;
			n->s1 = arena_strndup(c->a, ref + tl + 1, strcspn(ref + tl + 1, "/"));
			add_kid(c, any, n);
		}
	}
	json_object_put(list);
	if (any->nkids == 0)
		any->kind = SQ_FALSE;
	*out = any;
	return 0;
}

/* A union of other parameters (R4's combo-code is code | component-code):
 * any of them matches; for :not and :missing=true, none of them. */
static int alias_param(struct sctx *c, const char *type, const struct binding *b,
		       const char *name, const char *mod, const char *value, struct sq_node **out)
{
	bool none = mod && (strcmp(mod, "not") == 0 ||
			    (strcmp(mod, "missing") == 0 && strcmp(value, "true") == 0));
	struct sq_node *u = node(c, none ? SQ_AND : SQ_OR);
	const char *outer = c->as_name;

	if (!u)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	if (!outer)
		c->as_name = name;
	for (size_t i = 0; i < b->nalias; i++) {
		char sub[160];
		struct sq_node *kid = NULL;
		int rc;
		snprintf(sub, sizeof(sub), "%s%s%s", b->alias[i]->code, mod ? ":" : "", mod ? mod : "");
		rc = parse_param(c, type, sub, value, &kid);
		if (rc != 0 || add_kid(c, u, kid) < 0) {
			c->as_name = outer;
			return rc < 0 ? -1 : err_set(c->e, ERR_INTERNAL, "union parameter not found");
		}
	}
	c->as_name = outer;
	*out = u;
	return 0;
}

static const int ix_of_type[] = {
	[SPT_NUMBER] = SIX_NUMBER, [SPT_DATE] = SIX_DATE, [SPT_STRING] = SIX_STRING,
	[SPT_TOKEN] = SIX_TOKEN, [SPT_REFERENCE] = SIX_REFERENCE, [SPT_COMPOSITE] = 0,
	[SPT_QUANTITY] = SIX_QUANTITY, [SPT_URI] = SIX_URI, [SPT_SPECIAL] = 0,
};

/* sp:missing=true (missing) or =false.  A composite's rows are its first
 * component's, under its own pid; a composite of the whole resource has no
 * rows: it is missing when any of its components' own parameters is. */
static struct sq_node *missing_node(struct sctx *c, const char *type, const struct fhir_sp *sp,
				    bool missing)
{
	struct sq_node *n;
	bool whole = fhir_sp_type(sp) == SPT_COMPOSITE && sp->expression &&
		     strcmp(sp->expression, type) == 0;

	if (whole) {
		n = node(c, missing ? SQ_OR : SQ_AND);
		for (size_t i = 0; n && i < fhir_sp_ncomponents(sp); i++) {
			const struct fhir_sp *def = fhir_sp_component(sp, i);
			if (def && add_kid(c, n, missing_node(c, type, def, missing)) < 0)
				return NULL;
		}
		return n;
	}
	n = node(c, SQ_MISSING);
	if (!n)
		return NULL;
	if (fhir_sp_type(sp) == SPT_COMPOSITE) {
		const struct fhir_sp *first = fhir_sp_component(sp, 0);
		n->ix = first ? ix_of_type[fhir_sp_type(first)] : 0;
	} else {
		n->ix = ix_of_type[fhir_sp_type(sp)];
	}
	n->pid = fhir_sp_pid(sp);
	n->b = missing;
	return n;
}

/* Does s hold a letter or digit (what full-text search matches on)? */
static bool has_words(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z') || *p >= 0x80)
			return true;
	return false;
}

/* One parameter occurrence on type: name (with modifier / chain) = value. */
static int parse_param(struct sctx *c, const char *type, const char *name, const char *value,
		       struct sq_node **out)
{
	char code[128];
	const char *colon, *dot, *mod = NULL;
	const struct binding *b;
	const struct fhir_sp *sp;
	struct sq_node *any;
	char **vals;
	size_t nv;

	*out = NULL;
	if (strncmp(name, "_has:", 5) == 0)
		return has_param(c, type, name, value, out);
	dot = strchr(name, '.');
	if (dot) {
		/* errors inside the chain name the whole parameter */
		const char *outer = c->as_name;
		int rc;
		if (!outer)
			c->as_name = name;
		rc = chain_param(c, type, name, dot, value, out);
		c->as_name = outer;
		return rc;
	}
	colon = strchr(name, ':');
	if ((size_t)(colon ? colon - name : (ptrdiff_t)strlen(name)) >= sizeof(code))
		return bad(c, name, "name too long");
	snprintf(code, sizeof(code), "%.*s", colon ? (int)(colon - name) : (int)strlen(name), name);
	if (colon)
		mod = colon + 1;

	/* parameters the store answers without index rows */
	if (strcmp(code, "_list") == 0) {
		if (mod)
			return bad(c, name, "_list takes no modifier");
		return list_param(c, type, value, out);
	}
	if (strcmp(code, "_text") == 0 || strcmp(code, "_content") == 0) {
		struct sq_node *n = node(c, SQ_TEXT);
		if (!n)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		if (mod)
			return bad(c, name, "%s takes no modifier", code);
		if (!has_words(value))
			return bad(c, name, "no words to search for");
		n->op = code[1] == 't' ? SQO_NARRATIVE : SQO_CONTENT;
		n->s1 = value;
		*out = n;
		return 0;
	}

	b = fhir_params_binding(c->cfg->params, type, code);
	if (!b)
		return 1; /* unknown: the caller decides (strict or lenient) */
	sp = b->sp;
	if (b->nalias)
		return alias_param(c, type, b, name, mod, value, out);
	if (strcmp(code, "_id") != 0 && strcmp(code, "_lastUpdated") != 0 &&
	    (!b->x || fhir_sp_unsupported(sp)[0]))
		return bad(c, name, "this server cannot search it (%s)",
			   b->why[0] ? b->why : fhir_sp_unsupported(sp)[0] ? fhir_sp_unsupported(sp)
									 : "nothing to evaluate");
	if (mod && strcmp(mod, "missing") == 0) {
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return bad(c, name, ":missing takes true or false");
		if (strcmp(code, "_id") == 0 || strcmp(code, "_lastUpdated") == 0) {
			/* every resource has both */
			*out = node(c, strcmp(value, "true") == 0 ? SQ_FALSE : SQ_AND);
			return *out ? 0 : err_set(c->e, ERR_NOMEM, "out of memory");
		}
		*out = missing_node(c, type, sp, strcmp(value, "true") == 0);
		return *out ? 0 : err_set(c->e, ERR_NOMEM, "out of memory");
	}
	if (strcmp(code, "_id") == 0 || strcmp(code, "_lastUpdated") == 0) {
		any = node(c, SQ_OR);
		if (!any)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		nv = split_values(c, value, ',', &vals);
		for (size_t i = 0; i < nv; i++) {
			struct sq_node *n = node(c, code[1] == 'i' ? SQ_ID : SQ_LASTUPDATED);
			if (!n)
				return err_set(c->e, ERR_NOMEM, "out of memory");
			if (mod)
				return bad(c, name, "%s takes no modifier other than :missing", code);
			if (code[1] == 'i') {
				n->s1 = vals[i];
			} else {
				struct time_val tv;
				const char *rest = prefix_of(vals[i], &n->op);
				if (time_parse(rest, strlen(rest), TIME_DATETIME, &tv) < 0)
					return bad(c, name, "not a valid date");
				n->t1 = tv.lo_ms;
				n->t2 = tv.hi_ms;
			}
			add_kid(c, any, n);
		}
		*out = any->nkids == 1 ? any->kids[0] : any;
		return 0;
	}
	any = node(c, SQ_OR);
	if (!any)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	if (mod && fhir_sp_type(sp) == SPT_COMPOSITE)
		return bad(c, name, "a composite parameter takes no modifier other than :missing");
	/* the values keep their escapes: \| and \$ are split on later */
	nv = split_esc(c, value, ',', true, &vals);
	for (size_t i = 0; i < nv; i++) {
		struct sq_node *n;
		if (!*vals[i])
			return bad(c, name, "empty value");
		n = fhir_sp_type(sp) == SPT_COMPOSITE ? composite_node(c, sp, name, vals[i])
						      : value_node(c, sp, fhir_sp_pid(sp), name, mod, vals[i]);
		if (!n)
			return -1;
		add_kid(c, any, n);
	}
	*out = any->nkids == 1 ? any->kids[0] : any;
	if (mod && strcmp(mod, "not") == 0 && fhir_sp_type(sp) == SPT_TOKEN) {
		struct sq_node *not = node(c, SQ_NOT);
		if (!not)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		add_kid(c, not, *out);
		*out = not;
	}
	return 0;
}

/* ---- control parameters ---- */

static int parse_total(struct sctx *c, const char *v)
{
	if (strcmp(v, "none") == 0)
		c->total = TOTAL_NONE;
	else if (strcmp(v, "estimate") == 0)
		c->total = TOTAL_ESTIMATE;
	else if (strcmp(v, "accurate") == 0)
		c->total = TOTAL_ACCURATE;
	else
		return bad(c, "_total", "none, estimate or accurate");
	return 0;
}

static int parse_sort(struct sctx *c, const char *value)
{
	char **keys;
	size_t n = split_values(c, value, ',', &keys);

	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i];
		struct sq_sort *s;
		bool desc = k[0] == '-';
		if (desc)
			k++;
		if (c->q.nsort == SQ_MAX_SORT)
			return bad(c, "_sort", "at most %d keys", SQ_MAX_SORT);
		s = &c->q.sort[c->q.nsort];
		memset(s, 0, sizeof(*s));
		s->desc = desc;
		if (strcmp(k, "_id") == 0) {
			s->kind = SQS_ID;
		} else if (strcmp(k, "_lastUpdated") == 0) {
			s->kind = SQS_LASTUPDATED;
		} else {
			const struct binding *b = fhir_params_binding(c->cfg->params, c->type, k);
			/* a union sorts by its first part (combo-code: code) */
			const struct fhir_sp *sp = !b ? NULL : b->nalias ? b->alias[0] : b->sp;
			/* only by values the index holds (not composites, specials,
			 * _text, or what this server cannot evaluate) */
			if (!sp || !ix_of_type[fhir_sp_type(sp)] || fhir_sp_unsupported(sp)[0] ||
			    (!b->nalias && !b->x))
				return bad(c, "_sort", "cannot sort %s by '%.60s'", c->type, k);
			s->kind = SQS_PARAM;
			s->ix = ix_of_type[fhir_sp_type(sp)];
			s->pid = fhir_sp_pid(sp);
		}
		c->q.nsort++;
	}
	return 0;
}

/* _include or _revinclude, with :iterate (or R3's :recurse) or no modifier. */
static bool include_name(const char *name, bool *reverse, bool *iterate)
{
	const char *rest;

	*reverse = strncmp(name, "_revinclude", 11) == 0;
	if (!*reverse && strncmp(name, "_include", 8) != 0)
		return false;
	rest = name + (*reverse ? 11 : 8);
	*iterate = strcmp(rest, ":iterate") == 0 || strcmp(rest, ":recurse") == 0;
	return *rest == '\0' || *rest == ':';
}

static int parse_include(struct sctx *c, const char *name, const char *value)
{
	bool reverse, iterate;
	struct include_spec *in;
	char **parts;
	size_t n;

	if (!include_name(name, &reverse, &iterate))
		return bad(c, name, "not an include");
	if (strchr(name, ':') && !iterate)
		return bad(c, name, "modifier ':%s' does not apply to an include (only :iterate)",
			   strchr(name, ':') + 1);

	if (c->ninc == MAX_INCLUDES)
		return bad(c, name, "at most %d _include and _revinclude", MAX_INCLUDES);
	in = &c->inc[c->ninc];
	memset(in, 0, sizeof(*in));
	in->reverse = reverse;
	in->iterate = iterate;
	if (strcmp(value, "*") == 0) {
		c->ninc++;
		return 0;
	}
	n = split_values(c, value, ':', &parts);
	if (n < 2 || n > 3)
		return bad(c, name, "takes Type:parameter or Type:parameter:TargetType");
	if (!fhir_resource_type(parts[0]))
		return bad(c, name, "unknown resource type '%s'", parts[0]);
	in->source = fhir_resource_type(parts[0])->name;
	if (strcmp(parts[1], "*") != 0) {
		const struct fhir_sp *sp = fhir_params_find(c->cfg->params, in->source, parts[1]);
		if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
			return bad(c, name, "'%s' is not a reference parameter of %s", parts[1], in->source);
		in->pid = fhir_sp_pid(sp);
	}
	if (n == 3) {
		if (!fhir_resource_type(parts[2]))
			return bad(c, name, "unknown resource type '%s'", parts[2]);
		in->target = fhir_resource_type(parts[2])->name;
	}
	/* an _include must start from the type searched (or an iterate step) */
	if (!reverse && !iterate && strcmp(in->source, c->type) != 0)
		return bad(c, name, "includes from %s are not part of a %s search", in->source, c->type);
	c->ninc++;
	return 0;
}

static void self_add(struct sctx *c, const char *name, const char *value)
{
	buf_addch(&c->self, c->self.len ? '&' : '?');
	url_encode(&c->self, name);
	buf_addch(&c->self, '=');
	url_encode(&c->self, value);
}

/* ---- cursor: base64url of "a|rkey|t:v|..." ---- */

static char *cursor_encode(struct sctx *c, bool before, const struct store_hit *h)
{
	struct buf raw = BUF_INIT(0);
	char *out;
	size_t cap;

	buf_addf(&raw, "%c|%" PRId64, before ? 'b' : 'a', h->rkey);
	for (size_t i = 0; i < c->q.nsort; i++) {
		const struct sq_key *k = &h->keys[i];
		switch (k->type) {
		case 1: buf_addf(&raw, "|i%" PRId64, k->i); break;
		case 2: buf_addf(&raw, "|r%.17g", k->r); break;
		case 3: buf_addf(&raw, "|s%zu:%s", strlen(k->s), k->s); break;
		default: buf_addstr(&raw, "|n"); break;
		}
	}
	cap = sodium_base64_encoded_len(raw.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out = arena_alloc(c->a, cap);
	if (out)
		sodium_bin2base64(out, cap, (const unsigned char *)buf_cstr(&raw), raw.len,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_release(&raw);
	return out;
}

static int cursor_decode(struct sctx *c, const char *s)
{
	size_t cap = strlen(s) + 1, len = 0, k = 0;
	char *raw = arena_alloc(c->a, cap), *p, *field;

	if (!raw || sodium_base642bin((unsigned char *)raw, cap - 1, s, strlen(s), NULL, &len, NULL,
				      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return bad(c, "_cursor", "not a paging cursor of this server");
	raw[len] = '\0';
	if ((raw[0] != 'a' && raw[0] != 'b') || raw[1] != '|')
		return bad(c, "_cursor", "not a paging cursor of this server");
	c->q.before = raw[0] == 'b';
	c->q.cursor_rkey = strtoll(raw + 2, &p, 10);
	/* each key: i<integer>, r<real>, s<length>:<bytes> (any bytes, '|' too), n */
	while (*p == '|' && k < c->q.nsort) {
		struct sq_key *key = &c->q.cursor[k++];
		field = p + 1;
		switch (field[0]) {
		case 'i': key->type = 1; key->i = strtoll(field + 1, &p, 10); break;
		case 'r': key->type = 2; key->r = strtod(field + 1, &p); break;
		case 's': {
			char *colon;
			unsigned long long n = strtoull(field + 1, &colon, 10);
			if (*colon != ':' || n > strlen(colon + 1))
				return bad(c, "_cursor", "not a paging cursor of this server");
			key->type = 3;
			key->s = arena_strndup(c->a, colon + 1, (size_t)n);
			p = colon + 1 + n;
			break;
		}
		case 'n': key->type = 0; p = field + 1; break;
		default: return bad(c, "_cursor", "not a paging cursor of this server");
		}
	}
	if (k != c->q.nsort || *p)
		return bad(c, "_cursor", "the cursor does not fit this search (was _sort changed?)");
	c->q.has_cursor = true;
	return 0;
}

/* ---- results ---- */

/* Resources by rkey, with their types (an _include follows the references
 * of its source type only: one definition may serve several types). */
struct rset {
	int64_t *rkey;
	const char **type;  /* the model's names */
	size_t n, cap;
};

static int rset_add(struct rset *s, int64_t rkey, const char *type)
{
	const struct fhir_type *t = fhir_resource_type(type);

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		int64_t *k = realloc(s->rkey, ncap * sizeof(*k));
		const char **ty;
		if (!k)
			return -1;
		s->rkey = k;
		ty = realloc(s->type, ncap * sizeof(*ty));
		if (!ty)
			return -1;
		s->type = ty;
		s->cap = ncap;
	}
	s->rkey[s->n] = rkey;
	s->type[s->n] = t ? t->name : "";
	s->n++;
	return 0;
}

static void rset_release(struct rset *s)
{
	free(s->rkey);
	free(s->type);
	memset(s, 0, sizeof(*s));
}

struct page {
	struct sctx *c;
	struct buf *out;
	size_t n;
	struct rset matches;
	struct store_hit first, last;
	char *first_key[SQ_MAX_SORT], *last_key[SQ_MAX_SORT]; /* malloc'd text keys */
	bool have;
	/* included so far (no resource twice) */
	int64_t *seen;
	size_t nseen, capseen;
	size_t included;
	bool truncated;   /* MAX_INCLUDED reached */
};

static bool seen_has(struct page *pg, int64_t rkey)
{
	for (size_t i = 0; i < pg->nseen; i++)
		if (pg->seen[i] == rkey)
			return true;
	return false;
}

static void seen_add(struct page *pg, int64_t rkey)
{
	if (pg->nseen == pg->capseen) {
		size_t ncap = pg->capseen ? pg->capseen * 2 : 64;
		int64_t *v = realloc(pg->seen, ncap * sizeof(*v));
		if (!v)
			return;
		pg->seen = v;
		pg->capseen = ncap;
	}
	pg->seen[pg->nseen++] = rkey;
}

/* _summary / _elements: a reduced copy of the resource, marked SUBSETTED. */
/* Is the member k (a JSON name: "valueQuantity", "_birthDate") one of the
 * element names (FHIR names: "value", "birthDate") in names? */
static bool element_listed(const struct fhir_elem *el, const char *k, char **names, size_t n)
{
	const char *json = k[0] == '_' ? k + 1 : k;

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		if (strcmp(names[i], json) == 0)
			return true;
		/* value[x]: listed as "value" */
		if (el->choice_group && strncmp(el->base, names[i], len) == 0 &&
		    strcmp(el->base + len, "[x]") == 0)
			return true;
	}
	return false;
}

/* _summary / _elements: a reduced copy of the resource, marked SUBSETTED.
 * _elements applies to the matches only (R4: "the list of elements does not
 * apply to included resources"); mandatory elements are always kept. */
static void write_subset(struct sctx *c, const char *json, size_t len, bool match, struct buf *out)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, 0, &e), *r, *meta, *tags, *tag;
	const struct fhir_type *t;
	char **names = NULL;
	size_t nnames = c->elements && match ? split_values(c, c->elements, ',', &names) : 0;

	if (!o) {
		buf_add(out, json, len);
		return;
	}
	t = fhir_resource_type(json_get_str(o, "resourceType") ? json_get_str(o, "resourceType") : "");
	r = json_object_new_object();
	json_object_object_foreach(o, k, v) {
		const struct fhir_elem *el = t ? fhir_elem_find(t, k[0] == '_' ? k + 1 : k) : NULL;
		bool keep = strcmp(k, "resourceType") == 0 || strcmp(k, "id") == 0 ||
			    strcmp(k, "meta") == 0;
		if (!keep && el) {
			switch (c->summary) {
			case SUM_TRUE: keep = el->summary || el->min > 0; break;
			case SUM_TEXT: keep = strcmp(k, "text") == 0 || el->min > 0; break;
			case SUM_DATA: keep = strcmp(k, "text") != 0; break;
			default: break;
			}
			if (nnames)
				keep = keep || element_listed(el, k, names, nnames) || el->min > 0;
		}
		if (keep)
			json_object_object_add(r, k, json_object_get(v));
	}
	meta = json_get_obj(r, "meta");
	if (!meta) {
		meta = json_object_new_object();
		json_object_object_add(r, "meta", meta);
	}
	tags = json_get_arr(meta, "tag");
	if (!tags) {
		tags = json_object_new_array();
		json_object_object_add(meta, "tag", tags);
	}
	tag = json_object_new_object();
	json_object_object_add(tag, "system",
			       json_object_new_string("http://terminology.hl7.org/CodeSystem/v3-ObservationValue"));
	json_object_object_add(tag, "code", json_object_new_string("SUBSETTED"));
	json_object_array_add(tags, tag);
	json_dump(r, out);
	json_object_put(r);
	json_object_put(o);
}

static void write_entry(struct page *pg, const struct store_hit *h, const char *mode)
{
	struct sctx *c = pg->c;
	struct buf *o = pg->out;
	bool match = strcmp(mode, "match") == 0;

	if (pg->n++)
		buf_addch(o, ',');
	buf_addf(o, "{\"fullUrl\":\"%s/%s/%s\",\"resource\":", c->req->base, h->v.type, h->v.id);
	if (c->summary != SUM_NONE || (c->elements && match))
		write_subset(c, h->v.json, h->v.len, match, o);
	else
		buf_add(o, h->v.json, h->v.len);
	buf_addf(o, ",\"search\":{\"mode\":\"%s\"}}", mode);
}

/* A copy of h's position (its sort keys and rkey) for a paging cursor; text
 * keys are copied whole (a cut key would page wrong).  -1: out of memory. */
static int keep_key(struct store_hit *dst, char *store[SQ_MAX_SORT], const struct store_hit *h,
		    size_t nkeys)
{
	*dst = *h;
	dst->v.json = NULL;
	for (size_t i = 0; i < nkeys; i++) {
		free(store[i]);
		store[i] = NULL;
		if (h->keys[i].type == 3) {
			store[i] = strdup(h->keys[i].s);
			if (!store[i])
				return -1;
			dst->keys[i].s = store[i];
		}
	}
	return 0;
}

static void page_release(struct page *pg)
{
	for (size_t i = 0; i < SQ_MAX_SORT; i++) {
		free(pg->first_key[i]);
		free(pg->last_key[i]);
	}
	rset_release(&pg->matches);
	free(pg->seen);
}

/* May the requester see h?  (Labels: fhir_req.visible.) */
static bool may_see(struct sctx *c, const struct store_hit *h)
{
	struct fhir_req *rq = c->req;

	if (!rq->visible || rq->visible(rq->visible_ctx, h->v.type, h->v.id, h->v.json, h->v.len))
		return true;
	rq->withheld = true;
	return false;
}

static int on_match(void *arg, const struct store_hit *h)
{
	struct page *pg = arg;

	if (!may_see(pg->c, h)) {
		/* left out, but the page goes on after it */
		if ((!pg->have && keep_key(&pg->first, pg->first_key, h, pg->c->q.nsort) < 0) ||
		    keep_key(&pg->last, pg->last_key, h, pg->c->q.nsort) < 0)
			return err_set(pg->c->e, ERR_NOMEM, "out of memory");
		pg->have = true;
		return 0;
	}
	if (rset_add(&pg->matches, h->rkey, h->v.type) < 0)
		return err_set(pg->c->e, ERR_NOMEM, "out of memory");
	seen_add(pg, h->rkey);
	if ((!pg->have && keep_key(&pg->first, pg->first_key, h, pg->c->q.nsort) < 0) ||
	    keep_key(&pg->last, pg->last_key, h, pg->c->q.nsort) < 0)
		return err_set(pg->c->e, ERR_NOMEM, "out of memory");
	pg->have = true;
	if (pg->c->summary != SUM_COUNT)
		write_entry(pg, h, "match");
	return 0;
}

struct inc_round {
	struct page *pg;
	struct rset found;
	const char *patient;    /* $everything: other patients are not included */
};

static int on_include(void *arg, const struct store_hit *h)
{
	struct inc_round *r = arg;
	struct page *pg = r->pg;

	if (seen_has(pg, h->rkey))
		return 0;
	if (r->patient && strcmp(h->v.type, "Patient") == 0 && strcmp(h->v.id, r->patient) != 0)
		return 0; /* a Group's other members are not this patient's record */
	if (!may_see(pg->c, h))
		return 0;
	if (pg->included >= MAX_INCLUDED) {
		pg->truncated = true;
		return 1;
	}
	seen_add(pg, h->rkey);
	pg->included++;
	if (rset_add(&r->found, h->rkey, h->v.type) < 0)
		return err_set(pg->c->e, ERR_NOMEM, "out of memory");
	write_entry(pg, h, "include");
	return 0;
}

static int run_includes(struct sctx *c, struct page *pg)
{
	struct rset owned = { NULL, NULL, 0, 0 };
	const struct rset *from = &pg->matches;
	int64_t *only = NULL;
	int rc = 0;

	for (int round = 0; round < INCLUDE_ROUNDS && from->n && rc == 0; round++) {
		struct inc_round r;

		memset(&r, 0, sizeof(r));
		r.pg = pg;
		r.patient = c->req->interaction == FHIR_EVERYTHING ? c->req->id : NULL;
		for (size_t i = 0; i < c->ninc && rc == 0; i++) {
			const struct include_spec *in = &c->inc[i];
			const int64_t *ids = from->rkey;
			size_t nids = from->n;
			if (round > 0 && !in->iterate)
				continue;
			if ((!in->reverse && in->source) || (in->reverse && in->target)) {
				/* _include: from the resources of its source type;
				 * _revinclude=Type:param:Target: to those of the target type */
				const char *want = in->reverse ? in->target : in->source;
				free(only);
				only = malloc(from->n * sizeof(*only));
				if (!only) {
					rc = err_set(c->e, ERR_NOMEM, "out of memory");
					break;
				}
				nids = 0;
				for (size_t k = 0; k < from->n; k++)
					if (strcmp(from->type[k], want) == 0)
						only[nids++] = from->rkey[k];
				ids = only;
			}
			/* _include: to the target type; _revinclude: resources of the source type */
			if (nids && store_search_refs(c->cfg->store, ids, nids, in->pid,
						      in->reverse ? in->source : in->target, in->reverse,
						      on_include, &r, c->e) < 0)
				rc = -1;
		}
		rset_release(&owned);
		owned = r.found;
		from = &owned;
	}
	free(only);
	rset_release(&owned);
	return rc;
}

static void write_link(struct buf *o, struct sctx *c, const char *rel, const char *cursor,
		       bool *first)
{
	buf_addf(o, "%s{\"relation\":\"%s\",\"url\":\"", *first ? "" : ",", rel);
	*first = false;
	buf_addstr(o, c->req->base);
	buf_addstr(o, c->path);
	buf_add(o, buf_cstr(&c->self), c->self.len);
	if (cursor) {
		buf_addstr(o, c->self.len ? "&_cursor=" : "?_cursor=");
		buf_addstr(o, cursor);
	}
	buf_addstr(o, "\"}");
}

/* ---- the compartment (Patient) ---- */

/* The parameters linking type to a Patient (CompartmentDefinition-patient). */
static size_t compartment_params(const char *type, const char **out, size_t cap)
{
	static json_object *def;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	json_object *res;
	size_t n = 0;

	pthread_mutex_lock(&mu);
	if (!def) {
		const struct embedded_file *f = embedded_find("data/fhir/CompartmentDefinition-patient.json");
		struct err e = ERR_INIT;
		if (f)
			def = json_parse_buf((const char *)f->data, f->len, 0, &e);
	}
	pthread_mutex_unlock(&mu);
	res = json_get_arr(def, "resource");
	for (size_t i = 0; res && i < json_object_array_length(res); i++) {
		json_object *r = json_object_array_get_idx(res, i);
		json_object *params = json_get_arr(r, "param");
		if (!json_is_str(json_get(r, "code"), type))
			continue;
		for (size_t k = 0; params && k < json_object_array_length(params) && n < cap; k++)
			out[n++] = json_object_get_string(json_object_array_get_idx(params, k));
	}
	return n;
}

/* type's resources in the compartment of Patient/id: an OR of its links. */
static int compartment_node(struct sctx *c, const char *type, const char *id, struct sq_node **out)
{
	const char *params[16];
	size_t n = compartment_params(type, params, 16);
	struct sq_node *any = node(c, SQ_OR);

	if (!any)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	if (strcmp(type, "Patient") == 0) {
		struct sq_node *self = node(c, SQ_ID);
		if (self) {
			self->s1 = id;
			add_kid(c, any, self);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct fhir_sp *sp = fhir_params_find(c->cfg->params, type, params[i]);
		struct sq_node *k;
		if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
			continue;
		k = node(c, SQ_IX);
		if (!k)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		k->ix = SIX_REFERENCE;
		k->op = SQO_EQ;
		k->pid = fhir_sp_pid(sp);
		k->s1 = "Patient";
		k->s2 = id;
		add_kid(c, any, k);
	}
	if (any->nkids == 0)
		any->kind = SQ_FALSE;
	*out = any;
	return 0;
}

/* $everything: the patient and every resource in its compartment, of every
 * type (or of _type), changed since _since; paged like a search. */
static int everything_plan(struct sctx *c, const char *id, const struct fhir_param *params,
			   size_t n)
{
	struct sq_node *any = node(c, SQ_OR), *self = node(c, SQ_AND), *k;
	struct sq_node *types = NULL;
	uint32_t pids[256];
	size_t npids = 0;

	if (!any || !self)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	/* the patient itself */
	k = node(c, SQ_TYPE);
	if (!k || add_kid(c, self, k) < 0)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	k->s1 = "Patient";
	k = node(c, SQ_ID);
	if (!k || add_kid(c, self, k) < 0 || add_kid(c, any, self) < 0)
		return err_set(c->e, ERR_NOMEM, "out of memory");
	k->s1 = id;
	/* what refers to it through a compartment parameter */
	for (size_t t = 0; t < fhir_n_resource_types; t++) {
		const char *type = fhir_types[fhir_resource_types[t]].name, *codes[16];
		size_t nc = compartment_params(type, codes, 16);
		for (size_t i = 0; i < nc; i++) {
			const struct fhir_sp *sp = fhir_params_find(c->cfg->params, type, codes[i]);
			bool dup = false;
			if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
				continue;
			for (size_t p = 0; p < npids; p++)
				dup = dup || pids[p] == fhir_sp_pid(sp);
			if (!dup && npids < 256)
				pids[npids++] = fhir_sp_pid(sp);
		}
	}
	for (size_t p = 0; p < npids; p++) {
		k = node(c, SQ_IX);
		if (!k)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		k->ix = SIX_REFERENCE;
		k->op = SQO_EQ;
		k->pid = pids[p];
		k->s1 = "Patient";
		k->s2 = id;
		add_kid(c, any, k);
	}
	add_kid(c, c->and, any);
	c->q.type = NULL;
	c->q.count = SEARCH_DEFAULT_COUNT;
	c->total = TOTAL_ESTIMATE;
	for (size_t i = 0; i < n; i++) {
		const char *name = params[i].name, *v = params[i].value;
		if (strcmp(name, "_count") == 0) {
			char *end;
			long cnt = strtol(v, &end, 10);
			if (!*v || *end || cnt < 0)
				return bad(c, name, "a whole number");
			c->q.count = cnt > SEARCH_MAX_COUNT ? SEARCH_MAX_COUNT : (size_t)cnt;
			self_add(c, name, v);
		} else if (strcmp(name, "_since") == 0) {
			struct time_val tv;
			if (time_parse(v, strlen(v), TIME_DATETIME, &tv) < 0)
				return bad(c, name, "not a valid instant");
			k = node(c, SQ_LASTUPDATED);
			if (!k)
				return err_set(c->e, ERR_NOMEM, "out of memory");
			k->op = SQO_GE;
			k->t1 = tv.lo_ms;
			k->t2 = tv.hi_ms;
			add_kid(c, c->and, k);
			self_add(c, name, v);
		} else if (strcmp(name, "_type") == 0) {
			char **names;
			size_t nt = split_values(c, v, ',', &names);
			types = node(c, SQ_OR);
			for (size_t t = 0; t < nt; t++) {
				if (!fhir_resource_type(names[t]))
					return bad(c, name, "unknown resource type '%.60s'", names[t]);
				k = node(c, SQ_TYPE);
				if (!k || add_kid(c, types, k) < 0)
					return err_set(c->e, ERR_NOMEM, "out of memory");
				k->s1 = fhir_resource_type(names[t])->name;
			}
			add_kid(c, c->and, types);
			self_add(c, name, v);
		} else if (strcmp(name, "_cursor") == 0) {
			if (cursor_decode(c, v) < 0)
				return -1;
			c->cursor = v;
		} else if (strcmp(name, "_total") == 0) {
			if (parse_total(c, v) < 0)
				return -1;
			self_add(c, name, v);
		} else if (strcmp(name, "_format") != 0 && strcmp(name, "_pretty") != 0) {
			if (c->req->strict)
				return bad(c, name, "$everything takes _since, _type, _count");
			fhir_issue_add(&c->warn, FHIR_WARNING, "not-supported", name,
				       "parameter '%.60s' is not supported by $everything and was ignored", name);
		}
	}
	c->q.where = c->and;
	c->q.want_total = c->total == TOTAL_ACCURATE;
	/* and what the page's resources refer to (practitioners, organizations,
	 * medications, ...): "whatever resources are needed to support the
	 * records", as includes, of the _type types when given */
	if (!types) {
		memset(&c->inc[0], 0, sizeof(c->inc[0]));
		c->ninc = 1;
	}
	for (size_t t = 0; types && t < types->nkids && t < MAX_INCLUDES; t++) {
		memset(&c->inc[t], 0, sizeof(c->inc[t]));
		c->inc[t].target = types->kids[t]->s1;
		c->ninc = t + 1;
	}
	return 0;
}

/* ---- the request ---- */

static bool control_param(const char *name)
{
	static const char *const names[] = { "_count", "_sort", "_total", "_summary", "_elements",
					     "_cursor", "_format", "_pretty", NULL };

	bool reverse, iterate;

	for (size_t i = 0; names[i]; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return include_name(name, &reverse, &iterate);
}

/* Parse every parameter into c (errors in c->e). */
static int plan(struct sctx *c, const struct fhir_param *params, size_t n)
{
	c->q.type = c->type;
	c->q.count = SEARCH_DEFAULT_COUNT;
	c->total = TOTAL_ESTIMATE;
	/* control parameters first: _sort decides how a _cursor reads */
	for (size_t i = 0; i < n; i++) {
		const char *name = params[i].name, *v = params[i].value;
		bool reverse, iterate;
		if (strcmp(name, "_count") == 0) {
			char *end;
			long k = strtol(v, &end, 10);
			if (!*v || *end || k < 0)
				return bad(c, name, "a whole number");
			c->q.count = k > SEARCH_MAX_COUNT ? SEARCH_MAX_COUNT : (size_t)k;
			self_add(c, name, v);
		} else if (strcmp(name, "_sort") == 0) {
			if (parse_sort(c, v) < 0)
				return -1;
			self_add(c, name, v);
		} else if (strcmp(name, "_total") == 0) {
			if (parse_total(c, v) < 0)
				return -1;
			self_add(c, name, v);
		} else if (strcmp(name, "_summary") == 0) {
			static const struct { const char *n; int m; } modes[] = {
				{ "true", SUM_TRUE }, { "text", SUM_TEXT }, { "data", SUM_DATA },
				{ "count", SUM_COUNT }, { "false", SUM_NONE },
			};
			size_t k;
			for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
				if (strcmp(v, modes[k].n) == 0)
					break;
			if (k == sizeof(modes) / sizeof(modes[0]))
				return bad(c, name, "true, text, data, count or false");
			c->summary = modes[k].m;
			self_add(c, name, v);
		} else if (strcmp(name, "_elements") == 0) {
			c->elements = v;
			self_add(c, name, v);
		} else if (include_name(name, &reverse, &iterate)) {
			if (parse_include(c, name, v) < 0)
				return -1;
			self_add(c, name, v);
		}
	}
	/* _summary=count, and _count=0 (the same in R4): the total, no entries */
	if (c->summary == SUM_COUNT || c->q.count == 0)
		c->total = TOTAL_ACCURATE;
	for (size_t i = 0; i < n; i++) {
		const char *name = params[i].name, *v = params[i].value;
		struct sq_node *cond = NULL;
		int r;

		if (strcmp(name, "_cursor") == 0) {
			if (cursor_decode(c, v) < 0)
				return -1;
			c->cursor = v;
			continue;
		}
		if (control_param(name))
			continue;
		if (strcmp(name, "_contained") == 0 || strcmp(name, "_containedType") == 0 ||
		    strcmp(name, "_query") == 0 || strcmp(name, "_filter") == 0) {
			if (c->req->strict)
				return bad(c, name, "not supported by this server");
			fhir_issue_add(&c->warn, FHIR_WARNING, "not-supported", name,
				       "search parameter '%.60s' is not supported and was ignored", name);
			continue;
		}
		r = parse_param(c, c->type, name, v, &cond);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (c->req->strict)
				return err_set(c->e, ERR_INVALID, "unknown search parameter '%.60s' for %s",
					       name, c->type);
			fhir_issue_add(&c->warn, FHIR_WARNING, "not-supported", name,
				       "unknown search parameter '%.60s' for %s was ignored", name, c->type);
			continue;
		}
		if (add_kid(c, c->and, cond) < 0)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		self_add(c, name, v);
	}
	c->q.where = c->and->nkids ? c->and : NULL;
	c->q.want_total = c->total == TOTAL_ACCURATE;
	return 0;
}

#define FORM_MAX_PARAMS 256

/* application/x-www-form-urlencoded body of POST _search: up to cap
 * parameters into out; *bad_form: a bad %-escape, or more than cap. */
static size_t form_params(struct arena *a, const char *body, size_t len, struct fhir_param *out,
			  size_t cap, bool *bad_form)
{
	size_t n = 0;

	*bad_form = false;
	for (size_t i = 0; i < len;) {
		size_t amp = i;
		struct buf name = BUF_INIT(0), value = BUF_INIT(0);
		const char *eq;
		while (amp < len && body[amp] != '&')
			amp++;
		eq = memchr(body + i, '=', amp - i);
		if (url_decode(&name, body + i, (size_t)((eq ? eq : body + amp) - (body + i)), 1) < 0 ||
		    (eq && url_decode(&value, eq + 1, (size_t)(body + amp - eq - 1), 1) < 0)) {
			*bad_form = true;
		} else if (name.len && n == cap) {
			*bad_form = true;
		} else if (name.len) {
			out[n].name = arena_strdup(a, buf_cstr(&name));
			out[n].value = arena_strdup(a, buf_cstr(&value));
			n++;
		}
		buf_release(&name);
		buf_release(&value);
		i = amp + 1;
	}
	return n;
}

static int search_run(struct sctx *c, struct fhir_resp *resp, const struct fhir_param *params,
		      size_t nparams)
{
	struct page pg;
	struct buf entries = BUF_INIT(0);
	struct buf *o = &resp->body;
	bool more = false, first = true;
	int64_t total = -1;
	char bid[ID_UUID_LEN + 1], now[TIME_INSTANT_MAX];
	size_t count = c->q.count;
	int rc = -1;

	memset(&pg, 0, sizeof(pg));
	pg.c = c;
	pg.out = &entries;
	fhir_params_rdlock(c->cfg->params);
	if ((c->req->interaction == FHIR_EVERYTHING ? everything_plan(c, c->req->id, params, nparams)
						    : plan(c, params, nparams)) < 0) {
		fhir_params_unlock(c->cfg->params);
		goto out;
	}
	fhir_params_unlock(c->cfg->params);
	count = c->q.count;
	if (c->summary == SUM_COUNT)
		c->q.count = 0;
	if (store_search(c->cfg->store, &c->q, on_match, &pg, &more, &total, c->e) < 0)
		goto out;
	if (c->total == TOTAL_ESTIMATE && !c->q.has_cursor && !more)
		total = (int64_t)pg.matches.n; /* the first page holds them all */
	if (c->ninc && pg.matches.n && c->summary != SUM_COUNT && run_includes(c, &pg) < 0)
		goto out;
	if (pg.truncated)
		fhir_issue_add(&c->warn, FHIR_WARNING, "too-costly", "_include",
			       "only the first %d included resources are in the page", MAX_INCLUDED);
	if (c->req->no_total) {
		/* said to everyone whose role does not see every label, whether or
		 * not this page withheld anything: no count, nothing to infer from */
		total = -1;
		fhir_issue_add(&c->warn, FHIR_INFORMATION, "suppressed", NULL,
			       "results are limited to the records your role may see; no total is given");
	}
	if (c->warn.n) {
		scrub_issues(&c->warn);
		if (pg.n++)
			buf_addch(&entries, ',');
		buf_addstr(&entries, "{\"resource\":");
		fhir_outcome_write(&c->warn, &entries);
		buf_addstr(&entries, ",\"search\":{\"mode\":\"outcome\"}}");
	}
	if (entries.failed) {
		err_set(c->e, ERR_NOMEM, "out of memory");
		goto out;
	}
	id_new(bid);
	time_format_instant(time_now_ms(), now);
	buf_reset(o);
	buf_addf(o, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
		    "\"type\":\"searchset\"", bid, now);
	if (total >= 0)
		buf_addf(o, ",\"total\":%" PRId64, total);
	buf_addstr(o, ",\"link\":[");
	write_link(o, c, "self", c->cursor, &first);
	if (c->q.has_cursor)
		write_link(o, c, "first", NULL, &first);
	/* next: after the last row, when there is more that way (or we came from after) */
	if (pg.have && count && ((!c->q.before && more) || c->q.before))
		write_link(o, c, "next", cursor_encode(c, false, &pg.last), &first);
	if (pg.have && count && c->q.has_cursor && (c->q.before ? more : true))
		write_link(o, c, "previous", cursor_encode(c, true, &pg.first), &first);
	buf_addch(o, ']');
	if (pg.n) {
		buf_addstr(o, ",\"entry\":[");
		buf_add(o, entries.data, entries.len);
		buf_addch(o, ']');
	}
	buf_addch(o, '}');
	resp->status = 200;
	rc = 0;
out:
	page_release(&pg);
	buf_release(&entries);
	buf_release(&c->self);
	return rc;
}

int fhir_search(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct sctx c;
	struct err e = ERR_INIT;
	struct fhir_param *params = (struct fhir_param *)req->params, *form;
	size_t nparams = req->n_params;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.req = req;
	c.a = req->arena;
	c.e = &e;
	buf_init(&c.self, 0);
	fhir_issues_init(&c.warn);
	if (!cfg->params) {
		err_set(&e, ERR_NOT_SUPPORTED, "search is not available");
		goto fail;
	}
	c.type = req->interaction == FHIR_SEARCH ? req->type
		 : req->interaction == FHIR_EVERYTHING ? "Patient" : req->ctype;
	if (!c.type || !fhir_resource_type(c.type)) {
		err_set(&e, ERR_NOT_FOUND, "unknown resource type '%.64s'", c.type ? c.type : "");
		goto fail;
	}
	c.type = fhir_resource_type(c.type)->name;
	if (req->interaction == FHIR_SEARCH) {
		c.path = arena_printf(req->arena, "/%s", c.type);
	} else {
		if (strcmp(req->type, "Patient") != 0) {
			err_set(&e, ERR_NOT_SUPPORTED, "only the Patient compartment is supported");
			goto fail;
		}
		if (!id_valid(req->id, strlen(req->id))) {
			err_set(&e, ERR_INVALID, "'%.70s' is not a valid resource id", req->id);
			goto fail;
		}
		c.path = req->interaction == FHIR_EVERYTHING
			 ? arena_printf(req->arena, "/Patient/%s/$everything", req->id)
			 : arena_printf(req->arena, "/Patient/%s/%s", req->id, c.type);
		if (req->interaction == FHIR_EVERYTHING) {
			struct store_version v;
			/* the patient must be there (404, or 410 if deleted) */
			if (store_read(cfg->store, "Patient", req->id, &v, &e) < 0) {
				store_version_release(&v);
				goto fail;
			}
			store_version_release(&v);
		}
	}
	if (!c.path) {
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	c.and = node(&c, SQ_AND);
	if (!c.and) {
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (req->body_len) {
		/* POST [type]/_search: the parameters may be in the body too */
		bool bad_form;
		size_t nf;
		if (!req->content_type ||
		    strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) != 0) {
			err_set(&e, ERR_MEDIA_TYPE,
				"_search takes application/x-www-form-urlencoded parameters");
			goto fail;
		}
		/* the URL's parameters, then the body's */
		form = arena_alloc(req->arena, (req->n_params + FORM_MAX_PARAMS) * sizeof(*form));
		if (!form) {
			err_set(&e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		if (req->n_params)
			memcpy(form, req->params, req->n_params * sizeof(*form));
		nf = form_params(req->arena, req->body, req->body_len, form + req->n_params,
				 FORM_MAX_PARAMS, &bad_form);
		if (bad_form) {
			err_set(&e, ERR_INVALID, "malformed form body (a bad %%-escape, or more than %d "
						 "parameters)", FORM_MAX_PARAMS);
			goto fail;
		}
		params = form;
		nparams = req->n_params + nf;
	}
	if (req->interaction == FHIR_SEARCH_COMPARTMENT) {
		struct sq_node *comp = NULL;
		fhir_params_rdlock(cfg->params);
		if (compartment_node(&c, c.type, req->id, &comp) < 0) {
			fhir_params_unlock(cfg->params);
			goto fail;
		}
		fhir_params_unlock(cfg->params);
		add_kid(&c, c.and, comp);
	}
	if (search_run(&c, resp, params, nparams) < 0)
		goto fail;
	return FHIR_DONE;
fail:
	buf_release(&c.self);
	scrub_utf8(e.msg);
	fhir_resp_error(resp, &e);
	return FHIR_DONE;
}

/* ---- conditional operations ---- */

struct ids_ctx {
	char (*ids)[ID_MAX + 1];
	size_t max, n;
};

static int on_id(void *arg, const struct store_hit *h)
{
	struct ids_ctx *x = arg;

	if (x->n < x->max)
		snprintf(x->ids[x->n], ID_MAX + 1, "%s", h->v.id);
	x->n++;
	return 0;
}

int fhir_search_ids(const struct fhir_config *cfg, const char *type, const char *query,
		    char (*ids)[ID_MAX + 1], size_t max, size_t *n, struct err *e)
{
	struct arena a;
	struct fhir_req req;
	struct sctx c;
	struct fhir_param params[64];
	struct ids_ctx x = { ids, max, 0 };
	bool bad_form, more = false;
	size_t np;
	int rc = -1;

	*n = 0;
	if (!cfg->params)
		return err_set(e, ERR_NOT_SUPPORTED, "search is not available");
	if (!fhir_resource_type(type))
		return err_set(e, ERR_INVALID, "unknown resource type '%.64s'", type);
	arena_init(&a, 1 << 20);
	memset(&req, 0, sizeof(req));
	req.interaction = FHIR_SEARCH;
	req.type = type;
	req.strict = true; /* a condition must mean what it says */
	req.base = "";
	req.arena = &a;
	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.req = &req;
	c.a = &a;
	c.e = e;
	c.type = fhir_resource_type(type)->name;
	buf_init(&c.self, 0);
	fhir_issues_init(&c.warn);
	c.and = node(&c, SQ_AND);
	np = form_params(&a, query, strlen(query), params, 64, &bad_form);
	if (bad_form || np == 0) {
		err_set(e, ERR_INVALID, "the condition must be search parameters");
		goto out;
	}
	fhir_params_rdlock(cfg->params);
	rc = plan(&c, params, np);
	fhir_params_unlock(cfg->params);
	if (rc < 0)
		goto out;
	rc = -1;
	c.q.count = max + 1;
	c.q.want_total = false;
	c.q.nsort = 0;
	if (store_search(cfg->store, &c.q, on_id, &x, &more, NULL, e) < 0)
		goto out;
	*n = x.n;
	rc = 0;
out:
	if (rc < 0)
		scrub_utf8(e->msg);
	buf_release(&c.self);
	arena_release(&a);
	return rc;
}
