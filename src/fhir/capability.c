/* capability.c - the CapabilityStatement: exactly what this server does.
 *
 * Generated from the same model table the validator uses, so every resource
 * type listed is one the server stores and validates.  Interactions and
 * formats listed here are the ones rest.c implements; keep them in step.
 * The operations are the Bulk Data $export ones (export.c), declared as the
 * Bulk Data IG's own CapabilityStatement does: $export at system level,
 * patient-export on Patient, group-export on Group. */
#include <stdio.h>
#include <string.h>

#include "fhir/fhir.h"
#include "base/banned.h"

static const char *const type_interactions[] = {
	"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
	"search-type",
};

#define BULK_DATA "http://hl7.org/fhir/uv/bulkdata/"

/* Operations by the resource type they are on (NULL: the system). */
static const struct {
	const char *type, *name, *definition;
} operations[] = {
	{ NULL, "export", BULK_DATA "OperationDefinition/export" },
	{ "Patient", "export", BULK_DATA "OperationDefinition/patient-export" },
	{ "Group", "export", BULK_DATA "OperationDefinition/group-export" },
	{ "Patient", "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything" },
	/* code sets (src/coding) */
	{ "CodeSystem", "lookup", "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup" },
	{ "CodeSystem", "validate-code", "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code" },
	{ "ValueSet", "expand", "http://hl7.org/fhir/OperationDefinition/ValueSet-expand" },
	{ "Claim", "code-edits", "https://chartkeep.org/fhir/OperationDefinition/Claim-code-edits" },
	{ "Encounter", "code-edits", "https://chartkeep.org/fhir/OperationDefinition/Encounter-code-edits" },
};

/* Equal types, NULL (the system) equal only to NULL. */
static bool same_type(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

/* ,"operation":[...] for type (NULL: the system), or nothing. */
static void add_operations(struct buf *out, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
		if (!same_type(type, operations[i].type))
			continue;
		buf_addf(out, "%s{\"name\":\"%s\",\"definition\":\"%s\"}",
			 n++ ? "," : ",\"operation\":[", operations[i].name, operations[i].definition);
	}
	if (n)
		buf_addch(out, ']');
}

void fhir_capabilities(const struct fhir_config *cfg, const char *base, struct buf *out)
{
	char now[TIME_INSTANT_MAX];

	time_format_instant(time_now_ms(), now);
	buf_addf(out,
		 "{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\",\"date\":\"%s\","
		 "\"publisher\":\"chartkeep\",\"kind\":\"instance\","
		 "\"instantiates\":[\"" BULK_DATA "CapabilityStatement/bulk-data\"],"
		 "\"software\":{\"name\":\"chartkeep\",\"version\":\"%s\"},"
		 "\"implementation\":{\"description\":\"chartkeep health information management server\","
		 "\"url\":\"",
		 now, cfg->software_version ? cfg->software_version : "0");
	buf_add_json_str(out, base, strlen(base));
	buf_addf(out, "\"},\"fhirVersion\":\"%s\",\"format\":[\"json\"],"
		      "\"patchFormat\":[\"application/json-patch+json\"],"
		      "\"rest\":[{\"mode\":\"server\","
		      "\"documentation\":\"Resources are validated against the FHIR R4 StructureDefinitions "
		      "(elements, cardinality, choice types, primitive formats, references and their target "
		      "types). Not evaluated: FHIRPath invariants, terminology bindings, profiles.\","
		      "\"security\":{\"cors\":false,\"description\":\"Every request except GET /metadata "
		      "needs Authorization: Bearer <token>.\"},"
		      "\"resource\":[",
		 fhir_version);
	for (size_t i = 0; i < fhir_n_resource_types; i++) {
		const struct fhir_type *t = &fhir_types[fhir_resource_types[i]];
		if (i)
			buf_addch(out, ',');
		buf_addf(out, "{\"type\":\"%s\",\"interaction\":[", t->name);
		for (size_t k = 0; k < sizeof(type_interactions) / sizeof(type_interactions[0]); k++)
			buf_addf(out, "%s{\"code\":\"%s\"}", k ? "," : "", type_interactions[k]);
		buf_addstr(out, "],\"versioning\":\"versioned-update\",\"readHistory\":true,"
				"\"updateCreate\":true,\"conditionalCreate\":true,"
				"\"conditionalRead\":\"not-supported\",\"conditionalUpdate\":true,"
				"\"conditionalDelete\":\"single\"");
		fhir_capability_search(cfg, t->name, out);
		add_operations(out, t->name);
		buf_addch(out, '}');
	}
	buf_addstr(out, "],\"interaction\":[{\"code\":\"transaction\"},{\"code\":\"batch\"},"
			"{\"code\":\"history-system\"}]");
	add_operations(out, NULL);
	/* GET /Patient/[id]/[type]: compartment search */
	buf_addstr(out, ",\"compartment\":[\"http://hl7.org/fhir/CompartmentDefinition/patient\"]");
	buf_addstr(out, "}]}");
}
