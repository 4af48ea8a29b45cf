/* text.c - what the matcher does to strings: normalisation (case, accents,
 * punctuation, common abbreviations), Jaro-Winkler, Damerau-Levenshtein
 * (optimal string alignment) and the NYSIIS phonetic code.
 *
 * Accents: ICU's NFKD decomposition, then every non-spacing mark dropped
 * (U+00E9 -> e, U+FB01 -> fi, Å -> a).  ASCII input never reaches ICU. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "base/base.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

/* Words a registrar abbreviates, and what the matcher compares instead. */
static const struct { const char *abbr, *word; } abbrevs[] = {
	{ "st", "street" }, { "str", "street" }, { "rd", "road" }, { "ave", "avenue" },
	{ "av", "avenue" }, { "dr", "drive" }, { "ln", "lane" }, { "ct", "court" },
	{ "crt", "court" }, { "pl", "place" }, { "blvd", "boulevard" }, { "hwy", "highway" },
	{ "pde", "parade" }, { "cres", "crescent" }, { "cct", "circuit" }, { "cl", "close" },
	{ "tce", "terrace" }, { "sq", "square" }, { "pkwy", "parkway" }, { "apt", "apartment" },
	{ "ste", "suite" }, { "mt", "mount" }, { "ft", "fort" }, { "n", "north" },
	{ "s", "south" }, { "e", "east" }, { "w", "west" }, { "ne", "northeast" },
	{ "nw", "northwest" }, { "se", "southeast" }, { "sw", "southwest" },
};

static const UNormalizer2 *nfkd(void)
{
	static const UNormalizer2 *n;
	UErrorCode st = U_ZERO_ERROR;

	if (!n)
		n = unorm2_getNFKDInstance(&st); /* a static instance: no race that matters */
	return U_SUCCESS(st) ? n : NULL;
}

/* Fold s[0..n) to lower-case ASCII letters and digits where it can (other
 * letters kept, lower-cased, as UTF-8); anything else becomes one space. */
static void fold(const char *s, size_t n, struct buf *out)
{
	bool ascii = true;
	UChar in[256], dec[512];
	int32_t nin = 0, ndec;
	UErrorCode st = U_ZERO_ERROR;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	if (ascii || !nfkd()) {
		for (size_t i = 0; i < n; i++) {
			char c = s[i];
			if (c >= 'A' && c <= 'Z')
				buf_addch(out, (char)(c + 32));
			else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
				buf_addch(out, c);
			else if (c == '\'')
				; /* O'Brien = OBrien */
			else
				buf_addch(out, ' ');
		}
		return;
	}
	u_strFromUTF8(in, (int32_t)(sizeof(in) / sizeof(in[0])), &nin, s, (int32_t)(n > 255 ? 255 : n), &st);
	if (U_FAILURE(st) && st != U_BUFFER_OVERFLOW_ERROR)
		return;
	st = U_ZERO_ERROR;
	if (nin > 255)
		nin = 255;
	ndec = unorm2_normalize(nfkd(), in, nin, dec, (int32_t)(sizeof(dec) / sizeof(dec[0])), &st);
	if (U_FAILURE(st))
		return;
	for (int32_t i = 0; i < ndec;) {
		UChar32 c;
		char u8[4];
		int32_t k = 0;
		U16_NEXT(dec, i, ndec, c);
		if (u_charType(c) == U_NON_SPACING_MARK || c == '\'' || c == 0x2019)
			continue;
		c = u_tolower(c);
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			buf_addch(out, (char)c);
		} else if (u_isalnum(c)) {
			UBool err = 0;
			U8_APPEND(u8, k, 4, c, err);
			if (!err)
				buf_add(out, u8, (size_t)k);
		} else {
			buf_addch(out, ' ');
		}
	}
}

void mpi_normalise(const char *s, size_t n, bool abbrev, struct buf *out)
{
	struct buf t = BUF_INIT(4096);
	const char *p, *end;
	bool first = true;

	fold(s, n, &t);
	p = buf_cstr(&t);
	end = p + t.len;
	while (p < end) {
		const char *w;
		size_t wl;
		while (p < end && *p == ' ')
			p++;
		w = p;
		while (p < end && *p != ' ')
			p++;
		wl = (size_t)(p - w);
		if (!wl)
			continue;
		if (!first)
			buf_addch(out, ' ');
		first = false;
		if (abbrev) {
			size_t i;
			for (i = 0; i < ARRAY_SIZE(abbrevs); i++)
				if (strlen(abbrevs[i].abbr) == wl && memcmp(abbrevs[i].abbr, w, wl) == 0)
					break;
			if (i < ARRAY_SIZE(abbrevs)) {
				buf_addstr(out, abbrevs[i].word);
				continue;
			}
		}
		buf_add(out, w, wl);
	}
	buf_release(&t);
}

/* ---- comparators ---- */

double mpi_jaro_winkler(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), range, m = 0, t = 0, k = 0, l = 0;
	bool fa[64] = { false }, fb[64] = { false };
	double j;

	if (la == 0 || lb == 0)
		return la == lb ? 1.0 : 0.0;
	if (la > 64)
		la = 64;
	if (lb > 64)
		lb = 64;
	range = (la > lb ? la : lb) / 2;
	range = range ? range - 1 : 0;
	for (size_t i = 0; i < la; i++) {
		size_t lo = i > range ? i - range : 0, hi = i + range + 1 < lb ? i + range + 1 : lb;
		for (size_t x = lo; x < hi; x++) {
			if (fb[x] || a[i] != b[x])
				continue;
			fa[i] = fb[x] = true;
			m++;
			break;
		}
	}
	if (!m)
		return 0.0;
	for (size_t i = 0; i < la; i++) {
		if (!fa[i])
			continue;
		while (!fb[k])
			k++;
		if (a[i] != b[k])
			t++;
		k++;
	}
	j = ((double)m / (double)la + (double)m / (double)lb + ((double)m - (double)t / 2.0) / (double)m) / 3.0;
	while (l < 4 && l < la && l < lb && a[l] == b[l])
		l++;
	return j + (double)l * 0.1 * (1.0 - j);
}

int mpi_damerau(const char *a, const char *b, int max)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	int d[3][65];
	int *prev2 = d[0], *prev = d[1], *cur = d[2];

	if (la > 64 || lb > 64)
		return strcmp(a, b) == 0 ? 0 : max + 1;
	if (abs(la - lb) > max)
		return max + 1;
	for (int j = 0; j <= lb; j++)
		prev[j] = j;
	for (int i = 1; i <= la; i++) {
		int best = i;
		int *tmp;
		cur[0] = i;
		for (int j = 1; j <= lb; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		if (best > max)
			return max + 1;
		tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[lb] > max ? max + 1 : prev[lb];
}

/* ---- NYSIIS (New York State Identification and Intelligence System) ---- */

static bool vowel(char c)
{
	return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U';
}

void mpi_nysiis(const char *s, char out[MPI_PHON_MAX + 1])
{
	char w[64], r[64];
	size_t n = 0, rn = 0;

	out[0] = '\0';
	for (; *s && n < sizeof(w) - 1; s++)
		if (*s >= 'a' && *s <= 'z')
			w[n++] = (char)(*s - 32);
		else if (*s >= 'A' && *s <= 'Z')
			w[n++] = *s;
	w[n] = '\0';
	if (!n)
		return;
	/* first letters */
	if (strncmp(w, "MAC", 3) == 0) {
		w[1] = 'C';
	} else if (strncmp(w, "KN", 2) == 0) {
		w[0] = 'N';
	} else if (w[0] == 'K') {
		w[0] = 'C';
	} else if (strncmp(w, "PH", 2) == 0 || strncmp(w, "PF", 2) == 0) {
		w[0] = 'F';
		w[1] = 'F';
	} else if (strncmp(w, "SCH", 3) == 0) {
		w[1] = 'S';
		w[2] = 'S';
	}
	/* last letters */
	if (n >= 2) {
		char *e = w + n - 2;
		if (strcmp(e, "EE") == 0 || strcmp(e, "IE") == 0) {
			e[0] = 'Y';
			e[1] = '\0';
			n--;
		} else if (strcmp(e, "DT") == 0 || strcmp(e, "RT") == 0 || strcmp(e, "RD") == 0 ||
			   strcmp(e, "NT") == 0 || strcmp(e, "ND") == 0) {
			e[0] = 'D';
			e[1] = '\0';
			n--;
		}
	}
	r[rn++] = w[0];
	for (size_t i = 1; i < n; i++) {
		char c[3] = { w[i], 0, 0 };
		size_t k = 1;
		if (w[i] == 'E' && i + 1 < n && w[i + 1] == 'V') {
			c[0] = 'A';
			c[1] = 'F';
			k = 2;
			i++;
		} else if (vowel(w[i])) {
			c[0] = 'A';
		} else if (w[i] == 'Q') {
			c[0] = 'G';
		} else if (w[i] == 'Z') {
			c[0] = 'S';
		} else if (w[i] == 'M') {
			c[0] = 'N';
		} else if (w[i] == 'K') {
			if (i + 1 < n && w[i + 1] == 'N') {
				c[0] = 'N';
				i++;
			} else {
				c[0] = 'C';
			}
		} else if (w[i] == 'S' && i + 2 < n && w[i + 1] == 'C' && w[i + 2] == 'H') {
			c[0] = c[1] = 'S';
			c[2] = 'S';
			k = 3;
			i += 2;
		} else if (w[i] == 'P' && i + 1 < n && w[i + 1] == 'H') {
			c[0] = c[1] = 'F';
			k = 2;
			i++;
		} else if (w[i] == 'H' && (!vowel(w[i - 1]) || (i + 1 < n && !vowel(w[i + 1])) || i + 1 == n)) {
			c[0] = w[i - 1];
		} else if (w[i] == 'W' && vowel(w[i - 1])) {
			c[0] = w[i - 1];
		}
		/* the name is transcoded in place: a later H or W copies what
		 * its neighbour has become */
		w[i] = c[k - 1];
		for (size_t x = 0; x < k; x++)
			if (rn < sizeof(r) - 1 && r[rn - 1] != c[x])
				r[rn++] = c[x];
	}
	if (rn > 1 && r[rn - 1] == 'S')
		rn--;
	if (rn > 2 && r[rn - 2] == 'A' && r[rn - 1] == 'Y') {
		r[rn - 2] = 'Y';
		rn--;
	}
	if (rn > 1 && r[rn - 1] == 'A')
		rn--;
	if (rn > MPI_PHON_MAX)
		rn = MPI_PHON_MAX;
	memcpy(out, r, rn);
	out[rn] = '\0';
}
