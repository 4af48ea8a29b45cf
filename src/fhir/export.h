/* export.h - FHIR Bulk Data Access $export (Bulk Data IG v1/v2), as jobs.
 *
 *   GET [base]/$export, [base]/Patient/$export, [base]/Group/{id}/$export
 *       (Prefer: respond-async)                    -> 202, Content-Location
 *   GET    [base]/$export-status/{job}             -> 202 running, 200 manifest,
 *                                                     500 failed, 404 unknown
 *   DELETE [base]/$export-status/{job}             -> 202, the job is gone
 *   GET    [base]/$export-file/{job}/{file}        -> the NDJSON file
 *
 * A struct fhir_export owns the jobs: their rows in the store (so status
 * survives a restart), their files under one directory (<dir>/<job>/), and
 * one worker thread that runs the jobs one after another, reading each
 * through a store snapshot and writing NDJSON with large buffered writes.
 * The server creates it at start-up, hands it the export routes, and frees
 * it at shutdown (a running job is stopped and marked failed).
 *
 * Like the rest of src/fhir/ this never speaks HTTP: a request comes in as
 * a struct fhir_export_req and goes back as a struct fhir_export_resp
 * (status, header values as fields, a JSON body or an open file). */
#ifndef CK_FHIR_EXPORT_H
#define CK_FHIR_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fhir/fhir.h"

#define FHIR_EXPORT_TTL_S (24 * 3600)                    /* finished jobs expire after */
#define FHIR_EXPORT_FILE_MAX_BYTES ((uint64_t)1 << 30)   /* a type's output is split ... */
#define FHIR_EXPORT_FILE_MAX_RESOURCES 1000000u          /* ... at whichever comes first */
#define FHIR_EXPORT_MAX_PER_USER 4                       /* jobs queued or running */
#define FHIR_EXPORT_MAX_JOBS 32
#define FHIR_EXPORT_NDJSON "application/fhir+ndjson"

struct fhir_export_config {
	const char *dir;              /* where job directories go; NULL: <database>.exports */
	int64_t ttl_s;                /* 0: FHIR_EXPORT_TTL_S */
	uint64_t file_max_bytes;      /* 0: FHIR_EXPORT_FILE_MAX_BYTES */
	uint64_t file_max_resources;  /* 0: FHIR_EXPORT_FILE_MAX_RESOURCES */
	unsigned max_per_user;        /* 0: FHIR_EXPORT_MAX_PER_USER */
	unsigned max_jobs;            /* 0: FHIR_EXPORT_MAX_JOBS */
	unsigned start_delay_ms;      /* tests only: a job waits this long, as running, before
					 it reads anything (so status and DELETE can be seen
					 on a running job); 0 in production */
};

struct fhir_export;

/* Create the directory (0700) if needed, settle the jobs a previous run left
 * (queued or running ones become failed, done ones whose files are missing or
 * short become failed, expired ones and stray job directories go), and start
 * the worker.  fcfg (store, search parameters) must outlive the result. */
int fhir_export_new(const struct fhir_config *fcfg, const struct fhir_export_config *cfg,
		    struct fhir_export **out, struct err *e);
/* Stop the worker (a running job is abandoned and marked failed), free. */
void fhir_export_free(struct fhir_export *x);

enum fhir_export_op {
	FHIR_EXPORT_KICKOFF = 1,
	FHIR_EXPORT_STATUS,
	FHIR_EXPORT_CANCEL,
	FHIR_EXPORT_FILE
};

struct fhir_export_req {
	int op;                          /* enum fhir_export_op */
	int level;                       /* kick-off: enum store_export_level */
	const char *id;                  /* the Group's id (kick-off), or the job id */
	const char *file;                /* FHIR_EXPORT_FILE: the file's name */
	bool respond_async;              /* Prefer: respond-async */
	bool strict;                     /* Prefer: handling=strict */
	const char *base;                /* "http://host:port", no trailing slash */
	const char *path;                /* the request path, for the manifest's "request" */
	const struct fhir_param *params; /* query parameters, decoded */
	size_t n_params;
	int64_t uid;                     /* the authenticated user */
	const struct store_principal *who; /* kick-off: whose clearance filters the files
					     (sensitivity labels); NULL: no filter */
};

struct fhir_export_resp {
	int status;
	struct buf body;                 /* JSON (manifest, OperationOutcome) or empty */
	char content_location[512];
	char progress[64];               /* X-Progress, or "" */
	int retry_after;                 /* seconds; 0: no Retry-After */
	int fd;                          /* FHIR_EXPORT_FILE: the open file, else -1 */
	uint64_t size;                   /* its size */
};

void fhir_export_resp_init(struct fhir_export_resp *r);
/* Releases the body and closes fd unless the caller took it (set it to -1). */
void fhir_export_resp_release(struct fhir_export_resp *r);

/* Answer one request.  Jobs belong to the user who started them: for anyone
 * else they do not exist (404). */
void fhir_export_handle(struct fhir_export *x, const struct fhir_export_req *req,
			struct fhir_export_resp *resp);

#endif
