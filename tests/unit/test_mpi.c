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
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "fhir/search.h"
#include "mpi/mpi.h"
#include "mpi/mpi_int.h"
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
	/* an open review item for the pair, and one for another pair */
	seed(f, "{'resourceType':'Task','id':'rv1','status':'requested','intent':'proposal',"
		"'code':{'coding':[{'system':'http://chartkeep.org/fhir/CodeSystem/mpi','code':'mpi-review'}]},"
		"'focus':{'reference':'Patient/src'},'for':{'reference':'Patient/src'},"
		"'input':[{'type':{'text':'patient'},'valueReference':{'reference':'Patient/tgt'}}]}");
	seed(f, "{'resourceType':'Task','id':'rv2','status':'requested','intent':'proposal',"
		"'code':{'coding':[{'system':'http://chartkeep.org/fhir/CodeSystem/mpi','code':'mpi-review'}]},"
		"'focus':{'reference':'Patient/other'},'for':{'reference':'Patient/other'},"
		"'input':[{'type':{'text':'patient'},'valueReference':{'reference':'Patient/src'}}]}");
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "src", "tgt", NULL, false, &out, &mo, &e), 0);
	assert_int_equal(mo.moved, 4);
	/* the pair's review item is answered, the other one neither moves nor closes */
	assert_true(has(f, "Task", "rv1", "'status':'completed'"));
	assert_true(has(f, "Task", "rv1", "'code':'duplicate'"));
	assert_true(has(f, "Task", "rv1", "'focus':{'reference':'Patient/src'}"));
	assert_int_equal(versions(f, "Task", "rv2"), 1);
	assert_non_null(strstr(buf_cstr(&out), "1 review item for the pair completed"));
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
	assert_int_equal(mo.moved, 5); /* the four records and the review item */
	assert_true(has(f, "Encounter", "e1", "'subject':{'reference':'Patient/src'}"));
	assert_true(has(f, "Claim", "c1", "'patient':{'reference':'Patient/src'}"));
	assert_true(has(f, "DocumentReference", "d1", "'reference':'Patient/src'"));
	assert_true(has(f, "Patient", "src", "'active':true"));
	assert_false(has(f, "Patient", "src", "'link'"));
	assert_true(has(f, "Task", "rv1", "'status':'requested'"));  /* open again */
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


/* ------------------------------------------------------------------ */
/* text: normalisation, comparators, phonetic codes, nicknames          */

static void test_normalise(void **state)
{
	static const struct { const char *in; bool abbrev; const char *out; } cases[] = {
		{ "  José  GARCÍA-López ", false, "jose garcia lopez" },
		{ "O'Brien", false, "obrien" },
		{ "Ångström", false, "angstrom" },
		{ "ﬁnn", false, "finn" },           /* a ligature: NFKD */
		{ "12 Main St.", true, "12 main street" },
		{ "12 Main St.", false, "12 main st" },
		{ "Apt 4, 9 N Oak Rd", true, "apartment 4 9 north oak road" },
		{ "Müller", false, "muller" },
		{ "...", false, "" },
		{ "", false, "" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct buf b = BUF_INIT(0);
		mpi_normalise(cases[i].in, strlen(cases[i].in), cases[i].abbrev, &b);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0)
			fail_msg("normalise(%s) = '%s', expected '%s'", cases[i].in, buf_cstr(&b), cases[i].out);
		buf_release(&b);
	}
}

static void test_jaro_winkler(void **state)
{
	static const struct { const char *a, *b; double jw; } cases[] = {
		{ "martha", "marhta", 0.9611 }, { "dwayne", "duane", 0.8400 }, { "dixon", "dicksonx", 0.8133 },
		{ "jones", "johnson", 0.8324 }, { "abc", "abc", 1.0 }, { "abc", "xyz", 0.0 }, { "", "", 1.0 },
		{ "a", "", 0.0 },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		double v = mpi_jaro_winkler(cases[i].a, cases[i].b);
		if (v < cases[i].jw - 0.0005 || v > cases[i].jw + 0.0005)
			fail_msg("jw(%s,%s) = %.4f, expected %.4f", cases[i].a, cases[i].b, v, cases[i].jw);
		/* symmetric */
		assert_true(fabs(v - mpi_jaro_winkler(cases[i].b, cases[i].a)) < 1e-9);
	}
}

static void test_damerau(void **state)
{
	(void)state;
	assert_int_equal(mpi_damerau("smith", "smith", 2), 0);
	assert_int_equal(mpi_damerau("smith", "smiht", 2), 1);   /* transposition */
	assert_int_equal(mpi_damerau("smith", "smyth", 2), 1);   /* substitution */
	assert_int_equal(mpi_damerau("smith", "smit", 2), 1);    /* deletion */
	assert_int_equal(mpi_damerau("smith", "xsmith", 2), 1);  /* insertion */
	assert_int_equal(mpi_damerau("19700304", "19700403", 2), 2);
	assert_int_equal(mpi_damerau("abc", "xyz", 1), 2);       /* more than max: max + 1 */
	assert_int_equal(mpi_damerau("a", "abcdef", 2), 3);
	assert_int_equal(mpi_damerau("", "", 1), 0);
}

static void test_nysiis(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "macintosh", "MCANT" }, { "knight", "NAGT" }, { "phillipson", "FALAPSAN" },
		{ "schmidt", "SNAD" }, { "brown", "BRAN" }, { "browne", "BRAN" }, { "smith", "SNAT" },
		{ "smyth", "SNYT" }, { "catherine", "CATARAN" }, { "kathryn", "CATRYN" }, { "", "" },
		{ "o brien", "OBRAN" },
	};
	char out[MPI_PHON_MAX + 1];

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		mpi_nysiis(cases[i].in, out);
		if (strcmp(out, cases[i].out) != 0)
			fail_msg("nysiis(%s) = %s, expected %s", cases[i].in, out, cases[i].out);
	}
}

static void test_nicknames(void **state)
{
	(void)state;
	assert_true(mpi_nick_same("bill", "william"));
	assert_true(mpi_nick_same("bill", "liam"));          /* both variants of william */
	assert_true(mpi_nick_same("chris", "christopher"));
	assert_true(mpi_nick_same("chris", "christina"));    /* chris stands for both */
	assert_false(mpi_nick_same("christopher", "christina"));
	assert_true(mpi_nick_same("peggy", "margaret"));
	assert_false(mpi_nick_same("john", "james"));
	assert_true(mpi_nick_same("zed", "zed"));
	assert_string_equal(mpi_nick_canon("bob"), "robert");
	assert_string_equal(mpi_nick_canon("zed"), "zed");
}

static void rec_of(struct arena *a, struct mpi_rec *r, const char *json_sq)
{
	json_object *o = parse_sq(json_sq);

	mpi_rec_from_json(o, "x", a, r);
	json_object_put(o);
}

static size_t cmp_index(const char *name)
{
	for (size_t k = 0; k < MPI_NCMP; k++)
		if (strcmp(mpi_cmps[k].name, name) == 0)
			return k;
	fail_msg("no comparison %s", name);
	return 0;
}

static void test_features_and_compare(void **state)
{
	struct arena a;
	struct mpi_rec x, y;
	uint8_t lv[MPI_NCMP];
	uint64_t kx[MPI_NKEYS], ky[MPI_NKEYS];
	struct mpi_model m;

	(void)state;
	arena_init(&a, 0);
	rec_of(&a, &x, "{'resourceType':'Patient','name':[{'use':'old','family':'Jones'},{'use':'official',"
		       "'family':'Van der Berg','given':['William','J.']}],'gender':'male','birthDate':'1970-03-04',"
		       "'address':[{'use':'home','line':['12 Main St.','Apt 4'],'city':'Springfield',"
		       "'postalCode':'62-704','state':'IL'}],'telecom':[{'system':'phone','value':'+1 (217) 555-0199'},"
		       "{'system':'email','value':'Bill@Example.org'}],"
		       "'identifier':[{'system':'http://hl7.org/fhir/sid/us-ssn','value':'123-45-6789'}]}");
	assert_string_equal(x.f[MF_FAMILY], "vanderberg");
	assert_string_equal(x.f[MF_GIVEN], "william");
	assert_string_equal(x.f[MF_MIDDLE], "j");
	assert_string_equal(x.f[MF_SEX], "m");
	assert_int_equal(x.birth, 19700304);
	assert_string_equal(x.f[MF_LINE], "12 main street");
	assert_string_equal(x.f[MF_LINE2], "apartment 4");
	assert_string_equal(x.f[MF_POSTAL], "62704");
	assert_string_equal(x.f[MF_PHONE], "2175550199");
	assert_string_equal(x.f[MF_EMAIL], "bill example org");
	assert_string_equal(x.f[MF_IDENT], "http://hl7.org/fhir/sid/us-ssn|123456789");
	/* a registrar's second record: nickname, swapped day and month, typo in the SSN */
	rec_of(&a, &y, "{'resourceType':'Patient','name':[{'family':'vanderberg','given':['Bill']}],"
		       "'birthDate':'1970-04-03','address':[{'line':['12 Main Street'],'city':'Springfeld'}],"
		       "'identifier':[{'system':'http://hl7.org/fhir/sid/us-ssn','value':'123456788'}]}");
	mpi_compare(&x, &y, lv);
	assert_int_equal(lv[cmp_index("given")], 0);
	assert_int_equal(lv[cmp_index("family")], 0);
	assert_int_equal(lv[cmp_index("birthDate")], 1);
	assert_int_equal(lv[cmp_index("address")], 0);
	assert_int_equal(lv[cmp_index("city")], 1);
	assert_int_equal(lv[cmp_index("identifier")], 1);
	assert_int_equal(lv[cmp_index("sex")], MPI_MISSING);     /* missing: no weight */
	assert_int_equal(lv[cmp_index("phone")], MPI_MISSING);
	mpi_model_default(&m);
	assert_true(mpi_probability(&m, mpi_weight(&m, lv)) > 0.99);
	/* the same blocking keys where the two agree */
	mpi_keys(&x, kx);
	mpi_keys(&y, ky);
	assert_true(kx[0] && kx[0] == ky[0]);    /* phonetic family + year */
	assert_true(kx[1] && kx[1] != ky[1]);    /* the dates differ */
	assert_true(kx[6] && kx[6] != ky[6]);    /* the names as written differ */
	/* given and family the wrong way round */
	rec_of(&a, &y, "{'resourceType':'Patient','name':[{'family':'William','given':['Vanderberg']}],"
		       "'birthDate':'1970-03-04'}");
	mpi_compare(&x, &y, lv);
	assert_int_equal(lv[cmp_index("given")], 0);
	assert_int_equal(lv[cmp_index("family")], 0);
	mpi_keys(&y, ky);
	assert_true(ky[6] && kx[6] == ky[6]);    /* the two names, in either order */
	assert_true(kx[1] == ky[1]);             /* the same birth date */
	/* twins: same family, birth date, address; another given name and sex */
	rec_of(&a, &y, "{'resourceType':'Patient','name':[{'family':'Van der Berg','given':['Susan']}],"
		       "'gender':'female','birthDate':'1970-03-04','address':[{'line':['12 Main St.','Apt 4'],"
		       "'city':'Springfield','postalCode':'62704','state':'IL'}]}");
	mpi_compare(&x, &y, lv);
	assert_int_equal(lv[cmp_index("given")], 3);
	assert_int_equal(mpi_decide(&m, mpi_probability(&m, mpi_weight(&m, lv)), lv), MPI_REVIEW);
	/* unless an identifier agrees exactly */
	lv[cmp_index("identifier")] = 0;
	assert_int_equal(mpi_decide(&m, 0.999, lv), MPI_LINK);
	lv[cmp_index("identifier")] = 1;
	assert_int_equal(mpi_decide(&m, 0.999, lv), MPI_REVIEW);
	assert_int_equal(mpi_decide(&m, m.lower - 0.01, lv), MPI_NONE);
	lv[cmp_index("given")] = 0;
	lv[cmp_index("sex")] = 0;
	assert_int_equal(mpi_decide(&m, (m.lower + m.upper) / 2, lv), MPI_REVIEW);
	assert_int_equal(mpi_decide(&m, m.upper, lv), MPI_LINK);
	/* a name alone: birth date different, nothing else of the person agrees */
	for (size_t k = 0; k < MPI_NCMP; k++)
		lv[k] = MPI_MISSING;
	lv[cmp_index("given")] = 0;
	lv[cmp_index("family")] = 0;
	lv[cmp_index("birthDate")] = 3;
	assert_int_equal(mpi_decide(&m, 0.999, lv), MPI_REVIEW);
	lv[cmp_index("phone")] = 0;
	assert_int_equal(mpi_decide(&m, 0.999, lv), MPI_LINK);
	arena_release(&a);
}

/* EM on comparison vectors drawn from a known model finds that model. */
static void test_em_recovers_known_model(void **state)
{
	struct mpi_model truth, est;
	const size_t n = 200000;
	uint8_t *lv = malloc(n * MPI_NCMP);
	uint64_t seed = 12345;

	(void)state;
	assert_non_null(lv);
	mpi_model_default(&truth);
	truth.lambda = 0.2;
	/* move every m and u away from the defaults the estimate starts from */
	for (size_t k = 0; k < MPI_NCMP; k++) {
		int L = mpi_cmps[k].nlevels;
		double sm = 0, su = 0;
		for (int l = 0; l < L; l++) {
			truth.m[k][l] = l == 0 ? 0.7 : 0.3 / (L - 1);
			truth.u[k][l] = l == L - 1 ? 0.8 : 0.2 / (L - 1);
			sm += truth.m[k][l];
			su += truth.u[k][l];
		}
		assert_true(fabs(sm - 1) < 1e-9 && fabs(su - 1) < 1e-9);
	}
	for (size_t i = 0; i < n; i++) {
		bool match;
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		match = (double)(seed % 1000000) / 1e6 < truth.lambda;
		for (size_t k = 0; k < MPI_NCMP; k++) {
			double r, acc = 0;
			int l;
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			r = (double)(seed % 1000000) / 1e6;
			if (r < 0.1) { /* a tenth of the values missing */
				lv[i * MPI_NCMP + k] = MPI_MISSING;
				continue;
			}
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			r = (double)(seed % 1000000) / 1e6;
			for (l = 0; l < mpi_cmps[k].nlevels - 1; l++) {
				acc += match ? truth.m[k][l] : truth.u[k][l];
				if (r < acc)
					break;
			}
			lv[i * MPI_NCMP + k] = (uint8_t)l;
		}
	}
	mpi_model_default(&est);
	assert_true(mpi_em(&est, lv, n, false, 500) > 1);
	assert_true(fabs(est.lambda - truth.lambda) < 0.01);
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			if (fabs(est.m[k][l] - truth.m[k][l]) > 0.02 || fabs(est.u[k][l] - truth.u[k][l]) > 0.02)
				fail_msg("%s level %d: m %.4f (true %.4f) u %.4f (true %.4f)", mpi_cmps[k].name, l,
					 est.m[k][l], truth.m[k][l], est.u[k][l], truth.u[k][l]);
	/* with u fixed at the truth, m and lambda alone */
	mpi_model_default(&est);
	memcpy(est.u, truth.u, sizeof(est.u));
	mpi_em(&est, lv, n, true, 500);
	assert_true(fabs(est.lambda - truth.lambda) < 0.01);
	for (size_t k = 0; k < MPI_NCMP; k++)
		for (int l = 0; l < mpi_cmps[k].nlevels; l++)
			assert_true(fabs(est.m[k][l] - truth.m[k][l]) < 0.02);
	free(lv);
}

static void test_model_roundtrip(void **state)
{
	struct mpi_model m, back;
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *o;

	(void)state;
	mpi_model_default(&m);
	m.m[1][2] = 0.123456;
	m.u[4][0] = 0.000321;
	m.lambda = 0.0421;
	mpi_model_weights(&m);
	mpi_model_json(&m, &b);
	o = json_parse_buf(b.data, b.len, 0, &e);
	assert_non_null(o);
	{
		struct fhir_issues iss;
		fhir_issues_init(&iss);
		assert_int_equal(fhir_validate(o, "Basic", &iss), 0);
	}
	assert_int_equal(mpi_model_from_json(o, &back, &e), 0);
	assert_true(back.trained);
	assert_true(fabs(back.m[1][2] - 0.123456) < 1e-9);
	assert_true(fabs(back.u[4][0] - 0.000321) < 1e-9);
	assert_true(fabs(back.lambda - 0.0421) < 1e-9);
	json_object_put(o);
	buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* auto-link above the upper threshold                                  */

static void seed_person(struct fx *f, const char *id, const char *given, const char *birth)
{
	char j[768];

	snprintf(j, sizeof(j),
		 "{'resourceType':'Patient','id':'%s','gender':'female','birthDate':'%s',"
		 "'name':[{'family':'Panza','given':['%s']}],'address':[{'line':['3 Calle Real'],"
		 "'city':'Toboso','postalCode':'45820'}],'telecom':[{'system':'phone','value':'555-4444'}]}",
		 id, birth, given);
	seed(f, j);
}

/* The review Tasks about Patient/id: how many, the first one's id. */
static size_t review_tasks(struct fx *f, const char *id, char first[ID_MAX + 1])
{
	char q[256], ids[8][ID_MAX + 1];
	size_t n = 0;
	struct err e = ERR_INIT;

	snprintf(q, sizeof(q), "code=" MPI_CODE_SYSTEM "%%7C" MPI_REVIEW_CODE "&patient=Patient/%s", id);
	assert_int_equal(fhir_search_ids(&f->cfg, "Task", q, ids, 8, &n, &e), 0);
	if (first)
		snprintf(first, ID_MAX + 1, "%s", n ? ids[0] : "");
	return n;
}

static void test_auto_link_and_undo(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char tid[ID_MAX + 1];
	size_t queued = 0, linked = 0;
	bool unlinked = false;
	char *j;

	seed_person(f, "pa", "Teresa", "1975-06-09");
	seed_person(f, "pb", "Teresa", "1975-06-09");
	assert_true(mpi_auto_link_on()); /* the default */
	assert_int_equal(mpi_incremental_one(&f->cfg, "pb", &queued, &linked, &e), 0);
	assert_int_equal(queued, 1);
	assert_int_equal(linked, 1);
	/* both linked, neither merged; new versions, the old ones kept */
	assert_true(has(f, "Patient", "pa", "{'other':{'reference':'Patient/pb'},'type':'seealso'}"));
	assert_true(has(f, "Patient", "pb", "{'other':{'reference':'Patient/pa'},'type':'seealso'}"));
	assert_false(has(f, "Patient", "pb", "replaced-by"));
	assert_int_equal(versions(f, "Patient", "pa"), 2);
	assert_int_equal(versions(f, "Patient", "pb"), 2);
	/* the Task, written with the links: urgent, auto-linked, open */
	assert_int_equal(review_tasks(f, "pa", tid), 1);
	assert_true(has(f, "Task", tid, "'priority':'urgent'"));
	assert_true(has(f, "Task", tid, "'code':'auto-linked'"));
	assert_true(has(f, "Task", tid, "'status':'requested'"));
	/* matched again (either side): linked already, nothing new */
	queued = linked = 0;
	assert_int_equal(mpi_incremental_one(&f->cfg, "pa", &queued, &linked, &e), 0);
	assert_int_equal(mpi_incremental_one(&f->cfg, "pb", &queued, &linked, &e), 0);
	assert_int_equal(queued + linked, 0);
	assert_int_equal(versions(f, "Patient", "pa"), 2);
	/* another queue racing on the pair: linked already, no second Task */
	{
		struct buf tj = BUF_INIT(0);
		uint8_t lv[MPI_NCMP] = { 0 };
		bool done = true;
		mpi_review_task_json("pa", "pb", 0.99, lv, MPI_TASK_LINKED, &tj);
		assert_int_equal(mpi_link(&f->cfg, "pa", "pb", buf_cstr(&tj), &done, &e), 0);
		assert_false(done);
		buf_release(&tj);
	}
	assert_int_equal(review_tasks(f, "pa", NULL), 1);
	/* a Task decision other than not-duplicate does not unlink */
	assert_int_equal(mpi_review_decided(&f->cfg, tid, &unlinked, &e), 0);
	assert_false(unlinked);
	/* not a duplicate: the links go, the pair stays decided */
	j = current(f, "Task", tid, NULL);
	{
		json_object *o = json_parse_buf(j, strlen(j), 0, &e), *bs;
		assert_non_null(o);
		json_object_object_add(o, "status", json_object_new_string("completed"));
		bs = parse_sq("{'coding':[{'system':'" MPI_CODE_SYSTEM "','code':'not-duplicate'}]}");
		json_object_object_add(o, "businessStatus", bs);
		seed(f, json_dump_str(o, NULL));
		json_object_put(o);
	}
	free(j);
	assert_int_equal(mpi_review_decided(&f->cfg, tid, &unlinked, &e), 0);
	assert_true(unlinked);
	assert_false(has(f, "Patient", "pa", "seealso"));
	assert_false(has(f, "Patient", "pb", "seealso"));
	assert_int_equal(versions(f, "Patient", "pa"), 3);
	/* once more: nothing left to undo */
	assert_int_equal(mpi_review_decided(&f->cfg, tid, &unlinked, &e), 0);
	assert_false(unlinked);
	assert_int_equal(versions(f, "Patient", "pa"), 3);
	queued = linked = 0;
	assert_int_equal(mpi_incremental_one(&f->cfg, "pa", &queued, &linked, &e), 0);
	assert_int_equal(queued + linked, 0);
	assert_false(has(f, "Patient", "pa", "seealso"));
	/* a decision the queue never saw (--no-match, a crash) is applied when
	   either patient is matched again */
	{
		size_t q2 = 0, l2 = 0;
		bool d = false;
		assert_int_equal(mpi_link(&f->cfg, "pa", "pb", NULL, &d, &e), 0);
		assert_true(d);
		assert_true(has(f, "Patient", "pb", "seealso"));
		assert_int_equal(mpi_incremental_one(&f->cfg, "pb", &q2, &l2, &e), 0);
		assert_int_equal(q2 + l2, 0);
		assert_false(has(f, "Patient", "pa", "seealso"));
		assert_false(has(f, "Patient", "pb", "seealso"));
	}
	/* not a review Task, or no Task at all: nothing */
	seed(f, "{'resourceType':'Task','id':'other-task','status':'completed','intent':'order',"
		"'businessStatus':{'text':'not-duplicate'}}");
	assert_int_equal(mpi_review_decided(&f->cfg, "other-task", &unlinked, &e), 0);
	assert_false(unlinked);
	assert_int_equal(mpi_review_decided(&f->cfg, "no-such-task", &unlinked, &e), 0);
	assert_false(unlinked);
}

static void test_auto_link_off_and_guards(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char tid[ID_MAX + 1];
	size_t queued = 0, linked = 0;
	bool done = true;

	/* off: the certain pair is an urgent review Task, nothing else */
	seed_person(f, "qa", "Teresa", "1975-06-09");
	seed_person(f, "qb", "Teresa", "1975-06-09");
	mpi_auto_link_set(false);
	assert_int_equal(mpi_incremental_one(&f->cfg, "qb", &queued, &linked, &e), 0);
	mpi_auto_link_set(true);
	assert_int_equal(queued, 1);
	assert_int_equal(linked, 0);
	assert_int_equal(versions(f, "Patient", "qa"), 1);
	assert_int_equal(review_tasks(f, "qa", tid), 1);
	assert_true(has(f, "Task", tid, "'priority':'urgent'"));
	assert_false(has(f, "Task", tid, "auto-linked"));
	/* twins (the given names differ) are never linked */
	seed_person(f, "ta", "Ines", "2001-02-03");
	seed_person(f, "tb", "Lucia", "2001-02-03");
	queued = linked = 0;
	assert_int_equal(mpi_incremental_one(&f->cfg, "tb", &queued, &linked, &e), 0);
	assert_int_equal(linked, 0);
	assert_false(has(f, "Patient", "ta", "seealso"));
	/* mpi_link refuses a patient with itself; a missing one links nothing */
	assert_int_equal(mpi_link(&f->cfg, "qa", "qa", NULL, &done, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(mpi_link(&f->cfg, "qa", "nobody", NULL, &done, &e), 0);
	assert_false(done);
	/* a merged patient is not linked */
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "qb", "qa", NULL, false, NULL, NULL, &e), 0);
	assert_int_equal(mpi_link(&f->cfg, "qa", "qb", NULL, &done, &e), 0);
	assert_false(done);
	assert_false(has(f, "Patient", "qa", "seealso"));
}

static void test_merge_of_linked_pair(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char tid[ID_MAX + 1];
	size_t queued = 0, linked = 0;

	seed_person(f, "ma", "Teresa", "1975-06-09");
	seed_person(f, "mb", "Teresa", "1975-06-09");
	assert_int_equal(mpi_incremental_one(&f->cfg, "mb", &queued, &linked, &e), 0);
	assert_int_equal(linked, 1);
	/* the source is the larger id: the Task names it only in an input */
	assert_int_equal(mpi_merge(&f->cfg, &f->who, NULL, "mb", "ma", NULL, false, NULL, NULL, &e), 0);
	assert_false(has(f, "Patient", "ma", "seealso"));
	assert_false(has(f, "Patient", "mb", "seealso"));
	assert_true(has(f, "Patient", "ma", "{'other':{'reference':'Patient/mb'},'type':'replaces'}"));
	assert_int_equal(review_tasks(f, "ma", tid), 1);
	assert_true(has(f, "Task", tid, "'status':'completed'"));
	assert_true(has(f, "Task", tid, "'code':'duplicate'"));
	/* unmerge: the state before the merge, linked again */
	assert_int_equal(mpi_unmerge(&f->cfg, &f->who, NULL, "mb", "ma", false, NULL, NULL, &e), 0);
	assert_true(has(f, "Patient", "ma", "{'other':{'reference':'Patient/mb'},'type':'seealso'}"));
	assert_true(has(f, "Patient", "mb", "{'other':{'reference':'Patient/ma'},'type':'seealso'}"));
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
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_jaro_winkler),
		cmocka_unit_test(test_damerau),
		cmocka_unit_test(test_nysiis),
		cmocka_unit_test(test_nicknames),
		cmocka_unit_test(test_features_and_compare),
		cmocka_unit_test(test_em_recovers_known_model),
		cmocka_unit_test(test_model_roundtrip),
		cmocka_unit_test_setup_teardown(test_merge_moves_and_unmerge_restores, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_of_merged_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_chain_moves_links, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_bad_input, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_preview_and_result, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unmerge_after_later_changes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_auto_link_and_undo, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_auto_link_off_and_guards, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_of_linked_pair, fx_setup, fx_teardown),
	};

	return _cmocka_run_group_tests("mpi", tests, N_OF(tests), group_setup, NULL) ? 1 : 0;
}
