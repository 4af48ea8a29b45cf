/* privacy.h - users, roles, passwords, tokens, OAuth2, and the policy hook.
 *
 * Every request that reaches patient data passes privacy_decide_ex() (the
 * policy decision point, policy.h), called from one place in the server's
 * dispatcher, and is recorded in the audit trail (audit.h); no route
 * bypasses either. */
#ifndef CK_PRIVACY_H
#define CK_PRIVACY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
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

/* ---- OAuth2: POST /auth/token and POST /auth/revoke (oauth.c) ----
 *
 * RFC 6749 token endpoint with three grants - password (the staff UI),
 * client_credentials (registered system clients, system/ scopes only) and
 * refresh_token (rotating: a refresh token works once; presenting a used one
 * again revokes every token of its login, its "family") - and RFC 7009
 * revocation.  Answers are RFC 6749 JSON with the HTTP status; the server
 * adds the headers (Cache-Control: no-store, WWW-Authenticate, Retry-After)
 * and the per-address rate limit.  Passwords, secrets and tokens never reach
 * the log or an error message. */

#define PRIVACY_SECRET_MAX 64          /* "cks_" + 43 base64url characters + NUL */
#define PRIVACY_REFRESH_TTL (12 * 3600)  /* seconds: one login lasts a shift */
#define PRIVACY_LOCKOUT_ATTEMPTS 5
#define PRIVACY_LOCKOUT_MINUTES 15

struct privacy_oauth_config {
	int lockout_attempts;      /* wrong passwords in a row that lock a user; 0: never */
	int64_t lockout_ms;        /* how long */
	int64_t access_ttl_s;      /* access token lifetime */
	int64_t refresh_ttl_s;     /* refresh token lifetime: rotation keeps the first expiry */
};

void privacy_oauth_config_defaults(struct privacy_oauth_config *c);

/* One request to the token or revocation endpoint; every pointer borrowed. */
struct privacy_oauth_req {
	const char *content_type;  /* header, or NULL */
	const char *authorization; /* header, or NULL: Basic (a client), or Bearer (revoke) */
	const char *body;          /* the form (not NUL-terminated) */
	size_t body_len;
	const char *source;        /* client address, for the log and the audit trail */
	struct arena *arena;       /* the request's: the parsed form lives here */
};

/* The answer: status and a JSON body (or none).  challenge: the value of a
 * WWW-Authenticate header to send (401), or "". */
struct privacy_oauth_resp {
	int status;
	struct buf body;
	char challenge[48];
	char user[STORE_NAME_MAX + 1];  /* who, for the request log line, or "" */
};

void privacy_oauth_resp_init(struct privacy_oauth_resp *r);
void privacy_oauth_resp_release(struct privacy_oauth_resp *r);
/* POST /auth/token.  Always fills out. */
void privacy_oauth_token(struct store *s, const struct privacy_oauth_config *cfg,
			 const struct privacy_oauth_req *rq, struct privacy_oauth_resp *out);
/* POST /auth/revoke: 200 for any token, known or not, that the caller (a
 * bearer token, or client credentials) may revoke: their own, or any for an
 * admin.  A refresh token takes its whole family with it. */
void privacy_oauth_revoke(struct store *s, const struct privacy_oauth_config *cfg,
			  const struct privacy_oauth_req *rq, struct privacy_oauth_resp *out);
/* 429: too many requests from one address; retry_after_s for the message. */
void privacy_oauth_throttled(struct privacy_oauth_resp *out, int retry_after_s);

/* application/x-www-form-urlencoded (the OAuth parameters). */
#define PRIVACY_FORM_MAX_BYTES 8192
#define PRIVACY_FORM_MAX_FIELDS 32

struct privacy_form_field {
	const char *name, *value;  /* decoded, NUL-terminated, no NUL inside */
};

struct privacy_form {
	struct privacy_form_field f[PRIVACY_FORM_MAX_FIELDS];
	size_t n;
	char *text;                /* where the decoded strings live (arena), for wiping */
	size_t text_len;
};

/* Parse body[0..len): '&'-separated name=value pairs, '+' is a space, %XX a
 * byte; empty pairs are skipped.  Strings are allocated in a.  ERR_INVALID
 * naming the parameter: a malformed escape, %00, a name given twice (RFC
 * 6749 3.2: no parameter more than once), an empty name; ERR_TOO_LARGE: more
 * than PRIVACY_FORM_MAX_BYTES or PRIVACY_FORM_MAX_FIELDS.  Messages name
 * parameters, never values. */
int privacy_form_parse(const char *body, size_t len, struct arena *a, struct privacy_form *out,
		       struct err *e);
/* The value of name, or NULL. */
const char *privacy_form_get(const struct privacy_form *f, const char *name);
/* Overwrite the decoded strings (they may hold a password). */
void privacy_form_wipe(struct privacy_form *f);

/* Registered system clients (chartkeep client).  The secret ("cks_" + 43
 * base64url characters) is written to secret once; only its argon2id hash is
 * stored.  Client ids follow the username syntax and must not name a user.
 * scopes: system/ scopes, the most the client may ask for ("" or NULL: any). */
int privacy_client_add(struct store *s, const char *client_id, const char *role,
		       const char *scopes, char secret[PRIVACY_SECRET_MAX], struct err *e);
int privacy_client_set_active(struct store *s, const char *client_id, bool active,
			      struct err *e);

/* The audit hook for authentication events: event is "login", "login_failed",
 * "login_locked", "lockout", "token_refresh", "refresh_reuse", "client_token",
 * "client_auth_failed", "token_revoke".  username NULL: no such user (the
 * attempted name is not passed on: people type passwords into the username
 * field).  Never given a password or a token.  Written to the audit trail
 * (audit.c) before the caller answers; a failure to write is logged. */
void privacy_audit_auth(struct store *s, const char *username, const char *event, const char *source,
			bool success);

#endif
