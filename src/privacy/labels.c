/* labels.c - sensitivity labels (meta.security), clearance, and consent to
 * disclosure.
 *
 * A label is a Coding in meta.security.  Two code systems matter:
 * v3-Confidentiality (U L M N R V, one level per resource; none means N) and
 * v3-ActCode, whose information-sensitivity codes are folded into eight
 * categories (policy.h, PCAT_*).  Codings of other systems are ignored (they
 * are purposes, obligations, provenance tags); an unknown code in the
 * Confidentiality system reads as V, so that a typo hides a record instead of
 * showing it.
 *
 * privacy_labels_of_json() runs on every read and search hit, on the stored
 * JSON the server is about to send: a small scanner walks the top-level
 * members only until "meta" (the third member of every stored resource) and
 * meta only until "security", without building any tree or allocating.
 * test_policy prints what it costs. */
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

/* ---- codes ---- */

static const char *const conf_systems[] = {
	"http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
	"http://hl7.org/fhir/v3/Confidentiality",
	"urn:oid:2.16.840.1.113883.5.25",
};

static const char *const act_systems[] = {
	"http://terminology.hl7.org/CodeSystem/v3-ActCode",
	"http://hl7.org/fhir/v3/ActCode",
	"urn:oid:2.16.840.1.113883.5.4",
};

static const char *const conf_names[] = {
	[PCONF_U] = "U", [PCONF_L] = "L", [PCONF_M] = "M",
	[PCONF_N] = "N", [PCONF_R] = "R", [PCONF_V] = "V",
};

/* v3-ActCode information-sensitivity codes (and the two privacy-law codes
 * that say the same) folded into categories.  Codes not listed are not
 * sensitivity labels chartkeep acts on. */
static const struct {
	const char *code;
	uint16_t cat;
} act_codes[] = {
	{ "ETH", PCAT_SUD }, { "SUD", PCAT_SUD }, { "ETHUD", PCAT_SUD },
	{ "OPIOIDUD", PCAT_SUD }, { "42CFRPart2", PCAT_SUD },
	{ "PSYTHPN", PCAT_PSYNOTE }, { "HIPAAPsyNotes", PCAT_PSYNOTE },
	{ "BH", PCAT_BH }, { "PSY", PCAT_BH }, { "MH", PCAT_BH }, { "EMOTDIS", PCAT_BH },
	{ "COGN", PCAT_BH }, { "DVD", PCAT_BH },
	{ "HIV", PCAT_HIV }, { "STD", PCAT_STD }, { "SEX", PCAT_SEX },
	{ "SDV", PCAT_SDV }, { "MST", PCAT_SDV },
	{ "GDIS", PCAT_GDIS }, { "SCA", PCAT_GDIS },
};

/* Category names, in bit order, for the site file and policy show. */
static const char *const cat_names[] = {
	"sud", "psynote", "bh", "hiv", "std", "sex", "sdv", "gdis",
};

int policy_conf_parse(const char *s, size_t n)
{
	if (n != 1)
		return 0;
	for (int c = PCONF_U; c <= PCONF_V; c++)
		if (conf_names[c][0] == s[0] || conf_names[c][0] == (s[0] & ~0x20))
			return c;
	return 0;
}

const char *policy_conf_name(int conf)
{
	if (conf == 0)
		return "N";
	return conf >= PCONF_U && conf <= PCONF_V ? conf_names[conf] : "?";
}

unsigned policy_category_parse(const char *s, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(cat_names); i++)
		if (strlen(cat_names[i]) == n && strncasecmp(cat_names[i], s, n) == 0)
			return 1u << i;
	return 0;
}

const char *privacy_category_name(unsigned bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(cat_names); i++)
		if (bit == 1u << i)
			return cat_names[i];
	return NULL;
}

static bool in_list(const char *const *list, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
			return true;
	return false;
}

enum { CLS_NONE, CLS_LABEL, CLS_UNKNOWN };

/* Fold one Coding (system, code as spans) into *l.  CLS_LABEL: it was one;
 * CLS_UNKNOWN: a sensitivity system but a code chartkeep does not know;
 * CLS_NONE: another system. */
static int classify(const char *sys, size_t sn, const char *code, size_t cn,
		    struct privacy_labels *l)
{
	if (!sys)
		return CLS_NONE;
	if (in_list(conf_systems, ARRAY_SIZE(conf_systems), sys, sn)) {
		int c = code ? policy_conf_parse(code, cn) : 0;
		bool known = c && code[0] >= 'A' && code[0] <= 'Z';  /* the codes are upper case */

		if (!known)
			c = PCONF_V;
		if (c > l->conf)
			l->conf = (uint8_t)c;
		return known ? CLS_LABEL : CLS_UNKNOWN;
	}
	if (in_list(act_systems, ARRAY_SIZE(act_systems), sys, sn)) {
		for (size_t i = 0; code && i < ARRAY_SIZE(act_codes); i++) {
			if (strlen(act_codes[i].code) == cn && memcmp(act_codes[i].code, code, cn) == 0) {
				l->cats |= act_codes[i].cat;
				return CLS_LABEL;
			}
		}
		return CLS_UNKNOWN;
	}
	return CLS_NONE;
}

static void most_restricted(struct privacy_labels *out)
{
	out->conf = PCONF_V;
	out->cats = PCAT__ALL;
}

bool privacy_labels_sensitive(const struct privacy_labels *l)
{
	return l && (l->conf > PCONF_N || l->cats);
}

/* ---- from a json-c tree ---- */

static int codings_of(json_object *arr, struct privacy_labels *out)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(arr, i);
		const char *sys, *code;

		if (!json_object_is_type(c, json_type_object))
			return -1;
		sys = json_get_str(c, "system");
		code = json_get_str(c, "code");
		classify(sys, sys ? strlen(sys) : 0, code, code ? strlen(code) : 0, out);
	}
	return 0;
}

int privacy_labels_of(json_object *o, struct privacy_labels *out)
{
	json_object *meta, *sec;

	memset(out, 0, sizeof(*out));
	if (o && json_object_is_type(o, json_type_array))
		goto array;
	if (!o || !json_object_is_type(o, json_type_object))
		goto bad;
	meta = json_get(o, "resourceType") ? json_get(o, "meta") : o;
	if (!meta)
		return 0;
	if (!json_object_is_type(meta, json_type_object))
		goto bad;
	sec = json_get(meta, "security");
	if (!sec)
		return 0;
	o = sec;
	if (!json_object_is_type(o, json_type_array))
		goto bad;
array:
	if (codings_of(o, out) < 0)
		goto bad;
	return 0;
bad:
	most_restricted(out);
	return -1;
}

/* ---- from JSON text ---- */

struct scan {
	const char *s;
	size_t i, n;
};

static void skip_ws(struct scan *sc)
{
	while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
				 sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
		sc->i++;
}

static bool eat(struct scan *sc, char c)
{
	skip_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == c) {
		sc->i++;
		return true;
	}
	return false;
}

/* A string at sc->i: its raw body as a span.  -1 if there is none. */
static int scan_string(struct scan *sc, const char **body, size_t *len)
{
	skip_ws(sc);
	if (sc->i >= sc->n || sc->s[sc->i] != '"')
		return -1;
	*body = sc->s + ++sc->i;
	while (sc->i < sc->n && sc->s[sc->i] != '"') {
		if (sc->s[sc->i] == '\\')
			sc->i++;
		sc->i++;
	}
	if (sc->i >= sc->n)
		return -1;
	*len = (size_t)(sc->s + sc->i - *body);
	sc->i++;
	return 0;
}

/* Skip one value (its syntax is the writer's: only its extent matters). */
static int skip_value(struct scan *sc)
{
	size_t depth = 0;

	skip_ws(sc);
	do {
		char c;

		if (sc->i >= sc->n)
			return -1;
		c = sc->s[sc->i];
		if (c == '"') {
			const char *b;
			size_t l;
			if (scan_string(sc, &b, &l) < 0)
				return -1;
		} else if (c == '{' || c == '[') {
			depth++;
			sc->i++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return -1;
			depth--;
			sc->i++;
		} else if (depth == 0) {
			/* a number or literal: up to the next delimiter */
			size_t start = sc->i;
			while (sc->i < sc->n && !strchr(",}] \t\r\n", sc->s[sc->i]))
				sc->i++;
			if (sc->i == start)
				return -1;
		} else {
			sc->i++;
		}
	} while (depth > 0);
	return 0;
}

/* Resolve the escapes of a short string body into out (ASCII only: a
 * non-ASCII character can match none of the systems and codes compared).
 * The length, or -1 if it does not fit or is not ASCII. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (o + 1 >= cap || (unsigned char)c >= 0x80)
			return -1;
		if (c == '\\') {
			if (++i >= n)
				return -1;
			switch (s[i]) {
			case '"': case '\\': case '/':
				c = s[i];
				break;
			case 'u': {
				unsigned v = 0;
				if (i + 4 >= n)
					return -1;
				for (int k = 1; k <= 4; k++) {
					char h = s[i + (size_t)k];
					v <<= 4;
					if (h >= '0' && h <= '9')
						v |= (unsigned)(h - '0');
					else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
						v |= (unsigned)((h | 0x20) - 'a' + 10);
					else
						return -1;
				}
				if (v == 0 || v >= 0x80)
					return -1;
				c = (char)v;
				i += 4;
				break;
			}
			default:
				return -1;   /* \b \f \n \r \t: in no system or code */
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

static bool key_is(const char *raw, size_t n, const char *lit)
{
	char k[32];

	if (!memchr(raw, '\\', n))
		return strlen(lit) == n && memcmp(raw, lit, n) == 0;
	return unescape(raw, n, k, sizeof(k)) >= 0 && strcmp(k, lit) == 0;
}

/* Position sc inside the object at sc->i on the value of member key:
 * 1 found, 0 absent (sc past the object), -1 malformed. */
static int find_member(struct scan *sc, const char *key)
{
	if (!eat(sc, '{'))
		return -1;
	if (eat(sc, '}'))
		return 0;
	for (;;) {
		const char *k;
		size_t kn;

		if (scan_string(sc, &k, &kn) < 0 || !eat(sc, ':'))
			return -1;
		if (key_is(k, kn, key))
			return 1;
		if (skip_value(sc) < 0)
			return -1;
		if (eat(sc, '}'))
			return 0;
		if (!eat(sc, ','))
			return -1;
	}
}

/* One Coding object at sc->i. */
static int scan_coding(struct scan *sc, struct privacy_labels *out)
{
	char sys[128], code[64];
	bool has_sys = false, has_code = false;

	if (!eat(sc, '{'))
		return -1;
	if (eat(sc, '}'))
		return 0;
	for (;;) {
		const char *k, *v;
		size_t kn, vn;
		bool is_sys, is_code;

		if (scan_string(sc, &k, &kn) < 0 || !eat(sc, ':'))
			return -1;
		is_sys = key_is(k, kn, "system");
		is_code = key_is(k, kn, "code");
		if (is_sys || is_code) {
			char *dst = is_sys ? sys : code;
			size_t cap = is_sys ? sizeof(sys) : sizeof(code);
			if (scan_string(sc, &v, &vn) < 0)
				return -1;
			/* too long or not ASCII: not one of ours (an empty string) */
			if (unescape(v, vn, dst, cap) < 0)
				dst[0] = '\0';
			if (is_sys)
				has_sys = true;
			else
				has_code = true;
		} else if (skip_value(sc) < 0) {
			return -1;
		}
		if (eat(sc, '}'))
			break;
		if (!eat(sc, ','))
			return -1;
	}
	if (has_sys)
		classify(sys, strlen(sys), has_code ? code : NULL, has_code ? strlen(code) : 0, out);
	return 0;
}

int privacy_labels_of_json(const char *json, size_t len, struct privacy_labels *out)
{
	struct scan sc = { json, 0, len };
	int r;

	memset(out, 0, sizeof(*out));
	if (!json)
		goto bad;
	r = find_member(&sc, "meta");
	if (r > 0)
		r = find_member(&sc, "security");
	if (r < 0)
		goto bad;
	if (r == 0)
		return 0;
	if (!eat(&sc, '['))
		goto bad;
	if (eat(&sc, ']'))
		return 0;
	for (;;) {
		if (scan_coding(&sc, out) < 0)
			goto bad;
		if (eat(&sc, ']'))
			return 0;
		if (!eat(&sc, ','))
			goto bad;
	}
bad:
	most_restricted(out);
	return -1;
}

/* ---- clearance ---- */

bool privacy_may_see(const struct store_principal *who, const struct privacy_labels *resource,
		     const struct privacy_labels *patient, bool btg_active)
{
	const struct policy_table *t = policy_current();
	unsigned conf = PCONF_N, cats = 0;
	int r;

	if (!who)
		return false;
	r = policy_role_index(who->role);
	if (r < 0)
		return false;
	/* a grant counts only while the role may still break the glass */
	if (btg_active && (t->btg_roles & (1u << r)))
		return true;
	if (resource) {
		conf = resource->conf > conf ? resource->conf : conf;
		cats |= resource->cats;
	}
	if (patient) {
		conf = patient->conf > conf ? patient->conf : conf;
		cats |= patient->cats;
	}
	return conf <= t->conf[r] && (cats & ~(unsigned)t->cats[r]) == 0;
}

/* ---- consent to disclosure ----
 *
 * R4 Consent: the root provision is the base rule (deny or permit), nested
 * provisions are exceptions to their parent.  A provision applies when each
 * restriction it states matches the disclosure; what is not known about the
 * disclosure (NULL purpose, recipient, type) or not evaluated here counts
 * against disclosing: a deny applies, a permit does not. */

#define CONSENT_DEPTH_MAX 16

static const char consentscope_system[] = "http://terminology.hl7.org/CodeSystem/consentscope";

/* Some Coding of arr (array of Coding) has this code?  -1 if arr is absent
 * or empty: the provision states no such restriction. */
static int codings_have(json_object *arr, const char *code)
{
	size_t n;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return -1;
	n = json_object_array_length(arr);
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *c = json_get_str(json_object_array_get_idx(arr, i), "code");
		if (code && c && strcmp(c, code) == 0)
			return 1;
	}
	return 0;
}

static bool period_covers(json_object *period, int64_t now, bool *unknown)
{
	const char *start = json_get_str(period, "start"), *end = json_get_str(period, "end");
	struct time_val tv;

	if (start) {
		if (time_parse(start, strlen(start), TIME_DATETIME, &tv) < 0) {
			*unknown = true;
			return false;
		}
		if (now < tv.lo_ms)
			return false;
	}
	if (end) {
		if (time_parse(end, strlen(end), TIME_DATETIME, &tv) < 0) {
			*unknown = true;
			return false;
		}
		if (now >= tv.hi_ms)
			return false;
	}
	return true;
}

/* Does provision p apply to d?  deny: p is a deny (unknowns apply). */
static bool applies(json_object *p, const struct privacy_disclosure *d, bool deny)
{
	json_object *v;
	bool unknown = false;
	int r;

	v = json_get_obj(p, "period");
	if (v && !period_covers(v, d->now_ms, &unknown))
		return unknown ? deny : false;
	/* action: only "disclose" is about disclosures */
	v = json_get_arr(p, "action");
	if (v && json_object_array_length(v) > 0) {
		bool disclose = false;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *cc = json_object_array_get_idx(v, i);
			if (codings_have(json_get_arr(cc, "coding"), "disclose") == 1)
				disclose = true;
		}
		if (!disclose)
			return false;
	}
	r = codings_have(json_get_arr(p, "purpose"), d->purpose);
	if (r == 0 && !d->purpose)
		return deny;
	if (r == 0)
		return false;
	v = json_get_arr(p, "actor");
	if (v && json_object_array_length(v) > 0) {
		bool match = false;
		if (!d->recipient)
			return deny;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *ref = json_get_obj(json_object_array_get_idx(v, i), "reference");
			const char *s = json_get_str(ref, "reference");
			if (s && strcmp(s, d->recipient) == 0)
				match = true;
		}
		if (!match)
			return false;
	}
	r = codings_have(json_get_arr(p, "class"), d->type);
	if (r == 0 && !d->type)
		return deny;   /* part of the record is named: the whole record has it */
	if (r == 0)
		return false;
	v = json_get_arr(p, "securityLabel");
	if (v && json_object_array_length(v) > 0) {
		struct privacy_labels want = { 0, 0 };
		bool unknown_label = false;

		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *c = json_object_array_get_idx(v, i);
			const char *sys = json_get_str(c, "system"), *code = json_get_str(c, "code");
			if (classify(sys, sys ? strlen(sys) : 0, code, code ? strlen(code) : 0, &want) !=
			    CLS_LABEL)
				unknown_label = true;
		}
		if (unknown_label || !d->labels) {
			/* a label chartkeep does not know, or data whose labels are
			 * not known (the whole record) */
			if (!deny)
				return false;
		} else {
			unsigned have = d->labels->conf ? d->labels->conf : PCONF_N;
			bool hit = (d->labels->cats & want.cats) ||
				   (want.conf > PCONF_N && have >= want.conf);
			if (!hit)
				return false;
		}
	}
	/* restrictions not evaluated here */
	if (json_get(p, "code") || json_get(p, "data") || json_get(p, "dataPeriod"))
		return deny;
	return true;
}

/* -1 deny, +1 permit, 0 not applicable. */
static int provision_eval(json_object *p, const struct privacy_disclosure *d, int depth)
{
	const char *type = json_get_str(p, "type");
	json_object *kids;
	int r = type && strcmp(type, "deny") == 0 ? -1 : type && strcmp(type, "permit") == 0 ? 1 : 0;
	int kid_r = 0;

	if (depth > CONSENT_DEPTH_MAX)
		return -1;
	/* a provision without a type (only nested ones) applies as a deny does
	 * when deciding whether it applies: unknowns are not in its favour */
	if (!applies(p, d, r <= 0))
		return 0;
	kids = json_get_arr(p, "provision");
	for (size_t i = 0; kids && i < json_object_array_length(kids); i++) {
		json_object *k = json_object_array_get_idx(kids, i);
		int x = json_object_is_type(k, json_type_object) ? provision_eval(k, d, depth + 1) : -1;
		if (x < 0)
			kid_r = -1;   /* of conflicting exceptions, deny wins */
		else if (x > 0 && kid_r == 0)
			kid_r = 1;
	}
	return kid_r ? kid_r : r;
}

bool privacy_consent_denies_disclosure(json_object *consent, const struct privacy_disclosure *d)
{
	json_object *scope, *prov, *rules;
	int r = 0;

	if (!consent || !d || !json_is_str(json_get(consent, "resourceType"), "Consent"))
		return false;
	if (!json_is_str(json_get(consent, "status"), "active"))
		return false;
	/* only a privacy consent speaks about disclosures; research, treatment
	 * and advance-directive consents do not */
	scope = json_get_arr(json_get_obj(consent, "scope"), "coding");
	for (size_t i = 0; scope && i < json_object_array_length(scope); i++) {
		json_object *c = json_object_array_get_idx(scope, i);
		if (json_is_str(json_get(c, "system"), consentscope_system) &&
		    !json_is_str(json_get(c, "code"), "patient-privacy"))
			return false;
	}
	prov = json_get_obj(consent, "provision");
	if (prov)
		r = provision_eval(prov, d, 0);
	if (r == 0) {
		/* no provision decides: the policy rule (v3-ActCode OPTOUT / OPTIN) */
		rules = json_get_arr(json_get_obj(consent, "policyRule"), "coding");
		if (codings_have(rules, "OPTOUT") == 1 || codings_have(rules, "OPTOUTE") == 1)
			r = -1;
	}
	return r < 0;
}
