/* coding.h - code sets (ICD-10-CM, ICD-10-PCS, HCPCS Level II, CMS place of
 * service, site-supplied CPT), the edit tables of the Medicare Code Editor,
 * the FHIR terminology operations over them, and claim coding edits.
 *
 *   loaders    the official file formats are parsed into a struct
 *              coding_set (coding_parse: one function per format, each
 *              fuzzed) and stored as one version (coding_load): all of the
 *              file or nothing, the first malformed line named.
 *   terminology CodeSystem/$lookup, CodeSystem/$validate-code,
 *              ValueSet/$expand (coding_terminology): Parameters in, out.
 *   edits      Claim/$code-edits and Encounter/$code-edits
 *              (coding_code_edits): an OperationOutcome, one issue per edit.
 *
 * CPT is licensed by the AMA: chartkeep ships no CPT content; a site loads
 * its own licensed file (`codes load --system cpt`). */
#ifndef CK_CODING_H
#define CK_CODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "store/store.h"
#include "store/store_codes.h"

/* ---- code systems ---- */

enum coding_kind { CK_CODES = 1, CK_EDITS };
enum coding_dating { CD_FISCAL = 1, CD_CALENDAR, CD_OPEN, CD_MCE };

struct coding_system {
	const char *name;     /* as on the command line: "icd10cm" */
	const char *uri;      /* canonical system URI; NULL for edit tables */
	const char *title;    /* "ICD-10-CM" */
	int kind;             /* enum coding_kind */
	int dating;           /* enum coding_dating: how a version maps to dates */
	const char *formats;  /* what the loader reads, for --help and errors */
};

extern const struct coding_system coding_systems[];
extern const size_t coding_n_systems;

const struct coding_system *coding_system_by_name(const char *name);
const struct coding_system *coding_system_by_uri(const char *uri);

/* The dates of service a version covers by default (FY2016: 2015-10-01 to
 * 2016-09-30; CY2019; MCE v37 = FY2020; open for place of service).
 * ERR_INVALID if the version is not of the system's form (a year, an MCE
 * version number). */
int coding_version_dates(const struct coding_system *sys, const char *version, char from[11],
			 char to[11], struct err *e);

/* A code as typed (with or without the dot, any case, surrounding blanks)
 * to its stored form: upper case, no dot.  ERR_INVALID naming the system
 * if it cannot be one of its codes. */
int coding_code_norm(const struct coding_system *sys, const char *in, size_t n,
		     char out[STORE_CODE_MAX], struct err *e);
/* The conventional form of a stored code: ICD-10-CM "E119" -> "E11.9". */
void coding_code_show(const struct coding_system *sys, const char *code, char out[STORE_CODE_MAX + 2]);

/* ---- loaders ---- */

/* A parsed file: what one version holds.  Strings live in arena. */
struct coding_set {
	struct arena arena;
	struct store_concept *c;
	uint32_t *line;       /* the line each concept came from */
	size_t n, cap;
	struct store_code_edit *ed;
	size_t m, mcap;
	size_t billable;
	size_t skipped;       /* lines that are not codes: preamble, header */
	size_t modifiers;     /* of the concepts, HCPCS modifiers (2 characters) */
	const char *format;   /* the format found: "order", "tsv", ... */
};

void coding_set_init(struct coding_set *cs);
void coding_set_release(struct coding_set *cs);

/* Parse data[0..len) as a file of sys (version: the version it is loaded
 * as; the MCE file must say the same).  The format is recognised from the
 * content.  ERR_INVALID "line N: what is wrong" at the first malformed
 * line; nothing is kept then. */
int coding_parse(const struct coding_system *sys, const char *version, const char *data,
		 size_t len, struct coding_set *out, struct err *e);

struct coding_load_opts {
	const char *system, *version;
	const char *eff_from, *eff_to;   /* NULL: coding_version_dates */
};

struct coding_load_report {
	struct store_code_version v;
	const char *format;
	size_t skipped;
	size_t modifiers;     /* HCPCS: of the codes, modifiers */
	bool unchanged;       /* the same file was loaded before: nothing written */
	double seconds;
};

/* Read path, parse it and store it as one version, all or nothing. */
int coding_load_file(struct store *s, const struct coding_load_opts *o, const char *path,
		     struct coding_load_report *r, struct err *e);

/* ---- terminology operations ---- */

enum coding_op {
	COP_LOOKUP = 1,       /* GET CodeSystem/$lookup */
	COP_VALIDATE,         /* GET|POST CodeSystem/$validate-code */
	COP_EXPAND,           /* GET ValueSet/$expand */
	COP_EDITS_CLAIM,      /* POST Claim/$code-edits */
	COP_EDITS_ENCOUNTER,  /* GET Encounter/{id}/$code-edits */
};

/* Answer a terminology operation (COP_LOOKUP..COP_EXPAND): parameters from
 * req->params, or for POST a Parameters resource in req->body.  resp gets
 * a Parameters (lookup, validate), a ValueSet (expand), or an
 * OperationOutcome for a bad request (400), an unknown system or code
 * (404 for $lookup).  Reads no patient data. */
void coding_terminology(const struct fhir_config *cfg, struct fhir_req *req, int op,
			struct fhir_resp *resp);

/* ---- claim edits ---- */

/* Run the coding edits on a Claim (COP_EDITS_CLAIM: the body, a Parameters
 * with a "resource"/"claim" part, or ?claim=Claim/id) or on an Encounter's
 * claims (COP_EDITS_ENCOUNTER, req->id), reading Patient, Encounter, Claim,
 * Condition and Procedure through req->visible (the caller's policy and
 * labels: a resource it refuses is treated as not there).  resp gets an
 * OperationOutcome with one issue per edit that fires (or one
 * "information" issue saying none did).  patient (ID_MAX + 1) receives the
 * Patient read, "" if none, for the audit trail. */
void coding_code_edits(const struct fhir_config *cfg, struct fhir_req *req, int op,
		       struct fhir_resp *resp, char *patient);

#endif
