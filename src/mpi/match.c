/* match.c - matching one Patient against the index: $match, and the
 * incremental matching that runs after every Patient write.
 *
 * Candidates are the Patients that share a blocking key with the one
 * matched: one indexed search over the key rows every Patient write leaves
 * in the search index (pid STORE_PID_MPI, see mpi_patient_keys).  Each is
 * compared and scored with the stored model.
 *
 * Incremental matching runs on a worker thread fed by fhir_after_commit
 * (REST, transactions, import, HL7 all pass through it): for each Patient
 * written, a pair at or above the review threshold that is neither queued
 * already nor marked "not a duplicate" becomes a review Task.  A pair above
 * the upper threshold (past the twin guards of mpi_decide) is linked
 * automatically - Patient.link seealso on both, with its review Task at
 * priority "urgent" (mpi_link) - so that either record finds the chart;
 * the merge stays a person's decision.  With auto-link off
 * (mpi_auto_link_set) such a pair is only an urgent review Task.  Task
 * writes come through the same queue: an auto-linked pair decided "not a
 * duplicate" loses its links (mpi_unlink). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "mpi/mpi_int.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define MAX_CANDIDATES 1000

/* Auto-link above the upper threshold: a setting of the process (serve,
 * import), on unless turned off at start-up. */
static atomic_bool auto_link = true;

void mpi_auto_link_set(bool on)
{
	atomic_store(&auto_link, on);
}

bool mpi_auto_link_on(void)
{
	return atomic_load(&auto_link);
}

_Static_assert(MPI_NKEYS == MPI_KEYS_MAX, "one key text per key kind");

struct cand_ctx {
	const struct mpi_rec *q;
	const char *self;          /* the Patient's own id (incremental), or NULL */
	const struct mpi_model *m;
	struct arena *a;
	struct mpi_match_hit *v;
	size_t n, cap;
	bool (*visible)(void *ctx, const char *type, const char *id, const char *json, size_t len);
	void *visible_ctx;
	struct err *e;
};

static int cand_hit(void *ctx, const struct store_hit *h)
{
	struct cand_ctx *c = ctx;
	struct mpi_rec r;
	struct mpi_match_hit *x;
	uint8_t lv[MPI_NCMP];
	double p;

	if (c->self && strcmp(h->v.id, c->self) == 0)
		return 0;
	if (mpi_rec_from_text(h->v.json, h->v.len, h->v.id, c->a, &r) < 0 || r.merged)
		return 0;
	p = mpi_probability(c->m, mpi_score_bounded(c->m, c->q, &r, mpi_min_weight(c->m, c->m->lower), lv));
	if (p < c->m->lower)
		return 0;
	if (c->visible && !c->visible(c->visible_ctx, "Patient", h->v.id, h->v.json, h->v.len))
		return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct mpi_match_hit *nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv)
			return err_set(c->e, ERR_NOMEM, "out of memory");
		c->v = nv;
		c->cap = nc;
	}
	x = &c->v[c->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", h->v.id);
	x->prob = p;
	x->decision = mpi_decide(c->m, p, lv);
	memcpy(x->lv, lv, sizeof(lv));
	x->json = arena_strndup(c->a, h->v.json, h->v.len);
	x->len = h->v.len;
	return 0;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct mpi_match_hit *x = a, *y = b;

	if (x->prob != y->prob)
		return x->prob > y->prob ? -1 : 1;
	return strcmp(x->id, y->id);
}

int mpi_candidates(const struct fhir_config *cfg, const struct mpi_model *m, const struct mpi_rec *q,
		   const char *self, struct arena *a,
		   bool (*visible)(void *, const char *, const char *, const char *, size_t), void *vctx,
		   struct mpi_match_hit **out, size_t *n, struct err *e)
{
	uint64_t k[MPI_NKEYS];
	char text[MPI_NKEYS][MPI_KEY_TEXT];
	struct sq_node kids[MPI_NKEYS], *pk[MPI_NKEYS], any;
	struct store_query sq;
	struct cand_ctx c;
	size_t nk = 0;
	bool more = false;

	*out = NULL;
	*n = 0;
	mpi_keys(q, k);
	for (size_t i = 0; i < MPI_NKEYS; i++) {
		bool dup = false;
		if (!k[i])
			continue;
		for (size_t j = 0; j < i; j++)
			dup |= k[j] == k[i];
		if (dup)
			continue;
		mpi_key_text(k[i], text[nk]);
		memset(&kids[nk], 0, sizeof(kids[nk]));
		kids[nk].kind = SQ_IX;
		kids[nk].ix = SIX_TOKEN;
		kids[nk].op = SQO_EQ;
		kids[nk].pid = STORE_PID_MPI;
		kids[nk].s1 = MPI_KEY_SYSTEM;
		kids[nk].s2 = text[nk];
		pk[nk] = &kids[nk];
		nk++;
	}
	if (!nk)
		return 0;
	memset(&any, 0, sizeof(any));
	any.kind = SQ_OR;
	any.kids = pk;
	any.nkids = nk;
	memset(&sq, 0, sizeof(sq));
	sq.type = "Patient";
	sq.where = nk == 1 ? pk[0] : &any;
	sq.count = MAX_CANDIDATES;
	memset(&c, 0, sizeof(c));
	c.q = q;
	c.self = self;
	c.m = m;
	c.a = a;
	c.visible = visible;
	c.visible_ctx = vctx;
	c.e = e;
	if (store_search(cfg->store, &sq, cand_hit, &c, &more, NULL, e) < 0) {
		free(c.v);
		return -1;
	}
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), hit_cmp);
	*out = c.v;
	*n = c.n;
	return 0;
}

/* ---- $match ---- */

static const char *grade(const struct mpi_model *m, const struct mpi_match_hit *h)
{
	if (h->decision == MPI_LINK)
		return "certain";
	return h->prob >= (m->lower + m->upper) / 2 ? "probable" : "possible";
}

int mpi_match(const struct fhir_config *cfg, json_object *patient, size_t count, bool only_certain,
	      const char *base, bool (*visible)(void *, const char *, const char *, const char *, size_t),
	      void *vctx, struct buf *out, struct err *e)
{
	struct mpi_model m;
	struct mpi_rec q;
	struct arena a;
	struct mpi_match_hit *hits = NULL;
	size_t n = 0, shown = 0;
	int rc = -1;

	arena_init(&a, 0);
	if (mpi_model_load(cfg->store, &m, e) < 0)
		goto out;
	mpi_rec_from_json(patient, "", &a, &q);
	if (mpi_candidates(cfg, &m, &q, NULL, &a, visible, vctx, &hits, &n, e) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!only_certain || hits[i].decision == MPI_LINK)
			shown++;
	if (shown > count)
		shown = count;
	buf_addf(out, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":%zu,\"entry\":[", shown);
	for (size_t i = 0, k = 0; i < n && k < shown; i++) {
		if (only_certain && hits[i].decision != MPI_LINK)
			continue;
		buf_addf(out, "%s{\"fullUrl\":\"%s/Patient/%s\",\"resource\":", k ? "," : "", base ? base : "",
			 hits[i].id);
		buf_add(out, hits[i].json, hits[i].len);
		buf_addf(out, ",\"search\":{\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/"
			      "match-grade\",\"valueCode\":\"%s\"}],\"mode\":\"match\",\"score\":%.4f}}",
			 grade(&m, &hits[i]), hits[i].prob);
		k++;
	}
	buf_addstr(out, "]}");
	rc = out->failed ? err_set(e, ERR_NOMEM, "out of memory") : 0;
out:
	free(hits);
	arena_release(&a);
	return rc;
}

/* ---- incremental matching ---- */

struct incr_item {
	struct incr_item *next;
	bool task;                 /* a Task written (not-duplicate decisions undo auto-links) */
	char id[ID_MAX + 1];
};

struct mpi_incr {
	const struct fhir_config *cfg;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv, idle;
	struct incr_item *head, *tail;
	size_t queued;
	bool stop, busy;
	uint64_t done, tasks, linked, unlinked;
};

/* Is the pair queued (an open review Task) or decided not a duplicate?
 * *undo (may be NULL): an auto-linked pair's Task decided not a duplicate
 * (its links are to go). */
static bool pair_known(const struct fhir_config *cfg, const char *a, const char *b, bool *undo,
		       struct err *e)
{
	char q[ID_MAX + 128];
	char (*ids)[ID_MAX + 1] = malloc(200 * sizeof(*ids));
	size_t n = 0;
	bool known = false;

	if (undo)
		*undo = false;
	if (!ids)
		return true; /* out of memory: queue nothing rather than twice */
	/* the Tasks about a: few */
	snprintf(q, sizeof(q), "code=" MPI_CODE_SYSTEM "%%7C" MPI_REVIEW_CODE "&patient=Patient/%s", a);
	if (fhir_search_ids(cfg, "Task", q, ids, 199, &n, e) < 0) {
		free(ids);
		return true;
	}
	for (size_t i = 0; i < n && i < 199 && !known; i++) {
		struct store_version v;
		struct err re = ERR_INIT;
		json_object *o;
		char x[ID_MAX + 1], y[ID_MAX + 1];
		memset(&v, 0, sizeof(v));
		if (store_read(cfg->store, "Task", ids[i], &v, &re) < 0 || !v.json) {
			store_version_release(&v);
			continue;
		}
		o = json_parse_buf(v.json, v.len, 0, &re);
		store_version_release(&v);
		if (!o)
			continue;
		if (mpi_review_pair(o, x, y, sizeof(x)) == 0 &&
		    ((strcmp(x, a) == 0 && strcmp(y, b) == 0) || (strcmp(x, b) == 0 && strcmp(y, a) == 0))) {
			const char *st = json_get_str(o, "status");
			bool decided_same = false;
			json_object *bs = json_get_arr(json_get_obj(o, "businessStatus"), "coding");
			for (size_t j = 0; bs && j < json_object_array_length(bs); j++)
				if (json_is_str(json_get(json_object_array_get_idx(bs, j), "code"), "not-duplicate"))
					decided_same = true;
			/* open, or closed as not a duplicate */
			known = decided_same || !st || (strcmp(st, "completed") != 0 && strcmp(st, "cancelled") != 0);
			if (undo && decided_same && mpi_review_auto_linked(o))
				*undo = true;
		}
		json_object_put(o);
	}
	free(ids);
	return known;
}

/* A review Task for the pair (*wrote set); the model's links (auto-link
 * on) are linked with it (*linked set too), unless mpi_link finds nothing
 * to do (merged or deleted since, or linked by another queue). */
static int queue_task(const struct fhir_config *cfg, const char *a, const char *b,
		      const struct mpi_match_hit *h, bool *wrote, bool *linked, struct err *e)
{
	struct buf j = BUF_INIT(0);
	struct fhir_prepared p;
	struct store_op op;
	struct store_txn t;
	struct audit_info ai;
	json_object *o = NULL;
	char id[ID_MAX + 1];
	int rc = -1;

	*wrote = *linked = false;
	fhir_prepared_init(&p);
	if (h->decision == MPI_LINK && mpi_auto_link_on()) {
		/* the same person, the model says: linked now, merged by a person */
		mpi_review_task_json(a, b, h->prob, h->lv, MPI_TASK_LINKED, &j);
		if (j.failed) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		rc = mpi_link(cfg, a, b, buf_cstr(&j), linked, e);
		*wrote = *linked;
		goto out;
	}
	/* a link with auto-link off: at the top of the queue */
	mpi_review_task_json(a, b, h->prob, h->lv, h->decision == MPI_LINK ? MPI_TASK_URGENT : MPI_TASK_REVIEW,
			     &j);
	o = json_parse_buf(j.data, j.len, 0, e);
	id_new(id);
	if (!o || fhir_prepare(cfg->params, o, id, &p, e) < 0)
		goto out;
	memset(&op, 0, sizeof(op));
	fhir_prepared_op(&p, &op);
	op.kind = STORE_CREATE;
	op.method = STORE_POST;
	memset(&ai, 0, sizeof(ai));
	ai.username = "chartkeep-mpi";
	ai.action = PA_CREATE;
	ai.interaction = "mpi-incremental";
	ai.source = "local";
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	t.audit = audit_txn_entry;
	t.audit_arg = &ai;
	if (store_commit(cfg->store, &t) != 0) {
		*e = op.err.code ? op.err : t.err;
		goto out;
	}
	*wrote = true;
	rc = 0;
out:
	json_object_put(o);
	fhir_prepared_release(&p);
	buf_release(&j);
	return rc;
}

int mpi_incremental_one(const struct fhir_config *cfg, const char *id, size_t *queued, size_t *linked,
			struct err *e)
{
	struct store_version v;
	struct mpi_model m;
	struct mpi_rec q;
	struct arena a;
	struct mpi_match_hit *hits = NULL;
	size_t n = 0;
	int rc = -1;

	memset(&v, 0, sizeof(v));
	arena_init(&a, 0);
	if (store_read(cfg->store, "Patient", id, &v, e) < 0) {
		if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE) {
			err_clear(e);
			rc = 0; /* deleted since: nothing to match */
		}
		goto out;
	}
	if (mpi_model_load(cfg->store, &m, e) < 0 || mpi_rec_from_text(v.json, v.len, id, &a, &q) < 0)
		goto out;
	if (q.merged) {
		rc = 0;
		goto out;
	}
	if (mpi_candidates(cfg, &m, &q, id, &a, NULL, NULL, &hits, &n, e) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *x = strcmp(id, hits[i].id) < 0 ? id : hits[i].id;
		const char *y = x == id ? hits[i].id : id;
		bool w = false, l = false, undo = false;
		if (mpi_linked(hits[i].json, hits[i].len, id)) {
			/* linked already (by the matcher, or by a person): nothing to
			   propose - but an auto-link decided not a duplicate while no
			   queue ran (--no-match, a crash) is undone now */
			if (pair_known(cfg, x, y, &undo, e) && undo && mpi_unlink(cfg, x, y, &l, e) < 0)
				goto out;
			continue;
		}
		if (pair_known(cfg, x, y, NULL, e))
			continue;
		if (queue_task(cfg, x, y, &hits[i], &w, &l, e) < 0)
			goto out;
		if (queued && w)
			(*queued)++;
		if (linked && l)
			(*linked)++;
	}
	rc = 0;
out:
	store_version_release(&v);
	free(hits);
	arena_release(&a);
	return rc;
}

int mpi_review_decided(const struct fhir_config *cfg, const char *task_id, bool *unlinked, struct err *e)
{
	struct store_version v;
	json_object *o = NULL;
	char a[ID_MAX + 1], b[ID_MAX + 1];
	int rc = -1;

	*unlinked = false;
	memset(&v, 0, sizeof(v));
	if (store_read(cfg->store, "Task", task_id, &v, e) < 0) {
		if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE) {
			err_clear(e);
			rc = 0;
		}
		goto out;
	}
	if (!mpi_is_review_task(v.json, v.len)) {
		rc = 0;
		goto out;
	}
	o = json_parse_buf(v.json, v.len, 0, e);
	if (!o)
		goto out;
	if (mpi_review_pair(o, a, b, sizeof(a)) < 0 || !mpi_review_auto_linked(o) ||
	    !mpi_review_not_duplicate(o)) {
		rc = 0;
		goto out;
	}
	rc = mpi_unlink(cfg, a, b, unlinked, e);
out:
	json_object_put(o);
	store_version_release(&v);
	return rc;
}

static void *incr_main(void *arg)
{
	struct mpi_incr *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct incr_item *it;
		struct err e = ERR_INIT;
		size_t queued = 0, linked = 0;
		bool unlinked = false, task;
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->head)
			break; /* stopping, and drained */
		it = q->head;
		q->head = it->next;
		if (!q->head)
			q->tail = NULL;
		q->queued--;
		q->busy = true;
		pthread_mutex_unlock(&q->mu);
		if (it->task ? mpi_review_decided(q->cfg, it->id, &unlinked, &e) < 0
			     : mpi_incremental_one(q->cfg, it->id, &queued, &linked, &e) < 0)
			log_error("event=mpi_incremental_failed detail=\"%s\"", e.msg);
		task = it->task;
		free(it);
		pthread_mutex_lock(&q->mu);
		q->busy = false;
		q->done += !task;
		q->tasks += queued;
		q->linked += linked;
		q->unlinked += unlinked;
		if (!q->head)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct mpi_incr *mpi_incr_start(const struct fhir_config *cfg, struct err *e)
{
	struct mpi_incr *q = calloc(1, sizeof(*q));

	if (!q) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	q->cfg = cfg;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->idle, NULL);
	if (pthread_create(&q->th, NULL, incr_main, q) != 0) {
		free(q);
		err_set(e, ERR_INTERNAL, "the matching thread could not start");
		return NULL;
	}
	return q;
}

void mpi_incr_push(struct mpi_incr *q, const struct store_txn *t)
{
	if (!q || !t || (t->atomic && t->rc < 0))
		return;
	for (size_t i = 0; i < t->n; i++) {
		const struct store_op *op = &t->ops[i];
		struct incr_item *it;
		bool task = op->type && strcmp(op->type, "Task") == 0;
		if (!op->status || op->noop || !op->type || (!task && strcmp(op->type, "Patient") != 0) ||
		    op->kind == STORE_REMOVE || op->kind == STORE_REINDEX || !op->id)
			continue;
		/* a Task: only an update can be a decision on an auto-linked pair */
		if (task && op->kind != STORE_UPDATE)
			continue;
		it = calloc(1, sizeof(*it));
		if (!it) {
			log_error("event=mpi_incremental_dropped reason=nomem");
			continue;
		}
		it->task = task;
		snprintf(it->id, sizeof(it->id), "%s", op->id);
		pthread_mutex_lock(&q->mu);
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
		q->queued++;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
	}
}

void mpi_incr_status(struct mpi_incr *q, size_t *queued, bool *busy, uint64_t *done, uint64_t *tasks,
		     uint64_t *linked, uint64_t *unlinked)
{
	*queued = 0;
	*busy = false;
	*done = *tasks = *linked = *unlinked = 0;
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	*queued = q->queued;
	*busy = q->busy;
	*done = q->done;
	*tasks = q->tasks;
	*linked = q->linked;
	*unlinked = q->unlinked;
	pthread_mutex_unlock(&q->mu);
}

void mpi_incr_wait(struct mpi_incr *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	while (q->head || q->busy)
		pthread_cond_wait(&q->idle, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void mpi_incr_stop(struct mpi_incr *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->th, NULL);
	log_info("event=mpi_incremental_stopped patients=%" PRIu64 " tasks=%" PRIu64 " linked=%" PRIu64
		 " unlinked=%" PRIu64, q->done, q->tasks, q->linked, q->unlinked);
	pthread_cond_destroy(&q->cv);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
