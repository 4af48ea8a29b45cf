/* json.c - glue over json-c (see json.h). */
#include <math.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "banned.h"

#define DUMP_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
 * n.  ASCII is skipped eight bytes at a time. */
static size_t utf8_bad_at(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len;
		unsigned char lo = 0x80, hi = 0xBF;
		if (c < 0x80) {
			uint64_t w;
			while (i + 8 <= n) {
				memcpy(&w, s + i, 8);
				if (w & UINT64_C(0x8080808080808080))
					break;
				i += 8;
			}
			if (i < n && s[i] < 0x80)
				i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return i;
		}
		if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (unsigned k = 2; k < len; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return i;
		i += len;
	}
	return n;
}

static void line_col(const char *s, size_t off, size_t *line, size_t *col)
{
	size_t l = 1, c = 1;

	for (size_t i = 0; i < off; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
			c++; /* count characters, not UTF-8 continuation bytes */
		}
	}
	*line = l;
	*col = c;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * Second look at text json-c already accepted.  json-c's "strict" mode still
 * takes things RFC 8259 does not (single-quoted strings, NaN, Infinity,
 * "1.", "00", raw control characters in strings), silently keeps the last
 * of two properties with the same name, and clamps integers beyond 64 bits,
 * so this pass checks every token against the RFC grammar and keeps a hash
 * set of (object, property name) to find duplicate names, comparing names
 * after unescaping ("a" and "\u0061" are the same name).
 */
struct keyent {
	uint32_t hash;     /* 0: empty slot */
	uint32_t obj;      /* which object (document order) */
	uint32_t off, len; /* the name's raw text, between the quotes */
};

struct scan {
	struct keyent *keys;
	size_t nkeys, capkeys;   /* capkeys: a power of two, or 0 */
	size_t nobj;
	size_t text_len;
	struct buf k1, k2;       /* unescaped names, for comparisons */
	size_t bad_off;          /* (size_t)-1 if the text is fine */
	const char *bad_why;
	char why_buf[128];
	size_t nnum;             /* number tokens seen */
	struct bignum { size_t index, off, len; } *big; /* integers beyond int64 */
	size_t nbig, capbig;
};

static void utf8_put(struct buf *b, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		buf_addch(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 4);
	}
}

static unsigned hex4(const char *p)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* The name s[0..n) (raw, well-formed JSON string contents) without escapes. */
static void unescape_name(const char *s, size_t n, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			buf_addch(out, s[i]);
			continue;
		}
		if (++i >= n) {
			buf_addch(out, '\\');
			break;
		}
		switch (s[i]) {
		case 'b': buf_addch(out, '\b'); break;
		case 'f': buf_addch(out, '\f'); break;
		case 'n': buf_addch(out, '\n'); break;
		case 'r': buf_addch(out, '\r'); break;
		case 't': buf_addch(out, '\t'); break;
		case 'u': {
			unsigned cp;
			if (i + 4 >= n) {
				buf_add(out, s + i - 1, n - (i - 1));
				i = n;
				break;
			}
			cp = hex4(s + i + 1);
			i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
				unsigned lo = hex4(s + i + 3);
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
			}
			utf8_put(out, cp);
			break;
		}
		default: buf_addch(out, s[i]); break; /* " \\ / */
		}
	}
}

static uint32_t name_hash(size_t obj, const char *s, size_t n)
{
	uint32_t h = 2166136261u ^ (uint32_t)(obj * 0x9e3779b9u);

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h ? h : 1;
}

/* Add property name text[off..off+len) of object obj; 1 if the object
 * already has it, 0 if not, -1 out of memory. */
static int name_seen(struct scan *sc, const char *text, size_t obj, size_t off, size_t len)
{
	const char *name = text + off;
	size_t nlen = len;
	bool escaped = memchr(name, '\\', len) != NULL;
	uint32_t h;
	size_t mask, i;

	if (escaped) {
		unescape_name(name, len, &sc->k1);
		if (sc->k1.failed)
			return -1;
		name = buf_cstr(&sc->k1);
		nlen = sc->k1.len;
	}
	h = name_hash(obj, name, nlen);
	if (2 * (sc->nkeys + 1) > sc->capkeys) {
		/* first size: room for as many names as the text could hold */
		size_t ncap = sc->capkeys ? sc->capkeys * 2 : 64;
		while (!sc->capkeys && ncap < sc->text_len / 8 && ncap < ((size_t)1 << 24))
			ncap *= 2;
		struct keyent *nt = calloc(ncap, sizeof(*nt));
		if (!nt)
			return -1;
		for (size_t k = 0; k < sc->capkeys; k++) {
			struct keyent *ke = &sc->keys[k];
			if (!ke->hash)
				continue;
			for (i = ke->hash & (ncap - 1); nt[i].hash; i = (i + 1) & (ncap - 1))
				;
			nt[i] = *ke;
		}
		free(sc->keys);
		sc->keys = nt;
		sc->capkeys = ncap;
	}
	mask = sc->capkeys - 1;
	for (i = h & mask; sc->keys[i].hash; i = (i + 1) & mask) {
		const struct keyent *ke = &sc->keys[i];
		const char *other;
		size_t olen;
		if (ke->hash != h || ke->obj != (uint32_t)obj)
			continue;
		other = text + ke->off;
		olen = ke->len;
		if (memchr(other, '\\', olen)) {
			unescape_name(other, olen, &sc->k2);
			other = buf_cstr(&sc->k2);
			olen = sc->k2.len;
		}
		if (olen == nlen && memcmp(other, name, nlen) == 0)
			return 1;
	}
	sc->keys[i].hash = h;
	sc->keys[i].obj = (uint32_t)obj;
	sc->keys[i].off = (uint32_t)off;
	sc->keys[i].len = (uint32_t)len;
	sc->nkeys++;
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* An RFC 8259 number at s[i]; returns its end, or (size_t)-1. */
static size_t scan_number(const char *s, size_t n, size_t i, bool *integer, size_t *ndig)
{
	size_t start;

	*integer = true;
	if (i < n && s[i] == '-')
		i++;
	start = i;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && is_digit(s[i]))
			i++;
	else
		return (size_t)-1;
	*ndig = i - start;
	if (i < n && s[i] == '.') {
		*integer = false;
		if (++i >= n || !is_digit(s[i]))
			return (size_t)-1;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		*integer = false;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return (size_t)-1;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (is_digit(s[i]) || is_alpha(s[i]) || s[i] == '.'))
		return (size_t)-1;
	return i;
}

/* Does the integer literal s[0..n) (ndig digits) fit in an int64? */
static bool fits_int64(const char *s, size_t n, size_t ndig)
{
	const char *lim = s[0] == '-' ? "9223372036854775808" : "9223372036854775807";
	const char *d = s[0] == '-' ? s + 1 : s;

	(void)n;
	if (ndig < 19)
		return true;
	if (ndig > 19)
		return false;
	return memcmp(d, lim, 19) <= 0;
}

static int scan_text(const char *s, size_t n, struct scan *sc)
{
	size_t stack_small[64], *stack = stack_small, depth = 0, cap = 64;
	int rc = 0;

	sc->nobj = 0;
	sc->nkeys = 0;
	sc->text_len = n;
	if (sc->keys)
		memset(sc->keys, 0, sc->capkeys * sizeof(*sc->keys));
	sc->bad_off = (size_t)-1;
	sc->bad_why = NULL;
	for (size_t i = 0; i < n && sc->bad_off == (size_t)-1;) {
		char c = s[i];

		if (c == '"') {
			size_t j = i + 1, k, nul = (size_t)-1;
			while (j < n && s[j] != '"') {
				if ((unsigned char)s[j] < 0x20) {
					sc->bad_off = j;
					sc->bad_why = "control character in a string (escape it)";
					break;
				}
				if (s[j] == '\\' && j + 5 < n && s[j + 1] == 'u' &&
				    memcmp(s + j + 2, "0000", 4) == 0 && nul == (size_t)-1)
					nul = j;
				j += s[j] == '\\' ? 2 : 1;
			}
			if (sc->bad_off != (size_t)-1)
				break;
			k = skip_ws(s, n, j + 1);
			if (k < n && s[k] == ':' && depth > 0) {
				/* json-c cuts a name at a NUL: "a\u0000b" would become "a" */
				if (nul != (size_t)-1) {
					sc->bad_off = nul;
					sc->bad_why = "a property name may not contain \\u0000";
					break;
				}
				int seen = name_seen(sc, s, stack[depth - 1], i + 1, j - i - 1);
				if (seen < 0) {
					rc = -1;
					goto out;
				}
				if (seen) {
					unescape_name(s + i + 1, j - i - 1, &sc->k1);
					snprintf(sc->why_buf, sizeof(sc->why_buf), "duplicate property \"%.60s\"",
						 buf_cstr(&sc->k1));
					sc->bad_off = i;
					sc->bad_why = sc->why_buf;
					break;
				}
			}
			i = j + 1;
		} else if (c == '{') {
			if (depth == cap) {
				size_t *ns = malloc(cap * 2 * sizeof(*ns));
				if (!ns) {
					rc = -1;
					goto out;
				}
				memcpy(ns, stack, depth * sizeof(*ns));
				if (stack != stack_small)
					free(stack);
				stack = ns;
				cap *= 2;
			}
			stack[depth++] = sc->nobj++;
			i++;
		} else if (c == '}') {
			if (depth > 0)
				depth--;
			i++;
		} else if (c == '[' || c == ']' || c == ',' || c == ':' || c == ' ' || c == '\t' ||
			   c == '\n' || c == '\r') {
			i++;
		} else if (c == '-' || is_digit(c)) {
			bool integer;
			size_t ndig = 0, end = scan_number(s, n, i, &integer, &ndig);
			if (end == (size_t)-1) {
				sc->bad_off = i;
				sc->bad_why = "malformed number";
			} else if (integer && !fits_int64(s + i, end - i, ndig)) {
				/* json-c would clamp it: remember it, to keep its text */
				if (sc->nbig == sc->capbig) {
					size_t ncap = sc->capbig ? sc->capbig * 2 : 8;
					struct bignum *b = realloc(sc->big, ncap * sizeof(*b));
					if (!b) {
						rc = -1;
						goto out;
					}
					sc->big = b;
					sc->capbig = ncap;
				}
				sc->big[sc->nbig].index = sc->nnum;
				sc->big[sc->nbig].off = i;
				sc->big[sc->nbig].len = end - i;
				sc->nbig++;
			}
			sc->nnum++;
			i = end;
		} else if (is_alpha(c)) {
			size_t j = i;
			while (j < n && is_alpha(s[j]))
				j++;
			if (!((j - i == 4 && (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) ||
			      (j - i == 5 && memcmp(s + i, "false", 5) == 0))) {
				sc->bad_off = i;
				sc->bad_why = "not a JSON value (only true, false and null are literals)";
			}
			i = j;
		} else {
			sc->bad_off = i;
			sc->bad_why = c == '\'' ? "strings take double quotes" : "unexpected character";
		}
	}
out:
	if (stack != stack_small)
		free(stack);
	return rc;
}

/* Put each integer beyond int64 back as a number that keeps its text. */
struct renum {
	const struct scan *sc;
	const char *text;
	size_t num, next;
};

static json_object *big_value(struct renum *r)
{
	const struct bignum *b = &r->sc->big[r->next++];
	char tmp[64];
	char *copy = strndup(r->text + b->off, b->len);
	json_object *v;

	snprintf(tmp, sizeof(tmp), "%.*s", (int)(b->len < 60 ? b->len : 60), r->text + b->off);
	v = json_object_new_double_s(strtod(copy ? copy : tmp, NULL), copy ? copy : tmp);
	free(copy);
	return v;
}

static bool is_num(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static void renumber(json_object *o, struct renum *r)
{
	if (r->next >= r->sc->nbig)
		return;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			if (is_num(v)) {
				if (r->next < r->sc->nbig && r->sc->big[r->next].index == r->num)
					json_object_object_add(o, k, big_value(r));
				r->num++;
			} else {
				renumber(v, r);
			}
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);
		for (size_t i = 0; i < len; i++) {
			json_object *v = json_object_array_get_idx(o, i);
			if (is_num(v)) {
				if (r->next < r->sc->nbig && r->sc->big[r->next].index == r->num)
					json_object_array_put_idx(o, i, big_value(r));
				r->num++;
			} else {
				renumber(v, r);
			}
		}
	}
}

/* ---- a tokener per thread ----
 *
 * json_tokener_new_ex() callocs the tokener, its parse stack (one record per
 * level of max_depth) and a print buffer: a bulk import parses every entry of
 * every Bundle separately, and that allocation and zeroing was about 3 % of
 * its CPU.  Each thread keeps one tokener for the depth it last used and
 * resets it after each document; the key's destructor frees it when the
 * thread ends. */
static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static bool tok_key_ok;

struct tok_slot {
	struct json_tokener *tok;
	int depth;
};

static void tok_slot_free(void *p)
{
	struct tok_slot *t = p;

	if (t->tok)
		json_tokener_free(t->tok);
	free(t);
}

static void tok_key_init(void)
{
	tok_key_ok = pthread_key_create(&tok_key, tok_slot_free) == 0;
}

/* A reset tokener of max_depth for this thread, or NULL (out of memory). */
static struct json_tokener *tok_get(int max_depth, bool *owned)
{
	struct tok_slot *t;

	*owned = false;
	pthread_once(&tok_once, tok_key_init);
	t = tok_key_ok ? pthread_getspecific(tok_key) : NULL;
	if (!t && tok_key_ok) {
		t = calloc(1, sizeof(*t));
		if (t && pthread_setspecific(tok_key, t) != 0) {
			free(t);
			t = NULL;
		}
	}
	if (!t) {
		*owned = true;
		return json_tokener_new_ex(max_depth);
	}
	if (t->tok && t->depth != max_depth) {
		json_tokener_free(t->tok);
		t->tok = NULL;
	}
	if (!t->tok) {
		t->tok = json_tokener_new_ex(max_depth);
		t->depth = max_depth;
	}
	return t->tok;
}

json_object *json_parse_at(const char *doc, size_t off, size_t n, int max_depth, struct err *e)
{
	const char *s = doc + off;
	struct json_tokener *tok = NULL;
	bool tok_owned = false;
	json_object *o = NULL;
	struct scan sc;
	size_t end, line, col;
	bool whole = false;

	memset(&sc, 0, sizeof(sc));
	sc.bad_off = (size_t)-1;
	buf_init(&sc.k1, 0);
	buf_init(&sc.k2, 0);
	if (max_depth <= 0)
		max_depth = JSON_DEFAULT_MAX_DEPTH;
	if (skip_ws(s, n, 0) == n) {
		err_set(e, ERR_INVALID, "empty body: expected a JSON document");
		goto out;
	}
	/* json-c's tokener stops at NUL, and the JSON grammar never allows one. */
	if (memchr(s, '\0', n)) {
		end = (size_t)((const char *)memchr(s, '\0', n) - s);
		line_col(doc, off + (end), &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: NUL byte", line, col);
		goto out;
	}
	/* json-c checks only the shape of UTF-8 sequences: overlong forms,
	 * surrogates and code points above U+10FFFF must not get in either. */
	end = utf8_bad_at(s, n);
	if (end < n) {
		line_col(doc, off + end, &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: invalid utf-8 string",
			line, col);
		goto out;
	}
	tok = tok_get(max_depth, &tok_owned);
	if (!tok) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Trailing data is reported below, with a clearer message. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
				    JSON_TOKENER_ALLOW_TRAILING_CHARS);
	if (n > (size_t)0x7fffffff) {
		err_set(e, ERR_TOO_LARGE, "JSON document too large");
		goto out;
	}
	o = json_tokener_parse_ex(tok, s, (int)n);
	/* A bare number at the end needs the terminator to be complete. */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		whole = true;
	}
	if (!o) {
		enum json_tokener_error je = json_tokener_get_error(tok);
		end = json_tokener_get_parse_end(tok);
		if (je == json_tokener_success) {
			err_set(e, ERR_INVALID, "the document is null: expected an object");
		} else if (je == json_tokener_continue || whole) {
			line_col(doc, off + (n), &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: unexpected end of data",
				line, col);
		} else if (je == json_tokener_error_depth) {
			line_col(doc, off + (end), &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: nesting deeper than %d levels",
				line, col, max_depth);
		} else if (scan_text(s, end < n ? end + 1 : n, &sc) == 0 && sc.bad_off != (size_t)-1 &&
			   sc.bad_off <= end) {
			/* Our token check names the problem better than json-c does. */
			line_col(doc, off + (sc.bad_off), &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s", line, col,
				sc.bad_why);
		} else {
			line_col(doc, off + (end), &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s",
				line, col, json_tokener_error_desc(je));
		}
		goto out;
	}
	end = whole ? n : skip_ws(s, n, json_tokener_get_parse_end(tok));
	if (end != n) {
		line_col(doc, off + (end), &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: data after the end of the document",
			line, col);
		goto fail;
	}
	if (scan_text(s, n, &sc) < 0) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (sc.bad_off != (size_t)-1) {
		line_col(doc, off + (sc.bad_off), &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s", line, col, sc.bad_why);
		goto fail;
	}
	if (sc.nbig) {
		struct renum r = { &sc, s, 0, 0 };
		if (is_num(o)) {
			json_object_put(o);
			o = big_value(&r);
		} else {
			renumber(o, &r);
		}
	}
	goto out;
fail:
	json_object_put(o);
	o = NULL;
out:
	free(sc.big);
	free(sc.keys);
	buf_release(&sc.k1);
	buf_release(&sc.k2);
	/* a kept tokener is reset now, so that it holds none of a failed
	 * document's objects until the thread's next parse */
	if (tok && tok_owned)
		json_tokener_free(tok);
	else if (tok)
		json_tokener_reset(tok);
	return o;
}

json_object *json_parse_buf(const char *s, size_t n, int max_depth, struct err *e)
{
	return json_parse_at(s, 0, n, max_depth, e);
}

/* ---- splitting a document without parsing it ---- */

/* The end of the value starting at s[i] (within [i, end)): strings and
 * brackets are matched, scalars run to the next delimiter.  The value itself
 * is checked when it is parsed; this only finds where it stops. */
static size_t skip_value(const char *s, size_t i, size_t end, const char **why)
{
	/* bytes that matter inside a container: quotes and brackets */
	static const unsigned char stop[256] = {
		['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3,
	};
	size_t depth = 0;

	if (i >= end) {
		*why = "expected a value";
		return (size_t)-1;
	}
	if (s[i] != '"' && s[i] != '{' && s[i] != '[') {
		size_t a = i;
		while (i < end && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
		       s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			i++;
		if (i == a) {
			*why = "expected a value";
			return (size_t)-1;
		}
		return i;
	}
	for (;;) {
		while (i < end && !stop[(unsigned char)s[i]])
			i++;
		if (i >= end)
			break;
		switch (stop[(unsigned char)s[i]]) {
		case 1: /* a string: find its closing quote */
			i++;
			for (;;) {
				while (i < end && s[i] != '"' && s[i] != '\\')
					i++;
				if (i >= end) {
					*why = "unterminated string";
					return (size_t)-1;
				}
				if (s[i] == '"')
					break;
				i += 2; /* a backslash and the byte it escapes */
			}
			i++;
			if (depth == 0)
				return i;
			continue;
		case 2:
			depth++;
			break;
		default:
			depth--;
			break;
		}
		i++;
		if (depth == 0)
			return i;
	}
	*why = "unexpected end of data";
	return (size_t)-1;
}

/* s[i] is a backslash: is it a JSON escape (\\uXXXX with four hex digits)? */
static bool valid_escape(const char *s, size_t i, size_t end)
{
	if (i + 1 >= end)
		return false;
	if (strchr("\"\\/bfnrt", s[i + 1]) && s[i + 1] != '\0')
		return true;
	if (s[i + 1] != 'u' || i + 5 >= end)
		return false;
	for (size_t k = i + 2; k < i + 6; k++)
		if (!isxdigit((unsigned char)s[k]))
			return false;
	return true;
}

static bool key_equal(const char *a, size_t an, const char *b, size_t bn, struct buf *t1,
		      struct buf *t2)
{
	if (memchr(a, '\\', an)) {
		unescape_name(a, an, t1);
		a = buf_cstr(t1);
		an = t1->len;
	}
	if (memchr(b, '\\', bn)) {
		unescape_name(b, bn, t2);
		b = buf_cstr(t2);
		bn = t2->len;
	}
	return an == bn && memcmp(a, b, an) == 0;
}

bool json_span_key_is(const struct json_span *m, const char *name)
{
	struct buf t1 = BUF_INIT(0), t2 = BUF_INIT(0);
	bool eq = m->key && key_equal(m->key, m->key_len, name, strlen(name), &t1, &t2);

	buf_release(&t1);
	buf_release(&t2);
	return eq;
}

#define SPLIT_MAX_MEMBERS 4096

int json_split(const char *doc, size_t off, size_t len, bool array, struct json_span **out,
	       size_t *count, struct err *e)
{
	const char *s = doc;
	size_t i = skip_ws(s, off + len, off), end = off + len, n = 0, cap = 0;
	struct json_span *v = NULL;
	struct buf t1 = BUF_INIT(0), t2 = BUF_INIT(0);
	const char *why = NULL;
	char open = array ? '[' : '{', close = array ? ']' : '}';
	size_t line, col;

	*out = NULL;
	*count = 0;
	if (i >= end || s[i] != open) {
		why = array ? "expected an array" : "expected an object";
		goto bad;
	}
	i = skip_ws(s, end, i + 1);
	if (i < end && s[i] == close) {
		i++;
		goto done;
	}
	for (;;) {
		struct json_span m = { NULL, 0, 0, 0 };
		size_t ve;

		if (!array) {
			size_t ks;
			if (i >= end || s[i] != '"') {
				why = "expected a property name in double quotes";
				goto bad;
			}
			ks = ++i;
			while (i < end && s[i] != '"') {
				if ((unsigned char)s[i] < 0x20) {
					why = "control character in a string (escape it)";
					goto bad;
				}
				if (s[i] == '\\' && !valid_escape(s, i, end)) {
					why = "invalid escape in a property name";
					goto bad;
				}
				i += s[i] == '\\' ? 2 : 1;
			}
			if (i >= end) {
				why = "unterminated string";
				goto bad;
			}
			m.key = s + ks;
			m.key_len = i - ks;
			i = skip_ws(s, end, i + 1);
			if (i >= end || s[i] != ':') {
				why = "expected ':'";
				goto bad;
			}
			i = skip_ws(s, end, i + 1);
		}
		ve = skip_value(s, i, end, &why);
		if (ve == (size_t)-1)
			goto bad;
		m.off = i;
		m.len = ve - i;
		if (!array) {
			if (n == SPLIT_MAX_MEMBERS) {
				why = "too many properties";
				goto bad;
			}
			for (size_t k = 0; k < n; k++) {
				if (key_equal(v[k].key, v[k].key_len, m.key, m.key_len, &t1, &t2)) {
					i = (size_t)(m.key - s) - 1;
					why = "duplicate property";
					goto bad;
				}
			}
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct json_span *nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				err_set(e, ERR_NOMEM, "out of memory");
				goto fail;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = m;
		i = skip_ws(s, end, ve);
		if (i < end && s[i] == ',') {
			i = skip_ws(s, end, i + 1);
			continue;
		}
		if (i < end && s[i] == close) {
			i++;
			break;
		}
		why = array ? "expected ',' or ']'" : "expected ',' or '}'";
		goto bad;
	}
done:
	i = skip_ws(s, end, i);
	if (i != end) {
		why = "data after the end of the document";
		goto bad;
	}
	buf_release(&t1);
	buf_release(&t2);
	*out = v;
	*count = n;
	return 0;
bad:
	line_col(doc, i < end ? i : end, &line, &col);
	err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s", line, col, why);
fail:
	buf_release(&t1);
	buf_release(&t2);
	free(v);
	return -1;
}

json_object *json_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *json_get_str(json_object *o, const char *key)
{
	json_object *v = json_get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

json_object *json_get_obj(json_object *o, const char *key)
{
	json_object *v = json_get(o, key);

	return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

json_object *json_get_arr(json_object *o, const char *key)
{
	json_object *v = json_get(o, key);

	return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

bool json_is_str(json_object *o, const char *s)
{
	return o && json_object_is_type(o, json_type_string) &&
	       strcmp(json_object_get_string(o), s) == 0;
}

/* Our own writer over json-c's tree: json-c's serialiser formats every
 * number with printf and goes through a printbuf per object, which made it the
 * slowest step of an import.  A parsed double keeps its text as json-c's
 * userdata (json_object_new_double_s), so decimals come out as they came in. */
static void put_int(struct buf *out, json_object *o)
{
	char tmp[24];
	size_t n = sizeof(tmp);
	int64_t v = json_object_get_int64(o);
	uint64_t u;
	bool neg = false;

	if (v == INT64_MAX) {
		u = json_object_get_uint64(o); /* json-c keeps large positives as uint64 */
	} else if (v < 0) {
		neg = true;
		u = (uint64_t)(-(v + 1)) + 1;
	} else {
		u = (uint64_t)v;
	}
	do {
		tmp[--n] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		tmp[--n] = '-';
	buf_add(out, tmp + n, sizeof(tmp) - n);
}

void json_dump(json_object *o, struct buf *out)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		buf_add(out, "null", 4);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(o))
			buf_add(out, "true", 4);
		else
			buf_add(out, "false", 5);
		break;
	case json_type_int:
		put_int(out, o);
		break;
	case json_type_double: {
		const char *text = json_object_get_userdata(o);
		double d = json_object_get_double(o);
		if (text)
			buf_addstr(out, text);
		else if (isfinite(d))
			buf_addf(out, "%.17g", d);
		else
			buf_add(out, "null", 4); /* JSON has no infinity */
		break;
	}
	case json_type_string:
		buf_addch(out, '"');
		buf_add_json_str(out, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		buf_addch(out, '"');
		break;
	case json_type_array: {
		size_t n = json_object_array_length(o);
		buf_addch(out, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_addch(out, ',');
			json_dump(json_object_array_get_idx(o, i), out);
		}
		buf_addch(out, ']');
		break;
	}
	case json_type_object: {
		bool first = true;
		buf_addch(out, '{');
		json_object_object_foreach(o, k, v) {
			if (!first)
				buf_addch(out, ',');
			first = false;
			json_dump_member(k, v, out);
		}
		buf_addch(out, '}');
		break;
	}
	}
}

void json_dump_member(const char *key, json_object *val, struct buf *out)
{
	buf_addch(out, '"');
	buf_add_json_str(out, key, strlen(key));
	buf_add(out, "\":", 2);
	json_dump(val, out);
}

const char *json_dump_str(json_object *o, size_t *len)
{
	size_t l = 0;
	const char *s = json_object_to_json_string_length(o, DUMP_FLAGS, &l);

	if (len)
		*len = l;
	return s;
}

const char *json_dump_pretty(json_object *o, size_t *len)
{
	size_t l = 0;
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE, &l);

	if (len)
		*len = l;
	return s;
}
