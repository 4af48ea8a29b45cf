/* audit.c - AuditEvent entries (see audit.h).
 *
 * The JSON is written by hand, in one fixed member order, because it is
 * hashed as written: the same request always gives the same bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "fhir/fhir.h"
#include "privacy/audit.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define CS_EVENT_TYPE "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define CS_RESTFUL "http://hl7.org/fhir/restful-interaction"
#define CS_DCM "http://dicom.nema.org/resources/ontology/DCM"
#define CS_ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define CS_OBJECT_ROLE "http://terminology.hl7.org/CodeSystem/object-role"
#define CS_PURPOSE "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#define CS_SOURCE_TYPE "http://terminology.hl7.org/CodeSystem/security-source-type"
#define CS_PARTICIPATION "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define SYS_USER "urn:chartkeep:user"
#define SYS_CLIENT "urn:chartkeep:client"
#define SYS_AUTH_EVENT "urn:chartkeep:auth-event"

void audit_add_patient(struct audit_info *ai, const char *id)
{
	if (!id || !*id)
		return;
	for (size_t i = 0; i < ai->npatients; i++)
		if (strcmp(ai->patients[i], id) == 0)
			return;
	if (ai->npatients < AUDIT_MAX_PATIENTS)
		ai->patients[ai->npatients++] = id;
	else
		ai->more_patients++;
}

void audit_add_entity(struct audit_info *ai, const char *type, const char *id, int64_t vid)
{
	if (!type || ai->nent == AUDIT_MAX_ENTITIES)
		return;
	ai->ent[ai->nent].type = type;
	ai->ent[ai->nent].id = id;
	ai->ent[ai->nent].vid = vid;
	ai->nent++;
}

void audit_patients_of_rows(struct audit_info *ai, const struct store_ix_row *ix, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ix[i].kind == SIX_REFERENCE && ix[i].s1 && ix[i].s2 && strcmp(ix[i].s1, "Patient") == 0)
			audit_add_patient(ai, ix[i].s2);
}

/* E(xecute) for searches and operations, as BALP does. */
static char action_code(int action)
{
	switch (action) {
	case PA_CREATE: return 'C';
	case PA_READ: case PA_VREAD: case PA_HISTORY: return 'R';
	case PA_UPDATE: case PA_PATCH: return 'U';
	case PA_DELETE: return 'D';
	default: return 'E';
	}
}

static const char *outcome_code(int status)
{
	if (status < 400)
		return "0";
	if (status < 500)
		return "4";  /* minor failure: the request was refused */
	return "8";      /* serious failure */
}

/* s as a JSON string, quotes and all. */
static void str(struct buf *out, const char *s)
{
	buf_addch(out, '"');
	buf_add_json_str(out, s ? s : "", s ? strlen(s) : 0);
	buf_addch(out, '"');
}

int audit_event_json(const struct audit_info *ai, int64_t ts, struct buf *out)
{
	char when[TIME_INSTANT_MAX];
	const char *user = ai->who ? ai->who->username : ai->username;
	bool is_client = ai->who && ai->who->uid < 0;
	bool any_entity = false;

	time_format_instant(ts, when);
	if (ai->auth_event)
		buf_addstr(out, "{\"resourceType\":\"AuditEvent\",\"type\":{\"system\":\"" CS_DCM "\","
				"\"code\":\"110114\",\"display\":\"User Authentication\"},");
	else
		buf_addstr(out, "{\"resourceType\":\"AuditEvent\",\"type\":{\"system\":\"" CS_EVENT_TYPE "\","
				"\"code\":\"rest\",\"display\":\"RESTful Operation\"},");
	buf_addstr(out, "\"subtype\":[{\"system\":\"");
	buf_addstr(out, ai->auth_event ? SYS_AUTH_EVENT : CS_RESTFUL);
	buf_addstr(out, "\",\"code\":");
	str(out, ai->auth_event ? ai->auth_event : ai->interaction ? ai->interaction : "operation");
	buf_addf(out, "}],\"action\":\"%c\",\"recorded\":\"%s\",\"outcome\":\"%s\"", action_code(ai->action),
		 when, outcome_code(ai->status));
	buf_addf(out, ",\"outcomeDesc\":\"HTTP %d\"", ai->status);
	buf_addstr(out, ",\"purposeOfEvent\":[{\"coding\":[{\"system\":\"" CS_PURPOSE "\",\"code\":");
	str(out, ai->btg_reason ? "ETREAT" : ai->purpose ? ai->purpose : "TREAT");
	buf_addstr(out, "}]}]");

	/* agent: the user (or client), then this server */
	buf_addstr(out, ",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"" CS_PARTICIPATION
			"\",\"code\":\"IRCP\",\"display\":\"information recipient\"}]},\"who\":{\"identifier\":{"
			"\"system\":\"");
	buf_addstr(out, is_client ? SYS_CLIENT : SYS_USER);
	buf_addstr(out, "\",\"value\":");
	str(out, user ? user : "(unknown)");
	buf_addstr(out, "}");
	if (ai->who && ai->who->practitioner[0]) {
		buf_addstr(out, ",\"reference\":");
		str(out, ai->who->practitioner);
	}
	buf_addstr(out, "}");
	if (ai->who) {
		buf_addstr(out, ",\"role\":[{\"text\":");
		str(out, ai->who->role);
		buf_addstr(out, "}]");
	}
	buf_addstr(out, ",\"requestor\":true");
	if (ai->source) {
		buf_addstr(out, ",\"network\":{\"address\":");
		str(out, ai->source);
		buf_addstr(out, ",\"type\":\"2\"}");
	}
	if (ai->btg_reason) {
		buf_addstr(out, ",\"purposeOfUse\":[{\"coding\":[{\"system\":\"" CS_PURPOSE
				"\",\"code\":\"ETREAT\",\"display\":\"Emergency Treatment\"}],\"text\":");
		str(out, ai->btg_reason);
		buf_addstr(out, "}]");
	}
	buf_addstr(out, "},{\"type\":{\"coding\":[{\"system\":\"" CS_DCM
			"\",\"code\":\"110153\",\"display\":\"Source Role ID\"}]},\"who\":{\"display\":"
			"\"chartkeep\"},\"requestor\":false}]");
	buf_addf(out, ",\"source\":{\"observer\":{\"display\":\"chartkeep\"},\"type\":[{\"system\":\""
		      CS_SOURCE_TYPE "\",\"code\":\"4\",\"display\":\"Application Server\"}]}");

	/* entity: the patients, the resources, the query */
	buf_addstr(out, ",\"entity\":[");
	for (size_t i = 0; i < ai->npatients; i++) {
		char ref[128];
		snprintf(ref, sizeof(ref), "Patient/%.100s", ai->patients[i]);
		buf_addf(out, "%s{\"what\":{\"reference\":", any_entity ? "," : "");
		str(out, ref);
		any_entity = true;
		buf_addstr(out, "},\"type\":{\"system\":\"" CS_ENTITY_TYPE "\",\"code\":\"1\"},"
				"\"role\":{\"system\":\"" CS_OBJECT_ROLE "\",\"code\":\"1\",\"display\":\"Patient\"}}");
	}
	for (size_t i = 0; i < ai->nent; i++) {
		const struct audit_entity *en = &ai->ent[i];
		char ref[200];
		if (en->id && en->vid > 0)
			snprintf(ref, sizeof(ref), "%.64s/%.64s/_history/%" PRId64, en->type, en->id, en->vid);
		else if (en->id)
			snprintf(ref, sizeof(ref), "%.64s/%.64s", en->type, en->id);
		else
			snprintf(ref, sizeof(ref), "%.64s", en->type);
		buf_addf(out, "%s{\"what\":{\"reference\":", any_entity ? "," : "");
		str(out, ref);
		buf_addstr(out, "},\"type\":{\"system\":\"" CS_ENTITY_TYPE "\",\"code\":\"2\"},"
				"\"role\":{\"system\":\"" CS_OBJECT_ROLE "\",\"code\":\"4\",\"display\":\"Domain Resource\"}}");
		any_entity = true;
	}
	if (ai->query && *ai->query) {
		buf_addf(out, "%s{\"type\":{\"system\":\"" CS_ENTITY_TYPE "\",\"code\":\"2\"},"
			      "\"role\":{\"system\":\"" CS_OBJECT_ROLE "\",\"code\":\"24\",\"display\":\"Query\"},"
			      "\"description\":",
			 any_entity ? "," : "");
		str(out, ai->query);
		buf_addstr(out, "}");
		any_entity = true;
	}
	if (ai->more_patients)
		buf_addf(out, "%s{\"description\":\"and %zu more patients\"}", any_entity ? "," : "",
			 ai->more_patients);
	buf_addf(out, "]");
	buf_addf(out, ",\"extension\":[{\"url\":\"urn:chartkeep:request-id\",\"valueString\":\"%" PRIx64 "\"}]}",
		 ai->rid);
	return out->failed ? -1 : 0;
}

int audit_txn_entry(struct store_txn *t, int64_t ts, struct buf *out)
{
	const struct audit_info *base = t->audit_arg;
	struct audit_info ai;

	/* made before it was submitted (a read's entry): the writer only copies */
	if (base->prebuilt) {
		buf_add(out, base->prebuilt, base->prebuilt_len);
		return out->failed ? -1 : 0;
	}
	ai = *base;

	if (ai.status == 0) {
		if (t->rc == 0) {
			ai.status = 200;
			for (size_t i = 0; i < t->n; i++)
				if (t->ops[i].status == 201)
					ai.status = 201;
		} else {
			ai.status = fhir_http_status(t->err.code);
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct store_op *op = &t->ops[i];
		if (op->type && op->id && strcmp(op->type, "Patient") == 0)
			audit_add_patient(&ai, op->id);
		audit_patients_of_rows(&ai, op->ix, op->n_ix);
		audit_add_entity(&ai, op->type, op->id, op->status ? op->vid : 0);
	}
	return audit_event_json(&ai, ts, out);
}

void privacy_audit_auth(struct store *s, const char *username, const char *event, const char *source,
			bool success)
{
	struct audit_info ai;
	struct store_txn t;

	memset(&ai, 0, sizeof(ai));
	ai.username = username ? username : "(unknown user)";
	ai.action = PA_OPERATION;
	ai.auth_event = event;
	ai.source = source;
	ai.status = success ? 200 : 401;
	memset(&t, 0, sizeof(t));
	t.atomic = true;
	t.audit = audit_txn_entry;
	t.audit_arg = &ai;
	if (!s || store_commit(s, &t) != 0)
		log_error("event=audit_failed auth_event=%s detail=\"%s\"", event, t.err.detail);
}
