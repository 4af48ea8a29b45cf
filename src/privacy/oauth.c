/* oauth.c - the OAuth2 token and revocation endpoints (see privacy.h).
 *
 * POST /auth/token answers RFC 6749 section 5: a JSON object with the
 * tokens, or {"error","error_description"} with 400 (401 for
 * invalid_client).  The grants:
 *
 *   password            username + password of an app_user; the staff UI.
 *                       Issues an access token and a refresh token.
 *   client_credentials  a registered system client (chartkeep client add),
 *                       authenticated by HTTP Basic or client_id +
 *                       client_secret; system/ scopes only; access token only.
 *   refresh_token       a refresh token from a password grant, once.
 *
 * Refresh tokens rotate.  The tokens of one login share a "family" (16
 * random bytes stored with each); using a refresh token revokes it and
 * issues a new access + refresh pair of the same family, whose refresh
 * token keeps the first one's expiry (one login lasts at most
 * refresh_ttl_s).  A refresh token presented after it was used means it
 * was copied: the whole family is revoked, the thief's tokens and the
 * user's alike, and the user logs in again (OAuth 2.0 Security BCP 4.14).
 *
 * Password checks take the same time whether or not the user exists: an
 * unknown username is verified against a dummy argon2id hash made at the
 * first request with the same parameters as real ones, and a locked or
 * inactive account's password is verified too.  A locked account, an
 * inactive one, an unknown one and a wrong password all answer
 * invalid_grant "invalid username or password"; only the log says which.
 * Client secrets are checked the same way.
 *
 * Nothing here logs or echoes a password, a secret or a token: messages
 * name parameters, never their values. */
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "base/url.h"
#include "privacy/oauth_int.h"
#include "privacy/policy.h"
#include "privacy/privacy.h"
#include "base/banned.h"

#define ACCESS_PREFIX "ck_"    /* the same as chartkeep token issue */
#define REFRESH_PREFIX "ckr_"
#define SECRET_PREFIX "cks_"
#define BAD_LOGIN "invalid username or password"
#define BAD_REFRESH "the refresh token is not valid"
#define MAX_SCOPES 64
#define FORM_TYPE "application/x-www-form-urlencoded"

/* ---- errors (RFC 6749 5.2, RFC 6750 3.1) ---- */

enum oauth_error {
	OE_INVALID_REQUEST,
	OE_INVALID_CLIENT,
	OE_INVALID_GRANT,
	OE_UNAUTHORIZED_CLIENT,
	OE_UNSUPPORTED_GRANT_TYPE,
	OE_INVALID_SCOPE,
	OE_INVALID_TOKEN,
	OE_SERVER_ERROR,
	OE_TEMPORARILY_UNAVAILABLE,
};

static const struct {
	const char *name;
	int status;
	const char *challenge;  /* WWW-Authenticate, or NULL */
} oauth_errors[] = {
	[OE_INVALID_REQUEST] = { "invalid_request", 400, NULL },
	[OE_INVALID_CLIENT] = { "invalid_client", 401, "Basic realm=\"chartkeep\"" },
	[OE_INVALID_GRANT] = { "invalid_grant", 400, NULL },
	[OE_UNAUTHORIZED_CLIENT] = { "unauthorized_client", 400, NULL },
	[OE_UNSUPPORTED_GRANT_TYPE] = { "unsupported_grant_type", 400, NULL },
	[OE_INVALID_SCOPE] = { "invalid_scope", 400, NULL },
	[OE_INVALID_TOKEN] = { "invalid_token", 401, "Bearer realm=\"chartkeep\", error=\"invalid_token\"" },
	[OE_SERVER_ERROR] = { "server_error", 500, NULL },
	[OE_TEMPORARILY_UNAVAILABLE] = { "temporarily_unavailable", 503, NULL },
};

/* One call of an endpoint. */
struct oauth_call {
	struct store *s;
	const struct privacy_oauth_config *cfg;
	const struct privacy_oauth_req *rq;
	struct privacy_oauth_resp *out;
	const char *source;
	struct privacy_form form;
	bool client_sent;             /* client credentials came with the request */
	bool client_ok;               /* ... and were right: client is set */
	struct store_client client;
};

static void answer_error(struct privacy_oauth_resp *out, int status, const char *error,
			 const char *desc)
{
	out->status = status;
	buf_reset(&out->body);
	buf_addstr(&out->body, "{\"error\":\"");
	buf_addstr(&out->body, error);
	buf_addstr(&out->body, "\",\"error_description\":\"");
	buf_add_json_str(&out->body, desc, strlen(desc));
	buf_addstr(&out->body, "\"}");
}

/* Answer error oe; returns -1.  The description must hold no secret. */
static int fail(struct oauth_call *c, int oe, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct oauth_call *c, int oe, const char *fmt, ...)
{
	char desc[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	answer_error(c->out, oauth_errors[oe].status, oauth_errors[oe].name, desc);
	snprintf(c->out->challenge, sizeof(c->out->challenge), "%s",
		 oauth_errors[oe].challenge ? oauth_errors[oe].challenge : "");
	return -1;
}

/* The store failed: the client learns only that; the log gets the detail. */
static int fail_store(struct oauth_call *c, const struct err *e)
{
	log_error("event=oauth_failed source=%s code=%s detail=\"%s\"", c->source,
		  err_code_name(e->code), e->detail);
	if (e->code == ERR_UNAVAILABLE)
		return fail(c, OE_TEMPORARILY_UNAVAILABLE, "the server is busy: try again");
	return fail(c, OE_SERVER_ERROR, "the server failed");
}

void privacy_oauth_throttled(struct privacy_oauth_resp *out, int retry_after_s)
{
	char desc[96];

	snprintf(desc, sizeof(desc), "too many requests from this address: retry after %d s",
		 retry_after_s);
	answer_error(out, 429, "temporarily_unavailable", desc);
	out->challenge[0] = '\0';
}

void privacy_oauth_config_defaults(struct privacy_oauth_config *c)
{
	c->lockout_attempts = PRIVACY_LOCKOUT_ATTEMPTS;
	c->lockout_ms = (int64_t)PRIVACY_LOCKOUT_MINUTES * 60 * 1000;
	c->access_ttl_s = PRIVACY_DEFAULT_TTL;
	c->refresh_ttl_s = PRIVACY_REFRESH_TTL;
}

void privacy_oauth_resp_init(struct privacy_oauth_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 16 * 1024);
}

void privacy_oauth_resp_release(struct privacy_oauth_resp *r)
{
	buf_release(&r->body);
}

/* ---- the form ---- */

/* Decode s[0..n) ('+' a space, %XX a byte) into out, which has room for n
 * bytes.  -1: a malformed escape; -2: a NUL byte. */
static int form_decode(const char *s, size_t n, char *out, size_t *outn)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			int h, l;
			if (n - i < 3)
				return -1;
			h = url_hexval(s[i + 1]);
			l = url_hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			ch = (char)(h * 16 + l);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (ch == '\0')
			return -2;
		out[w++] = ch;
	}
	*outn = w;
	return 0;
}

/* s[0..n) fit for a message: printable ASCII but quotes and backslashes,
 * at most 40 bytes. */
static void shown(const char *s, size_t n, char *out, size_t cap)
{
	size_t w = 0;

	for (size_t i = 0; i < n && i < 40 && w + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[w++] = ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '\'' ? (char)ch : '?';
	}
	if (n > 40 && w + 3 < cap) {
		memcpy(out + w, "...", 3);
		w += 3;
	}
	out[w] = '\0';
}

int privacy_form_parse(const char *body, size_t len, struct arena *a, struct privacy_form *out,
		       struct err *e)
{
	char name_msg[48];
	size_t pos = 0, w = 0;
	char *text;

	memset(out, 0, sizeof(*out));
	if (len > PRIVACY_FORM_MAX_BYTES)
		return err_set(e, ERR_TOO_LARGE, "the form is larger than %d bytes",
			       PRIVACY_FORM_MAX_BYTES);
	/* Decoding never lengthens; each field adds two NULs. */
	text = arena_alloc(a, len + 2 * PRIVACY_FORM_MAX_FIELDS + 1);
	if (!text)
		return err_set(e, ERR_NOMEM, "out of memory");
	out->text = text;
	while (pos < len) {
		const char *amp = memchr(body + pos, '&', len - pos);
		size_t end = amp ? (size_t)(amp - body) : len;
		const char *eq = memchr(body + pos, '=', end - pos);
		size_t name_end = eq ? (size_t)(eq - body) : end;
		size_t nn = 0, vn = 0;
		char *name, *value;
		int rc;

		if (end == pos) { /* "&&" or a leading or trailing '&' */
			pos++;
			continue;
		}
		if (out->n == PRIVACY_FORM_MAX_FIELDS)
			return err_set(e, ERR_TOO_LARGE, "more than %d parameters",
				       PRIVACY_FORM_MAX_FIELDS);
		name = text + w;
		rc = form_decode(body + pos, name_end - pos, name, &nn);
		if (rc < 0) {
			shown(body + pos, name_end - pos, name_msg, sizeof(name_msg));
			return err_set(e, ERR_INVALID, "%s in the name of parameter '%s'",
				       rc == -1 ? "malformed percent-escape" : "a NUL byte", name_msg);
		}
		if (nn == 0)
			return err_set(e, ERR_INVALID, "a parameter without a name");
		name[nn] = '\0';
		w += nn + 1;
		shown(name, nn, name_msg, sizeof(name_msg));
		value = text + w;
		if (eq) {
			rc = form_decode(eq + 1, end - name_end - 1, value, &vn);
			if (rc < 0)
				return err_set(e, ERR_INVALID, "%s in parameter '%s'",
					       rc == -1 ? "malformed percent-escape" : "a NUL byte",
					       name_msg);
		}
		value[vn] = '\0';
		w += vn + 1;
		for (size_t i = 0; i < out->n; i++)
			if (strcmp(out->f[i].name, name) == 0)
				return err_set(e, ERR_INVALID, "parameter '%s' is given more than once",
					       name_msg);
		out->f[out->n].name = name;
		out->f[out->n].value = value;
		out->n++;
		out->text_len = w;
		pos = end + 1;
	}
	return 0;
}

const char *privacy_form_get(const struct privacy_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->f[i].name, name) == 0)
			return f->f[i].value;
	return NULL;
}

void privacy_form_wipe(struct privacy_form *f)
{
	if (f->text && f->text_len)
		sodium_memzero(f->text, f->text_len);
}

/* ---- scopes ---- */

enum { P_C = 1, P_R = 2, P_U = 4, P_D = 8, P_S = 16, P_ALL = 31 };

struct smart_scope {
	char ctx;                 /* 'p'atient, 'u'ser, 's'ystem */
	const char *type;         /* "*" or a resource type */
	size_t type_n;
	unsigned perms;
	const char *query;        /* after '?', or NULL */
	size_t query_n;
};

/* Scopes that are not context/Type.perms. */
static const char *const plain_scopes[] = {
	"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
	"offline_access", "online_access", NULL,
};

static bool plain_scope(const char *p, size_t n)
{
	for (const char *const *k = plain_scopes; *k; k++)
		if (strlen(*k) == n && memcmp(*k, p, n) == 0)
			return true;
	return false;
}

static bool span_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* context/Type.perms[?query] */
static bool scope_parse(const char *p, size_t n, struct smart_scope *sc)
{
	static const struct { const char *prefix; char ctx; } ctxs[] = {
		{ "patient/", 'p' }, { "user/", 'u' }, { "system/", 's' },
	};
	const char *end = p + n, *q, *dot, *perm;
	size_t k;

	memset(sc, 0, sizeof(*sc));
	for (k = 0; k < ARRAY_SIZE(ctxs); k++) {
		size_t l = strlen(ctxs[k].prefix);
		if (n > l && memcmp(p, ctxs[k].prefix, l) == 0) {
			sc->ctx = ctxs[k].ctx;
			p += l;
			break;
		}
	}
	if (!sc->ctx)
		return false;
	q = memchr(p, '?', (size_t)(end - p));
	if (q) {
		sc->query = q + 1;
		sc->query_n = (size_t)(end - q - 1);
		if (sc->query_n == 0)
			return false;
		end = q;
	}
	dot = memchr(p, '.', (size_t)(end - p));
	if (!dot || dot == p)
		return false;
	sc->type = p;
	sc->type_n = (size_t)(dot - p);
	if (!span_is(p, sc->type_n, "*")) {
		if (sc->type_n > 64 || !(p[0] >= 'A' && p[0] <= 'Z'))
			return false;
		for (const char *t = p; t < dot; t++)
			if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z')))
				return false;
	}
	perm = dot + 1;
	if (perm == end)
		return false;
	if (span_is(perm, (size_t)(end - perm), "read")) {
		sc->perms = P_R | P_S;
	} else if (span_is(perm, (size_t)(end - perm), "write")) {
		sc->perms = P_C | P_U | P_D;
	} else if (span_is(perm, (size_t)(end - perm), "*")) {
		sc->perms = P_ALL;
	} else {
		/* SMART v2: a non-empty subsequence of c r u d s, in that order */
		static const char order[] = "cruds";
		int last = -1;
		for (const char *t = perm; t < end; t++) {
			const char *at = memchr(order, *t, 5);
			if (!at || (int)(at - order) <= last)
				return false;
			last = (int)(at - order);
			sc->perms |= 1u << last;
		}
	}
	return true;
}

/* RFC 6749 scope-token characters: %x21 / %x23-5B / %x5D-7E */
static bool scope_chars_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

bool oauth_scopes_valid(const char *scopes, struct err *e)
{
	size_t len = strlen(scopes), count = 0;
	const char *p = scopes;
	char bad[48];

	if (len == 0) {
		err_set(e, ERR_INVALID, "the scope is empty");
		return false;
	}
	if (len >= STORE_SCOPES_MAX) {
		err_set(e, ERR_INVALID, "the scope is too long: at most %d characters",
			STORE_SCOPES_MAX - 1);
		return false;
	}
	while (*p) {
		size_t n = strcspn(p, " ");
		struct smart_scope sc;
		if (n == 0 || (p[n] == ' ' && p[n + 1] == '\0')) {
			err_set(e, ERR_INVALID, "scopes are separated by single spaces");
			return false;
		}
		if (++count > MAX_SCOPES) {
			err_set(e, ERR_INVALID, "more than %d scopes", MAX_SCOPES);
			return false;
		}
		if (!scope_chars_ok(p, n) || (!plain_scope(p, n) && !scope_parse(p, n, &sc))) {
			shown(p, n, bad, sizeof(bad));
			err_set(e, ERR_INVALID, "unknown or malformed scope '%s'", bad);
			return false;
		}
		p += n;
		if (*p == ' ')
			p++;
	}
	/* the decision point's own parser must accept what is stored: a
	 * scope it cannot read would deny every request the token makes */
	{
		struct privacy_scopes parsed;
		if (privacy_scopes_parse(scopes, &parsed, e) < 0)
			return false;
	}
	return true;
}

static bool covers_n(const char *reg, size_t rn, const char *req, size_t qn)
{
	struct smart_scope a, b;

	if (!scope_parse(reg, rn, &a) || !scope_parse(req, qn, &b))
		return rn == qn && memcmp(reg, req, rn) == 0;
	if (a.ctx != b.ctx)
		return false;
	if (!span_is(a.type, a.type_n, "*") &&
	    (a.type_n != b.type_n || memcmp(a.type, b.type, a.type_n) != 0))
		return false;
	if (b.perms & ~a.perms)
		return false;
	if (a.query && (a.query_n != b.query_n || !b.query || memcmp(a.query, b.query, a.query_n) != 0))
		return false;
	return true;
}

bool oauth_scope_covers(const char *registered, const char *requested)
{
	return covers_n(registered, strlen(registered), requested, strlen(requested));
}

/* A valid scope string, split at its spaces (pointers into it). */
struct scope_list {
	const char *p[MAX_SCOPES];
	size_t n[MAX_SCOPES];
	size_t count;
};

static void scope_split(const char *scopes, struct scope_list *l)
{
	l->count = 0;
	while (*scopes && l->count < MAX_SCOPES) {
		size_t n = strcspn(scopes, " ");
		l->p[l->count] = scopes;
		l->n[l->count++] = n;
		scopes += n;
		if (*scopes == ' ')
			scopes++;
	}
}

/* The context of one scope: 'p', 'u', 's', or 0 (openid, launch, ...). */
static char scope_ctx(const char *p, size_t n)
{
	struct smart_scope sc;

	return scope_parse(p, n, &sc) ? sc.ctx : 0;
}

/* Is scope p[0..n) one of list's (exactly)? */
static bool scope_in(const struct scope_list *list, const char *p, size_t n)
{
	for (size_t i = 0; i < list->count; i++)
		if (list->n[i] == n && memcmp(list->p[i], p, n) == 0)
			return true;
	return false;
}

/* The request's scope parameter, checked and split; none or "" is none. */
static int scopes_of(struct oauth_call *c, const char **scope, struct scope_list *l)
{
	struct err e = ERR_INIT;

	*scope = privacy_form_get(&c->form, "scope");
	l->count = 0;
	if (!*scope || !**scope) {
		*scope = NULL;
		return 0;
	}
	if (!oauth_scopes_valid(*scope, &e))
		return fail(c, OE_INVALID_SCOPE, "%s", e.msg);
	scope_split(*scope, l);
	return 0;
}

/* ---- parameters, ids ---- */

static int need(struct oauth_call *c, const char *name, const char **out)
{
	*out = privacy_form_get(&c->form, name);
	if (!*out || !**out)
		return fail(c, OE_INVALID_REQUEST, "missing parameter '%s'", name);
	return 0;
}

/* A FHIR id: [A-Za-z0-9-.]{1,64} */
static bool fhir_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* patient=<id> and patient/ scopes come together: the launch context. */
static int launch_patient(struct oauth_call *c, const struct scope_list *l, const char **patient)
{
	const char *p = privacy_form_get(&c->form, "patient");
	bool want = false;

	for (size_t i = 0; i < l->count; i++)
		want = want || scope_ctx(l->p[i], l->n[i]) == 'p';
	*patient = "";
	if (p && !want)
		return fail(c, OE_INVALID_REQUEST, "parameter 'patient' needs patient/ scopes");
	if (!p && want)
		return fail(c, OE_INVALID_REQUEST,
			    "patient/ scopes need a patient context: send patient=<Patient id>");
	if (p && !fhir_id_ok(p))
		return fail(c, OE_INVALID_REQUEST, "parameter 'patient' is not a Patient id");
	if (p)
		*patient = p;
	return 0;
}

/* ---- passwords and secrets ---- */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[STORE_HASH_MAX + 1];

static void dummy_init(void)
{
	unsigned char raw[16];
	char pw[33];
	struct err e = ERR_INIT;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
	if (privacy_password_hash(pw, dummy_hash, &e) < 0)
		dummy_hash[0] = '\0';
	sodium_memzero(pw, sizeof(pw));
}

/* Verify secret against hash, or, when hash is NULL (no such user or
 * client), against the dummy hash - the same work - and say no. */
static bool verify_or_dummy(const char *hash, const char *secret)
{
	if (!hash) {
		pthread_once(&dummy_once, dummy_init);
		(void)privacy_password_verify(dummy_hash, secret);
		return false;
	}
	return privacy_password_verify(hash, secret);
}

/* "Basic base64(urlencode(id):urlencode(secret))" (RFC 6749 2.3.1). */
static int basic_decode(const char *b64, char *id, size_t id_cap, char *secret, size_t secret_cap)
{
	unsigned char raw[512];
	size_t n = 0, b64n, idn, sn;
	const char *colon;
	int rc = -1;

	while (*b64 == ' ')
		b64++;
	b64n = strcspn(b64, " ");
	if (sodium_base642bin(raw, sizeof(raw) - 1, b64, b64n, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 &&
	    sodium_base642bin(raw, sizeof(raw) - 1, b64, b64n, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
		goto out;
	colon = memchr(raw, ':', n);
	if (!colon)
		goto out;
	idn = (size_t)(colon - (const char *)raw);
	sn = n - idn - 1;
	if (idn >= id_cap || sn >= secret_cap)
		goto out;
	if (form_decode((const char *)raw, idn, id, &idn) < 0 ||
	    form_decode(colon + 1, sn, secret, &sn) < 0)
		goto out;
	id[idn] = '\0';
	secret[sn] = '\0';
	rc = 0;
out:
	sodium_memzero(raw, sizeof(raw));
	return rc;
}

/* Client credentials, if the request has any: HTTP Basic, or client_id +
 * client_secret in the form (never both).  0 with client_ok when they are
 * right, 0 with !client_sent when there are none; -1 answered. */
static int client_auth(struct oauth_call *c)
{
	const char *auth = c->rq->authorization;
	const char *fid = privacy_form_get(&c->form, "client_id");
	const char *fsecret = privacy_form_get(&c->form, "client_secret");
	bool basic = auth && strncasecmp(auth, "Basic ", 6) == 0;
	char id[STORE_CLIENT_ID_MAX + 2], secret[256];
	struct err e = ERR_INIT;
	bool known, ok;
	int rc = -1;

	id[0] = secret[0] = '\0';
	if (basic && fsecret)
		return fail(c, OE_INVALID_REQUEST,
			    "send client credentials one way: HTTP Basic or client_secret, not both");
	if (basic) {
		if (basic_decode(auth + 6, id, sizeof(id), secret, sizeof(secret)) < 0) {
			c->client_sent = true;
			rc = fail(c, OE_INVALID_CLIENT, "malformed HTTP Basic credentials");
			goto out;
		}
		if (fid && strcmp(fid, id) != 0) {
			rc = fail(c, OE_INVALID_REQUEST, "client_id differs from the HTTP Basic user");
			goto out;
		}
	} else if (fsecret) {
		if (!fid)
			return fail(c, OE_INVALID_REQUEST, "client_secret without client_id");
		snprintf(id, sizeof(id), "%s", fid);
		snprintf(secret, sizeof(secret), "%s", fsecret);
	} else {
		return 0;
	}
	c->client_sent = true;
	/* an over-long id is simply unknown (the dummy check still runs) */
	known = strlen(id) <= STORE_CLIENT_ID_MAX && store_client_get(c->s, id, &c->client, &e) == 0;
	if (!known && e.code != ERR_NONE && e.code != ERR_NOT_FOUND) {
		rc = fail_store(c, &e);
		goto out;
	}
	ok = verify_or_dummy(known ? c->client.secret_hash : NULL, secret);
	if (!ok || !c->client.active) {
		log_info("event=client_auth_failed client=%s source=%s reason=%s",
			 known ? c->client.client_id : "-", c->source,
			 !known ? "unknown_client" : !ok ? "wrong_secret" : "disabled");
		privacy_audit_auth(c->s, known ? c->client.client_id : NULL, "client_auth_failed", c->source,
				   false);
		rc = fail(c, OE_INVALID_CLIENT, "client authentication failed");
		goto out;
	}
	c->client_ok = true;
	rc = 0;
out:
	sodium_memzero(secret, sizeof(secret));
	return rc;
}

/* ---- issuing ---- */

static void token_row(struct store_token *t, const char *kind, int64_t uid, const char *client_id,
		      const char *scopes, const char *patient, const unsigned char *family,
		      int64_t now, int64_t expires)
{
	memset(t, 0, sizeof(*t));
	t->uid = uid;
	snprintf(t->kind, sizeof(t->kind), "%s", kind);
	snprintf(t->client_id, sizeof(t->client_id), "%s", client_id ? client_id : "");
	snprintf(t->scopes, sizeof(t->scopes), "%s", scopes ? scopes : "");
	snprintf(t->patient, sizeof(t->patient), "%s", patient ? patient : "");
	if (family) {
		memcpy(t->family, family, sizeof(t->family));
		t->has_family = true;
	}
	t->issued_ms = now;
	t->expires_ms = expires;
}

/* The 200 answer (RFC 6749 5.1). */
static void answer_tokens(struct oauth_call *c, const char *access, int64_t expires_in_s,
			  const char *scopes, const char *refresh, const char *patient)
{
	struct buf *b = &c->out->body;

	c->out->status = 200;
	buf_reset(b);
	buf_addf(b, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld,"
		    "\"scope\":\"", access, (long long)expires_in_s);
	buf_add_json_str(b, scopes ? scopes : "", scopes ? strlen(scopes) : 0);
	buf_addch(b, '"');
	if (refresh)
		buf_addf(b, ",\"refresh_token\":\"%s\"", refresh);
	if (patient && *patient) {
		buf_addstr(b, ",\"patient\":\"");
		buf_add_json_str(b, patient, strlen(patient));
		buf_addch(b, '"');
	}
	buf_addch(b, '}');
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* ---- the grants ---- */

static int grant_password(struct oauth_call *c)
{
	const char *username, *password, *scope, *patient;
	struct scope_list sl;
	struct store_user u;
	struct store_token t[2];
	char access[PRIVACY_TOKEN_MAX], refresh[PRIVACY_TOKEN_MAX];
	unsigned char family[16];
	struct err e = ERR_INIT;
	bool known, ok, locked_now = false;
	int64_t now, refresh_exp, access_exp;
	int rc = -1;

	if (need(c, "username", &username) < 0 || need(c, "password", &password) < 0 ||
	    scopes_of(c, &scope, &sl) < 0)
		return -1;
	for (size_t i = 0; i < sl.count; i++) {
		char bad[48];
		if (scope_ctx(sl.p[i], sl.n[i]) != 's')
			continue;
		shown(sl.p[i], sl.n[i], bad, sizeof(bad));
		return fail(c, OE_INVALID_SCOPE,
			    "'%s': system/ scopes are for registered clients (client_credentials)", bad);
	}
	if (launch_patient(c, &sl, &patient) < 0)
		return -1;

	known = privacy_username_valid(username) && store_user_get(c->s, username, &u, &e) == 0;
	if (!known && e.code != ERR_NONE && e.code != ERR_NOT_FOUND)
		return fail_store(c, &e);
	/* Always one argon2id verification, whatever the account's state. */
	ok = verify_or_dummy(known ? u.pw_hash : NULL, password);
	now = time_now_ms();
	if (!known) {
		log_info("event=login_failed user=- source=%s reason=unknown_user", c->source);
		privacy_audit_auth(c->s, NULL, "login_failed", c->source, false);
		return fail(c, OE_INVALID_GRANT, BAD_LOGIN);
	}
	if (u.locked_until_ms > now) {
		log_warn("event=login_locked user=%s source=%s until_s=%lld", u.username, c->source,
			 (long long)((u.locked_until_ms - now + 999) / 1000));
		privacy_audit_auth(c->s, u.username, "login_locked", c->source, false);
		return fail(c, OE_INVALID_GRANT, BAD_LOGIN);
	}
	if (!ok) {
		if (store_user_login_failed(c->s, u.uid, c->cfg->lockout_attempts,
					    now + c->cfg->lockout_ms, &locked_now, &e) < 0)
			return fail_store(c, &e);
		log_info("event=login_failed user=%s source=%s reason=wrong_password", u.username,
			 c->source);
		privacy_audit_auth(c->s, u.username, "login_failed", c->source, false);
		if (locked_now) {
			log_warn("event=lockout user=%s source=%s attempts=%d minutes=%lld", u.username,
				 c->source, c->cfg->lockout_attempts,
				 (long long)(c->cfg->lockout_ms / 60000));
			privacy_audit_auth(c->s, u.username, "lockout", c->source, false);
		}
		return fail(c, OE_INVALID_GRANT, BAD_LOGIN);
	}
	if (!u.active) {
		log_info("event=login_failed user=%s source=%s reason=inactive", u.username, c->source);
		privacy_audit_auth(c->s, u.username, "login_failed", c->source, false);
		return fail(c, OE_INVALID_GRANT, BAD_LOGIN);
	}
	if ((u.failed_logins || u.locked_until_ms) && store_user_login_ok(c->s, u.uid, &e) < 0)
		return fail_store(c, &e);

	randombytes_buf(family, sizeof(family));
	refresh_exp = now + c->cfg->refresh_ttl_s * 1000;
	access_exp = min64(now + c->cfg->access_ttl_s * 1000, refresh_exp);
	privacy_token_new(ACCESS_PREFIX, access, NULL);
	privacy_token_new(REFRESH_PREFIX, refresh, NULL);
	token_row(&t[0], "access", u.uid, c->client_ok ? c->client.client_id : "", scope, patient,
		  family, now, access_exp);
	token_row(&t[1], "refresh", u.uid, c->client_ok ? c->client.client_id : "", scope, patient,
		  family, now, refresh_exp);
	privacy_token_hash(access, t[0].hash);
	privacy_token_hash(refresh, t[1].hash);
	if (store_tokens_add(c->s, t, 2, &e) < 0) {
		fail_store(c, &e);
		goto out;
	}
	log_info("event=login user=%s source=%s", u.username, c->source);
	privacy_audit_auth(c->s, u.username, "login", c->source, true);
	answer_tokens(c, access, (access_exp - now) / 1000, scope, refresh, patient);
	snprintf(c->out->user, sizeof(c->out->user), "%s", u.username);
	rc = 0;
out:
	sodium_memzero(access, sizeof(access));
	sodium_memzero(refresh, sizeof(refresh));
	return rc;
}

static int grant_client_credentials(struct oauth_call *c)
{
	const char *scope, *granted;
	struct scope_list sl, reg;
	struct store_token t;
	char access[PRIVACY_TOKEN_MAX], bad[48];
	struct err e = ERR_INIT;
	int64_t now;
	int rc = -1;

	if (!c->client_ok)
		return fail(c, OE_INVALID_CLIENT,
			    "client_credentials needs client authentication: HTTP Basic, or "
			    "client_id and client_secret");
	if (privacy_form_get(&c->form, "patient"))
		return fail(c, OE_INVALID_REQUEST, "a system client has no patient context");
	if (scopes_of(c, &scope, &sl) < 0)
		return -1;
	scope_split(c->client.scopes, &reg);
	for (size_t i = 0; i < sl.count; i++) {
		bool covered = reg.count == 0;
		shown(sl.p[i], sl.n[i], bad, sizeof(bad));
		if (scope_ctx(sl.p[i], sl.n[i]) != 's')
			return fail(c, OE_INVALID_SCOPE, "'%s': a system client asks for system/ scopes",
				    bad);
		for (size_t k = 0; k < reg.count && !covered; k++)
			covered = covers_n(reg.p[k], reg.n[k], sl.p[i], sl.n[i]);
		if (!covered)
			return fail(c, OE_INVALID_SCOPE, "'%s' is more than this client is registered for",
				    bad);
	}
	granted = scope ? scope : c->client.scopes;
	now = time_now_ms();
	privacy_token_new(ACCESS_PREFIX, access, NULL);
	token_row(&t, "access", 0, c->client.client_id, granted, "", NULL, now,
		  now + c->cfg->access_ttl_s * 1000);
	privacy_token_hash(access, t.hash);
	if (store_tokens_add(c->s, &t, 1, &e) < 0) {
		fail_store(c, &e);
		goto out;
	}
	log_info("event=client_token client=%s source=%s", c->client.client_id, c->source);
	privacy_audit_auth(c->s, c->client.client_id, "client_token", c->source, true);
	answer_tokens(c, access, c->cfg->access_ttl_s, granted, NULL, NULL);
	snprintf(c->out->user, sizeof(c->out->user), "%s", c->client.client_id);
	rc = 0;
out:
	sodium_memzero(access, sizeof(access));
	return rc;
}

/* A used refresh token came back: revoke its family. */
static void refresh_reused(struct oauth_call *c, const struct store_token *t)
{
	struct store_user u;
	struct err e = ERR_INIT;
	int n = 0;

	if (t->has_family && store_token_revoke_family(c->s, t->family, &n, &e) < 0)
		log_error("event=oauth_failed source=%s detail=\"revoke family: %s\"", c->source,
			  e.detail);
	privacy_token_forget_all();
	if (store_user_get_uid(c->s, t->uid, &u, &e) < 0)
		u.username[0] = '\0';
	log_warn("event=refresh_reuse user=%s source=%s revoked=%d", u.username[0] ? u.username : "-",
		 c->source, n);
	privacy_audit_auth(c->s, u.username[0] ? u.username : NULL, "refresh_reuse", c->source, false);
}

static int grant_refresh_token(struct oauth_call *c)
{
	const char *presented, *scope, *granted;
	struct scope_list sl, orig;
	struct store_token old, t[2];
	struct store_user u;
	unsigned char h[32];
	char access[PRIVACY_TOKEN_MAX], refresh[PRIVACY_TOKEN_MAX], bad[48];
	struct err e = ERR_INIT;
	int64_t now;
	int rc = -1;

	if (need(c, "refresh_token", &presented) < 0 || scopes_of(c, &scope, &sl) < 0)
		return -1;
	if (strlen(presented) >= PRIVACY_TOKEN_MAX)
		return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
	privacy_token_hash(presented, h);
	if (store_token_get(c->s, h, &old, &e) < 0) {
		if (e.code == ERR_NOT_FOUND)
			return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
		return fail_store(c, &e);
	}
	if (strcmp(old.kind, "refresh") != 0)
		return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
	if (old.client_id[0] && !c->client_ok)
		return fail(c, OE_INVALID_CLIENT,
			    "this refresh token was issued to a client: authenticate as that client");
	if (c->client_ok && strcmp(old.client_id, c->client.client_id) != 0)
		return fail(c, OE_INVALID_GRANT, "the refresh token was issued to another client");
	if (old.revoked) {
		refresh_reused(c, &old);
		return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
	}
	now = time_now_ms();
	if (old.expires_ms <= now)
		return fail(c, OE_INVALID_GRANT, "the refresh token has expired: log in again");
	if (store_user_get_uid(c->s, old.uid, &u, &e) < 0) {
		if (e.code != ERR_NOT_FOUND)
			return fail_store(c, &e);
		return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
	}
	if (!u.active) {
		log_info("event=token_refresh_failed user=%s source=%s reason=inactive", u.username,
			 c->source);
		return fail(c, OE_INVALID_GRANT, BAD_REFRESH);
	}
	/* A narrower scope for the new access token (RFC 6749 6); the new
	 * refresh token keeps the login's. */
	scope_split(old.scopes, &orig);
	for (size_t i = 0; i < sl.count; i++) {
		if (scope_in(&orig, sl.p[i], sl.n[i]))
			continue;
		shown(sl.p[i], sl.n[i], bad, sizeof(bad));
		return fail(c, OE_INVALID_SCOPE, "'%s' was not granted to this login", bad);
	}
	granted = scope ? scope : old.scopes;

	privacy_token_new(ACCESS_PREFIX, access, NULL);
	privacy_token_new(REFRESH_PREFIX, refresh, NULL);
	token_row(&t[0], "access", old.uid, old.client_id, granted, old.patient, old.family, now,
		  min64(now + c->cfg->access_ttl_s * 1000, old.expires_ms));
	token_row(&t[1], "refresh", old.uid, old.client_id, old.scopes, old.patient, old.family,
		  now, old.expires_ms);
	t[0].has_family = t[1].has_family = old.has_family;
	privacy_token_hash(access, t[0].hash);
	privacy_token_hash(refresh, t[1].hash);
	if (store_token_rotate(c->s, h, t, 2, &e) < 0) {
		if (e.code == ERR_CONFLICT) { /* used meanwhile, by another request */
			refresh_reused(c, &old);
			fail(c, OE_INVALID_GRANT, BAD_REFRESH);
		} else {
			fail_store(c, &e);
		}
		goto out;
	}
	log_info("event=token_refresh user=%s source=%s", u.username, c->source);
	privacy_audit_auth(c->s, u.username, "token_refresh", c->source, true);
	answer_tokens(c, access, (t[0].expires_ms - now) / 1000, granted, refresh, old.patient);
	snprintf(c->out->user, sizeof(c->out->user), "%s", u.username);
	rc = 0;
out:
	sodium_memzero(access, sizeof(access));
	sodium_memzero(refresh, sizeof(refresh));
	return rc;
}

static const struct grant {
	const char *name;
	int (*run)(struct oauth_call *c);
} grants[] = {
	{ "password", grant_password },
	{ "client_credentials", grant_client_credentials },
	{ "refresh_token", grant_refresh_token },
};

/* ---- the endpoints ---- */

/* The common start: content type and form.  0, or -1 answered. */
static int call_begin(struct oauth_call *c, struct store *s, const struct privacy_oauth_config *cfg,
		      const struct privacy_oauth_req *rq, struct privacy_oauth_resp *out)
{
	const char *ct = rq->content_type;
	struct err e = ERR_INIT;

	memset(c, 0, sizeof(*c));
	c->s = s;
	c->cfg = cfg;
	c->rq = rq;
	c->out = out;
	c->source = rq->source && *rq->source ? rq->source : "-";
	out->status = 500;
	out->challenge[0] = '\0';
	out->user[0] = '\0';
	if (!ct || strcspn(ct, "; \t") != strlen(FORM_TYPE) ||
	    strncasecmp(ct, FORM_TYPE, strlen(FORM_TYPE)) != 0)
		return fail(c, OE_INVALID_REQUEST, "the body must be " FORM_TYPE);
	if (privacy_form_parse(rq->body ? rq->body : "", rq->body ? rq->body_len : 0, rq->arena,
			       &c->form, &e) < 0) {
		if (e.code == ERR_NOMEM)
			return fail(c, OE_SERVER_ERROR, "out of memory");
		return fail(c, OE_INVALID_REQUEST, "%s", e.msg);
	}
	return 0;
}

void privacy_oauth_token(struct store *s, const struct privacy_oauth_config *cfg,
			 const struct privacy_oauth_req *rq, struct privacy_oauth_resp *out)
{
	struct oauth_call c;
	const char *gt;

	/* The dummy hash is made before anything is compared, so that the
	 * first request with an unknown name costs what any other does. */
	pthread_once(&dummy_once, dummy_init);
	if (call_begin(&c, s, cfg, rq, out) < 0)
		goto out;
	if (need(&c, "grant_type", &gt) < 0 || client_auth(&c) < 0)
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(grants); i++) {
		if (strcmp(grants[i].name, gt) == 0) {
			grants[i].run(&c);
			goto out;
		}
	}
	{
		char bad[48];
		shown(gt, strlen(gt), bad, sizeof(bad));
		fail(&c, OE_UNSUPPORTED_GRANT_TYPE,
		     "grant_type '%s' is not supported: use password, client_credentials or "
		     "refresh_token", bad);
	}
out:
	privacy_form_wipe(&c.form);
}

void privacy_oauth_revoke(struct store *s, const struct privacy_oauth_config *cfg,
			  const struct privacy_oauth_req *rq, struct privacy_oauth_resp *out)
{
	struct oauth_call c;
	struct store_principal who;
	struct store_token t;
	struct err e = ERR_INIT;
	const char *token, *auth = rq->authorization;
	const char *caller, *caller_client = "";
	unsigned char h[32];
	bool admin, owner;
	int64_t caller_uid = 0;

	memset(&who, 0, sizeof(who));
	if (call_begin(&c, s, cfg, rq, out) < 0 || need(&c, "token", &token) < 0)
		goto out;
	/* token_type_hint is only a hint (RFC 7009 2.1): every kind is looked up. */
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		if (privacy_form_get(&c.form, "client_secret")) {
			fail(&c, OE_INVALID_REQUEST,
			     "authenticate one way: a bearer token or client credentials, not both");
			goto out;
		}
		if (privacy_authenticate(s, auth, &who, &e) < 0) {
			if (e.code == ERR_UNAUTHENTICATED)
				fail(&c, OE_INVALID_TOKEN, "%s", e.msg);
			else
				fail_store(&c, &e);
			goto out;
		}
		caller = who.username;
		caller_uid = who.uid;
		caller_client = who.uid < 0 ? who.client_id : "";
		admin = strcmp(who.role, "admin") == 0;
	} else {
		if (client_auth(&c) < 0)
			goto out;
		if (!c.client_sent) {
			fail(&c, OE_INVALID_CLIENT,
			     "authenticate: a bearer token, or client credentials (HTTP Basic)");
			goto out;
		}
		caller = c.client.client_id;
		caller_client = c.client.client_id;
		admin = strcmp(c.client.role, "admin") == 0;
	}
	snprintf(out->user, sizeof(out->user), "%s", caller);

	if (strlen(token) >= PRIVACY_TOKEN_MAX)
		goto done; /* not one of ours: nothing to revoke */
	privacy_token_hash(token, h);
	if (store_token_get(s, h, &t, &e) < 0) {
		if (e.code != ERR_NOT_FOUND)
			fail_store(&c, &e);
		else
			goto done;
		goto out;
	}
	owner = (t.uid > 0 && t.uid == caller_uid) ||
		(caller_client[0] && strcmp(t.client_id, caller_client) == 0);
	if (!admin && !owner) {
		log_info("event=token_revoke_refused user=%s source=%s", caller, c.source);
		privacy_audit_auth(c.s, caller, "token_revoke", c.source, false);
		fail(&c, OE_UNAUTHORIZED_CLIENT, "only the token's owner or an admin may revoke it");
		goto out;
	}
	/* A refresh token takes its login with it (RFC 7009 2.1: SHOULD). */
	if (strcmp(t.kind, "refresh") == 0 && t.has_family) {
		if (store_token_revoke_family(s, t.family, NULL, &e) < 0) {
			fail_store(&c, &e);
			goto out;
		}
		privacy_token_forget_all();
	} else if (!t.revoked) {
		if (store_token_revoke(s, h, &e) < 0 && e.code != ERR_NOT_FOUND) {
			fail_store(&c, &e);
			goto out;
		}
		privacy_token_forget(h);
	}
	log_info("event=token_revoke user=%s source=%s kind=%s", caller, c.source, t.kind);
	privacy_audit_auth(c.s, caller, "token_revoke", c.source, true);
done:
	out->status = 200;
	buf_reset(&out->body);
out:
	privacy_form_wipe(&c.form);
}

/* ---- system clients ---- */

int privacy_client_add(struct store *s, const char *client_id, const char *role,
		       const char *scopes, char secret[PRIVACY_SECRET_MAX], struct err *e)
{
	struct store_client cl;
	struct store_user u;
	struct scope_list sl;
	char bad[48];
	int rc = -1;

	memset(&cl, 0, sizeof(cl));
	secret[0] = '\0';
	if (!privacy_username_valid(client_id))
		return err_set(e, ERR_INVALID, "invalid client id: use 1-64 of a-z A-Z 0-9 . _ - @");
	if (!privacy_role_valid(role))
		return err_set(e, ERR_INVALID, "unknown role '%.40s'", role);
	if (scopes && *scopes) {
		if (!oauth_scopes_valid(scopes, e))
			return -1;
		scope_split(scopes, &sl);
		for (size_t i = 0; i < sl.count; i++) {
			if (scope_ctx(sl.p[i], sl.n[i]) == 's')
				continue;
			shown(sl.p[i], sl.n[i], bad, sizeof(bad));
			return err_set(e, ERR_INVALID, "'%s': a system client's scopes are system/ scopes",
				       bad);
		}
	}
	/* a client's principal carries its id as the username (store.h) */
	if (store_user_get(s, client_id, &u, e) == 0)
		return err_set(e, ERR_CONFLICT, "a user named '%s' exists: choose another client id",
			       client_id);
	if (e->code != ERR_NOT_FOUND)
		return -1;
	err_clear(e);
	snprintf(cl.client_id, sizeof(cl.client_id), "%s", client_id);
	snprintf(cl.role, sizeof(cl.role), "%s", role);
	snprintf(cl.scopes, sizeof(cl.scopes), "%s", scopes ? scopes : "");
	cl.active = true;
	privacy_token_new(SECRET_PREFIX, secret, NULL);
	if (privacy_password_hash(secret, cl.secret_hash, e) < 0 || store_client_add(s, &cl, e) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		sodium_memzero(secret, PRIVACY_SECRET_MAX);
	return rc;
}

int privacy_client_set_active(struct store *s, const char *client_id, bool active,
			      struct err *e)
{
	if (store_client_set_active(s, client_id, active, e) < 0)
		return -1;
	/* its tokens stop (or start) working at once in this process */
	privacy_token_forget_all();
	return 0;
}
