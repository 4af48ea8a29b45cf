/* json_patch.c - RFC 6902 JSON Patch and RFC 6901 JSON Pointer (see json_patch.h).
 *
 * The patch is checked whole first (every operation well-formed), then run on
 * a deep copy of the document; the copy becomes the result or is freed.  Each
 * operation resolves its pointer in two steps: loc_find() walks every token but
 * the last to the container the operation acts on, and the loc_* functions
 * apply the last token to that container, which is where add, remove and
 * replace differ (RFC 6902 section 4). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_patch.h"
#include "banned.h"

#define QUOTE_MAX 80 /* bytes of a client-supplied string quoted in a message */

/* ------------------------------------------------------------------ */
/* messages                                                            */

/* Append s[0..n) to b quoted and escaped, cut at QUOTE_MAX bytes (never
 * inside a UTF-8 sequence). */
static void quote(struct buf *b, const char *s, size_t n)
{
	size_t cut = n;

	if (n > QUOTE_MAX) {
		cut = QUOTE_MAX;
		while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
			cut--;
	}
	buf_addch(b, '"');
	buf_add_json_str(b, s, cut);
	if (cut < n)
		buf_addstr(b, "...");
	buf_addch(b, '"');
}

static int set_from_buf(struct err *e, int code, struct buf *b)
{
	if (b->failed)
		err_set(e, ERR_NOMEM, "out of memory");
	else
		err_set(e, code, "%s", buf_cstr(b));
	buf_release(b);
	return -1;
}

/* A pointer being resolved, and how to word a failure to resolve it. */
struct where {
	struct err *e;
	const char *prefix; /* "patch operation 2 (add): ", or "" */
	const char *role;   /* "path", "from" or "pointer" */
	const char *s;      /* the pointer as written (not NUL-terminated) */
	size_t n;
	int missing_code;   /* what "not there" is: ERR_UNPROCESSABLE or ERR_NOT_FOUND */
};

/* Set e to: <prefix><role> "<pointer>"<mid>["<t>"]<tail>, quoting t[0..tn)
 * only when t is not NULL.  Returns -1. */
static int where_fail(const struct where *w, int code, const char *mid,
		      const char *t, size_t tn, const char *tail)
{
	struct buf b = BUF_INIT(0);

	buf_addstr(&b, w->prefix);
	buf_addstr(&b, w->role);
	buf_addch(&b, ' ');
	quote(&b, w->s, w->n);
	buf_addstr(&b, mid);
	if (t)
		quote(&b, t, tn);
	if (tail)
		buf_addstr(&b, tail);
	return set_from_buf(w->e, code, &b);
}

static int nomem(struct err *e)
{
	return err_set(e, ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ */
/* JSON Pointer                                                        */

/* Why p[0..n) is not a JSON Pointer, or NULL when it is one. */
static const char *ptr_syntax(const char *p, size_t n)
{
	if (n == 0)
		return NULL;
	if (p[0] != '/')
		return "must be empty or start with \"/\"";
	for (size_t i = 0; i < n; i++)
		if (p[i] == '~' && (i + 1 == n || (p[i + 1] != '0' && p[i + 1] != '1')))
			return "\"~\" must be followed by \"0\" or \"1\"";
	return NULL;
}

bool json_pointer_valid(const char *p, size_t n)
{
	return p && ptr_syntax(p, n) == NULL;
}

/* Decode the reference token that starts at p[*pos] (just after its '/')
 * into tok, and leave *pos on the next '/' or at n.  p is valid. */
static void next_token(const char *p, size_t n, size_t *pos, struct buf *tok)
{
	size_t i = *pos;

	buf_reset(tok);
	while (i < n && p[i] != '/') {
		if (p[i] == '~') {
			buf_addch(tok, p[i + 1] == '0' ? '~' : '/');
			i += 2;
		} else {
			size_t j = i;
			while (j < n && p[j] != '/' && p[j] != '~')
				j++;
			buf_add(tok, p + i, j - i);
			i = j;
		}
	}
	*pos = i;
}

/* A token's bytes; "" for a token never written to. */
static const char *tok_str(const struct buf *tok)
{
	return tok->data ? tok->data : "";
}

/* json-c keeps member names as C strings, so a token holding a NUL byte can
 * name no member. */
static bool tok_has_nul(const struct buf *tok)
{
	return tok->len > 0 && memchr(tok->data, '\0', tok->len) != NULL;
}

static bool tok_is(const struct buf *tok, const char *s)
{
	size_t n = strlen(s);

	return tok->len == n && (n == 0 || memcmp(tok->data, s, n) == 0);
}

/* RFC 6901 section 4: an array index is "0" or digits with no leading zero.
 * Returns 0 and *idx (saturated at SIZE_MAX, which no array reaches), or -1. */
static int parse_index(const struct buf *tok, size_t *idx)
{
	size_t v = 0;

	if (tok->len == 0 || (tok->data[0] == '0' && tok->len > 1))
		return -1;
	for (size_t i = 0; i < tok->len; i++) {
		char c = tok->data[i];
		size_t d;

		if (c < '0' || c > '9')
			return -1;
		d = (size_t)(c - '0');
		v = v > (SIZE_MAX - d) / 10 ? SIZE_MAX : v * 10 + d;
	}
	*idx = v;
	return 0;
}

/* The array position tok names in an array of len elements.  allow_end:
 * "-" and len itself are allowed (the position after the last element,
 * where add appends). */
static int arr_index(const struct where *w, const struct buf *tok, size_t len,
		     bool allow_end, size_t *idx)
{
	if (tok_is(tok, "-")) {
		if (!allow_end)
			return where_fail(w, w->missing_code,
					  ": \"-\" names no existing array element", NULL, 0, NULL);
		*idx = len;
		return 0;
	}
	if (parse_index(tok, idx) < 0)
		return where_fail(w, w->missing_code, ": ", tok_str(tok), tok->len,
				  " is not a valid array index");
	/* looking up an element past the end is a path that does not exist;
	 * adding one is an index out of range (RFC 6902 4.1) */
	if (*idx >= len && !allow_end)
		return where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
	if (*idx > len)
		return where_fail(w, w->missing_code, ": array index ", tok_str(tok), tok->len,
				  " is out of range");
	return 0;
}

/* The member or element of c that tok names.  Returns 1 with *child (and
 * *idx for an array), 0 when there is none (c may be a scalar), or -1 with e
 * set when tok cannot name an element of the array c. */
static int step(const struct where *w, json_object *c, const struct buf *tok,
		json_object **child, size_t *idx)
{
	*child = NULL;
	*idx = 0;
	if (json_object_is_type(c, json_type_object)) {
		if (tok_has_nul(tok))
			return 0;
		return json_object_object_get_ex(c, tok_str(tok), child) ? 1 : 0;
	}
	if (json_object_is_type(c, json_type_array)) {
		if (arr_index(w, tok, json_object_array_length(c), false, idx) < 0)
			return -1;
		*child = json_object_array_get_idx(c, *idx);
		return 1;
	}
	return 0;
}

/* Where a pointer leads: the container its last token applies to. */
struct loc {
	bool is_root;        /* the pointer is "" */
	json_object *parent; /* an object or array, unless is_root */
	size_t depth;        /* number of reference tokens */
};

/* Walk every token of w's pointer but the last, from root.  On return tok
 * holds the last token (decoded).  Returns 0, or -1 with e set when a
 * container on the way, or the parent itself, does not exist. */
static int loc_find(const struct where *w, json_object *root, struct buf *tok, struct loc *l)
{
	json_object *cur = root;
	size_t pos = 0;

	l->is_root = w->n == 0;
	l->parent = NULL;
	l->depth = 0;
	buf_reset(tok);
	if (l->is_root)
		return 0;
	for (;;) {
		json_object *child;
		size_t idx;
		int rc;

		pos++; /* the '/' */
		next_token(w->s, w->n, &pos, tok);
		if (tok->failed)
			return nomem(w->e);
		l->depth++;
		if (pos >= w->n)
			break;
		rc = step(w, cur, tok, &child, &idx);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
		cur = child;
	}
	if (!json_object_is_type(cur, json_type_object) && !json_object_is_type(cur, json_type_array))
		return where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
	l->parent = cur;
	return 0;
}

/* The value at l (which must exist). */
static int loc_get(const struct where *w, const struct loc *l, json_object *root,
		   const struct buf *tok, json_object **v)
{
	size_t idx;
	int rc;

	if (l->is_root) {
		*v = root;
		return 0;
	}
	rc = step(w, l->parent, tok, v, &idx);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
	return 0;
}

json_object *json_pointer_resolve(json_object *doc, const char *ptr, struct err *e)
{
	struct buf tok = BUF_INIT(0);
	struct where w = { e, "", "pointer", ptr ? ptr : "", ptr ? strlen(ptr) : 0, ERR_NOT_FOUND };
	json_object *v = NULL;
	const char *why;
	struct loc l;

	if (e)
		err_clear(e);
	if (!ptr) {
		err_set(e, ERR_INVALID, "no JSON Pointer given");
		goto out;
	}
	why = ptr_syntax(w.s, w.n);
	if (why) {
		where_fail(&w, ERR_INVALID, " is not a valid JSON Pointer: ", NULL, 0, why);
		goto out;
	}
	if (loc_find(&w, doc, &tok, &l) < 0)
		goto out;
	if (loc_get(&w, &l, doc, &tok, &v) < 0)
		v = NULL;
out:
	buf_release(&tok);
	return v;
}

/* ------------------------------------------------------------------ */
/* JSON equality                                                       */

/* A JSON number reduced to sign, significant digits and a power of ten:
 * 7.50 -> +75e-1, 100 -> +1e2, so equal values compare equal field by field. */
struct dec {
	bool neg, zero;
	int64_t exp;
	struct buf dig; /* no leading or trailing zeros (from `lead` on) */
	size_t lead;
};

/* Exponents are read up to about 10^15 and no further: 1e1000000000000000000
 * and 1e1000000000000000001 compare equal.  No double gets near either. */
#define EXP_SATURATE INT64_C(1000000000000000)

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Parse JSON number text into d.  Returns 0, or -1 for text that is not a
 * JSON number. */
static int dec_parse(const char *s, size_t n, struct dec *d)
{
	size_t i = 0, nfrac = 0;
	int64_t e = 0;
	bool eneg = false;

	d->neg = false;
	d->zero = false;
	d->lead = 0;
	if (i < n && s[i] == '-') {
		d->neg = true;
		i++;
	}
	if (i >= n || !is_digit(s[i]))
		return -1;
	while (i < n && is_digit(s[i]))
		buf_addch(&d->dig, s[i++]);
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !is_digit(s[i]))
			return -1;
		while (i < n && is_digit(s[i])) {
			buf_addch(&d->dig, s[i++]);
			nfrac++;
		}
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		if (i >= n || !is_digit(s[i]))
			return -1;
		for (; i < n && is_digit(s[i]); i++)
			if (e < EXP_SATURATE)
				e = e * 10 + (s[i] - '0');
	}
	if (i != n || d->dig.failed || nfrac > (size_t)INT32_MAX)
		return -1;
	d->exp = (eneg ? -e : e) - (int64_t)nfrac;
	while (d->dig.len > 0 && d->dig.data[d->dig.len - 1] == '0') {
		buf_truncate(&d->dig, d->dig.len - 1);
		d->exp++;
	}
	while (d->lead < d->dig.len && d->dig.data[d->lead] == '0')
		d->lead++;
	d->zero = d->lead == d->dig.len;
	return 0;
}

/* The text json-c serialises number n with: its original spelling for a
 * parsed double.  Serialising caches the text on the object, so a throwaway
 * copy is serialised and n itself is left as it was. */
static int num_text(json_object *n, struct buf *out)
{
	json_object *tmp = NULL;
	const char *s;
	size_t len = 0;

	if (json_object_is_type(n, json_type_int)) {
		int64_t v = json_object_get_int64(n);
		if (v < 0)
			buf_addf(out, "%" PRId64, v);
		else
			buf_addf(out, "%" PRIu64, json_object_get_uint64(n));
		return out->failed ? -1 : 0;
	}
	if (json_object_deep_copy(n, &tmp, NULL) < 0)
		return -1;
	s = json_object_to_json_string_length(tmp, JSON_C_TO_STRING_PLAIN, &len);
	if (s)
		buf_add(out, s, len);
	json_object_put(tmp);
	return s && !out->failed ? 0 : -1;
}

/* 1 when numbers a and b have the same value, 0 when not, -1 when memory
 * ran out before that could be told. */
static int num_equal(json_object *a, json_object *b)
{
	struct buf ta = BUF_INIT(0), tb = BUF_INIT(0);
	struct dec da = { false, false, 0, BUF_INIT(0), 0 };
	struct dec db = { false, false, 0, BUF_INIT(0), 0 };
	int eq;

	if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
		int64_t x = json_object_get_int64(a), y = json_object_get_int64(b);
		/* get_int64 clamps a uint64 above INT64_MAX to INT64_MAX */
		if (x < 0 || y < 0)
			return x == y;
		return json_object_get_uint64(a) == json_object_get_uint64(b);
	}
	if (num_text(a, &ta) < 0 || num_text(b, &tb) < 0) {
		eq = -1;
		goto out;
	}
	if (dec_parse(ta.data, ta.len, &da) < 0 || dec_parse(tb.data, tb.len, &db) < 0) {
		if (da.dig.failed || db.dig.failed) {
			eq = -1;
			goto out;
		}
		/* Not decimal text: NaN and Infinity, which json-c parses even
		 * in strict mode, or "1.".  The same text is the same value (so
		 * NaN tests equal to NaN, as a document must equal itself);
		 * otherwise the doubles decide. */
		eq = (ta.len == tb.len && memcmp(ta.data, tb.data, ta.len) == 0) ||
		     json_object_get_double(a) == json_object_get_double(b);
		goto out;
	}
	if (da.zero || db.zero) {
		eq = da.zero && db.zero; /* -0 == 0 */
		goto out;
	}
	eq = da.neg == db.neg && da.exp == db.exp &&
	     da.dig.len - da.lead == db.dig.len - db.lead &&
	     memcmp(da.dig.data + da.lead, db.dig.data + db.lead, da.dig.len - da.lead) == 0;
out:
	buf_release(&ta);
	buf_release(&tb);
	buf_release(&da.dig);
	buf_release(&db.dig);
	return eq;
}

static bool is_number(json_type t)
{
	return t == json_type_int || t == json_type_double;
}

/* JSON equality (see json_patch_equal): 1 equal, 0 not, -1 out of memory. */
static int equal(json_object *a, json_object *b)
{
	json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
	int eq = 1;

	if (is_number(ta) && is_number(tb))
		return num_equal(a, b);
	if (ta != tb)
		return 0;
	switch (ta) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_string: {
		int la = json_object_get_string_len(a), lb = json_object_get_string_len(b);
		return la == lb && memcmp(json_object_get_string(a), json_object_get_string(b),
					  (size_t)la) == 0;
	}
	case json_type_array: {
		size_t n = json_object_array_length(a);
		if (n != json_object_array_length(b))
			return 0;
		for (size_t i = 0; i < n && eq == 1; i++)
			eq = equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i));
		return eq;
	}
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return 0;
		/* json-c holds each name once, so equal counts and every name
		 * of a found in b means the same set of names */
		json_object_object_foreach(a, k, va) {
			json_object *vb = NULL;
			if (!json_object_object_get_ex(b, k, &vb))
				return 0;
			eq = equal(va, vb);
			if (eq != 1)
				break;
		}
		return eq;
	}
	default:
		return 0;
	}
}

bool json_patch_equal(json_object *a, json_object *b)
{
	return equal(a, b) == 1;
}

/* ------------------------------------------------------------------ */
/* applying a patch                                                    */

struct patch_ctx {
	json_object *root; /* the working copy, owned; becomes the result */
	struct err *e;
	size_t copy_left;  /* JSON values "copy" may still create */
	char prefix[80];   /* "patch operation 2 (replace): " */
	struct buf tok;    /* the last token of the pointer in hand */
};

struct op_def;

/* One operation, borrowed from the patch document. */
struct op {
	const struct op_def *def;
	const char *path, *from;
	size_t path_n, from_n;
	json_object *value; /* may be NULL: JSON null */
};

struct op_def {
	const char *name;
	bool needs_from, needs_value;
	int (*run)(struct patch_ctx *c, const struct op *op);
};

/* Nesting levels of v counted as json-c's parser counts them (a scalar or
 * an empty container is 1), looking no deeper than cap + 1 levels. */
static size_t levels(json_object *v, size_t cap)
{
	size_t deepest = 0;

	if (cap == 0)
		return 1;
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, child) {
			size_t d = levels(child, cap - 1);
			(void)k;
			if (d > deepest)
				deepest = d;
			if (deepest >= cap)
				break;
		}
	} else if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n && deepest < cap; i++) {
			size_t d = levels(json_object_array_get_idx(v, i), cap - 1);
			if (d > deepest)
				deepest = d;
		}
	}
	return 1 + deepest;
}

/* Number of JSON values in v, counting no further than limit + 1. */
static size_t count_values(json_object *v, size_t limit)
{
	size_t total = 1;

	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, child) {
			(void)k;
			if (total > limit)
				break;
			total += count_values(child, limit - total);
		}
	} else if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n && total <= limit; i++)
			total += count_values(json_object_array_get_idx(v, i), limit - total);
	}
	return total;
}

/* Deep copy that also copies JSON null (NULL), which json_object_deep_copy()
 * refuses.  Its other failure, a value carrying userdata it cannot copy,
 * never happens to trees json_parse_buf() built, so any failure is memory. */
static int copy_value(json_object *src, json_object **dst, struct err *e)
{
	*dst = NULL;
	if (src && json_object_deep_copy(src, dst, NULL) < 0) {
		*dst = NULL;
		return nomem(e);
	}
	return 0;
}

/* Insert val (owned) at idx <= length, moving later elements up; json-c
 * 0.16 has no json_object_array_insert_idx. */
static int array_insert(json_object *a, size_t idx, json_object *val)
{
	size_t len = json_object_array_length(a);
	json_object *last;

	if (idx == len) {
		if (json_object_array_add(a, val) < 0)
			goto fail;
		return 0;
	}
	/* Growing by one is the only step that can fail; after it, every
	 * element is shifted with an extra reference taken first, so putting
	 * it over its old neighbour drops only the neighbour's duplicate. */
	last = json_object_get(json_object_array_get_idx(a, len - 1));
	if (json_object_array_add(a, last) < 0) {
		json_object_put(last);
		goto fail;
	}
	for (size_t i = len - 1; i > idx; i--)
		json_object_array_put_idx(a, i, json_object_get(json_object_array_get_idx(a, i - 1)));
	json_object_array_put_idx(a, idx, val);
	return 0;
fail:
	json_object_put(val);
	return -1;
}

/* Would val at l nest deeper than JSON_PATCH_MAX_DEPTH? */
static int depth_check(const struct where *w, const struct loc *l, json_object *val)
{
	char tail[64];

	if (l->depth < JSON_PATCH_MAX_DEPTH &&
	    l->depth + levels(val, JSON_PATCH_MAX_DEPTH - l->depth) <= JSON_PATCH_MAX_DEPTH)
		return 0;
	snprintf(tail, sizeof(tail), " would nest the value deeper than %d levels",
		 JSON_PATCH_MAX_DEPTH);
	return where_fail(w, ERR_UNPROCESSABLE, "", NULL, 0, tail);
}

/* RFC 6902 4.1: put val (owned, consumed either way) at l. */
static int loc_add(struct patch_ctx *c, const struct where *w, const struct loc *l,
		   json_object *val)
{
	size_t idx;

	if (depth_check(w, l, val) < 0)
		goto fail;
	if (l->is_root) {
		json_object_put(c->root);
		c->root = val;
		return 0;
	}
	if (json_object_is_type(l->parent, json_type_object)) {
		if (tok_has_nul(&c->tok)) {
			where_fail(w, ERR_UNPROCESSABLE, ": member names cannot hold a NUL character",
				   NULL, 0, NULL);
			goto fail;
		}
		/* replaces (and frees) any member of that name, keeping its place */
		if (json_object_object_add(l->parent, buf_cstr(&c->tok), val) < 0) {
			nomem(c->e);
			goto fail;
		}
		return 0;
	}
	if (arr_index(w, &c->tok, json_object_array_length(l->parent), true, &idx) < 0)
		goto fail;
	if (array_insert(l->parent, idx, val) < 0)
		return nomem(c->e);
	return 0;
fail:
	json_object_put(val);
	return -1;
}

/* RFC 6902 4.2: remove the value at l, which must exist. */
static int loc_remove(struct patch_ctx *c, const struct where *w, const struct loc *l)
{
	json_object *v;
	size_t idx;
	int rc;

	if (l->is_root)
		return where_fail(w, ERR_UNPROCESSABLE, ": the whole document cannot be removed",
				  NULL, 0, NULL);
	rc = step(w, l->parent, &c->tok, &v, &idx);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
	if (json_object_is_type(l->parent, json_type_object))
		json_object_object_del(l->parent, buf_cstr(&c->tok));
	else
		json_object_array_del_idx(l->parent, idx, 1);
	return 0;
}

/* RFC 6902 4.3: put val (owned, consumed either way) in place of the value
 * at l, which must exist. */
static int loc_replace(struct patch_ctx *c, const struct where *w, const struct loc *l,
		       json_object *val)
{
	json_object *old;
	size_t idx;
	int rc;

	if (depth_check(w, l, val) < 0)
		goto fail;
	if (l->is_root) {
		json_object_put(c->root);
		c->root = val;
		return 0;
	}
	rc = step(w, l->parent, &c->tok, &old, &idx);
	if (rc == 0)
		where_fail(w, w->missing_code, " does not exist", NULL, 0, NULL);
	if (rc <= 0)
		goto fail;
	if (json_object_is_type(l->parent, json_type_object)) {
		if (json_object_object_add(l->parent, buf_cstr(&c->tok), val) < 0) {
			nomem(c->e);
			goto fail;
		}
	} else {
		/* idx < length: no growth, cannot fail; frees the old element */
		json_object_array_put_idx(l->parent, idx, val);
	}
	return 0;
fail:
	json_object_put(val);
	return -1;
}

static void where_path(struct patch_ctx *c, const struct op *op, struct where *w)
{
	*w = (struct where){ c->e, c->prefix, "path", op->path, op->path_n, ERR_UNPROCESSABLE };
}

static void where_from(struct patch_ctx *c, const struct op *op, struct where *w)
{
	*w = (struct where){ c->e, c->prefix, "from", op->from, op->from_n, ERR_UNPROCESSABLE };
}

static int op_add(struct patch_ctx *c, const struct op *op)
{
	struct where w;
	struct loc l;
	json_object *v;

	where_path(c, op, &w);
	if (loc_find(&w, c->root, &c->tok, &l) < 0 || copy_value(op->value, &v, c->e) < 0)
		return -1;
	return loc_add(c, &w, &l, v);
}

static int op_remove(struct patch_ctx *c, const struct op *op)
{
	struct where w;
	struct loc l;

	where_path(c, op, &w);
	if (loc_find(&w, c->root, &c->tok, &l) < 0)
		return -1;
	return loc_remove(c, &w, &l);
}

static int op_replace(struct patch_ctx *c, const struct op *op)
{
	struct where w;
	struct loc l;
	json_object *v;

	where_path(c, op, &w);
	if (loc_find(&w, c->root, &c->tok, &l) < 0 || copy_value(op->value, &v, c->e) < 0)
		return -1;
	return loc_replace(c, &w, &l, v);
}

/* RFC 6902 4.4: remove from "from", then add at "path". */
static int op_move(struct patch_ctx *c, const struct op *op)
{
	struct where wf, wp;
	struct loc l;
	json_object *v;

	where_from(c, op, &wf);
	where_path(c, op, &wp);
	if (op->path_n > op->from_n && memcmp(op->path, op->from, op->from_n) == 0 &&
	    op->path[op->from_n] == '/')
		return where_fail(&wp, ERR_UNPROCESSABLE, " is inside from ",
				  op->from, op->from_n, ": a value cannot be moved into itself");
	if (loc_find(&wf, c->root, &c->tok, &l) < 0 || loc_get(&wf, &l, c->root, &c->tok, &v) < 0)
		return -1;
	/* to the same place: nothing to do, once "from" is known to exist */
	if (op->path_n == op->from_n && memcmp(op->path, op->from, op->from_n) == 0)
		return 0;
	json_object_get(v); /* keep it alive through the remove */
	if (loc_remove(c, &wf, &l) < 0 || loc_find(&wp, c->root, &c->tok, &l) < 0) {
		json_object_put(v);
		return -1;
	}
	return loc_add(c, &wp, &l, v);
}

/* RFC 6902 4.5: add a copy of the value at "from" at "path". */
static int op_copy(struct patch_ctx *c, const struct op *op)
{
	struct where wf, wp;
	struct loc l;
	json_object *src, *v;
	size_t n;

	where_from(c, op, &wf);
	where_path(c, op, &wp);
	if (loc_find(&wf, c->root, &c->tok, &l) < 0 || loc_get(&wf, &l, c->root, &c->tok, &src) < 0)
		return -1;
	n = count_values(src, c->copy_left);
	if (n > c->copy_left) {
		char tail[96];
		snprintf(tail, sizeof(tail),
			 " copies more than %zu JSON values in all; the patch would grow the document too much",
			 JSON_PATCH_MAX_COPY_NODES);
		return where_fail(&wf, ERR_UNPROCESSABLE, "", NULL, 0, tail);
	}
	c->copy_left -= n;
	if (copy_value(src, &v, c->e) < 0)
		return -1;
	if (loc_find(&wp, c->root, &c->tok, &l) < 0) {
		json_object_put(v);
		return -1;
	}
	return loc_add(c, &wp, &l, v);
}

/* RFC 6902 4.6: the value at "path" must equal "value". */
static int op_test(struct patch_ctx *c, const struct op *op)
{
	struct where w;
	struct loc l;
	json_object *v;
	int eq;

	where_path(c, op, &w);
	if (loc_find(&w, c->root, &c->tok, &l) < 0 || loc_get(&w, &l, c->root, &c->tok, &v) < 0)
		return -1;
	eq = equal(v, op->value);
	if (eq < 0)
		return nomem(c->e);
	if (eq == 0)
		/* the values themselves may be patient data: not quoted */
		return where_fail(&w, ERR_UNPROCESSABLE, " does not hold the value tested for",
				  NULL, 0, NULL);
	return 0;
}

static const struct op_def op_defs[] = {
	/* name       from   value  */
	{ "add",     false, true,  op_add },
	{ "remove",  false, false, op_remove },
	{ "replace", false, true,  op_replace },
	{ "move",    true,  false, op_move },
	{ "copy",    true,  false, op_copy },
	{ "test",    false, true,  op_test },
};

/* Fetch string member `name` of item as a valid JSON Pointer. */
static int get_pointer(json_object *item, const char *name, const char *prefix,
		       const char **s, size_t *n, struct err *e)
{
	json_object *v = NULL;
	const char *why;

	if (!json_object_object_get_ex(item, name, &v))
		return err_set(e, ERR_INVALID, "%smissing \"%s\"", prefix, name);
	if (!json_object_is_type(v, json_type_string))
		return err_set(e, ERR_INVALID, "%s\"%s\" must be a string", prefix, name);
	*s = json_object_get_string(v);
	*n = (size_t)json_object_get_string_len(v);
	why = ptr_syntax(*s, *n);
	if (why) {
		struct where w = { e, prefix, name, *s, *n, ERR_INVALID };
		return where_fail(&w, ERR_INVALID, " is not a valid JSON Pointer: ", NULL, 0, why);
	}
	return 0;
}

/* Check patch operation i and take it apart into op; c->prefix is set to
 * name the operation in messages.  Returns 0 or -1 with ERR_INVALID. */
static int op_parse(struct patch_ctx *c, json_object *item, size_t i, struct op *op)
{
	json_object *v = NULL;
	const char *name;
	size_t name_n;

	memset(op, 0, sizeof(*op));
	snprintf(c->prefix, sizeof(c->prefix), "patch operation %zu: ", i);
	if (!json_object_is_type(item, json_type_object))
		return err_set(c->e, ERR_INVALID, "%snot a JSON object", c->prefix);
	if (!json_object_object_get_ex(item, "op", &v))
		return err_set(c->e, ERR_INVALID, "%smissing \"op\"", c->prefix);
	if (!json_object_is_type(v, json_type_string))
		return err_set(c->e, ERR_INVALID, "%s\"op\" must be a string", c->prefix);
	name = json_object_get_string(v);
	name_n = (size_t)json_object_get_string_len(v);
	for (size_t k = 0; k < sizeof(op_defs) / sizeof(op_defs[0]); k++)
		if (strlen(op_defs[k].name) == name_n && memcmp(op_defs[k].name, name, name_n) == 0)
			op->def = &op_defs[k];
	if (!op->def) {
		struct buf b = BUF_INIT(0);
		buf_addf(&b, "%sunknown op ", c->prefix);
		quote(&b, name, name_n);
		return set_from_buf(c->e, ERR_INVALID, &b);
	}
	snprintf(c->prefix, sizeof(c->prefix), "patch operation %zu (%s): ", i, op->def->name);
	if (get_pointer(item, "path", c->prefix, &op->path, &op->path_n, c->e) < 0)
		return -1;
	if (op->def->needs_from &&
	    get_pointer(item, "from", c->prefix, &op->from, &op->from_n, c->e) < 0)
		return -1;
	/* JSON null is a NULL value, so presence is asked separately */
	if (op->def->needs_value && !json_object_object_get_ex(item, "value", &op->value))
		return err_set(c->e, ERR_INVALID, "%smissing \"value\"", c->prefix);
	return 0;
}

int json_patch_apply_ex(json_object *doc, json_object *patch, json_object **out,
			struct err *e)
{
	struct patch_ctx c = { NULL, e, JSON_PATCH_MAX_COPY_NODES, "", BUF_INIT(0) };
	struct op op;
	size_t n;
	int rc = -1;

	*out = NULL;
	if (e)
		err_clear(e);
	if (!json_object_is_type(patch, json_type_array)) {
		err_set(e, ERR_INVALID, "patch document must be a JSON array of operations");
		goto out;
	}
	n = json_object_array_length(patch);
	/* every operation is checked before any runs, so a malformed patch is
	 * reported as such even when an earlier operation would fail */
	for (size_t i = 0; i < n; i++)
		if (op_parse(&c, json_object_array_get_idx(patch, i), i, &op) < 0)
			goto out;
	if (copy_value(doc, &c.root, e) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (op_parse(&c, json_object_array_get_idx(patch, i), i, &op) < 0 ||
		    op.def->run(&c, &op) < 0)
			goto out;
	}
	*out = c.root;
	c.root = NULL;
	rc = 0;
out:
	json_object_put(c.root); /* a failed patch's partial result */
	buf_release(&c.tok);
	return rc;
}

json_object *json_patch_apply(json_object *doc, json_object *patch, struct err *e)
{
	json_object *out = NULL;

	json_patch_apply_ex(doc, patch, &out, e);
	return out;
}
