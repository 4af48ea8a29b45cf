/* test_mpi.c - src/mpi: merge and unmerge against a real store (with the
 * R4 search parameters, whose reference index finds what moves).
 *
 * JSON is written with single quotes; sq() turns them into double quotes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "mpi/mpi.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static char *sq(const char *s)
{
	char *o = strdup(s);

	assert_non_null(o);
	for (char *p = o; *p; p++)
		if (*p == '\'')
			*p = '"';
	return o;
}

static json_object *parse_sq(const char *s)
{
	char *t = sq(s);
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(t, strlen(t), 0, &e);

	if (!o)
		fail_msg("test JSON does not parse: %s: %s", e.msg, t);
	free(t);
	return o;
}

/* ------------------------------------------------------------------ */
/* a store with the search parameters                                   */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct fhir_params *params;
	struct fhir_config cfg;
	struct store_principal who;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-mpi-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0 ||
	    fhir_params_load(f->s, &f->params, &e) < 0) {
		fprintf(stderr, "fx_setup: %s\n", e.msg);
		return -1;
	}
	f->cfg.store = f->s;
	f->cfg.params = f->params;
	f->cfg.software_version = "test";
	snprintf(f->who.username, sizeof(f->who.username), "hannah");
	snprintf(f->who.role, sizeof(f->who.role), "him_director");
	f->who.uid = 1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	fhir_params_free(f->params);
	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Write a resource as a PUT would (prepare with index rows + update). */
static void seed(struct fx *f, const char *json_sq)
{
	json_object *o = parse_sq(json_sq);
	struct fhir_prepared p;
	struct store_op op;
	struct store_txn t;
	struct err e = ERR_INIT;

	fhir_prepared_init(&p);
	assert_int_equal(fhir_prepare(f->params, o, json_get_str(o, "id"), &p, &e), 0);
	memset(&op, 0, sizeof(op));
	fhir_prepared_op(&p, &op);
	op.kind = STORE_UPDATE;
	op.method = STORE_PUT;
	memset(&t, 0, sizeof(t));
	t.ops = &op;
	t.n = 1;
	t.atomic = true;
	if (store_commit(f->s, &t) != 0)
		fail_msg("seed: %s", op.err.msg);
	fhir_prepared_release(&p);
	json_object_put(o);
}

/* The current JSON of type/id (malloc'd) and its version. */
static char *current(struct fx *f, const char *type, const char *id, int64_t *vid)
{
	struct store_version v;
	struct err e = ERR_INIT;
	char *j;

	memset(&v, 0, sizeof(v));
	if (store_read(f->s, type, id, &v, &e) != 0)
		fail_msg("read %s/%s: %s", type, id, e.msg);
	j = v.json;
	if (vid)
		*vid = v.vid;
	v.json = NULL;
	store_version_release(&v);
	return j;
}

static bool has(struct fx *f, const char *type, const char *id, const char *needle)
{
	char *j = current(f, type, id, NULL);
	char *n = sq(needle);
	bool r = strstr(j, n) != NULL;

	free(j);
	free(n);
	return r;
}

static int64_t versions(struct fx *f, const char *type, const char *id)
{
	int64_t n = 0;
	struct err e = ERR_INIT;

	assert_int_equal(store_history_count(f->s, type, id, INT64_MIN, &n, &e), 0);
	return n;
}

static void seed_chart(struct fx *f)
{
	seed(f, "{'resourceType':'Patient','id':'src','active':true,'name':[{'family':'Smith','given':['Jon']}],"
		"'birthDate':'1970-03-04','gender':'male'}");
	seed(f, "{'resourceType':'Patient','id':'tgt','active':true,'name':[{'family':'Smith','given':['John']}],"
		"'birthDate':'1970-03-04','gender':'male'}");
	seed(f, "{'resourceType':'Patient','id':'other','name':[{'family':'Jones'}]}");
	seed(f, "{'resourceType':'Encounter','id':'e1','status':'finished','class':{'code':'AMB'},"
		"'subject':{'reference':'Patient/src'}}");
	seed(f, "{'resourceType':'Observation','id':'o1','status':'final','code':{'text':'bp'},"
		"'subject':{'reference':'Patient/src'},'encounter':{'reference':'Encounter/e1'}}");
	seed(f, "{'resourceType':'Claim','id':'c1','status':'active','use':'claim','type':{'text':'x'},"
		"'patient':{'reference':'Patient/src'},'created':'2020-01-01',"
		"'provider':{'display':'p'},'priority':{'text':'normal'},"
		"'insurance':[{'sequence':1,'focal':true,'coverage':{'display':'c'}}]}");
	seed(f, "{'resourceType':'DocumentReference','id':'d1','status':'current',"
		"'subject':{'reference':'Patient/src'},'content':[{'attachment':{'url':'x'}}]}");
	seed(f, "{'resourceType':'Observation','id':'o2','status':'final','code':{'text':'hr'},"
		"'subject':{'reference':'Patient/other'}}");
}

/* ------------------------------------------------------------------ */

static void test_merge_moves_and_unmerge_restores(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct buf out = BUF_INIT(0);
	struct mpi_merge_out mo;

	seed_chart(f);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, &out, &mo, &e), 0);
	assert_int_equal(mo.moved, 4);
	assert_true(mo.audited);
	assert_true(mo.provenance[0]);
	assert_non_null(strstr(buf_cstr(&out), "\"resourceType\":\"Parameters\""));
	assert_non_null(strstr(buf_cstr(&out), "\"name\":\"result\""));
	/* every reference moved */
	assert_true(has(f, "Encounter", "e1", "'subject':{'reference':'Patient/tgt'}"));
	assert_true(has(f, "Observation", "o1", "'reference':'Patient/tgt'"));
	assert_true(has(f, "Observation", "o1", "'reference':'Encounter/e1'"));
	assert_true(has(f, "Claim", "c1", "'patient':{'reference':'Patient/tgt'}"));
	assert_true(has(f, "DocumentReference", "d1", "'reference':'Patient/tgt'"));
	assert_true(has(f, "Observation", "o2", "'reference':'Patient/other'"));
	assert_int_equal(versions(f, "Observation", "o2"), 1);
	/* the source inactive, replaced-by; the target replaces */
	assert_true(has(f, "Patient", "src", "'active':false"));
	assert_true(has(f, "Patient", "src", "'link':[{'other':{'reference':'Patient/tgt'},'type':'replaced-by'}]"));
	assert_true(has(f, "Patient", "tgt", "'link':[{'other':{'reference':'Patient/src'},'type':'replaces'}]"));
	/* history kept: a new version each */
	assert_int_equal(versions(f, "Encounter", "e1"), 2);
	assert_int_equal(versions(f, "Patient", "src"), 2);
	/* the Provenance names every version the merge wrote */
	assert_true(has(f, "Provenance", mo.provenance, "'reference':'Encounter/e1/_history/2'"));
	assert_true(has(f, "Provenance", mo.provenance, "'reference':'Patient/src/_history/2'"));
	assert_true(has(f, "Provenance", mo.provenance, "'code':'merge'"));
	assert_true(has(f, "Provenance", mo.provenance, "'display':'hannah'"));

	buf_reset(&out);
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "src", "tgt", false, &out, &mo, &e), 0);
	assert_int_equal(mo.moved, 4);
	assert_true(has(f, "Encounter", "e1", "'subject':{'reference':'Patient/src'}"));
	assert_true(has(f, "Claim", "c1", "'patient':{'reference':'Patient/src'}"));
	assert_true(has(f, "DocumentReference", "d1", "'reference':'Patient/src'"));
	assert_true(has(f, "Patient", "src", "'active':true"));
	assert_false(has(f, "Patient", "src", "'link'"));
	assert_false(has(f, "Patient", "tgt", "'link'"));
	assert_int_equal(versions(f, "Encounter", "e1"), 3);
	assert_int_equal(versions(f, "Patient", "tgt"), 3);
	assert_true(has(f, "Provenance", mo.provenance, "'code':'unmerge'"));
	/* unmerging again: nothing is merged */
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "src", "tgt", false, NULL, NULL, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	assert_non_null(strstr(e.msg, "is not merged"));
	/* and the pair can be merged again */
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, NULL, &mo, &e), 0);
	assert_int_equal(mo.moved, 4);
	buf_release(&out);
}

static void test_merge_of_merged_refused(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;

	seed_chart(f);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, NULL, NULL, &e), 0);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "other", NULL, false, NULL, NULL, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	assert_string_equal(e.msg, "source-patient: Patient/src is already merged into Patient/tgt");
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "other", "src", NULL, false, NULL, NULL, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	assert_non_null(strstr(e.msg, "is itself merged into Patient/tgt"));
	/* nothing was written by the refusals */
	assert_int_equal(versions(f, "Patient", "other"), 1);
	assert_int_equal(versions(f, "Observation", "o2"), 1);
	/* unmerge of the wrong pair */
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "src", "other", false, NULL, NULL, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	assert_non_null(strstr(e.msg, "not into Patient/other"));
}

static void test_merge_chain_moves_links(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct mpi_merge_out mo;

	seed_chart(f);
	/* other merged into src, then src into tgt: other's replaced-by follows */
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "other", "src", NULL, false, NULL, &mo, &e), 0);
	assert_int_equal(mo.moved, 1);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, NULL, &mo, &e), 0);
	assert_true(has(f, "Patient", "other", "'reference':'Patient/tgt'},'type':'replaced-by'"));
	assert_true(has(f, "Observation", "o2", "'reference':'Patient/tgt'"));
}

static void test_merge_bad_input(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	static const struct {
		const char *src, *tgt, *result;
		int code;
		const char *msg;
	} cases[] = {
		{ "src", "src", NULL, ERR_INVALID, "source-patient and target-patient are the same patient" },
		{ "nope", "tgt", NULL, ERR_NOT_FOUND, "source-patient: Patient/nope is not known" },
		{ "src", "nope", NULL, ERR_NOT_FOUND, "target-patient: Patient/nope is not known" },
		{ "s r c", "tgt", NULL, ERR_INVALID, "source-patient: a Patient id is expected" },
		{ NULL, "tgt", NULL, ERR_INVALID, "source-patient: a Patient id is expected" },
		{ "src", "tgt", "{'resourceType':'Patient','id':'zzz'}", ERR_INVALID,
		  "result-patient: its id must be the target-patient's (tgt)" },
		{ "src", "tgt", "{'resourceType':'Patient','id':'tgt','gender':7}", ERR_INVALID, "result-patient: " },
		{ "src", "tgt", "{'resourceType':'Observation','id':'tgt'}", ERR_INVALID, "result-patient: " },
		{ "src", "tgt", "{'resourceType':", ERR_INVALID, "result-patient: " },
	};

	seed_chart(f);
	for (size_t i = 0; i < N_OF(cases); i++) {
		char *r = cases[i].result ? sq(cases[i].result) : NULL;
		err_clear(&e);
		if (mpi_merge(&f->cfg, &f->who, NULL, cases[i].src, cases[i].tgt, r, false, NULL, NULL, &e) != -1)
			fail_msg("case %zu: merged", i);
		if (e.code != cases[i].code || strncmp(e.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
			fail_msg("case %zu: %s: %s", i, err_code_name(e.code), e.msg);
		free(r);
	}
	/* a deleted patient */
	{
		struct store_op op;
		struct store_txn t;
		memset(&op, 0, sizeof(op));
		op.kind = STORE_REMOVE;
		op.method = STORE_DELETE;
		op.type = "Patient";
		op.id = "other";
		memset(&t, 0, sizeof(t));
		t.ops = &op;
		t.n = 1;
		t.atomic = true;
		assert_int_equal(store_commit(f->s, &t), 0);
		assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "other", "tgt", NULL, false, NULL, NULL, &e), -1);
		assert_int_equal(e.code, ERR_GONE);
	}
	/* nothing moved */
	assert_int_equal(versions(f, "Encounter", "e1"), 1);
	assert_int_equal(versions(f, "Patient", "tgt"), 1);
}

static void test_merge_preview_and_result(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct buf out = BUF_INIT(0);
	struct mpi_merge_out mo;
	char *r;

	seed_chart(f);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, true, &out, &mo, &e), 0);
	assert_int_equal(mo.moved, 4);
	assert_false(mo.audited);
	assert_string_equal(mo.provenance, "");
	assert_non_null(strstr(buf_cstr(&out), "preview: would merge Patient/src into Patient/tgt: 4 resources"));
	assert_non_null(strstr(buf_cstr(&out), "\"type\":\"replaces\""));
	assert_int_equal(versions(f, "Encounter", "e1"), 1);
	assert_int_equal(versions(f, "Patient", "tgt"), 1);
	assert_int_equal(versions(f, "Patient", "src"), 1);
	/* result-patient becomes the target, with the replaces link added */
	r = sq("{'resourceType':'Patient','id':'tgt','name':[{'family':'Smith','given':['John','Q']}],"
	       "'birthDate':'1970-03-04'}");
	buf_reset(&out);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", r, false, &out, &mo, &e), 0);
	free(r);
	assert_true(has(f, "Patient", "tgt", "'given':['John','Q']"));
	assert_true(has(f, "Patient", "tgt", "'type':'replaces'"));
	assert_false(has(f, "Patient", "tgt", "'gender'"));
	/* unmerge: the target unchanged since gets its old version back */
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "src", "tgt", false, NULL, &mo, &e), 0);
	assert_true(has(f, "Patient", "tgt", "'gender':'male'"));
	assert_true(has(f, "Patient", "tgt", "'given':['John']"));
	buf_release(&out);
}

static void test_unmerge_after_later_changes(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct mpi_merge_out mo;

	seed_chart(f);
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, NULL, &mo, &e), 0);
	/* after the merge: an encounter edited, a new one for the target */
	seed(f, "{'resourceType':'Encounter','id':'e1','status':'cancelled','class':{'code':'AMB'},"
		"'subject':{'reference':'Patient/tgt'}}");
	seed(f, "{'resourceType':'Encounter','id':'e2','status':'finished','class':{'code':'AMB'},"
		"'subject':{'reference':'Patient/tgt'}}");
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "src", "tgt", false, NULL, &mo, &e), 0);
	/* the edit is kept, its reference moved back; the new one stays */
	assert_true(has(f, "Encounter", "e1", "'status':'cancelled'"));
	assert_true(has(f, "Encounter", "e1", "'reference':'Patient/src'"));
	assert_true(has(f, "Encounter", "e2", "'reference':'Patient/tgt'"));
	assert_true(has(f, "Observation", "o1", "'reference':'Patient/src'"));
}

static void test_replaced_by(void **state)
{
	char into[ID_MAX + 1];
	bool merged;
	char *j = sq("{'resourceType':'Patient','link':[{'other':{'reference':'Patient/a'},'type':'seealso'},"
		     "{'other':{'reference':'http://x.org/fhir/Patient/b'},'type':'replaced-by'}]}");

	(void)state;
	mpi_replaced_by(j, strlen(j), &merged, into, sizeof(into));
	assert_true(merged);
	assert_string_equal(into, "b");
	free(j);
	j = sq("{'resourceType':'Patient','link':[{'other':{'reference':'Patient/a'},'type':'replaces'}]}");
	mpi_replaced_by(j, strlen(j), &merged, into, sizeof(into));
	assert_false(merged);
	free(j);
	mpi_replaced_by("{", 1, &merged, into, sizeof(into));
	assert_false(merged);
}

static int group_setup(void **state)
{
	(void)state;
	log_level = LOG_ERROR;
	return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replaced_by),
		cmocka_unit_test_setup_teardown(test_merge_moves_and_unmerge_restores, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_of_merged_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_chain_moves_links, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_bad_input, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_preview_and_result, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unmerge_after_later_changes, fx_setup, fx_teardown),
	};

	return _cmocka_run_group_tests("mpi", tests, N_OF(tests), group_setup, NULL) ? 1 : 0;
}
