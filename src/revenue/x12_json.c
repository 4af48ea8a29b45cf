/* x12_json.c - X12 as JSON (x12 parse) and JSON back to X12 (x12 encode).
 *
 * The JSON is the interchange as it is nested: interchanges > groups >
 * transaction sets > the guide's loops, each a container whose "content"
 * lists segments and containers in order; ISA, GS, ST and their trailers
 * are segments of the content they open and close.  Elements keep their
 * text exactly and carry the guide's ids and names; composites list their
 * components, repeated elements their repetitions.  With the delimiters and
 * the CR/LF after each terminator ("suffix", written only where it
 * changes), the encoder writes back the same bytes.
 *
 * The writer streams: it is a sink of x12_process, flushing every 64 KiB. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "revenue/x12.h"
#include "revenue/x12_int.h"
#include "base/banned.h"

#define FLUSH_AT ((size_t)64 << 10)
#define MAX_NEST 64

struct x12_json {
	FILE *out;
	struct buf b;
	bool first[MAX_NEST];   /* no item written yet at this depth */
	int depth;
	char suffix[8];         /* the last suffix written */
	size_t suffix_len;
	bool write_failed;
};

static void flush(struct x12_json *j, bool force)
{
	if (j->b.len == 0 || (!force && j->b.len < FLUSH_AT))
		return;
	if (j->b.failed || fwrite(j->b.data, 1, j->b.len, j->out) != j->b.len)
		j->write_failed = true;
	buf_reset(&j->b);
}

static void item(struct x12_json *j)
{
	if (!j->first[j->depth])
		buf_addch(&j->b, ',');
	j->first[j->depth] = false;
}

/* A JSON string of X12 bytes.  X12 is ASCII; a byte above 0x7f is written
 * as \u0080-\u00ff (its Latin-1 reading) so that the JSON is always valid
 * UTF-8, and the encoder turns those code points back into the same bytes. */
static void str(struct buf *b, const char *s, size_t n)
{
	size_t run = 0;

	buf_addch(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80)
			continue;
		buf_add_json_str(b, s + run, i - run);
		buf_addf(b, "\\u%04x", c);
		run = i + 1;
	}
	buf_add_json_str(b, s + run, n - run);
	buf_addch(b, '"');
}

static void push(struct x12_json *j)
{
	if (j->depth < MAX_NEST - 1)
		j->depth++;
	j->first[j->depth] = true;
}

struct x12_json *x12_json_new(FILE *out)
{
	struct x12_json *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->out = out;
	buf_init(&j->b, 0);
	buf_addstr(&j->b, "{\"interchanges\":[");
	j->first[0] = true;
	return j;
}

int x12_json_finish(struct x12_json *j, struct err *e)
{
	buf_addstr(&j->b, "]}\n");
	flush(j, true);
	if (fflush(j->out) != 0 || j->write_failed)
		return err_set(e, ERR_IO, "cannot write the JSON output");
	return 0;
}

void x12_json_free(struct x12_json *j)
{
	if (!j)
		return;
	buf_release(&j->b);
	free(j);
}

static void delim(struct buf *b, const char *name, char c, bool comma)
{
	if (comma)
		buf_addch(b, ',');
	buf_addf(b, "\"%s\":", name);
	if (c)
		str(b, &c, 1);
	else
		buf_addstr(b, "null");
}

static void j_open(void *u, int kind, const char *id, size_t id_len, const char *name,
		   const struct x12_delims *d, const char *guide)
{
	static const char *const keys[] = { "interchange", "group", "transaction", "loop" };
	struct x12_json *j = u;

	item(j);
	buf_addf(&j->b, "{\"%s\":", keys[kind]);
	str(&j->b, id, id_len);
	if (guide) {
		buf_addstr(&j->b, ",\"guide\":");
		str(&j->b, guide, strlen(guide));
	}
	if (name && *name) {
		buf_addstr(&j->b, ",\"name\":");
		str(&j->b, name, strlen(name));
	}
	if (d) {
		buf_addstr(&j->b, ",\"delimiters\":{");
		delim(&j->b, "element", d->ele, false);
		delim(&j->b, "repetition", d->rep, true);
		delim(&j->b, "component", d->comp, true);
		delim(&j->b, "segment", d->seg, true);
		buf_addch(&j->b, '}');
		j->suffix_len = 0;
	}
	buf_addstr(&j->b, ",\"content\":[");
	push(j);
}

static void j_close(void *u, int kind)
{
	struct x12_json *j = u;

	(void)kind;
	buf_addstr(&j->b, "]}");
	if (j->depth > 0)
		j->depth--;
	flush(j, false);
}

static void head(struct buf *b, const struct x12_node *nd, const char *seg, unsigned i,
		 const char *sep)
{
	buf_addstr(b, "{\"id\":");
	if (nd) {
		str(b, nd->xid, strlen(nd->xid));
		buf_addstr(b, ",\"name\":");
		str(b, nd->name, strlen(nd->name));
	} else {
		char id[32];
		int n = snprintf(id, sizeof(id), "%s%s%02u", seg, sep, i);

		str(b, id, n > 0 && (size_t)n < sizeof(id) ? (size_t)n : 0);
	}
}

/* v as components (the composite node nd, may be NULL). */
static void components(struct buf *b, const struct x12_node *m, const struct x12_node *nd,
		       const char *id, unsigned ele, const char *v, size_t n, char comp)
{
	const char *p = v, *end = v + n;
	int32_t sub = nd && nd->kind == X12_N_COMP ? nd->child : -1;
	unsigned k = 0;
	char pre[16];

	snprintf(pre, sizeof(pre), "%s%02u", id, ele);
	buf_addstr(b, "\"components\":[");
	for (;;) {
		const char *q = memchr(p, comp, (size_t)(end - p));
		size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

		k++;
		if (k > 1)
			buf_addch(b, ',');
		head(b, sub >= 0 ? &m[sub] : NULL, pre, k, "-");
		buf_addstr(b, ",\"value\":");
		str(b, p, len);
		buf_addch(b, '}');
		if (sub >= 0)
			sub = m[sub].next;
		if (!q)
			break;
		p = q + 1;
	}
	buf_addch(b, ']');
}

static void value(struct buf *b, const struct x12_node *m, const struct x12_node *nd,
		  const char *id, unsigned ele, const char *v, size_t n, char comp)
{
	if (comp && memchr(v, comp, n)) {
		components(b, m, nd, id, ele, v, n, comp);
	} else {
		buf_addstr(b, "\"value\":");
		str(b, v, n);
	}
}

/* The map a segment node belongs to, for its children's names. */
static const struct x12_node *nodes_of(const struct x12_node *nd)
{
	if (!nd)
		return NULL;
	if (nd >= x12_control.nodes && nd < x12_control.nodes + x12_control.n_nodes)
		return x12_control.nodes;
	for (size_t i = 0; i < x12_n_maps; i++)
		if (nd >= x12_maps[i].nodes && nd < x12_maps[i].nodes + x12_maps[i].n_nodes)
			return x12_maps[i].nodes;
	return NULL;
}

static void j_segment(void *u, const struct x12_seg *s, const struct x12_node *nd,
		      const struct x12_delims *d)
{
	struct x12_json *j = u;
	struct buf *b = &j->b;
	const struct x12_node *m = nodes_of(nd);
	int32_t child = nd && m ? nd->child : -1;
	bool raw = memcmp(s->id, "ISA", 4) == 0; /* ISA11 and ISA16 are delimiters */
	char id[4];
	size_t idn = s->sep[1];

	memset(id, 0, sizeof(id));
	memcpy(id, s->id, 3);
	item(j);
	buf_addstr(b, "{\"segment\":");
	str(b, s->p, idn);
	if (nd && nd->name[0]) {
		buf_addstr(b, ",\"name\":");
		str(b, nd->name, strlen(nd->name));
	}
	if (s->suffix_len != j->suffix_len || memcmp(s->suffix, j->suffix, s->suffix_len) != 0) {
		buf_addstr(b, ",\"suffix\":");
		str(b, s->suffix, s->suffix_len);
		j->suffix_len = s->suffix_len < sizeof(j->suffix) ? s->suffix_len : sizeof(j->suffix);
		memcpy(j->suffix, s->suffix, j->suffix_len);
	}
	buf_addstr(b, ",\"elements\":[");
	for (unsigned i = 1; i <= s->n; i++) {
		size_t n;
		const char *v = x12_ele(s, i, &n);
		const struct x12_node *en = child >= 0 ? &m[child] : NULL;

		if (i > 1)
			buf_addch(b, ',');
		head(b, en, id[0] ? id : "X", i, "");
		buf_addch(b, ',');
		if (!raw && d->rep && memchr(v, d->rep, n)) {
			const char *p = v, *end = v + n;

			buf_addstr(b, "\"repeats\":[");
			for (bool first = true;; first = false) {
				const char *q = memchr(p, d->rep, (size_t)(end - p));
				size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

				if (!first)
					buf_addch(b, ',');
				buf_addch(b, '{');
				value(b, m, en, id, i, p, len, d->comp);
				buf_addch(b, '}');
				if (!q)
					break;
				p = q + 1;
			}
			buf_addch(b, ']');
		} else {
			value(b, m, en, id, i, v, n, raw ? 0 : d->comp);
		}
		buf_addch(b, '}');
		if (child >= 0)
			child = m[child].next;
	}
	buf_addstr(b, "]}");
	flush(j, false);
}

void x12_json_sink(struct x12_json *j, struct x12_sink *sink)
{
	sink->u = j;
	sink->open = j_open;
	sink->segment = j_segment;
	sink->close = j_close;
}

/* ---- JSON back to X12 ---- */

struct enc {
	struct x12_delims d;
	char suffix[8];
	size_t suffix_len;
	bool ours;
	struct buf *out;
	struct err *e;
	char path[160];
	/* counts for the trailers */
	uint64_t tx_segs;
	unsigned n_tx, n_groups;
	char st02[16], gs06[16], isa13[16];
	bool in_tx;
};

static int enc_fail(struct enc *x, const char *what)
{
	err_set(x->e, ERR_INVALID, "%s: %s", x->path[0] ? x->path : "(top)", what);
	err_expr(x->e, x->path);
	return -1;
}

/* Text of a value item: a string, or an object with "value". */
static const char *text_of(json_object *o)
{
	if (json_object_is_type(o, json_type_string))
		return json_object_get_string(o);
	if (json_object_is_type(o, json_type_object))
		return json_get_str(o, "value");
	return NULL;
}

static int put_text(struct enc *x, const char *t)
{
	for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
		char c = (char)*p;

		if (c == x->d.ele || c == x->d.seg || c == x->d.comp || (x->d.rep && c == x->d.rep))
			return enc_fail(x, "a value holds a delimiter");
		/* U+0080-U+00FF is the byte it stands for (see str()) */
		if ((p[0] == 0xc2 || p[0] == 0xc3) && (p[1] & 0xc0) == 0x80) {
			buf_addch(x->out, (char)(((p[0] & 0x1f) << 6) | (p[1] & 0x3f)));
			p++;
			continue;
		}
		buf_addch(x->out, c);
	}
	return 0;
}

static int put_value(struct enc *x, json_object *o)
{
	json_object *comps = json_object_is_type(o, json_type_object) ? json_get_arr(o, "components") :
									 NULL;
	const char *t;

	if (comps) {
		size_t n = json_object_array_length(comps);

		for (size_t k = 0; k < n; k++) {
			t = text_of(json_object_array_get_idx(comps, k));
			if (!t)
				return enc_fail(x, "a component is neither a string nor {\"value\": ...}");
			if (k)
				buf_addch(x->out, x->d.comp);
			if (put_text(x, t) < 0)
				return -1;
		}
		return 0;
	}
	t = text_of(o);
	if (!t)
		return enc_fail(x, "an element is neither a string nor an object with value, "
				   "components or repeats");
	return put_text(x, t);
}

static int put_segment(struct enc *x, json_object *seg)
{
	const char *id = json_get_str(seg, "segment");
	const char *suffix = json_get_str(seg, "suffix");
	json_object *els = json_get_arr(seg, "elements");
	size_t n = els ? json_object_array_length(els) : 0;
	bool isa, se, ge, iea;
	char num[24];

	if (!id || !*id || strlen(id) > 3)
		return enc_fail(x, "\"segment\" must be a segment id of 2 or 3 characters");
	if (json_get(seg, "elements") && !els)
		return enc_fail(x, "\"elements\" must be an array");
	isa = strcmp(id, "ISA") == 0;
	se = strcmp(id, "SE") == 0;
	ge = strcmp(id, "GE") == 0;
	iea = strcmp(id, "IEA") == 0;
	if (suffix && !x->ours) {
		size_t sl = strlen(suffix);

		if (sl >= sizeof(x->suffix) || strspn(suffix, "\r\n") != sl)
			return enc_fail(x, "\"suffix\" may hold only up to 7 CR and LF characters");
		memcpy(x->suffix, suffix, sl);
		x->suffix_len = sl;
	}
	if (x->in_tx)
		x->tx_segs++;
	if (put_text(x, id) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_object *el = json_object_array_get_idx(els, i);
		json_object *reps = json_object_is_type(el, json_type_object) ? json_get_arr(el, "repeats")
									       : NULL;

		buf_addch(x->out, x->d.ele);
		/* trailers: counts and control numbers recomputed */
		if ((se || ge || iea) && i <= 1) {
			if (i == 0)
				snprintf(num, sizeof(num), "%llu",
					 (unsigned long long)(se ? x->tx_segs : ge ? x->n_tx : x->n_groups));
			buf_addstr(x->out, i == 0 ? num : se ? x->st02 : ge ? x->gs06 : x->isa13);
			continue;
		}
		if (isa && (i == 10 || i == 15)) {
			const char *t = text_of(el);

			if (!t || strlen(t) != 1)
				return enc_fail(x, "ISA11 and ISA16 must be one character");
			buf_addch(x->out, x->ours ? (i == 10 ? x->d.rep : x->d.comp) : t[0]);
			continue;
		}
		if (isa && i == 12) {
			const char *t = text_of(el);

			snprintf(x->isa13, sizeof(x->isa13), "%s", t ? t : "");
		}
		if (reps) {
			size_t nr = json_object_array_length(reps);

			if (!x->d.rep)
				return enc_fail(x, "repetitions need a repetition separator");
			for (size_t r = 0; r < nr; r++) {
				if (r)
					buf_addch(x->out, x->d.rep);
				if (put_value(x, json_object_array_get_idx(reps, r)) < 0)
					return -1;
			}
			continue;
		}
		if (put_value(x, el) < 0)
			return -1;
	}
	if (strcmp(id, "ST") == 0 && n >= 2) {
		const char *t = text_of(json_object_array_get_idx(els, 1));

		snprintf(x->st02, sizeof(x->st02), "%s", t ? t : "");
	}
	if (strcmp(id, "GS") == 0 && n >= 6) {
		const char *t = text_of(json_object_array_get_idx(els, 5));

		snprintf(x->gs06, sizeof(x->gs06), "%s", t ? t : "");
	}
	buf_addch(x->out, x->d.seg);
	buf_add(x->out, x->suffix, x->suffix_len);
	return 0;
}

static int put_content(struct enc *x, json_object *o, int depth);

static int put_container(struct enc *x, json_object *o, int depth)
{
	json_object *content = json_get_arr(o, "content");
	bool tx = json_get(o, "transaction") != NULL, group = json_get(o, "group") != NULL;
	int rc;

	if (!content)
		return enc_fail(x, "expected a segment or a container with \"content\"");
	if (depth > 32)
		return enc_fail(x, "nested too deeply");
	if (tx) {
		x->in_tx = true;
		x->tx_segs = 0;
		x->n_tx++;
	}
	if (group) {
		x->n_tx = 0;
		x->n_groups++;
	}
	rc = put_content(x, content, depth + 1);
	if (tx)
		x->in_tx = false;
	return rc;
}

static int put_content(struct enc *x, json_object *arr, int depth)
{
	size_t n = json_object_array_length(arr), plen = strlen(x->path);

	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		int rc;

		snprintf(x->path + plen, sizeof(x->path) - plen, ".content[%zu]", i);
		if (!json_object_is_type(it, json_type_object))
			return enc_fail(x, "expected an object");
		if (json_get(it, "segment"))
			rc = put_segment(x, it);
		else
			rc = put_container(x, it, depth);
		if (rc < 0)
			return -1;
	}
	x->path[plen] = 0;
	return 0;
}

static int one_char(struct enc *x, json_object *d, const char *key, char *out, bool may_be_null)
{
	json_object *v = json_get(d, key);
	const char *t;

	if (!v && may_be_null) {
		*out = 0;
		return 0;
	}
	if (v && json_object_is_type(v, json_type_null) && may_be_null) {
		*out = 0;
		return 0;
	}
	t = v ? text_of(v) : NULL;
	if (!t || strlen(t) != 1)
		return enc_fail(x, "each delimiter must be one character");
	*out = t[0];
	return 0;
}

int x12_encode_json(const char *json, size_t len, bool our_delims, struct buf *out, struct err *e)
{
	json_object *root = json_parse_buf(json, len, 0, e), *ics;
	struct enc x;
	int rc = -1;

	if (!root)
		return -1;
	memset(&x, 0, sizeof(x));
	x.out = out;
	x.e = e;
	x.ours = our_delims;
	ics = json_get_arr(root, "interchanges");
	if (!ics) {
		enc_fail(&x, "expected {\"interchanges\": [...]}");
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(ics); i++) {
		json_object *ic = json_object_array_get_idx(ics, i), *d;

		snprintf(x.path, sizeof(x.path), "interchanges[%zu]", i);
		d = json_object_is_type(ic, json_type_object) ? json_get_obj(ic, "delimiters") : NULL;
		if (our_delims || !d) {
			x.d = (struct x12_delims){ '*', '^', ':', '~' };
			memcpy(x.suffix, "\n", 1);
			x.suffix_len = 1;
		} else {
			if (one_char(&x, d, "element", &x.d.ele, false) < 0 ||
			    one_char(&x, d, "repetition", &x.d.rep, true) < 0 ||
			    one_char(&x, d, "component", &x.d.comp, false) < 0 ||
			    one_char(&x, d, "segment", &x.d.seg, false) < 0)
				goto out;
			x.suffix_len = 0;
		}
		x.n_groups = 0;
		if (put_container(&x, ic, 0) < 0)
			goto out;
	}
	if (out->failed) {
		err_set(e, ERR_TOO_LARGE, "the X12 output is too large");
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}
