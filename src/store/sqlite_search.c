/* sqlite_search.c - store_search on SQLite: a query tree becomes one SQL
 * statement over the resource table and the ix_* index tables.
 *
 * Every condition is a test on a resource row (alias rN): "rN.rkey IN
 * (SELECT rkey FROM ix_token t WHERE t.pid = ? AND ...)", so AND, OR and NOT
 * compose freely and SQLite drives the query from the most selective index.
 * Values are always bound, never written into the SQL, so equal shapes give
 * equal SQL text and the prepared statement is reused (sqlite_prepare_cached).
 *
 * Paging is by key (the sort values and the rkey of the last row), not by
 * offset, so a page boundary does not move when rows are added or removed
 * before it. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/sqlite_int.h"
#include "base/banned.h"

enum { P_INT = 1, P_REAL, P_TEXT };

struct qparam {
	int type;
	int64_t i;
	double r;
	const char *s;
	char *owned;    /* text made here (LIKE patterns, prefix bounds) */
};

struct qb {
	struct buf sql;
	struct qparam *p;
	size_t np, cap;
	int alias;      /* next rN / tN number */
	char **keep;    /* other text the parameters point to (qb_keep) */
	size_t nkeep, capkeep;
	bool oom;
	struct err *e;
	struct conn *c;  /* for estimates while planning; NULL: none */
};

static struct qparam *qb_param(struct qb *q)
{
	if (q->np == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 32;
		struct qparam *p = realloc(q->p, ncap * sizeof(*p));
		if (!p) {
			q->oom = true;
			return NULL;
		}
		q->p = p;
		q->cap = ncap;
	}
	memset(&q->p[q->np], 0, sizeof(q->p[0]));
	buf_addch(&q->sql, '?');
	return &q->p[q->np++];
}

static void qb_int(struct qb *q, int64_t v)
{
	struct qparam *p = qb_param(q);

	if (p) {
		p->type = P_INT;
		p->i = v;
	}
}

static void qb_real(struct qb *q, double v)
{
	struct qparam *p = qb_param(q);

	if (p) {
		p->type = P_REAL;
		p->r = v;
	}
}

static void qb_text(struct qb *q, const char *s)
{
	struct qparam *p = qb_param(q);

	if (p) {
		p->type = P_TEXT;
		p->s = s ? s : "";
	}
}

/* A text parameter the query owns (freed with it). */
static void qb_text_owned(struct qb *q, char *s)
{
	struct qparam *p;

	if (!s) {
		q->oom = true;
		return;
	}
	p = qb_param(q);
	if (!p) {
		free(s);
		return;
	}
	p->type = P_TEXT;
	p->s = s;
	p->owned = s;
}

/* Text that parameters added with qb_text point to: freed with the query. */
static void qb_keep(struct qb *q, char *s)
{
	if (!s) {
		q->oom = true;
		return;
	}
	if (q->nkeep == q->capkeep) {
		size_t ncap = q->capkeep ? q->capkeep * 2 : 4;
		char **v = realloc(q->keep, ncap * sizeof(*v));
		if (!v) {
			free(s);
			q->oom = true;
			return;
		}
		q->keep = v;
		q->capkeep = ncap;
	}
	q->keep[q->nkeep++] = s;
}

static void qb_add(struct qb *q, const char *s)
{
	buf_addstr(&q->sql, s);
}

static void qb_release(struct qb *q)
{
	for (size_t i = 0; i < q->np; i++)
		free(q->p[i].owned);
	for (size_t i = 0; i < q->nkeep; i++)
		free(q->keep[i]);
	free(q->keep);
	free(q->p);
	buf_release(&q->sql);
}

/* The smallest string greater than every string starting with s. */
static char *prefix_end(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 5);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	memcpy(p + n, "\xf4\x8f\xbf\xbf", 5); /* U+10FFFF, the largest code point */
	return p;
}

/* s with a '/' at the end (s itself if it has one); malloc'd. */
static char *with_slash(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 2);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	if (n == 0 || s[n - 1] != '/')
		p[n++] = '/';
	p[n] = '\0';
	return p;
}

/* %s% with LIKE's wildcards escaped by backslash. */
static char *like_contains(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(2 * n + 3), *o = p;

	if (!p)
		return NULL;
	*o++ = '%';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
			*o++ = '\\';
		*o++ = s[i];
	}
	*o++ = '%';
	*o = '\0';
	return p;
}

static const char *const ix_table[SIX__COUNT] = {
	[SIX_TOKEN] = "ix_token", [SIX_STRING] = "ix_string", [SIX_DATE] = "ix_date",
	[SIX_NUMBER] = "ix_number", [SIX_QUANTITY] = "ix_quantity",
	[SIX_REFERENCE] = "ix_reference", [SIX_URI] = "ix_uri",
};

/* Comparison of a number row (t.val) with the searched value. */
static void num_cond(struct qb *q, const char *t, const struct sq_node *n)
{
	char col[32];

	snprintf(col, sizeof(col), "%s.val", t);
	switch (n->op) {
	case SQO_EQ:
	case SQO_NE:
		/* within the range the value's precision gives: 100 is [99.5, 100.5) */
		qb_add(q, n->op == SQO_NE ? "NOT (" : "(");
		qb_add(q, col);
		qb_add(q, " >= ");
		qb_real(q, n->n2);
		qb_add(q, " AND ");
		qb_add(q, col);
		qb_add(q, " < ");
		qb_real(q, n->n3);
		qb_add(q, ")");
		break;
	case SQO_GT:
	case SQO_SA:
		qb_add(q, col);
		qb_add(q, " > ");
		qb_real(q, n->n1);
		break;
	case SQO_LT:
	case SQO_EB:
		qb_add(q, col);
		qb_add(q, " < ");
		qb_real(q, n->n1);
		break;
	case SQO_GE:
		qb_add(q, col);
		qb_add(q, " >= ");
		qb_real(q, n->n1);
		break;
	case SQO_LE:
		qb_add(q, col);
		qb_add(q, " <= ");
		qb_real(q, n->n1);
		break;
	case SQO_AP: {
		/* approximately: within 10% of the value */
		double d = fabs(n->n1) * 0.1;
		qb_add(q, col);
		qb_add(q, " BETWEEN ");
		qb_real(q, n->n1 - d);
		qb_add(q, " AND ");
		qb_real(q, n->n1 + d);
		break;
	}
	default:
		qb_add(q, "0");
		break;
	}
}

/* Comparison of a range row [lo, hi) with the searched range [t1, t2). */
static void range_cond(struct qb *q, const char *lo, const char *hi, const struct sq_node *n)
{
	int64_t a = n->t1, b = n->t2;

	switch (n->op) {
	case SQO_EQ:
	case SQO_NE:
		/* the row's range lies within the searched one */
		buf_addf(&q->sql, "%s(%s >= ", n->op == SQO_NE ? "NOT " : "", lo);
		qb_int(q, a);
		buf_addf(&q->sql, " AND %s <= ", hi);
		qb_int(q, b);
		qb_add(q, ")");
		break;
	case SQO_GT:
		buf_addf(&q->sql, "%s > ", hi);
		qb_int(q, b);
		break;
	case SQO_LT:
		buf_addf(&q->sql, "%s < ", lo);
		qb_int(q, a);
		break;
	case SQO_GE:
		buf_addf(&q->sql, "%s > ", hi);
		qb_int(q, a);
		break;
	case SQO_LE:
		buf_addf(&q->sql, "%s < ", lo);
		qb_int(q, b);
		break;
	case SQO_SA:
		buf_addf(&q->sql, "%s >= ", lo);
		qb_int(q, b);
		break;
	case SQO_EB:
		buf_addf(&q->sql, "%s <= ", hi);
		qb_int(q, a);
		break;
	case SQO_AP: {
		/* overlaps the searched range widened by 10% of its distance from now */
		int64_t now = time_now_ms(), mid = a / 2 + b / 2;
		int64_t d = (now > mid ? now - mid : mid - now) / 10;
		if (d < 86400000)
			d = 86400000;
		buf_addf(&q->sql, "(%s < ", lo);
		qb_int(q, b + d);
		buf_addf(&q->sql, " AND %s > ", hi);
		qb_int(q, a - d);
		qb_add(q, ")");
		break;
	}
	default:
		qb_add(q, "0");
		break;
	}
}

/* The test on one index row (alias t) for an SQ_IX node. */
static void row_cond(struct qb *q, const char *t, const struct sq_node *n)
{
	char lo[32], hi[32];

	switch (n->ix) {
	case SIX_TOKEN:
		/* tokens are ix_dict ids: find the ids, then the rows */
		if (n->op == SQO_CONTAINS) {
			/* :text: the resource's own "#text" rows (folded displays and
			 * CodeableConcept.text) contain it; "text <> ''" lets SQLite
			 * scan the partial index ix_dict_text, not the dictionary */
			buf_addf(&q->sql, "%s.tok IN (SELECT id FROM ix_dict WHERE text <> '' AND "
					  "text LIKE ", t);
			qb_text_owned(q, like_contains(n->s1));
			qb_add(q, " ESCAPE '\\' AND sys = '#text')");
			break;
		}
		if (n->op == SQO_BELOW) {
			/* lexical hierarchy: right for ICD-10 (E11 is above E11.9) */
			buf_addf(&q->sql, "%s.tok IN (SELECT id FROM ix_dict WHERE code >= ", t);
			qb_text(q, n->s2);
			qb_add(q, " AND code < ");
			qb_text_owned(q, prefix_end(n->s2 ? n->s2 : ""));
			qb_add(q, " AND sys = ");
			qb_text(q, n->s1);
			qb_add(q, ")");
			break;
		}
		if (n->op == SQO_ABOVE) {
			buf_addf(&q->sql, "%s.tok IN (SELECT id FROM ix_dict WHERE sys = ", t);
			qb_text(q, n->s1);
			qb_add(q, " AND instr(");
			qb_text(q, n->s2);
			qb_add(q, ", code) = 1)");
			break;
		}
		if (n->s2 && n->s1) {
			/* system|code, or |code for no system */
			buf_addf(&q->sql, "%s.tok = (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, " AND sys = ");
			qb_text(q, n->s1);
			qb_add(q, ")");
		} else if (n->s2) {
			buf_addf(&q->sql, "%s.tok IN (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, " AND sys <> '#text')");
		} else {
			/* system| : looked up per row (ix_dict has no index on sys
			 * alone, and a whole-dictionary scan would not be cheaper) */
			buf_addf(&q->sql, "(SELECT sys FROM ix_dict WHERE id = %s.tok) = ", t);
			qb_text(q, n->s1 ? n->s1 : "");
		}
		break;
	case SIX_STRING:
		if (n->op == SQO_CONTAINS) {
			buf_addf(&q->sql, "%s.norm LIKE ", t);
			qb_text_owned(q, like_contains(n->s1));
			qb_add(q, " ESCAPE '\\'");
			break;
		}
		/* starts with (and, for :exact, is exactly) */
		buf_addf(&q->sql, "%s.norm >= ", t);
		qb_text(q, n->s1);
		buf_addf(&q->sql, " AND %s.norm < ", t);
		qb_text_owned(q, prefix_end(n->s1));
		if (n->op == SQO_EXACT) {
			buf_addf(&q->sql, " AND %s.exact = ", t);
			qb_text(q, n->s2);
		}
		break;
	case SIX_DATE:
		snprintf(lo, sizeof(lo), "%s.lo", t);
		snprintf(hi, sizeof(hi), "%s.hi", t);
		range_cond(q, lo, hi, n);
		break;
	case SIX_NUMBER:
		num_cond(q, t, n);
		break;
	case SIX_QUANTITY:
		num_cond(q, t, n);
		if (n->s1 && n->s2) {
			buf_addf(&q->sql, " AND %s.tok = (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, " AND sys = ");
			qb_text(q, n->s1);
			qb_add(q, ")");
		} else if (n->s2) {
			/* a code in any system, or the unit as written (a unit that
			 * differs from the code has a row of its own, see index.c) */
			buf_addf(&q->sql, " AND %s.tok IN (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, ")");
		} else if (n->s1) {
			/* number|system| : any unit of that system */
			buf_addf(&q->sql, " AND (SELECT sys FROM ix_dict WHERE id = %s.tok) = ", t);
			qb_text(q, n->s1);
		}
		break;
	case SIX_REFERENCE:
		if (n->s1) {
			buf_addf(&q->sql, "%s.tok = (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, " AND sys = ");
			qb_text(q, n->s1);
			qb_add(q, ")");
		} else {
			buf_addf(&q->sql, "%s.tok IN (SELECT id FROM ix_dict WHERE code = ", t);
			qb_text(q, n->s2);
			qb_add(q, ")");
		}
		break;
	case SIX_URI:
		if (n->op == SQO_BELOW) {
			/* the uri itself, or one under it by whole path segments:
			 * .../colors is above .../colors/warm, not .../colorsx */
			char *dir = with_slash(n->s1);
			buf_addf(&q->sql, "(%s.uri = ", t);
			qb_text(q, n->s1);
			buf_addf(&q->sql, " OR (%s.uri >= ", t);
			qb_text(q, dir);
			buf_addf(&q->sql, " AND %s.uri < ", t);
			qb_text_owned(q, dir ? prefix_end(dir) : NULL);
			qb_add(q, "))");
			qb_keep(q, dir);
		} else if (n->op == SQO_ABOVE) {
			/* the uri is the value, or a prefix of it ending at a '/' */
			qb_add(q, "(instr(");
			qb_text(q, n->s1);
			buf_addf(&q->sql, ", %s.uri) = 1 AND (substr(%s.uri, -1) = '/' OR "
					  "substr(", t, t);
			qb_text(q, n->s1);
			buf_addf(&q->sql, ", length(%s.uri) + 1, 1) IN ('', '/')))", t);
		} else {
			buf_addf(&q->sql, "%s.uri = ", t);
			qb_text(q, n->s1);
		}
		break;
	default:
		qb_add(q, "0");
		break;
	}
}

/* ---- planning: one condition drives, the others are probed ----
 *
 * Left to itself SQLite would read every resource of the type and, for each
 * "rkey IN (subquery)", build the whole list first.  Instead the most
 * selective condition (by the kind of its index lookup) becomes the list the
 * rows come from, and each other condition is a probe of that row through
 * the (rkey, pid) indexes.  With no usable condition, the rows of the type
 * are read in rkey order (index resource_type_live), so a page stops early. */

enum {
	RANK_ID = 0,      /* _id */
	RANK_REF = 1,     /* a reference to one resource */
	RANK_TOKEN = 2,   /* a code, an identifier, a uri */
	RANK_WORDS = 3,   /* a string prefix, full text */
	RANK_LOOSE = 5,   /* a system, :text, :above, :below, a reference by id only */
	RANK_RANGE = 6,   /* dates, numbers, quantities */
	RANK_TS = 7,      /* _lastUpdated */
	RANK_NONE = 99    /* cannot drive: NOT, :missing, :contains */
};

static int rank(const struct sq_node *n)
{
	int best, worst, k;

	switch (n->kind) {
	case SQ_ID:
		return RANK_ID;
	case SQ_IX:
		if (n->op == SQO_NE)
			return RANK_NONE;
		switch (n->ix) {
		case SIX_REFERENCE:
			return n->s2 ? RANK_REF : RANK_LOOSE;
		case SIX_TOKEN:
			if (n->op == SQO_CONTAINS || n->op == SQO_ABOVE || n->op == SQO_BELOW)
				return RANK_LOOSE;
			return n->s2 ? RANK_TOKEN : RANK_LOOSE;
		case SIX_STRING:
			return n->op == SQO_CONTAINS ? RANK_NONE : RANK_WORDS;
		case SIX_URI:
			return n->op == SQO_ABOVE ? RANK_NONE : n->op == SQO_BELOW ? RANK_LOOSE : RANK_TOKEN;
		case SIX_DATE:
		case SIX_NUMBER:
		case SIX_QUANTITY:
			return RANK_RANGE;
		default:
			return RANK_NONE;
		}
	case SQ_TEXT:
		return RANK_WORDS;
	case SQ_LASTUPDATED:
		return n->op == SQO_NE ? RANK_NONE : RANK_TS;
	case SQ_OR:
		worst = n->nkids ? RANK_ID : RANK_NONE;
		for (size_t i = 0; i < n->nkids; i++)
			if ((k = rank(n->kids[i])) > worst)
				worst = k;
		return worst;
	case SQ_AND:
	case SQ_COMPOSITE:
		best = RANK_NONE;
		for (size_t i = 0; i < n->nkids; i++)
			if ((k = rank(n->kids[i])) < best)
				best = k;
		return best;
	case SQ_CHAIN:
	case SQ_HAS:
		k = n->nkids ? rank(n->kids[0]) : RANK_NONE;
		return k >= RANK_NONE ? RANK_NONE : k + 1;
	default:
		return RANK_NONE;
	}
}

static void drive(struct qb *q, const struct sq_node *n, const char *r);
static void probe(struct qb *q, const struct sq_node *n, const char *r);
static int bind_all(sqlite3_stmt *st, const struct qb *q);

/* Rows a token condition must match before it counts as common.  The
 * tests lower it (CHARTKEEP_TEST_COMMON_TOKEN_ROWS=1: every token is
 * common) to check that the other plans give the same answers. */
#define COMMON_TOKEN_ROWS 2000

static int common_token_rows(void)
{
	static atomic_int rows;
	int n = atomic_load(&rows);

	if (n == 0) {
		const char *t = getenv("CHARTKEEP_TEST_COMMON_TOKEN_ROWS");
		long v = t ? strtol(t, NULL, 10) : 0;
		n = v > 0 && v < COMMON_TOKEN_ROWS ? (int)v : COMMON_TOKEN_ROWS;
		atomic_store(&rows, n);
	}
	return n;
}

/* Does the token condition n (system|code or code) match at least
 * COMMON_TOKEN_ROWS index rows?  A capped count through the (pid, tok)
 * key, so a rare code costs a few index probes and a common one stops at
 * the cap.  False when it cannot tell (no connection, an error). */
static bool common_token(struct qb *outer, const struct sq_node *n)
{
	struct qb q;
	sqlite3_stmt *st;
	struct err e;
	bool common = false;

	if (!outer->c || n->kind != SQ_IX || n->ix != SIX_TOKEN || !n->s2 || n->op != SQO_EQ)
		return false;
	memset(&q, 0, sizeof(q));
	buf_init(&q.sql, 0);
	q.e = &e;
	qb_add(&q, "SELECT count(*) FROM (SELECT 1 FROM ix_token te WHERE te.pid = ");
	qb_int(&q, n->pid);
	qb_add(&q, " AND ");
	row_cond(&q, "te", n);
	buf_addf(&q.sql, " LIMIT %d)", common_token_rows());
	if (!q.oom && !q.sql.failed && (st = sqlite_prepare_cached(outer->c, buf_cstr(&q.sql), &e))) {
		if (bind_all(st, &q) == 0 && sqlite3_step(st) == SQLITE_ROW)
			common = sqlite3_column_int64(st, 0) >= common_token_rows();
		sqlite3_reset(st);
	}
	qb_release(&q);
	return common;
}

/* A condition that matches too many rows to drive: a common token, or a
 * chain or reverse chain whose one condition is a common token. */
static bool common_cond(struct qb *q, const struct sq_node *n)
{
	if (n->kind == SQ_IX)
		return common_token(q, n);
	if ((n->kind == SQ_HAS || n->kind == SQ_CHAIN) && n->nkids == 1)
		return common_cond(q, n->kids[0]);
	return false;
}

/* The conditions of n (an AND, one condition, or NULL) on alias r: the best
 * one drives, unless none can or the type's own index is better. */
static void restrict_rows(struct qb *q, const struct sq_node *n, const char *r, const char *type)
{
	const struct sq_node *one[1] = { n };
	const struct sq_node *const *kids = one;
	size_t nk = n ? 1 : 0, best = SIZE_MAX;
	int best_rank = RANK_NONE;

	if (n && n->kind == SQ_AND) {
		kids = (const struct sq_node *const *)n->kids;
		nk = n->nkids;
	}
	for (size_t i = 0; i < nk; i++) {
		int k = rank(kids[i]);
		/* _lastUpdated drives through (type, ts) only when the type is known */
		if (k == RANK_TS && !type)
			k = RANK_NONE;
		if (k < best_rank) {
			best_rank = k;
			best = i;
		}
	}
	/* A code most resources of the type carry (a LOINC code for body
	 * weight) is a poor list to start from when another condition (a
	 * chain to a few patients, a date) could drive instead, or when the
	 * rows can come from the type's own index in page order: a reverse
	 * chain on such a code matches most of them, so the first page is
	 * found after a few probes. */
	/* each condition is estimated at most once: demoted ones stay down */
	uint64_t down = 0;
	while (best != SIZE_MAX && best < 64 && (nk > 1 || (type && kids[best]->kind == SQ_HAS)) &&
	       common_cond(q, kids[best])) {
		down |= UINT64_C(1) << best;
		best = SIZE_MAX;
		best_rank = RANK_NONE;
		for (size_t i = 0; i < nk; i++) {
			int k = rank(kids[i]);
			if (k == RANK_TS && !type)
				k = RANK_NONE;
			if (i < 64 && (down >> i) & 1)
				k = kids[i]->kind == SQ_IX ? RANK_LOOSE : RANK_NONE;
			if (k < best_rank) {
				best_rank = k;
				best = i;
			}
		}
		if (best < 64 && (down >> best) & 1)
			break; /* the best left is one already found common */
	}
	buf_addf(&q->sql, "%s.deleted = 0", r);
	if (type) {
		/* "+" keeps SQLite off the type's index when a condition drives */
		bool by_type = best == SIZE_MAX || best_rank == RANK_ID || best_rank == RANK_TS;
		buf_addf(&q->sql, " AND %s%s.type = ", by_type ? "" : "+", r);
		qb_text(q, type);
	}
	if (best != SIZE_MAX) {
		qb_add(q, " AND ");
		drive(q, kids[best], r);
	}
	for (size_t i = 0; i < nk; i++) {
		if (i == best)
			continue;
		qb_add(q, " AND ");
		probe(q, kids[i], r);
	}
}

/* "r.rkey IN (SELECT rkey FROM ix_X tN WHERE tN.pid = ? AND <row test>)" */
static void ix_in(struct qb *q, const struct sq_node *n, const char *r)
{
	char t[16];

	if (n->ix < SIX_TOKEN || n->ix >= SIX_TEXT) {
		qb_add(q, "0");
		return;
	}
	snprintf(t, sizeof(t), "t%d", q->alias++);
	buf_addf(&q->sql, "%s.rkey IN (SELECT %s.rkey FROM %s %s WHERE %s.pid = ", r, t,
		 ix_table[n->ix], t, t);
	qb_int(q, n->pid);
	qb_add(q, " AND ");
	row_cond(q, t, n);
	qb_add(q, ")");
}

/* "EXISTS (SELECT 1 FROM ix_X tN WHERE tN.rkey = r.rkey AND tN.pid = ? AND <row test>)" */
static void ix_probe(struct qb *q, const struct sq_node *n, const char *r)
{
	char t[16];

	if (n->ix < SIX_TOKEN || n->ix >= SIX_TEXT) {
		qb_add(q, "0");
		return;
	}
	snprintf(t, sizeof(t), "t%d", q->alias++);
	buf_addf(&q->sql, "EXISTS (SELECT 1 FROM %s %s WHERE %s.rkey = %s.rkey AND %s.pid = ",
		 ix_table[n->ix], t, t, r, t);
	qb_int(q, n->pid);
	qb_add(q, " AND ");
	row_cond(q, t, n);
	qb_add(q, ")");
}

/* Components of one composite value share grp >> 4; grp & 15 is the component. */
static void composite_probe(struct qb *q, const struct sq_node *n, const char *r)
{
	char t0[16];

	if (n->nkids == 0) {
		qb_add(q, "1");
		return;
	}
	snprintf(t0, sizeof(t0), "t%d", q->alias);
	buf_addf(&q->sql, "EXISTS (SELECT 1 FROM ");
	for (size_t i = 0; i < n->nkids; i++) {
		char t[16];
		snprintf(t, sizeof(t), "t%d", q->alias + (int)i);
		buf_addf(&q->sql, "%s%s %s", i ? ", " : "", ix_table[n->kids[i]->ix], t);
	}
	qb_add(q, " WHERE ");
	for (size_t i = 0; i < n->nkids; i++) {
		char t[16];
		snprintf(t, sizeof(t), "t%d", q->alias + (int)i);
		buf_addf(&q->sql, "%s%s.rkey = %s.rkey AND %s.pid = ", i ? " AND " : "", t, r, t);
		qb_int(q, n->kids[i]->pid);
		buf_addf(&q->sql, " AND (%s.grp & 15) = %zu AND ", t, i);
		if (i)
			buf_addf(&q->sql, "(%s.grp >> 4) = (%s.grp >> 4) AND ", t, t0);
		qb_add(q, "(");
		row_cond(q, t, n->kids[i]);
		qb_add(q, ")");
	}
	qb_add(q, ")");
	q->alias += (int)n->nkids;
}

/* Separators of FTS5's unicode61 tokenizer outside ASCII (it keeps letters,
 * numbers and private use): Latin-1 punctuation and symbols, combining
 * marks, general punctuation, currency, arrows and mathematical operators,
 * box drawing to dingbats, CJK and full-width punctuation, emoji.  A code
 * point missed here only makes a two-word phrase, which detail=column
 * refuses: store_search then says so (ERR_INVALID), it does not match wrong. */
static bool fts_separator(uint32_t cp)
{
	static const struct { uint32_t lo, hi; } sep[] = {
		{ 0x80, 0xA9 }, { 0xAB, 0xB1 }, { 0xB4, 0xB4 }, { 0xB6, 0xB8 }, { 0xBB, 0xBB },
		{ 0xBF, 0xBF }, { 0xD7, 0xD7 }, { 0xF7, 0xF7 }, { 0x300, 0x36F },
		{ 0x2000, 0x206F }, { 0x20A0, 0x20FF }, { 0x2190, 0x23FF }, { 0x2500, 0x27BF },
		{ 0x2E00, 0x2E7F }, { 0x3000, 0x3004 }, { 0x3008, 0x3020 }, { 0xFE10, 0xFE1F },
		{ 0xFE30, 0xFE6F }, { 0xFF01, 0xFF0F }, { 0xFF1A, 0xFF20 }, { 0xFF3B, 0xFF40 },
		{ 0xFF5B, 0xFF65 }, { 0x1F000, 0x1FAFF },
	};

	for (size_t i = 0; i < sizeof(sep) / sizeof(sep[0]); i++)
		if (cp >= sep[i].lo && cp <= sep[i].hi)
			return true;
	return false;
}

#define NOT_UTF8 0xFFFFFFFFu

/* The next code point of s[*i..n); NOT_UTF8 for a byte that does not start
 * a well-formed sequence (it is skipped alone). */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	uint32_t c = s[*i];
	size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;

	if (len == 0 || *i + len > n) {
		(*i)++;
		return NOT_UTF8;
	}
	if (len > 1) {
		c &= 0xFF >> (len + 1);
		for (size_t k = 1; k < len; k++) {
			if ((s[*i + k] & 0xC0) != 0x80) {
				(*i)++;
				return NOT_UTF8;
			}
			c = (c << 6) | (s[*i + k] & 0x3F);
		}
	}
	*i += len;
	return c;
}

/* Is cp part of a word?  Never '"' (the words are quoted) nor a byte that is
 * not UTF-8. */
static bool fts_token_char(uint32_t cp)
{
	if (cp == NOT_UTF8)
		return false;
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
	return !fts_separator(cp);
}

/* An FTS5 query from free text: "col : ("w1" "w2" ...)", every word of
 * the text (split where unicode61 splits), quoted, so that nothing a user
 * types is an FTS5 operator and each quoted string is one token.  NULL if
 * the text has no word. */
static char *fts_query(const char *col, const char *text)
{
	struct buf b = BUF_INIT(0);
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), i = 0;
	bool any = false, in_word = false;

	buf_addf(&b, "%s : (", col);
	while (i < n) {
		size_t at = i;
		uint32_t cp = utf8_next(s, n, &i);
		if (!fts_token_char(cp)) {
			if (in_word)
				buf_addstr(&b, "\" ");
			in_word = false;
			continue;
		}
		if (!in_word)
			buf_addch(&b, '"');
		buf_add(&b, text + at, i - at);
		in_word = any = true;
	}
	if (in_word)
		buf_addch(&b, '"');
	buf_addch(&b, ')');
	if (!any || b.failed) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static void text_in(struct qb *q, const struct sq_node *n, const char *r)
{
	char *match = fts_query(n->op == SQO_NARRATIVE ? "narrative" : "content", n->s1);

	if (!match) {
		qb_add(q, "0"); /* no word: nothing matches */
		return;
	}
	buf_addf(&q->sql, "%s.rkey IN (SELECT rowid FROM ix_fts WHERE ix_fts MATCH ", r);
	qb_text_owned(q, match);
	qb_add(q, ")");
}

static void lastupdated_cond(struct qb *q, const struct sq_node *n, const char *r)
{
	char lo[32], hi[32];

	/* an instant is a point: [ts, ts + 1) */
	snprintf(lo, sizeof(lo), "%s.ts", r);
	snprintf(hi, sizeof(hi), "(%s.ts + 1)", r);
	range_cond(q, lo, hi, n);
}

/* n as the list the rows of r come from (rank(n) < RANK_NONE). */
static void drive(struct qb *q, const struct sq_node *n, const char *r)
{
	char x[16], d[16], rn[16];

	switch (n->kind) {
	case SQ_IX:
		ix_in(q, n, r);
		break;
	case SQ_ID:
		buf_addf(&q->sql, "%s.id = ", r);
		qb_text(q, n->s1);
		break;
	case SQ_LASTUPDATED:
		lastupdated_cond(q, n, r);
		break;
	case SQ_TEXT:
		text_in(q, n, r);
		break;
	case SQ_OR:
		qb_add(q, "(");
		for (size_t i = 0; i < n->nkids; i++) {
			if (i)
				qb_add(q, " OR ");
			drive(q, n->kids[i], r);
		}
		qb_add(q, ")");
		break;
	case SQ_AND:
		/* nested: its best part drives, the rest is probed */
		qb_add(q, "(");
		restrict_rows(q, n, r, NULL);
		qb_add(q, ")");
		break;
	case SQ_COMPOSITE: {
		size_t best = 0;
		for (size_t i = 1; i < n->nkids; i++)
			if (rank(n->kids[i]) < rank(n->kids[best]))
				best = i;
		qb_add(q, "(");
		ix_in(q, n->kids[best], r);
		qb_add(q, " AND ");
		composite_probe(q, n, r);
		qb_add(q, ")");
		break;
	}
	case SQ_CHAIN:
		/* the targets that match, their dictionary ids, the rows pointing there */
		snprintf(x, sizeof(x), "t%d", q->alias++);
		snprintf(d, sizeof(d), "d%d", q->alias++);
		snprintf(rn, sizeof(rn), "r%d", q->alias++);
		buf_addf(&q->sql, "%s.rkey IN (SELECT %s.rkey FROM ix_reference %s WHERE %s.pid = ", r, x,
			 x, x);
		qb_int(q, n->pid);
		buf_addf(&q->sql, " AND %s.tok IN (SELECT %s.id FROM resource %s JOIN ix_dict %s ON %s.sys = "
				  "%s.type AND %s.code = %s.id WHERE ",
			 x, d, rn, d, d, rn, d, rn);
		restrict_rows(q, n->nkids ? n->kids[0] : NULL, rn, n->s1);
		qb_add(q, "))");
		break;
	case SQ_HAS:
		/* the referring rows that match, what they point to through pid */
		snprintf(x, sizeof(x), "t%d", q->alias++);
		snprintf(d, sizeof(d), "d%d", q->alias++);
		snprintf(rn, sizeof(rn), "r%d", q->alias++);
		buf_addf(&q->sql, "%s.rkey IN (SELECT tr%s.rkey FROM ix_reference %s JOIN ix_dict %s ON "
				  "%s.id = %s.tok JOIN resource tr%s ON tr%s.type = %s.sys AND tr%s.id = "
				  "%s.code WHERE %s.pid = ",
			 r, x, x, d, d, x, x, x, d, x, d, x);
		qb_int(q, n->pid);
		buf_addf(&q->sql, " AND %s.rkey IN (SELECT %s.rkey FROM resource %s WHERE ", x, rn, rn);
		restrict_rows(q, n->nkids ? n->kids[0] : NULL, rn, n->s1);
		qb_add(q, "))");
		break;
	default:
		probe(q, n, r);
		break;
	}
}

/* :missing.  A reference parameter's values are in three tables: Type/id
 * in ix_reference, absolute and canonical urls in ix_uri, a Reference with
 * only an identifier in ix_token (pid | STORE_PID_IDENT). */
static void missing_probe(struct qb *q, const struct sq_node *n, const char *r)
{
	static const int ref_tables[] = { SIX_REFERENCE, SIX_URI, SIX_TOKEN };
	size_t ntables = n->ix == SIX_REFERENCE ? 3 : 1;

	if (n->ix == SIX_TEXT || n->ix < SIX_TOKEN || n->ix >= SIX__COUNT) {
		qb_add(q, n->b ? "1" : "0"); /* no rows can exist: always missing */
		return;
	}
	qb_add(q, n->b ? "NOT (" : "(");
	for (size_t i = 0; i < ntables; i++) {
		int ix = ntables == 1 ? n->ix : ref_tables[i];
		char t[16];
		snprintf(t, sizeof(t), "t%d", q->alias++);
		buf_addf(&q->sql, "%sEXISTS (SELECT 1 FROM %s %s WHERE %s.rkey = %s.rkey AND %s.pid = ",
			 i ? " OR " : "", ix_table[ix], t, t, r, t);
		qb_int(q, ix == SIX_TOKEN && ntables == 3 ? n->pid | STORE_PID_IDENT : n->pid);
		qb_add(q, ")");
	}
	qb_add(q, ")");
}

/* n tested on one row of r. */
static void probe(struct qb *q, const struct sq_node *n, const char *r)
{
	char t[16], d[16], rn[16];

	switch (n->kind) {
	case SQ_AND:
	case SQ_OR:
		if (n->nkids == 0) {
			qb_add(q, n->kind == SQ_AND ? "1" : "0");
			break;
		}
		qb_add(q, "(");
		for (size_t i = 0; i < n->nkids; i++) {
			if (i)
				qb_add(q, n->kind == SQ_AND ? " AND " : " OR ");
			probe(q, n->kids[i], r);
		}
		qb_add(q, ")");
		break;
	case SQ_NOT:
		qb_add(q, "NOT (");
		if (n->nkids)
			probe(q, n->kids[0], r);
		else
			qb_add(q, "0");
		qb_add(q, ")");
		break;
	case SQ_IX:
		ix_probe(q, n, r);
		break;
	case SQ_MISSING:
		missing_probe(q, n, r);
		break;
	case SQ_ID:
		buf_addf(&q->sql, "%s.id = ", r);
		qb_text(q, n->s1);
		break;
	case SQ_LASTUPDATED:
		lastupdated_cond(q, n, r);
		break;
	case SQ_CHAIN:
		snprintf(t, sizeof(t), "t%d", q->alias++);
		snprintf(d, sizeof(d), "d%d", q->alias++);
		snprintf(rn, sizeof(rn), "r%d", q->alias++);
		/* CROSS JOIN fixes the order: this row's references, their
		 * dictionary entries, the resources they name.  Left free,
		 * SQLite may read every resource of the target type per row. */
		buf_addf(&q->sql, "EXISTS (SELECT 1 FROM ix_reference %s CROSS JOIN ix_dict %s ON %s.id = %s.tok "
				  "CROSS JOIN resource %s ON %s.type = %s.sys AND %s.id = %s.code "
				  "WHERE %s.rkey = %s.rkey AND %s.pid = ",
			 t, d, d, t, rn, rn, d, rn, d, t, r, t);
		qb_int(q, n->pid);
		buf_addf(&q->sql, " AND +%s.deleted = 0", rn);
		if (n->s1) {
			buf_addf(&q->sql, " AND +%s.type = ", rn);
			qb_text(q, n->s1);
		}
		qb_add(q, " AND ");
		if (n->nkids)
			probe(q, n->kids[0], rn);
		else
			qb_add(q, "1");
		qb_add(q, ")");
		break;
	case SQ_HAS:
		snprintf(t, sizeof(t), "t%d", q->alias++);
		snprintf(d, sizeof(d), "d%d", q->alias++);
		snprintf(rn, sizeof(rn), "r%d", q->alias++);
		/* the same fixed order: this row's dictionary entry, the
		 * references to it, the resources holding them */
		buf_addf(&q->sql, "EXISTS (SELECT 1 FROM ix_dict %s CROSS JOIN ix_reference %s ON %s.tok = %s.id "
				  "CROSS JOIN resource %s ON %s.rkey = %s.rkey WHERE %s.code = %s.id AND %s.sys = "
				  "%s.type AND %s.pid = ",
			 d, t, t, d, rn, rn, t, d, r, d, r, t);
		qb_int(q, n->pid);
		buf_addf(&q->sql, " AND +%s.deleted = 0 AND +%s.type = ", rn, rn);
		qb_text(q, n->s1);
		qb_add(q, " AND ");
		if (n->nkids)
			probe(q, n->kids[0], rn);
		else
			qb_add(q, "1");
		qb_add(q, ")");
		break;
	case SQ_COMPOSITE:
		composite_probe(q, n, r);
		break;
	case SQ_TYPE:
		buf_addf(&q->sql, "%s.type = ", r);
		qb_text(q, n->s1);
		break;
	case SQ_TEXT:
		text_in(q, n, r);
		break;
	default:
		qb_add(q, "0");
		break;
	}
}

/* The SQL expression of sort key i for resource alias r. */
static void sort_expr(struct qb *q, const struct sq_sort *k, const char *r)
{
	static const char *const col[SIX__COUNT] = {
		[SIX_TOKEN] = "d.code", [SIX_STRING] = "s.norm", [SIX_DATE] = "s.lo",
		[SIX_NUMBER] = "s.val", [SIX_QUANTITY] = "s.val", [SIX_REFERENCE] = "d.code",
		[SIX_URI] = "s.uri",
	};
	bool dict = k->ix == SIX_TOKEN || k->ix == SIX_REFERENCE;
	bool text = k->kind == SQS_ID ||
		    (k->kind == SQS_PARAM && k->ix != SIX_DATE && k->ix != SIX_NUMBER && k->ix != SIX_QUANTITY);
	/* resources without the value come last whichever the direction */
	const char *missing = text ? (k->desc ? "''" : "char(1114111)")
				   : (k->desc ? "-9.0e18" : "9.0e18");

	switch (k->kind) {
	case SQS_ID:
		buf_addf(&q->sql, "%s.id", r);
		return;
	case SQS_LASTUPDATED:
		buf_addf(&q->sql, "%s.ts", r);
		return;
	default:
		if (k->ix < SIX_TOKEN || k->ix >= SIX_TEXT) {
			qb_add(q, "NULL");
			return;
		}
		/* a token's "#text" rows (words for :text) are not its codes */
		buf_addf(&q->sql, "coalesce((SELECT %s(%s) FROM %s s%s WHERE s.rkey = %s.rkey AND s.pid = ",
			 k->desc ? "max" : "min",
			 k->ix == SIX_DATE && k->desc ? "s.hi" : col[k->ix], ix_table[k->ix],
			 !dict ? "" : k->ix == SIX_TOKEN ? " JOIN ix_dict d ON d.id = s.tok AND d.sys <> '#text'"
							 : " JOIN ix_dict d ON d.id = s.tok", r);
		qb_int(q, k->pid);
		buf_addf(&q->sql, "), %s)", missing);
	}
}

static void key_param(struct qb *q, const struct sq_key *k)
{
	switch (k->type) {
	case 1: qb_int(q, k->i); break;
	case 2: qb_real(q, k->r); break;
	case 3: qb_text(q, k->s); break;
	default: qb_add(q, "NULL"); break;
	}
}

/* Rows after (or before) the cursor, in the order of the sort keys then rkey:
 * k1 > c1 OR (k1 = c1 AND (k2 > c2 OR (k2 = c2 AND rkey > c))) with each
 * ">" turned around for a descending key (and for a page before). */
static void cursor_cond(struct qb *q, const struct store_query *sq, const char *r)
{
	for (size_t i = 0; i < sq->nsort; i++) {
		bool gt = sq->sort[i].desc == sq->before;
		qb_add(q, "(");
		sort_expr(q, &sq->sort[i], r);
		qb_add(q, gt ? " > " : " < ");
		key_param(q, &sq->cursor[i]);
		qb_add(q, " OR (");
		sort_expr(q, &sq->sort[i], r);
		qb_add(q, " = ");
		key_param(q, &sq->cursor[i]);
		qb_add(q, " AND ");
	}
	buf_addf(&q->sql, "%s.rkey %s ", r, sq->before ? "<" : ">");
	qb_int(q, sq->cursor_rkey);
	for (size_t i = 0; i < sq->nsort; i++)
		qb_add(q, "))");
}

static int bind_all(sqlite3_stmt *st, const struct qb *q)
{
	for (size_t i = 0; i < q->np; i++) {
		const struct qparam *p = &q->p[i];
		int rc;
		switch (p->type) {
		case P_INT: rc = sqlite3_bind_int64(st, (int)i + 1, p->i); break;
		case P_REAL: rc = sqlite3_bind_double(st, (int)i + 1, p->r); break;
		default: rc = sqlite3_bind_text(st, (int)i + 1, p->s, -1, SQLITE_STATIC); break;
		}
		if (rc != SQLITE_OK)
			return -1;
	}
	return 0;
}

static void read_key(sqlite3_stmt *st, int col, struct sq_key *k)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		k->type = 1;
		k->i = sqlite3_column_int64(st, col);
		break;
	case SQLITE_FLOAT:
		k->type = 2;
		k->r = sqlite3_column_double(st, col);
		break;
	case SQLITE_TEXT:
		k->type = 3;
		k->s = (const char *)sqlite3_column_text(st, col);
		break;
	default:
		k->type = 0;
		break;
	}
}

/* A failed step: FTS5 refusing a query (a word our tokenizer split
 * differently, see fts_separator) is the request's fault, not the
 * database's. */
static int search_fail(struct err *e, sqlite3 *db, const char *what)
{
	const char *msg = sqlite3_errmsg(db);

	if (strncmp(msg, "fts5:", 5) == 0 || strcmp(msg, "unterminated string") == 0)
		return err_set(e, ERR_INVALID, "search parameter '_text' or '_content': the text "
					       "cannot be searched (%.100s)", msg);
	return sqlite_db_fail(e, db, what);
}

static void hit_from_row(sqlite3_stmt *st, struct store_hit *h, size_t nkeys)
{
	memset(h, 0, sizeof(*h));
	h->rkey = sqlite3_column_int64(st, 0);
	sqlite_set_name(h->v.type, sizeof(h->v.type), (const char *)sqlite3_column_text(st, 1));
	sqlite_set_name(h->v.id, sizeof(h->v.id), (const char *)sqlite3_column_text(st, 2));
	h->v.vid = sqlite3_column_int64(st, 3);
	h->v.ts_ms = sqlite3_column_int64(st, 4);
	h->v.json = (char *)sqlite3_column_text(st, 5);
	h->v.len = (size_t)sqlite3_column_bytes(st, 5);
	h->v.vkey = sqlite3_column_int64(st, 6);
	for (size_t i = 0; i < nkeys; i++)
		read_key(st, 7 + (int)i, &h->keys[i]);
}

/* A page before the cursor is read backwards; give it in order. */
struct held {
	struct store_hit h;
	char *json;
	char *keytext[SQ_MAX_SORT];
};

static int deliver_reversed(sqlite3_stmt *st, const struct store_query *sq, store_hit_fn fn,
			    void *ctx, bool *more, struct err *e)
{
	struct held *rows = calloc(sq->count + 1, sizeof(*rows));
	size_t n = 0;
	int rc = -1, step;

	if (!rows)
		return err_set(e, ERR_NOMEM, "out of memory");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct held *r;
		if (n == sq->count) {
			*more = true;
			break;
		}
		r = &rows[n++];
		hit_from_row(st, &r->h, sq->nsort);
		r->json = strndup(r->h.v.json ? r->h.v.json : "", r->h.v.len);
		r->h.v.json = r->json;
		for (size_t k = 0; k < sq->nsort; k++) {
			if (r->h.keys[k].type == 3) {
				r->keytext[k] = strdup(r->h.keys[k].s);
				r->h.keys[k].s = r->keytext[k];
			}
		}
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		search_fail(e, sqlite3_db_handle(st), "search");
		goto out;
	}
	rc = 0;
	for (size_t i = n; i-- > 0;) {
		int r = fn(ctx, &rows[i].h);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r > 0)
			break;
	}
out:
	for (size_t i = 0; i < n; i++) {
		free(rows[i].json);
		for (size_t k = 0; k < SQ_MAX_SORT; k++)
			free(rows[i].keytext[k]);
	}
	free(rows);
	return rc;
}

int store_search(struct store *s, const struct store_query *sq, store_hit_fn fn, void *ctx,
		 bool *more, int64_t *total, struct err *e)
{
	struct qb q;
	struct conn *c = NULL;
	sqlite3_stmt *st;
	int rc = -1, step;

	memset(&q, 0, sizeof(q));
	buf_init(&q.sql, 0);
	q.alias = 1;
	q.e = e;
	*more = false;
	if (total)
		*total = -1;
	if (sq->nsort > SQ_MAX_SORT)
		return err_set(e, ERR_INVALID, "too many sort keys");

	/* The page. */
	qb_add(&q, "SELECT r0.rkey, r0.type, r0.id, v.vid, v.ts, v.json, v.vkey");
	for (size_t i = 0; i < sq->nsort; i++) {
		qb_add(&q, ", ");
		sort_expr(&q, &sq->sort[i], "r0");
	}
	qb_add(&q, " FROM resource r0 JOIN version v ON v.rkey = r0.rkey AND v.vid = r0.vid WHERE ");
	c = sqlite_reader_get(s, e);
	if (!c)
		goto out;
	q.c = c;
	restrict_rows(&q, sq->where, "r0", sq->type);
	if (sq->has_cursor) {
		qb_add(&q, " AND ");
		cursor_cond(&q, sq, "r0");
	}
	qb_add(&q, " ORDER BY ");
	for (size_t i = 0; i < sq->nsort; i++) {
		buf_addf(&q.sql, "%zu %s, ", 8 + i, sq->sort[i].desc != sq->before ? "DESC" : "ASC");
	}
	buf_addf(&q.sql, "r0.rkey %s LIMIT ", sq->before ? "DESC" : "ASC");
	qb_int(&q, (int64_t)sq->count + 1);
	if (q.oom || q.sql.failed) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* the SQL has no values in it (they are bound): safe to log */
	log_debug("event=search_sql sql=\"%s\"", buf_cstr(&q.sql));
	st = sqlite_prepare_cached(c, buf_cstr(&q.sql), e);
	if (!st)
		goto out;
	if (bind_all(st, &q) < 0) {
		sqlite_db_fail(e, sqlite_conn_db(c), "bind");
		goto out;
	}
	if (sq->before) {
		if (deliver_reversed(st, sq, fn, ctx, more, e) < 0)
			goto out_reset;
	} else {
		size_t n = 0;
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_hit h;
			int r;
			if (n == sq->count) {
				*more = true;
				break;
			}
			hit_from_row(st, &h, sq->nsort);
			n++;
			r = fn(ctx, &h);
			if (r < 0)
				goto out_reset;
			if (r > 0)
				break;
		}
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			search_fail(e, sqlite_conn_db(c), "search");
			goto out_reset;
		}
	}
	sqlite3_reset(st);

	/* The total: the same conditions, no paging. */
	if (total && sq->want_total) {
		qb_release(&q);
		memset(&q, 0, sizeof(q));
		buf_init(&q.sql, 0);
		q.alias = 1;
		q.c = c;
		qb_add(&q, "SELECT count(*) FROM resource r0 WHERE ");
		restrict_rows(&q, sq->where, "r0", sq->type);
		if (q.oom || q.sql.failed) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		st = sqlite_prepare_cached(c, buf_cstr(&q.sql), e);
		if (!st)
			goto out;
		if (bind_all(st, &q) < 0 || sqlite3_step(st) != SQLITE_ROW) {
			search_fail(e, sqlite_conn_db(c), "count");
			goto out_reset;
		}
		*total = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	rc = 0;
	goto out;
out_reset:
	sqlite3_reset(st);
out:
	if (c)
		sqlite_reader_put(s, c);
	qb_release(&q);
	return rc;
}

int store_search_refs(struct store *s, const int64_t *rkeys, size_t n, uint32_t pid,
		      const char *target, bool reverse, store_hit_fn fn, void *ctx, struct err *e)
{
	struct qb q;
	struct conn *c = NULL;
	sqlite3_stmt *st;
	int rc = -1, step;

	if (n == 0)
		return 0;
	memset(&q, 0, sizeof(q));
	buf_init(&q.sql, 0);
	if (!reverse) {
		/* what the page refers to */
		qb_add(&q, "SELECT DISTINCT t.rkey, t.type, t.id, v.vid, v.ts, v.json, v.vkey "
			   "FROM ix_reference x JOIN ix_dict d ON d.id = x.tok "
			   "JOIN resource t ON t.type = d.sys AND t.id = d.code "
			   "JOIN version v ON v.rkey = t.rkey AND v.vid = t.vid WHERE t.deleted = 0");
		if (pid) {
			qb_add(&q, " AND x.pid = ");
			qb_int(&q, pid);
		}
		if (target) {
			qb_add(&q, " AND t.type = ");
			qb_text(&q, target);
		}
		qb_add(&q, " AND x.rkey IN (");
	} else {
		/* what refers to the page */
		qb_add(&q, "SELECT DISTINCT t.rkey, t.type, t.id, v.vid, v.ts, v.json, v.vkey "
			   "FROM resource me JOIN ix_dict d ON d.code = me.id AND d.sys = me.type "
			   "JOIN ix_reference x ON x.tok = d.id JOIN resource t ON t.rkey = x.rkey "
			   "JOIN version v ON v.rkey = t.rkey AND v.vid = t.vid WHERE t.deleted = 0");
		if (pid) {
			qb_add(&q, " AND x.pid = ");
			qb_int(&q, pid);
		}
		if (target) {
			qb_add(&q, " AND t.type = ");
			qb_text(&q, target);
		}
		qb_add(&q, " AND me.rkey IN (");
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			qb_add(&q, ",");
		qb_int(&q, rkeys[i]);
	}
	qb_add(&q, ") ORDER BY t.rkey");
	if (q.oom || q.sql.failed) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	c = sqlite_reader_get(s, e);
	if (!c)
		goto out;
	st = sqlite_prepare_cached(c, buf_cstr(&q.sql), e);
	if (!st)
		goto out;
	if (bind_all(st, &q) < 0) {
		sqlite_db_fail(e, sqlite_conn_db(c), "bind");
		sqlite3_reset(st);
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_hit h;
		int r;
		hit_from_row(st, &h, 0);
		r = fn(ctx, &h);
		if (r < 0) {
			sqlite3_reset(st);
			goto out;
		}
		if (r > 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		sqlite_db_fail(e, sqlite_conn_db(c), "include");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	if (c)
		sqlite_reader_put(s, c);
	qb_release(&q);
	return rc;
}
