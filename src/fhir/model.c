/* model.c - lookups over the generated FHIR type tables (see model.h). */
#include <string.h>

#include "fhir/model.h"
#include "base/banned.h"

static const char *const prim_names[FP__COUNT] = {
	[FP_NONE] = "", [FP_BOOLEAN] = "boolean", [FP_INTEGER] = "integer",
	[FP_STRING] = "string", [FP_DECIMAL] = "decimal", [FP_URI] = "uri",
	[FP_URL] = "url", [FP_CANONICAL] = "canonical",
	[FP_BASE64BINARY] = "base64Binary", [FP_INSTANT] = "instant",
	[FP_DATE] = "date", [FP_DATETIME] = "dateTime", [FP_TIME] = "time",
	[FP_CODE] = "code", [FP_OID] = "oid", [FP_ID] = "id",
	[FP_MARKDOWN] = "markdown", [FP_UNSIGNEDINT] = "unsignedInt",
	[FP_POSITIVEINT] = "positiveInt", [FP_UUID] = "uuid", [FP_XHTML] = "xhtml",
};

const char *fhir_prim_name(int prim)
{
	return prim > 0 && prim < FP__COUNT ? prim_names[prim] : "";
}

/* strcmp of name against s[0..n) */
static int cmp_n(const char *name, const char *s, size_t n)
{
	int c = strncmp(name, s, n);

	if (c != 0)
		return c;
	return name[n] != '\0';
}

static const struct fhir_type *search(const uint32_t *index, size_t count, const char *s,
				      size_t n)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fhir_type *t = &fhir_types[index[mid]];
		int c = cmp_n(t->name, s, n);

		if (c == 0)
			return t;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct fhir_type *fhir_type_by_name(const char *name)
{
	return search(fhir_named_types, fhir_n_named_types, name, strlen(name));
}

const struct fhir_type *fhir_resource_type_n(const char *name, size_t n)
{
	return search(fhir_resource_types, fhir_n_resource_types, name, n);
}

const struct fhir_type *fhir_resource_type(const char *name)
{
	return fhir_resource_type_n(name, strlen(name));
}

const struct fhir_elem *fhir_elem_find(const struct fhir_type *t, const char *name)
{
	size_t lo = 0, hi = t->n_elems;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fhir_elem *el = &fhir_elems[t->first_elem + mid];
		int c = strcmp(el->name, name);

		if (c == 0)
			return el;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
