/* demo_gen.c - deterministic synthetic HIM data as FHIR R4 JSON.
 *
 * What it makes: see demo_gen.h.  How:
 *  - One PRNG stream per patient (xoshiro256** seeded through splitmix64
 *    from the seed and the patient number), so a patient's record does not
 *    depend on the others and the output is byte-identical for a seed.
 *  - Every resource is written straight into one struct buf per batch with
 *    literal fragments and our own number/date formatting (no json-c, no
 *    printf in the hot path); resources are cut out of the buffer at emit.
 *  - Clinical content comes from small curated tables below: ~170 billable
 *    ICD-10-CM codes with their official descriptions (FY2016 release, codes
 *    still valid today), ICD-10-PCS FY2018 and HCPCS Level II 2019 codes with
 *    their official descriptions (copied from data/codes in the shared
 *    reference set), LOINC vital signs, labs and note types.  Each diagnosis
 *    row says where it can be the principal diagnosis, for whom (age, sex, as
 *    the CMS Medicare Code Editor lists them), how common it is as a chronic
 *    problem, and which labs, procedures and billed items come with it.
 *    No CPT: it is AMA-licensed.
 *  - Coding rules a coder would check are applied: hypertension with heart
 *    failure or CKD becomes I11/I12/I13, an exacerbation replaces its chronic
 *    code, "use additional code" partners are added, POA indicators skip
 *    exempt codes, age/sex edits are respected. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/demo_gen.h"
#include "base/base.h"
#include "base/banned.h"

#define DEFAULT_AS_OF_DAY 20269       /* 2025-06-30 */
#define MIN_AS_OF_DAY 7305            /* 1990-01-01 */
#define MAX_AS_OF_DAY 47481           /* 2099-12-31 */
#define WINDOW_DAYS (3 * 365)         /* encounters fall in the last 3 years */
#define DAY_SECS 86400
#define HOUR_SECS 3600
#define MIN_SECS 60
#define UNSIGNED_PCT 15               /* plus notes too recent to be signed */
#define MAX_PATIENTS 9000000u         /* MRNs and visit numbers stay unique */
#define ID_CAP 48
#define STREAM_DIRECTORY 0            /* PRNG stream; patient i uses i + 1 */

#define URL_MRN "http://hospital.example.org/mrn"
#define URL_VISIT "http://hospital.example.org/visit-number"
#define URL_DOC "http://hospital.example.org/document"
#define URL_CLAIM "http://hospital.example.org/claim"
#define URL_PAYER_ID "http://hospital.example.org/payer-id"
#define URL_LICENSE "http://hospital.example.org/state-license"
#define SYS_NPI "http://hl7.org/fhir/sid/us-npi"
#define SYS_SSN "http://hl7.org/fhir/sid/us-ssn"
#define SYS_EIN "urn:oid:2.16.840.1.113883.4.4"
#define SYS_ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"
#define SYS_ICD10PCS "http://www.cms.gov/Medicare/Coding/ICD10"
#define SYS_HCPCS "urn:oid:2.16.840.1.113883.6.285"
#define SYS_LOINC "http://loinc.org"
#define SYS_UCUM "http://unitsofmeasure.org"
#define THO "http://terminology.hl7.org/CodeSystem/"

/* Append a string literal (its length known at compile time). */
#define LIT(b, s) buf_add((b), "" s, sizeof(s) - 1)

/* ---------------------------------------------------------------- PRNG */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Independent stream `stream`/`sub` of the run seeded with `seed`. */
static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream, uint64_t sub)
{
	uint64_t x = seed;
	int i;

	x = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ULL)
		^ (sub * 0x8cb92ba72f3d8dd7ULL);
	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna, public domain algorithm). */
static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n) (n > 0); the bias of the multiply-shift is < 2^-32. */
static unsigned rng_below(struct rng *r, unsigned n)
{
	return (unsigned)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static int rng_range(struct rng *r, int lo, int hi)
{
	return lo + (int)rng_below(r, (unsigned)(hi - lo + 1));
}

static bool rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

/* Index drawn from integer weights w[0..n). */
static unsigned rng_weighted(struct rng *r, const unsigned char *w, unsigned n)
{
	unsigned total = 0, i, x;

	for (i = 0; i < n; i++)
		total += w[i];
	x = rng_below(r, total);
	for (i = 0; i + 1 < n; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

#define PICK(r, arr) ((arr)[rng_below((r), ARRAY_SIZE(arr))])

/* ------------------------------------------------------ output helpers */

/* Room for n more bytes at the end of b, or NULL once b has failed. */
static inline char *room(struct buf *b, size_t n)
{
	if (buf_grow(b, n) < 0)
		return NULL;
	return b->data + b->len;
}

static inline void used(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

static void put_u64(struct buf *b, uint64_t v)
{
	char tmp[24], *p;
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	p = room(b, n);
	if (!p)
		return;
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	used(b, n);
}

/* v written with `width` digits, zero-padded (v < 10^width). */
static void put_pad(struct buf *b, unsigned v, int width)
{
	char *p = room(b, (size_t)width);
	int i;

	if (!p)
		return;
	for (i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	used(b, (size_t)width);
}

/* A decimal from an integer scaled by 10^dec: (750, 2) -> "7.50".  The
 * trailing zeros stay: FHIR decimals keep their precision. */
static void put_fixed(struct buf *b, int64_t scaled, int dec)
{
	uint64_t v, p10 = 1;
	int i;

	if (scaled < 0) {
		buf_addch(b, '-');
		v = (uint64_t)(-scaled);
	} else {
		v = (uint64_t)scaled;
	}
	for (i = 0; i < dec; i++)
		p10 *= 10;
	put_u64(b, v / p10);
	if (dec > 0) {
		buf_addch(b, '.');
		put_pad(b, (unsigned)(v % p10), dec);
	}
}

/* A JSON string value: quotes plus escaped body. */
static void put_jstr(struct buf *b, const char *s)
{
	buf_addch(b, '"');
	buf_add_json_str(b, s, strlen(s));
	buf_addch(b, '"');
}

/* Text for an XHTML div inside a JSON string: escape for XML, then JSON. */
static void put_xhtml_text(struct buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc;

		switch (*s) {
		case '&': esc = "&amp;"; break;
		case '<': esc = "&lt;"; break;
		case '>': esc = "&gt;"; break;
		default: continue;
		}
		buf_add_json_str(b, run, (size_t)(s - run));
		buf_addstr(b, esc);
		run = s + 1;
	}
	buf_add_json_str(b, run, strlen(run));
}

static void put_base64(struct buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	char *p = room(b, (n + 2) / 3 * 4);

	if (!p)
		return;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		p[o++] = tab[v >> 18];
		p[o++] = tab[(v >> 12) & 63];
		p[o++] = tab[(v >> 6) & 63];
		p[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		p[o++] = tab[v >> 18];
		p[o++] = tab[(v >> 12) & 63];
		p[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		p[o++] = '=';
	}
	used(b, o);
}

/* Copy s into dst[cap] (truncating); the buf-free way for fixed fields. */
static void cpy(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* ------------------------------------------------------------- time */

/* Times are "local seconds": seconds since 1970-01-01T00:00 of the
 * hospital's wall clock.  The UTC offset (US Eastern, with the post-2007
 * daylight saving rules) is applied only when a dateTime is written. */

static void civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
	/* H. Hinnant's civil_from_days. */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* 0 = Sunday. */
static unsigned weekday(int64_t days)
{
	int64_t w = (days + 4) % 7;

	return (unsigned)(w < 0 ? w + 7 : w);
}

/* Day of month of the n-th Sunday (n >= 1) of y-m. */
static unsigned nth_sunday(int y, unsigned m, unsigned n)
{
	unsigned first = weekday(time_days_from_civil(y, m, 1));

	return 1 + (7 - first) % 7 + 7 * (n - 1);
}

/* UTC offset in hours of a local time in US Eastern.  *gap is set for
 * the hour that does not exist when clocks spring forward.  DST runs from
 * the second Sunday in March to the first Sunday in November since 2007,
 * from the first Sunday in April to the last Sunday in October before
 * (as_of is kept after 1990, so older rules never matter). */
static int eastern_offset(int64_t t, bool *gap)
{
	int64_t days = floor_div(t, DAY_SECS);
	unsigned hour = (unsigned)((t - days * DAY_SECS) / HOUR_SECS);
	unsigned m, d, start_m, start_d, end_m, end_d;
	int y;

	civil(days, &y, &m, &d);
	if (y >= 2007) {
		start_m = 3;
		start_d = nth_sunday(y, 3, 2);
		end_m = 11;
		end_d = nth_sunday(y, 11, 1);
	} else {
		start_m = 4;
		start_d = nth_sunday(y, 4, 1);
		end_m = 10;
		end_d = nth_sunday(y, 10, 4);
		if (end_d + 7 <= 31)
			end_d += 7;
	}
	*gap = m == start_m && d == start_d && hour == 2;
	if (m < start_m || m > end_m)
		return -5;
	if (m > start_m && m < end_m)
		return -4;
	if (m == start_m)
		return (d > start_d || (d == start_d && hour >= 2)) ? -4 : -5;
	return (d < end_d || (d == end_d && hour < 2)) ? -4 : -5;
}

static void put_date_raw(struct buf *b, int64_t days)
{
	unsigned m, d;
	int y;

	civil(days, &y, &m, &d);
	put_pad(b, (unsigned)y, 4);
	buf_addch(b, '-');
	put_pad(b, m, 2);
	buf_addch(b, '-');
	put_pad(b, d, 2);
}

/* "YYYY-MM-DD" (quoted). */
static void put_date(struct buf *b, int64_t days)
{
	buf_addch(b, '"');
	put_date_raw(b, days);
	buf_addch(b, '"');
}

/* "YYYY-MM" (quoted): a partial dateTime, for onsets nobody knows better. */
static void put_month(struct buf *b, int64_t days)
{
	unsigned m, d;
	int y;

	civil(days, &y, &m, &d);
	buf_addch(b, '"');
	put_pad(b, (unsigned)y, 4);
	buf_addch(b, '-');
	put_pad(b, m, 2);
	buf_addch(b, '"');
}

static void put_datetime_raw(struct buf *b, int64_t t)
{
	bool gap;
	int off = eastern_offset(t, &gap);
	int64_t days;
	unsigned s;

	if (gap)
		t += HOUR_SECS; /* 02:30 on the spring-forward day reads 03:30 */
	days = floor_div(t, DAY_SECS);
	s = (unsigned)(t - days * DAY_SECS);

	put_date_raw(b, days);
	buf_addch(b, 'T');
	put_pad(b, s / 3600, 2);
	buf_addch(b, ':');
	put_pad(b, s / 60 % 60, 2);
	buf_addch(b, ':');
	put_pad(b, s % 60, 2);
	buf_addch(b, '-');
	put_pad(b, (unsigned)-off, 2);
	LIT(b, ":00");
}

/* "YYYY-MM-DDThh:mm:ss-05:00" (quoted); also a valid FHIR instant. */
static void put_datetime(struct buf *b, int64_t t)
{
	buf_addch(b, '"');
	put_datetime_raw(b, t);
	buf_addch(b, '"');
}

static int64_t day_of(int64_t t)
{
	return floor_div(t, DAY_SECS);
}

/* ------------------------------------------------------ FHIR fragments */

static void put_ref(struct buf *b, const char *type_slash, const char *id)
{
	LIT(b, "{\"reference\":\"");
	buf_addstr(b, type_slash);
	buf_addstr(b, id);
	LIT(b, "\"}");
}

static void put_coding(struct buf *b, const char *sys, const char *code,
	const char *display)
{
	LIT(b, "{\"system\":\"");
	buf_addstr(b, sys);
	LIT(b, "\",\"code\":\"");
	buf_addstr(b, code);
	if (display) {
		LIT(b, "\",\"display\":");
		put_jstr(b, display);
		buf_addch(b, '}');
	} else {
		LIT(b, "\"}");
	}
}

/* A CodeableConcept with one coding, plus text when with_text. */
static void put_cc(struct buf *b, const char *sys, const char *code,
	const char *display, bool with_text)
{
	LIT(b, "{\"coding\":[");
	put_coding(b, sys, code, display);
	buf_addch(b, ']');
	if (with_text && display) {
		LIT(b, ",\"text\":");
		put_jstr(b, display);
	}
	buf_addch(b, '}');
}

/* {"value":v,"unit":u,"system":UCUM,"code":c} */
static void put_qty(struct buf *b, int64_t scaled, int dec, const char *unit,
	const char *ucum)
{
	LIT(b, "{\"value\":");
	put_fixed(b, scaled, dec);
	LIT(b, ",\"unit\":");
	put_jstr(b, unit);
	LIT(b, ",\"system\":\"" SYS_UCUM "\",\"code\":");
	put_jstr(b, ucum);
	buf_addch(b, '}');
}

static void put_money(struct buf *b, int64_t cents)
{
	LIT(b, "{\"value\":");
	put_fixed(b, cents, 2);
	LIT(b, ",\"currency\":\"USD\"}");
}

static void put_period(struct buf *b, int64_t start, int64_t end, bool has_end)
{
	LIT(b, "{\"start\":");
	put_datetime(b, start);
	if (has_end) {
		LIT(b, ",\"end\":");
		put_datetime(b, end);
	}
	buf_addch(b, '}');
}

/* ---------------------------------------------------------------- names */

/* Common US given names with a usual nickname (for near-duplicates); the
 * groups keep given and family names plausible together and carry the
 * languages patients in central Ohio speak besides English. */
struct given {
	const char *name;
	const char *nick;
};

static const struct given gen_female[] = {
	{ "Mary", NULL }, { "Patricia", "Patty" }, { "Jennifer", "Jen" },
	{ "Linda", NULL }, { "Elizabeth", "Liz" }, { "Barbara", "Barb" },
	{ "Susan", "Sue" }, { "Jessica", "Jess" }, { "Sarah", NULL },
	{ "Karen", NULL }, { "Lisa", NULL }, { "Nancy", NULL },
	{ "Betty", NULL }, { "Sandra", "Sandy" }, { "Margaret", "Peggy" },
	{ "Ashley", NULL }, { "Kimberly", "Kim" }, { "Emily", NULL },
	{ "Donna", NULL }, { "Michelle", "Shelly" }, { "Carol", NULL },
	{ "Amanda", "Mandy" }, { "Melissa", "Missy" }, { "Deborah", "Debbie" },
	{ "Stephanie", "Steph" }, { "Dorothy", "Dottie" }, { "Rebecca", "Becky" },
	{ "Sharon", NULL }, { "Laura", NULL }, { "Cynthia", "Cindy" },
	{ "Amy", NULL }, { "Kathleen", "Kathy" }, { "Angela", "Angie" },
	{ "Shirley", NULL }, { "Brenda", NULL }, { "Emma", NULL },
	{ "Anna", NULL }, { "Pamela", "Pam" }, { "Nicole", "Nikki" },
	{ "Samantha", "Sam" }, { "Katherine", "Kate" }, { "Christine", "Chris" },
	{ "Helen", NULL }, { "Debra", "Deb" }, { "Rachel", NULL },
	{ "Carolyn", NULL }, { "Janet", NULL }, { "Catherine", "Cathy" },
	{ "Heather", NULL }, { "Diane", NULL }, { "Olivia", "Liv" },
	{ "Julie", NULL }, { "Joyce", NULL }, { "Victoria", "Vicky" },
	{ "Ruth", NULL }, { "Virginia", "Ginny" }, { "Lauren", NULL },
	{ "Kelly", NULL }, { "Christina", "Tina" }, { "Joan", NULL },
	{ "Evelyn", "Evie" }, { "Judith", "Judy" }, { "Andrea", NULL },
	{ "Hannah", NULL }, { "Megan", NULL }, { "Cheryl", NULL },
	{ "Jacqueline", "Jackie" }, { "Martha", "Marty" }, { "Madison", "Maddie" },
	{ "Teresa", "Terri" }, { "Gloria", NULL }, { "Janice", "Jan" },
	{ "Kathryn", "Katie" }, { "Abigail", "Abby" }, { "Sophia", "Sophie" },
	{ "Frances", "Fran" }, { "Alice", NULL }, { "Isabella", "Bella" },
	{ "Julia", NULL }, { "Grace", NULL }, { "Amber", NULL },
	{ "Denise", NULL }, { "Danielle", "Dani" }, { "Beverly", "Bev" },
	{ "Charlotte", "Charlie" }, { "Natalie", "Nat" }, { "Diana", NULL },
	{ "Brittany", NULL }, { "Kayla", NULL }, { "Alexis", "Lexi" },
	{ "Imani", NULL }, { "Keisha", NULL }, { "Latoya", NULL },
	{ "Tanisha", NULL }, { "Ebony", NULL }, { "Aaliyah", NULL },
	{ "Destiny", NULL }, { "Jasmine", "Jazz" }, { "Zoe", NULL },
	{ "Chloe", NULL }, { "Mia", NULL }, { "Ava", NULL },
	{ "Harper", NULL }, { "Leah", NULL }, { "Erin", NULL },
	{ "Shannon", NULL }, { "Tiffany", NULL }, { "Crystal", NULL },
};

static const struct given gen_male[] = {
	{ "James", "Jim" }, { "Robert", "Bob" }, { "John", "Jack" },
	{ "Michael", "Mike" }, { "David", "Dave" }, { "William", "Bill" },
	{ "Richard", "Rick" }, { "Joseph", "Joe" }, { "Thomas", "Tom" },
	{ "Christopher", "Chris" }, { "Charles", "Chuck" }, { "Daniel", "Dan" },
	{ "Matthew", "Matt" }, { "Anthony", "Tony" }, { "Mark", NULL },
	{ "Donald", "Don" }, { "Steven", "Steve" }, { "Andrew", "Andy" },
	{ "Paul", NULL }, { "Joshua", "Josh" }, { "Kenneth", "Ken" },
	{ "Kevin", NULL }, { "Brian", NULL }, { "George", NULL },
	{ "Timothy", "Tim" }, { "Ronald", "Ron" }, { "Jason", NULL },
	{ "Edward", "Ed" }, { "Jeffrey", "Jeff" }, { "Ryan", NULL },
	{ "Jacob", "Jake" }, { "Gary", NULL }, { "Nicholas", "Nick" },
	{ "Eric", NULL }, { "Jonathan", "Jon" }, { "Stephen", "Steve" },
	{ "Larry", NULL }, { "Justin", NULL }, { "Scott", NULL },
	{ "Brandon", NULL }, { "Benjamin", "Ben" }, { "Samuel", "Sam" },
	{ "Gregory", "Greg" }, { "Alexander", "Alex" }, { "Patrick", "Pat" },
	{ "Frank", NULL }, { "Raymond", "Ray" }, { "Jack", NULL },
	{ "Dennis", NULL }, { "Jerry", NULL }, { "Tyler", NULL },
	{ "Aaron", NULL }, { "Adam", NULL }, { "Nathan", "Nate" },
	{ "Henry", "Hank" }, { "Zachary", "Zach" }, { "Douglas", "Doug" },
	{ "Peter", "Pete" }, { "Kyle", NULL }, { "Noah", NULL },
	{ "Ethan", NULL }, { "Jeremy", NULL }, { "Walter", "Walt" },
	{ "Christian", NULL }, { "Keith", NULL }, { "Roger", NULL },
	{ "Terry", NULL }, { "Austin", NULL }, { "Sean", NULL },
	{ "Gerald", "Jerry" }, { "Carl", NULL }, { "Harold", "Hal" },
	{ "Dylan", NULL }, { "Arthur", "Art" }, { "Lawrence", "Larry" },
	{ "Jordan", NULL }, { "Jesse", NULL }, { "Bryan", NULL },
	{ "Bruce", NULL }, { "Gabriel", "Gabe" }, { "Logan", NULL },
	{ "Alan", NULL }, { "Albert", "Al" }, { "Willie", NULL },
	{ "Elijah", "Eli" }, { "Wayne", NULL }, { "Vincent", "Vince" },
	{ "Mason", NULL }, { "Roy", NULL }, { "Ralph", NULL },
	{ "Russell", "Russ" }, { "Bradley", "Brad" }, { "Philip", "Phil" },
	{ "Eugene", "Gene" }, { "DeShawn", NULL }, { "Darnell", NULL },
	{ "Jamal", NULL }, { "Tyrone", NULL }, { "Andre", NULL },
	{ "Marcus", NULL }, { "Terrence", "Terry" }, { "Liam", NULL },
	{ "Lucas", "Luke" }, { "Elias", NULL }, { "Julian", NULL },
	{ "Malik", NULL }, { "Darius", NULL }, { "Connor", NULL },
};

static const char *const gen_family[] = {
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis",
	"Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
	"Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
	"Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
	"Adams", "Nelson", "Baker", "Hall", "Campbell", "Mitchell", "Carter",
	"Roberts", "Phillips", "Evans", "Turner", "Parker", "Edwards",
	"Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan",
	"Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Cox",
	"Ward", "Richardson", "Watson", "Brooks", "Wood", "James", "Bennett",
	"Gray", "Hughes", "Price", "Sanders", "Myers", "Long", "Ross",
	"Foster", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell",
	"Coleman", "Butler", "Henderson", "Barnes", "Fisher", "Simmons",
	"Jordan", "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds",
	"Griffin", "Wallace", "West", "Cole", "Hayes", "Bryant", "Gibson",
	"Ellis", "Stevens", "Murray", "Ford", "Marshall", "Owens", "Harrison",
	"McDonald", "Woods", "Washington", "Kennedy", "Wells", "Henry",
	"Freeman", "Webb", "Tucker", "Burns", "Crawford", "Olson", "Simpson",
	"Porter", "Hunter", "Gordon", "Shaw", "Snyder", "Mason", "Dixon",
	"Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson",
	"Boyd", "Rose", "Stone", "Fox", "Warren", "Mills", "Meyer", "Rice",
	"Schmidt", "Daniels", "Ferguson", "Nichols", "Stephens", "Weaver",
	"Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer",
	"Hawkins", "Arnold", "Pierce", "Hansen", "Peters", "Hart", "Bradley",
	"Knight", "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson",
	"Carroll", "Lane", "Riley", "Andrews", "Ray", "Berry", "Perkins",
	"Hoffman", "Johnston", "Matthews", "Richards", "Willis", "Carpenter",
	"Lawrence", "O'Brien", "O'Connor", "Kowalski", "Novak", "Schwartz",
	"Becker", "Russo", "Cohen", "Goldberg", "Yoder", "Hershberger",
	"Troyer", "Miller-Jones", "Begay", "Okafor", "Mensah", "Boateng",
};

static const struct given hisp_female[] = {
	{ "Maria", NULL }, { "Guadalupe", "Lupe" }, { "Rosa", NULL },
	{ "Ana", NULL }, { "Carmen", NULL }, { "Lucia", NULL },
	{ "Yolanda", "Yoli" }, { "Ximena", NULL }, { "Camila", "Cami" },
	{ "Valentina", "Vale" }, { "Sofia", NULL }, { "Gabriela", "Gaby" },
	{ "Mariana", NULL }, { "Esperanza", NULL }, { "Josefina", "Josie" },
	{ "Mercedes", NULL }, { "Alejandra", "Ale" }, { "Veronica", "Vero" },
	{ "Adriana", NULL }, { "Daniela", "Dani" }, { "Leticia", "Lety" },
	{ "Marisol", NULL }, { "Isabel", "Chabela" }, { "Paola", NULL },
};

static const struct given hisp_male[] = {
	{ "Jose", "Pepe" }, { "Juan", NULL }, { "Luis", NULL },
	{ "Carlos", NULL }, { "Miguel", NULL }, { "Jesus", "Chuy" },
	{ "Francisco", "Paco" }, { "Alejandro", "Alex" }, { "Javier", NULL },
	{ "Diego", NULL }, { "Mateo", NULL }, { "Santiago", "Santi" },
	{ "Rafael", "Rafa" }, { "Antonio", "Tono" }, { "Manuel", "Manny" },
	{ "Ricardo", "Ricky" }, { "Eduardo", "Lalo" }, { "Fernando", "Nando" },
	{ "Roberto", "Beto" }, { "Guillermo", "Memo" }, { "Hector", NULL },
	{ "Oscar", NULL }, { "Sergio", NULL }, { "Emiliano", NULL },
};

static const char *const hisp_family[] = {
	"Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
	"Perez", "Sanchez", "Ramirez", "Torres", "Flores", "Rivera", "Gomez",
	"Diaz", "Cruz", "Reyes", "Morales", "Gutierrez", "Ortiz", "Ramos",
	"Chavez", "Mendoza", "Ruiz", "Alvarez", "Castillo", "Jimenez",
	"Vasquez", "Romero", "Moreno", "Herrera", "Medina", "Aguilar", "Castro",
	"Fernandez", "Vargas", "Guzman", "Mendez", "Salazar", "Soto",
	"Delgado", "Pena", "Contreras", "Sandoval", "De La Cruz",
};

static const struct given easia_female[] = {
	{ "Mei", NULL }, { "Lin", NULL }, { "Xiu", NULL }, { "Yan", NULL },
	{ "Thuy", NULL }, { "Ngoc", NULL }, { "Lan", NULL }, { "Hoa", NULL },
	{ "Ji-woo", NULL }, { "Min-seo", NULL }, { "Yuki", NULL },
	{ "Hana", NULL }, { "Grace", NULL }, { "Jennifer", "Jen" },
	{ "Michelle", NULL }, { "Amy", NULL },
};

static const struct given easia_male[] = {
	{ "Wei", NULL }, { "Jun", NULL }, { "Hao", NULL }, { "Lei", NULL },
	{ "Minh", NULL }, { "Duc", NULL }, { "Tuan", NULL }, { "Huy", NULL },
	{ "Min-jun", NULL }, { "Sung", NULL }, { "Kenji", NULL },
	{ "Hiroshi", NULL }, { "Kevin", NULL }, { "David", "Dave" },
	{ "Daniel", "Dan" }, { "Andrew", "Andy" },
};

static const char *const easia_family[] = {
	"Nguyen", "Tran", "Pham", "Le", "Vu", "Hoang", "Chen", "Wang", "Li",
	"Zhang", "Liu", "Yang", "Huang", "Wu", "Zhou", "Kim", "Park", "Choi",
	"Lee", "Jung", "Tanaka", "Nakamura", "Suzuki", "Yamamoto", "Lin",
};

static const struct given sasia_female[] = {
	{ "Priya", NULL }, { "Anjali", NULL }, { "Sunita", NULL },
	{ "Deepa", NULL }, { "Kavya", NULL }, { "Pooja", NULL },
	{ "Sita", NULL }, { "Laxmi", NULL }, { "Meera", NULL },
	{ "Nisha", NULL }, { "Asha", NULL }, { "Bhumika", NULL },
};

static const struct given sasia_male[] = {
	{ "Raj", NULL }, { "Arjun", NULL }, { "Vikram", "Vik" },
	{ "Rohan", NULL }, { "Sanjay", NULL }, { "Amit", NULL },
	{ "Rajesh", "Raj" }, { "Bishnu", NULL }, { "Hari", NULL },
	{ "Krishna", NULL }, { "Suresh", NULL }, { "Dil", NULL },
};

static const char *const sasia_family[] = {
	"Patel", "Shah", "Singh", "Sharma", "Kumar", "Gupta", "Reddy", "Rao",
	"Desai", "Mehta", "Gurung", "Rai", "Tamang", "Adhikari", "Subedi",
};

static const struct given mena_female[] = {
	{ "Fatima", NULL }, { "Aisha", NULL }, { "Hodan", NULL },
	{ "Amina", NULL }, { "Khadija", NULL }, { "Halima", NULL },
	{ "Sahra", NULL }, { "Maryam", NULL }, { "Layla", NULL },
	{ "Nasra", NULL }, { "Ifrah", NULL }, { "Zainab", NULL },
};

static const struct given mena_male[] = {
	{ "Mohamed", NULL }, { "Ahmed", NULL }, { "Abdi", NULL },
	{ "Hassan", NULL }, { "Omar", NULL }, { "Abdullahi", NULL },
	{ "Yusuf", NULL }, { "Ali", NULL }, { "Ibrahim", NULL },
	{ "Khalid", NULL }, { "Mustafa", NULL }, { "Said", NULL },
};

static const char *const mena_family[] = {
	"Mohamed", "Ahmed", "Ali", "Hassan", "Abdi", "Warsame", "Farah",
	"Osman", "Yusuf", "Ibrahim", "Jama", "Haddad", "Khalil", "Nasser",
	"Aden",
};

struct lang {
	const char *code;
	const char *display;
};

enum { L_EN, L_ES, L_ZH, L_VI, L_KO, L_NE, L_SO, L_AR, L__N };

static const struct lang langs[L__N] = {
	[L_EN] = { "en-US", "English (United States)" },
	[L_ES] = { "es", "Spanish" },
	[L_ZH] = { "zh", "Chinese" },
	[L_VI] = { "vi", "Vietnamese" },
	[L_KO] = { "ko", "Korean" },
	[L_NE] = { "ne", "Nepali" },
	[L_SO] = { "so", "Somali" },
	[L_AR] = { "ar", "Arabic" },
};

struct name_group {
	const struct given *female, *male;
	unsigned nfemale, nmale;
	const char *const *family;
	unsigned nfamily;
	unsigned char weight;     /* share of patients */
	unsigned char other_pct;  /* prefers a language other than English */
	unsigned char lang[2];    /* which ones */
};

#define GROUP(f, m, fam, w, pct, l1, l2) \
	{ f, m, ARRAY_SIZE(f), ARRAY_SIZE(m), fam, ARRAY_SIZE(fam), w, pct, { l1, l2 } }

static const struct name_group groups[] = {
	GROUP(gen_female, gen_male, gen_family, 70, 0, L_EN, L_EN),
	GROUP(hisp_female, hisp_male, hisp_family, 15, 35, L_ES, L_ES),
	GROUP(easia_female, easia_male, easia_family, 6, 25, L_ZH, L_VI),
	GROUP(sasia_female, sasia_male, sasia_family, 4, 20, L_NE, L_NE),
	GROUP(mena_female, mena_male, mena_family, 5, 40, L_SO, L_AR),
};

/* --------------------------------------------------------------- places */

static const char *const streets[] = {
	"Main", "Oak", "Maple", "Cedar", "Elm", "Pine", "Walnut", "High",
	"Broad", "Park", "Lake", "Hill", "Church", "Washington", "Lincoln",
	"Jefferson", "Franklin", "Madison", "Sunset", "Riverside", "Meadow",
	"Forest", "Spring", "Chestnut", "Willow", "Hickory", "Birch",
	"Dogwood", "Sycamore", "Poplar", "Highland", "Cherry", "Mill",
	"Center", "Ridge", "Valley", "Orchard", "Grove", "Summit", "Fairview",
	"Woodland", "Prospect", "Liberty", "Cleveland", "Morse", "Karl",
	"Hamilton", "Livingston", "Parsons", "Sullivant", "Hudson",
	"Indianola", "Neil", "Olentangy", "Scioto", "Sawmill", "Refugee",
	"Brice", "Hague", "Schrock",
};

static const char *const street_suffix[] = {
	"St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way", "Pl", "Cir",
};

struct city {
	const char *name, *state, *zip, *area;
	unsigned char weight;
};

/* Real places so that addresses look right; street numbers, phones and
 * everything else are made up. */
static const struct city cities[] = {
	{ "Columbus", "OH", "43201", "614", 10 },
	{ "Columbus", "OH", "43204", "614", 8 },
	{ "Columbus", "OH", "43207", "614", 8 },
	{ "Columbus", "OH", "43211", "614", 7 },
	{ "Columbus", "OH", "43215", "614", 6 },
	{ "Columbus", "OH", "43224", "380", 7 },
	{ "Columbus", "OH", "43229", "614", 8 },
	{ "Columbus", "OH", "43232", "380", 7 },
	{ "Dublin", "OH", "43017", "614", 5 },
	{ "Westerville", "OH", "43081", "614", 5 },
	{ "Grove City", "OH", "43123", "614", 5 },
	{ "Hilliard", "OH", "43026", "614", 4 },
	{ "Reynoldsburg", "OH", "43068", "614", 4 },
	{ "Gahanna", "OH", "43230", "614", 4 },
	{ "Delaware", "OH", "43015", "740", 3 },
	{ "Newark", "OH", "43055", "740", 3 },
	{ "Lancaster", "OH", "43130", "740", 3 },
	{ "Marysville", "OH", "43040", "937", 2 },
	{ "Worthington", "OH", "43085", "614", 3 },
	{ "Pickerington", "OH", "43147", "614", 3 },
	{ "Marion", "OH", "43302", "740", 2 },
	{ "Zanesville", "OH", "43701", "740", 2 },
	{ "London", "OH", "43140", "740", 1 },
	{ "Circleville", "OH", "43113", "740", 1 },
	{ "Mount Vernon", "OH", "43050", "740", 1 },
	{ "Chillicothe", "OH", "45601", "740", 1 },
	{ "Indianapolis", "IN", "46201", "317", 1 },
	{ "Huntington", "WV", "25701", "304", 1 },
	{ "Pittsburgh", "PA", "15213", "412", 1 },
	{ "Louisville", "KY", "40202", "502", 1 },
};

struct marital {
	const char *code, *display;
};

enum { MS_M, MS_S, MS_D, MS_W, MS_L, MS_T, MS__N };

static const struct marital maritals[MS__N] = {
	[MS_M] = { "M", "Married" }, [MS_S] = { "S", "Never Married" },
	[MS_D] = { "D", "Divorced" }, [MS_W] = { "W", "Widowed" },
	[MS_L] = { "L", "Legally Separated" }, [MS_T] = { "T", "Domestic partner" },
};

/* ------------------------------------------------------------ directory */

enum spec {
	SP_HOSP, SP_ED, SP_FM, SP_SURG, SP_ORTHO, SP_CARD, SP_OB, SP_PEDS,
	SP__N
};

struct prac_def {
	int spec;
	const char *qual, *qual_display;
};

static const struct prac_def prac_defs[] = {
	{ SP_HOSP, "MD", "Doctor of Medicine" },
	{ SP_HOSP, "MD", "Doctor of Medicine" },
	{ SP_HOSP, "DO", "Doctor of Osteopathy" },
	{ SP_HOSP, "MD", "Doctor of Medicine" },
	{ SP_ED, "MD", "Doctor of Medicine" },
	{ SP_ED, "DO", "Doctor of Osteopathy" },
	{ SP_ED, "MD", "Doctor of Medicine" },
	{ SP_ED, "PA", "Physician Assistant" },
	{ SP_FM, "MD", "Doctor of Medicine" },
	{ SP_FM, "DO", "Doctor of Osteopathy" },
	{ SP_FM, "MD", "Doctor of Medicine" },
	{ SP_FM, "NP", "Nurse Practitioner" },
	{ SP_SURG, "MD", "Doctor of Medicine" },
	{ SP_SURG, "MD", "Doctor of Medicine" },
	{ SP_ORTHO, "MD", "Doctor of Medicine" },
	{ SP_ORTHO, "DO", "Doctor of Osteopathy" },
	{ SP_CARD, "MD", "Doctor of Medicine" },
	{ SP_OB, "MD", "Doctor of Medicine" },
	{ SP_OB, "MD", "Doctor of Medicine" },
	{ SP_PEDS, "MD", "Doctor of Medicine" },
	{ SP_PEDS, "DO", "Doctor of Osteopathy" },
};

#define NPRAC ARRAY_SIZE(prac_defs)

enum loc { LOC_MEDSURG, LOC_ICU, LOC_ED, LOC_PEDS, LOC_MB, LOC_FMC, LOC_PEDC, LOC__N };

struct loc_def {
	const char *name, *code, *display;
	bool ward;
};

static const struct loc_def loc_defs[LOC__N] = {
	[LOC_MEDSURG] = { "4 West Medical-Surgical Unit", "HU", "Hospital unit", true },
	[LOC_ICU] = { "Intensive Care Unit", "ICU", "Intensive care unit", true },
	[LOC_ED] = { "Emergency Department", "ER", "Emergency room", false },
	[LOC_PEDS] = { "3 East Pediatric Unit", "PEDU", "Pediatric unit", true },
	[LOC_MB] = { "Mother-Baby Unit", "HU", "Hospital unit", true },
	[LOC_FMC] = { "Family Medicine Clinic", "FMC", "Family Medicine Clinic", false },
	[LOC_PEDC] = { "Pediatrics Clinic", "PEDC", "Pediatrics clinic", false },
};

enum payer_kind { PK_COMMERCIAL, PK_MEDICARE_ADV, PK_MEDICAID };

struct payer_def {
	const char *name, *payer_id, *plan, *group_prefix;
	int kind;
};

static const struct payer_def payer_defs[] = {
	{ "Blue Heron Health Plan", "BHHP1", "Blue Heron PPO", "BH", PK_COMMERCIAL },
	{ "Prairie Mutual Insurance Company", "PMIC2", "Prairie Choice HMO", "PM", PK_COMMERCIAL },
	{ "Summit Senior Advantage", "SSA03", "Summit Advantage HMO", "SA", PK_MEDICARE_ADV },
	{ "Sunrise Community Medicaid Plan", "SCMP4", "Sunrise Medicaid Managed Care", "SC", PK_MEDICAID },
	{ "Lakeshore Employee Benefit Trust", "LEBT5", "Lakeshore Select", "LE", PK_COMMERCIAL },
};

enum { PAY_BH, PAY_PM, PAY_SA, PAY_SC, PAY_LE };

#define HOSPITAL_NAME "Olentangy Ridge Regional Medical Center"

/* ----------------------------------------------------------------- LOINC */

enum lab {
	LB_GLU, LB_NA, LB_K, LB_BUN, LB_CREAT, LB_HGB, LB_WBC, LB_PLT, LB_A1C,
	LB_CHOL, LB_TRIG, LB_HDL, LB_LDL, LB_ALT, LB_AST, LB_ALB, LB_BILI,
	LB_TROP, LB_PT, LB_INR, LB_TSH, LB_LAC, LB_BNP, LB_CRP, LB_PH, LB__N
};

struct lab_def {
	const char *loinc, *display, *unit, *ucum;
	int dec;
	int lo, hi;     /* reference range, scaled by 10^dec */
	int alo, ahi;   /* where abnormal results fall, scaled */
};

static const struct lab_def lab_defs[LB__N] = {
	[LB_GLU] = { "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0, 70, 99, 100, 380 },
	[LB_NA] = { "2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", 0, 136, 145, 121, 135 },
	[LB_K] = { "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", 1, 35, 51, 28, 34 },
	[LB_BUN] = { "3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0, 7, 20, 21, 78 },
	[LB_CREAT] = { "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 2, 60, 120, 121, 640 },
	[LB_HGB] = { "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "g/dL", 1, 120, 175, 62, 119 },
	[LB_WBC] = { "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", "10*3/uL", 1, 45, 110, 111, 248 },
	[LB_PLT] = { "777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", "10*3/uL", 0, 150, 400, 38, 149 },
	[LB_A1C] = { "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%", 1, 40, 56, 57, 124 },
	[LB_CHOL] = { "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0, 125, 199, 200, 310 },
	[LB_TRIG] = { "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0, 50, 149, 150, 520 },
	[LB_HDL] = { "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0, 40, 80, 24, 39 },
	[LB_LDL] = { "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", "mg/dL", 0, 50, 99, 100, 215 },
	[LB_ALT] = { "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", "U/L", 0, 7, 56, 57, 310 },
	[LB_AST] = { "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", "U/L", 0, 10, 40, 41, 290 },
	[LB_ALB] = { "1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", "g/dL", 1, 35, 50, 20, 34 },
	[LB_BILI] = { "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 1, 1, 12, 13, 64 },
	[LB_TROP] = { "10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", "ng/mL", 3, 0, 40, 41, 5200 },
	[LB_PT] = { "5902-2", "Prothrombin time (PT)", "s", "s", 1, 110, 135, 136, 380 },
	[LB_INR] = { "6301-6", "INR in Platelet poor plasma by Coagulation assay", "INR", "{INR}", 1, 8, 11, 20, 45 },
	[LB_TSH] = { "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "mIU/L", "m[IU]/L", 2, 40, 400, 401, 1850 },
	[LB_LAC] = { "2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", 1, 5, 20, 21, 82 },
	[LB_BNP] = { "33762-6", "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma", "pg/mL", "pg/mL", 0, 5, 125, 126, 14800 },
	[LB_CRP] = { "1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", "mg/L", 1, 0, 100, 101, 2900 },
	[LB_PH] = { "2744-1", "pH of Arterial blood", "pH", "[pH]", 2, 735, 745, 702, 734 },
};

#define LB(x) (1u << LB_##x)
#define LABS_BMP (LB(GLU) | LB(NA) | LB(K) | LB(BUN) | LB(CREAT))
#define LABS_CBC (LB(HGB) | LB(WBC) | LB(PLT))

struct lab_group {
	const char *name;
	uint32_t mask;
};

static const struct lab_group lab_groups[] = {
	{ "BMP", LABS_BMP },
	{ "CMP", LABS_BMP | LB(ALT) | LB(AST) | LB(ALB) | LB(BILI) },
	{ "CBC", LABS_CBC },
	{ "LIPID", LB(CHOL) | LB(TRIG) | LB(HDL) | LB(LDL) },
	{ "PTINR", LB(PT) | LB(INR) },
	{ "ABG", LB(PH) },
	{ "A1C", LB(A1C) }, { "GLU", LB(GLU) }, { "TSH", LB(TSH) },
	{ "TROP", LB(TROP) }, { "LAC", LB(LAC) }, { "BNP", LB(BNP) },
	{ "CRP", LB(CRP) },
};

/* Clinical note types (LOINC document ontology). */
enum doc_kind { DK_HP, DK_PROGRESS, DK_OP, DK_DS, DK_ED, DK__N };

struct doc_def {
	const char *loinc, *display, *title;
};

static const struct doc_def doc_defs[DK__N] = {
	[DK_HP] = { "34117-2", "History and physical note", "History and Physical" },
	[DK_PROGRESS] = { "11506-3", "Progress note", "Progress Note" },
	[DK_OP] = { "11504-8", "Surgical operation note", "Operative Note" },
	[DK_DS] = { "18842-5", "Discharge summary", "Discharge Summary" },
	[DK_ED] = { "34111-5", "Emergency department Note", "Emergency Department Note" },
};

/* ------------------------------------------------------------ ICD-10-CM */

/* kind: what role a code plays.
 *   C  chronic problem (drawn per patient with `permille` prevalence)
 *   S  status, history or "use additional code" partner: secondary only
 *   X  exacerbation of a chronic problem (`replaces` names which)
 *   A  acute problem, principal where `where` allows
 *   T  inpatient comorbidity or complication: secondary only
 *   V  preventive visit (exams, screening), chosen by the preventive path
 *   N  birth of a newborn
 * where: settings in which it may be the principal diagnosis, I inpatient,
 *   A ambulatory, E emergency (inpatient principals avoid the MCE
 *   "unacceptable" and "questionable admission" lists).
 * sex, age_lo..age_hi: who may have it (MCE age and sex edits).
 * group: at most one code of a group per patient (one diabetes code, ...).
 * labs: lab panels ordered for it; procs: ICD-10-PCS (inpatient) or HCPCS
 *   (outpatient) procedures done for it when principal (or always, for T and
 *   "secproc"); items: HCPCS Level II lines billed for it; with: codes
 *   always reported with it; flags: icu surg ortho ob peds gi cardio inf resp
 *   elective secproc.
 * poa_exempt: on the CMS POA-exempt list (FY2020). */
struct dx_def {
	const char *code, *display, *where;
	char kind, sex;
	unsigned char age_lo, age_hi;
	unsigned short permille;
	const char *group, *labs, *procs, *items, *with, *replaces, *flags;
	bool poa_exempt;
};

/* Descriptions are the official long descriptions of the FY2016 ICD-10-CM
 * release (data/codes/icd10cm-fy2016); every code is billable. */
static const struct dx_def dx_defs[] = {
	{ "I10", "Essential (primary) hypertension",
	  "A", 'C', 0, 30, 95, 350, "htn", "BMP", "", "", "", "", "", false },
	{ "E11.9", "Type 2 diabetes mellitus without complications",
	  "A", 'C', 0, 30, 95, 90, "dm", "A1C GLU BMP LIPID", "", "A4253", "", "", "", false },
	{ "E11.65", "Type 2 diabetes mellitus with hyperglycemia",
	  "A", 'C', 0, 30, 95, 35, "dm", "A1C GLU BMP", "", "A4253 G0108", "Z79.4", "", "", false },
	{ "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease",
	  "A", 'C', 0, 45, 95, 25, "dm", "A1C GLU BMP", "", "A4253", "N18.9", "", "", false },
	{ "E11.40", "Type 2 diabetes mellitus with diabetic neuropathy, unspecified",
	  "A", 'C', 0, 40, 95, 15, "dm", "A1C GLU", "", "A4253", "", "", "", false },
	{ "E10.9", "Type 1 diabetes mellitus without complications",
	  "A", 'C', 0, 3, 60, 6, "dm", "A1C GLU", "", "A4253 J1815", "Z79.4", "", "", false },
	{ "E78.5", "Hyperlipidemia, unspecified",
	  "A", 'C', 0, 35, 95, 200, "lip", "LIPID", "", "", "", "", "", false },
	{ "E78.2", "Mixed hyperlipidemia",
	  "A", 'C', 0, 35, 95, 40, "lip", "LIPID", "", "", "", "", "", false },
	{ "E66.9", "Obesity, unspecified",
	  "A", 'C', 0, 18, 80, 100, "ob", "", "", "", "", "", "", false },
	{ "E66.01", "Morbid (severe) obesity due to excess calories",
	  "A", 'C', 0, 18, 75, 30, "ob", "A1C", "", "", "Z68.41", "", "", false },
	{ "E03.9", "Hypothyroidism, unspecified",
	  "A", 'C', 0, 25, 95, 60, "thy", "TSH", "", "", "", "", "", false },
	{ "E55.9", "Vitamin D deficiency, unspecified",
	  "A", 'C', 0, 18, 95, 40, "", "", "", "", "", "", "", false },
	{ "K21.9", "Gastro-esophageal reflux disease without esophagitis",
	  "A", 'C', 0, 18, 95, 90, "", "", "", "", "", "", "", false },
	{ "J45.909", "Unspecified asthma, uncomplicated",
	  "A", 'C', 0, 3, 80, 70, "ast", "", "", "J7620", "", "", "", false },
	{ "J44.9", "Chronic obstructive pulmonary disease, unspecified",
	  "A", 'C', 0, 45, 95, 60, "copd", "", "", "J7620", "", "", "", false },
	{ "I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris",
	  "A", 'C', 0, 50, 95, 70, "cad", "LIPID", "", "", "Z79.82", "", "", false },
	{ "I48.91", "Unspecified atrial fibrillation",
	  "A", 'C', 0, 60, 95, 60, "af", "PTINR", "", "", "Z79.01", "", "", false },
	{ "I50.22", "Chronic systolic (congestive) heart failure",
	  "A", 'C', 0, 60, 95, 25, "hf", "BNP BMP", "", "J1940", "", "", "", false },
	{ "I50.32", "Chronic diastolic (congestive) heart failure",
	  "A", 'C', 0, 60, 95, 25, "hf", "BNP BMP", "", "J1940", "", "", "", false },
	{ "N18.4", "Chronic kidney disease, stage 4 (severe)",
	  "A", 'C', 0, 55, 95, 15, "ckd", "BMP", "", "", "", "", "", false },
	{ "N18.6", "End stage renal disease",
	  "A", 'C', 0, 40, 95, 8, "ckd", "BMP CBC", "5A1D70Z", "", "Z99.2", "", "secproc", false },
	{ "N18.9", "Chronic kidney disease, unspecified",
	  "A", 'C', 0, 55, 95, 20, "ckd", "BMP", "", "", "", "", "", false },
	{ "F32.9", "Major depressive disorder, single episode, unspecified",
	  "A", 'C', 0, 14, 95, 60, "dep", "", "", "G0444", "", "", "", false },
	{ "F33.1", "Major depressive disorder, recurrent, moderate",
	  "A", 'C', 0, 18, 95, 25, "dep", "", "", "", "", "", "", false },
	{ "F41.1", "Generalized anxiety disorder",
	  "A", 'C', 0, 14, 95, 50, "anx", "", "", "", "", "", "", false },
	{ "F17.210", "Nicotine dependence, cigarettes, uncomplicated",
	  "A", 'C', 0, 16, 85, 100, "tob", "", "", "", "", "", "", false },
	{ "G47.33", "Obstructive sleep apnea (adult) (pediatric)",
	  "A", 'C', 0, 30, 85, 40, "", "", "", "", "", "", "", false },
	{ "M17.11", "Unilateral primary osteoarthritis, right knee",
	  "AI", 'C', 0, 50, 95, 25, "oak", "CBC BMP", "0SRC0J9", "", "", "", "ortho elective", false },
	{ "M17.12", "Unilateral primary osteoarthritis, left knee",
	  "AI", 'C', 0, 50, 95, 25, "oak", "CBC BMP", "0SRD0J9", "", "", "", "ortho elective", false },
	{ "M16.11", "Unilateral primary osteoarthritis, right hip",
	  "AI", 'C', 0, 50, 95, 15, "", "CBC BMP", "0SR9019", "", "", "", "ortho elective", false },
	{ "M81.0", "Age-related osteoporosis without current pathological fracture",
	  "A", 'C', 'F', 55, 95, 60, "", "", "", "", "", "", "", false },
	{ "G30.9", "Alzheimer's disease, unspecified",
	  "A", 'C', 0, 70, 95, 35, "dem", "", "", "", "", "", "", false },
	{ "M10.9", "Gout, unspecified",
	  "A", 'C', 'M', 35, 95, 30, "", "", "", "", "", "", "", false },
	{ "N40.0", "Enlarged prostate without lower urinary tract symptoms",
	  "A", 'C', 'M', 50, 95, 120, "", "", "", "", "", "", "", false },
	{ "G43.909", "Migraine, unspecified, not intractable, without status migrainosus",
	  "AE", 'C', 0, 12, 70, 40, "", "", "", "J1885 J2550", "", "", "", false },
	{ "G40.909", "Epilepsy, unspecified, not intractable, without status epilepticus",
	  "AI", 'C', 0, 1, 95, 10, "", "BMP CBC", "", "", "", "", "", false },
	{ "F90.9", "Attention-deficit hyperactivity disorder, unspecified type",
	  "A", 'C', 0, 5, 30, 60, "", "", "", "", "", "", "", false },
	{ "F10.20", "Alcohol dependence, uncomplicated",
	  "A", 'C', 0, 18, 85, 25, "", "CMP", "", "", "", "", "", false },
	{ "F11.20", "Opioid dependence, uncomplicated",
	  "A", 'C', 0, 18, 75, 12, "", "", "", "", "", "", "", false },
	{ "F20.9", "Schizophrenia, unspecified",
	  "A", 'C', 0, 18, 85, 7, "", "", "", "", "", "", "", false },
	{ "F31.9", "Bipolar disorder, unspecified",
	  "A", 'C', 0, 16, 85, 15, "", "", "", "", "", "", "", false },
	{ "I73.9", "Peripheral vascular disease, unspecified",
	  "A", 'C', 0, 55, 95, 30, "", "", "", "", "", "", "", false },
	{ "K76.0", "Fatty (change of) liver, not elsewhere classified",
	  "A", 'C', 0, 25, 85, 30, "liv", "CMP", "", "", "", "", "", false },
	{ "K74.60", "Unspecified cirrhosis of liver",
	  "A", 'C', 0, 40, 90, 8, "liv", "CMP PTINR", "", "", "", "", "", false },
	{ "C61", "Malignant neoplasm of prostate",
	  "A", 'C', 'M', 55, 95, 20, "ca", "", "", "", "", "", "", false },
	{ "C50.911", "Malignant neoplasm of unspecified site of right female breast",
	  "A", 'C', 'F', 40, 95, 15, "ca", "CBC", "", "", "", "", "", false },
	{ "D50.9", "Iron deficiency anemia, unspecified",
	  "A", 'C', 0, 12, 95, 30, "", "CBC", "", "", "", "", "", false },
	{ "G62.9", "Polyneuropathy, unspecified",
	  "A", 'C', 0, 45, 95, 15, "", "", "", "", "", "", "", false },
	{ "M19.90", "Unspecified osteoarthritis, unspecified site",
	  "A", 'C', 0, 50, 95, 40, "", "", "", "", "", "", "", false },
	{ "G89.29", "Other chronic pain",
	  "A", 'C', 0, 30, 95, 25, "", "", "", "", "", "", "", false },
	{ "I35.0", "Nonrheumatic aortic (valve) stenosis",
	  "A", 'C', 0, 65, 95, 12, "", "", "", "", "", "", "", false },
	{ "J43.9", "Emphysema, unspecified",
	  "A", 'C', 0, 55, 95, 10, "copd", "", "", "", "", "", "", false },
	{ "E21.3", "Hyperparathyroidism, unspecified",
	  "A", 'C', 0, 40, 95, 6, "", "CMP", "", "", "", "", "", false },
	{ "K57.30", "Diverticulosis of large intestine without perforation or abscess without bleeding",
	  "A", 'C', 0, 45, 95, 30, "", "", "", "", "", "", "", false },
	{ "Z87.891", "Personal history of nicotine dependence",
	  "", 'S', 0, 40, 95, 100, "tob", "", "", "", "", "", "", true },
	{ "Z79.899", "Other long term (current) drug therapy",
	  "", 'S', 0, 40, 95, 150, "", "", "", "", "", "", "", true },
	{ "Z79.82", "Long term (current) use of aspirin",
	  "", 'S', 0, 50, 95, 0, "", "", "", "", "", "", "", true },
	{ "Z79.01", "Long term (current) use of anticoagulants",
	  "", 'S', 0, 18, 95, 0, "", "", "", "", "", "", "", true },
	{ "Z79.4", "Long term (current) use of insulin",
	  "", 'S', 0, 3, 95, 0, "", "", "", "", "", "", "", true },
	{ "Z95.1", "Presence of aortocoronary bypass graft",
	  "", 'S', 0, 50, 95, 15, "", "", "", "", "", "", "", true },
	{ "Z96.651", "Presence of right artificial knee joint",
	  "", 'S', 0, 55, 95, 15, "", "", "", "", "", "", "", false },
	{ "Z85.3", "Personal history of malignant neoplasm of breast",
	  "", 'S', 'F', 45, 95, 15, "", "", "", "", "", "", "", true },
	{ "Z86.711", "Personal history of pulmonary embolism",
	  "", 'S', 0, 30, 95, 8, "", "", "", "", "", "", "", true },
	{ "Z86.73", "Personal history of transient ischemic attack (TIA), and cerebral infarction without residual deficits",
	  "", 'S', 0, 55, 95, 15, "", "", "", "", "", "", "", true },
	{ "Z68.41", "Body mass index (BMI) 40.0-44.9, adult",
	  "", 'S', 0, 18, 95, 0, "", "", "", "", "", "", "", true },
	{ "Z99.2", "Dependence on renal dialysis",
	  "", 'S', 0, 18, 95, 0, "", "", "", "", "", "", "", true },
	{ "Z37.0", "Single live birth",
	  "", 'S', 'F', 15, 50, 0, "", "", "", "", "", "", "", true },
	{ "Z3A.39", "39 weeks gestation of pregnancy",
	  "", 'S', 'F', 15, 50, 0, "", "", "", "", "", "", "", true },
	{ "W19.XXXA", "Unspecified fall, initial encounter",
	  "", 'S', 0, 0, 95, 0, "", "", "", "", "", "", "", false },
	{ "B96.20", "Unspecified Escherichia coli [E. coli] as the cause of diseases classified elsewhere",
	  "", 'S', 0, 0, 95, 0, "", "", "", "", "", "", "", false },
	{ "I11.0", "Hypertensive heart disease with heart failure",
	  "", 'S', 0, 30, 95, 0, "", "", "", "", "", "", "", false },
	{ "I12.9", "Hypertensive chronic kidney disease with stage 1 through stage 4 chronic kidney disease, or unspecified chronic kidney disease",
	  "", 'S', 0, 30, 95, 0, "", "", "", "", "", "", "", false },
	{ "I12.0", "Hypertensive chronic kidney disease with stage 5 chronic kidney disease or end stage renal disease",
	  "", 'S', 0, 30, 95, 0, "", "", "", "", "", "", "", false },
	{ "I13.0", "Hypertensive heart and chronic kidney disease with heart failure and stage 1 through stage 4 chronic kidney disease, or unspecified chronic kidney disease",
	  "", 'S', 0, 30, 95, 0, "", "", "", "", "", "", "", false },
	{ "I13.2", "Hypertensive heart and chronic kidney disease with heart failure and with stage 5 chronic kidney disease, or end stage renal disease",
	  "", 'S', 0, 30, 95, 0, "", "", "", "", "", "", "", false },
	{ "I50.23", "Acute on chronic systolic (congestive) heart failure",
	  "I", 'X', 0, 60, 95, 0, "hf", "BNP BMP CBC TROP", "", "J1940", "", "I50.22", "resp", false },
	{ "I50.33", "Acute on chronic diastolic (congestive) heart failure",
	  "I", 'X', 0, 60, 95, 0, "hf", "BNP BMP CBC TROP", "", "J1940", "", "I50.32", "resp", false },
	{ "J44.1", "Chronic obstructive pulmonary disease with (acute) exacerbation",
	  "IE", 'X', 0, 45, 95, 0, "copd", "CBC BMP", "", "J7620 J2930", "", "J44.9", "resp", false },
	{ "J45.901", "Unspecified asthma with (acute) exacerbation",
	  "IE", 'X', 0, 3, 80, 0, "ast", "", "", "J7620 J1100", "", "J45.909", "resp", false },
	{ "E11.649", "Type 2 diabetes mellitus with hypoglycemia without coma",
	  "IE", 'X', 0, 30, 95, 0, "dm", "GLU BMP", "", "J7042", "", "E11.9 E11.65", "", false },
	{ "E10.65", "Type 1 diabetes mellitus with hyperglycemia",
	  "IE", 'X', 0, 3, 60, 0, "dm", "GLU BMP", "", "J1815 J7030", "Z79.4", "E10.9", "", false },
	{ "J18.9", "Pneumonia, unspecified organism",
	  "IE", 'A', 0, 1, 95, 0, "", "CBC BMP LAC", "", "J0696 J0456", "", "", "inf resp", false },
	{ "J15.9", "Unspecified bacterial pneumonia",
	  "I", 'A', 0, 18, 95, 0, "", "CBC BMP", "", "J0696", "", "", "inf resp", false },
	{ "J69.0", "Pneumonitis due to inhalation of food and vomit",
	  "I", 'A', 0, 65, 95, 0, "", "CBC BMP", "", "J0696", "", "", "inf resp", false },
	{ "A41.9", "Sepsis, unspecified organism",
	  "I", 'A', 0, 1, 95, 0, "", "CBC BMP LAC CRP", "02HV33Z", "J0696 J7030", "", "", "icu inf", false },
	{ "A41.51", "Sepsis due to Escherichia coli [E. coli]",
	  "I", 'A', 0, 18, 95, 0, "", "CBC BMP LAC", "02HV33Z", "J0696 J7030", "", "", "icu inf", false },
	{ "J96.01", "Acute respiratory failure with hypoxia",
	  "I", 'A', 0, 18, 95, 0, "", "CBC BMP ABG", "0BH17EZ 5A1945Z", "J2250", "", "", "icu resp", false },
	{ "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction",
	  "I", 'A', 0, 40, 95, 0, "", "TROP BMP CBC LIPID", "4A023N7 027034Z", "J1644", "", "", "cardio", false },
	{ "I21.3", "ST elevation (STEMI) myocardial infarction of unspecified site",
	  "I", 'A', 0, 40, 95, 0, "", "TROP BMP CBC", "4A023N7 027034Z", "J1644", "", "", "icu cardio", false },
	{ "I63.9", "Cerebral infarction, unspecified",
	  "I", 'A', 0, 45, 95, 0, "", "CBC BMP PTINR LIPID", "", "", "", "", "icu", false },
	{ "I26.99", "Other pulmonary embolism without acute cor pulmonale",
	  "I", 'A', 0, 25, 95, 0, "", "CBC PTINR TROP", "", "J1650", "", "", "resp", false },
	{ "I48.0", "Paroxysmal atrial fibrillation",
	  "IE", 'A', 0, 50, 95, 0, "", "BMP TSH TROP", "", "", "", "", "", false },
	{ "N39.0", "Urinary tract infection, site not specified",
	  "IE", 'A', 0, 1, 95, 0, "", "CBC BMP", "", "J0696", "B96.20", "", "inf", false },
	{ "N17.9", "Acute kidney failure, unspecified",
	  "I", 'A', 0, 40, 95, 0, "", "BMP", "", "J7030", "", "", "", false },
	{ "K35.80", "Unspecified acute appendicitis",
	  "I", 'A', 0, 5, 70, 0, "", "CBC", "0DTJ4ZZ", "J0690", "", "", "surg inf", false },
	{ "K81.0", "Acute cholecystitis",
	  "I", 'A', 0, 18, 85, 0, "", "CBC CMP", "0FT44ZZ", "J0690", "", "", "surg inf", false },
	{ "K92.2", "Gastrointestinal hemorrhage, unspecified",
	  "I", 'A', 0, 40, 95, 0, "", "CBC PTINR BMP", "0DB68ZX", "P9016", "D62", "", "gi", false },
	{ "S72.001A", "Fracture of unspecified part of neck of right femur, initial encounter for closed fracture",
	  "I", 'A', 0, 65, 95, 0, "", "CBC BMP PTINR", "0SRR0J9", "J0690 J1650", "W19.XXXA", "", "ortho", false },
	{ "C18.9", "Malignant neoplasm of colon, unspecified",
	  "I", 'A', 0, 50, 90, 0, "", "CBC CMP", "0DTN0ZZ", "J0690", "", "", "surg elective gi", false },
	{ "L03.115", "Cellulitis of right lower limb",
	  "IE", 'A', 0, 18, 95, 0, "", "CBC", "", "J0696", "", "", "inf", false },
	{ "L03.116", "Cellulitis of left lower limb",
	  "IE", 'A', 0, 18, 95, 0, "", "CBC", "", "J0696", "", "", "inf", false },
	{ "E87.1", "Hypo-osmolality and hyponatremia",
	  "I", 'A', 0, 60, 95, 0, "", "BMP", "", "J7030", "", "", "", false },
	{ "O80", "Encounter for full-term uncomplicated delivery",
	  "I", 'A', 'F', 18, 42, 0, "", "CBC", "10E0XZZ", "J7120", "Z37.0 Z3A.39", "", "ob", true },
	{ "J21.0", "Acute bronchiolitis due to respiratory syncytial virus",
	  "I", 'A', 0, 0, 1, 0, "", "", "", "", "", "", "peds inf resp", false },
	{ "J21.9", "Acute bronchiolitis, unspecified",
	  "IE", 'A', 0, 0, 1, 0, "", "", "", "", "", "", "peds inf resp", false },
	{ "A08.4", "Viral intestinal infection, unspecified",
	  "IE", 'A', 0, 0, 6, 0, "", "BMP", "", "J7030 J2405", "E86.0", "", "peds inf", false },
	{ "R55", "Syncope and collapse",
	  "E", 'A', 0, 12, 95, 0, "", "BMP CBC TROP", "", "J7030", "", "", "", false },
	{ "Z38.00", "Single liveborn infant, delivered vaginally",
	  "", 'N', 0, 0, 0, 0, "", "", "3E0234Z", "", "", "", "", true },
	{ "Z38.01", "Single liveborn infant, delivered by cesarean",
	  "", 'N', 0, 0, 0, 0, "", "", "3E0234Z", "", "", "", "", true },
	{ "P59.9", "Neonatal jaundice, unspecified",
	  "", 'S', 0, 0, 0, 0, "", "", "", "", "", "", "", false },
	{ "P22.1", "Transient tachypnea of newborn",
	  "", 'S', 0, 0, 0, 0, "", "", "", "", "", "", "", false },
	{ "E86.0", "Dehydration",
	  "E", 'T', 0, 0, 95, 0, "", "BMP", "", "J7030", "", "", "", false },
	{ "E87.6", "Hypokalemia",
	  "", 'T', 0, 18, 95, 0, "", "BMP", "", "J3480", "", "", "", false },
	{ "E87.0", "Hyperosmolality and hypernatremia",
	  "", 'T', 0, 18, 95, 0, "", "BMP", "", "", "", "", "", false },
	{ "D64.9", "Anemia, unspecified",
	  "", 'T', 0, 18, 95, 0, "", "CBC", "", "", "", "", "", false },
	{ "D62", "Acute posthemorrhagic anemia",
	  "", 'T', 0, 18, 95, 0, "", "CBC", "30233N1", "P9016", "", "", "", false },
	{ "D69.6", "Thrombocytopenia, unspecified",
	  "", 'T', 0, 18, 95, 0, "", "CBC", "", "", "", "", "", false },
	{ "R73.9", "Hyperglycemia, unspecified",
	  "", 'T', 0, 18, 95, 0, "", "GLU", "", "", "", "", "", false },
	{ "E16.2", "Hypoglycemia, unspecified",
	  "", 'T', 0, 18, 95, 0, "", "GLU", "", "", "", "", "", false },
	{ "J90", "Pleural effusion, not elsewhere classified",
	  "", 'T', 0, 40, 95, 0, "", "", "0W9930Z", "", "", "", "", false },
	{ "J98.11", "Atelectasis",
	  "", 'T', 0, 18, 95, 0, "", "", "", "", "", "", "", false },
	{ "R33.9", "Retention of urine, unspecified",
	  "", 'T', 0, 50, 95, 0, "", "", "0T9B70Z", "", "", "", "", false },
	{ "F05", "Delirium due to known physiological condition",
	  "", 'T', 0, 65, 95, 0, "", "", "", "", "", "", "", false },
	{ "R41.82", "Altered mental status, unspecified",
	  "", 'T', 0, 65, 95, 0, "", "", "", "", "", "", "", false },
	{ "I95.9", "Hypotension, unspecified",
	  "", 'T', 0, 40, 95, 0, "", "", "", "J7030", "", "", "", false },
	{ "R09.02", "Hypoxemia",
	  "", 'T', 0, 18, 95, 0, "", "ABG", "", "", "", "", "", false },
	{ "L89.154", "Pressure ulcer of sacral region, stage 4",
	  "", 'T', 0, 70, 95, 0, "", "", "", "", "", "", "", false },
	{ "R13.10", "Dysphagia, unspecified",
	  "", 'T', 0, 65, 95, 0, "", "", "", "", "", "", "", false },
	{ "D72.829", "Elevated white blood cell count, unspecified",
	  "", 'T', 0, 18, 95, 0, "", "CBC", "", "", "", "", "", false },
	{ "Z00.00", "Encounter for general adult medical examination without abnormal findings",
	  "A", 'V', 0, 18, 95, 0, "", "CBC CMP LIPID", "", "G0463", "", "", "", true },
	{ "Z00.01", "Encounter for general adult medical examination with abnormal findings",
	  "A", 'V', 0, 18, 95, 0, "", "CBC CMP LIPID", "", "G0463", "", "", "", true },
	{ "Z00.129", "Encounter for routine child health examination without abnormal findings",
	  "A", 'V', 0, 0, 17, 0, "", "", "", "G0463", "", "", "peds", true },
	{ "Z00.121", "Encounter for routine child health examination with abnormal findings",
	  "A", 'V', 0, 0, 17, 0, "", "", "", "G0463", "", "", "peds", true },
	{ "Z12.11", "Encounter for screening for malignant neoplasm of colon",
	  "A", 'V', 0, 50, 75, 0, "", "", "G0121", "", "", "", "", true },
	{ "Z01.419", "Encounter for gynecological examination (general) (routine) without abnormal findings",
	  "A", 'V', 'F', 21, 65, 0, "", "", "Q0091 G0101", "G0463", "", "", "", true },
	{ "Z09", "Encounter for follow-up examination after completed treatment for conditions other than malignant neoplasm",
	  "A", 'A', 0, 18, 95, 0, "", "CBC BMP", "", "G0463", "", "", "", true },
	{ "Z01.818", "Encounter for other preprocedural examination",
	  "A", 'A', 0, 18, 95, 0, "", "CBC BMP PTINR", "", "G0463", "", "", "", true },
	{ "Z23", "Encounter for immunization",
	  "", 'S', 0, 0, 95, 0, "", "", "", "", "", "", "", true },
	{ "J06.9", "Acute upper respiratory infection, unspecified",
	  "AE", 'A', 0, 0, 95, 0, "", "", "", "G0463", "", "", "inf", false },
	{ "J02.9", "Acute pharyngitis, unspecified",
	  "AE", 'A', 0, 2, 95, 0, "", "", "", "G0463", "", "", "inf", false },
	{ "J01.90", "Acute sinusitis, unspecified",
	  "A", 'A', 0, 5, 95, 0, "", "", "", "G0463", "", "", "inf", false },
	{ "J20.9", "Acute bronchitis, unspecified",
	  "AE", 'A', 0, 2, 95, 0, "", "", "", "G0463 Q0144", "", "", "inf", false },
	{ "J11.1", "Influenza due to unidentified influenza virus with other respiratory manifestations",
	  "AE", 'A', 0, 1, 95, 0, "", "", "", "G0463", "", "", "inf resp", false },
	{ "H66.90", "Otitis media, unspecified, unspecified ear",
	  "AE", 'A', 0, 0, 12, 0, "", "", "", "G0463", "", "", "inf", false },
	{ "L30.9", "Dermatitis, unspecified",
	  "A", 'A', 0, 0, 95, 0, "", "", "", "G0463 J3301", "", "", "", false },
	{ "M25.561", "Pain in right knee",
	  "A", 'A', 0, 18, 95, 0, "", "", "", "G0463 J3301", "", "", "", false },
	{ "M54.2", "Cervicalgia",
	  "A", 'A', 0, 18, 95, 0, "", "", "", "G0463", "", "", "", false },
	{ "M54.16", "Radiculopathy, lumbar region",
	  "AE", 'A', 0, 25, 95, 0, "", "", "", "G0463 J1885", "", "", "", false },
	{ "R53.83", "Other fatigue",
	  "A", 'A', 0, 18, 95, 0, "", "CBC TSH CMP", "", "G0463", "", "", "", false },
	{ "F41.9", "Anxiety disorder, unspecified",
	  "A", 'A', 0, 12, 95, 0, "", "", "", "G0463", "", "", "", false },
	{ "K59.00", "Constipation, unspecified",
	  "A", 'A', 0, 2, 95, 0, "", "", "", "G0463", "", "", "", false },
	{ "R42", "Dizziness and giddiness",
	  "AE", 'A', 0, 18, 95, 0, "", "BMP CBC", "", "G0463", "", "", "", false },
	{ "N30.00", "Acute cystitis without hematuria",
	  "A", 'A', 'F', 12, 95, 0, "", "", "", "G0463", "", "", "inf", false },
	{ "R10.31", "Right lower quadrant pain",
	  "AE", 'A', 0, 5, 95, 0, "", "CBC", "", "G0463", "", "", "", false },
	{ "R00.2", "Palpitations",
	  "AE", 'A', 0, 18, 95, 0, "", "TSH BMP", "", "G0463", "", "", "", false },
	{ "R07.9", "Chest pain, unspecified",
	  "E", 'A', 0, 18, 95, 0, "", "TROP BMP CBC", "", "", "", "", "", false },
	{ "R07.89", "Other chest pain",
	  "E", 'A', 0, 18, 95, 0, "", "TROP BMP", "", "", "", "", "", false },
	{ "R10.9", "Unspecified abdominal pain",
	  "E", 'A', 0, 5, 95, 0, "", "CBC CMP", "", "J2405", "", "", "", false },
	{ "R11.2", "Nausea with vomiting, unspecified",
	  "E", 'A', 0, 1, 95, 0, "", "BMP", "", "J2405 J7030", "", "", "", false },
	{ "R50.9", "Fever, unspecified",
	  "E", 'A', 0, 0, 95, 0, "", "CBC", "", "", "", "", "inf", false },
	{ "R06.02", "Shortness of breath",
	  "E", 'A', 0, 18, 95, 0, "", "BNP TROP", "", "J7620", "", "", "resp", false },
	{ "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter",
	  "E", 'A', 0, 8, 80, 0, "", "", "", "L4361 E0114", "", "", "", false },
	{ "S52.501A", "Unspecified fracture of the lower end of right radius, initial encounter for closed fracture",
	  "E", 'A', 0, 5, 95, 0, "", "", "", "L3908", "W19.XXXA", "", "", false },
	{ "S06.0X0A", "Concussion without loss of consciousness, initial encounter",
	  "E", 'A', 0, 3, 95, 0, "", "", "", "", "W19.XXXA", "", "", false },
	{ "S39.012A", "Strain of muscle, fascia and tendon of lower back, initial encounter",
	  "E", 'A', 0, 16, 80, 0, "", "", "", "J1885", "", "", "", false },
	{ "S01.00XA", "Unspecified open wound of scalp, initial encounter",
	  "E", 'A', 0, 1, 95, 0, "", "", "", "", "", "", "", false },
	{ "T78.40XA", "Allergy, unspecified, initial encounter",
	  "E", 'A', 0, 1, 95, 0, "", "", "", "J1200 J1100", "", "", "", false },
	{ "N20.0", "Calculus of kidney",
	  "E", 'A', 0, 20, 85, 0, "", "BMP CBC", "", "J1885 J2270", "", "", "", false },
	{ "L03.90", "Cellulitis, unspecified",
	  "E", 'A', 0, 2, 95, 0, "", "CBC", "", "J0696", "", "", "inf", false },
	{ "K52.9", "Noninfective gastroenteritis and colitis, unspecified",
	  "E", 'A', 0, 2, 95, 0, "", "BMP", "", "J7030 J2405", "", "", "", false },
};

/* ------------------------------------------------------------ ICD-10-PCS */

struct pcs_def {
	const char *code, *display;
	int spec;          /* who performs it */
	bool op_note;      /* dictates an operative note */
	int minutes;
	const char *items; /* HCPCS lines billed with it */
};

/* Official descriptions from the FY2018 ICD-10-PCS order file. */
static const struct pcs_def pcs_defs[] = {
	{ "0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic Approach",
	  SP_SURG, true, 55, "J0690" },
	{ "0FT44ZZ", "Resection of Gallbladder, Percutaneous Endoscopic Approach",
	  SP_SURG, true, 70, "J0690" },
	{ "0SR9019", "Replacement of Right Hip Joint with Metal Synthetic Substitute, Cemented, Open Approach",
	  SP_ORTHO, true, 110, "J0690 J1650" },
	{ "0SRC0J9", "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open Approach",
	  SP_ORTHO, true, 95, "J0690 J1650" },
	{ "0SRD0J9", "Replacement of Left Knee Joint with Synthetic Substitute, Cemented, Open Approach",
	  SP_ORTHO, true, 95, "J0690 J1650" },
	{ "0SRR0J9", "Replacement of Right Hip Joint, Femoral Surface with Synthetic Substitute, Cemented, Open Approach",
	  SP_ORTHO, true, 80, "J0690 J1650" },
	{ "10E0XZZ", "Delivery of Products of Conception, External Approach",
	  SP_OB, false, 45, "J7120" },
	{ "0HQ9XZZ", "Repair Perineum Skin, External Approach",
	  SP_OB, false, 20, "" },
	{ "027034Z", "Dilation of Coronary Artery, One Artery with Drug-eluting Intraluminal Device, Percutaneous Approach",
	  SP_CARD, true, 60, "J1644" },
	{ "4A023N7", "Measurement of Cardiac Sampling and Pressure, Left Heart, Percutaneous Approach",
	  SP_CARD, false, 30, "" },
	{ "5A1945Z", "Respiratory Ventilation, 24-96 Consecutive Hours",
	  SP_HOSP, false, 0, "" },
	{ "0BH17EZ", "Insertion of Endotracheal Airway into Trachea, Via Natural or Artificial Opening",
	  SP_HOSP, false, 10, "J2250" },
	{ "3E0234Z", "Introduction of Serum, Toxoid and Vaccine into Muscle, Percutaneous Approach",
	  SP_PEDS, false, 5, "" },
	{ "30233N1", "Transfusion of Nonautologous Red Blood Cells into Peripheral Vein, Percutaneous Approach",
	  SP_HOSP, false, 180, "P9016" },
	{ "0DB68ZX", "Excision of Stomach, Via Natural or Artificial Opening Endoscopic, Diagnostic",
	  SP_SURG, true, 30, "" },
	{ "02HV33Z", "Insertion of Infusion Device into Superior Vena Cava, Percutaneous Approach",
	  SP_HOSP, false, 25, "J1642" },
	{ "0W9930Z", "Drainage of Right Pleural Cavity with Drainage Device, Percutaneous Approach",
	  SP_HOSP, false, 30, "" },
	{ "0T9B70Z", "Drainage of Bladder with Drainage Device, Via Natural or Artificial Opening",
	  SP_HOSP, false, 10, "" },
	{ "0DTN0ZZ", "Resection of Sigmoid Colon, Open Approach",
	  SP_SURG, true, 150, "J0690" },
	{ "0VTTXZZ", "Resection of Prepuce, External Approach",
	  SP_PEDS, false, 15, "" },
	{ "5A1D70Z", "Performance of Urinary Filtration, Intermittent, Less than 6 Hours Per Day",
	  SP_HOSP, false, 240, "" },
};

/* ---------------------------------------------------------------- HCPCS */

/* kind: S service, P procedure (also written as a Procedure resource),
 *   D drug, V vaccine product, U supply or DME. */
struct hcpcs_def {
	const char *code, *display;
	int price_cents;   /* the synthetic charge master */
	char kind;
};

/* Official long descriptions from the CMS HCPCS Level II 2019 file. */
static const struct hcpcs_def hcpcs_defs[] = {
	{ "G0463", "Hospital outpatient clinic visit for assessment and management of a patient",
	  18200, 'S' },
	{ "G0008", "Administration of influenza virus vaccine",
	  3100, 'S' },
	{ "G0009", "Administration of pneumococcal vaccine",
	  3100, 'S' },
	{ "Q2038", "Influenza virus vaccine, split virus, when administered to individuals 3 years of age and older, for intramuscular use (fluzone)",
	  2450, 'V' },
	{ "G0101", "Cervical or vaginal cancer screening; pelvic and clinical breast examination",
	  4900, 'P' },
	{ "Q0091", "Screening papanicolaou smear; obtaining, preparing and conveyance of cervical or vaginal smear to laboratory",
	  5200, 'P' },
	{ "G0103", "Prostate cancer screening; prostate specific antigen test (psa)",
	  4100, 'S' },
	{ "G0121", "Colorectal cancer screening; colonoscopy on individual not meeting criteria for high risk",
	  98000, 'P' },
	{ "G0438", "Annual wellness visit; includes a personalized prevention plan of service (pps), initial visit",
	  21500, 'S' },
	{ "G0439", "Annual wellness visit, includes a personalized prevention plan of service (pps), subsequent visit",
	  14800, 'S' },
	{ "G0444", "Annual depression screening, 15 minutes",
	  2400, 'S' },
	{ "G0108", "Diabetes outpatient self-management training services, individual, per 30 minutes",
	  6200, 'S' },
	{ "G0296", "Counseling visit to discuss need for lung cancer screening using low dose ct scan (ldct) (service is for eligibility determination and shared decision making)",
	  3700, 'S' },
	{ "J1100", "Injection, dexamethasone sodium phosphate, 1 mg",
	  600, 'D' },
	{ "J1885", "Injection, ketorolac tromethamine, per 15 mg",
	  1100, 'D' },
	{ "J2405", "Injection, ondansetron hydrochloride, per 1 mg",
	  450, 'D' },
	{ "J3301", "Injection, triamcinolone acetonide, not otherwise specified, 10 mg",
	  1900, 'D' },
	{ "J0696", "Injection, ceftriaxone sodium, per 250 mg",
	  2800, 'D' },
	{ "J7030", "Infusion, normal saline solution , 1000 cc",
	  4200, 'D' },
	{ "J7050", "Infusion, normal saline solution, 250 cc",
	  2100, 'D' },
	{ "J2550", "Injection, promethazine hcl, up to 50 mg",
	  1500, 'D' },
	{ "J1815", "Injection, insulin, per 5 units",
	  900, 'D' },
	{ "J2270", "Injection, morphine sulfate, up to 10 mg",
	  1800, 'D' },
	{ "J1642", "Injection, heparin sodium, (heparin lock flush), per 10 units",
	  300, 'D' },
	{ "J1644", "Injection, heparin sodium, per 1000 units",
	  900, 'D' },
	{ "J1650", "Injection, enoxaparin sodium, 10 mg",
	  1600, 'D' },
	{ "J1200", "Injection, diphenhydramine hcl, up to 50 mg",
	  800, 'D' },
	{ "J0690", "Injection, cefazolin sodium, 500 mg",
	  2200, 'D' },
	{ "J1940", "Injection, furosemide, up to 20 mg",
	  700, 'D' },
	{ "J2930", "Injection, methylprednisolone sodium succinate, up to 125 mg",
	  2900, 'D' },
	{ "J0456", "Injection, azithromycin, 500 mg",
	  4400, 'D' },
	{ "J7042", "5% dextrose/normal saline (500 ml = 1 unit)",
	  3800, 'D' },
	{ "J7120", "Ringers lactate infusion, up to 1000 cc",
	  4600, 'D' },
	{ "J7620", "Albuterol, up to 2.5 mg and ipratropium bromide, up to 0.5 mg, fda-approved final product, non-compounded, administered through dme",
	  850, 'D' },
	{ "J2250", "Injection, midazolam hydrochloride, per 1 mg",
	  700, 'D' },
	{ "J3480", "Injection, potassium chloride, per 2 meq",
	  500, 'D' },
	{ "P9016", "Red blood cells, leukocytes reduced, each unit",
	  52000, 'D' },
	{ "Q0144", "Azithromycin dihydrate, oral, capsules/powder, 1 gram",
	  2600, 'D' },
	{ "A4253", "Blood glucose test or reagent strips for home blood glucose monitor, per 50 strips",
	  3900, 'U' },
	{ "E0114", "Crutches underarm, other than wood, adjustable or fixed, pair, with pads, tips and handgrips",
	  6800, 'U' },
	{ "L4361", "Walking boot, pneumatic and/or vacuum, with or without joints, with or without interface material, prefabricated, off-the-shelf",
	  14500, 'U' },
	{ "L3908", "Wrist hand orthosis, wrist extension control cock-up, non molded, prefabricated, off-the-shelf",
	  5600, 'U' },
};

/* ------------------------------------------------------ resolved tables */

/* The tables above name codes as strings so that they read like a coding
 * reference; demo_generate() resolves them once into indices. */

enum cls { CLS_IMP, CLS_AMB, CLS_EMER, CLS__N };

#define W_IMP (1u << CLS_IMP)
#define W_AMB (1u << CLS_AMB)
#define W_EMER (1u << CLS_EMER)

enum {
	F_ICU = 1 << 0, F_SURG = 1 << 1, F_ORTHO = 1 << 2, F_OB = 1 << 3,
	F_PEDS = 1 << 4, F_GI = 1 << 5, F_CARDIO = 1 << 6, F_INF = 1 << 7,
	F_RESP = 1 << 8, F_ELECTIVE = 1 << 9, F_SECPROC = 1 << 10,
};

static const struct {
	const char *name;
	unsigned bit;
} flag_names[] = {
	{ "icu", F_ICU }, { "surg", F_SURG }, { "ortho", F_ORTHO },
	{ "ob", F_OB }, { "peds", F_PEDS }, { "gi", F_GI },
	{ "cardio", F_CARDIO }, { "inf", F_INF }, { "resp", F_RESP },
	{ "elective", F_ELECTIVE }, { "secproc", F_SECPROC },
};

#define NDX ARRAY_SIZE(dx_defs)
#define NPCS ARRAY_SIZE(pcs_defs)
#define NHX ARRAY_SIZE(hcpcs_defs)
#define MAX_REFS 3
#define MAX_GROUPS 32

/* A procedure reference: >= 0 indexes pcs_defs, < 0 is -1 - hcpcs index. */
#define HX_REF(i) ((short)(-1 - (i)))
#define IS_HX(r) ((r) < 0)
#define HX_IDX(r) (-1 - (r))

struct dx_meta {
	unsigned where, flags;
	int group;                 /* -1: none */
	uint32_t labs;
	short procs[MAX_REFS], items[MAX_REFS], with[MAX_REFS], repl[MAX_REFS];
	unsigned char nprocs, nitems, nwith, nrepl;
};

struct tables {
	struct dx_meta dx[NDX];
	short pcs_items[NPCS][MAX_REFS];
	unsigned char pcs_nitems[NPCS];
	const char *group_names[MAX_GROUPS];
	int ngroups;
	/* candidate lists */
	short principal[CLS__N][NDX];
	unsigned nprincipal[CLS__N];
	short chronic[NDX], comorbid[NDX], exacerb[NDX];
	unsigned nchronic, ncomorbid, nexacerb;
	/* codes the rules below use by name */
	short z3800, z3801, p599, p221, o80, z23, z0000, z0001, z00129, z00121;
	short z1211, z01419, j069, i10, i110, i129, i120, i130, i132, n186;
	short pcs_delivery, pcs_perineum, pcs_vaccine, pcs_circ, pcs_vent;
	short hx_clinic, hx_flu_admin, hx_flu_vaccine, hx_pneumo_admin;
	short hx_awv_initial, hx_awv_subseq, hx_depr_screen, hx_psa;
	short hx_ldct_counsel, hx_saline, hx_saline_small;
	short f17210, z87891;
	int grp_hf, grp_ckd;
};

static int find_dx(const char *code)
{
	for (size_t i = 0; i < NDX; i++)
		if (strcmp(dx_defs[i].code, code) == 0)
			return (int)i;
	return -1;
}

static int find_pcs(const char *code)
{
	for (size_t i = 0; i < NPCS; i++)
		if (strcmp(pcs_defs[i].code, code) == 0)
			return (int)i;
	return -1;
}

static int find_hx(const char *code)
{
	for (size_t i = 0; i < NHX; i++)
		if (strcmp(hcpcs_defs[i].code, code) == 0)
			return (int)i;
	return -1;
}

/* Next space-separated token of *s into tok[cap]; false at the end. */
static bool next_tok(const char **s, char *tok, size_t cap)
{
	const char *p = *s;
	size_t n = 0;

	while (*p == ' ')
		p++;
	if (!*p)
		return false;
	while (*p && *p != ' ') {
		if (n + 1 < cap)
			tok[n++] = *p;
		p++;
	}
	tok[n] = '\0';
	*s = p;
	return true;
}

enum ref_kind { RK_DX, RK_PROC, RK_HX };

/* Resolve a list of codes; -1 (and e set) when one is unknown. */
static int resolve_list(const char *list, int kind, short *out,
	unsigned char *n, const char *owner, struct err *e)
{
	char tok[16];
	int i;

	*n = 0;
	while (next_tok(&list, tok, sizeof(tok))) {
		if (kind == RK_DX) {
			i = find_dx(tok);
		} else if (kind == RK_HX) {
			i = find_hx(tok);
		} else {
			i = find_pcs(tok);
			if (i < 0) {
				i = find_hx(tok);
				if (i >= 0)
					i = HX_REF(i);
				else
					i = INT16_MIN;
			}
		}
		if ((kind != RK_PROC && i < 0) || i == INT16_MIN || *n >= MAX_REFS) {
			err_set(e, ERR_INTERNAL, "demo code table is inconsistent");
			err_detail(e, "row '%s' refers to unknown or too many codes ('%s')",
				owner, tok);
			return -1;
		}
		out[(*n)++] = (short)i;
	}
	return 0;
}

static int intern_group(struct tables *t, const char *name)
{
	int i;

	if (!*name)
		return -1;
	for (i = 0; i < t->ngroups; i++)
		if (strcmp(t->group_names[i], name) == 0)
			return i;
	if (t->ngroups == MAX_GROUPS)
		return -1;
	t->group_names[t->ngroups] = name;
	return t->ngroups++;
}

static int need(int i, const char *code, struct err *e)
{
	if (i < 0) {
		err_set(e, ERR_INTERNAL, "demo code table is inconsistent");
		err_detail(e, "code '%s' is missing from the tables", code);
	}
	return i;
}

static int tables_init(struct tables *t, struct err *e)
{
	char tok[16];
	size_t i;
	int c, bad = 0;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < NDX; i++) {
		const struct dx_def *d = &dx_defs[i];
		struct dx_meta *m = &t->dx[i];
		const char *s;

		for (s = d->where; *s; s++)
			m->where |= *s == 'I' ? W_IMP : *s == 'A' ? W_AMB : W_EMER;
		for (s = d->flags; next_tok(&s, tok, sizeof(tok));)
			for (size_t f = 0; f < ARRAY_SIZE(flag_names); f++)
				if (strcmp(flag_names[f].name, tok) == 0)
					m->flags |= flag_names[f].bit;
		for (s = d->labs; next_tok(&s, tok, sizeof(tok));)
			for (size_t g = 0; g < ARRAY_SIZE(lab_groups); g++)
				if (strcmp(lab_groups[g].name, tok) == 0)
					m->labs |= lab_groups[g].mask;
		m->group = intern_group(t, d->group);
		if (resolve_list(d->procs, RK_PROC, m->procs, &m->nprocs, d->code, e) < 0 ||
		    resolve_list(d->items, RK_HX, m->items, &m->nitems, d->code, e) < 0 ||
		    resolve_list(d->with, RK_DX, m->with, &m->nwith, d->code, e) < 0 ||
		    resolve_list(d->replaces, RK_DX, m->repl, &m->nrepl, d->code, e) < 0)
			return -1;

		if (d->permille > 0)
			t->chronic[t->nchronic++] = (short)i;
		if (d->kind == 'T')
			t->comorbid[t->ncomorbid++] = (short)i;
		if (d->kind == 'X')
			t->exacerb[t->nexacerb++] = (short)i;
		for (c = 0; c < CLS__N; c++) {
			bool ok = (m->where & (1u << c)) != 0;

			if (d->kind == 'X' || d->kind == 'V' || (m->flags & F_OB))
				ok = false;
			/* a chronic problem is an outpatient principal only as a
			 * follow-up of the patient's own problem list */
			if (d->kind == 'C' && c == CLS_AMB)
				ok = false;
			if (ok)
				t->principal[c][t->nprincipal[c]++] = (short)i;
		}
	}
	for (i = 0; i < NPCS; i++)
		if (resolve_list(pcs_defs[i].items, RK_HX, t->pcs_items[i],
				&t->pcs_nitems[i], pcs_defs[i].code, e) < 0)
			return -1;

#define DX_(field, code) bad |= (t->field = (short)need(find_dx(code), code, e)) < 0
#define PCS_(field, code) bad |= (t->field = (short)need(find_pcs(code), code, e)) < 0
#define HX_(field, code) bad |= (t->field = (short)need(find_hx(code), code, e)) < 0
	DX_(z3800, "Z38.00"); DX_(z3801, "Z38.01"); DX_(p599, "P59.9");
	DX_(p221, "P22.1"); DX_(o80, "O80"); DX_(z23, "Z23");
	DX_(z0000, "Z00.00"); DX_(z0001, "Z00.01"); DX_(z00129, "Z00.129");
	DX_(z00121, "Z00.121"); DX_(z1211, "Z12.11"); DX_(z01419, "Z01.419"); DX_(j069, "J06.9");
	DX_(i10, "I10"); DX_(i110, "I11.0"); DX_(i129, "I12.9");
	DX_(i120, "I12.0"); DX_(i130, "I13.0"); DX_(i132, "I13.2");
	DX_(n186, "N18.6"); DX_(f17210, "F17.210"); DX_(z87891, "Z87.891");
	PCS_(pcs_delivery, "10E0XZZ"); PCS_(pcs_perineum, "0HQ9XZZ");
	PCS_(pcs_vaccine, "3E0234Z"); PCS_(pcs_circ, "0VTTXZZ");
	PCS_(pcs_vent, "5A1945Z");
	HX_(hx_clinic, "G0463"); HX_(hx_flu_admin, "G0008");
	HX_(hx_flu_vaccine, "Q2038"); HX_(hx_pneumo_admin, "G0009");
	HX_(hx_awv_initial, "G0438"); HX_(hx_awv_subseq, "G0439");
	HX_(hx_depr_screen, "G0444"); HX_(hx_psa, "G0103");
	HX_(hx_ldct_counsel, "G0296");
	HX_(hx_saline, "J7030"); HX_(hx_saline_small, "J7050");
#undef DX_
#undef PCS_
#undef HX_
	t->grp_hf = intern_group(t, "hf");
	t->grp_ckd = intern_group(t, "ckd");
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------- model */

#define MAX_PROBS 8
#define MAX_DX 14
#define MAX_PX 6
#define MAX_ITEMS 12
#define MAX_DOCS 8
#define MAX_VISITS 8

struct person {
	char sex;                  /* 'F' or 'M' */
	int group;                 /* name group */
	char given[32], middle[32], family[64];
	const char *nick;          /* nickname of `given`, or NULL */
	int64_t birth;             /* day */
	int age;                   /* whole years at as_of */
	bool newborn;              /* born inside the data window */
	char line1[64], line2[16];
	int city;
	char phone[16];            /* "" = none given */
	bool mobile;
	char ssn[10];              /* "" = none given */
	int marital;               /* -1: not recorded (minors) */
	int lang;
	unsigned mrn;
	int64_t deceased;          /* local seconds of death, 0 = alive */
	int64_t seen_until;        /* no visits after this (local seconds), 0 = as_of */
	int pcp;                   /* practitioner index */
	short prob[MAX_PROBS];     /* chronic problem list (dx index) */
	int64_t prob_onset[MAX_PROBS];
	unsigned nprob;
	int payer, payer2;         /* payer2 = -1: no secondary coverage */
	char member[20], member2[20], group_no[20];
	int64_t cov_start;         /* day */
};

struct vitals {
	int hr, rr, temp, sys, dia, spo2;  /* temp in 0.1 Cel */
	int wt, ht, bmi;                   /* 0.1 kg, 0.1 cm, 0.1 kg/m2; 0 = not taken */
};

struct proc_inst {
	short ref;                 /* pcs index or HX_REF(hcpcs index) */
	int performer;
	int64_t start, end;
	char id[ID_CAP];
};

struct item_inst {
	short hx;
	unsigned qty;
	int64_t day;
};

struct doc_inst {
	int kind;
	int author;
	int64_t when;
	bool signed_;
	int64_t signed_at;
	int proc;                  /* for operative notes: index into px */
	char id[ID_CAP];
};

enum admit_src { AS_EMD, AS_MP, AS_BORN, AS_TRANS };
enum dispo { DP_HOME, DP_SNF, DP_REHAB, DP_HOSPICE, DP_OTHER_HCF, DP_AADVICE, DP_EXP, DP_OTH };

static const struct {
	const char *code, *display;
} admit_srcs[] = {
	[AS_EMD] = { "emd", "From accident/emergency department" },
	[AS_MP] = { "mp", "Medical Practitioner/physician referral" },
	[AS_BORN] = { "born", "Born in hospital" },
	[AS_TRANS] = { "hosp-trans", "Transferred from other hospital" },
};

static const struct {
	const char *code, *display, *text;
} dispos[] = {
	[DP_HOME] = { "home", "Home", "Discharged to home" },
	[DP_SNF] = { "snf", "Skilled nursing facility", "Discharged to a skilled nursing facility" },
	[DP_REHAB] = { "rehab", "Rehabilitation", "Discharged to inpatient rehabilitation" },
	[DP_HOSPICE] = { "hosp", "Hospice", "Discharged to hospice care" },
	[DP_OTHER_HCF] = { "other-hcf", "Other healthcare facility",
		"Transferred to another healthcare facility" },
	[DP_AADVICE] = { "aadvice", "Left against advice", "Left against medical advice" },
	[DP_EXP] = { "exp", "Expired", "Expired" },
	[DP_OTH] = { "oth", "Other", "Other" },
};

struct visit {
	int cls;
	int64_t start, end;
	bool open;                 /* still admitted at as_of */
	bool elective, birth;
	int attending, loc;
	int admit_src, dispo;
	unsigned visit_no;
	short dx[MAX_DX];
	int64_t dx_onset[MAX_DX];  /* day of a known chronic onset, or -1 */
	char poa[MAX_DX];          /* 'Y', 'N' or 0 (exempt / not inpatient) */
	unsigned ndx;
	struct proc_inst px[MAX_PX];
	unsigned npx;
	struct item_inst it[MAX_ITEMS];
	unsigned nit;
	uint32_t labs, key_labs;   /* key_labs: likely abnormal */
	int64_t vitals_at, labs_at;
	struct vitals vs;
	struct doc_inst doc[MAX_DOCS];
	unsigned ndoc;
	bool claim;
	int64_t claim_day;
	char id[ID_CAP], comp_id[ID_CAP], claim_id[ID_CAP];
	char dx_id[MAX_DX][ID_CAP];
};

struct slot {
	const char *type;
	char id[ID_CAP];
	size_t off, len;
	int dup_of;                /* slot index of the original Patient, or -1 */
};

struct gen {
	const struct demo_opts *o;
	demo_emit_fn emit;
	void *ctx;
	struct tables t;
	char tag[8];
	int64_t as_of_day;
	int64_t as_of;             /* local seconds: noon of as_of_day */
	uint64_t mrn_off;
	/* directory */
	char hosp_id[ID_CAP];
	char payer_id[ARRAY_SIZE(payer_defs)][ID_CAP];
	char prac_id[NPRAC][ID_CAP];
	char prac_given[NPRAC][32], prac_family[NPRAC][64];
	char prac_sex[NPRAC];
	char prac_npi[NPRAC][11];
	short by_spec[SP__N][NPRAC];
	unsigned nby_spec[SP__N];
	char loc_id[LOC__N][ID_CAP];
	/* the batch being built */
	struct buf out;
	struct buf note;           /* scratch: clinical note text */
	struct slot *slots;
	size_t nslots, cap_slots;
	struct demo_res *res;
	size_t cap_res;
	struct slot spare;         /* written to when the slot array cannot grow */
	struct slot *cur;
	bool nomem;
	/* ids inside the current patient */
	unsigned num;              /* patient number */
	unsigned seq;
	unsigned ndup;
	struct visit visits[MAX_VISITS];
};

/* ------------------------------------------------------------ ids */

/* "<pfx>-<tag>-<a>" or "<pfx>-<tag>-<a>-<b>" (b > 0). */
static void make_id(char *dst, const char *pfx, const char *tag, unsigned a,
	unsigned b)
{
	char num[2][12];
	unsigned vals[2] = { a, b };
	size_t n = 0, len[2];

	for (int k = 0; k < 2; k++) {
		char tmp[12];
		size_t m = 0;
		unsigned v = vals[k];

		do {
			tmp[m++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		for (size_t i = 0; i < m; i++)
			num[k][i] = tmp[m - 1 - i];
		len[k] = m;
	}
	for (const char *s = pfx; *s; s++)
		dst[n++] = *s;
	dst[n++] = '-';
	for (const char *s = tag; *s; s++)
		dst[n++] = *s;
	dst[n++] = '-';
	memcpy(dst + n, num[0], len[0]);
	n += len[0];
	if (b) {
		dst[n++] = '-';
		memcpy(dst + n, num[1], len[1]);
		n += len[1];
	}
	dst[n] = '\0';
}

/* The next id of a resource of the current patient. */
static void next_id(struct gen *g, char *dst, const char *pfx)
{
	make_id(dst, pfx, g->tag, g->num, ++g->seq);
}

/* ----------------------------------------------------------- batches */

static void res_begin(struct gen *g, const char *type, const char *id)
{
	struct buf *b = &g->out;
	struct slot *s = &g->spare;

	if (g->nslots == g->cap_slots) {
		size_t ncap = g->cap_slots ? g->cap_slots * 2 : 256;
		struct slot *p = realloc(g->slots, ncap * sizeof(*p));

		if (p) {
			g->slots = p;
			g->cap_slots = ncap;
		} else {
			g->nomem = true;
		}
	}
	if (g->nslots < g->cap_slots)
		s = &g->slots[g->nslots++];
	s->type = type;
	cpy(s->id, sizeof(s->id), id);
	s->off = b->len;
	s->dup_of = -1;
	g->cur = s;
	LIT(b, "{\"resourceType\":\"");
	buf_addstr(b, type);
	LIT(b, "\",\"id\":\"");
	buf_addstr(b, id);
	buf_addch(b, '"');
}

static void res_end(struct gen *g)
{
	struct buf *b = &g->out;

	buf_addch(b, '}');
	g->cur->len = b->len - g->cur->off;
	buf_add(b, "", 1); /* NUL-terminate the resource inside the batch */
}

/* Hand the batch to the callback and start a new one. */
static int flush(struct gen *g, struct err *e)
{
	size_t i;
	int rc = 0;

	if (g->nslots == 0)
		return 0;
	if (g->out.failed || g->nomem) {
		rc = err_set(e, ERR_NOMEM, "out of memory generating demo data");
		goto out;
	}
	if (g->cap_res < g->nslots) {
		struct demo_res *p = realloc(g->res, g->cap_slots * sizeof(*p));

		if (!p) {
			rc = err_set(e, ERR_NOMEM, "out of memory generating demo data");
			goto out;
		}
		g->res = p;
		g->cap_res = g->cap_slots;
	}
	for (i = 0; i < g->nslots; i++) {
		const struct slot *s = &g->slots[i];

		g->res[i].type = s->type;
		g->res[i].id = s->id;
		g->res[i].json = g->out.data + s->off;
		g->res[i].len = s->len;
		g->res[i].dup_of = s->dup_of >= 0 ? g->slots[s->dup_of].id : NULL;
	}
	if (g->emit(g->ctx, g->res, g->nslots, e) != 0)
		rc = -1;
out:
	g->nslots = 0;
	buf_reset(&g->out);
	return rc;
}

/* ---------------------------------------------------------- directory */

/* A 10-digit NPI: 9 digits starting with 1 and the Luhn check digit
 * computed over the 80840 prefix, as CMS specifies. */
static void make_npi(struct rng *r, char out[11])
{
	unsigned sum = 24; /* the prefix 80840 contributes 24 */
	int i;

	out[0] = '1';
	for (i = 1; i < 9; i++)
		out[i] = (char)('0' + rng_below(r, 10));
	for (i = 8; i >= 0; i--) {
		unsigned d = (unsigned)(out[i] - '0');

		if ((8 - i) % 2 == 0) {   /* doubled, counting from the right */
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	out[9] = (char)('0' + (10 - sum % 10) % 10);
	out[10] = '\0';
}

static const struct name_group *pick_group(struct rng *r, int *idx)
{
	unsigned char w[ARRAY_SIZE(groups)];

	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		w[i] = groups[i].weight;
	*idx = (int)rng_weighted(r, w, ARRAY_SIZE(groups));
	return &groups[*idx];
}

static void directory_plan(struct gen *g)
{
	struct rng r;
	size_t i;

	rng_seed(&r, g->o->seed, STREAM_DIRECTORY, 0);
	make_id(g->hosp_id, "org", g->tag, 1, 0);
	for (i = 0; i < ARRAY_SIZE(payer_defs); i++)
		make_id(g->payer_id[i], "payer", g->tag, (unsigned)i + 1, 0);
	for (i = 0; i < LOC__N; i++)
		make_id(g->loc_id[i], "loc", g->tag, (unsigned)i + 1, 0);
	for (i = 0; i < NPRAC; i++) {
		int gi;
		const struct name_group *ng = pick_group(&r, &gi);
		bool female = rng_pct(&r, 50);
		const struct given *gv = female
			? &ng->female[rng_below(&r, ng->nfemale)]
			: &ng->male[rng_below(&r, ng->nmale)];
		int spec = prac_defs[i].spec;

		make_id(g->prac_id[i], "prac", g->tag, (unsigned)i + 1, 0);
		cpy(g->prac_given[i], sizeof(g->prac_given[i]), gv->name);
		cpy(g->prac_family[i], sizeof(g->prac_family[i]),
			ng->family[rng_below(&r, ng->nfamily)]);
		g->prac_sex[i] = female ? 'F' : 'M';
		make_npi(&r, g->prac_npi[i]);
		g->by_spec[spec][g->nby_spec[spec]++] = (short)i;
	}
}

static void write_directory(struct gen *g)
{
	struct buf *b = &g->out;
	struct rng r;
	char npi[11];
	size_t i;

	rng_seed(&r, g->o->seed, STREAM_DIRECTORY, 1);
	make_npi(&r, npi);
	res_begin(g, "Organization", g->hosp_id);
	LIT(b, ",\"identifier\":[{\"system\":\"" SYS_NPI "\",\"value\":\"");
	buf_addstr(b, npi);
	LIT(b, "\"},{\"system\":\"" SYS_EIN "\",\"value\":\"31");
	put_pad(b, (unsigned)rng_below(&r, 10000000), 7);
	LIT(b, "\"}],\"active\":true,\"type\":[");
	put_cc(b, THO "organization-type", "prov", "Healthcare Provider", false);
	LIT(b, "],\"name\":\"" HOSPITAL_NAME "\",\"alias\":[\"ORRMC\"]"
		",\"telecom\":[{\"system\":\"phone\",\"value\":\"614-555-0100\",\"use\":\"work\"}]"
		",\"address\":[{\"use\":\"work\",\"line\":[\"3000 Olentangy Ridge Pkwy\"]"
		",\"city\":\"Columbus\",\"state\":\"OH\",\"postalCode\":\"43214\",\"country\":\"US\"}]");
	res_end(g);

	for (i = 0; i < ARRAY_SIZE(payer_defs); i++) {
		const struct payer_def *p = &payer_defs[i];

		res_begin(g, "Organization", g->payer_id[i]);
		LIT(b, ",\"identifier\":[{\"system\":\"" URL_PAYER_ID "\",\"value\":\"");
		buf_addstr(b, p->payer_id);
		LIT(b, "\"}],\"active\":true,\"type\":[");
		put_cc(b, THO "organization-type", "pay", "Payer", false);
		LIT(b, "],\"name\":");
		put_jstr(b, p->name);
		LIT(b, ",\"telecom\":[{\"system\":\"phone\",\"value\":\"800-555-01");
		put_pad(b, (unsigned)(10 + i), 2);
		LIT(b, "\",\"use\":\"work\"}]");
		res_end(g);
	}

	for (i = 0; i < NPRAC; i++) {
		const struct prac_def *d = &prac_defs[i];
		bool nurse = strcmp(d->qual, "NP") == 0;

		res_begin(g, "Practitioner", g->prac_id[i]);
		LIT(b, ",\"identifier\":[{\"system\":\"" SYS_NPI "\",\"value\":\"");
		buf_addstr(b, g->prac_npi[i]);
		LIT(b, "\"}],\"active\":true,\"name\":[{\"use\":\"official\",\"family\":");
		put_jstr(b, g->prac_family[i]);
		LIT(b, ",\"given\":[");
		put_jstr(b, g->prac_given[i]);
		LIT(b, "],\"suffix\":[\"");
		buf_addstr(b, d->qual);
		LIT(b, "\"]}],\"telecom\":[{\"system\":\"phone\",\"value\":\"614-555-01");
		put_pad(b, (unsigned)(20 + i), 2);
		LIT(b, "\",\"use\":\"work\"}],\"gender\":\"");
		buf_addstr(b, g->prac_sex[i] == 'F' ? "female" : "male");
		LIT(b, "\",\"qualification\":[{\"identifier\":[{\"system\":\"" URL_LICENSE "\",\"value\":\"");
		buf_addstr(b, nurse ? "RN." : "35.");
		put_pad(b, (unsigned)rng_below(&r, 1000000), 6);
		LIT(b, "\"}],\"code\":");
		put_cc(b, THO "v2-0360", d->qual, d->qual_display, false);
		LIT(b, ",\"issuer\":{\"display\":\"");
		buf_addstr(b, nurse ? "Ohio Board of Nursing" : "State Medical Board of Ohio");
		LIT(b, "\"}}]");
		res_end(g);
	}

	for (i = 0; i < LOC__N; i++) {
		const struct loc_def *l = &loc_defs[i];

		res_begin(g, "Location", g->loc_id[i]);
		LIT(b, ",\"status\":\"active\",\"name\":");
		put_jstr(b, l->name);
		LIT(b, ",\"mode\":\"instance\",\"type\":[");
		put_cc(b, THO "v3-RoleCode", l->code, l->display, false);
		buf_addch(b, ']');
		if (l->ward) {
			LIT(b, ",\"physicalType\":");
			put_cc(b, THO "location-physical-type", "wa", "Ward", false);
		}
		LIT(b, ",\"managingOrganization\":");
		put_ref(b, "Organization/", g->hosp_id);
		res_end(g);
	}
}

/* A practitioner of a specialty. */
static int pick_prac(struct gen *g, struct rng *r, int spec)
{
	return g->by_spec[spec][rng_below(r, g->nby_spec[spec])];
}

/* --------------------------------------------------------------- people */

static bool dx_fits(const struct dx_def *d, const struct person *p)
{
	if (d->sex && d->sex != p->sex)
		return false;
	return p->age >= d->age_lo && p->age <= d->age_hi;
}

static bool has_prob(const struct person *p, int dx)
{
	for (unsigned i = 0; i < p->nprob; i++)
		if (p->prob[i] == dx)
			return true;
	return false;
}

static bool group_taken(const struct gen *g, const struct person *p, int dx)
{
	int grp = g->t.dx[dx].group;

	if (grp < 0)
		return false;
	for (unsigned i = 0; i < p->nprob; i++)
		if (g->t.dx[p->prob[i]].group == grp)
			return true;
	return false;
}

static void add_prob(struct gen *g, struct rng *r, struct person *p, int dx)
{
	const struct dx_def *d = &dx_defs[dx];
	int64_t earliest, latest, span;

	if (p->nprob >= MAX_PROBS || has_prob(p, dx) || group_taken(g, p, dx) ||
	    !dx_fits(d, p))
		return;
	latest = g->as_of_day - 60;
	earliest = p->birth + (int64_t)d->age_lo * 365;
	if (earliest < latest - 25 * 365)
		earliest = latest - 25 * 365;
	if (earliest > latest)
		earliest = latest;
	span = latest - earliest;
	p->prob[p->nprob] = (short)dx;
	p->prob_onset[p->nprob] = earliest + (span > 0 ? (int64_t)rng_below(r, (unsigned)span) : 0);
	p->nprob++;
	for (unsigned k = 0; k < g->t.dx[dx].nwith; k++)
		add_prob(g, r, p, g->t.dx[dx].with[k]);
}

/* Always the 555 exchange, which is not given to subscribers, so that no
 * generated number rings anyone (555-1212 is directory assistance). */
static void make_phone(struct rng *r, const char *area, char out[16])
{
	unsigned exch = 555, line = (unsigned)rng_range(r, 100, 9999);

	if (line == 1212)
		line = 1213;
	memcpy(out, area, 3);
	out[3] = '-';
	out[4] = (char)('0' + exch / 100);
	out[5] = (char)('0' + exch / 10 % 10);
	out[6] = (char)('0' + exch % 10);
	out[7] = '-';
	for (int i = 3; i >= 0; i--) {
		out[8 + i] = (char)('0' + line % 10);
		line /= 10;
	}
	out[12] = '\0';
}

/* Street line "1234 Maple Ave" and maybe "Apt 3B". */
static void make_street(struct rng *r, struct person *p)
{
	struct buf b = BUF_INIT(sizeof(p->line1) - 1);

	put_u64(&b, (uint64_t)rng_range(r, 100, 9899));
	buf_addch(&b, ' ');
	buf_addstr(&b, PICK(r, streets));
	buf_addch(&b, ' ');
	buf_addstr(&b, PICK(r, street_suffix));
	cpy(p->line1, sizeof(p->line1), b.failed ? "100 Main St" : buf_cstr(&b));
	buf_release(&b);
	p->line2[0] = '\0';
	if (rng_pct(r, 18)) {
		char apt[12] = "Apt ";
		unsigned n = (unsigned)rng_range(r, 1, 4);

		apt[4] = (char)('0' + n);
		apt[5] = (char)('A' + rng_below(r, 6));
		apt[6] = '\0';
		cpy(p->line2, sizeof(p->line2), apt);
	}
}

static void make_member_id(struct rng *r, const struct payer_def *pd, char *out, size_t cap)
{
	char tmp[20];
	size_t n = 0;
	int digits = 9;

	if (pd->kind == PK_MEDICAID) {
		digits = 12;
	} else {
		tmp[n++] = pd->group_prefix[0];
		tmp[n++] = pd->group_prefix[1];
		if (pd->kind == PK_COMMERCIAL)
			tmp[n++] = (char)('A' + rng_below(r, 26));
		else
			digits = 10;
	}
	for (int i = 0; i < digits; i++)
		tmp[n++] = (char)('0' + rng_below(r, 10));
	tmp[n] = '\0';
	cpy(out, cap, tmp);
}

static void make_group_no(struct rng *r, const struct payer_def *pd, char *out, size_t cap)
{
	struct buf b = BUF_INIT(cap - 1);

	if (pd->kind == PK_MEDICARE_ADV) {
		LIT(&b, "H");
		put_pad(&b, (unsigned)rng_range(r, 1000, 9999), 4);
		LIT(&b, "-00");
		put_u64(&b, (uint64_t)rng_range(r, 1, 9));
	} else if (pd->kind == PK_MEDICAID) {
		LIT(&b, "MCD-OH-");
		put_pad(&b, (unsigned)rng_below(r, 100), 2);
	} else {
		buf_addstr(&b, pd->group_prefix);
		LIT(&b, "-");
		put_pad(&b, (unsigned)rng_below(r, 100000), 5);
	}
	cpy(out, cap, b.failed ? "GROUP" : buf_cstr(&b));
	buf_release(&b);
}

static void make_person(struct gen *g, struct rng *r, struct person *p, unsigned num)
{
	static const unsigned char band_w[] = { 3, 17, 28, 25, 27 };
	static const unsigned char lang_w[] = { 1, 1 };
	const struct name_group *ng;
	const struct given *gv;
	unsigned band, n;

	memset(p, 0, sizeof(*p));
	band = rng_weighted(r, band_w, ARRAY_SIZE(band_w));
	if (band == 0) {
		p->newborn = true;
		p->birth = g->as_of_day - rng_range(r, 2, WINDOW_DAYS - 30);
	} else {
		static const int lo[] = { 0, 1, 18, 45, 65 }, hi[] = { 0, 17, 44, 64, 95 };
		int years = rng_range(r, lo[band], hi[band]);

		p->birth = g->as_of_day - (int64_t)years * 36525 / 100 - rng_below(r, 365);
	}
	p->age = (int)((g->as_of_day - p->birth) * 100 / 36525);
	p->sex = rng_pct(r, 51) ? 'F' : 'M';

	ng = pick_group(r, &p->group);
	gv = p->sex == 'F' ? &ng->female[rng_below(r, ng->nfemale)]
		: &ng->male[rng_below(r, ng->nmale)];
	cpy(p->given, sizeof(p->given), gv->name);
	p->nick = gv->nick;
	p->middle[0] = '\0';
	if (rng_pct(r, 55)) {
		const struct given *mv = p->sex == 'F'
			? &ng->female[rng_below(r, ng->nfemale)]
			: &ng->male[rng_below(r, ng->nmale)];

		if (strcmp(mv->name, gv->name) != 0)
			cpy(p->middle, sizeof(p->middle), mv->name);
	}
	cpy(p->family, sizeof(p->family), ng->family[rng_below(r, ng->nfamily)]);
	if (ng == &groups[1] && rng_pct(r, 12)) {
		/* compound Hispanic surname, a classic source of MPI misses */
		size_t len = strlen(p->family);
		const char *second = ng->family[rng_below(r, ng->nfamily)];

		if (strcmp(second, p->family) != 0 && len + strlen(second) + 2 < sizeof(p->family)) {
			p->family[len] = '-';
			cpy(p->family + len + 1, sizeof(p->family) - len - 1, second);
		}
	}

	make_street(r, p);
	{
		unsigned char w[ARRAY_SIZE(cities)];

		for (size_t i = 0; i < ARRAY_SIZE(cities); i++)
			w[i] = cities[i].weight;
		p->city = (int)rng_weighted(r, w, ARRAY_SIZE(cities));
	}
	p->phone[0] = '\0';
	if (rng_pct(r, 94))
		make_phone(r, cities[p->city].area, p->phone);
	p->mobile = rng_pct(r, 60);
	p->ssn[0] = '\0';
	if (rng_pct(r, p->newborn ? 30 : p->age < 18 ? 80 : 90)) {
		/* never-issued area numbers 900-999 */
		p->ssn[0] = '9';
		for (int i = 1; i < 9; i++)
			p->ssn[i] = (char)('0' + rng_below(r, 10));
		if (p->ssn[3] == '0' && p->ssn[4] == '0')
			p->ssn[4] = '1';
		p->ssn[9] = '\0';
	}
	p->marital = -1;
	if (p->age >= 18) {
		static const unsigned char young[MS__N] = { 30, 60, 4, 0, 2, 4 };
		static const unsigned char mid[MS__N] = { 55, 18, 16, 2, 4, 5 };
		static const unsigned char old[MS__N] = { 50, 6, 16, 25, 2, 1 };

		p->marital = (int)rng_weighted(r, p->age < 30 ? young : p->age < 65 ? mid : old, MS__N);
	}
	p->lang = L_EN;
	if (rng_pct(r, ng->other_pct))
		p->lang = ng->lang[rng_weighted(r, lang_w, 2)];
	p->mrn = (unsigned)(10000000 + ((uint64_t)num * 1000003 + g->mrn_off) % 90000000);
	p->pcp = pick_prac(g, r, p->age < 18 ? SP_PEDS : SP_FM);

	/* death inside the window, for some of the old and a few others */
	p->deceased = 0;
	if (p->age >= 18 && rng_pct(r, p->age >= 65 ? 4 : 1)) {
		int64_t day = g->as_of_day - rng_range(r, 30, WINDOW_DAYS - 60);

		p->deceased = day * DAY_SECS + rng_range(r, 0, DAY_SECS / MIN_SECS - 1) * MIN_SECS;
	}

	/* chronic problem list */
	p->nprob = 0;
	for (n = 0; n < g->t.nchronic && p->nprob < MAX_PROBS; n++) {
		int dx = g->t.chronic[n];

		if (!dx_fits(&dx_defs[dx], p))
			continue;
		if (rng_below(r, 1000) < dx_defs[dx].permille)
			add_prob(g, r, p, dx);
	}

	/* coverage */
	if (p->age >= 65)
		p->payer = rng_pct(r, 75) ? PAY_SA : PAY_BH;
	else if (p->age < 18)
		p->payer = rng_pct(r, 45) ? PAY_SC : (rng_pct(r, 50) ? PAY_BH : PAY_PM);
	else
		p->payer = rng_pct(r, 20) ? PAY_SC : (int)PICK(r, ((const int[]){ PAY_BH, PAY_PM, PAY_LE }));
	make_member_id(r, &payer_defs[p->payer], p->member, sizeof(p->member));
	make_group_no(r, &payer_defs[p->payer], p->group_no, sizeof(p->group_no));
	p->payer2 = -1;
	if (p->age >= 65 && rng_pct(r, 12)) {
		p->payer2 = PAY_SC; /* dual eligible: Medicaid pays second */
		make_member_id(r, &payer_defs[PAY_SC], p->member2, sizeof(p->member2));
	}
	p->cov_start = p->newborn ? p->birth
		: g->as_of_day - WINDOW_DAYS - rng_range(r, 0, 5 * 365);
	if (p->cov_start < p->birth)
		p->cov_start = p->birth;
}

/* ----------------------------------------------------- near-duplicates */

static const char *const kbd_near[26] = {
	"qwsz", "vghn", "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb",
	"ujko", "huikmn", "jiolm", "kop", "njk", "bhjm", "iklp", "ol", "wa",
	"edft", "awedxz", "rfgy", "yhji", "cfgb", "qase", "zsdc", "tghu", "asx",
};

/* One keying error in s (never in the first letter). */
static void typo(struct rng *r, char *s, size_t cap)
{
	size_t n = strlen(s), pos;
	unsigned kind;
	char c;

	if (n < 3)
		return;
	pos = 1 + rng_below(r, (unsigned)(n - 2));
	kind = rng_below(r, 4);
	if (kind == 0 && s[pos] == s[pos + 1])
		kind = 1;       /* swapping equal letters changes nothing */
	if (kind == 2 && n + 1 >= cap)
		kind = 1;
	if (kind == 3 && !(s[pos] >= 'a' && s[pos] <= 'z'))
		kind = 1;
	switch (kind) {
	case 0: /* transposition */
		c = s[pos];
		s[pos] = s[pos + 1];
		s[pos + 1] = c;
		break;
	case 1: /* dropped letter */
		memmove(s + pos, s + pos + 1, n - pos);
		break;
	case 2: /* doubled letter */
		memmove(s + pos + 1, s + pos, n - pos + 1);
		break;
	default: { /* neighbouring key */
		const char *near = kbd_near[s[pos] - 'a'];

		s[pos] = near[rng_below(r, (unsigned)strlen(near))];
		break;
	}
	}
}

/* Copy p into d with the registration errors that make a near-duplicate. */
static void make_duplicate(struct gen *g, struct rng *r, const struct person *p,
	struct person *d, unsigned num)
{
	unsigned errors = 0;

	*d = *p;
	d->mrn = (unsigned)(10000000 + ((uint64_t)num * 1000003 + g->mrn_off) % 90000000);
	/* the stray registration happened while the patient was alive, and
	 * nobody recorded the death on it */
	d->seen_until = p->deceased;
	d->deceased = 0;
	if (p->nick && rng_pct(r, 35)) {
		cpy(d->given, sizeof(d->given), p->nick);
		errors++;
	} else if (rng_pct(r, 20)) {
		typo(r, d->given, sizeof(d->given));
		errors++;
	}
	if (rng_pct(r, 30)) {
		typo(r, d->family, sizeof(d->family));
		errors++;
	} else if (strchr(d->family, '-') && rng_pct(r, 60)) {
		*strchr(d->family, '-') = '\0'; /* only the first surname */
		errors++;
	}
	if (d->middle[0] && rng_pct(r, 35))
		d->middle[0] = '\0';
	if (rng_pct(r, 22)) {
		int y;
		unsigned m, dd;

		civil(p->birth, &y, &m, &dd);
		if (dd <= 12 && dd != m) {
			d->birth = time_days_from_civil(y, dd, m);  /* day/month swap */
		} else {
			/* the year's last two digits transposed, when that gives a
			 * believable year; otherwise the day is off by one */
			int yy = y / 100 * 100 + y % 10 * 10 + y / 10 % 10;
			int64_t alt = time_days_from_civil(yy, m, dd);

			if (yy != y && rng_pct(r, 50) && alt < g->as_of_day - 30 &&
			    alt > g->as_of_day - 100 * 365)
				d->birth = alt;
			else
				d->birth = dd > 1 ? p->birth - 1 : p->birth + 1;
		}
		errors++;
	}
	if (d->phone[0] && rng_pct(r, 35)) {
		d->phone[0] = '\0';
		errors++;
	}
	if (d->ssn[0] && rng_pct(r, 30)) {
		if (rng_pct(r, 70)) {
			d->ssn[0] = '\0';
		} else {
			unsigned i = 3 + rng_below(r, 5);
			char c = d->ssn[i];

			d->ssn[i] = d->ssn[i + 1];
			d->ssn[i + 1] = c;
		}
		errors++;
	}
	if (rng_pct(r, 15)) {
		make_street(r, d);
		errors++;
	}
	if (errors == 0)
		typo(r, d->family, sizeof(d->family));
	d->nick = NULL;
}

/* -------------------------------------------------------------- visits */

enum visit_mode { VM_NORMAL, VM_BIRTH, VM_DEATH, VM_OPEN };

static bool visit_has_dx(const struct visit *v, int dx)
{
	for (unsigned i = 0; i < v->ndx; i++)
		if (v->dx[i] == dx)
			return true;
	return false;
}

static bool visit_group_taken(const struct gen *g, const struct visit *v, int dx)
{
	int grp = g->t.dx[dx].group;

	if (grp < 0)
		return false;
	for (unsigned i = 0; i < v->ndx; i++)
		if (g->t.dx[v->dx[i]].group == grp)
			return true;
	return false;
}

/* Add a diagnosis and its "use additional code" partners. */
static void visit_add_dx(struct gen *g, struct visit *v, const struct person *p,
	int dx, int64_t onset)
{
	if (v->ndx >= MAX_DX || visit_has_dx(v, dx) || visit_group_taken(g, v, dx) ||
	    !dx_fits(&dx_defs[dx], p))
		return;
	v->dx[v->ndx] = (short)dx;
	v->dx_onset[v->ndx] = onset;
	v->poa[v->ndx] = 0;
	v->ndx++;
	for (unsigned k = 0; k < g->t.dx[dx].nwith; k++)
		visit_add_dx(g, v, p, g->t.dx[dx].with[k], -1);
}

/* Some of the patient's chronic problems, as secondary diagnoses. */
static void add_problems(struct gen *g, struct rng *r, struct visit *v,
	const struct person *p, unsigned pct, unsigned max)
{
	unsigned added = 0;

	for (unsigned i = 0; i < p->nprob && added < max; i++) {
		if (!rng_pct(r, pct) || visit_has_dx(v, p->prob[i]))
			continue;
		visit_add_dx(g, v, p, p->prob[i], p->prob_onset[i]);
		added++;
	}
}

static int64_t prob_onset(const struct person *p, int dx)
{
	for (unsigned i = 0; i < p->nprob; i++)
		if (p->prob[i] == dx)
			return p->prob_onset[i];
	return -1;
}

/* A principal from a candidate list that fits the patient (or -1). */
static int pick_fitting(struct rng *r, const short *list, unsigned n,
	const struct person *p)
{
	for (int tries = 0; tries < 40 && n > 0; tries++) {
		int dx = list[rng_below(r, n)];

		if (dx_fits(&dx_defs[dx], p))
			return dx;
	}
	return -1;
}

/* An exacerbation of one of the patient's chronic problems that may be the
 * principal in class cls (or -1); *replaced gets the problem it replaces. */
static int pick_exacerbation(struct gen *g, struct rng *r, const struct person *p,
	int cls, int *replaced)
{
	short cand[16], from[16];
	unsigned n = 0;

	for (unsigned i = 0; i < g->t.nexacerb && n < ARRAY_SIZE(cand); i++) {
		int x = g->t.exacerb[i];
		const struct dx_meta *m = &g->t.dx[x];

		if (!(m->where & (1u << cls)) || !dx_fits(&dx_defs[x], p))
			continue;
		for (unsigned k = 0; k < m->nrepl; k++) {
			if (has_prob(p, m->repl[k])) {
				cand[n] = (short)x;
				from[n] = m->repl[k];
				n++;
				break;
			}
		}
	}
	if (n == 0)
		return -1;
	n = rng_below(r, n);
	*replaced = from[n];
	return cand[n];
}

/* Hypertension with heart failure and/or CKD is coded with the
 * combination category (ICD-10-CM guideline I.C.9.a): I10 becomes I11.0,
 * I12.x or I13.x, sequenced first when the visit is for the HF or CKD. */
static void apply_htn_rule(struct gen *g, struct visit *v)
{
	int htn = -1, combo;
	bool hf = false, ckd = false, esrd = false;
	unsigned i;

	for (i = 0; i < v->ndx; i++) {
		int grp = g->t.dx[v->dx[i]].group;

		if (v->dx[i] == g->t.i10)
			htn = (int)i;
		hf |= grp == g->t.grp_hf;
		ckd |= grp == g->t.grp_ckd;
		esrd |= v->dx[i] == g->t.n186;
	}
	if (htn < 0 || (!hf && !ckd))
		return;
	if (hf && ckd)
		combo = esrd ? g->t.i132 : g->t.i130;
	else if (hf)
		combo = g->t.i110;
	else
		combo = esrd ? g->t.i120 : g->t.i129;
	v->dx[htn] = (short)combo;
	v->dx_onset[htn] = -1;
	if (htn > 0) {
		int grp0 = g->t.dx[v->dx[0]].group;

		if (grp0 == g->t.grp_hf || grp0 == g->t.grp_ckd) {
			short d = v->dx[htn];
			int64_t o = v->dx_onset[htn];

			memmove(v->dx + 1, v->dx, (size_t)htn * sizeof(v->dx[0]));
			memmove(v->dx_onset + 1, v->dx_onset, (size_t)htn * sizeof(v->dx_onset[0]));
			v->dx[0] = d;
			v->dx_onset[0] = o;
		}
	}
}

/* Diagnoses of one visit: the principal first. */
static void choose_diagnoses(struct gen *g, struct rng *r, const struct person *p,
	struct visit *v, int mode, bool *preventive)
{
	const struct tables *t = &g->t;
	int principal = -1, replaced = -1;

	*preventive = false;
	v->ndx = 0;
	if (mode == VM_BIRTH) {
		visit_add_dx(g, v, p, rng_pct(r, 85) ? t->z3800 : t->z3801, -1);
		if (rng_pct(r, 25))
			visit_add_dx(g, v, p, t->p599, -1);
		if (rng_pct(r, 8))
			visit_add_dx(g, v, p, t->p221, -1);
		return;
	}
	switch (v->cls) {
	case CLS_IMP:
		if (mode != VM_DEATH && p->sex == 'F' && p->age >= 18 && p->age <= 42 &&
		    rng_pct(r, 30))
			principal = t->o80;
		else if (rng_pct(r, 40))
			principal = pick_exacerbation(g, r, p, CLS_IMP, &replaced);
		if (principal < 0)
			principal = pick_fitting(r, t->principal[CLS_IMP], t->nprincipal[CLS_IMP], p);
		break;
	case CLS_EMER:
		if (rng_pct(r, 15))
			principal = pick_exacerbation(g, r, p, CLS_EMER, &replaced);
		if (principal < 0)
			principal = pick_fitting(r, t->principal[CLS_EMER], t->nprincipal[CLS_EMER], p);
		break;
	default:
		if (p->age < 18 && rng_pct(r, 50)) {
			principal = rng_pct(r, 80) ? t->z00129 : t->z00121;
			*preventive = true;
		} else if (p->nprob > 0 && rng_pct(r, 50)) {
			int dx = p->prob[rng_below(r, p->nprob)];

			if (g->t.dx[dx].where & W_AMB)
				principal = dx;
		}
		if (principal < 0 && p->age >= 18 && rng_pct(r, 30)) {
			*preventive = true;
			principal = rng_pct(r, 70) ? t->z0000 : t->z0001;
			if (dx_fits(&dx_defs[t->z1211], p) && rng_pct(r, 20))
				principal = t->z1211;
			else if (dx_fits(&dx_defs[t->z01419], p) && rng_pct(r, 25))
				principal = t->z01419;
		}
		if (principal < 0)
			principal = pick_fitting(r, t->principal[CLS_AMB], t->nprincipal[CLS_AMB], p);
		break;
	}
	if (principal >= 0)
		visit_add_dx(g, v, p, principal, prob_onset(p, principal));
	if (v->ndx == 0) { /* nothing fitted: an upper respiratory infection */
		v->dx[0] = (short)t->j069;
		v->dx_onset[0] = -1;
		v->ndx = 1;
	}

	/* secondary diagnoses */
	switch (v->cls) {
	case CLS_IMP:
		add_problems(g, r, v, p, 90, MAX_PROBS);
		for (unsigned k = 0; k < 3 && rng_pct(r, k == 0 ? 55 : 30); k++) {
			int dx = pick_fitting(r, t->comorbid, t->ncomorbid, p);

			if (dx >= 0)
				visit_add_dx(g, v, p, dx, -1);
		}
		break;
	case CLS_EMER:
		add_problems(g, r, v, p, 35, 2);
		break;
	default:
		add_problems(g, r, v, p, *preventive ? 80 : 45, *preventive ? 5 : 3);
		break;
	}
	/* an exacerbation replaces its chronic code */
	if (replaced >= 0) {
		for (unsigned i = 1; i < v->ndx; i++) {
			if (v->dx[i] == replaced) {
				memmove(v->dx + i, v->dx + i + 1, (v->ndx - i - 1) * sizeof(v->dx[0]));
				memmove(v->dx_onset + i, v->dx_onset + i + 1,
					(v->ndx - i - 1) * sizeof(v->dx_onset[0]));
				v->ndx--;
				break;
			}
		}
	}
	apply_htn_rule(g, v);
}

static int attending_spec(unsigned flags, const struct person *p)
{
	if (flags & F_OB)
		return SP_OB;
	if (flags & F_ORTHO)
		return SP_ORTHO;
	if (flags & F_SURG)
		return SP_SURG;
	if (flags & F_CARDIO)
		return SP_CARD;
	if (p->age < 18)
		return SP_PEDS;
	return SP_HOSP;
}

static int spec_of_attending(const struct visit *v)
{
	return prac_defs[v->attending].spec;
}

static int los_days(struct rng *r, unsigned flags, const struct person *p, bool cesarean)
{
	if (cesarean)
		return rng_range(r, 3, 4);
	if (flags & F_OB)
		return rng_range(r, 1, 2);
	if (flags & F_ICU)
		return rng_range(r, 4, 8);
	if (flags & F_ELECTIVE)
		return rng_range(r, 1, 3);
	if (flags & (F_SURG | F_ORTHO))
		return rng_range(r, 2, 4);
	if (p->age < 18)
		return rng_range(r, 1, 3);
	return rng_range(r, 2, 6);
}

static void add_item(struct visit *v, int hx, unsigned qty, int64_t day)
{
	for (unsigned i = 0; i < v->nit; i++)
		if (v->it[i].hx == hx)
			return;
	if (v->nit >= MAX_ITEMS)
		return;
	v->it[v->nit].hx = (short)hx;
	v->it[v->nit].qty = qty;
	v->it[v->nit].day = day;
	v->nit++;
}

/* Latest time something may be charted for the visit. */
static int64_t visit_limit(const struct gen *g, const struct visit *v)
{
	return v->open ? g->as_of : v->end;
}

static void add_proc(struct gen *g, struct rng *r, struct visit *v, int att_spec,
	short ref, int64_t when)
{
	struct proc_inst *x;
	int spec, minutes;
	int64_t limit = visit_limit(g, v);

	for (unsigned i = 0; i < v->npx; i++)
		if (v->px[i].ref == ref)
			return;
	if (v->npx >= MAX_PX || when >= limit - 30 * MIN_SECS)
		return;
	x = &v->px[v->npx++];
	x->ref = ref;
	if (IS_HX(ref)) {
		spec = att_spec;
		minutes = rng_range(r, 10, 40);
		if (hcpcs_defs[HX_IDX(ref)].price_cents > 50000)
			minutes = rng_range(r, 25, 50); /* colonoscopy, CT */
	} else {
		spec = pcs_defs[ref].spec;
		minutes = pcs_defs[ref].minutes;
		for (unsigned k = 0; k < g->t.pcs_nitems[ref]; k++)
			add_item(v, g->t.pcs_items[ref][k], 1, day_of(when));
	}
	x->performer = spec == att_spec ? v->attending : pick_prac(g, r, spec);
	x->start = when;
	if (ref == g->t.pcs_vent)
		x->end = when + (int64_t)rng_range(r, 26, 90) * HOUR_SECS;
	else
		x->end = when + (int64_t)(minutes ? minutes : 5) * MIN_SECS;
	if (x->end > limit - 10 * MIN_SECS)
		x->end = limit - 10 * MIN_SECS;
	if (x->end <= x->start)
		x->end = x->start + MIN_SECS;
}

static void add_doc(struct gen *g, struct rng *r, struct visit *v, int kind,
	int author, int64_t when, int proc)
{
	struct doc_inst *d;

	if (v->ndoc >= MAX_DOCS || when > g->as_of)
		return;
	d = &v->doc[v->ndoc++];
	d->kind = kind;
	d->author = author;
	d->when = when;
	d->proc = proc;
	d->signed_at = when + (int64_t)rng_range(r, 20, 36 * 60) * MIN_SECS;
	/* some notes wait for their author's signature: the HIM deficiency
	 * queue; a note is also unsigned when the signature is still due */
	d->signed_ = !rng_pct(r, UNSIGNED_PCT) && d->signed_at <= g->as_of;
}

/* Vital signs plausible for the patient's age and the visit's problem. */
static void take_vitals(struct rng *r, const struct person *p, struct visit *v,
	unsigned flags, bool htn, int bmi_class)
{
	struct vitals *s = &v->vs;
	int age_days = (int)(day_of(v->start) - p->birth);

	memset(s, 0, sizeof(*s));
	if (age_days < 365) {
		s->hr = rng_range(r, 110, 160);
		s->rr = rng_range(r, 30, 50);
		s->sys = rng_range(r, 65, 90);
		s->dia = rng_range(r, 40, 60);
		s->wt = 34 + age_days * 2 / 10 + rng_range(r, -5, 5);     /* 0.1 kg */
		s->ht = 500 + age_days * 7 / 10 + rng_range(r, -20, 20);  /* 0.1 cm */
		if (s->wt > 110)
			s->wt = 110 - rng_below(r, 10);
		if (s->ht > 760)
			s->ht = 760 - rng_below(r, 20);
	} else if (p->age < 13) {
		s->hr = rng_range(r, 75, 120);
		s->rr = rng_range(r, 18, 30);
		s->sys = rng_range(r, 90, 112);
		s->dia = rng_range(r, 55, 72);
		s->wt = (p->age * 25 + 80) * rng_range(r, 85, 120) / 100;
		s->ht = (p->age * 60 + 770) * rng_range(r, 95, 105) / 100;
	} else {
		int h = p->sex == 'F' ? rng_range(r, 1520, 1750) : rng_range(r, 1650, 1930);
		int bmi = bmi_class == 2 ? rng_range(r, 400, 480)
			: bmi_class == 1 ? rng_range(r, 300, 399) : rng_range(r, 190, 299);

		if (p->age < 18)
			bmi = rng_range(r, 170, 260);
		s->hr = rng_range(r, 58, 98);
		s->rr = rng_range(r, 12, 20);
		s->sys = htn ? rng_range(r, 132, 176) : rng_range(r, 104, 136);
		s->dia = htn ? rng_range(r, 80, 102) : rng_range(r, 62, 86);
		s->ht = h;
		/* kg = BMI * m^2; values are scaled by 10 */
		s->wt = (int)((int64_t)bmi * h * h / 100000000);
	}
	s->temp = rng_range(r, 362, 374);
	if ((flags & F_INF) && rng_pct(r, 55)) {
		s->temp = rng_range(r, 380, 398);
		s->hr += 15;
	}
	s->spo2 = (flags & F_RESP) ? rng_range(r, 84, 93) : rng_range(r, 95, 100);
	if (s->ht > 0)
		s->bmi = (int)((int64_t)s->wt * 100000 / ((int64_t)s->ht * s->ht));
}

/* Plan visit number k of class cls on `day`: diagnoses, staff, times,
 * procedures, billed items, observations, notes and whether it is billed. */
static void build_visit(struct gen *g, struct rng *r, const struct person *p,
	struct visit *v, int cls, int64_t day, int mode, unsigned k)
{
	const struct tables *t = &g->t;
	unsigned flags, i;
	int spec, los = 0, bmi_class = 0, span, vit, lab;
	bool preventive, htn = false, cesarean;
	int64_t d0;

	memset(v, 0, sizeof(*v));
	v->cls = cls;
	v->visit_no = (unsigned)(100000000 + ((uint64_t)g->num * 16 + k) * 1000003 % 900000000);
	choose_diagnoses(g, r, p, v, mode, &preventive);
	flags = t->dx[v->dx[0]].flags;
	cesarean = v->dx[0] == t->z3801;
	for (i = 0; i < v->ndx; i++) {
		const char *c = dx_defs[v->dx[i]].code;

		htn |= c[0] == 'I' && c[1] == '1' && c[2] <= '3';
		if (strcmp(c, "E66.9") == 0)
			bmi_class = 1;
		if (strcmp(c, "E66.01") == 0)
			bmi_class = 2;
	}

	/* staff, place, times */
	switch (cls) {
	case CLS_IMP:
		v->birth = mode == VM_BIRTH;
		v->elective = (flags & F_ELECTIVE) != 0;
		spec = v->birth ? SP_PEDS : attending_spec(flags, p);
		v->attending = pick_prac(g, r, spec);
		if (v->birth || (flags & F_OB))
			v->loc = LOC_MB;
		else if (flags & F_ICU)
			v->loc = LOC_ICU;
		else
			v->loc = p->age < 18 ? LOC_PEDS : LOC_MEDSURG;
		v->admit_src = v->birth ? AS_BORN : v->elective ? AS_MP
			: rng_pct(r, 5) ? AS_TRANS : AS_EMD;
		los = los_days(r, flags, p, cesarean);
		if (v->elective)
			v->start = day * DAY_SECS + 6 * HOUR_SECS + rng_range(r, 0, 90) * MIN_SECS;
		else
			v->start = day * DAY_SECS + rng_range(r, 0, 1439) * MIN_SECS;
		v->end = (day + los) * DAY_SECS + 10 * HOUR_SECS + rng_range(r, 0, 390) * MIN_SECS;
		if (mode == VM_DEATH) {
			v->end = p->deceased;
			v->start = v->end - (int64_t)los * DAY_SECS - rng_range(r, 0, 600) * MIN_SECS;
			v->dispo = DP_EXP;
		} else if (mode == VM_OPEN) {
			v->start = g->as_of - rng_range(r, 3 * 60, 3 * 24 * 60) * MIN_SECS;
			v->open = true;
		} else if (v->end > g->as_of - HOUR_SECS) {
			v->open = true;
		}
		if (mode != VM_DEATH) {
			/* where patients go after a stay, by age */
			static const int to[] = { DP_HOME, DP_SNF, DP_REHAB, DP_HOSPICE,
				DP_OTHER_HCF, DP_AADVICE };
			static const unsigned char old_w[ARRAY_SIZE(to)] = { 60, 16, 6, 3, 3, 2 };
			static const unsigned char young_w[ARRAY_SIZE(to)] = { 90, 1, 3, 0, 2, 4 };

			v->dispo = to[rng_weighted(r, p->age >= 65 ? old_w : young_w, ARRAY_SIZE(to))];
			if (v->birth || (flags & F_OB))
				v->dispo = DP_HOME;
			if ((flags & F_ORTHO) && rng_pct(r, 30))
				v->dispo = DP_REHAB;
		}
		break;
	case CLS_EMER:
		v->attending = pick_prac(g, r, SP_ED);
		v->loc = LOC_ED;
		v->start = day * DAY_SECS + rng_range(r, 0, 1439) * MIN_SECS;
		v->end = v->start + rng_range(r, 100, 420) * MIN_SECS;
		v->dispo = rng_pct(r, 96) ? DP_HOME : DP_AADVICE;
		break;
	default:
		v->attending = rng_pct(r, 80) ? p->pcp
			: pick_prac(g, r, p->age < 18 ? SP_PEDS : SP_FM);
		v->loc = p->age < 18 ? LOC_PEDC : LOC_FMC;
		/* clinics are closed at weekends: the Monday after, or the
		 * Friday before when Monday would be past as_of */
		if (weekday(day) == 6)
			day += day + 2 < g->as_of_day ? 2 : -1;
		else if (weekday(day) == 0)
			day += day + 1 < g->as_of_day ? 1 : -2;
		v->start = day * DAY_SECS + 8 * HOUR_SECS + rng_range(r, 0, 17) * 30 * MIN_SECS;
		v->end = v->start + rng_range(r, 20, 60) * MIN_SECS;
		break;
	}
	if (v->open)
		v->end = 0; /* still admitted: charted so far, nothing billed */
	d0 = day_of(v->start);

	/* procedures */
	if (cls == CLS_IMP) {
		int64_t surg_at = v->elective
			? v->start + rng_range(r, 90, 150) * MIN_SECS
			: v->start + rng_range(r, 3 * 60, 14 * 60) * MIN_SECS;

		if (v->birth) {
			add_proc(g, r, v, SP_PEDS, t->pcs_vaccine, v->start + rng_range(r, 2, 12) * HOUR_SECS);
			if (p->sex == 'M' && rng_pct(r, 55))
				add_proc(g, r, v, SP_PEDS, t->pcs_circ, v->start + rng_range(r, 20, 30) * HOUR_SECS);
		}
		if (flags & F_OB) {
			add_proc(g, r, v, SP_OB, t->pcs_delivery, v->start + rng_range(r, 2, 14) * HOUR_SECS);
			if (v->npx > 0 && rng_pct(r, 30))
				add_proc(g, r, v, SP_OB, t->pcs_perineum, v->px[v->npx - 1].end + 10 * MIN_SECS);
		}
		for (i = 0; i < v->ndx; i++) {
			const struct dx_meta *m = &t->dx[v->dx[i]];
			char kind = dx_defs[v->dx[i]].kind;

			if (i > 0 && kind != 'T' && !(m->flags & F_SECPROC))
				continue;
			for (unsigned j = 0; j < m->nprocs; j++) {
				if (IS_HX(m->procs[j]))
					continue;
				add_proc(g, r, v, spec_of_attending(v), m->procs[j],
					i == 0 ? surg_at + (int64_t)j * 40 * MIN_SECS
					: v->start + rng_range(r, 4, 30) * HOUR_SECS);
			}
		}
	} else if (cls == CLS_AMB) {
		const struct dx_meta *m = &t->dx[v->dx[0]];

		for (unsigned j = 0; j < m->nprocs; j++)
			if (IS_HX(m->procs[j]))
				add_proc(g, r, v, spec_of_attending(v), m->procs[j],
					v->start + rng_range(r, 5, 15) * MIN_SECS);
	}

	/* billed items */
	if (cls == CLS_IMP) {
		int nd = v->open ? (int)(day_of(g->as_of) - d0) + 1 : los;

		add_item(v, t->hx_saline, (unsigned)(nd > 0 ? nd : 1), d0);
		for (i = 0; i < v->ndx; i++) {
			const struct dx_meta *m = &t->dx[v->dx[i]];

			if (i > 0 && dx_defs[v->dx[i]].kind != 'T')
				continue;
			for (unsigned j = 0; j < m->nitems; j++)
				add_item(v, m->items[j], (unsigned)rng_range(r, 1, nd > 1 ? nd : 1),
					d0 + rng_below(r, (unsigned)(nd > 0 ? nd : 1)));
		}
	} else {
		const struct dx_meta *m = &t->dx[v->dx[0]];

		if (cls == CLS_AMB && v->dx[0] != t->z1211)
			add_item(v, t->hx_clinic, 1, d0);
		for (unsigned j = 0; j < v->npx; j++)
			add_item(v, HX_IDX(v->px[j].ref), 1, d0);
		for (unsigned j = 0; j < m->nitems; j++)
			add_item(v, m->items[j], 1, d0);
		if (cls == CLS_AMB) {
			unsigned mon;
			int y;
			unsigned dd;

			civil(d0, &y, &mon, &dd);
			if (preventive && p->age >= 65) {
				add_item(v, rng_pct(r, 25) ? t->hx_awv_initial : t->hx_awv_subseq, 1, d0);
				if (rng_pct(r, 50))
					add_item(v, t->hx_depr_screen, 1, d0);
			}
			if (preventive && p->sex == 'M' && p->age >= 50 && rng_pct(r, 40))
				add_item(v, t->hx_psa, 1, d0);
			if (preventive && p->age >= 55 && p->age <= 77 &&
			    (has_prob(p, t->f17210) || has_prob(p, t->z87891)) &&
			    rng_pct(r, 30)) {
				add_item(v, t->hx_ldct_counsel, 1, d0);
			}
			if ((mon >= 9 || mon <= 3) && p->age >= 3 && rng_pct(r, 35)) {
				add_item(v, t->hx_flu_vaccine, 1, d0);
				add_item(v, t->hx_flu_admin, 1, d0);
				visit_add_dx(g, v, p, t->z23, -1);
			} else if (p->age >= 65 && rng_pct(r, 8)) {
				add_item(v, t->hx_pneumo_admin, 1, d0);
				visit_add_dx(g, v, p, t->z23, -1);
			}
		}
		if (v->nit == 0)
			add_item(v, t->hx_saline_small, 1, d0);
	}

	/* present on admission */
	if (cls == CLS_IMP) {
		for (i = 0; i < v->ndx; i++) {
			const struct dx_def *d = &dx_defs[v->dx[i]];

			if (d->poa_exempt)
				v->poa[i] = 0;
			else if (i > 0 && d->kind == 'T' && rng_pct(r, 30))
				v->poa[i] = 'N';
			else
				v->poa[i] = 'Y';
		}
	}

	/* observations */
	take_vitals(r, p, v, flags, htn, bmi_class);
	/* weight for dosing and trends; height and BMI at clinic visits */
	if (cls == CLS_AMB) {
		if (p->age < 18 || !rng_pct(r, 60))
			v->vs.bmi = 0;
		if (p->age >= 18 && v->vs.bmi == 0)
			v->vs.ht = 0;
	} else {
		v->vs.bmi = 0;
		if (!v->birth)
			v->vs.ht = 0;
		if (cls == CLS_EMER && p->age >= 18)
			v->vs.wt = 0;
	}
	/* vitals early in the visit, labs drawn after them, both before its
	 * end (a visit lasts 20 minutes at least) */
	span = (int)((visit_limit(g, v) - v->start) / MIN_SECS);
	vit = rng_range(r, 2, span >= 80 ? 40 : span / 2);
	lab = vit + rng_range(r, 1, span - vit >= 120 ? 60 : (span - vit) / 2 + 1);
	v->vitals_at = v->start + (int64_t)vit * MIN_SECS;
	v->labs_at = v->start + (int64_t)lab * MIN_SECS;
	v->key_labs = t->dx[v->dx[0]].labs;
	if (cls == CLS_IMP) {
		v->labs = v->birth ? 0 : LABS_BMP | LABS_CBC;
		for (i = 0; i < v->ndx; i++)
			if (i == 0 || dx_defs[v->dx[i]].kind == 'T')
				v->labs |= t->dx[v->dx[i]].labs;
		v->key_labs &= ~(uint32_t)(LABS_BMP | LABS_CBC);
	} else if (cls == CLS_EMER) {
		v->labs = v->key_labs;
	} else {
		v->labs = rng_pct(r, 40) ? v->key_labs : 0;
	}
	if (v->labs && v->labs_at >= visit_limit(g, v))
		v->labs = 0;

	/* documentation */
	switch (cls) {
	case CLS_IMP:
		add_doc(g, r, v, DK_HP, v->attending, v->start + rng_range(r, 60, 300) * MIN_SECS, -1);
		for (int dd = 1; dd < los && dd <= 2; dd++)
			add_doc(g, r, v, DK_PROGRESS, v->attending,
				(d0 + dd) * DAY_SECS + rng_range(r, 8 * 60, 14 * 60) * MIN_SECS, -1);
		for (i = 0; i < v->npx; i++)
			if (!IS_HX(v->px[i].ref) && pcs_defs[v->px[i].ref].op_note)
				add_doc(g, r, v, DK_OP, v->px[i].performer,
					v->px[i].end + rng_range(r, 10, 50) * MIN_SECS, (int)i);
		if (!v->open)
			add_doc(g, r, v, DK_DS, v->attending, v->end - rng_range(r, 20, 120) * MIN_SECS, -1);
		break;
	case CLS_EMER:
		add_doc(g, r, v, DK_ED, v->attending, v->end - rng_range(r, 5, 30) * MIN_SECS, -1);
		break;
	default:
		add_doc(g, r, v, DK_PROGRESS, v->attending, v->end + rng_range(r, 5, 120) * MIN_SECS, -1);
		break;
	}

	/* billing: finished visits are billed a few days after discharge */
	v->claim_day = day_of(v->end) + rng_range(r, 2, 9);
	v->claim = !v->open && v->claim_day <= g->as_of_day;
}

/* Age in whole years on a day. */
static int age_on(const struct person *p, int64_t day)
{
	return (int)((day - p->birth) * 100 / 36525);
}

/* Plan the visits of a patient (or of a near-duplicate's one registration)
 * into g->visits, in time order; returns how many. */
static unsigned plan_visits(struct gen *g, struct rng *r, const struct person *p,
	bool dup)
{
	static const unsigned char count_w[] = { 38, 27, 15, 9, 6, 5 };
	int64_t lo = g->as_of_day - WINDOW_DAYS, hi = g->as_of_day - 1, days[MAX_VISITS];
	int64_t prev_end = 0;
	unsigned n, i, nv = 0;
	int last_mode = VM_NORMAL;
	struct person at;

	if (lo < p->birth)
		lo = p->birth;
	if (dup) {
		n = 1;
	} else if (p->newborn) {
		n = 1 + rng_below(r, 4);
	} else {
		n = 1 + rng_weighted(r, count_w, ARRAY_SIZE(count_w));
	}
	if (p->seen_until)
		hi = day_of(p->seen_until) - 1;
	if (p->deceased) {
		last_mode = VM_DEATH;
		hi = day_of(p->deceased) - 12;
	} else if (!dup && rng_pct(r, 2)) {
		last_mode = VM_OPEN;
		hi -= 5;
	}
	if (hi < lo)
		hi = lo;
	for (i = 0; i < n; i++)
		days[i] = lo + rng_below(r, (unsigned)(hi - lo + 1));
	for (i = 1; i < n; i++) { /* insertion sort: n is tiny */
		int64_t d = days[i];
		unsigned j = i;

		for (; j > 0 && days[j - 1] > d; j--)
			days[j] = days[j - 1];
		days[j] = d;
	}
	if (p->newborn && !dup)
		days[0] = p->birth;

	for (i = 0; i < n; i++) {
		int mode = VM_NORMAL, cls;
		int64_t day = days[i];

		if (i == 0 && p->newborn && !dup)
			mode = VM_BIRTH;
		if (i == n - 1 && last_mode != VM_NORMAL && !(mode == VM_BIRTH))
			mode = last_mode;
		if (mode == VM_DEATH)
			day = day_of(p->deceased);
		else if (mode == VM_OPEN)
			day = g->as_of_day;
		else if (day * DAY_SECS <= prev_end)
			day = day_of(prev_end) + 1;
		if (mode == VM_NORMAL && day > hi)
			continue; /* no room left; a death or current stay may follow */

		at = *p;
		at.age = age_on(p, day);
		if (mode != VM_NORMAL) {
			cls = CLS_IMP;
		} else if (dup) {
			cls = rng_pct(r, 60) ? CLS_AMB : CLS_EMER;
		} else {
			unsigned x = rng_below(r, 100);
			unsigned imp = at.age >= 65 ? 28 : 15;

			cls = x < imp ? CLS_IMP : x < imp + 27 ? CLS_EMER : CLS_AMB;
		}
		build_visit(g, r, &at, &g->visits[nv], cls, day, mode, i + (dup ? 8 : 0));
		if (mode == VM_DEATH) {
			/* the last admission ends in death: drop what would overlap */
			while (nv > 0 && g->visits[nv - 1].end >= g->visits[nv].start) {
				g->visits[nv - 1] = g->visits[nv];
				nv--;
			}
		}
		prev_end = g->visits[nv].open ? g->as_of : g->visits[nv].end;
		nv++;
	}
	return nv;
}

/* ------------------------------------------------------------ writers */

/* The opening tag of a narrative div, as it appears inside a JSON string. */
#define DIV_OPEN "<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">"

static void write_patient(struct gen *g, const struct person *p, const char *id,
	bool refs)
{
	struct buf *b = &g->out;
	const struct city *c = &cities[p->city];

	res_begin(g, "Patient", id);
	LIT(b, ",\"identifier\":[{\"use\":\"usual\",\"type\":");
	put_cc(b, THO "v2-0203", "MR", "Medical record number", false);
	LIT(b, ",\"system\":\"" URL_MRN "\",\"value\":\"");
	put_u64(b, p->mrn);
	buf_addch(b, '"');
	if (refs) {
		LIT(b, ",\"assigner\":");
		put_ref(b, "Organization/", g->hosp_id);
	}
	buf_addch(b, '}');
	if (p->ssn[0]) {
		LIT(b, ",{\"type\":");
		put_cc(b, THO "v2-0203", "SS", "Social Security number", false);
		LIT(b, ",\"system\":\"" SYS_SSN "\",\"value\":\"");
		buf_addstr(b, p->ssn);
		LIT(b, "\"}");
	}
	LIT(b, "],\"active\":true,\"name\":[{\"use\":\"official\",\"family\":");
	put_jstr(b, p->family);
	LIT(b, ",\"given\":[");
	put_jstr(b, p->given);
	if (p->middle[0]) {
		buf_addch(b, ',');
		put_jstr(b, p->middle);
	}
	LIT(b, "]}]");
	if (p->phone[0]) {
		LIT(b, ",\"telecom\":[{\"system\":\"phone\",\"value\":\"");
		buf_addstr(b, p->phone);
		LIT(b, "\",\"use\":\"");
		buf_addstr(b, p->mobile ? "mobile" : "home");
		LIT(b, "\"}]");
	}
	LIT(b, ",\"gender\":\"");
	buf_addstr(b, p->sex == 'F' ? "female" : "male");
	LIT(b, "\",\"birthDate\":");
	put_date(b, p->birth);
	if (p->deceased) {
		LIT(b, ",\"deceasedDateTime\":");
		put_datetime(b, p->deceased);
	}
	LIT(b, ",\"address\":[{\"use\":\"home\",\"type\":\"physical\",\"line\":[");
	put_jstr(b, p->line1);
	if (p->line2[0]) {
		buf_addch(b, ',');
		put_jstr(b, p->line2);
	}
	LIT(b, "],\"city\":");
	put_jstr(b, c->name);
	LIT(b, ",\"state\":\"");
	buf_addstr(b, c->state);
	LIT(b, "\",\"postalCode\":\"");
	buf_addstr(b, c->zip);
	LIT(b, "\",\"country\":\"US\"}]");
	if (p->marital >= 0) {
		LIT(b, ",\"maritalStatus\":");
		put_cc(b, THO "v3-MaritalStatus", maritals[p->marital].code,
			maritals[p->marital].display, false);
	}
	LIT(b, ",\"communication\":[{\"language\":");
	put_cc(b, "urn:ietf:bcp:47", langs[p->lang].code, langs[p->lang].display, false);
	LIT(b, ",\"preferred\":true}]");
	if (refs) {
		LIT(b, ",\"generalPractitioner\":[");
		put_ref(b, "Practitioner/", g->prac_id[p->pcp]);
		LIT(b, "],\"managingOrganization\":");
		put_ref(b, "Organization/", g->hosp_id);
	}
	res_end(g);
}

static void write_coverage(struct gen *g, const struct person *p, const char *pid,
	const char *id, int payer, const char *member, unsigned order)
{
	struct buf *b = &g->out;
	const struct payer_def *pd = &payer_defs[payer];

	res_begin(g, "Coverage", id);
	LIT(b, ",\"status\":\"active\",\"type\":");
	if (pd->kind == PK_COMMERCIAL)
		put_cc(b, THO "v3-ActCode", "HIP", "health insurance plan policy", false);
	else
		put_cc(b, THO "v3-ActCode", "MCPOL", "managed care policy", false);
	LIT(b, ",\"subscriberId\":\"");
	buf_addstr(b, member);
	LIT(b, "\",\"beneficiary\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"relationship\":");
	put_cc(b, THO "subscriber-relationship", "self", "Self", false);
	LIT(b, ",\"period\":{\"start\":");
	put_date(b, p->cov_start);
	LIT(b, "},\"payor\":[");
	put_ref(b, "Organization/", g->payer_id[payer]);
	LIT(b, "],\"class\":[{\"type\":");
	put_cc(b, THO "coverage-class", "group", "Group", false);
	LIT(b, ",\"value\":\"");
	buf_addstr(b, order == 1 ? p->group_no : "MCD-OH-01");
	LIT(b, "\",\"name\":");
	put_jstr(b, pd->plan);
	LIT(b, "}],\"order\":");
	put_u64(b, order);
	res_end(g);
}

static const char *const cls_code[CLS__N] = { "IMP", "AMB", "EMER" };
static const char *const cls_display[CLS__N] = {
	"inpatient encounter", "ambulatory", "emergency"
};

static void write_encounter(struct gen *g, const struct visit *v, const char *pid)
{
	struct buf *b = &g->out;
	unsigned i;

	res_begin(g, "Encounter", v->id);
	LIT(b, ",\"identifier\":[{\"use\":\"official\",\"type\":");
	put_cc(b, THO "v2-0203", "VN", "Visit number", false);
	LIT(b, ",\"system\":\"" URL_VISIT "\",\"value\":\"");
	put_u64(b, v->visit_no);
	LIT(b, "\"}],\"status\":\"");
	buf_addstr(b, v->open ? "in-progress" : "finished");
	LIT(b, "\",\"class\":");
	put_coding(b, THO "v3-ActCode", cls_code[v->cls], cls_display[v->cls]);
	if (v->cls == CLS_EMER || (v->cls == CLS_IMP && !v->birth)) {
		LIT(b, ",\"priority\":");
		if (v->elective)
			put_cc(b, THO "v3-ActPriority", "EL", "elective", false);
		else if (v->cls == CLS_EMER || v->admit_src == AS_EMD)
			put_cc(b, THO "v3-ActPriority", "EM", "emergency", false);
		else
			put_cc(b, THO "v3-ActPriority", "UR", "urgent", false);
	}
	LIT(b, ",\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"participant\":[{\"type\":[");
	put_cc(b, THO "v3-ParticipationType", "ATND", "attender", false);
	LIT(b, "],\"individual\":");
	put_ref(b, "Practitioner/", g->prac_id[v->attending]);
	LIT(b, "}],\"period\":");
	put_period(b, v->start, v->end, !v->open);
	if (v->cls == CLS_IMP && !v->open) {
		int64_t los = day_of(v->end) - day_of(v->start);

		LIT(b, ",\"length\":{\"value\":");
		put_u64(b, (uint64_t)(los > 0 ? los : 1));
		LIT(b, ",\"unit\":\"days\",\"system\":\"" SYS_UCUM "\",\"code\":\"d\"}");
	}
	LIT(b, ",\"diagnosis\":[");
	for (i = 0; i < v->ndx; i++) {
		if (i)
			buf_addch(b, ',');
		LIT(b, "{\"condition\":");
		put_ref(b, "Condition/", v->dx_id[i]);
		LIT(b, ",\"use\":");
		put_cc(b, THO "diagnosis-role", "billing", "Billing", false);
		LIT(b, ",\"rank\":");
		put_u64(b, i + 1);
		buf_addch(b, '}');
	}
	buf_addch(b, ']');
	if (v->cls == CLS_IMP || v->cls == CLS_EMER) {
		LIT(b, ",\"hospitalization\":{");
		if (v->cls == CLS_IMP) {
			LIT(b, "\"admitSource\":");
			put_cc(b, THO "admit-source", admit_srcs[v->admit_src].code,
				admit_srcs[v->admit_src].display, false);
		}
		if (!v->open) {
			if (v->cls == CLS_IMP)
				buf_addch(b, ',');
			LIT(b, "\"dischargeDisposition\":");
			put_cc(b, THO "discharge-disposition", dispos[v->dispo].code,
				dispos[v->dispo].display, false);
		}
		buf_addch(b, '}');
	}
	LIT(b, ",\"location\":[{\"location\":");
	put_ref(b, "Location/", g->loc_id[v->loc]);
	LIT(b, ",\"status\":\"");
	buf_addstr(b, v->open ? "active" : "completed");
	LIT(b, "\",\"period\":");
	put_period(b, v->start, v->end, !v->open);
	LIT(b, "}],\"serviceProvider\":");
	put_ref(b, "Organization/", g->hosp_id);
	res_end(g);
}

static void write_condition(struct gen *g, const struct visit *v, unsigned i,
	const char *pid)
{
	struct buf *b = &g->out;
	const struct dx_def *d = &dx_defs[v->dx[i]];
	bool ongoing = d->kind == 'C' || d->kind == 'S' || v->open;

	res_begin(g, "Condition", v->dx_id[i]);
	LIT(b, ",\"clinicalStatus\":");
	if (ongoing)
		put_cc(b, THO "condition-clinical", "active", "Active", false);
	else
		put_cc(b, THO "condition-clinical", "resolved", "Resolved", false);
	LIT(b, ",\"verificationStatus\":");
	if (v->open && i == 0)
		put_cc(b, THO "condition-ver-status", "provisional", "Provisional", false);
	else
		put_cc(b, THO "condition-ver-status", "confirmed", "Confirmed", false);
	LIT(b, ",\"category\":[");
	put_cc(b, THO "condition-category", "encounter-diagnosis", "Encounter Diagnosis", false);
	LIT(b, "],\"code\":");
	put_cc(b, SYS_ICD10CM, d->code, d->display, true);
	LIT(b, ",\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"encounter\":");
	put_ref(b, "Encounter/", v->id);
	if (v->dx_onset[i] >= 0) {
		LIT(b, ",\"onsetDateTime\":");
		put_month(b, v->dx_onset[i]);
	} else if (!ongoing || d->kind == 'A' || d->kind == 'T' || d->kind == 'X') {
		LIT(b, ",\"onsetDateTime\":");
		put_datetime(b, v->start);
	}
	if (!ongoing) {
		LIT(b, ",\"abatementDateTime\":");
		put_datetime(b, v->end);
	}
	LIT(b, ",\"recordedDate\":");
	put_datetime(b, v->start + 30 * MIN_SECS);
	LIT(b, ",\"recorder\":");
	put_ref(b, "Practitioner/", g->prac_id[v->attending]);
	res_end(g);
}

static void put_proc_code(struct buf *b, short ref)
{
	if (IS_HX(ref)) {
		const struct hcpcs_def *h = &hcpcs_defs[HX_IDX(ref)];

		put_cc(b, SYS_HCPCS, h->code, h->display, true);
	} else {
		put_cc(b, SYS_ICD10PCS, pcs_defs[ref].code, pcs_defs[ref].display, true);
	}
}

static const char *proc_display(short ref)
{
	return IS_HX(ref) ? hcpcs_defs[HX_IDX(ref)].display : pcs_defs[ref].display;
}

static void write_procedure(struct gen *g, const struct visit *v, unsigned i,
	const char *pid)
{
	struct buf *b = &g->out;
	const struct proc_inst *x = &v->px[i];

	res_begin(g, "Procedure", x->id);
	LIT(b, ",\"status\":\"completed\",\"code\":");
	put_proc_code(b, x->ref);
	LIT(b, ",\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"encounter\":");
	put_ref(b, "Encounter/", v->id);
	LIT(b, ",\"performedPeriod\":");
	put_period(b, x->start, x->end, true);
	LIT(b, ",\"performer\":[{\"actor\":");
	put_ref(b, "Practitioner/", g->prac_id[x->performer]);
	LIT(b, "}],\"location\":");
	put_ref(b, "Location/", g->loc_id[v->loc]);
	LIT(b, ",\"reasonReference\":[");
	put_ref(b, "Condition/", v->dx_id[0]);
	buf_addch(b, ']');
	res_end(g);
}

/* Start an Observation up to and including its code. */
static void obs_begin(struct gen *g, const char *id, bool vital, const char *loinc,
	const char *display)
{
	struct buf *b = &g->out;

	res_begin(g, "Observation", id);
	LIT(b, ",\"status\":\"final\",\"category\":[");
	if (vital)
		put_cc(b, THO "observation-category", "vital-signs", "Vital Signs", false);
	else
		put_cc(b, THO "observation-category", "laboratory", "Laboratory", false);
	LIT(b, "],\"code\":");
	put_cc(b, SYS_LOINC, loinc, display, true);
}

static void obs_context(struct gen *g, const struct visit *v, const char *pid,
	int64_t when)
{
	struct buf *b = &g->out;

	LIT(b, ",\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"encounter\":");
	put_ref(b, "Encounter/", v->id);
	LIT(b, ",\"effectiveDateTime\":");
	put_datetime(b, when);
}

static void write_vital(struct gen *g, const struct visit *v, const char *pid,
	const char *loinc, const char *display, int value, int dec,
	const char *unit, const char *ucum)
{
	struct buf *b = &g->out;
	char id[ID_CAP];

	next_id(g, id, "obs");
	obs_begin(g, id, true, loinc, display);
	obs_context(g, v, pid, v->vitals_at);
	LIT(b, ",\"valueQuantity\":");
	put_qty(b, value, dec, unit, ucum);
	res_end(g);
}

static void write_vitals(struct gen *g, const struct visit *v, const char *pid)
{
	struct buf *b = &g->out;
	const struct vitals *s = &v->vs;
	char id[ID_CAP];

	write_vital(g, v, pid, "8867-4", "Heart rate", s->hr, 0, "beats/minute", "/min");
	write_vital(g, v, pid, "9279-1", "Respiratory rate", s->rr, 0, "breaths/minute", "/min");
	write_vital(g, v, pid, "8310-5", "Body temperature", s->temp, 1, "C", "Cel");

	next_id(g, id, "obs");
	obs_begin(g, id, true, "85354-9", "Blood pressure panel with all children optional");
	obs_context(g, v, pid, v->vitals_at);
	LIT(b, ",\"component\":[{\"code\":");
	put_cc(b, SYS_LOINC, "8480-6", "Systolic blood pressure", true);
	LIT(b, ",\"valueQuantity\":");
	put_qty(b, s->sys, 0, "mmHg", "mm[Hg]");
	LIT(b, "},{\"code\":");
	put_cc(b, SYS_LOINC, "8462-4", "Diastolic blood pressure", true);
	LIT(b, ",\"valueQuantity\":");
	put_qty(b, s->dia, 0, "mmHg", "mm[Hg]");
	LIT(b, "}]");
	res_end(g);

	/* pulse oximetry carries the vital-signs profile's 2708-6 too */
	next_id(g, id, "obs");
	res_begin(g, "Observation", id);
	LIT(b, ",\"status\":\"final\",\"category\":[");
	put_cc(b, THO "observation-category", "vital-signs", "Vital Signs", false);
	LIT(b, "],\"code\":{\"coding\":[");
	put_coding(b, SYS_LOINC, "2708-6", "Oxygen saturation in Arterial blood");
	buf_addch(b, ',');
	put_coding(b, SYS_LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry");
	LIT(b, "],\"text\":\"SpO2\"}");
	obs_context(g, v, pid, v->vitals_at);
	LIT(b, ",\"valueQuantity\":");
	put_qty(b, s->spo2, 0, "%", "%");
	res_end(g);

	if (s->wt)
		write_vital(g, v, pid, "29463-7", "Body weight", s->wt, 1, "kg", "kg");
	if (s->ht)
		write_vital(g, v, pid, "8302-2", "Body height", s->ht, 1, "cm", "cm");
	if (s->bmi)
		write_vital(g, v, pid, "39156-5", "Body mass index (BMI) [Ratio]", s->bmi, 1,
			"kg/m2", "kg/m2");
}

static void write_labs(struct gen *g, struct rng *r, const struct visit *v,
	const char *pid)
{
	struct buf *b = &g->out;
	char id[ID_CAP];

	for (int l = 0; l < LB__N; l++) {
		const struct lab_def *d = &lab_defs[l];
		bool key = (v->key_labs >> l) & 1;
		int value;
		const char *interp, *interp_display;

		if (!((v->labs >> l) & 1))
			continue;
		if (rng_pct(r, key ? 65 : 15))
			value = rng_range(r, d->alo, d->ahi);
		else
			value = rng_range(r, d->lo, d->hi);
		if (value < d->lo) {
			interp = "L";
			interp_display = "Low";
		} else if (value > d->hi) {
			interp = "H";
			interp_display = "High";
		} else {
			interp = "N";
			interp_display = "Normal";
		}
		next_id(g, id, "obs");
		obs_begin(g, id, false, d->loinc, d->display);
		obs_context(g, v, pid, v->labs_at);
		LIT(b, ",\"issued\":");
		put_datetime(b, v->labs_at + 55 * MIN_SECS);
		LIT(b, ",\"valueQuantity\":");
		put_qty(b, value, d->dec, d->unit, d->ucum);
		LIT(b, ",\"interpretation\":[");
		put_cc(b, THO "v3-ObservationInterpretation", interp, interp_display, false);
		LIT(b, "],\"referenceRange\":[{\"low\":");
		put_qty(b, d->lo, d->dec, d->unit, d->ucum);
		LIT(b, ",\"high\":");
		put_qty(b, d->hi, d->dec, d->unit, d->ucum);
		LIT(b, "}]");
		res_end(g);
	}
}

/* --------------------------------------------------------------- notes */

static void note_line(struct buf *n, const char *label, const char *value)
{
	buf_addstr(n, label);
	buf_addstr(n, value);
	buf_addch(n, '\n');
}

static void note_datetime(struct buf *n, int64_t t)
{
	put_datetime_raw(n, t);
}

static void note_vitals(struct buf *n, const struct vitals *s)
{
	LIT(n, "VITAL SIGNS: T ");
	put_fixed(n, s->temp, 1);
	LIT(n, " C, HR ");
	put_u64(n, (uint64_t)s->hr);
	LIT(n, ", BP ");
	put_u64(n, (uint64_t)s->sys);
	buf_addch(n, '/');
	put_u64(n, (uint64_t)s->dia);
	LIT(n, ", RR ");
	put_u64(n, (uint64_t)s->rr);
	LIT(n, ", SpO2 ");
	put_u64(n, (uint64_t)s->spo2);
	LIT(n, "%");
	if (s->wt) {
		LIT(n, ", Wt ");
		put_fixed(n, s->wt, 1);
		LIT(n, " kg");
	}
	LIT(n, ".\n");
}

static void note_dx_list(struct buf *n, const struct visit *v, unsigned from)
{
	for (unsigned i = from; i < v->ndx; i++) {
		const struct dx_def *d = &dx_defs[v->dx[i]];

		put_u64(n, i + 1 - from);
		LIT(n, ". ");
		buf_addstr(n, d->display);
		LIT(n, " (");
		buf_addstr(n, d->code);
		LIT(n, ")\n");
	}
}

static void note_prac(struct gen *g, struct buf *n, int prac)
{
	buf_addstr(n, g->prac_given[prac]);
	buf_addch(n, ' ');
	buf_addstr(n, g->prac_family[prac]);
	LIT(n, ", ");
	buf_addstr(n, prac_defs[prac].qual);
}

static const char *person_word(const struct person *p, int age)
{
	if (age < 1)
		return p->sex == 'F' ? "female infant" : "male infant";
	if (age < 18)
		return p->sex == 'F' ? "girl" : "boy";
	return p->sex == 'F' ? "woman" : "man";
}

static const char *const course_text[] = {
	"Improved steadily on the treatment above; tolerating a regular diet at discharge.",
	"Symptoms resolved with treatment and the patient was clinically stable for discharge.",
	"Hospital course was uncomplicated. Laboratory abnormalities were followed and trended toward normal.",
	"The patient responded to treatment; home medications were resumed and reconciled at discharge.",
};

static const char *const plan_inpatient[] = {
	"Start treatment as ordered; reassess in the morning.",
	"Supportive care, trend labs, advance diet as tolerated.",
	"Continue current management and monitor closely.",
};

static const char *const plan_ed[] = {
	"Treated in the department with improvement of symptoms.",
	"Return precautions reviewed; follow up with primary care in 2-3 days.",
};

static const char *const plan_clinic[] = {
	"Medication reconciliation completed; follow up in 3 months.",
	"Patient education provided; return precautions reviewed.",
	"Continue current management; labs as ordered.",
};

static const char *plan_for(struct rng *r, const struct visit *v)
{
	if (v->cls == CLS_IMP)
		return PICK(r, plan_inpatient);
	if (v->cls == CLS_EMER)
		return PICK(r, plan_ed);
	return PICK(r, plan_clinic);
}

/* The text of a clinical note into g->note. */
static void build_note(struct gen *g, struct rng *r, const struct person *p,
	const struct visit *v, const struct doc_inst *d)
{
	struct buf *n = &g->note;
	const struct dx_def *pdx = &dx_defs[v->dx[0]];
	int age = age_on(p, day_of(v->start));

	buf_reset(n);
	buf_addstr(n, doc_defs[d->kind].title);
	LIT(n, "\n" HOSPITAL_NAME "\n\nPatient: ");
	buf_addstr(n, p->family);
	LIT(n, ", ");
	buf_addstr(n, p->given);
	LIT(n, "\nMRN: ");
	put_u64(n, p->mrn);
	LIT(n, "\nDOB: ");
	put_date_raw(n, p->birth);
	LIT(n, "\nVisit number: ");
	put_u64(n, v->visit_no);
	LIT(n, "\nDate of service: ");
	note_datetime(n, d->when);
	LIT(n, "\nAuthor: ");
	note_prac(g, n, d->author);
	LIT(n, "\n\n");

	switch (d->kind) {
	case DK_HP:
	case DK_ED:
		note_line(n, "CHIEF COMPLAINT: ", pdx->display);
		LIT(n, "\nHISTORY OF PRESENT ILLNESS: ");
		if (age >= 1) {
			put_u64(n, (uint64_t)age);
			LIT(n, "-year-old ");
		} else if (day_of(v->start) - p->birth < 28) {
			LIT(n, "Newborn ");
		} else {
			put_u64(n, (uint64_t)((day_of(v->start) - p->birth) * 100 / 3044));
			LIT(n, "-month-old ");
		}
		buf_addstr(n, person_word(p, age));
		buf_addstr(n, d->kind == DK_ED ? " presenting to the emergency department."
			: v->birth ? " born at this facility."
			: v->admit_src == AS_MP ? " admitted electively from the surgeon's office."
			: v->admit_src == AS_TRANS ? " transferred from an outside hospital."
			: " admitted through the emergency department.");
		LIT(n, " Working diagnosis: ");
		buf_addstr(n, pdx->display);
		LIT(n, ".\n\nPAST MEDICAL HISTORY:\n");
		if (p->nprob == 0)
			LIT(n, "Noncontributory.\n");
		for (unsigned i = 0; i < p->nprob; i++) {
			LIT(n, "- ");
			buf_addstr(n, dx_defs[p->prob[i]].display);
			buf_addch(n, '\n');
		}
		buf_addch(n, '\n');
		note_vitals(n, &v->vs);
		LIT(n, "\nASSESSMENT AND PLAN:\n");
		note_dx_list(n, v, 0);
		buf_addstr(n, plan_for(r, v));
		buf_addch(n, '\n');
		if (d->kind == DK_ED) {
			LIT(n, "\nDISPOSITION: ");
			buf_addstr(n, dispos[v->dispo].text);
			LIT(n, ".\n");
		}
		break;
	case DK_PROGRESS:
		LIT(n, "SUBJECTIVE: ");
		buf_addstr(n, v->cls == CLS_AMB ? "Seen in clinic for " : "Hospital follow-up for ");
		buf_addstr(n, pdx->display);
		LIT(n, ". No new complaints.\n");
		note_vitals(n, &v->vs);
		LIT(n, "ASSESSMENT:\n");
		note_dx_list(n, v, 0);
		LIT(n, "PLAN: ");
		buf_addstr(n, plan_for(r, v));
		buf_addch(n, '\n');
		break;
	case DK_OP: {
		const struct proc_inst *x = &v->px[d->proc];

		note_line(n, "PREOPERATIVE DIAGNOSIS: ", pdx->display);
		LIT(n, "POSTOPERATIVE DIAGNOSIS: Same.\n");
		note_line(n, "PROCEDURE: ", proc_display(x->ref));
		LIT(n, "SURGEON: ");
		note_prac(g, n, x->performer);
		LIT(n, "\nANESTHESIA: ");
		buf_addstr(n, rng_pct(r, 70) ? "General endotracheal" : "Monitored anesthesia care");
		LIT(n, "\nESTIMATED BLOOD LOSS: ");
		put_u64(n, (uint64_t)rng_range(r, 1, 30) * 10);
		LIT(n, " mL\nCOMPLICATIONS: None.\nProcedure start ");
		note_datetime(n, x->start);
		LIT(n, ", end ");
		note_datetime(n, x->end);
		LIT(n, ". The patient tolerated the procedure well and was taken to recovery in stable condition.\n");
		break;
	}
	case DK_DS:
		LIT(n, "ADMISSION DATE: ");
		put_date_raw(n, day_of(v->start));
		LIT(n, "\nDISCHARGE DATE: ");
		put_date_raw(n, day_of(v->end));
		LIT(n, "\n\nPRINCIPAL DIAGNOSIS: ");
		buf_addstr(n, pdx->display);
		LIT(n, " (");
		buf_addstr(n, pdx->code);
		LIT(n, ")\n");
		if (v->ndx > 1) {
			LIT(n, "SECONDARY DIAGNOSES:\n");
			note_dx_list(n, v, 1);
		}
		if (v->npx) {
			LIT(n, "PROCEDURES:\n");
			for (unsigned i = 0; i < v->npx; i++) {
				LIT(n, "- ");
				buf_addstr(n, proc_display(v->px[i].ref));
				buf_addch(n, '\n');
			}
		}
		LIT(n, "\nHOSPITAL COURSE: ");
		buf_addstr(n, v->dispo == DP_EXP
			? "Despite maximal therapy the patient's condition declined. Comfort "
			  "measures were instituted in keeping with the family's wishes."
			: PICK(r, course_text));
		LIT(n, "\n\nDISCHARGE DISPOSITION: ");
		buf_addstr(n, dispos[v->dispo].text);
		LIT(n, ".\n");
		if (v->dispo == DP_EXP) {
			LIT(n, "TIME OF DEATH: ");
			note_datetime(n, v->end);
			buf_addch(n, '\n');
		} else {
			LIT(n, "FOLLOW-UP: Primary care in 1-2 weeks.\n");
		}
		break;
	default:
		break;
	}
	if (d->signed_) {
		LIT(n, "\nElectronically signed by ");
		note_prac(g, n, d->author);
		LIT(n, " on ");
		note_datetime(n, d->signed_at);
		buf_addch(n, '\n');
	}
}

static void write_composition(struct gen *g, const struct visit *v,
	const struct doc_inst *d, const char *pid)
{
	struct buf *b = &g->out;
	unsigned i;

	res_begin(g, "Composition", v->comp_id);
	LIT(b, ",\"identifier\":{\"system\":\"" URL_DOC "\",\"value\":\"");
	buf_addstr(b, v->comp_id);
	LIT(b, "\"},\"status\":\"");
	buf_addstr(b, d->signed_ ? "final" : "preliminary");
	LIT(b, "\",\"type\":");
	put_cc(b, SYS_LOINC, doc_defs[DK_DS].loinc, doc_defs[DK_DS].display, false);
	LIT(b, ",\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"encounter\":");
	put_ref(b, "Encounter/", v->id);
	LIT(b, ",\"date\":");
	put_datetime(b, d->when);
	LIT(b, ",\"author\":[");
	put_ref(b, "Practitioner/", g->prac_id[d->author]);
	LIT(b, "],\"title\":\"Discharge Summary\",\"confidentiality\":\"N\"");
	if (d->signed_) {
		LIT(b, ",\"attester\":[{\"mode\":\"legal\",\"time\":");
		put_datetime(b, d->signed_at);
		LIT(b, ",\"party\":");
		put_ref(b, "Practitioner/", g->prac_id[d->author]);
		LIT(b, "}]");
	}
	LIT(b, ",\"custodian\":");
	put_ref(b, "Organization/", g->hosp_id);

	LIT(b, ",\"section\":[{\"title\":\"Discharge Diagnoses\",\"code\":");
	put_cc(b, SYS_LOINC, "11535-2", "Hospital discharge Dx Narrative", false);
	LIT(b, ",\"text\":{\"status\":\"generated\",\"div\":\"" DIV_OPEN "<ol>");
	for (i = 0; i < v->ndx; i++) {
		LIT(b, "<li>");
		put_xhtml_text(b, dx_defs[v->dx[i]].display);
		LIT(b, " (");
		buf_addstr(b, dx_defs[v->dx[i]].code);
		LIT(b, ")</li>");
	}
	LIT(b, "</ol></div>\"},\"entry\":[");
	for (i = 0; i < v->ndx; i++) {
		if (i)
			buf_addch(b, ',');
		put_ref(b, "Condition/", v->dx_id[i]);
	}
	LIT(b, "]}");
	if (v->npx) {
		LIT(b, ",{\"title\":\"Procedures\",\"code\":");
		put_cc(b, SYS_LOINC, "47519-4", "History of Procedures Document", false);
		LIT(b, ",\"text\":{\"status\":\"generated\",\"div\":\"" DIV_OPEN "<ul>");
		for (i = 0; i < v->npx; i++) {
			LIT(b, "<li>");
			put_xhtml_text(b, proc_display(v->px[i].ref));
			LIT(b, "</li>");
		}
		LIT(b, "</ul></div>\"},\"entry\":[");
		for (i = 0; i < v->npx; i++) {
			if (i)
				buf_addch(b, ',');
			put_ref(b, "Procedure/", v->px[i].id);
		}
		LIT(b, "]}");
	}
	LIT(b, ",{\"title\":\"Hospital Course\",\"code\":");
	put_cc(b, SYS_LOINC, "8648-8", "Hospital course Narrative", false);
	LIT(b, ",\"text\":{\"status\":\"generated\",\"div\":\"" DIV_OPEN "<p>Admitted ");
	put_date_raw(b, day_of(v->start));
	LIT(b, ", discharged ");
	put_date_raw(b, day_of(v->end));
	LIT(b, ". ");
	put_xhtml_text(b, v->dispo == DP_EXP ? "The patient expired during the admission."
		: course_text[v->visit_no % ARRAY_SIZE(course_text)]);
	LIT(b, "</p></div>\"}},{\"title\":\"Discharge Instructions\",\"code\":");
	put_cc(b, SYS_LOINC, "8653-8", "Hospital Discharge instructions", false);
	LIT(b, ",\"text\":{\"status\":\"generated\",\"div\":\"" DIV_OPEN "<p>");
	put_xhtml_text(b, dispos[v->dispo].text);
	LIT(b, ".");
	if (v->dispo != DP_EXP)
		LIT(b, " Follow up with primary care in 1-2 weeks; return for worsening symptoms.");
	LIT(b, "</p></div>\"}}]");
	res_end(g);
}

static void write_docref(struct gen *g, struct rng *r, const struct person *p,
	const struct visit *v, const struct doc_inst *d, const char *pid)
{
	struct buf *b = &g->out;
	const struct doc_def *dd = &doc_defs[d->kind];

	build_note(g, r, p, v, d);
	res_begin(g, "DocumentReference", d->id);
	LIT(b, ",\"identifier\":[{\"system\":\"" URL_DOC "\",\"value\":\"");
	buf_addstr(b, d->id);
	LIT(b, "\"}],\"status\":\"current\",\"docStatus\":\"");
	buf_addstr(b, d->signed_ ? "final" : "preliminary");
	LIT(b, "\",\"type\":");
	put_cc(b, SYS_LOINC, dd->loinc, dd->display, false);
	LIT(b, ",\"category\":[");
	put_cc(b, "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
		"clinical-note", "Clinical Note", false);
	LIT(b, "],\"subject\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"date\":");
	put_datetime(b, d->when);
	LIT(b, ",\"author\":[");
	put_ref(b, "Practitioner/", g->prac_id[d->author]);
	buf_addch(b, ']');
	if (d->signed_) {
		LIT(b, ",\"authenticator\":");
		put_ref(b, "Practitioner/", g->prac_id[d->author]);
	}
	LIT(b, ",\"custodian\":");
	put_ref(b, "Organization/", g->hosp_id);
	LIT(b, ",\"description\":");
	put_jstr(b, dd->title);
	LIT(b, ",\"content\":[{\"attachment\":{\"contentType\":\"text/plain\",\"language\":\"en-US\",\"data\":\"");
	put_base64(b, (const unsigned char *)g->note.data, g->note.len);
	LIT(b, "\",\"size\":");
	put_u64(b, g->note.len);
	LIT(b, ",\"title\":");
	put_jstr(b, dd->title);
	LIT(b, ",\"creation\":");
	put_datetime(b, d->when);
	LIT(b, "}}],\"context\":{\"encounter\":[");
	put_ref(b, "Encounter/", v->id);
	LIT(b, "],\"period\":");
	put_period(b, v->start, v->end, !v->open);
	if (d->kind == DK_DS) {
		LIT(b, ",\"related\":[");
		put_ref(b, "Composition/", v->comp_id);
		buf_addch(b, ']');
	}
	LIT(b, "}");
	res_end(g);
}

static void write_claim(struct gen *g, const struct person *p, const struct visit *v,
	const char *pid, const char *cov1, const char *cov2)
{
	struct buf *b = &g->out;
	bool inpatient = v->cls == CLS_IMP;
	int64_t total = 0;
	unsigned i, seq, z23_seq = 0;

	res_begin(g, "Claim", v->claim_id);
	LIT(b, ",\"identifier\":[{\"system\":\"" URL_CLAIM "\",\"value\":\"");
	buf_addstr(b, inpatient ? "I" : "P");
	put_u64(b, v->visit_no);
	LIT(b, "\"}],\"status\":\"active\",\"type\":");
	if (inpatient)
		put_cc(b, THO "claim-type", "institutional", "Institutional", false);
	else
		put_cc(b, THO "claim-type", "professional", "Professional", false);
	LIT(b, ",\"use\":\"claim\",\"patient\":");
	put_ref(b, "Patient/", pid);
	LIT(b, ",\"billablePeriod\":{\"start\":");
	put_date(b, day_of(v->start));
	LIT(b, ",\"end\":");
	put_date(b, day_of(v->end));
	LIT(b, "},\"created\":");
	put_datetime(b, v->claim_day * DAY_SECS + 9 * HOUR_SECS + (int64_t)(v->visit_no % 480) * MIN_SECS);
	LIT(b, ",\"insurer\":");
	put_ref(b, "Organization/", g->payer_id[p->payer]);
	LIT(b, ",\"provider\":");
	put_ref(b, "Organization/", g->hosp_id);
	LIT(b, ",\"priority\":");
	put_cc(b, THO "processpriority", "normal", "Normal", false);
	LIT(b, ",\"careTeam\":[{\"sequence\":1,\"provider\":");
	put_ref(b, "Practitioner/", g->prac_id[v->attending]);
	LIT(b, ",\"responsible\":true,\"role\":");
	put_cc(b, THO "claimcareteamrole", "primary", "Primary provider", false);
	LIT(b, "}],\"diagnosis\":[");
	for (i = 0; i < v->ndx; i++) {
		const struct dx_def *d = &dx_defs[v->dx[i]];

		if (i)
			buf_addch(b, ',');
		LIT(b, "{\"sequence\":");
		put_u64(b, i + 1);
		LIT(b, ",\"diagnosisCodeableConcept\":");
		put_cc(b, SYS_ICD10CM, d->code, d->display, false);
		if (i == 0) {
			LIT(b, ",\"type\":[");
			put_cc(b, THO "ex-diagnosistype", "principal", "Principal Diagnosis", false);
			buf_addch(b, ']');
		} else if (inpatient) {
			LIT(b, ",\"type\":[");
			put_cc(b, THO "ex-diagnosistype", "discharge", "Discharge Diagnosis", false);
			buf_addch(b, ']');
		}
		if (v->dx[i] == g->t.z23)
			z23_seq = i + 1;
		if (inpatient && v->poa[i]) {
			LIT(b, ",\"onAdmission\":");
			if (v->poa[i] == 'Y')
				put_cc(b, THO "ex-diagnosis-on-admission", "y", "Yes", false);
			else
				put_cc(b, THO "ex-diagnosis-on-admission", "n", "No", false);
		}
		buf_addch(b, '}');
	}
	buf_addch(b, ']');
	if (v->npx) {
		LIT(b, ",\"procedure\":[");
		for (i = 0; i < v->npx; i++) {
			if (i)
				buf_addch(b, ',');
			LIT(b, "{\"sequence\":");
			put_u64(b, i + 1);
			LIT(b, ",\"type\":[");
			if (i == 0)
				put_cc(b, THO "ex-procedure-type", "primary", "Primary procedure", false);
			else
				put_cc(b, THO "ex-procedure-type", "secondary", "Secondary procedure", false);
			LIT(b, "],\"date\":");
			put_datetime(b, v->px[i].start);
			LIT(b, ",\"procedureCodeableConcept\":");
			put_proc_code(b, v->px[i].ref);
			buf_addch(b, '}');
		}
		buf_addch(b, ']');
	}
	LIT(b, ",\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":");
	put_ref(b, "Coverage/", cov1);
	buf_addch(b, '}');
	if (cov2) {
		LIT(b, ",{\"sequence\":2,\"focal\":false,\"coverage\":");
		put_ref(b, "Coverage/", cov2);
		buf_addch(b, '}');
	}
	LIT(b, "],\"item\":[");
	for (i = 0, seq = 0; i < v->nit; i++) {
		const struct item_inst *it = &v->it[i];
		const struct hcpcs_def *h = &hcpcs_defs[it->hx];
		int64_t net = (int64_t)h->price_cents * it->qty;
		int64_t day = it->day;

		if (day > day_of(v->end))
			day = day_of(v->end);
		total += net;
		if (seq++)
			buf_addch(b, ',');
		LIT(b, "{\"sequence\":");
		put_u64(b, seq);
		/* a vaccine and its administration point at Z23 */
		LIT(b, ",\"careTeamSequence\":[1],\"diagnosisSequence\":[");
		put_u64(b, z23_seq && (h->kind == 'V' || it->hx == g->t.hx_flu_admin ||
			it->hx == g->t.hx_pneumo_admin) ? z23_seq : 1);
		LIT(b, "],\"productOrService\":");
		put_cc(b, SYS_HCPCS, h->code, h->display, false);
		LIT(b, ",\"servicedDate\":");
		put_date(b, day);
		LIT(b, ",\"quantity\":{\"value\":");
		put_u64(b, it->qty);
		LIT(b, "},\"unitPrice\":");
		put_money(b, h->price_cents);
		LIT(b, ",\"net\":");
		put_money(b, net);
		LIT(b, ",\"encounter\":[");
		put_ref(b, "Encounter/", v->id);
		LIT(b, "]}");
	}
	LIT(b, "],\"total\":");
	put_money(b, total);
	res_end(g);
}

/* All resources of one visit, in an order in which references point back
 * (except Encounter.diagnosis, which must point forward). */
static void write_visit(struct gen *g, struct rng *r, const struct person *p,
	struct visit *v, const char *pid, const char *cov1, const char *cov2)
{
	const struct doc_inst *ds = NULL;
	unsigned i;

	next_id(g, v->id, "enc");
	for (i = 0; i < v->ndx; i++)
		next_id(g, v->dx_id[i], "cond");
	for (i = 0; i < v->npx; i++)
		next_id(g, v->px[i].id, "proc");
	for (i = 0; i < v->ndoc; i++) {
		next_id(g, v->doc[i].id, "doc");
		if (v->doc[i].kind == DK_DS)
			ds = &v->doc[i];
	}
	if (ds)
		next_id(g, v->comp_id, "comp");
	if (v->claim)
		next_id(g, v->claim_id, "claim");

	write_encounter(g, v, pid);
	for (i = 0; i < v->ndx; i++)
		write_condition(g, v, i, pid);
	for (i = 0; i < v->npx; i++)
		write_procedure(g, v, i, pid);
	write_vitals(g, v, pid);
	write_labs(g, r, v, pid);
	if (ds)
		write_composition(g, v, ds, pid);
	for (i = 0; i < v->ndoc; i++)
		write_docref(g, r, p, v, &v->doc[i], pid);
	if (v->claim)
		write_claim(g, p, v, pid, cov1, cov2);
}

/* One patient: Patient, Coverage, visits; then maybe a near-duplicate. */
static int gen_patient(struct gen *g, unsigned idx, struct err *e)
{
	const struct demo_opts *o = g->o;
	struct person p, d;
	struct rng r, rd;
	char pid[ID_CAP], cov1[ID_CAP], cov2[ID_CAP];
	int orig_slot;
	unsigned nv, i;
	bool full = !o->patients_only;

	rng_seed(&r, o->seed, idx + 1, 0);
	rng_seed(&rd, o->seed, idx + 1, 1);
	g->num = idx + 1;
	g->seq = 0;
	make_person(g, &r, &p, g->num);
	make_id(pid, "pat", g->tag, g->num, 0);
	orig_slot = (int)g->nslots;
	write_patient(g, &p, pid, full);
	if (full) {
		next_id(g, cov1, "cov");
		write_coverage(g, &p, pid, cov1, p.payer, p.member, 1);
		if (p.payer2 >= 0) {
			next_id(g, cov2, "cov");
			write_coverage(g, &p, pid, cov2, p.payer2, p.member2, 2);
		}
		nv = plan_visits(g, &r, &p, false);
		for (i = 0; i < nv; i++)
			write_visit(g, &r, &p, &g->visits[i], pid, cov1,
				p.payer2 >= 0 ? cov2 : NULL);
	}

	if (rng_below(&rd, 100) < o->duplicate_pct) {
		char did[ID_CAP];

		g->num = o->patients + ++g->ndup;
		g->seq = 0;
		make_duplicate(g, &rd, &p, &d, g->num);
		make_id(did, "pat", g->tag, g->num, 0);
		write_patient(g, &d, did, full);
		g->cur->dup_of = orig_slot;
		if (full) {
			next_id(g, cov1, "cov");
			write_coverage(g, &d, did, cov1, d.payer, d.member, 1);
			nv = plan_visits(g, &rd, &d, true);
			for (i = 0; i < nv; i++)
				write_visit(g, &rd, &d, &g->visits[i], did, cov1, NULL);
		}
	}
	return flush(g, e);
}

/* ------------------------------------------------------------- public */

void demo_opts_init(struct demo_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->patients = 100;
	o->seed = 1;
	o->duplicate_pct = DEMO_DEFAULT_DUP_PCT;
}

int demo_generate(const struct demo_opts *o, demo_emit_fn emit, void *ctx,
	struct err *e)
{
	struct gen *g = NULL;
	struct demo_opts opts;
	uint64_t x;
	int rc = -1;

	if (!o || !emit) {
		err_set(e, ERR_INVALID, "demo options and callback are required");
		goto out;
	}
	if (o->patients > MAX_PATIENTS) {
		err_set(e, ERR_INVALID, "too many demo patients (at most %u)", MAX_PATIENTS);
		goto out;
	}
	opts = *o;
	if (opts.duplicate_pct > 100)
		opts.duplicate_pct = 100;
	if (opts.as_of_day == 0)
		opts.as_of_day = DEFAULT_AS_OF_DAY;
	if (opts.as_of_day < MIN_AS_OF_DAY || opts.as_of_day > MAX_AS_OF_DAY) {
		err_set(e, ERR_INVALID, "demo as-of date must be in 1990-2099");
		goto out;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		err_set(e, ERR_NOMEM, "out of memory generating demo data");
		goto out;
	}
	g->o = &opts;
	g->emit = emit;
	g->ctx = ctx;
	if (tables_init(&g->t, e) < 0)
		goto out;
	x = opts.seed ^ 0x6368617274ULL;
	x = splitmix64(&x);
	for (int i = 0; i < 6; i++)
		g->tag[i] = "0123456789abcdef"[(x >> (4 * i)) & 15];
	g->tag[6] = '\0';
	g->mrn_off = splitmix64(&x) % 90000000;
	g->as_of_day = opts.as_of_day;
	g->as_of = opts.as_of_day * DAY_SECS + 12 * HOUR_SECS;
	buf_init(&g->out, 0);
	buf_init(&g->note, 64 * 1024);

	directory_plan(g);
	if (!opts.patients_only) {
		write_directory(g);
		if (flush(g, e) < 0)
			goto out;
	}
	for (unsigned i = 0; i < opts.patients; i++)
		if (gen_patient(g, i, e) < 0)
			goto out;
	rc = 0;
out:
	if (g) {
		buf_release(&g->out);
		buf_release(&g->note);
		free(g->slots);
		free(g->res);
		free(g);
	}
	return rc;
}
