/* cmd_policy.c - chartkeep policy: show the effective access policy, check a
 * site policy file.
 *
 * Neither action opens a database: the policy is the built-in table plus the
 * site file, exactly what `serve --policy FILE` will enforce, so a privacy
 * officer can read it and an administrator can validate a file before a
 * restart depends on it. */
#include <stdio.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/policy.h"
#include "base/banned.h"

static int policy_show(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *file = NULL;
	const struct cli_opt opts[] = { { "policy", CLI_STR, &file, 0, 0 },
					{ NULL, 0, NULL, 0, 0 } };
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (file && privacy_policy_load(file, &e) < 0)
		return cli_fail(cmd, &e);
	privacy_policy_describe(&out);
	if (out.failed) {
		err_set(&e, ERR_NOMEM, "out of memory");
		rc = cli_fail(cmd, &e);
	} else {
		fputs(buf_cstr(&out), stdout);
		rc = 0;
	}
	buf_release(&out);
	return rc;
}

static int policy_check(const struct cli_cmd *cmd, int argc, char **argv)
{
	const struct cli_opt opts[] = { { NULL, 0, NULL, 0, 0 } };
	struct err e = ERR_INIT;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 1, &npos)) != CLI_GO)
		return rc;
	if (npos != 1)
		return cli_usage_error(cmd, "expected the policy FILE to check");
	if (privacy_policy_load(argv[1], &e) < 0)
		return cli_fail(cmd, &e);
	printf("%s: ok\n", argv[1]);
	return 0;
}

int cmd_policy(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const char *const actions[] = { "show", "check", NULL };
	int which, rc;

	if ((rc = cli_action(cmd, argc, argv, actions, &which)) != CLI_GO)
		return rc;
	if (which == 0)
		return policy_show(cmd, argc - 1, argv + 1);
	return policy_check(cmd, argc - 1, argv + 1);
}
