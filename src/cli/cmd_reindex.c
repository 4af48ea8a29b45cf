/* cmd_reindex.c - chartkeep reindex: rebuild the search index rows.
 *
 * Reads the current resources in rkey order, a page at a time (each page is
 * a short read, so the WAL can be checkpointed behind us), extracts their
 * rows with the search parameters the database has now (R4 and its own
 * SearchParameter resources), and replaces each resource's rows with a
 * STORE_REINDEX operation guarded by the version the rows were made from: a
 * resource written meanwhile keeps the rows its own write made.  One page is
 * prepared while the previous one commits.  Searches stay correct while it
 * runs: each resource's rows are swapped in one transaction. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define PAGE 2000

struct page {
	struct store_op ops[PAGE];
	struct fhir_ixrows rows[PAGE];
	char types[PAGE][64];
	char ids[PAGE][ID_MAX + 1];
	size_t n;
	struct store_txn txn;
	bool pending;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

struct rx {
	const struct cli_cmd *cmd;
	struct store *s;
	struct fhir_params *params;
	struct page *pg;
	int64_t last_rkey;
	size_t done, skipped, failed;
	struct err e;
};

static void page_committed(struct store_txn *t, void *arg)
{
	struct page *pg = arg;

	(void)t;
	pthread_mutex_lock(&pg->mu);
	pg->pending = false;
	pthread_cond_broadcast(&pg->cv);
	pthread_mutex_unlock(&pg->mu);
}

static void page_wait(struct page *pg)
{
	pthread_mutex_lock(&pg->mu);
	while (pg->pending)
		pthread_cond_wait(&pg->cv, &pg->mu);
	pthread_mutex_unlock(&pg->mu);
}

/* Count what the store did with a committed page. */
static void page_tally(struct rx *x, struct page *pg)
{
	for (size_t i = 0; i < pg->n; i++) {
		const struct store_op *op = &pg->ops[i];
		if (op->status == 0) {
			/* deleted since it was read: nothing to index */
			if (op->err.code == ERR_NOT_FOUND)
				x->skipped++;
			else
				x->failed++;
		} else if (op->noop) {
			x->skipped++;
		} else {
			x->done++;
		}
	}
	pg->n = 0;
}

static int on_hit(void *arg, const struct store_hit *h)
{
	struct rx *x = arg;
	struct page *pg = x->pg;
	struct store_op *op = &pg->ops[pg->n];
	struct fhir_ixrows *rows = &pg->rows[pg->n];
	json_object *res;
	struct err e = ERR_INIT;

	x->last_rkey = h->rkey;
	res = json_parse_buf(h->v.json, h->v.len, 0, &e);
	if (!res || fhir_index(x->params, res, rows, &e) < 0) {
		/* stored JSON always parses; a failure here is memory */
		json_object_put(res);
		x->e = e;
		return -1;
	}
	json_object_put(res);
	snprintf(pg->types[pg->n], sizeof(pg->types[0]), "%s", h->v.type);
	snprintf(pg->ids[pg->n], sizeof(pg->ids[0]), "%s", h->v.id);
	memset(op, 0, sizeof(*op));
	op->kind = STORE_REINDEX;
	op->type = pg->types[pg->n];
	op->id = pg->ids[pg->n];
	op->if_match = h->v.vid;
	op->ix = rows->v;
	op->n_ix = rows->n;
	pg->n++;
	return 0;
}

static void progress(const struct rx *x, int64_t total, double secs, bool final)
{
	size_t seen = x->done + x->skipped + x->failed;

	if (final)
		printf("reindexed %zu resources in %.2f s (%.0f resources/s); %zu unchanged or gone, "
		       "%zu failed\n",
		       x->done, secs, secs > 0 ? (double)seen / secs : 0.0, x->skipped, x->failed);
	else
		fprintf(stdout, "\r%zu / %" PRId64 " resources, %.0f/s   ", seen, total,
			secs > 0 ? (double)seen / secs : 0.0);
	fflush(stdout);
}

int cmd_reindex(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *type = NULL;
	const struct cli_opt opts[] = { { "db", CLI_STR, &db, 0, 0 },
					{ "type", CLI_STR, &type, 0, 0 },
					{ NULL, 0, NULL, 0, 0 } };
	struct store *s = NULL;
	struct page *pages = NULL;
	struct rx x;
	struct timespec t0, t1;
	bool tty = isatty(STDOUT_FILENO);
	int64_t total = 0;
	int rc, npos, cur = 0;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (type && !fhir_resource_type(type))
		return cli_usage_error(cmd, "unknown resource type '%s'", type);
	if (type)
		type = fhir_resource_type(type)->name;
	if ((rc = cli_open_store(cmd, db, &(struct store_opts){ .writer_cache_kb = 131072 }, &s)) != 0)
		return rc;
	memset(&x, 0, sizeof(x));
	x.cmd = cmd;
	x.s = s;
	if (fhir_params_load(s, &x.params, &x.e) < 0) {
		rc = cli_fail(cmd, &x.e);
		goto out;
	}
	pages = calloc(2, sizeof(*pages));
	if (!pages) {
		err_set(&x.e, ERR_NOMEM, "out of memory");
		rc = cli_fail(cmd, &x.e);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		pthread_mutex_init(&pages[i].mu, NULL);
		pthread_cond_init(&pages[i].cv, NULL);
		for (size_t k = 0; k < PAGE; k++)
			fhir_ixrows_init(&pages[i].rows[k]);
	}
	if (store_count_current(s, type, &total, &x.e) < 0) {
		rc = cli_fail(cmd, &x.e);
		goto out;
	}
	/* it reads every resource: in the trail before the first is read */
	if (cli_audit(s, "reindex", PA_OPERATION, 200, &x.e) < 0) {
		rc = cli_fail(cmd, &x.e);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct store_query q;
		struct page *pg = &pages[cur];
		bool more = false;

		/* this page's buffers are free once its previous commit is done */
		page_wait(pg);
		page_tally(&x, pg);
		memset(&q, 0, sizeof(q));
		q.type = type;
		q.count = PAGE;
		q.has_cursor = x.last_rkey > 0;
		q.cursor_rkey = x.last_rkey;
		x.pg = pg;
		if (store_search(s, &q, on_hit, &x, &more, NULL, &x.e) < 0) {
			rc = cli_fail(cmd, &x.e);
			goto out;
		}
		if (pg->n) {
			memset(&pg->txn, 0, sizeof(pg->txn));
			pg->txn.ops = pg->ops;
			pg->txn.n = pg->n;
			pg->txn.atomic = false; /* a resource deleted meanwhile fails alone */
			pg->txn.done = page_committed;
			pg->txn.done_arg = pg;
			pg->pending = true;
			if (store_submit(s, &pg->txn) < 0) {
				pg->pending = false;
				rc = cli_fail(cmd, &pg->txn.err);
				goto out;
			}
		}
		if (tty) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			progress(&x, total, (double)(t1.tv_sec - t0.tv_sec) +
						    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, false);
		}
		if (!more)
			break;
		cur = 1 - cur;
	}
	for (int i = 0; i < 2; i++) {
		page_wait(&pages[i]);
		page_tally(&x, &pages[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (tty)
		fputc('\n', stdout);
	progress(&x, total, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		 true);
	rc = x.failed ? 1 : 0;
	if (x.failed)
		fprintf(stderr, "chartkeep reindex: %zu resources could not be reindexed\n", x.failed);
out:
	if (pages) {
		for (int i = 0; i < 2; i++) {
			page_wait(&pages[i]);
			for (size_t k = 0; k < PAGE; k++)
				fhir_ixrows_release(&pages[i].rows[k]);
			pthread_mutex_destroy(&pages[i].mu);
			pthread_cond_destroy(&pages[i].cv);
		}
		free(pages);
	}
	fhir_params_free(x.params);
	store_close(s);
	return rc;
}
