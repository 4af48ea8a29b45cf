/* cmd_admin.c - init, user, token, check. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/privacy.h"
#include "base/banned.h"

int cmd_init(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL;
	const struct cli_opt opts[] = { { "db", CLI_STR, &db, 0, 0 }, { NULL, 0, NULL, 0, 0 } };
	struct err e = ERR_INIT;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (!db)
		return cli_usage_error(cmd, "--db PATH is required");
	if (store_create(db, &e) < 0)
		return cli_fail(cmd, &e);
	printf("created %s\n", db);
	return 0;
}

static int print_user(void *ctx, const struct store_user *u)
{
	char created[TIME_INSTANT_MAX];

	(void)ctx;
	time_format_instant(u->created_ms, created);
	printf("%s\t%s\t%s\t%s\n", u->username, u->role, u->active ? "active" : "inactive", created);
	return 0;
}

int cmd_user(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *username = NULL, *role = NULL;
	bool pw_stdin = false;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "username", CLI_STR, &username, 0, 0 },
		{ "role", CLI_STR, &role, 0, 0 },
		{ "password-stdin", CLI_FLAG, &pw_stdin, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct err e = ERR_INIT;
	struct store *s = NULL;
	char pw[PRIVACY_MAX_PASSWORD + 2];
	int npos, rc;

	static const char *const actions[] = { "add", "list", NULL };
	int which;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (which == 1) {
		if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
			return rc;
		rc = store_user_list(s, print_user, NULL, &e) < 0 ? cli_fail(cmd, &e) : 0;
		store_close(s);
		return rc;
	}
	if (!username)
		return cli_usage_error(cmd, "--username NAME is required");
	if (!role)
		return cli_usage_error(cmd, "--role ROLE is required");
	if (!privacy_role_valid(role))
		return cli_usage_error(cmd, "unknown role '%s'", role);
	if (!privacy_username_valid(username))
		return cli_usage_error(cmd, "invalid username: use 1-64 of a-z A-Z 0-9 . _ - @");
	if (!pw_stdin)
		return cli_usage_error(cmd, "--password-stdin is required (the password is read from stdin)");
	if (!db)
		return cli_usage_error(cmd, "--db PATH is required");
	if (cli_read_secret(pw, sizeof(pw), &e) < 0 || privacy_password_check(pw, &e) < 0) {
		sodium_memzero(pw, sizeof(pw));
		return cli_fail(cmd, &e);
	}
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0) {
		sodium_memzero(pw, sizeof(pw));
		return rc;
	}
	rc = privacy_user_add(s, username, role, pw, &e) < 0 ? cli_fail(cmd, &e) : 0;
	sodium_memzero(pw, sizeof(pw));
	if (rc == 0)
		printf("added user %s (%s)\n", username, role);
	store_close(s);
	return rc;
}

int cmd_token(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL, *username = NULL, *scope = NULL;
	uint64_t ttl = PRIVACY_DEFAULT_TTL;
	bool tok_stdin = false;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "username", CLI_STR, &username, 0, 0 },
		{ "ttl", CLI_UINT, &ttl, 1, 366ULL * 24 * 3600 },
		{ "scope", CLI_STR, &scope, 0, 0 },
		{ "token-stdin", CLI_FLAG, &tok_stdin, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct err e = ERR_INIT;
	struct store *s = NULL;
	char tok[PRIVACY_TOKEN_MAX + 2];
	int npos, rc;

	static const char *const actions[] = { "issue", "revoke", NULL };
	int which;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (which == 0) {
		if (!username)
			return cli_usage_error(cmd, "--username NAME is required");
		if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
			return rc;
		if (privacy_token_issue(s, username, (int64_t)ttl, scope, tok, &e) < 0) {
			rc = cli_fail(cmd, &e);
		} else {
			printf("%s\n", tok);
			rc = 0;
		}
		sodium_memzero(tok, sizeof(tok));
		store_close(s);
		return rc;
	}
	{
		if (!tok_stdin)
			return cli_usage_error(cmd, "--token-stdin is required (the token is read from stdin)");
		if (!db)
			return cli_usage_error(cmd, "--db PATH is required");
		if (cli_read_secret(tok, sizeof(tok), &e) < 0)
			return cli_fail(cmd, &e);
		if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
			return rc;
		rc = privacy_token_revoke(s, tok, &e) < 0 ? cli_fail(cmd, &e) : 0;
		if (rc == 0)
			printf("revoked\n");
		sodium_memzero(tok, sizeof(tok));
		store_close(s);
		return rc;
	}
}

int cmd_check(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *db = NULL;
	const struct cli_opt opts[] = { { "db", CLI_STR, &db, 0, 0 }, { NULL, 0, NULL, 0, 0 } };
	struct err e = ERR_INIT;
	struct store *s;
	int npos, rc, v;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	v = store_schema_version(s, &e);
	if (store_check(s, &e) < 0) {
		rc = cli_fail(cmd, &e);
		fprintf(stderr, "%s\n", e.detail);
	} else {
		printf("ok (schema version %d)\n", v);
	}
	store_close(s);
	return rc;
}
