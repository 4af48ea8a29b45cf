/* model.c - the comparison table, Fellegi-Sunter weights and their
 * estimation by EM.
 *
 * Each row of mpi_cmps compares one feature with one comparator and
 * sorts the pair into a level (exact, close, ..., disagree).  A level's
 * weight is log2(m/u): m the chance of that level for a true match, u for
 * two different people.  A pair's match weight is the sum over the
 * comparisons both records have a value for: a missing value says nothing.
 * The match probability adds the prior odds (lambda) of a match among the
 * candidate pairs blocking finds.
 *
 * To change what is compared, change the table (and MPI_NCMP); the
 * comparators are the six kinds below. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

const struct mpi_cmp_def mpi_cmps[] = {
	{ "given", MC_NAME, MF_GIVEN, 4, { "exact or nickname", "jw>=0.92", "jw>=0.80, phonetic or initial", "different" },
	  { 0.86, 0.07, 0.04, 0.03 }, { 0.004, 0.003, 0.02, 0.973 } },
	{ "family", MC_STRING, MF_FAMILY, 4, { "exact", "jw>=0.92", "jw>=0.80 or phonetic", "different" },
	  { 0.87, 0.07, 0.03, 0.03 }, { 0.002, 0.002, 0.01, 0.986 } },
	{ "middle", MC_NAME, MF_MIDDLE, 4, { "exact or nickname", "jw>=0.92", "jw>=0.80, phonetic or initial", "different" },
	  { 0.80, 0.05, 0.10, 0.05 }, { 0.01, 0.005, 0.04, 0.945 } },
	{ "sex", MC_EXACT, MF_SEX, 2, { "same", "different" }, { 0.97, 0.03 }, { 0.5, 0.5 } },
	{ "birthDate", MC_DATE, MF_BIRTH, 4, { "exact", "day/month swapped or one typo", "same year", "different" },
	  { 0.88, 0.09, 0.01, 0.02 }, { 0.0003, 0.004, 0.01, 0.9857 } },
	{ "address", MC_STRING, MF_LINE, 4, { "exact", "jw>=0.92", "jw>=0.80", "different" },
	  { 0.80, 0.08, 0.04, 0.08 }, { 0.0005, 0.002, 0.01, 0.9875 } },
	{ "address2", MC_STRING, MF_LINE2, 4, { "exact", "jw>=0.92", "jw>=0.80", "different" },
	  { 0.75, 0.08, 0.04, 0.13 }, { 0.002, 0.004, 0.02, 0.974 } },
	{ "city", MC_STRING, MF_CITY, 4, { "exact", "jw>=0.92", "jw>=0.80", "different" },
	  { 0.85, 0.06, 0.02, 0.07 }, { 0.003, 0.003, 0.01, 0.984 } },
	{ "postalCode", MC_CODE, MF_POSTAL, 3, { "exact", "one edit", "different" },
	  { 0.85, 0.07, 0.08 }, { 0.003, 0.03, 0.967 } },
	{ "state", MC_EXACT, MF_STATE, 2, { "same", "different" }, { 0.95, 0.05 }, { 0.2, 0.8 } },
	{ "phone", MC_CODE, MF_PHONE, 3, { "exact", "one edit", "different" },
	  { 0.80, 0.06, 0.14 }, { 0.0001, 0.0005, 0.9994 } },
	{ "email", MC_EXACT, MF_EMAIL, 2, { "same", "different" }, { 0.90, 0.10 }, { 0.0001, 0.9999 } },
	{ "identifier", MC_IDENT, MF_IDENT, 3, { "exact", "one edit", "different" },
	  { 0.90, 0.06, 0.04 }, { 0.0001, 0.0005, 0.9994 } },
};
const size_t mpi_ncmps = ARRAY_SIZE(mpi_cmps);

_Static_assert(ARRAY_SIZE(mpi_cmps) == MPI_NCMP, "MPI_NCMP is the number of rows of mpi_cmps");

void mpi_model_weights(struct mpi_model *m)
{
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			m->w[k][l] = log2(m->m[k][l] / m->u[k][l]);
}

void mpi_model_default(struct mpi_model *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++) {
			m->m[k][l] = mpi_cmps[k].m[l];
			m->u[k][l] = mpi_cmps[k].u[l];
		}
	m->lambda = 0.05;
	m->upper = 0.95;
	m->lower = 0.50;
	mpi_model_weights(m);
}

/* ---- comparators ---- */

static int cmp_name(const char *a, const char *b, const char *pa, const char *pb)
{
	double jw;

	if (strcmp(a, b) == 0 || mpi_nick_same(a, b))
		return 0;
	jw = mpi_jaro_winkler(a, b);
	if (jw >= 0.92)
		return 1;
	if (jw >= 0.80 || (pa && pb && pa[0] && strcmp(pa, pb) == 0))
		return 2;
	/* an initial for a name */
	if ((a[1] == '\0' || b[1] == '\0') && a[0] == b[0])
		return 2;
	return 3;
}

static int cmp_string(const char *a, const char *b, const char *pa, const char *pb)
{
	double jw;

	if (strcmp(a, b) == 0)
		return 0;
	jw = mpi_jaro_winkler(a, b);
	if (jw >= 0.92)
		return 1;
	if (jw >= 0.80 || (pa && pb && pa[0] && strcmp(pa, pb) == 0))
		return 2;
	return 3;
}

static int cmp_date(int32_t a, int32_t b)
{
	int ya = a / 10000, yb = b / 10000, ma = a / 100 % 100, mb = b / 100 % 100, da = a % 100,
	    db = b % 100;
	char sa[12], sb[12];

	if (a == b)
		return 0;
	if (ya == yb && ma == db && da == mb)
		return 1; /* day and month swapped */
	snprintf(sa, sizeof(sa), "%08d", (int)a);
	snprintf(sb, sizeof(sb), "%08d", (int)b);
	if (mpi_damerau(sa, sb, 1) <= 1)
		return 1;
	if (ya == yb || (ma == mb && da == db && abs(ya - yb) <= 10))
		return 2;
	return 3;
}

static int cmp_code(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return 0;
	return mpi_damerau(a, b, 1) <= 1 ? 1 : 2;
}

/* Identifiers: the best level over the pairs with the same system;
 * MPI_MISSING when the two share no system. */
static int cmp_ident(const char *a, const char *b)
{
	int best = MPI_MISSING;

	for (const char *p = a; *p;) {
		const char *pe = strchr(p, '\n'), *bar = strchr(p, '|');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		if (bar && bar < p + pl) {
			size_t sl = (size_t)(bar - p);
			for (const char *q = b; *q;) {
				const char *qe = strchr(q, '\n');
				size_t ql = qe ? (size_t)(qe - q) : strlen(q);
				if (ql > sl && q[sl] == '|' && memcmp(p, q, sl) == 0) {
					char va[96], vb[96];
					size_t la = pl - sl - 1, lb = ql - sl - 1;
					int lv;
					if (la < sizeof(va) && lb < sizeof(vb)) {
						memcpy(va, bar + 1, la);
						va[la] = '\0';
						memcpy(vb, q + sl + 1, lb);
						vb[lb] = '\0';
						lv = cmp_code(va, vb);
						if (best == MPI_MISSING || lv < best)
							best = lv;
					}
				}
				q += ql + (qe ? 1 : 0);
			}
		}
		p += pl + (pe ? 1 : 0);
	}
	return best;
}

/* The names of b as compared with a's: swapped when a registrar wrote
 * them the wrong way round. */
struct names {
	const char *g, *f, *gp, *fp;
};

static int level_of(size_t k, const struct mpi_rec *a, const struct mpi_rec *b, const struct names *n)
{
	const struct mpi_cmp_def *c = &mpi_cmps[k];
	const char *x = a->f[c->field], *y = b->f[c->field];

	if (c->field == MF_GIVEN)
		y = n->g;
	else if (c->field == MF_FAMILY)
		y = n->f;
	if (!x || !y)
		return MPI_MISSING;
	switch (c->kind) {
	case MC_NAME:
		return cmp_name(x, y, c->field == MF_GIVEN ? a->given_ph : NULL, c->field == MF_GIVEN ? n->gp : NULL);
	case MC_STRING:
		return cmp_string(x, y, c->field == MF_FAMILY ? a->family_ph : NULL,
				  c->field == MF_FAMILY ? n->fp : NULL);
	case MC_DATE:
		return cmp_date(a->birth, b->birth);
	case MC_EXACT:
		return strcmp(x, y) == 0 ? 0 : 1;
	case MC_CODE:
		return cmp_code(x, y);
	default:
		return cmp_ident(x, y);
	}
}

/* Where the table keeps some comparisons (set once, before any thread
 * reads them). */
static size_t k_given = MPI_NCMP, k_family = MPI_NCMP;
static size_t k_sex = MPI_NCMP, k_ident = MPI_NCMP, k_birth = MPI_NCMP, k_phone = MPI_NCMP,
	      k_addr = MPI_NCMP, k_email = MPI_NCMP;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void index_table(void)
{
	for (size_t k = 0; k < MPI_NCMP; k++) {
		size_t *slot = mpi_cmps[k].field == MF_GIVEN ? &k_given : mpi_cmps[k].field == MF_FAMILY ? &k_family
			     : mpi_cmps[k].field == MF_SEX ? &k_sex : mpi_cmps[k].field == MF_IDENT ? &k_ident
			     : mpi_cmps[k].field == MF_BIRTH ? &k_birth : mpi_cmps[k].field == MF_PHONE ? &k_phone
			     : mpi_cmps[k].field == MF_LINE ? &k_addr : mpi_cmps[k].field == MF_EMAIL ? &k_email
			     : NULL;
		if (slot)
			*slot = k;
	}
}

static void find_names(void)
{
	pthread_once(&table_once, index_table);
}

/* Given and family, straight or swapped (whichever agrees better, the
 * swap only when the straight comparison disagrees). */
static void names_of(const struct mpi_rec *a, const struct mpi_rec *b, struct names *n, int *lg, int *lf)
{
	struct names sw = { b->f[MF_FAMILY], b->f[MF_GIVEN], b->family_ph, b->given_ph };

	n->g = b->f[MF_GIVEN];
	n->f = b->f[MF_FAMILY];
	n->gp = b->given_ph;
	n->fp = b->family_ph;
	find_names();
	*lg = level_of(k_given, a, b, n);
	*lf = level_of(k_family, a, b, n);
	if (*lg != MPI_MISSING && *lf != MPI_MISSING && *lg + *lf >= 4) {
		int sg = level_of(k_given, a, b, &sw), sf = level_of(k_family, a, b, &sw);
		if (sg + sf <= 2 && sg + sf < *lg + *lf) {
			*n = sw;
			*lg = sg;
			*lf = sf;
		}
	}
}

void mpi_compare(const struct mpi_rec *a, const struct mpi_rec *b, uint8_t lv[MPI_NCMP])
{
	struct names n;
	int lg, lf;

	names_of(a, b, &n, &lg, &lf);
	for (size_t k = 0; k < MPI_NCMP; k++)
		lv[k] = (uint8_t)(k == k_given ? lg : k == k_family ? lf : level_of(k, a, b, &n));
}

/* Cheap comparisons first (dates, codes, exact values), names and
 * addresses (Jaro-Winkler) last, so that most pairs are settled early. */
static int cost_rank(int kind)
{
	return kind == MC_NAME || kind == MC_STRING ? 1 : 0;
}

double mpi_score_bounded(const struct mpi_model *m, const struct mpi_rec *a, const struct mpi_rec *b,
			 double min_weight, uint8_t lv[MPI_NCMP])
{
	size_t order[MPI_NCMP], n = 0;
	double rest[MPI_NCMP + 1], w = 0;
	struct names nm;
	bool have_names = false;
	int lg = 0, lf = 0;

	for (int r = 0; r <= 1; r++)
		for (size_t k = 0; k < MPI_NCMP; k++)
			if (cost_rank(mpi_cmps[k].kind) == r)
				order[n++] = k;
	rest[MPI_NCMP] = 0;
	for (size_t i = MPI_NCMP; i-- > 0;) {
		double best = 0; /* missing: nothing */
		for (int l = 0; l < mpi_cmps[order[i]].nlevels; l++)
			if (m->w[order[i]][l] > best)
				best = m->w[order[i]][l];
		rest[i] = rest[i + 1] + best;
	}
	find_names();
	nm = (struct names){ b->f[MF_GIVEN], b->f[MF_FAMILY], b->given_ph, b->family_ph };
	for (size_t k = 0; k < MPI_NCMP; k++)
		lv[k] = MPI_MISSING;
	for (size_t i = 0; i < MPI_NCMP; i++) {
		size_t k = order[i];
		int l;
		if (w + rest[i] < min_weight)
			return -INFINITY; /* cannot reach it any more */
		if ((k == k_given || k == k_family) && !have_names) {
			names_of(a, b, &nm, &lg, &lf);
			have_names = true;
		}
		/* the names come last (cost_rank): nm is set before any field
		 * that reads it */
		l = k == k_given ? lg : k == k_family ? lf : level_of(k, a, b, &nm);
		lv[k] = (uint8_t)l;
		if (l != MPI_MISSING)
			w += m->w[k][l];
	}
	return w;
}

double mpi_min_weight(const struct mpi_model *m, double prob)
{
	return log2(prob / (1.0 - prob)) - log2(m->lambda / (1.0 - m->lambda));
}

double mpi_weight(const struct mpi_model *m, const uint8_t lv[MPI_NCMP])
{
	double w = 0;

	for (size_t k = 0; k < MPI_NCMP; k++)
		if (lv[k] != MPI_MISSING)
			w += m->w[k][lv[k]];
	return w;
}

double mpi_probability(const struct mpi_model *m, double weight)
{
	double prior = log2(m->lambda / (1.0 - m->lambda));

	return 1.0 / (1.0 + exp2(-(weight + prior)));
}

/* ---- decisions ---- */

int mpi_decide(const struct mpi_model *m, double prob, const uint8_t lv[MPI_NCMP])
{
	if (prob < m->lower)
		return MPI_NONE;
	if (prob < m->upper)
		return MPI_REVIEW;
	find_names();
	/* Twins (and a household's members born the same day) agree on all
	 * but the given name and perhaps sex; the agreements are not
	 * independent evidence, so such a pair is never linked unasked
	 * unless an identifier agrees exactly. */
	if (k_ident < MPI_NCMP && lv[k_ident] == 0)
		return MPI_LINK;
	if ((k_given < MPI_NCMP && lv[k_given] == mpi_cmps[k_given].nlevels - 1) ||
	    (k_sex < MPI_NCMP && lv[k_sex] == 1))
		return MPI_REVIEW;
	/* Names alone are not enough: two people may share a common name.  A
	 * link needs one agreement that belongs to a person, not to a name:
	 * the birth date (or a typo of it), a phone, an address, an e-mail. */
	if (!((k_birth < MPI_NCMP && lv[k_birth] <= 1) || (k_phone < MPI_NCMP && lv[k_phone] == 0) ||
	      (k_addr < MPI_NCMP && lv[k_addr] == 0) || (k_email < MPI_NCMP && lv[k_email] == 0)))
		return MPI_REVIEW;
	return MPI_LINK;
}

/* ---- EM ---- */

#define P_FLOOR 1e-6

int mpi_em(struct mpi_model *m, const uint8_t *lv, size_t n, bool fix_u, int max_iter)
{
	double sm[MPI_NCMP][MPI_MAX_LEVELS], su[MPI_NCMP][MPI_MAX_LEVELS];
	double tm[MPI_NCMP], tu[MPI_NCMP];
	int it;

	if (n == 0)
		return 0;
	for (it = 0; it < max_iter; it++) {
		double sg = 0, delta = 0;
		memset(sm, 0, sizeof(sm));
		memset(su, 0, sizeof(su));
		memset(tm, 0, sizeof(tm));
		memset(tu, 0, sizeof(tu));
		for (size_t i = 0; i < n; i++) {
			const uint8_t *v = lv + i * MPI_NCMP;
			double lm = log(m->lambda), lu = log(1.0 - m->lambda), g;
			for (size_t k = 0; k < MPI_NCMP; k++)
				if (v[k] != MPI_MISSING) {
					lm += log(m->m[k][v[k]]);
					lu += log(m->u[k][v[k]]);
				}
			g = 1.0 / (1.0 + exp(lu - lm));
			sg += g;
			for (size_t k = 0; k < MPI_NCMP; k++)
				if (v[k] != MPI_MISSING) {
					sm[k][v[k]] += g;
					su[k][v[k]] += 1.0 - g;
					tm[k] += g;
					tu[k] += 1.0 - g;
				}
		}
		for (size_t k = 0; k < MPI_NCMP; k++)
			for (int l = 0; l < mpi_cmps[k].nlevels; l++) {
				double nm, nu;
				if (tm[k] > 0) {
					nm = sm[k][l] / tm[k];
					if (nm < P_FLOOR)
						nm = P_FLOOR;
					delta = fmax(delta, fabs(nm - m->m[k][l]));
					m->m[k][l] = nm;
				}
				if (!fix_u && tu[k] > 0) {
					nu = su[k][l] / tu[k];
					if (nu < P_FLOOR)
						nu = P_FLOOR;
					delta = fmax(delta, fabs(nu - m->u[k][l]));
					m->u[k][l] = nu;
				}
			}
		{
			double nl = sg / (double)n;
			if (nl < P_FLOOR)
				nl = P_FLOOR;
			if (nl > 1 - P_FLOOR)
				nl = 1 - P_FLOOR;
			delta = fmax(delta, fabs(nl - m->lambda));
			m->lambda = nl;
		}
		if (delta < 1e-5) {
			it++;
			break;
		}
	}
	mpi_model_weights(m);
	return it;
}

/* xorshift64*: a fixed seed makes training repeatable. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

void mpi_estimate_u(struct mpi_model *m, const struct mpi_rec *recs, size_t n, size_t samples,
		    uint64_t seed)
{
	double c[MPI_NCMP][MPI_MAX_LEVELS], t[MPI_NCMP];
	uint8_t lv[MPI_NCMP];
	uint64_t s = seed ? seed : 88172645463325252ULL;

	if (n < 2)
		return;
	memset(c, 0, sizeof(c));
	memset(t, 0, sizeof(t));
	for (size_t i = 0; i < samples; i++) {
		size_t a = rnd(&s) % n, b = rnd(&s) % n;
		if (a == b)
			continue;
		mpi_compare(&recs[a], &recs[b], lv);
		for (size_t k = 0; k < MPI_NCMP; k++)
			if (lv[k] != MPI_MISSING) {
				c[k][lv[k]] += 1;
				t[k] += 1;
			}
	}
	/* a level never seen among random pairs keeps a small share (add-one) */
	for (size_t k = 0; k < MPI_NCMP; k++) {
		if (t[k] < 100)
			continue; /* too few to say: keep what there is */
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			m->u[k][l] = (c[k][l] + 0.5) / (t[k] + 0.5 * mpi_cmps[k].nlevels);
	}
	mpi_model_weights(m);
}

/* ---- storage: Basic/mpi-model ---- */

#define MODEL_CODE_SYSTEM "http://chartkeep.org/fhir/CodeSystem/mpi"
#define MODEL_EXT "http://chartkeep.org/fhir/StructureDefinition/mpi-"

void mpi_model_json(const struct mpi_model *m, struct buf *out)
{
	char when[TIME_INSTANT_MAX];

	time_format_instant(m->trained_ms ? m->trained_ms : time_now_ms(), when);
	buf_addstr(out, "{\"resourceType\":\"Basic\",\"id\":\"" MPI_MODEL_ID "\",\"code\":{\"coding\":[{"
			"\"system\":\"" MODEL_CODE_SYSTEM "\",\"code\":\"mpi-model\",\"display\":"
			"\"Fellegi-Sunter model of the master patient index\"}]},");
	buf_addf(out, "\"created\":\"%.10s\",\"extension\":[", when);
	buf_addf(out, "{\"url\":\"" MODEL_EXT "lambda\",\"valueDecimal\":%.9g},", m->lambda);
	buf_addf(out, "{\"url\":\"" MODEL_EXT "upper\",\"valueDecimal\":%.6g},", m->upper);
	buf_addf(out, "{\"url\":\"" MODEL_EXT "lower\",\"valueDecimal\":%.6g},", m->lower);
	buf_addf(out, "{\"url\":\"" MODEL_EXT "pairs\",\"valueInteger\":%zu},", m->trained_pairs);
	buf_addf(out, "{\"url\":\"" MODEL_EXT "trained\",\"valueDateTime\":\"%s\"}", when);
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			buf_addf(out, ",{\"url\":\"" MODEL_EXT "level\",\"extension\":["
				      "{\"url\":\"comparison\",\"valueString\":\"%s\"},"
				      "{\"url\":\"level\",\"valueInteger\":%d},"
				      "{\"url\":\"m\",\"valueDecimal\":%.9g},"
				      "{\"url\":\"u\",\"valueDecimal\":%.9g}]}",
				 mpi_cmps[k].name, l, m->m[k][l], m->u[k][l]);
	buf_addstr(out, "]}");
}

static double dec(json_object *ext)
{
	json_object *v = json_get(ext, "valueDecimal");

	return v ? json_object_get_double(v) : -1;
}

int mpi_model_from_json(json_object *basic, struct mpi_model *m, struct err *e)
{
	json_object *exts = json_get_arr(basic, "extension");
	size_t n = exts ? json_object_array_length(exts) : 0;

	mpi_model_default(m);
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(exts, i);
		const char *url = json_get_str(x, "url");
		if (!url || strncmp(url, MODEL_EXT, strlen(MODEL_EXT)) != 0)
			continue;
		url += strlen(MODEL_EXT);
		if (strcmp(url, "lambda") == 0 && dec(x) > 0 && dec(x) < 1) {
			m->lambda = dec(x);
		} else if (strcmp(url, "upper") == 0 && dec(x) > 0 && dec(x) <= 1) {
			m->upper = dec(x);
		} else if (strcmp(url, "lower") == 0 && dec(x) > 0 && dec(x) <= 1) {
			m->lower = dec(x);
		} else if (strcmp(url, "pairs") == 0) {
			m->trained_pairs = (size_t)json_object_get_int64(json_get(x, "valueInteger"));
		} else if (strcmp(url, "level") == 0) {
			json_object *sub = json_get_arr(x, "extension");
			const char *cmp = NULL;
			int level = -1;
			double mm = -1, uu = -1;
			for (size_t j = 0; sub && j < json_object_array_length(sub); j++) {
				json_object *y = json_object_array_get_idx(sub, j);
				const char *u2 = json_get_str(y, "url");
				if (!u2)
					continue;
				if (strcmp(u2, "comparison") == 0)
					cmp = json_get_str(y, "valueString");
				else if (strcmp(u2, "level") == 0)
					level = json_object_get_int(json_get(y, "valueInteger"));
				else if (strcmp(u2, "m") == 0)
					mm = dec(y);
				else if (strcmp(u2, "u") == 0)
					uu = dec(y);
			}
			for (size_t k = 0; cmp && k < MPI_NCMP; k++)
				if (strcmp(mpi_cmps[k].name, cmp) == 0 && level >= 0 &&
				    level < mpi_cmps[k].nlevels && mm > 0 && mm <= 1 && uu > 0 && uu <= 1) {
					m->m[k][level] = mm;
					m->u[k][level] = uu;
				}
		}
	}
	if (m->lower > m->upper)
		return err_set(e, ERR_INVALID, "the stored MPI model has its lower threshold above the upper");
	m->trained = true;
	mpi_model_weights(m);
	return 0;
}

/* The last model parsed, by store and version: $match and incremental
 * matching load it per Patient, and it changes only when trained. */
static struct {
	pthread_mutex_t mu;
	const struct store *s;
	int64_t vkey, ts_ms;       /* a store at the same address later: another time */
	struct mpi_model m;
} cache = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, { { { 0 } } } };

int mpi_model_load(struct store *s, struct mpi_model *m, struct err *e)
{
	struct store_version v;
	json_object *o;
	int rc;

	memset(&v, 0, sizeof(v));
	mpi_model_default(m);
	if (store_read(s, "Basic", MPI_MODEL_ID, &v, e) < 0) {
		store_version_release(&v);
		if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE) {
			err_clear(e);
			return 0; /* not trained: the defaults */
		}
		return -1;
	}
	pthread_mutex_lock(&cache.mu);
	if (cache.s == s && cache.vkey == v.vkey && cache.ts_ms == v.ts_ms) {
		*m = cache.m;
		pthread_mutex_unlock(&cache.mu);
		store_version_release(&v);
		return 0;
	}
	pthread_mutex_unlock(&cache.mu);
	o = json_parse_buf(v.json, v.len, 0, e);
	if (!o) {
		store_version_release(&v);
		return -1;
	}
	rc = mpi_model_from_json(o, m, e);
	json_object_put(o);
	if (rc == 0) {
		pthread_mutex_lock(&cache.mu);
		cache.s = s;
		cache.vkey = v.vkey;
		cache.ts_ms = v.ts_ms;
		cache.m = *m;
		pthread_mutex_unlock(&cache.mu);
	}
	store_version_release(&v);
	return rc;
}

int mpi_model_save(struct store *s, struct fhir_params *params, struct audit_info *ai,
		   const struct mpi_model *m, struct err *e)
{
	struct buf b = BUF_INIT(0);
	struct fhir_prepared p;
	struct store_op op;
	struct store_txn t;
	json_object *o = NULL;
	int rc = -1;

	fhir_prepared_init(&p);
	mpi_model_json(m, &b);
	if (b.failed) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	o = json_parse_buf(b.data, b.len, 0, e);
	if (!o || fhir_prepare(params, o, MPI_MODEL_ID, &p, e) < 0)
		goto out;
	memset(&op, 0, sizeof(op));
	fhir_prepared_op(&p, &op);
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	t.audit = ai ? audit_txn_entry : NULL;
	t.audit_arg = ai;
	if (store_commit(s, &t) != 0) {
		*e = op.err.code ? op.err : t.err;
		goto out;
	}
	rc = 0;
out:
	json_object_put(o);
	fhir_prepared_release(&p);
	buf_release(&b);
	return rc;
}
