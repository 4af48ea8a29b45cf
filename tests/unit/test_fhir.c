/* test_fhir.c - src/fhir: the model tables, validation, preparation for the
 * store, OperationOutcome, ETags, and transaction/batch Bundles against a
 * real store.
 *
 * JSON in the tables is written with single quotes for readability; sq()
 * turns them into double quotes before parsing (no case needs a literal
 * single quote).  fhir_validate has one row per rule of validate.c: the
 * number of errors, and the expression, IssueType code and a piece of the
 * message of the first issue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "fhir/fhir_int.h"
#include "fhir/model.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Single quotes to double quotes, into a malloc'd string. */
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
/* the model                                                           */

static void test_model_counts(void **state)
{
	(void)state;
	assert_int_equal(fhir_n_resource_types, 146);
	assert_string_equal(fhir_version, "4.0.1");
	/* sorted, concrete resources, each with id and meta */
	for (size_t i = 0; i < fhir_n_resource_types; i++) {
		const struct fhir_type *t = &fhir_types[fhir_resource_types[i]];
		assert_int_equal(t->kind, FK_RESOURCE);
		if (i > 0)
			assert_true(strcmp(fhir_types[fhir_resource_types[i - 1]].name, t->name) < 0);
		assert_ptr_equal(fhir_resource_type(t->name), t);
		assert_non_null(fhir_elem_find(t, "id"));
		assert_non_null(fhir_elem_find(t, "meta"));
	}
	for (size_t i = 1; i < fhir_n_named_types; i++)
		assert_true(strcmp(fhir_types[fhir_named_types[i - 1]].name,
				   fhir_types[fhir_named_types[i]].name) < 0);
	/* every type's elements are sorted by name (the lookups search them) */
	for (size_t i = 0; i < fhir_n_types; i++) {
		const struct fhir_type *t = &fhir_types[i];
		assert_true(t->n_elems <= FHIR_MAX_TYPE_ELEMS);
		for (uint32_t k = 1; k < t->n_elems; k++)
			if (strcmp(fhir_elems[t->first_elem + k - 1].name,
				   fhir_elems[t->first_elem + k].name) >= 0)
				fail_msg("%s: %s before %s", t->name, fhir_elems[t->first_elem + k - 1].name,
					 fhir_elems[t->first_elem + k].name);
	}
}

static void test_model_lookups(void **state)
{
	const struct fhir_type *pat, *obs, *t;
	const struct fhir_elem *el, *el2;

	(void)state;
	pat = fhir_resource_type("Patient");
	assert_non_null(pat);
	assert_string_equal(pat->name, "Patient");
	assert_null(fhir_resource_type("patient"));
	assert_null(fhir_resource_type("Patients"));
	assert_null(fhir_resource_type("Pat"));
	assert_null(fhir_resource_type(""));
	assert_null(fhir_resource_type("HumanName"));      /* a datatype */
	assert_null(fhir_resource_type("Resource"));       /* abstract */
	assert_null(fhir_resource_type("DomainResource"));
	assert_null(fhir_resource_type("Patient.contact")); /* a backbone */
	assert_ptr_equal(fhir_resource_type_n("PatientXYZ", 7), pat);
	assert_null(fhir_resource_type_n("Patient", 6));
	assert_non_null(fhir_resource_type("Account"));
	assert_non_null(fhir_resource_type("VisionPrescription"));

	t = fhir_type_by_name("HumanName");
	assert_non_null(t);
	assert_int_equal(t->kind, FK_COMPLEX);
	t = fhir_type_by_name("dateTime");
	assert_non_null(t);
	assert_int_equal(t->kind, FK_PRIMITIVE);
	assert_int_equal(t->prim, FP_DATETIME);
	assert_null(fhir_type_by_name("Patient.contact"));
	assert_ptr_equal(fhir_type_by_name("Patient"), pat);

	el = fhir_elem_find(pat, "name");
	assert_non_null(el);
	assert_true(el->array);
	assert_int_equal(el->max, FHIR_MAX_UNBOUNDED);
	assert_string_equal(fhir_types[el->type].name, "HumanName");
	el = fhir_elem_find(pat, "gender");
	assert_non_null(el);
	assert_false(el->array);
	assert_int_equal(fhir_types[el->type].prim, FP_CODE);
	el = fhir_elem_find(pat, "managingOrganization");
	assert_int_equal(el->n_targets, 1);
	assert_string_equal(fhir_types[fhir_targets[el->first_target]].name, "Organization");
	assert_null(fhir_elem_find(pat, "resourceType"));
	assert_null(fhir_elem_find(pat, "Name"));
	assert_null(fhir_elem_find(pat, ""));
	assert_null(fhir_elem_find(pat, "zzz"));

	obs = fhir_resource_type("Observation");
	el = fhir_elem_find(obs, "valueQuantity");
	assert_non_null(el);
	assert_string_equal(el->base, "value[x]");
	assert_string_equal(fhir_types[el->type].name, "Quantity");
	assert_int_not_equal(el->choice_group, 0);
	el2 = fhir_elem_find(obs, "valueString");
	assert_non_null(el2);
	assert_int_equal(el2->choice_group, el->choice_group);
	assert_int_equal(fhir_types[el2->type].prim, FP_STRING);
	assert_int_not_equal(fhir_elem_find(obs, "effectiveDateTime")->choice_group, el->choice_group);
	assert_null(fhir_elem_find(obs, "value"));
	assert_null(fhir_elem_find(obs, "value[x]"));
	assert_null(fhir_elem_find(obs, "valueFoo"));
	el = fhir_elem_find(obs, "status");
	assert_int_equal(el->min, 1);
	assert_int_equal(el->max, 1);

	assert_string_equal(fhir_prim_name(FP_DATETIME), "dateTime");
	assert_string_equal(fhir_prim_name(FP_BASE64BINARY), "base64Binary");
	assert_string_equal(fhir_prim_name(FP_NONE), "");
	assert_string_equal(fhir_prim_name(FP__COUNT), "");
	assert_string_equal(fhir_prim_name(-1), "");
}

/* ------------------------------------------------------------------ */
/* fhir_validate                                                        */

struct vcase {
	const char *name;
	const char *json;       /* single-quoted */
	const char *expect;     /* expect_type, or NULL */
	size_t errors;
	const char *expr;       /* of the first issue */
	const char *code;
	const char *msg;        /* a piece of the first message */
};

#define EXT(v) "{'url':'http://example.org/x'," v "}"
#define PAT(members) "{'resourceType':'Patient'," members "}"
#define OBS(members) "{'resourceType':'Observation','status':'final','code':{'text':'t'}," members "}"
#define UUID1 "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"

static const struct vcase vcases[] = {
	/* ---- valid ---- */
	{ "minimal Patient", "{'resourceType':'Patient'}", NULL, 0, NULL, NULL, NULL },
	{ "expected type", "{'resourceType':'Patient'}", "Patient", 0, NULL, NULL, NULL },
	{ "rich Patient",
	  PAT("'id':'p-1.x','meta':{'versionId':'3','lastUpdated':'2020-01-01T10:00:00.123+01:00',"
	      "'profile':['http://example.org/p'],'tag':[{'system':'http://s','code':'c'}]},"
	      "'text':{'status':'generated','div':'<div xmlns=\\'http://www.w3.org/1999/xhtml\\'>x</div>'},"
	      "'active':true,'name':[{'use':'official','family':'Doe','given':['Jane','Q']}],"
	      "'gender':'female','birthDate':'1970-02-28','deceasedBoolean':false,"
	      "'multipleBirthInteger':2,'telecom':[{'system':'phone','value':'555','rank':1}],"
	      "'photo':[{'contentType':'image/png','data':'aGVsbG8=','size':5,'url':'http://x/y.png'}],"
	      "'managingOrganization':{'reference':'Organization/1','display':'Org'},"
	      "'generalPractitioner':[{'reference':'Practitioner/p1/_history/2'}],"
	      "'contact':[{'relationship':[{'text':'mother'}],'name':{'family':'Doe'}}],"
	      "'link':[{'other':{'reference':'Patient/other'},'type':'seealso'}]"),
	  NULL, 0, NULL, NULL, NULL },
	{ "every primitive kind in extensions",
	  PAT("'extension':["
	      EXT("'valueBoolean':true") "," EXT("'valueInteger':-2147483648") ","
	      EXT("'valueString':'tab\\tnewline\\n ok'") "," EXT("'valueDecimal':7.50") ","
	      EXT("'valueDecimal':3") "," EXT("'valueUri':'urn:x:y'") ","
	      EXT("'valueUrl':'http://example.org/a?b=c'") ","
	      EXT("'valueCanonical':'http://example.org/sd|1.0'") ","
	      EXT("'valueBase64Binary':'aGk='") "," EXT("'valueBase64Binary':'aGVs bG8='") ","
	      EXT("'valueInstant':'2020-02-29T12:00:00Z'") "," EXT("'valueDate':'2020-02'") ","
	      EXT("'valueDateTime':'2016-12-31T23:59:60Z'") "," EXT("'valueTime':'23:59:59.5'") ","
	      EXT("'valueCode':'a b'") "," EXT("'valueOid':'urn:oid:1.2.840.10008.0'") ","
	      EXT("'valueId':'abc-1.2'") "," EXT("'valueMarkdown':'# title'") ","
	      EXT("'valueUnsignedInt':0") "," EXT("'valuePositiveInt':2147483647") ","
	      EXT("'valueUuid':'" UUID1 "'") "]"),
	  NULL, 0, NULL, NULL, NULL },
	{ "Observation with a value and references",
	  OBS("'subject':{'reference':'Patient/1'},'effectiveDateTime':'2020-01-01',"
	      "'issued':'2020-01-01T10:00:00Z','valueQuantity':{'value':7.50,'unit':'mmol/L'},"
	      "'performer':[{'reference':'Practitioner/2'},{'reference':'Organization/3'}]"),
	  NULL, 0, NULL, NULL, NULL },
	{ "primitive extension", PAT("'birthDate':'1970','_birthDate':{'extension':[" EXT("'valueString':'y'") "]}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "extension without a value", PAT("'_birthDate':{'id':'b1','extension':[" EXT("'valueString':'y'") "]}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "null with extension in a repeating primitive",
	  PAT("'name':[{'given':['a',null],'_given':[null,{'extension':[" EXT("'valueString':'y'") "]}]}]"),
	  NULL, 0, NULL, NULL, NULL },
	{ "required element given by its extension only",
	  "{'resourceType':'Observation','code':{'text':'t'},'_status':{'extension':[" EXT("'valueCode':'x'") "]}}",
	  NULL, 0, NULL, NULL, NULL },
	{ "contained resource and #reference",
	  PAT("'contained':[{'resourceType':'Organization','id':'org1','name':'X'}],"
	      "'managingOrganization':{'reference':'#org1'}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "contained refers to a sibling",
	  PAT("'contained':[{'resourceType':'Organization','id':'o1','partOf':{'reference':'#o2'}},"
	      "{'resourceType':'Organization','id':'o2'}],'managingOrganization':{'reference':'#o1'}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "# alone refers to the container",
	  PAT("'contained':[{'resourceType':'Organization','id':'o1','partOf':{'reference':'#'}}]"),
	  NULL, 0, NULL, NULL, NULL },
	{ "absolute reference", PAT("'managingOrganization':{'reference':'http://other.org/fhir/Organization/1'}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "absolute reference of another type is not checked",
	  OBS("'subject':{'reference':'http://other.org/fhir/Practitioner/1'}"), NULL, 0, NULL, NULL, NULL },
	{ "urn:uuid reference", PAT("'managingOrganization':{'reference':'" UUID1 "'}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "urn:oid reference", PAT("'managingOrganization':{'reference':'urn:oid:1.2.3'}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "reference by identifier only",
	  PAT("'managingOrganization':{'identifier':{'system':'http://s','value':'1'}}"),
	  NULL, 0, NULL, NULL, NULL },
	{ "reference to any type", "{'resourceType':'Basic','code':{'text':'x'},'subject':{'reference':'Practitioner/1'}}",
	  NULL, 0, NULL, NULL, NULL },
	{ "Bundle with resources",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'fullUrl':'" UUID1 "',"
	  "'resource':{'resourceType':'Patient','id':'a'}},{'resource':" OBS("'subject':{'reference':'Patient/a'}") "}]}",
	  NULL, 0, NULL, NULL, NULL },
	{ "contained #reference inside a Bundle entry",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':"
	  PAT("'contained':[{'resourceType':'Organization','id':'o'}],'managingOrganization':{'reference':'#o'}") "}]}",
	  NULL, 0, NULL, NULL, NULL },

	/* ---- the resource itself ---- */
	{ "not an object", "['resourceType']", NULL, 1, "", "structure", "expected a resource (an object), found an array" },
	{ "missing resourceType", "{'id':'x'}", NULL, 1, "", "structure", "missing resourceType" },
	{ "resourceType not a string", "{'resourceType':1}", NULL, 1, "", "structure", "resourceType must be a string" },
	{ "unknown resource type", "{'resourceType':'Patients'}", NULL, 1, "", "not-supported",
	  "unknown resource type 'Patients'" },
	{ "abstract resource type", "{'resourceType':'DomainResource'}", NULL, 1, "", "not-supported", NULL },
	{ "other type than expected", "{'resourceType':'Patient'}", "Observation", 1, "", "invalid",
	  "expected a Observation resource, found Patient" },

	/* ---- elements and shapes ---- */
	{ "unknown element", PAT("'foo':1"), NULL, 1, "Patient.foo", "structure", "unknown element 'foo' in Patient" },
	{ "unknown nested element", PAT("'name':[{'family':'x'},{'famly':'x'}]"), NULL, 1,
	  "Patient.name[1].famly", "structure", "unknown element 'famly' in HumanName" },
	{ "unknown element in a backbone", PAT("'contact':[{'nam':{}}]"), NULL, 1, "Patient.contact[0].nam",
	  "structure", "in Patient.contact" },
	{ "resourceType inside a datatype", PAT("'name':[{'resourceType':'x'}]"), NULL, 1,
	  "Patient.name[0].resourceType", "structure", NULL },
	{ "unknown choice type", PAT("'deceasedString':'x'"), NULL, 1, "Patient.deceasedString", "structure",
	  "unknown element" },
	{ "choice base name", PAT("'deceased':true"), NULL, 1, "Patient.deceased", "structure", "unknown element" },
	{ "array for a single value", PAT("'gender':['male']"), NULL, 1, "Patient.gender", "structure",
	  "'gender' has at most one value" },
	{ "array for a single complex value", PAT("'maritalStatus':[{'text':'x'}]"), NULL, 1,
	  "Patient.maritalStatus", "structure", "must not be an array" },
	{ "object for an array", PAT("'name':{'family':'x'}"), NULL, 1, "Patient.name", "structure",
	  "'name' repeats: it must be an array, found an object" },
	{ "string for an array", PAT("'name':'x'"), NULL, 1, "Patient.name", "structure", "found a string" },
	{ "string for an object", PAT("'maritalStatus':'x'"), NULL, 1, "Patient.maritalStatus", "structure",
	  "expected an object (CodeableConcept), found a string" },
	{ "empty string", PAT("'gender':''"), NULL, 1, "Patient.gender", "value", "empty string" },
	{ "empty string in an array", PAT("'name':[{'given':['a','']}]"), NULL, 1, "Patient.name[0].given[1]",
	  "value", "empty string" },
	{ "empty array", PAT("'name':[]"), NULL, 1, "Patient.name", "structure", "empty array" },
	{ "empty object", PAT("'maritalStatus':{}"), NULL, 1, "Patient.maritalStatus", "structure", "empty object" },
	{ "empty object in an array", PAT("'name':[{}]"), NULL, 1, "Patient.name[0]", "structure", "empty object" },
	{ "several errors, document order", PAT("'foo':1,'gender':'','bar':[]"), NULL, 3, "Patient.foo", "structure",
	  NULL },

	/* ---- required ---- */
	{ "required missing", "{'resourceType':'Observation','code':{'text':'t'}}", NULL, 1, "Observation.status",
	  "required", "missing required element 'status' (Observation)" },
	{ "two required missing", "{'resourceType':'Observation'}", NULL, 2, "Observation.code", "required", NULL },
	{ "required nested missing", PAT("'link':[{'type':'seealso'}]"), NULL, 1, "Patient.link[0].other",
	  "required", "missing required element 'other' (Patient.link)" },
	{ "required in a datatype", PAT("'extension':[{'valueString':'x'}]"), NULL, 1, "Patient.extension[0].url",
	  "required", NULL },
	{ "required narrative div", PAT("'text':{'status':'generated'}"), NULL, 1, "Patient.text.div", "required", NULL },
	{ "required choice missing",
	  "{'resourceType':'MedicationRequest','status':'active','intent':'order','subject':{'reference':'Patient/1'}}",
	  NULL, 1, "MedicationRequest.medication[x]", "required", "missing required element 'medication[x]'" },
	{ "required choice given",
	  "{'resourceType':'MedicationRequest','status':'active','intent':'order','subject':{'reference':'Patient/1'},"
	  "'medicationCodeableConcept':{'text':'x'}}", NULL, 0, NULL, NULL, NULL },
	{ "required Bundle.type", "{'resourceType':'Bundle'}", NULL, 1, "Bundle.type", "required", NULL },

	/* ---- choices ---- */
	{ "two choices", PAT("'deceasedBoolean':true,'deceasedDateTime':'2020'"), NULL, 1,
	  "Patient.deceasedDateTime", "structure", "only one of deceasedBoolean and deceasedDateTime may be given (deceased[x])" },
	{ "two choices in a datatype", OBS("'note':[{'text':'x','authorString':'a','authorReference':{'reference':'Patient/1'}}]"),
	  NULL, 1, "Observation.note[0].authorReference", "structure", "only one of authorString and authorReference" },

	/* ---- primitive formats ---- */
	{ "boolean as a string", PAT("'active':'true'"), NULL, 1, "Patient.active", "structure",
	  "expected a boolean (true or false), found a string" },
	{ "boolean as a number", PAT("'active':1"), NULL, 1, "Patient.active", "structure", "found a number" },
	{ "integer with a fraction", PAT("'multipleBirthInteger':1.5"), NULL, 1, "Patient.multipleBirthInteger",
	  "structure", "expected an integer (integer), found a number" },
	{ "integer as a string", PAT("'multipleBirthInteger':'2'"), NULL, 1, "Patient.multipleBirthInteger",
	  "structure", "found a string" },
	{ "integer past 32 bits", PAT("'multipleBirthInteger':2147483648"), NULL, 1, "Patient.multipleBirthInteger",
	  "value", "integer out of range (32-bit)" },
	{ "integer below 32 bits", PAT("'multipleBirthInteger':-2147483649"), NULL, 1,
	  "Patient.multipleBirthInteger", "value", "out of range" },
	{ "integer past 64 bits", PAT("'multipleBirthInteger':123456789012345678901234567890"), NULL, 1,
	  "Patient.multipleBirthInteger", NULL, NULL },
	{ "unsignedInt negative", PAT("'photo':[{'size':-1}]"), NULL, 1, "Patient.photo[0].size", "value",
	  "unsignedInt must not be negative" },
	{ "positiveInt zero", PAT("'telecom':[{'rank':0}]"), NULL, 1, "Patient.telecom[0].rank", "value",
	  "positiveInt must be 1 or more" },
	{ "decimal as a string", OBS("'valueQuantity':{'value':'7.5'}"), NULL, 1, "Observation.valueQuantity.value",
	  "structure", "expected a number (decimal), found a string" },
	{ "string as a number", PAT("'name':[{'family':5}]"), NULL, 1, "Patient.name[0].family", "structure",
	  "expected a string (string), found a number" },
	{ "string with a control character", PAT("'name':[{'family':'a\\u0001b'}]"), NULL, 1,
	  "Patient.name[0].family", "value", "control characters are not allowed in a string" },
	{ "markdown with a control character", PAT("'extension':[" EXT("'valueMarkdown':'a\\u0007'") "]"), NULL, 1,
	  "Patient.extension[0].valueMarkdown", "value", "markdown" },
	{ "code with a leading space", PAT("'gender':' male'"), NULL, 1, "Patient.gender", "value", "not a valid code" },
	{ "code with a trailing space", PAT("'gender':'male '"), NULL, 1, "Patient.gender", "value", "not a valid code" },
	{ "code with two spaces", PAT("'gender':'a  b'"), NULL, 1, "Patient.gender", "value", "not a valid code" },
	{ "code with a tab", PAT("'gender':'a\\tb'"), NULL, 0, NULL, NULL, NULL },
	{ "id with an underscore", PAT("'id':'a_b'"), NULL, 1, "Patient.id", "value", "not a valid id" },
	{ "id of 65 characters", PAT("'id':'" "0123456789012345678901234567890123456789012345678901234567890123" "4'"),
	  NULL, 1, "Patient.id", "value", "not a valid id" },
	{ "id of 64 characters", PAT("'id':'" "0123456789012345678901234567890123456789012345678901234567890123" "'"),
	  NULL, 0, NULL, NULL, NULL },
	{ "uri with a space", PAT("'implicitRules':'http://x y'"), NULL, 1, "Patient.implicitRules", "value",
	  "a uri must not contain white space" },
	{ "url with a space", PAT("'photo':[{'url':'http://x/a b'}]"), NULL, 1, "Patient.photo[0].url", "value",
	  "a url must not contain white space" },
	{ "canonical with a space", PAT("'meta':{'profile':['http://x','http://a b']}"), NULL, 1,
	  "Patient.meta.profile[1]", "value", "a canonical must not contain white space" },
	{ "oid without urn:oid:", PAT("'extension':[" EXT("'valueOid':'1.2.3'") "]"), NULL, 1,
	  "Patient.extension[0].valueOid", "value", "not a valid oid" },
	{ "oid with a leading zero", PAT("'extension':[" EXT("'valueOid':'urn:oid:1.02'") "]"), NULL, 1,
	  "Patient.extension[0].valueOid", "value", "oid" },
	{ "oid starting with 3", PAT("'extension':[" EXT("'valueOid':'urn:oid:3.1'") "]"), NULL, 1,
	  "Patient.extension[0].valueOid", "value", "oid" },
	{ "oid with one arc", PAT("'extension':[" EXT("'valueOid':'urn:oid:1'") "]"), NULL, 1,
	  "Patient.extension[0].valueOid", "value", "oid" },
	{ "oid ending in a dot", PAT("'extension':[" EXT("'valueOid':'urn:oid:1.2.'") "]"), NULL, 1,
	  "Patient.extension[0].valueOid", "value", "oid" },
	{ "uuid in upper case", PAT("'extension':[" EXT("'valueUuid':'urn:uuid:61EBE359-BFDC-4613-8BF2-C5E300945F0A'") "]"),
	  NULL, 1, "Patient.extension[0].valueUuid", "value", "not a valid uuid" },
	{ "uuid without urn:uuid:", PAT("'extension':[" EXT("'valueUuid':'61ebe359-bfdc-4613-8bf2-c5e300945f0a'") "]"),
	  NULL, 1, "Patient.extension[0].valueUuid", "value", "uuid" },
	{ "base64 of a wrong length", PAT("'photo':[{'data':'abc'}]"), NULL, 1, "Patient.photo[0].data", "value",
	  "not valid base64" },
	{ "base64 with data after padding", PAT("'photo':[{'data':'ab=c'}]"), NULL, 1, "Patient.photo[0].data",
	  "value", "base64" },
	{ "base64 with a bad character", PAT("'photo':[{'data':'ab*c'}]"), NULL, 1, "Patient.photo[0].data", "value",
	  "base64" },
	{ "date that does not exist", PAT("'birthDate':'2019-02-29'"), NULL, 1, "Patient.birthDate", "value",
	  "not a valid date" },
	{ "date with a time", PAT("'birthDate':'2020-01-01T00:00:00Z'"), NULL, 1, "Patient.birthDate", "value",
	  "not a valid date" },
	{ "dateTime without a zone", PAT("'deceasedDateTime':'2020-01-01T10:00:00'"), NULL, 1,
	  "Patient.deceasedDateTime", "value", "not a valid dateTime" },
	{ "dateTime with month 13", PAT("'deceasedDateTime':'2020-13'"), NULL, 1, "Patient.deceasedDateTime", "value",
	  "dateTime" },
	{ "instant without a time", PAT("'meta':{'lastUpdated':'2020-01-01'}"), NULL, 1, "Patient.meta.lastUpdated",
	  "value", "not a valid instant" },
	{ "time with hour 24", OBS("'valueTime':'24:00:00'"), NULL, 1, "Observation.valueTime", "value",
	  "not a valid time" },
	{ "narrative that is not a div", PAT("'text':{'status':'generated','div':'<p>x</p>'}"), NULL, 1,
	  "Patient.text.div", "value", "narrative must be an XHTML <div> element" },
	{ "narrative div not closed", PAT("'text':{'status':'generated','div':'<div>x'}"), NULL, 1,
	  "Patient.text.div", "value", "narrative" },

	/* ---- _x companions and nulls ---- */
	{ "companion not an object", PAT("'birthDate':'1970','_birthDate':'x'"), NULL, 1, "Patient._birthDate",
	  "structure", "expected an object (id, extension), found a string" },
	{ "companion with an unknown element", PAT("'_birthDate':{'foo':1}"), NULL, 1, "Patient._birthDate.foo",
	  "structure", "unknown element 'foo' in Element" },
	{ "companion of a complex element", PAT("'_name':[{'id':'x'}]"), NULL, 1, "Patient._name", "structure",
	  "'_name' is only allowed for primitive elements" },
	{ "companion of an unknown element", PAT("'_foo':{'id':'x'}"), NULL, 1, "Patient._foo", "structure",
	  "unknown element '_foo'" },
	{ "companion of a repeating element not an array", PAT("'name':[{'given':['a'],'_given':{'id':'x'}}]"), NULL,
	  1, "Patient.name[0]._given", "structure", "expected an array, found an object" },
	{ "companion of another length", PAT("'name':[{'given':['a','b'],'_given':[null]}]"), NULL, 1,
	  "Patient.name[0]._given", "structure", "must have as many items as the array of values it extends" },
	{ "companion item not an object", PAT("'name':[{'given':['a'],'_given':['x']}]"), NULL, 1,
	  "Patient.name[0]._given[0]", "structure", "expected an object or null, found a string" },
	{ "null single value", PAT("'gender':null"), NULL, 1, "Patient.gender", "structure", "null is not allowed here" },
	{ "null in a repeating primitive", PAT("'name':[{'given':['a',null]}]"), NULL, 1, "Patient.name[0].given[1]",
	  "structure", "null is only allowed where _given has extensions" },
	{ "null with a null companion", PAT("'name':[{'given':[null],'_given':[null]}]"), NULL, 1,
	  "Patient.name[0].given[0]", "structure", "null is only allowed" },
	{ "null in a repeating complex element", PAT("'name':[null]"), NULL, 1, "Patient.name[0]", "structure",
	  "null is only allowed" },

	/* ---- references ---- */
	{ "reference without a slash", OBS("'subject':{'reference':'Patient'}"), NULL, 1, "Observation.subject.reference",
	  "invalid", "a relative reference must be Type/id" },
	{ "reference to an unknown type", OBS("'subject':{'reference':'Foo/1'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "reference names an unknown resource type" },
	{ "reference of the wrong target type", OBS("'subject':{'reference':'Practitioner/1'}"), NULL, 1,
	  "Observation.subject.reference", "invalid",
	  "a reference to Practitioner is not allowed here (allowed: Patient, Group, Device, Location)" },
	{ "wrong target in a repeating element", PAT("'generalPractitioner':[{'reference':'Practitioner/1'},{'reference':'Patient/2'}]"),
	  NULL, 1, "Patient.generalPractitioner[1].reference", "invalid", "a reference to Patient is not allowed here" },
	{ "wrong target in a datatype", OBS("'note':[{'text':'x','authorReference':{'reference':'Device/1'}}]"), NULL, 1,
	  "Observation.note[0].authorReference.reference", "invalid", "a reference to Device is not allowed here" },
	{ "reference with a bad id", OBS("'subject':{'reference':'Patient/a b'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "reference has an invalid id" },
	{ "reference with an empty id", OBS("'subject':{'reference':'Patient/'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "invalid id" },
	{ "reference with an empty version", OBS("'subject':{'reference':'Patient/1/_history/'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "reference has an invalid version" },
	{ "reference with more path", OBS("'subject':{'reference':'Patient/1/x'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", NULL },
	{ "conditional reference", OBS("'subject':{'reference':'Patient?name=x'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "a conditional reference (Type?search) is only allowed in a transaction" },
	{ "conditional reference with a system URL", OBS("'subject':{'reference':'Patient?identifier=http://s|1'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "a conditional reference (Type?search) is only allowed in a transaction" },
	{ "bad urn:uuid reference", OBS("'subject':{'reference':'urn:uuid:1234'}"), NULL, 1,
	  "Observation.subject.reference", "invalid", "not a valid urn:uuid reference" },
	{ "# reference to a missing contained resource", PAT("'managingOrganization':{'reference':'#nothere'}"), NULL, 1,
	  "Patient.managingOrganization.reference", "invalid", "refers to a contained resource that is not there" },
	{ "empty reference", PAT("'managingOrganization':{'reference':''}"), NULL, 1,
	  "Patient.managingOrganization.reference", "value", "empty string" },

	/* ---- contained ---- */
	{ "contained without an id", PAT("'contained':[{'resourceType':'Organization','name':'x'}]"), NULL, 1,
	  "Patient.contained[0]", "required", "a contained resource must have an id" },
	{ "contained with contained", PAT("'contained':[{'resourceType':'Organization','id':'o','contained':[{'resourceType':'Organization','id':'p'}]}]"),
	  NULL, 1, "Patient.contained[0]", "structure", "a contained resource must not contain resources" },
	{ "contained with an unknown element", PAT("'contained':[{'resourceType':'Organization','id':'o','foo':1}]"), NULL, 1,
	  "Patient.contained[0].foo", "structure", "unknown element 'foo' in Organization" },
	{ "contained of an unknown type", PAT("'contained':[{'resourceType':'Nope','id':'o'}]"), NULL, 1,
	  "Patient.contained[0]", "not-supported", "unknown resource type 'Nope'" },
	{ "contained not an object", PAT("'contained':['x']"), NULL, 1, "Patient.contained[0]", "structure",
	  "expected a resource (an object), found a string" },
	{ "contained not an array", PAT("'contained':{'resourceType':'Organization','id':'o'}"), NULL, 1,
	  "Patient.contained", "structure", "must be an array" },

	/* ---- Bundle entries: paths go on under Bundle.entry[i].resource ---- */
	{ "Bundle entry with an unknown element",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':{'resourceType':'Patient'}},"
	  "{'resource':" PAT("'foo':1") "}]}", NULL, 1, "Bundle.entry[1].resource.foo", "structure",
	  "unknown element 'foo' in Patient" },
	{ "Bundle entry missing a required element",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':{'resourceType':'Observation','code':{'text':'t'}}}]}",
	  NULL, 1, "Bundle.entry[0].resource.status", "required", NULL },
	{ "Bundle entry of an unknown type",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':{'resourceType':'Nope'}}]}", NULL, 1,
	  "Bundle.entry[0].resource", "not-supported", NULL },
	{ "Bundle entry with a bad reference",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':" OBS("'subject':{'reference':'Practitioner/1'}") "}]}",
	  NULL, 1, "Bundle.entry[0].resource.subject.reference", "invalid", NULL },
	{ "Bundle entry # reference to another entry's contained resource",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':"
	  PAT("'contained':[{'resourceType':'Organization','id':'o'}]") "},{'resource':"
	  PAT("'managingOrganization':{'reference':'#o'}") "}]}", NULL, 1,
	  "Bundle.entry[1].resource.managingOrganization.reference", "invalid", NULL },
	{ "Bundle entry resource not an object",
	  "{'resourceType':'Bundle','type':'collection','entry':[{'resource':'x'}]}", NULL, 1,
	  "Bundle.entry[0].resource", "structure", NULL },
};

static void test_validate(void **state)
{
	const struct vcase *c = *state;
	json_object *o = parse_sq(c->json);
	struct fhir_issues iss;
	size_t n;

	fhir_issues_init(&iss);
	n = fhir_validate(o, c->expect, &iss);
	json_object_put(o); /* before any assert: a failing row leaks nothing */
	if (n != c->errors) {
		fail_msg("%zu errors, want %zu; first: %s: %s", n, c->errors, iss.n ? iss.v[0].expr : "-",
			 iss.n ? iss.v[0].msg : "-");
	}
	assert_int_equal(iss.errors, c->errors);
	assert_int_equal(iss.n, c->errors < FHIR_MAX_ISSUES ? c->errors : FHIR_MAX_ISSUES);
	if (c->errors) {
		assert_int_equal(iss.v[0].severity, FHIR_ERROR);
		if (c->expr)
			assert_string_equal(iss.v[0].expr, c->expr);
		if (c->code)
			assert_string_equal(iss.v[0].code, c->code);
		if (c->msg && !strstr(iss.v[0].msg, c->msg))
			fail_msg("message \"%s\" lacks \"%s\"", iss.v[0].msg, c->msg);
	}
}

/* More than FHIR_MAX_ISSUES errors: all are counted, the first 20 kept. */
static void test_validate_many_issues(void **state)
{
	struct buf b = BUF_INIT(0);
	struct fhir_issues iss;
	struct err e = ERR_INIT;
	json_object *o;

	(void)state;
	buf_addstr(&b, "{\"resourceType\":\"Patient\"");
	for (int i = 0; i < 25; i++)
		buf_addf(&b, ",\"bad%d\":1", i);
	buf_addch(&b, '}');
	o = json_parse_buf(b.data, b.len, 0, &e);
	assert_non_null(o);
	fhir_issues_init(&iss);
	assert_int_equal(fhir_validate(o, NULL, &iss), 25);
	assert_int_equal(iss.n, FHIR_MAX_ISSUES);
	assert_int_equal(iss.dropped, 5);
	assert_int_equal(iss.errors, 25);
	assert_string_equal(iss.v[0].expr, "Patient.bad0");
	assert_string_equal(iss.v[19].expr, "Patient.bad19");
	json_object_put(o);
	buf_release(&b);
}

/* Messages name elements and formats, never values (they may be patient data). */
static void test_validate_no_values_in_messages(void **state)
{
	json_object *o = parse_sq(PAT(
		"'gender':' SECRET1','birthDate':'SECRET2','name':[{'family':'SECRET3\\u0001'}],"
		"'managingOrganization':{'reference':'Foo/SECRET4'},'multipleBirthInteger':'SECRET5',"
		"'telecom':[{'rank':'SECRET6'}],'implicitRules':'SECRET7 x','photo':[{'data':'SECRET8!'}],"
		"'generalPractitioner':[{'reference':'Patient/SECRET9'}],'id':'SECRET_10'"));
	struct fhir_issues iss;

	(void)state;
	fhir_issues_init(&iss);
	assert_int_equal(fhir_validate(o, NULL, &iss), 10);
	for (size_t i = 0; i < iss.n; i++)
		if (strstr(iss.v[i].msg, "SECRET") || strstr(iss.v[i].expr, "SECRET"))
			fail_msg("issue %zu echoes a value: %s (%s)", i, iss.v[i].msg, iss.v[i].expr);
	json_object_put(o);
}

/* Every example resource shipped in tests/data/fhir-examples that is not a
 * Bundle validates with only a few rule families failing; here only a
 * handful of well-known ones, which must pass cleanly. */
static void test_validate_examples(void **state)
{
	static const char *const files[] = {
		"tests/data/fhir-examples/Patient-example.json",
		"tests/data/fhir-examples/Observation-example.json",
		"tests/data/fhir-examples/Observation-blood-pressure.json",
		"tests/data/fhir-examples/Practitioner-example.json",
		"tests/data/fhir-examples/Organization-hl7.json",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(files); i++) {
		FILE *fp = fopen(files[i], "rb");
		struct buf b = BUF_INIT(0);
		struct err e = ERR_INIT;
		struct fhir_issues iss;
		char chunk[4096];
		size_t n;
		json_object *o;

		if (!fp) {
			/* run from the repository root (make unit, tests/run_unit.sh) */
			fail_msg("cannot open %s (run from the repository root)", files[i]);
		}
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_add(&b, chunk, n);
		fclose(fp);
		o = json_parse_buf(b.data, b.len, 0, &e);
		if (!o)
			fail_msg("%s: %s", files[i], e.msg);
		fhir_issues_init(&iss);
		if (fhir_validate(o, NULL, &iss) != 0)
			fail_msg("%s: %s: %s", files[i], iss.v[0].expr, iss.v[0].msg);
		json_object_put(o);
		buf_release(&b);
	}
}

/* ------------------------------------------------------------------ */
/* fhir_prepare                                                         */

struct prepared {
	struct fhir_prepared p;
	int rc;
	struct err e;
};

static void prep(const char *json, const char *id, struct prepared *out)
{
	json_object *o = parse_sq(json);

	fhir_prepared_init(&out->p);
	err_clear(&out->e);
	out->rc = fhir_prepare(NULL, o, id, &out->p, &out->e);
	json_object_put(o);
}

static void test_prepare_fragments(void **state)
{
	struct prepared a;
	char *want_meta = sq("'profile':['http://p'],'source':'s'");
	char *want_body = sq("'active':true,'name':[{'family':'X'}],'extension':[{'url':'http://x','valueDecimal':7.50}]");

	(void)state;
	prep(PAT("'id':'old','meta':{'versionId':'9','lastUpdated':'2020-01-01T00:00:00Z','profile':['http://p'],"
		 "'source':'s'},'active':true,'name':[{'family':'X'}],'extension':[{'url':'http://x','valueDecimal':7.50}]"),
	     "new", &a);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.p.type, "Patient");
	assert_string_equal(a.p.id, "new");
	assert_string_equal(buf_cstr(&a.p.meta_rest), want_meta);
	assert_string_equal(buf_cstr(&a.p.body), want_body);
	{
		struct store_op op;
		memset(&op, 0, sizeof(op));
		fhir_prepared_op(&a.p, &op);
		assert_string_equal(op.type, "Patient");
		assert_string_equal(op.id, "new");
		assert_int_equal(op.meta_rest_len, strlen(want_meta));
		assert_memory_equal(op.meta_rest, want_meta, op.meta_rest_len);
		assert_int_equal(op.body_len, strlen(want_body));
		assert_memory_equal(op.body, want_body, op.body_len);
		assert_memory_equal(op.chash, a.p.chash, sizeof(op.chash));
	}
	fhir_prepared_release(&a.p);
	free(want_meta);
	free(want_body);

	/* only versionId/lastUpdated in meta: nothing left of it */
	prep(PAT("'meta':{'versionId':'1','lastUpdated':'2020-01-01T00:00:00Z'},'active':true"), "x", &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.p.meta_rest.len, 0);
	assert_string_equal(buf_cstr(&a.p.body), "\"active\":true");
	fhir_prepared_release(&a.p);

	/* nothing but the type */
	prep("{'resourceType':'Patient','id':'x'}", "x", &a);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.p.meta_rest.len, 0);
	assert_int_equal(a.p.body.len, 0);
	fhir_prepared_release(&a.p);

	/* no id to use, or no resourceType */
	prep("{'resourceType':'Patient'}", NULL, &a);
	assert_int_equal(a.rc, -1);
	assert_int_not_equal(a.e.code, ERR_NONE);
	fhir_prepared_release(&a.p);
	prep("{'active':true}", "x", &a);
	assert_int_equal(a.rc, -1);
	fhir_prepared_release(&a.p);
}

static void test_prepare_hash(void **state)
{
	static const struct {
		const char *a, *b;
		bool same;
	} cases[] = {
		/* id, versionId and lastUpdated do not count */
		{ PAT("'id':'1','active':true"), PAT("'id':'2','active':true"), true },
		{ PAT("'meta':{'versionId':'1','lastUpdated':'2020-01-01T00:00:00Z'},'active':true"),
		  PAT("'meta':{'versionId':'7','lastUpdated':'2021-01-01T00:00:00Z'},'active':true"), true },
		{ PAT("'meta':{'versionId':'1'},'active':true"), PAT("'active':true"), true },
		/* content does */
		{ PAT("'active':true"), PAT("'active':false"), false },
		{ PAT("'active':true"), PAT("'active':true,'gender':'male'"), false },
		{ PAT("'meta':{'tag':[{'code':'a'}]},'active':true"), PAT("'meta':{'tag':[{'code':'b'}]},'active':true"), false },
		{ PAT("'meta':{'source':'a'}"), PAT("'active':true"), false },
		{ PAT("'extension':[{'url':'http://x','valueDecimal':7.5}]"),
		  PAT("'extension':[{'url':'http://x','valueDecimal':7.50}]"), false },
		/* the split between meta and body is part of the hash */
		{ PAT("'meta':{'source':'a'}"), PAT("'source':'a'"), false },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct prepared a, b;

		prep(cases[i].a, "x", &a);
		prep(cases[i].b, "y", &b);
		assert_int_equal(a.rc, 0);
		assert_int_equal(b.rc, 0);
		if ((memcmp(a.p.chash, b.p.chash, sizeof(a.p.chash)) == 0) != cases[i].same)
			fail_msg("case %zu: hashes %s", i, cases[i].same ? "differ" : "are equal");
		fhir_prepared_release(&a.p);
		fhir_prepared_release(&b.p);
	}
}

/* ------------------------------------------------------------------ */
/* OperationOutcome, status codes, ETags                                */

static void test_outcome_write(void **state)
{
	struct fhir_issues iss;
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *o, *issue, *it;

	(void)state;
	fhir_issues_init(&iss);
	fhir_issue_add(&iss, FHIR_ERROR, "value", "Patient.name[0]", "bad \"quoted\" value\nline %d", 2);
	fhir_issue_add(&iss, FHIR_WARNING, "informational", NULL, "back\\slash\ttab");
	fhir_issue_add(&iss, FHIR_FATAL, "exception", "", "fatal");
	assert_int_equal(iss.n, 3);
	assert_int_equal(iss.errors, 2);
	fhir_outcome_write(&iss, &b);
	o = json_parse_buf(b.data, b.len, 0, &e);
	if (!o)
		fail_msg("not JSON: %s: %s", e.msg, buf_cstr(&b));
	assert_true(json_is_str(json_get(o, "resourceType"), "OperationOutcome"));
	issue = json_get_arr(o, "issue");
	assert_non_null(issue);
	assert_int_equal(json_object_array_length(issue), 3);
	it = json_object_array_get_idx(issue, 0);
	assert_string_equal(json_get_str(it, "severity"), "error");
	assert_string_equal(json_get_str(it, "code"), "value");
	assert_string_equal(json_get_str(it, "diagnostics"), "bad \"quoted\" value\nline 2");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(json_get_arr(it, "expression"), 0)),
			    "Patient.name[0]");
	it = json_object_array_get_idx(issue, 1);
	assert_string_equal(json_get_str(it, "severity"), "warning");
	assert_string_equal(json_get_str(it, "diagnostics"), "back\\slash\ttab");
	assert_null(json_get(it, "expression")); /* no expression when none was given */
	it = json_object_array_get_idx(issue, 2);
	assert_string_equal(json_get_str(it, "severity"), "fatal");
	assert_null(json_get(it, "expression"));
	/* and the document is a valid OperationOutcome */
	fhir_issues_init(&iss);
	assert_int_equal(fhir_validate(o, "OperationOutcome", &iss), 0);
	json_object_put(o);
	buf_release(&b);

	/* no issues: one informational "ok" */
	fhir_issues_init(&iss);
	fhir_outcome_write(&iss, &b);
	o = json_parse_buf(b.data, b.len, 0, &e);
	assert_non_null(o);
	issue = json_get_arr(o, "issue");
	assert_int_equal(json_object_array_length(issue), 1);
	assert_string_equal(json_get_str(json_object_array_get_idx(issue, 0), "severity"), "information");
	json_object_put(o);
	buf_release(&b);

	/* past the limit: 20 issues and a note about the rest */
	fhir_issues_init(&iss);
	for (int i = 0; i < 23; i++)
		fhir_issue_add(&iss, FHIR_ERROR, "value", "X", "issue %d", i);
	assert_int_equal(iss.n, FHIR_MAX_ISSUES);
	assert_int_equal(iss.dropped, 3);
	assert_int_equal(iss.errors, 23);
	fhir_outcome_write(&iss, &b);
	o = json_parse_buf(b.data, b.len, 0, &e);
	assert_non_null(o);
	issue = json_get_arr(o, "issue");
	assert_int_equal(json_object_array_length(issue), FHIR_MAX_ISSUES + 1);
	assert_non_null(strstr(json_get_str(json_object_array_get_idx(issue, FHIR_MAX_ISSUES), "diagnostics"),
			       "3 further issues"));
	json_object_put(o);
	buf_release(&b);
}

static void test_status_and_issue_codes(void **state)
{
	static const struct {
		int code, status;
		const char *issue;
	} cases[] = {
		{ ERR_INVALID, 400, "invalid" },
		{ ERR_UNPROCESSABLE, 422, "processing" },
		{ ERR_NOT_FOUND, 404, "not-found" },
		{ ERR_GONE, 410, "deleted" },
		{ ERR_CONFLICT, 409, "conflict" },
		{ ERR_PRECONDITION, 412, "conflict" },
		{ ERR_UNAUTHENTICATED, 401, "login" },
		{ ERR_FORBIDDEN, 403, "forbidden" },
		{ ERR_TOO_LARGE, 413, "too-long" },
		{ ERR_MEDIA_TYPE, 415, "not-supported" },
		{ ERR_NOT_ACCEPTABLE, 406, "not-supported" },
		{ ERR_METHOD, 405, "not-supported" },
		{ ERR_NOT_SUPPORTED, 501, "not-supported" },
		{ ERR_UNAVAILABLE, 503, "transient" },
		{ ERR_IO, 500, "exception" },
		{ ERR_DB, 500, "exception" },
		{ ERR_NOMEM, 500, "exception" },
		{ ERR_INTERNAL, 500, "exception" },
	};

	(void)state;
	assert_int_equal(fhir_http_status(ERR_NONE), 200);
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct fhir_issues iss;
		struct err e = ERR_INIT;

		assert_int_equal(fhir_http_status(cases[i].code), cases[i].status);
		assert_string_equal(fhir_issue_code(cases[i].code), cases[i].issue);
		err_set(&e, cases[i].code, "msg %zu", i);
		err_expr(&e, "Patient.id");
		fhir_issues_init(&iss);
		fhir_issues_from_err(&iss, &e);
		assert_int_equal(iss.n, 1);
		assert_int_equal(iss.v[0].severity, FHIR_ERROR);
		assert_string_equal(iss.v[0].code, cases[i].issue);
		assert_string_equal(iss.v[0].expr, "Patient.id");
		assert_string_equal(iss.v[0].msg, e.msg);
	}
}

static void test_parse_etag(void **state)
{
	static const struct {
		const char *in;
		int rc;
		int64_t vid;
	} cases[] = {
		{ "W/\"3\"", 0, 3 },
		{ "\"3\"", 0, 3 },
		{ "3", 0, 3 },
		{ "W/\"12345\"", 0, 12345 },
		{ "  W/\"7\"  ", 0, 7 },
		{ "W/\"9223372036854775807\"", 0, INT64_MAX },
		{ "", -1, 0 },
		{ "W/\"\"", -1, 0 },
		{ "W/\"0\"", -1, 0 },
		{ "W/\"-1\"", -1, 0 },
		{ "W/\"+1\"", -1, 0 },
		{ "W/\"abc\"", -1, 0 },
		{ "W/\"3\"x", -1, 0 },
		{ "W/\"3a\"", -1, 0 },
		{ "w/\"3\"", -1, 0 },
		{ "W/ \"3\"", -1, 0 },
		{ "W/\"3\", W/\"4\"", -1, 0 },
		{ "*", -1, 0 },
		/* malformed, though strtoll alone would take them */
		{ "W/\"3", -1, 0 },
		{ "3\"", -1, 0 },
		{ "W/\"99999999999999999999\"", -1, 0 },
	};

	struct buf bad = BUF_INIT(0);

	(void)state;
	/* every case runs; the failures are listed together */
	for (size_t i = 0; i < N_OF(cases); i++) {
		int64_t vid = -77;
		int rc = fhir_parse_etag(cases[i].in, &vid);

		if (rc != cases[i].rc || (rc == 0 && vid != cases[i].vid))
			buf_addf(&bad, "[%s: rc %d vid %" PRId64 ", want rc %d vid %" PRId64 "] ", cases[i].in,
				 rc, vid, cases[i].rc, cases[i].vid);
	}
	if (bad.len) {
		print_error("%s\n", buf_cstr(&bad));
		buf_release(&bad);
		fail();
	}
	buf_release(&bad);
}

/* ------------------------------------------------------------------ */
/* Bundles, against a real store                                        */

struct bfx {
	char dir[64];
	char path[128];
	struct store *s;
	struct fhir_config cfg;
};

static int bundle_setup(void **state)
{
	struct bfx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-fhir-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "bundle_setup: %s\n", e.msg);
		return -1;
	}
	f->cfg.store = f->s;
	f->cfg.max_depth = 0;
	f->cfg.max_bundle_entries = 0;
	f->cfg.software_version = "test";
	*state = f;
	return 0;
}

static int bundle_teardown(void **state)
{
	struct bfx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Write a resource as a PUT would (prepare + update). */
static void seed(struct bfx *f, const char *json_sq)
{
	json_object *o = parse_sq(json_sq);
	struct fhir_prepared p;
	struct store_op op;
	struct store_txn t;
	struct err e = ERR_INIT;

	fhir_prepared_init(&p);
	assert_int_equal(fhir_prepare(NULL, o, json_get_str(o, "id"), &p, &e), 0);
	memset(&op, 0, sizeof(op));
	fhir_prepared_op(&p, &op);
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	if (store_commit(f->s, &t) != 0)
		fail_msg("seed: %s", op.err.msg);
	fhir_prepared_release(&p);
	json_object_put(o);
}

static char *read_json(struct bfx *f, const char *type, const char *id, int64_t *vid)
{
	struct store_version v;
	struct err e = ERR_INIT;
	char *out;

	if (store_read(f->s, type, id, &v, &e) < 0) {
		store_version_release(&v);
		return NULL;
	}
	if (vid)
		*vid = v.vid;
	out = v.json;
	v.json = NULL;
	return out;
}

struct fail_rec {
	size_t n;
	size_t entry[16];
	int code[16];
	char expr[16][ERR_EXPR_MAX];
};

static void on_fail(void *ctx, size_t entry, const struct err *e)
{
	struct fail_rec *r = ctx;

	assert_true(r->n < 16);
	r->entry[r->n] = entry;
	r->code[r->n] = e->code;
	snprintf(r->expr[r->n], sizeof(r->expr[0]), "%s", e->expr);
	r->n++;
}

/* The response Bundle's entry i. */
static json_object *resp_entry(json_object *resp, size_t i)
{
	json_object *arr = json_get_arr(resp, "entry");

	assert_non_null(arr);
	assert_true(i < json_object_array_length(arr));
	return json_object_array_get_idx(arr, i);
}

static const char *resp_status(json_object *resp, size_t i)
{
	return json_get_str(json_get_obj(resp_entry(resp, i), "response"), "status");
}

#define PUUID "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
#define OUUID "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"

/* fhir_bundle_plan takes the Bundle as text: plan what these tests built. */
static int plan_obj(const struct fhir_config *cfg, json_object *b, struct fhir_bundle_plan **plan,
		    struct store_txn **txn, struct fhir_issues *iss)
{
	size_t len = 0;
	const char *text = json_dump_str(b, &len);

	return fhir_bundle_plan(cfg, text, len, plan, txn, iss);
}

static void test_transaction(void **state)
{
	struct bfx *f = *state;
	json_object *b, *resp;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct fail_rec fr;
	char pid[ID_MAX + 1], want[128], *j;
	int64_t vid = 0;

	seed(f, "{'resourceType':'Patient','id':'old','active':true}");
	b = parse_sq("{'resourceType':'Bundle','type':'transaction','entry':["
		     "{'fullUrl':'" PUUID "','resource':{'resourceType':'Patient','active':true},"
		     " 'request':{'method':'POST','url':'Patient'}},"
		     "{'fullUrl':'" OUUID "','resource':" OBS("'subject':{'reference':'" PUUID "'},"
		     "'hasMember':[{'reference':'" OUUID "'}]") ","
		     " 'request':{'method':'POST','url':'Observation'}},"
		     "{'resource':{'resourceType':'Patient','id':'fixed','active':false,"
		     " 'link':[{'other':{'reference':'" PUUID "'},'type':'seealso'}]},"
		     " 'request':{'method':'PUT','url':'Patient/fixed'}},"
		     "{'request':{'method':'DELETE','url':'Patient/old'}},"
		     "{'request':{'method':'GET','url':'Patient/old'}}]}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(iss.errors, 0);
	assert_non_null(plan);
	assert_non_null(txn);
	assert_int_equal(fhir_bundle_entries(plan), 5);
	assert_true(txn->atomic);
	assert_int_equal(txn->n, 4); /* GET is not an operation */
	/* DELETE, then POST, then PUT */
	assert_int_equal(txn->ops[0].kind, STORE_REMOVE);
	assert_string_equal(txn->ops[0].id, "old");
	assert_int_equal(txn->ops[1].kind, STORE_CREATE);
	assert_int_equal(txn->ops[1].method, STORE_POST);
	assert_string_equal(txn->ops[1].type, "Patient");
	assert_int_equal(txn->ops[2].kind, STORE_CREATE);
	assert_string_equal(txn->ops[2].type, "Observation");
	assert_int_equal(txn->ops[3].kind, STORE_UPDATE);
	assert_int_equal(txn->ops[3].method, STORE_PUT);
	assert_string_equal(txn->ops[3].id, "fixed");
	/* server-assigned ids */
	snprintf(pid, sizeof(pid), "%s", txn->ops[1].id);
	assert_int_equal(strlen(pid), ID_UUID_LEN);
	assert_true(id_valid(pid, strlen(pid)));
	assert_string_not_equal(txn->ops[1].id, txn->ops[2].id);

	assert_int_equal(store_commit(f->s, txn), 0);
	memset(&fr, 0, sizeof(fr));
	assert_int_equal(fhir_bundle_report(plan, on_fail, &fr), 4);
	assert_int_equal(fr.n, 0);
	assert_int_equal(fhir_bundle_response(&f->cfg, plan, "http://h/fhir", FHIR_RETURN_DEFAULT, &out), 200);
	resp = json_parse_buf(out.data, out.len, 0, &e);
	if (!resp)
		fail_msg("response is not JSON: %s", e.msg);
	assert_true(json_is_str(json_get(resp, "type"), "transaction-response"));
	assert_int_equal(json_object_array_length(json_get_arr(resp, "entry")), 5);
	/* entries answer in Bundle order */
	assert_string_equal(resp_status(resp, 0), "201 Created");
	snprintf(want, sizeof(want), "Patient/%s/_history/1", pid);
	assert_string_equal(json_get_str(json_get_obj(resp_entry(resp, 0), "response"), "location"), want);
	snprintf(want, sizeof(want), "http://h/fhir/Patient/%s", pid);
	assert_string_equal(json_get_str(resp_entry(resp, 0), "fullUrl"), want);
	assert_string_equal(json_get_str(json_get_obj(resp_entry(resp, 0), "response"), "etag"), "W/\"1\"");
	assert_non_null(json_get_obj(resp_entry(resp, 0), "resource"));
	assert_string_equal(resp_status(resp, 1), "201 Created");
	assert_string_equal(resp_status(resp, 2), "201 Created");
	assert_string_equal(resp_status(resp, 3), "200 OK");
	/* the GET runs after the commit: it sees the delete */
	assert_string_equal(resp_status(resp, 4), "410 Gone");
	{
		/* the response Bundle is itself a valid Bundle */
		struct fhir_issues v;
		fhir_issues_init(&v);
		if (fhir_validate(resp, "Bundle", &v) != 0)
			fail_msg("response: %s: %s", v.v[0].expr, v.v[0].msg);
	}
	json_object_put(resp);

	/* urn:uuid references were rewritten to the new ids, also one to itself */
	j = read_json(f, "Observation", txn->ops[2].id, &vid);
	assert_non_null(j);
	snprintf(want, sizeof(want), "\"subject\":{\"reference\":\"Patient/%s\"}", pid);
	assert_non_null(strstr(j, want));
	snprintf(want, sizeof(want), "\"hasMember\":[{\"reference\":\"Observation/%s\"}]", txn->ops[2].id);
	assert_non_null(strstr(j, want));
	assert_null(strstr(j, "urn:uuid"));
	free(j);
	j = read_json(f, "Patient", "fixed", &vid);
	assert_non_null(j);
	snprintf(want, sizeof(want), "\"reference\":\"Patient/%s\"", pid);
	assert_non_null(strstr(j, want));
	free(j);
	assert_null(read_json(f, "Patient", "old", NULL));

	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&out);
}

static void test_transaction_prefer_minimal(void **state)
{
	struct bfx *f = *state;
	json_object *b, *resp;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;

	b = parse_sq("{'resourceType':'Bundle','type':'transaction','entry':["
		     "{'resource':{'resourceType':'Patient','active':true},'request':{'method':'POST','url':'Patient'}}]}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(store_commit(f->s, txn), 0);
	assert_int_equal(fhir_bundle_response(&f->cfg, plan, "http://h", FHIR_RETURN_MINIMAL, &out), 200);
	resp = json_parse_buf(out.data, out.len, 0, &e);
	assert_non_null(resp);
	assert_string_equal(resp_status(resp, 0), "201 Created");
	assert_null(json_get(resp_entry(resp, 0), "resource"));
	json_object_put(resp);
	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&out);
}

static void test_transaction_patch(void **state)
{
	struct bfx *f = *state;
	json_object *b;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	char b64[256], *j;
	const char *patch = "[{\"op\":\"replace\",\"path\":\"/active\",\"value\":false}]";
	struct buf text = BUF_INIT(0);
	int64_t vid = 0;

	seed(f, "{'resourceType':'Patient','id':'pp','active':true,'gender':'male'}");
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)patch, strlen(patch),
			  sodium_base64_VARIANT_ORIGINAL);
	buf_addf(&text, "{'resourceType':'Bundle','type':'transaction','entry':[{'resource':"
		 "{'resourceType':'Binary','contentType':'application/json-patch+json','data':'%s'},"
		 "'request':{'method':'PATCH','url':'Patient/pp'}}]}", b64);
	b = parse_sq(buf_cstr(&text));
	fhir_issues_init(&iss);
	if (plan_obj(&f->cfg, b, &plan, &txn, &iss) != 0)
		fail_msg("plan: %s: %s", iss.v[0].expr, iss.v[0].msg);
	assert_int_equal(txn->n, 1);
	assert_int_equal(txn->ops[0].kind, STORE_UPDATE);
	assert_int_equal(txn->ops[0].method, STORE_PATCH);
	assert_int_equal(txn->ops[0].if_match, 1); /* applied to version 1 */
	assert_int_equal(store_commit(f->s, txn), 0);
	j = read_json(f, "Patient", "pp", &vid);
	assert_int_equal(vid, 2);
	assert_non_null(strstr(j, "\"active\":false"));
	assert_non_null(strstr(j, "\"gender\":\"male\""));
	free(j);
	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&text);
}

/* Planning failures of a transaction: the whole Bundle fails, the issues
 * name the entry. */
struct tfail_case {
	const char *name;
	const char *entries;  /* the entry array's members, single-quoted */
	const char *expr;     /* of the first issue */
	const char *msg;      /* a piece of it */
};

static const struct tfail_case tfail_cases[] = {
	{ "the same resource twice",
	  "{'resource':{'resourceType':'Patient','id':'x'},'request':{'method':'PUT','url':'Patient/x'}},"
	  "{'resource':{'resourceType':'Patient','id':'x','active':true},'request':{'method':'PUT','url':'Patient/x'}}",
	  "Bundle.entry[1].request.url", "Patient/x is already written by entry 0" },
	{ "a PUT and a DELETE of one resource",
	  "{'request':{'method':'DELETE','url':'Patient/x'}},"
	  "{'resource':{'resourceType':'Patient','id':'x'},'request':{'method':'PUT','url':'Patient/x'}}",
	  "Bundle.entry[1].request.url", "already written by entry 0" },
	{ "an invalid resource",
	  "{'resource':{'resourceType':'Patient'},'request':{'method':'POST','url':'Patient'}},"
	  "{'resource':{'resourceType':'Patient','foo':1},'request':{'method':'POST','url':'Patient'}}",
	  "Bundle.entry[1].resource.foo", "unknown element 'foo' in Patient" },
	{ "a resource of another type than the url",
	  "{'resource':{'resourceType':'Patient'},'request':{'method':'POST','url':'Observation'}}",
	  "Bundle.entry[0].resource", "expected a Observation resource, found Patient" },
	{ "no request", "{'resource':{'resourceType':'Patient'}}", "Bundle.entry[0].request",
	  "missing request" },
	{ "an entry that is not an object", "'x'", "Bundle.entry[0]", "an entry must be an object" },
};

static void test_transaction_plan_fails(void **state)
{
	const struct tfail_case *c = *state;
	struct bfx *f = NULL;
	struct buf text = BUF_INIT(0);
	json_object *b;
	struct fhir_bundle_plan *plan = (struct fhir_bundle_plan *)&text;
	struct store_txn *txn = (struct store_txn *)&text;
	struct fhir_issues iss;
	int64_t n = -1;
	struct err e = ERR_INIT;

	assert_int_equal(bundle_setup((void **)&f), 0);
	buf_addf(&text, "{'resourceType':'Bundle','type':'transaction','entry':[%s]}", c->entries);
	b = parse_sq(buf_cstr(&text));
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), -1);
	assert_null(plan);
	assert_null(txn);
	assert_true(iss.errors > 0);
	assert_string_equal(iss.v[0].expr, c->expr);
	if (!strstr(iss.v[0].msg, c->msg))
		fail_msg("message \"%s\" lacks \"%s\"", iss.v[0].msg, c->msg);
	assert_int_equal(store_count_current(f->s, NULL, &n, &e), 0);
	assert_int_equal(n, 0);
	json_object_put(b);
	buf_release(&text);
	bundle_teardown((void **)&f);
}

/* A transaction whose store transaction fails: nothing is written, and the
 * outcome names the entry whose operation failed (operations are reordered,
 * so the op index is not the entry index). */
static void test_transaction_commit_fails(void **state)
{
	struct bfx *f = *state;
	json_object *b, *oo;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct fail_rec fr;
	int64_t vid = 0;
	char *j;

	seed(f, "{'resourceType':'Patient','id':'x','active':true}");
	seed(f, "{'resourceType':'Patient','id':'y','active':true}");
	b = parse_sq("{'resourceType':'Bundle','type':'transaction','entry':["
		     "{'resource':{'resourceType':'Patient','id':'x','active':false},"
		     " 'request':{'method':'PUT','url':'Patient/x','ifMatch':'W/\\'5\\''}},"
		     "{'request':{'method':'DELETE','url':'Patient/y'}},"
		     "{'resource':{'resourceType':'Patient'},'request':{'method':'POST','url':'Patient'}}]}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(txn->ops[2].if_match, 5);
	assert_int_equal(store_commit(f->s, txn), -1);
	assert_int_equal(txn->failed_op, 2);
	assert_int_equal(fhir_bundle_response(&f->cfg, plan, "http://h", FHIR_RETURN_DEFAULT, &out), 412);
	oo = json_parse_buf(out.data, out.len, 0, &e);
	assert_non_null(oo);
	assert_true(json_is_str(json_get(oo, "resourceType"), "OperationOutcome"));
	{
		json_object *it = json_object_array_get_idx(json_get_arr(oo, "issue"), 0);
		assert_string_equal(json_get_str(it, "code"), "conflict");
		assert_string_equal(json_object_get_string(json_object_array_get_idx(json_get_arr(it, "expression"), 0)),
				    "Bundle.entry[0]");
	}
	json_object_put(oo);
	memset(&fr, 0, sizeof(fr));
	/* fhir.h: for a failed transaction, the entry that made it fail */
	assert_int_equal(fhir_bundle_report(plan, on_fail, &fr), 0);
	assert_int_equal(fr.n, 1);
	assert_int_equal(fr.entry[0], 0);
	assert_int_equal(fr.code[0], ERR_PRECONDITION);
	/* nothing was written */
	j = read_json(f, "Patient", "x", &vid);
	assert_int_equal(vid, 1);
	free(j);
	j = read_json(f, "Patient", "y", &vid);
	assert_non_null(j);
	free(j);
	{
		int64_t n = 0;
		assert_int_equal(store_count_current(f->s, "Patient", &n, &e), 0);
		assert_int_equal(n, 2);
	}
	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&out);
}

/* A batch: every entry stands alone, and a bad one gets its own response. */
static void test_batch(void **state)
{
	struct bfx *f = *state;
	json_object *b, *resp, *it;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct fail_rec fr;
	int64_t n = 0;

	seed(f, "{'resourceType':'Patient','id':'there','active':true}");
	seed(f, "{'resourceType':'Patient','id':'v','active':true}");
	b = parse_sq("{'resourceType':'Bundle','type':'batch','entry':["
		     /* 0 */ "{'resource':{'resourceType':'Patient','active':true},'request':{'method':'POST','url':'Patient'}},"
		     /* 1 */ "{'resource':{'resourceType':'Patient','foo':1},'request':{'method':'POST','url':'Patient'}},"
		     /* 2 */ "{'resource':{'resourceType':'Patient','id':'a'},'request':{'method':'PUT','url':'Patient/b'}},"
		     /* 3 */ "{'request':{'method':'GET','url':'Patient/there'}},"
		     /* 4 */ "{'request':{'method':'DELETE','url':'Patient/absent'}},"
		     /* 5 */ "{'resource':{'resourceType':'Patient','id':'v','active':false},"
		     "       'request':{'method':'PUT','url':'Patient/v','ifMatch':'W/\\'9\\''}},"
		     /* 6 */ "{'resource':{'resourceType':'Patient','id':'v','gender':'male'},"
		     "       'request':{'method':'PUT','url':'Patient/v'}},"
		     /* 7 */ "{'request':{'method':'GET','url':'Patient/nobody'}}]}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(iss.errors, 0); /* entry errors are the entries' own */
	assert_false(txn->atomic);
	assert_int_equal(txn->n, 4); /* 0, 4, 5, 6 */
	assert_int_equal(store_commit(f->s, txn), 0);

	memset(&fr, 0, sizeof(fr));
	assert_int_equal(fhir_bundle_report(plan, on_fail, &fr), 3); /* 0, 4, 6 */
	assert_int_equal(fr.n, 3);
	assert_int_equal(fr.entry[0], 1);
	assert_int_equal(fr.code[0], ERR_INVALID);
	assert_string_equal(fr.expr[0], "Bundle.entry[1].resource.foo");
	assert_int_equal(fr.entry[1], 2);
	assert_int_equal(fr.code[1], ERR_INVALID);
	assert_string_equal(fr.expr[1], "Bundle.entry[2].resource.id");
	assert_int_equal(fr.entry[2], 5);
	assert_int_equal(fr.code[2], ERR_PRECONDITION);

	assert_int_equal(fhir_bundle_response(&f->cfg, plan, "http://h", FHIR_RETURN_DEFAULT, &out), 200);
	resp = json_parse_buf(out.data, out.len, 0, &e);
	if (!resp)
		fail_msg("response is not JSON: %s", e.msg);
	assert_true(json_is_str(json_get(resp, "type"), "batch-response"));
	assert_int_equal(json_object_array_length(json_get_arr(resp, "entry")), 8);
	assert_string_equal(resp_status(resp, 0), "201 Created");
	assert_string_equal(resp_status(resp, 1), "400 Bad Request");
	it = json_get_obj(json_get_obj(resp_entry(resp, 1), "response"), "outcome");
	assert_true(json_is_str(json_get(it, "resourceType"), "OperationOutcome"));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
		json_get_arr(json_object_array_get_idx(json_get_arr(it, "issue"), 0), "expression"), 0)),
		"Bundle.entry[1].resource.foo");
	assert_string_equal(resp_status(resp, 2), "400 Bad Request");
	assert_string_equal(resp_status(resp, 3), "200 OK");
	assert_true(json_is_str(json_get(json_get_obj(resp_entry(resp, 3), "resource"), "id"), "there"));
	assert_string_equal(resp_status(resp, 4), "204 No Content");
	assert_string_equal(resp_status(resp, 5), "412 Precondition Failed");
	assert_string_equal(resp_status(resp, 6), "200 OK");
	assert_string_equal(json_get_str(json_get_obj(resp_entry(resp, 6), "response"), "etag"), "W/\"2\"");
	assert_string_equal(resp_status(resp, 7), "404 Not Found");
	json_object_put(resp);

	assert_int_equal(store_count_current(f->s, "Patient", &n, &e), 0);
	assert_int_equal(n, 3); /* there, v, and the new one */
	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&out);
}

/* Entry request errors, one batch entry each: the code and where. */
static void test_batch_entry_errors(void **state)
{
	static const struct {
		const char *entry;
		int code;
		const char *expr;
	} cases[] = {
		{ "{'request':{'method':'HEAD','url':'Patient/x'}}", ERR_INVALID, "Bundle.entry[0].request.method" },
		{ "{'request':{'url':'Patient/x'}}", ERR_INVALID, "Bundle.entry[1].request.method" },
		{ "{'request':{'method':'GET'}}", ERR_INVALID, "Bundle.entry[2].request.url" },
		{ "{'request':{'method':'GET','url':'http://other/Patient/x'}}", ERR_INVALID, "Bundle.entry[3].request.url" },
		{ "{'resource':{'resourceType':'Patient'},'request':{'method':'POST','url':'Patient?name=x'}}",
		  ERR_INVALID, "Bundle.entry[4].request.url" },
		{ "{'request':{'method':'GET','url':'Foo/1'}}", ERR_NOT_FOUND, "Bundle.entry[5].request.url" },
		{ "{'request':{'method':'GET','url':'Patient/a b'}}", ERR_INVALID, "Bundle.entry[6].request.url" },
		{ "{'request':{'method':'DELETE','url':'Patient/x/_history/1'}}", ERR_INVALID, "Bundle.entry[7].request.url" },
		{ "{'resource':{'resourceType':'Patient'},'request':{'method':'POST','url':'Patient/x'}}", ERR_INVALID,
		  "Bundle.entry[8].request.url" },
		{ "{'request':{'method':'DELETE','url':'Patient'}}", ERR_INVALID, "Bundle.entry[9].request.url" },
		{ "{'request':{'method':'PUT','url':'Patient/x'}}", ERR_INVALID, "Bundle.entry[10].resource" },
		{ "{'resource':{'resourceType':'Patient','id':'x'},'request':{'method':'PUT','url':'Patient/x','ifMatch':'3x'}}",
		  ERR_INVALID, "Bundle.entry[11].request.ifMatch" },
		{ "{'resource':{'resourceType':'Patient'},'request':{'method':'PUT','url':'Patient/x'}}", ERR_INVALID,
		  "Bundle.entry[12].resource.id" },
		{ "{'request':{'method':'GET','url':'Patient/x/y'}}", ERR_INVALID, "Bundle.entry[13].request.url" },
		{ "{'resource':{'resourceType':'Binary','contentType':'text/plain','data':'aGk='},"
		  "'request':{'method':'PATCH','url':'Patient/x'}}", ERR_INVALID, "Bundle.entry[14].resource" },
	};
	struct bfx *f = *state;
	struct buf text = BUF_INIT(0);
	json_object *b;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct fail_rec fr;

	buf_addstr(&text, "{'resourceType':'Bundle','type':'batch','entry':[");
	for (size_t i = 0; i < N_OF(cases); i++)
		buf_addf(&text, "%s%s", i ? "," : "", cases[i].entry);
	buf_addstr(&text, "]}");
	b = parse_sq(buf_cstr(&text));
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(txn->n, 0);
	assert_int_equal(store_commit(f->s, txn), 0);
	memset(&fr, 0, sizeof(fr));
	assert_int_equal(fhir_bundle_report(plan, on_fail, &fr), 0);
	assert_int_equal(fr.n, N_OF(cases));
	for (size_t i = 0; i < N_OF(cases); i++) {
		assert_int_equal(fr.entry[i], i);
		if (fr.code[i] != cases[i].code || strcmp(fr.expr[i], cases[i].expr) != 0)
			fail_msg("entry %zu: %s at %s, want %s at %s", i, err_code_name(fr.code[i]), fr.expr[i],
				 err_code_name(cases[i].code), cases[i].expr);
	}
	fhir_bundle_plan_free(plan);
	json_object_put(b);
	buf_release(&text);
}

static void test_bundle_shape_errors(void **state)
{
	struct bfx *f = *state;
	json_object *b;
	struct fhir_bundle_plan *plan = NULL;
	struct store_txn *txn = NULL;
	struct fhir_issues iss;
	struct fhir_config cfg = f->cfg;

	b = parse_sq("{'resourceType':'Bundle','type':'batch','entry':{'request':{}}}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), -1);
	assert_null(plan);
	assert_string_equal(iss.v[0].expr, "Bundle.entry");
	json_object_put(b);

	cfg.max_bundle_entries = 2;
	b = parse_sq("{'resourceType':'Bundle','type':'batch','entry':["
		     "{'request':{'method':'GET','url':'Patient/1'}},{'request':{'method':'GET','url':'Patient/2'}},"
		     "{'request':{'method':'GET','url':'Patient/3'}}]}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&cfg, b, &plan, &txn, &iss), -1);
	assert_string_equal(iss.v[0].code, "too-costly");
	json_object_put(b);

	/* no entries at all: an empty response */
	b = parse_sq("{'resourceType':'Bundle','type':'transaction'}");
	fhir_issues_init(&iss);
	assert_int_equal(plan_obj(&f->cfg, b, &plan, &txn, &iss), 0);
	assert_int_equal(fhir_bundle_entries(plan), 0);
	assert_int_equal(txn->n, 0);
	assert_int_equal(store_commit(f->s, txn), 0);
	{
		struct buf out = BUF_INIT(0);
		struct err e = ERR_INIT;
		json_object *r;
		assert_int_equal(fhir_bundle_response(&f->cfg, plan, "http://h", FHIR_RETURN_DEFAULT, &out), 200);
		r = json_parse_buf(out.data, out.len, 0, &e);
		assert_non_null(r);
		assert_true(json_is_str(json_get(r, "type"), "transaction-response"));
		json_object_put(r);
		buf_release(&out);
	}
	fhir_bundle_plan_free(plan);
	json_object_put(b);
}

static int group_setup(void **state)
{
	(void)state;
	log_level = LOG_ERROR;
	return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_counts),
		cmocka_unit_test(test_model_lookups),
		cmocka_unit_test(test_validate_many_issues),
		cmocka_unit_test(test_validate_no_values_in_messages),
		cmocka_unit_test(test_validate_examples),
		cmocka_unit_test(test_prepare_fragments),
		cmocka_unit_test(test_prepare_hash),
		cmocka_unit_test(test_outcome_write),
		cmocka_unit_test(test_status_and_issue_codes),
		cmocka_unit_test(test_parse_etag),
		cmocka_unit_test_setup_teardown(test_transaction, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_transaction_prefer_minimal, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_transaction_patch, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_transaction_commit_fails, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_batch, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_batch_entry_errors, bundle_setup, bundle_teardown),
		cmocka_unit_test_setup_teardown(test_bundle_shape_errors, bundle_setup, bundle_teardown),
	};
	/* One group, so that the binary reports one total (tests/run_unit.sh
	 * reads the last summary line). */
	struct CMUnitTest all[N_OF(tests) + N_OF(vcases) + N_OF(tfail_cases)];
	char vnames[N_OF(vcases)][96], tnames[N_OF(tfail_cases)][96];
	size_t n = 0;
	int failed;

	for (size_t i = 0; i < N_OF(tests); i++)
		all[n++] = tests[i];
	for (size_t i = 0; i < N_OF(vcases); i++) {
		snprintf(vnames[i], sizeof(vnames[i]), "validate: %s", vcases[i].name);
		all[n++] = (struct CMUnitTest){ vnames[i], test_validate, NULL, NULL, (void *)&vcases[i] };
	}
	for (size_t i = 0; i < N_OF(tfail_cases); i++) {
		snprintf(tnames[i], sizeof(tnames[i]), "transaction rejects %s", tfail_cases[i].name);
		all[n++] = (struct CMUnitTest){ tnames[i], test_transaction_plan_fails, NULL, NULL,
						(void *)&tfail_cases[i] };
	}
	failed = _cmocka_run_group_tests("fhir", all, n, group_setup, NULL);
	return failed ? 1 : 0;
}
