/* terminology.c - CodeSystem/$lookup, CodeSystem/$validate-code and
 * ValueSet/$expand over the loaded code sets (FHIR R4 operation
 * definitions: Parameters in, Parameters or a ValueSet out).
 *
 * Which version answers: ?version= when given; otherwise the version whose
 * effective dates cover ?date= (a date of service); otherwise the newest.
 * $validate-code follows the R4 definition: a header (category) code is a
 * concept of ICD-10-CM but not valid for a claim, so it is "abstract" and
 * validates only with abstract=true. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding_int.h"
#include "base/banned.h"

#define EXPAND_COUNT_DEFAULT 20
#define EXPAND_COUNT_MAX 1000
#define EXPAND_OFFSET_MAX 100000
#define FILTER_WORDS_MAX CODING_FILTER_WORDS_MAX
#define FILTER_MAX CODING_FILTER_MAX

/* ---- shared with edits.c ---- */

struct pick {
	const char *version, *date;
	struct store_code_version *out;
	bool found;
};

static int pick_row(void *ctx, const struct store_code_version *v)
{
	struct pick *p = ctx;

	if (p->version && strcmp(p->version, v->version) != 0)
		return 0;
	if (!p->version && p->date && (strcmp(p->date, v->eff_from) < 0 || strcmp(p->date, v->eff_to) > 0))
		return 0;
	*p->out = *v;
	p->found = true;
	return 1;
}

int coding_pick_version(struct store *s, const char *system, const char *version, const char *date,
			struct store_code_version *out, bool *found, struct err *e)
{
	struct pick p = { version, date, out, false };

	if (store_code_versions(s, system, pick_row, &p, e) < 0)
		return -1;
	*found = p.found;
	return 0;
}

static int copy_concept(void *ctx, const struct store_concept *c)
{
	struct coding_concept *k = ctx;

	snprintf(k->code, sizeof(k->code), "%s", c->code);
	snprintf(k->parent, sizeof(k->parent), "%s", c->parent);
	snprintf(k->display, sizeof(k->display), "%s", c->display);
	snprintf(k->short_desc, sizeof(k->short_desc), "%s", c->short_desc);
	k->billable = c->billable;
	k->added = c->added;
	k->terminated = c->terminated;
	return 0;
}

int coding_concept_get(struct store *s, int64_t vkey, const char *code, struct coding_concept *out,
		       bool *found, struct err *e)
{
	memset(out, 0, sizeof(*out));
	return store_code_get(s, vkey, code, copy_concept, out, found, e);
}

int coding_date_of(const char *s, char out[11])
{
	struct time_val tv;
	size_t n = s ? strlen(s) : 0;

	if (n < 10 || time_parse(s, n, n == 10 ? TIME_DATE : TIME_DATETIME, &tv) < 0)
		return -1;
	snprintf(out, 11, "%.10s", s);
	return 0;
}

int32_t coding_date_num(const char *d)
{
	return (int32_t)(atol(d) * 10000 + atol(d + 5) * 100 + atol(d + 8));
}

/* ---- input ---- */

#define IN_MAX 24

struct input {
	struct { const char *name, *value; } v[IN_MAX];
	size_t n;
	json_object *root;   /* the POSTed Parameters, owning the strings */
};

static const char *in_get(const struct input *in, const char *name)
{
	for (size_t i = 0; i < in->n; i++)
		if (strcmp(in->v[i].name, name) == 0)
			return in->v[i].value;
	return NULL;
}

static void in_put(struct input *in, const char *name, const char *value)
{
	if (in->n < IN_MAX && value) {
		in->v[in->n].name = name;
		in->v[in->n].value = value;
		in->n++;
	}
}

static const char *value_str(json_object *p)
{
	static const char *const keys[] = { "valueUri", "valueCode", "valueString", "valueDate",
					    "valueDateTime", "valueCanonical", "valueUrl", NULL };
	json_object *v;

	for (const char *const *k = keys; *k; k++)
		if (json_object_object_get_ex(p, *k, &v) && json_object_is_type(v, json_type_string))
			return json_object_get_string(v);
	if (json_object_object_get_ex(p, "valueBoolean", &v) && json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v) ? "true" : "false";
	return NULL;
}

/* A Coding's members as inputs (coding, or codeableConcept's first). */
static void in_coding(struct input *in, json_object *c)
{
	if (!c || !json_object_is_type(c, json_type_object))
		return;
	if (!in_get(in, "system"))
		in_put(in, "system", json_get_str(c, "system"));
	if (!in_get(in, "code"))
		in_put(in, "code", json_get_str(c, "code"));
	if (!in_get(in, "version"))
		in_put(in, "version", json_get_str(c, "version"));
	if (!in_get(in, "display"))
		in_put(in, "display", json_get_str(c, "display"));
}

static int input_read(const struct fhir_req *req, struct input *in, struct err *e)
{
	json_object *params;

	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < req->n_params; i++)
		if (req->params[i].name[0] != '_')
			in_put(in, req->params[i].name, req->params[i].value);
	if (!req->body_len)
		return 0;
	in->root = json_parse_buf(req->body, req->body_len, 32, e);
	if (!in->root)
		return -1;
	if (!json_is_str(json_get(in->root, "resourceType"), "Parameters"))
		return err_set(e, ERR_INVALID, "the body must be a Parameters resource");
	params = json_get_arr(in->root, "parameter");
	for (size_t i = 0; params && i < json_object_array_length(params); i++) {
		json_object *p = json_object_array_get_idx(params, i), *cc;
		const char *name = json_get_str(p, "name");

		if (!name)
			return err_set(e, ERR_INVALID, "Parameters.parameter[%zu].name is required", i);
		if (strcmp(name, "coding") == 0) {
			in_coding(in, json_get_obj(p, "valueCoding"));
		} else if (strcmp(name, "codeableConcept") == 0) {
			cc = json_get_obj(p, "valueCodeableConcept");
			cc = cc ? json_get_arr(cc, "coding") : NULL;
			if (cc && json_object_array_length(cc))
				in_coding(in, json_object_array_get_idx(cc, 0));
		} else {
			in_put(in, name, value_str(p));
		}
	}
	return 0;
}

/* ---- output ---- */

static void p_str(struct buf *b, bool *first, const char *name, const char *type, const char *v)
{
	buf_addf(b, "%s{\"name\":\"%s\",\"value%s\":\"", *first ? "" : ",", name, type);
	buf_add_json_str(b, v, strlen(v));
	buf_addstr(b, "\"}");
	*first = false;
}

static void p_bool(struct buf *b, bool *first, const char *name, bool v)
{
	buf_addf(b, "%s{\"name\":\"%s\",\"valueBoolean\":%s}", *first ? "" : ",", name,
		 v ? "true" : "false");
	*first = false;
}

static void p_prop(struct buf *b, bool *first, const char *code, const char *type, const char *v)
{
	buf_addf(b, "%s{\"name\":\"property\",\"part\":[{\"name\":\"code\",\"valueCode\":\"%s\"},"
		    "{\"name\":\"value\",\"value%s\":", *first ? "" : ",", code, type);
	if (strcmp(type, "Boolean") == 0) {
		buf_addstr(b, v);
	} else {
		buf_addch(b, '"');
		buf_add_json_str(b, v, strlen(v));
		buf_addch(b, '"');
	}
	buf_addstr(b, "}]}");
	*first = false;
}

static void ymd(int32_t d, char out[11])
{
	uint32_t u = (uint32_t)d;

	snprintf(out, 11, "%04u-%02u-%02u", u / 10000 % 10000, u / 100 % 100, u % 100);
}

/* ---- the common steps ---- */

struct target {
	const struct coding_system *sys;
	struct store_code_version v;
	char code[STORE_CODE_MAX];
	char shown[STORE_CODE_MAX + 2];
	char date[11];
	bool has_date;
	struct coding_concept c;
	bool found;
	bool verdict;          /* resolve() failed on the code, not on the request:
				  unknown system, malformed code, no version */
};

/* The system (by URI), the version, the normalised code; its concept.
 * Errors: ERR_INVALID (missing or malformed input, unknown system),
 * ERR_NOT_FOUND (no version loaded, or none covering the date). */
static int resolve(struct store *s, const struct input *in, const char *sysparam, struct target *t,
		   struct err *e)
{
	const char *system = in_get(in, sysparam), *code = in_get(in, "code");
	const char *version = in_get(in, "version"), *date = in_get(in, "date");
	bool have;

	memset(t, 0, sizeof(*t));
	if (!system || !*system)
		return err_set(e, ERR_INVALID, "%s: the code system's URI is required", sysparam);
	t->sys = coding_system_by_uri(system);
	if (!t->sys) {
		t->verdict = code && *code;
		if (strlen(system) <= 100)
			return err_set(e, ERR_INVALID, "%s: unknown code system '%s' (this server knows "
				       "ICD-10-CM, ICD-10-PCS, HCPCS, CPT and CMS place of service)", sysparam,
				       system);
		return err_set(e, ERR_INVALID, "%s: unknown code system", sysparam);
	}
	if (!code || !*code)
		return err_set(e, ERR_INVALID, "code is required");
	if (date) {
		if (coding_date_of(date, t->date) < 0)
			return err_set(e, ERR_INVALID, "date: a date (YYYY-MM-DD) or dateTime");
		t->has_date = true;
	}
	if (coding_code_norm(t->sys, code, strlen(code), t->code, e) < 0) {
		t->code[0] = '\0';
		t->verdict = true;
		return -1;
	}
	coding_code_show(t->sys, t->code, t->shown);
	if (coding_pick_version(s, t->sys->name, version, t->has_date ? t->date : NULL, &t->v, &have, e) < 0)
		return -1;
	if (!have) {
		t->verdict = true;
		if (version)
			return err_set(e, ERR_NOT_FOUND, "%s version %.31s is not loaded", t->sys->title, version);
		if (t->has_date)
			return err_set(e, ERR_NOT_FOUND, "no %s version loaded covers %s", t->sys->title, t->date);
		return err_set(e, ERR_NOT_FOUND, "no %s version is loaded", t->sys->title);
	}
	return coding_concept_get(s, t->v.vkey, t->code, &t->c, &t->found, e);
}

static void lookup(const struct fhir_config *cfg, const struct input *in, struct fhir_resp *resp)
{
	struct err e = ERR_INIT;
	struct target t;
	struct buf *b = &resp->body;
	bool first = true;
	char d[11], parent[STORE_CODE_MAX + 2];

	if (resolve(cfg->store, in, "system", &t, &e) < 0) {
		fhir_resp_error(resp, &e);
		return;
	}
	if (!t.found) {
		err_set(&e, ERR_NOT_FOUND, "%s is not a code of %s %s", t.shown, t.sys->title, t.v.version);
		fhir_resp_error(resp, &e);
		return;
	}
	resp->status = 200;
	buf_addstr(b, "{\"resourceType\":\"Parameters\",\"parameter\":[");
	p_str(b, &first, "name", "String", t.sys->title);
	p_str(b, &first, "version", "String", t.v.version);
	p_str(b, &first, "display", "String", t.c.display);
	p_bool(b, &first, "abstract", !t.c.billable);
	if (t.c.short_desc[0]) {
		buf_addstr(b, ",{\"name\":\"designation\",\"part\":[{\"name\":\"use\",\"valueCoding\":"
			      "{\"system\":\"http://terminology.hl7.org/CodeSystem/designation-usage\","
			      "\"code\":\"display\",\"display\":\"short description\"}},{\"name\":\"value\","
			      "\"valueString\":\"");
		buf_add_json_str(b, t.c.short_desc, strlen(t.c.short_desc));
		buf_addstr(b, "\"}]}");
	}
	p_prop(b, &first, "code", "Code", t.shown);
	p_prop(b, &first, "billable", "Boolean", t.c.billable ? "true" : "false");
	if (t.c.parent[0]) {
		coding_code_show(t.sys, t.c.parent, parent);
		p_prop(b, &first, "parent", "Code", parent);
	}
	p_prop(b, &first, "effectiveFrom", "String", t.v.eff_from);
	p_prop(b, &first, "effectiveTo", "String", t.v.eff_to);
	if (t.c.added) {
		ymd(t.c.added, d);
		p_prop(b, &first, "added", "String", d);
	}
	if (t.c.terminated) {
		ymd(t.c.terminated, d);
		p_prop(b, &first, "terminated", "String", d);
	}
	buf_addstr(b, "]}");
}

static bool same_text(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static void validate(const struct fhir_config *cfg, const struct input *in, struct fhir_resp *resp)
{
	struct err e = ERR_INIT;
	struct target t;
	struct buf *b = &resp->body, msg = BUF_INIT(1024);
	const char *display = in_get(in, "display"), *abstract = in_get(in, "abstract");
	const char *sysparam = in_get(in, "url") && !in_get(in, "system") ? "url" : "system";
	bool first = true, ok;
	int rc;

	rc = resolve(cfg->store, in, sysparam, &t, &e);
	if (rc < 0 && !t.verdict) {
		fhir_resp_error(resp, &e);
		goto out;
	}
	/* unknown system, malformed code, no version: the answer is "not valid" */
	resp->status = 200;
	if (rc < 0) {
		ok = false;
		buf_addstr(&msg, e.msg);
	} else if (!t.found) {
		ok = false;
		buf_addf(&msg, "%s is not a code of %s %s", t.shown, t.sys->title, t.v.version);
	} else {
		ok = true;
		if (!t.c.billable && !(abstract && strcmp(abstract, "true") == 0)) {
			ok = false;
			buf_addf(&msg, "%s is a header code in %s %s, not valid for a claim: use one of the "
				 "codes under it", t.shown, t.sys->title, t.v.version);
		}
		if (t.has_date && t.c.added && coding_date_num(t.date) < t.c.added) {
			char d[11];
			ok = false;
			ymd(t.c.added, d);
			buf_addf(&msg, "%s%s was added on %s, after the date of service %s", msg.len ? "; " : "",
				 t.shown, d, t.date);
		}
		if (t.c.terminated && (!t.has_date || coding_date_num(t.date) > t.c.terminated)) {
			char d[11];
			ymd(t.c.terminated, d);
			if (t.has_date) {
				ok = false;
				buf_addf(&msg, "%s%s was terminated on %s, before the date of service %s",
					 msg.len ? "; " : "", t.shown, d, t.date);
			} else {
				buf_addf(&msg, "%s%s was terminated on %s", msg.len ? "; " : "", t.shown, d);
			}
		}
		if (display && *display && !same_text(display, t.c.display) && !same_text(display, t.c.short_desc)) {
			ok = false;
			buf_addf(&msg, "%sthe display given is not %s's (\"%s\")", msg.len ? "; " : "", t.shown,
				 t.c.display);
		}
	}
	buf_addstr(b, "{\"resourceType\":\"Parameters\",\"parameter\":[");
	p_bool(b, &first, "result", ok);
	if (msg.len)
		p_str(b, &first, "message", "String", buf_cstr(&msg));
	if (rc == 0 && t.found) {
		p_str(b, &first, "display", "String", t.c.display);
		p_str(b, &first, "code", "Code", t.shown);
		p_str(b, &first, "system", "Uri", t.sys->uri);
		p_str(b, &first, "version", "String", t.v.version);
	}
	buf_addstr(b, "]}");
out:
	buf_release(&msg);
}

/* ---- $expand ---- */

struct expand {
	const struct coding_system *sys;
	const char *version;
	struct buf *b;
	size_t n;
	const struct coding_words *ws;
};

static int expand_row(void *ctx, const struct store_concept *c)
{
	struct expand *x = ctx;
	char shown[STORE_CODE_MAX + 2];

	coding_code_show(x->sys, c->code, shown);
	buf_addf(x->b, "%s{\"system\":\"%s\",\"version\":\"", x->n++ ? "," : "", x->sys->uri);
	buf_add_json_str(x->b, x->version, strlen(x->version));
	buf_addf(x->b, "\",%s\"code\":\"%s\",\"display\":\"", c->billable ? "" : "\"abstract\":true,", shown);
	buf_add_json_str(x->b, c->display, strlen(c->display));
	buf_addstr(x->b, "\"}");
	return 0;
}


/* The filter as an FTS5 query over display and code (coding_int.h): every word must
 * match, in any order; words of two or more characters as prefixes.  A
 * word that is an ICD-10-CM code with its dot loses the dot.  Each word is
 * looked up by its longest prefix with an index (2, 3 or 6 characters:
 * migrate_sqlite_0009_codes.sql) and checked whole by word_keep().  Returns
 * 1 when the filter has no words. */
int coding_filter_fts(const struct coding_system *sys, int64_t vkey, const char *filter, struct buf *q,
		      struct coding_words *ws, struct err *e)
{
	const char *p = filter;

	ws->n = 0;
	buf_addf(q, "tag : k%lld AND {display code} : (", (long long)vkey);
	while (*p) {
		char *w;
		size_t n = 0, use;

		while (*p && !isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80))
			p++;
		if (!*p)
			break;
		if (ws->n == FILTER_WORDS_MAX)
			return err_set(e, ERR_INVALID, "filter: at most %d words", FILTER_WORDS_MAX);
		w = ws->w[ws->n];
		while (*p && (isalnum((unsigned char)*p) || ((unsigned char)*p & 0x80) ||
			      (*p == '.' && strcmp(sys->name, "icd10cm") == 0 && n == 3 &&
			       isdigit((unsigned char)p[1]))) && n < FILTER_MAX) {
			if (*p != '.')
				w[n++] = (char)tolower((unsigned char)*p);
			p++;
		}
		w[n] = '\0';
		ws->n++;
		use = n >= 6 ? 6 : n >= 3 ? 3 : n;
		/* a word with other than ASCII letters and digits is looked up whole */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)w[i] & 0x80)
				use = n;
		buf_addf(q, "%s\"%.*s\"%s", ws->n > 1 ? " AND " : "", (int)use, w, n >= 2 ? "*" : "");
	}
	buf_addch(q, ')');
	return ws->n ? 0 : 1;
}

/* Does some word of s (ASCII letters and digits, case folded) start with w? */
static bool has_prefix_word(const char *s, const char *w, size_t wn)
{
	while (*s) {
		size_t k = 0;

		while (*s && !isalnum((unsigned char)*s))
			s++;
		while (s[k] && isalnum((unsigned char)s[k]) && k < wn && tolower((unsigned char)s[k]) == w[k])
			k++;
		if (k == wn)
			return true;
		while (*s && isalnum((unsigned char)*s))
			s++;
	}
	return false;
}

/* store_code_search's keep: every word is a prefix of a word of the
 * display or the code (words the index looked up whole need no check). */
static bool word_keep(void *ctx, const struct store_concept *c)
{
	const struct expand *x = ctx;

	for (size_t i = 0; i < x->ws->n; i++) {
		const char *w = x->ws->w[i];
		size_t wn = strlen(w);
		bool plain = true;

		for (size_t k = 0; k < wn; k++)
			if ((unsigned char)w[k] & 0x80)
				plain = false;
		if (!plain || wn < 4 || wn == 6)
			continue; /* the index matched it exactly */
		if (!has_prefix_word(c->display, w, wn) && !has_prefix_word(c->code, w, wn))
			return false;
	}
	return true;
}

static bool uint_param(const char *s, size_t max, size_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	v = strtoul(s, &end, 10);
	if (*end || v > max)
		return false;
	*out = v;
	return true;
}

static void expand(const struct fhir_config *cfg, const struct input *in, struct fhir_resp *resp)
{
	const char *url = in_get(in, "url"), *filter = in_get(in, "filter");
	const char *cnt = in_get(in, "count"), *off = in_get(in, "offset"), *date = in_get(in, "date");
	const char *version = in_get(in, "system-version");
	struct store_code_version v;
	struct expand x;
	struct err e = ERR_INIT;
	struct buf q = BUF_INIT(4096), base = BUF_INIT(512);
	struct coding_words ws;
	char d[11], isa[STORE_CODE_MAX] = "", ts[TIME_INSTANT_MAX], uuid[ID_UUID_LEN + 1];
	const char *qs;
	size_t count = EXPAND_COUNT_DEFAULT, offset = 0;
	bool have, more = false;
	int rc;

	if (!url || !*url) {
		err_set(&e, ERR_INVALID, "url: the value set's canonical URL is required (a code system's "
			"URI, or URI?fhir_vs for all its codes, URI?fhir_vs=isa/CODE for a code and those under it)");
		goto fail;
	}
	qs = strchr(url, '?');
	buf_add(&base, url, qs ? (size_t)(qs - url) : strlen(url));
	x.sys = coding_system_by_uri(buf_cstr(&base));
	if (!x.sys) {
		err_set(&e, ERR_NOT_FOUND, "url: unknown value set (this server expands the implicit value "
			"sets of ICD-10-CM, ICD-10-PCS, HCPCS, CPT and CMS place of service)");
		goto fail;
	}
	if (qs && strcmp(qs, "?fhir_vs") != 0) {
		if (strncmp(qs, "?fhir_vs=isa/", 13) != 0 ||
		    coding_code_norm(x.sys, qs + 13, strlen(qs + 13), isa, &e) < 0) {
			err_set(&e, ERR_INVALID, "url: after the code system's URI only ?fhir_vs or "
				"?fhir_vs=isa/CODE");
			goto fail;
		}
	}
	if (cnt && !uint_param(cnt, EXPAND_COUNT_MAX, &count)) {
		err_set(&e, ERR_INVALID, "count: a whole number from 0 to %d", EXPAND_COUNT_MAX);
		goto fail;
	}
	if (off && !uint_param(off, EXPAND_OFFSET_MAX, &offset)) {
		err_set(&e, ERR_INVALID, "offset: a whole number from 0 to %d", EXPAND_OFFSET_MAX);
		goto fail;
	}
	if (date && coding_date_of(date, d) < 0) {
		err_set(&e, ERR_INVALID, "date: a date (YYYY-MM-DD) or dateTime");
		goto fail;
	}
	if (filter && strlen(filter) > FILTER_MAX) {
		err_set(&e, ERR_INVALID, "filter: at most %d characters", FILTER_MAX);
		goto fail;
	}
	if (version) { /* system-version=URI|VERSION */
		const char *bar = strchr(version, '|');
		version = bar ? bar + 1 : version;
	}
	if (coding_pick_version(cfg->store, x.sys->name, version, date ? d : NULL, &v, &have, &e) < 0)
		goto fail;
	if (!have) {
		err_set(&e, ERR_NOT_FOUND, "no %s version %s", x.sys->title, date ? "loaded covers that date" : "is loaded");
		goto fail;
	}
	x.version = v.version;
	x.b = &resp->body;
	x.n = 0;
	id_new(uuid);
	time_format_instant(time_now_ms(), ts);
	buf_addstr(x.b, "{\"resourceType\":\"ValueSet\",\"url\":\"");
	buf_add_json_str(x.b, url, strlen(url));
	buf_addf(x.b, "\",\"status\":\"active\",\"expansion\":{\"identifier\":\"urn:uuid:%s\","
		      "\"timestamp\":\"%s\",\"offset\":%zu,\"parameter\":[{\"name\":\"version\","
		      "\"valueUri\":\"%s|", uuid, ts, offset, x.sys->uri);
	buf_add_json_str(x.b, v.version, strlen(v.version));
	buf_addstr(x.b, "\"}");
	if (filter) {
		buf_addstr(x.b, ",{\"name\":\"filter\",\"valueString\":\"");
		buf_add_json_str(x.b, filter, strlen(filter));
		buf_addstr(x.b, "\"}");
	}
	buf_addf(x.b, ",{\"name\":\"count\",\"valueInteger\":%zu}],\"contains\":[", count);
	ws.n = 0;
	x.ws = &ws;
	rc = filter ? coding_filter_fts(x.sys, v.vkey, filter, &q, &ws, &e) : 1;
	if (rc < 0)
		goto fail;
	if (count && store_code_search(cfg->store, v.vkey, rc == 0 ? buf_cstr(&q) : NULL,
				       rc == 0 ? NULL : isa, offset, count, rc == 0 ? word_keep : NULL,
				       expand_row, &x, &more, &e) < 0)
		goto fail;
	buf_addstr(x.b, "]");
	if (!more && count)
		buf_addf(x.b, ",\"total\":%zu", offset + x.n);
	buf_addstr(x.b, "}}");
	/* "contains":[] must not be empty in FHIR JSON */
	{
		const char *body = buf_cstr(x.b);
		const char *empty = strstr(body, ",\"contains\":[]");
		if (empty) {
			size_t at = (size_t)(empty - body);
			struct buf fixed = BUF_INIT(0);
			buf_add(&fixed, body, at);
			buf_addstr(&fixed, empty + strlen(",\"contains\":[]"));
			buf_reset(x.b);
			buf_add(x.b, fixed.data ? fixed.data : "", fixed.len);
			buf_release(&fixed);
		}
	}
	resp->status = 200;
	goto out;
fail:
	buf_reset(&resp->body);
	fhir_resp_error(resp, &e);
out:
	buf_release(&q);
	buf_release(&base);
}

void coding_terminology(const struct fhir_config *cfg, struct fhir_req *req, int op,
			struct fhir_resp *resp)
{
	struct input in;
	struct err e = ERR_INIT;

	if (input_read(req, &in, &e) < 0) {
		fhir_resp_error(resp, &e);
		goto out;
	}
	if (op == COP_LOOKUP)
		lookup(cfg, &in, resp);
	else if (op == COP_VALIDATE)
		validate(cfg, &in, resp);
	else
		expand(cfg, &in, resp);
out:
	json_object_put(in.root);
}
