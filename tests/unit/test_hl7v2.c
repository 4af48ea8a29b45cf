/* test_hl7v2.c - src/hl7v2: parser, accessor, escapes, character sets,
 * JSON dump, ACKs, MLLP framing.
 *
 * Data-driven where it can be: every sample in tests/data/hl7v2/samples
 * parses (the three without an MSH are refused); every
 * tests/data/hl7v2/parse/NNN-name.hl7 dumps to its NNN-name.json (written
 * by hand-checking the first output; a change in it is a change in
 * behaviour).  Malformed inputs are a table: input, the words the error
 * must contain. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "store/store.h"
#include "base/banned.h"

#define SAMPLES "tests/data/hl7v2/samples"
#define PARSE "tests/data/hl7v2/parse"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT(0);
	char chunk[8192];
	size_t n;

	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	buf_cstr(&b);
	return buf_detach(&b, len);
}

/* Parse every message of text; returns how many failed. */
static size_t parse_all(const char *text, size_t len, struct buf *dump, struct err *e)
{
	struct arena a;
	struct hl7_span sp;
	size_t pos = 0, bad = 0, n = 0;

	arena_init(&a, 0);
	if (dump)
		buf_addstr(dump, "[");
	while (hl7_next_message(text, len, &pos, &sp) == 1) {
		struct hl7_msg m;
		arena_reset(&a);
		n++;
		if (hl7_parse(text + sp.off, sp.len, &a, &m, e) < 0) {
			bad++;
			continue;
		}
		if (dump) {
			if (n > 1)
				buf_addch(dump, ',');
			hl7_dump_json(&m, dump);
			buf_addch(dump, '\n');
		}
	}
	if (dump)
		buf_addstr(dump, "]\n");
	arena_release(&a);
	return n == 0 ? 1 : bad;
}

static void test_samples_parse(void **state)
{
	DIR *d = opendir(SAMPLES);
	struct dirent *de;
	size_t files = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		size_t len, bad;
		char *text;
		struct err e = ERR_INIT;
		bool must_fail;

		if (!strstr(de->d_name, ".hl7"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", SAMPLES, de->d_name);
		text = slurp(path, &len);
		bad = parse_all(text, len, NULL, &e);
		must_fail = strcmp(de->d_name, "sample_bad_batch.hl7") == 0 ||
			    strcmp(de->d_name, "sample_bad_file.hl7") == 0 ||
			    strcmp(de->d_name, "sample_bad_file3.hl7") == 0;
		if ((bad != 0) != must_fail)
			fail_msg("%s: %s (%s)", de->d_name, must_fail ? "parsed, but has no MSH" : "failed",
				 e.msg);
		free(text);
		files++;
	}
	closedir(d);
	assert_true(files >= 150);
}

static void test_parse_expected_json(void **state)
{
	DIR *d = opendir(PARSE);
	struct dirent *de;
	size_t files = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512], jpath[512];
		size_t len, jlen, nl = strlen(de->d_name);
		char *text, *want;
		struct buf got = BUF_INIT(0);
		struct err e = ERR_INIT;

		if (nl < 5 || strcmp(de->d_name + nl - 4, ".hl7") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", PARSE, de->d_name);
		snprintf(jpath, sizeof(jpath), "%s/%.*s.json", PARSE, (int)(nl - 4), de->d_name);
		text = slurp(path, &len);
		want = slurp(jpath, &jlen);
		assert_int_equal(parse_all(text, len, &got, &e), 0);
		if (strcmp(buf_cstr(&got), want) != 0)
			fail_msg("%s: JSON differs from %s:\n%s", de->d_name, jpath, buf_cstr(&got));
		buf_release(&got);
		free(text);
		free(want);
		files++;
	}
	closedir(d);
	assert_true(files >= 10);
}

/* ---- the accessor ---- */

static const char *const ORU =
	"MSH|^~\\&|LAB|HOSP|CK|HOSP|20240101120000||ORU^R01^ORU_R01|C1|P|2.5.1\r"
	"PID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^SSA^SS||DOE^JOHN^Q~ROE^RICHARD||19800101|M\r"
	"OBR|1|||GLU^Glucose\r"
	"OBX|1|NM|GLU^Glucose||5.5|mmol/L|3.9-6.1|N|||F\r"
	"OBX|2|ST|NOTE^Note||first\r"
	"OBX|3|TX|NOTE^Note||third \\T\\ value||||||F\r"
	"ZZZ|custom\r";

static const struct {
	const char *path, *want;
	int rc;
} paths[] = {
	{ "PID-5", "DOE^JOHN^Q~ROE^RICHARD", 0 },
	{ "PID-5.1", "DOE", 0 },
	{ "PID-5[2].1", "ROE", 0 },
	{ "PID-5[2].2", "RICHARD", 0 },
	{ "PID-5[3].1", "", 0 },
	{ "PID-3[1].4.2", "1.2.3", 0 },
	{ "PID-3[2].5", "SS", 0 },
	{ "PID-99", "", 0 },
	{ "OBX(3)-5", "third & value", 0 },
	{ "OBX(2)-5", "first", 0 },
	{ "OBX-6", "mmol/L", 0 },
	{ "OBX(4)-5", "", 1 },
	{ "MSH-1", "|", 0 },
	{ "MSH-2", "^~\\&", 0 },
	{ "MSH-9.2", "R01", 0 },
	{ "MSH-10", "C1", 0 },
	{ "ZZZ-1", "custom", 0 },
	{ "NK1-2", "", 1 },
	{ "PID.5.1", "DOE", 0 },
};

static void test_accessor(void **state)
{
	struct arena a;
	struct hl7_msg m;
	struct err e = ERR_INIT;

	(void)state;
	arena_init(&a, 0);
	assert_int_equal(hl7_parse(ORU, strlen(ORU), &a, &m, &e), 0);
	assert_string_equal(m.type, "ORU");
	assert_string_equal(m.event, "R01");
	assert_string_equal(m.structure, "ORU_R01");
	assert_string_equal(m.version, "2.5.1");
	assert_int_equal(m.nsegs, 7);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct buf b = BUF_INIT(0);
		int rc = hl7_get_str(&m, paths[i].path, &b, &e);
		if (rc != paths[i].rc || strcmp(buf_cstr(&b), paths[i].want) != 0)
			fail_msg("%s: got %d '%s', want %d '%s'", paths[i].path, rc, buf_cstr(&b), paths[i].rc,
				 paths[i].want);
		buf_release(&b);
	}
	arena_release(&a);
}

static void test_bad_paths(void **state)
{
	static const char *const bad[] = { "", "PI", "pid-5", "PID-0", "PID-5[0]", "PID-5[",
					   "PID(0)-5", "PID-5.1.2.3", "PID-x", "PID-5 ", "PID-999999" };
	struct hl7_path p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e = ERR_INIT;
		if (hl7_path_parse(bad[i], &p, &e) == 0)
			fail_msg("path '%s' accepted", bad[i]);
		assert_int_equal(e.code, ERR_INVALID);
		assert_non_null(strstr(e.msg, "bad path"));
	}
}

/* ---- malformed input: the error names what and where ---- */

static const struct {
	const char *name, *text;
	size_t len;     /* 0: strlen */
	const char *want;
} bad_msgs[] = {
	{ "empty", "", 0, "does not start with an MSH" },
	{ "no MSH", "PID|1||123\r", 0, "does not start with an MSH" },
	{ "junk", "\x01\x02\x03garbage", 0, "does not start with an MSH" },
	{ "cut short", "MSH", 0, "cut short" },
	{ "alnum separator", "MSHA^~\\&|x\r", 0, "MSH-1" },
	{ "few encoding chars", "MSH|^~|A\r", 0, "MSH-2: the encoding characters must be 4" },
	{ "repeated encoding chars", "MSH|^^\\&|A\r", 0, "encoding characters 1 and 2 are the same" },
	{ "encoding repeats separator", "MSH|^~|&|A\r", 0, "MSH-2" },
	{ "six encoding chars", "MSH|^~\\&#!|A\r", 0, "more than 5" },
	{ "lower-case segment", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rpid|1\r", 0,
	  "segment 2: a segment must start with a 3-character name" },
	{ "short segment name", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPI|1\r", 0,
	  "byte offset 36" },
	{ "control char", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1|\x01x\r", 0,
	  "segment 2 (PID), field 2: control character 0x01 (byte offset 42)" },
	{ "NUL byte", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1|a\0b\r", 46,
	  "control character 0x00" },
	{ "second MSH", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rMSH|^~\\&|A\r", 0, "a second MSH" },
	{ "bad utf-8", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|1|\xc3\x28\r", 0,
	  "is not valid UTF-8" },
	{ "unknown charset", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||EBCDIC\r", 0,
	  "unknown character set" },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_msgs) / sizeof(bad_msgs[0]); i++) {
		struct arena a;
		struct hl7_msg m;
		struct err e = ERR_INIT;
		size_t len = bad_msgs[i].len ? bad_msgs[i].len : strlen(bad_msgs[i].text);

		arena_init(&a, 0);
		if (hl7_parse(bad_msgs[i].text, len, &a, &m, &e) == 0)
			fail_msg("%s: parsed", bad_msgs[i].name);
		if (!strstr(e.msg, bad_msgs[i].want))
			fail_msg("%s: message '%s' lacks '%s'", bad_msgs[i].name, e.msg, bad_msgs[i].want);
		arena_release(&a);
	}
}

static void test_too_many_fields(void **state)
{
	struct buf b = BUF_INIT(0);
	struct arena a;
	struct hl7_msg m;
	struct err e = ERR_INIT;

	(void)state;
	buf_addstr(&b, "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rZXX");
	for (int i = 0; i < HL7_MAX_FIELDS + 5; i++)
		buf_addch(&b, '|');
	arena_init(&a, 0);
	assert_int_equal(hl7_parse(b.data, b.len, &a, &m, &e), -1);
	assert_int_equal(e.code, ERR_TOO_LARGE);
	assert_non_null(strstr(e.msg, "ZXX"));
	/* the header was read all the same: the rejection can name the message */
	assert_string_equal(m.control_id, "1");
	arena_release(&a);
	buf_release(&b);
}

/* ---- escapes ---- */

static void test_escape_round_trip(void **state)
{
	static const char *const texts[] = { "plain", "a|b^c~d\\e&f", "line1\nline2", "", "\\E\\ literal",
					     "caf\xc3\xa9 #" };
	struct hl7_delims d = { '|', '^', '~', '\\', '&', '#' };

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct buf enc = BUF_INIT(0), dec = BUF_INIT(0), msg = BUF_INIT(0);
		struct arena a;
		struct hl7_msg m;
		struct err e = ERR_INIT;

		hl7_escape(&d, texts[i], strlen(texts[i]), &enc);
		assert_null(memchr(buf_cstr(&enc), '|', enc.len));
		assert_null(memchr(buf_cstr(&enc), '\n', enc.len));
		buf_addstr(&msg, "MSH|^~\\&#|A|B|C|D|1||ADT^A01|1|P|2.7\rZTX|");
		buf_add(&msg, enc.data, enc.len);
		arena_init(&a, 0);
		assert_int_equal(hl7_parse(msg.data, msg.len, &a, &m, &e), 0);
		hl7_get_str(&m, "ZTX-1", &dec, &e);
		assert_string_equal(buf_cstr(&dec), texts[i]);
		arena_release(&a);
		buf_release(&enc);
		buf_release(&dec);
		buf_release(&msg);
	}
}

static void test_unescape_odd(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "a\\X41\\b", "aAb" },
		{ "\\XC3A9\\", "\xc3\xa9" },
		{ "\\XE9\\", "\xc3\xa9" },              /* 8859/1 byte: as its code point */
		{ "unterminated \\F", "unterminated \\F" },
		{ "\\Q\\", "\\Q\\" },                   /* unknown: as written */
		{ "\\H\\x\\N\\", "x" },
		{ "a\\.sp\\b\\.in+4\\c", "a\nbc" },
		{ "\\C2842\\x", "x" },
		{ "\\P\\", "\\P\\" },                   /* no truncation character before 2.7 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf msg = BUF_INIT(0), out = BUF_INIT(0);
		struct arena a;
		struct hl7_msg m;
		struct err e = ERR_INIT;

		buf_addstr(&msg, "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rZTX|");
		buf_addstr(&msg, cases[i].in);
		arena_init(&a, 0);
		assert_int_equal(hl7_parse(msg.data, msg.len, &a, &m, &e), 0);
		hl7_get_str(&m, "ZTX-1", &out, &e);
		if (strcmp(buf_cstr(&out), cases[i].want) != 0)
			fail_msg("'%s': got '%s', want '%s'", cases[i].in, buf_cstr(&out), cases[i].want);
		arena_release(&a);
		buf_release(&msg);
		buf_release(&out);
	}
}

static void test_charset_iconv(void **state)
{
	/* 8859/2: 0xB9 is s with caron (U+0161) */
	const char text[] = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||8859/2\rPID|1||1||\xb9ula\r";
	struct arena a;
	struct hl7_msg m;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT(0);

	(void)state;
	arena_init(&a, 0);
	assert_int_equal(hl7_parse(text, strlen(text), &a, &m, &e), 0);
	assert_true(m.converted);
	hl7_get_str(&m, "PID-5", &b, &e);
	assert_string_equal(buf_cstr(&b), "\xc5\xa1ula");
	arena_release(&a);
	buf_release(&b);
}

/* ---- batches ---- */

static void test_batch_split(void **state)
{
	const char text[] = "FHS|^~\\&|A\rBHS|^~\\&|A\r"
			    "MSH|^~\\&|A|B|C|D|1||ADT^A01|M1|P|2.5\rPID|1\r"
			    "MSH|^~\\&|A|B|C|D|1||ADT^A01|M2|P|2.5\rPID|2\r"
			    "BTS|2\rFTS|1\r";
	struct hl7_span sp;
	size_t pos = 0, n = 0;

	(void)state;
	while (hl7_next_message(text, strlen(text), &pos, &sp) == 1) {
		n++;
		assert_memory_equal(text + sp.off, "MSH", 3);
		assert_true(sp.len == strlen("MSH|^~\\&|A|B|C|D|1||ADT^A01|M1|P|2.5\rPID|1\r"));
	}
	assert_int_equal(n, 2);
}

/* ---- ACKs ---- */

static void ack_for(const char *msg, int code, const struct hl7_ack_err *err, struct buf *out)
{
	struct arena a;
	struct hl7_msg m;
	struct err e = ERR_INIT;

	arena_init(&a, 0);
	hl7_parse(msg, strlen(msg), &a, &m, &e);
	hl7_ack_build(&m, code, err, "ACK1", 1704110400000LL, out);
	arena_release(&a);
}

static void test_ack_original(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	ack_for("MSH|^~\\&|SAPP|SFAC|RAPP|RFAC|20240101||ADT^A01^ADT_A01|CTRL9|P|2.5.1\rPID|1\r", HL7_AA,
		NULL, &b);
	assert_string_equal(buf_cstr(&b),
			    "MSH|^~\\&|RAPP|RFAC|SAPP|SFAC|20240101120000+0000||ACK^A01^ACK|ACK1|P|2.5.1\r"
			    "MSA|AA|CTRL9\r");
	buf_release(&b);
}

static void test_ack_error_versions(void **state)
{
	struct hl7_ack_err err = { "101", "required field missing", "PID", 1, 3, 'E' };
	struct buf b = BUF_INIT(0);

	(void)state;
	/* 2.3: MSA-3 text and ERR-1, in the sender's delimiters */
	ack_for("MSH$%*!@$SAPP$SFAC$RAPP$RFAC$20240101$$ADT%A01$C2$P$2.3\rPID$1\r", HL7_AE, &err, &b);
	assert_string_equal(buf_cstr(&b),
			    "MSH$%*!@$RAPP$RFAC$SAPP$SFAC$20240101120000+0000$$ACK%A01$ACK1$P$2.3\r"
			    "MSA$AE$C2$required field missing\r"
			    "ERR$PID%1%3%101@required field missing@HL70357\r");
	buf_reset(&b);
	/* 2.5+: ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 message */
	ack_for("MSH|^~\\&|SAPP|SFAC|RAPP|RFAC|20240101||ADT^A01|C3|P|2.8\rPID|1\r", HL7_AR, &err, &b);
	assert_string_equal(buf_cstr(&b),
			    "MSH|^~\\&|RAPP|RFAC|SAPP|SFAC|20240101120000+0000||ACK^A01^ACK|ACK1|P|2.8\r"
			    "MSA|AR|C3\r"
			    "ERR||PID^1^3|101^required field missing^HL70357|E||||required field missing\r");
	buf_release(&b);
}

static void test_ack_unreadable(void **state)
{
	struct hl7_ack_err err = { "100", "the message does not start with an MSH segment", "", 0, 0, 'E' };
	struct buf b = BUF_INIT(0);

	(void)state;
	hl7_ack_build(NULL, HL7_AR, &err, "X1", 1704110400000LL, &b);
	assert_non_null(strstr(buf_cstr(&b), "MSA|AR|\r"));
	assert_non_null(strstr(buf_cstr(&b), "|2.5.1\r"));
	assert_non_null(strstr(buf_cstr(&b), "ERR|||100^"));
	buf_release(&b);
}

static void test_ack_wanted(void **state)
{
	static const struct {
		const char *msh15_16;
		int code;
		bool want;
	} cases[] = {
		{ "", HL7_AA, true },
		{ "", HL7_AR, true },
		{ "AL|NE", HL7_CA, true },
		{ "NE|AL", HL7_CA, false },
		{ "ER|NE", HL7_CA, false },
		{ "ER|NE", HL7_CR, true },
		{ "SU|NE", HL7_CA, true },
		{ "SU|NE", HL7_CE, false },
		{ "AL|NE", HL7_AA, false },
		{ "AL|AL", HL7_AA, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct arena a;
		struct hl7_msg m;
		struct err e = ERR_INIT;
		snprintf(text, sizeof(text), "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||%s\r",
			 cases[i].msh15_16);
		arena_init(&a, 0);
		assert_int_equal(hl7_parse(text, strlen(text), &a, &m, &e), 0);
		if (hl7_ack_wanted(&m, cases[i].code) != cases[i].want)
			fail_msg("MSH-15/16 '%s' code %s", cases[i].msh15_16, hl7_ack_name(cases[i].code));
		arena_release(&a);
	}
}

static void test_app_ack_build(void **state)
{
	struct hl7_ack_err err = { "207", "role interface may not update DocumentReference", "", 0, 0, 'E' };
	const char *msg = "MSH|^~\\&|SAPP|SFAC|RAPP|RFAC|20240101||ORU^R01^ORU_R01|C7|P|2.5.1|||AL|AL\rPID|1\r";
	struct arena a;
	struct hl7_msg m;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT(0);

	(void)state;
	arena_init(&a, 0);
	assert_int_equal(hl7_parse(msg, strlen(msg), &a, &m, &e), 0);
	/* its own MSH-10; MSH-15 AL (an accept ACK back), MSH-16 NE */
	hl7_app_ack_build(&m, HL7_AA, NULL, "CKA1AA", 1704110400000LL, &b);
	assert_string_equal(buf_cstr(&b),
			    "MSH|^~\\&|RAPP|RFAC|SAPP|SFAC|20240101120000+0000||ACK^R01^ACK|CKA1AA|P|2.5.1|||AL|NE\r"
			    "MSA|AA|C7\r");
	buf_reset(&b);
	hl7_app_ack_build(&m, HL7_AE, &err, "CKA1AE", 1704110400000LL, &b);
	assert_string_equal(buf_cstr(&b),
			    "MSH|^~\\&|RAPP|RFAC|SAPP|SFAC|20240101120000+0000||ACK^R01^ACK|CKA1AE|P|2.5.1|||AL|NE\r"
			    "MSA|AE|C7\r"
			    "ERR|||207^role interface may not update DocumentReference^HL70357|E||||"
			    "role interface may not update DocumentReference\r");
	buf_release(&b);
	arena_release(&a);
}

static void test_app_ack_routes(void **state)
{
	static const char *const bad[] = {
		"APP", "=h:1", "A=h", "A=h:", "A=:1", "A=h:0", "A=h:65536", "A=h:1x", "A@=h:1", "A=h:1,",
		"A=h:1,,B=h:2", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=h:1",
	};
	struct hl7_ack_routes r;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(hl7_ack_routes_parse(NULL, &r, &e), 0);
	assert_int_equal(r.n, 0);
	assert_null(hl7_ack_route_find(&r, "LAB", "HOSP"));
	assert_int_equal(hl7_ack_routes_parse("LAB@EAST=10.0.0.1:2576,LAB=lab.example:2577,*=127.0.0.1:9", &r, &e), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[0].host, "10.0.0.1");
	assert_string_equal(r.v[0].port, "2576");
	assert_string_equal(r.v[0].fac, "EAST");
	/* the facility narrows; the first component of an HD matches; "*" any */
	assert_ptr_equal(hl7_ack_route_find(&r, "LAB", "EAST"), &r.v[0]);
	assert_ptr_equal(hl7_ack_route_find(&r, "LAB^1.2.3^ISO", "EAST^9.9^ISO"), &r.v[0]);
	assert_ptr_equal(hl7_ack_route_find(&r, "LAB", "WEST"), &r.v[1]);
	assert_ptr_equal(hl7_ack_route_find(&r, "LABX", "EAST"), &r.v[2]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = (struct err)ERR_INIT;
		if (hl7_ack_routes_parse(bad[i], &r, &e) != -1 || e.code != ERR_INVALID ||
		    !strstr(e.msg, "--mllp-ack-to"))
			fail_msg("'%s' must be refused (got '%s')", bad[i], e.msg);
		assert_int_equal(r.n, 0);
	}
}

/* ---- MLLP framing ---- */

static void test_mllp_frames(void **state)
{
	struct hl7_mllp f;
	const char *msg;
	size_t len;
	const char in[] = "junk\r\n\x0bMSH|one\x1c\r\x0bMSH|cut\x0bMSH|two\x1c\x0bMSH|three\x1c\r";

	(void)state;
	hl7_mllp_init(&f, 1024);
	/* a byte at a time: frames come out whole */
	for (size_t i = 0; i < sizeof(in) - 1; i++)
		assert_int_equal(hl7_mllp_feed(&f, in + i, 1), 0);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 1);
	assert_int_equal(len, 7);
	assert_memory_equal(msg, "MSH|one", 7);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 1);
	assert_memory_equal(msg, "MSH|two", 7);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 1);
	assert_memory_equal(msg, "MSH|three", 9);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 0);
	assert_int_equal(f.junk, 4 + 8); /* "junk" and the frame cut off by a new start */
	hl7_mllp_release(&f);
}

static void test_mllp_partial_and_oversized(void **state)
{
	struct hl7_mllp f;
	const char *msg;
	size_t len;
	char big[100];

	(void)state;
	hl7_mllp_init(&f, 16);
	hl7_mllp_feed(&f, "\x0bMSH|par", 8);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 0);
	hl7_mllp_feed(&f, "tial\x1c\r", 6);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 1);
	assert_int_equal(len, 11);
	memset(big, 'x', sizeof(big));
	hl7_mllp_feed(&f, "\x0b", 1);
	hl7_mllp_feed(&f, big, sizeof(big));
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 0);
	hl7_mllp_feed(&f, big, sizeof(big));
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 0);
	hl7_mllp_feed(&f, "\x1c\r\x0bMSH|ok\x1c\r", 11);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 2);
	assert_int_equal(hl7_mllp_next(&f, &msg, &len), 1);
	assert_memory_equal(msg, "MSH|ok", 6);
	hl7_mllp_release(&f);
}

/* ---- the inbox (store.h, sqlite_hl7.c) ---- */

struct ifx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup_inbox(void **state)
{
	struct ifx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-hl7-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown_inbox(void **state)
{
	struct ifx *f = *state;
	char p[160];

	store_close(f->s);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Receive raw as the listener does; returns the row (or first row) id. */
static int64_t receive(struct store *s, const char *ctrl, const char *raw, int state, bool *dup,
		       int64_t *collision)
{
	struct store_hl7_msg m;
	struct store_txn t;

	memset(&m, 0, sizeof(m));
	m.received_ms = 1;
	snprintf(m.peer, sizeof(m.peer), "test");
	snprintf(m.sending_app, sizeof(m.sending_app), "APP");
	snprintf(m.sending_fac, sizeof(m.sending_fac), "FAC");
	snprintf(m.control_id, sizeof(m.control_id), "%s", ctrl);
	snprintf(m.msg_type, sizeof(m.msg_type), "ADT^A01");
	crypto_generichash(m.hash, 16, (const unsigned char *)raw, strlen(raw), NULL, 0);
	m.raw = (char *)raw;
	m.raw_len = strlen(raw);
	m.state = state;
	snprintf(m.ack, sizeof(m.ack), "%s", state == STORE_HL7_PENDING ? "AA" : "AR");
	store_hl7_receive_txn(&t, &m);
	assert_int_equal(store_commit(s, &t), 0);
	*dup = m.duplicate;
	*collision = m.collision;
	return m.id;
}

static int count_state(void *ctx, const struct store_hl7_msg *m)
{
	(void)m;
	(*(int *)ctx)++;
	return 0;
}

static void test_inbox_receive(void **state)
{
	struct ifx *f = *state;
	struct store_hl7_msg got;
	struct err e = ERR_INIT;
	int64_t id1, id2, id3, id4, col, counts[4];
	bool dup;
	int n = 0;

	id1 = receive(f->s, "C1", "MSH|one", STORE_HL7_PENDING, &dup, &col);
	assert_true(id1 > 0);
	assert_false(dup);
	/* a resend: the first row, nothing new */
	id2 = receive(f->s, "C1", "MSH|one", STORE_HL7_PENDING, &dup, &col);
	assert_int_equal(id2, id1);
	assert_true(dup);
	/* same control id, other bytes: stored, a collision with the first */
	id3 = receive(f->s, "C1", "MSH|two", STORE_HL7_PENDING, &dup, &col);
	assert_true(id3 > id1);
	assert_false(dup);
	assert_int_equal(col, id1);
	/* a rejected row is never the original of a resend */
	id4 = receive(f->s, "C9", "MSH|bad", STORE_HL7_REJECTED, &dup, &col);
	assert_int_equal(receive(f->s, "C9", "MSH|bad", STORE_HL7_PENDING, &dup, &col) > id4, 1);
	assert_false(dup);
	assert_int_equal(store_hl7_get(f->s, id3, &got, &e), 0);
	assert_int_equal(got.raw_len, 7);
	assert_memory_equal(got.raw, "MSH|two", 7);
	assert_string_equal(got.control_id, "C1");
	assert_int_equal(got.collision, id1);
	store_hl7_msg_release(&got);
	assert_int_equal(store_hl7_list(f->s, STORE_HL7_PENDING, 0, 0, false, count_state, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_hl7_counts(f->s, counts, &e), 0);
	assert_int_equal(counts[STORE_HL7_PENDING], 3);
	assert_int_equal(counts[STORE_HL7_REJECTED], 1);
	assert_int_equal(store_hl7_get(f->s, 999, &got, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

static void test_inbox_mark(void **state)
{
	struct ifx *f = *state;
	struct store_hl7_msg got;
	struct store_hl7_mark mk = { 0, STORE_HL7_ERROR, "it broke" };
	struct store_txn t;
	struct err e = ERR_INIT;
	int64_t id, col;
	bool dup;

	id = receive(f->s, "M1", "MSH|m", STORE_HL7_PENDING, &dup, &col);
	mk.id = id;
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), 0);
	assert_int_equal(store_hl7_get(f->s, id, &got, &e), 0);
	assert_int_equal(got.state, STORE_HL7_ERROR);
	assert_string_equal(got.reason, "it broke");
	assert_int_equal(got.attempts, 1);
	store_hl7_msg_release(&got);
	/* processed by a transaction's hook: once, never twice */
	mk.state = STORE_HL7_PROCESSED;
	mk.reason = "";
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	store_hl7_mark_txn(&t, &mk);
	assert_int_equal(store_commit(f->s, &t), 0);
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	store_hl7_mark_txn(&t, &mk);
	assert_int_equal(store_commit(f->s, &t), -1);
	assert_int_equal(t.err.code, ERR_CONFLICT);
	mk.id = 12345;
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

/* ---- application ACKs: the outbox (0011) and the sender (appack.c) ---- */

static int count_ack(void *ctx, const struct store_hl7_ack *a)
{
	(void)a;
	(*(int *)ctx)++;
	return 0;
}

static int first_ack(void *ctx, const struct store_hl7_ack *a)
{
	*(struct store_hl7_ack *)ctx = *a;
	((struct store_hl7_ack *)ctx)->text = NULL;
	return 1;
}

static void ack_fill(struct store_hl7_ack *a, int64_t inbox, const char *code, const char *text)
{
	memset(a, 0, sizeof(*a));
	a->inbox_id = inbox;
	snprintf(a->code, sizeof(a->code), "%s", code);
	snprintf(a->control_id, sizeof(a->control_id), "CKA%lld%s", (long long)inbox, code);
	snprintf(a->sending_app, sizeof(a->sending_app), "APP");
	snprintf(a->sending_fac, sizeof(a->sending_fac), "FAC");
	a->text = (char *)text;
	a->text_len = strlen(text);
}

static void test_app_ack_queue(void **state)
{
	struct ifx *f = *state;
	struct store_hl7_ack ack, got;
	struct store_hl7_mark mk = { 0, STORE_HL7_ERROR, "it broke", &ack };
	struct store_txn t;
	struct err e = ERR_INIT;
	int64_t id, id2, col;
	bool dup;
	int n = 0;

	id = receive(f->s, "Q1", "MSH|q", STORE_HL7_PENDING, &dup, &col);
	ack_fill(&ack, id, "AE", "MSH|ae\r");
	mk.id = id;
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), 0);
	/* the same outcome again (a reprocess that fails again): no second ACK */
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), 0);
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 0, count_ack, &n, &e), 0);
	assert_int_equal(n, 1);
	/* processed in a transaction's hook: its AA commits with it ... */
	ack_fill(&ack, id, "AA", "MSH|aa\r");
	mk.state = STORE_HL7_PROCESSED;
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	store_hl7_mark_txn(&t, &mk);
	assert_int_equal(store_commit(f->s, &t), 0);
	n = 0;
	assert_int_equal(store_hl7_ack_list(f->s, false, count_ack, &n, &e), 0);
	assert_int_equal(n, 2);
	/* ... and a transaction that fails queues nothing */
	id2 = receive(f->s, "Q2", "MSH|q2", STORE_HL7_PENDING, &dup, &col);
	mk.id = id2;
	ack_fill(&ack, id2, "AA", "MSH|aa2\r");
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), 0); /* processed, with its AA */
	ack_fill(&ack, id2, "AE", "MSH|ae2\r");
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	store_hl7_mark_txn(&t, &mk);
	assert_int_equal(store_commit(f->s, &t), -1);
	n = 0;
	assert_int_equal(store_hl7_ack_list(f->s, true, count_ack, &n, &e), 0);
	assert_int_equal(n, 3);
	/* a try recorded: sent is off the queue and off the default listing */
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 1, first_ack, &got, &e), 0);
	got.state = STORE_HL7_ACK_SENT;
	got.attempts = 1;
	snprintf(got.destination, sizeof(got.destination), "127.0.0.1:1");
	assert_int_equal(store_hl7_ack_update(f->s, &got, &e), 0);
	n = 0;
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 0, count_ack, &n, &e), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_hl7_ack_list(f->s, false, count_ack, &n, &e), 0);
	assert_int_equal(n, 2);
	/* not due before next_try */
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 1, first_ack, &got, &e), 0);
	got.attempts = 1;
	got.next_try_ms = time_now_ms() + 60000;
	assert_int_equal(store_hl7_ack_update(f->s, &got, &e), 0);
	n = 0;
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 0, count_ack, &n, &e), 0);
	assert_int_equal(n, 1);
	got.id = 999;
	assert_int_equal(store_hl7_ack_update(f->s, &got, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

/* A destination on a real socket: takes one frame, answers MSA|code|MSH-10. */
struct dest {
	int fd;
	const char *code;
	char got[512];
};

static void *dest_main(void *arg)
{
	struct dest *d = arg;
	int c = accept(d->fd, NULL, NULL);
	size_t n = 0;
	char reply[256], ctrl[64] = "";
	const char *p;

	if (c < 0)
		return NULL;
	while (n + 1 < sizeof(d->got) && !memchr(d->got, 0x1c, n)) {
		ssize_t r = recv(c, d->got + n, sizeof(d->got) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	d->got[n] = '\0';
	/* MSH-10: after the ninth field separator */
	p = d->got;
	for (int i = 0; i < 9 && p; i++) {
		p = strchr(p, '|');
		if (p)
			p++;
	}
	if (p)
		snprintf(ctrl, sizeof(ctrl), "%.*s", (int)strcspn(p, "|"), p);
	snprintf(reply, sizeof(reply), "\x0bMSH|^~\\&|A|B|C|D|1||ACK|R1|P|2.5.1\rMSA|%s|%s\r\x1c\r", d->code, ctrl);
	send(c, reply, strlen(reply), MSG_NOSIGNAL);
	close(c);
	return NULL;
}

static int dest_open(struct dest *d, const char *code)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(d, 0, sizeof(*d));
	d->code = code;
	d->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(d->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(d->fd, 4), 0);
	getsockname(d->fd, (struct sockaddr *)&sa, &sl);
	return ntohs(sa.sin_port);
}

static void queue_one(struct ifx *f, const char *ctrl, const char *app)
{
	struct store_hl7_ack ack;
	struct store_hl7_mark mk = { 0, STORE_HL7_PROCESSED, "", &ack };
	struct err e = ERR_INIT;
	int64_t col;
	bool dup;
	char text[128];

	mk.id = receive(f->s, ctrl, ctrl, STORE_HL7_PENDING, &dup, &col);
	snprintf(text, sizeof(text), "MSH|^~\\&|CK|F|APP|FAC|1||ACK|CKA%lldAA|P|2.5.1|||AL|NE\rMSA|AA|X\r",
		 (long long)mk.id);
	ack_fill(&ack, mk.id, "AA", text);
	snprintf(ack.sending_app, sizeof(ack.sending_app), "%s", app);
	assert_int_equal(store_hl7_mark(f->s, &mk, &e), 0);
}

static void test_acker_delivery(void **state)
{
	struct ifx *f = *state;
	struct hl7_ack_routes r;
	struct store_hl7_ack got;
	struct dest d;
	pthread_t th;
	struct err e = ERR_INIT;
	char spec[128];
	int port, n;

	/* delivered: the destination's CA marks it sent */
	port = dest_open(&d, "CA");
	snprintf(spec, sizeof(spec), "APP=127.0.0.1:%d", port);
	assert_int_equal(hl7_ack_routes_parse(spec, &r, &e), 0);
	queue_one(f, "D1", "APP");
	assert_int_equal(pthread_create(&th, NULL, dest_main, &d), 0);
	assert_int_equal(hl7_acker_run_once(f->s, &r, &e), 1);
	pthread_join(th, NULL);
	assert_non_null(strstr(d.got, "\x0bMSH|^~\\&|CK|F|APP|FAC|"));
	assert_int_equal(store_hl7_ack_list(f->s, true, first_ack, &got, &e), 0);
	assert_int_equal(got.state, STORE_HL7_ACK_SENT);
	assert_int_equal(got.attempts, 1);
	assert_true(got.sent_ms > 0);
	/* refused: CR is final */
	queue_one(f, "D2", "APP");
	d.code = "CR";
	assert_int_equal(pthread_create(&th, NULL, dest_main, &d), 0);
	assert_int_equal(hl7_acker_run_once(f->s, &r, &e), 1);
	pthread_join(th, NULL);
	n = 0;
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms() + 3600000, 0, count_ack, &n, &e), 0);
	assert_int_equal(n, 0);
	close(d.fd);
	/* unreachable (the port is closed now), and no destination at all:
	 * waiting, tried again later, with the reason */
	queue_one(f, "D3", "APP");
	queue_one(f, "D4", "OTHER");
	assert_int_equal(hl7_acker_run_once(f->s, &r, &e), 2);
	n = 0;
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms(), 0, count_ack, &n, &e), 0);
	assert_int_equal(n, 0);
	n = 0;
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms() + HL7_ACK_RETRY_MIN_MS + 1000, 0, count_ack, &n, &e),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_hl7_ack_due(f->s, time_now_ms() + 3600000, 1, first_ack, &got, &e), 0);
	assert_int_equal(got.state, STORE_HL7_ACK_WAITING);
	assert_int_equal(got.attempts, 1);
	assert_non_null(strstr(got.last_error, "cannot connect"));
	n = 0;
	assert_int_equal(store_hl7_ack_list(f->s, false, count_ack, &n, &e), 0);
	assert_int_equal(n, 3); /* the refused one and the two waiting */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_parse),
		cmocka_unit_test(test_parse_expected_json),
		cmocka_unit_test(test_accessor),
		cmocka_unit_test(test_bad_paths),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_escape_round_trip),
		cmocka_unit_test(test_unescape_odd),
		cmocka_unit_test(test_charset_iconv),
		cmocka_unit_test(test_batch_split),
		cmocka_unit_test(test_ack_original),
		cmocka_unit_test(test_ack_error_versions),
		cmocka_unit_test(test_ack_unreadable),
		cmocka_unit_test(test_ack_wanted),
		cmocka_unit_test(test_mllp_frames),
		cmocka_unit_test(test_mllp_partial_and_oversized),
		cmocka_unit_test_setup_teardown(test_inbox_receive, setup_inbox, teardown_inbox),
		cmocka_unit_test_setup_teardown(test_inbox_mark, setup_inbox, teardown_inbox),
		cmocka_unit_test(test_app_ack_build),
		cmocka_unit_test(test_app_ack_routes),
		cmocka_unit_test_setup_teardown(test_app_ack_queue, setup_inbox, teardown_inbox),
		cmocka_unit_test_setup_teardown(test_acker_delivery, setup_inbox, teardown_inbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
