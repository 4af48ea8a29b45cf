/* edits.c - claim coding edits (coding_code_edits). */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding_int.h"
#include "base/banned.h"

/* The edit lists chartkeep loads, with the MCE's numbering of the edits
 * (CMS "Definition of Medicare Code Edits", v37). */
const struct coding_edit_def coding_edit_defs[] = {
	{ "Newborn_Only", 'D', "MCE-4A", NULL },
	{ "Pediatric_Only", 'D', "MCE-4B", NULL },
	{ "Maternity_Only", 'D', "MCE-4C", NULL },
	{ "Adult_Only", 'D', "MCE-4D", NULL },
	{ "Female_Only", 0, "MCE-5A", "MCE-5B" },
	{ "Male_Only", 0, "MCE-5C", "MCE-5D" },
	{ "Principal_Manifestation", 'D', "MCE-6", NULL },
	{ "Principal_Questionable_Admit", 'D', "MCE-8A", NULL },
	{ "Principal_Unacceptable", 'D', "MCE-9", NULL },
	{ "Noncovered_Always", 'P', NULL, "MCE-11A" },
	{ "Noncovered_Over60", 'P', NULL, "MCE-11F" },
	{ "Limited_Coverage", 'P', NULL, "MCE-17A" },
	{ "Wrong_Performed", 'D', "MCE-18", NULL },
	{ "Noncovered_LOS_96hr", 'P', NULL, "MCE-19" },
	{ "POA_Exempt", 'D', NULL, NULL },
};
const size_t coding_n_edit_defs = ARRAY_SIZE(coding_edit_defs);

const struct coding_edit_def *coding_edit_def_find(const char *kind, size_t n)
{
	for (size_t i = 0; i < coding_n_edit_defs; i++)
		if (strlen(coding_edit_defs[i].kind) == n && memcmp(coding_edit_defs[i].kind, kind, n) == 0)
			return &coding_edit_defs[i];
	return NULL;
}

/* ---- the edits that fire, and how they read ---- */

struct edit_info {
	const char *id;
	int severity;           /* enum fhir_severity */
	const char *display;
};

static const struct edit_info edit_infos[] = {
	{ "CODE-INVALID", FHIR_ERROR, "Invalid code for the date of service" },
	{ "CODE-HEADER", FHIR_ERROR, "Header (non-billable) code" },
	{ "CODE-DUPLICATE", FHIR_WARNING, "Duplicate code" },
	{ "CODE-SYSTEM", FHIR_ERROR, "Code from a system not allowed here" },
	{ "CODE-NO-VERSION", FHIR_ERROR, "No code set version loaded for the date of service" },
	{ "MCE-4A", FHIR_ERROR, "Age conflict: newborn diagnosis" },
	{ "MCE-4B", FHIR_ERROR, "Age conflict: pediatric diagnosis" },
	{ "MCE-4C", FHIR_ERROR, "Age conflict: maternity diagnosis" },
	{ "MCE-4D", FHIR_ERROR, "Age conflict: adult diagnosis" },
	{ "MCE-5A", FHIR_ERROR, "Sex conflict: female-only diagnosis" },
	{ "MCE-5B", FHIR_ERROR, "Sex conflict: female-only procedure" },
	{ "MCE-5C", FHIR_ERROR, "Sex conflict: male-only diagnosis" },
	{ "MCE-5D", FHIR_ERROR, "Sex conflict: male-only procedure" },
	{ "MCE-6", FHIR_ERROR, "Manifestation code as principal diagnosis" },
	{ "MCE-8A", FHIR_WARNING, "Questionable admission" },
	{ "MCE-9", FHIR_ERROR, "Unacceptable principal diagnosis" },
	{ "MCE-11A", FHIR_ERROR, "Non-covered procedure" },
	{ "MCE-11F", FHIR_ERROR, "Non-covered procedure: patient over 60" },
	{ "MCE-17A", FHIR_WARNING, "Limited coverage procedure" },
	{ "MCE-18", FHIR_ERROR, "Wrong procedure performed" },
	{ "MCE-19", FHIR_ERROR, "Procedure inconsistent with length of stay" },
	{ "POA-MISSING", FHIR_ERROR, "POA indicator missing" },
	{ "POA-INVALID", FHIR_ERROR, "POA indicator invalid" },
};

static const struct edit_info *edit_info(const char *id)
{
	for (size_t i = 0; i < ARRAY_SIZE(edit_infos); i++)
		if (strcmp(edit_infos[i].id, id) == 0)
			return &edit_infos[i];
	return &edit_infos[0];
}

/* ---- what a claim says ---- */

#define ED_MAX 64    /* diagnoses, procedures, lines */
#define SHOWN (STORE_CODE_MAX + 2)

struct ed_code {
	const struct coding_system *sys;  /* NULL: a system chartkeep does not know */
	const char *system;               /* as given */
	const char *code;                 /* as given */
	char norm[STORE_CODE_MAX];
	char shown[SHOWN];
	char date[11];                    /* of service, "" if none */
	char expr[96];
	bool principal;
	bool modifier;                    /* a line's modifier (item.modifier) */
	const char *poa;                  /* NULL: none given */
	/* prefetched (prefetch()): the concept, the edit lists naming the code */
	bool fetched, found;
	struct coding_concept *k;         /* in the run's arena, when found */
	const char *kinds[8];             /* MCE edit kinds */
	size_t nkinds;
	bool poa_exempt;
};

struct ed_claim {
	char patient[ID_MAX + 1];
	char admit[11], through[11];      /* "" when unknown */
	int64_t admit_end, through_end;   /* first ms after them, to the precision
					     given (a date: its midnight); INT64_MIN unknown */
	int64_t los_ms;                   /* -1: unknown */
	bool institutional, inpatient, poa_applies;
	const char *prefix;               /* "Claim" or "Claim/id" in expressions */
	size_t ndx, npx, nline, nmod;
	/* filled as they are read (not zeroed: see edits_on) */
	struct ed_code dx[ED_MAX], px[ED_MAX], line[ED_MAX], mod[ED_MAX];
};

struct run {
	const struct fhir_config *cfg;
	struct fhir_req *req;
	struct buf *out;
	size_t issues;          /* in the outcome */
	size_t fired;           /* of them, edits (not notes) */
	struct err e;
	/* the patient */
	int age;                          /* -1: unknown */
	char sex;                         /* 'F', 'M', 0 unknown */
	char pt_note[96];                 /* appended to age and sex edits */
	/* versions */
	struct store_code_version mce, poa;
	bool has_mce, has_poa;
	struct {              /* the version of a system for a date, once a run */
		const struct coding_system *sys;
		char date[11];
		struct store_code_version v;
		bool have;
	} vc[8];
	size_t nvc;
};

/* coding_pick_version, remembered for the run: a claim's codes share a
 * handful of (system, date) pairs. */
static int pick_cached(struct run *r, const struct coding_system *sys, const char *date,
		       struct store_code_version *v, bool *have)
{
	size_t i;

	for (i = 0; i < r->nvc; i++)
		if (r->vc[i].sys == sys && strcmp(r->vc[i].date, date) == 0) {
			*v = r->vc[i].v;
			*have = r->vc[i].have;
			return 0;
		}
	if (coding_pick_version(r->cfg->store, sys->name, NULL, date[0] ? date : NULL, v, have, &r->e) < 0)
		return -1;
	i = r->nvc < ARRAY_SIZE(r->vc) ? r->nvc++ : 0;
	r->vc[i].sys = sys;
	snprintf(r->vc[i].date, sizeof(r->vc[i].date), "%s", date);
	r->vc[i].v = *v;
	r->vc[i].have = *have;
	return 0;
}

static void add_issue(struct run *r, const char *id, const struct ed_code *c, const char *expr,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_issue(struct run *r, const char *id, const struct ed_code *c, const char *expr,
		      const char *fmt, ...)
{
	const struct edit_info *ei = edit_info(id);
	static const char *const sev[] = { "fatal", "error", "warning", "information" };
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->fired++;
	buf_addf(r->out, "%s{\"severity\":\"%s\",\"code\":\"%s\"", r->issues++ ? "," : "",
		 sev[ei->severity], strncmp(id, "CODE-", 5) == 0 && strcmp(id, "CODE-DUPLICATE") != 0
		 ? "code-invalid" : "business-rule");
	if (c && c->sys && c->sys->uri) {
		buf_addf(r->out, ",\"extension\":[{\"url\":\"https://chartkeep.org/fhir/StructureDefinition/"
			 "coding-edit-code\",\"valueCoding\":{\"system\":\"%s\",\"code\":\"", c->sys->uri);
		buf_add_json_str(r->out, c->shown, strlen(c->shown));
		buf_addstr(r->out, "\"}}]");
	}
	buf_addf(r->out, ",\"details\":{\"coding\":[{\"system\":\"" CODING_EDIT_SYSTEM "\",\"code\":\"%s\","
		 "\"display\":\"%s\"}],\"text\":\"", ei->id, ei->display);
	buf_add_json_str(r->out, msg, strlen(msg));
	buf_addstr(r->out, "\"},\"diagnostics\":\"");
	buf_addf(r->out, "%s", ei->id);
	if (c && c->shown[0]) {
		buf_addch(r->out, ' ');
		buf_add_json_str(r->out, c->shown, strlen(c->shown));
	}
	buf_addstr(r->out, ": ");
	buf_add_json_str(r->out, msg, strlen(msg));
	buf_addstr(r->out, "\"");
	if (expr && *expr) {
		buf_addstr(r->out, ",\"expression\":[\"");
		buf_add_json_str(r->out, expr, strlen(expr));
		buf_addstr(r->out, "\"]");
	}
	buf_addch(r->out, '}');
}

static void add_info(struct run *r, const char *severity, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_info(struct run *r, const char *severity, const char *expr, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_addf(r->out, "%s{\"severity\":\"%s\",\"code\":\"informational\",\"diagnostics\":\"",
		 r->issues++ ? "," : "", severity);
	buf_add_json_str(r->out, msg, strlen(msg));
	buf_addch(r->out, '"');
	if (expr && *expr) {
		buf_addstr(r->out, ",\"expression\":[\"");
		buf_add_json_str(r->out, expr, strlen(expr));
		buf_addstr(r->out, "\"]");
	}
	buf_addch(r->out, '}');
}

/* ---- reading resources ---- */

/* A resource the caller may see, parsed; NULL if it is not there or hidden. */
static json_object *read_res(struct run *r, const char *type, const char *id)
{
	struct store_version v;
	struct err e = ERR_INIT;
	json_object *o = NULL;

	memset(&v, 0, sizeof(v));
	if (!id_valid(id, strlen(id)))
		return NULL;
	if (store_read(r->cfg->store, type, id, &v, &e) == 0 && v.json &&
	    (!r->req->visible || r->req->visible(r->req->visible_ctx, type, id, v.json, strlen(v.json))))
		o = json_parse_buf(v.json, strlen(v.json), r->cfg->max_depth ? r->cfg->max_depth : 64, &e);
	store_version_release(&v);
	return o;
}

/* "Type/id" of a Reference, id copied to out; false if it is not one. */
static bool ref_id(json_object *ref, const char *type, char out[ID_MAX + 1])
{
	const char *s = json_get_str(ref, "reference");
	size_t n = strlen(type);

	if (!s || strncmp(s, type, n) != 0 || s[n] != '/' || !id_valid(s + n + 1, strlen(s + n + 1)))
		return false;
	snprintf(out, ID_MAX + 1, "%s", s + n + 1);
	return true;
}

static void date_from(json_object *o, const char *key, char out[11])
{
	const char *s = json_get_str(o, key);

	out[0] = '\0';
	if (s && coding_date_of(s, out) < 0)
		out[0] = '\0';
}

/* The first millisecond of a date or dateTime; INT64_MIN if neither.  A
 * stay given in days (dates only) is counted from midnight to midnight. */
static int64_t ms_of(const char *s)
{
	struct time_val tv;

	if (!s || time_parse(s, strlen(s), strlen(s) <= 10 ? TIME_DATE : TIME_DATETIME, &tv) < 0)
		return INT64_MIN;
	return tv.lo_ms;
}

/* The first millisecond after a date or dateTime, to the precision it is
 * given in ("2016-03-10": the next midnight UTC); INT64_MIN if neither. */
static int64_t end_of(const char *s)
{
	struct time_val tv;

	if (!s || time_parse(s, strlen(s), strlen(s) <= 10 ? TIME_DATE : TIME_DATETIME, &tv) < 0)
		return INT64_MIN;
	return tv.hi_ms;
}

/* The first coding of a CodeableConcept: of a system we know, or the first. */
static void code_from(json_object *cc, struct ed_code *c)
{
	json_object *codings = cc ? json_get_arr(cc, "coding") : NULL;
	size_t n = codings ? json_object_array_length(codings) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *k = json_object_array_get_idx(codings, i);
		const struct coding_system *sys = coding_system_by_uri(json_get_str(k, "system"));
		if (!json_get_str(k, "code"))
			continue;
		if (sys || !c->code) {
			c->sys = sys;
			c->system = json_get_str(k, "system");
			c->code = json_get_str(k, "code");
		}
		if (sys)
			break;
	}
}

static bool has_coding(json_object *arr, const char *code)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *codings = json_get_arr(json_object_array_get_idx(arr, i), "coding");
		for (size_t k = 0; codings && k < json_object_array_length(codings); k++)
			if (json_is_str(json_get(json_object_array_get_idx(codings, k), "code"), code))
				return true;
	}
	return false;
}

/* The Encounter's class says inpatient; its period gives the length of stay. */
static void encounter_facts(struct run *r, json_object *enc, struct ed_claim *cl)
{
	json_object *cls = json_get_obj(enc, "class"), *period = json_get_obj(enc, "period");
	const char *code = cls ? json_get_str(cls, "code") : NULL;
	int64_t a, b;

	(void)r;
	if (code)
		cl->inpatient = strcmp(code, "IMP") == 0 || strcmp(code, "ACUTE") == 0 ||
				strcmp(code, "NONAC") == 0;
	if (period) {
		a = ms_of(json_get_str(period, "start"));
		b = ms_of(json_get_str(period, "end"));
		if (a != INT64_MIN && b != INT64_MIN && b >= a)
			cl->los_ms = b - a;
		if (!cl->admit[0]) {
			date_from(period, "start", cl->admit);
			cl->admit_end = end_of(json_get_str(period, "start"));
		}
		if (!cl->through[0]) {
			date_from(period, "end", cl->through);
			cl->through_end = end_of(json_get_str(period, "end"));
		}
	}
}

/* What the edits need from a Claim. */
static void claim_read(struct run *r, json_object *claim, struct ed_claim *cl)
{
	json_object *arr, *bp = json_get_obj(claim, "billablePeriod"), *type = json_get_obj(claim, "type");
	char enc_id[ID_MAX + 1] = "";
	int64_t a, b;
	bool typed = false;

	cl->los_ms = -1;
	cl->admit_end = cl->through_end = INT64_MIN;
	ref_id(json_get_obj(claim, "patient"), "Patient", cl->patient);
	if (bp) {
		date_from(bp, "start", cl->admit);
		date_from(bp, "end", cl->through);
		cl->admit_end = end_of(json_get_str(bp, "start"));
		cl->through_end = end_of(json_get_str(bp, "end"));
		a = ms_of(json_get_str(bp, "start"));
		b = ms_of(json_get_str(bp, "end"));
		if (a != INT64_MIN && b != INT64_MIN && b >= a)
			cl->los_ms = b - a;
	}
	if (type) {
		json_object *codings = json_get_arr(type, "coding");
		for (size_t i = 0; codings && i < json_object_array_length(codings); i++)
			if (json_is_str(json_get(json_object_array_get_idx(codings, i), "code"), "institutional"))
				cl->institutional = true;
	}
	cl->inpatient = cl->institutional;
	arr = json_get_arr(claim, "diagnosis");
	/* the principal: the diagnosis typed so, else sequence 1 */
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
		if (has_coding(json_get_arr(json_object_array_get_idx(arr, i), "type"), "principal"))
			typed = true;
	for (size_t i = 0; arr && i < json_object_array_length(arr) && cl->ndx < ED_MAX; i++) {
		json_object *d = json_object_array_get_idx(arr, i), *poa = json_get_obj(d, "onAdmission");
		struct ed_code *c = &cl->dx[cl->ndx];
		json_object *seq;

		memset(c, 0, sizeof(*c));
		code_from(json_get_obj(d, "diagnosisCodeableConcept"), c);
		if (!c->code)
			continue;
		snprintf(c->expr, sizeof(c->expr), "%s.diagnosis[%zu].diagnosisCodeableConcept", cl->prefix, i);
		c->principal = typed ? has_coding(json_get_arr(d, "type"), "principal")
				     : (seq = json_get(d, "sequence")) && json_object_get_int(seq) == 1;
		if (poa) {
			json_object *codings = json_get_arr(poa, "coding");
			c->poa = codings && json_object_array_length(codings)
				 ? json_get_str(json_object_array_get_idx(codings, 0), "code") : "";
			if (!c->poa)
				c->poa = "";
		}
		cl->ndx++;
	}
	arr = json_get_arr(claim, "procedure");
	for (size_t i = 0; arr && i < json_object_array_length(arr) && cl->npx < ED_MAX; i++) {
		json_object *p = json_object_array_get_idx(arr, i);
		struct ed_code *c = &cl->px[cl->npx];

		memset(c, 0, sizeof(*c));
		code_from(json_get_obj(p, "procedureCodeableConcept"), c);
		if (!c->code)
			continue;
		date_from(p, "date", c->date);
		snprintf(c->expr, sizeof(c->expr), "%s.procedure[%zu].procedureCodeableConcept", cl->prefix, i);
		cl->npx++;
	}
	arr = json_get_arr(claim, "item");
	for (size_t i = 0; arr && i < json_object_array_length(arr) && cl->nline < ED_MAX; i++) {
		json_object *it = json_object_array_get_idx(arr, i), *encs = json_get_arr(it, "encounter"), *mods;
		struct ed_code *c = &cl->line[cl->nline];

		if (!enc_id[0] && encs && json_object_array_length(encs))
			ref_id(json_object_array_get_idx(encs, 0), "Encounter", enc_id);
		memset(c, 0, sizeof(*c));
		code_from(json_get_obj(it, "productOrService"), c);
		if (c->code) {
			date_from(it, "servicedDate", c->date);
			snprintf(c->expr, sizeof(c->expr), "%s.item[%zu].productOrService", cl->prefix, i);
			cl->nline++;
		}
		/* its modifiers (837P SV101-3..6): HCPCS Level II ones are checked */
		mods = json_get_arr(it, "modifier");
		for (size_t k = 0; mods && k < json_object_array_length(mods) && cl->nmod < ED_MAX; k++) {
			struct ed_code *m = &cl->mod[cl->nmod];

			memset(m, 0, sizeof(*m));
			code_from(json_object_array_get_idx(mods, k), m);
			if (!m->code || !m->sys || strcmp(m->sys->name, "hcpcs") != 0)
				continue;
			m->modifier = true;
			date_from(it, "servicedDate", m->date);
			snprintf(m->expr, sizeof(m->expr), "%s.item[%zu].modifier[%zu]", cl->prefix, i, k);
			cl->nmod++;
		}
		/* the place of service (837P CLM05-1 / SV105) */
		c = &cl->line[cl->nline];
		if (cl->nline < ED_MAX && json_get_obj(it, "locationCodeableConcept")) {
			memset(c, 0, sizeof(*c));
			code_from(json_get_obj(it, "locationCodeableConcept"), c);
			if (c->code && c->sys && strcmp(c->sys->name, "pos") == 0) {
				date_from(it, "servicedDate", c->date);
				snprintf(c->expr, sizeof(c->expr), "%s.item[%zu].locationCodeableConcept", cl->prefix, i);
				cl->nline++;
			}
		}
	}
	if (enc_id[0]) {
		json_object *enc = read_res(r, "Encounter", enc_id);
		if (enc) {
			cl->los_ms = -1;
			encounter_facts(r, enc, cl);
			json_object_put(enc);
		}
	}
	/* POA is reported on inpatient institutional claims */
	cl->poa_applies = cl->institutional && cl->inpatient;
}

/* What the edits need from an Encounter that no Claim refers to yet: its
 * diagnoses (Encounter.diagnosis -> Condition.code; rank 1 is the
 * principal) and the Procedures that name it.  POA indicators live on the
 * claim, so the POA edits are not run. */
static void encounter_read(struct run *r, json_object *enc, const char *eid, struct ed_claim *cl,
			   struct arena *a)
{
	json_object *arr = json_get_arr(enc, "diagnosis");
	char (*ids)[ID_MAX + 1] = NULL;
	char q[ID_MAX + 32];
	size_t nids = 0;
	int best_rank = 0;

	cl->los_ms = -1;
	cl->admit_end = cl->through_end = INT64_MIN;
	ref_id(json_get_obj(enc, "subject"), "Patient", cl->patient);
	encounter_facts(r, enc, cl);
	cl->institutional = cl->inpatient;
	cl->poa_applies = false;
	for (size_t i = 0; arr && i < json_object_array_length(arr) && cl->ndx < ED_MAX; i++) {
		json_object *d = json_object_array_get_idx(arr, i), *cond, *rk;
		struct ed_code *c = &cl->dx[cl->ndx];
		char cid[ID_MAX + 1];
		int rank;

		if (!ref_id(json_get_obj(d, "condition"), "Condition", cid))
			continue;
		cond = read_res(r, "Condition", cid);
		if (!cond)
			continue;
		memset(c, 0, sizeof(*c));
		code_from(json_get_obj(cond, "code"), c);
		if (c->code) {
			/* the strings belong to cond: copied into the run's arena */
			c->code = arena_strdup(a, c->code);
			c->system = c->system ? arena_strdup(a, c->system) : NULL;
			snprintf(c->expr, sizeof(c->expr), "Condition/%s.code", cid);
			rk = json_get(d, "rank");
			rank = rk ? json_object_get_int(rk) : 0;
			if (rank > 0 && (best_rank == 0 || rank < best_rank)) {
				for (size_t k = 0; k < cl->ndx; k++)
					cl->dx[k].principal = false;
				c->principal = true;
				best_rank = rank;
			}
			cl->ndx++;
		}
		json_object_put(cond);
	}
	if (cl->ndx && best_rank == 0)
		cl->dx[0].principal = true;
	ids = calloc(ED_MAX + 1, sizeof(*ids));
	snprintf(q, sizeof(q), "encounter=Encounter/%s", eid);
	if (!ids || fhir_search_ids(r->cfg, "Procedure", q, ids, ED_MAX, &nids, &r->e) < 0) {
		if (!ids)
			err_set(&r->e, ERR_NOMEM, "out of memory");
		free(ids);
		return;
	}
	for (size_t i = 0; i < nids && i < ED_MAX && cl->npx < ED_MAX; i++) {
		json_object *p = read_res(r, "Procedure", ids[i]), *per;
		struct ed_code *c = &cl->px[cl->npx];

		if (!p)
			continue;
		memset(c, 0, sizeof(*c));
		code_from(json_get_obj(p, "code"), c);
		if (c->code) {
			c->code = arena_strdup(a, c->code);
			c->system = c->system ? arena_strdup(a, c->system) : NULL;
			date_from(p, "performedDateTime", c->date);
			per = json_get_obj(p, "performedPeriod");
			if (!c->date[0] && per)
				date_from(per, "start", c->date);
			snprintf(c->expr, sizeof(c->expr), "Procedure/%s.code", ids[i]);
			cl->npx++;
		}
		json_object_put(p);
	}
	free(ids);
}

/* Age in whole years on date (YYYY-MM-DD); -1 if birth is not a full date. */
static int age_on(const char *birth, const char *date)
{
	int age;

	if (!birth || strlen(birth) != 10 || !date[0])
		return -1;
	age = atoi(date) - atoi(birth);
	if (strcmp(date + 5, birth + 5) < 0)
		age--;
	return age < 0 ? -1 : age;
}

/* Walking a Patient's history, newest first, for the version in force. */
struct pt_walk {
	int64_t cutoff;       /* versions recorded before it were in force */
	int64_t in_force;     /* its vid, 0 if none yet */
	int64_t earliest;     /* the oldest not deleted vid seen so far */
};

static int pt_walk_version(void *ctx, const struct store_version *v)
{
	struct pt_walk *w = ctx;

	if (v->deleted)
		return 0;
	/* lastUpdated never decreases in write order: the first version
	 * recorded before the cutoff is the newest of them */
	if (v->ts_ms < w->cutoff) {
		w->in_force = v->vid;
		return 1;
	}
	w->earliest = v->vid;
	return 0;
}

/* The version of Patient/id in force at cutoff (ms; the first after the
 * date of service): the newest recorded before it, deletes skipped; when
 * none was, the earliest, and *earliest is set.  cur is the current
 * version, already read; out gets its own copy (release it).  INT64_MIN:
 * no date of service, the current version.  -1 with r->e set on a store
 * failure. */
static int patient_as_of(struct run *r, const char *id, int64_t cutoff, const struct store_version *cur,
			 struct store_version *out, bool *earliest)
{
	struct pt_walk w = { cutoff, 0, 0 };
	struct store_history_q q = { "Patient", id, INT64_MIN, INT64_MIN, 0, 64 };
	int64_t next = 0, want;

	*earliest = false;
	/* the common cases need no history: recorded before the service, or
	 * never changed */
	if (cutoff == INT64_MIN || cur->ts_ms < cutoff || cur->vid == 1) {
		*earliest = cutoff != INT64_MIN && cur->ts_ms >= cutoff;
		want = cur->vid;
	} else {
		do {
			q.before_vkey = next;
			if (store_history(r->cfg->store, &q, pt_walk_version, &w, &next, &r->e) < 0)
				return -1;
		} while (!w.in_force && next);
		*earliest = !w.in_force;
		want = w.in_force ? w.in_force : w.earliest ? w.earliest : cur->vid;
	}
	if (want == cur->vid) {
		*out = *cur;
		out->json = malloc(cur->len + 1);
		if (!out->json)
			return err_set(&r->e, ERR_NOMEM, "out of memory");
		memcpy(out->json, cur->json, cur->len + 1);
		return 0;
	}
	return store_vread(r->cfg->store, "Patient", id, want, out, &r->e);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool pt_visible(struct run *r, const char *id, const struct store_version *v)
{
	return v->json && (!r->req->visible ||
			   r->req->visible(r->req->visible_ctx, "Patient", id, v->json, strlen(v->json)));
}

/* Age (at admission) and sex from the Patient version in force on the date
 * of service: a record corrected afterwards (a gender fixed in 2020) must
 * not change the edits of a 2016 claim.  A Patient registered after the
 * service (a backlog entered later) has no such version: its earliest is
 * used, and an information issue says so. */
static void patient_facts(struct run *r, const struct ed_claim *cl)
{
	struct store_version cur, v;
	struct err e = ERR_INIT;
	json_object *p = NULL, *now = NULL;
	const char *g;
	const char *dos = cl->through[0] ? cl->through : cl->admit;
	int64_t cutoff = cl->through[0] ? cl->through_end : cl->admit_end;
	const char *expr = strncmp(cl->prefix, "Encounter", 9) == 0 ? "Encounter.subject" : "Claim.patient";
	bool earliest = false;
	char at[TIME_INSTANT_MAX];

	memset(&cur, 0, sizeof(cur));
	memset(&v, 0, sizeof(v));
	r->age = -1;
	r->sex = 0;
	r->pt_note[0] = '\0';
	if (!cl->patient[0]) {
		add_info(r, "warning", expr, "no Patient is named: age and sex edits were not run");
		goto out;
	}
	if (!id_valid(cl->patient, strlen(cl->patient)) ||
	    store_read(r->cfg->store, "Patient", cl->patient, &cur, &e) < 0 || !pt_visible(r, cl->patient, &cur))
		goto unknown;
	if (patient_as_of(r, cl->patient, cutoff, &cur, &v, &earliest) < 0) {
		if (r->e.code == ERR_NOT_FOUND || r->e.code == ERR_GONE) {
			err_clear(&r->e);
			goto unknown;
		}
		goto out;
	}
	/* the policy sees the version used too: labels may have changed */
	if (v.vid != cur.vid && !pt_visible(r, cl->patient, &v))
		goto unknown;
	p = json_parse_buf(v.json, v.len, r->cfg->max_depth ? r->cfg->max_depth : 64, &e);
	if (!p)
		goto unknown;
	r->age = age_on(json_get_str(p, "birthDate"), cl->admit[0] ? cl->admit : cl->through);
	g = json_get_str(p, "gender");
	r->sex = g && strcmp(g, "female") == 0 ? 'F' : g && strcmp(g, "male") == 0 ? 'M' : 0;
	time_format_instant(v.ts_ms, at);
	if (earliest) {
		add_info(r, "information", expr, "no version of the Patient existed on the date of service %s: "
			 "age and sex were taken from its earliest version (%lld, recorded %.10s)", dos,
			 (long long)v.vid, at);
		snprintf(r->pt_note, sizeof(r->pt_note), " (from the Patient's earliest version, recorded after "
			 "the date of service)");
	} else if (v.vid != cur.vid) {
		now = json_parse_buf(cur.json, cur.len, r->cfg->max_depth ? r->cfg->max_depth : 64, &e);
		if (now && (!str_same(json_get_str(now, "gender"), g) ||
			    !str_same(json_get_str(now, "birthDate"), json_get_str(p, "birthDate"))))
			add_info(r, "information", expr, "the Patient's sex or birth date was changed after the "
				 "date of service %s: the edits use version %lld, in force then (the current "
				 "version is %lld)", dos, (long long)v.vid, (long long)cur.vid);
	}
	if (r->age < 0)
		add_info(r, "information", "Patient.birthDate", "no full birth date or date of service: "
			 "age edits were not run");
	if (!r->sex)
		add_info(r, "information", "Patient.gender", "the patient's sex is not male or female: sex "
			 "edits were not run");
	goto out;
unknown:
	add_info(r, "warning", expr, "the Patient is not known (or not visible to you): age and sex "
		 "edits were not run");
out:
	json_object_put(p);
	json_object_put(now);
	store_version_release(&cur);
	store_version_release(&v);
}

/* ---- the edits ---- */

struct kinds {
	const char *k[16];
	size_t n;
	struct arena *a;
};

/* Is c valid in its system on its date?  Fills c->norm and shown; reports
 * what is wrong.  Returns true when the code is a valid, billable one. */
static bool check_code(struct run *r, struct ed_code *c, const char *const *allowed, const char *what)
{
	struct store_code_version v;
	struct coding_concept k;
	struct err e = ERR_INIT;
	bool ok = false, have, found;
	int32_t dnum;

	snprintf(c->shown, sizeof(c->shown), "%.17s", c->code);
	for (const char *const *a = allowed; *a; a++)
		if (c->sys && strcmp(c->sys->name, *a) == 0)
			ok = true;
	if (!ok) {
		add_issue(r, "CODE-SYSTEM", NULL, c->expr, "%s %s is from %s; a %s must be coded in %s",
			  what, c->shown, c->system ? c->system : "no system", what,
			  allowed[1] ? "ICD-10-PCS, CPT or HCPCS" : "ICD-10-CM");
		return false;
	}
	if (coding_code_norm(c->sys, c->code, strlen(c->code), c->norm, &e) < 0) {
		add_issue(r, "CODE-INVALID", c, c->expr, "%s", e.msg);
		return false;
	}
	coding_code_show(c->sys, c->norm, c->shown);
	/* HCPCS modifiers are 2 characters, its codes 5: each in its place */
	if (strcmp(c->sys->name, "hcpcs") == 0 && c->modifier != (strlen(c->norm) == 2)) {
		add_issue(r, "CODE-INVALID", c, c->expr, c->modifier ? "%s is not an HCPCS modifier (2 characters): "
			  "a procedure or supply code goes in productOrService" : "%s is an HCPCS modifier, not a "
			  "procedure or supply code: put it in item.modifier", c->shown);
		return false;
	}
	if (pick_cached(r, c->sys, c->date, &v, &have) < 0)
		return false;
	if (!have) {
		add_issue(r, "CODE-NO-VERSION", c, c->expr, "no %s version is loaded for %s; load the release "
			  "that covers it (chartkeep codes load)", c->sys->title,
			  c->date[0] ? c->date : "any date");
		return false;
	}
	if (c->fetched) {
		found = c->found;
		if (found)
			k = *c->k;
	} else if (coding_concept_get(r->cfg->store, v.vkey, c->norm, &k, &found, &r->e) < 0) {
		return false;
	}
	if (!found) {
		add_issue(r, "CODE-INVALID", c, c->expr, "%s is not a valid %s code for %s (%s %s, effective %s "
			  "to %s)", c->shown, c->sys->title, c->date[0] ? c->date : "the newest version",
			  c->sys->title, v.version, v.eff_from, v.eff_to);
		return false;
	}
	dnum = c->date[0] ? coding_date_num(c->date) : 0;
	if (dnum && k.added && dnum < k.added) {
		add_issue(r, "CODE-INVALID", c, c->expr, "%s (%s) was added on %04d-%02d-%02d, after the date "
			  "of service %s", c->shown, k.display, (int)(k.added / 10000), (int)(k.added / 100 % 100),
			  (int)(k.added % 100), c->date);
		return false;
	}
	if (dnum && k.terminated && dnum > k.terminated) {
		add_issue(r, "CODE-INVALID", c, c->expr, "%s (%s) was terminated on %04d-%02d-%02d, before the "
			  "date of service %s", c->shown, k.display, (int)(k.terminated / 10000),
			  (int)(k.terminated / 100 % 100), (int)(k.terminated % 100), c->date);
		return false;
	}
	if (!k.billable) {
		add_issue(r, "CODE-HEADER", c, c->expr, "%s (%s) is a header code, not valid for a claim: code to "
			  "the highest specificity under it", c->shown, k.display);
		return false;
	}
	return true;
}

static void mce_dx(struct run *r, const struct ed_code *c, const struct kinds *k)
{
	for (size_t i = 0; i < k->n; i++) {
		const char *kd = k->k[i];
		if (strcmp(kd, "Newborn_Only") == 0 && r->age > 0)
			add_issue(r, "MCE-4A", c, c->expr, "%s is a newborn diagnosis (age 0) on a patient aged %d%s",
				  c->shown, r->age, r->pt_note);
		else if (strcmp(kd, "Pediatric_Only") == 0 && r->age > 17)
			add_issue(r, "MCE-4B", c, c->expr, "%s is a pediatric diagnosis (ages 0-17) on a patient "
				  "aged %d%s", c->shown, r->age, r->pt_note);
		else if (strcmp(kd, "Maternity_Only") == 0 && r->age >= 0 && (r->age < 12 || r->age > 55))
			add_issue(r, "MCE-4C", c, c->expr, "%s is a maternity diagnosis (ages 12-55) on a patient "
				  "aged %d%s", c->shown, r->age, r->pt_note);
		else if (strcmp(kd, "Adult_Only") == 0 && r->age >= 0 && (r->age < 15 || r->age > 124))
			add_issue(r, "MCE-4D", c, c->expr, "%s is an adult diagnosis (ages 15-124) on a patient "
				  "aged %d%s", c->shown, r->age, r->pt_note);
		else if (strcmp(kd, "Female_Only") == 0 && r->sex == 'M')
			add_issue(r, "MCE-5A", c, c->expr, "%s is a diagnosis for females only; the patient is "
				  "male%s", c->shown, r->pt_note);
		else if (strcmp(kd, "Male_Only") == 0 && r->sex == 'F')
			add_issue(r, "MCE-5C", c, c->expr, "%s is a diagnosis for males only; the patient is "
				  "female%s", c->shown, r->pt_note);
		else if (strcmp(kd, "Principal_Manifestation") == 0 && c->principal)
			add_issue(r, "MCE-6", c, c->expr, "%s is a manifestation code: it may not be the principal "
				  "diagnosis; sequence the underlying condition first", c->shown);
		else if (strcmp(kd, "Principal_Questionable_Admit") == 0 && c->principal)
			add_issue(r, "MCE-8A", c, c->expr, "%s as principal diagnosis is a questionable reason for "
				  "admission", c->shown);
		else if (strcmp(kd, "Principal_Unacceptable") == 0 && c->principal)
			add_issue(r, "MCE-9", c, c->expr, "%s is unacceptable as a principal diagnosis", c->shown);
		else if (strcmp(kd, "Wrong_Performed") == 0)
			add_issue(r, "MCE-18", c, c->expr, "%s says a wrong procedure was performed (wrong site, "
				  "patient or procedure): the claim needs review", c->shown);
	}
}

static void mce_px(struct run *r, const struct ed_code *c, const struct kinds *k, const struct ed_claim *cl)
{
	for (size_t i = 0; i < k->n; i++) {
		const char *kd = k->k[i];
		if (strcmp(kd, "Female_Only") == 0 && r->sex == 'M')
			add_issue(r, "MCE-5B", c, c->expr, "%s is a procedure for females only; the patient is "
				  "male%s", c->shown, r->pt_note);
		else if (strcmp(kd, "Male_Only") == 0 && r->sex == 'F')
			add_issue(r, "MCE-5D", c, c->expr, "%s is a procedure for males only; the patient is "
				  "female%s", c->shown, r->pt_note);
		else if (strcmp(kd, "Noncovered_Always") == 0)
			add_issue(r, "MCE-11A", c, c->expr, "%s is never covered by Medicare", c->shown);
		else if (strcmp(kd, "Noncovered_Over60") == 0 && r->age > 60)
			add_issue(r, "MCE-11F", c, c->expr, "%s is not covered for a patient over 60 (aged %d%s)",
				  c->shown, r->age, r->pt_note);
		else if (strcmp(kd, "Limited_Coverage") == 0)
			add_issue(r, "MCE-17A", c, c->expr, "%s is covered only in limited circumstances: check the "
				  "coverage criteria", c->shown);
		else if (strcmp(kd, "Noncovered_LOS_96hr") == 0 && cl->los_ms >= 0 &&
			 cl->los_ms < 96LL * 3600 * 1000)
			add_issue(r, "MCE-19", c, c->expr, "%s needs 96 or more consecutive hours, but the stay was "
				  "%lld hours", c->shown, (long long)(cl->los_ms / 3600000));
	}
}

/* ---- prefetching: one statement per version and list, not one per code ---- */

struct fetch {
	struct ed_code **c;   /* the codes asked for */
	size_t n;
	struct arena *a;
	int what;             /* 0 concepts, 1 MCE kinds, 2 POA-exempt */
};

static int fetched_concept(void *ctx, const struct store_concept *k)
{
	struct fetch *f = ctx;

	for (size_t i = 0; i < f->n; i++) {
		struct ed_code *c = f->c[i];
		if (strcmp(c->norm, k->code) != 0)
			continue;
		c->k = arena_alloc(f->a, sizeof(*c->k));
		if (!c->k)
			return -1;
		memset(c->k, 0, sizeof(*c->k));
		snprintf(c->k->code, sizeof(c->k->code), "%s", k->code);
		snprintf(c->k->display, sizeof(c->k->display), "%s", k->display);
		c->k->billable = k->billable;
		c->k->added = k->added;
		c->k->terminated = k->terminated;
		c->found = true;
	}
	return 0;
}

static int fetched_kind(void *ctx, const char *code, const char *kind)
{
	struct fetch *f = ctx;

	for (size_t i = 0; i < f->n; i++) {
		struct ed_code *c = f->c[i];
		if (strcmp(c->norm, code) != 0)
			continue;
		if (f->what == 2)
			c->poa_exempt = c->poa_exempt || strcmp(kind, "POA_Exempt") == 0;
		else if (c->nkinds < ARRAY_SIZE(c->kinds))
			c->kinds[c->nkinds++] = arena_strdup(f->a, kind);
	}
	return 0;
}

/* Normalise the codes of known systems, find their versions, and read their
 * concepts, a version at a time. */
static int prefetch_codes(struct run *r, struct ed_code *codes, size_t n, const char *dflt_date,
			  struct arena *a)
{
	struct ed_code *batch[ED_MAX];
	const char *norms[ED_MAX];
	bool done[ED_MAX];

	memset(done, 0, sizeof(done));
	for (size_t i = 0; i < n; i++) {
		struct ed_code *c = &codes[i];
		struct err e = ERR_INIT;
		if (!c->date[0])
			snprintf(c->date, sizeof(c->date), "%s", dflt_date);
		if (!c->sys || c->sys->kind != CK_CODES ||
		    coding_code_norm(c->sys, c->code, strlen(c->code), c->norm, &e) < 0) {
			c->norm[0] = '\0';
			done[i] = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct store_code_version v;
		struct fetch f = { batch, 0, a, 0 };
		bool have;

		if (done[i])
			continue;
		if (pick_cached(r, codes[i].sys, codes[i].date, &v, &have) < 0)
			return -1;
		/* every code of the same system and date goes in this statement */
		for (size_t j = i; j < n; j++) {
			if (done[j] || codes[j].sys != codes[i].sys || strcmp(codes[j].date, codes[i].date) != 0)
				continue;
			done[j] = true;
			if (!have)
				continue;
			codes[j].fetched = true;
			batch[f.n] = &codes[j];
			norms[f.n++] = codes[j].norm;
		}
		if (f.n && store_code_get_many(r->cfg->store, v.vkey, norms, f.n, fetched_concept, &f, &r->e) < 0)
			return -1;
	}
	return 0;
}

/* The edit lists (MCE kinds, or the POA-exempt list when poa) naming the
 * codes of one system, in one statement. */
static int prefetch_kinds(struct run *r, struct ed_code *codes, size_t n, const char *system, char type,
			  bool poa, struct arena *a)
{
	struct ed_code *batch[ED_MAX];
	const char *norms[ED_MAX];
	struct fetch f = { batch, 0, a, poa ? 2 : 1 };

	for (size_t i = 0; i < n; i++)
		if (codes[i].norm[0] && codes[i].sys && strcmp(codes[i].sys->name, system) == 0) {
			batch[f.n] = &codes[i];
			norms[f.n++] = codes[i].norm;
		}
	return store_code_edit_kinds_many(r->cfg->store, poa ? r->poa.vkey : r->mce.vkey, type, norms, f.n,
					  fetched_kind, &f, &r->e);
}

static void prefetched_kinds(const struct ed_code *c, struct kinds *k)
{
	k->n = 0;
	for (size_t i = 0; i < c->nkinds && k->n < ARRAY_SIZE(k->k); i++)
		k->k[k->n++] = c->kinds[i];
}

static void run_edits(struct run *r, struct ed_claim *cl)
{
	static const char *const dx_sys[] = { "icd10cm", NULL };
	static const char *const px_sys[] = { "icd10pcs", "cpt", "hcpcs", NULL };
	static const char *const line_sys[] = { "cpt", "hcpcs", "pos", NULL };
	static const char *const mod_sys[] = { "hcpcs", NULL };
	struct arena a;
	struct kinds k;
	const char *dos = cl->through[0] ? cl->through : cl->admit;

	arena_init(&a, 0);
	k.a = &a;
	patient_facts(r, cl);
	if (!dos[0])
		add_info(r, "warning", "Claim.billablePeriod", "the claim has no date of service: codes were "
			 "checked against the newest versions loaded");
	if (coding_pick_version(r->cfg->store, "mce", NULL, dos[0] ? dos : NULL, &r->mce, &r->has_mce, &r->e) < 0 ||
	    coding_pick_version(r->cfg->store, "poa-exempt", NULL, dos[0] ? dos : NULL, &r->poa, &r->has_poa,
				&r->e) < 0)
		goto out;
	if (!r->has_mce && dos[0]) {
		if (coding_pick_version(r->cfg->store, "mce", NULL, NULL, &r->mce, &r->has_mce, &r->e) < 0)
			goto out;
		if (r->has_mce)
			add_info(r, "information", NULL, "no MCE version covers %s: the edit lists of MCE v%s "
				 "(%s to %s) were used", dos, r->mce.version, r->mce.eff_from, r->mce.eff_to);
	}
	if (!r->has_mce)
		add_info(r, "warning", NULL, "no Medicare Code Editor lists are loaded (chartkeep codes load "
			 "--system mce): MCE edits were not run");
	if (cl->poa_applies && !r->has_poa) {
		if (coding_pick_version(r->cfg->store, "poa-exempt", NULL, NULL, &r->poa, &r->has_poa, &r->e) < 0)
			goto out;
		if (!r->has_poa)
			add_info(r, "warning", NULL, "no POA-exempt list is loaded: POA edits treat every "
				 "diagnosis as requiring a POA indicator");
	}
	if (prefetch_codes(r, cl->dx, cl->ndx, dos, &a) < 0 || prefetch_codes(r, cl->px, cl->npx, dos, &a) < 0 ||
	    prefetch_codes(r, cl->line, cl->nline, cl->admit[0] ? cl->admit : dos, &a) < 0 ||
	    prefetch_codes(r, cl->mod, cl->nmod, cl->admit[0] ? cl->admit : dos, &a) < 0)
		goto out;
	if (r->has_mce && (prefetch_kinds(r, cl->dx, cl->ndx, "icd10cm", 'D', false, &a) < 0 ||
			   prefetch_kinds(r, cl->px, cl->npx, "icd10pcs", 'P', false, &a) < 0))
		goto out;
	if (cl->poa_applies && r->has_poa && prefetch_kinds(r, cl->dx, cl->ndx, "icd10cm", 'D', true, &a) < 0)
		goto out;
	for (size_t i = 0; i < cl->ndx; i++) {
		struct ed_code *c = &cl->dx[i];
		bool valid;

		if (!c->date[0])
			snprintf(c->date, sizeof(c->date), "%s", dos);
		valid = check_code(r, c, dx_sys, "diagnosis");
		if (r->e.code)
			goto out;
		if (!c->norm[0])
			continue;
		for (size_t j = 0; j < i; j++)
			if (cl->dx[j].sys == c->sys && strcmp(cl->dx[j].norm, c->norm) == 0) {
				add_issue(r, "CODE-DUPLICATE", c, c->expr, "%s is on the claim twice (also %s)",
					  c->shown, cl->dx[j].expr);
				break;
			}
		(void)valid;
		if (r->has_mce) {
			prefetched_kinds(c, &k);
			mce_dx(r, c, &k);
		}
		if (cl->poa_applies) {
			bool exempt = r->has_poa && c->poa_exempt;
			if (!exempt && (!c->poa || !*c->poa))
				add_issue(r, "POA-MISSING", c, c->expr, "%s needs a present-on-admission indicator "
					  "(Y, N, U or W) on an inpatient claim", c->shown);
			else if (!exempt && !(strlen(c->poa) == 1 && strchr("YNUWynuw", c->poa[0])))
				add_issue(r, "POA-INVALID", c, c->expr, "%s: the POA indicator must be Y, N, U or W",
					  c->shown);
		}
	}
	for (size_t i = 0; i < cl->npx; i++) {
		struct ed_code *c = &cl->px[i];

		if (!c->date[0])
			snprintf(c->date, sizeof(c->date), "%s", dos);
		check_code(r, c, px_sys, "procedure");
		if (r->e.code)
			goto out;
		if (!c->norm[0])
			continue;
		for (size_t j = 0; j < i; j++)
			if (cl->px[j].sys == c->sys && strcmp(cl->px[j].norm, c->norm) == 0) {
				add_issue(r, "CODE-DUPLICATE", c, c->expr, "%s is on the claim twice (also %s)",
					  c->shown, cl->px[j].expr);
				break;
			}
		if (r->has_mce && strcmp(c->sys->name, "icd10pcs") == 0) {
			prefetched_kinds(c, &k);
			mce_px(r, c, &k, cl);
		}
	}
	for (size_t i = 0; i < cl->nline; i++) {
		struct ed_code *c = &cl->line[i];

		if (!c->date[0])
			snprintf(c->date, sizeof(c->date), "%s", cl->admit[0] ? cl->admit : dos);
		/* lines may carry revenue or other codes: only known systems are checked */
		if (!c->sys || (strcmp(c->sys->name, "hcpcs") != 0 && strcmp(c->sys->name, "cpt") != 0 &&
				strcmp(c->sys->name, "pos") != 0))
			continue;
		check_code(r, c, line_sys, strcmp(c->sys->name, "pos") == 0 ? "place of service" : "service line");
		if (r->e.code)
			goto out;
	}
	for (size_t i = 0; i < cl->nmod; i++) {
		check_code(r, &cl->mod[i], mod_sys, "modifier");
		if (r->e.code)
			goto out;
	}
out:
	arena_release(&a);
}

/* ---- the operation ---- */

/* A Claim from the body: the resource itself, or Parameters with it. */
static json_object *claim_of_body(struct fhir_req *req, struct err *e)
{
	json_object *root = json_parse_buf(req->body, req->body_len, 64, e), *params, *res = NULL;

	if (!root)
		return NULL;
	if (json_is_str(json_get(root, "resourceType"), "Claim"))
		return root;
	if (json_is_str(json_get(root, "resourceType"), "Parameters")) {
		params = json_get_arr(root, "parameter");
		for (size_t i = 0; params && i < json_object_array_length(params); i++) {
			json_object *p = json_object_array_get_idx(params, i);
			if ((json_is_str(json_get(p, "name"), "claim") ||
			     json_is_str(json_get(p, "name"), "resource")) && json_get_obj(p, "resource"))
				res = json_get_obj(p, "resource");
		}
		if (res && json_is_str(json_get(res, "resourceType"), "Claim")) {
			json_object_get(res);
			json_object_put(root);
			return res;
		}
	}
	json_object_put(root);
	err_set(e, ERR_INVALID, "the body must be a Claim, or Parameters with a Claim in 'resource'");
	return NULL;
}

static size_t edits_on(struct run *r, json_object *claim, const char *prefix, char *patient)
{
	/* the code arrays (60 KB) are filled as they are used: zeroing them
	 * was a measurable part of a run */
	struct ed_claim *cl = malloc(sizeof(*cl));
	size_t before = r->issues;

	if (!cl) {
		err_set(&r->e, ERR_NOMEM, "out of memory");
		return 0;
	}
	memset(cl, 0, offsetof(struct ed_claim, dx));
	cl->prefix = prefix;
	claim_read(r, claim, cl);
	if (patient && cl->patient[0])
		snprintf(patient, ID_MAX + 1, "%s", cl->patient);
	run_edits(r, cl);
	free(cl);
	return r->issues - before;
}

void coding_code_edits(const struct fhir_config *cfg, struct fhir_req *req, int op,
		       struct fhir_resp *resp, char *patient)
{
	struct run r;
	json_object *claim = NULL;
	const char *ref = NULL;
	size_t nclaims = 0;
	char (*ids)[ID_MAX + 1] = NULL;
	size_t nids = 0;
	bool scoped = false;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.req = req;
	r.out = &resp->body;
	patient[0] = '\0';
	for (size_t i = 0; i < req->n_params; i++)
		if (strcmp(req->params[i].name, "claim") == 0)
			ref = req->params[i].value;
	buf_reset(r.out);
	/* every read of the run in one snapshot: the claim's resources, the
	 * code set versions and lists agree even while a load commits, and
	 * one WAL read lock is taken instead of one per statement */
	if (store_read_scope_begin(cfg->store, &r.e) < 0)
		goto fail;
	scoped = true;
	if (op == COP_EDITS_CLAIM) {
		if (ref) {
			char id[ID_MAX + 1];
			json_object *o = json_object_new_object();
			json_object_object_add(o, "reference", json_object_new_string(ref));
			if (!ref_id(o, "Claim", id)) {
				json_object_put(o);
				err_set(&r.e, ERR_INVALID, "claim: a reference Claim/<id>");
				goto fail;
			}
			json_object_put(o);
			claim = read_res(&r, "Claim", id);
			if (!claim) {
				err_set(&r.e, ERR_NOT_FOUND, "Claim/%s is not known", id);
				goto fail;
			}
		} else if (req->body_len) {
			claim = claim_of_body(req, &r.e);
			if (!claim)
				goto fail;
		} else {
			err_set(&r.e, ERR_INVALID, "send a Claim in the body, or ?claim=Claim/<id>");
			goto fail;
		}
		buf_addstr(r.out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[");
		edits_on(&r, claim, "Claim", patient);
		nclaims = 1;
	} else {
		json_object *enc = read_res(&r, "Encounter", req->id);
		char q[ID_MAX + 32];
		if (!enc) {
			err_set(&r.e, ERR_NOT_FOUND, "Encounter/%s is not known", req->id);
			goto fail;
		}
		json_object_put(enc);
		ids = calloc(9, sizeof(*ids));
		if (!ids) {
			err_set(&r.e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		snprintf(q, sizeof(q), "encounter=Encounter/%s", req->id);
		if (fhir_search_ids(cfg, "Claim", q, ids, 8, &nids, &r.e) < 0)
			goto fail;
		buf_addstr(r.out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[");
		for (size_t i = 0; i < nids && i < 8; i++) {
			char *prefix;
			json_object *c = read_res(&r, "Claim", ids[i]);
			if (!c)
				continue;
			prefix = arena_printf(req->arena, "Claim/%s", ids[i]);
			edits_on(&r, c, prefix ? prefix : "Claim", patient);
			json_object_put(c);
			nclaims++;
			if (r.e.code)
				goto fail;
		}
		if (!nclaims) {
			/* not billed yet: the encounter's own diagnoses and procedures */
			struct ed_claim *cl = calloc(1, sizeof(*cl));
			struct arena a;

			enc = cl ? read_res(&r, "Encounter", req->id) : NULL;
			if (!cl || !enc) {
				free(cl);
				err_set(&r.e, cl ? ERR_NOT_FOUND : ERR_NOMEM, "Encounter/%s is not known", req->id);
				goto fail;
			}
			arena_init(&a, 0);
			cl->prefix = "Encounter";
			encounter_read(&r, enc, req->id, cl, &a);
			json_object_put(enc);
			if (!r.e.code) {
				if (cl->patient[0])
					snprintf(patient, ID_MAX + 1, "%s", cl->patient);
				add_info(&r, "information", NULL, "no Claim refers to this encounter yet: its "
					 "diagnoses (%zu) and procedures (%zu) were checked; POA indicators are "
					 "checked on the claim", cl->ndx, cl->npx);
				run_edits(&r, cl);
			}
			arena_release(&a);
			free(cl);
		}
	}
	if (r.e.code)
		goto fail;
	if (r.fired == 0)
		add_info(&r, "information", NULL, "no coding edit fired (%zu claim%s checked)", nclaims,
			 nclaims == 1 ? "" : "s");
	buf_addstr(r.out, "]}");
	resp->status = 200;
	goto out;
fail:
	buf_reset(r.out);
	fhir_resp_error(resp, &r.e);
out:
	if (scoped)
		store_read_scope_end(cfg->store);
	free(ids);
	json_object_put(claim);
}
