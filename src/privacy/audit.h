/* audit.h - the AuditEvent entries of the audit trail.
 *
 * One entry per request that touches patient data (and per failed attempt),
 * shaped after IHE Basic Audit Log Patterns: who (user name, role, client,
 * source address), what (the resources, their patients, the query), the
 * action, the outcome, and the purpose of use.  The server fills a struct
 * audit_info as the request goes; the store writes the entry in the same
 * transaction as a write, or alone (and durably) before a read is answered.
 * The entry never carries a resource's content. */
#ifndef CK_AUDIT_H
#define CK_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "store/store.h"

#define AUDIT_MAX_PATIENTS 64   /* more are counted, not named */
#define AUDIT_MAX_ENTITIES 16

struct audit_entity {
	const char *type, *id;
	int64_t vid;                /* 0: none */
};

struct audit_info {
	const struct store_principal *who;  /* NULL: not authenticated */
	const char *username;        /* when who is NULL: the name given (a failed login), or NULL */
	int action;                  /* enum privacy_action */
	const char *interaction;     /* restful-interaction code: read, search-type, create, ...; or
					an operation name ("$export", "login") */
	const char *auth_event;      /* an authentication event (privacy_audit_auth), or NULL */
	const char *prebuilt;        /* the entry already made (audit_event_json), or NULL: */
	size_t prebuilt_len;         /*   audit_txn_entry then only copies it */
	const char *query;           /* search / operation parameters as received, or NULL */
	const char *source;          /* client address */
	const char *purpose;         /* v3 PurposeOfUse code; NULL: TREAT */
	const char *btg_reason;      /* break-the-glass: the reason given, or NULL */
	uint64_t rid;                /* the request id of the server log */
	int status;                  /* HTTP status of the answer (0: from the transaction) */
	struct audit_entity ent[AUDIT_MAX_ENTITIES];
	size_t nent;
	const char *patients[AUDIT_MAX_PATIENTS];
	size_t npatients, more_patients;
};

/* Add a patient (an id, copied into the arena-free slots by pointer: the
 * caller keeps it alive until the entry is built); duplicates are dropped. */
void audit_add_patient(struct audit_info *ai, const char *id);
void audit_add_entity(struct audit_info *ai, const char *type, const char *id, int64_t vid);

/* The AuditEvent JSON (no id, no meta) for ai, recorded at ts. */
int audit_event_json(const struct audit_info *ai, int64_t ts, struct buf *out);

/* The patients a write's index rows point to (reference rows to Patient/x):
 * added to ai. */
void audit_patients_of_rows(struct audit_info *ai, const struct store_ix_row *ix, size_t n);

/* The store_txn.audit callback for a transaction whose audit_arg is a
 * struct audit_info: the outcome, entities and patients come from the
 * transaction's operations. */
int audit_txn_entry(struct store_txn *t, int64_t ts, struct buf *out);

#endif
