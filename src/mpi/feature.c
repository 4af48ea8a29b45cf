/* feature.c - a Patient as the matcher sees it (struct mpi_rec), and its
 * blocking keys.
 *
 * Which name, which address: the official name (else the usual, else the
 * first) with a family; the home address that has not ended (else the
 * first).  Given names: the first is "given", the rest "middle".  Phones:
 * the last ten digits.  Identifiers: every system|value (value folded to
 * letters and digits), whatever the system. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "mpi/mpi_int.h"
#include "base/banned.h"

static const char *norm(struct arena *a, const char *s, bool abbrev)
{
	struct buf b = BUF_INIT(4096);
	const char *r = NULL;

	if (!s)
		return NULL;
	mpi_normalise(s, strlen(s), abbrev, &b);
	if (b.len && !b.failed)
		r = arena_strndup(a, b.data, b.len);
	buf_release(&b);
	return r;
}

/* Letters and digits only (postal codes, identifier values, phones). */
static const char *alnum(struct arena *a, const char *s, bool digits_only, size_t keep_last)
{
	char t[128];
	size_t n = 0;

	if (!s)
		return NULL;
	for (; *s && n < sizeof(t) - 1; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if ((c >= '0' && c <= '9') || (!digits_only && c >= 'a' && c <= 'z'))
			t[n++] = c;
	}
	if (!n)
		return NULL;
	if (keep_last && n > keep_last)
		return arena_strndup(a, t + n - keep_last, keep_last);
	return arena_strndup(a, t, n);
}

static json_object *pick_name(json_object *names)
{
	static const char *const pref[] = { "official", "usual", NULL };
	size_t n = names ? json_object_array_length(names) : 0;

	for (const char *const *u = pref; *u; u++)
		for (size_t i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(names, i);
			if (json_is_str(json_get(x, "use"), *u) && json_get(x, "family"))
				return x;
		}
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(names, i);
		if (!json_is_str(json_get(x, "use"), "old") && !json_is_str(json_get(x, "use"), "maiden"))
			return x;
	}
	return n ? json_object_array_get_idx(names, 0) : NULL;
}

static json_object *pick_address(json_object *addrs)
{
	size_t n = addrs ? json_object_array_length(addrs) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(addrs, i);
		if ((json_is_str(json_get(x, "use"), "home") || !json_get(x, "use")) &&
		    !json_get_str(json_get_obj(x, "period"), "end"))
			return x;
	}
	return n ? json_object_array_get_idx(addrs, 0) : NULL;
}

static int32_t birth_of(const char *s)
{
	int y = 0, m = 0, d = 0;

	if (!s || strlen(s) < 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		y = y * 10 + (s[i] - '0');
	}
	if (s[4] == '-' && s[5] >= '0' && s[5] <= '9' && s[6] >= '0' && s[6] <= '9') {
		m = (s[5] - '0') * 10 + (s[6] - '0');
		if (s[7] == '-' && s[8] >= '0' && s[8] <= '9' && s[9] >= '0' && s[9] <= '9')
			d = (s[8] - '0') * 10 + (s[9] - '0');
	}
	return y * 10000 + m * 100 + d;
}

void mpi_rec_from_json(json_object *pat, const char *id, struct arena *a, struct mpi_rec *r)
{
	json_object *name = pick_name(json_get_arr(pat, "name"));
	json_object *given = json_get_arr(name, "given");
	json_object *addr = pick_address(json_get_arr(pat, "address"));
	json_object *lines = json_get_arr(addr, "line");
	json_object *tel = json_get_arr(pat, "telecom"), *ids = json_get_arr(pat, "identifier");
	json_object *links = json_get_arr(pat, "link"), *active = json_get(pat, "active");
	const char *g = json_get_str(pat, "gender");
	struct buf b = BUF_INIT(1 << 16);

	memset(r, 0, sizeof(*r));
	r->id = arena_strdup(a, id);
	if (given && json_object_array_length(given) > 0) {
		r->f[MF_GIVEN] = norm(a, json_object_get_string(json_object_array_get_idx(given, 0)), false);
		for (size_t i = 1; i < json_object_array_length(given); i++) {
			const char *s = json_object_get_string(json_object_array_get_idx(given, i));
			if (b.len)
				buf_addch(&b, ' ');
			buf_addstr(&b, s ? s : "");
		}
		if (b.len)
			r->f[MF_MIDDLE] = norm(a, buf_cstr(&b), false);
		buf_reset(&b);
	}
	/* "van der Berg" and "vanderberg" are one family name */
	{
		const char *fam = norm(a, json_get_str(name, "family"), false);
		if (fam) {
			for (const char *p = fam; *p; p++)
				if (*p != ' ')
					buf_addch(&b, *p);
			r->f[MF_FAMILY] = arena_strndup(a, b.data, b.len);
			buf_reset(&b);
		}
	}
	if (g && (strcmp(g, "male") == 0 || strcmp(g, "female") == 0 || strcmp(g, "other") == 0))
		r->f[MF_SEX] = g[0] == 'm' ? "m" : g[0] == 'f' ? "f" : "o";
	r->birth = birth_of(json_get_str(pat, "birthDate"));
	if (r->birth)
		r->f[MF_BIRTH] = arena_printf(a, "%08d", (int)r->birth);
	if (lines && json_object_array_length(lines) > 0) {
		r->f[MF_LINE] = norm(a, json_object_get_string(json_object_array_get_idx(lines, 0)), true);
		if (json_object_array_length(lines) > 1)
			r->f[MF_LINE2] = norm(a, json_object_get_string(json_object_array_get_idx(lines, 1)), true);
	}
	r->f[MF_CITY] = norm(a, json_get_str(addr, "city"), true);
	r->f[MF_POSTAL] = alnum(a, json_get_str(addr, "postalCode"), false, 0);
	r->f[MF_STATE] = norm(a, json_get_str(addr, "state"), false);
	for (size_t i = 0; tel && i < json_object_array_length(tel); i++) {
		json_object *t = json_object_array_get_idx(tel, i);
		const char *sys = json_get_str(t, "system"), *v = json_get_str(t, "value");
		if (!v)
			continue;
		if (!r->f[MF_PHONE] && (!sys || strcmp(sys, "phone") == 0 || strcmp(sys, "sms") == 0))
			r->f[MF_PHONE] = alnum(a, v, true, 10);
		else if (!r->f[MF_EMAIL] && sys && strcmp(sys, "email") == 0)
			r->f[MF_EMAIL] = norm(a, v, false);
	}
	for (size_t i = 0; ids && i < json_object_array_length(ids); i++) {
		json_object *x = json_object_array_get_idx(ids, i);
		const char *sys = json_get_str(x, "system");
		const char *v = alnum(a, json_get_str(x, "value"), false, 0);
		if (!v)
			continue;
		if (b.len)
			buf_addch(&b, '\n');
		buf_addf(&b, "%s|%s", sys ? sys : "", v);
	}
	if (b.len && !b.failed)
		r->f[MF_IDENT] = arena_strndup(a, b.data, b.len);
	for (size_t i = 0; links && i < json_object_array_length(links); i++)
		if (json_is_str(json_get(json_object_array_get_idx(links, i), "type"), "replaced-by"))
			r->merged = true;
	r->inactive = active && json_object_is_type(active, json_type_boolean) &&
		      !json_object_get_boolean(active);
	if (r->f[MF_GIVEN]) {
		r->given_canon = mpi_nick_canon(r->f[MF_GIVEN]);
		mpi_nysiis(r->given_canon, r->given_ph);
	}
	if (r->f[MF_FAMILY])
		mpi_nysiis(r->f[MF_FAMILY], r->family_ph);
	buf_release(&b);
}

int mpi_rec_from_text(const char *json, size_t len, const char *id, struct arena *a, struct mpi_rec *r)
{
	struct err e = ERR_INIT;
	json_object *o = json_parse_buf(json, len, 0, &e);

	if (!o)
		return -1;
	mpi_rec_from_json(o, id, a, r);
	json_object_put(o);
	return 0;
}

/* ---- blocking keys ---- */

/* FNV-1a over a kind byte and text; never 0. */
static uint64_t h64(int kind, const char *a, const char *b, int32_t n)
{
	uint64_t h = 1469598103934665603ULL;

	h = (h ^ (uint64_t)(kind + 1)) * 1099511628211ULL;
	for (; a && *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0x1f) * 1099511628211ULL;
	for (; b && *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint64_t)((n >> (8 * i)) & 0xff)) * 1099511628211ULL;
	return h ? h : 1;
}

void mpi_keys(const struct mpi_rec *r, uint64_t k[MPI_NKEYS])
{
	char gph[MPI_PHON_MAX + 1];

	memset(k, 0, MPI_NKEYS * sizeof(k[0]));
	/* phonetic family, birth year and given initial (of the nickname's
	 * canonical name: Bill and William share it) */
	if (r->family_ph[0] && r->birth) {
		char gi[2] = { r->given_canon ? r->given_canon[0] : 0, 0 };
		k[0] = h64(0, r->family_ph, gi, r->birth / 10000);
	}
	/* the birth date and the first letter of whichever name comes first:
	 * the same when given and family are swapped */
	if (r->birth % 100) {
		const char *g = r->f[MF_GIVEN], *f = r->f[MF_FAMILY];
		char ini[2] = { 0, 0 };
		ini[0] = g && f ? (g[0] < f[0] ? g[0] : f[0]) : g ? g[0] : f ? f[0] : 0;
		k[1] = h64(1, ini, NULL, r->birth);
	}
	if (r->f[MF_PHONE] && strlen(r->f[MF_PHONE]) >= 7)
		k[2] = h64(2, r->f[MF_PHONE], NULL, 0);
	if (r->f[MF_POSTAL] && r->given_ph[0])
		k[3] = h64(3, r->f[MF_POSTAL], r->given_ph, 0);
	if (r->f[MF_IDENT]) {
		const char *p = r->f[MF_IDENT];
		for (int i = 4; i <= 5 && *p; i++) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			char t[160];
			if (n < sizeof(t)) {
				memcpy(t, p, n);
				t[n] = '\0';
				k[i] = h64(4, t, NULL, 0);
			}
			p += n + (nl ? 1 : 0);
		}
	}
	/* the names as written (not their nickname form): given and family
	 * swapped give the same key */
	gph[0] = '\0';
	if (r->f[MF_GIVEN])
		mpi_nysiis(r->f[MF_GIVEN], gph);
	if (gph[0] && r->family_ph[0]) {
		bool swap = strcmp(gph, r->family_ph) > 0;
		/* and the decade of birth (none known: its own block) */
		k[6] = h64(6, swap ? r->family_ph : gph, swap ? gph : r->family_ph, r->birth / 100000);
	}
}

void mpi_key_text(uint64_t k, char out[17])
{
	if (!k) {
		out[0] = '\0';
		return;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)k);
}

size_t mpi_patient_keys(json_object *patient, char keys[MPI_KEYS_MAX][MPI_KEY_TEXT])
{
	struct arena a;
	struct mpi_rec r;
	uint64_t k[MPI_NKEYS];
	size_t n = 0;

	arena_init(&a, 1 << 20);
	mpi_rec_from_json(patient, "", &a, &r);
	if (!r.merged) {
		mpi_keys(&r, k);
		for (size_t i = 0; i < MPI_NKEYS && n < MPI_KEYS_MAX; i++)
			if (k[i])
				mpi_key_text(k[i], keys[n++]);
	}
	arena_release(&a);
	return n;
}
