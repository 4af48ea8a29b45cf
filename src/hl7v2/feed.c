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

int hl7_feed_process(struct hl7_feed *f, int64_t id, struct err *e)
{
	struct store_hl7_msg im;
	struct hl7_msg m;
	struct arena a;
	struct buf bundle = BUF_INIT(0), q = BUF_INIT(0);
	struct fhir_issues iss;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_req req;
	struct audit_info ai;
	struct store_hl7_mark mk;
	char why[ERR_MSG_MAX];
	int rc = -1;

	arena_init(&a, 0);
	why[0] = '\0';
	if (store_hl7_get(f->store, id, &im, e) < 0) {
		arena_release(&a);
		return -1;
	}
	if (im.state == STORE_HL7_PROCESSED) {
		err_set(e, ERR_CONFLICT, "inbox message %lld was already processed", (long long)id);
		goto out_noupdate;
	}
	if (hl7_parse(im.raw, im.raw_len, &a, &m, e) < 0) {
		snprintf(why, sizeof(why), "%s", e->msg);
		goto fail;
	}
	{
		struct hl7_ack_err ae;
		int ack;
		if (hl7_map_check(&m, &ae, &ack) < 0) {
			err_set(e, ERR_UNPROCESSABLE, "%s%s%s", ae.text, ae.seg[0] ? ": " : "", ae.seg);
			snprintf(why, sizeof(why), "%s", e->msg);
			goto fail;
		}
	}
	if (hl7_map_bundle(&m, &bundle, e) < 0) {
		snprintf(why, sizeof(why), "%s", e->msg);
		goto fail;
	}
	memset(&req, 0, sizeof(req));
	req.interaction = FHIR_BATCH;
	req.arena = &a;
	req.decide = decide;
	req.visible_ctx = f;
	fhir_issues_init(&iss);
	if (fhir_bundle_plan_req(&f->fcfg, &req, buf_cstr(&bundle), bundle.len, &plan, &txn, &iss) < 0) {
		issues_line(&iss, why, sizeof(why));
		err_set(e, iss.status == 403 ? ERR_FORBIDDEN : ERR_UNPROCESSABLE, "%s", why);
		goto fail;
	}
	/* who: the feed's client; what: the message, named by its sender */
	memset(&ai, 0, sizeof(ai));
	ai.who = &f->who;
	ai.action = PA_BATCH;
	ai.interaction = "transaction";
	ai.source = arena_printf(&a, "mllp:%s", im.peer);
	buf_addf(&q, "HL7 %s from %s/%s control id %s (inbox %lld)", im.msg_type, im.sending_app,
		 im.sending_fac, im.control_id, (long long)im.id);
	ai.query = buf_cstr(&q);
	txn->audit = audit_txn_entry;
	txn->audit_arg = &ai;
	mk.id = id;
	mk.state = STORE_HL7_PROCESSED;
	mk.reason = "";
	store_hl7_mark_txn(txn, &mk);
	if (store_commit(f->store, txn) < 0) {
		struct fail_ctx fc = { why, sizeof(why) };
		fhir_bundle_report(plan, entry_failed, &fc);
		if (!why[0])
			snprintf(why, sizeof(why), "%s", txn->err.msg);
		err_set(e, txn->err.code ? txn->err.code : ERR_UNPROCESSABLE, "%s", why);
		if (txn->err.code == ERR_CONFLICT && strstr(txn->err.msg, "already processed"))
			goto out_noupdate;
		goto fail;
	}
	fhir_after_commit(&f->fcfg, txn);
	log_info("event=hl7_processed id=%lld type=%s entries=%zu", (long long)id, im.msg_type,
		 fhir_bundle_entries(plan));
	rc = 0;
	goto out_noupdate;
fail:
	mk.id = id;
	mk.state = STORE_HL7_ERROR;
	mk.reason = why;
	log_warn("event=hl7_error id=%lld type=%s reason=\"%s\"", (long long)id, im.msg_type, why);
	{
		struct err me = ERR_INIT;
		if (store_hl7_mark(f->store, &mk, &me) < 0)
			log_error("event=hl7_mark_failed id=%lld detail=\"%s\"", (long long)id, me.detail);
	}
out_noupdate:
	if (plan)
		fhir_bundle_plan_free(plan);
	store_hl7_msg_release(&im);
	buf_release(&bundle);
	buf_release(&q);
	arena_release(&a);
	return rc;
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
		for (size_t i = 0; i < p.n; i++) {
			struct err pe = ERR_INIT;
			hl7_feed_process(f, p.ids[i], &pe);
			pthread_mutex_lock(&f->mu);
			if (f->stop) {
				pthread_mutex_unlock(&f->mu);
				return NULL;
			}
			pthread_mutex_unlock(&f->mu);
		}
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
	if (!f || !f->started)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	f->started = false;
}
