/* model.h - the FHIR R4 type model, as tables.
 *
 * The tables (fhir_types, fhir_elems, fhir_targets) are generated at build
 * time by tools/gen_fhir_model.c from the official StructureDefinitions in
 * data/fhir/ (Bundle-types.json, Bundle-resources.json); nothing here is
 * hand-written per resource.  Each resource, complex datatype and backbone
 * element (e.g. "Patient.contact") is one struct fhir_type; its elements are
 * a contiguous run of fhir_elems sorted by JSON property name.  A choice
 * element value[x] appears once per allowed type (valueString,
 * valueQuantity, ...) with a shared choice_group. */
#ifndef CK_FHIR_MODEL_H
#define CK_FHIR_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fhir_kind {
	FK_PRIMITIVE = 1,
	FK_COMPLEX,      /* datatypes: HumanName, Quantity, ... */
	FK_BACKBONE,     /* anonymous types: Patient.contact, Timing.repeat */
	FK_RESOURCE,     /* concrete resource types */
	FK_ANY_RESOURCE  /* "Resource" used as an element type: any resource, by resourceType */
};

/* Primitive kinds; FP_NONE for non-primitives. */
enum fhir_prim {
	FP_NONE = 0,
	FP_BOOLEAN, FP_INTEGER, FP_STRING, FP_DECIMAL, FP_URI, FP_URL,
	FP_CANONICAL, FP_BASE64BINARY, FP_INSTANT, FP_DATE, FP_DATETIME,
	FP_TIME, FP_CODE, FP_OID, FP_ID, FP_MARKDOWN, FP_UNSIGNEDINT,
	FP_POSITIVEINT, FP_UUID, FP_XHTML,
	FP__COUNT
};

#define FHIR_MAX_UNBOUNDED UINT32_MAX

struct fhir_type {
	const char *name;     /* "Patient", "HumanName", "Patient.contact", "string" */
	uint8_t kind;         /* enum fhir_kind */
	uint8_t prim;         /* enum fhir_prim, for FK_PRIMITIVE */
	uint32_t first_elem;  /* run in fhir_elems, sorted by name */
	uint32_t n_elems;
};

struct fhir_elem {
	const char *name;      /* JSON property name: "birthDate", "valueQuantity" */
	const char *base;      /* element name as defined: "birthDate", "value[x]" */
	uint32_t type;         /* index into fhir_types */
	uint32_t choice_group; /* 0, or an id shared by the alternatives of one [x] */
	uint32_t min;
	uint32_t max;          /* FHIR_MAX_UNBOUNDED for "*" */
	uint32_t first_target; /* Reference targets: run in fhir_targets */
	uint32_t n_targets;    /* 0: any resource type */
	uint32_t order;        /* position in the StructureDefinition */
	bool array;            /* represented as a JSON array (max > 1) */
	bool summary;          /* isSummary: part of _summary=true */
};

extern const struct fhir_type fhir_types[];
extern const size_t fhir_n_types;
extern const struct fhir_elem fhir_elems[];
extern const size_t fhir_n_elems;
extern const uint32_t fhir_targets[];       /* indexes into fhir_types */
/* Concrete resource types, sorted by name: indexes into fhir_types. */
extern const uint32_t fhir_resource_types[];
extern const size_t fhir_n_resource_types;
/* All types (resources, datatypes, primitives) sorted by name; backbone
 * types are not in it. */
extern const uint32_t fhir_named_types[];
extern const size_t fhir_n_named_types;
extern const char fhir_version[];           /* "4.0.1" */

#define FHIR_MAX_TYPE_ELEMS 256 /* checked by the generator */

/* Lookups (src/fhir/model.c). */
const struct fhir_type *fhir_type_by_name(const char *name);
/* A concrete resource type by name, or NULL. */
const struct fhir_type *fhir_resource_type(const char *name);
const struct fhir_type *fhir_resource_type_n(const char *name, size_t n);
/* Element `name` of type t, or NULL. */
const struct fhir_elem *fhir_elem_find(const struct fhir_type *t, const char *name);
const char *fhir_prim_name(int prim);

#endif
