/* gen_fhir_model.c - build-time tool: the FHIR R4 type model as C tables.
 *
 * Reads the official StructureDefinitions (DIR/Bundle-types.json and
 * DIR/Bundle-resources.json) and writes the tables declared in
 * src/fhir/model.h.  Usage: gen_fhir_model DIR OUT.c OUT.h
 *
 * Each primitive, complex datatype and resource becomes a type; each element
 * with children (BackboneElement, Element) becomes an anonymous type named by
 * its path; contentReference reuses the referenced path's type; value[x]
 * expands to one element per allowed type.  The JSON shape (array or single)
 * follows the element's base cardinality, as the FHIR JSON format says. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/model.h"

#define MAXT 4096
#define MAXE 65536

struct gtype {
	char *name;
	int kind, prim;
	int *elems, nelems, cap;
	bool abstract;
};

struct gelem {
	char *name, *base, *path;
	int type;          /* -1 until resolved */
	char *cref;        /* contentReference path, resolved later */
	int choice_group;
	unsigned min, max;
	bool array;
	int targets[160], ntargets;
	int order;
	bool summary;
	char *type_code;   /* unresolved type name */
	char **target_names;
	int ntarget_names;
};

static struct gtype types[MAXT];
static int ntypes;
static struct gelem elems[MAXE];
static int nelems;
static int next_group = 1;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gen_fhir_model: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die("out of memory");
	return p;
}

static int type_find(const char *name)
{
	for (int i = 0; i < ntypes; i++)
		if (strcmp(types[i].name, name) == 0)
			return i;
	return -1;
}

static int type_add(const char *name, int kind, int prim)
{
	if (ntypes == MAXT)
		die("too many types");
	types[ntypes].name = xstrdup(name);
	types[ntypes].kind = kind;
	types[ntypes].prim = prim;
	return ntypes++;
}

static void type_add_elem(int t, int e)
{
	struct gtype *g = &types[t];
	if (g->nelems == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->elems = realloc(g->elems, (size_t)g->cap * sizeof(int));
		if (!g->elems)
			die("out of memory");
	}
	g->elems[g->nelems++] = e;
}

static const char *const prim_names[FP__COUNT] = {
	[FP_BOOLEAN] = "boolean", [FP_INTEGER] = "integer", [FP_STRING] = "string",
	[FP_DECIMAL] = "decimal", [FP_URI] = "uri", [FP_URL] = "url",
	[FP_CANONICAL] = "canonical", [FP_BASE64BINARY] = "base64Binary",
	[FP_INSTANT] = "instant", [FP_DATE] = "date", [FP_DATETIME] = "dateTime",
	[FP_TIME] = "time", [FP_CODE] = "code", [FP_OID] = "oid", [FP_ID] = "id",
	[FP_MARKDOWN] = "markdown", [FP_UNSIGNEDINT] = "unsignedInt",
	[FP_POSITIVEINT] = "positiveInt", [FP_UUID] = "uuid", [FP_XHTML] = "xhtml",
};

static int prim_of(const char *name)
{
	for (int i = 1; i < FP__COUNT; i++)
		if (strcmp(prim_names[i], name) == 0)
			return i;
	return FP_NONE;
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;
	return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *gets_(json_object *o, const char *k)
{
	json_object *v = get(o, k);
	return v ? json_object_get_string(v) : NULL;
}

static json_object *load(const char *dir, const char *file)
{
	char path[4096];
	json_object *o;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	o = json_object_from_file(path);
	if (!o)
		die("cannot read %s: %s", path, json_util_get_last_err());
	return o;
}

static bool usable_sd(json_object *sd)
{
	const char *rt = gets_(sd, "resourceType"), *kind = gets_(sd, "kind");
	const char *deriv = gets_(sd, "derivation");

	if (!rt || strcmp(rt, "StructureDefinition") != 0 || !kind)
		return false;
	if (strcmp(kind, "logical") == 0)
		return false;
	if (deriv && strcmp(deriv, "constraint") == 0)
		return false;
	return true;
}

/* First pass: one type per StructureDefinition. */
static void declare(json_object *bundle)
{
	json_object *entries = get(bundle, "entry");
	size_t n = json_object_array_length(entries);

	for (size_t i = 0; i < n; i++) {
		json_object *sd = get(json_object_array_get_idx(entries, i), "resource");
		const char *kind, *name;
		json_object *abs;
		int t;

		if (!usable_sd(sd))
			continue;
		kind = gets_(sd, "kind");
		name = gets_(sd, "type");
		abs = get(sd, "abstract");
		if (strcmp(kind, "primitive-type") == 0)
			t = type_add(name, FK_PRIMITIVE, prim_of(name));
		else if (strcmp(kind, "complex-type") == 0)
			t = type_add(name, FK_COMPLEX, FP_NONE);
		else
			t = type_add(name, FK_RESOURCE, FP_NONE);
		types[t].abstract = abs && json_object_get_boolean(abs);
		if (types[t].kind == FK_PRIMITIVE && types[t].prim == FP_NONE)
			die("unknown primitive %s", name);
		/* "Resource" as an element type means any resource. */
		if (strcmp(name, "Resource") == 0)
			types[t].kind = FK_ANY_RESOURCE;
	}
}

static const char *fhir_type_ext(json_object *tref)
{
	json_object *exts = get(tref, "extension");
	size_t n = exts ? json_object_array_length(exts) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(exts, i);
		const char *url = gets_(x, "url");
		if (url && strcmp(url, "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type") == 0)
			return gets_(x, "valueUrl");
	}
	return NULL;
}

static unsigned parse_max(const char *m)
{
	if (!m || strcmp(m, "*") == 0)
		return FHIR_MAX_UNBOUNDED;
	return (unsigned)strtoul(m, NULL, 10);
}

static int anon_for_path(const char *path)
{
	int t = type_find(path);
	if (t < 0)
		t = type_add(path, FK_BACKBONE, FP_NONE);
	return t;
}

static bool has_children(json_object *els, size_t n, const char *path)
{
	size_t pl = strlen(path);
	for (size_t i = 0; i < n; i++) {
		const char *p = gets_(json_object_array_get_idx(els, i), "path");
		if (strncmp(p, path, pl) == 0 && p[pl] == '.')
			return true;
	}
	return false;
}

static int new_elem(void)
{
	if (nelems == MAXE)
		die("too many elements");
	memset(&elems[nelems], 0, sizeof(elems[nelems]));
	elems[nelems].type = -1;
	return nelems++;
}

/* Second pass: the elements of each non-primitive definition. */
static void define(json_object *bundle)
{
	json_object *entries = get(bundle, "entry");
	size_t n = json_object_array_length(entries);

	for (size_t i = 0; i < n; i++) {
		json_object *sd = get(json_object_array_get_idx(entries, i), "resource");
		json_object *els;
		size_t nel;
		int root;

		if (!usable_sd(sd) || strcmp(gets_(sd, "kind"), "primitive-type") == 0)
			continue;
		root = type_find(gets_(sd, "type"));
		els = get(get(sd, "snapshot"), "element");
		nel = json_object_array_length(els);
		for (size_t k = 1; k < nel; k++) {
			json_object *el = json_object_array_get_idx(els, k);
			const char *path = gets_(el, "path");
			const char *dot = strrchr(path, '.');
			const char *name = dot + 1;
			const char *cref = gets_(el, "contentReference");
			json_object *tlist = get(el, "type");
			json_object *basej = get(el, "base");
			const char *basepath = basej ? gets_(basej, "path") : NULL;
			const char *basemax = basej ? gets_(basej, "max") : gets_(el, "max");
			char parent[512];
			int owner;
			unsigned min = (unsigned)json_object_get_int(get(el, "min"));
			unsigned max = parse_max(gets_(el, "max"));
			bool array = parse_max(basemax) != 1;
			size_t nl = strlen(name);
			bool choice = nl > 3 && strcmp(name + nl - 3, "[x]") == 0;
			json_object *summ = get(el, "isSummary");
			bool is_summary = summ && json_object_get_boolean(summ);
			int group = 0;
			size_t nt;

			snprintf(parent, sizeof(parent), "%.*s", (int)(dot - path), path);
			owner = strchr(parent, '.') ? anon_for_path(parent) : root;
			if (max == 0)
				continue; /* prohibited elements (none in core, but be safe) */
			if (cref) {
				int e = new_elem();
				elems[e].name = xstrdup(name);
				elems[e].base = xstrdup(name);
				elems[e].cref = xstrdup(cref[0] == '#' ? cref + 1 : cref);
				elems[e].min = min;
				elems[e].max = max;
				elems[e].array = array;
				elems[e].order = (int)k;
				elems[e].summary = is_summary;
				type_add_elem(owner, e);
				continue;
			}
			if (has_children(els, nel, path)) {
				int e = new_elem();
				elems[e].name = xstrdup(name);
				elems[e].base = xstrdup(name);
				elems[e].type = anon_for_path(path);
				elems[e].min = min;
				elems[e].max = max;
				elems[e].array = array;
				elems[e].order = (int)k;
				elems[e].summary = is_summary;
				type_add_elem(owner, e);
				continue;
			}
			nt = tlist ? json_object_array_length(tlist) : 0;
			if (nt == 0)
				die("%s: no type", path);
			if (choice)
				group = next_group++;
			for (size_t ti = 0; ti < nt; ti++) {
				json_object *tref = json_object_array_get_idx(tlist, ti);
				const char *code = gets_(tref, "code");
				json_object *tps = get(tref, "targetProfile");
				char ename[256];
				int e = new_elem();

				if (strncmp(code, "http://hl7.org/fhirpath/System.", 31) == 0) {
					const char *ft = fhir_type_ext(tref);
					code = ft ? ft : "string";
				}
				/* Resource.id is an id, whatever the snapshot's System.String says. */
				if (basepath && strcmp(basepath, "Resource.id") == 0)
					code = "id";
				if (choice) {
					snprintf(ename, sizeof(ename), "%.*s%c%s", (int)(nl - 3), name,
						 code[0] >= 'a' && code[0] <= 'z' ? code[0] - 32 : code[0], code + 1);
				} else {
					snprintf(ename, sizeof(ename), "%s", name);
				}
				elems[e].name = xstrdup(ename);
				elems[e].base = xstrdup(name);
				elems[e].type_code = xstrdup(code);
				elems[e].choice_group = group;
				elems[e].min = min;
				elems[e].max = max;
				elems[e].array = array;
				elems[e].order = (int)k;
				elems[e].summary = is_summary;
				if (tps && strcmp(code, "Reference") == 0) {
					size_t np = json_object_array_length(tps);
					elems[e].target_names = calloc(np, sizeof(char *));
					for (size_t p = 0; p < np; p++) {
						const char *u = json_object_get_string(json_object_array_get_idx(tps, p));
						const char *slash = strrchr(u, '/');
						elems[e].target_names[elems[e].ntarget_names++] = xstrdup(slash ? slash + 1 : u);
					}
				}
				type_add_elem(owner, e);
			}
		}
	}
}

static void resolve(void)
{
	for (int e = 0; e < nelems; e++) {
		struct gelem *g = &elems[e];
		if (g->cref) {
			g->type = type_find(g->cref);
			if (g->type < 0)
				die("contentReference %s not found", g->cref);
		} else if (g->type < 0) {
			g->type = type_find(g->type_code);
			if (g->type < 0)
				die("element %s: unknown type %s", g->name, g->type_code);
		}
		for (int i = 0; i < g->ntarget_names; i++) {
			int t;
			if (strcmp(g->target_names[i], "Resource") == 0) {
				g->ntargets = 0; /* any */
				break;
			}
			t = type_find(g->target_names[i]);
			if (t < 0 || types[t].kind != FK_RESOURCE)
				die("element %s: unknown target %s", g->name, g->target_names[i]);
			g->targets[g->ntargets++] = t;
		}
	}
}

#define MAX_TYPE_ELEMS 256 /* the validator keeps a bitmap of this size per object */

static int cmp_elem(const void *a, const void *b)
{
	return strcmp(elems[*(const int *)a].name, elems[*(const int *)b].name);
}

static int cmp_type(const void *a, const void *b)
{
	return strcmp(types[*(const int *)a].name, types[*(const int *)b].name);
}

int main(int argc, char **argv)
{
	json_object *bt, *br;
	FILE *c, *h;
	int *rtypes, nrt = 0, *named, nnamed = 0, ntargets = 0;
	uint32_t first = 0;

	if (argc != 4)
		die("usage: gen_fhir_model DIR OUT.c OUT.h");
	bt = load(argv[1], "Bundle-types.json");
	br = load(argv[1], "Bundle-resources.json");
	declare(bt);
	declare(br);
	define(bt);
	define(br);
	resolve();

	c = fopen(argv[2], "w");
	h = fopen(argv[3], "w");
	if (!c || !h)
		die("cannot write output");
	for (int t = 0; t < ntypes; t++) {
		if (types[t].nelems > MAX_TYPE_ELEMS)
			die("%s has %d elements, more than %d", types[t].name, types[t].nelems, MAX_TYPE_ELEMS);
		qsort(types[t].elems, (size_t)types[t].nelems, sizeof(int), cmp_elem);
	}
	fprintf(c, "/* generated by tools/gen_fhir_model.c from data/fhir - do not edit */\n"
		   "#include \"fhir/model.h\"\n\nconst char fhir_version[] = \"4.0.1\";\n\n"
		   "const struct fhir_type fhir_types[] = {\n");
	for (int t = 0; t < ntypes; t++) {
		fprintf(c, "\t{ \"%s\", %d, %d, %u, %d },\n", types[t].name, types[t].kind,
			types[t].prim, first, types[t].nelems);
		first += (uint32_t)types[t].nelems;
	}
	fprintf(c, "};\nconst size_t fhir_n_types = %d;\n\nconst struct fhir_elem fhir_elems[] = {\n", ntypes);
	for (int t = 0; t < ntypes; t++) {
		for (int i = 0; i < types[t].nelems; i++) {
			struct gelem *g = &elems[types[t].elems[i]];
			fprintf(c, "\t{ \"%s\", \"%s\", %d, %d, %u, %uu, %d, %d, %d, %s, %s },\n",
				g->name, g->base, g->type, g->choice_group, g->min, g->max,
				ntargets, g->ntargets, g->order, g->array ? "true" : "false",
				g->summary ? "true" : "false");
			ntargets += g->ntargets;
		}
	}
	fprintf(c, "};\nconst size_t fhir_n_elems = %u;\n\nconst uint32_t fhir_targets[] = {\n", first);
	for (int t = 0; t < ntypes; t++)
		for (int i = 0; i < types[t].nelems; i++) {
			struct gelem *g = &elems[types[t].elems[i]];
			for (int k = 0; k < g->ntargets; k++)
				fprintf(c, "\t%d,\n", g->targets[k]);
		}
	fprintf(c, "\t0\n};\n\n");

	rtypes = calloc((size_t)ntypes, sizeof(int));
	named = calloc((size_t)ntypes, sizeof(int));
	for (int t = 0; t < ntypes; t++) {
		if (types[t].kind == FK_RESOURCE && !types[t].abstract)
			rtypes[nrt++] = t;
		if (types[t].kind != FK_BACKBONE)
			named[nnamed++] = t;
	}
	qsort(rtypes, (size_t)nrt, sizeof(int), cmp_type);
	qsort(named, (size_t)nnamed, sizeof(int), cmp_type);
	fprintf(c, "const uint32_t fhir_resource_types[] = {\n");
	for (int i = 0; i < nrt; i++)
		fprintf(c, "\t%d, /* %s */\n", rtypes[i], types[rtypes[i]].name);
	fprintf(c, "};\nconst size_t fhir_n_resource_types = %d;\n\n", nrt);
	fprintf(c, "const uint32_t fhir_named_types[] = {\n");
	for (int i = 0; i < nnamed; i++)
		fprintf(c, "\t%d, /* %s */\n", named[i], types[named[i]].name);
	fprintf(c, "};\nconst size_t fhir_n_named_types = %d;\n", nnamed);

	fprintf(h, "/* generated by tools/gen_fhir_model.c - do not edit */\n"
		   "#ifndef CK_FHIR_MODEL_GEN_H\n#define CK_FHIR_MODEL_GEN_H\n"
		   "#define FHIR_N_TYPES %d\n#define FHIR_N_ELEMS %u\n#define FHIR_N_RESOURCE_TYPES %d\n"
		   "#endif\n", ntypes, first, nrt);
	if (fclose(c) != 0 || fclose(h) != 0)
		die("write failed");
	fprintf(stderr, "gen_fhir_model: %d types (%d resources), %u elements, %d reference targets\n",
		ntypes, nrt, first, ntargets);
	json_object_put(bt);
	json_object_put(br);
	return 0;
}
