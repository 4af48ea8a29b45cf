/* time.h - clocks and FHIR date/time values with their precision.
 *
 * FHIR dates carry a precision: "2020" means the whole year.  time_parse()
 * turns a date, dateTime, instant or time into the half-open UTC range
 * [lo_ms, hi_ms) it denotes, which is what search (eq, ap, sa, eb, ...) and
 * validation need.  Values without a time zone are read as UTC. */
#ifndef CK_TIME_H
#define CK_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIME_INSTANT_MAX 32 /* "2026-11-25T08:48:00.123Z" + NUL, rounded up */
#define TIME_HTTP_MAX 40    /* "Wed, 25 Nov 2026 08:48:00 GMT" + NUL */

enum time_kind { TIME_DATE, TIME_DATETIME, TIME_INSTANT, TIME_TIME };
enum time_prec { TP_YEAR, TP_MONTH, TP_DAY, TP_SECOND, TP_FRACTION };

struct time_val {
	int64_t lo_ms;  /* first millisecond denoted (UTC) */
	int64_t hi_ms;  /* first millisecond after it */
	int prec;       /* enum time_prec */
	bool has_tz;
};

int64_t time_now_ms(void);
/* ms since the epoch -> "YYYY-MM-DDThh:mm:ss.sssZ" (always UTC, ms precision). */
void time_format_instant(int64_t ms, char out[TIME_INSTANT_MAX]);
/* ms since the epoch -> RFC 7231 IMF-fixdate, for Last-Modified. */
void time_format_http(int64_t ms, char out[TIME_HTTP_MAX]);
/* Parse s[0..n) as the given FHIR primitive; 0 if valid (out filled when not
 * NULL), -1 if not.  Checks the R4 regex and that the day exists. */
int time_parse(const char *s, size_t n, enum time_kind kind, struct time_val *out);
/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
