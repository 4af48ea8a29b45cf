/* loader.c - bulk loading for import and demo (see cli.h).
 *
 * A pipeline over a small ring of chunks:
 *
 *   reader (the caller's thread)  fills a chunk with NDJSON lines, or one
 *                                 whole document, and queues it;
 *   workers (one per CPU)         parse, validate and prepare a chunk into
 *                                 store operations, or plan a Bundle;
 *   sequencer                     submits prepared chunks to the store in
 *                                 input order, so a later line wins;
 *   the store's writer            commits each chunk (one fsync each);
 *   reader again                  collects finished chunks in order, prints
 *                                 their problems, counts, and reuses them.
 *
 * Parsing and validation are most of the cost, so they get every core; the
 * store's writer runs alongside.  Problems are printed in input order with
 * their origin (FILE:LINE, or FILE: entry N for Bundles). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/audit.h"
#include "privacy/privacy.h"
#include "fhir/fhir.h"
#include "mpi/mpi.h"
#include "fhir/search.h"
#include "base/banned.h"

#define CHUNK_ITEMS 2000
#define CHUNK_BYTES (4u << 20)
#define MAX_WORKERS 16

enum chunk_state { CH_FREE, CH_FILLING, CH_QUEUED, CH_PREPARED, CH_SUBMITTED, CH_DONE };
enum chunk_kind { CK_LINES, CK_DOC };

struct item {
	size_t off, len;          /* in the chunk's text */
	unsigned long line;       /* 0 for a whole document */
};

struct chunk {
	struct loader *l;
	int state;
	int kind;
	uint64_t seq;
	char label[512];          /* file name, or "demo" */
	struct buf text;
	struct item *items;
	size_t nitems, capitems;
	/* prepared */
	struct store_op *ops;
	struct fhir_prepared *preps;
	size_t nops, capops;
	struct store_txn txn;
	struct store_txn *submitted;  /* &txn, or the Bundle plan's */
	struct fhir_bundle_plan *plan;
	bool transaction;
	struct buf problems;      /* lines for stderr, printed at collection */
	uint64_t errors;
	struct chunk *next_queued;
};

struct loader {
	struct store *store;
	struct fhir_config cfg;
	struct chunk *chunks;
	size_t nchunks;
	struct chunk *filling;
	uint64_t next_seq, next_submit, next_collect;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* any state change */
	struct chunk *q_head, *q_tail;
	pthread_t workers[MAX_WORKERS];
	size_t nworkers;
	bool stopping;
	bool progress;
	struct timespec start;
	double last_progress;
	struct loader_stats st;
	unsigned long demo_seq;
	struct audit_info ai;         /* every transaction's audit entry: who ran the load */
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void show_progress(struct loader *l, bool final)
{
	double t = since(&l->start);

	if (!l->progress || (!final && t - l->last_progress < 0.5))
		return;
	l->last_progress = t;
	printf("\r  %llu resources, %.0f resources/s, %llu errors%s",
	       (unsigned long long)l->st.resources, t > 0 ? (double)l->st.resources / t : 0.0,
	       (unsigned long long)l->st.errors, final ? "\n" : "");
	fflush(stdout);
}

/* ---- problems ---- */

static void problem(struct chunk *c, const struct item *it, const char *entry_fmt, size_t entry,
		    const struct err *e)
{
	struct buf *b = &c->problems;

	buf_addstr(b, c->label);
	if (it && it->line)
		buf_addf(b, ":%lu", it->line);
	if (entry_fmt)
		buf_addf(b, entry_fmt, entry);
	buf_addstr(b, ": ");
	if (e->expr[0])
		buf_addf(b, "%s: ", e->expr);
	buf_addstr(b, e->msg);
	buf_addch(b, '\n');
	c->errors++;
}

/* ---- workers: prepare a chunk ---- */

static int grow_ops(struct chunk *c)
{
	size_t ncap = c->capops ? c->capops * 2 : 256;
	struct store_op *ops;
	struct fhir_prepared *preps;

	ops = realloc(c->ops, ncap * sizeof(*ops));
	if (!ops)
		return -1;
	c->ops = ops;
	preps = realloc(c->preps, ncap * sizeof(*preps));
	if (!preps)
		return -1;
	c->preps = preps;
	for (size_t i = c->capops; i < ncap; i++)
		fhir_prepared_init(&c->preps[i]);
	c->capops = ncap;
	return 0;
}

/* Validate and prepare one parsed resource (takes ownership of res). */
static void add_resource(struct chunk *c, const struct item *it, const char *entry_fmt,
			 size_t entry, json_object *res)
{
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	struct store_op *op;
	const char *id;
	char newid[ID_UUID_LEN + 1];
	bool created_id = false;

	fhir_issues_init(&iss);
	if (fhir_validate(res, NULL, &iss) > 0) {
		err_set(&e, ERR_INVALID, "%s%s", iss.v[0].msg, iss.errors > 1 ? " (and more)" : "");
		err_expr(&e, iss.v[0].expr);
		problem(c, it, entry_fmt, entry, &e);
		goto out;
	}
	if (c->nops == c->capops && grow_ops(c) < 0) {
		err_set(&e, ERR_NOMEM, "out of memory");
		problem(c, it, entry_fmt, entry, &e);
		goto out;
	}
	id = json_get_str(res, "id");
	if (!id) {
		id_new(newid);
		id = newid;
		created_id = true;
	}
	if (fhir_prepare(c->l->cfg.params, res, id, &c->preps[c->nops], &e) < 0) {
		problem(c, it, entry_fmt, entry, &e);
		goto out;
	}
	op = &c->ops[c->nops];
	memset(op, 0, sizeof(*op));
	/* The op points into preps[] later (prepare_chunk), once preps stops moving. */
	/* Resources that carry an id keep it: an update that creates. */
	op->kind = created_id ? STORE_CREATE : STORE_UPDATE;
	op->method = created_id ? STORE_POST : STORE_PUT;
	c->nops++;
out:
	json_object_put(res);
}

static void bundle_issue(struct chunk *c, const struct item *it, const struct fhir_issue *is)
{
	struct err e = ERR_INIT;

	err_set(&e, ERR_INVALID, "%s", is->msg);
	err_expr(&e, is->expr);
	problem(c, it, NULL, 0, &e);
}

struct each_ctx {
	struct chunk *c;
	const struct item *it;
};

static void each_entry(void *ctx, size_t entry, json_object *res, const struct err *e)
{
	struct each_ctx *x = ctx;

	if (!res)
		problem(x->c, x->it, ": entry %zu", entry, e);
	else
		add_resource(x->c, x->it, ": entry %zu", entry, res);
}

/* A transaction or batch Bundle becomes one store transaction, planned
 * entry by entry from its text. */
static void plan_bundle(struct loader *l, struct chunk *c, const struct item *it)
{
	struct fhir_issues iss;
	struct store_txn *txn = NULL;

	fhir_issues_init(&iss);
	if (fhir_bundle_plan(&l->cfg, c->text.data + it->off, it->len, &c->plan, &txn, &iss) < 0) {
		for (size_t i = 0; i < iss.n; i++)
			bundle_issue(c, it, &iss.v[i]);
		if (iss.dropped)
			buf_addf(&c->problems, "%s: %zu further problems not shown\n", c->label,
				 iss.dropped);
		if (c->transaction)
			buf_addf(&c->problems, "%s: transaction not imported (all or nothing)\n",
				 c->label);
		c->plan = NULL;
		return;
	}
	c->submitted = txn;
}

/* A whole document: a Bundle to unpack (transaction and batch: the Bundle
 * rules; collection and friends: each entry's resource), or one resource.
 * A line of NDJSON that is a transaction or batch is planned the same way;
 * any other Bundle on a line is a resource in its own right. */
static void load_document(struct loader *l, struct chunk *c, const struct item *it)
{
	const char *text = c->text.data + it->off;
	char type[64];
	struct err e = ERR_INIT;
	int is_bundle = fhir_bundle_peek(text, it->len, type, sizeof(type), &e);
	bool tx = is_bundle == 1 && (strcmp(type, "transaction") == 0 || strcmp(type, "batch") == 0);
	json_object *o;

	if (is_bundle < 0) {
		problem(c, it, NULL, 0, &e);
		return;
	}
	if (tx) {
		c->transaction = strcmp(type, "transaction") == 0;
		plan_bundle(l, c, it);
		return;
	}
	if (is_bundle == 1 && !it->line) {
		if (strcmp(type, "collection") == 0 || strcmp(type, "searchset") == 0 ||
		    strcmp(type, "document") == 0 || strcmp(type, "message") == 0) {
			struct each_ctx x = { c, it };
			if (fhir_bundle_each(text, it->len, l->cfg.max_depth, each_entry, &x, &e) < 0)
				problem(c, it, NULL, 0, &e);
			return;
		}
		err_set(&e, ERR_INVALID, "cannot import a Bundle of type '%s'", type[0] ? type : "(none)");
		err_expr(&e, "Bundle.type");
		problem(c, it, NULL, 0, &e);
		return;
	}
	o = json_parse_at(c->text.data, it->off, it->len, l->cfg.max_depth, &e);
	if (!o) {
		problem(c, it, NULL, 0, &e);
		return;
	}
	add_resource(c, it, NULL, 0, o);
}

static void prepare_chunk(struct loader *l, struct chunk *c)
{
	for (size_t i = 0; i < c->nitems; i++) {
		const struct item *it = &c->items[i];
		struct err e = ERR_INIT;
		json_object *o;

		if (c->kind == CK_DOC) {
			load_document(l, c, it);
			continue;
		}
		o = json_parse_buf(c->text.data + it->off, it->len, l->cfg.max_depth, &e);
		if (!o) {
			problem(c, it, NULL, 0, &e);
			continue;
		}
		add_resource(c, it, NULL, 0, o);
	}
	for (size_t i = 0; i < c->nops; i++)
		fhir_prepared_op(&c->preps[i], &c->ops[i]);
	if (!c->submitted && c->nops) {
		c->txn.ops = c->ops;
		c->txn.n = c->nops;
		c->txn.atomic = false;
		c->submitted = &c->txn;
	}
}

static void chunk_committed(struct store_txn *t, void *arg)
{
	struct chunk *c = arg;
	struct loader *l = c->l;

	(void)t;
	pthread_mutex_lock(&l->mu);
	c->state = CH_DONE;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* With l->mu held: hand prepared chunks to the store in input order. */
static void submit_in_order(struct loader *l)
{
	for (;;) {
		struct chunk *c = NULL;
		for (size_t i = 0; i < l->nchunks; i++)
			if (l->chunks[i].seq == l->next_submit && l->chunks[i].state == CH_PREPARED)
				c = &l->chunks[i];
		if (!c)
			return;
		l->next_submit++;
		if (!c->submitted) {
			c->state = CH_DONE;
			continue;
		}
		c->state = CH_SUBMITTED;
		c->submitted->done = chunk_committed;
		c->submitted->done_arg = c;
		c->submitted->audit = audit_txn_entry;
		c->submitted->audit_arg = &l->ai;
		/* store_submit only queues; the writer thread calls back later. */
		if (store_submit(l->store, c->submitted) < 0) {
			c->submitted->rc = -1;
			for (size_t i = 0; i < c->submitted->n; i++) {
				c->submitted->ops[i].status = 0;
				c->submitted->ops[i].err = c->submitted->err;
			}
			c->state = CH_DONE;
		}
	}
}

static void *worker_main(void *arg)
{
	struct loader *l = arg;

	for (;;) {
		struct chunk *c;

		pthread_mutex_lock(&l->mu);
		while (!l->q_head && !l->stopping)
			pthread_cond_wait(&l->cv, &l->mu);
		if (!l->q_head) {
			pthread_mutex_unlock(&l->mu);
			return NULL;
		}
		c = l->q_head;
		l->q_head = c->next_queued;
		if (!l->q_head)
			l->q_tail = NULL;
		pthread_mutex_unlock(&l->mu);

		prepare_chunk(l, c);

		pthread_mutex_lock(&l->mu);
		c->state = CH_PREPARED;
		submit_in_order(l);
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
	}
}

/* ---- the reader side ---- */

struct entry_report {
	struct chunk *c;
};

static void entry_failed(void *ctx, size_t entry, const struct err *e)
{
	struct entry_report *r = ctx;

	problem(r->c, NULL, ": entry %zu", entry, e);
}

static void chunk_reset(struct chunk *c)
{
	for (size_t i = 0; i < c->nops; i++)
		free(c->ops[i].json);
	fhir_bundle_plan_free(c->plan);
	c->plan = NULL;
	c->submitted = NULL;
	c->transaction = false;
	c->nops = 0;
	c->nitems = 0;
	c->errors = 0;
	buf_reset(&c->text);
	buf_reset(&c->problems);
	memset(&c->txn, 0, sizeof(c->txn));
	c->state = CH_FREE;
}

/* Report a finished chunk (with l->mu not held) and free it for reuse. */
static void collect(struct loader *l, struct chunk *c)
{
	/* SearchParameters take effect for the chunks prepared from now on */
	if (c->submitted)
		fhir_after_commit(&l->cfg, c->submitted);
	if (c->plan) {
		struct entry_report r = { c };
		l->st.resources += fhir_bundle_report(c->plan, entry_failed, &r);
		if (c->transaction && c->submitted->rc < 0)
			buf_addf(&c->problems, "%s: transaction rolled back (%zu entries not imported)\n",
				 c->label, fhir_bundle_entries(c->plan));
	} else if (c->submitted) {
		for (size_t i = 0; i < c->nops; i++) {
			if (c->ops[i].status == 0) {
				/* a store failure: name the resource (its line is not kept) */
				struct err e = c->ops[i].err;
				char what[ERR_MSG_MAX + 140];
				snprintf(what, sizeof(what), "%.60s/%.64s: %s", c->ops[i].type, c->ops[i].id, e.msg);
				snprintf(e.msg, sizeof(e.msg), "%.*s", (int)sizeof(e.msg) - 1, what);
				problem(c, NULL, NULL, 0, &e);
			} else {
				l->st.resources++;
			}
		}
	}
	if (c->problems.len)
		fwrite(c->problems.data, 1, c->problems.len, stderr);
	l->st.errors += c->errors;
	chunk_reset(c);
	show_progress(l, false);
}

/* Report finished chunks in input order.  want_free: until a chunk is free
 * (returned); otherwise until nothing is in flight (returns NULL). */
static struct chunk *drain(struct loader *l, bool want_free)
{
	for (;;) {
		struct chunk *done, *free_c;
		bool busy;

		pthread_mutex_lock(&l->mu);
		for (;;) {
			done = free_c = NULL;
			busy = false;
			for (size_t i = 0; i < l->nchunks; i++) {
				struct chunk *c = &l->chunks[i];
				if (c->state == CH_DONE && c->seq == l->next_collect)
					done = c;
				if (c->state == CH_FREE && !free_c)
					free_c = c;
				if (c->state != CH_FREE)
					busy = true;
			}
			if (done || (want_free ? free_c != NULL : !busy))
				break;
			pthread_cond_wait(&l->cv, &l->mu);
		}
		if (done)
			l->next_collect++;
		pthread_mutex_unlock(&l->mu);
		if (!done)
			return free_c;
		collect(l, done);
	}
}

static struct chunk *free_chunk(struct loader *l)
{
	struct chunk *c = drain(l, true);

	c->state = CH_FILLING;
	c->seq = l->next_seq++;
	return c;
}

static void queue_chunk(struct loader *l, struct chunk *c)
{
	if (c->text.failed) {
		struct err e = ERR_INIT;
		err_set(&e, ERR_NOMEM, "out of memory");
		problem(c, NULL, NULL, 0, &e);
		c->nitems = 0;
	}
	pthread_mutex_lock(&l->mu);
	c->state = CH_QUEUED;
	c->next_queued = NULL;
	if (l->q_tail)
		l->q_tail->next_queued = c;
	else
		l->q_head = c;
	l->q_tail = c;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static void flush(struct loader *l)
{
	if (l->filling) {
		queue_chunk(l, l->filling);
		l->filling = NULL;
	}
}

/* Append one item (a line, or a document) to the chunk being filled. */
static void add_item(struct loader *l, const char *label, int kind, const char *text, size_t len,
		     unsigned long line)
{
	struct chunk *c = l->filling;

	if (c && (c->kind != kind || strcmp(c->label, label) != 0 || kind == CK_DOC ||
		  c->nitems == CHUNK_ITEMS || c->text.len + len > CHUNK_BYTES)) {
		flush(l);
		c = NULL;
	}
	if (!c) {
		c = l->filling = free_chunk(l);
		c->kind = kind;
		snprintf(c->label, sizeof(c->label), "%s", label);
	}
	if (c->nitems == c->capitems) {
		size_t ncap = c->capitems ? c->capitems * 2 : 256;
		struct item *it = realloc(c->items, ncap * sizeof(*it));
		if (!it) {
			c->text.failed = true;
			return;
		}
		c->items = it;
		c->capitems = ncap;
	}
	c->items[c->nitems].off = c->text.len;
	c->items[c->nitems].len = len;
	c->items[c->nitems].line = line;
	c->nitems++;
	buf_add(&c->text, text, len);
	l->st.bytes += len;
	if (kind == CK_DOC)
		flush(l);
}

struct loader *loader_new(struct store *s, bool progress)
{
	struct loader *l = calloc(1, sizeof(*l));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!l)
		return NULL;
	/* A bulk load frees millions of small json-c nodes between large
	 * buffers: without fastbins glibc stops consolidating them again and
	 * again, and big buffers stay in the heap instead of being mapped and
	 * unmapped (each munmap interrupts the other threads).  Measured: about
	 * 10% faster imports. */
	mallopt(M_MXFAST, 0);
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	l->store = s;
	l->cfg.store = s;
	/* one audit entry per transaction (a Bundle, a chunk of NDJSON): the
	 * resources (the first 16) and patients (the first 64) it wrote */
	l->ai.username = cli_actor();
	l->ai.action = PA_CREATE;
	l->ai.interaction = "import";
	l->ai.source = "local";
	{
		struct err e = ERR_INIT;
		if (fhir_params_load(s, &l->cfg.params, &e) < 0) {
			fprintf(stderr, "cannot load the search parameters: %s\n", e.msg);
			free(l);
			return NULL;
		}
	}
	l->cfg.max_depth = JSON_DEFAULT_MAX_DEPTH;
	l->cfg.bulk = true;
	{
		/* every Patient loaded is matched against the index (mpi/mpi.h) */
		struct err e = ERR_INIT;
		l->cfg.mpi_incr = mpi_incr_start(&l->cfg, &e);
		if (!l->cfg.mpi_incr) {
			fprintf(stderr, "cannot start patient matching: %s\n", e.msg);
			fhir_params_free(l->cfg.params);
			free(l);
			return NULL;
		}
	}
	l->progress = progress;
	l->nworkers = ncpu < 1 ? 1 : ncpu > MAX_WORKERS ? MAX_WORKERS : (size_t)ncpu;
	/* The store's writer is the slower end of the pipeline: the chunks
	 * prepared while it commits wait in its queue, and it commits all of
	 * them as one group (up to group_max_ops), writing each index page
	 * they share to the WAL once.  With room for only 3 waiting chunks the
	 * groups stayed small; 6 gave bench/ingest about 10 % (11.8k -> 13.2k
	 * resources/s), 12 no more, for 50 MB more memory per 6 chunks. */
	l->nchunks = l->nworkers + 6;
	l->chunks = calloc(l->nchunks, sizeof(*l->chunks));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (!l->chunks) {
		mpi_incr_stop(l->cfg.mpi_incr);
		fhir_params_free(l->cfg.params);
		free(l);
		return NULL;
	}
	for (size_t i = 0; i < l->nchunks; i++) {
		l->chunks[i].l = l;
		buf_init(&l->chunks[i].text, 0);
		buf_init(&l->chunks[i].problems, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &l->start);
	for (size_t i = 0; i < l->nworkers; i++) {
		if (pthread_create(&l->workers[i], NULL, worker_main, l) != 0) {
			l->nworkers = i;
			break;
		}
	}
	if (l->nworkers == 0) {
		loader_finish(l, NULL);
		return NULL;
	}
	return l;
}

void loader_no_match(struct loader *l)
{
	mpi_incr_stop(l->cfg.mpi_incr);
	l->cfg.mpi_incr = NULL;
}

int loader_json(struct loader *l, const char *json, size_t len, const char *origin)
{
	(void)origin;
	add_item(l, "demo", CK_LINES, json, len, ++l->demo_seq);
	return 0;
}

static bool looks_ndjson(const char *path)
{
	size_t n = strlen(path);

	return (n > 7 && strcmp(path + n - 7, ".ndjson") == 0) ||
	       (n > 6 && strcmp(path + n - 6, ".jsonl") == 0);
}

/* Is the file one resource per line?  Yes if its first non-blank line is a
 * whole JSON document and something follows it. */
static bool first_line_whole(const char *s, size_t n)
{
	size_t a = 0, b, c;
	struct err e = ERR_INIT;
	json_object *o;

	while (a < n && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r' || s[a] == '\n'))
		a++;
	b = a;
	while (b < n && s[b] != '\n')
		b++;
	c = b;
	while (c < n && (s[c] == ' ' || s[c] == '\t' || s[c] == '\r' || s[c] == '\n'))
		c++;
	if (c >= n)
		return false; /* one line: a document (a bundle written on one line) */
	o = json_parse_buf(s + a, b - a, 0, &e);
	if (!o)
		return false;
	json_object_put(o);
	return true;
}

static void read_lines(struct loader *l, const char *label, const char *s, size_t n)
{
	unsigned long line = 0;
	size_t pos = 0;

	while (pos < n) {
		const char *nl = memchr(s + pos, '\n', n - pos);
		size_t end = nl ? (size_t)(nl - s) : n, len = end - pos;
		const char *p = s + pos;
		line++;
		while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len && strspn(p, " \t") < len) {
			bool is_tx = len > 40 && memmem(p, len > 200 ? 200 : len, "\"Bundle\"", 8) &&
				     (memmem(p, len, "\"transaction\"", 13) || memmem(p, len, "\"batch\"", 7));
			/* A transaction line gets a chunk of its own: it is one store transaction. */
			add_item(l, label, is_tx ? CK_DOC : CK_LINES, p, len, line);
		} else {
			l->st.bytes += end - pos;
		}
		pos = end + 1;
	}
}

int loader_file(struct loader *l, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct buf all = BUF_INIT(0);
	char tmp[1 << 16];
	size_t n;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
		l->st.errors++;
		return -1;
	}
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(&all, tmp, n);
	if (ferror(f) || all.failed) {
		fprintf(stderr, "%s: cannot read: %s\n", path, all.failed ? "out of memory" : strerror(errno));
		l->st.errors++;
		rc = -1;
		goto out;
	}
	if (looks_ndjson(path) || first_line_whole(buf_cstr(&all), all.len))
		read_lines(l, path, buf_cstr(&all), all.len);
	else if (all.len)
		add_item(l, path, CK_DOC, all.data, all.len, 0);
	flush(l);
out:
	buf_release(&all);
	if (f != stdin)
		fclose(f);
	return rc;
}

void loader_finish(struct loader *l, struct loader_stats *out)
{
	if (!l)
		return;
	flush(l);
	drain(l, false);
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->nworkers; i++)
		pthread_join(l->workers[i], NULL);
	l->st.seconds = since(&l->start);
	show_progress(l, true);
	if (out)
		*out = l->st;
	for (size_t i = 0; i < l->nchunks; i++) {
		struct chunk *c = &l->chunks[i];
		chunk_reset(c);
		for (size_t k = 0; k < c->capops; k++)
			fhir_prepared_release(&c->preps[k]);
		free(c->ops);
		free(c->preps);
		free(c->items);
		buf_release(&c->text);
		buf_release(&c->problems);
	}
	free(l->chunks);
	mpi_incr_stop(l->cfg.mpi_incr);
	fhir_params_free(l->cfg.params);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}
