/* capability_search.c - the search part of the CapabilityStatement.
 *
 * Per resource type: the search-type interaction, every search parameter
 * the registry can answer for the type (R4's and the database's own
 * SearchParameter resources, by code, with its canonical url and type), and
 * the _include / _revinclude values that work (every reference parameter).
 * A parameter this server cannot evaluate for the type (its expression is
 * outside our FHIRPath subset, or it has none, like Location's near) is left
 * out of searchParam and named in the resource's documentation, so that a
 * client knows rather than guesses.  Read under the registry's read lock. */
#include <stdio.h>
#include <string.h>

#include "fhir/fhir.h"
#include "fhir/search.h"
#include "fhir/search_int.h"
#include "base/banned.h"

static const char *const sp_type_names[] = {
	[SPT_NUMBER] = "number", [SPT_DATE] = "date", [SPT_STRING] = "string",
	[SPT_TOKEN] = "token", [SPT_REFERENCE] = "reference", [SPT_COMPOSITE] = "composite",
	[SPT_QUANTITY] = "quantity", [SPT_URI] = "uri", [SPT_SPECIAL] = "special",
};

/* Parameters every type answers without index rows of their own. */
static bool answered_by_store(const char *code)
{
	return strcmp(code, "_id") == 0 || strcmp(code, "_lastUpdated") == 0 ||
	       strcmp(code, "_text") == 0 || strcmp(code, "_content") == 0 ||
	       strcmp(code, "_list") == 0;
}

/* Is binding i the one in force for its code (a custom definition, sorted
 * after R4's, replaces it)? */
static bool in_force(const struct type_params *tp, size_t i)
{
	return i + 1 >= tp->n || strcmp(tp->v[i].sp->code, tp->v[i + 1].sp->code) != 0;
}

static bool usable(const struct binding *b)
{
	if (answered_by_store(b->sp->code) || b->nalias)
		return true;
	return b->x && !b->sp->unsupported[0];
}

static void add_json_string(struct buf *out, const char *s)
{
	buf_addch(out, '"');
	buf_add_json_str(out, s, strlen(s));
	buf_addch(out, '"');
}

void fhir_capability_search(const struct fhir_config *cfg, const char *type, struct buf *out)
{
	const struct type_params *tp;
	size_t n = 0, nref = 0, nbad = 0;

	if (!cfg->params)
		return;
	fhir_params_rdlock(cfg->params);
	tp = fhir_params_type(cfg->params, type);
	if (!tp) {
		fhir_params_unlock(cfg->params);
		return;
	}
	/* searchParam: the usable ones */
	for (size_t i = 0; i < tp->n; i++) {
		const struct binding *b = &tp->v[i];
		if (!in_force(tp, i) || !usable(b))
			continue;
		buf_addstr(out, n++ ? "," : ",\"searchParam\":[");
		buf_addstr(out, "{\"name\":");
		add_json_string(out, b->sp->code);
		if (b->sp->url) {
			buf_addstr(out, ",\"definition\":");
			add_json_string(out, b->sp->url);
		}
		buf_addf(out, ",\"type\":\"%s\"}", sp_type_names[b->sp->type]);
		if (b->sp->type == SPT_REFERENCE && b->x)
			nref++;
	}
	/* the extra ones the search page defines for every type */
	buf_addstr(out, n++ ? "," : ",\"searchParam\":[");
	buf_addstr(out, "{\"name\":\"_list\",\"type\":\"token\"},{\"name\":\"_has\",\"type\":\"special\"}]");
	/* includes: Type:param for every reference parameter, and the wildcard */
	buf_addstr(out, ",\"searchInclude\":[\"*\"");
	for (size_t i = 0; i < tp->n; i++) {
		const struct binding *b = &tp->v[i];
		char v[192];
		if (!in_force(tp, i) || b->sp->type != SPT_REFERENCE || !b->x)
			continue;
		snprintf(v, sizeof(v), "%s:%s", type, b->sp->code);
		buf_addch(out, ',');
		add_json_string(out, v);
	}
	buf_addstr(out, "],\"searchRevInclude\":[\"*\"]");
	/* documentation: what cannot be searched, and why */
	for (size_t i = 0; i < tp->n; i++) {
		const struct binding *b = &tp->v[i];
		char line[320];
		if (!in_force(tp, i) || usable(b))
			continue;
		if (nbad++ == 0)
			buf_addstr(out, ",\"documentation\":\"Search parameters this server cannot evaluate: ");
		else
			buf_addstr(out, "; ");
		snprintf(line, sizeof(line), "%s (%s)", b->sp->code,
			 b->why[0] ? b->why : b->sp->unsupported[0] ? b->sp->unsupported : "no expression");
		buf_add_json_str(out, line, strlen(line)); /* inside the string */
	}
	if (nbad)
		buf_addstr(out, ".\"");
	(void)nref;
	fhir_params_unlock(cfg->params);
}
