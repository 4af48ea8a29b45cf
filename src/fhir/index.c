/* index.c - search index rows of a resource (see search.h).
 *
 * Every parameter bound to the resource's type is evaluated (FHIRPath) and
 * each node it yields becomes rows by the parameter's type and the node's
 * FHIR type, following R4's search page:
 *   token      Coding, CodeableConcept (each coding; text for :text),
 *              Identifier (system|value; type|value rows for :of-type),
 *              ContactPoint (value), code/string/id/uri/boolean (the value)
 *   string     string and markdown; HumanName and Address parts
 *   date       date, dateTime, instant, Period, Timing.event: the range
 *   number     integer and decimal, with the range of their precision
 *   quantity   Quantity and its kinds, Money, Range (low and high)
 *   reference  Reference (Type/id, absolute url; identifier for :identifier),
 *              canonical and uri (the url)
 *   uri        uri, url, canonical
 *   composite  each component of one value in one group
 * plus one full-text row for _text (the narrative) and _content (narrative,
 * notes and text/plain attachments), when the resource has any of them.  _id and _lastUpdated need no rows: the store has them. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "fhir/search_int.h"
#include "mpi/mpi.h"
#include "base/banned.h"

#define FTS_MAX_BYTES (256 * 1024)

void fhir_ixrows_init(struct fhir_ixrows *r)
{
	r->v = NULL;
	r->n = r->cap = 0;
	r->failed = false;
	arena_init(&r->arena, 0);
}

void fhir_ixrows_reset(struct fhir_ixrows *r)
{
	r->n = 0;
	r->failed = false;
	arena_reset(&r->arena);
}

void fhir_ixrows_release(struct fhir_ixrows *r)
{
	free(r->v);
	arena_release(&r->arena);
	r->v = NULL;
	r->n = r->cap = 0;
}

static struct store_ix_row *row(struct fhir_ixrows *r, int kind, uint32_t pid, uint32_t grp)
{
	struct store_ix_row *x;

	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		struct store_ix_row *v = realloc(r->v, ncap * sizeof(*v));
		if (!v) {
			r->failed = true;
			return NULL;
		}
		r->v = v;
		r->cap = ncap;
	}
	x = &r->v[r->n++];
	memset(x, 0, sizeof(*x));
	x->kind = (uint8_t)kind;
	x->pid = pid;
	x->grp = grp;
	return x;
}

static const char *keep(struct fhir_ixrows *r, const char *s, size_t n)
{
	char *p = arena_strndup(&r->arena, s, n);

	if (!p)
		r->failed = true;
	return p;
}

/* The length of s[0..n) cut to at most max bytes without splitting a UTF-8
 * character (a cut value must still be text). */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* ---- folding ---- */

/* Latin letters with diacritics (U+00C0..U+017F) to their base letter. */
static const char latin_base[] =
	/* C0 */ "AAAAAAACEEEEIIII" "DNOOOOO*OUUUUYTs"
	/* E0 */ "aaaaaaaceeeeiiii" "dnooooo/ouuuuyty"
	/* 100 */ "AaAaAaCcCcCcCcDd" "DdEeEeEeEeEeGgGg"
	/* 120 */ "GgGgHhHhIiIiIiIi" "IiJjJjKkkLlLlLlL"
	/* 140 */ "lLlNnNnNnnNnOoOo" "OoOoRrRrRrSsSsSs"
	/* 160 */ "SsTtTtTtUuUuUuUu" "UuUuWwYyYZzZzZzs";

void fhir_fold(const char *s, size_t n, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c < 0x80) {
			buf_addch(out, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0 && i + 1 < n) {
			unsigned cp = ((c & 0x1f) << 6) | (p[i + 1] & 0x3f);
			if (cp >= 0xc0 && cp < 0x180 && latin_base[cp - 0xc0] != '*' &&
			    latin_base[cp - 0xc0] != '/') {
				char b = latin_base[cp - 0xc0];
				buf_addch(out, (char)(b >= 'A' && b <= 'Z' ? b + 32 : b));
				/* the ligatures are two letters: sharp s ss, ae, oe */
				if (cp == 0xdf)
					buf_addch(out, 's');
				else if (cp == 0xc6 || cp == 0xe6)
					buf_addch(out, 'e');
				else if (cp == 0x152 || cp == 0x153)
					buf_addch(out, 'e');
				i += 2;
				continue;
			}
		}
		buf_addch(out, (char)c);
		i++;
	}
}

/* ---- values ---- */

struct ix_ctx {
	const struct fhir_params *p;
	json_object *res;
	struct fhir_ixrows *out;
	struct buf tmp;
	struct fp_result r, rc;
	uint32_t next_group;
};

static const char *str(json_object *o)
{
	return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static bool type_is(const struct fp_node *n, const char *name)
{
	return n->type && strcmp(n->type->name, name) == 0;
}

#define TEXT_TOKEN_MAX 200

/* A token row: system (NULL: none) and code. */
static void add_token(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *sys,
		      const char *code)
{
	struct store_ix_row *x;

	if (!code)
		return; /* a system alone matches no token search worth a row */
	x = row(c->out, SIX_TOKEN, pid, grp);
	if (!x)
		return;
	x->s1 = sys ? keep(c->out, sys, strlen(sys)) : NULL;
	x->s2 = keep(c->out, code, strlen(code));
}

/* Text that :text searches (a Coding.display, a CodeableConcept.text, an
 * Identifier.type.text): a token of the pseudo-system "#text" whose code is
 * the folded text, and so is its dictionary text (the index :text scans).
 * Each resource carries its own words: a display is not looked up by code,
 * where the first resource to use a code would decide for all the others.
 * Only outside composites: a composite value takes no modifier. */
static void add_text_token(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *text)
{
	struct store_ix_row *x;
	size_t n;

	if (grp || !text || !*text)
		return;
	n = strlen(text);
	buf_reset(&c->tmp);
	fhir_fold(text, utf8_cut(text, n, TEXT_TOKEN_MAX), &c->tmp);
	x = row(c->out, SIX_TOKEN, pid, 0);
	if (!x)
		return;
	x->s1 = "#text";
	x->s2 = keep(c->out, buf_cstr(&c->tmp), c->tmp.len);
	x->s3 = x->s2;
}

static void add_string(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *s)
{
	struct store_ix_row *x;
	size_t n;

	if (!s || !*s)
		return;
	n = strlen(s);
	n = utf8_cut(s, n, 1024); /* long text belongs to _content; a prefix is enough here */
	buf_reset(&c->tmp);
	fhir_fold(s, n, &c->tmp);
	x = row(c->out, SIX_STRING, pid, grp);
	if (!x)
		return;
	x->s1 = keep(c->out, buf_cstr(&c->tmp), c->tmp.len);
	x->s2 = keep(c->out, s, n);
}

static void add_date(struct ix_ctx *c, uint32_t pid, uint32_t grp, int64_t lo, int64_t hi)
{
	struct store_ix_row *x = row(c->out, SIX_DATE, pid, grp);

	if (x) {
		x->t1 = lo;
		x->t2 = hi;
	}
}

static bool date_of(json_object *v, struct time_val *tv)
{
	const char *s = str(v);

	if (!s)
		return false;
	return time_parse(s, strlen(s), TIME_DATETIME, tv) == 0 ||
	       time_parse(s, strlen(s), TIME_INSTANT, tv) == 0;
}

/* A number's value and the range its written precision gives (100: [99.5,
 * 100.5), 1.50: [1.495, 1.505)). */
static bool number_of(json_object *v, double *val, double *lo, double *hi)
{
	const char *text;
	int decimals = 0, exp10 = 0;
	double half;

	if (!v || (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)))
		return false;
	*val = json_object_get_double(v);
	if (!isfinite(*val))
		return false;
	text = json_object_is_type(v, json_type_double) ? json_object_get_userdata(v) : NULL;
	if (text) {
		const char *dot = strchr(text, '.'), *e = strpbrk(text, "eE");
		if (dot)
			decimals = (int)((e ? e : text + strlen(text)) - dot - 1);
		if (e)
			exp10 = atoi(e + 1);
	}
	half = 0.5 * pow(10.0, (double)(exp10 - decimals));
	*lo = *val - half;
	*hi = *val + half;
	return true;
}

static void add_number(struct ix_ctx *c, uint32_t pid, uint32_t grp, json_object *v)
{
	double val, lo, hi;
	struct store_ix_row *x;

	if (!number_of(v, &val, &lo, &hi))
		return;
	x = row(c->out, SIX_NUMBER, pid, grp);
	if (x) {
		x->n1 = val;
		x->n2 = lo;
		x->n3 = hi;
	}
}

static void quantity_row(struct ix_ctx *c, uint32_t pid, uint32_t grp, double val, double lo,
			 double hi, const char *sys, const char *code)
{
	struct store_ix_row *x = row(c->out, SIX_QUANTITY, pid, grp);

	if (!x)
		return;
	x->n1 = val;
	x->n2 = lo;
	x->n3 = hi;
	x->s1 = sys ? keep(c->out, sys, strlen(sys)) : NULL;
	x->s2 = code ? keep(c->out, code, strlen(code)) : NULL;
}

/* A quantity is searched by system|code, or by a code or unit alone
 * (number||x).  Its row carries (system, code); a unit that differs from the
 * code gets a second row (no system, unit), so that either is found by the
 * same lookup, whatever other resources wrote for that code. */
static void add_quantity(struct ix_ctx *c, uint32_t pid, uint32_t grp, json_object *q,
			 const char *code_key)
{
	double val, lo, hi;
	const char *sys = json_get_str(q, "system"), *code = json_get_str(q, code_key);
	const char *unit = json_get_str(q, "unit");

	if (!number_of(json_get(q, "value"), &val, &lo, &hi))
		return;
	if (!code) {
		quantity_row(c, pid, grp, val, lo, hi, sys, unit);
		return;
	}
	quantity_row(c, pid, grp, val, lo, hi, sys, code);
	if (unit && strcmp(unit, code) != 0)
		quantity_row(c, pid, grp, val, lo, hi, NULL, unit);
}

/* "Type/id", "Type/id/_history/v", or an absolute url ending so. */
static void add_reference_text(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *ref)
{
	struct store_ix_row *x;
	const char *end, *slash, *type = NULL, *id = NULL;
	size_t tlen = 0, idlen = 0;
	bool absolute;

	if (!ref || !*ref || ref[0] == '#')
		return; /* contained resources are not searched by reference */
	absolute = strstr(ref, "://") || strncmp(ref, "urn:", 4) == 0;
	end = strstr(ref, "/_history/");
	if (!end)
		end = ref + strlen(ref);
	/* the last two path segments before _history: Type/id */
	slash = NULL;
	for (const char *p = end; p > ref; p--) {
		if (p[-1] == '/') {
			slash = p - 1;
			break;
		}
	}
	if (slash && strncmp(ref, "urn:", 4) != 0) {
		const char *tstart = slash;
		while (tstart > ref && tstart[-1] != '/')
			tstart--;
		if (fhir_resource_type_n(tstart, (size_t)(slash - tstart))) {
			type = tstart;
			tlen = (size_t)(slash - tstart);
			id = slash + 1;
			idlen = (size_t)(end - id);
		}
	}
	if (type && !absolute) {
		x = row(c->out, SIX_REFERENCE, pid, grp);
		if (x) {
			x->s1 = keep(c->out, type, tlen);
			x->s2 = keep(c->out, id, idlen);
		}
		return;
	}
	/* absolute: searched by its url (a uri row) */
	x = row(c->out, SIX_URI, pid, grp);
	if (x)
		x->s1 = keep(c->out, ref, strlen(ref));
}

/* A canonical or uri used as a reference: the url, without |version. */
static void add_canonical(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *url)
{
	struct store_ix_row *x;
	size_t n;

	if (!url || !*url)
		return;
	n = strcspn(url, "|");
	x = row(c->out, SIX_URI, pid, grp);
	if (x)
		x->s1 = keep(c->out, url, n);
}

static void add_uri(struct ix_ctx *c, uint32_t pid, uint32_t grp, const char *uri)
{
	struct store_ix_row *x;

	if (!uri || !*uri)
		return;
	x = row(c->out, SIX_URI, pid, grp);
	if (x)
		x->s1 = keep(c->out, uri, strlen(uri));
}

static void coding_rows(struct ix_ctx *c, uint32_t pid, uint32_t grp, json_object *coding)
{
	add_token(c, pid, grp, json_get_str(coding, "system"), json_get_str(coding, "code"));
	add_text_token(c, pid, grp, json_get_str(coding, "display"));
}

static void token_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
		       const struct fp_node *n)
{
	uint32_t pid = sp->pid;

	if (!n->type)
		return;
	if (n->type->kind == FK_PRIMITIVE) {
		if (json_object_is_type(n->v, json_type_boolean))
			add_token(c, pid, grp, NULL, json_object_get_boolean(n->v) ? "true" : "false");
		else
			add_token(c, pid, grp, NULL, str(n->v));
		return;
	}
	if (type_is(n, "Coding")) {
		coding_rows(c, pid, grp, n->v);
	} else if (type_is(n, "CodeableConcept")) {
		json_object *codings = json_get_arr(n->v, "coding");
		for (size_t i = 0; codings && i < json_object_array_length(codings); i++)
			coding_rows(c, pid, grp, json_object_array_get_idx(codings, i));
		add_text_token(c, pid, grp, json_get_str(n->v, "text"));
	} else if (type_is(n, "Identifier")) {
		const char *value = json_get_str(n->v, "value");
		json_object *type = json_get_obj(n->v, "type");
		json_object *tc = json_get_arr(type, "coding");
		add_token(c, pid, grp, json_get_str(n->v, "system"), value);
		for (size_t i = 0; value && tc && i < json_object_array_length(tc); i++) {
			json_object *k = json_object_array_get_idx(tc, i);
			const char *ts = json_get_str(k, "system"), *tcode = json_get_str(k, "code");
			add_text_token(c, pid, grp, json_get_str(k, "display"));
			if (!tcode)
				continue;
			buf_reset(&c->tmp);
			buf_addf(&c->tmp, "%s|%s", ts ? ts : "", tcode);
			add_token(c, pid | STORE_PID_OFTYPE, grp, buf_cstr(&c->tmp), value);
		}
		add_text_token(c, pid, grp, json_get_str(type, "text"));
	} else if (type_is(n, "ContactPoint")) {
		add_token(c, pid, grp, NULL, json_get_str(n->v, "value"));
	} else if (type_is(n, "Reference")) {
		json_object *ident = json_get_obj(n->v, "identifier");
		if (ident)
			add_token(c, pid, grp, json_get_str(ident, "system"), json_get_str(ident, "value"));
	}
}

static void string_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
			const struct fp_node *n)
{
	static const char *const name_parts[] = { "family", "given", "prefix", "suffix", "text", NULL };
	static const char *const addr_parts[] = { "line", "city", "district", "state", "postalCode",
						  "country", "text", NULL };
	const char *const *parts = NULL;

	if (!n->type)
		return;
	if (n->type->kind == FK_PRIMITIVE) {
		add_string(c, sp->pid, grp, str(n->v));
		return;
	}
	if (type_is(n, "HumanName"))
		parts = name_parts;
	else if (type_is(n, "Address"))
		parts = addr_parts;
	for (size_t i = 0; parts && parts[i]; i++) {
		json_object *v = json_get(n->v, parts[i]);
		if (json_object_is_type(v, json_type_array)) {
			for (size_t k = 0; k < json_object_array_length(v); k++)
				add_string(c, sp->pid, grp, str(json_object_array_get_idx(v, k)));
		} else {
			add_string(c, sp->pid, grp, str(v));
		}
	}
}

static void date_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
		      const struct fp_node *n)
{
	struct time_val a, b;

	if (!n->type)
		return;
	if (n->type->kind == FK_PRIMITIVE) {
		if (date_of(n->v, &a))
			add_date(c, sp->pid, grp, a.lo_ms, a.hi_ms);
	} else if (type_is(n, "Period")) {
		bool has_a = date_of(json_get(n->v, "start"), &a), has_b = date_of(json_get(n->v, "end"), &b);
		if (has_a || has_b)
			add_date(c, sp->pid, grp, has_a ? a.lo_ms : INT64_MIN / 2,
				 has_b ? b.hi_ms : INT64_MAX / 2);
	} else if (type_is(n, "Timing")) {
		json_object *ev = json_get_arr(n->v, "event");
		for (size_t i = 0; ev && i < json_object_array_length(ev); i++)
			if (date_of(json_object_array_get_idx(ev, i), &a))
				add_date(c, sp->pid, grp, a.lo_ms, a.hi_ms);
	}
}

static void quantity_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
			  const struct fp_node *n)
{
	if (!n->type || n->type->kind == FK_PRIMITIVE)
		return;
	if (type_is(n, "Money")) {
		add_quantity(c, sp->pid, grp, n->v, "currency");
	} else if (type_is(n, "Range")) {
		json_object *lo = json_get_obj(n->v, "low"), *hi = json_get_obj(n->v, "high");
		if (lo)
			add_quantity(c, sp->pid, grp, lo, "code");
		if (hi)
			add_quantity(c, sp->pid, grp, hi, "code");
	} else {
		add_quantity(c, sp->pid, grp, n->v, "code");
	}
}

static void reference_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
			   const struct fp_node *n)
{
	if (!n->type)
		return;
	if (n->type->kind == FK_PRIMITIVE) {
		add_canonical(c, sp->pid, grp, str(n->v));
		return;
	}
	if (type_is(n, "Reference")) {
		json_object *ident = json_get_obj(n->v, "identifier");
		add_reference_text(c, sp->pid, grp, json_get_str(n->v, "reference"));
		if (ident)
			add_token(c, sp->pid | STORE_PID_IDENT, grp, json_get_str(ident, "system"),
				  json_get_str(ident, "value"));
	} else if (type_is(n, "Attachment")) {
		add_canonical(c, sp->pid, grp, json_get_str(n->v, "url"));
	}
}

static void value_rows(struct ix_ctx *c, const struct fhir_sp *sp, uint32_t grp,
		       const struct fp_node *n)
{
	switch (sp->type) {
	case SPT_TOKEN:
		token_rows(c, sp, grp, n);
		break;
	case SPT_STRING:
		string_rows(c, sp, grp, n);
		break;
	case SPT_DATE:
		date_rows(c, sp, grp, n);
		break;
	case SPT_NUMBER:
		if (n->type && n->type->kind == FK_PRIMITIVE)
			add_number(c, sp->pid, grp, n->v);
		break;
	case SPT_QUANTITY:
		quantity_rows(c, sp, grp, n);
		break;
	case SPT_REFERENCE:
		reference_rows(c, sp, grp, n);
		break;
	case SPT_URI:
		if (n->type && n->type->kind == FK_PRIMITIVE)
			add_uri(c, sp->pid, grp, str(n->v));
		break;
	default:
		break;
	}
}

/* Composite rows: the composite's pid, grp = (value number << 4) | component.
 * A value is indexed only when every component has one: a composite search
 * needs them all in one group. */
static int composite_rows(struct ix_ctx *c, const struct fhir_sp *sp, const struct fp_node *n,
			  struct err *e)
{
	uint32_t group = ++c->next_group;
	size_t mark = c->out->n;

	if (sp->ncomps > 15)
		return 0;
	for (size_t k = 0; k < sp->ncomps; k++) {
		const struct sp_comp *comp = &sp->comps[k];
		struct fhir_sp view;
		size_t before = c->out->n;
		if (!comp->x || !comp->def)
			goto none;
		fp_result_reset(&c->rc);
		if (fp_eval(comp->x, c->res, n, &c->rc, e) < 0) {
			c->out->n = mark;
			return -1;
		}
		/* rows typed like the component's definition, under the composite's pid */
		view = *comp->def;
		view.pid = sp->pid;
		for (size_t i = 0; i < c->rc.n; i++)
			value_rows(c, &view, (group << 4) | (uint32_t)k, &c->rc.v[i]);
		if (c->out->n == before)
			goto none;
	}
	return 0;
none:
	c->out->n = mark; /* a component without a value: nothing to index */
	return 0;
}

/* ---- full text ---- */

/* A character reference at s ("&#229;", "&#xE5;"): its UTF-8 added to out,
 * and the length of the reference returned; 0 if s is not one. */
static size_t char_ref(const char *s, struct buf *out)
{
	unsigned long cp = 0;
	size_t i = 2, digits = 0;
	bool hex = s[1] == '#' && (s[2] == 'x' || s[2] == 'X');

	if (s[0] != '&' || s[1] != '#')
		return 0;
	if (hex)
		i++;
	for (;; i++, digits++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0'
			: hex && (ch | 32) >= 'a' && (ch | 32) <= 'f' ? (ch | 32) - 'a' + 10 : -1;
		if (d < 0 || digits > 7)
			break;
		cp = cp * (hex ? 16 : 10) + (unsigned long)d;
	}
	if (!digits || s[i] != ';' || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	if (cp < 0x80) {
		buf_addch(out, (char)cp);
	} else if (cp < 0x800) {
		buf_addch(out, (char)(0xC0 | (cp >> 6)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		buf_addch(out, (char)(0xE0 | (cp >> 12)));
		buf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	} else {
		buf_addch(out, (char)(0xF0 | (cp >> 18)));
		buf_addch(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
		buf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	}
	return i + 1;
}

static void strip_tags(const char *s, struct buf *out)
{
	bool in_tag = false;

	for (; *s && out->len < FTS_MAX_BYTES; s++) {
		if (*s == '<') {
			in_tag = true;
			buf_addch(out, ' ');
		} else if (*s == '>') {
			in_tag = false;
		} else if (!in_tag) {
			if (*s == '&') {
				/* XML's entities and character references (the only ones
				 * FHIR narrative may use), and &nbsp;; others become a space */
				static const struct { const char *ent; char ch; } ents[] = {
					{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' },
					{ "&apos;", '\'' }, { "&nbsp;", ' ' },
				};
				size_t used = char_ref(s, out);
				for (size_t i = 0; !used && i < sizeof(ents) / sizeof(ents[0]); i++) {
					size_t l = strlen(ents[i].ent);
					if (strncmp(s, ents[i].ent, l) == 0) {
						buf_addch(out, ents[i].ch);
						used = l;
					}
				}
				if (!used) {
					buf_addch(out, ' ');
					used = 1;
				}
				s += used - 1;
			} else {
				buf_addch(out, *s);
			}
		}
	}
}

/* The free text people write into a record besides its narrative: notes
 * (Annotation.text, wherever an element named note or progress holds them)
 * and text/plain attachments, decoded.  Codes, names and other structured
 * values have their own parameters (:text searches displays). */
static void collect_text(json_object *o, bool annotation, struct buf *out)
{
	if (out->len >= FTS_MAX_BYTES)
		return;
	switch (json_object_get_type(o)) {
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			collect_text(json_object_array_get_idx(o, i), annotation, out);
		break;
	case json_type_object: {
		const char *ct = json_get_str(o, "contentType"), *data = json_get_str(o, "data");
		if (annotation) {
			const char *t = json_get_str(o, "text");
			if (t) {
				size_t room = FTS_MAX_BYTES - out->len, tl = strlen(t);
				buf_add(out, t, utf8_cut(t, tl, room));
				buf_addch(out, ' ');
			}
		}
		if (ct && data && strncmp(ct, "text/plain", 10) == 0) {
			size_t dl = strlen(data), bin = 0;
			unsigned char *raw = malloc(dl + 1);
			if (raw && sodium_base642bin(raw, dl + 1, data, dl, " \r\n", &bin, NULL,
						     sodium_base64_VARIANT_ORIGINAL) == 0) {
				size_t room = FTS_MAX_BYTES - out->len;
				buf_add(out, raw, utf8_cut((const char *)raw, bin, room));
				buf_addch(out, ' ');
			}
			free(raw);
		}
		json_object_object_foreach(o, k, v) {
			if (json_object_is_type(v, json_type_object) ||
			    json_object_is_type(v, json_type_array))
				collect_text(v, strcmp(k, "note") == 0 || strcmp(k, "progress") == 0,
					     out);
		}
		break;
	}
	default:
		break;
	}
}

static void text_row(struct ix_ctx *c)
{
	const char *div = json_get_str(json_get_obj(c->res, "text"), "div");
	struct buf narrative = BUF_INIT(0);
	struct store_ix_row *x;

	buf_reset(&c->tmp);
	if (div)
		strip_tags(div, &narrative);
	collect_text(c->res, false, &c->tmp);
	if (narrative.len == 0 && c->tmp.len == 0) {
		buf_release(&narrative);
		return;
	}
	/* _content includes the narrative */
	buf_add(&c->tmp, buf_cstr(&narrative), narrative.len);
	x = row(c->out, SIX_TEXT, 0, 0);
	if (x) {
		x->s1 = keep(c->out, buf_cstr(&narrative), narrative.len);
		x->s2 = keep(c->out, buf_cstr(&c->tmp), c->tmp.len);
	}
	buf_release(&narrative);
}

size_t fhir_next_patient_ref(const char *json, size_t len, size_t *from)
{
	static const char mark[] = "\"reference\":\"Patient/";

	while (*from < len) {
		const char *p = memmem(json + *from, len - *from, mark, sizeof(mark) - 1);
		const char *q;
		if (!p)
			break;
		p += sizeof(mark) - 1;
		q = memchr(p, '"', (size_t)(json + len - p));
		*from = (size_t)(p - json);
		if (!q)
			break;
		*from = (size_t)(q - json);
		if (id_valid(p, (size_t)(q - p)))
			return (size_t)(q - p);
	}
	*from = len;
	return 0;
}

int fhir_index(const struct fhir_params *p, json_object *res, struct fhir_ixrows *out,
	       struct err *e)
{
	const char *rt = json_get_str(res, "resourceType");
	const struct type_params *tp = rt ? fhir_params_type(p, rt) : NULL;
	struct ix_ctx c;
	int rc = -1;

	fhir_ixrows_reset(out);
	if (!tp)
		return err_set(e, ERR_INVALID, "no resource type to index");
	memset(&c, 0, sizeof(c));
	c.p = p;
	c.res = res;
	c.out = out;
	buf_init(&c.tmp, 0);
	fp_result_init(&c.r);
	fp_result_init(&c.rc);
	for (size_t i = 0; i < tp->n; i++) {
		const struct binding *b = &tp->v[i];
		const struct fhir_sp *sp = b->sp;

		if (!b->x || (i + 1 < tp->n && strcmp(sp->code, tp->v[i + 1].sp->code) == 0))
			continue; /* nothing to run, or a custom definition overrides this one */
		if (b->nalias)
			continue; /* a union of other parameters: their rows answer it */
		if (strcmp(sp->code, "_id") == 0 || strcmp(sp->code, "_lastUpdated") == 0)
			continue;
		/* a composite of the whole resource is answered from its components'
		 * own parameters (search.c): no rows of its own */
		if (sp->type == SPT_COMPOSITE && sp->expression && strcmp(sp->expression, rt) == 0)
			continue;
		fp_result_reset(&c.r);
		if (fp_eval(b->x, res, NULL, &c.r, e) < 0) {
			/* one parameter's evaluation error does not refuse the write */
			log_debug("event=index_skip param=%s reason=\"%s\"", sp->code, e->msg);
			err_clear(e);
			continue;
		}
		for (size_t k = 0; k < c.r.n; k++) {
			if (sp->type == SPT_COMPOSITE) {
				if (composite_rows(&c, sp, &c.r.v[k], e) < 0) {
					err_clear(e);
					break;
				}
			} else {
				value_rows(&c, sp, 0, &c.r.v[k]);
			}
		}
	}
	text_row(&c);
	/* a Patient's blocking keys: what the master patient index looks up
	 * (every write path indexes through here) */
	if (strcmp(rt, "Patient") == 0) {
		char keys[MPI_KEYS_MAX][MPI_KEY_TEXT];
		size_t nk = mpi_patient_keys(res, keys);
		for (size_t i = 0; i < nk; i++)
			add_token(&c, STORE_PID_MPI, 0, MPI_KEY_SYSTEM, keys[i]);
	}
	if (out->failed || c.tmp.failed) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	fp_result_release(&c.r);
	fp_result_release(&c.rc);
	buf_release(&c.tmp);
	return rc;
}
