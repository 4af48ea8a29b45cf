/* test_x12.c - the X12 engine: tokeniser, envelopes, loop recognition,
 * validation, 999/TA1, JSON and the encoder.
 *
 * The CLI and its data files (tests/x12/run.sh) cover whole files against
 * expected 999s; these tests pin the pieces: delimiters from the ISA, the
 * window refill, each reader error with its TA1 code, the loops a sink
 * sees, the date rules, and the encoder's recomputed trailers and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/base.h"
#include "revenue/x12.h"
#include "revenue/x12_int.h"
#include "base/banned.h"

#define ISA "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240229*1200*^*00501*000000001*0*T*:~"

/* A small valid 837P (one claim, one line). */
static const char claim[] =
	ISA "\n"
	"GS*HC*SENDER*RECEIVER*20240229*1200*7*X*005010X222A1~\n"
	"ST*837*0001*005010X222A1~\n"
	"BHT*0019*00*REF1*20240229*1200*CH~\n"
	"NM1*41*2*SUBMITTER*****46*S1~\n"
	"PER*IC*CONTACT*TE*5555551212~\n"
	"NM1*40*2*RECEIVER*****46*R1~\n"
	"HL*1**20*1~\n"
	"NM1*85*2*BILLING*****XX*1234567893~\n"
	"N3*1 MAIN ST~\n"
	"N4*TOWN*FL*33111~\n"
	"REF*EI*123456789~\n"
	"HL*2*1*22*0~\n"
	"SBR*P*18*******CI~\n"
	"NM1*IL*1*DOE*JANE****MI*ID1~\n"
	"NM1*PR*2*PAYER*****PI*P1~\n"
	"CLM*C1*100.00***11:B:1*Y*A*Y*Y~\n"
	"HI*ABK:J069~\n"
	"LX*1~\n"
	"SV1*HC:99213*100.00*UN*1***1~\n"
	"DTP*472*D8*20240228~\n"
	"SE*20*0001~\n"
	"GE*1*7~\n"
	"IEA*1*000000001~\n";

/* ---- a sink that records what it is told ---- */

struct rec {
	struct buf log;
};

static void r_open(void *u, int kind, const char *id, size_t n, const char *name,
		   const struct x12_delims *d, const char *guide)
{
	struct rec *r = u;

	(void)name;
	(void)d;
	(void)guide;
	buf_addf(&r->log, "(%d:%.*s ", kind, (int)n, id);
}

static void r_seg(void *u, const struct x12_seg *s, const struct x12_node *nd,
		  const struct x12_delims *d)
{
	struct rec *r = u;

	(void)d;
	buf_addf(&r->log, "%s%s ", s->id, nd ? "" : "?");
}

static void r_close(void *u, int kind)
{
	struct rec *r = u;

	(void)kind;
	buf_addstr(&r->log, ") ");
}

/* Validate text; the acknowledgement goes into *ack (caller frees). */
static int run_text(const char *text, size_t n, struct x12_stats *st, char **ack, struct rec *rec)
{
	struct x12_reader r;
	struct x12_opts o = { 0 };
	struct x12_sink sink = { rec, r_open, r_seg, r_close };
	struct err e = ERR_INIT;
	size_t len = 0;
	FILE *f = open_memstream(ack, &len);
	int rc;

	assert_non_null(f);
	o.now = "202601011200";
	o.ack_out = f;
	x12_reader_init_mem(&r, text, n);
	rc = x12_process(&r, rec ? &sink : NULL, &o, st, NULL, &e);
	x12_reader_release(&r);
	fclose(f);
	return rc;
}

static void test_tokeniser_delimiters(void **state)
{
	/* element |, repetition !, component >, terminator newline-free ' */
	static const char text[] =
		"ISA|00|          |00|          |ZZ|SENDER         |ZZ|RECEIVER       |240229|1200|!|00501|000000001|0|T|>'"
		"GS|HC|A|B|20240229|1200|1|X|005010X222A1'\r\n"
		"IEA|1|000000001'";
	struct x12_reader r;
	struct x12_seg s;
	struct err e = ERR_INIT;
	size_t n;
	const char *v;

	(void)state;
	x12_reader_init_mem(&r, text, sizeof(text) - 1);
	assert_int_equal(x12_reader_next(&r, &s, &e), 1);
	assert_string_equal(s.id, "ISA");
	assert_int_equal(s.n, 16);
	assert_int_equal(r.d.ele, '|');
	assert_int_equal(r.d.rep, '!');
	assert_int_equal(r.d.comp, '>');
	assert_int_equal(r.d.seg, '\'');
	v = x12_ele(&s, 6, &n);
	assert_int_equal(n, 15);
	assert_memory_equal(v, "SENDER         ", 15);
	assert_int_equal(s.suffix_len, 0);
	assert_int_equal(x12_reader_next(&r, &s, &e), 1);
	assert_string_equal(s.id, "GS");
	assert_int_equal(s.suffix_len, 2);
	assert_memory_equal(s.suffix, "\r\n", 2);
	v = x12_ele(&s, 8, &n);
	assert_memory_equal(v, "005010X222A1", n);
	v = x12_ele(&s, 9, &n); /* past the last */
	assert_int_equal(n, 0);
	assert_int_equal(x12_reader_next(&r, &s, &e), 1);
	assert_string_equal(s.id, "IEA");
	assert_int_equal(x12_reader_next(&r, &s, &e), 0);
	x12_reader_release(&r);
}

/* The 4010 ISA11 is "U", not a repetition separator. */
static void test_tokeniser_4010_no_repetition(void **state)
{
	static const char text[] =
		"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240229*1200*U*00401*000000001*0*T*:~";
	struct x12_reader r;
	struct x12_seg s;
	struct err e = ERR_INIT;

	(void)state;
	x12_reader_init_mem(&r, text, sizeof(text) - 1);
	assert_int_equal(x12_reader_next(&r, &s, &e), 1);
	assert_int_equal(r.d.rep, 0);
	x12_reader_release(&r);
}

struct bad_case {
	const char *name;
	const char *text;
	int ta1;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{ "empty", "", 0, "the input is empty (0 bytes)" },
	{ "not x12", "hello world, this is not an interchange at all", 0,
	  "not an X12 interchange: byte 0 is not the start of an ISA" },
	{ "short isa", "ISA*00*", X12_TA1_EOF, "the input ends inside the ISA at byte 0" },
	{ "alnum separator",
	  "ISAA00A          A00A          AZZASENDER         AZZARECEIVER       A240229A1200A^A00501A000000001A0ATA:~",
	  X12_TA1_BAD_ELE_SEP, "the ISA at byte 0 has an invalid element separator" },
	{ "terminator = component",
	  "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240229*1200*^*00501*000000001*0*T*::",
	  X12_TA1_BAD_COMP_SEP, "the ISA at byte 0 has an invalid component separator (ISA16)" },
	{ "repetition = component",
	  "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240229*1200*:*00501*000000001*0*T*:~",
	  X12_TA1_BAD_STRUCTURE, "the ISA at byte 0 has an invalid repetition separator (ISA11)" },
	{ "no terminator", ISA "GS*HC", X12_TA1_EOF,
	  "the input ends inside the segment at byte 106 (no terminator)" },
	{ "no IEA", ISA, X12_TA1_EOF, "the input ends at byte 106 before the IEA" },
	{ "garbage after IEA", ISA "IEA*0*000000001~junk", X12_TA1_BAD_STRUCTURE,
	  "data after the IEA at byte 122 is not an interchange" },
};

static void test_tokeniser_errors(void **state)
{
	const struct bad_case *c = *state;
	struct x12_reader r;
	struct x12_seg s;
	struct err e = ERR_INIT;
	int rc;

	x12_reader_init_mem(&r, c->text, strlen(c->text));
	while ((rc = x12_reader_next(&r, &s, &e)) == 1)
		;
	assert_int_equal(rc, -1);
	assert_int_equal(r.ta1, c->ta1);
	assert_string_equal(e.msg, c->msg);
	/* sticky */
	assert_int_equal(x12_reader_next(&r, &s, &e), -1);
	x12_reader_release(&r);
}

/* Segments that straddle the window are whole; counts survive refills. */
static void test_tokeniser_window(void **state)
{
	char path[] = "/tmp/ck-x12-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct x12_reader r;
	struct x12_seg s;
	struct err e = ERR_INIT;
	unsigned long long segs = 0, clm = 0;
	const unsigned claims = 60000; /* ~3 MB: more than one window */

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(ISA "\nGS*HC*A*B*20240229*1200*1*X*005010X222A1~\nST*837*0001~\n", f);
	for (unsigned i = 0; i < claims; i++)
		fprintf(f, "CLM*C%u*100.00***11:B:1*Y*A*Y*Y~\r\nNTE*ADD*%040u~\n", i, i);
	fputs("SE*3*0001~\nGE*1*1~\nIEA*1*000000001~\n", f);
	fclose(f);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(x12_reader_init_fd(&r, fd, 0, &e), 0);
	while (x12_reader_next(&r, &s, &e) == 1) {
		segs++;
		if (strcmp(s.id, "CLM") == 0) {
			size_t n;
			const char *v = x12_ele(&s, 1, &n);
			char want[16];

			snprintf(want, sizeof(want), "C%llu", clm);
			assert_int_equal(n, strlen(want));
			assert_memory_equal(v, want, n);
			assert_int_equal(s.n, 9);
			assert_int_equal(s.suffix_len, 2);
			clm++;
		}
	}
	assert_int_equal(e.code, ERR_NONE);
	assert_int_equal(clm, claims);
	assert_int_equal(segs, 2ull * claims + 6);
	x12_reader_release(&r);
	close(fd);
	unlink(path);
}

static void test_valid_claim(void **state)
{
	struct x12_stats st;
	char *ack = NULL;
	struct rec rec;

	(void)state;
	buf_init(&rec.log, 0);
	assert_int_equal(run_text(claim, sizeof(claim) - 1, &st, &ack, &rec), 0);
	assert_int_equal(st.interchanges, 1);
	assert_int_equal(st.groups, 1);
	assert_int_equal(st.transactions, 1);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.errors, 0);
	assert_string_equal(ack,
			    "ISA*00*          *00*          *ZZ*RECEIVER       *ZZ*SENDER         *260101*1200*^*00501*000000001*0*T*:~\n"
			    "GS*FA*RECEIVER*SENDER*20260101*1200*1*X*005010X231A1~\n"
			    "ST*999*0001*005010X231A1~\n"
			    "AK1*HC*7*005010X222A1~\n"
			    "AK2*837*0001*005010X222A1~\n"
			    "IK5*A~\n"
			    "AK9*A*1*1*1~\n"
			    "SE*6*0001~\n"
			    "GE*1*1~\n"
			    "IEA*1*000000001~\n");
	/* loops by the guide's ids, nested as the guide nests them */
	assert_string_equal(buf_cstr(&rec.log),
			    "(0:000000001 ISA (1:7 GS (2:0001 ST BHT (3:1000A NM1 PER ) (3:1000B NM1 ) "
			    "(3:2000A HL (3:2010AA NM1 N3 N4 REF ) (3:2000B HL SBR (3:2010BA NM1 ) "
			    "(3:2010BB NM1 ) (3:2300 CLM HI (3:2400 LX SV1 DTP ) ) ) ) SE ) GE ) IEA ) ");
	buf_release(&rec.log);
	free(ack);
}

/* Replace the first `from` in claim by `to`; the caller frees. */
static char *variant(const char *from, const char *to)
{
	const char *p = strstr(claim, from);
	struct buf b = BUF_INIT(0);

	assert_non_null(p);
	buf_add(&b, claim, (size_t)(p - claim));
	buf_addstr(&b, to);
	buf_addstr(&b, p + strlen(from));
	return buf_detach(&b, NULL);
}

struct vcase {
	const char *name, *from, *to, *expect;
};

static const struct vcase vcases[] = {
	{ "leap day", "DTP*472*D8*20240228~", "DTP*472*D8*20240229~", "IK5*A~" },
	{ "not a leap year", "DTP*472*D8*20240228~", "DTP*472*D8*20230229~",
	  "IK3*DTP*19*2400*8~\nIK4*3*1251*8*20230229~" },
	{ "range", "DTP*472*D8*20240228~", "DTP*472*RD8*20240201-20240228~", "IK5*A~" },
	{ "range backwards", "DTP*472*D8*20240228~", "DTP*472*RD8*20240228-20240201~",
	  "IK4*3*1251*8*20240228-20240201~" },
	{ "bad time", "BHT*0019*00*REF1*20240229*1200*CH~", "BHT*0019*00*REF1*20240229*2460*CH~",
	  "IK4*5*337*9*2460~" },
	{ "too short", "N4*TOWN*FL*33111~", "N4*TOWN*F*33111~", "IK4*2*156*4*F~" },
	{ "numeric", "SV1*HC:99213*100.00*UN*1***1~", "SV1*HC:99213*100.00*UN*1***X~",
	  "IK4*7:1*1328*6*X~" },
	{ "component required", "SV1*HC:99213*", "SV1*HC*", "IK4*1:2*234*1~" },
	{ "too many components", "SV1*HC:99213*", "SV1*HC:99213:::::::X*", "IK4*1:9**13~" },
	{ "not used element", "NM1*IL*1*DOE*JANE****MI*ID1~", "NM1*IL*1*DOE*JANE****MI*ID1*X~",
	  "IK4*10*706*I10~" },
	{ "exclusion", "N4*TOWN*FL*33111~", "N4*TOWN*FL*33111*CA***ON~", "IK4*7*1715*10~" },
	{ "too many elements", "N3*1 MAIN ST~", "N3*1 MAIN ST**X~", "IK4*3**3~" },
	{ "conditional", "HL*1**20*1~\n", "HL*1**20*1~\nCUR*85*USD*******ZZ~\n", "IK4*7*374*2~" },
	{ "list conditional", "HL*1**20*1~\n", "HL*1**20*1~\nCUR*85*USD********ZZ~\n", "IK4*11*373*2~" },
	{ "bad qualifier placed by id", "DTP*472*D8*20240228~", "DTP*999*D8*20240228~",
	  "IK3*DTP*19*2400*8~\nIK4*1*374*7*999~" },
	{ "hl numbering", "HL*2*1*22*0~", "HL*3*1*22*0~", "IK4*1*628*I12*3~" },
	{ "hl parent", "HL*2*1*22*0~", "HL*2*4*22*0~", "IK4*2*734*I12*4~" },
	{ "hl child code", "HL*1**20*1~", "HL*1**20*0~", "IK4*4*736*7*0~" },
	{ "required segment", "N4*TOWN*FL*33111~\n", "", "IK3*N4*10*2010*3~" },
	{ "unrecognised id", "LX*1~", "LX*1~\nlx*2~", "IK3*lx*18*2400*1~" },
	{ "st03 addenda", "ST*837*0001*005010X222A1~", "ST*837*0001*005010X222A2~", "IK5*A~" },
	{ "unknown guide", "ST*837*0001*005010X222A1~", "ST*837*0001*005010X999~", "IK5*R*1~" },
};

static void test_validation_cases(void **state)
{
	const struct vcase *c = *state;
	char *text = variant(c->from, c->to), *ack = NULL;
	struct x12_stats st;

	assert_int_equal(run_text(text, strlen(text), &st, &ack, NULL), 0);
	if (!strstr(ack, c->expect))
		fail_msg("%s: expected %s in\n%s", c->name, c->expect, ack);
	free(text);
	free(ack);
}

struct ecase {
	const char *name, *json, *out, *err;
};

static const struct ecase ecases[] = {
	{ "short form, our delimiters, counts recomputed",
	  "{\"interchanges\":[{\"content\":["
	  "{\"segment\":\"ISA\",\"elements\":[\"00\",\"          \",\"00\",\"          \",\"ZZ\","
	  "\"A              \",\"ZZ\",\"B              \",\"240101\",\"1200\",\"^\",\"00501\","
	  "\"000000042\",\"0\",\"T\",\":\"]},"
	  "{\"group\":\"5\",\"content\":[{\"segment\":\"GS\",\"elements\":[\"HC\",\"A\",\"B\","
	  "\"20240101\",\"1200\",\"5\",\"X\",\"005010X222A1\"]},"
	  "{\"transaction\":\"0001\",\"content\":[{\"segment\":\"ST\",\"elements\":[\"837\",\"0001\"]},"
	  "{\"segment\":\"REF\",\"elements\":[\"EI\",{\"components\":[\"A\",{\"value\":\"B\"}]},"
	  "{\"repeats\":[{\"value\":\"X\"},{\"components\":[\"Y\",\"Z\"]}]}]},"
	  "{\"segment\":\"SE\",\"elements\":[\"99\",\"9999\"]}]},"
	  "{\"segment\":\"GE\",\"elements\":[\"7\",\"7\"]}]},"
	  "{\"segment\":\"IEA\",\"elements\":[\"9\",\"9\"]}]}]}",
	  "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*^*00501*000000042*0*T*:~\n"
	  "GS*HC*A*B*20240101*1200*5*X*005010X222A1~\n"
	  "ST*837*0001~\nREF*EI*A:B*X^Y:Z~\nSE*3*0001~\nGE*1*5~\nIEA*1*000000042~\n",
	  NULL },
	{ "not interchanges", "{\"x\":1}", NULL, "(top): expected {\"interchanges\": [...]}" },
	{ "not json", "{", NULL, NULL },
	{ "delimiter in a value",
	  "{\"interchanges\":[{\"content\":[{\"segment\":\"NM1\",\"elements\":[\"A*B\"]}]}]}", NULL,
	  "interchanges[0].content[0]: a value holds a delimiter" },
	{ "bad element",
	  "{\"interchanges\":[{\"content\":[{\"segment\":\"NM1\",\"elements\":[7]}]}]}", NULL,
	  "interchanges[0].content[0]: an element is neither a string nor an object with value, components or repeats" },
	{ "bad segment id",
	  "{\"interchanges\":[{\"content\":[{\"segment\":\"TOOLONG\",\"elements\":[]}]}]}", NULL,
	  "interchanges[0].content[0]: \"segment\" must be a segment id of 2 or 3 characters" },
	{ "bad suffix",
	  "{\"interchanges\":[{\"delimiters\":{\"element\":\"*\",\"repetition\":\"^\",\"component\":\":\",\"segment\":\"~\"},"
	  "\"content\":[{\"segment\":\"NM1\",\"suffix\":\"x\",\"elements\":[]}]}]}", NULL,
	  "interchanges[0].content[0]: \"suffix\" may hold only up to 7 CR and LF characters" },
	{ "bad delimiter",
	  "{\"interchanges\":[{\"delimiters\":{\"element\":\"**\",\"component\":\":\",\"segment\":\"~\"},"
	  "\"content\":[]}]}", NULL, "interchanges[0]: each delimiter must be one character" },
};

static void test_encode_cases(void **state)
{
	const struct ecase *c = *state;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	int rc = x12_encode_json(c->json, strlen(c->json), c->out != NULL && strstr(c->name, "our"),
				 &out, &e);

	if (c->out) {
		assert_int_equal(rc, 0);
		assert_string_equal(buf_cstr(&out), c->out);
	} else {
		assert_int_equal(rc, -1);
		assert_int_equal(e.code, ERR_INVALID);
		if (c->err)
			assert_string_equal(e.msg, c->err);
	}
	buf_release(&out);
}

/* parse then encode gives back the same bytes, whatever the delimiters. */
static void test_round_trip(void **state)
{
	struct x12_reader r;
	struct x12_opts o = { 0 };
	struct x12_sink sink;
	struct x12_stats st;
	struct err e = ERR_INIT;
	char *json = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);
	struct x12_json *j = x12_json_new(f);
	struct buf out = BUF_INIT(0);
	char *text = variant("~\n", "~\r\n");

	(void)state;
	x12_json_sink(j, &sink);
	o.no_validate = true;
	x12_reader_init_mem(&r, text, strlen(text));
	assert_int_equal(x12_process(&r, &sink, &o, &st, NULL, &e), 0);
	assert_int_equal(x12_json_finish(j, &e), 0);
	fclose(f);
	assert_int_equal(x12_encode_json(json, len, false, &out, &e), 0);
	assert_string_equal(buf_cstr(&out), text);
	assert_non_null(strstr(json, "\"loop\":\"2010AA\",\"name\":\"Billing Provider Name\""));
	assert_non_null(strstr(json, "{\"id\":\"NM103\",\"name\":\"Billing Provider Last or Organizational Name\",\"value\":\"BILLING\"}"));
	x12_reader_release(&r);
	x12_json_free(j);
	buf_release(&out);
	free(json);
	free(text);
}

/* The generated tables hold what the generator read. */
static void test_tables(void **state)
{
	bool seen_837p = false;

	(void)state;
	assert_true(x12_n_maps >= 8);
	for (size_t i = 0; i < x12_n_maps; i++) {
		const struct x12_map *m = &x12_maps[i];

		assert_int_equal(m->nodes[0].kind, X12_N_LOOP);
		assert_string_equal(m->nodes[0].seg, "ST");
		if (strcmp(m->guide, "005010X222") == 0)
			seen_837p = true;
		for (uint32_t k = 0; k < m->n_nodes; k++) {
			const struct x12_node *n = &m->nodes[k];

			if (n->ncodes > 1)
				for (uint32_t c = n->codes + 1; c < n->codes + n->ncodes; c++)
					assert_true(strcmp(x12_codes[c - 1], x12_codes[c]) < 0);
			if (n->parent >= 0)
				assert_true(n->ord < m->nodes[n->parent].nkids);
		}
	}
	assert_true(seen_837p);
}

int main(void)
{
	struct CMUnitTest bad[sizeof(bad_cases) / sizeof(bad_cases[0])];
	struct CMUnitTest val[sizeof(vcases) / sizeof(vcases[0])];
	struct CMUnitTest enc[sizeof(ecases) / sizeof(ecases[0])];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokeniser_delimiters),
		cmocka_unit_test(test_tokeniser_4010_no_repetition),
		cmocka_unit_test(test_tokeniser_window),
		cmocka_unit_test(test_valid_claim),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tables),
	};
	int failed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		bad[i] = (struct CMUnitTest){ bad_cases[i].name, test_tokeniser_errors, NULL, NULL,
					      (void *)&bad_cases[i] };
	for (size_t i = 0; i < ARRAY_SIZE(val); i++)
		val[i] = (struct CMUnitTest){ vcases[i].name, test_validation_cases, NULL, NULL,
					      (void *)&vcases[i] };
	for (size_t i = 0; i < ARRAY_SIZE(enc); i++)
		enc[i] = (struct CMUnitTest){ ecases[i].name, test_encode_cases, NULL, NULL,
					      (void *)&ecases[i] };
	failed += _cmocka_run_group_tests("x12_reader_errors", bad, ARRAY_SIZE(bad), NULL, NULL);
	failed += _cmocka_run_group_tests("x12_validation", val, ARRAY_SIZE(val), NULL, NULL);
	failed += _cmocka_run_group_tests("x12_encode", enc, ARRAY_SIZE(enc), NULL, NULL);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed ? 1 : 0;
}
