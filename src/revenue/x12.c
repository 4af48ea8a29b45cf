/* x12.c - the X12 engine: envelopes, loop recognition from the guide's
 * tables, validation, and the 999 / TA1 that report it.
 *
 * One pass, one segment at a time.  Per transaction set the engine keeps the
 * guide's loop stack (the loop node, the last child matched, a use count per
 * child) and nothing of the data: a 100 MB batch needs the same memory as a
 * 1 KB one.
 *
 * Loop recognition (after pyx12's walker): a segment belongs to the first
 * node, searching the current loop from the last matched child's position
 * onwards, then each enclosing loop the same way, that is either a segment
 * with its id, or a loop whose first segment has its id; a node whose first
 * element (HL: third) has a code list matches only a segment whose value is
 * on it (NM1*85 is 2010AA, NM1*87 is 2010AB).  A loop's first segment starts
 * a new instance of the loop, never a repeat inside it.
 *
 * Error codes are those of the 999 (X231): IK304 for segments, IK403 for
 * elements, IK502 for transaction sets, AK905 for groups, and TA105 for the
 * interchange. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "revenue/x12.h"
#include "revenue/x12_int.h"
#include "base/banned.h"

#define MAX_DEPTH 16
#define MAX_ELE_ERR 32

struct lvl {
	int32_t node;           /* the loop (node index) */
	int32_t last;           /* last child matched, -1 */
	uint16_t *seen;         /* uses per child ordinal */
};

#define MAX_HL 32

/* An open level of the HL hierarchy: its children come right after it. */
struct hl {
	char id[13];
	char hl04;              /* child code: '1' children follow, '0' none */
	uint32_t kids;
	uint64_t pos;
	const char *loop;
};

struct ele_err {
	uint16_t ele, comp, rep; /* 1-based; comp, rep 0 when not applicable */
	const char *code;        /* IK403 */
	const char *dele;        /* data element number, "" */
	const char *what;        /* element id for messages */
	const char *bad;         /* copy of the bad data, NULL */
	size_t bad_len;
};

struct engine {
	const struct x12_opts *o;
	const struct x12_sink *sink;
	struct x12_stats *st;
	FILE *diag;
	struct x12_delims d;
	char date8[9], time4[5];
	uint32_t ack_control;

	/* interchange */
	bool in_isa;
	char isa[106];
	char isa13[10];
	const char *ta1_code;    /* first interchange problem, NULL */
	char ta1_ack;            /* 'A', 'E', 'R' */
	uint32_t n_groups;
	struct buf ack;          /* the acknowledgement interchange being built */
	struct buf body;         /* its GS..GE */
	uint32_t n_999;
	char ack_from[16], ack_to[16]; /* the first GS's receiver and sender */

	/* group */
	bool in_gs;
	char gs01[3], gs06[10], gs08[13];
	uint32_t n_tx, n_tx_acc;
	const char *ak9[5];
	int n_ak9;
	struct buf tx999;        /* the 999 transaction set for this group */
	uint32_t tx999_segs;

	/* transaction set */
	bool in_st;
	const struct x12_map *m;
	struct lvl lv[MAX_DEPTH];
	int depth;
	uint16_t *pool;          /* MAX_DEPTH x max_kids counters */
	size_t pool_kids;
	uint64_t pos;            /* segment position in the set (ST is 1) */
	char st01[4], st02[10], st03[36];
	const char *ik5[5];
	int n_ik5;
	bool tx_bad;
	uint32_t hl_count;
	struct hl hls[MAX_HL];   /* the open HL chain, outermost first */
	int n_hls;
	bool loose;              /* matching by segment id alone */
	int32_t dele_period;     /* x12_deles index of 1251, Date Time Period */
};

/* ---- small helpers ---- */

static void copy_span(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

/* Element i as a C string for messages and the 999: control numbers and
 * codes only, never patient data; bytes outside printable ASCII, and our own
 * delimiters, become '?'. */
static void copy_ele(char *dst, size_t cap, const struct x12_seg *s, unsigned i)
{
	size_t n;
	const char *v = x12_ele(s, i, &n);

	copy_span(dst, cap, v, n);
	for (char *p = dst; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '*' || *p == '^' ||
		    *p == ':' || *p == '~')
			*p = '?'; /* nor our delimiters, which the 999 quotes it with */
}

static bool ele_is(const struct x12_seg *s, unsigned i, const char *want)
{
	size_t n;
	const char *v = x12_ele(s, i, &n);

	return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* Codes are a few bytes: a loop beats a call to memcmp. */
static int cmp_code(const char *v, size_t n, uint32_t k)
{
	const char *c = x12_codes[k];
	size_t kl = x12_code_lens[k], mn = n < kl ? n : kl;

	for (size_t i = 0; i < mn; i++)
		if (v[i] != c[i])
			return (unsigned char)v[i] - (unsigned char)c[i];
	return n < kl ? -1 : n > kl ? 1 : 0;
}

/* Is v on the node's (sorted) code list? */
static bool code_ok(const struct x12_node *nd, const char *v, size_t n)
{
	uint32_t lo = nd->codes, hi = nd->codes + nd->ncodes;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = cmp_code(v, n, mid);

		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool all_digits(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return n > 0;
}

static int num2(const char *v)
{
	return (v[0] - '0') * 10 + (v[1] - '0');
}

static bool date_ok(const char *v, size_t n)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d;

	if ((n != 8 && n != 6) || !all_digits(v, n))
		return false;
	if (n == 8) {
		y = num2(v) * 100 + num2(v + 2);
		v += 2;
	} else {
		y = 2000 + num2(v); /* YYMMDD: only leap years matter here */
	}
	m = num2(v + 2);
	d = num2(v + 4);
	if (m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && is_leap(y) ? 1 : 0);
}

static bool time_ok(const char *v, size_t n)
{
	if (n < 4 || n > 8 || n == 5 || !all_digits(v, n))
		return false;
	if (num2(v) > 23 || num2(v + 2) > 59)
		return false;
	return n < 6 || num2(v + 4) <= 59;
}

/* The basic and extended character sets of X12: printable ASCII (no
 * control characters, nothing above 0x7e), and none of the interchange's
 * delimiters (they cannot be in data). */
static bool chars_ok(const struct engine *g, const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c >= 0x7f)
			return false;
		if (c == (unsigned char)g->d.comp || (g->d.rep && c == (unsigned char)g->d.rep))
			return false;
	}
	return true;
}

enum { HAS_REP = 1, HAS_COMP = 2, HAS_BAD = 4 };

/* One pass over an element: repetition or component separators in it, and
 * characters outside the character set (bits of the enum above). */
static unsigned scan_value(const struct engine *g, const char *v, size_t n)
{
	unsigned m = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c >= 0x7f)
			m |= HAS_BAD;
		else if (c == (unsigned char)g->d.comp)
			m |= HAS_COMP;
		else if (g->d.rep && c == (unsigned char)g->d.rep)
			m |= HAS_REP;
	}
	return m;
}

/* Check one simple value against its element: NULL or the IK403 code.
 * mask: scan_value's result for v, or -1 when not scanned yet. */
static const char *check_simple(const struct engine *g, const struct x12_node *nd, const char *v,
				size_t n, int mask)
{
	const struct x12_dele *de = nd->dele >= 0 ? &x12_deles[nd->dele] : NULL;
	size_t len = n;

	if (mask < 0 ? !chars_ok(g, v, n) : (mask & (HAS_BAD | HAS_COMP | HAS_REP)) != 0)
		return "6";
	if (!de)
		return NULL;
	switch (de->type) {
	case X12_T_N: {
		size_t i = v[0] == '-' ? 1 : 0;

		if (!all_digits(v + i, n - i))
			return "6";
		len = n - i;
		break;
	}
	case X12_T_R: {
		size_t i = v[0] == '-' ? 1 : 0, digits = 0;
		bool dot = false;

		for (; i < n; i++) {
			if (v[i] == '.' && !dot)
				dot = true;
			else if (v[i] >= '0' && v[i] <= '9')
				digits++;
			else
				return "6";
		}
		if (digits == 0)
			return "6";
		len = digits;
		break;
	}
	case X12_T_DT:
		if (!date_ok(v, n))
			return "8";
		break;
	case X12_T_TM:
		if (!time_ok(v, n))
			return "9";
		break;
	default:
		break;
	}
	if (len < de->min)
		return "4";
	if (len > de->max)
		return "5";
	if (nd->ncodes && !code_ok(nd, v, n))
		return "7";
	return NULL;
}

/* ---- messages ---- */

static const char *ik3_text(const char *code)
{
	static const char *const t[][2] = {
		{ "1", "unrecognized segment id" },
		{ "2", "unexpected segment" },
		{ "3", "required segment missing" },
		{ "4", "loop occurs over maximum times" },
		{ "5", "segment exceeds maximum use" },
		{ "6", "segment not in defined transaction set" },
		{ "7", "segment not in proper sequence" },
		{ "8", "segment has data element errors" },
		{ "I4", "segment not used by the guide is present" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(t[i][0], code) == 0)
			return t[i][1];
	return "error";
}

static const char *ik4_text(const char *code)
{
	static const char *const t[][2] = {
		{ "1", "required data element missing" },
		{ "2", "conditional required data element missing" },
		{ "3", "too many data elements" },
		{ "4", "data element too short" },
		{ "5", "data element too long" },
		{ "6", "invalid character in data element" },
		{ "7", "invalid code value" },
		{ "8", "invalid date" },
		{ "9", "invalid time" },
		{ "10", "exclusion condition violated" },
		{ "12", "too many repetitions" },
		{ "13", "too many components" },
		{ "I10", "data element not used by the guide is present" },
		{ "I12", "does not match the guide's pattern" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(t[i][0], code) == 0)
			return t[i][1];
	return "error";
}

/* One diagnostic line naming where: never the data itself. */
static void diag(struct engine *g, const char *seg, uint64_t pos, const char *loop, const char *ele,
		 const char *what)
{
	if (!g->diag)
		return;
	fprintf(g->diag, "x12: interchange %s", g->isa13[0] ? g->isa13 : "?");
	if (g->in_gs)
		fprintf(g->diag, ", group %s", g->gs06);
	if (g->in_st)
		fprintf(g->diag, ", transaction %s (%s)", g->st02, g->st01);
	if (seg && pos)
		fprintf(g->diag, ", segment %llu %s", (unsigned long long)pos, seg);
	else if (seg)
		fprintf(g->diag, ", segment %s", seg);
	if (loop && *loop)
		fprintf(g->diag, ", loop %s", loop);
	if (ele && *ele)
		fprintf(g->diag, ", %s", ele);
	fprintf(g->diag, ": %s\n", what);
}

static void ack_seg(struct engine *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A segment of the group's 999 transaction set. */
static void ack_seg(struct engine *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&g->tx999, fmt, ap);
	va_end(ap);
	buf_addstr(&g->tx999, "~\n");
	g->tx999_segs++;
}

static void tx_error(struct engine *g, const char *ik5)
{
	g->tx_bad = true;
	g->st->errors++;
	for (int i = 0; i < g->n_ik5; i++)
		if (strcmp(g->ik5[i], ik5) == 0)
			return;
	if (g->n_ik5 < 5)
		g->ik5[g->n_ik5++] = ik5;
}

static void group_error(struct engine *g, const char *ak9)
{
	g->st->errors++;
	for (int i = 0; i < g->n_ak9; i++)
		if (strcmp(g->ak9[i], ak9) == 0)
			return;
	if (g->n_ak9 < 5)
		g->ak9[g->n_ak9++] = ak9;
}

/* An interchange problem (TA105); the first one is reported. */
static void ta1_error(struct engine *g, const char *code, char ack, const char *what)
{
	g->st->errors++;
	if (!g->ta1_code || (ack == 'R' && g->ta1_ack != 'R')) {
		g->ta1_code = code;
		g->ta1_ack = ack;
	}
	diag(g, NULL, 0, NULL, NULL, what);
}

/* IK3: the segment, its position in the set, the loop and the IK304 code.
 * IK303 is the Loop Identifier Code (447, AN 1-4): the loop's number on the
 * transaction set diagram, which is the guide's loop id without its letters
 * (2010AA is 2010); messages keep the whole id. */
static void ik3(struct engine *g, const char *seg, uint64_t pos, const char *loop, const char *code)
{
	if (g->o->no_validate)
		return; /* parse: structure only */
	if (g->in_st) {
		ack_seg(g, "IK3*%s*%llu*%.4s*%s", seg, (unsigned long long)pos, loop ? loop : "", code);
		tx_error(g, "5");
	}
	diag(g, seg, pos, loop, NULL, ik3_text(code));
}

/* Is the value safe to copy into the 999 (no delimiter of ours)? */
static bool plain(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == '*' || v[i] == '^' || v[i] == ':' || v[i] == '~' || (unsigned char)v[i] < 0x20)
			return false;
	return true;
}

static void ik4(struct engine *g, const struct ele_err *x)
{
	char where[48];

	/* IK401 is a composite: element, component, repetition */
	if (x->rep)
		snprintf(where, sizeof(where), "%u:%u:%u", x->ele, x->comp ? x->comp : 1, x->rep);
	else if (x->comp)
		snprintf(where, sizeof(where), "%u:%u", x->ele, x->comp);
	else
		snprintf(where, sizeof(where), "%u", x->ele);
	if (x->bad && x->bad_len <= 99 && plain(x->bad, x->bad_len))
		ack_seg(g, "IK4*%s*%s*%s*%.*s", where, x->dele, x->code, (int)x->bad_len, x->bad);
	else
		ack_seg(g, "IK4*%s*%s*%s", where, x->dele, x->code);
}

/* ---- element validation ---- */

struct ele_ctx {
	struct engine *g;
	struct ele_err err[MAX_ELE_ERR];
	int n;
};

static void add_err(struct ele_ctx *c, const struct x12_node *nd, unsigned ele, unsigned comp,
		    unsigned rep, const char *code, const char *bad, size_t bad_len)
{
	struct ele_err *x;

	if (c->n == MAX_ELE_ERR)
		return;
	x = &c->err[c->n++];
	x->ele = (uint16_t)ele;
	x->comp = (uint16_t)comp;
	x->rep = (uint16_t)rep;
	x->code = code;
	x->dele = nd && nd->dele >= 0 ? x12_deles[nd->dele].num : "";
	x->what = nd ? nd->xid : "";
	x->bad = bad;
	x->bad_len = bad_len;
}

/* Is the character in v[0..n)? */
static const char *has(const char *v, size_t n, char ch)
{
	return ch ? memchr(v, ch, n) : NULL;
}

static void check_value(struct ele_ctx *c, const struct x12_node *m, const struct x12_node *nd,
			unsigned ele, unsigned rep, const char *v, size_t n, int mask)
{
	struct engine *g = c->g;

	if (nd->kind == X12_N_COMP) {
		unsigned k = 0;
		int32_t sub = nd->child;
		const char *p = v, *end = v + n;

		for (;;) {
			const char *q = memchr(p, g->d.comp, (size_t)(end - p));
			size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

			k++;
			if (sub < 0) {
				add_err(c, nd, ele, k, rep, "13", NULL, 0);
				break;
			}
			if (len == 0) {
				if (m[sub].usage == 'R')
					add_err(c, &m[sub], ele, k, rep, "1", NULL, 0);
			} else if (m[sub].usage == 'N') {
				add_err(c, &m[sub], ele, k, rep, "I10", NULL, 0);
			} else {
				const char *code = check_simple(g, &m[sub], p, len, -1);

				if (code)
					add_err(c, &m[sub], ele, k, rep, code, p, len);
			}
			if (!q)
				break;
			p = q + 1;
			sub = m[sub].next;
		}
		/* required components after the last one sent */
		for (; sub >= 0 && (sub = m[sub].next) >= 0;) {
			k++;
			if (m[sub].usage == 'R')
				add_err(c, &m[sub], ele, k, rep, "1", NULL, 0);
		}
		return;
	}
	if (mask < 0 ? has(v, n, g->d.comp) != NULL : (mask & HAS_COMP) != 0) {
		add_err(c, nd, ele, 0, rep, "6", NULL, 0);
		return;
	}
	{
		const char *code = check_simple(g, nd, v, n, mask);

		if (code)
			add_err(c, nd, ele, 0, rep, code, v, n);
	}
}

static bool present(const struct x12_seg *s, unsigned i)
{
	size_t n;

	x12_ele(s, i, &n);
	return n > 0;
}

static void check_syntax(struct ele_ctx *c, const struct x12_node *m, const struct x12_node *seg,
			 const struct x12_seg *s)
{
	for (uint32_t k = 0; k < seg->nsyn; k++) {
		const struct x12_syntax *y = &x12_syntaxes[seg->syn + k];
		unsigned have = 0, first = present(s, y->ele[0]);
		int32_t nd;

		for (unsigned i = 0; i < y->n; i++)
			have += present(s, y->ele[i]);
		for (unsigned i = 0; i < y->n; i++) {
			unsigned e = y->ele[i];
			bool bad = false;
			const char *code = "2";

			switch (y->kind) {
			case 'P': bad = have > 0 && have < y->n && !present(s, e); break;
			case 'C': bad = first && i > 0 && !present(s, e); break;
			case 'R': bad = have == 0 && i == 0; break;
			case 'L': bad = first && have == 1 && i == 1; break;
			case 'E': bad = have > 1 && i > 0 && present(s, e); code = "10"; break;
			default: break;
			}
			if (!bad)
				continue;
			nd = seg->child;
			for (unsigned j = 1; nd >= 0 && j < e; j++)
				nd = m[nd].next;
			add_err(c, nd >= 0 ? &m[nd] : NULL, e, 0, 0, code, NULL, 0);
		}
	}
}

/* A Date Time Period (1251) after its format qualifier (1250): D8 is a
 * date, RD8 two dates joined by a hyphen.  The dictionary types the
 * element AN; the qualifier says what it must be. */
static void check_period(struct ele_ctx *c, const struct x12_node *m, int32_t nd,
			 const struct x12_seg *s, unsigned i, const char *v, size_t n)
{
	size_t qn;
	const char *q;

	if (i < 2 || m[nd].dele != c->g->dele_period)
		return;
	q = x12_ele(s, i - 1, &qn);
	if (qn == 2 && memcmp(q, "D8", 2) == 0) {
		if (!date_ok(v, n) || n != 8)
			add_err(c, &m[nd], i, 0, 0, "8", v, n);
	} else if (qn == 3 && memcmp(q, "RD8", 3) == 0) {
		if (n != 17 || v[8] != '-' || !date_ok(v, 8) || !date_ok(v + 9, 8) ||
		    memcmp(v, v + 9, 8) > 0)
			add_err(c, &m[nd], i, 0, 0, "8", v, n);
	}
}

/* Validate the elements of segment s against node seg of map m. */
static void check_elements(struct ele_ctx *c, const struct x12_node *m, int32_t seg,
			   const struct x12_seg *s)
{
	struct engine *g = c->g;
	int32_t nd = m[seg].child;
	unsigned i;

	for (i = 1; nd >= 0 || i <= s->n; i++, nd = nd >= 0 ? m[nd].next : -1) {
		size_t n;
		const char *v = x12_ele(s, i, &n);
		unsigned mask;

		if (nd < 0) {
			add_err(c, NULL, i, 0, 0, "3", NULL, 0);
			break;
		}
		if (n == 0) {
			if (m[nd].usage == 'R')
				add_err(c, &m[nd], i, 0, 0, "1", NULL, 0);
			continue;
		}
		if (m[nd].usage == 'N') {
			add_err(c, &m[nd], i, 0, 0, "I10", NULL, 0);
			continue;
		}
		mask = scan_value(g, v, n);
		if (mask & HAS_REP) {
			const char *p = v, *end = v + n;
			unsigned r = 0;

			if (m[nd].repeat == 1) {
				add_err(c, &m[nd], i, 0, 0, "12", NULL, 0);
				continue;
			}
			for (;;) {
				const char *q = memchr(p, g->d.rep, (size_t)(end - p));
				size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

				r++;
				if (m[nd].repeat && r > m[nd].repeat) {
					add_err(c, &m[nd], i, 0, r, "12", NULL, 0);
					break;
				}
				if (len)
					check_value(c, m, &m[nd], i, r, p, len, -1);
				if (!q)
					break;
				p = q + 1;
			}
			continue;
		}
		check_value(c, m, &m[nd], i, 0, v, n, m[nd].kind == X12_N_COMP ? -1 : (int)mask);
		check_period(c, m, nd, s, i, v, n);
	}
	check_syntax(c, m, &m[seg], s);
}

/* ---- acknowledgements ---- */

/* A fixed-width field of an ISA, made safe for our own delimiters (a bad
 * ISA can have anything anywhere). */
static void fixed(char *dst, size_t cap, const char *isa, size_t off, size_t n)
{
	copy_span(dst, cap, isa + off, n);
	for (char *p = dst; *p; p++)
		if (!plain(p, 1))
			*p = ' ';
}

/* ISA element i of g->isa, split on its 4th byte: a bad ISA may not be
 * fixed-width, and the TA1 must still quote its control number. */
static void isa_field(const struct engine *g, unsigned i, char *dst, size_t cap)
{
	const char *p = g->isa, *end = g->isa + sizeof(g->isa);
	char sep = g->isa[3];

	for (unsigned k = 0; k < i && p < end; k++) {
		const char *q = memchr(p, sep, (size_t)(end - p));

		p = q ? q + 1 : end;
	}
	{
		const char *q = memchr(p, sep, (size_t)(end - p));

		fixed(dst, cap, p, 0, (size_t)((q ? q : end) - p));
	}
}

/* Start the acknowledgement interchange for the ISA in g->isa. */
static void ack_begin(struct engine *g)
{
	char q5[3], id6[16], q7[3], id8[16], usage[2];

	isa_field(g, 5, q5, sizeof(q5));
	isa_field(g, 6, id6, sizeof(id6));
	isa_field(g, 7, q7, sizeof(q7));
	isa_field(g, 8, id8, sizeof(id8));
	isa_field(g, 15, usage, sizeof(usage));
	if (usage[0] != 'P' && usage[0] != 'T') {
		usage[0] = 'P';
		usage[1] = 0;
	}
	buf_reset(&g->ack);
	buf_reset(&g->body);
	buf_addf(&g->ack,
		 "ISA*00*          *00*          *%-2.2s*%-15.15s*%-2.2s*%-15.15s*%.6s*%s*^*00501*%09u*0*%s*:~\n",
		 q7, id8, q5, id6, g->date8 + 2, g->time4, g->ack_control % 1000000000u, usage);
	g->n_999 = 0;
	g->ack_from[0] = g->ack_to[0] = 0;
	g->ta1_code = NULL;
	g->ta1_ack = 'A';
}

/* Finish and write the acknowledgement interchange.  TA1 first (when the
 * envelope is bad or one was asked for), then the 999s unless the
 * interchange was rejected. */
static void ack_end(struct engine *g, bool ta1_asked)
{
	struct buf out = BUF_INIT(0);
	char d9[7], t10[5];

	isa_field(g, 9, d9, sizeof(d9));
	isa_field(g, 10, t10, sizeof(t10));
	buf_add(&out, g->ack.data, g->ack.len);
	if (g->ta1_code || ta1_asked)
		buf_addf(&out, "TA1*%s*%s*%s*%c*%s~\n", g->isa13, d9, t10, g->ta1_ack,
			 g->ta1_code ? g->ta1_code : "000");
	if (g->ta1_code)
		g->st->ta1_errors++;
	if (g->ta1_ack != 'R' && g->n_999) {
		buf_addf(&out, "GS*FA*%s*%s*%s*%s*%u*X*005010X231A1~\n", g->ack_from, g->ack_to,
			 g->date8, g->time4, g->ack_control);
		buf_add(&out, g->body.data, g->body.len);
		buf_addf(&out, "GE*%u*%u~\n", g->n_999, g->ack_control);
	}
	buf_addf(&out, "IEA*%u*%09u~\n", g->ta1_ack != 'R' && g->n_999 ? 1u : 0u,
		 g->ack_control % 1000000000u);
	if (g->o->ack_out && !out.failed)
		fwrite(out.data, 1, out.len, g->o->ack_out);
	buf_release(&out);
	g->ack_control++;
}

/* ---- loop recognition ---- */

static bool seg_matches(const struct engine *g, const struct x12_node *m, int32_t nd,
			const struct x12_seg *s)
{
	const struct x12_node *n = &m[nd];
	size_t len;
	const char *v;

	if (memcmp(n->seg, s->id, 4) != 0)
		return false;
	if (!n->match || g->loose)
		return true;
	v = x12_ele(s, n->match, &len);
	if (n->match_comp) {
		const char *q = memchr(v, g->d.comp, len);

		if (q)
			len = (size_t)(q - v);
	}
	return code_ok(&m[n->match_node], v, len);
}

/* Does the loop nd start with segment s? */
static bool loop_matches(const struct engine *g, const struct x12_node *m, int32_t nd,
			 const struct x12_seg *s)
{
	int32_t first = m[nd].child;

	if (memcmp(m[nd].seg, s->id, 4) != 0)
		return false;
	if (m[first].kind == X12_N_SEG)
		return seg_matches(g, m, first, s);
	return loop_matches(g, m, first, s);
}

static const char *loop_id(const struct engine *g, int level)
{
	for (int k = level; k > 0; k--)
		if (g->m->nodes[g->lv[k].node].kind == X12_N_LOOP)
			return g->m->nodes[g->lv[k].node].xid;
	return "";
}

/* Close the innermost loop: report required children that never came. */
static void close_level(struct engine *g)
{
	const struct x12_node *m = g->m->nodes;
	struct lvl *l = &g->lv[g->depth - 1];
	const struct x12_node *loop = &m[l->node];

	for (uint32_t r = loop->req; r < loop->req + loop->nreq; r++) {
		int32_t c = x12_reqs[r];

		if (l->seen[m[c].ord])
			continue;
		if (g->depth == 1 && m[c].kind == X12_N_SEG && strcmp(m[c].seg, "SE") == 0)
			continue; /* a missing trailer is IK502 2, not a segment error */
		if (m[c].kind == X12_N_SEG)
			ik3(g, m[c].seg, g->pos, loop_id(g, g->depth - 1), "3");
		else
			ik3(g, m[c].seg, g->pos, m[c].kind == X12_N_LOOP ? m[c].xid :
							     loop_id(g, g->depth - 1), "3");
	}
	if (loop->kind == X12_N_LOOP && g->sink && g->sink->close && g->depth > 1)
		g->sink->close(g->sink->u, X12_L_LOOP);
	g->depth--;
}

static void push_level(struct engine *g, int32_t nd)
{
	struct lvl *l = &g->lv[g->depth++];

	l->node = nd;
	l->last = -1;
	l->seen = g->pool + (size_t)(g->depth - 1) * g->pool_kids;
	memset(l->seen, 0, g->pool_kids * sizeof(*l->seen));
	if (g->m->nodes[nd].kind == X12_N_LOOP && g->sink && g->sink->open && g->depth > 1)
		g->sink->open(g->sink->u, X12_L_LOOP, g->m->nodes[nd].xid, strlen(g->m->nodes[nd].xid),
			      g->m->nodes[nd].name, NULL, NULL);
}

/* Count a use of child c in level l; report going over the maximum. */
static void use_child(struct engine *g, struct lvl *l, int32_t c, const struct x12_seg *s)
{
	const struct x12_node *n = &g->m->nodes[c];

	if (l->seen[n->ord] < UINT16_MAX)
		l->seen[n->ord]++;
	l->last = c;
	if (n->repeat && l->seen[n->ord] > n->repeat) {
		if (n->kind == X12_N_SEG)
			ik3(g, s->id, g->pos, loop_id(g, g->depth - 1), "5");
		else if (n->kind == X12_N_LOOP)
			ik3(g, s->id, g->pos, n->xid, "4");
	}
}

/* Enter loop nd (a child of the innermost level) with segment s: returns
 * the segment node s is. */
static int32_t enter(struct engine *g, int32_t nd, const struct x12_seg *s)
{
	const struct x12_node *m = g->m->nodes;

	for (;;) {
		int32_t first = m[nd].child;

		use_child(g, &g->lv[g->depth - 1], nd, s);
		if (g->depth == MAX_DEPTH)
			return -1;
		push_level(g, nd);
		if (m[first].kind == X12_N_SEG) {
			use_child(g, &g->lv[g->depth - 1], first, s);
			return first;
		}
		nd = first;
	}
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 2)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isupper((unsigned char)id[i]) && !isdigit((unsigned char)id[i]))
			return false;
	return isupper((unsigned char)id[0]);
}

static bool id_in_map(const struct x12_map *mp, const char *id)
{
	for (uint32_t i = 0; i < mp->n_nodes; i++)
		if (mp->nodes[i].kind == X12_N_SEG && memcmp(mp->nodes[i].seg, id, 4) == 0)
			return true;
	return false;
}

/* Place s in the guide: the segment node, or -1 (reported).  A segment
 * whose qualifier is on no list is placed by its id alone, the first place
 * it could go, so that the 999 says which code is wrong rather than only
 * that the segment was not expected. */
static int32_t walk_pass(struct engine *g, const struct x12_seg *s);

static int32_t walk(struct engine *g, const struct x12_seg *s)
{
	int32_t nd = walk_pass(g, s);

	if (nd == -2) {
		g->loose = true;
		nd = walk_pass(g, s);
		g->loose = false;
	}
	return nd;
}

/* One search; -2 when nothing matched (nothing reported yet). */
static int32_t walk_pass(struct engine *g, const struct x12_seg *s)
{
	const struct x12_node *m = g->m->nodes;
	uint32_t sid;

	memcpy(&sid, s->id, 4);

	for (int k = g->depth - 1; k >= 0; k--) {
		struct lvl *l = &g->lv[k];
		const struct x12_node *loop = &m[l->node];
		unsigned from = l->last >= 0 ? m[l->last].pos : 0;
		const uint32_t *ids = x12_kid_ids + loop->kids;
		uint32_t n = loop->nkids, first = l->last >= 0 ? m[l->last].ord : 0;

		/* children are (nearly) in position order: look from the last
		 * one matched to the end, then from the first up to it; the ids
		 * are a packed array, the nodes are looked at only on a hit */
		for (uint32_t j = 0; j < n; j++) {
			uint32_t o = first + j < n ? first + j : first + j - n;
			int32_t c;
			bool hit;

			if (ids[o] != sid)
				continue;
			c = x12_kids[loop->kids + o];

			/* HL loops nest by the hierarchy, and the maps number
			 * their positions afresh: position order does not apply */
			if (m[c].pos < from && !(m[c].kind != X12_N_SEG && m[c].seg[0] == 'H' &&
						 m[c].seg[1] == 'L' && !m[c].seg[2]))
				continue;
			if (m[c].kind == X12_N_SEG)
				hit = c != loop->child && seg_matches(g, m, c, s) &&
				      !(g->loose && m[c].repeat && l->seen[m[c].ord] >= m[c].repeat);
			else if (m[c].kind == X12_N_LOOP || m[c].kind == X12_N_WRAP)
				hit = loop_matches(g, m, c, s);
			else
				continue;
			if (!hit)
				continue;
			while (g->depth - 1 > k)
				close_level(g);
			if (m[c].kind == X12_N_SEG) {
				use_child(g, l, c, s);
				return c;
			}
			return enter(g, c, s);
		}
	}
	if (!g->loose)
		return -2;
	for (int k = g->depth - 1; k >= 0; k--)
		for (int32_t c = m[g->lv[k].node].child; c >= 0; c = m[c].next)
			if (m[c].kind == X12_N_SEG && seg_matches(g, m, c, s)) {
				ik3(g, s->id, g->pos, loop_id(g, g->depth - 1), "7");
				return -1;
			}
	if (!valid_id(s->id))
		ik3(g, s->id[0] ? s->id : "???", g->pos, loop_id(g, g->depth - 1), "1");
	else if (!id_in_map(g->m, s->id))
		ik3(g, s->id, g->pos, loop_id(g, g->depth - 1), "6");
	else
		ik3(g, s->id, g->pos, loop_id(g, g->depth - 1), "2");
	return -1;
}

/* An HL level closes: a child code of 1 needs children. */
static void pop_hl(struct engine *g)
{
	struct hl *h = &g->hls[--g->n_hls];

	if (h->hl04 == '1' && h->kids == 0) {
		struct ele_err x = { 4, 0, 0, "I12", "736", "HL04", NULL, 0 };

		if (g->in_st) {
			ack_seg(g, "IK3*HL*%llu*%.4s*8", (unsigned long long)h->pos, h->loop);
			ik4(g, &x);
			tx_error(g, "5");
		}
		diag(g, "HL", h->pos, h->loop, "HL04", "says children follow, none do");
	}
}

/* The HL rules the loop structure does not carry: HL01 counts 1, 2, 3...;
 * HL02 is an open level (the hierarchy is written depth first, so a parent
 * is always on the open chain); a child code of 0 has no children. */
static void check_hl(struct engine *g, const struct x12_seg *s, struct ele_ctx *c, const char *loop)
{
	char want[16];
	size_t n;
	const char *v;
	int k = g->n_hls;

	g->hl_count++;
	snprintf(want, sizeof(want), "%u", g->hl_count);
	if (!ele_is(s, 1, want)) {
		v = x12_ele(s, 1, &n);
		add_err(c, NULL, 1, 0, 0, "I12", v, n);
		c->err[c->n - 1].dele = "628";
		c->err[c->n - 1].what = "HL01";
	}
	v = x12_ele(s, 2, &n);
	if (n) {
		for (k = g->n_hls; k > 0; k--)
			if (strlen(g->hls[k - 1].id) == n && memcmp(g->hls[k - 1].id, v, n) == 0)
				break;
		if (k == 0 || g->hls[k - 1].hl04 == '0') {
			add_err(c, NULL, 2, 0, 0, "I12", v, n);
			c->err[c->n - 1].dele = "734";
			c->err[c->n - 1].what = "HL02";
			k = g->n_hls; /* keep the chain as it is */
		}
	} else {
		k = 0;
	}
	while (g->n_hls > k)
		pop_hl(g);
	if (k > 0)
		g->hls[k - 1].kids++;
	if (g->n_hls == MAX_HL)
		pop_hl(g);
	{
		struct hl *h = &g->hls[g->n_hls++];

		copy_ele(h->id, sizeof(h->id), s, 1);
		v = x12_ele(s, 4, &n);
		h->hl04 = n == 1 ? v[0] : 0;
		h->kids = 0;
		h->pos = g->pos;
		h->loop = loop;
	}
}

static void report_elements(struct engine *g, const struct x12_seg *s, const char *loop,
			    struct ele_ctx *c)
{
	if (c->n == 0)
		return;
	if (g->in_st) {
		ack_seg(g, "IK3*%s*%llu*%.4s*8", s->id, (unsigned long long)g->pos, loop);
		tx_error(g, "5");
	}
	for (int i = 0; i < c->n; i++) {
		char where[48];

		if (g->in_st)
			ik4(g, &c->err[i]);
		if (c->err[i].comp)
			snprintf(where, sizeof(where), "%s (element %u, component %u)",
				 c->err[i].what[0] ? c->err[i].what : "element", c->err[i].ele,
				 c->err[i].comp);
		else
			snprintf(where, sizeof(where), "%s (element %u)",
				 c->err[i].what[0] ? c->err[i].what : "element", c->err[i].ele);
		diag(g, s->id, g->pos, loop, where, ik4_text(c->err[i].code));
	}
}

/* A segment inside the transaction set. */
static void tx_segment(struct engine *g, const struct x12_seg *s)
{
	int32_t nd = -1;
	struct ele_ctx c;

	g->pos++;
	c.g = g;
	c.n = 0;
	if (g->m) {
		nd = walk(g, s);
		if (nd >= 0) {
			const char *loop = loop_id(g, g->depth - 1);

			if (!g->o->no_validate) {
				if (g->m->nodes[nd].usage == 'N')
					ik3(g, s->id, g->pos, loop, "I4");
				check_elements(&c, g->m->nodes, nd, s);
				if (memcmp(s->id, "HL", 3) == 0)
					check_hl(g, s, &c, loop);
				report_elements(g, s, loop, &c);
			}
		}
	}
	if (g->sink && g->sink->segment)
		g->sink->segment(g->sink->u, s, nd >= 0 ? &g->m->nodes[nd] : NULL, &g->d);
}

/* ---- envelopes ---- */

static const struct x12_map *find_map(const char *st01, const char *gs01, const char *gs08)
{
	for (size_t i = 0; i < x12_n_maps; i++) {
		const struct x12_map *mp = &x12_maps[i];
		size_t gl = strlen(mp->guide);

		if (strcmp(mp->st, st01) == 0 && strcmp(mp->fic, gs01) == 0 &&
		    strncmp(gs08, mp->guide, gl) == 0)
			return mp;
	}
	return NULL;
}

static int32_t control_seg(const char *id)
{
	for (uint32_t i = 0; i < x12_control.n_nodes; i++)
		if (x12_control.nodes[i].kind == X12_N_SEG && strcmp(x12_control.nodes[i].seg, id) == 0)
			return (int32_t)i;
	return -1;
}

/* TA105 for a bad ISA element. */
static const char *isa_ta1(unsigned ele)
{
	static const char *const codes[17] = { "024", "010", "011", "012", "013", "005",
					       "006", "007", "008", "014", "015", "022",
					       "017", "018", "019", "020", "027" };
	return ele < 17 ? codes[ele] : "024";
}

static const struct x12_node *envelope_node(const char *id)
{
	int32_t nd = control_seg(id);

	return nd >= 0 ? &x12_control.nodes[nd] : NULL;
}

static void end_tx(struct engine *g, const struct x12_seg *se)
{
	char buf[16];

	if (g->m) {
		while (g->depth > 0)
			close_level(g);
		while (g->n_hls > 0)
			pop_hl(g);
	} else {
		tx_error(g, "1");
		diag(g, NULL, 0, NULL, NULL, "transaction set not supported (no guide for it)");
	}
	if (!se) {
		tx_error(g, "2");
		diag(g, NULL, 0, NULL, NULL, "transaction set trailer (SE) missing");
	} else {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)g->pos);
		if (!ele_is(se, 1, buf)) {
			tx_error(g, "4");
			diag(g, "SE", g->pos, NULL, "SE01",
			     "number of included segments does not match the actual count");
		}
		if (!ele_is(se, 2, g->st02)) {
			tx_error(g, "3");
			diag(g, "SE", g->pos, NULL, "SE02",
			     "control number does not match the ST's");
		}
	}
	if (g->n_ik5 == 0) {
		ack_seg(g, "IK5*A");
		g->n_tx_acc++;
		g->st->accepted++;
	} else {
		struct buf line = BUF_INIT(256);

		buf_addstr(&line, "IK5*R");
		for (int i = 0; i < g->n_ik5; i++)
			buf_addf(&line, "*%s", g->ik5[i]);
		ack_seg(g, "%s", buf_cstr(&line));
		buf_release(&line);
		g->st->rejected++;
	}
	if (g->sink && g->sink->close)
		g->sink->close(g->sink->u, X12_L_TRANSACTION);
	g->in_st = false;
	g->m = NULL;
}

static void start_tx(struct engine *g, const struct x12_seg *s)
{
	g->in_st = true;
	g->n_tx++;
	g->st->transactions++;
	g->pos = 1;
	g->n_ik5 = 0;
	g->tx_bad = false;
	g->hl_count = 0;
	g->n_hls = 0;
	g->depth = 0;
	copy_ele(g->st01, sizeof(g->st01), s, 1);
	copy_ele(g->st02, sizeof(g->st02), s, 2);
	copy_ele(g->st03, sizeof(g->st03), s, 3);
	g->m = find_map(g->st01, g->gs01, g->st03[0] ? g->st03 : g->gs08);
	if (g->st03[0])
		ack_seg(g, "AK2*%s*%s*%s", g->st01, g->st02, g->st03);
	else
		ack_seg(g, "AK2*%s*%s", g->st01, g->st02);
	if (g->sink && g->sink->open)
		g->sink->open(g->sink->u, X12_L_TRANSACTION, g->st02, strlen(g->st02),
			      g->m ? g->m->name : "", NULL, g->st03[0] ? g->st03 : g->gs08);
	if (g->m) {
		size_t need = (size_t)MAX_DEPTH * g->m->max_kids;

		if (need > g->pool_kids * MAX_DEPTH) {
			uint16_t *p = realloc(g->pool, need * sizeof(*p));

			if (!p) {
				g->m = NULL;
				return;
			}
			g->pool = p;
		}
		g->pool_kids = g->m->max_kids;
		push_level(g, 0);
		use_child(g, &g->lv[0], g->m->nodes[0].child, s);
		if (!g->o->no_validate) {
			struct ele_ctx c = { .g = g, .n = 0 };

			check_elements(&c, g->m->nodes, g->m->nodes[0].child, s);
			/* the guide's addenda (A1, A2, A3) share one map */
			if (c.n && c.err[c.n - 1].ele == 3 && strcmp(c.err[c.n - 1].code, "7") == 0 &&
			    strncmp(g->st03, g->m->guide, strlen(g->m->guide)) == 0)
				c.n--;
			report_elements(g, s, "", &c);
		}
	}
	if (g->sink && g->sink->segment)
		g->sink->segment(g->sink->u, s, g->m ? &g->m->nodes[g->m->nodes[0].child] : NULL, &g->d);
}

static void start_group(struct engine *g, const struct x12_seg *s)
{
	g->in_gs = true;
	g->n_groups++;
	g->st->groups++;
	g->n_tx = g->n_tx_acc = 0;
	g->n_ak9 = 0;
	copy_ele(g->gs01, sizeof(g->gs01), s, 1);
	copy_ele(g->gs06, sizeof(g->gs06), s, 6);
	copy_ele(g->gs08, sizeof(g->gs08), s, 8);
	if (g->n_groups == 1) {
		copy_ele(g->ack_from, sizeof(g->ack_from), s, 3);
		copy_ele(g->ack_to, sizeof(g->ack_to), s, 2);
		if (!plain(g->ack_from, strlen(g->ack_from)))
			g->ack_from[0] = 0;
		if (!plain(g->ack_to, strlen(g->ack_to)))
			g->ack_to[0] = 0;
	}
	buf_reset(&g->tx999);
	g->tx999_segs = 0;
	g->n_999++;
	buf_addf(&g->tx999, "ST*999*%04u*005010X231A1~\n", g->n_999);
	g->tx999_segs = 1;
	ack_seg(g, "AK1*%s*%s*%s", g->gs01, g->gs06, g->gs08);
	if (strncmp(g->gs08, "005010", 6) != 0) {
		group_error(g, "2");
		diag(g, "GS", 0, NULL, "GS08", "functional group version not supported");
	}
	if (g->sink && g->sink->open)
		g->sink->open(g->sink->u, X12_L_GROUP, g->gs06, strlen(g->gs06), "", NULL, g->gs08);
}

static void end_group(struct engine *g, const struct x12_seg *ge)
{
	char want[16];
	char code;

	if (g->in_st)
		end_tx(g, NULL);
	if (!ge) {
		group_error(g, "3");
		diag(g, NULL, 0, NULL, NULL, "functional group trailer (GE) missing");
	} else {
		snprintf(want, sizeof(want), "%u", g->n_tx);
		if (!ele_is(ge, 1, want)) {
			group_error(g, "5");
			diag(g, "GE", 0, NULL, "GE01",
			     "number of included transaction sets does not match the actual count");
		}
		if (!ele_is(ge, 2, g->gs06)) {
			group_error(g, "4");
			diag(g, "GE", 0, NULL, "GE02", "control number does not match the GS's");
		}
	}
	if (g->n_ak9 > 0 || g->n_tx_acc == 0)
		code = 'R';
	else if (g->n_tx_acc < g->n_tx)
		code = 'P';
	else
		code = 'A';
	if (code != 'A')
		g->st->groups_rejected++;
	{
		struct buf line = BUF_INIT(256);

		buf_addf(&line, "AK9*%c*%u*%u*%u", code, g->n_tx, g->n_tx, g->n_tx_acc);
		for (int i = 0; i < g->n_ak9; i++)
			buf_addf(&line, "*%s", g->ak9[i]);
		ack_seg(g, "%s", buf_cstr(&line));
		buf_release(&line);
	}
	buf_addf(&g->tx999, "SE*%u*%04u~\n", g->tx999_segs + 1, g->n_999);
	buf_add(&g->body, g->tx999.data, g->tx999.len);
	if (g->sink && g->sink->close)
		g->sink->close(g->sink->u, X12_L_GROUP);
	g->in_gs = false;
}

static void check_envelope_seg(struct engine *g, const struct x12_seg *s, const char *id)
{
	int32_t nd = control_seg(id);
	struct ele_ctx c = { .g = g, .n = 0 };

	if (nd < 0 || g->o->no_validate)
		return;
	check_elements(&c, x12_control.nodes, nd, s);
	for (int i = 0; i < c.n; i++) {
		char what[96];
		bool isa = strcmp(id, "ISA") == 0;

		/* ISA11 and ISA16 hold delimiters themselves; GS08 is checked
		 * against the guides chartkeep has (AK905 2, IK502 1), not the
		 * map's short list */
		if (isa && (c.err[i].ele == 11 || c.err[i].ele == 16))
			continue;
		if (!isa && strcmp(id, "GS") == 0 && c.err[i].ele == 8 && strcmp(c.err[i].code, "7") == 0)
			continue;

		snprintf(what, sizeof(what), "%s (element %u): %s", c.err[i].what, c.err[i].ele,
			 ik4_text(c.err[i].code));
		if (isa)
			ta1_error(g, isa_ta1(c.err[i].ele), 'R', what);
		else
			ta1_error(g, "024", 'R', what);
	}
}

static void start_interchange(struct engine *g, const struct x12_reader *r, const struct x12_seg *s)
{
	memcpy(g->isa, r->isa, sizeof(g->isa));
	g->d = r->d;
	g->in_isa = true;
	g->n_groups = 0;
	g->st->interchanges++;
	copy_ele(g->isa13, sizeof(g->isa13), s, 13);
	ack_begin(g);
	check_envelope_seg(g, s, "ISA");
	if (g->sink && g->sink->open)
		g->sink->open(g->sink->u, X12_L_INTERCHANGE, g->isa13, strlen(g->isa13), "", &g->d,
			      NULL);
}

static void end_interchange(struct engine *g, const struct x12_seg *iea)
{
	char want[16];

	if (g->in_gs) {
		diag(g, NULL, 0, NULL, NULL, "functional group trailer (GE) missing");
		end_group(g, NULL);
	}
	if (iea) {
		check_envelope_seg(g, iea, "IEA");
		snprintf(want, sizeof(want), "%u", g->n_groups);
		if (!ele_is(iea, 1, want))
			ta1_error(g, "021", 'R', "IEA01: number of included groups does not match");
		if (!ele_is(iea, 2, g->isa13))
			ta1_error(g, "001", 'R', "IEA02: control number does not match the ISA's");
	}
	if (g->sink && g->sink->close)
		g->sink->close(g->sink->u, X12_L_INTERCHANGE);
	g->in_isa = false;
}

static void set_now(struct engine *g)
{
	const char *now = g->o->now;
	char tmp[16];

	if (!now || strlen(now) != 12) {
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(tmp, sizeof(tmp), "%Y%m%d%H%M", &tm);
		now = tmp;
	}
	copy_span(g->date8, sizeof(g->date8), now, 8);
	copy_span(g->time4, sizeof(g->time4), now + 8, 4);
}

int x12_process(struct x12_reader *r, const struct x12_sink *sink, const struct x12_opts *o,
		struct x12_stats *st, FILE *dg, struct err *e)
{
	struct engine *g = calloc(1, sizeof(*g));
	struct x12_seg *s = malloc(sizeof(*s));
	bool ta1_asked = false, pending = false; /* pending: an IEA's ack not written yet */
	int rc = -1, got;

	memset(st, 0, sizeof(*st));
	if (!g || !s) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	g->o = o;
	g->sink = sink;
	g->st = st;
	g->diag = dg;
	g->ack_control = o->ack_control ? o->ack_control : 1;
	buf_init(&g->ack, 0);
	buf_init(&g->body, 0);
	buf_init(&g->tx999, 0);
	set_now(g);
	g->dele_period = -2;
	for (size_t i = 0; i < x12_n_deles; i++)
		if (strcmp(x12_deles[i].num, "1251") == 0)
			g->dele_period = (int32_t)i;
	for (;;) {
		got = x12_reader_next(r, s, e);
		if (got <= 0)
			break;
		st->segments++;
		if (pending && memcmp(s->id, "ISA", 4) == 0) {
			ack_end(g, ta1_asked);
			pending = false;
		}
		if (memcmp(s->id, "ISA", 4) == 0 && !g->in_isa) {
			start_interchange(g, r, s);
			ta1_asked = ele_is(s, 14, "1");
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			continue;
		}
		if (memcmp(s->id, "IEA", 4) == 0) {
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			end_interchange(g, s);
			pending = true;
			continue;
		}
		if (memcmp(s->id, "GS", 3) == 0) {
			if (g->in_gs)
				end_group(g, NULL);
			check_envelope_seg(g, s, "GS");
			start_group(g, s);
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			continue;
		}
		if (memcmp(s->id, "GE", 3) == 0 && g->in_gs) {
			if (g->in_st)
				end_tx(g, NULL);
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			end_group(g, s);
			continue;
		}
		if (memcmp(s->id, "ST", 3) == 0 && g->in_gs) {
			if (g->in_st)
				end_tx(g, NULL);
			start_tx(g, s);
			continue;
		}
		if (memcmp(s->id, "TA1", 4) == 0 && !g->in_gs) {
			/* an acknowledgement of an interchange: its place */
			check_envelope_seg(g, s, "TA1");
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			continue;
		}
		if (!g->in_st) {
			ta1_error(g, "024", 'R', "a segment outside any transaction set");
			if (g->sink && g->sink->segment)
				g->sink->segment(g->sink->u, s, envelope_node(s->id), &g->d);
			continue;
		}
		tx_segment(g, s);
		if (memcmp(s->id, "SE", 3) == 0)
			end_tx(g, s);
	}
	st->bytes = r->bytes;
	if (got < 0) {
		char code[8];

		/* not X12 at all, or unreadable: nothing to acknowledge */
		if (r->ta1 == 0 || e->code == ERR_IO)
			goto out;
		snprintf(code, sizeof(code), "%03d", r->ta1);
		if (g->in_isa) {
			/* the interchange is cut short: rejected */
			if (g->in_gs)
				end_group(g, NULL);
			end_interchange(g, NULL);
			ta1_error(g, r->ta1 == X12_TA1_EOF ? "023" : "022", 'R', e->msg);
			ack_end(g, true);
		} else if (r->bad_isa) {
			/* a bad ISA: rejected, with what its fixed fields say */
			if (pending)
				ack_end(g, ta1_asked);
			memcpy(g->isa, r->isa, sizeof(g->isa));
			ack_begin(g);
			isa_field(g, 13, g->isa13, sizeof(g->isa13));
			g->st->interchanges++;
			ta1_error(g, r->ta1 == X12_TA1_EOF ? "023" : code, 'R', e->msg);
			ack_end(g, true);
		} else if (pending) {
			/* garbage after an IEA: the interchange stands, noted */
			ta1_error(g, "022", 'E', e->msg);
			ack_end(g, true);
		}
		pending = false;
		err_clear(e);
	}
	if (pending)
		ack_end(g, ta1_asked);
	rc = 0;
out:
	if (g) {
		buf_release(&g->ack);
		buf_release(&g->body);
		buf_release(&g->tx999);
		free(g->pool);
	}
	free(g);
	free(s);
	return rc;
}
