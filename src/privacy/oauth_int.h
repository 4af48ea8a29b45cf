/* oauth_int.h - shared by oauth.c and tokens.c (and their unit tests); not
 * part of the privacy module's interface. */
#ifndef CK_OAUTH_INT_H
#define CK_OAUTH_INT_H

#include <stdbool.h>

#include "base/err.h"
#include "privacy/privacy.h"

/* ---- tokens.c ---- */

/* BLAKE2b-256 of a token: the only form in which it is stored. */
void privacy_token_hash(const char *token, unsigned char out[32]);
/* prefix + 32 random bytes in base64url into out; its hash into hash (may be
 * NULL).  prefix at most 8 characters. */
void privacy_token_new(const char *prefix, char out[PRIVACY_TOKEN_MAX], unsigned char hash[32]);
/* Drop a token, or every token, from privacy_authenticate's cache: after a
 * revocation in this process, so that it takes effect at once. */
void privacy_token_forget(const unsigned char hash[32]);
void privacy_token_forget_all(void);

/* ---- oauth.c ---- */

/* The shape of a scope string (RFC 6749: scope tokens separated by single
 * spaces; SMART v2: context/Type.perms[?query], plus openid, fhirUser,
 * profile, launch, launch/patient, launch/encounter, offline_access,
 * online_access).  false with e (ERR_INVALID) naming the first bad scope.
 * HOOK: a stand-in until src/privacy/scopes.c parses scopes for the policy;
 * then this should call that parser, so that the token endpoint accepts
 * exactly what the policy understands. */
bool oauth_scopes_valid(const char *scopes, struct err *e);
/* Does the registered scope have cover for the requested one?  Both are
 * single SMART scopes; context and type must match (the registered type may
 * be "*") and the requested permissions be a subset (v1 read, write, * are
 * rs/cud/cruds); a registered ?query must be repeated exactly.
 * HOOK: also to be answered by scopes.c. */
bool oauth_scope_covers(const char *registered, const char *requested);

#endif
