/* test_oauth.c - src/privacy/oauth.c and src/server/ratelimit.c: the form
 * parser, scope shapes, the three grants against a real store, refresh
 * rotation and family revocation, lockout, client authentication,
 * revocation, and the per-address rate limiter.
 *
 * Users and clients are written straight into the store with argon2id
 * hashes made at libsodium's minimum cost, so a verification costs
 * microseconds; only the dummy hash (unknown users and clients) and
 * privacy_client_add pay the real price, a handful of times. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "privacy/oauth_int.h"
#include "privacy/privacy.h"
#include "server/ratelimit_int.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define PW "correct horse battery staple"
#define FORM "application/x-www-form-urlencoded"

/* ------------------------------------------------------------------ */
/* the form parser                                                     */

struct form_case {
	const char *in;
	const char *want;   /* "name=value|name=value" after decoding, or NULL: an error */
	const char *msg;    /* the error message (NULL: not checked) */
};

static const struct form_case form_cases[] = {
	{ "", "", NULL },
	{ "a=1", "a=1", NULL },
	{ "a=1&b=2", "a=1|b=2", NULL },
	{ "grant_type=password&username=alice", "grant_type=password|username=alice", NULL },
	{ "a=x+y%20z", "a=x y z", NULL },
	{ "a=%41%42%63", "a=ABc", NULL },
	{ "a=%e2%82%AC", "a=\xe2\x82\xac", NULL },
	{ "a=", "a=", NULL },
	{ "a", "a=", NULL },
	{ "&&a=1&", "a=1", NULL },
	{ "&", "", NULL },
	{ "a=b=c", "a=b=c", NULL },
	{ "a%3Db=c", "a=b=c", NULL },           /* the name is "a=b" */
	{ "a+b=c", "a b=c", NULL },
	{ "scope=user%2F*.rs+patient%2FObservation.rs", "scope=user/*.rs patient/Observation.rs", NULL },
	{ "a=%25", "a=%", NULL },
	{ "a=1&a=2", NULL, "parameter 'a' is given more than once" },
	{ "a=1&b=2&a=1", NULL, "parameter 'a' is given more than once" },
	{ "a=1&a", NULL, "parameter 'a' is given more than once" },
	{ "a%3d=1&a=%3D", "a==1|a==", NULL },    /* "a=" and "a" differ */
	{ "scope=%4", NULL, "malformed percent-escape in parameter 'scope'" },
	{ "scope=%", NULL, "malformed percent-escape in parameter 'scope'" },
	{ "scope=%zz", NULL, "malformed percent-escape in parameter 'scope'" },
	{ "scope=ab%g1", NULL, "malformed percent-escape in parameter 'scope'" },
	{ "password=%00", NULL, "a NUL byte in parameter 'password'" },
	{ "sc%zzope=1", NULL, "malformed percent-escape in the name of parameter 'sc%zzope'" },
	{ "%00=1", NULL, "a NUL byte in the name of parameter '%00'" },
	{ "=1", NULL, "a parameter without a name" },
	{ "a=1&=", NULL, "a parameter without a name" },
	{ "sc\"ope=%", NULL, "malformed percent-escape in parameter 'sc?ope'" },
};

/* "name=value|..." of a parsed form */
static void form_text(const struct privacy_form *f, char *out, size_t cap)
{
	size_t w = 0;

	out[0] = '\0';
	for (size_t i = 0; i < f->n; i++)
		w += (size_t)snprintf(out + w, cap - w, "%s%s=%s", i ? "|" : "", f->f[i].name,
				      f->f[i].value);
}

static void test_form_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_OF(form_cases); i++) {
		const struct form_case *c = &form_cases[i];
		struct arena a;
		struct privacy_form f;
		struct err e = ERR_INIT;
		char got[512];
		int rc;

		arena_init(&a, 1 << 20);
		rc = privacy_form_parse(c->in, strlen(c->in), &a, &f, &e);
		if (c->want) {
			if (rc != 0)
				fail_msg("'%s': refused: %s", c->in, e.msg);
			form_text(&f, got, sizeof(got));
			if (strcmp(got, c->want) != 0)
				fail_msg("'%s': got '%s', expected '%s'", c->in, got, c->want);
		} else {
			if (rc != -1)
				fail_msg("'%s' was accepted", c->in);
			assert_int_equal(e.code, ERR_INVALID);
			if (c->msg && strcmp(e.msg, c->msg) != 0)
				fail_msg("'%s': message '%s', expected '%s'", c->in, e.msg, c->msg);
		}
		arena_release(&a);
	}
}

static void test_form_limits(void **state)
{
	struct arena a;
	struct privacy_form f;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT(0);
	const char *secret = "password=hunter2%zz";

	(void)state;
	arena_init(&a, 1 << 20);
	/* PRIVACY_FORM_MAX_FIELDS parameters, then one more */
	for (int i = 0; i < PRIVACY_FORM_MAX_FIELDS; i++)
		buf_addf(&b, "%sp%d=%d", i ? "&" : "", i, i);
	assert_int_equal(privacy_form_parse(b.data, b.len, &a, &f, &e), 0);
	assert_int_equal(f.n, PRIVACY_FORM_MAX_FIELDS);
	assert_string_equal(privacy_form_get(&f, "p31"), "31");
	assert_null(privacy_form_get(&f, "p32"));
	buf_addstr(&b, "&p32=32");
	assert_int_equal(privacy_form_parse(b.data, b.len, &a, &f, &e), -1);
	assert_int_equal(e.code, ERR_TOO_LARGE);
	/* bytes: exactly the limit parses, one more does not */
	buf_reset(&b);
	buf_addstr(&b, "v=");
	while (b.len < PRIVACY_FORM_MAX_BYTES)
		buf_addch(&b, 'x');
	err_clear(&e);
	assert_int_equal(privacy_form_parse(b.data, b.len, &a, &f, &e), 0);
	assert_int_equal(strlen(privacy_form_get(&f, "v")), PRIVACY_FORM_MAX_BYTES - 2);
	buf_addch(&b, 'x');
	assert_int_equal(privacy_form_parse(b.data, b.len, &a, &f, &e), -1);
	assert_int_equal(e.code, ERR_TOO_LARGE);
	/* a message names the parameter, never its value */
	err_clear(&e);
	assert_int_equal(privacy_form_parse(secret, strlen(secret), &a, &f, &e), -1);
	assert_null(strstr(e.msg, "hunter2"));
	assert_null(strstr(e.detail, "hunter2"));
	/* not NUL-terminated input: only len bytes are read */
	err_clear(&e);
	assert_int_equal(privacy_form_parse("a=1&b=2", 3, &a, &f, &e), 0);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.f[0].value, "1");
	/* wipe */
	assert_int_equal(privacy_form_parse("password=s3cret&x=1", 19, &a, &f, &e), 0);
	privacy_form_wipe(&f);
	assert_string_equal(f.f[0].name, "");
	assert_null(memmem(f.text, f.text_len, "s3cret", 6));
	buf_release(&b);
	arena_release(&a);
}

/* ------------------------------------------------------------------ */
/* scope shapes                                                        */

static void test_scopes(void **state)
{
	static const char *const good[] = {
		"user/*.rs", "user/Patient.r", "patient/Observation.rs", "system/*.cruds",
		"system/*.read", "user/*.write", "user/*.*", "patient/*.s",
		"openid fhirUser", "launch/patient offline_access", "online_access user/Encounter.crud",
		"user/Patient.rs user/Observation.rs system/Claim.cu",
	};
	static const char *const bad[] = {
		"", " ", "user/*.rs ", " user/*.rs", "user/*.rs  user/Patient.r", "user",
		"user/", "user/*", "user/*.", "user/.rs", "user/patient.rs", "user/Pat1ent.rs",
		"user/*.sr", "user/*.rr", "user/*.x", "user/*.cruds?", "admin/*.rs", "User/*.rs",
		"openid2", "user/*.rs\tuser/Patient.r", "user/*.r\"s", "user/Patient.rs\\",
		"patient/Observation.rs?a=\xc3\xa9",
		/* query-restricted scopes: the decision point cannot honour them */
		"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
	};
	struct err e = ERR_INIT;
	char big[STORE_SCOPES_MAX + 16];

	(void)state;
	for (size_t i = 0; i < N_OF(good); i++) {
		err_clear(&e);
		if (!oauth_scopes_valid(good[i], &e))
			fail_msg("'%s' refused: %s", good[i], e.msg);
	}
	for (size_t i = 0; i < N_OF(bad); i++) {
		err_clear(&e);
		if (oauth_scopes_valid(bad[i], &e))
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(e.code, ERR_INVALID);
		assert_null(strchr(e.msg, '"'));
	}
	err_clear(&e);
	assert_false(oauth_scopes_valid("user/*.rs bogus", &e));
	assert_string_equal(e.msg, "unknown or malformed scope 'bogus'");
	/* length and count */
	big[0] = '\0';
	for (size_t w = 0; w + 10 < sizeof(big);)
		w += (size_t)snprintf(big + w, sizeof(big) - w, "%suser/*.rs", w ? " " : "");
	assert_false(oauth_scopes_valid(big, &e));

	/* what a registered scope covers */
	assert_true(oauth_scope_covers("system/*.rs", "system/Patient.rs"));
	assert_true(oauth_scope_covers("system/*.rs", "system/Patient.r"));
	assert_true(oauth_scope_covers("system/*.read", "system/Observation.rs"));
	assert_true(oauth_scope_covers("system/*.cruds", "system/Claim.cu"));
	assert_true(oauth_scope_covers("system/*.*", "system/Claim.write"));
	assert_true(oauth_scope_covers("system/Patient.rs", "system/Patient.s"));
	assert_true(oauth_scope_covers("system/Observation.rs", "system/Observation.rs?code=1"));
	assert_true(oauth_scope_covers("system/Observation.rs?code=1", "system/Observation.r?code=1"));
	assert_false(oauth_scope_covers("system/*.rs", "system/Patient.c"));
	assert_false(oauth_scope_covers("system/*.read", "system/Patient.write"));
	assert_false(oauth_scope_covers("system/Patient.rs", "system/Observation.rs"));
	assert_false(oauth_scope_covers("system/Patient.rs", "system/*.rs"));
	assert_false(oauth_scope_covers("system/*.rs", "user/Patient.rs"));
	assert_false(oauth_scope_covers("system/Observation.rs?code=1", "system/Observation.rs"));
	assert_false(oauth_scope_covers("system/Observation.rs?code=1", "system/Observation.rs?code=2"));
	assert_true(oauth_scope_covers("openid", "openid"));
	assert_false(oauth_scope_covers("openid", "fhirUser"));
}

/* ------------------------------------------------------------------ */
/* the endpoints against a real store                                  */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct privacy_oauth_config cfg;
	struct privacy_oauth_resp resp;
	json_object *json;      /* the last answer, parsed */
};

static int setup_store(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-oauth-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "setup: %s (%s)\n", e.msg, e.detail);
		return -1;
	}
	privacy_oauth_config_defaults(&f->cfg);
	privacy_oauth_resp_init(&f->resp);
	*state = f;
	return 0;
}

static int teardown_store(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	if (f->json)
		json_object_put(f->json);
	privacy_oauth_resp_release(&f->resp);
	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* argon2id at the minimum cost: same format, microseconds to verify */
static void cheap_hash(const char *pw, char out[STORE_HASH_MAX + 1])
{
	assert_int_equal(crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN,
					   crypto_pwhash_MEMLIMIT_MIN), 0);
}

static int64_t add_user(struct fx *f, const char *name, const char *role, bool active)
{
	struct store_user u;
	struct err e = ERR_INIT;

	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.role, sizeof(u.role), "%s", role);
	cheap_hash(PW, u.pw_hash);
	u.active = active;
	if (store_user_add(f->s, &u, &e) < 0)
		fail_msg("add_user %s: %s", name, e.msg);
	return u.uid;
}

static void add_client(struct fx *f, const char *id, const char *role, const char *scopes,
		       const char *secret)
{
	struct store_client c;
	struct err e = ERR_INIT;

	memset(&c, 0, sizeof(c));
	snprintf(c.client_id, sizeof(c.client_id), "%s", id);
	snprintf(c.role, sizeof(c.role), "%s", role);
	snprintf(c.scopes, sizeof(c.scopes), "%s", scopes);
	cheap_hash(secret, c.secret_hash);
	c.active = true;
	if (store_client_add(f->s, &c, &e) < 0)
		fail_msg("add_client %s: %s", id, e.msg);
	assert_true(c.ckey > 0);
}

/* POST to the endpoint (revoke: the revocation endpoint) with body and an
 * Authorization header (or NULL); the status.  f->json holds the answer. */
static int post_as(struct fx *f, bool revoke, const char *ctype, const char *auth,
		   const char *body)
{
	struct privacy_oauth_req rq;
	struct arena a;
	struct err e = ERR_INIT;

	arena_init(&a, 1 << 20);
	memset(&rq, 0, sizeof(rq));
	rq.content_type = ctype;
	rq.authorization = auth;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.source = "192.0.2.7";
	rq.arena = &a;
	privacy_oauth_resp_release(&f->resp);
	privacy_oauth_resp_init(&f->resp);
	if (revoke)
		privacy_oauth_revoke(f->s, &f->cfg, &rq, &f->resp);
	else
		privacy_oauth_token(f->s, &f->cfg, &rq, &f->resp);
	arena_release(&a);
	if (f->json)
		json_object_put(f->json);
	f->json = NULL;
	if (f->resp.body.len) {
		f->json = json_parse_buf(f->resp.body.data, f->resp.body.len, 0, &e);
		if (!f->json)
			fail_msg("not JSON: %s", buf_cstr(&f->resp.body));
	}
	return f->resp.status;
}

static int post(struct fx *f, const char *body)
{
	return post_as(f, false, FORM, NULL, body);
}

static const char *field(struct fx *f, const char *name)
{
	return f->json ? json_get_str(f->json, name) : NULL;
}

/* The answer is the error err with a description containing desc. */
static void want_error(struct fx *f, int status, const char *err, const char *desc)
{
	const char *d = field(f, "error_description");

	if (f->resp.status != status || !field(f, "error") || strcmp(field(f, "error"), err) != 0)
		fail_msg("expected %d %s, got %d %s", status, err, f->resp.status,
			 buf_cstr(&f->resp.body));
	assert_non_null(d);
	if (desc && !strstr(d, desc))
		fail_msg("description '%s' lacks '%s'", d, desc);
	assert_null(strchr(d, '"'));
	assert_null(strchr(d, '\\'));
}

/* Copy a token out of the last answer. */
static void take(struct fx *f, const char *name, char out[PRIVACY_TOKEN_MAX])
{
	const char *t = field(f, name);

	if (!t)
		fail_msg("no %s in %s", name, buf_cstr(&f->resp.body));
	assert_true(strlen(t) < PRIVACY_TOKEN_MAX);
	snprintf(out, PRIVACY_TOKEN_MAX, "%s", t);
}

/* privacy_authenticate with "Bearer tok": 0 or -1 */
static int bearer(struct fx *f, const char *tok, struct store_principal *p)
{
	char hdr[128];
	struct err e = ERR_INIT;
	struct store_principal dummy;

	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	return privacy_authenticate(f->s, hdr, p ? p : &dummy, &e);
}

static void login(struct fx *f, const char *user, const char *scope, char access[PRIVACY_TOKEN_MAX],
		  char refresh[PRIVACY_TOKEN_MAX])
{
	char body[512];

	snprintf(body, sizeof(body), "grant_type=password&username=%s&password=%s%s%s", user,
		 "correct+horse+battery+staple", scope ? "&scope=" : "", scope ? scope : "");
	if (post(f, body) != 200)
		fail_msg("login %s: %s", user, buf_cstr(&f->resp.body));
	take(f, "access_token", access);
	if (refresh)
		take(f, "refresh_token", refresh);
}

static void test_password_grant(void **state)
{
	struct fx *f = *state;
	struct store_principal p;
	char access[PRIVACY_TOKEN_MAX], refresh[PRIVACY_TOKEN_MAX];
	json_object *v;
	int64_t uid = add_user(f, "alice", "him_technician", true);

	add_user(f, "ivan", "coder", false);
	/* the answer: RFC 6749 5.1 */
	assert_int_equal(post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple"
			  "&scope=user%2FPatient.rs+user%2FObservation.rs"), 200);
	assert_string_equal(field(f, "token_type"), "Bearer");
	assert_string_equal(field(f, "scope"), "user/Patient.rs user/Observation.rs");
	assert_true(json_object_object_get_ex(f->json, "expires_in", &v));
	assert_int_equal(json_object_get_int64(v), PRIVACY_DEFAULT_TTL);
	assert_null(field(f, "patient"));
	assert_string_equal(f->resp.user, "alice");
	take(f, "access_token", access);
	take(f, "refresh_token", refresh);
	assert_int_equal(strncmp(access, "ck_", 3), 0);
	assert_int_equal(strncmp(refresh, "ckr_", 4), 0);
	assert_int_equal(strlen(access), 3 + 43);
	/* the access token works; the refresh token is not a bearer token */
	assert_int_equal(bearer(f, access, &p), 0);
	assert_int_equal(p.uid, uid);
	assert_string_equal(p.username, "alice");
	assert_string_equal(p.role, "him_technician");
	assert_string_equal(p.scopes, "user/Patient.rs user/Observation.rs");
	assert_string_equal(p.patient, "");
	assert_string_equal(p.client_id, "");
	assert_int_equal(bearer(f, refresh, NULL), -1);

	/* no scope: the token carries none (the role alone decides) */
	assert_int_equal(post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple"), 200);
	assert_string_equal(field(f, "scope"), "");

	/* a patient launch context */
	assert_int_equal(post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple"
			  "&scope=patient%2F*.rs&patient=p-123"), 200);
	assert_string_equal(field(f, "patient"), "p-123");
	take(f, "access_token", access);
	assert_int_equal(bearer(f, access, &p), 0);
	assert_string_equal(p.patient, "p-123");
	assert_string_equal(p.scopes, "patient/*.rs");

	/* wrong password, unknown user, inactive user: one answer */
	assert_int_equal(post(f, "grant_type=password&username=alice&password=wrong+horse+battery"), 400);
	want_error(f, 400, "invalid_grant", "invalid username or password");
	assert_string_equal(f->resp.user, "");
	assert_int_equal(post(f, "grant_type=password&username=nobody&password=correct+horse+battery+staple"), 400);
	want_error(f, 400, "invalid_grant", "invalid username or password");
	assert_int_equal(post(f, "grant_type=password&username=ivan&password=correct+horse+battery+staple"), 400);
	want_error(f, 400, "invalid_grant", "invalid username or password");

	/* malformed requests */
	post(f, "grant_type=password&username=alice");
	want_error(f, 400, "invalid_request", "missing parameter 'password'");
	post(f, "grant_type=password&password=x");
	want_error(f, 400, "invalid_request", "missing parameter 'username'");
	post(f, "username=alice&password=x");
	want_error(f, 400, "invalid_request", "missing parameter 'grant_type'");
	post(f, "grant_type=implicit");
	want_error(f, 400, "unsupported_grant_type", "grant_type 'implicit'");
	post(f, "grant_type=password&username=alice&password=x&password=y");
	want_error(f, 400, "invalid_request", "parameter 'password' is given more than once");
	post(f, "grant_type=password&username=alice&password=%zz");
	want_error(f, 400, "invalid_request", "malformed percent-escape in parameter 'password'");
	post_as(f, false, "application/json", NULL, "{\"grant_type\":\"password\"}");
	want_error(f, 400, "invalid_request", FORM);
	post_as(f, false, NULL, NULL, "grant_type=password");
	want_error(f, 400, "invalid_request", FORM);
	assert_int_equal(post_as(f, false, "Application/X-WWW-Form-Urlencoded; charset=UTF-8", NULL,
				 "grant_type=password&username=alice&password=correct+horse+battery+staple"), 200);
	/* scopes */
	post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple&scope=user%2F*.rz");
	want_error(f, 400, "invalid_scope", "user/*.rz");
	post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple&scope=system%2F*.rs");
	want_error(f, 400, "invalid_scope", "system/ scopes are for registered clients");
	post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple&scope=patient%2F*.rs");
	want_error(f, 400, "invalid_request", "patient context");
	post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple&scope=user%2F*.rs&patient=1");
	want_error(f, 400, "invalid_request", "parameter 'patient' needs patient/ scopes");
	post(f, "grant_type=password&username=alice&password=correct+horse+battery+staple&scope=patient%2F*.rs&patient=a%2Fb");
	want_error(f, 400, "invalid_request", "not a Patient id");
	/* answers never hold the password */
	assert_null(strstr(buf_cstr(&f->resp.body), "horse"));
}

static void test_refresh_rotation(void **state)
{
	struct fx *f = *state;
	char a1[PRIVACY_TOKEN_MAX], r1[PRIVACY_TOKEN_MAX], a2[PRIVACY_TOKEN_MAX], r2[PRIVACY_TOKEN_MAX];
	char a3[PRIVACY_TOKEN_MAX], r3[PRIVACY_TOKEN_MAX], other_a[PRIVACY_TOKEN_MAX];
	char other_r[PRIVACY_TOKEN_MAX], body[256];
	struct store_principal p;
	struct store_token t;
	unsigned char h1[32], h2[32];
	struct err e = ERR_INIT;

	add_user(f, "bob", "coder", true);
	login(f, "bob", "user%2FPatient.rs+user%2FClaim.cruds", a1, r1);
	login(f, "bob", NULL, other_a, other_r); /* a second login: another family */

	/* use r1: a new pair; r1 is spent; the login's expiry is kept */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r1);
	assert_int_equal(post(f, body), 200);
	assert_string_equal(field(f, "scope"), "user/Patient.rs user/Claim.cruds");
	assert_string_equal(f->resp.user, "bob");
	take(f, "access_token", a2);
	take(f, "refresh_token", r2);
	assert_string_not_equal(r1, r2);
	assert_int_equal(bearer(f, a1, NULL), 0); /* earlier access tokens live on */
	assert_int_equal(bearer(f, a2, &p), 0);
	assert_string_equal(p.username, "bob");
	privacy_token_hash(r1, h1);
	privacy_token_hash(r2, h2);
	assert_int_equal(store_token_get(f->s, h1, &t, &e), 0);
	assert_true(t.revoked);
	{
		struct store_token t2;
		assert_int_equal(store_token_get(f->s, h2, &t2, &e), 0);
		assert_false(t2.revoked);
		assert_true(t2.has_family);
		assert_memory_equal(t.family, t2.family, 16);
		assert_int_equal(t.expires_ms, t2.expires_ms);
		assert_string_equal(t2.kind, "refresh");
	}

	/* a narrower scope for the access token; the refresh token keeps the login's */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s&scope=user%%2FPatient.rs", r2);
	assert_int_equal(post(f, body), 200);
	assert_string_equal(field(f, "scope"), "user/Patient.rs");
	take(f, "access_token", a3);
	take(f, "refresh_token", r3);
	assert_int_equal(bearer(f, a3, &p), 0);
	assert_string_equal(p.scopes, "user/Patient.rs");
	/* wider than the login: refused, and nothing spent */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s&scope=user%%2FObservation.rs", r3);
	post(f, body);
	want_error(f, 400, "invalid_scope", "was not granted");
	/* an access token is not a refresh token */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", a3);
	post(f, body);
	want_error(f, 400, "invalid_grant", "not valid");
	post(f, "grant_type=refresh_token&refresh_token=ckr_never_issued");
	want_error(f, 400, "invalid_grant", "not valid");
	post(f, "grant_type=refresh_token");
	want_error(f, 400, "invalid_request", "missing parameter 'refresh_token'");

	/* r1 again: stolen.  The whole family goes: a1, a2, a3 and r3 */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r1);
	post(f, body);
	want_error(f, 400, "invalid_grant", "not valid");
	assert_int_equal(bearer(f, a1, NULL), -1);
	assert_int_equal(bearer(f, a2, NULL), -1);
	assert_int_equal(bearer(f, a3, NULL), -1);
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r3);
	post(f, body);
	want_error(f, 400, "invalid_grant", "not valid");
	/* the other login is untouched */
	assert_int_equal(bearer(f, other_a, NULL), 0);
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", other_r);
	assert_int_equal(post(f, body), 200);
}

static void test_refresh_expired_and_rotate_race(void **state)
{
	struct fx *f = *state;
	char a[PRIVACY_TOKEN_MAX], r[PRIVACY_TOKEN_MAX], r2[PRIVACY_TOKEN_MAX], body[256];
	struct store_token t[2];
	unsigned char h[32];
	struct err e = ERR_INIT;

	add_user(f, "cora", "coder", true);
	f->cfg.refresh_ttl_s = 1;
	login(f, "cora", NULL, a, r);
	/* the access token cannot outlive the login */
	{
		struct store_principal p;
		assert_int_equal(bearer(f, a, &p), 0);
		assert_true(p.expires_ms <= time_now_ms() + 1000);
	}
	f->cfg.refresh_ttl_s = PRIVACY_REFRESH_TTL;
	usleep(1100 * 1000);
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r);
	post(f, body);
	want_error(f, 400, "invalid_grant", "expired");

	/* two requests with one refresh token: the store lets one rotate */
	login(f, "cora", NULL, a, r);
	privacy_token_hash(r, h);
	memset(t, 0, sizeof(t));
	privacy_token_new("ckr_", r2, t[0].hash);
	snprintf(t[0].kind, sizeof(t[0].kind), "refresh");
	t[0].expires_ms = time_now_ms() + 60000;
	assert_int_equal(store_token_rotate(f->s, h, t, 1, &e), 0);
	privacy_token_new("ckr_", r2, t[0].hash);
	assert_int_equal(store_token_rotate(f->s, h, t, 1, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	/* and the spent token, presented, revokes the family */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r);
	post(f, body);
	want_error(f, 400, "invalid_grant", "not valid");
	assert_int_equal(bearer(f, a, NULL), -1);
}

static void test_lockout(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct err e = ERR_INIT;
	const char *bad = "grant_type=password&username=dora&password=not+my+password";
	const char *good = "grant_type=password&username=dora&password=correct+horse+battery+staple";
	char a[PRIVACY_TOKEN_MAX];

	add_user(f, "dora", "registrar", true);
	f->cfg.lockout_attempts = 3;
	f->cfg.lockout_ms = 2000; /* long enough for a slow (valgrind) run to see it */
	/* a success resets the count */
	post(f, bad);
	post(f, bad);
	assert_int_equal(store_user_get(f->s, "dora", &u, &e), 0);
	assert_int_equal(u.failed_logins, 2);
	assert_int_equal(post(f, good), 200);
	assert_int_equal(store_user_get(f->s, "dora", &u, &e), 0);
	assert_int_equal(u.failed_logins, 0);
	/* three in a row lock; then even the right password is refused, with
	 * the same answer as a wrong one */
	post(f, bad);
	post(f, bad);
	post(f, bad);
	want_error(f, 400, "invalid_grant", "invalid username or password");
	assert_int_equal(store_user_get(f->s, "dora", &u, &e), 0);
	assert_true(u.locked_until_ms > time_now_ms());
	assert_int_equal(u.failed_logins, 0);
	post(f, good);
	want_error(f, 400, "invalid_grant", "invalid username or password");
	/* attempts while locked do not count or extend the lock */
	post(f, bad);
	{
		struct store_user u2;
		assert_int_equal(store_user_get(f->s, "dora", &u2, &e), 0);
		assert_int_equal(u2.locked_until_ms, u.locked_until_ms);
		assert_int_equal(u2.failed_logins, 0);
	}
	/* the lock ends */
	usleep(2100 * 1000);
	assert_int_equal(post(f, good), 200);
	take(f, "access_token", a);
	assert_int_equal(bearer(f, a, NULL), 0);
	assert_int_equal(store_user_get(f->s, "dora", &u, &e), 0);
	assert_int_equal(u.locked_until_ms, 0);
	/* 0 attempts: never locks */
	f->cfg.lockout_attempts = 0;
	for (int i = 0; i < 5; i++)
		post(f, bad);
	assert_int_equal(post(f, good), 200);
}

static void basic(char *out, size_t cap, const char *id, const char *secret)
{
	char raw[256];
	int n = snprintf(raw, sizeof(raw), "%s:%s", id, secret);
	size_t w = (size_t)snprintf(out, cap, "Basic ");

	sodium_bin2base64(out + w, cap - w, (const unsigned char *)raw, (size_t)n,
			  sodium_base64_VARIANT_ORIGINAL);
}

static void test_client_credentials(void **state)
{
	struct fx *f = *state;
	const char *sec = "cks_the-secret-of-the-test-client";
	char auth[256], body[256], tok[PRIVACY_TOKEN_MAX];
	struct store_principal p;
	struct store_client c;
	struct err e = ERR_INIT;

	add_client(f, "lab-feed", "him_technician", "system/*.rs system/Observation.cruds", sec);
	add_user(f, "erin", "coder", true);
	assert_int_equal(store_client_get(f->s, "lab-feed", &c, &e), 0);

	/* HTTP Basic */
	basic(auth, sizeof(auth), "lab-feed", sec);
	assert_int_equal(post_as(f, false, FORM, auth, "grant_type=client_credentials"), 200);
	assert_string_equal(field(f, "scope"), "system/*.rs system/Observation.cruds");
	assert_null(field(f, "refresh_token"));
	assert_string_equal(f->resp.user, "lab-feed");
	take(f, "access_token", tok);
	assert_int_equal(bearer(f, tok, &p), 0);
	assert_int_equal(p.uid, -c.ckey);
	assert_string_equal(p.username, "lab-feed");
	assert_string_equal(p.client_id, "lab-feed");
	assert_string_equal(p.role, "him_technician");
	/* form fields, and a narrower scope */
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_id=lab-feed&client_secret=%s"
		 "&scope=system%%2FPatient.r+system%%2FObservation.cu", sec);
	assert_int_equal(post(f, body), 200);
	assert_string_equal(field(f, "scope"), "system/Patient.r system/Observation.cu");

	/* beyond the registration, or not system/ */
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_id=lab-feed&client_secret=%s"
		 "&scope=system%%2FPatient.c", sec);
	post(f, body);
	want_error(f, 400, "invalid_scope", "more than this client is registered for");
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_id=lab-feed&client_secret=%s"
		 "&scope=user%%2FPatient.r", sec);
	post(f, body);
	want_error(f, 400, "invalid_scope", "system/ scopes");
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_id=lab-feed&client_secret=%s"
		 "&patient=1", sec);
	post(f, body);
	want_error(f, 400, "invalid_request", "no patient context");

	/* failed authentication: 401 with a Basic challenge */
	basic(auth, sizeof(auth), "lab-feed", "cks_wrong");
	post_as(f, false, FORM, auth, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", "client authentication failed");
	assert_int_equal(strncmp(f->resp.challenge, "Basic ", 6), 0);
	basic(auth, sizeof(auth), "nobody", sec);
	post_as(f, false, FORM, auth, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", "client authentication failed");
	post_as(f, false, FORM, "Basic !!!not-base64", "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", "malformed");
	snprintf(auth, sizeof(auth), "Basic bm8tY29sb24taGVyZQ=="); /* "no-colon-here" */
	post_as(f, false, FORM, auth, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", "malformed");
	post(f, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", "needs client authentication");
	assert_int_equal(strncmp(f->resp.challenge, "Basic ", 6), 0);
	basic(auth, sizeof(auth), "lab-feed", sec);
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_secret=%s", sec);
	post_as(f, false, FORM, auth, body);
	want_error(f, 400, "invalid_request", "one way");
	post_as(f, false, FORM, auth, "grant_type=client_credentials&client_id=other");
	want_error(f, 400, "invalid_request", "differs");
	snprintf(body, sizeof(body), "grant_type=client_credentials&client_secret=%s", sec);
	post(f, body);
	want_error(f, 400, "invalid_request", "client_secret without client_id");
	/* a user's password is not a client secret */
	basic(auth, sizeof(auth), "erin", PW);
	post_as(f, false, FORM, auth, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", NULL);

	/* disabled: no new tokens, and the issued ones stop at once */
	assert_int_equal(privacy_client_set_active(f->s, "lab-feed", false, &e), 0);
	assert_int_equal(bearer(f, tok, NULL), -1);
	basic(auth, sizeof(auth), "lab-feed", sec);
	post_as(f, false, FORM, auth, "grant_type=client_credentials");
	want_error(f, 401, "invalid_client", NULL);
	assert_int_equal(privacy_client_set_active(f->s, "lab-feed", true, &e), 0);
	assert_int_equal(bearer(f, tok, NULL), 0);
	err_clear(&e);
	assert_int_equal(privacy_client_set_active(f->s, "nobody", false, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

/* A client that authenticates on the password grant owns the login: its
 * refresh token needs the same client. */
static void test_client_bound_refresh(void **state)
{
	struct fx *f = *state;
	const char *sec = "cks_ui-secret";
	char auth[256], other[256], body[256], r[PRIVACY_TOKEN_MAX], a[PRIVACY_TOKEN_MAX];
	struct store_principal p;

	add_client(f, "ui", "admin", "", sec);
	add_client(f, "other", "admin", "", "cks_other");
	add_user(f, "gus", "coder", true);
	basic(auth, sizeof(auth), "ui", sec);
	basic(other, sizeof(other), "other", "cks_other");
	assert_int_equal(post_as(f, false, FORM, auth,
				 "grant_type=password&username=gus&password=correct+horse+battery+staple"), 200);
	take(f, "access_token", a);
	take(f, "refresh_token", r);
	assert_int_equal(bearer(f, a, &p), 0);
	assert_string_equal(p.username, "gus");
	assert_string_equal(p.role, "coder");
	assert_string_equal(p.client_id, "ui");
	assert_true(p.uid > 0);
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r);
	post(f, body);
	want_error(f, 401, "invalid_client", "authenticate as that client");
	post_as(f, false, FORM, other, body);
	want_error(f, 400, "invalid_grant", "another client");
	assert_int_equal(post_as(f, false, FORM, auth, body), 200);
}

static void test_client_add(void **state)
{
	struct fx *f = *state;
	char secret[PRIVACY_SECRET_MAX], auth[256];
	struct store_client c;
	struct err e = ERR_INIT;

	add_user(f, "taken", "coder", true);
	assert_int_equal(privacy_client_add(f->s, "bad id", "coder", NULL, secret, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_client_add(f->s, "svc", "root", NULL, secret, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_client_add(f->s, "svc", "coder", "user/*.rs", secret, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_non_null(strstr(e.msg, "system/ scopes"));
	err_clear(&e);
	assert_int_equal(privacy_client_add(f->s, "svc", "coder", "system/*.zz", secret, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_client_add(f->s, "taken", "coder", NULL, secret, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
	/* one real argon2id hash */
	err_clear(&e);
	assert_int_equal(privacy_client_add(f->s, "svc", "billing", "system/Claim.cruds", secret, &e), 0);
	assert_int_equal(strncmp(secret, "cks_", 4), 0);
	assert_int_equal(strlen(secret), 4 + 43);
	assert_int_equal(store_client_get(f->s, "svc", &c, &e), 0);
	assert_int_equal(strncmp(c.secret_hash, "$argon2id$", 10), 0);
	assert_null(strstr(c.secret_hash, secret + 4));
	assert_string_equal(c.role, "billing");
	assert_string_equal(c.scopes, "system/Claim.cruds");
	assert_true(c.active);
	basic(auth, sizeof(auth), "svc", secret);
	assert_int_equal(post_as(f, false, FORM, auth, "grant_type=client_credentials"), 200);
	char again[PRIVACY_SECRET_MAX];
	assert_int_equal(privacy_client_add(f->s, "svc", "billing", NULL, again, &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
}

static void test_revoke(void **state)
{
	struct fx *f = *state;
	char a[PRIVACY_TOKEN_MAX], r[PRIVACY_TOKEN_MAX], b[PRIVACY_TOKEN_MAX], adm[PRIVACY_TOKEN_MAX];
	char a2[PRIVACY_TOKEN_MAX], r2[PRIVACY_TOKEN_MAX], ctok[PRIVACY_TOKEN_MAX];
	char hdr[128], body[256], auth[256];

	add_user(f, "hana", "coder", true);
	add_user(f, "ike", "coder", true);
	add_user(f, "root", "admin", true);
	add_client(f, "feed", "him_technician", "", "cks_feed");
	add_client(f, "feed2", "him_technician", "", "cks_feed2");
	login(f, "hana", NULL, a, r);
	login(f, "ike", NULL, b, NULL);
	login(f, "root", NULL, adm, NULL);

	/* no caller */
	snprintf(body, sizeof(body), "token=%s", a);
	post_as(f, true, FORM, NULL, body);
	want_error(f, 401, "invalid_client", "authenticate");
	post_as(f, true, FORM, "Bearer ck_unknown", body);
	want_error(f, 401, "invalid_token", NULL);
	assert_int_equal(strncmp(f->resp.challenge, "Bearer ", 7), 0);
	/* someone else's token */
	snprintf(hdr, sizeof(hdr), "Bearer %s", b);
	post_as(f, true, FORM, hdr, body);
	want_error(f, 400, "unauthorized_client", "owner or an admin");
	assert_int_equal(bearer(f, a, NULL), 0);
	/* unknown tokens: 200, nothing said */
	assert_int_equal(post_as(f, true, FORM, hdr, "token=ck_nothing_like_it"), 200);
	assert_int_equal(f->resp.body.len, 0);
	assert_int_equal(post_as(f, true, FORM, hdr, "token=ck_x&token_type_hint=refresh_token"), 200);
	post_as(f, true, FORM, hdr, "token_type_hint=access_token");
	want_error(f, 400, "invalid_request", "missing parameter 'token'");
	/* one's own access token: that one goes, the refresh token stays */
	snprintf(hdr, sizeof(hdr), "Bearer %s", a);
	assert_int_equal(post_as(f, true, FORM, hdr, body), 200);
	assert_string_equal(f->resp.user, "hana");
	assert_int_equal(bearer(f, a, NULL), -1);
	/* the login goes on: a new pair from the refresh token */
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r);
	assert_int_equal(post(f, body), 200);
	take(f, "access_token", a2);
	take(f, "refresh_token", r2);
	/* revoking the refresh token ends the login: its access tokens too */
	snprintf(hdr, sizeof(hdr), "Bearer %s", a2);
	snprintf(body, sizeof(body), "token=%s&token_type_hint=refresh_token", r2);
	assert_int_equal(post_as(f, true, FORM, hdr, body), 200);
	assert_int_equal(bearer(f, a2, NULL), -1);
	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s", r2);
	post(f, body);
	want_error(f, 400, "invalid_grant", NULL);
	/* an admin may revoke anyone's */
	snprintf(hdr, sizeof(hdr), "Bearer %s", adm);
	snprintf(body, sizeof(body), "token=%s", b);
	assert_int_equal(post_as(f, true, FORM, hdr, body), 200);
	assert_int_equal(bearer(f, b, NULL), -1);
	/* a client, by its credentials, revokes its own tokens, not others' */
	basic(auth, sizeof(auth), "feed", "cks_feed");
	assert_int_equal(post_as(f, false, FORM, auth, "grant_type=client_credentials"), 200);
	take(f, "access_token", ctok);
	snprintf(body, sizeof(body), "token=%s", adm);
	post_as(f, true, FORM, auth, body);
	want_error(f, 400, "unauthorized_client", NULL);
	basic(auth, sizeof(auth), "feed2", "cks_feed2");
	snprintf(body, sizeof(body), "token=%s", ctok);
	post_as(f, true, FORM, auth, body);
	want_error(f, 400, "unauthorized_client", NULL);
	basic(auth, sizeof(auth), "feed", "cks_wrong");
	post_as(f, true, FORM, auth, body);
	want_error(f, 401, "invalid_client", NULL);
	basic(auth, sizeof(auth), "feed", "cks_feed");
	assert_int_equal(post_as(f, true, FORM, auth, body), 200);
	assert_int_equal(bearer(f, ctok, NULL), -1);
	/* the body must be a form here too */
	post_as(f, true, "text/plain", auth, body);
	want_error(f, 400, "invalid_request", FORM);
}

static void test_store_counters(void **state)
{
	struct fx *f = *state;
	int64_t uid = add_user(f, "jo", "coder", true);
	struct store_user u;
	struct err e = ERR_INIT;
	bool locked;

	assert_int_equal(store_user_login_failed(f->s, uid, 2, 12345, &locked, &e), 0);
	assert_false(locked);
	assert_int_equal(store_user_login_failed(f->s, uid, 2, 12345, &locked, &e), 0);
	assert_true(locked);
	assert_int_equal(store_user_get_uid(f->s, uid, &u, &e), 0);
	assert_string_equal(u.username, "jo");
	assert_int_equal(u.failed_logins, 0);
	assert_int_equal(u.locked_until_ms, 12345);
	assert_int_equal(store_user_login_ok(f->s, uid, &e), 0);
	assert_int_equal(store_user_get_uid(f->s, uid, &u, &e), 0);
	assert_int_equal(u.locked_until_ms, 0);
	assert_int_equal(store_user_get_uid(f->s, 999, &u, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	err_clear(&e);
	assert_int_equal(store_client_set_active(f->s, "none", true, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	/* authentication events reach the audit trail */
	{
		struct store_audit_report r;
		privacy_audit_auth(f->s, NULL, "login_failed", NULL, false);
		privacy_audit_auth(f->s, "jo", "login", "127.0.0.1", true);
		assert_int_equal(store_audit_verify(f->s, NULL, &r, &e), 0);
		assert_int_equal(r.bad_seq, 0);
		assert_true(r.entries >= 2);
	}
}

/* ------------------------------------------------------------------ */
/* the rate limiter                                                    */

static void test_ratelimit(void **state)
{
	struct ratelimit *rl = ratelimit_new(2.0, 4.0, 64);
	int64_t t = 1000000;

	(void)state;
	assert_non_null(rl);
	/* a burst of 4, then 1 s to wait */
	for (int i = 0; i < 4; i++)
		assert_int_equal(ratelimit_take(rl, "10.0.0.1", t), 0);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t), 1);
	/* others are not affected */
	assert_int_equal(ratelimit_take(rl, "10.0.0.2", t), 0);
	assert_int_equal(ratelimit_take(rl, "", t), 0);
	assert_int_equal(ratelimit_take(rl, NULL, t), 0);
	/* 2 a second: after 500 ms one more */
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 499), 1);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 500), 0);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 500), 1);
	/* refused requests do not drain it further; a long pause fills it to
	 * the burst, no more */
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 100000), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 100000), 0);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t + 100000), 1);
	/* time going backwards does not refill */
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", t), 1);
	ratelimit_free(rl);

	/* a slow rate says how long */
	rl = ratelimit_new(0.1, 1.0, 8);
	assert_int_equal(ratelimit_take(rl, "a", t), 0);
	assert_int_equal(ratelimit_take(rl, "a", t), 10);
	assert_int_equal(ratelimit_take(rl, "a", t + 5000), 5);
	ratelimit_free(rl);
}

static void test_ratelimit_bounded(void **state)
{
	struct ratelimit *rl = ratelimit_new(1.0, 2.0, RATELIMIT_WAYS); /* one set */
	int64_t t = 5000;
	char key[32];

	(void)state;
	assert_non_null(rl);
	assert_int_equal(ratelimit_take(rl, "victim", t), 0);
	assert_int_equal(ratelimit_take(rl, "victim", t), 0);
	assert_int_equal(ratelimit_take(rl, "victim", t), 1);
	/* seven others fit beside it: it keeps its (empty) bucket */
	for (int i = 0; i < RATELIMIT_WAYS - 1; i++) {
		snprintf(key, sizeof(key), "other-%d", i);
		assert_int_equal(ratelimit_take(rl, key, t + 1 + i), 0);
	}
	assert_int_equal(ratelimit_take(rl, "victim", t + 100), 1);
	/* an eighth pushes out the least recently seen, which is not victim now */
	assert_int_equal(ratelimit_take(rl, "new", t + 200), 0);
	assert_int_equal(ratelimit_take(rl, "victim", t + 200), 1);
	/* many addresses: memory stays the same, the oldest go */
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_int_equal(ratelimit_take(rl, key, t + 300 + i), 0);
	}
	assert_int_equal(ratelimit_take(rl, "victim", t + 20000), 0); /* forgotten: full again */
	/* a long key is cut, not overflowed */
	{
		char longkey[300];
		memset(longkey, 'k', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = '\0';
		assert_int_equal(ratelimit_take(rl, longkey, t + 30000), 0);
	}
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

static int group_setup(void **state)
{
	(void)state;
	log_level = LOG_ERROR;
	return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_cases),
		cmocka_unit_test(test_form_limits),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test_setup_teardown(test_password_grant, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_refresh_rotation, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_refresh_expired_and_rotate_race, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_lockout, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_client_credentials, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_client_bound_refresh, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_client_add, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_revoke, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_store_counters, setup_store, teardown_store),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_ratelimit_bounded),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
