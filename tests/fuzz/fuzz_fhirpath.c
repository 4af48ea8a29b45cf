/* fuzz_fhirpath.c - libFuzzer: the FHIRPath compiler and evaluator on
 * arbitrary bytes.
 *
 * The input is compiled as an expression for no context type and for a few
 * resource types; whatever compiles is evaluated on fixed resources of those
 * types (choices, primitive arrays with nulls and "_x" companions, contained
 * resources, extensions, a Bundle), then again on each node it produced, as
 * a composite's components are.  Besides crashes and leaks it traps when a
 * promise of fhirpath.h is broken: an error without its code or with a
 * message not from this module, *out set on failure, out changed by a failed
 * evaluation, or a node whose JSON does not fit its type. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhirpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const resource_text[] = {
	"{\"resourceType\":\"Patient\",\"id\":\"p\",\"text\":{\"status\":\"generated\","
	"\"div\":\"<div>x</div>\"},\"extension\":[{\"url\":\"http://e/a\",\"extension\":"
	"[{\"url\":\"k\",\"valueCode\":\"v\"}]},{\"url\":\"http://e/b\",\"valueBoolean\":true}],"
	"\"active\":true,\"name\":[{\"use\":\"official\",\"family\":\"F\",\"given\":[\"a\",null,\"c\"],"
	"\"_given\":[{\"id\":\"g0\"},{\"extension\":[{\"url\":\"u\",\"valueString\":\"e\"}]},null]},"
	"{\"family\":\"F\"}],\"telecom\":[{\"system\":\"email\",\"value\":\"x@y\",\"rank\":1},"
	"{\"system\":\"phone\",\"value\":\"1\",\"period\":{\"end\":\"2014\"}}],\"gender\":\"male\","
	"\"birthDate\":\"1974-12-25\",\"_birthDate\":{\"extension\":[{\"url\":\"http://e/t\","
	"\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]},\"deceasedDateTime\":\"2015\","
	"\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"O\"}],"
	"\"managingOrganization\":{\"reference\":\"#o\"},\"generalPractitioner\":[{\"reference\":"
	"\"Practitioner/1\"},{\"reference\":\"http://x/fhir/Organization/2/_history/1\"},"
	"{\"type\":\"Patient\",\"identifier\":{\"value\":\"1\"}},{\"reference\":\"#\"}]}",

	"{\"resourceType\":\"Observation\",\"id\":\"o\",\"status\":\"final\",\"code\":{\"coding\":"
	"[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}],\"text\":\"bp\"},\"subject\":"
	"{\"reference\":\"Patient/p\"},\"effectiveDateTime\":\"2020-01-01\",\"valueQuantity\":"
	"{\"value\":7.50,\"unit\":\"mmHg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"},"
	"\"component\":[{\"code\":{\"coding\":[{\"code\":\"8480-6\"}]},\"valueQuantity\":{\"value\":107}},"
	"{\"code\":{\"coding\":[{\"code\":\"8462-4\"}]},\"valueCodeableConcept\":{\"text\":\"low\"}},"
	"{\"code\":{\"text\":\"s\"},\"valueString\":\"s\",\"_valueString\":{\"id\":\"i\"}}]}",

	"{\"resourceType\":\"Bundle\",\"id\":\"b\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":"
	"\"urn:uuid:9d3a5d6e-5f8b-4b4a-9c3c-2f1d1c0e7a11\",\"resource\":{\"resourceType\":"
	"\"Condition\",\"id\":\"c\",\"subject\":{\"reference\":\"Patient/p\"},\"onsetAge\":"
	"{\"value\":52,\"unit\":\"years\"}}},{\"resource\":{\"resourceType\":\"Nope\"}},"
	"{\"resource\":{\"resourceType\":\"Library\",\"id\":\"l\",\"relatedArtifact\":[{\"type\":"
	"\"composed-of\",\"resource\":\"Library/x\"}]}}]}",
};

static const char *const contexts[] = { NULL, "Patient", "Observation", "Bundle", "Resource" };

#define N_RES (sizeof(resource_text) / sizeof(resource_text[0]))
#define N_CTX (sizeof(contexts) / sizeof(contexts[0]))

static json_object *resources[N_RES];

static void setup(void)
{
	for (size_t i = 0; i < N_RES; i++) {
		struct err e = ERR_INIT;

		if (resources[i])
			continue;
		resources[i] = json_parse_buf(resource_text[i], strlen(resource_text[i]), 0, &e);
		if (!resources[i])
			__builtin_trap();
	}
}

static void check_nodes(const struct fp_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct fp_node *nd = &r->v[i];
		enum json_type jt = json_object_get_type(nd->v);

		if (!nd->type)
			__builtin_trap();
		if (nd->type->kind == FK_PRIMITIVE ? jt == json_type_object || jt == json_type_array ||
							     jt == json_type_null
						   : jt != json_type_object)
			__builtin_trap();
	}
}

static void check_err(const struct err *e)
{
	if (e->code != ERR_INVALID && e->code != ERR_NOT_SUPPORTED && e->code != ERR_UNPROCESSABLE &&
	    e->code != ERR_NOMEM)
		__builtin_trap();
	if (e->code != ERR_NOMEM && strncmp(e->msg, "fhirpath: ", 10) != 0)
		__builtin_trap();
}

/* x on resource, then on each node it produced (at most 16). */
static void evaluate(const struct fp_expr *x, json_object *res, struct fp_result *out,
		     struct fp_result *sub)
{
	struct err e = ERR_INIT;
	size_t before = out->n;

	if (fp_eval(x, res, NULL, out, &e) < 0) {
		check_err(&e);
		if (out->n != before)
			__builtin_trap();
		return;
	}
	check_nodes(out);
	for (size_t i = before; i < out->n && i < before + 16; i++) {
		size_t n0 = sub->n;

		if (fp_eval(x, res, &out->v[i], sub, &e) < 0) {
			check_err(&e);
			if (sub->n != n0)
				__builtin_trap();
		}
	}
	check_nodes(sub);
	fp_result_reset(sub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_result out = FP_RESULT_INIT, sub = FP_RESULT_INIT;
	char *expr;

	if (size > 2 * FP_MAX_EXPR_LEN)
		return 0;
	setup();
	expr = malloc(size + 1);
	if (!expr)
		return 0;
	memcpy(expr, data, size);
	expr[size] = '\0';
	for (size_t c = 0; c < N_CTX; c++) {
		struct err e = ERR_INIT;
		struct fp_expr *x = (struct fp_expr *)&e;

		if (fp_compile(expr, contexts[c], &x, &e) < 0) {
			if (x)
				__builtin_trap();
			check_err(&e);
			continue;
		}
		for (size_t r = 0; x && r < N_RES; r++) {
			const char *rt = json_get_str(resources[r], "resourceType");

			if (contexts[c] && strcmp(contexts[c], "Resource") != 0 &&
			    strcmp(contexts[c], rt) != 0)
				continue;
			evaluate(x, resources[r], &out, &sub);
		}
		fp_free(x);
	}
	fp_result_release(&out);
	fp_result_release(&sub);
	free(expr);
	return 0;
}
