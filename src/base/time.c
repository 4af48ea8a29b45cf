/* time.c - clocks and FHIR date/time values (see time.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "time.h"
#include "banned.h"

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y += *m <= 2;
}

static void split_ms(int64_t ms, int64_t *y, unsigned *mo, unsigned *d,
		     unsigned *h, unsigned *mi, unsigned *s, unsigned *frac, int *wday)
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t rem = ms - days * 86400000;

	civil_from_days(days, y, mo, d);
	*h = (unsigned)(rem / 3600000);
	*mi = (unsigned)(rem / 60000 % 60);
	*s = (unsigned)(rem / 1000 % 60);
	*frac = (unsigned)(rem % 1000);
	*wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
}

void time_format_instant(int64_t ms, char out[TIME_INSTANT_MAX])
{
	int64_t y;
	unsigned mo, d, h, mi, s, frac;
	int wday;

	split_ms(ms, &y, &mo, &d, &h, &mi, &s, &frac, &wday);
	snprintf(out, TIME_INSTANT_MAX, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
		 (long long)y, mo, d, h, mi, s, frac);
}

void time_format_http(int64_t ms, char out[TIME_HTTP_MAX])
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mn[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t y;
	unsigned mo, d, h, mi, s, frac;
	int wday;

	split_ms(ms, &y, &mo, &d, &h, &mi, &s, &frac, &wday);
	snprintf(out, TIME_HTTP_MAX, "%s, %02u %s %04lld %02u:%02u:%02u GMT",
		 wd[wday], d, mn[mo - 1], (long long)y, h, mi, s);
}

/* Read exactly `len` digits at s[*pos]; -1 if not digits. */
static int digits(const char *s, size_t n, size_t *pos, int len)
{
	int v = 0;

	if (*pos + (size_t)len > n)
		return -1;
	for (int i = 0; i < len; i++) {
		char c = s[*pos + (size_t)i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*pos += (size_t)len;
	return v;
}

static int expect(const char *s, size_t n, size_t *pos, char c)
{
	if (*pos >= n || s[*pos] != c)
		return -1;
	(*pos)++;
	return 0;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap(y) ? 29 : md[m - 1];
}

/* hh:mm:ss(.f+)? -> ms within the day, and whether a fraction was given. */
static int parse_clock(const char *s, size_t n, size_t *pos, int64_t *ms, bool *frac)
{
	int h, mi, sec;
	int64_t f = 0, scale = 100;

	h = digits(s, n, pos, 2);
	if (h < 0 || h > 23 || expect(s, n, pos, ':') < 0)
		return -1;
	mi = digits(s, n, pos, 2);
	if (mi < 0 || mi > 59 || expect(s, n, pos, ':') < 0)
		return -1;
	sec = digits(s, n, pos, 2);
	if (sec < 0 || sec > 60) /* 60: leap second, allowed by the R4 regex */
		return -1;
	*frac = false;
	if (*pos < n && s[*pos] == '.') {
		size_t start = ++(*pos);
		while (*pos < n && s[*pos] >= '0' && s[*pos] <= '9') {
			if (scale > 0) {
				f += (s[*pos] - '0') * scale;
				scale /= 10;
			}
			(*pos)++;
		}
		if (*pos == start)
			return -1;
		*frac = true;
	}
	*ms = ((int64_t)h * 3600 + mi * 60 + (sec > 59 ? 59 : sec)) * 1000 + f;
	return 0;
}

int time_parse(const char *s, size_t n, enum time_kind kind, struct time_val *out)
{
	struct time_val v = { 0, 0, TP_YEAR, false };
	size_t pos = 0;
	int y, mo = 1, d = 1;
	int64_t day0, clock = 0, off_ms = 0;
	bool frac = false;

	if (kind == TIME_TIME) {
		if (parse_clock(s, n, &pos, &clock, &frac) < 0 || pos != n)
			return -1;
		v.lo_ms = clock;
		v.hi_ms = clock + (frac ? 1 : 1000);
		v.prec = frac ? TP_FRACTION : TP_SECOND;
		goto done;
	}
	y = digits(s, n, &pos, 4);
	if (y < 1) /* the R4 regex has no year 0000 */
		return -1;
	if (pos == n) {
		if (kind == TIME_INSTANT)
			return -1;
		v.prec = TP_YEAR;
		v.lo_ms = time_days_from_civil(y, 1, 1) * 86400000;
		v.hi_ms = time_days_from_civil(y + 1, 1, 1) * 86400000;
		goto done;
	}
	if (expect(s, n, &pos, '-') < 0)
		return -1;
	mo = digits(s, n, &pos, 2);
	if (mo < 1 || mo > 12)
		return -1;
	if (pos == n) {
		if (kind == TIME_INSTANT)
			return -1;
		v.prec = TP_MONTH;
		v.lo_ms = time_days_from_civil(y, (unsigned)mo, 1) * 86400000;
		v.hi_ms = v.lo_ms + (int64_t)month_days(y, mo) * 86400000;
		goto done;
	}
	if (expect(s, n, &pos, '-') < 0)
		return -1;
	d = digits(s, n, &pos, 2);
	if (d < 1 || d > month_days(y, mo))
		return -1;
	day0 = time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000;
	if (pos == n) {
		if (kind == TIME_INSTANT)
			return -1;
		v.prec = TP_DAY;
		v.lo_ms = day0;
		v.hi_ms = day0 + 86400000;
		goto done;
	}
	if (kind == TIME_DATE || expect(s, n, &pos, 'T') < 0)
		return -1;
	if (parse_clock(s, n, &pos, &clock, &frac) < 0)
		return -1;
	/* A time of day requires a zone in dateTime and instant. */
	if (pos < n && s[pos] == 'Z') {
		pos++;
	} else if (pos < n && (s[pos] == '+' || s[pos] == '-')) {
		int sign = s[pos] == '-' ? -1 : 1, oh, om;
		pos++;
		oh = digits(s, n, &pos, 2);
		if (oh < 0 || expect(s, n, &pos, ':') < 0)
			return -1;
		om = digits(s, n, &pos, 2);
		if (om < 0 || om > 59 || oh > 14 || (oh == 14 && om != 0))
			return -1;
		off_ms = sign * ((int64_t)oh * 3600 + om * 60) * 1000;
	} else {
		return -1;
	}
	if (pos != n)
		return -1;
	v.has_tz = true;
	v.prec = frac ? TP_FRACTION : TP_SECOND;
	v.lo_ms = day0 + clock - off_ms;
	v.hi_ms = v.lo_ms + (frac ? 1 : 1000);
done:
	if (out)
		*out = v;
	return 0;
}
