/* export_int.h - the parts of export.c that unit tests reach directly. */
#ifndef CK_FHIR_EXPORT_INT_H
#define CK_FHIR_EXPORT_INT_H

#include "fhir/export.h"

/* The kick-off parameters, checked. */
struct fhir_export_spec {
	char types[STORE_EXPORT_TYPES_MAX]; /* canonical names, comma-separated, no
					       repeats; "" for every type */
	int64_t since_ms;                   /* INT64_MIN: no _since */
};

/* Check _type, _since and _outputFormat (ERR_INVALID naming the parameter),
 * reject the parameters that would change what is exported and that this
 * server does not do (_typeFilter, _elements, patient, organizeOutputBy:
 * ERR_NOT_SUPPORTED), and any other parameter when strict; otherwise add a
 * warning for it to warn (may be NULL). */
int fhir_export_parse(const struct fhir_param *params, size_t n, bool strict,
		      struct fhir_export_spec *out, struct fhir_issues *warn, struct err *e);

/* Is s a job id (STORE_EXPORT_JOB_LEN lower-case hex digits)? */
bool fhir_export_job_valid(const char *s);
/* Is s a file name this server writes ("Type-N.ndjson", Type a resource
 * type, N 1-999999 without leading zeros)?  Nothing else is ever opened. */
bool fhir_export_file_valid(const char *s);

/* The ids of the Patients a Group's members are (member.entity: "Patient/x",
 * "Patient/x/_history/n", or base + "/Patient/x"; members marked inactive
 * are left out; each id once).  *ids is one malloc'd block (free(*ids)). */
int fhir_export_members(json_object *group, const char *base, char ***ids, size_t *n,
			struct err *e);

/* The search parameter codes that put a resource of type in a Patient's
 * compartment (CompartmentDefinition-patient); 0 when type is not in it. */
size_t fhir_export_compartment(const char *type, const char **codes, size_t cap);

/* NDJSON output of one job: files per type, split at max_bytes or max_count,
 * each opened when its first resource comes (a type with nothing to export
 * has no file).  Resources of several types may come interleaved (a scan of
 * every type in write order): each type has its own open file and buffer, at
 * most WRITER_MAX_OPEN at once (the least recently used is closed, and that
 * type goes on in a new file). */
struct fhir_export_out {
	char type[64];
	unsigned seq;                    /* number of the type's current (or last) file */
	int fd;                          /* -1: none open */
	char name[STORE_EXPORT_NAME_MAX];
	uint64_t count, bytes;           /* of the current file */
	char *buf;                       /* pending output; NULL while closed */
	size_t len;
	uint64_t used;                   /* for closing the least recently used */
};

struct fhir_export_writer {
	int dirfd;                       /* the job's directory (not owned) */
	uint64_t max_bytes, max_count;
	struct fhir_export_out *outs;     /* one per type seen */
	size_t nouts, capouts, nopen, last;
	uint64_t clock;
	struct store_export_file *files; /* closed files */
	size_t nfiles, capfiles;
	uint64_t total_count, total_bytes;
};

int fhir_export_writer_init(struct fhir_export_writer *w, int dirfd, uint64_t max_bytes,
			    uint64_t max_count, struct err *e);
/* One resource of type (its JSON; a raw line break in it, which compact JSON
 * never has, would become a space). */
int fhir_export_writer_add(struct fhir_export_writer *w, const char *type, const char *json,
			   size_t len, struct err *e);
/* Write out and close every open file; w->files is then in manifest order
 * (by type, then number). */
int fhir_export_writer_close(struct fhir_export_writer *w, struct err *e);
/* Free the buffers, close files left open (the files stay on disk). */
void fhir_export_writer_release(struct fhir_export_writer *w);

#endif
