/* bundle.c - transaction and batch Bundles (FHIR R4 http.html#transaction).
 *
 * Planning turns the entries into one store transaction: POST entries get
 * new ids, and in a transaction every reference to an entry's fullUrl
 * (urn:uuid:...) is rewritten to the entry's Type/id before validation.
 * Operations run in the order the spec gives (DELETE, POST, PUT/PATCH); GET
 * entries are answered after the commit, so they see its effect.  A
 * transaction is one atomic store transaction; a batch is one non-atomic
 * transaction whose operations stand alone, and an entry that cannot even
 * be planned gets its own error response.
 *
 * Conditional entries are resolved while planning, against the data as it
 * is before the transaction: POST with ifNoneExist (a match: the entry
 * answers with it and writes nothing; its fullUrl then means the match),
 * PUT and DELETE with Type?criteria (one match at most), and, in a
 * transaction, conditional references (Patient?identifier=x|1 becomes
 * Patient/id; no match or several fail the Bundle).  GET Type?criteria
 * entries are searches, answered after the commit with a searchset. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_patch.h"
#include "fhir/fhir_int.h"
#include "base/banned.h"

enum { M_GET = 1, M_POST, M_PUT, M_PATCH, M_DELETE };

struct bentry {
	int method;
	char type[64];
	char id[ID_MAX + 1];
	char vid[24];
	char full_url[256];
	size_t res_off, res_len; /* the entry's resource, as text (len 0: none) */
	json_object *res;        /* while it is being planned */
	struct fhir_prepared prep;
	int64_t if_match;
	long op;                 /* index into the txn's ops, or -1 */
	struct err err;          /* batch: why this entry was not planned */
	bool failed;
	char *query;             /* the criteria of request.url (after '?'), or NULL */
	bool existing;           /* ifNoneExist matched: answer with that resource */
	bool nothing;            /* conditional delete matched nothing */
	bool search;             /* GET Type?criteria */
	bool create;             /* PUT that creates under a new id (no match) */
};

struct fhir_bundle_plan {
	const struct fhir_req *req;  /* whose hooks decide and filter the entries, or NULL */
	bool transaction;
	size_t n;
	struct bentry *e;
	struct store_op *ops;
	struct store_txn txn;
};

size_t fhir_bundle_entries(const struct fhir_bundle_plan *plan)
{
	return plan ? plan->n : 0;
}

size_t fhir_bundle_report(const struct fhir_bundle_plan *p, fhir_entry_fail_fn fn, void *ctx)
{
	size_t written = 0;

	if (p->transaction && p->txn.rc < 0) {
		/* All or nothing: name the entry that failed. */
		for (size_t i = 0; i < p->n; i++)
			if (p->e[i].op == (long)p->txn.failed_op)
				fn(ctx, i, &p->txn.err);
		return 0;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct bentry *b = &p->e[i];
		const struct store_op *op = b->op >= 0 ? &p->ops[b->op] : NULL;

		if (b->failed) {
			fn(ctx, i, &b->err);
		} else if (op && (op->status == 0 || p->txn.rc < 0)) {
			struct err e = op->err.code ? op->err : p->txn.err;
			fn(ctx, i, &e);
		} else if (op) {
			written++;
		}
	}
	return written;
}

void fhir_bundle_plan_free(struct fhir_bundle_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		json_object_put(p->e[i].res);
		fhir_prepared_release(&p->e[i].prep);
		free(p->e[i].query);
	}
	if (p->ops)
		for (size_t i = 0; i < p->txn.n; i++)
			free(p->ops[i].json);
	free(p->e);
	free(p->ops);
	free(p);
}

void fhir_rewrite_refs(json_object *o, const struct fhir_refmap *map)
{
	if (!o || map->n == 0)
		return;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			fhir_rewrite_refs(json_object_array_get_idx(o, i), map);
		return;
	}
	if (!json_object_is_type(o, json_type_object))
		return;
	json_object_object_foreach(o, key, val) {
		if (strcmp(key, "reference") == 0 && json_object_is_type(val, json_type_string)) {
			const char *s = json_object_get_string(val);
			for (size_t i = 0; i < map->n; i++) {
				if (strcmp(s, map->from[i]) == 0) {
					json_object_set_string(val, map->to[i]);
					break;
				}
			}
		} else {
			fhir_rewrite_refs(val, map);
		}
	}
}

/* An absolute reference to this server (base/Type/id[/_history/v]) is
 * stored relative, as the server's own references are, so that searches,
 * chains and includes follow it (FHIR R4 3.1.0.4: servers may convert). */
void fhir_localize_refs(json_object *o, const char *base)
{
	size_t bl = base ? strlen(base) : 0;

	if (!o || bl == 0)
		return;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			fhir_localize_refs(json_object_array_get_idx(o, i), base);
		return;
	}
	if (!json_object_is_type(o, json_type_object))
		return;
	json_object_object_foreach(o, key, val) {
		if (strcmp(key, "reference") == 0 && json_object_is_type(val, json_type_string)) {
			const char *s = json_object_get_string(val), *rest, *slash, *hist;
			size_t idn;
			if (strncmp(s, base, bl) != 0 || s[bl] != '/')
				continue;
			rest = s + bl + 1;
			slash = strchr(rest, '/');
			if (!slash || !fhir_resource_type_n(rest, (size_t)(slash - rest)))
				continue;
			hist = strstr(slash + 1, "/_history/");
			idn = hist ? (size_t)(hist - slash - 1) : strlen(slash + 1);
			if (!id_valid(slash + 1, idn))
				continue;
			if (hist && (!hist[10] || strspn(hist + 10, "0123456789") != strlen(hist + 10)))
				continue;
			{
				char *copy = strdup(rest);
				if (!copy)
					continue; /* left absolute: still a valid reference */
				json_object_set_string(val, copy);
				free(copy);
			}
		} else {
			fhir_localize_refs(val, base);
		}
	}
}

/* Entry-level failure: in a transaction it fails the Bundle (iss); in a
 * batch it becomes that entry's response. */
static void entry_fail(struct fhir_bundle_plan *p, struct fhir_issues *iss, size_t i, int code,
		       const char *where, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void entry_fail(struct fhir_bundle_plan *p, struct fhir_issues *iss, size_t i, int code,
		       const char *where, const char *fmt, ...)
{
	struct bentry *b = &p->e[i];
	char msg[ERR_MSG_MAX], expr[ERR_EXPR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(expr, sizeof(expr), "Bundle.entry[%zu]%s%s", i, where ? "." : "", where ? where : "");
	b->failed = true;
	err_set(&b->err, code, "%s", msg);
	err_expr(&b->err, expr);
	if (p->transaction) {
		fhir_issue_add(iss, FHIR_ERROR, fhir_issue_code(code), expr, "%s", msg);
		if (!iss->status)
			iss->status = fhir_http_status(code); /* the first failure's */
	}
}

/* Accept "Type", "Type/id", "Type/id/_history/vid", relative or under base. */
static int parse_url(const char *url, struct bentry *b, bool *has_query)
{
	const char *p = url, *slash, *hist;
	size_t n;

	*has_query = strchr(url, '?') != NULL;
	if (strstr(url, "://"))
		return -1; /* absolute URLs in requests are not ours to serve */
	while (*p == '/')
		p++;
	n = strcspn(p, "/?");
	if (n == 0 || n >= sizeof(b->type))
		return -1;
	snprintf(b->type, sizeof(b->type), "%.*s", (int)n, p);
	if (p[n] != '/')
		return 0;
	slash = p + n + 1;
	hist = strstr(slash, "/_history/");
	n = hist ? (size_t)(hist - slash) : strcspn(slash, "?");
	if (n == 0 || n > ID_MAX || !id_valid(slash, n))
		return -1;
	snprintf(b->id, sizeof(b->id), "%.*s", (int)n, slash);
	if (hist) {
		const char *v = hist + 10;
		if (!*v || strlen(v) >= sizeof(b->vid) || strspn(v, "0123456789") != strlen(v))
			return -1;
		snprintf(b->vid, sizeof(b->vid), "%s", v);
	} else if (slash[n] == '/') {
		return -1;
	}
	return 0;
}

static int method_of(const char *m)
{
	if (!m)
		return 0;
	if (strcmp(m, "GET") == 0) return M_GET;
	if (strcmp(m, "POST") == 0) return M_POST;
	if (strcmp(m, "PUT") == 0) return M_PUT;
	if (strcmp(m, "PATCH") == 0) return M_PATCH;
	if (strcmp(m, "DELETE") == 0) return M_DELETE;
	return 0;
}

/* A PATCH entry carries a Binary whose data is a base64 JSON Patch; the
 * result is planned as an update on top of the version it was applied to. */
static json_object *patch_entry(const struct fhir_config *cfg, struct bentry *b, json_object *bin,
				struct err *e)
{
	const char *ct = json_get_str(bin, "contentType"), *data = json_get_str(bin, "data");
	struct store_version cur;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_object *patch = NULL, *doc = NULL, *res = NULL;

	memset(&cur, 0, sizeof(cur));
	if (!json_is_str(json_get(bin, "resourceType"), "Binary") || !ct || !data ||
	    strncmp(ct, "application/json-patch+json", 27) != 0) {
		err_set(e, ERR_INVALID, "a PATCH entry takes a Binary with contentType "
					"application/json-patch+json and the patch as data");
		return NULL;
	}
	raw = malloc(strlen(data) + 1);
	if (!raw || sodium_base642bin(raw, strlen(data) + 1, data, strlen(data), " \r\n", &rawlen,
				      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		err_set(e, ERR_INVALID, "the PATCH entry's data is not valid base64");
		goto out;
	}
	patch = json_parse_buf((const char *)raw, rawlen, cfg->max_depth, e);
	if (!patch)
		goto out;
	if (store_read(cfg->store, b->type, b->id, &cur, e) < 0)
		goto out;
	doc = json_parse_buf(cur.json, cur.len, 0, e);
	if (!doc)
		goto out;
	res = json_patch_apply(doc, patch, e);
	if (!res)
		goto out;
	if (!json_is_str(json_get(res, "resourceType"), b->type) ||
	    !json_is_str(json_get(res, "id"), b->id)) {
		err_set(e, ERR_UNPROCESSABLE, "a patch must not change resourceType or id");
		json_object_put(res);
		res = NULL;
		goto out;
	}
	if (!b->if_match)
		b->if_match = cur.vid;
out:
	free(raw);
	json_object_put(patch);
	json_object_put(doc);
	store_version_release(&cur);
	return res;
}

/* Validate b->res and copy its issues into iss under Bundle.entry[i].resource. */
static int validate_entry(struct fhir_bundle_plan *p, struct fhir_issues *iss, size_t i)
{
	struct bentry *b = &p->e[i];
	struct fhir_issues v;
	size_t tl = strlen(b->type);

	fhir_issues_init(&v);
	if (fhir_validate(b->res, b->type, &v) == 0)
		return 0;
	for (size_t k = 0; k < v.n; k++) {
		char expr[ERR_EXPR_MAX];
		const char *rest = strncmp(v.v[k].expr, b->type, tl) == 0 ? v.v[k].expr + tl : "";
		snprintf(expr, sizeof(expr), "Bundle.entry[%zu].resource%s", i, rest);
		if (p->transaction)
			fhir_issue_add(iss, v.v[k].severity, v.v[k].code, expr, "%s", v.v[k].msg);
		if (k == 0) {
			b->failed = true;
			err_set(&b->err, ERR_INVALID, "%s", v.v[k].msg);
			err_expr(&b->err, expr);
		}
	}
	return -1;
}

static bool is_write(int m)
{
	return m == M_POST || m == M_PUT || m == M_PATCH || m == M_DELETE;
}

/* Order entries by their target type/id, then by position. */
static int cmp_target(const void *x, const void *y)
{
	const struct bentry *a = *(const struct bentry *const *)x;
	const struct bentry *b = *(const struct bentry *const *)y;
	int c = strcmp(a->type, b->type);

	if (c == 0)
		c = strcmp(a->id, b->id);
	return c;
}

/* Offset of the first non-blank byte of text[off..off+len). */
static size_t skip_lead(const char *text, size_t off, size_t len)
{
	while (len && (text[off] == ' ' || text[off] == '\t' || text[off] == '\r' ||
		       text[off] == '\n')) {
		off++;
		len--;
	}
	return off;
}

/* Parse a span that must be a JSON string; NULL (and e set) if it is not. */
static json_object *parse_string(const char *text, const struct json_span *m, struct err *e)
{
	json_object *o = json_parse_at(text, m->off, m->len, 0, e);

	if (o && !json_object_is_type(o, json_type_string)) {
		json_object_put(o);
		err_set(e, ERR_INVALID, "expected a string");
		return NULL;
	}
	return o;
}

/* The Bundle's own members: resourceType and type checked, entry found, the
 * rest parsed so that malformed JSON anywhere is refused. */
static int read_skeleton(const char *text, size_t len, int max_depth, char *type, size_t cap,
			 struct json_span *entry, bool *has_entry, bool *is_bundle, struct err *e)
{
	struct json_span *m = NULL;
	size_t n = 0;
	int rc = -1;

	*has_entry = false;
	*is_bundle = false;
	type[0] = '\0';
	if (json_split(text, 0, len, false, &m, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_object *v;
		if (json_span_key_is(&m[i], "entry")) {
			*entry = m[i];
			*has_entry = true;
			continue;
		}
		v = json_parse_at(text, m[i].off, m[i].len, max_depth, e);
		if (!v && e->code)
			goto out;
		if (json_span_key_is(&m[i], "resourceType"))
			*is_bundle = json_is_str(v, "Bundle");
		else if (json_span_key_is(&m[i], "type") && json_object_is_type(v, json_type_string))
			snprintf(type, cap, "%s", json_object_get_string(v));
		json_object_put(v);
	}
	rc = 0;
out:
	free(m);
	return rc;
}

int fhir_bundle_peek(const char *text, size_t len, char *type, size_t cap, struct err *e)
{
	struct json_span entry;
	bool has_entry, is_bundle;

	if (read_skeleton(text, len, 0, type, cap, &entry, &has_entry, &is_bundle, e) < 0)
		return -1;
	return is_bundle;
}

int fhir_bundle_each(const char *text, size_t len, int max_depth, fhir_each_fn fn, void *ctx,
		     struct err *e)
{
	struct json_span entry, *items = NULL;
	char type[64];
	bool has_entry, is_bundle;
	size_t n = 0;

	if (read_skeleton(text, len, max_depth, type, sizeof(type), &entry, &has_entry, &is_bundle, e) < 0)
		return -1;
	if (!has_entry)
		return 0;
	if (json_split(text, entry.off, entry.len, true, &items, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct json_span *m = NULL;
		size_t nm = 0;
		struct err ee = ERR_INIT;
		json_object *res = NULL;
		bool found = false;

		if (json_split(text, items[i].off, items[i].len, false, &m, &nm, &ee) == 0) {
			for (size_t k = 0; k < nm && !ee.code; k++) {
				json_object *v = json_parse_at(text, m[k].off, m[k].len, max_depth, &ee);
				if (json_span_key_is(&m[k], "resource") && v) {
					res = v;
					found = true;
				} else {
					json_object_put(v);
				}
			}
			if (!found && !ee.code)
				err_set(&ee, ERR_INVALID, "entry has no resource");
		}
		free(m);
		if (ee.code) {
			json_object_put(res);
			res = NULL;
		}
		fn(ctx, i, res, &ee);
	}
	free(items);
	return 0;
}

/* The "id" member of the resource written at text[off..off+len), if any. */
static bool peek_id(const char *text, size_t off, size_t len, char id[ID_MAX + 1])
{
	struct json_span *m = NULL;
	size_t n = 0;
	struct err e = ERR_INIT;
	bool found = false;

	id[0] = '\0';
	if (len == 0 || json_split(text, off, len, false, &m, &n, &e) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		if (json_span_key_is(&m[i], "id")) {
			json_object *v = json_parse_at(text, m[i].off, m[i].len, 0, &e);
			if (v && json_object_is_type(v, json_type_string) &&
			    id_valid(json_object_get_string(v), strlen(json_object_get_string(v)))) {
				snprintf(id, ID_MAX + 1, "%s", json_object_get_string(v));
				found = true;
			}
			json_object_put(v);
		}
	}
	free(m);
	return found;
}

/* Resolve a conditional entry (POST ifNoneExist, PUT or DELETE with
 * criteria) into b->id and its flags; entry_fail and -1 when it cannot. */
static int resolve_entry(const struct fhir_config *cfg, struct fhir_bundle_plan *p,
			 struct fhir_issues *iss, size_t i, const char *text, const char *criteria,
			 const char *where)
{
	struct bentry *b = &p->e[i];
	char ids[2][ID_MAX + 1], body_id[ID_MAX + 1];
	size_t n = 0;
	struct err e = ERR_INIT;

	if (fhir_condition_ids(cfg, b->type, criteria, ids, 1, &n, &e) < 0) {
		entry_fail(p, iss, i, e.code, where, "%s", e.msg);
		return -1;
	}
	if (n > 1) {
		entry_fail(p, iss, i, ERR_PRECONDITION, where, "the criteria match more than one %s",
			   b->type);
		return -1;
	}
	switch (b->method) {
	case M_POST:
		if (n == 1) {
			b->existing = true;
			snprintf(b->id, sizeof(b->id), "%s", ids[0]);
		}
		return 0;
	case M_DELETE:
		if (n == 1)
			snprintf(b->id, sizeof(b->id), "%s", ids[0]);
		else
			b->nothing = true;
		return 0;
	default: /* M_PUT */
		if (peek_id(text, b->res_off, b->res_len, body_id) && n == 1 &&
		    strcmp(body_id, ids[0]) != 0) {
			entry_fail(p, iss, i, ERR_INVALID, "resource.id",
				   "the resource id is not the id of the %s the criteria found", b->type);
			return -1;
		}
		if (n == 1) {
			snprintf(b->id, sizeof(b->id), "%s", ids[0]);
		} else if (body_id[0]) {
			struct store_version cur;
			int r = store_read(cfg->store, b->type, body_id, &cur, &e);
			store_version_release(&cur);
			if (r == 0 || e.code == ERR_GONE) {
				entry_fail(p, iss, i, ERR_CONFLICT, where,
					   "no %s matches the criteria, but %s/%s exists: not overwritten",
					   b->type, b->type, body_id);
				return -1;
			}
			snprintf(b->id, sizeof(b->id), "%s", body_id);
		} else {
			char id[ID_UUID_LEN + 1];
			id_new(id);
			snprintf(b->id, sizeof(b->id), "%s", id);
			b->create = true;
		}
		return 0;
	}
}

/* Conditional references in res (Type?criteria) become Type/id, each
 * resolved to exactly one resource. */
static int resolve_refs(const struct fhir_config *cfg, json_object *o, struct err *e)
{
	if (!o)
		return 0;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (resolve_refs(cfg, json_object_array_get_idx(o, i), e) < 0)
				return -1;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach(o, key, val) {
		if (strcmp(key, "reference") == 0 && json_object_is_type(val, json_type_string)) {
			const char *r = json_object_get_string(val), *q = strchr(r, '?');
			char type[64], ids[2][ID_MAX + 1], to[64 + ID_MAX + 2];
			size_t n = 0;
			if (!q || strchr(r, '/') || (size_t)(q - r) >= sizeof(type))
				continue;
			snprintf(type, sizeof(type), "%.*s", (int)(q - r), r);
			if (!fhir_resource_type(type))
				continue; /* the validator names it */
			if (fhir_condition_ids(cfg, type, q + 1, ids, 1, &n, e) < 0)
				return -1;
			if (n != 1)
				return err_set(e, ERR_PRECONDITION,
					       "the conditional reference '%.200s' matches %s", r,
					       n ? "more than one resource" : "no resource");
			snprintf(to, sizeof(to), "%s/%s", type, ids[0]);
			json_object_set_string(val, to);
		} else if (resolve_refs(cfg, val, e) < 0) {
			return -1;
		}
	}
	return 0;
}

int fhir_bundle_plan(const struct fhir_config *cfg, const char *text, size_t len,
		     struct fhir_bundle_plan **out, struct store_txn **txn,
		     struct fhir_issues *iss)
{
	return fhir_bundle_plan_req(cfg, NULL, text, len, out, txn, iss);
}

/* The interaction an entry performs, for fhir_req.decide. */
static int entry_interaction(const struct bentry *b)
{
	switch (b->method) {
	case M_GET: return b->search ? FHIR_SEARCH : b->vid[0] ? FHIR_VREAD : FHIR_READ;
	case M_POST: return FHIR_CREATE;
	case M_PATCH: return FHIR_PATCH;
	case M_DELETE: return FHIR_DELETE;
	default: return FHIR_UPDATE;
	}
}

int fhir_bundle_plan_req(const struct fhir_config *cfg, const struct fhir_req *rq, const char *text,
			 size_t len, struct fhir_bundle_plan **out, struct store_txn **txn,
			 struct fhir_issues *iss)
{
	static const int order[] = { M_DELETE, M_POST, M_PUT }; /* PATCH runs with PUT */
	struct fhir_bundle_plan *p = calloc(1, sizeof(*p));
	struct fhir_refmap map = { NULL, NULL, 0 };
	struct json_span entry, *items = NULL;
	struct err e = ERR_INIT;
	char **to_strs = NULL, type[64];
	bool has_entry, is_bundle;
	size_t n = 0, nops = 0;
	int rc = -1;

	*out = NULL;
	*txn = NULL;
	if (p)
		p->req = rq;
	if (!p) {
		fhir_issue_add(iss, FHIR_FATAL, "exception", NULL, "out of memory");
		return -1;
	}
	if (read_skeleton(text, len, cfg->max_depth, type, sizeof(type), &entry, &has_entry,
			  &is_bundle, &e) < 0) {
		fhir_issues_from_err(iss, &e);
		goto out;
	}
	if (!is_bundle) {
		fhir_issue_add(iss, FHIR_ERROR, "invalid", NULL,
			       "POST to the base URL takes a Bundle of type transaction or batch");
		goto out;
	}
	if (strcmp(type, "transaction") != 0 && strcmp(type, "batch") != 0) {
		fhir_issue_add(iss, FHIR_ERROR, "invalid", "Bundle.type",
			       "Bundle.type must be transaction or batch");
		goto out;
	}
	p->transaction = strcmp(type, "transaction") == 0;
	if (has_entry && json_split(text, entry.off, entry.len, true, &items, &n, &e) < 0) {
		if (e.code == ERR_INVALID && text[skip_lead(text, entry.off, entry.len)] != '[')
			err_set(&e, ERR_INVALID, "Bundle.entry must be an array");
		err_expr(&e, "Bundle.entry");
		fhir_issues_from_err(iss, &e);
		goto out;
	}
	if (cfg->max_bundle_entries && n > cfg->max_bundle_entries) {
		fhir_issue_add(iss, FHIR_ERROR, "too-costly", "Bundle.entry",
			       "too many entries: this server takes at most %zu per Bundle",
			       cfg->max_bundle_entries);
		goto out;
	}
	p->n = n;
	p->e = calloc(n ? n : 1, sizeof(*p->e));
	p->ops = calloc(n ? n : 1, sizeof(*p->ops));
	map.from = calloc(n ? n : 1, sizeof(char *));
	map.to = calloc(n ? n : 1, sizeof(char *));
	to_strs = calloc(n ? n : 1, sizeof(char *));
	if (!p->e || !p->ops || !map.from || !map.to || !to_strs) {
		fhir_issue_add(iss, FHIR_FATAL, "exception", NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		p->e[i].op = -1;
		fhir_prepared_init(&p->e[i].prep);
	}

	/* Pass 1: requests, ids, the urn:uuid map.  Resources stay text. */
	for (size_t i = 0; i < n; i++) {
		struct bentry *b = &p->e[i];
		struct json_span *m = NULL;
		size_t nm = 0;
		json_object *req = NULL, *fuo = NULL;
		const char *url, *im, *ine, *fu = NULL;
		bool query = false;

		err_clear(&e);
		if (json_split(text, items[i].off, items[i].len, false, &m, &nm, &e) < 0) {
			entry_fail(p, iss, i, ERR_INVALID, NULL, "%s",
				   text[skip_lead(text, items[i].off, items[i].len)] != '{'
				   ? "an entry must be an object" : e.msg);
			continue;
		}
		for (size_t k = 0; k < nm && !b->failed; k++) {
			if (json_span_key_is(&m[k], "resource")) {
				b->res_off = m[k].off;
				b->res_len = m[k].len;
			} else if (json_span_key_is(&m[k], "request")) {
				req = json_parse_at(text, m[k].off, m[k].len, cfg->max_depth, &e);
				if (!req)
					entry_fail(p, iss, i, ERR_INVALID, "request", "%s", e.msg);
			} else if (json_span_key_is(&m[k], "fullUrl")) {
				fuo = parse_string(text, &m[k], &e);
				if (!fuo)
					entry_fail(p, iss, i, ERR_INVALID, "fullUrl", "%s", e.msg);
				else
					fu = json_object_get_string(fuo);
			} else {
				json_object *v = json_parse_at(text, m[k].off, m[k].len, cfg->max_depth, &e);
				if (!v && e.code)
					entry_fail(p, iss, i, ERR_INVALID, NULL, "%s", e.msg);
				json_object_put(v);
			}
		}
		free(m);
		if (b->failed)
			goto next;
		if (!req || !json_object_is_type(req, json_type_object)) {
			entry_fail(p, iss, i, ERR_INVALID, "request", "missing request (method and url)");
			goto next;
		}
		url = json_get_str(req, "url");
		im = json_get_str(req, "ifMatch");
		ine = json_get_str(req, "ifNoneExist");
		b->method = method_of(json_get_str(req, "method"));
		if (!b->method) {
			entry_fail(p, iss, i, ERR_INVALID, "request.method",
				   "request.method must be GET, POST, PUT, PATCH or DELETE");
			goto next;
		}
		if (!url || parse_url(url, b, &query) < 0) {
			entry_fail(p, iss, i, ERR_INVALID, "request.url",
				   "request.url must be Type, Type/id or Type/id/_history/vid");
			goto next;
		}
		if (!fhir_resource_type(b->type)) {
			entry_fail(p, iss, i, ERR_NOT_FOUND, "request.url", "unknown resource type '%s'", b->type);
			goto next;
		}
		if (query) {
			if (b->id[0] || (b->method != M_GET && b->method != M_PUT && b->method != M_DELETE)) {
				entry_fail(p, iss, i, ERR_INVALID, "request.url",
					   "criteria (Type?name=value) go with GET, PUT or DELETE on a type");
				goto next;
			}
			b->query = strdup(strchr(url, '?') + 1);
			if (!b->query) {
				fhir_issue_add(iss, FHIR_FATAL, "exception", NULL, "out of memory");
				json_object_put(req);
				json_object_put(fuo);
				goto out;
			}
		}
		if (b->method == M_GET && !b->id[0])
			b->search = true; /* answered after the commit */
		if (rq && rq->decide) {
			struct err de = ERR_INIT;
			if (rq->decide(rq->visible_ctx, entry_interaction(b), b->type, &de) < 0) {
				entry_fail(p, iss, i, de.code ? de.code : ERR_FORBIDDEN, NULL, "%s", de.msg);
				goto next;
			}
		}
		if (ine && b->method != M_POST) {
			entry_fail(p, iss, i, ERR_INVALID, "request.ifNoneExist",
				   "ifNoneExist goes with POST");
			goto next;
		}
		if (im && fhir_parse_etag(im, &b->if_match) < 0) {
			entry_fail(p, iss, i, ERR_INVALID, "request.ifMatch",
				   "ifMatch must be a version ETag such as W/\"3\"");
			goto next;
		}
		if (b->vid[0] && b->method != M_GET) {
			entry_fail(p, iss, i, ERR_INVALID, "request.url", "only GET may name a version");
			goto next;
		}
		if (!b->search && !b->query && (b->method == M_POST) != (b->id[0] == '\0')) {
			entry_fail(p, iss, i, ERR_INVALID, "request.url", b->method == M_POST
				   ? "POST takes the type only (Type): the server assigns the id"
				   : "this method needs Type/id");
			goto next;
		}
		if ((b->method == M_POST || b->method == M_PUT || b->method == M_PATCH) &&
		    (b->res_len == 0 || text[b->res_off] != '{')) {
			entry_fail(p, iss, i, ERR_INVALID, "resource", "this entry needs a resource");
			goto next;
		}
		if (b->method == M_POST && ine && *ine) {
			const char *qm = strchr(ine, '?');
			if (resolve_entry(cfg, p, iss, i, text, qm ? qm + 1 : ine,
					  "request.ifNoneExist") < 0)
				goto next;
		}
		if (b->query && b->method != M_GET &&
		    resolve_entry(cfg, p, iss, i, text, b->query, "request.url") < 0)
			goto next;
		if (b->method == M_POST && !b->existing) {
			char id[ID_UUID_LEN + 1];
			id_new(id);
			snprintf(b->id, sizeof(b->id), "%s", id);
		}
		if (fu)
			snprintf(b->full_url, sizeof(b->full_url), "%s", fu);
		if (p->transaction && fu && strncmp(fu, "urn:uuid:", 9) == 0 &&
		    (b->method == M_POST || b->method == M_PUT) && b->id[0]) {
			to_strs[map.n] = malloc(strlen(b->type) + strlen(b->id) + 2);
			if (!to_strs[map.n]) {
				fhir_issue_add(iss, FHIR_FATAL, "exception", NULL, "out of memory");
				json_object_put(req);
				json_object_put(fuo);
				goto out;
			}
			snprintf(to_strs[map.n], strlen(b->type) + strlen(b->id) + 2, "%s/%s", b->type, b->id);
			map.from[map.n] = b->full_url;
			map.to[map.n] = to_strs[map.n];
			map.n++;
		}
next:
		json_object_put(req);
		json_object_put(fuo);
	}
	if (p->transaction && iss->errors)
		goto out;

	/* A transaction may touch each resource once: sort the writes by
	 * type/id and look at neighbours (a Bundle may have many thousands). */
	if (p->transaction) {
		const struct bentry **w = calloc(n ? n : 1, sizeof(*w));
		size_t nw = 0;
		if (!w) {
			fhir_issue_add(iss, FHIR_FATAL, "exception", NULL, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (is_write(p->e[i].method) && !p->e[i].existing && !p->e[i].nothing)
				w[nw++] = &p->e[i];
		qsort(w, nw, sizeof(*w), cmp_target);
		for (size_t k = 1; k < nw; k++) {
			if (cmp_target(&w[k - 1], &w[k]) == 0) {
				const struct bentry *a = w[k - 1] < w[k] ? w[k - 1] : w[k];
				const struct bentry *b = w[k - 1] < w[k] ? w[k] : w[k - 1];
				entry_fail(p, iss, (size_t)(b - p->e), ERR_INVALID, "request.url",
					   "%s/%s is already written by entry %zu", b->type, b->id,
					   (size_t)(a - p->e));
			}
		}
		free(w);
	}

	/* Pass 2, one entry at a time (so a large Bundle never becomes one big
	 * tree): parse the resource, apply a PATCH, rewrite urn:uuid references,
	 * validate, prepare, and let the tree go. */
	for (size_t i = 0; i < n; i++) {
		struct bentry *b = &p->e[i];

		if (b->failed || b->res_len == 0 || b->existing ||
		    (b->method != M_POST && b->method != M_PUT && b->method != M_PATCH))
			continue;
		err_clear(&e);
		b->res = json_parse_at(text, b->res_off, b->res_len, cfg->max_depth, &e);
		if (!b->res) {
			entry_fail(p, iss, i, ERR_INVALID, "resource", "%s", e.msg);
			continue;
		}
		if (b->method == M_PATCH) {
			json_object *bin = b->res;
			b->res = patch_entry(cfg, b, bin, &e);
			json_object_put(bin);
			if (!b->res) {
				entry_fail(p, iss, i, e.code, "resource", "%s", e.msg);
				continue;
			}
		} else if (b->method == M_PUT && b->query) {
			/* resolved: the resource takes the id found (or made) */
			json_object_object_add(b->res, "id", json_object_new_string(b->id));
		} else if (b->method == M_PUT) {
			const char *rid = json_get_str(b->res, "id");
			if (!rid || strcmp(rid, b->id) != 0) {
				entry_fail(p, iss, i, ERR_INVALID, "resource.id",
					   "the resource id must equal the id in request.url");
				goto drop;
			}
		}
		if (p->transaction) {
			fhir_rewrite_refs(b->res, &map);
			err_clear(&e);
			if (resolve_refs(cfg, b->res, &e) < 0) {
				entry_fail(p, iss, i, e.code, "resource", "%s", e.msg);
				goto drop;
			}
		}
		if (rq)
			fhir_localize_refs(b->res, rq->base);
		if (validate_entry(p, iss, i) < 0)
			goto drop;
		if (fhir_prepare(cfg->params, b->res, b->id, &b->prep, &e) < 0)
			entry_fail(p, iss, i, e.code, NULL, "%s", e.msg);
drop:
		json_object_put(b->res);
		b->res = NULL;
	}
	if (p->transaction && iss->errors)
		goto out;

	/* Operations in the spec's order. */
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		for (size_t i = 0; i < n; i++) {
			struct bentry *b = &p->e[i];
			struct store_op *op;
			int m = b->method == M_PATCH ? M_PUT : b->method;

			if (b->failed || b->existing || b->nothing || m != order[o])
				continue;
			op = &p->ops[nops];
			b->op = (long)nops++;
			if (b->method == M_DELETE) {
				op->type = b->type;
				op->id = b->id;
				op->kind = STORE_REMOVE;
				op->method = STORE_DELETE;
			} else {
				fhir_prepared_op(&b->prep, op);
				op->kind = b->method == M_POST || b->create ? STORE_CREATE : STORE_UPDATE;
				op->method = b->method == M_POST ? STORE_POST
					   : b->method == M_PATCH ? STORE_PATCH : STORE_PUT;
				op->want_json = !cfg->bulk;
			}
			op->if_match = b->if_match;
		}
	}
	p->txn.ops = p->ops;
	p->txn.n = nops;
	p->txn.atomic = p->transaction;
	*out = p;
	*txn = &p->txn;
	rc = 0;
out:
	free(items);
	for (size_t i = 0; to_strs && i < map.n; i++)
		free(to_strs[i]);
	free(to_strs);
	free(map.from);
	free(map.to);
	if (rc < 0)
		fhir_bundle_plan_free(p);
	return rc;
}

static void entry_outcome(struct buf *out, const struct err *e)
{
	struct fhir_issues iss;

	fhir_issues_init(&iss);
	fhir_issues_from_err(&iss, e);
	buf_addf(out, "\"response\":{\"status\":\"%s\",\"outcome\":",
		 fhir_status_line(fhir_http_status(e->code)));
	fhir_outcome_write(&iss, out);
	buf_addstr(out, "}");
}

static void entry_get(const struct fhir_config *cfg, const struct fhir_req *rq, const struct bentry *b,
		      const char *base, struct buf *out)
{
	struct store_version v;
	struct err e = ERR_INIT;
	char ts[TIME_INSTANT_MAX];

	if (fhir_read_into(cfg, b->type, b->id, b->vid[0] ? b->vid : NULL, &v, &e) < 0) {
		store_version_release(&v);
		entry_outcome(out, &e);
		return;
	}
	if (rq && rq->visible && !rq->visible(rq->visible_ctx, b->type, b->id, v.json, v.len)) {
		/* what a read of a record that is not there answers */
		store_version_release(&v);
		err_set(&e, ERR_NOT_FOUND, "%s/%s is not known", b->type, b->id);
		entry_outcome(out, &e);
		return;
	}
	time_format_instant(v.ts_ms, ts);
	buf_addf(out, "\"fullUrl\":\"%s/%s/%s\",\"resource\":", base, b->type, b->id);
	buf_add(out, v.json, v.len);
	buf_addf(out, ",\"response\":{\"status\":\"200 OK\",\"etag\":\"W/\\\"%" PRId64 "\\\"\","
		      "\"lastModified\":\"%s\"}", v.vid, ts);
	store_version_release(&v);
}

/* A GET Type?criteria entry: the searchset, as the entry's resource. */
static void entry_search(const struct fhir_config *cfg, const struct fhir_req *rq, const struct bentry *b,
			 const char *base, struct buf *out)
{
	struct fhir_param params[128];
	struct fhir_req req;
	struct fhir_resp resp;
	struct arena a;
	struct err e = ERR_INIT;
	bool bad = false;

	arena_init(&a, 1 << 20);
	memset(&req, 0, sizeof(req));
	req.interaction = FHIR_SEARCH;
	req.type = fhir_resource_type(b->type)->name;
	req.base = base;
	if (rq) {
		req.visible = rq->visible;
		req.visible_ctx = rq->visible_ctx;
		req.no_total = rq->no_total;
	}
	req.arena = &a;
	req.n_params = fhir_query_params(&a, b->query, params, sizeof(params) / sizeof(params[0]),
					 &bad);
	req.params = params;
	if (bad) {
		err_set(&e, ERR_INVALID, "request.url: malformed criteria (bad %%-escape or too many)");
		entry_outcome(out, &e);
		arena_release(&a);
		return;
	}
	fhir_resp_init(&resp);
	fhir_search(cfg, &req, &resp);
	if (resp.status == 200) {
		buf_addstr(out, "\"resource\":");
		buf_add(out, resp.body.data, resp.body.len);
		buf_addstr(out, ",\"response\":{\"status\":\"200 OK\"}");
	} else {
		buf_addf(out, "\"response\":{\"status\":\"%s\",\"outcome\":",
			 fhir_status_line(resp.status));
		buf_add(out, resp.body.data, resp.body.len);
		buf_addstr(out, "}");
	}
	fhir_resp_release(&resp);
	arena_release(&a);
}

int fhir_bundle_response(const struct fhir_config *cfg, struct fhir_bundle_plan *p,
			 const char *base, int prefer, struct buf *out)
{
	char bid[ID_UUID_LEN + 1], now[TIME_INSTANT_MAX];

	if (p->transaction && p->txn.rc < 0) {
		struct err e = p->txn.err;
		struct fhir_issues iss;
		for (size_t i = 0; i < p->n; i++) {
			if (p->e[i].op == (long)p->txn.failed_op) {
				char expr[ERR_EXPR_MAX];
				snprintf(expr, sizeof(expr), "Bundle.entry[%zu]", i);
				err_expr(&e, expr);
			}
		}
		fhir_issues_init(&iss);
		fhir_issues_from_err(&iss, &e);
		fhir_outcome_write(&iss, out);
		return fhir_http_status(e.code);
	}
	id_new(bid);
	time_format_instant(time_now_ms(), now);
	buf_addf(out, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
		      "\"type\":\"%s\"", bid, now,
		 p->transaction ? "transaction-response" : "batch-response");
	if (p->n)
		buf_addstr(out, ",\"entry\":[");
	for (size_t i = 0; i < p->n; i++) {
		const struct bentry *b = &p->e[i];
		const struct store_op *op = b->op >= 0 ? &p->ops[b->op] : NULL;
		char ts[TIME_INSTANT_MAX];

		buf_addstr(out, i ? ",{" : "{");
		if (b->failed) {
			entry_outcome(out, &b->err);
		} else if (b->search) {
			entry_search(cfg, p->req, b, base, out);
		} else if (b->method == M_GET || b->existing) {
			/* a read, or the match of an ifNoneExist (nothing created) */
			entry_get(cfg, p->req, b, base, out);
		} else if (b->nothing) {
			buf_addstr(out, "\"response\":{\"status\":\"204 No Content\"}");
		} else if (!op || op->status == 0) {
			struct err e = op ? op->err : b->err;
			if (op && !e.code)
				e = p->txn.err;
			entry_outcome(out, &e);
		} else if (b->method == M_DELETE) {
			buf_addstr(out, "\"response\":{\"status\":\"");
			buf_addstr(out, op->noop ? "204 No Content\"" : "200 OK\"");
			if (!op->noop) {
				time_format_instant(op->ts_ms, ts);
				buf_addf(out, ",\"etag\":\"W/\\\"%" PRId64 "\\\"\",\"lastModified\":\"%s\"",
					 op->vid, ts);
			}
			buf_addstr(out, "}");
		} else {
			time_format_instant(op->ts_ms, ts);
			buf_addf(out, "\"fullUrl\":\"%s/%s/%s\",", base, op->type, op->id);
			if (prefer != FHIR_RETURN_MINIMAL && prefer != FHIR_RETURN_OUTCOME && op->json) {
				buf_addstr(out, "\"resource\":");
				buf_add(out, op->json, op->json_len);
				buf_addch(out, ',');
			}
			buf_addf(out, "\"response\":{\"status\":\"%s\",\"location\":\"%s/%s/_history/%" PRId64
				      "\",\"etag\":\"W/\\\"%" PRId64 "\\\"\",\"lastModified\":\"%s\"}",
				 fhir_status_line(op->status), op->type, op->id, op->vid, op->vid, ts);
		}
		buf_addch(out, '}');
	}
	if (p->n)
		buf_addch(out, ']');
	buf_addch(out, '}');
	return 200;
}
