/* test_fhirpath.c - src/fhir/fhirpath.c: the FHIRPath subset used to extract
 * search-parameter index values.
 *
 * Every R4 SearchParameter expression (and each composite component) must
 * compile for each of its base types, with only the ones in r4_unsupported[]
 * refused; evaluation cases run on the R4 examples in tests/data/fhir-examples
 * and on small inline resources, one row per case with the exact results.
 *
 * A result is rendered as Type:json per node (Type/id for a resource), nodes
 * joined by " ; ", and for composites the results of each start node joined
 * by " || ".  Inline JSON and expected values are written with single quotes
 * for readability; sq() turns them into double quotes (expressions are not
 * converted: their string literals keep FHIRPath's single quotes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "fhir/fhirpath.h"
#include "fhir/model.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define EXAMPLES "tests/data/fhir-examples/"

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

static json_object *load(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct err e = ERR_INIT;
	json_object *o;
	char *data;
	long n;

	if (!fp)
		fail_msg("cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	data = malloc((size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	o = json_parse_buf(data, (size_t)n, 0, &e);
	free(data);
	if (!o)
		fail_msg("%s: %s", path, e.msg);
	return o;
}

static void render_node(const struct fp_node *nd, struct buf *out)
{
	if (nd->type->kind == FK_RESOURCE) {
		buf_addf(out, "%s/%s", nd->type->name, json_get_str(nd->v, "id"));
		return;
	}
	buf_addf(out, "%s:", nd->type->name);
	json_dump(nd->v, out);
}

static void render(const struct fp_result *r, size_t from, struct buf *out)
{
	for (size_t i = from; i < r->n; i++) {
		if (i > from)
			buf_addstr(out, " ; ");
		render_node(&r->v[i], out);
	}
}

/* The nodes must keep the invariants fhirpath.h promises the indexer. */
static void check_nodes(const struct fp_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct fp_node *nd = &r->v[i];
		enum json_type jt = json_object_get_type(nd->v);

		assert_non_null(nd->type);
		if (nd->type->kind == FK_PRIMITIVE)
			assert_true(jt == json_type_string || jt == json_type_int ||
				    jt == json_type_double || jt == json_type_boolean);
		else
			assert_int_equal(jt, json_type_object);
	}
}

/* ------------------------------------------------------------------ */
/* every R4 SearchParameter                                            */

/* The R4 parameters this module does not compile, and why.  Location-near
 * (type special) is not here: its expression, Location.position, is a plain
 * path; what "near" means is the indexer's business. */
static const struct {
	const char *id;
	const char *why;
} r4_unsupported[] = {
	{ "DomainResource-text", "no expression (_text searches the narrative)" },
	{ "Resource-content", "no expression (_content searches the whole text)" },
	{ "Resource-query", "no expression (_query names a named query)" },
};

static const char *unsupported_why(const char *id)
{
	for (size_t i = 0; i < N_OF(r4_unsupported); i++)
		if (strcmp(r4_unsupported[i].id, id) == 0)
			return r4_unsupported[i].why;
	return NULL;
}

static json_object *search_params;

static int sp_setup(void **state)
{
	(void)state;
	search_params = load("data/fhir/Bundle-searchParams.json");
	return 0;
}

static int sp_teardown(void **state)
{
	(void)state;
	json_object_put(search_params);
	search_params = NULL;
	return 0;
}

static bool abstract_base(const char *b)
{
	return strcmp(b, "Resource") == 0 || strcmp(b, "DomainResource") == 0;
}

static bool has_base(json_object *bases, const char *type)
{
	for (size_t k = 0; k < json_object_array_length(bases); k++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(bases, k)), type) == 0)
			return true;
	return false;
}

/* Compile sp's expression for type; counts pairs; fails the test on error. */
static void compile_for(const char *id, const char *expr, const char *type, size_t *pairs)
{
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL;

	if (fp_compile(expr, type, &x, &e) < 0)
		fail_msg("%s for %s: %s: %s", id, type ? type : "(relative)", err_code_name(e.code), e.msg);
	/* the base type's own branch always applies */
	if (!x)
		fail_msg("%s for %s: nothing applies", id, type);
	fp_free(x);
	(*pairs)++;
}

static void test_r4_all_compile(void **state)
{
	json_object *entries = json_get_arr(search_params, "entry");
	size_t n = json_object_array_length(entries), pairs = 0, comps = 0, refused = 0;
	struct timespec t0, t1;
	double ms;

	(void)state;
	assert_int_equal(n, 1375);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n; i++) {
		json_object *sp = json_get(json_object_array_get_idx(entries, i), "resource");
		const char *id = json_get_str(sp, "id");
		const char *expr = json_get_str(sp, "expression");
		json_object *bases = json_get_arr(sp, "base");
		json_object *components = json_get_arr(sp, "component");

		if (!expr) {
			if (!unsupported_why(id))
				fail_msg("%s has no expression and is not listed", id);
			refused++;
			continue;
		}
		if (unsupported_why(id))
			fail_msg("%s is listed as unsupported but has an expression", id);
		for (size_t k = 0; k < json_object_array_length(bases); k++) {
			const char *b = json_object_get_string(json_object_array_get_idx(bases, k));

			if (!abstract_base(b)) {
				compile_for(id, expr, b, &pairs);
				continue;
			}
			/* Resource-id & co: every concrete type, and the abstract name */
			compile_for(id, expr, b, &pairs);
			for (size_t t = 0; t < fhir_n_resource_types; t++)
				compile_for(id, expr, fhir_types[fhir_resource_types[t]].name, &pairs);
		}
		for (size_t k = 0; components && k < json_object_array_length(components); k++) {
			compile_for(id, json_get_str(json_object_array_get_idx(components, k), "expression"),
				    NULL, &pairs);
			comps++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("[ INFO     ] %zu (type, parameter) pairs and %zu components compiled in %.1f ms; "
		      "%zu parameters refused\n", pairs - comps, comps, ms, refused);
	assert_int_equal(refused, N_OF(r4_unsupported));
	/* generous: sanitizer and valgrind builds run this too */
	assert_true(ms < 20000);
}

/* A parameter compiled for a type it is not defined on applies to nothing
 * (each branch of the multi-type unions is rooted at its type), except
 * the relative InsurancePlan-name ("name | alias"). */
static void test_r4_other_types_dropped(void **state)
{
	json_object *entries = json_get_arr(search_params, "entry");
	size_t n = json_object_array_length(entries), checked = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		json_object *sp = json_get(json_object_array_get_idx(entries, i), "resource");
		const char *id = json_get_str(sp, "id");
		const char *expr = json_get_str(sp, "expression");
		json_object *bases = json_get_arr(sp, "base");
		const char *other = NULL;
		struct err e = ERR_INIT;
		struct fp_expr *x = NULL;

		if (!expr || has_base(bases, "Resource") || has_base(bases, "DomainResource") ||
		    strcmp(id, "InsurancePlan-name") == 0)
			continue;
		for (size_t t = 0; t < fhir_n_resource_types && !other; t++) {
			const char *name = fhir_types[fhir_resource_types[t]].name;

			if (!has_base(bases, name))
				other = name;
		}
		if (fp_compile(expr, other, &x, &e) < 0)
			fail_msg("%s for %s: %s", id, other, e.msg);
		if (x)
			fail_msg("%s applies to %s", id, other);
		checked++;
	}
	assert_true(checked > 1300);
}

/* Every R4 expression on every example of its base types: no errors, and
 * the node invariants hold.  (Composites also evaluate their components.) */
static void test_r4_eval_examples(void **state)
{
	static const char *const files[] = {
		"Patient-example.json", "Observation-blood-pressure.json", "Observation-example.json",
		"Condition-f202.json", "DocumentReference-example.json", "Bundle-bundle-example.json",
		"Library-composition-example.json", "OrganizationAffiliation-example.json",
		"Account-example.json", "Patient-pat3.json", "MolecularSequence-example.json",
		"Group-101.json", "CarePlan-example.json", "Encounter-example.json",
	};
	json_object *entries = json_get_arr(search_params, "entry");
	struct fp_result res = FP_RESULT_INIT, base = FP_RESULT_INIT;
	size_t evals = 0, nodes = 0;

	(void)state;
	for (size_t f = 0; f < N_OF(files); f++) {
		char path[256];
		json_object *r;
		const char *rt;

		snprintf(path, sizeof(path), EXAMPLES "%s", files[f]);
		r = load(path);
		rt = json_get_str(r, "resourceType");
		for (size_t i = 0; i < json_object_array_length(entries); i++) {
			json_object *sp = json_get(json_object_array_get_idx(entries, i), "resource");
			const char *expr = json_get_str(sp, "expression");
			json_object *bases = json_get_arr(sp, "base");
			json_object *components = json_get_arr(sp, "component");
			struct err e = ERR_INIT;
			struct fp_expr *x = NULL;

			if (!expr || !(has_base(bases, rt) || has_base(bases, "Resource")))
				continue;
			assert_int_equal(fp_compile(expr, rt, &x, &e), 0);
			fp_result_reset(&res);
			if (fp_eval(x, r, NULL, &res, &e) < 0)
				fail_msg("%s on %s: %s", json_get_str(sp, "id"), files[f], e.msg);
			check_nodes(&res);
			evals++;
			nodes += res.n;
			for (size_t k = 0; components && k < json_object_array_length(components); k++) {
				struct fp_expr *cx = NULL;
				const char *ce = json_get_str(json_object_array_get_idx(components, k),
							      "expression");

				assert_int_equal(fp_compile(ce, NULL, &cx, &e), 0);
				fp_result_reset(&base);
				for (size_t j = 0; j < res.n; j++) {
					if (fp_eval(cx, r, &res.v[j], &base, &e) < 0)
						fail_msg("%s component %s on %s: %s", json_get_str(sp, "id"),
							 ce, files[f], e.msg);
					evals++;
				}
				check_nodes(&base);
				nodes += base.n;
				fp_free(cx);
			}
			fp_free(x);
		}
		json_object_put(r);
	}
	fp_result_release(&res);
	fp_result_release(&base);
	print_message("[ INFO     ] %zu evaluations, %zu nodes\n", evals, nodes);
	assert_true(evals > 300);
	assert_true(nodes > 200);
}

/* ------------------------------------------------------------------ */
/* evaluation cases                                                    */

static const struct eval_case {
	const char *file;   /* in tests/data/fhir-examples, or NULL: json */
	const char *json;   /* an inline resource (single quotes) */
	const char *expr;
	const char *start;  /* composites: expr runs on each node of this, compiled for the type */
	const char *want;   /* single quotes for double */
} eval_cases[] = {
	/* paths */
	{ "Patient-example.json", NULL, "Patient.name.family", NULL,
	  "string:'Chalmers' ; string:'Windsor'" },
	{ "Patient-example.json", NULL, "Patient.name.given", NULL,
	  "string:'Peter' ; string:'James' ; string:'Jim' ; string:'Peter' ; string:'James'" },
	{ "Patient-example.json", NULL, "name.given", NULL,
	  "string:'Peter' ; string:'James' ; string:'Jim' ; string:'Peter' ; string:'James'" },
	{ "Patient-example.json", NULL, "Patient.gender | Patient.birthDate", NULL,
	  "code:'male' ; date:'1974-12-25'" },
	{ "Patient-example.json", NULL, "Patient.gender // a comment\n | /* another */ Patient.birthDate",
	  NULL, "code:'male' ; date:'1974-12-25'" },
	{ "Patient-example.json", NULL, "Patient.managingOrganization", NULL,
	  "Reference:{'reference':'Organization/1'}" },
	{ "Patient-example.json", NULL, "Resource.id | DomainResource.text.status", NULL,
	  "id:'example' ; code:'generated'" },
	{ "Patient-example.json", NULL, "Patient", NULL, "Patient/example" },
	{ "Patient-example.json", NULL, "Observation.code", NULL, "" },
	{ "Patient-example.json", NULL, "%resource.id | %context.gender", NULL,
	  "id:'example' ; code:'male'" },
	{ "Patient-example.json", NULL, "Patient.contact.relationship.coding.code", NULL,
	  "code:'N'" },
	/* choice elements */
	{ "Observation-example.json", NULL, "Observation.value", NULL,
	  "Quantity:{'value':185,'unit':'lbs','system':'http://unitsofmeasure.org','code':'[lb_av]'}" },
	{ "Observation-example.json", NULL, "Observation.value.as(Quantity)", NULL,
	  "Quantity:{'value':185,'unit':'lbs','system':'http://unitsofmeasure.org','code':'[lb_av]'}" },
	{ "Observation-example.json", NULL, "(Observation.value as Quantity).value", NULL,
	  "decimal:185" },
	{ "Observation-example.json", NULL, "Observation.value.as(CodeableConcept)", NULL, "" },
	/* a choice alternative's JSON name is not a FHIRPath name */
	{ "Observation-example.json", NULL, "valueQuantity.value", "", "" },
	{ "Observation-f002.json", NULL, "Observation.value.as(Quantity).value", NULL,
	  "decimal:12.6" },
	{ "Observation-bloodgroup.json", NULL, "(Observation.value as CodeableConcept) | Observation.code",
	  NULL,
	  "CodeableConcept:{'coding':[{'system':'http://snomed.info/sct','code':'112144000',"
	  "'display':'Blood group A (finding)'}],'text':'A'} ; "
	  "CodeableConcept:{'coding':[{'system':'http://loinc.org','code':'883-9',"
	  "'display':'ABO group [Type] in Blood'}],'text':'Blood Group'}" },
	{ "Observation-eye-color.json", NULL, "(Observation.value as string) | (Observation.value as CodeableConcept).text",
	  NULL, "string:'blue'" },
	{ "Observation-date-lastmp.json", NULL, "value.as(DateTime) | value.as(Period)", NULL,
	  "dateTime:'2016-12-30'" },
	{ "Observation-date-lastmp.json", NULL, "(Observation.value as dateTime)", NULL,
	  "dateTime:'2016-12-30'" },
	{ "Condition-f202.json", NULL, "Condition.onset.as(Age) | Condition.onset.as(Range)", NULL,
	  "Age:{'value':52,'unit':'years','system':'http://unitsofmeasure.org','code':'a'}" },
	{ "Condition-f202.json", NULL, "Condition.onset.as(Quantity).value", NULL, "decimal:52" },
	{ "Condition-f202.json", NULL, "Condition.onset.as(dateTime) | Condition.onset.as(Period)",
	  NULL, "" },
	{ "Condition-example2.json", NULL, "Condition.onset.as(string)", NULL,
	  "string:'approximately November 2012'" },
	{ "Condition-f201.json", NULL, "Condition.onset.as(dateTime) | Condition.onset.as(Period)",
	  NULL, "dateTime:'2013-04-02'" },
	/* where(), references */
	{ "Account-example.json", NULL, "Account.subject.where(resolve() is Patient)", NULL,
	  "Reference:{'reference':'Patient/example','display':'Peter James Chalmers'}" },
	{ "Account-example.json", NULL, "Account.subject.where(resolve() is Device)", NULL, "" },
	{ "Observation-example.json", NULL,
	  "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | "
	  "Observation.subject.where(resolve() is Patient) | Procedure.subject.where(resolve() is Patient)",
	  NULL, "Reference:{'reference':'Patient/example'}" },
	{ "Observation-example.json", NULL, "Observation.subject.where(resolve().is(FHIR.Patient))",
	  NULL, "Reference:{'reference':'Patient/example'}" },
	{ "DocumentReference-example.json", NULL,
	  "DocumentReference.author.where(resolve() is Practitioner)", NULL,
	  "Reference:{'reference':'Practitioner/xcda1'} ; Reference:{'reference':'#a2'}" },
	{ "DocumentReference-example.json", NULL,
	  "DocumentReference.author.where(resolve() is Organization)", NULL, "" },
	{ "DocumentReference-example.json", NULL, "DocumentReference.contained.name.family", NULL,
	  "string:'Smitty'" },
	{ "DocumentReference-example.json", NULL, "contained.ofType(Practitioner) | contained.ofType(Patient)",
	  NULL, "Practitioner/a2" },
	{ "Library-composition-example.json", NULL, "relatedArtifact.where(type='composed-of').resource",
	  NULL,
	  "canonical:'ActivityDefinition/administer-zika-virus-exposure-assessment' ; "
	  "canonical:'ActivityDefinition/order-serum-zika-dengue-virus-igm' ; "
	  "canonical:'ActivityDefinition/provide-mosquito-prevention-advice' ; "
	  "canonical:'Library/zika-virus-intervention-logic' ; "
	  "canonical:'PlanDefinition/zika-virus-intervention' ; "
	  "canonical:'Questionnaire/zika-virus-exposure-assessment'" },
	{ "Library-composition-example.json", NULL,
	  "Library.relatedArtifact.where(type='depends-on').resource | Library.relatedArtifact.where(type='successor').resource",
	  NULL, "" },
	{ "OrganizationAffiliation-example.json", NULL,
	  "OrganizationAffiliation.telecom.where(system='email')", NULL,
	  "ContactPoint:{'system':'email','value':'general.practice@example.org','use':'work'}" },
	{ "Patient-example.json", NULL, "telecom.where(system='phone').use", NULL,
	  "code:'work' ; code:'mobile' ; code:'old'" },
	{ "Patient-example.json", NULL, "telecom.where(system='email')", NULL, "" },
	{ "Patient-example.json", NULL, "Patient.name.where(use = 'maiden' or use = 'usual').given", NULL,
	  "string:'Jim' ; string:'Peter' ; string:'James'" },
	{ "Patient-example.json", NULL, "Patient.name.where($this.use = 'maiden').family", NULL,
	  "string:'Windsor'" },
	{ "Patient-example.json", NULL, "Patient.name.where(%resource.gender = 'female').family", NULL,
	  "" },
	{ "Patient-example.json", NULL, "Patient.telecom.where(rank.exists()).rank", NULL,
	  "positiveInt:1 ; positiveInt:2" },
	{ "Patient-example.json", NULL, "Patient.telecom.where(period.exists(end = '2014')).use", NULL,
	  "code:'old'" },
	/* indexer, first(), last() */
	{ "Bundle-bundle-example.json", NULL, "Bundle.entry[0].resource", NULL,
	  "MedicationRequest/3123" },
	{ "Bundle-bundle-example.json", NULL, "Bundle.entry[1].resource | Bundle.entry[2].resource", NULL,
	  "Medication/example" },
	{ "Bundle-bundle-example.json", NULL, "Bundle.entry.resource.ofType(Medication).id | Bundle.entry.resource.ofType(MedicationRequest).status",
	  NULL, "id:'example' ; code:'unknown'" },
	{ "Bundle-bundle-example.json", NULL, "Bundle.entry.resource.first() | Bundle.entry.resource.last()",
	  NULL, "MedicationRequest/3123 ; Medication/example" },
	{ "Patient-example.json", NULL, "Patient.name.first().family | Patient.name.last().use", NULL,
	  "string:'Chalmers' ; code:'maiden'" },
	{ "Patient-example.json", NULL, "Patient.name[1].given", NULL, "string:'Jim'" },
	{ "Patient-example.json", NULL, "Patient.name[7]", NULL, "" },
	/* extensions */
	{ "Patient-example.json", NULL,
	  "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
	  NULL, "dateTime:'1974-12-25T14:35:45-05:00'" },
	{ "Patient-example.json", NULL, "Patient.birthDate.extension.url", NULL,
	  "uri:'http://hl7.org/fhir/StructureDefinition/patient-birthTime'" },
	{ "Patient-example.json", NULL, "Patient.birthDate.extension('http://example.org/none')", NULL, "" },
	{ "Patient-example.json", NULL,
	  "Patient.contact.name.family.extension('http://hl7.org/fhir/StructureDefinition/humanname-own-prefix').value",
	  NULL, "string:'VV'" },
	{ "Patient-animal.json", NULL,
	  "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-animal').extension('species').value.coding.code",
	  NULL, "code:'canislf'" },
	{ "Patient-animal.json", NULL,
	  "extension('http://hl7.org/fhir/StructureDefinition/patient-animal').extension('breed').value.as(CodeableConcept).coding.code",
	  NULL, "code:'58108001' ; code:'gret'" },
	/* the one boolean expression in R4, and the empty-collection rules */
	{ "Patient-example.json", NULL, "Patient.deceased.exists() and Patient.deceased != false", NULL,
	  "boolean:false" },
	{ "Patient-pat3.json", NULL, "Patient.deceased.exists() and Patient.deceased != false", NULL,
	  "boolean:true" },
	{ "Patient-pat4.json", NULL, "Patient.deceased.exists() and Patient.deceased != false", NULL,
	  "boolean:true" },
	{ "Patient-xds.json", NULL, "Patient.deceased.exists() and Patient.deceased != false", NULL,
	  "boolean:false" },
	{ "Patient-xds.json", NULL, "Patient.deceased != false", NULL, "" },
	{ NULL, "{'resourceType':'Patient','deceasedBoolean':true}",
	  "Patient.deceased.exists() and Patient.deceased != false", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient','deceasedDateTime':'2020-01-02'}",
	  "Patient.deceased.exists() and Patient.deceased != false", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient','deceasedBoolean':false}",
	  "Patient.deceased.exists() and Patient.deceased != false", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}",
	  "Patient.deceased.exists() and Patient.deceased != false", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "true and {}", NULL, "" },
	{ NULL, "{'resourceType':'Patient'}", "{} and false", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "{} or true", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "false or {}", NULL, "" },
	{ NULL, "{'resourceType':'Patient'}", "false or false", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "true and true", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "{}.not() | true.not() | 'x'.not()", NULL,
	  "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "{}.exists() | {}.empty()", NULL,
	  "boolean:false ; boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "1 = 1.0", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "'a' = 'a'", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "'a' != 'b'", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "'true' = true", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "{} = 'a'", NULL, "" },
	{ NULL, "{'resourceType':'Patient'}", "(1 | 2) = (1 | 2)", NULL, "boolean:true" },
	{ NULL, "{'resourceType':'Patient'}", "(1 | 2) = (2 | 1)", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient'}", "(1 | 2) = 1", NULL, "boolean:false" },
	{ NULL, "{'resourceType':'Patient','gender':'other'}", "'a\\tb' | %ucum | `gender` | 2.50 | 7", NULL,
	  "string:'a\\tb' ; string:'http://unitsofmeasure.org' ; code:'other' ; decimal:2.50 ; integer:7" },
	{ NULL, "{'resourceType':'Patient','name':[{'family':'A','given':['x']},{'family':'A'}]}",
	  "(Patient.name[0] = Patient.name[1]) | (Patient.name[0] = Patient.name[0])", NULL,
	  "boolean:false ; boolean:true" },
	{ NULL, "{'resourceType':'Patient','name':[{'family':'A'},{'family':'A'}]}",
	  "Patient.name.family | (Patient.name[0] = Patient.name[1])", NULL,
	  "string:'A' ; string:'A' ; boolean:true" },
	/* is, as, ofType */
	{ "Patient-example.json", NULL,
	  "(Patient.birthDate is date) | (Patient.birthDate is dateTime) | Patient.gender.is(code)",
	  NULL, "boolean:true ; boolean:false" },
	{ "Patient-example.json", NULL, "Patient.birthDate.ofType(Date) | Patient.gender.as(System.String)",
	  NULL, "date:'1974-12-25' ; code:'male'" },
	{ "Patient-example.json", NULL, "Patient is Resource | Patient is DomainResource | Patient is Patient",
	  NULL, "boolean:true" },
	{ "Bundle-bundle-example.json", NULL, "(Bundle is DomainResource) | (Bundle is FHIR.Resource)",
	  NULL, "boolean:false ; boolean:true" },
	{ "Bundle-bundle-example.json", NULL, "Bundle.entry.resource.ofType(DomainResource).id", NULL,
	  "id:'3123' ; id:'example'" },
	/* union: duplicates by identity, order as written */
	{ "Patient-example.json", NULL, "Patient.gender | Patient.gender | gender", NULL, "code:'male'" },
	{ "Patient-example.json", NULL, "Patient.name.family | Patient.name[0].family", NULL,
	  "string:'Chalmers' ; string:'Windsor'" },
	{ "Patient-example.json", NULL, "Patient.birthDate | (Patient.gender | Patient.birthDate)", NULL,
	  "date:'1974-12-25' ; code:'male'" },
	/* nested unions with branches for other types dropped at compile time */
	{ "Observation-example.json", NULL,
	  "(Observation.code.text | (Patient.name | Observation.status)) | Patient.gender | Observation.id",
	  NULL, "code:'final' ; id:'example'" },
	{ "Observation-example.json", NULL,
	  "(Patient.name | Account.id).where(true) | (Observation.id | Patient.id)[0]", NULL,
	  "id:'example'" },
	/* primitive arrays with null placeholders and "_x" companions */
	{ NULL,
	  "{'resourceType':'Patient','name':[{'given':['a',null,'c'],'_given':[{'extension':"
	  "[{'url':'u','valueString':'e0'}]},{'extension':[{'url':'u','valueString':'e1'}]},null]}]}",
	  "Patient.name.given", NULL, "string:'a' ; string:'c'" },
	{ NULL,
	  "{'resourceType':'Patient','name':[{'given':['a',null,'c'],'_given':[{'id':'g0','extension':"
	  "[{'url':'u','valueString':'e0'}]},{'extension':[{'url':'u','valueString':'e1'}]},null]}]}",
	  "Patient.name.given.extension('u').value | Patient.name.given.id", NULL,
	  "string:'e0' ; string:'g0'" },
	{ NULL, "{'resourceType':'Patient','_birthDate':{'extension':[{'url':'u','valueCode':'unknown'}]}}",
	  "Patient.birthDate | Patient.birthDate.extension('u')", NULL, "" },
	/* composites: components relative to the nodes of the composite's expression */
	{ "Observation-blood-pressure.json", NULL, "code.coding.code", "Observation.component",
	  "code:'8480-6' ; code:'271649006' ; code:'bp-s' || code:'8462-4'" },
	{ "Observation-blood-pressure.json", NULL, "code", "Observation.component",
	  "CodeableConcept:{'coding':[{'system':'http://loinc.org','code':'8480-6','display':'Systolic blood pressure'},"
	  "{'system':'http://snomed.info/sct','code':'271649006','display':'Systolic blood pressure'},"
	  "{'system':'http://acme.org/devices/clinical-codes','code':'bp-s','display':'Systolic Blood pressure'}]} || "
	  "CodeableConcept:{'coding':[{'system':'http://loinc.org','code':'8462-4','display':'Diastolic blood pressure'}]}" },
	{ "Observation-blood-pressure.json", NULL, "value.as(Quantity)", "Observation.component",
	  "Quantity:{'value':107,'unit':'mmHg','system':'http://unitsofmeasure.org','code':'mm[Hg]'} || "
	  "Quantity:{'value':60,'unit':'mmHg','system':'http://unitsofmeasure.org','code':'mm[Hg]'}" },
	{ "Observation-blood-pressure.json", NULL, "value.as(Quantity).value",
	  "Observation | Observation.component", " || decimal:107 || decimal:60" },
	{ "Observation-blood-pressure.json", NULL, "value.as(CodeableConcept)", "Observation.component",
	  " || " },
	{ "Observation-f002.json", NULL, "value.as(Quantity).code", "Observation",
	  "code:'mmol/L'" },
	{ "DocumentReference-example.json", NULL, "code | target", "DocumentReference.relatesTo",
	  "code:'appends' ; Reference:{'reference':'DocumentReference/example'}" },
	{ "DocumentReference-example.json", NULL, "$this.target.where(resolve() is DocumentReference)",
	  "DocumentReference.relatesTo", "Reference:{'reference':'DocumentReference/example'}" },
	{ "Patient-example.json", NULL, "%resource.id | $this", "Patient.gender",
	  "id:'example' ; code:'male'" },
};

static void run_eval_case(const struct eval_case *c)
{
	json_object *r;
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL, *sx = NULL;
	struct fp_result res = FP_RESULT_INIT, starts = FP_RESULT_INIT;
	struct buf got = BUF_INIT(0);
	char *want = sq(c->want);

	if (c->file) {
		char path[256];

		snprintf(path, sizeof(path), EXAMPLES "%s", c->file);
		r = load(path);
	} else {
		r = parse_sq(c->json);
	}
	if (c->start && c->start[0]) {
		/* a composite: its expression for the type, components relative */
		if (fp_compile(c->start, json_get_str(r, "resourceType"), &sx, &e) < 0 ||
		    fp_compile(c->expr, NULL, &x, &e) < 0)
			fail_msg("%s: %s", c->expr, e.msg);
		assert_int_equal(fp_eval(sx, r, NULL, &starts, &e), 0);
		for (size_t i = 0; i < starts.n; i++) {
			size_t from = res.n;

			if (i > 0)
				buf_addstr(&got, " || ");
			if (fp_eval(x, r, &starts.v[i], &res, &e) < 0)
				fail_msg("%s: %s", c->expr, e.msg);
			render(&res, from, &got);
		}
	} else {
		/* start "" (not NULL): compile without a context type */
		const char *ctx = c->start ? NULL : json_get_str(r, "resourceType");

		if (fp_compile(c->expr, ctx, &x, &e) < 0)
			fail_msg("%s: %s: %s", c->expr, err_code_name(e.code), e.msg);
		if (fp_eval(x, r, NULL, &res, &e) < 0)
			fail_msg("%s: %s: %s", c->expr, err_code_name(e.code), e.msg);
		render(&res, 0, &got);
	}
	check_nodes(&res);
	if (strcmp(buf_cstr(&got), want) != 0)
		fail_msg("%s\n   got: %s\n  want: %s", c->expr, buf_cstr(&got), want);
	free(want);
	buf_release(&got);
	fp_result_release(&res);
	fp_result_release(&starts);
	fp_free(x);
	fp_free(sx);
	json_object_put(r);
}

static void test_eval_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(eval_cases); i++)
		run_eval_case(&eval_cases[i]);
}

/* A primitive node carries its "_x" companion; null placeholders yield no
 * node but do not shift the companions of the items after them. */
static void test_eval_companions(void **state)
{
	json_object *r = parse_sq("{'resourceType':'Patient','name':[{'given':['a',null,'c'],"
				  "'_given':[null,{'id':'g1'},{'id':'g2'}]}],'birthDate':'2000',"
				  "'_birthDate':{'id':'b'}}");
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL;
	struct fp_result res = FP_RESULT_INIT;

	(void)state;
	assert_int_equal(fp_compile("Patient.name.given | Patient.birthDate", "Patient", &x, &e), 0);
	assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
	assert_int_equal(res.n, 3);
	assert_string_equal(json_object_get_string(res.v[0].v), "a");
	assert_null(res.v[0].ext);
	assert_string_equal(json_object_get_string(res.v[1].v), "c");
	assert_non_null(res.v[1].ext);
	assert_string_equal(json_get_str(res.v[1].ext, "id"), "g2");
	assert_string_equal(res.v[2].type->name, "date");
	assert_string_equal(json_get_str(res.v[2].ext, "id"), "b");
	for (size_t i = 0; i < res.n; i++)
		assert_false(res.v[i].owned);
	fp_result_release(&res);
	fp_free(x);
	json_object_put(r);
}

/* Results are appended; the array is reused; a failed evaluation leaves
 * out as it was; owned start nodes are referenced, not borrowed. */
static void test_eval_result_reuse(void **state)
{
	json_object *r = parse_sq("{'resourceType':'Patient','id':'p','gender':'male',"
				  "'name':[{'given':['a','b']}]}");
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL, *bad = NULL, *this_x = NULL;
	struct fp_result res = FP_RESULT_INIT;
	struct fp_node start;
	struct fp_node *array;

	(void)state;
	assert_int_equal(fp_compile("Patient.gender", "Patient", &x, &e), 0);
	assert_int_equal(fp_compile("Patient.gender | (Patient.name.given and true)", "Patient", &bad, &e), 0);
	assert_int_equal(fp_compile("$this", NULL, &this_x, &e), 0);
	assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
	assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
	assert_int_equal(res.n, 2);
	array = res.v;
	assert_int_equal(fp_eval(bad, r, NULL, &res, &e), -1);
	assert_int_equal(e.code, ERR_UNPROCESSABLE);
	assert_int_equal(res.n, 2);
	assert_string_equal(json_object_get_string(res.v[1].v), "male");
	fp_result_reset(&res);
	assert_int_equal(res.n, 0);
	assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
	assert_ptr_equal(res.v, array);   /* no new array */
	fp_result_reset(&res);

	/* an owned start node: the result takes its own reference */
	start.v = json_object_new_string("owned");
	start.type = fhir_type_by_name("string");
	start.ext = NULL;
	start.owned = true;
	assert_int_equal(fp_eval(this_x, r, &start, &res, &e), 0);
	json_object_put(start.v);
	assert_int_equal(res.n, 1);
	assert_true(res.v[0].owned);
	assert_string_equal(json_object_get_string(res.v[0].v), "owned");
	fp_result_release(&res);
	assert_null(res.v);

	/* made values are owned and outlive the expression */
	{
		struct fp_expr *made = NULL;

		assert_int_equal(fp_compile("Patient.gender.exists() | 'lit' | 2.50 | true | 7",
					    "Patient", &made, &e), 0);
		assert_int_equal(fp_eval(made, r, NULL, &res, &e), 0);
		fp_free(made);
		assert_int_equal(res.n, 4);   /* true twice: one node */
		for (size_t i = 0; i < res.n; i++)
			assert_true(res.v[i].owned);
		assert_true(json_object_get_boolean(res.v[0].v));
		assert_string_equal(json_object_get_string(res.v[1].v), "lit");
		assert_string_equal(json_object_to_json_string(res.v[2].v), "2.50");
		assert_int_equal(json_object_get_int64(res.v[3].v), 7);
		fp_result_reset(&res);
	}

	/* an expression that does not apply, and a resource of no known type */
	assert_int_equal(fp_eval(NULL, r, NULL, &res, &e), 0);
	assert_int_equal(res.n, 0);
	{
		json_object *nope = parse_sq("{'resourceType':'Nope'}");
		assert_int_equal(fp_eval(x, nope, NULL, &res, &e), -1);
		assert_int_equal(e.code, ERR_INVALID);
		json_object_put(nope);
	}
	fp_result_release(&res);
	fp_free(x);
	fp_free(bad);
	fp_free(this_x);
	json_object_put(r);
}

/* FHIRPath evaluation errors: more than one item where one is needed, and
 * the step budget. */
static void test_eval_errors(void **state)
{
	static const char *const cases[] = {
		"Patient.name.given and true",
		"Patient.name.given or false",
		"Patient.name.given.not()",
		"Patient.name.where(given)",
		"Patient.name.given is string",
		"Patient.name.exists(given)",
		"Patient.generalPractitioner.where(resolve() is Practitioner).exists() and "
		"Patient.generalPractitioner.resolve() is Practitioner",
	};
	json_object *r = parse_sq("{'resourceType':'Patient','name':[{'given':['a','b']}],"
				  "'generalPractitioner':[{'reference':'Practitioner/1'},"
				  "{'reference':'Practitioner/2'}]}");
	struct fp_result res = FP_RESULT_INIT;

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct err e = ERR_INIT;
		struct fp_expr *x = NULL;

		if (fp_compile(cases[i], "Patient", &x, &e) < 0)
			fail_msg("%s: %s", cases[i], e.msg);
		if (fp_eval(x, r, NULL, &res, &e) == 0)
			fail_msg("%s: evaluated", cases[i]);
		assert_int_equal(e.code, ERR_UNPROCESSABLE);
		assert_int_equal(res.n, 0);
		fp_free(x);
	}
	json_object_put(r);

	/* nested where() over %resource: 64^4 conditions, stopped by the budget */
	{
		struct buf b = BUF_INIT(0);
		struct err e = ERR_INIT;
		struct fp_expr *x = NULL;
		const char *expr = "Patient.name.where(%resource.name.where(%resource.name.where("
				   "%resource.name.where(%resource.name.exists()).exists()).exists()).exists())";

		buf_addstr(&b, "{\"resourceType\":\"Patient\",\"name\":[");
		for (int i = 0; i < 64; i++)
			buf_addf(&b, "%s{\"family\":\"f%d\"}", i ? "," : "", i);
		buf_addstr(&b, "]}");
		r = json_parse_buf(b.data, b.len, 0, &e);
		assert_non_null(r);
		assert_int_equal(fp_compile(expr, "Patient", &x, &e), 0);
		assert_int_equal(fp_eval(x, r, NULL, &res, &e), -1);
		assert_int_equal(e.code, ERR_UNPROCESSABLE);
		assert_non_null(strstr(e.msg, "steps"));
		assert_int_equal(res.n, 0);
		fp_free(x);
		json_object_put(r);
		buf_release(&b);
	}
	fp_result_release(&res);
}

/* ------------------------------------------------------------------ */
/* compile errors                                                      */

static const struct compile_case {
	const char *expr;
	const char *context;
	int code;
	const char *msg;   /* a piece of the message */
} compile_cases[] = {
	/* syntax errors, with their offsets */
	{ "", NULL, ERR_INVALID, "offset 0: unexpected end of expression" },
	{ "   ", NULL, ERR_INVALID, "offset 3: unexpected end of expression" },
	{ "Patient.name.", NULL, ERR_INVALID, "offset 13: expected a name after '.'" },
	{ "Patient..name", NULL, ERR_INVALID, "offset 8: expected a name after '.'" },
	{ "(Patient.name", NULL, ERR_INVALID, "offset 13: expected ')'" },
	{ "Patient.name)", NULL, ERR_INVALID, "offset 12: unbalanced ')'" },
	{ "Patient.name family", NULL, ERR_INVALID, "offset 13: expected an operator" },
	{ "Patient.name.where(use = 'x'", NULL, ERR_INVALID, "offset 28: expected ')'" },
	{ "Patient.name.where()", NULL, ERR_INVALID, "offset 19: expected a name, literal or '('" },
	{ "Patient.name.first(1)", NULL, ERR_INVALID, "offset 19: expected ')': this function takes no argument" },
	{ "Patient.name.where(a, b)", NULL, ERR_INVALID, "offset 20: expected ')'" },
	{ "'abc", NULL, ERR_INVALID, "offset 0: unterminated string" },
	{ "`abc", NULL, ERR_INVALID, "offset 0: unterminated quoted identifier" },
	{ "'a\\qb'", NULL, ERR_INVALID, "offset 2: unknown escape" },
	{ "'\\u12'", NULL, ERR_INVALID, "offset 1: bad \\u escape" },
	{ "'\\ud800'", NULL, ERR_INVALID, "offset 1: lone surrogate" },
	{ "a ! b", NULL, ERR_INVALID, "offset 2: unexpected character" },
	{ "a # b", NULL, ERR_INVALID, "offset 2: unexpected character" },
	{ "Patient.name as", NULL, ERR_INVALID, "offset 15: expected a type name" },
	{ "Patient.name[", NULL, ERR_INVALID, "offset 13: unexpected end of expression" },
	{ "Patient.name[0", NULL, ERR_INVALID, "offset 14: expected ']'" },
	{ "{1}", NULL, ERR_INVALID, "offset 1: expected '}'" },
	{ "% x", NULL, ERR_INVALID, "offset 0: expected a name after '%'" },
	{ "name /* open comment", NULL, ERR_INVALID, "offset 5: unterminated comment" },
	{ "Patient.value as Quantity.value", NULL, ERR_INVALID, "offset 25: a type name cannot be followed by '.'" },
	{ "Patient.name is Foo", NULL, ERR_INVALID, "unknown type 'Foo' (offset 16)" },
	{ "Patient.name.ofType(System.Foo)", NULL, ERR_INVALID, "unknown type 'System.Foo'" },
	{ "x.as(FHIR.DateTime)", NULL, ERR_INVALID, "unknown type 'FHIR.DateTime'" },
	{ "99999999999", NULL, ERR_INVALID, "integer out of range" },
	/* the model */
	{ "Patient.nmae", "Patient", ERR_INVALID, "no element 'nmae' in Patient (offset 8)" },
	{ "nmae", "Patient", ERR_INVALID, "no element 'nmae' in Patient (offset 0)" },
	{ "Patient.name.foo", NULL, ERR_INVALID, "no element 'foo' in HumanName (offset 13)" },
	{ "Observation.valueQuantity", "Observation", ERR_INVALID, "no element 'valueQuantity' in Observation" },
	{ "Observation.value.as(Quantity).foo", "Observation", ERR_INVALID, "no element 'foo' in Quantity" },
	{ "Patient.birthDate.value", "Patient", ERR_INVALID, "no element 'value' in date" },
	{ "Patient.name.where(nmae = 'x')", "Patient", ERR_INVALID, "no element 'nmae' in HumanName (offset 19)" },
	{ "Patient.link.other.where(resolve() is HumanName)", "Patient", ERR_INVALID,
	  "resolve() is HumanName: not a resource type" },
	{ "Patient.name", "Nope", ERR_INVALID, "unknown resource type 'Nope'" },
	/* outside the subset */
	{ "Patient.name.given.count()", NULL, ERR_NOT_SUPPORTED, "function 'count' is not supported (offset 19)" },
	{ "Patient.descendants()", NULL, ERR_NOT_SUPPORTED, "function 'descendants'" },
	{ "Patient.name.select(given)", NULL, ERR_NOT_SUPPORTED, "function 'select'" },
	{ "1 + 2", NULL, ERR_NOT_SUPPORTED, "operator '+' is not supported (offset 2)" },
	{ "Patient.birthDate > '2000'", NULL, ERR_NOT_SUPPORTED, "operator '>'" },
	{ "Patient.birthDate <= '2000'", NULL, ERR_NOT_SUPPORTED, "operator '<='" },
	{ "a xor b", NULL, ERR_NOT_SUPPORTED, "operator 'xor'" },
	{ "a implies b", NULL, ERR_NOT_SUPPORTED, "operator 'implies'" },
	{ "a ~ b", NULL, ERR_NOT_SUPPORTED, "operator '~'" },
	{ "a & b", NULL, ERR_NOT_SUPPORTED, "operator '&'" },
	{ "a in b", NULL, ERR_NOT_SUPPORTED, "operator 'in'" },
	{ "a div 2", NULL, ERR_NOT_SUPPORTED, "operator 'div'" },
	{ "-1", NULL, ERR_NOT_SUPPORTED, "unary operator '-'" },
	{ "Patient.birthDate = @2000-01-01", NULL, ERR_NOT_SUPPORTED, "date/time literal" },
	{ "5 'mg'", NULL, ERR_NOT_SUPPORTED, "quantity literal" },
	{ "4 days", NULL, ERR_NOT_SUPPORTED, "quantity literal" },
	{ "%`vs-administrative-gender`", NULL, ERR_NOT_SUPPORTED, "environment variable 'vs-administrative-gender'" },
	{ "%terminologies", NULL, ERR_NOT_SUPPORTED, "environment variable 'terminologies'" },
	{ "name.where($index = 0)", NULL, ERR_NOT_SUPPORTED, "variable 'index'" },
	{ "Patient.name[1 + 1]", NULL, ERR_NOT_SUPPORTED, "an index other than a whole number literal" },
	{ "Patient.name[%x]", NULL, ERR_NOT_SUPPORTED, "an index other than a whole number literal" },
	{ "extension(%resource.url)", NULL, ERR_NOT_SUPPORTED, "extension() with an argument other than a string literal" },
	{ "Patient.link.other.resolve()", NULL, ERR_NOT_SUPPORTED, "resolve() is supported only as 'resolve() is Type'" },
	{ "Patient.link.other.resolve().name", "Patient", ERR_NOT_SUPPORTED, "resolve() is supported only" },
	{ "Patient.link.other.resolve() as Patient", NULL, ERR_NOT_SUPPORTED, "resolve() is supported only" },
	/* limits */
	{ "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
	  NULL, ERR_INVALID, "nested too deeply" },
	{ "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a",
	  NULL, ERR_INVALID, "nested too deeply" },
};

static void test_compile_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(compile_cases); i++) {
		const struct compile_case *c = &compile_cases[i];
		struct err e = ERR_INIT;
		struct fp_expr *x = (struct fp_expr *)&e; /* must be reset to NULL */

		if (fp_compile(c->expr, c->context, &x, &e) == 0)
			fail_msg("%s: compiled", c->expr);
		assert_null(x);
		if (e.code != c->code || !strstr(e.msg, c->msg))
			fail_msg("%s:\n   got: %s: %s\n  want: %s: ...%s...", c->expr, err_code_name(e.code),
				 e.msg, err_code_name(c->code), c->msg);
		assert_non_null(strstr(e.msg, "fhirpath: "));
	}
}

static void test_compile_limits(void **state)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL;

	(void)state;
	/* a long union is flat: not nested */
	for (int i = 0; i < 200; i++)
		buf_addf(&b, "%sPatient.name[%d].given", i ? " | " : "", i);
	assert_int_equal(fp_compile(buf_cstr(&b), "Patient", &x, &e), 0);
	assert_non_null(x);
	fp_free(x);
	/* too long */
	buf_reset(&b);
	for (int i = 0; i < FP_MAX_EXPR_LEN / 4 + 1; i++)
		buf_addstr(&b, "a | ");
	buf_addstr(&b, "a");
	assert_int_equal(fp_compile(buf_cstr(&b), NULL, &x, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_non_null(strstr(e.msg, "longer than"));
	buf_release(&b);
}

/* Union branches for other types are dropped; what is left is checked. */
static void test_compile_context(void **state)
{
	static const struct {
		const char *expr, *context;
		bool applies;
	} cases[] = {
		{ "Patient.name | Observation.code", "Observation", true },
		{ "Patient.name | Observation.code", "Account", false },
		{ "Patient.name | Observation.code", NULL, true },
		{ "(Patient.name as HumanName) | (Observation.value as Quantity)", "Account", false },
		{ "Patient.name.where(use = 'x') | Observation.code.first()", "Account", false },
		{ "Resource.id", "Account", true },
		{ "DomainResource.text", "Bundle", false },
		{ "DomainResource.text", "Account", true },
		{ "Resource.id", "Resource", true },
		{ "Patient.id", "Resource", false },
		{ "DomainResource.text | Resource.meta", "DomainResource", true },
		/* every path rooted elsewhere: dropped, though it would answer false */
		{ "Patient.deceased.exists() and Patient.deceased != false", "Observation", false },
		{ "Patient.deceased != false", "Observation", false },
		{ "Patient.active and Patient.deceased", "Observation", false },
		{ "Patient.active.empty()", "Observation", false },
		{ "Patient.active.empty() and Observation.code.exists()", "Observation", true },
		{ "Patient.active.empty() and code.exists()", "Observation", true },
		{ "Patient.active.empty() and true", "Observation", false },
		{ "true", "Observation", true },
		/* paths not rooted at a type are kept */
		{ "name | alias", "InsurancePlan", true },
		{ "%resource.id", "Account", true },
		{ "{}", "Account", true },
		/* a dead branch's element names are not checked against another type */
		{ "Patient.name | Observation.nosuch", "Patient", true },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct err e = ERR_INIT;
		struct fp_expr *x = NULL;

		if (fp_compile(cases[i].expr, cases[i].context, &x, &e) < 0)
			fail_msg("%s for %s: %s", cases[i].expr, cases[i].context, e.msg);
		if ((x != NULL) != cases[i].applies)
			fail_msg("%s for %s: applies %d", cases[i].expr, cases[i].context, x != NULL);
		fp_free(x);
	}
}

/* The dropped branch costs nothing at evaluation: the 30-odd branch
 * clinical-patient union compiled for Observation evaluates one. */
static void test_compile_union_pruned(void **state)
{
	json_object *entries = json_get_arr(search_params, "entry");
	const char *expr = NULL;
	struct err e = ERR_INIT;
	struct fp_expr *x = NULL;
	struct fp_result res = FP_RESULT_INIT;
	json_object *r = load(EXAMPLES "Observation-example.json");

	(void)state;
	for (size_t i = 0; i < json_object_array_length(entries) && !expr; i++) {
		json_object *sp = json_get(json_object_array_get_idx(entries, i), "resource");
		if (strcmp(json_get_str(sp, "id"), "clinical-patient") == 0)
			expr = json_get_str(sp, "expression");
	}
	assert_non_null(expr);
	assert_true(strlen(expr) > 1000);
	assert_int_equal(fp_compile(expr, "Observation", &x, &e), 0);
	assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
	assert_int_equal(res.n, 1);
	assert_string_equal(json_get_str(res.v[0].v, "reference"), "Patient/example");
	fp_result_release(&res);
	fp_free(x);
	json_object_put(r);
}

/* ------------------------------------------------------------------ */
/* references                                                          */

static void test_reference_type(void **state)
{
	static const struct {
		const char *ref;   /* a Reference (single quotes) */
		const char *want;  /* NULL: unknown */
	} cases[] = {
		{ "{'reference':'Patient/1'}", "Patient" },
		{ "{'reference':'Patient/1/_history/2'}", "Patient" },
		{ "{'reference':'http://example.org/fhir/Observation/abc'}", "Observation" },
		{ "{'reference':'https://example.org/fhir/Observation/abc/_history/3'}", "Observation" },
		{ "{'reference':'http://example.org/Patient'}", NULL },
		{ "{'reference':'Patient?identifier=http://sys|1'}", "Patient" },
		{ "{'reference':'#p1'}", "Practitioner" },
		{ "{'reference':'#o1'}", "Organization" },
		{ "{'reference':'#missing'}", NULL },
		{ "{'reference':'#'}", "Encounter" },
		{ "{'reference':'urn:uuid:9d3a5d6e-5f8b-4b4a-9c3c-2f1d1c0e7a11'}", NULL },
		{ "{'reference':'urn:uuid:9d3a5d6e-5f8b-4b4a-9c3c-2f1d1c0e7a11','type':'Patient'}", "Patient" },
		{ "{'reference':'urn:oid:1.2.3'}", NULL },
		{ "{'type':'http://hl7.org/fhir/StructureDefinition/Device','identifier':{'value':'x'}}", "Device" },
		{ "{'type':'Nope'}", NULL },
		{ "{'identifier':{'system':'http://x','value':'1'}}", NULL },
		{ "{'display':'someone'}", NULL },
		{ "{'reference':'Foo/1'}", NULL },
		{ "{'reference':'Patient'}", NULL },
		{ "{'reference':'Patient/'}", NULL },
		{ "{'reference':'Patient/a b'}", NULL },
		{ "{'reference':'patient/1'}", NULL },
		{ "{'reference':''}", NULL },
		{ "{'reference':42}", NULL },
		{ "'Patient/1'", NULL },
	};
	json_object *res = parse_sq("{'resourceType':'Encounter','contained':[{'resourceType':"
				    "'Practitioner','id':'p1'},{'resourceType':'Organization','id':'o1'},"
				    "{'resourceType':'Nope','id':'n1'}]}");

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		json_object *ref = parse_sq(cases[i].ref);
		const char *got = fp_reference_type(ref, res);

		if (cases[i].want ? !got || strcmp(got, cases[i].want) != 0 : got != NULL)
			fail_msg("%s: got %s, want %s", cases[i].ref, got ? got : "NULL",
				 cases[i].want ? cases[i].want : "NULL");
		json_object_put(ref);
	}
	{
		json_object *ref = parse_sq("{'reference':'#n1'}");
		assert_null(fp_reference_type(ref, res));
		assert_null(fp_reference_type(NULL, res));
		json_object_put(ref);
	}
	json_object_put(res);
}

/* resolve() is T on contained resources, in an evaluation. */
static void test_reference_contained_eval(void **state)
{
	json_object *r = parse_sq(
		"{'resourceType':'Observation','contained':[{'resourceType':'Patient','id':'p'},"
		"{'resourceType':'Group','id':'g'}],'subject':{'reference':'#p'},"
		"'performer':[{'reference':'#g'},{'reference':'#p'},{'reference':'Practitioner/1'},"
		"{'reference':'urn:uuid:9d3a5d6e-5f8b-4b4a-9c3c-2f1d1c0e7a11'}]}");
	static const struct {
		const char *expr;
		size_t n;
	} cases[] = {
		{ "Observation.subject.where(resolve() is Patient)", 1 },
		{ "Observation.subject.where(resolve() is Group)", 0 },
		{ "Observation.performer.where(resolve() is Patient)", 1 },
		{ "Observation.performer.where(resolve() is Resource)", 3 },
		{ "Observation.performer.where(resolve() is DomainResource)", 3 },
		{ "Observation.performer.where((resolve() is Patient).not())", 2 },
		{ "Observation.performer.where(resolve() is Practitioner or resolve() is Group)", 2 },
	};
	struct fp_result res = FP_RESULT_INIT;

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct err e = ERR_INIT;
		struct fp_expr *x = NULL;

		if (fp_compile(cases[i].expr, "Observation", &x, &e) < 0)
			fail_msg("%s: %s", cases[i].expr, e.msg);
		assert_int_equal(fp_eval(x, r, NULL, &res, &e), 0);
		if (res.n != cases[i].n)
			fail_msg("%s: %zu results, want %zu", cases[i].expr, res.n, cases[i].n);
		fp_result_reset(&res);
		fp_free(x);
	}
	fp_result_release(&res);
	json_object_put(r);
}

int main(void)
{
	const struct CMUnitTest r4[] = {
		cmocka_unit_test(test_r4_all_compile),
		cmocka_unit_test(test_r4_other_types_dropped),
		cmocka_unit_test(test_r4_eval_examples),
		cmocka_unit_test(test_compile_union_pruned),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_cases),
		cmocka_unit_test(test_eval_companions),
		cmocka_unit_test(test_eval_result_reuse),
		cmocka_unit_test(test_eval_errors),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_compile_limits),
		cmocka_unit_test(test_compile_context),
		cmocka_unit_test(test_reference_type),
		cmocka_unit_test(test_reference_contained_eval),
	};
	int failed = cmocka_run_group_tests_name("fhirpath_r4", r4, sp_setup, sp_teardown);

	failed += cmocka_run_group_tests_name("fhirpath", tests, NULL, NULL);
	return failed ? 1 : 0;
}
