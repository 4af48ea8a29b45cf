/* server.c - HTTP on libmicrohttpd (see server.h).
 *
 * One access handler runs each request through the same steps:
 *   body (capped) -> route (table below) -> content negotiation ->
 *   authentication -> privacy_decide -> fhir_begin -> [commit] ->
 *   fhir_finish -> response; every answer audited (audit_then_send).
 * A write suspends its connection after handing the transaction to the
 * store; the writer thread resumes it once the commit is durable and the
 * handler is called again to answer.  MHD runs a small pool of epoll threads
 * (one per CPU): reads never block on a lock, writes never hold a thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/url.h"
#include "coding/coding.h"
#include "fhir/export.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "mpi/mpi.h"
#include "privacy/audit.h"
#include "privacy/policy.h"
#include "privacy/privacy.h"
#include "server/ratelimit_int.h"
#include "server/server.h"
#include "base/banned.h"

#ifndef CHARTKEEP_VERSION
#define CHARTKEEP_VERSION "0.1.0"
#endif

#define FHIR_JSON "application/fhir+json; charset=utf-8"
#define MAX_SEGMENTS 6
#define SHUTDOWN_GRACE_S 10 /* how often a slow shutdown says so */

/* ---- routes ---- */

struct route {
	const char *method;
	const char *pattern;   /* segments: literal, {type}, {id}, {vid} */
	int interaction;       /* enum fhir_interaction */
	int action;            /* enum privacy_action */
	bool public;           /* no token needed */
	int export_op;         /* enum fhir_export_op: answered by the export jobs */
	int export_level;      /* kick-off: enum store_export_level */
	int auth_op;           /* enum auth_op: the OAuth endpoints (privacy.h) */
	int coding_op;         /* enum coding_op: answered by src/coding */
	const char *op_type;   /* the type the policy decides for a coding_op */
	int mpi_op;            /* enum mpi_op: answered by the MPI (mpi/mpi.h) */
};

enum auth_op { AUTH_TOKEN = 1, AUTH_REVOKE };

static const struct route routes[] = {
	{ "GET", "/metadata", FHIR_CAPABILITIES, PA_CAPABILITIES, true },
	{ "GET", "/_history", FHIR_HISTORY_SYSTEM, PA_HISTORY, false },
	{ "POST", "/", FHIR_BATCH, PA_BATCH, false },
	{ "GET", "/{type}/_history", FHIR_HISTORY_TYPE, PA_HISTORY, false },
	{ "POST", "/{type}", FHIR_CREATE, PA_CREATE, false },
	{ "GET", "/{type}/{id}", FHIR_READ, PA_READ, false },
	{ "PUT", "/{type}/{id}", FHIR_UPDATE, PA_UPDATE, false },
	{ "PATCH", "/{type}/{id}", FHIR_PATCH, PA_PATCH, false },
	{ "DELETE", "/{type}/{id}", FHIR_DELETE, PA_DELETE, false },
	{ "PUT", "/{type}", FHIR_UPDATE, PA_UPDATE, false },      /* conditional: ?criteria */
	{ "DELETE", "/{type}", FHIR_DELETE, PA_DELETE, false },   /* conditional: ?criteria */
	{ "GET", "/{type}/{id}/_history", FHIR_HISTORY_INSTANCE, PA_HISTORY, false },
	{ "GET", "/{type}/{id}/_history/{vid}", FHIR_VREAD, PA_VREAD, false },
	{ "GET", "/{type}", FHIR_SEARCH, PA_SEARCH, false },
	{ "POST", "/{type}/_search", FHIR_SEARCH, PA_SEARCH, false },
	{ "GET", "/{type}/{id}/$everything", FHIR_EVERYTHING, PA_OPERATION, false },
	/* the privacy officer's report of break-the-glass grants (not FHIR) */
	{ "GET", "/privacy/break-glass", 0, PA_SEARCH, false },
	/* who looked at this record: a search of the audit trail */
	{ "GET", "/Patient/{id}/$access-log", FHIR_EVERYTHING, PA_SEARCH, false },
	{ "GET", "/{type}/{id}/{ctype}", FHIR_SEARCH_COMPARTMENT, PA_SEARCH, false },
	/* Bulk Data $export (fhir/export.h); a file's name rides in {vid} */
	{ "GET", "/$export", 0, PA_OPERATION, false, FHIR_EXPORT_KICKOFF, SXL_SYSTEM },
	{ "GET", "/Patient/$export", 0, PA_OPERATION, false, FHIR_EXPORT_KICKOFF, SXL_PATIENT },
	{ "GET", "/Group/{id}/$export", 0, PA_OPERATION, false, FHIR_EXPORT_KICKOFF, SXL_GROUP },
	{ "GET", "/$export-status/{id}", 0, PA_OPERATION, false, FHIR_EXPORT_STATUS, 0 },
	{ "DELETE", "/$export-status/{id}", 0, PA_OPERATION, false, FHIR_EXPORT_CANCEL, 0 },
	{ "GET", "/$export-file/{id}/{vid}", 0, PA_OPERATION, false, FHIR_EXPORT_FILE, 0 },
	/* OAuth2: public (they authenticate in their own way), rate-limited */
	{ "POST", "/auth/token", 0, 0, true, 0, 0, AUTH_TOKEN },
	{ "POST", "/auth/revoke", 0, 0, true, 0, 0, AUTH_REVOKE },
	/* code sets (coding.h): terminology is a read of conformance resources
	 * (every staff role); $code-edits a read of the Claim or Encounter */
	{ "GET", "/CodeSystem/$lookup", 0, PA_READ, false, 0, 0, 0, COP_LOOKUP, "CodeSystem" },
	{ "GET", "/CodeSystem/$validate-code", 0, PA_READ, false, 0, 0, 0, COP_VALIDATE, "CodeSystem" },
	{ "POST", "/CodeSystem/$validate-code", 0, PA_READ, false, 0, 0, 0, COP_VALIDATE, "CodeSystem" },
	{ "GET", "/ValueSet/$expand", 0, PA_READ, false, 0, 0, 0, COP_EXPAND, "ValueSet" },
	{ "POST", "/Claim/$code-edits", 0, PA_READ, false, 0, 0, 0, COP_EDITS_CLAIM, "Claim" },
	{ "GET", "/Encounter/{id}/$code-edits", 0, PA_READ, false, 0, 0, 0, COP_EDITS_ENCOUNTER, "Encounter" },
	/* the master patient index (mpi/mpi.h): decided on Patient */
	{ "POST", "/Patient/$merge", 0, PA_UPDATE, false, 0, 0, 0, 0, NULL, MPI_OP_MERGE },
	{ "POST", "/Patient/$unmerge", 0, PA_UPDATE, false, 0, 0, 0, 0, NULL, MPI_OP_UNMERGE },
	{ "POST", "/Patient/$match", 0, PA_SEARCH, false, 0, 0, 0, 0, NULL, MPI_OP_MATCH },
	{ "GET", "/mpi/report", 0, PA_SEARCH, false, 0, 0, 0, 0, NULL, MPI_OP_REPORT },
};

struct path {
	char *seg[MAX_SEGMENTS];
	size_t n;
};

/* Split "/a/b/c" in place (a trailing slash is ignored). */
static int path_split(char *p, struct path *out)
{
	out->n = 0;
	while (*p == '/')
		p++;
	while (*p) {
		char *slash = strchr(p, '/');
		if (out->n == MAX_SEGMENTS)
			return -1;
		out->seg[out->n++] = p;
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
		if (*p == '/')
			return -1; /* empty segment */
	}
	return 0;
}

static bool type_like(const char *s)
{
	return s[0] >= 'A' && s[0] <= 'Z';
}

/* Route patterns split once, at start-up. */
struct route_shape {
	char buf[64];
	struct path seg;
};

static struct route_shape shapes[sizeof(routes) / sizeof(routes[0])];

static void routes_init(void)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		snprintf(shapes[i].buf, sizeof(shapes[i].buf), "%s", routes[i].pattern);
		path_split(shapes[i].buf, &shapes[i].seg);
	}
}

/* Does path match route i?  Fills type/id/vid. */
static bool route_match(size_t i, const struct path *p, const char **type, const char **id,
			const char **vid)
{
	const struct path *pp = &shapes[i].seg;

	if (pp->n != p->n)
		return false;
	*type = *id = *vid = NULL;
	for (size_t k = 0; k < pp->n; k++) {
		const char *want = pp->seg[k];
		if (want[0] == '{' && want[1] == 't') {          /* {type} */
			if (!type_like(p->seg[k]))
				return false;
			*type = p->seg[k];
		} else if (want[0] == '{' && want[1] == 'i') {   /* {id} */
			if (p->seg[k][0] == '_' || p->seg[k][0] == '$')
				return false;
			*id = p->seg[k];
		} else if (want[0] == '{' && want[1] == 'c') {   /* {ctype} */
			if (!type_like(p->seg[k]))
				return false;
			*vid = p->seg[k]; /* the compartment search's type rides in vid */
		} else if (want[0] == '{') {                     /* {vid} */
			*vid = p->seg[k];
		} else if (strcmp(want, p->seg[k]) != 0) {
			return false;
		}
	}
	return true;
}

/* ---- server state ---- */

struct server {
	struct MHD_Daemon *daemon;
	struct store *store;
	struct server_config cfg;
	struct fhir_config fcfg;
	struct fhir_export *export;  /* $export jobs and their worker */
	struct privacy_oauth_config ocfg;
	struct ratelimit *auth_limit;  /* per address, on /auth/; NULL: none */
	char listen_base[128];
	const char *scheme;        /* "http" or "https" */
	pthread_mutex_t watch_lock;
	struct conn_watch *watch;  /* every open connection (slow-client sweep) */
	atomic_int inflight;
	atomic_bool stopping;      /* SIGINT/SIGTERM seen: new requests get 503 */
	atomic_ullong next_rid;
};

enum req_state { RS_RECEIVING, RS_PENDING, RS_RESUMED, RS_AUDITING, RS_AUDITED };

struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	uint64_t rid;
	int64_t start_ms;
	struct timespec start;
	int state;
	struct buf body;
	size_t received;      /* body bytes so far (the slow-body check) */
	bool too_large;
	bool late;            /* arrived after shutdown began */
	bool head;            /* HEAD, served as GET */
	struct arena arena;
	const struct route *route;
	struct fhir_req freq;
	struct fhir_resp fresp;
	struct store_principal who;
	bool authenticated;
	struct privacy_request prq;
	struct audit_info ai;  /* this request's audit entry, filled as it goes */
	bool cleared;          /* the role sees every sensitivity label */
	struct privacy_decision dec;  /* under which conditions the policy allowed it */
	bool outside;          /* visible() said no for the patient context */
	const char *last_type; /* the type type_allowed() decided last, and its answer */
	bool last_ok;
	struct {               /* Patients' own labels seen by this request */
		char id[65];
		struct privacy_labels l;
		bool btg;
	} pl[16];
	size_t npl;
	struct store_txn atxn; /* an audit-only transaction (reads, refusals) */
	struct buf aentry;     /* its entry, made before it is submitted */
	char method[16];
	char path_buf[256];
	char base[300];
	char source[64];
	struct fhir_param *params;
	size_t n_params, cap_params;
	bool params_bad;
};

static void request_free(struct request *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	buf_release(&r->aentry);
	fhir_resp_release(&r->fresp);
	arena_release(&r->arena);
	free(r->params);
	free(r);
}

/* ---- responses ---- */

static double elapsed_ms(const struct request *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
}

static enum MHD_Result respond(struct request *r, int status, struct buf *body,
			    const struct fhir_resp *fr)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	size_t len = 0;
	char *data = buf_detach(body, &len);
	char rid[32];

	if (!data) {
		data = NULL;
		len = 0;
	}
	resp = MHD_create_response_from_buffer(len, data, data ? MHD_RESPMEM_MUST_FREE
							   : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	if (len)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
	snprintf(rid, sizeof(rid), "%" PRIx64, r->rid);
	MHD_add_response_header(resp, "X-Request-Id", rid);
	if (fr) {
		if (fr->etag[0])
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, fr->etag);
		if (fr->last_modified[0])
			MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, fr->last_modified);
		if (fr->location[0])
			MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, fr->location);
		if (fr->content_location[0])
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_LOCATION,
						fr->content_location);
	}
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"chartkeep\"");
	if (status == 405 && r->route)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route->method);
	if (atomic_load(&r->srv->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	log_info("event=request rid=%s method=%s route=%s type=%s status=%d ms=%.2f user=%s", rid,
		 r->method, r->route ? r->route->pattern : "-",
		 r->freq.type && fhir_resource_type(r->freq.type) ? r->freq.type : "-", status,
		 elapsed_ms(r), r->authenticated ? r->who.username : "-");
	return ok;
}

static enum MHD_Result send_error(struct request *r, const struct err *e)
{
	struct fhir_resp fr;
	enum MHD_Result ok;

	fhir_resp_init(&fr);
	fhir_resp_error(&fr, e);
	ok = respond(r, fr.status, &fr.body, &fr);
	fhir_resp_release(&fr);
	return ok;
}

static enum MHD_Result send_fhir(struct request *r)
{
	return respond(r, r->fresp.status ? r->fresp.status : 500, &r->fresp.body, &r->fresp);
}

/* ---- request parsing ---- */

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct request *r = cls;

	(void)kind;
	if (r->n_params == r->cap_params) {
		size_t ncap = r->cap_params ? r->cap_params * 2 : 8;
		struct fhir_param *p;
		if (ncap > 256) {
			r->params_bad = true;
			return MHD_NO;
		}
		p = realloc(r->params, ncap * sizeof(*p));
		if (!p) {
			r->params_bad = true;
			return MHD_NO;
		}
		r->params = p;
		r->cap_params = ncap;
	}
	r->params[r->n_params].name = key;
	r->params[r->n_params].value = value ? value : "";
	r->n_params++;
	return MHD_YES;
}

static const char *param(const struct request *r, const char *name)
{
	for (size_t i = 0; i < r->n_params; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	return NULL;
}

static bool json_media(const char *m, size_t n)
{
	static const char *const ok[] = { "application/fhir+json", "application/json", "json",
					  "*/*", "application/*", "text/json", NULL };
	for (const char *const *k = ok; *k; k++)
		if (strlen(*k) == n && strncasecmp(m, *k, n) == 0)
			return true;
	return false;
}

/* _format wins over Accept; either must allow JSON. */
static int negotiate(struct request *r, struct err *e)
{
	const char *fmt = param(r, "_format");
	const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_ACCEPT);

	if (fmt) {
		size_t n = strcspn(fmt, "; ");
		if (!json_media(fmt, n))
			return err_set(e, ERR_NOT_ACCEPTABLE,
				       "_format: this server speaks JSON only (application/fhir+json)");
		return 0;
	}
	if (!accept || !*accept)
		return 0;
	for (const char *p = accept; *p;) {
		size_t n;
		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, ";, ");
		if (n && json_media(p, n))
			return 0;
		p += strcspn(p, ",");
	}
	return err_set(e, ERR_NOT_ACCEPTABLE,
		       "Accept: this server speaks JSON only (application/fhir+json)");
}

static int prefer_of(struct request *r)
{
	const char *p = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Prefer");

	if (!p)
		return FHIR_RETURN_DEFAULT;
	if (strstr(p, "return=minimal"))
		return FHIR_RETURN_MINIMAL;
	if (strstr(p, "return=OperationOutcome"))
		return FHIR_RETURN_OUTCOME;
	if (strstr(p, "return=representation"))
		return FHIR_RETURN_REPRESENTATION;
	return FHIR_RETURN_DEFAULT;
}

static bool host_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

static void set_base(struct request *r)
{
	const char *host;

	if (r->srv->cfg.base_url) {
		snprintf(r->base, sizeof(r->base), "%s", r->srv->cfg.base_url);
		return;
	}
	host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (host && host_ok(host))
		snprintf(r->base, sizeof(r->base), "%s://%s", r->srv->scheme, host);
	else
		snprintf(r->base, sizeof(r->base), "%s", r->srv->listen_base);
}

static void set_source(struct request *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(r->source, sizeof(r->source), "-");
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, r->source,
			  sizeof(r->source));
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr,
			  r->source, sizeof(r->source));
}

/* ---- Bulk Data $export ---- */

static int audit_sync(struct request *r, int status);

/* An export route: the job machinery answers (fhir/export.h); a file is
 * streamed from disk by libmicrohttpd (sendfile where it can), never read
 * into memory here. */
static enum MHD_Result send_export(struct request *r, const char *url, const char *id,
				   const char *file)
{
	const char *pf = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Prefer");
	struct fhir_export_req xq;
	struct fhir_export_resp xr;
	struct MHD_Response *resp;
	enum MHD_Result ok = MHD_NO;
	char rid[32], retry[16];
	size_t len = 0;
	char *data = NULL;

	if (r->head && r->route->export_op == FHIR_EXPORT_KICKOFF) {
		/* HEAD must not start anything */
		struct err e = ERR_INIT;
		err_set(&e, ERR_METHOD, "HEAD cannot start an export; use GET");
		return send_error(r, &e);
	}
	memset(&xq, 0, sizeof(xq));
	fhir_export_resp_init(&xr);
	xq.op = r->route->export_op;
	xq.level = r->route->export_level;
	xq.id = id;
	xq.file = file;
	xq.respond_async = pf && strstr(pf, "respond-async");
	xq.strict = pf && strstr(pf, "handling=strict");
	xq.base = r->base;
	xq.path = url;
	xq.params = r->params;
	xq.n_params = r->n_params;
	xq.uid = r->who.uid;
	xq.who = &r->who;
	fhir_export_handle(r->srv->export, &xq, &xr);
	/* audited, durably, before anything is sent */
	if (audit_sync(r, xr.status) != 0) {
		struct err e = ERR_INIT;
		log_error("event=audit_failed rid=%" PRIx64, r->rid);
		fhir_export_resp_release(&xr);
		err_set(&e, ERR_INTERNAL, "the audit trail could not be written; nothing was sent");
		return send_error(r, &e);
	}
	if (xr.fd >= 0) {
		resp = MHD_create_response_from_fd64(xr.size, xr.fd);
		if (resp)
			xr.fd = -1; /* libmicrohttpd closes it when the response is done */
	} else {
		data = buf_detach(&xr.body, &len);
		resp = MHD_create_response_from_buffer(data ? len : 0, data,
						       data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (!resp)
			free(data);
	}
	if (!resp)
		goto out;
	if (xr.status == 200 && xq.op == FHIR_EXPORT_FILE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_EXPORT_NDJSON);
	else if (len)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
	snprintf(rid, sizeof(rid), "%" PRIx64, r->rid);
	MHD_add_response_header(resp, "X-Request-Id", rid);
	if (xr.content_location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_LOCATION, xr.content_location);
	if (xr.progress[0])
		MHD_add_response_header(resp, "X-Progress", xr.progress);
	if (xr.retry_after > 0) {
		snprintf(retry, sizeof(retry), "%d", xr.retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (atomic_load(&r->srv->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(r->conn, (unsigned)xr.status, resp);
	MHD_destroy_response(resp);
out:
	log_info("event=request rid=%" PRIx64 " method=%s route=%s type=%s status=%d ms=%.2f user=%s",
		 r->rid, r->method, r->route->pattern, r->prq.type ? r->prq.type : "-", xr.status,
		 elapsed_ms(r), r->who.username);
	fhir_export_resp_release(&xr);
	return ok;
}

/* ---- OAuth2: /auth/token, /auth/revoke ---- */

/* An OAuth endpoint: the per-address rate limit, then privacy_oauth_*.  The
 * answer is JSON that nothing may cache (RFC 6749 5.1).  The request body
 * (a password, a secret, a token) is wiped once it has been used. */
static enum MHD_Result send_auth(struct request *r)
{
	struct privacy_oauth_req rq;
	struct privacy_oauth_resp out;
	struct MHD_Response *resp;
	enum MHD_Result ok = MHD_NO;
	char rid[32], retry[16];
	size_t len = 0;
	char *data;
	int wait = 0;

	set_source(r);
	privacy_oauth_resp_init(&out);
	if (r->srv->auth_limit)
		wait = ratelimit_take(r->srv->auth_limit, r->source, time_now_ms());
	if (wait > 0) {
		privacy_oauth_throttled(&out, wait);
		log_debug("event=auth_throttled source=%s retry_after=%d", r->source, wait);
	} else {
		memset(&rq, 0, sizeof(rq));
		rq.content_type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_CONTENT_TYPE);
		rq.authorization = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION);
		rq.body = r->body.data;
		rq.body_len = r->body.len;
		rq.source = r->source;
		rq.arena = &r->arena;
		if (r->route->auth_op == AUTH_TOKEN)
			privacy_oauth_token(r->srv->store, &r->srv->ocfg, &rq, &out);
		else
			privacy_oauth_revoke(r->srv->store, &r->srv->ocfg, &rq, &out);
	}
	if (r->body.data)
		sodium_memzero(r->body.data, r->body.len);
	data = buf_detach(&out.body, &len);
	resp = MHD_create_response_from_buffer(data ? len : 0, data,
					       data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(data);
		goto out;
	}
	if (len)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
	snprintf(rid, sizeof(rid), "%" PRIx64, r->rid);
	MHD_add_response_header(resp, "X-Request-Id", rid);
	if (out.challenge[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, out.challenge);
	if (wait > 0) {
		snprintf(retry, sizeof(retry), "%d", wait);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (atomic_load(&r->srv->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(r->conn, (unsigned)out.status, resp);
	MHD_destroy_response(resp);
out:
	log_info("event=request rid=%" PRIx64 " method=%s route=%s type=- status=%d ms=%.2f user=%s",
		 r->rid, r->method, r->route->pattern, out.status, elapsed_ms(r),
		 out.user[0] ? out.user : "-");
	privacy_oauth_resp_release(&out);
	return ok;
}

/* ---- sensitivity labels and break-the-glass ----
 *
 * A resource labelled above the role's clearance (meta.security R or V, or a
 * sensitive category such as 42 CFR Part 2), or belonging to a Patient so
 * labelled, is left out of searches and not read, unless the user holds an
 * active break-the-glass grant for that patient.  A request with
 * X-Break-Glass: <reason> from a role that may break the glass creates the
 * grant when it meets such a resource (recorded, audited with the reason,
 * listed by GET /privacy/break-glass). */

/* The patient a resource belongs to: itself, or the first Patient it refers to. */
static const char *patient_of(struct request *r, const char *type, const char *id, const char *json,
			      size_t len)
{
	size_t at = 0, n;

	if (strcmp(type, "Patient") == 0)
		return id;
	n = fhir_next_patient_ref(json, len, &at);
	return n ? arena_strndup(&r->arena, json + at - n, n) : NULL;
}

/* The Patient's own labels (cached for the request); NULL if unknown. */
static const struct privacy_labels *patient_labels(struct request *r, const char *pid, const char *json,
						   size_t len, bool is_patient, bool **btg)
{
	struct store_version v;
	struct err e = ERR_INIT;
	size_t i;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < r->npl; i++)
		if (strcmp(r->pl[i].id, pid) == 0) {
			*btg = &r->pl[i].btg;
			return &r->pl[i].l;
		}
	if (r->npl == sizeof(r->pl) / sizeof(r->pl[0]))
		r->npl = 0; /* forget, start again */
	i = r->npl++;
	snprintf(r->pl[i].id, sizeof(r->pl[i].id), "%s", pid);
	r->pl[i].btg = false;
	if (is_patient) {
		privacy_labels_of_json(json, len, &r->pl[i].l);
	} else if (store_read(r->srv->store, "Patient", pid, &v, &e) == 0 && v.json) {
		privacy_labels_of_json(v.json, strlen(v.json), &r->pl[i].l);
	} else {
		memset(&r->pl[i].l, 0, sizeof(r->pl[i].l)); /* no such patient: nothing to add */
	}
	store_version_release(&v);
	*btg = &r->pl[i].btg;
	return &r->pl[i].l;
}

/* May the role read resources of this type at all?  (Answers can carry
 * other types than the request's: compartments, includes, $everything,
 * history, batch entries.) */
static bool type_allowed(struct request *r, const char *type)
{
	struct privacy_request rq = r->prq;
	struct privacy_decision d;
	struct err e = ERR_INIT;

	if (r->prq.type && strcmp(type, r->prq.type) == 0 && r->prq.action == PA_READ)
		return true;
	/* hits come in runs of one type: one decision per run */
	if (r->last_type && strcmp(r->last_type, type) == 0)
		return r->last_ok;
	rq.action = PA_READ;
	rq.type = type;
	rq.id = NULL;
	rq.btg_reason = NULL;
	r->last_ok = privacy_decide_ex(&r->who, &rq, &d, &e) == 0;
	r->last_type = fhir_resource_type(type) ? fhir_resource_type(type)->name : NULL;
	return r->last_ok;
}

/* fhir_req.decide: one entry of a batch or transaction, on its own. */
static int decide_entry(void *ctx, int interaction, const char *type, struct err *e)
{
	struct request *r = ctx;
	struct privacy_request rq = r->prq;
	struct privacy_decision d;

	switch (interaction) {
	case FHIR_READ: rq.action = PA_READ; break;
	case FHIR_VREAD: rq.action = PA_VREAD; break;
	case FHIR_SEARCH: rq.action = PA_SEARCH; break;
	case FHIR_CREATE: rq.action = PA_CREATE; break;
	case FHIR_PATCH: rq.action = PA_PATCH; break;
	case FHIR_DELETE: rq.action = PA_DELETE; break;
	default: rq.action = PA_UPDATE; break;
	}
	rq.type = type;
	rq.id = NULL;
	if (privacy_decide_ex(&r->who, &rq, &d, e) < 0)
		return -1;
	if (d.patient && rq.action >= PA_CREATE)
		return err_set(e, ERR_FORBIDDEN, "a patient-context token may not write in a Bundle");
	return 0;
}

/* fhir_req.may_write under a patient context: a Patient only if it is the
 * context patient; anything else only if every Patient it names is that
 * one (and it names one: a resource of nobody's is not the patient's). */
static int may_write(void *ctx, const char *type, const char *id, const char *json, size_t len,
		     struct err *e)
{
	struct request *r = ctx;
	const char *want = r->dec.patient;
	size_t at = 0, n, seen = 0;

	if (!want)
		return 0;
	if (!json)
		goto refuse; /* whether a record is there is not the token's to know */
	if (strcmp(type, "Patient") == 0) {
		if (want[0] && id && strcmp(id, want) == 0)
			return 0;
		goto refuse;
	}
	while ((n = fhir_next_patient_ref(json, len, &at)) > 0) {
		if (strlen(want) != n || memcmp(json + at - n, want, n) != 0)
			goto refuse;
		seen++;
	}
	if (seen && want[0])
		return 0;
refuse:
	r->outside = true;
	return err_set(e, ERR_FORBIDDEN, "this token's patient context does not include this record");
}

static bool visible(void *ctx, const char *type, const char *id, const char *json, size_t len)
{
	struct request *r = ctx;
	struct privacy_labels own;
	const struct privacy_labels *pat = NULL;
	const char *pid;
	bool *btg = NULL;
	int64_t until;
	struct err e = ERR_INIT;

	if (!type_allowed(r, type)) {
		r->outside = true;
		return false; /* the role may not read this type */
	}
	pid = patient_of(r, type, id, json, len);
	if (r->dec.patient && !privacy_in_patient_context(&r->dec, type, id, &pid, pid ? 1 : 0)) {
		r->outside = true;
		return false; /* outside the token's patient context */
	}
	if (r->cleared)
		return true;
	privacy_labels_of_json(json, len, &own);
	if (pid)
		pat = patient_labels(r, pid, json, len, strcmp(type, "Patient") == 0, &btg);
	if (privacy_may_see(&r->who, &own, pat, false))
		return true;
	if (!pid)
		return false;
	if (*btg || privacy_btg_active(r->srv->store, r->who.uid, pid, time_now_ms()))
		return *btg = true;
	/* breaking the glass now: the grant is recorded before anything is shown */
	if (r->prq.btg_reason && privacy_btg_role(r->who.role) &&
	    privacy_btg_grant(r->srv->store, &r->who, pid, r->prq.btg_reason, r->source, time_now_ms(),
			      &until, &e) == 0) {
		log_info("event=break_glass rid=%" PRIx64 " user=%s until=%" PRId64, r->rid, r->who.username,
			 until);
		return *btg = true;
	}
	return false;
}

/* A read (or vread) of a resource the role may not see: for a role that may
 * break the glass, 403 saying how; for any other, the 404 of a missing one. */
static void hide_read(struct request *r)
{
	struct err e = ERR_INIT;

	if (r->outside && r->dec.patient)
		err_set(&e, ERR_FORBIDDEN, "this token's patient context does not include this record");
	else if (privacy_btg_role(r->who.role) && !r->outside)
		err_set(&e, ERR_FORBIDDEN, "this record is restricted; to see it in an emergency send "
					   "X-Break-Glass: <reason> (recorded and reviewed)");
	else /* word for word what a missing one gets (rest.c) */
		err_set(&e, ERR_NOT_FOUND, "%s/%s is not known", r->freq.type, r->freq.id);
	fhir_resp_release(&r->fresp);
	fhir_resp_init(&r->fresp);
	fhir_resp_error(&r->fresp, &e);
}

/* ---- the dispatcher ---- */

static bool is_access_log(const struct request *r)
{
	return r->route && strcmp(r->route->pattern, "/Patient/{id}/$access-log") == 0;
}

static bool is_btg_report(const struct request *r)
{
	return r->route && strcmp(r->route->pattern, "/privacy/break-glass") == 0;
}

struct btg_out {
	struct buf *b;
	size_t n;
};

static int btg_row(void *ctx, const struct store_btg *g)
{
	struct btg_out *o = ctx;
	char from[TIME_INSTANT_MAX], until[TIME_INSTANT_MAX];

	time_format_instant(g->granted_ms, from);
	time_format_instant(g->until_ms, until);
	buf_addf(o->b, "%s{\"user\":\"", o->n++ ? "," : "");
	buf_add_json_str(o->b, g->username, strlen(g->username));
	buf_addf(o->b, "\",\"role\":\"%s\",\"patient\":\"Patient/", g->role);
	buf_add_json_str(o->b, g->patient, strlen(g->patient));
	buf_addstr(o->b, "\",\"reason\":\"");
	buf_add_json_str(o->b, g->reason, strlen(g->reason));
	buf_addf(o->b, "\",\"granted\":\"%s\",\"until\":\"%s\",\"source\":\"", from, until);
	buf_add_json_str(o->b, g->source, strlen(g->source));
	buf_addstr(o->b, "\"}");
	return 0;
}

/* GET /privacy/break-glass?since=: the grants made since then (default: the
 * last 30 days), oldest first, as JSON. */
static void btg_report(struct request *r)
{
	const char *since = param(r, "since");
	int64_t since_ms = time_now_ms() - 30LL * 24 * 3600 * 1000;
	struct err e = ERR_INIT;
	struct btg_out o = { &r->fresp.body, 0 };

	r->fresp.status = 200;
	if (since) {
		struct time_val tv;
		if (time_parse(since, strlen(since), TIME_DATETIME, &tv) < 0) {
			err_set(&e, ERR_INVALID, "since: a date or dateTime");
			fhir_resp_error(&r->fresp, &e);
			return;
		}
		since_ms = tv.lo_ms;
	}
	buf_addstr(&r->fresp.body, "{\"grants\":[");
	if (privacy_btg_list(r->srv->store, since_ms, btg_row, &o, &e) < 0) {
		buf_reset(&r->fresp.body);
		fhir_resp_error(&r->fresp, &e);
		return;
	}
	buf_addstr(&r->fresp.body, "]}");
}

static void committed(struct store_txn *t, void *arg)
{
	struct request *r = arg;

	(void)t;
	r->state = RS_RESUMED;
	MHD_resume_connection(r->conn);
}

/* ---- the audit trail ----
 *
 * Every answer of a non-public route is audited: a write's entry goes in
 * the write's own transaction (audit_txn_entry reads the outcome from it);
 * any other answer - a read, a search, a refusal - waits for an audit-only
 * transaction to be durable before it is sent.  If that fails, the client
 * gets a 500 instead of the data. */

static const char *interaction_code(const struct request *r)
{
	if (r->route && r->route->coding_op)
		return strrchr(r->route->pattern, '$');
	if (r->route && r->route->mpi_op)
		return r->route->mpi_op == MPI_OP_MERGE ? "$merge" : r->route->mpi_op == MPI_OP_UNMERGE
		       ? "$unmerge" : r->route->mpi_op == MPI_OP_MATCH ? "$match" : "mpi-report";
	if (r->route && r->route->export_op)
		return r->route->export_op == FHIR_EXPORT_KICKOFF ? "$export"
		       : r->route->export_op == FHIR_EXPORT_FILE ? "$export-file" : "$export-status";
	switch (r->route ? r->route->interaction : 0) {
	case FHIR_READ: return "read";
	case FHIR_VREAD: return "vread";
	case FHIR_CREATE: return "create";
	case FHIR_UPDATE: return "update";
	case FHIR_PATCH: return "patch";
	case FHIR_DELETE: return "delete";
	case FHIR_HISTORY_INSTANCE: return "history-instance";
	case FHIR_HISTORY_TYPE: return "history-type";
	case FHIR_HISTORY_SYSTEM: return "history-system";
	case FHIR_BATCH: return "transaction";
	case FHIR_SEARCH: case FHIR_SEARCH_COMPARTMENT: return "search-type";
	case FHIR_EVERYTHING: return "$everything";
	default: return "operation";
	}
}

/* The patients an answer discloses: every "reference":"Patient/x" in it
 * and every fullUrl ending in /Patient/x (a Patient entry of a Bundle). */
static void patients_in(struct request *r, const char *body, size_t len)
{
	static const char mark[] = "/Patient/";
	const char *p = body, *end = body + len;
	size_t at = 0, n;

	while ((n = fhir_next_patient_ref(body, len, &at)) != 0)
		audit_add_patient(&r->ai, arena_strndup(&r->arena, body + at - n, n));
	/* "/Patient/x" counts only as the end of a fullUrl */
	while (p < end && (p = memmem(p, (size_t)(end - p), mark, sizeof(mark) - 1)) != NULL) {
		const char *id = p + sizeof(mark) - 1, *q = memchr(id, '"', (size_t)(end - id));
		const char *f = memrchr(body, '"', (size_t)(p - body));
		p = id;
		if (q && id_valid(id, (size_t)(q - id)) && f && f - body >= 10 &&
		    memcmp(f - 10, "\"fullUrl\":", 10) == 0)
			audit_add_patient(&r->ai, arena_strndup(&r->arena, id, (size_t)(q - id)));
	}
}

/* What is known of the request before the answer: who, what, from where. */
static void audit_begin(struct request *r, const char *type, const char *id, const char *vid)
{
	struct audit_info *ai = &r->ai;

	memset(ai, 0, sizeof(*ai));
	ai->who = r->authenticated ? &r->who : NULL;
	ai->action = r->prq.action;
	ai->interaction = interaction_code(r);
	ai->source = r->source;
	ai->purpose = r->prq.purpose;
	ai->btg_reason = r->prq.btg_reason;
	ai->rid = r->rid;
	if (r->n_params) {
		/* the query as received, for the query entity */
		struct buf q = BUF_INIT(0);
		for (size_t i = 0; i < r->n_params; i++)
			buf_addf(&q, "%s%s=%s", i ? "&" : "", r->params[i].name, r->params[i].value);
		ai->query = arena_strdup(&r->arena, buf_cstr(&q));
		buf_release(&q);
	}
	if (type && fhir_resource_type(type)) {
		ai->nent = 0;
		audit_add_entity(ai, fhir_resource_type(type)->name, id,
				 vid && r->route && r->route->interaction == FHIR_VREAD ? strtoll(vid, NULL, 10) : 0);
		if (id && strcmp(type, "Patient") == 0)
			audit_add_patient(ai, id);
	}
	/* patient=, subject=Patient/x: the patient a search is about */
	for (size_t i = 0; i < r->n_params; i++) {
		const char *n = r->params[i].name, *v = r->params[i].value;
		if (strcmp(n, "patient") == 0 && !strchr(v, '/') && !strchr(v, ','))
			audit_add_patient(ai, v);
		else if ((strcmp(n, "patient") == 0 || strcmp(n, "subject") == 0) &&
			 strncmp(v, "Patient/", 8) == 0 && !strchr(v + 8, ',') && !strchr(v + 8, '/'))
			audit_add_patient(ai, v + 8);
	}
}

static void audited(struct store_txn *t, void *arg)
{
	struct request *r = arg;

	(void)t;
	r->state = RS_AUDITED;
	MHD_resume_connection(r->conn);
}

/* Audit the answer in r->fresp (already made), then send it. */
static enum MHD_Result audit_then_send(struct request *r)
{
	r->ai.status = r->fresp.status ? r->fresp.status : 500;
	if (r->fresp.status < 400)
		patients_in(r, buf_cstr(&r->fresp.body), r->fresp.body.len);
	/* the entry is made here, on this request's thread: the writer, which
	 * every request waits for, only hashes and stores it */
	{
		struct buf *b = &r->aentry;
		buf_init(b, 0);
		if (audit_event_json(&r->ai, time_now_ms(), b) == 0 && !b->failed) {
			r->ai.prebuilt = buf_cstr(b);
			r->ai.prebuilt_len = b->len;
		}
	}
	memset(&r->atxn, 0, sizeof(r->atxn));
	r->atxn.atomic = true;
	r->atxn.audit = audit_txn_entry;
	r->atxn.audit_arg = &r->ai;
	r->atxn.done = audited;
	r->atxn.done_arg = r;
	r->state = RS_AUDITING;
	MHD_suspend_connection(r->conn);
	if (store_submit(r->srv->store, &r->atxn) < 0) {
		r->atxn.rc = -1;
		r->state = RS_AUDITED;
		MHD_resume_connection(r->conn);
	}
	return MHD_YES;
}

/* After the audit entry: the answer, or a 500 if the entry was not written. */
static enum MHD_Result send_audited(struct request *r)
{
	if (r->atxn.rc != 0) {
		struct err e = ERR_INIT;
		log_error("event=audit_failed rid=%" PRIx64 " detail=\"%s\"", r->rid, r->atxn.err.detail);
		err_set(&e, ERR_INTERNAL, "the audit trail could not be written; nothing was sent");
		return send_error(r, &e);
	}
	return send_fhir(r);
}

/* A refusal after authentication (403), audited like any answer. */
static enum MHD_Result refuse_audited(struct request *r, const struct err *e)
{
	fhir_resp_release(&r->fresp);
	fhir_resp_init(&r->fresp);
	fhir_resp_error(&r->fresp, e);
	return audit_then_send(r);
}

/* The same for the export routes, which answer synchronously: wait here. */
static bool visible(void *ctx, const char *type, const char *id, const char *json, size_t len);

/* An MPI operation (mpi/mpi.h), answered on this thread: a merge or
 * unmerge commits its changes with this request's audit entry; anything
 * else (a refusal, $match, the report) is audited like a read. */
static enum MHD_Result send_mpi(struct request *r)
{
	struct mpi_op_req rq;

	memset(&rq, 0, sizeof(rq));
	rq.op = r->route->mpi_op;
	rq.body = r->body.data ? r->body.data : "";
	rq.body_len = r->body.len;
	rq.base = r->base;
	rq.who = &r->who;
	rq.ai = &r->ai;
	rq.visible = visible;
	rq.visible_ctx = r;
	rq.params = r->params;
	rq.n_params = r->n_params;
	r->freq.type = "Patient";
	fhir_resp_release(&r->fresp);
	fhir_resp_init(&r->fresp);
	if (mpi_operation(&r->srv->fcfg, &rq, &r->fresp) == 1)
		return send_fhir(r);
	return audit_then_send(r);
}

static int audit_sync(struct request *r, int status)
{
	struct store_txn t;

	r->ai.status = status;
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	t.audit = audit_txn_entry;
	t.audit_arg = &r->ai;
	return store_commit(r->srv->store, &t);
}

static enum MHD_Result dispatch(struct request *r, const char *url)
{
	struct err e = ERR_INIT;
	struct path p;
	char *path;
	const char *type = NULL, *id = NULL, *vid = NULL, *pretty;
	bool path_known = false;
	int step;

	if (r->too_large) {
		err_set(&e, ERR_TOO_LARGE, "request body larger than %zu bytes", r->srv->cfg.max_body);
		return send_error(r, &e);
	}
	if (r->late) {
		err_set(&e, ERR_UNAVAILABLE, "the server is shutting down");
		return send_error(r, &e);
	}
	/* The path is split in place: a copy, in the request unless it is long. */
	if (strlen(url) < sizeof(r->path_buf)) {
		snprintf(r->path_buf, sizeof(r->path_buf), "%s", url);
		path = r->path_buf;
	} else {
		path = arena_strdup(&r->arena, url);
	}
	if (!path || path_split(path, &p) < 0) {
		err_set(&e, ERR_NOT_FOUND, "no such endpoint");
		return send_error(r, &e);
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *t, *d, *v;
		if (!route_match(i, &p, &t, &d, &v))
			continue;
		path_known = true;
		if (!r->route || strcmp(routes[i].method, r->method) == 0)
			r->route = &routes[i];
		if (strcmp(routes[i].method, r->method) == 0) {
			type = t;
			id = d;
			vid = v;
			break;
		}
	}
	if (!path_known) {
		r->route = NULL;
		err_set(&e, ERR_NOT_FOUND, "no such endpoint");
		return send_error(r, &e);
	}
	if (strcmp(r->route->method, r->method) != 0) {
		err_set(&e, ERR_METHOD, "method %s is not allowed here", r->method);
		return send_error(r, &e);
	}
	if (r->route->auth_op)
		return send_auth(r);
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_param, r);
	if (r->params_bad) {
		err_set(&e, ERR_INVALID, "too many query parameters");
		return send_error(r, &e);
	}
	/* An export file is NDJSON whatever Accept says; the rest is JSON. */
	if (r->route->export_op != FHIR_EXPORT_FILE && negotiate(r, &e) < 0)
		return send_error(r, &e);
	set_base(r);
	set_source(r);

	r->prq.action = r->route->action;
	r->prq.type = type;
	r->prq.id = id;
	r->prq.source = r->source;
	if (r->route->export_op) {
		/* a job id or file name is not a resource: the policy sees the
		 * kick-off's level (system, Patient, Group/id) only */
		r->prq.type = r->route->export_level == SXL_PATIENT ? "Patient"
			    : r->route->export_level == SXL_GROUP ? "Group" : NULL;
		r->prq.id = r->route->export_level == SXL_GROUP ? id : NULL;
	}
	/* a compartment search is a search of the type it asks for */
	if (r->route->interaction == FHIR_SEARCH_COMPARTMENT && vid && fhir_resource_type(vid))
		r->prq.type = fhir_resource_type(vid)->name;
	if (r->route->coding_op) {
		r->prq.type = r->route->op_type;
		r->prq.id = id;
	}
	if (r->route->mpi_op)
		r->prq.type = "Patient";
	if (is_access_log(r) || is_btg_report(r)) {
		/* decided as a search of AuditEvent (the privacy officer's) */
		r->prq.type = "AuditEvent";
		r->prq.id = NULL;
	}
	if (!r->route->public) {
		const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION);
		if (privacy_authenticate(r->srv->store, auth, &r->who, &e) < 0) {
			if (e.code != ERR_UNAUTHENTICATED)
				log_error("event=auth_failed rid=%" PRIx64 " detail=\"%s\"", r->rid, e.detail);
			return send_error(r, &e);
		}
		r->authenticated = true;
		r->prq.btg_reason = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Break-Glass");
		if (is_access_log(r))
			audit_begin(r, "Patient", id, NULL);
		else
			audit_begin(r, r->prq.type, r->prq.id, vid);
		/* an export's status, files and cancel belong to the user who
		 * started it (the export module checks that); the policy decided
		 * at kick-off */
		/* a compartment search also searches the compartment's owner */
		if (r->route->interaction == FHIR_SEARCH_COMPARTMENT && type && fhir_resource_type(type) &&
		    r->prq.type && strcmp(r->prq.type, type) != 0) {
			struct privacy_request own = r->prq;
			struct privacy_decision od;
			own.type = fhir_resource_type(type)->name;
			if (privacy_decide_ex(&r->who, &own, &od, &e) < 0)
				return refuse_audited(r, &e);
		}
		/* an unknown type is a 404 (from the FHIR layer), whoever asks */
		if ((!r->route->export_op || r->route->export_op == FHIR_EXPORT_KICKOFF) &&
		    (!r->prq.type || fhir_resource_type(r->prq.type)) &&
		    privacy_decide_ex(&r->who, &r->prq, &r->dec, &e) < 0)
			return refuse_audited(r, &e);
		/* patient/ scopes: a write stays in the patient's compartment
		 * (may_write looks at each); in a Bundle, decide_entry refuses
		 * the writes, as their content is not looked at one by one */
		{
			struct privacy_labels top = { PCONF_V, PCAT__ALL };
			r->cleared = privacy_may_see(&r->who, &top, NULL, false);
		}
		if (r->prq.btg_reason && privacy_btg_reason_check(r->prq.btg_reason, &e) < 0)
			return refuse_audited(r, &e);
	}
	if (r->route->export_op)
		return send_export(r, url, id, vid);
	if (r->route->mpi_op)
		return send_mpi(r);

	r->freq.interaction = r->route->interaction;
	r->freq.type = type;
	r->freq.id = id;
	r->freq.vid = r->route->interaction == FHIR_SEARCH_COMPARTMENT ? NULL : vid;
	r->freq.ctype = r->route->interaction == FHIR_SEARCH_COMPARTMENT ? vid : NULL;
	r->freq.body = r->body.data ? r->body.data : "";
	r->freq.body_len = r->body.len;
	r->freq.content_type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							   MHD_HTTP_HEADER_CONTENT_TYPE);
	r->freq.if_match = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_IF_MATCH);
	r->freq.prefer = prefer_of(r);
	{
		const char *pf = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Prefer");
		r->freq.strict = pf && strstr(pf, "handling=strict");
	}
	r->freq.if_none_exist = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							    "If-None-Exist");
	pretty = param(r, "_pretty");
	r->freq.pretty = pretty && strcmp(pretty, "true") == 0;
	r->freq.base = r->base;
	r->freq.params = r->params;
	r->freq.n_params = r->n_params;
	r->freq.arena = &r->arena;
	fhir_resp_init(&r->fresp);

	if (is_btg_report(r)) {
		btg_report(r);
		return audit_then_send(r);
	}
	if (r->route->coding_op) {
		/* what $code-edits reads passes the same checks as a read */
		char pid[ID_MAX + 1];
		r->freq.visible = visible;
		r->freq.visible_ctx = r;
		if (r->route->coding_op >= COP_EDITS_CLAIM) {
			coding_code_edits(&r->srv->fcfg, &r->freq, r->route->coding_op, &r->fresp, pid);
			if (pid[0])
				audit_add_patient(&r->ai, arena_strdup(&r->arena, pid));
		} else {
			coding_terminology(&r->srv->fcfg, &r->freq, r->route->coding_op, &r->fresp);
		}
		return audit_then_send(r);
	}
	if (is_access_log(r) || (type && strcmp(type, "AuditEvent") == 0 &&
				  (r->freq.interaction == FHIR_SEARCH || r->freq.interaction == FHIR_READ))) {
		/* the audit trail is not among the resources: its own reader */
		if (is_access_log(r))
			r->freq.type = "Patient";
		fhir_auditlog(&r->srv->fcfg, &r->freq, &r->fresp);
		return audit_then_send(r);
	}
	if (!r->route->public) {
		r->freq.visible = visible;
		r->freq.visible_ctx = r;
		r->freq.decide = decide_entry;
		r->freq.may_write = r->dec.patient ? may_write : NULL;
		r->freq.no_total = !r->cleared || r->dec.patient;
	}
	/* a change to a record the user may not see: as if it were not there */
	if (!r->route->public && !r->cleared && type && id &&
	    (r->freq.interaction == FHIR_UPDATE || r->freq.interaction == FHIR_PATCH ||
	     r->freq.interaction == FHIR_DELETE)) {
		struct store_version v;
		struct err re = ERR_INIT;
		bool hidden = false;
		memset(&v, 0, sizeof(v));
		if (store_read(r->srv->store, type, id, &v, &re) == 0 && v.json)
			hidden = !visible(r, type, id, v.json, strlen(v.json));
		store_version_release(&v);
		if (hidden) {
			r->freq.interaction = FHIR_READ; /* hide_read speaks of a read */
			hide_read(r);
			return audit_then_send(r);
		}
	}
	step = fhir_begin(&r->srv->fcfg, &r->freq, &r->fresp);
	if (step == FHIR_DONE && !r->route->public && (!r->cleared || r->dec.patient) &&
	    r->fresp.status == 200 &&
	    (r->freq.interaction == FHIR_READ || r->freq.interaction == FHIR_VREAD) && type && id &&
	    !visible(r, type, id, buf_cstr(&r->fresp.body), r->fresp.body.len))
		hide_read(r);
	/* under a patient context, a record that is not there is refused like
	 * one of another patient: the answer does not say which */
	if (step == FHIR_DONE && r->dec.patient && (r->fresp.status == 404 || r->fresp.status == 410) &&
	    (r->freq.interaction == FHIR_READ || r->freq.interaction == FHIR_VREAD ||
	     r->freq.interaction == FHIR_HISTORY_INSTANCE)) {
		r->outside = true;
		hide_read(r);
	}
	if (step == FHIR_DONE)
		return r->route->public ? send_fhir(r) : audit_then_send(r);
	/* A write: wait for the group commit without holding this thread; its
	 * audit entry goes in the same transaction. */
	r->fresp.txn->done = committed;
	r->fresp.txn->done_arg = r;
	r->fresp.txn->audit = audit_txn_entry;
	r->fresp.txn->audit_arg = &r->ai;
	r->state = RS_PENDING;
	MHD_suspend_connection(r->conn);
	if (store_submit(r->srv->store, r->fresp.txn) < 0) {
		r->fresp.txn->rc = -1;
		r->state = RS_RESUMED;
		MHD_resume_connection(r->conn);
	}
	return MHD_YES;
}

static void watch_headers_done(struct MHD_Connection *conn);
static void watch_waiting(struct MHD_Connection *conn);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct server *srv = cls;
	struct request *r = *con_cls;

	(void)version;
	if (!r) {
		const char *cl;
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = srv;
		r->conn = conn;
		r->rid = atomic_fetch_add(&srv->next_rid, 1);
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		buf_init(&r->body, srv->cfg.max_body);
		arena_init(&r->arena, 1 << 20);
		fhir_resp_init(&r->fresp);
		/* HEAD is GET without the body (libmicrohttpd drops it). */
		snprintf(r->method, sizeof(r->method), "%s",
			 strcmp(method, "HEAD") == 0 ? "GET" : method);
		r->head = strcmp(method, "HEAD") == 0;
		*con_cls = r;
		watch_headers_done(conn);
		atomic_fetch_add(&srv->inflight, 1);
		r->late = atomic_load(&srv->stopping);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body)
			r->too_large = true;
		return MHD_YES;
	}
	if (r->state == RS_RESUMED) {
		fhir_finish(&srv->fcfg, &r->freq, &r->fresp);
		r->state = RS_RECEIVING;
		return send_fhir(r);
	}
	if (r->state == RS_AUDITED) {
		r->state = RS_RECEIVING;
		return send_audited(r);
	}
	if (*upload_data_size) {
		/* a body trickling in: after --timeout s it must average
		 * SERVER_MIN_BODY_RATE bytes/s, or the connection is closed */
		r->received += *upload_data_size;
		if (elapsed_ms(r) > 1e3 * srv->cfg.timeout_s +
					   1e3 * (double)r->received / SERVER_MIN_BODY_RATE) {
			log_info("event=slow_body_cut rid=%" PRIx64 " bytes=%zu ms=%.0f", r->rid,
				 r->received, elapsed_ms(r));
			return MHD_NO;
		}
		if (!r->too_large) {
			buf_add(&r->body, upload_data, *upload_data_size);
			if (r->body.failed) {
				r->too_large = true;
				buf_release(&r->body);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(r, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct server *srv = cls;
	struct request *r = *con_cls;

	(void)why;
	watch_waiting(conn);
	if (!r)
		return;
	request_free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->inflight, 1);
}

/* ---- slow clients ---- */

/* libmicrohttpd's --timeout is an idle timeout: a client that sends a byte a
 * second is never idle, and could keep a connection (and a slot of
 * --max-connections) for ever while its headers trickle in.  So every
 * connection is on a list, and while it waits for a request's headers (from
 * its start, or from the end of its previous request) the main thread's
 * sweep shuts its socket down once that has taken longer than --timeout;
 * libmicrohttpd then reads the end of the stream and closes it.  The socket
 * is only shut down, under the list lock, and libmicrohttpd reports a
 * connection closed (taking it off the list) before it closes the socket,
 * so the descriptor cannot be another connection's by then. */
struct conn_watch {
	struct conn_watch *prev, *next;
	int fd;
	atomic_llong since_ms;  /* when it began waiting for headers */
	atomic_bool waiting;    /* for a request's headers */
	bool cut;               /* under watch_lock */
};

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void watch_headers_done(struct MHD_Connection *conn)
{
	struct conn_watch *w = watch_of(conn);

	if (w)
		atomic_store(&w->waiting, false);
}

/* A request is over: the connection waits for the next one's headers. */
static void watch_waiting(struct MHD_Connection *conn)
{
	struct conn_watch *w = watch_of(conn);

	if (!w)
		return;
	atomic_store(&w->since_ms, mono_ms());
	atomic_store(&w->waiting, true);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct server *srv = cls;
	struct conn_watch *w = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		w = ci ? calloc(1, sizeof(*w)) : NULL;
		if (!w)
			return; /* not watched: the idle timeout still holds */
		w->fd = ci->connect_fd;
		atomic_init(&w->since_ms, mono_ms());
		atomic_init(&w->waiting, true);
		pthread_mutex_lock(&srv->watch_lock);
		w->next = srv->watch;
		if (srv->watch)
			srv->watch->prev = w;
		srv->watch = w;
		pthread_mutex_unlock(&srv->watch_lock);
		*socket_context = w;
		return;
	}
	if (!w)
		return;
	pthread_mutex_lock(&srv->watch_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		srv->watch = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&srv->watch_lock);
	free(w);
	*socket_context = NULL;
}

/* Cut the connections whose headers have taken longer than --timeout.  A
 * second's grace leaves a merely idle connection to libmicrohttpd's own
 * timeout, so what is cut here was sending, slowly. */
static void watch_sweep(struct server *srv)
{
	int64_t now = mono_ms(), limit = (int64_t)srv->cfg.timeout_s * 1000 + 1000;
	unsigned cut = 0;

	pthread_mutex_lock(&srv->watch_lock);
	for (struct conn_watch *w = srv->watch; w; w = w->next) {
		if (w->cut || !atomic_load(&w->waiting) || now - atomic_load(&w->since_ms) <= limit)
			continue;
		shutdown(w->fd, SHUT_RDWR);
		w->cut = true;
		cut++;
	}
	pthread_mutex_unlock(&srv->watch_lock);
	if (cut)
		log_info("event=slow_headers_cut connections=%u timeout_s=%u", cut, srv->cfg.timeout_s);
}

/* ---- TLS ---- */

#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_FILE_MAX (1u << 20)

/* A whole PEM file as a string, in memory libsodium wipes when it is freed. */
static int pem_read(const char *path, const char *flag, char **out, struct err *e)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	struct stat st;
	size_t n, size;
	int rc = -1;

	*out = NULL;
	if (!f)
		return err_set(e, ERR_INVALID, "%s %s: %s", flag, path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(e, ERR_INVALID, "%s %s: not a regular file", flag, path);
		goto out;
	}
	if (st.st_size > (off_t)TLS_FILE_MAX) {
		err_set(e, ERR_INVALID, "%s %s: larger than 1 MB, not a PEM file", flag, path);
		goto out;
	}
	size = (size_t)st.st_size;
	data = sodium_malloc(size + 1);
	if (!data) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	n = fread(data, 1, size, f);
	if (ferror(f) || n != size) {
		err_set(e, ERR_INVALID, "%s %s: cannot read it", flag, path);
		goto out;
	}
	data[n] = '\0';
	*out = data;
	data = NULL;
	rc = 0;
out:
	sodium_free(data);
	fclose(f);
	return rc;
}

/* Is every PEM block's body base64?  GnuTLS leaks on some malformed input,
 * and this names the file at fault; the rest (ASN.1, a pair that does not
 * match) is left to GnuTLS.  The decoded bytes (a key) are wiped. */
static bool pem_base64_ok(const char *pem)
{
	const char *p = pem;
	bool ok = true;
	size_t cap = strlen(pem);
	unsigned char *bin = sodium_malloc(cap + 1);

	if (!bin)
		return false;
	for (p = strstr(p, "-----BEGIN "); ok && p; p = strstr(p, "-----BEGIN ")) {
		const char *body = strchr(p, '\n');
		const char *end = body ? strstr(body, "-----END ") : NULL;
		size_t n = 0;
		if (!end) {
			ok = false;
			break;
		}
		ok = sodium_base642bin(bin, cap, body + 1, (size_t)(end - body - 1), "\r\n", &n, NULL,
				       sodium_base64_VARIANT_ORIGINAL) == 0 && n > 0;
		p = end + 9;
	}
	sodium_free(bin);
	return ok;
}

struct tls_probe {
	char msg[160];
};

static void tls_probe_log(void *cls, const char *fmt, va_list ap)
{
	struct tls_probe *p = cls;

	if (p->msg[0])
		return; /* the first says why; the rest that it failed */
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	p->msg[strcspn(p->msg, "\r\n")] = '\0';
}

static enum MHD_Result tls_probe_request(void *cls, struct MHD_Connection *conn, const char *url,
					 const char *method, const char *version,
					 const char *upload_data, size_t *upload_data_size,
					 void **con_cls)
{
	(void)cls, (void)conn, (void)url, (void)method, (void)version, (void)upload_data;
	(void)upload_data_size, (void)con_cls;
	return MHD_NO;
}

int server_tls_load(struct server_tls *t, const char *cert_file, const char *key_file,
		    struct err *e)
{
	struct tls_probe probe = { "" };
	struct MHD_Daemon *d;
	struct stat st;

	memset(t, 0, sizeof(*t));
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return err_set(e, ERR_NOT_SUPPORTED, "this libmicrohttpd has no TLS support "
			       "(built without GnuTLS): --tls-cert cannot be used");
	if (pem_read(cert_file, "--tls-cert", &t->cert_pem, e) < 0 ||
	    pem_read(key_file, "--tls-key", &t->key_pem, e) < 0)
		return -1;
	if (!strstr(t->cert_pem, "-----BEGIN CERTIFICATE-----"))
		return err_set(e, ERR_INVALID, "--tls-cert %s: no PEM certificate in it", cert_file);
	if (strstr(t->key_pem, "ENCRYPTED"))
		return err_set(e, ERR_INVALID, "--tls-key %s: the key is encrypted; give it "
			       "unencrypted (readable by this user only)", key_file);
	if (!strstr(t->key_pem, "PRIVATE KEY-----"))
		return err_set(e, ERR_INVALID, "--tls-key %s: no PEM private key in it", key_file);
	if (!pem_base64_ok(t->cert_pem))
		return err_set(e, ERR_INVALID, "--tls-cert %s: a PEM block in it is not base64", cert_file);
	if (!pem_base64_ok(t->key_pem))
		return err_set(e, ERR_INVALID, "--tls-key %s: a PEM block in it is not base64", key_file);
	if (stat(key_file, &st) == 0 && (st.st_mode & 077))
		log_warn("event=tls_key_readable path=\"%s\" hint=\"chmod 600 it\"", key_file);
	/* the pair as serve will use it: a daemon without a socket, checked
	 * and stopped by the same code (libmicrohttpd, GnuTLS) */
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL,
			     NULL, tls_probe_request, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, tls_probe_log, &probe,
			     MHD_OPTION_HTTPS_MEM_CERT, t->cert_pem,
			     MHD_OPTION_HTTPS_MEM_KEY, t->key_pem,
			     MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
			     MHD_OPTION_END);
	if (!d)
		return err_set(e, ERR_INVALID, "--tls-cert %s, --tls-key %s: not a usable pair (%s)",
			       cert_file, key_file, probe.msg[0] ? probe.msg : "refused by GnuTLS");
	MHD_stop_daemon(d);
	return 0;
}

void server_tls_release(struct server_tls *t)
{
	sodium_free(t->cert_pem);
	sodium_free(t->key_pem); /* wiped */
	t->cert_pem = t->key_pem = NULL;
}

/* Percent-decoding of the path and of query names and values, in place.
 * As libmicrohttpd's own, except that "%00" stays as it is: a decoded NUL
 * would silently cut the value short (C strings) - "Patient-1.ndjson%00.txt"
 * would name Patient-1.ndjson, "code=x%00y" would search for x. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	const char *r = s;

	(void)cls;
	(void)c;
	while (*r) {
		int h, l;
		if (r[0] == '%' && r[1] && r[2] && (h = url_hexval(r[1])) >= 0 &&
		    (l = url_hexval(r[2])) >= 0 && (h | l) != 0) {
			*w++ = (char)(h * 16 + l);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\r\n")] = '\0';
	log_warn("event=http_library msg=\"%s\"", msg);
}

void server_config_defaults(struct server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen = SERVER_DEFAULT_LISTEN;
	c->max_body = SERVER_DEFAULT_MAX_BODY;
	c->max_depth = JSON_DEFAULT_MAX_DEPTH;
	c->max_bundle_entries = 100000;
	c->timeout_s = 60;
	c->max_connections = SERVER_DEFAULT_MAX_CONNECTIONS;
	c->per_ip_connections = SERVER_DEFAULT_PER_IP_CONNECTIONS;
	c->max_header_bytes = SERVER_DEFAULT_MAX_HEADER_BYTES;
	c->lockout_attempts = PRIVACY_LOCKOUT_ATTEMPTS;
	c->lockout_minutes = PRIVACY_LOCKOUT_MINUTES;
	c->token_rate = SERVER_DEFAULT_TOKEN_RATE;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, struct err *e)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return err_set(e, ERR_INVALID, "--listen must be HOST:PORT, e.g. 127.0.0.1:8080");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == '\0')
		return err_set(e, ERR_INVALID, "--listen: bad port '%s'", colon + 1);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) {
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	} else if (strcmp(host, "localhost") == 0) {
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		return err_set(e, ERR_INVALID, "--listen: '%s' is not an IPv4 address", host);
	}
	return 0;
}

int server_run(struct store *s, const struct server_config *cfg, struct err *e)
{
	struct server srv;
	struct sockaddr_in sa;
	sigset_t sigs;
	int sig = 0;
	unsigned threads = cfg->threads;
	const union MHD_DaemonInfo *info;
	int64_t deadline;
	struct MHD_OptionItem tls_opts[4] = { { MHD_OPTION_END, 0, NULL } };

	memset(&srv, 0, sizeof(srv));
	routes_init();
	srv.store = s;
	srv.cfg = *cfg;
	srv.scheme = cfg->tls ? "https" : "http";
	srv.fcfg.store = s;
	srv.fcfg.max_depth = cfg->max_depth;
	srv.fcfg.max_bundle_entries = cfg->max_bundle_entries;
	srv.fcfg.software_version = CHARTKEEP_VERSION;
	atomic_init(&srv.inflight, 0);
	atomic_init(&srv.stopping, false);
	atomic_init(&srv.next_rid, ((uint64_t)time_now_ms() & 0xffffffffu) << 20);
	if (parse_listen(cfg->listen, &sa, e) < 0)
		return -1;
	privacy_oauth_config_defaults(&srv.ocfg);
	srv.ocfg.lockout_attempts = (int)cfg->lockout_attempts;
	srv.ocfg.lockout_ms = (int64_t)cfg->lockout_minutes * 60 * 1000;
	{
		int64_t t0 = time_now_ms();
		if (fhir_params_load(s, &srv.fcfg.params, e) < 0)
			return -1;
		log_info("event=search_params_loaded ms=%lld", (long long)(time_now_ms() - t0));
	}
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 2;
	}
	if (threads < 2)
		threads = 2;

	/* Signals go to this thread only (sigwait below), never to workers. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* After the signals are blocked: its worker thread inherits the mask. */
	{
		struct fhir_export_config xc;
		memset(&xc, 0, sizeof(xc));
		xc.dir = cfg->export_dir;
		/* tests/api/export.py only: see fhir_export_config.start_delay_ms */
		if (getenv("CHARTKEEP_TEST_EXPORT_DELAY_MS"))
			xc.start_delay_ms = (unsigned)strtoul(getenv("CHARTKEEP_TEST_EXPORT_DELAY_MS"),
							      NULL, 10);
		if (fhir_export_new(&srv.fcfg, &xc, &srv.export, e) < 0) {
			pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
			fhir_params_free(srv.fcfg.params);
			return -1;
		}
	}
	/* incremental patient matching (mpi/mpi.h), fed by every Patient write */
	srv.fcfg.mpi_incr = cfg->no_match ? NULL : mpi_incr_start(&srv.fcfg, e);
	if (!cfg->no_match && !srv.fcfg.mpi_incr) {
		pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
		fhir_export_free(srv.export);
		fhir_params_free(srv.fcfg.params);
		return -1;
	}
	/* OAuth endpoints: token_rate a second per address, bursts of twice that */
	if (cfg->token_rate) {
		srv.auth_limit = ratelimit_new(cfg->token_rate, 2.0 * cfg->token_rate,
					       SERVER_AUTH_LIMIT_SLOTS);
		if (!srv.auth_limit) {
			pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
			mpi_incr_stop(srv.fcfg.mpi_incr);
			fhir_export_free(srv.export);
			fhir_params_free(srv.fcfg.params);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
	}
	if (cfg->tls) {
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls->cert_pem };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls->key_pem };
		tls_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
						       (void *)TLS_PRIORITIES };
		tls_opts[3] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	}
	pthread_mutex_init(&srv.watch_lock, NULL);
	srv.daemon = NULL;
	srv.daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG | (cfg->tls ? MHD_USE_TLS : 0),
		0, NULL, NULL, on_request, &srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, so it sees every message */
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		/* 0: no limit; beyond it a new connection is closed at once */
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_connections,
		/* the request line, headers and read buffer; bodies go to struct
		 * request; headers that do not fit get 431 */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header_bytes,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, &srv,
		MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
		MHD_OPTION_END);
	if (!srv.daemon) {
		pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
		mpi_incr_stop(srv.fcfg.mpi_incr);
		fhir_export_free(srv.export);
		fhir_params_free(srv.fcfg.params);
		ratelimit_free(srv.auth_limit);
		pthread_mutex_destroy(&srv.watch_lock);
		return err_set(e, ERR_IO, "cannot listen on %s (address in use?)", cfg->listen);
	}
	info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
	{
		char addr[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
		snprintf(srv.listen_base, sizeof(srv.listen_base), "%s://%s:%u", srv.scheme, addr,
			 info ? info->port : ntohs(sa.sin_port));
	}
	log_info("event=listening url=%s threads=%u max_body=%zu max_connections=%u "
		 "per_ip_connections=%u max_header_bytes=%zu timeout_s=%u", srv.listen_base, threads,
		 cfg->max_body, cfg->max_connections, cfg->per_ip_connections, cfg->max_header_bytes,
		 cfg->timeout_s);
	/* Also on stdout, whatever the log level: scripts and people need the URL. */
	printf("chartkeep: serving %s\n", srv.listen_base);
	fflush(stdout);

	/* wait for a signal, sweeping out slow clients four times a second */
	for (;;) {
		struct timespec tick = { 0, 250 * 1000 * 1000 };
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0)
			break;
		watch_sweep(&srv);
	}
	log_info("event=shutdown signal=%d inflight=%d", sig, atomic_load(&srv.inflight));
	/* No new connections; requests on open ones get 503 and "Connection:
	 * close"; requests already running finish.  A write waiting for its
	 * commit must be answered before libmicrohttpd stops (its connection is
	 * suspended), so this waits for all of them: commits are bounded by the
	 * database's busy timeout, slow clients by the connection timeout. */
	atomic_store(&srv.stopping, true);
	{
		MHD_socket ls = MHD_quiesce_daemon(srv.daemon);
		deadline = time_now_ms() + SHUTDOWN_GRACE_S * 1000;
		while (atomic_load(&srv.inflight) > 0) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			if (time_now_ms() > deadline) {
				log_warn("event=shutdown_waiting inflight=%d", atomic_load(&srv.inflight));
				deadline = time_now_ms() + SHUTDOWN_GRACE_S * 1000;
			}
		}
		MHD_stop_daemon(srv.daemon);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	/* A running export is abandoned (marked failed); it uses the search
	 * parameters, so it stops first. */
	fhir_export_free(srv.export);
	/* the matching queue is drained: every write it was given is matched */
	mpi_incr_stop(srv.fcfg.mpi_incr);
	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
	fhir_params_free(srv.fcfg.params);
	ratelimit_free(srv.auth_limit);
	pthread_mutex_destroy(&srv.watch_lock);
	log_info("event=stopped");
	return 0;
}
