/* test_export.c - bulk data $export: parameters, names, Group members, the
 * compartment table, the NDJSON writer (src/fhir/export.c), the store's job
 * rows and snapshot scan (src/store/sqlite_export.c), and the job manager
 * end to end: kick-off, status, files, cancel, restart, expiry.
 *
 * Every test that touches disk works in its own mkdtemp() directory and
 * removes it afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#define __USE_XOPEN_EXTENDED 1
#include <ftw.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "fhir/export_int.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixtures ---- */

struct fx {
	char dir[64];
	char db[128];
	char xdir[128];
	struct store *s;
	struct fhir_config fcfg;
	struct fhir_export *x;
};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup_dir(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-export-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
	snprintf(f->xdir, sizeof(f->xdir), "%s/exports", f->dir);
	*state = f;
	return 0;
}

static int setup_store(void **state)
{
	struct fx *f;
	struct err e = ERR_INIT;

	if (setup_dir(state) < 0)
		return -1;
	f = *state;
	if (store_create(f->db, &e) < 0 || store_open(f->db, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "setup: %s (%s)\n", e.msg, e.detail);
		return -1;
	}
	f->fcfg.store = f->s;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fhir_export_free(f->x);
	store_close(f->s);
	rm_tree(f->dir);
	free(f);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	log_level = LOG_ERROR + (getenv("CK_TEST_LOG") ? 3 : 0);
	return sodium_init() < 0 ? -1 : 0;
}

/* ---- parameters ---- */

static int parse(const struct fhir_param *p, size_t n, bool strict, struct fhir_export_spec *out,
		 struct fhir_issues *warn, struct err *e)
{
	fhir_issues_init(warn);
	err_clear(e);
	return fhir_export_parse(p, n, strict, out, warn, e);
}

static void test_parse_ok(void **state)
{
	const struct fhir_param p[] = {
		{ "_type", "Patient, Observation,Patient" },
		{ "_type", "Encounter" },
		{ "_since", "2024-01-31T12:00:00Z" },
		{ "_outputFormat", "application/fhir+ndjson" },
		{ "_format", "json" },
		{ "allowPartialManifests", "true" },
	};
	struct fhir_export_spec spec;
	struct fhir_issues warn;
	struct err e;

	(void)state;
	assert_int_equal(parse(p, N_OF(p), true, &spec, &warn, &e), 0);
	assert_string_equal(spec.types, "Patient,Observation,Encounter");
	assert_int_equal(spec.since_ms, (int64_t)1706702400000);
	assert_int_equal(warn.n, 0);
	/* an unencoded '+' of a time zone arrives as a space */
	{
		struct fhir_param q = { "_since", "2024-01-31T13:00:00 01:00" };
		assert_int_equal(parse(&q, 1, true, &spec, &warn, &e), 0);
		assert_int_equal(spec.since_ms, (int64_t)1706702400000);
	}
	/* nothing given: every type, no _since */
	assert_int_equal(parse(NULL, 0, false, &spec, &warn, &e), 0);
	assert_string_equal(spec.types, "");
	assert_true(spec.since_ms == INT64_MIN);
	/* the three output formats the IG names */
	for (size_t i = 0; i < 3; i++) {
		static const char *const ok[] = { "application/fhir+ndjson", "application/ndjson",
						  "ndjson" };
		struct fhir_param q = { "_outputFormat", ok[i] };
		assert_int_equal(parse(&q, 1, true, &spec, &warn, &e), 0);
	}
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *name, *value;
		bool strict;
		const char *says;   /* in the message */
	} cases[] = {
		{ "_type", "Patient,NoSuchType", false, "NoSuchType" },
		{ "_type", "Patient,,Observation", false, "_type" },
		{ "_type", "patient", false, "patient" },
		{ "_since", "yesterday", false, "_since" },
		{ "_since", "2024-13-01T00:00:00Z", false, "_since" },
		{ "_outputFormat", "application/fhir+json", false, "_outputFormat" },
		{ "_typeFilter", "Observation?code=x", false, "_typeFilter" },
		{ "_elements", "id", false, "_elements" },
		{ "patient", "Patient/1", false, "patient" },
		{ "frobnicate", "1", true, "frobnicate" },
	};
	struct fhir_export_spec spec;
	struct fhir_issues warn;
	struct err e;

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct fhir_param p = { cases[i].name, cases[i].value };
		assert_int_equal(parse(&p, 1, cases[i].strict, &spec, &warn, &e), -1);
		assert_int_equal(e.code, ERR_INVALID);
		if (!strstr(e.msg, cases[i].says))
			fail_msg("case %zu: '%s' does not name '%s'", i, e.msg, cases[i].says);
	}
	/* _since twice */
	{
		const struct fhir_param p[] = { { "_since", "2024-01-01T00:00:00Z" },
						{ "_since", "2024-01-02T00:00:00Z" } };
		assert_int_equal(parse(p, 2, false, &spec, &warn, &e), -1);
		assert_non_null(strstr(e.msg, "_since"));
	}
	/* an unknown parameter without strict: a warning, not an error */
	{
		struct fhir_param p = { "frobnicate", "1" };
		assert_int_equal(parse(&p, 1, false, &spec, &warn, &e), 0);
		assert_int_equal(warn.n, 1);
		assert_non_null(strstr(warn.v[0].msg, "frobnicate"));
	}
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const char *const jobs_ok[] = { "0123456789abcdef0123456789abcdef" };
	static const char *const jobs_bad[] = {
		"", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
		"0123456789ABCDEF0123456789ABCDEF", "../3456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcde/", "0123456789abcdeg0123456789abcdef",
	};
	static const char *const files_ok[] = { "Patient-1.ndjson", "Observation-12.ndjson",
						"MedicationKnowledge-999999.ndjson" };
	static const char *const files_bad[] = {
		"", "Patient-0.ndjson", "Patient-01.ndjson", "Patient-1234567.ndjson",
		"Patient-1.json", "Patient-1.ndjson/", "../Patient-1.ndjson", "Foo-1.ndjson",
		"-1.ndjson", "Patient1.ndjson", "Patient-.ndjson", "patient-1.ndjson",
		"Patient-1.ndjson.part", "Patient--1.ndjson", "Patient-1.NDJSON",
		"..", ".", "Patient-1.ndjson\n",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(jobs_ok); i++)
		assert_true(fhir_export_job_valid(jobs_ok[i]));
	for (size_t i = 0; i < N_OF(jobs_bad); i++)
		if (fhir_export_job_valid(jobs_bad[i]))
			fail_msg("job id '%s' accepted", jobs_bad[i]);
	for (size_t i = 0; i < N_OF(files_ok); i++)
		assert_true(fhir_export_file_valid(files_ok[i]));
	for (size_t i = 0; i < N_OF(files_bad); i++)
		if (fhir_export_file_valid(files_bad[i]))
			fail_msg("file name '%s' accepted", files_bad[i]);
}

/* ---- Group members ---- */

static void test_members(void **state)
{
	const char *g =
		"{\"resourceType\":\"Group\",\"type\":\"person\",\"actual\":true,\"member\":["
		"{\"entity\":{\"reference\":\"Patient/b\"}},"
		"{\"entity\":{\"reference\":\"Patient/a\"}},"
		"{\"entity\":{\"reference\":\"Patient/a\"}},"
		"{\"entity\":{\"reference\":\"Patient/c/_history/2\"}},"
		"{\"entity\":{\"reference\":\"http://here:8080/Patient/d\"}},"
		"{\"entity\":{\"reference\":\"http://elsewhere/Patient/e\"}},"
		"{\"entity\":{\"reference\":\"Practitioner/f\"}},"
		"{\"entity\":{\"reference\":\"Patient/g\"},\"inactive\":true},"
		"{\"entity\":{\"reference\":\"Patient/h\"},\"inactive\":false},"
		"{\"entity\":{\"reference\":\"Patient/bad id\"}},"
		"{\"entity\":{\"reference\":\"Patient/x/y\"}},"
		"{\"entity\":{\"display\":\"no reference\"}}]}";
	static const char *const want[] = { "a", "b", "c", "d", "h" };
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(g, strlen(g), 0, &e);
	char **ids = NULL;
	size_t n = 0;

	(void)state;
	assert_non_null(o);
	assert_int_equal(fhir_export_members(o, "http://here:8080", &ids, &n, &e), 0);
	assert_int_equal(n, N_OF(want));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ids[i], want[i]);
	assert_null(ids[n]);
	free(ids);
	json_object_put(o);
	/* no members at all */
	o = json_parse_buf("{\"resourceType\":\"Group\"}", 24, 0, &e);
	assert_int_equal(fhir_export_members(o, NULL, &ids, &n, &e), 0);
	assert_int_equal(n, 0);
	free(ids);
	json_object_put(o);
}

/* ---- the compartment ---- */

static bool has_code(const char **codes, size_t n, const char *code)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(codes[i], code) == 0)
			return true;
	return false;
}

static void test_compartment(void **state)
{
	const char *codes[16];
	size_t n;

	(void)state;
	n = fhir_export_compartment("Observation", codes, 16);
	assert_true(n >= 2);
	assert_true(has_code(codes, n, "subject"));
	assert_true(has_code(codes, n, "performer"));
	n = fhir_export_compartment("Encounter", codes, 16);
	assert_true(has_code(codes, n, "patient"));
	assert_int_equal(fhir_export_compartment("Organization", codes, 16), 0);
	assert_int_equal(fhir_export_compartment("NoSuchType", codes, 16), 0);
	assert_true(fhir_export_compartment("Patient", codes, 16) >= 1); /* link */
	/* cap is respected */
	assert_int_equal(fhir_export_compartment("Observation", codes, 1), 1);
}

/* ---- the NDJSON writer ---- */

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[256];
	struct stat sb;
	char *data;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	data = malloc((size_t)sb.st_size + 1);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)sb.st_size), sb.st_size);
	data[sb.st_size] = '\0';
	close(fd);
	*len = (size_t)sb.st_size;
	return data;
}

static void test_writer(void **state)
{
	struct fx *f = *state;
	struct fhir_export_writer w;
	struct err e = ERR_INIT;
	char *big, *data;
	size_t len, big_len = (size_t)5 << 20; /* larger than a file's buffer */
	int dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);

	assert_true(dirfd >= 0);
	/* at most 3 resources or 200 bytes per file */
	assert_int_equal(fhir_export_writer_init(&w, dirfd, 200, 3, &e), 0);
	/* types interleaved, as a scan of every type in write order gives them */
	for (int i = 0; i < 7; i++) {
		char j[64];
		int n = snprintf(j, sizeof(j), "{\"resourceType\":\"Patient\",\"id\":\"p%d\"}", i);
		assert_int_equal(fhir_export_writer_add(&w, "Patient", j, (size_t)n, &e), 0);
		if (i == 1)
			/* a raw line break must not split the line */
			assert_int_equal(fhir_export_writer_add(&w, "Observation", "{\"a\":\n1}", 8, &e), 0);
	}
	/* over 200 bytes: a new file, and one resource larger than that still gets a file */
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);
	big[0] = '"';
	big[big_len - 1] = '"';
	assert_int_equal(fhir_export_writer_add(&w, "Observation", big, big_len, &e), 0);
	assert_int_equal(fhir_export_writer_close(&w, &e), 0);

	/* manifest order: by type, then number */
	assert_int_equal(w.nfiles, 5);
	assert_string_equal(w.files[0].name, "Observation-1.ndjson");
	assert_string_equal(w.files[0].type, "Observation");
	assert_int_equal(w.files[0].count, 1);
	assert_string_equal(w.files[1].name, "Observation-2.ndjson");
	assert_int_equal(w.files[1].bytes, (int64_t)big_len + 1);
	assert_string_equal(w.files[2].name, "Patient-1.ndjson");
	assert_int_equal(w.files[2].count, 3);
	assert_string_equal(w.files[3].name, "Patient-2.ndjson");
	assert_int_equal(w.files[3].count, 3);
	assert_string_equal(w.files[4].name, "Patient-3.ndjson");
	assert_int_equal(w.files[4].count, 1);
	assert_int_equal(w.total_count, 9);
	assert_int_equal(w.nopen, 0);
	assert_null(slurp(f->dir, "Encounter-1.ndjson", &len));

	data = slurp(f->dir, "Patient-2.ndjson", &len);
	assert_non_null(data);
	assert_string_equal(data, "{\"resourceType\":\"Patient\",\"id\":\"p3\"}\n"
				  "{\"resourceType\":\"Patient\",\"id\":\"p4\"}\n"
				  "{\"resourceType\":\"Patient\",\"id\":\"p5\"}\n");
	assert_int_equal((int64_t)len, w.files[3].bytes);
	free(data);
	data = slurp(f->dir, "Observation-1.ndjson", &len);
	assert_string_equal(data, "{\"a\": 1}\n");
	free(data);
	data = slurp(f->dir, "Observation-2.ndjson", &len);
	assert_int_equal(len, big_len + 1);
	assert_int_equal(memcmp(data, big, big_len), 0);
	assert_int_equal(data[big_len], '\n');
	free(data);
	free(big);
	/* a file name is never reused (O_EXCL): a type that comes back after its
	 * files were closed goes on with the next number */
	assert_int_equal(fhir_export_writer_add(&w, "Patient", "{}", 2, &e), 0);
	assert_int_equal(fhir_export_writer_close(&w, &e), 0);
	assert_int_equal(w.nfiles, 6);
	assert_string_equal(w.files[5].name, "Patient-4.ndjson");
	fhir_export_writer_release(&w);

	/* more types at once than files may be open: the least recently used
	 * is closed, its type goes on in a new file */
	assert_int_equal(fhir_export_writer_init(&w, dirfd, 0, 0, &e), 0);
	for (size_t i = 0; i < 40; i++) {
		const char *type = fhir_types[fhir_resource_types[i]].name;
		assert_int_equal(fhir_export_writer_add(&w, type, "{}", 2, &e), 0);
		assert_true(w.nopen <= 32);
	}
	assert_int_equal(fhir_export_writer_add(&w, fhir_types[fhir_resource_types[0]].name, "{}", 2,
						&e), 0);
	assert_int_equal(fhir_export_writer_close(&w, &e), 0);
	assert_int_equal(w.nfiles, 41);
	assert_int_equal(w.total_count, 41);
	{
		char want[96];
		snprintf(want, sizeof(want), "%s-2.ndjson", fhir_types[fhir_resource_types[0]].name);
		assert_string_equal(w.files[1].name, want);
	}
	fhir_export_writer_release(&w);
	/* the first writer's Patient files are taken: an error, not an overwrite */
	assert_int_equal(fhir_export_writer_init(&w, dirfd, 0, 0, &e), 0);
	assert_int_equal(fhir_export_writer_add(&w, "Patient", "{}", 2, &e), -1);
	assert_int_equal(e.code, ERR_IO);
	fhir_export_writer_release(&w);
	close(dirfd);
}

/* ---- store: job rows ---- */

static void job_init(struct store_export_job *j, const char *id, int64_t uid)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->job, sizeof(j->job), "%s", id);
	j->uid = uid;
	j->level = SXL_SYSTEM;
	j->since_ms = INT64_MIN;
	snprintf(j->request, sizeof(j->request), "http://h/$export");
	j->state = SXS_QUEUED;
	j->created_ms = time_now_ms();
}

static int count_job(void *ctx, const struct store_export_job *j)
{
	(void)j;
	(*(int *)ctx)++;
	return 0;
}

static int list_file(void *ctx, const struct store_export_file *f)
{
	struct buf *b = ctx;

	buf_addf(b, "%s:%s:%" PRId64 ":%" PRId64 ";", f->type, f->name, f->count, f->bytes);
	return 0;
}

static void test_store_jobs(void **state)
{
	struct fx *f = *state;
	struct store_export_job j, got;
	struct store_export_file files[2], one;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT(0);
	int n = 0;

	job_init(&j, "00000000000000000000000000000001", 7);
	snprintf(j.types, sizeof(j.types), "Patient,Observation");
	j.since_ms = 1234;
	assert_int_equal(store_export_job_add(f->s, &j, &e), 0);
	assert_int_equal(store_export_job_add(f->s, &j, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	err_clear(&e);
	assert_int_equal(store_export_job_get(f->s, j.job, &got, &e), 0);
	assert_int_equal(got.uid, 7);
	assert_int_equal(got.state, SXS_QUEUED);
	assert_int_equal(got.since_ms, 1234);
	assert_string_equal(got.types, "Patient,Observation");
	assert_string_equal(got.request, "http://h/$export");
	/* done, with files */
	memset(files, 0, sizeof(files));
	snprintf(files[0].type, sizeof(files[0].type), "Patient");
	snprintf(files[0].name, sizeof(files[0].name), "Patient-1.ndjson");
	files[0].count = 2;
	files[0].bytes = 20;
	snprintf(files[1].type, sizeof(files[1].type), "Observation");
	snprintf(files[1].name, sizeof(files[1].name), "Observation-1.ndjson");
	files[1].count = 5;
	files[1].bytes = 50;
	j.state = SXS_DONE;
	j.tx_time_ms = 99;
	j.expires_ms = 1000;
	j.resources = 7;
	assert_int_equal(store_export_job_update(f->s, &j, files, 2, &e), 0);
	assert_int_equal(store_export_job_get(f->s, j.job, &got, &e), 0);
	assert_int_equal(got.state, SXS_DONE);
	assert_int_equal(got.tx_time_ms, 99);
	assert_int_equal(got.resources, 7);
	assert_int_equal(store_export_files(f->s, j.job, list_file, &b, &e), 0);
	assert_string_equal(buf_cstr(&b), "Patient:Patient-1.ndjson:2:20;Observation:Observation-1.ndjson:5:50;");
	assert_int_equal(store_export_file_get(f->s, j.job, "Observation-1.ndjson", &one, &e), 0);
	assert_int_equal(one.count, 5);
	assert_int_equal(store_export_file_get(f->s, j.job, "Patient-2.ndjson", &one, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	/* listing: all, then by expiry */
	job_init(&got, "00000000000000000000000000000002", 8);
	assert_int_equal(store_export_job_add(f->s, &got, &e), 0);
	assert_int_equal(store_export_job_list(f->s, 0, count_job, &n, &e), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_export_job_list(f->s, 999, count_job, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_export_job_list(f->s, 1000, count_job, &n, &e), 0);
	assert_int_equal(n, 1); /* queued jobs (expires 0) never expire */
	/* delete: rows and files */
	assert_int_equal(store_export_job_delete(f->s, j.job, &e), 0);
	assert_int_equal(store_export_job_get(f->s, j.job, &got, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	buf_reset(&b);
	assert_int_equal(store_export_files(f->s, j.job, list_file, &b, &e), 0);
	assert_int_equal(b.len, 0);
	err_clear(&e);
	assert_int_equal(store_export_job_delete(f->s, j.job, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	err_clear(&e);
	assert_int_equal(store_export_job_update(f->s, &j, NULL, 0, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	buf_release(&b);
}

/* ---- store: the snapshot scan ---- */

#define REF_PID 4242

/* Write type/id; with ref, one reference index row to Patient/ref. */
static void put(struct store *s, const char *type, const char *id, const char *ref)
{
	struct store_ix_row row;
	struct store_op op;
	struct store_txn t;
	char body[128];

	snprintf(body, sizeof(body), "\"note\":\"%s\"", id);
	memset(&op, 0, sizeof(op));
	memset(&row, 0, sizeof(row));
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	op.type = type;
	op.id = id;
	op.meta_rest = "";
	op.body = body;
	op.body_len = strlen(body);
	crypto_generichash(op.chash, sizeof(op.chash), (const unsigned char *)body, op.body_len,
			   NULL, 0);
	if (ref) {
		row.kind = SIX_REFERENCE;
		row.pid = REF_PID;
		row.s1 = "Patient";
		row.s2 = ref;
		row.s3 = "";
		op.ix = &row;
		op.n_ix = 1;
	}
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	assert_int_equal(store_commit(s, &t), 0);
}

static void del(struct store *s, const char *type, const char *id)
{
	struct store_op op;
	struct store_txn t;

	memset(&op, 0, sizeof(op));
	op.kind = STORE_REMOVE;
	op.method = STORE_DELETE;
	op.type = type;
	op.id = id;
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	assert_int_equal(store_commit(s, &t), 0);
}

static int collect_ids(void *ctx, const struct store_version *v)
{
	struct buf *b = ctx;

	/* the JSON is the stored, one-line resource */
	assert_non_null(strstr(v->json, v->id));
	assert_null(memchr(v->json, '\n', v->len));
	buf_addf(b, "%s%s", b->len ? "," : "", v->id);
	return 0;
}

/* The ids q delivers, sorted, comma-separated, in out. */
static void scan(struct store_snapshot *snap, const struct store_export_q *q, char *out, size_t cap)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char *items[64], *save = NULL, *p, *list;
	size_t n = 0;

	assert_int_equal(store_export_scan(snap, q, collect_ids, &b, &e), 0);
	list = buf_detach(&b, NULL);
	for (p = strtok_r(list, ",", &save); p && n < 64; p = strtok_r(NULL, ",", &save))
		items[n++] = p;
	for (size_t i = 1; i < n; i++)          /* insertion sort: a handful of ids */
		for (size_t k = i; k > 0 && strcmp(items[k - 1], items[k]) > 0; k--) {
			char *t = items[k];
			items[k] = items[k - 1];
			items[k - 1] = t;
		}
	out[0] = '\0';
	for (size_t i = 0, o = 0; i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", items[i]);
	free(list);
}

static void test_scan(void **state)
{
	struct fx *f = *state;
	static const uint32_t pids[] = { REF_PID };
	static const uint32_t other_pid[] = { REF_PID + 1 };
	static const char *const p1[] = { "p1" };
	static const char *const p1p3[] = { "p1", "p3" };
	static const char *const none[] = { NULL };
	struct store_snapshot *snap = NULL;
	struct store_export_q q;
	struct err e = ERR_INIT;
	char got[512];
	int64_t last = 0, mid;

	put(f->s, "Patient", "p1", NULL);
	put(f->s, "Patient", "p2", NULL);
	put(f->s, "Observation", "o1", "p1");
	put(f->s, "Observation", "o2", "p2");
	put(f->s, "Observation", "o3", NULL);
	put(f->s, "Observation", "o4", "p3"); /* to a Patient that does not exist */
	put(f->s, "Observation", "o5", "p1");
	del(f->s, "Observation", "o5");
	{
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	mid = time_now_ms();
	put(f->s, "Observation", "o6", "p2");

	assert_int_equal(store_snapshot_begin(f->s, &snap, &last, &e), 0);
	assert_true(last >= mid);
	/* everything of a type (deleted ones left out) */
	memset(&q, 0, sizeof(q));
	q.type = "Observation";
	q.since_ms = INT64_MIN;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1,o2,o3,o4,o6");
	/* every type, in write order (not sorted: the order is the point) */
	{
		struct buf b = BUF_INIT(0);
		struct store_export_q all;
		memset(&all, 0, sizeof(all));
		all.since_ms = INT64_MIN;
		assert_int_equal(store_export_scan(snap, &all, collect_ids, &b, &e), 0);
		assert_string_equal(buf_cstr(&b), "p1,p2,o1,o2,o3,o4,o6");
		buf_release(&b);
	}
	/* _since */
	q.since_ms = mid;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o6");
	q.since_ms = INT64_MIN;
	/* ids */
	q.type = "Patient";
	q.ids = p1p3;
	q.nids = 2;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "p1");
	q.ids = none;
	q.nids = 0;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "");
	q.ids = NULL;
	/* the compartment of every (existing) Patient */
	q.type = "Observation";
	q.ref_type = "Patient";
	q.pids = pids;
	q.npids = 1;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1,o2,o6");
	/* of some Patients */
	q.ref_ids = p1;
	q.nref_ids = 1;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1");
	q.ref_ids = p1p3;
	q.nref_ids = 2;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1");
	q.ref_ids = none;
	q.nref_ids = 0;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "");
	/* another parameter links nothing; no parameter at all, nothing either */
	q.ref_ids = NULL;
	q.pids = other_pid;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "");
	q.npids = 0;
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "");
	q.pids = pids;
	q.npids = 1;

	/* the snapshot does not see later writes... */
	put(f->s, "Observation", "o7", "p1");
	del(f->s, "Patient", "p2");
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1,o2,o6");
	store_snapshot_end(snap);
	/* ...a new one does: o2 and o6 left with their Patient */
	assert_int_equal(store_snapshot_begin(f->s, &snap, &last, &e), 0);
	scan(snap, &q, got, sizeof(got));
	assert_string_equal(got, "o1,o7");
	store_snapshot_end(snap);
}

/* ---- the job manager, end to end ---- */

struct call {
	struct fhir_export_req req;
	struct fhir_export_resp resp;
};

static void call(struct fx *f, struct call *c, int op, const char *id, const char *file,
		 int64_t uid)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.op = op;
	c->req.level = SXL_SYSTEM;
	c->req.id = id;
	c->req.file = file;
	c->req.respond_async = true;
	c->req.base = "http://h";
	c->req.path = "/$export";
	c->req.uid = uid;
	fhir_export_resp_release(&c->resp);
	fhir_export_resp_init(&c->resp);
	fhir_export_handle(f->x, &c->req, &c->resp);
}

/* Kick off a system export (params optional); the job id. */
static void kick(struct fx *f, const struct fhir_param *params, size_t n, int64_t uid,
		 char job[STORE_EXPORT_JOB_LEN + 1])
{
	struct call c;
	const char *slash;

	memset(&c, 0, sizeof(c));
	fhir_export_resp_init(&c.resp);
	memset(&c.req, 0, sizeof(c.req));
	c.req.op = FHIR_EXPORT_KICKOFF;
	c.req.level = SXL_SYSTEM;
	c.req.respond_async = true;
	c.req.base = "http://h";
	c.req.path = "/$export";
	c.req.params = params;
	c.req.n_params = n;
	c.req.uid = uid;
	fhir_export_handle(f->x, &c.req, &c.resp);
	assert_int_equal(c.resp.status, 202);
	slash = strrchr(c.resp.content_location, '/');
	assert_non_null(slash);
	assert_int_equal(strncmp(c.resp.content_location, "http://h/$export-status/", 24), 0);
	snprintf(job, STORE_EXPORT_JOB_LEN + 1, "%s", slash + 1);
	assert_true(fhir_export_job_valid(job));
	fhir_export_resp_release(&c.resp);
}

/* Poll until the job is no longer 202; the last answer stays in c. */
static void wait_done(struct fx *f, struct call *c, const char *job, int64_t uid)
{
	for (int i = 0; i < 2000; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		call(f, c, FHIR_EXPORT_STATUS, job, NULL, uid);
		if (c->resp.status != 202)
			return;
		assert_int_equal(c->resp.retry_after > 0, 1);
		assert_true(c->resp.progress[0]);
		nanosleep(&ts, NULL);
	}
	fail_msg("export %s did not finish", job);
}

static void start_delayed(struct fx *f, int64_t ttl_s, unsigned delay_ms)
{
	struct fhir_export_config cfg;
	struct err e = ERR_INIT;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = f->xdir;
	cfg.ttl_s = ttl_s;
	cfg.start_delay_ms = delay_ms;
	cfg.file_max_resources = 2;
	if (fhir_export_new(&f->fcfg, &cfg, &f->x, &e) < 0)
		fail_msg("fhir_export_new: %s (%s)", e.msg, e.detail);
}

static void start(struct fx *f, int64_t ttl_s)
{
	start_delayed(f, ttl_s, 0);
}

static void test_manager(void **state)
{
	struct fx *f = *state;
	const struct fhir_param types[] = { { "_type", "Patient" } };
	char job[STORE_EXPORT_JOB_LEN + 1], job2[STORE_EXPORT_JOB_LEN + 1], path[256];
	struct call c;
	struct stat sb;
	json_object *m;
	struct err e = ERR_INIT;
	char buf[256];
	ssize_t n;

	memset(&c, 0, sizeof(c));
	fhir_export_resp_init(&c.resp);
	put(f->s, "Patient", "p1", NULL);
	put(f->s, "Patient", "p2", NULL);
	put(f->s, "Patient", "p3", NULL);
	put(f->s, "Observation", "o1", "p1");
	start(f, 0);
	assert_int_equal(stat(f->xdir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	/* no Prefer: respond-async */
	memset(&c.req, 0, sizeof(c.req));
	c.req.op = FHIR_EXPORT_KICKOFF;
	c.req.level = SXL_SYSTEM;
	c.req.base = "http://h";
	c.req.path = "/$export";
	fhir_export_handle(f->x, &c.req, &c.resp);
	assert_int_equal(c.resp.status, 400);
	assert_non_null(strstr(buf_cstr(&c.resp.body), "respond-async"));

	kick(f, types, 1, 1, job);
	wait_done(f, &c, job, 1);
	assert_int_equal(c.resp.status, 200);
	m = json_parse_buf(c.resp.body.data, c.resp.body.len, 0, &e);
	assert_non_null(m);
	assert_string_equal(json_get_str(m, "request"), "http://h/$export?_type=Patient");
	assert_true(json_object_get_boolean(json_get(m, "requiresAccessToken")));
	assert_non_null(json_get_str(m, "transactionTime"));
	assert_int_equal(json_object_array_length(json_get_arr(m, "error")), 0);
	{
		json_object *out = json_get_arr(m, "output");
		assert_int_equal(json_object_array_length(out), 2); /* split at 2 resources */
		snprintf(buf, sizeof(buf), "http://h/$export-file/%s/Patient-1.ndjson", job);
		assert_string_equal(json_get_str(json_object_array_get_idx(out, 0), "url"), buf);
		assert_string_equal(json_get_str(json_object_array_get_idx(out, 0), "type"), "Patient");
		snprintf(buf, sizeof(buf), "http://h/$export-file/%s/Patient-2.ndjson", job);
		assert_string_equal(json_get_str(json_object_array_get_idx(out, 1), "url"), buf);
		assert_int_equal(json_object_get_int(json_get(json_object_array_get_idx(out, 0), "count")), 2);
		assert_int_equal(json_object_get_int(json_get(json_object_array_get_idx(out, 1), "count")), 1);
	}
	json_object_put(m);

	/* the file, for its owner only */
	call(f, &c, FHIR_EXPORT_FILE, job, "Patient-2.ndjson", 1);
	assert_int_equal(c.resp.status, 200);
	assert_true(c.resp.fd >= 0);
	n = read(c.resp.fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal((uint64_t)n, c.resp.size);
	assert_non_null(strstr(buf, "\"id\":\"p3\""));
	assert_int_equal(buf[n - 1], '\n');
	call(f, &c, FHIR_EXPORT_FILE, job, "Patient-2.ndjson", 2);
	assert_int_equal(c.resp.status, 404);
	assert_int_equal(c.resp.fd, -1);
	call(f, &c, FHIR_EXPORT_FILE, job, "Patient-3.ndjson", 1);
	assert_int_equal(c.resp.status, 404);
	call(f, &c, FHIR_EXPORT_FILE, job, "../../db", 1);
	assert_int_equal(c.resp.status, 404);
	call(f, &c, FHIR_EXPORT_STATUS, job, NULL, 2);
	assert_int_equal(c.resp.status, 404);
	call(f, &c, FHIR_EXPORT_CANCEL, job, NULL, 2);
	assert_int_equal(c.resp.status, 404);
	call(f, &c, FHIR_EXPORT_STATUS, "00000000000000000000000000000000", NULL, 1);
	assert_int_equal(c.resp.status, 404);
	call(f, &c, FHIR_EXPORT_STATUS, "not-a-job", NULL, 1);
	assert_int_equal(c.resp.status, 404);

	/* a second job, deleted when done: status 404, files gone */
	kick(f, NULL, 0, 1, job2);
	wait_done(f, &c, job2, 1);
	assert_int_equal(c.resp.status, 200);
	snprintf(path, sizeof(path), "%s/%s", f->xdir, job2);
	assert_int_equal(stat(path, &sb), 0);
	call(f, &c, FHIR_EXPORT_CANCEL, job2, NULL, 1);
	assert_int_equal(c.resp.status, 202);
	call(f, &c, FHIR_EXPORT_STATUS, job2, NULL, 1);
	assert_int_equal(c.resp.status, 404);
	assert_int_equal(stat(path, &sb), -1);
	call(f, &c, FHIR_EXPORT_CANCEL, job2, NULL, 1);
	assert_int_equal(c.resp.status, 404);

	/* restart: the finished job still answers; one recorded as running
	 * (the server died under it) is failed; a stray directory goes */
	fhir_export_free(f->x);
	f->x = NULL;
	{
		struct store_export_job r;
		job_init(&r, "0000000000000000000000000000000a", 1);
		r.state = SXS_RUNNING;
		assert_int_equal(store_export_job_add(f->s, &r, &e), 0);
		snprintf(path, sizeof(path), "%s/0000000000000000000000000000000b", f->xdir);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	start(f, 0);
	call(f, &c, FHIR_EXPORT_STATUS, job, NULL, 1);
	assert_int_equal(c.resp.status, 200);
	call(f, &c, FHIR_EXPORT_STATUS, "0000000000000000000000000000000a", NULL, 1);
	assert_int_equal(c.resp.status, 500);
	assert_non_null(strstr(buf_cstr(&c.resp.body), "start it again"));
	assert_int_equal(stat(path, &sb), -1);

	/* a done job whose file was cut short (crash before the page cache
	 * reached the disk) is failed at the next start */
	fhir_export_free(f->x);
	f->x = NULL;
	snprintf(path, sizeof(path), "%s/%s/Patient-1.ndjson", f->xdir, job);
	assert_int_equal(truncate(path, 10), 0);
	start(f, 0);
	call(f, &c, FHIR_EXPORT_STATUS, job, NULL, 1);
	assert_int_equal(c.resp.status, 500);
	fhir_export_resp_release(&c.resp);
}

static void test_manager_expiry_and_limits(void **state)
{
	struct fx *f = *state;
	char job[STORE_EXPORT_JOB_LEN + 1], path[256];
	struct call c;
	struct stat sb;

	memset(&c, 0, sizeof(c));
	fhir_export_resp_init(&c.resp);
	put(f->s, "Patient", "p1", NULL);
	start(f, 1); /* finished jobs expire after a second */
	kick(f, NULL, 0, 1, job);
	wait_done(f, &c, job, 1);
	assert_int_equal(c.resp.status, 200);
	snprintf(path, sizeof(path), "%s/%s", f->xdir, job);
	assert_int_equal(stat(path, &sb), 0);
	/* expiry runs at start-up (and every minute): restart after it passed */
	fhir_export_free(f->x);
	f->x = NULL;
	{
		struct timespec ts = { 1, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	start(f, 1);
	call(f, &c, FHIR_EXPORT_STATUS, job, NULL, 1);
	assert_int_equal(c.resp.status, 404);
	assert_int_equal(stat(path, &sb), -1);

	/* running and queued jobs: their owner's alone; at most 4 per user */
	fhir_export_free(f->x);
	f->x = NULL;
	start_delayed(f, 0, 5000);
	{
		char jobs[4][STORE_EXPORT_JOB_LEN + 1];
		for (int i = 0; i < 4; i++)
			kick(f, NULL, 0, 1, jobs[i]);
		memset(&c.req, 0, sizeof(c.req));
		c.req.op = FHIR_EXPORT_KICKOFF;
		c.req.level = SXL_SYSTEM;
		c.req.respond_async = true;
		c.req.base = "http://h";
		c.req.path = "/$export";
		c.req.uid = 1;
		fhir_export_resp_release(&c.resp);
		fhir_export_resp_init(&c.resp);
		fhir_export_handle(f->x, &c.req, &c.resp);
		assert_int_equal(c.resp.status, 503);
		assert_true(c.resp.retry_after > 0);
		kick(f, NULL, 0, 2, job); /* another user still may */
		call(f, &c, FHIR_EXPORT_STATUS, jobs[0], NULL, 1);
		assert_int_equal(c.resp.status, 202);
		call(f, &c, FHIR_EXPORT_STATUS, jobs[0], NULL, 2);
		assert_int_equal(c.resp.status, 404);
		call(f, &c, FHIR_EXPORT_CANCEL, jobs[0], NULL, 2);
		assert_int_equal(c.resp.status, 404);
		call(f, &c, FHIR_EXPORT_STATUS, jobs[3], NULL, 1);
		assert_int_equal(c.resp.status, 202);
		assert_string_equal(c.resp.progress, "queued");
		call(f, &c, FHIR_EXPORT_STATUS, jobs[3], NULL, 2);
		assert_int_equal(c.resp.status, 404);
		for (int i = 0; i < 4; i++) {
			call(f, &c, FHIR_EXPORT_CANCEL, jobs[i], NULL, 1);
			assert_int_equal(c.resp.status, 202);
			call(f, &c, FHIR_EXPORT_STATUS, jobs[i], NULL, 1);
			assert_int_equal(c.resp.status, 404);
		}
	}
	/* shutdown with a job waiting: it is failed, and says so after a restart */
	fhir_export_free(f->x);
	f->x = NULL;
	start(f, 0);
	call(f, &c, FHIR_EXPORT_STATUS, job, NULL, 2);
	assert_int_equal(c.resp.status, 500);

	/* a Group export needs the Group */
	memset(&c.req, 0, sizeof(c.req));
	c.req.op = FHIR_EXPORT_KICKOFF;
	c.req.level = SXL_GROUP;
	c.req.id = "nope";
	c.req.respond_async = true;
	c.req.base = "http://h";
	c.req.path = "/Group/nope/$export";
	fhir_export_resp_release(&c.resp);
	fhir_export_resp_init(&c.resp);
	fhir_export_handle(f->x, &c.req, &c.resp);
	assert_int_equal(c.resp.status, 404);
	fhir_export_resp_release(&c.resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_compartment),
		cmocka_unit_test_setup_teardown(test_writer, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_store_jobs, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_manager, setup_store, teardown),
		cmocka_unit_test_setup_teardown(test_manager_expiry_and_limits, setup_store, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
