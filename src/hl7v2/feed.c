/* feed.c - the inbox to FHIR: one message at a time, in arrival order.
 *
 * A message becomes a transaction Bundle (map.c) that goes through the same
 * planning as a transaction POSTed to the REST API - validation, conditional
 * entries and references, search index rows - with the policy decided for
 * each entry as the feed's principal (a registered client: its role says
 * what the feed may write), and one audit entry naming the sending
 * application and facility.  The inbox row is marked processed by a hook of
 * the same store transaction: the resources, their index rows, the audit
 * entry and the processed mark commit together or not at all, so a crash
 * never leaves a message half applied or applied twice.
 *
 * One thread, in id order: the messages of one patient (and every other)
 * are applied in the order they arrived, which ADT feeds depend on (an A03
 * after its A01).  A failure moves the message to the error queue and the
 * feed goes on with the next: one bad message does not hold up the rest. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "hl7v2/hl7v2.h"
#include "mpi/mpi.h"
#include "privacy/audit.h"
#include "privacy/policy.h"
#include "privacy/privacy.h"
#include "store/store.h"
#include "base/banned.h"

#define FEED_BATCH 64

struct hl7_feed {
	struct store *store;
	struct fhir_config fcfg;
	struct store_principal who;
	pthread_t thread;
	bool started;
	bool match;
	struct hl7_acker *acker;    /* woken when an application ACK was queued */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
};

int hl7_feed_new(const struct hl7_feed_config *cfg, struct hl7_feed **out, struct err *e)
{
	struct hl7_feed *f;
	struct store_client c;
	const char *id = cfg->client_id ? cfg->client_id : HL7_FEED_DEFAULT_CLIENT;

	*out = NULL;
	if (store_client_get(cfg->store, id, &c, e) < 0) {
		if (e->code == ERR_NOT_FOUND)
			err_set(e, ERR_NOT_FOUND,
				"the HL7 feed acts as the registered client '%s', which does not exist: "
				"chartkeep client add --db PATH --client-id %s --role interface",
				id, id);
		return -1;
	}
	if (!c.active)
		return err_set(e, ERR_FORBIDDEN, "the HL7 feed's client '%s' is disabled", id);
	f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, ERR_NOMEM, "out of memory");
	f->store = cfg->store;
	f->fcfg.store = cfg->store;
	f->fcfg.params = cfg->params;
	f->fcfg.max_depth = cfg->max_depth > 0 ? cfg->max_depth : JSON_DEFAULT_MAX_DEPTH;
	f->fcfg.max_bundle_entries = 10000;
	f->fcfg.software_version = "chartkeep";
	f->match = cfg->match;
	f->acker = cfg->acker;
	f->who.uid = -c.ckey;
	snprintf(f->who.username, sizeof(f->who.username), "%s", c.client_id);
	snprintf(f->who.role, sizeof(f->who.role), "%s", c.role);
	snprintf(f->who.scopes, sizeof(f->who.scopes), "%s", c.scopes);
	snprintf(f->who.client_id, sizeof(f->who.client_id), "%s", c.client_id);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	*out = f;
	return 0;
}

void hl7_feed_free(struct hl7_feed *f)
{
	if (!f)
		return;
	hl7_feed_stop(f);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

/* The policy decision for each entry of the message's Bundle. */
static int decide(void *ctx, int interaction, const char *type, struct err *e)
{
	struct hl7_feed *f = ctx;
	struct privacy_request rq;
	struct privacy_decision d;

	memset(&rq, 0, sizeof(rq));
	switch (interaction) {
	case FHIR_READ: rq.action = PA_READ; break;
	case FHIR_SEARCH: rq.action = PA_SEARCH; break;
	case FHIR_CREATE: rq.action = PA_CREATE; break;
	case FHIR_DELETE: rq.action = PA_DELETE; break;
	case FHIR_PATCH: rq.action = PA_PATCH; break;
	default: rq.action = PA_UPDATE; break;
	}
	rq.type = type;
	rq.source = "mllp";
	if (privacy_decide_ex(&f->who, &rq, &d, e) < 0)
		return -1;
	if (d.patient)
		return err_set(e, ERR_FORBIDDEN, "the feed's client is limited to one patient");
	return 0;
}

/* The first reasons of a failed plan, as one line (no patient data: the
 * messages name elements and entries, never values). */
static void issues_line(const struct fhir_issues *iss, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < iss->n && n + 1 < cap; i++) {
		int w = snprintf(out + n, cap - n, "%s%s%s%s", i ? "; " : "", iss->v[i].msg,
				 iss->v[i].expr[0] ? " at " : "", iss->v[i].expr);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

struct fail_ctx {
	char *out;
	size_t cap;
};

static void entry_failed(void *ctx, size_t entry, const struct err *e)
{
	struct fail_ctx *fc = ctx;

	if (!fc->out[0])
		snprintf(fc->out, fc->cap, "Bundle.entry[%zu]: %s", entry, e->msg);
}

/* One message on its way: from the inbox row to a committed (or failed)
 * store transaction.  Everything the transaction points to (plan, audit
 * info, mark) lives here until it is done. */
struct job {
	int64_t id;
	struct store_hl7_msg im;
	struct hl7_msg m;
	struct arena a;
	struct buf bundle, q, keys;
	struct fhir_bundle_plan *plan;
	struct store_txn *txn;
	struct fhir_req req;
	struct audit_info ai;
	struct store_hl7_mark mk;
	char why[ERR_MSG_MAX];
	struct err e;
	bool merge;                 /* A40 & co: mpi_merge once the Patient is written */
	struct buf src_q, dst_q;    /* merge: the prior and the surviving patient's queries */
	bool loaded;                /* im was read */
	bool skip;                  /* already processed: nothing to do, nothing to mark */
	/* the application ACK the outcome owes (enhanced mode, MSH-16): its
	 * code and ERR when the message fails, and the ACK itself, queued with
	 * the outcome (mk.ack) */
	int fail_code;              /* HL7_AE, or what hl7_map_check said */
	struct hl7_ack_err fail_err;
	struct store_hl7_ack ack;
	struct buf ackt;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void job_init(struct job *j, int64_t id)
{
	memset(j, 0, sizeof(*j));
	j->id = id;
	arena_init(&j->a, 0);
	buf_init(&j->bundle, 0);
	buf_init(&j->q, 0);
	buf_init(&j->keys, 0);
	buf_init(&j->src_q, 0);
	buf_init(&j->dst_q, 0);
	buf_init(&j->ackt, 0);
	j->fail_code = HL7_AE;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
}

static void job_release(struct job *j)
{
	if (j->plan)
		fhir_bundle_plan_free(j->plan);
	if (j->loaded)
		store_hl7_msg_release(&j->im);
	buf_release(&j->bundle);
	buf_release(&j->q);
	buf_release(&j->keys);
	buf_release(&j->src_q);
	buf_release(&j->dst_q);
	buf_release(&j->ackt);
	arena_release(&j->a);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
}

/* Read, parse and map: the Bundle and its identifier keys.  -1: failed (why). */
static int job_map(struct hl7_feed *f, struct job *j)
{
	struct hl7_ack_err ae;
	int ack;

	if (store_hl7_get(f->store, j->id, &j->im, &j->e) < 0) {
		j->skip = true; /* no row: nothing to mark */
		return -1;
	}
	j->loaded = true;
	if (j->im.state == STORE_HL7_PROCESSED) {
		err_set(&j->e, ERR_CONFLICT, "inbox message %lld was already processed", (long long)j->id);
		j->skip = true;
		return -1;
	}
	if (hl7_parse(j->im.raw, j->im.raw_len, &j->a, &j->m, &j->e) < 0)
		goto fail;
	if (hl7_map_check(&j->m, &ae, &ack) < 0) {
		j->fail_code = ack;
		j->fail_err = ae;
		err_set(&j->e, ERR_UNPROCESSABLE, "%s%s%s", ae.text, ae.seg[0] ? ": " : "", ae.seg);
		goto fail;
	}
	if (hl7_map_bundle(&j->m, &j->bundle, &j->keys, &j->e) < 0)
		goto fail;
	switch (hl7_map_merge(&j->m, &j->src_q, &j->dst_q, &j->e)) {
	case 1: j->merge = true; break;
	case 0: break;
	default: goto fail;
	}
	return 0;
fail:
	snprintf(j->why, sizeof(j->why), "%s", j->e.msg);
	return -1;
}

/* The application ACK for this outcome into j->ack and mk.ack, when the
 * sender asked for one (enhanced mode, MSH-16 AL, or ER / SU matching the
 * outcome); mk.ack NULL otherwise.  Its own MSH-10 is made of the inbox id
 * and the code: stable, so a resend after a crash carries the same one. */
static void job_app_ack(struct job *j, int code, const struct hl7_ack_err *ae)
{
	j->mk.ack = NULL;
	if (!j->m.nsegs || !hl7_ack_enhanced(&j->m) || !hl7_ack_wanted(&j->m, code))
		return;
	memset(&j->ack, 0, sizeof(j->ack));
	j->ack.inbox_id = j->id;
	snprintf(j->ack.code, sizeof(j->ack.code), "%s", hl7_ack_name(code));
	snprintf(j->ack.control_id, sizeof(j->ack.control_id), "CKA%lld%s", (long long)j->id, j->ack.code);
	snprintf(j->ack.sending_app, sizeof(j->ack.sending_app), "%s", j->im.sending_app);
	snprintf(j->ack.sending_fac, sizeof(j->ack.sending_fac), "%s", j->im.sending_fac);
	buf_reset(&j->ackt);
	hl7_app_ack_build(&j->m, code, ae, j->ack.control_id, time_now_ms(), &j->ackt);
	if (j->ackt.failed) {
		log_error("event=hl7_app_ack_build_failed id=%lld", (long long)j->id);
		return;
	}
	j->ack.text = j->ackt.data;
	j->ack.text_len = j->ackt.len;
	j->ack.created_ms = time_now_ms();
	j->mk.ack = &j->ack;
}

/* Plan the Bundle as the REST API would, and make the transaction: audit
 * entry and the inbox mark ride along.  -1: failed (why). */
static int job_plan(struct hl7_feed *f, struct job *j)
{
	struct fhir_issues iss;

	j->req.interaction = FHIR_BATCH;
	j->req.arena = &j->a;
	j->req.decide = decide;
	j->req.visible_ctx = f;
	fhir_issues_init(&iss);
	if (fhir_bundle_plan_req(&f->fcfg, &j->req, buf_cstr(&j->bundle), j->bundle.len, &j->plan, &j->txn,
				 &iss) < 0) {
		issues_line(&iss, j->why, sizeof(j->why));
		err_set(&j->e, iss.status == 403 ? ERR_FORBIDDEN : ERR_UNPROCESSABLE, "%s", j->why);
		return -1;
	}
	/* who: the feed's client; what: the message, named by its sender */
	j->ai.who = &f->who;
	j->ai.action = PA_BATCH;
	j->ai.interaction = "transaction";
	j->ai.source = arena_printf(&j->a, "mllp:%s", j->im.peer);
	buf_addf(&j->q, "HL7 %s from %s/%s control id %s (inbox %lld)", j->im.msg_type, j->im.sending_app,
		 j->im.sending_fac, j->im.control_id, (long long)j->im.id);
	j->ai.query = buf_cstr(&j->q);
	j->txn->audit = audit_txn_entry;
	j->txn->audit_arg = &j->ai;
	j->mk.id = j->id;
	j->mk.state = STORE_HL7_PROCESSED;
	j->mk.reason = "";
	job_app_ack(j, HL7_AA, NULL);
	/* a merge is marked once mpi_merge committed too (merge_step) */
	if (!j->merge)
		store_hl7_mark_txn(j->txn, &j->mk);
	/* from now on keys are what it writes: the identifiers of the resources
	 * its operations store (an entry whose ifNoneExist found one writes
	 * nothing, and no later message needs to wait for it) */
	buf_reset(&j->keys);
	for (size_t i = 0; i < j->txn->n; i++) {
		const struct store_op *op = &j->txn->ops[i];
		struct buf t = BUF_INIT(0);
		struct err je = ERR_INIT;
		json_object *o, *ids;
		buf_addch(&t, '{');
		buf_add(&t, op->body, op->body_len);
		buf_addch(&t, '}');
		o = json_parse_buf(t.data, t.len, 0, &je);
		ids = json_get_arr(o, "identifier");
		for (size_t k = 0; ids && k < json_object_array_length(ids); k++) {
			json_object *id = json_object_array_get_idx(ids, k);
			buf_addf(&j->keys, "%s|%s\n", json_get_str(id, "system") ? json_get_str(id, "system") : "",
				 json_get_str(id, "value") ? json_get_str(id, "value") : "");
		}
		ids = json_get_obj(o, "masterIdentifier");
		if (ids)
			buf_addf(&j->keys, "%s|%s\n", json_get_str(ids, "system") ? json_get_str(ids, "system") : "",
				 json_get_str(ids, "value") ? json_get_str(ids, "value") : "");
		if (!o && op->body_len)
			buf_addstr(&j->keys, "*\n"); /* unreadable: clash with everything */
		json_object_put(o);
		buf_release(&t);
	}
	return 0;
}

static void job_done(struct store_txn *t, void *arg)
{
	struct job *j = arg;

	(void)t;
	pthread_mutex_lock(&j->mu);
	j->done = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

static void job_submit(struct hl7_feed *f, struct job *j)
{
	j->txn->done = job_done;
	j->txn->done_arg = j;
	if (store_submit(f->store, j->txn) < 0) {
		j->txn->rc = -1;
		j->done = true;
	}
}

static void job_wait(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	while (!j->done)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
}

/* One Patient id for a query; -1 with why when there is none or several. */
static int one_patient(struct hl7_feed *f, struct job *j, const struct buf *q, const char *what,
		       char id[ID_MAX + 1])
{
	char ids[2][ID_MAX + 1];
	size_t n = 0;

	if (fhir_search_ids(&f->fcfg, "Patient", buf_cstr((struct buf *)q), ids, 1, &n, &j->e) < 0)
		return -1;
	if (n != 1)
		return err_set(&j->e, ERR_UNPROCESSABLE, "the %s matches %s", what,
			       n ? "more than one Patient" : "no Patient in the record");
	snprintf(id, ID_MAX + 1, "%s", ids[0]);
	return 0;
}

/* ADT A40 & co, after the surviving Patient was written: merge the prior
 * patient into it (mpi_merge: references move, history kept, a Provenance,
 * one audited transaction), then mark the message processed.  A merge
 * already done (a reprocess after a crash between the two) only marks. */
static int merge_step(struct hl7_feed *f, struct job *j)
{
	char src[ID_MAX + 1], dst[ID_MAX + 1], into[ID_MAX + 1];
	struct privacy_request rq;
	struct privacy_decision d;
	struct store_version v;
	struct mpi_merge_out out;
	bool merged = false;
	int r;

	memset(&rq, 0, sizeof(rq));
	rq.action = PA_UPDATE; /* as the REST edge decides $merge */
	rq.type = "Patient";
	if (privacy_decide_ex(&f->who, &rq, &d, &j->e) < 0 ||
	    one_patient(f, j, &j->src_q, "prior patient (MRG-1)", src) < 0 ||
	    one_patient(f, j, &j->dst_q, "surviving patient (PID-3)", dst) < 0)
		return -1;
	if (strcmp(src, dst) != 0) {
		memset(&v, 0, sizeof(v));
		r = store_read(f->store, "Patient", src, &v, &j->e);
		if (r == 0)
			mpi_replaced_by(v.json, v.len, &merged, into, sizeof(into));
		store_version_release(&v);
		if (r < 0)
			return -1;
		if (!merged || strcmp(into, dst) != 0) {
			j->ai.action = PA_UPDATE;
			j->ai.interaction = "$merge";
			memset(&out, 0, sizeof(out));
			if (mpi_merge(&f->fcfg, &f->who, &j->ai, src, dst, NULL, false, NULL, &out, &j->e) < 0)
				return -1;
			log_info("event=hl7_merge id=%lld moved=%zu", (long long)j->id, out.moved);
		}
	}
	if (store_hl7_mark(f->store, &j->mk, &j->e) < 0)
		return -1;
	return 0;
}

static void ack_queued(struct hl7_feed *f)
{
	if (f->acker)
		hl7_acker_wake(f->acker);
}

/* The outcome: logged, and a failure put in the error queue.  0 or -1 (e). */
static int job_finish(struct hl7_feed *f, struct job *j, bool submitted, struct err *e)
{
	struct err me = ERR_INIT;

	if (submitted && j->txn->rc == 0 && j->merge) {
		fhir_after_commit(&f->fcfg, j->txn);
		if (merge_step(f, j) < 0) {
			snprintf(j->why, sizeof(j->why), "%s", j->e.msg);
			submitted = false; /* to the error queue with that reason */
		}
	}
	if (submitted && j->txn->rc == 0) {
		if (!j->merge)
			fhir_after_commit(&f->fcfg, j->txn);
		log_info("event=hl7_processed id=%lld type=%s entries=%zu%s", (long long)j->id, j->im.msg_type,
			 fhir_bundle_entries(j->plan), j->mk.ack ? " app_ack=AA" : "");
		if (j->mk.ack)
			ack_queued(f);
		return 0;
	}
	if (submitted) {
		struct fail_ctx fc = { j->why, sizeof(j->why) };
		fhir_bundle_report(j->plan, entry_failed, &fc);
		if (!j->why[0])
			snprintf(j->why, sizeof(j->why), "%s", j->txn->err.msg);
		err_set(&j->e, j->txn->err.code ? j->txn->err.code : ERR_UNPROCESSABLE, "%s", j->why);
		/* processed meanwhile (a reprocess from the CLI): not an error */
		if (j->txn->err.code == ERR_CONFLICT && strstr(j->txn->err.msg, "already processed"))
			j->skip = true;
	}
	*e = j->e;
	if (j->skip)
		return -1;
	j->mk.id = j->id;
	j->mk.state = STORE_HL7_ERROR;
	j->mk.reason = j->why;
	if (j->fail_code == HL7_AE) {
		/* ERR as the accept ACK writes it: 207 application internal error,
		 * the reason for people (names elements, never values) */
		memset(&j->fail_err, 0, sizeof(j->fail_err));
		j->fail_err.code = "207";
		j->fail_err.severity = 'E';
	}
	j->fail_err.text = j->why;
	job_app_ack(j, j->fail_code, &j->fail_err);
	log_warn("event=hl7_error id=%lld type=%s reason=\"%s\"%s%s", (long long)j->id, j->im.msg_type, j->why,
		 j->mk.ack ? " app_ack=" : "", j->mk.ack ? j->ack.code : "");
	if (store_hl7_mark(f->store, &j->mk, &me) < 0)
		log_error("event=hl7_mark_failed id=%lld detail=\"%s\"", (long long)j->id, me.detail);
	else if (j->mk.ack)
		ack_queued(f);
	return -1;
}

int hl7_feed_process(struct hl7_feed *f, int64_t id, struct err *e)
{
	struct job *j = malloc(sizeof(*j));
	bool submitted = false;
	int rc;

	if (!j)
		return err_set(e, ERR_NOMEM, "out of memory");
	job_init(j, id);
	if (job_map(f, j) == 0 && job_plan(f, j) == 0) {
		job_submit(f, j);
		job_wait(j);
		submitted = true;
	}
	rc = job_finish(f, j, submitted, e);
	job_release(j);
	free(j);
	return rc;
}

/* Does a message about to be planned (a: every identifier in its Bundle)
 * touch what one in flight writes (b)?  Then it must be planned after that
 * one committed: its conditional entries have to see what it wrote. */
static bool overlap(const struct buf *a, const struct buf *b)
{
	const char *p = buf_cstr((struct buf *)a), *end = p + a->len;

	if (b->len >= 2 && memmem(buf_cstr((struct buf *)b), b->len, "*\n", 2) &&
	    (b->data[0] == '*' || memmem(b->data, b->len, "\n*\n", 3)))
		return true;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *q = buf_cstr((struct buf *)b), *qe = q + b->len;
		/* whole lines of b */
		while (q < qe) {
			const char *hit = memmem(q, (size_t)(qe - q), p, n);
			if (!hit)
				break;
			if (hit == buf_cstr((struct buf *)b) || hit[-1] == '\n')
				return true;
			q = hit + 1;
		}
		p += n;
	}
	return false;
}

#define FEED_WINDOW 4

/* Process ids[0..n) in order, with up to FEED_WINDOW transactions in
 * flight: message k+1 is planned while k commits (the writer applies them
 * in order), unless it shares an identifier with one still in flight. */
static void process_batch(struct hl7_feed *f, const int64_t *ids, size_t n)
{
	struct job *win[FEED_WINDOW];
	size_t head = 0, count = 0;

	for (size_t i = 0; i < n; i++) {
		struct job *j = malloc(sizeof(*j));
		struct err e = ERR_INIT;

		if (!j)
			break;
		job_init(j, ids[i]);
		if (job_map(f, j) < 0) {
			job_finish(f, j, false, &e);
			job_release(j);
			free(j);
			continue;
		}
		/* wait for the oldest until none in flight writes an identifier
		 * this one looks for, and there is room */
		for (;;) {
			/* a merge moves references of every kind: alone */
			bool clash = count == FEED_WINDOW || (j->merge && count > 0);
			for (size_t k = 0; k < count && !clash; k++)
				clash = overlap(&j->keys, &win[(head + k) % FEED_WINDOW]->keys);
			if (!clash)
				break;
			job_wait(win[head]);
			job_finish(f, win[head], true, &e);
			job_release(win[head]);
			free(win[head]);
			head = (head + 1) % FEED_WINDOW;
			count--;
		}
		if (job_plan(f, j) < 0) {
			job_finish(f, j, false, &e);
			job_release(j);
			free(j);
			continue;
		}
		job_submit(f, j);
		if (j->merge) {
			job_wait(j);
			job_finish(f, j, true, &e);
			job_release(j);
			free(j);
			continue;
		}
		win[(head + count) % FEED_WINDOW] = j;
		count++;
	}
	while (count) {
		struct err e = ERR_INIT;
		job_wait(win[head]);
		job_finish(f, win[head], true, &e);
		job_release(win[head]);
		free(win[head]);
		head = (head + 1) % FEED_WINDOW;
		count--;
	}
}

struct pending {
	int64_t ids[FEED_BATCH];
	size_t n;
};

static int collect(void *ctx, const struct store_hl7_msg *m)
{
	struct pending *p = ctx;

	p->ids[p->n++] = m->id;
	return 0;
}

static void *feed_main(void *arg)
{
	struct hl7_feed *f = arg;

	for (;;) {
		struct pending p;
		struct err e = ERR_INIT;

		pthread_mutex_lock(&f->mu);
		if (f->stop) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		f->kicked = false;
		pthread_mutex_unlock(&f->mu);
		p.n = 0;
		/* the oldest pending rows: each is processed or moved to the
		 * error queue, so the next look starts past them */
		if (store_hl7_list(f->store, STORE_HL7_PENDING, 0, FEED_BATCH, false, collect, &p, &e) < 0) {
			log_error("event=hl7_feed_list_failed detail=\"%s\"", e.detail);
			p.n = 0;
		}
		process_batch(f, p.ids, p.n);
		pthread_mutex_lock(&f->mu);
		if (f->stop) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		pthread_mutex_unlock(&f->mu);
		if (p.n == FEED_BATCH)
			continue;
		pthread_mutex_lock(&f->mu);
		if (!f->kicked && !f->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1; /* a retry marked pending by another process */
			pthread_cond_timedwait(&f->cv, &f->mu, &ts);
		}
		pthread_mutex_unlock(&f->mu);
	}
	return NULL;
}

int hl7_feed_start(struct hl7_feed *f, struct err *e)
{
	sigset_t block, old;
	int r;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (f->match && !f->fcfg.mpi_incr) {
		f->fcfg.mpi_incr = mpi_incr_start(&f->fcfg, e);
		if (!f->fcfg.mpi_incr) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -1;
		}
	}
	r = pthread_create(&f->thread, NULL, feed_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return err_set(e, ERR_INTERNAL, "cannot start the HL7 feed");
	f->started = true;
	return 0;
}

void hl7_feed_wake(struct hl7_feed *f)
{
	pthread_mutex_lock(&f->mu);
	f->kicked = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void hl7_feed_stop(struct hl7_feed *f)
{
	if (!f)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
		f->started = false;
	}
	if (f->fcfg.mpi_incr) {
		mpi_incr_stop(f->fcfg.mpi_incr);
		f->fcfg.mpi_incr = NULL;
	}
}
