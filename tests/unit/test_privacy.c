/* test_privacy.c - src/privacy: roles, usernames, the password policy,
 * argon2id hashes, bearer tokens through a real store, and the policy
 * decision point.
 *
 * argon2id costs about 0.1 s a hash, so hashing happens a handful of times,
 * never in a loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "privacy/privacy.h"
#include "store/store.h"
#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* roles, usernames, passwords                                         */

static void test_roles(void **state)
{
	static const char *const ladder[] = {
		"registration_clerk", "him_technician", "coder", "registrar", "roi_specialist",
		"billing", "him_supervisor", "him_director", "clinician", "privacy_officer", "admin",
		"interface", /* interface feeds (HL7 v2), for registered clients */
	};
	size_t n = 0;

	(void)state;
	while (privacy_roles[n])
		n++;
	assert_int_equal(n, N_OF(ladder));
	for (size_t i = 0; i < N_OF(ladder); i++) {
		assert_string_equal(privacy_roles[i], ladder[i]);
		assert_true(privacy_role_valid(ladder[i]));
	}
	assert_false(privacy_role_valid(""));
	assert_false(privacy_role_valid("Admin"));
	assert_false(privacy_role_valid("admin "));
	assert_false(privacy_role_valid("root"));
	assert_false(privacy_role_valid("coder\n"));
}

static void test_usernames(void **state)
{
	static const struct { const char *name; bool ok; } cases[] = {
		{ "a", true },
		{ "alice", true },
		{ "Alice.Smith_1-x@example.org", true },
		{ "0123456789012345678901234567890123456789012345678901234567890123", true }, /* 64 */
		{ "01234567890123456789012345678901234567890123456789012345678901234", false }, /* 65 */
		{ "", false },
		{ "a b", false },
		{ "a/b", false },
		{ "a:b", false },
		{ "a+b", false },
		{ "caf\xc3\xa9", false },
		{ "alice\n", false },
		{ "'; drop table app_user; --", false },
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++)
		if (privacy_username_valid(cases[i].name) != cases[i].ok)
			fail_msg("'%s' should be %s", cases[i].name, cases[i].ok ? "valid" : "invalid");
}

static void test_password_policy(void **state)
{
	static const struct { const char *pw; const char *msg; } cases[] = {
		{ "correct horse battery staple", NULL },
		{ "abcdefghijk", "password too short: at least 12 characters" },   /* 11 */
		{ "abcdefghijkm", NULL },                                          /* 12 */
		{ "", "password too short: at least 12 characters" },
		{ "password1234", "password is too common: choose another" },
		{ "PASSWORD1234", "password is too common: choose another" },     /* any case */
		{ "chartkeep123", "password is too common: choose another" },
		{ "123456789012", "password is too common: choose another" },
		{ "password12345!", NULL },
	};
	char pw256[PRIVACY_MAX_PASSWORD + 1], pw257[PRIVACY_MAX_PASSWORD + 2];
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		err_clear(&e);
		if (!cases[i].msg) {
			if (privacy_password_check(cases[i].pw, &e) != 0)
				fail_msg("'%s' refused: %s", cases[i].pw, e.msg);
			continue;
		}
		assert_int_equal(privacy_password_check(cases[i].pw, &e), -1);
		assert_int_equal(e.code, ERR_INVALID);
		assert_string_equal(e.msg, cases[i].msg);
	}
	memset(pw256, 'x', PRIVACY_MAX_PASSWORD);
	pw256[PRIVACY_MAX_PASSWORD] = '\0';
	assert_int_equal(privacy_password_check(pw256, &e), 0);
	memset(pw257, 'x', PRIVACY_MAX_PASSWORD + 1);
	pw257[PRIVACY_MAX_PASSWORD + 1] = '\0';
	err_clear(&e);
	assert_int_equal(privacy_password_check(pw257, &e), -1);
	assert_string_equal(e.msg, "password too long: at most 256 characters");
	/* the message never repeats the password */
	err_clear(&e);
	privacy_password_check("password1234", &e);
	assert_null(strstr(e.msg, "password1234"));
}

static void test_hash_verify(void **state)
{
	char h[STORE_HASH_MAX + 1];
	struct err e = ERR_INIT;

	(void)state;
	memset(h, 0x7f, sizeof(h));
	assert_int_equal(privacy_password_hash("correct horse battery staple", h, &e), 0);
	assert_int_equal(strncmp(h, "$argon2id$", 10), 0);
	assert_true(strlen(h) < sizeof(h));
	assert_null(strstr(h, "correct horse"));
	assert_true(privacy_password_verify(h, "correct horse battery staple"));
	/* each verify costs a hash: one wrong password is enough */
	assert_false(privacy_password_verify(h, "Correct horse battery staple"));
	assert_false(privacy_password_verify("not a hash", "correct horse battery staple"));
	assert_false(privacy_password_verify("", ""));
}

/* ------------------------------------------------------------------ */
/* users and tokens through a real store                               */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup_store(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ck-privacy-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	if (store_create(f->path, &e) < 0 || store_open(f->path, NULL, &f->s, &e) < 0) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown_store(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "db", "db-wal", "db-shm", "db-journal" };
	char p[192];

	store_close(f->s);
	for (size_t i = 0; i < N_OF(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* A user straight into the store (no argon2 cost). */
static int64_t add_user(struct store *s, const char *name, const char *role, bool active)
{
	struct store_user u;
	struct err e = ERR_INIT;

	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.role, sizeof(u.role), "%s", role);
	snprintf(u.pw_hash, sizeof(u.pw_hash), "x");
	u.active = active;
	if (store_user_add(s, &u, &e) < 0)
		fail_msg("add_user %s: %s", name, e.msg);
	return u.uid;
}

static void test_user_add(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store_user u;

	/* rejected before any hashing or storing */
	assert_int_equal(privacy_user_add(f->s, "bad name", "coder", "correct horse battery", &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_user_add(f->s, "carol", "superuser", "correct horse battery", &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_non_null(strstr(e.msg, "unknown role"));
	err_clear(&e);
	assert_int_equal(privacy_user_add(f->s, "carol", "coder", "short", &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_user_add(f->s, "carol", "coder", "password1234", &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(store_user_get(f->s, "carol", &u, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);

	err_clear(&e);
	assert_int_equal(privacy_user_add(f->s, "carol", "coder", "correct horse battery", &e), 0);
	assert_int_equal(store_user_get(f->s, "carol", &u, &e), 0);
	assert_string_equal(u.role, "coder");
	assert_true(u.active);
	assert_int_equal(strncmp(u.pw_hash, "$argon2id$", 10), 0);
	assert_true(privacy_password_verify(u.pw_hash, "correct horse battery"));

	err_clear(&e);
	assert_int_equal(privacy_user_add(f->s, "carol", "admin", "another good passphrase", &e), -1);
	assert_int_equal(e.code, ERR_CONFLICT);
}

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

static void test_token_issue_authenticate_revoke(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct store_principal p;
	char tok[PRIVACY_TOKEN_MAX], tok2[PRIVACY_TOKEN_MAX], hdr[128];
	int64_t uid = add_user(f->s, "dana", "him_technician", true);

	assert_int_equal(privacy_token_issue(f->s, "dana", 3600, "user/*.read", tok, &e), 0);
	assert_int_equal(strncmp(tok, "ck_", 3), 0);
	assert_int_equal(strlen(tok), 3 + 43);
	for (size_t i = 3; tok[i]; i++)
		assert_true(is_b64url(tok[i]));
	assert_int_equal(privacy_token_issue(f->s, "dana", 60, NULL, tok2, &e), 0);
	assert_string_not_equal(tok, tok2);

	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), 0);
	assert_int_equal(p.uid, uid);
	assert_string_equal(p.username, "dana");
	assert_string_equal(p.role, "him_technician");
	assert_string_equal(p.scopes, "user/*.read");
	assert_true(p.expires_ms > time_now_ms());
	assert_true(p.expires_ms <= time_now_ms() + 3600 * 1000);
	/* the scheme is case-insensitive; spaces around the token are fine */
	snprintf(hdr, sizeof(hdr), "bearer   %s  ", tok2);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), 0);
	assert_string_equal(p.scopes, "");

	/* revoke: the token stops working, the other one does not */
	assert_int_equal(privacy_token_revoke(f->s, tok, &e), 0);
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	err_clear(&e);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok2);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), 0);

	/* revoking a token that was never issued */
	err_clear(&e);
	assert_int_equal(privacy_token_revoke(f->s, "ck_never_issued", &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
}

static void test_token_issue_refused(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char tok[PRIVACY_TOKEN_MAX];

	add_user(f->s, "erin", "coder", true);
	add_user(f->s, "gone", "coder", false);
	assert_int_equal(privacy_token_issue(f->s, "erin", 0, NULL, tok, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_token_issue(f->s, "erin", -5, NULL, tok, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	err_clear(&e);
	assert_int_equal(privacy_token_issue(f->s, "erin", 366LL * 24 * 3600 + 1, NULL, tok, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(privacy_token_issue(f->s, "erin", 366LL * 24 * 3600, NULL, tok, &e), 0);
	err_clear(&e);
	assert_int_equal(privacy_token_issue(f->s, "nobody", 60, NULL, tok, &e), -1);
	assert_int_equal(e.code, ERR_NOT_FOUND);
	err_clear(&e);
	assert_int_equal(privacy_token_issue(f->s, "gone", 60, NULL, tok, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
}

/* Expiry and inactive users, with tokens written straight into the store
 * under the hash privacy_authenticate computes (BLAKE2b-256 of the token). */
static void test_token_expired_and_inactive(void **state)
{
	struct fx *f = *state;
	struct store_token t;
	struct store_principal p;
	struct err e = ERR_INIT;
	const char *expired = "ck_expired_token_for_the_test";
	const char *inactive = "ck_inactive_user_token";
	int64_t now = time_now_ms();
	char hdr[128];

	memset(&t, 0, sizeof(t));
	t.uid = add_user(f->s, "fay", "coder", true);
	snprintf(t.kind, sizeof(t.kind), "access");
	t.issued_ms = now - 7200 * 1000;
	t.expires_ms = now - 3600 * 1000;
	crypto_generichash(t.hash, sizeof(t.hash), (const unsigned char *)expired, strlen(expired), NULL, 0);
	assert_int_equal(store_token_add(f->s, &t, &e), 0);
	snprintf(hdr, sizeof(hdr), "Bearer %s", expired);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);

	t.uid = add_user(f->s, "gil", "coder", false);
	t.expires_ms = now + 3600 * 1000;
	crypto_generichash(t.hash, sizeof(t.hash), (const unsigned char *)inactive, strlen(inactive), NULL, 0);
	assert_int_equal(store_token_add(f->s, &t, &e), 0);
	snprintf(hdr, sizeof(hdr), "Bearer %s", inactive);
	err_clear(&e);
	assert_int_equal(privacy_authenticate(f->s, hdr, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);

	/* the same token for an active user works: the hash is the one used */
	t.uid = add_user(f->s, "hal", "coder", true);
	crypto_generichash(t.hash, sizeof(t.hash), (const unsigned char *)"ck_ok", 5, NULL, 0);
	assert_int_equal(store_token_add(f->s, &t, &e), 0);
	assert_int_equal(privacy_authenticate(f->s, "Bearer ck_ok", &p, &e), 0);
	assert_string_equal(p.username, "hal");
}

static void test_malformed_authorization(void **state)
{
	static const char *const headers[] = {
		"",
		"Bearer",
		"Bearer ",
		"Bearer      ",
		"Basic dXNlcjpwYXNz",
		"Token ck_abc",
		"Bearerck_abc",
		"Bearer\tck_abc",
		"Bearer ck_unknown_token",
		"Bearer ck_0123456789012345678901234567890123456789012345678901234567890123456789",
		"ck_abc",
	};
	struct fx *f = *state;
	struct store_principal p;
	struct err e = ERR_INIT;

	assert_int_equal(privacy_authenticate(f->s, NULL, &p, &e), -1);
	assert_int_equal(e.code, ERR_UNAUTHENTICATED);
	assert_non_null(strstr(e.msg, "authentication required"));
	for (size_t i = 0; i < N_OF(headers); i++) {
		err_clear(&e);
		if (privacy_authenticate(f->s, headers[i], &p, &e) != -1)
			fail_msg("'%s' was accepted", headers[i]);
		if (e.code != ERR_UNAUTHENTICATED)
			fail_msg("'%s': %s", headers[i], err_code_name(e.code));
		assert_null(strstr(e.msg, "ck_")); /* the token is never echoed */
	}
}

/* ------------------------------------------------------------------ */
/* the policy decision point                                           */

static void test_decide(void **state)
{
	struct store_principal who;
	struct privacy_request rq = { PA_READ, "Patient", "1", "127.0.0.1" };
	struct err e = ERR_INIT;

	(void)state;
	memset(&who, 0, sizeof(who));
	who.uid = 1;
	snprintf(who.username, sizeof(who.username), "coder1");
	/* every role may look up a Practitioner (the role table itself is
	 * tested in test_policy.c) */
	rq.type = "Practitioner";
	for (size_t i = 0; privacy_roles[i]; i++) {
		snprintf(who.role, sizeof(who.role), "%s", privacy_roles[i]);
		err_clear(&e);
		assert_int_equal(privacy_decide(&who, &rq, &e), 0);
		assert_int_equal(e.code, ERR_NONE);
	}
	rq.type = "Patient";
	snprintf(who.role, sizeof(who.role), "intruder");
	assert_int_equal(privacy_decide(&who, &rq, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	/* the message does not say whether Patient/1 exists */
	assert_null(strstr(e.msg, "Patient"));
	assert_null(strstr(e.msg, "exist"));
	snprintf(who.role, sizeof(who.role), "%s", "");
	err_clear(&e);
	assert_int_equal(privacy_decide(&who, &rq, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
	err_clear(&e);
	assert_int_equal(privacy_decide(NULL, &rq, &e), -1);
	assert_int_equal(e.code, ERR_FORBIDDEN);
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
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_usernames),
		cmocka_unit_test(test_password_policy),
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test_setup_teardown(test_user_add, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_token_issue_authenticate_revoke, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_token_issue_refused, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_token_expired_and_inactive, setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_malformed_authorization, setup_store, teardown_store),
		cmocka_unit_test(test_decide),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
