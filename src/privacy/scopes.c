/* scopes.c - SMART App Launch scopes (v2, and v1 for older clients).
 *
 * A token's scopes narrow what its role allows; they never widen it.  The
 * decision point scans the scope text of the token on every request without
 * copying it (policy_scopes_allow_text): a token holds a handful of scopes,
 * and parsing one is a prefix test, a binary search for the type and a few
 * letters, which costs less than keeping a parsed copy per token would.
 *
 * Interactions map to SMART v2 letters: read, vread, history and operations
 * need r; search s; create c; update and patch u; delete d.  A batch is
 * decided per entry and the capability statement is public, so neither
 * needs a scope.  Query-restricted v2 scopes (patient/Observation.rs?
 * category=laboratory) are refused rather than widened to the whole type. */
#include <string.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

static const struct {
	const char *name;
	unsigned flag;
} plain_scopes[] = {
	{ "openid", PSF_OPENID }, { "fhirUser", PSF_FHIRUSER }, { "profile", PSF_PROFILE },
	{ "offline_access", PSF_OFFLINE }, { "online_access", PSF_ONLINE },
	{ "launch", PSF_LAUNCH }, { "launch/patient", PSF_LAUNCH_PATIENT },
	{ "launch/encounter", PSF_LAUNCH_ENCOUNTER },
};

static const struct {
	const char *prefix;
	int ctx;
} contexts[] = {
	{ "patient/", PSC_PATIENT }, { "user/", PSC_USER }, { "system/", PSC_SYSTEM },
};

static bool span_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The SMART v2 letters, or the v1 words.  0 if malformed. */
static unsigned parse_perms(const char *s, size_t n)
{
	static const char order[] = "cruds";
	unsigned m = 0;
	size_t k = 0;

	if (span_is(s, n, "read"))
		return PSP_R | PSP_S;
	if (span_is(s, n, "write"))
		return PSP_C | PSP_U | PSP_D;
	if (span_is(s, n, "*"))
		return PSP_C | PSP_R | PSP_U | PSP_D | PSP_S;
	for (size_t i = 0; i < n; i++) {
		/* each letter once, in the order c r u d s */
		while (k < 5 && order[k] != s[i])
			k++;
		if (k == 5)
			return 0;
		m |= 1u << k;
		k++;
	}
	return m;
}

/* One scope s[0..n), its syntax only.  1: a resource scope: ctx and perms
 * in *out, the type name as a span in *type, *tn ("*" for any); 0: a
 * recognised non-resource scope (*flag); -1: bad (e says why, naming it). */
static int parse_syntax(const char *s, size_t n, struct privacy_scope *out, const char **type,
			size_t *tn, unsigned *flag, struct err *e)
{
	int shown = n > 100 ? 100 : (int)n;
	const char *dot, *t = NULL;

	*flag = 0;
	if (n > PRIVACY_SCOPE_LEN_MAX)
		return err_set(e, ERR_INVALID, "scope too long: '%.*s...'", shown, s);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return err_set(e, ERR_INVALID, "malformed scope '%.*s'", shown, s);
	/* resource scopes first: they are most of any token */
	out->ctx = 0;
	for (size_t i = 0; i < ARRAY_SIZE(contexts); i++) {
		size_t pl = strlen(contexts[i].prefix);
		if (n > pl && memcmp(s, contexts[i].prefix, pl) == 0) {
			out->ctx = (uint8_t)contexts[i].ctx;
			t = s + pl;
			break;
		}
	}
	if (!t) {
		for (size_t i = 0; i < ARRAY_SIZE(plain_scopes); i++) {
			if (span_is(s, n, plain_scopes[i].name)) {
				*flag = plain_scopes[i].flag;
				return 0;
			}
		}
		if (memchr(s, '?', n))
			goto query;
		if (memchr(s, '/', n) || memchr(s, '.', n))
			return err_set(e, ERR_INVALID, "malformed scope '%.*s'", shown, s);
		return err_set(e, ERR_INVALID, "unknown scope '%.*s'", shown, s);
	}
	if (memchr(s, '?', n))
		goto query;
	dot = memchr(t, '.', n - (size_t)(t - s));
	if (!dot || dot == t || dot + 1 == s + n)
		return err_set(e, ERR_INVALID, "malformed scope '%.*s'", shown, s);
	*type = t;
	*tn = (size_t)(dot - t);
	out->type = -1;
	out->perms = (uint8_t)parse_perms(dot + 1, (size_t)(s + n - dot - 1));
	if (!out->perms)
		return err_set(e, ERR_INVALID, "malformed scope '%.*s'", shown, s);
	return 1;
query:
	return err_set(e, ERR_INVALID, "scope '%.*s': query-restricted scopes are not supported",
		       shown, s);
}

/* parse_syntax, and the type resolved to its index. */
static int parse_one(const char *s, size_t n, struct privacy_scope *out, unsigned *flag,
		     struct err *e)
{
	const char *type;
	size_t tn;
	int r = parse_syntax(s, n, out, &type, &tn, flag, e);

	if (r <= 0 || span_is(type, tn, "*"))
		return r;
	r = policy_type_index_n(type, tn);
	if (r < 0)
		return err_set(e, ERR_INVALID, "unknown resource type in scope '%.*s'",
			       n > 100 ? 100 : (int)n, s);
	out->type = (int16_t)r;
	return 1;
}

/* The next space-separated word of *p; false at the end. */
static bool next_word(const char **p, const char **w, size_t *n)
{
	const char *s = *p;

	while (*s == ' ')
		s++;
	if (!*s) {
		*p = s;
		return false;
	}
	*w = s;
	while (*s && *s != ' ')
		s++;
	*n = (size_t)(s - *w);
	*p = s;
	return true;
}

int privacy_scopes_parse(const char *text, struct privacy_scopes *out, struct err *e)
{
	const char *p = text ? text : "", *w;
	size_t n;

	out->n = 0;
	out->flags = 0;
	while (next_word(&p, &w, &n)) {
		struct privacy_scope sc;
		unsigned flag;
		int r = parse_one(w, n, &sc, &flag, e);

		if (r < 0)
			return -1;
		if (r == 0) {
			out->flags |= flag;
			continue;
		}
		if (out->n == PRIVACY_SCOPES_MAX)
			return err_set(e, ERR_INVALID, "too many scopes (at most %d)", PRIVACY_SCOPES_MAX);
		out->v[out->n++] = sc;
	}
	return 0;
}

/* The letter each action needs; 0 for the ones no scope is needed for. */
static const uint8_t perm_for[PA_CAPABILITIES + 1] = {
	[PA_READ] = PSP_R, [PA_VREAD] = PSP_R, [PA_HISTORY] = PSP_R, [PA_OPERATION] = PSP_R,
	[PA_SEARCH] = PSP_S, [PA_CREATE] = PSP_C, [PA_UPDATE] = PSP_U, [PA_PATCH] = PSP_U,
	[PA_DELETE] = PSP_D,
};

static unsigned perm_of(int action)
{
	return action >= 0 && action <= PA_CAPABILITIES ? perm_for[action] : 0;
}

static bool scope_allows(const struct privacy_scope *sc, unsigned need, int ti, int system)
{
	if (!(sc->perms & need))
		return false;
	if (sc->type == -1)
		return true;
	return ti != system && sc->type == ti;
}

int privacy_scopes_allow(const struct privacy_scopes *sc, int action, const char *type)
{
	unsigned need = perm_of(action);
	int system = (int)policy_n_types(), ti = system, best = 0;

	if (action == PA_BATCH || action == PA_CAPABILITIES)
		return PSC_SYSTEM;
	if (!need)
		return 0;
	if (type) {
		ti = policy_type_index(type);
		if (ti < 0)
			return 0;
	}
	for (size_t i = 0; i < sc->n; i++) {
		if (!scope_allows(&sc->v[i], need, ti, system))
			continue;
		if (sc->v[i].ctx > best)
			best = sc->v[i].ctx;
	}
	return best;
}

int policy_scopes_allow_text(const char *text, int action, int ti, bool has_patient)
{
	unsigned need = perm_of(action);
	int system = (int)policy_n_types(), best = 0;
	const char *p = text ? text : "", *w, *name;
	size_t n, name_len;

	if (action == PA_BATCH || action == PA_CAPABILITIES)
		return PSC_SYSTEM;
	if (!need)
		return 0;
	name = ti < system ? policy_type_name(ti) : NULL;
	name_len = name ? strlen(name) : 0;
	while (next_word(&p, &w, &n)) {
		struct privacy_scope sc;
		struct err e = ERR_INIT;
		const char *type;
		size_t tn;
		unsigned flag;
		int r = parse_syntax(w, n, &sc, &type, &tn, &flag, &e);

		/* every scope's syntax is checked, so that a damaged scope string
		 * denies whatever the order of its words; the type is compared by
		 * name (an unknown type matches nothing) rather than looked up */
		if (r < 0)
			return -1;
		if (r == 0 || !(sc.perms & need))
			continue;
		if (!span_is(type, tn, "*") && (!name || tn != name_len || memcmp(type, name, tn) != 0))
			continue;
		if (sc.ctx != PSC_PATIENT)
			best = sc.ctx > best ? sc.ctx : best;
		else if (has_patient && !best)
			best = PSC_PATIENT;
	}
	return best;
}

bool privacy_scopes_narrow(const char *text)
{
	if (!text)
		return false;
	for (; *text; text++)
		if (*text != ' ')
			return true;
	return false;
}
