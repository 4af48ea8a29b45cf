/* demo_gen.h - deterministic synthetic HIM data (FHIR R4 JSON).
 *
 * Feeds `chartkeep demo`, the ingest benchmark and the MPI tests with a
 * hospital's worth of synthetic records: the shared directory (hospital,
 * payers, practitioners, locations) and, per patient, the Patient with
 * coverage, encounters, ICD-10-CM diagnoses, ICD-10-PCS / HCPCS Level II
 * procedures, LOINC vital signs and labs, clinical notes (signed and
 * unsigned), discharge-summary Compositions and Claims.  No CPT anywhere.
 *
 * The same options give byte-identical output on every machine: nothing
 * depends on the clock, the locale or the allocator.  All dates fall before
 * `as_of` (default 2025-06-30), in US Eastern time with its DST offset. */
#ifndef CK_DEMO_GEN_H
#define CK_DEMO_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define DEMO_DEFAULT_DUP_PCT 2

struct demo_opts {
	unsigned patients;      /* number of patients (near-duplicates come on top) */
	uint64_t seed;          /* same seed => byte-identical output */
	bool patients_only;     /* emit only Patient resources (for benchmarks) */
	unsigned duplicate_pct; /* percent of patients that get a near-duplicate
	                           record (for the MPI); 0 = none, capped at 100;
	                           demo_opts_init() sets DEMO_DEFAULT_DUP_PCT */
	int64_t as_of_day;      /* "today" of the data set, days since 1970-01-01,
	                           1990-01-01..2099-12-31; 0 = 2025-06-30 */
};

struct demo_res {
	const char *type;   /* "Patient", "Encounter", ... (static) */
	const char *id;     /* client id, FHIR id rules */
	const char *json;   /* compact FHIR R4 JSON, NUL-terminated */
	size_t len;         /* strlen(json) */
	/* Patient only: id of the Patient this record near-duplicates (the
	 * ground truth for MPI tests; it appears nowhere in the JSON), else NULL. */
	const char *dup_of;
};

/* Called once for the shared directory (Organizations, Practitioners,
 * Locations; skipped when patients_only) and then once per patient with all
 * that patient's resources: the Patient first, then the resources that
 * reference it; a near-duplicate Patient, when there is one, follows in the
 * same call with its own resources.  References inside one call may point
 * forward (Encounter.diagnosis -> Condition -> Encounter is a cycle), so
 * load a call as one unit (a transaction or batch).  In patients_only mode
 * the Patient carries no references at all.
 *
 * The strings in res are owned by the generator and reused after the
 * callback returns: copy what must outlive it.  Return 0 to continue, -1 to
 * stop (demo_generate then returns -1 with e as the callback left it). */
typedef int (*demo_emit_fn)(void *ctx, const struct demo_res *res, size_t n,
	struct err *e);

/* Defaults: 100 patients, seed 1, full records, 2% near-duplicates. */
void demo_opts_init(struct demo_opts *o);

/* Generate the data set described by o, handing it to emit batch by batch.
 * Returns 0, or -1 with e set: ERR_INVALID for bad options, ERR_NOMEM, or
 * whatever the callback set when it stopped the run. */
int demo_generate(const struct demo_opts *o, demo_emit_fn emit, void *ctx,
	struct err *e);

#endif
