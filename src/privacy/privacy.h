/* privacy.h - users, roles, passwords, tokens, and the one policy hook.
 *
 * Every request that reaches patient data passes privacy_decide() (the
 * policy decision point) and privacy_audit() (the audit trail), called from
 * exactly one place in the server's dispatcher; no route bypasses them.  In
 * this version the decision allows any authenticated, active user whose
 * role is one of the HIM roles, and the audit hook only counts; the security
 * issue replaces both bodies (role x type x action policy, SMART scopes,
 * sensitivity labels, break-the-glass, the hash-chained AuditEvent log)
 * without changing a caller. */
#ifndef CK_PRIVACY_H
#define CK_PRIVACY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

#define PRIVACY_MIN_PASSWORD 12
#define PRIVACY_MAX_PASSWORD 256
#define PRIVACY_TOKEN_MAX 64      /* "ck_" + 43 base64url characters + NUL */
#define PRIVACY_DEFAULT_TTL 3600  /* seconds */

/* The HIM career ladder, as role names. */
extern const char *const privacy_roles[];
bool privacy_role_valid(const char *role);
/* Usernames: 1-64 of a-z A-Z 0-9 . _ - @ */
bool privacy_username_valid(const char *name);

/* Password policy: length, not a common password.  ERR_INVALID with why. */
int privacy_password_check(const char *pw, struct err *e);
/* argon2id (libsodium crypto_pwhash_str). */
int privacy_password_hash(const char *pw, char out[STORE_HASH_MAX + 1], struct err *e);
bool privacy_password_verify(const char *hash, const char *pw);

/* Check username, role and password, hash it, store the user. */
int privacy_user_add(struct store *s, const char *username, const char *role,
		     const char *password, struct err *e);

/* A new random bearer token for username, valid ttl seconds; only its hash
 * is stored.  out receives the token (NUL-terminated). */
int privacy_token_issue(struct store *s, const char *username, int64_t ttl_s,
			const char *scopes, char out[PRIVACY_TOKEN_MAX], struct err *e);
int privacy_token_revoke(struct store *s, const char *token, struct err *e);
/* The principal behind "Bearer <token>".  ERR_UNAUTHENTICATED when the
 * header is missing or malformed, or the token is unknown, expired or
 * revoked. */
int privacy_authenticate(struct store *s, const char *authorization,
			 struct store_principal *out, struct err *e);

/* What a request does, for the policy decision and the audit trail. */
enum privacy_action {
	PA_READ = 1, PA_VREAD, PA_SEARCH, PA_HISTORY, PA_CREATE, PA_UPDATE, PA_PATCH,
	PA_DELETE, PA_BATCH, PA_OPERATION, PA_CAPABILITIES
};

struct privacy_request {
	int action;            /* enum privacy_action */
	const char *type;      /* resource type, or NULL (system level) */
	const char *id;        /* resource id, or NULL */
	const char *source;    /* client address, for the audit trail */
	const char *btg_reason;  /* break-the-glass reason (header X-Break-Glass), or NULL */
	const char *purpose;   /* purpose of use (v3 PurposeOfUse code), or NULL: TREAT */
};

/* The policy decision point.  0: allowed; -1 with ERR_FORBIDDEN (a message
 * that never says whether the record exists). */
int privacy_decide(const struct store_principal *who, const struct privacy_request *rq,
		   struct err *e);
/* The audit hook: called once per request after the outcome is known. */
void privacy_audit(const struct store_principal *who, const struct privacy_request *rq,
		   int status);

#endif
