/* parse.c - the code-set file formats, one parser each (coding_parse).
 *
 * Every parser checks every line and stops at the first that is wrong,
 * saying which ("line N: ..."); nothing it parsed is kept then.  Text is
 * made valid UTF-8 on the way in: CMS files are ASCII with the odd Latin-1
 * byte (a no-break space in the HCPCS disclaimer), which is read as
 * Latin-1.  Parents come from the files' order: in the ICD order files a
 * code follows the codes that enclose it, so a stack of the codes seen on
 * the way down gives each one its nearest enclosing code. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "coding/coding_int.h"
#include "base/banned.h"

#define LINE_MAX_BYTES 4096

void coding_set_init(struct coding_set *cs)
{
	memset(cs, 0, sizeof(*cs));
	arena_init(&cs->arena, 0);
}

void coding_set_release(struct coding_set *cs)
{
	free(cs->c);
	free(cs->line);
	free(cs->ed);
	arena_release(&cs->arena);
	memset(cs, 0, sizeof(*cs));
}

/* ---- lines and fields ---- */

struct lines {
	const char *p, *end;
	size_t no;
};

static bool next_line(struct lines *l, const char **s, size_t *n)
{
	const char *nl;

	if (l->p >= l->end)
		return false;
	nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	*s = l->p;
	*n = nl ? (size_t)(nl - l->p) : (size_t)(l->end - l->p);
	l->p = nl ? nl + 1 : l->end;
	if (*n && (*s)[*n - 1] == '\r')
		(*n)--;
	l->no++;
	return true;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* Split s[0..n) at sep into at most max fields (quotes honoured when
 * quoted: CSV, "" for a quote).  Returns the number of fields, or -1 for an
 * unterminated quote.  Quoted fields are copied into the arena. */
struct field {
	const char *s;
	size_t n;
};

static int split(struct coding_set *cs, const char *s, size_t n, char sep, bool quoted,
		 struct field *f, int max)
{
	int k = 0;
	size_t i = 0;

	for (;;) {
		if (k == max)
			return k + 1; /* too many: the caller says so */
		if (quoted && i < n && s[i] == '"') {
			char *o = arena_alloc(&cs->arena, n - i + 1);
			size_t on = 0;
			i++;
			if (!o)
				return -1;
			for (;;) {
				if (i >= n)
					return -1;
				if (s[i] == '"') {
					if (i + 1 < n && s[i + 1] == '"') {
						o[on++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				o[on++] = s[i++];
			}
			o[on] = '\0';
			f[k].s = o;
			f[k].n = on;
			k++;
			if (i == n)
				return k;
			if (s[i] != sep)
				return -1;
			i++;
			continue;
		}
		{
			const char *q = memchr(s + i, sep, n - i);
			size_t end = q ? (size_t)(q - s) : n;
			f[k].s = s + i;
			f[k].n = end - i;
			k++;
			if (!q)
				return k;
			i = end + 1;
		}
	}
}

static bool field_is(const struct field *f, const char *s)
{
	return f->n == strlen(s) && memcmp(f->s, s, f->n) == 0;
}

/* A UTF-8 sequence at s[0..n): its length, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

/* s[0..n) trimmed, as valid UTF-8 (stray bytes read as Latin-1), control
 * characters as spaces, runs of spaces as one; in the arena. */
static const char *text(struct coding_set *cs, const char *s, size_t n)
{
	char *o;
	size_t k = 0;
	bool space = false;

	while (n && (isspace((unsigned char)*s) || (unsigned char)*s == 0xa0))
		s++, n--;
	while (n && (isspace((unsigned char)s[n - 1]) || (unsigned char)s[n - 1] == 0xa0))
		n--;
	o = arena_alloc(&cs->arena, 2 * n + 1);
	if (!o)
		return NULL;
	for (size_t i = 0; i < n;) {
		const unsigned char *u = (const unsigned char *)s + i;
		size_t l = utf8_len(u, n - i);
		if (u[0] < 0x20 || u[0] == 0x7f || u[0] == 0xa0) {
			if (!space)
				o[k++] = ' ';
			space = true;
			i++;
			continue;
		}
		if (u[0] == ' ') {
			if (!space)
				o[k++] = ' ';
			space = true;
			i++;
			continue;
		}
		space = false;
		if (l == 0) { /* Latin-1 */
			o[k++] = (char)(0xc0 | (u[0] >> 6));
			o[k++] = (char)(0x80 | (u[0] & 0x3f));
			i++;
			continue;
		}
		memcpy(o + k, u, l);
		k += l;
		i += l;
	}
	o[k] = '\0';
	return o;
}

/* ---- codes ---- */

static bool code_ok(const struct coding_system *sys, const char *c, size_t n)
{
	const char *name = sys->name;

	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)c[i]) && !isupper((unsigned char)c[i]))
			return false;
	if (strcmp(name, "icd10cm") == 0 || strcmp(name, "poa-exempt") == 0)
		return n >= 3 && n <= 7 && isupper((unsigned char)c[0]) && isdigit((unsigned char)c[1]);
	if (strcmp(name, "icd10pcs") == 0) {
		if (n < 1 || n > 7)
			return false;
		for (size_t i = 0; i < n; i++)
			if (c[i] == 'I' || c[i] == 'O')
				return false;
		return true;
	}
	if (strcmp(name, "hcpcs") == 0)
		return n == 5 && c[0] >= 'A' && c[0] <= 'V' && isdigit((unsigned char)c[1]) &&
		       isdigit((unsigned char)c[2]) && isdigit((unsigned char)c[3]) &&
		       isdigit((unsigned char)c[4]);
	if (strcmp(name, "cpt") == 0)
		return n == 5 && isdigit((unsigned char)c[0]) && isdigit((unsigned char)c[1]) &&
		       isdigit((unsigned char)c[2]) && isdigit((unsigned char)c[3]) &&
		       (isdigit((unsigned char)c[4]) || c[4] == 'F' || c[4] == 'T' || c[4] == 'U');
	if (strcmp(name, "pos") == 0)
		return n == 2 && isdigit((unsigned char)c[0]) && isdigit((unsigned char)c[1]);
	return n >= 1 && n < STORE_CODE_MAX;
}

/* The code in s[0..n), trimmed, dot removed for ICD-10-CM, upper case; in
 * the arena.  NULL (with e) if it is not one of sys's codes. */
static const char *code_of(struct coding_set *cs, const struct coding_system *sys, const char *s,
			   size_t n, size_t line, struct err *e)
{
	char norm[STORE_CODE_MAX];
	struct err ne = ERR_INIT;
	char *o;

	if (coding_code_norm(sys, s, n, norm, &ne) < 0 || !code_ok(sys, norm, strlen(norm))) {
		err_set(e, ERR_INVALID, "line %zu: not a well-formed %s code", line, sys->title);
		return NULL;
	}
	o = arena_strdup(&cs->arena, norm);
	if (!o)
		err_set(e, ERR_NOMEM, "out of memory");
	return o;
}

struct parents {
	const char *stack[8];
	size_t n;
};

/* The nearest code on the stack that code starts with; code goes on top. */
static const char *parent_of(struct parents *p, const char *code)
{
	const char *parent;

	while (p->n) {
		const char *top = p->stack[p->n - 1];
		size_t tn = strlen(top);
		if (tn < strlen(code) && strncmp(top, code, tn) == 0)
			break;
		p->n--;
	}
	parent = p->n ? p->stack[p->n - 1] : "";
	if (p->n == ARRAY_SIZE(p->stack))
		memmove(p->stack, p->stack + 1, sizeof(p->stack[0]) * (p->n-- - 1));
	p->stack[p->n++] = code;
	return parent;
}

static struct store_concept *concept_new(struct coding_set *cs, struct err *e)
{
	if (cs->n == cs->cap) {
		size_t ncap = cs->cap ? cs->cap * 2 : 1024;
		struct store_concept *c = realloc(cs->c, ncap * sizeof(*c));
		uint32_t *ln;
		if (c)
			cs->c = c;
		ln = c ? realloc(cs->line, ncap * sizeof(*ln)) : NULL;
		if (!ln) {
			err_set(e, ERR_NOMEM, "out of memory");
			return NULL;
		}
		cs->line = ln;
		cs->cap = ncap;
	}
	memset(&cs->c[cs->n], 0, sizeof(cs->c[0]));
	return &cs->c[cs->n++];
}

static int edit_add(struct coding_set *cs, const char *kind, char type, const char *code,
		    struct err *e)
{
	if (cs->m == cs->mcap) {
		size_t ncap = cs->mcap ? cs->mcap * 2 : 1024;
		struct store_code_edit *d = realloc(cs->ed, ncap * sizeof(*d));
		if (!d)
			return err_set(e, ERR_NOMEM, "out of memory");
		cs->ed = d;
		cs->mcap = ncap;
	}
	cs->ed[cs->m].kind = kind;
	cs->ed[cs->m].code_type = type;
	cs->ed[cs->m].code = code;
	cs->m++;
	return 0;
}

static int add(struct coding_set *cs, const char *code, bool billable, const char *display,
	       const char *short_desc, const char *parent, size_t line, struct err *e)
{
	struct store_concept *c;

	if (!display || !short_desc || cs->arena.failed)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (!*display)
		return err_set(e, ERR_INVALID, "line %zu: code %s has no description", line, code);
	c = concept_new(cs, e);
	if (!c)
		return -1;
	c->code = code;
	c->billable = billable;
	c->display = display;
	c->short_desc = short_desc;
	c->parent = parent ? parent : "";
	cs->line[cs->n - 1] = (uint32_t)line;
	cs->billable += billable;
	return 0;
}

static int cmp_code(const void *a, const void *b, void *arg)
{
	const struct store_concept *c = arg;

	return strcmp(c[*(const size_t *)a].code, c[*(const size_t *)b].code);
}

/* No code twice: the later line is named, with the earlier one. */
static int dup_check(struct coding_set *cs, struct err *e)
{
	size_t *ix;
	int rc = 0;

	if (cs->n < 2)
		return 0;
	ix = malloc(cs->n * sizeof(*ix));
	if (!ix)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < cs->n; i++)
		ix[i] = i;
	qsort_r(ix, cs->n, sizeof(*ix), cmp_code, cs->c);
	for (size_t i = 1; i < cs->n; i++)
		if (strcmp(cs->c[ix[i - 1]].code, cs->c[ix[i]].code) == 0) {
			uint32_t a = cs->line[ix[i - 1]], b = cs->line[ix[i]];
			rc = err_set(e, ERR_INVALID, "line %u: code %s is already on line %u", a > b ? a : b,
				     cs->c[ix[i]].code, a > b ? b : a);
			break;
		}
	free(ix);
	return rc;
}

/* ---- ICD-10-CM / ICD-10-PCS order files ----
 *
 * 00001 A00     0 Cholera                                                      Cholera
 * cols: order 1-5, code 7-13, header/valid flag 15, short 17-76, long 78-. */
static int parse_icd_order(const struct coding_system *sys, struct lines *l, struct coding_set *cs,
			   struct err *e)
{
	struct parents par = { { NULL }, 0 };
	const char *s;
	size_t n;

	cs->format = "order";
	while (next_line(l, &s, &n)) {
		const char *code;
		size_t cn = 7;

		if (blank(s, n))
			continue;
		if (n < 78 || n > LINE_MAX_BYTES)
			return err_set(e, ERR_INVALID, "line %zu: %s; an order-file line is at least 78 characters "
				       "(order, code, flag, short and long description)", l->no,
				       n < 78 ? "too short" : "too long");
		for (size_t i = 0; i < 5; i++)
			if (!isdigit((unsigned char)s[i]))
				return err_set(e, ERR_INVALID, "line %zu: columns 1-5 must be the order number", l->no);
		if (s[5] != ' ' || s[13] != ' ' || s[15] != ' ' || s[76] != ' ')
			return err_set(e, ERR_INVALID, "line %zu: not the order-file layout (blanks expected in "
				       "columns 6, 14, 16 and 77)", l->no);
		if (s[14] != '0' && s[14] != '1')
			return err_set(e, ERR_INVALID, "line %zu: column 15 must be 0 (header) or 1 (valid code)",
				       l->no);
		while (cn && s[6 + cn - 1] == ' ')
			cn--;
		code = code_of(cs, sys, s + 6, cn, l->no, e);
		if (!code)
			return -1;
		if (strcmp(sys->name, "icd10pcs") == 0 && (s[14] == '1') != (strlen(code) == 7))
			return err_set(e, ERR_INVALID, "line %zu: an ICD-10-PCS code is valid (1) exactly when it "
				       "has 7 characters", l->no);
		if (add(cs, code, s[14] == '1', text(cs, s + 77, n - 77), text(cs, s + 16, 60),
			parent_of(&par, code), l->no, e) < 0)
			return -1;
	}
	return dup_check(cs, e);
}

/* ---- the TSVs (icd.data conversions) ----
 *
 * ICD-10-CM: code billable short_desc long_desc three_digit major sub_chapter chapter
 * ICD-10-PCS: order code billable short_desc long_desc */
static int parse_icd_tsv(const struct coding_system *sys, struct lines *l, const char *hs, size_t hn,
			 struct coding_set *cs, struct err *e)
{
	struct parents par = { { NULL }, 0 };
	struct field f[12];
	int nf, off, want;
	const char *s;
	size_t n;

	cs->format = "tsv";
	nf = split(cs, hs, hn, '\t', false, f, 12);
	off = nf >= 1 && field_is(&f[0], "order") ? 1 : 0;
	if (nf < off + 4 || !field_is(&f[off], "code") || !field_is(&f[off + 1], "billable") ||
	    !field_is(&f[off + 2], "short_desc") || !field_is(&f[off + 3], "long_desc"))
		return err_set(e, ERR_INVALID, "line 1: the header must be [order,] code, billable, "
			       "short_desc, long_desc (tab-separated)");
	want = nf;
	while (next_line(l, &s, &n)) {
		const char *code;

		if (n == 0)
			continue;
		if (n > LINE_MAX_BYTES)
			return err_set(e, ERR_INVALID, "line %zu: too long", l->no);
		nf = split(cs, s, n, '\t', false, f, 12);
		if (nf != want)
			return err_set(e, ERR_INVALID, "line %zu: %d fields, the header has %d", l->no, nf, want);
		if (f[off + 1].n != 1 || (f[off + 1].s[0] != '0' && f[off + 1].s[0] != '1'))
			return err_set(e, ERR_INVALID, "line %zu: billable must be 0 or 1", l->no);
		code = code_of(cs, sys, f[off].s, f[off].n, l->no, e);
		if (!code)
			return -1;
		if (add(cs, code, f[off + 1].s[0] == '1', text(cs, f[off + 3].s, f[off + 3].n),
			text(cs, f[off + 2].s, f[off + 2].n), parent_of(&par, code), l->no, e) < 0)
			return -1;
	}
	return dup_check(cs, e);
}

/* ---- HCPCS Level II (HCPCS2019_recordlayout.txt) ----
 *
 * 320-byte records: code 1-5 (a modifier: blanks and 2 characters), sequence
 * 6-10, record id 11 (3 first line of a code, 4 its continuation, 7/8 the
 * same for a modifier), long description 12-91, short 92-119, added date
 * 269-276, action effective 277-284, termination 285-292.  The file opens
 * with disclaimer lines.  Modifiers (AA, LT, 59-type Level II ones; the CPT
 * numeric modifiers are the AMA's and not in the file) are kept as concepts
 * of the same version: FHIR codes them in the HCPCS system too
 * (Claim.item.modifier), and their 2-character form cannot be mistaken for
 * a 5-character code. */
static bool hcpcs_modifier_ok(const char *s)
{
	return s[0] == ' ' && s[1] == ' ' && s[2] == ' ' &&
	       (isdigit((unsigned char)s[3]) || isupper((unsigned char)s[3])) &&
	       (isdigit((unsigned char)s[4]) || isupper((unsigned char)s[4]));
}

static bool hcpcs_record(const char *s, size_t n)
{
	if (n < 11)
		return false;
	for (size_t i = 5; i < 10; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return s[10] == '3' || s[10] == '4' || s[10] == '7' || s[10] == '8';
}

static int hcpcs_date(const char *s, size_t n, size_t at, size_t line, const char *what, int32_t *out,
		      struct err *e)
{
	int32_t v = 0;

	*out = 0;
	if (n < at + 8 || blank(s + at, 8))
		return 0;
	for (size_t i = 0; i < 8; i++) {
		if (!isdigit((unsigned char)s[at + i]))
			return err_set(e, ERR_INVALID, "line %zu: the %s date (columns %zu-%zu) must be YYYYMMDD",
				       line, what, at + 1, at + 8);
		v = v * 10 + (s[at + i] - '0');
	}
	if (v / 10000 < 1900 || v % 10000 / 100 < 1 || v % 10000 / 100 > 12 || v % 100 < 1 || v % 100 > 31)
		return err_set(e, ERR_INVALID, "line %zu: the %s date (columns %zu-%zu) is not a date", line,
			       what, at + 1, at + 8);
	*out = v;
	return 0;
}

static int parse_hcpcs(const struct coding_system *sys, struct lines *l, struct coding_set *cs,
		       struct err *e)
{
	struct buf longd = BUF_INIT(0), shortd = BUF_INIT(0);
	struct store_concept *cur = NULL;
	bool started = false;
	char field[6] = "";   /* the current code's columns 1-5, as in the file */
	char first = 0;       /* its first record's id: '3' or '7' */
	const char *s;
	size_t n, lastseq = 0;
	int rc = -1;

	cs->format = "hcpcs";
	while (next_line(l, &s, &n)) {
		size_t seq;

		if (n > LINE_MAX_BYTES) {
			err_set(e, ERR_INVALID, "line %zu: too long", l->no);
			goto out;
		}
		if (!hcpcs_record(s, n)) {
			if (!started || blank(s, n)) {
				cs->skipped += !started;
				continue;
			}
			err_set(e, ERR_INVALID, "line %zu: not an HCPCS record (code, 5-digit sequence, "
				"record id 3, 4, 7 or 8)", l->no);
			goto out;
		}
		started = true;
		seq = (size_t)atol(arena_strndup(&cs->arena, s + 5, 5));
		if (n < 91) {
			err_set(e, ERR_INVALID, "line %zu: too short for the long description (columns 12-91)", l->no);
			goto out;
		}
		if (s[10] == '4' || s[10] == '8') {
			if (!cur || first != s[10] - 1 || memcmp(field, s, 5) != 0 || seq <= lastseq) {
				err_set(e, ERR_INVALID, "line %zu: a continuation record (%c) must follow its %s's "
					"first record (%c) with a higher sequence number", l->no, s[10],
					s[10] == '4' ? "code" : "modifier", s[10] - 1);
				goto out;
			}
			buf_addch(&longd, ' ');
			buf_add(&longd, s + 11, 80);
			if (n > 91) {
				buf_addch(&shortd, ' ');
				buf_add(&shortd, s + 91, n - 91 < 28 ? n - 91 : 28);
			}
			cur->display = text(cs, buf_cstr(&longd), longd.len);
			cur->short_desc = text(cs, buf_cstr(&shortd), shortd.len);
			lastseq = seq;
			continue;
		}
		if (n < 292) {
			err_set(e, ERR_INVALID, "line %zu: too short for a first record (320 bytes; the dates end "
				"at column 292)", l->no);
			goto out;
		}
		{
			const char *code;
			int32_t added, term;

			if (s[10] == '7') {
				if (!hcpcs_modifier_ok(s)) {
					err_set(e, ERR_INVALID, "line %zu: a modifier record (7) has its 2-character "
						"modifier in columns 4-5 and blanks in 1-3", l->no);
					goto out;
				}
				code = arena_strndup(&cs->arena, s + 3, 2);
				if (!code) {
					err_set(e, ERR_NOMEM, "out of memory");
					goto out;
				}
				cs->modifiers++;
			} else {
				code = code_of(cs, sys, s, 5, l->no, e);
				if (!code)
					goto out;
			}
			if (hcpcs_date(s, n, 268, l->no, "added", &added, e) < 0 ||
			    hcpcs_date(s, n, 284, l->no, "termination", &term, e) < 0)
				goto out;
			buf_reset(&longd);
			buf_reset(&shortd);
			buf_add(&longd, s + 11, 80);
			buf_add(&shortd, s + 91, 28);
			if (add(cs, code, true, text(cs, buf_cstr(&longd), longd.len),
				text(cs, buf_cstr(&shortd), shortd.len), "", l->no, e) < 0)
				goto out;
			cur = &cs->c[cs->n - 1];
			cur->terminated = term;
			cur->added = added;
			lastseq = seq;
			memcpy(field, s, 5);
			first = s[10];
		}
	}
	if (!started) {
		err_set(e, ERR_INVALID, "line %zu: no HCPCS records in the file", l->no);
		goto out;
	}
	if (dup_check(cs, e) < 0)
		goto out;
	rc = 0;
out:
	buf_release(&longd);
	buf_release(&shortd);
	return rc;
}

/* ---- CPT, from the site's licensed file ----
 *
 * CSV (RFC 4180 quoting): code, description[, short description]; a first
 * line whose first field is not a code is a header. */
static int parse_cpt(const struct coding_system *sys, struct lines *l, struct coding_set *cs,
		     struct err *e)
{
	struct field f[4];
	const char *s;
	size_t n;
	int nf;

	cs->format = "csv";
	while (next_line(l, &s, &n)) {
		const char *code;

		if (blank(s, n))
			continue;
		if (n > LINE_MAX_BYTES)
			return err_set(e, ERR_INVALID, "line %zu: too long", l->no);
		nf = split(cs, s, n, ',', true, f, 3);
		if (nf < 0)
			return err_set(e, ERR_INVALID, "line %zu: a quoted field is not closed", l->no);
		if (l->no == 1 && nf >= 1 && !(f[0].n == 5 && isdigit((unsigned char)f[0].s[0]))) {
			cs->skipped++;
			continue; /* the header */
		}
		if (nf < 2 || nf > 3)
			return err_set(e, ERR_INVALID, "line %zu: expected code,description[,short description]",
				       l->no);
		code = code_of(cs, sys, f[0].s, f[0].n, l->no, e);
		if (!code)
			return -1;
		if (add(cs, code, true, text(cs, f[1].s, f[1].n), nf == 3 ? text(cs, f[2].s, f[2].n) : "",
			"", l->no, e) < 0)
			return -1;
	}
	if (cs->n == 0)
		return err_set(e, ERR_INVALID, "line %zu: no CPT codes in the file", l->no);
	return dup_check(cs, e);
}

/* ---- CMS place of service: a FHIR CodeSystem (hl7.terminology) ---- */
static int parse_pos(const struct coding_system *sys, const char *data, size_t len,
		     struct coding_set *cs, struct err *e)
{
	json_object *root = json_parse_buf(data, len, 32, e), *concepts;
	int rc = -1;

	cs->format = "CodeSystem";
	if (!root)
		return -1;
	if (!json_is_str(json_get(root, "resourceType"), "CodeSystem")) {
		err_set(e, ERR_INVALID, "not a FHIR CodeSystem (resourceType)");
		goto out;
	}
	concepts = json_get_arr(root, "concept");
	if (!concepts || json_object_array_length(concepts) == 0) {
		err_set(e, ERR_INVALID, "CodeSystem.concept: no codes");
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(concepts); i++) {
		json_object *c = json_object_array_get_idx(concepts, i);
		const char *code = json_get_str(c, "code"), *disp = json_get_str(c, "display");
		const char *norm;

		if (!code || !disp) {
			err_set(e, ERR_INVALID, "CodeSystem.concept[%zu]: code and display are required", i);
			goto out;
		}
		norm = code_of(cs, sys, code, strlen(code), i + 1, e);
		if (!norm) {
			err_set(e, ERR_INVALID, "CodeSystem.concept[%zu]: not a place of service code (2 digits)", i);
			goto out;
		}
		if (add(cs, norm, true, text(cs, disp, strlen(disp)), "", "", i + 1, e) < 0)
			goto out;
	}
	if (dup_check(cs, e) < 0) {
		err_set(e, ERR_INVALID, "CodeSystem.concept: a code appears twice");
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* ---- Medicare Code Editor lists (MCE_Simple_Code_Edits) ---- */
static int parse_mce(const struct coding_system *sys, const char *version, struct lines *l,
		     const char *hs, size_t hn, struct coding_set *cs, struct err *e)
{
	static const char *const head[] = { "MCE_Version", "ICD_Version", "MCE_Section",
					    "MCE_Subsection", "MCE_Edit_Type", "ICD_Code_Type",
					    "ICD_Code", "ICD_Desc" };
	const struct coding_system *cm = coding_system_by_name("icd10cm");
	const struct coding_system *pcs = coding_system_by_name("icd10pcs");
	struct field f[10];
	const char *s;
	size_t n;
	int nf;

	(void)sys;
	cs->format = "mce";
	nf = split(cs, hs, hn, '\t', false, f, 10);
	for (int i = 0; i < 8; i++)
		if (nf != 8 || !field_is(&f[i], head[i]))
			return err_set(e, ERR_INVALID, "line 1: the header must be MCE_Version, ICD_Version, "
				       "MCE_Section, MCE_Subsection, MCE_Edit_Type, ICD_Code_Type, ICD_Code, "
				       "ICD_Desc (tab-separated)");
	while (next_line(l, &s, &n)) {
		const struct coding_edit_def *d;
		const char *code, *kind;
		char type;

		if (blank(s, n))
			continue;
		if (n > LINE_MAX_BYTES)
			return err_set(e, ERR_INVALID, "line %zu: too long", l->no);
		nf = split(cs, s, n, '\t', false, f, 10);
		if (nf != 8)
			return err_set(e, ERR_INVALID, "line %zu: %d fields, expected 8", l->no, nf);
		if (!field_is(&f[0], version))
			return err_set(e, ERR_INVALID, "line %zu: MCE version %.*s in a file loaded as version %s",
				       l->no, (int)(f[0].n < 8 ? f[0].n : 8), f[0].s, version);
		if (!field_is(&f[1], "10"))
			return err_set(e, ERR_INVALID, "line %zu: ICD_Version must be 10", l->no);
		d = coding_edit_def_find(f[4].s, f[4].n);
		if (!d || strcmp(d->kind, "POA_Exempt") == 0)
			return err_set(e, ERR_INVALID, "line %zu: unknown MCE edit type", l->no);
		if (f[5].n != 1 || (f[5].s[0] != 'D' && f[5].s[0] != 'P') ||
		    (d->code_type && d->code_type != f[5].s[0]))
			return err_set(e, ERR_INVALID, "line %zu: ICD_Code_Type must be %s for %s", l->no,
				       d->code_type == 'D' ? "D" : d->code_type == 'P' ? "P" : "D or P", d->kind);
		type = f[5].s[0];
		code = code_of(cs, type == 'D' ? cm : pcs, f[6].s, f[6].n, l->no, e);
		if (!code)
			return -1;
		kind = d->kind;
		if (edit_add(cs, kind, type, code, e) < 0)
			return -1;
	}
	if (cs->m == 0)
		return err_set(e, ERR_INVALID, "line %zu: no edits in the file", l->no);
	return 0;
}

/* ---- POA-exempt codes (POAexemptCodesYYYY.txt) ---- */
static int parse_poa(const struct coding_system *sys, struct lines *l, const char *hs, size_t hn,
		     struct coding_set *cs, struct err *e)
{
	struct field f[6];
	const char *s;
	size_t n;
	int nf;

	cs->format = "poa-exempt";
	nf = split(cs, hs, hn, '\t', false, f, 6);
	if (nf != 3 || !field_is(&f[1], "POAexemptCode"))
		return err_set(e, ERR_INVALID, "line 1: the header must be OrderYYYY, POAexemptCode, "
			       "Description (tab-separated)");
	while (next_line(l, &s, &n)) {
		const char *code;

		if (blank(s, n))
			continue;
		if (n > LINE_MAX_BYTES)
			return err_set(e, ERR_INVALID, "line %zu: too long", l->no);
		nf = split(cs, s, n, '\t', false, f, 6);
		if (nf != 3)
			return err_set(e, ERR_INVALID, "line %zu: %d fields, expected 3", l->no, nf);
		code = code_of(cs, sys, f[1].s, f[1].n, l->no, e);
		if (!code)
			return -1;
		if (edit_add(cs, "POA_Exempt", 'D', code, e) < 0)
			return -1;
	}
	if (cs->m == 0)
		return err_set(e, ERR_INVALID, "line %zu: no codes in the file", l->no);
	return 0;
}

int coding_parse(const struct coding_system *sys, const char *version, const char *data,
		 size_t len, struct coding_set *out, struct err *e)
{
	struct lines l = { data, data + len, 0 };
	const char *hs = "";
	size_t hn = 0;
	const char *name = sys->name;
	int rc;

	if (memchr(data, '\0', len))
		return err_set(e, ERR_INVALID, "a binary file, not a %s file", sys->title);
	if (strcmp(name, "pos") == 0) {
		rc = parse_pos(sys, data, len, out, e);
		goto out;
	}
	if (strcmp(name, "hcpcs") == 0) {
		rc = parse_hcpcs(sys, &l, out, e);
		goto out;
	}
	if (strcmp(name, "cpt") == 0) {
		rc = parse_cpt(sys, &l, out, e);
		goto out;
	}
	if (!next_line(&l, &hs, &hn)) {
		rc = err_set(e, ERR_INVALID, "the file is empty");
		goto out;
	}
	if (strcmp(name, "mce") == 0)
		rc = parse_mce(sys, version, &l, hs, hn, out, e);
	else if (strcmp(name, "poa-exempt") == 0)
		rc = parse_poa(sys, &l, hs, hn, out, e);
	else if (memchr(hs, '\t', hn))
		rc = parse_icd_tsv(sys, &l, hs, hn, out, e);
	else {
		l.p = data; /* the first line is a code */
		l.no = 0;
		rc = parse_icd_order(sys, &l, out, e);
	}
out:
	if (rc == 0 && out->arena.failed)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc == 0 && out->n == 0 && out->m == 0)
		rc = err_set(e, ERR_INVALID, "no codes in the file");
	return rc;
}
