/* gen_x12.c - build-time generator: the X12 implementation-guide tables.
 *
 *   gen_x12 DATA_DIR OUT.c
 *
 * Reads DATA_DIR/maps.txt (one guide a line: ST01 GS01 GS08-prefix FILE),
 * the pyx12-format XML maps it names, x12.control.00501.xml (the envelope),
 * dataele.xml (element types and lengths) and codes.xml (external code
 * lists), and writes the tables of src/revenue/x12_int.h.  Uses libxml2,
 * linked into this tool only: the product never parses XML.
 *
 * Any surprise in the maps (an unknown data element, a syntax note that does
 * not parse, a loop without a first segment) stops the build with the file
 * and the node: a wrong table must not be generated silently. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/banned.h"

enum { N_LOOP = 1, N_WRAP, N_SEG, N_ELE, N_COMP };

struct gnode {
	char *xid, *name;
	int kind;
	char usage;
	unsigned pos, repeat;
	int parent, child, next, last;
	unsigned ord, nkids;
	char seg[4];
	int dele;
	unsigned codes, ncodes, syn, nsyn;
	unsigned match, match_comp;
	int match_node;
	unsigned req, nreq;
	unsigned kids;
};

struct gmap {
	char st[8], fic[8], guide[24];
	char *name;
	struct gnode *n;
	size_t len, cap;
	unsigned max_kids, depth;
};

struct dele {
	char *num;
	int type, decimals, min, max;
};

static struct dele *deles;
static size_t n_deles;
static char **codes;
static size_t n_codes, cap_codes;
static unsigned (*syns)[10]; /* kind, n, ele[8] */
static int *reqs;            /* required children of loops, by loop */
static size_t n_reqs;
static int *kids;            /* children of loops, in order, by loop */
static char (*kid_ids)[4];   /* and their segment ids */
static size_t n_kids;
static size_t n_syns, cap_syns;
static const char *cur_file;

struct ext { char *id; unsigned start, n; };
static struct ext *exts;
static size_t n_exts;

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gen_x12: %s: ", cur_file ? cur_file : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xrealloc(NULL, n);

	memcpy(p, s, n);
	return p;
}

/* Text of the first child element named tag, trimmed; NULL when absent. */
static char *child_text(xmlNode *n, const char *tag)
{
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, tag) != 0)
			continue;
		xmlChar *t = xmlNodeGetContent(c);
		char *s = xstrdup(t ? (const char *)t : "");
		char *b = s, *e;

		xmlFree(t);
		while (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r')
			b++;
		e = b + strlen(b);
		while (e > b && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		*e = 0;
		memmove(s, b, (size_t)(e - b) + 1);
		return s;
	}
	return NULL;
}

static xmlNode *child_elem(xmlNode *n, const char *tag)
{
	for (xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, tag) == 0)
			return c;
	return NULL;
}

static int type_of(const char *t, int *decimals)
{
	*decimals = 0;
	if (strcmp(t, "AN") == 0)
		return 1;
	if (strcmp(t, "ID") == 0)
		return 2;
	if (t[0] == 'N' && t[1] >= '0' && t[1] <= '9' && !t[2]) {
		*decimals = t[1] - '0';
		return 3;
	}
	if (strcmp(t, "R") == 0)
		return 4;
	if (strcmp(t, "DT") == 0)
		return 5;
	if (strcmp(t, "TM") == 0)
		return 6;
	if (strcmp(t, "B") == 0)
		return 7;
	die("unknown data type '%s'", t);
	return 0;
}

static void load_deles(const char *dir)
{
	char path[4096];
	xmlDoc *doc;

	snprintf(path, sizeof(path), "%s/dataele.xml", dir);
	cur_file = path;
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	if (!doc)
		die("cannot parse");
	for (xmlNode *c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "data_ele") != 0)
			continue;
		xmlChar *num = xmlGetProp(c, (const xmlChar *)"ele_num");
		xmlChar *ty = xmlGetProp(c, (const xmlChar *)"data_type");
		xmlChar *mn = xmlGetProp(c, (const xmlChar *)"min_len");
		xmlChar *mx = xmlGetProp(c, (const xmlChar *)"max_len");

		if (!num || !ty || !mn || !mx)
			die("data_ele without ele_num, data_type, min_len or max_len");
		deles = xrealloc(deles, (n_deles + 1) * sizeof(*deles));
		deles[n_deles].num = xstrdup((const char *)num);
		deles[n_deles].type = type_of((const char *)ty, &deles[n_deles].decimals);
		deles[n_deles].min = atoi((const char *)mn);
		deles[n_deles].max = atoi((const char *)mx);
		n_deles++;
		xmlFree(num);
		xmlFree(ty);
		xmlFree(mn);
		xmlFree(mx);
	}
	xmlFreeDoc(doc);
}

static int find_dele(const char *num)
{
	for (size_t i = 0; i < n_deles; i++)
		if (strcmp(deles[i].num, num) == 0)
			return (int)i;
	return -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append a sorted, de-duplicated code set to the pool; returns its start. */
static unsigned add_codes(char **set, size_t n, unsigned *count)
{
	unsigned start = (unsigned)n_codes;

	qsort(set, n, sizeof(*set), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(set[i], set[i - 1]) == 0) {
			free(set[i]);
			continue;
		}
		if (n_codes == cap_codes) {
			cap_codes = cap_codes ? cap_codes * 2 : 4096;
			codes = xrealloc(codes, cap_codes * sizeof(*codes));
		}
		codes[n_codes++] = set[i];
	}
	*count = (unsigned)n_codes - start;
	return start;
}

static void collect_codes(xmlNode *vc, char ***set, size_t *n)
{
	for (xmlNode *c = vc->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "code") != 0)
			continue;
		xmlChar *t = xmlNodeGetContent(c);

		*set = xrealloc(*set, (*n + 1) * sizeof(**set));
		(*set)[(*n)++] = xstrdup(t ? (const char *)t : "");
		xmlFree(t);
	}
}

static void load_external(const char *dir)
{
	char path[4096];
	xmlDoc *doc;

	snprintf(path, sizeof(path), "%s/codes.xml", dir);
	cur_file = path;
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	if (!doc)
		die("cannot parse");
	for (xmlNode *c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "codeset") != 0)
			continue;
		char *id = child_text(c, "id");
		char **set = NULL;
		size_t n = 0;

		for (xmlNode *v = c->children; v; v = v->next)
			if (v->type == XML_ELEMENT_NODE && strcmp((const char *)v->name, "version") == 0)
				collect_codes(v, &set, &n);
		if (!id)
			die("codeset without id");
		exts = xrealloc(exts, (n_exts + 1) * sizeof(*exts));
		exts[n_exts].id = id;
		exts[n_exts].start = add_codes(set, n, &exts[n_exts].n);
		n_exts++;
		free(set);
	}
	xmlFreeDoc(doc);
}

static unsigned parse_repeat(const char *s, unsigned dflt)
{
	if (!s || !*s)
		return dflt;
	if (s[0] == '>')
		return 0;
	return (unsigned)strtoul(s, NULL, 10);
}

static unsigned add_syntax(const char *s)
{
	size_t len = strlen(s);
	unsigned k = (unsigned)n_syns;

	if (len < 5 || (len - 1) % 2 != 0 || (len - 1) / 2 > 8 || !strchr("PRECL", s[0]))
		die("syntax note '%s' not understood", s);
	if (n_syns == cap_syns) {
		cap_syns = cap_syns ? cap_syns * 2 : 512;
		syns = xrealloc(syns, cap_syns * sizeof(*syns));
	}
	memset(syns[k], 0, sizeof(syns[k]));
	syns[k][0] = (unsigned char)s[0];
	syns[k][1] = (unsigned)(len - 1) / 2;
	for (unsigned i = 0; i < syns[k][1]; i++) {
		char d[3] = { s[1 + 2 * i], s[2 + 2 * i], 0 };

		syns[k][2 + i] = (unsigned)atoi(d);
		if (syns[k][2 + i] == 0)
			die("syntax note '%s' names element 0", s);
	}
	n_syns++;
	return k;
}

static int add_node(struct gmap *m, int parent)
{
	struct gnode *g;

	if (m->len == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->n = xrealloc(m->n, m->cap * sizeof(*m->n));
	}
	g = &m->n[m->len];
	memset(g, 0, sizeof(*g));
	g->parent = parent;
	g->child = g->next = g->last = -1;
	g->dele = -1;
	g->match_node = -1;
	if (parent >= 0) {
		struct gnode *p = &m->n[parent];

		g->ord = p->nkids++;
		if (p->last >= 0)
			m->n[p->last].next = (int)m->len;
		else
			p->child = (int)m->len;
		p->last = (int)m->len;
		if (p->nkids > m->max_kids)
			m->max_kids = p->nkids;
	}
	return (int)m->len++;
}

static void fill_codes(struct gnode *g, xmlNode *x)
{
	xmlNode *vc = child_elem(x, "valid_codes");
	xmlChar *ext;
	char **set = NULL;
	size_t n = 0;

	if (!vc)
		return;
	ext = xmlGetProp(vc, (const xmlChar *)"external");
	if (ext) {
		size_t i;

		for (i = 0; i < n_exts; i++)
			if (strcmp(exts[i].id, (const char *)ext) == 0)
				break;
		if (i == n_exts)
			die("%s: unknown external code list '%s'", g->xid, (const char *)ext);
		g->codes = exts[i].start;
		g->ncodes = exts[i].n;
		xmlFree(ext);
		return;
	}
	collect_codes(vc, &set, &n);
	if (n)
		g->codes = add_codes(set, n, &g->ncodes);
	free(set);
}

static int build(struct gmap *m, xmlNode *x, int parent, unsigned depth);

static void build_children(struct gmap *m, xmlNode *x, int idx, unsigned depth)
{
	for (xmlNode *c = x->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			build(m, c, idx, depth);
}

/* Does the loop hold any segment or loop?  (The maps keep empty table
 * wrappers such as an unused FOOTER: they are left out.) */
static int has_content(xmlNode *x)
{
	for (xmlNode *c = x->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && (strcmp((const char *)c->name, "segment") == 0 ||
						    strcmp((const char *)c->name, "loop") == 0))
			return 1;
	return 0;
}

static int build(struct gmap *m, xmlNode *x, int parent, unsigned depth)
{
	const char *tag = (const char *)x->name;
	xmlChar *xid;
	char *s;
	int idx, kind;

	if (strcmp(tag, "loop") == 0) {
		xmlChar *t = xmlGetProp(x, (const xmlChar *)"type");

		kind = t && strcmp((const char *)t, "wrapper") == 0 ? N_WRAP : N_LOOP;
		xmlFree(t);
		if (!has_content(x))
			return -1;
	} else if (strcmp(tag, "segment") == 0) {
		kind = N_SEG;
	} else if (strcmp(tag, "element") == 0) {
		kind = N_ELE;
	} else if (strcmp(tag, "composite") == 0) {
		kind = N_COMP;
	} else {
		return -1; /* name, usage, pos, ...: read by the parent */
	}
	idx = add_node(m, parent);
	xid = xmlGetProp(x, (const xmlChar *)"xid");
	if (xid) {
		m->n[idx].xid = xstrdup((const char *)xid);
		xmlFree(xid);
	} else if ((kind == N_ELE || kind == N_COMP) && parent >= 0) {
		/* a few maps leave out a composite's xid: it is the segment's id
		 * and the sequence, as everywhere else */
		char id[64], *seq = child_text(x, "seq");
		const struct gnode *p = &m->n[parent];

		if (!seq)
			die("a %s without xid or seq", tag);
		snprintf(id, sizeof(id), "%s%s%s", p->xid, p->kind == N_COMP ? "-" : "", seq);
		m->n[idx].xid = xstrdup(id);
		free(seq);
	} else {
		die("a %s without xid", tag);
	}
	m->n[idx].kind = kind;
	m->n[idx].name = child_text(x, "name");
	if (!m->n[idx].name)
		m->n[idx].name = xstrdup("");
	s = child_text(x, "usage");
	m->n[idx].usage = s && *s ? s[0] : 'S';
	free(s);
	s = child_text(x, kind == N_ELE || kind == N_COMP ? "seq" : "pos");
	m->n[idx].pos = s ? (unsigned)atoi(s) : 0;
	free(s);
	if (kind == N_SEG) {
		s = child_text(x, "max_use");
		m->n[idx].repeat = parse_repeat(s, 1);
		free(s);
		if (strlen(m->n[idx].xid) > 3)
			die("segment id '%s' too long", m->n[idx].xid);
		memcpy(m->n[idx].seg, m->n[idx].xid, strlen(m->n[idx].xid));
	} else {
		s = child_text(x, "repeat");
		m->n[idx].repeat = parse_repeat(s, 1);
		free(s);
	}
	if (kind == N_ELE || kind == N_COMP) {
		s = child_text(x, "data_ele");
		if (!s)
			die("%s without data_ele", m->n[idx].xid);
		if (kind == N_ELE) {
			m->n[idx].dele = find_dele(s);
			if (m->n[idx].dele < 0)
				die("%s: unknown data element %s", m->n[idx].xid, s);
		}
		free(s);
		fill_codes(&m->n[idx], x);
	}
	if (kind == N_SEG) {
		unsigned first = (unsigned)n_syns;

		for (xmlNode *c = x->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "syntax") != 0)
				continue;
			xmlChar *t = xmlNodeGetContent(c);

			add_syntax((const char *)t);
			xmlFree(t);
		}
		m->n[idx].syn = first;
		m->n[idx].nsyn = (unsigned)n_syns - first;
	}
	if (kind == N_LOOP || kind == N_WRAP) {
		if (depth + 1 > m->depth)
			m->depth = depth + 1;
	}
	build_children(m, x, idx, kind == N_LOOP || kind == N_WRAP ? depth + 1 : depth);
	return idx;
}

/* Second pass: first segments of loops, and the element telling same-id
 * segments apart. */
static void finish(struct gmap *m)
{
	for (size_t i = m->len; i-- > 0;) {
		struct gnode *g = &m->n[i];

		if (g->kind == N_LOOP || g->kind == N_WRAP) {
			int c = g->child;

			g->req = (unsigned)n_reqs;
			for (int k = c; k >= 0; k = m->n[k].next) {
				if (m->n[k].usage != 'R' || m->n[k].kind == N_ELE || m->n[k].kind == N_COMP)
					continue;
				reqs = xrealloc(reqs, (n_reqs + 1) * sizeof(*reqs));
				reqs[n_reqs++] = k;
			}
			g->nreq = (unsigned)n_reqs - g->req;
			g->kids = (unsigned)n_kids;
			for (int k = c; k >= 0; k = m->n[k].next) {
				kids = xrealloc(kids, (n_kids + 1) * sizeof(*kids));
				kid_ids = xrealloc(kid_ids, (n_kids + 1) * sizeof(*kid_ids));
				kids[n_kids] = k;
				memcpy(kid_ids[n_kids], m->n[k].seg, 4);
				n_kids++;
			}

			if (c < 0)
				die("loop %s is empty", g->xid);
			if (m->n[c].kind != N_SEG && m->n[c].kind != N_LOOP && m->n[c].kind != N_WRAP)
				die("loop %s does not begin with a segment or loop", g->xid);
			memcpy(g->seg, m->n[c].seg, 4);
		}
		if (g->kind == N_SEG) {
			int want = strcmp(g->seg, "HL") == 0 ? 3 : 1;
			int c = g->child;

			for (int k = 1; c >= 0 && k < want; k++)
				c = m->n[c].next;
			if (c < 0)
				continue;
			if (m->n[c].kind == N_COMP) {
				int f = m->n[c].child;

				if (m->n[c].usage == 'R' && f >= 0 && m->n[f].ncodes > 0 &&
				    m->n[f].usage == 'R') {
					g->match = (unsigned)want;
					g->match_comp = 1;
					g->match_node = f;
				}
			} else if (m->n[c].usage == 'R' && m->n[c].ncodes > 0) {
				g->match = (unsigned)want;
				g->match_node = c;
			}
		}
	}
}

static xmlNode *find_loop(xmlNode *x, const char *xid)
{
	if (x->type == XML_ELEMENT_NODE && strcmp((const char *)x->name, "loop") == 0) {
		xmlChar *id = xmlGetProp(x, (const xmlChar *)"xid");
		int hit = id && strcmp((const char *)id, xid) == 0;

		xmlFree(id);
		if (hit)
			return x;
	}
	for (xmlNode *c = x->children; c; c = c->next) {
		xmlNode *r = find_loop(c, xid);

		if (r)
			return r;
	}
	return NULL;
}

static xmlNode *find_seg(xmlNode *x, const char *xid)
{
	if (x->type == XML_ELEMENT_NODE && strcmp((const char *)x->name, "segment") == 0) {
		xmlChar *id = xmlGetProp(x, (const xmlChar *)"xid");
		int hit = id && strcmp((const char *)id, xid) == 0;

		xmlFree(id);
		if (hit)
			return x;
	}
	for (xmlNode *c = x->children; c; c = c->next) {
		xmlNode *r = find_seg(c, xid);

		if (r)
			return r;
	}
	return NULL;
}

static void load_map(struct gmap *m, const char *dir, const char *file, const char *root)
{
	char path[4096];
	xmlDoc *doc;
	xmlNode *top, *start;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	cur_file = path;
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	if (!doc)
		die("cannot parse");
	top = xmlDocGetRootElement(doc);
	m->name = child_text(top, "name");
	if (!m->name)
		m->name = xstrdup("");
	start = find_loop(top, root);
	if (!start)
		die("no loop %s", root);
	build(m, start, -1, 0);
	/* 277.5010.X212.xml closes its ST_LOOP before the SE: take the SE
	 * from where it is, so that the transaction set has its trailer */
	{
		int has_se = 0;

		for (int c = m->n[0].child; c >= 0; c = m->n[c].next)
			if (m->n[c].kind == N_SEG && strcmp(m->n[c].xid, "SE") == 0)
				has_se = 1;
		if (!has_se && strcmp(root, "ST_LOOP") == 0) {
			xmlNode *se = find_seg(top, "SE");

			if (!se)
				die("no SE segment");
			build(m, se, 0, 1);
		}
	}
	finish(m);
	xmlFreeDoc(doc);
}

static void emit_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fputc(' ', f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void emit_nodes(FILE *f, const struct gmap *m, const char *var)
{
	fprintf(f, "static const struct x12_node %s[] = {\n", var);
	for (size_t i = 0; i < m->len; i++) {
		const struct gnode *g = &m->n[i];

		fprintf(f, "\t{ ");
		emit_str(f, g->xid);
		fprintf(f, ", ");
		emit_str(f, g->name);
		fprintf(f, ", %d, '%c', %u, %u, %d, %d, %d, %u, %u, ", g->kind, g->usage, g->pos,
			g->repeat, g->parent, g->child, g->next, g->ord, g->nkids);
		emit_str(f, g->seg);
		fprintf(f, ", %d, %u, %u, %u, %u, %u, %u, %d, %u, %u, %u },\n", g->dele, g->codes,
			g->ncodes, g->syn, g->nsyn, g->match, g->match_comp, g->match_node, g->req, g->nreq,
			g->kids);
	}
	fprintf(f, "};\n\n");
}

int main(int argc, char **argv)
{
	char path[4096], line[1024];
	FILE *idx, *out;
	struct gmap *maps = NULL, control;
	size_t n_maps = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: gen_x12 DATA_DIR OUT.c\n");
		return 2;
	}
	LIBXML_TEST_VERSION;
	load_deles(argv[1]);
	load_external(argv[1]);
	memset(&control, 0, sizeof(control));
	load_map(&control, argv[1], "x12.control.00501.xml", "ISA_LOOP");
	snprintf(path, sizeof(path), "%s/maps.txt", argv[1]);
	cur_file = path;
	idx = fopen(path, "r");
	if (!idx)
		die("cannot open");
	while (fgets(line, sizeof(line), idx)) {
		char st[8], fic[8], guide[24], file[512];

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%7s %7s %23s %511s", st, fic, guide, file) != 4)
			die("bad line: %s", line);
		maps = xrealloc(maps, (n_maps + 1) * sizeof(*maps));
		memset(&maps[n_maps], 0, sizeof(*maps));
		memcpy(maps[n_maps].st, st, sizeof(st));
		memcpy(maps[n_maps].fic, fic, sizeof(fic));
		memcpy(maps[n_maps].guide, guide, sizeof(guide));
		load_map(&maps[n_maps], argv[1], file, "ST_LOOP");
		cur_file = path;
		n_maps++;
	}
	fclose(idx);
	cur_file = argv[2];
	out = fopen(argv[2], "w");
	if (!out)
		die("cannot write");
	fprintf(out, "/* Generated by tools/gen_x12.c from data/x12/: do not edit. */\n");
	fprintf(out, "#include \"revenue/x12_int.h\"\n\n");
	fprintf(out, "const char *const x12_codes[] = {\n");
	for (size_t i = 0; i < n_codes; i++) {
		fprintf(out, "\t");
		emit_str(out, codes[i]);
		fprintf(out, ",\n");
	}
	fprintf(out, "\tNULL\n};\n\nconst uint16_t x12_code_lens[] = {\n");
	for (size_t i = 0; i < n_codes; i++)
		fprintf(out, "\t%zu,\n", strlen(codes[i]));
	fprintf(out, "\t0\n};\n\nconst struct x12_dele x12_deles[] = {\n");
	for (size_t i = 0; i < n_deles; i++) {
		fprintf(out, "\t{ ");
		emit_str(out, deles[i].num);
		fprintf(out, ", %d, %d, %d, %d },\n", deles[i].type, deles[i].decimals, deles[i].min,
			deles[i].max);
	}
	fprintf(out, "};\nconst size_t x12_n_deles = %zu;\n\n", n_deles);
	fprintf(out, "const struct x12_syntax x12_syntaxes[] = {\n");
	for (size_t i = 0; i < n_syns; i++) {
		fprintf(out, "\t{ '%c', %u, {", syns[i][0], syns[i][1]);
		for (unsigned k = 0; k < 8; k++)
			fprintf(out, "%s%u", k ? ", " : " ", syns[i][2 + k]);
		fprintf(out, " } },\n");
	}
	fprintf(out, "\t{ 0, 0, { 0 } }\n};\n\n");
	fprintf(out, "const int32_t x12_reqs[] = {\n");
	for (size_t i = 0; i < n_reqs; i++)
		fprintf(out, "\t%d,\n", reqs[i]);
	fprintf(out, "\t-1\n};\n\n");
	fprintf(out, "const int32_t x12_kids[] = {\n");
	for (size_t i = 0; i < n_kids; i++)
		fprintf(out, "\t%d,\n", kids[i]);
	fprintf(out, "\t-1\n};\n\nconst uint32_t x12_kid_ids[] = {\n");
	for (size_t i = 0; i < n_kids; i++) {
		uint32_t v;

		memcpy(&v, kid_ids[i], 4);
		fprintf(out, "\t%uu,\n", v);
	}
	fprintf(out, "\t0\n};\n\n");
	emit_nodes(out, &control, "control_nodes");
	for (size_t i = 0; i < n_maps; i++) {
		char var[32];

		snprintf(var, sizeof(var), "map%zu_nodes", i);
		emit_nodes(out, &maps[i], var);
	}
	fprintf(out, "const struct x12_map x12_control = { \"\", \"\", \"\", ");
	emit_str(out, control.name);
	fprintf(out, ", control_nodes, %zu, %u, %u };\n\n", control.len, control.max_kids, control.depth);
	fprintf(out, "const struct x12_map x12_maps[] = {\n");
	for (size_t i = 0; i < n_maps; i++) {
		fprintf(out, "\t{ \"%s\", \"%s\", \"%s\", ", maps[i].st, maps[i].fic, maps[i].guide);
		emit_str(out, maps[i].name);
		fprintf(out, ", map%zu_nodes, %zu, %u, %u },\n", i, maps[i].len, maps[i].max_kids,
			maps[i].depth);
	}
	fprintf(out, "};\nconst size_t x12_n_maps = %zu;\n", n_maps);
	if (fclose(out) != 0)
		die("write failed");
	xmlCleanupParser();
	return 0;
}
