/* tokens.c - bearer tokens: random, stored only as a BLAKE2b hash.
 *
 * Every request presents its token, so the answer of a lookup is kept for a
 * moment (TOKEN_CACHE_MS) in a small table keyed by the hash: a burst of
 * requests costs one database read, not one each.  A revocation through
 * privacy_token_revoke drops the entry at once; one made by another process
 * (the CLI) takes effect within TOKEN_CACHE_MS.  Expiry is checked on every
 * use. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "privacy/oauth_int.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define TOKEN_PREFIX "ck_"
#define TOKEN_CACHE_SLOTS 1024
#define TOKEN_CACHE_MS 2000

struct cached_token {
	unsigned char hash[32];
	struct store_principal who;
	int64_t fetched_ms;
	bool used;
};

static struct cached_token cache[TOKEN_CACHE_SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static struct cached_token *slot_of(const unsigned char h[32])
{
	return &cache[((unsigned)h[0] | (unsigned)h[1] << 8) % TOKEN_CACHE_SLOTS];
}

static bool cache_get(const unsigned char h[32], int64_t now, struct store_principal *out)
{
	struct cached_token *c = slot_of(h);
	bool hit;

	pthread_mutex_lock(&cache_mu);
	hit = c->used && sodium_memcmp(c->hash, h, 32) == 0 && now - c->fetched_ms < TOKEN_CACHE_MS &&
	      now < c->who.expires_ms;
	if (hit)
		*out = c->who;
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void cache_put(const unsigned char h[32], int64_t now, const struct store_principal *who)
{
	struct cached_token *c = slot_of(h);

	pthread_mutex_lock(&cache_mu);
	memcpy(c->hash, h, 32);
	c->who = *who;
	c->fetched_ms = now;
	c->used = true;
	pthread_mutex_unlock(&cache_mu);
}

static void cache_drop(const unsigned char h[32])
{
	struct cached_token *c = slot_of(h);

	pthread_mutex_lock(&cache_mu);
	if (c->used && sodium_memcmp(c->hash, h, 32) == 0)
		c->used = false;
	pthread_mutex_unlock(&cache_mu);
}

static void token_hash(const char *token, unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)token, strlen(token), NULL, 0);
}

/* ---- for oauth.c (oauth_int.h) ---- */

void privacy_token_hash(const char *token, unsigned char out[32])
{
	token_hash(token, out);
}

void privacy_token_new(const char *prefix, char out[PRIVACY_TOKEN_MAX], unsigned char hash[32])
{
	unsigned char raw[32];
	size_t p = strlen(prefix);

	randombytes_buf(raw, sizeof(raw));
	memcpy(out, prefix, p + 1);
	sodium_bin2base64(out + p, PRIVACY_TOKEN_MAX - p, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	if (hash)
		token_hash(out, hash);
}

void privacy_token_forget(const unsigned char hash[32])
{
	cache_drop(hash);
}

void privacy_token_forget_all(void)
{
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++)
		cache[i].used = false;
	pthread_mutex_unlock(&cache_mu);
}

int privacy_token_issue(struct store *s, const char *username, int64_t ttl_s,
			const char *scopes, char out[PRIVACY_TOKEN_MAX], struct err *e)
{
	struct store_user u;
	struct store_token t;

	if (ttl_s <= 0 || ttl_s > 366LL * 24 * 3600)
		return err_set(e, ERR_INVALID, "token lifetime must be between 1 second and a year");
	if (store_user_get(s, username, &u, e) < 0)
		return -1;
	if (!u.active)
		return err_set(e, ERR_FORBIDDEN, "user '%s' is not active", username);
	memset(&t, 0, sizeof(t));
	privacy_token_new(TOKEN_PREFIX, out, t.hash);
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
	cache_drop(h);
	return store_token_revoke(s, h, e);
}

int privacy_authenticate(struct store *s, const char *authorization,
			 struct store_principal *out, struct err *e)
{
	const char *tok;
	unsigned char h[32];
	int64_t now;
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
	now = time_now_ms();
	if (cache_get(h, now, out))
		return 0;
	if (store_token_lookup(s, h, now, out, e) < 0)
		return -1;
	cache_put(h, now, out);
	return 0;
}
