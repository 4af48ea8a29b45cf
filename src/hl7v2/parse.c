/* parse.c - HL7 v2 messages: delimiters, segments, fields, the accessor,
 * escape sequences and character sets (see hl7v2.h).
 *
 * One pass over the text finds every segment and every field and records
 * them as spans (offset, length) in two arrays from the message's arena;
 * nothing is copied.  Repetitions, components and subcomponents are cut out
 * of a field's span when asked for: most of a message is never looked at
 * that closely, so splitting it all up front would be wasted work.
 *
 * Character sets: the delimiters and segment names are ASCII in every
 * character set HL7 allows for ER7, but some multi-byte sets (GB 18030,
 * Big5) use ASCII byte values inside characters.  So MSH-18 is read first
 * (MSH itself is ASCII), the whole message converted to UTF-8 if need be,
 * and only then split. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

/* ---- character sets ---- */

/* MSH-18 values (HL7 table 0211) and what iconv calls them.  NULL: already
 * UTF-8 (ASCII is a subset).  Not here (UNICODE UTF-16/32): their
 * delimiters are not single bytes, so ER7 cannot carry them. */
static const struct charset {
	const char *hl7;
	const char *iconv;
} charsets[] = {
	{ "ASCII", NULL },
	{ "ISO IR6", NULL },
	{ "UNICODE UTF-8", NULL },
	{ "UTF-8", NULL },               /* seen in the field, not in the table */
	{ "8859/1", "ISO-8859-1" },
	{ "ISO IR100", "ISO-8859-1" },
	{ "8859/2", "ISO-8859-2" },
	{ "ISO IR101", "ISO-8859-2" },
	{ "8859/3", "ISO-8859-3" },
	{ "ISO IR109", "ISO-8859-3" },
	{ "8859/4", "ISO-8859-4" },
	{ "ISO IR110", "ISO-8859-4" },
	{ "8859/5", "ISO-8859-5" },
	{ "ISO IR144", "ISO-8859-5" },
	{ "8859/6", "ISO-8859-6" },
	{ "ISO IR127", "ISO-8859-6" },
	{ "8859/7", "ISO-8859-7" },
	{ "ISO IR126", "ISO-8859-7" },
	{ "8859/8", "ISO-8859-8" },
	{ "ISO IR138", "ISO-8859-8" },
	{ "8859/9", "ISO-8859-9" },
	{ "ISO IR148", "ISO-8859-9" },
	{ "8859/15", "ISO-8859-15" },
	{ "ISO IR87", "ISO-2022-JP" },
	{ "ISO IR159", "ISO-2022-JP-2" },
	{ "ISO IR14", "ISO-2022-JP" },
	{ "GB 18030-2000", "GB18030" },
	{ "KS X 1001", "EUC-KR" },
	{ "BIG-5", "BIG5" },
	{ "CNS 11643-1992", "EUC-TW" },
	{ "WINDOWS-1252", "CP1252" },    /* not in the table; common all the same */
};

/* Is s[0..n) well-formed UTF-8 (RFC 3629)?  *bad: offset of the first bad byte. */
static bool utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			goto fail;
		}
		if (i + k >= n)
			goto fail;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				goto fail;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			goto fail;
		i += k + 1;
	}
	return true;
fail:
	if (bad)
		*bad = i;
	return false;
}

static bool has_high_bytes(const unsigned char *s, size_t n)
{
	size_t i = 0;
	uint64_t acc = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= s[i];
	return (acc & 0x8080808080808080ULL) != 0;
}

/* Latin-1 to UTF-8 (no iconv needed: every byte is its code point). */
static char *latin1_to_utf8(struct arena *a, const char *s, size_t n, size_t *out_len)
{
	char *o = arena_alloc(a, n * 2 + 1);
	size_t j = 0;

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			o[j++] = (char)c;
		} else {
			o[j++] = (char)(0xc0 | (c >> 6));
			o[j++] = (char)(0x80 | (c & 0x3f));
		}
	}
	*out_len = j;
	return o;
}

static char *iconv_to_utf8(struct arena *a, const char *from, const char *s, size_t n,
			   size_t *out_len, struct err *e)
{
	iconv_t cd = iconv_open("UTF-8", from);
	size_t cap = n * 4 + 16, inleft = n, outleft = cap;
	char *o = NULL, *in = (char *)s, *op;

	if (cd == (iconv_t)-1)
		return err_set(e, ERR_NOT_SUPPORTED, "MSH-18: character set '%s' cannot be converted here",
			       from),
		       NULL;
	o = arena_alloc(a, cap);
	if (!o) {
		err_set(e, ERR_NOMEM, "out of memory converting the character set");
		goto out;
	}
	op = o;
	if (iconv(cd, &in, &inleft, &op, &outleft) == (size_t)-1) {
		err_set(e, ERR_INVALID, "byte offset %zu is not valid in the character set MSH-18 names (%s)",
			(size_t)(in - s), from);
		o = NULL;
		goto out;
	}
	*out_len = cap - outleft;
out:
	iconv_close(cd);
	return o;
}

/* ---- the split ---- */

static bool seg_name_ok(const char *p)
{
	for (int i = 0; i < 3; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static bool delim_ok(char c)
{
	unsigned char u = (unsigned char)c;
	return u > 0x20 && u < 0x7f && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
					 (c >= '0' && c <= '9'));
}

static bool is_header_seg(const char *p)
{
	return memcmp(p, "MSH", 3) == 0 || memcmp(p, "FHS", 3) == 0 || memcmp(p, "BHS", 3) == 0;
}

/* Read the delimiters of the header segment at text[off]. */
static int read_delims(const char *t, size_t len, size_t off, struct hl7_delims *d, struct err *e)
{
	size_t i, n = 0;
	char enc[5] = { 0 };

	if (len - off < 4)
		return err_set(e, ERR_INVALID, "MSH is cut short before its field separator (byte offset %zu)",
			       off);
	d->field = t[off + 3];
	if (!delim_ok(d->field))
		return err_set(e, ERR_INVALID,
			       "MSH-1: the field separator must be a printable character other than a "
			       "letter or digit (byte offset %zu)", off + 3);
	for (i = off + 4; i < len && t[i] != d->field && t[i] != '\r' && t[i] != '\n'; i++) {
		if (n == 5)
			return err_set(e, ERR_INVALID, "MSH-2: more than 5 encoding characters (byte offset %zu)",
				       i);
		enc[n++] = t[i];
	}
	if (n < 4)
		return err_set(e, ERR_INVALID,
			       "MSH-2: the encoding characters must be 4 (or 5 from v2.7), found %zu "
			       "(byte offset %zu)", n, off + 4);
	for (size_t k = 0; k < n; k++) {
		if (!delim_ok(enc[k]))
			return err_set(e, ERR_INVALID,
				       "MSH-2: encoding character %zu is not a printable non-alphanumeric "
				       "character (byte offset %zu)", k + 1, off + 4 + k);
		if (enc[k] == d->field)
			return err_set(e, ERR_INVALID,
				       "MSH-2: encoding character %zu repeats the field separator (byte offset %zu)",
				       k + 1, off + 4 + k);
		for (size_t j = 0; j < k; j++)
			if (enc[j] == enc[k])
				return err_set(e, ERR_INVALID,
					       "MSH-2: encoding characters %zu and %zu are the same (byte offset %zu)",
					       j + 1, k + 1, off + 4 + k);
	}
	d->comp = enc[0];
	d->rep = enc[1];
	d->esc = enc[2];
	d->sub = enc[3];
	d->trunc = n == 5 ? enc[4] : 0;
	return 0;
}

/* Growable arrays in the arena (doubling; the old block stays in the arena
 * until it is reset, at most as much again). */
static void *grow(struct arena *a, void *old, size_t n, size_t *cap, size_t size)
{
	size_t nc = *cap ? *cap * 2 : 64;
	void *p = arena_alloc(a, nc * size);

	if (!p)
		return NULL;
	if (old)
		memcpy(p, old, n * size);
	*cap = nc;
	return p;
}

static char *span_dup(struct arena *a, const struct hl7_msg *m, struct hl7_span s)
{
	struct buf b = BUF_INIT(0);
	char *r;

	hl7_unescape(m, s, &b);
	r = arena_strndup(a, buf_cstr(&b), b.len);
	buf_release(&b);
	return r ? r : (char *)"";
}

/* Field f of MSH, component c (0: whole), as an arena string. */
static const char *msh_str(struct arena *a, const struct hl7_msg *m, size_t f, size_t c)
{
	struct hl7_span s = hl7_field(m, 0, f);

	s = hl7_piece(m, s, m->d.rep, 1);
	if (c)
		s = hl7_piece(m, s, m->d.comp, c);
	return span_dup(a, m, s);
}

/* Split t[off..len) into segments and fields. */
static int split(struct hl7_msg *m, struct arena *a, size_t base, struct err *e)
{
	const char *t = m->text;
	size_t len = m->len, cap_s = 0, cap_f = 0, p = 0;
	const char fs = m->d.field;

	while (p < len) {
		struct hl7_seg *sg;
		size_t i, nf_start = m->nfields;

		if (t[p] == '\r' || t[p] == '\n') {
			p++;
			continue;
		}
		if (m->nsegs == HL7_MAX_SEGMENTS)
			return err_set(e, ERR_TOO_LARGE, "more than %d segments", HL7_MAX_SEGMENTS);
		if (len - p < 3 || !seg_name_ok(t + p) || (len - p > 3 && t[p + 3] != fs &&
							     t[p + 3] != '\r' && t[p + 3] != '\n'))
			return err_set(e, ERR_INVALID,
				       "segment %zu: a segment must start with a 3-character name of capital "
				       "letters or digits followed by the field separator (byte offset %zu)",
				       m->nsegs + 1, base + p);
		if (m->nsegs == cap_s) {
			m->segs = grow(a, m->segs, m->nsegs, &cap_s, sizeof(*m->segs));
			if (!m->segs)
				return err_set(e, ERR_NOMEM, "out of memory parsing the message");
		}
		sg = &m->segs[m->nsegs];
		memcpy(sg->id, t + p, 3);
		sg->id[3] = '\0';
		sg->off = (uint32_t)p;
		sg->f0 = (uint32_t)m->nfields;
		/* field 0: the name; for header segments, field 1 is the separator
		 * itself and field 2 the encoding characters, up to the next one */
		if (m->nfields + 3 > cap_f) {
			m->fields = grow(a, m->fields, m->nfields, &cap_f, sizeof(*m->fields));
			if (!m->fields)
				return err_set(e, ERR_NOMEM, "out of memory parsing the message");
		}
		m->fields[m->nfields++] = (struct hl7_span){ (uint32_t)p, 3 };
		i = p + 3;
		if (i < len && t[i] == fs) {
			if (is_header_seg(t + p)) {
				if (t[p] == 'M' && m->nsegs > 0 && m->segs[0].id[0] == 'M')
					return err_set(e, ERR_INVALID,
						       "segment %zu: a second MSH in one message (byte offset %zu)",
						       m->nsegs + 1, base + p);
				m->fields[m->nfields++] = (struct hl7_span){ (uint32_t)i, 1 };
			}
			i++;
			for (;;) {
				size_t start = i;
				unsigned char c = 0;
				for (;;) {
					while (i < len && (c = (unsigned char)t[i]) != (unsigned char)fs && c >= 0x20)
						i++;
					if (i < len && c == '\t') {
						i++;
						continue;
					}
					break;
				}
				if (m->nfields == cap_f) {
					m->fields = grow(a, m->fields, m->nfields, &cap_f, sizeof(*m->fields));
					if (!m->fields)
						return err_set(e, ERR_NOMEM, "out of memory parsing the message");
				}
				if (m->nfields - nf_start >= HL7_MAX_FIELDS)
					return err_set(e, ERR_TOO_LARGE, "segment %zu (%s): more than %d fields",
						       m->nsegs + 1, sg->id, HL7_MAX_FIELDS);
				m->fields[m->nfields++] = (struct hl7_span){ (uint32_t)start, (uint32_t)(i - start) };
				if (i >= len || c == '\r' || c == '\n')
					break;
				if (c == (unsigned char)fs) {
					i++;
					continue;
				}
				return err_set(e, ERR_INVALID,
					       "segment %zu (%s), field %zu: control character 0x%02x (byte offset %zu)",
					       m->nsegs + 1, sg->id, m->nfields - nf_start - 1, c, base + i);
			}
		}
		sg->len = (uint32_t)(i - p);
		sg->nf = (uint32_t)(m->nfields - nf_start);
		m->nsegs++;
		p = i;
		if (p < len && t[p] == '\r')
			p++;
		if (p < len && t[p] == '\n')
			p++;
	}
	return 0;
}

/* MSH-18 read straight from the header line (ASCII in every character set). */
static void peek_charset(const char *t, size_t len, size_t off, char fs, char rep, char *out,
			 size_t cap)
{
	size_t i = off + 3, field = 1, start;

	out[0] = '\0';
	while (i < len && t[i] != '\r' && t[i] != '\n') {
		if (t[i] == fs) {
			field++;
			if (field == 18) {
				start = ++i;
				while (i < len && t[i] != fs && t[i] != rep && t[i] != '\r' && t[i] != '\n')
					i++;
				if (i - start < cap) {
					memcpy(out, t + start, i - start);
					out[i - start] = '\0';
				}
				return;
			}
		}
		i++;
	}
}

int hl7_parse(const char *text, size_t len, struct arena *a, struct hl7_msg *m, struct err *e)
{
	size_t off = 0, bad = 0;
	int rc;
	char cs[64];
	const struct charset *c = NULL;

	memset(m, 0, sizeof(*m));
	m->type = m->event = m->structure = m->control_id = m->processing_id = m->version = m->charset = "";
	if (len > UINT32_MAX)
		return err_set(e, ERR_TOO_LARGE, "a message must be smaller than 4 GB");
	/* a UTF-8 byte order mark (editors add one), blank lines, then a
	 * batch or file header, before the MSH */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		off = 3;
	for (;;) {
		while (off < len && (text[off] == '\r' || text[off] == '\n'))
			off++;
		if (len - off >= 4 && (memcmp(text + off, "FHS", 3) == 0 || memcmp(text + off, "BHS", 3) == 0)) {
			while (off < len && text[off] != '\r' && text[off] != '\n')
				off++;
			continue;
		}
		break;
	}
	if (len - off < 3 || memcmp(text + off, "MSH", 3) != 0)
		return err_set(e, ERR_INVALID, "the message does not start with an MSH segment (byte offset %zu)",
			       off);
	if (read_delims(text, len, off, &m->d, e) < 0)
		return -1;
	peek_charset(text, len, off, m->d.field, m->d.rep, cs, sizeof(cs));
	if (cs[0]) {
		for (size_t i = 0; i < ARRAY_SIZE(charsets); i++)
			if (strcasecmp(cs, charsets[i].hl7) == 0)
				c = &charsets[i];
		if (!c)
			return err_set(e, ERR_NOT_SUPPORTED, "MSH-18: unknown character set '%.40s'", cs);
	}
	m->text = text + off;
	m->len = len - off;
	if (has_high_bytes((const unsigned char *)m->text, m->len)) {
		size_t n = 0;
		char *conv = NULL;
		if (!c || !c->iconv) {
			if (utf8_valid((const unsigned char *)m->text, m->len, &bad))
				goto split;
			if (c && strcmp(c->hl7, "ASCII") != 0 && strcmp(c->hl7, "ISO IR6") != 0)
				return err_set(e, ERR_INVALID,
					       "MSH-18 says %s, but byte offset %zu is not valid UTF-8", c->hl7,
					       bad + off);
			/* no MSH-18 (or ASCII with bytes above 127): 8859/1, the most
			 * common undeclared set in practice */
			conv = latin1_to_utf8(a, m->text, m->len, &n);
		} else if (strcmp(c->iconv, "ISO-8859-1") == 0) {
			conv = latin1_to_utf8(a, m->text, m->len, &n);
		} else {
			conv = iconv_to_utf8(a, c->iconv, m->text, m->len, &n, e);
			if (!conv)
				return -1;
		}
		if (!conv)
			return err_set(e, ERR_NOMEM, "out of memory converting the character set");
		m->text = conv;
		m->len = n;
		m->converted = true;
	}
split:
	/* offsets in errors are in the input as given (in the converted text
	 * when it was converted) */
	rc = split(m, a, m->converted ? 0 : off, e);
	if (!m->nsegs)
		return rc < 0 ? -1 : err_set(e, ERR_INVALID, "the message has no segments");
	/* the header is read even when a later segment is malformed: the
	 * rejection (ACK) still names the message it rejects */
	m->type = msh_str(a, m, 9, 1);
	m->event = msh_str(a, m, 9, 2);
	m->structure = msh_str(a, m, 9, 3);
	m->control_id = msh_str(a, m, 10, 0);
	m->processing_id = msh_str(a, m, 11, 1);
	m->version = msh_str(a, m, 12, 1);
	m->charset = msh_str(a, m, 18, 0);
	if (rc < 0)
		return -1;
	if (a->failed)
		return err_set(e, ERR_NOMEM, "out of memory parsing the message");
	return 0;
}

int hl7_next_message(const char *t, size_t len, size_t *pos, struct hl7_span *span)
{
	size_t p = *pos, start = 0;
	bool in = false;

	if (p == 0 && len >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0)
		p = 3;

	while (p < len) {
		size_t ls = p, le;
		while (p < len && t[p] != '\r' && t[p] != '\n')
			p++;
		le = p;
		while (p < len && (t[p] == '\r' || t[p] == '\n'))
			p++;
		if (le - ls < 3)
			continue;
		if (memcmp(t + ls, "MSH", 3) == 0 || memcmp(t + ls, "BHS", 3) == 0 ||
		    memcmp(t + ls, "BTS", 3) == 0 || memcmp(t + ls, "FHS", 3) == 0 ||
		    memcmp(t + ls, "FTS", 3) == 0) {
			if (in) {
				span->off = (uint32_t)start;
				span->len = (uint32_t)(ls - start);
				*pos = ls;
				return 1;
			}
			if (memcmp(t + ls, "MSH", 3) == 0) {
				in = true;
				start = ls;
			}
		}
	}
	*pos = len;
	if (in) {
		span->off = (uint32_t)start;
		span->len = (uint32_t)(len - start);
		return 1;
	}
	return 0;
}

/* ---- access ---- */

struct hl7_span hl7_field(const struct hl7_msg *m, size_t seg, size_t f)
{
	struct hl7_span none = { 0, 0 };

	if (seg >= m->nsegs || f >= m->segs[seg].nf)
		return none;
	return m->fields[m->segs[seg].f0 + f];
}

struct hl7_span hl7_piece(const struct hl7_msg *m, struct hl7_span s, char sep, size_t n)
{
	const char *t = m->text + s.off, *end = t + s.len, *q;
	struct hl7_span r = { s.off, 0 };

	if (n == 0 || !sep)
		return n <= 1 ? s : r;
	while (--n) {
		q = memchr(t, sep, (size_t)(end - t));
		if (!q)
			return r;
		t = q + 1;
	}
	q = memchr(t, sep, (size_t)(end - t));
	r.off = (uint32_t)(t - m->text);
	r.len = (uint32_t)((q ? q : end) - t);
	return r;
}

size_t hl7_count(const struct hl7_msg *m, struct hl7_span s, char sep)
{
	const char *t = m->text + s.off, *end = t + s.len;
	size_t n = 1;

	if (!s.len)
		return 0;
	if (!sep)
		return 1;
	while ((t = memchr(t, sep, (size_t)(end - t))) != NULL) {
		n++;
		t++;
	}
	return n;
}

long hl7_find_seg(const struct hl7_msg *m, const char *id, size_t from, size_t k)
{
	for (size_t i = from; i < m->nsegs; i++)
		if (memcmp(m->segs[i].id, id, 3) == 0 && --k == 0)
			return (long)i;
	return -1;
}

static int parse_num(const char **p, size_t *out)
{
	size_t v = 0;
	const char *s = *p;

	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (size_t)(*s - '0');
		if (v > 100000)
			return -1;
		s++;
	}
	*out = v;
	*p = s;
	return 0;
}

int hl7_path_parse(const char *path, struct hl7_path *p, struct err *e)
{
	const char *s = path;

	memset(p, 0, sizeof(*p));
	p->occ = 1;
	if (strlen(s) < 3 || !seg_name_ok(s))
		goto bad;
	memcpy(p->seg, s, 3);
	s += 3;
	if (*s == '(') {
		s++;
		if (parse_num(&s, &p->occ) < 0 || *s != ')')
			goto bad;
		s++;
	}
	if (*s == '\0')
		return 0;
	if (*s != '-' && *s != '.')
		goto bad;
	s++;
	if (parse_num(&s, &p->field) < 0)
		goto bad;
	if (*s == '[') {
		s++;
		if (parse_num(&s, &p->rep) < 0 || *s != ']')
			goto bad;
		s++;
	}
	if (*s == '.') {
		s++;
		if (parse_num(&s, &p->comp) < 0)
			goto bad;
		if (*s == '.') {
			s++;
			if (parse_num(&s, &p->sub) < 0)
				goto bad;
		}
	}
	if (*s == '\0')
		return 0;
bad:
	return err_set(e, ERR_INVALID,
		       "bad path '%.60s': expected SEG[(n)]-FIELD[[rep]][.COMP[.SUB]], such as PID-5[2].1 or "
		       "OBX(3)-5", path);
}

int hl7_get(const struct hl7_msg *m, const struct hl7_path *p, struct hl7_span *out)
{
	long seg = hl7_find_seg(m, p->seg, 0, p->occ);
	struct hl7_span s;

	out->off = 0;
	out->len = 0;
	if (seg < 0)
		return 1;
	if (p->field == 0) {
		*out = (struct hl7_span){ m->segs[seg].off, m->segs[seg].len };
		return 0;
	}
	s = hl7_field(m, (size_t)seg, p->field);
	/* MSH-1 and MSH-2 hold the delimiters: never split */
	if (is_header_seg(p->seg) && p->field <= 2) {
		*out = s;
		return 0;
	}
	if (p->rep || p->comp)
		s = hl7_piece(m, s, m->d.rep, p->rep ? p->rep : 1);
	if (p->comp)
		s = hl7_piece(m, s, m->d.comp, p->comp);
	if (p->sub)
		s = hl7_piece(m, s, m->d.sub, p->sub);
	*out = s;
	return 0;
}

int hl7_get_str(const struct hl7_msg *m, const char *path, struct buf *out, struct err *e)
{
	struct hl7_path p;
	struct hl7_span s;
	int r;

	if (hl7_path_parse(path, &p, e) < 0)
		return -1;
	r = hl7_get(m, &p, &s);
	if (r == 0) {
		if (is_header_seg(p.seg) && p.field <= 2 && p.field > 0)
			buf_add(out, m->text + s.off, s.len);
		else
			hl7_unescape(m, s, out);
	}
	return r;
}

bool hl7_is_null(const struct hl7_msg *m, struct hl7_span s)
{
	return s.len == 2 && m->text[s.off] == '"' && m->text[s.off + 1] == '"';
}

/* ---- escapes ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The bytes of a \X..\ escape: UTF-8 as it is, otherwise each byte read as
 * 8859/1 (what a sender without MSH-18 means). */
static void add_hex(const char *h, size_t n, struct buf *out)
{
	unsigned char bytes[256];
	size_t k = 0;

	for (size_t i = 0; i + 1 < n && k < sizeof(bytes); i += 2) {
		int hi = hexval(h[i]), lo = hexval(h[i + 1]);
		if (hi < 0 || lo < 0)
			break;
		bytes[k++] = (unsigned char)(hi << 4 | lo);
	}
	if (utf8_valid(bytes, k, NULL)) {
		buf_add(out, bytes, k);
		return;
	}
	for (size_t i = 0; i < k; i++) {
		if (bytes[i] < 0x80) {
			buf_addch(out, (char)bytes[i]);
		} else {
			buf_addch(out, (char)(0xc0 | (bytes[i] >> 6)));
			buf_addch(out, (char)(0x80 | (bytes[i] & 0x3f)));
		}
	}
}

void hl7_unescape(const struct hl7_msg *m, struct hl7_span s, struct buf *out)
{
	const char *t = m->text + s.off, *end = t + s.len;
	const char esc = m->d.esc;

	while (t < end) {
		const char *q = esc ? memchr(t, esc, (size_t)(end - t)) : NULL, *c;
		size_t n;

		if (!q) {
			buf_add(out, t, (size_t)(end - t));
			return;
		}
		buf_add(out, t, (size_t)(q - t));
		c = memchr(q + 1, esc, (size_t)(end - q - 1));
		if (!c) {
			/* unterminated: kept as written */
			buf_add(out, q, (size_t)(end - q));
			return;
		}
		n = (size_t)(c - q - 1);
		t = c + 1;
		if (n == 1) {
			switch (q[1]) {
			case 'F': buf_addch(out, m->d.field); continue;
			case 'S': buf_addch(out, m->d.comp); continue;
			case 'T': buf_addch(out, m->d.sub); continue;
			case 'R': buf_addch(out, m->d.rep); continue;
			case 'E': buf_addch(out, m->d.esc); continue;
			case 'P':
				if (m->d.trunc) {
					buf_addch(out, m->d.trunc);
					continue;
				}
				break;
			case 'H': case 'N':
				continue; /* highlighting on/off: no meaning in plain text */
			default:
				break;
			}
		} else if (n >= 1 && q[1] == 'X') {
			add_hex(q + 2, n - 1, out);
			continue;
		} else if (n >= 3 && (memcmp(q + 1, ".br", 3) == 0 || memcmp(q + 1, ".sp", 3) == 0)) {
			buf_addch(out, '\n');
			continue;
		} else if (n >= 2 && q[1] == '.') {
			continue; /* .fi .nf .in .ti .sk .ce: formatting */
		} else if (n >= 2 && (q[1] == 'C' || q[1] == 'M' || q[1] == 'Z')) {
			continue; /* character-set switches, local escapes */
		}
		buf_add(out, q, (size_t)(c - q + 1)); /* unknown: as written */
	}
}

void hl7_escape(const struct hl7_delims *d, const char *text, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (c == d->esc) {
			buf_addch(out, c);
			buf_addch(out, 'E');
			buf_addch(out, c);
		} else if (c == d->field) {
			buf_addch(out, d->esc);
			buf_addch(out, 'F');
			buf_addch(out, d->esc);
		} else if (c == d->comp) {
			buf_addch(out, d->esc);
			buf_addch(out, 'S');
			buf_addch(out, d->esc);
		} else if (c == d->sub) {
			buf_addch(out, d->esc);
			buf_addch(out, 'T');
			buf_addch(out, d->esc);
		} else if (c == d->rep) {
			buf_addch(out, d->esc);
			buf_addch(out, 'R');
			buf_addch(out, d->esc);
		} else if (d->trunc && c == d->trunc) {
			buf_addch(out, d->esc);
			buf_addch(out, 'P');
			buf_addch(out, d->esc);
		} else if (c == '\n') {
			buf_addch(out, d->esc);
			buf_addstr(out, ".br");
			buf_addch(out, d->esc);
		} else if (c == '\r') {
			continue;
		} else {
			buf_addch(out, c);
		}
	}
}
