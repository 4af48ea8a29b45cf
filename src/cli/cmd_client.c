/* cmd_client.c - chartkeep client: OAuth system clients (client_credentials).
 *
 * add prints the generated secret on standard output and nothing else, so
 * that a script can capture it; the reminder that it cannot be shown again
 * goes to standard error. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/privacy.h"
#include "base/banned.h"

static int print_client(void *ctx, const struct store_client *c)
{
	char created[TIME_INSTANT_MAX];

	(void)ctx;
	time_format_instant(c->created_ms, created);
	printf("%s\t%s\t%s\t%s\t%s\n", c->client_id, c->role, c->active ? "active" : "disabled",
	       c->scopes[0] ? c->scopes : "-", created);
	return 0;
}

int cmd_client(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const char *const actions[] = { "add", "list", "disable", "enable", NULL };
	enum { ADD, LIST, DISABLE, ENABLE };
	const char *db = NULL, *id = NULL, *role = NULL, *scopes = NULL;
	const struct cli_opt opts[] = {
		{ "db", CLI_STR, &db, 0, 0 },
		{ "client-id", CLI_STR, &id, 0, 0 },
		{ "role", CLI_STR, &role, 0, 0 },
		{ "scopes", CLI_STR, &scopes, 0, 0 },
		{ NULL, 0, NULL, 0, 0 },
	};
	struct err e = ERR_INIT;
	struct store *s = NULL;
	char secret[PRIVACY_SECRET_MAX];
	int npos, rc, which;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if ((rc = cli_options(cmd, argc - 1, argv + 1, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (which != LIST && !id)
		return cli_usage_error(cmd, "--client-id ID is required");
	if (which == ADD) {
		if (!role)
			return cli_usage_error(cmd, "--role ROLE is required");
		if (!privacy_role_valid(role))
			return cli_usage_error(cmd, "unknown role '%s'", role);
		if (!privacy_username_valid(id))
			return cli_usage_error(cmd, "invalid client id: use 1-64 of a-z A-Z 0-9 . _ - @");
	} else if (role || scopes) {
		return cli_usage_error(cmd, "--role and --scopes go with add");
	}
	if ((rc = cli_open_store(cmd, db, NULL, &s)) != 0)
		return rc;
	switch (which) {
	case ADD:
		if (privacy_client_add(s, id, role, scopes, secret, &e) < 0) {
			rc = cli_fail(cmd, &e);
			break;
		}
		printf("%s\n", secret);
		fflush(stdout);
		sodium_memzero(secret, sizeof(secret));
		fprintf(stderr, "added client %s (%s); the secret above is shown once: keep it now\n",
			id, role);
		break;
	case LIST:
		rc = store_client_list(s, print_client, NULL, &e) < 0 ? cli_fail(cmd, &e) : 0;
		break;
	default:
		if (privacy_client_set_active(s, id, which == ENABLE, &e) < 0)
			rc = cli_fail(cmd, &e);
		else
			printf("%s client %s\n", which == ENABLE ? "enabled" : "disabled", id);
		break;
	}
	store_close(s);
	return rc;
}
