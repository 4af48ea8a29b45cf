/* policy.h - the policy decision point: role x resource type x action,
 * SMART scopes, sensitivity labels, consent for disclosures, break-the-glass.
 *
 * One request is decided in two steps:
 *
 *   1. At the door (the dispatcher), privacy_decide_ex(): the role table
 *      (role x type x action, built-in defaults plus an optional site file)
 *      and then the token's SMART scopes.  A table lookup, no allocation.
 *      The answer may carry a patient restriction (patient/ scopes): the
 *      caller keeps the request inside that Patient's compartment with
 *      privacy_in_patient_context() for every resource it reads or writes.
 *   2. Per resource (the read/search path), privacy_may_see(): the
 *      resource's and its patient's sensitivity labels (meta.security)
 *      against the role's clearance, unless break-the-glass is active for
 *      that user and patient (privacy_btg_active()).
 *
 * Per entry or per hit of another type than the request's (Bundle entries,
 * system-level search/history, _include, $everything, $export types) the
 * caller decides again with privacy_decide_ex() and that entry's type.
 *
 * Threads: privacy_policy_load()/privacy_policy_reset() replace the table
 * and must run before any thread decides (serve loads the site file once at
 * start-up).  Everything else only reads it and may run on any thread. */
#ifndef CK_POLICY_H
#define CK_POLICY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "privacy/privacy.h"
#include "store/store.h"

/* ---- the role table ---- */

#define PRIVACY_POLICY_FILE_MAX (1024 * 1024)  /* bytes of a site file */
#define PRIVACY_POLICY_LINE_MAX 4096
#define PRIVACY_BTG_DEFAULT_MINUTES 60
#define PRIVACY_BTG_MAX_MINUTES 1440
#define PRIVACY_BTG_REASON_MAX 500             /* bytes */

/* Replace the effective policy by the built-in defaults plus the site file
 * at path (docs/internals/privacy.md, data/policy.example).  Everything is
 * validated first: on any error (ERR_IO: cannot read; ERR_INVALID: a
 * message "FILE:LINE: what is wrong") the policy in force is unchanged. */
int privacy_policy_load(const char *path, struct err *e);
/* The same from text[0..len); name is used in messages in place of a path. */
int privacy_policy_load_text(const char *text, size_t len, const char *name, struct err *e);
/* Back to the built-in defaults (start-up state; for tests). */
void privacy_policy_reset(void);
/* The site file in force ("" for the built-in defaults alone). */
const char *privacy_policy_source(void);

/* The actions (bitmask of 1u << PA_*) the role table gives role on type
 * (NULL: system-level interactions).  0 for an unknown role or type.
 * Scopes, labels and BATCH/CAPABILITIES (always allowed) are not in it. */
unsigned privacy_policy_actions(const char *role, const char *type);
/* "read", "vread", ... for a PA_* value; "?" if unknown. */
const char *privacy_action_name(int action);

/* The effective table for people: per role its clearance, then per group
 * the actions (types of a group that differ listed under it), then the
 * groups' members.  Appended to out. */
void privacy_policy_describe(struct buf *out);

/* What privacy_decide_ex() found besides "allowed". */
struct privacy_decision {
	/* Not NULL: allowed only inside this Patient's compartment (the token
	 * allows it through patient/ scopes only).  Points into who->patient.
	 * Read/search: drop every resource that privacy_in_patient_context()
	 * rejects.  Create/update/delete: refuse (403) unless the resource (for
	 * update, both the stored and the new version) is in the context. */
	const char *patient;
	/* The request carries a well-formed break-the-glass reason from a role
	 * that may break the glass: the caller records a grant with
	 * privacy_btg_grant() for the patient the request is about, before it
	 * reads. */
	bool btg;
};

/* The policy decision point.  0: allowed, *d says under which conditions
 * (d may be NULL only if the caller cannot honour a patient restriction:
 * then a restricted request is refused).  -1 with ERR_FORBIDDEN: the role
 * table or the scopes say no, or who is NULL, inactive role, malformed
 * stored scopes; the message names the role, action and type, never an id,
 * so it never says whether a record exists.  -1 with ERR_INVALID: a
 * break-the-glass reason that is empty, too long or not printable. */
int privacy_decide_ex(const struct store_principal *who, const struct privacy_request *rq,
		      struct privacy_decision *d, struct err *e);
/* privacy_decide() (privacy.h) is privacy_decide_ex(who, rq, NULL, e): a
 * patient-restricted request is allowed only when it provably stays in the
 * context (read, vread or history of Patient/<context>); use
 * privacy_decide_ex() to serve patient/ scopes in full. */

/* Is a resource of type/id in the patient context of d?  patients[0..n)
 * are the Patient ids (or "Patient/<id>" references) the resource refers
 * to through its Patient-compartment parameters (CompartmentDefinition
 * patient).  True when d has no restriction; when type/id is the context
 * Patient itself; or when one of patients[] is the context.  False for any
 * resource that refers to no patient: types outside the compartment are not
 * reachable through patient/ scopes. */
bool privacy_in_patient_context(const struct privacy_decision *d, const char *type,
				const char *id, const char *const *patients, size_t n);

/* ---- SMART scopes (scopes.c) ---- */

enum privacy_scope_ctx { PSC_PATIENT = 1, PSC_USER, PSC_SYSTEM };

/* Permissions of a resource scope, SMART v2 letters. */
enum {
	PSP_C = 1u << 0, PSP_R = 1u << 1, PSP_U = 1u << 2, PSP_D = 1u << 3, PSP_S = 1u << 4,
};

/* Non-resource scopes that were present. */
enum {
	PSF_OPENID = 1u << 0, PSF_FHIRUSER = 1u << 1, PSF_PROFILE = 1u << 2,
	PSF_OFFLINE = 1u << 3, PSF_ONLINE = 1u << 4, PSF_LAUNCH = 1u << 5,
	PSF_LAUNCH_PATIENT = 1u << 6, PSF_LAUNCH_ENCOUNTER = 1u << 7,
};

#define PRIVACY_SCOPES_MAX 128    /* resource scopes in one token */
#define PRIVACY_SCOPE_LEN_MAX 200 /* bytes of one scope */

struct privacy_scope {
	uint8_t ctx;     /* enum privacy_scope_ctx */
	uint8_t perms;   /* PSP_* */
	int16_t type;    /* index of the resource type (policy_int.h); -1: "*" */
};

struct privacy_scopes {
	struct privacy_scope v[PRIVACY_SCOPES_MAX];
	size_t n;
	unsigned flags;  /* PSF_* */
};

/* Parse a space-separated scope string (NULL or "" gives none): SMART v2
 * `<patient|user|system>/<Type|*>.<cruds>` (letters in that order), v1
 * `.read`/`.write`/`.*`, and openid, fhirUser, profile, offline_access,
 * online_access, launch, launch/patient, launch/encounter.  ERR_INVALID with
 * a message naming the first bad scope: malformed, unknown resource type,
 * unknown non-resource scope, query-restricted (`?category=...`: not
 * supported), too many. */
int privacy_scopes_parse(const char *text, struct privacy_scopes *out, struct err *e);
/* Which scope context allows action on type (NULL: system level, needs a
 * "*" scope): the widest of PSC_SYSTEM/PSC_USER over PSC_PATIENT, or 0 if
 * none does.  BATCH and CAPABILITIES give PSC_SYSTEM (decided elsewhere). */
int privacy_scopes_allow(const struct privacy_scopes *sc, int action, const char *type);
/* Do these scopes narrow the role?  An empty (or all-blank) scope string,
 * as the CLI issues tokens without --scope, does not narrow at all; any other
 * string does, and one without resource scopes (only "openid fhirUser", say)
 * allows no data access. */
bool privacy_scopes_narrow(const char *text);

/* ---- sensitivity labels (labels.c) ---- */

/* v3-Confidentiality, in increasing order.  An unlabelled resource is N. */
enum privacy_conf { PCONF_U = 1, PCONF_L, PCONF_M, PCONF_N, PCONF_R, PCONF_V };

/* Sensitivity categories (v3-ActCode codes folded into these; the list and
 * the folding are in docs/internals/privacy.md). */
enum {
	PCAT_SUD = 1u << 0,     /* substance use: ETH, SUD, ETHUD, OPIOIDUD, 42CFRPart2 */
	PCAT_PSYNOTE = 1u << 1, /* psychotherapy notes: PSYTHPN, HIPAAPsyNotes */
	PCAT_BH = 1u << 2,      /* behavioural / mental health: BH, PSY, MH, ... */
	PCAT_HIV = 1u << 3,     /* HIV */
	PCAT_STD = 1u << 4,     /* STD */
	PCAT_SEX = 1u << 5,     /* sexuality and reproductive health: SEX */
	PCAT_SDV = 1u << 6,     /* sexual assault, abuse, domestic violence: SDV, MST */
	PCAT_GDIS = 1u << 7,    /* genetic: GDIS, SCA */
	PCAT__ALL = (1u << 8) - 1
};

struct privacy_labels {
	uint8_t conf;    /* enum privacy_conf; 0 is read as N */
	uint16_t cats;   /* PCAT_* */
};

/* Labels of a resource.  o is the resource, or its meta, or the
 * meta.security array.  0; -1 if o is not of that shape (out is then set to
 * the most restricted labels, so that a caller who ignores the result fails
 * closed).  Codings of other systems are ignored. */
int privacy_labels_of(json_object *o, struct privacy_labels *out);
/* The same from a resource's JSON text (as stored: meta comes early), without
 * parsing the rest: a scan of the top-level members up to "meta", and of
 * meta up to "security".  -1 on malformed JSON (most restricted labels). */
int privacy_labels_of_json(const char *json, size_t len, struct privacy_labels *out);
/* Above normal (R, V) or in any category. */
bool privacy_labels_sensitive(const struct privacy_labels *l);
/* Name of a category bit ("sud", "psynote", ...), or NULL. */
const char *privacy_category_name(unsigned bit);

/* May who see a resource with these labels?  resource and patient (the
 * Patient's own labels, applying to the whole record) may be NULL.  True
 * when the role's clearance covers the higher confidentiality and every
 * category of both, or when btg_active (privacy_btg_active for who and the
 * patient).  False for an unknown role. */
bool privacy_may_see(const struct store_principal *who, const struct privacy_labels *resource,
		     const struct privacy_labels *patient, bool btg_active);

/* ---- consent to disclosure (labels.c) ---- */

struct privacy_disclosure {
	const char *purpose;    /* v3 PurposeOfUse code ("HPAYMT", "TREAT"); NULL unknown */
	const char *recipient;  /* "Organization/7"; NULL unknown */
	const char *type;       /* resource type disclosed; NULL: the whole record */
	const struct privacy_labels *labels;  /* of the data disclosed; NULL: not known
						 (the whole record) */
	int64_t now_ms;
};

/* Does this R4 Consent forbid the disclosure?  Only an active
 * patient-privacy Consent can: its provision tree (type deny/permit, nested
 * provisions as exceptions) is evaluated on period, purpose, actor,
 * class and securityLabel.  Restrictions this function does not evaluate
 * (code, data, dataPeriod, action) make a deny apply and a permit not,
 * so that what is unknown is never disclosed. */
bool privacy_consent_denies_disclosure(json_object *consent, const struct privacy_disclosure *d);

/* ---- break-the-glass (policy.c, store: sqlite_btg.c) ---- */

/* May role break the glass (site file: break-glass-roles)? */
bool privacy_btg_role(const char *role);
/* Minutes a grant lasts (site file: break-glass-minutes). */
int privacy_btg_minutes(void);
/* A reason: 1..500 bytes, valid UTF-8, no control characters, not blank.
 * ERR_INVALID saying which. */
int privacy_btg_reason_check(const char *reason, struct err *e);
/* Record a grant for who on patient_id from now_ms for the configured
 * minutes (*until_ms receives the end).  ERR_FORBIDDEN if who's role may not
 * break the glass; ERR_INVALID for a bad reason or patient id; store errors.
 * source (client address) may be NULL. */
int privacy_btg_grant(struct store *s, const struct store_principal *who, const char *patient_id,
		      const char *reason, const char *source, int64_t now_ms, int64_t *until_ms,
		      struct err *e);
/* Has uid a grant for patient_id that is active at now_ms?  One indexed
 * lookup on a reader connection; false on any store error (fails closed). */
bool privacy_btg_active(struct store *s, int64_t uid, const char *patient_id, int64_t now_ms);
/* Grants made at or after since_ms, oldest first, for the privacy officer's
 * report.  fn: 0 go on, 1 stop, -1 fail. */
typedef int (*privacy_btg_fn)(void *ctx, const struct store_btg *g);
int privacy_btg_list(struct store *s, int64_t since_ms, privacy_btg_fn fn, void *ctx,
		     struct err *e);

#endif
