/* auditlog.c - the audit trail over FHIR: GET /AuditEvent (search),
 * GET /AuditEvent/[seq] (read) and GET /Patient/[id]/$access-log.
 *
 * The entries live in the store's audit tables, not among the resources:
 * they are read here, never written (the store writes them, see
 * privacy/audit.h).  An entry's id is its sequence number in the chain. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/url.h"
#include "fhir/fhir.h"
#include "base/banned.h"

#define AUDIT_DEFAULT_COUNT 50
#define AUDIT_MAX_COUNT 1000

struct emit {
	struct buf *out;
	const char *base;
	size_t n;
};

/* The stored entry with id and meta.lastUpdated put in after resourceType. */
static void entry_resource(struct buf *out, const struct store_audit_entry *en)
{
	static const char head[] = "{\"resourceType\":\"AuditEvent\",";
	char when[TIME_INSTANT_MAX];

	time_format_instant(en->ts, when);
	if (en->len < sizeof(head) - 1 || memcmp(en->json, head, sizeof(head) - 1) != 0) {
		buf_add(out, en->json, en->len);
		return;
	}
	buf_addf(out, "%s\"id\":\"%" PRId64 "\",\"meta\":{\"lastUpdated\":\"%s\"},", head, en->seq, when);
	buf_add(out, en->json + sizeof(head) - 1, en->len - (sizeof(head) - 1));
}

static int emit_entry(void *ctx, const struct store_audit_entry *en)
{
	struct emit *m = ctx;

	buf_addf(m->out, "%s{\"fullUrl\":\"%s/AuditEvent/%" PRId64 "\",\"resource\":", m->n++ ? "," : "",
		 m->base, en->seq);
	entry_resource(m->out, en);
	buf_addstr(m->out, ",\"search\":{\"mode\":\"match\"}}");
	return 0;
}

static int emit_one(void *ctx, const struct store_audit_entry *en)
{
	entry_resource(ctx, en);
	return 0;
}

static int bad(struct fhir_resp *resp, const char *name, const char *why)
{
	struct err e = ERR_INIT;

	err_set(&e, ERR_INVALID, "search parameter '%s': %s", name, why);
	fhir_resp_error(resp, &e);
	return FHIR_DONE;
}

/* date=[prefix]value on the entry's recorded time. */
static int date_param(const char *v, struct store_audit_q *q)
{
	struct time_val tv;
	const char *p = v;
	int op = 0; /* 0 eq, 1 ge, 2 gt, 3 le, 4 lt */

	static const char *const pre[] = { "eq", "ge", "gt", "le", "lt" };
	for (int i = 0; i < 5; i++)
		if (strncmp(v, pre[i], 2) == 0 && v[2] >= '0' && v[2] <= '9') {
			op = i;
			p = v + 2;
		}
	if (time_parse(p, strlen(p), TIME_DATETIME, &tv) < 0)
		return -1;
	switch (op) {
	case 0: q->from_ms = tv.lo_ms > q->from_ms ? tv.lo_ms : q->from_ms;
		q->to_ms = tv.hi_ms < q->to_ms ? tv.hi_ms : q->to_ms; break;
	case 1: q->from_ms = tv.lo_ms > q->from_ms ? tv.lo_ms : q->from_ms; break;
	case 2: q->from_ms = tv.hi_ms > q->from_ms ? tv.hi_ms : q->from_ms; break;
	case 3: q->to_ms = tv.hi_ms < q->to_ms ? tv.hi_ms : q->to_ms; break;
	default: q->to_ms = tv.lo_ms < q->to_ms ? tv.lo_ms : q->to_ms; break;
	}
	return 0;
}

int fhir_auditlog(const struct fhir_config *cfg, struct fhir_req *req, struct fhir_resp *resp)
{
	struct store_audit_q q;
	struct err e = ERR_INIT;
	struct emit m;
	struct buf self = BUF_INIT(0);
	bool more = false;
	const char *patient = NULL;
	int64_t last_seq = 0;

	resp->status = 200;
	/* read: GET /AuditEvent/[seq] */
	if (req->interaction == FHIR_READ) {
		char *end;
		long long seq = strtoll(req->id, &end, 10);
		if (*end || seq <= 0 ||
		    store_audit_get(cfg->store, seq, emit_one, &resp->body, &e) < 0) {
			if (!e.code)
				err_set(&e, ERR_NOT_FOUND, "no such AuditEvent");
			fhir_resp_error(resp, &e);
		}
		return FHIR_DONE;
	}
	memset(&q, 0, sizeof(q));
	q.from_ms = INT64_MIN;
	q.to_ms = INT64_MAX;
	q.count = AUDIT_DEFAULT_COUNT;
	if (req->interaction == FHIR_EVERYTHING) /* $access-log: the patient of the URL */
		patient = req->id;
	for (size_t i = 0; i < req->n_params; i++) {
		const char *n = req->params[i].name, *v = req->params[i].value;
		if (strcmp(n, "patient") == 0 || strcmp(n, "entity") == 0) {
			if (strncmp(v, "Patient/", 8) == 0)
				v += 8;
			if (!id_valid(v, strlen(v)))
				return bad(resp, n, "a Patient id or Patient/id");
			if (patient && strcmp(patient, v) != 0)
				return bad(resp, n, "one patient at a time");
			patient = v;
		} else if (strcmp(n, "agent") == 0 || strcmp(n, "altid") == 0) {
			const char *bar = strchr(v, '|');
			q.agent = bar ? bar + 1 : v;
			if (!*q.agent)
				return bad(resp, n, "a user name (or urn:chartkeep:user|name)");
		} else if (strcmp(n, "date") == 0) {
			if (date_param(v, &q) < 0)
				return bad(resp, n, "a date or dateTime with an optional prefix eq, ge, gt, le or lt");
		} else if (strcmp(n, "_count") == 0) {
			char *end;
			long c = strtol(v, &end, 10);
			if (*end || c < 0)
				return bad(resp, n, "a whole number");
			q.count = c > AUDIT_MAX_COUNT ? AUDIT_MAX_COUNT : (size_t)c;
		} else if (strcmp(n, "_cursor") == 0) {
			char *end;
			long long c = strtoll(v, &end, 10);
			if (*end || c <= 0)
				return bad(resp, n, "not a cursor this server made");
			q.before_seq = c;
		} else if (strcmp(n, "_format") != 0 && strcmp(n, "_pretty") != 0) {
			return bad(resp, n, "not supported here: patient, agent, date, _count");
		}
		if (strcmp(n, "_cursor") != 0) {
			if (self.len)
				buf_addch(&self, '&');
			url_encode(&self, n);
			buf_addch(&self, '=');
			url_encode(&self, req->params[i].value);
		}
	}
	q.patient = patient;
	m.out = &resp->body;
	m.base = req->base;
	m.n = 0;
	buf_addstr(&resp->body, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[");
	if (q.count && store_audit_search(cfg->store, &q, emit_entry, &m, &more, &e) < 0) {
		buf_release(&self);
		buf_reset(&resp->body);
		fhir_resp_error(resp, &e);
		return FHIR_DONE;
	}
	buf_addstr(&resp->body, "],\"link\":[{\"relation\":\"self\",\"url\":\"");
	{
		/* the newest first: the next page starts below this page's last */
		const char *p = resp->body.data;
		const char *last = NULL, *k = p;
		while ((k = strstr(k, "\"fullUrl\":\"")) != NULL)
			last = k++;
		if (last) {
			const char *slash = strstr(last, "/AuditEvent/");
			if (slash)
				last_seq = strtoll(slash + 12, NULL, 10);
		}
	}
	{
		char path[200];
		snprintf(path, sizeof(path), "%s%s%s",
			 req->interaction == FHIR_EVERYTHING ? "/Patient/" : "/AuditEvent",
			 req->interaction == FHIR_EVERYTHING ? req->id : "",
			 req->interaction == FHIR_EVERYTHING ? "/$access-log" : "");
		buf_addf(&resp->body, "%s%s%s%s\"}", req->base, path, self.len ? "?" : "", buf_cstr(&self));
		if (more && last_seq > 0)
			buf_addf(&resp->body, ",{\"relation\":\"next\",\"url\":\"%s%s?%s%s_cursor=%" PRId64 "\"}",
				 req->base, path, buf_cstr(&self), self.len ? "&" : "", last_seq);
	}
	buf_addstr(&resp->body, "]}");
	buf_release(&self);
	return resp->body.failed ? (err_set(&e, ERR_NOMEM, "out of memory"), fhir_resp_error(resp, &e),
				    FHIR_DONE)
				 : FHIR_DONE;
}
