/* export.c - FHIR Bulk Data $export: kick-off, status, cancel, files, and
 * the worker that writes the NDJSON (see export.h).
 *
 * Job lifecycle.  A kick-off checks the request, writes a job row (state
 * queued) and puts the job on the in-memory list `jobs`; the worker takes
 * the oldest queued job, marks it running, writes its files into
 * <dir>/<job>/ and records the end (done with its files, or failed) in one
 * transaction, then takes the job off the list.  Status answers come from
 * the list while a job is queued or running (progress is a counter there)
 * and from the store afterwards.  Every change of a job's final state -
 * the worker finishing, DELETE, expiry - happens under x->mu, so a DELETE
 * can never be overtaken by the worker marking the job done.
 *
 * Speed.  The stored JSON of a version is already the compact one-line
 * resource (store.h: stored as served), so a resource is written as is, with
 * a newline: no parse, no re-serialisation.  Output goes through one 4 MB
 * buffer per job with plain write(2)s; the store reads one snapshot in index
 * order.  Files are not fsync'd: they can be made again, and on start-up a
 * done job whose files are shorter than recorded is marked failed.
 *
 * Security.  Job ids are 128 random bits; a job is visible only to the user
 * who started it (404 for everyone else, the same answer as for no job);
 * file names are checked against the one pattern this server writes and
 * against the job's file rows before anything is opened, and opened with
 * O_NOFOLLOW under a directory the server made (0700; files 0600).  Logs
 * carry job ids and counts, never resource ids or content. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/embedded.h"
#include "base/url.h"
#include "fhir/export_int.h"
#include "fhir/search.h"
#include "privacy/policy.h"
#include "base/banned.h"

#define WBUF_SIZE ((size_t)1 << 20)     /* output buffer of each open file */
#define WRITER_MAX_OPEN 32              /* files open at once (an all-types scan) */
#define PURGE_EVERY_MS (60 * 1000)      /* how often expired jobs are looked for */
#define CHECK_EVERY 1024                /* resources between progress/cancel checks */
#define RETRY_RUNNING_S 2
#define RETRY_QUEUED_S 5
#define MAX_PIDS 64
#define MAX_CODES 16

/* ---- parameters ---- */

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		size_t k = strcspn(p, ",");
		if (k == n && strncmp(p, name, n) == 0)
			return true;
		p += k;
		if (*p == ',')
			p++;
	}
	return false;
}

static int parse_types(const char *v, struct buf *types, struct err *e)
{
	const char *p = v;

	for (;;) {
		size_t n;
		const struct fhir_type *t;
		while (*p == ' ')
			p++;
		n = strcspn(p, ",");
		while (n && p[n - 1] == ' ')
			n--;
		if (n == 0)
			return err_set(e, ERR_INVALID, "_type: an empty resource type in '%.100s'", v);
		t = fhir_resource_type_n(p, n);
		if (!t)
			return err_set(e, ERR_INVALID, "_type: unknown resource type '%.*s'",
				       (int)(n > 64 ? 64 : n), p);
		if (!in_list(buf_cstr(types), t->name)) {
			if (types->len)
				buf_addch(types, ',');
			buf_addstr(types, t->name);
		}
		p += strcspn(p, ",");
		if (*p != ',')
			break;
		p++;
	}
	if (types->failed)
		return err_set(e, ERR_INVALID, "_type: too many resource types");
	return 0;
}

static bool output_format_ok(const char *v)
{
	static const char *const ok[] = { "application/fhir+ndjson", "application/ndjson",
					  "ndjson", NULL };
	size_t n = strcspn(v, ";");

	while (n && v[n - 1] == ' ')
		n--;
	for (const char *const *k = ok; *k; k++)
		if (strlen(*k) == n && strncasecmp(v, *k, n) == 0)
			return true;
	return false;
}

int fhir_export_parse(const struct fhir_param *params, size_t n, bool strict,
		      struct fhir_export_spec *out, struct fhir_issues *warn, struct err *e)
{
	/* Would change what is exported or how: never silently ignored. */
	static const char *const refused[] = { "_typeFilter", "_elements", "patient",
					       "organizeOutputBy", NULL };
	/* Known and harmless to ignore. */
	static const char *const quiet[] = { "_format", "_pretty", "allowPartialManifests", NULL };
	struct buf types = BUF_INIT(STORE_EXPORT_TYPES_MAX - 1);
	bool have_since = false;
	int rc = -1;

	out->types[0] = '\0';
	out->since_ms = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		const char *name = params[i].name, *v = params[i].value;
		bool skip = false;

		if (strcmp(name, "_type") == 0) {
			if (parse_types(v, &types, e) < 0)
				goto out;
			continue;
		}
		if (strcmp(name, "_since") == 0) {
			struct time_val tv;
			char fixed[64];
			if (have_since) {
				err_set(e, ERR_INVALID, "_since: given more than once");
				goto out;
			}
			/* "+01:00" sent unencoded arrives as " 01:00" (a '+' in a
			 * query is a space): read it as meant */
			snprintf(fixed, sizeof(fixed), "%s", v);
			for (char *sp = strchr(fixed, ' '); sp; sp = strchr(sp + 1, ' '))
				*sp = '+';
			if (strlen(v) >= sizeof(fixed) ||
			    time_parse(fixed, strlen(fixed), TIME_DATETIME, &tv) < 0) {
				err_set(e, ERR_INVALID, "_since: '%.40s' is not an instant such as "
					"2024-01-31T12:00:00Z", v);
				goto out;
			}
			have_since = true;
			out->since_ms = tv.lo_ms;
			continue;
		}
		if (strcmp(name, "_outputFormat") == 0) {
			if (!output_format_ok(v)) {
				err_set(e, ERR_INVALID, "_outputFormat: '%.60s' is not supported; this "
					"server writes application/fhir+ndjson", v);
				goto out;
			}
			continue;
		}
		for (size_t k = 0; refused[k]; k++) {
			if (strcmp(name, refused[k]) == 0) {
				err_set(e, ERR_INVALID, "%s: this parameter is not supported by $export on "
					"this server", refused[k]);
				goto out;
			}
		}
		for (size_t k = 0; quiet[k]; k++)
			skip = skip || strcmp(name, quiet[k]) == 0;
		if (skip)
			continue;
		if (strict) {
			err_set(e, ERR_INVALID, "unknown parameter '%.60s' (Prefer: handling=strict)", name);
			goto out;
		}
		if (warn)
			fhir_issue_add(warn, FHIR_WARNING, "not-supported", NULL,
				       "parameter '%.60s' is not supported by $export and was ignored", name);
	}
	snprintf(out->types, sizeof(out->types), "%s", buf_cstr(&types));
	rc = 0;
out:
	buf_release(&types);
	return rc;
}

/* ---- names ---- */

bool fhir_export_job_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == STORE_EXPORT_JOB_LEN;
}

bool fhir_export_file_valid(const char *s)
{
	const char *dash = strrchr(s, '-'), *p;
	size_t digits = 0;

	if (!dash || dash == s || !fhir_resource_type_n(s, (size_t)(dash - s)))
		return false;
	p = dash + 1;
	if (*p < '1' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		p++;
		digits++;
	}
	return digits <= 6 && strcmp(p, ".ndjson") == 0;
}

/* ---- Group members ---- */

struct span {
	const char *s;
	size_t n;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);

	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The Patient id a reference names, if it is a Patient on this server. */
static bool patient_ref(const char *ref, const char *base, struct span *out)
{
	size_t blen = base ? strlen(base) : 0, n;

	if (blen && strncmp(ref, base, blen) == 0 && ref[blen] == '/')
		ref += blen + 1;
	if (strncmp(ref, "Patient/", 8) != 0)
		return false;
	ref += 8;
	n = strcspn(ref, "/");
	if (ref[n] && strncmp(ref + n, "/_history/", 10) != 0)
		return false;
	if (!id_valid(ref, n))
		return false;
	out->s = ref;
	out->n = n;
	return true;
}

int fhir_export_members(json_object *group, const char *base, char ***ids, size_t *n,
			struct err *e)
{
	json_object *members = json_get_arr(group, "member");
	size_t cap = members ? json_object_array_length(members) : 0, k = 0, bytes = 0, u = 0;
	struct span *v = NULL;
	char **out = NULL, *text;
	int rc = -1;

	*ids = NULL;
	*n = 0;
	v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < cap; i++) {
		json_object *m = json_object_array_get_idx(members, i);
		json_object *inactive = json_get(m, "inactive");
		const char *ref = json_get_str(json_get_obj(m, "entity"), "reference");
		if (!ref || (inactive && json_object_get_boolean(inactive)))
			continue;
		if (patient_ref(ref, base, &v[k]))
			k++;
	}
	qsort(v, k, sizeof(*v), span_cmp);
	for (size_t i = 0; i < k; i++) {
		if (u && span_cmp(&v[u - 1], &v[i]) == 0)
			continue;
		v[u++] = v[i];
		bytes += v[i].n + 1;
	}
	/* One block: the pointers, then the strings. */
	out = malloc((u + 1) * sizeof(*out) + bytes);
	if (!out) {
		err_set(e, ERR_NOMEM, "out of memory");
		goto done;
	}
	text = (char *)(out + u + 1);
	for (size_t i = 0; i < u; i++) {
		out[i] = text;
		memcpy(text, v[i].s, v[i].n);
		text[v[i].n] = '\0';
		text += v[i].n + 1;
	}
	out[u] = NULL;
	*ids = out;
	*n = u;
	rc = 0;
done:
	free(v);
	return rc;
}

/* ---- the Patient compartment ---- */

struct comp_entry {
	char type[64];
	char codes[MAX_CODES][48];
	size_t n;
};

static struct comp_entry *comp;
static size_t n_comp;
static pthread_once_t comp_once = PTHREAD_ONCE_INIT;

/* Copied out of the embedded CompartmentDefinition once; the parsed
 * document is not kept. */
static void comp_load(void)
{
	const struct embedded_file *f = embedded_find("data/fhir/CompartmentDefinition-patient.json");
	struct err e = ERR_INIT;
	json_object *def = f ? json_parse_buf((const char *)f->data, f->len, 0, &e) : NULL;
	json_object *res = json_get_arr(def, "resource");
	size_t cnt = res ? json_object_array_length(res) : 0;

	comp = calloc(cnt ? cnt : 1, sizeof(*comp));
	for (size_t i = 0; comp && i < cnt; i++) {
		json_object *r = json_object_array_get_idx(res, i);
		json_object *params = json_get_arr(r, "param");
		const char *code = json_get_str(r, "code");
		struct comp_entry *c = &comp[n_comp];
		if (!code || !params)
			continue;
		snprintf(c->type, sizeof(c->type), "%s", code);
		for (size_t k = 0; k < json_object_array_length(params) && c->n < MAX_CODES; k++) {
			const char *p = json_object_get_string(json_object_array_get_idx(params, k));
			if (p)
				snprintf(c->codes[c->n++], sizeof(c->codes[0]), "%s", p);
		}
		if (c->n)
			n_comp++;
	}
	if (!def)
		log_error("event=export_compartment_missing detail=\"%s\"", e.detail);
	json_object_put(def);
}

size_t fhir_export_compartment(const char *type, const char **codes, size_t cap)
{
	pthread_once(&comp_once, comp_load);
	for (size_t i = 0; i < n_comp; i++) {
		size_t k;
		if (strcmp(comp[i].type, type) != 0)
			continue;
		for (k = 0; k < comp[i].n && k < cap; k++)
			codes[k] = comp[i].codes[k];
		return k;
	}
	return 0;
}

/* ---- the NDJSON writer ---- */

static int write_all(int fd, const char *p, size_t n, struct err *e)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err_set(e, ERR_IO, errno == ENOSPC ? "the export ran out of disk space"
							   : "the export could not write its files");
			err_detail(e, "write: %s", strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int flush_out(struct fhir_export_out *o, struct err *e)
{
	int rc = 0;

	if (o->len)
		rc = write_all(o->fd, o->buf, o->len, e);
	o->len = 0;
	return rc;
}

int fhir_export_writer_init(struct fhir_export_writer *w, int dirfd, uint64_t max_bytes,
			    uint64_t max_count, struct err *e)
{
	(void)e;
	memset(w, 0, sizeof(*w));
	w->dirfd = dirfd;
	w->max_bytes = max_bytes ? max_bytes : FHIR_EXPORT_FILE_MAX_BYTES;
	w->max_count = max_count ? max_count : FHIR_EXPORT_FILE_MAX_RESOURCES;
	return 0;
}

/* Write out, close and record o's current file. */
static int close_out(struct fhir_export_writer *w, struct fhir_export_out *o, struct err *e)
{
	struct store_export_file *f;
	int rc;

	if (o->fd < 0)
		return 0;
	rc = flush_out(o, e);
	if (close(o->fd) < 0 && rc == 0) {
		err_set(e, ERR_IO, "the export could not write its files");
		err_detail(e, "close: %s", strerror(errno));
		rc = -1;
	}
	o->fd = -1;
	free(o->buf);
	o->buf = NULL;
	w->nopen--;
	if (rc < 0)
		return -1;
	if (w->nfiles == w->capfiles) {
		size_t ncap = w->capfiles ? w->capfiles * 2 : 16;
		struct store_export_file *nf = realloc(w->files, ncap * sizeof(*nf));
		if (!nf)
			return err_set(e, ERR_NOMEM, "out of memory");
		w->files = nf;
		w->capfiles = ncap;
	}
	f = &w->files[w->nfiles++];
	memset(f, 0, sizeof(*f));
	snprintf(f->type, sizeof(f->type), "%s", o->type);
	snprintf(f->name, sizeof(f->name), "%s", o->name);
	f->count = (int64_t)o->count;
	f->bytes = (int64_t)o->bytes;
	return 0;
}

/* Open o's next file, closing the least recently used open file first
 * if WRITER_MAX_OPEN are open. */
static int open_out(struct fhir_export_writer *w, struct fhir_export_out *o, struct err *e)
{
	if (w->nopen == WRITER_MAX_OPEN) {
		struct fhir_export_out *lru = NULL;
		for (size_t i = 0; i < w->nouts; i++)
			if (w->outs[i].fd >= 0 && (!lru || w->outs[i].used < lru->used))
				lru = &w->outs[i];
		if (lru && close_out(w, lru, e) < 0)
			return -1;
	}
	o->buf = malloc(WBUF_SIZE);
	if (!o->buf)
		return err_set(e, ERR_NOMEM, "out of memory");
	o->seq++;
	snprintf(o->name, sizeof(o->name), "%s-%u.ndjson", o->type, o->seq);
	o->count = o->bytes = 0;
	o->len = 0;
	o->fd = openat(w->dirfd, o->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (o->fd < 0) {
		err_set(e, ERR_IO, "the export could not create its files");
		err_detail(e, "open %s: %s", o->name, strerror(errno));
		free(o->buf);
		o->buf = NULL;
		return -1;
	}
	w->nopen++;
	return 0;
}

/* The output of type (made on first use). */
static struct fhir_export_out *out_of(struct fhir_export_writer *w, const char *type,
				      struct err *e)
{
	struct fhir_export_out *o;

	if (w->last < w->nouts && strcmp(w->outs[w->last].type, type) == 0)
		return &w->outs[w->last];
	for (size_t i = 0; i < w->nouts; i++) {
		if (strcmp(w->outs[i].type, type) == 0) {
			w->last = i;
			return &w->outs[i];
		}
	}
	if (w->nouts == w->capouts) {
		size_t ncap = w->capouts ? w->capouts * 2 : 16;
		struct fhir_export_out *no = realloc(w->outs, ncap * sizeof(*no));
		if (!no) {
			err_set(e, ERR_NOMEM, "out of memory");
			return NULL;
		}
		w->outs = no;
		w->capouts = ncap;
	}
	o = &w->outs[w->nouts];
	memset(o, 0, sizeof(*o));
	snprintf(o->type, sizeof(o->type), "%s", type);
	o->fd = -1;
	w->last = w->nouts++;
	return o;
}

int fhir_export_writer_add(struct fhir_export_writer *w, const char *type, const char *json,
			   size_t len, struct err *e)
{
	struct fhir_export_out *o = out_of(w, type, e);
	uint64_t need = (uint64_t)len + 1;

	if (!o)
		return -1;
	if (o->fd >= 0 && o->count > 0 &&
	    (o->bytes + need > w->max_bytes || o->count >= w->max_count) && close_out(w, o, e) < 0)
		return -1;
	if (o->fd < 0 && open_out(w, o, e) < 0)
		return -1;
	o->used = ++w->clock;
	/* Into the buffer in pieces (a resource may be larger than it). */
	while (len) {
		size_t room = WBUF_SIZE - o->len, k = len < room ? len : room;
		char *dst = o->buf + o->len, *nl;

		memcpy(dst, json, k);
		/* Stored JSON is compact (no raw line breaks); should one ever
		 * be there it can only be whitespace between tokens. */
		for (nl = memchr(dst, '\n', k); nl; nl = memchr(nl + 1, '\n', (size_t)(dst + k - nl - 1)))
			*nl = ' ';
		o->len += k;
		json += k;
		len -= k;
		if (o->len == WBUF_SIZE && flush_out(o, e) < 0)
			return -1;
	}
	if (o->len == WBUF_SIZE && flush_out(o, e) < 0)
		return -1;
	o->buf[o->len++] = '\n';
	o->count++;
	o->bytes += need;
	w->total_count++;
	w->total_bytes += need;
	return 0;
}

static int file_cmp(const void *a, const void *b)
{
	const struct store_export_file *x = a, *y = b;
	int c = strcmp(x->type, y->type);
	size_t nx = strlen(x->name), ny = strlen(y->name);

	/* same type: "Patient-9" before "Patient-10" */
	return c ? c : nx != ny ? (nx > ny) - (nx < ny) : strcmp(x->name, y->name);
}

int fhir_export_writer_close(struct fhir_export_writer *w, struct err *e)
{
	for (size_t i = 0; i < w->nouts; i++)
		if (close_out(w, &w->outs[i], e) < 0)
			return -1;
	if (w->nfiles > 1)
		qsort(w->files, w->nfiles, sizeof(*w->files), file_cmp);
	return 0;
}

void fhir_export_writer_release(struct fhir_export_writer *w)
{
	for (size_t i = 0; i < w->nouts; i++) {
		if (w->outs[i].fd >= 0)
			close(w->outs[i].fd);
		free(w->outs[i].buf);
	}
	free(w->outs);
	free(w->files);
	w->outs = NULL;
	w->files = NULL;
	w->nouts = w->capouts = w->nopen = 0;
	w->nfiles = w->capfiles = 0;
}

/* ---- jobs ---- */

/* A job that is queued or running. */
struct xjob {
	struct store_export_job row;
	struct store_principal who;  /* who started it: their role and clearance filter the files */
	bool filter;                 /* started by a user (who is set) */
	bool cleared;                /* who sees every sensitivity label */
	atomic_llong written;        /* resources written so far */
	atomic_bool cancel;          /* DELETE came: stop, remove the files */
	bool running;                /* the worker has it */
	struct xjob *next;
};

struct fhir_export {
	const struct fhir_config *fcfg;
	struct store *store;
	char *dir;
	int64_t ttl_ms;
	uint64_t file_max_bytes, file_max_resources;
	unsigned max_per_user, max_jobs;
	unsigned start_delay_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct xjob *jobs;           /* queued and running, oldest first (under mu) */
	atomic_bool stopping;
	bool started;
	pthread_t thread;
};

static struct xjob *find_job(struct fhir_export *x, const char *job)
{
	for (struct xjob *j = x->jobs; j; j = j->next)
		if (strcmp(j->row.job, job) == 0)
			return j;
	return NULL;
}

static void unlink_job(struct fhir_export *x, struct xjob *j)
{
	for (struct xjob **p = &x->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			return;
		}
	}
}

static void job_path(const struct fhir_export *x, const char *job, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", x->dir, job);
}

/* Remove <dir>/<job>: the files this server writes there, then the
 * directory.  Anything else in it (nothing should be) stays, with a warning. */
static void remove_job_dir(const struct fhir_export *x, const char *job)
{
	char path[4200];
	struct dirent *de;
	DIR *d;

	if (!fhir_export_job_valid(job))
		return;
	job_path(x, job, path, sizeof(path));
	d = opendir(path);
	if (!d) {
		if (errno != ENOENT)
			log_warn("event=export_cleanup_failed job=%s detail=\"opendir: %s\"", job,
				 strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (fhir_export_file_valid(de->d_name) &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			log_warn("event=export_cleanup_failed job=%s detail=\"unlink: %s\"", job,
				 strerror(errno));
	}
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)
		log_warn("event=export_cleanup_failed job=%s detail=\"rmdir: %s\"", job, strerror(errno));
}

/* Mark row failed with msg (for the client), now; the files go. */
static void fail_row(struct fhir_export *x, struct store_export_job *row, const char *msg)
{
	struct err e = ERR_INIT;

	remove_job_dir(x, row->job);
	row->state = SXS_FAILED;
	row->finished_ms = time_now_ms();
	row->expires_ms = row->finished_ms + x->ttl_ms;
	row->resources = row->bytes = 0;
	snprintf(row->error, sizeof(row->error), "%s", msg);
	if (store_export_job_update(x->store, row, NULL, 0, &e) < 0 && e.code != ERR_NOT_FOUND)
		log_error("event=export_state_failed job=%s detail=\"%s\"", row->job, e.detail);
}

/* ---- running a job ---- */

struct run_ctx {
	struct fhir_export *x;
	struct xjob *j;
	struct fhir_export_writer *w;
	struct err *e;
	uint64_t n;
	bool stopped;
	/* the patients' own labels seen so far (open addressing, by id) */
	struct plabel { char id[65]; struct privacy_labels l; } *pl;
	size_t npl, cappl;
	uint64_t withheld;
	const char *last_type;   /* the type last decided, and whether it may be read */
	bool last_ok;
};

static uint64_t id_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* The labels of Patient/id (read once per job). */
static const struct privacy_labels *plabels(struct run_ctx *c, const char *id)
{
	struct store_version v;
	struct err e = ERR_INIT;
	size_t i;

	memset(&v, 0, sizeof(v));
	if (c->npl * 2 >= c->cappl) {
		size_t ncap = c->cappl ? c->cappl * 2 : 1024;
		struct plabel *n = calloc(ncap, sizeof(*n));
		if (!n)
			return NULL;
		for (size_t k = 0; k < c->cappl; k++)
			if (c->pl[k].id[0]) {
				size_t at = id_hash(c->pl[k].id) & (ncap - 1);
				while (n[at].id[0])
					at = (at + 1) & (ncap - 1);
				n[at] = c->pl[k];
			}
		free(c->pl);
		c->pl = n;
		c->cappl = ncap;
	}
	for (i = id_hash(id) & (c->cappl - 1); c->pl[i].id[0]; i = (i + 1) & (c->cappl - 1))
		if (strcmp(c->pl[i].id, id) == 0)
			return &c->pl[i].l;
	snprintf(c->pl[i].id, sizeof(c->pl[i].id), "%s", id);
	memset(&c->pl[i].l, 0, sizeof(c->pl[i].l));
	if (store_read(c->x->store, "Patient", id, &v, &e) == 0 && v.json)
		privacy_labels_of_json(v.json, strlen(v.json), &c->pl[i].l);
	store_version_release(&v);
	c->npl++;
	return &c->pl[i].l;
}

/* May the job's owner see v?  Its own labels and its patient's. */
static bool export_visible(struct run_ctx *c, const struct store_version *v)
{
	struct privacy_labels own;
	const struct privacy_labels *pat = NULL;
	char pid[65];
	size_t at = 0, n;

	/* the role may read the type at all (scans go type by type: one
	 * decision per run of a type) */
	if (!c->last_type || strcmp(c->last_type, v->type) != 0) {
		struct privacy_request rq;
		struct privacy_decision d;
		struct err e = ERR_INIT;
		memset(&rq, 0, sizeof(rq));
		rq.action = PA_READ;
		rq.type = v->type;
		c->last_ok = privacy_decide_ex(&c->j->who, &rq, &d, &e) == 0;
		c->last_type = fhir_resource_type(v->type) ? fhir_resource_type(v->type)->name : NULL;
	}
	if (!c->last_ok)
		return false;
	if (c->j->cleared)
		return true;
	privacy_labels_of_json(v->json, v->len, &own);
	if (strcmp(v->type, "Patient") == 0) {
		pat = &own;
	} else if ((n = fhir_next_patient_ref(v->json, v->len, &at)) != 0) {
		memcpy(pid, v->json + at - n, n);
		pid[n] = '\0';
		pat = plabels(c, pid);
		if (!pat)
			return false; /* out of memory: fail closed */
	}
	return privacy_may_see(&c->j->who, &own, pat, false);
}

static int on_resource(void *arg, const struct store_version *v)
{
	struct run_ctx *c = arg;

	if (c->j->filter && !export_visible(c, v))
		c->withheld++;
	else if (fhir_export_writer_add(c->w, v->type, v->json, v->len, c->e) < 0)
		return -1;
	if (++c->n % CHECK_EVERY == 0) {
		atomic_store(&c->j->written, (long long)c->w->total_count);
		if (atomic_load(&c->j->cancel) || atomic_load(&c->x->stopping)) {
			c->stopped = true;
			return 1;
		}
	}
	return 0;
}

/* The test hook's wait (fhir_export_config.start_delay_ms), cut short by a
 * DELETE or shutdown: false then. */
static bool start_delay(struct fhir_export *x, struct xjob *j)
{
	int64_t until = time_now_ms() + x->start_delay_ms;

	while (time_now_ms() < until) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		if (atomic_load(&j->cancel) || atomic_load(&x->stopping))
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/* The reference parameters through which type's resources join a Patient's
 * compartment, as search parameter ids. */
static size_t compartment_pids(const struct fhir_export *x, const char *type, uint32_t *pids,
			       size_t cap)
{
	const char *codes[MAX_CODES];
	size_t nc = fhir_export_compartment(type, codes, MAX_CODES), n = 0;
	struct fhir_params *p = x->fcfg->params;

	if (!p)
		return 0;
	fhir_params_rdlock(p);
	for (size_t i = 0; i < nc; i++) {
		const struct fhir_sp *sp = fhir_params_find(p, type, codes[i]);
		bool dup = false;
		if (!sp || fhir_sp_type(sp) != SPT_REFERENCE)
			continue;
		for (size_t k = 0; k < n; k++)
			dup = dup || pids[k] == fhir_sp_pid(sp);
		if (!dup && n < cap)
			pids[n++] = fhir_sp_pid(sp);
	}
	fhir_params_unlock(p);
	return n;
}

/* The Patients of the job's Group; ERR_NOT_FOUND if it is gone. */
static int group_members(struct fhir_export *x, const struct store_export_job *row,
			 char ***ids, size_t *n, struct err *e)
{
	struct store_version v;
	json_object *g = NULL;
	char base[STORE_EXPORT_REQUEST_MAX];
	char *cut;
	int rc = -1;

	/* References may be absolute URLs on this server: the kick-off's base,
	 * its URL up to the last "/Group/" before the query. */
	snprintf(base, sizeof(base), "%s", row->request);
	base[strcspn(base, "?")] = '\0';
	for (cut = strstr(base, "/Group/"); cut && strstr(cut + 1, "/Group/");)
		cut = strstr(cut + 1, "/Group/");
	if (cut)
		*cut = '\0';
	if (store_read(x->store, "Group", row->group_id, &v, e) < 0) {
		if (e->code == ERR_NOT_FOUND || e->code == ERR_GONE)
			err_set(e, ERR_NOT_FOUND, "Group/%s no longer exists", row->group_id);
		goto out;
	}
	g = json_parse_buf(v.json, v.len, 0, e);
	if (!g)
		goto out;
	rc = fhir_export_members(g, base, ids, n, e);
out:
	json_object_put(g);
	store_version_release(&v);
	return rc;
}

/* Scan every type the job asks for into w.  -1 with e set; *stopped when a
 * DELETE or shutdown ended it early. */
static int scan_types_in(struct run_ctx *c, struct store_snapshot *snap, char **members,
			 size_t nmembers, bool *stopped)
{
	static const char *const none[1] = { NULL };
	struct fhir_export *x = c->x;
	struct xjob *j = c->j;
	struct fhir_export_writer *w = c->w;
	struct err *e = c->e;
	const struct store_export_job *row = &j->row;
	const char *const *patients = nmembers ? (const char *const *)members : none;

	if (row->level == SXL_SYSTEM && !row->types[0] && row->since_ms == INT64_MIN) {
		/* Everything: one scan in write order, which for the bulk of a
		 * database (imported, written once) is the order of the version
		 * rows on disk - sequential reads even from a cold cache. */
		struct store_export_q q;
		memset(&q, 0, sizeof(q));
		q.since_ms = INT64_MIN;
		if (store_export_scan(snap, &q, on_resource, c, e) < 0)
			return -1;
		*stopped = c->stopped;
		return fhir_export_writer_close(w, e);
	}
	for (size_t t = 0; t < fhir_n_resource_types && !c->stopped; t++) {
		const char *type = fhir_types[fhir_resource_types[t]].name;
		struct store_export_q q;
		uint32_t pids[MAX_PIDS];

		if (row->types[0] && !in_list(row->types, type))
			continue;
		memset(&q, 0, sizeof(q));
		q.type = type;
		q.since_ms = row->since_ms;
		if (row->level != SXL_SYSTEM) {
			if (strcmp(type, "Patient") == 0) {
				if (row->level == SXL_GROUP) {
					q.ids = patients;
					q.nids = nmembers;
				}
			} else {
				q.npids = compartment_pids(x, type, pids, MAX_PIDS);
				if (q.npids == 0)
					continue; /* not in the compartment */
				q.ref_type = "Patient";
				q.pids = pids;
				if (row->level == SXL_GROUP) {
					q.ref_ids = patients;
					q.nref_ids = nmembers;
				}
			}
		}
		/* one type at a time: its files are complete after its scan */
		if (store_export_scan(snap, &q, on_resource, c, e) < 0 ||
		    fhir_export_writer_close(w, e) < 0)
			return -1;
	}
	*stopped = c->stopped;
	return fhir_export_writer_close(w, e);
}

static int scan_types(struct fhir_export *x, struct xjob *j, struct store_snapshot *snap,
		      struct fhir_export_writer *w, char **members, size_t nmembers, bool *stopped,
		      struct err *e)
{
	struct run_ctx c = { x, j, w, e, 0, false, NULL, 0, 0, 0 };
	int rc = scan_types_in(&c, snap, members, nmembers, stopped);

	if (c.withheld)
		log_info("event=export_withheld job=%s resources=%" PRIu64, j->row.job, c.withheld);
	free(c.pl);
	return rc;
}

static void run_job(struct fhir_export *x, struct xjob *j)
{
	struct store_export_job *row = &j->row;
	struct fhir_export_writer w;
	struct store_snapshot *snap = NULL;
	struct err e = ERR_INIT;
	char path[4200], **members = NULL;
	size_t nmembers = 0;
	int64_t t0 = time_now_ms(), last_ts = 0;
	int dirfd = -1;
	bool stopped = false, ok = false;

	memset(&w, 0, sizeof(w));
	row->state = SXS_RUNNING;
	if (store_export_job_update(x->store, row, NULL, 0, &e) < 0) {
		if (e.code == ERR_NOT_FOUND) /* deleted before it started */
			atomic_store(&j->cancel, true);
		goto finish;
	}
	log_info("event=export_started job=%s level=%d", row->job, row->level);
	remove_job_dir(x, row->job); /* nothing should be there */
	job_path(x, row->job, path, sizeof(path));
	if (mkdir(path, 0700) < 0) {
		err_set(&e, ERR_IO, "the export could not create its directory");
		err_detail(&e, "mkdir: %s", strerror(errno));
		goto finish;
	}
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0) {
		err_set(&e, ERR_IO, "the export could not open its directory");
		err_detail(&e, "open: %s", strerror(errno));
		goto finish;
	}
	if (fhir_export_writer_init(&w, dirfd, x->file_max_bytes, x->file_max_resources, &e) < 0)
		goto finish;
	if (x->start_delay_ms && !start_delay(x, j)) {
		stopped = true;
		goto finish;
	}
	if (row->level == SXL_GROUP && group_members(x, row, &members, &nmembers, &e) < 0)
		goto finish;
	if (store_snapshot_begin(x->store, &snap, &last_ts, &e) < 0)
		goto finish;
	/* Nothing written after the snapshot is in it, and everything in it
	 * has lastUpdated <= last_ts: a client can pass this as the next _since. */
	row->tx_time_ms = t0 > last_ts ? t0 : last_ts;
	if (scan_types(x, j, snap, &w, members, nmembers, &stopped, &e) < 0)
		goto finish;
	ok = !stopped;
finish:
	store_snapshot_end(snap);
	if (!ok)
		fhir_export_writer_release(&w); /* closes the files left open */
	if (dirfd >= 0)
		close(dirfd);
	free(members);

	pthread_mutex_lock(&x->mu);
	if (atomic_load(&j->cancel)) {
		/* DELETE removed the rows already; the files go now. */
		remove_job_dir(x, row->job);
		log_info("event=export_cancelled job=%s", row->job);
	} else if (!ok) {
		if (stopped || atomic_load(&x->stopping)) {
			fail_row(x, row, "the server shut down during the export; start it again");
			log_warn("event=export_stopped job=%s", row->job);
		} else {
			fail_row(x, row, e.msg[0] ? e.msg : "the export failed");
			log_error("event=export_failed job=%s code=%s detail=\"%s\"", row->job,
				  err_code_name(e.code), e.detail);
		}
	} else {
		int64_t ms = time_now_ms() - t0;
		row->state = SXS_DONE;
		row->finished_ms = time_now_ms();
		row->expires_ms = row->finished_ms + x->ttl_ms;
		row->resources = (int64_t)w.total_count;
		row->bytes = (int64_t)w.total_bytes;
		/* audit: each file in w.files is a disclosure produced for row->uid
		 * (job, type, count); the security issue writes one AuditEvent per file
		 * here, in the transaction below. */
		if (store_export_job_update(x->store, row, w.files, w.nfiles, &e) < 0) {
			log_error("event=export_failed job=%s code=%s detail=\"%s\"", row->job,
				  err_code_name(e.code), e.detail);
			fail_row(x, row, "the export could not be recorded");
		} else {
			log_info("event=export_done job=%s files=%zu resources=%" PRId64 " bytes=%" PRId64
				 " ms=%" PRId64 " mb_per_s=%.1f", row->job, w.nfiles, row->resources,
				 row->bytes, ms, ms > 0 ? (double)row->bytes / 1e3 / (double)ms : 0.0);
		}
	}
	unlink_job(x, j);
	pthread_mutex_unlock(&x->mu);
	fhir_export_writer_release(&w);
	free(j);
}

/* ---- expiry and start-up ---- */

struct idlist {
	char (*v)[STORE_EXPORT_JOB_LEN + 1];
	size_t n, cap;
};

static int idlist_add(struct idlist *l, const char *id)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		void *nv = realloc(l->v, ncap * sizeof(*l->v));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", id);
	return 0;
}

static bool idlist_has(const struct idlist *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], id) == 0)
			return true;
	return false;
}

static int collect_id(void *ctx, const struct store_export_job *j)
{
	return idlist_add(ctx, j->job);
}

/* Remove the jobs that expired by now: rows, then files. */
static void purge(struct fhir_export *x, int64_t now)
{
	struct idlist l = { NULL, 0, 0 };
	struct err e = ERR_INIT;

	if (store_export_job_list(x->store, now, collect_id, &l, &e) < 0) {
		log_error("event=export_purge_failed detail=\"%s\"", e.detail);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		err_clear(&e);
		pthread_mutex_lock(&x->mu);
		if (store_export_job_delete(x->store, l.v[i], &e) < 0 && e.code != ERR_NOT_FOUND)
			log_error("event=export_purge_failed job=%s detail=\"%s\"", l.v[i], e.detail);
		else
			remove_job_dir(x, l.v[i]);
		pthread_mutex_unlock(&x->mu);
		log_info("event=export_expired job=%s", l.v[i]);
	}
out:
	free(l.v);
}

struct size_check {
	const struct fhir_export *x;
	const char *job;
	bool ok;
};

static int check_file(void *arg, const struct store_export_file *f)
{
	struct size_check *c = arg;
	char path[4400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s/%s", c->x->dir, c->job, f->name);
	if (!fhir_export_file_valid(f->name) || lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (int64_t)sb.st_size != f->bytes) {
		c->ok = false;
		return 1;
	}
	return 0;
}

struct recover_ctx {
	struct fhir_export *x;
	struct store_export_job *v;
	size_t n, cap;
};

static int collect_job(void *arg, const struct store_export_job *j)
{
	struct recover_ctx *c = arg;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 8;
		void *nv = realloc(c->v, ncap * sizeof(*c->v));
		if (!nv)
			return -1;
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n++] = *j;
	return 0;
}

/* Settle what a previous run left: see fhir_export_new. */
static int recover(struct fhir_export *x, struct err *e)
{
	struct recover_ctx c = { x, NULL, 0, 0 };
	struct idlist known = { NULL, 0, 0 };
	struct dirent *de;
	DIR *d = NULL;
	int rc = -1;

	if (store_export_job_list(x->store, 0, collect_job, &c, e) < 0)
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		struct store_export_job *j = &c.v[i];
		if (idlist_add(&known, j->job) < 0) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		if (j->state == SXS_QUEUED || j->state == SXS_RUNNING) {
			fail_row(x, j, "the server stopped before this export finished; start it again");
			log_warn("event=export_recovered job=%s state=failed", j->job);
		} else if (j->state == SXS_DONE) {
			struct size_check sc = { x, j->job, true };
			struct err fe = ERR_INIT;
			if (store_export_files(x->store, j->job, check_file, &sc, &fe) < 0 || !sc.ok) {
				fail_row(x, j, "the export's files were lost (the server stopped abruptly); "
					 "start it again");
				log_warn("event=export_recovered job=%s state=failed detail=\"files missing "
					 "or short\"", j->job);
			}
		}
	}
	/* Directories of jobs the database does not know (a crash between
	 * creating one and recording it, a DELETE half done). */
	d = opendir(x->dir);
	while (d && (de = readdir(d)) != NULL) {
		if (fhir_export_job_valid(de->d_name) && !idlist_has(&known, de->d_name)) {
			log_info("event=export_stray_removed job=%s", de->d_name);
			remove_job_dir(x, de->d_name);
		}
	}
	purge(x, time_now_ms());
	rc = 0;
out:
	if (d)
		closedir(d);
	free(c.v);
	free(known.v);
	return rc;
}

/* ---- the worker ---- */

static struct xjob *next_queued(struct fhir_export *x)
{
	for (struct xjob *j = x->jobs; j; j = j->next)
		if (!j->running && !atomic_load(&j->cancel))
			return j;
	return NULL;
}

static void *worker_main(void *arg)
{
	struct fhir_export *x = arg;
	int64_t next_purge = time_now_ms() + PURGE_EVERY_MS;

	for (;;) {
		struct xjob *j;

		pthread_mutex_lock(&x->mu);
		for (;;) {
			int64_t now = time_now_ms();
			struct timespec until;
			if (atomic_load(&x->stopping) || next_queued(x) || now >= next_purge)
				break;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += (time_t)((next_purge - now) / 1000) + 1;
			pthread_cond_timedwait(&x->cv, &x->mu, &until);
		}
		if (atomic_load(&x->stopping)) {
			pthread_mutex_unlock(&x->mu);
			break;
		}
		j = next_queued(x);
		if (j)
			j->running = true;
		pthread_mutex_unlock(&x->mu);
		if (j)
			run_job(x, j);
		if (time_now_ms() >= next_purge) {
			purge(x, time_now_ms());
			next_purge = time_now_ms() + PURGE_EVERY_MS;
		}
	}
	return NULL;
}

int fhir_export_new(const struct fhir_config *fcfg, const struct fhir_export_config *cfg,
		    struct fhir_export **out, struct err *e)
{
	struct fhir_export *x = calloc(1, sizeof(*x));
	struct buf dir = BUF_INIT(4000); /* + /<job>/<file> fits the 4200-byte paths */

	*out = NULL;
	if (!x)
		return err_set(e, ERR_NOMEM, "out of memory");
	x->fcfg = fcfg;
	x->store = fcfg->store;
	x->ttl_ms = (cfg->ttl_s > 0 ? cfg->ttl_s : FHIR_EXPORT_TTL_S) * 1000;
	x->file_max_bytes = cfg->file_max_bytes ? cfg->file_max_bytes : FHIR_EXPORT_FILE_MAX_BYTES;
	x->file_max_resources = cfg->file_max_resources ? cfg->file_max_resources
							: FHIR_EXPORT_FILE_MAX_RESOURCES;
	x->max_per_user = cfg->max_per_user ? cfg->max_per_user : FHIR_EXPORT_MAX_PER_USER;
	x->max_jobs = cfg->max_jobs ? cfg->max_jobs : FHIR_EXPORT_MAX_JOBS;
	x->start_delay_ms = cfg->start_delay_ms;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	atomic_init(&x->stopping, false);
	if (cfg->dir && *cfg->dir) {
		buf_addstr(&dir, cfg->dir);
		while (dir.len > 1 && dir.data[dir.len - 1] == '/')
			buf_truncate(&dir, dir.len - 1);
	} else {
		buf_addf(&dir, "%s.exports", store_path(x->store));
	}
	x->dir = buf_detach(&dir, NULL);
	if (!x->dir) {
		err_set(e, ERR_INVALID, "the export directory name is too long");
		goto fail;
	}
	if (mkdir(x->dir, 0700) < 0 && errno != EEXIST) {
		err_set(e, ERR_IO, "cannot create the export directory '%s': %s", x->dir, strerror(errno));
		goto fail;
	}
	{
		struct stat sb;
		if (stat(x->dir, &sb) < 0 || !S_ISDIR(sb.st_mode) || access(x->dir, W_OK | X_OK) < 0) {
			err_set(e, ERR_IO, "the export directory '%s' is not a writable directory", x->dir);
			goto fail;
		}
	}
	if (recover(x, e) < 0)
		goto fail;
	if (pthread_create(&x->thread, NULL, worker_main, x) != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the export worker");
		goto fail;
	}
	x->started = true;
	log_info("event=export_ready dir=\"%s\" ttl_s=%" PRId64, x->dir, x->ttl_ms / 1000);
	*out = x;
	return 0;
fail:
	buf_release(&dir);
	fhir_export_free(x);
	return -1;
}

void fhir_export_free(struct fhir_export *x)
{
	if (!x)
		return;
	if (x->started) {
		pthread_mutex_lock(&x->mu);
		atomic_store(&x->stopping, true);
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&x->mu);
		pthread_join(x->thread, NULL);
	}
	/* Jobs that never ran: failed now, so a poll after the restart says so. */
	while (x->jobs) {
		struct xjob *j = x->jobs;
		x->jobs = j->next;
		if (!atomic_load(&j->cancel))
			fail_row(x, &j->row, "the server shut down before this export ran; start it again");
		free(j);
	}
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x->dir);
	free(x);
}

/* ---- requests ---- */

void fhir_export_resp_init(struct fhir_export_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	r->fd = -1;
}

void fhir_export_resp_release(struct fhir_export_resp *r)
{
	buf_release(&r->body);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static void resp_error(struct fhir_export_resp *r, const struct err *e)
{
	struct fhir_issues iss;

	fhir_issues_init(&iss);
	fhir_issues_from_err(&iss, e);
	r->status = fhir_http_status(e->code);
	buf_reset(&r->body);
	fhir_outcome_write(&iss, &r->body);
}

static void resp_info(struct fhir_export_resp *r, int status, const char *msg)
{
	struct fhir_issues iss;

	fhir_issues_init(&iss);
	fhir_issue_add(&iss, FHIR_INFORMATION, "informational", NULL, "%s", msg);
	r->status = status;
	buf_reset(&r->body);
	fhir_outcome_write(&iss, &r->body);
}

static void not_found(struct fhir_export_resp *r)
{
	struct err e = ERR_INIT;

	err_set(&e, ERR_NOT_FOUND, "no such export job or file");
	resp_error(r, &e);
}

/* The kick-off URL as the manifest's "request": base, path, parameters. */
static void request_url(const struct fhir_export_req *req, struct buf *out)
{
	buf_addstr(out, req->base);
	buf_addstr(out, req->path);
	for (size_t i = 0; i < req->n_params; i++) {
		buf_addch(out, i ? '&' : '?');
		url_encode(out, req->params[i].name);
		buf_addch(out, '=');
		url_encode(out, req->params[i].value);
	}
}

static void kickoff(struct fhir_export *x, const struct fhir_export_req *req,
		    struct fhir_export_resp *resp)
{
	struct fhir_export_spec spec;
	struct fhir_issues warn;
	struct err e = ERR_INIT;
	struct buf url = BUF_INIT(STORE_EXPORT_REQUEST_MAX - 1);
	struct xjob *j = NULL;
	unsigned char rnd[STORE_EXPORT_JOB_LEN / 2];
	unsigned mine = 0, all = 0;

	fhir_issues_init(&warn);
	if (!req->respond_async) {
		err_set(&e, ERR_INVALID, "$export runs asynchronously: send the header "
			"Prefer: respond-async");
		goto fail;
	}
	if (fhir_export_parse(req->params, req->n_params, req->strict, &spec, &warn, &e) < 0)
		goto fail;
	if (req->level == SXL_GROUP) {
		struct store_version v;
		if (!req->id || !id_valid(req->id, strlen(req->id))) {
			err_set(&e, ERR_NOT_FOUND, "Group/%.70s is not known", req->id ? req->id : "");
			goto fail;
		}
		if (store_read(x->store, "Group", req->id, &v, &e) < 0) {
			if (e.code == ERR_GONE)
				err_set(&e, ERR_NOT_FOUND, "Group/%s has been deleted", req->id);
			store_version_release(&v);
			goto fail;
		}
		store_version_release(&v);
	}
	request_url(req, &url);
	if (url.failed) {
		err_set(&e, ERR_INVALID, "the $export request URL is too long");
		goto fail;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	randombytes_buf(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(j->row.job + 2 * i, 3, "%02x", rnd[i]);
	j->row.uid = req->uid;
	if (req->who) {
		struct privacy_labels top = { PCONF_V, PCAT__ALL };
		j->who = *req->who;
		j->filter = true;
		j->cleared = privacy_may_see(req->who, &top, NULL, false);
	}
	j->row.level = req->level;
	snprintf(j->row.group_id, sizeof(j->row.group_id), "%s",
		 req->level == SXL_GROUP ? req->id : "");
	snprintf(j->row.types, sizeof(j->row.types), "%s", spec.types);
	j->row.since_ms = spec.since_ms;
	snprintf(j->row.request, sizeof(j->row.request), "%s", buf_cstr(&url));
	j->row.state = SXS_QUEUED;
	j->row.created_ms = time_now_ms();
	atomic_init(&j->written, 0);
	atomic_init(&j->cancel, false);

	pthread_mutex_lock(&x->mu);
	for (struct xjob *k = x->jobs; k; k = k->next) {
		all++;
		mine += k->row.uid == req->uid;
	}
	if (mine >= x->max_per_user || all >= x->max_jobs) {
		pthread_mutex_unlock(&x->mu);
		err_set(&e, ERR_UNAVAILABLE, mine >= x->max_per_user
			? "you have %u exports queued or running already; wait for one to finish"
			: "the server has %u exports queued or running; try again later",
			mine >= x->max_per_user ? mine : all);
		resp->retry_after = 30;
		goto fail;
	}
	if (store_export_job_add(x->store, &j->row, &e) < 0) {
		pthread_mutex_unlock(&x->mu);
		goto fail;
	}
	/* append: jobs run in kick-off order */
	{
		struct xjob **p = &x->jobs;
		while (*p)
			p = &(*p)->next;
		*p = j;
	}
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	log_info("event=export_queued job=%s level=%d uid=%" PRId64, j->row.job, j->row.level,
		 j->row.uid);
	resp->status = 202;
	snprintf(resp->content_location, sizeof(resp->content_location), "%s/$export-status/%s",
		 req->base, j->row.job);
	if (warn.n)
		fhir_outcome_write(&warn, &resp->body);
	buf_release(&url);
	return;
fail:
	free(j);
	buf_release(&url);
	resp_error(resp, &e);
}

struct manifest_ctx {
	const struct fhir_export_req *req;
	struct buf *out;
	size_t n;
};

static int manifest_file(void *arg, const struct store_export_file *f)
{
	struct manifest_ctx *m = arg;

	buf_addf(m->out, "%s{\"type\":\"%s\",\"url\":\"", m->n++ ? "," : "", f->type);
	buf_add_json_str(m->out, m->req->base, strlen(m->req->base));
	buf_addf(m->out, "/$export-file/%s/%s\",\"count\":%" PRId64 "}", m->req->id, f->name,
		 f->count);
	return 0;
}

static void status(struct fhir_export *x, const struct fhir_export_req *req,
		   struct fhir_export_resp *resp)
{
	struct store_export_job *row = NULL;
	struct err e = ERR_INIT;
	struct xjob *j;
	char ts[TIME_INSTANT_MAX];

	if (!req->id || !fhir_export_job_valid(req->id)) {
		not_found(resp);
		return;
	}
	pthread_mutex_lock(&x->mu);
	j = find_job(x, req->id);
	if (j) {
		bool visible = j->row.uid == req->uid && !atomic_load(&j->cancel);
		if (visible) {
			resp->status = 202;
			if (j->running)
				snprintf(resp->progress, sizeof(resp->progress), "%lld resources written",
					 (long long)atomic_load(&j->written));
			else
				snprintf(resp->progress, sizeof(resp->progress), "queued");
			resp->retry_after = j->running ? RETRY_RUNNING_S : RETRY_QUEUED_S;
		}
		pthread_mutex_unlock(&x->mu);
		if (!visible)
			not_found(resp);
		return;
	}
	pthread_mutex_unlock(&x->mu);
	row = malloc(sizeof(*row));
	if (!row) {
		err_set(&e, ERR_NOMEM, "out of memory");
		resp_error(resp, &e);
		return;
	}
	if (store_export_job_get(x->store, req->id, row, &e) < 0 || row->uid != req->uid) {
		if (e.code && e.code != ERR_NOT_FOUND) {
			log_error("event=export_status_failed job=%s detail=\"%s\"", req->id, e.detail);
			resp_error(resp, &e);
		} else {
			not_found(resp);
		}
		goto out;
	}
	switch (row->state) {
	case SXS_DONE: {
		struct manifest_ctx m = { req, &resp->body, 0 };
		struct buf *o = &resp->body;
		time_format_instant(row->tx_time_ms, ts);
		buf_addf(o, "{\"transactionTime\":\"%s\",\"request\":\"", ts);
		buf_add_json_str(o, row->request, strlen(row->request));
		buf_addstr(o, "\",\"requiresAccessToken\":true,\"output\":[");
		if (store_export_files(x->store, req->id, manifest_file, &m, &e) < 0) {
			resp_error(resp, &e);
			goto out;
		}
		buf_addstr(o, "],\"error\":[]}");
		if (o->failed) {
			err_set(&e, ERR_NOMEM, "out of memory");
			resp_error(resp, &e);
			goto out;
		}
		resp->status = 200;
		break;
	}
	case SXS_FAILED:
		err_set(&e, ERR_INTERNAL, "the export failed: %s", row->error);
		resp_error(resp, &e);
		break;
	default: /* recorded as queued or running by another process */
		resp->status = 202;
		snprintf(resp->progress, sizeof(resp->progress), "queued");
		resp->retry_after = RETRY_QUEUED_S;
		break;
	}
out:
	free(row);
}

static void cancel(struct fhir_export *x, const struct fhir_export_req *req,
		   struct fhir_export_resp *resp)
{
	struct store_export_job *row = NULL;
	struct err e = ERR_INIT;
	struct xjob *j;

	if (!req->id || !fhir_export_job_valid(req->id)) {
		not_found(resp);
		return;
	}
	pthread_mutex_lock(&x->mu);
	j = find_job(x, req->id);
	if (j) {
		if (j->row.uid != req->uid || atomic_load(&j->cancel)) {
			pthread_mutex_unlock(&x->mu);
			not_found(resp);
			return;
		}
		if (store_export_job_delete(x->store, req->id, &e) < 0 && e.code != ERR_NOT_FOUND) {
			pthread_mutex_unlock(&x->mu);
			log_error("event=export_cancel_failed job=%s detail=\"%s\"", req->id, e.detail);
			resp_error(resp, &e);
			return;
		}
		if (j->running) {
			atomic_store(&j->cancel, true); /* the worker stops and removes the files */
		} else {
			unlink_job(x, j);
			free(j);
		}
		pthread_mutex_unlock(&x->mu);
		log_info("event=export_cancel job=%s", req->id);
		resp_info(resp, 202, "the export was cancelled and its files are being deleted");
		return;
	}
	pthread_mutex_unlock(&x->mu);
	/* Finished (done or failed): the client is done with it. */
	row = malloc(sizeof(*row));
	if (!row) {
		err_set(&e, ERR_NOMEM, "out of memory");
		resp_error(resp, &e);
		return;
	}
	if (store_export_job_get(x->store, req->id, row, &e) < 0 || row->uid != req->uid) {
		if (e.code && e.code != ERR_NOT_FOUND)
			resp_error(resp, &e);
		else
			not_found(resp);
		goto out;
	}
	pthread_mutex_lock(&x->mu);
	if (store_export_job_delete(x->store, req->id, &e) < 0) {
		pthread_mutex_unlock(&x->mu);
		if (e.code == ERR_NOT_FOUND)
			not_found(resp);
		else
			resp_error(resp, &e);
		goto out;
	}
	remove_job_dir(x, req->id);
	pthread_mutex_unlock(&x->mu);
	log_info("event=export_deleted job=%s", req->id);
	resp_info(resp, 202, "the export and its files were deleted");
out:
	free(row);
}

static void file(struct fhir_export *x, const struct fhir_export_req *req,
		 struct fhir_export_resp *resp)
{
	struct store_export_job *row = NULL;
	struct store_export_file f;
	struct err e = ERR_INIT;
	char path[4400];
	struct stat sb;
	bool active;
	int fd = -1;

	if (!req->id || !req->file || !fhir_export_job_valid(req->id) ||
	    !fhir_export_file_valid(req->file)) {
		not_found(resp);
		return;
	}
	pthread_mutex_lock(&x->mu);
	active = find_job(x, req->id) != NULL;
	pthread_mutex_unlock(&x->mu);
	if (active) { /* files exist only once the job is done */
		not_found(resp);
		return;
	}
	row = malloc(sizeof(*row));
	if (!row) {
		err_set(&e, ERR_NOMEM, "out of memory");
		resp_error(resp, &e);
		return;
	}
	if (store_export_job_get(x->store, req->id, row, &e) < 0 || row->uid != req->uid ||
	    row->state != SXS_DONE || store_export_file_get(x->store, req->id, req->file, &f, &e) < 0) {
		if (e.code && e.code != ERR_NOT_FOUND)
			resp_error(resp, &e);
		else
			not_found(resp);
		goto out;
	}
	/* Both names were checked against their patterns above: no '/', no "..". */
	snprintf(path, sizeof(path), "%s/%s/%s", x->dir, req->id, req->file);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		/* expired or deleted in between */
		if (fd >= 0)
			close(fd);
		not_found(resp);
		goto out;
	}
	/* audit: the download of one export file (job, file, row->uid, client
	 * address) is a disclosure; the security issue records it here. */
	resp->status = 200;
	resp->fd = fd;
	resp->size = (uint64_t)sb.st_size;
out:
	free(row);
}

void fhir_export_handle(struct fhir_export *x, const struct fhir_export_req *req,
			struct fhir_export_resp *resp)
{
	switch (req->op) {
	case FHIR_EXPORT_KICKOFF:
		kickoff(x, req, resp);
		break;
	case FHIR_EXPORT_STATUS:
		status(x, req, resp);
		break;
	case FHIR_EXPORT_CANCEL:
		cancel(x, req, resp);
		break;
	case FHIR_EXPORT_FILE:
		file(x, req, resp);
		break;
	default: {
		struct err e = ERR_INIT;
		err_set(&e, ERR_NOT_SUPPORTED, "this export request is not supported");
		resp_error(resp, &e);
	}
	}
}
