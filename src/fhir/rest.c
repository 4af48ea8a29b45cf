/* rest.c - the FHIR REST interactions over the store.
 *
 * fhir_begin() does everything that needs no lock: parse, validate, prepare
 * the write.  Reads finish there.  Writes return FHIR_COMMIT with resp->txn;
 * the caller commits it (the server without blocking a thread, the CLI
 * synchronously) and calls fhir_finish(), which turns the store's answer
 * into status, headers and body.  Nothing here knows HTTP beyond status
 * codes and header values. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_patch.h"
#include "base/url.h"
#include "fhir/fhir_int.h"
#include "base/banned.h"

#define HISTORY_DEFAULT_COUNT 50
#define HISTORY_MAX_COUNT 1000

void fhir_resp_init(struct fhir_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
}

/* ---- conditional writes ----
 *
 * The condition is a search run before the write is queued.  Two conditional
 * writes with the same type and criteria must not both see "no match" and
 * both create: the criteria of a conditional write stay in a set from begin
 * to finish, and a second one with the same criteria meanwhile gets 409 (try
 * again).  (A plain create racing a conditional one is not covered.) */

static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static char **cond_keys;
static size_t cond_n, cond_cap;

/* Claim type?query; *key is the claim, released with cond_release. */
static int cond_claim(const char *type, const char *query, char **key_out, struct err *e)
{
	size_t len = strlen(type) + strlen(query) + 2;
	char *key = malloc(len);

	*key_out = NULL;
	if (!key)
		return err_set(e, ERR_NOMEM, "out of memory");
	snprintf(key, len, "%s?%s", type, query);
	pthread_mutex_lock(&cond_mu);
	for (size_t i = 0; i < cond_n; i++) {
		if (strcmp(cond_keys[i], key) == 0) {
			pthread_mutex_unlock(&cond_mu);
			free(key);
			return err_set(e, ERR_CONFLICT, "a conditional write with the same criteria is in "
							"progress; try again");
		}
	}
	if (cond_n == cond_cap) {
		size_t ncap = cond_cap ? cond_cap * 2 : 16;
		char **v = realloc(cond_keys, ncap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&cond_mu);
			free(key);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		cond_keys = v;
		cond_cap = ncap;
	}
	cond_keys[cond_n++] = key;
	pthread_mutex_unlock(&cond_mu);
	*key_out = key;
	return 0;
}

static void cond_release(char *key)
{
	if (!key)
		return;
	pthread_mutex_lock(&cond_mu);
	for (size_t i = 0; i < cond_n; i++) {
		if (cond_keys[i] == key) {
			cond_keys[i] = cond_keys[--cond_n];
			break;
		}
	}
	if (cond_n == 0) {
		free(cond_keys);
		cond_keys = NULL;
		cond_cap = 0;
	}
	pthread_mutex_unlock(&cond_mu);
	free(key);
}

int fhir_condition_query(const struct fhir_req *req, struct buf *out)
{
	bool first = true;

	buf_reset(out);
	for (size_t i = 0; i < req->n_params; i++) {
		const char *name = req->params[i].name;
		if (strcmp(name, "_format") == 0 || strcmp(name, "_pretty") == 0)
			continue;
		if (!first)
			buf_addch(out, '&');
		first = false;
		url_encode(out, name);
		buf_addch(out, '=');
		url_encode(out, req->params[i].value ? req->params[i].value : "");
	}
	return out->failed ? -1 : 0;
}

size_t fhir_query_params(struct arena *a, const char *q, struct fhir_param *out, size_t cap,
			 bool *bad)
{
	struct buf t = BUF_INIT(0);
	size_t n = 0;

	*bad = false;
	while (q && *q && n < cap) {
		size_t len = strcspn(q, "&"), eq = strcspn(q, "=");
		if (len) {
			size_t nl = eq < len ? eq : len;
			buf_reset(&t);
			if (url_decode(&t, q, nl, 1) < 0)
				*bad = true;
			out[n].name = arena_strndup(a, buf_cstr(&t), t.len);
			buf_reset(&t);
			if (eq < len && url_decode(&t, q + eq + 1, len - eq - 1, 1) < 0)
				*bad = true;
			out[n].value = arena_strndup(a, buf_cstr(&t), t.len);
			if (!out[n].name || !out[n].value)
				*bad = true;
			n++;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	if (q && *q)
		*bad = true; /* more parameters than fit */
	buf_release(&t);
	return n;
}

int fhir_condition_ids(const struct fhir_config *cfg, const char *type, const char *query,
		       char (*ids)[ID_MAX + 1], size_t max, size_t *n, struct err *e)
{
	if (!query || !*query)
		return err_set(e, ERR_INVALID, "a conditional %s needs search criteria", type);
	if (fhir_search_ids(cfg, type, query, ids, max, n, e) < 0) {
		if (e->code == ERR_INVALID) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", e->msg);
			err_clear(e);
			err_set(e, ERR_INVALID, "the condition is not a valid search: %s", why);
		}
		return -1;
	}
	return 0;
}

static void plan_free(struct fhir_plan *p)
{
	if (!p)
		return;
	free(p->op.json);
	cond_release(p->cond_key);
	fhir_prepared_release(&p->prep);
	fhir_bundle_plan_free(p->bundle);
	free(p);
}

void fhir_resp_release(struct fhir_resp *r)
{
	buf_release(&r->body);
	plan_free(r->plan);
	r->plan = NULL;
	r->txn = NULL;
}

void fhir_resp_issues(struct fhir_resp *r, int status, const struct fhir_issues *iss)
{
	r->status = status;
	buf_reset(&r->body);
	fhir_outcome_write(iss, &r->body);
}

void fhir_resp_error(struct fhir_resp *r, const struct err *e)
{
	struct fhir_issues iss;

	fhir_issues_init(&iss);
	fhir_issues_from_err(&iss, e);
	fhir_resp_issues(r, fhir_http_status(e->code), &iss);
}

const char *fhir_status_line(int status)
{
	switch (status) {
	case 200: return "200 OK";
	case 201: return "201 Created";
	case 204: return "204 No Content";
	case 400: return "400 Bad Request";
	case 401: return "401 Unauthorized";
	case 403: return "403 Forbidden";
	case 404: return "404 Not Found";
	case 405: return "405 Method Not Allowed";
	case 409: return "409 Conflict";
	case 410: return "410 Gone";
	case 412: return "412 Precondition Failed";
	case 413: return "413 Payload Too Large";
	case 415: return "415 Unsupported Media Type";
	case 422: return "422 Unprocessable Entity";
	case 501: return "501 Not Implemented";
	case 503: return "503 Service Unavailable";
	default: return "500 Internal Server Error";
	}
}

int fhir_parse_etag(const char *s, int64_t *vid)
{
	const char *p = s;
	bool quoted = false, weak = false;
	int64_t v = 0;
	size_t digits = 0;

	while (*p == ' ')
		p++;
	if (p[0] == 'W' && p[1] == '/') {
		weak = true;
		p += 2;
	}
	if (*p == '"') {
		quoted = true;
		p++;
	}
	while (*p >= '0' && *p <= '9') {
		int d = *p++ - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		digits++;
	}
	if (digits == 0 || v <= 0)
		return -1;
	if (quoted && *p++ != '"')
		return -1;
	while (*p == ' ')
		p++;
	if (*p != '\0' || (weak && !quoted))
		return -1;
	*vid = v;
	return 0;
}

static void set_version_headers(struct fhir_resp *r, int64_t vid, int64_t ts_ms)
{
	snprintf(r->etag, sizeof(r->etag), "W/\"%" PRId64 "\"", vid);
	time_format_http(ts_ms, r->last_modified);
}

static const char *param(const struct fhir_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_params; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

/* Re-indent the body for _pretty=true. */
static void prettify(const struct fhir_req *req, struct fhir_resp *r)
{
	struct err e = ERR_INIT;
	json_object *o;
	size_t n = 0;
	const char *s;

	if (!req->pretty || r->body.len == 0)
		return;
	o = json_parse_buf(r->body.data, r->body.len, 0, &e);
	if (!o)
		return;
	s = json_dump_pretty(o, &n);
	buf_reset(&r->body);
	buf_add(&r->body, s, n);
	json_object_put(o);
}

/* The body is json (malloc'd; ownership moves to r). */
static void set_body_json(struct fhir_resp *r, const struct fhir_req *req, char *json, size_t len)
{
	buf_attach(&r->body, json, len);
	prettify(req, r);
}

static int check_type(const char *type, struct err *e)
{
	if (!type || !fhir_resource_type(type))
		return err_set(e, ERR_NOT_FOUND, "unknown resource type '%.64s'", type ? type : "");
	return 0;
}

static int check_id(const char *id, struct err *e)
{
	if (!id || !id_valid(id, strlen(id)))
		return err_set(e, ERR_INVALID, "'%.70s' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)",
			       id ? id : "");
	return 0;
}

int fhir_read_into(const struct fhir_config *cfg, const char *type, const char *id,
		   const char *vid, struct store_version *v, struct err *e)
{
	char *end;
	long long n;

	memset(v, 0, sizeof(*v));
	if (check_type(type, e) < 0 || check_id(id, e) < 0)
		return -1;
	if (!vid)
		return store_read(cfg->store, type, id, v, e);
	n = strtoll(vid, &end, 10);
	if (*vid < '1' || *vid > '9' || *end || n <= 0)
		return err_set(e, ERR_NOT_FOUND, "'%.20s' is not a version of %s/%s", vid, type, id);
	return store_vread(cfg->store, type, id, n, v, e);
}

static int do_read(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct store_version v;
	struct err e = ERR_INIT;

	if (fhir_read_into(cfg, req->type, req->id, req->vid, &v, &e) < 0) {
		fhir_resp_error(resp, &e);
		if (e.code == ERR_GONE && v.vid > 0)
			set_version_headers(resp, v.vid, v.ts_ms);
		store_version_release(&v);
		return FHIR_DONE;
	}
	resp->status = 200;
	set_version_headers(resp, v.vid, v.ts_ms);
	if (req->vid)
		snprintf(resp->content_location, sizeof(resp->content_location),
			 "%s/%s/%s/_history/%" PRId64, req->base, req->type, req->id, v.vid);
	set_body_json(resp, req, v.json, v.len);
	v.json = NULL;
	return FHIR_DONE;
}

json_object *fhir_parse_resource(const struct fhir_config *cfg, const char *body, size_t len,
				 const char *expect_type, struct fhir_issues *iss, int *status)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(body, len, cfg->max_depth, &e);

	if (!o) {
		fhir_issues_from_err(iss, &e);
		*status = fhir_http_status(e.code);
		return NULL;
	}
	if (fhir_validate(o, expect_type, iss) > 0) {
		json_object_put(o);
		*status = 400;
		return NULL;
	}
	return o;
}

static struct fhir_plan *plan_new(struct fhir_resp *resp)
{
	struct fhir_plan *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	fhir_prepared_init(&p->prep);
	p->txn.ops = &p->op;
	p->txn.n = 1;
	p->txn.atomic = true;
	resp->plan = p;
	resp->txn = &p->txn;
	return p;
}

/* The requester's may_write on the current version of type/id: its JSON,
 * or NULL when there is none (missing or deleted), so that the requester
 * decides what a missing record's answer is. */
static int may_write_current(const struct fhir_config *cfg, const struct fhir_req *req,
			     const char *id, struct err *e)
{
	struct store_version cur;
	int rc;

	memset(&cur, 0, sizeof(cur));
	if (store_read(cfg->store, req->type, id, &cur, e) == 0 && cur.json) {
		rc = req->may_write(req->visible_ctx, req->type, id, cur.json, cur.len, e);
	} else if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE) {
		err_clear(e);
		rc = req->may_write(req->visible_ctx, req->type, id, NULL, 0, e);
	} else {
		rc = -1;
	}
	store_version_release(&cur);
	return rc;
}

/* The requester's may_write on what the write would store (its members, as
 * the server writes them) and, for an update, on what it replaces. */
static int may_write(const struct fhir_config *cfg, const struct fhir_req *req, int kind,
		     const char *id, const struct fhir_prepared *prep, struct err *e)
{
	if (req->may_write(req->visible_ctx, req->type, id, prep->body.data ? prep->body.data : "",
			   prep->body.len, e) < 0)
		return -1;
	return kind == STORE_UPDATE ? may_write_current(cfg, req, id, e) : 0;
}

/* Common tail of create, update and patch: prepare res and queue the op. */
static int queue_write(const struct fhir_config *cfg, const struct fhir_req *req,
		       struct fhir_resp *resp, json_object *res, const char *id, int kind, int method,
		       int64_t if_match, char *claim)
{
	struct err e = ERR_INIT;
	struct fhir_plan *p = plan_new(resp);

	if (!p) {
		cond_release(claim);
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	/* a conditional write holds its criteria until it finishes */
	p->cond_key = claim;
	snprintf(p->id, sizeof(p->id), "%s", id);
	fhir_localize_refs(res, req->base);
	if (fhir_prepare(cfg->params, res, p->id, &p->prep, &e) < 0)
		goto fail;
	if (req->may_write && may_write(cfg, req, kind, id, &p->prep, &e) < 0)
		goto fail;
	fhir_prepared_op(&p->prep, &p->op);
	p->op.kind = kind;
	p->op.method = method;
	p->op.if_match = if_match;
	p->op.want_json = true;
	p->if_match_given = if_match > 0;
	json_object_put(res);
	return FHIR_COMMIT;
fail:
	json_object_put(res);
	resp->txn = NULL;
	fhir_resp_error(resp, &e);
	return FHIR_DONE;
}

static int check_body_type(const struct fhir_req *req, bool patch, struct err *e)
{
	const char *ct = req->content_type;
	size_t n;

	if (!ct || !*ct)
		return err_set(e, ERR_MEDIA_TYPE, patch
			? "Content-Type is missing: send application/json-patch+json"
			: "Content-Type is missing: send application/fhir+json");
	n = strcspn(ct, "; ");
	if (patch) {
		if (n == 28 && strncasecmp(ct, "application/json-patch+json", 27) == 0)
			return 0;
		if (strncasecmp(ct, "application/json-patch+json", n) == 0 && n == 27)
			return 0;
		return err_set(e, ERR_MEDIA_TYPE,
			       "PATCH takes application/json-patch+json (JSON Patch); FHIRPath Patch and "
			       "XML Patch are not supported");
	}
	if ((n == 21 && strncasecmp(ct, "application/fhir+json", 21) == 0) ||
	    (n == 16 && strncasecmp(ct, "application/json", 16) == 0))
		return 0;
	return err_set(e, ERR_MEDIA_TYPE,
		       "unsupported Content-Type: this server takes application/fhir+json");
}

static int body_error(struct fhir_resp *resp, const struct err *e)
{
	fhir_resp_error(resp, e);
	return FHIR_DONE;
}

/* A found resource as the answer of a conditional create (200, as a read). */
static int answer_existing(const struct fhir_config *cfg, const struct fhir_req *req,
			   struct fhir_resp *resp, const char *id, struct err *e)
{
	struct store_version v;

	if (fhir_read_into(cfg, req->type, id, NULL, &v, e) < 0) {
		store_version_release(&v);
		return -1;
	}
	resp->status = 200;
	set_version_headers(resp, v.vid, v.ts_ms);
	snprintf(resp->location, sizeof(resp->location), "%s/%s/%s/_history/%" PRId64, req->base,
		 req->type, id, v.vid);
	if (req->prefer == FHIR_RETURN_MINIMAL) {
		buf_reset(&resp->body);
	} else if (req->prefer == FHIR_RETURN_OUTCOME) {
		struct fhir_issues iss;
		fhir_issues_init(&iss);
		fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL,
			       "not created: %s/%s matches the If-None-Exist criteria", req->type, id);
		buf_reset(&resp->body);
		fhir_outcome_write(&iss, &resp->body);
	} else {
		set_body_json(resp, req, v.json, v.len);
		v.json = NULL;
	}
	store_version_release(&v);
	return 0;
}

/* If-None-Exist: 0 go on and create (*claim holds the criteria), 1 a match
 * was answered, -1 error (412 for several matches). */
static int if_none_exist(const struct fhir_config *cfg, const struct fhir_req *req,
			 struct fhir_resp *resp, char **claim, struct err *e)
{
	const char *q = req->if_none_exist, *qm = strchr(q, '?');
	char ids[2][ID_MAX + 1];
	size_t n = 0;

	/* "identifier=x" or, as some clients send it, "Patient?identifier=x" */
	if (qm)
		q = qm + 1;
	/* claimed before the search, so no twin can create between the two */
	if (cond_claim(req->type, q, claim, e) < 0)
		return -1;
	if (fhir_condition_ids(cfg, req->type, q, ids, 1, &n, e) < 0) {
		if (e->code == ERR_INVALID)
			err_expr(e, "If-None-Exist");
		goto fail;
	}
	if (n > 1) {
		err_set(e, ERR_PRECONDITION, "If-None-Exist: the criteria match more than one %s",
			req->type);
		goto fail;
	}
	if (n == 1) {
		cond_release(*claim);
		*claim = NULL;
		return answer_existing(cfg, req, resp, ids[0], e) < 0 ? -1 : 1;
	}
	return 0;
fail:
	cond_release(*claim);
	*claim = NULL;
	return -1;
}

static int do_create(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	json_object *res;
	char id[ID_UUID_LEN + 1];
	char *claim = NULL;
	int status = 400;

	if (check_type(req->type, &e) < 0 || check_body_type(req, false, &e) < 0)
		return body_error(resp, &e);
	fhir_issues_init(&iss);
	res = fhir_parse_resource(cfg, req->body, req->body_len, req->type, &iss, &status);
	if (!res) {
		fhir_resp_issues(resp, status, &iss);
		return FHIR_DONE;
	}
	if (req->if_none_exist) {
		int rc = if_none_exist(cfg, req, resp, &claim, &e);
		if (rc != 0) {
			json_object_put(res);
			if (rc < 0)
				return body_error(resp, &e);
			return FHIR_DONE; /* it exists: resp holds it */
		}
	}
	/* The server assigns the id of a create; a client's id is ignored. */
	id_new(id);
	return queue_write(cfg, req, resp, res, id, STORE_CREATE, STORE_POST, 0, claim);
}

static int if_match(const struct fhir_req *req, int64_t *vid, struct err *e)
{
	*vid = 0;
	if (!req->if_match)
		return 0;
	if (fhir_parse_etag(req->if_match, vid) < 0)
		return err_set(e, ERR_INVALID, "If-Match must be a version ETag such as W/\"3\"");
	return 0;
}

/* Resolve the criteria of PUT/DELETE /Type?criteria, claimed first.
 * Returns the number of matches (0 or 1; several: 412) or -1. */
static int resolve_condition(const struct fhir_config *cfg, const struct fhir_req *req,
			     char id[ID_MAX + 1], char **claim, struct err *e)
{
	struct buf q = BUF_INIT(0);
	char ids[2][ID_MAX + 1];
	size_t n = 0;
	int rc = -1;

	*claim = NULL;
	if (fhir_condition_query(req, &q) < 0) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (q.len == 0) {
		err_set(e, ERR_INVALID, "a conditional %s needs search criteria (%s?name=value)",
			req->interaction == FHIR_DELETE ? "delete" : "update", req->type);
		goto out;
	}
	if (cond_claim(req->type, buf_cstr(&q), claim, e) < 0)
		goto out;
	if (fhir_condition_ids(cfg, req->type, buf_cstr(&q), ids, 1, &n, e) < 0)
		goto out;
	if (n > 1) {
		err_set(e, ERR_PRECONDITION, "the criteria match more than one %s; a conditional %s "
					     "takes one", req->type,
			req->interaction == FHIR_DELETE ? "delete" : "update");
		goto out;
	}
	if (n == 1)
		snprintf(id, ID_MAX + 1, "%s", ids[0]);
	rc = (int)n;
out:
	if (rc < 0) {
		cond_release(*claim);
		*claim = NULL;
	}
	buf_release(&q);
	return rc;
}

/* PUT /Type?criteria (R4 http.html#cond-update). */
static int do_cond_update(const struct fhir_config *cfg, struct fhir_req *req,
			  struct fhir_resp *resp)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	json_object *res;
	const char *body_id;
	char found[ID_MAX + 1], *claim = NULL, newid[ID_UUID_LEN + 1];
	int64_t match;
	int status = 400, n;

	if (check_type(req->type, &e) < 0 || check_body_type(req, false, &e) < 0 ||
	    if_match(req, &match, &e) < 0)
		return body_error(resp, &e);
	fhir_issues_init(&iss);
	res = fhir_parse_resource(cfg, req->body, req->body_len, req->type, &iss, &status);
	if (!res) {
		fhir_resp_issues(resp, status, &iss);
		return FHIR_DONE;
	}
	body_id = json_get_str(res, "id");
	n = resolve_condition(cfg, req, found, &claim, &e);
	if (n < 0)
		goto fail;
	if (n == 1) {
		if (body_id && strcmp(body_id, found) != 0) {
			err_set(&e, ERR_INVALID, "the resource id in the body is not the id of the %s the "
						 "criteria found", req->type);
			err_expr(&e, "id");
			goto fail;
		}
		/* on top of the version found, unless the client named one */
		if (!match) {
			struct store_version cur;
			if (store_read(cfg->store, req->type, found, &cur, &e) < 0) {
				store_version_release(&cur);
				goto fail;
			}
			match = cur.vid;
			store_version_release(&cur);
		}
		return queue_write(cfg, req, resp, res, found, STORE_UPDATE, STORE_PUT, match, claim);
	}
	/* no match: a create, with the body's id if it has one that is free */
	if (body_id) {
		struct store_version cur;
		int r = store_read(cfg->store, req->type, body_id, &cur, &e);
		store_version_release(&cur);
		if (r == 0 || e.code == ERR_GONE) {
			err_clear(&e);
			err_set(&e, ERR_CONFLICT, "no %s matches the criteria, but %s/%s exists: not "
						  "overwritten", req->type, req->type, body_id);
			goto fail;
		}
		err_clear(&e);
		return queue_write(cfg, req, resp, res, body_id, STORE_UPDATE, STORE_PUT, 0, claim);
	}
	id_new(newid);
	return queue_write(cfg, req, resp, res, newid, STORE_CREATE, STORE_POST, 0, claim);
fail:
	cond_release(claim);
	json_object_put(res);
	return body_error(resp, &e);
}

static int do_update(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	json_object *res;
	const char *body_id;
	int64_t match;
	int status = 400;

	if (!req->id)
		return do_cond_update(cfg, req, resp);
	if (check_type(req->type, &e) < 0 || check_id(req->id, &e) < 0 ||
	    check_body_type(req, false, &e) < 0 || if_match(req, &match, &e) < 0)
		return body_error(resp, &e);
	fhir_issues_init(&iss);
	res = fhir_parse_resource(cfg, req->body, req->body_len, req->type, &iss, &status);
	if (!res) {
		fhir_resp_issues(resp, status, &iss);
		return FHIR_DONE;
	}
	body_id = json_get_str(res, "id");
	if (!body_id || strcmp(body_id, req->id) != 0) {
		err_set(&e, ERR_INVALID, body_id
			? "the resource id in the body does not match the id in the URL"
			: "the resource has no id: an update needs the id of the URL in the body");
		err_expr(&e, body_id ? "id" : "");
		json_object_put(res);
		return body_error(resp, &e);
	}
	return queue_write(cfg, req, resp, res, req->id, STORE_UPDATE, STORE_PUT, match, NULL);
}

static int do_patch(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	struct store_version cur;
	json_object *patch = NULL, *doc = NULL, *res = NULL;
	int64_t match;
	const char *rt, *rid;

	memset(&cur, 0, sizeof(cur));
	if (check_type(req->type, &e) < 0 || check_id(req->id, &e) < 0 ||
	    check_body_type(req, true, &e) < 0 || if_match(req, &match, &e) < 0)
		return body_error(resp, &e);
	patch = json_parse_buf(req->body, req->body_len, cfg->max_depth, &e);
	if (!patch)
		return body_error(resp, &e);
	if (store_read(cfg->store, req->type, req->id, &cur, &e) < 0) {
		if (req->may_write && (e.code == ERR_NOT_FOUND || e.code == ERR_GONE)) {
			/* the requester's answer for what is not there, if it has one */
			struct err why = ERR_INIT;
			if (may_write_current(cfg, req, req->id, &why) < 0)
				e = why;
		}
		goto fail;
	}
	if (match > 0 && match != cur.vid) {
		err_set(&e, ERR_PRECONDITION,
			"version conflict: If-Match names version %" PRId64 ", current is %" PRId64,
			match, cur.vid);
		goto fail;
	}
	doc = json_parse_buf(cur.json, cur.len, 0, &e);
	if (!doc)
		goto fail;
	res = json_patch_apply(doc, patch, &e);
	if (!res)
		goto fail;
	rt = json_get_str(res, "resourceType");
	rid = json_get_str(res, "id");
	if (!rt || strcmp(rt, req->type) != 0 || !rid || strcmp(rid, req->id) != 0) {
		err_set(&e, ERR_UNPROCESSABLE, "a patch must not change resourceType or id");
		goto fail;
	}
	fhir_issues_init(&iss);
	if (fhir_validate(res, req->type, &iss) > 0) {
		/* The patch was applied but the result is not a valid resource. */
		fhir_resp_issues(resp, 422, &iss);
		json_object_put(res);
		res = NULL;
		goto done;
	}
	json_object_put(patch);
	json_object_put(doc);
	store_version_release(&cur);
	/* Write on top of the version we patched, so a concurrent update is not lost. */
	{
		int rc = queue_write(cfg, req, resp, res, req->id, STORE_UPDATE, STORE_PATCH, cur.vid, NULL);
		if (resp->plan)
			resp->plan->if_match_given = match > 0;
		return rc;
	}
fail:
	fhir_resp_error(resp, &e);
done:
	json_object_put(patch);
	json_object_put(doc);
	json_object_put(res);
	store_version_release(&cur);
	return FHIR_DONE;
}

static int do_delete(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct err e = ERR_INIT;
	struct fhir_plan *p;
	int64_t match;

	char found[ID_MAX + 1], *claim = NULL;
	const char *id = req->id;

	if (check_type(req->type, &e) < 0 || (id && check_id(id, &e) < 0) ||
	    if_match(req, &match, &e) < 0)
		return body_error(resp, &e);
	if (!id) {
		/* DELETE /Type?criteria: the one match, or nothing to delete */
		int n = resolve_condition(cfg, req, found, &claim, &e);
		if (n < 0)
			return body_error(resp, &e);
		if (n == 0) {
			struct fhir_issues iss;
			cond_release(claim);
			fhir_issues_init(&iss);
			fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL,
				       "nothing to delete: no %s matches the criteria", req->type);
			if (req->prefer == FHIR_RETURN_MINIMAL) {
				resp->status = 204;
				buf_reset(&resp->body);
			} else {
				fhir_resp_issues(resp, 200, &iss);
			}
			return FHIR_DONE;
		}
		id = found;
	}
	/* what would be deleted must be the requester's to write */
	if (req->may_write && may_write_current(cfg, req, id, &e) < 0) {
		cond_release(claim);
		return body_error(resp, &e);
	}
	p = plan_new(resp);
	if (!p) {
		cond_release(claim);
		err_set(&e, ERR_NOMEM, "out of memory");
		resp->txn = NULL;
		return body_error(resp, &e);
	}
	p->cond_key = claim;
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(p->prep.type, sizeof(p->prep.type), "%s", req->type);
	p->op.kind = STORE_REMOVE;
	p->op.method = STORE_DELETE;
	p->op.type = p->prep.type;
	p->op.id = p->id;
	p->op.if_match = match;
	p->if_match_given = match > 0;
	return FHIR_COMMIT;
}

/* ---- history ---- */

struct hist_ctx {
	const struct fhir_req *req;
	struct buf *out;
	size_t n;
	size_t withheld;      /* versions the requester may not see (req->visible) */
};

static const char *method_name(int m)
{
	switch (m) {
	case STORE_POST: return "POST";
	case STORE_DELETE: return "DELETE";
	case STORE_PATCH: return "PATCH";
	default: return "PUT";
	}
}

static int hist_entry(void *arg, const struct store_version *v)
{
	struct hist_ctx *h = arg;
	struct buf *o = h->out;
	char ts[TIME_INSTANT_MAX];
	int status = v->method == STORE_DELETE ? 204 : v->method == STORE_POST || v->vid == 1 ? 201 : 200;

	if (v->json && h->req->visible &&
	    !h->req->visible(h->req->visible_ctx, v->type, v->id, v->json, v->len)) {
		h->withheld++;
		return 0;
	}
	time_format_instant(v->ts_ms, ts);
	if (h->n++)
		buf_addch(o, ',');
	buf_addf(o, "{\"fullUrl\":\"%s/%s/%s\"", h->req->base, v->type, v->id);
	if (v->json) {
		buf_addstr(o, ",\"resource\":");
		buf_add(o, v->json, v->len);
	}
	buf_addf(o, ",\"request\":{\"method\":\"%s\",\"url\":\"%s", method_name(v->method), v->type);
	if (v->method != STORE_POST)
		buf_addf(o, "/%s", v->id);
	buf_addf(o, "\"},\"response\":{\"status\":\"%s\",\"etag\":\"W/\\\"%" PRId64 "\\\"\","
		    "\"lastModified\":\"%s\"}}", fhir_status_line(status), v->vid, ts);
	return 0;
}

/* [base]/Type/id/_history?<params with _cursor replaced> */
static void history_link(struct buf *o, const struct fhir_req *req, int64_t cursor)
{
	bool first = true;

	buf_addstr(o, req->base);
	if (req->type)
		buf_addf(o, "/%s", req->type);
	if (req->id)
		buf_addf(o, "/%s", req->id);
	buf_addstr(o, "/_history");
	for (size_t i = 0; i < req->n_params; i++) {
		if (strcmp(req->params[i].name, "_cursor") == 0)
			continue;
		buf_addch(o, first ? '?' : '&');
		first = false;
		url_encode(o, req->params[i].name);
		buf_addch(o, '=');
		url_encode(o, req->params[i].value);
	}
	if (cursor > 0)
		buf_addf(o, "%c_cursor=%" PRId64, first ? '?' : '&', cursor);
}

static int do_history(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct store_history_q q = { req->type, req->id, INT64_MIN, INT64_MIN, 0, HISTORY_DEFAULT_COUNT };
	struct err e = ERR_INIT;
	struct buf entries = BUF_INIT(0);
	struct hist_ctx h = { req, &entries, 0 };
	const char *count = param(req, "_count"), *since = param(req, "_since");
	const char *cursor = param(req, "_cursor");
	char bundle_id[ID_UUID_LEN + 1], now[TIME_INSTANT_MAX];
	int64_t next = 0, total = -1;
	struct buf *o = &resp->body;

	if (req->type && check_type(req->type, &e) < 0)
		goto fail;
	if (req->id && check_id(req->id, &e) < 0)
		goto fail;
	for (size_t i = 0; i < req->n_params; i++) {
		const char *n = req->params[i].name;
		if (strcmp(n, "_count") && strcmp(n, "_since") && strcmp(n, "_cursor") &&
		    strcmp(n, "_format") && strcmp(n, "_pretty")) {
			err_set(&e, ERR_INVALID, "history does not support the parameter '%.40s'", n);
			goto fail;
		}
	}
	if (count) {
		char *end;
		long c = strtol(count, &end, 10);
		if (*count < '0' || *count > '9' || *end || c < 0) {
			err_set(&e, ERR_INVALID, "_count must be a whole number");
			goto fail;
		}
		q.count = c > HISTORY_MAX_COUNT ? HISTORY_MAX_COUNT : (size_t)c;
	}
	if (since) {
		struct time_val tv;
		if (time_parse(since, strlen(since), TIME_DATETIME, &tv) < 0) {
			err_set(&e, ERR_INVALID, "_since must be an instant such as 2024-01-31T12:00:00Z");
			goto fail;
		}
		q.since_ms = tv.lo_ms;
	}
	if (cursor) {
		char *end;
		long long c = strtoll(cursor, &end, 10);
		if (*cursor < '1' || *cursor > '9' || *end) {
			err_set(&e, ERR_INVALID, "_cursor is not a paging cursor of this server");
			goto fail;
		}
		q.before_vkey = c;
	}
	if (req->id) {
		if (store_history_count(cfg->store, req->type, req->id, q.since_ms == INT64_MIN ? INT64_MIN : q.since_ms,
					&total, &e) < 0)
			goto fail;
		if (total == 0 && q.since_ms == INT64_MIN) {
			err_set(&e, ERR_NOT_FOUND, "%s/%s is not known", req->type, req->id);
			goto fail;
		}
	}
	if (q.count > 0 && store_history(cfg->store, &q, hist_entry, &h, &next, &e) < 0)
		goto fail;
	if (req->id && h.withheld) {
		/* a record the requester may not see: as if it did not exist */
		err_set(&e, ERR_NOT_FOUND, "%s/%s is not known", req->type, req->id);
		goto fail;
	}
	if (req->no_total)
		total = -1;
	if (entries.failed) {
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	id_new(bundle_id);
	time_format_instant(time_now_ms(), now);
	buf_reset(o);
	buf_addf(o, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
		    "\"type\":\"history\"", bundle_id, now);
	if (total >= 0)
		buf_addf(o, ",\"total\":%" PRId64, total);
	buf_addstr(o, ",\"link\":[{\"relation\":\"self\",\"url\":\"");
	history_link(o, req, q.before_vkey);
	buf_addstr(o, "\"}");
	if (next > 0) {
		buf_addstr(o, ",{\"relation\":\"next\",\"url\":\"");
		history_link(o, req, next);
		buf_addstr(o, "\"}");
	}
	buf_addstr(o, "]");
	if (h.n) {
		buf_addstr(o, ",\"entry\":[");
		buf_add(o, entries.data, entries.len);
		buf_addch(o, ']');
	}
	buf_addch(o, '}');
	buf_release(&entries);
	resp->status = 200;
	prettify(req, resp);
	return FHIR_DONE;
fail:
	buf_release(&entries);
	fhir_resp_error(resp, &e);
	return FHIR_DONE;
}

/* ---- transaction and batch ---- */

static int do_batch(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	struct fhir_plan *p;

	if (check_body_type(req, false, &e) < 0)
		return body_error(resp, &e);
	p = plan_new(resp);
	if (!p) {
		err_set(&e, ERR_NOMEM, "out of memory");
		resp->txn = NULL;
		return body_error(resp, &e);
	}
	fhir_issues_init(&iss);
	if (fhir_bundle_plan_req(cfg, req, req->body, req->body_len, &p->bundle, &resp->txn, &iss) < 0) {
		resp->txn = NULL;
		fhir_resp_issues(resp, iss.status ? iss.status : 400, &iss);
		return FHIR_DONE;
	}
	return FHIR_COMMIT;
}

int fhir_begin(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	resp->txn = NULL;
	switch (req->interaction) {
	case FHIR_CAPABILITIES:
		resp->status = 200;
		fhir_capabilities(cfg, req->base, &resp->body);
		prettify(req, resp);
		return FHIR_DONE;
	case FHIR_READ:
	case FHIR_VREAD:
		return do_read(cfg, req, resp);
	case FHIR_CREATE:
		return do_create(cfg, req, resp);
	case FHIR_UPDATE:
		return do_update(cfg, req, resp);
	case FHIR_PATCH:
		return do_patch(cfg, req, resp);
	case FHIR_DELETE:
		return do_delete(cfg, req, resp);
	case FHIR_HISTORY_INSTANCE:
	case FHIR_HISTORY_TYPE:
	case FHIR_HISTORY_SYSTEM:
		return do_history(cfg, req, resp);
	case FHIR_BATCH:
		return do_batch(cfg, req, resp);
	case FHIR_SEARCH:
	case FHIR_SEARCH_COMPARTMENT:
	case FHIR_EVERYTHING:
		fhir_search(cfg, req, resp);
		prettify(req, resp);
		return FHIR_DONE;
	default: {
		struct err e = ERR_INIT;
		err_set(&e, ERR_NOT_SUPPORTED, "this interaction is not supported");
		return body_error(resp, &e);
	}
	}
}

static void finish_write(struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_plan *p = resp->plan;
	struct store_op *op = &p->op;
	struct fhir_issues iss;
	struct err e;

	if (p->txn.rc < 0 || op->status == 0) {
		e = op->err.code ? op->err : p->txn.err;
		/* PATCH without If-Match: someone wrote in between; ask for a retry. */
		if (req->interaction == FHIR_PATCH && e.code == ERR_PRECONDITION && !p->if_match_given)
			err_set(&e, ERR_CONFLICT, "the resource changed while it was being patched; try again");
		fhir_resp_error(resp, &e);
		return;
	}
	resp->status = op->status;
	if (req->interaction == FHIR_DELETE) {
		fhir_issues_init(&iss);
		if (op->noop)
			fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL,
				       "nothing to delete: %s/%s does not exist or is already deleted",
				       op->type, op->id);
		else
			fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL,
				       "deleted %s/%s (version %" PRId64 ")", op->type, op->id, op->vid);
		if (!op->noop)
			set_version_headers(resp, op->vid, op->ts_ms);
		if (req->prefer == FHIR_RETURN_MINIMAL) {
			resp->status = 204;
			buf_reset(&resp->body);
		} else {
			fhir_resp_issues(resp, 200, &iss);
		}
		return;
	}
	set_version_headers(resp, op->vid, op->ts_ms);
	snprintf(resp->location, sizeof(resp->location), "%s/%s/%s/_history/%" PRId64,
		 req->base, op->type, op->id, op->vid);
	switch (req->prefer) {
	case FHIR_RETURN_MINIMAL:
		buf_reset(&resp->body);
		break;
	case FHIR_RETURN_OUTCOME:
		fhir_issues_init(&iss);
		fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL, "%s %s/%s (version %" PRId64 ")",
			       op->noop ? "unchanged:" : op->status == 201 ? "created" : "updated",
			       op->type, op->id, op->vid);
		buf_reset(&resp->body);
		fhir_outcome_write(&iss, &resp->body);
		break;
	default:
		set_body_json(resp, req, op->json, op->json_len);
		op->json = NULL;
		break;
	}
}

void fhir_finish(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct fhir_plan *p = resp->plan;

	if (!p)
		return;
	/* committed (or failed): a twin conditional write now sees the result */
	cond_release(p->cond_key);
	p->cond_key = NULL;
	fhir_after_commit(cfg, resp->txn);
	if (p->bundle) {
		buf_reset(&resp->body);
		resp->status = fhir_bundle_response(cfg, p->bundle, req->base, req->prefer, &resp->body);
		prettify(req, resp);
		return;
	}
	finish_write(req, resp);
}
