/* report.c - GET /mpi/report: the state of the master patient index for
 * the HIM data-integrity team.
 *
 *   patients          current Patients, and how many are merged into another
 *   duplicateRate     estimated share of patients with a probable duplicate:
 *                     a random sample (?sample=N, default 500) is matched
 *                     against the index; the share with a pair the model
 *                     would link, with a 95% interval
 *   review            review Tasks open, decided duplicate, not duplicate
 *   autoLinks         pairs the matcher linked (seealso) above the upper
 *                     threshold: all, still awaiting a decision, merged
 *                     since, undone (not a duplicate); whether it is on
 *   possibleOverlays  Patients one of whose updates changed the birth date
 *                     together with the sex or the given name: two people's
 *                     data in one record (an overlay), to investigate
 * The answer names patients by id only. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

#define MAX_OVERLAYS 1000

struct rep {
	const struct fhir_config *cfg;
	size_t patients, merged;
	char (*ids)[ID_MAX + 1];   /* every current, unmerged Patient with more than one version */
	size_t nids, capids;
	char (*all)[ID_MAX + 1];   /* a reservoir sample of patients */
	size_t nall, capall, seen;
	uint64_t rnd;
	size_t open, dup, notdup;
	size_t al, al_open, al_dup, al_notdup;   /* auto-linked pairs */
	struct buf *out;
	size_t overlays;
	struct err *e;
};

static uint64_t next_rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int count_patient(void *ctx, const struct store_version *v)
{
	struct rep *r = ctx;
	bool merged;
	char into[ID_MAX + 1];

	r->patients++;
	mpi_replaced_by(v->json, v->len, &merged, into, sizeof(into));
	if (merged) {
		r->merged++;
		return 0;
	}
	/* reservoir sample of the unmerged */
	r->seen++;
	if (r->nall < r->capall) {
		snprintf(r->all[r->nall++], ID_MAX + 1, "%s", v->id);
	} else {
		uint64_t k = next_rnd(&r->rnd) % r->seen;
		if (k < r->capall)
			snprintf(r->all[k], ID_MAX + 1, "%s", v->id);
	}
	if (v->vid > 1) {
		if (r->nids == r->capids) {
			size_t nc = r->capids ? r->capids * 2 : 256;
			char (*n)[ID_MAX + 1] = realloc(r->ids, nc * sizeof(*n));
			if (!n)
				return err_set(r->e, ERR_NOMEM, "out of memory");
			r->ids = n;
			r->capids = nc;
		}
		snprintf(r->ids[r->nids++], ID_MAX + 1, "%s", v->id);
	}
	return 0;
}

static int count_task(void *ctx, const struct store_version *v)
{
	struct rep *r = ctx;
	json_object *o;
	const char *st;
	bool al;

	if (!mpi_is_review_task(v->json, v->len))
		return 0;
	o = json_parse_buf(v->json, v->len, 0, r->e);
	if (!o)
		return 0;
	st = json_get_str(o, "status");
	al = mpi_review_auto_linked(o);
	r->al += al;
	if (st && (strcmp(st, "completed") == 0 || strcmp(st, "cancelled") == 0)) {
		const char *raw = json_dump_str(json_get_obj(o, "businessStatus"), NULL);
		if (raw && strstr(raw, "\"not-duplicate\"")) {
			r->notdup++;
			r->al_notdup += al;
		} else if (raw && strstr(raw, "\"duplicate\"")) {
			r->dup++;
			r->al_dup += al;
		}
	} else {
		r->open++;
		r->al_open += al;
	}
	json_object_put(o);
	return 0;
}

/* Versions of one Patient, newest first: an update that changed the birth
 * date with the sex or the given name. */
struct hist {
	struct rep *r;
	const char *id;
	char birth[16], sex[16], given[64];
	bool have;
	int64_t vid;
};

static void pick(const char *json, size_t len, char *birth, char *sex, char *given)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, 0, &e);
	json_object *n = json_get_arr(o, "name"), *g;

	birth[0] = sex[0] = given[0] = '\0';
	if (!o)
		return;
	snprintf(birth, 16, "%s", json_get_str(o, "birthDate") ? json_get_str(o, "birthDate") : "");
	snprintf(sex, 16, "%s", json_get_str(o, "gender") ? json_get_str(o, "gender") : "");
	g = n && json_object_array_length(n) ? json_get_arr(json_object_array_get_idx(n, 0), "given") : NULL;
	if (g && json_object_array_length(g))
		snprintf(given, 64, "%s", json_object_get_string(json_object_array_get_idx(g, 0)));
	json_object_put(o);
}

static int hist_version(void *ctx, const struct store_version *v)
{
	struct hist *h = ctx;
	char b[16], s[16], g[64];

	if (!v->json)
		return 0;
	pick(v->json, v->len, b, s, g);
	if (h->have && b[0] && h->birth[0] && strcmp(b, h->birth) != 0) {
		bool sex = s[0] && h->sex[0] && strcmp(s, h->sex) != 0;
		bool given = g[0] && h->given[0] && mpi_jaro_winkler(g, h->given) < 0.8 &&
			     !mpi_nick_same(g, h->given);
		if (sex || given) {
			if (h->r->overlays < MAX_OVERLAYS)
				buf_addf(h->r->out, "%s{\"patient\":\"Patient/%s\",\"version\":%" PRId64
						    ",\"changed\":[\"birthDate\"%s%s]}",
					 h->r->overlays ? "," : "", h->id, h->vid, sex ? ",\"gender\"" : "",
					 given ? ",\"name.given\"" : "");
			h->r->overlays++;
			return 1; /* one entry per patient */
		}
	}
	snprintf(h->birth, sizeof(h->birth), "%s", b);
	snprintf(h->sex, sizeof(h->sex), "%s", s);
	snprintf(h->given, sizeof(h->given), "%s", g);
	h->have = true;
	h->vid = v->vid;
	return 0;
}

int mpi_report(const struct fhir_config *cfg, size_t sample, struct buf *out, struct err *e)
{
	struct rep r;
	struct mpi_model m;
	size_t with_dup = 0;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.e = e;
	r.out = out;
	r.rnd = 0x9e3779b97f4a7c15ULL;
	r.capall = sample;
	r.all = malloc((sample ? sample : 1) * sizeof(*r.all));
	if (!r.all) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (mpi_model_load(cfg->store, &m, e) < 0 ||
	    store_scan_current(cfg->store, "Patient", count_patient, &r, e) < 0 ||
	    store_scan_current(cfg->store, "Task", count_task, &r, e) < 0)
		goto out;
	for (size_t i = 0; i < r.nall; i++) {
		struct store_version v;
		struct arena a;
		struct mpi_rec q;
		struct mpi_match_hit *hits = NULL;
		size_t n = 0;
		memset(&v, 0, sizeof(v));
		arena_init(&a, 0);
		if (store_read(cfg->store, "Patient", r.all[i], &v, e) == 0 &&
		    mpi_rec_from_text(v.json, v.len, r.all[i], &a, &q) == 0 &&
		    mpi_candidates(cfg, &m, &q, r.all[i], &a, NULL, NULL, &hits, &n, e) == 0)
			for (size_t k = 0; k < n; k++)
				if (hits[k].decision == MPI_LINK) {
					with_dup++;
					break;
				}
		err_clear(e);
		free(hits);
		store_version_release(&v);
		arena_release(&a);
	}
	{
		double p = r.nall ? (double)with_dup / (double)r.nall : 0;
		double h = r.nall ? 1.96 * sqrt(p * (1 - p) / (double)r.nall) : 0;
		buf_addf(out, "{\"patients\":%zu,\"merged\":%zu,\"duplicateRate\":{\"estimate\":%.4f,"
			      "\"low\":%.4f,\"high\":%.4f,\"sample\":%zu,\"withDuplicate\":%zu},"
			      "\"review\":{\"open\":%zu,\"duplicate\":%zu,\"notDuplicate\":%zu},"
			      "\"autoLinks\":{\"on\":%s,\"total\":%zu,\"open\":%zu,\"merged\":%zu,"
			      "\"undone\":%zu},"
			      "\"model\":{\"trained\":%s,\"upper\":%.4g,\"lower\":%.4g},\"possibleOverlays\":[",
			 r.patients, r.merged, p, p - h < 0 ? 0 : p - h, p + h > 1 ? 1 : p + h, r.nall, with_dup,
			 r.open, r.dup, r.notdup, mpi_auto_link_on() ? "true" : "false", r.al, r.al_open,
			 r.al_dup, r.al_notdup, m.trained ? "true" : "false", m.upper, m.lower);
	}
	for (size_t i = 0; i < r.nids; i++) {
		struct hist h;
		struct store_history_q q;
		int64_t next = 0;
		memset(&h, 0, sizeof(h));
		h.r = &r;
		h.id = r.ids[i];
		memset(&q, 0, sizeof(q));
		q.type = "Patient";
		q.id = r.ids[i];
		q.since_ms = INT64_MIN;
		q.at_ms = INT64_MIN;
		q.count = 100;
		if (store_history(cfg->store, &q, hist_version, &h, &next, e) < 0)
			goto out;
	}
	{
		size_t queued;
		bool busy;
		uint64_t done, tasks, linked, unlinked;
		mpi_incr_status(cfg->mpi_incr, &queued, &busy, &done, &tasks, &linked, &unlinked);
		buf_addf(out, "],\"possibleOverlaysTotal\":%zu,\"incremental\":{\"on\":%s,\"queued\":%zu,"
			      "\"busy\":%s,\"matched\":%" PRIu64 ",\"tasks\":%" PRIu64 ",\"linked\":%" PRIu64
			      ",\"unlinked\":%" PRIu64 "}}",
			 r.overlays, cfg->mpi_incr ? "true" : "false", queued, busy ? "true" : "false", done, tasks,
			 linked, unlinked);
	}
	rc = out->failed ? err_set(e, ERR_NOMEM, "out of memory") : 0;
out:
	free(r.ids);
	free(r.all);
	return rc;
}
