/* map.c - HL7 v2 messages to FHIR R4: one transaction Bundle per message.
 *
 * What each trigger event does is a row of events[] (the type, the event,
 * the segments it needs, what happens to the visit); what each segment
 * becomes is a builder per segment kind, and the code systems, value types,
 * gender, class and status codes are tables too.  docs/hl7v2.md has the
 * field-by-field map.
 *
 * Identity: every resource is written by a conditional entry, so a message
 * processed twice (a reprocess after a fix) or an update (A08) finds what the
 * first one made instead of making another:
 *   Patient       PUT Patient?identifier=<PID-3> (ADT: the PID is the truth;
 *                 other messages only create it if it is not there)
 *   Encounter     PUT Encounter?identifier=<PV1-19> (ADT), or created if absent
 *   Practitioner  POST ifNoneExist identifier=<XCN.9>|<XCN.1>: found or created
 *   others        PUT on a business identifier: the message's own (filler
 *                 order number, document number, policy number) or one made
 *                 from the patient's and the segment's keys (system
 *                 urn:chartkeep:hl7v2:<segment>), stable across resends.
 * Identifier systems: an assigning authority with an ISO OID becomes
 * urn:oid:<oid>, a URI or UUID itself, a bare namespace
 * urn:chartkeep:hl7v2:authority:<namespace>. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/base.h"
#include "hl7v2/hl7v2.h"
#include "base/banned.h"

#define SYS_PREFIX "urn:chartkeep:hl7v2:"
#define MAX_REFS 128

struct mb;
typedef int (*map_fn)(struct mb *b);

enum {
	MF_ENCOUNTER = 1u << 0,   /* PV1 makes (or updates) the Encounter */
	MF_PATIENT_PUT = 1u << 1, /* PID replaces the Patient (ADT) */
	MF_TRANSFER = 1u << 2,    /* the prior location (PV1-6) is kept as history */
	MF_MERGE = 1u << 3,       /* MRG-1's patient is merged into PID's (mpi_merge) */
};

struct map_event {
	const char *type, *event;
	const char *required;     /* segments that must be there, comma-separated */
	map_fn build;
	const char *enc_status;   /* Encounter.status; NULL: from PV1-45 (finished if set) */
	unsigned flags;
};

/* A Bundle being built. */
struct mb {
	const struct hl7_msg *m;
	const struct map_event *ev;
	struct arena a;           /* strings of this message */
	json_object *entries;
	struct buf tmp;
	struct {
		char key[320];
		char url[48];
	} refs[MAX_REFS];          /* conditional entries made: one per key */
	size_t nrefs;
	const char *patient_url;  /* urn:uuid of the Patient entry */
	const char *patient_key;  /* "system|value" of the patient */
	const char *encounter_url;
	const char *visit_key;    /* "" when there is no visit */
	struct err *e;
};

/* ---- text out of the message ---- */

static const char *sdup(struct mb *b, struct hl7_span s)
{
	if (hl7_is_null(b->m, s))
		return "";
	buf_reset(&b->tmp);
	hl7_unescape(b->m, s, &b->tmp);
	return arena_strndup(&b->a, buf_cstr(&b->tmp), b->tmp.len);
}

static struct hl7_span fld(struct mb *b, long seg, size_t f)
{
	struct hl7_span none = { 0, 0 };
	return seg < 0 ? none : hl7_field(b->m, (size_t)seg, f);
}

static struct hl7_span rep(struct mb *b, struct hl7_span s, size_t n)
{
	return hl7_piece(b->m, s, b->m->d.rep, n);
}

static struct hl7_span cmp(struct mb *b, struct hl7_span s, size_t n)
{
	return hl7_piece(b->m, s, b->m->d.comp, n);
}

static struct hl7_span sub(struct mb *b, struct hl7_span s, size_t n)
{
	return hl7_piece(b->m, s, b->m->d.sub, n);
}

static size_t nreps(struct mb *b, struct hl7_span s)
{
	return hl7_count(b->m, s, b->m->d.rep);
}

/* component n of field f of segment seg, first repetition */
static const char *val(struct mb *b, long seg, size_t f, size_t c)
{
	struct hl7_span s = rep(b, fld(b, seg, f), 1);
	return sdup(b, c ? cmp(b, s, c) : s);
}

static const char *cval(struct mb *b, struct hl7_span s, size_t c)
{
	return sdup(b, cmp(b, s, c));
}

/* ---- JSON helpers ---- */

static void put(json_object *o, const char *k, json_object *v)
{
	if (v)
		json_object_object_add(o, k, v);
}

static json_object *jstr(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

static void put_str(json_object *o, const char *k, const char *s)
{
	put(o, k, jstr(s));
}

static void push(json_object *o, const char *k, json_object *v)
{
	json_object *a;

	if (!v)
		return;
	a = json_get_arr(o, k);
	if (!a) {
		a = json_object_new_array();
		json_object_object_add(o, k, a);
	}
	json_object_array_add(a, v);
}

static bool empty_obj(json_object *o)
{
	return !o || (json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0);
}

static json_object *nonempty(json_object *o)
{
	if (empty_obj(o)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A FHIR decimal from an HL7 NM ("+05.50" -> "5.50", ".5" -> "0.5"), or NULL. */
static json_object *jdecimal(struct mb *b, const char *s)
{
	char out[64];
	size_t j = 0, i = 0;
	bool digits = false, neg = false;

	while (*s == ' ')
		s++;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	while (s[0] == '0' && isdigit((unsigned char)s[1]))
		s++;
	if (neg)
		out[j++] = '-';
	if (*s == '.')
		out[j++] = '0';
	for (i = 0; s[i] && j < sizeof(out) - 1; i++) {
		if (isdigit((unsigned char)s[i])) {
			digits = true;
		} else if (s[i] != '.' || strchr(s + i + 1, '.')) {
			break;
		}
		out[j++] = s[i];
	}
	while (s[i] == ' ')
		i++;
	if (!digits || s[i] || out[j - 1] == '.')
		return NULL;
	out[j] = '\0';
	(void)b;
	return json_object_new_double_s(strtod(out, NULL), out);
}

static bool is_decimal(struct mb *b, const char *s)
{
	json_object *d = jdecimal(b, s);

	json_object_put(d);
	return d != NULL;
}

/* HL7 DTM "YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]" to a FHIR date or
 * dateTime.  A time without an offset is read in the server's time zone
 * (TZ), as the sender's local time usually is.  "" when unreadable. */
static const char *fhir_dt(struct mb *b, const char *s, bool date_only)
{
	char d[15] = { 0 }, frac[8] = { 0 }, tz[8] = { 0 };
	size_t n = 0, k = 0;

	while (isdigit((unsigned char)s[n]) && n < 14)
		n++;
	if (n < 4 || (n != 4 && n != 6 && n != 8 && n != 10 && n != 12 && n != 14))
		return "";
	memcpy(d, s, n);
	s += n;
	if (*s == '.') {
		s++;
		while (isdigit((unsigned char)*s) && k < 4)
			frac[k++] = *s++;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if ((*s == '+' || *s == '-') && strlen(s) == 5) {
		for (int i = 1; i < 5; i++)
			if (!isdigit((unsigned char)s[i]))
				return "";
		snprintf(tz, sizeof(tz), "%c%.2s:%.2s", s[0], s + 1, s + 3);
	} else if (*s) {
		return "";
	}
	if (n == 4)
		return arena_strndup(&b->a, d, 4);
	if (n == 6)
		return arena_printf(&b->a, "%.4s-%.2s", d, d + 4);
	if (n == 8 || date_only)
		return arena_printf(&b->a, "%.4s-%.2s-%.2s", d, d + 4, d + 6);
	if (!tz[0]) {
		struct tm tm;
		time_t t;
		long off;
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = atoi((char[5]){ d[0], d[1], d[2], d[3], 0 }) - 1900;
		tm.tm_mon = atoi((char[3]){ d[4], d[5], 0 }) - 1;
		tm.tm_mday = atoi((char[3]){ d[6], d[7], 0 });
		tm.tm_hour = atoi((char[3]){ d[8], d[9], 0 });
		tm.tm_isdst = -1;
		t = mktime(&tm);
		localtime_r(&t, &tm);
		off = (tm.tm_gmtoff / 60) % (24 * 60);
		snprintf(tz, sizeof(tz), "%c%02d:%02d", off < 0 ? '-' : '+', (int)(labs(off) / 60),
			 (int)(labs(off) % 60));
	}
	return arena_printf(&b->a, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%s%s%s", d, d + 4, d + 6, d + 8,
			    n >= 12 ? d + 10 : "00", n >= 14 ? d + 12 : "00", k ? "." : "", frac, tz);
}

/* Percent-encode for a search value (token: system|value), with the
 * search escapes (\, \| \$ \\) FHIR puts before its own separators. */
static void qenc(struct buf *q, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == ',' || c == '|' || c == '$' || c == '\\')
			buf_addstr(q, "%5C");
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/')
			buf_addch(q, (char)c);
		else
			buf_addf(q, "%%%02X", c);
	}
}

/* SYS_PREFIX kind:name, the name percent-encoded where a URI may not
 * hold it (spaces and the like are common in namespaces). */
static const char *local_uri(struct mb *b, const char *kind, const char *name)
{
	struct buf u = BUF_INIT(0);
	const char *r;

	buf_addstr(&u, SYS_PREFIX);
	buf_addstr(&u, kind);
	buf_addch(&u, ':');
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (isalnum(*c) || strchr("-._~:/@!$&'()*+,;=", *c))
			buf_addch(&u, (char)*c);
		else
			buf_addf(&u, "%%%02X", *c);
	}
	r = arena_strdup(&b->a, buf_cstr(&u));
	buf_release(&u);
	return r;
}

/* ---- code systems ---- */

static const struct {
	const char *v2, *uri;
} code_systems[] = {
	{ "LN", "http://loinc.org" },
	{ "LOINC", "http://loinc.org" },
	{ "SCT", "http://snomed.info/sct" },
	{ "SNM", "http://snomed.info/sct" },
	{ "SNOMED", "http://snomed.info/sct" },
	{ "SNOMEDCT", "http://snomed.info/sct" },
	{ "I10", "http://hl7.org/fhir/sid/icd-10-cm" },
	{ "I10C", "http://hl7.org/fhir/sid/icd-10-cm" },
	{ "ICD10CM", "http://hl7.org/fhir/sid/icd-10-cm" },
	{ "ICD-10-CM", "http://hl7.org/fhir/sid/icd-10-cm" },
	{ "I10P", "http://www.cms.gov/Medicare/Coding/ICD10" },
	{ "ICD10PCS", "http://www.cms.gov/Medicare/Coding/ICD10" },
	{ "I9", "http://hl7.org/fhir/sid/icd-9-cm" },
	{ "I9C", "http://hl7.org/fhir/sid/icd-9-cm" },
	{ "C4", "http://www.ama-assn.org/go/cpt" },
	{ "CPT", "http://www.ama-assn.org/go/cpt" },
	{ "HCPCS", "urn:oid:2.16.840.1.113883.6.285" },
	{ "HPC", "urn:oid:2.16.840.1.113883.6.285" },
	{ "RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm" },
	{ "RXN", "http://www.nlm.nih.gov/research/umls/rxnorm" },
	{ "NDC", "http://hl7.org/fhir/sid/ndc" },
	{ "CVX", "http://hl7.org/fhir/sid/cvx" },
	{ "UCUM", "http://unitsofmeasure.org" },
	{ "ISO+", "urn:oid:2.16.840.1.113883.6.9" },
	{ "CDCREC", "urn:oid:2.16.840.1.113883.6.238" },
	{ "ISO3166_1", "urn:iso:std:iso:3166" },
	{ "ISO639", "urn:ietf:bcp:47" },
};

static const char *system_uri(struct mb *b, const char *v2)
{
	if (!*v2)
		return "";
	for (size_t i = 0; i < ARRAY_SIZE(code_systems); i++)
		if (strcasecmp(v2, code_systems[i].v2) == 0)
			return code_systems[i].uri;
	/* HL7nnnn / HL70nnn: an HL7 table */
	if (strncasecmp(v2, "HL7", 3) == 0 && strlen(v2) == 7 && isdigit((unsigned char)v2[3]))
		return arena_printf(&b->a, "http://terminology.hl7.org/CodeSystem/v2-%s", v2 + 3);
	if ((strncmp(v2, "urn:", 4) == 0 || strncmp(v2, "http", 4) == 0) && !strpbrk(v2, " \t"))
		return v2;
	return local_uri(b, "cs", v2);
}

/* CE/CWE/CNE: code^text^system^alt code^alt text^alt system -> CodeableConcept */
static json_object *concept(struct mb *b, struct hl7_span s)
{
	json_object *cc = json_object_new_object();
	const char *text = cval(b, s, 2);

	for (size_t k = 0; k < 2; k++) {
		const char *code = cval(b, s, 1 + 3 * k), *disp = cval(b, s, 2 + 3 * k);
		const char *sys = system_uri(b, cval(b, s, 3 + 3 * k));
		json_object *c;
		if (!*code)
			continue;
		c = json_object_new_object();
		put_str(c, "system", sys);
		put_str(c, "code", code);
		put_str(c, "display", disp);
		push(cc, "coding", c);
	}
	put_str(cc, "text", *text ? text : NULL);
	if (!json_get(cc, "coding") && !json_get(cc, "text")) {
		/* an old ST in a coded field: keep it as text */
		const char *all = sdup(b, s);
		put_str(cc, "text", all);
	}
	return nonempty(cc);
}

/* a coding in an HL7 table */
static json_object *table_concept(const char *table, const char *code, const char *display)
{
	json_object *cc, *c;
	char sys[96];

	if (!code || !*code)
		return NULL;
	snprintf(sys, sizeof(sys), "http://terminology.hl7.org/CodeSystem/%s", table);
	cc = json_object_new_object();
	c = json_object_new_object();
	put_str(c, "system", sys);
	put_str(c, "code", code);
	put_str(c, "display", display);
	push(cc, "coding", c);
	return cc;
}

/* A CodeableConcept with one coding of system (a full URI). */
static json_object *coded(const char *system, const char *code)
{
	json_object *cc = json_object_new_object(), *cd = json_object_new_object();

	put_str(cd, "system", system);
	put_str(cd, "code", code);
	push(cc, "coding", cd);
	return cc;
}

/* An Identifier, or NULL without a value. */
static json_object *ident(const char *system, const char *value)
{
	json_object *id;

	if (!value || !*value)
		return NULL;
	id = json_object_new_object();
	put_str(id, "system", system);
	put_str(id, "value", value);
	return id;
}

/* An object {"text": text}. */
static json_object *text_only(const char *text)
{
	json_object *t = json_object_new_object();

	put_str(t, "text", text);
	return t;
}

/* {"value": v}: a Quantity or Money without the rest. */
static json_object *valued(json_object *v)
{
	json_object *q = json_object_new_object();

	put(q, "value", v);
	return q;
}

/* t when it is an instant (a time with seconds and an offset), else NULL. */
static const char *instant_or_null(const char *t)
{
	return strlen(t) >= 20 ? t : NULL;
}

/* ---- identifiers, names, addresses, telecom ---- */

static bool oid_ok(const char *s)
{
	if (!isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
			return false;
	return true;
}

/* The system of an assigning authority (HD: namespace^universal id^type). */
static const char *hd_system(struct mb *b, struct hl7_span hd, char sep)
{
	const char *ns = sdup(b, hl7_piece(b->m, hd, sep, 1));
	const char *uid = sdup(b, hl7_piece(b->m, hd, sep, 2));
	const char *ty = sdup(b, hl7_piece(b->m, hd, sep, 3));

	if (*uid && strcasecmp(ty, "ISO") == 0 && oid_ok(uid))
		return arena_printf(&b->a, "urn:oid:%s", uid);
	if (*uid && strcasecmp(ty, "UUID") == 0 && strlen(uid) == 36 && !strpbrk(uid, " \t"))
		return arena_printf(&b->a, "urn:uuid:%s", uid);
	if (*uid && (strcasecmp(ty, "URI") == 0 || strcasecmp(ty, "URL") == 0) && !strpbrk(uid, " \t"))
		return uid;
	if (*ns)
		return local_uri(b, "authority", ns);
	if (*uid)
		return local_uri(b, "authority", uid);
	return "";
}

/* CX: id^check^scheme^authority(HD)^type^facility... -> Identifier */
static json_object *cx_ident(struct mb *b, struct hl7_span cx, const char **sys_out)
{
	const char *v = cval(b, cx, 1), *sys, *ty = cval(b, cx, 5);
	json_object *id;

	if (!*v)
		return NULL;
	sys = hd_system(b, cmp(b, cx, 4), b->m->d.sub);
	id = json_object_new_object();
	put(id, "type", table_concept("v2-0203", ty, NULL));
	put_str(id, "system", sys);
	put_str(id, "value", v);
	if (sys_out)
		*sys_out = sys;
	return id;
}

/* EI: id^namespace^universal id^type -> system */
static const char *ei_system(struct mb *b, struct hl7_span ei, const char *kind)
{
	struct hl7_span hd = { ei.off, ei.len };
	const char *ns = cval(b, ei, 2), *uid = cval(b, ei, 3), *ty = cval(b, ei, 4);

	(void)hd;
	if (*uid && strcasecmp(ty, "ISO") == 0 && oid_ok(uid))
		return arena_printf(&b->a, "urn:oid:%s", uid);
	return local_uri(b, kind, *ns ? ns : uid);
}

static const struct {
	const char *v2, *fhir;
} name_uses[] = {
	{ "L", "official" }, { "D", "usual" }, { "M", "maiden" }, { "A", "nickname" },
	{ "N", "nickname" }, { "C", "old" },   { "B", "old" },    { "T", "temp" },
};

/* XPN: family(FN: surname&...)^given^middle^suffix^prefix^degree^type */
static json_object *xpn_name(struct mb *b, struct hl7_span x)
{
	json_object *n = json_object_new_object();
	const char *use = cval(b, x, 7);

	put_str(n, "family", sdup(b, sub(b, cmp(b, x, 1), 1)));
	push(n, "given", jstr(cval(b, x, 2)));
	push(n, "given", jstr(cval(b, x, 3)));
	push(n, "prefix", jstr(cval(b, x, 5)));
	push(n, "suffix", jstr(cval(b, x, 4)));
	push(n, "suffix", jstr(cval(b, x, 6)));
	if (empty_obj(n)) {
		json_object_put(n);
		return NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(name_uses); i++)
		if (strcmp(use, name_uses[i].v2) == 0)
			put_str(n, "use", name_uses[i].fhir);
	return n;
}

static const struct {
	const char *v2, *fhir;
} addr_uses[] = { { "H", "home" }, { "B", "work" }, { "O", "work" }, { "C", "temp" }, { "M", "home" },
		  { "BA", "old" } };

/* XAD: street(SAD)^other^city^state^zip^country^type */
static json_object *xad_addr(struct mb *b, struct hl7_span x)
{
	json_object *a = json_object_new_object();
	const char *use = cval(b, x, 7);

	push(a, "line", jstr(sdup(b, sub(b, cmp(b, x, 1), 1))));
	push(a, "line", jstr(cval(b, x, 2)));
	put_str(a, "city", cval(b, x, 3));
	put_str(a, "state", cval(b, x, 4));
	put_str(a, "postalCode", cval(b, x, 5));
	put_str(a, "country", cval(b, x, 6));
	if (empty_obj(a)) {
		json_object_put(a);
		return NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(addr_uses); i++)
		if (strcmp(use, addr_uses[i].v2) == 0)
			put_str(a, "use", addr_uses[i].fhir);
	return a;
}

static const struct {
	const char *v2, *system;
} telecom_equip[] = { { "PH", "phone" }, { "CP", "phone" }, { "FX", "fax" }, { "Internet", "email" },
		      { "X.400", "email" }, { "BP", "pager" }, { "TDD", "other" }, { "TTY", "other" } };

/* XTN: [old number]^use^equipment^email^country^area^local^ext */
static json_object *xtn_contact(struct mb *b, struct hl7_span x, const char *dflt_use)
{
	json_object *c;
	const char *old = cval(b, x, 1), *use = cval(b, x, 2), *eq = cval(b, x, 3);
	const char *email = cval(b, x, 4), *area = cval(b, x, 6), *local = cval(b, x, 7);
	const char *ext = cval(b, x, 8), *system = "phone", *value;

	for (size_t i = 0; i < ARRAY_SIZE(telecom_equip); i++)
		if (strcmp(eq, telecom_equip[i].v2) == 0)
			system = telecom_equip[i].system;
	if (*email) {
		value = email;
		system = "email";
	} else if (*local) {
		value = arena_printf(&b->a, "%s%s%s%s%s", *area ? "(" : "", area, *area ? ") " : "", local,
				     *ext ? arena_printf(&b->a, " x%s", ext) : "");
	} else {
		value = old;
	}
	if (!value || !*value)
		return NULL;
	c = json_object_new_object();
	put_str(c, "system", system);
	put_str(c, "value", value);
	put_str(c, "use", strcmp(use, "WPN") == 0 ? "work" :
			  strcmp(eq, "CP") == 0 ? "mobile" :
			  strcmp(use, "PRN") == 0 || strcmp(use, "ORN") == 0 ? "home" : dflt_use);
	return c;
}

/* ---- bundle entries ---- */

static const char *new_url(struct mb *b)
{
	char id[ID_UUID_LEN + 1];

	id_new(id);
	return arena_printf(&b->a, "urn:uuid:%s", id);
}

static void add_entry(struct mb *b, const char *url, json_object *res, const char *method,
		      const char *req_url, const char *if_none_exist)
{
	json_object *en = json_object_new_object(), *rq = json_object_new_object();

	put_str(en, "fullUrl", url);
	put(en, "resource", res);
	put_str(rq, "method", method);
	put_str(rq, "url", req_url);
	put_str(rq, "ifNoneExist", if_none_exist);
	put(en, "request", rq);
	json_object_array_add(b->entries, en);
}

/* An entry made once per key in this message; NULL if the key is new. */
static const char *ref_of(struct mb *b, const char *key)
{
	for (size_t i = 0; i < b->nrefs; i++)
		if (strcmp(b->refs[i].key, key) == 0)
			return b->refs[i].url;
	return NULL;
}

static const char *remember(struct mb *b, const char *key)
{
	const char *url = new_url(b);

	if (b->nrefs < MAX_REFS) {
		snprintf(b->refs[b->nrefs].key, sizeof(b->refs[0].key), "%s", key);
		snprintf(b->refs[b->nrefs].url, sizeof(b->refs[0].url), "%s", url);
		b->nrefs++;
	}
	return url;
}

/* "identifier=system|value", percent-encoded */
static const char *ident_query(struct mb *b, const char *sys, const char *v)
{
	struct buf q = BUF_INIT(0);
	const char *r;

	buf_addstr(&q, "identifier=");
	qenc(&q, sys);
	buf_addstr(&q, "%7C");
	qenc(&q, v);
	r = arena_strdup(&b->a, buf_cstr(&q));
	buf_release(&q);
	return r;
}

/* PUT Type?identifier=sys|v (create or replace), or nothing if this message
 * already wrote that resource; returns its fullUrl. */
static const char *put_keyed(struct mb *b, const char *type, const char *sys, const char *v,
			     json_object *res)
{
	const char *key = arena_printf(&b->a, "%s|%s|%s", type, sys, v), *url = ref_of(b, key);
	json_object *id;

	if (url) {
		json_object_put(res);
		return url;
	}
	url = remember(b, key);
	id = json_object_new_object();
	put_str(id, "system", sys);
	put_str(id, "value", v);
	if (!json_get(res, "identifier"))
		push(res, "identifier", id);
	else
		json_object_put(id);
	add_entry(b, url, res, "PUT", arena_printf(&b->a, "%s?%s", type, ident_query(b, sys, v)), NULL);
	return url;
}

/* POST with ifNoneExist identifier=sys|v: found, or created as res. */
static const char *ensure_keyed(struct mb *b, const char *type, const char *sys, const char *v,
				json_object *res)
{
	const char *key = arena_printf(&b->a, "%s|%s|%s", type, sys, v), *url = ref_of(b, key);

	if (url) {
		json_object_put(res);
		return url;
	}
	url = remember(b, key);
	add_entry(b, url, res, "POST", type, ident_query(b, sys, v));
	return url;
}

static json_object *ref(const char *url, const char *display)
{
	json_object *r = json_object_new_object();

	put_str(r, "reference", url);
	put_str(r, "display", display);
	return r;
}

/* XCN: id^family^given^middle^suffix^prefix^degree^source^authority -> a
 * reference to the Practitioner (found or created by id), or a display-only
 * reference when there is no id (nothing made that could duplicate). */
static json_object *practitioner(struct mb *b, struct hl7_span x)
{
	const char *id = cval(b, x, 1), *fam = cval(b, x, 2), *giv = cval(b, x, 3), *sys, *url, *disp;
	json_object *p, *n;

	disp = arena_printf(&b->a, "%s%s%s", giv, *giv && *fam ? " " : "", fam);
	if (!*id)
		return *disp ? ref(NULL, disp) : NULL;
	sys = hd_system(b, cmp(b, x, 9), b->m->d.sub);
	if (!*sys)
		sys = SYS_PREFIX "practitioner";
	p = json_object_new_object();
	put_str(p, "resourceType", "Practitioner");
	push(p, "identifier", ident(sys, id));
	n = json_object_new_object();
	put_str(n, "family", fam);
	push(n, "given", jstr(giv));
	push(n, "prefix", jstr(cval(b, x, 6)));
	push(p, "name", nonempty(n));
	url = ensure_keyed(b, "Practitioner", sys, id, p);
	return ref(url, *disp ? disp : NULL);
}

/* ---- Patient (PID) ---- */

static const struct {
	const char *v2, *fhir;
} genders[] = { { "M", "male" }, { "F", "female" }, { "O", "other" }, { "A", "other" },
		{ "N", "other" }, { "U", "unknown" } };

static const struct {
	const char *v2, *code;
} race_omb[] = { { "1002-5", "American Indian or Alaska Native" },
		 { "2028-9", "Asian" },
		 { "2054-5", "Black or African American" },
		 { "2076-8", "Native Hawaiian or Other Pacific Islander" },
		 { "2106-3", "White" },
		 { "2131-1", "Other Race" } };

/* us-core-race / us-core-ethnicity from a CWE repetition list */
static json_object *omb_ext(struct mb *b, struct hl7_span f, bool race)
{
	json_object *ext = json_object_new_object();
	const char *text = NULL;

	put_str(ext, "url", race ? "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race" :
				   "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity");
	for (size_t r = 1; r <= nreps(b, f); r++) {
		struct hl7_span cw = rep(b, f, r);
		const char *code = cval(b, cw, 1), *disp = cval(b, cw, 2);
		json_object *e, *c;
		bool omb = !race ? (strcmp(code, "2135-2") == 0 || strcmp(code, "2186-5") == 0) : false;
		for (size_t i = 0; race && i < ARRAY_SIZE(race_omb); i++)
			if (strcmp(code, race_omb[i].v2) == 0) {
				omb = true;
				if (!*disp)
					disp = race_omb[i].code;
			}
		if (!*code)
			continue;
		if (!text)
			text = *disp ? disp : code;
		c = json_object_new_object();
		put_str(c, "system", "urn:oid:2.16.840.1.113883.6.238");
		put_str(c, "code", code);
		put_str(c, "display", disp);
		e = json_object_new_object();
		put_str(e, "url", omb ? "ombCategory" : "detailed");
		put(e, "valueCoding", c);
		push(ext, "extension", e);
	}
	if (!text) {
		json_object_put(ext);
		return NULL;
	}
	{
		json_object *t = json_object_new_object();
		put_str(t, "url", "text");
		put_str(t, "valueString", text);
		push(ext, "extension", t);
	}
	return ext;
}

/* A patient's key in a CX list (PID-3, MRG-1): the first repetition with a
 * value, type MR first. */
static int patient_key_field(struct mb *b, long seg, size_t field, const char **sys, const char **v)
{
	struct hl7_span f = fld(b, seg, field);

	*sys = *v = "";
	for (int pass = 0; pass < 2 && !**v; pass++) {
		for (size_t r = 1; r <= nreps(b, f); r++) {
			struct hl7_span cx = rep(b, f, r);
			if (!*cval(b, cx, 1) || (pass == 0 && strcmp(cval(b, cx, 5), "MR") != 0))
				continue;
			*v = cval(b, cx, 1);
			*sys = hd_system(b, cmp(b, cx, 4), b->m->d.sub);
			if (!**sys)
				*sys = SYS_PREFIX "mrn";
			break;
		}
	}
	if (!**v)
		return err_set(b->e, ERR_UNPROCESSABLE, "%s-%zu holds no patient identifier",
			       seg >= 0 ? b->m->segs[seg].id : "PID", field);
	return 0;
}

static int patient_key(struct mb *b, long pid, const char **sys, const char **v)
{
	return patient_key_field(b, pid, 3, sys, v);
}

static json_object *build_patient(struct mb *b, long pid)
{
	json_object *p = json_object_new_object();
	struct hl7_span f;
	const char *g = val(b, pid, 8, 1), *death, *dflag;

	put_str(p, "resourceType", "Patient");
	f = fld(b, pid, 3);
	for (size_t r = 1; r <= nreps(b, f); r++)
		push(p, "identifier", cx_ident(b, rep(b, f, r), NULL));
	push(p, "identifier", cx_ident(b, rep(b, fld(b, pid, 2), 1), NULL));
	if (*val(b, pid, 19, 1)) {
		json_object *ssn = json_object_new_object();
		put_str(ssn, "system", "http://hl7.org/fhir/sid/us-ssn");
		put_str(ssn, "value", val(b, pid, 19, 1));
		push(p, "identifier", ssn);
	}
	f = fld(b, pid, 5);
	for (size_t r = 1; r <= nreps(b, f); r++)
		push(p, "name", xpn_name(b, rep(b, f, r)));
	f = fld(b, pid, 13);
	for (size_t r = 1; r <= nreps(b, f); r++)
		push(p, "telecom", xtn_contact(b, rep(b, f, r), "home"));
	f = fld(b, pid, 14);
	for (size_t r = 1; r <= nreps(b, f); r++)
		push(p, "telecom", xtn_contact(b, rep(b, f, r), "work"));
	for (size_t i = 0; i < ARRAY_SIZE(genders); i++)
		if (strcmp(g, genders[i].v2) == 0)
			put_str(p, "gender", genders[i].fhir);
	put_str(p, "birthDate", fhir_dt(b, val(b, pid, 7, 1), true));
	death = fhir_dt(b, val(b, pid, 29, 1), false);
	dflag = val(b, pid, 30, 0);
	if (*death)
		put_str(p, "deceasedDateTime", death);
	else if (*dflag == 'Y' || *dflag == 'N')
		put(p, "deceasedBoolean", json_object_new_boolean(*dflag == 'Y'));
	f = fld(b, pid, 11);
	for (size_t r = 1; r <= nreps(b, f); r++)
		push(p, "address", xad_addr(b, rep(b, f, r)));
	if (*val(b, pid, 16, 1)) {
		json_object *ms = table_concept("v3-MaritalStatus", val(b, pid, 16, 1), NULL);
		put_str(ms, "text", val(b, pid, 16, 2));
		put(p, "maritalStatus", ms);
	}
	if (*val(b, pid, 15, 1)) {
		json_object *c = json_object_new_object();
		put(c, "language", concept(b, rep(b, fld(b, pid, 15), 1)));
		push(p, "communication", nonempty(c));
	}
	push(p, "extension", omb_ext(b, fld(b, pid, 10), true));
	push(p, "extension", omb_ext(b, fld(b, pid, 22), false));
	if (*val(b, pid, 6, 0)) {
		json_object *e = json_object_new_object();
		put_str(e, "url", "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName");
		put_str(e, "valueString", val(b, pid, 6, 1));
		push(p, "extension", e);
	}
	if (*val(b, pid, 24, 0) == 'Y' && *val(b, pid, 25, 0))
		put(p, "multipleBirthInteger", json_object_new_int(atoi(val(b, pid, 25, 0))));
	else if (*val(b, pid, 24, 0) == 'Y' || *val(b, pid, 24, 0) == 'N')
		put(p, "multipleBirthBoolean", json_object_new_boolean(*val(b, pid, 24, 0) == 'Y'));
	return p;
}

static int patient(struct mb *b)
{
	long pid = hl7_find_seg(b->m, "PID", 0, 1);
	const char *sys, *v;

	if (patient_key(b, pid, &sys, &v) < 0)
		return -1;
	b->patient_key = arena_printf(&b->a, "%s@%s", v, sys);
	if (b->ev->flags & MF_PATIENT_PUT)
		b->patient_url = put_keyed(b, "Patient", sys, v, build_patient(b, pid));
	else
		b->patient_url = ensure_keyed(b, "Patient", sys, v, build_patient(b, pid));
	return 0;
}

/* A key for resources the message has no identifier for: the patient's,
 * then the given parts. */
static const char *derived(struct mb *b, const char *a, const char *c)
{
	return arena_printf(&b->a, "%s:%s%s%s", b->patient_key, a, *c ? ":" : "", c);
}

/* ---- Encounter (PV1) ---- */

static const struct {
	const char *v2, *code, *display;
} classes[] = {
	{ "I", "IMP", "inpatient encounter" },  { "O", "AMB", "ambulatory" },
	{ "E", "EMER", "emergency" },           { "P", "PRENC", "pre-admission" },
	{ "R", "AMB", "ambulatory" },           { "B", "IMP", "inpatient encounter" },
	{ "C", "AMB", "ambulatory" },           { "N", "AMB", "ambulatory" },
	{ "U", "AMB", "ambulatory" },
};

static const struct {
	size_t field;
	const char *code, *display;
} participants[] = {
	{ 7, "ATND", "attender" }, { 8, "REF", "referrer" }, { 9, "CON", "consultant" },
	{ 17, "ADM", "admitter" },
};

/* PL: point of care^room^bed^facility(HD)^status^type^building^floor */
static json_object *location(struct mb *b, struct hl7_span pl, const char *status)
{
	json_object *l;
	const char *poc = cval(b, pl, 1), *room = cval(b, pl, 2), *bed = cval(b, pl, 3);
	const char *fac = sdup(b, sub(b, cmp(b, pl, 4), 1)), *disp;

	if (!*poc && !*room && !*bed && !*fac)
		return NULL;
	disp = arena_printf(&b->a, "%s%s%s%s%s%s%s", fac, *fac && *poc ? " " : "", poc,
			    *room ? " room " : "", room, *bed ? " bed " : "", bed);
	l = json_object_new_object();
	put(l, "location", ref(NULL, disp));
	put_str(l, "status", status);
	return l;
}

static const char *visit_system(struct mb *b, struct hl7_span cx)
{
	const char *s = hd_system(b, cmp(b, cx, 4), b->m->d.sub);
	return *s ? s : SYS_PREFIX "visit";
}

static json_object *build_encounter(struct mb *b, long pv1, const char *status)
{
	json_object *e = json_object_new_object(), *cls = NULL, *hosp;
	const char *c = val(b, pv1, 2, 1), *start = fhir_dt(b, val(b, pv1, 44, 1), false);
	const char *end = fhir_dt(b, val(b, pv1, 45, 1), false);

	put_str(e, "resourceType", "Encounter");
	put_str(e, "status", status);
	for (size_t i = 0; i < ARRAY_SIZE(classes); i++)
		if (strcmp(c, classes[i].v2) == 0) {
			cls = json_object_new_object();
			put_str(cls, "system", "http://terminology.hl7.org/CodeSystem/v3-ActCode");
			put_str(cls, "code", classes[i].code);
			put_str(cls, "display", classes[i].display);
		}
	if (!cls) {
		cls = json_object_new_object();
		put_str(cls, "system", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor");
		put_str(cls, "code", "UNK");
	}
	put(e, "class", cls);
	push(e, "type", table_concept("v2-0007", val(b, pv1, 4, 1), NULL));
	put(e, "serviceType", table_concept("v2-0069", val(b, pv1, 10, 1), NULL));
	put(e, "subject", ref(b->patient_url, NULL));
	for (size_t i = 0; i < ARRAY_SIZE(participants); i++) {
		struct hl7_span f = fld(b, pv1, participants[i].field);
		for (size_t r = 1; r <= nreps(b, f); r++) {
			json_object *who = practitioner(b, rep(b, f, r)), *p, *t, *cd;
			if (!who)
				continue;
			p = json_object_new_object();
			t = json_object_new_object();
			cd = json_object_new_object();
			put_str(cd, "system", "http://terminology.hl7.org/CodeSystem/v3-ParticipationType");
			put_str(cd, "code", participants[i].code);
			put_str(cd, "display", participants[i].display);
			push(t, "coding", cd);
			push(p, "type", t);
			put(p, "individual", who);
			push(e, "participant", p);
		}
	}
	if (*start || *end) {
		json_object *per = json_object_new_object();
		put_str(per, "start", start);
		if (strcmp(status, "finished") == 0 || strcmp(status, "cancelled") == 0)
			put_str(per, "end", end);
		put(e, "period", per);
	}
	hosp = json_object_new_object();
	put(hosp, "admitSource", table_concept("v2-0023", val(b, pv1, 14, 1), NULL));
	if (strcmp(status, "finished") == 0)
		put(hosp, "dischargeDisposition", table_concept("v2-0112", val(b, pv1, 36, 1), NULL));
	put(hosp, "reAdmission", table_concept("v2-0092", val(b, pv1, 13, 1), NULL));
	put(e, "hospitalization", nonempty(hosp));
	push(e, "location", location(b, fld(b, pv1, 3), strcmp(status, "finished") == 0 ? "completed" : "active"));
	if (b->ev->flags & MF_TRANSFER)
		push(e, "location", location(b, fld(b, pv1, 6), "completed"));
	return e;
}

static int encounter(struct mb *b)
{
	long pv1 = hl7_find_seg(b->m, "PV1", 0, 1);
	struct hl7_span vn;
	const char *status = b->ev->enc_status, *sys, *v;
	bool put_it = (b->ev->flags & MF_ENCOUNTER) != 0;

	b->visit_key = "";
	if (pv1 < 0)
		return 0;
	if (!status)
		status = *val(b, pv1, 45, 1) ? "finished" : "in-progress";
	vn = rep(b, fld(b, pv1, 19), 1);
	v = cval(b, vn, 1);
	sys = visit_system(b, vn);
	if (!*v) {
		/* no visit number: the admit time names the visit, if there is one */
		const char *adm = val(b, pv1, 44, 1);
		if (!*adm)
			return 0;
		v = derived(b, "admit", adm);
		sys = SYS_PREFIX "visit";
	}
	b->visit_key = arena_printf(&b->a, "%s@%s", v, sys);
	if (put_it) {
		b->encounter_url = put_keyed(b, "Encounter", sys, v, build_encounter(b, pv1, status));
	} else {
		/* a result or note for a visit the ADT feed has not told of yet:
		 * made as "unknown", and replaced when its ADT comes */
		json_object *e = build_encounter(b, pv1, "unknown");
		json_object *id = json_object_new_object();
		put_str(id, "system", sys);
		put_str(id, "value", v);
		push(e, "identifier", id);
		b->encounter_url = ensure_keyed(b, "Encounter", sys, v, e);
	}
	return 0;
}

/* ---- ADT attachments: NK1, IN1, AL1, DG1, PR1 ---- */

static void subject(struct mb *b, json_object *r, const char *key)
{
	put(r, key, ref(b->patient_url, NULL));
}

static void in_encounter(struct mb *b, json_object *r, const char *key)
{
	if (b->encounter_url)
		put(r, key, ref(b->encounter_url, NULL));
}

static int related_persons(struct mb *b)
{
	for (size_t k = 1;; k++) {
		long s = hl7_find_seg(b->m, "NK1", 0, k);
		json_object *rp;
		struct hl7_span f;
		const char *setid;

		if (s < 0)
			return 0;
		rp = json_object_new_object();
		put_str(rp, "resourceType", "RelatedPerson");
		subject(b, rp, "patient");
		put(rp, "active", json_object_new_boolean(1));
		f = fld(b, s, 2);
		for (size_t r = 1; r <= nreps(b, f); r++)
			push(rp, "name", xpn_name(b, rep(b, f, r)));
		push(rp, "relationship", concept(b, rep(b, fld(b, s, 3), 1)));
		f = fld(b, s, 4);
		for (size_t r = 1; r <= nreps(b, f); r++)
			push(rp, "address", xad_addr(b, rep(b, f, r)));
		f = fld(b, s, 5);
		for (size_t r = 1; r <= nreps(b, f); r++)
			push(rp, "telecom", xtn_contact(b, rep(b, f, r), "home"));
		f = fld(b, s, 6);
		for (size_t r = 1; r <= nreps(b, f); r++)
			push(rp, "telecom", xtn_contact(b, rep(b, f, r), "work"));
		setid = val(b, s, 1, 0);
		put_keyed(b, "RelatedPerson", SYS_PREFIX "nk1", derived(b, "nk1", *setid ? setid : "1"), rp);
	}
}

static const struct {
	const char *v2, *fhir;
} relationships[] = { { "SEL", "self" }, { "SPO", "spouse" }, { "CHD", "child" }, { "DEP", "child" },
		      { "EME", "other" },   { "OTH", "other" },   { "01", "self" },   { "02", "spouse" },
		      { "03", "child" },    { "18", "self" } };

static int coverages(struct mb *b)
{
	for (size_t k = 1;; k++) {
		long s = hl7_find_seg(b->m, "IN1", 0, k);
		json_object *c, *payor = NULL;
		const char *policy, *plan, *company, *rel;
		struct hl7_span cid;

		if (s < 0)
			return 0;
		c = json_object_new_object();
		put_str(c, "resourceType", "Coverage");
		put_str(c, "status", "active");
		subject(b, c, "beneficiary");
		policy = val(b, s, 36, 1);
		plan = val(b, s, 2, 1);
		company = val(b, s, 4, 1);
		put_str(c, "subscriberId", policy);
		rel = val(b, s, 17, 1);
		for (size_t i = 0; i < ARRAY_SIZE(relationships); i++)
			if (strcmp(rel, relationships[i].v2) == 0)
				put(c, "relationship",
				    coded("http://terminology.hl7.org/CodeSystem/subscriber-relationship",
					  relationships[i].fhir));
		{
			const char *st = fhir_dt(b, val(b, s, 12, 1), true), *en = fhir_dt(b, val(b, s, 13, 1), true);
			if (*st || *en) {
				json_object *p = json_object_new_object();
				put_str(p, "start", st);
				put_str(p, "end", en);
				put(c, "period", p);
			}
		}
		if (*plan || *val(b, s, 8, 1)) {
			static const struct {
				size_t value_field, name_field;
				const char *type;
			} classes_tab[] = { { 8, 9, "group" }, { 2, 0, "plan" } };
			for (size_t i = 0; i < ARRAY_SIZE(classes_tab); i++) {
				const char *v = val(b, s, classes_tab[i].value_field, 1);
				json_object *cl;
				if (!*v)
					continue;
				cl = json_object_new_object();
				put(cl, "type", coded("http://terminology.hl7.org/CodeSystem/coverage-class",
						      classes_tab[i].type));
				put_str(cl, "value", v);
				if (classes_tab[i].name_field)
					put_str(cl, "name", val(b, s, classes_tab[i].name_field, 1));
				push(c, "class", cl);
			}
		}
		/* the payor: an Organization found or made by IN1-3, else by name only */
		cid = rep(b, fld(b, s, 3), 1);
		if (*cval(b, cid, 1)) {
			const char *sys = hd_system(b, cmp(b, cid, 4), b->m->d.sub), *url;
			json_object *o = json_object_new_object(), *id = json_object_new_object();
			if (!*sys)
				sys = SYS_PREFIX "payor";
			put_str(o, "resourceType", "Organization");
			put_str(id, "system", sys);
			put_str(id, "value", cval(b, cid, 1));
			push(o, "identifier", id);
			put_str(o, "name", company);
			url = ensure_keyed(b, "Organization", sys, cval(b, cid, 1), o);
			payor = ref(url, *company ? company : NULL);
		} else {
			payor = ref(NULL, *company ? company : "unknown payor");
		}
		push(c, "payor", payor);
		put_keyed(b, "Coverage", SYS_PREFIX "in1",
			  derived(b, "in1", arena_printf(&b->a, "%s:%s", plan, *policy ? policy : val(b, s, 1, 0))),
			  c);
	}
}

static const struct {
	const char *v2, *category;
} allergy_types[] = { { "DA", "medication" }, { "FA", "food" }, { "EA", "environment" },
		      { "MA", "environment" }, { "AA", "environment" }, { "PA", "environment" },
		      { "LA", "environment" } };

static const struct {
	const char *v2, *criticality;
} allergy_sev[] = { { "SV", "high" }, { "MO", "low" }, { "MI", "low" }, { "U", "unable-to-assess" } };

static int allergies(struct mb *b)
{
	for (size_t k = 1;; k++) {
		long s = hl7_find_seg(b->m, "AL1", 0, k);
		json_object *a, *code;
		const char *t, *sv, *key;

		if (s < 0)
			return 0;
		code = concept(b, rep(b, fld(b, s, 3), 1));
		if (!code)
			continue; /* nothing to say what it is */
		a = json_object_new_object();
		put_str(a, "resourceType", "AllergyIntolerance");
		put(a, "clinicalStatus",
		    coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"));
		put(a, "code", code);
		subject(b, a, "patient");
		t = val(b, s, 2, 1);
		for (size_t i = 0; i < ARRAY_SIZE(allergy_types); i++)
			if (strcmp(t, allergy_types[i].v2) == 0)
				push(a, "category", jstr(allergy_types[i].category));
		sv = val(b, s, 4, 1);
		for (size_t i = 0; i < ARRAY_SIZE(allergy_sev); i++)
			if (strcmp(sv, allergy_sev[i].v2) == 0)
				put_str(a, "criticality", allergy_sev[i].criticality);
		put_str(a, "onsetDateTime", fhir_dt(b, val(b, s, 6, 1), false));
		{
			struct hl7_span f = fld(b, s, 5);
			json_object *rx = json_object_new_object();
			for (size_t r = 1; r <= nreps(b, f); r++) {
				json_object *cc = json_object_new_object();
				put_str(cc, "text", sdup(b, rep(b, f, r)));
				push(rx, "manifestation", nonempty(cc));
			}
			push(a, "reaction", nonempty(rx));
		}
		key = *val(b, s, 3, 1) ? val(b, s, 3, 1) : val(b, s, 3, 2);
		put_keyed(b, "AllergyIntolerance", SYS_PREFIX "al1", derived(b, "al1", key), a);
	}
}

static const struct {
	const char *v2, *verification, *role;
} dx_types[] = { { "A", "provisional", "AD" }, { "W", "provisional", "AD" }, { "F", "confirmed", "DD" } };

static int conditions(struct mb *b, json_object *enc_diag)
{
	for (size_t k = 1;; k++) {
		long s = hl7_find_seg(b->m, "DG1", 0, k);
		json_object *c, *code;
		const char *ty, *url, *id, *role = NULL;

		if (s < 0)
			return 0;
		code = concept(b, rep(b, fld(b, s, 3), 1));
		if (!code && *val(b, s, 4, 0)) {
			code = json_object_new_object();
			put_str(code, "text", val(b, s, 4, 0));
		}
		if (!code)
			continue;
		c = json_object_new_object();
		put_str(c, "resourceType", "Condition");
		push(c, "category", table_concept("condition-category", "encounter-diagnosis", "Encounter Diagnosis"));
		ty = val(b, s, 6, 1);
		for (size_t i = 0; i < ARRAY_SIZE(dx_types); i++)
			if (strcmp(ty, dx_types[i].v2) == 0) {
				put(c, "verificationStatus",
				    table_concept("condition-ver-status", dx_types[i].verification, NULL));
				role = dx_types[i].role;
			}
		put(c, "code", code);
		subject(b, c, "subject");
		in_encounter(b, c, "encounter");
		put_str(c, "recordedDate", fhir_dt(b, val(b, s, 5, 1), false));
		{
			json_object *who = practitioner(b, rep(b, fld(b, s, 16), 1));
			put(c, "recorder", who && json_get(who, "reference") ? who : NULL);
			if (who && !json_get(who, "reference"))
				json_object_put(who);
		}
		id = val(b, s, 20, 1);
		url = put_keyed(b, "Condition", *id ? ei_system(b, rep(b, fld(b, s, 20), 1), "dg1") : SYS_PREFIX "dg1",
				*id ? id : derived(b, b->visit_key, arena_printf(&b->a, "%s:%s", val(b, s, 3, 1), ty)), c);
		if (enc_diag) {
			json_object *d = json_object_new_object();
			put(d, "condition", ref(url, NULL));
			put(d, "use", table_concept("diagnosis-role", role, NULL));
			if (*val(b, s, 15, 0))
				put(d, "rank", json_object_new_int(atoi(val(b, s, 15, 0)) > 0 ? atoi(val(b, s, 15, 0)) : 1));
			json_object_array_add(enc_diag, d);
		}
	}
}

static int procedures(struct mb *b)
{
	for (size_t k = 1;; k++) {
		long s = hl7_find_seg(b->m, "PR1", 0, k);
		json_object *p, *code;
		const char *id, *when;

		if (s < 0)
			return 0;
		code = concept(b, rep(b, fld(b, s, 3), 1));
		if (!code)
			continue;
		p = json_object_new_object();
		put_str(p, "resourceType", "Procedure");
		put_str(p, "status", "completed");
		put(p, "code", code);
		subject(b, p, "subject");
		in_encounter(b, p, "encounter");
		when = fhir_dt(b, val(b, s, 5, 1), false);
		put_str(p, "performedDateTime", when);
		{
			static const size_t who_fields[] = { 11, 8 };
			for (size_t i = 0; i < ARRAY_SIZE(who_fields); i++) {
				struct hl7_span f = fld(b, s, who_fields[i]);
				for (size_t r = 1; r <= nreps(b, f); r++) {
					json_object *who = practitioner(b, rep(b, f, r)), *pf;
					if (!who)
						continue;
					pf = json_object_new_object();
					put(pf, "actor", who);
					push(p, "performer", pf);
				}
			}
		}
		id = val(b, s, 19, 1);
		put_keyed(b, "Procedure", *id ? ei_system(b, rep(b, fld(b, s, 19), 1), "pr1") : SYS_PREFIX "pr1",
			  *id ? id : derived(b, b->visit_key, arena_printf(&b->a, "%s:%s", val(b, s, 3, 1), when)), p);
	}
}

static int build_adt(struct mb *b)
{
	json_object *diag = json_object_new_array();
	int rc = -1;

	if (patient(b) < 0 || encounter(b) < 0)
		goto out;
	if (related_persons(b) < 0 || coverages(b) < 0 || allergies(b) < 0 ||
	    conditions(b, b->encounter_url ? diag : NULL) < 0 || procedures(b) < 0)
		goto out;
	/* the visit's diagnoses, ranked, on the Encounter */
	if (b->encounter_url && json_object_array_length(diag)) {
		for (size_t i = 0; i < json_object_array_length(b->entries); i++) {
			json_object *en = json_object_array_get_idx(b->entries, i);
			if (json_is_str(json_get(en, "fullUrl"), b->encounter_url) &&
			    json_is_str(json_get(json_get(en, "request"), "method"), "PUT")) {
				put(json_get(en, "resource"), "diagnosis", json_object_get(diag));
				break;
			}
		}
	}
	rc = 0;
out:
	json_object_put(diag);
	return rc;
}

/* ---- ORU: DiagnosticReport and Observations ---- */

static const struct {
	const char *v2, *fhir;
} obs_status[] = { { "F", "final" },       { "C", "corrected" },    { "P", "preliminary" },
		   { "R", "preliminary" }, { "I", "registered" },   { "S", "preliminary" },
		   { "X", "cancelled" },   { "D", "entered-in-error" }, { "W", "entered-in-error" },
		   { "A", "amended" },     { "U", "final" } };

static const struct {
	const char *v2, *fhir;
} report_status[] = { { "F", "final" },       { "C", "corrected" }, { "P", "preliminary" },
		      { "R", "registered" },  { "I", "registered" }, { "O", "registered" },
		      { "S", "partial" },     { "A", "partial" },   { "X", "cancelled" },
		      { "Y", "unknown" },     { "Z", "unknown" } };

static const char *lookup(const char *v, const char *dflt, const void *tab, size_t n, size_t stride)
{
	for (size_t i = 0; i < n; i++) {
		const char *const *row = (const char *const *)((const char *)tab + i * stride);
		if (strcmp(v, row[0]) == 0)
			return row[1];
	}
	return dflt;
}
#define LOOKUP(v, dflt, tab) lookup((v), (dflt), (tab), ARRAY_SIZE(tab), sizeof((tab)[0]))

/* value[x] by OBX-2 value type: a table of setters */
typedef void (*value_fn)(struct mb *b, json_object *o, long obx, struct hl7_span v);

static void v_quantity(struct mb *b, json_object *o, long obx, struct hl7_span v)
{
	json_object *q = json_object_new_object(), *d = jdecimal(b, sdup(b, v));
	struct hl7_span u = rep(b, fld(b, obx, 6), 1);
	const char *unit = cval(b, u, 1), *usys = cval(b, u, 3);

	if (!d) {
		json_object_put(q);
		put_str(o, "valueString", sdup(b, v));
		return;
	}
	put(q, "value", d);
	put_str(q, "unit", *cval(b, u, 2) ? cval(b, u, 2) : unit);
	if (*unit && (!*usys || strcasecmp(usys, "UCUM") == 0 || strcasecmp(usys, "ISO+") == 0)) {
		put_str(q, "system", "http://unitsofmeasure.org");
		put_str(q, "code", unit);
	}
	put(o, "valueQuantity", q);
}

static void v_string(struct mb *b, json_object *o, long obx, struct hl7_span v)
{
	(void)obx;
	put_str(o, "valueString", sdup(b, v));
}

static void v_concept(struct mb *b, json_object *o, long obx, struct hl7_span v)
{
	(void)obx;
	put(o, "valueCodeableConcept", concept(b, v));
}

static void v_datetime(struct mb *b, json_object *o, long obx, struct hl7_span v)
{
	const char *d = fhir_dt(b, cval(b, v, 1), false);

	(void)obx;
	if (*d)
		put_str(o, "valueDateTime", d);
	else
		put_str(o, "valueString", sdup(b, v));
}

/* SN: comparator^num1^separator^num2: "<^5", "^10^-^20", "^1^:^128" */
static void v_structured(struct mb *b, json_object *o, long obx, struct hl7_span v)
{
	const char *cmpv = cval(b, v, 1), *n1 = cval(b, v, 2), *sep = cval(b, v, 3), *n2 = cval(b, v, 4);
	struct hl7_span u = rep(b, fld(b, obx, 6), 1);
	const char *unit = cval(b, u, 1);

	if (!*sep && *n1) {
		json_object *q = json_object_new_object(), *d = jdecimal(b, n1);
		if (!d) {
			json_object_put(q);
			goto text;
		}
		put(q, "value", d);
		if (strcmp(cmpv, "<") == 0 || strcmp(cmpv, "<=") == 0 || strcmp(cmpv, ">") == 0 ||
		    strcmp(cmpv, ">=") == 0)
			put_str(q, "comparator", cmpv);
		put_str(q, "unit", unit);
		if (*unit) {
			put_str(q, "system", "http://unitsofmeasure.org");
			put_str(q, "code", unit);
		}
		put(o, "valueQuantity", q);
		return;
	}
	if ((strcmp(sep, "-") == 0 || strcmp(sep, ":") == 0 || strcmp(sep, "/") == 0) && *n1 && *n2) {
		json_object *d1 = jdecimal(b, n1), *d2 = jdecimal(b, n2), *r = json_object_new_object();
		json_object *lo = json_object_new_object(), *hi = json_object_new_object();
		if (!d1 || !d2) {
			json_object_put(d1);
			json_object_put(d2);
			json_object_put(r);
			json_object_put(lo);
			json_object_put(hi);
			goto text;
		}
		put(lo, "value", d1);
		put(hi, "value", d2);
		put(r, strcmp(sep, "-") == 0 ? "low" : "numerator", lo);
		put(r, strcmp(sep, "-") == 0 ? "high" : "denominator", hi);
		put(o, strcmp(sep, "-") == 0 ? "valueRange" : "valueRatio", r);
		return;
	}
text:
	put_str(o, "valueString", arena_printf(&b->a, "%s%s%s%s", cmpv, n1, sep, n2));
}

static const struct {
	const char *type;
	value_fn fn;
} value_types[] = {
	{ "NM", v_quantity }, { "ST", v_string },   { "TX", v_string },   { "FT", v_string },
	{ "CE", v_concept },  { "CWE", v_concept }, { "CNE", v_concept }, { "CF", v_concept },
	{ "SN", v_structured }, { "DT", v_datetime }, { "TS", v_datetime }, { "DTM", v_datetime },
	{ "TM", v_string },   { "ID", v_string },   { "IS", v_string },
};

static bool value_fn_is_text(value_fn f)
{
	return f == v_string;
}

/* OBX-7 "3.9-6.1", "<5", ">=10", or text */
static json_object *ref_range(struct mb *b, const char *r)
{
	json_object *rr;
	const char *dash;

	if (!*r)
		return NULL;
	rr = json_object_new_object();
	dash = strchr(r + 1, '-');
	if (dash && is_decimal(b, arena_strndup(&b->a, r, (size_t)(dash - r)))) {
		json_object *lo = json_object_new_object(), *hi = json_object_new_object();
		json_object *dl = jdecimal(b, arena_strndup(&b->a, r, (size_t)(dash - r))), *dh = jdecimal(b, dash + 1);
		if (dl && dh) {
			put(lo, "value", dl);
			put(hi, "value", dh);
			put(rr, "low", lo);
			put(rr, "high", hi);
		} else {
			json_object_put(dl);
			json_object_put(dh);
			json_object_put(lo);
			json_object_put(hi);
		}
	} else if ((r[0] == '<' || r[0] == '>') && is_decimal(b, r + 1 + (r[1] == '='))) {
		json_object *q = json_object_new_object();
		put(q, "value", jdecimal(b, r + 1 + (r[1] == '=')));
		put(rr, r[0] == '<' ? "high" : "low", q);
	}
	put_str(rr, "text", r);
	return rr;
}

static void notes_after(struct mb *b, long seg, json_object *o)
{
	for (long s = seg + 1; s < (long)b->m->nsegs && strcmp(b->m->segs[s].id, "NTE") == 0; s++) {
		struct hl7_span f = fld(b, s, 3);
		for (size_t r = 1; r <= nreps(b, f); r++) {
			const char *t = sdup(b, rep(b, f, r));
			if (*t) {
				json_object *n = json_object_new_object();
				put_str(n, "text", t);
				push(o, "note", n);
			}
		}
	}
}

/* The observations of one OBR (its OBX segments up to the next OBR). */
static int observations(struct mb *b, long obr, const char *report_key, json_object *report,
			const char *category)
{
	const char *eff = fhir_dt(b, val(b, obr, 7, 1), false);

	for (long s = obr + 1; s < (long)b->m->nsegs && strcmp(b->m->segs[s].id, "OBR") != 0; s++) {
		json_object *o, *code;
		const char *vt, *st, *when, *url;
		struct hl7_span vf;
		bool set = false;

		if (strcmp(b->m->segs[s].id, "OBX") != 0)
			continue;
		code = concept(b, rep(b, fld(b, s, 3), 1));
		if (!code)
			continue;
		o = json_object_new_object();
		put_str(o, "resourceType", "Observation");
		st = LOOKUP(val(b, s, 11, 1), "final", obs_status);
		put_str(o, "status", st);
		push(o, "category", table_concept("observation-category", category, NULL));
		put(o, "code", code);
		subject(b, o, "subject");
		in_encounter(b, o, "encounter");
		when = fhir_dt(b, val(b, s, 14, 1), false);
		put_str(o, "effectiveDateTime", *when ? when : eff);
		vt = val(b, s, 2, 1);
		vf = fld(b, s, 5);
		if (vf.len && !hl7_is_null(b->m, vf)) {
			for (size_t i = 0; i < ARRAY_SIZE(value_types); i++)
				if (strcmp(vt, value_types[i].type) == 0) {
					/* repeated TX/FT values are lines of one text */
					if (nreps(b, vf) > 1 && value_fn_is_text(value_types[i].fn)) {
						struct buf t = BUF_INIT(0);
						for (size_t r = 1; r <= nreps(b, vf); r++) {
							if (r > 1)
								buf_addch(&t, '\n');
							buf_addstr(&t, sdup(b, rep(b, vf, r)));
						}
						put_str(o, "valueString", buf_cstr(&t));
						buf_release(&t);
					} else {
						value_types[i].fn(b, o, s, rep(b, vf, 1));
					}
					set = true;
				}
			if (!set)
				put_str(o, "valueString", sdup(b, vf));
		}
		{
			struct hl7_span f = fld(b, s, 8);
			for (size_t r = 1; r <= nreps(b, f); r++) {
				const char *ab = sdup(b, rep(b, f, r));
				if (*ab)
					push(o, "interpretation",
					     table_concept("v3-ObservationInterpretation", ab, NULL));
			}
		}
		push(o, "referenceRange", ref_range(b, val(b, s, 7, 0)));
		{
			struct hl7_span f = fld(b, s, 16);
			for (size_t r = 1; r <= nreps(b, f); r++)
				push(o, "performer", practitioner(b, rep(b, f, r)));
		}
		notes_after(b, s, o);
		url = put_keyed(b, "Observation", SYS_PREFIX "obx",
				arena_printf(&b->a, "%s:%s%s%s", report_key, val(b, s, 1, 0),
					     *val(b, s, 4, 0) ? "." : "", val(b, s, 4, 0)),
				o);
		if (report)
			push(report, "result", ref(url, NULL));
	}
	return 0;
}

/* The order's identifier: filler (OBR-3 / ORC-3), else placer (OBR-2 / ORC-2). */
static int order_key(struct mb *b, long obr, long orc, const char **sys, const char **v)
{
	static const struct {
		int seg;         /* 0 OBR, 1 ORC */
		size_t field;
		const char *kind;
	} keys[] = { { 0, 3, "filler" }, { 1, 3, "filler" }, { 0, 2, "placer" }, { 1, 2, "placer" } };

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		long s = keys[i].seg ? orc : obr;
		struct hl7_span ei = rep(b, fld(b, s, keys[i].field), 1);
		if (s >= 0 && *cval(b, ei, 1)) {
			*v = cval(b, ei, 1);
			*sys = ei_system(b, ei, keys[i].kind);
			return 0;
		}
	}
	*sys = SYS_PREFIX "order";
	*v = derived(b, val(b, obr, 4, 1), val(b, obr, 7, 1));
	return 0;
}

static int build_oru(struct mb *b)
{
	if (patient(b) < 0 || encounter(b) < 0)
		return -1;
	for (size_t k = 1;; k++) {
		long obr = hl7_find_seg(b->m, "OBR", 0, k), orc;
		json_object *r;
		const char *sys, *v, *cat, *st;

		if (obr < 0)
			return 0;
		orc = obr > 0 && strcmp(b->m->segs[obr - 1].id, "ORC") == 0 ? obr - 1 : -1;
		order_key(b, obr, orc, &sys, &v);
		r = json_object_new_object();
		put_str(r, "resourceType", "DiagnosticReport");
		st = LOOKUP(val(b, obr, 25, 1), "final", report_status);
		put_str(r, "status", st);
		cat = *val(b, obr, 24, 1) ? val(b, obr, 24, 1) : "LAB";
		push(r, "category", table_concept("v2-0074", cat, NULL));
		put(r, "code", concept(b, rep(b, fld(b, obr, 4), 1)));
		if (!json_get(r, "code"))
			put(r, "code", text_only("unspecified"));
		subject(b, r, "subject");
		in_encounter(b, r, "encounter");
		put_str(r, "effectiveDateTime", fhir_dt(b, val(b, obr, 7, 1), false));
		put_str(r, "issued", instant_or_null(fhir_dt(b, val(b, obr, 22, 1), false)));
		{
			json_object *who = practitioner(b, rep(b, fld(b, obr, 32), 1));
			push(r, "resultsInterpreter", who);
		}
		observations(b, obr, arena_printf(&b->a, "%s@%s", v, sys), r, "laboratory");
		put_keyed(b, "DiagnosticReport", sys, v, r);
	}
}

/* ---- ORM / OML: ServiceRequest ---- */

static const struct {
	const char *v2, *fhir;
} order_control[] = { { "NW", "active" },  { "XO", "active" },     { "SC", "active" },
		      { "CA", "revoked" }, { "DC", "revoked" },    { "OC", "revoked" },
		      { "CR", "revoked" }, { "HD", "on-hold" },    { "RL", "active" },
		      { "OD", "revoked" }, { "RP", "active" },     { "CM", "completed" } };

static const struct {
	const char *v2, *fhir;
} priorities[] = { { "S", "stat" }, { "A", "asap" }, { "R", "routine" }, { "P", "urgent" },
		   { "T", "urgent" } };

static int build_order(struct mb *b)
{
	if (patient(b) < 0 || encounter(b) < 0)
		return -1;
	for (size_t k = 1;; k++) {
		long orc = hl7_find_seg(b->m, "ORC", 0, k), obr = -1;
		json_object *sr;
		const char *sys, *v, *pr;

		if (orc < 0)
			return 0;
		for (long s = orc + 1; s < (long)b->m->nsegs && strcmp(b->m->segs[s].id, "ORC") != 0; s++)
			if (strcmp(b->m->segs[s].id, "OBR") == 0) {
				obr = s;
				break;
			}
		order_key(b, obr, orc, &sys, &v);
		sr = json_object_new_object();
		put_str(sr, "resourceType", "ServiceRequest");
		put_str(sr, "status", LOOKUP(val(b, orc, 1, 1), "active", order_control));
		put_str(sr, "intent", "order");
		if (obr >= 0)
			put(sr, "code", concept(b, rep(b, fld(b, obr, 4), 1)));
		subject(b, sr, "subject");
		in_encounter(b, sr, "encounter");
		put_str(sr, "authoredOn", fhir_dt(b, val(b, orc, 9, 1), false));
		{
			json_object *who = practitioner(b, rep(b, fld(b, orc, 12), 1));
			if (!who && obr >= 0)
				who = practitioner(b, rep(b, fld(b, obr, 16), 1));
			put(sr, "requester", who);
		}
		pr = obr >= 0 ? val(b, obr, 27, 6) : "";
		if (!*pr)
			pr = val(b, orc, 7, 6);
		if (*pr)
			put_str(sr, "priority", LOOKUP(pr, "routine", priorities));
		{
			json_object *id = json_object_new_object();
			put(id, "type", table_concept("v2-0203", strstr(sys, ":filler:") ? "FILL" : "PLAC", NULL));
			put_str(id, "system", sys);
			put_str(id, "value", v);
			push(sr, "identifier", id);
		}
		if (obr >= 0)
			notes_after(b, obr, sr);
		put_keyed(b, "ServiceRequest", sys, v, sr);
	}
}

/* ---- MDM: DocumentReference ---- */

static const struct {
	const char *v2, *doc_status;
} completion[] = { { "AU", "final" },       { "LA", "final" },       { "DI", "preliminary" },
		   { "DO", "preliminary" }, { "IP", "preliminary" }, { "IN", "preliminary" },
		   { "PA", "preliminary" } };

static int build_mdm(struct mb *b)
{
	long txa = hl7_find_seg(b->m, "TXA", 0, 1);
	json_object *d, *att, *content;
	struct buf text = BUF_INIT(0);
	const char *docno, *sys, *cs, *parent, *ctype = "text/plain; charset=utf-8";
	bool binary = false;

	if (patient(b) < 0 || encounter(b) < 0)
		return -1;
	d = json_object_new_object();
	put_str(d, "resourceType", "DocumentReference");
	put_str(d, "status", "current");
	cs = val(b, txa, 17, 1);
	put_str(d, "docStatus", LOOKUP(cs, "preliminary", completion));
	put(d, "type", concept(b, rep(b, fld(b, txa, 2), 1)));
	if (!json_get(d, "type"))
		put(d, "type", table_concept("v2-0270", val(b, txa, 2, 0), NULL));
	subject(b, d, "subject");
	put_str(d, "date", instant_or_null(fhir_dt(b, *val(b, txa, 4, 1) ? val(b, txa, 4, 1) : val(b, txa, 6, 1),
						   false)));
	{
		static const size_t author_fields[] = { 9, 5 };
		for (size_t i = 0; i < ARRAY_SIZE(author_fields); i++) {
			struct hl7_span f = fld(b, txa, author_fields[i]);
			for (size_t r = 1; r <= nreps(b, f); r++)
				push(d, "author", practitioner(b, rep(b, f, r)));
		}
	}
	/* TXA-22 authentication person (2.5+: XCN with time), TXA-10 before */
	if (strcmp(LOOKUP(cs, "preliminary", completion), "final") == 0) {
		json_object *who = practitioner(b, rep(b, fld(b, txa, 22), 1));
		if (!who)
			who = practitioner(b, rep(b, fld(b, txa, 10), 1));
		put(d, "authenticator", who);
	}
	{
		json_object *ctx = json_object_new_object();
		if (b->encounter_url)
			push(ctx, "encounter", ref(b->encounter_url, NULL));
		put(d, "context", nonempty(ctx));
	}
	parent = val(b, txa, 13, 1);
	docno = val(b, txa, 12, 1);
	if (*parent && strcmp(parent, docno) != 0) {
		/* T06 addendum to (or T08 edit of) another document */
		json_object *rt = json_object_new_object();
		put_str(rt, "code", strcmp(b->m->event, "T06") == 0 ? "appends" : "replaces");
		{
			json_object *target = json_object_new_object();
			put(target, "identifier", ident(ei_system(b, rep(b, fld(b, txa, 13), 1), "document"), parent));
			put(rt, "target", target);
		}
		push(d, "relatesTo", rt);
	}
	/* the note: OBX text lines, or an ED (encapsulated data) attachment */
	for (long s = txa + 1; s < (long)b->m->nsegs; s++) {
		const char *vt;
		struct hl7_span vf;
		if (strcmp(b->m->segs[s].id, "OBX") != 0)
			continue;
		vt = val(b, s, 2, 1);
		vf = fld(b, s, 5);
		if (strcmp(vt, "ED") == 0) {
			struct hl7_span ed = rep(b, vf, 1);
			const char *mt = cval(b, ed, 2), *st = cval(b, ed, 3);
			buf_reset(&text);
			buf_addstr(&text, cval(b, ed, 5));
			ctype = arena_printf(&b->a, "%s/%s", *mt ? mt : "application", *st ? st : "octet-stream");
			for (char *c = (char *)ctype; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			binary = true;
			break;
		}
		for (size_t r = 1; r <= nreps(b, vf); r++) {
			if (text.len)
				buf_addch(&text, '\n');
			buf_addstr(&text, sdup(b, rep(b, vf, r)));
		}
	}
	att = json_object_new_object();
	put_str(att, "contentType", ctype);
	if (binary) {
		put_str(att, "data", buf_cstr(&text));
	} else if (text.len) {
		size_t n = sodium_base64_encoded_len(text.len, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = arena_alloc(&b->a, n);
		if (b64) {
			sodium_bin2base64(b64, n, (const unsigned char *)text.data, text.len,
					  sodium_base64_VARIANT_ORIGINAL);
			put_str(att, "data", b64);
		}
	}
	put_str(att, "title", val(b, txa, 2, 2));
	content = json_object_new_object();
	put(content, "attachment", att);
	push(d, "content", content);
	buf_release(&text);
	if (*docno) {
		sys = ei_system(b, rep(b, fld(b, txa, 12), 1), "document");
		put(d, "masterIdentifier", ident(sys, docno));
	} else {
		sys = SYS_PREFIX "document";
		docno = derived(b, "txa", val(b, txa, 1, 0));
	}
	put_keyed(b, "DocumentReference", sys, docno, d);
	return 0;
}

/* ---- DFT: ChargeItem ---- */

static const struct {
	const char *v2, *fhir;
} charge_status[] = { { "CG", "billable" }, { "CD", "billable" }, { "AJ", "billable" },
		      { "PY", "not-billable" } };

static int build_dft(struct mb *b)
{
	if (patient(b) < 0 || encounter(b) < 0)
		return -1;
	for (size_t k = 1;; k++) {
		long ft1 = hl7_find_seg(b->m, "FT1", 0, k);
		json_object *c, *code;
		const char *id, *q;

		if (ft1 < 0)
			return 0;
		code = concept(b, rep(b, fld(b, ft1, 25), 1));
		if (!code)
			code = concept(b, rep(b, fld(b, ft1, 7), 1));
		if (!code)
			continue;
		c = json_object_new_object();
		put_str(c, "resourceType", "ChargeItem");
		put_str(c, "status", LOOKUP(val(b, ft1, 6, 1), "billable", charge_status));
		put(c, "code", code);
		subject(b, c, "subject");
		in_encounter(b, c, "context");
		put_str(c, "occurrenceDateTime", fhir_dt(b, val(b, ft1, 4, 1), false));
		q = val(b, ft1, 10, 0);
		if (is_decimal(b, q))
			put(c, "quantity", valued(jdecimal(b, q)));
		if (is_decimal(b, val(b, ft1, 11, 1))) {
			json_object *money = valued(jdecimal(b, val(b, ft1, 11, 1)));
			put_str(money, "currency", val(b, ft1, 11, 2));
			put(c, "priceOverride", money);
		}
		{
			json_object *who = practitioner(b, rep(b, fld(b, ft1, 20), 1));
			if (who) {
				json_object *pf = json_object_new_object();
				put(pf, "actor", who);
				push(c, "performer", pf);
			}
			put(c, "enterer", practitioner(b, rep(b, fld(b, ft1, 21), 1)));
		}
		{
			struct hl7_span f = fld(b, ft1, 19);
			for (size_t r = 1; r <= nreps(b, f); r++)
				push(c, "reason", concept(b, rep(b, f, r)));
		}
		id = val(b, ft1, 2, 1);
		put_keyed(b, "ChargeItem", *id ? SYS_PREFIX "ft1" : SYS_PREFIX "ft1-derived",
			  *id ? id : derived(b, b->visit_key, arena_printf(&b->a, "%s:%s", val(b, ft1, 1, 0),
									   val(b, ft1, 4, 1))),
			  c);
	}
}

/* ---- ADT merges: the surviving Patient; the merge itself is mpi_merge's
 * (feed.c), after this Bundle committed ---- */

static int build_merge(struct mb *b)
{
	return patient(b);
}

/* ---- the event table ---- */

static const struct map_event events[] = {
	{ "ADT", "A01", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A02", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT | MF_TRANSFER },
	{ "ADT", "A03", "PID,PV1", build_adt, "finished", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A04", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A05", "PID,PV1", build_adt, "planned", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A06", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT | MF_TRANSFER },
	{ "ADT", "A07", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT | MF_TRANSFER },
	{ "ADT", "A08", "PID", build_adt, NULL, MF_ENCOUNTER | MF_PATIENT_PUT },
	/* cancels: the visit as the cancel's PV1 gives it, with the status
	 * the cancelled event had undone */
	{ "ADT", "A11", "PID,PV1", build_adt, "cancelled", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A12", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A13", "PID,PV1", build_adt, "in-progress", MF_ENCOUNTER | MF_PATIENT_PUT },
	{ "ADT", "A28", "PID", build_adt, NULL, MF_PATIENT_PUT },
	{ "ADT", "A31", "PID", build_adt, NULL, MF_PATIENT_PUT },
	/* merges (patient identifier list; patient id; account, kept as a
	 * patient merge; person): MRG-1's patient into PID-3's, keeping history */
	{ "ADT", "A40", "PID,MRG", build_merge, NULL, MF_PATIENT_PUT | MF_MERGE },
	{ "ADT", "A34", "PID,MRG", build_merge, NULL, MF_PATIENT_PUT | MF_MERGE },
	{ "ADT", "A35", "PID,MRG", build_merge, NULL, MF_PATIENT_PUT | MF_MERGE },
	{ "ADT", "A39", "PID,MRG", build_merge, NULL, MF_PATIENT_PUT | MF_MERGE },
	{ "ORU", "R01", "PID,OBR", build_oru, NULL, 0 },
	{ "ORM", "O01", "PID,ORC", build_order, NULL, 0 },
	{ "OML", "O21", "PID,ORC", build_order, NULL, 0 },
	{ "MDM", "T02", "PID,TXA", build_mdm, NULL, 0 },
	{ "MDM", "T04", "PID,TXA", build_mdm, NULL, 0 },
	{ "MDM", "T06", "PID,TXA", build_mdm, NULL, 0 },
	{ "MDM", "T08", "PID,TXA", build_mdm, NULL, 0 },
	{ "DFT", "P03", "PID,FT1", build_dft, NULL, 0 },
};

static const struct map_event *find_event(const struct hl7_msg *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(events); i++)
		if (strcmp(m->type, events[i].type) == 0 && strcmp(m->event, events[i].event) == 0)
			return &events[i];
	return NULL;
}

int hl7_map_check(const struct hl7_msg *m, struct hl7_ack_err *err, int *ack)
{
	const struct map_event *ev = find_event(m);
	static __thread char seg[4];
	bool type_known = false;

	memset(err, 0, sizeof(*err));
	err->severity = 'E';
	if (!ev) {
		for (size_t i = 0; i < ARRAY_SIZE(events); i++)
			if (strcmp(m->type, events[i].type) == 0)
				type_known = true;
		err->code = type_known ? "201" : "200";
		err->text = type_known ? "this event of the message type is not supported here" :
					 "this message type is not supported here";
		snprintf(err->seg, sizeof(err->seg), "MSH");
		err->seg_occ = 1;
		err->field = 9;
		*ack = HL7_AR;
		return -1;
	}
	for (const char *p = ev->required; *p;) {
		memcpy(seg, p, 3);
		seg[3] = '\0';
		if (hl7_find_seg(m, seg, 0, 1) < 0) {
			err->code = "100";
			err->text = "a segment the message type requires is missing";
			snprintf(err->seg, sizeof(err->seg), "%s", seg);
			*ack = HL7_AE;
			return -1;
		}
		p += 3;
		if (*p == ',')
			p++;
	}
	/* the patient must be identifiable */
	{
		long pid = hl7_find_seg(m, "PID", 0, 1);
		struct hl7_span f = hl7_field(m, (size_t)pid, 3);
		if (pid >= 0 && (f.len == 0 || hl7_is_null(m, f))) {
			err->code = "101";
			err->text = "PID-3 (patient identifier list) is required";
			snprintf(err->seg, sizeof(err->seg), "PID");
			err->seg_occ = 1;
			err->field = 3;
			*ack = HL7_AE;
			return -1;
		}
	}
	if (ev->flags & MF_MERGE) {
		long mrg = hl7_find_seg(m, "MRG", 0, 1);
		struct hl7_span f = hl7_field(m, (size_t)mrg, 1);
		if (f.len == 0 || hl7_is_null(m, f)) {
			err->code = "101";
			err->text = "MRG-1 (prior patient identifier list) is required";
			snprintf(err->seg, sizeof(err->seg), "MRG");
			err->seg_occ = 1;
			err->field = 1;
			*ack = HL7_AE;
			return -1;
		}
	}
	*ack = HL7_AA;
	return 0;
}

int hl7_map_merge(const struct hl7_msg *m, struct buf *source_q, struct buf *target_q, struct err *e)
{
	const struct map_event *ev = find_event(m);
	struct mb *b;
	const char *sys, *v;
	long mrg;
	int rc = -1;

	if (!ev || !(ev->flags & MF_MERGE))
		return 0;
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ERR_NOMEM, "out of memory");
	b->m = m;
	b->e = e;
	b->ev = ev;
	arena_init(&b->a, 0);
	buf_init(&b->tmp, 0);
	if (patient_key(b, hl7_find_seg(m, "PID", 0, 1), &sys, &v) < 0)
		goto out;
	buf_addstr(target_q, ident_query(b, sys, v));
	/* MRG-1 is a CX list like PID-3: the same choice of key */
	mrg = hl7_find_seg(m, "MRG", 0, 1);
	if (patient_key_field(b, mrg, 1, &sys, &v) < 0)
		goto out;
	buf_addstr(source_q, ident_query(b, sys, v));
	rc = 1;
out:
	arena_release(&b->a);
	buf_release(&b->tmp);
	free(b);
	return rc;
}

/* Every identifier the Bundle's resources carry, "system|value\n" each. */
static void bundle_keys(json_object *entries, struct buf *keys)
{
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		json_object *res = json_get(json_object_array_get_idx(entries, i), "resource");
		json_object *ids = json_get_arr(res, "identifier"), *mi = json_get_obj(res, "masterIdentifier");
		for (size_t k = 0; ids && k < json_object_array_length(ids); k++) {
			json_object *id = json_object_array_get_idx(ids, k);
			buf_addf(keys, "%s|%s\n", json_get_str(id, "system") ? json_get_str(id, "system") : "",
				 json_get_str(id, "value") ? json_get_str(id, "value") : "");
		}
		if (mi)
			buf_addf(keys, "%s|%s\n", json_get_str(mi, "system") ? json_get_str(mi, "system") : "",
				 json_get_str(mi, "value") ? json_get_str(mi, "value") : "");
	}
}

int hl7_map_bundle(const struct hl7_msg *m, struct buf *out, struct buf *keys, struct err *e)
{
	struct mb *b = calloc(1, sizeof(*b));
	json_object *bundle = NULL;
	int rc = -1;

	if (!b)
		return err_set(e, ERR_NOMEM, "out of memory");
	b->m = m;
	b->e = e;
	b->ev = find_event(m);
	arena_init(&b->a, 0);
	buf_init(&b->tmp, 0);
	if (!b->ev) {
		err_set(e, ERR_NOT_SUPPORTED, "%s^%s is not a message this feed maps", m->type, m->event);
		goto out;
	}
	bundle = json_object_new_object();
	put_str(bundle, "resourceType", "Bundle");
	put_str(bundle, "type", "transaction");
	b->entries = json_object_new_array();
	json_object_object_add(bundle, "entry", b->entries);
	if (b->ev->build(b) < 0)
		goto out;
	if (b->a.failed) {
		err_set(e, ERR_NOMEM, "out of memory mapping the message");
		goto out;
	}
	json_dump(bundle, out);
	if (keys)
		bundle_keys(b->entries, keys);
	rc = out->failed ? err_set(e, ERR_NOMEM, "out of memory mapping the message") : 0;
out:
	json_object_put(bundle);
	arena_release(&b->a);
	buf_release(&b->tmp);
	free(b);
	return rc;
}
