/* test_base.c - src/base: buf, arena, time, id, url, json_parse_buf.
 *
 * Most cases are tables, one cmocka test per row (the name says which row
 * failed).  Expected instants are computed with the C library's timegm(),
 * not with the code under test, so a wrong calendar in time.c cannot agree
 * with itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/id.h"
#include "base/json.h"
#include "base/time.h"
#include "base/url.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* struct buf                                                          */

static void test_buf_append(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	assert_string_equal(buf_cstr(&b), "");
	buf_addstr(&b, "abc");
	buf_addch(&b, '-');
	buf_addf(&b, "%d/%s", 42, "x");
	buf_add(&b, "yz", 2);
	buf_add(&b, "ignored", 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "abc-42/xyz");
	assert_false(b.failed);
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "abc");
	buf_truncate(&b, 100); /* longer than len: nothing happens */
	assert_int_equal(b.len, 3);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_non_null(b.data); /* memory kept */
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

/* Many appends force many reallocations; the content must survive them. */
static void test_buf_growth(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(b.max, BUF_DEFAULT_MAX);
	for (int i = 0; i < 10000; i++)
		buf_addch(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 10000);
	assert_true(b.cap > b.len);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	assert_int_equal(b.data[10000], '\0');
	buf_release(&b);
}

static void test_buf_cap_sticky(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	buf_addstr(&b, "12345");
	buf_addstr(&b, "67890"); /* exactly at the cap: allowed */
	assert_false(b.failed);
	assert_int_equal(b.len, 10);
	buf_addch(&b, 'x');      /* one past */
	assert_true(b.failed);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "1234567890");
	buf_truncate(&b, 2);
	buf_addstr(&b, "a");     /* sticky: even a fitting append is dropped */
	buf_addf(&b, "%d", 7);
	buf_add(&b, "bc", 2);
	assert_true(b.failed);
	assert_string_equal(buf_cstr(&b), "12");
	assert_int_equal(buf_grow(&b, 1), -1);
	buf_reset(&b);           /* reset clears the flag, keeps the cap */
	assert_false(b.failed);
	assert_int_equal(b.max, 10);
	buf_addstr(&b, "abcdefghijk"); /* 11 > 10 in one go */
	assert_true(b.failed);
	assert_int_equal(b.len, 0);
	buf_release(&b);

	buf_init(&b, 8);
	buf_addf(&b, "%s", "123456789"); /* formatted append past the cap */
	assert_true(b.failed);
	assert_int_equal(b.len, 0);
	buf_release(&b);

	buf_init(&b, 0);
	assert_int_equal(buf_grow(&b, SIZE_MAX), -1); /* no overflow to a small size */
	assert_true(b.failed);
	buf_release(&b);
}

static void test_buf_detach_failed(void **state)
{
	struct buf b;
	size_t len = 99;

	(void)state;
	buf_init(&b, 4);
	buf_addstr(&b, "too long");
	assert_true(b.failed);
	assert_null(buf_detach(&b, &len));
	assert_int_equal(len, 0);
	assert_null(b.data);
	buf_release(&b);
}

static void test_buf_attach_detach(void **state)
{
	struct buf b;
	char *p = malloc(6), *q;
	size_t len = 0;

	(void)state;
	assert_non_null(p);
	memcpy(p, "hello", 6);
	buf_init(&b, 0);
	buf_addstr(&b, "previous"); /* released by attach */
	buf_attach(&b, p, 5);
	assert_int_equal(b.len, 5);
	assert_string_equal(buf_cstr(&b), "hello");
	buf_addstr(&b, ", world");
	assert_string_equal(buf_cstr(&b), "hello, world");
	q = buf_detach(&b, &len);
	assert_non_null(q);
	assert_int_equal(len, 12);
	assert_string_equal(q, "hello, world");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	free(q);

	/* An empty buffer detaches as "" (never NULL unless it failed). */
	q = buf_detach(&b, NULL);
	assert_non_null(q);
	assert_string_equal(q, "");
	free(q);
	/* The buffer is usable after a detach. */
	buf_addstr(&b, "again");
	assert_string_equal(buf_cstr(&b), "again");
	buf_release(&b);
}

struct esc_case {
	const char *in;
	size_t n;
	const char *out;
};

static const struct esc_case esc_cases[] = {
	{ "plain", 5, "plain" },
	{ "", 0, "" },
	{ "a\"b", 3, "a\\\"b" },
	{ "back\\slash", 10, "back\\\\slash" },
	{ "\n\r\t", 3, "\\n\\r\\t" },
	{ "\x01", 1, "\\u0001" },
	{ "\x1f", 1, "\\u001f" },
	{ "\b\f", 2, "\\u0008\\u000c" },
	{ "a\0b", 3, "a\\u0000b" },          /* an embedded NUL, by length */
	{ "x\x7fy", 3, "x\x7fy" },           /* DEL needs no escape in JSON */
	{ "/", 1, "/" },                     /* nor does the solidus */
	{ "caf\xc3\xa9", 5, "caf\xc3\xa9" }, /* UTF-8 passes through */
	{ "\xe2\x82\xac \xf0\x9f\x98\x80", 8, "\xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "\"\\\"", 3, "\\\"\\\\\\\"" },
	{ "end\n", 4, "end\\n" },
};

static void test_buf_json_escape(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(esc_cases); i++) {
		const struct esc_case *c = &esc_cases[i];
		struct buf b = BUF_INIT(0), doc = BUF_INIT(0);
		struct err e = ERR_INIT;
		json_object *o;

		buf_add_json_str(&b, c->in, c->n);
		if (strcmp(buf_cstr(&b), c->out) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf_cstr(&b), c->out);
		/* And it reads back as the same bytes. */
		buf_addstr(&doc, "[\"");
		buf_add(&doc, b.data ? b.data : "", b.len);
		buf_addstr(&doc, "\"]");
		o = json_parse_buf(doc.data, doc.len, 0, &e);
		if (!o)
			fail_msg("case %zu: escaped text does not parse: %s", i, e.msg);
		{
			json_object *s = json_object_array_get_idx(o, 0);
			assert_int_equal(json_object_get_string_len(s), c->n);
			if (c->n)
				assert_memory_equal(json_object_get_string(s), c->in, c->n);
		}
		json_object_put(o);
		buf_release(&b);
		buf_release(&doc);
	}
}

/* ------------------------------------------------------------------ */
/* arena                                                               */

static void test_arena_alignment(void **state)
{
	static const size_t sizes[] = { 1, 3, 16, 17, 31, 100, 7, 4096, 1, 9000, 2 };
	struct arena a;
	unsigned char *p[N_OF(sizes)];

	(void)state;
	arena_init(&a, 0);
	for (size_t i = 0; i < N_OF(sizes); i++) {
		p[i] = arena_alloc(&a, sizes[i]);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		memset(p[i], (int)i + 1, sizes[i]);
	}
	/* Nothing overlapped: every block still holds its own pattern. */
	for (size_t i = 0; i < N_OF(sizes); i++)
		for (size_t k = 0; k < sizes[i]; k++)
			assert_int_equal(p[i][k], i + 1);
	/* used counts bytes rounded up to 16 */
	{
		size_t want = 0;
		for (size_t i = 0; i < N_OF(sizes); i++)
			want += (sizes[i] + 15) & ~(size_t)15;
		assert_int_equal(a.used, want);
	}
	assert_false(a.failed);
	arena_release(&a);
	assert_null(a.head);
	assert_int_equal(a.used, 0);
}

static void test_arena_max(void **state)
{
	struct arena a;

	(void)state;
	arena_init(&a, 64);
	assert_non_null(arena_alloc(&a, 32));
	assert_non_null(arena_alloc(&a, 20)); /* 32 + 32 = 64: at the limit */
	assert_int_equal(a.used, 64);
	assert_false(a.failed);
	assert_null(arena_alloc(&a, 1));
	assert_true(a.failed);
	assert_null(arena_alloc(&a, 1)); /* sticky */
	assert_null(arena_strdup(&a, "x"));
	arena_reset(&a);
	assert_false(a.failed);
	assert_int_equal(a.used, 0);
	assert_non_null(arena_alloc(&a, 64));
	arena_release(&a);

	arena_init(&a, 100);
	assert_null(arena_alloc(&a, 200)); /* one allocation beyond max */
	assert_true(a.failed);
	arena_release(&a);

	arena_init(&a, 0);
	assert_null(arena_alloc(&a, SIZE_MAX)); /* rounding up must not wrap */
	assert_null(arena_alloc(&a, SIZE_MAX - 7));
	arena_release(&a);
}

static void test_arena_reset_keeps_first_chunk(void **state)
{
	struct arena a;
	void *first, *again;

	(void)state;
	arena_init(&a, 0);
	first = arena_alloc(&a, 10);
	assert_non_null(first);
	for (int i = 0; i < 100; i++) /* several chunks */
		assert_non_null(arena_alloc(&a, 1000));
	assert_non_null(arena_alloc(&a, 100000)); /* larger than a chunk */
	arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_non_null(a.head);
	again = arena_alloc(&a, 10);
	assert_ptr_equal(again, first); /* the oldest chunk, from its start */
	arena_reset(&a);
	arena_reset(&a); /* twice is fine */
	arena_release(&a);
	arena_reset(&a); /* on an empty arena too */
	assert_null(a.head);
}

static void test_arena_strings(void **state)
{
	struct arena a;
	char *s;

	(void)state;
	arena_init(&a, 0);
	s = arena_strdup(&a, "hello");
	assert_string_equal(s, "hello");
	s = arena_strndup(&a, "hello", 3);
	assert_string_equal(s, "hel");
	s = arena_strndup(&a, "", 0);
	assert_string_equal(s, "");
	s = arena_printf(&a, "%d-%s-%05.1f", 42, "x", 3.14159);
	assert_string_equal(s, "42-x-003.1");
	s = arena_printf(&a, "%s", "");
	assert_string_equal(s, "");
	arena_release(&a);
}

/* ------------------------------------------------------------------ */
/* time                                                                */

/* "YYYY-MM-DDThh:mm:ss.mmm" (UTC) -> ms since the epoch, by timegm(). */
static int64_t utc_ms(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, ms;

	if (sscanf(s, "%d-%d-%dT%d:%d:%d.%d", &y, &mo, &d, &h, &mi, &sec, &ms) != 7)
		fail_msg("bad test instant %s", s);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

struct time_case {
	const char *in;
	int kind;
	const char *lo, *hi; /* NULL: must be rejected */
	int prec;
	bool tz;
};

#define BAD(s, k) { s, k, NULL, NULL, 0, false }
#define HOUR "T00:00:00.000"

static const struct time_case time_cases[] = {
	/* date */
	{ "2020", TIME_DATE, "2020-01-01" HOUR, "2021-01-01" HOUR, TP_YEAR, false },
	{ "2020-02", TIME_DATE, "2020-02-01" HOUR, "2020-03-01" HOUR, TP_MONTH, false },
	{ "2019-02", TIME_DATE, "2019-02-01" HOUR, "2019-03-01" HOUR, TP_MONTH, false },
	{ "2020-12", TIME_DATE, "2020-12-01" HOUR, "2021-01-01" HOUR, TP_MONTH, false },
	{ "2020-02-29", TIME_DATE, "2020-02-29" HOUR, "2020-03-01" HOUR, TP_DAY, false },
	{ "2000-02-29", TIME_DATE, "2000-02-29" HOUR, "2000-03-01" HOUR, TP_DAY, false },
	{ "2020-12-31", TIME_DATE, "2020-12-31" HOUR, "2021-01-01" HOUR, TP_DAY, false },
	{ "1969-12-31", TIME_DATE, "1969-12-31" HOUR, "1970-01-01" HOUR, TP_DAY, false },
	{ "0001", TIME_DATE, "0001-01-01" HOUR, "0002-01-01" HOUR, TP_YEAR, false },
	{ "9999-12-31", TIME_DATE, "9999-12-31" HOUR, "10000-01-01" HOUR, TP_DAY, false },
	BAD("2019-02-29", TIME_DATE),
	BAD("1900-02-29", TIME_DATE),
	BAD("2020-02-30", TIME_DATE),
	BAD("2020-04-31", TIME_DATE),
	BAD("2020-13", TIME_DATE),
	BAD("2020-00", TIME_DATE),
	BAD("2020-01-00", TIME_DATE),
	BAD("2020-01-32", TIME_DATE),
	BAD("0000", TIME_DATE),
	BAD("0000-01-01", TIME_DATE),
	BAD("", TIME_DATE),
	BAD("20", TIME_DATE),
	BAD("202a", TIME_DATE),
	BAD("2020-1", TIME_DATE),
	BAD("2020-01-1", TIME_DATE),
	BAD("2020-", TIME_DATE),
	BAD("2020-01-", TIME_DATE),
	BAD("2020/01/01", TIME_DATE),
	BAD("2020-01-01 ", TIME_DATE),
	BAD(" 2020", TIME_DATE),
	BAD("20200", TIME_DATE),
	BAD("2020-01-01T10:00:00Z", TIME_DATE),
	/* dateTime */
	{ "2020", TIME_DATETIME, "2020-01-01" HOUR, "2021-01-01" HOUR, TP_YEAR, false },
	{ "2020-06", TIME_DATETIME, "2020-06-01" HOUR, "2020-07-01" HOUR, TP_MONTH, false },
	{ "2020-06-15", TIME_DATETIME, "2020-06-15" HOUR, "2020-06-16" HOUR, TP_DAY, false },
	{ "2020-01-01T10:00:00Z", TIME_DATETIME, "2020-01-01T10:00:00.000",
	  "2020-01-01T10:00:01.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00+01:00", TIME_DATETIME, "2020-01-01T09:00:00.000",
	  "2020-01-01T09:00:01.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00+14:00", TIME_DATETIME, "2019-12-31T20:00:00.000",
	  "2019-12-31T20:00:01.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00-12:00", TIME_DATETIME, "2020-01-01T22:00:00.000",
	  "2020-01-01T22:00:01.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00-00:30", TIME_DATETIME, "2020-01-01T10:30:00.000",
	  "2020-01-01T10:30:01.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00+05:45", TIME_DATETIME, "2020-01-01T04:15:00.000",
	  "2020-01-01T04:15:01.000", TP_SECOND, true },
	{ "2020-01-01T23:59:59Z", TIME_DATETIME, "2020-01-01T23:59:59.000",
	  "2020-01-02T00:00:00.000", TP_SECOND, true },
	{ "2016-12-31T23:59:60Z", TIME_DATETIME, "2016-12-31T23:59:59.000", /* leap second */
	  "2017-01-01T00:00:00.000", TP_SECOND, true },
	{ "2020-01-01T10:00:00.5Z", TIME_DATETIME, "2020-01-01T10:00:00.500",
	  "2020-01-01T10:00:00.501", TP_FRACTION, true },
	{ "2020-01-01T10:00:00.123Z", TIME_DATETIME, "2020-01-01T10:00:00.123",
	  "2020-01-01T10:00:00.124", TP_FRACTION, true },
	{ "2020-01-01T10:00:00.123456789Z", TIME_DATETIME, "2020-01-01T10:00:00.123",
	  "2020-01-01T10:00:00.124", TP_FRACTION, true },
	{ "2020-01-01T10:00:00.0Z", TIME_DATETIME, "2020-01-01T10:00:00.000",
	  "2020-01-01T10:00:00.001", TP_FRACTION, true },
	{ "2020-01-01T00:30:00.250+01:00", TIME_DATETIME, "2019-12-31T23:30:00.250",
	  "2019-12-31T23:30:00.251", TP_FRACTION, true },
	BAD("2020-01-01T10:00:00", TIME_DATETIME),     /* a time needs a zone */
	BAD("2020-01-01T10:00Z", TIME_DATETIME),       /* seconds are required */
	BAD("2020-01-01T10Z", TIME_DATETIME),
	BAD("2020-01-01T", TIME_DATETIME),
	BAD("2020-01-01T24:00:00Z", TIME_DATETIME),
	BAD("2020-01-01T23:60:00Z", TIME_DATETIME),
	BAD("2020-01-01T23:59:61Z", TIME_DATETIME),
	BAD("2020-01-01T10:00:00+14:30", TIME_DATETIME),
	BAD("2020-01-01T10:00:00+15:00", TIME_DATETIME),
	BAD("2020-01-01T10:00:00-15:00", TIME_DATETIME),
	BAD("2020-01-01T10:00:00+05:60", TIME_DATETIME),
	BAD("2020-01-01T10:00:00+0500", TIME_DATETIME),
	BAD("2020-01-01T10:00:00+05", TIME_DATETIME),
	BAD("2020-01-01T10:00:00.Z", TIME_DATETIME),
	BAD("2020-01-01T10:00:00ZZ", TIME_DATETIME),
	BAD("2020-01-01T10:00:00z", TIME_DATETIME),
	BAD("2020-01-01t10:00:00Z", TIME_DATETIME),
	BAD("2020-01-01 10:00:00Z", TIME_DATETIME),
	BAD("2020-02-30T10:00:00Z", TIME_DATETIME),
	BAD("2021-02-29T10:00:00Z", TIME_DATETIME),
	BAD("0000-01-01T10:00:00Z", TIME_DATETIME),
	BAD("2020-13-01T10:00:00Z", TIME_DATETIME),
	/* instant: always to the second, with a zone */
	{ "2020-02-29T12:34:56Z", TIME_INSTANT, "2020-02-29T12:34:56.000",
	  "2020-02-29T12:34:57.000", TP_SECOND, true },
	{ "2020-02-29T12:34:56.789-03:00", TIME_INSTANT, "2020-02-29T15:34:56.789",
	  "2020-02-29T15:34:56.790", TP_FRACTION, true },
	BAD("2020", TIME_INSTANT),
	BAD("2020-02", TIME_INSTANT),
	BAD("2020-02-29", TIME_INSTANT),
	BAD("2020-02-29T12:34:56", TIME_INSTANT),
	BAD("2020-02-30T12:34:56Z", TIME_INSTANT),
	/* time: a time of day, no zone */
	{ "10:00:00", TIME_TIME, "1970-01-01T10:00:00.000", "1970-01-01T10:00:01.000",
	  TP_SECOND, false },
	{ "00:00:00", TIME_TIME, "1970-01-01T00:00:00.000", "1970-01-01T00:00:01.000",
	  TP_SECOND, false },
	{ "23:59:59.999", TIME_TIME, "1970-01-01T23:59:59.999", "1970-01-02T00:00:00.000",
	  TP_FRACTION, false },
	BAD("24:00:00", TIME_TIME),
	BAD("10:60:00", TIME_TIME),
	BAD("10:00", TIME_TIME),
	BAD("1:00:00", TIME_TIME),
	BAD("10:00:00Z", TIME_TIME),
	BAD("10:00:00+01:00", TIME_TIME),
	BAD("10:00:00.", TIME_TIME),
	BAD("", TIME_TIME),
	BAD("2020-01-01", TIME_TIME),
};

static void test_time_parse(void **state)
{
	const struct time_case *c = *state;
	struct time_val v;
	int rc;

	memset(&v, 0x5a, sizeof(v));
	rc = time_parse(c->in, strlen(c->in), (enum time_kind)c->kind, &v);
	if (!c->lo) {
		if (rc != -1)
			fail_msg("\"%s\" (kind %d) was accepted", c->in, c->kind);
		return;
	}
	if (rc != 0)
		fail_msg("\"%s\" (kind %d) was rejected", c->in, c->kind);
	assert_int_equal(v.lo_ms, utc_ms(c->lo));
	assert_int_equal(v.hi_ms, utc_ms(c->hi));
	assert_int_equal(v.prec, c->prec);
	assert_int_equal(v.has_tz, c->tz);
	/* out may be NULL */
	assert_int_equal(time_parse(c->in, strlen(c->in), (enum time_kind)c->kind, NULL), 0);
}

/* time_parse reads s[0..n) only. */
static void test_time_parse_length(void **state)
{
	struct time_val v;

	(void)state;
	assert_int_equal(time_parse("2020-01-01garbage", 10, TIME_DATE, &v), 0);
	assert_int_equal(v.prec, TP_DAY);
	assert_int_equal(time_parse("2020-01-01", 7, TIME_DATE, &v), 0);
	assert_int_equal(v.prec, TP_MONTH);
	assert_int_equal(time_parse("2020-01-01", 6, TIME_DATE, &v), -1);
}

static void test_time_days_from_civil(void **state)
{
	(void)state;
	assert_int_equal(time_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(time_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(time_days_from_civil(2000, 3, 1), 11017);
	/* Every 37th day from year 1 to 9999 agrees with timegm(). */
	for (int64_t day = utc_ms("0001-01-01T00:00:00.000") / 86400000;
	     day < utc_ms("9999-12-31T00:00:00.000") / 86400000; day += 37) {
		time_t t = (time_t)(day * 86400);
		struct tm tm;
		gmtime_r(&t, &tm);
		if (time_days_from_civil(tm.tm_year + 1900LL, (unsigned)tm.tm_mon + 1,
					 (unsigned)tm.tm_mday) != day)
			fail_msg("day %" PRId64 " (%d-%02d-%02d) disagrees", day, tm.tm_year + 1900,
				 tm.tm_mon + 1, tm.tm_mday);
	}
}

struct fmt_case {
	int64_t ms;
	const char *instant, *http;
};

static const struct fmt_case fmt_cases[] = {
	{ 0, "1970-01-01T00:00:00.000Z", "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ 1, "1970-01-01T00:00:00.001Z", "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ 999, "1970-01-01T00:00:00.999Z", "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ 784111777000, "1994-11-06T08:49:37.000Z", "Sun, 06 Nov 1994 08:49:37 GMT" },
	{ 951782400000, "2000-02-29T00:00:00.000Z", "Tue, 29 Feb 2000 00:00:00 GMT" },
	{ 1700000000123, "2023-11-14T22:13:20.123Z", "Tue, 14 Nov 2023 22:13:20 GMT" },
	{ 1709164800000, "2024-02-29T00:00:00.000Z", "Thu, 29 Feb 2024 00:00:00 GMT" },
	{ -1, "1969-12-31T23:59:59.999Z", "Wed, 31 Dec 1969 23:59:59 GMT" },
	{ -86400000, "1969-12-31T00:00:00.000Z", "Wed, 31 Dec 1969 00:00:00 GMT" },
	{ 253402300799999, "9999-12-31T23:59:59.999Z", "Fri, 31 Dec 9999 23:59:59 GMT" },
};

static void test_time_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(fmt_cases); i++) {
		char inst[TIME_INSTANT_MAX], http[TIME_HTTP_MAX];
		struct time_val v;

		time_format_instant(fmt_cases[i].ms, inst);
		time_format_http(fmt_cases[i].ms, http);
		if (strcmp(inst, fmt_cases[i].instant) != 0 || strcmp(http, fmt_cases[i].http) != 0)
			fail_msg("%" PRId64 ": got %s / %s", fmt_cases[i].ms, inst, http);
		/* An instant reads back as the same millisecond. */
		assert_int_equal(time_parse(inst, strlen(inst), TIME_INSTANT, &v), 0);
		assert_int_equal(v.lo_ms, fmt_cases[i].ms);
		assert_int_equal(v.prec, TP_FRACTION);
	}
}

static void test_time_now(void **state)
{
	int64_t a, b;

	(void)state;
	a = time_now_ms();
	b = (int64_t)time(NULL) * 1000;
	assert_true(a > 1600000000000LL);          /* after 2020 */
	assert_true(a / 1000 >= b / 1000 - 1000);  /* same clock, within a wide margin */
	assert_true(a / 1000 <= b / 1000 + 1000);
}

/* ------------------------------------------------------------------ */
/* id                                                                  */

static void test_id_valid(void **state)
{
	char s64[65], s65[66];

	(void)state;
	memset(s64, 'a', 64);
	s64[64] = '\0';
	memset(s65, 'Z', 65);
	s65[65] = '\0';
	assert_true(id_valid("a", 1));
	assert_true(id_valid("Az09-.", 6));
	assert_true(id_valid("123", 3));
	assert_true(id_valid("...", 3));
	assert_true(id_valid(s64, 64));
	assert_false(id_valid(s65, 65));
	assert_false(id_valid("", 0));
	assert_false(id_valid("a_b", 3));
	assert_false(id_valid("a b", 3));
	assert_false(id_valid("a/b", 3));
	assert_false(id_valid("a:b", 3));
	assert_false(id_valid("caf\xc3\xa9", 5));
	assert_false(id_valid("a\0b", 3));
	assert_false(id_valid("a\n", 2));
	/* only s[0..n) is looked at */
	assert_true(id_valid("abc/def", 3));
	assert_true(id_valid(s65, 64));
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_id_new(void **state)
{
	char a[ID_UUID_LEN + 1], b[ID_UUID_LEN + 1];

	(void)state;
	for (int round = 0; round < 50; round++) {
		id_new(a);
		assert_int_equal(strlen(a), ID_UUID_LEN);
		for (int i = 0; i < ID_UUID_LEN; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(a[i], '-');
			else
				assert_true(is_lower_hex(a[i]));
		}
		assert_int_equal(a[14], '4');                 /* version 4 */
		assert_non_null(strchr("89ab", a[19]));      /* RFC 4122 variant */
		assert_true(id_valid(a, strlen(a)));
		id_new(b);
		assert_string_not_equal(a, b);
	}
}

/* ------------------------------------------------------------------ */
/* url                                                                 */

static void test_url_encode(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "", "" },
		{ "abcXYZ019", "abcXYZ019" },
		{ "-._~", "-._~" },
		{ "a b", "a%20b" },
		{ "a+b&c=d/e?f#g", "a%2Bb%26c%3Dd%2Fe%3Ff%23g" },
		{ "caf\xc3\xa9", "caf%C3%A9" },
		{ "%", "%25" },
		{ "\x01\x7f\xff", "%01%7F%FF" },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct buf b = BUF_INIT(0), back = BUF_INIT(0);

		url_encode(&b, cases[i].in);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		/* decoding gives the input back */
		assert_int_equal(url_decode(&back, b.data ? b.data : "", b.len, 0), 0);
		assert_string_equal(buf_cstr(&back), cases[i].in);
		buf_release(&b);
		buf_release(&back);
	}
}

static void test_url_decode(void **state)
{
	static const struct {
		const char *in;
		int plus, rc;
		const char *out;
	} cases[] = {
		{ "abc", 0, 0, "abc" },
		{ "a%20b", 0, 0, "a b" },
		{ "a+b", 1, 0, "a b" },
		{ "a+b", 0, 0, "a+b" },
		{ "%2B", 1, 0, "+" },
		{ "%41%42c", 0, 0, "ABc" },
		{ "%4a%4A", 0, 0, "JJ" },
		{ "%C3%A9", 0, 0, "\xc3\xa9" },
		{ "%25", 0, 0, "%" },
		{ "%252", 0, 0, "%2" },
		{ "", 0, 0, "" },
		{ "%", 0, -1, NULL },
		{ "%4", 0, -1, NULL },
		{ "abc%", 0, -1, NULL },
		{ "abc%2", 0, -1, NULL },
		{ "%zz", 0, -1, NULL },
		{ "%4g", 0, -1, NULL },
		{ "%g4", 0, -1, NULL },
		{ "% 1", 0, -1, NULL },
		{ "%%41", 0, -1, NULL },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		struct buf b = BUF_INIT(0);
		int rc = url_decode(&b, cases[i].in, strlen(cases[i].in), cases[i].plus);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (cases[i].out)
			assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_release(&b);
	}
}

static void test_url_decode_bounds(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	/* Only s[0..n) counts: an escape cut by n is malformed, not read past. */
	assert_int_equal(url_decode(&b, "%41XYZ", 3, 0), 0);
	assert_string_equal(buf_cstr(&b), "A");
	buf_reset(&b);
	assert_int_equal(url_decode(&b, "%41", 2, 0), -1);
	buf_reset(&b);
	/* %00 decodes to a NUL byte, counted in len */
	assert_int_equal(url_decode(&b, "a%00b", 5, 0), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* json_parse_buf                                                      */

/* Parse, and return the compact serialisation (malloc'd) or NULL. */
static char *parse_dump(const char *s, size_t n, int depth, struct err *e)
{
	json_object *o = json_parse_buf(s, n, depth, e);
	char *out;

	if (!o)
		return NULL;
	out = strdup(json_dump_str(o, NULL));
	json_object_put(o);
	return out;
}

static const char *const json_valid[] = {
	"{}",
	"[]",
	"{\"a\":1}",
	" \t\r\n{\"a\" : [ 1 , 2 , { \"b\" : null } ] }\n ",
	"{\"a\":true,\"b\":false,\"c\":null}",
	"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}",
	"{\"a\":-0.5e-3,\"b\":0,\"c\":-0,\"d\":1E+2}",
	"{\"caf\xc3\xa9\":\"\xe2\x82\xac\"}",
	"[[[[[[[[[[1]]]]]]]]]]",
	"{\"a\":{\"a\":{\"a\":1}}}",         /* the same name at different depths */
	"[{\"a\":1},{\"a\":2}]",             /* and in sibling objects */
	"{\"a\\\"\":1,\"a\":2}",             /* names that differ by an escape */
	"\"a string\"",
	"42",
};

static void test_json_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(json_valid); i++) {
		struct err e = ERR_INIT;
		json_object *o = json_parse_buf(json_valid[i], strlen(json_valid[i]), 0, &e);

		if (!o)
			fail_msg("case %zu (%s) rejected: %s", i, json_valid[i], e.msg);
		assert_int_equal(e.code, ERR_NONE);
		json_object_put(o);
	}
}

struct json_bad {
	const char *name;
	const char *in;
	size_t n;        /* 0: strlen(in) */
	int depth;
	const char *msg; /* exact */
};

static const struct json_bad json_bad[] = {
	{ "empty", "", 0, 0, "empty body: expected a JSON document" },
	{ "only white space", " \r\n\t ", 0, 0, "empty body: expected a JSON document" },
	{ "null document", "null", 0, 0, "the document is null: expected an object" },
	{ "null document, spaced", "\n null \n", 0, 0, "the document is null: expected an object" },
	{ "trailing data", "{\"a\":1} x", 0, 0,
	  "malformed JSON at line 1, column 9: data after the end of the document" },
	{ "second document", "{\"a\":1}{}", 0, 0,
	  "malformed JSON at line 1, column 8: data after the end of the document" },
	{ "trailing data on line 2", "{\"a\":1}\n  ]", 0, 0,
	  "malformed JSON at line 2, column 3: data after the end of the document" },
	{ "duplicate at the top", "{\"a\":1,\"b\":2,\"a\":3}", 0, 0,
	  "malformed JSON at line 1, column 14: duplicate property \"a\"" },
	{ "duplicate at depth 3", "{\"a\":{\"b\":{\"c\":1,\"c\":2}}}", 0, 0,
	  "malformed JSON at line 1, column 18: duplicate property \"c\"" },
	{ "duplicate in an array item", "{\"x\":[{\"ok\":1},{\"k\":1,\"j\":0,\"k\":2}]}", 0, 0,
	  "malformed JSON at line 1, column 29: duplicate property \"k\"" },
	{ "duplicate on line 3", "{\n  \"a\": {},\n  \"b\": {\"z\": 1, \"z\": 1}\n}", 0, 0,
	  "malformed JSON at line 3, column 17: duplicate property \"z\"" },
	{ "single quotes", "{'a':1}", 0, 0,
	  "malformed JSON at line 1, column 2: strings take double quotes" },
	{ "single-quoted value", "{\"a\":'x'}", 0, 0,
	  "malformed JSON at line 1, column 6: strings take double quotes" },
	{ "NaN", "{\"a\":NaN}", 0, 0,
	  "malformed JSON at line 1, column 6: not a JSON value (only true, false and null are literals)" },
	{ "Infinity", "{\"a\":Infinity}", 0, 0,
	  "malformed JSON at line 1, column 6: not a JSON value (only true, false and null are literals)" },
	{ "-Infinity", "{\"a\":-Infinity}", 0, 0,
	  "malformed JSON at line 1, column 6: malformed number" },
	{ "True", "{\"a\":True}", 0, 0,
	  "malformed JSON at line 1, column 6: not a JSON value (only true, false and null are literals)" },
	{ "leading zero", "{\"a\":01}", 0, 0, "malformed JSON at line 1, column 6: malformed number" },
	{ "negative leading zero", "{\"a\":-01}", 0, 0,
	  "malformed JSON at line 1, column 6: malformed number" },
	{ "1.", "{\"a\":1.}", 0, 0, "malformed JSON at line 1, column 6: malformed number" },
	{ "1.e5", "[1.e5]", 0, 0, "malformed JSON at line 1, column 2: malformed number" },
	{ "1e", "[1e]", 0, 0, "malformed JSON at line 1, column 2: malformed number" },
	{ ".5", "{\"a\":.5}", 0, 0, "malformed JSON at line 1, column 6: unexpected character" },
	{ "+1", "[+1]", 0, 0, "malformed JSON at line 1, column 2: unexpected character" },
	{ "raw tab in a string", "{\"a\":\"x\ty\"}", 0, 0,
	  "malformed JSON at line 1, column 8: control character in a string (escape it)" },
	{ "raw newline in a string", "{\"a\":\"x\ny\"}", 0, 0,
	  "malformed JSON at line 1, column 8: control character in a string (escape it)" },
	{ "raw control in a name", "{\"a\x01\":1}", 0, 0,
	  "malformed JSON at line 1, column 4: control character in a string (escape it)" },
	{ "invalid UTF-8", "{\"a\":\"\xff\"}", 0, 0,
	  "malformed JSON at line 1, column 7: invalid utf-8 string" },
	{ "overlong UTF-8 (C0 AF)", "{\"a\":\"\xc0\xaf\"}", 0, 0,
	  "malformed JSON at line 1, column 7: invalid utf-8 string" },
	{ "overlong UTF-8 (E0 80 AF)", "{\"a\":\"\xe0\x80\xaf\"}", 0, 0,
	  "malformed JSON at line 1, column 7: invalid utf-8 string" },
	{ "UTF-8 surrogate (ED A0 80)", "{\"a\":\"x\xed\xa0\x80\"}", 0, 0,
	  "malformed JSON at line 1, column 8: invalid utf-8 string" },
	{ "UTF-8 above U+10FFFF (F4 90 80 80)", "{\"a\":\"\xf4\x90\x80\x80\"}", 0, 0,
	  "malformed JSON at line 1, column 7: invalid utf-8 string" },
	{ "UTF-8 in a name, overlong", "{\"\xc1\xbf\":1}", 0, 0,
	  "malformed JSON at line 1, column 3: invalid utf-8 string" },
	{ "NUL byte", "{\"a\":\"b\0\"}", 10, 0, "malformed JSON at line 1, column 8: NUL byte" },
	{ "NUL after the document", "{}\0", 3, 0, "malformed JSON at line 1, column 3: NUL byte" },
	{ "nesting past the limit", "[[[[1]]]]", 0, 3,
	  "malformed JSON at line 1, column 4: nesting deeper than 3 levels" },
	{ "unexpected end", "{\"a\":", 0, 0,
	  "malformed JSON at line 1, column 6: unexpected end of data" },
	{ "unclosed array", "{\"a\":[1,2]  ", 0, 0,
	  "malformed JSON at line 1, column 13: unexpected end of data" },
	{ "trailing comma", "[1,]", 0, 0, "malformed JSON at line 1, column 4: unexpected character" },
	{ "column counts characters", "{\"\xc3\xa9\xc3\xa9\":01}", 0, 0,
	  "malformed JSON at line 1, column 7: malformed number" },
	{ "line and column", "{\n\"a\": 1,\n\"b\": 01\n}", 0, 0,
	  "malformed JSON at line 3, column 6: malformed number" },
};

static void test_json_bad(void **state)
{
	const struct json_bad *c = *state;
	struct err e = ERR_INIT;
	size_t n = c->n ? c->n : strlen(c->in);
	json_object *o = json_parse_buf(c->in, n, c->depth, &e);

	if (o) {
		fail_msg("accepted as %s", json_dump_str(o, NULL));
		json_object_put(o);
	}
	assert_int_equal(e.code, ERR_INVALID);
	assert_string_equal(e.msg, c->msg);
}

/* The default depth limit is JSON_DEFAULT_MAX_DEPTH. */
static void test_json_default_depth(void **state)
{
	struct buf ok = BUF_INIT(0), deep = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_object *o;
	char want[128];

	(void)state;
	/* A scalar counts as a level, as json-c counts: 99 arrays + 1 = 100. */
	for (int i = 0; i < JSON_DEFAULT_MAX_DEPTH - 1; i++)
		buf_addch(&ok, '[');
	buf_addch(&ok, '1');
	for (int i = 0; i < JSON_DEFAULT_MAX_DEPTH - 1; i++)
		buf_addch(&ok, ']');
	o = json_parse_buf(ok.data, ok.len, 0, &e);
	assert_non_null(o);
	json_object_put(o);

	for (int i = 0; i < JSON_DEFAULT_MAX_DEPTH + 50; i++)
		buf_addstr(&deep, "{\"a\":");
	buf_addch(&deep, '1');
	for (int i = 0; i < JSON_DEFAULT_MAX_DEPTH + 50; i++)
		buf_addch(&deep, '}');
	assert_null(json_parse_buf(deep.data, deep.len, 0, &e));
	assert_int_equal(e.code, ERR_INVALID);
	snprintf(want, sizeof(want), "nesting deeper than %d levels", JSON_DEFAULT_MAX_DEPTH);
	assert_non_null(strstr(e.msg, want));
	/* With a larger limit it parses (the scan's own stack grows past 64). */
	o = json_parse_buf(deep.data, deep.len, 1000, &e);
	assert_non_null(o);
	json_object_put(o);
	buf_release(&ok);
	buf_release(&deep);
}

/* Each thread reuses one tokener (json.c): a document that fails part way
 * must leave nothing behind for the next, and a new depth limit must take
 * effect, on this thread and on another. */
static void *reuse_round(void *arg)
{
	static const char *const bad[] = {
		"{\"a\":[1,2,{\"b\":",     /* ends inside a nested object */
		"{\"a\":tru}",              /* a bad literal */
		"{\"a\":\"x\"} junk",        /* data after the end */
		"[1,2",
	};
	const char *good = "{\"z\":[3,{\"y\":\"w\"}]}";
	int *fails = arg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err e = ERR_INIT;
		json_object *o = json_parse_buf(bad[i], strlen(bad[i]), 0, &e);

		if (o || e.code != ERR_INVALID)
			(*fails)++;
		json_object_put(o);
		o = json_parse_buf(good, strlen(good), 0, &e);
		if (!o || strcmp(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), good) != 0)
			(*fails)++;
		json_object_put(o);
		/* depth 2 refuses what the default accepted a moment ago ... */
		o = json_parse_buf(good, strlen(good), 2, &e);
		if (o || !strstr(e.msg, "nesting deeper than 2 levels"))
			(*fails)++;
		json_object_put(o);
		/* ... and the default applies again afterwards */
		o = json_parse_buf(good, strlen(good), 0, &e);
		if (!o)
			(*fails)++;
		json_object_put(o);
	}
	return NULL;
}

static void test_json_tokener_reuse(void **state)
{
	int fails = 0, tfails = 0;
	pthread_t t;

	(void)state;
	reuse_round(&fails);
	assert_int_equal(fails, 0);
	assert_int_equal(pthread_create(&t, NULL, reuse_round, &tfails), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(tfails, 0);
}

/* Numbers keep their text: FHIR decimals keep their precision, and
 * integers beyond 64 bits are not clamped. */
static void test_json_number_text(void **state)
{
	static const char *const same[] = {
		"{\"a\":7.50}",
		"{\"a\":1e2}",
		"{\"a\":1E+2,\"b\":-0.0,\"c\":0.000}",
		"{\"a\":123456789012345678901234567890}",
		"[-99999999999999999999]",
		"{\"a\":9223372036854775808}",
		"{\"a\":-9223372036854775809}",
		"{\"a\":18446744073709551616}",
		"{\"x\":[1,123456789012345678901234567890,{\"y\":-99999999999999999999}],\"z\":5,"
		"\"w\":[99999999999999999999,2.50,99999999999999999998]}",
		"123456789012345678901234567890",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(same); i++) {
		struct err e = ERR_INIT;
		char *out = parse_dump(same[i], strlen(same[i]), 0, &e);

		if (!out)
			fail_msg("%s rejected: %s", same[i], e.msg);
		if (strcmp(out, same[i]) != 0)
			fail_msg("%s dumped as %s", same[i], out);
		free(out);
	}
}

static void test_json_int64_limits(void **state)
{
	struct err e = ERR_INIT;
	const char *s = "{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"big\":9223372036854775808}";
	json_object *o = json_parse_buf(s, strlen(s), 0, &e);

	(void)state;
	assert_non_null(o);
	assert_true(json_object_is_type(json_get(o, "max"), json_type_int));
	assert_int_equal(json_object_get_int64(json_get(o, "max")), INT64_MAX);
	assert_true(json_object_is_type(json_get(o, "min"), json_type_int));
	assert_true(json_object_get_int64(json_get(o, "min")) == INT64_MIN);
	/* one past: not an int64 any more, so not json_type_int */
	assert_false(json_object_is_type(json_get(o, "big"), json_type_int));
	assert_string_equal(json_dump_str(o, NULL), s);
	json_object_put(o);
}

/* json_dump (chartkeep's own writer, used for everything stored) writes a
 * compact document back exactly as it was written. */
static void test_json_dump_roundtrip(void **state)
{
	static const char *const docs[] = {
		"{\"a\":7.50,\"b\":1e2,\"c\":-0.0,\"d\":0,\"e\":-5,\"f\":9223372036854775807,"
		"\"g\":-9223372036854775808,\"h\":1E-7,\"i\":0.000}",
		"{\"big\":123456789012345678901234567890,\"neg\":-99999999999999999999,"
		"\"u\":18446744073709551615,\"u1\":18446744073709551616}",
		"{\"s\":\"q\\\"b\\\\s\\n\\r\\t\\u0001\\u001f/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
		"\"t\":true,\"f\":false,\"n\":null,\"e\":\"\",\"a\":[],\"o\":{}}",
		"[[1,[2,[3]]],{\"k\":[{\"x\":null}],\"k\\\"2\":-1}]",
		"{\"v\":\"x\\u0000y\"}",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(docs); i++) {
		struct err e = ERR_INIT;
		struct buf b = BUF_INIT(0);
		json_object *o = json_parse_buf(docs[i], strlen(docs[i]), 0, &e);
		bool same;

		if (!o)
			fail_msg("doc %zu rejected: %s", i, e.msg);
		json_dump(o, &b);
		json_object_put(o);
		same = strcmp(buf_cstr(&b), docs[i]) == 0;
		if (!same)
			print_error("doc %zu dumped as %s\n", i, buf_cstr(&b));
		buf_release(&b);
		assert_true(same);
	}
}

/* A property name holding U+0000: json-c keeps names as C strings, so it
 * would silently become another name ("gender\u0000x" -> "gender").  It must
 * be refused or kept, never changed. */
/* json_split checks escapes in names (found by fuzz_bundle: a name ending in
 * a bare \u was read past its end when compared for duplicates). */
static void test_json_split_bad_name_escape(void **state)
{
	static const char *const bad[] = {
		"{\"\":1,\"a\\u\":2}", "{\"a\\u12\":1,\"b\":2}", "{\"a\\x\":1}",
	};
	static const char good[] = "{\"a\\u0062\":1,\"ab\":2}";
	struct json_span *v = NULL;
	size_t n = 0;
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		assert_int_equal(json_split(bad[i], 0, strlen(bad[i]), false, &v, &n, &e), -1);
		assert_non_null(strstr(e.msg, "escape"));
		free(v);
		v = NULL;
	}
	/* "a\u0062" is "ab": a duplicate once escapes are resolved */
	err_clear(&e);
	assert_int_equal(json_split(good, 0, strlen(good), false, &v, &n, &e), -1);
	assert_non_null(strstr(e.msg, "duplicate"));
	free(v);
}

static void test_json_nul_in_name(void **state)
{
	static const char *const docs[] = {
		"{\"a\\u0000b\":1}",
		"{\"resourceType\":\"Patient\",\"gender\\u0000x\":\"male\"}",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(docs); i++) {
		struct err e = ERR_INIT;
		struct buf b = BUF_INIT(0);
		json_object *o = json_parse_buf(docs[i], strlen(docs[i]), 0, &e);
		bool ok;

		if (!o) {
			assert_int_equal(e.code, ERR_INVALID);
			continue;
		}
		json_dump(o, &b);
		json_object_put(o);
		ok = strcmp(buf_cstr(&b), docs[i]) == 0;
		if (!ok)
			print_error("%s was accepted and became %s\n", docs[i], buf_cstr(&b));
		buf_release(&b);
		assert_true(ok);
	}
}

/* Values built in code (not parsed) have no text to keep. */
static void test_json_dump_built(void **state)
{
	json_object *o = json_object_new_object();
	struct buf b = BUF_INIT(0);

	(void)state;
	json_object_object_add(o, "min", json_object_new_int64(INT64_MIN));
	json_object_object_add(o, "max", json_object_new_int64(INT64_MAX));
	json_object_object_add(o, "umax", json_object_new_uint64(UINT64_MAX));
	json_object_object_add(o, "half", json_object_new_double(0.5));
	json_object_object_add(o, "s", json_object_new_string("a\"b\x01"));
	json_dump(o, &b);
	assert_string_equal(buf_cstr(&b),
			    "{\"min\":-9223372036854775808,\"max\":9223372036854775807,"
			    "\"umax\":18446744073709551615,\"half\":0.5,\"s\":\"a\\\"b\\u0001\"}");
	buf_reset(&b);
	json_dump_member("k\"ey", json_get(o, "half"), &b);
	assert_string_equal(buf_cstr(&b), "\"k\\\"ey\":0.5");
	json_object_put(o);
	buf_release(&b);
}

static void test_json_helpers(void **state)
{
	const char *s = "{\"s\":\"x\",\"n\":1,\"o\":{\"k\":\"v\"},\"a\":[1],\"z\":null}";
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(s, strlen(s), 0, &e);
	struct buf b = BUF_INIT(0);
	size_t len = 0;

	(void)state;
	assert_non_null(o);
	assert_string_equal(json_get_str(o, "s"), "x");
	assert_null(json_get_str(o, "n"));   /* not a string */
	assert_null(json_get_str(o, "nope"));
	assert_non_null(json_get_obj(o, "o"));
	assert_null(json_get_obj(o, "a"));
	assert_non_null(json_get_arr(o, "a"));
	assert_null(json_get_arr(o, "o"));
	assert_null(json_get(o, "z"));       /* null is a NULL json_object */
	assert_null(json_get(json_get(o, "a"), "s")); /* not an object */
	assert_null(json_get(NULL, "s"));
	assert_true(json_is_str(json_get(o, "s"), "x"));
	assert_false(json_is_str(json_get(o, "s"), "y"));
	assert_false(json_is_str(json_get(o, "n"), "1"));
	assert_false(json_is_str(NULL, "x"));
	json_dump(o, &b);
	assert_string_equal(buf_cstr(&b), s);
	assert_string_equal(json_dump_str(o, &len), s);
	assert_int_equal(len, strlen(s));
	/* No escaping of '/' (URLs stay readable). */
	json_object_object_add(o, "u", json_object_new_string("http://x/y"));
	assert_non_null(strstr(json_dump_str(o, NULL), "\"http://x/y\""));
	assert_non_null(strstr(json_dump_pretty(o, NULL), "\n"));
	json_object_put(o);
	buf_release(&b);
}

static void test_err(void **state)
{
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(err_set(&e, ERR_NOT_FOUND, "no %s %d", "thing", 7), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	assert_string_equal(e.msg, "no thing 7");
	err_expr(&e, "Patient.name");
	err_detail(&e, "detail %d", 1);
	assert_string_equal(e.expr, "Patient.name");
	assert_string_equal(e.detail, "detail 1");
	err_set(&e, ERR_INVALID, "again"); /* a new error clears expr and detail */
	assert_string_equal(e.expr, "");
	assert_string_equal(e.detail, "");
	assert_int_equal(err_set(NULL, ERR_INVALID, "x"), -1);
	err_clear(&e);
	assert_int_equal(e.code, ERR_NONE);
	assert_string_equal(e.msg, "");
	assert_string_equal(err_code_name(ERR_PRECONDITION), "precondition-failed");
	assert_string_equal(err_code_name(ERR_NONE), "none");
	assert_string_equal(err_code_name(-1), "unknown");
	assert_string_equal(err_code_name(ERR__COUNT), "unknown");
	for (int c = 0; c < ERR__COUNT; c++)
		assert_string_not_equal(err_code_name(c), "unknown");
}

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_append),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_cap_sticky),
		cmocka_unit_test(test_buf_detach_failed),
		cmocka_unit_test(test_buf_attach_detach),
		cmocka_unit_test(test_buf_json_escape),
		cmocka_unit_test(test_arena_alignment),
		cmocka_unit_test(test_arena_max),
		cmocka_unit_test(test_arena_reset_keeps_first_chunk),
		cmocka_unit_test(test_arena_strings),
		cmocka_unit_test(test_time_parse_length),
		cmocka_unit_test(test_time_days_from_civil),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_now),
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_id_new),
		cmocka_unit_test(test_url_encode),
		cmocka_unit_test(test_url_decode),
		cmocka_unit_test(test_url_decode_bounds),
		cmocka_unit_test(test_json_valid),
		cmocka_unit_test(test_json_default_depth),
		cmocka_unit_test(test_json_number_text),
		cmocka_unit_test(test_json_int64_limits),
		cmocka_unit_test(test_json_dump_roundtrip),
		cmocka_unit_test(test_json_dump_built),
		cmocka_unit_test(test_json_split_bad_name_escape),
		cmocka_unit_test(test_json_nul_in_name),
		cmocka_unit_test(test_json_tokener_reuse),
		cmocka_unit_test(test_json_helpers),
		cmocka_unit_test(test_err),
	};
	/* One group, so that each binary reports one total (tests/run_unit.sh
	 * reads the last summary line): the fixed tests, then a test per row. */
	struct CMUnitTest all[N_OF(tests) + N_OF(time_cases) + N_OF(json_bad)];
	char time_names[N_OF(time_cases)][80];
	char bad_names[N_OF(json_bad)][80];
	size_t n = 0;
	int failed;

	for (size_t i = 0; i < N_OF(tests); i++)
		all[n++] = tests[i];
	for (size_t i = 0; i < N_OF(time_cases); i++) {
		static const char *const kinds[] = { "date", "dateTime", "instant", "time" };
		snprintf(time_names[i], sizeof(time_names[i]), "time_parse %s %s \"%s\"",
			 kinds[time_cases[i].kind], time_cases[i].lo ? "ok" : "bad", time_cases[i].in);
		all[n++] = (struct CMUnitTest){ time_names[i], test_time_parse, NULL, NULL,
						(void *)&time_cases[i] };
	}
	for (size_t i = 0; i < N_OF(json_bad); i++) {
		snprintf(bad_names[i], sizeof(bad_names[i]), "json rejects: %s", json_bad[i].name);
		all[n++] = (struct CMUnitTest){ bad_names[i], test_json_bad, NULL, NULL, (void *)&json_bad[i] };
	}
	failed = _cmocka_run_group_tests("base", all, n, setup, NULL);
	return failed ? 1 : 0;
}
