/* tokens.c - bearer tokens: random, stored only as a BLAKE2b hash. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define TOKEN_PREFIX "ck_"

static void token_hash(const char *token, unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)token, strlen(token), NULL, 0);
}

int privacy_token_issue(struct store *s, const char *username, int64_t ttl_s,
			const char *scopes, char out[PRIVACY_TOKEN_MAX], struct err *e)
{
	struct store_user u;
	struct store_token t;
	unsigned char raw[32];

	if (ttl_s <= 0 || ttl_s > 366LL * 24 * 3600)
		return err_set(e, ERR_INVALID, "token lifetime must be between 1 second and a year");
	if (store_user_get(s, username, &u, e) < 0)
		return -1;
	if (!u.active)
		return err_set(e, ERR_FORBIDDEN, "user '%s' is not active", username);
	memset(&t, 0, sizeof(t));
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, TOKEN_PREFIX, sizeof(TOKEN_PREFIX));
	sodium_bin2base64(out + strlen(TOKEN_PREFIX), PRIVACY_TOKEN_MAX - strlen(TOKEN_PREFIX), raw,
			  sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(out, t.hash);
	t.uid = u.uid;
	snprintf(t.kind, sizeof(t.kind), "access");
	snprintf(t.scopes, sizeof(t.scopes), "%s", scopes ? scopes : "");
	t.issued_ms = time_now_ms();
	t.expires_ms = t.issued_ms + ttl_s * 1000;
	return store_token_add(s, &t, e);
}

int privacy_token_revoke(struct store *s, const char *token, struct err *e)
{
	unsigned char h[32];

	token_hash(token, h);
	return store_token_revoke(s, h, e);
}

int privacy_authenticate(struct store *s, const char *authorization,
			 struct store_principal *out, struct err *e)
{
	const char *tok;
	unsigned char h[32];
	size_t n;

	if (!authorization || !*authorization)
		return err_set(e, ERR_UNAUTHENTICATED,
			       "authentication required: send Authorization: Bearer <token>");
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return err_set(e, ERR_UNAUTHENTICATED, "the Authorization header must be Bearer <token>");
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	n = strlen(tok);
	while (n && tok[n - 1] == ' ')
		n--;
	if (n == 0 || n >= PRIVACY_TOKEN_MAX)
		return err_set(e, ERR_UNAUTHENTICATED, "the access token is not valid");
	crypto_generichash(h, 32, (const unsigned char *)tok, n, NULL, 0);
	return store_token_lookup(s, h, time_now_ms(), out, e);
}
