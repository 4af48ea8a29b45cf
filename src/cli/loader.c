/* loader.c - bulk loading for import and demo (see cli.h).
 *
 * Two slots alternate: while the store's writer commits one (a batch of
 * resources or a Bundle's transaction), this thread parses, validates and
 * prepares the next.  A slot is reused only after its commit is reported,
 * and its results (failed operations) are printed then, in input order. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "fhir/fhir.h"
#include "base/banned.h"

#define BATCH_OPS 2000
#define BATCH_BYTES (8u << 20)

struct loader;

struct slot {
	struct loader *l;
	struct store_txn txn;               /* a batch's transaction */
	struct store_txn *submitted;        /* the batch's, or the Bundle plan's */
	struct store_op *ops;
	struct fhir_prepared *preps;
	const char **origins;
	size_t n;
	size_t bytes;
	struct arena arena;                 /* origins */
	struct fhir_bundle_plan *plan;      /* a Bundle instead of a batch */
	char bundle_origin[512];
	bool bundle_transaction;
	bool busy;                          /* submitted, not yet reported */
	bool done;
};

struct loader {
	struct store *store;
	struct fhir_config cfg;
	struct slot slot[2];
	int cur;                            /* the slot being filled */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool progress;
	struct timespec start;
	double last_progress;
	struct loader_stats st;
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

struct loader *loader_new(struct store *s, bool progress)
{
	struct loader *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->store = s;
	l->cfg.store = s;
	l->cfg.max_depth = JSON_DEFAULT_MAX_DEPTH;
	l->cfg.max_bundle_entries = 0;
	l->progress = progress;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	for (int i = 0; i < 2; i++) {
		struct slot *sl = &l->slot[i];
		sl->l = l;
		sl->ops = calloc(BATCH_OPS, sizeof(*sl->ops));
		sl->preps = calloc(BATCH_OPS, sizeof(*sl->preps));
		sl->origins = calloc(BATCH_OPS, sizeof(*sl->origins));
		arena_init(&sl->arena, 0);
		if (!sl->ops || !sl->preps || !sl->origins) {
			loader_finish(l, NULL);
			return NULL;
		}
		for (size_t k = 0; k < BATCH_OPS; k++)
			fhir_prepared_init(&sl->preps[k]);
	}
	clock_gettime(CLOCK_MONOTONIC, &l->start);
	return l;
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

/* The writer thread's report that a slot's transaction is durable or failed. */
static void slot_done(struct store_txn *t, void *arg)
{
	struct slot *sl = arg;
	struct loader *l = sl->l;

	(void)t;
	pthread_mutex_lock(&l->mu);
	sl->done = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

struct entry_report {
	const char *origin;
	struct loader *l;
};

static void report_issue(const char *origin, const struct err *e)
{
	if (e->expr[0])
		fprintf(stderr, "%s: %s: %s\n", origin, e->expr, e->msg);
	else
		fprintf(stderr, "%s: %s\n", origin, e->msg);
}

static void entry_failed(void *ctx, size_t entry, const struct err *e)
{
	struct entry_report *r = ctx;
	char where[600];

	snprintf(where, sizeof(where), "%s: entry %zu", r->origin, entry);
	report_issue(where, e);
	r->l->st.errors++;
}

/* Wait for a busy slot's commit and report its results. */
static void slot_collect(struct loader *l, struct slot *sl)
{
	if (!sl->busy)
		return;
	pthread_mutex_lock(&l->mu);
	while (!sl->done)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	if (sl->plan) {
		if (sl->bundle_transaction && sl->submitted->rc < 0) {
			size_t n = fhir_bundle_entries(sl->plan);
			struct err e = sl->submitted->err;
			char where[600];
			snprintf(where, sizeof(where), "%s: transaction rolled back (%zu entries not imported)",
				 sl->bundle_origin, n);
			report_issue(where, &e);
			l->st.errors++;
		} else {
			struct entry_report r = { sl->bundle_origin, l };
			l->st.resources += fhir_bundle_report(sl->plan, entry_failed, &r);
		}
		fhir_bundle_plan_free(sl->plan);
		sl->plan = NULL;
	} else {
		for (size_t i = 0; i < sl->n; i++) {
			struct store_op *op = &sl->ops[i];
			if (op->status == 0) {
				report_issue(sl->origins[i], &op->err);
				l->st.errors++;
			} else {
				l->st.resources++;
			}
		}
	}
	sl->n = 0;
	sl->bytes = 0;
	arena_reset(&sl->arena);
	sl->busy = false;
	sl->done = false;
	show_progress(l, false);
}

static void slot_submit(struct loader *l, struct slot *sl, struct store_txn *t)
{
	sl->busy = true;
	sl->done = false;
	sl->submitted = t;
	t->done = slot_done;
	t->done_arg = sl;
	if (store_submit(l->store, t) < 0) {
		t->rc = -1;
		for (size_t i = 0; i < t->n; i++) {
			t->ops[i].status = 0;
			t->ops[i].err = t->err;
		}
		pthread_mutex_lock(&l->mu);
		sl->done = true;
		pthread_mutex_unlock(&l->mu);
	}
}

/* Submit the slot being filled and make the other one current. */
static void flush(struct loader *l)
{
	struct slot *sl = &l->slot[l->cur];

	if (sl->n == 0)
		return;
	sl->txn.ops = sl->ops;
	sl->txn.n = sl->n;
	sl->txn.atomic = false;
	slot_submit(l, sl, &sl->txn);
	l->cur ^= 1;
	slot_collect(l, &l->slot[l->cur]);
}

/* Validate and queue one parsed resource (takes ownership of res). */
static int loader_obj(struct loader *l, json_object *res, const char *origin)
{
	struct slot *sl = &l->slot[l->cur];
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	struct store_op *op;
	const char *id;
	char newid[ID_UUID_LEN + 1];

	fhir_issues_init(&iss);
	if (fhir_validate(res, NULL, &iss) > 0) {
		struct err first = ERR_INIT;
		err_set(&first, ERR_INVALID, "%s%s", iss.v[0].msg,
			iss.errors > 1 ? " (and more)" : "");
		err_expr(&first, iss.v[0].expr);
		report_issue(origin, &first);
		l->st.errors++;
		json_object_put(res);
		return -1;
	}
	id = json_get_str(res, "id");
	if (!id) {
		id_new(newid);
		id = newid;
	}
	op = &sl->ops[sl->n];
	memset(op, 0, sizeof(*op));
	if (fhir_prepare(res, id, &sl->preps[sl->n], &e) < 0) {
		report_issue(origin, &e);
		l->st.errors++;
		json_object_put(res);
		return -1;
	}
	fhir_prepared_op(&sl->preps[sl->n], op);
	op->kind = id == newid ? STORE_CREATE : STORE_UPDATE;
	op->method = id == newid ? STORE_POST : STORE_PUT;
	sl->origins[sl->n] = arena_strdup(&sl->arena, origin);
	if (!sl->origins[sl->n])
		sl->origins[sl->n] = "?";
	sl->bytes += sl->preps[sl->n].body.len;
	sl->n++;
	json_object_put(res);
	if (sl->n == BATCH_OPS || sl->bytes >= BATCH_BYTES)
		flush(l);
	return 0;
}

int loader_json(struct loader *l, const char *json, size_t len, const char *origin)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, l->cfg.max_depth, &e);

	l->st.bytes += len;
	if (!o) {
		report_issue(origin, &e);
		l->st.errors++;
		return -1;
	}
	return loader_obj(l, o, origin);
}

static void load_bundle(struct loader *l, json_object *b, const char *path)
{
	const char *type = json_get_str(b, "type");
	char origin[600];

	if (type && (strcmp(type, "transaction") == 0 || strcmp(type, "batch") == 0)) {
		struct fhir_issues iss;
		struct fhir_bundle_plan *plan = NULL;
		struct store_txn *txn = NULL;
		struct slot *sl;

		/* Bundles queue behind the resources read before them. */
		flush(l);
		sl = &l->slot[l->cur];
		fhir_issues_init(&iss);
		if (fhir_bundle_plan(&l->cfg, b, &plan, &txn, &iss) < 0) {
			for (size_t i = 0; i < iss.n; i++) {
				struct err e = ERR_INIT;
				err_set(&e, ERR_INVALID, "%s", iss.v[i].msg);
				err_expr(&e, iss.v[i].expr);
				report_issue(path, &e);
			}
			if (iss.dropped)
				fprintf(stderr, "%s: %zu further problems not shown\n", path, iss.dropped);
			l->st.errors += iss.errors ? iss.errors : 1;
			if (strcmp(type, "transaction") == 0)
				fprintf(stderr, "%s: transaction not imported (all or nothing)\n", path);
			return;
		}
		snprintf(sl->bundle_origin, sizeof(sl->bundle_origin), "%s", path);
		sl->bundle_transaction = strcmp(type, "transaction") == 0;
		sl->plan = plan;
		slot_submit(l, sl, txn);
		l->cur ^= 1;
		slot_collect(l, &l->slot[l->cur]);
		return;
	}
	if (type && (strcmp(type, "collection") == 0 || strcmp(type, "searchset") == 0 ||
		     strcmp(type, "document") == 0 || strcmp(type, "message") == 0)) {
		json_object *entries = json_get_arr(b, "entry");
		size_t n = entries ? json_object_array_length(entries) : 0;
		for (size_t i = 0; i < n; i++) {
			json_object *res = json_get(json_object_array_get_idx(entries, i), "resource");
			snprintf(origin, sizeof(origin), "%s: entry %zu", path, i);
			if (!res) {
				struct err e = ERR_INIT;
				err_set(&e, ERR_INVALID, "entry has no resource");
				report_issue(origin, &e);
				l->st.errors++;
				continue;
			}
			loader_obj(l, json_object_get(res), origin);
		}
		return;
	}
	{
		struct err e = ERR_INIT;
		err_set(&e, ERR_INVALID, "cannot import a Bundle of type '%s'", type ? type : "(none)");
		err_expr(&e, "Bundle.type");
		report_issue(path, &e);
		l->st.errors++;
	}
}

/* One JSON document: a Bundle, or a single resource. */
static void load_document(struct loader *l, json_object *o, const char *path)
{
	if (json_is_str(json_get(o, "resourceType"), "Bundle") &&
	    !json_is_str(json_get(o, "type"), "history")) {
		load_bundle(l, o, path);
		json_object_put(o);
		return;
	}
	loader_obj(l, o, path);
}

static bool looks_ndjson(const char *path)
{
	size_t n = strlen(path);

	return (n > 7 && strcmp(path + n - 7, ".ndjson") == 0) ||
	       (n > 6 && strcmp(path + n - 6, ".jsonl") == 0);
}

int loader_file(struct loader *l, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *line = NULL, *all = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
		l->st.errors++;
		return -1;
	}
	if (!looks_ndjson(path) && f != stdin) {
		/* A .json file (or anything not named .ndjson) is one document,
		 * unless it is clearly one resource per line. */
		struct stat sb;
		struct err e = ERR_INIT;
		json_object *o;
		if (fstat(fileno(f), &sb) < 0 || sb.st_size < 0) {
			fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
			fclose(f);
			return -1;
		}
		all = malloc((size_t)sb.st_size + 1);
		if (!all || fread(all, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
			fprintf(stderr, "%s: cannot read\n", path);
			free(all);
			fclose(f);
			l->st.errors++;
			return -1;
		}
		l->st.bytes += (uint64_t)sb.st_size;
		o = json_parse_buf(all, (size_t)sb.st_size, l->cfg.max_depth, &e);
		if (o) {
			free(all);
			fclose(f);
			load_document(l, o, path);
			return 0;
		}
		/* Not one document: NDJSON if its first line is a whole resource. */
		{
			char *nl = memchr(all, '\n', (size_t)sb.st_size);
			struct err e2 = ERR_INIT;
			json_object *first = nl ? json_parse_buf(all, (size_t)(nl - all), 0, &e2) : NULL;
			if (!first) {
				report_issue(path, &e);
				l->st.errors++;
				free(all);
				fclose(f);
				return 0;
			}
			json_object_put(first);
		}
		free(all);
		l->st.bytes -= (uint64_t)sb.st_size;
		rewind(f);
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char origin[600];
		size_t len = (size_t)n;
		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0 || strspn(line, " \t") == len) {
			l->st.bytes += (uint64_t)n;
			continue;
		}
		snprintf(origin, sizeof(origin), "%s:%lu", path, lineno);
		{
			struct err e = ERR_INIT;
			json_object *o = json_parse_buf(line, len, l->cfg.max_depth, &e);
			l->st.bytes += (uint64_t)n;
			if (!o) {
				report_issue(origin, &e);
				l->st.errors++;
				continue;
			}
			if (json_is_str(json_get(o, "resourceType"), "Bundle") &&
			    (json_is_str(json_get(o, "type"), "transaction") ||
			     json_is_str(json_get(o, "type"), "batch"))) {
				load_bundle(l, o, origin);
				json_object_put(o);
			} else {
				loader_obj(l, o, origin);
			}
		}
		show_progress(l, false);
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error: %s\n", path, strerror(errno));
		rc = -1;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

void loader_finish(struct loader *l, struct loader_stats *out)
{
	if (!l)
		return;
	if (l->slot[0].ops && l->slot[1].ops) {
		flush(l);
		slot_collect(l, &l->slot[0]);
		slot_collect(l, &l->slot[1]);
	}
	l->st.seconds = since(&l->start);
	show_progress(l, true);
	if (out)
		*out = l->st;
	for (int i = 0; i < 2; i++) {
		struct slot *sl = &l->slot[i];
		if (sl->preps)
			for (size_t k = 0; k < BATCH_OPS; k++)
				fhir_prepared_release(&sl->preps[k]);
		fhir_bundle_plan_free(sl->plan);
		free(sl->ops);
		free(sl->preps);
		free(sl->origins);
		arena_release(&sl->arena);
	}
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}
