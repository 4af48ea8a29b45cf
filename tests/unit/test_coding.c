/* test_coding.c - src/coding: code forms, version dates, the file parsers
 * (on slices of the official files in tests/data/codes and on malformed
 * lines), and loads into a real database: all or nothing, idempotent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "coding/coding.h"
#include "store/store_codes.h"
#include "base/banned.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *d;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	d = malloc((size_t)n + 1);
	assert_non_null(d);
	assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
	d[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return d;
}

static const struct store_concept *find(const struct coding_set *cs, const char *code)
{
	for (size_t i = 0; i < cs->n; i++)
		if (strcmp(cs->c[i].code, code) == 0)
			return &cs->c[i];
	return NULL;
}

static void test_code_forms(void **state)
{
	const struct coding_system *cm = coding_system_by_name("icd10cm");
	const struct coding_system *pcs = coding_system_by_name("icd10pcs");
	char out[STORE_CODE_MAX], shown[STORE_CODE_MAX + 2];
	static const char *const same[] = { "E11.9", "E119", "e11.9", " E11.9 ", NULL };
	static const char *const bad[] = { "", "E1.19", "E11..9", "E11.9;", "E11 9", ".E119",
					   "E11.", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", NULL };
	struct err e = ERR_INIT;

	(void)state;
	for (const char *const *s = same; *s; s++) {
		assert_int_equal(coding_code_norm(cm, *s, strlen(*s), out, &e), 0);
		assert_string_equal(out, "E119");
	}
	for (const char *const *s = bad; *s; s++) {
		err_clear(&e);
		assert_int_equal(coding_code_norm(cm, *s, strlen(*s), out, &e), -1);
		assert_int_equal(e.code, ERR_INVALID);
		assert_non_null(strstr(e.msg, "ICD-10-CM"));
	}
	assert_int_equal(coding_code_norm(pcs, "0016070", 7, out, &e), 0);
	assert_int_equal(coding_code_norm(pcs, "001.6070", 8, out, &e), -1);
	coding_code_show(cm, "S72001A", shown);
	assert_string_equal(shown, "S72.001A");
	coding_code_show(cm, "E11", shown);
	assert_string_equal(shown, "E11");
	coding_code_show(pcs, "0016070", shown);
	assert_string_equal(shown, "0016070");
	assert_ptr_equal(coding_system_by_uri("http://hl7.org/fhir/sid/icd-10-cm"), cm);
	assert_null(coding_system_by_uri("http://snomed.info/sct"));
	assert_null(coding_system_by_name("snomed"));
}

static void test_version_dates(void **state)
{
	char from[11], to[11];
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(coding_version_dates(coding_system_by_name("icd10cm"), "2016", from, to, &e), 0);
	assert_string_equal(from, "2015-10-01");
	assert_string_equal(to, "2016-09-30");
	assert_int_equal(coding_version_dates(coding_system_by_name("hcpcs"), "2019", from, to, &e), 0);
	assert_string_equal(from, "2019-01-01");
	assert_string_equal(to, "2019-12-31");
	assert_int_equal(coding_version_dates(coding_system_by_name("mce"), "37", from, to, &e), 0);
	assert_string_equal(from, "2019-10-01");
	assert_string_equal(to, "2020-09-30");
	assert_int_equal(coding_version_dates(coding_system_by_name("pos"), "20240502", from, to, &e), 0);
	assert_string_equal(from, "0001-01-01");
	assert_int_equal(coding_version_dates(coding_system_by_name("icd10cm"), "16", from, to, &e), -1);
	assert_int_equal(coding_version_dates(coding_system_by_name("mce"), "v37", from, to, &e), -1);
	assert_int_equal(coding_version_dates(coding_system_by_name("mce"), "12", from, to, &e), -1);
	assert_int_equal(coding_version_dates(coding_system_by_name("cpt"), "2019/..", from, to, &e), -1);
}

static void parse_file(const char *system, const char *version, const char *path, struct coding_set *cs)
{
	struct err e = ERR_INIT;
	size_t len;
	char *d = slurp(path, &len);

	coding_set_init(cs);
	if (coding_parse(coding_system_by_name(system), version, d, len, cs, &e) < 0)
		fail_msg("%s: %s", path, e.msg);
	free(d);
}

static void test_order_files(void **state)
{
	struct coding_set cs;
	const struct store_concept *c;

	(void)state;
	parse_file("icd10cm", "2016", "tests/data/codes/icd10cm_order_2016.txt", &cs);
	assert_string_equal(cs.format, "order");
	assert_int_equal(cs.n, 983);
	assert_int_equal(cs.billable, 708);
	c = find(&cs, "S72001A"); /* a 7th character survives (HAPI #3706, #7386) */
	assert_non_null(c);
	assert_true(c->billable);
	assert_string_equal(c->parent, "S72001");
	assert_non_null(strstr(c->display, "initial encounter for closed fracture"));
	c = find(&cs, "A00");
	assert_false(c->billable);
	assert_string_equal(c->parent, "");
	assert_string_equal(find(&cs, "A000")->parent, "A00");
	coding_set_release(&cs);
	parse_file("icd10pcs", "2018", "tests/data/codes/icd10pcs_order_2018.txt", &cs);
	assert_int_equal(cs.n, 149);
	assert_int_equal(cs.billable, 125);
	assert_string_equal(find(&cs, "0016070")->parent, "001");
	coding_set_release(&cs);
}

static void test_hcpcs(void **state)
{
	struct coding_set cs;
	const struct store_concept *c;

	(void)state;
	parse_file("hcpcs", "2019", "tests/data/codes/hcpcs_2019_slice.txt", &cs);
	/* the slice's modifiers (record 7, continued by 8) are kept too */
	assert_true(cs.modifiers > 0);
	assert_int_equal(cs.n, 6 + cs.modifiers);
	c = find(&cs, "AD"); /* a modifier continued on a second record */
	assert_non_null(c);
	assert_non_null(strstr(c->display, "Medical supervision by a physician"));
	assert_true(strlen(c->display) > 80);
	assert_true(c->added > 19000101);
	c = find(&cs, "A0080"); /* a description continued on a second record */
	assert_non_null(c);
	assert_string_equal(c->display, "Non-emergency transportation, per mile - vehicle provided by "
					"volunteer (individual or organization), with no vested interest");
	c = find(&cs, "A4466");
	assert_int_equal(c->terminated, 20161231);
	assert_true(c->added > 19000101);
	assert_int_equal(find(&cs, "G0008")->terminated, 0);
	coding_set_release(&cs);
}

/* Full 320-byte HCPCS records: id in column 11, dates at 269-292. */
static void hcpcs_rec(char out[322], const char *code5, const char *seq_id, const char *desc)
{
	memset(out, ' ', 320);
	memcpy(out, code5, 5);
	memcpy(out + 5, seq_id, 6);
	memcpy(out + 11, desc, strlen(desc));
	memcpy(out + 268, "20030101", 8);
	out[320] = '\n';
	out[321] = '\0';
}

static void test_hcpcs_modifier_records(void **state)
{
	static const struct {
		const char *lines[3][3];
		const char *msg;   /* NULL: parses */
	} cases[] = {
		{ { { "   LT", "001007", "Left side" }, { "A0021", "001003", "Ambulance" } }, NULL },
		{ { { "  LT ", "001007", "Left side" } }, "line 1: a modifier record (7) has its 2-character modifier "
		  "in columns 4-5" },
		{ { { "   l!", "001007", "Left side" } }, "a modifier record (7)" },
		{ { { "A0021", "001003", "Ambulance" }, { "A0021", "002008", "more" } },
		  "line 2: a continuation record (8) must follow its modifier's first record (7)" },
		{ { { "   LT", "001007", "Left side" }, { "   LT", "002004", "more" } },
		  "line 2: a continuation record (4) must follow its code's first record (3)" },
		{ { { "   LT", "001007", "Left side" }, { "   RT", "002008", "more" } }, "line 2: a continuation" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct coding_set cs;
		struct err e = ERR_INIT;
		char text[4 * 322] = "", rec[322];
		size_t len = 0;
		int rc;

		for (size_t k = 0; k < 3 && cases[i].lines[k][0]; k++) {
			hcpcs_rec(rec, cases[i].lines[k][0], cases[i].lines[k][1], cases[i].lines[k][2]);
			memcpy(text + len, rec, 321);
			len += 321;
		}
		coding_set_init(&cs);
		rc = coding_parse(coding_system_by_name("hcpcs"), "2019", text, len, &cs, &e);
		if (!cases[i].msg) {
			assert_int_equal(rc, 0);
			assert_int_equal(cs.modifiers, 1);
			assert_non_null(find(&cs, "LT"));
			assert_string_equal(find(&cs, "LT")->display, "Left side");
			assert_int_equal(find(&cs, "LT")->added, 20030101);
		} else {
			assert_int_equal(rc, -1);
			if (!strstr(e.msg, cases[i].msg))
				fail_msg("case %zu: got '%s', want '%s'", i, e.msg, cases[i].msg);
		}
		coding_set_release(&cs);
	}
}

static void test_cpt_pos_edits(void **state)
{
	struct coding_set cs;
	size_t female = 0;

	(void)state;
	parse_file("cpt", "2019", "tests/data/codes/cpt_synthetic.csv", &cs);
	assert_int_equal(cs.n, 3);
	assert_int_equal(cs.skipped, 1); /* the header */
	assert_string_equal(find(&cs, "99990")->display,
			    "Synthetic test code, not AMA content: office visit, level one");
	assert_string_equal(find(&cs, "99990")->short_desc, "SYNTH VISIT 1");
	coding_set_release(&cs);
	parse_file("pos", "20240502", "data/codes/CodeSystem-CMSPlaceofServiceCodes.json", &cs);
	assert_int_equal(cs.n, 52);
	assert_non_null(find(&cs, "11"));
	coding_set_release(&cs);
	parse_file("mce", "37", "data/codes/MCE_Simple_Code_Edits_v37.txt", &cs);
	assert_int_equal(cs.m, 14153);
	for (size_t i = 0; i < cs.m; i++)
		female += strcmp(cs.ed[i].kind, "Female_Only") == 0;
	assert_int_equal(female, 5429);
	coding_set_release(&cs);
	parse_file("poa-exempt", "2020", "data/codes/POAexemptCodes2020.txt", &cs);
	assert_int_equal(cs.m, 37075);
	assert_string_equal(cs.ed[0].code, "B900"); /* B90.0 without its dot */
	coding_set_release(&cs);
}

#define X80 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct bad {
	const char *system, *version, *text, *msg;
};

static const struct bad bads[] = {
	{ "icd10cm", "2016", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\ty\nA0-1\t1\tx\ty\n",
	  "line 3: not a well-formed ICD-10-CM code" },
	{ "icd10cm", "2016", "code\tbillable\tshort\tlong\n", "line 1: the header must be" },
	{ "icd10cm", "2016", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\t\n", "line 2: code A000 has no description" },
	{ "icd10cm", "2016", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\ty\nA001\t1\tx\ty\nA000\t0\tx\ty\n",
	  "line 4: code A000 is already on line 2" },
	{ "icd10cm", "2016", "", "the file is empty" },
	{ "icd10cm", "2016", "\n\n", "no codes" },
	{ "icd10cm", "2016", "code\tbillable\tshort_desc\tlong_desc\nA0\0\t1\tx\ty\n", "binary" },
	{ "icd10pcs", "2018", "order\tcode\tbillable\tshort_desc\tlong_desc\n1\t0016O70\t1\tx\ty\n",
	  "line 2: not a well-formed ICD-10-PCS code" },
	{ "hcpcs", "2019", "junk\n", "no HCPCS records" },
	{ "hcpcs", "2019", "A0021001003x\n", "too short for the long description" },
	{ "hcpcs", "2019", "   AD002008" X80 "\n", "line 1: a continuation record (8) must follow its modifier's "
	  "first record (7)" },
	{ "cpt", "2019", "99990\n", "line 1: expected code,description" },
	{ "cpt", "2019", "99990,a,b,c\n", "line 1: expected code,description" },
	{ "cpt", "2019", "code,description\n", "no CPT codes" },
	{ "pos", "1", "[]", "not a FHIR CodeSystem" },
	{ "pos", "1", "{\"resourceType\":\"CodeSystem\",\"concept\":[{\"code\":\"11\"}]}", "code and display are required" },
	{ "pos", "1", "{\"resourceType\":\"CodeSystem\",\"concept\":[{\"code\":\"11\",\"display\":\"a\"},"
		      "{\"code\":\"11\",\"display\":\"b\"}]}", "appears twice" },
	{ "mce", "37", "MCE_Version\tICD_Version\n", "line 1: the header must be" },
	{ "poa-exempt", "2020", "Order2020\tPOAexemptCode\tDescription\n1\tB90.0\n", "line 2: 2 fields" },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bads); i++) {
		struct coding_set cs;
		struct err e = ERR_INIT;
		size_t len = strlen(bads[i].text);

		if (strcmp(bads[i].msg, "binary") == 0)
			len = 52; /* past the NUL */
		coding_set_init(&cs);
		assert_int_equal(coding_parse(coding_system_by_name(bads[i].system), bads[i].version,
					      bads[i].text, len, &cs, &e), -1);
		if (!strstr(e.msg, bads[i].msg))
			fail_msg("case %zu: %s (wanted %s)", i, e.msg, bads[i].msg);
		coding_set_release(&cs);
	}
}

/* Latin-1 bytes (as in the HCPCS disclaimer) come out as UTF-8. */
static void test_latin1(void **state)
{
	const char text[] = "code,description\n99990,Caf\xe9 test \xc3\xa9t\xe9\n";
	struct coding_set cs;
	struct err e = ERR_INIT;

	(void)state;
	coding_set_init(&cs);
	assert_int_equal(coding_parse(coding_system_by_name("cpt"), "2019", text, sizeof(text) - 1, &cs, &e), 0);
	assert_string_equal(cs.c[0].display, "Caf\xc3\xa9 test \xc3\xa9t\xc3\xa9");
	coding_set_release(&cs);
}

/* ---- loads into a database ---- */

struct fx {
	char dir[64], db[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-coding-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
	assert_int_equal(store_create(f->db, &e), 0);
	assert_int_equal(store_open(f->db, NULL, &f->s, &e), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct count {
	int64_t n, billable;
	char sha[65];
	char codes[8][16];
	size_t k;
};

static int count_row(void *ctx, const struct store_code_version *v)
{
	struct count *c = ctx;

	c->n = v->n_codes;
	c->billable = v->n_billable;
	snprintf(c->sha, sizeof(c->sha), "%s", v->sha256);
	return 0;
}

static int code_row(void *ctx, const struct store_concept *k)
{
	struct count *c = ctx;

	if (c->k < 8)
		snprintf(c->codes[c->k++], 16, "%s", k->code);
	return 0;
}

static void test_load_all_or_nothing(void **state)
{
	struct fx *f = *state;
	struct coding_load_opts o = { "icd10cm", "2016", NULL, NULL };
	struct coding_load_report r;
	struct err e = ERR_INIT;
	struct count c;
	char bad[160];
	FILE *out;
	bool found;
	int64_t vkey;

	assert_int_equal(coding_load_file(f->s, &o, "tests/data/codes/icd10cm_order_2016.txt", &r, &e), 0);
	assert_false(r.unchanged);
	assert_int_equal(r.v.n_codes, 983);
	vkey = r.v.vkey;
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_versions(f->s, "icd10cm", count_row, &c, &e), 0);
	assert_int_equal(c.n, 983);
	/* the same file again: nothing written */
	assert_int_equal(coding_load_file(f->s, &o, "tests/data/codes/icd10cm_order_2016.txt", &r, &e), 0);
	assert_true(r.unchanged);
	/* a malformed file for the same version: the error names the line, the old rows stay */
	snprintf(bad, sizeof(bad), "%s/bad.tsv", f->dir);
	out = fopen(bad, "w");
	fputs("code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\tCholera\nZZ\t1\tx\ty\n", out);
	fclose(out);
	assert_int_equal(coding_load_file(f->s, &o, bad, &r, &e), -1);
	assert_non_null(strstr(e.msg, "bad.tsv: line 3"));
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_versions(f->s, "icd10cm", count_row, &c, &e), 0);
	assert_int_equal(c.n, 983);
	/* the store itself refuses a duplicate and keeps the old version */
	{
		struct store_code_version v;
		struct store_concept k[2] = { { "A000", "x", "", "", true, 0, 0 }, { "A000", "y", "", "", true, 0, 0 } };
		bool unchanged;
		memset(&v, 0, sizeof(v));
		snprintf(v.system, sizeof(v.system), "icd10cm");
		snprintf(v.version, sizeof(v.version), "2016");
		snprintf(v.eff_from, sizeof(v.eff_from), "2015-10-01");
		snprintf(v.eff_to, sizeof(v.eff_to), "2016-09-30");
		snprintf(v.sha256, sizeof(v.sha256), "different");
		err_clear(&e);
		assert_int_equal(store_codes_load(f->s, &v, k, 2, NULL, 0, &unchanged, &e), -1);
		assert_non_null(strstr(e.msg, "appears twice"));
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_versions(f->s, "icd10cm", count_row, &c, &e), 0);
	assert_int_equal(c.n, 983);
	assert_int_not_equal(strcmp(c.sha, "different"), 0);
	/* what was loaded answers */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_get(f->s, vkey, "S72001A", code_row, &c, &found, &e), 0);
	assert_true(found);
	assert_int_equal(store_code_get(f->s, vkey, "S72001Z", code_row, &c, &found, &e), 0);
	assert_false(found);
}

static void test_search(void **state)
{
	struct fx *f = *state;
	struct coding_load_opts o = { "icd10cm", "2016", NULL, NULL };
	struct coding_load_report r;
	struct err e = ERR_INIT;
	struct count c;
	char q[128];
	bool more;

	assert_int_equal(coding_load_file(f->s, &o, "tests/data/codes/icd10cm_order_2016.txt", &r, &e), 0);
	snprintf(q, sizeof(q), "tag : k%lld AND {display code} : (\"fract\"* AND \"right\"*)", (long long)r.v.vkey);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_search(f->s, r.v.vkey, q, NULL, 0, 3, NULL, code_row, &c, &more, &e), 0);
	assert_int_equal(c.k, 3);
	assert_true(more);
	assert_string_equal(c.codes[0], "S72001A"); /* billable first, in the file's order */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_search(f->s, r.v.vkey, NULL, "E116", 0, 8, NULL, code_row, &c, &more, &e), 0);
	assert_true(c.k > 0);
	for (size_t i = 0; i < c.k; i++)
		assert_int_equal(strncmp(c.codes[i], "E116", 4), 0);
	/* a malformed full-text query is the client's error, not the database's */
	err_clear(&e);
	assert_int_equal(store_code_search(f->s, r.v.vkey, "\"unbalanced", NULL, 0, 3, NULL, code_row, &c, &more, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
}

struct kind_seen {
	char code[16], kind[40];
	size_t n;
};

static int kind_seen_row(void *ctx, const char *code, const char *kind)
{
	struct kind_seen *k = ctx;

	snprintf(k->code, sizeof(k->code), "%s", code);
	snprintf(k->kind, sizeof(k->kind), "%s", kind);
	k->n++;
	return 0;
}

/* The batched reads $code-edits uses: one statement for many codes. */
static void test_many(void **state)
{
	struct fx *f = *state;
	struct coding_load_opts o = { "icd10cm", "2016", NULL, NULL };
	struct coding_load_opts m = { "mce", "37", NULL, NULL };
	struct coding_load_report r, rm;
	static const char *const codes[] = { "A000", "S72001A", "Q99ZZZ", "A00" };
	static const char *const dx[] = { "J189", "A33" };
	struct kind_seen ks;
	struct err e = ERR_INIT;
	struct count c;

	assert_int_equal(coding_load_file(f->s, &o, "tests/data/codes/icd10cm_order_2016.txt", &r, &e), 0);
	assert_int_equal(coding_load_file(f->s, &m, "data/codes/MCE_Simple_Code_Edits_v37.txt", &rm, &e), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_code_get_many(f->s, r.v.vkey, codes, 4, code_row, &c, &e), 0);
	assert_int_equal(c.k, 3); /* Q99ZZZ is not a code */
	memset(&ks, 0, sizeof(ks));
	assert_int_equal(store_code_edit_kinds_many(f->s, rm.v.vkey, 'D', dx, 2, kind_seen_row, &ks, &e), 0);
	assert_int_equal(ks.n, 1);
	assert_string_equal(ks.code, "A33");
	assert_string_equal(ks.kind, "Newborn_Only");
	memset(&ks, 0, sizeof(ks));
	assert_int_equal(store_code_edit_kinds_many(f->s, rm.v.vkey, 'P', dx, 2, kind_seen_row, &ks, &e), 0);
	assert_int_equal(ks.n, 0); /* A33 is on a diagnosis list, not a procedure list */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_forms),
		cmocka_unit_test(test_version_dates),
		cmocka_unit_test(test_order_files),
		cmocka_unit_test(test_hcpcs),
		cmocka_unit_test(test_hcpcs_modifier_records),
		cmocka_unit_test(test_cpt_pos_edits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_latin1),
		cmocka_unit_test_setup_teardown(test_load_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
