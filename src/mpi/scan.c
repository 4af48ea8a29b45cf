/* scan.c - batch deduplication of every Patient.
 *
 * 1. Load: the current Patients are read in id order and turned into
 *    struct mpi_rec, a batch at a time, parsed on all threads.
 * 2. Block: for each kind of key (mpi_keys) the (key, record) entries are
 *    sorted; every run of equal keys is a block, and every pair in a
 *    block is a candidate.  A pair that shares keys of several kinds is
 *    compared once, in the first kind's block.  Blocks larger than
 *    max_block (a key too common to say anything) are skipped, counted.
 * 3. Compare: threads take blocks from a shared counter, compare and score
 *    each candidate, and keep those at or above min_prob.
 * Pairs are reported with the smaller id first, sorted. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

#define BATCH 8192
#define MAX_THREADS 8

/* ---- loading ---- */

struct load_item {
	char id[ID_MAX + 1];
	char *json;
	size_t len;
};

struct loader {
	struct mpi_scan *sc;
	size_t cap;
	struct load_item *batch;
	size_t nb;
	struct arena arenas[MAX_THREADS];
	int threads;
	bool progress;
	struct err *e;
};

struct parse_job {
	struct loader *l;
	size_t from, to, base;
	int t;
};

static void *parse_part(void *arg)
{
	struct parse_job *j = arg;

	for (size_t i = j->from; i < j->to; i++) {
		struct load_item *it = &j->l->batch[i];
		struct mpi_rec *r = &j->l->sc->recs[j->base + i];
		if (mpi_rec_from_text(it->json, it->len, it->id, &j->l->arenas[j->t], r) < 0) {
			memset(r, 0, sizeof(*r));
			r->id = arena_strdup(&j->l->arenas[j->t], it->id);
			r->merged = true; /* unreadable: never matched */
		}
	}
	return NULL;
}

static int flush(struct loader *l)
{
	pthread_t th[MAX_THREADS];
	struct parse_job jobs[MAX_THREADS];
	size_t base = l->sc->n, per = (l->nb + (size_t)l->threads - 1) / (size_t)l->threads;

	if (!l->nb)
		return 0;
	if (base + l->nb > l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 65536;
		struct mpi_rec *nr;
		while (nc < base + l->nb)
			nc *= 2;
		nr = realloc(l->sc->recs, nc * sizeof(*nr));
		if (!nr)
			return err_set(l->e, ERR_NOMEM, "out of memory");
		l->sc->recs = nr;
		l->cap = nc;
	}
	for (int t = 0; t < l->threads; t++) {
		jobs[t] = (struct parse_job){ l, (size_t)t * per, (size_t)(t + 1) * per, base, t };
		if (jobs[t].to > l->nb)
			jobs[t].to = l->nb;
		if (jobs[t].from > jobs[t].to)
			jobs[t].from = jobs[t].to;
		if (t > 0)
			pthread_create(&th[t], NULL, parse_part, &jobs[t]);
	}
	parse_part(&jobs[0]);
	for (int t = 1; t < l->threads; t++)
		pthread_join(th[t], NULL);
	for (size_t i = 0; i < l->nb; i++)
		free(l->batch[i].json);
	l->sc->n += l->nb;
	l->nb = 0;
	if (l->progress)
		fprintf(stderr, "\rmpi: %zu patients read", l->sc->n);
	return 0;
}

static int load_one(void *ctx, const struct store_version *v)
{
	struct loader *l = ctx;
	struct load_item *it = &l->batch[l->nb];

	snprintf(it->id, sizeof(it->id), "%s", v->id);
	it->json = malloc(v->len + 1);
	if (!it->json)
		return err_set(l->e, ERR_NOMEM, "out of memory");
	memcpy(it->json, v->json, v->len);
	it->json[v->len] = '\0';
	it->len = v->len;
	if (++l->nb == BATCH)
		return flush(l);
	return 0;
}

/* ---- blocking ---- */

struct kent {
	uint64_t key;
	uint32_t rec;
};

static int kent_cmp(const void *a, const void *b)
{
	const struct kent *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* The pools of keys: kinds 4 and 5 (identifiers) are one pool. */
#define NPOOLS 6
static const int pool_slots[NPOOLS][2] = { { 0, -1 }, { 1, -1 }, { 2, -1 }, { 3, -1 }, { 4, 5 }, { 6, -1 } };

struct run {
	uint32_t pool, start, len;
};

struct pair_vec {
	struct mpi_scan_pair *v;
	size_t n, cap;
	uint8_t *lv;
	size_t nlv, caplv;
	uint64_t compared;
	bool failed;
};

struct scan_ctx {
	struct mpi_scan *sc;
	const struct mpi_scan_opts *o;
	uint64_t (*keys)[MPI_NKEYS];
	struct kent *pool[NPOOLS];
	struct run *runs;
	size_t nruns;
	atomic_size_t next;
	atomic_size_t levels_left;
	double min_prob, min_weight;
	struct pair_vec out[MAX_THREADS];
};

/* Do a and b share a key of a pool before p (or, in the identifier pool,
 * a smaller identifier key than k)?  Then that block compares them. */
static bool seen_before(const struct scan_ctx *c, uint32_t a, uint32_t b, int p, uint64_t k)
{
	const uint64_t *ka = c->keys[a], *kb = c->keys[b];

	for (int q = 0; q <= p; q++) {
		if (pool_slots[q][1] < 0) {
			int s = pool_slots[q][0];
			if (q < p && ka[s] && ka[s] == kb[s])
				return true;
			continue;
		}
		for (int i = 4; i <= 5; i++)
			for (int j = 4; j <= 5; j++)
				if (ka[i] && ka[i] == kb[j] && (q < p || ka[i] < k))
					return true;
	}
	return false;
}

static void keep(struct pair_vec *pv, uint32_t a, uint32_t b, double prob, double w, int decision)
{
	if (pv->n == pv->cap) {
		size_t nc = pv->cap ? pv->cap * 2 : 1024;
		struct mpi_scan_pair *nv = realloc(pv->v, nc * sizeof(*nv));
		if (!nv) {
			pv->failed = true;
			return;
		}
		pv->v = nv;
		pv->cap = nc;
	}
	pv->v[pv->n++] = (struct mpi_scan_pair){ a, b, (float)prob, (float)w, (uint8_t)decision };
}

static void keep_levels(struct scan_ctx *c, struct pair_vec *pv, const uint8_t *lv)
{
	size_t left = atomic_load(&c->levels_left);

	if (!left)
		return;
	if (!atomic_compare_exchange_strong(&c->levels_left, &left, left - 1))
		return; /* another thread took it: a vector less is no harm */
	if (pv->nlv == pv->caplv) {
		size_t nc = pv->caplv ? pv->caplv * 2 : 4096;
		uint8_t *nv = realloc(pv->lv, nc * MPI_NCMP);
		if (!nv) {
			pv->failed = true;
			return;
		}
		pv->lv = nv;
		pv->caplv = nc;
	}
	memcpy(pv->lv + pv->nlv * MPI_NCMP, lv, MPI_NCMP);
	pv->nlv++;
}

struct worker_arg {
	struct scan_ctx *c;
	int t;
};

static void *compare_blocks(void *arg)
{
	struct worker_arg *wa = arg;
	struct scan_ctx *c = wa->c;
	struct pair_vec *pv = &c->out[wa->t];
	const struct mpi_rec *recs = c->sc->recs;
	uint8_t lv[MPI_NCMP];

	for (;;) {
		size_t r = atomic_fetch_add(&c->next, 1);
		const struct run *run;
		const struct kent *ke;
		if (r >= c->nruns)
			break;
		run = &c->runs[r];
		ke = c->pool[run->pool] + run->start;
		for (uint32_t i = 0; i < run->len; i++) {
			uint32_t a = ke[i].rec;
			if (recs[a].merged)
				continue;
			for (uint32_t j = i + 1; j < run->len; j++) {
				uint32_t b = ke[j].rec, x, y;
				double w, p;
				if (a == b || recs[b].merged || seen_before(c, a, b, (int)run->pool, ke[i].key))
					continue;
				x = strcmp(recs[a].id, recs[b].id) < 0 ? a : b;
				y = x == a ? b : a;
				pv->compared++;
				if (c->o->keep_levels) {
					mpi_compare(&recs[x], &recs[y], lv);
					keep_levels(c, pv, lv);
					w = mpi_weight(c->o->model, lv);
				} else {
					w = mpi_score_bounded(c->o->model, &recs[x], &recs[y], c->min_weight, lv);
				}
				p = mpi_probability(c->o->model, w);
				if (p >= c->min_prob &&
				    !(c->o->skip && c->o->skip(c->o->skip_ctx, recs[x].id, recs[y].id)))
					keep(pv, x, y, p, w, mpi_decide(c->o->model, p, lv));
			}
		}
	}
	return NULL;
}

static int pair_cmp_ids(const void *a, const void *b, void *arg)
{
	const struct mpi_scan_pair *x = a, *y = b;
	const struct mpi_rec *r = arg;
	int c = strcmp(r[x->a].id, r[y->a].id);

	return c ? c : strcmp(r[x->b].id, r[y->b].id);
}

int mpi_scan_run(struct store *s, const struct mpi_scan_opts *o, struct mpi_scan *sc, struct err *e)
{
	struct loader *l = calloc(1, sizeof(*l));
	struct scan_ctx *c = calloc(1, sizeof(*c));
	size_t max_block = o->max_block ? o->max_block : 5000, cap_runs = 0;
	int threads = o->threads > 0 ? (o->threads > MAX_THREADS ? MAX_THREADS : o->threads) : 2;
	pthread_t th[MAX_THREADS];
	struct worker_arg wa[MAX_THREADS];
	int rc = -1;

	memset(sc, 0, sizeof(*sc));
	if (!l || !c) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* 1. load */
	l->sc = sc;
	l->threads = threads;
	l->progress = o->progress;
	l->e = e;
	l->batch = calloc(BATCH, sizeof(*l->batch));
	if (!l->batch) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int t = 0; t < MAX_THREADS; t++)
		arena_init(&l->arenas[t], 0);
	if (store_scan_current(s, "Patient", load_one, l, e) < 0 || flush(l) < 0)
		goto out;
	if (o->progress)
		fprintf(stderr, "\n");
	if (sc->n >= UINT32_MAX) {
		err_set(e, ERR_TOO_LARGE, "more patients than one scan handles");
		goto out;
	}
	/* 2. block */
	c->sc = sc;
	c->o = o;
	c->min_prob = o->min_prob > 0 ? o->min_prob : o->model->lower;
	c->min_weight = c->min_prob < 1 ? mpi_min_weight(o->model, c->min_prob) : INFINITY;
	atomic_init(&c->next, 0);
	atomic_init(&c->levels_left, o->keep_levels);
	c->keys = malloc((sc->n ? sc->n : 1) * sizeof(*c->keys));
	if (!c->keys) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < sc->n; i++)
		mpi_keys(&sc->recs[i], c->keys[i]);
	for (int p = 0; p < NPOOLS; p++) {
		size_t n = 0;
		c->pool[p] = malloc((sc->n ? sc->n : 1) * 2 * sizeof(struct kent));
		if (!c->pool[p]) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < sc->n; i++)
			for (int k = 0; k < 2; k++) {
				int slot = pool_slots[p][k];
				if (slot >= 0 && c->keys[i][slot] && !sc->recs[i].merged)
					c->pool[p][n++] = (struct kent){ c->keys[i][slot], (uint32_t)i };
			}
		if (n)
			qsort(c->pool[p], n, sizeof(struct kent), kent_cmp);
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;
			while (j < n && c->pool[p][j].key == c->pool[p][i].key)
				j++;
			if (j - i > max_block) {
				sc->skipped_blocks++;
				sc->skipped_records += j - i;
			} else if (j - i > 1) {
				if (c->nruns == cap_runs) {
					size_t nc = cap_runs ? cap_runs * 2 : 65536;
					struct run *nr = realloc(c->runs, nc * sizeof(*nr));
					if (!nr) {
						err_set(e, ERR_NOMEM, "out of memory");
						goto out;
					}
					c->runs = nr;
					cap_runs = nc;
				}
				c->runs[c->nruns++] = (struct run){ (uint32_t)p, (uint32_t)i, (uint32_t)(j - i) };
			}
			i = j;
		}
	}
	if (o->progress)
		fprintf(stderr, "mpi: %zu blocks to compare\n", c->nruns);
	/* 3. compare */
	for (int t = 0; t < threads; t++) {
		wa[t] = (struct worker_arg){ c, t };
		if (t > 0)
			pthread_create(&th[t], NULL, compare_blocks, &wa[t]);
	}
	compare_blocks(&wa[0]);
	for (int t = 1; t < threads; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < threads; t++) {
		struct pair_vec *pv = &c->out[t];
		if (pv->failed) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		sc->compared += pv->compared;
	}
	/* gather */
	{
		size_t np = 0, nl = 0;
		for (int t = 0; t < threads; t++) {
			np += c->out[t].n;
			nl += c->out[t].nlv;
		}
		sc->pairs = malloc((np ? np : 1) * sizeof(*sc->pairs));
		sc->levels = malloc((nl ? nl : 1) * MPI_NCMP);
		if (!sc->pairs || !sc->levels) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		for (int t = 0; t < threads; t++) {
			if (c->out[t].n)
				memcpy(sc->pairs + sc->npairs, c->out[t].v, c->out[t].n * sizeof(*sc->pairs));
			sc->npairs += c->out[t].n;
			if (c->out[t].nlv)
				memcpy(sc->levels + sc->nlevels * MPI_NCMP, c->out[t].lv, c->out[t].nlv * MPI_NCMP);
			sc->nlevels += c->out[t].nlv;
		}
		if (sc->npairs)
			qsort_r(sc->pairs, sc->npairs, sizeof(*sc->pairs), pair_cmp_ids, sc->recs);
	}
	sc->priv = l;
	l = NULL; /* the arenas hold the records' strings */
	rc = 0;
out:
	if (c) {
		free(c->keys);
		for (int p = 0; p < NPOOLS; p++)
			free(c->pool[p]);
		free(c->runs);
		for (int t = 0; t < MAX_THREADS; t++) {
			free(c->out[t].v);
			free(c->out[t].lv);
		}
		free(c);
	}
	if (l) {
		for (size_t i = 0; l->batch && i < l->nb; i++)
			free(l->batch[i].json);
		free(l->batch);
		for (int t = 0; t < MAX_THREADS; t++)
			arena_release(&l->arenas[t]);
		free(l);
		sc->priv = NULL;
	}
	if (rc < 0)
		mpi_scan_release(sc);
	return rc;
}

void mpi_scan_release(struct mpi_scan *sc)
{
	struct loader *l = sc->priv;

	if (l) {
		free(l->batch);
		for (int t = 0; t < MAX_THREADS; t++)
			arena_release(&l->arenas[t]);
		free(l);
	}
	free(sc->recs);
	free(sc->pairs);
	free(sc->levels);
	memset(sc, 0, sizeof(*sc));
}
