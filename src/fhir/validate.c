/* validate.c - structural validation of FHIR R4 JSON against the model.
 *
 * One walk over the parsed document, driven by the generated tables
 * (model.h): every property must be an element of its type (or "_x" for the
 * extensions of a primitive x), arrays exactly where the element repeats,
 * cardinality, required elements, one choice per [x], primitive formats by the
 * R4 regular expressions, references well-formed and of an allowed target
 * type.  The expression of each issue is a FHIRPath-style location such as
 * Patient.name[0].given[1].  Messages name elements and expected formats but
 * never echo values: they may be patient data.
 *
 * Not checked: invariants written in FHIRPath (ele-1, dom-*, ...), terminology
 * bindings, profiles other than the base resource definitions. */
#include <stdio.h>
#include <string.h>

#include "fhir/fhir.h"
#include "base/banned.h"

#define MAX_STRING_BYTES (1024 * 1024) /* FHIR: strings SHALL NOT exceed 1MB */

struct vctx {
	struct fhir_issues *iss;
	struct buf path;
	json_object *root;   /* the resource being validated (contained ids) */
	size_t errors;
};

static void verr(struct vctx *v, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void verr(struct vctx *v, const char *code, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fhir_issue_add(v->iss, FHIR_ERROR, code, buf_cstr(&v->path), "%s", msg);
	v->errors++;
}

/* The path is built on every step of the walk, so no printf here. */
static size_t push_name(struct vctx *v, const char *name)
{
	size_t mark = v->path.len, n = strnlen(name, 64);

	buf_addch(&v->path, '.');
	buf_add(&v->path, name, n);
	return mark;
}

static size_t push_index(struct vctx *v, size_t i)
{
	size_t mark = v->path.len;
	char tmp[24];
	size_t n = sizeof(tmp);

	tmp[--n] = ']';
	do {
		tmp[--n] = (char)('0' + i % 10);
		i /= 10;
	} while (i && n > 1);
	tmp[--n] = '[';
	buf_add(&v->path, tmp + n, sizeof(tmp) - n);
	return mark;
}

static void pop(struct vctx *v, size_t mark)
{
	buf_truncate(&v->path, mark);
}

static const char *json_kind(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double:
	case json_type_int: return "a number";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "a value";
}

/* ---- primitive formats ---- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool valid_code(const char *s, size_t n)
{
	/* [^\s]+(\s[^\s]+)* : no leading, trailing or doubled white space */
	if (n == 0 || is_ws(s[0]) || is_ws(s[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (is_ws(s[i]) && is_ws(s[i - 1]))
			return false;
	return true;
}

static bool no_ws(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_ws(s[i]))
			return false;
	return true;
}

static bool valid_oid(const char *s, size_t n)
{
	/* urn:oid:[0-2](\.(0|[1-9][0-9]*))+ */
	size_t i = 8;

	if (n < 10 || strncmp(s, "urn:oid:", 8) != 0 || s[i] < '0' || s[i] > '2')
		return false;
	i++;
	if (i >= n)
		return false;
	while (i < n) {
		if (s[i] != '.' || i + 1 >= n)
			return false;
		i++;
		if (s[i] == '0') {
			i++;
			if (i < n && s[i] != '.')
				return false;
			continue;
		}
		if (s[i] < '1' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return true;
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool valid_uuid(const char *s, size_t n)
{
	if (n != 45 || strncmp(s, "urn:uuid:", 9) != 0)
		return false;
	for (size_t i = 9; i < n; i++) {
		size_t k = i - 9;
		if (k == 8 || k == 13 || k == 18 || k == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_hex_lower(s[i])) {
			return false;
		}
	}
	return true;
}

static bool valid_base64(const char *s, size_t n)
{
	size_t count = 0, pad = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_ws(c))
			continue;
		if (c == '=') {
			pad++;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '+' || c == '/') {
			if (pad)
				return false; /* data after padding */
		} else {
			return false;
		}
		count++;
	}
	return count % 4 == 0 && pad <= 2;
}

static bool valid_string_chars(const char *s, size_t n)
{
	/* No control characters other than tab, CR and LF. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
			return false;
	}
	return true;
}

static bool valid_xhtml(const char *s, size_t n)
{
	size_t a = 0, b = n;

	while (a < n && is_ws(s[a]))
		a++;
	while (b > a && is_ws(s[b - 1]))
		b--;
	return b - a >= 11 && strncmp(s + a, "<div", 4) == 0 &&
	       (s[a + 4] == '>' || is_ws(s[a + 4])) && strncmp(s + b - 6, "</div>", 6) == 0;
}

static void check_primitive(struct vctx *v, int prim, json_object *o)
{
	enum json_type jt = json_object_get_type(o);
	const char *pname = fhir_prim_name(prim);
	const char *s;
	size_t n;

	switch (prim) {
	case FP_BOOLEAN:
		if (jt != json_type_boolean)
			verr(v, "structure", "expected a boolean (true or false), found %s", json_kind(o));
		return;
	case FP_INTEGER:
	case FP_UNSIGNEDINT:
	case FP_POSITIVEINT: {
		int64_t x;
		if (jt != json_type_int) {
			verr(v, "structure", "expected an integer (%s), found %s", pname, json_kind(o));
			return;
		}
		x = json_object_get_int64(o);
		if (x < INT32_MIN || x > INT32_MAX)
			verr(v, "value", "%s out of range (32-bit)", pname);
		else if (prim == FP_UNSIGNEDINT && x < 0)
			verr(v, "value", "unsignedInt must not be negative");
		else if (prim == FP_POSITIVEINT && x < 1)
			verr(v, "value", "positiveInt must be 1 or more");
		return;
	}
	case FP_DECIMAL:
		if (jt != json_type_int && jt != json_type_double)
			verr(v, "structure", "expected a number (decimal), found %s", json_kind(o));
		return;
	default:
		break;
	}
	if (jt != json_type_string) {
		verr(v, "structure", "expected a string (%s), found %s", pname, json_kind(o));
		return;
	}
	s = json_object_get_string(o);
	n = (size_t)json_object_get_string_len(o);
	if (n == 0) {
		verr(v, "value", "empty string: leave the element out instead");
		return;
	}
	if (n > MAX_STRING_BYTES && prim != FP_BASE64BINARY) {
		verr(v, "too-long", "string longer than 1 MB");
		return;
	}
	switch (prim) {
	case FP_STRING:
	case FP_MARKDOWN:
		if (!valid_string_chars(s, n))
			verr(v, "value", "control characters are not allowed in a %s", pname);
		break;
	case FP_CODE:
		if (!valid_code(s, n))
			verr(v, "value", "not a valid code (no leading, trailing or repeated white space)");
		break;
	case FP_ID:
		if (!id_valid(s, n))
			verr(v, "value", "not a valid id (1-64 of A-Z a-z 0-9 - .)");
		break;
	case FP_URI:
	case FP_URL:
	case FP_CANONICAL:
		if (!no_ws(s, n))
			verr(v, "value", "a %s must not contain white space", pname);
		break;
	case FP_OID:
		if (!valid_oid(s, n))
			verr(v, "value", "not a valid oid (urn:oid:1.2.3...)");
		break;
	case FP_UUID:
		if (!valid_uuid(s, n))
			verr(v, "value", "not a valid uuid (urn:uuid: and lower-case hex)");
		break;
	case FP_BASE64BINARY:
		if (!valid_base64(s, n))
			verr(v, "value", "not valid base64");
		break;
	case FP_DATE:
		if (time_parse(s, n, TIME_DATE, NULL) < 0)
			verr(v, "value", "not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)");
		break;
	case FP_DATETIME:
		if (time_parse(s, n, TIME_DATETIME, NULL) < 0)
			verr(v, "value", "not a valid dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
					 "YYYY-MM-DDThh:mm:ss[.f] with a time zone)");
		break;
	case FP_INSTANT:
		if (time_parse(s, n, TIME_INSTANT, NULL) < 0)
			verr(v, "value", "not a valid instant (YYYY-MM-DDThh:mm:ss[.f] with a time zone)");
		break;
	case FP_TIME:
		if (time_parse(s, n, TIME_TIME, NULL) < 0)
			verr(v, "value", "not a valid time (hh:mm:ss[.f])");
		break;
	case FP_XHTML:
		if (!valid_xhtml(s, n))
			verr(v, "value", "narrative must be an XHTML <div> element");
		break;
	default:
		break;
	}
}

/* ---- references ---- */

static bool contained_has(json_object *root, const char *id)
{
	json_object *arr = json_get_arr(root, "contained");
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++)
		if (json_is_str(json_get(json_object_array_get_idx(arr, i), "id"), id))
			return true;
	return false;
}

static void check_reference(struct vctx *v, const struct fhir_elem *via, json_object *ref)
{
	json_object *r = json_get(ref, "reference");
	const char *s, *slash, *type_end;
	const struct fhir_type *target;
	size_t n, mark;

	if (!r || !json_object_is_type(r, json_type_string))
		return;
	s = json_object_get_string(r);
	n = strlen(s);
	if (n == 0)
		return; /* reported as an empty string already */
	mark = push_name(v, "reference");
	if (s[0] == '#') {
		if (s[1] && !contained_has(v->root, s + 1))
			verr(v, "invalid", "refers to a contained resource that is not there");
		goto out;
	}
	if (strncmp(s, "urn:uuid:", 9) == 0) {
		if (!valid_uuid(s, n))
			verr(v, "invalid", "not a valid urn:uuid reference");
		goto out;
	}
	{
		/* Absolute (not ours to resolve) unless the "://" is in the query of
		 * a conditional reference: Patient?identifier=http://sys|1 */
		const char *q = strchr(s, '?'), *scheme = strstr(s, "://");
		if (strncmp(s, "urn:oid:", 8) == 0 || (scheme && (!q || scheme < q)))
			goto out;
	}
	if (strchr(s, '?')) {
		verr(v, "invalid", "a conditional reference (Type?search) is only allowed in a transaction");
		goto out;
	}
	/* Relative: Type/id or Type/id/_history/vid */
	slash = strchr(s, '/');
	if (!slash) {
		verr(v, "invalid", "a relative reference must be Type/id");
		goto out;
	}
	type_end = slash;
	target = fhir_resource_type_n(s, (size_t)(type_end - s));
	if (!target) {
		verr(v, "invalid", "reference names an unknown resource type");
		goto out;
	}
	{
		const char *id = slash + 1, *hist = strstr(id, "/_history/");
		size_t idn = hist ? (size_t)(hist - id) : strlen(id);
		if (!id_valid(id, idn)) {
			verr(v, "invalid", "reference has an invalid id");
			goto out;
		}
		if (hist && !id_valid(hist + 10, strlen(hist + 10))) {
			verr(v, "invalid", "reference has an invalid version");
			goto out;
		}
		if (!hist && id[idn] != '\0') {
			verr(v, "invalid", "a relative reference must be Type/id or Type/id/_history/vid");
			goto out;
		}
	}
	if (via && via->n_targets > 0) {
		bool ok = false;
		for (uint32_t i = 0; i < via->n_targets; i++)
			if (&fhir_types[fhir_targets[via->first_target + i]] == target)
				ok = true;
		if (!ok) {
			char allowed[160];
			size_t len = 0;
			allowed[0] = '\0';
			for (uint32_t i = 0; i < via->n_targets && len < sizeof(allowed) - 20; i++) {
				int w = snprintf(allowed + len, sizeof(allowed) - len, "%s%s", i ? ", " : "",
						 fhir_types[fhir_targets[via->first_target + i]].name);
				if (w > 0)
					len += (size_t)w;
			}
			verr(v, "invalid", "a reference to %s is not allowed here (allowed: %s)",
			     target->name, allowed);
		}
	}
out:
	pop(v, mark);
}

/* ---- structures ---- */

static void check_resource(struct vctx *v, json_object *o, const char *expect, bool contained);
static void check_object(struct vctx *v, const struct fhir_type *t, json_object *o,
			 const struct fhir_elem *via);

static void check_item(struct vctx *v, const struct fhir_elem *el, json_object *item)
{
	const struct fhir_type *t = &fhir_types[el->type];

	switch (t->kind) {
	case FK_PRIMITIVE:
		check_primitive(v, t->prim, item);
		break;
	case FK_ANY_RESOURCE:
		check_resource(v, item, NULL, strcmp(el->name, "contained") == 0);
		break;
	case FK_RESOURCE:
		check_resource(v, item, t->name, false);
		break;
	default:
		check_object(v, t, item, el);
		break;
	}
}

/* The "_x" companion of a primitive element: an Element (id, extension), or
 * for a repeating element an array of Element-or-null aligned with x. */
static void check_companion(struct vctx *v, const struct fhir_elem *el, json_object *val,
			    json_object *ext)
{
	static const struct fhir_type *element_type;

	if (!element_type)
		element_type = fhir_type_by_name("Element");
	if (!el->array) {
		if (!json_object_is_type(ext, json_type_object)) {
			verr(v, "structure", "expected an object (id, extension), found %s", json_kind(ext));
			return;
		}
		check_object(v, element_type, ext, NULL);
		return;
	}
	if (!json_object_is_type(ext, json_type_array)) {
		verr(v, "structure", "expected an array, found %s", json_kind(ext));
		return;
	}
	if (val && json_object_is_type(val, json_type_array) &&
	    json_object_array_length(val) != json_object_array_length(ext)) {
		verr(v, "structure", "must have as many items as the array of values it extends");
		return;
	}
	for (size_t i = 0; i < json_object_array_length(ext); i++) {
		json_object *it = json_object_array_get_idx(ext, i);
		size_t mark = push_index(v, i);
		if (it && !json_object_is_type(it, json_type_object))
			verr(v, "structure", "expected an object or null, found %s", json_kind(it));
		else if (it)
			check_object(v, element_type, it, NULL);
		pop(v, mark);
	}
}

static void check_member(struct vctx *v, const struct fhir_elem *el, json_object *val,
			 json_object *ext)
{
	const struct fhir_type *t = &fhir_types[el->type];
	bool prim = t->kind == FK_PRIMITIVE;

	if (!el->array) {
		if (json_object_is_type(val, json_type_array)) {
			verr(v, "structure", "'%s' has at most one value: it must not be an array", el->name);
			return;
		}
		if (!val) {
			verr(v, "structure", "null is not allowed here");
			return;
		}
		check_item(v, el, val);
		return;
	}
	if (!json_object_is_type(val, json_type_array)) {
		verr(v, "structure", "'%s' repeats: it must be an array, found %s", el->name,
		     json_kind(val));
		return;
	}
	size_t n = json_object_array_length(val);
	if (n == 0) {
		verr(v, "structure", "empty array: leave the element out instead");
		return;
	}
	if (el->max != FHIR_MAX_UNBOUNDED && n > el->max)
		verr(v, "structure", "too many values: at most %u allowed", el->max);
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(val, i);
		size_t mark = push_index(v, i);

		if (!it) {
			/* null stands for a value that only has extensions */
			json_object *e = ext && json_object_is_type(ext, json_type_array) &&
						 i < json_object_array_length(ext)
					 ? json_object_array_get_idx(ext, i) : NULL;
			if (!prim || !e)
				verr(v, "structure", "null is only allowed where _%s has extensions", el->name);
		} else {
			check_item(v, el, it);
		}
		pop(v, mark);
	}
}

static void check_object(struct vctx *v, const struct fhir_type *t, json_object *o,
			 const struct fhir_elem *via)
{
	uint64_t present[FHIR_MAX_TYPE_ELEMS / 64] = { 0 };
	uint32_t groups[16];
	const struct fhir_elem *group_el[16];
	size_t ngroups = 0;
	bool is_resource = t->kind == FK_RESOURCE;

	if (!json_object_is_type(o, json_type_object)) {
		verr(v, "structure", "expected an object (%s), found %s", t->name, json_kind(o));
		return;
	}
	if (json_object_object_length(o) == 0) {
		verr(v, "structure", "empty object: leave the element out instead");
		return;
	}
	json_object_object_foreach(o, key, val) {
		const struct fhir_elem *el;
		bool companion = key[0] == '_';
		size_t mark;

		if (is_resource && strcmp(key, "resourceType") == 0)
			continue;
		el = fhir_elem_find(t, companion ? key + 1 : key);
		mark = push_name(v, key);
		if (!el) {
			verr(v, "structure", "unknown element '%.64s' in %s", key, t->name);
			pop(v, mark);
			continue;
		}
		if (companion && fhir_types[el->type].kind != FK_PRIMITIVE) {
			verr(v, "structure", "'_%s' is only allowed for primitive elements", el->name);
			pop(v, mark);
			continue;
		}
		present[(el - &fhir_elems[t->first_elem]) / 64] |=
			(uint64_t)1 << ((el - &fhir_elems[t->first_elem]) % 64);
		if (el->choice_group && !companion) {
			size_t g;
			for (g = 0; g < ngroups; g++)
				if (groups[g] == el->choice_group)
					break;
			if (g < ngroups && group_el[g] != el) {
				verr(v, "structure", "only one of %s and %s may be given (%s)",
				     group_el[g]->name, el->name, el->base);
			} else if (g == ngroups && ngroups < 16) {
				groups[ngroups] = el->choice_group;
				group_el[ngroups++] = el;
			}
		}
		if (companion) {
			char vname[128];
			snprintf(vname, sizeof(vname), "%s", key + 1);
			check_companion(v, el, json_get(o, vname), val);
		} else {
			char ename[128];
			snprintf(ename, sizeof(ename), "_%s", key);
			check_member(v, el, val, json_get(o, ename));
		}
		pop(v, mark);
	}
	/* Required elements (a choice counts once, under its base name). */
	for (uint32_t i = 0; i < t->n_elems; i++) {
		const struct fhir_elem *el = &fhir_elems[t->first_elem + i];
		bool seen = present[i / 64] & ((uint64_t)1 << (i % 64));

		if (el->min == 0 || seen)
			continue;
		if (el->choice_group) {
			bool any = false;
			for (uint32_t k = 0; k < t->n_elems; k++)
				if (fhir_elems[t->first_elem + k].choice_group == el->choice_group &&
				    (present[k / 64] & ((uint64_t)1 << (k % 64))))
					any = true;
			if (any)
				continue;
			/* report the group once, at its first alternative */
			if (i > 0 && fhir_elems[t->first_elem + i - 1].choice_group == el->choice_group)
				continue;
			{
				bool first = true;
				for (uint32_t k = 0; k < i; k++)
					if (fhir_elems[t->first_elem + k].choice_group == el->choice_group)
						first = false;
				if (!first)
					continue;
			}
		}
		{
			size_t mark = push_name(v, el->base);
			verr(v, "required", "missing required element '%s' (%s)", el->base, t->name);
			pop(v, mark);
		}
	}
	if (strcmp(t->name, "Reference") == 0)
		check_reference(v, via, o);
}

static void check_resource(struct vctx *v, json_object *o, const char *expect, bool contained)
{
	const char *rt;
	const struct fhir_type *t;

	if (!json_object_is_type(o, json_type_object)) {
		verr(v, "structure", "expected a resource (an object), found %s", json_kind(o));
		return;
	}
	rt = json_get_str(o, "resourceType");
	if (!rt) {
		verr(v, "structure", json_get(o, "resourceType") ? "resourceType must be a string"
								 : "missing resourceType");
		return;
	}
	t = fhir_resource_type(rt);
	if (!t) {
		verr(v, "not-supported", "unknown resource type '%.64s'", rt);
		return;
	}
	if (expect && strcmp(expect, rt) != 0) {
		verr(v, "invalid", "expected a %s resource, found %s", expect, rt);
		return;
	}
	if (contained) {
		if (json_get(o, "contained"))
			verr(v, "structure", "a contained resource must not contain resources");
		if (!json_get(o, "id"))
			verr(v, "required", "a contained resource must have an id");
	}
	{
		/* A top-level path starts with the type; a nested one goes on from
		 * where it is (Bundle.entry[0].resource, Patient.contained[0]). */
		size_t mark = v->path.len;
		json_object *saved_root = v->root;
		if (mark == 0)
			buf_addstr(&v->path, rt);
		if (!contained)
			v->root = o;
		check_object(v, t, o, NULL);
		v->root = saved_root;
		pop(v, mark);
	}
}

size_t fhir_validate(json_object *res, const char *expect_type, struct fhir_issues *iss)
{
	struct vctx v;

	v.iss = iss;
	v.root = res;
	v.errors = 0;
	buf_init(&v.path, 4096);
	check_resource(&v, res, expect_type, false);
	buf_release(&v.path);
	return v.errors;
}
