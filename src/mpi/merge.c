/* merge.c - Patient merge and unmerge (see mpi.h).
 *
 * A merge is planned from what is current (the two Patients, and every
 * resource that the reference index says points at the source), turned into
 * one atomic transaction whose every update carries If-Match on the version
 * it was planned from, and committed with its audit entry.  If anything
 * changed in between, the store refuses the whole transaction (412) and the
 * merge is planned again from the new state, a few times at most.
 *
 * Provenance and AuditEvent are records of what happened: their references
 * to the source never move. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "mpi/mpi.h"
#include "mpi/mpi_int.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define MERGE_TRIES 3

/* One resource the operation rewrites. */
struct change {
	char type[64];
	char id[ID_MAX + 1];
	int64_t vid;             /* the current version: If-Match */
	json_object *doc;        /* the new content (owned) */
	struct fhir_prepared prep;
	bool answer;             /* a review Task completed, not a reference moved */
};

struct changes {
	struct change *v;
	size_t n, cap;
};

static void changes_release(struct changes *c)
{
	for (size_t i = 0; i < c->n; i++) {
		json_object_put(c->v[i].doc);
		fhir_prepared_release(&c->v[i].prep);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Adds a change (taking doc); NULL when out of memory (doc is freed). */
static struct change *changes_add(struct changes *c, const char *type, const char *id, int64_t vid,
				  json_object *doc)
{
	struct change *ch;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct change *nv = realloc(c->v, ncap * sizeof(*nv));
		if (!nv) {
			json_object_put(doc);
			return NULL;
		}
		c->v = nv;
		c->cap = ncap;
	}
	ch = &c->v[c->n++];
	memset(ch, 0, sizeof(*ch));
	snprintf(ch->type, sizeof(ch->type), "%s", type);
	snprintf(ch->id, sizeof(ch->id), "%s", id);
	ch->vid = vid;
	ch->doc = doc;
	fhir_prepared_init(&ch->prep);
	return ch;
}

/* ---- references ---- */

/* Is ref a reference to Patient/id: "Patient/id", or an absolute URL
 * ending in "/Patient/id"?  *prefix_len: the length of the base before
 * "Patient/" (0 for a relative one). */
static bool ref_is(const char *ref, const char *id, size_t *prefix_len)
{
	size_t n = strlen(ref), k = strlen(id);
	const size_t pl = sizeof("Patient/") - 1;

	if (n < pl + k || strcmp(ref + n - k, id) != 0 || memcmp(ref + n - k - pl, "Patient/", pl) != 0)
		return false;
	*prefix_len = n - k - pl;
	if (*prefix_len == 0)
		return true;
	/* absolute: "scheme://host/.../Patient/id" */
	return ref[*prefix_len - 1] == '/' && strstr(ref, "://") != NULL &&
	       strstr(ref, "://") < ref + *prefix_len;
}

/* Rewrite every Reference.reference to Patient/from in o to Patient/to
 * (keeping an absolute reference's base).  Returns how many changed. */
static size_t refs_move(json_object *o, const char *from, const char *to)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			n += refs_move(json_object_array_get_idx(o, i), from, to);
		return n;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach(o, key, val) {
		size_t pre;
		if (strcmp(key, "reference") == 0 && json_object_is_type(val, json_type_string)) {
			const char *s = json_object_get_string(val);
			if (ref_is(s, from, &pre)) {
				struct buf b = BUF_INIT(0);
				buf_add(&b, s, pre);
				buf_addf(&b, "Patient/%s", to);
				json_object_set_string(val, buf_cstr(&b));
				buf_release(&b);
				n++;
			}
		} else {
			n += refs_move(val, from, to);
		}
	}
	return n;
}

/* ---- Patient.link ---- */

/* The first link of type whose other is a Patient: its id into other. */
static bool link_find(json_object *pat, const char *type, char *other, size_t cap)
{
	json_object *links = json_get_arr(pat, "link");

	for (size_t i = 0; links && i < json_object_array_length(links); i++) {
		json_object *l = json_object_array_get_idx(links, i);
		const char *ref = json_get_str(json_get_obj(l, "other"), "reference");
		const char *p;
		if (!json_is_str(json_get(l, "type"), type) || !ref)
			continue;
		p = strstr(ref, "Patient/");
		if (!p || (p != ref && p[-1] != '/'))
			continue;
		snprintf(other, cap, "%s", p + 8);
		return true;
	}
	return false;
}

static bool link_to(json_object *pat, const char *type, const char *id)
{
	json_object *links = json_get_arr(pat, "link");

	for (size_t i = 0; links && i < json_object_array_length(links); i++) {
		json_object *l = json_object_array_get_idx(links, i);
		const char *ref = json_get_str(json_get_obj(l, "other"), "reference");
		size_t pre;
		if (json_is_str(json_get(l, "type"), type) && ref && ref_is(ref, id, &pre))
			return true;
	}
	return false;
}

/* Add link {other: Patient/id, type} unless there is one. */
static void link_add(json_object *pat, const char *type, const char *id)
{
	json_object *links = json_get_arr(pat, "link"), *l, *other;
	char ref[ID_MAX + 16];

	if (link_to(pat, type, id))
		return;
	if (!links) {
		links = json_object_new_array();
		json_object_object_add(pat, "link", links);
	}
	snprintf(ref, sizeof(ref), "Patient/%s", id);
	l = json_object_new_object();
	other = json_object_new_object();
	json_object_object_add(other, "reference", json_object_new_string(ref));
	json_object_object_add(l, "other", other);
	json_object_object_add(l, "type", json_object_new_string(type));
	json_object_array_add(links, l);
}

/* Remove every link {other: Patient/id, type}; the array goes when empty. */
static void link_remove(json_object *pat, const char *type, const char *id)
{
	json_object *links = json_get_arr(pat, "link");
	size_t i = 0;

	while (links && i < json_object_array_length(links)) {
		json_object *l = json_object_array_get_idx(links, i);
		const char *ref = json_get_str(json_get_obj(l, "other"), "reference");
		size_t pre;
		if (json_is_str(json_get(l, "type"), type) && ref && ref_is(ref, id, &pre))
			json_object_array_del_idx(links, i, 1);
		else
			i++;
	}
	if (links && json_object_array_length(links) == 0)
		json_object_object_del(pat, "link");
}

void mpi_replaced_by(const char *json, size_t len, bool *merged, char *into, size_t cap)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, 0, &e);

	*merged = false;
	if (cap)
		into[0] = '\0';
	if (!o)
		return;
	*merged = link_find(o, "replaced-by", into, cap);
	json_object_put(o);
}

/* ---- reading ---- */

/* The current Patient/id, parsed.  role names it in errors. */
static json_object *patient_read(const struct fhir_config *cfg, const char *id, const char *role,
				 int64_t *vid, struct err *e)
{
	struct store_version v;
	json_object *o = NULL;

	memset(&v, 0, sizeof(v));
	if (!id || !id_valid(id, strlen(id))) {
		err_set(e, ERR_INVALID, "%s: a Patient id is expected", role);
		return NULL;
	}
	if (store_read(cfg->store, "Patient", id, &v, e) < 0) {
		if (e->code == ERR_NOT_FOUND)
			err_set(e, ERR_NOT_FOUND, "%s: Patient/%s is not known", role, id);
		else if (e->code == ERR_GONE)
			err_set(e, ERR_GONE, "%s: Patient/%s is deleted", role, id);
		goto out;
	}
	o = json_parse_buf(v.json, v.len, 0, e);
	*vid = v.vid;
out:
	store_version_release(&v);
	return o;
}

struct rkey_ctx {
	int64_t rkey;
};

static int rkey_hit(void *ctx, const struct store_hit *h)
{
	((struct rkey_ctx *)ctx)->rkey = h->rkey;
	return 1;
}

/* The store's row key of Patient/id (0 if none). */
static int patient_rkey(const struct fhir_config *cfg, const char *id, int64_t *rkey, struct err *e)
{
	struct sq_node n;
	struct store_query q;
	struct rkey_ctx c = { 0 };
	bool more = false;

	memset(&n, 0, sizeof(n));
	memset(&q, 0, sizeof(q));
	n.kind = SQ_ID;
	n.s1 = id;
	q.type = "Patient";
	q.where = &n;
	q.count = 1;
	if (store_search(cfg->store, &q, rkey_hit, &c, &more, NULL, e) < 0)
		return -1;
	*rkey = c.rkey;
	return 0;
}

/* Resources that refer to Patient/from, to be moved to Patient/to. */
struct gather {
	struct changes *c;
	const char *from, *to;
	const char *skip1, *skip2;  /* Patient ids handled apart */
	struct err *e;
	bool failed;
	size_t answered;            /* review Tasks of the pair completed */
};

static bool is_record_of_events(const char *type)
{
	return strcmp(type, "Provenance") == 0 || strcmp(type, "AuditEvent") == 0;
}

/* A review Task is a record of a question about two patients: it does not
 * move.  One about the two being merged, still open, is answered: completed,
 * duplicate. */
static int review_hit(struct gather *g, const struct store_hit *h)
{
	json_object *o = json_parse_buf(h->v.json, h->v.len, 0, g->e), *bs, *cs, *c;
	char a[ID_MAX + 1], b[ID_MAX + 1];
	const char *st;

	if (!o)
		return -1;
	for (size_t i = 0; i < g->c->n; i++)
		if (strcmp(g->c->v[i].type, "Task") == 0 && strcmp(g->c->v[i].id, h->v.id) == 0) {
			json_object_put(o); /* found from both patients */
			return 0;
		}
	st = json_get_str(o, "status");
	if (mpi_review_pair(o, a, b, sizeof(a)) < 0 || (st && (strcmp(st, "completed") == 0 ||
							       strcmp(st, "cancelled") == 0)) ||
	    !((strcmp(a, g->from) == 0 && strcmp(b, g->to) == 0) ||
	      (strcmp(a, g->to) == 0 && strcmp(b, g->from) == 0))) {
		json_object_put(o);
		return 0;
	}
	json_object_object_add(o, "status", json_object_new_string("completed"));
	bs = json_object_new_object();
	cs = json_object_new_array();
	c = json_object_new_object();
	json_object_object_add(c, "system", json_object_new_string(MPI_CODE_SYSTEM));
	json_object_object_add(c, "code", json_object_new_string("duplicate"));
	json_object_array_add(cs, c);
	json_object_object_add(bs, "coding", cs);
	json_object_object_add(o, "businessStatus", bs);
	if (!changes_add(g->c, h->v.type, h->v.id, h->v.vid, o))
		return err_set(g->e, ERR_NOMEM, "out of memory");
	g->c->v[g->c->n - 1].answer = true;
	g->answered++;
	return 0;
}

static int gather_hit(void *ctx, const struct store_hit *h)
{
	struct gather *g = ctx;
	json_object *o;

	if (is_record_of_events(h->v.type))
		return 0;
	if (strcmp(h->v.type, "Task") == 0 && mpi_is_review_task(h->v.json, h->v.len))
		return review_hit(g, h);
	if (strcmp(h->v.type, "Patient") == 0 &&
	    (strcmp(h->v.id, g->skip1) == 0 || strcmp(h->v.id, g->skip2) == 0))
		return 0;
	o = json_parse_buf(h->v.json, h->v.len, 0, g->e);
	if (!o)
		return -1;
	if (refs_move(o, g->from, g->to) == 0) {
		json_object_put(o); /* indexed through a form we do not rewrite */
		return 0;
	}
	if (!changes_add(g->c, h->v.type, h->v.id, h->v.vid, o)) {
		err_set(g->e, ERR_NOMEM, "out of memory");
		return -1;
	}
	return 0;
}

static int gather_review_hit(void *ctx, const struct store_hit *h)
{
	if (strcmp(h->v.type, "Task") == 0 && mpi_is_review_task(h->v.json, h->v.len))
		return review_hit(ctx, h);
	return 0;
}

/* Add to c every current resource that refers to Patient/from (but the two
 * Patients themselves), its references moved to Patient/to. */
static int gather_refs(const struct fhir_config *cfg, struct changes *c, const char *from, const char *to,
		       size_t *answered, struct err *e)
{
	struct gather g = { c, from, to, from, to, e, false, 0 };
	int64_t rkey = 0;

	if (patient_rkey(cfg, from, &rkey, e) < 0)
		return -1;
	if (!rkey)
		return 0;
	if (store_search_refs(cfg->store, &rkey, 1, 0, NULL, true, gather_hit, &g, e) < 0)
		return -1;
	/* a review Task names its pair by focus (the smaller id) and an input
	 * the index does not keep: one about the pair may refer to the target only */
	if (patient_rkey(cfg, to, &rkey, e) < 0)
		return -1;
	if (rkey && store_search_refs(cfg->store, &rkey, 1, 0, NULL, true, gather_review_hit, &g, e) < 0)
		return -1;
	*answered = g.answered;
	return 0;
}

/* ---- writing ---- */

static void agent_json(const struct store_principal *who, struct buf *b)
{
	buf_addstr(b, "\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
		      "CodeSystem/provenance-participant-type\",\"code\":\"performer\"}]},\"who\":{");
	if (who && who->practitioner[0]) {
		buf_addstr(b, "\"reference\":\"");
		buf_add_json_str(b, who->practitioner, strlen(who->practitioner));
		buf_addstr(b, "\",");
	}
	buf_addstr(b, "\"display\":\"");
	if (who && who->username[0])
		buf_add_json_str(b, who->username, strlen(who->username));
	else
		buf_addstr(b, "chartkeep");
	buf_addstr(b, "\"}}]");
}

/* The Provenance of an operation: its target lists the version each change
 * will have (the store numbers versions one by one, and each update is
 * If-Match on the current one). */
static json_object *provenance(const struct changes *c, const char *activity, const char *display,
			       const struct store_principal *who, const char *source_id,
			       const char *undone, struct err *e)
{
	struct buf b = BUF_INIT(0);
	char now[TIME_INSTANT_MAX];
	json_object *o;

	time_format_instant(time_now_ms(), now);
	buf_addstr(&b, "{\"resourceType\":\"Provenance\",\"target\":[");
	for (size_t i = 0; i < c->n; i++)
		buf_addf(&b, "%s{\"reference\":\"%s/%s/_history/%" PRId64 "\"}", i ? "," : "",
			 c->v[i].type, c->v[i].id, c->v[i].vid + 1);
	buf_addf(&b, "],\"recorded\":\"%s\",\"activity\":{\"coding\":[{\"system\":\"" MPI_LIFECYCLE_SYSTEM
		     "\",\"code\":\"%s\",\"display\":\"%s\"}]},", now, activity, display);
	agent_json(who, &b);
	buf_addf(&b, ",\"entity\":[{\"role\":\"source\",\"what\":{\"reference\":\"Patient/%s\"}}", source_id);
	if (undone)
		buf_addf(&b, ",{\"role\":\"revision\",\"what\":{\"reference\":\"Provenance/%s\"}}", undone);
	buf_addstr(&b, "]}");
	if (b.failed) {
		buf_release(&b);
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	o = json_parse_buf(b.data, b.len, 0, e);
	buf_release(&b);
	return o;
}

/* A Parameters answer: outcome and the result Patient. */
static void answer(struct buf *out, const char *what, const char *result_json, size_t result_len)
{
	struct fhir_issues iss;

	if (!out)
		return;
	fhir_issues_init(&iss);
	fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL, "%s", what);
	buf_addstr(out, "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"outcome\",\"resource\":");
	fhir_outcome_write(&iss, out);
	buf_addstr(out, "}");
	if (result_json) {
		buf_addstr(out, ",{\"name\":\"result\",\"resource\":");
		buf_add(out, result_json, result_len);
		buf_addstr(out, "}");
	}
	buf_addstr(out, "]}");
}

/* Commit the changes (the first is the target Patient, whose stored JSON
 * comes back in *result) and the Provenance, atomically, with the audit
 * entry.  Returns 0, or -1 with e (ERR_PRECONDITION: something changed). */
static int commit(const struct fhir_config *cfg, struct changes *c, json_object *prov,
		  const struct store_principal *who, struct audit_info *ai, const char *op_name,
		  char **result, size_t *result_len, char *prov_id, bool *audited, struct err *e)
{
	struct fhir_prepared pp;
	struct store_op *ops = calloc(c->n + 1, sizeof(*ops));
	struct store_txn t;
	struct audit_info local;
	int rc = -1;

	fhir_prepared_init(&pp);
	if (!ops) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct change *ch = &c->v[i];
		if (fhir_prepare(cfg->params, ch->doc, ch->id, &ch->prep, e) < 0)
			goto out;
		fhir_prepared_op(&ch->prep, &ops[i]);
		/* vid 0: a resource the operation creates (the auto-link's Task) */
		ops[i].kind = ch->vid ? STORE_UPDATE : STORE_CREATE;
		ops[i].method = ch->vid ? STORE_PUT : STORE_POST;
		ops[i].if_match = ch->vid;
		ops[i].want_json = i == 0;
	}
	id_new(prov_id);
	if (fhir_prepare(cfg->params, prov, prov_id, &pp, e) < 0)
		goto out;
	fhir_prepared_op(&pp, &ops[c->n]);
	ops[c->n].kind = STORE_CREATE;
	ops[c->n].method = STORE_POST;
	if (!ai) {
		memset(&local, 0, sizeof(local));
		local.who = who;
		local.action = PA_UPDATE;
		local.interaction = op_name;
		local.source = "-";
		ai = &local;
	}
	memset(&t, 0, sizeof(t));
	t.ops = ops;
	t.n = c->n + 1;
	t.atomic = true;
	t.audit = audit_txn_entry;
	t.audit_arg = ai;
	*audited = true;
	if (store_commit(cfg->store, &t) != 0) {
		*e = t.failed_op < t.n && ops[t.failed_op].err.code ? ops[t.failed_op].err : t.err;
		if (!e->code)
			err_set(e, ERR_DB, "the changes could not be written");
		goto out;
	}
	fhir_after_commit(cfg, &t);
	*result = ops[0].json;
	*result_len = ops[0].json_len;
	ops[0].json = NULL;
	rc = 0;
out:
	if (ops)
		for (size_t i = 0; i <= c->n; i++)
			free(ops[i].json);
	free(ops);
	fhir_prepared_release(&pp);
	return rc;
}

/* ---- merge ---- */

static int merge_once(const struct fhir_config *cfg, const struct store_principal *who,
		      struct audit_info *ai, const char *src, const char *tgt, const char *result_json,
		      bool preview, struct buf *out_result, struct mpi_merge_out *out, struct err *e)
{
	struct changes c = { 0 };
	json_object *s = NULL, *t = NULL, *prov = NULL;
	int64_t svid = 0, tvid = 0;
	char other[ID_MAX + 1];
	char *stored = NULL;
	size_t stored_len = 0;
	struct buf what = BUF_INIT(0);
	size_t answered = 0;
	int rc = -1;

	s = patient_read(cfg, src, "source-patient", &svid, e);
	if (!s)
		goto out;
	t = patient_read(cfg, tgt, "target-patient", &tvid, e);
	if (!t)
		goto out;
	if (link_find(s, "replaced-by", other, sizeof(other))) {
		err_set(e, ERR_CONFLICT, "source-patient: Patient/%s is already merged into Patient/%s", src,
			other);
		goto out;
	}
	if (link_find(t, "replaced-by", other, sizeof(other))) {
		err_set(e, ERR_CONFLICT,
			"target-patient: Patient/%s is itself merged into Patient/%s; merge into that one",
			tgt, other);
		goto out;
	}
	if (result_json) {
		struct fhir_issues iss;
		const char *rid;
		json_object_put(t);
		t = json_parse_buf(result_json, strlen(result_json), cfg->max_depth, e);
		if (!t) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", e->msg); /* not formatted into itself */
			err_set(e, ERR_INVALID, "result-patient: %s", why);
			goto out;
		}
		fhir_issues_init(&iss);
		if (fhir_validate(t, "Patient", &iss) > 0) {
			err_set(e, ERR_INVALID, "result-patient: %s", iss.v[0].msg);
			err_expr(e, iss.v[0].expr);
			goto out;
		}
		rid = json_get_str(t, "id");
		if (!rid || strcmp(rid, tgt) != 0) {
			err_set(e, ERR_INVALID, "result-patient: its id must be the target-patient's (%s)", tgt);
			goto out;
		}
		if (link_find(t, "replaced-by", other, sizeof(other))) {
			err_set(e, ERR_INVALID, "result-patient: the target of a merge cannot be replaced-by "
						"another patient");
			goto out;
		}
	}
	/* an auto-link between the two becomes the merge's links */
	link_remove(t, "seealso", src);
	link_remove(s, "seealso", tgt);
	link_add(t, "replaces", src);
	json_object_object_add(s, "active", json_object_new_boolean(0));
	link_add(s, "replaced-by", tgt);
	if (!changes_add(&c, "Patient", tgt, tvid, t) || !changes_add(&c, "Patient", src, svid, s)) {
		t = s = NULL;
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	t = s = NULL;
	if (gather_refs(cfg, &c, src, tgt, &answered, e) < 0)
		goto out;
	out->moved = c.n - 2 - answered;
	buf_addf(&what, "%s Patient/%s into Patient/%s: %zu resource%s referring to the source %s to "
			"the target",
		 preview ? "preview: would merge" : "merged", src, tgt, out->moved,
		 out->moved == 1 ? "" : "s", preview ? "would move" : "moved");
	{
		size_t listed = 0;
		for (size_t i = 2; i < c.n && listed < 10; i++)
			if (!c.v[i].answer)
				buf_addf(&what, "%s%s/%s", listed++ ? ", " : " (", c.v[i].type, c.v[i].id);
		if (out->moved > listed)
			buf_addf(&what, ", and %zu more", out->moved - listed);
		if (listed)
			buf_addch(&what, ')');
	}
	if (answered)
		buf_addf(&what, "; %zu review item%s for the pair completed", answered, answered == 1 ? "" : "s");
	if (preview) {
		size_t n;
		const char *j = json_dump_str(c.v[0].doc, &n);
		answer(out_result, buf_cstr(&what), j, n);
		rc = 0;
		goto out;
	}
	prov = provenance(&c, "merge", "Merge Record Lifecycle Event", who, src, NULL, e);
	if (!prov)
		goto out;
	if (commit(cfg, &c, prov, who, ai, "$merge", &stored, &stored_len, out->provenance, &out->audited,
		   e) < 0)
		goto out;
	answer(out_result, buf_cstr(&what), stored, stored_len);
	log_info("event=mpi_merge source=%s target=%s moved=%zu provenance=%s", src, tgt, out->moved,
		 out->provenance);
	rc = 0;
out:
	json_object_put(s);
	json_object_put(t);
	json_object_put(prov);
	changes_release(&c);
	buf_release(&what);
	free(stored);
	return rc;
}

int mpi_merge(const struct fhir_config *cfg, const struct store_principal *who,
	      struct audit_info *ai, const char *source_id, const char *target_id,
	      const char *result_json, bool preview, struct buf *out_result,
	      struct mpi_merge_out *out, struct err *e)
{
	struct mpi_merge_out local;

	if (!out)
		out = &local;
	memset(out, 0, sizeof(*out));
	if (source_id && target_id && strcmp(source_id, target_id) == 0)
		return err_set(e, ERR_INVALID, "source-patient and target-patient are the same patient");
	for (int i = 0; i < MERGE_TRIES; i++) {
		size_t mark = out_result ? out_result->len : 0;
		err_clear(e);
		if (merge_once(cfg, who, ai, source_id, target_id, result_json, preview, out_result, out,
			       e) == 0)
			return 0;
		if (out_result)
			buf_truncate(out_result, mark);
		if (e->code != ERR_PRECONDITION)
			return -1;
		/* a record changed under us: the failed commit was audited; plan again */
	}
	return err_set(e, ERR_CONFLICT, "the records kept changing while they were being merged; try again");
}

/* ---- unmerge ---- */

/* The latest merge Provenance of src into tgt. */
struct find_merge {
	const char *src, *tgt;
	int64_t best_vkey;
	char id[ID_MAX + 1];
	json_object *doc;
	struct err *e;
};

static bool prov_is_merge_of(json_object *p, const char *src, const char *tgt)
{
	json_object *codings = json_get_arr(json_get_obj(p, "activity"), "coding");
	json_object *ents = json_get_arr(p, "entity"), *tg = json_get_arr(p, "target");
	bool merge = false, ent = false, target = false;
	char want[ID_MAX + 32];
	size_t wl = (size_t)snprintf(want, sizeof(want), "Patient/%s/_history/", tgt);

	for (size_t i = 0; codings && i < json_object_array_length(codings); i++) {
		json_object *c = json_object_array_get_idx(codings, i);
		if (json_is_str(json_get(c, "system"), MPI_LIFECYCLE_SYSTEM) &&
		    json_is_str(json_get(c, "code"), "merge"))
			merge = true;
	}
	for (size_t i = 0; ents && i < json_object_array_length(ents); i++) {
		const char *r = json_get_str(json_get_obj(json_object_array_get_idx(ents, i), "what"),
					     "reference");
		size_t pre;
		if (r && ref_is(r, src, &pre) && pre == 0)
			ent = true;
	}
	for (size_t i = 0; tg && i < json_object_array_length(tg); i++) {
		const char *r = json_get_str(json_object_array_get_idx(tg, i), "reference");
		if (r && strncmp(r, want, wl) == 0)
			target = true;
	}
	return merge && ent && target;
}

static int find_merge_hit(void *ctx, const struct store_hit *h)
{
	struct find_merge *f = ctx;
	json_object *o;

	if (h->v.vkey < f->best_vkey)
		return 0;
	o = json_parse_buf(h->v.json, h->v.len, 0, f->e);
	if (!o)
		return -1;
	if (!prov_is_merge_of(o, f->src, f->tgt)) {
		json_object_put(o);
		return 0;
	}
	json_object_put(f->doc);
	f->doc = o;
	f->best_vkey = h->v.vkey;
	snprintf(f->id, sizeof(f->id), "%s", h->v.id);
	return 0;
}

/* "Type/id/_history/vid" into its parts. */
static bool versioned_ref(const char *r, char *type, size_t tcap, char *id, size_t icap, int64_t *vid)
{
	const char *s1 = strchr(r, '/'), *h;
	char *end;
	long long v;

	if (!s1 || (size_t)(s1 - r) >= tcap)
		return false;
	h = strstr(s1 + 1, "/_history/");
	if (!h || (size_t)(h - s1 - 1) >= icap || h == s1 + 1)
		return false;
	v = strtoll(h + 10, &end, 10);
	if (*end || v < 2)
		return false;
	memcpy(type, r, (size_t)(s1 - r));
	type[s1 - r] = '\0';
	memcpy(id, s1 + 1, (size_t)(h - s1 - 1));
	id[h - s1 - 1] = '\0';
	*vid = v;
	return true;
}

/* What a resource the merge wrote becomes: its version from before the
 * merge if it is unchanged since, else its current version with fix()
 * applied.  *skip: deleted since (nothing to restore). */
static json_object *undo_one(const struct fhir_config *cfg, const char *type, const char *id,
			     int64_t merge_vid, int64_t *cur_vid, bool *skip, struct err *e)
{
	struct store_version v;
	json_object *o = NULL;

	memset(&v, 0, sizeof(v));
	*skip = false;
	if (store_read(cfg->store, type, id, &v, e) < 0) {
		if (e->code == ERR_GONE || e->code == ERR_NOT_FOUND) {
			err_clear(e);
			*skip = true;
		}
		goto out;
	}
	*cur_vid = v.vid;
	if (v.vid == merge_vid) {
		store_version_release(&v);
		memset(&v, 0, sizeof(v));
		if (store_vread(cfg->store, type, id, merge_vid - 1, &v, e) < 0 || !v.json) {
			err_set(e, ERR_CONFLICT, "%s/%s: its version from before the merge cannot be read",
				type, id);
			goto out;
		}
	}
	o = json_parse_buf(v.json, v.len, 0, e);
out:
	store_version_release(&v);
	return o;
}

static int unmerge_once(const struct fhir_config *cfg, const struct store_principal *who,
			struct audit_info *ai, const char *src, const char *tgt, bool preview,
			struct buf *out_result, struct mpi_merge_out *out, struct err *e)
{
	struct changes c = { 0 };
	struct find_merge f;
	json_object *s = NULL, *t = NULL, *prov = NULL, *tg;
	int64_t svid = 0, tvid = 0, rkey = 0;
	char other[ID_MAX + 1];
	char *stored = NULL;
	size_t stored_len = 0;
	struct buf what = BUF_INIT(0);
	int rc = -1;

	memset(&f, 0, sizeof(f));
	s = patient_read(cfg, src, "source-patient", &svid, e);
	if (!s)
		goto out;
	t = patient_read(cfg, tgt, "target-patient", &tvid, e);
	if (!t)
		goto out;
	json_object_put(s);
	json_object_put(t);
	s = t = NULL;
	{
		/* reread below as the merge left them; here only: is it merged? */
		struct store_version v;
		bool merged;
		memset(&v, 0, sizeof(v));
		if (store_read(cfg->store, "Patient", src, &v, e) < 0)
			goto out;
		mpi_replaced_by(v.json, v.len, &merged, other, sizeof(other));
		store_version_release(&v);
		if (!merged) {
			err_set(e, ERR_CONFLICT, "source-patient: Patient/%s is not merged into another patient",
				src);
			goto out;
		}
		if (strcmp(other, tgt) != 0) {
			err_set(e, ERR_CONFLICT, "source-patient: Patient/%s is merged into Patient/%s, not "
						 "into Patient/%s", src, other, tgt);
			goto out;
		}
	}
	f.src = src;
	f.tgt = tgt;
	f.e = e;
	if (patient_rkey(cfg, src, &rkey, e) < 0 ||
	    store_search_refs(cfg->store, &rkey, 1, 0, "Provenance", true, find_merge_hit, &f, e) < 0)
		goto out;
	if (!f.doc) {
		err_set(e, ERR_CONFLICT, "no record of the merge of Patient/%s into Patient/%s was found; "
					 "it cannot be undone", src, tgt);
		goto out;
	}
	tg = json_get_arr(f.doc, "target");
	/* the two Patients first: the target's stored JSON is the answer */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; tg && i < json_object_array_length(tg); i++) {
			const char *r = json_get_str(json_object_array_get_idx(tg, i), "reference");
			char type[64], id[ID_MAX + 1];
			int64_t mvid, cur = 0;
			bool skip, is_t, is_s;
			json_object *o;
			if (!r || !versioned_ref(r, type, sizeof(type), id, sizeof(id), &mvid))
				continue;
			is_t = strcmp(type, "Patient") == 0 && strcmp(id, tgt) == 0;
			is_s = strcmp(type, "Patient") == 0 && strcmp(id, src) == 0;
			if ((pass == 0) != is_t || (pass == 1) != is_s)
				continue;
			o = undo_one(cfg, type, id, mvid, &cur, &skip, e);
			if (!o) {
				if (skip)
					continue;
				goto out;
			}
			if (cur != mvid) {
				/* changed since the merge: undo only what the merge did */
				if (is_t) {
					link_remove(o, "replaces", src);
				} else if (is_s) {
					link_remove(o, "replaced-by", tgt);
					json_object_object_add(o, "active", json_object_new_boolean(1));
				} else if (refs_move(o, tgt, src) == 0) {
					json_object_put(o);
					continue;
				}
			}
			if (!changes_add(&c, type, id, cur, o)) {
				err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
		}
		if (pass == 0 && c.n == 0) {
			err_set(e, ERR_CONFLICT, "the record of the merge does not name the target-patient");
			goto out;
		}
	}
	out->moved = c.n >= 2 ? c.n - 2 : 0;
	buf_addf(&what, "%s Patient/%s from Patient/%s: %zu resource%s %s to the source",
		 preview ? "preview: would unmerge" : "unmerged", src, tgt, out->moved,
		 out->moved == 1 ? "" : "s", preview ? "would refer again" : "refer again");
	if (preview) {
		size_t n;
		const char *j = json_dump_str(c.v[0].doc, &n);
		answer(out_result, buf_cstr(&what), j, n);
		rc = 0;
		goto out;
	}
	prov = provenance(&c, "unmerge", "Unmerge Record Lifecycle Event", who, src, f.id, e);
	if (!prov)
		goto out;
	if (commit(cfg, &c, prov, who, ai, "$unmerge", &stored, &stored_len, out->provenance, &out->audited,
		   e) < 0)
		goto out;
	answer(out_result, buf_cstr(&what), stored, stored_len);
	log_info("event=mpi_unmerge source=%s target=%s moved=%zu provenance=%s", src, tgt, out->moved,
		 out->provenance);
	rc = 0;
out:
	json_object_put(s);
	json_object_put(t);
	json_object_put(prov);
	json_object_put(f.doc);
	changes_release(&c);
	buf_release(&what);
	free(stored);
	return rc;
}

int mpi_unmerge(const struct fhir_config *cfg, const struct store_principal *who,
		struct audit_info *ai, const char *source_id, const char *target_id,
		bool preview, struct buf *out_result, struct mpi_merge_out *out, struct err *e)
{
	struct mpi_merge_out local;

	if (!out)
		out = &local;
	memset(out, 0, sizeof(*out));
	if (source_id && target_id && strcmp(source_id, target_id) == 0)
		return err_set(e, ERR_INVALID, "source-patient and target-patient are the same patient");
	for (int i = 0; i < MERGE_TRIES; i++) {
		size_t mark = out_result ? out_result->len : 0;
		err_clear(e);
		if (unmerge_once(cfg, who, ai, source_id, target_id, preview, out_result, out, e) == 0)
			return 0;
		if (out_result)
			buf_truncate(out_result, mark);
		if (e->code != ERR_PRECONDITION)
			return -1;
	}
	return err_set(e, ERR_CONFLICT, "the records kept changing while they were being unmerged; try again");
}

/* ---- auto-link (mpi_int.h) ----
 *
 * Two records the model links (above the upper threshold, past the twin
 * guards) are linked, not merged: Patient.link {other, type: seealso} on
 * both, so that the chart is found from either, and the review Task that
 * leaves the merge to a person - all in one transaction, as the system
 * principal, with a Provenance (activity link) and an audit entry.  The
 * "not a duplicate" decision on that Task undoes it (activity unlink). */

#define MPI_SYSTEM_USER "chartkeep-mpi"

static int link_once(const struct fhir_config *cfg, const char *a, const char *b, const char *task_json,
		     bool unlink, bool *done, struct err *e)
{
	struct changes c = { 0 };
	struct store_principal who;
	struct audit_info ai;
	json_object *pa = NULL, *pb = NULL, *task = NULL, *prov = NULL;
	int64_t va = 0, vb = 0;
	char other[ID_MAX + 1], tid[ID_MAX + 1], prov_id[ID_MAX + 1];
	char *stored = NULL;
	size_t stored_len = 0;
	bool audited = false, ca, cb;
	int rc = -1;

	*done = false;
	pa = patient_read(cfg, a, "patient", &va, e);
	if (!pa)
		goto out;
	pb = patient_read(cfg, b, "patient", &vb, e);
	if (!pb)
		goto out;
	if (unlink) {
		ca = link_to(pa, "seealso", b);
		cb = link_to(pb, "seealso", a);
		link_remove(pa, "seealso", b);
		link_remove(pb, "seealso", a);
	} else {
		if (link_find(pa, "replaced-by", other, sizeof(other)) ||
		    link_find(pb, "replaced-by", other, sizeof(other))) {
			rc = 0; /* merged since: nothing to link */
			goto out;
		}
		ca = !link_to(pa, "seealso", b);
		cb = !link_to(pb, "seealso", a);
		link_add(pa, "seealso", b);
		link_add(pb, "seealso", a);
	}
	if (!ca && !cb) {
		/* nothing to change; linked already (by another queue, whose Task came
		   with its links, or by a person): no second Task either */
		rc = 0;
		goto out;
	}
	if (ca && !changes_add(&c, "Patient", a, va, pa)) {
		pa = NULL;
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (ca)
		pa = NULL;
	if (cb && !changes_add(&c, "Patient", b, vb, pb)) {
		pb = NULL;
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (cb)
		pb = NULL;
	if (task_json) {
		task = json_parse_buf(task_json, strlen(task_json), 0, e);
		id_new(tid);
		if (!task || !changes_add(&c, "Task", tid, 0, task)) {
			if (task)
				err_set(e, ERR_NOMEM, "out of memory");
			task = NULL;
			goto out;
		}
		task = NULL;
	}
	memset(&who, 0, sizeof(who));
	snprintf(who.username, sizeof(who.username), "%s", MPI_SYSTEM_USER);
	prov = provenance(&c, unlink ? "unlink" : "link",
			  unlink ? "Unlink Record Lifecycle Event" : "Link Record Lifecycle Event", &who, b,
			  NULL, e);
	if (!prov)
		goto out;
	memset(&ai, 0, sizeof(ai));
	ai.username = MPI_SYSTEM_USER;
	ai.action = PA_UPDATE;
	ai.interaction = unlink ? "mpi-unlink" : "mpi-auto-link";
	ai.source = "local";
	if (commit(cfg, &c, prov, &who, &ai, ai.interaction, &stored, &stored_len, prov_id, &audited, e) < 0)
		goto out;
	log_info("event=%s patient_a=%s patient_b=%s provenance=%s", unlink ? "mpi_unlink" : "mpi_auto_link",
		 a, b, prov_id);
	*done = true;
	rc = 0;
out:
	json_object_put(pa);
	json_object_put(pb);
	json_object_put(task);
	json_object_put(prov);
	changes_release(&c);
	free(stored);
	return rc;
}

static int link_tries(const struct fhir_config *cfg, const char *a, const char *b, const char *task_json,
		      bool unlink, bool *done, struct err *e)
{
	*done = false;
	if (strcmp(a, b) == 0)
		return err_set(e, ERR_INVALID, "a patient cannot be linked to itself");
	for (int i = 0; i < MERGE_TRIES; i++) {
		err_clear(e);
		if (link_once(cfg, a, b, task_json, unlink, done, e) == 0)
			return 0;
		if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE) {
			err_clear(e);
			return 0; /* deleted since: nothing to link */
		}
		if (e->code != ERR_PRECONDITION)
			return -1;
	}
	return err_set(e, ERR_CONFLICT, "the records kept changing while they were being %s; try again",
		       unlink ? "unlinked" : "linked");
}

int mpi_link(const struct fhir_config *cfg, const char *a, const char *b, const char *task_json, bool *done,
	     struct err *e)
{
	return link_tries(cfg, a, b, task_json, false, done, e);
}

int mpi_unlink(const struct fhir_config *cfg, const char *a, const char *b, bool *done, struct err *e)
{
	return link_tries(cfg, a, b, NULL, true, done, e);
}

bool mpi_linked(const char *json, size_t len, const char *other)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, 0, &e);
	bool r = o && link_to(o, "seealso", other);

	json_object_put(o);
	return r;
}
