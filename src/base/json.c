/* json.c - glue over json-c (see json.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "banned.h"

#define DUMP_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

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

/* Skip a string starting at s[i] == '"'; returns the index after the quote. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n;
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
 * "1.", "00", raw control characters in strings) and clamps integers beyond
 * 64 bits, so this pass checks every token against the RFC grammar.  It also
 * counts the property names of every object in document order: duplicate
 * names are found by comparing these counts with the parsed tree, whose
 * objects hold each name once.
 */
struct scan {
	size_t *obj_off;    /* offset of each object's '{', document order */
	size_t *obj_keys;   /* number of property names written in it */
	size_t nobj, cap;
	size_t bad_off;     /* (size_t)-1 if the text is fine */
	const char *bad_why;
	size_t nnum;        /* number tokens seen */
	struct bignum { size_t index, off, len; } *big; /* integers beyond int64 */
	size_t nbig, capbig;
};

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

static int grow_objs(struct scan *sc)
{
	size_t ncap = sc->cap ? sc->cap * 2 : 256;
	size_t *a, *b;

	a = realloc(sc->obj_off, ncap * sizeof(*a));
	if (!a)
		return -1;
	sc->obj_off = a;
	b = realloc(sc->obj_keys, ncap * sizeof(*b));
	if (!b)
		return -1;
	sc->obj_keys = b;
	sc->cap = ncap;
	return 0;
}

static int scan_text(const char *s, size_t n, struct scan *sc)
{
	size_t stack_small[64], *stack = stack_small, depth = 0, cap = 64;
	int rc = 0;

	sc->nobj = 0;
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
				sc->obj_keys[stack[depth - 1]]++;
			}
			i = j + 1;
		} else if (c == '{') {
			if (sc->nobj == sc->cap && grow_objs(sc) < 0) {
				rc = -1;
				goto out;
			}
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
			sc->obj_off[sc->nobj] = i;
			sc->obj_keys[sc->nobj] = 0;
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

/* Walk the parsed tree in document order alongside the scan; return the
 * index of the first object whose written names outnumber its parsed ones. */
static bool find_dup(json_object *o, const struct scan *sc, size_t *idx, size_t *found)
{
	if (json_object_is_type(o, json_type_object)) {
		size_t me = (*idx)++;
		if (me >= sc->nobj) {
			*found = sc->nobj ? sc->nobj - 1 : 0;
			return true;
		}
		if (sc->obj_keys[me] != (size_t)json_object_object_length(o)) {
			*found = me;
			return true;
		}
		json_object_object_foreach(o, k, v) {
			(void)k;
			if (find_dup(v, sc, idx, found))
				return true;
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);
		for (size_t i = 0; i < len; i++)
			if (find_dup(json_object_array_get_idx(o, i), sc, idx, found))
				return true;
	}
	return false;
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

static size_t count_keys(json_object *o)
{
	size_t total = 0;

	if (json_object_is_type(o, json_type_object)) {
		total += (size_t)json_object_object_length(o);
		json_object_object_foreach(o, k, v) {
			(void)k;
			total += count_keys(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);
		for (size_t i = 0; i < len; i++)
			total += count_keys(json_object_array_get_idx(o, i));
	}
	return total;
}

/* Name the first repeated property of the object at s[off] ('{'). */
static void dup_name(const char *s, size_t n, size_t off, char *out, size_t outsz)
{
	size_t starts[256], lens[256], nk = 0, depth = 0;

	out[0] = '\0';
	for (size_t i = off; i < n;) {
		char c = s[i];
		if (c == '"') {
			size_t end = skip_string(s, n, i);
			size_t j = skip_ws(s, n, end);
			if (depth == 1 && j < n && s[j] == ':') {
				size_t ks = i + 1, kl = end - i - 2;
				for (size_t k = 0; k < nk; k++) {
					if (lens[k] == kl && memcmp(s + starts[k], s + ks, kl) == 0) {
						snprintf(out, outsz, "%.*s", (int)(kl > 60 ? 60 : kl), s + ks);
						return;
					}
				}
				if (nk < 256) {
					starts[nk] = ks;
					lens[nk++] = kl;
				}
			}
			i = end;
			continue;
		}
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return;
		i++;
	}
}

json_object *json_parse_buf(const char *s, size_t n, int max_depth, struct err *e)
{
	struct json_tokener *tok = NULL;
	json_object *o = NULL;
	struct scan sc = { NULL, NULL, 0, 0, (size_t)-1, NULL, 0, NULL, 0, 0 };
	size_t end, line, col;
	bool whole = false;

	if (max_depth <= 0)
		max_depth = JSON_DEFAULT_MAX_DEPTH;
	if (skip_ws(s, n, 0) == n) {
		err_set(e, ERR_INVALID, "empty body: expected a JSON document");
		goto out;
	}
	/* json-c's tokener stops at NUL, and the JSON grammar never allows one. */
	if (memchr(s, '\0', n)) {
		end = (size_t)((const char *)memchr(s, '\0', n) - s);
		line_col(s, end, &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: NUL byte", line, col);
		goto out;
	}
	tok = json_tokener_new_ex(max_depth);
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
			line_col(s, n, &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: unexpected end of data",
				line, col);
		} else if (je == json_tokener_error_depth) {
			line_col(s, end, &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: nesting deeper than %d levels",
				line, col, max_depth);
		} else if (scan_text(s, end < n ? end + 1 : n, &sc) == 0 && sc.bad_off != (size_t)-1 &&
			   sc.bad_off <= end) {
			/* Our token check names the problem better than json-c does. */
			line_col(s, sc.bad_off, &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s", line, col,
				sc.bad_why);
		} else {
			line_col(s, end, &line, &col);
			err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s",
				line, col, json_tokener_error_desc(je));
		}
		goto out;
	}
	end = whole ? n : skip_ws(s, n, json_tokener_get_parse_end(tok));
	if (end != n) {
		line_col(s, end, &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: data after the end of the document",
			line, col);
		goto fail;
	}
	if (scan_text(s, n, &sc) < 0) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (sc.bad_off != (size_t)-1) {
		line_col(s, sc.bad_off, &line, &col);
		err_set(e, ERR_INVALID, "malformed JSON at line %zu, column %zu: %s", line, col, sc.bad_why);
		goto fail;
	}
	{
		size_t total = 0;
		for (size_t i = 0; i < sc.nobj; i++)
			total += sc.obj_keys[i];
		if (total != count_keys(o)) {
			size_t idx = 0, found = 0;
			char name[64];
			find_dup(o, &sc, &idx, &found);
			line_col(s, sc.obj_off[found], &line, &col);
			dup_name(s, n, sc.obj_off[found], name, sizeof(name));
			if (name[0])
				err_set(e, ERR_INVALID,
					"malformed JSON at line %zu, column %zu: duplicate property \"%s\"",
					line, col, name);
			else
				err_set(e, ERR_INVALID,
					"malformed JSON at line %zu, column %zu: duplicate property in object",
					line, col);
			goto fail;
		}
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
	free(sc.obj_off);
	free(sc.obj_keys);
	if (tok)
		json_tokener_free(tok);
	return o;
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
