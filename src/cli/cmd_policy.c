/* cmd_policy.c - chartkeep policy: show the effective access policy, check a
 * site policy file.
 *
 * Neither action opens a database: the policy is the built-in table plus the
 * site file, exactly what `serve --policy FILE` will enforce, so a privacy
 * officer can read it and an administrator can validate a file before a
 * restart depends on it.
 *
 * `show --json` is the same table for programs (tests/api/access.py builds
 * its role x type x action matrix from it).  It needs the groups and the
 * type list, which only the policy's private header has: the CLI is the one
 * place outside src/privacy that reads it, and only to list, never to
 * decide (the actions come from privacy_policy_actions(), the public API). */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "privacy/policy.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

/* Is name one of the comma-separated types of list? */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* Is the type in group g?  "other" holds every type no other group names. */
static bool in_group(size_t g, const char *type)
{
	if (strcmp(policy_groups[g].name, POLICY_OTHER) != 0)
		return in_list(policy_groups[g].types, type);
	for (size_t k = 0; k < policy_n_groups; k++)
		if (k != g && in_list(policy_groups[k].types, type))
			return false;
	return true;
}

/* A JSON array of the action names in mask m (1u << PA_*). */
static void add_actions_json(struct buf *out, unsigned m)
{
	bool first = true;

	buf_addch(out, '[');
	for (int a = PA_READ; a <= PA_CAPABILITIES; a++) {
		if (!(m & (1u << a)))
			continue;
		buf_addf(out, "%s\"%s\"", first ? "" : ",", privacy_action_name(a));
		first = false;
	}
	buf_addch(out, ']');
}

static void add_json_member(struct buf *out, const char *name)
{
	buf_addch(out, '"');
	buf_add_json_str(out, name, strlen(name));
	buf_addstr(out, "\":");
}

/* The effective table as one JSON object:
 *   {"source": FILE or "", "actions": [...],
 *    "groups": {GROUP: {"about": "...", "types": [TYPE, ...]}, ...},
 *    "roles": {ROLE: {"groups": {GROUP: [actions every member has]},
 *                     "types": {TYPE: [actions]}, "system": [actions]}}}
 * Every type is listed under every role, an empty array for none; batch and
 * capabilities (always allowed) are not in the table. */
static void describe_json(struct buf *out)
{
	size_t ntypes = policy_n_types(), ngroups = policy_n_groups;

	buf_addstr(out, "{\"source\":\"");
	buf_add_json_str(out, privacy_policy_source(), strlen(privacy_policy_source()));
	buf_addstr(out, "\",\"actions\":");
	add_actions_json(out, ~0u & ~(1u << PA_BATCH) & ~(1u << PA_CAPABILITIES));
	buf_addstr(out, ",\"groups\":{");
	for (size_t g = 0; g < ngroups; g++) {
		bool first = true;

		buf_addstr(out, g ? ",\n" : "\n");
		add_json_member(out, policy_groups[g].name);
		buf_addstr(out, "{\"about\":\"");
		buf_add_json_str(out, policy_groups[g].about, strlen(policy_groups[g].about));
		buf_addstr(out, "\",\"types\":[");
		for (size_t t = 0; t < ntypes; t++) {
			const char *type = policy_type_name((int)t);
			if (!in_group(g, type))
				continue;
			buf_addf(out, "%s\"%s\"", first ? "" : ",", type);
			first = false;
		}
		buf_addstr(out, "]}");
	}
	buf_addstr(out, "},\n\"roles\":{");
	for (size_t r = 0; privacy_roles[r]; r++) {
		const char *role = privacy_roles[r];

		buf_addstr(out, r ? ",\n" : "\n");
		add_json_member(out, role);
		buf_addstr(out, "{\"groups\":{");
		for (size_t g = 0; g < ngroups; g++) {
			unsigned common = ~0u;
			for (size_t t = 0; t < ntypes; t++)
				if (in_group(g, policy_type_name((int)t)))
					common &= privacy_policy_actions(role, policy_type_name((int)t));
			if (g)
				buf_addch(out, ',');
			add_json_member(out, policy_groups[g].name);
			add_actions_json(out, common);
		}
		buf_addstr(out, "},\"types\":{");
		for (size_t t = 0; t < ntypes; t++) {
			const char *type = policy_type_name((int)t);
			if (t)
				buf_addch(out, ',');
			add_json_member(out, type);
			add_actions_json(out, privacy_policy_actions(role, type));
		}
		buf_addstr(out, "},\"system\":");
		add_actions_json(out, privacy_policy_actions(role, NULL));
		buf_addch(out, '}');
	}
	buf_addstr(out, "\n}}\n");
}

static int policy_show(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *file = NULL;
	bool json = false;
	const struct cli_opt opts[] = { { "policy", CLI_STR, &file, 0, 0 },
					{ "json", CLI_FLAG, &json, 0, 0 },
					{ NULL, 0, NULL, 0, 0 } };
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	int npos, rc;

	if ((rc = cli_options(cmd, argc, argv, opts, 0, &npos)) != CLI_GO)
		return rc;
	if (file && privacy_policy_load(file, &e) < 0)
		return cli_fail(cmd, &e);
	if (json)
		describe_json(&out);
	else
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
