/* fhir_int.h - shared between the files of src/fhir/, not for other modules. */
#ifndef CK_FHIR_INT_H
#define CK_FHIR_INT_H

#include "fhir/fhir.h"

/* State of a write interaction between fhir_begin and fhir_finish. */
struct fhir_plan {
	struct store_txn txn;
	struct store_op op;
	struct fhir_prepared prep;
	struct fhir_bundle_plan *bundle;
	char id[ID_MAX + 1];
	bool if_match_given;
	char *cond_key;         /* a conditional write in flight (cond_release) */
};

/* Conditional writes: the query of a conditional create/update/delete as a
 * query string ("identifier=x%7C1"), without _format and _pretty. */
int fhir_condition_query(const struct fhir_req *req, struct buf *out);
/* Resolve type?query for a conditional interaction: the matching ids (at
 * most max; *n = max + 1 when there are more).  Errors name the condition. */
int fhir_condition_ids(const struct fhir_config *cfg, const char *type, const char *query,
		       char (*ids)[ID_MAX + 1], size_t max, size_t *n, struct err *e);
/* Decode a query string into parameters (arena strings). */
size_t fhir_query_params(struct arena *a, const char *q, struct fhir_param *out, size_t cap,
			 bool *bad);

/* Parse a JSON body and validate it as a resource (of expect_type when not
 * NULL).  Returns the document, or NULL with iss filled and *status set
 * (400 for malformed JSON and structure). */
json_object *fhir_parse_resource(const struct fhir_config *cfg, const char *body, size_t len,
				 const char *expect_type, struct fhir_issues *iss, int *status);

/* Parse an ETag / If-Match value: W/"3", "3" or 3.  Returns -1 if malformed. */
int fhir_parse_etag(const char *s, int64_t *vid);

/* "201 Created" and friends, for Bundle.entry.response.status. */
const char *fhir_status_line(int status);

/* Rewrite every Reference.reference in o equal to a key of the map to its
 * value (the urn:uuid: references of a transaction). */
struct fhir_refmap {
	const char **from;
	const char **to;
	size_t n;
};
void fhir_rewrite_refs(json_object *o, const struct fhir_refmap *map);

/* References to base/Type/id (this server) become Type/id. */
void fhir_localize_refs(json_object *o, const char *base);

/* Read-side helper shared by read and transaction GET entries: the current
 * or given version, with headers. */
int fhir_read_into(const struct fhir_config *cfg, const char *type, const char *id,
		   const char *vid, struct store_version *v, struct err *e);

#endif
