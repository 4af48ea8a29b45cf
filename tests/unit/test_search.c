/* test_search.c - src/fhir search: folding, the index rows extracted from a
 * resource (index.c), and queries planned and run against a real store
 * (search.c, sqlite_search.c) through fhir_search_ids.
 *
 * JSON is written with single quotes; sq() turns them into double quotes
 * (no case needs a literal single quote).  Index rows are rendered as text,
 * one per row, so that a table row of expectations reads like the index:
 *   token   "sys|code"  ("#text|words" for :text)
 *   string  "norm/exact"
 *   date    "lo..hi" in ms
 *   number, quantity  "value [lo,hi) sys|code"
 *   reference "Type/id", uri "uri". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static char *sq(const char *s)
{
	char *o = strdup(s);

	assert_non_null(o);
	for (char *p = o; *p; p++)
		if (*p == '\'')
			*p = '"';
	return o;
}

static json_object *parse_sq(const char *s)
{
	char *t = sq(s);
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(t, strlen(t), 0, &e);

	if (!o)
		fail_msg("test JSON does not parse: %s: %s", e.msg, t);
	free(t);
	return o;
}

/* ------------------------------------------------------------------ */
/* folding                                                             */

static void test_fold(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Anna", "anna" },
		{ "ÅNGSTRÖM", "angstrom" },
		{ "Müller", "muller" },
		{ "Straße", "strasse" },
		{ "Ñandú", "nandu" },
		{ "Ærø", "aero" },      /* Æ is two letters, like ß */
		{ "Œuvre", "oeuvre" },
		{ "O'Neil-Evans, Jr.", "o'neil-evans, jr." },
		{ "Δέλτα", "Δέλτα" },  /* outside Latin: unchanged */
		{ "", "" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct buf b = BUF_INIT(0);
		const char *want = cases[i].out;

		fhir_fold(cases[i].in, strlen(cases[i].in), &b);
		if (strcmp(buf_cstr(&b), want) != 0)
			fail_msg("fold(%s) = %s, expected %s", cases[i].in, buf_cstr(&b), want);
		buf_release(&b);
	}
}

/* ------------------------------------------------------------------ */
/* a store with the R4 parameters                                      */

struct fx {
	char dir[64], path[96];
	struct store *s;
	struct fhir_params *params;
	struct fhir_config cfg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-search-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0 ||
	    fhir_params_load(f->s, &f->params, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	f->cfg.store = f->s;
	f->cfg.params = f->params;
	f->cfg.software_version = "test";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	fhir_params_free(f->params);
	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* index rows                                                          */

/* Row r as text (see the file comment). */
static void row_text(const struct store_ix_row *r, struct buf *out)
{
	switch (r->kind) {
	case SIX_TOKEN:
		buf_addf(out, "%s|%s", r->s1 ? r->s1 : "", r->s2 ? r->s2 : "");
		break;
	case SIX_STRING:
		buf_addf(out, "%s/%s", r->s1, r->s2);
		break;
	case SIX_DATE:
		buf_addf(out, "%" PRId64 "..%" PRId64, r->t1, r->t2);
		break;
	case SIX_NUMBER:
		buf_addf(out, "%g [%g,%g)", r->n1, r->n2, r->n3);
		break;
	case SIX_QUANTITY:
		buf_addf(out, "%g [%g,%g) %s|%s", r->n1, r->n2, r->n3, r->s1 ? r->s1 : "",
			 r->s2 ? r->s2 : "");
		break;
	case SIX_REFERENCE:
		buf_addf(out, "%s/%s", r->s1, r->s2);
		break;
	case SIX_URI:
		buf_addf(out, "%s", r->s1);
		break;
	case SIX_TEXT:
		buf_addf(out, "narrative=%s;content=%s", r->s1, r->s2);
		break;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of parameter code (with flag: STORE_PID_* or 0; "_text" for the
 * full-text row), sorted, joined by "; ". */
static char *rows_of(struct fx *f, const char *json_sq, const char *code, uint32_t flag)
{
	json_object *o = parse_sq(json_sq);
	const char *type = json_get_str(o, "resourceType");
	struct fhir_ixrows rows;
	struct err e = ERR_INIT;
	const struct fhir_sp *sp = strcmp(code, "_text") == 0 ? NULL
				   : fhir_params_find(f->params, type, code);
	char *texts[64];
	size_t n = 0;
	struct buf out = BUF_INIT(0);

	if (strcmp(code, "_text") != 0 && !sp)
		fail_msg("no parameter %s on %s", code, type);
	fhir_ixrows_init(&rows);
	if (fhir_index(f->params, o, &rows, &e) < 0)
		fail_msg("fhir_index: %s", e.msg);
	for (size_t i = 0; i < rows.n && n < N_OF(texts); i++) {
		const struct store_ix_row *r = &rows.v[i];
		struct buf t = BUF_INIT(0);
		if (sp ? r->kind == SIX_TEXT || r->pid != (fhir_sp_pid(sp) | flag) : r->kind != SIX_TEXT)
			continue;
		row_text(r, &t);
		if (r->grp)
			buf_addf(&t, " g%u.%u", r->grp >> 4, r->grp & 15);
		texts[n++] = buf_detach(&t, NULL);
	}
	qsort(texts, n, sizeof(texts[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		buf_addf(&out, "%s%s", i ? "; " : "", texts[i]);
		free(texts[i]);
	}
	fhir_ixrows_release(&rows);
	json_object_put(o);
	return buf_detach(&out, NULL);
}

/* fhir_next_patient_ref: every well-formed Patient reference, in order;
 * versioned, absolute, malformed and cut-off ones are skipped. */
static void test_patient_refs(void **state)
{
	static const char json[] =
		"{\"subject\":{\"reference\":\"Patient/p1\"},"
		"\"a\":{\"reference\":\"Patient/p2/_history/3\"},"
		"\"b\":{\"reference\":\"Patient/bad id\"},"
		"\"c\":{\"reference\":\"Practitioner/x\"},"
		"\"d\":{\"reference\":\"Patient/\"},"
		"\"e\":{\"reference\":\"Patient/p-3.x\"},"
		"\"f\":{\"reference\":\"Patient/cut";
	size_t at = 0, n, len = sizeof(json) - 1;

	(void)state;
	n = fhir_next_patient_ref(json, len, &at);
	assert_int_equal(n, 2);
	assert_memory_equal(json + at - n, "p1", 2);
	n = fhir_next_patient_ref(json, len, &at);
	assert_int_equal(n, 5);
	assert_memory_equal(json + at - n, "p-3.x", 5);
	assert_int_equal(fhir_next_patient_ref(json, len, &at), 0);
	assert_int_equal(at, len);
	at = 0;
	assert_int_equal(fhir_next_patient_ref("{}", 2, &at), 0);
}

static void test_index_rows(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *json, *code;
		uint32_t flag;
		const char *rows;
	} cases[] = {
		/* a display and CodeableConcept.text are the resource's own #text
		 * rows; codings without a display add none */
		{ "{'resourceType':'Observation','status':'final','code':{'coding':[{'system':'http://loinc.org',"
		  "'code':'2339-0','display':'Glucose [Mass]'},{'code':'x'}],'text':'Blood SUGAR'}}",
		  "code", 0, "#text|blood sugar; #text|glucose [mass]; http://loinc.org|2339-0; |x" },
		/* Identifier: system|value, type|value for :of-type, type.text for :text */
		{ "{'resourceType':'Patient','identifier':[{'system':'urn:s','value':'v1','type':{'coding':"
		  "[{'system':'urn:t','code':'MR','display':'Medical record'}],'text':'MRN'}}]}",
		  "identifier", 0, "#text|medical record; #text|mrn; urn:s|v1" },
		{ "{'resourceType':'Patient','identifier':[{'system':'urn:s','value':'v1','type':{'coding':"
		  "[{'system':'urn:t','code':'MR'}]}}]}",
		  "identifier", STORE_PID_OFTYPE, "urn:t|MR|v1" },
		/* ContactPoint: the value, no system; booleans as true/false */
		{ "{'resourceType':'Patient','telecom':[{'system':'phone','value':'555'}]}", "telecom", 0, "|555" },
		{ "{'resourceType':'Patient','active':false}", "active", 0, "|false" },
		/* quantities: (system, code), and a unit that differs from the code
		 * gets its own row; a unit alone is the code */
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},'valueQuantity':"
		  "{'value':185,'unit':'lbs','system':'http://unitsofmeasure.org','code':'[lb_av]'}}",
		  "value-quantity", 0, "185 [184.5,185.5) http://unitsofmeasure.org|[lb_av]; 185 [184.5,185.5) |lbs" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},'valueQuantity':"
		  "{'value':1.50,'unit':'mg','system':'http://unitsofmeasure.org','code':'mg'}}",
		  "value-quantity", 0, "1.5 [1.495,1.505) http://unitsofmeasure.org|mg" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},'valueQuantity':"
		  "{'value':-2,'unit':'mg/dL'}}", "value-quantity", 0, "-2 [-2.5,-1.5) |mg/dL" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},'valueQuantity':{'value':7}}",
		  "value-quantity", 0, "7 [6.5,7.5) |" },
		/* numbers keep the precision they were written with */
		{ "{'resourceType':'RiskAssessment','status':'final','subject':{'reference':'Patient/1'},"
		  "'prediction':[{'probabilityDecimal':0.50},{'probabilityDecimal':100}]}",
		  "probability", 0, "0.5 [0.495,0.505); 100 [99.5,100.5)" },
		/* references: Type/id (history dropped), absolute urls as uri rows,
		 * identifiers for :identifier, contained ones not at all */
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},"
		  "'subject':{'reference':'Patient/p1/_history/3'}}", "subject", 0, "Patient/p1" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},"
		  "'subject':{'reference':'http://x.org/fhir/Patient/9'}}", "subject", 0,
		  "http://x.org/fhir/Patient/9" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},"
		  "'subject':{'identifier':{'system':'urn:m','value':'42'}}}", "subject", STORE_PID_IDENT,
		  "urn:m|42" },
		{ "{'resourceType':'Observation','status':'final','code':{'text':'w'},"
		  "'contained':[{'resourceType':'Patient','id':'c'}],'subject':{'reference':'#c'}}",
		  "subject", 0, "" },
		/* strings: every part of a name, folded and as written */
		{ "{'resourceType':'Patient','name':[{'family':'Ångström','given':['Anna'],'text':'A Å'}]}",
		  "name", 0, "a a/A Å; angstrom/Ångström; anna/Anna" },
		/* dates: the range of the precision; a Period's open end is open */
		{ "{'resourceType':'Patient','birthDate':'1970'}", "birthdate", 0, "0..31536000000" },
		{ "{'resourceType':'Encounter','status':'finished','class':{'code':'AMB'},"
		  "'period':{'start':'1970-01-02'}}", "date", 0, "86400000..4611686018427387903" },
		/* composites: one group per value, component number in the low bits
		 * (groups 1 and 2 went to component-code-value-concept, which
		 * comes first and found no CodeableConcept value) */
		{ "{'resourceType':'Observation','status':'final','code':{'text':'bp'},'component':["
		  "{'code':{'coding':[{'code':'s'}]},'valueQuantity':{'value':140}},"
		  "{'code':{'coding':[{'code':'d'}]},'valueQuantity':{'value':90}}]}",
		  "component-code-value-quantity", 0,
		  "140 [139.5,140.5) | g3.1; 90 [89.5,90.5) | g4.1; |d g4.0; |s g3.0" },
		/* full text: the narrative with its character references (an unknown
		 * entity's & is a space), and notes */
		{ "{'resourceType':'Condition','subject':{'reference':'Patient/1'},'text':{'status':'generated',"
		  "'div':'<div>&#197;se &amp; &#x4F;la &bogus; x</div>'},"
		  "'note':[{'text':'polyuria'}]}", "_text", 0,
		  "narrative= Åse & Ola  bogus; x ;content=polyuria  Åse & Ola  bogus; x " },
	};

	for (size_t i = 0; i < N_OF(cases); i++) {
		char *got = rows_of(f, cases[i].json, cases[i].code, cases[i].flag);
		if (strcmp(got, cases[i].rows) != 0)
			fail_msg("case %zu (%s):\n  got      %s\n  expected %s", i, cases[i].code, got,
				 cases[i].rows);
		free(got);
	}
}

/* A string longer than the index keeps is cut at a character boundary. */
static void test_index_cut_utf8(void **state)
{
	struct fx *f = *state;
	struct buf j = BUF_INIT(0);
	char *got;

	buf_addstr(&j, "{'resourceType':'Patient','name':[{'family':'x");
	for (int i = 0; i < 600; i++)
		buf_addstr(&j, "é"); /* 1 + 1200 bytes: the cut falls inside one */
	buf_addstr(&j, "'}]}");
	got = rows_of(f, buf_cstr(&j), "family", 0);
	/* folded (e) and exact (é) parts: 1 + 511 two-byte characters each side */
	assert_int_equal(strlen(got), 1 + 511 + 1 + 1 + 511 * 2);
	free(got);
	buf_release(&j);
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

static void put(struct fx *f, const char *json_sq)
{
	json_object *o = parse_sq(json_sq);
	struct fhir_prepared p;
	struct store_op op;
	struct store_txn t;
	struct err e = ERR_INIT;

	fhir_prepared_init(&p);
	if (fhir_prepare(f->params, o, json_get_str(o, "id"), &p, &e) < 0)
		fail_msg("prepare: %s", e.msg);
	memset(&op, 0, sizeof(op));
	fhir_prepared_op(&p, &op);
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	if (store_commit(f->s, &t) != 0)
		fail_msg("put: %s", op.err.msg);
	fhir_prepared_release(&p);
	json_object_put(o);
}

static const char *const seed_data[] = {
	"{'resourceType':'Patient','id':'a','name':[{'family':'Ångström'}],'birthDate':'1970-03-15',"
	"'identifier':[{'system':'urn:a,b','value':'X|Y'}],'managingOrganization':{'reference':'Organization/o1'}}",
	"{'resourceType':'Patient','id':'b','name':[{'family':'Baker'}],'birthDate':'1985'}",
	"{'resourceType':'Organization','id':'o1','name':'Springfield'}",
	"{'resourceType':'Observation','id':'g1','status':'final','code':{'coding':[{'system':"
	"'http://loinc.org','code':'2339-0','display':'Glucose'}]},'subject':{'reference':'Patient/a'},"
	"'valueQuantity':{'value':100,'unit':'mg/dL','system':'http://unitsofmeasure.org','code':'mg/dL'}}",
	"{'resourceType':'Observation','id':'g2','status':'final','code':{'coding':[{'system':"
	"'http://loinc.org','code':'2339-0'}]},'subject':{'reference':'http://x.org/Patient/1'},"
	"'valueQuantity':{'value':5.5,'unit':'mmol/l','system':'http://unitsofmeasure.org','code':'mmol/L'}}",
	"{'resourceType':'Observation','id':'g3','status':'final','code':{'text':'nothing'},"
	"'subject':{'identifier':{'value':'7'}}}",
	"{'resourceType':'Observation','id':'g4','status':'final','code':{'text':'no subject'}}",
	"{'resourceType':'ValueSet','id':'v1','status':'active','url':'http://e.org/vs/colors'}",
	"{'resourceType':'ValueSet','id':'v2','status':'active','url':'http://e.org/vs/colors/warm'}",
	"{'resourceType':'ValueSet','id':'v3','status':'active','url':'http://e.org/vs/colorsx'}",
};

static void test_search_ids(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *type, *query;
		const char *ids;   /* space-separated, in creation order; or "!message" */
	} cases[] = {
		{ "Patient", "name=angstrom", "a" },
		{ "Patient", "name:exact=%C3%85ngstr%C3%B6m", "a" },
		{ "Patient", "identifier=urn:a\\,b|X\\|Y", "a" },
		{ "Patient", "identifier=X|Y", "" },
		{ "Patient", "identifier=a|b|c", "!a token is system|code" },
		{ "Patient", "birthdate=ge1980", "b" },
		{ "Patient", "birthdate=1985-13", "!not a valid date" },
		{ "Patient", "organization.name=spring", "a" },
		{ "Patient", "_has:Observation:subject:code=2339-0", "a" },
		{ "Patient", "nope=1", "!unknown search parameter 'nope'" },
		{ "Observation", "code:text=gluc", "g1" },
		{ "Observation", "code:text=nothing", "g3" },
		{ "Observation", "value-quantity=100||mg/dL", "g1" },
		{ "Observation", "value-quantity=5.5||mmol/l", "g2" },
		{ "Observation", "value-quantity=5.5|http://unitsofmeasure.org|", "g2" },
		{ "Observation", "value-quantity=5.5|http://snomed.info/sct|", "" },
		{ "Observation", "value-quantity=0x10", "!not a number" },
		{ "Observation", "value-quantity=1|2|3|4", "!a quantity is" },
		{ "Observation", "value-quantity:exact=1", "!modifier ':exact' does not apply" },
		{ "Observation", "subject:missing=true", "g4" },
		{ "Observation", "subject:missing=false", "g1 g2 g3" },
		{ "Observation", "subject=http://x.org/Patient/1", "g2" },
		{ "Observation", "subject:identifier=7", "g3" },
		{ "ValueSet", "url:below=http://e.org/vs/colors", "v1 v2" },
		{ "ValueSet", "url:above=http://e.org/vs/colorsx", "v3" },
		{ "ValueSet", "url:above=http://e.org/vs/colors/warm/x", "v1 v2" },
		{ "Observation", "_sort=nope", "!cannot sort" },
		{ "Observation", "_include:bad=Observation:subject", "!modifier ':bad'" },
		{ "Observation", "_text=%E2%98%85", "" },
		{ "Observation", "_content=", "!no words to search for" },
	};
	char ids[8][ID_MAX + 1];

	for (size_t i = 0; i < N_OF(seed_data); i++)
		put(f, seed_data[i]);
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct err e = ERR_INIT;
		size_t n = 0;
		struct buf got = BUF_INIT(0);
		int rc = fhir_search_ids(&f->cfg, cases[i].type, cases[i].query, ids, N_OF(ids), &n, &e);

		if (cases[i].ids[0] == '!') {
			if (rc == 0 || e.code != ERR_INVALID || !strstr(e.msg, cases[i].ids + 1))
				fail_msg("case %zu %s?%s: expected an error '%s', got rc %d: %s", i,
					 cases[i].type, cases[i].query, cases[i].ids + 1, rc, e.msg);
			continue;
		}
		if (rc < 0)
			fail_msg("case %zu %s?%s: %s", i, cases[i].type, cases[i].query, e.msg);
		for (size_t k = 0; k < n && k < N_OF(ids); k++)
			buf_addf(&got, "%s%s", k ? " " : "", ids[k]);
		if (strcmp(buf_cstr(&got), cases[i].ids) != 0)
			fail_msg("case %zu %s?%s: got '%s', expected '%s'", i, cases[i].type,
				 cases[i].query, buf_cstr(&got), cases[i].ids);
		buf_release(&got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_patient_refs),
		cmocka_unit_test_setup_teardown(test_index_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_cut_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_ids, setup, teardown),
	};

	log_level = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
